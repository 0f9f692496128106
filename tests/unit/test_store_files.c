/* Unit tests of src/store/files.c: the small repository files that capture
 * plans and progress records live in, written atomically, created at most
 * once under KT_STORE_PUT_IF_ABSENT even with several processes racing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kt_store.h"
#include "repo_fixture.h"

struct fixture {
	char dir[64];
	char repo_path[96];
	struct kt_store_repo *repo;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char errstr[256];

	if (!f)
		return -1;
	fixture_tmpdir(f->dir, sizeof(f->dir), "files");
	snprintf(f->repo_path, sizeof(f->repo_path), "%s/repo", f->dir);
	if (kt_store_repo_open(&f->repo, f->repo_path, KT_STORE_REPO_CREATE, 0, errstr, sizeof(errstr)) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kt_store_repo_destroy(f->repo);
	fixture_rmrf(f->dir);
	free(f);
	return 0;
}

static void test_files_write_then_read_returns_the_bytes(void **state)
{
	struct fixture *f = *state;
	char errstr[256], *buf = NULL;
	size_t len = 0;
	const char data[] = "binary\0bytes\n";

	assert_int_equal(kt_store_repo_write_file(f->repo, "plans/a/plan.json", data, sizeof(data), 0,
						  errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_repo_read_file(f->repo, "plans/a/plan.json", 1024, &buf, &len,
						 errstr, sizeof(errstr)), 0);
	assert_int_equal(len, sizeof(data));
	assert_memory_equal(buf, data, sizeof(data));
	assert_int_equal(buf[len], '\0');
	free(buf);
}

static void test_files_new_file_is_owner_only_by_default(void **state)
{
	struct fixture *f = *state;
	char errstr[256], path[256];
	struct stat st;

	assert_int_equal(kt_store_repo_write_file(f->repo, "plans/b/x", "1", 1, KT_STORE_PUT_IF_ABSENT,
						  errstr, sizeof(errstr)), 0);
	snprintf(path, sizeof(path), "%s/plans/b/x", f->repo_path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_files_read_of_absent_file_is_not_found(void **state)
{
	struct fixture *f = *state;
	char errstr[256], *buf = NULL;
	size_t len = 0;

	assert_int_equal(kt_store_repo_read_file(f->repo, "plans/none", 1024, &buf, &len, errstr, sizeof(errstr)),
			 KT_ENOTFOUND);
	assert_null(buf);
	assert_non_null(strstr(errstr, "plans/none"));
}

static void test_files_read_refuses_a_file_larger_than_max(void **state)
{
	struct fixture *f = *state;
	char errstr[256], *buf = NULL;
	size_t len = 0;

	assert_int_equal(kt_store_repo_write_file(f->repo, "big", "0123456789", 10, 0, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_repo_read_file(f->repo, "big", 9, &buf, &len, errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_null(buf);
	assert_non_null(strstr(errstr, "10 bytes"));
}

static void test_files_refuse_paths_that_leave_the_repository(void **state)
{
	struct fixture *f = *state;
	char errstr[256], **names = NULL;
	size_t count = 0;

	assert_int_equal(kt_store_repo_write_file(f->repo, "../escape", "x", 1, 0, errstr, sizeof(errstr)),
			 KT_ECORRUPT);
	assert_int_equal(kt_store_repo_write_file(f->repo, "/tmp/escape", "x", 1, 0, errstr, sizeof(errstr)),
			 KT_ECORRUPT);
	assert_int_equal(kt_store_repo_list_files(f->repo, "plans/../..", &names, &count, errstr, sizeof(errstr)),
			 KT_ECORRUPT);
	assert_int_equal(kt_store_repo_remove_file(f->repo, "a/../../b", errstr, sizeof(errstr)), KT_ECORRUPT);
	assert_int_equal(access("../escape", F_OK), -1);
}

static void test_files_put_if_absent_keeps_the_first_content(void **state)
{
	struct fixture *f = *state;
	char errstr[256], *buf = NULL;
	size_t len = 0;

	assert_int_equal(kt_store_repo_write_file(f->repo, "p/one", "first", 5, KT_STORE_PUT_IF_ABSENT,
						  errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_repo_write_file(f->repo, "p/one", "second", 6, KT_STORE_PUT_IF_ABSENT,
						  errstr, sizeof(errstr)), KT_EEXIST);
	assert_int_equal(kt_store_repo_read_file(f->repo, "p/one", 64, &buf, &len, errstr, sizeof(errstr)), 0);
	assert_string_equal(buf, "first");
	free(buf);
	/* Without the flag the file is replaced whole. */
	assert_int_equal(kt_store_repo_write_file(f->repo, "p/one", "third", 5, 0, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_repo_read_file(f->repo, "p/one", 64, &buf, &len, errstr, sizeof(errstr)), 0);
	assert_string_equal(buf, "third");
	free(buf);
}

/* Eight processes race to create one file: exactly one wins, and the file
 * holds the winner's bytes whole. */
static void test_files_put_if_absent_has_one_winner_among_racing_processes(void **state)
{
	struct fixture *f = *state;
	enum { N = 8 };
	pid_t pids[N];
	int wins = 0, winner = -1;
	char errstr[256], *buf = NULL;
	size_t len = 0;

	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			char body[32], e[256];
			int n = snprintf(body, sizeof(body), "writer %d", i);
			int rc = kt_store_repo_write_file(f->repo, "race/commit", body, (size_t)n,
							  KT_STORE_PUT_IF_ABSENT, e, sizeof(e));
			_exit(rc == 0 ? 0 : rc == KT_EEXIST ? 1 : 2);
		}
	}
	for (int i = 0; i < N; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_not_equal(WEXITSTATUS(status), 2);
		if (WEXITSTATUS(status) == 0) {
			wins++;
			winner = i;
		}
	}
	assert_int_equal(wins, 1);
	assert_int_equal(kt_store_repo_read_file(f->repo, "race/commit", 64, &buf, &len, errstr, sizeof(errstr)), 0);
	char want[32];
	snprintf(want, sizeof(want), "writer %d", winner);
	assert_string_equal(buf, want);
	free(buf);
}

static void test_files_list_is_sorted_and_skips_temp_files(void **state)
{
	struct fixture *f = *state;
	char errstr[256], path[256], **names = NULL;
	size_t count = 0;

	assert_int_equal(kt_store_repo_write_file(f->repo, "d/b", "1", 1, 0, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_repo_write_file(f->repo, "d/a", "1", 1, 0, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_repo_write_file(f->repo, "d/sub/c", "1", 1, 0, errstr, sizeof(errstr)), 0);
	/* What a writer killed between create and rename leaves behind. */
	snprintf(path, sizeof(path), "%s/d/a.tmp-0123456789ab", f->repo_path);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(kt_store_repo_list_files(f->repo, "d", &names, &count, errstr, sizeof(errstr)), 0);
	assert_int_equal(count, 2);
	assert_string_equal(names[0], "a");
	assert_string_equal(names[1], "b");
	kt_store_strv_free(names, count);
	assert_int_equal(kt_store_repo_list_files(f->repo, "absent", &names, &count, errstr, sizeof(errstr)), 0);
	assert_int_equal(count, 0);
}

static void test_files_remove_is_idempotent(void **state)
{
	struct fixture *f = *state;
	char errstr[256], *buf = NULL;
	size_t len = 0;

	assert_int_equal(kt_store_repo_write_file(f->repo, "r/x", "1", 1, 0, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_repo_remove_file(f->repo, "r/x", errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_store_repo_read_file(f->repo, "r/x", 64, &buf, &len, errstr, sizeof(errstr)), KT_ENOTFOUND);
	assert_int_equal(kt_store_repo_remove_file(f->repo, "r/x", errstr, sizeof(errstr)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_files_write_then_read_returns_the_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_new_file_is_owner_only_by_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_read_of_absent_file_is_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_read_refuses_a_file_larger_than_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_refuse_paths_that_leave_the_repository, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_put_if_absent_keeps_the_first_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_put_if_absent_has_one_winner_among_racing_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_list_is_sorted_and_skips_temp_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_remove_is_idempotent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
