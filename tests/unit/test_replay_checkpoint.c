/* Unit tests of a restore's plan and checkpoint files (format/restore.md
 * sections 2 and 3) and of the reconciliation arithmetic of a rerun. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_priv.h"
#include "kt_common.h"
#include "kt_replay.h"

static struct kt_replay_plan *sample_plan(void)
{
	struct kt_replay_plan *plan = kt_replay_plan_create("127.0.0.1:9092");
	struct kt_replay_plan_topic *t;

	assert_non_null(plan);
	snprintf(plan->id, sizeof(plan->id), "20261122T021500123Z-4be1a9c0");
	snprintf(plan->snapshot, sizeof(plan->snapshot), "20261122T013214123Z-9f3a0c1e");
	plan->created_ms = 1795312500123LL;
	snprintf(plan->target_cluster, sizeof(plan->target_cluster), "mock-cluster-1");
	plan->partitioning = KT_REPLAY_PART_KEY;
	plan->order = KT_REPLAY_ORDER_ROUND_ROBIN;
	plan->from_time = 1700000000000LL;
	t = kt_replay_plan_add_topic(plan, "orders", "dr.orders", 6);
	assert_non_null(t);
	assert_int_equal(kt_replay_plan_add_part(t, 0, KT_REPLAY_NO_BOUND_LO, KT_REPLAY_NO_BOUND_HI), 0);
	assert_int_equal(kt_replay_plan_add_part(t, 1, 100, 200), 0);
	for (int32_t p = 0; p < 6; p++)
		assert_int_equal(kt_replay_plan_add_base(t, p, 1000 * p), 0);
	t = kt_replay_plan_add_topic(plan, "users", "dr.users", 1);
	assert_non_null(t);
	assert_int_equal(kt_replay_plan_add_part(t, 0, 5, KT_REPLAY_NO_BOUND_HI), 0);
	assert_int_equal(kt_replay_plan_add_base(t, 0, 0), 0);
	kt_replay_plan_fingerprint(plan);
	return plan;
}

static void test_plan_round_trips_through_json(void **state)
{
	struct kt_replay_plan *plan = sample_plan(), *back = NULL;
	char errstr[256], *json = NULL;
	int64_t base;

	(void)state;
	assert_int_equal(strlen(plan->fingerprint), 16);
	assert_int_equal(kt_replay_plan_to_json(plan, &json, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_replay_plan_from_json(json, strlen(json), "plan.json", &back, errstr,
						  sizeof(errstr)), 0);
	assert_string_equal(back->id, plan->id);
	assert_string_equal(back->snapshot, plan->snapshot);
	assert_string_equal(back->target, plan->target);
	assert_string_equal(back->fingerprint, plan->fingerprint);
	assert_string_equal(back->target_cluster, "mock-cluster-1");
	assert_int_equal(back->partitioning, KT_REPLAY_PART_KEY);
	assert_int_equal(back->from_time, 1700000000000LL);
	assert_int_equal(back->to_time, KT_REPLAY_NO_BOUND_HI);
	assert_int_equal(back->topic_count, 2);
	assert_int_equal(back->topics[0].target_partitions, 6);
	assert_int_equal(back->topics[0].parts[0].from_offset, KT_REPLAY_NO_BOUND_LO);
	assert_int_equal(back->topics[0].parts[1].from_offset, 100);
	assert_int_equal(back->topics[0].parts[1].to_offset, 200);
	assert_int_equal(kt_replay_plan_find_base(&back->topics[0], 4, &base), 0);
	assert_int_equal(base, 4000);
	assert_int_equal(kt_replay_plan_find_base(&back->topics[1], 4, &base), KT_ENOTFOUND);
	/* The fingerprint is a function of the plan: recomputing it on the
	 * parsed copy gives the same value. */
	kt_replay_plan_fingerprint(back);
	assert_string_equal(back->fingerprint, plan->fingerprint);
	free(json);
	kt_replay_plan_destroy(back);
	kt_replay_plan_destroy(plan);
}

static void test_plan_fingerprint_changes_with_the_window(void **state)
{
	struct kt_replay_plan *a = sample_plan(), *b = sample_plan();

	(void)state;
	assert_string_equal(a->fingerprint, b->fingerprint);
	b->topics[0].parts[1].to_offset = 201;
	kt_replay_plan_fingerprint(b);
	assert_string_not_equal(a->fingerprint, b->fingerprint);
	kt_replay_plan_destroy(a);
	kt_replay_plan_destroy(b);
}

static void test_plan_rejects_wrong_format_and_future_version(void **state)
{
	struct kt_replay_plan *back = NULL;
	char errstr[256];
	const char *wrong = "{\"format\":\"ktape-snapshot\",\"version\":1}";
	const char *future = "{\"format\":\"ktape-restore-plan\",\"version\":2}";
	const char *missing = "{\"format\":\"ktape-restore-plan\",\"version\":1,\"id\":\"x\"}";

	(void)state;
	assert_int_equal(kt_replay_plan_from_json("[1]", 3, "p", &back, errstr, sizeof(errstr)),
			 KT_ECORRUPT);
	assert_int_equal(kt_replay_plan_from_json("{", 1, "p", &back, errstr, sizeof(errstr)),
			 KT_ECORRUPT);
	assert_int_equal(kt_replay_plan_from_json(wrong, strlen(wrong), "p", &back, errstr,
						  sizeof(errstr)), KT_EMAGIC);
	assert_int_equal(kt_replay_plan_from_json(future, strlen(future), "p", &back, errstr,
						  sizeof(errstr)), KT_EVERSION);
	assert_int_equal(kt_replay_plan_from_json(missing, strlen(missing), "p", &back, errstr,
						  sizeof(errstr)), KT_ECORRUPT);
	assert_null(back);
}

static void test_plan_target_identity_ignores_how_brokers_are_spelled(void **state)
{
	struct kt_replay_plan *a = kt_replay_plan_create("b:9092, a:9092"), *b = kt_replay_plan_create("a:9092,b:9092");
	char wa[256], wb[256];

	(void)state;
	kt_replay_plan_target_identity(a, wa, sizeof(wa));
	kt_replay_plan_target_identity(b, wb, sizeof(wb));
	assert_string_equal(wa, "brokers:a:9092,b:9092");
	assert_string_equal(wa, wb);
	kt_replay_plan_fingerprint(a);
	kt_replay_plan_fingerprint(b);
	assert_string_equal(a->fingerprint, b->fingerprint);
	/* A known cluster id names the target whatever the address. */
	snprintf(a->target_cluster, sizeof(a->target_cluster), "abc");
	kt_replay_plan_target_identity(a, wa, sizeof(wa));
	assert_string_equal(wa, "cluster:abc");
	kt_replay_plan_destroy(a);
	kt_replay_plan_destroy(b);
}

static void test_checkpoint_round_trips_through_json(void **state)
{
	struct kt_replay_checkpoint *ckpt = kt_replay_checkpoint_create("r1"), *back = NULL;
	char errstr[256], *json = NULL;

	(void)state;
	ckpt->state = KT_REPLAY_CKPT_FAILED;
	ckpt->runs = 3;
	ckpt->updated_ms = 42;
	assert_int_equal(kt_replay_checkpoint_set_error(ckpt, "delivery failed"), 0);
	assert_int_equal(kt_replay_checkpoint_set(ckpt, "dr.orders", 0, 10), 0);
	assert_int_equal(kt_replay_checkpoint_set(ckpt, "dr.orders", 1, 20), 0);
	assert_int_equal(kt_replay_checkpoint_set(ckpt, "dr.orders", 0, 15), 0);
	assert_int_equal(ckpt->part_count, 2);
	assert_int_equal(kt_replay_checkpoint_to_json(ckpt, &json, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_replay_checkpoint_from_json(json, strlen(json), "c", &back, errstr,
							sizeof(errstr)), 0);
	assert_string_equal(back->id, "r1");
	assert_int_equal(back->state, KT_REPLAY_CKPT_FAILED);
	assert_int_equal(back->runs, 3);
	assert_string_equal(back->error, "delivery failed");
	assert_int_equal(kt_replay_checkpoint_acked(back, "dr.orders", 0), 15);
	assert_int_equal(kt_replay_checkpoint_acked(back, "dr.orders", 1), 20);
	assert_int_equal(kt_replay_checkpoint_acked(back, "dr.orders", 2), 0);
	assert_int_equal(kt_replay_checkpoint_acked(NULL, "dr.orders", 0), 0);
	free(json);
	kt_replay_checkpoint_destroy(back);
	kt_replay_checkpoint_destroy(ckpt);
}

static void test_reconcile_skips_what_the_target_already_holds(void **state)
{
	char errstr[256];
	uint64_t skip = 99;

	(void)state;
	/* Nothing sent yet. */
	assert_int_equal(kt_replay_reconcile("t", 0, 100, 100, 0, &skip, errstr, sizeof(errstr)), 0);
	assert_int_equal(skip, 0);
	/* Killed after 70 landed, 50 of them acknowledged in the checkpoint:
	 * the target is ahead of the checkpoint, and the target wins. */
	assert_int_equal(kt_replay_reconcile("t", 0, 100, 170, 50, &skip, errstr, sizeof(errstr)), 0);
	assert_int_equal(skip, 70);
}

static void test_reconcile_refuses_a_target_that_lost_records(void **state)
{
	char errstr[256];
	uint64_t skip = 0;

	(void)state;
	/* A recreated topic: end below what was acknowledged. */
	assert_int_equal(kt_replay_reconcile("dr.orders", 3, 100, 120, 50, &skip, errstr,
					     sizeof(errstr)), KT_ECORRUPT);
	assert_non_null(strstr(errstr, "dr.orders[3]"));
	/* End below the base. */
	assert_int_equal(kt_replay_reconcile("dr.orders", 3, 100, 0, 0, &skip, errstr,
					     sizeof(errstr)), KT_ECORRUPT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_round_trips_through_json),
		cmocka_unit_test(test_plan_fingerprint_changes_with_the_window),
		cmocka_unit_test(test_plan_rejects_wrong_format_and_future_version),
		cmocka_unit_test(test_plan_target_identity_ignores_how_brokers_are_spelled),
		cmocka_unit_test(test_checkpoint_round_trips_through_json),
		cmocka_unit_test(test_reconcile_skips_what_the_target_already_holds),
		cmocka_unit_test(test_reconcile_refuses_a_target_that_lost_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
