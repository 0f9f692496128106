/*
 * io_backend_priv.h - private to src/store/io.c and src/store/io_uring.c:
 * the contract between the dispatching front end (io.c) and the io_uring
 * back end.  Nothing else in ktape includes this; the rest of the store uses
 * io_priv.h only, so liburing never leaks into other translation units.
 */
#ifndef KT_STORE_IO_BACKEND_PRIV_H
#define KT_STORE_IO_BACKEND_PRIV_H

#include <stddef.h>
#include <stdint.h>

/* One io_uring ring and the per-write state of the writes in flight. */
struct kt_io_uring;

/* Sets up a ring of depth entries.  Returns -ENOSYS, -EPERM, -ENOMEM or
 * -EOPNOTSUPP when the kernel (or a seccomp filter) does not let us use
 * io_uring writes, so the caller can fall back to pwrite.  path is borrowed:
 * it must outlive the ring and is used only in error messages. */
int kt_io_uring_create(struct kt_io_uring **out, unsigned depth, const char *path,
		       char *errstr, size_t errstr_size);

/* The file the ring writes to; set once the file is open. */
void kt_io_uring_set_fd(struct kt_io_uring *ring, int fd);

/* Queues and submits one write; the caller has checked the depth.  allowed
 * is how many of len bytes the ENOSPC test budget lets through; when it is
 * below len the write ends in -ENOSPC after those bytes, as a full disk
 * would. */
int kt_io_uring_submit(struct kt_io_uring *ring, const void *buf, size_t len,
		       size_t allowed, uint64_t off, uint64_t tag,
		       char *errstr, size_t errstr_size);

/* Waits for one write to finish, completing short writes and retrying
 * -EAGAIN/-EINTR internally.  The caller has checked that a write is in
 * flight.  Returns 0 or the write's -errno with *tag set and *retired = 1.
 * A failure of the ring itself (not of one write) returns its -errno with
 * *retired = 0; the ring is then unusable and every later call fails. */
int kt_io_uring_wait_one(struct kt_io_uring *ring, uint64_t *tag, int *retired,
			 char *errstr, size_t errstr_size);

/* Frees the ring.  The caller has drained it first.  NULL accepted. */
void kt_io_uring_destroy(struct kt_io_uring *ring);

/* The object-storage back end (io_s3.c): writes must come in file order;
 * finish is the seal (the object appears whole), destroy without finish
 * aborts.  Calls other than create return 0 or a code with the sentence
 * in kt_io_s3_error(). */
struct kt_io_s3;
int kt_io_s3_create(struct kt_io_s3 **out, const char *url, char *errstr, size_t errstr_size);
int kt_io_s3_write(struct kt_io_s3 *w, const void *buf, size_t len, uint64_t off);
int kt_io_s3_finish(struct kt_io_s3 *w);
const char *kt_io_s3_error(const struct kt_io_s3 *w);
void kt_io_s3_destroy(struct kt_io_s3 *w);

/* ENOSPC test budget, shared by both back ends: returns how many of len
 * bytes may still be written and deducts them. */
size_t kt_io_budget_take(size_t len);

/* Formats the sentence every failed write reports, so both back ends name
 * the file, offset and length the same way. */
int kt_io_write_error(char *errstr, size_t errstr_size, int err, const char *path,
		      uint64_t off, size_t len, size_t done);

#endif /* KT_STORE_IO_BACKEND_PRIV_H */
