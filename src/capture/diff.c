/*
 * diff.c - `ktape diff`: compare a snapshot with the live topics it came
 * from, record by record, to prove that a backup matches its source.
 *
 * For each partition of the snapshot, the live partition is read over the
 * snapshot's [start_offset, end_offset) by explicit assignment (no group
 * joins, nothing is committed) and merged by offset with the snapshot's
 * records read through kt_store_scan.  Records are compared byte for byte:
 * key, value (null distinct from empty), headers in order, timestamp and
 * timestamp type.  Partitions are assigned in batches so that librdkafka
 * prefetches the next partitions while one is being compared, and only one
 * snapshot scan is open at a time: memory stays bounded by the prefetch
 * limit and one block, whatever the data size.
 */
#include "kt_capture.h"
#include "kt_store.h"

#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Partitions assigned at once: enough for librdkafka to fetch ahead, few
 * enough that the prefetched records stay small. */
#define DIFF_BATCH 32

struct diff_part {
	const struct kt_store_topic *topic;
	const struct kt_store_partition *part;
	const char *ltopic;     /* the live partition compared: the same, */
	int32_t lpart;          /* or where a restore put it (route) */
	int routed;
	struct kt_capture_diff_route route;
	rd_kafka_queue_t *rkqu; /* the partition's records, forwarded here */
	int exists;             /* the partition exists in the live cluster */
	int64_t low, high;      /* its live watermarks, when it exists */
	int64_t lo, hi;         /* the live offsets to read: [lo, hi) */
};

struct diff_ctx {
	const struct kt_capture_diff_opts *opts;
	struct kt_capture_diff_result *result;
	struct kt_store_repo *repo;
	rd_kafka_t *rk;
	const struct rd_kafka_metadata *md;
	char errstr[512]; /* librdkafka's last error, for the log */
};

void kt_capture_diff_opts_init(struct kt_capture_diff_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->timeout_ms = 30000;
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	struct diff_ctx *ctx = rd_kafka_opaque(rk);

	(void)level;
	if (ctx)
		kt_log(ctx->opts->log, KT_LOG_DEBUG, "librdkafka %s: %s", fac, buf);
}

static int set_prop(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
		    size_t errstr_size)
{
	char why[512];

	if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) == RD_KAFKA_CONF_OK)
		return 0;
	/* librdkafka's message may quote the value: keep secrets out. */
	return kt_seterr(errstr, errstr_size, KT_EUSAGE, "librdkafka property '%s': %s", name,
			 kt_config_is_secret(name) ? "invalid value" : why);
}

/* A consumer that reads what capture reads (committed records only) and
 * reports a vanished offset instead of skipping it. */
static int consumer_create(struct diff_ctx *ctx, char *errstr, size_t errstr_size)
{
	static const char *const defaults[][2] = {
		{ "client.id", "ktape-diff" },
		{ "group.id", "ktape-diff" },
		{ "enable.auto.commit", "false" },
		{ "enable.auto.offset.store", "false" },
		{ "enable.partition.eof", "true" },
		{ "auto.offset.reset", "error" },
		{ "isolation.level", "read_committed" },
		{ "fetch.wait.max.ms", "100" },
		/* Per partition in librdkafka 2.0: with DIFF_BATCH assigned,
		 * prefetch stays under 128 MiB. */
		{ "queued.max.messages.kbytes", "4096" },
		{ "log.connection.close", "false" },
	};
	const struct kt_capture_diff_opts *opts = ctx->opts;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char why[512];
	int err = 0;

	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]) && !err; i++)
		err = set_prop(conf, defaults[i][0], defaults[i][1], errstr, errstr_size);
	if (!err && opts->configure)
		err = opts->configure(opts->configure_opaque, conf, errstr, errstr_size);
	if (!err && opts->brokers)
		err = set_prop(conf, "bootstrap.servers", opts->brokers, errstr, errstr_size);
	if (err) {
		rd_kafka_conf_destroy(conf);
		return err;
	}
	rd_kafka_conf_set_opaque(conf, ctx);
	rd_kafka_conf_set_log_cb(conf, on_log);
	ctx->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (!ctx->rk) {
		rd_kafka_conf_destroy(conf);
		return kt_seterr(errstr, errstr_size, KT_EKAFKA, "cannot create the Kafka consumer: %s", why);
	}
	return 0;
}

/* Whether topic/partition exists in the cluster's metadata. */
static int live_partition_exists(const struct diff_ctx *ctx, const char *topic, int32_t partition)
{
	for (int t = 0; t < ctx->md->topic_cnt; t++) {
		const rd_kafka_metadata_topic_t *mt = &ctx->md->topics[t];

		if (strcmp(mt->topic, topic) != 0 || mt->err)
			continue;
		for (int p = 0; p < mt->partition_cnt; p++)
			if (mt->partitions[p].id == partition)
				return 1;
	}
	return 0;
}

/* ---- comparing one record -------------------------------------------------- */

static int bytes_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (!a || !b)
		return !a && !b; /* null equals only null */
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Returns NULL when the live message equals the snapshot record, else the
 * name of the first field that differs. */
static const char *record_difference(const struct kt_record *rec, rd_kafka_message_t *msg)
{
	rd_kafka_timestamp_type_t tstype;
	rd_kafka_headers_t *hdrs = NULL;
	int64_t ts = rd_kafka_message_timestamp(msg, &tstype);
	int ts_type = tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? KT_TS_LOG_APPEND :
		      tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME ? KT_TS_CREATE : KT_TS_NONE;
	size_t count = 0;

	if (!bytes_equal(rec->key, rec->key_len, msg->key, msg->key ? msg->key_len : 0))
		return "key";
	if (!bytes_equal(rec->value, rec->value_len, msg->payload, msg->payload ? msg->len : 0))
		return "value";
	if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs)
		count = rd_kafka_header_cnt(hdrs);
	if (count != rec->header_count)
		return "headers";
	for (size_t i = 0; i < count; i++) {
		const struct kt_header *h = &rec->headers[i];
		const char *name;
		const void *value;
		size_t size;

		if (rd_kafka_header_get_all(hdrs, i, &name, &value, &size) ||
		    !bytes_equal(h->name, h->name_len, name, strlen(name)) ||
		    !bytes_equal(h->value, h->value_len, value, value ? size : 0))
			return "headers";
	}
	if (ts != rec->timestamp)
		return "timestamp";
	if (ts_type != rec->ts_type)
		return "timestamp type";
	return NULL;
}

static void note_difference(struct kt_capture_diff_partition *out, int64_t offset, const char *what)
{
	if (out->first_difference < 0 || offset < out->first_difference) {
		out->first_difference = offset;
		out->first_difference_field = what;
	}
}

/* ---- one partition ---------------------------------------------------------- */

/* Translates an offset through a route's runs: a source offset to its
 * target offset, or (inverse) a target offset to its source offset.  -1
 * when no restored record has it. */
static int64_t route_map(const struct kt_capture_diff_route *route, int64_t off, int inverse)
{
	size_t lo = 0, hi = route->run_count;

	/* The last run starting at or before off. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int64_t start = inverse ? route->runs[mid].target_offset : route->runs[mid].source_offset;

		if (start <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -1;
	const struct kt_store_offset_run *run = &route->runs[lo - 1];
	int64_t start = inverse ? run->target_offset : run->source_offset;
	if ((uint64_t)(off - start) >= run->count)
		return -1;
	return (inverse ? run->source_offset : run->target_offset) + (off - start);
}

/* The snapshot offset a live record stands for: its own offset, or through
 * the route the source offset of the restored record; -1 when the live
 * record is not one the restore wrote. */
static int64_t live_key(const struct diff_part *dp, const rd_kafka_message_t *msg)
{
	return dp->routed ? route_map(&dp->route, msg->offset, 1) : msg->offset;
}

/* Whether a snapshot record missing live was deleted there by retention:
 * its live offset (through the route) is below the live log start. */
static int expired_live(const struct diff_part *dp, const struct kt_record *rec)
{
	int64_t at = dp->routed ? route_map(&dp->route, rec->offset, 0) : rec->offset;

	return dp->exists && at >= 0 && at < dp->low;
}

/* The next live message of the partition at or after the current position,
 * or NULL at its end (offset hi reached or EOF).  Errors are fatal: a
 * comparison that silently skipped records would prove nothing. */
static int live_next(struct diff_ctx *ctx, struct diff_part *dp, int64_t hi, int64_t *pos,
		     rd_kafka_message_t **out, char *errstr, size_t errstr_size)
{
	int64_t waited = 0;

	*out = NULL;
	while (*pos < hi) {
		rd_kafka_message_t *msg = rd_kafka_consume_queue(dp->rkqu, 200);

		if (!msg) {
			waited += 200;
			if (waited >= ctx->opts->timeout_ms)
				return kt_seterr(errstr, errstr_size, KT_ETIMEDOUT,
						 "%s [%d]: no record arrived for %lld ms at offset %lld (live end %lld)",
						 dp->topic->name, (int)dp->part->partition,
						 (long long)ctx->opts->timeout_ms, (long long)*pos, (long long)hi);
			continue;
		}
		waited = 0;
		if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			*pos = msg->offset > *pos ? msg->offset : *pos;
			rd_kafka_message_destroy(msg);
			/* The end moved below the watermark read earlier only if
			 * the log was truncated; what is missing counts as
			 * "only in the snapshot" either way. */
			return 0;
		}
		if (msg->err) {
			int err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "%s [%d] at offset %lld: %s",
					    dp->topic->name, (int)dp->part->partition, (long long)*pos,
					    rd_kafka_message_errstr(msg));
			rd_kafka_message_destroy(msg);
			return err;
		}
		if (msg->offset < *pos) { /* a re-delivery after a retry */
			rd_kafka_message_destroy(msg);
			continue;
		}
		*pos = msg->offset + 1;
		if (msg->offset >= hi) {
			rd_kafka_message_destroy(msg);
			return 0;
		}
		*out = msg;
		return 0;
	}
	return 0;
}

static int diff_partition(struct diff_ctx *ctx, struct diff_part *dp, char *errstr, size_t errstr_size)
{
	const struct kt_store_partition *part = dp->part;
	struct kt_capture_diff_partition out;
	struct kt_store_scan *scan = NULL;
	struct kt_store_range range;
	const struct kt_record *rec = NULL;
	rd_kafka_message_t *msg = NULL;
	int64_t pos = dp->lo;
	int err, more;

	memset(&out, 0, sizeof(out));
	out.topic = dp->topic->name;
	out.partition = part->partition;
	out.live_topic = dp->ltopic;
	out.live_partition = dp->lpart;
	out.start_offset = part->start_offset;
	out.end_offset = part->end_offset;
	out.live_low = out.live_high = -1;
	out.first_difference = -1;
	if (dp->exists) {
		out.live_low = dp->low;
		out.live_high = dp->high;
		int64_t live_end = dp->routed ? dp->route.target_hi : part->end_offset;
		out.live_after_end = dp->high > live_end ? (uint64_t)(dp->high - live_end) : 0;
	}
	if (dp->routed)
		range = dp->route.range;
	else
		kt_store_range_init(&range);
	if (range.from_offset < part->start_offset)
		range.from_offset = part->start_offset;
	if (range.to_offset > part->end_offset)
		range.to_offset = part->end_offset;
	err = kt_store_scan_create(&scan, ctx->repo, part, &range, errstr, errstr_size);
	if (err)
		return err;
	more = kt_store_scan_next(scan, &rec, errstr, errstr_size);
	if (more >= 0 && dp->hi > dp->lo)
		err = live_next(ctx, dp, dp->hi, &pos, &msg, errstr, errstr_size);
	while (!err && more >= 0 && (more == 1 || msg)) {
		int64_t key = msg ? live_key(dp, msg) : -1;

		if (msg && key < 0) {
			/* Live, inside what the restore wrote, yet none of its
			 * records: another producer's. */
			out.only_live++;
			note_difference(&out, more == 1 ? rec->offset : part->end_offset, "only live");
			rd_kafka_message_destroy(msg);
			msg = NULL;
			err = live_next(ctx, dp, dp->hi, &pos, &msg, errstr, errstr_size);
			continue;
		}
		if (more == 1 && (!msg || rec->offset < key)) {
			/* Only in the snapshot: deleted live by retention since the
			 * capture (below the log start), or missing. */
			if (expired_live(dp, rec)) {
				out.expired++;
			} else {
				out.only_snapshot++;
				note_difference(&out, rec->offset, "only in the snapshot");
			}
			more = kt_store_scan_next(scan, &rec, errstr, errstr_size);
			continue;
		}
		if (more == 0 || key < rec->offset) {
			out.only_live++;
			note_difference(&out, key, "only live");
		} else {
			const char *what = record_difference(rec, msg);

			if (what) {
				out.differing++;
				note_difference(&out, key, what);
			} else {
				out.records_equal++;
			}
			more = kt_store_scan_next(scan, &rec, errstr, errstr_size);
		}
		rd_kafka_message_destroy(msg);
		msg = NULL;
		err = live_next(ctx, dp, dp->hi, &pos, &msg, errstr, errstr_size);
	}
	if (msg)
		rd_kafka_message_destroy(msg);
	if (!err && more < 0)
		err = more; /* the snapshot is damaged: errstr names the block */
	kt_store_scan_destroy(scan);
	if (err)
		return err;
	struct kt_capture_diff_result *res = ctx->result;
	res->partitions++;
	res->records_equal += out.records_equal;
	res->only_snapshot += out.only_snapshot;
	res->only_live += out.only_live;
	res->differing += out.differing;
	res->expired += out.expired;
	res->live_after_end += out.live_after_end;
	if (out.first_difference >= 0)
		res->partitions_different++;
	if (ctx->opts->on_partition)
		ctx->opts->on_partition(ctx->opts->opaque, &out);
	return 0;
}

/* Assigns a batch of partitions at their start offsets, compares each in
 * turn, and unassigns. */
static int diff_batch(struct diff_ctx *ctx, struct diff_part *batch, size_t n, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
	rd_kafka_resp_err_t rerr;
	int err = 0;

	for (size_t i = 0; i < n && !err; i++) {
		struct diff_part *dp = &batch[i];

		int64_t want_lo = dp->routed ? dp->route.target_lo : dp->part->start_offset;
		int64_t want_hi = dp->routed ? dp->route.target_hi : dp->part->end_offset;

		dp->exists = live_partition_exists(ctx, dp->ltopic, dp->lpart);
		dp->lo = dp->hi = want_lo;
		if (!dp->exists)
			continue;
		rerr = rd_kafka_query_watermark_offsets(ctx->rk, dp->ltopic, dp->lpart, &dp->low,
						       &dp->high, (int)ctx->opts->timeout_ms);
		if (rerr) {
			err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "%s [%d]: cannot read the watermarks: %s",
					dp->ltopic, (int)dp->lpart, rd_kafka_err2str(rerr));
			break;
		}
		/* Read the snapshot's range (or what the restore wrote) cut to
		 * what the partition still holds: an offset below the log start
		 * would be refused (auto.offset.reset=error). */
		dp->lo = dp->low > want_lo ? dp->low : want_lo;
		dp->hi = dp->high < want_hi ? dp->high : want_hi;
		if (dp->hi <= dp->lo) {
			dp->hi = dp->lo;
			continue;
		}
		/* Forward before assigning, so that no record of the partition
		 * lands in the consumer's main queue. */
		rd_kafka_queue_t *partq = rd_kafka_queue_get_partition(ctx->rk, dp->ltopic, dp->lpart);
		dp->rkqu = rd_kafka_queue_new(ctx->rk);
		if (!partq || !dp->rkqu) {
			if (partq)
				rd_kafka_queue_destroy(partq);
			err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "%s [%d]: no partition queue",
					dp->ltopic, (int)dp->lpart);
			break;
		}
		rd_kafka_queue_forward(partq, dp->rkqu);
		rd_kafka_queue_destroy(partq);
		rd_kafka_topic_partition_list_add(list, dp->ltopic, dp->lpart)->offset = dp->lo;
	}
	if (!err && list->cnt > 0) {
		rerr = rd_kafka_assign(ctx->rk, list);
		if (rerr)
			err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "cannot assign %d partitions: %s", list->cnt,
					rd_kafka_err2str(rerr));
	}
	for (size_t i = 0; i < n && !err; i++)
		err = diff_partition(ctx, &batch[i], errstr, errstr_size);
	if (list->cnt > 0)
		rd_kafka_assign(ctx->rk, NULL);
	for (size_t i = 0; i < n; i++) {
		if (batch[i].rkqu)
			rd_kafka_queue_destroy(batch[i].rkqu);
		batch[i].rkqu = NULL;
	}
	rd_kafka_topic_partition_list_destroy(list);
	return err;
}

/* Whether the topic is selected: by name, or by regex when the pattern
 * starts with '^'.  No pattern selects every topic. */
static int topic_selected(const struct kt_capture_diff_opts *opts, const regex_t *res, const char *name)
{
	if (opts->topic_count == 0)
		return 1;
	for (size_t i = 0; i < opts->topic_count; i++) {
		if (opts->topics[i][0] == '^' ? regexec(&res[i], name, 0, NULL, 0) == 0 :
						strcmp(opts->topics[i], name) == 0)
			return 1;
	}
	return 0;
}

int kt_capture_diff(const struct kt_capture_diff_opts *opts, struct kt_capture_diff_result *result,
		    char *errstr, size_t errstr_size)
{
	struct diff_ctx ctx;
	struct kt_store_snapshot *snap = NULL;
	struct diff_part batch[DIFF_BATCH];
	regex_t *res = NULL;
	size_t compiled = 0, n = 0;
	rd_kafka_resp_err_t rerr;
	int err;

	memset(result, 0, sizeof(*result));
	memset(&ctx, 0, sizeof(ctx));
	memset(batch, 0, sizeof(batch));
	ctx.opts = opts;
	ctx.result = result;
	res = calloc(opts->topic_count ? opts->topic_count : 1, sizeof(*res));
	if (!res) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	for (; compiled < opts->topic_count; compiled++) {
		if (opts->topics[compiled][0] != '^')
			continue;
		if (regcomp(&res[compiled], opts->topics[compiled], REG_EXTENDED | REG_NOSUB) != 0) {
			err = kt_seterr(errstr, errstr_size, KT_EUSAGE, "topic pattern '%s' is not a valid regex",
					opts->topics[compiled]);
			goto out;
		}
	}
	err = kt_store_repo_open(&ctx.repo, opts->repo_path, 0, 0, errstr, errstr_size);
	if (err)
		goto out;
	err = kt_store_repo_load_snapshot(ctx.repo, opts->snapshot, &snap, errstr, errstr_size);
	if (err)
		goto out;
	snprintf(result->snapshot_id, sizeof(result->snapshot_id), "%s", snap->id);
	/* A named topic the snapshot lacks is a mistake, not "equal". */
	for (size_t i = 0; i < opts->topic_count; i++)
		if (opts->topics[i][0] != '^' && !kt_store_snapshot_find_topic(snap, opts->topics[i])) {
			err = kt_seterr(errstr, errstr_size, KT_ENOTFOUND, "topic '%s' is not in snapshot %s",
					opts->topics[i], snap->id);
			goto out;
		}
	err = consumer_create(&ctx, errstr, errstr_size);
	if (err)
		goto out;
	/* Metadata of all topics: asking for one by name would make some
	 * clusters create it. */
	rerr = rd_kafka_metadata(ctx.rk, 1, NULL, &ctx.md, (int)opts->timeout_ms);
	if (rerr) {
		err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "cannot read the cluster's metadata from %s: %s",
				opts->brokers ? opts->brokers : "the configured brokers", rd_kafka_err2str(rerr));
		goto out;
	}
	for (size_t t = 0; t < snap->topic_count && !err; t++) {
		const struct kt_store_topic *topic = &snap->topics[t];

		if (!topic_selected(opts, res, topic->name))
			continue;
		result->topics++;
		for (size_t p = 0; p < topic->n_partitions && !err; p++) {
			struct diff_part *dp = &batch[n];

			memset(dp, 0, sizeof(*dp));
			dp->topic = topic;
			dp->part = &topic->partitions[p];
			dp->ltopic = topic->name;
			dp->lpart = dp->part->partition;
			if (opts->route) {
				err = opts->route(opts->opaque, topic->name, dp->part->partition, &dp->route);
				if (err == KT_ENOTFOUND) {
					err = 0;
					result->partitions_not_routed++;
					continue;
				}
				if (err) {
					kt_seterr(errstr, errstr_size, err, "%s [%d]: no route: %s", topic->name,
						  (int)dp->part->partition, kt_strerror(err));
					break;
				}
				dp->routed = 1;
				dp->ltopic = dp->route.topic;
				dp->lpart = dp->route.partition;
			}
			if (++n == DIFF_BATCH) {
				err = diff_batch(&ctx, batch, n, errstr, errstr_size);
				n = 0;
			}
		}
	}
	if (!err && n > 0)
		err = diff_batch(&ctx, batch, n, errstr, errstr_size);
out:
	if (ctx.md)
		rd_kafka_metadata_destroy(ctx.md);
	if (ctx.rk) {
		rd_kafka_consumer_close(ctx.rk);
		rd_kafka_destroy(ctx.rk);
	}
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(ctx.repo);
	for (size_t i = 0; i < compiled; i++)
		if (opts->topics[i][0] == '^')
			regfree(&res[i]);
	free(res);
	return err;
}
