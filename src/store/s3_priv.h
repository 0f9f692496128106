/*
 * s3_priv.h - private to src/store: a small S3 client (libcurl, expat) and
 * AWS Signature Version 4 signing (OpenSSL libcrypto for SHA-256/HMAC).
 *
 * It is the store's I/O towards object storage, the way io_priv.h is its
 * I/O towards local files; format/object-storage.md says how a repository
 * maps onto it.  Nothing here links librdkafka.
 *
 * Threading: a struct kt_s3_client owns one curl handle and scratch
 * buffers, so it serves one thread at a time; give each thread its own
 * client.  Memory is bounded by the configuration (a listing page, an
 * upload's part list), never by the size of the objects moved: bodies go
 * from and to the caller's buffers.
 *
 * Secrets: the secret key and session token are copied into the client,
 * used to sign, and never written to errstr or the log.
 */
#ifndef KT_STORE_S3_PRIV_H
#define KT_STORE_S3_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "kt_common.h"

/* ---- SigV4 signing (s3_sigv4.c) ----------------------------------------- */

/* Payload hash for a request whose body is not hashed (S3 accepts it over
 * TLS; the body is then protected by TLS alone). */
#define KT_S3_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* SHA-256 of the empty string, the payload hash of a request without body. */
#define KT_S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct kt_s3_header {
	const char *name;  /* any case; signed lowercased */
	const char *value; /* trimmed and inner runs of spaces folded when signed */
};

/* One HTTP request as SigV4 sees it.  Every header listed is signed, so the
 * caller lists exactly the headers it sends that must be signed: host,
 * x-amz-date, x-amz-content-sha256, and range, x-amz-security-token,
 * content-type when present. */
struct kt_s3_sigv4_request {
	const char *method;       /* "GET", "PUT", ... */
	const char *path;         /* the path as sent, already URI-encoded once
				   * (S3 does not normalise or re-encode it) */
	const char *query;        /* the query as sent without '?', each name and
				   * value URI-encoded; NULL or "" for none */
	const struct kt_s3_header *headers;
	size_t header_count;
	const char *payload_hash; /* 64 lowercase hex digits or UNSIGNED-PAYLOAD */
};

struct kt_s3_sigv4_key {
	const char *access_key;
	const char *secret_key;
	const char *region;  /* "us-east-1" */
	const char *service; /* "s3" */
};

/* Writes the canonical request (SigV4 step 1) into buf and the
 * semicolon-separated signed header names into signed_headers.  Fails with
 * KT_EUSAGE when a buffer is too small, there are more than 32 headers, or a
 * header name is empty or not a token. */
int kt_s3_sigv4_canonical_request(const struct kt_s3_sigv4_request *req,
				  char *buf, size_t buf_size,
				  char *signed_headers, size_t signed_headers_size,
				  char *errstr, size_t errstr_size);

/* Signs req at amz_date ("20150830T123600Z", which must also be the
 * request's x-amz-date header) and writes the whole Authorization header
 * value ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...")
 * into authorization.  If string_to_sign is not NULL the string to sign is
 * written there too (for tests).  0 or KT_EUSAGE. */
int kt_s3_sigv4_sign(const struct kt_s3_sigv4_request *req,
		     const struct kt_s3_sigv4_key *key, const char *amz_date,
		     char *authorization, size_t authorization_size,
		     char *string_to_sign, size_t string_to_sign_size,
		     char *errstr, size_t errstr_size);

/* Lowercase hex SHA-256 of len bytes (65 bytes written with the NUL). */
void kt_s3_sha256_hex(const void *data, size_t len, char out[65]);

/* Percent-encodes src as SigV4 and S3 want it: every byte outside
 * A-Z a-z 0-9 - . _ ~ as %XX with uppercase hex; '/' is kept when keep_slash
 * is set (object keys in paths) and encoded otherwise (query values).
 * Returns the encoded length, or -1 when dst (size dst_size, NUL included)
 * is too small. */
long kt_s3_uri_encode(const char *src, int keep_slash, char *dst, size_t dst_size);

/* Formats t (seconds since the epoch) as the x-amz-date "YYYYMMDDTHHMMSSZ"
 * into out (17 bytes with the NUL). */
void kt_s3_amz_date(int64_t t, char out[17]);

/* ---- repository URLs ------------------------------------------------------ */

#define KT_S3_BUCKET_MAX 63
#define KT_S3_PREFIX_MAX 512

/* A parsed `s3://bucket/prefix`. */
struct kt_s3_location {
	char bucket[KT_S3_BUCKET_MAX + 1];
	char prefix[KT_S3_PREFIX_MAX + 1]; /* "" or "a/b" (no leading or
					    * trailing '/'); keys are
					    * prefix + "/" + relative path */
};

/* Nonzero when text starts with "s3://" (the caller then parses it with
 * kt_s3_url_parse; anything else is a local path). */
int kt_s3_url_is_s3(const char *text);

/* Parses `s3://bucket[/prefix][/]`.  The bucket must follow S3's naming
 * rules (3-63 bytes of a-z 0-9 . -, starting and ending with a letter or
 * digit, no "..", not an IPv4 address); the prefix may not contain empty,
 * "." or ".." components, control bytes, or be longer than 512 bytes.
 * KT_EUSAGE with a sentence naming the URL and what is wrong. */
int kt_s3_url_parse(const char *url, struct kt_s3_location *loc,
		    char *errstr, size_t errstr_size);

/* ---- client (s3.c) -------------------------------------------------------- */

/* Settings of a client.  NULL strings are taken from the environment:
 * endpoint from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (else
 * https://s3.<region>.amazonaws.com), region from AWS_REGION or
 * AWS_DEFAULT_REGION (else us-east-1), credentials from AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.  The strings are copied. */
struct kt_s3_config {
	const char *endpoint;      /* "http://127.0.0.1:4568", "https://host";
				    * scheme and authority only */
	const char *region;
	const char *bucket;        /* required */
	int path_style;            /* 1: ENDPOINT/bucket/key (S3-compatible
				    * stores); 0: virtual-hosted,
				    * SCHEME://bucket.HOST/key (AWS) */
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* temporary credentials; may stay NULL */
	int unsigned_payload;      /* 1: send bodies as UNSIGNED-PAYLOAD instead
				    * of hashing them (only over https) */
	unsigned max_attempts;     /* tries per request on 5xx, 429 and
				    * transport errors; 0 means 4 */
	unsigned stall_timeout_ms; /* a transfer slower than 1 byte/s for this
				    * long fails; 0 means 60000 */
	unsigned list_page_keys;   /* keys asked for per listing page, 1..1000;
				    * 0 means 1000 (tests use small pages to
				    * exercise continuation) */
};

struct kt_s3_client;

/* Creates a client (*out; the caller destroys it).  Fails with KT_EUSAGE
 * naming the setting that is missing or malformed (no bucket, no
 * credentials, an endpoint that is not http(s)://host[:port]). */
int kt_s3_client_create(const struct kt_s3_config *config, const struct kt_log *log,
			struct kt_s3_client **out, char *errstr, size_t errstr_size);

/* Frees the client.  NULL accepted. */
void kt_s3_client_destroy(struct kt_s3_client *s3);

/* The URL a request for key is sent to (for messages and tests).  Returns
 * the length written, or -1 when url_size is too small. */
long kt_s3_object_url(const struct kt_s3_client *s3, const char *key,
		      char *url, size_t url_size);

/* Error mapping, for every call below: HTTP 404 is KT_ENOTFOUND, 412 (a
 * precondition) KT_EEXIST, 416 KT_ERANGE, 401/403 -EACCES, 405/501
 * KT_EUNSUPPORTED, other answers -EIO, a stalled or timed-out transfer
 * KT_ETIMEDOUT, other transport failures -ECONNREFUSED, -EHOSTUNREACH or
 * -EIO.  errstr names the method, the s3:// object, the HTTP status and S3's
 * error code and message. */

/* Writes a whole object in one PUT (S3 allows up to 5 GiB; use multipart
 * above a few MiB). */
int kt_s3_put(struct kt_s3_client *s3, const char *key, const void *data, size_t len,
	      char *errstr, size_t errstr_size);

/* As kt_s3_put, but only if key does not exist yet (If-None-Match: *): the
 * commit of a manifest or repository marker that must never replace one.
 * KT_EEXIST when the store already holds key.  A store that ignores the
 * header (older S3-compatible servers) overwrites; callers that must not
 * rely on it HEAD first (format/object-storage.md section 3). */
int kt_s3_put_if_absent(struct kt_s3_client *s3, const char *key, const void *data,
			size_t len, char *errstr, size_t errstr_size);

/* Reads bytes [offset, offset + len) of key into buf with an HTTP Range
 * request; *out_len is how many arrived (fewer only at the object's end).
 * An offset at or past the end is KT_ERANGE. */
int kt_s3_get_range(struct kt_s3_client *s3, const char *key, uint64_t offset, size_t len,
		    void *buf, size_t *out_len, char *errstr, size_t errstr_size);

/* Reads a whole object of at most max_size bytes into a buffer it
 * allocates (*out, freed by the caller with free()).  A larger object is
 * -EFBIG, so a hostile store cannot make the reader allocate without
 * bound. */
int kt_s3_get(struct kt_s3_client *s3, const char *key, size_t max_size,
	      void **out, size_t *out_len, char *errstr, size_t errstr_size);

/* HEAD of key: its size.  KT_ENOTFOUND if absent. */
int kt_s3_head(struct kt_s3_client *s3, const char *key, uint64_t *size,
	       char *errstr, size_t errstr_size);

/* Deletes key.  Deleting an absent key succeeds, as on S3. */
int kt_s3_delete(struct kt_s3_client *s3, const char *key, char *errstr, size_t errstr_size);

/* Called once per object listed, in key order; returning nonzero stops the
 * listing and kt_s3_list returns that value. */
typedef int (*kt_s3_list_fn)(void *opaque, const char *key, uint64_t size);

/* Lists every object whose key starts with prefix (ListObjectsV2, following
 * continuation tokens).  Each page (at most 1000 keys) is read whole before
 * its keys are handed out, so a retried page never repeats a key. */
int kt_s3_list(struct kt_s3_client *s3, const char *prefix, kt_s3_list_fn fn,
	       void *opaque, char *errstr, size_t errstr_size);

/* ---- multipart uploads ---------------------------------------------------- */

/* One multipart upload in progress.  Parts are numbered 1, 2, ... in the
 * order uploaded; S3 wants every part but the last to be at least 5 MiB and
 * at most 10000 parts. */
struct kt_s3_upload;

#define KT_S3_MAX_PARTS 10000

/* Starts a multipart upload of key (CreateMultipartUpload).  The object
 * does not exist until kt_s3_upload_complete succeeds. */
int kt_s3_upload_create(struct kt_s3_client *s3, const char *key,
			struct kt_s3_upload **out, char *errstr, size_t errstr_size);

/* Uploads the next part (UploadPart) and records its ETag. */
int kt_s3_upload_part(struct kt_s3_upload *up, const void *data, size_t len,
		      char *errstr, size_t errstr_size);

/* Commits the parts as one object (CompleteMultipartUpload).  S3 may answer
 * 200 with an error document; that is reported as the error it names. */
int kt_s3_upload_complete(struct kt_s3_upload *up, char *errstr, size_t errstr_size);

/* Abandons the upload (AbortMultipartUpload) so its parts stop being
 * stored. */
int kt_s3_upload_abort(struct kt_s3_upload *up, char *errstr, size_t errstr_size);

/* Parts uploaded so far, and the upload id S3 assigned. */
unsigned kt_s3_upload_parts(const struct kt_s3_upload *up);
const char *kt_s3_upload_id(const struct kt_s3_upload *up);

/* Frees the handle.  It does not abort: a caller that gives up calls
 * kt_s3_upload_abort first (an upload neither completed nor aborted leaves
 * parts behind until a bucket lifecycle rule or prune removes them; it never
 * becomes an object).  NULL accepted. */
void kt_s3_upload_destroy(struct kt_s3_upload *up);

#endif /* KT_STORE_S3_PRIV_H */
