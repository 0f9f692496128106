/*
 * writer.c - builds segment files (format/segment.md) from records.
 *
 * Records are encoded straight into one of two reusable raw block buffers.
 * When it reaches the block size, the block is handed to a worker thread
 * and the appender goes on filling the other buffer, so compression
 * overlaps with the caller's own work (as zstd's command-line tool overlaps
 * it with its I/O).  The worker compresses each block into one of a ring of
 * output buffers (block header and payload contiguous, so one write per
 * block), checksums it and queues it on the I/O back end, with up to
 * blocks_in_flight writes pending.  Blocks are handed over and written in
 * order, by the one worker, so each lands at its final position.
 * Nothing is allocated per record: buffers grow only when a record larger
 * than any before arrives, so memory is bounded by (blocks_in_flight + 3) x
 * max(block size, largest record).
 *
 * Threads: the appender owns the block it fills; the worker owns the block
 * handed to it, the output ring, the I/O handle and the block list until
 * seal stops it.  Hand-over goes through one mutex and condition variable.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "io_priv.h"
#include "kt_store.h"
#include "segment_format.h"

/* Largest block size accepted: a block's sizes are u32 on disk and a record
 * may add up to 1 GiB to it. */
#define WRITER_MAX_BLOCK_SIZE (256u << 20)
#define WRITER_MAX_IN_FLIGHT 64u
/* Idle compression contexts kept for the next block (see cctx_borrow()). */
#define WRITER_CCTX_KEEP 16u

/* One output buffer of the ring: block header + stored payload. */
struct writer_slot {
	uint8_t *buf;
	size_t cap;
	int busy; /* a write from it is in flight */
};

/* A block being filled by the appender or compressed by the worker.
 * Timestamps are encoded relative to the block's first record (base_ts)
 * while it fills, since min_ts is not known yet; when a later record turns
 * out older, the worker re-encodes the block once (see rebase_block()). */
struct writer_block {
	uint8_t *raw;
	size_t raw_cap;
	size_t raw_len;
	uint32_t records;
	int64_t first;
	int64_t last;
	int64_t base_ts;
	int64_t min_ts;
	int64_t max_ts;
	int queued; /* handed to the worker and not yet done (under lock) */
};

struct kt_store_writer {
	char *path;
	struct kt_store_writer_opts opts;
	struct kt_io *io;
	char topic[KT_STORE_MAX_TOPIC_LEN + 1];
	int32_t partition;
	uint8_t header[KT_SEG_FILE_HEADER_MAX];
	uint64_t file_pos; /* where the next block lands */

	struct writer_block fill[2]; /* double buffer */
	unsigned cur;                /* the block the appender fills */
	unsigned next_job;           /* the block the worker takes next */
	uint8_t *spare;              /* worker: re-encoding target */
	size_t spare_cap;

	struct writer_slot *slots;
	unsigned slot_count;
	uint8_t *trailer; /* seek table + footer, built at seal */

	struct kt_store_block_info *blocks; /* one per block written */
	size_t block_count;
	size_t block_cap;

	uint64_t raw_total;
	int64_t last_offset;
	int have_last;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t worker;
	int worker_started;
	int quit; /* under lock: the worker must exit */

	int failed;          /* first fatal error (atomic): the segment is lost */
	char failmsg[512];   /* written once, before failed is set */
	int sealed;
	int index_attempted; /* seal reached the index step */
};

void kt_store_writer_opts_init(struct kt_store_writer_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->codec = KT_CODEC_ZSTD;
	opts->level = 3;
	opts->block_size = 1u << 20;
	opts->blocks_in_flight = 4;
	opts->io_backend = KT_IO_AUTO;
	opts->file_mode = 0600;
	opts->log = NULL;
}

int kt_store_index_path(const char *segment_path, char *buf, size_t buf_size)
{
	size_t len = strlen(segment_path);
	int n;

	/* A segment named *.kts gets *.kti; any other name gets .kti added,
	 * so the index can never overwrite its own segment. */
	if (len >= 4 && strcmp(segment_path + len - 4, ".kts") == 0)
		n = snprintf(buf, buf_size, "%.*s.kti", (int)(len - 4), segment_path);
	else
		n = snprintf(buf, buf_size, "%s.kti", segment_path);
	if (n < 0 || (size_t)n >= buf_size)
		return -ENAMETOOLONG;
	return 0;
}

/* Records the first fatal error; later calls report it again, since the
 * segment can no longer be completed.  Either thread may call it. */
static int writer_fail(struct kt_store_writer *writer, int err, const char *msg,
		       char *errstr, size_t errstr_size)
{
	pthread_mutex_lock(&writer->lock);
	if (!writer->failed) {
		snprintf(writer->failmsg, sizeof(writer->failmsg), "%s", msg);
		__atomic_store_n(&writer->failed, err, __ATOMIC_RELEASE);
	}
	pthread_cond_broadcast(&writer->cond);
	pthread_mutex_unlock(&writer->lock);
	return kt_seterr(errstr, errstr_size, err, "%s", msg);
}

/* The first fatal error, or 0; failmsg is complete once this is nonzero. */
static int writer_failed(struct kt_store_writer *writer)
{
	return __atomic_load_n(&writer->failed, __ATOMIC_ACQUIRE);
}

static int report_failure(struct kt_store_writer *writer, char *errstr, size_t errstr_size)
{
	return kt_seterr(errstr, errstr_size, writer_failed(writer), "%s", writer->failmsg);
}

static int grow_buffer(uint8_t **buf, size_t *cap, size_t need)
{
	size_t ncap = *cap ? *cap : 4096;
	uint8_t *nbuf;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	nbuf = realloc(*buf, ncap);
	if (!nbuf)
		return -ENOMEM;
	*buf = nbuf;
	*cap = ncap;
	return 0;
}

/* Raw block buffers keep room for a block header in front of the records,
 * so that a block stored as is goes to the file straight from them, in one
 * write, without a copy into an output slot.  These grow and free such a
 * buffer by its records' address; cap counts the records' room only. */
static int grow_raw(uint8_t **raw, size_t *cap, size_t need)
{
	uint8_t *base = *raw ? *raw - KT_SEG_BLOCK_HEADER_SIZE : NULL;
	size_t base_cap = *raw ? *cap + KT_SEG_BLOCK_HEADER_SIZE : 0;

	if (*raw && need <= *cap)
		return 0;
	if (grow_buffer(&base, &base_cap, need + KT_SEG_BLOCK_HEADER_SIZE) < 0)
		return -ENOMEM;
	*raw = base + KT_SEG_BLOCK_HEADER_SIZE;
	*cap = base_cap - KT_SEG_BLOCK_HEADER_SIZE;
	return 0;
}

static void free_raw(uint8_t *raw)
{
	if (raw)
		free(raw - KT_SEG_BLOCK_HEADER_SIZE);
}

static void *writer_worker(void *arg);
static void stop_worker(struct kt_store_writer *writer);

int kt_store_writer_create(struct kt_store_writer **out, const char *path,
			   const char *topic, int32_t partition,
			   const struct kt_store_writer_opts *opts,
			   char *errstr, size_t errstr_size)
{
	struct kt_store_writer *writer = NULL;
	struct kt_store_writer_opts defaults;
	struct kt_seg_file_header hdr;
	size_t topic_len, header_len;
	char ioerr[512];
	int err;

	*out = NULL;
	if (!opts) {
		kt_store_writer_opts_init(&defaults);
		opts = &defaults;
	}
	topic_len = topic ? strlen(topic) : 0;
	if (topic_len == 0 || topic_len > KT_STORE_MAX_TOPIC_LEN)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "segment %s: topic name must be 1 to %d bytes long",
				 path, KT_STORE_MAX_TOPIC_LEN);
	if (partition < 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "segment %s: partition %d is negative", path, (int)partition);
	if (opts->codec != KT_CODEC_NONE && opts->codec != KT_CODEC_ZSTD)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "segment %s: unknown codec %d", path, opts->codec);
	if (opts->codec == KT_CODEC_ZSTD &&
	    (opts->level < ZSTD_minCLevel() || opts->level > ZSTD_maxCLevel()))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "segment %s: zstd level %d is outside %d..%d", path,
				 opts->level, ZSTD_minCLevel(), ZSTD_maxCLevel());
	if (opts->block_size == 0 || opts->block_size > WRITER_MAX_BLOCK_SIZE)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "segment %s: block size %zu is outside 1..%u bytes", path,
				 opts->block_size, WRITER_MAX_BLOCK_SIZE);
	if (opts->blocks_in_flight == 0 || opts->blocks_in_flight > WRITER_MAX_IN_FLIGHT)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "segment %s: blocks in flight %u is outside 1..%u", path,
				 opts->blocks_in_flight, WRITER_MAX_IN_FLIGHT);

	writer = calloc(1, sizeof(*writer));
	if (!writer)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "segment %s: out of memory", path);
	pthread_mutex_init(&writer->lock, NULL);
	pthread_cond_init(&writer->cond, NULL);
	writer->opts = *opts;
	writer->partition = partition;
	memcpy(writer->topic, topic, topic_len + 1);
	writer->slot_count = opts->blocks_in_flight;
	writer->path = strdup(path);
	writer->slots = calloc(writer->slot_count, sizeof(*writer->slots));
	if (!writer->path || !writer->slots) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "segment %s: out of memory", path);
		goto fail;
	}
	for (int i = 0; i < 2; i++) {
		if (grow_raw(&writer->fill[i].raw, &writer->fill[i].raw_cap,
			     opts->block_size + 64) < 0) {
			err = kt_seterr(errstr, errstr_size, -ENOMEM,
					"segment %s: out of memory for a %zu-byte block", path,
					opts->block_size);
			goto fail;
		}
	}

	/* Depth: every block slot, plus the file header and the trailer. */
	err = kt_io_open(&writer->io, path, opts->io_backend, opts->file_mode,
			 writer->slot_count + 2, ioerr, sizeof(ioerr));
	if (err) {
		err = kt_seterr(errstr, errstr_size, err, "%s", ioerr);
		/* kt_io_open creates nothing on failure, and the path may
		 * belong to someone else (O_EXCL), so nothing to unlink. */
		goto fail;
	}
	writer->opts.io_backend = kt_io_backend(writer->io);
	kt_log(opts->log, KT_LOG_DEBUG, "segment %s: writing through %s", path,
	       kt_store_io_backend_name(writer->opts.io_backend));

	hdr.version = KT_SEG_VERSION;
	hdr.partition = partition;
	hdr.topic_len = (uint16_t)topic_len;
	hdr.created_ms = kt_wall_ms();
	hdr.topic = topic;
	header_len = kt_seg_file_header_pack(writer->header, &hdr);
	err = kt_io_submit_write(writer->io, writer->header, header_len, 0,
				 writer->slot_count, ioerr, sizeof(ioerr));
	if (err) {
		err = kt_seterr(errstr, errstr_size, err, "%s", ioerr);
		goto fail;
	}
	writer->file_pos = header_len;
	err = -pthread_create(&writer->worker, NULL, writer_worker, writer);
	if (err) {
		err = kt_seterr(errstr, errstr_size, err, "segment %s: cannot start the "
				"compression thread: %s", path, kt_strerror(err));
		goto fail;
	}
	writer->worker_started = 1;
	*out = writer;
	return 0;

fail:
	kt_store_writer_destroy(writer);
	return err;
}

/* Re-encodes a block with timestamps relative to its true minimum.  While
 * filling, ts_delta held (timestamp - base_ts) modulo 2^64; adding
 * (base_ts - min_ts) modulo 2^64 gives timestamp - min_ts exactly, since
 * the true value lies in [0, 2^64).  Only blocks whose first record is not
 * their oldest take this path.  Worker only. */
static int rebase_block(struct kt_store_writer *writer, struct writer_block *blk)
{
	uint64_t shift = (uint64_t)blk->base_ts - (uint64_t)blk->min_ts;
	size_t need = 0;

	for (int pass = 0; pass < 2; pass++) {
		const uint8_t *p = blk->raw, *end = blk->raw + blk->raw_len;
		uint8_t *o;

		if (pass == 1 && grow_raw(&writer->spare, &writer->spare_cap, need) < 0)
			return -ENOMEM;
		o = writer->spare;
		while (p < end) {
			uint64_t len = 0, od = 0, tsd = 0;
			const uint8_t *rec_end, *q;
			size_t body;

			/* The writer produced these bytes itself, so they
			 * parse; no bounds beyond the buffer's are needed. */
			kt_varint_get(&p, end, &len);
			rec_end = p + len;
			q = p + 1;
			kt_varint_get(&q, rec_end, &od);
			kt_varint_get(&q, rec_end, &tsd);
			tsd += shift;
			body = 1 + kt_varint_len(od) + kt_varint_len(tsd) + (size_t)(rec_end - q);
			if (pass == 0) {
				need += kt_varint_len(body) + body;
			} else {
				o = kt_varint_put(o, body);
				*o++ = *p;
				o = kt_varint_put(o, od);
				o = kt_varint_put(o, tsd);
				memcpy(o, q, (size_t)(rec_end - q));
				o += rec_end - q;
			}
			p = rec_end;
		}
	}
	/* Swap the buffers: the block's old one becomes the next spare. */
	{
		uint8_t *tmp = blk->raw;
		size_t tcap = blk->raw_cap;

		blk->raw = writer->spare;
		blk->raw_cap = writer->spare_cap;
		writer->spare = tmp;
		writer->spare_cap = tcap;
	}
	blk->raw_len = need;
	return 0;
}

/* Compression contexts shared by the writers of the process.  A context's
 * tables (hundreds of KiB at level 3) are read and written by every block
 * it compresses: with a context per writer, a capture of many partitions
 * went through as many sets of tables as partitions, missing the CPU caches
 * on every block, and kept them all in memory.  A block borrows a context
 * for its one compression call instead, the most recently returned first,
 * so that a few hot contexts serve every writer. */
static pthread_mutex_t cctx_lock = PTHREAD_MUTEX_INITIALIZER;
static ZSTD_CCtx *cctx_idle[WRITER_CCTX_KEEP];
static unsigned cctx_idle_count;

/* A context set up for one block at level: one frame with its content size,
 * so a reader can check raw_size before decompressing, and without zstd's
 * own checksum, since XXH3-64 already covers the stored bytes.  NULL when
 * out of memory. */
static ZSTD_CCtx *cctx_borrow(int level)
{
	ZSTD_CCtx *cctx = NULL;

	pthread_mutex_lock(&cctx_lock);
	if (cctx_idle_count)
		cctx = cctx_idle[--cctx_idle_count];
	pthread_mutex_unlock(&cctx_lock);
	if (!cctx)
		cctx = ZSTD_createCCtx();
	if (cctx) {
		ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
		ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
		ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
		ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0);
	}
	return cctx;
}

static void cctx_return(ZSTD_CCtx *cctx)
{
	pthread_mutex_lock(&cctx_lock);
	if (cctx_idle_count < WRITER_CCTX_KEEP) {
		cctx_idle[cctx_idle_count++] = cctx;
		cctx = NULL;
	}
	pthread_mutex_unlock(&cctx_lock);
	ZSTD_freeCCtx(cctx);
}

/* Waits for writes until an output slot is free; returns its index.
 * Worker only (and seal, once the worker has stopped). */
static int free_slot(struct kt_store_writer *writer, unsigned *slot,
		     char *errstr, size_t errstr_size)
{
	for (;;) {
		uint64_t tag;
		int err;

		for (unsigned i = 0; i < writer->slot_count; i++) {
			if (!writer->slots[i].busy) {
				*slot = i;
				return 0;
			}
		}
		err = kt_io_wait_one(writer->io, &tag, errstr, errstr_size);
		if (err)
			return err;
		if (tag < writer->slot_count)
			writer->slots[tag].busy = 0;
	}
}

/* Waits until the write tagged want has completed, freeing the slots of
 * the writes that complete meanwhile.  Worker only. */
static int wait_write(struct kt_store_writer *writer, uint64_t want, char *errstr,
		      size_t errstr_size)
{
	for (;;) {
		uint64_t tag;
		int err = kt_io_wait_one(writer->io, &tag, errstr, errstr_size);

		if (err)
			return err;
		if (tag < writer->slot_count)
			writer->slots[tag].busy = 0;
		if (tag == want)
			return 0;
	}
}

/* Compresses, checksums and queues one block.  Worker only. */
static int flush_block(struct kt_store_writer *writer, struct writer_block *wb,
		       char *errstr, size_t errstr_size)
{
	/* The tag of a block written from its raw buffer: past the slots,
	 * the file header's and the trailer's. */
	const uint64_t raw_tag = writer->slot_count + 2;
	struct kt_store_block_info *blk;
	struct writer_slot *slot = NULL;
	unsigned si = 0;
	size_t bound, stored;
	uint8_t *out;
	int codec = writer->opts.codec;
	int direct, err;

	if (wb->min_ts != wb->base_ts && rebase_block(writer, wb) < 0)
		return kt_seterr(errstr, errstr_size, -ENOMEM,
				 "segment %s: out of memory re-encoding block %zu",
				 writer->path, writer->block_count);
	if (writer->block_count == writer->block_cap) {
		size_t ncap = writer->block_cap ? writer->block_cap * 2 : 64;
		struct kt_store_block_info *nb = realloc(writer->blocks, ncap * sizeof(*nb));
		if (!nb)
			return kt_seterr(errstr, errstr_size, -ENOMEM,
					 "segment %s: out of memory for block %zu",
					 writer->path, writer->block_count);
		writer->blocks = nb;
		writer->block_cap = ncap;
	}
	/* A block stored as is goes out straight from its raw buffer (see
	 * grow_raw()) when the back end is done with a buffer once the
	 * submission returns (pwrite, object storage).  io_uring reads it
	 * later, and waiting for that here stalled this thread and the
	 * appender behind it (a 1.1 GB capture at -z none took 0.15 CPU
	 * seconds and 0.25 s more), so there it is copied into a slot like a
	 * compressed block and the write overlaps the next block. */
	direct = codec == KT_CODEC_NONE && kt_io_backend(writer->io) != KT_IO_URING;
	if (!direct) {
		err = free_slot(writer, &si, errstr, errstr_size);
		if (err)
			return err;
		slot = &writer->slots[si];
		bound = codec == KT_CODEC_ZSTD ? ZSTD_compressBound(wb->raw_len) : wb->raw_len;
		if (grow_buffer(&slot->buf, &slot->cap, KT_SEG_BLOCK_HEADER_SIZE + bound) < 0)
			return kt_seterr(errstr, errstr_size, -ENOMEM,
					 "segment %s: out of memory for block %zu", writer->path,
					 writer->block_count);
	}
	stored = wb->raw_len;
	if (codec == KT_CODEC_ZSTD) {
		ZSTD_CCtx *cctx;
		size_t n;

		cctx = cctx_borrow(writer->opts.level);
		if (!cctx)
			return kt_seterr(errstr, errstr_size, -ENOMEM,
					 "segment %s: cannot create a zstd context for block %zu",
					 writer->path, writer->block_count);
		n = ZSTD_compress2(cctx, slot->buf + KT_SEG_BLOCK_HEADER_SIZE,
				   slot->cap - KT_SEG_BLOCK_HEADER_SIZE, wb->raw, wb->raw_len);
		cctx_return(cctx);
		if (ZSTD_isError(n))
			return kt_seterr(errstr, errstr_size, -EIO,
					 "segment %s: zstd failed on block %zu: %s",
					 writer->path, writer->block_count,
					 ZSTD_getErrorName(n));
		/* Incompressible data is stored as is: the format lets each
		 * block choose, and reading it back then costs nothing. */
		if (n < wb->raw_len)
			stored = n;
		else
			codec = KT_CODEC_NONE;
	}
	if (codec == KT_CODEC_NONE && !direct)
		memcpy(slot->buf + KT_SEG_BLOCK_HEADER_SIZE, wb->raw, wb->raw_len);
	out = direct ? wb->raw - KT_SEG_BLOCK_HEADER_SIZE : slot->buf;

	blk = &writer->blocks[writer->block_count];
	blk->file_offset = writer->file_pos;
	blk->stored_size = (uint32_t)stored;
	blk->raw_size = (uint32_t)wb->raw_len;
	blk->record_count = wb->records;
	blk->codec = (uint32_t)codec;
	blk->first_offset = wb->first;
	blk->last_offset = wb->last;
	blk->min_ts = wb->min_ts;
	blk->max_ts = wb->max_ts;
	blk->checksum = kt_seg_checksum(out + KT_SEG_BLOCK_HEADER_SIZE, stored);
	kt_seg_block_header_pack(out, blk);

	err = kt_io_submit_write(writer->io, out, KT_SEG_BLOCK_HEADER_SIZE + stored,
				 writer->file_pos, direct ? raw_tag : si, errstr, errstr_size);
	if (err)
		return err;
	if (direct) {
		/* Already complete; reaped so the buffer can be handed back. */
		err = wait_write(writer, raw_tag, errstr, errstr_size);
		if (err)
			return err;
	} else {
		slot->busy = 1;
	}
	writer->block_count++;
	writer->file_pos += KT_SEG_BLOCK_HEADER_SIZE + stored;
	return 0;
}

/* The compression thread: takes the blocks in the order they were handed
 * over, until told to quit.  After a failure it only hands blocks back, so
 * the appender never waits forever. */
static void *writer_worker(void *arg)
{
	struct kt_store_writer *writer = arg;
	char msg[512];

	pthread_mutex_lock(&writer->lock);
	for (;;) {
		struct writer_block *wb = &writer->fill[writer->next_job];
		int err = 0;

		while (!wb->queued && !writer->quit)
			pthread_cond_wait(&writer->cond, &writer->lock);
		if (writer->quit)
			break;
		pthread_mutex_unlock(&writer->lock);
		if (!writer_failed(writer))
			err = flush_block(writer, wb, msg, sizeof(msg));
		if (err)
			writer_fail(writer, err, msg, NULL, 0);
		wb->raw_len = 0;
		wb->records = 0;
		pthread_mutex_lock(&writer->lock);
		wb->queued = 0;
		writer->next_job ^= 1;
		pthread_cond_broadcast(&writer->cond);
	}
	pthread_mutex_unlock(&writer->lock);
	/* The kernel cancels the io_uring requests a thread submitted when
	 * that thread exits, so a block write still queued in io-wq would end
	 * as ECANCELED and fail the seal (seen under load in the capture
	 * bench).  Reap every write this thread queued before leaving; the
	 * appender is parked in stop_worker() and does not touch the io. */
	int err = kt_io_drain(writer->io, msg, sizeof(msg));
	if (err && !writer_failed(writer))
		writer_fail(writer, err, msg, NULL, 0);
	for (unsigned i = 0; i < writer->slot_count; i++)
		writer->slots[i].busy = 0;
	return NULL;
}

/* Hands the filled block to the worker and waits until the other buffer is
 * free to fill.  Appender only. */
static int hand_off(struct kt_store_writer *writer, char *errstr, size_t errstr_size)
{
	struct writer_block *next;

	pthread_mutex_lock(&writer->lock);
	writer->fill[writer->cur].queued = 1;
	pthread_cond_broadcast(&writer->cond);
	writer->cur ^= 1;
	next = &writer->fill[writer->cur];
	while (next->queued)
		pthread_cond_wait(&writer->cond, &writer->lock);
	pthread_mutex_unlock(&writer->lock);
	if (writer_failed(writer))
		return report_failure(writer, errstr, errstr_size);
	return 0;
}

/* Waits for the worker to finish every block handed to it, then ends it. */
static void stop_worker(struct kt_store_writer *writer)
{
	if (!writer->worker_started)
		return;
	pthread_mutex_lock(&writer->lock);
	while (writer->fill[0].queued || writer->fill[1].queued)
		pthread_cond_wait(&writer->cond, &writer->lock);
	writer->quit = 1;
	pthread_cond_broadcast(&writer->cond);
	pthread_mutex_unlock(&writer->lock);
	pthread_join(writer->worker, NULL);
	writer->worker_started = 0;
}

/* Bytes of a record's key, value and headers as encoded (everything after
 * ts_delta), and the attributes byte. */
static int record_tail(const struct kt_record *rec, size_t *tail, uint8_t *attr)
{
	size_t n = 0;

	*attr = (uint8_t)rec->ts_type;
	if (rec->key)
		n += kt_varint_len(rec->key_len) + rec->key_len;
	else
		*attr |= KT_SEG_ATTR_KEY_NULL;
	if (rec->value)
		n += kt_varint_len(rec->value_len) + rec->value_len;
	else
		*attr |= KT_SEG_ATTR_VALUE_NULL;
	n += kt_varint_len(rec->header_count);
	for (size_t i = 0; i < rec->header_count; i++) {
		const struct kt_header *h = &rec->headers[i];

		if (!h->name && h->name_len)
			return -1;
		n += kt_varint_len(h->name_len) + h->name_len;
		if (h->value)
			n += kt_varint_len((uint64_t)h->value_len + 1) + h->value_len;
		else
			n += 1;
		if (n > KT_STORE_MAX_RECORD_SIZE)
			return -1;
	}
	*tail = n;
	return 0;
}

int kt_store_writer_append(struct kt_store_writer *writer, const struct kt_record *rec,
			   char *errstr, size_t errstr_size)
{
	struct writer_block *wb = &writer->fill[writer->cur];
	uint64_t od = 0, tsd = 0;
	size_t tail, body, total;
	uint8_t attr;
	uint8_t *p;
	int err;

	if (writer_failed(writer))
		return report_failure(writer, errstr, errstr_size);
	if (writer->sealed)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "segment %s: append after seal", writer->path);
	if (rec->offset < 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "segment %s: offset %lld is negative", writer->path,
				 (long long)rec->offset);
	if (writer->have_last && rec->offset <= writer->last_offset)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "segment %s: offset %lld appended after %lld; offsets must "
				 "strictly increase", writer->path, (long long)rec->offset,
				 (long long)writer->last_offset);
	if (rec->ts_type < KT_TS_CREATE || rec->ts_type > KT_TS_NONE)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "segment %s: record at offset %lld has unknown timestamp "
				 "type %d", writer->path, (long long)rec->offset, rec->ts_type);
	if (record_tail(rec, &tail, &attr) < 0 ||
	    tail + 1 + 2 * KT_SEG_VARINT_MAX + KT_SEG_VARINT_MAX > KT_STORE_MAX_RECORD_SIZE)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "segment %s: record at offset %lld is larger than %u bytes "
				 "encoded or has a header without a name", writer->path,
				 (long long)rec->offset, KT_STORE_MAX_RECORD_SIZE);

	for (;;) {
		if (wb->records) {
			od = (uint64_t)rec->offset - (uint64_t)wb->first;
			tsd = (uint64_t)rec->timestamp - (uint64_t)wb->base_ts;
		} else {
			od = tsd = 0;
		}
		body = 1 + kt_varint_len(od) + kt_varint_len(tsd) + tail;
		total = kt_varint_len(body) + body;
		/* A record that would overflow a non-empty block closes it
		 * first, so blocks stay within block_size unless they hold a
		 * single larger record. */
		if (wb->records == 0 || wb->raw_len + total <= writer->opts.block_size)
			break;
		err = hand_off(writer, errstr, errstr_size);
		if (err)
			return err;
		wb = &writer->fill[writer->cur];
	}
	if (wb->raw_len + total > wb->raw_cap &&
	    grow_raw(&wb->raw, &wb->raw_cap, wb->raw_len + total) < 0) {
		char msg[512];
		snprintf(msg, sizeof(msg), "segment %s: out of memory for a %zu-byte record "
			 "at offset %lld", writer->path, total, (long long)rec->offset);
		return writer_fail(writer, -ENOMEM, msg, errstr, errstr_size);
	}

	p = wb->raw + wb->raw_len;
	p = kt_varint_put(p, body);
	*p++ = attr;
	p = kt_varint_put(p, od);
	p = kt_varint_put(p, tsd);
	if (rec->key) {
		p = kt_varint_put(p, rec->key_len);
		if (rec->key_len)
			memcpy(p, rec->key, rec->key_len);
		p += rec->key_len;
	}
	if (rec->value) {
		p = kt_varint_put(p, rec->value_len);
		if (rec->value_len)
			memcpy(p, rec->value, rec->value_len);
		p += rec->value_len;
	}
	p = kt_varint_put(p, rec->header_count);
	for (size_t i = 0; i < rec->header_count; i++) {
		const struct kt_header *h = &rec->headers[i];

		p = kt_varint_put(p, h->name_len);
		if (h->name_len)
			memcpy(p, h->name, h->name_len);
		p += h->name_len;
		if (h->value) {
			p = kt_varint_put(p, (uint64_t)h->value_len + 1);
			if (h->value_len)
				memcpy(p, h->value, h->value_len);
			p += h->value_len;
		} else {
			*p++ = 0;
		}
	}
	wb->raw_len += total;
	writer->raw_total += total;

	if (wb->records++ == 0) {
		wb->first = rec->offset;
		wb->base_ts = wb->min_ts = wb->max_ts = rec->timestamp;
	} else {
		if (rec->timestamp < wb->min_ts)
			wb->min_ts = rec->timestamp;
		if (rec->timestamp > wb->max_ts)
			wb->max_ts = rec->timestamp;
	}
	wb->last = rec->offset;
	writer->last_offset = rec->offset;
	writer->have_last = 1;

	if (wb->raw_len >= writer->opts.block_size)
		return hand_off(writer, errstr, errstr_size);
	return 0;
}

uint64_t kt_store_writer_raw_bytes(const struct kt_store_writer *writer)
{
	return writer->raw_total;
}

int kt_store_writer_seal(struct kt_store_writer *writer, struct kt_store_segment_info *info,
			 char *errstr, size_t errstr_size)
{
	struct kt_seg_footer ftr;
	char msg[512];
	size_t table_len;
	int err;

	if (writer_failed(writer))
		return report_failure(writer, errstr, errstr_size);
	if (writer->sealed)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "segment %s: sealed twice", writer->path);
	if (writer->fill[writer->cur].records) {
		err = hand_off(writer, errstr, errstr_size);
		if (err)
			return err;
	}
	/* From here on this thread owns the I/O handle and the block list. */
	stop_worker(writer);
	if (writer_failed(writer))
		return report_failure(writer, errstr, errstr_size);
	err = kt_io_drain(writer->io, msg, sizeof(msg));
	if (err)
		return writer_fail(writer, err, msg, errstr, errstr_size);
	for (unsigned i = 0; i < writer->slot_count; i++)
		writer->slots[i].busy = 0;

	/* The seek table and footer go out in one write. */
	table_len = KT_SEG_SEEK_HEADER_SIZE + writer->block_count * KT_SEG_SEEK_ENTRY_SIZE;
	writer->trailer = malloc(table_len + KT_SEG_FOOTER_SIZE);
	if (!writer->trailer) {
		snprintf(msg, sizeof(msg), "segment %s: out of memory for the seek table",
			 writer->path);
		return writer_fail(writer, -ENOMEM, msg, errstr, errstr_size);
	}
	kt_seg_footer_from_blocks(&ftr, writer->blocks, writer->block_count);
	ftr.seek_table_offset = writer->file_pos;
	ftr.segment_checksum = kt_seg_seek_table_pack(writer->trailer, writer->blocks,
						      writer->block_count);
	kt_seg_footer_pack(writer->trailer + table_len, &ftr);
	err = kt_io_submit_write(writer->io, writer->trailer, table_len + KT_SEG_FOOTER_SIZE,
				 writer->file_pos, writer->slot_count + 1, msg, sizeof(msg));
	if (!err)
		err = kt_io_datasync(writer->io, msg, sizeof(msg));
	if (!err)
		err = kt_io_close(writer->io, msg, sizeof(msg));
	if (err)
		return writer_fail(writer, err, msg, errstr, errstr_size);
	writer->file_pos += table_len + KT_SEG_FOOTER_SIZE;

	/* The index is written after the segment is durable, and the
	 * directory fsync that kt_seg_index_write ends with also makes the
	 * segment's own directory entry durable (same directory). */
	writer->index_attempted = 1;
	err = kt_seg_index_write(writer->path, writer->blocks, writer->block_count,
				 writer->file_pos, ftr.segment_checksum,
				 writer->opts.file_mode, msg, sizeof(msg));
	if (err)
		return writer_fail(writer, err, msg, errstr, errstr_size);
	writer->sealed = 1;

	/* Re-encoded blocks may differ by a few bytes from what was appended;
	 * from now on raw_bytes is exactly what the blocks hold. */
	writer->raw_total = 0;
	for (size_t i = 0; i < writer->block_count; i++)
		writer->raw_total += writer->blocks[i].raw_size;
	if (info) {
		memset(info, 0, sizeof(*info));
		snprintf(info->topic, sizeof(info->topic), "%s", writer->topic);
		info->partition = writer->partition;
		info->block_count = writer->block_count;
		info->record_count = ftr.record_count;
		info->raw_bytes = writer->raw_total;
		info->file_size = writer->file_pos;
		info->first_offset = ftr.first_offset;
		info->last_offset = ftr.last_offset;
		info->min_ts = ftr.min_ts;
		info->max_ts = ftr.max_ts;
		info->checksum = ftr.segment_checksum;
		info->sealed = 1;
		info->io_backend = writer->opts.io_backend;
	}
	return 0;
}

void kt_store_writer_destroy(struct kt_store_writer *writer)
{
	if (!writer)
		return;
	stop_worker(writer);
	kt_io_destroy(writer->io);
	/* On object storage an unsealed segment never became an object (its
	 * upload was aborted by kt_io_destroy above). */
	if (!writer->sealed && writer->io && writer->opts.io_backend != KT_IO_S3) {
		/* An unsealed segment can never be referenced by a snapshot;
		 * leaving it would only confuse a later run. */
		unlink(writer->path);
		if (writer->index_attempted) {
			char ipath[4096];
			if (kt_store_index_path(writer->path, ipath, sizeof(ipath)) == 0)
				unlink(ipath);
		}
	}
	for (unsigned i = 0; writer->slots && i < writer->slot_count; i++)
		free(writer->slots[i].buf);
	free(writer->slots);
	free(writer->trailer);
	free(writer->blocks);
	free_raw(writer->fill[0].raw);
	free_raw(writer->fill[1].raw);
	free_raw(writer->spare);
	pthread_cond_destroy(&writer->cond);
	pthread_mutex_destroy(&writer->lock);
	free(writer->path);
	free(writer);
}
