/* Unit tests of src/store/scan.c: windows over a partition's chain of
 * segments give exactly what a filter over a full read gives, while loading
 * only the blocks the window needs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kt_store.h"

#define SEGMENTS 4
#define RECORDS_PER_SEGMENT 3000
#define TOTAL (SEGMENTS * RECORDS_PER_SEGMENT)
#define BASE_TS 1700000000000LL

/* What a record is, compactly, for comparing two reads. */
struct seen {
	int64_t offset;
	int64_t timestamp;
	size_t value_len;
	unsigned char first_value_byte;
};

struct fixture {
	char dir[64];
	struct kt_store_repo *repo;
	struct kt_store_snapshot *snap;
	struct kt_store_partition *part;
	struct seen all[TOTAL]; /* a full linear read, in offset order */
	size_t all_count;
	uint64_t blocks_in_partition;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Offsets have gaps (every 7th is missing, as after compaction); times
 * advance 10 ms a record, with jitter when asked, since Kafka timestamps
 * need not be monotonic. */
static int64_t offset_of(size_t i)
{
	return (int64_t)(i + i / 6);
}

static int64_t time_of(size_t i, int jitter)
{
	return BASE_TS + (int64_t)i * 10 + (jitter ? (int64_t)((i * 7919) % 11) * 9 - 45 : 0);
}

static void build(struct fixture *f, int jitter)
{
	char errstr[512] = "", rel[512], abs[PATH_MAX], key[32], value[200];
	struct kt_store_writer_opts opts;
	struct kt_store_topic *topic;
	size_t i = 0;

	snprintf(f->dir, sizeof(f->dir), "/tmp/kt_test_scan_XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	if (kt_store_repo_open(&f->repo, f->dir, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK, 0, errstr, sizeof(errstr)))
		fail_msg("repo: %s", errstr);
	f->snap = kt_store_snapshot_create();
	assert_non_null(f->snap);
	topic = kt_store_snapshot_add_topic(f->snap, "events", 1, 1);
	assert_non_null(topic);
	f->part = kt_store_topic_add_partition(topic, 0);
	assert_non_null(f->part);
	kt_store_writer_opts_init(&opts);
	opts.block_size = 4096; /* many small blocks, so skipping is visible */
	opts.io_backend = KT_IO_PWRITE;
	for (int s = 0; s < SEGMENTS; s++) {
		struct kt_store_writer *writer = NULL;
		struct kt_store_segment_info info;
		if (kt_store_repo_new_segment_path(f->repo, "events", 0, offset_of(i), rel, sizeof(rel), abs, sizeof(abs),
						   errstr, sizeof(errstr)) ||
		    kt_store_writer_create(&writer, abs, "events", 0, &opts, errstr, sizeof(errstr)))
			fail_msg("segment %d: %s", s, errstr);
		for (int r = 0; r < RECORDS_PER_SEGMENT; r++, i++) {
			size_t vlen = 40 + (i * 31) % 120;
			memset(value, 'a' + (int)(i % 26), vlen);
			snprintf(key, sizeof(key), "k%zu", i);
			struct kt_record rec = {
				.offset = offset_of(i), .timestamp = time_of(i, jitter), .ts_type = KT_TS_CREATE,
				.key = key, .key_len = strlen(key), .value = value, .value_len = vlen,
			};
			if (kt_store_writer_append(writer, &rec, errstr, sizeof(errstr)))
				fail_msg("append %zu: %s", i, errstr);
		}
		if (kt_store_writer_seal(writer, &info, errstr, sizeof(errstr)))
			fail_msg("seal: %s", errstr);
		kt_store_writer_destroy(writer);
		struct kt_store_segref ref = {
			.path = rel, .first_offset = info.first_offset, .last_offset = info.last_offset,
			.min_ts = info.min_ts, .max_ts = info.max_ts, .records = info.record_count,
			.raw_bytes = info.raw_bytes, .file_size = info.file_size, .checksum = info.checksum,
		};
		assert_int_equal(kt_store_partition_add_segment(f->part, &ref), 0);
		f->blocks_in_partition += info.block_count;
	}
	f->part->end_offset = offset_of(i - 1) + 1;

	/* The reference: every segment read start to end, no index used. */
	for (size_t s = 0; s < f->part->segment_count; s++) {
		struct kt_store_reader *reader = NULL;
		const struct kt_record *rec;
		int rc;
		assert_int_equal(kt_store_repo_abs_path(f->repo, f->part->segments[s].path, abs, sizeof(abs)), 0);
		if (kt_store_reader_open(&reader, abs, 0, errstr, sizeof(errstr)))
			fail_msg("reader: %s", errstr);
		while ((rc = kt_store_reader_next(reader, &rec, errstr, sizeof(errstr))) == 1) {
			assert_true(f->all_count < TOTAL);
			f->all[f->all_count++] = (struct seen){ rec->offset, rec->timestamp, rec->value_len,
								((const unsigned char *)rec->value)[0] };
		}
		assert_int_equal(rc, 0);
		kt_store_reader_destroy(reader);
	}
	assert_int_equal(f->all_count, TOTAL);
}

static int setup_jittered(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	build(f, 1);
	*state = f;
	return 0;
}

static int setup_ordered(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	build(f, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kt_store_snapshot_destroy(f->snap);
	kt_store_repo_destroy(f->repo);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static int in_range(const struct kt_store_range *r, const struct seen *s)
{
	return s->offset >= r->from_offset && s->offset < r->to_offset &&
	       s->timestamp >= r->from_time && s->timestamp < r->to_time;
}

/* Scans the window and checks it yields exactly the reference records
 * inside it, in order; returns the scan's stats. */
static void check_window(struct fixture *f, const struct kt_store_range *r, struct kt_store_read_stats *stats,
			 uint64_t *blocks_total, size_t *yielded)
{
	struct kt_store_scan *scan = NULL;
	const struct kt_record *rec;
	char errstr[512] = "";
	size_t j = 0, n = 0;
	int rc;

	struct kt_store_range unbounded;

	if (kt_store_scan_create(&scan, f->repo, f->part, r, errstr, sizeof(errstr)))
		fail_msg("scan: %s", errstr);
	/* A NULL range means unbounded: filter the reference accordingly. */
	kt_store_range_init(&unbounded);
	if (!r)
		r = &unbounded;
	while ((rc = kt_store_scan_next(scan, &rec, errstr, sizeof(errstr))) == 1) {
		while (j < f->all_count && !in_range(r, &f->all[j]))
			j++;
		if (j == f->all_count)
			fail_msg("scan yielded offset %lld, which the filter does not", (long long)rec->offset);
		assert_int_equal(rec->offset, f->all[j].offset);
		assert_int_equal(rec->timestamp, f->all[j].timestamp);
		assert_int_equal(rec->value_len, f->all[j].value_len);
		assert_int_equal(((const unsigned char *)rec->value)[0], f->all[j].first_value_byte);
		j++;
		n++;
	}
	if (rc != 0)
		fail_msg("scan failed: %s", errstr);
	while (j < f->all_count && !in_range(r, &f->all[j]))
		j++;
	if (j != f->all_count)
		fail_msg("scan missed offset %lld", (long long)f->all[j].offset);
	/* At the end it stays at the end. */
	assert_int_equal(kt_store_scan_next(scan, &rec, errstr, sizeof(errstr)), 0);
	kt_store_scan_stats(scan, stats, blocks_total);
	kt_store_scan_destroy(scan);
	if (yielded)
		*yielded = n;
}

static void test_scan_offset_windows_match_a_filtered_full_read(void **state)
{
	struct fixture *f = *state;
	struct kt_store_read_stats stats;
	uint64_t total;
	size_t n;
	int64_t seg1_first = f->part->segments[1].first_offset;
	const int64_t bounds[][2] = {
		{ INT64_MIN, INT64_MAX }, { 0, 1 }, { 5, 6 } /* a gap: nothing */, { 100, 2000 },
		{ seg1_first - 3, seg1_first + 3 } /* across a segment boundary */,
		{ 1234, 11000 }, { offset_of(TOTAL - 1), INT64_MAX }, { offset_of(TOTAL - 1) + 1, INT64_MAX },
		{ -100, 3 }, { 500, 500 }, { 900, 100 },
	};

	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		struct kt_store_range r;
		kt_store_range_init(&r);
		r.from_offset = bounds[i][0];
		r.to_offset = bounds[i][1];
		check_window(f, &r, &stats, &total, &n);
	}
	/* A narrow offset window opens one segment and loads a block or two. */
	struct kt_store_range narrow;
	kt_store_range_init(&narrow);
	narrow.from_offset = 5000;
	narrow.to_offset = 5020;
	check_window(f, &narrow, &stats, &total, &n);
	assert_int_equal(n, 17); /* 20 offsets, 3 of them gaps */
	assert_true(total < f->blocks_in_partition / 2);
	assert_true(stats.blocks_loaded >= 1 && stats.blocks_loaded <= 2);
	/* The unbounded window is everything, through every block once. */
	check_window(f, NULL, &stats, &total, &n);
	assert_int_equal(n, TOTAL);
	assert_int_equal(total, f->blocks_in_partition);
	assert_int_equal(stats.blocks_loaded, f->blocks_in_partition);
}

static void test_scan_time_windows_match_a_filtered_full_read(void **state)
{
	struct fixture *f = *state;
	struct kt_store_read_stats stats;
	uint64_t total;
	size_t n;
	const int64_t bounds[][4] = {
		{ INT64_MIN, INT64_MAX, BASE_TS + 5000, BASE_TS + 5100 },
		{ INT64_MIN, INT64_MAX, BASE_TS + 29990, BASE_TS + 30100 }, /* around a segment boundary */
		{ INT64_MIN, INT64_MAX, INT64_MIN, BASE_TS },
		{ INT64_MIN, INT64_MAX, BASE_TS + 119000, INT64_MAX },
		{ INT64_MIN, INT64_MAX, BASE_TS + 200000, INT64_MAX }, /* after everything */
		{ 3000, 9000, BASE_TS + 10000, BASE_TS + 90000 },       /* both bounds */
		{ 3000, 3500, BASE_TS + 50000, BASE_TS + 90000 },       /* disjoint: nothing */
	};

	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		struct kt_store_range r = { bounds[i][0], bounds[i][1], bounds[i][2], bounds[i][3] };
		check_window(f, &r, &stats, &total, &n);
		if (i == 6)
			assert_int_equal(n, 0);
		if (i == 0)
			assert_true(n > 0);
	}
}

static void test_scan_narrow_time_window_loads_few_blocks(void **state)
{
	struct fixture *f = *state;
	struct kt_store_read_stats stats;
	uint64_t total;
	size_t n;
	struct kt_store_range r;
	/* 1% of the partition's time span, inside the third segment. */
	int64_t span = time_of(TOTAL - 1, 0) - BASE_TS;

	kt_store_range_init(&r);
	r.from_time = BASE_TS + span * 60 / 100;
	r.to_time = r.from_time + span / 100;
	check_window(f, &r, &stats, &total, &n);
	assert_true(n >= TOTAL / 100 - 1 && n <= TOTAL / 100 + 1);
	/* Only the one segment holding the window was opened... */
	assert_true(total < f->blocks_in_partition / 2);
	/* ...and in it only the blocks the window touches, about 1% of the
	 * partition's, plus one at each edge. */
	print_message("narrow window: %llu of %llu blocks loaded, %zu records\n",
		      (unsigned long long)stats.blocks_loaded, (unsigned long long)f->blocks_in_partition, n);
	assert_true(stats.blocks_loaded >= 1);
	assert_true(stats.blocks_loaded <= f->blocks_in_partition / 100 + 2);
}

static void test_scan_rejects_a_segment_the_manifest_does_not_name(void **state)
{
	struct fixture *f = *state;
	struct kt_store_scan *scan = NULL;
	const struct kt_record *rec;
	char errstr[512] = "", *saved;
	uint64_t sum = f->part->segments[0].checksum;

	/* A different file at the path (its checksum differs) is damage. */
	f->part->segments[0].checksum = sum ^ 1;
	assert_int_equal(kt_store_scan_create(&scan, f->repo, f->part, NULL, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_scan_next(scan, &rec, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_non_null(strstr(errstr, "checksum"));
	kt_store_scan_destroy(scan);
	f->part->segments[0].checksum = sum;

	/* A path out of the repository is never opened. */
	saved = f->part->segments[0].path;
	f->part->segments[0].path = "../../etc/passwd";
	assert_int_equal(kt_store_scan_create(&scan, f->repo, f->part, NULL, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_scan_next(scan, &rec, errstr, sizeof(errstr)), KT_ECORRUPT);
	kt_store_scan_destroy(scan);
	f->part->segments[0].path = saved;
	kt_store_scan_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scan_offset_windows_match_a_filtered_full_read, setup_jittered, teardown),
		cmocka_unit_test_setup_teardown(test_scan_time_windows_match_a_filtered_full_read, setup_jittered, teardown),
		cmocka_unit_test_setup_teardown(test_scan_narrow_time_window_loads_few_blocks, setup_ordered, teardown),
		cmocka_unit_test_setup_teardown(test_scan_rejects_a_segment_the_manifest_does_not_name, setup_jittered,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
