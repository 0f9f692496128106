/* Unit tests of kt_store_repo_verify() and kt_store_repo_prune(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo_fixture.h"

struct seen {
	int count;
	int64_t block;
	uint64_t records;
	int code;
	size_t snapshots;
	char ids[2][64]; /* the first two affected, as reported */
	char message[512];
};

static void on_problem(void *opaque, const struct kt_store_verify_problem *p)
{
	struct seen *s = opaque;

	if (s->count++ == 0) {
		s->block = p->block;
		s->records = p->records_affected;
		s->code = p->code;
		s->snapshots = p->snapshots_affected;
		for (size_t i = 0; i < p->snapshots_affected && i < 2; i++)
			snprintf(s->ids[i], sizeof(s->ids[i]), "%s", p->snapshot_ids[i]);
		snprintf(s->message, sizeof(s->message), "%s", p->message);
	}
}

static int run_verify(struct kt_store_repo *repo, int repair, struct seen *s,
		      struct kt_store_verify_result *res)
{
	struct kt_store_verify_opts opts = { 0 };
	char errstr[512];

	memset(s, 0, sizeof(*s));
	opts.threads = 2;
	opts.repair = repair;
	opts.on_problem = on_problem;
	opts.opaque = s;
	return kt_store_repo_verify(repo, NULL, 0, &opts, res, errstr, sizeof(errstr));
}

/* Absolute path of partition p's first segment in snap. */
static void segment_abs(struct kt_store_repo *repo, const struct kt_store_snapshot *snap, int p,
			char *abs, size_t size)
{
	assert_int_equal(kt_store_repo_abs_path(repo, snap->topics[0].partitions[p].segments[0].path,
						abs, size), 0);
}

static void flip_byte(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	unsigned char b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, at), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, at), 1);
	close(fd);
}

static void test_verify_clean_repository_reports_nothing(void **state)
{
	struct fixture_repo f;
	struct kt_store_verify_result res;
	struct seen s;

	(void)state;
	assert_int_equal(fixture_repo_open(&f, "verify", 3, 400), 0);
	assert_non_null(f.snap);
	assert_int_equal(run_verify(f.repo, 0, &s, &res), 0);
	assert_int_equal(s.count, 0);
	assert_int_equal(res.snapshots, 1);
	assert_int_equal(res.segments, 3);
	assert_int_equal(res.records, 1200);
	assert_true(res.blocks > 3);
	fixture_repo_close(&f);
}

static void test_verify_names_the_damaged_block_and_its_records(void **state)
{
	char errstr[512], abs[PATH_MAX];
	struct fixture_repo f;
	struct kt_store_reader *reader = NULL;
	struct kt_store_verify_result res;
	struct seen s;

	(void)state;
	assert_int_equal(fixture_repo_open(&f, "verify", 2, 400), 0);
	assert_non_null(f.snap);
	segment_abs(f.repo, f.snap, 1, abs, sizeof(abs));
	assert_int_equal(kt_store_reader_open(&reader, abs, 0, errstr, sizeof(errstr)), 0);
	const struct kt_store_block_info *blk = kt_store_reader_block(reader, 1);
	assert_non_null(blk);
	off_t at = (off_t)blk->file_offset + 72 + blk->stored_size / 2; /* inside block 1's payload */
	uint32_t lost = blk->record_count;
	kt_store_reader_destroy(reader);
	flip_byte(abs, at);

	assert_int_equal(run_verify(f.repo, 0, &s, &res), KT_ECORRUPT);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.block, 1);
	assert_int_equal(s.records, lost);
	assert_int_equal(res.records_affected, lost);
	fixture_repo_close(&f);
}

static void test_verify_reports_missing_segment_with_all_its_records(void **state)
{
	char abs[PATH_MAX];
	struct fixture_repo f;
	struct kt_store_verify_result res;
	struct seen s;

	(void)state;
	assert_int_equal(fixture_repo_open(&f, "verify", 2, 100), 0);
	assert_non_null(f.snap);
	segment_abs(f.repo, f.snap, 0, abs, sizeof(abs));
	assert_int_equal(unlink(abs), 0);
	assert_int_equal(run_verify(f.repo, 0, &s, &res), KT_ECORRUPT);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.records, 100);
	assert_non_null(strstr(s.message, "missing"));
	fixture_repo_close(&f);
}

static void test_verify_repair_rebuilds_a_missing_index(void **state)
{
	char abs[PATH_MAX], idx[PATH_MAX];
	struct fixture_repo f;
	struct kt_store_verify_result res;
	struct seen s;

	(void)state;
	assert_int_equal(fixture_repo_open(&f, "verify", 1, 100), 0);
	assert_non_null(f.snap);
	segment_abs(f.repo, f.snap, 0, abs, sizeof(abs));
	assert_int_equal(kt_store_index_path(abs, idx, sizeof(idx)), 0);
	assert_int_equal(unlink(idx), 0);
	/* Without --repair: reported, nothing lost. */
	assert_int_equal(run_verify(f.repo, 0, &s, &res), KT_ECORRUPT);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.records, 0);
	assert_int_equal(access(idx, F_OK), -1);
	/* With --repair: rebuilt, and then clean. */
	assert_int_equal(run_verify(f.repo, 1, &s, &res), 0);
	assert_int_equal(res.indexes_repaired, 1);
	assert_int_equal(access(idx, F_OK), 0);
	assert_int_equal(run_verify(f.repo, 0, &s, &res), 0);
	fixture_repo_close(&f);
}

static void test_verify_checks_a_shared_segment_once(void **state)
{
	char errstr[512], abs[PATH_MAX];
	struct fixture_repo f;
	struct kt_store_snapshot *full, *incr;
	struct kt_store_verify_result res;
	struct seen s;

	(void)state;
	assert_int_equal(fixture_repo_open(&f, "verify", 1, 100), 0);
	full = f.snap;
	assert_non_null(full);
	incr = fixture_continue(full);
	assert_non_null(incr);
	struct kt_store_partition *part = &incr->topics[0].partitions[0];
	assert_int_equal(fixture_write_segment(f.repo, "orders", part, part->end_offset + 5, 50,
					       errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_repo_commit_snapshot(f.repo, incr, errstr, sizeof(errstr)), 0);
	assert_int_equal(run_verify(f.repo, 0, &s, &res), 0);
	assert_int_equal(res.snapshots, 2);
	assert_int_equal(res.segments, 2);
	assert_int_equal(res.records, 150);
	/* Damage to the shared segment is charged to both snapshots. */
	segment_abs(f.repo, full, 0, abs, sizeof(abs));
	assert_int_equal(unlink(abs), 0);
	assert_int_equal(run_verify(f.repo, 0, &s, &res), KT_ECORRUPT);
	assert_int_equal(s.snapshots, 2);
	assert_string_equal(s.ids[0], incr->id); /* newest first */
	assert_string_equal(s.ids[1], full->id);
	kt_store_snapshot_destroy(incr);
	fixture_repo_close(&f);
}

static void test_verify_finds_a_segment_the_manifest_lost(void **state)
{
	char errstr[512];
	struct fixture_repo f;
	struct kt_store_snapshot *full, *lost;
	struct kt_store_verify_opts opts = { 0 };
	struct kt_store_verify_result res;
	struct kt_store_partition *part;
	struct seen s;

	(void)state;
	assert_int_equal(fixture_repo_open(&f, "verify", 1, 100), 0);
	full = f.snap;
	assert_non_null(full);
	/* A second snapshot whose partition has a second segment, then a
	 * third that lists only the first segment for the same range. */
	lost = fixture_continue(full);
	assert_non_null(lost);
	part = &lost->topics[0].partitions[0];
	assert_int_equal(fixture_write_segment(f.repo, "orders", part, 200, 100, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_repo_commit_snapshot(f.repo, lost, errstr, sizeof(errstr)), 0);
	struct kt_store_snapshot *broken = fixture_continue(full);
	assert_non_null(broken);
	broken->completed_ms += 10;
	broken->topics[0].partitions[0].end_offset = part->end_offset;
	assert_int_equal(kt_store_repo_commit_snapshot(f.repo, broken, errstr, sizeof(errstr)), 0);

	/* Alone, the broken snapshot misses records the repository holds. */
	memset(&s, 0, sizeof(s));
	opts.on_problem = on_problem;
	opts.opaque = &s;
	char *ids[1] = { broken->id };
	assert_int_equal(kt_store_repo_verify(f.repo, ids, 1, &opts, &res, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.records, 100);
	assert_non_null(strstr(s.message, "does not list"));
	/* With every snapshot, the segment is listed (by the second one). */
	assert_int_equal(run_verify(f.repo, 0, &s, &res), 0);
	assert_int_equal(s.count, 0);
	kt_store_snapshot_destroy(broken);
	kt_store_snapshot_destroy(lost);
	fixture_repo_close(&f);
}

static void test_verify_reports_a_gap_that_overlaps_a_segment(void **state)
{
	char errstr[512];
	struct fixture_repo f;
	struct kt_store_snapshot *full, *bad;
	struct kt_store_verify_opts opts = { 0 };
	struct kt_store_verify_result res;
	struct seen s;

	(void)state;
	assert_int_equal(fixture_repo_open(&f, "verify", 1, 100), 0);
	full = f.snap;
	assert_non_null(full);
	bad = fixture_continue(full);
	assert_non_null(bad);
	/* The segment holds offsets 0-198: a gap over 10-20 is a lie. */
	assert_int_equal(kt_store_partition_add_gap(&bad->topics[0].partitions[0], 10, 20, "retention"), 0);
	assert_int_equal(kt_store_repo_commit_snapshot(f.repo, bad, errstr, sizeof(errstr)), 0);
	memset(&s, 0, sizeof(s));
	opts.on_problem = on_problem;
	opts.opaque = &s;
	char *ids[1] = { bad->id };
	assert_int_equal(kt_store_repo_verify(f.repo, ids, 1, &opts, &res, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_int_equal(s.count, 1);
	assert_non_null(strstr(s.message, "overlap the gap [10, 20)"));
	kt_store_snapshot_destroy(bad);
	fixture_repo_close(&f);
}

static void test_verify_reports_a_damaged_index_once(void **state)
{
	char abs[PATH_MAX], idx[PATH_MAX];
	struct fixture_repo f;
	struct kt_store_verify_result res;
	struct seen s;

	(void)state;
	assert_int_equal(fixture_repo_open(&f, "verify", 1, 300), 0);
	assert_non_null(f.snap);
	segment_abs(f.repo, f.snap, 0, abs, sizeof(abs));
	assert_int_equal(kt_store_index_path(abs, idx, sizeof(idx)), 0);
	flip_byte(idx, 60);
	assert_int_equal(run_verify(f.repo, 0, &s, &res), KT_ECORRUPT);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.records, 0);
	assert_non_null(strstr(s.message, "--repair"));
	assert_int_equal(run_verify(f.repo, 1, &s, &res), 0);
	assert_int_equal(res.indexes_repaired, 1);
	assert_int_equal(run_verify(f.repo, 0, &s, &res), 0);
	fixture_repo_close(&f);
}

static void test_prune_keeps_shared_segments_and_drops_unreferenced_ones(void **state)
{
	char errstr[512], abs_old[PATH_MAX], abs_mid[PATH_MAX], orphan[PATH_MAX];
	struct fixture_repo f;
	struct kt_store_snapshot *a, *b, *c;
	struct kt_store_prune_policy policy = { 0 };
	struct kt_store_prune_result res;
	struct kt_store_verify_result vres;
	struct seen s;
	char **ids = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(fixture_repo_open(&f, "prune", 0, 0), 0);
	/* a: a full snapshot of topic "old" only. */
	a = fixture_full_snapshot(f.repo, "old", 1, 50, 1700000000000LL, errstr, sizeof(errstr));
	assert_non_null(a);
	/* b: a full snapshot of "orders"; c continues b and adds a segment. */
	b = fixture_full_snapshot(f.repo, "orders", 1, 50, 1700000100000LL, errstr, sizeof(errstr));
	assert_non_null(b);
	c = fixture_continue(b);
	assert_non_null(c);
	struct kt_store_partition *part = &c->topics[0].partitions[0];
	assert_int_equal(fixture_write_segment(f.repo, "orders", part, part->end_offset, 50, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_repo_commit_snapshot(f.repo, c, errstr, sizeof(errstr)), 0);
	segment_abs(f.repo, a, 0, abs_old, sizeof(abs_old));
	segment_abs(f.repo, b, 0, abs_mid, sizeof(abs_mid));
	/* An orphan left by a capture that died before its commit. */
	char rel[1024];
	assert_int_equal(kt_store_repo_new_segment_path(f.repo, "orders", 0, 999, rel, sizeof(rel),
							orphan, sizeof(orphan), errstr, sizeof(errstr)), 0);
	FILE *fp = fopen(orphan, "w");
	assert_non_null(fp);
	fputs("torn", fp);
	fclose(fp);

	/* A dry run removes nothing. */
	policy.keep_last = 1;
	policy.dry_run = 1;
	assert_int_equal(kt_store_repo_prune(f.repo, &policy, &res, errstr, sizeof(errstr)), 0);
	assert_int_equal(res.snapshots_removed, 2);
	assert_int_equal(res.segments_removed, 2);
	assert_int_equal(access(abs_old, F_OK), 0);
	assert_int_equal(access(orphan, F_OK), 0);
	kt_store_prune_result_clear(&res);

	policy.dry_run = 0;
	assert_int_equal(kt_store_repo_prune(f.repo, &policy, &res, errstr, sizeof(errstr)), 0);
	assert_int_equal(res.snapshots_removed, 2);
	assert_int_equal(res.snapshots_kept, 1);
	kt_store_prune_result_clear(&res);
	assert_int_equal(access(abs_old, F_OK), -1);   /* only a needed it */
	assert_int_equal(access(orphan, F_OK), -1);    /* nobody needed it */
	assert_int_equal(access(abs_mid, F_OK), 0);    /* c still needs it */
	assert_int_equal(kt_store_repo_list_snapshots(f.repo, &ids, &n, errstr, sizeof(errstr)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], c->id);
	kt_store_strv_free(ids, n);
	assert_int_equal(run_verify(f.repo, 0, &s, &vres), 0);
	assert_int_equal(vres.records, 100);

	kt_store_snapshot_destroy(a);
	kt_store_snapshot_destroy(b);
	kt_store_snapshot_destroy(c);
	fixture_repo_close(&f);
}

/* Writes REPO/restores/<rid>/plan.json naming snap_id and, if state is
 * not NULL, a checkpoint.json in that state (format/restore.md). */
static void write_restore_record(const char *repo_dir, const char *rid, const char *snap_id,
				 const char *state)
{
	char path[600], body[300];

	snprintf(path, sizeof(path), "%s/restores/%s", repo_dir, rid);
	assert_int_equal(kt_mkdir_p(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/restores/%s/plan.json", repo_dir, rid);
	snprintf(body, sizeof(body), "{\"format\": \"ktape-restore-plan\", \"snapshot\": \"%s\"}", snap_id);
	assert_int_equal(kt_write_file_atomic(path, body, strlen(body), 0600, NULL, 0), 0);
	if (!state)
		return;
	snprintf(path, sizeof(path), "%s/restores/%s/checkpoint.json", repo_dir, rid);
	snprintf(body, sizeof(body), "{\"state\": \"%s\"}", state);
	assert_int_equal(kt_write_file_atomic(path, body, strlen(body), 0600, NULL, 0), 0);
}

static void test_prune_keeps_a_snapshot_an_unfinished_restore_reads(void **state)
{
	char errstr[512];
	struct fixture_repo f;
	struct kt_store_prune_policy policy = { 0 };
	struct kt_store_prune_result res;
	struct kt_store_snapshot *newer;
	char **ids = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(fixture_repo_open(&f, "prune", 1, 20), 0);
	newer = fixture_full_snapshot(f.repo, "other", 1, 20, 1700000100000LL, errstr, sizeof(errstr));
	assert_non_null(newer);
	policy.keep_last = 1;

	/* A restore of the older snapshot was killed before its first
	 * checkpoint, and another is mid-way ("interrupted"): both pin it. */
	write_restore_record(f.dir, "r1", f.snap->id, NULL);
	write_restore_record(f.dir, "r2", f.snap->id, "interrupted");
	assert_int_equal(kt_store_repo_prune(f.repo, &policy, &res, errstr, sizeof(errstr)), 0);
	assert_int_equal(res.snapshots_removed, 0);
	assert_int_equal(res.snapshots_pinned, 1);
	kt_store_prune_result_clear(&res);

	/* Once both restores are complete the policy applies again. */
	write_restore_record(f.dir, "r1", f.snap->id, "complete");
	write_restore_record(f.dir, "r2", f.snap->id, "complete");
	assert_int_equal(kt_store_repo_prune(f.repo, &policy, &res, errstr, sizeof(errstr)), 0);
	assert_int_equal(res.snapshots_removed, 1);
	assert_int_equal(res.snapshots_pinned, 0);
	kt_store_prune_result_clear(&res);
	assert_int_equal(kt_store_repo_list_snapshots(f.repo, &ids, &n, errstr, sizeof(errstr)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], newer->id);
	kt_store_strv_free(ids, n);
	kt_store_snapshot_destroy(newer);
	fixture_repo_close(&f);
}

static void test_prune_refuses_a_policy_that_keeps_nothing(void **state)
{
	char errstr[512];
	struct fixture_repo f;
	struct kt_store_prune_policy policy = { 0 };
	struct kt_store_prune_result res;

	(void)state;
	assert_int_equal(fixture_repo_open(&f, "prune", 0, 0), 0);
	assert_int_equal(kt_store_repo_prune(f.repo, &policy, &res, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_non_null(strstr(errstr, "keep"));
	fixture_repo_close(&f);
}

static void test_prune_daily_keeps_newest_of_each_day(void **state)
{
	char errstr[512];
	struct fixture_repo f;
	struct kt_store_prune_policy policy = { 0 };
	struct kt_store_prune_result res;
	const int64_t day = 86400000LL;
	struct kt_store_snapshot *snaps[4];

	(void)state;
	assert_int_equal(fixture_repo_open(&f, "prune", 0, 0), 0);
	/* Two on day 0 (morning, evening), one on day 1, one on day 2. */
	int64_t base = 1700006400000LL - 1700006400000LL % day;
	int64_t when[4] = { base + 3600000, base + 20 * 3600000, base + day + 3600000, base + 2 * day + 3600000 };
	for (int i = 0; i < 4; i++) {
		snaps[i] = fixture_full_snapshot(f.repo, "t", 1, 5, when[i], errstr, sizeof(errstr));
		assert_non_null(snaps[i]);
		usleep(2000); /* ids are time-ordered */
	}
	policy.keep_daily = 3;
	assert_int_equal(kt_store_repo_prune(f.repo, &policy, &res, errstr, sizeof(errstr)), 0);
	assert_int_equal(res.snapshots_kept, 3);
	assert_int_equal(res.removed_count, 1);
	assert_string_equal(res.removed_ids[0], snaps[0]->id); /* day 0's morning */
	kt_store_prune_result_clear(&res);
	for (int i = 0; i < 4; i++)
		kt_store_snapshot_destroy(snaps[i]);
	fixture_repo_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_clean_repository_reports_nothing),
		cmocka_unit_test(test_verify_names_the_damaged_block_and_its_records),
		cmocka_unit_test(test_verify_reports_missing_segment_with_all_its_records),
		cmocka_unit_test(test_verify_repair_rebuilds_a_missing_index),
		cmocka_unit_test(test_verify_checks_a_shared_segment_once),
		cmocka_unit_test(test_verify_finds_a_segment_the_manifest_lost),
		cmocka_unit_test(test_verify_reports_a_damaged_index_once),
		cmocka_unit_test(test_verify_reports_a_gap_that_overlaps_a_segment),
		cmocka_unit_test(test_prune_keeps_shared_segments_and_drops_unreferenced_ones),
		cmocka_unit_test(test_prune_keeps_a_snapshot_an_unfinished_restore_reads),
		cmocka_unit_test(test_prune_refuses_a_policy_that_keeps_nothing),
		cmocka_unit_test(test_prune_daily_keeps_newest_of_each_day),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
