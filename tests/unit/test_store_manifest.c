/* Unit tests of src/store/manifest.c: snapshot manifests in memory and as
 * JSON (format/repository.md section 4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kt_store.h"

static struct kt_store_segref segref(const char *path, int64_t first, int64_t last, int64_t min_ts,
				     int64_t max_ts, uint64_t records, uint64_t raw, uint64_t checksum)
{
	struct kt_store_segref ref = {
		.path = (char *)path, .first_offset = first, .last_offset = last,
		.min_ts = min_ts, .max_ts = max_ts, .records = records, .raw_bytes = raw,
		.file_size = raw / 2 + 100, .checksum = checksum,
	};
	return ref;
}

/* A snapshot that uses every field of the manifest, with the values most
 * likely to be mangled: 64-bit extremes, null versus empty, null metadata. */
static struct kt_store_snapshot *full_snapshot(void)
{
	struct kt_store_snapshot *snap = kt_store_snapshot_create();
	struct kt_store_topic *topic;
	struct kt_store_partition *part;
	struct kt_store_segref ref;

	assert_non_null(snap);
	snprintf(snap->id, sizeof(snap->id), "20261122T013214123Z-9f3a0c1e");
	snprintf(snap->parent, sizeof(snap->parent), "20261121T000000000Z-00000001");
	snap->kind = KT_SNAPSHOT_INCREMENTAL;
	snap->started_ms = 1763775134000;
	snap->completed_ms = INT64_MAX;
	snap->source = strdup("broker1:9092,broker2:9092");

	topic = kt_store_snapshot_add_topic(snap, "orders", 3, 2);
	assert_non_null(topic);
	assert_int_equal(kt_store_topic_add_config(topic, "retention.ms", "604800000"), 0);
	assert_int_equal(kt_store_topic_add_config(topic, "sasl.password", NULL), 0);
	/* Added out of order: the builder keeps partitions sorted. */
	part = kt_store_topic_add_partition(topic, 2);
	assert_non_null(part);
	part->log_start_offset = 7;
	part->start_offset = 10;
	part->end_offset = INT64_MAX;
	ref = segref("segments/orders/2/00000000000000000010-0123456789abcdef.kts", 10, 19, INT64_MIN, 5, 10,
		     INT64_MAX - 100, UINT64_MAX);
	assert_int_equal(kt_store_partition_add_segment(part, &ref), 0);
	ref = segref("segments/orders/2/09223372036854775797-fedcba9876543210.kts", INT64_MAX - 10, INT64_MAX - 1,
		     6, INT64_MAX, 10, 100, 1);
	assert_int_equal(kt_store_partition_add_segment(part, &ref), 0);
	assert_int_equal(kt_store_partition_add_gap(part, 20, 40, "retention"), 0);
	assert_int_equal(kt_store_partition_add_gap(part, 50, 51, "retention"), 0);
	part = kt_store_topic_add_partition(topic, 0);
	assert_non_null(part);
	part->log_start_offset = -1;
	part->complete = 0;

	/* configs described but none differ from the defaults: {} not null. */
	topic = kt_store_snapshot_add_topic(snap, "empty-configs", 1, -1);
	assert_non_null(topic);
	topic->configs_available = 1;
	/* configs the broker could not describe: null. */
	topic = kt_store_snapshot_add_topic(snap, "no.configs_x", 1, 1);
	assert_non_null(topic);

	assert_int_equal(kt_store_snapshot_add_group_offset(snap, "billing", "orders", 2, INT64_MAX, NULL), 0);
	assert_int_equal(kt_store_snapshot_add_group_offset(snap, "audit", "orders", 0, 0, "meta \"quoted\" é"), 0);
	return snap;
}

/* noinline: GCC 12 at -O3 otherwise mistakes the returned heap pointer for
 * one into the local it was written through (-Wdangling-pointer). */
static __attribute__((noinline)) char *to_json(const struct kt_store_snapshot *snap)
{
	char errstr[256] = "", *json = NULL;

	assert_int_equal(kt_store_snapshot_to_json(snap, &json, errstr, sizeof(errstr)), 0);
	assert_non_null(json);
	return json;
}

static void assert_str_or_null_equal(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_snapshots_equal(const struct kt_store_snapshot *a, const struct kt_store_snapshot *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->parent, b->parent);
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->started_ms, b->started_ms);
	assert_int_equal(a->completed_ms, b->completed_ms);
	assert_string_equal(a->source, b->source);
	assert_string_equal(a->tool_version, b->tool_version);
	assert_int_equal(a->topic_count, b->topic_count);
	for (size_t t = 0; t < a->topic_count; t++) {
		const struct kt_store_topic *x = &a->topics[t], *y = &b->topics[t];
		assert_string_equal(x->name, y->name);
		assert_int_equal(x->partition_count, y->partition_count);
		assert_int_equal(x->replication_factor, y->replication_factor);
		assert_int_equal(x->configs_available, y->configs_available);
		assert_int_equal(x->config_count, y->config_count);
		for (size_t c = 0; c < x->config_count; c++) {
			assert_string_equal(x->configs[c].name, y->configs[c].name);
			assert_str_or_null_equal(x->configs[c].value, y->configs[c].value);
		}
		assert_int_equal(x->n_partitions, y->n_partitions);
		for (size_t p = 0; p < x->n_partitions; p++) {
			const struct kt_store_partition *q = &x->partitions[p], *r = &y->partitions[p];
			assert_int_equal(q->partition, r->partition);
			assert_int_equal(q->log_start_offset, r->log_start_offset);
			assert_int_equal(q->start_offset, r->start_offset);
			assert_int_equal(q->end_offset, r->end_offset);
			assert_int_equal(q->records, r->records);
			assert_int_equal(q->raw_bytes, r->raw_bytes);
			assert_int_equal(q->min_ts, r->min_ts);
			assert_int_equal(q->max_ts, r->max_ts);
			assert_int_equal(q->complete, r->complete);
			assert_int_equal(q->segment_count, r->segment_count);
			for (size_t s = 0; s < q->segment_count; s++) {
				const struct kt_store_segref *u = &q->segments[s], *v = &r->segments[s];
				assert_string_equal(u->path, v->path);
				assert_int_equal(u->first_offset, v->first_offset);
				assert_int_equal(u->last_offset, v->last_offset);
				assert_int_equal(u->min_ts, v->min_ts);
				assert_int_equal(u->max_ts, v->max_ts);
				assert_int_equal(u->records, v->records);
				assert_int_equal(u->raw_bytes, v->raw_bytes);
				assert_int_equal(u->file_size, v->file_size);
				assert_int_equal(u->checksum, v->checksum);
			}
			assert_int_equal(q->gap_count, r->gap_count);
			for (size_t g = 0; g < q->gap_count; g++) {
				assert_int_equal(q->gaps[g].from, r->gaps[g].from);
				assert_int_equal(q->gaps[g].to, r->gaps[g].to);
				assert_string_equal(q->gaps[g].reason, r->gaps[g].reason);
			}
		}
	}
	assert_int_equal(a->group_offset_count, b->group_offset_count);
	for (size_t i = 0; i < a->group_offset_count; i++) {
		assert_string_equal(a->group_offsets[i].group, b->group_offsets[i].group);
		assert_string_equal(a->group_offsets[i].topic, b->group_offsets[i].topic);
		assert_int_equal(a->group_offsets[i].partition, b->group_offsets[i].partition);
		assert_int_equal(a->group_offsets[i].offset, b->group_offsets[i].offset);
		assert_str_or_null_equal(a->group_offsets[i].metadata, b->group_offsets[i].metadata);
	}
}

static void test_manifest_round_trip_keeps_every_field(void **state)
{
	struct kt_store_snapshot *snap = full_snapshot(), *back = NULL;
	char errstr[256] = "", *json = to_json(snap), *again;

	(void)state;
	assert_int_equal(kt_store_snapshot_from_json(json, strlen(json), &back, errstr, sizeof(errstr)), 0);
	assert_non_null(back);
	assert_snapshots_equal(snap, back);
	/* Serialising what was read gives the same bytes: nothing is lost or
	 * reordered on the way through. */
	again = to_json(back);
	assert_string_equal(json, again);
	free(again);
	free(json);
	kt_store_snapshot_destroy(back);
	kt_store_snapshot_destroy(snap);
}

static void test_manifest_builders_keep_totals_and_order(void **state)
{
	struct kt_store_snapshot *snap = full_snapshot();
	const struct kt_store_topic *topic = kt_store_snapshot_find_topic(snap, "orders");
	const struct kt_store_partition *part;

	(void)state;
	assert_non_null(topic);
	assert_null(kt_store_snapshot_find_topic(snap, "order"));
	assert_int_equal(topic->partitions[0].partition, 0);
	assert_int_equal(topic->partitions[1].partition, 2);
	part = kt_store_topic_find_partition(topic, 2);
	assert_non_null(part);
	assert_int_equal(part->records, 20);
	assert_int_equal(part->raw_bytes, INT64_MAX);
	assert_int_equal(part->min_ts, INT64_MIN);
	assert_int_equal(part->max_ts, INT64_MAX);
	assert_null(kt_store_topic_find_partition(topic, 1));
	/* A partition cannot be added twice. */
	assert_null(kt_store_topic_add_partition(&snap->topics[0], 2));
	assert_int_equal(topic->n_partitions, 2);
	assert_int_equal(topic->config_count, 2);
	assert_int_equal(snap->topics[2].configs_available, 0);
	kt_store_snapshot_destroy(snap);
	kt_store_snapshot_destroy(NULL);
}

static void test_manifest_json_has_the_documented_shape(void **state)
{
	struct kt_store_snapshot *snap = full_snapshot();
	char *json = to_json(snap);
	json_error_t jerr;
	json_t *root = json_loads(json, 0, &jerr), *topic, *part, *seg;

	(void)state;
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "format")), "ktape-snapshot");
	assert_int_equal(json_integer_value(json_object_get(root, "version")), 1);
	assert_string_equal(json_string_value(json_object_get(root, "kind")), "incremental");
	assert_string_equal(json_string_value(json_object_get(root, "parent")), "20261121T000000000Z-00000001");
	assert_true(json_integer_value(json_object_get(root, "completed_ms")) == INT64_MAX);
	topic = json_array_get(json_object_get(root, "topics"), 0);
	assert_true(json_is_null(json_object_get(json_object_get(topic, "configs"), "sasl.password")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(topic, "configs"), "retention.ms")),
			    "604800000");
	/* An empty partition has null timestamps, a non-empty one integers. */
	part = json_array_get(json_object_get(topic, "partitions"), 0);
	assert_true(json_is_null(json_object_get(part, "min_ts")));
	assert_true(json_is_null(json_object_get(part, "max_ts")));
	assert_true(json_is_false(json_object_get(part, "complete")));
	part = json_array_get(json_object_get(topic, "partitions"), 1);
	assert_true(json_integer_value(json_object_get(part, "min_ts")) == INT64_MIN);
	assert_true(json_is_true(json_object_get(part, "complete")));
	seg = json_array_get(json_object_get(part, "segments"), 0);
	assert_string_equal(json_string_value(json_object_get(seg, "checksum")), "ffffffffffffffff");
	seg = json_array_get(json_object_get(part, "segments"), 1);
	assert_string_equal(json_string_value(json_object_get(seg, "checksum")), "0000000000000001");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(part, "gaps"), 0), "to")), 40);
	/* {} when described with nothing to record, null when not described. */
	topic = json_array_get(json_object_get(root, "topics"), 1);
	assert_true(json_is_object(json_object_get(topic, "configs")));
	assert_int_equal(json_object_size(json_object_get(topic, "configs")), 0);
	topic = json_array_get(json_object_get(root, "topics"), 2);
	assert_true(json_is_null(json_object_get(topic, "configs")));
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(root, "groups"), 0), "metadata")));
	json_decref(root);
	free(json);
	kt_store_snapshot_destroy(snap);
}

/* Sets (val != NULL) or deletes the member at a dotted path such as
 * "topics/0/partitions/1/records" in the valid manifest, and returns the
 * result of parsing the changed text. */
static int parse_mutated(const char *path, json_t *val, char *errstr, size_t errstr_size)
{
	struct kt_store_snapshot *snap = full_snapshot(), *back = NULL;
	char *json = to_json(snap), *text, buf[256], *save = NULL;
	json_t *root = json_loads(json, 0, NULL), *node;
	int err;

	assert_non_null(root);
	snprintf(buf, sizeof(buf), "%s", path);
	node = root;
	char *tok = strtok_r(buf, "/", &save);
	for (char *next; (next = strtok_r(NULL, "/", &save)) != NULL; tok = next) {
		node = json_is_array(node) ? json_array_get(node, strtoul(tok, NULL, 10)) : json_object_get(node, tok);
		assert_non_null(node);
	}
	if (json_is_array(node))
		assert_int_equal(json_array_set_new(node, strtoul(tok, NULL, 10), val), 0);
	else if (val)
		assert_int_equal(json_object_set_new(node, tok, val), 0);
	else
		assert_int_equal(json_object_del(node, tok), 0);
	text = json_dumps(root, 0);
	assert_non_null(text);
	errstr[0] = '\0';
	err = kt_store_snapshot_from_json(text, strlen(text), &back, errstr, errstr_size);
	if (err == 0)
		kt_store_snapshot_destroy(back);
	else
		assert_null(back);
	free(text);
	json_decref(root);
	free(json);
	kt_store_snapshot_destroy(snap);
	return err;
}

static void expect_rejected(const char *path, json_t *val, int code, const char *mention)
{
	char errstr[512];
	int err = parse_mutated(path, val, errstr, sizeof(errstr));

	if (err != code || !strstr(errstr, mention))
		fail_msg("changing %s: got %d (%s), expected %d mentioning \"%s\"", path, err, errstr, code, mention);
}

static void test_manifest_rejects_wrong_types(void **state)
{
	(void)state;
	expect_rejected("version", json_string("1"), KT_ECORRUPT, "version");
	expect_rejected("kind", json_string("weekly"), KT_ECORRUPT, "kind");
	expect_rejected("started_ms", json_real(1.5), KT_ECORRUPT, "started_ms");
	expect_rejected("source", json_integer(3), KT_ECORRUPT, "source");
	expect_rejected("topics", json_object(), KT_ECORRUPT, "topics");
	expect_rejected("topics/0/name", json_null(), KT_ECORRUPT, "topics[0].name");
	expect_rejected("topics/0/configs", json_array(), KT_ECORRUPT, "topics[0].configs");
	expect_rejected("topics/0/configs/retention.ms", json_integer(1), KT_ECORRUPT, "retention");
	expect_rejected("topics/0/partitions/1/records", json_string("20"), KT_ECORRUPT,
			"topics[0].partitions[1].records");
	expect_rejected("topics/0/partitions/1/complete", json_integer(1), KT_ECORRUPT, "complete");
	expect_rejected("topics/0/partitions/1/min_ts", json_string("0"), KT_ECORRUPT, "min_ts");
	expect_rejected("topics/0/partitions/1/segments/0/checksum", json_string("abc"), KT_ECORRUPT,
			"topics[0].partitions[1].segments[0].checksum");
	expect_rejected("topics/0/partitions/1/segments/0/checksum", json_string("FFFFFFFFFFFFFFFF"), KT_ECORRUPT,
			"checksum");
	expect_rejected("topics/0/partitions/1/segments/1", json_string("x"), KT_ECORRUPT, "segments[1]");
	expect_rejected("topics/0/partitions/1/gaps/0/reason", json_false(), KT_ECORRUPT, "gaps[0].reason");
	expect_rejected("groups/1/metadata", json_integer(0), KT_ECORRUPT, "groups[1].metadata");
}

static void test_manifest_rejects_missing_fields(void **state)
{
	static const char *const paths[] = {
		"id", "parent", "kind", "started_ms", "source", "tool_version", "topics", "groups",
		"topics/0/partition_count", "topics/0/configs", "topics/0/partitions",
		"topics/0/partitions/1/end_offset", "topics/0/partitions/1/max_ts",
		"topics/0/partitions/1/segments/0/path", "topics/0/partitions/1/segments/1/file_size",
		"topics/0/partitions/1/gaps/1/from", "groups/0/offset",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const char *last = strrchr(paths[i], '/');
		expect_rejected(paths[i], NULL, KT_ECORRUPT, last ? last + 1 : paths[i]);
	}
}

static void test_manifest_rejects_out_of_range_values(void **state)
{
	(void)state;
	expect_rejected("topics/0/partitions/1/partition", json_integer(-1), KT_ECORRUPT, "partition");
	expect_rejected("topics/0/partitions/1/partition", json_integer((json_int_t)INT32_MAX + 1), KT_ECORRUPT,
			"partition");
	expect_rejected("topics/0/partitions/1/segments/0/records", json_integer(-5), KT_ECORRUPT, "records");
	/* Totals must be the sums over the segments. */
	expect_rejected("topics/0/partitions/1/records", json_integer(21), KT_ECORRUPT, "sum");
	/* Offsets must ascend through the chain. */
	expect_rejected("topics/0/partitions/1/segments/1/first_offset", json_integer(15), KT_ECORRUPT,
			"segments[1]");
	expect_rejected("topics/0/partitions/1/gaps/0/to", json_integer(20), KT_ECORRUPT, "gaps[0]");
	expect_rejected("topics/0/partitions/1/start_offset", json_integer(-3), KT_ECORRUPT, "start_offset");
	expect_rejected("topics/1/name", json_string("orders"), KT_ECORRUPT, "twice");
	expect_rejected("id", json_string("../evil"), KT_ECORRUPT, "id");
}

static void test_manifest_rejects_integer_beyond_64_bits(void **state)
{
	struct kt_store_snapshot *snap = full_snapshot(), *back = NULL;
	char *big = to_json(snap), errstr[256];
	char *at = strstr(big, "9223372036854775807"); /* completed_ms */

	(void)state;
	assert_non_null(at);
	/* One more than INT64_MAX cannot be held exactly: refuse, never round. */
	at[18] = '8';
	assert_int_equal(kt_store_snapshot_from_json(big, strlen(big), &back, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_null(back);
	free(big);
	kt_store_snapshot_destroy(snap);
}

static void test_manifest_rejects_future_version(void **state)
{
	char errstr[512];

	(void)state;
	assert_int_equal(parse_mutated("version", json_integer(2), errstr, sizeof(errstr)), KT_EVERSION);
	assert_non_null(strstr(errstr, "version 2 is newer than this ktape supports (1)"));
	/* A future version is reported as such even if its fields changed. */
	static const char v2[] = "{\"format\":\"ktape-snapshot\",\"version\":2,\"topics\":\"v2 layout\"}";
	struct kt_store_snapshot *back = NULL;
	assert_int_equal(kt_store_snapshot_from_json(v2, strlen(v2), &back, errstr, sizeof(errstr)), KT_EVERSION);
	assert_null(back);
	assert_int_equal(parse_mutated("format", json_string("ktape-repository"), errstr, sizeof(errstr)), KT_EMAGIC);
}

static void test_manifest_rejects_path_traversal(void **state)
{
	static const char *const bad[] = {
		"../../etc/passwd", "/etc/passwd", "segments/../../x.kts", "segments/a/..", "..",
		"segments//x.kts", "segments/./x.kts", "segments/x.kts/", "",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_rejected("topics/0/partitions/1/segments/0/path", json_string(bad[i]), KT_ECORRUPT, "path");

		/* The writer refuses the same paths, so no such manifest is
		 * ever committed. */
		struct kt_store_snapshot *snap = full_snapshot();
		char *json = NULL, errstr[256];
		struct kt_store_partition *part = &snap->topics[0].partitions[1];
		free(part->segments[0].path);
		part->segments[0].path = strdup(bad[i]);
		assert_int_equal(kt_store_snapshot_to_json(snap, &json, errstr, sizeof(errstr)), KT_ECORRUPT);
		assert_null(json);
		assert_non_null(strstr(errstr, "segments[0].path"));
		kt_store_snapshot_destroy(snap);
	}
}

static void test_manifest_rejects_non_manifests(void **state)
{
	static const char *const texts[] = { "", "{", "[]", "{\"format\":\"ktape-snapshot\"}", "null", "{\"a\":1,\"a\":2}" };
	struct kt_store_snapshot *back = NULL;
	char errstr[256];

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		int err = kt_store_snapshot_from_json(texts[i], strlen(texts[i]), &back, errstr, sizeof(errstr));
		assert_true(err == KT_ECORRUPT || err == KT_EMAGIC);
		assert_null(back);
	}
}

static void test_manifest_ignores_unknown_fields(void **state)
{
	char errstr[512];

	(void)state;
	/* Readers of the same major version ignore fields they do not know. */
	assert_int_equal(parse_mutated("retention_policy", json_string("x"), errstr, sizeof(errstr)), 0);
	assert_int_equal(parse_mutated("topics/0/partitions/1/segments/0/codec", json_string("zstd"), errstr,
				       sizeof(errstr)), 0);
}

static void test_manifest_repairs_client_strings_that_are_not_utf8(void **state)
{
	struct kt_store_snapshot *snap = full_snapshot(), *back = NULL;
	char errstr[256] = "", *json = NULL;

	(void)state;
	/* Group ids, commit metadata and config values come from clients as
	 * bytes; one that is not UTF-8 must not fail the whole backup. */
	free(snap->group_offsets[1].metadata);
	snap->group_offsets[1].metadata = strdup("bin\xff\xc0\x80" "ary");
	free(snap->topics[0].configs[0].value);
	snap->topics[0].configs[0].value = strdup("\xed\xa0\x80x");
	assert_int_equal(kt_store_snapshot_to_json(snap, &json, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_snapshot_from_json(json, strlen(json), &back, errstr, sizeof(errstr)), 0);
	assert_string_equal(back->group_offsets[1].metadata, "bin\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "ary");
	assert_string_equal(back->topics[0].configs[0].value,
			    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx");
	free(json);
	json = NULL;
	kt_store_snapshot_destroy(back);

	/* A topic name is an identity, never rewritten: refused, named. */
	free(snap->topics[1].name);
	snap->topics[1].name = strdup("t\xff");
	assert_int_not_equal(kt_store_snapshot_to_json(snap, &json, errstr, sizeof(errstr)), 0);
	assert_null(json);
	assert_non_null(strstr(errstr, "topics[1].name"));
	kt_store_snapshot_destroy(snap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_round_trip_keeps_every_field),
		cmocka_unit_test(test_manifest_builders_keep_totals_and_order),
		cmocka_unit_test(test_manifest_json_has_the_documented_shape),
		cmocka_unit_test(test_manifest_rejects_wrong_types),
		cmocka_unit_test(test_manifest_rejects_missing_fields),
		cmocka_unit_test(test_manifest_rejects_out_of_range_values),
		cmocka_unit_test(test_manifest_rejects_integer_beyond_64_bits),
		cmocka_unit_test(test_manifest_rejects_future_version),
		cmocka_unit_test(test_manifest_rejects_path_traversal),
		cmocka_unit_test(test_manifest_rejects_non_manifests),
		cmocka_unit_test(test_manifest_ignores_unknown_fields),
		cmocka_unit_test(test_manifest_repairs_client_strings_that_are_not_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
