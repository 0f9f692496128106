/* Unit tests of src/common: time, size and duration parsing, secrets,
 * atomic file writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kt_common.h"

static void test_parse_time_accepts_epoch_ms(void **state)
{
	int64_t ms;

	(void)state;
	assert_int_equal(kt_parse_time_ms("1700000000123", &ms), 0);
	assert_int_equal(ms, 1700000000123LL);
	assert_int_equal(kt_parse_time_ms("0", &ms), 0);
	assert_int_equal(ms, 0);
}

static void test_parse_time_accepts_iso8601_forms(void **state)
{
	int64_t ms;

	(void)state;
	assert_int_equal(kt_parse_time_ms("1970-01-01T00:00:00Z", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(kt_parse_time_ms("2023-11-14T22:13:20.123Z", &ms), 0);
	assert_int_equal(ms, 1700000000123LL);
	/* An offset east of UTC means an earlier instant. */
	assert_int_equal(kt_parse_time_ms("2023-11-14T23:13:20.123+01:00", &ms), 0);
	assert_int_equal(ms, 1700000000123LL);
	assert_int_equal(kt_parse_time_ms("2000-03-01", &ms), 0);
	assert_int_equal(ms, 951868800000LL);
	assert_int_equal(kt_parse_time_ms("2024-02-29T12:00:00Z", &ms), 0);
	assert_int_equal(ms, 1709208000000LL);
}

static void test_parse_time_rejects_garbage(void **state)
{
	int64_t ms;
	static const char *const bad[] = {
		"", "yesterday", "12ab", "2023-13-01", "2023-11-14T25:00:00Z",
		"2023-11-14T22:13:20Zjunk", "2023-11-14T22", "1e9",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(kt_parse_time_ms(bad[i], &ms), KT_EUSAGE);
}

static void test_format_time_round_trips(void **state)
{
	char buf[40];
	int64_t ms;

	(void)state;
	kt_format_time_ms(1700000000123LL, buf, sizeof(buf));
	assert_string_equal(buf, "2023-11-14T22:13:20.123Z");
	assert_int_equal(kt_parse_time_ms(buf, &ms), 0);
	assert_int_equal(ms, 1700000000123LL);
}

static void test_parse_size_and_duration(void **state)
{
	uint64_t b;
	int64_t ms;

	(void)state;
	assert_int_equal(kt_parse_size("10", &b), 0);
	assert_int_equal(b, 10);
	assert_int_equal(kt_parse_size("4K", &b), 0);
	assert_int_equal(b, 4096);
	assert_int_equal(kt_parse_size("2MiB", &b), 0);
	assert_int_equal(b, 2u << 20);
	assert_int_equal(kt_parse_size("1G", &b), 0);
	assert_int_equal(b, 1u << 30);
	assert_int_equal(kt_parse_size("5X", &b), KT_EUSAGE);
	assert_int_equal(kt_parse_size("-5", &b), KT_EUSAGE);
	assert_int_equal(kt_parse_duration_ms("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(kt_parse_duration_ms("1.5s", &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(kt_parse_duration_ms("2m", &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(kt_parse_duration_ms("3", &ms), 0);
	assert_int_equal(ms, 3000);
	assert_int_equal(kt_parse_duration_ms("3 days", &ms), KT_EUSAGE);
	assert_int_equal(kt_parse_duration_ms("0x10", &ms), KT_EUSAGE);
	assert_int_equal(kt_parse_duration_ms("0x10ms", &ms), KT_EUSAGE);
}

static void test_parse_integers_refuse_signs_blanks_and_overflow(void **state)
{
	int64_t i = 7;
	uint64_t u = 7;

	(void)state;
	assert_int_equal(kt_parse_i64("-42", -100, 100, &i), 0);
	assert_int_equal(i, -42);
	assert_int_equal(kt_parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &i), 0);
	assert_int_equal(i, INT64_MAX);
	assert_int_equal(kt_parse_i64("9223372036854775808", INT64_MIN, INT64_MAX, &i), KT_EUSAGE);
	assert_int_equal(kt_parse_i64("101", -100, 100, &i), KT_EUSAGE);
	assert_int_equal(kt_parse_i64(" 5", 0, 100, &i), KT_EUSAGE);
	assert_int_equal(kt_parse_i64("5x", 0, 100, &i), KT_EUSAGE);
	assert_int_equal(kt_parse_i64("", 0, 100, &i), KT_EUSAGE);
	assert_int_equal(kt_parse_i64("+5", 0, 100, &i), KT_EUSAGE);
	assert_int_equal(i, INT64_MAX); /* untouched by the failures */
	assert_int_equal(kt_parse_u64("18446744073709551615", UINT64_MAX, &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(kt_parse_u64("-1", UINT64_MAX, &u), KT_EUSAGE);
	assert_int_equal(kt_parse_u64("10", 9, &u), KT_EUSAGE);
	assert_int_equal(kt_parse_u64("0", 9, &u), 0);
	assert_int_equal(u, 0);
}

static void test_parse_double_takes_plain_decimals_only(void **state)
{
	double d = -1;

	(void)state;
	assert_int_equal(kt_parse_double("10", &d), 0);
	assert_true(d == 10.0);
	assert_int_equal(kt_parse_double("0.5", &d), 0);
	assert_true(d == 0.5);
	assert_int_equal(kt_parse_double(".25", &d), 0);
	assert_true(d == 0.25);
	assert_int_equal(kt_parse_double("2e3", &d), 0);
	assert_true(d == 2000.0);
	assert_int_equal(kt_parse_double("-1.5", &d), 0);
	assert_true(d == -1.5);
	d = 7;
	assert_int_equal(kt_parse_double("", &d), KT_EUSAGE);
	assert_int_equal(kt_parse_double(" 1", &d), KT_EUSAGE);
	assert_int_equal(kt_parse_double("1x", &d), KT_EUSAGE);
	assert_int_equal(kt_parse_double("0x10", &d), KT_EUSAGE);
	assert_int_equal(kt_parse_double("inf", &d), KT_EUSAGE);
	assert_int_equal(kt_parse_double("nan", &d), KT_EUSAGE);
	assert_int_equal(kt_parse_double("1e999", &d), KT_EUSAGE);
	assert_int_equal(kt_parse_double("+1", &d), KT_EUSAGE);
	assert_int_equal(kt_parse_double(NULL, &d), KT_EUSAGE);
	assert_true(d == 7.0); /* untouched by every refusal */
}

static void test_secret_names_are_recognised(void **state)
{
	(void)state;
	assert_true(kt_config_is_secret("sasl.password"));
	assert_true(kt_config_is_secret("ssl.key.password"));
	assert_true(kt_config_is_secret("ssl.keystore.password"));
	assert_true(kt_config_is_secret("ssl.key.pem"));
	assert_true(kt_config_is_secret("sasl.oauthbearer.client.secret"));
	assert_false(kt_config_is_secret("bootstrap.servers"));
	assert_false(kt_config_is_secret("fetch.wait.max.ms"));
}

static void test_atomic_write_replaces_whole_file(void **state)
{
	char dir[] = "/tmp/kt_common_XXXXXX";
	char path[256], buf[64];
	char err[256];
	struct stat st;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a/b/file.txt", dir);
	snprintf(buf, sizeof(buf), "%s/a/b", dir);
	assert_int_equal(kt_mkdir_p(buf, 0700), 0);
	assert_int_equal(kt_write_file_atomic(path, "first", 5, 0600, err, sizeof(err)), 0);
	assert_int_equal(kt_write_file_atomic(path, "second", 6, 0600, err, sizeof(err)), 0);
	f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_int_equal(n, 6);
	assert_memory_equal(buf, "second", 6);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* A directory that does not exist is an error naming the temp file. */
	snprintf(path, sizeof(path), "%s/missing/file.txt", dir);
	assert_true(kt_write_file_atomic(path, "x", 1, 0600, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "missing"));
	snprintf(buf, sizeof(buf), "rm -rf '%s'", dir);
	assert_int_equal(system(buf), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_time_accepts_epoch_ms),
		cmocka_unit_test(test_parse_time_accepts_iso8601_forms),
		cmocka_unit_test(test_parse_time_rejects_garbage),
		cmocka_unit_test(test_format_time_round_trips),
		cmocka_unit_test(test_parse_size_and_duration),
		cmocka_unit_test(test_parse_integers_refuse_signs_blanks_and_overflow),
		cmocka_unit_test(test_parse_double_takes_plain_decimals_only),
		cmocka_unit_test(test_secret_names_are_recognised),
		cmocka_unit_test(test_atomic_write_replaces_whole_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
