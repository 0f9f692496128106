/*
 * io.c - the store's one writer interface (io_priv.h) and its plain pwrite
 * back end.
 *
 * Like Redis' rio.c, one small interface hides several back ends: the
 * segment writer submits block writes at explicit offsets and reaps their
 * completions, and does not care whether io_uring (io_uring.c) or
 * synchronous pwrite(2) (this file) carries them.  io_uring is preferred
 * because it lets the writer compress the next block while the kernel copies
 * the previous ones; pwrite is the fallback for kernels and containers
 * (seccomp, old kernels, locked-memory limits) that refuse io_uring.
 *
 * The pwrite back end performs each write at submission time and queues its
 * outcome, so kt_io_wait_one() hands completions back first in, first out
 * and a failed write is reported by the wait for its tag, exactly as the
 * io_uring back end reports it.  Callers therefore have one error path.
 */
#include "io_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io_backend_priv.h"
#include "kt_store.h"
#include "s3_priv.h"

/* Linux transfers at most 0x7ffff000 bytes per write; asking for 1 GiB at a
 * time keeps every request well inside that and inside io_uring's 32-bit
 * length field. */
#define KT_IO_MAX_CHUNK ((size_t)1 << 30)

/* Far above any useful number of block writes in flight, and below
 * io_uring's own ring size limit (32768 entries), so that a depth valid for
 * one back end is valid for both. */
#define KT_IO_MAX_DEPTH 4096u

/* The outcome of one pwrite, kept until kt_io_wait_one() reaps it. */
struct kt_io_done {
	uint64_t tag;
	uint64_t off;
	size_t len;
	size_t written;
	int err;
	char msg[512]; /* S3 back end: the failure as the store answered it */
};

struct kt_io {
	int backend;   /* KT_IO_URING or KT_IO_PWRITE, never KT_IO_AUTO */
	int fd;        /* -1 once closed */
	char *path;    /* owned; for error messages */
	unsigned depth;
	unsigned inflight;
	int broken;    /* a ring failure left writes we can no longer reap */
	struct kt_io_uring *ring;  /* io_uring back end only; owned */
	struct kt_io_done *done;   /* pwrite and S3 back ends: depth entries, a FIFO */
	unsigned done_head;
	struct kt_io_s3 *s3;       /* S3 back end only; owned */
	int s3_open;               /* S3: not yet closed */
};

/* Open for writes: a file descriptor, or an upload not yet sealed. */
static int io_is_open(const struct kt_io *io)
{
	return io->s3 ? io->s3_open : io->fd >= 0;
}

/* UINT64_MAX means unlimited.  Atomic so that a writer thread and the test
 * that armed the hook do not race on it, although the hook is meant for
 * single-threaded unit tests. */
static _Atomic uint64_t kt_io_enospc_budget = UINT64_MAX;

void kt_io_test_inject_enospc_after(uint64_t bytes)
{
	atomic_store(&kt_io_enospc_budget, bytes);
}

size_t kt_io_budget_take(size_t len)
{
	uint64_t cur = atomic_load(&kt_io_enospc_budget);
	uint64_t take;

	do {
		if (cur == UINT64_MAX)
			return len;
		take = cur < len ? cur : len;
	} while (!atomic_compare_exchange_weak(&kt_io_enospc_budget, &cur, cur - take));
	return (size_t)take;
}

int kt_io_write_error(char *errstr, size_t errstr_size, int err, const char *path,
		      uint64_t off, size_t len, size_t done)
{
	return kt_seterr(errstr, errstr_size, err,
			 "cannot write %zu bytes at offset %llu of %s (%zu written): %s",
			 len, (unsigned long long)off, path, done, kt_strerror(err));
}

const char *kt_store_io_backend_name(int backend)
{
	switch (backend) {
	case KT_IO_AUTO:
		return "auto";
	case KT_IO_URING:
		return "io_uring";
	case KT_IO_PWRITE:
		return "pwrite";
	case KT_IO_S3:
		return "s3";
	default:
		return "unknown";
	}
}

/* The errors with which kernels and seccomp filters refuse io_uring, as
 * opposed to real failures (a bad argument, a broken kernel) that must not
 * be hidden by a silent fallback. */
static int kt_io_uring_refused(int err)
{
	return err == -ENOSYS || err == -EPERM || err == -ENOMEM || err == -EOPNOTSUPP;
}

int kt_io_open(struct kt_io **out, const char *path, int backend, unsigned mode,
	       unsigned depth, char *errstr, size_t errstr_size)
{
	struct kt_io *io = NULL;
	int err;

	*out = NULL;
	if (backend != KT_IO_AUTO && backend != KT_IO_URING && backend != KT_IO_PWRITE)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "unknown I/O back end %d for %s", backend, path);
	if (depth == 0 || depth > KT_IO_MAX_DEPTH)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "I/O depth must be 1 to %u for %s, not %u", KT_IO_MAX_DEPTH,
				 path, depth);

	io = calloc(1, sizeof(*io));
	if (!io) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory opening %s", path);
		goto fail;
	}
	io->fd = -1;
	io->depth = depth;
	io->path = strdup(path);
	if (!io->path) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory opening %s", path);
		goto fail;
	}

	/* An object URL picks the object-storage back end whatever was
	 * asked: a bucket has no io_uring.  Writes complete at submission, so
	 * completions queue in the same FIFO as pwrite's. */
	if (kt_s3_url_is_s3(path)) {
		io->backend = KT_IO_S3;
		io->done = calloc(depth, sizeof(*io->done));
		if (!io->done) {
			err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory opening %s", path);
			goto fail;
		}
		err = kt_io_s3_create(&io->s3, path, errstr, errstr_size);
		if (err)
			goto fail;
		io->s3_open = 1;
		*out = io;
		return 0;
	}

	/* The ring is set up before the file is created, so that a refused
	 * io_uring never leaves an empty file behind. */
	io->backend = KT_IO_PWRITE;
	if (backend != KT_IO_PWRITE) {
		err = kt_io_uring_create(&io->ring, depth, io->path, errstr, errstr_size);
		if (err == 0) {
			io->backend = KT_IO_URING;
		} else if (backend != KT_IO_AUTO || !kt_io_uring_refused(err)) {
			goto fail;
		} else if (errstr && errstr_size) {
			/* The fallback is not an error: leave no stale message. */
			errstr[0] = '\0';
		}
	}
	if (io->backend == KT_IO_PWRITE) {
		io->done = calloc(depth, sizeof(*io->done));
		if (!io->done) {
			err = kt_seterr(errstr, errstr_size, -ENOMEM,
					"out of memory opening %s", path);
			goto fail;
		}
	}

	io->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
	if (io->fd < 0) {
		err = -errno;
		if (err == -EEXIST)
			kt_seterr(errstr, errstr_size, err,
				  "cannot create %s: it already exists and is never overwritten",
				  path);
		else
			kt_seterr(errstr, errstr_size, err, "cannot create %s: %s",
				  path, kt_strerror(err));
		goto fail;
	}
	if (io->ring)
		kt_io_uring_set_fd(io->ring, io->fd);
	*out = io;
	return 0;

fail:
	kt_io_destroy(io);
	return err;
}

int kt_io_backend(const struct kt_io *io)
{
	return io->backend;
}

unsigned kt_io_inflight(const struct kt_io *io)
{
	return io->inflight;
}

/* Writes one whole request synchronously into d, completing short writes
 * and retrying interrupted ones.  The outcome stays in d for the wait. */
static void kt_io_pwrite_all(struct kt_io *io, struct kt_io_done *d, const void *buf)
{
	const unsigned char *p = buf;
	size_t allowed = kt_io_budget_take(d->len);

	while (d->written < allowed) {
		size_t chunk = allowed - d->written;
		ssize_t n;

		if (chunk > KT_IO_MAX_CHUNK)
			chunk = KT_IO_MAX_CHUNK;
		n = pwrite(io->fd, p + d->written, chunk, (off_t)(d->off + d->written));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			d->err = -errno;
			return;
		}
		if (n == 0) {
			/* A regular file never accepts nothing without an
			 * error; looping would spin forever. */
			d->err = -EIO;
			return;
		}
		d->written += (size_t)n;
	}
	if (allowed < d->len)
		d->err = -ENOSPC;
}

int kt_io_submit_write(struct kt_io *io, const void *buf, size_t len,
		       uint64_t off, uint64_t tag, char *errstr, size_t errstr_size)
{
	struct kt_io_done *d;
	int err;

	if (!io_is_open(io) || io->broken)
		return kt_seterr(errstr, errstr_size, -EBADF,
				 "cannot write to %s: it is closed or its I/O failed", io->path);
	if (io->inflight >= io->depth)
		return kt_seterr(errstr, errstr_size, -EBUSY,
				 "cannot queue a write to %s: %u writes already in flight",
				 io->path, io->inflight);
	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
		return kt_seterr(errstr, errstr_size, -EFBIG,
				 "cannot write %zu bytes at offset %llu of %s: beyond the largest file offset",
				 len, (unsigned long long)off, io->path);

	if (io->backend == KT_IO_URING) {
		err = kt_io_uring_submit(io->ring, buf, len, kt_io_budget_take(len), off, tag,
					 errstr, errstr_size);
		if (err < 0)
			return err;
		io->inflight++;
		return 0;
	}

	d = &io->done[(io->done_head + io->inflight) % io->depth];
	d->tag = tag;
	d->off = off;
	d->len = len;
	d->written = 0;
	d->err = 0;
	if (io->s3) {
		d->err = kt_io_s3_write(io->s3, buf, len, off);
		if (d->err)
			snprintf(d->msg, sizeof(d->msg), "%s", kt_io_s3_error(io->s3));
		else
			d->written = len;
	} else {
		kt_io_pwrite_all(io, d, buf);
	}
	io->inflight++;
	return 0;
}

int kt_io_wait_one(struct kt_io *io, uint64_t *tag, char *errstr, size_t errstr_size)
{
	struct kt_io_done *d;
	int retired = 0;
	int err;

	if (io->inflight == 0)
		return kt_seterr(errstr, errstr_size, -EAGAIN,
				 "no write to %s is in flight", io->path);
	if (io->broken)
		return kt_seterr(errstr, errstr_size, io->broken,
				 "the I/O ring of %s failed earlier: %s", io->path,
				 kt_strerror(io->broken));

	if (io->backend == KT_IO_URING) {
		err = kt_io_uring_wait_one(io->ring, tag, &retired, errstr, errstr_size);
		if (retired)
			io->inflight--;
		else if (err < 0)
			io->broken = err;
		return err;
	}

	d = &io->done[io->done_head];
	io->done_head = (io->done_head + 1) % io->depth;
	io->inflight--;
	*tag = d->tag;
	if (d->err < 0 && io->s3)
		return kt_seterr(errstr, errstr_size, d->err, "%s", d->msg);
	if (d->err < 0)
		return kt_io_write_error(errstr, errstr_size, d->err, io->path, d->off,
					 d->len, d->written);
	return 0;
}

int kt_io_drain(struct kt_io *io, char *errstr, size_t errstr_size)
{
	int first = 0;

	while (io->inflight > 0 && !io->broken) {
		uint64_t tag;
		/* Only the first failure's sentence is kept; the later ones are
		 * usually its consequences (the same full disk). */
		int err = first ? kt_io_wait_one(io, &tag, NULL, 0)
				: kt_io_wait_one(io, &tag, errstr, errstr_size);

		if (err < 0 && first == 0)
			first = err;
	}
	if (first == 0 && io->broken)
		first = kt_seterr(errstr, errstr_size, io->broken,
				  "the I/O ring of %s failed: %s", io->path,
				  kt_strerror(io->broken));
	return first;
}

int kt_io_datasync(struct kt_io *io, char *errstr, size_t errstr_size)
{
	int err;

	if (!io_is_open(io))
		return kt_seterr(errstr, errstr_size, -EBADF,
				 "cannot fdatasync %s: it is closed", io->path);
	err = kt_io_drain(io, errstr, errstr_size);
	if (err < 0 || io->s3)
		/* An object's durability point is its completion, at close. */
		return err;
	while (fdatasync(io->fd) < 0) {
		if (errno == EINTR)
			continue;
		err = -errno;
		return kt_seterr(errstr, errstr_size, err, "cannot fdatasync %s: %s",
				 io->path, kt_strerror(err));
	}
	return 0;
}

int kt_io_close(struct kt_io *io, char *errstr, size_t errstr_size)
{
	int err;
	int fd = io->fd;

	if (!io_is_open(io))
		return kt_seterr(errstr, errstr_size, -EBADF,
				 "cannot close %s: it is already closed", io->path);
	err = kt_io_drain(io, errstr, errstr_size);
	if (io->s3) {
		/* The seal: the object appears whole, or not at all. */
		io->s3_open = 0;
		if (!err && (err = kt_io_s3_finish(io->s3)) != 0)
			kt_seterr(errstr, errstr_size, err, "%s", kt_io_s3_error(io->s3));
		return err;
	}
	io->fd = -1;
	/* close(2) is not retried on EINTR: Linux has released the descriptor
	 * whatever it answers, and a retry could close another thread's file. */
	if (close(fd) < 0 && err == 0) {
		err = -errno;
		kt_seterr(errstr, errstr_size, err, "cannot close %s: %s", io->path,
			  kt_strerror(err));
	}
	return err;
}

void kt_io_destroy(struct kt_io *io)
{
	if (!io)
		return;
	/* The kernel may still be reading the caller's buffers: let every
	 * write finish before the ring goes away.  Errors no longer matter. */
	if (io->inflight > 0)
		kt_io_drain(io, NULL, 0);
	kt_io_uring_destroy(io->ring);
	kt_io_s3_destroy(io->s3);
	if (io->fd >= 0)
		close(io->fd);
	free(io->done);
	free(io->path);
	free(io);
}
