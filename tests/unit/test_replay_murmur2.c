/*
 * Kafka's murmur2 partitioner must agree bit for bit with the Java client,
 * or `--partitioning key` puts keys where no Java producer would.  The
 * expected values below were produced by Java (or by implementations that
 * are themselves tested against Java), and each group names its source.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "replay_units_priv.h"

struct hash_case {
	const char *key;
	size_t len;
	int32_t java_hash; /* Java's signed int result of Utils.murmur2 */
};

/* Source: Apache Kafka, clients/src/test/java/org/apache/kafka/common/utils/
 * UtilsTest.java, testMurmur2() (assertEquals against Utils.murmur2). */
static const struct hash_case kafka_utils_test[] = {
	{ "21", 2, -973932308 },
	{ "foobar", 6, -790332482 },
	{ "a-little-bit-long-string", 24, -985981536 },
	{ "a-little-bit-longer-string", 26, -1486304829 },
	{ "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 48, -58897971 },
	{ "abc", 3, 479470107 },
};

/* Source: librdkafka, src/rdmurmur2.c, unittest_murmur2(), array
 * java_murmur2_results[] ("the same values Apache Kafka's Java client
 * produces").  These cover every tail length (0-3 trailing bytes). */
static const struct hash_case librdkafka_java_results[] = {
	{ "kafka", 5, (int32_t)0xd067cf64 },
	{ "giberish123456789", 17, (int32_t)0x8f552b0c },
	{ "1234", 4, (int32_t)0x9fc97b14 },
	{ "234", 3, (int32_t)0xe7c009ca },
	{ "34", 2, (int32_t)0x873930da },
	{ "4", 1, (int32_t)0x5a4b5ca1 },
	{ "PreAmbleWillBeRemoved,ThePrePartThatIs", 38, (int32_t)0x78424f1c },
	{ "reAmbleWillBeRemoved,ThePrePartThatIs", 37, (int32_t)0x4a62b377 },
	{ "eAmbleWillBeRemoved,ThePrePartThatIs", 36, (int32_t)0xe0e4e09e },
	{ "AmbleWillBeRemoved,ThePrePartThatIs", 35, (int32_t)0x62b8b43f },
	{ "", 0, (int32_t)0x106e08d9 },
};

static void check_hashes(const struct hash_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int32_t got = (int32_t)kt_replay_murmur2(cases[i].key, cases[i].len);
		if (got != cases[i].java_hash)
			fail_msg("murmur2(\"%s\") = %d, Java gives %d", cases[i].key, got,
				 cases[i].java_hash);
	}
}

static void test_murmur2_matches_kafka_utils_test(void **state)
{
	(void)state;
	check_hashes(kafka_utils_test, sizeof(kafka_utils_test) / sizeof(kafka_utils_test[0]));
}

static void test_murmur2_matches_librdkafka_java_results(void **state)
{
	(void)state;
	check_hashes(librdkafka_java_results,
		     sizeof(librdkafka_java_results) / sizeof(librdkafka_java_results[0]));
}

/* Reading the key must not depend on its alignment in memory: the same bytes
 * at every offset of a buffer hash the same. */
static void test_murmur2_ignores_key_alignment(void **state)
{
	static const char key[] = "PreAmbleWillBeRemoved,ThePrePartThatIs";
	char buf[64];

	(void)state;
	for (size_t shift = 0; shift < 8; shift++) {
		memcpy(buf + shift, key, sizeof(key) - 1);
		assert_int_equal(kt_replay_murmur2(buf + shift, sizeof(key) - 1), 0x78424f1cu);
	}
}

/* A NULL key of length 0 is the empty key, never a crash. */
static void test_murmur2_null_empty_key_is_empty_hash(void **state)
{
	(void)state;
	assert_int_equal(kt_replay_murmur2(NULL, 0), 0x106e08d9u);
}

/* Source: dpkp/kafka-python, test/test_partitioner.py,
 * test_murmur2_java_compatibility(): partitions out of 1000 "compare[d] with
 * output from Kafka's org.apache.kafka.clients.producer.Partitioner". */
static void test_partition_matches_java_placements(void **state)
{
	static const struct {
		const char *key;
		size_t len;
		int32_t partition;
	} cases[] = {
		{ "", 0, 681 },	 { "a", 1, 524 },	   { "ab", 2, 434 },
		{ "abc", 3, 107 }, { "123456789", 9, 566 }, { "\x00 ", 2, 742 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(kt_replay_partition_for_key(cases[i].key, cases[i].len, 1000),
				 cases[i].partition);
}

/* toPositive clears the sign bit; it is not abs().  "21" hashes to a negative
 * Java int (-973932308 = 0xc5f2f8ec), which toPositive turns into 0x45f2f8ec
 * = 1173551340, where abs() would give 973932308 and other partitions. */
static void test_partition_clears_sign_bit_not_abs(void **state)
{
	(void)state;
	assert_int_equal(kt_replay_partition_for_key("21", 2, 1000000007), 1173551340 % 1000000007);
	assert_int_equal(kt_replay_partition_for_key("21", 2, 30), 1173551340 % 30);
	assert_int_equal(kt_replay_partition_for_key("21", 2, 40), 1173551340 % 40);
	assert_int_not_equal(kt_replay_partition_for_key("21", 2, 7), 973932308 % 7);
}

static void test_partition_rejects_nonpositive_count(void **state)
{
	(void)state;
	assert_int_equal(kt_replay_partition_for_key("k", 1, 0), -1);
	assert_int_equal(kt_replay_partition_for_key("k", 1, -3), -1);
	assert_int_equal(kt_replay_partition_for_key("k", 1, 1), 0);
}

/* librdkafka's murmur2 partitioner is documented as "Java Producer
 * compatible"; for non-NULL keys it never touches the topic handle.  Agreeing
 * with it on thousands of generated keys of every length and partition count
 * used by the fixtures catches any byte-order or tail-handling slip that the
 * short published vectors might miss. */
static void test_partition_agrees_with_librdkafka_on_many_keys(void **state)
{
	static const int32_t counts[] = { 1, 2, 3, 4, 7, 30, 40, 1000 };
	unsigned char key[96];
	uint32_t x = 0x12345678u;

	(void)state;
	for (int i = 0; i < 4000; i++) {
		size_t len = (size_t)(i % (int)sizeof(key)) + 1;
		for (size_t j = 0; j < len; j++) {
			/* xorshift32: arbitrary bytes, including high-bit ones. */
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			key[j] = (unsigned char)x;
		}
		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			int32_t want = rd_kafka_msg_partitioner_murmur2(NULL, key, len, counts[c],
									NULL, NULL);
			int32_t got = kt_replay_partition_for_key(key, len, counts[c]);
			if (got != want)
				fail_msg("key #%d (len %zu) into %d partitions: got %d, librdkafka %d",
					 i, len, counts[c], got, want);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_murmur2_matches_kafka_utils_test),
		cmocka_unit_test(test_murmur2_matches_librdkafka_java_results),
		cmocka_unit_test(test_murmur2_ignores_key_alignment),
		cmocka_unit_test(test_murmur2_null_empty_key_is_empty_hash),
		cmocka_unit_test(test_partition_matches_java_placements),
		cmocka_unit_test(test_partition_clears_sign_bit_not_abs),
		cmocka_unit_test(test_partition_rejects_nonpositive_count),
		cmocka_unit_test(test_partition_agrees_with_librdkafka_on_many_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
