/* Randomness, secret detection and durable file helpers. */
#include "kt_common.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int kt_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int kt_write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int kt_config_is_secret(const char *name)
{
	/* Property names of librdkafka (and Java clients) whose values are
	 * credentials or key material. Matching is deliberately broad: a false
	 * positive only hides a value, a false negative leaks a secret. */
	static const char *const patterns[] = {
		"*password*", "*secret*", "sasl.username", "sasl.jaas.config",
		"sasl.oauthbearer.config", "*.pem", "ssl.key.*", "*token*",
		"*credentials*", "ssl.keystore.*", "*private*",
	};

	if (!name)
		return 0;
	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++)
		if (fnmatch(patterns[i], name, FNM_CASEFOLD) == 0)
			return 1;
	return 0;
}

int kt_fsync_parent_dir(const char *path)
{
	char copy[PATH_MAX];
	int fd, err = 0;

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
		return -ENAMETOOLONG;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		err = -errno;
	close(fd);
	return err;
}

int kt_mkdir_p(const char *path, unsigned mode)
{
	char buf[PATH_MAX];
	size_t len;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	len = strlen(buf);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char saved = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = saved;
	}
	return 0;
}

/* The one sequence behind kt_write_file_atomic() and kt_write_file_new():
 * a temp file beside path, written and fsynced, then renamed over path
 * (replace) or hard-linked to it (link(2) fails with EEXIST when path
 * exists, atomically, which rename(2) cannot do), then the directory
 * fsynced.  The temp name is "<path>.tmp-<12 hex>", which listings skip. */
static int write_file_durably(const char *path, const void *data, size_t len, unsigned mode, int replace,
			      char *errstr, size_t errstr_size)
{
	char tmp[PATH_MAX];
	unsigned char rnd[6];
	int fd = -1, err, placed = 0;

	err = kt_random_bytes(rnd, sizeof(rnd));
	if (err)
		return kt_seterr(errstr, errstr_size, err, "%s: no randomness for a temp name: %s", path, kt_strerror(err));
	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%02x%02x%02x%02x%02x%02x", path,
		     rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]) >= (int)sizeof(tmp))
		return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "%s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return kt_seterr(errstr, errstr_size, -errno, "%s: cannot create: %s", tmp, strerror(errno));
	err = kt_write_all(fd, data, len);
	if (err) {
		err = kt_seterr(errstr, errstr_size, err, "%s: write failed: %s", tmp, kt_strerror(err));
		goto out;
	}
	if (fsync(fd) < 0) {
		err = kt_seterr(errstr, errstr_size, -errno, "%s: fsync failed: %s", tmp, strerror(errno));
		goto out;
	}
	err = close(fd) < 0 ? -errno : 0;
	fd = -1;
	if (err) {
		kt_seterr(errstr, errstr_size, err, "%s: close failed: %s", tmp, kt_strerror(err));
		goto out;
	}
	if (replace ? rename(tmp, path) < 0 : link(tmp, path) < 0) {
		err = !replace && errno == EEXIST ?
			      kt_seterr(errstr, errstr_size, KT_EEXIST, "%s: already exists", path) :
			      kt_seterr(errstr, errstr_size, -errno, "%s: %s into place failed: %s", path,
					replace ? "rename" : "link", strerror(errno));
		goto out;
	}
	placed = replace; /* a link leaves the temp name to remove */
	err = kt_fsync_parent_dir(path);
	if (err)
		kt_seterr(errstr, errstr_size, err, "%s: fsync of the directory failed: %s", path, kt_strerror(err));
out:
	if (fd >= 0)
		close(fd);
	if (!placed)
		unlink(tmp);
	return err;
}

int kt_write_file_atomic(const char *path, const void *data, size_t len,
			 unsigned mode, char *errstr, size_t errstr_size)
{
	return write_file_durably(path, data, len, mode, 1, errstr, errstr_size);
}

int kt_write_file_new(const char *path, const void *data, size_t len,
		      unsigned mode, char *errstr, size_t errstr_size)
{
	return write_file_durably(path, data, len, mode, 0, errstr, errstr_size);
}
