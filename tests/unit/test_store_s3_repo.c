/* Unit tests of the pieces of an S3 repository that need no server
 * (src/store/s3_repo_priv.h, src/store/io_s3.c): object URLs, part sizing
 * of segment uploads, merging of block reads into ranged GETs and the
 * reader's readahead budget, and the upload back end's handling of writes
 * before any request is due.  The endpoint points at a closed local port,
 * so a request made by mistake fails instead of reaching anyone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_priv.h"
#include "kt_common.h"
#include "s3_repo_priv.h"

#define MIB (1024u * 1024u)

static int setup_env(void **state)
{
	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	setenv("AWS_REGION", "us-east-1", 1);
	/* Port 9 (discard) is closed on test machines: any request fails. */
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9", 1);
	setenv("KTAPE_S3_PATH_STYLE", "1", 1);
	return 0;
}

static void test_object_split_gives_bucket_and_key(void **state)
{
	char bucket[KT_S3_BUCKET_MAX + 1], err[256];
	const char *key = NULL;

	(void)state;
	assert_int_equal(kt_s3_object_split("s3://my-bucket/pre/fix/segments/t/0/a.kts", bucket, &key,
					    err, sizeof(err)), 0);
	assert_string_equal(bucket, "my-bucket");
	assert_string_equal(key, "pre/fix/segments/t/0/a.kts");
}

static void test_object_split_refuses_bad_bucket_and_missing_key(void **state)
{
	char bucket[KT_S3_BUCKET_MAX + 1], err[256];
	const char *key = NULL;

	(void)state;
	assert_int_equal(kt_s3_object_split("s3://Bad_Bucket/k", bucket, &key, err, sizeof(err)), KT_EUSAGE);
	assert_non_null(strstr(err, "Bad_Bucket"));
	assert_int_equal(kt_s3_object_split("s3://bucket/", bucket, &key, err, sizeof(err)), KT_EUSAGE);
	assert_non_null(strstr(err, "no object"));
	assert_int_equal(kt_s3_object_split("/local/path", bucket, &key, err, sizeof(err)), KT_EUSAGE);
}

static void test_part_size_grows_every_thousand_parts(void **state)
{
	uint64_t total = 0;

	(void)state;
	assert_int_equal(kt_s3_part_size(KT_S3_PART_BASE, 1), 8 * MIB);
	assert_int_equal(kt_s3_part_size(KT_S3_PART_BASE, 1000), 8 * MIB);
	assert_int_equal(kt_s3_part_size(KT_S3_PART_BASE, 1001), 16 * MIB);
	assert_int_equal(kt_s3_part_size(KT_S3_PART_BASE, 10000), 80 * MIB);
	for (unsigned p = 1; p <= KT_S3_MAX_PARTS; p++) {
		/* S3 wants every part but the last to be at least 5 MiB. */
		assert_true(kt_s3_part_size(KT_S3_PART_BASE, p) >= 5 * MIB);
		total += kt_s3_part_size(KT_S3_PART_BASE, p);
	}
	/* 10000 parts hold far more than any segment is rolled at. */
	assert_true(total > (uint64_t)400 << 30);
}

static void test_part_base_comes_from_the_environment_within_bounds(void **state)
{
	(void)state;
	assert_int_equal(kt_s3_part_base(), KT_S3_PART_BASE);
	setenv("KTAPE_S3_PART_SIZE", "262144", 1);
	assert_int_equal(kt_s3_part_base(), 262144);
	/* Nonsense falls back to the default rather than to tiny parts. */
	setenv("KTAPE_S3_PART_SIZE", "100", 1);
	assert_int_equal(kt_s3_part_base(), KT_S3_PART_BASE);
	setenv("KTAPE_S3_PART_SIZE", "8M", 1);
	assert_int_equal(kt_s3_part_base(), KT_S3_PART_BASE);
	unsetenv("KTAPE_S3_PART_SIZE");
}

/* n contiguous blocks of the given stored sizes after a 100-byte header;
 * returns where the seek table starts. */
static uint64_t make_blocks(struct kt_store_block_info *blocks, const uint32_t *sizes, size_t n)
{
	uint64_t off = 100;

	for (size_t i = 0; i < n; i++) {
		memset(&blocks[i], 0, sizeof(blocks[i]));
		blocks[i].file_offset = off;
		blocks[i].stored_size = sizes[i];
		off += 64 + sizes[i];
	}
	return off;
}

static void test_merge_blocks_stops_at_budget(void **state)
{
	struct kt_store_block_info blocks[5];
	const uint32_t sizes[5] = { 936, 936, 936, 936, 936 }; /* 1000 bytes each with header */
	uint64_t table = make_blocks(blocks, sizes, 5), end = 0;

	(void)state;
	assert_int_equal(kt_s3_merge_blocks(blocks, 5, 1, table, 2500, &end), 2);
	assert_int_equal(end, blocks[3].file_offset);
	assert_int_equal(kt_s3_merge_blocks(blocks, 5, 1, table, 3000, &end), 3);
	assert_int_equal(end, blocks[4].file_offset);
}

static void test_merge_blocks_takes_one_block_larger_than_budget(void **state)
{
	struct kt_store_block_info blocks[3];
	const uint32_t sizes[3] = { 20000, 10, 10 };
	uint64_t table = make_blocks(blocks, sizes, 3), end = 0;

	(void)state;
	assert_int_equal(kt_s3_merge_blocks(blocks, 3, 0, table, 0, &end), 1);
	assert_int_equal(end, blocks[1].file_offset);
	assert_int_equal(kt_s3_merge_blocks(blocks, 3, 0, table, 100, &end), 1);
}

static void test_merge_blocks_last_block_ends_at_seek_table(void **state)
{
	struct kt_store_block_info blocks[3];
	const uint32_t sizes[3] = { 100, 100, 100 };
	uint64_t table = make_blocks(blocks, sizes, 3), end = 0;

	(void)state;
	assert_int_equal(kt_s3_merge_blocks(blocks, 3, 0, table, 1u << 20, &end), 3);
	assert_int_equal(end, table);
	assert_int_equal(kt_s3_merge_blocks(blocks, 3, 2, table, 0, &end), 1);
	assert_int_equal(end, table);
	assert_int_equal(kt_s3_merge_blocks(blocks, 3, 3, table, 0, &end), 0);
}

static void test_merge_blocks_never_exceeds_8_mib(void **state)
{
	struct kt_store_block_info blocks[20];
	uint32_t sizes[20];
	uint64_t table, end = 0;
	size_t n;

	(void)state;
	for (size_t i = 0; i < 20; i++)
		sizes[i] = MIB - 64;
	table = make_blocks(blocks, sizes, 20);
	n = kt_s3_merge_blocks(blocks, 20, 0, table, UINT64_MAX, &end);
	assert_int_equal(n, 8);
	assert_true(end - blocks[0].file_offset <= KT_S3_MERGE_MAX);
}

static void test_budget_doubles_in_order_and_resets_on_jump(void **state)
{
	uint64_t b;

	(void)state;
	/* A first block reached by a seek, and a block reached by a jump,
	 * come alone; a read from block 0 reads ahead at once. */
	assert_int_equal(kt_s3_next_budget(0, SIZE_MAX, 5, 1000, KT_S3_MERGE_MAX), 0);
	assert_int_equal(kt_s3_next_budget(0, SIZE_MAX, 0, 1000, 1u << 20), 1u << 20);
	b = kt_s3_next_budget(0, 0, 1, 1000, KT_S3_MERGE_MAX);
	assert_int_equal(b, 2000);
	b = kt_s3_next_budget(b, 1, 2, 1000, KT_S3_MERGE_MAX);
	assert_int_equal(b, 4000);
	assert_int_equal(kt_s3_next_budget(b, 2, 7, 1000, KT_S3_MERGE_MAX), 0);
	for (size_t i = 3; i < 40; i++)
		b = kt_s3_next_budget(b, i - 1, i, 1000, KT_S3_MERGE_MAX);
	assert_int_equal(b, KT_S3_MERGE_MAX);
	/* A smaller cap (many readers at once) holds it lower. */
	assert_int_equal(kt_s3_next_budget(b, 39, 40, 1000, 1u << 20), 1u << 20);
}

static void test_readahead_cap_is_shared_among_open_readers(void **state)
{
	(void)state;
	assert_int_equal(kt_s3_readahead_cap(+1), KT_S3_MERGE_MAX);
	for (int i = 0; i < 15; i++)
		kt_s3_readahead_cap(+1);
	/* 16 readers share 64 MiB over two buffers each: 2 MiB a buffer. */
	assert_int_equal(kt_s3_readahead_cap(0), KT_S3_READAHEAD_TOTAL / 32);
	for (int i = 0; i < 1000; i++)
		kt_s3_readahead_cap(+1);
	assert_int_equal(kt_s3_readahead_cap(0), 256u << 10);
	assert_int_equal(kt_s3_readahead_cap(-1016), KT_S3_MERGE_MAX);
}

static void test_io_s3_buffers_small_writes_without_requests(void **state)
{
	struct kt_io *io = NULL;
	char err[512];
	static uint8_t buf[65536];
	uint64_t tag = 0;

	(void)state;
	assert_int_equal(kt_io_open(&io, "s3://ktape-test/repo/segments/t/0/x.kts", KT_IO_AUTO, 0600, 4,
				    err, sizeof(err)), 0);
	assert_int_equal(kt_io_backend(io), KT_IO_S3);
	/* Below one part nothing is sent, so the closed endpoint cannot fail
	 * these writes. */
	for (uint64_t i = 0; i < 8; i++) {
		assert_int_equal(kt_io_submit_write(io, buf, sizeof(buf), i * sizeof(buf), i, err, sizeof(err)), 0);
		assert_int_equal(kt_io_wait_one(io, &tag, err, sizeof(err)), 0);
		assert_int_equal(tag, i);
	}
	/* Destroyed unsealed: no upload was started, so nothing to abort. */
	kt_io_destroy(io);
}

static void test_io_s3_refuses_out_of_order_write(void **state)
{
	struct kt_io *io = NULL;
	char err[512];
	static uint8_t buf[100];
	uint64_t tag = 0;

	(void)state;
	assert_int_equal(kt_io_open(&io, "s3://ktape-test/repo/segments/t/0/y.kts", KT_IO_PWRITE, 0600, 2,
				    err, sizeof(err)), 0);
	assert_int_equal(kt_io_submit_write(io, buf, sizeof(buf), 0, 1, err, sizeof(err)), 0);
	assert_int_equal(kt_io_wait_one(io, &tag, err, sizeof(err)), 0);
	assert_int_equal(kt_io_submit_write(io, buf, sizeof(buf), 500, 2, err, sizeof(err)), 0);
	assert_int_equal(kt_io_wait_one(io, &tag, err, sizeof(err)), -EINVAL);
	assert_int_equal(tag, 2);
	assert_non_null(strstr(err, "byte 500"));
	kt_io_destroy(io);
}

static void test_io_s3_close_reports_the_failed_put(void **state)
{
	struct kt_io *io = NULL;
	char err[512];
	static uint8_t buf[100];
	uint64_t tag = 0;
	int rc;

	(void)state;
	assert_int_equal(kt_io_open(&io, "s3://ktape-test/repo/segments/t/0/z.kts", KT_IO_AUTO, 0600, 2,
				    err, sizeof(err)), 0);
	assert_int_equal(kt_io_submit_write(io, buf, sizeof(buf), 0, 1, err, sizeof(err)), 0);
	assert_int_equal(kt_io_wait_one(io, &tag, err, sizeof(err)), 0);
	/* The seal is the PUT: with nothing listening it fails, naming the
	 * object, and the segment is not reported written. */
	rc = kt_io_close(io, err, sizeof(err));
	assert_true(rc < 0);
	assert_non_null(strstr(err, "s3://ktape-test/repo/segments/t/0/z.kts"));
	kt_io_destroy(io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_object_split_gives_bucket_and_key),
		cmocka_unit_test(test_object_split_refuses_bad_bucket_and_missing_key),
		cmocka_unit_test(test_part_size_grows_every_thousand_parts),
		cmocka_unit_test(test_part_base_comes_from_the_environment_within_bounds),
		cmocka_unit_test(test_merge_blocks_stops_at_budget),
		cmocka_unit_test(test_merge_blocks_takes_one_block_larger_than_budget),
		cmocka_unit_test(test_merge_blocks_last_block_ends_at_seek_table),
		cmocka_unit_test(test_merge_blocks_never_exceeds_8_mib),
		cmocka_unit_test(test_budget_doubles_in_order_and_resets_on_jump),
		cmocka_unit_test(test_readahead_cap_is_shared_among_open_readers),
		cmocka_unit_test(test_io_s3_buffers_small_writes_without_requests),
		cmocka_unit_test(test_io_s3_refuses_out_of_order_write),
		cmocka_unit_test(test_io_s3_close_reports_the_failed_put),
	};

	return cmocka_run_group_tests(tests, setup_env, NULL);
}
