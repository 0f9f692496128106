/*
 * s3_repo_priv.h - private to src/store: a repository's files as S3
 * objects (format/object-storage.md).
 *
 * A repository on object storage is named by a URL, "s3://BUCKET/PREFIX",
 * and every file in it by the URL of its object, "s3://BUCKET/PREFIX/REL":
 * kt_store_repo_abs_path() joins them exactly as it joins directory paths.
 * The store's primitives (the segment reader, the writer's I/O, the index,
 * the small-file calls, prune and verify) take such a URL wherever they take
 * a path and dispatch on its "s3://" prefix to the calls below, so nothing
 * outside src/store knows which back end holds a repository.
 *
 * Clients come from a small process-wide pool, keyed by bucket, so that
 * connections are reused across calls and each thread still gets a client
 * of its own (a client serves one thread at a time).  Settings come from the
 * environment (format/object-storage.md section 1); KTAPE_S3_PATH_STYLE=1
 * selects path-style addressing.
 */
#ifndef KT_STORE_S3_REPO_PRIV_H
#define KT_STORE_S3_REPO_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "kt_store.h"
#include "s3_priv.h"

/* Largest merged ranged read (format/object-storage.md section 5). */
#define KT_S3_MERGE_MAX (8u << 20)
/* Parts of a segment upload: KT_S3_PART_BASE bytes for the first 1000
 * parts, twice that for the next 1000, and so on (kt_s3_part_size). */
#define KT_S3_PART_BASE (8u << 20)

/* Splits an object URL "s3://BUCKET/KEY" into the bucket (checked against
 * S3's naming rules) and *key, a pointer into url.  KT_EUSAGE naming the
 * URL when it is not one. */
int kt_s3_object_split(const char *url, char bucket[KT_S3_BUCKET_MAX + 1], const char **key,
		       char *errstr, size_t errstr_size);

/* Takes a client for bucket from the pool, creating one from the
 * environment when none is idle.  Give it back with kt_s3_pool_put(). */
int kt_s3_pool_get(const char *bucket, struct kt_s3_client **out, char *errstr, size_t errstr_size);
/* Returns a client to the pool (or frees it when the pool is full).  NULL
 * accepted. */
void kt_s3_pool_put(struct kt_s3_client *s3);

/* Whole-object calls on object URLs, each through a pooled client. */

/* Reads the object whole into a malloc'd, NUL-terminated buffer.  Absent:
 * KT_ENOTFOUND; larger than max: -EFBIG. */
int kt_s3_url_read(const char *url, size_t max, char **out, size_t *out_len,
		   char *errstr, size_t errstr_size);
/* Writes the object in one PUT.  if_absent: KT_EEXIST when it exists,
 * checked by HEAD first and then by If-None-Match on the PUT (stores that
 * ignore the header keep the HEAD's narrower guarantee). */
int kt_s3_url_write(const char *url, const void *buf, size_t len, int if_absent,
		    char *errstr, size_t errstr_size);
/* Deletes the object; an absent one is not an error. */
int kt_s3_url_remove(const char *url, char *errstr, size_t errstr_size);
/* The object's size; KT_ENOTFOUND when absent. */
int kt_s3_url_head(const char *url, uint64_t *size, char *errstr, size_t errstr_size);

/* One object listed by kt_s3_url_list(). */
struct kt_s3_listed {
	char *rel;     /* the key after the listed prefix */
	uint64_t size;
};

/* Every object whose key starts with the key of url_prefix (which should
 * end in '/'), in key order, into a malloc'd array; free it with
 * kt_s3_listed_free(). */
int kt_s3_url_list(const char *url_prefix, struct kt_s3_listed **out, size_t *count,
		   char *errstr, size_t errstr_size);
void kt_s3_listed_free(struct kt_s3_listed *v, size_t count);

/* The size of part number part (1-based) of a segment upload whose first
 * parts are base bytes: parts grow by base every 1000, so that 10000 of
 * them hold 55000 x base (about 430 GiB at 8 MiB) while a segment of
 * ordinary size never buffers more than base. */
size_t kt_s3_part_size(size_t base, unsigned part);

/* The first parts' size: KTAPE_S3_PART_SIZE bytes when set (at least 64
 * KiB; S3 itself refuses parts below 5 MiB but the last, so smaller values
 * only suit stores that do not check, as tests use them), else
 * KT_S3_PART_BASE. */
size_t kt_s3_part_base(void);

/* Range merging for the reader: how many blocks from first (at least one)
 * one ranged GET fetches when up to budget bytes may be read ahead.  Blocks
 * are contiguous in a segment, so block i spans [file_offset[i],
 * file_offset[i + 1]) and the last one ends at table_offset.  The span never
 * exceeds KT_S3_MERGE_MAX unless the first block alone does.  *end gets
 * the byte where the merged range ends. */
size_t kt_s3_merge_blocks(const struct kt_store_block_info *blocks, size_t n, size_t first,
			  uint64_t table_offset, uint64_t budget, uint64_t *end);

/* The next readahead budget of a reader that loads block i after block
 * prev (SIZE_MAX when none): it doubles, from the block's own span up to
 * cap, while blocks are read in order, and falls back to 0 (the block
 * alone) on a jump, so a window read fetches little more than its blocks
 * and a whole-segment read uses few, large requests.  A read that starts
 * at block 0 gets cap at once: it is most often a whole-segment read, and
 * a window that starts there costs at most cap more bytes. */
uint64_t kt_s3_next_budget(uint64_t budget, size_t prev, size_t i, uint64_t block_span, uint64_t cap);

/* All readers on object storage together read ahead at most this much, so
 * a restore of many partitions at once stays bounded in memory. */
#define KT_S3_READAHEAD_TOTAL (64u << 20)

/* Registers (+1) or retires (-1) a reader on object storage and returns
 * the readahead cap each gets now: KT_S3_READAHEAD_TOTAL shared among the
 * open readers' two range buffers (the one being read and the one being
 * fetched ahead), at most KT_S3_MERGE_MAX and at least 256 KiB. */
uint64_t kt_s3_readahead_cap(int delta);

/* One ranged GET done in the background by the store's fetch threads, so
 * that a reader's next blocks travel while it decodes the current ones.
 * The caller owns the struct and the buffer, and must kt_s3_fetch_wait()
 * for a started fetch before it reuses or frees either. */
struct kt_s3_fetch {
	char bucket[KT_S3_BUCKET_MAX + 1];
	const char *key;  /* borrowed until the wait */
	uint64_t off;
	size_t len;
	void *buf;
	/* Results, valid after the wait. */
	int err;
	size_t got;
	char msg[512];
	/* Private to s3_repo.c. */
	int done;
	struct kt_s3_fetch *next;
};

/* Queues f (its bucket, key, off, len and buf set) for the fetch threads,
 * starting them on first use.  0, or a code when no thread could be
 * started (the caller then reads synchronously). */
int kt_s3_fetch_start(struct kt_s3_fetch *f);
/* Waits until f has finished; returns its code (0 with f->got bytes). */
int kt_s3_fetch_wait(struct kt_s3_fetch *f);

#endif /* KT_STORE_S3_REPO_PRIV_H */
