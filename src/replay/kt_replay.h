/*
 * kt_replay.h - the one interface header of ktape's replay module.
 *
 * The module writes records from a snapshot back into Kafka.  One engine
 * serves two commands: `ktape restore` (disaster recovery: every record
 * exactly once, in its source partition, with a restore record in the
 * repository so that a killed run can be resumed; format/restore.md) and
 * `ktape replay` (test traffic: pacing, timestamp rewriting, loops; nothing
 * recorded).  The engine never prints: it reports through struct kt_log and
 * the progress callback, and leaves a summary behind.
 *
 * Usage:
 *     struct kt_replay_opts opts;
 *     kt_replay_opts_init(&opts, KT_REPLAY_MODE_RESTORE);
 *     opts.repo_path = ...; opts.brokers = ...;
 *     kt_replay_create(&rp, &opts, errstr, sizeof(errstr));
 *     err = kt_replay_run(rp, errstr, sizeof(errstr));
 *     summary = kt_replay_summary(rp);
 *     kt_replay_destroy(rp);
 *
 * Ownership: opts and everything it points to must stay valid until
 * kt_replay_destroy(); the engine copies nothing it does not say it copies.
 */
#ifndef KT_REPLAY_H
#define KT_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "kt_common.h"
#include "kt_store.h"

#ifdef __cplusplus
extern "C" {
#endif

enum kt_replay_mode {
	KT_REPLAY_MODE_RESTORE = 0, /* exact; restore record, resume, groups */
	KT_REPLAY_MODE_REPLAY = 1,  /* test traffic; nothing recorded */
};

enum kt_replay_partitioning {
	KT_REPLAY_PART_PRESERVE = 0, /* the source partition number */
	KT_REPLAY_PART_KEY = 1,      /* murmur2(key) like Java; null keys round-robin */
	KT_REPLAY_PART_RANDOM = 2,   /* uniformly at random (seeded) */
};

enum kt_replay_pace {
	KT_REPLAY_PACE_NONE = 0,     /* as fast as the rate limits allow */
	KT_REPLAY_PACE_ORIGINAL = 1, /* one timeline, original gaps / speed */
};

enum kt_replay_timestamps {
	KT_REPLAY_TS_KEEP = 0,  /* the recorded CreateTime */
	KT_REPLAY_TS_SHIFT = 1, /* shifted so the first record is "now" */
	KT_REPLAY_TS_NOW = 2,   /* stamped at send time */
};

/* --map SRC=DST. */
struct kt_replay_map {
	const char *source;
	const char *target;
};

/* One offset bound of --from-offset/--to-offset.  topic NULL: every topic;
 * partition -1: every partition.  The most specific bound that matches a
 * partition wins (topic+partition, then partition, then topic, then all). */
struct kt_replay_offset_bound {
	const char *topic;
	int32_t partition;
	int64_t offset;
};

/* Parses "N", "P:N" or "TOPIC:P:N" (Kafka topic names cannot contain ':')
 * into bound; bound->topic points into text.  Returns 0 or KT_EUSAGE. */
int kt_replay_parse_offset_bound(char *text, struct kt_replay_offset_bound *bound,
				 char *errstr, size_t errstr_size);

/* Applies the user's librdkafka settings (-X, -F) to a client
 * configuration, which is an rd_kafka_conf_t * passed as void * so that this
 * header needs no librdkafka include.  Called for the producer and for each
 * group-commit consumer; returns 0 or KT_EUSAGE with a sentence. */
typedef int kt_replay_conf_fn(void *opaque, void *rd_kafka_conf, char *errstr,
			      size_t errstr_size);

struct kt_replay_progress {
	uint64_t records_sent;    /* handed to the producer, this run */
	uint64_t records_acked;   /* acknowledged by Kafka, this run */
	uint64_t records_skipped; /* already in the target (resume) */
	uint64_t bytes_sent;      /* key + value + header bytes handed over */
	uint64_t records_planned; /* best estimate of the total; 0 if unknown */
	double elapsed_s;
	int done; /* 1 on the last call, after everything was acknowledged */
};

/* Called from the thread running kt_replay_run(), about every
 * progress_interval_ms and once at the end; it may call kt_replay_summary()
 * and nothing else of the engine. */
typedef void kt_replay_progress_fn(void *opaque, const struct kt_replay_progress *progress);

struct kt_replay_opts {
	int mode;            /* enum kt_replay_mode */
	const char *repo_path;
	/* Where restore records (format/restore.md) live.  NULL: REPO/restores
	 * for a repository directory, FILE.tar.restores beside a snapshot
	 * archive read in place.  Give one for a read-only repository. */
	const char *state_dir;
	const char *snapshot_id; /* NULL or "latest": the newest */
	const char *brokers;     /* bootstrap servers of the target */
	kt_replay_conf_fn *conf_apply; /* may be NULL */
	void *conf_opaque;

	/* Selection, as in capture: a topic name, or a POSIX extended regex
	 * when it starts with '^' (as librdkafka's subscribe); internal topics
	 * ("__*") only by name.  A name the snapshot lacks is an error.  No
	 * topics: every topic of the snapshot. */
	const char *const *topics;
	size_t topic_count;
	const char *const *excludes;
	size_t exclude_count;

	/* Renaming: an explicit map wins; otherwise prefix (may be NULL) is
	 * prepended to the source name.  Two sources onto one target are
	 * refused. */
	const struct kt_replay_map *maps;
	size_t map_count;
	const char *prefix;

	/* Windows: time [from_time, to_time) in ms (INT64_MIN / INT64_MAX for
	 * none), and per-partition offsets [from, to). */
	int64_t from_time;
	int64_t to_time;
	const struct kt_replay_offset_bound *from_offsets;
	size_t from_offset_count;
	const struct kt_replay_offset_bound *to_offsets;
	size_t to_offset_count;

	int partitioning;  /* enum kt_replay_partitioning */
	uint64_t seed;     /* for KT_REPLAY_PART_RANDOM; 0: drawn at random */
	int pace;          /* enum kt_replay_pace */
	double speed;      /* > 0; with KT_REPLAY_PACE_ORIGINAL */
	int64_t max_gap_ms; /* <= 0: no cap */
	int timestamps;    /* enum kt_replay_timestamps */
	unsigned loops;    /* replay only; 0 means 1 */
	double max_rate;       /* records/s; 0: unlimited */
	double max_bytes_rate; /* bytes/s; 0: unlimited */

	/* Topic creation for missing targets.  replication_factor caps the
	 * recorded one (0: no cap; then -1 when unknown, the broker default). */
	int create_topics;           /* default 1 */
	int32_t replication_factor;

	/* Restore mode only. */
	const char *resume_id; /* resume this restore; NULL: by fingerprint */
	int force_new;         /* never resume; always a new restore */
	const char *const *groups;       /* group names (exact) to translate */
	size_t group_count;
	const char *group_regex;         /* or a POSIX extended regex; NULL */
	int dry_run; /* send and commit nothing; predict the offsets */
	/* >= 0: only this source partition of each selected topic (one
	 * partition's share of `ktape restore --workers-group`, src/replay/
	 * workers.c); -1 (the default): every partition. */
	int32_t only_partition;

	int timeout_ms;              /* broker round trips; default 10000 */
	int progress_interval_ms;    /* default 500 */
	kt_replay_progress_fn *progress;
	void *progress_opaque;
	const struct kt_log *log;    /* may be NULL */
};

/* ---- command-line options both commands take ------------------------------ */

/* Owns the arrays a kt_replay_opts filled from command-line arguments
 * points into (topics, excludes, maps, offset bounds, groups).  argc bounds
 * how often any option can repeat.  opts must outlive args. */
struct kt_replay_args;
int kt_replay_args_create(struct kt_replay_args **out, struct kt_replay_opts *opts, int argc);
void kt_replay_args_destroy(struct kt_replay_args *args);

/* Applies one option that `ktape restore` and `ktape replay` share, named
 * by its long name: topic, exclude, map, prefix, from-time, to-time,
 * from-offset, to-offset, partitioning, max-rate, max-bytes-rate,
 * replication-factor, no-create-topics, timeout, group, groups.  value is
 * NULL for a flag; --map and offset bounds keep pointers into it (argv
 * strings qualify).  Returns 1 when applied, 0 when name is none of these,
 * or KT_EUSAGE with a sentence naming the option and the expected form. */
int kt_replay_args_apply(struct kt_replay_args *args, const char *name, char *value,
			 char *errstr, size_t errstr_size);

/* Fills opts with the defaults of the given mode: restore preserves
 * partitions, keeps timestamps, paces nothing and creates topics; replay
 * the same, except mode. */
void kt_replay_opts_init(struct kt_replay_opts *opts, int mode);

/* A consumer-group offset translated through the offset map. */
struct kt_replay_group_commit {
	char *group;
	char *topic;           /* target topic */
	int32_t partition;     /* target partition */
	char *source_topic;
	int32_t source_partition; /* the source partition that decided it */
	int64_t source_offset;
	int64_t target_offset;
	int committed;         /* 1 when committed on the target */
};

struct kt_replay_summary {
	char restore_id[64];   /* "" in replay mode or a dry run */
	char snapshot_id[64];
	int resumed;           /* a rerun of an earlier restore */
	int already_complete;  /* everything was in the target already */
	uint64_t topics;
	uint64_t partitions;       /* source partitions read */
	uint64_t records_sent;     /* this run */
	uint64_t records_acked;
	uint64_t records_skipped;  /* found in the target by reconciliation */
	uint64_t bytes_sent;
	uint64_t timestamps_not_exact; /* LogAppendTime, none, or CreateTime 0 */
	uint64_t gaps;             /* retention gaps inside the restored range */
	uint64_t gap_offsets;      /* offsets lost to them */
	uint64_t blocks_read;      /* store blocks decoded */
	uint64_t blocks_total;     /* blocks in the segments opened */
	uint64_t stored_bytes_read;
	double elapsed_s;
	size_t group_commit_count;
	struct kt_replay_group_commit *group_commits;
};

struct kt_replay;

/* Checks the options (usage errors: KT_EUSAGE with a sentence) and builds
 * an engine.  Nothing is read or connected yet. */
int kt_replay_create(struct kt_replay **out, const struct kt_replay_opts *opts,
		     char *errstr, size_t errstr_size);

/* Runs the whole restore or replay: plan, topics, send, flush, offset map,
 * groups.  Returns 0, KT_EINTERRUPTED after kt_replay_stop(), or the first
 * error with a sentence naming topic, partition and offset where there is
 * one.  Call once. */
int kt_replay_run(struct kt_replay *rp, char *errstr, size_t errstr_size);

/* Asks a running kt_replay_run() to stop sending, wait for what is in
 * flight and return KT_EINTERRUPTED.  Async-signal-safe. */
void kt_replay_stop(struct kt_replay *rp);

/* The summary of the run so far; owned by the engine. */
const struct kt_replay_summary *kt_replay_summary(const struct kt_replay *rp);

/* Summary renderings; malloc'd NUL-terminated strings the caller frees, or
 * NULL when out of memory.  json: one object with every field above.
 * prometheus: text exposition format, metric names ktape_<command>_*. */
char *kt_replay_summary_json(const struct kt_replay_summary *summary, int mode);
char *kt_replay_summary_prometheus(const struct kt_replay_summary *summary, int mode);

void kt_replay_destroy(struct kt_replay *rp);

/* ---- restore --workers-group (src/replay/workers.c, format/restore.md
 * section 8): the partitions of one snapshot shared among processes on
 * any hosts by a Kafka consumer group over the target topics.  Each source
 * partition is restored by its own restore (opts with only_partition) with
 * its own restore record, by whichever worker the group assigns its target
 * partition to. */

struct kt_replay_workers_summary {
	char snapshot_id[64];
	uint64_t partitions;          /* source partitions the restore covers */
	uint64_t partitions_run;      /* restores this worker ran to completion */
	uint64_t records_sent;        /* by this worker */
	uint64_t records_skipped;     /* found in the target on resume, by this worker */
	uint64_t gaps;
	uint64_t group_commits;       /* group offsets committed by this worker */
};

struct kt_replay_workers;

/* Checks the options (restore mode, preserve partitioning, no --resume,
 * --new or --dry-run; group 1 to 200 characters of [A-Za-z0-9._-]) and
 * copies group; opts must outlive the workers.  KT_EUSAGE with a sentence. */
int kt_replay_workers_create(struct kt_replay_workers **out, const struct kt_replay_opts *opts,
			     const char *group, char *errstr, size_t errstr_size);
/* Joins the group and restores the partitions assigned to this worker
 * until every partition of the snapshot is restored (by any worker).
 * Returns 0, KT_EINTERRUPTED after kt_replay_workers_stop(), or the first
 * error, with a sentence. */
int kt_replay_workers_run(struct kt_replay_workers *workers, char *errstr, size_t errstr_size);
/* Async-signal-safe: the partition in flight stops cleanly (resumable). */
void kt_replay_workers_stop(struct kt_replay_workers *workers);
const struct kt_replay_workers_summary *kt_replay_workers_summary(const struct kt_replay_workers *workers);
void kt_replay_workers_destroy(struct kt_replay_workers *workers);

/* ---- where a finished restore put each record (src/replay/layout.c) ---- */

/* One restored source partition and the target partition it went to. */
struct kt_replay_layout_part {
	const char *source_topic;
	int32_t source_partition;
	const char *target_topic;
	int32_t target_partition;
	int64_t from_offset, to_offset; /* the plan's offset window; INT64_MIN/MAX unbounded */
	int64_t target_lo, target_hi;   /* the target offsets the restore wrote */
	const struct kt_store_offset_run *runs; /* ascending in both offsets */
	size_t run_count;
};

struct kt_replay_layout {
	char restore_id[64];
	char snapshot_id[64];
	int64_t from_time, to_time; /* the plan's time window; INT64_MIN/MAX unbounded */
	size_t part_count;
	struct kt_replay_layout_part *parts;
	void *priv; /* the plan and offset map the strings and runs point into */
};

/* Loads the layout of a finished restore from its record (REPO/restores/ID,
 * FILE.tar.restores/ID for an archive, or state_dir/ID): its plan and offset
 * map (format/restore.md sections 2 and 4).  restore_id NULL or "latest"
 * is the newest complete restore.  Refuses a restore that is not complete
 * (KT_EUSAGE), one that did not keep partitions (KT_EUNSUPPORTED: with key
 * or random partitioning a target partition mixes source partitions), and
 * an absent one (KT_ENOTFOUND).  The caller frees it with
 * kt_replay_layout_destroy(). */
int kt_replay_layout_load(struct kt_replay_layout **out, const char *repo_path, const char *state_dir,
			  const char *restore_id, char *errstr, size_t errstr_size);

/* The part of a source partition, or NULL when the restore did not send it. */
const struct kt_replay_layout_part *kt_replay_layout_find(const struct kt_replay_layout *layout,
							  const char *source_topic, int32_t source_partition);

/* NULL accepted. */
void kt_replay_layout_destroy(struct kt_replay_layout *layout);

#ifdef __cplusplus
}
#endif

#endif /* KT_REPLAY_H */
