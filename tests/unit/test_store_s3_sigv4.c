/* Unit tests of the store's S3 groundwork (src/store/s3_priv.h): SigV4
 * signing against AWS's published vectors (tests/unit/data/sigv4_vectors.txt
 * says where each comes from), canonical request building, percent-encoding,
 * s3:// URL parsing, and the client's settings and error reporting without
 * a server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kt_common.h"
#include "s3_priv.h"

#define MAX_VEC_HEADERS 16

struct vector {
	char name[64];
	char access[64], secret[64], region[32], service[32];
	char date[32], method[16], path[256], query[512];
	char header_lines[MAX_VEC_HEADERS][1024];
	struct kt_s3_header headers[MAX_VEC_HEADERS];
	size_t n_headers;
	char payload_hash[80];
	char creq[4096];
	int have_creq;
	char creq_sha256[80], sts_hash[80], signed_headers[256], signature[80], authz[512];
};

static char *read_vectors(void)
{
	const char *root = getenv("KT_SOURCE_ROOT");
	char path[4096];
	FILE *f;
	char *text;
	long size;

	assert_non_null(root);
	snprintf(path, sizeof(path), "%s/tests/unit/data/sigv4_vectors.txt", root);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 0);
	rewind(f);
	text = malloc((size_t)size + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
	text[size] = '\0';
	fclose(f);
	return text;
}

/* Parses the vector named name out of the file's text. */
static void load_vector(const char *name, struct vector *v)
{
	char *text = read_vectors();
	char head[80];
	char *p, *line, *save = NULL;

	memset(v, 0, sizeof(*v));
	snprintf(head, sizeof(head), "[%s]\n", name);
	p = strstr(text, head);
	assert_non_null(p);
	snprintf(v->name, sizeof(v->name), "%s", name);
	p += strlen(head);
	for (line = strtok_r(p, "\n", &save); line && line[0] != '['; line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');
		const char *val = sp ? sp + 1 : "";
		size_t flen = sp ? (size_t)(sp - line) : strlen(line);

#define FIELD(f) (flen == strlen(f) && strncmp(line, f, flen) == 0)
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (FIELD("key")) {
			assert_int_equal(sscanf(val, "%63s %63s %31s %31s", v->access, v->secret,
						v->region, v->service), 4);
		} else if (FIELD("date")) {
			snprintf(v->date, sizeof(v->date), "%s", val);
		} else if (FIELD("method")) {
			snprintf(v->method, sizeof(v->method), "%s", val);
		} else if (FIELD("path")) {
			snprintf(v->path, sizeof(v->path), "%s", val);
		} else if (FIELD("query")) {
			snprintf(v->query, sizeof(v->query), "%s", val);
		} else if (FIELD("header")) {
			char *l = v->header_lines[v->n_headers];
			char *colon;

			assert_true(v->n_headers < MAX_VEC_HEADERS);
			snprintf(l, sizeof(v->header_lines[0]), "%s", val);
			colon = strchr(l, ':');
			assert_non_null(colon);
			*colon = '\0';
			v->headers[v->n_headers].name = l;
			v->headers[v->n_headers].value = colon + 1;
			v->n_headers++;
		} else if (FIELD("body")) {
			kt_s3_sha256_hex(val, strlen(val), v->payload_hash);
		} else if (FIELD("payload_hash")) {
			snprintf(v->payload_hash, sizeof(v->payload_hash), "%s", val);
		} else if (FIELD("creq")) {
			size_t n = strlen(v->creq);

			snprintf(v->creq + n, sizeof(v->creq) - n, "%s%s", v->have_creq ? "\n" : "",
				 val);
			v->have_creq = 1;
		} else if (FIELD("creq_sha256")) {
			snprintf(v->creq_sha256, sizeof(v->creq_sha256), "%s", val);
		} else if (FIELD("sts_hash")) {
			snprintf(v->sts_hash, sizeof(v->sts_hash), "%s", val);
		} else if (FIELD("signed_headers")) {
			snprintf(v->signed_headers, sizeof(v->signed_headers), "%s", val);
		} else if (FIELD("signature")) {
			snprintf(v->signature, sizeof(v->signature), "%s", val);
		} else if (FIELD("authz")) {
			snprintf(v->authz, sizeof(v->authz), "%s", val);
		} else {
			fail_msg("vector %s: unknown field line '%s'", name, line);
		}
#undef FIELD
	}
	free(text);
	assert_true(v->method[0] && v->date[0] && v->payload_hash[0]);
}

/* Checks every expectation the vector carries. */
static void check_vector(const char *name)
{
	struct vector v;
	struct kt_s3_sigv4_request req;
	struct kt_s3_sigv4_key key;
	char creq[8192], signed_headers[512], creq_hash[65], authz[1024], sts[512], err[256];
	char want[128];

	load_vector(name, &v);
	req = (struct kt_s3_sigv4_request){ v.method, v.path, v.query, v.headers, v.n_headers,
					    v.payload_hash };
	key = (struct kt_s3_sigv4_key){ v.access, v.secret, v.region, v.service };

	assert_int_equal(kt_s3_sigv4_canonical_request(&req, creq, sizeof(creq), signed_headers,
						       sizeof(signed_headers), err, sizeof(err)), 0);
	if (v.have_creq)
		assert_string_equal(creq, v.creq);
	kt_s3_sha256_hex(creq, strlen(creq), creq_hash);
	if (v.creq_sha256[0])
		assert_string_equal(creq_hash, v.creq_sha256);
	if (v.signed_headers[0])
		assert_string_equal(signed_headers, v.signed_headers);

	assert_int_equal(kt_s3_sigv4_sign(&req, &key, v.date, authz, sizeof(authz), sts,
					  sizeof(sts), err, sizeof(err)), 0);
	if (v.sts_hash[0]) {
		const char *last = strrchr(sts, '\n');

		assert_non_null(last);
		assert_string_equal(last + 1, v.sts_hash);
	}
	if (v.authz[0])
		assert_string_equal(authz, v.authz);
	if (v.signature[0]) {
		snprintf(want, sizeof(want), "Signature=%s", v.signature);
		assert_non_null(strstr(authz, want));
	}
}

static void test_sigv4_query_sorted_by_name_then_value(void **state)
{
	check_vector("get-vanilla-query-order-key");
}

static void test_sigv4_post_body_hashed_and_content_type_signed(void **state)
{
	check_vector("post-x-www-form-urlencoded");
}

static void test_sigv4_session_token_header_is_signed(void **state)
{
	check_vector("post-sts-header-before");
}

static void test_sigv4_header_values_trimmed_and_spaces_folded(void **state)
{
	check_vector("get-header-value-trim");
}

static void test_sigv4_unreserved_query_bytes_kept(void **state)
{
	check_vector("get-vanilla-query-unreserved");
}

static void test_sigv4_s3_ranged_get_matches_aws_example(void **state)
{
	check_vector("s3-get-object-range");
}

static void test_sigv4_s3_put_with_payload_hash_matches_aws_example(void **state)
{
	check_vector("s3-put-object");
}

static void test_sigv4_s3_valueless_query_parameter_matches_aws_example(void **state)
{
	check_vector("s3-get-bucket-lifecycle");
}

static void test_sigv4_s3_list_query_matches_aws_example(void **state)
{
	check_vector("s3-list-objects");
}

/* Changing any signed input changes the signature: the header set, the
 * payload hash (UNSIGNED-PAYLOAD included), the path. */
static void test_sigv4_signature_covers_payload_hash_and_path(void **state)
{
	struct kt_s3_header h[] = { { "host", "b.example" },
				    { "x-amz-date", "20260101T000000Z" } };
	struct kt_s3_sigv4_key key = { "AK", "SECRET", "eu-west-1", "s3" };
	struct kt_s3_sigv4_request req = { "PUT", "/k", NULL, h, 2, KT_S3_EMPTY_SHA256 };
	char a1[1024], a2[1024], a3[1024], err[256];

	assert_int_equal(kt_s3_sigv4_sign(&req, &key, "20260101T000000Z", a1, sizeof(a1), NULL, 0,
					  err, sizeof(err)), 0);
	req.payload_hash = KT_S3_UNSIGNED_PAYLOAD;
	assert_int_equal(kt_s3_sigv4_sign(&req, &key, "20260101T000000Z", a2, sizeof(a2), NULL, 0,
					  err, sizeof(err)), 0);
	req.path = "/k2";
	assert_int_equal(kt_s3_sigv4_sign(&req, &key, "20260101T000000Z", a3, sizeof(a3), NULL, 0,
					  err, sizeof(err)), 0);
	assert_string_not_equal(a1, a2);
	assert_string_not_equal(a2, a3);
	assert_non_null(strstr(a1, "Credential=AK/20260101/eu-west-1/s3/aws4_request"));
}

static void test_sigv4_repeated_header_names_become_one_line(void **state)
{
	struct kt_s3_header h[] = { { "My-Header", "b" }, { "host", "h" }, { "my-header", " a  z " } };
	struct kt_s3_sigv4_request req = { "GET", "/", "", h, 3, KT_S3_EMPTY_SHA256 };
	char creq[1024], sh[128], err[256];

	assert_int_equal(kt_s3_sigv4_canonical_request(&req, creq, sizeof(creq), sh, sizeof(sh),
						       err, sizeof(err)), 0);
	assert_string_equal(sh, "host;my-header");
	assert_non_null(strstr(creq, "\nhost:h\nmy-header:b,a z\n\nhost;my-header\n"));
}

static void test_sigv4_rejects_malformed_date_and_header(void **state)
{
	struct kt_s3_header h[] = { { "host", "h" } };
	struct kt_s3_header bad[] = { { "ho st", "h" } };
	struct kt_s3_sigv4_key key = { "AK", "S", "us-east-1", "s3" };
	struct kt_s3_sigv4_request req = { "GET", "/", NULL, h, 1, KT_S3_EMPTY_SHA256 };
	char out[512], err[256];

	assert_int_equal(kt_s3_sigv4_sign(&req, &key, "2026-01-01T00:00:00Z", out, sizeof(out),
					  NULL, 0, err, sizeof(err)), KT_EUSAGE);
	assert_non_null(strstr(err, "YYYYMMDDTHHMMSSZ"));
	req.headers = bad;
	assert_int_equal(kt_s3_sigv4_sign(&req, &key, "20260101T000000Z", out, sizeof(out), NULL,
					  0, err, sizeof(err)), KT_EUSAGE);
	assert_non_null(strstr(err, "ho st"));
	/* An Authorization header that does not fit is an error, not a cut. */
	req.headers = h;
	assert_int_equal(kt_s3_sigv4_sign(&req, &key, "20260101T000000Z", out, 40, NULL, 0, err,
					  sizeof(err)), KT_EUSAGE);
}

static void test_uri_encode_keeps_unreserved_and_optionally_slash(void **state)
{
	char out[128];

	assert_int_equal(kt_s3_uri_encode("seg/a b/\xc3\xbc$~%2F", 1, out, sizeof(out)), 25);
	assert_string_equal(out, "seg/a%20b/%C3%BC%24~%252F");
	assert_true(kt_s3_uri_encode("a/b=c&d", 0, out, sizeof(out)) > 0);
	assert_string_equal(out, "a%2Fb%3Dc%26d");
	assert_int_equal(kt_s3_uri_encode("abc", 0, out, 3), -1);
	assert_int_equal(kt_s3_uri_encode(" ", 0, out, 3), -1);
	assert_int_equal(kt_s3_uri_encode("", 0, out, 1), 0);
}

static void test_amz_date_is_utc_basic_format(void **state)
{
	char d[17];

	kt_s3_amz_date(1369353600, d); /* 2013-05-24T00:00:00Z */
	assert_string_equal(d, "20130524T000000Z");
	kt_s3_amz_date(1440938160, d); /* 2015-08-30T12:36:00Z */
	assert_string_equal(d, "20150830T123600Z");
}

/* ---- s3:// URLs -------------------------------------------------------- */

static void test_url_parses_bucket_and_prefix(void **state)
{
	struct kt_s3_location loc;
	char err[512];

	assert_true(kt_s3_url_is_s3("s3://b"));
	assert_false(kt_s3_url_is_s3("/var/backups/s3://x"));
	assert_int_equal(kt_s3_url_parse("s3://my-bucket", &loc, err, sizeof(err)), 0);
	assert_string_equal(loc.bucket, "my-bucket");
	assert_string_equal(loc.prefix, "");
	assert_int_equal(kt_s3_url_parse("s3://my.bucket-1/", &loc, err, sizeof(err)), 0);
	assert_string_equal(loc.bucket, "my.bucket-1");
	assert_string_equal(loc.prefix, "");
	assert_int_equal(kt_s3_url_parse("s3://backups/kafka/prod/", &loc, err, sizeof(err)), 0);
	assert_string_equal(loc.bucket, "backups");
	assert_string_equal(loc.prefix, "kafka/prod");
}

static void expect_url_error(const char *url, const char *needle)
{
	struct kt_s3_location loc;
	char err[512] = "";

	assert_int_equal(kt_s3_url_parse(url, &loc, err, sizeof(err)), KT_EUSAGE);
	if (!strstr(err, needle))
		fail_msg("URL '%s': error '%s' does not mention '%s'", url, err, needle);
}

static void test_url_errors_name_what_is_wrong(void **state)
{
	expect_url_error("file:///tmp/x", "does not start with s3://");
	expect_url_error("s3://", "names no bucket");
	expect_url_error("s3:///prefix", "names no bucket");
	expect_url_error("s3://Backups/x", "has 'B' at byte 0");
	expect_url_error("s3://back_ups", "has '_' at byte 4");
	expect_url_error("s3://ab/x", "shorter than 3");
	expect_url_error("s3://a..b/x", "two adjacent periods");
	expect_url_error("s3://-abc/x", "start and end with a letter or digit");
	expect_url_error("s3://192.168.1.10/x", "IP address");
	expect_url_error("s3://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/x",
			 "64 bytes");
	expect_url_error("s3://bucket/a//b", "empty, '.' or '..' component at byte 2");
	expect_url_error("s3://bucket/a/../b", "component at byte 2");
	expect_url_error("s3://bucket/./b", "component at byte 0");
	expect_url_error("s3://bucket/a?versionId=3", "'?'");
	expect_url_error("s3://bucket/a\tb", "control byte 0x09");
}

/* ---- client settings --------------------------------------------------- */

static void clear_aws_env(void)
{
	static const char *vars[] = { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
				      "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
				      "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3" };

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

static void test_client_takes_settings_from_aws_environment(void **state)
{
	struct kt_s3_config cfg = { .bucket = "bkt" };
	struct kt_s3_client *s3 = NULL;
	char url[256], err[512];

	clear_aws_env();
	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
	setenv("AWS_DEFAULT_REGION", "eu-west-3", 1);
	assert_int_equal(kt_s3_client_create(&cfg, NULL, &s3, err, sizeof(err)), 0);
	/* Virtual-hosted on AWS's regional endpoint; the key encoded once. */
	assert_true(kt_s3_object_url(s3, "segments/a%2Fb/0", url, sizeof(url)) > 0);
	assert_string_equal(url, "https://bkt.s3.eu-west-3.amazonaws.com/segments/a%252Fb/0");
	kt_s3_client_destroy(s3);

	setenv("AWS_REGION", "us-west-2", 1); /* wins over AWS_DEFAULT_REGION */
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000/", 1);
	cfg.path_style = 1;
	assert_int_equal(kt_s3_client_create(&cfg, NULL, &s3, err, sizeof(err)), 0);
	assert_true(kt_s3_object_url(s3, "snapshots/x.json", url, sizeof(url)) > 0);
	assert_string_equal(url, "http://127.0.0.1:9000/bkt/snapshots/x.json");
	kt_s3_client_destroy(s3);
	kt_s3_client_destroy(NULL);
	clear_aws_env();
}

static void test_client_refuses_missing_credentials_and_bad_endpoint(void **state)
{
	struct kt_s3_config cfg = { .bucket = "bkt" };
	struct kt_s3_client *s3 = NULL;
	char err[512];

	clear_aws_env();
	assert_int_equal(kt_s3_client_create(&cfg, NULL, &s3, err, sizeof(err)), KT_EUSAGE);
	assert_null(s3);
	assert_non_null(strstr(err, "AWS_ACCESS_KEY_ID"));

	cfg.access_key = "AK";
	cfg.secret_key = "SK";
	cfg.endpoint = "ftp://host";
	assert_int_equal(kt_s3_client_create(&cfg, NULL, &s3, err, sizeof(err)), KT_EUSAGE);
	assert_non_null(strstr(err, "http:// or https://"));
	cfg.endpoint = "http://host:9000/some/path";
	assert_int_equal(kt_s3_client_create(&cfg, NULL, &s3, err, sizeof(err)), KT_EUSAGE);
	assert_non_null(strstr(err, "has a path"));
	cfg.endpoint = "http://user:pw@host";
	assert_int_equal(kt_s3_client_create(&cfg, NULL, &s3, err, sizeof(err)), KT_EUSAGE);
	assert_non_null(strstr(err, "'@'"));
	assert_null(strstr(err, "pw"));
	cfg.endpoint = "http://host";
	cfg.region = "EU_WEST";
	assert_int_equal(kt_s3_client_create(&cfg, NULL, &s3, err, sizeof(err)), KT_EUSAGE);
	assert_non_null(strstr(err, "region"));
	cfg.region = NULL;
	cfg.bucket = NULL;
	assert_int_equal(kt_s3_client_create(&cfg, NULL, &s3, err, sizeof(err)), KT_EUSAGE);
	assert_non_null(strstr(err, "no bucket"));
}

/* A store that refuses connections: the error names the request, the
 * object and the endpoint, carries -ECONNREFUSED, and never the secret. */
static void test_client_reports_unreachable_endpoint(void **state)
{
	struct kt_s3_config cfg = { .bucket = "bkt", .endpoint = "http://127.0.0.1:1",
				    .path_style = 1, .access_key = "AK",
				    .secret_key = "TOPSECRET", .max_attempts = 1 };
	struct kt_s3_client *s3 = NULL;
	char err[1024], buf[8];
	size_t got = 99;
	uint64_t size = 7;

	clear_aws_env();
	assert_int_equal(kt_s3_client_create(&cfg, NULL, &s3, err, sizeof(err)), 0);
	assert_int_equal(kt_s3_put(s3, "snapshots/a.json", "{}", 2, err, sizeof(err)),
			 -ECONNREFUSED);
	assert_non_null(strstr(err, "S3 PUT s3://bkt/snapshots/a.json via http://127.0.0.1:1"));
	assert_null(strstr(err, "TOPSECRET"));
	assert_int_equal(kt_s3_get_range(s3, "k", 10, sizeof(buf), buf, &got, err, sizeof(err)),
			 -ECONNREFUSED);
	assert_int_equal(got, 0);
	assert_non_null(strstr(err, "S3 GET s3://bkt/k"));
	assert_int_equal(kt_s3_head(s3, "k", &size, err, sizeof(err)), -ECONNREFUSED);
	assert_int_equal(size, 0);
	/* A zero-length range needs no request at all. */
	assert_int_equal(kt_s3_get_range(s3, "k", 0, 0, buf, &got, err, sizeof(err)), 0);
	kt_s3_client_destroy(s3);

	/* Transport errors are retried, with backoff, as many times as asked. */
	cfg.max_attempts = 3;
	assert_int_equal(kt_s3_client_create(&cfg, NULL, &s3, err, sizeof(err)), 0);
	assert_int_equal(kt_s3_delete(s3, "k", err, sizeof(err)), -ECONNREFUSED);
	assert_non_null(strstr(err, "(after 3 attempts)"));
	kt_s3_client_destroy(s3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigv4_query_sorted_by_name_then_value),
		cmocka_unit_test(test_sigv4_post_body_hashed_and_content_type_signed),
		cmocka_unit_test(test_sigv4_session_token_header_is_signed),
		cmocka_unit_test(test_sigv4_header_values_trimmed_and_spaces_folded),
		cmocka_unit_test(test_sigv4_unreserved_query_bytes_kept),
		cmocka_unit_test(test_sigv4_s3_ranged_get_matches_aws_example),
		cmocka_unit_test(test_sigv4_s3_put_with_payload_hash_matches_aws_example),
		cmocka_unit_test(test_sigv4_s3_valueless_query_parameter_matches_aws_example),
		cmocka_unit_test(test_sigv4_s3_list_query_matches_aws_example),
		cmocka_unit_test(test_sigv4_signature_covers_payload_hash_and_path),
		cmocka_unit_test(test_sigv4_repeated_header_names_become_one_line),
		cmocka_unit_test(test_sigv4_rejects_malformed_date_and_header),
		cmocka_unit_test(test_uri_encode_keeps_unreserved_and_optionally_slash),
		cmocka_unit_test(test_amz_date_is_utc_basic_format),
		cmocka_unit_test(test_url_parses_bucket_and_prefix),
		cmocka_unit_test(test_url_errors_name_what_is_wrong),
		cmocka_unit_test(test_client_takes_settings_from_aws_environment),
		cmocka_unit_test(test_client_refuses_missing_credentials_and_bad_endpoint),
		cmocka_unit_test(test_client_reports_unreachable_endpoint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
