/*
 * test_store_vectors - runs the ktape reader over every file of
 * format/vectors/ and asserts the outcome format/vectors/vectors.json states.
 *
 * The vectors come from tests/vectors/mkvectors.c, an encoder written from
 * the spec alone, so this test is where the reader and the spec meet: a
 * failure here means src/store and the format documents disagree.  A disagreement
 * already written down in format/vectors/DISCREPANCIES.md is marked
 * "known_discrepancy" in vectors.json and reported as skipped, not failed;
 * any other disagreement fails.
 *
 * Each vector is one cmocka test named after it.  For a segment it opens
 * the file with and without KT_STORE_OPEN_RECOVER and, when the open must
 * succeed, compares kt_store_reader_info, every record returned (offset,
 * timestamp and its type, key, value, headers, null versus empty), the code
 * that ends the read, and kt_store_reader_verify on a fresh reader.  For a
 * repository it copies the vector's files into a temporary directory (the
 * store may create its lock and tmp/ there) and checks kt_store_repo_open,
 * kt_store_snapshot_from_json and kt_store_repo_load_snapshot.
 *
 * KT_VECTORS_VERBOSE=1 prints every error message the reader gives, to
 * check by eye that each names the file, block and byte offset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "kt_store.h"

/* The state of one vector's test: its JSON entry and the first mismatch. */
struct vec_case {
	json_t *entry;   /* borrowed from the loaded vectors.json */
	char msg[1024];  /* first mismatch, empty while everything agrees */
};

static json_t *vectors;      /* the whole vectors.json */
static char vectors_dir[4096];

/* Records the first mismatch and returns -1, so checks read
 * `if (x != y) return mismatch(vc, ...)`. */
static int mismatch(struct vec_case *vc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int mismatch(struct vec_case *vc, const char *fmt, ...)
{
	va_list ap;

	if (vc->msg[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(vc->msg, sizeof(vc->msg), fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* The KT_E* name (or "OK") of a return code, as vectors.json spells it. */
static const char *code_name(int rc)
{
	static __thread char other[32];

	switch (rc) {
	case 0: return "OK";
	case KT_ECORRUPT: return "KT_ECORRUPT";
	case KT_ETRUNCATED: return "KT_ETRUNCATED";
	case KT_EVERSION: return "KT_EVERSION";
	case KT_EMAGIC: return "KT_EMAGIC";
	case KT_ENOTFOUND: return "KT_ENOTFOUND";
	case KT_ELOCKED: return "KT_ELOCKED";
	case KT_ERANGE: return "KT_ERANGE";
	case KT_EUSAGE: return "KT_EUSAGE";
	case KT_EEXIST: return "KT_EEXIST";
	default: break;
	}
	snprintf(other, sizeof(other), "code %d (%s)", rc, kt_strerror(rc));
	return other;
}

static const char *jstr(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

static int64_t jint(const json_t *obj, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(obj, key));
}

/* Compares bytes (p, n; p NULL meaning null) with the JSON form: null or a
 * lowercase hex string. */
static int bytes_equal(const json_t *want, const void *p, size_t n)
{
	const char *hex;
	const unsigned char *b = p;

	if (json_is_null(want))
		return p == NULL;
	if (!p)
		return 0;
	hex = json_string_value(want);
	if (!hex || strlen(hex) != 2 * n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1 || v != b[i])
			return 0;
	}
	return 1;
}

static int check_record(struct vec_case *vc, const char *mode, size_t i,
			const json_t *want, const struct kt_record *rec)
{
	const json_t *headers = json_object_get(want, "headers");

	if (rec->offset != jint(want, "offset"))
		return mismatch(vc, "%s: record %zu: offset %" PRId64 ", expected %" PRId64,
				mode, i, rec->offset, jint(want, "offset"));
	if (rec->timestamp != jint(want, "timestamp") || rec->ts_type != (int)jint(want, "ts_type"))
		return mismatch(vc, "%s: record %zu (offset %" PRId64 "): timestamp %" PRId64
				" type %d, expected %" PRId64 " type %d", mode, i, rec->offset,
				rec->timestamp, rec->ts_type, jint(want, "timestamp"),
				(int)jint(want, "ts_type"));
	if (!bytes_equal(json_object_get(want, "key"), rec->key, rec->key_len))
		return mismatch(vc, "%s: record %zu (offset %" PRId64 "): key differs (%s, %zu bytes)",
				mode, i, rec->offset, rec->key ? "non-null" : "null", rec->key_len);
	if (!bytes_equal(json_object_get(want, "value"), rec->value, rec->value_len))
		return mismatch(vc, "%s: record %zu (offset %" PRId64 "): value differs (%s, %zu bytes)",
				mode, i, rec->offset, rec->value ? "non-null" : "null", rec->value_len);
	if (rec->header_count != json_array_size(headers))
		return mismatch(vc, "%s: record %zu (offset %" PRId64 "): %zu headers, expected %zu",
				mode, i, rec->offset, rec->header_count, json_array_size(headers));
	for (size_t h = 0; h < rec->header_count; h++) {
		const json_t *wh = json_array_get(headers, h);
		const struct kt_header *hd = &rec->headers[h];
		if (!hd->name || !bytes_equal(json_object_get(wh, "name"), hd->name, hd->name_len))
			return mismatch(vc, "%s: record %zu (offset %" PRId64 "): header %zu name differs",
					mode, i, rec->offset, h);
		if (!bytes_equal(json_object_get(wh, "value"), hd->value, hd->value_len))
			return mismatch(vc, "%s: record %zu (offset %" PRId64 "): header %zu value differs (%s, %zu bytes)",
					mode, i, rec->offset, h, hd->value ? "non-null" : "null",
					hd->value_len);
	}
	return 0;
}

static int check_info(struct vec_case *vc, const char *mode, const json_t *want,
		      const struct kt_store_segment_info *info)
{
	static const struct {
		const char *key;
		size_t off;
		int is_signed;
	} fields[] = {
		{ "block_count", offsetof(struct kt_store_segment_info, block_count), 0 },
		{ "record_count", offsetof(struct kt_store_segment_info, record_count), 0 },
		{ "raw_bytes", offsetof(struct kt_store_segment_info, raw_bytes), 0 },
		{ "file_size", offsetof(struct kt_store_segment_info, file_size), 0 },
		{ "first_offset", offsetof(struct kt_store_segment_info, first_offset), 1 },
		{ "last_offset", offsetof(struct kt_store_segment_info, last_offset), 1 },
		{ "min_ts", offsetof(struct kt_store_segment_info, min_ts), 1 },
		{ "max_ts", offsetof(struct kt_store_segment_info, max_ts), 1 },
	};
	const char *sum = json_string_value(json_object_get(want, "checksum"));

	if (strcmp(info->topic, jstr(want, "topic")) != 0 ||
	    info->partition != (int32_t)jint(want, "partition"))
		return mismatch(vc, "%s: info topic %s partition %d, expected %s %d", mode,
				info->topic, info->partition, jstr(want, "topic"),
				(int)jint(want, "partition"));
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		int64_t got;
		if (fields[i].is_signed)
			memcpy(&got, (const char *)info + fields[i].off, sizeof(got));
		else {
			uint64_t u;
			memcpy(&u, (const char *)info + fields[i].off, sizeof(u));
			got = (int64_t)u;
		}
		if (got != jint(want, fields[i].key))
			return mismatch(vc, "%s: info %s %" PRId64 ", expected %" PRId64, mode,
					fields[i].key, got, jint(want, fields[i].key));
	}
	if (!info->sealed != !json_is_true(json_object_get(want, "sealed")))
		return mismatch(vc, "%s: info sealed %d, expected %s", mode, info->sealed,
				json_is_true(json_object_get(want, "sealed")) ? "sealed" : "unsealed");
	if (sum) {
		char got[17];
		snprintf(got, sizeof(got), "%016" PRIx64, info->checksum);
		if (strcmp(got, sum) != 0)
			return mismatch(vc, "%s: info checksum %s, expected %s (XXH3-64 of the seek table)",
					mode, got, sum);
	}
	return 0;
}

/* Where each record of a fully read segment was, for the lookup checks. */
#define SEEN_MAX 64
struct seen {
	size_t n;
	int64_t offset[SEEN_MAX];
	int64_t ts[SEEN_MAX];
	size_t block[SEEN_MAX];
};

/* After a damaged block, the blocks after it stay readable (segment.md
 * section 7): seek to the next one and read the rest, which are the last
 * resume_records of the vector's records. */
static int check_resume(struct vec_case *vc, const char *mode, struct kt_store_reader *reader,
			const json_t *want, const json_t *records)
{
	size_t block = (size_t)jint(want, "resume_block");
	size_t expected = (size_t)jint(want, "resume_records");
	size_t first = json_array_size(records) - expected, n = 0;
	const struct kt_record *rec;
	char errstr[512] = "";
	int rc;

	rc = kt_store_reader_seek_block(reader, block, errstr, sizeof(errstr));
	if (rc != 0)
		return mismatch(vc, "%s: seek_block(%zu) past the damaged block gave %s (%s)", mode,
				block, code_name(rc), errstr);
	while ((rc = kt_store_reader_next(reader, &rec, errstr, sizeof(errstr))) == 1) {
		if (n >= expected)
			return mismatch(vc, "%s: from block %zu read returned more than %zu records",
					mode, block, expected);
		if (check_record(vc, mode, first + n, json_array_get(records, first + n), rec) != 0)
			return -1;
		n++;
	}
	if (rc != 0 || n != expected)
		return mismatch(vc, "%s: from block %zu read returned %zu records then %s (%s), expected %zu then the end",
				mode, block, n, code_name(rc), errstr, expected);
	return 0;
}

/* Reads every record, comparing with the vector's record set, and checks
 * the code that ends the read (and, after a damaged block, that the blocks
 * after it are still readable). */
static int check_read(struct vec_case *vc, const char *mode, struct kt_store_reader *reader,
		      const json_t *want, const json_t *records, struct seen *seen)
{
	size_t expected = (size_t)jint(want, "records"), n = 0;
	const struct kt_record *rec;
	char errstr[512] = "";
	int rc;

	while ((rc = kt_store_reader_next(reader, &rec, errstr, sizeof(errstr))) == 1) {
		if (n >= expected || n >= json_array_size(records))
			return mismatch(vc, "%s: read returned a record at offset %" PRId64
					" beyond the %zu expected", mode, rec->offset, expected);
		if (check_record(vc, mode, n, json_array_get(records, n), rec) != 0)
			return -1;
		if (n < SEEN_MAX) {
			seen->offset[n] = rec->offset;
			seen->ts[n] = rec->timestamp;
			seen->block[n] = kt_store_reader_current_block(reader);
		}
		n++;
		seen->n = n;
	}
	if (n != expected)
		return mismatch(vc, "%s: read returned %zu records then %s (%s), expected %zu then %s",
				mode, n, code_name(rc), errstr, expected, jstr(want, "read"));
	if (rc < 0 && getenv("KT_VECTORS_VERBOSE"))
		print_message("%s: read: %s\n", mode, errstr);
	if (strcmp(code_name(rc), jstr(want, "read")) != 0)
		return mismatch(vc, "%s: after %zu records read ended with %s (%s), expected %s",
				mode, n, code_name(rc), errstr, jstr(want, "read"));
	if (rc < 0 && errstr[0] == '\0')
		return mismatch(vc, "%s: read failed with %s but left errstr empty", mode,
				code_name(rc));
	if (rc < 0 && json_object_get(want, "resume_block"))
		return check_resume(vc, mode, reader, want, records);
	return 0;
}

/* The first record (in offset order) with offset >= o, or with ts >= t:
 * segment.md 5.1 defines both lookups as what a linear scan finds. */
static size_t first_at_offset(const struct seen *seen, int64_t o)
{
	size_t i = 0;

	while (i < seen->n && seen->offset[i] < o)
		i++;
	return i;
}

static size_t first_at_time(const struct seen *seen, int64_t t)
{
	size_t i = 0;

	while (i < seen->n && seen->ts[i] < t)
		i++;
	return i;
}

/* One lookup: find_* must name the block of record i (or KT_ENOTFOUND when
 * i == n), and seek_* then next() must return record i (or the end). */
static int check_one_lookup(struct vec_case *vc, const char *mode, struct kt_store_reader *reader,
			    const struct seen *seen, int by_time, int64_t key, size_t i)
{
	const char *what = by_time ? "time" : "offset";
	const struct kt_record *rec = NULL;
	char errstr[512] = "";
	size_t block = SIZE_MAX;
	int rc;

	rc = by_time ? kt_store_reader_find_time(reader, key, &block)
		     : kt_store_reader_find_offset(reader, key, &block);
	if (i == seen->n ? rc != KT_ENOTFOUND : (rc != 0 || block != seen->block[i]))
		return mismatch(vc, "%s: find_%s(%" PRId64 ") gave %s block %zu, expected %s block %zu",
				mode, what, key, code_name(rc), block,
				i == seen->n ? "KT_ENOTFOUND" : "OK",
				i == seen->n ? (size_t)0 : seen->block[i]);
	rc = by_time ? kt_store_reader_seek_time(reader, key, errstr, sizeof(errstr))
		     : kt_store_reader_seek_offset(reader, key, errstr, sizeof(errstr));
	if (rc != 0)
		return mismatch(vc, "%s: seek_%s(%" PRId64 ") gave %s (%s)", mode, what, key,
				code_name(rc), errstr);
	rc = kt_store_reader_next(reader, &rec, errstr, sizeof(errstr));
	if (i == seen->n ? rc != 0 : (rc != 1 || rec->offset != seen->offset[i]))
		return mismatch(vc, "%s: after seek_%s(%" PRId64 ") next gave %s offset %" PRId64
				", expected offset %" PRId64, mode, what, key,
				rc == 1 ? "a record at" : code_name(rc), rc == 1 ? rec->offset : -1,
				i == seen->n ? (int64_t)-1 : seen->offset[i]);
	return 0;
}

/* Lookups by offset and time for every record's offset and timestamp and
 * their successors, which covers the out-of-order timestamps that make
 * the time index need its running maximum. */
static int check_lookups(struct vec_case *vc, const char *mode, struct kt_store_reader *reader,
			 const struct seen *seen)
{
	if (seen->n > SEEN_MAX)
		return 0;
	for (size_t r = 0; r < seen->n; r++) {
		int64_t o = seen->offset[r], t = seen->ts[r];
		if (check_one_lookup(vc, mode, reader, seen, 0, o, first_at_offset(seen, o)) != 0 ||
		    check_one_lookup(vc, mode, reader, seen, 0, o + 1, first_at_offset(seen, o + 1)) != 0 ||
		    check_one_lookup(vc, mode, reader, seen, 1, t, first_at_time(seen, t)) != 0)
			return -1;
		if (t < INT64_MAX &&
		    check_one_lookup(vc, mode, reader, seen, 1, t + 1, first_at_time(seen, t + 1)) != 0)
			return -1;
	}
	return 0;
}

static void vector_path(char *buf, size_t size, const char *rel)
{
	int n = snprintf(buf, size, "%s/%s", vectors_dir, rel);

	assert_true(n > 0 && (size_t)n < size);
}

/* One open mode ("plain" or "recover") of a segment vector. */
static int check_segment_mode(struct vec_case *vc, const char *mode, unsigned flags)
{
	const json_t *want = json_object_get(vc->entry, mode);
	const json_t *records = json_object_get(json_object_get(vectors, "record_sets"),
						jstr(vc->entry, "records"));
	struct kt_store_reader *reader = NULL;
	char path[4096], errstr[512] = "";
	uint64_t bad_blocks = 0;
	struct seen seen = { 0 };
	int rc, ret = -1;

	vector_path(path, sizeof(path), jstr(vc->entry, "file"));
	rc = kt_store_reader_open(&reader, path, flags, errstr, sizeof(errstr));
	if (rc != 0 && getenv("KT_VECTORS_VERBOSE"))
		print_message("%s: open: %s\n", mode, errstr);
	if (strcmp(code_name(rc), jstr(want, "open")) != 0) {
		mismatch(vc, "%s: open gave %s (%s), expected %s", mode, code_name(rc), errstr,
			 jstr(want, "open"));
		goto out;
	}
	if (rc != 0) {
		/* An error must say where: at least the file is named. */
		if (errstr[0] == '\0') {
			mismatch(vc, "%s: open failed with %s but left errstr empty", mode,
				 code_name(rc));
			goto out;
		}
		ret = 0;
		goto out;
	}
	if (check_info(vc, mode, json_object_get(want, "info"), kt_store_reader_info(reader)) != 0 ||
	    check_read(vc, mode, reader, want, records, &seen) != 0)
		goto out;
	if (strcmp(jstr(want, "read"), "OK") == 0) {
		/* Lookups through the index (when one is valid) and, on a
		 * second reader, through the seek table alone. */
		if (check_lookups(vc, mode, reader, &seen) != 0)
			goto out;
		kt_store_reader_destroy(reader);
		reader = NULL;
		rc = kt_store_reader_open(&reader, path, flags | KT_STORE_OPEN_NO_INDEX, errstr,
					  sizeof(errstr));
		if (rc != 0) {
			mismatch(vc, "%s: open without index gave %s (%s)", mode, code_name(rc), errstr);
			goto out;
		}
		if (check_lookups(vc, mode, reader, &seen) != 0)
			goto out;
	}

	/* verify on a fresh reader, so that nothing the read loaded helps. */
	kt_store_reader_destroy(reader);
	reader = NULL;
	rc = kt_store_reader_open(&reader, path, flags, errstr, sizeof(errstr));
	if (rc != 0) {
		mismatch(vc, "%s: second open gave %s (%s)", mode, code_name(rc), errstr);
		goto out;
	}
	errstr[0] = '\0';
	rc = kt_store_reader_verify(reader, &bad_blocks, errstr, sizeof(errstr));
	if (rc != 0 && getenv("KT_VECTORS_VERBOSE"))
		print_message("%s: verify: %s\n", mode, errstr);
	if (strcmp(code_name(rc), jstr(want, "verify")) != 0) {
		mismatch(vc, "%s: verify gave %s (%s), expected %s", mode, code_name(rc), errstr,
			 jstr(want, "verify"));
		goto out;
	}
	if (bad_blocks != (uint64_t)jint(want, "bad_blocks")) {
		mismatch(vc, "%s: verify counted %" PRIu64 " bad blocks, expected %" PRId64, mode,
			 bad_blocks, jint(want, "bad_blocks"));
		goto out;
	}
	ret = 0;
out:
	kt_store_reader_destroy(reader);
	return ret;
}

/* Ends a vector's test: passes, fails with the first mismatch, or skips a
 * mismatch that DISCREPANCIES.md already records. */
static void conclude(struct vec_case *vc)
{
	const char *name = jstr(vc->entry, "name");

	if (vc->msg[0] == '\0')
		return;
	if (json_is_true(json_object_get(vc->entry, "known_discrepancy"))) {
		print_message("[  KNOWN   ] %s: %s (see format/vectors/DISCREPANCIES.md)\n", name,
			      vc->msg);
		skip();
	}
	fail_msg("vector %s: %s", name, vc->msg);
}

static void test_segment_vector_gives_specified_outcome(void **state)
{
	struct vec_case *vc = *state;

	if (check_segment_mode(vc, "plain", 0) == 0)
		check_segment_mode(vc, "recover", KT_STORE_OPEN_RECOVER);
	conclude(vc);
}

/* ---- repositories ------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = NULL;
	char buf[8192];
	size_t n;
	int rc = -1;

	if (!in)
		goto out;
	out = fopen(to, "wb");
	if (!out)
		goto out;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			goto out;
	rc = ferror(in) ? -1 : 0;
out:
	if (in)
		fclose(in);
	if (out && fclose(out) != 0)
		rc = -1;
	return rc;
}

/* Copies the vector's files into dir, creating the layout's directories. */
static void stage_repo(const json_t *entry, const char *dir)
{
	static const char *const subdirs[] = { "snapshots", "segments", "tmp" };
	const json_t *files = json_object_get(entry, "files");
	char from[4096], to[4096];
	size_t i;
	json_t *f;

	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(to, sizeof(to), "%s/%s", dir, subdirs[i]);
		assert_int_equal(mkdir(to, 0700), 0);
	}
	json_array_foreach(files, i, f) {
		char rel[4096];
		snprintf(rel, sizeof(rel), "%s/%s", jstr(entry, "root"), json_string_value(f));
		vector_path(from, sizeof(from), rel);
		snprintf(to, sizeof(to), "%s/%s", dir, json_string_value(f));
		for (char *p = to + strlen(dir) + 1; *p; p++) {
			if (*p == '/') {
				*p = '\0';
				if (mkdir(to, 0700) != 0)
					assert_int_equal(errno, EEXIST);
				*p = '/';
			}
		}
		assert_int_equal(copy_file(from, to), 0);
	}
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	long size;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size >= 0);
	rewind(f);
	data = malloc((size_t)size + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
	data[size] = '\0';
	fclose(f);
	*len = (size_t)size;
	return data;
}

/* The snapshot a valid manifest describes must name the vector's segment,
 * and that segment must open with the checksum and size the manifest gives. */
static int check_loaded_snapshot(struct vec_case *vc, struct kt_store_repo *repo,
				 const struct kt_store_snapshot *snap)
{
	const struct kt_store_topic *topic = kt_store_snapshot_find_topic(snap, "orders");
	const struct kt_store_partition *part = topic ? kt_store_topic_find_partition(topic, 3) : NULL;
	struct kt_store_reader *reader = NULL;
	char abs[4096], errstr[512] = "";
	int rc, ret = -1;

	if (!part || part->segment_count != 1)
		return mismatch(vc, "loaded snapshot lacks orders/3 with one segment");
	if (strcmp(part->segments[0].path, jstr(vc->entry, "segment_path")) != 0)
		return mismatch(vc, "segment path %s, expected %s", part->segments[0].path,
				jstr(vc->entry, "segment_path"));
	rc = kt_store_repo_abs_path(repo, part->segments[0].path, abs, sizeof(abs));
	if (rc != 0)
		return mismatch(vc, "kt_store_repo_abs_path(%s) gave %s", part->segments[0].path,
				code_name(rc));
	rc = kt_store_reader_open(&reader, abs, 0, errstr, sizeof(errstr));
	if (rc != 0) {
		mismatch(vc, "segment %s: open gave %s (%s)", abs, code_name(rc), errstr);
		goto out;
	}
	if (kt_store_reader_info(reader)->checksum != part->segments[0].checksum ||
	    kt_store_reader_info(reader)->file_size != part->segments[0].file_size) {
		mismatch(vc, "segment %s: checksum or size differ from the manifest's", abs);
		goto out;
	}
	/* A scan of the partition reaches the same records through the
	 * manifest: exactly the segment's. */
	{
		const uint64_t want = part->segments[0].records;
		struct kt_store_scan *scan = NULL;
		const struct kt_record *rec;
		uint64_t n = 0;

		rc = kt_store_scan_create(&scan, repo, part, NULL, errstr,
					  sizeof(errstr));
		while (rc == 0 && (rc = kt_store_scan_next(scan, &rec, errstr, sizeof(errstr))) == 1) {
			if (rec->offset < part->segments[0].first_offset ||
			    rec->offset > part->segments[0].last_offset)
				rc = KT_ERANGE;
			else {
				n++;
				rc = 0;
			}
		}
		kt_store_scan_destroy(scan);
		if (rc != 0 || n != want) {
			mismatch(vc, "scan of orders/3 gave %" PRIu64 " records then %s (%s), expected %"
				 PRIu64, n, code_name(rc), errstr, want);
			goto out;
		}
	}
	ret = 0;
out:
	kt_store_reader_destroy(reader);
	return ret;
}

static void check_repo(struct vec_case *vc, const char *dir)
{
	const json_t *entry = vc->entry;
	struct kt_store_repo *repo = NULL;
	struct kt_store_snapshot *snap = NULL;
	char path[4096], errstr[512] = "";
	char *json = NULL;
	size_t len;
	int rc;

	rc = kt_store_repo_open(&repo, dir, 0, 0, errstr, sizeof(errstr));
	if (rc != 0 && getenv("KT_VECTORS_VERBOSE"))
		print_message("repo_open: %s\n", errstr);
	if (strcmp(code_name(rc), jstr(entry, "open")) != 0) {
		mismatch(vc, "kt_store_repo_open gave %s (%s), expected %s", code_name(rc), errstr,
			 jstr(entry, "open"));
		goto out;
	}
	if (!json_object_get(entry, "manifest"))
		goto out;

	snprintf(path, sizeof(path), "%s/%s", dir, jstr(entry, "manifest"));
	json = slurp(path, &len);
	errstr[0] = '\0';
	rc = kt_store_snapshot_from_json(json, len, &snap, errstr, sizeof(errstr));
	if (rc != 0 && getenv("KT_VECTORS_VERBOSE"))
		print_message("from_json: %s\n", errstr);
	if (strcmp(code_name(rc), jstr(entry, "from_json")) != 0) {
		mismatch(vc, "kt_store_snapshot_from_json gave %s (%s), expected %s", code_name(rc),
			 errstr, jstr(entry, "from_json"));
		goto out;
	}
	kt_store_snapshot_destroy(snap);
	snap = NULL;
	if (!repo)
		goto out;
	errstr[0] = '\0';
	rc = kt_store_repo_load_snapshot(repo, jstr(entry, "snapshot"), &snap, errstr, sizeof(errstr));
	if (strcmp(code_name(rc), jstr(entry, "load")) != 0) {
		mismatch(vc, "kt_store_repo_load_snapshot gave %s (%s), expected %s", code_name(rc),
			 errstr, jstr(entry, "load"));
		goto out;
	}
	if (rc == 0)
		check_loaded_snapshot(vc, repo, snap);
out:
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
	free(json);
}

/* The temporary directory of the running test; the teardown removes it
 * even when the test failed half way. */
static char tmp_dir[64];

static void make_tmp_dir(void)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/kt-vectors-XXXXXX");
	assert_non_null(mkdtemp(tmp_dir));
}

static int remove_tmp_dir(void **state)
{
	(void)state;
	if (tmp_dir[0])
		nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	tmp_dir[0] = '\0';
	return 0;
}

static void test_repository_vector_gives_specified_outcome(void **state)
{
	struct vec_case *vc = *state;

	make_tmp_dir();
	stage_repo(vc->entry, tmp_dir);
	check_repo(vc, tmp_dir);
	conclude(vc);
}

/* ---- byte-exact agreement of the two encoders ---------------------------- */

/* Decodes a JSON hex string (or null) into a malloc'd buffer; *out stays
 * NULL for null.  Returns the length. */
static size_t unhex(const json_t *j, unsigned char **out)
{
	const char *hex = json_string_value(j);
	size_t n;

	*out = NULL;
	if (!hex)
		return 0;
	n = strlen(hex) / 2;
	*out = malloc(n + 1); /* +1: an empty value is non-NULL */
	assert_non_null(*out);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		(*out)[i] = (unsigned char)v;
	}
	return n;
}

static int read_whole(const char *path, unsigned char **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long size;

	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	*data = malloc((size_t)size + 1);
	assert_non_null(*data);
	*len = fread(*data, 1, (size_t)size, f);
	fclose(f);
	return *len == (size_t)size ? 0 : -1;
}

/* Writes the records of a vector's record set with the store's writer. */
static void write_with_store(const json_t *records, const char *path)
{
	struct kt_store_writer_opts opts;
	struct kt_store_writer *writer = NULL;
	char errstr[512] = "";
	size_t i;
	json_t *r;

	kt_store_writer_opts_init(&opts);
	opts.codec = KT_CODEC_NONE;
	opts.io_backend = KT_IO_PWRITE;
	assert_int_equal(kt_store_writer_create(&writer, path, "orders", 3, &opts, errstr,
						sizeof(errstr)), 0);
	json_array_foreach(records, i, r) {
		const json_t *hs = json_object_get(r, "headers");
		struct kt_header headers[16];
		unsigned char *hbuf[32] = { 0 }, *key, *value;
		struct kt_record rec = { 0 };
		size_t h;
		json_t *hj;

		assert_true(json_array_size(hs) <= 16);
		rec.offset = jint(r, "offset");
		rec.timestamp = jint(r, "timestamp");
		rec.ts_type = (int)jint(r, "ts_type");
		rec.key_len = unhex(json_object_get(r, "key"), &key);
		rec.key = key;
		rec.value_len = unhex(json_object_get(r, "value"), &value);
		rec.value = value;
		json_array_foreach(hs, h, hj) {
			headers[h].name_len = unhex(json_object_get(hj, "name"), &hbuf[2 * h]);
			headers[h].name = (const char *)hbuf[2 * h];
			headers[h].value_len = unhex(json_object_get(hj, "value"), &hbuf[2 * h + 1]);
			headers[h].value = hbuf[2 * h + 1];
		}
		rec.headers = headers;
		rec.header_count = json_array_size(hs);
		assert_int_equal(kt_store_writer_append(writer, &rec, errstr, sizeof(errstr)), 0);
		free(key);
		free(value);
		for (h = 0; h < 32; h++)
			free(hbuf[h]);
	}
	assert_int_equal(kt_store_writer_seal(writer, NULL, errstr, sizeof(errstr)), 0);
	kt_store_writer_destroy(writer);
}

/* For the single-block, codec-none vectors the store's writer must produce
 * the same bytes as the independent encoder, apart from created_ms (the
 * writer's wall clock) and the file header checksum that covers it; and
 * kt_store_index_rebuild must produce the same index byte for byte.  Two
 * implementations agreeing to the byte is the strongest evidence that both
 * read the spec the same way. */
static void test_store_writer_and_index_match_independent_encoder(void **state)
{
	static const char *const names[] = { "valid-empty", "valid-one-record", "valid-shapes-none" };
	const char *dir;

	(void)state;
	make_tmp_dir();
	dir = tmp_dir;
	for (size_t v = 0; v < sizeof(names) / sizeof(names[0]); v++) {
		const json_t *entry = NULL, *e;
		unsigned char *want = NULL, *got = NULL;
		size_t want_len = 0, got_len = 0, i, hdr_end = 40 + strlen("orders");
		char path[4200], kti[4200], errstr[512] = "";

		json_array_foreach(json_object_get(vectors, "segments"), i, e)
			if (strcmp(jstr(e, "name"), names[v]) == 0)
				entry = e;
		assert_non_null(entry);
		snprintf(path, sizeof(path), "%s/%s.kts", dir, names[v]);
		snprintf(kti, sizeof(kti), "%s/%s.kti", dir, names[v]);
		write_with_store(json_object_get(json_object_get(vectors, "record_sets"),
						 jstr(entry, "records")), path);

		vector_path(errstr, sizeof(errstr), jstr(entry, "file"));
		assert_int_equal(read_whole(errstr, &want, &want_len), 0);
		assert_int_equal(read_whole(path, &got, &got_len), 0);
		if (got_len != want_len)
			fail_msg("%s: the store wrote %zu bytes, the independent encoder %zu",
				 names[v], got_len, want_len);
		/* created_ms and the header checksum are the only freedom. */
		memcpy(got + 24, want + 24, 8);
		memcpy(got + hdr_end - 8, want + hdr_end - 8, 8);
		for (i = 0; i < got_len; i++)
			if (got[i] != want[i])
				fail_msg("%s: byte %zu differs: store %02x, independent encoder %02x",
					 names[v], i, got[i], want[i]);
		free(want);
		free(got);

		/* The index the writer wrote, then one rebuilt from the segment. */
		vector_path(errstr, sizeof(errstr), jstr(entry, "index"));
		assert_int_equal(read_whole(errstr, &want, &want_len), 0);
		for (int pass = 0; pass < 2; pass++) {
			if (pass == 1) {
				assert_int_equal(unlink(kti), 0);
				assert_int_equal(kt_store_index_rebuild(path, 0600, errstr,
									sizeof(errstr)), 0);
			}
			assert_int_equal(read_whole(kti, &got, &got_len), 0);
			if (got_len != want_len || memcmp(got, want, got_len) != 0)
				fail_msg("%s: %s index differs from the independent encoder's", names[v],
					 pass ? "rebuilt" : "written");
			free(got);
		}
		free(want);
	}
}

/* ---- the vectors' own consistency --------------------------------------- */

/* Every .kts/.kti under format/vectors/segments is described in
 * vectors.json, so that no vector silently goes untested. */
static void test_every_vector_file_is_listed(void **state)
{
	const json_t *segs = json_object_get(vectors, "segments");
	char dir[4096];
	struct dirent *de;
	size_t files = 0;
	DIR *d;

	(void)state;
	vector_path(dir, sizeof(dir), "segments");
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char rel[4200];
		size_t i;
		json_t *e;
		int found = 0;

		if (de->d_name[0] == '.')
			continue;
		snprintf(rel, sizeof(rel), "segments/%s", de->d_name);
		json_array_foreach(segs, i, e)
			if (strcmp(jstr(e, "file"), rel) == 0 || strcmp(jstr(e, "index"), rel) == 0)
				found = 1;
		if (!found) {
			closedir(d);
			fail_msg("%s is not described in vectors.json", rel);
		}
		files++;
	}
	closedir(d);
	assert_true(files >= json_array_size(segs));
}

int main(void)
{
	const char *root = getenv("KT_SOURCE_ROOT");
	json_t *segs, *repos, *e;
	struct CMUnitTest *tests;
	struct vec_case *cases;
	json_error_t jerr;
	char path[4200];
	size_t n, i, k = 0;
	int rc;

	if (!root) {
		fprintf(stderr, "KT_SOURCE_ROOT is not set (meson test sets it)\n");
		return 1;
	}
	snprintf(vectors_dir, sizeof(vectors_dir), "%s/format/vectors", root);
	snprintf(path, sizeof(path), "%s/vectors.json", vectors_dir);
	vectors = json_load_file(path, 0, &jerr);
	if (!vectors) {
		fprintf(stderr, "%s:%d: %s\n", path, jerr.line, jerr.text);
		return 1;
	}
	segs = json_object_get(vectors, "segments");
	repos = json_object_get(vectors, "repositories");
	n = json_array_size(segs) + json_array_size(repos) + 2;
	tests = calloc(n, sizeof(*tests));
	cases = calloc(n, sizeof(*cases));
	if (!tests || !cases)
		return 1;
	json_array_foreach(segs, i, e) {
		cases[k].entry = e;
		tests[k] = (struct CMUnitTest){ jstr(e, "name"),
			test_segment_vector_gives_specified_outcome, NULL, NULL, &cases[k] };
		k++;
	}
	json_array_foreach(repos, i, e) {
		cases[k].entry = e;
		tests[k] = (struct CMUnitTest){ jstr(e, "root"),
			test_repository_vector_gives_specified_outcome, NULL, remove_tmp_dir,
			&cases[k] };
		k++;
	}
	tests[k++] = (struct CMUnitTest){ "test_every_vector_file_is_listed",
		test_every_vector_file_is_listed, NULL, NULL, NULL };
	tests[k++] = (struct CMUnitTest){ "test_store_writer_and_index_match_independent_encoder",
		test_store_writer_and_index_match_independent_encoder, NULL, remove_tmp_dir, NULL };

	rc = _cmocka_run_group_tests("store_vectors", tests, k, NULL, NULL);
	free(tests);
	free(cases);
	json_decref(vectors);
	return rc;
}
