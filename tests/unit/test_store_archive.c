/* Unit tests of snapshot export and import (format/archive.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo_fixture.h"

/* Reads every record of every partition of a snapshot into a digest, so two
 * repositories can be compared record for record. */
static uint64_t snapshot_digest(struct kt_store_repo *repo, const char *id, uint64_t *records)
{
	struct kt_store_snapshot *snap = NULL;
	char errstr[512];
	uint64_t h = 1469598103934665603ULL;

	*records = 0;
	assert_int_equal(kt_store_repo_load_snapshot(repo, id, &snap, errstr, sizeof(errstr)), 0);
	for (size_t t = 0; t < snap->topic_count; t++)
		for (size_t p = 0; p < snap->topics[t].n_partitions; p++) {
			struct kt_store_scan *scan = NULL;
			const struct kt_record *rec;
			int r;

			assert_int_equal(kt_store_scan_create(&scan, repo, &snap->topics[t].partitions[p], NULL,
							      errstr, sizeof(errstr)), 0);
			while ((r = kt_store_scan_next(scan, &rec, errstr, sizeof(errstr))) == 1) {
				const unsigned char *v = rec->value;
				h = (h ^ (uint64_t)rec->offset) * 1099511628211ULL;
				for (size_t i = 0; i < rec->value_len; i++)
					h = (h ^ v[i]) * 1099511628211ULL;
				(*records)++;
			}
			assert_int_equal(r, 0);
			kt_store_scan_destroy(scan);
		}
	kt_store_snapshot_destroy(snap);
	return h;
}

static void test_archive_round_trip_preserves_every_record(void **state)
{
	struct fixture_repo fx;
	char dst[256], tarpath[300], errstr[512], id[64];
	struct kt_store_repo *a, *b = NULL;
	struct kt_store_snapshot *snap;
	uint64_t ra, rb;

	(void)state;
	assert_int_equal(fixture_repo_open(&fx, "arch_src", 3, 300), 0);
	a = fx.repo;
	snap = fx.snap;
	assert_non_null(snap);
	fixture_tmpdir(dst, sizeof(dst), "arch_dst");
	snprintf(tarpath, sizeof(tarpath), "%s/snap.tar", dst);
	for (int compression = KT_ARCHIVE_NONE; compression <= KT_ARCHIVE_GZIP; compression++) {
		char repo_b[300];
		int fd = open(tarpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		assert_true(fd >= 0);
		assert_int_equal(kt_store_repo_export(a, snap->id, fd, compression, errstr, sizeof(errstr)), 0);
		close(fd);
		snprintf(repo_b, sizeof(repo_b), "%s/repo%d", dst, compression);
		assert_int_equal(kt_store_repo_open(&b, repo_b, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK, 0, errstr, sizeof(errstr)), 0);
		fd = open(tarpath, O_RDONLY);
		assert_int_equal(kt_store_repo_import(b, fd, id, errstr, sizeof(errstr)), 0);
		close(fd);
		assert_string_equal(id, snap->id);
		assert_int_equal(snapshot_digest(a, snap->id, &ra), snapshot_digest(b, snap->id, &rb));
		assert_int_equal(ra, 900);
		assert_int_equal(rb, 900);
		/* A second import of the same archive is harmless. */
		fd = open(tarpath, O_RDONLY);
		assert_int_equal(kt_store_repo_import(b, fd, id, errstr, sizeof(errstr)), 0);
		close(fd);
		kt_store_repo_destroy(b);
		b = NULL;
	}
	fixture_repo_close(&fx);
	fixture_rmrf(dst);
}

/* Writes a tar with the given entries (name, content) to path. */
static void write_tar(const char *path, const char *const *names, size_t n, int symlink_last)
{
	struct archive *ar = archive_write_new();
	static const char marker[] = "{\"format\":\"ktape-archive\",\"version\":1,\"snapshot\":\"x\"}";

	archive_write_set_format_pax_restricted(ar);
	assert_int_equal(archive_write_open_filename(ar, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		const char *body = i == 0 ? marker : "data";

		archive_entry_set_pathname(e, names[i]);
		if (symlink_last && i == n - 1) {
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, "/etc/passwd");
			archive_entry_set_size(e, 0);
			body = "";
		} else {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_size(e, (la_int64_t)strlen(body));
		}
		archive_entry_set_perm(e, 0600);
		assert_int_equal(archive_write_header(ar, e), ARCHIVE_OK);
		if (*body)
			archive_write_data(ar, body, strlen(body));
		archive_entry_free(e);
	}
	archive_write_close(ar);
	archive_write_free(ar);
}

static void test_import_refuses_entries_that_escape_the_repository(void **state)
{
	char dir[256], tarpath[300], repo_path[300], errstr[512], escaped[400];
	struct kt_store_repo *repo = NULL;
	char **ids = NULL;
	size_t n = 0;
	static const char *const dotdot[] = { "ktape-archive.json", "segments/../../escaped.kts" };
	static const char *const absolute[] = { "ktape-archive.json", "/tmp/escaped.kts" };
	static const char *const link[] = { "ktape-archive.json", "segments/t/0/x.kts" };
	static const char *const stray[] = { "ktape-archive.json", "etc/cron.d/evil" };

	(void)state;
	fixture_tmpdir(dir, sizeof(dir), "arch_bad");
	snprintf(tarpath, sizeof(tarpath), "%s/bad.tar", dir);
	snprintf(repo_path, sizeof(repo_path), "%s/repo", dir);
	snprintf(escaped, sizeof(escaped), "%s/escaped.kts", dir);
	assert_int_equal(kt_store_repo_open(&repo, repo_path, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK, 0, errstr, sizeof(errstr)), 0);
	struct { const char *const *names; int symlink; } cases[] = {
		{ dotdot, 0 }, { absolute, 0 }, { link, 1 }, { stray, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_tar(tarpath, cases[i].names, 2, cases[i].symlink);
		int fd = open(tarpath, O_RDONLY);
		assert_int_equal(kt_store_repo_import(repo, fd, NULL, errstr, sizeof(errstr)), KT_ECORRUPT);
		close(fd);
		assert_non_null(strstr(errstr, "refusing"));
	}
	assert_int_equal(access(escaped, F_OK), -1);
	assert_int_equal(access("/tmp/escaped.kts", F_OK), -1);
	assert_int_equal(kt_store_repo_list_snapshots(repo, &ids, &n, errstr, sizeof(errstr)), 0);
	assert_int_equal(n, 0);
	kt_store_strv_free(ids, n);
	kt_store_repo_destroy(repo);
	fixture_rmrf(dir);
}

static void test_import_of_a_torn_archive_publishes_nothing(void **state)
{
	struct fixture_repo fx;
	char dst[256], tarpath[300], errstr[512];
	struct kt_store_repo *a, *b = NULL;
	struct kt_store_snapshot *snap;
	struct stat st;
	char **ids = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(fixture_repo_open(&fx, "arch_src", 2, 300), 0);
	a = fx.repo;
	snap = fx.snap;
	assert_non_null(snap);
	fixture_tmpdir(dst, sizeof(dst), "arch_dst");
	snprintf(tarpath, sizeof(tarpath), "%s/snap.tar", fx.dir);
	int fd = open(tarpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(kt_store_repo_export(a, snap->id, fd, KT_ARCHIVE_NONE, errstr, sizeof(errstr)), 0);
	close(fd);
	assert_int_equal(stat(tarpath, &st), 0);
	/* Cut it at several points: before, inside and after the segments. */
	for (int cut = 1; cut <= 3; cut++) {
		assert_int_equal(truncate(tarpath, st.st_size * (4 - cut) / 4 - 700), 0);
		assert_int_equal(kt_store_repo_open(&b, dst, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK, 0, errstr, sizeof(errstr)), 0);
		fd = open(tarpath, O_RDONLY);
		assert_true(kt_store_repo_import(b, fd, NULL, errstr, sizeof(errstr)) < 0);
		close(fd);
		assert_int_equal(kt_store_repo_list_snapshots(b, &ids, &n, errstr, sizeof(errstr)), 0);
		assert_int_equal(n, 0);
		kt_store_strv_free(ids, n);
		kt_store_repo_destroy(b);
		b = NULL;
	}
	fixture_repo_close(&fx);
	fixture_rmrf(dst);
}

/* Exports the snapshot to path with the given compression. */
static void export_to(struct kt_store_repo *repo, const char *id, const char *path, int compression)
{
	char errstr[512];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(kt_store_repo_export(repo, id, fd, compression, errstr, sizeof(errstr)), 0);
	close(fd);
}

static void count_problem(void *opaque, const struct kt_store_verify_problem *problem)
{
	int64_t *block = opaque;

	*block = problem->block;
}

static void test_uncompressed_archive_reads_in_place_like_the_repository(void **state)
{
	struct fixture_repo fx;
	char tarpath[300], errstr[512];
	struct kt_store_repo *dir, *tar = NULL;
	struct kt_store_snapshot *snap, *loaded = NULL;
	struct kt_store_verify_opts vopts = { 0 };
	struct kt_store_verify_result vres;
	char **ids = NULL;
	size_t n = 0;
	uint64_t rd, rt;

	(void)state;
	assert_int_equal(fixture_repo_open(&fx, "arch_inplace", 3, 300), 0);
	dir = fx.repo;
	snap = fx.snap;
	assert_non_null(snap);
	snprintf(tarpath, sizeof(tarpath), "%s/snap.tar", fx.dir);
	export_to(dir, snap->id, tarpath, KT_ARCHIVE_NONE);

	assert_int_equal(kt_store_repo_open(&tar, tarpath, 0, 0, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_repo_list_snapshots(tar, &ids, &n, errstr, sizeof(errstr)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], snap->id);
	kt_store_strv_free(ids, n);
	assert_int_equal(kt_store_repo_load_snapshot(tar, "latest", &loaded, errstr, sizeof(errstr)), 0);
	assert_string_equal(loaded->id, snap->id);
	kt_store_snapshot_destroy(loaded);
	assert_int_equal(snapshot_digest(dir, snap->id, &rd), snapshot_digest(tar, snap->id, &rt));
	assert_int_equal(rt, 900);
	assert_int_equal(kt_store_repo_verify(tar, NULL, 0, &vopts, &vres, errstr, sizeof(errstr)), 0);
	assert_int_equal(vres.segments, 3);
	assert_int_equal(vres.records, 900);
	assert_int_equal(vres.problems, 0);
	kt_store_repo_destroy(tar);
	fixture_repo_close(&fx);
}

static void test_archive_in_place_is_read_only_and_compressed_is_refused(void **state)
{
	struct fixture_repo fx;
	char tarpath[300], zpath[300], errstr[512];
	struct kt_store_repo *dir, *tar = NULL;
	struct kt_store_snapshot *snap;

	(void)state;
	assert_int_equal(fixture_repo_open(&fx, "arch_ro", 1, 50), 0);
	dir = fx.repo;
	snap = fx.snap;
	assert_non_null(snap);
	snprintf(tarpath, sizeof(tarpath), "%s/snap.tar", fx.dir);
	snprintf(zpath, sizeof(zpath), "%s/snap.tar.zst", fx.dir);
	export_to(dir, snap->id, tarpath, KT_ARCHIVE_NONE);
	export_to(dir, snap->id, zpath, KT_ARCHIVE_ZSTD);

	assert_int_equal(kt_store_repo_open(&tar, tarpath, KT_STORE_REPO_LOCK, 0, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_null(tar);
	assert_int_equal(kt_store_repo_open(&tar, tarpath, 0, 0, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_repo_lock(tar, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_non_null(strstr(errstr, "read-only"));
	kt_store_repo_destroy(tar);
	tar = NULL;
	assert_int_equal(kt_store_repo_open(&tar, zpath, 0, 0, errstr, sizeof(errstr)), KT_EUNSUPPORTED);
	assert_non_null(strstr(errstr, "import it first"));
	assert_non_null(strstr(errstr, "--compress none"));
	kt_store_repo_destroy(tar);
	fixture_repo_close(&fx);
}

static void test_damage_inside_an_archive_is_found_in_place(void **state)
{
	struct fixture_repo fx;
	char tarpath[300], errstr[512];
	struct kt_store_repo *dir, *tar = NULL;
	struct kt_store_snapshot *snap;
	struct kt_store_verify_opts vopts = { 0 };
	struct kt_store_verify_result vres;
	int64_t bad_block = -2;
	struct stat st;
	char byte;

	(void)state;
	assert_int_equal(fixture_repo_open(&fx, "arch_dmg", 1, 600), 0);
	dir = fx.repo;
	snap = fx.snap;
	assert_non_null(snap);
	snprintf(tarpath, sizeof(tarpath), "%s/snap.tar", fx.dir);
	export_to(dir, snap->id, tarpath, KT_ARCHIVE_NONE);
	/* The segment is the archive's biggest entry: its middle is in a
	 * block's payload. */
	assert_int_equal(stat(tarpath, &st), 0);
	int fd = open(tarpath, O_RDWR);
	assert_int_equal(pread(fd, &byte, 1, st.st_size / 2), 1);
	byte ^= 0x40;
	assert_int_equal(pwrite(fd, &byte, 1, st.st_size / 2), 1);
	close(fd);
	assert_int_equal(kt_store_repo_open(&tar, tarpath, 0, 0, errstr, sizeof(errstr)), 0);
	vopts.on_problem = count_problem;
	vopts.opaque = &bad_block;
	assert_int_equal(kt_store_repo_verify(tar, NULL, 0, &vopts, &vres, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_int_equal(vres.problems, 1);
	assert_true(bad_block > 0);
	assert_true(vres.records_affected > 0 && vres.records_affected < 600);
	kt_store_repo_destroy(tar);
	fixture_repo_close(&fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_archive_round_trip_preserves_every_record),
		cmocka_unit_test(test_import_refuses_entries_that_escape_the_repository),
		cmocka_unit_test(test_import_of_a_torn_archive_publishes_nothing),
		cmocka_unit_test(test_uncompressed_archive_reads_in_place_like_the_repository),
		cmocka_unit_test(test_archive_in_place_is_read_only_and_compressed_is_refused),
		cmocka_unit_test(test_damage_inside_an_archive_is_found_in_place),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
