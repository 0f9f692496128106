/*
 * io_priv.h - private to src/store: the one writer interface over two back
 * ends (io_uring and plain pwrite), in the spirit of Redis' rio.c.
 *
 * A struct kt_io is one file opened for writing.  The caller owns the
 * buffers it submits and must not touch one until kt_io_wait_one() has
 * returned its tag.  Writes land at explicit file offsets, so several can be
 * in flight at once; short writes are completed by the back end itself.
 */
#ifndef KT_STORE_IO_PRIV_H
#define KT_STORE_IO_PRIV_H

#include <stddef.h>
#include <stdint.h>

struct kt_io;

/* Opens path for writing with O_CREAT|O_EXCL (a segment is never
 * overwritten).  backend is enum kt_io_backend: KT_IO_AUTO tries io_uring
 * and falls back to pwrite on -ENOSYS/-EPERM/-ENOMEM (as seccomp'd
 * containers answer); KT_IO_URING fails instead of falling back.  depth is
 * the most writes in flight at once (>= 1). */
int kt_io_open(struct kt_io **out, const char *path, int backend, unsigned mode,
	       unsigned depth, char *errstr, size_t errstr_size);

/* The back end in use: KT_IO_URING or KT_IO_PWRITE. */
int kt_io_backend(const struct kt_io *io);

/* Queues a write of len bytes from buf at file offset off.  If depth writes
 * are already in flight, the caller must first reap one with
 * kt_io_wait_one(); submitting beyond depth returns -EBUSY. */
int kt_io_submit_write(struct kt_io *io, const void *buf, size_t len,
		       uint64_t off, uint64_t tag, char *errstr, size_t errstr_size);

/* Waits for one write to complete (in any order) and returns its tag.
 * A failed write returns its -errno (e.g. -ENOSPC) with the file, offset
 * and length in errstr; -EAGAIN when nothing is in flight. */
int kt_io_wait_one(struct kt_io *io, uint64_t *tag, char *errstr, size_t errstr_size);

/* Number of writes in flight. */
unsigned kt_io_inflight(const struct kt_io *io);

/* Waits for every write in flight; the first error is returned. */
int kt_io_drain(struct kt_io *io, char *errstr, size_t errstr_size);

/* fdatasync(2) of the file, after draining. */
int kt_io_datasync(struct kt_io *io, char *errstr, size_t errstr_size);

/* Closes the file (draining first).  Reports close(2) errors, which on some
 * file systems are where a deferred write error appears. */
int kt_io_close(struct kt_io *io, char *errstr, size_t errstr_size);

/* Frees the handle, closing the file if still open.  NULL accepted. */
void kt_io_destroy(struct kt_io *io);

/* Test hook: after this many more bytes are written through any kt_io in
 * the process, writes fail with -ENOSPC, as a full disk would.  UINT64_MAX
 * (the default) disables it.  Not thread-safe against concurrent writers;
 * for unit tests only. */
void kt_io_test_inject_enospc_after(uint64_t bytes);

#endif /* KT_STORE_IO_PRIV_H */
