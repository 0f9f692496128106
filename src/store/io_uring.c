/*
 * io_uring.c - the io_uring back end of the store's writer interface.
 *
 * One ring of `depth` entries per open file.  Every write in flight owns a
 * slot; the slot's index travels through the kernel as the SQE's user_data,
 * so a completion finds its request (and the caller's tag) in any order.
 * A slot remembers how much of its request is done, which lets a short write
 * be resubmitted for the remainder and a -EAGAIN/-EINTR completion be
 * retried without the caller knowing.
 *
 * Following liburing's convention, every function returns 0 or -errno, and
 * a kernel that refuses io_uring is a reason to fall back (io.c decides),
 * never a crash.
 */
#include <errno.h>
#include <liburing.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>

#include "io_backend_priv.h"
#include "kt_common.h"

/* Largest single request, as in io.c; io_uring lengths are 32-bit. */
#define KT_IO_URING_MAX_CHUNK ((size_t)1 << 30)

/* How many times in a row one request may come back -EAGAIN/-EINTR, or one
 * submission be refused for lack of kernel resources, before we give up:
 * enough for any transient pressure, and no infinite loop on a kernel bug. */
#define KT_IO_URING_MAX_RETRIES 10000

#define KT_IO_URING_NO_SLOT UINT_MAX

struct kt_io_uring_slot {
	const unsigned char *buf; /* the caller's; borrowed until retired */
	size_t len;               /* bytes requested */
	size_t allowed;           /* of len, what the ENOSPC test budget lets through */
	size_t done;              /* bytes the kernel has written */
	uint64_t off;
	uint64_t tag;
	unsigned retries;
	unsigned next_free;       /* free list link while unused */
	int is_nop;               /* the SQE in flight is a NOP carrying a verdict */
	int busy;                 /* a request owns this slot */
};

struct kt_io_uring {
	struct io_uring ring;
	int ring_ready;
	int fd;
	int broken;               /* 0, or the -errno that made the ring unusable */
	const char *path;         /* borrowed from struct kt_io */
	unsigned depth;
	unsigned free_head;
	struct kt_io_uring_slot *slots;
};

int kt_io_uring_create(struct kt_io_uring **out, unsigned depth, const char *path,
		       char *errstr, size_t errstr_size)
{
	struct kt_io_uring *ring;
	struct io_uring_probe *probe;
	int err;

	*out = NULL;
	ring = calloc(1, sizeof(*ring));
	if (!ring)
		return kt_seterr(errstr, errstr_size, -ENOMEM,
				 "out of memory setting up io_uring for %s", path);
	ring->fd = -1;
	ring->path = path;
	ring->depth = depth;
	ring->slots = calloc(depth, sizeof(*ring->slots));
	if (!ring->slots) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM,
				"out of memory setting up io_uring for %s", path);
		goto fail;
	}
	for (unsigned i = 0; i < depth; i++)
		ring->slots[i].next_free = i + 1 < depth ? i + 1 : KT_IO_URING_NO_SLOT;
	ring->free_head = 0;

	err = io_uring_queue_init(depth, &ring->ring, 0);
	if (err < 0) {
		kt_seterr(errstr, errstr_size, err,
			  "cannot set up an io_uring of %u entries for %s: %s",
			  depth, path, kt_strerror(err));
		goto fail;
	}
	ring->ring_ready = 1;

	/* Kernels before 5.6 create rings but cannot write through them;
	 * they also lack the probe, so a missing probe means no writes. */
	probe = io_uring_get_probe_ring(&ring->ring);
	if (!probe || !io_uring_opcode_supported(probe, IORING_OP_WRITE) ||
	    !io_uring_opcode_supported(probe, IORING_OP_NOP)) {
		if (probe)
			io_uring_free_probe(probe);
		err = kt_seterr(errstr, errstr_size, -EOPNOTSUPP,
				"this kernel's io_uring cannot write files (for %s)", path);
		goto fail;
	}
	io_uring_free_probe(probe);
	*out = ring;
	return 0;

fail:
	kt_io_uring_destroy(ring);
	return err;
}

void kt_io_uring_set_fd(struct kt_io_uring *ring, int fd)
{
	ring->fd = fd;
}

/* Hands every prepared SQE to the kernel.  A failure here leaves an SQE
 * in the ring that names a slot we are about to reuse, so it makes the ring
 * unusable rather than risk a stale request later. */
static int kt_io_uring_flush(struct kt_io_uring *ring)
{
	unsigned retries = 0;

	while (io_uring_sq_ready(&ring->ring) > 0) {
		int r = io_uring_submit(&ring->ring);

		if (r > 0)
			continue;
		if (r == -EINTR || ((r == 0 || r == -EAGAIN || r == -EBUSY) &&
				    ++retries < KT_IO_URING_MAX_RETRIES)) {
			sched_yield();
			continue;
		}
		ring->broken = r < 0 ? r : -EIO;
		return ring->broken;
	}
	return 0;
}

/* Queues the next piece of slot i's request: the rest of its bytes, or a
 * NOP when nothing remains that the ENOSPC budget allows, so the verdict
 * still arrives through the ring in completion order. */
static int kt_io_uring_queue(struct kt_io_uring *ring, unsigned i)
{
	struct kt_io_uring_slot *slot = &ring->slots[i];
	struct io_uring_sqe *sqe;

	sqe = io_uring_get_sqe(&ring->ring);
	if (!sqe) {
		int err = kt_io_uring_flush(ring);

		if (err < 0)
			return err;
		sqe = io_uring_get_sqe(&ring->ring);
		if (!sqe)
			return -EBUSY;
	}
	if (slot->done < slot->allowed) {
		size_t chunk = slot->allowed - slot->done;

		if (chunk > KT_IO_URING_MAX_CHUNK)
			chunk = KT_IO_URING_MAX_CHUNK;
		io_uring_prep_write(sqe, ring->fd, slot->buf + slot->done, (unsigned)chunk,
				    slot->off + slot->done);
		slot->is_nop = 0;
	} else {
		io_uring_prep_nop(sqe);
		slot->is_nop = 1;
	}
	io_uring_sqe_set_data64(sqe, i);
	return kt_io_uring_flush(ring);
}

static int kt_io_uring_broken_error(const struct kt_io_uring *ring, char *errstr,
				    size_t errstr_size)
{
	return kt_seterr(errstr, errstr_size, ring->broken, "the io_uring of %s failed: %s",
			 ring->path, kt_strerror(ring->broken));
}

static void kt_io_uring_release(struct kt_io_uring *ring, unsigned i)
{
	ring->slots[i].buf = NULL;
	ring->slots[i].busy = 0;
	ring->slots[i].next_free = ring->free_head;
	ring->free_head = i;
}

int kt_io_uring_submit(struct kt_io_uring *ring, const void *buf, size_t len,
		       size_t allowed, uint64_t off, uint64_t tag,
		       char *errstr, size_t errstr_size)
{
	struct kt_io_uring_slot *slot;
	unsigned i;
	int err;

	if (ring->broken)
		return kt_io_uring_broken_error(ring, errstr, errstr_size);
	i = ring->free_head;
	if (i == KT_IO_URING_NO_SLOT)
		return kt_seterr(errstr, errstr_size, -EBUSY,
				 "cannot queue a write to %s: every io_uring slot is in use",
				 ring->path);
	slot = &ring->slots[i];
	ring->free_head = slot->next_free;
	slot->busy = 1;
	slot->buf = buf;
	slot->len = len;
	slot->allowed = allowed;
	slot->done = 0;
	slot->off = off;
	slot->tag = tag;
	slot->retries = 0;

	err = kt_io_uring_queue(ring, i);
	if (err < 0) {
		kt_io_uring_release(ring, i);
		return kt_seterr(errstr, errstr_size, err,
				 "cannot submit a write of %zu bytes at offset %llu of %s to io_uring: %s",
				 len, (unsigned long long)off, ring->path, kt_strerror(err));
	}
	return 0;
}

int kt_io_uring_wait_one(struct kt_io_uring *ring, uint64_t *tag, int *retired,
			 char *errstr, size_t errstr_size)
{
	*retired = 0;
	for (;;) {
		struct io_uring_cqe *cqe;
		struct kt_io_uring_slot *slot;
		uint64_t i;
		int res;
		int err;

		if (ring->broken)
			return kt_io_uring_broken_error(ring, errstr, errstr_size);
		err = io_uring_wait_cqe(&ring->ring, &cqe);
		if (err == -EINTR || err == -EAGAIN)
			continue;
		if (err < 0) {
			ring->broken = err;
			continue;
		}
		i = io_uring_cqe_get_data64(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&ring->ring, cqe);
		if (i >= ring->depth || !ring->slots[i].busy) {
			/* Nothing of ours carries this user_data: the ring's
			 * bookkeeping cannot be trusted any more. */
			ring->broken = -EIO;
			continue;
		}
		slot = &ring->slots[i];

		err = 0;
		if (res < 0) {
			if ((res == -EAGAIN || res == -EINTR) &&
			    ++slot->retries < KT_IO_URING_MAX_RETRIES) {
				err = kt_io_uring_queue(ring, (unsigned)i);
				if (err == 0)
					continue;
			} else {
				err = res;
			}
		} else if (!slot->is_nop) {
			if (res == 0) {
				/* No progress and no error: retrying would spin. */
				err = -EIO;
			} else {
				slot->done += (size_t)res;
				slot->retries = 0;
				if (slot->done < slot->allowed) {
					err = kt_io_uring_queue(ring, (unsigned)i);
					if (err == 0)
						continue;
				}
			}
		}
		if (err == 0 && slot->done < slot->len)
			err = -ENOSPC; /* the test budget ran out inside this write */

		*tag = slot->tag;
		*retired = 1;
		if (err < 0)
			kt_io_write_error(errstr, errstr_size, err, ring->path, slot->off,
					  slot->len, slot->done);
		kt_io_uring_release(ring, (unsigned)i);
		return err;
	}
}

void kt_io_uring_destroy(struct kt_io_uring *ring)
{
	if (!ring)
		return;
	if (ring->ring_ready)
		io_uring_queue_exit(&ring->ring);
	free(ring->slots);
	free(ring);
}
