/*
 * repo_priv.h - private to src/store: what repo.c and manifest.c share.
 */
#ifndef KT_STORE_REPO_PRIV_H
#define KT_STORE_REPO_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "kt_store.h"

/* Nonzero if id can be a snapshot id (format/repository.md section 3): 1 to
 * 63 bytes of [A-Za-z0-9._-], not starting with '.', so that "<id>.json"
 * can only ever name a file inside snapshots/. */
int kt_store_snapshot_id_valid(const char *id);

/* An uncompressed snapshot archive (format/archive.md) opened in place as a
 * read-only repository (archive.c): its entries are indexed by name, and
 * segments are read as byte ranges of the tar file. */
struct kt_store_tar;

/* Indexes the archive at path.  A compressed archive is refused with
 * KT_EUNSUPPORTED (import it first, or export with --compress none). */
int kt_store_tar_open(struct kt_store_tar **out, const char *path, char *errstr, size_t errstr_size);
void kt_store_tar_destroy(struct kt_store_tar *tar);
/* The id of the one snapshot the archive holds. */
const char *kt_store_tar_snapshot_id(const struct kt_store_tar *tar);
/* Reads the snapshot manifest into a malloc'd, NUL-terminated buffer. */
int kt_store_tar_read_manifest(const struct kt_store_tar *tar, char **out, size_t *len,
			       char *errstr, size_t errstr_size);
/* The archive behind a repository opened from a .tar, else NULL (repo.c). */
struct kt_store_tar *kt_store_repo_tar(const struct kt_store_repo *repo);

/* A fresh snapshot id (format/repository.md section 3) that sorts after
 * every snapshot of the repository, even if the clock stepped back (repo.c):
 * the id of a commit, and of a workers group's plan. */
int kt_store_repo_new_snapshot_id(struct kt_store_repo *repo, char *id, size_t id_size,
				  char *errstr, size_t errstr_size);

/* Reads a whole regular file of at most max bytes (else KT_ECORRUPT) into a
 * malloc'd, NUL-terminated buffer; KT_ENOTFOUND when absent (files.c). */
int kt_store_read_whole_file(const char *path, size_t max, char **out, size_t *out_len,
			     char *errstr, size_t errstr_size);

/* Checks len bytes of an index (read by the caller, from a file or an
 * object) against the segment's blocks, size and checksum, exactly as
 * kt_seg_index_load() does after reading index_path (which names it in
 * errors); fills running_max_ts.  0, or KT_EVERSION / KT_ECORRUPT (index.c). */
int kt_store_index_check(const char *index_path, const uint8_t *data, size_t len,
			 const struct kt_store_block_info *blocks, size_t n,
			 uint64_t segment_file_size, uint64_t segment_checksum,
			 int64_t *running_max_ts, char *errstr, size_t errstr_size);

#endif /* KT_STORE_REPO_PRIV_H */
