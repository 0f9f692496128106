/*
 * test_store_segment_lib.h - helpers shared by the segment and index unit
 * tests: a seeded generator of records of every shape, writing them to a
 * segment, and comparing what a reader returns field by field.
 * Included by test_store_segment.c, test_store_index.c and test_store_io.c
 * (its whole-file helpers) only.
 */
#ifndef TEST_STORE_SEGMENT_LIB_H
#define TEST_STORE_SEGMENT_LIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kt_store.h"

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t tl_rng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t tl_rand(void)
{
	uint64_t x = tl_rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	tl_rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static inline uint64_t tl_below(uint64_t n)
{
	return n ? tl_rand() % n : 0;
}

/* A record with the bytes it points to, owned by the test. */
struct tl_rec {
	struct kt_record rec;
	struct kt_header hdrs[8];
	uint8_t *mem;
};

struct tl_set {
	struct tl_rec *recs;
	size_t n;
};

/* Random bytes biased towards NUL and newline, which must round-trip. */
static inline void tl_fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t r = tl_rand();
		p[i] = (r & 7) == 0 ? 0 : (r & 7) == 1 ? '\n' : (uint8_t)(r >> 8);
	}
}

/* Generates n records of every shape: null and empty keys and values,
 * zero to eight headers with duplicate names and null values, offset gaps,
 * out-of-order and negative timestamps, all three timestamp types.
 * big_every > 0 makes every big_every-th value big_len bytes. */
static inline struct tl_set tl_generate(size_t n, int64_t first_offset, size_t big_every,
					size_t big_len)
{
	struct tl_set set;
	int64_t off = first_offset, ts = 1700000000000LL;

	set.n = n;
	set.recs = calloc(n ? n : 1, sizeof(*set.recs));
	assert_non_null(set.recs);
	for (size_t i = 0; i < n; i++) {
		struct tl_rec *t = &set.recs[i];
		size_t klen = tl_below(24), vlen = tl_below(200), total, hc;
		uint8_t *p;

		if (tl_below(10) == 0)
			vlen = 1000 + tl_below(20000);
		if (big_every && i % big_every == big_every - 1)
			vlen = big_len;
		hc = tl_below(4) == 0 ? 0 : tl_below(9);
		total = klen + vlen + hc * 32 + 1;
		t->mem = malloc(total);
		assert_non_null(t->mem);
		p = t->mem;
		t->rec.offset = off;
		off += tl_below(5) == 0 ? 1 + (int64_t)tl_below(1000) : 1;
		/* Mostly rising, sometimes back in time or far negative. */
		switch (tl_below(8)) {
		case 0: ts -= (int64_t)tl_below(100000); break;
		case 1: t->rec.timestamp = -1 - (int64_t)tl_below(1000); goto ts_done;
		default: ts += (int64_t)tl_below(50); break;
		}
		t->rec.timestamp = ts;
ts_done:
		t->rec.ts_type = (int)tl_below(3);
		switch (tl_below(6)) {
		case 0: t->rec.key = NULL; t->rec.key_len = 0; break;
		case 1: t->rec.key = p; t->rec.key_len = 0; break;
		default: tl_fill(p, klen); t->rec.key = p; t->rec.key_len = klen; p += klen; break;
		}
		switch (tl_below(8)) {
		case 0: t->rec.value = NULL; t->rec.value_len = 0; break;
		case 1: t->rec.value = p; t->rec.value_len = 0; break;
		default: tl_fill(p, vlen); t->rec.value = p; t->rec.value_len = vlen; p += vlen; break;
		}
		for (size_t h = 0; h < hc; h++) {
			struct kt_header *hd = &t->hdrs[h];
			if (h > 0 && tl_below(3) == 0) {
				/* A duplicate name, as Kafka allows. */
				hd->name = t->hdrs[h - 1].name;
				hd->name_len = t->hdrs[h - 1].name_len;
			} else {
				hd->name_len = tl_below(12);
				tl_fill(p, hd->name_len);
				hd->name = (const char *)p;
				p += hd->name_len;
			}
			if (tl_below(4) == 0) {
				hd->value = NULL;
				hd->value_len = 0;
			} else {
				hd->value_len = tl_below(16);
				tl_fill(p, hd->value_len);
				hd->value = p;
				p += hd->value_len;
			}
		}
		t->rec.headers = hc ? t->hdrs : NULL;
		t->rec.header_count = hc;
	}
	return set;
}

static inline void tl_set_free(struct tl_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		free(set->recs[i].mem);
	free(set->recs);
	set->recs = NULL;
	set->n = 0;
}

static inline int tl_bytes_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if ((a == NULL) != (b == NULL) || alen != blen)
		return 0;
	return alen == 0 || memcmp(a, b, alen) == 0;
}

/* Nonzero when two records are equal in every field, null vs empty
 * included. */
static inline int tl_record_equal(const struct kt_record *a, const struct kt_record *b)
{
	if (a->offset != b->offset || a->timestamp != b->timestamp ||
	    a->ts_type != b->ts_type || a->header_count != b->header_count)
		return 0;
	if (!tl_bytes_equal(a->key, a->key_len, b->key, b->key_len) ||
	    !tl_bytes_equal(a->value, a->value_len, b->value, b->value_len))
		return 0;
	for (size_t h = 0; h < a->header_count; h++) {
		const struct kt_header *x = &a->headers[h], *y = &b->headers[h];
		if (!x->name || !y->name || x->name_len != y->name_len ||
		    (x->name_len && memcmp(x->name, y->name, x->name_len) != 0) ||
		    !tl_bytes_equal(x->value, x->value_len, y->value, y->value_len))
			return 0;
	}
	return 1;
}

/* Asserts field by field, so a failure says which field differs. */
static inline void tl_assert_record(const struct kt_record *got, const struct kt_record *want)
{
	assert_int_equal(got->offset, want->offset);
	assert_int_equal(got->timestamp, want->timestamp);
	assert_int_equal(got->ts_type, want->ts_type);
	assert_int_equal(got->key == NULL, want->key == NULL);
	assert_int_equal(got->key_len, want->key_len);
	if (want->key_len)
		assert_memory_equal(got->key, want->key, want->key_len);
	assert_int_equal(got->value == NULL, want->value == NULL);
	assert_int_equal(got->value_len, want->value_len);
	if (want->value_len)
		assert_memory_equal(got->value, want->value, want->value_len);
	assert_int_equal(got->header_count, want->header_count);
	for (size_t h = 0; h < want->header_count; h++) {
		assert_non_null(got->headers[h].name);
		assert_int_equal(got->headers[h].name_len, want->headers[h].name_len);
		if (want->headers[h].name_len)
			assert_memory_equal(got->headers[h].name, want->headers[h].name,
					    want->headers[h].name_len);
		assert_int_equal(got->headers[h].value == NULL, want->headers[h].value == NULL);
		assert_int_equal(got->headers[h].value_len, want->headers[h].value_len);
		if (want->headers[h].value_len)
			assert_memory_equal(got->headers[h].value, want->headers[h].value,
					    want->headers[h].value_len);
	}
}

/* Writes records [0, n) of set to path and seals it. */
static inline void tl_write(const char *path, const struct tl_set *set, size_t n,
			    const struct kt_store_writer_opts *opts,
			    struct kt_store_segment_info *info)
{
	struct kt_store_writer *writer = NULL;
	char err[512] = "";

	assert_int_equal(kt_store_writer_create(&writer, path, "orders", 3, opts, err,
						sizeof(err)), 0);
	for (size_t i = 0; i < n; i++) {
		int rc = kt_store_writer_append(writer, &set->recs[i].rec, err, sizeof(err));
		if (rc)
			fail_msg("append %zu: %s", i, err);
	}
	if (kt_store_writer_seal(writer, info, err, sizeof(err)) != 0)
		fail_msg("seal: %s", err);
	kt_store_writer_destroy(writer);
}

/* Reads the whole segment and asserts it holds exactly records [0, n). */
static inline void tl_assert_segment(const char *path, unsigned flags, const struct tl_set *set,
				     size_t n)
{
	struct kt_store_reader *reader = NULL;
	const struct kt_record *rec;
	char err[512] = "";
	size_t i = 0;
	int rc;

	rc = kt_store_reader_open(&reader, path, flags, err, sizeof(err));
	if (rc)
		fail_msg("open %s: %s", path, err);
	assert_int_equal(kt_store_reader_info(reader)->record_count, n);
	while ((rc = kt_store_reader_next(reader, &rec, err, sizeof(err))) == 1) {
		assert_true(i < n);
		tl_assert_record(rec, &set->recs[i].rec);
		i++;
	}
	if (rc < 0)
		fail_msg("next after %zu records: %s", i, err);
	assert_int_equal(i, n);
	kt_store_reader_destroy(reader);
}

/* A private temporary directory, removed with its files by tl_rmdir. */
static inline void tl_mkdtemp(char *dir, size_t size)
{
	snprintf(dir, size, "%s/kt-seg-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
}

static inline void tl_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static inline int tl_count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* Whole-file helpers for damage tests. */
static inline uint8_t *tl_read_file(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static inline void tl_write_file(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

#endif /* TEST_STORE_SEGMENT_LIB_H */
