/*
 * repo.c - the backup repository (format/repository.md): the marker, the
 * writer lock, segment paths with safely encoded topic directories, and the
 * snapshot manifests with their commit protocol.
 */
#include "kt_store.h"
#include "repo_priv.h"
#include "s3_repo_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
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

/* The lease of the writer lock on object storage (format/object-storage.md
 * section 6), renewed every third of it while held. */
#define S3_LEASE_MS_DEFAULT 120000

struct kt_store_repo {
	char path[PATH_MAX]; /* absolute, no trailing slash; or the s3:// URL */
	unsigned file_mode;
	unsigned dir_mode;
	int lock_fd; /* -1 when the writer lock is not held */
	struct kt_store_tar *tar; /* opened from an archive: read-only */

	/* A repository on object storage: paths are object URLs, and the
	 * writer lock is a leased object instead of a flock. */
	int s3;
	int s3_locked;             /* the lease is ours */
	char lock_token[33];       /* names our lease in the lock object */
	int64_t lease_ms;
	pthread_t lease_thread;
	int lease_thread_started;
	pthread_mutex_t lease_mu;  /* guards lease_quit and lease_lost */
	pthread_cond_t lease_cv;
	int lease_quit;
	int lease_lost;            /* a renewal found the lock taken over */
};

static int lock_held(const struct kt_store_repo *repo)
{
	return repo->s3 ? repo->s3_locked : repo->lock_fd >= 0;
}

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
	if (repo->s3) {
		/* Created once: a racing creator's marker serves as well as ours
		 * (check_marker reads whichever won). */
		err = kt_s3_url_write(path, text, len + 1, 1, errstr, errstr_size);
		if (err == KT_EEXIST)
			err = 0;
		goto out;
	}
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

/* The lock object's contents: who holds the lease and until when. */
struct s3_lease {
	long pid;
	char host[256];
	char token[33];
	int64_t expires_ms;
};

static int lease_parse(const char *text, size_t len, struct s3_lease *lease)
{
	json_t *obj = json_loadb(text, len, 0, NULL);
	const char *host, *token;
	int ok;

	memset(lease, 0, sizeof(*lease));
	host = json_string_value(json_object_get(obj, "host"));
	token = json_string_value(json_object_get(obj, "token"));
	ok = json_is_integer(json_object_get(obj, "pid")) && host && token &&
	     json_is_integer(json_object_get(obj, "expires_ms"));
	if (ok) {
		lease->pid = (long)json_integer_value(json_object_get(obj, "pid"));
		lease->expires_ms = json_integer_value(json_object_get(obj, "expires_ms"));
		snprintf(lease->host, sizeof(lease->host), "%s", host);
		snprintf(lease->token, sizeof(lease->token), "%s", token);
	}
	json_decref(obj);
	return ok ? 0 : KT_ECORRUPT;
}

static void our_host(char *host, size_t size)
{
	if (gethostname(host, size) < 0)
		snprintf(host, size, "unknown");
	host[size - 1] = '\0';
}

/* Reads the lock object: 0 with *lease, KT_ENOTFOUND, or another error. */
static int lease_read(const char *url, struct s3_lease *lease, char *errstr, size_t errstr_size)
{
	char *text = NULL;
	size_t len = 0;
	int err;

	err = kt_store_read_whole_file(url, MAX_MARKER_BYTES, &text, &len, errstr, errstr_size);
	if (err)
		return err;
	err = lease_parse(text, len, lease);
	free(text);
	if (err)
		/* Unreadable: treated as expired, so a damaged lock object
		 * cannot wedge the repository forever. */
		lease->expires_ms = 0;
	return 0;
}

/* Writes our lease, valid for repo->lease_ms from now. */
static int lease_write(struct kt_store_repo *repo, const char *url, int if_absent,
		       char *errstr, size_t errstr_size)
{
	char host[256], *text;
	int64_t now = kt_wall_ms();
	json_t *obj;
	int err;

	our_host(host, sizeof(host));
	obj = json_pack("{s:I, s:s, s:s, s:I, s:I}", "pid", (json_int_t)getpid(), "host", host,
			"token", repo->lock_token, "acquired_ms", (json_int_t)now,
			"expires_ms", (json_int_t)(now + repo->lease_ms));
	text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	if (!text)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "%s: out of memory", url);
	err = kt_s3_url_write(url, text, strlen(text), if_absent, errstr, errstr_size);
	free(text);
	return err;
}

/* Renews the lease every third of it until the repository is closed.  A
 * renewal that finds another token in the lock object (our lease ran out
 * while this process stalled, and another writer took it) stops, and the
 * next commit refuses. */
static void *lease_renewer(void *arg)
{
	struct kt_store_repo *repo = arg;
	char url[PATH_MAX + 8], msg[512];

	snprintf(url, sizeof(url), "%s/lock", repo->path);
	pthread_mutex_lock(&repo->lease_mu);
	while (!repo->lease_quit) {
		struct timespec until;
		struct s3_lease lease;
		int rc;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)(repo->lease_ms / 3000);
		until.tv_nsec += (long)(repo->lease_ms / 3 % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		rc = pthread_cond_timedwait(&repo->lease_cv, &repo->lease_mu, &until);
		if (repo->lease_quit || rc != ETIMEDOUT)
			continue;
		pthread_mutex_unlock(&repo->lease_mu);
		/* A failed request is retried at the next turn: the lease
		 * still has two thirds of its time. */
		rc = lease_read(url, &lease, msg, sizeof(msg));
		int lost = rc == KT_ENOTFOUND || (rc == 0 && strcmp(lease.token, repo->lock_token) != 0);
		if (rc == 0 && !lost)
			(void)lease_write(repo, url, 0, msg, sizeof(msg));
		pthread_mutex_lock(&repo->lease_mu);
		if (lost) {
			repo->lease_lost = 1;
			break;
		}
	}
	pthread_mutex_unlock(&repo->lease_mu);
	return NULL;
}

/* The writer lock on object storage (format/object-storage.md section 6):
 * an object created only if absent, holding a lease.  A lease that expired,
 * or whose holder ran on this host and is dead, is taken over. */
static int lock_s3(struct kt_store_repo *repo, char *errstr, size_t errstr_size)
{
	char url[PATH_MAX + 8], host[256];
	unsigned char rnd[16];
	struct s3_lease lease;
	const char *env = getenv("KTAPE_S3_LOCK_LEASE_MS");
	int err;

	if (repo->tar)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "%s is read-only", repo->path);
	repo->lease_ms = env && atoll(env) >= 1000 ? atoll(env) : S3_LEASE_MS_DEFAULT;
	err = kt_random_bytes(rnd, sizeof(rnd));
	if (err)
		return kt_seterr(errstr, errstr_size, err, "no randomness for a lock token: %s", kt_strerror(err));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(repo->lock_token + 2 * i, 3, "%02x", rnd[i]);
	snprintf(url, sizeof(url), "%s/lock", repo->path);
	our_host(host, sizeof(host));
	for (int attempt = 0;; attempt++) {
		err = lease_write(repo, url, 1, errstr, errstr_size);
		if (err != KT_EEXIST)
			break;
		err = lease_read(url, &lease, errstr, errstr_size);
		if (err == KT_ENOTFOUND && attempt < 3)
			continue; /* released meanwhile */
		if (err)
			return err;
		int dead = strcmp(lease.host, host) == 0 && lease.pid > 0 && kill((pid_t)lease.pid, 0) < 0 &&
			   errno == ESRCH;
		if (attempt >= 3 || (!dead && lease.expires_ms >= kt_wall_ms()))
			return kt_seterr(errstr, errstr_size, KT_ELOCKED,
					 "repository %s is locked by pid %ld on host %s: another ktape is writing to it "
					 "(its lease in %s runs %lld s more and is renewed while it runs)",
					 repo->path, lease.pid, lease.host[0] ? lease.host : "(unknown)", url,
					 (long long)((lease.expires_ms - kt_wall_ms()) / 1000));
		/* Stale: its holder is gone.  Delete it and race for a fresh
		 * create; If-None-Match lets exactly one taker win. */
		err = kt_s3_url_remove(url, errstr, errstr_size);
		if (err)
			return err;
	}
	if (err)
		return err;
	/* On a store that ignores If-None-Match two creators may both have
	 * "succeeded": the one whose token is there holds the lock. */
	err = lease_read(url, &lease, errstr, errstr_size);
	if (!err && strcmp(lease.token, repo->lock_token) != 0)
		err = kt_seterr(errstr, errstr_size, KT_ELOCKED,
				"repository %s is locked by pid %ld on host %s: it took the lock at the same moment",
				repo->path, lease.pid, lease.host);
	if (err)
		return err;
	repo->lease_quit = repo->lease_lost = 0;
	err = -pthread_create(&repo->lease_thread, NULL, lease_renewer, repo);
	if (err) {
		(void)kt_s3_url_remove(url, NULL, 0);
		return kt_seterr(errstr, errstr_size, err, "cannot start the lease renewal thread: %s", kt_strerror(err));
	}
	repo->lease_thread_started = 1;
	repo->s3_locked = 1;
	return 0;
}

/* Stops renewing and deletes the lock object if it is still ours. */
static void unlock_s3(struct kt_store_repo *repo)
{
	char url[PATH_MAX + 8], msg[256];
	struct s3_lease lease;

	if (repo->lease_thread_started) {
		pthread_mutex_lock(&repo->lease_mu);
		repo->lease_quit = 1;
		pthread_cond_broadcast(&repo->lease_cv);
		pthread_mutex_unlock(&repo->lease_mu);
		pthread_join(repo->lease_thread, NULL);
		repo->lease_thread_started = 0;
	}
	if (!repo->s3_locked)
		return;
	repo->s3_locked = 0;
	snprintf(url, sizeof(url), "%s/lock", repo->path);
	if (lease_read(url, &lease, msg, sizeof(msg)) == 0 && strcmp(lease.token, repo->lock_token) == 0)
		(void)kt_s3_url_remove(url, msg, sizeof(msg));
}

/* Before a commit: the lease must still be ours, as the lock object says
 * now, not as the renewal thread last saw it. */
static int check_lease(struct kt_store_repo *repo, char *errstr, size_t errstr_size)
{
	char url[PATH_MAX + 8];
	struct s3_lease lease;
	int lost, err;

	pthread_mutex_lock(&repo->lease_mu);
	lost = repo->lease_lost;
	pthread_mutex_unlock(&repo->lease_mu);
	snprintf(url, sizeof(url), "%s/lock", repo->path);
	err = lost ? 0 : lease_read(url, &lease, errstr, errstr_size);
	if (err && err != KT_ENOTFOUND)
		return err;
	if (lost || err == KT_ENOTFOUND || strcmp(lease.token, repo->lock_token) != 0)
		return kt_seterr(errstr, errstr_size, KT_ELOCKED,
				 "repository %s: this process's writer lock lapsed (another writer took over %s); "
				 "the snapshot is not committed", repo->path, url);
	return 0;
}

int kt_store_repo_lock(struct kt_store_repo *repo, char *errstr, size_t errstr_size)
{
	char path[PATH_MAX], info[320], host[256];
	int fd, err = 0;

	if (lock_held(repo))
		return 0;
	if (repo->s3)
		return lock_s3(repo, errstr, errstr_size);
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

/* A repository on object storage: the marker is an object, created last
 * (only into an empty prefix) under the writer lock, as on disk. */
static int open_s3(struct kt_store_repo *repo, const char *url, unsigned flags,
		   char *errstr, size_t errstr_size)
{
	struct kt_s3_location loc;
	struct kt_s3_client *s3 = NULL;
	struct kt_s3_listed *objs = NULL;
	size_t n_objs = 0;
	char marker[PATH_MAX], dir[PATH_MAX];
	uint64_t size;
	int err;

	err = kt_s3_url_parse(url, &loc, errstr, errstr_size);
	if (err)
		return err;
	repo->s3 = 1;
	snprintf(repo->path, sizeof(repo->path), "s3://%s%s%s", loc.bucket, loc.prefix[0] ? "/" : "",
		 loc.prefix);
	/* Missing credentials or a malformed endpoint are reported now,
	 * naming the setting, rather than by the first request. */
	err = kt_s3_pool_get(loc.bucket, &s3, errstr, errstr_size);
	if (err)
		return err;
	kt_s3_pool_put(s3);
	if (join(marker, sizeof(marker), repo->path, MARKER_NAME) || join(dir, sizeof(dir), repo->path, ""))
		return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "%s: URL too long", url);
	err = kt_s3_url_head(marker, &size, errstr, errstr_size);
	if (err == KT_ENOTFOUND) {
		if (!(flags & KT_STORE_REPO_CREATE))
			return kt_seterr(errstr, errstr_size, KT_ENOTFOUND,
					 "%s is not a ktape repository (it has no %s)", repo->path, MARKER_NAME);
		err = lock_s3(repo, errstr, errstr_size);
		if (err)
			return err;
		/* Only our own lock object may be there: anything else under
		 * the prefix is someone's data. */
		err = kt_s3_url_list(dir, &objs, &n_objs, errstr, errstr_size);
		for (size_t i = 0; !err && i < n_objs; i++)
			if (strcmp(objs[i].rel, "lock") != 0 && strcmp(objs[i].rel, MARKER_NAME) != 0)
				err = kt_seterr(errstr, errstr_size, KT_EEXIST,
						"%s is not empty and not a ktape repository (it holds \"%s\"); "
						"refusing to create a repository there", repo->path, objs[i].rel);
		kt_s3_listed_free(objs, n_objs);
		if (!err)
			err = write_marker(repo, errstr, errstr_size);
	}
	if (err)
		return err;
	err = check_marker(marker, errstr, errstr_size);
	if (err)
		return err;
	if (flags & KT_STORE_REPO_LOCK)
		return kt_store_repo_lock(repo, errstr, errstr_size);
	unlock_s3(repo); /* taken only to create */
	return 0;
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
	pthread_mutex_init(&repo->lease_mu, NULL);
	pthread_cond_init(&repo->lease_cv, NULL);

	if (kt_s3_url_is_s3(path)) {
		err = open_s3(repo, path, flags, errstr, errstr_size);
		if (err)
			goto fail;
		*out = repo;
		return 0;
	}

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
			err = kt_seterr(errstr, errstr_size, KT_ENOTFOUND,
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
	if (repo->s3)
		unlock_s3(repo);
	pthread_cond_destroy(&repo->lease_cv);
	pthread_mutex_destroy(&repo->lease_mu);
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
	/* Object storage has no directories: a key is all there is. */
	if (repo->s3)
		return 0;
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
	/* No snapshots: no array either, as callers that free only what
	 * they counted expect. */
	if (n == 0) {
		free(v);
		v = NULL;
	}
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

/* An id (format/repository.md section 3) that sorts after every id already
 * in the repository, even if the clock stepped back, so that "latest"
 * always means the last committed snapshot. */
int kt_store_repo_new_snapshot_id(struct kt_store_repo *repo, char *id, size_t id_size,
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
	snprintf(id, id_size, "%04d%02d%02dT%02d%02d%02d%03dZ-%02x%02x%02x%02x",
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

	if (!lock_held(repo))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "repository %s: committing a snapshot requires the writer lock", repo->path);
	if (!snap->id[0]) {
		err = kt_store_repo_new_snapshot_id(repo, snap->id, sizeof(snap->id), errstr, errstr_size);
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
	if (repo->s3) {
		/* One PUT, created only if absent, is the commit point; the
		 * segments it names were all acknowledged before this call
		 * (format/object-storage.md section 3). */
		err = check_lease(repo, errstr, errstr_size);
		if (!err && snprintf(final, sizeof(final), "%s/snapshots/%s.json", repo->path, snap->id) >=
				    (int)sizeof(final))
			err = kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "%s: URL too long", repo->path);
		if (!err)
			err = kt_s3_url_write(final, text, len + 1, 1, errstr, errstr_size);
		if (err == KT_EEXIST)
			kt_seterr(errstr, errstr_size, err, "%s: a snapshot with this id already exists", final);
		renamed = !err;
		goto out;
	}
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
