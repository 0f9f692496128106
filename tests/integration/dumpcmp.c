/*
 * dumpcmp - compares two dumps of Kafka records as JSON lines, field by
 * field, and prints the first difference.
 *
 * Either input may be kcat -J output or ktape's (docs/json-records.md).
 * kcat writes bytes that are not UTF-8 raw inside its JSON strings and
 * escapes control bytes as \u00XX, so its output is not JSON; the small
 * parser here takes string bytes as they come, decodes escapes to UTF-8,
 * and accepts ktape's {"base64":"..."} form for a byte string.  Both dumps
 * are decoded to bytes before comparing, so a kcat dump and a ktape dump of
 * the same records compare equal.
 *
 * Exit status: 0 equal, 1 different, 2 usage or unreadable input.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bytes {
	char *p;   /* NULL: JSON null (or absent) */
	size_t len;
};

struct header {
	struct bytes name;
	struct bytes value;
};

struct rec {
	struct bytes topic;
	int64_t partition;
	int64_t offset;
	struct bytes tstype;
	int64_t ts;
	struct bytes key;
	struct bytes payload;
	struct header *headers;
	size_t header_count;
	size_t line;   /* 1-based line in its file */
	size_t seq;    /* position in the file, for a stable sort */
};

struct dump {
	const char *path;
	struct rec *recs;
	size_t count;
	size_t cap;
};

struct rename {
	char *from;
	char *to;
};

static struct {
	int ignore_topic;
	int ignore_partition;
	int ignore_offsets;
	int ignore_ts;
	int sort_content;
	int quiet;
	struct rename *renames;
	size_t rename_count;
} opt;

/* ---- a tolerant JSON-lines parser ---------------------------------------- */

struct parser {
	const char *path;
	size_t line;
	const unsigned char *p;
	const unsigned char *start;
	const unsigned char *end;
	char err[512];
};

static int perr(struct parser *ps, const char *what)
{
	snprintf(ps->err, sizeof(ps->err), "%s:%zu:%zu: %s", ps->path, ps->line,
		 (size_t)(ps->p - ps->start) + 1, what);
	return -1;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r'))
		ps->p++;
}

static int expect(struct parser *ps, char c)
{
	skip_ws(ps);
	if (ps->p >= ps->end || *ps->p != (unsigned char)c) {
		char msg[64];
		snprintf(msg, sizeof(msg), "expected '%c'", c);
		return perr(ps, msg);
	}
	ps->p++;
	return 0;
}

static int append(struct bytes *b, size_t *cap, const void *src, size_t n)
{
	if (b->len + n + 1 > *cap) {
		size_t ncap = (*cap ? *cap * 2 : 32);
		while (ncap < b->len + n + 1)
			ncap *= 2;
		char *grown = realloc(b->p, ncap);
		if (!grown)
			return -1;
		b->p = grown;
		*cap = ncap;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_u4(struct parser *ps, unsigned *out)
{
	unsigned v = 0;

	if (ps->end - ps->p < 4)
		return perr(ps, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		int h = hexval(ps->p[i]);
		if (h < 0)
			return perr(ps, "bad \\u escape");
		v = v * 16 + (unsigned)h;
	}
	ps->p += 4;
	*out = v;
	return 0;
}

/* A JSON string's bytes: raw bytes kept as they are (kcat), escapes decoded,
 * \uXXXX (and surrogate pairs) written as UTF-8. */
static int parse_string_into(struct parser *ps, struct bytes *out)
{
	size_t cap = 0;

	out->p = NULL;
	out->len = 0;
	if (expect(ps, '"'))
		return -1;
	if (append(out, &cap, "", 0))
		return perr(ps, "out of memory");
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = *ps->p++;
		char u[4];
		size_t n = 1;
		unsigned cp;

		if (c != '\\') {
			if (append(out, &cap, &c, 1))
				return perr(ps, "out of memory");
			continue;
		}
		if (ps->p >= ps->end)
			return perr(ps, "string ends inside an escape");
		c = *ps->p++;
		switch (c) {
		case '"': case '\\': case '/': u[0] = (char)c; break;
		case 'b': u[0] = '\b'; break;
		case 'f': u[0] = '\f'; break;
		case 'n': u[0] = '\n'; break;
		case 'r': u[0] = '\r'; break;
		case 't': u[0] = '\t'; break;
		case 'u':
			if (parse_u4(ps, &cp))
				return -1;
			if (cp >= 0xd800 && cp < 0xdc00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' &&
			    ps->p[1] == 'u') {
				unsigned lo;
				ps->p += 2;
				if (parse_u4(ps, &lo))
					return -1;
				if (lo < 0xdc00 || lo > 0xdfff)
					return perr(ps, "bad surrogate pair");
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp < 0x80) {
				u[0] = (char)cp;
			} else if (cp < 0x800) {
				u[0] = (char)(0xc0 | (cp >> 6));
				u[1] = (char)(0x80 | (cp & 0x3f));
				n = 2;
			} else if (cp < 0x10000) {
				u[0] = (char)(0xe0 | (cp >> 12));
				u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
				u[2] = (char)(0x80 | (cp & 0x3f));
				n = 3;
			} else {
				u[0] = (char)(0xf0 | (cp >> 18));
				u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
				u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
				u[3] = (char)(0x80 | (cp & 0x3f));
				n = 4;
			}
			break;
		default:
			return perr(ps, "unknown escape in a string");
		}
		if (append(out, &cap, u, n))
			return perr(ps, "out of memory");
	}
	if (ps->p >= ps->end)
		return perr(ps, "string not terminated on its line");
	ps->p++;
	return 0;
}

/* parse_string_into, freeing what it built when it fails. */
static int parse_string(struct parser *ps, struct bytes *out)
{
	if (parse_string_into(ps, out) == 0)
		return 0;
	free(out->p);
	out->p = NULL;
	return -1;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int base64_decode(struct parser *ps, struct bytes *b)
{
	size_t out = 0, i;
	unsigned acc = 0;
	int bits = 0;

	if (b->len % 4)
		return perr(ps, "base64 length is not a multiple of 4");
	for (i = 0; i < b->len; i++) {
		int v;
		if (b->p[i] == '=') {
			if (i + 2 < b->len || (i + 1 < b->len && b->p[i + 1] != '='))
				return perr(ps, "base64 padding in the middle");
			break;
		}
		v = b64val((unsigned char)b->p[i]);
		if (v < 0)
			return perr(ps, "invalid base64 character");
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			b->p[out++] = (char)((acc >> bits) & 0xff);
		}
	}
	b->len = out;
	return 0;
}

/* A byte-string value: "..." or null or {"base64":"..."}. */
static int parse_bytes(struct parser *ps, struct bytes *out)
{
	skip_ws(ps);
	out->p = NULL;
	out->len = 0;
	if (ps->end - ps->p >= 4 && memcmp(ps->p, "null", 4) == 0) {
		ps->p += 4;
		return 0;
	}
	if (ps->p < ps->end && *ps->p == '{') {
		struct bytes name;
		int bad;
		ps->p++;
		if (parse_string(ps, &name))
			return -1;
		bad = strcmp(name.p, "base64") != 0;
		free(name.p);
		if (bad)
			return perr(ps, "an object in place of a string must be {\"base64\":\"...\"}");
		if (expect(ps, ':') || parse_string(ps, out))
			return -1;
		if (base64_decode(ps, out) || expect(ps, '}')) {
			free(out->p);
			out->p = NULL;
			return -1;
		}
		return 0;
	}
	return parse_string(ps, out);
}

static int parse_int(struct parser *ps, int64_t *out)
{
	char *endp;
	char buf[32];
	size_t n = 0;

	skip_ws(ps);
	while (ps->p + n < ps->end && n < sizeof(buf) - 1 &&
	       (ps->p[n] == '-' || (ps->p[n] >= '0' && ps->p[n] <= '9')))
		n++;
	memcpy(buf, ps->p, n);
	buf[n] = '\0';
	errno = 0;
	*out = strtoll(buf, &endp, 10);
	if (n == 0 || *endp || errno)
		return perr(ps, "expected an integer");
	ps->p += n;
	return 0;
}

/* Skips any JSON value (for fields dumpcmp does not know, like broker). */
static int skip_value(struct parser *ps)
{
	int depth = 0;

	skip_ws(ps);
	while (ps->p < ps->end) {
		unsigned char c = *ps->p;
		if (c == '"') {
			struct bytes tmp;
			if (parse_string(ps, &tmp))
				return -1;
			free(tmp.p);
			continue;
		}
		if (depth == 0 && (c == ',' || c == '}'))
			return 0;
		if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']')
			depth--;
		ps->p++;
	}
	return perr(ps, "value not terminated");
}

static int parse_headers(struct parser *ps, struct rec *r)
{
	size_t cap = 0;

	if (expect(ps, '['))
		return -1;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return 0;
	}
	for (;;) {
		struct header h;
		if (parse_bytes(ps, &h.name))
			return -1;
		if (!h.name.p)
			return perr(ps, "a header name is null");
		if (expect(ps, ',') || parse_bytes(ps, &h.value)) {
			free(h.name.p);
			return -1;
		}
		if (r->header_count == cap) {
			cap = cap ? cap * 2 : 4;
			struct header *grown = realloc(r->headers, cap * sizeof(*grown));
			if (!grown)
				return perr(ps, "out of memory");
			r->headers = grown;
		}
		r->headers[r->header_count++] = h;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			return 0;
		}
		if (expect(ps, ','))
			return -1;
	}
}

static void rec_free(struct rec *r)
{
	free(r->topic.p);
	free(r->tstype.p);
	free(r->key.p);
	free(r->payload.p);
	for (size_t i = 0; i < r->header_count; i++) {
		free(r->headers[i].name.p);
		free(r->headers[i].value.p);
	}
	free(r->headers);
}

static int parse_record(struct parser *ps, struct rec *r)
{
	int seen_topic = 0, seen_partition = 0, seen_offset = 0;

	memset(r, 0, sizeof(*r));
	r->ts = INT64_MIN;
	if (expect(ps, '{'))
		return -1;
	for (;;) {
		struct bytes name;
		int rc = 0;

		if (parse_string(ps, &name) || expect(ps, ':')) {
			free(name.p);
			return -1;
		}
		if (strcmp(name.p, "topic") == 0) {
			rc = parse_bytes(ps, &r->topic);
			seen_topic = 1;
		} else if (strcmp(name.p, "partition") == 0) {
			rc = parse_int(ps, &r->partition);
			seen_partition = 1;
		} else if (strcmp(name.p, "offset") == 0) {
			rc = parse_int(ps, &r->offset);
			seen_offset = 1;
		} else if (strcmp(name.p, "tstype") == 0) {
			rc = parse_bytes(ps, &r->tstype);
		} else if (strcmp(name.p, "ts") == 0) {
			rc = parse_int(ps, &r->ts);
		} else if (strcmp(name.p, "key") == 0) {
			rc = parse_bytes(ps, &r->key);
		} else if (strcmp(name.p, "payload") == 0) {
			rc = parse_bytes(ps, &r->payload);
		} else if (strcmp(name.p, "headers") == 0) {
			rc = parse_headers(ps, r);
		} else {
			rc = skip_value(ps); /* broker and anything newer */
		}
		free(name.p);
		if (rc)
			return -1;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			break;
		}
		if (expect(ps, ','))
			return -1;
	}
	skip_ws(ps);
	if (ps->p != ps->end)
		return perr(ps, "text after the record's closing '}'");
	if (!seen_topic || !seen_partition || !seen_offset || !r->topic.p)
		return perr(ps, "record without topic, partition or offset");
	return 0;
}

static int load(struct dump *d)
{
	FILE *f = strcmp(d->path, "-") == 0 ? stdin : fopen(d->path, "r");
	char *line = NULL;
	size_t line_cap = 0, lineno = 0;
	ssize_t len;
	int rc = 0;

	if (!f) {
		fprintf(stderr, "dumpcmp: %s: %s\n", d->path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &line_cap, f)) >= 0) {
		struct parser ps = { .path = d->path, .line = ++lineno };

		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		ps.start = ps.p = (const unsigned char *)line;
		ps.end = ps.p + len;
		skip_ws(&ps);
		if (ps.p == ps.end)
			continue;
		if (d->count == d->cap) {
			d->cap = d->cap ? d->cap * 2 : 1024;
			struct rec *grown = realloc(d->recs, d->cap * sizeof(*grown));
			if (!grown) {
				fprintf(stderr, "dumpcmp: out of memory\n");
				rc = -1;
				break;
			}
			d->recs = grown;
		}
		struct rec *r = &d->recs[d->count];
		if (parse_record(&ps, r)) {
			rec_free(r);
			fprintf(stderr, "dumpcmp: %s\n", ps.err);
			rc = -1;
			break;
		}
		r->line = lineno;
		r->seq = d->count++;
		for (size_t i = 0; i < opt.rename_count; i++) {
			if (strcmp(r->topic.p, opt.renames[i].from) == 0) {
				free(r->topic.p);
				r->topic.p = strdup(opt.renames[i].to);
				r->topic.len = strlen(opt.renames[i].to);
				break;
			}
		}
	}
	free(line);
	if (f != stdin)
		fclose(f);
	return rc;
}

/* ---- comparing ------------------------------------------------------------ */

static int cmp_bytes(const struct bytes *a, const struct bytes *b)
{
	size_t n;
	int c;

	if (!a->p || !b->p)
		return (a->p != NULL) - (b->p != NULL);
	n = a->len < b->len ? a->len : b->len;
	c = memcmp(a->p, b->p, n);
	if (c)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

static int cmp_i64(int64_t a, int64_t b)
{
	return (a > b) - (a < b);
}

static int cmp_headers(const struct rec *a, const struct rec *b)
{
	size_t n = a->header_count < b->header_count ? a->header_count : b->header_count;

	for (size_t i = 0; i < n; i++) {
		int c = cmp_bytes(&a->headers[i].name, &b->headers[i].name);
		if (!c)
			c = cmp_bytes(&a->headers[i].value, &b->headers[i].value);
		if (c)
			return c;
	}
	return cmp_i64((int64_t)a->header_count, (int64_t)b->header_count);
}

static int sort_cmp(const void *pa, const void *pb)
{
	const struct rec *a = pa, *b = pb;
	int c = 0;

	if (!opt.ignore_topic)
		c = cmp_bytes(&a->topic, &b->topic);
	if (opt.sort_content) {
		if (!c)
			c = cmp_bytes(&a->key, &b->key);
		if (!c && !opt.ignore_ts)
			c = cmp_i64(a->ts, b->ts);
		if (!c)
			c = cmp_bytes(&a->payload, &b->payload);
		if (!c)
			c = cmp_headers(a, b);
	} else {
		if (!c && !opt.ignore_partition)
			c = cmp_i64(a->partition, b->partition);
		/* With offsets ignored, a partition's records keep their order
		 * in the file, which for kcat and ktape is offset order. */
		if (!c && !opt.ignore_offsets)
			c = cmp_i64(a->offset, b->offset);
	}
	if (!c)
		c = cmp_i64((int64_t)a->seq, (int64_t)b->seq);
	return c;
}

/* Prints bytes in a readable, bounded form: printable ASCII as is, others
 * as \xHH, at most 120 bytes. */
static void show(FILE *out, const struct bytes *b)
{
	if (!b->p) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (size_t i = 0; i < b->len && i < 120; i++) {
		unsigned char c = (unsigned char)b->p[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			fputc(c, out);
		else
			fprintf(out, "\\x%02x", c);
	}
	if (b->len > 120)
		fprintf(out, "...(%zu bytes)", b->len);
	fputc('"', out);
}

static void where(FILE *out, const struct dump *d, const struct rec *r)
{
	fprintf(out, "%s:%zu (", d->path, r->line);
	show(out, &r->topic);
	fprintf(out, " partition %lld offset %lld)", (long long)r->partition, (long long)r->offset);
}

static void differ(const struct dump *da, const struct rec *a, const struct dump *db,
		   const struct rec *b, size_t index, const char *field,
		   const struct bytes *va, const struct bytes *vb, int64_t ia, int64_t ib)
{
	FILE *out = stdout;

	fprintf(out, "record %zu differs in %s:\n  left  ", index + 1, field);
	where(out, da, a);
	fputs(": ", out);
	if (va || vb)
		show(out, va);
	else
		fprintf(out, "%lld", (long long)ia);
	fputs("\n  right ", out);
	where(out, db, b);
	fputs(": ", out);
	if (va || vb)
		show(out, vb);
	else
		fprintf(out, "%lld", (long long)ib);
	fputc('\n', out);
}

static int compare_rec(const struct dump *da, const struct rec *a, const struct dump *db,
		       const struct rec *b, size_t i)
{
	static const struct bytes empty_tstype = { NULL, 0 };
	char field[64];

	if (!opt.ignore_topic && cmp_bytes(&a->topic, &b->topic)) {
		differ(da, a, db, b, i, "topic", &a->topic, &b->topic, 0, 0);
		return 1;
	}
	if (!opt.ignore_partition && a->partition != b->partition) {
		differ(da, a, db, b, i, "partition", NULL, NULL, a->partition, b->partition);
		return 1;
	}
	if (!opt.ignore_offsets && a->offset != b->offset) {
		differ(da, a, db, b, i, "offset", NULL, NULL, a->offset, b->offset);
		return 1;
	}
	if (!opt.ignore_ts) {
		if (cmp_bytes(a->tstype.p ? &a->tstype : &empty_tstype,
			      b->tstype.p ? &b->tstype : &empty_tstype)) {
			differ(da, a, db, b, i, "tstype", &a->tstype, &b->tstype, 0, 0);
			return 1;
		}
		if (a->ts != b->ts) {
			differ(da, a, db, b, i, "ts", NULL, NULL, a->ts, b->ts);
			return 1;
		}
	}
	if (cmp_bytes(&a->key, &b->key)) {
		differ(da, a, db, b, i, "key", &a->key, &b->key, 0, 0);
		return 1;
	}
	if (cmp_bytes(&a->payload, &b->payload)) {
		differ(da, a, db, b, i, "payload", &a->payload, &b->payload, 0, 0);
		return 1;
	}
	for (size_t h = 0; h < a->header_count && h < b->header_count; h++) {
		if (cmp_bytes(&a->headers[h].name, &b->headers[h].name)) {
			snprintf(field, sizeof(field), "header %zu name", h + 1);
			differ(da, a, db, b, i, field, &a->headers[h].name, &b->headers[h].name, 0, 0);
			return 1;
		}
		if (cmp_bytes(&a->headers[h].value, &b->headers[h].value)) {
			snprintf(field, sizeof(field), "header %zu value", h + 1);
			differ(da, a, db, b, i, field, &a->headers[h].value, &b->headers[h].value, 0, 0);
			return 1;
		}
	}
	if (a->header_count != b->header_count) {
		differ(da, a, db, b, i, "header count", NULL, NULL, (int64_t)a->header_count,
		       (int64_t)b->header_count);
		return 1;
	}
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: dumpcmp [options] LEFT RIGHT\n"
		"\n"
		"Compares two JSON-lines record dumps (kcat -J or ktape's format; '-' is\n"
		"stdin) field by field and prints the first difference.  Records are\n"
		"sorted by topic, partition and offset first, so the order of lines does\n"
		"not matter.  The broker field is always ignored; absent headers equal [].\n"
		"\n"
		"  --ignore-topic       do not compare (or sort by) topic names\n"
		"  --ignore-partition   do not compare (or sort by) partitions\n"
		"  --ignore-offsets     do not compare offsets; records keep file order\n"
		"                       within a partition\n"
		"  --ignore-ts          do not compare timestamps or their type\n"
		"  --sort-by-key-ts     match records by content: sort each topic by key,\n"
		"                       timestamp, payload, headers; implies\n"
		"                       --ignore-partition --ignore-offsets\n"
		"  --rename OLD=NEW     read topic OLD as NEW in both dumps (repeatable)\n"
		"  -q, --quiet          print nothing when equal\n"
		"\n"
		"Exit status: 0 equal, 1 different, 2 usage or unreadable input.\n");
}

int main(int argc, char **argv)
{
	enum { O_TOPIC = 256, O_PART, O_OFF, O_TS, O_SORT, O_RENAME };
	static const struct option opts[] = {
		{ "ignore-topic", no_argument, NULL, O_TOPIC },
		{ "ignore-partition", no_argument, NULL, O_PART },
		{ "ignore-partitions", no_argument, NULL, O_PART },
		{ "ignore-offsets", no_argument, NULL, O_OFF },
		{ "ignore-ts", no_argument, NULL, O_TS },
		{ "sort-by-key-ts", no_argument, NULL, O_SORT },
		{ "rename", required_argument, NULL, O_RENAME },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct dump a = { 0 }, b = { 0 };
	int c, rc = 2;
	size_t n;

	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case O_TOPIC: opt.ignore_topic = 1; break;
		case O_PART: opt.ignore_partition = 1; break;
		case O_OFF: opt.ignore_offsets = 1; break;
		case O_TS: opt.ignore_ts = 1; break;
		case O_SORT:
			opt.sort_content = 1;
			opt.ignore_partition = 1;
			opt.ignore_offsets = 1;
			break;
		case O_RENAME: {
			char *eq = strchr(optarg, '=');
			struct rename *grown;
			if (!eq || eq == optarg || !eq[1]) {
				fprintf(stderr, "dumpcmp: --rename wants OLD=NEW, not '%s'\n", optarg);
				goto out;
			}
			grown = realloc(opt.renames, (opt.rename_count + 1) * sizeof(*grown));
			if (!grown)
				goto out;
			opt.renames = grown;
			*eq = '\0';
			opt.renames[opt.rename_count].from = optarg;
			opt.renames[opt.rename_count++].to = eq + 1;
			break;
		}
		case 'q': opt.quiet = 1; break;
		case 'h': usage(stdout); rc = 0; goto out;
		default: usage(stderr); goto out;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		goto out;
	}
	a.path = argv[optind];
	b.path = argv[optind + 1];
	if (load(&a) || load(&b))
		goto out;
	qsort(a.recs, a.count, sizeof(*a.recs), sort_cmp);
	qsort(b.recs, b.count, sizeof(*b.recs), sort_cmp);
	n = a.count < b.count ? a.count : b.count;
	rc = 0;
	for (size_t i = 0; i < n && !rc; i++)
		rc = compare_rec(&a, &a.recs[i], &b, &b.recs[i], i);
	if (!rc && a.count != b.count) {
		const struct dump *more = a.count > b.count ? &a : &b;
		printf("record counts differ: %s has %zu, %s has %zu; first extra record at ",
		       a.path, a.count, b.path, b.count);
		where(stdout, more, &more->recs[n]);
		putchar('\n');
		rc = 1;
	}
	if (!rc && !opt.quiet)
		printf("equal: %zu records\n", a.count);
out:
	for (size_t i = 0; i < a.count; i++)
		rec_free(&a.recs[i]);
	for (size_t i = 0; i < b.count; i++)
		rec_free(&b.recs[i]);
	free(a.recs);
	free(b.recs);
	free(opt.renames);
	return rc;
}
