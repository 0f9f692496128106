/* Unit tests of the restore offset map (format/restore.md section 4):
 * building runs, translating committed offsets, and the file encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kt_common.h"
#include "offsetmap_priv.h"

/* Builds a map with one contiguous section, one section with a source
 * offset gap (compaction), and one fed by two source partitions (key
 * partitioning). */
static struct kt_replay_omap *sample_map(void)
{
	struct kt_replay_omap *map = kt_replay_omap_create();
	long a, b, c;

	assert_non_null(map);
	/* Added out of order on purpose: encoding sorts sections. */
	b = kt_replay_omap_add_section(map, "orders", "src.orders", 1, 500);
	a = kt_replay_omap_add_section(map, "orders", "src.orders", 0, 0);
	c = kt_replay_omap_add_section(map, "keyed", "src.keyed", 0, 10);
	assert_true(a >= 0 && b >= 0 && c >= 0);
	for (int64_t o = 100; o < 1100; o++)
		assert_int_equal(kt_replay_omap_append(&map->sections[a], 0, o, o - 100), 0);
	for (int64_t o = 0; o < 10; o++)
		assert_int_equal(kt_replay_omap_append(&map->sections[b], 1, o, 500 + o), 0);
	for (int64_t o = 20; o < 30; o++) /* offsets 10..19 compacted away */
		assert_int_equal(kt_replay_omap_append(&map->sections[b], 1, o, 500 + o - 10), 0);
	/* Interleaved sources: p0 offsets 0,1 then p1 offset 7, then p0 2. */
	assert_int_equal(kt_replay_omap_append(&map->sections[c], 0, 0, 10), 0);
	assert_int_equal(kt_replay_omap_append(&map->sections[c], 0, 1, 11), 0);
	assert_int_equal(kt_replay_omap_append(&map->sections[c], 1, 7, 12), 0);
	assert_int_equal(kt_replay_omap_append(&map->sections[c], 0, 2, 13), 0);
	return map;
}

static void test_offsetmap_contiguous_partition_is_one_run(void **state)
{
	struct kt_replay_omap *map = sample_map();
	const struct kt_replay_omap_section *s = kt_replay_omap_find(map, "orders", 0);

	(void)state;
	assert_non_null(s);
	assert_int_equal(s->run_count, 1);
	assert_int_equal(s->record_count, 1000);
	assert_int_equal(s->end_offset, 1000);
	s = kt_replay_omap_find(map, "orders", 1);
	assert_int_equal(s->run_count, 2);
	s = kt_replay_omap_find(map, "keyed", 0);
	assert_int_equal(s->run_count, 3);
	kt_replay_omap_destroy(map);
}

static void test_offsetmap_rejects_acks_out_of_order(void **state)
{
	struct kt_replay_omap *map = kt_replay_omap_create();
	long a = kt_replay_omap_add_section(map, "t", "t", 0, 0);

	(void)state;
	assert_int_equal(kt_replay_omap_append(&map->sections[a], 0, 5, 3), 0);
	assert_int_equal(kt_replay_omap_append(&map->sections[a], 0, 6, 3), KT_ERANGE);
	assert_int_equal(kt_replay_omap_append(&map->sections[a], 0, -1, 9), KT_ERANGE);
	kt_replay_omap_destroy(map);
}

static void test_offsetmap_translates_committed_offsets(void **state)
{
	struct kt_replay_omap *map = sample_map();
	int64_t t = -1;

	(void)state;
	/* Exact hit inside a run. */
	assert_int_equal(kt_replay_omap_translate(kt_replay_omap_find(map, "orders", 0), 0, 150, &t), 0);
	assert_int_equal(t, 50);
	/* Before the first restored record: the first record. */
	assert_int_equal(kt_replay_omap_translate(kt_replay_omap_find(map, "orders", 0), 0, 3, &t), 0);
	assert_int_equal(t, 0);
	/* Inside a compacted gap: the first record after it. */
	assert_int_equal(kt_replay_omap_translate(kt_replay_omap_find(map, "orders", 1), 1, 15, &t), 0);
	assert_int_equal(t, 510);
	/* Everything consumed: the end. */
	assert_int_equal(kt_replay_omap_translate(kt_replay_omap_find(map, "orders", 1), 1, 30, &t), 1);
	assert_int_equal(t, 520);
	/* Interleaved sources are told apart. */
	assert_int_equal(kt_replay_omap_translate(kt_replay_omap_find(map, "keyed", 0), 0, 2, &t), 0);
	assert_int_equal(t, 13);
	assert_int_equal(kt_replay_omap_translate(kt_replay_omap_find(map, "keyed", 0), 1, 0, &t), 0);
	assert_int_equal(t, 12);
	assert_int_equal(kt_replay_omap_translate(kt_replay_omap_find(map, "keyed", 0), 5, 0, &t),
			 KT_ENOTFOUND);
	kt_replay_omap_destroy(map);
}

static void test_offsetmap_round_trips_through_its_encoding(void **state)
{
	struct kt_replay_omap *map = sample_map(), *back = NULL;
	char errstr[256];
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(kt_replay_omap_encode(map, &buf, &len, errstr, sizeof(errstr)), 0);
	/* Compact: 1024 records in six runs take 32 bytes of header and
	 * trailer, three 40-byte section headers, 46 bytes of names and a few
	 * bytes per run; one entry per record would take kilobytes. */
	assert_true(len <= 32 + 3 * 40 + 46 + 6 * 8);
	assert_memory_equal(buf, "KTAPEOFM", 8);
	assert_int_equal(kt_replay_omap_decode(buf, len, "test", &back, errstr, sizeof(errstr)), 0);
	assert_int_equal(back->section_count, 3);
	/* Sorted by topic, then partition. */
	assert_string_equal(back->sections[0].topic, "keyed");
	assert_string_equal(back->sections[1].topic, "orders");
	assert_int_equal(back->sections[1].partition, 0);
	assert_int_equal(back->sections[2].partition, 1);
	for (size_t i = 0; i < map->section_count; i++) {
		const struct kt_replay_omap_section *a = &map->sections[i];
		const struct kt_replay_omap_section *b = kt_replay_omap_find(back, a->topic, a->partition);

		assert_non_null(b);
		assert_string_equal(a->source_topic, b->source_topic);
		assert_int_equal(a->base_offset, b->base_offset);
		assert_int_equal(a->end_offset, b->end_offset);
		assert_int_equal(a->record_count, b->record_count);
		assert_int_equal(a->run_count, b->run_count);
		for (size_t r = 0; r < a->run_count; r++) {
			assert_int_equal(a->runs[r].source_partition, b->runs[r].source_partition);
			assert_int_equal(a->runs[r].source_offset, b->runs[r].source_offset);
			assert_int_equal(a->runs[r].target_offset, b->runs[r].target_offset);
			assert_int_equal(a->runs[r].count, b->runs[r].count);
		}
	}
	free(buf);
	kt_replay_omap_destroy(map);
	kt_replay_omap_destroy(back);
}

static void test_offsetmap_rejects_flipped_byte_and_truncation(void **state)
{
	struct kt_replay_omap *map = sample_map(), *back = NULL;
	char errstr[256];
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(kt_replay_omap_encode(map, &buf, &len, errstr, sizeof(errstr)), 0);
	for (size_t i = 12; i < len; i += 7) {
		buf[i] ^= 0x10;
		assert_int_equal(kt_replay_omap_decode(buf, len, "test", &back, errstr, sizeof(errstr)),
				 KT_ECORRUPT);
		assert_null(back);
		buf[i] ^= 0x10;
	}
	assert_int_equal(kt_replay_omap_decode(buf, 20, "test", &back, errstr, sizeof(errstr)),
			 KT_ETRUNCATED);
	assert_int_equal(kt_replay_omap_decode(buf, len - 1, "test", &back, errstr, sizeof(errstr)),
			 KT_ECORRUPT);
	buf[0] = 'X';
	assert_int_equal(kt_replay_omap_decode(buf, len, "test", &back, errstr, sizeof(errstr)),
			 KT_EMAGIC);
	buf[0] = 'K';
	buf[8] = 2;
	assert_int_equal(kt_replay_omap_decode(buf, len, "test", &back, errstr, sizeof(errstr)),
			 KT_EVERSION);
	assert_non_null(strstr(errstr, "newer"));
	free(buf);
	kt_replay_omap_destroy(map);
}

static void test_offsetmap_writes_and_reads_a_file(void **state)
{
	struct kt_replay_omap *map = sample_map(), *back = NULL;
	char dir[] = "/tmp/kt_omap_XXXXXX", path[256], errstr[256];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/offsets.ktm", dir);
	assert_int_equal(kt_replay_omap_write(map, path, 0600, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_replay_omap_read(path, &back, errstr, sizeof(errstr)), 0);
	assert_int_equal(back->section_count, 3);
	kt_replay_omap_destroy(back);
	unlink(path);
	assert_int_equal(kt_replay_omap_read(path, &back, errstr, sizeof(errstr)), -ENOENT);
	rmdir(dir);
	kt_replay_omap_destroy(map);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offsetmap_contiguous_partition_is_one_run),
		cmocka_unit_test(test_offsetmap_rejects_acks_out_of_order),
		cmocka_unit_test(test_offsetmap_translates_committed_offsets),
		cmocka_unit_test(test_offsetmap_round_trips_through_its_encoding),
		cmocka_unit_test(test_offsetmap_rejects_flipped_byte_and_truncation),
		cmocka_unit_test(test_offsetmap_writes_and_reads_a_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
