/* Unit tests of the record generator: determinism from the seed, the
 * shapes and shares asked for, partitioning as librdkafka's default
 * partitioner does it, and option parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kt_sandbox.h"
#include "kt_store.h"

/* A digest of everything a record carries, order-sensitive (FNV-1a). */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

static uint64_t digest_all(const struct kt_gen_opts *opts, uint64_t *records)
{
	struct kt_gen *gen = NULL;
	struct kt_record rec;
	char errstr[256];
	int32_t partition;
	uint64_t h = 0xcbf29ce484222325ULL;

	assert_int_equal(kt_gen_create(&gen, opts, errstr, sizeof(errstr)), 0);
	*records = 0;
	while (kt_gen_next(gen, &rec, &partition) == 1) {
		int64_t meta[4] = { rec.timestamp, partition, rec.key ? (int64_t)rec.key_len : -1,
				    rec.value ? (int64_t)rec.value_len : -1 };
		h = fnv(h, meta, sizeof(meta));
		if (rec.key)
			h = fnv(h, rec.key, rec.key_len);
		if (rec.value)
			h = fnv(h, rec.value, rec.value_len);
		for (size_t i = 0; i < rec.header_count; i++) {
			int64_t vl = rec.headers[i].value ? (int64_t)rec.headers[i].value_len : -1;
			h = fnv(h, rec.headers[i].name, rec.headers[i].name_len);
			h = fnv(h, &vl, sizeof(vl));
			if (rec.headers[i].value)
				h = fnv(h, rec.headers[i].value, rec.headers[i].value_len);
		}
		(*records)++;
	}
	assert_int_equal(kt_gen_records_made(gen), *records);
	kt_gen_destroy(gen);
	return h;
}

static void rich_opts(struct kt_gen_opts *opts)
{
	kt_gen_opts_init(opts);
	opts->count = 2000;
	opts->partitions = 7;
	opts->null_key_share = 0.1;
	opts->tombstone_share = 0.1;
	opts->max_headers = 4;
	opts->null_header_share = 0.2;
	opts->dup_header_share = 0.3;
	opts->binary_share = 0.2;
	opts->compressibility = 50;
	opts->disorder_share = 0.1;
}

static void test_gen_same_seed_gives_same_records(void **state)
{
	struct kt_gen_opts opts;
	uint64_t n1, n2, n3;

	(void)state;
	rich_opts(&opts);
	opts.seed = 42;
	uint64_t a = digest_all(&opts, &n1);
	uint64_t b = digest_all(&opts, &n2);
	assert_int_equal(n1, 2000);
	assert_int_equal(n2, 2000);
	assert_true(a == b);
	opts.seed = 43;
	assert_true(digest_all(&opts, &n3) != a);
}

static void test_gen_makes_every_shape_in_the_shares_asked(void **state)
{
	struct kt_gen_opts opts;
	struct kt_gen *gen = NULL;
	struct kt_record rec;
	char errstr[256];
	int32_t partition;
	uint64_t n = 0, null_keys = 0, tombstones = 0, null_hv = 0, dup = 0, with_nul = 0,
		 out_of_order = 0, per_part[7] = { 0 };
	int64_t prev_ts = INT64_MIN, min_ts = INT64_MAX, max_ts = INT64_MIN;

	(void)state;
	rich_opts(&opts);
	opts.count = 10000;
	/* Text only, so that a NUL byte can only come from --binary. */
	opts.compressibility = 100;
	assert_int_equal(kt_gen_create(&gen, &opts, errstr, sizeof(errstr)), 0);
	while (kt_gen_next(gen, &rec, &partition) == 1) {
		n++;
		assert_true(partition >= 0 && partition < 7);
		per_part[partition]++;
		assert_int_equal(rec.offset, -1);
		assert_int_equal(rec.ts_type, KT_TS_CREATE);
		if (!rec.key)
			null_keys++;
		else
			assert_int_equal(partition, kt_gen_partition_for_key(rec.key, rec.key_len, 7));
		if (!rec.value) {
			tombstones++;
		} else {
			assert_true(rec.value_len >= 100 && rec.value_len <= 300);
			if (memchr(rec.value, '\0', rec.value_len))
				with_nul++;
		}
		assert_true(rec.header_count <= 4);
		for (size_t i = 0; i < rec.header_count; i++) {
			null_hv += rec.headers[i].value == NULL;
			if (i > 0 && rec.headers[i].name_len == rec.headers[i - 1].name_len &&
			    memcmp(rec.headers[i].name, rec.headers[i - 1].name, rec.headers[i].name_len) == 0)
				dup++;
		}
		if (rec.timestamp < prev_ts)
			out_of_order++;
		prev_ts = rec.timestamp;
		min_ts = rec.timestamp < min_ts ? rec.timestamp : min_ts;
		max_ts = rec.timestamp > max_ts ? rec.timestamp : max_ts;
	}
	kt_gen_destroy(gen);
	assert_int_equal(n, 10000);
	/* Shares within a wide margin of what was asked (10%, 10%, 20%...). */
	assert_in_range(null_keys, 800, 1200);
	assert_in_range(tombstones, 800, 1200);
	assert_true(null_hv > 0 && dup > 0);
	assert_in_range(with_nul, 1200, 2400);
	assert_in_range(out_of_order, 500, 1500);
	for (int p = 0; p < 7; p++)
		assert_true(per_part[p] > 0);
	/* The span is covered, and moved-back records stay near it. */
	assert_true(max_ts == KT_GEN_DEFAULT_TS_START + 3600 * 1000);
	assert_true(min_ts >= KT_GEN_DEFAULT_TS_START - 360 * 1000 - 1000);
}

static void test_gen_partition_for_key_matches_crc32(void **state)
{
	(void)state;
	/* CRC-32 (IEEE) of "123456789" is 0xCBF43926, the standard check
	 * value; librdkafka takes it modulo the partition count. */
	assert_int_equal(kt_gen_partition_for_key("123456789", 9, 1000), 0xCBF43926u % 1000);
	assert_int_equal(kt_gen_partition_for_key("123456789", 9, 7), 0xCBF43926u % 7);
	assert_int_equal(kt_gen_partition_for_key("", 0, 5), 0);
}

static void test_gen_stops_at_byte_budget(void **state)
{
	struct kt_gen_opts opts;
	struct kt_gen *gen = NULL;
	struct kt_record rec;
	char errstr[256];
	int32_t partition;
	uint64_t bytes = 0, n = 0;

	(void)state;
	kt_gen_opts_init(&opts);
	assert_int_equal(kt_gen_opts_set(&opts, "bytes", "64K", errstr, sizeof(errstr)), 0);
	opts.count = UINT64_MAX;
	assert_int_equal(kt_gen_opts_set(&opts, "size", "1000", errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_gen_create(&gen, &opts, errstr, sizeof(errstr)), 0);
	while (kt_gen_next(gen, &rec, &partition) == 1) {
		assert_int_equal(rec.value_len, 1000);
		bytes += rec.key_len + rec.value_len;
		n++;
	}
	kt_gen_destroy(gen);
	assert_true(bytes >= 65536 && bytes < 65536 + 1100);
	assert_in_range(n, 60, 66);
}

static void test_gen_explicit_and_round_robin_partitions(void **state)
{
	struct kt_gen_opts opts;
	struct kt_gen *gen = NULL;
	struct kt_record rec;
	char errstr[256];
	int32_t partition;
	uint64_t i = 0;

	(void)state;
	kt_gen_opts_init(&opts);
	opts.partitions = 4;
	opts.round_robin = 1;
	opts.count = 10;
	assert_int_equal(kt_gen_create(&gen, &opts, errstr, sizeof(errstr)), 0);
	while (kt_gen_next(gen, &rec, &partition) == 1)
		assert_int_equal(partition, (int32_t)(i++ % 4));
	kt_gen_destroy(gen);
	opts.round_robin = 0;
	opts.partition = 2;
	assert_int_equal(kt_gen_create(&gen, &opts, errstr, sizeof(errstr)), 0);
	while (kt_gen_next(gen, &rec, &partition) == 1)
		assert_int_equal(partition, 2);
	kt_gen_destroy(gen);
	opts.partition = 4;
	assert_int_equal(kt_gen_create(&gen, &opts, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_non_null(strstr(errstr, "partition 4"));
}

static void test_gen_random_values_are_incompressible_and_text_is_not(void **state)
{
	struct kt_gen_opts opts;
	struct kt_gen *gen = NULL;
	struct kt_record rec;
	char errstr[256];
	int32_t partition;
	size_t printable = 0, total = 0;

	(void)state;
	kt_gen_opts_init(&opts);
	opts.count = 50;
	opts.compressibility = 100;
	assert_int_equal(kt_gen_create(&gen, &opts, errstr, sizeof(errstr)), 0);
	while (kt_gen_next(gen, &rec, &partition) == 1) {
		const unsigned char *v = rec.value;
		assert_int_equal(v[0], '{');
		for (size_t i = 0; i < rec.value_len; i++)
			assert_true(v[i] >= 0x20 && v[i] < 0x7f);
	}
	kt_gen_destroy(gen);
	opts.compressibility = 0;
	assert_int_equal(kt_gen_create(&gen, &opts, errstr, sizeof(errstr)), 0);
	while (kt_gen_next(gen, &rec, &partition) == 1) {
		const unsigned char *v = rec.value;
		for (size_t i = 0; i < rec.value_len; i++)
			printable += v[i] >= 0x20 && v[i] < 0x7f;
		total += rec.value_len;
	}
	kt_gen_destroy(gen);
	/* Random bytes: about 95 in 256 are printable. */
	assert_true(printable < total / 2);
}

static void test_gen_log_sizes_favour_small_values_within_bounds(void **state)
{
	struct kt_gen_opts opts;
	struct kt_gen *gen = NULL;
	struct kt_record rec;
	char errstr[256];
	int32_t partition;
	uint64_t small = 0, large = 0, n = 0;

	(void)state;
	kt_gen_opts_init(&opts);
	opts.count = 4000;
	assert_int_equal(kt_gen_opts_set(&opts, "size", "10-100000", errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_gen_opts_set(&opts, "size-dist", "log", errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_gen_create(&gen, &opts, errstr, sizeof(errstr)), 0);
	while (kt_gen_next(gen, &rec, &partition) == 1) {
		assert_true(rec.value_len >= 10 && rec.value_len <= 100000);
		small += rec.value_len < 1000;
		large += rec.value_len >= 10000;
		n++;
	}
	kt_gen_destroy(gen);
	/* About 7 of the 14 bands lie below 1000 and 3.5 above 10000; a
	 * uniform draw would put 1% below 1000. */
	assert_in_range(small, n * 35 / 100, n * 65 / 100);
	assert_in_range(large, n * 15 / 100, n * 35 / 100);
	assert_int_equal(kt_gen_opts_set(&opts, "size-dist", "normal", errstr, sizeof(errstr)), KT_EUSAGE);
}

static void test_gen_opts_parse_flags_and_refuse_bad_values(void **state)
{
	static const char *const bad[][2] = {
		{ "count", "-1" }, { "count", "ten" }, { "bytes", "0" }, { "bytes", "x" },
		{ "size", "300-100" }, { "size", "1-99G" }, { "size", "" }, { "null-keys", "1.5" },
		{ "tombstones", "-0.1" }, { "binary", "150%" }, { "headers", "65" },
		{ "compressibility", "101" }, { "ts-start", "yesterday" }, { "ts-span", "-5s" },
		{ "partitions", "0" }, { "partition", "-2" }, { "seed", "" }, { "frobs", "1" },
		{ "binary", "0x0.8" }, { "binary", " 0.5" }, { "binary", "%" }, { "binary", "nan" },
		{ "binary", "50%%" },
	};
	struct kt_gen_opts opts;
	char errstr[256];
	double d;

	(void)state;
	kt_gen_opts_init(&opts);
	assert_int_equal(kt_gen_opts_set(&opts, "size", "10-2K", errstr, sizeof(errstr)), 0);
	assert_int_equal(opts.min_size, 10);
	assert_int_equal(opts.max_size, 2048);
	assert_int_equal(kt_gen_opts_set(&opts, "null-keys", "25%", errstr, sizeof(errstr)), 0);
	assert_true(opts.null_key_share > 0.2499 && opts.null_key_share < 0.2501);
	assert_int_equal(kt_gen_opts_set(&opts, "tombstones", "0.05", errstr, sizeof(errstr)), 0);
	assert_true(opts.tombstone_share > 0.0499 && opts.tombstone_share < 0.0501);
	assert_int_equal(kt_gen_opts_set(&opts, "ts-start", "2024-01-01T00:00:00Z", errstr, sizeof(errstr)), 0);
	assert_int_equal(opts.ts_start, 1704067200000LL);
	assert_int_equal(kt_gen_opts_set(&opts, "ts-span", "10m", errstr, sizeof(errstr)), 0);
	assert_int_equal(opts.ts_span_ms, 600000);
	assert_int_equal(kt_gen_opts_set(&opts, "seed", "18446744073709551615", errstr, sizeof(errstr)), 0);
	assert_true(opts.seed == UINT64_MAX);
	assert_int_equal(kt_gen_parse_share("1", &d), 0);
	assert_int_equal(kt_gen_parse_share("0%", &d), 0);
	assert_int_equal(kt_gen_parse_share("0.5x", &d), KT_EUSAGE);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errstr[0] = '\0';
		if (kt_gen_opts_set(&opts, bad[i][0], bad[i][1], errstr, sizeof(errstr)) != KT_EUSAGE)
			fail_msg("--%s '%s' was accepted", bad[i][0], bad[i][1]);
		assert_true(strlen(errstr) > 0);
	}
}

static void test_gen_parse_commit_reads_from_the_right(void **state)
{
	static const char *const bad[] = {
		"g:t:0", "g:t:x:5", "g:t:0:-1", ":t:0:5", "g:bad/topic:0:5", "nothing",
	};
	struct kt_gen_commit commit;
	char errstr[256];

	(void)state;
	assert_int_equal(kt_gen_parse_commit("outbox_publisher_group:outbox_events:1:42", &commit,
					     errstr, sizeof(errstr)), 0);
	assert_string_equal(commit.group, "outbox_publisher_group");
	assert_string_equal(commit.topic, "outbox_events");
	assert_int_equal(commit.partition, 1);
	assert_int_equal(commit.offset, 42);
	assert_int_equal(kt_gen_parse_commit("app:v2:orders:0:7", &commit, errstr, sizeof(errstr)), 0);
	assert_string_equal(commit.group, "app:v2");
	assert_string_equal(commit.topic, "orders");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (kt_gen_parse_commit(bad[i], &commit, errstr, sizeof(errstr)) != KT_EUSAGE)
			fail_msg("'%s' was accepted", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gen_same_seed_gives_same_records),
		cmocka_unit_test(test_gen_makes_every_shape_in_the_shares_asked),
		cmocka_unit_test(test_gen_partition_for_key_matches_crc32),
		cmocka_unit_test(test_gen_stops_at_byte_budget),
		cmocka_unit_test(test_gen_explicit_and_round_robin_partitions),
		cmocka_unit_test(test_gen_random_values_are_incompressible_and_text_is_not),
		cmocka_unit_test(test_gen_log_sizes_favour_small_values_within_bounds),
		cmocka_unit_test(test_gen_opts_parse_flags_and_refuse_bad_values),
		cmocka_unit_test(test_gen_parse_commit_reads_from_the_right),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
