/* The capture orchestration: options, the consumer handle, planning a
 * round (metadata, watermarks, the parent snapshot), running the workers,
 * watching progress and stalls, and committing the snapshot. */
#include "capture_priv.h"
#include "workers_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void kt_capture_opts_init(struct kt_capture_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->codec = KT_CODEC_ZSTD;
	opts->level = 3;
	opts->segment_size = 256ull << 20;
	/* The store's choice: io_uring where the kernel allows it, pwrite
	 * otherwise.  (Capture used pwrite while the writer's compression
	 * thread could exit with io_uring writes queued, which the kernel
	 * cancels; the writer now reaps them first.  On this machine the two
	 * back ends measured alike for capture: 537 MB in 64 partitions,
	 * -z none, 1.93-2.12 s with pwrite, 2.02-2.19 s with io_uring.) */
	opts->io_backend = KT_IO_AUTO;
	opts->timeout_ms = 30000;
	opts->admin_timeout_ms = 5000;
	opts->memory_budget = 128ull << 20;
	opts->interval_ms = 60000;
	opts->progress_interval_ms = 1000;
}

void cap_fail(struct kt_capture *cap, int err, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&cap->lock);
	if (!cap->err) {
		cap->err = err;
		va_start(ap, fmt);
		vsnprintf(cap->errstr, sizeof(cap->errstr), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&cap->lock);
	atomic_store(&cap->abort, 1);
}

struct cap_topic *cap_find_topic(struct kt_capture *cap, const char *name)
{
	size_t lo = 0, hi = cap->topic_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(cap->topics[mid].name, name);

		if (c == 0)
			return &cap->topics[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- options ----------------------------------------------------------- */

static char **strv_dup(const char *const *v, size_t count)
{
	char **copy = calloc(count ? count : 1, sizeof(char *));

	if (!copy)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		copy[i] = strdup(v[i] ? v[i] : "");
		if (!copy[i]) {
			for (size_t j = 0; j < i; j++)
				free(copy[j]);
			free(copy);
			return NULL;
		}
	}
	return copy;
}

static void strv_free(char **v, size_t count)
{
	if (!v)
		return;
	for (size_t i = 0; i < count; i++)
		free(v[i]);
	free(v);
}

/* Sets one librdkafka property.  librdkafka's message may quote the value,
 * so for a secret property only the name is reported. */
static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
		    char *errstr, size_t errstr_size)
{
	char why[512];

	if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) == RD_KAFKA_CONF_OK)
		return 0;
	if (kt_config_is_secret(name))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "librdkafka property '%s': invalid value", name);
	return kt_seterr(errstr, errstr_size, KT_EUSAGE, "librdkafka property '%s': %s", name, why);
}

/* The bootstrap list as the manifest records it: any "user:secret@" a
 * careless operator put in front of a host is dropped. */
static char *sanitized_source(const char *src)
{
	char *copy, *w;

	copy = malloc(strlen(src) + 1);
	if (!copy)
		return NULL;
	w = copy;
	while (*src) {
		const char *end = strchr(src, ',');
		const char *at, *start = src;
		size_t len = end ? (size_t)(end - src) : strlen(src);

		at = memchr(src, '@', len);
		if (at) {
			const char *scheme = strstr(src, "://");

			if (scheme && scheme < at) {
				memcpy(w, src, (size_t)(scheme + 3 - src));
				w += scheme + 3 - src;
			}
			start = at + 1;
		}
		memcpy(w, start, (size_t)(src + len - start));
		w += src + len - start;
		src += len;
		if (*src == ',')
			*w++ = *src++;
	}
	*w = '\0';
	return copy;
}

int kt_capture_create(struct kt_capture **out, const struct kt_capture_opts *opts,
		      char *errstr, size_t errstr_size)
{
	struct kt_capture *cap;
	rd_kafka_conf_t *scratch = NULL;
	char bootstrap[2048];
	size_t bootstrap_size = sizeof(bootstrap);
	int err = 0;

	*out = NULL;
	if (!opts->repo_path || !*opts->repo_path)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "no repository given (-r REPO)");
	if (opts->codec != KT_CODEC_NONE && opts->codec != KT_CODEC_ZSTD)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "unknown codec %d", opts->codec);
	if (opts->codec == KT_CODEC_ZSTD && (opts->level < -7 || opts->level > 22))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "zstd level %d is outside -7..22", opts->level);
	if (opts->segment_size < (64u << 10))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "segment size %" PRIu64 " is below 64 KiB",
				 opts->segment_size);
	if (opts->block_size && (opts->block_size < 4096 || opts->block_size > (64u << 20)))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "block size %zu is outside 4 KiB..64 MiB",
				 opts->block_size);
	if (opts->timeout_ms <= 0 || opts->admin_timeout_ms <= 0 || opts->timeout_ms > INT32_MAX ||
	    opts->admin_timeout_ms > INT32_MAX)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "timeouts must be positive and below 24 days");
	if (opts->follow && opts->interval_ms <= 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "--interval must be positive");
	if (opts->memory_budget < (8u << 20))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "memory budget below 8 MiB");
	if (opts->workers_group && (err = cap_workers_check_opts(opts, errstr, errstr_size)) != 0)
		return err;

	cap = calloc(1, sizeof(*cap));
	if (!cap)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	pthread_mutex_init(&cap->lock, NULL);
	cap->opts = *opts;
	cap->opts.topics = cap->opts.excludes = cap->opts.groups = NULL;
	cap->opts.properties = NULL;
	cap->opts.brokers = cap->opts.repo_path = cap->opts.groups_regex = NULL;
	cap->opts.configure_opaque = opts->configure_opaque;
	if (cap->opts.progress_interval_ms <= 0)
		cap->opts.progress_interval_ms = 1000;
	if (cap->opts.threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		cap->opts.threads = n > 0 ? (unsigned)n : 1;
	}
	if (cap->opts.threads > 256)
		cap->opts.threads = 256;
	cap->repo_path = strdup(opts->repo_path);
	cap->opts.workers_group = NULL;
	cap->workers_group = opts->workers_group ? strdup(opts->workers_group) : NULL;
	if (opts->workers_group && !cap->workers_group) {
		kt_capture_destroy(cap);
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	}
	cap->repo_mode = opts->repo_mode;
	cap->brokers = opts->brokers ? strdup(opts->brokers) : NULL;
	cap->prop_names = calloc(opts->property_count + 1, sizeof(char *));
	cap->prop_values = calloc(opts->property_count + 1, sizeof(char *));
	cap->groups = strv_dup(opts->groups, opts->group_count);
	if (!cap->repo_path || (opts->brokers && !cap->brokers) || !cap->prop_names || !cap->prop_values ||
	    !cap->groups) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	cap->group_count = opts->group_count;
	/* Try every property on a scratch configuration now, so that a typo
	 * is a usage error before anything connects. */
	scratch = rd_kafka_conf_new();
	for (size_t i = 0; i < opts->property_count; i++) {
		const struct kt_capture_property *prop = &opts->properties[i];

		err = conf_set(scratch, prop->name, prop->value ? prop->value : "", errstr, errstr_size);
		if (err)
			goto out;
		cap->prop_names[i] = strdup(prop->name);
		cap->prop_values[i] = strdup(prop->value ? prop->value : "");
		cap->property_count = i + 1;
		if (!cap->prop_names[i] || !cap->prop_values[i]) {
			err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
			goto out;
		}
	}
	if (opts->configure) {
		err = opts->configure(opts->configure_opaque, scratch, errstr, errstr_size);
		if (err)
			goto out;
	}
	if (opts->brokers && *opts->brokers) {
		err = conf_set(scratch, "bootstrap.servers", opts->brokers, errstr, errstr_size);
		if (err)
			goto out;
	}
	if (rd_kafka_conf_get(scratch, "bootstrap.servers", bootstrap, &bootstrap_size) != RD_KAFKA_CONF_OK ||
	    !*bootstrap) {
		err = kt_seterr(errstr, errstr_size, KT_EUSAGE, "no broker given (-b BROKERS)");
		goto out;
	}
	cap->source = sanitized_source(bootstrap);
	if (!cap->source) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	err = cap_selector_init(&cap->sel, opts->topics, opts->topic_count, opts->excludes,
				opts->exclude_count, errstr, errstr_size);
	if (err)
		goto out;
	if (opts->groups_regex) {
		int rc = regcomp(&cap->groups_regex, opts->groups_regex, REG_EXTENDED | REG_NOSUB);

		if (rc) {
			char why[128];

			regerror(rc, &cap->groups_regex, why, sizeof(why));
			err = kt_seterr(errstr, errstr_size, KT_EUSAGE, "invalid --groups regex '%s': %s",
					opts->groups_regex, why);
			goto out;
		}
		cap->has_groups_regex = 1;
		cap->groups_regex_text = strdup(opts->groups_regex);
		if (!cap->groups_regex_text) {
			err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
			goto out;
		}
	}
out:
	if (scratch)
		rd_kafka_conf_destroy(scratch);
	if (err) {
		kt_capture_destroy(cap);
		return err;
	}
	*out = cap;
	return 0;
}

void kt_capture_stop(struct kt_capture *cap)
{
	cap->stop = 1;
}

/* ---- round state ---------------------------------------------------------- */

static void topics_free(struct kt_capture *cap)
{
	for (size_t t = 0; t < cap->topic_count; t++) {
		struct cap_topic *topic = &cap->topics[t];

		for (size_t p = 0; p < topic->part_count; p++) {
			struct cap_part *part = &topic->parts[p];

			kt_store_writer_destroy(part->writer);
			free(part->writer_rel);
			for (size_t s = 0; s < part->seg_count; s++)
				free(part->segs[s].path);
			free(part->segs);
			free(part->late_gaps);
		}
		free(topic->parts);
		strv_free(topic->config_names, topic->config_count);
		strv_free(topic->config_values, topic->config_count);
		free(topic->name);
	}
	free(cap->topics);
	cap->topics = NULL;
	cap->topic_count = 0;
	free(cap->topic_progress);
	cap->topic_progress = NULL;
}

static void summary_free(struct kt_capture *cap)
{
	for (size_t i = 0; i < cap->summary.topic_count; i++)
		free((char *)cap->topic_summaries[i].name);
	free(cap->topic_summaries);
	cap->topic_summaries = NULL;
	memset(&cap->summary, 0, sizeof(cap->summary));
}

void kt_capture_destroy(struct kt_capture *cap)
{
	if (!cap)
		return;
	topics_free(cap);
	summary_free(cap);
	kt_store_snapshot_destroy(cap->parent);
	cap_selector_free(&cap->sel);
	strv_free(cap->prop_names, cap->property_count);
	strv_free(cap->prop_values, cap->property_count);
	strv_free(cap->groups, cap->group_count);
	if (cap->has_groups_regex)
		regfree(&cap->groups_regex);
	free(cap->groups_regex_text);
	free(cap->brokers);
	free(cap->source);
	free(cap->repo_path);
	free(cap->workers_group);
	pthread_mutex_destroy(&cap->lock);
	free(cap);
}

/* ---- the consumer handle ---------------------------------------------------- */

static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	struct kt_capture *cap = rd_kafka_opaque(rk);

	/* librdkafka narrates retries in detail; its real trouble also comes
	 * through the error callback, so its log is debug output. */
	(void)level;
	if (cap)
		kt_log(cap->opts.log, KT_LOG_DEBUG, "librdkafka %s: %s", fac, buf);
}

static void on_rdkafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kt_capture *cap = opaque;
	int repeat;

	(void)rk;
	pthread_mutex_lock(&cap->lock);
	repeat = strcmp(cap->last_kafka_error, reason) == 0;
	snprintf(cap->last_kafka_error, sizeof(cap->last_kafka_error), "%s", reason);
	pthread_mutex_unlock(&cap->lock);
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char why[256];

		rd_kafka_fatal_error(rk, why, sizeof(why));
		cap_fail(cap, KT_EKAFKA, "fatal Kafka client error: %s", why);
		return;
	}
	/* A broker going away is ridden out by retries; say so once per
	 * distinct message rather than at every reconnect attempt. */
	kt_log(cap->opts.log, repeat ? KT_LOG_DEBUG : KT_LOG_WARN, "Kafka: %s (retrying)", reason);
}

/* Also the first step of a workers group's worker (workers.c). */
int cap_consumer_create(struct kt_capture *cap, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char why[512], num[32];
	/* Workers keep librdkafka's queues nearly empty (worker.c stages and
	 * pauses instead); this limit is only a safety net for a worker that
	 * is not scheduled for a while.  It applies to each worker queue. */
	uint64_t per_worker_kb = cap->opts.memory_budget / 4 / cap->opts.threads / 1024;
	int err = 0;

	/* At least a few fetch responses' worth, or the limit would bite
	 * between two drains. */
	if (per_worker_kb < 8192)
		per_worker_kb = 8192;
	snprintf(num, sizeof(num), "%" PRIu64, per_worker_kb);
	/* Defaults for a backup, in the order the operator's -X can undo:
	 *  - assign() needs a group id but nothing joins or commits;
	 *  - an offset that vanished is reported, never silently skipped;
	 *  - EOF events end partitions whose tail holds no record;
	 *  - prefetch: about a second of data, so that the fixed 1 s
	 *    back-off of librdkafka 2.0.2 at queued.min.messages never
	 *    idles a worker, bounded in bytes per worker queue. */
	static const char *const defaults[][2] = {
		{ "client.id", "ktape-capture" },
		{ "group.id", "ktape-capture" },
		{ "enable.auto.commit", "false" },
		{ "enable.auto.offset.store", "false" },
		{ "enable.partition.eof", "true" },
		{ "auto.offset.reset", "error" },
		{ "isolation.level", "read_committed" },
		{ "queued.min.messages", "1000000" },
		{ "fetch.max.bytes", "8388608" },
		{ "receive.message.max.bytes", "67108864" },
		{ "fetch.wait.max.ms", "100" },
		{ "log.connection.close", "false" },
	};
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]) && !err; i++)
		err = conf_set(conf, defaults[i][0], defaults[i][1], errstr, errstr_size);
	if (!err)
		err = conf_set(conf, "queued.max.messages.kbytes", num, errstr, errstr_size);
	/* A worker of a group joins it (workers.c); -X still has the last word. */
	if (!err && cap->workers_group)
		err = cap_workers_configure(cap, conf, errstr, errstr_size);
	for (size_t i = 0; i < cap->property_count && !err; i++)
		err = conf_set(conf, cap->prop_names[i], cap->prop_values[i], errstr, errstr_size);
	if (!err && cap->opts.configure)
		err = cap->opts.configure(cap->opts.configure_opaque, conf, errstr, errstr_size);
	/* -b is the most explicit way to name the brokers: it wins. */
	if (!err && cap->brokers)
		err = conf_set(conf, "bootstrap.servers", cap->brokers, errstr, errstr_size);
	if (err) {
		rd_kafka_conf_destroy(conf);
		return err;
	}
	rd_kafka_conf_set_opaque(conf, cap);
	rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
	rd_kafka_conf_set_error_cb(conf, on_rdkafka_error);
	cap->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (!cap->rk) {
		rd_kafka_conf_destroy(conf);
		return kt_seterr(errstr, errstr_size, KT_EKAFKA, "cannot create the Kafka consumer: %s", why);
	}
	return 0;
}

/* ---- planning ------------------------------------------------------------------- */

static int topic_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cap_topic *)a)->name, ((const struct cap_topic *)b)->name);
}

static int load_topics(struct kt_capture *cap, char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	const char **names = NULL;
	size_t selected = 0;
	rd_kafka_resp_err_t rerr;
	const char *missing;
	int err = 0;

	rerr = rd_kafka_metadata(cap->rk, 1, NULL, &md, (int)cap->opts.timeout_ms);
	if (rerr) {
		char last[256];

		rd_kafka_poll(cap->rk, 0); /* serve the error callback */
		pthread_mutex_lock(&cap->lock);
		snprintf(last, sizeof(last), "%s", cap->last_kafka_error);
		pthread_mutex_unlock(&cap->lock);
		return kt_seterr(errstr, errstr_size, rerr == RD_KAFKA_RESP_ERR__TIMED_OUT ? KT_ETIMEDOUT : KT_EKAFKA,
				 "cannot read the cluster metadata from %s within %lld ms: %s%s%s",
				 cap->source,
				 (long long)cap->opts.timeout_ms, rd_kafka_err2str(rerr),
				 *last ? "; last broker error: " : "", last);
	}
	names = calloc((size_t)md->topic_cnt + 1, sizeof(*names));
	cap->topics = calloc((size_t)md->topic_cnt + 1, sizeof(*cap->topics));
	if (!names || !cap->topics) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < md->topic_cnt; i++) {
		const rd_kafka_metadata_topic_t *mt = &md->topics[i];

		struct cap_topic *topic;

		if (mt->err || !cap_selector_match(&cap->sel, mt->topic))
			continue;
		topic = &cap->topics[cap->topic_count++];

		topic->name = strdup(mt->topic);
		topic->partition_count = mt->partition_cnt;
		topic->replication_factor = mt->partition_cnt > 0 ? mt->partitions[0].replica_cnt : -1;
		topic->part_count = (size_t)mt->partition_cnt;
		topic->parts = calloc(topic->part_count ? topic->part_count : 1, sizeof(*topic->parts));
		if (!topic->name || !topic->parts) {
			err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
			goto out;
		}
		for (int p = 0; p < mt->partition_cnt; p++) {
			int32_t id = mt->partitions[p].id;

			if (id < 0 || id >= mt->partition_cnt) {
				err = kt_seterr(errstr, errstr_size, KT_EKAFKA,
						"topic %s: the metadata lists partition %d of %d", mt->topic, (int)id,
						mt->partition_cnt);
				goto out;
			}
			topic->parts[id].topic = topic;
			topic->parts[id].partition = id;
		}
	}
	/* Names of every topic, to tell which exactly-named ones are absent. */
	selected = 0;
	for (int i = 0; i < md->topic_cnt; i++)
		if (!md->topics[i].err)
			names[selected++] = md->topics[i].topic;
	missing = cap_selector_missing(&cap->sel, names, selected);
	if (missing) {
		err = kt_seterr(errstr, errstr_size, KT_ENOTFOUND, "topic '%s' does not exist on %s", missing,
				cap->source);
		goto out;
	}
	if (cap->topic_count == 0) {
		err = kt_seterr(errstr, errstr_size, KT_ENOTFOUND, "no topic on the cluster matches the selection");
		goto out;
	}
	qsort(cap->topics, cap->topic_count, sizeof(*cap->topics), topic_cmp);
	/* qsort moved the topics: point the partitions back at them. */
	for (size_t t = 0; t < cap->topic_count; t++)
		for (size_t p = 0; p < cap->topics[t].part_count; p++)
			cap->topics[t].parts[p].topic = &cap->topics[t];
out:
	free(names);
	rd_kafka_metadata_destroy(md);
	return err;
}

/* Fills each partition's log start offset and end offset.  One batched
 * ListOffsets per leader for "earliest" and one for "latest" (the last
 * stable offset under read_committed); a partition the batch could not
 * answer is asked on its own. */
static int load_watermarks(struct kt_capture *cap, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *lists[2];
	int err = 0;

	for (int which = 0; which < 2; which++) {
		lists[which] = rd_kafka_topic_partition_list_new(16);
		for (size_t t = 0; t < cap->topic_count; t++)
			for (size_t p = 0; p < cap->topics[t].part_count; p++)
				rd_kafka_topic_partition_list_add(lists[which], cap->topics[t].name, (int32_t)p)->offset =
					which == 0 ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
		if (rd_kafka_offsets_for_times(cap->rk, lists[which], (int)cap->opts.timeout_ms))
			for (int i = 0; i < lists[which]->cnt; i++)
				lists[which]->elems[i].err = RD_KAFKA_RESP_ERR__FAIL;
	}
	for (int i = 0; i < lists[0]->cnt && !err; i++) {
		const rd_kafka_topic_partition_t *lo = &lists[0]->elems[i], *hi = &lists[1]->elems[i];
		struct cap_part *part = &cap_find_topic(cap, lo->topic)->parts[lo->partition];

		part->log_start = lo->offset;
		part->high = hi->offset;
		if (lo->err || hi->err || lo->offset < 0 || hi->offset < 0) {
			rd_kafka_resp_err_t rerr = rd_kafka_query_watermark_offsets(
				cap->rk, lo->topic, lo->partition, &part->log_start, &part->high,
				(int)cap->opts.timeout_ms);

			if (rerr)
				err = kt_seterr(errstr, errstr_size, rerr == RD_KAFKA_RESP_ERR__TIMED_OUT ? KT_ETIMEDOUT : KT_EKAFKA,
						"%s [%d]: cannot read the watermark offsets: %s", lo->topic,
						(int)lo->partition, rd_kafka_err2str(rerr));
		}
	}
	rd_kafka_topic_partition_list_destroy(lists[0]);
	rd_kafka_topic_partition_list_destroy(lists[1]);
	return err;
}

static int plan_round(struct kt_capture *cap, uint64_t *gap_count, uint64_t *gap_offsets,
		      char *errstr, size_t errstr_size)
{
	char why[512];
	int err;

	*gap_count = *gap_offsets = 0;
	for (size_t t = 0; cap->parent && t < cap->parent->topic_count; t++)
		if (!cap_find_topic(cap, cap->parent->topics[t].name))
			kt_log(cap->opts.log, KT_LOG_WARN,
			       "topic %s of snapshot %s is not selected (or no longer exists): the new snapshot "
			       "leaves it out; older snapshots keep it", cap->parent->topics[t].name, cap->parent->id);
	for (size_t t = 0; t < cap->topic_count; t++) {
		struct cap_topic *topic = &cap->topics[t];

		topic->prev = cap->parent ? kt_store_snapshot_find_topic(cap->parent, topic->name) : NULL;
		for (size_t p = 0; p < topic->part_count; p++) {
			struct cap_part *part = &topic->parts[p];

			part->prev = topic->prev ? kt_store_topic_find_partition(topic->prev, (int32_t)p) : NULL;
			err = cap_plan_partition(part->prev, part->log_start, part->high, &part->plan, why,
						 sizeof(why));
			if (err)
				return kt_seterr(errstr, errstr_size, err, "topic %s: %s", topic->name, why);
			if (part->plan.gap_to > part->plan.gap_from) {
				(*gap_count)++;
				*gap_offsets += (uint64_t)(part->plan.gap_to - part->plan.gap_from);
				kt_log(cap->opts.log, KT_LOG_ERROR,
				       "RETENTION GAP: %s [%d]: offsets %lld..%lld (%lld records) were deleted by "
				       "retention before they were captured; the snapshot records the hole",
				       topic->name, (int)p, (long long)part->plan.gap_from,
				       (long long)part->plan.gap_to - 1,
				       (long long)(part->plan.gap_to - part->plan.gap_from));
			}
		}
	}
	return 0;
}

/* ---- progress and stalls ------------------------------------------------------------ */

static void progress_collect(struct kt_capture *cap, struct kt_capture_progress *progress,
			     int64_t *position)
{
	memset(progress, 0, sizeof(*progress));
	*position = 0;
	progress->elapsed_ns = kt_now_ns() - cap->round_started_ns;
	progress->topics = cap->topic_progress;
	progress->topic_count = cap->topic_count;
	for (size_t t = 0; t < cap->topic_count; t++) {
		struct cap_topic *topic = &cap->topics[t];
		struct kt_capture_topic_progress *tp = &cap->topic_progress[t];

		memset(tp, 0, sizeof(*tp));
		tp->name = topic->name;
		tp->partitions = (uint32_t)topic->part_count;
		for (size_t p = 0; p < topic->part_count; p++) {
			struct cap_part *part = &topic->parts[p];
			int64_t next = atomic_load_explicit(&part->pub_next, memory_order_relaxed);
			int done = atomic_load_explicit(&part->pub_done, memory_order_acquire);

			if (next > part->plan.end || done)
				next = part->plan.end;
			tp->offsets_total += (uint64_t)(part->plan.end - part->plan.fetch_from);
			tp->offsets_done += (uint64_t)(next - part->plan.fetch_from);
			tp->records += atomic_load_explicit(&part->pub_records, memory_order_relaxed);
			tp->raw_bytes += atomic_load_explicit(&part->pub_bytes, memory_order_relaxed);
			tp->partitions_done += done ? 1 : 0;
			*position += next + done;
		}
		progress->records += tp->records;
		progress->raw_bytes += tp->raw_bytes;
		progress->offsets_total += tp->offsets_total;
		progress->offsets_done += tp->offsets_done;
	}
}

/* Names (some of) the partitions that are not done, for a stall report. */
static void describe_stuck(struct kt_capture *cap, char *buf, size_t size)
{
	size_t used = 0, shown = 0;

	buf[0] = '\0';
	for (size_t t = 0; t < cap->topic_count; t++)
		for (size_t p = 0; p < cap->topics[t].part_count; p++) {
			struct cap_part *part = &cap->topics[t].parts[p];
			int n;

			if (atomic_load(&part->pub_done))
				continue;
			if (shown++ == 5) {
				snprintf(buf + used, size - used, ", ...");
				return;
			}
			n = snprintf(buf + used, size - used, "%s%s [%d] at offset %lld of %lld", used ? ", " : "",
				     part->topic->name, (int)p, (long long)atomic_load(&part->pub_next),
				     (long long)part->plan.end);
			if (n < 0 || (size_t)n >= size - used)
				return;
			used += (size_t)n;
		}
}

/* ---- commit ------------------------------------------------------------------------- */

static int build_partition(struct kt_store_topic *st, const struct cap_part *part)
{
	struct kt_store_partition *sp = kt_store_topic_add_partition(st, part->partition);
	const struct kt_store_partition *prev = part->prev;

	if (!sp)
		return -ENOMEM;
	sp->log_start_offset = part->log_start;
	sp->start_offset = part->plan.chain_start;
	sp->complete = part->done;
	sp->end_offset = part->done ? part->plan.end : part->next;
	/* The builder sums records, bytes and timestamps over the segments
	 * as they are added (repository.md 4.2). */
	sp->records = 0;
	sp->raw_bytes = 0;
	sp->min_ts = INT64_MAX;
	sp->max_ts = INT64_MIN;
	for (size_t i = 0; prev && i < prev->gap_count; i++)
		if (kt_store_partition_add_gap(sp, prev->gaps[i].from, prev->gaps[i].to, prev->gaps[i].reason))
			return -ENOMEM;
	if (part->plan.gap_to > part->plan.gap_from &&
	    kt_store_partition_add_gap(sp, part->plan.gap_from, part->plan.gap_to, "retention"))
		return -ENOMEM;
	for (size_t i = 0; i < part->late_gap_count; i++)
		if (kt_store_partition_add_gap(sp, part->late_gaps[i].from, part->late_gaps[i].to, "retention"))
			return -ENOMEM;
	for (size_t i = 0; prev && i < prev->segment_count; i++)
		if (kt_store_partition_add_segment(sp, &prev->segments[i]))
			return -ENOMEM;
	for (size_t i = 0; i < part->seg_count; i++)
		if (kt_store_partition_add_segment(sp, &part->segs[i]))
			return -ENOMEM;
	return 0;
}

int cap_round_build_topics(struct kt_capture *cap, struct kt_store_snapshot *snap)
{
	for (size_t t = 0; t < cap->topic_count; t++) {
		const struct cap_topic *topic = &cap->topics[t];
		struct kt_store_topic *st = kt_store_snapshot_add_topic(snap, topic->name, topic->partition_count,
									topic->replication_factor);

		if (!st)
			return -ENOMEM;
		st->configs_available = topic->configs_available;
		for (size_t i = 0; i < topic->config_count; i++)
			if (kt_store_topic_add_config(st, topic->config_names[i], topic->config_values[i]))
				return -ENOMEM;
		for (size_t p = 0; p < topic->part_count; p++)
			if (build_partition(st, &topic->parts[p]))
				return -ENOMEM;
	}
	return 0;
}

static int summarize(struct kt_capture *cap, const struct kt_store_snapshot *snap, uint32_t groups,
		     uint64_t gap_count, uint64_t gap_offsets)
{
	struct kt_capture_summary *s = &cap->summary;

	summary_free(cap);
	cap->topic_summaries = calloc(cap->topic_count + 1, sizeof(*cap->topic_summaries));
	if (!cap->topic_summaries)
		return -ENOMEM;
	snprintf(s->snapshot_id, sizeof(s->snapshot_id), "%s", snap->id);
	snprintf(s->parent_id, sizeof(s->parent_id), "%s", snap->parent);
	s->kind = snap->kind;
	s->started_ms = snap->started_ms;
	s->completed_ms = snap->completed_ms;
	s->duration_ns = kt_now_ns() - cap->round_started_ns;
	s->groups = groups;
	s->gap_count = gap_count;
	s->gap_offsets = gap_offsets;
	s->configs_available = 1;
	s->topics = cap->topic_summaries;
	for (size_t t = 0; t < cap->topic_count; t++) {
		const struct cap_topic *topic = &cap->topics[t];
		struct kt_capture_topic_summary *ts = &cap->topic_summaries[t];

		ts->name = strdup(topic->name);
		if (!ts->name)
			return -ENOMEM;
		s->topic_count = t + 1;
		ts->partitions = (uint32_t)topic->part_count;
		ts->configs_available = topic->configs_available;
		if (!topic->configs_available)
			s->configs_available = 0;
		for (size_t p = 0; p < topic->part_count; p++) {
			const struct cap_part *part = &topic->parts[p];

			ts->partitions_incomplete += part->done ? 0 : 1;
			ts->records += part->records;
			ts->raw_bytes += part->raw_bytes;
			ts->stored_bytes += part->stored_bytes;
			if (part->plan.gap_to > part->plan.gap_from)
				ts->gap_offsets += (uint64_t)(part->plan.gap_to - part->plan.gap_from);
			for (size_t g = 0; g < part->late_gap_count; g++)
				ts->gap_offsets += (uint64_t)(part->late_gaps[g].to - part->late_gaps[g].from);
			s->segments += part->seg_count;
		}
		s->partitions += ts->partitions;
		s->partitions_incomplete += ts->partitions_incomplete;
		s->records += ts->records;
		s->raw_bytes += ts->raw_bytes;
		s->stored_bytes += ts->stored_bytes;
	}
	return 0;
}

/* ---- one round ------------------------------------------------------------------------ */

static size_t choose_block_size(const struct kt_capture *cap)
{
	size_t active = 0, size;

	if (cap->opts.block_size)
		return cap->opts.block_size;
	for (size_t t = 0; t < cap->topic_count; t++)
		for (size_t p = 0; p < cap->topics[t].part_count; p++)
			active += cap->topics[t].parts[p].plan.end > cap->topics[t].parts[p].plan.fetch_from;
	/* Every partition being written holds two raw block buffers and two
	 * output slots, each rounded up to a power of two (about eight
	 * blocks' worth; the zstd contexts are shared by all writers).  Half
	 * the memory budget goes to them (the other half to librdkafka's
	 * prefetch), with blocks between 16 KiB and 1 MiB: smaller ones
	 * compress worse, larger ones index coarser. */
	size = active ? (size_t)(cap->opts.memory_budget / 2 / (active * 8)) : (1u << 20);
	if (size > (1u << 20))
		size = 1u << 20;
	if (size < (16u << 10)) {
		size = 16u << 10;
		kt_log(cap->opts.log, KT_LOG_WARN,
		       "%zu partitions to write need about %zu MiB of open blocks, more than half of "
		       "--memory allows: raise --memory or capture fewer topics per run",
		       active, active * 8 * size >> 20);
	}
	return size;
}

static int round_wrote_segments(const struct kt_capture *cap)
{
	for (size_t t = 0; t < cap->topic_count; t++)
		for (size_t p = 0; p < cap->topics[t].part_count; p++)
			if (cap->topics[t].parts[p].seg_count > 0)
				return 1;
	return 0;
}

/* Serves the client's callbacks, reports progress and watches for stalls
 * until every worker has returned.  Returns 1 when nothing moved for the
 * whole timeout (the round was then asked to stop; stuck names the
 * partitions that hung). */
static int watch_workers(struct kt_capture *cap, char *stuck, size_t stuck_size)
{
	struct kt_capture_progress progress;
	int64_t position, last_position = -1, last_move_ns, next_progress_ns;
	int stalled = 0;

	last_move_ns = next_progress_ns = kt_now_ns();
	while (!cap_workers_finished(cap)) {
		int64_t now;

		/* Short polls: the round goes on (seals, commit) as soon as
		 * the last worker returns, not up to 100 ms later. */
		rd_kafka_poll(cap->rk, 10);
		now = kt_now_ns();
		progress_collect(cap, &progress, &position);
		if (position != last_position) {
			last_position = position;
			last_move_ns = now;
		} else if (!cap->stop && !stalled && now - last_move_ns > cap->opts.timeout_ms * 1000000) {
			/* Nothing moved for the whole timeout: keep what is
			 * complete and say which partitions hang. */
			describe_stuck(cap, stuck, stuck_size);
			stalled = 1;
			cap->stop = 1;
		}
		if (cap->opts.on_progress && now >= next_progress_ns) {
			cap->opts.on_progress(cap->opts.opaque, &progress);
			next_progress_ns = now + cap->opts.progress_interval_ms * 1000000;
		}
	}
	return stalled;
}

/* Plans a round: metadata, watermarks and per-partition plans from
 * cap->parent.  Shared by run_round() and a workers group's first worker. */
int cap_round_plan(struct kt_capture *cap, uint64_t *gap_count, uint64_t *gap_offsets,
		   char *errstr, size_t errstr_size)
{
	int err;

	topics_free(cap);
	cap->round_started_ms = kt_wall_ms();
	cap->round_started_ns = kt_now_ns();
	err = load_topics(cap, errstr, errstr_size);
	if (!err)
		err = load_watermarks(cap, errstr, errstr_size);
	if (!err)
		err = plan_round(cap, gap_count, gap_offsets, errstr, errstr_size);
	return err;
}

static int run_round(struct kt_capture *cap, int *partial, char *errstr, size_t errstr_size)
{
	struct kt_store_snapshot *snap = NULL;
	rd_kafka_queue_t *configs_rkqu = NULL;
	struct kt_capture_progress progress;
	uint64_t gap_count = 0, gap_offsets = 0, late_gaps = 0, late_offsets = 0;
	uint32_t groups = 0;
	int64_t position;
	int stalled = 0, err;
	char stuck[512];

	*partial = 0;
	cap->err = 0;
	atomic_store(&cap->abort, 0);
	err = cap_round_plan(cap, &gap_count, &gap_offsets, errstr, errstr_size);
	if (err)
		goto out;
	cap->topic_progress = calloc(cap->topic_count, sizeof(*cap->topic_progress));
	snap = kt_store_snapshot_create();
	if (!snap || !cap->topic_progress) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	/* The group offsets belong to the moment the end offsets were fixed. */
	err = cap_admin_group_offsets(cap, snap, &groups);
	if (err) {
		kt_seterr(errstr, errstr_size, err, "cannot record consumer-group offsets: %s", kt_strerror(err));
		goto out;
	}
	configs_rkqu = cap_admin_configs_start(cap);
	cap->block_size = choose_block_size(cap);
	err = cap_workers_start(cap, errstr, errstr_size);
	if (!err)
		stalled = watch_workers(cap, stuck, sizeof(stuck));
	cap_workers_join(cap);
	cap_admin_configs_finish(cap, configs_rkqu);
	configs_rkqu = NULL;
	if (atomic_load(&cap->abort) || err) {
		if (!err) {
			pthread_mutex_lock(&cap->lock);
			err = kt_seterr(errstr, errstr_size, cap->err ? cap->err : KT_EKAFKA, "%s", cap->errstr);
			pthread_mutex_unlock(&cap->lock);
		}
		goto out;
	}
	if (cap->opts.on_progress) {
		progress_collect(cap, &progress, &position);
		cap->opts.on_progress(cap->opts.opaque, &progress);
	}
	for (size_t t = 0; t < cap->topic_count; t++)
		for (size_t p = 0; p < cap->topics[t].part_count; p++) {
			struct cap_part *part = &cap->topics[t].parts[p];

			*partial |= !part->done;
			for (size_t g = 0; g < part->late_gap_count; g++) {
				late_gaps++;
				late_offsets += (uint64_t)(part->late_gaps[g].to - part->late_gaps[g].from);
			}
		}
	gap_count += late_gaps;
	gap_offsets += late_offsets;
	if (*partial && cap->stop && !stalled && gap_count == 0 && !round_wrote_segments(cap)) {
		/* Stopped before anything was captured: a snapshot would only
		 * repeat its parent, so nothing is published. */
		kt_log(cap->opts.log, KT_LOG_WARN, "interrupted before any record was captured: nothing committed");
		goto out;
	}

	snprintf(snap->parent, sizeof(snap->parent), "%s", cap->parent ? cap->parent->id : "");
	snap->kind = *partial ? KT_SNAPSHOT_PARTIAL : cap->parent ? KT_SNAPSHOT_INCREMENTAL : KT_SNAPSHOT_FULL;
	snap->started_ms = cap->round_started_ms;
	/* kt_store_snapshot_create() already set tool_version. */
	snap->source = strdup(cap->source);
	if (!snap->source || cap_round_build_topics(cap, snap)) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory while building the manifest");
		goto out;
	}
	snap->completed_ms = kt_wall_ms();
	err = kt_store_repo_commit_snapshot(cap->repo, snap, errstr, errstr_size);
	if (err)
		goto out;
	kt_log(cap->opts.log, KT_LOG_INFO, "committed %s snapshot %s",
	       snap->kind == KT_SNAPSHOT_PARTIAL ? "partial" :
	       snap->kind == KT_SNAPSHOT_INCREMENTAL ? "incremental" : "full", snap->id);
	err = summarize(cap, snap, groups, gap_count, gap_offsets);
	if (err) {
		kt_seterr(errstr, errstr_size, err, "out of memory");
		goto out;
	}
	kt_store_snapshot_destroy(cap->parent);
	cap->parent = snap;
	snap = NULL;
	cap->total_gap_offsets += gap_offsets;
	if (cap->opts.on_snapshot)
		cap->opts.on_snapshot(cap->opts.opaque, &cap->summary);
	if (stalled)
		err = kt_seterr(errstr, errstr_size, KT_ETIMEDOUT,
				"no progress for %lld ms, stopped with what was complete (partial snapshot %s): %s",
				(long long)cap->opts.timeout_ms, cap->summary.snapshot_id, stuck);
out:
	if (configs_rkqu)
		rd_kafka_queue_destroy(configs_rkqu);
	kt_store_snapshot_destroy(snap);
	return err;
}

/* Sleeps until the next round is due, serving the client's callbacks. */
static void wait_interval(struct kt_capture *cap)
{
	int64_t due = cap->round_started_ns + cap->opts.interval_ms * 1000000;

	while (!cap->stop && kt_now_ns() < due)
		rd_kafka_poll(cap->rk, 100);
}

int kt_capture_run(struct kt_capture *cap, const struct kt_capture_summary **summary,
		   char *errstr, size_t errstr_size)
{
	int err, partial = 0, interrupted = 0;

	if (summary)
		*summary = &cap->summary;
	if (cap->workers_group)
		return cap_workers_run(cap, errstr, errstr_size);
	cap->total_gap_offsets = 0;
	err = cap_consumer_create(cap, errstr, errstr_size);
	if (err)
		goto out;
	if (access(cap->repo_path, F_OK) != 0) {
		/* A new repository is created only once the cluster answered
		 * and the named topics exist, so that a typo or an unreachable
		 * broker leaves nothing behind. */
		err = load_topics(cap, errstr, errstr_size);
		topics_free(cap);
		if (err)
			goto out;
	}
	err = kt_store_repo_open(&cap->repo, cap->repo_path, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK, cap->repo_mode,
				 errstr, errstr_size);
	if (err)
		goto out;
	/* A workers group shares the repository without the writer lock while
	 * its plan is live (repository.md section 8.5): wait for it. */
	err = cap_workers_refuse_live_plan(cap->repo, errstr, errstr_size);
	if (err)
		goto out;
	err = kt_store_repo_load_snapshot(cap->repo, "latest", &cap->parent, errstr, errstr_size);
	if (err == KT_ENOTFOUND) {
		err = 0;
		kt_log(cap->opts.log, KT_LOG_INFO, "%s holds no snapshot: this capture is a full one", cap->repo_path);
	} else if (err) {
		goto out;
	} else {
		kt_log(cap->opts.log, KT_LOG_INFO, "continuing snapshot %s incrementally", cap->parent->id);
	}
	for (;;) {
		err = run_round(cap, &partial, errstr, errstr_size);
		if (err && cap->opts.follow && !cap->stop && (err == KT_ETIMEDOUT || err == KT_EKAFKA)) {
			/* Continuous backup rides out broker trouble: the
			 * round is lost (or kept partial), the next one
			 * continues from the last snapshot. */
			kt_log(cap->opts.log, KT_LOG_ERROR, "%s; trying again at the next interval", errstr);
			if (cap->opts.on_round_error)
				cap->opts.on_round_error(cap->opts.opaque, err, errstr);
			err = 0;
			wait_interval(cap);
			if (cap->stop)
				break;
			continue;
		}
		if (err)
			break;
		interrupted = cap->stop;
		if (!cap->opts.follow || cap->stop)
			break;
		wait_interval(cap);
		if (cap->stop)
			break;
	}
out:
	if (cap->rk) {
		rd_kafka_consumer_close(cap->rk);
		rd_kafka_destroy(cap->rk);
		cap->rk = NULL;
	}
	kt_store_repo_destroy(cap->repo);
	cap->repo = NULL;
	if (err)
		return err;
	if (cap->total_gap_offsets > 0)
		return kt_seterr(errstr, errstr_size, KT_EGAP,
				 "%llu offsets were deleted by retention before they could be captured; "
				 "the snapshot records the gaps", (unsigned long long)cap->total_gap_offsets);
	if (interrupted && partial && !cap->opts.follow && !cap->summary.snapshot_id[0])
		return kt_seterr(errstr, errstr_size, KT_EINTERRUPTED,
				 "interrupted before any record was captured: nothing was committed");
	if (interrupted && partial && !cap->opts.follow)
		return kt_seterr(errstr, errstr_size, KT_EINTERRUPTED,
				 "interrupted: partial snapshot %s keeps what was complete; the next capture continues it",
				 cap->summary.snapshot_id);
	return 0;
}

