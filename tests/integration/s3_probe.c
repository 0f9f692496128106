/*
 * s3_probe - drives the store's S3 client (src/store/s3_priv.h) from
 * tests/integration/test_s3_client.sh, one call per run, so that the test
 * can check each against a real S3-compatible server.
 *
 *   s3_probe [--path-style] [--page N] s3://BUCKET[/PREFIX] COMMAND ARGS...
 *     put KEY FILE              PUT the file as one object
 *     get KEY FILE              GET the whole object into FILE
 *     range KEY OFFSET LEN FILE ranged GET into FILE
 *     head KEY                  prints the size
 *     list [SUBPREFIX]          prints "KEY SIZE" per object, in order
 *     delete KEY
 *     multipart KEY FILE PART_SIZE [PAUSE_MS]
 *         uploads FILE in parts and completes; prints "part N" after each
 *         part and then sleeps PAUSE_MS (so a test can kill it mid-way)
 *     abort KEY FILE PART_SIZE  uploads every part, then aborts
 *
 * Keys are relative to PREFIX.  Endpoint, region and credentials come from
 * the AWS environment variables.  Exit status: 0 ok, 2 usage, 3 not found,
 * 4 unsupported by the server, 5 range outside the object, 1 other errors
 * (the message on stderr).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kt_common.h"
#include "s3_priv.h"

static char g_prefix[KT_S3_PREFIX_MAX + 1];

static int exit_code(int err)
{
	switch (err) {
	case 0: return 0;
	case KT_EUSAGE: return 2;
	case KT_ENOTFOUND: return 3;
	case KT_EUNSUPPORTED: return 4;
	case KT_ERANGE: return 5;
	default: return 1;
	}
}

static const char *full_key(const char *key, char *buf, size_t size)
{
	if (g_prefix[0])
		snprintf(buf, size, "%s/%s", g_prefix, key);
	else
		snprintf(buf, size, "%s", key);
	return buf;
}

static int read_file(const char *path, unsigned char **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long size;

	if (!f)
		return -errno;
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0) {
		fclose(f);
		return -EIO;
	}
	rewind(f);
	*data = malloc((size_t)size + 1);
	if (!*data) {
		fclose(f);
		return -ENOMEM;
	}
	*len = fread(*data, 1, (size_t)size, f);
	fclose(f);
	return *len == (size_t)size ? 0 : -EIO;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -errno;
	ok = fwrite(data, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -EIO;
}

static int print_entry(void *opaque, const char *key, uint64_t size)
{
	size_t plen = strlen(g_prefix);

	/* Print keys relative to the repository prefix, as they were put. */
	if (plen && strncmp(key, g_prefix, plen) == 0 && key[plen] == '/')
		key += plen + 1;
	printf("%s %" PRIu64 "\n", key, size);
	return 0;
}

static int upload(struct kt_s3_client *s3, const char *key, const char *file, size_t part_size,
		  unsigned pause_ms, int abort_at_end, char *err, size_t err_size)
{
	struct kt_s3_upload *up = NULL;
	unsigned char *data = NULL;
	size_t len = 0;
	int rc;

	rc = read_file(file, &data, &len);
	if (rc) {
		snprintf(err, err_size, "cannot read %s: %s", file, kt_strerror(rc));
		goto out;
	}
	rc = kt_s3_upload_create(s3, key, &up, err, err_size);
	if (rc)
		goto out;
	for (size_t off = 0; off < len; off += part_size) {
		size_t n = len - off < part_size ? len - off : part_size;

		rc = kt_s3_upload_part(up, data + off, n, err, err_size);
		if (rc)
			goto out;
		printf("part %u\n", kt_s3_upload_parts(up));
		fflush(stdout);
		if (pause_ms) {
			struct timespec ts = { pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	if (abort_at_end) {
		rc = kt_s3_upload_abort(up, err, err_size);
		if (!rc)
			printf("aborted after %u parts\n", kt_s3_upload_parts(up));
	} else {
		rc = kt_s3_upload_complete(up, err, err_size);
		if (!rc)
			printf("completed %u parts\n", kt_s3_upload_parts(up));
	}
out:
	kt_s3_upload_destroy(up);
	free(data);
	return rc;
}

static int run(struct kt_s3_client *s3, int argc, char **argv, char *err, size_t err_size)
{
	const char *cmd = argv[0];
	char key[2048];
	int rc;

	if (argc < 2 && strcmp(cmd, "list") != 0)
		return kt_seterr(err, err_size, KT_EUSAGE, "%s: missing arguments", cmd);
	if (argc >= 2)
		full_key(argv[1], key, sizeof(key));
	if (strcmp(cmd, "put") == 0 && argc == 3) {
		unsigned char *data = NULL;
		size_t len = 0;

		rc = read_file(argv[2], &data, &len);
		if (rc) {
			free(data);
			return kt_seterr(err, err_size, rc, "cannot read %s", argv[2]);
		}
		rc = kt_s3_put(s3, key, data, len, err, err_size);
		free(data);
		return rc;
	}
	if (strcmp(cmd, "get") == 0 && argc == 3) {
		void *data = NULL;
		size_t len = 0;

		rc = kt_s3_get(s3, key, 64u << 20, &data, &len, err, err_size);
		if (!rc)
			rc = write_file(argv[2], data, len);
		free(data);
		return rc;
	}
	if (strcmp(cmd, "range") == 0 && argc == 5) {
		uint64_t off = strtoull(argv[2], NULL, 10);
		size_t len = (size_t)strtoull(argv[3], NULL, 10), got = 0;
		void *buf = malloc(len ? len : 1);

		if (!buf)
			return -ENOMEM;
		rc = kt_s3_get_range(s3, key, off, len, buf, &got, err, err_size);
		if (!rc)
			rc = write_file(argv[4], buf, got);
		free(buf);
		return rc;
	}
	if (strcmp(cmd, "head") == 0 && argc == 2) {
		uint64_t size = 0;

		rc = kt_s3_head(s3, key, &size, err, err_size);
		if (!rc)
			printf("%" PRIu64 "\n", size);
		return rc;
	}
	if (strcmp(cmd, "list") == 0 && argc <= 2) {
		char prefix[2048];

		if (argc == 2)
			snprintf(prefix, sizeof(prefix), "%s", key);
		else if (g_prefix[0])
			snprintf(prefix, sizeof(prefix), "%s/", g_prefix);
		else
			prefix[0] = '\0';
		return kt_s3_list(s3, prefix, print_entry, NULL, err, err_size);
	}
	if (strcmp(cmd, "delete") == 0 && argc == 2)
		return kt_s3_delete(s3, key, err, err_size);
	if ((strcmp(cmd, "multipart") == 0 && (argc == 4 || argc == 5)) ||
	    (strcmp(cmd, "abort") == 0 && argc == 4)) {
		size_t part = (size_t)strtoull(argv[3], NULL, 10);
		unsigned pause = argc == 5 ? (unsigned)strtoul(argv[4], NULL, 10) : 0;

		if (part == 0)
			return kt_seterr(err, err_size, KT_EUSAGE, "part size must be positive");
		return upload(s3, key, argv[2], part, pause, cmd[0] == 'a', err, err_size);
	}
	return kt_seterr(err, err_size, KT_EUSAGE, "unknown command or wrong arguments: %s", cmd);
}

int main(int argc, char **argv)
{
	struct kt_s3_config cfg = { 0 };
	struct kt_s3_location loc;
	struct kt_s3_client *s3 = NULL;
	char err[2048] = "";
	int i = 1, rc;

	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--path-style") == 0)
			cfg.path_style = 1;
		else if (strcmp(argv[i], "--page") == 0 && i + 1 < argc)
			cfg.list_page_keys = (unsigned)strtoul(argv[++i], NULL, 10);
		else
			break;
	}
	if (argc - i < 2) {
		fprintf(stderr, "usage: s3_probe [--path-style] [--page N] s3://BUCKET[/PREFIX] "
				"COMMAND ARGS...\n");
		return 2;
	}
	rc = kt_s3_url_parse(argv[i], &loc, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "s3_probe: %s\n", err);
		return exit_code(rc);
	}
	snprintf(g_prefix, sizeof(g_prefix), "%s", loc.prefix);
	cfg.bucket = loc.bucket;
	cfg.max_attempts = 2;
	rc = kt_s3_client_create(&cfg, NULL, &s3, err, sizeof(err));
	if (!rc)
		rc = run(s3, argc - i - 1, argv + i + 1, err, sizeof(err));
	if (rc)
		fprintf(stderr, "s3_probe: %s\n", err[0] ? err : kt_strerror(rc));
	kt_s3_client_destroy(s3);
	return exit_code(rc);
}
