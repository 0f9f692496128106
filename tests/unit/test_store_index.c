/* Unit tests of the .kti index (format/segment.md section 5): rebuilding it
 * from the segment alone, falling back to the seek table when it is
 * missing, damaged, stale or newer, and verify's report of each. */
#include "test_store_segment_lib.h"

#include <errno.h>

struct fixture {
	char dir[256];
	char path[512];
	char ipath[512];
	struct tl_set set;
	struct kt_store_segment_info info;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct kt_store_writer_opts opts;

	if (!fx)
		return -1;
	tl_mkdtemp(fx->dir, sizeof(fx->dir));
	snprintf(fx->path, sizeof(fx->path), "%s/seg.kts", fx->dir);
	assert_int_equal(kt_store_index_path(fx->path, fx->ipath, sizeof(fx->ipath)), 0);
	fx->set = tl_generate(300, 5, 0, 0);
	kt_store_writer_opts_init(&opts);
	opts.block_size = 4096;
	tl_write(fx->path, &fx->set, fx->set.n, &opts, &fx->info);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	tl_set_free(&fx->set);
	tl_rmdir(fx->dir);
	free(fx);
	return 0;
}

/* Opens the segment, checks that lookups by time agree with the seek
 * table's running maximum, and returns verify's code. */
static int open_and_verify(struct fixture *fx, char *err, size_t err_size)
{
	struct kt_store_reader *reader = NULL;
	int64_t running = INT64_MIN;
	uint64_t bad = 99;
	int rc;

	assert_int_equal(kt_store_reader_open(&reader, fx->path, 0, err, err_size), 0);
	for (size_t i = 0; i < fx->info.block_count; i++) {
		const struct kt_store_block_info *blk = kt_store_reader_block(reader, i);
		size_t found = 0;

		if (blk->max_ts > running) {
			running = blk->max_ts;
			/* The first block whose running max reaches its own max. */
			assert_int_equal(kt_store_reader_find_time(reader, running, &found), 0);
			assert_true(found <= i);
		}
	}
	rc = kt_store_reader_verify(reader, &bad, err, err_size);
	/* Index problems never count as bad blocks. */
	assert_int_equal(bad, 0);
	kt_store_reader_destroy(reader);
	return rc;
}

static void test_index_path_replaces_the_extension(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(kt_store_index_path("a/b/00042.kts", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "a/b/00042.kti");
	assert_int_equal(kt_store_index_path("a/b/seg", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "a/b/seg.kti");
	assert_int_equal(kt_store_index_path("a/b/00042.kts", buf, 8), -ENAMETOOLONG);
}

static void test_index_rebuild_equals_the_written_index(void **state)
{
	struct fixture *fx = *state;
	uint8_t *written, *rebuilt;
	size_t wlen, rlen;
	char err[512];

	written = tl_read_file(fx->ipath, &wlen);
	assert_int_equal(wlen, 56 + 48 * fx->info.block_count);
	assert_int_equal(unlink(fx->ipath), 0);
	assert_int_equal(kt_store_index_rebuild(fx->path, 0600, err, sizeof(err)), 0);
	rebuilt = tl_read_file(fx->ipath, &rlen);
	assert_int_equal(rlen, wlen);
	assert_memory_equal(rebuilt, written, wlen);
	free(written);
	free(rebuilt);
	assert_int_equal(open_and_verify(fx, err, sizeof(err)), 0);
}

static void test_index_missing_is_not_a_verify_failure(void **state)
{
	struct fixture *fx = *state;
	char err[512];

	assert_int_equal(unlink(fx->ipath), 0);
	assert_int_equal(open_and_verify(fx, err, sizeof(err)), 0);
	tl_assert_segment(fx->path, 0, &fx->set, fx->set.n);
}

static void test_index_damaged_falls_back_and_verify_reports_it(void **state)
{
	struct fixture *fx = *state;
	size_t len;
	uint8_t *buf = tl_read_file(fx->ipath, &len);
	char err[512];

	/* Every byte of the index, flipped in turn: reading still works
	 * through the seek table, and verify names the index. */
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x10;
		tl_write_file(fx->ipath, buf, len);
		buf[i] ^= 0x10;
		err[0] = '\0';
		int rc = open_and_verify(fx, err, sizeof(err));
		if (rc != KT_ECORRUPT && rc != KT_EVERSION)
			fail_msg("flip of index byte %zu: verify gave %d (%s)", i, rc, err);
		assert_non_null(strstr(err, "index"));
	}
	tl_assert_segment(fx->path, 0, &fx->set, fx->set.n);
	/* A truncated index is damaged too. */
	tl_write_file(fx->ipath, buf, len - 1);
	assert_int_equal(open_and_verify(fx, err, sizeof(err)), KT_ECORRUPT);
	free(buf);
}

static void test_index_of_another_segment_is_stale(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_writer_opts opts;
	struct kt_store_segment_info other;
	char other_path[600], other_ipath[600], err[512];

	/* Same records, other block size: a different segment. */
	snprintf(other_path, sizeof(other_path), "%s/other.kts", fx->dir);
	kt_store_writer_opts_init(&opts);
	opts.block_size = 2048;
	tl_write(other_path, &fx->set, fx->set.n, &opts, &other);
	assert_int_equal(kt_store_index_path(other_path, other_ipath, sizeof(other_ipath)), 0);
	assert_int_equal(rename(other_ipath, fx->ipath), 0);
	assert_int_equal(open_and_verify(fx, err, sizeof(err)), KT_ECORRUPT);
	assert_non_null(strstr(err, "does not match"));
	tl_assert_segment(fx->path, 0, &fx->set, fx->set.n);
}

static void test_index_rebuild_refuses_a_torn_segment(void **state)
{
	struct fixture *fx = *state;
	char err[512];

	assert_int_equal(truncate(fx->path, (off_t)fx->info.file_size - 1), 0);
	assert_int_equal(kt_store_index_rebuild(fx->path, 0600, err, sizeof(err)),
			 KT_ETRUNCATED);
	assert_non_null(strstr(err, "seg.kts"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_path_replaces_the_extension),
		cmocka_unit_test_setup_teardown(test_index_rebuild_equals_the_written_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_missing_is_not_a_verify_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_damaged_falls_back_and_verify_reports_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_of_another_segment_is_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_rebuild_refuses_a_torn_segment, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
