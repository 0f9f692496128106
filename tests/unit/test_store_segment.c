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

/* A held block keeps its records' bytes after the reader moved to other
 * blocks and after it was destroyed (restore sends values from it without
 * copying); the reader decompresses later blocks elsewhere.  Blocks stored
 * uncompressed are read in place and cannot be held. */
static void test_segment_held_block_outlives_the_reader(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_writer_opts opts;
	struct kt_store_segment_info info;
	struct kt_store_reader *reader = NULL;
	struct tl_set set = tl_generate(2000, 0, 0, 0);
	struct kt_store_block **held = calloc(set.n, sizeof(*held));
	const struct kt_record *rec;
	const void **values = calloc(set.n, sizeof(*values));
	size_t *lens = calloc(set.n, sizeof(*lens)), n = 0, held_count = 0;
	char err[256];

	assert_non_null(held);
	assert_non_null(values);
	assert_non_null(lens);
	small_blocks(&opts, KT_CODEC_ZSTD);
	tl_write(fx->path, &set, set.n, &opts, &info);
	assert_true(info.block_count > 10);
	assert_int_equal(kt_store_reader_open(&reader, fx->path, 0, err, sizeof(err)), 0);
	/* Hold every 3rd record's block, so that some blocks are held and
	 * some are not when the reader moves on. */
	while (kt_store_reader_next(reader, &rec, err, sizeof(err)) == 1) {
		int codec = kt_store_reader_block(reader, kt_store_reader_current_block(reader))->codec;

		if (n % 3 == 0) {
			/* Random bytes do not compress: the writer stores such
			 * blocks as they are, and those cannot be held. */
			held[n] = kt_store_reader_hold_block(reader);
			assert_true((held[n] != NULL) == (codec == KT_CODEC_ZSTD));
			values[n] = rec->value;
			lens[n] = rec->value_len;
			held_count += held[n] != NULL;
		}
		n++;
	}
	assert_int_equal(n, set.n);
	assert_true(held_count > n / 6);
	kt_store_reader_destroy(reader);
	for (size_t i = 0; i < n; i += 3) {
		const struct kt_record *want = &set.recs[i].rec;

		if (!held[i])
			continue;
		assert_true(tl_bytes_equal(values[i], lens[i], want->value, want->value_len));
		kt_store_block_release(held[i]);
	}
	kt_store_block_release(NULL);

	small_blocks(&opts, KT_CODEC_NONE);
	tl_rmdir(fx->dir);
	tl_mkdtemp(fx->dir, sizeof(fx->dir));
	snprintf(fx->path, sizeof(fx->path), "%s/seg.kts", fx->dir);
	tl_write(fx->path, &set, set.n, &opts, &info);
	assert_int_equal(kt_store_reader_open(&reader, fx->path, 0, err, sizeof(err)), 0);
	assert_int_equal(kt_store_reader_next(reader, &rec, err, sizeof(err)), 1);
	assert_null(kt_store_reader_hold_block(reader));
	kt_store_reader_destroy(reader);
	free(lens);
	free(values);
	free(held);
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

static void test_segment_destroy_without_seal_removes_the_file(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_writer_opts opts;
	struct kt_store_writer *writer = NULL;
	struct tl_set set = tl_generate(500, 0, 0, 0);
	char err[512];

	/* Many blocks handed to the compression thread, some still in
	 * flight when the writer is abandoned. */
	kt_store_writer_opts_init(&opts);
	opts.block_size = 1024;
	assert_int_equal(kt_store_writer_create(&writer, fx->path, "orders", 3, &opts, err,
						sizeof(err)), 0);
	for (size_t i = 0; i < set.n; i++)
		assert_int_equal(kt_store_writer_append(writer, &set.recs[i].rec, err,
							sizeof(err)), 0);
	assert_true(kt_store_writer_raw_bytes(writer) > 100 * 1024);
	kt_store_writer_destroy(writer);
	assert_int_equal(tl_count_files(fx->dir), 0);
	kt_store_writer_destroy(NULL);
	tl_set_free(&set);
}

static void test_segment_varints_round_trip_and_refuse_bad_encodings(void **state)
{
	static const uint64_t values[] = { 0, 1, 127, 128, 16383, 16384, (1ull << 35) - 1,
					   1ull << 35, INT64_MAX, (uint64_t)INT64_MAX + 1,
					   UINT64_MAX };
	uint8_t buf[16];
	const uint8_t *p;
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		uint8_t *end = kt_varint_put(buf, values[i]);

		assert_int_equal((size_t)(end - buf), kt_varint_len(values[i]));
		p = buf;
		assert_int_equal(kt_varint_get(&p, end, &v), 0);
		assert_int_equal(v, values[i]);
		assert_ptr_equal(p, end);
		/* Cut short by one byte, it is refused. */
		p = buf;
		assert_int_equal(kt_varint_get(&p, end - 1, &v), -1);
	}
	/* Overlong: zero as 80 00. */
	memcpy(buf, "\x80\x00", 2);
	p = buf;
	assert_int_equal(kt_varint_get(&p, buf + 2, &v), -1);
	/* A tenth byte above 1 does not fit in 64 bits. */
	memset(buf, 0xff, 9);
	buf[9] = 0x02;
	p = buf;
	assert_int_equal(kt_varint_get(&p, buf + 10, &v), -1);
	/* Eleven bytes are never valid. */
	memset(buf, 0x80, 10);
	buf[10] = 0x01;
	p = buf;
	assert_int_equal(kt_varint_get(&p, buf + 11, &v), -1);
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

/* Writes a small segment of a few blocks for the damage tests. */
static struct tl_set write_small_codec(const char *path, size_t n, int codec,
				      struct kt_store_segment_info *info)
{
	struct kt_store_writer_opts opts;
	struct tl_set set = tl_generate(n, 7, 0, 0);

	kt_store_writer_opts_init(&opts);
	opts.block_size = 1024;
	opts.codec = codec;
	opts.io_backend = KT_IO_PWRITE;
	/* Keep values small so the segment stays a few kilobytes. */
	for (size_t i = 0; i < set.n; i++)
		if (set.recs[i].rec.value_len > 200)
			set.recs[i].rec.value_len = 200;
	tl_write(path, &set, set.n, &opts, info);
	return set;
}

static struct tl_set write_small(const char *path, size_t n, struct kt_store_segment_info *info)
{
	return write_small_codec(path, n, KT_CODEC_ZSTD, info);
}

/* Opens, reads everything and verifies; asserts that every record returned
 * is the original one.  Returns nonzero when any step reported a problem. */
static int read_detects_damage(const char *path, unsigned flags, const struct tl_set *set)
{
	struct kt_store_reader *reader = NULL;
	const struct kt_record *rec;
	char err[512];
	size_t i = 0;
	int rc, detected = 0;
	uint64_t bad;

	rc = kt_store_reader_open(&reader, path, flags, err, sizeof(err));
	if (rc) {
		assert_true(rc < 0);
		assert_non_null(strstr(err, path));
		return 1;
	}
	while ((rc = kt_store_reader_next(reader, &rec, err, sizeof(err))) == 1) {
		assert_true(i < set->n);
		/* Wrong data must never come out silently. */
		assert_true(tl_record_equal(rec, &set->recs[i].rec));
		i++;
	}
	if (rc < 0) {
		assert_non_null(strstr(err, "block"));
		detected = 1;
	}
	if (kt_store_reader_verify(reader, &bad, err, sizeof(err)) != 0)
		detected = 1;
	kt_store_reader_destroy(reader);
	return detected;
}

static void flip_every_byte(struct fixture *fx, int codec, size_t n)
{
	struct kt_store_segment_info info;
	struct tl_set set = write_small_codec(fx->path, n, codec, &info);
	size_t len;
	uint8_t *buf = tl_read_file(fx->path, &len);

	assert_true(info.block_count >= 3);
	assert_false(read_detects_damage(fx->path, 0, &set));
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= (uint8_t)(1u << (i % 8));
		tl_write_file(fx->path, buf, len);
		buf[i] ^= (uint8_t)(1u << (i % 8));
		if (!read_detects_damage(fx->path, 0, &set))
			fail_msg("a flip of byte %zu of %zu went unnoticed", i, len);
		/* Recovery changes the outcome only where a flip tears the
		 * footer; elsewhere a valid footer makes the file sealed. */
		if (i >= len - 80 && !read_detects_damage(fx->path, KT_STORE_OPEN_RECOVER, &set))
			fail_msg("a flip of byte %zu of %zu went unnoticed with recovery", i, len);
	}
	free(buf);
	tl_set_free(&set);
}

static void test_segment_rejects_flipped_byte(void **state)
{
	flip_every_byte(*state, KT_CODEC_ZSTD, 40);
}

static void test_segment_rejects_flipped_byte_uncompressed(void **state)
{
	/* Uncompressed blocks are read in place: the same checks apply. */
	flip_every_byte(*state, KT_CODEC_NONE, 20);
}

static void test_segment_reads_past_damaged_blocks(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_segment_info info;
	struct kt_store_reader *reader = NULL;
	struct tl_set set = write_small(fx->path, 60, &info);
	const struct kt_record *rec;
	size_t len, first[16] = { 0 };
	uint8_t *buf = tl_read_file(fx->path, &len);
	uint64_t bad = 0;
	char err[512];
	int rc;

	assert_true(info.block_count >= 4 && info.block_count < 16);
	assert_int_equal(kt_store_reader_open(&reader, fx->path, 0, err, sizeof(err)), 0);
	for (size_t b = 1; b < info.block_count; b++)
		first[b] = first[b - 1] + kt_store_reader_block(reader, b - 1)->record_count;
	/* Damage the payloads of blocks 1 and 3. */
	buf[kt_store_reader_block(reader, 1)->file_offset + 72 + 3] ^= 0x40;
	buf[kt_store_reader_block(reader, 3)->file_offset + 72 + 3] ^= 0x40;
	kt_store_reader_destroy(reader);
	tl_write_file(fx->path, buf, len);

	assert_int_equal(kt_store_reader_open(&reader, fx->path, 0, err, sizeof(err)), 0);
	assert_int_equal(kt_store_reader_verify(reader, &bad, err, sizeof(err)), KT_ECORRUPT);
	assert_int_equal(bad, 2);
	assert_non_null(strstr(err, "block 1 at byte"));
	/* Block 0 reads, then block 1 fails without a record of it. */
	for (size_t i = 0; i < first[1]; i++) {
		assert_int_equal(kt_store_reader_next(reader, &rec, err, sizeof(err)), 1);
		tl_assert_record(rec, &set.recs[i].rec);
	}
	assert_int_equal(kt_store_reader_next(reader, &rec, err, sizeof(err)), KT_ECORRUPT);
	assert_non_null(strstr(err, "payload checksum"));
	/* A reader can seek past it; block 2 is whole. */
	assert_int_equal(kt_store_reader_seek_block(reader, 2, err, sizeof(err)), 0);
	for (size_t i = first[2]; i < first[3]; i++) {
		assert_int_equal(kt_store_reader_next(reader, &rec, err, sizeof(err)), 1);
		tl_assert_record(rec, &set.recs[i].rec);
		assert_int_equal(kt_store_reader_current_block(reader), 2);
	}
	rc = kt_store_reader_next(reader, &rec, err, sizeof(err));
	assert_int_equal(rc, KT_ECORRUPT);
	assert_non_null(strstr(err, "block 3"));
	kt_store_reader_destroy(reader);
	free(buf);
	tl_set_free(&set);
}

static void test_segment_recovers_whole_blocks_of_a_torn_tail(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_segment_info info;
	struct kt_store_reader *reader = NULL;
	struct tl_set set = write_small(fx->path, 60, &info);
	size_t len, last_start, last_end, before;
	uint8_t *buf = tl_read_file(fx->path, &len);
	char err[512];

	assert_int_equal(kt_store_reader_open(&reader, fx->path, 0, err, sizeof(err)), 0);
	{
		const struct kt_store_block_info *last =
			kt_store_reader_block(reader, info.block_count - 1);
		last_start = last->file_offset;
		last_end = last->file_offset + 72 + last->stored_size;
		before = info.record_count - last->record_count;
	}
	kt_store_reader_destroy(reader);

	for (size_t cut = last_start; cut < len; cut++) {
		size_t whole = cut >= last_end ? info.block_count : info.block_count - 1;
		size_t nrec = cut >= last_end ? info.record_count : before;
		uint64_t bad;

		tl_write_file(fx->path, buf, cut);
		reader = NULL;
		assert_int_equal(kt_store_reader_open(&reader, fx->path, 0, err, sizeof(err)),
				 KT_ETRUNCATED);
		assert_null(reader);
		assert_int_equal(kt_store_reader_open(&reader, fx->path, KT_STORE_OPEN_RECOVER,
						      err, sizeof(err)), 0);
		assert_int_equal(kt_store_reader_info(reader)->block_count, whole);
		assert_int_equal(kt_store_reader_info(reader)->sealed, 0);
		assert_int_equal(kt_store_reader_verify(reader, &bad, err, sizeof(err)),
				 KT_ETRUNCATED);
		assert_int_equal(bad, 0);
		kt_store_reader_destroy(reader);
		tl_assert_segment(fx->path, KT_STORE_OPEN_RECOVER, &set, nrec);
	}
	/* A file cut inside its header has nothing to recover. */
	tl_write_file(fx->path, buf, 45);
	assert_int_equal(kt_store_reader_open(&reader, fx->path, KT_STORE_OPEN_RECOVER, err,
					      sizeof(err)), KT_ETRUNCATED);
	tl_write_file(fx->path, buf, 20);
	assert_int_equal(kt_store_reader_open(&reader, fx->path, 0, err, sizeof(err)),
			 KT_EMAGIC);
	free(buf);
	tl_set_free(&set);
}

static void test_segment_refuses_newer_version_and_wrong_magic(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_segment_info info;
	struct kt_store_reader *reader = NULL;
	struct tl_set set = write_small(fx->path, 5, &info);
	size_t len;
	uint8_t *buf = tl_read_file(fx->path, &len);
	char err[512];

	/* Version 2 with a valid header checksum. */
	kt_put_le16(buf + 8, 2);
	kt_put_le64(buf + 32 + 6, kt_seg_checksum(buf, 32 + 6));
	tl_write_file(fx->path, buf, len);
	assert_int_equal(kt_store_reader_open(&reader, fx->path, KT_STORE_OPEN_RECOVER, err,
					      sizeof(err)), KT_EVERSION);
	assert_non_null(strstr(err, "future"));
	buf[7] = 'X';
	tl_write_file(fx->path, buf, len);
	assert_int_equal(kt_store_reader_open(&reader, fx->path, 0, err, sizeof(err)),
			 KT_EMAGIC);
	assert_null(reader);
	free(buf);
	tl_set_free(&set);
}

/* The first record at or after a target, found by walking the records. */
static size_t linear_first(const struct tl_set *set, int by_time, int64_t target)
{
	for (size_t i = 0; i < set->n; i++) {
		const struct kt_record *r = &set->recs[i].rec;
		if (by_time ? r->timestamp >= target : r->offset >= target)
			return i;
	}
	return set->n;
}

static void test_segment_seeks_agree_with_a_linear_scan(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_writer_opts opts;
	struct kt_store_segment_info info;
	struct kt_store_reader *reader = NULL;
	struct tl_set set = tl_generate(2000, 100, 0, 0);
	char err[512];

	kt_store_writer_opts_init(&opts);
	opts.block_size = 2048;
	tl_write(fx->path, &set, set.n, &opts, &info);
	assert_int_equal(kt_store_reader_open(&reader, fx->path, 0, err, sizeof(err)), 0);
	for (int round = 0; round < 600; round++) {
		int by_time = round & 1;
		const struct kt_record *rec;
		struct kt_store_read_stats before, after;
		int64_t target;
		size_t want, block;
		int rc;

		if (by_time)
			target = info.min_ts - 5 +
				 (int64_t)tl_below((uint64_t)(info.max_ts - info.min_ts) + 10);
		else
			target = info.first_offset - 5 +
				 (int64_t)tl_below((uint64_t)(info.last_offset - info.first_offset) + 10);
		want = linear_first(&set, by_time, target);
		kt_store_reader_stats(reader, &before);
		rc = by_time ? kt_store_reader_seek_time(reader, target, err, sizeof(err))
			     : kt_store_reader_seek_offset(reader, target, err, sizeof(err));
		assert_int_equal(rc, 0);
		rc = kt_store_reader_next(reader, &rec, err, sizeof(err));
		if (want == set.n) {
			assert_int_equal(rc, 0);
			assert_int_equal(by_time ? kt_store_reader_find_time(reader, target, &block)
						 : kt_store_reader_find_offset(reader, target, &block),
					 KT_ENOTFOUND);
			continue;
		}
		assert_int_equal(rc, 1);
		tl_assert_record(rec, &set.recs[want].rec);
		/* A seek reads only the block it lands in. */
		kt_store_reader_stats(reader, &after);
		assert_int_equal(after.blocks_loaded, before.blocks_loaded + 1);
		assert_int_equal(by_time ? kt_store_reader_find_time(reader, target, &block)
					 : kt_store_reader_find_offset(reader, target, &block), 0);
		assert_int_equal(block, kt_store_reader_current_block(reader));
		/* Reading on continues in offset order. */
		if (want + 1 < set.n) {
			assert_int_equal(kt_store_reader_next(reader, &rec, err, sizeof(err)), 1);
			tl_assert_record(rec, &set.recs[want + 1].rec);
		}
	}
	/* seek_block positions on a block's first record. */
	for (size_t b = 0, first = 0; b < info.block_count; b++) {
		const struct kt_record *rec;

		assert_int_equal(kt_store_reader_seek_block(reader, b, err, sizeof(err)), 0);
		assert_int_equal(kt_store_reader_next(reader, &rec, err, sizeof(err)), 1);
		tl_assert_record(rec, &set.recs[first].rec);
		first += kt_store_reader_block(reader, b)->record_count;
	}
	kt_store_reader_destroy(reader);
	tl_set_free(&set);
}

static void test_segment_finds_time_in_non_monotonic_blocks(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_writer_opts opts;
	struct kt_store_segment_info info;
	struct kt_store_reader *reader = NULL;
	/* Two records per block; timestamps jump back and forth. */
	static const int64_t ts[] = { 100, 50, 10, 20, 200, 5, 150, 160, -7, 300 };
	struct tl_set set = tl_generate(10, 0, 0, 0);
	static const uint8_t value[100];
	const struct kt_record *rec;
	char err[512];
	size_t block;

	for (size_t i = 0; i < 10; i++) {
		struct kt_record *r = &set.recs[i].rec;
		r->offset = (int64_t)i * 3;
		r->timestamp = ts[i];
		r->key = NULL;
		r->key_len = 0;
		r->value = value;
		r->value_len = sizeof(value);
		r->header_count = 0;
	}
	kt_store_writer_opts_init(&opts);
	opts.block_size = 230;
	tl_write(fx->path, &set, set.n, &opts, &info);
	assert_int_equal(info.block_count, 5);
	assert_int_equal(kt_store_reader_open(&reader, fx->path, 0, err, sizeof(err)), 0);
	/* running max: 100, 100, 200, 200, 300 */
	assert_int_equal(kt_store_reader_find_time(reader, 60, &block), 0);
	assert_int_equal(block, 0);
	assert_int_equal(kt_store_reader_find_time(reader, 101, &block), 0);
	assert_int_equal(block, 2);
	assert_int_equal(kt_store_reader_find_time(reader, 201, &block), 0);
	assert_int_equal(block, 4);
	assert_int_equal(kt_store_reader_find_time(reader, 301, &block), KT_ENOTFOUND);
	/* 150 first appears at offset 12 (ts 200), not at offset 18 (ts 150). */
	assert_int_equal(kt_store_reader_seek_time(reader, 150, err, sizeof(err)), 0);
	assert_int_equal(kt_store_reader_next(reader, &rec, err, sizeof(err)), 1);
	assert_int_equal(rec->offset, 12);
	assert_int_equal(kt_store_reader_seek_time(reader, INT64_MIN, err, sizeof(err)), 0);
	assert_int_equal(kt_store_reader_next(reader, &rec, err, sizeof(err)), 1);
	assert_int_equal(rec->offset, 0);
	kt_store_reader_destroy(reader);
	tl_assert_segment(fx->path, 0, &set, set.n);
	tl_set_free(&set);
}

static int log_lines;
static char log_last[512];

static void count_log(void *opaque, int level, const char *msg)
{
	(void)opaque;
	assert_int_equal(level, KT_LOG_DEBUG);
	log_lines++;
	snprintf(log_last, sizeof(log_last), "%s", msg);
}

static void write_with_backend(struct fixture *fx, int backend)
{
	struct kt_log log = { count_log, NULL, KT_LOG_DEBUG };
	struct kt_store_writer_opts opts;
	struct kt_store_writer *writer = NULL;
	struct kt_store_segment_info info;
	struct tl_set set = tl_generate(1500, 0, 0, 0);
	char err[512];
	int rc;

	kt_store_writer_opts_init(&opts);
	opts.block_size = 4096;
	opts.blocks_in_flight = 3;
	opts.io_backend = backend;
	opts.log = &log;
	log_lines = 0;
	rc = kt_store_writer_create(&writer, fx->path, "orders", 3, &opts, err, sizeof(err));
	if (backend == KT_IO_URING && (rc == -ENOSYS || rc == -EPERM || rc == -ENOMEM ||
				       rc == -EOPNOTSUPP)) {
		tl_set_free(&set);
		skip();
	}
	assert_int_equal(rc, 0);
	for (size_t i = 0; i < set.n; i++)
		assert_int_equal(kt_store_writer_append(writer, &set.recs[i].rec, err,
							sizeof(err)), 0);
	assert_int_equal(kt_store_writer_seal(writer, &info, err, sizeof(err)), 0);
	/* raw_bytes counts what the blocks hold, re-encoded ones included. */
	assert_int_equal(kt_store_writer_raw_bytes(writer), info.raw_bytes);
	kt_store_writer_destroy(writer);
	assert_int_equal(info.io_backend, backend);
	/* The back end is logged once, at DEBUG. */
	assert_int_equal(log_lines, 1);
	assert_non_null(strstr(log_last, kt_store_io_backend_name(backend)));
	tl_assert_segment(fx->path, 0, &set, set.n);
	tl_set_free(&set);
}

static void test_segment_writes_through_io_uring(void **state)
{
	write_with_backend(*state, KT_IO_URING);
}

static void test_segment_writes_through_pwrite(void **state)
{
	write_with_backend(*state, KT_IO_PWRITE);
}

/* Appends the same 400 records until the injected full disk stops the
 * writer; returns the error of the append or seal that failed (*in_seal
 * says which), 0 if none did, 1 if the back end is unavailable. */
static int fill_until_enospc(struct fixture *fx, int backend, uint64_t budget, int *in_seal,
			     struct kt_store_segment_info *info, char *err, size_t err_size)
{
	struct kt_store_writer_opts opts;
	struct kt_store_writer *writer = NULL;
	struct tl_set set;
	int rc = 0;

	tl_rng_state = 12345;
	set = tl_generate(400, 0, 0, 0);
	kt_store_writer_opts_init(&opts);
	opts.block_size = 2048;
	opts.io_backend = backend;
	*in_seal = 0;
	if (kt_store_writer_create(&writer, fx->path, "orders", 3, &opts, err, err_size) != 0) {
		tl_set_free(&set);
		return 1;
	}
	kt_io_test_inject_enospc_after(budget);
	for (size_t i = 0; i < set.n && rc == 0; i++)
		rc = kt_store_writer_append(writer, &set.recs[i].rec, err, err_size);
	if (rc == 0) {
		*in_seal = 1;
		rc = kt_store_writer_seal(writer, info, err, err_size);
	}
	/* Once failed, the writer keeps failing with the same error. */
	if (rc)
		assert_int_equal(kt_store_writer_seal(writer, NULL, NULL, 0), rc);
	kt_io_test_inject_enospc_after(UINT64_MAX);
	kt_store_writer_destroy(writer);
	tl_set_free(&set);
	return rc;
}

static void test_segment_fails_cleanly_on_a_full_disk(void **state)
{
	struct fixture *fx = *state;
	struct kt_store_segment_info info;
	char err[512], ipath[600];
	int backends[] = { KT_IO_PWRITE, KT_IO_URING };
	int in_seal;

	for (size_t b = 0; b < 2; b++) {
		int rc;

		/* During appends: the budget runs out in the third block. */
		err[0] = '\0';
		rc = fill_until_enospc(fx, backends[b], 5000, &in_seal, NULL, err, sizeof(err));
		if (rc == 1)
			continue;
		assert_int_equal(rc, -ENOSPC);
		assert_int_equal(in_seal, 0);
		assert_non_null(strstr(err, fx->path));
		/* Nothing is left behind: no segment, no index, no temp file. */
		assert_int_equal(tl_count_files(fx->dir), 0);

		/* During the seal: every block fits, the seek table does not. */
		assert_int_equal(fill_until_enospc(fx, backends[b], UINT64_MAX, &in_seal, &info,
						   err, sizeof(err)), 0);
		assert_int_equal(unlink(fx->path), 0);
		assert_int_equal(kt_store_index_path(fx->path, ipath, sizeof(ipath)), 0);
		assert_int_equal(unlink(ipath), 0);
		rc = fill_until_enospc(fx, backends[b], info.file_size - 100, &in_seal, NULL, err,
				       sizeof(err));
		assert_int_equal(rc, -ENOSPC);
		assert_int_equal(in_seal, 1);
		assert_non_null(strstr(err, fx->path));
		assert_int_equal(tl_count_files(fx->dir), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_segment_round_trips_every_record_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_round_trips_uncompressed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_held_block_outlives_the_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_gives_large_records_their_own_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_round_trips_an_empty_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_rejects_non_increasing_offsets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_destroy_without_seal_removes_the_file, setup, teardown),
		cmocka_unit_test(test_segment_varints_round_trip_and_refuse_bad_encodings),
		cmocka_unit_test_setup_teardown(test_segment_refuses_an_existing_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_rejects_bad_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_rejects_flipped_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_rejects_flipped_byte_uncompressed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_reads_past_damaged_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_recovers_whole_blocks_of_a_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_refuses_newer_version_and_wrong_magic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_seeks_agree_with_a_linear_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_finds_time_in_non_monotonic_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_writes_through_io_uring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_writes_through_pwrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_fails_cleanly_on_a_full_disk, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
