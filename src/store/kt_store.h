/*
 * kt_store.h - the one interface header of ktape's store module.
 *
 * The store turns records into compressed, indexed, checksummed segment
 * files, reads them back, and keeps them in a backup repository of
 * snapshots.  Its on-disk format is specified normatively in format/; this
 * header only describes the API.  The store never links librdkafka.
 *
 * Ownership: every *_create or *_open has a matching *_destroy that accepts
 * NULL.  Pointers returned by accessors are owned by the object they came
 * from and stay valid until it is destroyed, unless a comment says less.
 * Errors: 0 or a negative code (-errno or KT_E*), with a sentence in errstr
 * naming the file, block and byte offset where there is one.
 */
#ifndef KT_STORE_H
#define KT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "kt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================
 * Records
 * ====================================================================== */

/* Timestamp types, as Kafka defines them. */
enum kt_ts_type {
	KT_TS_CREATE = 0,     /* CreateTime, set by the producer */
	KT_TS_LOG_APPEND = 1, /* LogAppendTime, set by the broker */
	KT_TS_NONE = 2,       /* no timestamp (pre-0.10 message format) */
};

/* A record header.  Kafka header names are never null; values may be. */
struct kt_header {
	const char *name;  /* not NUL-terminated; non-NULL even when empty */
	size_t name_len;
	const void *value; /* NULL: a null value (distinct from empty) */
	size_t value_len;
};

/* A record as the store sees it: a view, never owning its bytes.
 * Null and empty are different: key == NULL is a null key, key != NULL with
 * key_len == 0 is an empty key; likewise value (NULL = tombstone). */
struct kt_record {
	int64_t offset;
	int64_t timestamp; /* milliseconds since the epoch */
	int ts_type;       /* enum kt_ts_type */
	const void *key;
	size_t key_len;
	const void *value;
	size_t value_len;
	const struct kt_header *headers; /* in order; duplicates allowed */
	size_t header_count;
};

/* Record field limits the format guarantees to round-trip. */
#define KT_STORE_MAX_TOPIC_LEN 249    /* Kafka's own limit */
#define KT_STORE_MAX_RECORD_SIZE (1u << 30) /* encoded record, 1 GiB */

/* ======================================================================
 * Segment files (format/segment.md)
 * ====================================================================== */

enum kt_codec {
	KT_CODEC_NONE = 0,
	KT_CODEC_ZSTD = 1,
};

enum kt_io_backend {
	KT_IO_AUTO = 0,   /* io_uring when the kernel allows it, else pwrite */
	KT_IO_URING = 1,  /* io_uring only; fails with -ENOSYS/-EPERM if absent */
	KT_IO_PWRITE = 2, /* plain pwritev(2) */
	KT_IO_S3 = 3,     /* chosen by the path alone: an s3:// object URL is
			   * written by multipart upload (format/object-storage.md) */
};

/* Returns "io_uring", "pwrite" or "auto". */
const char *kt_store_io_backend_name(int backend);

struct kt_store_writer_opts {
	int codec;                 /* enum kt_codec; default KT_CODEC_ZSTD */
	int level;                 /* zstd level; default 3 */
	size_t block_size;         /* raw bytes that close a block; default 1 MiB.
				    * A larger record gets a block of its own. */
	unsigned blocks_in_flight; /* writes queued at once; default 4 */
	int io_backend;            /* enum kt_io_backend; default KT_IO_AUTO */
	unsigned file_mode;        /* permission bits of new files; default 0600 */
	const struct kt_log *log;  /* may be NULL */
};

/* Fills opts with the defaults above. */
void kt_store_writer_opts_init(struct kt_store_writer_opts *opts);

/* One block as the seek table and index describe it. */
struct kt_store_block_info {
	uint64_t file_offset; /* of the block header within the segment */
	uint32_t stored_size; /* payload bytes on disk */
	uint32_t raw_size;    /* payload bytes after decompression */
	uint32_t record_count;
	uint32_t codec;       /* enum kt_codec */
	int64_t first_offset;
	int64_t last_offset;
	int64_t min_ts;
	int64_t max_ts;
	uint64_t checksum;    /* XXH3-64 of the stored payload */
};

/* A whole segment, as its footer (or a recovery scan) describes it. */
struct kt_store_segment_info {
	char topic[KT_STORE_MAX_TOPIC_LEN + 1];
	int32_t partition;
	uint64_t block_count;
	uint64_t record_count;
	uint64_t raw_bytes;   /* sum of the blocks' raw payload sizes */
	uint64_t file_size;
	int64_t first_offset; /* of the first record; -1 if the segment is empty */
	int64_t last_offset;  /* of the last record; -1 if empty */
	int64_t min_ts;       /* INT64_MAX if empty */
	int64_t max_ts;       /* INT64_MIN if empty */
	uint64_t checksum;    /* XXH3-64 of the seek table: names the content */
	int sealed;           /* 0: recovered from a torn (unsealed) file */
	int io_backend;       /* writer only: the back end actually used */
};

struct kt_store_writer;

/* Creates a new segment file at path (which must not exist) for the records
 * of one topic partition.  Records must then be appended in strictly
 * increasing offset order; gaps are allowed. */
int kt_store_writer_create(struct kt_store_writer **out, const char *path,
			   const char *topic, int32_t partition,
			   const struct kt_store_writer_opts *opts,
			   char *errstr, size_t errstr_size);

/* Appends one record.  The record's bytes are copied before return.  Full
 * blocks are compressed (by the writer's own worker thread), checksummed
 * and queued for writing; memory stays bounded by (blocks_in_flight + 3) x
 * max(block size, largest record).  An I/O error of an earlier block is
 * returned by a later append or by seal.  One writer is used by one thread
 * at a time. */
int kt_store_writer_append(struct kt_store_writer *writer,
			   const struct kt_record *rec,
			   char *errstr, size_t errstr_size);

/* Raw bytes appended so far, to decide when to roll to a new segment. */
uint64_t kt_store_writer_raw_bytes(const struct kt_store_writer *writer);

/* Seals the segment: closes the open block, waits for every write, writes
 * the seek table and footer, fdatasyncs, writes the index file (path with
 * ".kts" replaced by ".kti") by temp file + rename, and fsyncs the
 * directory.  On success fills info (may be NULL).  After seal only destroy
 * is allowed. */
int kt_store_writer_seal(struct kt_store_writer *writer,
			 struct kt_store_segment_info *info,
			 char *errstr, size_t errstr_size);

/* Frees the writer.  An unsealed segment is abandoned: its file is removed,
 * since nothing can reference it. NULL is accepted. */
void kt_store_writer_destroy(struct kt_store_writer *writer);

/* Returns the index path for a segment path (".kts" -> ".kti") in buf. */
int kt_store_index_path(const char *segment_path, char *buf, size_t buf_size);

struct kt_store_reader;

enum kt_store_open_flags {
	/* Accept a segment without a valid footer (torn by a crash): scan its
	 * blocks from the start and keep every whole, valid one. */
	KT_STORE_OPEN_RECOVER = 1u << 0,
	/* Ignore the .kti index even if present; use the segment's footer. */
	KT_STORE_OPEN_NO_INDEX = 1u << 1,
};

/* Opens a segment for reading.  Validates magic, version, header and footer
 * checksums.  Without KT_STORE_OPEN_RECOVER a torn file is KT_ETRUNCATED. */
int kt_store_reader_open(struct kt_store_reader **out, const char *path,
			 unsigned flags, char *errstr, size_t errstr_size);
/* Opens a segment stored as length bytes at offset of the file at path (an
 * uncompressed archive read in place).  name is what errors call it.  No
 * index file is used or checked: the segment's own seek table serves. */
int kt_store_reader_open_range(struct kt_store_reader **out, const char *path,
			       uint64_t offset, uint64_t length, const char *name,
			       unsigned flags, char *errstr, size_t errstr_size);
void kt_store_reader_destroy(struct kt_store_reader *reader);

const struct kt_store_segment_info *
kt_store_reader_info(const struct kt_store_reader *reader);

/* Block i's description, or NULL when i >= block_count. */
const struct kt_store_block_info *
kt_store_reader_block(const struct kt_store_reader *reader, size_t i);

/* Index lookups; neither reads a block.
 * find_offset: the first block whose last_offset >= offset.
 * find_time: the first block (in offset order) holding a record with
 *   timestamp >= ts, found through the running maximum of max_ts, which is
 *   monotonic even though Kafka timestamps are not.
 * Both return 0 and set *block, or KT_ENOTFOUND when no block qualifies. */
int kt_store_reader_find_offset(const struct kt_store_reader *reader,
				int64_t offset, size_t *block);
int kt_store_reader_find_time(const struct kt_store_reader *reader,
			      int64_t ts, size_t *block);

/* Positioning: the next kt_store_reader_next() returns
 *   seek_block:  block i's first record;
 *   seek_offset: the first record with offset >= offset;
 *   seek_time:   the first record, in offset order, with timestamp >= ts.
 * Seeking past the end is not an error: next() then returns 0. */
int kt_store_reader_seek_block(struct kt_store_reader *reader, size_t i,
			       char *errstr, size_t errstr_size);
int kt_store_reader_seek_offset(struct kt_store_reader *reader, int64_t offset,
				char *errstr, size_t errstr_size);
int kt_store_reader_seek_time(struct kt_store_reader *reader, int64_t ts,
			      char *errstr, size_t errstr_size);

/* Returns 1 and sets *rec to the next record, 0 at the end of the segment,
 * or a negative code.  Each block's checksum is verified when it is loaded.
 * *rec and every pointer in it point into the decompressed block (zero
 * copy) and stay valid until the next call on this reader. */
int kt_store_reader_next(struct kt_store_reader *reader,
			 const struct kt_record **rec,
			 char *errstr, size_t errstr_size);

/* Index of the block the last returned record came from. */
size_t kt_store_reader_current_block(const struct kt_store_reader *reader);

/* A reference to the buffer holding the block the last returned record
 * came from, so that the views into it (keys, values, header names and
 * values of that block's records) stay valid after the reader moves on or
 * is destroyed, until kt_store_block_release().  Lets a producer send
 * values without copying them (restore).  NULL when the block was stored
 * uncompressed: its records are views into the reader's read buffer, which
 * the next block overwrites, so the caller must copy them.  A reader whose
 * block is held decompresses the next one into a new buffer. */
struct kt_store_block;
struct kt_store_block *kt_store_reader_hold_block(struct kt_store_reader *reader);
/* Drops one reference; the last frees the buffer.  Any thread; NULL is
 * ignored. */
void kt_store_block_release(struct kt_store_block *block);

/* Counters of the work a reader did, so tests and benchmarks can prove that
 * a window read touched only the blocks it needed. */
struct kt_store_read_stats {
	uint64_t blocks_loaded;
	uint64_t stored_bytes_read;
	uint64_t raw_bytes_decoded;
};
void kt_store_reader_stats(const struct kt_store_reader *reader,
			   struct kt_store_read_stats *stats);

/* Checks everything about a segment: every block checksum, decompression,
 * record structure, offsets strictly increasing and inside each block's
 * [first, last], counts and timestamp bounds matching the headers, the seek
 * table matching the blocks, and the index file (if any) matching the
 * segment.  Returns 0 when clean; otherwise the first problem's code with
 * file, block and byte offset in errstr, and *bad_blocks counts the blocks
 * found damaged (may be NULL).  In the order of format/segment.md 7: a
 * damaged block (KT_ECORRUPT), then a recovered, unsealed segment
 * (KT_ETRUNCATED), then the index: a newer version is KT_EVERSION, damaged
 * or bound to other content KT_ECORRUPT ("index ... does not match" /
 * "is damaged"), never counted in *bad_blocks; a missing index is not a
 * failure.  Leaves the reader positioned at the start of the segment. */
int kt_store_reader_verify(struct kt_store_reader *reader, uint64_t *bad_blocks,
			   char *errstr, size_t errstr_size);

/* Rebuilds the index file of a segment from the segment alone (its footer
 * and seek table).  Written by temp file + rename.  A torn segment has no
 * valid index (format/segment.md 5): it gives KT_ETRUNCATED. */
int kt_store_index_rebuild(const char *segment_path, unsigned file_mode,
			   char *errstr, size_t errstr_size);

/* ======================================================================
 * Repository and snapshot manifests (format/repository.md)
 * ====================================================================== */

#define KT_STORE_REPO_VERSION 1

enum kt_store_snapshot_kind {
	KT_SNAPSHOT_FULL = 0,        /* every partition captured from its log start */
	KT_SNAPSHOT_INCREMENTAL = 1, /* continues a parent snapshot */
	KT_SNAPSHOT_PARTIAL = 2,     /* interrupted: some partitions incomplete */
};

/* A segment as a manifest references it. */
struct kt_store_segref {
	char *path; /* relative to the repository root */
	int64_t first_offset;
	int64_t last_offset;
	int64_t min_ts;
	int64_t max_ts;
	uint64_t records;
	uint64_t raw_bytes;
	uint64_t file_size;
	uint64_t checksum; /* kt_store_segment_info.checksum */
};

/* Offsets [from, to) that exist(ed) in Kafka but are not in the backup
 * because retention deleted them before they were captured. */
struct kt_store_gap {
	int64_t from;
	int64_t to;
	char *reason; /* e.g. "retention" */
};

struct kt_store_partition {
	int32_t partition;
	int64_t log_start_offset; /* in Kafka when this snapshot began */
	int64_t start_offset;     /* first offset this snapshot's chain covers */
	int64_t end_offset;       /* exclusive: captured up to here */
	uint64_t records;
	uint64_t raw_bytes;
	int64_t min_ts;           /* INT64_MAX when no records */
	int64_t max_ts;           /* INT64_MIN when no records */
	int complete;             /* 0: a partial snapshot stopped short */
	size_t segment_count;
	struct kt_store_segref *segments; /* in offset order, whole chain */
	size_t gap_count;
	struct kt_store_gap *gaps;
};

struct kt_store_config_entry {
	char *name;
	char *value; /* NULL for a config whose value is null or secret */
};

struct kt_store_topic {
	char *name;
	int32_t partition_count;    /* in Kafka */
	int32_t replication_factor; /* -1 when unknown */
	int configs_available;      /* 0: the broker could not describe them */
	size_t config_count;
	struct kt_store_config_entry *configs;
	size_t n_partitions;
	struct kt_store_partition *partitions; /* sorted by partition */
};

struct kt_store_group_offset {
	char *group;
	char *topic;
	int32_t partition;
	int64_t offset;  /* the committed offset: next record to consume */
	char *metadata;  /* may be NULL */
};

/* A snapshot manifest in memory: plain data, owned by the snapshot.  Build
 * it with the helpers below (which copy strings) or fill fields directly. */
struct kt_store_snapshot {
	char id[64];     /* assigned at commit when empty */
	char parent[64]; /* "" for a full snapshot */
	int kind;        /* enum kt_store_snapshot_kind */
	int64_t started_ms;
	int64_t completed_ms;
	char *source;    /* bootstrap servers; never credentials */
	char *tool_version;
	size_t topic_count;
	struct kt_store_topic *topics;
	size_t group_offset_count;
	struct kt_store_group_offset *group_offsets;
};

struct kt_store_snapshot *kt_store_snapshot_create(void);
void kt_store_snapshot_destroy(struct kt_store_snapshot *snap);

/* Builders.  They copy their string arguments.  A returned pointer stays
 * valid only until the next add to the same array (it may be realloc'd).
 * NULL means out of memory (add_partition: or the partition is present).
 * add_partition keeps partitions sorted and starts one with min_ts
 * INT64_MAX, max_ts INT64_MIN, complete 1; add_segment adds the segment's
 * records, raw_bytes and timestamp bounds into the partition's totals (the
 * manifest requires them to be the sums); add_config sets
 * configs_available (set it by hand for a topic with no configs to list). */
struct kt_store_topic *kt_store_snapshot_add_topic(struct kt_store_snapshot *snap,
						   const char *name,
						   int32_t partition_count,
						   int32_t replication_factor);
int kt_store_topic_add_config(struct kt_store_topic *topic, const char *name,
			      const char *value);
struct kt_store_partition *kt_store_topic_add_partition(struct kt_store_topic *topic,
							int32_t partition);
int kt_store_partition_add_segment(struct kt_store_partition *part,
				   const struct kt_store_segref *ref);
int kt_store_partition_add_gap(struct kt_store_partition *part, int64_t from,
			       int64_t to, const char *reason);
int kt_store_snapshot_add_group_offset(struct kt_store_snapshot *snap,
				       const char *group, const char *topic,
				       int32_t partition, int64_t offset,
				       const char *metadata);

/* Lookups; NULL when absent. */
const struct kt_store_topic *kt_store_snapshot_find_topic(const struct kt_store_snapshot *snap,
							  const char *name);
const struct kt_store_partition *kt_store_topic_find_partition(const struct kt_store_topic *topic,
							       int32_t partition);

/* Manifest JSON (format/repository.md).  to_json returns a malloc'd,
 * NUL-terminated string the caller frees.  Both directions apply the rules
 * of repository.md section 4.5 and name the offending field in errstr, so
 * a manifest that could be written can always be read back. */
int kt_store_snapshot_to_json(const struct kt_store_snapshot *snap, char **out,
			      char *errstr, size_t errstr_size);
int kt_store_snapshot_from_json(const char *json, size_t len,
				struct kt_store_snapshot **out,
				char *errstr, size_t errstr_size);

struct kt_store_repo;

enum kt_store_repo_flags {
	KT_STORE_REPO_CREATE = 1u << 0, /* create the repository if absent */
	KT_STORE_REPO_LOCK = 1u << 1,   /* take the writer lock (KT_ELOCKED) */
};

/* Opens (or creates) a repository.  A repository marker with a newer
 * format version is refused with KT_EVERSION.  mode is the permission bits
 * of files it creates (0600 by default when 0; directories get +x).
 * path may also name an uncompressed snapshot archive (ktape export
 * --compress none): it opens as a read-only repository holding that one
 * snapshot, read in place (flags must be 0; a compressed archive gives
 * KT_EUNSUPPORTED, saying to import it first). */
int kt_store_repo_open(struct kt_store_repo **out, const char *path,
		       unsigned flags, unsigned mode,
		       char *errstr, size_t errstr_size);
/* Releases the lock if held, frees the handle.  NULL accepted. */
void kt_store_repo_destroy(struct kt_store_repo *repo);

const char *kt_store_repo_path(const struct kt_store_repo *repo);
unsigned kt_store_repo_mode(const struct kt_store_repo *repo);

/* Takes the writer lock if not already held.  A lock left by a dead process
 * is detected and taken over; a live holder gives KT_ELOCKED with its pid. */
int kt_store_repo_lock(struct kt_store_repo *repo, char *errstr, size_t errstr_size);

/* Allocates a fresh, unique path for a new segment of topic/partition whose
 * first record is first_offset, creating directories.  rel gets the path
 * relative to the repository (for manifests), abs the absolute one.  Topic
 * names are encoded so that no name can escape the repository. */
int kt_store_repo_new_segment_path(struct kt_store_repo *repo, const char *topic,
				   int32_t partition, int64_t first_offset,
				   char *rel, size_t rel_size, char *abs, size_t abs_size,
				   char *errstr, size_t errstr_size);

/* Joins a repository-relative path onto the root, refusing absolute paths
 * and any ".." component with KT_ECORRUPT. */
int kt_store_repo_abs_path(const struct kt_store_repo *repo, const char *rel,
			   char *abs, size_t abs_size);

/* Opens the segment at repository-relative path rel for reading, from the
 * directory or from the archive the repository was opened from. */
int kt_store_repo_open_segment(struct kt_store_repo *repo, const char *rel, unsigned flags,
			       struct kt_store_reader **out, char *errstr, size_t errstr_size);

/* Snapshot ids, newest first.  Free with kt_store_strv_free(). */
int kt_store_repo_list_snapshots(struct kt_store_repo *repo, char ***ids, size_t *count,
				 char *errstr, size_t errstr_size);
void kt_store_strv_free(char **v, size_t count);

/* Loads a manifest by id; id NULL or "latest" means the newest. */
int kt_store_repo_load_snapshot(struct kt_store_repo *repo, const char *id,
				struct kt_store_snapshot **out,
				char *errstr, size_t errstr_size);

/* The commit point of a snapshot: assigns snap->id if empty (sortable by
 * time), writes the manifest to a temp file, fsyncs, renames, fsyncs the
 * directory.  Before this returns 0 the snapshot does not exist.  Requires
 * the writer lock. */
int kt_store_repo_commit_snapshot(struct kt_store_repo *repo,
				  struct kt_store_snapshot *snap,
				  char *errstr, size_t errstr_size);

/* Source offsets [source_offset, source_offset + count) of a partition were
 * written at target offsets [target_offset, target_offset + count): the
 * unit of a restore's offset map (format/restore.md section 4), read by
 * src/replay and compared through by `ktape diff --restore` (src/capture). */
struct kt_store_offset_run {
	int64_t source_offset;
	int64_t target_offset;
	uint64_t count;
};

/* ----------------------------------------------------------------------
 * Small files beside the snapshots (capture plans, progress records): one
 * interface whatever holds the repository, so that code outside repo.c
 * never builds a path and opens it itself.  rel is repository-relative
 * ("plans/ID/plan.json"); absolute paths and ".." components are refused
 * with KT_ECORRUPT.
 * ---------------------------------------------------------------------- */

enum kt_store_put_flags {
	/* Fail with KT_EEXIST, leaving the existing file untouched, when rel
	 * already exists.  Atomic against other processes: two writers racing
	 * to create the same file see exactly one success. */
	KT_STORE_PUT_IF_ABSENT = 1u << 0,
};

/* Reads rel whole into a malloc'd, NUL-terminated buffer the caller frees.
 * A file larger than max is refused with KT_ECORRUPT; an absent one is
 * KT_ENOTFOUND. */
int kt_store_repo_read_file(struct kt_store_repo *repo, const char *rel, size_t max,
			    char **out, size_t *out_len, char *errstr, size_t errstr_size);

/* Writes rel atomically and durably (readers see all of it or none):
 * creates missing parent directories, writes a temp file, fsyncs it, then
 * renames it into place (or links it, for KT_STORE_PUT_IF_ABSENT) and
 * fsyncs the directory.  Does not need the writer lock: callers that share
 * a repository between processes coordinate through KT_STORE_PUT_IF_ABSENT. */
int kt_store_repo_write_file(struct kt_store_repo *repo, const char *rel,
			     const void *buf, size_t len, unsigned flags,
			     char *errstr, size_t errstr_size);

/* The names of the regular files directly inside directory rel, sorted
 * ascending (free with kt_store_strv_free()).  An absent directory has no
 * files: 0 with *count 0.  Names starting with '.' and temp files left by
 * an interrupted kt_store_repo_write_file() are not listed. */
int kt_store_repo_list_files(struct kt_store_repo *repo, const char *rel,
			     char ***names, size_t *count, char *errstr, size_t errstr_size);

/* Removes file rel; an absent file is not an error.  With the parent
 * directory fsynced, so the removal survives a crash. */
int kt_store_repo_remove_file(struct kt_store_repo *repo, const char *rel,
			      char *errstr, size_t errstr_size);

/* Removes directory rel with every regular file directly inside it,
 * including temp files that an interrupted kt_store_repo_write_file() left
 * (a killed process's), then the directory itself; an absent directory is
 * not an error, nor is another process removing it at the same time.  For
 * directories whose users are all done with them, such as a finished
 * workers plan's progress records. */
int kt_store_repo_remove_dir(struct kt_store_repo *repo, const char *rel,
			     char *errstr, size_t errstr_size);

/* ----------------------------------------------------------------------
 * Capture plans of a workers group (format/repository.md section 8): the
 * snapshot a group of `ktape capture --workers-group` processes is taking
 * together, fixed once by the first of them, and the create-once progress
 * records through which they share the work.  Encoding and layout live in
 * plan.c; capture decides when to write what.
 * ---------------------------------------------------------------------- */

/* One partition the plan captures: offsets [from, end). */
struct kt_store_plan_part {
	char *topic;
	int32_t partition;
	int64_t from; /* first offset this snapshot fetches */
	int64_t end;  /* exclusive end fixed by the plan */
};

struct kt_store_plan {
	char id[64];         /* the snapshot id the plan commits */
	char group[256];     /* the workers group (Kafka consumer group) */
	int64_t created_ms;
	char *creator;       /* "<host> <pid>" of the worker that made it */
	/* The manifest without this snapshot's new segments: topics, configs,
	 * group offsets, the parent's chains and gaps, end offsets.  Owned. */
	struct kt_store_snapshot *manifest;
	size_t part_count;
	struct kt_store_plan_part *parts; /* in manifest order */
};

enum kt_store_plan_record_kind {
	KT_PLAN_RECORD_SEGMENT = 0, /* a sealed segment covers [from, to) */
	KT_PLAN_RECORD_EMPTY = 1,   /* Kafka served no record in [from, to) */
	KT_PLAN_RECORD_GAP = 2,     /* retention deleted [from, to) first */
};

/* One progress record: the range [from, to) of plan part `part` done. */
struct kt_store_plan_record {
	size_t part;
	int64_t from;
	int64_t to;
	int kind; /* enum kt_store_plan_record_kind */
	struct kt_store_segref segment; /* KT_PLAN_RECORD_SEGMENT only; path owned */
};

/* A plan with no parts and an empty manifest; NULL when out of memory. */
struct kt_store_plan *kt_store_plan_create(void);
void kt_store_plan_destroy(struct kt_store_plan *plan);
/* Appends a part (copies topic); -ENOMEM. */
int kt_store_plan_add_part(struct kt_store_plan *plan, const char *topic, int32_t partition,
			   int64_t from, int64_t end);

/* JSON both ways, validated as repository.md section 8 says (naming the
 * field at fault); to_json returns a malloc'd string the caller frees. */
int kt_store_plan_to_json(const struct kt_store_plan *plan, char **out,
			  char *errstr, size_t errstr_size);
int kt_store_plan_from_json(const char *json, size_t len, struct kt_store_plan **out,
			    char *errstr, size_t errstr_size);

/* A fresh snapshot id (repository.md section 3) that sorts after every
 * snapshot of the repository; id must hold 64 bytes. */
int kt_store_plan_new_id(struct kt_store_repo *repo, char *id, char *errstr, size_t errstr_size);

/* Writes plans/<id>.json create-once: KT_EEXIST when it exists. */
int kt_store_plan_write(struct kt_store_repo *repo, const struct kt_store_plan *plan,
			char *errstr, size_t errstr_size);
/* The ids of the live plans, ascending (free with kt_store_strv_free()). */
int kt_store_plan_list(struct kt_store_repo *repo, char ***ids, size_t *count,
		       char *errstr, size_t errstr_size);
/* Loads plans/<id>.json; KT_ENOTFOUND when absent. */
int kt_store_plan_load(struct kt_store_repo *repo, const char *id, struct kt_store_plan **out,
		       char *errstr, size_t errstr_size);
/* Removes a plan: its progress records first, the plan last, so that a
 * removal cut short leaves a plan that can be removed again. */
int kt_store_plan_remove(struct kt_store_repo *repo, const char *id,
			 char *errstr, size_t errstr_size);

/* The progress records of one plan, as far as they were read.  Records are
 * immutable once written, so refresh reads only names it has not seen. */
struct kt_store_plan_progress;

/* plan must outlive the progress. */
int kt_store_plan_progress_create(struct kt_store_plan_progress **out,
				  const struct kt_store_plan *plan);
void kt_store_plan_progress_destroy(struct kt_store_plan_progress *progress);
/* Reads the records written since the last refresh (by any process). */
int kt_store_plan_progress_refresh(struct kt_store_repo *repo, struct kt_store_plan_progress *progress,
				   char *errstr, size_t errstr_size);
/* Where part's chain of records ends: the plan's from when nothing was
 * recorded, its end (or beyond) once the part is complete. */
int64_t kt_store_plan_progress_position(const struct kt_store_plan_progress *progress, size_t part);
/* Parts whose chain has not reached their end. */
size_t kt_store_plan_progress_remaining(const struct kt_store_plan_progress *progress);
/* Records rec create-once as plans/<id>/<part>-<from>.json.  KT_EEXIST
 * when a record for that part and from offset exists already: another
 * worker recorded the range first, and rec must be discarded.  A record
 * whose from is not the part's current position is refused (KT_ERANGE).
 * On success rec's segment path is copied into the progress. */
int kt_store_plan_progress_record(struct kt_store_repo *repo, struct kt_store_plan_progress *progress,
				  const struct kt_store_plan_record *rec,
				  char *errstr, size_t errstr_size);
/* The snapshot manifest of a complete plan: the plan's manifest with each
 * part's recorded segments and gaps appended, completed_ms set, kind full
 * or incremental.  KT_ERANGE (naming a partition) while parts remain. */
int kt_store_plan_build_manifest(const struct kt_store_plan_progress *progress, int64_t completed_ms,
				 struct kt_store_snapshot **out, char *errstr, size_t errstr_size);
/* Commits a manifest with create-once semantics as snapshots/<id>.json
 * (no writer lock needed): KT_EEXIST when that snapshot exists. */
int kt_store_plan_commit(struct kt_store_repo *repo, const struct kt_store_snapshot *snap,
			 char *errstr, size_t errstr_size);

/* ======================================================================
 * Scans: the records of one partition of a snapshot, across its segments,
 * restricted to an offset and time window through the indexes.
 * ====================================================================== */

struct kt_store_range {
	int64_t from_offset; /* inclusive; INT64_MIN for no bound */
	int64_t to_offset;   /* exclusive; INT64_MAX for no bound */
	int64_t from_time;   /* inclusive, ms; INT64_MIN for no bound */
	int64_t to_time;     /* exclusive, ms; INT64_MAX for no bound */
};

/* Sets every bound of range to "unbounded". */
void kt_store_range_init(struct kt_store_range *range);

struct kt_store_scan;

/* The repository and partition must outlive the scan. range may be NULL. */
int kt_store_scan_create(struct kt_store_scan **out, struct kt_store_repo *repo,
			 const struct kt_store_partition *part,
			 const struct kt_store_range *range,
			 char *errstr, size_t errstr_size);
/* Like kt_store_reader_next(), over the whole partition, yielding only the
 * records inside the range, in offset order, and skipping through the index
 * every block whose offset or timestamp bounds miss the range. */
int kt_store_scan_next(struct kt_store_scan *scan, const struct kt_record **rec,
		       char *errstr, size_t errstr_size);
/* Blocks and bytes read so far, summed over the segments opened.
 * blocks_total (may be NULL) counts the blocks of the segments opened;
 * segments skipped by their manifest bounds are neither opened nor counted. */
void kt_store_scan_stats(const struct kt_store_scan *scan,
			 struct kt_store_read_stats *stats, uint64_t *blocks_total);
/* kt_store_reader_hold_block() for the record kt_store_scan_next()
 * returned last; NULL before the first or after the end. */
struct kt_store_block *kt_store_scan_hold_block(struct kt_store_scan *scan);
void kt_store_scan_destroy(struct kt_store_scan *scan);

/* ======================================================================
 * Repository maintenance: verify, prune, export/import (format/archive.md)
 * ====================================================================== */

/* One problem found by kt_store_repo_verify().  Strings are valid only
 * during the callback. */
struct kt_store_verify_problem {
	const char *snapshot;  /* first snapshot affected ("" for orphans) */
	size_t snapshots_affected;
	const char *topic;
	int32_t partition;
	const char *path;      /* segment path relative to the repository */
	int64_t block;         /* block number, -1 when not about one block */
	uint64_t file_offset;  /* byte offset of the structure at fault */
	uint64_t records_affected;
	int code;              /* KT_ECORRUPT, KT_ETRUNCATED, -ENOENT, ... */
	const char *message;   /* a sentence naming what is wrong */
	/* Every snapshot affected (snapshots_affected ids), newest first;
	 * snapshot is the first of them. */
	const char *const *snapshot_ids;
};

struct kt_store_verify_opts {
	unsigned threads;      /* 0: one per core */
	int repair;            /* rebuild missing or damaged index files */
	const struct kt_log *log;
	/* Called once per problem, from any thread but never concurrently. */
	void (*on_problem)(void *opaque, const struct kt_store_verify_problem *problem);
	void *opaque;
};

struct kt_store_verify_result {
	uint64_t snapshots;
	uint64_t segments;
	uint64_t blocks;
	uint64_t records;
	uint64_t stored_bytes;
	uint64_t raw_bytes;
	uint64_t problems;
	uint64_t records_affected;
	uint64_t indexes_repaired;
	double seconds;
};

/* Verifies the given snapshots (all when ids is NULL): every segment they
 * reference is read block by block (checksums, structure, offsets), compared
 * with its manifest entry and its index, and every partition's chain is
 * checked for continuity (segments in order, inside [start, end), gaps
 * within range).  Each segment is verified once however many snapshots
 * share it, in parallel.  Returns 0 when clean, KT_ECORRUPT when problems
 * were found (each reported through on_problem), or another negative code
 * when verification itself could not run. */
int kt_store_repo_verify(struct kt_store_repo *repo, char *const *ids, size_t id_count,
			 const struct kt_store_verify_opts *opts,
			 struct kt_store_verify_result *result,
			 char *errstr, size_t errstr_size);

struct kt_store_prune_policy {
	unsigned keep_last;   /* newest N snapshots */
	unsigned keep_daily;  /* newest snapshot of each of the last N days (UTC) */
	unsigned keep_weekly; /* newest snapshot of each of the last N ISO weeks */
	int dry_run;
};

struct kt_store_prune_result {
	size_t snapshots_kept;
	size_t snapshots_pinned;   /* kept only because an unfinished restore
				    * in REPO/restores reads them */
	size_t snapshots_removed;
	size_t segments_removed;   /* unreferenced segments (and their indexes) */
	uint64_t bytes_freed;
	char **removed_ids;        /* owned by the result; kt_store_prune_result_clear() */
	size_t removed_count;
};

/* Applies a retention policy: removes the manifests it does not keep (each
 * removal atomic), fsyncs, then deletes every segment no remaining manifest
 * references, plus temp files.  A snapshot that an unfinished restore
 * recorded in REPO/restores (format/restore.md) is kept whatever the
 * policy says, so the restore can still resume.  Killed at any moment, every remaining
 * snapshot still verifies.  Requires the writer lock. */
int kt_store_repo_prune(struct kt_store_repo *repo,
			const struct kt_store_prune_policy *policy,
			struct kt_store_prune_result *result,
			char *errstr, size_t errstr_size);
void kt_store_prune_result_clear(struct kt_store_prune_result *result);

/* libarchive's version string ("libarchive 3.6.2"), loading the library
 * (archive.c loads it on first use); a fixed text if it cannot be loaded. */
const char *kt_store_archive_version(void);

enum kt_store_archive_compression {
	KT_ARCHIVE_NONE = 0, /* plain tar: segments can be read in place */
	KT_ARCHIVE_ZSTD = 1,
	KT_ARCHIVE_GZIP = 2,
};

/* Writes a self-contained tar archive of one snapshot (marker, manifest,
 * every segment and index it references) to fd (a file or a pipe). */
int kt_store_repo_export(struct kt_store_repo *repo, const char *id, int fd,
			 int compression, char *errstr, size_t errstr_size);

/* Imports a snapshot archive into the repository: refuses entries that are
 * absolute, contain "..", are links or devices, or are not part of the
 * format; writes segments first and the manifest last (the commit point).
 * The imported snapshot id is written to id_out (>= 64 bytes) if not NULL. */
int kt_store_repo_import(struct kt_store_repo *repo, int fd, char *id_out,
			 char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif

#endif /* KT_STORE_H */
