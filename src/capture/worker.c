/* Worker threads of a capture.  Each owns a set of partitions: their
 * partition queues are forwarded into the worker's own queue, so a worker
 * sees only its partitions' records and a slow or huge partition delays
 * only the worker that owns it.  A worker appends each record to its
 * partition's segment writer (which builds, compresses, checksums and
 * writes the blocks), stops each partition exactly at the end offset fixed
 * when the round began, and seals what it wrote. */
#include "capture_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Messages taken from librdkafka per call: large enough to amortise the
 * queue lock.  A call returns when the batch is full or after 100 ms, so
 * a stop request is noticed and a partition's last records are written
 * within that. */
#define CAP_BATCH 1024

/* Messages a worker may hold staged (taken from librdkafka, not yet
 * written).  Staging is what keeps librdkafka's own queue nearly empty:
 * librdkafka 2.0.2 stops fetching a partition for a fixed second once its
 * queue is full, which would idle a worker busy compressing.  Instead the
 * worker drains the queue between blocks and pauses its partitions while
 * the staged bytes are above the high mark (pausing an empty queue costs
 * nothing; a resumed partition continues after the last message taken). */
#define CAP_RING (1u << 16)

/* Threads that seal finished partitions.  A seal waits for the disk
 * (fdatasync of the segment, then of its index and directory), and the
 * partitions of a round tend to finish together at its end: sealed one
 * after another by their worker, their flushes queued up behind each other
 * while the worker stopped consuming.  Sealer threads let the worker go on
 * with its other partitions and let the flushes overlap. */
#define CAP_SEALERS 4

/* The final seals of a round, shared by its workers.  A finished
 * partition's writer moves to the queue (its worker no longer touches the
 * partition), and a sealer seals it, or discards it once the round failed. */
struct cap_sealer {
	struct kt_capture *cap;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct cap_part **queue; /* a ring; each partition is queued at most once */
	size_t size;
	size_t head;
	size_t count;
	int closing; /* no more partitions will come */
	pthread_t threads[CAP_SEALERS];
	unsigned started;
};

struct cap_worker {
	struct kt_capture *cap;
	unsigned index;
	pthread_t thread;
	int started;
	atomic_int finished;
	rd_kafka_queue_t *rkqu;
	size_t remaining; /* partitions not done */
	uint64_t load;    /* offsets assigned, to balance the workers */
	struct kt_header *headers; /* reused for every record */
	size_t header_cap;
	rd_kafka_topic_t *cached_rkt;
	struct cap_topic *cached_topic;
	char errstr[512];
	struct cap_part **parts; /* the partitions this worker owns */
	size_t part_count;
	rd_kafka_message_t **ring; /* staged messages, CAP_RING slots */
	size_t ring_head;
	size_t ring_count;
	uint64_t ring_bytes;
	uint64_t high_bytes; /* pause above, resume below half */
	int paused;
	uint64_t pauses;     /* how often staging was full, for the debug log */
	struct cap_sealer *sealer; /* shared by the round's workers; NULL: seal here */
	rd_kafka_message_t *msgs[CAP_BATCH];
};

static struct cap_part *lookup_part(struct cap_worker *w, const rd_kafka_message_t *msg)
{
	struct cap_topic *topic;

	if (!msg->rkt)
		return NULL;
	if (msg->rkt != w->cached_rkt) {
		/* Records arrive in runs of one topic: a name lookup per run. */
		w->cached_topic = cap_find_topic(w->cap, rd_kafka_topic_name(msg->rkt));
		w->cached_rkt = msg->rkt;
	}
	topic = w->cached_topic;
	if (!topic || msg->partition < 0 || (size_t)msg->partition >= topic->part_count)
		return NULL;
	if (topic->parts[msg->partition].worker != w->index)
		return NULL;
	return &topic->parts[msg->partition];
}

/* Seals the open segment of part and appends its reference.  Called by
 * the partition's worker, or by a sealer once the worker is done with it;
 * errstr is that thread's own. */
static int seal_part(struct kt_capture *cap, struct cap_part *part, char *errstr, size_t errstr_size)
{
	struct kt_store_segment_info info;
	struct kt_store_segref *ref;
	int err;

	if (!part->writer)
		return 0;
	if (part->seg_count == part->seg_cap) {
		size_t size = part->seg_cap ? part->seg_cap * 2 : 4;
		struct kt_store_segref *grown = realloc(part->segs, size * sizeof(*grown));

		if (!grown) {
			cap_fail(cap, -ENOMEM, "out of memory for the segment list of %s [%d]",
				 part->topic->name, (int)part->partition);
			return -ENOMEM;
		}
		part->segs = grown;
		part->seg_cap = size;
	}
	err = kt_store_writer_seal(part->writer, &info, errstr, errstr_size);
	kt_store_writer_destroy(part->writer);
	part->writer = NULL;
	if (err) {
		cap_fail(cap, err, "%s [%d]: %s", part->topic->name, (int)part->partition, errstr);
		free(part->writer_rel);
		part->writer_rel = NULL;
		return err;
	}
	ref = &part->segs[part->seg_count++];
	memset(ref, 0, sizeof(*ref));
	ref->path = part->writer_rel; /* ownership moves to the reference */
	part->writer_rel = NULL;
	ref->first_offset = info.first_offset;
	ref->last_offset = info.last_offset;
	ref->min_ts = info.min_ts;
	ref->max_ts = info.max_ts;
	ref->records = info.record_count;
	ref->raw_bytes = info.raw_bytes;
	ref->file_size = info.file_size;
	ref->checksum = info.checksum;
	part->stored_bytes += info.file_size;
	kt_log(cap->opts.log, KT_LOG_DEBUG, "%s [%d]: sealed %s: offsets %lld..%lld, %llu records",
	       part->topic->name, (int)part->partition, ref->path, (long long)info.first_offset,
	       (long long)info.last_offset, (unsigned long long)info.record_count);
	return 0;
}

/* Ends part's open segment: sealed, so that the snapshot (partial or
 * not) can reference it, unless the round failed, after which nothing of
 * it is kept. */
static void finish_writer(struct kt_capture *cap, struct cap_part *part, char *errstr, size_t errstr_size)
{
	if (atomic_load(&cap->abort)) {
		kt_store_writer_destroy(part->writer);
		part->writer = NULL;
		free(part->writer_rel);
		part->writer_rel = NULL;
	} else {
		seal_part(cap, part, errstr, errstr_size);
	}
}

static int seal_writer(struct cap_worker *w, struct cap_part *part)
{
	return seal_part(w->cap, part, w->errstr, sizeof(w->errstr));
}

/* Hands part's open segment to the sealers, or seals it here when there
 * are none.  The worker must not touch part afterwards (it is done). */
static void seal_later(struct cap_worker *w, struct cap_part *part)
{
	struct cap_sealer *s = w->sealer;

	if (!part->writer)
		return;
	if (!s || !s->started) {
		seal_writer(w, part);
		return;
	}
	pthread_mutex_lock(&s->lock);
	s->queue[(s->head + s->count++) % s->size] = part;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void *sealer_main(void *arg)
{
	struct cap_sealer *s = arg;
	struct kt_capture *cap = s->cap;
	char errstr[512];

	for (;;) {
		struct cap_part *part;

		pthread_mutex_lock(&s->lock);
		while (s->count == 0 && !s->closing)
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->count == 0) {
			pthread_mutex_unlock(&s->lock);
			return NULL;
		}
		part = s->queue[s->head];
		s->head = (s->head + 1) % s->size;
		s->count--;
		pthread_mutex_unlock(&s->lock);
		finish_writer(cap, part, errstr, sizeof(errstr));
	}
}

/* Waits for every queued seal, then frees the sealers.  NULL accepted. */
static void sealer_destroy(struct cap_sealer *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->closing = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->started; i++)
		pthread_join(s->threads[i], NULL);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s->queue);
	free(s);
}

/* Starts up to CAP_SEALERS sealers for a round of active partitions.
 * Without them (out of memory, no threads) the workers seal themselves,
 * as they always did, so this cannot fail the round. */
static struct cap_sealer *sealer_create(struct kt_capture *cap, size_t active)
{
	struct cap_sealer *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cap = cap;
	s->size = active;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->queue = calloc(active, sizeof(*s->queue));
	if (!s->queue) {
		sealer_destroy(s);
		return NULL;
	}
	while (s->started < CAP_SEALERS && s->started < active &&
	       pthread_create(&s->threads[s->started], NULL, sealer_main, s) == 0)
		s->started++;
	return s;
}

static int open_writer(struct cap_worker *w, struct cap_part *part, int64_t first_offset)
{
	struct kt_capture *cap = w->cap;
	struct kt_store_writer_opts wopts;
	char rel[4096], abs[4096];
	int err;

	pthread_mutex_lock(&cap->lock);
	err = kt_store_repo_new_segment_path(cap->repo, part->topic->name, part->partition, first_offset,
					     rel, sizeof(rel), abs, sizeof(abs), w->errstr, sizeof(w->errstr));
	pthread_mutex_unlock(&cap->lock);
	if (err)
		goto fail;
	part->writer_rel = strdup(rel);
	if (!part->writer_rel) {
		err = -ENOMEM;
		kt_seterr(w->errstr, sizeof(w->errstr), err, "out of memory");
		goto fail;
	}
	cap_writer_opts(cap, cap->repo, &wopts);
	err = kt_store_writer_create(&part->writer, abs, part->topic->name, part->partition, &wopts,
				     w->errstr, sizeof(w->errstr));
	if (err)
		goto fail;
	kt_log(cap->opts.log, KT_LOG_DEBUG, "%s [%d]: segment %s started at offset %lld", part->topic->name,
	       (int)part->partition, part->writer_rel, (long long)first_offset);
	return 0;
fail:
	free(part->writer_rel);
	part->writer_rel = NULL;
	cap_fail(cap, err, "%s [%d]: cannot start a segment: %s", part->topic->name, (int)part->partition,
		 w->errstr);
	return err;
}

static void finish_part(struct cap_worker *w, struct cap_part *part)
{
	rd_kafka_topic_partition_list_t *list;

	if (part->done)
		return;
	part->done = 1;
	seal_later(w, part);
	part->next = part->plan.end;
	atomic_store_explicit(&part->pub_next, part->next, memory_order_relaxed);
	atomic_store_explicit(&part->pub_done, 1, memory_order_release);
	w->remaining--;
	/* Stop fetching what lies beyond the snapshot's end. */
	list = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(list, part->topic->name, part->partition);
	rd_kafka_pause_partitions(w->cap->rk, list);
	rd_kafka_topic_partition_list_destroy(list);
}

/* Retention deleted the records at our fetch position while the round was
 * running: record the hole, report it, and continue from the new start. */
static void retention_overtook(struct cap_worker *w, struct cap_part *part)
{
	struct kt_capture *cap = w->cap;
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_error_t *error;
	struct cap_range *grown;
	int64_t low = -1, high = -1;
	rd_kafka_resp_err_t err;

	err = rd_kafka_query_watermark_offsets(cap->rk, part->topic->name, part->partition, &low, &high,
					       (int)cap->opts.timeout_ms);
	if (err) {
		cap_fail(cap, KT_EKAFKA, "%s [%d]: offset %lld is out of range and the watermarks cannot be read: %s",
			 part->topic->name, (int)part->partition, (long long)part->next, rd_kafka_err2str(err));
		return;
	}
	if (low <= part->next) {
		cap_fail(cap, KT_ERANGE, "%s [%d]: offset %lld is out of range although the log spans %lld..%lld: "
			 "the log was truncated", part->topic->name, (int)part->partition, (long long)part->next,
			 (long long)low, (long long)high);
		return;
	}
	grown = realloc(part->late_gaps, (part->late_gap_count + 1) * sizeof(*grown));
	if (!grown) {
		cap_fail(cap, -ENOMEM, "out of memory");
		return;
	}
	part->late_gaps = grown;
	if (low > part->plan.end)
		low = part->plan.end;
	grown[part->late_gap_count].from = part->next;
	grown[part->late_gap_count].to = low;
	part->late_gap_count++;
	kt_log(cap->opts.log, KT_LOG_ERROR,
	       "%s [%d]: retention deleted offsets %lld..%lld (%lld records) before they could be captured",
	       part->topic->name, (int)part->partition, (long long)part->next, (long long)low - 1,
	       (long long)(low - part->next));
	part->next = low;
	if (low >= part->plan.end) {
		finish_part(w, part);
		return;
	}
	list = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(list, part->topic->name, part->partition)->offset = low;
	error = rd_kafka_seek_partitions(cap->rk, list, (int)cap->opts.timeout_ms);
	if (error) {
		cap_fail(cap, KT_EKAFKA, "%s [%d]: cannot continue at offset %lld: %s", part->topic->name,
			 (int)part->partition, (long long)low, rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	}
	rd_kafka_topic_partition_list_destroy(list);
}

void cap_writer_opts(const struct kt_capture *cap, const struct kt_store_repo *repo,
		     struct kt_store_writer_opts *wopts)
{
	kt_store_writer_opts_init(wopts);
	wopts->codec = cap->opts.codec;
	wopts->level = cap->opts.level;
	wopts->block_size = cap->block_size;
	/* Two blocks in flight per partition keep the disk busy while the
	 * next block fills, and keep memory bounded with many partitions. */
	wopts->blocks_in_flight = 2;
	wopts->io_backend = cap->opts.io_backend;
	wopts->file_mode = kt_store_repo_mode(repo);
	wopts->log = cap->opts.log;
}

int cap_record_from_message(rd_kafka_message_t *msg, struct kt_header **headers, size_t *header_cap,
			    struct kt_record *rec)
{
	rd_kafka_timestamp_type_t tstype;
	rd_kafka_headers_t *hdrs = NULL;
	size_t count;

	rec->offset = msg->offset;
	rec->timestamp = rd_kafka_message_timestamp(msg, &tstype);
	rec->ts_type = tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? KT_TS_LOG_APPEND :
		       tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME ? KT_TS_CREATE : KT_TS_NONE;
	rec->key = msg->key;
	rec->key_len = msg->key ? msg->key_len : 0;
	rec->value = msg->payload;
	rec->value_len = msg->payload ? msg->len : 0;
	rec->headers = NULL;
	rec->header_count = 0;
	if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs)
		return 0;
	count = rd_kafka_header_cnt(hdrs);
	if (count > *header_cap) {
		struct kt_header *grown = realloc(*headers, count * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		*headers = grown;
		*header_cap = count;
	}
	for (size_t i = 0; i < count; i++) {
		struct kt_header *h = &(*headers)[i];
		const void *value;
		size_t size;

		if (rd_kafka_header_get_all(hdrs, i, &h->name, &value, &size))
			return KT_EKAFKA;
		h->name_len = strlen(h->name);
		h->value = value;
		h->value_len = value ? size : 0;
	}
	rec->headers = *headers;
	rec->header_count = count;
	return 0;
}

static void append(struct cap_worker *w, struct cap_part *part, rd_kafka_message_t *msg)
{
	struct kt_capture *cap = w->cap;
	struct kt_record rec;
	uint64_t size;
	int err;

	if (!part->writer && open_writer(w, part, msg->offset))
		return;
	err = cap_record_from_message(msg, &w->headers, &w->header_cap, &rec);
	if (err) {
		cap_fail(cap, err, "%s [%d] offset %lld: cannot read the record's headers", part->topic->name,
			 (int)part->partition, (long long)msg->offset);
		return;
	}
	err = kt_store_writer_append(part->writer, &rec, w->errstr, sizeof(w->errstr));
	if (err) {
		cap_fail(cap, err, "%s [%d] offset %lld: %s", part->topic->name, (int)part->partition,
			 (long long)msg->offset, w->errstr);
		return;
	}
	size = rec.key_len + rec.value_len;
	for (size_t i = 0; i < rec.header_count; i++)
		size += rec.headers[i].name_len + rec.headers[i].value_len;
	part->next = msg->offset + 1;
	part->records++;
	part->raw_bytes += size;
	if (rec.timestamp < part->min_ts)
		part->min_ts = rec.timestamp;
	if (rec.timestamp > part->max_ts)
		part->max_ts = rec.timestamp;
	atomic_store_explicit(&part->pub_next, part->next, memory_order_relaxed);
	atomic_store_explicit(&part->pub_records, part->records, memory_order_relaxed);
	atomic_store_explicit(&part->pub_bytes, part->raw_bytes, memory_order_relaxed);
	if (kt_store_writer_raw_bytes(part->writer) >= cap->opts.segment_size)
		seal_writer(w, part); /* the next record opens the next segment */
}

static int error_is_fatal(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR__FATAL:
		return 1;
	default:
		return 0;
	}
}

static void handle(struct cap_worker *w, rd_kafka_message_t *msg)
{
	struct cap_part *part = lookup_part(w, msg);

	if (!part || part->done)
		return;
	if (msg->err) {
		if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			/* The fetch position reached the high watermark
			 * (or LSO): offsets left before the end, if any, were
			 * transaction markers or compacted away. */
			if (msg->offset >= part->plan.end)
				finish_part(w, part);
			return;
		}
		if (msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
		    msg->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
			retention_overtook(w, part);
			return;
		}
		if (error_is_fatal(msg->err)) {
			cap_fail(w->cap, KT_EKAFKA, "%s [%d]: %s", part->topic->name, (int)part->partition,
				 rd_kafka_message_errstr(msg));
			return;
		}
		kt_log(w->cap->opts.log, KT_LOG_WARN, "%s [%d]: %s (retrying)", part->topic->name,
		       (int)part->partition, rd_kafka_message_errstr(msg));
		return;
	}
	if (msg->offset < part->next)
		return; /* delivered again after a seek */
	if (msg->offset >= part->plan.end) {
		finish_part(w, part);
		return;
	}
	append(w, part, msg);
	if (part->next >= part->plan.end && !part->done)
		finish_part(w, part);
}

/* Pauses or resumes fetching for the worker's partitions that are not
 * done (done ones stay paused).  A resumed partition is first positioned
 * explicitly just after the last record staged (or written), so that
 * nothing librdkafka dropped at the pause is skipped, whatever position
 * librdkafka itself remembered. */
static void set_paused(struct cap_worker *w, int pause)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)w->part_count);
	rd_kafka_error_t *error;

	for (size_t i = 0; i < w->part_count; i++) {
		struct cap_part *part = w->parts[i];

		if (!part->done)
			rd_kafka_topic_partition_list_add(list, part->topic->name, part->partition)->offset =
				part->staged_next > part->next ? part->staged_next : part->next;
	}
	if (pause) {
		rd_kafka_pause_partitions(w->cap->rk, list);
	} else {
		/* Asynchronous seek, queued to each partition ahead of the
		 * resume so that it takes effect first.  (Waiting for it is
		 * not reliable in librdkafka 2.0.2: rd_kafka_seek_partitions()
		 * with a timeout sometimes gives up at once.)  A seek refused
		 * for a partition's state would leave it where the pause put
		 * it, just after the last message taken, which is the same
		 * position. */
		error = rd_kafka_seek_partitions(w->cap->rk, list, 0);
		if (error) {
			cap_fail(w->cap, KT_EKAFKA, "worker %u: cannot position its partitions to resume: %s",
				 w->index, rd_kafka_error_string(error));
			rd_kafka_error_destroy(error);
		}
		rd_kafka_resume_partitions(w->cap->rk, list);
	}
	rd_kafka_topic_partition_list_destroy(list);
	w->paused = pause;
	w->pauses += pause ? 1 : 0;
}

static uint64_t staged_size(const rd_kafka_message_t *msg)
{
	return msg->len + msg->key_len + 64;
}

/* Moves everything librdkafka holds for this worker into the ring (until
 * the ring is full), waiting up to timeout_ms only for the first message.
 * Returns 0 or -1 on failure. */
static int drain(struct cap_worker *w, int timeout_ms)
{
	for (;;) {
		size_t room = CAP_RING - w->ring_count, want = room < CAP_BATCH ? room : CAP_BATCH;
		ssize_t n;

		if (want == 0)
			return 0;
		n = rd_kafka_consume_batch_queue(w->rkqu, timeout_ms, w->msgs, want);
		if (n < 0) {
			cap_fail(w->cap, KT_EKAFKA, "worker %u: cannot consume: %s", w->index,
				 rd_kafka_err2str(rd_kafka_last_error()));
			return -1;
		}
		for (ssize_t i = 0; i < n; i++) {
			rd_kafka_message_t *msg = w->msgs[i];
			struct cap_part *part;

			if (!msg->err && (part = lookup_part(w, msg)) && msg->offset >= part->staged_next)
				part->staged_next = msg->offset + 1;
			w->ring[(w->ring_head + w->ring_count) % CAP_RING] = msg;
			w->ring_count++;
			w->ring_bytes += staged_size(msg);
		}
		if ((size_t)n < want)
			return 0; /* librdkafka's queue is empty */
		timeout_ms = 0;
	}
}

static void *worker_main(void *arg)
{
	struct cap_worker *w = arg;
	struct kt_capture *cap = w->cap;

	while (w->remaining > 0 && !cap->stop && !atomic_load(&cap->abort)) {
		if (drain(w, w->ring_count ? 0 : 100))
			break;
		if (!w->paused && (w->ring_bytes >= w->high_bytes || w->ring_count > CAP_RING - CAP_BATCH))
			set_paused(w, 1);
		/* A slice of the staged records, then drain again: a full
		 * block costs at most a few milliseconds to compress. */
		for (size_t i = 0; i < CAP_BATCH && w->ring_count > 0; i++) {
			rd_kafka_message_t *msg = w->ring[w->ring_head];

			w->ring_head = (w->ring_head + 1) % CAP_RING;
			w->ring_count--;
			w->ring_bytes -= staged_size(msg);
			if (!atomic_load_explicit(&cap->abort, memory_order_relaxed))
				handle(w, msg);
			rd_kafka_message_destroy(msg);
		}
		if (w->paused && w->ring_bytes <= w->high_bytes / 2 && w->ring_count < CAP_RING / 2 &&
		    w->remaining > 0)
			set_paused(w, 0);
	}
	while (w->ring_count > 0) {
		rd_kafka_message_destroy(w->ring[w->ring_head]);
		w->ring_head = (w->ring_head + 1) % CAP_RING;
		w->ring_count--;
	}
	kt_log(cap->opts.log, KT_LOG_DEBUG, "worker %u: %zu partitions, staging full %llu times", w->index,
	       w->part_count, (unsigned long long)w->pauses);
	/* Interrupted: what was appended is sealed, so that a partial
	 * snapshot can reference it; after a failure nothing is kept. */
	for (size_t t = 0; t < cap->topic_count; t++) {
		struct cap_topic *topic = &cap->topics[t];

		for (size_t p = 0; p < topic->part_count; p++) {
			struct cap_part *part = &topic->parts[p];

			/* A done partition's writer belongs to the sealers. */
			if (part->worker != w->index || !part->writer || part->done)
				continue;
			finish_writer(cap, part, w->errstr, sizeof(w->errstr));
		}
	}
	atomic_store_explicit(&w->finished, 1, memory_order_release);
	return NULL;
}

int cap_workers_start(struct kt_capture *cap, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *assignment = NULL;
	struct cap_sealer *sealer;
	rd_kafka_resp_err_t rerr;
	size_t active = 0;
	unsigned count;
	int err = 0;

	for (size_t t = 0; t < cap->topic_count; t++)
		for (size_t p = 0; p < cap->topics[t].part_count; p++) {
			struct cap_part *part = &cap->topics[t].parts[p];

			part->next = part->plan.fetch_from;
			part->staged_next = part->plan.fetch_from;
			part->min_ts = INT64_MAX;
			part->max_ts = INT64_MIN;
			atomic_store(&part->pub_next, part->next);
			if (part->plan.fetch_from >= part->plan.end) {
				part->done = 1; /* empty, or nothing new */
				atomic_store(&part->pub_done, 1);
			} else {
				active++;
			}
		}
	cap->worker_count = 0;
	if (active == 0)
		return 0;
	count = cap->opts.threads;
	if (count > active)
		count = (unsigned)active;
	cap->workers = calloc(count, sizeof(*cap->workers));
	if (!cap->workers)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory for %u workers", count);
	cap->worker_count = count;
	sealer = sealer_create(cap, active);
	for (unsigned i = 0; i < count; i++) {
		struct cap_worker *w = &cap->workers[i];

		w->cap = cap;
		w->index = i;
		w->sealer = sealer;
		w->rkqu = rd_kafka_queue_new(cap->rk);
		w->ring = malloc(CAP_RING * sizeof(*w->ring));
		w->parts = calloc(active, sizeof(*w->parts));
		/* A quarter of the memory budget is staging, shared by the
		 * workers (a quarter is librdkafka's safety net, see
		 * consumer_create(), and half the open blocks). */
		w->high_bytes = cap->opts.memory_budget / 4 / count;
		if (!w->ring || !w->parts) {
			err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory for worker %u", i);
			goto out;
		}
	}
	/* Each partition goes to the least loaded worker, by offsets to read;
	 * the biggest partitions are placed first (LPT scheduling). */
	for (size_t placed = 0; placed < active; placed++) {
		struct cap_part *best = NULL;
		struct cap_worker *w = &cap->workers[0];

		for (size_t t = 0; t < cap->topic_count; t++)
			for (size_t p = 0; p < cap->topics[t].part_count; p++) {
				struct cap_part *part = &cap->topics[t].parts[p];

				if (part->done || part->rkqu)
					continue;
				if (!best || part->plan.end - part->plan.fetch_from >
						     best->plan.end - best->plan.fetch_from)
					best = part;
			}
		for (unsigned i = 1; i < count; i++)
			if (cap->workers[i].load < w->load)
				w = &cap->workers[i];
		best->worker = w->index;
		w->load += (uint64_t)(best->plan.end - best->plan.fetch_from);
		w->remaining++;
		w->parts[w->part_count++] = best;
		/* Forward before assigning, so that no record of the partition
		 * can land in the consumer's main queue. */
		best->rkqu = rd_kafka_queue_get_partition(cap->rk, best->topic->name, best->partition);
		if (!best->rkqu) {
			err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "%s [%d]: no partition queue",
					best->topic->name, (int)best->partition);
			goto out;
		}
		rd_kafka_queue_forward(best->rkqu, w->rkqu);
	}
	assignment = rd_kafka_topic_partition_list_new((int)active);
	for (size_t t = 0; t < cap->topic_count; t++)
		for (size_t p = 0; p < cap->topics[t].part_count; p++) {
			struct cap_part *part = &cap->topics[t].parts[p];

			if (!part->done)
				rd_kafka_topic_partition_list_add(assignment, part->topic->name,
								  part->partition)->offset = part->plan.fetch_from;
		}
	/* A partition paused when it reached the end of an earlier --follow
	 * round stays paused through unassign and assign: resume it, before
	 * the assignment.  Resuming bumps the partition's op version, and
	 * after the assignment it would make librdkafka drop what the first
	 * fetch returned, an error such as an authorization refusal included
	 * (which librdkafka then retries only after a long back-off). */
	rd_kafka_resume_partitions(cap->rk, assignment);
	rerr = rd_kafka_assign(cap->rk, assignment);
	if (rerr) {
		err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "cannot assign %zu partitions: %s", active,
				rd_kafka_err2str(rerr));
		goto out;
	}
	for (unsigned i = 0; i < count; i++) {
		int rc = pthread_create(&cap->workers[i].thread, NULL, worker_main, &cap->workers[i]);

		if (rc) {
			err = kt_seterr(errstr, errstr_size, -rc, "cannot start worker thread %u: %s", i,
					kt_strerror(-rc));
			atomic_store(&cap->abort, 1);
			goto out;
		}
		cap->workers[i].started = 1;
	}
out:
	if (assignment)
		rd_kafka_topic_partition_list_destroy(assignment);
	return err;
}

int cap_workers_finished(struct kt_capture *cap)
{
	for (unsigned i = 0; i < cap->worker_count; i++)
		if (cap->workers[i].started &&
		    !atomic_load_explicit(&cap->workers[i].finished, memory_order_acquire))
			return 0;
	return 1;
}

void cap_workers_join(struct kt_capture *cap)
{
	for (unsigned i = 0; i < cap->worker_count; i++)
		if (cap->workers[i].started)
			pthread_join(cap->workers[i].thread, NULL);
	/* The seals the workers queued complete before the round goes on. */
	if (cap->worker_count)
		sealer_destroy(cap->workers[0].sealer);
	/* Stop fetching, then detach the partition queues from the workers'
	 * and drop whatever was prefetched beyond the round. */
	rd_kafka_assign(cap->rk, NULL);
	for (size_t t = 0; t < cap->topic_count; t++)
		for (size_t p = 0; p < cap->topics[t].part_count; p++) {
			struct cap_part *part = &cap->topics[t].parts[p];

			if (!part->rkqu)
				continue;
			rd_kafka_queue_forward(part->rkqu, NULL);
			rd_kafka_queue_destroy(part->rkqu);
			part->rkqu = NULL;
		}
	for (unsigned i = 0; i < cap->worker_count; i++) {
		free(cap->workers[i].headers);
		free(cap->workers[i].ring);
		free(cap->workers[i].parts);
		if (cap->workers[i].rkqu)
			rd_kafka_queue_destroy(cap->workers[i].rkqu);
	}
	free(cap->workers);
	cap->workers = NULL;
	cap->worker_count = 0;
}
