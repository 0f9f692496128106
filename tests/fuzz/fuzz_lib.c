/*
 * fuzz_lib.c - helpers shared by ktape's libFuzzer targets; see fuzz_lib.h.
 */
#include "fuzz_lib.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "kt_store.h"

/* Records of a clean segment remembered for the lookup checks; a longer
 * segment is still read and verified, only its lookups are not compared
 * with a linear scan. */
#define SEEN_MAX 1024

struct seen {
	size_t n;
	int64_t offset[SEEN_MAX];
	int64_t ts[SEEN_MAX];
	size_t block[SEEN_MAX];
};

static char scratch[4096];

static void remove_scratch(void)
{
	if (scratch[0])
		kt_fuzz_remove_tree(scratch);
}

const char *kt_fuzz_scratch_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	if (scratch[0])
		return scratch;
	snprintf(scratch, sizeof(scratch), "%s/kt-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(scratch))
		kt_fuzz_fail("cannot create a scratch directory %s: %s", scratch, strerror(errno));
	atexit(remove_scratch);
	return scratch;
}

void kt_fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("kt_fuzz: invariant broken: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void kt_fuzz_write_file(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t done = 0;

	if (fd < 0)
		kt_fuzz_fail("cannot create %s: %s", path, strerror(errno));
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			kt_fuzz_fail("cannot write %s: %s", path, strerror(errno));
		done += (size_t)n;
	}
	close(fd);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void kt_fuzz_remove_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Little-endian fields, as format/segment.md lays them out.  The fuzz
 * targets keep their own copy instead of the store's private header, so
 * that they check the reader against the spec and not against itself. */
static uint64_t get_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = n; i > 0; i--)
		v = v << 8 | p[i - 1];
	return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (size_t i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

#define SEG_BLOCK_HEADER 72
#define SEG_FOOTER 80
#define SEG_SEEK_HEADER 16
#define SEG_SEEK_ENTRY 64
#define FIX_MAX_BLOCKS 4096

void kt_fuzz_fix_segment_checksums(uint8_t *data, size_t size)
{
	static uint64_t payload_sum[FIX_MAX_BLOCKS];
	size_t pos, blocks = 0, topic_len;
	uint64_t seek, n;
	uint8_t *footer;

	if (size < 40 || memcmp(data, "KTAPESEG", 8) != 0)
		return;
	topic_len = (size_t)get_le(data + 20, 2);
	if (32 + topic_len + 8 > size)
		return;
	put_le64(data + 32 + topic_len, XXH3_64bits(data, 32 + topic_len));

	/* Blocks follow the header back to back until something else. */
	pos = 40 + topic_len;
	while (blocks < FIX_MAX_BLOCKS && pos + SEG_BLOCK_HEADER <= size &&
	       memcmp(data + pos, "KTBK", 4) == 0) {
		uint64_t stored = get_le(data + pos + 12, 4);
		uint8_t *payload = data + pos + SEG_BLOCK_HEADER;

		if (stored > size - pos - SEG_BLOCK_HEADER)
			break;
		payload_sum[blocks] = XXH3_64bits(payload, (size_t)stored);
		put_le64(data + pos + 56, payload_sum[blocks]);
		put_le64(data + pos + 64, XXH3_64bits(data + pos, 64));
		blocks++;
		pos += SEG_BLOCK_HEADER + (size_t)stored;
	}

	/* The seek table the footer points at, then the footer. */
	if (size < SEG_FOOTER + SEG_SEEK_HEADER)
		return;
	footer = data + size - SEG_FOOTER;
	seek = get_le(footer, 8);
	if (seek > size - SEG_FOOTER - SEG_SEEK_HEADER || memcmp(data + seek, "KTSK", 4) != 0)
		return;
	n = get_le(data + seek + 8, 8);
	for (uint64_t i = 0; i < n && i < blocks; i++) {
		uint64_t e = seek + SEG_SEEK_HEADER + i * SEG_SEEK_ENTRY;
		if (e + SEG_SEEK_ENTRY > size - SEG_FOOTER)
			break;
		put_le64(data + e + 56, payload_sum[i]);
	}
	put_le64(footer + 56, XXH3_64bits(data + seek, size - SEG_FOOTER - (size_t)seek));
	put_le64(footer + 64, XXH3_64bits(footer, 64));
}

void kt_fuzz_fix_index_checksums(uint8_t *data, size_t size)
{
	uint64_t n;

	if (size < 48 || memcmp(data, "KTAPEIDX", 8) != 0)
		return;
	put_le64(data + 40, XXH3_64bits(data, 40));
	n = get_le(data + 16, 8);
	if (size >= 56 && n <= (size - 56) / 48)
		put_le64(data + 48 + 48 * n, XXH3_64bits(data + 48, (size_t)(48 * n)));
}

/* Every failing call must say what went wrong: an empty errstr is the
 * "unclear message" the project promises never to give. */
static void check_failure(const char *what, int rc, const char *errstr)
{
	if (rc >= 0)
		return;
	if (errstr[0] == '\0')
		kt_fuzz_fail("%s failed with %d (%s) but left errstr empty", what, rc, kt_strerror(rc));
}

/* Reads every byte a record points to, so that AddressSanitizer notices a
 * view that reaches outside its block. */
static uint64_t touch_record(const struct kt_record *rec)
{
	const unsigned char *p;
	uint64_t sum = (uint64_t)rec->offset ^ (uint64_t)rec->timestamp;

	if (rec->ts_type < 0 || rec->ts_type > KT_TS_NONE)
		kt_fuzz_fail("record at offset %" PRId64 " has ts_type %d", rec->offset, rec->ts_type);
	for (p = rec->key; p && p < (const unsigned char *)rec->key + rec->key_len; p++)
		sum += *p;
	for (p = rec->value; p && p < (const unsigned char *)rec->value + rec->value_len; p++)
		sum += *p;
	if (rec->header_count && !rec->headers)
		kt_fuzz_fail("record at offset %" PRId64 " has %zu headers and no array",
			     rec->offset, rec->header_count);
	for (size_t h = 0; h < rec->header_count; h++) {
		const struct kt_header *hd = &rec->headers[h];
		if (!hd->name)
			kt_fuzz_fail("record at offset %" PRId64 ": header %zu has a null name",
				     rec->offset, h);
		for (p = (const unsigned char *)hd->name;
		     p < (const unsigned char *)hd->name + hd->name_len; p++)
			sum += *p;
		for (p = hd->value; p && p < (const unsigned char *)hd->value + hd->value_len; p++)
			sum += *p;
	}
	return sum;
}

/* Reads to the end.  With strict set (the segment verified clean) every
 * record must lie inside its block's bounds, offsets must rise, and the
 * count must be the footer's; the records are remembered in seen. */
static void read_all(struct kt_store_reader *reader, int strict, struct seen *seen)
{
	const struct kt_store_segment_info *info = kt_store_reader_info(reader);
	const struct kt_record *rec;
	char errstr[512] = "";
	uint64_t n = 0;
	int64_t prev = INT64_MIN;
	volatile uint64_t sink = 0;
	int rc;

	while ((rc = kt_store_reader_next(reader, &rec, errstr, sizeof(errstr))) == 1) {
		size_t bi = kt_store_reader_current_block(reader);
		const struct kt_store_block_info *b = kt_store_reader_block(reader, bi);

		sink += touch_record(rec);
		if (!b)
			kt_fuzz_fail("record at offset %" PRId64 " came from block %zu of %" PRIu64,
				     rec->offset, bi, info->block_count);
		if (strict) {
			if (n > 0 && rec->offset <= prev)
				kt_fuzz_fail("clean segment: offset %" PRId64 " after %" PRId64,
					     rec->offset, prev);
			if (rec->offset < b->first_offset || rec->offset > b->last_offset ||
			    rec->timestamp < b->min_ts || rec->timestamp > b->max_ts)
				kt_fuzz_fail("clean segment: record at offset %" PRId64
					     " lies outside block %zu's bounds", rec->offset, bi);
			if (seen->n < SEEN_MAX) {
				seen->offset[seen->n] = rec->offset;
				seen->ts[seen->n] = rec->timestamp;
				seen->block[seen->n] = bi;
			}
			seen->n++;
		}
		prev = rec->offset;
		n++;
		errstr[0] = '\0';
	}
	(void)sink;
	check_failure("next", rc, errstr);
	if (rc > 1)
		kt_fuzz_fail("next returned %d", rc);
	if (strict && (rc != 0 || n != info->record_count))
		kt_fuzz_fail("clean segment: read %" PRIu64 " records then %d (%s), footer says %" PRIu64,
			     n, rc, errstr, info->record_count);
}

/* One lookup on a clean segment: find_* names the block of the first
 * record a linear scan finds, and seek_* then next() returns that record. */
static void check_lookup(struct kt_store_reader *reader, const struct seen *seen, int by_time,
			 int64_t key)
{
	const struct kt_record *rec = NULL;
	char errstr[512] = "";
	size_t i = 0, block = SIZE_MAX;
	int rc;

	while (i < seen->n && (by_time ? seen->ts[i] : seen->offset[i]) < key)
		i++;
	rc = by_time ? kt_store_reader_find_time(reader, key, &block)
		     : kt_store_reader_find_offset(reader, key, &block);
	if (i == seen->n ? rc != KT_ENOTFOUND : (rc != 0 || block != seen->block[i]))
		kt_fuzz_fail("find_%s(%" PRId64 ") gave %d block %zu, a scan finds record %zu",
			     by_time ? "time" : "offset", key, rc, block, i);
	rc = by_time ? kt_store_reader_seek_time(reader, key, errstr, sizeof(errstr))
		     : kt_store_reader_seek_offset(reader, key, errstr, sizeof(errstr));
	if (rc != 0)
		kt_fuzz_fail("seek_%s(%" PRId64 ") on a clean segment failed: %s",
			     by_time ? "time" : "offset", key, errstr);
	rc = kt_store_reader_next(reader, &rec, errstr, sizeof(errstr));
	if (i == seen->n ? rc != 0 : (rc != 1 || rec->offset != seen->offset[i]))
		kt_fuzz_fail("after seek_%s(%" PRId64 ") next gave %d (offset %" PRId64
			     "), a scan finds record %zu", by_time ? "time" : "offset", key, rc,
			     rc == 1 ? rec->offset : -1, i);
}

/* Lookups on any segment, damaged or not: they may fail, but clearly. */
static void probe_lookups(struct kt_store_reader *reader, int64_t key)
{
	const struct kt_record *rec;
	char errstr[512] = "";
	size_t block;
	int rc;

	(void)kt_store_reader_find_offset(reader, key, &block);
	(void)kt_store_reader_find_time(reader, key, &block);
	rc = kt_store_reader_seek_offset(reader, key, errstr, sizeof(errstr));
	check_failure("seek_offset", rc, errstr);
	if (rc == 0) {
		rc = kt_store_reader_next(reader, &rec, errstr, sizeof(errstr));
		check_failure("next after seek_offset", rc, errstr);
		if (rc == 1 && rec->offset < key)
			kt_fuzz_fail("seek_offset(%" PRId64 ") then next gave offset %" PRId64,
				     key, rec->offset);
	}
	errstr[0] = '\0';
	rc = kt_store_reader_seek_time(reader, key, errstr, sizeof(errstr));
	check_failure("seek_time", rc, errstr);
	if (rc == 0) {
		rc = kt_store_reader_next(reader, &rec, errstr, sizeof(errstr));
		check_failure("next after seek_time", rc, errstr);
	}
}

void kt_fuzz_exercise_segment(const char *path, unsigned flags)
{
	static struct seen seen;
	struct kt_store_reader *reader = NULL;
	struct kt_store_segment_info info;
	struct kt_store_read_stats stats;
	const struct kt_record *rec;
	char errstr[512] = "";
	uint64_t bad_blocks = 0;
	int rc;

	rc = kt_store_reader_open(&reader, path, flags, errstr, sizeof(errstr));
	check_failure("open", rc, errstr);
	if (rc != 0) {
		if (reader)
			kt_fuzz_fail("open failed with %d but returned a reader", rc);
		return;
	}
	info = *kt_store_reader_info(reader);
	if (strnlen(info.topic, sizeof(info.topic)) == sizeof(info.topic))
		kt_fuzz_fail("the topic name is not NUL-terminated");
	for (uint64_t i = 0; i < info.block_count; i++)
		if (!kt_store_reader_block(reader, i))
			kt_fuzz_fail("block %" PRIu64 " of %" PRIu64 " is NULL", i, info.block_count);
	if (kt_store_reader_block(reader, info.block_count))
		kt_fuzz_fail("block %" PRIu64 " past the end is not NULL", info.block_count);

	read_all(reader, 0, NULL);

	/* verify leaves the reader at the start, so a clean segment is read
	 * again under the strict checks. */
	rc = kt_store_reader_verify(reader, &bad_blocks, errstr, sizeof(errstr));
	check_failure("verify", rc, errstr);
	if (rc == 0 && bad_blocks != 0)
		kt_fuzz_fail("verify is clean but counted %" PRIu64 " bad blocks", bad_blocks);
	if (rc == 0 && !info.sealed)
		kt_fuzz_fail("verify is clean on an unsealed (recovered) segment");
	memset(&seen, 0, sizeof(seen));
	if (rc == 0) {
		read_all(reader, 1, &seen);
		if (seen.n <= SEEN_MAX) {
			for (size_t r = 0; r < seen.n; r += 1 + seen.n / 8) {
				check_lookup(reader, &seen, 0, seen.offset[r]);
				check_lookup(reader, &seen, 0, seen.offset[r] + (seen.offset[r] < INT64_MAX));
				check_lookup(reader, &seen, 1, seen.ts[r]);
				check_lookup(reader, &seen, 1, seen.ts[r] + (seen.ts[r] < INT64_MAX));
			}
			check_lookup(reader, &seen, 0, INT64_MIN);
			check_lookup(reader, &seen, 0, INT64_MAX);
			check_lookup(reader, &seen, 1, INT64_MIN);
			check_lookup(reader, &seen, 1, INT64_MAX);
		}
	}

	probe_lookups(reader, info.first_offset);
	probe_lookups(reader, info.last_offset);
	probe_lookups(reader, info.min_ts);
	probe_lookups(reader, info.max_ts);
	probe_lookups(reader, INT64_MIN);
	probe_lookups(reader, INT64_MAX);
	for (uint64_t i = 0; i <= info.block_count && i < 64; i++) {
		errstr[0] = '\0';
		rc = kt_store_reader_seek_block(reader, (size_t)i, errstr, sizeof(errstr));
		check_failure("seek_block", rc, errstr);
		if (rc == 0) {
			rc = kt_store_reader_next(reader, &rec, errstr, sizeof(errstr));
			check_failure("next after seek_block", rc, errstr);
			if (rc == 1 && kt_store_reader_current_block(reader) < i)
				kt_fuzz_fail("seek_block(%" PRIu64 ") then next came from block %zu",
					     i, kt_store_reader_current_block(reader));
		}
	}
	kt_store_reader_stats(reader, &stats);
	kt_store_reader_destroy(reader);
}
