/*
 * bench/store.c - segment writer and reader throughput against zstd's own
 * command-line tool, measured in the same run on the same bytes.
 *
 * The question it answers: how much do ktape's framing, checksums, record
 * encoding and I/O cost on top of the compression itself?  So the baseline
 * is `zstd -T1 -<level>` over exactly the record bytes the segment holds
 * (every record encoded as format/segment.md 2.1 lays it out, concatenated),
 * and `zstd -d` of that output.
 *
 * Steps, each input read from the page cache (it was written moments before
 * and the machine has far more free memory than the data):
 *   1. generate deterministic, realistic records into records.bin
 *      (JSON-like values of 200-1000 bytes, keys of moderate cardinality,
 *      0-3 headers), untimed;
 *   2. in a child process that does nothing else: stream records.bin, parse
 *      each record and kt_store_writer_append() it, then seal (which
 *      fdatasyncs) - timed from create to the end of seal;
 *   3. zstd -T1 -q -<level> -f records.bin -o records.bin.zst, timed from
 *      spawn to exit, plus an fdatasync of its output so that both sides pay
 *      for durability;
 *   4. in another child: kt_store_reader_next() over every record (timed),
 *      kt_store_reader_verify() (timed), then an untimed comparison of every
 *      record with records.bin;
 *   5. zstd -d -T1 -q -f records.bin.zst -o /dev/null, timed.
 * MB/s is always raw record bytes (the size of records.bin) per wall-clock
 * second, MB = 10^6 bytes, so every line is measured on the same bytes.
 * Peak RSS comes from wait4()'s ru_maxrss of each child.
 *
 * The program only prints; it is built by bench/meson.build and never run
 * by `meson test`.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "kt_common.h"
#include "kt_store.h"

extern char **environ;

/* The writer's default block size: records.bin is cut into chunks of this
 * size so its offset and timestamp deltas look like the segment's blocks. */
#define BENCH_CHUNK (1u << 20)
#define BENCH_TS0 1700000000000LL
#define BENCH_MAX_HEADERS 3
#define BENCH_IO_BUF (1u << 20)
#define BENCH_MAX_RECORD 4096

struct bench_opts {
	uint64_t size;
	int level;
	int codec;
	int io_backend;
	const char *dir;
	int keep;
	int runs;
	int check; /* compare every record read back with records.bin */
};

/* ---- deterministic record generation ------------------------------------ */

static uint64_t bench_rng_state = 0x2545F4914F6CDD1Dull;

static uint64_t bench_rand(void)
{
	/* splitmix64: fast, and the same stream on every machine. */
	uint64_t z = (bench_rng_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static const char *const bench_events[] = {
	"page_view", "add_to_cart", "checkout", "payment_authorized", "refund", "login",
};
static const char *const bench_countries[] = {
	"DE", "FR", "US", "GB", "NL", "SE", "PL", "ES", "IT", "JP",
};
static const char *const bench_categories[] = {
	"books", "electronics", "garden", "toys", "grocery", "fashion", "sports",
};
static const char *const bench_sources[] = {
	"checkout-service", "web-frontend", "mobile-gateway", "billing",
};

/* Appends printf output at *p, never past end. */
__attribute__((format(printf, 3, 4)))
static void bench_cat(char **p, char *end, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(*p, (size_t)(end - *p), fmt, ap);
	va_end(ap);
	if (n > 0)
		*p += (size_t)n < (size_t)(end - *p) ? (size_t)n : (size_t)(end - *p - 1);
}

/* An order event as a JSON document: repeated field names, ids and
 * amounts that vary, 0-9 line items, so 200-1000 bytes. */
static size_t bench_json_value(char *out, size_t cap, int64_t offset, int64_t ts)
{
	char *p = out, *end = out + cap;
	uint64_t r = bench_rand();
	unsigned items = (unsigned)(r % 10);

	bench_cat(&p, end,
		  "{\"id\":\"ord-%010" PRId64 "\",\"user_id\":%u,\"session\":\"%016" PRIx64
		  "\",\"event\":\"%s\",\"status\":\"%s\",\"ts\":%" PRId64
		  ",\"amount\":%u.%02u,\"currency\":\"EUR\",\"country\":\"%s\","
		  "\"device\":{\"os\":\"%s\",\"app\":\"shop/4.%u.%u\"},\"items\":[",
		  offset, (unsigned)(r >> 8) % 200000u, bench_rand(),
		  bench_events[(r >> 20) % 6], (r >> 24) % 50 ? "ok" : "retry", ts,
		  (unsigned)(r >> 32) % 2000u, (unsigned)(r >> 40) % 100u,
		  bench_countries[(r >> 44) % 10], (r >> 48) % 3 ? "android" : "ios",
		  (unsigned)(r >> 50) % 20u, (unsigned)(r >> 55) % 10u);
	for (unsigned i = 0; i < items; i++) {
		uint64_t q = bench_rand();

		bench_cat(&p, end,
			  "%s{\"sku\":\"SKU-%06u\",\"qty\":%u,\"price\":%u.%02u,\"category\":\"%s\"}",
			  i ? "," : "", (unsigned)(q % 50000u), (unsigned)(q >> 20) % 5u + 1u,
			  (unsigned)(q >> 24) % 300u, (unsigned)(q >> 34) % 100u,
			  bench_categories[(q >> 42) % 7]);
	}
	bench_cat(&p, end, "],\"flags\":[%s],\"note\":null}",
		  (r >> 60) % 4 == 0 ? "\"promo\",\"new\"" : "");
	return (size_t)(p - out);
}

/* Storage for one generated record and what its view points at. */
struct bench_record {
	struct kt_record rec;
	struct kt_header headers[BENCH_MAX_HEADERS];
	char key[32];
	char value[2048];
	char header_values[BENCH_MAX_HEADERS][40];
};

static void bench_make_record(struct bench_record *br, int64_t offset)
{
	static const char *const names[BENCH_MAX_HEADERS] = {
		"trace-id", "source", "content-type",
	};
	uint64_t r = bench_rand();
	struct kt_record *rec = &br->rec;

	memset(rec, 0, sizeof(*rec));
	rec->offset = offset;
	rec->timestamp = BENCH_TS0 + offset * 10 + (int64_t)(r % 1000);
	rec->ts_type = KT_TS_CREATE;
	rec->key_len = (size_t)snprintf(br->key, sizeof(br->key), "user-%05u",
					(unsigned)(r >> 10) % 20000u);
	rec->key = br->key;
	if ((r >> 30) % 500 == 0) {
		rec->value = NULL; /* a tombstone now and then */
	} else {
		rec->value_len = bench_json_value(br->value, sizeof(br->value), offset,
						  rec->timestamp);
		rec->value = br->value;
	}
	rec->header_count = (size_t)((r >> 40) % (BENCH_MAX_HEADERS + 1));
	for (size_t i = 0; i < rec->header_count; i++) {
		struct kt_header *h = &br->headers[i];
		char *v = br->header_values[i];

		h->name = names[i];
		h->name_len = strlen(names[i]);
		if (i == 0)
			h->value_len = (size_t)snprintf(v, 40, "%016" PRIx64 "%016" PRIx64,
							bench_rand(), bench_rand());
		else if (i == 1)
			h->value_len = (size_t)snprintf(v, 40, "%s", bench_sources[(r >> 50) % 4]);
		else
			h->value_len = (size_t)snprintf(v, 40, "application/json");
		h->value = v;
	}
	rec->headers = br->headers;
}

/* ---- the record encoding of format/segment.md 2.1 ------------------------ */

static uint8_t *bench_varint_put(uint8_t *p, uint64_t v)
{
	for (; v >= 0x80; v >>= 7)
		*p++ = (uint8_t)(v | 0x80);
	*p++ = (uint8_t)v;
	return p;
}

static int bench_varint_get(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64 && *pp < end; shift += 7) {
		uint8_t b = *(*pp)++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if (b < 0x80) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

/* Position within records.bin's chunks: offset and timestamp deltas are
 * relative to the chunk, as a block's are to the block. */
struct bench_chunk {
	uint64_t bytes;
	int64_t first_offset;
};

static int64_t bench_chunk_ts_base(const struct bench_chunk *c)
{
	/* Every timestamp of offset o is at least BENCH_TS0 + 10 o. */
	return BENCH_TS0 + c->first_offset * 10;
}

/* A new chunk starts once the current one holds BENCH_CHUNK bytes; the
 * parser decides the same way before it reads a record. */
static void bench_chunk_advance(struct bench_chunk *c, int64_t next_offset)
{
	if (c->bytes >= BENCH_CHUNK || c->bytes == 0) {
		c->bytes = 0;
		c->first_offset = next_offset;
	}
}

static size_t bench_encode(uint8_t *out, const struct kt_record *rec,
			   const struct bench_chunk *c)
{
	uint8_t body[BENCH_MAX_RECORD];
	uint8_t *p = body;
	uint8_t attr = (uint8_t)rec->ts_type;
	size_t n;

	if (!rec->key)
		attr |= 0x04;
	if (!rec->value)
		attr |= 0x08;
	*p++ = attr;
	p = bench_varint_put(p, (uint64_t)(rec->offset - c->first_offset));
	p = bench_varint_put(p, (uint64_t)(rec->timestamp - bench_chunk_ts_base(c)));
	if (rec->key) {
		p = bench_varint_put(p, rec->key_len);
		memcpy(p, rec->key, rec->key_len);
		p += rec->key_len;
	}
	if (rec->value) {
		p = bench_varint_put(p, rec->value_len);
		memcpy(p, rec->value, rec->value_len);
		p += rec->value_len;
	}
	p = bench_varint_put(p, rec->header_count);
	for (size_t i = 0; i < rec->header_count; i++) {
		const struct kt_header *h = &rec->headers[i];

		p = bench_varint_put(p, h->name_len);
		memcpy(p, h->name, h->name_len);
		p += h->name_len;
		p = bench_varint_put(p, h->value ? h->value_len + 1 : 0);
		if (h->value) {
			memcpy(p, h->value, h->value_len);
			p += h->value_len;
		}
	}
	n = (size_t)(p - body);
	p = bench_varint_put(out, n);
	memcpy(p, body, n);
	return (size_t)(p - out) + n;
}

/* Streams records.bin back as record views, with a bounded buffer. */
struct bench_stream {
	int fd;
	int eof;
	uint8_t *buf;
	size_t start, end;
	struct bench_chunk chunk;
	int64_t next_offset;
	struct kt_record rec;
	struct kt_header headers[BENCH_MAX_HEADERS];
};

static int bench_stream_open(struct bench_stream *s, const char *path)
{
	memset(s, 0, sizeof(*s));
	s->buf = malloc(BENCH_IO_BUF);
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!s->buf || s->fd < 0) {
		free(s->buf);
		if (s->fd >= 0)
			close(s->fd);
		return -1;
	}
	return 0;
}

static void bench_stream_close(struct bench_stream *s)
{
	free(s->buf);
	if (s->fd >= 0)
		close(s->fd);
}

/* Makes at least want bytes available unless the file ends first. */
static int bench_stream_fill(struct bench_stream *s, size_t want)
{
	if (s->end - s->start >= want || s->eof)
		return 0;
	memmove(s->buf, s->buf + s->start, s->end - s->start);
	s->end -= s->start;
	s->start = 0;
	while (s->end < want && !s->eof) {
		ssize_t n = read(s->fd, s->buf + s->end, BENCH_IO_BUF - s->end);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			s->eof = 1;
		s->end += (size_t)n;
	}
	return 0;
}

/* Returns 1 with s->rec set (pointing into the buffer until the next
 * call), 0 at the end, or -1 on malformed input. */
static int bench_stream_next(struct bench_stream *s)
{
	const uint8_t *p, *end, *rend;
	uint64_t len, v, hc;
	struct kt_record *rec = &s->rec;
	size_t total;
	uint8_t attr;

	if (bench_stream_fill(s, BENCH_MAX_RECORD) < 0)
		return -1;
	if (s->start == s->end)
		return 0;
	p = s->buf + s->start;
	end = s->buf + s->end;
	if (bench_varint_get(&p, end, &len) < 0 || len > (uint64_t)(end - p))
		return -1;
	rend = p + len;
	total = (size_t)(rend - (s->buf + s->start));
	bench_chunk_advance(&s->chunk, s->next_offset);

	attr = *p++;
	memset(rec, 0, sizeof(*rec));
	rec->ts_type = attr & 3;
	if (bench_varint_get(&p, rend, &v) < 0)
		return -1;
	rec->offset = s->chunk.first_offset + (int64_t)v;
	if (bench_varint_get(&p, rend, &v) < 0)
		return -1;
	rec->timestamp = bench_chunk_ts_base(&s->chunk) + (int64_t)v;
	if (!(attr & 0x04)) {
		if (bench_varint_get(&p, rend, &v) < 0 || v > (uint64_t)(rend - p))
			return -1;
		rec->key = p;
		rec->key_len = (size_t)v;
		p += v;
	}
	if (!(attr & 0x08)) {
		if (bench_varint_get(&p, rend, &v) < 0 || v > (uint64_t)(rend - p))
			return -1;
		rec->value = p;
		rec->value_len = (size_t)v;
		p += v;
	}
	if (bench_varint_get(&p, rend, &hc) < 0 || hc > BENCH_MAX_HEADERS)
		return -1;
	for (size_t i = 0; i < hc; i++) {
		struct kt_header *h = &s->headers[i];

		if (bench_varint_get(&p, rend, &v) < 0 || v > (uint64_t)(rend - p))
			return -1;
		h->name = (const char *)p;
		h->name_len = (size_t)v;
		p += v;
		if (bench_varint_get(&p, rend, &v) < 0 || (v && v - 1 > (uint64_t)(rend - p)))
			return -1;
		h->value = v ? p : NULL;
		h->value_len = v ? (size_t)v - 1 : 0;
		p += v ? v - 1 : 0;
	}
	if (p != rend)
		return -1;
	rec->headers = s->headers;
	rec->header_count = (size_t)hc;
	s->chunk.bytes += total;
	s->next_offset = rec->offset + 1;
	s->start += total;
	return 1;
}

/* ---- helpers ------------------------------------------------------------- */

static double bench_seconds(int64_t ns)
{
	return (double)ns / 1e9;
}

static int bench_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes opts->size bytes of encoded records to path; returns the record
 * count, or -1. */
static int64_t bench_generate(const char *path, uint64_t size)
{
	struct bench_record *br = malloc(sizeof(*br));
	uint8_t *buf = malloc(BENCH_IO_BUF);
	size_t used = 0;
	uint64_t written = 0;
	struct bench_chunk chunk = {0, 0};
	int64_t offset = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int64_t ret = -1;

	if (!br || !buf || fd < 0)
		goto out;
	while (written + used < size) {
		size_t n;

		bench_make_record(br, offset);
		bench_chunk_advance(&chunk, offset);
		if (used + BENCH_MAX_RECORD > BENCH_IO_BUF) {
			if (bench_write_all(fd, buf, used) < 0)
				goto out;
			written += used;
			used = 0;
		}
		n = bench_encode(buf + used, &br->rec, &chunk);
		used += n;
		chunk.bytes += n;
		offset++;
	}
	if (bench_write_all(fd, buf, used) < 0)
		goto out;
	ret = offset;
out:
	if (fd >= 0 && close(fd) < 0)
		ret = -1;
	free(buf);
	free(br);
	return ret;
}

/* What a child measured, sent to the parent through a pipe. */
struct bench_child_result {
	int err;
	char errstr[512];
	double seconds[2];  /* write: [0] all, [1] seal; read: [0] next, [1] verify */
	double cpu[2];      /* user+system seconds of the same phases */
	uint64_t records;
	uint64_t raw_bytes;
	uint64_t file_size;
	uint64_t mismatches;
	uint64_t blocks_loaded;     /* read: by the timed next() pass */
	uint64_t raw_bytes_decoded; /* read: by the timed next() pass */
	int io_backend;
};

struct bench_run {
	double wall;      /* seconds, from the parent's clock */
	double cpu;       /* user + system seconds of the child */
	long maxrss_kib;
	int status;
};

static void bench_rusage(struct bench_run *run, const struct rusage *ru)
{
	run->cpu = (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
		   (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
	run->maxrss_kib = ru->ru_maxrss;
}

/* Runs a command, timing it from spawn to exit with the wall clock. */
static int bench_spawn(char *const argv[], struct bench_run *run)
{
	struct rusage ru;
	pid_t pid;
	int64_t t0 = kt_now_ns();
	int err = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);

	if (err != 0) {
		fprintf(stderr, "bench: cannot run %s: %s\n", argv[0], strerror(err));
		return -1;
	}
	if (wait4(pid, &run->status, 0, &ru) != pid)
		return -1;
	run->wall = bench_seconds(kt_now_ns() - t0);
	bench_rusage(run, &ru);
	if (!WIFEXITED(run->status) || WEXITSTATUS(run->status) != 0) {
		fprintf(stderr, "bench: %s failed (status %d)\n", argv[0], run->status);
		return -1;
	}
	return 0;
}

/* User+system seconds this process has used so far. */
static double bench_self_cpu(void)
{
	struct rusage ru;
	struct bench_run run;

	getrusage(RUSAGE_SELF, &ru);
	bench_rusage(&run, &ru);
	return run.cpu;
}

typedef void (*bench_child_fn)(const struct bench_opts *opts, const char *records,
			       const char *segment, struct bench_child_result *res);

/* Runs fn in a fresh child that does nothing else, so its peak RSS and CPU
 * time are the ktape work alone. */
static int bench_fork(bench_child_fn fn, const struct bench_opts *opts, const char *records,
		      const char *segment, struct bench_child_result *res,
		      struct bench_run *run)
{
	struct rusage ru;
	int fds[2];
	pid_t pid;
	int64_t t0;
	ssize_t n;

	if (pipe(fds) < 0)
		return -1;
	fflush(NULL);
	t0 = kt_now_ns();
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct bench_child_result mine;

		close(fds[0]);
		memset(&mine, 0, sizeof(mine));
		fn(opts, records, segment, &mine);
		bench_write_all(fds[1], &mine, sizeof(mine));
		_exit(mine.err ? 1 : 0);
	}
	close(fds[1]);
	memset(res, 0, sizeof(*res));
	do
		n = read(fds[0], res, sizeof(*res));
	while (n < 0 && errno == EINTR);
	close(fds[0]);
	if (wait4(pid, &run->status, 0, &ru) != pid)
		return -1;
	run->wall = bench_seconds(kt_now_ns() - t0);
	bench_rusage(run, &ru);
	if (n != (ssize_t)sizeof(*res)) {
		fprintf(stderr, "bench: child died (status %d)\n", run->status);
		return -1;
	}
	if (res->err) {
		fprintf(stderr, "bench: %s\n", res->errstr);
		return -1;
	}
	return 0;
}

/* ---- the ktape sides ------------------------------------------------------ */

static void bench_child_write(const struct bench_opts *opts, const char *records,
			      const char *segment, struct bench_child_result *res)
{
	struct kt_store_writer_opts wopts;
	struct kt_store_writer *writer = NULL;
	struct kt_store_segment_info info;
	struct bench_stream s;
	int64_t t0, t_seal;
	int r;

	if (bench_stream_open(&s, records) < 0) {
		res->err = kt_seterr(res->errstr, sizeof(res->errstr), -EIO,
				     "cannot read %s", records);
		return;
	}
	kt_store_writer_opts_init(&wopts);
	wopts.codec = opts->codec;
	wopts.level = opts->level;
	wopts.io_backend = opts->io_backend;

	t0 = kt_now_ns();
	res->cpu[0] = bench_self_cpu();
	res->err = kt_store_writer_create(&writer, segment, "bench.orders", 0, &wopts,
					  res->errstr, sizeof(res->errstr));
	if (res->err)
		goto out;
	while ((r = bench_stream_next(&s)) == 1) {
		res->err = kt_store_writer_append(writer, &s.rec, res->errstr,
						  sizeof(res->errstr));
		if (res->err)
			goto out;
		res->records++;
	}
	if (r < 0) {
		res->err = kt_seterr(res->errstr, sizeof(res->errstr), KT_ECORRUPT,
				     "%s is malformed after %" PRIu64 " records", records,
				     res->records);
		goto out;
	}
	t_seal = kt_now_ns();
	res->err = kt_store_writer_seal(writer, &info, res->errstr, sizeof(res->errstr));
	if (res->err)
		goto out;
	res->seconds[0] = bench_seconds(kt_now_ns() - t0);
	res->seconds[1] = bench_seconds(kt_now_ns() - t_seal);
	res->cpu[0] = bench_self_cpu() - res->cpu[0];
	res->raw_bytes = info.raw_bytes;
	res->file_size = info.file_size;
	res->io_backend = info.io_backend;
out:
	kt_store_writer_destroy(writer);
	bench_stream_close(&s);
}

/* The floor under both: libzstd alone compressing and decompressing
 * records.bin in 1 MiB chunks (the writer's block size) at the same level,
 * in this process, file reads excluded from the clock.  It shows how much
 * of ktape's time is compression and how much is everything else. */
static void bench_child_floor(const struct bench_opts *opts, const char *records,
			      const char *segment, struct bench_child_result *res)
{
	size_t cap = ZSTD_compressBound(BENCH_CHUNK);
	uint8_t *in = malloc(BENCH_CHUNK), *comp = malloc(cap), *back = malloc(BENCH_CHUNK);
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	int fd = open(records, O_RDONLY | O_CLOEXEC);
	int64_t tc = 0, td = 0;

	if (!in || !comp || !back || !cctx || !dctx || fd < 0) {
		res->err = kt_seterr(res->errstr, sizeof(res->errstr), -ENOMEM,
				     "cannot set up libzstd over %s", records);
		goto out;
	}
	for (;;) {
		size_t n = 0, csize, dsize;
		int64_t t0;

		while (n < BENCH_CHUNK) {
			ssize_t r = read(fd, in + n, BENCH_CHUNK - n);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			n += (size_t)r;
		}
		if (n == 0)
			break;
		t0 = kt_now_ns();
		csize = ZSTD_compressCCtx(cctx, comp, cap, in, n, opts->level);
		tc += kt_now_ns() - t0;
		t0 = kt_now_ns();
		dsize = ZSTD_decompressDCtx(dctx, back, BENCH_CHUNK, comp, csize);
		td += kt_now_ns() - t0;
		if (ZSTD_isError(csize) || ZSTD_isError(dsize) || dsize != n ||
		    memcmp(in, back, n) != 0) {
			res->err = kt_seterr(res->errstr, sizeof(res->errstr), KT_ECORRUPT,
					     "libzstd did not round-trip a chunk of %s", records);
			goto out;
		}
		res->file_size += csize;
	}
	res->seconds[0] = res->cpu[0] = bench_seconds(tc);
	res->seconds[1] = res->cpu[1] = bench_seconds(td);
out:
	if (fd >= 0)
		close(fd);
	ZSTD_freeCCtx(cctx);
	ZSTD_freeDCtx(dctx);
	free(in);
	free(comp);
	free(back);
}

static int bench_same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
	if ((a == NULL) != (b == NULL) || alen != blen)
		return 0;
	return alen == 0 || memcmp(a, b, alen) == 0;
}

static int bench_same_record(const struct kt_record *a, const struct kt_record *b)
{
	if (a->offset != b->offset || a->timestamp != b->timestamp ||
	    a->ts_type != b->ts_type || a->header_count != b->header_count ||
	    !bench_same_bytes(a->key, a->key_len, b->key, b->key_len) ||
	    !bench_same_bytes(a->value, a->value_len, b->value, b->value_len))
		return 0;
	for (size_t i = 0; i < a->header_count; i++)
		if (!bench_same_bytes(a->headers[i].name, a->headers[i].name_len,
				      b->headers[i].name, b->headers[i].name_len) ||
		    !bench_same_bytes(a->headers[i].value, a->headers[i].value_len,
				      b->headers[i].value, b->headers[i].value_len))
			return 0;
	return 1;
}

static void bench_child_read(const struct bench_opts *opts, const char *records,
			     const char *segment, struct bench_child_result *res)
{
	struct kt_store_reader *reader = NULL;
	const struct kt_record *rec;
	struct bench_stream s = {.fd = -1};
	uint64_t bad_blocks = 0, value_bytes = 0;
	int64_t t0;
	int r;

	/* Pass 1, timed: every record through kt_store_reader_next().  The
	 * value bytes are summed so that the loop does observable work. */
	t0 = kt_now_ns();
	res->cpu[0] = bench_self_cpu();
	res->err = kt_store_reader_open(&reader, segment, 0, res->errstr, sizeof(res->errstr));
	if (res->err)
		goto out;
	while ((r = kt_store_reader_next(reader, &rec, res->errstr, sizeof(res->errstr))) == 1) {
		value_bytes += rec->value_len;
		res->records++;
	}
	if (r < 0) {
		res->err = r;
		goto out;
	}
	{
		struct kt_store_read_stats stats;

		kt_store_reader_stats(reader, &stats);
		res->blocks_loaded = stats.blocks_loaded;
		res->raw_bytes_decoded = stats.raw_bytes_decoded;
	}
	kt_store_reader_destroy(reader);
	reader = NULL;
	res->seconds[0] = bench_seconds(kt_now_ns() - t0);
	res->cpu[0] = bench_self_cpu() - res->cpu[0];

	/* Pass 2, timed: a full verify on a fresh reader. */
	t0 = kt_now_ns();
	res->cpu[1] = bench_self_cpu();
	res->err = kt_store_reader_open(&reader, segment, 0, res->errstr, sizeof(res->errstr));
	if (res->err)
		goto out;
	res->err = kt_store_reader_verify(reader, &bad_blocks, res->errstr, sizeof(res->errstr));
	if (res->err)
		goto out;
	kt_store_reader_destroy(reader);
	reader = NULL;
	res->seconds[1] = bench_seconds(kt_now_ns() - t0);
	res->cpu[1] = bench_self_cpu() - res->cpu[1];

	/* Pass 3, untimed: the segment holds exactly the records written. */
	if (!opts->check)
		goto out;
	res->err = kt_store_reader_open(&reader, segment, 0, res->errstr, sizeof(res->errstr));
	if (res->err)
		goto out;
	if (bench_stream_open(&s, records) < 0) {
		res->err = kt_seterr(res->errstr, sizeof(res->errstr), -EIO,
				     "cannot read %s", records);
		goto out;
	}
	for (;;) {
		int a = kt_store_reader_next(reader, &rec, res->errstr, sizeof(res->errstr));
		int b = bench_stream_next(&s);

		if (a < 0) {
			res->err = a;
			goto out;
		}
		if (a != b || (a == 1 && !bench_same_record(rec, &s.rec)))
			res->mismatches++;
		if (a == 0 || b <= 0)
			break;
	}
out:
	if (value_bytes == 0 && res->records > 0)
		res->mismatches++;
	kt_store_reader_destroy(reader);
	if (s.fd >= 0)
		bench_stream_close(&s);
}

/* ---- main ---------------------------------------------------------------- */

static void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: bench_store [--size BYTES] [--level N] [--codec zstd|none]\n"
		"                   [--io auto|io_uring|pwrite] [--runs N] [--dir DIR] [--keep]\n"
		"  --size   raw record bytes to generate (K/M/G suffixes), default 1G\n"
		"  --level  zstd level for ktape and the zstd CLI alike (1-19), default 3\n"
		"  --codec  block codec of the segment, default zstd\n"
		"  --io     writer I/O back end, default auto\n"
		"  --runs   runs of every phase, interleaved; the best is shown, default 3\n"
		"  --dir    working directory (created), default /tmp/kt-bench-store\n"
		"  --keep   leave the generated files behind\n");
}

static int bench_parse_args(int argc, char **argv, struct bench_opts *opts)
{
	static const struct option longopts[] = {
		{"size", required_argument, NULL, 's'},
		{"level", required_argument, NULL, 'l'},
		{"codec", required_argument, NULL, 'c'},
		{"io", required_argument, NULL, 'i'},
		{"dir", required_argument, NULL, 'd'},
		{"keep", no_argument, NULL, 'k'},
		{"runs", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	opts->size = 1024ull * 1024 * 1024;
	opts->level = 3;
	opts->codec = KT_CODEC_ZSTD;
	opts->io_backend = KT_IO_AUTO;
	opts->dir = "/tmp/kt-bench-store";
	opts->keep = 0;
	opts->runs = 3;
	opts->check = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 's':
			if (kt_parse_size(optarg, &opts->size) != 0 || opts->size == 0) {
				fprintf(stderr, "bench: bad --size %s\n", optarg);
				return -1;
			}
			break;
		case 'l':
			opts->level = (int)strtol(optarg, &end, 10);
			if (*end || opts->level < 1 || opts->level > 19) {
				fprintf(stderr, "bench: --level must be 1-19, not %s\n", optarg);
				return -1;
			}
			break;
		case 'c':
			if (strcmp(optarg, "zstd") == 0) {
				opts->codec = KT_CODEC_ZSTD;
			} else if (strcmp(optarg, "none") == 0) {
				opts->codec = KT_CODEC_NONE;
			} else {
				fprintf(stderr, "bench: --codec must be zstd or none\n");
				return -1;
			}
			break;
		case 'i':
			if (strcmp(optarg, "auto") == 0) {
				opts->io_backend = KT_IO_AUTO;
			} else if (strcmp(optarg, "io_uring") == 0) {
				opts->io_backend = KT_IO_URING;
			} else if (strcmp(optarg, "pwrite") == 0) {
				opts->io_backend = KT_IO_PWRITE;
			} else {
				fprintf(stderr, "bench: --io must be auto, io_uring or pwrite\n");
				return -1;
			}
			break;
		case 'd':
			opts->dir = optarg;
			break;
		case 'k':
			opts->keep = 1;
			break;
		case 'r':
			opts->runs = (int)strtol(optarg, &end, 10);
			if (*end || opts->runs < 1 || opts->runs > 100) {
				fprintf(stderr, "bench: --runs must be 1-100, not %s\n", optarg);
				return -1;
			}
			break;
		case 'h':
			bench_usage(stdout);
			exit(0);
		default:
			bench_usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		bench_usage(stderr);
		return -1;
	}
	return 0;
}

static double bench_mbps(uint64_t bytes, double seconds)
{
	return seconds > 0 ? (double)bytes / 1e6 / seconds : 0;
}

static uint64_t bench_file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* fdatasync of a file another process wrote, timed. */
static double bench_datasync(const char *path)
{
	int64_t t0 = kt_now_ns();
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fdatasync(fd) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return bench_seconds(kt_now_ns() - t0);
}

/* The best (shortest) of the runs of one phase, and the largest peak RSS
 * any run of it reached. */
struct bench_best {
	double wall;
	double cpu;
	long maxrss_kib;
};

static void bench_keep_best(struct bench_best *best, double wall, double cpu,
			    const struct bench_run *run)
{
	if (best->wall == 0 || wall < best->wall) {
		best->wall = wall;
		best->cpu = cpu;
	}
	if (run->maxrss_kib > best->maxrss_kib)
		best->maxrss_kib = run->maxrss_kib;
}

/* Prints what the figures depend on: CPU, cores, kernel, and the load the
 * other users of the machine put on it. */
static void bench_print_machine(const char *when)
{
	char line[256], model[256] = "unknown", load[128] = "";
	struct utsname uts;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
			snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
			model[strcspn(model, "\n")] = '\0';
			break;
		}
	if (f)
		fclose(f);
	f = fopen("/proc/loadavg", "r");
	if (f && fgets(load, sizeof(load), f))
		load[strcspn(load, "\n")] = '\0';
	if (f)
		fclose(f);
	if (uname(&uts) != 0)
		snprintf(uts.release, sizeof(uts.release), "unknown");
	printf("machine: %ld cpus, %s, Linux %s; loadavg %s: %s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), model, uts.release, when, load);
}

static void bench_row(const char *phase, uint64_t raw, const struct bench_best *b,
		      uint64_t out_bytes)
{
	char out[32] = "-";

	if (out_bytes)
		snprintf(out, sizeof(out), "%" PRIu64, out_bytes);
	printf("%-34s %9.3f %9.1f %8.2f %7.1f MiB %14s\n", phase, b->wall,
	       bench_mbps(raw, b->wall), b->cpu, b->maxrss_kib / 1024.0, out);
}

int main(int argc, char **argv)
{
	struct bench_opts opts;
	char records[4096], zst[4096], segment[4096], index[4096], level_arg[8];
	char *zargv[] = {"zstd", "-T1", "-q", level_arg, "-f", records, "-o", zst, NULL};
	char *dargv[] = {"zstd", "-d", "-T1", "-q", "-f", zst, "-o", "/dev/null", NULL};
	struct bench_child_result wres, rres, fres;
	struct bench_run run;
	struct bench_best bw = {0}, bz = {0}, bzp = {0}, br = {0}, bv = {0}, bzd = {0};
	struct bench_best bfc = {0}, bfd = {0};
	uint64_t raw, mismatches = 0, read_records = 0, seg_raw = 0, seg_size = 0;
	int io_backend = KT_IO_AUTO;
	double seal = 0;
	int64_t count;
	char date[64];
	time_t now = time(NULL);
	int err;

	if (bench_parse_args(argc, argv, &opts) < 0)
		return 2;
	err = kt_mkdir_p(opts.dir, 0700);
	if (err < 0) {
		fprintf(stderr, "bench: cannot create %s: %s\n", opts.dir, kt_strerror(err));
		return 1;
	}
	snprintf(records, sizeof(records), "%s/records.bin", opts.dir);
	snprintf(zst, sizeof(zst), "%s/records.bin.zst", opts.dir);
	snprintf(segment, sizeof(segment), "%s/bench.kts", opts.dir);
	snprintf(level_arg, sizeof(level_arg), "-%d", opts.level);
	if (kt_store_index_path(segment, index, sizeof(index)) < 0)
		return 1;

	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	printf("ktape store bench, %s\n", date);
	bench_print_machine("at start");
	count = bench_generate(records, opts.size);
	if (count < 0) {
		fprintf(stderr, "bench: cannot write %s: %s\n", records, strerror(errno));
		return 1;
	}
	raw = bench_file_size(records);

	/* The phases are interleaved run by run, so that a burst of load from
	 * other processes hits both sides of a comparison alike; each phase
	 * reports its best run. */
	for (int i = 0; i < opts.runs; i++) {
		double zsync;

		unlink(segment);
		unlink(index);
		if (bench_fork(bench_child_write, &opts, records, segment, &wres, &run) < 0)
			return 1;
		if (bw.wall == 0 || wres.seconds[0] < bw.wall)
			seal = wres.seconds[1];
		bench_keep_best(&bw, wres.seconds[0], wres.cpu[0], &run);
		seg_raw = wres.raw_bytes;
		seg_size = wres.file_size;
		io_backend = wres.io_backend;

		if (bench_spawn(zargv, &run) < 0)
			return 1;
		zsync = bench_datasync(zst);
		if (zsync < 0) {
			fprintf(stderr, "bench: cannot fdatasync %s: %s\n", zst, strerror(errno));
			return 1;
		}
		bench_keep_best(&bzp, run.wall, run.cpu, &run);
		bench_keep_best(&bz, run.wall + zsync, run.cpu, &run);

		/* The record-by-record comparison is untimed and needed once. */
		opts.check = i == 0;
		if (bench_fork(bench_child_read, &opts, records, segment, &rres, &run) < 0)
			return 1;
		bench_keep_best(&br, rres.seconds[0], rres.cpu[0], &run);
		bench_keep_best(&bv, rres.seconds[1], rres.cpu[1], &run);
		mismatches += rres.mismatches;
		read_records = rres.records;

		if (bench_spawn(dargv, &run) < 0)
			return 1;
		bench_keep_best(&bzd, run.wall, run.cpu, &run);

		if (bench_fork(bench_child_floor, &opts, records, segment, &fres, &run) < 0)
			return 1;
		bench_keep_best(&bfc, fres.seconds[0], fres.cpu[0], &run);
		bench_keep_best(&bfd, fres.seconds[1], fres.cpu[1], &run);
	}

	printf("data: %" PRIu64 " raw record bytes (%.1f MB), %" PRId64 " records; "
	       "the segment's raw_bytes: %" PRIu64 "\n", raw, (double)raw / 1e6, count, seg_raw);
	printf("ktape: codec %s level %d, block 1 MiB, io back end %s; zstd %s -T1\n",
	       opts.codec == KT_CODEC_ZSTD ? "zstd" : "none", opts.level,
	       kt_store_io_backend_name(io_backend), level_arg);
	printf("MB/s = raw record bytes / wall-clock seconds (MB = 10^6 B), best of %d runs;\n"
	       "all inputs read from the page cache (each was written just before)\n\n",
	       opts.runs);
	printf("%-34s %9s %9s %8s %10s %14s\n", "phase", "wall s", "MB/s", "cpu s",
	       "peak RSS", "output bytes");
	bench_row("ktape write (create..seal+sync)", raw, &bw, seg_size);
	printf("%-34s %9.3f\n", "  of which seal (flush+sync+index)", seal);
	bench_row("zstd -T1 (+fdatasync of output)", raw, &bz, bench_file_size(zst));
	bench_row("  zstd process alone", raw, &bzp, bench_file_size(zst));
	bench_row("ktape read (open+next, all)", raw, &br, 0);
	bench_row("ktape verify (open+verify)", raw, &bv, 0);
	bench_row("zstd -d -T1 -o /dev/null", raw, &bzd, 0);
	bench_row("libzstd compress, 1 MiB chunks", raw, &bfc, fres.file_size);
	bench_row("libzstd decompress, 1 MiB chunks", raw, &bfd, 0);
	printf("(cpu s: user+system seconds of that phase; peak RSS: of the child process\n"
	       " doing it - the read and verify rows share one child; the libzstd rows\n"
	       " time only ZSTD_compressCCtx/ZSTD_decompressDCtx calls, no I/O)\n\n");
	printf("write  speed ktape/zstd:    %.2fx (target >= 0.90)\n", bz.wall / bw.wall);
	printf("read   speed ktape/zstd -d: %.2fx (target >= 0.90)\n", bzd.wall / br.wall);
	printf("verify speed ktape/zstd -d: %.2fx (target >= 0.90)\n", bzd.wall / bv.wall);
	printf("ktape over bare libzstd: write %.2fx, read %.2fx of libzstd's time\n",
	       bw.wall / bfc.wall, br.wall / bfd.wall);
	printf("peak RSS ktape writer %.1f MiB, reader %.1f MiB (target < 64 MiB)\n",
	       bw.maxrss_kib / 1024.0, br.maxrss_kib / 1024.0);
	printf("records read back %" PRIu64 " of %" PRId64 ", mismatches %" PRIu64
	       "; next() decoded %" PRIu64 " raw bytes in %" PRIu64 " blocks\n",
	       read_records, count, mismatches, rres.raw_bytes_decoded, rres.blocks_loaded);
	bench_print_machine("at end");

	if (!opts.keep) {
		unlink(segment);
		unlink(index);
		unlink(zst);
		unlink(records);
		rmdir(opts.dir);
	}
	return mismatches || read_records != (uint64_t)count ? 1 : 0;
}
