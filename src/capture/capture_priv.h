/*
 * capture_priv.h - private to src/capture: the structures shared by the
 * planner (plan.c), the topic selector (select.c), the admin calls
 * (admin.c), the workers (worker.c) and the orchestration (capture.c).
 */
#ifndef KT_CAPTURE_PRIV_H
#define KT_CAPTURE_PRIV_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>

#include "kt_capture.h"
#include "kt_store.h"

/* ---- topic selection (select.c) ---------------------------------------- */

/* One -t or --exclude pattern: an exact name, or a POSIX extended regex
 * when the text starts with '^' (librdkafka's convention). */
struct cap_pattern {
	char *text;
	int is_regex;
	regex_t re;
};

struct cap_selector {
	struct cap_pattern *include;
	size_t include_count;
	struct cap_pattern *exclude;
	size_t exclude_count;
};

int cap_selector_init(struct cap_selector *sel, const char *const *topics, size_t topic_count,
		      const char *const *excludes, size_t exclude_count,
		      char *errstr, size_t errstr_size);
void cap_selector_free(struct cap_selector *sel);
/* 1 when name is selected: named exactly, or matched by a regex and not an
 * internal topic ("__" prefix), and not excluded. */
int cap_selector_match(const struct cap_selector *sel, const char *name);
/* Returns the first exact (non-regex) include name that is absent from
 * names[], or NULL when every named topic exists. */
const char *cap_selector_missing(const struct cap_selector *sel, const char *const *names,
				 size_t count);

/* ---- planning (plan.c) ---------------------------------------------------- */

/* Where one partition's capture starts and ends this round. */
struct cap_plan {
	int64_t chain_start; /* start_offset of the whole chain (manifest) */
	int64_t fetch_from;  /* first offset this round fetches */
	int64_t end;         /* exclusive end fixed now */
	int64_t gap_from;    /* retention gap [gap_from, gap_to); empty if equal */
	int64_t gap_to;
};

/* Decides a partition's plan from the previous snapshot's partition (NULL
 * on a first capture or a new partition) and Kafka's log start offset and
 * high watermark (or last stable offset).  Offsets that went backwards (a
 * recreated topic, a truncated log) are refused with KT_ERANGE. */
int cap_plan_partition(const struct kt_store_partition *prev, int64_t log_start, int64_t high,
		       struct cap_plan *plan, char *errstr, size_t errstr_size);

/* ---- per-partition and per-topic state of one round ---------------------- */

struct cap_topic;

struct cap_range {
	int64_t from;
	int64_t to;
};

struct cap_part {
	struct cap_topic *topic;
	int32_t partition;
	unsigned worker;
	int64_t log_start;
	int64_t high;
	struct cap_plan plan;
	const struct kt_store_partition *prev; /* in the parent snapshot, or NULL */

	/* Owned by the worker while the round runs. */
	int64_t next;          /* next offset expected: last appended + 1 */
	int64_t staged_next;   /* one past the last record staged (worker.c) */
	int done;              /* reached plan.end */
	struct kt_store_writer *writer;
	char *writer_rel;      /* repository-relative path of the open segment */
	struct kt_store_segref *segs; /* sealed this round, in order */
	size_t seg_count;
	size_t seg_cap;
	struct cap_range *late_gaps; /* retention overtook the capture mid-round */
	size_t late_gap_count;
	uint64_t records;
	uint64_t raw_bytes;
	uint64_t stored_bytes;
	int64_t min_ts;
	int64_t max_ts;
	rd_kafka_queue_t *rkqu; /* the partition's queue, forwarded to the worker */

	/* Published for the progress display (relaxed atomics). */
	_Atomic int64_t pub_next;
	_Atomic uint64_t pub_records;
	_Atomic uint64_t pub_bytes;
	_Atomic int pub_done;
};

struct cap_topic {
	char *name;
	int32_t partition_count;
	int32_t replication_factor;
	int configs_available;
	size_t config_count;
	char **config_names;
	char **config_values; /* NULL entries: null or secret */
	struct cap_part *parts; /* indexed by partition number */
	size_t part_count;
	const struct kt_store_topic *prev; /* in the parent snapshot, or NULL */
};

/* ---- the capture object --------------------------------------------------- */

struct cap_worker;

struct kt_capture {
	/* Copied options. */
	char *brokers;
	char *source;   /* bootstrap servers as the manifest records them */
	char *repo_path;
	unsigned repo_mode;
	struct cap_selector sel;
	char **prop_names;
	char **prop_values;
	size_t property_count;
	char **groups;
	size_t group_count;
	char *groups_regex_text;
	regex_t groups_regex;
	int has_groups_regex;
	struct kt_capture_opts opts; /* scalars and callbacks; pointers cleared */
	char *workers_group;  /* --workers-group, or NULL (workers.c) */
	struct cap_wrun *wrun; /* the workers run state while it runs */

	volatile sig_atomic_t stop; /* set by kt_capture_stop() */
	atomic_int abort;           /* a worker failed: stop everything */

	/* Run state. */
	rd_kafka_t *rk;
	struct kt_store_repo *repo;
	pthread_mutex_t lock; /* guards repo path allocation and err */
	int err;
	char errstr[512];
	char last_kafka_error[256]; /* from the error callback, under lock */
	int configs_warned;
	int configs_unavailable; /* the broker once failed to answer */
	int groups_list_warned;

	struct cap_topic *topics; /* sorted by name */
	size_t topic_count;
	struct kt_store_snapshot *parent; /* owned */
	int64_t round_started_ms;
	int64_t round_started_ns;

	size_t block_size;
	unsigned worker_count;
	struct cap_worker *workers;

	/* Snapshot summary of the last committed round (owned). */
	struct kt_capture_summary summary;
	struct kt_capture_topic_summary *topic_summaries;
	struct kt_capture_topic_progress *topic_progress;
	uint64_t total_gap_offsets; /* over all rounds of this run */
};

/* The round's topic of that name (binary search), or NULL. */
struct cap_topic *cap_find_topic(struct kt_capture *cap, const char *name);

/* Records the first error of the run (thread-safe) and raises abort. */
void cap_fail(struct kt_capture *cap, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- admin (admin.c) ------------------------------------------------------- */

/* Starts DescribeConfigs for every topic of the round on a private queue;
 * returns the queue (NULL when not started: unavailable before). */
rd_kafka_queue_t *cap_admin_configs_start(struct kt_capture *cap);
/* Waits (bounded by the admin timeout) for the result and stores the
 * configs that differ from the broker defaults in the topics.  Warns once
 * when the broker cannot answer.  Destroys rkqu. */
void cap_admin_configs_finish(struct kt_capture *cap, rd_kafka_queue_t *rkqu);
/* Reads the committed offsets of the selected groups for the round's
 * partitions into snap.  Broker failures are warnings, never fatal. */
int cap_admin_group_offsets(struct kt_capture *cap, struct kt_store_snapshot *snap,
			    uint32_t *groups_recorded);

/* ---- workers (worker.c) ---------------------------------------------------- */

/* Starts worker_count threads, each consuming its partitions' queues. */
int cap_workers_start(struct kt_capture *cap, char *errstr, size_t errstr_size);
/* 1 when every worker has returned. */
int cap_workers_finished(struct kt_capture *cap);
/* Joins and frees the workers. */
void cap_workers_join(struct kt_capture *cap);

/* Fills rec from a consumed message: offset, timestamp and its type, key,
 * value (null kept distinct from empty) and headers, which point into msg
 * and into *headers, an array of *header_cap entries the caller owns and
 * reuses for every record (grown to the most headers seen, then never
 * again).  Returns 0, -ENOMEM or KT_EKAFKA (unreadable headers).  Used by
 * the worker threads and by --workers-group (workers.c) alike. */
int cap_record_from_message(rd_kafka_message_t *msg, struct kt_header **headers, size_t *header_cap,
			    struct kt_record *rec);

/* The writer options of a capture's segments: the capture's codec, level,
 * block size and I/O back end, two blocks in flight, the repository's file
 * mode.  Used by the worker threads and by --workers-group alike. */
void cap_writer_opts(const struct kt_capture *cap, const struct kt_store_repo *repo,
		     struct kt_store_writer_opts *wopts);

#endif /* KT_CAPTURE_PRIV_H */
