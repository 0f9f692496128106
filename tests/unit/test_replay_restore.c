/* Unit tests of the restore engine (src/replay/restore.c) against
 * librdkafka's in-process mock cluster: a repository written with the store
 * API is restored and read back record by record; reruns, dry runs, group
 * translation and refusals are checked without any external process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kt_replay.h"
#include "kt_store.h"
#include "repo_fixture.h"

#define PARTS 3
#define PER_PART 40

/* The shape of record i of a partition: every combination of null and
 * empty key and value, null, empty and duplicated headers, and the three
 * timestamp types. */
struct shape {
	char key[32];
	char value[64];
	struct kt_header hdrs[3];
	struct kt_record rec;
};

static void make_record(struct shape *s, int32_t p, uint32_t i)
{
	memset(s, 0, sizeof(*s));
	s->rec.offset = (int64_t)i;
	s->rec.timestamp = 1700000000000LL + (int64_t)i * 10 + p;
	s->rec.ts_type = i % 13 == 5 ? KT_TS_LOG_APPEND : KT_TS_CREATE;
	snprintf(s->key, sizeof(s->key), "k-%d-%u", p, i % 7);
	snprintf(s->value, sizeof(s->value), "value %u of %d", i, p);
	switch (i % 5) {
	case 0: /* null key */
		break;
	case 1: /* empty key, empty value */
		s->rec.key = s->key;
		break;
	default:
		s->rec.key = s->key;
		s->rec.key_len = strlen(s->key);
	}
	if (i % 5 == 3) {
		/* tombstone */
	} else if (i % 5 == 1) {
		s->rec.value = s->value;
	} else {
		s->rec.value = s->value;
		s->rec.value_len = strlen(s->value);
	}
	if (i % 4 == 2) {
		s->hdrs[0] = (struct kt_header){ "h", 1, "a", 1 };
		s->hdrs[1] = (struct kt_header){ "h", 1, NULL, 0 };
		s->hdrs[2] = (struct kt_header){ "e", 1, "", 0 };
		s->rec.headers = s->hdrs;
		s->rec.header_count = 3;
	}
}

static void write_repo(const char *dir, const char *topic)
{
	struct kt_store_repo *repo = NULL;
	struct kt_store_snapshot *snap = kt_store_snapshot_create();
	struct kt_store_topic *t;
	char errstr[512];

	assert_int_equal(kt_store_repo_open(&repo, dir, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK, 0,
					    errstr, sizeof(errstr)), 0);
	snap->kind = KT_SNAPSHOT_FULL;
	snap->started_ms = 1700000000000LL;
	snap->completed_ms = 1700000001000LL;
	t = kt_store_snapshot_add_topic(snap, topic, PARTS, 1);
	for (int32_t p = 0; p < PARTS; p++) {
		struct kt_store_partition *part = kt_store_topic_add_partition(t, p);
		struct kt_store_writer *writer = NULL;
		struct kt_store_segment_info info;
		struct kt_store_segref ref;
		char rel[1024], abs[4096];

		assert_int_equal(kt_store_repo_new_segment_path(repo, topic, p, 0, rel, sizeof(rel), abs,
								sizeof(abs), errstr, sizeof(errstr)), 0);
		assert_int_equal(kt_store_writer_create(&writer, abs, topic, p, NULL, errstr, sizeof(errstr)), 0);
		for (uint32_t i = 0; i < PER_PART; i++) {
			struct shape s;

			make_record(&s, p, i);
			assert_int_equal(kt_store_writer_append(writer, &s.rec, errstr, sizeof(errstr)), 0);
		}
		assert_int_equal(kt_store_writer_seal(writer, &info, errstr, sizeof(errstr)), 0);
		kt_store_writer_destroy(writer);
		ref = (struct kt_store_segref){ rel, info.first_offset, info.last_offset, info.min_ts,
						info.max_ts, info.record_count, info.raw_bytes,
						info.file_size, info.checksum };
		assert_int_equal(kt_store_partition_add_segment(part, &ref), 0);
		part->end_offset = PER_PART;
		part->complete = 1;
		if (p == 2) {
			/* Retention took 5 offsets after the records before the
			 * capture reached them. */
			assert_int_equal(kt_store_partition_add_gap(part, PER_PART, PER_PART + 5, "retention"), 0);
			part->end_offset = PER_PART + 5;
		}
	}
	/* Group g consumed partition 0 fully and partition 1 up to 25. */
	assert_int_equal(kt_store_snapshot_add_group_offset(snap, "g", topic, 0, PER_PART, NULL), 0);
	assert_int_equal(kt_store_snapshot_add_group_offset(snap, "g", topic, 1, 25, NULL), 0);
	assert_int_equal(kt_store_repo_commit_snapshot(repo, snap, errstr, sizeof(errstr)), 0);
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
}

struct env {
	char dir[256];
	rd_kafka_t *owner; /* owns the mock cluster */
	rd_kafka_mock_cluster_t *mock;
	char bootstrap[256];
};

static int setup(void **state)
{
	struct env *env = calloc(1, sizeof(*env));
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[256];

	fixture_tmpdir(env->dir, sizeof(env->dir), "restore");
	write_repo(env->dir, "t");
	rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
	env->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(env->owner);
	env->mock = rd_kafka_mock_cluster_new(env->owner, 1);
	assert_non_null(env->mock);
	snprintf(env->bootstrap, sizeof(env->bootstrap), "%s", rd_kafka_mock_cluster_bootstraps(env->mock));
	assert_int_equal(rd_kafka_mock_topic_create(env->mock, "t", PARTS, 1), 0);
	assert_int_equal(rd_kafka_mock_topic_create(env->mock, "two", 2, 1), 0);
	*state = env;
	return 0;
}

static int teardown(void **state)
{
	struct env *env = *state;

	rd_kafka_mock_cluster_destroy(env->mock);
	rd_kafka_destroy(env->owner);
	fixture_rmrf(env->dir);
	free(env);
	return 0;
}

static int quiet_conf(void *opaque, void *conf, char *errstr, size_t errstr_size)
{
	(void)opaque;
	return rd_kafka_conf_set(conf, "log_level", "0", errstr, errstr_size) == RD_KAFKA_CONF_OK
		       ? 0 : KT_EUSAGE;
}

static int run_restore(struct env *env, struct kt_replay_opts *opts, struct kt_replay_summary *out,
		       char *errstr, size_t errstr_size)
{
	struct kt_replay *rp = NULL;
	int err;

	opts->repo_path = env->dir;
	opts->brokers = env->bootstrap;
	opts->conf_apply = quiet_conf;
	opts->timeout_ms = 3000;
	err = kt_replay_create(&rp, opts, errstr, errstr_size);
	if (!err)
		err = kt_replay_run(rp, errstr, errstr_size);
	if (rp && out) {
		*out = *kt_replay_summary(rp);
		/* The group rows die with the engine. */
		out->group_commits = NULL;
	}
	kt_replay_destroy(rp);
	return err;
}

static rd_kafka_t *consumer(struct env *env, const char *group)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[256];
	rd_kafka_t *rk;

	rd_kafka_conf_set(conf, "bootstrap.servers", env->bootstrap, NULL, 0);
	rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
	rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	return rk;
}

/* The end offset of a partition of the mock, read by a client of its own
 * (the handle that owns the mock has no bootstrap servers). */
static int64_t end_offset(struct env *env, const char *topic, int32_t partition)
{
	rd_kafka_t *rk = consumer(env, "watermarks");
	int64_t lo = -1, hi = -1;

	assert_int_equal(rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi, 5000), 0);
	rd_kafka_destroy(rk);
	return hi;
}

static void check_header(rd_kafka_headers_t *h, size_t i, const char *name, const void *value,
			 size_t size)
{
	const char *n;
	const void *v;
	size_t s;

	assert_int_equal(rd_kafka_header_get_all(h, i, &n, &v, &s), 0);
	assert_string_equal(n, name);
	if (!value) {
		assert_null(v);
	} else {
		assert_non_null(v);
		assert_int_equal(s, size);
		assert_memory_equal(v, value, size);
	}
}

/* Reads every partition of "t" from the start and checks each record
 * against make_record(). */
static void check_target(struct env *env)
{
	rd_kafka_t *rk = consumer(env, "checker");
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(PARTS);
	int seen = 0;

	for (int32_t p = 0; p < PARTS; p++)
		rd_kafka_topic_partition_list_add(list, "t", p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	assert_int_equal(rd_kafka_assign(rk, list), 0);
	while (seen < PARTS * PER_PART) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 5000);
		rd_kafka_timestamp_type_t tstype;
		rd_kafka_headers_t *h = NULL;
		struct shape s;

		assert_non_null(m);
		if (m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		make_record(&s, m->partition, (uint32_t)m->offset);
		if (s.rec.key) {
			assert_non_null(m->key);
			assert_int_equal(m->key_len, s.rec.key_len);
			assert_memory_equal(m->key, s.rec.key, s.rec.key_len);
		} else {
			assert_null(m->key);
		}
		if (s.rec.value) {
			assert_non_null(m->payload);
			assert_int_equal(m->len, s.rec.value_len);
			assert_memory_equal(m->payload, s.rec.value, s.rec.value_len);
		} else {
			assert_null(m->payload);
		}
		assert_int_equal(rd_kafka_message_timestamp(m, &tstype), s.rec.timestamp);
		assert_int_equal(tstype, RD_KAFKA_TIMESTAMP_CREATE_TIME);
		if (s.rec.header_count) {
			assert_int_equal(rd_kafka_message_headers(m, &h), 0);
			assert_int_equal(rd_kafka_header_cnt(h), 3);
			check_header(h, 0, "h", "a", 1);
			check_header(h, 1, "h", NULL, 0);
			check_header(h, 2, "e", "", 0);
		} else {
			assert_int_not_equal(rd_kafka_message_headers(m, &h), 0);
		}
		rd_kafka_message_destroy(m);
		seen++;
	}
	rd_kafka_topic_partition_list_destroy(list);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
}

static void test_restore_sends_every_record_exactly_and_reruns_as_noop(void **state)
{
	struct env *env = *state;
	struct kt_replay_opts opts;
	struct kt_replay_summary sum;
	char errstr[512];

	kt_replay_opts_init(&opts, KT_REPLAY_MODE_RESTORE);
	assert_int_equal(run_restore(env, &opts, &sum, errstr, sizeof(errstr)), 0);
	assert_int_equal(sum.records_acked, PARTS * PER_PART);
	assert_int_equal(sum.records_skipped, 0);
	/* i % 13 == 5: records 5, 18, 31 of each partition were LogAppendTime. */
	assert_int_equal(sum.timestamps_not_exact, PARTS * 3);
	assert_int_equal(sum.gaps, 1);
	assert_int_equal(sum.gap_offsets, 5);
	assert_true(sum.restore_id[0] != '\0');
	check_target(env);

	kt_replay_opts_init(&opts, KT_REPLAY_MODE_RESTORE);
	assert_int_equal(run_restore(env, &opts, &sum, errstr, sizeof(errstr)), 0);
	assert_true(sum.resumed);
	assert_true(sum.already_complete);
	assert_int_equal(sum.records_sent, 0);
	assert_int_equal(sum.records_skipped, PARTS * PER_PART);
	check_target(env);
}

static void test_restore_translates_and_commits_group_offsets(void **state)
{
	struct env *env = *state;
	struct kt_replay_opts opts;
	struct kt_replay_summary sum;
	rd_kafka_topic_partition_list_t *list;
	const char *groups[] = { "g" };
	char errstr[512];
	rd_kafka_t *rk;

	/* Into "g.t" with a prefix: the records land at target offsets
	 * 0..39, so source 25 of partition 1 is target 25; partition 0 was
	 * consumed to its end (40). */
	assert_int_equal(rd_kafka_mock_topic_create(env->mock, "g.t", PARTS, 1), 0);
	kt_replay_opts_init(&opts, KT_REPLAY_MODE_RESTORE);
	opts.prefix = "g.";
	opts.groups = groups;
	opts.group_count = 1;
	assert_int_equal(run_restore(env, &opts, &sum, errstr, sizeof(errstr)), 0);
	assert_int_equal(sum.group_commit_count, 2);
	rk = consumer(env, "g");
	list = rd_kafka_topic_partition_list_new(2);
	rd_kafka_topic_partition_list_add(list, "g.t", 0);
	rd_kafka_topic_partition_list_add(list, "g.t", 1);
	assert_int_equal(rd_kafka_committed(rk, list, 5000), 0);
	assert_int_equal(list->elems[0].offset, PER_PART);
	assert_int_equal(list->elems[1].offset, 25);
	rd_kafka_topic_partition_list_destroy(list);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
}

static void test_restore_refuses_a_different_partition_count_before_sending(void **state)
{
	struct env *env = *state;
	struct kt_replay_opts opts;
	struct kt_replay_map map = { "t", "two" };
	char errstr[512];

	kt_replay_opts_init(&opts, KT_REPLAY_MODE_RESTORE);
	opts.maps = &map;
	opts.map_count = 1;
	assert_int_equal(run_restore(env, &opts, NULL, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_non_null(strstr(errstr, "two has 2 partitions"));
	assert_int_equal(end_offset(env, "two", 0) + end_offset(env, "two", 1), 0);

	/* With key partitioning it goes through: 120 records over 2. */
	kt_replay_opts_init(&opts, KT_REPLAY_MODE_RESTORE);
	opts.maps = &map;
	opts.map_count = 1;
	opts.partitioning = KT_REPLAY_PART_KEY;
	assert_int_equal(run_restore(env, &opts, NULL, errstr, sizeof(errstr)), 0);
	assert_int_equal(end_offset(env, "two", 0) + end_offset(env, "two", 1), PARTS * PER_PART);
}

static void test_restore_dry_run_sends_and_records_nothing(void **state)
{
	struct env *env = *state;
	struct kt_replay_opts opts;
	struct kt_replay_summary sum;
	struct kt_replay_map map = { "t", "dry" };
	struct kt_replay_offset_bound from = { NULL, 1, 10 }, to = { NULL, -1, 20 };
	char errstr[512];

	assert_int_equal(rd_kafka_mock_topic_create(env->mock, "dry", PARTS, 1), 0);
	kt_replay_opts_init(&opts, KT_REPLAY_MODE_RESTORE);
	opts.maps = &map;
	opts.map_count = 1;
	opts.dry_run = 1;
	opts.from_offsets = &from;
	opts.from_offset_count = 1;
	opts.to_offsets = &to;
	opts.to_offset_count = 1;
	assert_int_equal(run_restore(env, &opts, &sum, errstr, sizeof(errstr)), 0);
	/* Partitions 0 and 2: [0, 20); partition 1: [10, 20). */
	assert_int_equal(sum.records_sent, 20 + 10 + 20);
	assert_string_equal(sum.restore_id, "");
	for (int32_t p = 0; p < PARTS; p++)
		assert_int_equal(end_offset(env, "dry", p), 0);
}

static void test_restore_options_are_checked_before_anything_runs(void **state)
{
	struct kt_replay_opts opts;
	struct kt_replay *rp = NULL;
	char errstr[256];

	(void)state;
	kt_replay_opts_init(&opts, KT_REPLAY_MODE_RESTORE);
	opts.repo_path = "/nonexistent";
	opts.brokers = "127.0.0.1:1";
	opts.loops = 2;
	assert_int_equal(kt_replay_create(&rp, &opts, errstr, sizeof(errstr)), KT_EUSAGE);
	opts.loops = 1;
	opts.from_time = 10;
	opts.to_time = 10;
	assert_int_equal(kt_replay_create(&rp, &opts, errstr, sizeof(errstr)), KT_EUSAGE);
	opts.from_time = INT64_MIN;
	opts.to_time = INT64_MAX;
	opts.resume_id = "x";
	opts.force_new = 1;
	assert_int_equal(kt_replay_create(&rp, &opts, errstr, sizeof(errstr)), KT_EUSAGE);
	opts.resume_id = NULL;
	opts.force_new = 0;
	opts.group_regex = "(";
	assert_int_equal(kt_replay_create(&rp, &opts, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_null(rp);
}

static void test_offset_bounds_parse_every_form(void **state)
{
	struct kt_replay_offset_bound b;
	char errstr[256];
	char t1[] = "42", t2[] = "3:17", t3[] = "orders:2:9", t4[] = "1:2:3:4", t5[] = "x", t6[] = "-1:5",
	     t7[] = ":2:5";

	(void)state;
	assert_int_equal(kt_replay_parse_offset_bound(t1, &b, errstr, sizeof(errstr)), 0);
	assert_null(b.topic);
	assert_int_equal(b.partition, -1);
	assert_int_equal(b.offset, 42);
	assert_int_equal(kt_replay_parse_offset_bound(t2, &b, errstr, sizeof(errstr)), 0);
	assert_int_equal(b.partition, 3);
	assert_int_equal(b.offset, 17);
	assert_int_equal(kt_replay_parse_offset_bound(t3, &b, errstr, sizeof(errstr)), 0);
	assert_string_equal(b.topic, "orders");
	assert_int_equal(b.partition, 2);
	assert_int_equal(b.offset, 9);
	assert_int_equal(kt_replay_parse_offset_bound(t4, &b, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_int_equal(kt_replay_parse_offset_bound(t5, &b, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_int_equal(kt_replay_parse_offset_bound(t6, &b, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_int_equal(kt_replay_parse_offset_bound(t7, &b, errstr, sizeof(errstr)), KT_EUSAGE);
}

static void test_shared_args_fill_the_options(void **state)
{
	struct kt_replay_opts opts;
	struct kt_replay_args *args = NULL;
	char errstr[256];
	char map[] = "orders=dr.orders", off[] = "2:100", bad_map[] = "orders", t[] = "^o.*";
	char when[] = "2023-11-14T22:13:20.123Z", rate[] = "1.5", size[] = "2M", part[] = "hash";

	(void)state;
	kt_replay_opts_init(&opts, KT_REPLAY_MODE_RESTORE);
	assert_int_equal(kt_replay_args_create(&args, &opts, 8), 0);
	assert_int_equal(kt_replay_args_apply(args, "map", map, errstr, sizeof(errstr)), 1);
	assert_int_equal(opts.map_count, 1);
	assert_string_equal(opts.maps[0].source, "orders");
	assert_string_equal(opts.maps[0].target, "dr.orders");
	assert_int_equal(kt_replay_args_apply(args, "from-offset", off, errstr, sizeof(errstr)), 1);
	assert_int_equal(opts.from_offsets[0].partition, 2);
	assert_int_equal(opts.from_offsets[0].offset, 100);
	assert_int_equal(kt_replay_args_apply(args, "topic", t, errstr, sizeof(errstr)), 1);
	assert_string_equal(opts.topics[0], "^o.*");
	assert_int_equal(kt_replay_args_apply(args, "from-time", when, errstr, sizeof(errstr)), 1);
	assert_int_equal(opts.from_time, 1700000000123LL);
	assert_int_equal(kt_replay_args_apply(args, "max-rate", rate, errstr, sizeof(errstr)), 1);
	assert_true(opts.max_rate == 1.5);
	assert_int_equal(kt_replay_args_apply(args, "max-bytes-rate", size, errstr, sizeof(errstr)), 1);
	assert_true(opts.max_bytes_rate == 2.0 * 1024 * 1024);
	assert_int_equal(kt_replay_args_apply(args, "no-create-topics", NULL, errstr, sizeof(errstr)), 1);
	assert_int_equal(opts.create_topics, 0);
	assert_int_equal(kt_replay_args_apply(args, "map", bad_map, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_non_null(strstr(errstr, "SOURCE=TARGET"));
	assert_int_equal(kt_replay_args_apply(args, "partitioning", part, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_int_equal(kt_replay_args_apply(args, "speed", rate, errstr, sizeof(errstr)), 0);
	kt_replay_args_destroy(args);
}

static void test_summary_renders_as_json_and_prometheus(void **state)
{
	struct kt_replay_summary s;
	struct kt_replay_group_commit c = { "grp", "t", 1, "src", 1, 25, 125, 1 };
	char *json, *prom;

	(void)state;
	memset(&s, 0, sizeof(s));
	snprintf(s.snapshot_id, sizeof(s.snapshot_id), "snap");
	s.records_acked = 7;
	s.group_commit_count = 1;
	s.group_commits = &c;
	json = kt_replay_summary_json(&s, KT_REPLAY_MODE_RESTORE);
	prom = kt_replay_summary_prometheus(&s, KT_REPLAY_MODE_RESTORE);
	assert_non_null(json);
	assert_non_null(prom);
	assert_non_null(strstr(json, "\"records_acked\":7"));
	assert_non_null(strstr(json, "\"target_offset\":125"));
	assert_non_null(strstr(prom, "ktape_restore_records_acked_total{snapshot=\"snap\"} 7\n"));
	free(json);
	free(prom);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offset_bounds_parse_every_form),
		cmocka_unit_test(test_restore_options_are_checked_before_anything_runs),
		cmocka_unit_test(test_shared_args_fill_the_options),
		cmocka_unit_test(test_summary_renders_as_json_and_prometheus),
		cmocka_unit_test_setup_teardown(test_restore_sends_every_record_exactly_and_reruns_as_noop,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_translates_and_commits_group_offsets,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses_a_different_partition_count_before_sending,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_dry_run_sends_and_records_nothing,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
