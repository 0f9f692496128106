/*
 * checkpoint_priv.h - a restore's plan and checkpoint files
 * (format/restore.md sections 2 and 3) and the reconciliation arithmetic a
 * rerun applies to each target partition.  Private to src/replay.
 */
#ifndef KT_REPLAY_CHECKPOINT_PRIV_H
#define KT_REPLAY_CHECKPOINT_PRIV_H

#include <stddef.h>
#include <stdint.h>

#define KT_REPLAY_NO_BOUND_LO INT64_MIN
#define KT_REPLAY_NO_BOUND_HI INT64_MAX

enum kt_replay_order {
	KT_REPLAY_ORDER_ROUND_ROBIN = 0,
	KT_REPLAY_ORDER_TIME = 1,
};

/* A source partition of the plan with its offset window [from, to)
 * (KT_REPLAY_NO_BOUND_LO / _HI when unbounded). */
struct kt_replay_plan_part {
	int32_t partition;
	int64_t from_offset;
	int64_t to_offset;
};

/* A target partition the plan may send to, and its end offset before the
 * first send. */
struct kt_replay_plan_base {
	int32_t partition;
	int64_t base;
};

struct kt_replay_plan_topic {
	char *source;
	char *target;
	int32_t target_partitions;
	size_t part_count;
	struct kt_replay_plan_part *parts;
	size_t base_count;
	struct kt_replay_plan_base *bases;
};

struct kt_replay_plan {
	char id[64];
	int64_t created_ms;
	char fingerprint[17];
	char snapshot[64];
	char *target;     /* bootstrap servers, as given */
	char target_cluster[128]; /* the target's Kafka cluster id; "" unknown */
	int partitioning; /* enum kt_replay_partitioning */
	uint64_t seed;
	int order;        /* enum kt_replay_order */
	int64_t from_time;
	int64_t to_time;
	size_t topic_count;
	struct kt_replay_plan_topic *topics;
};

/* Plain data owned by the plan; strings are copied in. */
struct kt_replay_plan *kt_replay_plan_create(const char *target);
void kt_replay_plan_destroy(struct kt_replay_plan *plan);
/* Returns the new topic (valid until the next add_topic) or NULL. */
struct kt_replay_plan_topic *kt_replay_plan_add_topic(struct kt_replay_plan *plan,
						      const char *source, const char *target,
						      int32_t target_partitions);
int kt_replay_plan_add_part(struct kt_replay_plan_topic *topic, int32_t partition,
			    int64_t from_offset, int64_t to_offset);
int kt_replay_plan_add_base(struct kt_replay_plan_topic *topic, int32_t partition, int64_t base);
/* The base recorded for a target partition; KT_ENOTFOUND when absent. */
int kt_replay_plan_find_base(const struct kt_replay_plan_topic *topic, int32_t partition,
			     int64_t *base);

/* Who the target is, for fingerprints and comparisons: "cluster:<id>"
 * when the cluster id is known, else "brokers:" and the bootstrap list
 * trimmed and sorted (so "b:1,a:1" and "a:1, b:1" are the same target). */
void kt_replay_plan_target_identity(const struct kt_replay_plan *plan, char *buf, size_t size);

/* Computes plan->fingerprint (format/restore.md section 2.2) from the
 * other fields. */
void kt_replay_plan_fingerprint(struct kt_replay_plan *plan);

/* JSON (format/restore.md section 2).  to_json: malloc'd string. */
int kt_replay_plan_to_json(const struct kt_replay_plan *plan, char **out,
			   char *errstr, size_t errstr_size);
int kt_replay_plan_from_json(const char *json, size_t len, const char *what,
			     struct kt_replay_plan **out, char *errstr, size_t errstr_size);

enum kt_replay_ckpt_state {
	KT_REPLAY_CKPT_RUNNING = 0,
	KT_REPLAY_CKPT_INTERRUPTED = 1,
	KT_REPLAY_CKPT_FAILED = 2,
	KT_REPLAY_CKPT_COMPLETE = 3,
};

struct kt_replay_ckpt_part {
	char *topic;
	int32_t partition;
	uint64_t acked;
};

struct kt_replay_checkpoint {
	char id[64];
	int64_t updated_ms;
	int state;      /* enum kt_replay_ckpt_state */
	unsigned runs;
	char *error;    /* NULL unless failed */
	size_t part_count;
	struct kt_replay_ckpt_part *parts;
};

struct kt_replay_checkpoint *kt_replay_checkpoint_create(const char *id);
void kt_replay_checkpoint_destroy(struct kt_replay_checkpoint *ckpt);
/* Sets (adding if absent) the acked count of a target partition. */
int kt_replay_checkpoint_set(struct kt_replay_checkpoint *ckpt, const char *topic,
			     int32_t partition, uint64_t acked);
/* The acked count of a target partition; 0 when absent. */
uint64_t kt_replay_checkpoint_acked(const struct kt_replay_checkpoint *ckpt,
				    const char *topic, int32_t partition);
int kt_replay_checkpoint_set_error(struct kt_replay_checkpoint *ckpt, const char *error);

int kt_replay_checkpoint_to_json(const struct kt_replay_checkpoint *ckpt, char **out,
				 char *errstr, size_t errstr_size);
int kt_replay_checkpoint_from_json(const char *json, size_t len, const char *what,
				   struct kt_replay_checkpoint **out,
				   char *errstr, size_t errstr_size);

const char *kt_replay_ckpt_state_name(int state);

/* Reconciliation of one target partition (format/restore.md section 3.1):
 * base from the plan, end_now the partition's end offset now, acked from the
 * checkpoint.  Sets *skip, the records of the plan already in the
 * partition, or returns KT_ECORRUPT naming topic and partition when the
 * target holds fewer records than were acknowledged. */
int kt_replay_reconcile(const char *topic, int32_t partition, int64_t base,
			int64_t end_now, uint64_t acked, uint64_t *skip,
			char *errstr, size_t errstr_size);

/* The directory of restore records for a repository (restore id NULL) or of
 * one restore: state_dir/ID when state_dir is given, FILE.tar.restores/ID
 * for an archive read in place, else REPO/restores/ID.  0 or -ENAMETOOLONG. */
int kt_replay_restores_dir(const char *repo_path, const char *state_dir, const char *id,
			   char *buf, size_t size);

/* Reads a whole file of at most max_size bytes (a plan, checkpoint or
 * offset map) into a malloc'd, NUL-terminated buffer.  -ENOENT (errstr
 * untouched) when absent; KT_ECORRUPT when larger than max_size. */
int kt_replay_read_file(const char *path, uint64_t max_size, char **out, size_t *len,
			char *errstr, size_t errstr_size);

#endif /* KT_REPLAY_CHECKPOINT_PRIV_H */
