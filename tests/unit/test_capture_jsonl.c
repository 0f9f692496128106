/* Unit tests of the JSON-lines record printer (src/cli/jsonl.c) that
 * `ktape cat` uses: the fields and order of docs/json-records.md, null
 * versus empty, escaping, and {"base64":...} for bytes that are not UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"

/* Prints one record into a string the caller frees. */
static char *print_record(const char *topic, int32_t partition, const struct kt_record *rec)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(kt_cli_jsonl_write(f, topic, partition, rec), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_jsonl_prints_kcat_fields_in_order(void **state)
{
	struct kt_header headers[] = {
		{ "trace", 5, "abc", 3 },
		{ "trace", 5, NULL, 0 },
		{ "empty", 5, "", 0 },
	};
	struct kt_record rec = {
		.offset = 42, .timestamp = 1700000000123, .ts_type = KT_TS_CREATE,
		.key = "user-7", .key_len = 6, .value = "{\"amount\":12}", .value_len = 13,
		.headers = headers, .header_count = 3,
	};
	char *line = print_record("orders", 3, &rec);

	(void)state;
	assert_string_equal(line,
		"{\"topic\":\"orders\",\"partition\":3,\"offset\":42,\"tstype\":\"create\",\"ts\":1700000000123,"
		"\"headers\":[\"trace\",\"abc\",\"trace\",null,\"empty\",\"\"],\"key\":\"user-7\","
		"\"payload\":\"{\\\"amount\\\":12}\"}\n");
	free(line);
}

static void test_jsonl_keeps_null_and_empty_apart(void **state)
{
	struct kt_record tombstone = { .offset = 0, .timestamp = 5, .ts_type = KT_TS_LOG_APPEND,
				       .key = "", .key_len = 0, .value = NULL };
	struct kt_record nullkey = { .offset = 1, .timestamp = -1, .ts_type = KT_TS_NONE,
				     .key = NULL, .value = "", .value_len = 0 };
	char *a = print_record("t", 0, &tombstone);
	char *b = print_record("t", 0, &nullkey);

	(void)state;
	assert_non_null(strstr(a, "\"tstype\":\"logappend\""));
	assert_non_null(strstr(a, "\"headers\":[],\"key\":\"\",\"payload\":null}"));
	assert_non_null(strstr(b, "\"tstype\":\"none\",\"ts\":-1"));
	assert_non_null(strstr(b, "\"key\":null,\"payload\":\"\"}"));
	free(a);
	free(b);
}

static void test_jsonl_escapes_quotes_backslashes_and_controls(void **state)
{
	static const char value[] = "a\"b\\c\nd\te\r\b\f\x01\x1f";
	struct kt_record rec = { .key = "k", .key_len = 1, .value = value, .value_len = sizeof(value) - 1 };
	char *line = print_record("t", 0, &rec);

	(void)state;
	assert_non_null(strstr(line, "\"payload\":\"a\\\"b\\\\c\\nd\\te\\r\\b\\f\\u0001\\u001f\"}"));
	free(line);
}

static void test_jsonl_writes_non_utf8_as_base64(void **state)
{
	static const unsigned char bin[] = { 'a', 0, '\n', 0xff };
	static const unsigned char one[] = { 0xfe };
	static const unsigned char two[] = { 0xc3, 0x28 };
	struct kt_header headers[] = { { "h", 1, one, 1 } };
	struct kt_record rec = { .key = two, .key_len = 2, .value = bin, .value_len = 4,
				 .headers = headers, .header_count = 1 };
	char *line = print_record("t", 0, &rec);

	(void)state;
	/* NUL and newline alone are valid UTF-8; 0xff makes the value binary. */
	assert_non_null(strstr(line, "\"payload\":{\"base64\":\"YQAK/w==\"}"));
	assert_non_null(strstr(line, "\"key\":{\"base64\":\"wyg=\"}"));
	assert_non_null(strstr(line, "\"headers\":[\"h\",{\"base64\":\"/g==\"}]"));
	free(line);
}

static void test_jsonl_keeps_valid_utf8_and_nul_as_strings(void **state)
{
	static const char text[] = "k\xc3\xa9y \xe2\x82\xac \xf0\x9f\x98\x80";
	static const char nul[] = { 'a', 0, 'b' };
	struct kt_record rec = { .key = text, .key_len = sizeof(text) - 1, .value = nul, .value_len = 3 };
	char *line = print_record("t", 0, &rec);

	(void)state;
	assert_non_null(strstr(line, "\"key\":\"k\xc3\xa9y \xe2\x82\xac \xf0\x9f\x98\x80\""));
	assert_non_null(strstr(line, "\"payload\":\"a\\u0000b\""));
	free(line);
}

static void test_jsonl_utf8_validator_refuses_malformed_sequences(void **state)
{
	(void)state;
	assert_true(kt_cli_jsonl_utf8_valid("", 0));
	assert_true(kt_cli_jsonl_utf8_valid("\xed\x9f\xbf", 3));      /* U+D7FF */
	assert_true(kt_cli_jsonl_utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
	assert_false(kt_cli_jsonl_utf8_valid("\xc0\x80", 2));         /* overlong NUL */
	assert_false(kt_cli_jsonl_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
	assert_false(kt_cli_jsonl_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(kt_cli_jsonl_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
	assert_false(kt_cli_jsonl_utf8_valid("\xe2\x82", 2));         /* truncated */
	assert_false(kt_cli_jsonl_utf8_valid("\x80", 1));             /* lone continuation */
	assert_false(kt_cli_jsonl_utf8_valid("\xe2\x28\xac", 3));     /* bad continuation */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jsonl_prints_kcat_fields_in_order),
		cmocka_unit_test(test_jsonl_keeps_null_and_empty_apart),
		cmocka_unit_test(test_jsonl_escapes_quotes_backslashes_and_controls),
		cmocka_unit_test(test_jsonl_writes_non_utf8_as_base64),
		cmocka_unit_test(test_jsonl_keeps_valid_utf8_and_nul_as_strings),
		cmocka_unit_test(test_jsonl_utf8_validator_refuses_malformed_sequences),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
