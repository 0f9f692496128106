/*
 * offsetmap_priv.h - the offset map of a restore (format/restore.md
 * section 4): for each target partition, runs of records whose source and
 * target offsets both advance by one.  Private to src/replay.
 *
 * The map is built in delivery order: Kafka acknowledges the records of one
 * partition in the order they were sent, so appending (source, target)
 * pairs as acknowledgements arrive keeps each section's target offsets
 * increasing.  Memory is one run per stretch, not one entry per record.
 */
#ifndef KT_REPLAY_OFFSETMAP_PRIV_H
#define KT_REPLAY_OFFSETMAP_PRIV_H

#include <stddef.h>
#include <stdint.h>

struct kt_replay_omap_run {
	int32_t source_partition;
	int64_t source_offset;
	int64_t target_offset;
	uint64_t count;
};

/* One target partition.  Owned by its map. */
struct kt_replay_omap_section {
	char *topic;        /* target topic */
	char *source_topic;
	int32_t partition;  /* target partition */
	int64_t base_offset;
	int64_t end_offset;
	uint64_t record_count;
	size_t run_count;
	size_t run_cap;
	struct kt_replay_omap_run *runs;
};

struct kt_replay_omap {
	int64_t created_ms;
	size_t section_count;
	size_t section_cap;
	struct kt_replay_omap_section *sections;
};

struct kt_replay_omap *kt_replay_omap_create(void);
void kt_replay_omap_destroy(struct kt_replay_omap *map);

/* Adds a section and returns its index (sections may move when more are
 * added, so callers keep indexes, not pointers), or -ENOMEM. end_offset
 * starts at base_offset. */
long kt_replay_omap_add_section(struct kt_replay_omap *map, const char *topic,
				const char *source_topic, int32_t partition,
				int64_t base_offset);

/* Records that source (partition, offset) landed at target_offset of the
 * section: extends the last run when both offsets follow it, else starts a
 * new run.  target_offset must be >= the section's current end (KT_ERANGE
 * otherwise: acknowledgements out of order).  Raises end_offset past it.
 * Allocates only when a run starts and the array is full. */
int kt_replay_omap_append(struct kt_replay_omap_section *section,
			  int32_t source_partition, int64_t source_offset,
			  int64_t target_offset);

/* Translates a committed offset (format/restore.md section 4.4) on one
 * section: 0 and *target when the section holds a record of
 * source_partition with source offset >= source_offset; 1 when it holds
 * records of source_partition but all before source_offset (*target is then
 * end_offset); KT_ENOTFOUND when it holds none of source_partition. */
int kt_replay_omap_translate(const struct kt_replay_omap_section *section,
			     int32_t source_partition, int64_t source_offset,
			     int64_t *target);

/* Finds a section by target topic and partition; NULL when absent. */
const struct kt_replay_omap_section *
kt_replay_omap_find(const struct kt_replay_omap *map, const char *topic, int32_t partition);

/* Encodes the whole map as an offsets.ktm file image (sections sorted by
 * topic then partition).  *out is malloc'd; the caller frees it. */
int kt_replay_omap_encode(const struct kt_replay_omap *map, uint8_t **out, size_t *out_len,
			  char *errstr, size_t errstr_size);
/* Decodes and checks a file image; what names the file in errors. */
int kt_replay_omap_decode(const uint8_t *buf, size_t len, const char *what,
			  struct kt_replay_omap **out, char *errstr, size_t errstr_size);

/* Encodes and writes atomically (kt_write_file_atomic); reads and decodes. */
int kt_replay_omap_write(const struct kt_replay_omap *map, const char *path, unsigned mode,
			 char *errstr, size_t errstr_size);
int kt_replay_omap_read(const char *path, struct kt_replay_omap **out,
			char *errstr, size_t errstr_size);

#endif /* KT_REPLAY_OFFSETMAP_PRIV_H */
