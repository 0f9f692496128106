/*
 * workers_priv.h - private to src/capture: `ktape capture --workers-group`
 * (workers.c), many processes sharing one snapshot through a Kafka
 * consumer group and create-once files in the repository
 * (format/repository.md section 8), and the planning steps of capture.c
 * it shares.
 */
#ifndef KT_CAPTURE_WORKERS_PRIV_H
#define KT_CAPTURE_WORKERS_PRIV_H

#include "capture_priv.h"

/* Checks the options a workers group cannot take (KT_EUSAGE). */
int cap_workers_check_opts(const struct kt_capture_opts *opts, char *errstr, size_t errstr_size);
/* Sets the group's consumer properties and rebalance callback on conf,
 * before the operator's -X (consumer_create() calls it). */
int cap_workers_configure(struct kt_capture *cap, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);
/* kt_capture_run() of a worker: returns 0 once the plan's snapshot is
 * committed (by this worker or another), KT_EINTERRUPTED after
 * kt_capture_stop() (the recorded progress is kept), or an error. */
int cap_workers_run(struct kt_capture *cap, char *errstr, size_t errstr_size);
/* KT_ELOCKED, naming the plan and its group, while a workers group's plan
 * is live in repo: a plain capture (which holds the writer lock) must not
 * commit snapshots under it. */
int cap_workers_refuse_live_plan(struct kt_store_repo *repo, char *errstr, size_t errstr_size);

/* capture.c: the consumer handle, the planning of a round (metadata,
 * watermarks, per-partition plans from cap->parent), and the manifest's
 * topics built from the round. */
int cap_consumer_create(struct kt_capture *cap, char *errstr, size_t errstr_size);
int cap_round_plan(struct kt_capture *cap, uint64_t *gap_count, uint64_t *gap_offsets,
		   char *errstr, size_t errstr_size);
int cap_round_build_topics(struct kt_capture *cap, struct kt_store_snapshot *snap);

#endif /* KT_CAPTURE_WORKERS_PRIV_H */
