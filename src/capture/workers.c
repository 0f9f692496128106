/*
 * workers.c - `ktape capture --workers-group NAME`: one snapshot captured by
 * many processes (on many hosts), with Kafka's consumer-group protocol as
 * the only coordinator.  format/repository.md section 8 is the contract;
 * in short:
 *
 *  - The first worker, holding the repository's writer lock for a moment,
 *    fixes the snapshot (id, end offsets, start offsets from the parent,
 *    topic metadata, group offsets) as a plan, written create-once.  Every
 *    other worker reads that plan and captures to those ends.
 *  - Each worker joins the consumer group NAME, subscribed to the plan's
 *    topics, and captures only the partitions the group assigns to it.
 *    Offsets are never committed: the group is used for assignment only.
 *  - Each sealed segment is recorded create-once under the name of its
 *    partition and first offset, so of two workers that both believe they
 *    own a partition during a rebalance exactly one records a range; the
 *    other discards its segment and continues from what was recorded.
 *  - Whoever sees every partition's records reach the plan's end builds
 *    the manifest from the plan and the records and commits it
 *    create-once; every worker then cleans the plan up and exits.
 *
 * A worker is single-threaded: it consumes from the consumer queue and
 * appends to the segment writers, whose own threads compress and write.
 * More throughput comes from more workers.
 */
#include "workers_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Messages taken from librdkafka per call. */
#define WR_BATCH 1024
/* How often a worker looks at the others' progress and for the commit. */
#define WR_CHECK_NS (500 * 1000000LL)
/* Between attempts to take the writer lock to create the plan. */
#define WR_LOCK_RETRY_US (300 * 1000)

struct cap_wpart {
	int owned;     /* assigned to this worker now */
	int done;      /* the recorded chain reached the end */
	int64_t pos;   /* where the records end: the open segment's range starts here */
	int64_t next;  /* the next offset expected */
	struct kt_store_writer *writer;
	char *rel;     /* the open segment's repository-relative path */
	uint64_t records, raw_bytes, stored_bytes; /* recorded by this worker */
	uint64_t open_records, open_bytes;         /* in the open segment */
};

/* The plan parts of one topic: contiguous, in partition order. */
struct cap_wtopic {
	const char *name;
	size_t first;
	size_t count;
};

struct cap_wrun {
	struct kt_capture *cap;
	struct kt_store_repo *repo;
	struct kt_store_plan *plan;
	struct kt_store_plan_progress *progress;
	struct cap_wpart *parts;
	struct cap_wtopic *topics;
	size_t topic_count;
	rd_kafka_topic_t *cached_rkt;
	struct cap_wtopic *cached_topic;
	struct kt_header *headers; /* reused for every record */
	size_t header_cap;
	int cooperative;
	int finished;       /* the snapshot is committed */
	int committed_here;
	int err;            /* the first fatal error */
	char errstr[512];
	int64_t moved_ns;   /* last record appended, range recorded or assignment */
	uint64_t records, raw_bytes, stored_bytes, segments, discarded;
	rd_kafka_message_t *msgs[WR_BATCH];
};

static int wr_fail(struct cap_wrun *wr, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int wr_fail(struct cap_wrun *wr, int err, const char *fmt, ...)
{
	va_list ap;

	if (!wr->err) {
		wr->err = err;
		va_start(ap, fmt);
		vsnprintf(wr->errstr, sizeof(wr->errstr), fmt, ap);
		va_end(ap);
	}
	return err;
}

int cap_workers_check_opts(const struct kt_capture_opts *opts, char *errstr, size_t errstr_size)
{
	const char *g = opts->workers_group;
	size_t len = strlen(g);

	if (opts->follow)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "--workers-group takes one snapshot; --follow is not supported with it "
				 "(run the workers again, e.g. from a timer, for the next snapshot)");
	if (len == 0 || len > 200 || g[0] == '.' || strspn(g, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
							 "0123456789._-") != len)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "--workers-group '%s': a group name is 1 to 200 characters of [A-Za-z0-9._-] "
				 "not starting with '.'", g);
	return 0;
}

int cap_workers_refuse_live_plan(struct kt_store_repo *repo, char *errstr, size_t errstr_size)
{
	struct kt_store_plan *plan = NULL;
	char **ids = NULL;
	size_t count = 0;
	int err;

	err = kt_store_plan_list(repo, &ids, &count, errstr, errstr_size);
	if (err || count == 0)
		goto out;
	err = kt_store_plan_load(repo, ids[0], &plan, errstr, errstr_size);
	if (!err)
		err = kt_seterr(errstr, errstr_size, KT_ELOCKED,
				"repository %s: workers group '%s' is capturing snapshot %s (plans/%s.json); run "
				"`ktape capture --workers-group %s` with the same options to finish it, then capture",
				kt_store_repo_path(repo), plan->group, ids[0], ids[0], plan->group);
out:
	kt_store_plan_destroy(plan);
	kt_store_strv_free(ids, count);
	return err;
}

/* ---- finding a partition ----------------------------------------------------- */

static size_t wr_part_index(struct cap_wrun *wr, struct cap_wtopic *topic, int32_t partition)
{
	const struct kt_store_plan_part *parts = wr->plan->parts;

	if (partition >= 0 && (size_t)partition < topic->count &&
	    parts[topic->first + (size_t)partition].partition == partition)
		return topic->first + (size_t)partition;
	for (size_t i = topic->first; i < topic->first + topic->count; i++)
		if (parts[i].partition == partition)
			return i;
	return SIZE_MAX;
}

static struct cap_wtopic *wr_find_topic(struct cap_wrun *wr, const char *name)
{
	for (size_t t = 0; t < wr->topic_count; t++)
		if (!strcmp(wr->topics[t].name, name))
			return &wr->topics[t];
	return NULL;
}

/* The plan part a message belongs to, or SIZE_MAX. */
static size_t wr_lookup(struct cap_wrun *wr, const rd_kafka_message_t *msg)
{
	if (!msg->rkt)
		return SIZE_MAX;
	if (msg->rkt != wr->cached_rkt) {
		/* Records arrive in runs of one topic: a name lookup per run. */
		wr->cached_topic = wr_find_topic(wr, rd_kafka_topic_name(msg->rkt));
		wr->cached_rkt = msg->rkt;
	}
	return wr->cached_topic ? wr_part_index(wr, wr->cached_topic, msg->partition) : SIZE_MAX;
}

/* ---- segments and records ---------------------------------------------------- */

static void wr_set_paused(struct cap_wrun *wr, size_t i, int pause)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);

	rd_kafka_topic_partition_list_add(list, wr->plan->parts[i].topic, wr->plan->parts[i].partition);
	if (pause)
		rd_kafka_pause_partitions(wr->cap->rk, list);
	else
		rd_kafka_resume_partitions(wr->cap->rk, list);
	rd_kafka_topic_partition_list_destroy(list);
}

/* Drops the open segment unrecorded: the writer removes its file. */
static void wr_abandon(struct cap_wrun *wr, size_t i)
{
	struct cap_wpart *wp = &wr->parts[i];

	kt_store_writer_destroy(wp->writer);
	wp->writer = NULL;
	free(wp->rel);
	wp->rel = NULL;
	wp->open_records = wp->open_bytes = 0;
}

/* Positions part i where the recorded chain ends (another worker recorded
 * further than this one knew): done when that is the end, else fetching
 * continues from there. */
static void wr_resync(struct cap_wrun *wr, size_t i)
{
	struct cap_wpart *wp = &wr->parts[i];
	const struct kt_store_plan_part *pp = &wr->plan->parts[i];
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_error_t *error;

	wr_abandon(wr, i);
	wp->pos = wp->next = kt_store_plan_progress_position(wr->progress, i);
	if (wp->pos >= pp->end) {
		wp->done = 1;
		wr_set_paused(wr, i, 1);
		return;
	}
	list = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(list, pp->topic, pp->partition)->offset = wp->pos;
	/* Asynchronous (timeout 0), as worker.c explains for librdkafka 2.0.2;
	 * records before the position that still arrive are skipped. */
	error = rd_kafka_seek_partitions(wr->cap->rk, list, 0);
	if (error) {
		wr_fail(wr, KT_EKAFKA, "%s [%d]: cannot continue at offset %lld: %s", pp->topic, (int)pp->partition,
			(long long)wp->pos, rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	}
	rd_kafka_topic_partition_list_destroy(list);
}

/* Records [pos, to) of part i: the open segment sealed, or (no segment)
 * as empty or, with gap, as lost to retention.  Losing the create-once
 * race is not an error: the segment is discarded and the partition
 * continues from the winner's record. */
static int wr_record(struct cap_wrun *wr, size_t i, int64_t to, int gap)
{
	struct cap_wpart *wp = &wr->parts[i];
	const struct kt_store_plan_part *pp = &wr->plan->parts[i];
	struct kt_store_plan_record rec;
	struct kt_store_segment_info info;
	char why[512], kti[4200];
	int err;

	memset(&rec, 0, sizeof(rec));
	memset(&info, 0, sizeof(info));
	rec.part = i;
	rec.from = wp->pos;
	rec.to = to;
	rec.kind = gap ? KT_PLAN_RECORD_GAP : KT_PLAN_RECORD_EMPTY;
	if (wp->writer) {
		err = kt_store_writer_seal(wp->writer, &info, why, sizeof(why));
		kt_store_writer_destroy(wp->writer);
		wp->writer = NULL;
		if (err) {
			wr_abandon(wr, i);
			return wr_fail(wr, err, "%s [%d]: %s", pp->topic, (int)pp->partition, why);
		}
		rec.kind = KT_PLAN_RECORD_SEGMENT;
		rec.segment.path = wp->rel;
		rec.segment.first_offset = info.first_offset;
		rec.segment.last_offset = info.last_offset;
		rec.segment.min_ts = info.min_ts;
		rec.segment.max_ts = info.max_ts;
		rec.segment.records = info.record_count;
		rec.segment.raw_bytes = info.raw_bytes;
		rec.segment.file_size = info.file_size;
		rec.segment.checksum = info.checksum;
	}
	if (to <= wp->pos && rec.kind != KT_PLAN_RECORD_SEGMENT)
		return 0;
	err = kt_store_plan_progress_record(wr->repo, wr->progress, &rec, why, sizeof(why));
	if (err == KT_EEXIST || err == KT_ERANGE) {
		/* Another worker owned this partition too (a rebalance in
		 * flight) and recorded first. */
		kt_log(wr->cap->opts.log, KT_LOG_WARN,
		       "%s [%d]: offsets from %lld were recorded by another worker first; discarding %s and "
		       "continuing from its record", pp->topic, (int)pp->partition, (long long)rec.from,
		       wp->rel ? wp->rel : "nothing");
		if (wp->rel) {
			char ignored[256];

			kt_store_repo_remove_file(wr->repo, wp->rel, ignored, sizeof(ignored));
			if (kt_store_index_path(wp->rel, kti, sizeof(kti)) == 0)
				kt_store_repo_remove_file(wr->repo, kti, ignored, sizeof(ignored));
			wr->discarded++;
		}
		err = kt_store_plan_progress_refresh(wr->repo, wr->progress, why, sizeof(why));
		if (err)
			return wr_fail(wr, err, "%s", why);
		wr_resync(wr, i);
		return 0;
	}
	if (err)
		return wr_fail(wr, err, "%s [%d]: cannot record offsets %lld..%lld: %s", pp->topic,
			       (int)pp->partition, (long long)rec.from, (long long)to - 1, why);
	if (rec.kind == KT_PLAN_RECORD_SEGMENT) {
		/* Only what is recorded counts: a discarded segment's records
		 * are another worker's. */
		wr->segments++;
		wr->records += wp->open_records;
		wr->raw_bytes += wp->open_bytes;
		wr->stored_bytes += info.file_size;
		wp->records += wp->open_records;
		wp->raw_bytes += wp->open_bytes;
		wp->stored_bytes += info.file_size;
		kt_log(wr->cap->opts.log, KT_LOG_DEBUG, "%s [%d]: recorded %s: offsets %lld..%lld", pp->topic,
		       (int)pp->partition, wp->rel, (long long)rec.from, (long long)to - 1);
	}
	free(wp->rel);
	wp->rel = NULL;
	wp->open_records = wp->open_bytes = 0;
	wp->pos = to;
	wr->moved_ns = kt_now_ns();
	if (to >= pp->end) {
		wp->done = 1;
		wr_set_paused(wr, i, 1);
	}
	return 0;
}

static int wr_open_segment(struct cap_wrun *wr, size_t i, int64_t first_offset)
{
	struct kt_capture *cap = wr->cap;
	struct cap_wpart *wp = &wr->parts[i];
	const struct kt_store_plan_part *pp = &wr->plan->parts[i];
	struct kt_store_writer_opts wopts;
	char rel[4096], abs[4096], why[512];
	int err;

	err = kt_store_repo_new_segment_path(wr->repo, pp->topic, pp->partition, first_offset, rel, sizeof(rel),
					     abs, sizeof(abs), why, sizeof(why));
	if (!err && !(wp->rel = strdup(rel)))
		err = kt_seterr(why, sizeof(why), -ENOMEM, "out of memory");
	if (err)
		return wr_fail(wr, err, "%s [%d]: cannot start a segment: %s", pp->topic, (int)pp->partition, why);
	cap_writer_opts(cap, wr->repo, &wopts);
	err = kt_store_writer_create(&wp->writer, abs, pp->topic, pp->partition, &wopts, why, sizeof(why));
	if (err) {
		free(wp->rel);
		wp->rel = NULL;
		return wr_fail(wr, err, "%s [%d]: cannot start a segment: %s", pp->topic, (int)pp->partition, why);
	}
	return 0;
}

static void wr_append(struct cap_wrun *wr, size_t i, rd_kafka_message_t *msg)
{
	struct cap_wpart *wp = &wr->parts[i];
	const struct kt_store_plan_part *pp = &wr->plan->parts[i];
	struct kt_record rec;
	char why[512];
	int err;

	if (!wp->writer && wr_open_segment(wr, i, msg->offset))
		return;
	err = cap_record_from_message(msg, &wr->headers, &wr->header_cap, &rec);
	if (err) {
		wr_fail(wr, err, "%s [%d] offset %lld: cannot read the record's headers", pp->topic,
			(int)pp->partition, (long long)msg->offset);
		return;
	}
	err = kt_store_writer_append(wp->writer, &rec, why, sizeof(why));
	if (err) {
		wr_fail(wr, err, "%s [%d] offset %lld: %s", pp->topic, (int)pp->partition, (long long)msg->offset, why);
		return;
	}
	wp->next = msg->offset + 1;
	wr->moved_ns = kt_now_ns();
	wp->open_records++;
	wp->open_bytes += rec.key_len + rec.value_len;
	if (wp->next >= pp->end)
		wr_record(wr, i, pp->end, 0);
	else if (kt_store_writer_raw_bytes(wp->writer) >= wr->cap->opts.segment_size)
		wr_record(wr, i, wp->next, 0);
}

/* Retention deleted the records at the fetch position while the worker
 * ran: what was captured is recorded, then the hole as a gap. */
static void wr_retention(struct cap_wrun *wr, size_t i)
{
	struct cap_wpart *wp = &wr->parts[i];
	const struct kt_store_plan_part *pp = &wr->plan->parts[i];
	int64_t low = -1, high = -1, at;
	rd_kafka_resp_err_t rerr;

	rerr = rd_kafka_query_watermark_offsets(wr->cap->rk, pp->topic, pp->partition, &low, &high,
						(int)wr->cap->opts.timeout_ms);
	if (rerr) {
		wr_fail(wr, KT_EKAFKA, "%s [%d]: offset %lld is out of range and the watermarks cannot be read: %s",
			pp->topic, (int)pp->partition, (long long)wp->next, rd_kafka_err2str(rerr));
		return;
	}
	if (low <= wp->next) {
		wr_fail(wr, KT_ERANGE, "%s [%d]: offset %lld is out of range although the log spans %lld..%lld: "
			"the log was truncated", pp->topic, (int)pp->partition, (long long)wp->next, (long long)low,
			(long long)high);
		return;
	}
	if (low > pp->end)
		low = pp->end;
	kt_log(wr->cap->opts.log, KT_LOG_ERROR,
	       "%s [%d]: retention deleted offsets %lld..%lld before they could be captured", pp->topic,
	       (int)pp->partition, (long long)wp->next, (long long)low - 1);
	at = wp->next;
	/* Each step may lose the create-once race, which repositions the
	 * partition: then the winner's records stand and this stops. */
	if (wp->writer && (wr_record(wr, i, at, 0) || wp->done || wp->pos != at))
		return;
	if (wr_record(wr, i, low, 1) || wp->done || wp->pos != low)
		return;
	wr_resync(wr, i);
}

static void wr_handle(struct cap_wrun *wr, rd_kafka_message_t *msg)
{
	size_t i = wr_lookup(wr, msg);
	struct cap_wpart *wp;
	const struct kt_store_plan_part *pp;

	if (i == SIZE_MAX || !wr->parts[i].owned || wr->parts[i].done)
		return;
	wp = &wr->parts[i];
	pp = &wr->plan->parts[i];
	if (msg->err) {
		switch (msg->err) {
		case RD_KAFKA_RESP_ERR__PARTITION_EOF:
			/* The log ends at or past the plan's end: offsets left
			 * were never served (markers, compaction). */
			if (msg->offset >= pp->end)
				wr_record(wr, i, pp->end, 0);
			return;
		case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
		case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
			wr_retention(wr, i);
			return;
		case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
		case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
		case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
		case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
		case RD_KAFKA_RESP_ERR__FATAL:
			wr_fail(wr, KT_EKAFKA, "%s [%d]: %s", pp->topic, (int)pp->partition, rd_kafka_message_errstr(msg));
			return;
		default:
			kt_log(wr->cap->opts.log, KT_LOG_WARN, "%s [%d]: %s (retrying)", pp->topic, (int)pp->partition,
			       rd_kafka_message_errstr(msg));
			return;
		}
	}
	if (msg->offset < wp->next)
		return; /* delivered again after a seek */
	if (msg->offset >= pp->end) {
		wr_record(wr, i, pp->end, 0);
		return;
	}
	wr_append(wr, i, msg);
}

/* ---- the group ----------------------------------------------------------------- */

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *list,
			 void *opaque)
{
	struct kt_capture *cap = opaque;
	struct cap_wrun *wr = cap->wrun;
	rd_kafka_topic_partition_list_t *done = rd_kafka_topic_partition_list_new(list->cnt);
	rd_kafka_error_t *error = NULL;
	rd_kafka_resp_err_t rerr = 0;
	char why[512];

	wr->cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
	wr->moved_ns = kt_now_ns();
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		/* Start each partition where the records of every worker end,
		 * read now: the previous owner may have recorded up to the
		 * moment it lost the partition. */
		if (kt_store_plan_progress_refresh(wr->repo, wr->progress, why, sizeof(why)))
			kt_log(cap->opts.log, KT_LOG_WARN, "cannot read the progress records: %s", why);
		for (int k = 0; k < list->cnt; k++) {
			rd_kafka_topic_partition_t *tp = &list->elems[k];
			struct cap_wtopic *topic = wr_find_topic(wr, tp->topic);
			size_t i = topic ? wr_part_index(wr, topic, tp->partition) : SIZE_MAX;
			struct cap_wpart *wp;

			if (i == SIZE_MAX) {
				/* A partition added after the plan: not part of
				 * this snapshot. */
				tp->offset = RD_KAFKA_OFFSET_END;
				rd_kafka_topic_partition_list_add(done, tp->topic, tp->partition);
				continue;
			}
			wp = &wr->parts[i];
			wr_abandon(wr, i);
			wp->owned = 1;
			wp->pos = wp->next = kt_store_plan_progress_position(wr->progress, i);
			wp->done = wp->pos >= wr->plan->parts[i].end;
			tp->offset = wp->done ? wr->plan->parts[i].end : wp->pos;
			if (wp->done)
				rd_kafka_topic_partition_list_add(done, tp->topic, tp->partition);
			kt_log(cap->opts.log, KT_LOG_DEBUG, "assigned %s [%d] at offset %lld%s", tp->topic,
			       (int)tp->partition, (long long)wp->pos, wp->done ? " (complete)" : "");
		}
		/* A partition paused by an earlier assignment stays paused. */
		rd_kafka_resume_partitions(rk, list);
		if (wr->cooperative)
			error = rd_kafka_incremental_assign(rk, list);
		else
			rerr = rd_kafka_assign(rk, list);
		rd_kafka_pause_partitions(rk, done);
		kt_log(cap->opts.log, KT_LOG_INFO, "workers group %s: %d partitions assigned to this worker",
		       cap->workers_group, list->cnt);
	} else {
		/* Revoked (or the assignment was lost): what is not recorded
		 * is dropped, so the next owner's records are the only ones. */
		for (int k = 0; k < list->cnt; k++) {
			struct cap_wtopic *topic = wr_find_topic(wr, list->elems[k].topic);
			size_t i = topic ? wr_part_index(wr, topic, list->elems[k].partition) : SIZE_MAX;

			if (i == SIZE_MAX)
				continue;
			wr_abandon(wr, i);
			wr->parts[i].owned = 0;
		}
		if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
			kt_log(cap->opts.log, KT_LOG_WARN, "workers group %s: rebalance error: %s", cap->workers_group,
			       rd_kafka_err2str(err));
		if (wr->cooperative)
			error = rd_kafka_incremental_unassign(rk, list);
		else
			rerr = rd_kafka_assign(rk, NULL);
		kt_log(cap->opts.log, KT_LOG_INFO, "workers group %s: %d partitions revoked from this worker",
		       cap->workers_group, list->cnt);
	}
	if (error) {
		wr_fail(wr, KT_EKAFKA, "workers group %s: cannot apply the assignment: %s", cap->workers_group,
			rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	} else if (rerr) {
		wr_fail(wr, KT_EKAFKA, "workers group %s: cannot apply the assignment: %s", cap->workers_group,
			rd_kafka_err2str(rerr));
	}
	rd_kafka_topic_partition_list_destroy(done);
}

int cap_workers_configure(struct kt_capture *cap, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
	/* The group assigns the partitions; nothing is ever committed (the
	 * repository's records are the progress).  cooperative-sticky moves
	 * only the partitions that must move when a worker joins or dies, so
	 * the others keep their open segments. */
	static const char *const props[][2] = {
		{ "partition.assignment.strategy", "cooperative-sticky" },
		{ "enable.auto.commit", "false" },
		{ "client.id", "ktape-capture-worker" },
		/* A dead worker's partitions move after this long (Kafka's
		 * default is 45 s).  librdkafka's mock also makes the next
		 * group of workers wait this long to join after one leaves. */
		{ "session.timeout.ms", "10000" },
		{ "heartbeat.interval.ms", "1000" },
	};
	char why[512], kbytes[32];

	if (rd_kafka_conf_set(conf, "group.id", cap->workers_group, why, sizeof(why)) != RD_KAFKA_CONF_OK)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "--workers-group: %s", why);
	/* A worker stages nothing itself: librdkafka's queue is its staging,
	 * so it gets half the memory budget (the open blocks the other half).
	 * Smaller, it fills while a block compresses and librdkafka 2.0.2
	 * then stops fetching for a whole second (128 MB, one worker: 2.1 s
	 * with 16 MiB, 1.0 s with 64 MiB). */
	snprintf(kbytes, sizeof(kbytes), "%llu", (unsigned long long)(cap->opts.memory_budget / 2 / 1024));
	if (rd_kafka_conf_set(conf, "queued.max.messages.kbytes", kbytes, why, sizeof(why)) != RD_KAFKA_CONF_OK)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "queued.max.messages.kbytes: %s", why);
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		if (rd_kafka_conf_set(conf, props[i][0], props[i][1], why, sizeof(why)) != RD_KAFKA_CONF_OK)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE, "librdkafka property '%s': %s", props[i][0],
					 why);
	rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
	return 0;
}

/* ---- the plan ------------------------------------------------------------------- */

/* Under the writer lock, with no live plan: fixes the snapshot. */
static int wr_create_plan(struct cap_wrun *wr, char *errstr, size_t errstr_size)
{
	struct kt_capture *cap = wr->cap;
	struct kt_store_plan *plan = NULL;
	struct kt_store_snapshot *snap;
	uint64_t gap_count = 0, gap_offsets = 0;
	uint32_t groups = 0;
	char host[256] = "";
	int err;

	kt_store_snapshot_destroy(cap->parent);
	cap->parent = NULL;
	err = kt_store_repo_load_snapshot(wr->repo, "latest", &cap->parent, errstr, errstr_size);
	if (err == KT_ENOTFOUND)
		err = 0;
	if (!err)
		err = cap_round_plan(cap, &gap_count, &gap_offsets, errstr, errstr_size);
	if (err)
		goto out;
	plan = kt_store_plan_create();
	if (!plan) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	snap = plan->manifest;
	err = kt_store_plan_new_id(wr->repo, plan->id, errstr, errstr_size);
	if (err)
		goto out;
	snprintf(snap->id, sizeof(snap->id), "%s", plan->id);
	snprintf(snap->parent, sizeof(snap->parent), "%s", cap->parent ? cap->parent->id : "");
	snap->kind = cap->parent ? KT_SNAPSHOT_INCREMENTAL : KT_SNAPSHOT_FULL;
	snap->started_ms = cap->round_started_ms;
	snap->completed_ms = cap->round_started_ms;
	snap->source = strdup(cap->source);
	/* The group offsets belong to the moment the end offsets were fixed. */
	err = cap_admin_group_offsets(cap, snap, &groups);
	if (err) {
		kt_seterr(errstr, errstr_size, err, "cannot record consumer-group offsets: %s", kt_strerror(err));
		goto out;
	}
	cap_admin_configs_finish(cap, cap_admin_configs_start(cap));
	/* The plan's manifest says every partition reaches its end; the
	 * records fill in the segments that prove it. */
	for (size_t t = 0; t < cap->topic_count; t++)
		for (size_t p = 0; p < cap->topics[t].part_count; p++)
			cap->topics[t].parts[p].done = 1;
	if (!snap->source || cap_round_build_topics(cap, snap)) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t t = 0; t < cap->topic_count && !err; t++)
		for (size_t p = 0; p < cap->topics[t].part_count && !err; p++) {
			const struct cap_part *part = &cap->topics[t].parts[p];

			err = kt_store_plan_add_part(plan, cap->topics[t].name, part->partition, part->plan.fetch_from,
						     part->plan.end);
		}
	if (err) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	snprintf(plan->group, sizeof(plan->group), "%s", cap->workers_group);
	plan->created_ms = kt_wall_ms();
	gethostname(host, sizeof(host) - 1);
	if (asprintf(&plan->creator, "%s %ld", host, (long)getpid()) < 0) {
		plan->creator = NULL;
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	err = kt_store_plan_write(wr->repo, plan, errstr, errstr_size);
	if (!err)
		kt_log(cap->opts.log, KT_LOG_INFO, "workers group %s: planned snapshot %s (%zu partitions%s%s)",
		       cap->workers_group, plan->id, plan->part_count, cap->parent ? ", continuing " : "",
		       cap->parent ? cap->parent->id : "");
out:
	kt_store_plan_destroy(plan);
	return err;
}

/* Loads the live plan of this group into wr (1), or 0 when none is live.
 * Another group's plan is KT_ELOCKED. */
static int wr_load_plan(struct cap_wrun *wr, struct kt_store_repo *repo, char *errstr, size_t errstr_size)
{
	char **ids = NULL;
	size_t count = 0;
	int err;

	err = kt_store_plan_list(repo, &ids, &count, errstr, errstr_size);
	for (size_t i = 0; i < count && !err; i++) {
		struct kt_store_plan *plan = NULL;

		err = kt_store_plan_load(repo, ids[i], &plan, errstr, errstr_size);
		if (err == KT_ENOTFOUND) {
			err = 0; /* removed since the listing: committed */
			continue;
		}
		if (err)
			break;
		if (strcmp(plan->group, wr->cap->workers_group) != 0) {
			err = kt_seterr(errstr, errstr_size, KT_ELOCKED,
					"repository %s: another workers group, '%s', is capturing snapshot %s; "
					"one workers group at a time", kt_store_repo_path(repo), plan->group, plan->id);
			kt_store_plan_destroy(plan);
			break;
		}
		wr->plan = plan;
		err = 1;
	}
	kt_store_strv_free(ids, count);
	return err;
}

/* Finds this group's live plan or, as the first worker, makes it.  Leaves
 * wr->repo open without the writer lock. */
static int wr_plan_open(struct cap_wrun *wr, char *errstr, size_t errstr_size)
{
	struct kt_capture *cap = wr->cap;
	int64_t deadline = kt_now_ns() + cap->opts.timeout_ms * 1000000;
	struct kt_store_repo *locked = NULL;
	int err;

	for (;;) {
		if (cap->stop)
			return kt_seterr(errstr, errstr_size, KT_EINTERRUPTED, "interrupted before the plan was read");
		err = kt_store_repo_open(&wr->repo, cap->repo_path, 0, cap->repo_mode, errstr, errstr_size);
		if (!err) {
			err = wr_load_plan(wr, wr->repo, errstr, errstr_size);
			if (err)
				return err < 0 ? err : 0;
			kt_store_repo_destroy(wr->repo);
			wr->repo = NULL;
		} else {
			/* No repository yet: like a plain capture, create it
			 * only once the cluster answered and the topics exist. */
			uint64_t gc, go;

			err = cap_round_plan(cap, &gc, &go, errstr, errstr_size);
			if (err)
				return err;
		}
		/* No plan: the first worker to take the writer lock makes it.
		 * The lock also keeps a plain capture or a prune out while
		 * the plan is being made. */
		err = kt_store_repo_open(&locked, cap->repo_path, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK,
					 cap->repo_mode, errstr, errstr_size);
		if (err == KT_ELOCKED) {
			if (kt_now_ns() > deadline)
				return kt_seterr(errstr, errstr_size, KT_ELOCKED,
						 "no plan of workers group %s appeared within %lld ms and the "
						 "repository's writer lock stayed taken", cap->workers_group,
						 (long long)cap->opts.timeout_ms);
			usleep(WR_LOCK_RETRY_US);
			continue;
		}
		if (err)
			return err;
		err = wr_load_plan(wr, locked, errstr, errstr_size);
		if (err == 0) {
			wr->repo = locked;
			err = wr_create_plan(wr, errstr, errstr_size);
			wr->repo = NULL;
		} else if (err == 1) {
			kt_store_plan_destroy(wr->plan);
			wr->plan = NULL;
			err = 0;
		}
		/* Releases the lock: the workers share the repository through
		 * create-once files only. */
		kt_store_repo_destroy(locked);
		locked = NULL;
		if (err)
			return err;
	}
}

static int wr_snapshot_exists(struct cap_wrun *wr, int *exists, char *errstr, size_t errstr_size)
{
	char **ids = NULL;
	size_t count = 0;
	int err;

	*exists = 0;
	err = kt_store_repo_list_snapshots(wr->repo, &ids, &count, errstr, errstr_size);
	for (size_t i = 0; i < count && !err; i++)
		if (!strcmp(ids[i], wr->plan->id))
			*exists = 1;
	kt_store_strv_free(ids, count);
	return err;
}

/* Looks at everyone's progress: commits the snapshot when every partition
 * is complete, and notices when another worker did. */
static int wr_check(struct cap_wrun *wr, char *errstr, size_t errstr_size)
{
	struct kt_store_snapshot *snap = NULL;
	int exists, err;

	err = wr_snapshot_exists(wr, &exists, errstr, errstr_size);
	if (err || exists) {
		wr->finished = exists;
		return err;
	}
	err = kt_store_plan_progress_refresh(wr->repo, wr->progress, errstr, errstr_size);
	if (err || kt_store_plan_progress_remaining(wr->progress) > 0)
		return err;
	err = kt_store_plan_build_manifest(wr->progress, kt_wall_ms(), &snap, errstr, errstr_size);
	if (!err)
		err = kt_store_plan_commit(wr->repo, snap, errstr, errstr_size);
	if (!err) {
		wr->committed_here = 1;
		kt_log(wr->cap->opts.log, KT_LOG_INFO, "committed %s snapshot %s",
		       snap->kind == KT_SNAPSHOT_INCREMENTAL ? "incremental" : "full", snap->id);
	}
	if (err == KT_EEXIST)
		err = 0; /* another worker committed the same snapshot first */
	wr->finished = !err;
	kt_store_snapshot_destroy(snap);
	return err;
}

static int wr_setup(struct cap_wrun *wr, char *errstr, size_t errstr_size)
{
	struct kt_store_plan *plan = wr->plan;
	rd_kafka_topic_partition_list_t *subscription;
	rd_kafka_resp_err_t rerr;
	size_t active = 0;

	wr->parts = calloc(plan->part_count + 1, sizeof(*wr->parts));
	wr->topics = calloc(plan->part_count + 1, sizeof(*wr->topics));
	if (!wr->parts || !wr->topics || kt_store_plan_progress_create(&wr->progress, plan))
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	for (size_t i = 0; i < plan->part_count; i++) {
		if (!wr->topic_count || strcmp(wr->topics[wr->topic_count - 1].name, plan->parts[i].topic) != 0) {
			wr->topics[wr->topic_count].name = plan->parts[i].topic;
			wr->topics[wr->topic_count++].first = i;
		}
		wr->topics[wr->topic_count - 1].count++;
		active += plan->parts[i].from < plan->parts[i].end;
	}
	/* Blocks as a plain capture sizes them, for the partitions one worker
	 * may end up with: all of them, when it is the last one alive. */
	wr->cap->block_size = wr->cap->opts.block_size;
	if (!wr->cap->block_size) {
		size_t size = active ? (size_t)(wr->cap->opts.memory_budget / 2 / (active * 8)) : (1u << 20);

		wr->cap->block_size = size > (1u << 20) ? (1u << 20) : size < (16u << 10) ? (16u << 10) : size;
	}
	subscription = rd_kafka_topic_partition_list_new((int)wr->topic_count);
	for (size_t t = 0; t < wr->topic_count; t++)
		rd_kafka_topic_partition_list_add(subscription, wr->topics[t].name, RD_KAFKA_PARTITION_UA);
	rerr = rd_kafka_subscribe(wr->cap->rk, subscription);
	rd_kafka_topic_partition_list_destroy(subscription);
	if (rerr)
		return kt_seterr(errstr, errstr_size, KT_EKAFKA, "workers group %s: cannot subscribe: %s",
				 wr->cap->workers_group, rd_kafka_err2str(rerr));
	return 0;
}

/* A worker whose own unfinished partitions have not moved for the whole
 * --timeout stops (like a plain capture's stall), naming one of them; a
 * worker with nothing left to do waits for the others indefinitely. */
static void wr_watch_stall(struct cap_wrun *wr)
{
	int64_t timeout_ns = wr->cap->opts.timeout_ms * 1000000;

	if (kt_now_ns() - wr->moved_ns <= timeout_ns)
		return;
	for (size_t i = 0; i < wr->plan->part_count; i++)
		if (wr->parts[i].owned && !wr->parts[i].done) {
			wr_fail(wr, KT_ETIMEDOUT,
				"no progress for %lld ms: %s [%d] stands at offset %lld of %lld; the plan keeps what "
				"was recorded, run the workers again to continue", (long long)wr->cap->opts.timeout_ms,
				wr->plan->parts[i].topic, (int)wr->plan->parts[i].partition,
				(long long)wr->parts[i].next, (long long)wr->plan->parts[i].end);
			return;
		}
}

static int wr_loop(struct cap_wrun *wr, char *errstr, size_t errstr_size)
{
	struct kt_capture *cap = wr->cap;
	rd_kafka_queue_t *rkqu = rd_kafka_queue_get_consumer(cap->rk);
	int64_t next_check = 0;
	int err = 0;

	wr->moved_ns = kt_now_ns();
	while (!wr->err && !wr->finished && !cap->stop) {
		ssize_t n = rd_kafka_consume_batch_queue(rkqu, 100, wr->msgs, WR_BATCH);

		for (ssize_t k = 0; k < n; k++) {
			if (!wr->err)
				wr_handle(wr, wr->msgs[k]);
			rd_kafka_message_destroy(wr->msgs[k]);
		}
		if (n < 0)
			wr_fail(wr, KT_EKAFKA, "cannot consume: %s", rd_kafka_err2str(rd_kafka_last_error()));
		if (kt_now_ns() >= next_check && !wr->err) {
			err = wr_check(wr, errstr, errstr_size);
			if (err)
				break;
			if (!wr->finished)
				wr_watch_stall(wr);
			next_check = kt_now_ns() + WR_CHECK_NS;
		}
	}
	rd_kafka_queue_destroy(rkqu);
	if (!err && wr->err)
		err = kt_seterr(errstr, errstr_size, wr->err, "%s", wr->errstr);
	return err;
}

/* The summary of this worker's share: the snapshot's id and kind, and the
 * records, bytes and segments this worker recorded, per topic.  The
 * topic summaries belong to the capture (kt_capture_destroy() frees them). */
static void wr_summary(struct cap_wrun *wr)
{
	struct kt_capture *cap = wr->cap;
	struct kt_capture_summary *s = &cap->summary;
	struct kt_capture_topic_summary *ts;

	for (size_t i = 0; i < s->topic_count; i++)
		free((char *)cap->topic_summaries[i].name);
	free(cap->topic_summaries);
	memset(s, 0, sizeof(*s));
	cap->topic_summaries = ts = calloc(wr->topic_count + 1, sizeof(*ts));
	for (size_t t = 0; ts && t < wr->topic_count; t++) {
		const struct cap_wtopic *topic = &wr->topics[t];

		if (!(ts[t].name = strdup(topic->name)))
			break;
		s->topic_count = t + 1;
		ts[t].partitions = (uint32_t)topic->count;
		ts[t].configs_available = kt_store_snapshot_find_topic(wr->plan->manifest, topic->name) &&
					  kt_store_snapshot_find_topic(wr->plan->manifest, topic->name)->configs_available;
		for (size_t i = topic->first; i < topic->first + topic->count; i++) {
			ts[t].records += wr->parts[i].records;
			ts[t].raw_bytes += wr->parts[i].raw_bytes;
			ts[t].stored_bytes += wr->parts[i].stored_bytes;
		}
	}
	s->topics = cap->topic_summaries;
	snprintf(s->snapshot_id, sizeof(s->snapshot_id), "%s", wr->plan->id);
	snprintf(s->parent_id, sizeof(s->parent_id), "%s", wr->plan->manifest->parent);
	s->kind = wr->plan->manifest->parent[0] ? KT_SNAPSHOT_INCREMENTAL : KT_SNAPSHOT_FULL;
	s->started_ms = wr->plan->manifest->started_ms;
	s->completed_ms = kt_wall_ms();
	s->duration_ns = (s->completed_ms - s->started_ms) * 1000000;
	/* What this worker wrote; the snapshot holds every worker's. */
	s->records = wr->records;
	s->raw_bytes = wr->raw_bytes;
	s->stored_bytes = wr->stored_bytes;
	s->segments = wr->segments;
	s->partitions = (uint32_t)wr->plan->part_count;
	s->configs_available = 1;
	for (size_t t = 0; t < s->topic_count; t++)
		s->configs_available &= ts[t].configs_available;
}

/* The offsets the committed snapshot newly records as lost to retention
 * (gaps at or after the parent's end of their partition), whichever worker
 * found them: every worker of the group reports them, as a plain capture
 * does, through the summary and KT_EGAP. */
static int wr_new_gaps(struct cap_wrun *wr, char *errstr, size_t errstr_size)
{
	struct kt_capture *cap = wr->cap;
	struct kt_store_snapshot *snap = NULL, *parent = NULL;
	struct kt_capture_summary *s = &cap->summary;
	int err;

	err = kt_store_repo_load_snapshot(wr->repo, wr->plan->id, &snap, errstr, errstr_size);
	if (!err && snap->parent[0])
		err = kt_store_repo_load_snapshot(wr->repo, snap->parent, &parent, errstr, errstr_size);
	if (err)
		goto out;
	for (size_t t = 0; t < snap->topic_count; t++) {
		const struct kt_store_topic *topic = &snap->topics[t];
		const struct kt_store_topic *ptopic = parent ? kt_store_snapshot_find_topic(parent, topic->name) : NULL;
		struct kt_capture_topic_summary *ts = NULL;

		for (size_t i = 0; i < s->topic_count; i++)
			if (strcmp(cap->topic_summaries[i].name, topic->name) == 0)
				ts = &cap->topic_summaries[i];
		for (size_t p = 0; p < topic->n_partitions; p++) {
			const struct kt_store_partition *part = &topic->partitions[p];
			const struct kt_store_partition *pp = ptopic ? kt_store_topic_find_partition(ptopic, part->partition) : NULL;
			int64_t old_end = pp ? pp->end_offset : INT64_MIN;

			for (size_t g = 0; g < part->gap_count; g++) {
				uint64_t n = (uint64_t)(part->gaps[g].to - part->gaps[g].from);

				if (part->gaps[g].from < old_end)
					continue;
				s->gap_count++;
				s->gap_offsets += n;
				cap->total_gap_offsets += n;
				if (ts)
					ts->gap_offsets += n;
			}
		}
	}
out:
	kt_store_snapshot_destroy(parent);
	kt_store_snapshot_destroy(snap);
	return err;
}

int cap_workers_run(struct kt_capture *cap, char *errstr, size_t errstr_size)
{
	struct cap_wrun *wr = calloc(1, sizeof(*wr));
	char why[512];
	int err;

	if (!wr)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	wr->cap = cap;
	cap->wrun = wr;
	err = cap_consumer_create(cap, errstr, errstr_size);
	if (err)
		goto out;
	/* Error and log callbacks are served by the consumer loop. */
	rd_kafka_poll_set_consumer(cap->rk);
	err = wr_plan_open(wr, errstr, errstr_size);
	if (!err)
		err = wr_setup(wr, errstr, errstr_size);
	if (!err)
		err = wr_check(wr, errstr, errstr_size);
	if (!err && !wr->finished)
		kt_log(cap->opts.log, KT_LOG_INFO, "workers group %s: capturing snapshot %s with the group's members",
		       cap->workers_group, wr->plan->id);
	if (!err)
		err = wr_loop(wr, errstr, errstr_size);
	for (size_t i = 0; wr->plan && wr->parts && i < wr->plan->part_count; i++)
		wr_abandon(wr, i);
	if (!err && cap->stop && !wr->finished)
		err = kt_seterr(errstr, errstr_size, KT_EINTERRUPTED,
				"interrupted: plan %s keeps what was recorded; run the workers of group %s again to "
				"finish snapshot %s", wr->plan->id, cap->workers_group, wr->plan->id);
	if (!err && wr->finished) {
		if (!wr->committed_here)
			kt_log(cap->opts.log, KT_LOG_INFO, "snapshot %s was committed by another worker", wr->plan->id);
		/* Every worker cleans up; removing what another removed is not
		 * an error. */
		if (kt_store_plan_remove(wr->repo, wr->plan->id, why, sizeof(why)))
			kt_log(cap->opts.log, KT_LOG_WARN, "cannot remove the plan of snapshot %s: %s", wr->plan->id,
			       why);
		wr_summary(wr);
		cap->total_gap_offsets = 0;
		err = wr_new_gaps(wr, errstr, errstr_size);
		if (!err && cap->opts.on_snapshot)
			cap->opts.on_snapshot(cap->opts.opaque, &cap->summary);
		if (!err && cap->total_gap_offsets > 0)
			err = kt_seterr(errstr, errstr_size, KT_EGAP,
					"%llu offsets were deleted by retention before they could be captured; "
					"snapshot %s records the gaps", (unsigned long long)cap->total_gap_offsets,
					wr->plan->id);
	}
out:
	if (cap->rk) {
		/* Leaving the group revokes this worker's partitions (the
		 * rebalance callback still runs: cap->wrun stays set). */
		rd_kafka_consumer_close(cap->rk);
		rd_kafka_destroy(cap->rk);
		cap->rk = NULL;
	}
	cap->wrun = NULL;
	for (size_t i = 0; wr->plan && wr->parts && i < wr->plan->part_count; i++)
		wr_abandon(wr, i);
	free(wr->parts);
	free(wr->topics);
	free(wr->headers);
	kt_store_plan_progress_destroy(wr->progress);
	kt_store_plan_destroy(wr->plan);
	kt_store_repo_destroy(wr->repo);
	free(wr);
	return err;
}
