/*
 * files.c - small repository files beside the snapshots (capture plans,
 * progress records), behind one interface so that their callers never
 * build a path and open it themselves.  A repository read in place from an
 * archive holds none of them and refuses writes.
 */
#include "kt_store.h"
#include "repo_priv.h"
#include "s3_repo_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* kt_write_file_atomic() and kt_write_file_new() name their temp files
 * "<name>.tmp-<12 hex>": such names are never listed. */
static int is_temp_name(const char *name)
{
	const char *t = strstr(name, ".tmp-");

	return t && strlen(t) == 5 + 12;
}

/* The absolute path of rel, refusing names that could leave the
 * repository (kt_store_repo_abs_path() does the checking). */
static int resolve(const struct kt_store_repo *repo, const char *rel, char *abs, size_t abs_size,
		   char *errstr, size_t errstr_size)
{
	int err = kt_store_repo_abs_path(repo, rel, abs, abs_size);

	if (err == -ENAMETOOLONG)
		return kt_seterr(errstr, errstr_size, err, "%s/%s: path too long", kt_store_repo_path(repo), rel);
	if (err)
		return kt_seterr(errstr, errstr_size, err, "'%s' is not a path inside repository %s",
				 rel, kt_store_repo_path(repo));
	return 0;
}

/* resolve() for a change (what: "write", "remove"): a repository read in
 * place from an archive is read-only. */
static int resolve_writable(const struct kt_store_repo *repo, const char *rel, const char *what,
			    char *abs, size_t abs_size, char *errstr, size_t errstr_size)
{
	int err = resolve(repo, rel, abs, abs_size, errstr, errstr_size);

	if (!err && kt_store_repo_tar(repo))
		err = kt_seterr(errstr, errstr_size, -EROFS,
				"%s: cannot %s %s: a repository read in place from an archive is read-only",
				kt_store_repo_path(repo), what, rel);
	return err;
}

int kt_store_read_whole_file(const char *path, size_t max, char **out, size_t *out_len,
			     char *errstr, size_t errstr_size)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, err = 0;

	*out = NULL;
	*out_len = 0;
	if (kt_s3_url_is_s3(path)) {
		err = kt_s3_url_read(path, max, out, out_len, errstr, errstr_size);
		if (err == -EFBIG)
			err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					"%s: more than the %zu bytes a valid file can hold", path, max);
		return err;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kt_seterr(errstr, errstr_size, errno == ENOENT ? KT_ENOTFOUND : -errno,
				 "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		err = kt_seterr(errstr, errstr_size, -errno, "%s: cannot stat: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"%s: %lld bytes is more than the %zu a valid file can hold",
				path, (long long)st.st_size, max);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = kt_seterr(errstr, errstr_size, -errno, "%s: read failed at byte %zu: %s",
					path, len, strerror(errno));
			goto out;
		}
		if (r == 0)
			break; /* Shrank while reading: the caller parses what is there. */
		len += (size_t)r;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

int kt_store_repo_read_file(struct kt_store_repo *repo, const char *rel, size_t max,
			    char **out, size_t *out_len, char *errstr, size_t errstr_size)
{
	char abs[PATH_MAX];
	int err;

	*out = NULL;
	*out_len = 0;
	err = resolve(repo, rel, abs, sizeof(abs), errstr, errstr_size);
	if (err)
		return err;
	if (kt_store_repo_tar(repo))
		return kt_seterr(errstr, errstr_size, KT_ENOTFOUND, "%s: the archive holds no %s",
				 kt_store_repo_path(repo), rel);
	return kt_store_read_whole_file(abs, max, out, out_len, errstr, errstr_size);
}

/* Creates the directories above abs (inside the repository) with the
 * repository's directory mode. */
static int make_parents(const struct kt_store_repo *repo, const char *abs, char *errstr, size_t errstr_size)
{
	char dir[PATH_MAX];
	unsigned mode = kt_store_repo_mode(repo) ? kt_store_repo_mode(repo) : 0600;
	char *slash;
	int err;

	snprintf(dir, sizeof(dir), "%s", abs);
	slash = strrchr(dir, '/');
	if (!slash)
		return 0;
	*slash = '\0';
	err = kt_mkdir_p(dir, mode | ((mode & 0444) >> 2));
	if (err)
		return kt_seterr(errstr, errstr_size, err, "%s: cannot create directory: %s", dir, kt_strerror(err));
	return 0;
}

int kt_store_repo_write_file(struct kt_store_repo *repo, const char *rel,
			     const void *buf, size_t len, unsigned flags,
			     char *errstr, size_t errstr_size)
{
	char abs[PATH_MAX];
	unsigned mode = kt_store_repo_mode(repo) ? kt_store_repo_mode(repo) : 0600;
	int err;

	err = resolve_writable(repo, rel, "write", abs, sizeof(abs), errstr, errstr_size);
	if (err)
		return err;
	/* An object appears whole or not at all: no temp name, no parents. */
	if (kt_s3_url_is_s3(abs))
		return kt_s3_url_write(abs, buf, len, (flags & KT_STORE_PUT_IF_ABSENT) != 0, errstr, errstr_size);
	err = make_parents(repo, abs, errstr, errstr_size);
	if (err)
		return err;
	if (flags & KT_STORE_PUT_IF_ABSENT)
		return kt_write_file_new(abs, buf, len, mode, errstr, errstr_size);
	return kt_write_file_atomic(abs, buf, len, mode, errstr, errstr_size);
}

static int cmp_asc(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The objects directly "inside" the directory URL dir: keys under dir/
 * with no further '/'.  S3 lists keys in byte order, which is strcmp's. */
static int list_objects(const char *dir, int with_temps, char ***names, size_t *count,
			char *errstr, size_t errstr_size)
{
	char prefix[PATH_MAX];
	struct kt_s3_listed *objs = NULL;
	size_t n_objs = 0, n = 0;
	char **v = NULL;
	int err;

	if (snprintf(prefix, sizeof(prefix), "%s/", dir) >= (int)sizeof(prefix))
		return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "%s: URL too long", dir);
	err = kt_s3_url_list(prefix, &objs, &n_objs, errstr, errstr_size);
	if (err)
		return err;
	v = calloc(n_objs ? n_objs : 1, sizeof(*v));
	if (!v) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "%s: out of memory listing objects", dir);
		goto out;
	}
	for (size_t i = 0; i < n_objs; i++) {
		if (strchr(objs[i].rel, '/') || objs[i].rel[0] == '.' || (!with_temps && is_temp_name(objs[i].rel)))
			continue;
		v[n++] = objs[i].rel;
		objs[i].rel = NULL;
	}
	/* As for a directory: no names, no array. */
	if (n == 0) {
		free(v);
		v = NULL;
	}
	*names = v;
	*count = n;
out:
	kt_s3_listed_free(objs, n_objs);
	return err;
}

/* The regular files directly inside rel, sorted; temp files too when
 * with_temps (for removing a whole directory). */
static int list_dir(struct kt_store_repo *repo, const char *rel, int with_temps,
		    char ***names, size_t *count, char *errstr, size_t errstr_size)
{
	char abs[PATH_MAX];
	char **v = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *dir;
	int err;

	*names = NULL;
	*count = 0;
	err = resolve(repo, rel, abs, sizeof(abs), errstr, errstr_size);
	if (err)
		return err;
	if (kt_store_repo_tar(repo))
		return 0;
	if (kt_s3_url_is_s3(abs))
		return list_objects(abs, with_temps, names, count, errstr, errstr_size);
	dir = opendir(abs);
	if (!dir) {
		if (errno == ENOENT)
			return 0;
		return kt_seterr(errstr, errstr_size, -errno, "%s: cannot read: %s", abs, strerror(errno));
	}
	while ((de = readdir(dir)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.' || (!with_temps && is_temp_name(de->d_name)))
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		char **nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv || !(nv[n] = strdup(de->d_name))) {
			if (nv)
				v = nv;
			err = kt_seterr(errstr, errstr_size, -ENOMEM, "%s: out of memory listing files", abs);
			goto out;
		}
		v = nv;
		n++;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_asc);
	*names = v;
	*count = n;
	v = NULL;
	n = 0;
out:
	closedir(dir);
	kt_store_strv_free(v, n);
	return err;
}

int kt_store_repo_list_files(struct kt_store_repo *repo, const char *rel,
			     char ***names, size_t *count, char *errstr, size_t errstr_size)
{
	return list_dir(repo, rel, 0, names, count, errstr, errstr_size);
}

int kt_store_repo_remove_file(struct kt_store_repo *repo, const char *rel,
			      char *errstr, size_t errstr_size)
{
	char abs[PATH_MAX];
	int err;

	err = resolve_writable(repo, rel, "remove", abs, sizeof(abs), errstr, errstr_size);
	if (err)
		return err;
	if (kt_s3_url_is_s3(abs))
		return kt_s3_url_remove(abs, errstr, errstr_size);
	if (unlink(abs) < 0) {
		if (errno == ENOENT)
			return 0;
		return kt_seterr(errstr, errstr_size, -errno, "%s: cannot remove: %s", abs, strerror(errno));
	}
	err = kt_fsync_parent_dir(abs);
	if (err)
		return kt_seterr(errstr, errstr_size, err, "%s: fsync of the directory failed: %s",
				 abs, kt_strerror(err));
	return 0;
}

int kt_store_repo_remove_dir(struct kt_store_repo *repo, const char *rel,
			     char *errstr, size_t errstr_size)
{
	char abs[PATH_MAX], file[PATH_MAX], **names = NULL;
	size_t count = 0;
	int err;

	err = resolve_writable(repo, rel, "remove", abs, sizeof(abs), errstr, errstr_size);
	if (err)
		return err;
	/* Temp files are listed too: a writer killed between creating its
	 * temp file and linking it leaves one, and nobody else ever will
	 * remove it once the directory's owner is done with it. */
	err = list_dir(repo, rel, 1, &names, &count, errstr, errstr_size);
	for (size_t i = 0; i < count && !err; i++) {
		if (snprintf(file, sizeof(file), "%s/%s", rel, names[i]) >= (int)sizeof(file))
			err = kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "%s/%s/%s: path too long",
					kt_store_repo_path(repo), rel, names[i]);
		else
			err = kt_store_repo_remove_file(repo, file, errstr, errstr_size);
	}
	kt_store_strv_free(names, count);
	if (err || kt_s3_url_is_s3(abs))
		return err;
	/* Another process removing the same directory at the same moment is
	 * not an error; anything it did not expect (a subdirectory, a file
	 * created since the listing) keeps the directory and is reported. */
	if (rmdir(abs) < 0 && errno != ENOENT)
		return kt_seterr(errstr, errstr_size, -errno, "%s: cannot remove: %s", abs, strerror(errno));
	err = kt_fsync_parent_dir(abs);
	if (err && err != -ENOENT)
		return kt_seterr(errstr, errstr_size, err, "%s: fsync of the directory failed: %s",
				 abs, kt_strerror(err));
	return 0;
}
