/*
 * mkvectors - writes format/vectors/: small valid and deliberately broken
 * ktape segment, index and repository files, plus vectors.json and the
 * README table that state what a reader must answer for each.
 *
 * This is a second, deliberately independent implementation of the format:
 * it is written from format/segment.md and format/repository.md alone and
 * shares no code with src/store, so that a misreading of the spec in one
 * implementation shows up as a disagreement with the other.  It favours
 * plainness over speed: every structure is built field by field into a
 * growable buffer, and every broken file is a valid one with one precise
 * defect (with the checksums around the defect recomputed where the defect
 * must be caught by a rule other than a checksum).
 *
 * Output is deterministic: fixed timestamps, fixed "random" name parts, and
 * zstd level 3 (the bytes of zstd blocks may differ with another libzstd
 * version; readers only decompress them, so the expectations do not change).
 *
 * Usage: mkvectors OUTDIR   (normally format/vectors; `ninja vectors`)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <xxhash.h>
#include <zstd.h>

/* ---- a growable byte buffer ------------------------------------------- */

struct buf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "mkvectors: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void buf_put(struct buf *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			die("out of memory");
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void buf_puts(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void put_le(struct buf *b, uint64_t v, size_t n)
{
	uint8_t tmp[8];

	for (size_t i = 0; i < n; i++)
		tmp[i] = (uint8_t)(v >> (8 * i));
	buf_put(b, tmp, n);
}

static void set_le(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_varint(struct buf *b, uint64_t v)
{
	uint8_t c;

	do {
		c = v & 0x7f;
		v >>= 7;
		if (v)
			c |= 0x80;
		buf_put(b, &c, 1);
	} while (v);
}

static uint64_t xxh(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

/* ---- records ------------------------------------------------------------ */

struct vhdr {
	const char *name;
	size_t name_len;
	const char *value; /* NULL: a null header value */
	size_t value_len;
};

struct vrec {
	int64_t offset;
	int64_t ts;
	int ts_type;
	const char *key; /* NULL: null key */
	size_t key_len;
	const char *value; /* NULL: tombstone */
	size_t value_len;
	const struct vhdr *headers;
	size_t header_count;
};

/* One precise defect planted in one record of a block. */
struct tweak {
	int rec;             /* record index within the block; -1: none */
	uint8_t attr_or;     /* bits OR'ed into attributes */
	uint64_t length_add; /* added to the record's length field */
	int overlong_key_len; /* key_len written with one needless 0x80 byte */
	int overflow_key_len; /* key_len as 10 bytes whose value is >= 2^64 */
};

static const struct tweak no_tweak = { .rec = -1 };

static void encode_record(struct buf *out, const struct vrec *r, int64_t first_offset,
			  int64_t min_ts, const struct tweak *tw, int idx)
{
	struct buf body = { 0 };
	uint8_t attr = (uint8_t)(r->ts_type & 3);
	int tweaked = tw && tw->rec == idx;

	if (!r->key)
		attr |= 1u << 2;
	if (!r->value)
		attr |= 1u << 3;
	if (tweaked)
		attr |= tw->attr_or;
	buf_put(&body, &attr, 1);
	put_varint(&body, (uint64_t)r->offset - (uint64_t)first_offset);
	put_varint(&body, (uint64_t)r->ts - (uint64_t)min_ts);
	if (r->key) {
		if (tweaked && tw->overflow_key_len) {
			static const uint8_t ten[10] = { 0xff, 0xff, 0xff, 0xff, 0xff,
							 0xff, 0xff, 0xff, 0xff, 0x02 };
			buf_put(&body, ten, sizeof(ten));
		} else if (tweaked && tw->overlong_key_len) {
			/* The same value with a redundant continuation byte: the
			 * value decodes fine but is not in shortest form. */
			uint8_t two[2] = { (uint8_t)(0x80 | (r->key_len & 0x7f)),
					   (uint8_t)(r->key_len >> 7) };
			if (r->key_len >= 128)
				die("overlong tweak needs a key shorter than 128 bytes");
			buf_put(&body, two, 2);
		} else {
			put_varint(&body, r->key_len);
		}
		buf_put(&body, r->key, r->key_len);
	}
	if (r->value) {
		put_varint(&body, r->value_len);
		buf_put(&body, r->value, r->value_len);
	}
	put_varint(&body, r->header_count);
	for (size_t i = 0; i < r->header_count; i++) {
		const struct vhdr *h = &r->headers[i];
		put_varint(&body, h->name_len);
		buf_put(&body, h->name, h->name_len);
		if (h->value) {
			put_varint(&body, h->value_len + 1);
			buf_put(&body, h->value, h->value_len);
		} else {
			put_varint(&body, 0);
		}
	}
	put_varint(out, body.len + (tweaked ? tw->length_add : 0));
	buf_put(out, body.p, body.len);
	buf_free(&body);
}

/* ---- blocks ------------------------------------------------------------- */

#define BLOCK_HEADER_SIZE 72
#define SEEK_ENTRY_SIZE 64
#define FOOTER_SIZE 80
#define INDEX_ENTRY_SIZE 48

struct blk {
	uint8_t codec;
	uint8_t flags;
	uint16_t reserved;
	uint32_t record_count;
	uint32_t stored_size;
	uint32_t raw_size;
	uint32_t reserved2;
	int64_t first_offset;
	int64_t last_offset;
	int64_t min_ts;
	int64_t max_ts;
	uint64_t payload_checksum;
	struct buf payload; /* as stored */
	const struct vrec *recs;
	size_t n;
};

/* Builds a block from records with every field derived as segment.md
 * section 2 says; a caller may then alter a field before serialising. */
static void blk_build(struct blk *b, const struct vrec *recs, size_t n, int codec,
		      const struct tweak *tw)
{
	struct buf raw = { 0 };

	memset(b, 0, sizeof(*b));
	b->recs = recs;
	b->n = n;
	b->codec = (uint8_t)codec;
	b->record_count = (uint32_t)n;
	b->first_offset = recs[0].offset;
	b->last_offset = recs[n - 1].offset;
	b->min_ts = b->max_ts = recs[0].ts;
	for (size_t i = 1; i < n; i++) {
		if (recs[i].ts < b->min_ts)
			b->min_ts = recs[i].ts;
		if (recs[i].ts > b->max_ts)
			b->max_ts = recs[i].ts;
	}
	for (size_t i = 0; i < n; i++)
		encode_record(&raw, &recs[i], b->first_offset, b->min_ts, tw, (int)i);
	b->raw_size = (uint32_t)raw.len;
	if (codec == 0) {
		b->payload = raw;
	} else {
		size_t cap = ZSTD_compressBound(raw.len);
		uint8_t *z = malloc(cap);
		size_t zn;

		if (!z)
			die("out of memory");
		zn = ZSTD_compress(z, cap, raw.p, raw.len, 3);
		if (ZSTD_isError(zn))
			die("zstd: %s", ZSTD_getErrorName(zn));
		buf_put(&b->payload, z, zn);
		free(z);
		buf_free(&raw);
	}
	b->stored_size = (uint32_t)b->payload.len;
	b->payload_checksum = xxh(b->payload.p, b->payload.len);
}

/* Replaces a built block's payload (stored bytes), keeping the header
 * fields that describe it true: stored_size and the payload checksum. */
static void blk_set_payload(struct blk *b, const void *p, size_t n)
{
	struct buf nb = { 0 };

	buf_put(&nb, p, n);
	buf_free(&b->payload);
	b->payload = nb;
	b->stored_size = (uint32_t)n;
	b->payload_checksum = xxh(nb.p, nb.len);
}

/* Recompresses a zstd block into a frame that does not declare its
 * content size (legal zstd, refused by segment.md section 2). */
static void blk_zstd_without_size(struct blk *b)
{
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	uint8_t *raw = malloc(b->raw_size), *z;
	size_t cap = ZSTD_compressBound(b->raw_size), n;

	z = malloc(cap);
	if (!cctx || !raw || !z)
		die("out of memory");
	n = ZSTD_decompress(raw, b->raw_size, b->payload.p, b->payload.len);
	if (ZSTD_isError(n) || n != b->raw_size)
		die("zstd round trip failed");
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3);
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
	/* Streaming with an unknown size, so the frame header omits it. */
	{
		ZSTD_inBuffer in = { raw, b->raw_size, 0 };
		ZSTD_outBuffer out = { z, cap, 0 };
		size_t left = ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end);
		if (ZSTD_isError(left) || left != 0)
			die("zstd stream compression failed");
		n = out.pos;
	}
	if (ZSTD_getFrameContentSize(z, n) != ZSTD_CONTENTSIZE_UNKNOWN)
		die("zstd frame still declares its content size");
	blk_set_payload(b, z, n);
	free(z);
	free(raw);
	ZSTD_freeCCtx(cctx);
}

static void blk_put_header(struct buf *out, const struct blk *b)
{
	size_t start = out->len;

	buf_put(out, "KTBK", 4);
	put_le(out, b->codec, 1);
	put_le(out, b->flags, 1);
	put_le(out, b->reserved, 2);
	put_le(out, b->record_count, 4);
	put_le(out, b->stored_size, 4);
	put_le(out, b->raw_size, 4);
	put_le(out, b->reserved2, 4);
	put_le(out, (uint64_t)b->first_offset, 8);
	put_le(out, (uint64_t)b->last_offset, 8);
	put_le(out, (uint64_t)b->min_ts, 8);
	put_le(out, (uint64_t)b->max_ts, 8);
	put_le(out, b->payload_checksum, 8);
	put_le(out, xxh(out->p + start, 64), 8);
}

/* ---- segments ----------------------------------------------------------- */

#define MAX_BLOCKS 8

struct seg {
	uint16_t version;
	uint32_t flags;
	int32_t partition;
	const char *topic;
	size_t topic_len; /* 0: strlen(topic); set for a topic holding a NUL */
	int64_t created_ms;
	size_t nblocks;
	struct blk blocks[MAX_BLOCKS];
};

/* Where things landed in the serialised file, to aim byte flips. */
struct layout {
	uint64_t block_off[MAX_BLOCKS];
	uint64_t seek_off;
	uint64_t footer_off;
	uint64_t size;
	uint64_t segment_checksum;
};

static const char TOPIC[] = "orders";
static const int64_t CREATED_MS = 1763775134123;

static void seg_init(struct seg *s)
{
	memset(s, 0, sizeof(*s));
	s->version = 1;
	s->partition = 3;
	s->topic = TOPIC;
	s->created_ms = CREATED_MS;
}

static void seg_free(struct seg *s)
{
	for (size_t i = 0; i < s->nblocks; i++)
		buf_free(&s->blocks[i].payload);
}

static void seg_put_header(struct buf *out, const struct seg *s)
{
	size_t l = s->topic_len ? s->topic_len : strlen(s->topic);

	buf_put(out, "KTAPESEG", 8);
	put_le(out, s->version, 2);
	put_le(out, 40 + l, 2);
	put_le(out, s->flags, 4);
	put_le(out, (uint32_t)s->partition, 4);
	put_le(out, l, 2);
	put_le(out, 0, 2);
	put_le(out, (uint64_t)s->created_ms, 8);
	buf_put(out, s->topic, l);
	put_le(out, xxh(out->p, 32 + l), 8);
}

static void seg_serialize(const struct seg *s, struct buf *out, struct layout *lay)
{
	uint64_t records = 0;
	int64_t min_ts = INT64_MAX, max_ts = INT64_MIN;
	size_t footer_start;

	memset(lay, 0, sizeof(*lay));
	seg_put_header(out, s);
	for (size_t i = 0; i < s->nblocks; i++) {
		const struct blk *b = &s->blocks[i];
		lay->block_off[i] = out->len;
		blk_put_header(out, b);
		buf_put(out, b->payload.p, b->payload.len);
		records += b->record_count;
		if (b->min_ts < min_ts)
			min_ts = b->min_ts;
		if (b->max_ts > max_ts)
			max_ts = b->max_ts;
	}
	lay->seek_off = out->len;
	buf_put(out, "KTSK", 4);
	put_le(out, SEEK_ENTRY_SIZE, 4);
	put_le(out, s->nblocks, 8);
	for (size_t i = 0; i < s->nblocks; i++) {
		const struct blk *b = &s->blocks[i];
		put_le(out, lay->block_off[i], 8);
		put_le(out, b->stored_size, 4);
		put_le(out, b->raw_size, 4);
		put_le(out, b->record_count, 4);
		put_le(out, b->codec, 1);
		put_le(out, 0, 3);
		put_le(out, (uint64_t)b->first_offset, 8);
		put_le(out, (uint64_t)b->last_offset, 8);
		put_le(out, (uint64_t)b->min_ts, 8);
		put_le(out, (uint64_t)b->max_ts, 8);
		put_le(out, b->payload_checksum, 8);
	}
	lay->segment_checksum = xxh(out->p + lay->seek_off, out->len - lay->seek_off);
	footer_start = out->len;
	lay->footer_off = footer_start;
	put_le(out, lay->seek_off, 8);
	put_le(out, s->nblocks, 8);
	put_le(out, records, 8);
	put_le(out, s->nblocks ? (uint64_t)s->blocks[0].first_offset : (uint64_t)-1, 8);
	put_le(out, s->nblocks ? (uint64_t)s->blocks[s->nblocks - 1].last_offset : (uint64_t)-1, 8);
	put_le(out, (uint64_t)min_ts, 8);
	put_le(out, (uint64_t)max_ts, 8);
	put_le(out, lay->segment_checksum, 8);
	put_le(out, xxh(out->p + footer_start, 64), 8);
	buf_put(out, "KTSEGEND", 8);
	lay->size = out->len;
}

/* The index of section 5 for a serialised segment. */
static void index_serialize(const struct seg *s, const struct layout *lay, uint16_t version,
			    struct buf *out)
{
	int64_t running = INT64_MIN;
	size_t entries;

	buf_put(out, "KTAPEIDX", 8);
	put_le(out, version, 2);
	put_le(out, 0, 2);
	put_le(out, INDEX_ENTRY_SIZE, 4);
	put_le(out, s->nblocks, 8);
	put_le(out, lay->size, 8);
	put_le(out, lay->segment_checksum, 8);
	put_le(out, xxh(out->p, 40), 8);
	entries = out->len;
	for (size_t i = 0; i < s->nblocks; i++) {
		const struct blk *b = &s->blocks[i];
		if (b->max_ts > running)
			running = b->max_ts;
		put_le(out, (uint64_t)b->first_offset, 8);
		put_le(out, (uint64_t)b->last_offset, 8);
		put_le(out, lay->block_off[i], 8);
		put_le(out, (uint64_t)b->min_ts, 8);
		put_le(out, (uint64_t)b->max_ts, 8);
		put_le(out, (uint64_t)running, 8);
	}
	put_le(out, xxh(out->p + entries, out->len - entries), 8);
}

/* Checksums recomputed after a deliberate byte patch, so that the rule the
 * patch breaks, not a checksum, is what a reader must catch. */
static void rehash_file_header(struct buf *f, size_t topic_len)
{
	set_le(f->p + 32 + topic_len, xxh(f->p, 32 + topic_len), 8);
}

static void rehash_block_header(struct buf *f, uint64_t off)
{
	set_le(f->p + off + 64, xxh(f->p + off, 64), 8);
}

static void rehash_footer(struct buf *f, const struct layout *lay)
{
	set_le(f->p + lay->footer_off + 64, xxh(f->p + lay->footer_off, 64), 8);
}

/* After a seek table patch: a new segment checksum, then the footer's. */
static void reseal(struct buf *f, const struct layout *lay)
{
	set_le(f->p + lay->footer_off + 56,
	       xxh(f->p + lay->seek_off, lay->footer_off - lay->seek_off), 8);
	rehash_footer(f, lay);
}

/* ---- output ------------------------------------------------------------- */

static const char *outdir;

static void mkdirs(const char *rel)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", outdir, rel);
	for (char *p = path + strlen(outdir) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			die("mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
}

static void write_file(const char *rel, const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	mkdirs(rel);
	snprintf(path, sizeof(path), "%s/%s", outdir, rel);
	f = fopen(path, "wb");
	if (!f)
		die("%s: %s", path, strerror(errno));
	if (len && fwrite(data, 1, len, f) != len)
		die("%s: short write", path);
	if (fclose(f) != 0)
		die("%s: %s", path, strerror(errno));
}

/* ---- expectations ------------------------------------------------------- */

/* What a reader must answer when opening with one set of flags. */
struct expect {
	const char *open;      /* "OK" or a KT_E* name */
	size_t records;        /* records kt_store_reader_next returns first */
	const char *read;      /* after them: "OK" (end) or a KT_E* name */
	const char *verify;    /* kt_store_reader_verify's outcome */
	uint64_t bad_blocks;   /* as verify counts them */
	size_t blocks;         /* blocks the reader exposes (info) */
	int sealed;
};

static json_t *segments_json;
static struct buf readme_rows;

static json_t *hex_or_null(const char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char *s;
	json_t *j;

	if (!p)
		return json_null();
	s = malloc(2 * n + 1);
	if (!s)
		die("out of memory");
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = digits[(uint8_t)p[i] >> 4];
		s[2 * i + 1] = digits[(uint8_t)p[i] & 15];
	}
	s[2 * n] = '\0';
	j = json_string(s);
	free(s);
	return j;
}

static json_t *records_json(const struct seg *s)
{
	json_t *arr = json_array();

	for (size_t b = 0; b < s->nblocks; b++) {
		for (size_t i = 0; i < s->blocks[b].n; i++) {
			const struct vrec *r = &s->blocks[b].recs[i];
			json_t *hs = json_array();
			for (size_t h = 0; h < r->header_count; h++)
				json_array_append_new(hs, json_pack("{s:o,s:o}",
					"name", hex_or_null(r->headers[h].name, r->headers[h].name_len),
					"value", hex_or_null(r->headers[h].value, r->headers[h].value_len)));
			json_array_append_new(arr, json_pack("{s:I,s:I,s:i,s:o,s:o,s:o}",
				"offset", (json_int_t)r->offset, "timestamp", (json_int_t)r->ts,
				"ts_type", r->ts_type,
				"key", hex_or_null(r->key, r->key_len),
				"value", hex_or_null(r->value, r->value_len),
				"headers", hs));
		}
	}
	return arr;
}

/* Record lists are shared between vectors (most broken files hold the same
 * records): each distinct list is stored once under "record_sets", named
 * after the first vector that holds it, and vectors name their set. */
static json_t *record_sets;

static const char *record_set(const char *vector, const struct seg *s)
{
	json_t *recs = records_json(s), *v;
	const char *key;

	json_object_foreach(record_sets, key, v) {
		if (json_equal(v, recs)) {
			json_decref(recs);
			return key;
		}
	}
	json_object_set_new(record_sets, vector, recs);
	json_object_foreach(record_sets, key, v)
		if (strcmp(key, vector) == 0)
			return key;
	die("record set %s vanished", vector);
}

/* Expected reader info over the first `blocks` blocks of s. */
static json_t *info_json(const struct seg *s, size_t blocks, int sealed)
{
	uint64_t records = 0, raw = 0;
	int64_t min_ts = INT64_MAX, max_ts = INT64_MIN;

	for (size_t i = 0; i < blocks; i++) {
		records += s->blocks[i].record_count;
		raw += s->blocks[i].raw_size;
		if (s->blocks[i].min_ts < min_ts)
			min_ts = s->blocks[i].min_ts;
		if (s->blocks[i].max_ts > max_ts)
			max_ts = s->blocks[i].max_ts;
	}
	return json_pack("{s:s,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b}",
		"topic", s->topic, "partition", (int)s->partition,
		"block_count", (json_int_t)blocks, "record_count", (json_int_t)records,
		"raw_bytes", (json_int_t)raw,
		"first_offset", (json_int_t)(blocks ? s->blocks[0].first_offset : -1),
		"last_offset", (json_int_t)(blocks ? s->blocks[blocks - 1].last_offset : -1),
		"min_ts", (json_int_t)min_ts, "max_ts", (json_int_t)max_ts,
		"sealed", sealed);
}

static json_t *expect_json(const struct seg *s, const struct expect *e, size_t file_size)
{
	json_t *j = json_pack("{s:s}", "open", e->open), *info;

	if (strcmp(e->open, "OK") == 0) {
		json_object_set_new(j, "records", json_integer((json_int_t)e->records));
		json_object_set_new(j, "read", json_string(e->read));
		json_object_set_new(j, "verify", json_string(e->verify));
		json_object_set_new(j, "bad_blocks", json_integer((json_int_t)e->bad_blocks));
		if (strcmp(e->read, "OK") != 0) {
			/* The damaged block is the one after the last record
			 * returned (blocks are never empty); the blocks after it
			 * must stay readable through seek_block. */
			size_t bad = 0, before = 0, after = 0;
			while (bad < e->blocks && before < e->records)
				before += s->blocks[bad++].n;
			for (size_t b = bad + 1; b < e->blocks; b++)
				after += s->blocks[b].n;
			if (bad + 1 < e->blocks && e->bad_blocks == 1) {
				json_object_set_new(j, "resume_block", json_integer((json_int_t)bad + 1));
				json_object_set_new(j, "resume_records", json_integer((json_int_t)after));
			}
		}
		info = info_json(s, e->blocks, e->sealed);
		json_object_set_new(info, "file_size", json_integer((json_int_t)file_size));
		if (e->sealed) {
			/* A sealed segment is named by its seek table's checksum;
			 * serialising s again gives the same seek table. */
			struct buf again = { 0 };
			struct layout lay;
			char sum[17];

			seg_serialize(s, &again, &lay);
			snprintf(sum, sizeof(sum), "%016" PRIx64, lay.segment_checksum);
			json_object_set_new(info, "checksum", json_string(sum));
			buf_free(&again);
		}
		json_object_set_new(j, "info", info);
	}
	return j;
}

static void readme_cell(const struct expect *e)
{
	char cell[256];

	if (strcmp(e->open, "OK") == 0)
		snprintf(cell, sizeof(cell), " OK; %zu records then %s; verify %s%s |", e->records,
			 strcmp(e->read, "OK") == 0 ? "end" : e->read, e->verify,
			 e->bad_blocks ? " (1 bad block)" : "");
	else
		snprintf(cell, sizeof(cell), " %s |", e->open);
	buf_put(&readme_rows, cell, strlen(cell));
}

/* Records one segment vector: writes the files, the JSON entry and the
 * README row.  idx may be NULL (no index file). */
static void emit(const char *name, const char *what, const struct seg *s,
		 const struct buf *file, const struct buf *idx,
		 const struct expect *plain, const struct expect *recover)
{
	char rel[256], row[1024];
	json_t *j;

	snprintf(rel, sizeof(rel), "segments/%s.kts", name);
	write_file(rel, file->p, file->len);
	j = json_pack("{s:s,s:s,s:s*}", "name", name, "description", what, "file", rel);
	if (idx) {
		snprintf(rel, sizeof(rel), "segments/%s.kti", name);
		write_file(rel, idx->p, idx->len);
		json_object_set_new(j, "index", json_string(rel));
	} else {
		json_object_set_new(j, "index", json_null());
	}
	json_object_set_new(j, "plain", expect_json(s, plain, file->len));
	json_object_set_new(j, "recover", expect_json(s, recover, file->len));
	json_object_set_new(j, "records", json_string(record_set(name, s)));
	json_object_set_new(j, "known_discrepancy", json_false());
	json_array_append_new(segments_json, j);

	snprintf(row, sizeof(row), "| `segments/%s.kts`%s | %s |", name,
		 idx ? " + `.kti`" : "", what);
	buf_put(&readme_rows, row, strlen(row));
	readme_cell(plain);
	readme_cell(recover);
	buf_put(&readme_rows, "\n", 1);
}

/* ---- the record sets ---------------------------------------------------- */

#define B(s) (s), (sizeof(s) - 1)

static const struct vhdr dup_headers[] = {
	{ B("trace"), B("a1") },
	{ B("trace"), B("b2") },     /* duplicate name, kept in order */
	{ B("nullv"), NULL, 0 },     /* null value */
	{ B(""), B("") },            /* empty name, empty value */
	{ B("bin\0\n"), B("\0\r\n\xff") },
};

static char big_value[300];

/* Every record shape of segment.md 2.1 with an offset gap (104 -> 110 and
 * 113 -> 120), out-of-order and negative timestamps, every ts_type. */
static const struct vrec shapes[] = {
	{ 100, 1763775134000, 0, B("k1"), B("v1"), NULL, 0 },
	{ 101, 1763775134001, 0, NULL, 0, B("null key"), NULL, 0 },
	{ 102, 1763775134002, 0, B(""), B(""), NULL, 0 },             /* empty key, empty value */
	{ 103, 1763775134003, 0, B("gone"), NULL, 0, NULL, 0 },       /* tombstone */
	{ 104, 1763775134004, 0, NULL, 0, NULL, 0, NULL, 0 },         /* null key and value */
	{ 110, 1763775134010, 0, B("h"), B("headers"), dup_headers, 5 },
	{ 111, 1763775000000, 0, B("\0\n\r\xff"), B("line1\nline2\0tail"), NULL, 0 }, /* earlier ts */
	{ 112, -5000, 0, B("neg"), B("before 1970"), NULL, 0 },
	{ 113, 1763775200000, 1, B("lat"), B("log append time"), NULL, 0 },
	{ 120, -1, 2, B("nots"), B("no timestamp"), NULL, 0 },
	{ 121, 1763775134121, 0, B("big"), big_value, sizeof(big_value), NULL, 0 },
};
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

/* The same records with one value changed: a segment with the same size and
 * shape as the multi-block one but other content (for a stale index). */
static struct vrec shapes_other[NSHAPES];

/* A duplicate offset: inside the block's [first, last] range, so only the
 * "strictly increasing" rule catches it. */
static const struct vrec offsets_not_increasing[] = {
	{ 104, 1763775134004, 0, B("a"), B("1"), NULL, 0 },
	{ 110, 1763775134005, 0, B("b"), B("2"), NULL, 0 },
	{ 110, 1763775134006, 0, B("c"), B("3"), NULL, 0 },
};

static const struct vrec one_record[] = {
	{ 0, 1763775134000, 0, B("key-0"), B("value-0"), NULL, 0 },
};

/* The multi-block layout used by most broken vectors: 4 + 3 + 4 records,
 * zstd, none, zstd; block 1 is the one damaged. */
static void seg_multi(struct seg *s, const struct vrec *recs, int codec_mid,
		      const struct tweak *tw1)
{
	seg_init(s);
	s->nblocks = 3;
	blk_build(&s->blocks[0], recs, 4, 1, NULL);
	blk_build(&s->blocks[1], recs + 4, 3, codec_mid, tw1);
	blk_build(&s->blocks[2], recs + 7, 4, 1, NULL);
}

/* ---- vectors ------------------------------------------------------------ */

static struct expect ok_all(size_t records, size_t blocks)
{
	struct expect e = { "OK", records, "OK", "OK", 0, blocks, 1 };
	return e;
}

static struct expect fails(const char *code)
{
	struct expect e = { code, 0, NULL, NULL, 0, 0, 0 };
	return e;
}

static void valid_vectors(void)
{
	struct seg s;
	struct buf f = { 0 }, idx = { 0 };
	struct layout lay;
	struct expect e;

	/* Empty segment: no blocks, 16-byte seek table, sentinel footer. */
	seg_init(&s);
	seg_serialize(&s, &f, &lay);
	index_serialize(&s, &lay, 1, &idx);
	e = ok_all(0, 0);
	emit("valid-empty", "sealed segment with no blocks", &s, &f, &idx, &e, &e);
	buf_free(&f);
	buf_free(&idx);

	seg_init(&s);
	s.nblocks = 1;
	blk_build(&s.blocks[0], one_record, 1, 0, NULL);
	seg_serialize(&s, &f, &lay);
	index_serialize(&s, &lay, 1, &idx);
	e = ok_all(1, 1);
	emit("valid-one-record", "one record, codec none", &s, &f, &idx, &e, &e);
	buf_free(&f);
	buf_free(&idx);
	seg_free(&s);

	for (int codec = 0; codec <= 1; codec++) {
		seg_init(&s);
		s.nblocks = 1;
		blk_build(&s.blocks[0], shapes, NSHAPES, codec, NULL);
		seg_serialize(&s, &f, &lay);
		index_serialize(&s, &lay, 1, &idx);
		e = ok_all(NSHAPES, 1);
		emit(codec ? "valid-shapes-zstd" : "valid-shapes-none",
		     codec ? "every record shape (null/empty key and value, tombstone, duplicate and null-valued headers, binary bytes, offset gaps, out-of-order and negative timestamps, LogAppendTime, no timestamp, 2-byte varints) in one zstd block"
			   : "the same records in one block, codec none",
		     &s, &f, &idx, &e, &e);
		buf_free(&f);
		buf_free(&idx);
		seg_free(&s);
	}

	seg_multi(&s, shapes, 0, NULL);
	seg_serialize(&s, &f, &lay);
	index_serialize(&s, &lay, 1, &idx);
	e = ok_all(NSHAPES, 3);
	emit("valid-multi-block", "the same records in 3 blocks (zstd, none, zstd); block 1 holds the out-of-order timestamp", &s, &f, &idx, &e, &e);
	buf_free(&idx);
	emit("valid-no-index", "valid-multi-block without its index file", &s, &f, NULL, &e, &e);
	buf_free(&f);
	seg_free(&s);
}

/* A valid multi-block segment with one byte XOR'ed at position pos. */
static void flip_vector(const char *name, const char *what, uint64_t (*where)(const struct layout *),
			const struct expect *plain, const struct expect *recover)
{
	struct seg s;
	struct buf f = { 0 }, idx = { 0 };
	struct layout lay;

	seg_multi(&s, shapes, 0, NULL);
	seg_serialize(&s, &f, &lay);
	index_serialize(&s, &lay, 1, &idx);
	f.p[where(&lay)] ^= 0x01;
	emit(name, what, &s, &f, &idx, plain, recover);
	buf_free(&f);
	buf_free(&idx);
	seg_free(&s);
}

/* Byte positions for flips; +16 lands inside raw payload bytes of the
 * uncompressed block 1, past its first record's length and attributes. */
static uint64_t at_payload(const struct layout *l) { return l->block_off[1] + BLOCK_HEADER_SIZE + 6; }
static uint64_t at_block_header(const struct layout *l) { return l->block_off[1] + 8; }
static uint64_t at_file_header(const struct layout *l) { (void)l; return 33; }
static uint64_t at_seek_table(const struct layout *l) { return l->seek_off + 16 + SEEK_ENTRY_SIZE + 24; }
static uint64_t at_footer(const struct layout *l) { return l->footer_off + 16; }

/* A multi-block segment with a defect planted in one record of block 1,
 * every checksum valid: only the record rules can catch it. */
static void record_vector(const char *name, const char *what, const struct vrec *recs,
			  const struct tweak *tw)
{
	struct seg s;
	struct buf f = { 0 }, idx = { 0 };
	struct layout lay;
	struct expect e = { "OK", 4, "KT_ECORRUPT", "KT_ECORRUPT", 1, 3, 1 };

	seg_multi(&s, recs, 0, tw);
	seg_serialize(&s, &f, &lay);
	index_serialize(&s, &lay, 1, &idx);
	emit(name, what, &s, &f, &idx, &e, &e);
	buf_free(&f);
	buf_free(&idx);
	seg_free(&s);
}

/* One planted record defect per vector; record indexes are within block 1
 * (shapes 4, 5, 6). */
static const struct {
	const char *name;
	const char *what;
	struct tweak tw;
} record_defects[] = {
	{ "bad-record-attr-reserved", "record 5 (2nd of block 1) has attributes bit 6 set",
	  { .rec = 1, .attr_or = 1u << 6 } },
	{ "bad-record-ts-type-3", "record 5 (2nd of block 1) has ts_type 3",
	  { .rec = 1, .attr_or = 3 } },
	{ "bad-record-length-overrun", "the last record of block 1 has a length 3 bytes past the block's end",
	  { .rec = 2, .length_add = 3 } },
	{ "bad-record-length-short", "the first record of block 1 has a length 1 byte longer than its fields (a byte left over inside the record)",
	  { .rec = 0, .length_add = 1 } },
	{ "bad-record-overlong-varint", "record 5 (2nd of block 1) writes key_len as a 2-byte varint (not shortest form)",
	  { .rec = 1, .overlong_key_len = 1 } },
	{ "bad-record-varint-overflow", "record 5 (2nd of block 1) writes key_len as 10 bytes ending in 02 (a value >= 2^64)",
	  { .rec = 1, .overflow_key_len = 1 } },
};

static void torn_vector(const char *name, const char *what, uint64_t cut_at,
			size_t blocks_recovered, size_t records_recovered, int cut_from_end)
{
	struct seg s;
	struct buf f = { 0 };
	struct layout lay;
	struct expect plain = fails("KT_ETRUNCATED");
	struct expect rec = { "OK", records_recovered, "OK", "KT_ETRUNCATED", 0,
			      blocks_recovered, 0 };

	seg_multi(&s, shapes, 0, NULL);
	seg_serialize(&s, &f, &lay);
	f.len = cut_from_end ? f.len - cut_at : cut_at;
	emit(name, what, &s, &f, NULL, &plain, &rec);
	buf_free(&f);
	seg_free(&s);
}

static void broken_vectors(void)
{
	struct seg s;
	struct buf f = { 0 }, idx = { 0 };
	struct layout lay;
	struct expect load_fail = { "OK", 4, "KT_ECORRUPT", "KT_ECORRUPT", 1, 3, 1 };
	struct expect corrupt = fails("KT_ECORRUPT");
	struct expect torn = fails("KT_ETRUNCATED");
	struct expect recovered_all = { "OK", NSHAPES, "OK", "KT_ETRUNCATED", 0, 3, 0 };
	struct expect e;

	flip_vector("bad-payload-flip", "one bit flipped in block 1's payload (payload checksum)",
		    at_payload, &load_fail, &load_fail);
	flip_vector("bad-block-header-flip", "one bit flipped in block 1's header record_count (header checksum)",
		    at_block_header, &load_fail, &load_fail);
	flip_vector("bad-file-header-flip", "one bit flipped in the topic name (file header checksum)",
		    at_file_header, &corrupt, &corrupt);
	flip_vector("bad-seek-table-flip", "one bit flipped in seek table entry 1 (segment checksum)",
		    at_seek_table, &corrupt, &corrupt);
	flip_vector("bad-footer-flip", "one bit flipped in the footer's record_count (footer checksum: torn)",
		    at_footer, &torn, &recovered_all);

	seg_multi(&s, shapes, 0, NULL);
	seg_serialize(&s, &f, &lay);
	torn_vector("torn-mid-block", "file cut in the middle of block 2's payload",
		    lay.block_off[2] + BLOCK_HEADER_SIZE + 10, 2, 7, 0);
	torn_vector("torn-mid-block-header", "file cut in the middle of block 1's header",
		    lay.block_off[1] + 30, 1, 4, 0);
	torn_vector("torn-mid-footer", "file cut 40 bytes before its end, inside the footer",
		    40, 3, NSHAPES, 1);
	torn_vector("torn-after-header", "only the file header was written (no block)",
		    lay.block_off[0], 0, 0, 0);
	buf_free(&f);
	seg_free(&s);

	/* Inside the header: at least 40 bytes, fewer than 40 + L. */
	seg_multi(&s, shapes, 0, NULL);
	seg_serialize(&s, &f, &lay);
	f.len = 42;
	emit("torn-in-header", "file cut inside the file header (42 of 46 bytes)", &s, &f, NULL,
	     &torn, &torn);
	f.len = 20;
	e = fails("KT_EMAGIC");
	emit("bad-short-file", "a 20-byte file with a right magic (shorter than 40 bytes)", &s, &f,
	     NULL, &e, &e);
	buf_free(&f);
	seg_free(&s);

	/* File header defects with the header checksum recomputed, so the
	 * rule itself must catch them. */
	seg_multi(&s, shapes, 0, NULL);
	s.flags = 1u << 5;
	seg_serialize(&s, &f, &lay);
	emit("bad-header-flags", "file header flags bit 5 set, checksums valid", &s, &f, NULL,
	     &corrupt, &corrupt);
	buf_free(&f);
	s.flags = 0;
	s.version = 2;
	seg_serialize(&s, &f, &lay);
	e = fails("KT_EVERSION");
	emit("bad-version-2", "file header version 2, checksums valid", &s, &f, NULL, &e, &e);
	buf_free(&f);
	s.version = 1;
	seg_serialize(&s, &f, &lay);
	f.p[7] = 'X';
	e = fails("KT_EMAGIC");
	emit("bad-magic", "file magic KTAPESEX", &s, &f, NULL, &e, &e);
	buf_free(&f);

	/* Block flags set, block header checksum recomputed (flags are not in
	 * the seek table, so only the reserved-bit rule catches it). */
	s.blocks[1].flags = 0x80;
	seg_serialize(&s, &f, &lay);
	index_serialize(&s, &lay, 1, &idx);
	emit("bad-block-flags", "block 1 flags bit 7 set, checksums valid", &s, &f, &idx,
	     &load_fail, &load_fail);
	buf_free(&f);
	buf_free(&idx);
	s.blocks[1].flags = 0;

	/* Indexes: a future version, a damaged one, one bound to another
	 * segment.  Open falls back to the seek table; verify reports them. */
	seg_serialize(&s, &f, &lay);
	index_serialize(&s, &lay, 2, &idx);
	e = ok_all(NSHAPES, 3);
	e.verify = "KT_EVERSION";
	emit("bad-index-version-2", "valid segment whose index has version 2 (checksum valid)",
	     &s, &f, &idx, &e, &e);
	buf_free(&idx);
	index_serialize(&s, &lay, 1, &idx);
	idx.p[48 + INDEX_ENTRY_SIZE + 40] ^= 0x04;
	e.verify = "KT_ECORRUPT";
	emit("bad-index-flip", "valid segment whose index has one bit flipped in entry 1's running_max_ts",
	     &s, &f, &idx, &e, &e);
	/* The same flip with the entries checksum recomputed: only the
	 * running-maximum rule can refuse it. */
	set_le(idx.p + idx.len - 8, xxh(idx.p + 48, idx.len - 56), 8);
	emit("bad-index-running-max", "valid segment whose index has a wrong running_max_ts in entry 1, index checksums valid",
	     &s, &f, &idx, &e, &e);
	buf_free(&idx);
	index_serialize(&s, &lay, 1, &idx);
	idx.len = 30;
	emit("bad-index-truncated", "valid segment whose index is cut to 30 bytes (inside its header)",
	     &s, &f, &idx, &e, &e);
	buf_free(&idx);
	index_serialize(&s, &lay, 1, &idx);
	idx.p[7] = 'Y';
	emit("bad-index-magic", "valid segment whose index magic is KTAPEIDY (not an index: verify reports it damaged, not from the future)",
	     &s, &f, &idx, &e, &e);
	buf_free(&idx);
	buf_free(&f);
	seg_free(&s);

	/* Stale index: the index of valid-multi-block next to a segment of the
	 * same size and block layout whose content differs. */
	{
		struct seg other;
		struct buf of = { 0 };
		struct layout olay;

		seg_multi(&s, shapes, 0, NULL);
		seg_serialize(&s, &f, &lay);
		index_serialize(&s, &lay, 1, &idx);
		seg_multi(&other, shapes_other, 0, NULL);
		seg_serialize(&other, &of, &olay);
		if (of.len != f.len)
			die("stale-index segments differ in size");
		e = ok_all(NSHAPES, 3);
		e.verify = "KT_ECORRUPT";
		emit("bad-index-stale", "segment with one value changed next to valid-multi-block's index (same size and blocks, other segment_checksum)",
		     &other, &of, &idx, &e, &e);
		buf_free(&of);
		buf_free(&f);
		buf_free(&idx);
		seg_free(&other);
		seg_free(&s);
	}

	/* Record-level defects in block 1, every checksum valid. */
	for (size_t i = 0; i < sizeof(record_defects) / sizeof(record_defects[0]); i++)
		record_vector(record_defects[i].name, record_defects[i].what, shapes,
			      &record_defects[i].tw);
	{
		struct vrec recs[NSHAPES];
		memcpy(recs, shapes, sizeof(recs));
		memcpy(recs + 4, offsets_not_increasing, sizeof(offsets_not_increasing));
		record_vector("bad-record-offset-repeated", "block 1 holds offsets 104, 110, 110 (header first 104, last 110)", recs, &no_tweak);
	}

}

/* Byte patches of a valid multi-block segment that opening must refuse:
 * the little-endian field of `width` bytes at `rel` from the start of the
 * structure `fix` names gets `delta` added, then that structure's checksums
 * are recomputed so that only the broken rule can catch the defect. */
enum repair { FIX_FILE_HEADER, FIX_SEEK_TABLE, FIX_FOOTER };

static void patch_vector(const char *name, const char *what, enum repair fix, uint64_t rel,
			 size_t width, int64_t delta, const char *outcome)
{
	struct seg s;
	struct buf f = { 0 };
	struct layout lay;
	struct expect e = fails(outcome);
	uint64_t base = 0, v = 0;

	seg_multi(&s, shapes, 0, NULL);
	seg_serialize(&s, &f, &lay);
	if (fix == FIX_SEEK_TABLE)
		base = lay.seek_off;
	else if (fix == FIX_FOOTER)
		base = lay.footer_off;
	for (size_t i = 0; i < width; i++)
		v |= (uint64_t)f.p[base + rel + i] << (8 * i);
	set_le(f.p + base + rel, v + (uint64_t)delta, width);
	if (fix == FIX_FILE_HEADER)
		rehash_file_header(&f, strlen(TOPIC));
	else if (fix == FIX_SEEK_TABLE)
		reseal(&f, &lay);
	else
		rehash_footer(&f, &lay);
	emit(name, what, &s, &f, NULL, &e, &e);
	buf_free(&f);
	seg_free(&s);
}

/* A multi-block segment whose fields were changed in the structures before
 * serialising, so header, seek table and footer agree with each other and
 * only the rule named in `what` is broken. */
static void struct_vector(const char *name, const char *what, struct seg *s,
			  const struct expect *e)
{
	struct buf f = { 0 }, idx = { 0 };
	struct layout lay;

	seg_serialize(s, &f, &lay);
	index_serialize(s, &lay, 1, &idx);
	emit(name, what, s, &f, strcmp(e->open, "OK") == 0 ? &idx : NULL, e, e);
	buf_free(&f);
	buf_free(&idx);
	seg_free(s);
}

static void structure_vectors(void)
{
	struct seg s;
	struct buf f = { 0 };
	struct layout lay;
	struct expect corrupt = fails("KT_ECORRUPT");
	struct expect load0 = { "OK", 0, "KT_ECORRUPT", "KT_ECORRUPT", 1, 3, 1 };
	struct expect load1 = { "OK", 4, "KT_ECORRUPT", "KT_ECORRUPT", 1, 3, 1 };
	struct expect e;

	/* File header rules (row 3 and 5), header checksum recomputed. */
	patch_vector("bad-version-0", "file header version 0, checksum valid",
		     FIX_FILE_HEADER, 8, 2, -1, "KT_ECORRUPT");
	patch_vector("bad-header-size", "file header header_size 47 instead of 46, checksum valid",
		     FIX_FILE_HEADER, 10, 2, 1, "KT_ECORRUPT");
	patch_vector("bad-topic-len-250", "file header topic_len 250 (above Kafka's 249)",
		     FIX_FILE_HEADER, 20, 2, 244, "KT_ECORRUPT");
	patch_vector("bad-header-reserved", "file header reserved u16 at byte 22 is 1, checksum valid",
		     FIX_FILE_HEADER, 22, 2, 1, "KT_ECORRUPT");
	/* Two damaged blocks: verify counts both and reports the first. */
	seg_multi(&s, shapes, 0, NULL);
	seg_serialize(&s, &f, &lay);
	{
		struct buf idx = { 0 };
		struct expect two = { "OK", 0, "KT_ECORRUPT", "KT_ECORRUPT", 2, 3, 1 };

		index_serialize(&s, &lay, 1, &idx);
		f.p[lay.block_off[0] + BLOCK_HEADER_SIZE + 5] ^= 0x01;
		f.p[lay.block_off[2] + BLOCK_HEADER_SIZE + 5] ^= 0x01;
		emit("bad-two-blocks", "one bit flipped in the payloads of blocks 0 and 2", &s, &f, &idx,
		     &two, &two);
		buf_free(&idx);
		/* Block 0 damaged and a future index: the block comes first. */
		f.p[lay.block_off[2] + BLOCK_HEADER_SIZE + 5] ^= 0x01;
		index_serialize(&s, &lay, 2, &idx);
		two.bad_blocks = 1;
		emit("bad-block-and-index-version-2", "block 0's payload has a flipped bit and the index has version 2: verify reports the block (row 17 before row 19)",
		     &s, &f, &idx, &two, &two);
		buf_free(&idx);
	}
	buf_free(&f);
	seg_free(&s);

	seg_multi(&s, shapes, 0, NULL);
	s.partition = -1;
	struct_vector("bad-partition-negative", "file header partition -1, checksums valid", &s, &corrupt);
	seg_multi(&s, shapes, 0, NULL);
	s.topic = "ord\0rs";
	s.topic_len = 6;
	struct_vector("bad-topic-nul", "topic name holds a NUL byte (\"ord\\0rs\"), checksums valid", &s, &corrupt);

	/* Seek table and footer rules (rows 7-11), checked at open. */
	patch_vector("bad-seek-entry-size", "seek table entry_size 65, segment and footer checksums valid",
		     FIX_SEEK_TABLE, 4, 4, 1, "KT_EVERSION");
	patch_vector("bad-seek-entry-reserved", "seek table entry 1's reserved byte 21 is 1, checksums valid",
		     FIX_SEEK_TABLE, 16 + SEEK_ENTRY_SIZE + 21, 1, 1, "KT_ECORRUPT");
	patch_vector("bad-seek-magic", "seek table magic KTSX, segment and footer checksums valid",
		     FIX_SEEK_TABLE, 3, 1, 'X' - 'K', "KT_ECORRUPT");
	patch_vector("bad-seek-not-contiguous", "seek table entry 1's file_offset one byte late, checksums valid",
		     FIX_SEEK_TABLE, 16 + SEEK_ENTRY_SIZE, 8, 1, "KT_ECORRUPT");
	patch_vector("bad-seek-block-count", "seek table block_count 4 for 3 entries (footer says 3), checksums valid",
		     FIX_SEEK_TABLE, 8, 8, 1, "KT_ECORRUPT");
	patch_vector("bad-footer-record-count", "footer record_count 12 for 11 records, footer checksum valid",
		     FIX_FOOTER, 16, 8, 1, "KT_ECORRUPT");
	patch_vector("bad-footer-seek-offset", "footer seek_table_offset 8 bytes early, footer checksum valid",
		     FIX_FOOTER, 0, 8, -8, "KT_ECORRUPT");
	patch_vector("bad-footer-min-ts", "footer min_ts one less than the blocks' minimum, footer checksum valid",
		     FIX_FOOTER, 40, 8, -1, "KT_ECORRUPT");

	/* block_count 3 + 2^58: 64 x N wraps to 192 in 64-bit arithmetic, so
	 * a reader that does not guard the multiplication finds the sizes
	 * consistent and then allocates 2^58 entries.  Seek table and footer
	 * agree, every checksum is valid. */
	seg_multi(&s, shapes, 0, NULL);
	seg_serialize(&s, &f, &lay);
	set_le(f.p + lay.seek_off + 8, 3 + (1ull << 58), 8);
	set_le(f.p + lay.footer_off + 8, 3 + (1ull << 58), 8);
	reseal(&f, &lay);
	emit("bad-block-count-overflow", "seek table and footer block_count 3 + 2^58 (64 x N wraps to 192), checksums valid",
	     &s, &f, NULL, &corrupt, &corrupt);
	buf_free(&f);
	/* The index's block_count 3 + 2^60: 48 x N wraps to 144. */
	seg_serialize(&s, &f, &lay);
	{
		struct buf idx = { 0 };
		index_serialize(&s, &lay, 1, &idx);
		set_le(idx.p + 16, 3 + (1ull << 60), 8);
		set_le(idx.p + 40, xxh(idx.p, 40), 8);
		e = ok_all(NSHAPES, 3);
		e.verify = "KT_ECORRUPT";
		emit("bad-index-count-overflow", "valid segment whose index says 3 + 2^60 blocks (48 x N wraps to 144), index checksums valid",
		     &s, &f, &idx, &e, &e);
		buf_free(&idx);
	}
	buf_free(&f);
	seg_free(&s);

	/* Entry rules checked at open, though the block header agrees. */
	seg_multi(&s, shapes, 0, NULL);
	s.blocks[1].codec = 2;
	struct_vector("bad-codec-unknown", "block 1 codec 2 in its header and seek table entry, checksums valid", &s, &corrupt);
	seg_multi(&s, shapes, 0, NULL);
	s.blocks[1].raw_size += 1;
	struct_vector("bad-codec-none-sizes", "block 1 (codec none) raw_size one more than stored_size everywhere, checksums valid", &s, &corrupt);
	{
		static struct vrec overlap[NSHAPES];
		memcpy(overlap, shapes, sizeof(shapes));
		/* Block 1 starts at offset 103, block 0's last. */
		overlap[4].offset = 103;
		seg_multi(&s, overlap, 0, NULL);
		struct_vector("bad-blocks-overlap", "block 1's first_offset (103) equals block 0's last_offset", &s, &corrupt);
	}

	seg_multi(&s, shapes, 0, NULL);
	s.blocks[0].raw_size = (1u << 28) + (1u << 30) + 65;
	struct_vector("bad-raw-size-cap", "block 0 raw_size 2^28 + 2^30 + 65 (one above the maximum) in header and entry", &s, &corrupt);

	/* Block rules checked at load (rows 13-16). */
	seg_multi(&s, shapes, 0, NULL);
	blk_zstd_without_size(&s.blocks[0]);
	struct_vector("bad-zstd-no-content-size", "block 0 is a zstd frame that does not declare its content size, checksums valid", &s, &load0);
	seg_multi(&s, shapes, 0, NULL);
	{
		struct buf longer = { 0 };
		buf_put(&longer, s.blocks[0].payload.p, s.blocks[0].payload.len);
		buf_put(&longer, "", 1);
		blk_set_payload(&s.blocks[0], longer.p, longer.len);
		buf_free(&longer);
	}
	struct_vector("bad-zstd-trailing-byte", "block 0's zstd frame is followed by one 00 byte inside stored_size, checksums valid", &s, &load0);
	seg_multi(&s, shapes, 0, NULL);
	s.blocks[0].raw_size += 1;
	e = load0;
	struct_vector("bad-zstd-raw-size", "block 0 (zstd) raw_size one more than the frame's content, checksums valid", &s, &e);
	seg_multi(&s, shapes, 0, NULL);
	s.blocks[1].record_count = 2;
	struct_vector("bad-record-count", "block 1 says 2 records (header, entry, footer) but holds 3", &s, &load1);
	seg_multi(&s, shapes, 0, NULL);
	s.blocks[1].max_ts += 1;
	struct_vector("bad-max-ts-not-attained", "block 1 max_ts one more than its largest timestamp (header, entry, index)", &s, &load1);

	/* A block header that disagrees with its seek table entry. */
	seg_multi(&s, shapes, 0, NULL);
	seg_serialize(&s, &f, &lay);
	{
		struct buf idx = { 0 };
		index_serialize(&s, &lay, 1, &idx);
		set_le(f.p + lay.block_off[1] + 48, (uint64_t)(s.blocks[1].max_ts + 1), 8);
		rehash_block_header(&f, lay.block_off[1]);
		emit("bad-block-entry-disagree", "block 1 header max_ts differs from its seek table entry, header checksum valid",
		     &s, &f, &idx, &load1, &load1);
		buf_free(&idx);
	}
	buf_free(&f);
	seg_free(&s);
}

/* Torn files whose recovery walk must stop early (segment.md section 7). */
/* Records a torn file (no valid footer) and frees what made it. */
static void emit_torn(const char *name, const char *what, struct seg *s, struct buf *f,
		      const struct expect *recover)
{
	struct expect torn = fails("KT_ETRUNCATED");

	emit(name, what, s, f, NULL, &torn, recover);
	buf_free(f);
	seg_free(s);
}

static void recovery_vectors(void)
{
	struct seg s;
	struct buf f = { 0 };
	struct layout lay;
	struct expect one_block = { "OK", 4, "OK", "KT_ETRUNCATED", 0, 1, 0 };
	struct expect none = { "OK", 0, "OK", "KT_ETRUNCATED", 0, 0, 0 };
	static struct vrec overlap[NSHAPES];

	/* Block 1's flags set (header checksum valid): the walk must apply
	 * the header rules, not only the checksum. */
	seg_multi(&s, shapes, 0, NULL);
	s.blocks[1].flags = 0x80;
	seg_serialize(&s, &f, &lay);
	f.len = lay.footer_off + 10;
	emit_torn("torn-bad-block-flags", "torn in the footer; block 1 has flags bit 7 set (header checksum valid)",
		  &s, &f, &one_block);

	seg_multi(&s, shapes, 0, NULL);
	seg_serialize(&s, &f, &lay);
	f.p[lay.block_off[1] + BLOCK_HEADER_SIZE + 6] ^= 0x01;
	f.len = lay.block_off[2] + 20;
	emit_torn("torn-payload-flip", "cut inside block 2's header; block 1's payload has a flipped bit",
		  &s, &f, &one_block);

	memcpy(overlap, shapes, sizeof(shapes));
	overlap[4].offset = 103;
	seg_multi(&s, overlap, 0, NULL);
	seg_serialize(&s, &f, &lay);
	f.len = lay.footer_off + 79;
	emit_torn("torn-offsets-overlap", "cut 1 byte short of the end; block 1's first_offset (103) is not above block 0's last (103)",
		  &s, &f, &one_block);

	/* A torn file whose accepted block 1 has a record defect under valid
	 * checksums: verify reports the block (row 17) before the missing
	 * footer (row 18). */
	{
		struct expect bad_then_torn = { "OK", 4, "KT_ECORRUPT", "KT_ECORRUPT", 1, 3, 0 };
		struct tweak tw = { .rec = 1, .attr_or = 1u << 4 };

		seg_multi(&s, shapes, 0, &tw);
		seg_serialize(&s, &f, &lay);
		f.len = lay.footer_off + 40;
		emit_torn("torn-bad-record", "torn in the footer; record 5 in block 1 has attributes bit 4 set (checksums valid)",
			  &s, &f, &bad_then_torn);
	}

	/* Recovery accepts a block on its header rules and checksums; a zstd
	 * frame problem (row 15) shows only when the block is loaded. */
	{
		struct expect frame_then_rest = { "OK", 0, "KT_ECORRUPT", "KT_ECORRUPT", 1, 3, 0 };

		seg_multi(&s, shapes, 0, NULL);
		blk_zstd_without_size(&s.blocks[0]);
		seg_serialize(&s, &f, &lay);
		f.len = lay.footer_off + 40;
		emit_torn("torn-bad-zstd-frame", "torn in the footer; block 0 is a zstd frame without a content size (checksums valid): recovered, then refused when loaded",
			  &s, &f, &frame_then_rest);
	}

	/* A block header checksum mismatch at block 0: nothing is accepted. */
	seg_multi(&s, shapes, 0, NULL);
	seg_serialize(&s, &f, &lay);
	f.p[lay.block_off[0] + 40] ^= 0x10;
	f.len = lay.seek_off;
	emit_torn("torn-first-block-bad", "no seek table or footer; block 0's header has a flipped bit",
		  &s, &f, &none);
}

/* Values at the edges of their types, all valid: 64-bit timestamps from
 * INT64_MIN to INT64_MAX in one block (ts_delta above INT64_MAX), offsets
 * past 2^53 (exact only as integers), keys across the 1/2-byte varint
 * boundary, a header-heavy record. */
static char key127[127], key128[128];
static const struct vhdr many_headers[] = {
	{ B("a"), B("1") }, { B("a"), NULL, 0 }, { B("a"), B("") }, { B("b"), B("2") },
	{ B("a"), B("1") }, { B("c"), B("3") }, { B("\xff"), B("\x00") }, { B("d"), B("4") },
};
static struct vrec extremes[] = {
	{ 0, INT64_MIN, 0, B(""), NULL, 0, NULL, 0 },
	{ 1, INT64_MAX, 1, NULL, 0, B(""), NULL, 0 },
	{ 2, 0, 0, key127, sizeof(key127), key128, sizeof(key128), NULL, 0 },
	{ 9007199254740993, -1, 2, key128, sizeof(key128), B("x"), many_headers, 8 },
	{ 9007199254740994, 1, 0, B("k"), B("v"), NULL, 0 },
};

/* Five blocks whose max_ts are 500, 100, 200, 300, 900: not monotonic, so
 * a binary search over max_ts instead of running_max_ts finds the wrong
 * block for, e.g., time 150 (block 0 holds 500, the first ts >= 150). */
static const struct vrec time_order[] = {
	{ 10, 400, 0, B("a"), B("1"), NULL, 0 }, { 11, 500, 0, B("b"), B("2"), NULL, 0 },
	{ 12, 50, 0, B("c"), B("3"), NULL, 0 },  { 13, 100, 0, B("d"), B("4"), NULL, 0 },
	{ 14, 150, 0, B("e"), B("5"), NULL, 0 }, { 15, 200, 0, B("f"), B("6"), NULL, 0 },
	{ 16, 250, 0, B("g"), B("7"), NULL, 0 }, { 17, 300, 0, B("h"), B("8"), NULL, 0 },
	{ 18, 600, 0, B("i"), B("9"), NULL, 0 }, { 19, 900, 0, B("j"), B("10"), NULL, 0 },
};

static void extreme_vectors(void)
{
	struct seg s;
	struct buf f = { 0 }, idx = { 0 };
	struct layout lay;
	struct expect e;

	seg_init(&s);
	s.nblocks = 5;
	for (size_t i = 0; i < 5; i++)
		blk_build(&s.blocks[i], time_order + 2 * i, 2, (int)(i & 1), NULL);
	seg_serialize(&s, &f, &lay);
	index_serialize(&s, &lay, 1, &idx);
	e = ok_all(10, 5);
	emit("valid-time-order", "5 blocks of 2 records whose max_ts (500, 100, 200, 300, 900) are not monotonic: time lookups need the running maximum",
	     &s, &f, &idx, &e, &e);
	buf_free(&f);
	buf_free(&idx);
	seg_free(&s);

	memset(key127, 'K', sizeof(key127));
	memset(key128, 'L', sizeof(key128));
	seg_init(&s);
	s.nblocks = 2;
	blk_build(&s.blocks[0], extremes, 3, 1, NULL);
	blk_build(&s.blocks[1], extremes + 3, 2, 0, NULL);
	seg_serialize(&s, &f, &lay);
	index_serialize(&s, &lay, 1, &idx);
	e = ok_all(5, 2);
	emit("valid-extremes", "timestamps INT64_MIN..INT64_MAX in one zstd block, offsets past 2^53, keys of 127 and 128 bytes, 8 headers with duplicates and a null value",
	     &s, &f, &idx, &e, &e);
	buf_free(&f);
	buf_free(&idx);
	seg_free(&s);
}

/* ---- repository vectors -------------------------------------------------- */

static json_t *repo_json;

/* Writes j as indented JSON with a final newline. */
static void put_json_file(const char *rel, json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	struct buf b = { 0 };

	if (!s)
		die("json_dumps failed");
	buf_put(&b, s, strlen(s));
	buf_put(&b, "\n", 1);
	write_file(rel, b.p, b.len);
	buf_free(&b);
	free(s);
}

static const char SNAP_ID[] = "20261122T013214123Z-9f3a0c1e";
static const char SEG_REL[] = "segments/orders/3/00000000000000000000-5b0c9e2f7d41a8c3.kts";

static json_t *marker(int version, const char *format)
{
	return json_pack("{s:s,s:i,s:s,s:I}", "format", format, "version", version,
			 "id", "6b1d0c3e5f7a49e2a1c4d8b0f2e6a9c7",
			 "created_ms", (json_int_t)CREATED_MS);
}

/* A manifest of repository.md section 4 for the one-record segment. */
static json_t *manifest(int version, const char *seg_path, const struct seg *s,
			const struct layout *lay)
{
	const struct blk *b = &s->blocks[0];
	char sum[17];
	json_t *ref, *part, *topic;

	snprintf(sum, sizeof(sum), "%016" PRIx64, lay->segment_checksum);
	ref = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s}",
		"path", seg_path,
		"first_offset", (json_int_t)b->first_offset, "last_offset", (json_int_t)b->last_offset,
		"min_ts", (json_int_t)b->min_ts, "max_ts", (json_int_t)b->max_ts,
		"records", (json_int_t)b->record_count, "raw_bytes", (json_int_t)b->raw_size,
		"file_size", (json_int_t)lay->size, "checksum", sum);
	part = json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:[o],s:[]}",
		"partition", 3, "log_start_offset", (json_int_t)0, "start_offset", (json_int_t)0,
		"end_offset", (json_int_t)(b->last_offset + 1),
		"records", (json_int_t)b->record_count, "raw_bytes", (json_int_t)b->raw_size,
		"min_ts", (json_int_t)b->min_ts, "max_ts", (json_int_t)b->max_ts,
		"complete", 1, "segments", ref, "gaps");
	topic = json_pack("{s:s,s:i,s:i,s:{s:s},s:[o]}",
		"name", TOPIC, "partition_count", 4, "replication_factor", 1,
		"configs", "cleanup.policy", "delete", "partitions", part);
	return json_pack("{s:s,s:i,s:s,s:n,s:s,s:I,s:I,s:s,s:s,s:[o],s:[{s:s,s:s,s:i,s:I,s:n}]}",
		"format", "ktape-snapshot", "version", version, "id", SNAP_ID, "parent",
		"kind", "full", "started_ms", (json_int_t)CREATED_MS,
		"completed_ms", (json_int_t)(CREATED_MS + 2500),
		"source", "localhost:9092", "tool_version", "0.1.0",
		"topics", topic,
		"groups", "group", "billing", "topic", TOPIC, "partition", 3,
		"offset", (json_int_t)1, "metadata");
}

/* One repository vector: a directory with a marker and at most one
 * manifest (built by manifest(), then altered by mutate), with the
 * one-record segment when a load must reach it; expectations for
 * kt_store_repo_open, kt_store_snapshot_from_json on the manifest, and
 * kt_store_repo_load_snapshot. */
struct repo_case {
	const char *name;
	const char *what;
	int marker_version;
	const char *marker_format;
	int manifest_version; /* 0: no manifest */
	const char *seg_path;
	void (*mutate)(json_t *manifest);
	int with_segment;
	const char *open;
	const char *from_json;
	const char *load;
};

static json_t *first_partition(json_t *m)
{
	return json_array_get(json_object_get(json_array_get(json_object_get(m, "topics"), 0),
					      "partitions"), 0);
}

static void m_format_wrong(json_t *m)
{
	json_object_set_new(m, "format", json_string("ktape-repository"));
}

static void m_version_missing(json_t *m)
{
	json_object_del(m, "version");
}

static void m_kind_unknown(json_t *m)
{
	json_object_set_new(m, "kind", json_string("weekly"));
}

static void m_unknown_fields(json_t *m)
{
	json_t *part = first_partition(m);

	json_object_set_new(m, "future_field", json_pack("{s:i,s:[s]}", "x", 1, "y", "z"));
	json_object_set_new(part, "future_flag", json_true());
	json_object_set_new(json_array_get(json_object_get(part, "segments"), 0), "future",
			    json_string("ignored"));
}

static void m_records_mismatch(json_t *m)
{
	json_object_set_new(first_partition(m), "records", json_integer(2));
}

static void m_end_before_start(json_t *m)
{
	json_object_set_new(first_partition(m), "start_offset", json_integer(5));
	json_object_set_new(first_partition(m), "end_offset", json_integer(4));
}

static void m_segment_below_start(json_t *m)
{
	json_object_set_new(first_partition(m), "start_offset", json_integer(1));
	json_object_set_new(first_partition(m), "end_offset", json_integer(2));
}

static void repo_vector(const struct repo_case *rc, const struct seg *s,
			const struct buf *segfile, const struct buf *idxfile,
			const struct layout *lay)
{
	char rel[512], root[256], row[1024];
	json_t *files = json_array(), *m, *j;

	snprintf(root, sizeof(root), "repo/%s", rc->name);
	snprintf(rel, sizeof(rel), "%s/ktape-repository.json", root);
	m = marker(rc->marker_version, rc->marker_format);
	put_json_file(rel, m);
	json_decref(m);
	json_array_append_new(files, json_string("ktape-repository.json"));
	if (rc->manifest_version) {
		snprintf(rel, sizeof(rel), "%s/snapshots/%s.json", root, SNAP_ID);
		m = manifest(rc->manifest_version, rc->seg_path, s, lay);
		if (rc->mutate)
			rc->mutate(m);
		put_json_file(rel, m);
		json_decref(m);
		snprintf(rel, sizeof(rel), "snapshots/%s.json", SNAP_ID);
		json_array_append_new(files, json_string(rel));
	}
	if (rc->with_segment) {
		char kti[200];
		snprintf(rel, sizeof(rel), "%s/%s", root, SEG_REL);
		write_file(rel, segfile->p, segfile->len);
		snprintf(kti, sizeof(kti), "%s", SEG_REL);
		memcpy(kti + strlen(kti) - 1, "i", 1);
		snprintf(rel, sizeof(rel), "%s/%s", root, kti);
		write_file(rel, idxfile->p, idxfile->len);
		json_array_append_new(files, json_string(SEG_REL));
		json_array_append_new(files, json_string(kti));
	}
	j = json_pack("{s:s,s:s,s:s,s:o,s:s}", "name", rc->name, "description", rc->what,
		      "root", root, "files", files, "open", rc->open);
	if (rc->manifest_version) {
		snprintf(rel, sizeof(rel), "snapshots/%s.json", SNAP_ID);
		json_object_set_new(j, "manifest", json_string(rel));
		json_object_set_new(j, "snapshot", json_string(SNAP_ID));
		json_object_set_new(j, "from_json", json_string(rc->from_json));
		json_object_set_new(j, "load", json_string(rc->load));
		json_object_set_new(j, "segment_path", json_string(rc->seg_path));
	}
	json_object_set_new(j, "known_discrepancy", json_false());
	json_array_append_new(repo_json, j);

	snprintf(row, sizeof(row), "| `%s/` | %s | %s | %s | %s |\n", root, rc->what, rc->open,
		 rc->manifest_version ? rc->from_json : "-", rc->manifest_version ? rc->load : "-");
	buf_puts(&readme_rows, row);
}

#define REPO_OK 1, "ktape-repository"
#define DOTDOT_PATH "../outside/00000000000000000000-5b0c9e2f7d41a8c3.kts"
static const struct repo_case repo_cases[] = {
	{ "valid", "a repository with one full snapshot of one segment (valid-one-record as orders/3)",
	  REPO_OK, 1, SEG_REL, NULL, 1, "OK", "OK", "OK" },
	{ "unknown-fields", "manifest with unknown fields at the top, in a partition and in a segment reference (ignored)",
	  REPO_OK, 1, SEG_REL, m_unknown_fields, 1, "OK", "OK", "OK" },
	{ "future-marker", "repository marker with version 2",
	  2, "ktape-repository", 0, NULL, NULL, 0, "KT_EVERSION", NULL, NULL },
	{ "wrong-format-marker", "repository marker whose format is \"ktape-snapshot\"",
	  1, "ktape-snapshot", 0, NULL, NULL, 0, "KT_EMAGIC", NULL, NULL },
	{ "future-manifest", "valid marker, manifest with version 2",
	  REPO_OK, 2, SEG_REL, NULL, 0, "OK", "KT_EVERSION", "KT_EVERSION" },
	{ "wrong-format-manifest", "manifest whose format is \"ktape-repository\"",
	  REPO_OK, 1, SEG_REL, m_format_wrong, 0, "OK", "KT_EMAGIC", "KT_EMAGIC" },
	{ "versionless-manifest", "manifest without a version field",
	  REPO_OK, 1, SEG_REL, m_version_missing, 0, "OK", "KT_ECORRUPT", "KT_ECORRUPT" },
	{ "unknown-kind-manifest", "manifest whose kind is \"weekly\"",
	  REPO_OK, 1, SEG_REL, m_kind_unknown, 0, "OK", "KT_ECORRUPT", "KT_ECORRUPT" },
	{ "dotdot-manifest", "manifest whose segment path starts with \"../\"",
	  REPO_OK, 1, DOTDOT_PATH, NULL, 0, "OK", "KT_ECORRUPT", "KT_ECORRUPT" },
	{ "inner-dotdot-manifest", "manifest whose segment path climbs out through \"segments/../../\"",
	  REPO_OK, 1, "segments/../../etc/passwd", NULL, 0, "OK", "KT_ECORRUPT", "KT_ECORRUPT" },
	{ "absolute-path-manifest", "manifest whose segment path is absolute",
	  REPO_OK, 1, "/etc/passwd", NULL, 0, "OK", "KT_ECORRUPT", "KT_ECORRUPT" },
	{ "dot-component-manifest", "manifest whose segment path has a \".\" component",
	  REPO_OK, 1, "segments/./orders/3/00000000000000000000-5b0c9e2f7d41a8c3.kts", NULL, 0,
	  "OK", "KT_ECORRUPT", "KT_ECORRUPT" },
	{ "empty-component-manifest", "manifest whose segment path has an empty component (\"//\")",
	  REPO_OK, 1, "segments//orders/3/00000000000000000000-5b0c9e2f7d41a8c3.kts", NULL, 0,
	  "OK", "KT_ECORRUPT", "KT_ECORRUPT" },
	{ "empty-path-manifest", "manifest whose segment path is empty",
	  REPO_OK, 1, "", NULL, 0, "OK", "KT_ECORRUPT", "KT_ECORRUPT" },
	{ "records-mismatch-manifest", "partition records 2, its one segment holds 1",
	  REPO_OK, 1, SEG_REL, m_records_mismatch, 0, "OK", "KT_ECORRUPT", "KT_ECORRUPT" },
	{ "end-before-start-manifest", "partition end_offset 4 below start_offset 5",
	  REPO_OK, 1, SEG_REL, m_end_before_start, 0, "OK", "KT_ECORRUPT", "KT_ECORRUPT" },
	{ "segment-outside-range-manifest", "segment at offset 0 in a partition covering [1, 2)",
	  REPO_OK, 1, SEG_REL, m_segment_below_start, 0, "OK", "KT_ECORRUPT", "KT_ECORRUPT" },
};

static void repo_vectors(void)
{
	struct seg s;
	struct buf f = { 0 }, idx = { 0 };
	struct layout lay;

	seg_init(&s);
	s.nblocks = 1;
	blk_build(&s.blocks[0], one_record, 1, 0, NULL);
	seg_serialize(&s, &f, &lay);
	index_serialize(&s, &lay, 1, &idx);

	buf_puts(&readme_rows, "\n| Repository | What it is | kt_store_repo_open | kt_store_snapshot_from_json | kt_store_repo_load_snapshot |\n|---|---|---|---|---|\n");
	for (size_t i = 0; i < sizeof(repo_cases) / sizeof(repo_cases[0]); i++)
		repo_vector(&repo_cases[i], &s, &f, &idx, &lay);
	buf_free(&f);
	buf_free(&idx);
	seg_free(&s);
}

/* ---- README -------------------------------------------------------------- */

static const char README_HEAD[] =
"# ktape format test vectors\n"
"\n"
"Small files that exercise [segment.md](../segment.md) and\n"
"[repository.md](../repository.md), with the outcome every reader must give.\n"
"They are written by `tests/vectors/mkvectors.c`, an encoder built from the\n"
"spec alone (it shares no code with `src/store`); regenerate them with\n"
"`ninja -C <build> vectors` after a format change, in the same commit.\n"
"`vectors.json` holds the same expectations, and every record a valid\n"
"vector holds, for `tests/unit/test_store_vectors.c`.\n"
"\n"
"Conventions: all segments are topic `orders`, partition 3, created at\n"
"1763775134123. Most broken files are `valid-multi-block` (11 records in\n"
"blocks of 4, 3 and 4: zstd, none, zstd) with one defect in block 1 or in the\n"
"structures around the blocks; where the defect must be caught by a rule\n"
"rather than a checksum, every checksum around it is recomputed. Bytes of zstd\n"
"payloads may differ with another libzstd version; the decoded records and the\n"
"expectations do not.\n"
"\n"
"Columns: *plain* is `kt_store_reader_open(path, 0)`, *recover* is\n"
"`kt_store_reader_open(path, KT_STORE_OPEN_RECOVER)`. \"OK; N records then X;\n"
"verify Y\" means open succeeds, `kt_store_reader_next` returns N records\n"
"(equal to the first N listed in `vectors.json`) and then X (`end`: returns 0;\n"
"otherwise that error), and `kt_store_reader_verify` on a fresh reader returns\n"
"Y. Readers also expose in `kt_store_reader_info` the block and record counts,\n"
"offsets, timestamps, `sealed` and (sealed only) the segment checksum given in\n"
"`vectors.json` under `info`. For every vector read to its end, the test also\n"
"checks lookups by offset and time (`find_*`, `seek_*`) for every record's\n"
"offset and timestamp and their successors against a linear scan\n"
"(segment.md 5.1), through the index and with `KT_STORE_OPEN_NO_INDEX`. When a\n"
"read stops at a damaged block, `resume_block` and `resume_records` say that\n"
"`kt_store_reader_seek_block` past it must still give the remaining records.\n"
"\n"
"Regenerating: remove `segments/` and `repo/` first, so that a renamed vector\n"
"leaves no stale file (`test_every_vector_file_is_listed` catches one).\n"
"\n"
"Disagreements found between `src/store` and these expectations are listed in\n"
"[DISCREPANCIES.md](DISCREPANCIES.md) and marked `known_discrepancy` in\n"
"`vectors.json`.\n"
"\n"
"| Segment | What it is | plain | recover |\n"
"|---|---|---|---|\n";

int main(int argc, char **argv)
{
	json_t *root;
	struct buf readme = { 0 };

	if (argc != 2) {
		fprintf(stderr, "usage: mkvectors OUTDIR\n");
		return 2;
	}
	outdir = argv[1];
	for (size_t i = 0; i < sizeof(big_value); i++)
		big_value[i] = (char)('a' + i % 26);
	memcpy(shapes_other, shapes, sizeof(shapes));
	/* Same length, other bytes, in the uncompressed block 1, so the two
	 * segments have the same size and layout. */
	shapes_other[5].value = "HEADERS";

	segments_json = json_array();
	record_sets = json_object();
	repo_json = json_array();
	valid_vectors();
	extreme_vectors();
	broken_vectors();
	structure_vectors();
	recovery_vectors();
	repo_vectors();

	root = json_pack("{s:i,s:o,s:o,s:o}", "format_version", 1, "segments", segments_json,
			 "repositories", repo_json, "record_sets", record_sets);
	put_json_file("vectors.json", root);
	json_decref(root);

	buf_put(&readme, README_HEAD, strlen(README_HEAD));
	buf_put(&readme, readme_rows.p, readme_rows.len);
	write_file("README.md", readme.p, readme.len);
	buf_free(&readme);
	buf_free(&readme_rows);
	return 0;
}
