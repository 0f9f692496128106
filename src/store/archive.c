/*
 * archive.c - snapshot export and import as tar archives (format/archive.md),
 * through libarchive rather than a tar writer of our own.
 */
#include "kt_store.h"
#include "repo_priv.h"
#include "dl_priv.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARCHIVE_MARKER "ktape-archive.json"
#define ARCHIVE_VERSION 1
#define COPY_CHUNK (1u << 20)

/* libarchive is loaded the first time an archive is read or written
 * (dl_priv.h says why); every call goes through LA(), which names the
 * loaded function. */
#define KT_ARCHIVE_SONAME "libarchive.so.13"
#define KT_ARCHIVE_FUNCS(X) \
	X(archive_entry_filetype) \
	X(archive_entry_free) \
	X(archive_entry_hardlink) \
	X(archive_entry_new) \
	X(archive_entry_pathname) \
	X(archive_entry_set_filetype) \
	X(archive_entry_set_mtime) \
	X(archive_entry_set_pathname) \
	X(archive_entry_set_perm) \
	X(archive_entry_set_size) \
	X(archive_entry_size) \
	X(archive_entry_sparse_count) \
	X(archive_entry_symlink) \
	X(archive_errno) \
	X(archive_error_string) \
	X(archive_filter_bytes) \
	X(archive_filter_count) \
	X(archive_filter_name) \
	X(archive_read_data) \
	X(archive_read_data_skip) \
	X(archive_read_free) \
	X(archive_read_new) \
	X(archive_read_next_header) \
	X(archive_read_open_fd) \
	X(archive_read_support_filter_all) \
	X(archive_read_support_format_tar) \
	X(archive_write_add_filter_gzip) \
	X(archive_write_add_filter_none) \
	X(archive_write_add_filter_zstd) \
	X(archive_write_close) \
	X(archive_write_data) \
	X(archive_write_free) \
	X(archive_write_header) \
	X(archive_write_new) \
	X(archive_write_open_fd) \
	X(archive_write_set_format_pax_restricted) \
	X(archive_version_string)

#define LA(name) (kt_la_##name)
#define X(name) static __typeof__(name) *kt_la_##name;
KT_ARCHIVE_FUNCS(X)
#undef X

static pthread_once_t la_once = PTHREAD_ONCE_INIT;
static int la_loaded;
static char la_error[512];

static void la_load_once(void)
{
#define X(name) #name,
	static const char *const names[] = { KT_ARCHIVE_FUNCS(X) };
#undef X
#define X(name) &kt_la_##name,
	void *const slots[] = { KT_ARCHIVE_FUNCS(X) };
#undef X

	la_loaded = kt_store_dl_load(KT_ARCHIVE_SONAME, names, slots, sizeof(names) / sizeof(names[0]), la_error,
				     sizeof(la_error)) == 0;
}

/* 0 once libarchive is loaded, else an error naming the package. */
static int la_load(char *errstr, size_t errstr_size)
{
	pthread_once(&la_once, la_load_once);
	if (la_loaded)
		return 0;
	return kt_seterr(errstr, errstr_size, -ENOSYS,
			 "tar archives need libarchive (%s, Debian package libarchive13), which could not be "
			 "loaded: %s", KT_ARCHIVE_SONAME, la_error);
}

const char *kt_store_archive_version(void)
{
	pthread_once(&la_once, la_load_once);
	return la_loaded ? kt_la_archive_version_string() : "libarchive not loadable";
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the repository id from its marker; "" when it has none. */
static void read_repo_id(struct kt_store_repo *repo, char *out, size_t out_size)
{
	char path[PATH_MAX];
	json_t *root;

	out[0] = '\0';
	if (kt_store_repo_abs_path(repo, "ktape-repository.json", path, sizeof(path)))
		return;
	root = json_load_file(path, 0, NULL);
	if (root && json_is_string(json_object_get(root, "id")))
		snprintf(out, out_size, "%s", json_string_value(json_object_get(root, "id")));
	json_decref(root);
}

/* Sorted, de-duplicated list of the segment and index paths a snapshot
 * needs. */
static int snapshot_files(const struct kt_store_snapshot *snap, char ***out, size_t *out_count)
{
	char **v = NULL;
	size_t n = 0, cap = 0;

	for (size_t t = 0; t < snap->topic_count; t++)
		for (size_t p = 0; p < snap->topics[t].n_partitions; p++) {
			const struct kt_store_partition *part = &snap->topics[t].partitions[p];
			for (size_t s = 0; s < part->segment_count; s++) {
				char idx[PATH_MAX];

				if (n + 2 > cap) {
					cap = cap ? cap * 2 : 64;
					char **nv = realloc(v, cap * sizeof(*nv));
					if (!nv)
						goto oom;
					v = nv;
				}
				if (kt_store_index_path(part->segments[s].path, idx, sizeof(idx)) != 0)
					goto oom;
				v[n] = strdup(part->segments[s].path);
				if (!v[n])
					goto oom;
				n++;
				v[n] = strdup(idx);
				if (!v[n])
					goto oom;
				n++;
			}
		}
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_str);
	size_t w = 0;
	for (size_t r = 0; r < n; r++) {
		if (w > 0 && strcmp(v[w - 1], v[r]) == 0) {
			free(v[r]);
			continue;
		}
		v[w++] = v[r];
	}
	*out = v;
	*out_count = w;
	return 0;
oom:
	kt_store_strv_free(v, n);
	return -ENOMEM;
}

/* libarchive says only "Write error" for a full disk; its errno says why
 * (ENOSPC), and the caller adds where the archive was going. */
static int archive_failed(struct archive *ar, const char *what, const char *name,
			  char *errstr, size_t errstr_size)
{
	int e = LA(archive_errno)(ar);

	return kt_seterr(errstr, errstr_size, e > 0 ? -e : -EIO, "archive: cannot %s %s: %s%s%s",
			 what, name, LA(archive_error_string)(ar), e > 0 ? ": " : "", e > 0 ? strerror(e) : "");
}

/* Adds one in-memory or on-disk file as a regular-file entry. */
static int add_entry(struct archive *ar, const char *name, const char *src_path,
		     const void *data, size_t len, char *buf, char *errstr, size_t errstr_size)
{
	struct archive_entry *entry = LA(archive_entry_new)();
	int fd = -1, err = 0;
	struct stat st;

	if (!entry)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	if (src_path) {
		fd = open(src_path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			err = kt_seterr(errstr, errstr_size, -errno, "%s: cannot read: %s", src_path, strerror(errno));
			goto out;
		}
		len = (size_t)st.st_size;
	}
	LA(archive_entry_set_pathname)(entry, name);
	LA(archive_entry_set_filetype)(entry, AE_IFREG);
	LA(archive_entry_set_perm)(entry, 0600);
	LA(archive_entry_set_size)(entry, (la_int64_t)len);
	LA(archive_entry_set_mtime)(entry, (time_t)(kt_wall_ms() / 1000), 0);
	if (LA(archive_write_header)(ar, entry) != ARCHIVE_OK) {
		err = kt_seterr(errstr, errstr_size, -EIO, "archive: cannot write the header of %s: %s",
				name, LA(archive_error_string)(ar));
		goto out;
	}
	if (!src_path) {
		if (LA(archive_write_data)(ar, data, len) != (la_ssize_t)len)
			err = archive_failed(ar, "write", name, errstr, errstr_size);
		goto out;
	}
	for (size_t done = 0; done < len;) {
		ssize_t r = pread(fd, buf, COPY_CHUNK, (off_t)done);
		if (r <= 0) {
			err = kt_seterr(errstr, errstr_size, r < 0 ? -errno : KT_ETRUNCATED,
					"%s: read failed at byte %zu: %s", src_path, done,
					r < 0 ? strerror(errno) : "file shrank while being exported");
			goto out;
		}
		if (LA(archive_write_data)(ar, buf, (size_t)r) != (la_ssize_t)r) {
			err = archive_failed(ar, "write", name, errstr, errstr_size);
			goto out;
		}
		done += (size_t)r;
	}
out:
	if (fd >= 0)
		close(fd);
	LA(archive_entry_free)(entry);
	return err;
}

int kt_store_repo_export(struct kt_store_repo *repo, const char *id, int fd,
			 int compression, char *errstr, size_t errstr_size)
{
	struct kt_store_snapshot *snap = NULL;
	struct archive *ar = NULL;
	char **files = NULL;
	size_t file_count = 0;
	char *buf = NULL, *marker = NULL;
	char manifest_path[PATH_MAX], rel[128], repo_id[128];
	int err;

	err = la_load(errstr, errstr_size);
	if (err)
		return err;
	err = kt_store_repo_load_snapshot(repo, id, &snap, errstr, errstr_size);
	if (err)
		goto out;
	err = snapshot_files(snap, &files, &file_count);
	if (err) {
		kt_seterr(errstr, errstr_size, err, "out of memory listing the snapshot's files");
		goto out;
	}
	buf = malloc(COPY_CHUNK);
	ar = LA(archive_write_new)();
	if (!buf || !ar) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	LA(archive_write_set_format_pax_restricted)(ar);
	if (compression == KT_ARCHIVE_ZSTD)
		err = LA(archive_write_add_filter_zstd)(ar);
	else if (compression == KT_ARCHIVE_GZIP)
		err = LA(archive_write_add_filter_gzip)(ar);
	else
		err = LA(archive_write_add_filter_none)(ar);
	if (err != ARCHIVE_OK) {
		err = kt_seterr(errstr, errstr_size, KT_EUSAGE, "archive: compression not available: %s",
				LA(archive_error_string)(ar));
		goto out;
	}
	/* A pipe cannot take libarchive's default 10 KiB blocking happily for
	 * uploaders either way; keep tar's standard record size. */
	if (LA(archive_write_open_fd)(ar, fd) != ARCHIVE_OK) {
		err = kt_seterr(errstr, errstr_size, -EIO, "archive: cannot open the output: %s",
				LA(archive_error_string)(ar));
		goto out;
	}
	read_repo_id(repo, repo_id, sizeof(repo_id));
	if (asprintf(&marker, "{\"format\": \"ktape-archive\", \"version\": %d, \"snapshot\": \"%s\", "
		     "\"repository_id\": \"%s\", \"created_ms\": %lld}\n",
		     ARCHIVE_VERSION, snap->id, repo_id, (long long)kt_wall_ms()) < 0) {
		marker = NULL;
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	err = add_entry(ar, ARCHIVE_MARKER, NULL, marker, strlen(marker), buf, errstr, errstr_size);
	for (size_t i = 0; i < file_count && !err; i++) {
		char abs[PATH_MAX];

		err = kt_store_repo_abs_path(repo, files[i], abs, sizeof(abs));
		if (err) {
			kt_seterr(errstr, errstr_size, err, "manifest %s references a bad path '%s'", snap->id, files[i]);
			break;
		}
		err = add_entry(ar, files[i], abs, NULL, 0, buf, errstr, errstr_size);
	}
	if (err)
		goto out;
	snprintf(rel, sizeof(rel), "snapshots/%s.json", snap->id);
	err = kt_store_repo_abs_path(repo, rel, manifest_path, sizeof(manifest_path));
	if (!err)
		err = add_entry(ar, rel, manifest_path, NULL, 0, buf, errstr, errstr_size);
	if (err)
		goto out;
	if (LA(archive_write_close)(ar) != ARCHIVE_OK)
		err = archive_failed(ar, "finish", "the archive", errstr, errstr_size);
out:
	if (ar)
		LA(archive_write_free)(ar);
	free(marker);
	free(buf);
	kt_store_strv_free(files, file_count);
	kt_store_snapshot_destroy(snap);
	return err;
}

/* An entry path is acceptable when it is relative, has no empty, "." or
 * ".." component, and is one of the three forms of format/archive.md. */
static int entry_path_ok(const char *name)
{
	size_t len = strlen(name);
	const char *p = name;

	if (len == 0 || name[0] == '/' || len >= PATH_MAX / 2)
		return 0;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
		if (*p == '/')
			p++;
		if (slash && !*p)
			return 0; /* trailing slash */
	}
	if (strcmp(name, ARCHIVE_MARKER) == 0)
		return 1;
	if (strncmp(name, "snapshots/", 10) == 0)
		return strchr(name + 10, '/') == NULL && len > 15 && strcmp(name + len - 5, ".json") == 0;
	if (strncmp(name, "segments/", 9) == 0)
		return len > 4 && (strcmp(name + len - 4, ".kts") == 0 || strcmp(name + len - 4, ".kti") == 0);
	return 0;
}

/* Writes the current entry's data to a temp file and renames it to abs. */
static int import_file(struct kt_store_repo *repo, struct archive *ar, const char *name,
		       const char *abs, char *buf, char *errstr, size_t errstr_size)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	unsigned char rnd[8];
	int fd = -1, err;

	snprintf(dir, sizeof(dir), "%s", abs);
	*strrchr(dir, '/') = '\0';
	err = kt_mkdir_p(dir, 0700 | kt_store_repo_mode(repo) | ((kt_store_repo_mode(repo) & 0444) >> 2));
	if (err)
		return kt_seterr(errstr, errstr_size, err, "%s: cannot create directory: %s", dir, kt_strerror(err));
	err = kt_random_bytes(rnd, sizeof(rnd));
	if (err)
		return kt_seterr(errstr, errstr_size, err, "no randomness for a temp name");
	err = kt_store_repo_abs_path(repo, "tmp", tmp, sizeof(tmp));
	if (!err)
		err = kt_mkdir_p(tmp, 0700);
	if (err)
		return kt_seterr(errstr, errstr_size, err, "%s: cannot create the temp directory", tmp);
	size_t tl = strlen(tmp);
	snprintf(tmp + tl, sizeof(tmp) - tl, "/import.tmp-%02x%02x%02x%02x%02x%02x%02x%02x",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kt_store_repo_mode(repo) ? kt_store_repo_mode(repo) : 0600);
	if (fd < 0)
		return kt_seterr(errstr, errstr_size, -errno, "%s: cannot create: %s", tmp, strerror(errno));
	for (;;) {
		la_ssize_t r = LA(archive_read_data)(ar, buf, COPY_CHUNK);
		if (r == 0)
			break;
		if (r < 0) {
			err = kt_seterr(errstr, errstr_size, KT_ETRUNCATED, "archive: entry %s is damaged or cut short: %s",
					name, LA(archive_error_string)(ar));
			goto out;
		}
		err = kt_write_all(fd, buf, (size_t)r);
		if (err) {
			err = kt_seterr(errstr, errstr_size, err, "%s: write failed: %s", tmp, kt_strerror(err));
			goto out;
		}
	}
	if (fsync(fd) < 0) {
		err = kt_seterr(errstr, errstr_size, -errno, "%s: fsync failed: %s", tmp, strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, abs) < 0) {
		err = kt_seterr(errstr, errstr_size, -errno, "%s: rename into place failed: %s", abs, strerror(errno));
		goto out;
	}
	err = kt_fsync_parent_dir(abs);
	if (err)
		kt_seterr(errstr, errstr_size, err, "%s: fsync of the directory failed", abs);
	return err;
out:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return err;
}

/* Reads the manifest entry into memory (it is small) for the final checks. */
static int read_entry_to_memory(struct archive *ar, la_int64_t size, const char *name,
				char **out, char *errstr, size_t errstr_size)
{
	char *data;

	if (size < 0 || size > (64 << 20))
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "archive: %s has an implausible size", name);
	data = malloc((size_t)size + 1);
	if (!data)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	la_ssize_t r = LA(archive_read_data)(ar, data, (size_t)size);
	if (r != size) {
		free(data);
		return kt_seterr(errstr, errstr_size, KT_ETRUNCATED, "archive: %s is cut short: %s",
				 name, r < 0 ? LA(archive_error_string)(ar) : "fewer bytes than its header says");
	}
	data[size] = '\0';
	*out = data;
	return 0;
}

/* Every segment the manifest needs must now be in the repository. */
static int check_segments_present(struct kt_store_repo *repo, const struct kt_store_snapshot *snap,
				  char *errstr, size_t errstr_size)
{
	for (size_t t = 0; t < snap->topic_count; t++)
		for (size_t p = 0; p < snap->topics[t].n_partitions; p++) {
			const struct kt_store_partition *part = &snap->topics[t].partitions[p];
			for (size_t s = 0; s < part->segment_count; s++) {
				char abs[PATH_MAX];
				struct stat st;

				if (kt_store_repo_abs_path(repo, part->segments[s].path, abs, sizeof(abs)) != 0 ||
				    stat(abs, &st) != 0)
					return kt_seterr(errstr, errstr_size, KT_ENOTFOUND,
							 "archive: snapshot %s needs segment %s, which the archive does not hold",
							 snap->id, part->segments[s].path);
				if ((uint64_t)st.st_size != part->segments[s].file_size)
					return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
							 "archive: segment %s has %lld bytes, the manifest says %llu",
							 part->segments[s].path, (long long)st.st_size,
							 (unsigned long long)part->segments[s].file_size);
			}
		}
	return 0;
}

/* Validates the marker entry. */
static int check_marker(struct archive *ar, la_int64_t size, char *errstr, size_t errstr_size)
{
	char *data = NULL;
	json_t *root;
	int err;

	err = read_entry_to_memory(ar, size, ARCHIVE_MARKER, &data, errstr, errstr_size);
	if (err)
		return err;
	root = json_loads(data, 0, NULL);
	free(data);
	if (!root || !json_is_string(json_object_get(root, "format")) ||
	    strcmp(json_string_value(json_object_get(root, "format")), "ktape-archive") != 0 ||
	    !json_is_integer(json_object_get(root, "version"))) {
		err = kt_seterr(errstr, errstr_size, KT_EMAGIC, "archive: %s is not a ktape archive marker", ARCHIVE_MARKER);
	} else if (json_integer_value(json_object_get(root, "version")) > ARCHIVE_VERSION) {
		err = kt_seterr(errstr, errstr_size, KT_EVERSION,
				"archive format version %lld is newer than this ktape supports (%d)",
				(long long)json_integer_value(json_object_get(root, "version")), ARCHIVE_VERSION);
	}
	json_decref(root);
	return err;
}

int kt_store_repo_import(struct kt_store_repo *repo, int fd, char *id_out,
			 char *errstr, size_t errstr_size)
{
	struct archive *ar = NULL;
	struct archive_entry *entry;
	struct kt_store_snapshot *snap = NULL;
	char *manifest = NULL, *buf = NULL;
	char manifest_name[PATH_MAX] = "";
	int seen_marker = 0, err, r;

	err = la_load(errstr, errstr_size);
	if (err)
		return err;
	err = kt_store_repo_lock(repo, errstr, errstr_size);
	if (err)
		goto out;
	buf = malloc(COPY_CHUNK);
	ar = LA(archive_read_new)();
	if (!buf || !ar) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	LA(archive_read_support_filter_all)(ar);
	LA(archive_read_support_format_tar)(ar);
	if (LA(archive_read_open_fd)(ar, fd, 64 * 1024) != ARCHIVE_OK) {
		err = kt_seterr(errstr, errstr_size, KT_EMAGIC, "archive: cannot read: %s", LA(archive_error_string)(ar));
		goto out;
	}
	while ((r = LA(archive_read_next_header)(ar, &entry)) == ARCHIVE_OK) {
		const char *name = LA(archive_entry_pathname)(entry);
		char abs[PATH_MAX];

		if (!name || LA(archive_entry_filetype)(entry) != AE_IFREG || LA(archive_entry_hardlink)(entry) ||
		    LA(archive_entry_symlink)(entry) || !entry_path_ok(name)) {
			err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					"archive: refusing entry '%s': only regular files at ktape repository paths are allowed",
					name ? name : "(no name)");
			goto out;
		}
		if (manifest) {
			err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					"archive: entry '%s' follows the manifest, which must come last", name);
			goto out;
		}
		if (strcmp(name, ARCHIVE_MARKER) == 0) {
			err = check_marker(ar, LA(archive_entry_size)(entry), errstr, errstr_size);
			if (err)
				goto out;
			seen_marker = 1;
			continue;
		}
		if (!seen_marker) {
			err = kt_seterr(errstr, errstr_size, KT_EMAGIC,
					"archive: the first entry must be %s, found '%s'", ARCHIVE_MARKER, name);
			goto out;
		}
		if (strncmp(name, "snapshots/", 10) == 0) {
			err = read_entry_to_memory(ar, LA(archive_entry_size)(entry), name, &manifest, errstr, errstr_size);
			if (err)
				goto out;
			snprintf(manifest_name, sizeof(manifest_name), "%s", name);
			continue;
		}
		err = kt_store_repo_abs_path(repo, name, abs, sizeof(abs));
		if (err) {
			kt_seterr(errstr, errstr_size, err, "archive: refusing entry '%s'", name);
			goto out;
		}
		struct stat st;
		if (stat(abs, &st) == 0 && st.st_size == LA(archive_entry_size)(entry)) {
			/* Already here: segments are immutable and uniquely named. */
			LA(archive_read_data_skip)(ar);
			continue;
		}
		err = import_file(repo, ar, name, abs, buf, errstr, errstr_size);
		if (err)
			goto out;
	}
	if (r != ARCHIVE_EOF) {
		err = kt_seterr(errstr, errstr_size, KT_ETRUNCATED, "archive: damaged or cut short: %s",
				LA(archive_error_string)(ar));
		goto out;
	}
	if (!manifest) {
		err = kt_seterr(errstr, errstr_size, KT_ETRUNCATED,
				"archive: no snapshot manifest (snapshots/<id>.json) found; nothing was imported");
		goto out;
	}
	err = kt_store_snapshot_from_json(manifest, strlen(manifest), &snap, errstr, errstr_size);
	if (err)
		goto out;
	char expect[PATH_MAX];
	snprintf(expect, sizeof(expect), "snapshots/%s.json", snap->id);
	if (strcmp(expect, manifest_name) != 0) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "archive: manifest %s holds snapshot id %s",
				manifest_name, snap->id);
		goto out;
	}
	err = check_segments_present(repo, snap, errstr, errstr_size);
	if (err)
		goto out;
	/* The commit point: write the manifest bytes exactly as exported. */
	char abs[PATH_MAX];
	err = kt_store_repo_abs_path(repo, manifest_name, abs, sizeof(abs));
	if (!err)
		err = kt_write_file_atomic(abs, manifest, strlen(manifest),
					   kt_store_repo_mode(repo) ? kt_store_repo_mode(repo) : 0600,
					   errstr, errstr_size);
	if (!err && id_out)
		snprintf(id_out, 64, "%s", snap->id);
out:
	if (ar)
		LA(archive_read_free)(ar);
	kt_store_snapshot_destroy(snap);
	free(manifest);
	free(buf);
	return err;
}

/* ---- reading an archive in place ------------------------------------------ */

/* One entry of an uncompressed archive: where its data lies in the file. */
struct tar_entry {
	char *name;
	uint64_t offset;
	uint64_t size;
};

struct kt_store_tar {
	char path[PATH_MAX];
	char snapshot_id[64];
	const struct tar_entry *manifest;
	struct tar_entry *entries; /* sorted by name */
	size_t count;
};

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct tar_entry *)a)->name, ((const struct tar_entry *)b)->name);
}

static const struct tar_entry *tar_find(const struct kt_store_tar *tar, const char *name)
{
	struct tar_entry key = { (char *)name, 0, 0 };

	return bsearch(&key, tar->entries, tar->count, sizeof(key), cmp_entry);
}

void kt_store_tar_destroy(struct kt_store_tar *tar)
{
	if (!tar)
		return;
	for (size_t i = 0; i < tar->count; i++)
		free(tar->entries[i].name);
	free(tar->entries);
	free(tar);
}

/* Records where the current entry's data starts.  libarchive has consumed
 * exactly the entry's headers (pax extended ones included) when it returns
 * the entry, so the bytes consumed so far are the data offset; the first
 * bytes are compared with what libarchive reads, so that a tar variant
 * where this does not hold is refused rather than misread. */
static int tar_add_entry(struct kt_store_tar *tar, struct archive *ar, struct archive_entry *entry, int fd,
			 size_t *cap, char *errstr, size_t errstr_size)
{
	const char *name = LA(archive_entry_pathname)(entry);
	la_int64_t offset = LA(archive_filter_bytes)(ar, 0);
	la_int64_t size = LA(archive_entry_size)(entry);
	uint8_t via_lib[64], via_file[64];

	if (offset < 0 || size < 0 || LA(archive_entry_sparse_count)(entry) > 0)
		return kt_seterr(errstr, errstr_size, KT_EUNSUPPORTED,
				 "%s: entry %s cannot be located in the file (sparse or unsized)", tar->path, name);
	la_ssize_t n = LA(archive_read_data)(ar, via_lib, size < (la_int64_t)sizeof(via_lib) ? (size_t)size : sizeof(via_lib));
	if (n < 0 || n != (size < (la_int64_t)sizeof(via_lib) ? size : (la_int64_t)sizeof(via_lib)) ||
	    pread(fd, via_file, (size_t)n, (off_t)offset) != n || memcmp(via_lib, via_file, (size_t)n) != 0)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "%s: entry %s: its data is not where the tar headers say (byte %lld)",
				 tar->path, name, (long long)offset);
	if (tar->count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct tar_entry *grown = realloc(tar->entries, ncap * sizeof(*grown));
		if (!grown)
			return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		tar->entries = grown;
		*cap = ncap;
	}
	tar->entries[tar->count].name = strdup(name);
	if (!tar->entries[tar->count].name)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	tar->entries[tar->count].offset = (uint64_t)offset;
	tar->entries[tar->count].size = (uint64_t)size;
	tar->count++;
	return 0;
}

int kt_store_tar_open(struct kt_store_tar **out, const char *path, char *errstr, size_t errstr_size)
{
	struct kt_store_tar *tar = NULL;
	struct archive *ar = NULL;
	struct archive_entry *entry;
	size_t cap = 0;
	int fd = -1, seen_marker = 0, err = 0, r;
	const char *manifest_name = NULL;

	*out = NULL;
	err = la_load(errstr, errstr_size);
	if (err)
		return err;
	tar = calloc(1, sizeof(*tar));
	ar = LA(archive_read_new)();
	if (!tar || !ar) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	snprintf(tar->path, sizeof(tar->path), "%s", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = kt_seterr(errstr, errstr_size, errno == ENOENT ? KT_ENOTFOUND : -errno, "%s: cannot open: %s",
				path, strerror(errno));
		goto out;
	}
	LA(archive_read_support_filter_all)(ar);
	LA(archive_read_support_format_tar)(ar);
	if (LA(archive_read_open_fd)(ar, fd, 64 * 1024) != ARCHIVE_OK) {
		err = kt_seterr(errstr, errstr_size, KT_EMAGIC, "%s: not a tar archive: %s", path, LA(archive_error_string)(ar));
		goto out;
	}
	while ((r = LA(archive_read_next_header)(ar, &entry)) == ARCHIVE_OK) {
		const char *name = LA(archive_entry_pathname)(entry);

		if (LA(archive_filter_count)(ar) > 1) {
			err = kt_seterr(errstr, errstr_size, KT_EUNSUPPORTED,
					"%s is compressed (%s) and cannot be read in place: import it first "
					"(ktape import %s -r REPO) or export with --compress none",
					path, LA(archive_filter_name)(ar, 0), path);
			goto out;
		}
		if (!name || LA(archive_entry_filetype)(entry) != AE_IFREG || LA(archive_entry_hardlink)(entry) ||
		    LA(archive_entry_symlink)(entry) || !entry_path_ok(name)) {
			err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					"%s: entry '%s' is not part of a ktape archive", path, name ? name : "(no name)");
			goto out;
		}
		if (!seen_marker) {
			if (strcmp(name, ARCHIVE_MARKER) != 0) {
				err = kt_seterr(errstr, errstr_size, KT_EMAGIC,
						"%s: not a ktape archive: the first entry is '%s', not %s", path, name,
						ARCHIVE_MARKER);
				goto out;
			}
			err = check_marker(ar, LA(archive_entry_size)(entry), errstr, errstr_size);
			if (err)
				goto out;
			seen_marker = 1;
			continue;
		}
		err = tar_add_entry(tar, ar, entry, fd, &cap, errstr, errstr_size);
		if (err)
			goto out;
		if (strncmp(name, "snapshots/", 10) == 0) {
			if (manifest_name) {
				err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s: more than one snapshot manifest", path);
				goto out;
			}
			manifest_name = tar->entries[tar->count - 1].name;
		}
	}
	if (r != ARCHIVE_EOF) {
		err = kt_seterr(errstr, errstr_size, KT_ETRUNCATED, "%s: damaged or cut short: %s", path,
				LA(archive_error_string)(ar));
		goto out;
	}
	if (!seen_marker || !manifest_name) {
		err = kt_seterr(errstr, errstr_size, KT_ETRUNCATED, "%s: %s", path,
				!seen_marker ? "an empty archive" : "no snapshot manifest (snapshots/<id>.json) in the archive");
		goto out;
	}
	size_t idlen = strlen(manifest_name) - 10 - 5;
	if (idlen >= sizeof(tar->snapshot_id)) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s: manifest name %s is too long", path, manifest_name);
		goto out;
	}
	memcpy(tar->snapshot_id, manifest_name + 10, idlen);
	tar->snapshot_id[idlen] = '\0';
	if (tar->count > 1)
		qsort(tar->entries, tar->count, sizeof(*tar->entries), cmp_entry);
	for (size_t i = 1; i < tar->count; i++)
		if (strcmp(tar->entries[i - 1].name, tar->entries[i].name) == 0) {
			err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s: entry %s appears twice", path,
					tar->entries[i].name);
			goto out;
		}
	char mname[PATH_MAX];
	snprintf(mname, sizeof(mname), "snapshots/%s.json", tar->snapshot_id);
	tar->manifest = tar_find(tar, mname);
	*out = tar;
	tar = NULL;
out:
	if (ar)
		LA(archive_read_free)(ar);
	if (fd >= 0)
		close(fd);
	kt_store_tar_destroy(tar);
	return err;
}

const char *kt_store_tar_snapshot_id(const struct kt_store_tar *tar)
{
	return tar->snapshot_id;
}

/* Reads a whole (small) entry into memory. */
static int tar_read_entry(const struct kt_store_tar *tar, const struct tar_entry *e, char **out, size_t *len,
			  char *errstr, size_t errstr_size)
{
	char *buf;
	int fd, err = 0;

	if (e->size > (64u << 20))
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s: entry %s has an implausible size", tar->path, e->name);
	buf = malloc((size_t)e->size + 1);
	if (!buf)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	fd = open(tar->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, buf, (size_t)e->size, (off_t)e->offset) != (ssize_t)e->size) {
		err = kt_seterr(errstr, errstr_size, fd < 0 ? -errno : KT_ETRUNCATED, "%s: cannot read entry %s",
				tar->path, e->name);
		free(buf);
	} else {
		buf[e->size] = '\0';
		*out = buf;
		*len = (size_t)e->size;
	}
	if (fd >= 0)
		close(fd);
	return err;
}

int kt_store_tar_read_manifest(const struct kt_store_tar *tar, char **out, size_t *len,
			       char *errstr, size_t errstr_size)
{
	return tar_read_entry(tar, tar->manifest, out, len, errstr, errstr_size);
}

int kt_store_repo_open_segment(struct kt_store_repo *repo, const char *rel, unsigned flags,
			       struct kt_store_reader **out, char *errstr, size_t errstr_size)
{
	struct kt_store_tar *tar = kt_store_repo_tar(repo);
	char abs[PATH_MAX];
	int err;

	*out = NULL;
	if (tar) {
		const struct tar_entry *e = tar_find(tar, rel);
		char name[PATH_MAX + 64];

		if (!e)
			return kt_seterr(errstr, errstr_size, -ENOENT, "%s: the archive has no segment %s", tar->path, rel);
		snprintf(name, sizeof(name), "%s:%s", tar->path, rel);
		return kt_store_reader_open_range(out, tar->path, e->offset, e->size, name, flags, errstr, errstr_size);
	}
	err = kt_store_repo_abs_path(repo, rel, abs, sizeof(abs));
	if (err)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "segment path \"%s\" is not inside the repository", rel);
	return kt_store_reader_open(out, abs, flags, errstr, errstr_size);
}
