/*
 * The token bucket behind --max-rate and --max-bytes-rate, driven by the
 * manual clock: every test runs minutes of simulated time in microseconds of
 * real time and never sleeps.
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

#define NS_PER_S 1000000000LL

struct fixture {
	struct kt_replay_manual_time manual;
	struct kt_replay_clock clock;
	struct kt_replay_bucket *bucket;
};

static struct fixture *fixture_new(double rate, double burst)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	/* Start away from zero so that nothing depends on time 0. */
	fx->manual.now_ns = 12345 * NS_PER_S;
	kt_replay_clock_manual(&fx->clock, &fx->manual);
	assert_int_equal(kt_replay_bucket_create(&fx->bucket, rate, burst, &fx->clock), 0);
	return fx;
}

static void fixture_free(struct fixture *fx)
{
	kt_replay_bucket_destroy(fx->bucket);
	free(fx);
}

/* 1000 records/s for 60 simulated seconds: every whole second after the first
 * grants 1000 records to within 1%, and the total time is right. */
static void test_bucket_holds_record_rate_each_second(void **state)
{
	const double rate = 1000.0;
	struct fixture *fx = fixture_new(rate, 0);
	int64_t start = fx->manual.now_ns;
	long per_second[61] = { 0 };

	(void)state;
	for (int i = 0; i < 60000; i++) {
		kt_replay_bucket_take(fx->bucket, 1);
		int64_t sec = (fx->manual.now_ns - start) / NS_PER_S;
		if (sec < 61)
			per_second[sec]++;
	}
	/* The first second also spends the initial burst. */
	for (int s = 1; s < 59; s++)
		if (fabs((double)per_second[s] - rate) > rate * 0.01)
			fail_msg("second %d granted %ld records, want %.0f +-1%%", s, per_second[s], rate);
	double elapsed_s = (double)(fx->manual.now_ns - start) / NS_PER_S;
	double want_s = (60000 - kt_replay_bucket_default_burst(rate)) / rate;
	assert_true(fabs(elapsed_s - want_s) <= want_s * 0.01);
	fixture_free(fx);
}

/* A fractional rate (7.5/s) is honoured too: 750 records take ~100 s. */
static void test_bucket_holds_fractional_rate(void **state)
{
	struct fixture *fx = fixture_new(7.5, 1);
	int64_t start = fx->manual.now_ns;

	(void)state;
	for (int i = 0; i < 751; i++)
		kt_replay_bucket_take(fx->bucket, 1);
	double elapsed_s = (double)(fx->manual.now_ns - start) / NS_PER_S;
	assert_true(fabs(elapsed_s - 100.0) <= 1.0);
	fixture_free(fx);
}

/* After a long idle period only `burst` tokens are banked: that many go out
 * at once, the next one waits. */
static void test_bucket_banks_at_most_burst_when_idle(void **state)
{
	struct fixture *fx = fixture_new(100.0, 25.0);

	(void)state;
	fx->manual.now_ns += 3600 * NS_PER_S;
	for (int i = 0; i < 25; i++)
		kt_replay_bucket_take(fx->bucket, 1);
	assert_int_equal(fx->manual.sleeps, 0);
	kt_replay_bucket_take(fx->bucket, 1);
	assert_int_equal(fx->manual.sleeps, 1);
	/* The 26th token is one token's time (10 ms) away. */
	assert_true(llabs(fx->manual.slept_ns - NS_PER_S / 100) <= 1);
	fixture_free(fx);
}

/* Smoothness: over every window of length W the bucket grants at most
 * burst + rate * W, and it never waits more than one record's worth at a
 * time: it never sends a second's worth and then idles. */
static void test_bucket_never_exceeds_burst_in_any_window(void **state)
{
	const double rate = 5000.0, burst = 50.0;
	const int n = 50000;
	struct fixture *fx = fixture_new(rate, burst);
	int64_t *sent_at = calloc((size_t)n, sizeof(*sent_at));

	(void)state;
	assert_non_null(sent_at);
	for (int i = 0; i < n; i++) {
		/* A sender that sometimes stalls, so tokens bank up. */
		if (i % 997 == 0)
			fx->manual.now_ns += NS_PER_S / 3;
		kt_replay_bucket_take(fx->bucket, 1);
		sent_at[i] = fx->manual.now_ns;
	}
	static const int64_t windows_ns[] = { 0, NS_PER_S / 1000, NS_PER_S / 100, NS_PER_S / 10,
					      NS_PER_S };
	for (size_t w = 0; w < sizeof(windows_ns) / sizeof(windows_ns[0]); w++) {
		double allowed = burst + rate * (double)windows_ns[w] / NS_PER_S + 1e-6;
		int lo = 0;
		for (int hi = 0; hi < n; hi++) {
			while (sent_at[hi] - sent_at[lo] > windows_ns[w])
				lo++;
			if ((double)(hi - lo + 1) > allowed)
				fail_msg("%d records within %lld ns, at most %.1f allowed",
					 hi - lo + 1, (long long)windows_ns[w], allowed);
		}
	}
	assert_true(fx->manual.longest_sleep_ns <= NS_PER_S / 5000 + 1);
	free(sent_at);
	fixture_free(fx);
}

/* Byte rate with records far larger than the burst (1 MiB/s, 256 KiB
 * records, burst 64 KiB): each record is allowed and waits off its debt, and
 * 100 MiB take 100 s to within 1%. */
static void test_bucket_byte_rate_with_records_larger_than_burst(void **state)
{
	const double rate = 1048576.0, record = 262144.0;
	struct fixture *fx = fixture_new(rate, 65536.0);
	int64_t start = fx->manual.now_ns;

	(void)state;
	for (int i = 0; i < 400; i++) {
		int64_t before = fx->manual.now_ns;
		kt_replay_bucket_take(fx->bucket, record);
		/* No single wait is longer than the record's own time. */
		assert_true(fx->manual.now_ns - before <= (int64_t)(record / rate * NS_PER_S) + 1);
	}
	double elapsed_s = (double)(fx->manual.now_ns - start) / NS_PER_S;
	double want_s = (400 * record - 65536.0) / rate;
	assert_true(fabs(elapsed_s - want_s) <= want_s * 0.01);
	fixture_free(fx);
}

/* Byte rate with many small, uneven records: the long-run byte rate is kept
 * within 1% although no two takes are the same size. */
static void test_bucket_byte_rate_with_uneven_small_records(void **state)
{
	const double rate = 2e6;
	struct fixture *fx = fixture_new(rate, 0);
	int64_t start = fx->manual.now_ns;
	double total = 0;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		double bytes = 50 + (i * 7919) % 1900;
		kt_replay_bucket_take(fx->bucket, bytes);
		total += bytes;
	}
	double elapsed_s = (double)(fx->manual.now_ns - start) / NS_PER_S;
	double achieved = total / elapsed_s;
	assert_true(fabs(achieved - rate) <= rate * 0.01);
	fixture_free(fx);
}

/* A sender slower than the limit is never slowed further. */
static void test_bucket_does_not_slow_a_slower_sender(void **state)
{
	struct fixture *fx = fixture_new(1000.0, 0);

	(void)state;
	for (int i = 0; i < 5000; i++) {
		fx->manual.now_ns += 2 * NS_PER_S / 1000; /* 500 records/s of work */
		kt_replay_bucket_take(fx->bucket, 1);
	}
	assert_int_equal(fx->manual.sleeps, 0);
	fixture_free(fx);
}

static void test_bucket_rejects_bad_rates(void **state)
{
	struct kt_replay_manual_time manual = { 0 };
	struct kt_replay_clock clock;
	struct kt_replay_bucket *bucket = (void *)1;

	(void)state;
	kt_replay_clock_manual(&clock, &manual);
	assert_int_equal(kt_replay_bucket_create(&bucket, 0, 1, &clock), KT_EUSAGE);
	assert_null(bucket);
	assert_int_equal(kt_replay_bucket_create(&bucket, -5, 1, &clock), KT_EUSAGE);
	assert_int_equal(kt_replay_bucket_create(&bucket, NAN, 1, &clock), KT_EUSAGE);
	assert_int_equal(kt_replay_bucket_create(&bucket, INFINITY, 1, &clock), KT_EUSAGE);
	kt_replay_bucket_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_holds_record_rate_each_second),
		cmocka_unit_test(test_bucket_holds_fractional_rate),
		cmocka_unit_test(test_bucket_banks_at_most_burst_when_idle),
		cmocka_unit_test(test_bucket_never_exceeds_burst_in_any_window),
		cmocka_unit_test(test_bucket_byte_rate_with_records_larger_than_burst),
		cmocka_unit_test(test_bucket_byte_rate_with_uneven_small_records),
		cmocka_unit_test(test_bucket_does_not_slow_a_slower_sender),
		cmocka_unit_test(test_bucket_rejects_bad_rates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
