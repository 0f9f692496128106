/* Unit tests of src/store/repo.c: the repository marker, the writer lock,
 * topic directory names, segment paths and the snapshot commit protocol
 * (format/repository.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xxhash.h>

#include "kt_store.h"

struct fixture {
	char dir[64];       /* a fresh temporary directory */
	char repo_path[96]; /* dir/repo, not yet created */
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/kt_test_repo_XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->repo_path, sizeof(f->repo_path), "%s/repo", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct kt_store_repo *open_repo(const char *path, unsigned flags)
{
	struct kt_store_repo *repo = NULL;
	char errstr[512] = "";
	int err = kt_store_repo_open(&repo, path, flags, 0, errstr, sizeof(errstr));

	if (err)
		fail_msg("opening %s: %s", path, errstr);
	return repo;
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char path[2 * PATH_MAX];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

static unsigned mode_of(const char *dir, const char *name)
{
	char path[2 * PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* A minimal valid snapshot with one partition of fake segments. */
static struct kt_store_snapshot *small_snapshot(int64_t records)
{
	struct kt_store_snapshot *snap = kt_store_snapshot_create();
	struct kt_store_topic *topic;
	struct kt_store_partition *part;
	struct kt_store_segref ref = {
		.path = "segments/t/0/00000000000000000000-0000000000000001.kts",
		.first_offset = 0, .last_offset = records - 1, .min_ts = 1000, .max_ts = 2000,
		.records = (uint64_t)records, .raw_bytes = 10 * (uint64_t)records, .file_size = 100, .checksum = 42,
	};

	assert_non_null(snap);
	snap->source = strdup("localhost:9092");
	topic = kt_store_snapshot_add_topic(snap, "t", 1, 1);
	assert_non_null(topic);
	part = kt_store_topic_add_partition(topic, 0);
	assert_non_null(part);
	part->end_offset = records;
	assert_int_equal(kt_store_partition_add_segment(part, &ref), 0);
	return snap;
}

static void commit(struct kt_store_repo *repo, struct kt_store_snapshot *snap)
{
	char errstr[512] = "";

	if (kt_store_repo_commit_snapshot(repo, snap, errstr, sizeof(errstr)) != 0)
		fail_msg("commit: %s", errstr);
}

static void test_repo_create_then_reopen(void **state)
{
	struct fixture *f = *state;
	struct kt_store_repo *repo = open_repo(f->repo_path, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK);
	char real[PATH_MAX];

	assert_non_null(realpath(f->repo_path, real));
	assert_string_equal(kt_store_repo_path(repo), real);
	assert_int_equal(kt_store_repo_mode(repo), 0600);
	/* Owner-only unless asked otherwise. */
	assert_int_equal(mode_of(f->repo_path, "ktape-repository.json"), 0600);
	assert_int_equal(mode_of(f->repo_path, "snapshots"), 0700);
	assert_int_equal(mode_of(f->repo_path, "segments"), 0700);
	assert_int_equal(mode_of(f->repo_path, "tmp"), 0700);
	assert_int_equal(mode_of(f->repo_path, ""), 0700);
	kt_store_repo_destroy(repo);

	/* Reopening, with or without CREATE, finds the same repository. */
	repo = open_repo(f->repo_path, 0);
	kt_store_repo_destroy(repo);
	repo = open_repo(f->repo_path, KT_STORE_REPO_CREATE);
	kt_store_repo_destroy(repo);
	kt_store_repo_destroy(NULL);
}

static void test_repo_create_clears_marker_temp_of_a_killed_creator(void **state)
{
	struct fixture *f = *state;
	char leftover[PATH_MAX + 64];
	FILE *file;

	/* A creator killed between writing the marker's temp file and its
	 * rename leaves the directory holding only that temp file. */
	assert_int_equal(mkdir(f->repo_path, 0700), 0);
	snprintf(leftover, sizeof(leftover), "%s/ktape-repository.json.tmp-0123456789ab", f->repo_path);
	file = fopen(leftover, "w");
	assert_non_null(file);
	fputs("{\"format\": \"ktape-repo", file); /* torn */
	fclose(file);
	struct kt_store_repo *repo = open_repo(f->repo_path, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK);
	assert_int_equal(access(leftover, F_OK), -1);
	assert_int_equal(mode_of(f->repo_path, "ktape-repository.json"), 0600);
	kt_store_repo_destroy(repo);
}

static void test_repo_open_refuses_what_is_not_a_repository(void **state)
{
	struct fixture *f = *state;
	struct kt_store_repo *repo = NULL;
	char errstr[512];

	assert_int_equal(kt_store_repo_open(&repo, f->repo_path, 0, 0, errstr, sizeof(errstr)), KT_ENOTFOUND);
	assert_null(repo);
	/* An existing directory without a marker is not a repository... */
	assert_int_equal(kt_store_repo_open(&repo, f->dir, 0, 0, errstr, sizeof(errstr)), KT_ENOTFOUND);
	assert_non_null(strstr(errstr, "not a ktape repository"));
	/* ...and one holding someone's files does not become one. */
	write_text(f->dir, "notes.txt", "precious");
	assert_int_equal(kt_store_repo_open(&repo, f->dir, KT_STORE_REPO_CREATE, 0, errstr, sizeof(errstr)),
			 KT_EEXIST);
	assert_non_null(strstr(errstr, "notes.txt"));
	assert_null(repo);
}

static void test_repo_wider_mode_when_asked(void **state)
{
	struct fixture *f = *state;
	struct kt_store_repo *repo = NULL;
	char errstr[512] = "", rel[512], abs[PATH_MAX], dir[PATH_MAX];
	mode_t old = umask(022);

	assert_int_equal(kt_store_repo_open(&repo, f->repo_path, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK, 0660,
					    errstr, sizeof(errstr)), 0);
	/* The umask does not narrow what was asked for. */
	assert_int_equal(mode_of(f->repo_path, "ktape-repository.json"), 0660);
	assert_int_equal(mode_of(f->repo_path, "snapshots"), 0770);
	assert_int_equal(kt_store_repo_new_segment_path(repo, "t", 0, 0, rel, sizeof(rel), abs, sizeof(abs),
							errstr, sizeof(errstr)), 0);
	snprintf(dir, sizeof(dir), "%s/segments/t", f->repo_path);
	assert_int_equal(mode_of(dir, "0"), 0770);
	assert_int_equal(mode_of(f->repo_path, "segments/t"), 0770);
	kt_store_repo_destroy(repo);
	/* A later writer that does not say keeps the repository's mode. */
	repo = open_repo(f->repo_path, 0);
	assert_int_equal(kt_store_repo_mode(repo), 0660);
	kt_store_repo_destroy(repo);
	umask(old);
}

static void test_repo_refuses_newer_marker_version(void **state)
{
	struct fixture *f = *state;
	struct kt_store_repo *repo = open_repo(f->repo_path, KT_STORE_REPO_CREATE);
	char errstr[512];

	kt_store_repo_destroy(repo);
	repo = NULL;
	write_text(f->repo_path, "ktape-repository.json",
		   "{\"format\": \"ktape-repository\", \"version\": 2, \"id\": \"0123456789abcdef0123456789abcdef\", "
		   "\"created_ms\": 1}\n");
	assert_int_equal(kt_store_repo_open(&repo, f->repo_path, KT_STORE_REPO_LOCK, 0, errstr, sizeof(errstr)),
			 KT_EVERSION);
	assert_null(repo);
	assert_non_null(strstr(errstr, "repository format version 2 is newer than this ktape supports (1)"));
	/* CREATE must not overwrite a newer repository either. */
	assert_int_equal(kt_store_repo_open(&repo, f->repo_path, KT_STORE_REPO_CREATE, 0, errstr, sizeof(errstr)),
			 KT_EVERSION);
}

static void test_repo_rejects_corrupt_marker(void **state)
{
	struct fixture *f = *state;
	struct kt_store_repo *repo = open_repo(f->repo_path, KT_STORE_REPO_CREATE);
	char errstr[512];

	kt_store_repo_destroy(repo);
	repo = NULL;
	/* In the order format/repository.md section 2 gives: not a marker at
	 * all is KT_EMAGIC, a marker with a bad version KT_ECORRUPT. */
	write_text(f->repo_path, "ktape-repository.json", "{\"format\": \"ktape-repos");
	assert_int_equal(kt_store_repo_open(&repo, f->repo_path, 0, 0, errstr, sizeof(errstr)), KT_EMAGIC);
	assert_non_null(strstr(errstr, "ktape-repository.json"));
	write_text(f->repo_path, "ktape-repository.json", "{\"format\": \"ktape-repository\", \"version\": \"1\"}");
	assert_int_equal(kt_store_repo_open(&repo, f->repo_path, 0, 0, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_non_null(strstr(errstr, "version"));
	write_text(f->repo_path, "ktape-repository.json", "{\"format\": \"ktape-repository\", \"version\": 0}");
	assert_int_equal(kt_store_repo_open(&repo, f->repo_path, 0, 0, errstr, sizeof(errstr)), KT_ECORRUPT);
	write_text(f->repo_path, "ktape-repository.json", "{\"format\": \"something-else\", \"version\": 1}");
	assert_int_equal(kt_store_repo_open(&repo, f->repo_path, 0, 0, errstr, sizeof(errstr)), KT_EMAGIC);
	write_text(f->repo_path, "ktape-repository.json",
		   "{\"format\": \"ktape-repository\", \"version\": 1, \"id\": \"xyz\", \"created_ms\": 1}");
	assert_int_equal(kt_store_repo_open(&repo, f->repo_path, 0, 0, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_non_null(strstr(errstr, "\"id\""));
	assert_null(repo);
}

/* Forks a child that opens the repository with the writer lock and waits;
 * returns its pid once the lock is held. */
static pid_t fork_lock_holder(const char *path)
{
	int fds[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct kt_store_repo *repo = NULL;
		close(fds[0]);
		if (kt_store_repo_open(&repo, path, KT_STORE_REPO_LOCK, 0, NULL, 0) != 0)
			_exit(1);
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	return pid;
}

static void test_repo_lock_held_by_live_process_names_its_pid(void **state)
{
	struct fixture *f = *state;
	struct kt_store_repo *repo = open_repo(f->repo_path, KT_STORE_REPO_CREATE), *other = NULL;
	char errstr[512], want[64];
	pid_t pid;

	kt_store_repo_destroy(repo);
	repo = NULL;
	pid = fork_lock_holder(f->repo_path);
	assert_int_equal(kt_store_repo_open(&repo, f->repo_path, KT_STORE_REPO_LOCK, 0, errstr, sizeof(errstr)),
			 KT_ELOCKED);
	assert_null(repo);
	snprintf(want, sizeof(want), "locked by pid %ld", (long)pid);
	assert_non_null(strstr(errstr, want));
	/* Readers need no lock; a reader cannot commit. */
	repo = open_repo(f->repo_path, 0);
	assert_int_equal(kt_store_repo_lock(repo, errstr, sizeof(errstr)), KT_ELOCKED);
	struct kt_store_snapshot *snap = small_snapshot(3);
	assert_int_equal(kt_store_repo_commit_snapshot(repo, snap, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_non_null(strstr(errstr, "lock"));
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);

	/* Two handles in one process exclude each other too. */
	repo = open_repo(f->repo_path, KT_STORE_REPO_LOCK);
	assert_int_equal(kt_store_repo_open(&other, f->repo_path, KT_STORE_REPO_LOCK, 0, errstr, sizeof(errstr)),
			 KT_ELOCKED);
	snprintf(want, sizeof(want), "locked by pid %ld", (long)getpid());
	assert_non_null(strstr(errstr, want));
	kt_store_repo_destroy(repo);
}

static void test_repo_lock_of_killed_process_is_taken_over(void **state)
{
	struct fixture *f = *state;
	struct kt_store_repo *repo = open_repo(f->repo_path, KT_STORE_REPO_CREATE);
	char path[PATH_MAX], content[128] = "", want[64];
	pid_t pid;
	FILE *fp;

	kt_store_repo_destroy(repo);
	pid = fork_lock_holder(f->repo_path);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* The dead holder's pid is still in the file; the lock is not. */
	repo = open_repo(f->repo_path, KT_STORE_REPO_LOCK);
	snprintf(path, sizeof(path), "%s/lock", f->repo_path);
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(content, sizeof(content), fp));
	fclose(fp);
	snprintf(want, sizeof(want), "%ld ", (long)getpid());
	assert_true(strncmp(content, want, strlen(want)) == 0);
	struct kt_store_snapshot *snap = small_snapshot(3);
	commit(repo, snap);
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
}

/* The directory component a topic's segments go into. */
static void topic_dir(struct kt_store_repo *repo, const char *topic, char *out, size_t size)
{
	char rel[1024], abs[PATH_MAX], errstr[512] = "", real[PATH_MAX], parent[PATH_MAX];
	const char *start, *end;
	int comps = 0;

	if (kt_store_repo_new_segment_path(repo, topic, 7, 1234, rel, sizeof(rel), abs, sizeof(abs),
					   errstr, sizeof(errstr)) != 0)
		fail_msg("segment path for a %zu-byte topic: %s", strlen(topic), errstr);
	for (const char *p = rel; *p; p++)
		comps += *p == '/';
	assert_int_equal(comps, 3); /* segments/<topic-dir>/7/<file> */
	assert_true(strncmp(rel, "segments/", 9) == 0);
	start = rel + 9;
	end = strchr(start, '/');
	assert_true((size_t)(end - start) < size);
	memcpy(out, start, (size_t)(end - start));
	out[end - start] = '\0';
	assert_true(strlen(out) >= 1 && strlen(out) <= 200);
	assert_string_not_equal(out, ".");
	assert_string_not_equal(out, "..");
	assert_int_not_equal(out[0], '.');
	assert_true(strncmp(end, "/7/00000000000000001234-", 24) == 0);
	/* The directory really is inside the repository's segments/. */
	snprintf(parent, sizeof(parent), "%.*s", (int)(strrchr(abs, '/') - abs), abs);
	assert_non_null(realpath(parent, real));
	char want[PATH_MAX];
	snprintf(want, sizeof(want), "%s/segments/%s/7", kt_store_repo_path(repo), out);
	assert_string_equal(real, want);
}

static void test_repo_topic_dirs_stay_inside_the_repository(void **state)
{
	struct fixture *f = *state;
	struct kt_store_repo *repo = open_repo(f->repo_path, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK);
	static const struct { const char *topic, *dir; } exact[] = {
		{ "orders", "orders" }, { ".", "%2E" }, { "..", "%2E." }, { "a/b", "a%2Fb" },
		{ "../../etc", "%2E.%2F..%2Fetc" }, { "%", "%25" }, { "~x", "%7Ex" }, { "a.b_c-D9", "a.b_c-D9" },
		{ ".hidden", "%2Ehidden" }, { "sp ace\n", "sp%20ace%0A" }, { "\xff", "%FF" },
	};
	char dirs[16][256], got[256];
	char long1[250], long2[250], long3[250];

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
		topic_dir(repo, exact[i].topic, dirs[i], sizeof(dirs[i]));
		assert_string_equal(dirs[i], exact[i].dir);
	}
	/* 249-byte names that escape to more than 200 bytes keep 183 bytes,
	 * '~' and the XXH3-64 of the full name; names that differ only after
	 * the kept part still get different directories. */
	memset(long1, '/', 249);
	long1[249] = '\0';
	memcpy(long2, long1, sizeof(long1));
	long2[248] = '\x01';
	for (size_t i = 0; i < 249; i++)
		long3[i] = (char)(1 + i % 254);
	long3[249] = '\0';
	topic_dir(repo, long1, dirs[11], sizeof(dirs[11]));
	topic_dir(repo, long2, dirs[12], sizeof(dirs[12]));
	topic_dir(repo, long3, dirs[13], sizeof(dirs[13]));
	assert_int_equal(strlen(dirs[11]), 200);
	assert_int_equal(dirs[11][183], '~');
	snprintf(got, sizeof(got), "%016llx", (unsigned long long)XXH3_64bits(long1, 249));
	assert_string_equal(dirs[11] + 184, got);
	assert_string_not_equal(dirs[11], dirs[12]);
	/* A 200-byte escaped name is kept whole. */
	char exact200[201];
	memset(exact200, 'x', 200);
	exact200[200] = '\0';
	topic_dir(repo, exact200, dirs[14], sizeof(dirs[14]));
	assert_string_equal(dirs[14], exact200);
	for (size_t i = 0; i < 15; i++)
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(dirs[i], dirs[j]);

	/* Names no Kafka could have are refused, not mangled. */
	char rel[512], abs[PATH_MAX], errstr[256], too_long[251];
	memset(too_long, 'a', 250);
	too_long[250] = '\0';
	assert_int_equal(kt_store_repo_new_segment_path(repo, "", 0, 0, rel, sizeof(rel), abs, sizeof(abs),
							errstr, sizeof(errstr)), KT_EUSAGE);
	assert_int_equal(kt_store_repo_new_segment_path(repo, too_long, 0, 0, rel, sizeof(rel), abs, sizeof(abs),
							errstr, sizeof(errstr)), KT_EUSAGE);
	assert_int_equal(kt_store_repo_new_segment_path(repo, "t", -1, 0, rel, sizeof(rel), abs, sizeof(abs),
							errstr, sizeof(errstr)), KT_EUSAGE);
	kt_store_repo_destroy(repo);
}

static void test_repo_segment_paths_are_unique_and_well_formed(void **state)
{
	struct fixture *f = *state;
	struct kt_store_repo *repo = open_repo(f->repo_path, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK);
	char rel1[512], rel2[512], abs[PATH_MAX], errstr[256], want[PATH_MAX];

	assert_int_equal(kt_store_repo_new_segment_path(repo, "t", 12, 9223372036854775807LL, rel1, sizeof(rel1),
							abs, sizeof(abs), errstr, sizeof(errstr)), 0);
	assert_int_equal(strlen(rel1), strlen("segments/t/12/") + 20 + 1 + 16 + 4);
	assert_true(strncmp(rel1, "segments/t/12/09223372036854775807-", 35) == 0);
	assert_int_equal(strspn(rel1 + 35, "0123456789abcdef"), 16);
	assert_string_equal(rel1 + 51, ".kts");
	snprintf(want, sizeof(want), "%s/%s", kt_store_repo_path(repo), rel1);
	assert_string_equal(abs, want);
	assert_int_equal(kt_store_repo_new_segment_path(repo, "t", 12, 9223372036854775807LL, rel2, sizeof(rel2),
							abs, sizeof(abs), errstr, sizeof(errstr)), 0);
	assert_string_not_equal(rel1, rel2);
	/* A buffer too small is an error, never a truncated path. */
	assert_int_equal(kt_store_repo_new_segment_path(repo, "t", 12, 0, rel1, 20, abs, sizeof(abs),
							errstr, sizeof(errstr)), -ENAMETOOLONG);
	kt_store_repo_destroy(repo);
}

static void test_repo_abs_path_refuses_escapes(void **state)
{
	struct fixture *f = *state;
	struct kt_store_repo *repo = open_repo(f->repo_path, KT_STORE_REPO_CREATE);
	static const char *const bad[] = { "/etc/passwd", "..", "../x", "segments/../../x", "segments/..", "" };
	char abs[PATH_MAX], want[PATH_MAX];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(kt_store_repo_abs_path(repo, bad[i], abs, sizeof(abs)), KT_ECORRUPT);
	assert_int_equal(kt_store_repo_abs_path(repo, "segments/a..b/0/x.kts", abs, sizeof(abs)), 0);
	snprintf(want, sizeof(want), "%s/segments/a..b/0/x.kts", kt_store_repo_path(repo));
	assert_string_equal(abs, want);
	assert_int_equal(kt_store_repo_abs_path(repo, "segments/x", abs, 8), -ENAMETOOLONG);
	kt_store_repo_destroy(repo);
}

static void test_repo_lists_newest_first_and_loads_latest(void **state)
{
	struct fixture *f = *state;
	struct kt_store_repo *repo = open_repo(f->repo_path, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK);
	struct kt_store_snapshot *snaps[4], *loaded = NULL;
	char errstr[512] = "", **ids = NULL;
	size_t count = 9;

	assert_int_equal(kt_store_repo_list_snapshots(repo, &ids, &count, errstr, sizeof(errstr)), 0);
	assert_int_equal(count, 0);
	assert_int_equal(kt_store_repo_load_snapshot(repo, "latest", &loaded, errstr, sizeof(errstr)), KT_ENOTFOUND);
	/* Committed in quick succession, within one millisecond or not: the
	 * ids must still sort in commit order. */
	for (int i = 0; i < 4; i++) {
		snaps[i] = small_snapshot(i + 1);
		commit(repo, snaps[i]);
		assert_int_equal(strlen(snaps[i]->id), 28);
		assert_int_equal(snaps[i]->id[8], 'T');
		assert_int_equal(snaps[i]->id[18], 'Z');
		assert_int_equal(snaps[i]->id[19], '-');
		assert_int_equal(strspn(snaps[i]->id + 20, "0123456789abcdef"), 8);
	}
	assert_int_equal(kt_store_repo_list_snapshots(repo, &ids, &count, errstr, sizeof(errstr)), 0);
	assert_int_equal(count, 4);
	for (int i = 0; i < 4; i++)
		assert_string_equal(ids[i], snaps[3 - i]->id);
	kt_store_strv_free(ids, count);

	assert_int_equal(kt_store_repo_load_snapshot(repo, "latest", &loaded, errstr, sizeof(errstr)), 0);
	assert_string_equal(loaded->id, snaps[3]->id);
	assert_int_equal(loaded->topics[0].partitions[0].records, 4);
	kt_store_snapshot_destroy(loaded);
	assert_int_equal(kt_store_repo_load_snapshot(repo, NULL, &loaded, errstr, sizeof(errstr)), 0);
	assert_string_equal(loaded->id, snaps[3]->id);
	kt_store_snapshot_destroy(loaded);
	assert_int_equal(kt_store_repo_load_snapshot(repo, snaps[1]->id, &loaded, errstr, sizeof(errstr)), 0);
	assert_int_equal(loaded->topics[0].partitions[0].records, 2);
	kt_store_snapshot_destroy(loaded);
	loaded = NULL;
	assert_int_equal(kt_store_repo_load_snapshot(repo, "20200101T000000000Z-00000000", &loaded, errstr,
						     sizeof(errstr)), KT_ENOTFOUND);
	assert_int_equal(kt_store_repo_load_snapshot(repo, "../ktape-repository", &loaded, errstr, sizeof(errstr)),
			 KT_EUSAGE);
	assert_null(loaded);
	/* A given id that exists already is never overwritten. */
	struct kt_store_snapshot *dup = small_snapshot(9);
	memcpy(dup->id, snaps[2]->id, sizeof(dup->id));
	assert_int_equal(kt_store_repo_commit_snapshot(repo, dup, errstr, sizeof(errstr)), KT_EEXIST);
	kt_store_snapshot_destroy(dup);
	for (int i = 0; i < 4; i++)
		kt_store_snapshot_destroy(snaps[i]);
	kt_store_repo_destroy(repo);
}

static void test_repo_list_ignores_temp_files_of_a_crashed_commit(void **state)
{
	struct fixture *f = *state;
	struct kt_store_repo *repo = open_repo(f->repo_path, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK);
	struct kt_store_snapshot *snap = small_snapshot(5), *loaded = NULL;
	char errstr[512], **ids = NULL, dir[PATH_MAX];
	size_t count = 0;

	commit(repo, snap);
	/* What a crash before the rename leaves (a temp file in tmp/), and
	 * what kt_write_file_atomic or an editor leave next to manifests. */
	write_text(f->repo_path, "tmp/20991231T235959999Z-ffffffff.json.0011223344556677", "{\"format\":");
	write_text(f->repo_path, "snapshots/20991231T235959999Z-ffffffff.json.tmp-001122", "{");
	write_text(f->repo_path, "snapshots/.20991231T235959999Z-ffffffff.json", "{");
	write_text(f->repo_path, "snapshots/20991231T235959999Z-ffffffff.json~", "{");
	snprintf(dir, sizeof(dir), "%s/snapshots/20991231T235959999Z-eeeeeeee.json", f->repo_path);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(kt_store_repo_list_snapshots(repo, &ids, &count, errstr, sizeof(errstr)), 0);
	assert_int_equal(count, 1);
	assert_string_equal(ids[0], snap->id);
	kt_store_strv_free(ids, count);
	assert_int_equal(kt_store_repo_load_snapshot(repo, "latest", &loaded, errstr, sizeof(errstr)), 0);
	assert_string_equal(loaded->id, snap->id);
	kt_store_snapshot_destroy(loaded);
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
}

static int dir_entries(const char *dir, const char *name)
{
	char path[2 * PATH_MAX];
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	DIR *d = opendir(path);
	assert_non_null(d);
	for (struct dirent *de; (de = readdir(d)) != NULL;)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_repo_failed_commit_leaves_earlier_snapshots_loadable(void **state)
{
	struct fixture *f = *state;
	struct kt_store_repo *repo = open_repo(f->repo_path, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK);
	struct kt_store_snapshot *first = small_snapshot(5), *second = small_snapshot(6), *loaded = NULL;
	char errstr[512], path[PATH_MAX];

	commit(repo, first);
	/* Failure at the rename: the target path is taken by a directory
	 * (works as root, unlike a read-only directory). */
	snprintf(second->id, sizeof(second->id), "20991231T235959999Z-00000001");
	snprintf(path, sizeof(path), "%s/snapshots/%s.json", f->repo_path, second->id);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_not_equal(kt_store_repo_commit_snapshot(repo, second, errstr, sizeof(errstr)), 0);
	assert_non_null(strstr(errstr, second->id));
	assert_int_equal(dir_entries(f->repo_path, "tmp"), 0);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(kt_store_repo_load_snapshot(repo, "latest", &loaded, errstr, sizeof(errstr)), 0);
	assert_string_equal(loaded->id, first->id);
	kt_store_snapshot_destroy(loaded);

	/* Failure at the temp file: tmp/ is a file, not a directory. */
	snprintf(path, sizeof(path), "%s/tmp", f->repo_path);
	assert_int_equal(rmdir(path), 0);
	write_text(f->repo_path, "tmp", "in the way");
	second->id[0] = '\0';
	assert_int_not_equal(kt_store_repo_commit_snapshot(repo, second, errstr, sizeof(errstr)), 0);
	assert_string_equal(second->id, ""); /* no id for what was not committed */
	assert_int_equal(kt_store_repo_load_snapshot(repo, "latest", &loaded, errstr, sizeof(errstr)), 0);
	assert_string_equal(loaded->id, first->id);
	kt_store_snapshot_destroy(loaded);

	/* Failure in validation: nothing is written at all. */
	assert_int_equal(unlink(path), 0);
	free(second->topics[0].partitions[0].segments[0].path);
	second->topics[0].partitions[0].segments[0].path = strdup("../outside.kts");
	assert_int_equal(kt_store_repo_commit_snapshot(repo, second, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_int_equal(dir_entries(f->repo_path, "snapshots"), 1);

	kt_store_snapshot_destroy(first);
	kt_store_snapshot_destroy(second);
	kt_store_repo_destroy(repo);
}

static void test_repo_load_reports_a_manifest_that_does_not_parse(void **state)
{
	struct fixture *f = *state;
	struct kt_store_repo *repo = open_repo(f->repo_path, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK);
	struct kt_store_snapshot *snap = small_snapshot(5), *loaded = NULL;
	char errstr[512];

	commit(repo, snap);
	/* The newest manifest is damaged: "latest" reports it rather than
	 * quietly restoring older data. */
	write_text(f->repo_path, "snapshots/20991231T235959999Z-00000002.json", "{\"format\": \"ktape-snapshot\", ");
	assert_int_equal(kt_store_repo_load_snapshot(repo, "latest", &loaded, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_null(loaded);
	assert_non_null(strstr(errstr, "snapshots/20991231T235959999Z-00000002.json"));
	/* A manifest whose id is not its file name is damage too. */
	char *json = NULL;
	assert_int_equal(kt_store_snapshot_to_json(snap, &json, errstr, sizeof(errstr)), 0);
	write_text(f->repo_path, "snapshots/20991231T235959999Z-00000002.json", json);
	free(json);
	assert_int_equal(kt_store_repo_load_snapshot(repo, "latest", &loaded, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_non_null(strstr(errstr, snap->id));
	assert_int_equal(kt_store_repo_load_snapshot(repo, snap->id, &loaded, errstr, sizeof(errstr)), 0);
	kt_store_snapshot_destroy(loaded);
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_repo_create_then_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_create_clears_marker_temp_of_a_killed_creator, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_open_refuses_what_is_not_a_repository, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_wider_mode_when_asked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_refuses_newer_marker_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_rejects_corrupt_marker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_lock_held_by_live_process_names_its_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_lock_of_killed_process_is_taken_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_topic_dirs_stay_inside_the_repository, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_segment_paths_are_unique_and_well_formed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_abs_path_refuses_escapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_lists_newest_first_and_loads_latest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_list_ignores_temp_files_of_a_crashed_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_failed_commit_leaves_earlier_snapshots_loadable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_load_reports_a_manifest_that_does_not_parse, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
