/* Capture end to end against librdkafka's in-process mock cluster: every
 * record shape comes back from the repository exactly, a second capture
 * adds exactly the new records, retention that outruns the backup is
 * recorded as a gap, committed group offsets land in the manifest, and an
 * interrupted capture is continued without loss or duplicates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kt_capture.h"
#include "kt_store.h"

#define PARTS 4
#define TS_BASE 1700000000000LL

struct fixture {
	rd_kafka_t *owner;    /* owns the mock cluster, nothing else */
	rd_kafka_t *producer;
	rd_kafka_mock_cluster_t *mcluster;
	const char *bootstrap;
	char repo[256];
};

/* One generated record: every shape the format must keep apart. */
struct gen_record {
	int32_t partition;
	int64_t ts;
	const void *key;
	size_t key_len;
	const void *value;
	size_t value_len;
	size_t header_count;
	struct kt_header headers[4];
	char key_buf[64];
	unsigned char value_buf[8192];
};

static void make_record(long i, struct gen_record *r)
{
	static const unsigned char binary_key[] = { 'b', 0, '\n', 0xff, 0xfe };

	memset(r, 0, sizeof(*r));
	r->partition = (int32_t)(i % PARTS);
	r->ts = TS_BASE + i;
	snprintf(r->key_buf, sizeof(r->key_buf), "key-%ld", i);
	r->key = r->key_buf;
	r->key_len = strlen(r->key_buf);
	snprintf((char *)r->value_buf, sizeof(r->value_buf), "{\"n\":%ld,\"text\":\"value \\\"%ld\\\"\"}", i, i);
	r->value = r->value_buf;
	r->value_len = strlen((char *)r->value_buf);
	switch ((i / PARTS) % 8) {
	case 1:
		r->key = NULL; /* null key */
		r->key_len = 0;
		break;
	case 2:
		r->key_len = 0; /* empty key and value */
		r->value_len = 0;
		break;
	case 3:
		r->value = NULL; /* tombstone */
		r->value_len = 0;
		break;
	case 4:
		r->key = binary_key;
		r->key_len = sizeof(binary_key);
		for (size_t b = 0; b < 256; b++)
			r->value_buf[b] = (unsigned char)b;
		r->value_len = 256;
		break;
	case 5:
		r->header_count = 4;
		r->headers[0] = (struct kt_header){ "h", 1, "a", 1 };
		r->headers[1] = (struct kt_header){ "h", 1, NULL, 0 };
		r->headers[2] = (struct kt_header){ "dup", 3, "x", 1 };
		r->headers[3] = (struct kt_header){ "dup", 3, "", 0 };
		break;
	case 6:
		r->ts = TS_BASE - i * 1000; /* out of order */
		break;
	case 7:
		memset(r->value_buf, 'x', sizeof(r->value_buf));
		r->value_len = sizeof(r->value_buf);
		break;
	default:
		break;
	}
}

static void produce_range(struct fixture *fx, const char *topic, long from, long to)
{
	for (long i = from; i < to; i++) {
		struct gen_record r;
		rd_kafka_headers_t *hdrs = NULL;
		rd_kafka_resp_err_t err;

		make_record(i, &r);
		if (r.header_count) {
			hdrs = rd_kafka_headers_new(r.header_count);
			for (size_t h = 0; h < r.header_count; h++)
				rd_kafka_header_add(hdrs, r.headers[h].name, (ssize_t)r.headers[h].name_len,
						    r.headers[h].value, (ssize_t)r.headers[h].value_len);
		}
		do {
			/* The producer takes over the headers only on success;
			 * a copy per attempt keeps ownership simple. */
			rd_kafka_headers_t *copy = hdrs ? rd_kafka_headers_copy(hdrs) : NULL;

			if (copy)
				err = rd_kafka_producev(fx->producer, RD_KAFKA_V_TOPIC(topic),
							RD_KAFKA_V_PARTITION(r.partition),
							RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
							RD_KAFKA_V_KEY(r.key, r.key_len),
							RD_KAFKA_V_VALUE((void *)r.value, r.value_len),
							RD_KAFKA_V_TIMESTAMP(r.ts), RD_KAFKA_V_HEADERS(copy),
							RD_KAFKA_V_END);
			else
				err = rd_kafka_producev(fx->producer, RD_KAFKA_V_TOPIC(topic),
							RD_KAFKA_V_PARTITION(r.partition),
							RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
							RD_KAFKA_V_KEY(r.key, r.key_len),
							RD_KAFKA_V_VALUE((void *)r.value, r.value_len),
							RD_KAFKA_V_TIMESTAMP(r.ts), RD_KAFKA_V_END);
			if (err && copy)
				rd_kafka_headers_destroy(copy);
			if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
				rd_kafka_poll(fx->producer, 10);
		} while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
		if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		assert_int_equal(err, 0);
	}
	assert_int_equal(rd_kafka_flush(fx->producer, 30000), 0);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	rd_kafka_conf_t *conf;
	char errstr[256];

	fx->owner = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), errstr, sizeof(errstr));
	assert_non_null(fx->owner);
	fx->mcluster = rd_kafka_mock_cluster_new(fx->owner, 3);
	assert_non_null(fx->mcluster);
	fx->bootstrap = rd_kafka_mock_cluster_bootstraps(fx->mcluster);
	assert_int_equal(rd_kafka_mock_topic_create(fx->mcluster, "orders", PARTS, 3), 0);
	assert_int_equal(rd_kafka_mock_topic_create(fx->mcluster, "quiet", 2, 2), 0);
	assert_int_equal(rd_kafka_mock_topic_create(fx->mcluster, "churn", 1, 1), 0);
	conf = rd_kafka_conf_new();
	assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", fx->bootstrap, errstr, sizeof(errstr)), 0);
	assert_int_equal(rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr)), 0);
	assert_int_equal(rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)), 0);
	fx->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(fx->producer);
	snprintf(fx->repo, sizeof(fx->repo), "%s/kt-capture-mock.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(fx->repo));
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[512];

	rd_kafka_destroy(fx->producer);
	rd_kafka_mock_cluster_destroy(fx->mcluster);
	rd_kafka_destroy(fx->owner);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->repo);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

/* --segment-size of the next captures; tests that roll segments lower it. */
static uint64_t segment_size = 256u << 20;

static int capture(struct fixture *fx, const char *const *topics, size_t topic_count,
		   const char *const *groups, size_t group_count,
		   void (*on_progress)(void *, const struct kt_capture_progress *), void *opaque,
		   struct kt_capture_summary *out)
{
	struct kt_capture_opts opts;
	struct kt_capture *cap = NULL;
	const struct kt_capture_summary *summary = NULL;
	char errstr[512] = "";
	int err;

	kt_capture_opts_init(&opts);
	opts.brokers = fx->bootstrap;
	opts.repo_path = fx->repo;
	opts.topics = topics;
	opts.topic_count = topic_count;
	opts.groups = groups;
	opts.group_count = group_count;
	opts.threads = 2;
	opts.admin_timeout_ms = 300;
	opts.timeout_ms = 10000;
	opts.level = 1;
	opts.on_progress = on_progress;
	opts.opaque = opaque;
	opts.progress_interval_ms = 1;
	opts.block_size = 16384; /* many blocks, so that block edges are crossed */
	opts.segment_size = segment_size;
	assert_int_equal(kt_capture_create(&cap, &opts, errstr, sizeof(errstr)), 0);
	if (on_progress)
		*(struct kt_capture **)opaque = cap;
	err = kt_capture_run(cap, &summary, errstr, sizeof(errstr));
	if (err && err != KT_EGAP && err != KT_EINTERRUPTED)
		fail_msg("capture failed: %s", errstr);
	*out = *summary;
	out->topics = NULL; /* owned by the capture */
	out->topic_count = 0;
	kt_capture_destroy(cap);
	return err;
}

static struct kt_store_snapshot *load_latest(struct fixture *fx, struct kt_store_repo **repo)
{
	struct kt_store_snapshot *snap = NULL;
	char errstr[512] = "";

	if (kt_store_repo_open(repo, fx->repo, 0, 0, errstr, sizeof(errstr)) ||
	    kt_store_repo_load_snapshot(*repo, "latest", &snap, errstr, sizeof(errstr)))
		fail_msg("cannot load the latest snapshot: %s", errstr);
	return snap;
}

static void assert_bytes(const void *got, size_t got_len, const void *want, size_t want_len, long i,
			 const char *what)
{
	if ((got == NULL) != (want == NULL))
		fail_msg("record %ld: %s is %s, expected %s", i, what, got ? "present" : "null",
			 want ? "present" : "null");
	if (got_len != want_len || (want_len && memcmp(got, want, want_len)))
		fail_msg("record %ld: %s differs (%zu bytes, expected %zu)", i, what, got_len, want_len);
}

/* Every record of "orders" from 0 to count, partition by partition, and
 * nothing else. */
static void assert_orders(struct fixture *fx, long count)
{
	struct kt_store_repo *repo = NULL;
	struct kt_store_snapshot *snap = load_latest(fx, &repo);
	const struct kt_store_topic *topic = kt_store_snapshot_find_topic(snap, "orders");
	char errstr[512] = "";

	assert_non_null(topic);
	assert_int_equal(topic->n_partitions, PARTS);
	assert_int_equal(topic->partition_count, PARTS);
	assert_int_equal(topic->replication_factor, 3);
	for (int p = 0; p < PARTS; p++) {
		const struct kt_store_partition *part = kt_store_topic_find_partition(topic, p);
		struct kt_store_scan *scan = NULL;
		const struct kt_record *rec;
		long k = 0;
		int rc;

		assert_non_null(part);
		assert_true(part->complete);
		assert_int_equal(part->gap_count, 0);
		assert_int_equal(kt_store_scan_create(&scan, repo, part, NULL, errstr, sizeof(errstr)), 0);
		while ((rc = kt_store_scan_next(scan, &rec, errstr, sizeof(errstr))) == 1) {
			long i = k * PARTS + p;
			struct gen_record want;

			make_record(i, &want);
			assert_int_equal(rec->offset, k);
			assert_int_equal(rec->timestamp, want.ts);
			assert_int_equal(rec->ts_type, KT_TS_CREATE);
			assert_bytes(rec->key, rec->key_len, want.key, want.key_len, i, "key");
			assert_bytes(rec->value, rec->value_len, want.value, want.value_len, i, "value");
			assert_int_equal(rec->header_count, want.header_count);
			for (size_t h = 0; h < want.header_count; h++) {
				assert_bytes(rec->headers[h].name, rec->headers[h].name_len, want.headers[h].name,
					     want.headers[h].name_len, i, "header name");
				assert_bytes(rec->headers[h].value, rec->headers[h].value_len,
					     want.headers[h].value, want.headers[h].value_len, i, "header value");
			}
			k++;
		}
		if (rc < 0)
			fail_msg("scan of orders [%d]: %s", p, errstr);
		kt_store_scan_destroy(scan);
		assert_int_equal(k, (count - p + PARTS - 1) / PARTS);
		assert_int_equal(part->end_offset, k);
		assert_int_equal(part->records, (uint64_t)k);
	}
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
}

static void test_capture_round_trips_every_record_shape_and_continues(void **state)
{
	struct fixture *fx = *state;
	const char *topics[] = { "orders", "quiet" };
	struct kt_capture_summary s;
	struct kt_store_repo *repo = NULL;
	struct kt_store_snapshot *snap;
	const struct kt_store_topic *quiet;
	char first_id[64];

	produce_range(fx, "orders", 0, 2000);
	assert_int_equal(capture(fx, topics, 2, NULL, 0, NULL, NULL, &s), 0);
	assert_int_equal(s.kind, KT_SNAPSHOT_FULL);
	assert_int_equal(s.records, 2000);
	assert_int_equal(s.partitions, PARTS + 2);
	assert_int_equal(s.partitions_incomplete, 0);
	assert_int_equal(s.configs_available, 0); /* the mock has no DescribeConfigs */
	snprintf(first_id, sizeof(first_id), "%s", s.snapshot_id);
	assert_orders(fx, 2000);

	/* Empty partitions are in the manifest too. */
	snap = load_latest(fx, &repo);
	quiet = kt_store_snapshot_find_topic(snap, "quiet");
	assert_non_null(quiet);
	assert_int_equal(quiet->n_partitions, 2);
	assert_int_equal(quiet->partitions[0].segment_count, 0);
	assert_int_equal(quiet->partitions[0].end_offset, 0);
	assert_true(quiet->partitions[0].complete);
	assert_false(quiet->configs_available);
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);

	/* The next capture adds exactly the new records and references the
	 * earlier segments. */
	produce_range(fx, "orders", 2000, 2600);
	assert_int_equal(capture(fx, topics, 2, NULL, 0, NULL, NULL, &s), 0);
	assert_int_equal(s.kind, KT_SNAPSHOT_INCREMENTAL);
	assert_string_equal(s.parent_id, first_id);
	assert_int_equal(s.records, 600);
	assert_orders(fx, 2600);

	/* Nothing new: an incremental snapshot with no new record. */
	assert_int_equal(capture(fx, topics, 2, NULL, 0, NULL, NULL, &s), 0);
	assert_int_equal(s.records, 0);
	assert_int_equal(s.segments, 0);
	assert_orders(fx, 2600);
}

static void test_capture_records_retention_gap(void **state)
{
	struct fixture *fx = *state;
	const char *topics[] = { "churn" };
	struct kt_capture_summary s;
	struct kt_store_repo *repo = NULL;
	struct kt_store_snapshot *snap;
	const struct kt_store_partition *part;
	int64_t low = 0, high = 0;
	const size_t big_size = 900000; /* under message.max.bytes */
	char *big = malloc(big_size);

	memset(big, 'r', big_size);
	assert_int_equal(rd_kafka_producev(fx->producer, RD_KAFKA_V_TOPIC("churn"), RD_KAFKA_V_PARTITION(0),
					   RD_KAFKA_V_VALUE("first", 5), RD_KAFKA_V_END), 0);
	assert_int_equal(rd_kafka_flush(fx->producer, 10000), 0);
	assert_int_equal(capture(fx, topics, 1, NULL, 0, NULL, NULL, &s), 0);
	assert_int_equal(s.records, 1);
	/* The mock keeps 5 MiB per partition: 7 MB more pushes the log
	 * start past what the backup has. */
	for (int i = 0; i < 8; i++) {
		assert_int_equal(rd_kafka_producev(fx->producer, RD_KAFKA_V_TOPIC("churn"), RD_KAFKA_V_PARTITION(0),
						   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
						   RD_KAFKA_V_VALUE(big, big_size), RD_KAFKA_V_END), 0);
		assert_int_equal(rd_kafka_flush(fx->producer, 10000), 0);
	}
	free(big);
	assert_int_equal(rd_kafka_query_watermark_offsets(fx->producer, "churn", 0, &low, &high, 5000), 0);
	assert_true(low > 1);
	assert_int_equal(capture(fx, topics, 1, NULL, 0, NULL, NULL, &s), KT_EGAP);
	assert_int_equal(s.gap_count, 1);
	assert_int_equal(s.gap_offsets, (uint64_t)(low - 1));
	assert_int_equal(s.records, (uint64_t)(high - low));
	snap = load_latest(fx, &repo);
	part = kt_store_topic_find_partition(kt_store_snapshot_find_topic(snap, "churn"), 0);
	assert_non_null(part);
	assert_int_equal(part->gap_count, 1);
	assert_int_equal(part->gaps[0].from, 1);
	assert_int_equal(part->gaps[0].to, low);
	assert_string_equal(part->gaps[0].reason, "retention");
	assert_int_equal(part->start_offset, 0);
	assert_int_equal(part->end_offset, high);
	assert_int_equal(part->records, (uint64_t)(1 + high - low));
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
}

/* Floods "churn" past the mock's 5 MiB once the capture has begun, so that
 * retention deletes records between the capture's plan and its fetches. */
struct flood {
	struct kt_capture *cap; /* first: the capture() helper stores it here */
	struct fixture *fx;
	int done;
};

static void flood_once(void *opaque, const struct kt_capture_progress *progress)
{
	struct flood *fl = opaque;
	const size_t big_size = 900000;
	char *big;

	if (fl->done || progress->records == 0)
		return;
	fl->done = 1;
	big = calloc(1, big_size);
	for (int i = 0; i < 8; i++)
		assert_int_equal(rd_kafka_producev(fl->fx->producer, RD_KAFKA_V_TOPIC("churn"),
						   RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
						   RD_KAFKA_V_VALUE(big, big_size), RD_KAFKA_V_END), 0);
	assert_int_equal(rd_kafka_flush(fl->fx->producer, 10000), 0);
	free(big);
}

static void test_capture_records_retention_overtaking_it(void **state)
{
	struct fixture *fx = *state;
	const char *topics[] = { "churn" };
	struct flood fl = { NULL, fx, 0 };
	struct kt_capture_summary s;
	struct kt_store_repo *repo = NULL;
	struct kt_store_snapshot *snap;
	const struct kt_store_partition *part;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *small;
	char errstr[256];

	/* 2000 records in batches of 10: with a round trip of 40 ms per
	 * fetch (one batch each on the mock) the capture is slow enough to be
	 * overtaken. */
	rd_kafka_conf_set(conf, "bootstrap.servers", fx->bootstrap, NULL, 0);
	rd_kafka_conf_set(conf, "batch.num.messages", "10", NULL, 0);
	rd_kafka_conf_set(conf, "linger.ms", "0", NULL, 0);
	small = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(small);
	for (int i = 0; i < 2000; i++) {
		while (rd_kafka_producev(small, RD_KAFKA_V_TOPIC("churn"), RD_KAFKA_V_PARTITION(0),
					 RD_KAFKA_V_VALUE("tiny", 4), RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(small, 10);
		if (i % 10 == 9)
			rd_kafka_flush(small, 10000);
	}
	assert_int_equal(rd_kafka_flush(small, 10000), 0);
	rd_kafka_destroy(small);
	for (int b = 1; b <= 3; b++)
		rd_kafka_mock_broker_set_rtt(fx->mcluster, b, 40);

	assert_int_equal(capture(fx, topics, 1, NULL, 0, flood_once, &fl, &s), KT_EGAP);
	assert_true(fl.done);
	assert_int_equal(s.gap_count, 1);
	assert_int_equal(s.partitions_incomplete, 0);
	assert_int_equal(s.records + s.gap_offsets, 2000);
	snap = load_latest(fx, &repo);
	part = kt_store_topic_find_partition(kt_store_snapshot_find_topic(snap, "churn"), 0);
	assert_non_null(part);
	assert_true(part->complete);
	assert_int_equal(part->end_offset, 2000);
	assert_int_equal(part->gap_count, 1);
	assert_int_equal(part->gaps[0].from, (int64_t)s.records);
	assert_int_equal(part->gaps[0].to, 2000);
	assert_int_equal(part->records, s.records);
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
}

static void test_capture_records_committed_group_offsets(void **state)
{
	struct fixture *fx = *state;
	const char *topics[] = { "orders" };
	const char *groups[] = { "billing", "nobody" };
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(2);
	struct kt_capture_summary s;
	struct kt_store_repo *repo = NULL;
	struct kt_store_snapshot *snap;
	rd_kafka_t *consumer;
	char errstr[256];
	int found = 0;

	produce_range(fx, "orders", 0, 40);
	rd_kafka_conf_set(conf, "bootstrap.servers", fx->bootstrap, NULL, 0);
	rd_kafka_conf_set(conf, "group.id", "billing", NULL, 0);
	consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	assert_non_null(consumer);
	rd_kafka_topic_partition_list_add(offsets, "orders", 1)->offset = 7;
	rd_kafka_topic_partition_list_add(offsets, "orders", 2)->offset = 3;
	assert_int_equal(rd_kafka_commit(consumer, offsets, 0), 0);
	rd_kafka_topic_partition_list_destroy(offsets);
	rd_kafka_consumer_close(consumer);
	rd_kafka_destroy(consumer);

	assert_int_equal(capture(fx, topics, 1, groups, 2, NULL, NULL, &s), 0);
	assert_int_equal(s.groups, 1);
	snap = load_latest(fx, &repo);
	for (size_t i = 0; i < snap->group_offset_count; i++) {
		const struct kt_store_group_offset *g = &snap->group_offsets[i];

		assert_string_equal(g->group, "billing");
		assert_string_equal(g->topic, "orders");
		if (g->partition == 1)
			assert_int_equal(g->offset, 7);
		else if (g->partition == 2)
			assert_int_equal(g->offset, 3);
		else
			fail_msg("unexpected group offset for partition %d", (int)g->partition);
		found++;
	}
	assert_int_equal(found, 2);
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
}

/* Stops the capture as soon as some records are in. */
static void stop_early(void *opaque, const struct kt_capture_progress *progress)
{
	struct kt_capture **cap = opaque;

	if (progress->records > 0)
		kt_capture_stop(*cap);
}

static void test_capture_interrupted_then_continued_loses_nothing(void **state)
{
	struct fixture *fx = *state;
	const char *topics[] = { "orders" };
	struct kt_capture_summary s;
	struct kt_capture *cap = NULL;
	int err;

	produce_range(fx, "orders", 0, 8000);
	err = capture(fx, topics, 1, NULL, 0, stop_early, &cap, &s);
	if (err == KT_EINTERRUPTED && s.snapshot_id[0]) {
		assert_int_equal(s.kind, KT_SNAPSHOT_PARTIAL);
		assert_true(s.partitions_incomplete > 0);
	} else {
		/* The stop came after the last record or before the first:
		 * both are legitimate outcomes of a race. */
		assert_true(err == 0 || err == KT_EINTERRUPTED);
	}
	assert_int_equal(capture(fx, topics, 1, NULL, 0, NULL, NULL, &s), 0);
	assert_int_equal(s.partitions_incomplete, 0);
	assert_orders(fx, 8000);
}

static void test_capture_rolls_segments_past_segment_size(void **state)
{
	struct fixture *fx = *state;
	const char *topics[] = { "orders" };
	struct kt_capture_summary s;
	struct kt_store_repo *repo = NULL;
	struct kt_store_snapshot *snap;
	const struct kt_store_topic *topic;

	produce_range(fx, "orders", 0, 3000);
	segment_size = 64u << 10;
	assert_int_equal(capture(fx, topics, 1, NULL, 0, NULL, NULL, &s), 0);
	segment_size = 256u << 20;
	assert_true(s.segments > 2 * PARTS);
	snap = load_latest(fx, &repo);
	topic = kt_store_snapshot_find_topic(snap, "orders");
	for (size_t p = 0; p < topic->n_partitions; p++) {
		const struct kt_store_partition *part = &topic->partitions[p];

		assert_true(part->segment_count > 1);
		/* The chain is contiguous: each segment starts after the last. */
		for (size_t i = 1; i < part->segment_count; i++)
			assert_int_equal(part->segments[i].first_offset, part->segments[i - 1].last_offset + 1);
	}
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
	assert_orders(fx, 3000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_capture_round_trips_every_record_shape_and_continues, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_capture_records_retention_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capture_records_retention_overtaking_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capture_records_committed_group_offsets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capture_interrupted_then_continued_loses_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_capture_rolls_segments_past_segment_size, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
