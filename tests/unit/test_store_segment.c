/* Unit tests of the segment writer and reader (format/segment.md): round
 * trips of every record shape, damage detection, torn-tail recovery, seeks,
 * both I/O back ends and a full disk. */
#include "test_store_segment_lib.h"

#include <errno.h>

#include "io_priv.h"
#include "segment_format.h"

struct fixture {
	char dir[256];
	char path[512];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	tl_mkdtemp(fx->dir, sizeof(fx->dir));
	snprintf(fx->path, sizeof(fx->path), "%s/seg.kts", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	tl_rmdir(fx->dir);
	free(fx);
	return 0;
}

static void small_blocks(struct kt_store_writer_opts *opts, int codec)
{
	kt_store_writer_opts_init(opts);
	opts->codec = codec;
	opts->block_size = 8192;
	opts->io_backend = KT_IO_PWRITE;
}

static void test_segment_round_trips_every_record_shape(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_writer_opts opts;
	struct kt_store_segment_info info;
	struct tl_set set = tl_generate(3000, 42, 0, 0);

	small_blocks(&opts, KT_CODEC_ZSTD);
	tl_write(fx->path, &set, set.n, &opts, &info);
	assert_int_equal(info.record_count, set.n);
	assert_true(info.block_count > 10);
	assert_int_equal(info.first_offset, 42);
	assert_int_equal(info.last_offset, set.recs[set.n - 1].rec.offset);
	assert_int_equal(info.sealed, 1);
	tl_assert_segment(fx->path, 0, &set, set.n);
	tl_assert_segment(fx->path, KT_STORE_OPEN_NO_INDEX, &set, set.n);
	tl_set_free(&set);
}

static void test_segment_round_trips_uncompressed(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_writer_opts opts;
	struct kt_store_segment_info info;
	struct tl_set set = tl_generate(1000, 0, 0, 0);

	small_blocks(&opts, KT_CODEC_NONE);
	tl_write(fx->path, &set, set.n, &opts, &info);
	tl_assert_segment(fx->path, 0, &set, set.n);
	for (size_t i = 0; i < info.block_count; i++) {
		struct kt_store_reader *reader = NULL;
		char err[256];

		assert_int_equal(kt_store_reader_open(&reader, fx->path, 0, err, sizeof(err)), 0);
		assert_int_equal(kt_store_reader_block(reader, i)->codec, KT_CODEC_NONE);
		kt_store_reader_destroy(reader);
	}
	tl_set_free(&set);
}

static void test_segment_gives_large_records_their_own_block(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_writer_opts opts;
	struct kt_store_segment_info info;
	struct kt_store_reader *reader = NULL;
	/* Every 7th value is 16 MiB, far above the 64 KiB block size. */
	struct tl_set set = tl_generate(15, 1000, 7, 16u << 20);
	char err[256];

	kt_store_writer_opts_init(&opts);
	opts.block_size = 65536;
	opts.level = 1;
	tl_write(fx->path, &set, set.n, &opts, &info);
	tl_assert_segment(fx->path, 0, &set, set.n);
	assert_int_equal(kt_store_reader_open(&reader, fx->path, 0, err, sizeof(err)), 0);
	for (size_t b = 0; b < info.block_count; b++) {
		const struct kt_store_block_info *blk = kt_store_reader_block(reader, b);
		if (blk->raw_size > opts.block_size)
			assert_int_equal(blk->record_count, 1);
	}
	kt_store_reader_destroy(reader);
	tl_set_free(&set);
}

static void test_segment_round_trips_an_empty_segment(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_segment_info info;
	struct kt_store_reader *reader = NULL;
	const struct kt_record *rec;
	struct tl_set set = tl_generate(0, 0, 0, 0);
	char err[256];
	uint64_t bad = 99;

	tl_write(fx->path, &set, 0, NULL, &info);
	assert_int_equal(info.block_count, 0);
	assert_int_equal(info.first_offset, -1);
	assert_int_equal(info.last_offset, -1);
	assert_int_equal(info.min_ts, INT64_MAX);
	assert_int_equal(info.max_ts, INT64_MIN);
	assert_int_equal(kt_store_reader_open(&reader, fx->path, 0, err, sizeof(err)), 0);
	assert_int_equal(kt_store_reader_next(reader, &rec, err, sizeof(err)), 0);
	assert_int_equal(kt_store_reader_verify(reader, &bad, err, sizeof(err)), 0);
	assert_int_equal(bad, 0);
	assert_int_equal(kt_store_reader_info(reader)->checksum, info.checksum);
	kt_store_reader_destroy(reader);
	tl_set_free(&set);
}

static void test_segment_rejects_non_increasing_offsets(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_writer *writer = NULL;
	struct kt_record rec = { .offset = 10, .timestamp = 5 };
	char err[256];

	assert_int_equal(kt_store_writer_create(&writer, fx->path, "t", 0, NULL, err,
						sizeof(err)), 0);
	assert_int_equal(kt_store_writer_append(writer, &rec, err, sizeof(err)), 0);
	assert_int_equal(kt_store_writer_append(writer, &rec, err, sizeof(err)), KT_EUSAGE);
	assert_non_null(strstr(err, "strictly increase"));
	rec.offset = 9;
	assert_int_equal(kt_store_writer_append(writer, &rec, err, sizeof(err)), KT_EUSAGE);
	rec.offset = -5;
	assert_int_equal(kt_store_writer_append(writer, &rec, err, sizeof(err)), KT_EUSAGE);
	rec.offset = 11;
	assert_int_equal(kt_store_writer_append(writer, &rec, err, sizeof(err)), 0);
	kt_store_writer_destroy(writer);
	/* Destroy without seal abandons the file. */
	assert_int_equal(access(fx->path, F_OK), -1);
}

static void test_segment_refuses_an_existing_path(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_writer *writer = NULL;
	char err[256];

	tl_write_file(fx->path, (const uint8_t *)"x", 1);
	assert_int_equal(kt_store_writer_create(&writer, fx->path, "t", 0, NULL, err,
						sizeof(err)), -EEXIST);
	assert_null(writer);
	/* The other file is left alone. */
	assert_int_equal(access(fx->path, F_OK), 0);
}

static void test_segment_rejects_bad_options(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_writer *writer = NULL;
	struct kt_store_writer_opts opts;
	char err[256];

	kt_store_writer_opts_init(&opts);
	opts.codec = 7;
	assert_int_equal(kt_store_writer_create(&writer, fx->path, "t", 0, &opts, err,
						sizeof(err)), KT_EUSAGE);
	kt_store_writer_opts_init(&opts);
	opts.blocks_in_flight = 0;
	assert_int_equal(kt_store_writer_create(&writer, fx->path, "t", 0, &opts, err,
						sizeof(err)), KT_EUSAGE);
	assert_int_equal(kt_store_writer_create(&writer, fx->path, "", 0, NULL, err,
						sizeof(err)), KT_EUSAGE);
	assert_int_equal(kt_store_writer_create(&writer, fx->path, "t", -1, NULL, err,
						sizeof(err)), KT_EUSAGE);
	assert_int_equal(access(fx->path, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_segment_round_trips_every_record_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_round_trips_uncompressed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_gives_large_records_their_own_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_round_trips_an_empty_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_rejects_non_increasing_offsets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_refuses_an_existing_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_rejects_bad_options, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
