/*
 * repo.c - the backup repository (format/repository.md): the marker, the
 * writer lock, segment paths with safely encoded topic directories, and the
 * snapshot manifests with their commit protocol.
 */
#include "kt_store.h"
#include "repo_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <xxhash.h>

#define MARKER_NAME "ktape-repository.json"
#define MARKER_FORMAT "ktape-repository"

/* A manifest larger than this is not something ktape wrote: refuse it rather
 * than trying to allocate whatever a damaged size field says. */
#define MAX_MANIFEST_BYTES (1024u * 1024u * 1024u)
#define MAX_MARKER_BYTES (64u * 1024u)

/* Topic directory names (format/repository.md 1.1). */
#define TOPIC_DIR_MAX 200
#define TOPIC_DIR_KEEP 183

struct kt_store_repo {
	char path[PATH_MAX]; /* absolute, no trailing slash */
	unsigned file_mode;
	unsigned dir_mode;
	int lock_fd; /* -1 when the writer lock is not held */
	struct kt_store_tar *tar; /* opened from an archive: read-only */
};

/* Directories get search permission wherever they get read permission. */
static unsigned dir_mode_for(unsigned file_mode)
{
	return file_mode | ((file_mode & 0444) >> 2);
}

static int join(char *buf, size_t size, const char *a, const char *b)
{
	if ((size_t)snprintf(buf, size, "%s/%s", a, b) >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* mkdir that also defeats the umask, so that a repository created with a
 * wider mode really gets it.  An existing directory is left alone. */
static int make_dir(const char *path, unsigned mode)
{
	if (mkdir(path, mode) < 0)
		return errno == EEXIST ? 0 : -errno;
	if (chmod(path, mode) < 0)
		return -errno;
	return 0;
}

/* ---- marker ------------------------------------------------------------- */

static int write_marker(const struct kt_store_repo *repo, char *errstr, size_t errstr_size)
{
	unsigned char rnd[16];
	char id[33], path[PATH_MAX];
	char *text = NULL;
	json_t *obj = NULL;
	int err;

	err = kt_random_bytes(rnd, sizeof(rnd));
	if (err)
		return kt_seterr(errstr, errstr_size, err, "%s: no randomness for the repository id: %s", repo->path, kt_strerror(err));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(id + 2 * i, 3, "%02x", rnd[i]);
	if (join(path, sizeof(path), repo->path, MARKER_NAME))
		return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "%s: path too long", repo->path);
	obj = json_pack("{s:s, s:i, s:s, s:I}", "format", MARKER_FORMAT, "version", KT_STORE_REPO_VERSION,
			"id", id, "created_ms", (json_int_t)kt_wall_ms());
	text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	if (!text) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	size_t len = strlen(text);
	char *nl = realloc(text, len + 2);
	if (!nl) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	text = nl;
	memcpy(text + len, "\n", 2);
	err = kt_write_file_atomic(path, text, len + 1, repo->file_mode, errstr, errstr_size);
	if (!err && chmod(path, repo->file_mode) < 0)
		err = kt_seterr(errstr, errstr_size, -errno, "%s: chmod failed: %s", path, strerror(errno));
out:
	free(text);
	json_decref(obj);
	return err;
}

static int check_marker(const char *path, char *errstr, size_t errstr_size)
{
	char *text = NULL;
	size_t len = 0;
	json_t *obj = NULL, *v;
	json_error_t jerr;
	int err;

	/* Checked in the order format/repository.md section 2 gives: what is
	 * not a marker at all is KT_EMAGIC, then the version. */
	err = kt_store_read_whole_file(path, MAX_MARKER_BYTES, &text, &len, errstr, errstr_size);
	if (err == KT_ENOTFOUND || err == KT_ECORRUPT)
		err = KT_EMAGIC;
	if (err)
		return err;
	obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj) {
		err = kt_seterr(errstr, errstr_size, KT_EMAGIC,
				"%s: not a ktape repository marker: not valid JSON (line %d, column %d: %s)",
				path, jerr.line, jerr.column, jerr.text);
		goto out;
	}
	v = json_object_get(obj, "format");
	if (!json_is_object(obj) || !json_is_string(v) || strcmp(json_string_value(v), MARKER_FORMAT) != 0) {
		err = kt_seterr(errstr, errstr_size, KT_EMAGIC, "%s: not a ktape repository marker (\"format\" is not \"%s\")",
				path, MARKER_FORMAT);
		goto out;
	}
	v = json_object_get(obj, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s: \"version\" is not a positive integer", path);
		goto out;
	}
	if (json_integer_value(v) > KT_STORE_REPO_VERSION) {
		err = kt_seterr(errstr, errstr_size, KT_EVERSION,
				"%s: repository format version %" JSON_INTEGER_FORMAT " is newer than this ktape supports (%d)",
				path, json_integer_value(v), KT_STORE_REPO_VERSION);
		goto out;
	}
	v = json_object_get(obj, "id");
	if (!json_is_string(v) || json_string_length(v) != 32 ||
	    strspn(json_string_value(v), "0123456789abcdef") != 32) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s: \"id\" is not 32 lowercase hex digits", path);
		goto out;
	}
	if (!json_is_integer(json_object_get(obj, "created_ms"))) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s: \"created_ms\" is not an integer", path);
		goto out;
	}
out:
	json_decref(obj);
	free(text);
	return err;
}

/* ---- lock ------------------------------------------------------------- */

int kt_store_repo_lock(struct kt_store_repo *repo, char *errstr, size_t errstr_size)
{
	char path[PATH_MAX], info[320], host[256];
	int fd, err = 0;

	if (repo->lock_fd >= 0)
		return 0;
	if (repo->tar)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "%s is a snapshot archive, read-only: import it into a repository to change it", repo->path);
	if (join(path, sizeof(path), repo->path, "lock"))
		return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "%s: path too long", repo->path);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, repo->file_mode);
	if (fd < 0)
		return kt_seterr(errstr, errstr_size, -errno, "%s: cannot open the lock file: %s", path, strerror(errno));
	/* flock, not fcntl locks: it belongs to the open file, so it dies with
	 * its process (a stale lock file is simply taken over) and a second
	 * handle in the same process conflicts too. */
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			err = kt_seterr(errstr, errstr_size, -errno, "%s: flock failed: %s", path, strerror(errno));
			goto fail;
		}
		long pid = 0;
		ssize_t n = pread(fd, info, sizeof(info) - 1, 0);
		info[n > 0 ? n : 0] = '\0';
		host[0] = '\0';
		if (sscanf(info, "%ld %255s", &pid, host) >= 1 && pid > 0)
			err = kt_seterr(errstr, errstr_size, KT_ELOCKED,
					"repository %s is locked by pid %ld on host %s: another ktape is writing to it "
					"(the lock is released when that process ends)",
					repo->path, pid, host[0] ? host : "(unknown)");
		else
			err = kt_seterr(errstr, errstr_size, KT_ELOCKED,
					"repository %s is locked by another process that has not yet written its pid into %s",
					repo->path, path);
		goto fail;
	}
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	int n = snprintf(info, sizeof(info), "%ld %s\n", (long)getpid(), host);
	errno = 0;
	if (ftruncate(fd, 0) < 0 || pwrite(fd, info, (size_t)n, 0) != n) {
		/* A short write sets no errno: it must still fail, or the caller
		 * would believe it holds the lock. */
		int e = errno ? errno : EIO;
		err = kt_seterr(errstr, errstr_size, -e, "%s: cannot write the holder's pid: %s", path, strerror(e));
		goto fail;
	}
	repo->lock_fd = fd;
	return 0;
fail:
	close(fd);
	return err;
}

/* ---- open ------------------------------------------------------------- */

/* A directory that has no marker may become a repository only if it holds
 * nothing but what an interrupted creation leaves behind; anything else is
 * someone's data. */
static int check_creatable(const char *path, char *errstr, size_t errstr_size)
{
	static const char *const allowed[] = { ".", "..", "lock", "snapshots", "segments", "tmp" };
	struct dirent *de;
	DIR *dir;
	int err = 0;

	dir = opendir(path);
	if (!dir)
		return kt_seterr(errstr, errstr_size, -errno, "%s: cannot read the directory: %s", path, strerror(errno));
	while ((de = readdir(dir)) != NULL) {
		size_t i;
		for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
			if (strcmp(de->d_name, allowed[i]) == 0)
				break;
		if (i == sizeof(allowed) / sizeof(allowed[0]) &&
		    strncmp(de->d_name, MARKER_NAME ".tmp-", sizeof(MARKER_NAME ".tmp-") - 1) == 0) {
			/* A creator killed while writing the marker left this.
			 * Creation runs under the writer lock, so nobody is
			 * writing it now: it is debris, not someone's data. */
			char leftover[PATH_MAX];
			if (join(leftover, sizeof(leftover), path, de->d_name) == 0 && unlink(leftover) == 0)
				continue;
		}
		if (i == sizeof(allowed) / sizeof(allowed[0])) {
			err = kt_seterr(errstr, errstr_size, KT_EEXIST,
					"%s is not empty and not a ktape repository (it holds \"%s\"); "
					"refusing to create a repository there", path, de->d_name);
			break;
		}
	}
	closedir(dir);
	return err;
}

static int create_layout(struct kt_store_repo *repo, char *errstr, size_t errstr_size)
{
	static const char *const dirs[] = { "snapshots", "segments", "tmp" };
	char path[PATH_MAX];
	int err;

	err = check_creatable(repo->path, errstr, errstr_size);
	if (err)
		return err;
	if (chmod(repo->path, repo->dir_mode) < 0)
		return kt_seterr(errstr, errstr_size, -errno, "%s: chmod failed: %s", repo->path, strerror(errno));
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (join(path, sizeof(path), repo->path, dirs[i]))
			return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "%s: path too long", repo->path);
		err = make_dir(path, repo->dir_mode);
		if (err)
			return kt_seterr(errstr, errstr_size, err, "%s: cannot create: %s", path, kt_strerror(err));
	}
	/* The marker is written last: it is the commit point of creation. */
	return write_marker(repo, errstr, errstr_size);
}

int kt_store_repo_open(struct kt_store_repo **out, const char *path,
		       unsigned flags, unsigned mode,
		       char *errstr, size_t errstr_size)
{
	struct kt_store_repo *repo;
	char marker[PATH_MAX];
	struct stat st;
	int err = 0;

	*out = NULL;
	if (!path || !*path)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "no repository path given");
	repo = calloc(1, sizeof(*repo));
	if (!repo)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	repo->lock_fd = -1;
	repo->file_mode = mode ? ((mode & 0777) | 0600) : 0600;
	repo->dir_mode = dir_mode_for(repo->file_mode);

	/* A regular file is a snapshot archive, read in place (archive.c). */
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		if (flags) {
			err = kt_seterr(errstr, errstr_size, KT_EUSAGE,
					"%s is a snapshot archive: it can be read in place, not written to "
					"(ktape import it into a repository first)", path);
			goto fail;
		}
		if (!realpath(path, repo->path)) {
			err = kt_seterr(errstr, errstr_size, -errno, "%s: %s", path, strerror(errno));
			goto fail;
		}
		err = kt_store_tar_open(&repo->tar, repo->path, errstr, errstr_size);
		if (err)
			goto fail;
		*out = repo;
		return 0;
	}
	if (flags & KT_STORE_REPO_CREATE) {
		err = kt_mkdir_p(path, repo->dir_mode);
		if (err) {
			kt_seterr(errstr, errstr_size, err, "%s: cannot create the repository directory: %s", path, kt_strerror(err));
			goto fail;
		}
	}
	if (!realpath(path, repo->path)) {
		err = kt_seterr(errstr, errstr_size, errno == ENOENT ? KT_ENOTFOUND : -errno,
				"%s: %s", path, errno == ENOENT ? "no such repository" : strerror(errno));
		goto fail;
	}
	if (join(marker, sizeof(marker), repo->path, MARKER_NAME)) {
		err = kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "%s: path too long", path);
		goto fail;
	}
	if (stat(marker, &st) < 0 && errno == ENOENT) {
		if (!(flags & KT_STORE_REPO_CREATE)) {
			err = kt_seterr(errstr, errstr_size, KT_EMAGIC,
					"%s is not a ktape repository (it has no %s)", repo->path, MARKER_NAME);
			goto fail;
		}
		/* Creation runs under the writer lock so that two creators
		 * cannot both write a marker; recheck once it is held. */
		err = kt_store_repo_lock(repo, errstr, errstr_size);
		if (err)
			goto fail;
		if (stat(marker, &st) < 0 && errno == ENOENT) {
			err = create_layout(repo, errstr, errstr_size);
			if (err)
				goto fail;
		}
	}
	err = check_marker(marker, errstr, errstr_size);
	if (err)
		goto fail;
	/* Without an explicit mode, new files follow the marker's, so a
	 * repository created wider stays wider for every later writer. */
	if (!mode && stat(marker, &st) == 0) {
		repo->file_mode = (st.st_mode & 0777) | 0600;
		repo->dir_mode = dir_mode_for(repo->file_mode);
	}
	if (flags & KT_STORE_REPO_LOCK) {
		err = kt_store_repo_lock(repo, errstr, errstr_size);
		if (err)
			goto fail;
	} else if (repo->lock_fd >= 0) {
		close(repo->lock_fd); /* taken only to create */
		repo->lock_fd = -1;
	}
	*out = repo;
	return 0;
fail:
	kt_store_repo_destroy(repo);
	return err;
}

void kt_store_repo_destroy(struct kt_store_repo *repo)
{
	if (!repo)
		return;
	/* The pid stays in the lock file: it is only read while the flock is
	 * held, and closing the descriptor is what releases the lock. */
	if (repo->lock_fd >= 0)
		close(repo->lock_fd);
	kt_store_tar_destroy(repo->tar);
	free(repo);
}

struct kt_store_tar *kt_store_repo_tar(const struct kt_store_repo *repo)
{
	return repo->tar;
}

const char *kt_store_repo_path(const struct kt_store_repo *repo)
{
	return repo->path;
}

unsigned kt_store_repo_mode(const struct kt_store_repo *repo)
{
	return repo->file_mode;
}

/* ---- paths ------------------------------------------------------------- */

/* format/repository.md 1.1.  out must hold TOPIC_DIR_MAX + 1 bytes. */
static void encode_topic_dir(const char *topic, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	/* Worst case: every byte escaped. */
	char full[KT_STORE_MAX_TOPIC_LEN * 3 + 1];
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)topic; *p; p++) {
		int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-';
		if (p == (const unsigned char *)topic && *p == '.')
			plain = 0;
		if (plain) {
			full[n++] = (char)*p;
		} else {
			full[n++] = '%';
			full[n++] = hex[*p >> 4];
			full[n++] = hex[*p & 15];
		}
	}
	full[n] = '\0';
	if (n <= TOPIC_DIR_MAX) {
		memcpy(out, full, n + 1);
		return;
	}
	snprintf(out, TOPIC_DIR_MAX + 1, "%.*s~%016llx", TOPIC_DIR_KEEP, full,
		 (unsigned long long)XXH3_64bits(topic, strlen(topic)));
}

/* Capture workers call this concurrently: it only reads the handle, and a
 * directory another thread created first (EEXIST) is fine. */
int kt_store_repo_new_segment_path(struct kt_store_repo *repo, const char *topic,
				   int32_t partition, int64_t first_offset,
				   char *rel, size_t rel_size, char *abs, size_t abs_size,
				   char *errstr, size_t errstr_size)
{
	char tdir[TOPIC_DIR_MAX + 1], dir[PATH_MAX];
	unsigned char rnd[8];
	uint64_t r = 0;
	int err;

	if (!topic || !*topic || strlen(topic) > KT_STORE_MAX_TOPIC_LEN)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "topic name must be 1 to %d bytes long",
				 KT_STORE_MAX_TOPIC_LEN);
	if (partition < 0 || first_offset < 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "topic %s: invalid partition %d or offset %" PRId64,
				 topic, partition, first_offset);
	err = kt_random_bytes(rnd, sizeof(rnd));
	if (err)
		return kt_seterr(errstr, errstr_size, err, "no randomness for a segment name: %s", kt_strerror(err));
	for (size_t i = 0; i < sizeof(rnd); i++)
		r = r << 8 | rnd[i];
	encode_topic_dir(topic, tdir);
	if ((size_t)snprintf(rel, rel_size, "segments/%s/%d/%020" PRId64 "-%016" PRIx64 ".kts",
			     tdir, partition, first_offset, r) >= rel_size)
		return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "topic %s: segment path does not fit the buffer", topic);
	err = kt_store_repo_abs_path(repo, rel, abs, abs_size);
	if (err)
		return kt_seterr(errstr, errstr_size, err, "%s/%s: path too long", repo->path, rel);
	/* Create segments/, the topic and the partition directory in turn, each
	 * with the repository's directory mode: the parent of the segment file
	 * is cut back one component at a time from rel. */
	size_t cut[3];
	cut[2] = strrchr(rel, '/') - rel;
	cut[1] = strlen("segments/") + strlen(tdir);
	cut[0] = strlen("segments");
	for (size_t i = 0; i < 3; i++) {
		if (snprintf(dir, sizeof(dir), "%s/%.*s", repo->path, (int)cut[i], rel) >= (int)sizeof(dir))
			return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "%s/%s: path too long", repo->path, rel);
		err = make_dir(dir, repo->dir_mode);
		if (err)
			return kt_seterr(errstr, errstr_size, err, "%s: cannot create the directory: %s", dir, kt_strerror(err));
	}
	return 0;
}

int kt_store_repo_abs_path(const struct kt_store_repo *repo, const char *rel,
			   char *abs, size_t abs_size)
{
	if (!rel || !*rel || rel[0] == '/')
		return KT_ECORRUPT;
	for (const char *p = rel; *p;) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return KT_ECORRUPT;
		p += len;
		if (*p == '/')
			p++;
	}
	return join(abs, abs_size, repo->path, rel);
}

/* ---- snapshots ---------------------------------------------------------- */

static int cmp_desc(const void *a, const void *b)
{
	return strcmp(*(char *const *)b, *(char *const *)a);
}

void kt_store_strv_free(char **v, size_t count)
{
	if (!v)
		return;
	for (size_t i = 0; i < count; i++)
		free(v[i]);
	free(v);
}

int kt_store_repo_list_snapshots(struct kt_store_repo *repo, char ***ids, size_t *count,
				 char *errstr, size_t errstr_size)
{
	char **names = NULL, **v = NULL;
	size_t n_names = 0, n = 0;
	int err;

	*ids = NULL;
	*count = 0;
	if (repo->tar) {
		v = calloc(1, sizeof(*v));
		if (!v || !(v[0] = strdup(kt_store_tar_snapshot_id(repo->tar)))) {
			free(v);
			return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		}
		*ids = v;
		*count = 1;
		return 0;
	}
	/* An absent snapshots/ lists as empty: no snapshot was ever committed. */
	err = kt_store_repo_list_files(repo, "snapshots", &names, &n_names, errstr, errstr_size);
	if (err)
		return err;
	v = calloc(n_names ? n_names : 1, sizeof(*v));
	if (!v) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "%s: out of memory listing snapshots", repo->path);
		goto out;
	}
	for (size_t i = 0; i < n_names; i++) {
		/* Only "<id>.json" files are manifests; temp files and anything
		 * else are not snapshots. */
		size_t len = strlen(names[i]);
		if (len <= 5 || strcmp(names[i] + len - 5, ".json") != 0 ||
		    len - 5 >= sizeof(((struct kt_store_snapshot *)0)->id))
			continue;
		names[i][len - 5] = '\0';
		if (!kt_store_snapshot_id_valid(names[i]))
			continue;
		v[n++] = names[i];
		names[i] = NULL;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_desc);
	*ids = v;
	*count = n;
	v = NULL;
	n = 0;
out:
	kt_store_strv_free(names, n_names);
	kt_store_strv_free(v, n);
	return err;
}

int kt_store_repo_load_snapshot(struct kt_store_repo *repo, const char *id,
				struct kt_store_snapshot **out,
				char *errstr, size_t errstr_size)
{
	char path[PATH_MAX], name[PATH_MAX], latest[sizeof(((struct kt_store_snapshot *)0)->id)];
	char **ids = NULL;
	char *text = NULL;
	size_t count = 0, len = 0;
	int err;

	*out = NULL;
	if (!id || strcmp(id, "latest") == 0) {
		err = kt_store_repo_list_snapshots(repo, &ids, &count, errstr, errstr_size);
		if (err)
			return err;
		if (count == 0) {
			kt_store_strv_free(ids, count);
			return kt_seterr(errstr, errstr_size, KT_ENOTFOUND, "repository %s has no snapshots", repo->path);
		}
		snprintf(latest, sizeof(latest), "%s", ids[0]);
		kt_store_strv_free(ids, count);
		id = latest;
	}
	if (!kt_store_snapshot_id_valid(id))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "'%s' is not a snapshot id", id);
	snprintf(name, sizeof(name), "snapshots/%s.json", id);
	if (join(path, sizeof(path), repo->path, name))
		return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "%s: path too long", repo->path);
	if (repo->tar)
		err = strcmp(id, kt_store_tar_snapshot_id(repo->tar)) != 0 ? KT_ENOTFOUND :
		      kt_store_tar_read_manifest(repo->tar, &text, &len, errstr, errstr_size);
	else
		err = kt_store_read_whole_file(path, MAX_MANIFEST_BYTES, &text, &len, errstr, errstr_size);
	if (err == KT_ENOTFOUND)
		return kt_seterr(errstr, errstr_size, KT_ENOTFOUND, "repository %s has no snapshot %s", repo->path, id);
	if (err)
		return err;
	/* A manifest that does not parse is an error naming the file, never
	 * skipped: a restore must not silently fall back to older data. */
	char why[512];
	err = kt_store_snapshot_from_json(text, len, out, why, sizeof(why));
	free(text);
	if (err)
		return kt_seterr(errstr, errstr_size, err, "%s: %s", path, why);
	if (strcmp((*out)->id, id) != 0) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s: manifest says its id is %s", path, (*out)->id);
		kt_store_snapshot_destroy(*out);
		*out = NULL;
	}
	return err;
}

/* Time part of an id, or -1 when it does not have the generated shape. */
static int64_t id_time_ms(const char *id)
{
	struct tm tm = { 0 };
	int ms;

	if (strlen(id) < 19 || id[8] != 'T' || id[18] != 'Z' ||
	    sscanf(id, "%4d%2d%2dT%2d%2d%2d%3d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Assigns an id (format/repository.md section 3) that sorts after every id
 * already in the repository, even if the clock stepped back, so that
 * "latest" always means the last committed snapshot. */
static int assign_id(struct kt_store_repo *repo, struct kt_store_snapshot *snap,
		     char *errstr, size_t errstr_size)
{
	char **ids = NULL;
	size_t count = 0;
	unsigned char rnd[4];
	int64_t ms = kt_wall_ms();
	int err;

	err = kt_store_repo_list_snapshots(repo, &ids, &count, errstr, errstr_size);
	if (err)
		return err;
	if (count > 0) {
		int64_t newest = id_time_ms(ids[0]);
		if (newest >= ms)
			ms = newest + 1;
	}
	kt_store_strv_free(ids, count);
	err = kt_random_bytes(rnd, sizeof(rnd));
	if (err)
		return kt_seterr(errstr, errstr_size, err, "no randomness for a snapshot id: %s", kt_strerror(err));
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(snap->id, sizeof(snap->id), "%04d%02d%02dT%02d%02d%02d%03dZ-%02x%02x%02x%02x",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(ms % 1000), rnd[0], rnd[1], rnd[2], rnd[3]);
	return 0;
}

int kt_store_repo_commit_snapshot(struct kt_store_repo *repo,
				  struct kt_store_snapshot *snap,
				  char *errstr, size_t errstr_size)
{
	char tmp[PATH_MAX] = "", final[PATH_MAX], dir[PATH_MAX], name[PATH_MAX], tmpdir[PATH_MAX];
	char *text = NULL;
	unsigned char rnd[8];
	int err, assigned = 0, renamed = 0;
	struct stat st;

	if (repo->lock_fd < 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "repository %s: committing a snapshot requires the writer lock", repo->path);
	if (!snap->id[0]) {
		err = assign_id(repo, snap, errstr, errstr_size);
		if (err)
			return err;
		assigned = 1;
	}
	if (!kt_store_snapshot_id_valid(snap->id)) {
		err = kt_seterr(errstr, errstr_size, KT_EUSAGE, "'%s' is not a valid snapshot id", snap->id);
		goto out;
	}
	err = kt_store_snapshot_to_json(snap, &text, errstr, errstr_size);
	if (err)
		goto out;
	size_t len = strlen(text);
	char *nl = realloc(text, len + 2);
	if (!nl) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "snapshot %s: out of memory", snap->id);
		goto out;
	}
	text = nl;
	memcpy(text + len, "\n", 2);
	err = kt_random_bytes(rnd, sizeof(rnd));
	if (err) {
		kt_seterr(errstr, errstr_size, err, "no randomness for a temp name: %s", kt_strerror(err));
		goto out;
	}
	/* The manifest is made durable under tmp/, where anything may be
	 * deleted, so a crash before the final rename leaves nothing that
	 * looks like a snapshot. */
	snprintf(name, sizeof(name), "tmp/%s.json.%02x%02x%02x%02x%02x%02x%02x%02x", snap->id,
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	if (join(tmp, sizeof(tmp), repo->path, name) || join(dir, sizeof(dir), repo->path, "snapshots") ||
	    join(tmpdir, sizeof(tmpdir), repo->path, "tmp") ||
	    snprintf(final, sizeof(final), "%s/%s.json", dir, snap->id) >= (int)sizeof(final)) {
		tmp[0] = '\0';
		err = kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "%s: path too long", repo->path);
		goto out;
	}
	/* Repositories whose tmp/ or snapshots/ was removed by hand still
	 * take commits. */
	if ((err = make_dir(tmpdir, repo->dir_mode)) != 0 || (err = make_dir(dir, repo->dir_mode)) != 0) {
		kt_seterr(errstr, errstr_size, err, "%s: cannot create tmp/ or snapshots/: %s", repo->path, kt_strerror(err));
		goto out;
	}
	err = kt_write_file_atomic(tmp, text, len + 1, repo->file_mode, errstr, errstr_size);
	if (err)
		goto out;
	if (chmod(tmp, repo->file_mode) < 0) {
		err = kt_seterr(errstr, errstr_size, -errno, "%s: chmod failed: %s", tmp, strerror(errno));
		goto out;
	}
	/* Only the lock holder writes snapshots/, so this check cannot race:
	 * a commit never replaces an existing snapshot. */
	if (lstat(final, &st) == 0) {
		err = kt_seterr(errstr, errstr_size, KT_EEXIST, "%s: a snapshot with this id already exists", final);
		goto out;
	}
	if (rename(tmp, final) < 0) {
		err = kt_seterr(errstr, errstr_size, -errno, "%s: rename into place failed: %s", final, strerror(errno));
		goto out;
	}
	renamed = 1;
	err = kt_fsync_parent_dir(final);
	if (err)
		kt_seterr(errstr, errstr_size, err, "%s: fsync of snapshots/ failed, the snapshot may not survive a crash: %s",
			  final, kt_strerror(err));
out:
	if (err && tmp[0] && !renamed)
		unlink(tmp);
	if (err && assigned && !renamed)
		snap->id[0] = '\0';
	free(text);
	return err;
}
