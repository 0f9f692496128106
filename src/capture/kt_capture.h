/*
 * kt_capture.h - the one interface header of ktape's capture module.
 *
 * Capture backs up Kafka topics into a repository (src/store): it fixes
 * every selected partition's end offset at start, consumes each partition up
 * to exactly that offset through per-partition queues served by worker
 * threads, writes one segment chain per partition and commits a snapshot
 * manifest.  A capture into a repository that already holds a snapshot
 * continues it incrementally.  The module never prints: it reports through
 * struct kt_log and through the callbacks below.
 *
 * Ownership: kt_capture_create() copies every option it keeps; the caller's
 * strings and arrays may be freed after it returns.  The result of
 * kt_capture_run() is owned by the capture and valid until
 * kt_capture_destroy().
 */
#ifndef KT_CAPTURE_H
#define KT_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "kt_common.h"
#include "kt_store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A librdkafka property given with -X key=value or read from -F. */
struct kt_capture_property {
	const char *name;
	const char *value;
};

/* Per-topic progress, for a live display or periodic log lines. */
struct kt_capture_topic_progress {
	const char *name;
	uint64_t offsets_total; /* offsets to capture this round, all partitions */
	uint64_t offsets_done;  /* offsets passed so far (records and gaps) */
	uint64_t records;       /* records written this round */
	uint64_t raw_bytes;     /* their encoded size */
	uint32_t partitions;
	uint32_t partitions_done;
};

struct kt_capture_progress {
	int64_t elapsed_ns; /* since this round's end offsets were fixed */
	uint64_t records;
	uint64_t raw_bytes;
	uint64_t offsets_total;
	uint64_t offsets_done;
	size_t topic_count;
	const struct kt_capture_topic_progress *topics;
};

/* What one committed snapshot (one round; --follow commits many) holds. */
struct kt_capture_topic_summary {
	const char *name;
	uint32_t partitions;
	uint32_t partitions_incomplete;
	uint64_t records;     /* written by this round */
	uint64_t raw_bytes;   /* written by this round, before compression */
	uint64_t stored_bytes; /* segment file bytes written by this round */
	uint64_t gap_offsets; /* offsets newly lost to retention this round */
	int configs_available;
};

struct kt_capture_summary {
	char snapshot_id[64];  /* "" when nothing was committed */
	char parent_id[64];
	int kind;              /* enum kt_store_snapshot_kind */
	int64_t started_ms;
	int64_t completed_ms;
	int64_t duration_ns;
	uint64_t records;
	uint64_t raw_bytes;
	uint64_t stored_bytes;
	uint64_t segments;     /* new segments written */
	uint64_t gap_count;    /* new retention gaps found */
	uint64_t gap_offsets;
	uint32_t partitions;
	uint32_t partitions_incomplete;
	uint32_t groups;       /* consumer groups whose offsets were recorded */
	int configs_available; /* 0 when the broker could not describe configs */
	size_t topic_count;
	const struct kt_capture_topic_summary *topics;
};

struct kt_capture_opts {
	const char *brokers;   /* bootstrap servers; or bootstrap.servers set
				* through the properties or configure */
	const char *repo_path; /* created if absent */
	unsigned repo_mode;    /* permission bits of new files (0: the
				* repository's own, 0600 for a new one) */

	/* Topic selection: a name, or a regex when it starts with '^' (as
	 * librdkafka's subscribe does).  Internal topics (names starting with
	 * "__") are captured only when named exactly. */
	const char *const *topics;
	size_t topic_count;
	const char *const *excludes; /* same syntax; applied after topics */
	size_t exclude_count;

	/* librdkafka properties, applied in order after ktape's defaults so
	 * that the operator has the last word.  Values are never logged. */
	const struct kt_capture_property *properties;
	size_t property_count;
	/* Then, if set, called on the configuration (the CLI applies -X and
	 * -F here).  Returns 0 or a negative code with errstr set; it must
	 * never quote a secret value. */
	int (*configure)(void *opaque, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);
	void *configure_opaque;

	/* Consumer groups whose committed offsets go into the manifest. */
	const char *const *groups;
	size_t group_count;
	const char *groups_regex; /* NULL: none; needs ListConsumerGroups */

	int codec;             /* enum kt_codec; default zstd */
	int level;             /* zstd level; default 3 */
	size_t block_size;     /* 0: chosen from the partition count */
	uint64_t segment_size; /* roll past this many raw bytes; default 256 MiB */
	unsigned threads;      /* worker threads; 0: one per core */
	int io_backend;        /* enum kt_io_backend; default auto */
	int64_t timeout_ms;       /* broker answers and stalls; default 30 s */
	int64_t admin_timeout_ms; /* DescribeConfigs & co; default 5 s */
	uint64_t memory_budget;   /* bytes for the partitions' open blocks
				   * (half), records staged by the workers
				   * (a quarter) and librdkafka's queues (a
				   * quarter); default 128 MiB */

	/* Non-NULL: capture as one worker of this Kafka consumer group, which
	 * shares the partitions of one snapshot among many processes
	 * (src/capture/workers.c, format/repository.md section 8).  1 to 200
	 * characters of [A-Za-z0-9._-]; not with follow. */
	const char *workers_group;

	int follow;            /* commit a snapshot every interval_ms until stopped */
	int64_t interval_ms;   /* default 60 s */

	const struct kt_log *log; /* may be NULL */

	/* Called about every progress_interval_ms from the thread that runs
	 * kt_capture_run() (never from a worker).  May be NULL. */
	void (*on_progress)(void *opaque, const struct kt_capture_progress *progress);
	/* Called after each snapshot commit (every round with --follow). */
	void (*on_snapshot)(void *opaque, const struct kt_capture_summary *summary);
	/* With follow: a round failed on broker trouble (KT_ETIMEDOUT,
	 * KT_EKAFKA) and the capture carries on at the next interval.  Other
	 * errors end kt_capture_run().  May be NULL. */
	void (*on_round_error)(void *opaque, int err, const char *errstr);
	void *opaque;
	int64_t progress_interval_ms; /* default 1000 */
};

/* Fills opts with the defaults above (and NULL/0 elsewhere). */
void kt_capture_opts_init(struct kt_capture_opts *opts);

struct kt_capture;

/* Validates the options (regexes, values) and copies them.  Returns 0,
 * KT_EUSAGE or -ENOMEM with a sentence in errstr.  Connects to nothing. */
int kt_capture_create(struct kt_capture **out, const struct kt_capture_opts *opts,
		      char *errstr, size_t errstr_size);

/* Runs the capture (a single round, or rounds until stopped with follow).
 * Returns:
 *   0               every selected partition captured up to its end offset;
 *   KT_EGAP         done, but retention deleted records before they were
 *                   captured (recorded as gaps in the manifest);
 *   KT_EINTERRUPTED kt_capture_stop() came first: what was complete is
 *                   committed as a partial snapshot (follow: returns 0);
 *   another negative code on failure, with errstr saying what and where.
 * *summary (may be NULL) describes the last committed snapshot; it stays
 * valid until kt_capture_destroy(). */
int kt_capture_run(struct kt_capture *cap, const struct kt_capture_summary **summary,
		   char *errstr, size_t errstr_size);

/* Asks a running capture to finish in-flight blocks, seal, commit what is
 * complete and return.  Async-signal-safe: it only sets an atomic flag. */
void kt_capture_stop(struct kt_capture *cap);

void kt_capture_destroy(struct kt_capture *cap);

/* ---- diff: a snapshot against the live topics (src/capture/diff.c) ---- */

/* One partition's comparison over the snapshot's [start_offset,
 * end_offset).  Strings are valid only during the callback. */
struct kt_capture_diff_partition {
	const char *topic;
	int32_t partition;
	const char *live_topic;   /* where it was compared: topic, or the */
	int32_t live_partition;   /* restore's target with a route */
	int64_t start_offset, end_offset; /* the snapshot's range */
	int64_t live_low, live_high;      /* live watermarks; -1: no such partition */
	uint64_t records_equal;
	uint64_t only_snapshot;  /* in the backup, missing live inside its log */
	uint64_t only_live;      /* live, missing from the backup */
	uint64_t differing;      /* same offset, different key/value/headers/ts */
	uint64_t expired;        /* in the backup, below the live log start:
				  * deleted by retention since; not a difference */
	uint64_t live_after_end; /* offsets produced after the snapshot; not a
				  * difference */
	int64_t first_difference; /* lowest differing offset; -1 when equal */
	const char *first_difference_field; /* "key", "value", "headers",
					     * "timestamp", "timestamp type",
					     * "only in the snapshot", "only live" */
};

struct kt_capture_diff_result {
	char snapshot_id[64];
	uint64_t topics;
	uint64_t partitions;
	uint64_t partitions_different;
	uint64_t partitions_not_routed; /* with a route: partitions the restore did not send */
	uint64_t records_equal;
	uint64_t only_snapshot;
	uint64_t only_live;
	uint64_t differing;
	uint64_t expired;
	uint64_t live_after_end;
};

/* Where a restore put a snapshot partition, so that diff compares it with
 * what the restore wrote rather than with the same offsets. */
struct kt_capture_diff_route {
	const char *topic;            /* the target topic */
	int32_t partition;            /* the target partition */
	int64_t target_lo, target_hi; /* the target offsets the restore wrote */
	struct kt_store_range range;  /* the snapshot records it selected */
	const struct kt_store_offset_run *runs; /* ascending in both offsets */
	size_t run_count;
};

struct kt_capture_diff_opts {
	const char *brokers;   /* bootstrap servers (or set through configure) */
	const char *repo_path;
	const char *snapshot;  /* id; NULL or "latest": the newest */
	const char *const *topics; /* names or '^' regexes; none: every topic */
	size_t topic_count;
	/* Called on the consumer's configuration (the CLI applies -X/-F). */
	int (*configure)(void *opaque, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);
	void *configure_opaque;
	int64_t timeout_ms;    /* a partition that stalls this long fails; 30 s */
	const struct kt_log *log;
	/* Called once per partition compared, in snapshot order. */
	void (*on_partition)(void *opaque, const struct kt_capture_diff_partition *part);
	void *opaque;
	/* Optional: where each snapshot partition went (ktape diff --restore).
	 * Fills *route and returns 0, KT_ENOTFOUND for a partition that was
	 * not sent (it is skipped and counted), or another code to stop.  The
	 * route's pointers must stay valid until kt_capture_diff() returns. */
	int (*route)(void *opaque, const char *topic, int32_t partition,
		     struct kt_capture_diff_route *route);
};

void kt_capture_diff_opts_init(struct kt_capture_diff_opts *opts);

/* Compares the snapshot's partitions with the live cluster, record by
 * record, by explicit assignment (no group is joined, nothing committed).
 * Returns 0 when the comparison ran (result->partitions_different says
 * whether anything differs), or a negative code: KT_ENOTFOUND (snapshot
 * or named topic), KT_EKAFKA / KT_ETIMEDOUT (the cluster), KT_ECORRUPT
 * (the snapshot's data), with errstr naming what and where. */
int kt_capture_diff(const struct kt_capture_diff_opts *opts, struct kt_capture_diff_result *result,
		    char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif

#endif /* KT_CAPTURE_H */
