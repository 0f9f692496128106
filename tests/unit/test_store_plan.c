/*
 * test_store_plan.c - the capture plan of a workers group and its progress
 * records (src/store/plan.c, format/repository.md section 8): encoding both
 * ways, create-once plans and records, the chain a new owner continues
 * from, and the manifest built and committed exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kt_store.h"
#include "repo_fixture.h"

struct fix {
	char dir[256];
	struct kt_store_repo *repo;
	struct kt_store_plan *plan;
};

/* A plan for orders [0] (offsets 100..200, continuing 0..100 of a parent
 * segment) and orders [1] (nothing new: 50..50). */
static struct kt_store_plan *make_plan(const char *id)
{
	struct kt_store_plan *plan = kt_store_plan_create();
	struct kt_store_snapshot *snap;
	struct kt_store_topic *topic;
	struct kt_store_partition *p0, *p1;
	struct kt_store_segref parent = { "segments/orders/0/00000000000000000000-00000000000000aa.kts", 0, 99,
					  1000, 1099, 100, 5000, 9000, 0x1234 };

	assert_non_null(plan);
	snap = plan->manifest;
	snprintf(plan->id, sizeof(plan->id), "%s", id);
	snprintf(snap->id, sizeof(snap->id), "%s", id);
	snprintf(snap->parent, sizeof(snap->parent), "20261101T000000000Z-00000001");
	snprintf(plan->group, sizeof(plan->group), "nightly");
	plan->created_ms = 1763775134123;
	plan->creator = strdup("host-a 42");
	snap->kind = KT_SNAPSHOT_INCREMENTAL;
	snap->started_ms = snap->completed_ms = 1763775134000;
	snap->source = strdup("127.0.0.1:9092");
	topic = kt_store_snapshot_add_topic(snap, "orders", 2, 1);
	assert_non_null(topic);
	topic->configs_available = 0;
	p0 = kt_store_topic_add_partition(topic, 0);
	assert_non_null(p0);
	p0->log_start_offset = 0;
	p0->start_offset = 0;
	p0->end_offset = 200;
	p0->records = 0;
	p0->raw_bytes = 0;
	assert_int_equal(kt_store_partition_add_segment(p0, &parent), 0);
	p1 = kt_store_topic_add_partition(topic, 1);
	assert_non_null(p1);
	p1->start_offset = 50;
	p1->end_offset = 50;
	p1->log_start_offset = 50;
	assert_int_equal(kt_store_plan_add_part(plan, "orders", 0, 100, 200), 0);
	assert_int_equal(kt_store_plan_add_part(plan, "orders", 1, 50, 50), 0);
	return plan;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	char errstr[512];

	fixture_tmpdir(f->dir, sizeof(f->dir), "plan");
	strcat(f->dir, "/repo");
	if (kt_store_repo_open(&f->repo, f->dir, KT_STORE_REPO_CREATE, 0, errstr, sizeof(errstr)))
		return -1;
	f->plan = make_plan("20261122T010000000Z-0000abcd");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	kt_store_plan_destroy(f->plan);
	kt_store_repo_destroy(f->repo);
	*strrchr(f->dir, '/') = '\0';
	fixture_rmrf(f->dir);
	free(f);
	return 0;
}

static struct kt_store_plan_record segment_record(size_t part, int64_t from, int64_t to, const char *path)
{
	struct kt_store_plan_record rec;

	memset(&rec, 0, sizeof(rec));
	rec.part = part;
	rec.from = from;
	rec.to = to;
	rec.kind = KT_PLAN_RECORD_SEGMENT;
	rec.segment.path = (char *)path;
	rec.segment.first_offset = from;
	rec.segment.last_offset = to - 1;
	rec.segment.min_ts = 2000;
	rec.segment.max_ts = 2000 + (to - from);
	rec.segment.records = (uint64_t)(to - from);
	rec.segment.raw_bytes = 50 * (uint64_t)(to - from);
	rec.segment.file_size = 4096;
	rec.segment.checksum = 0xfeedfacecafebeefull;
	return rec;
}

static void test_plan_round_trips_through_json(void **state)
{
	struct fix *f = *state;
	struct kt_store_plan *back = NULL;
	char errstr[512], *json = NULL;

	assert_int_equal(kt_store_plan_to_json(f->plan, &json, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_plan_from_json(json, strlen(json), &back, errstr, sizeof(errstr)), 0);
	assert_string_equal(back->id, f->plan->id);
	assert_string_equal(back->group, "nightly");
	assert_string_equal(back->creator, "host-a 42");
	assert_int_equal(back->created_ms, 1763775134123);
	assert_int_equal(back->part_count, 2);
	assert_string_equal(back->parts[0].topic, "orders");
	assert_int_equal(back->parts[0].from, 100);
	assert_int_equal(back->parts[0].end, 200);
	assert_int_equal(back->parts[1].partition, 1);
	assert_string_equal(back->manifest->parent, "20261101T000000000Z-00000001");
	assert_int_equal(back->manifest->topics[0].partitions[0].segment_count, 1);
	assert_int_equal(back->manifest->topics[0].partitions[0].records, 100);
	free(json);
	kt_store_plan_destroy(back);
}

static void test_plan_decoder_refuses_bad_headers_and_parts(void **state)
{
	struct fix *f = *state;
	struct kt_store_plan *back = NULL;
	char errstr[512], *json = NULL, *bad, *at;

	assert_int_equal(kt_store_plan_from_json("[]", 2, &back, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_int_equal(kt_store_plan_from_json("{\"format\":\"ktape-snapshot\",\"version\":1}", 39, &back, errstr,
						 sizeof(errstr)), KT_EMAGIC);
	assert_int_equal(kt_store_plan_from_json("{\"format\":\"ktape-plan\",\"version\":2}", 35, &back, errstr,
						 sizeof(errstr)), KT_EVERSION);
	assert_int_equal(kt_store_plan_to_json(f->plan, &json, errstr, sizeof(errstr)), 0);
	/* A part whose end is not its manifest partition's end. */
	bad = strdup(json);
	at = strstr(bad, "\"end\":200");
	assert_non_null(at);
	memcpy(at, "\"end\":300", 9);
	assert_int_equal(kt_store_plan_from_json(bad, strlen(bad), &back, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_non_null(strstr(errstr, "parts[0]"));
	assert_null(back);
	free(bad);
	free(json);
	/* And the encoder checks the same rules. */
	f->plan->parts[1].from = 60;
	assert_int_equal(kt_store_plan_to_json(f->plan, &json, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_null(json);
}

static void test_plan_write_is_create_once_and_listed(void **state)
{
	struct fix *f = *state;
	struct kt_store_plan *loaded = NULL, *other = make_plan(f->plan->id);
	char errstr[512], **ids = NULL;
	size_t count = 0;

	assert_int_equal(kt_store_plan_write(f->repo, f->plan, errstr, sizeof(errstr)), 0);
	snprintf(other->group, sizeof(other->group), "another");
	assert_int_equal(kt_store_plan_write(f->repo, other, errstr, sizeof(errstr)), KT_EEXIST);
	assert_int_equal(kt_store_plan_list(f->repo, &ids, &count, errstr, sizeof(errstr)), 0);
	assert_int_equal(count, 1);
	assert_string_equal(ids[0], f->plan->id);
	kt_store_strv_free(ids, count);
	assert_int_equal(kt_store_plan_load(f->repo, f->plan->id, &loaded, errstr, sizeof(errstr)), 0);
	assert_string_equal(loaded->group, "nightly");
	kt_store_plan_destroy(loaded);
	kt_store_plan_destroy(other);
	assert_int_equal(kt_store_plan_load(f->repo, "20261122T010000000Z-00000000", &loaded, errstr,
					    sizeof(errstr)), KT_ENOTFOUND);
}

static void test_progress_record_is_create_once_per_partition_and_offset(void **state)
{
	struct fix *f = *state;
	struct kt_store_plan_progress *a = NULL, *b = NULL;
	struct kt_store_plan_record ra = segment_record(0, 100, 150, "segments/orders/0/a.kts");
	struct kt_store_plan_record rb = segment_record(0, 100, 130, "segments/orders/0/b.kts");
	char errstr[512];

	assert_int_equal(kt_store_plan_write(f->repo, f->plan, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_plan_progress_create(&a, f->plan), 0);
	assert_int_equal(kt_store_plan_progress_create(&b, f->plan), 0);
	/* Two workers that both own partition 0 during a rebalance: one
	 * range from offset 100 is recorded, the other is refused. */
	assert_int_equal(kt_store_plan_progress_record(f->repo, a, &ra, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_plan_progress_record(f->repo, b, &rb, errstr, sizeof(errstr)), KT_EEXIST);
	/* The loser reads the winner's record and continues from its end. */
	assert_int_equal(kt_store_plan_progress_refresh(f->repo, b, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_plan_progress_position(b, 0), 150);
	/* A record that does not start where the chain ends is refused. */
	rb = segment_record(0, 160, 170, "segments/orders/0/c.kts");
	assert_int_equal(kt_store_plan_progress_record(f->repo, b, &rb, errstr, sizeof(errstr)), KT_ERANGE);
	kt_store_plan_progress_destroy(a);
	kt_store_plan_progress_destroy(b);
}

static void test_progress_refuses_records_outside_the_plan(void **state)
{
	struct fix *f = *state;
	struct kt_store_plan_progress *pg = NULL;
	struct kt_store_plan_record rec = segment_record(0, 100, 250, "segments/orders/0/a.kts");
	char errstr[512];

	assert_int_equal(kt_store_plan_progress_create(&pg, f->plan), 0);
	assert_int_equal(kt_store_plan_progress_record(f->repo, pg, &rec, errstr, sizeof(errstr)), KT_ECORRUPT);
	rec = segment_record(0, 100, 150, "../escape.kts");
	assert_int_equal(kt_store_plan_progress_record(f->repo, pg, &rec, errstr, sizeof(errstr)), KT_ECORRUPT);
	rec = segment_record(2, 0, 1, "segments/orders/2/a.kts");
	assert_int_equal(kt_store_plan_progress_record(f->repo, pg, &rec, errstr, sizeof(errstr)), KT_ECORRUPT);
	kt_store_plan_progress_destroy(pg);
}

static void test_progress_refresh_names_a_damaged_record(void **state)
{
	struct fix *f = *state;
	struct kt_store_plan_progress *pg = NULL;
	char errstr[512], rel[256];

	snprintf(rel, sizeof(rel), "plans/%s/0-00000000000000000100.json", f->plan->id);
	assert_int_equal(kt_store_repo_write_file(f->repo, rel, "{\"format\":\"ktape-plan-record\"", 29, 0, errstr,
						  sizeof(errstr)), 0);
	assert_int_equal(kt_store_plan_progress_create(&pg, f->plan), 0);
	assert_int_equal(kt_store_plan_progress_refresh(f->repo, pg, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_non_null(strstr(errstr, "0-00000000000000000100.json"));
	kt_store_plan_progress_destroy(pg);
}

static void test_manifest_is_built_when_complete_and_committed_once(void **state)
{
	struct fix *f = *state;
	struct kt_store_plan_progress *pg = NULL;
	struct kt_store_snapshot *snap = NULL, *loaded = NULL;
	struct kt_store_plan_record rec;
	const struct kt_store_partition *p0;
	char errstr[512];

	assert_int_equal(kt_store_plan_progress_create(&pg, f->plan), 0);
	assert_int_equal(kt_store_plan_progress_remaining(pg), 1); /* partition 1 has nothing to do */
	rec = segment_record(0, 100, 150, "segments/orders/0/a.kts");
	assert_int_equal(kt_store_plan_progress_record(f->repo, pg, &rec, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_plan_build_manifest(pg, 1763775200000, &snap, errstr, sizeof(errstr)), KT_ERANGE);
	assert_non_null(strstr(errstr, "orders [0]"));
	/* Retention took 150..160; 160..200 is one more segment. */
	memset(&rec, 0, sizeof(rec));
	rec.part = 0;
	rec.from = 150;
	rec.to = 160;
	rec.kind = KT_PLAN_RECORD_GAP;
	assert_int_equal(kt_store_plan_progress_record(f->repo, pg, &rec, errstr, sizeof(errstr)), 0);
	rec = segment_record(0, 160, 200, "segments/orders/0/b.kts");
	assert_int_equal(kt_store_plan_progress_record(f->repo, pg, &rec, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_plan_progress_remaining(pg), 0);
	assert_int_equal(kt_store_plan_build_manifest(pg, 1763775200000, &snap, errstr, sizeof(errstr)), 0);
	assert_int_equal(snap->kind, KT_SNAPSHOT_INCREMENTAL);
	assert_int_equal(kt_store_plan_commit(f->repo, snap, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_plan_commit(f->repo, snap, errstr, sizeof(errstr)), KT_EEXIST);
	assert_int_equal(kt_store_repo_load_snapshot(f->repo, f->plan->id, &loaded, errstr, sizeof(errstr)), 0);
	p0 = &loaded->topics[0].partitions[0];
	assert_int_equal(p0->segment_count, 3);
	assert_string_equal(p0->segments[2].path, "segments/orders/0/b.kts");
	assert_int_equal(p0->records, 100 + 50 + 40);
	assert_int_equal(p0->gap_count, 1);
	assert_int_equal(p0->gaps[0].from, 150);
	assert_int_equal(p0->end_offset, 200);
	assert_int_equal(loaded->completed_ms, 1763775200000);
	kt_store_snapshot_destroy(loaded);
	kt_store_snapshot_destroy(snap);
	kt_store_plan_progress_destroy(pg);
}

static void test_plan_remove_takes_records_then_the_plan(void **state)
{
	struct fix *f = *state;
	struct kt_store_plan_progress *pg = NULL;
	struct kt_store_plan_record rec = segment_record(0, 100, 200, "segments/orders/0/a.kts");
	char errstr[512], **names = NULL, dir[128];
	size_t count = 0;

	assert_int_equal(kt_store_plan_write(f->repo, f->plan, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_plan_progress_create(&pg, f->plan), 0);
	assert_int_equal(kt_store_plan_progress_record(f->repo, pg, &rec, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_plan_remove(f->repo, f->plan->id, errstr, sizeof(errstr)), 0);
	snprintf(dir, sizeof(dir), "plans/%s", f->plan->id);
	assert_int_equal(kt_store_repo_list_files(f->repo, dir, &names, &count, errstr, sizeof(errstr)), 0);
	assert_int_equal(count, 0);
	kt_store_strv_free(names, count);
	assert_int_equal(kt_store_plan_list(f->repo, &names, &count, errstr, sizeof(errstr)), 0);
	assert_int_equal(count, 0);
	kt_store_strv_free(names, count);
	/* Removing again (another worker cleaning up too) is not an error. */
	assert_int_equal(kt_store_plan_remove(f->repo, f->plan->id, errstr, sizeof(errstr)), 0);
	kt_store_plan_progress_destroy(pg);
}

/* A worker SIGKILLed while writing a progress record leaves its temp file
 * in the plan's directory; removing the finished plan takes it too, and
 * the directory with it. */
static void test_plan_remove_takes_a_killed_writers_temp_file(void **state)
{
	struct fix *f = *state;
	struct kt_store_plan_progress *pg = NULL;
	struct kt_store_plan_record rec = segment_record(0, 100, 200, "segments/orders/0/a.kts");
	char errstr[512], path[512];
	struct stat st;
	FILE *fp;

	assert_int_equal(kt_store_plan_write(f->repo, f->plan, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_plan_progress_create(&pg, f->plan), 0);
	assert_int_equal(kt_store_plan_progress_record(f->repo, pg, &rec, errstr, sizeof(errstr)), 0);
	snprintf(path, sizeof(path), "%s/plans/%s/0-00000000000000000200.json.tmp-0123456789ab", f->dir,
		 f->plan->id);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("{\"torn", fp);
	fclose(fp);
	assert_int_equal(kt_store_plan_remove(f->repo, f->plan->id, errstr, sizeof(errstr)), 0);
	assert_int_equal(stat(path, &st), -1);
	*strrchr(path, '/') = '\0';
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
	kt_store_plan_progress_destroy(pg);
}

static void test_new_id_sorts_after_every_snapshot(void **state)
{
	struct fix *f = *state;
	struct kt_store_plan_progress *pg = NULL;
	struct kt_store_snapshot *snap = NULL;
	struct kt_store_plan *future = make_plan("29990101T000000000Z-00000001");
	struct kt_store_plan_record rec = segment_record(0, 100, 200, "segments/orders/0/a.kts");
	char errstr[512], id[64];

	/* A snapshot dated in the future: a new id must still sort after it. */
	assert_int_equal(kt_store_plan_progress_create(&pg, future), 0);
	assert_int_equal(kt_store_plan_progress_record(f->repo, pg, &rec, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_plan_build_manifest(pg, 1, &snap, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_plan_commit(f->repo, snap, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_plan_new_id(f->repo, id, errstr, sizeof(errstr)), 0);
	assert_true(strcmp(id, "29990101T000000000Z-00000001") > 0);
	assert_int_equal(strncmp(id, "29990101T000000001Z-", 20), 0);
	kt_store_snapshot_destroy(snap);
	kt_store_plan_progress_destroy(pg);
	kt_store_plan_destroy(future);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_plan_round_trips_through_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan_decoder_refuses_bad_headers_and_parts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan_write_is_create_once_and_listed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_progress_record_is_create_once_per_partition_and_offset, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_progress_refuses_records_outside_the_plan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_progress_refresh_names_a_damaged_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_is_built_when_complete_and_committed_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_plan_remove_takes_records_then_the_plan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan_remove_takes_a_killed_writers_temp_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_id_sorts_after_every_snapshot, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
