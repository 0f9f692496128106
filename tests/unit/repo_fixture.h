/*
 * repo_fixture.h - builds small, real repositories for the store's unit
 * tests: segments written by kt_store_writer, manifests committed by
 * kt_store_repo_commit_snapshot.  Header-only so each test is one file.
 */
#ifndef KT_TEST_REPO_FIXTURE_H
#define KT_TEST_REPO_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#include "kt_store.h"

/* A temp directory removed by fixture_rmrf(). */
static inline void fixture_tmpdir(char *buf, size_t size, const char *tag)
{
	snprintf(buf, size, "/tmp/kt_%s_XXXXXX", tag);
	if (!mkdtemp(buf))
		abort();
}

static inline void fixture_rmrf(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		abort();
}

/* Writes one segment of `count` records with offsets first, first+2, ...
 * (a gap between every two, as compaction leaves) into the repository and
 * appends its reference to part.  Small blocks so there are several. */
static inline int fixture_write_segment(struct kt_store_repo *repo, const char *topic,
					struct kt_store_partition *part, int64_t first,
					uint32_t count, char *errstr, size_t errstr_size)
{
	struct kt_store_writer_opts opts;
	struct kt_store_writer *writer = NULL;
	struct kt_store_segment_info info;
	struct kt_store_segref ref;
	char rel[1024], abs[4096], value[200], key[32];
	struct kt_header hdr = { "trace", 5, "abc", 3 };
	int err;

	kt_store_writer_opts_init(&opts);
	opts.block_size = 4096;
	err = kt_store_repo_new_segment_path(repo, topic, part->partition, first, rel, sizeof(rel),
					     abs, sizeof(abs), errstr, errstr_size);
	if (err)
		return err;
	err = kt_store_writer_create(&writer, abs, topic, part->partition, &opts, errstr, errstr_size);
	if (err)
		return err;
	for (uint32_t i = 0; i < count && !err; i++) {
		struct kt_record rec = { 0 };
		int vlen = snprintf(value, sizeof(value), "{\"id\":%u,\"amount\":%u,\"note\":\"record %u of partition %d\"}",
				    i, i * 7 % 1000, i, part->partition);
		int klen = snprintf(key, sizeof(key), "key-%u", i % 17);

		rec.offset = first + 2 * (int64_t)i;
		rec.timestamp = 1700000000000LL + (int64_t)i * 1000;
		rec.ts_type = KT_TS_CREATE;
		rec.key = key;
		rec.key_len = (size_t)klen;
		rec.value = value;
		rec.value_len = (size_t)vlen;
		rec.headers = &hdr;
		rec.header_count = 1;
		err = kt_store_writer_append(writer, &rec, errstr, errstr_size);
	}
	if (!err)
		err = kt_store_writer_seal(writer, &info, errstr, errstr_size);
	kt_store_writer_destroy(writer);
	if (err)
		return err;
	ref.path = rel;
	ref.first_offset = info.first_offset;
	ref.last_offset = info.last_offset;
	ref.min_ts = info.min_ts;
	ref.max_ts = info.max_ts;
	ref.records = info.record_count;
	ref.raw_bytes = info.raw_bytes;
	ref.file_size = info.file_size;
	ref.checksum = info.checksum;
	/* add_segment keeps the partition's totals (records, bytes, time
	 * bounds); the end offset is the caller's to move. */
	err = kt_store_partition_add_segment(part, &ref);
	if (err)
		return err;
	part->end_offset = info.last_offset + 1;
	return 0;
}

/* Copies every partition's segment chain of `from` into a new snapshot
 * (as an incremental capture does) and returns it; NULL on failure. */
static inline struct kt_store_snapshot *fixture_continue(const struct kt_store_snapshot *from)
{
	struct kt_store_snapshot *snap = kt_store_snapshot_create();

	if (!snap)
		return NULL;
	snap->kind = KT_SNAPSHOT_INCREMENTAL;
	snprintf(snap->parent, sizeof(snap->parent), "%s", from->id);
	snap->started_ms = from->started_ms + 1;
	snap->completed_ms = from->completed_ms + 1;
	for (size_t t = 0; t < from->topic_count; t++) {
		const struct kt_store_topic *ft = &from->topics[t];
		struct kt_store_topic *topic = kt_store_snapshot_add_topic(snap, ft->name, ft->partition_count,
									   ft->replication_factor);
		for (size_t p = 0; topic && p < ft->n_partitions; p++) {
			const struct kt_store_partition *fp = &ft->partitions[p];
			struct kt_store_partition *part = kt_store_topic_add_partition(topic, fp->partition);
			if (!part)
				break;
			part->log_start_offset = fp->log_start_offset;
			part->start_offset = fp->start_offset;
			part->end_offset = fp->end_offset;
			part->complete = 1;
			for (size_t s = 0; s < fp->segment_count; s++)
				kt_store_partition_add_segment(part, &fp->segments[s]);
		}
	}
	return snap;
}

/* A new full snapshot of one topic with `partitions` partitions, each
 * holding one segment of `count` records, committed.  Returns the
 * snapshot (caller destroys) or NULL. */
static inline struct kt_store_snapshot *fixture_full_snapshot(struct kt_store_repo *repo, const char *topic_name,
							      int32_t partitions, uint32_t count,
							      int64_t completed_ms, char *errstr, size_t errstr_size)
{
	struct kt_store_snapshot *snap = kt_store_snapshot_create();
	struct kt_store_topic *topic;

	if (!snap)
		return NULL;
	snap->kind = KT_SNAPSHOT_FULL;
	snap->started_ms = completed_ms - 1000;
	snap->completed_ms = completed_ms;
	topic = kt_store_snapshot_add_topic(snap, topic_name, partitions, 1);
	for (int32_t p = 0; topic && p < partitions; p++) {
		struct kt_store_partition *part = kt_store_topic_add_partition(topic, p);
		if (!part)
			goto fail;
		part->start_offset = 0;
		part->log_start_offset = 0;
		part->min_ts = INT64_MAX;
		part->max_ts = INT64_MIN;
		part->complete = 1;
		if (fixture_write_segment(repo, topic_name, part, 0, count, errstr, errstr_size))
			goto fail;
	}
	if (kt_store_repo_commit_snapshot(repo, snap, errstr, errstr_size))
		goto fail;
	return snap;
fail:
	fprintf(stderr, "fixture_full_snapshot: %s\n", errstr);
	kt_store_snapshot_destroy(snap);
	return NULL;
}

/* A new locked repository in a fresh temp directory (its path in dir) and,
 * when partitions > 0, a committed full snapshot of topic "orders" with
 * `count` records per partition.  Every test of the repository starts this
 * way; fixture_repo_close() undoes it all, also after a failed open.
 * Returns 0, or the failing call's code with its message on stderr. */
struct fixture_repo {
	char dir[256];
	struct kt_store_repo *repo;
	struct kt_store_snapshot *snap; /* NULL when partitions was 0 */
};

static inline int fixture_repo_open(struct fixture_repo *f, const char *tag, int32_t partitions,
				    uint32_t count)
{
	char errstr[512];
	int err;

	memset(f, 0, sizeof(*f));
	fixture_tmpdir(f->dir, sizeof(f->dir), tag);
	err = kt_store_repo_open(&f->repo, f->dir, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK, 0,
				 errstr, sizeof(errstr));
	if (err) {
		fprintf(stderr, "fixture_repo_open: %s\n", errstr);
		return err;
	}
	if (partitions > 0) {
		f->snap = fixture_full_snapshot(f->repo, "orders", partitions, count, 1700000000000LL,
						errstr, sizeof(errstr));
		if (!f->snap)
			return KT_ECORRUPT;
	}
	return 0;
}

static inline void fixture_repo_close(struct fixture_repo *f)
{
	kt_store_snapshot_destroy(f->snap);
	kt_store_repo_destroy(f->repo);
	fixture_rmrf(f->dir);
}

#endif /* KT_TEST_REPO_FIXTURE_H */
