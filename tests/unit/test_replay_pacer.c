/*
 * The pacer behind --pace original, driven by the manual clock: records must
 * leave at their recorded offsets from the first record, divided by the
 * speed, on one timeline shared by all partitions, with long silences capped.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "kt_common.h"
#include "replay_units_priv.h"

#define NS_PER_MS 1000000LL
#define T0_MS 1700000000000LL /* a realistic epoch-ms base for CreateTime */

struct fixture {
	struct kt_replay_manual_time manual;
	struct kt_replay_clock clock;
	struct kt_replay_pacer *pacer;
	int64_t start_ns;
};

static struct fixture *fixture_new(double speed, int64_t max_gap_ms)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->manual.now_ns = 777 * NS_PER_MS;
	fx->start_ns = fx->manual.now_ns;
	kt_replay_clock_manual(&fx->clock, &fx->manual);
	assert_int_equal(kt_replay_pacer_create(&fx->pacer, speed, max_gap_ms, &fx->clock), 0);
	return fx;
}

static void fixture_free(struct fixture *fx)
{
	kt_replay_pacer_destroy(fx->pacer);
	free(fx);
}

/* Sends a record with timestamp ts and returns when it left, in ns after the
 * start of the test. */
static int64_t send_at(struct fixture *fx, int64_t ts_ms)
{
	kt_replay_pacer_wait(fx->pacer, ts_ms);
	return fx->manual.now_ns - fx->start_ns;
}

/* Offsets of the test timeline (ms after the first record). */
static const int64_t offsets_ms[] = { 0, 1, 100, 250, 1000, 1001, 60000 };
#define N_OFFSETS (sizeof(offsets_ms) / sizeof(offsets_ms[0]))

static void check_speed(double speed)
{
	struct fixture *fx = fixture_new(speed, 0);

	for (size_t i = 0; i < N_OFFSETS; i++) {
		int64_t want = (int64_t)((double)offsets_ms[i] * NS_PER_MS / speed);
		int64_t got = send_at(fx, T0_MS + offsets_ms[i]);
		if (llabs(got - want) > 1)
			fail_msg("speed %g: record at +%lld ms left at %lld ns, want %lld ns", speed,
				 (long long)offsets_ms[i], (long long)got, (long long)want);
	}
	fixture_free(fx);
}

static void test_pacer_speed_one_keeps_original_offsets(void **state)
{
	(void)state;
	check_speed(1.0);
}

static void test_pacer_speed_ten_is_ten_times_faster(void **state)
{
	(void)state;
	check_speed(10.0);
}

static void test_pacer_speed_half_is_twice_as_slow(void **state)
{
	(void)state;
	check_speed(0.5);
}

/* A record older than one already sent (another partition, a producer with
 * a slow clock) goes at once and does not move the timeline back. */
static void test_pacer_sends_out_of_order_timestamps_at_once(void **state)
{
	struct fixture *fx = fixture_new(1.0, 0);

	(void)state;
	assert_int_equal(send_at(fx, T0_MS), 0);
	assert_int_equal(send_at(fx, T0_MS + 1000), 1000 * NS_PER_MS);
	uint64_t sleeps = fx->manual.sleeps;
	assert_int_equal(send_at(fx, T0_MS + 500), 1000 * NS_PER_MS);
	assert_int_equal(send_at(fx, T0_MS - 5000), 1000 * NS_PER_MS);
	assert_int_equal(send_at(fx, T0_MS + 1000), 1000 * NS_PER_MS);
	assert_int_equal(fx->manual.sleeps, sleeps);
	/* The timeline is still anchored at the first record. */
	assert_int_equal(send_at(fx, T0_MS + 1500), 1500 * NS_PER_MS);
	fixture_free(fx);
}

/* An out-of-order record does not open a gap either: after 0, 1000 and a
 * late 500, the silence before 1600 is 600 ms (from 1000), not 1100 ms, so
 * an 800 ms cap removes nothing there. */
static void test_pacer_out_of_order_record_opens_no_gap(void **state)
{
	struct fixture *fx = fixture_new(1.0, 800);

	(void)state;
	assert_int_equal(send_at(fx, T0_MS), 0);
	assert_int_equal(send_at(fx, T0_MS + 1000), 800 * NS_PER_MS);
	assert_int_equal(send_at(fx, T0_MS + 500), 800 * NS_PER_MS);
	assert_int_equal(send_at(fx, T0_MS + 1600), 1400 * NS_PER_MS);
	fixture_free(fx);
}

/* With --max-gap 1000 ms a 10 s silence becomes 1 s; shorter gaps are kept,
 * and the cut carries over to every later record. */
static void test_pacer_caps_long_gaps(void **state)
{
	struct fixture *fx = fixture_new(1.0, 1000);

	(void)state;
	assert_int_equal(send_at(fx, T0_MS), 0);
	assert_int_equal(send_at(fx, T0_MS + 100), 100 * NS_PER_MS);
	assert_int_equal(send_at(fx, T0_MS + 10100), 1100 * NS_PER_MS);
	assert_int_equal(send_at(fx, T0_MS + 10200), 1200 * NS_PER_MS);
	assert_int_equal(send_at(fx, T0_MS + 11200), 2200 * NS_PER_MS); /* exactly max: kept */
	assert_int_equal(send_at(fx, T0_MS + 3611200), 3200 * NS_PER_MS); /* an hour: 1 s */
	fixture_free(fx);
}

/* The cap is in recorded time and the speed applies after it: at speed 10 a
 * capped 1 s silence lasts 100 ms. */
static void test_pacer_caps_gaps_before_applying_speed(void **state)
{
	struct fixture *fx = fixture_new(10.0, 1000);

	(void)state;
	assert_int_equal(send_at(fx, T0_MS), 0);
	assert_int_equal(send_at(fx, T0_MS + 500), 50 * NS_PER_MS);
	assert_int_equal(send_at(fx, T0_MS + 86400500), 150 * NS_PER_MS);
	fixture_free(fx);
}

/* Many partitions read in interleaved runs (as a consumer returns them), each
 * partition in timestamp order: every record leaves at the latest timestamp
 * seen so far on the one shared timeline, never earlier than recorded, and
 * the whole run lasts (last - first) / speed. */
static void test_pacer_interleaves_many_partitions_on_one_timeline(void **state)
{
	enum { PARTITIONS = 12, PER_PARTITION = 400, RUN = 7 };
	const double speed = 4.0;
	struct fixture *fx = fixture_new(speed, 0);
	int64_t next_ts[PARTITIONS];
	int sent[PARTITIONS] = { 0 };
	int64_t first = -1, high = -1, last_send = 0;
	uint32_t x = 2463534242u;

	(void)state;
	for (int p = 0; p < PARTITIONS; p++)
		next_ts[p] = T0_MS + p * 3;
	for (int done = 0, turn = 0; done < PARTITIONS * PER_PARTITION; turn++) {
		/* Runs of up to RUN records from partitions in a scrambled
		 * rotation, so partitions drift apart in time. */
		int p = (int)((unsigned)turn * 5u % PARTITIONS);
		for (int r = 0; r < RUN + (turn % 3) && sent[p] < PER_PARTITION; r++, done++) {
			int64_t ts = next_ts[p];
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			next_ts[p] += x % 40; /* 0-39 ms apart, ties included */
			sent[p]++;
			if (first < 0)
				first = ts;
			if (ts > high)
				high = ts;
			int64_t got = send_at(fx, ts);
			int64_t want = (int64_t)((double)(high - first) * NS_PER_MS / speed);
			if (llabs(got - want) > 1)
				fail_msg("partition %d ts +%lld left at %lld ns, want %lld", p,
					 (long long)(ts - first), (long long)got, (long long)want);
			assert_true(got >= last_send);
			last_send = got;
		}
	}
	assert_true(llabs(last_send - (int64_t)((double)(high - first) * NS_PER_MS / speed)) <= 1);
	fixture_free(fx);
}

/* A sender that falls behind sends what is overdue at once, and the timeline
 * is not re-anchored: the next record is still due at its original offset. */
static void test_pacer_catches_up_without_reanchoring(void **state)
{
	struct fixture *fx = fixture_new(1.0, 0);

	(void)state;
	assert_int_equal(send_at(fx, T0_MS), 0);
	fx->manual.now_ns += 150 * NS_PER_MS; /* slow broker */
	assert_int_equal(send_at(fx, T0_MS + 100), 150 * NS_PER_MS);
	assert_int_equal(send_at(fx, T0_MS + 200), 200 * NS_PER_MS);
	fixture_free(fx);
}

/* The system clock really waits: 300 ms of recorded time at speed 10 take
 * at least 30 ms of CLOCK_MONOTONIC (and not absurdly more). */
static void test_pacer_with_system_clock_really_waits(void **state)
{
	struct kt_replay_clock clock;
	struct kt_replay_pacer *pacer;

	(void)state;
	kt_replay_clock_system(&clock);
	assert_int_equal(kt_replay_pacer_create(&pacer, 10.0, 0, &clock), 0);
	int64_t start = clock.now_ns(clock.opaque);
	kt_replay_pacer_wait(pacer, T0_MS);
	kt_replay_pacer_wait(pacer, T0_MS + 300);
	int64_t elapsed = clock.now_ns(clock.opaque) - start;
	assert_true(elapsed >= 30 * NS_PER_MS);
	assert_true(elapsed < 2000 * NS_PER_MS);
	kt_replay_pacer_destroy(pacer);
}

static void test_pacer_rejects_bad_speeds(void **state)
{
	struct kt_replay_manual_time manual = { 0 };
	struct kt_replay_clock clock;
	struct kt_replay_pacer *pacer = (void *)1;

	(void)state;
	kt_replay_clock_manual(&clock, &manual);
	assert_int_equal(kt_replay_pacer_create(&pacer, 0, 0, &clock), KT_EUSAGE);
	assert_null(pacer);
	assert_int_equal(kt_replay_pacer_create(&pacer, -1, 0, &clock), KT_EUSAGE);
	assert_int_equal(kt_replay_pacer_create(&pacer, NAN, 0, &clock), KT_EUSAGE);
	assert_int_equal(kt_replay_pacer_create(&pacer, INFINITY, 0, &clock), KT_EUSAGE);
	kt_replay_pacer_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pacer_speed_one_keeps_original_offsets),
		cmocka_unit_test(test_pacer_speed_ten_is_ten_times_faster),
		cmocka_unit_test(test_pacer_speed_half_is_twice_as_slow),
		cmocka_unit_test(test_pacer_sends_out_of_order_timestamps_at_once),
		cmocka_unit_test(test_pacer_out_of_order_record_opens_no_gap),
		cmocka_unit_test(test_pacer_caps_long_gaps),
		cmocka_unit_test(test_pacer_caps_gaps_before_applying_speed),
		cmocka_unit_test(test_pacer_interleaves_many_partitions_on_one_timeline),
		cmocka_unit_test(test_pacer_catches_up_without_reanchoring),
		cmocka_unit_test(test_pacer_with_system_clock_really_waits),
		cmocka_unit_test(test_pacer_rejects_bad_speeds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
