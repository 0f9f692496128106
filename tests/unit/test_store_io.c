/* Unit tests of the store's writer I/O interface (src/store/io_priv.h) over
 * both back ends: scattered writes in flight read back byte for byte, every
 * tag completed exactly once, O_EXCL, a full disk (injected and real short
 * writes), datasync/close, and the AUTO back end's choice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io_priv.h"
#include "kt_store.h"
#include "test_store_segment_lib.h"

struct io_fixture {
	char dir[64];
	char path[128];
	int backend;
};

static int setup_dir(void **state, int backend)
{
	struct io_fixture *fx = calloc(1, sizeof(*fx));
	const char *tmp = getenv("TMPDIR");

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/kt-io-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/seg.kts", fx->dir);
	fx->backend = backend;
	*state = fx;
	return 0;
}

static int setup_pwrite(void **state)
{
	return setup_dir(state, KT_IO_PWRITE);
}

static int setup_uring(void **state)
{
	return setup_dir(state, KT_IO_URING);
}

static int teardown_dir(void **state)
{
	struct io_fixture *fx = *state;

	kt_io_test_inject_enospc_after(UINT64_MAX);
	unlink(fx->path);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static int uring_refused(int err)
{
	return err == -ENOSYS || err == -EPERM || err == -ENOMEM || err == -EOPNOTSUPP;
}

/* Opens fx->path with the fixture's back end, skipping the test when the
 * kernel or a seccomp filter refuses io_uring (as many containers do). */
static struct kt_io *open_or_skip(struct io_fixture *fx, unsigned depth)
{
	struct kt_io *io = NULL;
	char errstr[256] = "";
	int err = kt_io_open(&io, fx->path, fx->backend, 0600, depth, errstr, sizeof(errstr));

	if (fx->backend == KT_IO_URING && uring_refused(err)) {
		print_message("io_uring unavailable here: %s\n", errstr);
		skip();
	}
	if (err != 0)
		fail_msg("kt_io_open(%s) failed: %s", fx->path, errstr);
	assert_int_equal(kt_io_backend(io), fx->backend);
	return io;
}

/* A deterministic byte pattern that differs per position and per seed, so
 * a write landing at the wrong offset cannot read back as correct. */
static void fill_pattern(unsigned char *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
}

#define SCATTER_WRITES 96
#define SCATTER_DEPTH 8

/* Reaps one completion and checks its tag was in flight and is seen for the
 * first time. */
static void reap_one(struct kt_io *io, unsigned char *seen, unsigned char *inflight)
{
	char errstr[256] = "";
	uint64_t tag = UINT64_MAX;
	int err = kt_io_wait_one(io, &tag, errstr, sizeof(errstr));

	if (err != 0)
		fail_msg("write failed: %s", errstr);
	assert_true(tag < SCATTER_WRITES);
	assert_int_equal(seen[tag], 0);
	assert_int_equal(inflight[tag], 1);
	seen[tag] = 1;
	inflight[tag] = 0;
}

static void test_scattered_writes_in_flight_read_back_exactly(void **state)
{
	struct io_fixture *fx = *state;
	size_t off[SCATTER_WRITES], len[SCATTER_WRITES];
	unsigned char *buf[SCATTER_WRITES];
	unsigned char seen[SCATTER_WRITES] = {0}, inflight[SCATTER_WRITES] = {0};
	unsigned order[SCATTER_WRITES];
	unsigned max_inflight = 0;
	char errstr[256] = "";
	size_t total = 0, got_len;
	unsigned char *got;
	struct kt_io *io = open_or_skip(fx, SCATTER_DEPTH);

	/* Contiguous extents of uneven sizes (1 byte to ~200 KiB, crossing
	 * page boundaries), submitted in a shuffled order, so the file is only
	 * right if every write landed at its own offset. */
	for (unsigned i = 0; i < SCATTER_WRITES; i++) {
		len[i] = 1 + (i * 7919u % 200000u);
		off[i] = total;
		total += len[i];
		buf[i] = malloc(len[i]);
		assert_non_null(buf[i]);
		fill_pattern(buf[i], len[i], i);
		order[i] = i;
	}
	srand(42);
	for (unsigned i = SCATTER_WRITES - 1; i > 0; i--) {
		unsigned j = (unsigned)rand() % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}

	for (unsigned k = 0; k < SCATTER_WRITES; k++) {
		unsigned i = order[k];

		if (kt_io_inflight(io) == SCATTER_DEPTH)
			reap_one(io, seen, inflight);
		inflight[i] = 1;
		if (kt_io_submit_write(io, buf[i], len[i], off[i], i, errstr, sizeof(errstr)) != 0)
			fail_msg("submit failed: %s", errstr);
		if (kt_io_inflight(io) > max_inflight)
			max_inflight = kt_io_inflight(io);
	}
	assert_int_equal(max_inflight, SCATTER_DEPTH);
	while (kt_io_inflight(io) > 0)
		reap_one(io, seen, inflight);
	for (unsigned i = 0; i < SCATTER_WRITES; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(kt_io_close(io, errstr, sizeof(errstr)), 0);
	kt_io_destroy(io);

	got = tl_read_file(fx->path, &got_len);
	assert_int_equal(got_len, total);
	for (unsigned i = 0; i < SCATTER_WRITES; i++) {
		assert_memory_equal(got + off[i], buf[i], len[i]);
		free(buf[i]);
	}
	free(got);
}

static void test_submit_beyond_depth_is_ebusy_and_empty_wait_is_eagain(void **state)
{
	struct io_fixture *fx = *state;
	static const char data[4] = "abcd";
	char errstr[256] = "";
	uint64_t tag;
	struct kt_io *io = open_or_skip(fx, 2);

	assert_int_equal(kt_io_wait_one(io, &tag, errstr, sizeof(errstr)), -EAGAIN);
	assert_int_equal(kt_io_submit_write(io, data, 2, 0, 1, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_io_submit_write(io, data + 2, 2, 2, 2, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_io_inflight(io), 2);
	assert_int_equal(kt_io_submit_write(io, data, 4, 4, 3, errstr, sizeof(errstr)), -EBUSY);
	assert_non_null(strstr(errstr, fx->path));
	assert_int_equal(kt_io_drain(io, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_io_inflight(io), 0);
	assert_int_equal(kt_io_wait_one(io, &tag, errstr, sizeof(errstr)), -EAGAIN);
	kt_io_destroy(io);
}

static void test_open_refuses_existing_file(void **state)
{
	struct io_fixture *fx = *state;
	struct kt_io *io = NULL;
	char errstr[256] = "";
	size_t len;
	unsigned char *got;
	int err;
	int fd = open(fx->path, O_WRONLY | O_CREAT | O_EXCL, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "precious", 8), 8);
	close(fd);

	err = kt_io_open(&io, fx->path, fx->backend, 0600, 4, errstr, sizeof(errstr));
	if (fx->backend == KT_IO_URING && uring_refused(err))
		skip();
	assert_int_equal(err, -EEXIST);
	assert_null(io);
	assert_non_null(strstr(errstr, fx->path));
	got = tl_read_file(fx->path, &len);
	assert_int_equal(len, 8);
	assert_memory_equal(got, "precious", 8);
	free(got);
}

/* Reaps one completion into results[tag] (which must still hold 1, "not
 * reaped"), keeping the message of write `watch` in errstr. */
static void reap_result(struct kt_io *io, int *results, unsigned n, uint64_t watch,
			char *errstr, size_t errstr_size)
{
	char msg[256] = "";
	uint64_t tag = UINT64_MAX;
	int err = kt_io_wait_one(io, &tag, msg, sizeof(msg));

	assert_true(tag < n);
	assert_int_equal(results[tag], 1);
	results[tag] = err;
	if (tag == watch)
		snprintf(errstr, errstr_size, "%s", msg);
}

/* A disk that fills up in the middle of the fourth of eight writes: the
 * first three complete, the fourth fails with -ENOSPC after writing its
 * first 100 bytes, and the message names the file and the offset. */
static void test_enospc_midstream_names_file_and_offset(void **state)
{
	struct io_fixture *fx = *state;
	enum { CHUNK = 4096, N = 8 };
	unsigned char *data = malloc((size_t)CHUNK * N);
	char errstr[256] = "", want[64];
	int results[N] = {1, 1, 1, 1, 1, 1, 1, 1};
	unsigned reaped = 0;
	size_t len;
	unsigned char *got;
	struct kt_io *io = open_or_skip(fx, 4);

	assert_non_null(data);
	fill_pattern(data, (size_t)CHUNK * N, 7);
	kt_io_test_inject_enospc_after(3 * CHUNK + 100);
	for (unsigned i = 0; i < N; i++) {
		if (kt_io_inflight(io) == 4)
			reap_result(io, results, N, 3, errstr, sizeof(errstr));
		assert_int_equal(kt_io_submit_write(io, data + (size_t)i * CHUNK, CHUNK,
						    (uint64_t)i * CHUNK, i, NULL, 0), 0);
	}
	while (kt_io_inflight(io) > 0)
		reap_result(io, results, N, 3, errstr, sizeof(errstr));
	for (unsigned i = 0; i < N; i++)
		reaped += results[i] != 1;
	assert_int_equal(reaped, N);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(results[i], 0);
	for (unsigned i = 3; i < N; i++)
		assert_int_equal(results[i], -ENOSPC);
	assert_non_null(strstr(errstr, fx->path));
	snprintf(want, sizeof(want), "offset %d", 3 * CHUNK);
	assert_non_null(strstr(errstr, want));
	assert_non_null(strstr(errstr, "(100 written)"));
	assert_non_null(strstr(errstr, strerror(ENOSPC)));

	/* Closing after a failed write is still clean; the error was reported
	 * once, where it happened. */
	assert_int_equal(kt_io_close(io, errstr, sizeof(errstr)), 0);
	kt_io_destroy(io);
	got = tl_read_file(fx->path, &len);
	assert_int_equal(len, 3 * CHUNK + 100);
	assert_memory_equal(got, data, len);
	free(got);
	free(data);
}

/* drain() waits for everything and returns the first failure. */
static void test_drain_returns_first_enospc(void **state)
{
	struct io_fixture *fx = *state;
	static unsigned char data[3000];
	char errstr[256] = "";
	struct kt_io *io = open_or_skip(fx, 4);

	kt_io_test_inject_enospc_after(1000);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(kt_io_submit_write(io, data + i * 1000, 1000, i * 1000, i,
						    NULL, 0), 0);
	kt_io_test_inject_enospc_after(UINT64_MAX);
	assert_int_equal(kt_io_drain(io, errstr, sizeof(errstr)), -ENOSPC);
	assert_non_null(strstr(errstr, "offset 1000"));
	assert_int_equal(kt_io_inflight(io), 0);
	kt_io_destroy(io);
}

/* A real short write: with RLIMIT_FSIZE below the request the kernel
 * writes up to the limit and then refuses (EFBIG); the back end must
 * resubmit the remainder itself and report the refusal with how much was
 * written, never report a short write as success. */
static void test_real_short_write_is_continued_then_reported(void **state)
{
	struct io_fixture *fx = *state;
	static unsigned char data[16384];
	struct rlimit old, lim;
	char errstr[256] = "";
	uint64_t tag;
	struct stat st;
	void (*old_handler)(int);
	struct kt_io *io = open_or_skip(fx, 2);
	int err;

	fill_pattern(data, sizeof(data), 3);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 10000;
	old_handler = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(kt_io_submit_write(io, data, sizeof(data), 0, 77, errstr,
					    sizeof(errstr)), 0);
	err = kt_io_wait_one(io, &tag, errstr, sizeof(errstr));
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, old_handler);

	assert_int_equal(err, -EFBIG);
	assert_int_equal(tag, 77);
	assert_non_null(strstr(errstr, "(10000 written)"));
	assert_int_equal(kt_io_close(io, errstr, sizeof(errstr)), 0);
	kt_io_destroy(io);
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(st.st_size, 10000);
}

static void test_datasync_and_close_succeed_then_refuse_writes(void **state)
{
	struct io_fixture *fx = *state;
	static const char data[] = "segment bytes";
	char errstr[256] = "";
	size_t len;
	unsigned char *got;
	struct kt_io *io = open_or_skip(fx, 4);

	assert_int_equal(kt_io_submit_write(io, data, sizeof(data), 0, 1, errstr,
					    sizeof(errstr)), 0);
	/* datasync drains first: nothing stays in flight. */
	assert_int_equal(kt_io_datasync(io, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_io_inflight(io), 0);
	assert_int_equal(kt_io_close(io, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_io_submit_write(io, data, sizeof(data), 0, 2, errstr,
					    sizeof(errstr)), -EBADF);
	assert_int_equal(kt_io_close(io, errstr, sizeof(errstr)), -EBADF);
	kt_io_destroy(io);
	got = tl_read_file(fx->path, &len);
	assert_int_equal(len, sizeof(data));
	assert_memory_equal(got, data, len);
	free(got);
}

/* Destroying a handle with writes still in flight waits for them (the
 * kernel may still read the buffers) and closes the file. */
static void test_destroy_with_writes_in_flight_completes_them(void **state)
{
	struct io_fixture *fx = *state;
	static unsigned char data[65536];
	size_t len;
	unsigned char *got;
	struct kt_io *io = open_or_skip(fx, 4);

	fill_pattern(data, sizeof(data), 11);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(kt_io_submit_write(io, data + i * 16384, 16384, i * 16384, i,
						    NULL, 0), 0);
	kt_io_destroy(io);
	got = tl_read_file(fx->path, &len);
	assert_int_equal(len, sizeof(data));
	assert_memory_equal(got, data, len);
	free(got);
	kt_io_destroy(NULL);
}

static void test_auto_reports_the_backend_it_chose(void **state)
{
	struct io_fixture *fx = *state;
	struct kt_io *io = NULL;
	char errstr[256] = "";
	struct kt_io *probe = NULL;
	char probe_path[160];
	int uring_ok;
	int err;

	/* Whether io_uring works here decides what AUTO must pick. */
	snprintf(probe_path, sizeof(probe_path), "%s/probe", fx->dir);
	err = kt_io_open(&probe, probe_path, KT_IO_URING, 0600, 1, errstr, sizeof(errstr));
	uring_ok = err == 0;
	if (!uring_ok)
		assert_true(uring_refused(err));
	kt_io_destroy(probe);
	unlink(probe_path);

	assert_int_equal(kt_io_open(&io, fx->path, KT_IO_AUTO, 0600, 4, errstr, sizeof(errstr)),
			 0);
	assert_int_equal(kt_io_backend(io), uring_ok ? KT_IO_URING : KT_IO_PWRITE);
	print_message("KT_IO_AUTO chose %s\n", kt_store_io_backend_name(kt_io_backend(io)));
	assert_int_equal(kt_io_close(io, errstr, sizeof(errstr)), 0);
	kt_io_destroy(io);
}

/* Makes io_uring_setup(2) fail with ENOSYS in this process, as the seccomp
 * profiles of many container runtimes do.  Returns 0 or -1. */
static int refuse_io_uring_setup(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof(filter) / sizeof(filter[0])),
		.filter = filter,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0 ? 0 : -1;
}

/* In a child whose seccomp filter refuses io_uring: KT_IO_URING fails with
 * -ENOSYS and creates no file, KT_IO_AUTO silently falls back to pwrite and
 * writes.  The child reports through its exit status which step failed. */
static void test_auto_falls_back_to_pwrite_when_io_uring_is_refused(void **state)
{
	struct io_fixture *fx = *state;
	int status = 0;
	pid_t pid;

#if !defined(__x86_64__)
	skip();
#endif
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct kt_io *io = NULL;
		char errstr[256] = "";
		struct stat st;
		uint64_t tag;

		if (refuse_io_uring_setup() != 0)
			_exit(10);
		if (kt_io_open(&io, fx->path, KT_IO_URING, 0600, 4, errstr,
			       sizeof(errstr)) != -ENOSYS)
			_exit(11);
		if (stat(fx->path, &st) == 0)
			_exit(12);
		if (kt_io_open(&io, fx->path, KT_IO_AUTO, 0600, 4, errstr, sizeof(errstr)) != 0)
			_exit(13);
		if (kt_io_backend(io) != KT_IO_PWRITE || errstr[0] != '\0')
			_exit(14);
		if (kt_io_submit_write(io, "abc", 3, 0, 5, errstr, sizeof(errstr)) != 0 ||
		    kt_io_wait_one(io, &tag, errstr, sizeof(errstr)) != 0 || tag != 5)
			_exit(15);
		if (kt_io_close(io, errstr, sizeof(errstr)) != 0)
			_exit(16);
		kt_io_destroy(io);
		if (stat(fx->path, &st) != 0 || st.st_size != 3)
			_exit(17);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 10)
		skip(); /* this kernel cannot install the filter */
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_open_rejects_bad_arguments(void **state)
{
	struct io_fixture *fx = *state;
	struct kt_io *io = NULL;
	char errstr[256] = "";
	struct stat st;

	assert_int_equal(kt_io_open(&io, fx->path, 99, 0600, 4, errstr, sizeof(errstr)),
			 KT_EUSAGE);
	assert_int_equal(kt_io_open(&io, fx->path, KT_IO_PWRITE, 0600, 0, errstr,
				    sizeof(errstr)), KT_EUSAGE);
	assert_int_equal(kt_io_open(&io, fx->path, KT_IO_AUTO, 0600, 1u << 20, errstr,
				    sizeof(errstr)), KT_EUSAGE);
	assert_non_null(strstr(errstr, fx->path));
	assert_null(io);
	/* Nothing was created by a refused open. */
	assert_int_equal(stat(fx->path, &st), -1);
}

static void test_backend_names(void **state)
{
	(void)state;
	assert_string_equal(kt_store_io_backend_name(KT_IO_AUTO), "auto");
	assert_string_equal(kt_store_io_backend_name(KT_IO_URING), "io_uring");
	assert_string_equal(kt_store_io_backend_name(KT_IO_PWRITE), "pwrite");
	assert_string_equal(kt_store_io_backend_name(42), "unknown");
}

/* Every behaviour runs once per back end, named for both. */
#define BOTH(fn) \
	{ #fn "_pwrite", fn, setup_pwrite, teardown_dir, NULL }, \
	{ #fn "_io_uring", fn, setup_uring, teardown_dir, NULL }

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_scattered_writes_in_flight_read_back_exactly),
		BOTH(test_submit_beyond_depth_is_ebusy_and_empty_wait_is_eagain),
		BOTH(test_open_refuses_existing_file),
		BOTH(test_enospc_midstream_names_file_and_offset),
		BOTH(test_drain_returns_first_enospc),
		BOTH(test_real_short_write_is_continued_then_reported),
		BOTH(test_datasync_and_close_succeed_then_refuse_writes),
		BOTH(test_destroy_with_writes_in_flight_completes_them),
		cmocka_unit_test_setup_teardown(test_auto_reports_the_backend_it_chose,
						setup_pwrite, teardown_dir),
		cmocka_unit_test_setup_teardown(test_auto_falls_back_to_pwrite_when_io_uring_is_refused,
						setup_pwrite, teardown_dir),
		cmocka_unit_test_setup_teardown(test_open_rejects_bad_arguments,
						setup_pwrite, teardown_dir),
		cmocka_unit_test(test_backend_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
