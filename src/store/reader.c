/*
 * reader.c - reads segment files (format/segment.md).
 *
 * Opening reads the file header, the footer and the seek table (or, for a
 * torn file opened with KT_STORE_OPEN_RECOVER, walks the blocks from the
 * start), checks every structure, and then checks the .kti index against
 * them; lookups use the index's running maximum timestamps when the index
 * is present and bound to this segment, else the same values computed from
 * the seek table.  Blocks are read with one pread each into a reusable
 * buffer, their header and payload checksums verified, and decompressed
 * into a second buffer, reused unless a caller holds it (struct
 * kt_store_block), with a ZSTD_DCtx borrowed from a shared pool.  Every record of
 * a block is then checked (section 7) before the first is returned, since
 * no record of a damaged block may ever come out; next() then walks the
 * records one at a time and returns them as views into the decompressed
 * block (zero copy).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>
#include <zstd.h>

#include "kt_store.h"
#include "repo_priv.h"
#include "s3_repo_priv.h"
#include "segment_format.h"

#define NO_BLOCK SIZE_MAX

/* A decompressed block's buffer, counted so that a caller can keep its
 * records' views after the reader moved on (kt_store_reader_hold_block()).
 * The reader holds one reference to the buffer it decompresses into and
 * reuses it while it is the only holder; once somebody else holds it, the
 * next block goes into a new buffer. */
struct kt_store_block {
	atomic_uint refs;
	size_t cap;
	uint8_t data[];
};

void kt_store_block_release(struct kt_store_block *block)
{
	if (block && atomic_fetch_sub_explicit(&block->refs, 1, memory_order_acq_rel) == 1)
		free(block);
}

struct kt_store_reader {
	char *path;
	int fd;
	unsigned flags;
	uint64_t base;   /* where the segment starts in the file: non-zero for
			  * a segment read in place from an archive */
	int ranged;      /* opened with kt_store_reader_open_range: no index */

	/* A segment on object storage (path is its s3:// URL): bytes come by
	 * ranged GET through a cache of the last range fetched, which holds
	 * the merged blocks read ahead (format/object-storage.md section 5). */
	struct kt_s3_client *s3; /* from the pool; given back at destroy */
	const char *s3_key;      /* points into path */
	uint8_t *ra_buf;
	size_t ra_cap;
	uint64_t ra_off;         /* segment offset of ra_buf[0] */
	size_t ra_len;
	uint64_t ra_budget;      /* readahead, grown by in-order block loads */
	size_t last_loaded;      /* block loaded last, SIZE_MAX for none */
	uint64_t fetch_end;      /* the next miss fetches up to here (0: just
				  * what was asked) */
	char s3_msg[512];        /* the store's answer to the last failed GET */
	char s3_bucket[KT_S3_BUCKET_MAX + 1];
	/* The range after ra_buf's, fetched in the background while blocks
	 * are read in order; swapped in when the reader gets there. */
	uint8_t *pf_buf;
	size_t pf_cap;
	struct kt_s3_fetch pf;
	int pf_active;
	/* The index, fetched at open alongside the header and the tail. */
	char ix_path[PATH_MAX];
	uint8_t *ix_buf;
	size_t ix_cap;
	struct kt_s3_fetch ix;
	int ix_active;
	uint64_t file_size;
	uint16_t header_size;
	struct kt_store_segment_info info;
	struct kt_store_block_info *blocks;
	int64_t *running_max_ts; /* per block, monotonic: the time index */
	size_t block_count;

	/* The .kti index as open found it: 0 used, -ENOENT absent, or the
	 * code of why it was refused (index_msg says how). */
	int index_state;
	char index_msg[512];

	uint8_t *io_buf; /* block header + stored payload */
	size_t io_cap;
	struct kt_store_block *raw_blk; /* decompressed payload; the reader's reference */

	/* The loaded block and the parse position in it. */
	size_t cur;        /* NO_BLOCK when none is loaded */
	size_t next_block; /* loaded when the current one is exhausted */
	const uint8_t *raw;
	size_t raw_len;
	size_t pos;
	uint32_t parsed;
	int64_t prev_offset;
	int seen_min, seen_max;

	size_t rec_block; /* block of the last record returned */
	int peeked;       /* rec holds a record a seek found, not yet returned */
	struct kt_record rec;
	struct kt_header *headers; /* grown as needed, reused */
	size_t header_cap;

	struct kt_store_read_stats stats;
};

/* Reads exactly len bytes at off; KT_ETRUNCATED if the file ends first. */
static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t r = pread(fd, p, len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return KT_ETRUNCATED;
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int grow(uint8_t **buf, size_t *cap, size_t need);

/* Why a read failed: the store's own answer (HTTP status and S3's error
 * code) for a segment on object storage, else the code's name. */
static const char *read_why(const struct kt_store_reader *reader, int err)
{
	return reader->s3 && reader->s3_msg[0] ? reader->s3_msg : kt_strerror(err);
}

/* Reads exactly len bytes at segment offset off, from the file or, for a
 * segment on object storage, from the readahead cache or one ranged GET
 * (of up to fetch_end, when a caller planned a merged read).  KT_ETRUNCATED
 * when the segment ends first. */
static int src_read(struct kt_store_reader *reader, void *buf, size_t len, uint64_t off)
{
	uint64_t want_end = off + len;
	size_t got = 0;
	int err;

	if (!reader->s3)
		return pread_full(reader->fd, buf, len, reader->base + off);
	if (len == 0)
		return 0;
	if (off >= reader->ra_off && want_end <= reader->ra_off + reader->ra_len) {
		memcpy(buf, reader->ra_buf + (off - reader->ra_off), len);
		return 0;
	}
	if (want_end > reader->file_size)
		return KT_ETRUNCATED;
	if (reader->pf_active) {
		/* The range fetched ahead: use it if the read starts in it,
		 * else it was a guess the reader did not follow. */
		err = kt_s3_fetch_wait(&reader->pf);
		reader->pf_active = 0;
		if (!err && off >= reader->pf.off && want_end <= reader->pf.off + reader->pf.got) {
			uint8_t *b = reader->ra_buf;
			size_t c = reader->ra_cap;

			reader->ra_buf = reader->pf_buf;
			reader->ra_cap = reader->pf_cap;
			reader->pf_buf = b;
			reader->pf_cap = c;
			reader->ra_off = reader->pf.off;
			reader->ra_len = reader->pf.got;
			reader->fetch_end = 0;
			memcpy(buf, reader->ra_buf + (off - reader->ra_off), len);
			return 0;
		}
	}
	if (reader->fetch_end > want_end && reader->fetch_end <= reader->file_size)
		want_end = reader->fetch_end;
	reader->fetch_end = 0;
	if (want_end == off + len) {
		/* Nothing to keep for later: straight into the caller's buffer. */
		err = kt_s3_get_range(reader->s3, reader->s3_key, off, len, buf, &got, reader->s3_msg,
				      sizeof(reader->s3_msg));
		if (!err && got < len)
			err = KT_ETRUNCATED;
		return err == KT_ERANGE ? KT_ETRUNCATED : err;
	}
	reader->ra_len = 0;
	if (grow(&reader->ra_buf, &reader->ra_cap, (size_t)(want_end - off)) < 0)
		return -ENOMEM;
	err = kt_s3_get_range(reader->s3, reader->s3_key, off, (size_t)(want_end - off), reader->ra_buf,
			      &got, reader->s3_msg, sizeof(reader->s3_msg));
	if (err)
		return err == KT_ERANGE ? KT_ETRUNCATED : err;
	reader->ra_off = off;
	reader->ra_len = got;
	if (got < len)
		return KT_ETRUNCATED;
	memcpy(buf, reader->ra_buf, len);
	return 0;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *nbuf;
	size_t ncap = *cap ? *cap : 65536;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	/* The old contents are never needed, so free + malloc avoids
	 * realloc copying them. */
	nbuf = malloc(ncap);
	if (!nbuf)
		return -ENOMEM;
	free(*buf);
	*buf = nbuf;
	*cap = ncap;
	return 0;
}

/* Checks the stored payload of a zstd block before decompressing it: one
 * frame, exactly stored_size bytes, declaring raw_size. */
static const char *zstd_frame_problem(const uint8_t *src, size_t stored, size_t raw)
{
	unsigned long long content = ZSTD_getFrameContentSize(src, stored);
	size_t frame;

	if (stored > ZSTD_compressBound(raw))
		return "stored size is larger than zstd could produce from raw_size";
	if (content == ZSTD_CONTENTSIZE_ERROR)
		return "payload is not a zstd frame";
	if (content != raw)
		return "zstd frame content size differs from raw_size";
	frame = ZSTD_findFrameCompressedSize(src, stored);
	if (ZSTD_isError(frame) || frame != stored)
		return "payload is not exactly one zstd frame";
	return NULL;
}

/* Reads len bytes at file_offset into io_buf, growing it first.  Returns
 * 0, -ENOMEM or pread_full()'s code (KT_ETRUNCATED at the end of file). */
static int fill_io_buf(struct kt_store_reader *reader, size_t len, uint64_t file_offset)
{
	if (grow(&reader->io_buf, &reader->io_cap, len) < 0)
		return -ENOMEM;
	return src_read(reader, reader->io_buf, len, file_offset);
}

/* Reads block i's header and payload into io_buf and checks them against
 * the header's own checksum and against expect (the seek table's entry)
 * when given.  Sets *blk from the header. */
static int read_block(struct kt_store_reader *reader, size_t i, uint64_t file_offset,
		      const struct kt_store_block_info *expect, struct kt_store_block_info *blk,
		      char *errstr, size_t errstr_size)
{
	const char *why = NULL;
	size_t len;
	int err;

	if (file_offset + KT_SEG_BLOCK_HEADER_SIZE > reader->file_size)
		return kt_seterr(errstr, errstr_size, KT_ETRUNCATED,
				 "segment %s: block %zu at byte %llu: file ends inside the "
				 "block header", reader->path, i, (unsigned long long)file_offset);
	/* With the seek table's sizes, header and payload come in one read. */
	len = KT_SEG_BLOCK_HEADER_SIZE + (expect ? expect->stored_size : 0);
	err = fill_io_buf(reader, len, file_offset);
	if (err)
		goto io_fail;
	err = kt_seg_block_header_unpack(reader->io_buf, blk, &why);
	if (err)
		return kt_seterr(errstr, errstr_size, err, "segment %s: block %zu at byte %llu %s",
				 reader->path, i, (unsigned long long)file_offset, why);
	blk->file_offset = file_offset;
	if (expect && !kt_seg_block_info_equal(blk, expect))
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "segment %s: block %zu at byte %llu: block header disagrees "
				 "with the seek table", reader->path, i,
				 (unsigned long long)file_offset);
	if (!expect) {
		if (file_offset + KT_SEG_BLOCK_HEADER_SIZE + blk->stored_size > reader->file_size)
			return kt_seterr(errstr, errstr_size, KT_ETRUNCATED,
					 "segment %s: block %zu at byte %llu: file ends inside "
					 "its %u-byte payload", reader->path, i,
					 (unsigned long long)file_offset, blk->stored_size);
		len = KT_SEG_BLOCK_HEADER_SIZE + (size_t)blk->stored_size;
		err = fill_io_buf(reader, len, file_offset);
		if (err)
			goto io_fail;
	}
	if (kt_seg_checksum(reader->io_buf + KT_SEG_BLOCK_HEADER_SIZE, blk->stored_size) !=
	    blk->checksum)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "segment %s: block %zu at byte %llu: payload checksum mismatch; "
				 "its records are lost", reader->path, i,
				 (unsigned long long)file_offset);
	return 0;

io_fail:
	if (err == -ENOMEM)
		return kt_seterr(errstr, errstr_size, err, "segment %s: block %zu: out of memory for "
				 "%zu bytes", reader->path, i, len);
	if (err == KT_ETRUNCATED)
		return kt_seterr(errstr, errstr_size, err,
				 "segment %s: block %zu at byte %llu: file ends inside the block",
				 reader->path, i, (unsigned long long)file_offset);
	return kt_seterr(errstr, errstr_size, err, "segment %s: block %zu at byte %llu: read "
			 "failed: %s", reader->path, i, (unsigned long long)file_offset,
			 read_why(reader, err));
}

static int parse_record(struct kt_store_reader *reader, char *errstr, size_t errstr_size);
static int finish_block(struct kt_store_reader *reader, char *errstr, size_t errstr_size);

/* While blocks are read in order from object storage, starts fetching the
 * blocks after the readahead range (block i was just read from it), so
 * that the network works while the caller decodes.  A failure here only
 * means no head start: the read itself then fetches and reports. */
static void start_prefetch(struct kt_store_reader *reader, size_t i, uint64_t table)
{
	uint64_t next = reader->ra_off + reader->ra_len, end = 0;
	size_t j;

	if (reader->pf_active || reader->ra_budget == 0 || reader->ra_len == 0 || next >= table)
		return;
	for (j = i + 1; j < reader->block_count && reader->blocks[j].file_offset < next; j++)
		;
	if (j >= reader->block_count || reader->blocks[j].file_offset != next)
		return; /* block i did not come from the readahead range */
	kt_s3_merge_blocks(reader->blocks, reader->block_count, j, table, reader->ra_budget, &end);
	if (end <= next || grow(&reader->pf_buf, &reader->pf_cap, (size_t)(end - next)) < 0)
		return;
	memcpy(reader->pf.bucket, reader->s3_bucket, sizeof(reader->pf.bucket));
	reader->pf.key = reader->s3_key;
	reader->pf.off = next;
	reader->pf.len = (size_t)(end - next);
	reader->pf.buf = reader->pf_buf;
	reader->pf_active = kt_s3_fetch_start(&reader->pf) == 0;
}

/* Loads block i: read, verify, decompress, and position before its first
 * record. */
/* Decompression contexts shared by the readers of the process, as the
 * writers share theirs (writer.c): a window restore opens a reader per
 * partition and creating a context for each was 2% of its time, for a
 * handful of blocks each.  A block borrows one for its one call. */
#define READER_DCTX_KEEP 8
static pthread_mutex_t dctx_lock = PTHREAD_MUTEX_INITIALIZER;
static ZSTD_DCtx *dctx_idle[READER_DCTX_KEEP];
static unsigned dctx_idle_count;

static ZSTD_DCtx *dctx_borrow(void)
{
	ZSTD_DCtx *dctx = NULL;

	pthread_mutex_lock(&dctx_lock);
	if (dctx_idle_count)
		dctx = dctx_idle[--dctx_idle_count];
	pthread_mutex_unlock(&dctx_lock);
	return dctx ? dctx : ZSTD_createDCtx();
}

static void dctx_return(ZSTD_DCtx *dctx)
{
	pthread_mutex_lock(&dctx_lock);
	if (dctx_idle_count < READER_DCTX_KEEP) {
		dctx_idle[dctx_idle_count++] = dctx;
		dctx = NULL;
	}
	pthread_mutex_unlock(&dctx_lock);
	ZSTD_freeDCtx(dctx);
}

/* A buffer of at least need bytes to decompress the next block into: the
 * current one while nobody else holds it, else a new one.  The old block
 * stays valid for its other holders. */
static int raw_reserve(struct kt_store_reader *reader, size_t need)
{
	struct kt_store_block *block = reader->raw_blk;

	if (block && block->cap >= need && atomic_load_explicit(&block->refs, memory_order_acquire) == 1)
		return 0;
	if (block) {
		/* Nothing may point into a buffer this reader let go of. */
		if (reader->raw == block->data) {
			reader->raw = NULL;
			reader->raw_len = 0;
		}
		kt_store_block_release(block);
		reader->raw_blk = NULL;
	}
	block = malloc(sizeof(*block) + need);
	if (!block)
		return -ENOMEM;
	atomic_init(&block->refs, 1);
	block->cap = need;
	reader->raw_blk = block;
	return 0;
}

static int load_block(struct kt_store_reader *reader, size_t i, char *errstr,
		      size_t errstr_size)
{
	const struct kt_store_block_info *expect = &reader->blocks[i];
	struct kt_store_block_info blk;
	size_t rec_block;
	int err;

	reader->cur = NO_BLOCK;
	if (reader->s3) {
		/* Blocks read in order are fetched several at a time, up to
		 * 8 MiB; a block reached by a jump is fetched alone, so a
		 * window read costs little more than its own blocks. */
		uint64_t table = reader->block_count ? reader->blocks[reader->block_count - 1].file_offset +
							       KT_SEG_BLOCK_HEADER_SIZE +
							       reader->blocks[reader->block_count - 1].stored_size
						     : reader->header_size;

		reader->ra_budget = kt_s3_next_budget(reader->ra_budget, reader->last_loaded, i,
						      KT_SEG_BLOCK_HEADER_SIZE + (uint64_t)expect->stored_size,
						      kt_s3_readahead_cap(0));
		kt_s3_merge_blocks(reader->blocks, reader->block_count, i, table, reader->ra_budget,
				   &reader->fetch_end);
		reader->last_loaded = i;
		err = read_block(reader, i, expect->file_offset, expect, &blk, errstr, errstr_size);
		if (err)
			return err;
		start_prefetch(reader, i, table);
	} else {
		err = read_block(reader, i, expect->file_offset, expect, &blk, errstr, errstr_size);
		if (err)
			return err;
	}
	if (blk.codec == KT_CODEC_ZSTD) {
		const char *why = zstd_frame_problem(reader->io_buf + KT_SEG_BLOCK_HEADER_SIZE,
						     blk.stored_size, blk.raw_size);
		ZSTD_DCtx *dctx;
		size_t n;

		/* Checked here, not in read_block(): recovery accepts a block
		 * on its checksums alone, and its payload then fails only
		 * when loaded (segment.md 7). */
		if (why)
			return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					 "segment %s: block %zu at byte %llu: %s", reader->path,
					 i, (unsigned long long)blk.file_offset, why);

		if (raw_reserve(reader, blk.raw_size ? blk.raw_size : 1) < 0)
			return kt_seterr(errstr, errstr_size, -ENOMEM,
					 "segment %s: block %zu: out of memory for %u bytes",
					 reader->path, i, blk.raw_size);
		dctx = dctx_borrow();
		if (!dctx)
			return kt_seterr(errstr, errstr_size, -ENOMEM,
					 "segment %s: block %zu: out of memory for a zstd context", reader->path, i);
		n = ZSTD_decompressDCtx(dctx, reader->raw_blk->data, blk.raw_size,
					reader->io_buf + KT_SEG_BLOCK_HEADER_SIZE,
					blk.stored_size);
		dctx_return(dctx);
		if (ZSTD_isError(n) || n != blk.raw_size)
			return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					 "segment %s: block %zu at byte %llu: zstd payload does "
					 "not decompress to %u bytes: %s", reader->path, i,
					 (unsigned long long)blk.file_offset, blk.raw_size,
					 ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size differs");
		reader->raw = reader->raw_blk->data;
	} else {
		/* Uncompressed: records are read in place. */
		reader->raw = reader->io_buf + KT_SEG_BLOCK_HEADER_SIZE;
	}
	reader->raw_len = blk.raw_size;
	reader->cur = i;
	reader->pos = 0;
	reader->parsed = 0;
	reader->seen_min = reader->seen_max = 0;
	rec_block = reader->rec_block;
	/* The whole block is checked before any record of it is returned
	 * (segment.md 7), so a restore never emits part of a damaged block;
	 * next() then parses the records again, which costs little next to
	 * decompression. */
	while (reader->pos < reader->raw_len) {
		err = parse_record(reader, errstr, errstr_size);
		if (err)
			goto invalid;
	}
	err = finish_block(reader, errstr, errstr_size);
	if (err)
		goto invalid;
	reader->pos = 0;
	reader->parsed = 0;
	reader->seen_min = reader->seen_max = 0;
	reader->rec_block = rec_block;
	reader->stats.blocks_loaded++;
	reader->stats.stored_bytes_read += blk.stored_size;
	reader->stats.raw_bytes_decoded += blk.raw_size;
	return 0;

invalid:
	reader->cur = NO_BLOCK;
	reader->rec_block = rec_block;
	return err;
}

static int record_corrupt(const struct kt_store_reader *reader, const char *why,
			  char *errstr, size_t errstr_size)
{
	const struct kt_store_block_info *blk = &reader->blocks[reader->cur];

	return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
			 "segment %s: block %zu at byte %llu: record %u at byte %zu of the "
			 "decompressed payload: %s", reader->path, reader->cur,
			 (unsigned long long)blk->file_offset, reader->parsed, reader->pos, why);
}

#define GET_VARINT(p, end, v, what)                                       \
	do {                                                              \
		if (kt_varint_get(&(p), (end), &(v)) < 0)                 \
			return record_corrupt(reader, what, errstr, errstr_size); \
	} while (0)

/* Reads a varint length and that many bytes from [*pp, end); -1 when
 * either does not fit. */
static inline int get_bytes(const uint8_t **pp, const uint8_t *end, const void **out,
			    size_t *len)
{
	uint64_t n;

	if (kt_varint_get(pp, end, &n) < 0 || n > (uint64_t)(end - *pp))
		return -1;
	*out = *pp;
	*len = (size_t)n;
	*pp += n;
	return 0;
}

/* Parses the record at pos into reader->rec with every check of
 * format/segment.md section 7, and advances pos past it. */
static int parse_record(struct kt_store_reader *reader, char *errstr, size_t errstr_size)
{
	const struct kt_store_block_info *blk = &reader->blocks[reader->cur];
	const uint8_t *p = reader->raw + reader->pos;
	const uint8_t *end = reader->raw + reader->raw_len;
	const uint8_t *rend;
	struct kt_record *rec = &reader->rec;
	uint64_t len, od, tsd, n, count;
	uint8_t attr;

	if (reader->parsed == blk->record_count)
		return record_corrupt(reader, "bytes follow the block's last record",
				      errstr, errstr_size);
	GET_VARINT(p, end, len, "record length is not a valid varint");
	if (len == 0 || len > KT_STORE_MAX_RECORD_SIZE)
		return record_corrupt(reader, "record length is 0 or above 2^30", errstr,
				      errstr_size);
	if (len > (uint64_t)(end - p))
		return record_corrupt(reader, "record length runs past the block", errstr,
				      errstr_size);
	rend = p + len;
	attr = *p++;
	if ((attr & KT_SEG_ATTR_RESERVED) || (attr & KT_SEG_ATTR_TS_MASK) == 3)
		return record_corrupt(reader, "attributes have reserved bits or timestamp "
				      "type 3", errstr, errstr_size);
	GET_VARINT(p, rend, od, "offset delta is not a valid varint");
	GET_VARINT(p, rend, tsd, "timestamp delta is not a valid varint");
	if (od > (uint64_t)blk->last_offset - (uint64_t)blk->first_offset)
		return record_corrupt(reader, "offset is above the block's last offset",
				      errstr, errstr_size);
	rec->offset = (int64_t)((uint64_t)blk->first_offset + od);
	if (reader->parsed == 0 ? od != 0 : rec->offset <= reader->prev_offset)
		return record_corrupt(reader, reader->parsed == 0 ?
				      "first record's offset is not the block's first offset" :
				      "offset does not increase", errstr, errstr_size);
	if (tsd > (uint64_t)blk->max_ts - (uint64_t)blk->min_ts)
		return record_corrupt(reader, "timestamp is above the block's max_ts", errstr,
				      errstr_size);
	rec->timestamp = (int64_t)((uint64_t)blk->min_ts + tsd);
	rec->ts_type = attr & KT_SEG_ATTR_TS_MASK;
	if (attr & KT_SEG_ATTR_KEY_NULL) {
		rec->key = NULL;
		rec->key_len = 0;
	} else if (get_bytes(&p, rend, &rec->key, &rec->key_len) < 0) {
		return record_corrupt(reader, "key length is not a valid varint or runs past "
				      "the record", errstr, errstr_size);
	}
	if (attr & KT_SEG_ATTR_VALUE_NULL) {
		rec->value = NULL;
		rec->value_len = 0;
	} else if (get_bytes(&p, rend, &rec->value, &rec->value_len) < 0) {
		return record_corrupt(reader, "value length is not a valid varint or runs past "
				      "the record", errstr, errstr_size);
	}
	GET_VARINT(p, rend, count, "header count is not a valid varint");
	/* Each header takes at least two bytes, which bounds the array
	 * before it is grown. */
	if (count > (uint64_t)(rend - p) / 2)
		return record_corrupt(reader, "header count runs past the record", errstr,
				      errstr_size);
	if (count > reader->header_cap) {
		size_t ncap = reader->header_cap ? reader->header_cap : 16;
		struct kt_header *nh;

		while (ncap < count)
			ncap *= 2;
		nh = realloc(reader->headers, ncap * sizeof(*nh));
		if (!nh)
			return kt_seterr(errstr, errstr_size, -ENOMEM,
					 "segment %s: out of memory for %llu headers",
					 reader->path, (unsigned long long)count);
		reader->headers = nh;
		reader->header_cap = ncap;
	}
	for (uint64_t h = 0; h < count; h++) {
		struct kt_header *hd = &reader->headers[h];

		if (get_bytes(&p, rend, (const void **)&hd->name, &hd->name_len) < 0)
			return record_corrupt(reader, "header name length is not a valid varint "
					      "or runs past the record", errstr, errstr_size);
		GET_VARINT(p, rend, n, "header value length is not a valid varint");
		if (n == 0) {
			hd->value = NULL;
			hd->value_len = 0;
		} else {
			if (n - 1 > (uint64_t)(rend - p))
				return record_corrupt(reader, "header value runs past the record",
						      errstr, errstr_size);
			hd->value = p;
			hd->value_len = (size_t)(n - 1);
			p += n - 1;
		}
	}
	if (p != rend)
		return record_corrupt(reader, "record length disagrees with its fields",
				      errstr, errstr_size);
	rec->headers = count ? reader->headers : NULL;
	rec->header_count = (size_t)count;

	if (rec->timestamp == blk->min_ts)
		reader->seen_min = 1;
	if (rec->timestamp == blk->max_ts)
		reader->seen_max = 1;
	reader->prev_offset = rec->offset;
	reader->parsed++;
	reader->pos = (size_t)(rend - reader->raw);
	reader->rec_block = reader->cur;
	return 0;
}

/* The checks that can only be made once a block's records are all read. */
static int finish_block(struct kt_store_reader *reader, char *errstr, size_t errstr_size)
{
	const struct kt_store_block_info *blk = &reader->blocks[reader->cur];

	if (reader->parsed != blk->record_count)
		return record_corrupt(reader, "block ends before its record count", errstr,
				      errstr_size);
	if (reader->prev_offset != blk->last_offset)
		return record_corrupt(reader, "last record's offset is not the block's "
				      "last offset", errstr, errstr_size);
	if (!reader->seen_min || !reader->seen_max)
		return record_corrupt(reader, "no record has the block's min_ts or max_ts",
				      errstr, errstr_size);
	return 0;
}

int kt_store_reader_next(struct kt_store_reader *reader, const struct kt_record **rec,
			 char *errstr, size_t errstr_size)
{
	int err;

	if (reader->peeked) {
		reader->peeked = 0;
		*rec = &reader->rec;
		return 1;
	}
	for (;;) {
		if (reader->cur != NO_BLOCK) {
			if (reader->pos < reader->raw_len) {
				err = parse_record(reader, errstr, errstr_size);
				if (err)
					return err;
				*rec = &reader->rec;
				return 1;
			}
			err = finish_block(reader, errstr, errstr_size);
			if (err)
				return err;
			reader->next_block = reader->cur + 1;
			reader->cur = NO_BLOCK;
		}
		if (reader->next_block >= reader->block_count)
			return 0;
		err = load_block(reader, reader->next_block, errstr, errstr_size);
		if (err)
			return err;
	}
}

/* ---- opening -------------------------------------------------------------- */

/* XXH3-64 of len bytes of the file at off, streamed through a small buffer
 * so that a footer pointing far back cannot make us allocate the file. */
static int checksum_range(struct kt_store_reader *reader, uint64_t off, uint64_t len, uint64_t *sum)
{
	XXH3_state_t *state = XXH3_createState();
	uint8_t *buf = malloc(1u << 16);
	int err = 0;

	if (!state || !buf) {
		err = -ENOMEM;
		goto out;
	}
	XXH3_64bits_reset(state);
	while (len > 0) {
		size_t n = len < (1u << 16) ? (size_t)len : (1u << 16);
		err = src_read(reader, buf, n, off);
		if (err)
			goto out;
		XXH3_64bits_update(state, buf, n);
		off += n;
		len -= n;
	}
	*sum = XXH3_64bits_digest(state);
out:
	free(buf);
	XXH3_freeState(state);
	return err;
}

/* Reads the seek table a valid footer points to and checks it, in the
 * order of format/segment.md section 7 rows 7-11. */
static int load_seek_table(struct kt_store_reader *reader, const struct kt_seg_footer *ftr,
			   char *errstr, size_t errstr_size)
{
	struct kt_seg_footer sum;
	uint8_t *table = NULL;
	uint64_t n, expect_off = reader->header_size, sto = ftr->seek_table_offset;
	uint64_t footer_at = reader->file_size - KT_SEG_FOOTER_SIZE, table_sum = 0;
	size_t table_len;
	const char *why;
	int err;

	/* Row 7: the seek table lies between the header and the footer, and
	 * the footer's checksum covers exactly those bytes. */
	if (sto < reader->header_size || sto > footer_at - KT_SEG_SEEK_HEADER_SIZE)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "segment %s: footer at byte %llu places the seek table at "
				 "byte %llu, outside the file's blocks", reader->path,
				 (unsigned long long)footer_at, (unsigned long long)sto);
	/* On object storage the table comes in one ranged GET, kept for the
	 * parse below, unless the footer claims a table too large to be
	 * worth holding; then it streams like a file. */
	if (reader->s3 && footer_at - sto <= KT_S3_MERGE_MAX)
		reader->fetch_end = reader->file_size; /* the footer too: it is small */
	err = checksum_range(reader, sto, footer_at - sto, &table_sum);
	if (err)
		return kt_seterr(errstr, errstr_size, err, "segment %s: cannot read the seek "
				 "table at byte %llu: %s", reader->path, (unsigned long long)sto,
				 read_why(reader, err));
	if (table_sum != ftr->segment_checksum)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "segment %s: seek table at byte %llu does not match the footer's "
				 "segment checksum", reader->path, (unsigned long long)sto);
	/* Checksummed, so the table is what the writer wrote; its size is
	 * now known to be bounded by the file. */
	table_len = (size_t)(footer_at - sto);
	table = malloc(table_len);
	if (!table) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM,
				"segment %s: out of memory for a %zu-byte seek table",
				reader->path, table_len);
		goto out;
	}
	err = src_read(reader, table, table_len, sto);
	if (err) {
		err = kt_seterr(errstr, errstr_size, err, "segment %s: cannot read the seek "
				"table at byte %llu: %s", reader->path, (unsigned long long)sto,
				read_why(reader, err));
		goto out;
	}
	if (memcmp(table, KT_SEG_SEEK_MAGIC, 4) != 0) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"segment %s: seek table at byte %llu has no seek table magic",
				reader->path, (unsigned long long)sto);
		goto out;
	}
	if (kt_le32(table + 4) != KT_SEG_SEEK_ENTRY_SIZE) {
		err = kt_seterr(errstr, errstr_size, KT_EVERSION,
				"segment %s: seek table at byte %llu has %u-byte entries; this "
				"ktape knows only %u", reader->path, (unsigned long long)sto,
				kt_le32(table + 4), KT_SEG_SEEK_ENTRY_SIZE);
		goto out;
	}
	n = kt_le64(table + 8);
	if (n > table_len / KT_SEG_SEEK_ENTRY_SIZE ||
	    KT_SEG_SEEK_HEADER_SIZE + n * KT_SEG_SEEK_ENTRY_SIZE != table_len ||
	    ftr->block_count != n) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"segment %s: seek table at byte %llu counts %llu blocks, which "
				"disagrees with its size (%zu bytes) or the footer's %llu blocks",
				reader->path, (unsigned long long)sto, (unsigned long long)n,
				table_len, (unsigned long long)ftr->block_count);
		goto out;
	}
	reader->blocks = malloc((n ? n : 1) * sizeof(*reader->blocks));
	reader->running_max_ts = malloc((n ? n : 1) * sizeof(*reader->running_max_ts));
	if (!reader->blocks || !reader->running_max_ts) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM,
				"segment %s: out of memory for %llu blocks", reader->path,
				(unsigned long long)n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct kt_store_block_info *blk = &reader->blocks[i];
		uint64_t at = sto + KT_SEG_SEEK_HEADER_SIZE + i * KT_SEG_SEEK_ENTRY_SIZE;

		err = kt_seg_seek_entry_unpack(table + KT_SEG_SEEK_HEADER_SIZE +
					       i * KT_SEG_SEEK_ENTRY_SIZE, blk, &why);
		if (!err && blk->file_offset != expect_off) {
			why = "places its block where the previous one does not end";
			err = KT_ECORRUPT;
		}
		if (!err && i > 0 && blk->first_offset <= blk[-1].last_offset) {
			why = "has a first offset not above the previous block's last";
			err = KT_ECORRUPT;
		}
		if (!err && (uint64_t)blk->stored_size > sto - expect_off) {
			why = "has a stored size that runs into the seek table";
			err = KT_ECORRUPT;
		}
		if (err) {
			err = kt_seterr(errstr, errstr_size, err,
					"segment %s: seek table entry for block %zu at byte %llu "
					"%s", reader->path, i, (unsigned long long)at, why);
			goto out;
		}
		expect_off += KT_SEG_BLOCK_HEADER_SIZE + (uint64_t)blk->stored_size;
	}
	if (expect_off != sto) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"segment %s: blocks end at byte %llu but the seek table starts "
				"at byte %llu", reader->path, (unsigned long long)expect_off,
				(unsigned long long)sto);
		goto out;
	}
	kt_seg_footer_from_blocks(&sum, reader->blocks, (size_t)n);
	if (sum.record_count != ftr->record_count || sum.first_offset != ftr->first_offset ||
	    sum.last_offset != ftr->last_offset || sum.min_ts != ftr->min_ts ||
	    sum.max_ts != ftr->max_ts) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"segment %s: footer at byte %llu disagrees with the seek table "
				"(record count, offsets or timestamps)", reader->path,
				(unsigned long long)footer_at);
		goto out;
	}
	reader->block_count = (size_t)n;
	reader->info.checksum = ftr->segment_checksum;
	reader->info.sealed = 1;
	err = 0;
out:
	free(table);
	return err;
}

/* Recovery of a torn segment (format/segment.md 7): keep every whole, valid
 * block from the start, stop at the first that is not. */
static int recover_blocks(struct kt_store_reader *reader, char *errstr, size_t errstr_size)
{
	uint64_t off = reader->header_size;
	size_t cap = 0;
	uint8_t *table;
	size_t table_len;
	char ignored[256];

	for (;;) {
		struct kt_store_block_info blk;

		if (read_block(reader, reader->block_count, off, NULL, &blk, ignored,
			       sizeof(ignored)) != 0)
			break;
		if (reader->block_count > 0 &&
		    blk.first_offset <= reader->blocks[reader->block_count - 1].last_offset)
			break;
		if (reader->block_count == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct kt_store_block_info *nb =
				realloc(reader->blocks, ncap * sizeof(*nb));
			if (!nb)
				return kt_seterr(errstr, errstr_size, -ENOMEM,
						 "segment %s: out of memory recovering blocks",
						 reader->path);
			reader->blocks = nb;
			cap = ncap;
		}
		reader->blocks[reader->block_count++] = blk;
		off += KT_SEG_BLOCK_HEADER_SIZE + (uint64_t)blk.stored_size;
	}
	/* The checksum a seal of exactly these blocks would give, so the
	 * recovered content has a name like any other segment's. */
	table_len = KT_SEG_SEEK_HEADER_SIZE + reader->block_count * KT_SEG_SEEK_ENTRY_SIZE;
	table = malloc(table_len);
	reader->running_max_ts = malloc((reader->block_count ? reader->block_count : 1) *
					sizeof(*reader->running_max_ts));
	if (!table || !reader->running_max_ts) {
		free(table);
		return kt_seterr(errstr, errstr_size, -ENOMEM,
				 "segment %s: out of memory recovering blocks", reader->path);
	}
	if (!reader->blocks)
		reader->blocks = malloc(sizeof(*reader->blocks));
	reader->info.checksum = kt_seg_seek_table_pack(table, reader->blocks,
						       reader->block_count);
	free(table);
	if (!reader->blocks)
		return kt_seterr(errstr, errstr_size, -ENOMEM,
				 "segment %s: out of memory recovering blocks", reader->path);
	reader->info.sealed = 0;
	return 0;
}

/* Opening a segment on object storage costs round trips, which dominate
 * when the store is far: after the HEAD that gives the size, the file
 * header, the tail (footer and, usually, the whole seek table) and the
 * index are fetched at once, and open then checks them in the order of
 * segment.md section 7 as if read one by one.  A guess that falls short
 * (a seek table longer than the tail, an index longer than IX_GUESS) only
 * costs the exact read later. */
#define IX_GUESS (256u << 10)
#define TAIL_MIN 4096u
#define TAIL_MAX (256u << 10)

static int s3_open_fetches(struct kt_store_reader *reader, uint8_t *head, size_t head_len, unsigned flags)
{
	struct kt_s3_fetch hf;
	uint64_t tail = reader->file_size / 32;
	size_t bucket_len = strlen(reader->s3_bucket);
	int err;

	if (tail < TAIL_MIN)
		tail = TAIL_MIN;
	if (tail > TAIL_MAX)
		tail = TAIL_MAX;
	if (tail > reader->file_size)
		tail = reader->file_size;
	if (tail > 0 && grow(&reader->pf_buf, &reader->pf_cap, (size_t)tail) == 0) {
		memcpy(reader->pf.bucket, reader->s3_bucket, sizeof(reader->pf.bucket));
		reader->pf.key = reader->s3_key;
		reader->pf.off = reader->file_size - tail;
		reader->pf.len = (size_t)tail;
		reader->pf.buf = reader->pf_buf;
		reader->pf_active = kt_s3_fetch_start(&reader->pf) == 0;
	}
	if (!(flags & KT_STORE_OPEN_NO_INDEX) &&
	    kt_store_index_path(reader->path, reader->ix_path, sizeof(reader->ix_path)) == 0 &&
	    strlen(reader->ix_path) > 6 + bucket_len && grow(&reader->ix_buf, &reader->ix_cap, IX_GUESS) == 0) {
		memcpy(reader->ix.bucket, reader->s3_bucket, sizeof(reader->ix.bucket));
		reader->ix.key = reader->ix_path + 5 + bucket_len + 1; /* after "s3://BUCKET/" */
		reader->ix.off = 0;
		reader->ix.len = IX_GUESS;
		reader->ix.buf = reader->ix_buf;
		reader->ix_active = kt_s3_fetch_start(&reader->ix) == 0;
	}
	memset(&hf, 0, sizeof(hf));
	memcpy(hf.bucket, reader->s3_bucket, sizeof(hf.bucket));
	hf.key = reader->s3_key;
	hf.len = head_len;
	hf.buf = head;
	if (kt_s3_fetch_start(&hf) != 0)
		return src_read(reader, head, head_len, 0);
	err = kt_s3_fetch_wait(&hf);
	if (!err && hf.got < head_len)
		err = KT_ETRUNCATED;
	if (err == KT_ERANGE)
		err = KT_ETRUNCATED;
	if (err)
		snprintf(reader->s3_msg, sizeof(reader->s3_msg), "%s", hf.msg);
	return err;
}

/* The index fetched by s3_open_fetches(): checked from memory when it came
 * whole, read again exactly when it did not fit the guess or failed. */
static int s3_index_state(struct kt_store_reader *reader, const char *ipath)
{
	int err = kt_s3_fetch_wait(&reader->ix);
	int state;

	reader->ix_active = 0;
	if (err == KT_ENOTFOUND)
		state = -ENOENT;
	else if (!err && reader->ix.got < reader->ix.len)
		state = kt_store_index_check(ipath, reader->ix_buf, reader->ix.got, reader->blocks,
					     reader->block_count, reader->file_size, reader->info.checksum,
					     reader->running_max_ts, reader->index_msg, sizeof(reader->index_msg));
	else
		state = kt_seg_index_load(ipath, reader->blocks, reader->block_count, reader->file_size,
					  reader->info.checksum, reader->running_max_ts, reader->index_msg,
					  sizeof(reader->index_msg));
	free(reader->ix_buf);
	reader->ix_buf = NULL;
	reader->ix_cap = 0;
	return state;
}

/* Opens the segment at [base, base + length) of file; length UINT64_MAX
 * means the whole file.  path is the name errors use. */
static int reader_open(struct kt_store_reader **out, const char *file, uint64_t base, uint64_t length,
		       const char *path, unsigned flags, char *errstr, size_t errstr_size)
{
	struct kt_store_reader *reader;
	struct kt_seg_file_header hdr;
	struct kt_seg_footer ftr;
	uint8_t head[KT_SEG_FILE_HEADER_MAX + 8];
	uint8_t foot[KT_SEG_FOOTER_SIZE];
	const char *why = NULL;
	struct stat st;
	size_t head_len;
	int64_t running = INT64_MIN;
	int err;

	*out = NULL;
	reader = calloc(1, sizeof(*reader));
	if (!reader)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "segment %s: out of memory", path);
	reader->fd = -1;
	reader->cur = NO_BLOCK;
	reader->flags = flags;
	reader->path = strdup(path);
	if (!reader->path) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "segment %s: out of memory", path);
		goto fail;
	}
	reader->last_loaded = SIZE_MAX;
	if (kt_s3_url_is_s3(file) && length == UINT64_MAX) {
		char bucket[KT_S3_BUCKET_MAX + 1] = "";
		uint64_t size = 0;

		err = kt_s3_object_split(reader->path, bucket, &reader->s3_key, errstr, errstr_size);
		memcpy(reader->s3_bucket, bucket, sizeof(reader->s3_bucket));
		if (!err)
			err = kt_s3_pool_get(bucket, &reader->s3, errstr, errstr_size);
		if (reader->s3)
			kt_s3_readahead_cap(+1);
		if (!err)
			err = kt_s3_head(reader->s3, reader->s3_key, &size, errstr, errstr_size);
		if (err == KT_ENOTFOUND)
			err = kt_seterr(errstr, errstr_size, -ENOENT, "segment %s: cannot open: no such object", path);
		if (err)
			goto fail;
		memset(&st, 0, sizeof(st));
		st.st_size = (off_t)size;
	} else {
		reader->fd = open(file, O_RDONLY | O_CLOEXEC);
		if (reader->fd < 0 || fstat(reader->fd, &st) < 0) {
			err = -errno;
			err = kt_seterr(errstr, errstr_size, err, "segment %s: cannot open: %s", path,
					kt_strerror(err));
			goto fail;
		}
	}
	reader->base = base;
	reader->ranged = length != UINT64_MAX;
	reader->file_size = reader->ranged ? length : (uint64_t)st.st_size;
	if (reader->ranged && (base > (uint64_t)st.st_size || length > (uint64_t)st.st_size - base)) {
		err = kt_seterr(errstr, errstr_size, KT_ETRUNCATED,
				"segment %s: the file ends before its %llu bytes at byte %llu",
				path, (unsigned long long)length, (unsigned long long)base);
		goto fail;
	}
	if (reader->fd >= 0)
		(void)posix_fadvise(reader->fd, (off_t)base, reader->ranged ? (off_t)length : 0,
				    POSIX_FADV_SEQUENTIAL);
	reader->info.file_size = reader->file_size;

	head_len = reader->file_size < sizeof(head) ? (size_t)reader->file_size : sizeof(head);
	if (reader->s3)
		err = s3_open_fetches(reader, head, head_len, flags);
	else
		err = src_read(reader, head, head_len, 0);
	if (err) {
		err = kt_seterr(errstr, errstr_size, err, "segment %s: cannot read the file "
				"header: %s", path, read_why(reader, err));
		goto fail;
	}
	err = kt_seg_file_header_unpack(head, head_len, reader->file_size, &hdr, &why);
	if (err) {
		err = kt_seterr(errstr, errstr_size, err, "segment %s: byte 0: file %s", path, why);
		goto fail;
	}
	reader->header_size = hdr.header_size;
	memcpy(reader->info.topic, hdr.topic, hdr.topic_len);
	reader->info.topic[hdr.topic_len] = '\0';
	reader->info.partition = hdr.partition;
	reader->info.io_backend = KT_IO_AUTO;

	if (reader->file_size < (uint64_t)hdr.header_size + KT_SEG_SEEK_HEADER_SIZE +
					KT_SEG_FOOTER_SIZE) {
		err = KT_ETRUNCATED;
		why = "ends before a footer: the segment was not sealed or is torn";
	} else {
		err = src_read(reader, foot, sizeof(foot), reader->file_size - KT_SEG_FOOTER_SIZE);
		if (!err)
			err = kt_seg_footer_unpack(foot, &ftr, &why);
		else
			why = "cannot be read at its footer";
	}
	if (err == KT_ETRUNCATED && (flags & KT_STORE_OPEN_RECOVER)) {
		err = recover_blocks(reader, errstr, errstr_size);
		if (err)
			goto fail;
	} else if (err) {
		err = kt_seterr(errstr, errstr_size, err, "segment %s: byte %llu: file %s", path,
				(unsigned long long)(reader->file_size >= KT_SEG_FOOTER_SIZE ?
						     reader->file_size - KT_SEG_FOOTER_SIZE : 0),
				why);
		goto fail;
	} else {
		err = load_seek_table(reader, &ftr, errstr, errstr_size);
		if (err)
			goto fail;
	}

	/* Summary and the time index, from the blocks. */
	kt_seg_footer_from_blocks(&ftr, reader->blocks, reader->block_count);
	reader->info.block_count = reader->block_count;
	reader->info.record_count = ftr.record_count;
	reader->info.first_offset = ftr.first_offset;
	reader->info.last_offset = ftr.last_offset;
	reader->info.min_ts = ftr.min_ts;
	reader->info.max_ts = ftr.max_ts;
	for (size_t i = 0; i < reader->block_count; i++) {
		reader->info.raw_bytes += reader->blocks[i].raw_size;
		if (reader->blocks[i].max_ts > running)
			running = reader->blocks[i].max_ts;
		reader->running_max_ts[i] = running;
	}

	/* The index: used when it is bound to this segment; otherwise the
	 * values just computed from the seek table stand, and verify reports
	 * why the index was not used. */
	reader->index_state = -ENOENT;
	if (!(flags & KT_STORE_OPEN_NO_INDEX) && !reader->ranged && reader->info.sealed) {
		char ipath[PATH_MAX];

		if (reader->ix_active && kt_store_index_path(path, ipath, sizeof(ipath)) == 0)
			reader->index_state = s3_index_state(reader, ipath);
		else if (kt_store_index_path(path, ipath, sizeof(ipath)) == 0)
			reader->index_state = kt_seg_index_load(
				ipath, reader->blocks, reader->block_count, reader->file_size,
				reader->info.checksum, reader->running_max_ts, reader->index_msg,
				sizeof(reader->index_msg));
	}
	reader->next_block = 0;
	*out = reader;
	return 0;

fail:
	kt_store_reader_destroy(reader);
	return err;
}

int kt_store_reader_open(struct kt_store_reader **out, const char *path, unsigned flags,
			 char *errstr, size_t errstr_size)
{
	return reader_open(out, path, 0, UINT64_MAX, path, flags, errstr, errstr_size);
}

int kt_store_reader_open_range(struct kt_store_reader **out, const char *path,
			       uint64_t offset, uint64_t length, const char *name,
			       unsigned flags, char *errstr, size_t errstr_size)
{
	if (length == UINT64_MAX) {
		*out = NULL;
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "segment %s: length out of range", name);
	}
	return reader_open(out, path, offset, length, name ? name : path, flags, errstr, errstr_size);
}

void kt_store_reader_destroy(struct kt_store_reader *reader)
{
	if (!reader)
		return;
	/* A fetch ahead writes into pf_buf and reads path: it ends first. */
	if (reader->pf_active)
		kt_s3_fetch_wait(&reader->pf);
	if (reader->ix_active)
		kt_s3_fetch_wait(&reader->ix);
	free(reader->ix_buf);
	if (reader->fd >= 0)
		close(reader->fd);
	if (reader->s3)
		kt_s3_readahead_cap(-1);
	kt_s3_pool_put(reader->s3);
	free(reader->ra_buf);
	free(reader->pf_buf);
	free(reader->io_buf);
	kt_store_block_release(reader->raw_blk);
	free(reader->headers);
	free(reader->blocks);
	free(reader->running_max_ts);
	free(reader->path);
	free(reader);
}

const struct kt_store_segment_info *kt_store_reader_info(const struct kt_store_reader *reader)
{
	return &reader->info;
}

const struct kt_store_block_info *kt_store_reader_block(const struct kt_store_reader *reader,
							size_t i)
{
	return i < reader->block_count ? &reader->blocks[i] : NULL;
}

/* ---- lookups and seeks ------------------------------------------------------ */

/* Binary search for the first of n int64 values, stride bytes apart, that
 * is >= key; the values must be non-decreasing.  Returns n when none is. */
static size_t lower_bound(const void *first, size_t stride, size_t n, int64_t key)
{
	const char *base = first;
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int64_t v;

		memcpy(&v, base + mid * stride, sizeof(v));
		if (v >= key)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

int kt_store_reader_find_offset(const struct kt_store_reader *reader, int64_t offset,
				size_t *block)
{
	size_t b;

	if (reader->block_count == 0)
		return KT_ENOTFOUND;
	b = lower_bound(&reader->blocks[0].last_offset, sizeof(reader->blocks[0]),
			reader->block_count, offset);
	if (b == reader->block_count)
		return KT_ENOTFOUND;
	*block = b;
	return 0;
}

int kt_store_reader_find_time(const struct kt_store_reader *reader, int64_t ts,
			      size_t *block)
{
	/* running_max_ts is non-decreasing, so the first block reaching ts
	 * is the first holding a record at or after ts (segment.md 5.1). */
	size_t b = lower_bound(reader->running_max_ts, sizeof(int64_t), reader->block_count, ts);

	if (b == reader->block_count)
		return KT_ENOTFOUND;
	*block = b;
	return 0;
}

int kt_store_reader_seek_block(struct kt_store_reader *reader, size_t i, char *errstr,
			       size_t errstr_size)
{
	(void)errstr;
	(void)errstr_size;
	reader->peeked = 0;
	reader->cur = NO_BLOCK;
	reader->next_block = i < reader->block_count ? i : reader->block_count;
	return 0;
}

/* Positions on the first record of block b satisfying the predicate: by
 * offset (want_time 0) or by timestamp. */
static int seek_within(struct kt_store_reader *reader, size_t b, int want_time, int64_t key,
		       char *errstr, size_t errstr_size)
{
	int err;

	reader->peeked = 0;
	/* If the block fails to load, next() retries it rather than going
	 * on from wherever the reader was before. */
	reader->next_block = b;
	err = load_block(reader, b, errstr, errstr_size);
	if (err)
		return err;
	while (reader->pos < reader->raw_len) {
		err = parse_record(reader, errstr, errstr_size);
		if (err)
			return err;
		if (want_time ? reader->rec.timestamp >= key : reader->rec.offset >= key) {
			reader->peeked = 1;
			return 0;
		}
	}
	/* The index promised a match in this block; its records disagree. */
	return record_corrupt(reader, "block bounds promise a record its records do not hold",
			      errstr, errstr_size);
}

int kt_store_reader_seek_offset(struct kt_store_reader *reader, int64_t offset,
				char *errstr, size_t errstr_size)
{
	size_t b;

	if (kt_store_reader_find_offset(reader, offset, &b) != 0)
		return kt_store_reader_seek_block(reader, reader->block_count, errstr,
						  errstr_size);
	return seek_within(reader, b, 0, offset, errstr, errstr_size);
}

int kt_store_reader_seek_time(struct kt_store_reader *reader, int64_t ts, char *errstr,
			      size_t errstr_size)
{
	size_t b;

	if (kt_store_reader_find_time(reader, ts, &b) != 0)
		return kt_store_reader_seek_block(reader, reader->block_count, errstr,
						  errstr_size);
	return seek_within(reader, b, 1, ts, errstr, errstr_size);
}

size_t kt_store_reader_current_block(const struct kt_store_reader *reader)
{
	return reader->rec_block;
}

struct kt_store_block *kt_store_reader_hold_block(struct kt_store_reader *reader)
{
	struct kt_store_block *block = reader->raw_blk;

	/* A block stored uncompressed is read in place in the read buffer,
	 * which is not counted: the caller copies those records. */
	if (!block || !reader->raw || reader->raw != block->data)
		return NULL;
	atomic_fetch_add_explicit(&block->refs, 1, memory_order_relaxed);
	return block;
}

void kt_store_reader_stats(const struct kt_store_reader *reader,
			   struct kt_store_read_stats *stats)
{
	*stats = reader->stats;
}

/* ---- verify ----------------------------------------------------------------- */

int kt_store_reader_verify(struct kt_store_reader *reader, uint64_t *bad_blocks,
			   char *errstr, size_t errstr_size)
{
	uint64_t bad = 0;
	int first = 0;
	char msg[512];
	int err;

	for (size_t i = 0; i < reader->block_count; i++) {
		/* Loading checks the block whole, records included. */
		err = load_block(reader, i, msg, sizeof(msg));
		if (err) {
			bad++;
			if (!first) {
				first = err;
				kt_seterr(errstr, errstr_size, err, "%s", msg);
			}
		}
	}
	/* verify leaves the reader at the start of the segment. */
	kt_store_reader_seek_block(reader, 0, NULL, 0);
	if (bad_blocks)
		*bad_blocks = bad;
	if (first)
		return first;
	if (!reader->info.sealed)
		return kt_seterr(errstr, errstr_size, KT_ETRUNCATED,
				 "segment %s is not sealed (torn): %zu whole blocks recovered "
				 "up to byte %llu of %llu", reader->path, reader->block_count,
				 (unsigned long long)(reader->block_count ?
					reader->blocks[reader->block_count - 1].file_offset +
					KT_SEG_BLOCK_HEADER_SIZE +
					reader->blocks[reader->block_count - 1].stored_size :
					reader->header_size),
				 (unsigned long long)reader->file_size);
	/* The index is checked even if this reader was opened without it.
	 * A missing index is not a failure (segment.md 7): it is only an
	 * accelerator, and the segment alone holds the data. */
	if ((reader->flags & KT_STORE_OPEN_NO_INDEX) && !reader->ranged) {
		char ipath[PATH_MAX];
		int64_t *scratch = malloc((reader->block_count ? reader->block_count : 1) *
					  sizeof(*scratch));

		if (!scratch)
			return kt_seterr(errstr, errstr_size, -ENOMEM,
					 "segment %s: out of memory", reader->path);
		reader->index_state = -ENOENT;
		if (kt_store_index_path(reader->path, ipath, sizeof(ipath)) == 0)
			reader->index_state = kt_seg_index_load(
				ipath, reader->blocks, reader->block_count, reader->file_size,
				reader->info.checksum, scratch, reader->index_msg,
				sizeof(reader->index_msg));
		free(scratch);
	}
	if (reader->index_state && reader->index_state != -ENOENT)
		return kt_seterr(errstr, errstr_size, reader->index_state, "%s",
				 reader->index_msg);
	return 0;
}
