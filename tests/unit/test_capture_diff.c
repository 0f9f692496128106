/* kt_capture_diff against librdkafka's in-process mock cluster: a capture
 * equals its source; against a second cluster with one changed value, one
 * changed header, one changed timestamp and missing tail records, each is
 * counted and the first differing offset and field are named. */
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

#include "kt_capture.h"
#include "kt_store.h"

#define RECORDS 40

/* A cluster of one broker and the producer that fills it. */
struct cluster {
	rd_kafka_t *owner;
	rd_kafka_mock_cluster_t *mc;
	rd_kafka_t *producer;
	const char *bootstrap;
};

static void cluster_start(struct cluster *c)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[256];

	c->owner = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), errstr, sizeof(errstr));
	assert_non_null(c->owner);
	c->mc = rd_kafka_mock_cluster_new(c->owner, 1);
	assert_non_null(c->mc);
	c->bootstrap = rd_kafka_mock_cluster_bootstraps(c->mc);
	assert_int_equal(rd_kafka_mock_topic_create(c->mc, "t", 2, 1), 0);
	assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", c->bootstrap, errstr, sizeof(errstr)), 0);
	c->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(c->producer);
}

static void cluster_stop(struct cluster *c)
{
	rd_kafka_destroy(c->producer);
	rd_kafka_mock_cluster_destroy(c->mc);
	rd_kafka_destroy(c->owner);
}

/* Record i of a partition; changed != 0 alters records 10 (value), 20 (a
 * header value) and 30 (the timestamp). */
static void produce(struct cluster *c, int32_t partition, int count, int changed)
{
	for (int i = 0; i < count; i++) {
		char key[32], value[64];
		rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
		int64_t ts = 1700000000000LL + i * 1000 + (changed && i == 30);

		snprintf(key, sizeof(key), "key-%d", i);
		snprintf(value, sizeof(value), "value %d of %d%s", i, (int)partition, changed && i == 10 ? "!" : "");
		rd_kafka_header_add(hdrs, "trace", -1, changed && i == 20 ? "x" : "y", 1);
		rd_kafka_header_add(hdrs, "empty", -1, NULL, 0);
		assert_int_equal(rd_kafka_producev(c->producer, RD_KAFKA_V_TOPIC("t"), RD_KAFKA_V_PARTITION(partition),
						   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
						   RD_KAFKA_V_KEY((i % 7 ? key : NULL), (i % 7 ? strlen(key) : 0)),
						   RD_KAFKA_V_VALUE((i % 9 ? value : NULL), (i % 9 ? strlen(value) : 0)),
						   RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END), 0);
	}
	assert_int_equal(rd_kafka_flush(c->producer, 30000), 0);
}

static void capture_into(const char *repo, const char *bootstrap)
{
	static const char *const topics[] = { "t" };
	struct kt_capture_opts opts;
	struct kt_capture *cap = NULL;
	const struct kt_capture_summary *summary = NULL;
	char errstr[512];

	kt_capture_opts_init(&opts);
	opts.brokers = bootstrap;
	opts.repo_path = repo;
	opts.topics = topics;
	opts.topic_count = 1;
	opts.admin_timeout_ms = 300;
	opts.timeout_ms = 10000;
	assert_int_equal(kt_capture_create(&cap, &opts, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_capture_run(cap, &summary, errstr, sizeof(errstr)), 0);
	assert_int_equal(summary->records, 2 * RECORDS);
	kt_capture_destroy(cap);
}

static void on_partition(void *opaque, const struct kt_capture_diff_partition *part)
{
	struct kt_capture_diff_partition *parts = opaque;

	assert_true(part->partition >= 0 && part->partition < 2);
	/* The topic is valid only during the call; the field name is a
	 * static string. */
	parts[part->partition] = *part;
	parts[part->partition].topic = NULL;
}

static void run_diff(const char *repo, const char *bootstrap, struct kt_capture_diff_result *res,
		     struct kt_capture_diff_partition *parts)
{
	struct kt_capture_diff_opts opts;
	char errstr[512];

	kt_capture_diff_opts_init(&opts);
	opts.brokers = bootstrap;
	opts.repo_path = repo;
	opts.timeout_ms = 10000;
	opts.on_partition = on_partition;
	opts.opaque = parts;
	memset(parts, 0, 2 * sizeof(*parts));
	assert_int_equal(kt_capture_diff(&opts, res, errstr, sizeof(errstr)), 0);
}

static void test_diff_finds_each_changed_field_and_missing_records(void **state)
{
	struct cluster a, b;
	struct kt_capture_diff_result res;
	struct kt_capture_diff_partition parts[2];
	char repo[256], cmd[300];

	(void)state;
	snprintf(repo, sizeof(repo), "/tmp/kt-capture-diff.XXXXXX");
	assert_non_null(mkdtemp(repo));
	cluster_start(&a);
	produce(&a, 0, RECORDS, 0);
	produce(&a, 1, RECORDS, 0);
	capture_into(repo, a.bootstrap);

	run_diff(repo, a.bootstrap, &res, parts);
	assert_int_equal(res.partitions, 2);
	assert_int_equal(res.partitions_different, 0);
	assert_int_equal(res.records_equal, 2 * RECORDS);
	assert_int_equal(parts[0].first_difference, -1);

	/* Records produced after the snapshot are not differences. */
	produce(&a, 1, 3, 0);
	run_diff(repo, a.bootstrap, &res, parts);
	assert_int_equal(res.partitions_different, 0);
	assert_int_equal(parts[1].live_after_end, 3);

	cluster_start(&b);
	produce(&b, 0, RECORDS, 1);
	produce(&b, 1, RECORDS - 5, 0);
	run_diff(repo, b.bootstrap, &res, parts);
	assert_int_equal(res.partitions_different, 2);
	assert_int_equal(parts[0].differing, 3);
	assert_int_equal(parts[0].records_equal, RECORDS - 3);
	assert_int_equal(parts[0].first_difference, 10);
	assert_string_equal(parts[0].first_difference_field, "value");
	assert_int_equal(parts[1].records_equal, RECORDS - 5);
	assert_int_equal(parts[1].only_snapshot, 5);
	assert_int_equal(parts[1].first_difference, RECORDS - 5);
	assert_string_equal(parts[1].first_difference_field, "only in the snapshot");
	cluster_stop(&b);
	cluster_stop(&a);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", repo);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff_finds_each_changed_field_and_missing_records),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
