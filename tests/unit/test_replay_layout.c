/* Unit tests of src/replay/layout.c: reading back where a finished restore
 * put each record (plan.json + checkpoint.json + offsets.ktm), which
 * `ktape diff --restore` compares through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_priv.h"
#include "kt_common.h"
#include "kt_replay.h"
#include "offsetmap_priv.h"

#define RID "20261122T021500123Z-4be1a9c0"
#define SNAP "20261122T013214123Z-9f3a0c1e"

struct fixture {
	char dir[64];  /* stands for the repository */
	char rdir[128]; /* dir/restores/RID */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/kt_layout_XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->rdir, sizeof(f->rdir), "%s/restores/" RID, f->dir);
	if (kt_mkdir_p(f->rdir, 0700))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX], errstr[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(kt_write_file_atomic(path, text, strlen(text), 0600, errstr, sizeof(errstr)), 0);
}

/* A restore of orders[0] (log start had moved to 100: offsets 100..149, a
 * compaction hole at 120..129) and orders[1] (empty window) into dr.orders,
 * whose partition 0 already held 7 records. */
static void write_record(const struct fixture *f, int partitioning, int state)
{
	struct kt_replay_plan *plan = kt_replay_plan_create("127.0.0.1:9092");
	struct kt_replay_checkpoint *ckpt = kt_replay_checkpoint_create(RID);
	struct kt_replay_omap *map = kt_replay_omap_create();
	struct kt_replay_plan_topic *t;
	char errstr[256], path[PATH_MAX], *json = NULL;
	long sec;

	assert_non_null(plan);
	assert_non_null(ckpt);
	assert_non_null(map);
	snprintf(plan->id, sizeof(plan->id), RID);
	snprintf(plan->snapshot, sizeof(plan->snapshot), SNAP);
	plan->partitioning = partitioning;
	plan->from_time = 1700000000000LL;
	t = kt_replay_plan_add_topic(plan, "orders", "dr.orders", 2);
	assert_non_null(t);
	assert_int_equal(kt_replay_plan_add_part(t, 0, KT_REPLAY_NO_BOUND_LO, KT_REPLAY_NO_BOUND_HI), 0);
	assert_int_equal(kt_replay_plan_add_part(t, 1, 500, 600), 0);
	assert_int_equal(kt_replay_plan_add_base(t, 0, 7), 0);
	assert_int_equal(kt_replay_plan_add_base(t, 1, 42), 0);
	kt_replay_plan_fingerprint(plan);
	assert_int_equal(kt_replay_plan_to_json(plan, &json, errstr, sizeof(errstr)), 0);
	write_text(f->rdir, "plan.json", json);
	free(json);

	sec = kt_replay_omap_add_section(map, "dr.orders", "orders", 0, 7);
	assert_true(sec >= 0);
	for (int64_t o = 100, target = 7; o < 150; o++) {
		if (o >= 120 && o < 130)
			continue;
		assert_int_equal(kt_replay_omap_append(&map->sections[sec], 0, o, target++), 0);
	}
	snprintf(path, sizeof(path), "%s/offsets.ktm", f->rdir);
	assert_int_equal(kt_replay_omap_write(map, path, 0600, errstr, sizeof(errstr)), 0);

	ckpt->state = state;
	assert_int_equal(kt_replay_checkpoint_to_json(ckpt, &json, errstr, sizeof(errstr)), 0);
	write_text(f->rdir, "checkpoint.json", json);
	free(json);
	kt_replay_omap_destroy(map);
	kt_replay_checkpoint_destroy(ckpt);
	kt_replay_plan_destroy(plan);
}

static void test_layout_maps_each_source_partition_to_its_runs(void **state)
{
	struct fixture *f = *state;
	struct kt_replay_layout *layout = NULL;
	const struct kt_replay_layout_part *p;
	char errstr[512];

	write_record(f, KT_REPLAY_PART_PRESERVE, KT_REPLAY_CKPT_COMPLETE);
	assert_int_equal(kt_replay_layout_load(&layout, f->dir, NULL, RID, errstr, sizeof(errstr)), 0);
	assert_string_equal(layout->restore_id, RID);
	assert_string_equal(layout->snapshot_id, SNAP);
	assert_int_equal(layout->from_time, 1700000000000LL);
	assert_int_equal(layout->part_count, 2);

	p = kt_replay_layout_find(layout, "orders", 0);
	assert_non_null(p);
	assert_string_equal(p->target_topic, "dr.orders");
	assert_int_equal(p->target_partition, 0);
	assert_int_equal(p->target_lo, 7);
	assert_int_equal(p->target_hi, 7 + 40);
	/* The compaction hole splits the partition into two runs. */
	assert_int_equal(p->run_count, 2);
	assert_int_equal(p->runs[0].source_offset, 100);
	assert_int_equal(p->runs[0].target_offset, 7);
	assert_int_equal(p->runs[0].count, 20);
	assert_int_equal(p->runs[1].source_offset, 130);
	assert_int_equal(p->runs[1].target_offset, 27);
	assert_int_equal(p->runs[1].count, 20);

	/* Nothing of partition 1 was in its window: it wrote nothing, at its base. */
	p = kt_replay_layout_find(layout, "orders", 1);
	assert_non_null(p);
	assert_int_equal(p->from_offset, 500);
	assert_int_equal(p->to_offset, 600);
	assert_int_equal(p->run_count, 0);
	assert_int_equal(p->target_lo, 42);
	assert_int_equal(p->target_hi, 42);

	assert_null(kt_replay_layout_find(layout, "orders", 2));
	assert_null(kt_replay_layout_find(layout, "users", 0));
	kt_replay_layout_destroy(layout);
}

static void test_layout_latest_is_the_newest_complete_restore(void **state)
{
	struct fixture *f = *state;
	struct kt_replay_layout *layout = NULL;
	char errstr[512], newer[160];

	write_record(f, KT_REPLAY_PART_PRESERVE, KT_REPLAY_CKPT_COMPLETE);
	/* A newer restore that never finished is not "latest". */
	snprintf(newer, sizeof(newer), "%s/restores/20261122T031500123Z-00000001", f->dir);
	assert_int_equal(kt_mkdir_p(newer, 0700), 0);
	write_text(newer, "checkpoint.json",
		   "{\"format\":\"ktape-restore-checkpoint\",\"version\":1,\"id\":\"20261122T031500123Z-00000001\","
		   "\"updated_ms\":0,\"state\":\"interrupted\",\"runs\":1,\"error\":null,\"partitions\":[]}");
	assert_int_equal(kt_replay_layout_load(&layout, f->dir, NULL, "latest", errstr, sizeof(errstr)), 0);
	assert_string_equal(layout->restore_id, RID);
	kt_replay_layout_destroy(layout);
	/* --state-dir: the record is elsewhere. */
	assert_int_equal(kt_replay_layout_load(&layout, "/nonexistent", f->dir, NULL, errstr, sizeof(errstr)),
			 KT_ENOTFOUND);
	assert_null(layout);
}

static void test_layout_refuses_an_unfinished_restore(void **state)
{
	struct fixture *f = *state;
	struct kt_replay_layout *layout = NULL;
	char errstr[512];

	write_record(f, KT_REPLAY_PART_PRESERVE, KT_REPLAY_CKPT_INTERRUPTED);
	assert_int_equal(kt_replay_layout_load(&layout, f->dir, NULL, RID, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_null(layout);
	assert_non_null(strstr(errstr, "is not complete (interrupted)"));
	assert_non_null(strstr(errstr, "--resume " RID));
}

static void test_layout_refuses_key_partitioning(void **state)
{
	struct fixture *f = *state;
	struct kt_replay_layout *layout = NULL;
	char errstr[512];

	write_record(f, KT_REPLAY_PART_KEY, KT_REPLAY_CKPT_COMPLETE);
	assert_int_equal(kt_replay_layout_load(&layout, f->dir, NULL, RID, errstr, sizeof(errstr)), KT_EUNSUPPORTED);
	assert_non_null(strstr(errstr, "used key partitioning"));
}

static void test_layout_refuses_ids_that_leave_the_directory(void **state)
{
	struct fixture *f = *state;
	struct kt_replay_layout *layout = NULL;
	char errstr[512];

	assert_int_equal(kt_replay_layout_load(&layout, f->dir, NULL, "../x", errstr, sizeof(errstr)), KT_EUSAGE);
	assert_int_equal(kt_replay_layout_load(&layout, f->dir, NULL, "..", errstr, sizeof(errstr)), KT_EUSAGE);
	assert_int_equal(kt_replay_layout_load(&layout, f->dir, NULL, "20200101T000000000Z-00000000", errstr,
					       sizeof(errstr)), KT_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layout_maps_each_source_partition_to_its_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_latest_is_the_newest_complete_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_refuses_an_unfinished_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_refuses_key_partitioning, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_refuses_ids_that_leave_the_directory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
