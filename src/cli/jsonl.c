/* Records as JSON lines, as docs/json-records.md specifies.  Written
 * straight to the stdio buffer with the unlocked calls: this is the inner
 * loop of `ktape cat` over millions of records. */
#include "jsonl.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

int kt_cli_jsonl_utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p, *end = s + n;

	while (s < end) {
		unsigned char c = *s;
		size_t len;
		uint32_t cp;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			len = 2;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return 0; /* continuation byte, C0/C1 or F5..FF as a lead */
		}
		if ((size_t)(end - s) < len)
			return 0;
		for (size_t i = 1; i < len; i++) {
			if ((s[i] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i] & 0x3F);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		s += len;
	}
	return 1;
}

static void put_escaped(FILE *out, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	fputc_unlocked('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		const char *esc = NULL;
		char u[6];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		fwrite_unlocked(s + run, 1, i - run, out);
		run = i + 1;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		default:
			memcpy(u, "\\u00", 4);
			u[4] = hex[c >> 4];
			u[5] = hex[c & 15];
			fwrite_unlocked(u, 1, 6, out);
			continue;
		}
		fwrite_unlocked(esc, 1, 2, out);
	}
	fwrite_unlocked(s + run, 1, n - run, out);
	fputc_unlocked('"', out);
}

static void put_base64(FILE *out, const unsigned char *s, size_t n)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char quad[4];

	fputs_unlocked("{\"base64\":\"", out);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)s[i + 1] << 8;
		if (left > 2)
			v |= s[i + 2];
		quad[0] = alphabet[(v >> 18) & 63];
		quad[1] = alphabet[(v >> 12) & 63];
		quad[2] = left > 1 ? alphabet[(v >> 6) & 63] : '=';
		quad[3] = left > 2 ? alphabet[v & 63] : '=';
		fwrite_unlocked(quad, 1, 4, out);
	}
	fputs_unlocked("\"}", out);
}

/* A byte string: null, a JSON string, or {"base64":...} when not UTF-8. */
static void put_bytes(FILE *out, const void *p, size_t n)
{
	if (!p)
		fputs_unlocked("null", out);
	else if (kt_cli_jsonl_utf8_valid(p, n))
		put_escaped(out, p, n);
	else
		put_base64(out, p, n);
}

int kt_cli_jsonl_write(FILE *out, const char *topic, int32_t partition,
		       const struct kt_record *rec)
{
	static const char *const tstypes[] = { "create", "logappend", "none" };
	char num[96];
	int len;

	fputs_unlocked("{\"topic\":", out);
	put_bytes(out, topic, strlen(topic));
	len = snprintf(num, sizeof(num), ",\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"tstype\":\"%s\",\"ts\":%" PRId64,
		       partition, rec->offset,
		       rec->ts_type >= 0 && rec->ts_type <= 2 ? tstypes[rec->ts_type] : "none", rec->timestamp);
	fwrite_unlocked(num, 1, (size_t)len, out);
	fputs_unlocked(",\"headers\":[", out);
	for (size_t i = 0; i < rec->header_count; i++) {
		const struct kt_header *h = &rec->headers[i];

		if (i)
			fputc_unlocked(',', out);
		put_bytes(out, h->name ? h->name : "", h->name_len);
		fputc_unlocked(',', out);
		put_bytes(out, h->value, h->value_len);
	}
	fputs_unlocked("],\"key\":", out);
	put_bytes(out, rec->key, rec->key_len);
	fputs_unlocked(",\"payload\":", out);
	put_bytes(out, rec->value, rec->value_len);
	fputs_unlocked("}\n", out);
	return ferror_unlocked(out) ? -(errno ? errno : EIO) : 0;
}
