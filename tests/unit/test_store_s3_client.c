/* Unit tests of the store's S3 client (src/store/s3.c) against a scripted
 * HTTP server on loopback: each test lists the answers the server gives,
 * and checks what the client sent and made of them.  This covers what a
 * real S3-compatible server does not let a test provoke: the signature as
 * it went over the wire, retries after 503 and after a lost answer,
 * CompleteMultipartUpload answering 200 with an error document, 412 on a
 * create-only PUT, a server that ignores Range, XML entities in listed keys,
 * and a listing that claims more pages without a token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kt_common.h"
#include "s3_priv.h"

#define MAX_EXCHANGES 8

struct answer {
	int status;          /* 0: close the connection without answering */
	const char *headers; /* extra header lines, each ending in \r\n */
	const char *body;
};

struct seen {
	char method[16];
	char target[4096];
	char headers[8192];  /* raw header lines after the request line */
	char body[8192];
	size_t body_len;
};

struct fake {
	int listen_fd;
	int port;
	pthread_t thread;
	struct answer answers[MAX_EXCHANGES];
	int n_answers;
	struct seen seen[MAX_EXCHANGES];
	int n_seen;
};

/* Reads one request from fd into sn; 0, or -1 when the peer closed or was
 * silent for 5 s. */
static int read_request(int fd, struct seen *sn)
{
	char buf[16384];
	size_t len = 0;
	char *end = NULL, *cl;
	size_t body_len = 0, head_len;

	memset(sn, 0, sizeof(*sn));
	while (!end) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0 || len == sizeof(buf) - 1)
			return -1;
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	head_len = (size_t)(end - buf) + 4;
	sscanf(buf, "%15s %4095s", sn->method, sn->target);
	{
		char *eol = strstr(buf, "\r\n");
		size_t hl = (size_t)(end - eol - 2);

		if (hl >= sizeof(sn->headers))
			hl = sizeof(sn->headers) - 1;
		memcpy(sn->headers, eol + 2, hl);
		sn->headers[hl] = '\0';
	}
	cl = strcasestr(sn->headers, "content-length:");
	if (cl)
		body_len = strtoul(cl + 15, NULL, 10);
	if (body_len >= sizeof(sn->body))
		return -1;
	memcpy(sn->body, buf + head_len, len - head_len);
	sn->body_len = len - head_len;
	while (sn->body_len < body_len) {
		ssize_t n = recv(fd, sn->body + sn->body_len, body_len - sn->body_len, 0);

		if (n <= 0)
			return -1;
		sn->body_len += (size_t)n;
	}
	return 0;
}

static void *serve(void *arg)
{
	struct fake *fk = arg;
	int fd = -1;

	while (fk->n_seen < fk->n_answers) {
		const struct answer *a;
		char out[16384];
		int n;

		if (fd < 0) {
			struct pollfd p = { fk->listen_fd, POLLIN, 0 };

			if (poll(&p, 1, 5000) <= 0)
				break;
			fd = accept(fk->listen_fd, NULL, NULL);
			if (fd < 0)
				break;
		}
		if (read_request(fd, &fk->seen[fk->n_seen]) != 0) {
			close(fd);
			fd = -1;
			continue;
		}
		a = &fk->answers[fk->n_seen++];
		if (a->status == 0) {
			close(fd);
			fd = -1;
			continue;
		}
		n = snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\n\r\n%s",
			     a->status, a->headers ? a->headers : "",
			     a->body ? strlen(a->body) : (size_t)0,
			     strcmp(fk->seen[fk->n_seen - 1].method, "HEAD") == 0 || !a->body
				     ? ""
				     : a->body);
		if (send(fd, out, (size_t)n, MSG_NOSIGNAL) != n) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static struct fake *fake_start(const struct answer *answers, int n)
{
	struct fake *fk = calloc(1, sizeof(*fk));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	assert_non_null(fk);
	assert_true(n <= MAX_EXCHANGES);
	memcpy(fk->answers, answers, (size_t)n * sizeof(*answers));
	fk->n_answers = n;
	fk->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fk->listen_fd >= 0);
	assert_int_equal(bind(fk->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fk->listen_fd, 4), 0);
	assert_int_equal(getsockname(fk->listen_fd, (struct sockaddr *)&sa, &sl), 0);
	fk->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&fk->thread, NULL, serve, fk), 0);
	return fk;
}

/* Waits for the server thread; returns how many requests it saw. */
static int fake_stop(struct fake *fk)
{
	pthread_join(fk->thread, NULL);
	close(fk->listen_fd);
	return fk->n_seen;
}

static struct kt_s3_client *client_for(struct fake *fk, const char *token)
{
	char endpoint[64], err[512];
	struct kt_s3_config cfg = { .endpoint = endpoint, .region = "eu-west-1", .bucket = "bkt",
				    .path_style = 1, .access_key = "AKTEST",
				    .secret_key = "secret/key+1", .session_token = token,
				    .max_attempts = 3 };
	struct kt_s3_client *s3 = NULL;

	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", fk->port);
	assert_int_equal(kt_s3_client_create(&cfg, NULL, &s3, err, sizeof(err)), 0);
	return s3;
}

/* The value of header name in a recorded request, or NULL. */
static const char *header_value(const struct seen *sn, const char *name, char *out, size_t size)
{
	const char *p = sn->headers;

	while (*p) {
		const char *eol = strstr(p, "\r\n");
		size_t n = strlen(name);

		if (!eol)
			eol = p + strlen(p);
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;

			while (*v == ' ')
				v++;
			snprintf(out, size, "%.*s", (int)(eol - v), v);
			return out;
		}
		p = *eol ? eol + 2 : eol;
	}
	return NULL;
}

/* Recomputes the signature of a recorded request from what arrived, as S3
 * would, and checks it equals the Authorization header that came with it. */
static void assert_signature_verifies(const struct seen *sn, const char *secret,
				      const char *region)
{
	char auth[1024], date[64], sha[128], signed_list[512], want[1024], err[256];
	char path[4096], values[16][1024], names[16][64];
	struct kt_s3_header h[16];
	struct kt_s3_sigv4_key key = { "AKTEST", secret, region, "s3" };
	struct kt_s3_sigv4_request req;
	const char *q, *sh;
	size_t n = 0;
	char *save = NULL, *name;

	assert_non_null(header_value(sn, "Authorization", auth, sizeof(auth)));
	assert_non_null(header_value(sn, "x-amz-date", date, sizeof(date)));
	assert_non_null(header_value(sn, "x-amz-content-sha256", sha, sizeof(sha)));
	sh = strstr(auth, "SignedHeaders=");
	assert_non_null(sh);
	snprintf(signed_list, sizeof(signed_list), "%.*s", (int)strcspn(sh + 14, ","), sh + 14);
	for (name = strtok_r(signed_list, ";", &save); name; name = strtok_r(NULL, ";", &save)) {
		assert_true(n < 16);
		snprintf(names[n], sizeof(names[n]), "%s", name);
		if (!header_value(sn, name, values[n], sizeof(values[n])))
			fail_msg("signed header %s was not sent", name);
		h[n] = (struct kt_s3_header){ names[n], values[n] };
		n++;
	}
	q = strchr(sn->target, '?');
	snprintf(path, sizeof(path), "%.*s", (int)(q ? q - sn->target : (long)strlen(sn->target)),
		 sn->target);
	req = (struct kt_s3_sigv4_request){ sn->method, path, q ? q + 1 : NULL, h, n, sha };
	assert_int_equal(kt_s3_sigv4_sign(&req, &key, date, want, sizeof(want), NULL, 0, err,
					  sizeof(err)), 0);
	assert_string_equal(auth, want);
	/* And the body that arrived is the one whose hash was signed. */
	if (strcmp(sha, KT_S3_UNSIGNED_PAYLOAD) != 0) {
		char got[65];

		kt_s3_sha256_hex(sn->body, sn->body_len, got);
		assert_string_equal(got, sha);
	}
}

static void test_client_signature_verifies_on_the_wire(void **state)
{
	static const struct answer a[] = { { 200, "ETag: \"x\"\r\n", NULL },
					   { 206, NULL, "lo wo" } };
	struct fake *fk = fake_start(a, 2);
	struct kt_s3_client *s3 = client_for(fk, "TOKEN/with+chars=");
	char err[512], buf[5], v[256];
	size_t got = 0;

	assert_int_equal(kt_s3_put(s3, "segments/a%2Fb/0/x y.kts", "hello world", 11, err,
				   sizeof(err)), 0);
	assert_int_equal(kt_s3_get_range(s3, "segments/a%2Fb/0/x y.kts", 3, 5, buf, &got, err,
					 sizeof(err)), 0);
	assert_int_equal(got, 5);
	assert_memory_equal(buf, "lo wo", 5);
	kt_s3_client_destroy(s3);
	assert_int_equal(fake_stop(fk), 2);

	assert_string_equal(fk->seen[0].method, "PUT");
	assert_string_equal(fk->seen[0].target, "/bkt/segments/a%252Fb/0/x%20y.kts");
	assert_int_equal(fk->seen[0].body_len, 11);
	assert_signature_verifies(&fk->seen[0], "secret/key+1", "eu-west-1");
	assert_string_equal(header_value(&fk->seen[0], "x-amz-security-token", v, sizeof(v)),
			    "TOKEN/with+chars=");
	assert_string_equal(fk->seen[1].method, "GET");
	assert_string_equal(header_value(&fk->seen[1], "Range", v, sizeof(v)), "bytes=3-7");
	assert_signature_verifies(&fk->seen[1], "secret/key+1", "eu-west-1");
	free(fk);
}

static void test_client_retries_503_with_the_same_body(void **state)
{
	static const struct answer a[] = {
		{ 503, NULL, "<Error><Code>SlowDown</Code><Message>Reduce</Message></Error>" },
		{ 200, "ETag: \"x\"\r\n", NULL },
	};
	struct fake *fk = fake_start(a, 2);
	struct kt_s3_client *s3 = client_for(fk, NULL);
	char err[512];

	assert_int_equal(kt_s3_put(s3, "k", "abc", 3, err, sizeof(err)), 0);
	kt_s3_client_destroy(s3);
	assert_int_equal(fake_stop(fk), 2);
	assert_int_equal(fk->seen[1].body_len, 3);
	assert_memory_equal(fk->seen[1].body, "abc", 3);
	assert_signature_verifies(&fk->seen[1], "secret/key+1", "eu-west-1");
	free(fk);
}

static void test_client_names_status_code_and_object_in_errors(void **state)
{
	static const struct answer a[] = {
		{ 403, NULL, "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>"
			     "<Message>Access Denied</Message></Error>" },
	};
	struct fake *fk = fake_start(a, 1);
	struct kt_s3_client *s3 = client_for(fk, NULL);
	char err[512], buf[4];
	size_t got;

	assert_int_equal(kt_s3_get_range(s3, "snapshots/x.json", 0, 4, buf, &got, err,
					 sizeof(err)), -EACCES);
	assert_string_equal(err, "S3 GET s3://bkt/snapshots/x.json: HTTP 403 AccessDenied: "
				 "Access Denied");
	kt_s3_client_destroy(s3);
	assert_int_equal(fake_stop(fk), 1); /* 403 is not retried */
	free(fk);
}

static void test_client_complete_answering_200_with_error_fails(void **state)
{
	static const struct answer a[] = {
		{ 200, NULL, "<InitiateMultipartUploadResult><Bucket>bkt</Bucket><Key>k</Key>"
			     "<UploadId>u+1/=</UploadId></InitiateMultipartUploadResult>" },
		{ 200, "ETag: \"e1\"\r\n", NULL },
		{ 200, NULL, "<Error><Code>InvalidPart</Code><Message>One or more of the "
			     "specified parts could not be found.</Message></Error>" },
	};
	struct fake *fk = fake_start(a, 3);
	struct kt_s3_client *s3 = client_for(fk, NULL);
	struct kt_s3_upload *up = NULL;
	char err[512];

	assert_int_equal(kt_s3_upload_create(s3, "segments/k.kts", &up, err, sizeof(err)), 0);
	assert_string_equal(kt_s3_upload_id(up), "u+1/=");
	assert_int_equal(kt_s3_upload_part(up, "part-one", 8, err, sizeof(err)), 0);
	assert_int_equal(kt_s3_upload_parts(up), 1);
	assert_int_equal(kt_s3_upload_complete(up, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "InvalidPart"));
	assert_non_null(strstr(err, "s3://bkt/segments/k.kts"));
	kt_s3_upload_destroy(up);
	kt_s3_client_destroy(s3);
	assert_int_equal(fake_stop(fk), 3);

	assert_string_equal(fk->seen[0].target, "/bkt/segments/k.kts?uploads=");
	assert_string_equal(fk->seen[1].target,
			    "/bkt/segments/k.kts?partNumber=1&uploadId=u%2B1%2F%3D");
	assert_string_equal(fk->seen[2].target, "/bkt/segments/k.kts?uploadId=u%2B1%2F%3D");
	assert_non_null(strstr(fk->seen[2].body, "<Part><PartNumber>1</PartNumber>"
						 "<ETag>\"e1\"</ETag></Part>"));
	for (int i = 0; i < 3; i++)
		assert_signature_verifies(&fk->seen[i], "secret/key+1", "eu-west-1");
	free(fk);
}

static void test_client_put_if_absent_refuses_existing_key(void **state)
{
	static const struct answer a[] = {
		{ 412, NULL, "<Error><Code>PreconditionFailed</Code><Message>At least one of "
			     "the pre-conditions you specified did not hold</Message></Error>" },
	};
	struct fake *fk = fake_start(a, 1);
	struct kt_s3_client *s3 = client_for(fk, NULL);
	char err[512], v[64], auth[1024];

	assert_int_equal(kt_s3_put_if_absent(s3, "snapshots/1.json", "{}", 2, err, sizeof(err)),
			 KT_EEXIST);
	assert_non_null(strstr(err, "PreconditionFailed"));
	kt_s3_client_destroy(s3);
	assert_int_equal(fake_stop(fk), 1);
	assert_string_equal(header_value(&fk->seen[0], "If-None-Match", v, sizeof(v)), "*");
	header_value(&fk->seen[0], "Authorization", auth, sizeof(auth));
	assert_non_null(strstr(auth, ";if-none-match;"));
	assert_signature_verifies(&fk->seen[0], "secret/key+1", "eu-west-1");
	free(fk);
}

/* The first answer is lost (connection closed); the retry finds the key
 * present (412), and the client accepts it because it holds our bytes. */
static void test_client_put_if_absent_after_lost_answer_accepts_own_write(void **state)
{
	static const struct answer a[] = {
		{ 0, NULL, NULL },
		{ 412, NULL, "<Error><Code>PreconditionFailed</Code></Error>" },
		{ 200, NULL, "{\"id\":1}" },
	};
	struct fake *fk = fake_start(a, 3);
	struct kt_s3_client *s3 = client_for(fk, NULL);
	char err[512];

	assert_int_equal(kt_s3_put_if_absent(s3, "snapshots/1.json", "{\"id\":1}", 8, err,
					     sizeof(err)), 0);
	kt_s3_client_destroy(s3);
	assert_int_equal(fake_stop(fk), 3);
	assert_string_equal(fk->seen[2].method, "GET");
	free(fk);
}

static void test_client_refuses_range_ignored_and_oversized_objects(void **state)
{
	static const struct answer a[] = {
		{ 200, NULL, "abcde" },
		{ 200, NULL, "0123456789abcdef" },
	};
	struct fake *fk = fake_start(a, 2);
	struct kt_s3_client *s3 = client_for(fk, NULL);
	char err[512], buf[8];
	size_t got = 0;
	void *data = NULL;

	assert_int_equal(kt_s3_get_range(s3, "k", 10, sizeof(buf), buf, &got, err, sizeof(err)),
			 -EIO);
	assert_non_null(strstr(err, "with the whole object"));
	assert_int_equal(got, 0);
	assert_int_equal(kt_s3_get(s3, "k", 10, &data, &got, err, sizeof(err)), -EFBIG);
	assert_null(data);
	assert_non_null(strstr(err, "larger than the 10 bytes allowed"));
	kt_s3_client_destroy(s3);
	assert_int_equal(fake_stop(fk), 2);
	free(fk);
}

struct listed {
	char keys[8][64];
	uint64_t sizes[8];
	int n;
};

static int collect(void *opaque, const char *key, uint64_t size)
{
	struct listed *l = opaque;

	assert_true(l->n < 8);
	snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
	l->sizes[l->n++] = size;
	return 0;
}

static void test_client_list_follows_tokens_and_decodes_entities(void **state)
{
	static const struct answer a[] = {
		{ 200, NULL, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
			     "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
			     "<Name>bkt</Name><IsTruncated>true</IsTruncated>"
			     "<Contents><Key>p/a&amp;b</Key><Size>12</Size></Contents>"
			     "<Contents><Key>p/c&#x20;d</Key><Size>0</Size></Contents>"
			     "<NextContinuationToken>t/1+=</NextContinuationToken>"
			     "</ListBucketResult>" },
		{ 200, NULL, "<ListBucketResult><IsTruncated>false</IsTruncated>"
			     "<Contents><Key>p/e</Key><Size>18446744073709551615</Size></Contents>"
			     "</ListBucketResult>" },
	};
	struct fake *fk = fake_start(a, 2);
	struct kt_s3_client *s3 = client_for(fk, NULL);
	struct listed l = { 0 };
	char err[512];

	assert_int_equal(kt_s3_list(s3, "p/", collect, &l, err, sizeof(err)), 0);
	kt_s3_client_destroy(s3);
	assert_int_equal(fake_stop(fk), 2);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.keys[0], "p/a&b");
	assert_int_equal(l.sizes[0], 12);
	assert_string_equal(l.keys[1], "p/c d");
	assert_string_equal(l.keys[2], "p/e");
	assert_true(l.sizes[2] == UINT64_MAX);
	assert_string_equal(fk->seen[0].target, "/bkt?list-type=2&max-keys=1000&prefix=p%2F");
	assert_string_equal(fk->seen[1].target, "/bkt?continuation-token=t%2F1%2B%3D&list-type=2"
						"&max-keys=1000&prefix=p%2F");
	assert_signature_verifies(&fk->seen[1], "secret/key+1", "eu-west-1");
	free(fk);
}

static void test_client_list_refuses_truncation_without_token_and_bad_xml(void **state)
{
	static const struct answer a[] = {
		{ 200, NULL, "<ListBucketResult><IsTruncated>true</IsTruncated>"
			     "<Contents><Key>k</Key><Size>1</Size></Contents></ListBucketResult>" },
		{ 200, NULL, "<ListBucketResult><Contents><Key>k</Key>" },
	};
	struct fake *fk = fake_start(a, 2);
	struct kt_s3_client *s3 = client_for(fk, NULL);
	struct listed l = { 0 };
	char err[512];

	assert_int_equal(kt_s3_list(s3, "", collect, &l, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "gives no new continuation token"));
	assert_int_equal(kt_s3_list(s3, "", collect, &l, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "not a ListBucketResult document"));
	kt_s3_client_destroy(s3);
	assert_int_equal(fake_stop(fk), 2);
	free(fk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_signature_verifies_on_the_wire),
		cmocka_unit_test(test_client_retries_503_with_the_same_body),
		cmocka_unit_test(test_client_names_status_code_and_object_in_errors),
		cmocka_unit_test(test_client_complete_answering_200_with_error_fails),
		cmocka_unit_test(test_client_put_if_absent_refuses_existing_key),
		cmocka_unit_test(test_client_put_if_absent_after_lost_answer_accepts_own_write),
		cmocka_unit_test(test_client_refuses_range_ignored_and_oversized_objects),
		cmocka_unit_test(test_client_list_follows_tokens_and_decodes_entities),
		cmocka_unit_test(test_client_list_refuses_truncation_without_token_and_bad_xml),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
