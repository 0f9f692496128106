/* Unit tests of the capture planner and topic selection (src/capture):
 * where each partition's capture starts and ends, what counts as a
 * retention gap, and which topics a selection takes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "capture_priv.h"

static void prev_init(struct kt_store_partition *prev, int64_t start, int64_t end)
{
	memset(prev, 0, sizeof(*prev));
	prev->partition = 3;
	prev->start_offset = start;
	prev->end_offset = end;
	prev->complete = 1;
}

static void test_plan_first_capture_starts_at_log_start(void **state)
{
	struct cap_plan plan;

	(void)state;
	assert_int_equal(cap_plan_partition(NULL, 120, 500, &plan, NULL, 0), 0);
	assert_int_equal(plan.chain_start, 120);
	assert_int_equal(plan.fetch_from, 120);
	assert_int_equal(plan.end, 500);
	assert_int_equal(plan.gap_to - plan.gap_from, 0);
}

static void test_plan_empty_partition_has_nothing_to_fetch(void **state)
{
	struct cap_plan plan;

	(void)state;
	assert_int_equal(cap_plan_partition(NULL, 0, 0, &plan, NULL, 0), 0);
	assert_int_equal(plan.fetch_from, plan.end);
}

static void test_plan_incremental_continues_at_previous_end(void **state)
{
	struct kt_store_partition prev;
	struct cap_plan plan;

	(void)state;
	prev_init(&prev, 10, 400);
	assert_int_equal(cap_plan_partition(&prev, 50, 900, &plan, NULL, 0), 0);
	assert_int_equal(plan.chain_start, 10);
	assert_int_equal(plan.fetch_from, 400);
	assert_int_equal(plan.end, 900);
	assert_int_equal(plan.gap_to - plan.gap_from, 0);
}

static void test_plan_unchanged_partition_fetches_nothing(void **state)
{
	struct kt_store_partition prev;
	struct cap_plan plan;

	(void)state;
	prev_init(&prev, 0, 400);
	assert_int_equal(cap_plan_partition(&prev, 0, 400, &plan, NULL, 0), 0);
	assert_int_equal(plan.fetch_from, 400);
	assert_int_equal(plan.end, 400);
}

static void test_plan_records_retention_gap(void **state)
{
	struct kt_store_partition prev;
	struct cap_plan plan;

	(void)state;
	prev_init(&prev, 0, 400);
	assert_int_equal(cap_plan_partition(&prev, 650, 900, &plan, NULL, 0), 0);
	assert_int_equal(plan.gap_from, 400);
	assert_int_equal(plan.gap_to, 650);
	assert_int_equal(plan.fetch_from, 650);
	assert_int_equal(plan.chain_start, 0);
}

static void test_plan_log_start_at_previous_end_is_no_gap(void **state)
{
	struct kt_store_partition prev;
	struct cap_plan plan;

	(void)state;
	prev_init(&prev, 0, 400);
	assert_int_equal(cap_plan_partition(&prev, 400, 400, &plan, NULL, 0), 0);
	assert_int_equal(plan.gap_to - plan.gap_from, 0);
}

static void test_plan_refuses_offsets_going_backwards(void **state)
{
	struct kt_store_partition prev;
	struct cap_plan plan;
	char errstr[256] = "";

	(void)state;
	prev_init(&prev, 0, 400);
	assert_int_equal(cap_plan_partition(&prev, 0, 100, &plan, errstr, sizeof(errstr)), KT_ERANGE);
	assert_non_null(strstr(errstr, "400"));
	assert_non_null(strstr(errstr, "100"));
}

static void test_plan_refuses_log_start_above_high_watermark(void **state)
{
	struct cap_plan plan;

	(void)state;
	assert_int_equal(cap_plan_partition(NULL, 10, 5, &plan, NULL, 0), KT_EKAFKA);
}

static void test_select_names_and_regexes(void **state)
{
	const char *topics[] = { "orders", "^pay.*" };
	const char *excludes[] = { "payments-dlq" };
	struct cap_selector sel;

	(void)state;
	assert_int_equal(cap_selector_init(&sel, topics, 2, excludes, 1, NULL, 0), 0);
	assert_true(cap_selector_match(&sel, "orders"));
	assert_false(cap_selector_match(&sel, "orders2"));
	assert_true(cap_selector_match(&sel, "payments"));
	assert_false(cap_selector_match(&sel, "payments-dlq"));
	assert_false(cap_selector_match(&sel, "audit"));
	cap_selector_free(&sel);
}

static void test_select_internal_topics_only_by_name(void **state)
{
	const char *broad[] = { "^.*" };
	const char *named[] = { "^.*", "__consumer_offsets" };
	struct cap_selector sel;

	(void)state;
	assert_int_equal(cap_selector_init(&sel, broad, 1, NULL, 0, NULL, 0), 0);
	assert_true(cap_selector_match(&sel, "orders"));
	assert_false(cap_selector_match(&sel, "__consumer_offsets"));
	assert_false(cap_selector_match(&sel, "__transaction_state"));
	cap_selector_free(&sel);
	assert_int_equal(cap_selector_init(&sel, named, 2, NULL, 0, NULL, 0), 0);
	assert_true(cap_selector_match(&sel, "__consumer_offsets"));
	assert_false(cap_selector_match(&sel, "__transaction_state"));
	cap_selector_free(&sel);
}

static void test_select_reports_missing_named_topic(void **state)
{
	const char *topics[] = { "orders", "^x", "audit" };
	const char *present[] = { "orders", "xyz" };
	struct cap_selector sel;

	(void)state;
	assert_int_equal(cap_selector_init(&sel, topics, 3, NULL, 0, NULL, 0), 0);
	assert_string_equal(cap_selector_missing(&sel, present, 2), "audit");
	cap_selector_free(&sel);
}

static void test_select_rejects_bad_regex_and_empty_selection(void **state)
{
	const char *bad[] = { "^(unclosed" };
	struct cap_selector sel;
	char errstr[256] = "";

	(void)state;
	assert_int_equal(cap_selector_init(&sel, bad, 1, NULL, 0, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_non_null(strstr(errstr, "^(unclosed"));
	assert_int_equal(cap_selector_init(&sel, NULL, 0, NULL, 0, errstr, sizeof(errstr)), KT_EUSAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_first_capture_starts_at_log_start),
		cmocka_unit_test(test_plan_empty_partition_has_nothing_to_fetch),
		cmocka_unit_test(test_plan_incremental_continues_at_previous_end),
		cmocka_unit_test(test_plan_unchanged_partition_fetches_nothing),
		cmocka_unit_test(test_plan_records_retention_gap),
		cmocka_unit_test(test_plan_log_start_at_previous_end_is_no_gap),
		cmocka_unit_test(test_plan_refuses_offsets_going_backwards),
		cmocka_unit_test(test_plan_refuses_log_start_above_high_watermark),
		cmocka_unit_test(test_select_names_and_regexes),
		cmocka_unit_test(test_select_internal_topics_only_by_name),
		cmocka_unit_test(test_select_reports_missing_named_topic),
		cmocka_unit_test(test_select_rejects_bad_regex_and_empty_selection),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
