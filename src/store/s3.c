/*
 * s3.c - the S3 client of s3_priv.h: requests over libcurl, signed by
 * s3_sigv4.c, answers parsed by expat as they stream in.
 *
 * One curl easy handle per client keeps its connection alive between
 * requests.  Bodies are the caller's buffers (PUT, UploadPart, ranged GET);
 * the only memory that grows is one listing page and one upload's ETag list,
 * both bounded by S3's own limits (1000 keys a page, 10000 parts).
 *
 * Retries: a request is tried again, with backoff, after a transport error,
 * HTTP 500/502/503/504 or 429, or S3's SlowDown/RequestTimeout codes, up to
 * max_attempts times.  Every request here is idempotent (a PUT or part
 * written twice holds the same bytes; a retried CreateMultipartUpload at
 * worst leaves an empty upload that is never completed).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <expat.h>
#include <openssl/crypto.h>

#include "dl_priv.h"
#include "s3_priv.h"

#define DEFAULT_ATTEMPTS 4
#define DEFAULT_STALL_MS 60000
#define CONNECT_TIMEOUT_MS 10000
#define LIST_PAGE_KEYS 1000
#define LIST_MAX_ENTRIES 10000 /* a page larger than this is refused */
#define KEY_MAX 1024           /* S3's limit on a key, in bytes */
#define TEXT_MAX 2048          /* longest XML text kept (keys, tokens, ids) */
#define ETAG_MAX 128

/* ---- repository URLs ------------------------------------------------------ */

int kt_s3_url_is_s3(const char *text)
{
	return text && strncmp(text, "s3://", 5) == 0;
}

static int bucket_error(const char *url, const char *bucket, const char *why,
			char *errstr, size_t errstr_size)
{
	return kt_seterr(errstr, errstr_size, KT_EUSAGE,
			 "repository URL '%s': bucket name '%s' %s (S3 bucket names are 3 to "
			 "63 characters of a-z, 0-9, '.' and '-', starting and ending with a "
			 "letter or digit)", url, bucket, why);
}

static int looks_like_ipv4(const char *s)
{
	int dots = 0;

	for (; *s; s++) {
		if (*s == '.')
			dots++;
		else if (*s < '0' || *s > '9')
			return 0;
	}
	return dots == 3;
}

int kt_s3_url_parse(const char *url, struct kt_s3_location *loc,
		    char *errstr, size_t errstr_size)
{
	const char *b, *slash, *p;
	size_t blen, plen;

	memset(loc, 0, sizeof(*loc));
	if (!kt_s3_url_is_s3(url))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "repository URL '%s' does not start with s3://",
				 url ? url : "(null)");
	b = url + 5;
	slash = strchr(b, '/');
	blen = slash ? (size_t)(slash - b) : strlen(b);
	if (blen == 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "repository URL '%s' names no bucket (expected s3://BUCKET/PREFIX)",
				 url);
	if (blen > KT_S3_BUCKET_MAX) {
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "repository URL '%s': bucket name is %zu bytes, longer than "
				 "S3's limit of 63", url, blen);
	}
	memcpy(loc->bucket, b, blen);
	loc->bucket[blen] = '\0';
	if (blen < 3)
		return bucket_error(url, loc->bucket, "is shorter than 3 characters", errstr,
				    errstr_size);
	for (size_t i = 0; i < blen; i++) {
		char c = loc->bucket[i];
		char why[64];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')
			continue;
		if ((unsigned char)c >= 32 && (unsigned char)c < 127)
			snprintf(why, sizeof(why), "has '%c' at byte %zu", c, i);
		else
			snprintf(why, sizeof(why), "has byte 0x%02x at byte %zu", (unsigned char)c,
				 i);
		return bucket_error(url, loc->bucket, why, errstr, errstr_size);
	}
	if (!((loc->bucket[0] >= 'a' && loc->bucket[0] <= 'z') ||
	      (loc->bucket[0] >= '0' && loc->bucket[0] <= '9')) ||
	    !((loc->bucket[blen - 1] >= 'a' && loc->bucket[blen - 1] <= 'z') ||
	      (loc->bucket[blen - 1] >= '0' && loc->bucket[blen - 1] <= '9')))
		return bucket_error(url, loc->bucket, "does not start and end with a letter or digit",
				    errstr, errstr_size);
	if (strstr(loc->bucket, ".."))
		return bucket_error(url, loc->bucket, "has two adjacent periods", errstr,
				    errstr_size);
	if (looks_like_ipv4(loc->bucket))
		return bucket_error(url, loc->bucket, "is formatted as an IP address", errstr,
				    errstr_size);

	/* The prefix: one trailing '/' is allowed and dropped. */
	p = slash ? slash + 1 : "";
	plen = strlen(p);
	if (plen && p[plen - 1] == '/')
		plen--;
	if (plen > KT_S3_PREFIX_MAX)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "repository URL '%s': the prefix is %zu bytes, longer than %d",
				 url, plen, KT_S3_PREFIX_MAX);
	for (size_t i = 0; i < plen; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 32 || c == 127)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "repository URL '%s': the prefix has control byte 0x%02x "
					 "at byte %zu", url, c, i);
		if (c == '\\' || c == '?' || c == '#')
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "repository URL '%s': the prefix has '%c' at byte %zu, "
					 "which is not allowed in a repository prefix", url, c, i);
	}
	for (size_t i = 0; i < plen; ) {
		size_t j = i;

		while (j < plen && p[j] != '/')
			j++;
		if (j == i || (j - i == 1 && p[i] == '.') ||
		    (j - i == 2 && p[i] == '.' && p[i + 1] == '.'))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "repository URL '%s': the prefix has an empty, '.' or '..' "
					 "component at byte %zu", url, i);
		i = j + 1;
	}
	memcpy(loc->prefix, p, plen);
	loc->prefix[plen] = '\0';
	return 0;
}

/* ---- client --------------------------------------------------------------- */

struct list_entry {
	size_t key_off;
	uint64_t size;
};

struct kt_s3_client {
	CURL *curl;
	const struct kt_log *log;
	char scheme[8];
	char authority[256];   /* host[:port] of the endpoint */
	char host[320];        /* what Host: says (bucket. + authority when
				* virtual-hosted) */
	char bucket[KT_S3_BUCKET_MAX + 1];
	char region[64];
	int path_style;
	int unsigned_payload;
	unsigned max_attempts;
	unsigned stall_timeout_ms;
	unsigned list_page_keys;
	char *access_key;
	char *secret_key;
	char *session_token;

	/* One listing page, kept until its keys are handed out. */
	char *arena;
	size_t arena_len, arena_cap;
	struct list_entry *entries;
	size_t n_entries, cap_entries;

	/* Per-request scratch (a client serves one request at a time). */
	char url[12288];
	char path[4096];
	char errctx[1200];
};

struct kt_s3_upload {
	struct kt_s3_client *s3;
	char *key;
	char upload_id[TEXT_MAX];
	char (*etags)[ETAG_MAX];
	unsigned parts, cap;
	int done; /* 1 completed, 2 aborted */
};

enum sink { SINK_NONE, SINK_BUF, SINK_GROW, SINK_XML };
enum xml_kind { XML_NONE, XML_LIST, XML_INITIATE, XML_COMPLETE };

/* What one request sends and what came back. */
struct request {
	const char *method;
	const char *key;      /* NULL: the bucket itself */
	const char *query;    /* encoded; NULL for none */
	const void *body;
	size_t body_len;
	const char *range;
	const char *content_type;
	int if_none_match; /* send If-None-Match: * (create only) */
	enum sink sink;
	enum xml_kind xml_kind;
	unsigned attempts;    /* set by perform(): how many were sent */
	unsigned char *buf;   /* SINK_BUF: the caller's; SINK_GROW: malloc'd */
	size_t buf_cap, buf_len, grow_max;

	/* Per attempt. */
	size_t upload_pos;
	long status;
	int overflow;
	char etag[ETAG_MAX];
	XML_Parser parser;
	int xml_bad;
	int depth;
	char root[32];
	char text[TEXT_MAX];
	size_t text_len;
	int text_truncated;
	char err_code[64];
	char err_msg[256];
	/* XML_LIST / XML_INITIATE answers. */
	char cur_key[KEY_MAX + 1];
	int cur_key_bad;
	uint64_t cur_size;
	int truncated;
	char next_token[TEXT_MAX];
	char upload_id[TEXT_MAX];
	struct kt_s3_client *s3;
	int list_overflow;
};

/* libcurl is loaded when the first S3 client is made (dl_priv.h says
 * why); every call goes through CU(), which names the loaded function. */
#define KT_CURL_SONAME "libcurl.so.4"
#define KT_CURL_FUNCS(X) \
	X(curl_global_init) \
	X(curl_easy_init) \
	X(curl_easy_cleanup) \
	X(curl_easy_reset) \
	X(curl_easy_setopt) \
	X(curl_easy_perform) \
	X(curl_easy_getinfo) \
	X(curl_easy_strerror) \
	X(curl_slist_append) \
	X(curl_slist_free_all)

#define CU(name) (kt_cu_##name)
#define X(name) static __typeof__(name) *kt_cu_##name;
KT_CURL_FUNCS(X)
#undef X

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;
static char curl_load_error[512];

static void curl_init_once(void)
{
#define X(name) #name,
	static const char *const names[] = { KT_CURL_FUNCS(X) };
#undef X
#define X(name) &kt_cu_##name,
	void *const slots[] = { KT_CURL_FUNCS(X) };
#undef X

	curl_init_result = CURLE_FAILED_INIT;
	if (kt_store_dl_load(KT_CURL_SONAME, names, slots, sizeof(names) / sizeof(names[0]), curl_load_error,
			     sizeof(curl_load_error)))
		return;
	curl_init_result = CU(curl_global_init)(CURL_GLOBAL_DEFAULT);
	if (curl_init_result != CURLE_OK)
		snprintf(curl_load_error, sizeof(curl_load_error), "%s",
			 CU(curl_easy_strerror)(curl_init_result));
}

static char *dup_or_env(const char *value, const char *env1, const char *env2)
{
	const char *v = value;

	if (!v && env1)
		v = getenv(env1);
	if ((!v || !*v) && !value && env2)
		v = getenv(env2);
	return v && *v ? strdup(v) : NULL;
}

static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* Splits "http(s)://host[:port][/]" into scheme and authority. */
static int parse_endpoint(struct kt_s3_client *s3, const char *endpoint, char *errstr,
			  size_t errstr_size)
{
	const char *a;
	size_t n;

	if (strncmp(endpoint, "http://", 7) == 0) {
		strcpy(s3->scheme, "http");
		a = endpoint + 7;
	} else if (strncmp(endpoint, "https://", 8) == 0) {
		strcpy(s3->scheme, "https");
		a = endpoint + 8;
	} else {
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "S3 endpoint '%s' does not start with http:// or https://",
				 endpoint);
	}
	n = strcspn(a, "/");
	if (n == 0 || n >= sizeof(s3->authority))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "S3 endpoint '%s' has no host, or a host longer than %zu bytes",
				 endpoint, sizeof(s3->authority) - 1);
	if (a[n] == '/' && a[n + 1] != '\0')
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "S3 endpoint '%s' has a path; give scheme, host and port only "
				 "(the bucket goes in the s3:// URL)", endpoint);
	for (size_t i = 0; i < n; i++) {
		char c = a[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
			/* The endpoint is not echoed: it may hold a password. */
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "S3 endpoint has '%c' at byte %zu of its host part "
					 "(credentials, queries and fragments are not accepted "
					 "there)", c, (size_t)(a - endpoint) + i);
	}
	memcpy(s3->authority, a, n);
	s3->authority[n] = '\0';
	return 0;
}

int kt_s3_client_create(const struct kt_s3_config *config, const struct kt_log *log,
			struct kt_s3_client **out, char *errstr, size_t errstr_size)
{
	struct kt_s3_client *s3 = NULL;
	char *region = NULL, *endpoint = NULL;
	char default_endpoint[128];
	int err;

	*out = NULL;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_result != CURLE_OK)
		return kt_seterr(errstr, errstr_size, -ENOSYS,
				 "S3 repositories need libcurl (%s, Debian package libcurl4), which could not "
				 "be loaded: %s", KT_CURL_SONAME, curl_load_error);
	if (!config->bucket || !*config->bucket)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "S3 client: no bucket given");
	if (strlen(config->bucket) > KT_S3_BUCKET_MAX)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "S3 client: bucket name '%s' is longer than 63 bytes",
				 config->bucket);
	s3 = calloc(1, sizeof(*s3));
	if (!s3)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "S3 client: out of memory");
	s3->log = log;
	snprintf(s3->bucket, sizeof(s3->bucket), "%s", config->bucket);
	s3->path_style = config->path_style;
	s3->max_attempts = config->max_attempts ? config->max_attempts : DEFAULT_ATTEMPTS;
	s3->stall_timeout_ms = config->stall_timeout_ms ? config->stall_timeout_ms
							: DEFAULT_STALL_MS;
	s3->list_page_keys = config->list_page_keys && config->list_page_keys < LIST_PAGE_KEYS
				     ? config->list_page_keys
				     : LIST_PAGE_KEYS;

	region = dup_or_env(config->region, "AWS_REGION", "AWS_DEFAULT_REGION");
	snprintf(s3->region, sizeof(s3->region), "%s", region ? region : "us-east-1");
	if (region && strlen(region) >= sizeof(s3->region)) {
		err = kt_seterr(errstr, errstr_size, KT_EUSAGE, "S3 region '%s' is too long",
				region);
		goto fail;
	}
	for (const char *c = s3->region; *c; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')) {
			err = kt_seterr(errstr, errstr_size, KT_EUSAGE,
					"S3 region '%s' has '%c'; regions are a-z, 0-9 and '-'",
					s3->region, *c);
			goto fail;
		}
	}

	endpoint = dup_or_env(config->endpoint, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL");
	if (!endpoint) {
		snprintf(default_endpoint, sizeof(default_endpoint), "https://s3.%s.amazonaws.com",
			 s3->region);
		endpoint = strdup(default_endpoint);
		if (!endpoint) {
			err = kt_seterr(errstr, errstr_size, -ENOMEM, "S3 client: out of memory");
			goto fail;
		}
	}
	err = parse_endpoint(s3, endpoint, errstr, errstr_size);
	if (err)
		goto fail;
	if (s3->path_style)
		snprintf(s3->host, sizeof(s3->host), "%s", s3->authority);
	else
		snprintf(s3->host, sizeof(s3->host), "%s.%s", s3->bucket, s3->authority);
	/* Hashing is skipped only where TLS protects the body. */
	s3->unsigned_payload = config->unsigned_payload && strcmp(s3->scheme, "https") == 0;

	s3->access_key = dup_or_env(config->access_key, "AWS_ACCESS_KEY_ID", NULL);
	s3->secret_key = dup_or_env(config->secret_key, "AWS_SECRET_ACCESS_KEY", NULL);
	s3->session_token = dup_or_env(config->session_token, "AWS_SESSION_TOKEN", NULL);
	if (!s3->access_key || !s3->secret_key) {
		err = kt_seterr(errstr, errstr_size, KT_EUSAGE,
				"no S3 credentials for bucket '%s': set AWS_ACCESS_KEY_ID and "
				"AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary "
				"credentials)", s3->bucket);
		goto fail;
	}
	s3->curl = CU(curl_easy_init)();
	if (!s3->curl) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "libcurl could not create a handle");
		goto fail;
	}
	kt_log(log, KT_LOG_DEBUG, "S3 client: bucket %s at %s://%s, region %s, %s", s3->bucket,
	       s3->scheme, s3->authority, s3->region,
	       s3->path_style ? "path-style" : "virtual-hosted");
	free(region);
	free(endpoint);
	*out = s3;
	return 0;
fail:
	free(region);
	free(endpoint);
	kt_s3_client_destroy(s3);
	return err;
}

void kt_s3_client_destroy(struct kt_s3_client *s3)
{
	if (!s3)
		return;
	if (s3->curl)
		CU(curl_easy_cleanup)(s3->curl);
	free(s3->access_key);
	free_secret(s3->secret_key);
	free_secret(s3->session_token);
	free(s3->arena);
	free(s3->entries);
	free(s3);
}

/* The request path: /bucket/key (path-style) or /key, the key encoded once. */
static int build_path(const struct kt_s3_client *s3, const char *key, char *path, size_t size)
{
	size_t n = 0;
	long e;

	if (s3->path_style) {
		int w = snprintf(path, size, "/%s%s", s3->bucket, key ? "/" : "");

		if (w < 0 || (size_t)w >= size)
			return -1;
		n = (size_t)w;
	} else {
		if (size < 2)
			return -1;
		path[0] = '/';
		path[1] = '\0';
		n = 1;
	}
	if (!key)
		return 0;
	e = kt_s3_uri_encode(key, 1, path + n, size - n);
	return e < 0 ? -1 : 0;
}

long kt_s3_object_url(const struct kt_s3_client *s3, const char *key, char *url, size_t url_size)
{
	char path[4096];
	int n;

	if (build_path(s3, key, path, sizeof(path)) != 0)
		return -1;
	n = snprintf(url, url_size, "%s://%s%s", s3->scheme, s3->host, path);
	return n < 0 || (size_t)n >= url_size ? -1 : n;
}

/* ---- XML answers ---------------------------------------------------------- */

static void copy_text(char *dst, size_t size, const char *src, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static int page_append(struct kt_s3_client *s3, const char *key, uint64_t size)
{
	size_t klen = strlen(key) + 1;

	if (s3->n_entries >= LIST_MAX_ENTRIES)
		return -1;
	if (s3->n_entries == s3->cap_entries) {
		size_t cap = s3->cap_entries ? 2 * s3->cap_entries : 64;
		struct list_entry *e = realloc(s3->entries, cap * sizeof(*e));

		if (!e)
			return -1;
		s3->entries = e;
		s3->cap_entries = cap;
	}
	if (s3->arena_len + klen > s3->arena_cap) {
		size_t cap = s3->arena_cap ? 2 * s3->arena_cap : 16384;
		char *a;

		while (cap < s3->arena_len + klen)
			cap *= 2;
		a = realloc(s3->arena, cap);
		if (!a)
			return -1;
		s3->arena = a;
		s3->arena_cap = cap;
	}
	memcpy(s3->arena + s3->arena_len, key, klen);
	s3->entries[s3->n_entries].key_off = s3->arena_len;
	s3->entries[s3->n_entries].size = size;
	s3->n_entries++;
	s3->arena_len += klen;
	return 0;
}

static void XMLCALL on_xml_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct request *rq = ud;

	if (rq->depth == 0)
		copy_text(rq->root, sizeof(rq->root), name, strlen(name));
	rq->depth++;
	rq->text_len = 0;
	rq->text_truncated = 0;
	if (rq->xml_kind == XML_LIST && strcmp(name, "Contents") == 0) {
		rq->cur_key[0] = '\0';
		rq->cur_key_bad = 0;
		rq->cur_size = 0;
	}
}

static void XMLCALL on_xml_text(void *ud, const XML_Char *s, int len)
{
	struct request *rq = ud;
	size_t room = sizeof(rq->text) - 1 - rq->text_len;

	if ((size_t)len > room) {
		rq->text_truncated = 1;
		len = (int)room;
	}
	memcpy(rq->text + rq->text_len, s, (size_t)len);
	rq->text_len += (size_t)len;
	rq->text[rq->text_len] = '\0';
}

static void XMLCALL on_xml_end(void *ud, const XML_Char *name)
{
	struct request *rq = ud;
	const char *t = rq->text;

	rq->depth--;
	if (strcmp(rq->root, "Error") == 0) {
		if (rq->depth == 1 && strcmp(name, "Code") == 0)
			copy_text(rq->err_code, sizeof(rq->err_code), t, rq->text_len);
		else if (rq->depth == 1 && strcmp(name, "Message") == 0)
			copy_text(rq->err_msg, sizeof(rq->err_msg), t, rq->text_len);
	} else if (rq->xml_kind == XML_INITIATE) {
		if (strcmp(name, "UploadId") == 0 && !rq->text_truncated)
			copy_text(rq->upload_id, sizeof(rq->upload_id), t, rq->text_len);
	} else if (rq->xml_kind == XML_LIST) {
		if (rq->depth == 2 && strcmp(name, "Key") == 0) {
			if (rq->text_truncated || rq->text_len > KEY_MAX)
				rq->cur_key_bad = 1;
			else
				copy_text(rq->cur_key, sizeof(rq->cur_key), t, rq->text_len);
		} else if (rq->depth == 2 && strcmp(name, "Size") == 0) {
			rq->cur_size = strtoull(t, NULL, 10);
		} else if (rq->depth == 1 && strcmp(name, "Contents") == 0) {
			if (rq->cur_key_bad || page_append(rq->s3, rq->cur_key, rq->cur_size))
				rq->list_overflow = 1;
		} else if (rq->depth == 1 && strcmp(name, "IsTruncated") == 0) {
			rq->truncated = strcmp(t, "true") == 0;
		} else if (rq->depth == 1 && strcmp(name, "NextContinuationToken") == 0) {
			if (rq->text_truncated)
				rq->list_overflow = 1;
			else
				copy_text(rq->next_token, sizeof(rq->next_token), t, rq->text_len);
		}
	}
	rq->text_len = 0;
	rq->text[0] = '\0';
}

static void xml_feed(struct request *rq, const char *data, size_t len)
{
	if (rq->xml_bad)
		return;
	if (!rq->parser) {
		rq->parser = XML_ParserCreate("UTF-8");
		if (!rq->parser) {
			rq->xml_bad = 1;
			return;
		}
		XML_SetUserData(rq->parser, rq);
		XML_SetElementHandler(rq->parser, on_xml_start, on_xml_end);
		XML_SetCharacterDataHandler(rq->parser, on_xml_text);
	}
	if (XML_Parse(rq->parser, data, (int)len, 0) == XML_STATUS_ERROR)
		rq->xml_bad = 1;
}

/* ---- one HTTP exchange ---------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct request *rq = ud;
	size_t n = size * nmemb;

	if (rq->status == 0)
		CU(curl_easy_getinfo)(rq->s3->curl, CURLINFO_RESPONSE_CODE, &rq->status);
	if (rq->status >= 300 || rq->sink == SINK_XML) {
		xml_feed(rq, data, n);
		return n;
	}
	if (rq->sink == SINK_BUF || rq->sink == SINK_GROW) {
		if (rq->buf_len + n > rq->buf_cap) {
			size_t cap = rq->buf_cap ? rq->buf_cap : 4096;
			unsigned char *b;

			if (rq->sink == SINK_BUF || rq->buf_len + n > rq->grow_max) {
				rq->overflow = 1;
				return 0;
			}
			while (cap < rq->buf_len + n)
				cap *= 2;
			if (cap > rq->grow_max)
				cap = rq->grow_max;
			b = realloc(rq->buf, cap);
			if (!b) {
				rq->overflow = 1;
				return 0;
			}
			rq->buf = b;
			rq->buf_cap = cap;
		}
		memcpy(rq->buf + rq->buf_len, data, n);
		rq->buf_len += n;
	}
	return n;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
	struct request *rq = ud;
	size_t n = size * nmemb;

	if (n > 5 && strncasecmp(line, "ETag:", 5) == 0) {
		const char *v = line + 5;
		size_t len = n - 5;

		while (len && (*v == ' ' || *v == '\t')) {
			v++;
			len--;
		}
		while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
			len--;
		copy_text(rq->etag, sizeof(rq->etag), v, len);
	}
	return n;
}

static size_t on_read(char *dst, size_t size, size_t nmemb, void *ud)
{
	struct request *rq = ud;
	size_t room = size * nmemb;
	size_t left = rq->body_len - rq->upload_pos;
	size_t n = left < room ? left : room;

	memcpy(dst, (const char *)rq->body + rq->upload_pos, n);
	rq->upload_pos += n;
	return n;
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
	char line[4096];
	struct curl_slist *l;

	if (snprintf(line, sizeof(line), "%s: %s", name, value) >= (int)sizeof(line))
		return -1;
	l = CU(curl_slist_append)(*list, line);
	if (!l)
		return -1;
	*list = l;
	return 0;
}

static void reset_attempt(struct request *rq)
{
	rq->upload_pos = 0;
	rq->status = 0;
	rq->overflow = 0;
	rq->etag[0] = '\0';
	if (rq->parser)
		XML_ParserFree(rq->parser);
	rq->parser = NULL;
	rq->xml_bad = 0;
	rq->depth = 0;
	rq->root[0] = '\0';
	rq->text_len = 0;
	rq->err_code[0] = rq->err_msg[0] = '\0';
	rq->truncated = 0;
	rq->next_token[0] = '\0';
	rq->upload_id[0] = '\0';
	rq->list_overflow = 0;
	rq->buf_len = 0; /* a SINK_GROW buffer is kept and refilled */
	if (rq->xml_kind == XML_LIST) {
		rq->s3->n_entries = 0;
		rq->s3->arena_len = 0;
	}
}

/* Sends the request once.  Returns the CURLcode; rq->status holds the HTTP
 * status when one arrived. */
static CURLcode perform_once(struct kt_s3_client *s3, struct request *rq, char *errbuf)
{
	struct kt_s3_header hdrs[8];
	struct kt_s3_sigv4_key sk = { s3->access_key, s3->secret_key, s3->region, "s3" };
	struct kt_s3_sigv4_request sreq;
	struct curl_slist *list = NULL;
	char amz_date[17], payload_hash[65], authorization[1024], sign_err[256];
	size_t nh = 0;
	CURL *c = s3->curl;
	CURLcode rc;
	int n;

	reset_attempt(rq);
	errbuf[0] = '\0';
	if (build_path(s3, rq->key, s3->path, sizeof(s3->path)) != 0) {
		snprintf(errbuf, CURL_ERROR_SIZE, "the object key is too long");
		return CURLE_URL_MALFORMAT;
	}
	n = snprintf(s3->url, sizeof(s3->url), "%s://%s%s%s%s", s3->scheme, s3->host, s3->path,
		     rq->query ? "?" : "", rq->query ? rq->query : "");
	if (n < 0 || (size_t)n >= sizeof(s3->url)) {
		snprintf(errbuf, CURL_ERROR_SIZE, "the request URL is too long");
		return CURLE_URL_MALFORMAT;
	}
	if (s3->unsigned_payload && rq->body_len)
		snprintf(payload_hash, sizeof(payload_hash), "%s", KT_S3_UNSIGNED_PAYLOAD);
	else
		kt_s3_sha256_hex(rq->body_len ? rq->body : "", rq->body_len, payload_hash);
	kt_s3_amz_date((int64_t)time(NULL), amz_date);

	hdrs[nh++] = (struct kt_s3_header){ "host", s3->host };
	hdrs[nh++] = (struct kt_s3_header){ "x-amz-content-sha256", payload_hash };
	hdrs[nh++] = (struct kt_s3_header){ "x-amz-date", amz_date };
	if (rq->range)
		hdrs[nh++] = (struct kt_s3_header){ "range", rq->range };
	if (s3->session_token)
		hdrs[nh++] = (struct kt_s3_header){ "x-amz-security-token", s3->session_token };
	if (rq->content_type)
		hdrs[nh++] = (struct kt_s3_header){ "content-type", rq->content_type };
	if (rq->if_none_match)
		hdrs[nh++] = (struct kt_s3_header){ "if-none-match", "*" };
	sreq = (struct kt_s3_sigv4_request){ rq->method, s3->path, rq->query, hdrs, nh,
					     payload_hash };
	if (kt_s3_sigv4_sign(&sreq, &sk, amz_date, authorization, sizeof(authorization), NULL, 0,
			     sign_err, sizeof(sign_err)) != 0) {
		snprintf(errbuf, CURL_ERROR_SIZE, "%s", sign_err);
		return CURLE_URL_MALFORMAT;
	}
	for (size_t i = 0; i < nh; i++)
		if (add_header(&list, hdrs[i].name, hdrs[i].value) != 0)
			goto nomem;
	/* No "Expect: 100-continue" round trip, and no header curl would add
	 * on its own for a POST. */
	if (add_header(&list, "Authorization", authorization) != 0 ||
	    !(list = CU(curl_slist_append)(list, "Expect:")))
		goto nomem;
	if (!rq->content_type && !(list = CU(curl_slist_append)(list, "Content-Type:")))
		goto nomem;
	OPENSSL_cleanse(authorization, sizeof(authorization));

	CU(curl_easy_reset)(c);
	CU(curl_easy_setopt)(c, CURLOPT_URL, s3->url);
	CU(curl_easy_setopt)(c, CURLOPT_HTTPHEADER, list);
	CU(curl_easy_setopt)(c, CURLOPT_ERRORBUFFER, errbuf);
	CU(curl_easy_setopt)(c, CURLOPT_NOSIGNAL, 1L);
	CU(curl_easy_setopt)(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	CU(curl_easy_setopt)(c, CURLOPT_USERAGENT, "ktape/" KT_VERSION_STRING);
	CU(curl_easy_setopt)(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
	CU(curl_easy_setopt)(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	CU(curl_easy_setopt)(c, CURLOPT_LOW_SPEED_TIME, (long)(s3->stall_timeout_ms + 999) / 1000);
	CU(curl_easy_setopt)(c, CURLOPT_TCP_KEEPALIVE, 1L);
	CU(curl_easy_setopt)(c, CURLOPT_PROTOCOLS_STR, "http,https");
	CU(curl_easy_setopt)(c, CURLOPT_WRITEFUNCTION, on_body);
	CU(curl_easy_setopt)(c, CURLOPT_WRITEDATA, rq);
	CU(curl_easy_setopt)(c, CURLOPT_HEADERFUNCTION, on_header);
	CU(curl_easy_setopt)(c, CURLOPT_HEADERDATA, rq);
	if (strcmp(rq->method, "HEAD") == 0) {
		CU(curl_easy_setopt)(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(rq->method, "PUT") == 0) {
		CU(curl_easy_setopt)(c, CURLOPT_UPLOAD, 1L);
		CU(curl_easy_setopt)(c, CURLOPT_READFUNCTION, on_read);
		CU(curl_easy_setopt)(c, CURLOPT_READDATA, rq);
		CU(curl_easy_setopt)(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
	} else if (strcmp(rq->method, "POST") == 0) {
		CU(curl_easy_setopt)(c, CURLOPT_POST, 1L);
		CU(curl_easy_setopt)(c, CURLOPT_POSTFIELDS, rq->body_len ? rq->body : "");
		CU(curl_easy_setopt)(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
	} else if (strcmp(rq->method, "GET") != 0) {
		CU(curl_easy_setopt)(c, CURLOPT_CUSTOMREQUEST, rq->method);
	}
	rc = CU(curl_easy_perform)(c);
	if (rq->status == 0)
		CU(curl_easy_getinfo)(c, CURLINFO_RESPONSE_CODE, &rq->status);
	if (rq->parser && !rq->xml_bad && XML_Parse(rq->parser, "", 0, 1) == XML_STATUS_ERROR)
		rq->xml_bad = 1;
	/* Drop the header list (it holds the signature) before returning. */
	CU(curl_easy_setopt)(c, CURLOPT_HTTPHEADER, NULL);
	CU(curl_slist_free_all)(list);
	return rc;
nomem:
	CU(curl_slist_free_all)(list);
	OPENSSL_cleanse(authorization, sizeof(authorization));
	snprintf(errbuf, CURL_ERROR_SIZE, "out of memory building headers");
	return CURLE_OUT_OF_MEMORY;
}

static int status_error(long status)
{
	switch (status) {
	case 404: return KT_ENOTFOUND;
	case 412: return KT_EEXIST;
	case 416: return KT_ERANGE;
	case 401:
	case 403: return -EACCES;
	case 405:
	case 501: return KT_EUNSUPPORTED;
	default: return -EIO;
	}
}

static int transport_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT: return KT_ETIMEDOUT;
	case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST: return -EHOSTUNREACH;
	case CURLE_OUT_OF_MEMORY: return -ENOMEM;
	case CURLE_URL_MALFORMAT: return KT_EUSAGE;
	default: return -EIO;
	}
}

static int retryable(CURLcode rc, const struct request *rq)
{
	if (rc != CURLE_OK)
		return rc != CURLE_URL_MALFORMAT && rc != CURLE_OUT_OF_MEMORY &&
		       rc != CURLE_WRITE_ERROR && rc != CURLE_UNSUPPORTED_PROTOCOL;
	if (rq->status == 500 || rq->status == 502 || rq->status == 503 ||
	    rq->status == 504 || rq->status == 429)
		return 1;
	return strcmp(rq->err_code, "SlowDown") == 0 ||
	       strcmp(rq->err_code, "RequestTimeout") == 0 ||
	       strcmp(rq->err_code, "InternalError") == 0;
}

/* Names the request for messages: "PUT s3://bucket/key". */
static const char *what(struct kt_s3_client *s3, const struct request *rq)
{
	snprintf(s3->errctx, sizeof(s3->errctx), "S3 %s s3://%s/%s", rq->method, s3->bucket,
		 rq->key ? rq->key : "");
	return s3->errctx;
}

/* Sends the request, retrying what may succeed on a second try.  Returns 0
 * on a 2xx answer whose body (if any was parsed) held no error. */
static int perform(struct kt_s3_client *s3, struct request *rq, char *errstr, size_t errstr_size)
{
	char errbuf[CURL_ERROR_SIZE];
	unsigned attempt;
	CURLcode rc = CURLE_OK;

	rq->s3 = s3;
	rq->attempts = 1;
	for (attempt = 1; ; attempt++) {
		rc = perform_once(s3, rq, errbuf);
		if (rc == CURLE_OK && rq->status >= 200 && rq->status < 300 &&
		    strcmp(rq->root, "Error") != 0)
			break;
		if (rc == CURLE_WRITE_ERROR && rq->overflow)
			break;
		if (attempt >= s3->max_attempts || !retryable(rc, rq))
			break;
		rq->attempts = attempt + 1;
		{
			/* 100 ms doubling to 3.2 s, plus up to 50% jitter so that
			 * several writers do not retry in step. */
			unsigned shift = attempt - 1 < 5 ? attempt - 1 : 5;
			unsigned base = 100u << shift, jitter;
			struct timespec ts;

			if (kt_random_bytes(&jitter, sizeof(jitter)) != 0)
				jitter = 0;
			base += jitter % (base / 2 + 1);
			kt_log(s3->log, KT_LOG_WARN, "%s: %s; retrying in %u ms (attempt %u of %u)",
			       what(s3, rq),
			       rc != CURLE_OK ? CU(curl_easy_strerror)(rc)
					      : (rq->err_code[0] ? rq->err_code : "server error"),
			       base, attempt + 1, s3->max_attempts);
			ts.tv_sec = base / 1000;
			ts.tv_nsec = (long)(base % 1000) * 1000000L;
			nanosleep(&ts, NULL);
		}
	}
	if (rq->parser) {
		XML_ParserFree(rq->parser);
		rq->parser = NULL;
	}
	if (rc == CURLE_WRITE_ERROR && rq->overflow) {
		if (rq->sink == SINK_GROW)
			return kt_seterr(errstr, errstr_size, -EFBIG,
					 "%s: the object is larger than the %zu bytes allowed",
					 what(s3, rq), rq->grow_max);
		return kt_seterr(errstr, errstr_size, -EIO,
				 "%s: the server sent more than the %zu bytes asked for%s",
				 what(s3, rq), rq->buf_cap,
				 rq->range ? " (did it ignore the Range header?)" : "");
	}
	if (rc != CURLE_OK)
		return kt_seterr(errstr, errstr_size, transport_error(rc),
				 "%s via %s://%s: %s%s%s (after %u attempt%s)", what(s3, rq),
				 s3->scheme, s3->authority, CU(curl_easy_strerror)(rc),
				 errbuf[0] ? ": " : "", errbuf, attempt, attempt == 1 ? "" : "s");
	if (rq->status < 200 || rq->status >= 300 || strcmp(rq->root, "Error") == 0) {
		int err = rq->status >= 200 && rq->status < 300 ? -EIO : status_error(rq->status);

		if (strcmp(rq->err_code, "NoSuchUpload") == 0 || strcmp(rq->err_code, "NoSuchKey") == 0 ||
		    strcmp(rq->err_code, "NoSuchBucket") == 0)
			err = KT_ENOTFOUND;
		return kt_seterr(errstr, errstr_size, err, "%s: HTTP %ld%s%s%s%s%s", what(s3, rq),
				 rq->status, rq->err_code[0] ? " " : "", rq->err_code,
				 rq->err_msg[0] ? ": " : "", rq->err_msg,
				 attempt > 1 ? " (after retries)" : "");
	}
	return 0;
}

/* ---- object calls --------------------------------------------------------- */

int kt_s3_put(struct kt_s3_client *s3, const char *key, const void *data, size_t len,
	      char *errstr, size_t errstr_size)
{
	struct request rq = { .method = "PUT", .key = key, .body = data, .body_len = len };

	return perform(s3, &rq, errstr, errstr_size);
}

int kt_s3_put_if_absent(struct kt_s3_client *s3, const char *key, const void *data,
			size_t len, char *errstr, size_t errstr_size)
{
	struct request rq = { .method = "PUT", .key = key, .body = data, .body_len = len,
			      .if_none_match = 1 };
	void *have = NULL;
	size_t have_len = 0;
	int err;

	err = perform(s3, &rq, errstr, errstr_size);
	if (err != KT_EEXIST || rq.attempts < 2)
		return err;
	/* A retry answered 412: the first try may have been stored with its
	 * answer lost.  The object is ours if it holds exactly our bytes. */
	if (kt_s3_get(s3, key, len, &have, &have_len, NULL, 0) == 0 && have_len == len &&
	    memcmp(have, data, len) == 0)
		err = 0;
	free(have);
	return err;
}

int kt_s3_get_range(struct kt_s3_client *s3, const char *key, uint64_t offset, size_t len,
		    void *buf, size_t *out_len, char *errstr, size_t errstr_size)
{
	char range[64];
	struct request rq = { .method = "GET", .key = key, .range = range, .sink = SINK_BUF,
			      .buf = buf, .buf_cap = len };
	int err;

	*out_len = 0;
	if (len == 0)
		return 0;
	snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, offset,
		 offset + (uint64_t)len - 1);
	err = perform(s3, &rq, errstr, errstr_size);
	if (err)
		return err;
	/* A 200 to a ranged request is the whole object: right only when the
	 * range began at 0 and the object fit (on_body refuses more). */
	if (rq.status == 200 && offset != 0)
		return kt_seterr(errstr, errstr_size, -EIO,
				 "%s: the server answered a Range request from byte %" PRIu64
				 " with the whole object", what(s3, &rq), offset);
	*out_len = rq.buf_len;
	return 0;
}

int kt_s3_get(struct kt_s3_client *s3, const char *key, size_t max_size,
	      void **out, size_t *out_len, char *errstr, size_t errstr_size)
{
	struct request rq = { .method = "GET", .key = key, .sink = SINK_GROW, .grow_max = max_size };
	int err;

	*out = NULL;
	*out_len = 0;
	err = perform(s3, &rq, errstr, errstr_size);
	if (err) {
		free(rq.buf);
		return err;
	}
	if (!rq.buf) {
		rq.buf = malloc(1);
		if (!rq.buf)
			return kt_seterr(errstr, errstr_size, -ENOMEM, "S3 GET: out of memory");
	}
	*out = rq.buf;
	*out_len = rq.buf_len;
	return 0;
}

int kt_s3_head(struct kt_s3_client *s3, const char *key, uint64_t *size,
	       char *errstr, size_t errstr_size)
{
	struct request rq = { .method = "HEAD", .key = key };
	curl_off_t cl = -1;
	int err;

	*size = 0;
	err = perform(s3, &rq, errstr, errstr_size);
	if (err)
		return err;
	CU(curl_easy_getinfo)(s3->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	if (cl < 0)
		return kt_seterr(errstr, errstr_size, -EIO, "%s: the answer has no Content-Length",
				 what(s3, &rq));
	*size = (uint64_t)cl;
	return 0;
}

int kt_s3_delete(struct kt_s3_client *s3, const char *key, char *errstr, size_t errstr_size)
{
	struct request rq = { .method = "DELETE", .key = key };

	return perform(s3, &rq, errstr, errstr_size);
}

int kt_s3_list(struct kt_s3_client *s3, const char *prefix, kt_s3_list_fn fn,
	       void *opaque, char *errstr, size_t errstr_size)
{
	char token[TEXT_MAX] = "", enc_token[3 * TEXT_MAX], enc_prefix[3 * KEY_MAX + 1];
	char query[3 * TEXT_MAX + 3 * KEY_MAX + 128];
	int err = 0;

	if (kt_s3_uri_encode(prefix ? prefix : "", 0, enc_prefix, sizeof(enc_prefix)) < 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "S3 list of s3://%s/%s: the prefix is too long", s3->bucket,
				 prefix);
	for (;;) {
		struct request rq = { .method = "GET", .sink = SINK_XML, .xml_kind = XML_LIST };

		if (token[0] && kt_s3_uri_encode(token, 0, enc_token, sizeof(enc_token)) < 0)
			return kt_seterr(errstr, errstr_size, -EIO,
					 "S3 list of s3://%s/%s: continuation token too long",
					 s3->bucket, prefix);
		snprintf(query, sizeof(query), "%s%s%slist-type=2&max-keys=%u&prefix=%s",
			 token[0] ? "continuation-token=" : "", token[0] ? enc_token : "",
			 token[0] ? "&" : "", s3->list_page_keys, enc_prefix);
		rq.query = query;
		err = perform(s3, &rq, errstr, errstr_size);
		if (err)
			return err;
		if (rq.xml_bad || strcmp(rq.root, "ListBucketResult") != 0)
			return kt_seterr(errstr, errstr_size, -EIO,
					 "S3 list of s3://%s/%s: the answer is not a "
					 "ListBucketResult document", s3->bucket, prefix);
		if (rq.list_overflow)
			return kt_seterr(errstr, errstr_size, -EIO,
					 "S3 list of s3://%s/%s: a page has more than %d keys, a "
					 "key longer than %d bytes or an oversized token",
					 s3->bucket, prefix, LIST_MAX_ENTRIES, KEY_MAX);
		for (size_t i = 0; i < s3->n_entries; i++) {
			err = fn(opaque, s3->arena + s3->entries[i].key_off, s3->entries[i].size);
			if (err)
				return err;
		}
		if (!rq.truncated)
			return 0;
		if (!rq.next_token[0] || strcmp(rq.next_token, token) == 0)
			return kt_seterr(errstr, errstr_size, -EIO,
					 "S3 list of s3://%s/%s: the listing is truncated but "
					 "gives no new continuation token", s3->bucket, prefix);
		snprintf(token, sizeof(token), "%s", rq.next_token);
	}
}

/* ---- multipart uploads ---------------------------------------------------- */

int kt_s3_upload_create(struct kt_s3_client *s3, const char *key,
			struct kt_s3_upload **out, char *errstr, size_t errstr_size)
{
	struct request rq = { .method = "POST", .key = key, .query = "uploads=",
			      .sink = SINK_XML, .xml_kind = XML_INITIATE };
	struct kt_s3_upload *up;
	int err;

	*out = NULL;
	up = calloc(1, sizeof(*up));
	if (!up || !(up->key = strdup(key))) {
		free(up);
		return kt_seterr(errstr, errstr_size, -ENOMEM, "S3 upload: out of memory");
	}
	up->s3 = s3;
	err = perform(s3, &rq, errstr, errstr_size);
	if (err)
		goto fail;
	if (rq.xml_bad || !rq.upload_id[0]) {
		err = kt_seterr(errstr, errstr_size, -EIO,
				"S3 CreateMultipartUpload of s3://%s/%s: the answer has no UploadId",
				s3->bucket, key);
		goto fail;
	}
	snprintf(up->upload_id, sizeof(up->upload_id), "%s", rq.upload_id);
	kt_log(s3->log, KT_LOG_DEBUG, "S3 multipart upload of s3://%s/%s started: %s", s3->bucket,
	       key, up->upload_id);
	*out = up;
	return 0;
fail:
	kt_s3_upload_destroy(up);
	return err;
}

static int upload_query(const struct kt_s3_upload *up, unsigned part, char *q, size_t size)
{
	char enc_id[3 * TEXT_MAX];
	int n;

	if (kt_s3_uri_encode(up->upload_id, 0, enc_id, sizeof(enc_id)) < 0)
		return -1;
	if (part)
		n = snprintf(q, size, "partNumber=%u&uploadId=%s", part, enc_id);
	else
		n = snprintf(q, size, "uploadId=%s", enc_id);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int upload_closed(const struct kt_s3_upload *up, char *errstr, size_t errstr_size)
{
	return kt_seterr(errstr, errstr_size, KT_EUSAGE, "S3 upload of s3://%s/%s is already %s",
			 up->s3->bucket, up->key, up->done == 1 ? "complete" : "aborted");
}

int kt_s3_upload_part(struct kt_s3_upload *up, const void *data, size_t len,
		      char *errstr, size_t errstr_size)
{
	char query[3 * TEXT_MAX + 64];
	struct request rq = { .method = "PUT", .key = up->key, .query = query, .body = data,
			      .body_len = len };
	unsigned part = up->parts + 1;
	int err;

	if (up->done)
		return upload_closed(up, errstr, errstr_size);
	if (part > KT_S3_MAX_PARTS)
		return kt_seterr(errstr, errstr_size, -EFBIG,
				 "S3 upload of s3://%s/%s: more than %d parts", up->s3->bucket,
				 up->key, KT_S3_MAX_PARTS);
	if (upload_query(up, part, query, sizeof(query)) != 0)
		return kt_seterr(errstr, errstr_size, -EIO, "S3 upload: upload id too long");
	if (up->parts == up->cap) {
		unsigned cap = up->cap ? 2 * up->cap : 16;
		char (*e)[ETAG_MAX];

		if (cap > KT_S3_MAX_PARTS)
			cap = KT_S3_MAX_PARTS;
		e = realloc(up->etags, (size_t)cap * sizeof(*e));
		if (!e)
			return kt_seterr(errstr, errstr_size, -ENOMEM, "S3 upload: out of memory");
		up->etags = e;
		up->cap = cap;
	}
	err = perform(up->s3, &rq, errstr, errstr_size);
	if (err)
		return err;
	if (!rq.etag[0])
		return kt_seterr(errstr, errstr_size, -EIO,
				 "S3 UploadPart %u of s3://%s/%s: the answer has no ETag", part,
				 up->s3->bucket, up->key);
	snprintf(up->etags[up->parts], ETAG_MAX, "%s", rq.etag);
	up->parts = part;
	return 0;
}

/* Appends s to the XML body, escaping what XML text may not hold. */
static size_t xml_escape(char *dst, const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		const char *r = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;

		if (r) {
			memcpy(dst + n, r, strlen(r));
			n += strlen(r);
		} else {
			dst[n++] = *s;
		}
	}
	return n;
}

int kt_s3_upload_complete(struct kt_s3_upload *up, char *errstr, size_t errstr_size)
{
	char query[3 * TEXT_MAX + 64];
	struct request rq = { .method = "POST", .key = up->key, .query = query,
			      .content_type = "application/xml", .sink = SINK_XML,
			      .xml_kind = XML_COMPLETE };
	size_t cap, n = 0;
	char *body;
	int err;

	if (up->done)
		return upload_closed(up, errstr, errstr_size);
	if (up->parts == 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "S3 upload of s3://%s/%s has no parts to complete",
				 up->s3->bucket, up->key);
	if (upload_query(up, 0, query, sizeof(query)) != 0)
		return kt_seterr(errstr, errstr_size, -EIO, "S3 upload: upload id too long");
	/* Each part: fixed tags, a number, and an ETag escaped at most 5x. */
	cap = 64 + (size_t)up->parts * (64 + 5 * ETAG_MAX);
	body = malloc(cap);
	if (!body)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "S3 upload: out of memory");
	/* cap covers the worst case, so snprintf never truncates here. */
	n += (size_t)snprintf(body, cap, "<CompleteMultipartUpload>");
	for (unsigned i = 0; i < up->parts; i++) {
		n += (size_t)snprintf(body + n, cap - n, "<Part><PartNumber>%u</PartNumber><ETag>",
				      i + 1);
		n += xml_escape(body + n, up->etags[i]);
		n += (size_t)snprintf(body + n, cap - n, "</ETag></Part>");
	}
	n += (size_t)snprintf(body + n, cap - n, "</CompleteMultipartUpload>");
	rq.body = body;
	rq.body_len = n;
	err = perform(up->s3, &rq, errstr, errstr_size);
	free(body);
	if (err)
		return err;
	if (rq.xml_bad || strcmp(rq.root, "CompleteMultipartUploadResult") != 0)
		return kt_seterr(errstr, errstr_size, -EIO,
				 "S3 CompleteMultipartUpload of s3://%s/%s: the answer is not a "
				 "CompleteMultipartUploadResult document", up->s3->bucket, up->key);
	up->done = 1;
	return 0;
}

int kt_s3_upload_abort(struct kt_s3_upload *up, char *errstr, size_t errstr_size)
{
	char query[3 * TEXT_MAX + 64];
	struct request rq = { .method = "DELETE", .key = up->key, .query = query };
	int err;

	if (up->done == 1)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "S3 upload of s3://%s/%s is complete and cannot be aborted",
				 up->s3->bucket, up->key);
	if (upload_query(up, 0, query, sizeof(query)) != 0)
		return kt_seterr(errstr, errstr_size, -EIO, "S3 upload: upload id too long");
	err = perform(up->s3, &rq, errstr, errstr_size);
	/* An upload already gone (aborted by a retry, or by a lifecycle rule)
	 * is what abort wanted. */
	if (err == KT_ENOTFOUND)
		err = 0;
	if (!err)
		up->done = 2;
	return err;
}

unsigned kt_s3_upload_parts(const struct kt_s3_upload *up)
{
	return up->parts;
}

const char *kt_s3_upload_id(const struct kt_s3_upload *up)
{
	return up->upload_id;
}

void kt_s3_upload_destroy(struct kt_s3_upload *up)
{
	if (!up)
		return;
	free(up->key);
	free(up->etags);
	free(up);
}
