/*
 * workers.c - `ktape restore --workers-group NAME`: the partitions of one
 * snapshot restored by many processes (on many hosts), shared out by a
 * Kafka consumer group.  format/restore.md section 8 is the contract; in
 * short:
 *
 *  - The unit of work is one source partition.  It is restored by an
 *    ordinary restore restricted to it (kt_replay_opts.only_partition), so
 *    it has its own restore record, resumes by its fingerprint and keeps
 *    the prefix rule (section 1): every record lands exactly once whoever
 *    runs it, however often it is interrupted.
 *  - Restore has no source topics in Kafka, so the group subscribes to the
 *    target topics: the worker assigned target partition P of topic T'
 *    restores source partition P of the topic restored into T' (preserved
 *    partitioning, which --workers-group requires).  It never consumes or
 *    commits: the group is used for assignment only, and the assigned
 *    partitions are paused.
 *  - A unit is run under an exclusive lock file in the state directory, so
 *    two workers that both believe they own it (a rebalance in flight)
 *    never send it at once; a finished unit leaves a done file, and every
 *    worker exits once every unit of the snapshot is done.
 *  - A unit's partition revoked while it runs is stopped (kt_replay_stop):
 *    it ends resumable and its next owner resumes it.
 */
#include "kt_replay.h"
#include "kt_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* How often the done files of every unit are looked at. */
#define RW_CHECK_NS (500 * 1000000LL)

struct rw_unit {
	const char *source;   /* the snapshot's topic (owned by the snapshot) */
	char *target;         /* the target topic */
	int32_t partition;
	char name[40];        /* "<xxh3 of source>-<partition>": file names */
	int owned;            /* its target partition is assigned to this worker */
	int done;             /* its done file exists */
	int64_t retry_ns;     /* not before (locked by another worker) */
};

struct kt_replay_workers {
	const struct kt_replay_opts *opts;
	char *group;
	volatile sig_atomic_t stop;
	struct kt_replay_workers_summary summary;

	rd_kafka_t *rk;
	struct kt_store_snapshot *snap;
	char dir[PATH_MAX];   /* the state directory of this group and snapshot */
	struct rw_unit *units;
	size_t unit_count;

	/* The unit running, in its own thread, while the main thread serves
	 * the group. */
	struct rw_unit *running;
	struct kt_replay *rp;
	struct kt_replay_opts unit_opts;
	const char *unit_topic[1];
	int lock_fd;
	pthread_t thread;
	atomic_int thread_done;
	int thread_err;
	char thread_errstr[1024];
	int revoked;          /* the running unit's partition was revoked */
};

int kt_replay_workers_create(struct kt_replay_workers **out, const struct kt_replay_opts *opts,
			     const char *group, char *errstr, size_t errstr_size)
{
	struct kt_replay_workers *w;
	size_t len = strlen(group);

	*out = NULL;
	if (len == 0 || len > 200 || group[0] == '.' ||
	    strspn(group, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "--workers-group '%s': a group name is 1 to 200 characters of [A-Za-z0-9._-] "
				 "not starting with '.'", group);
	if (opts->mode != KT_REPLAY_MODE_RESTORE || opts->partitioning != KT_REPLAY_PART_PRESERVE)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "--workers-group shares partitions out by target partition: it needs "
				 "--partitioning preserve (the default)");
	if (opts->resume_id || opts->force_new || opts->dry_run)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "--workers-group resumes each partition's restore by itself: --resume, --new and "
				 "--dry-run are not supported with it");
	w = calloc(1, sizeof(*w));
	if (!w || !(w->group = strdup(group))) {
		free(w);
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	}
	w->opts = opts;
	w->lock_fd = -1;
	*out = w;
	return 0;
}

void kt_replay_workers_stop(struct kt_replay_workers *w)
{
	w->stop = 1;
}

const struct kt_replay_workers_summary *kt_replay_workers_summary(const struct kt_replay_workers *w)
{
	return &w->summary;
}

void kt_replay_workers_destroy(struct kt_replay_workers *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->unit_count; i++)
		free(w->units[i].target);
	free(w->units);
	kt_store_snapshot_destroy(w->snap);
	free(w->group);
	free(w);
}

/* ---- the units ------------------------------------------------------------------ */

/* A name or '^regex' selection, as the engine applies it (kt_replay.h). */
static int rw_match(const char *const *pats, size_t n, const char *name, int *matched,
		    char *errstr, size_t errstr_size)
{
	*matched = 0;
	for (size_t i = 0; i < n && !*matched; i++) {
		regex_t re;

		if (pats[i][0] != '^') {
			*matched = !strcmp(pats[i], name);
			continue;
		}
		if (regcomp(&re, pats[i], REG_EXTENDED | REG_NOSUB))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE, "invalid regex '%s'", pats[i]);
		*matched = regexec(&re, name, 0, NULL, 0) == 0 && strncmp(name, "__", 2) != 0;
		regfree(&re);
	}
	return 0;
}

static int rw_target(const struct kt_replay_opts *opts, const char *source, char **out)
{
	for (size_t i = 0; i < opts->map_count; i++)
		if (!strcmp(opts->maps[i].source, source))
			return (*out = strdup(opts->maps[i].target)) ? 0 : -ENOMEM;
	return asprintf(out, "%s%s", opts->prefix ? opts->prefix : "", source) < 0 ? (*out = NULL, -ENOMEM) : 0;
}

/* Loads the snapshot (once, so that every unit restores the same one) and
 * lists its selected partitions. */
static int rw_units(struct kt_replay_workers *w, char *errstr, size_t errstr_size)
{
	const struct kt_replay_opts *opts = w->opts;
	struct kt_store_repo *repo = NULL;
	size_t total = 0;
	int err;

	err = kt_store_repo_open(&repo, opts->repo_path, 0, 0, errstr, errstr_size);
	if (!err)
		err = kt_store_repo_load_snapshot(repo, opts->snapshot_id, &w->snap, errstr, errstr_size);
	kt_store_repo_destroy(repo);
	if (err)
		return err;
	snprintf(w->summary.snapshot_id, sizeof(w->summary.snapshot_id), "%s", w->snap->id);
	for (size_t t = 0; t < w->snap->topic_count; t++)
		total += w->snap->topics[t].n_partitions;
	w->units = calloc(total + 1, sizeof(*w->units));
	if (!w->units)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	for (size_t t = 0; t < w->snap->topic_count; t++) {
		const struct kt_store_topic *st = &w->snap->topics[t];
		int in = !opts->topic_count, out = 0;
		char *target = NULL;

		if (opts->topic_count && (err = rw_match(opts->topics, opts->topic_count, st->name, &in, errstr,
							 errstr_size)))
			return err;
		if ((err = rw_match(opts->excludes, opts->exclude_count, st->name, &out, errstr, errstr_size)))
			return err;
		if (!in || out)
			continue;
		for (size_t p = 0; p < st->n_partitions; p++) {
			struct rw_unit *u = &w->units[w->unit_count];

			if (rw_target(opts, st->name, &target))
				return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
			u->source = st->name;
			u->target = target;
			u->partition = st->partitions[p].partition;
			snprintf(u->name, sizeof(u->name), "%016" PRIx64 "-%" PRId32,
				 (uint64_t)XXH3_64bits(st->name, strlen(st->name)), u->partition);
			w->unit_count++;
		}
	}
	w->summary.partitions = w->unit_count;
	if (!w->unit_count)
		return kt_seterr(errstr, errstr_size, KT_ENOTFOUND, "no partition of snapshot %s matches the selection",
				 w->snap->id);
	return 0;
}

static struct rw_unit *rw_find(struct kt_replay_workers *w, const char *target, int32_t partition)
{
	for (size_t i = 0; i < w->unit_count; i++)
		if (w->units[i].partition == partition && !strcmp(w->units[i].target, target))
			return &w->units[i];
	return NULL;
}

/* The state directory of this group's restore of this snapshot: beside
 * the restore records (REPO/restores or --state-dir). */
static int rw_state_dir(struct kt_replay_workers *w, char *errstr, size_t errstr_size)
{
	const struct kt_replay_opts *opts = w->opts;
	const char *brokers = opts->brokers ? opts->brokers : "";
	/* Keyed by the target too: the same group restoring the same
	 * snapshot into another cluster starts afresh. */
	uint32_t target = (uint32_t)XXH3_64bits(brokers, strlen(brokers));
	struct stat st;
	int n;

	if (opts->state_dir)
		n = snprintf(w->dir, sizeof(w->dir), "%s/workers-%s-%s-%08" PRIx32, opts->state_dir, w->group,
			     w->snap->id, target);
	else if (stat(opts->repo_path, &st) == 0 && S_ISDIR(st.st_mode))
		n = snprintf(w->dir, sizeof(w->dir), "%s/restores/workers-%s-%s-%08" PRIx32, opts->repo_path,
			     w->group, w->snap->id, target);
	else
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "%s is not a repository directory: give --state-dir DIR, shared by every worker",
				 opts->repo_path);
	if (n >= (int)sizeof(w->dir))
		return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "state directory path too long");
	n = kt_mkdir_p(w->dir, 0700);
	if (n)
		return kt_seterr(errstr, errstr_size, n, "cannot create %s: %s", w->dir, kt_strerror(n));
	return 0;
}

static int rw_path(const struct kt_replay_workers *w, const struct rw_unit *u, const char *ext, char *buf,
		   size_t size)
{
	return snprintf(buf, size, "%s/%s.%s", w->dir, u->name, ext) >= (int)size ? -ENAMETOOLONG : 0;
}

/* Counts the units not done yet, looking at the done files of those not
 * known done. */
static size_t rw_remaining(struct kt_replay_workers *w)
{
	size_t remaining = 0;
	char path[PATH_MAX + 64];

	for (size_t i = 0; i < w->unit_count; i++) {
		struct rw_unit *u = &w->units[i];

		if (!u->done && rw_path(w, u, "done", path, sizeof(path)) == 0 && access(path, F_OK) == 0)
			u->done = 1;
		remaining += !u->done;
	}
	return remaining;
}

/* ---- running one unit ----------------------------------------------------------- */

static void *rw_thread(void *arg)
{
	struct kt_replay_workers *w = arg;

	w->thread_err = kt_replay_run(w->rp, w->thread_errstr, sizeof(w->thread_errstr));
	atomic_store(&w->thread_done, 1);
	return NULL;
}

/* Starts unit u if no other worker runs it: 1 started, 0 busy elsewhere. */
static int rw_start(struct kt_replay_workers *w, struct rw_unit *u, char *errstr, size_t errstr_size)
{
	char path[PATH_MAX + 64];
	int err, rc;

	if (rw_path(w, u, "lock", path, sizeof(path)))
		return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "state path too long");
	w->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (w->lock_fd < 0)
		return kt_seterr(errstr, errstr_size, -errno, "cannot open %s: %s", path, strerror(errno));
	if (flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		err = errno;
		close(w->lock_fd);
		w->lock_fd = -1;
		if (err == EWOULDBLOCK) {
			/* Its previous owner is still finishing it. */
			u->retry_ns = kt_now_ns() + 200 * 1000000LL;
			return 0;
		}
		return kt_seterr(errstr, errstr_size, -err, "cannot lock %s: %s", path, strerror(err));
	}
	/* Done while this worker waited for the lock: nothing to run. */
	rw_remaining(w);
	if (u->done) {
		close(w->lock_fd);
		w->lock_fd = -1;
		return 0;
	}
	w->unit_opts = *w->opts;
	w->unit_topic[0] = u->source;
	w->unit_opts.topics = w->unit_topic;
	w->unit_opts.topic_count = 1;
	w->unit_opts.excludes = NULL;
	w->unit_opts.exclude_count = 0;
	w->unit_opts.snapshot_id = w->snap->id;
	w->unit_opts.only_partition = u->partition;
	w->unit_opts.progress = NULL;
	err = kt_replay_create(&w->rp, &w->unit_opts, errstr, errstr_size);
	if (err)
		goto fail;
	atomic_store(&w->thread_done, 0);
	w->revoked = 0;
	rc = pthread_create(&w->thread, NULL, rw_thread, w);
	if (rc) {
		err = kt_seterr(errstr, errstr_size, -rc, "cannot start a thread: %s", strerror(rc));
		goto fail;
	}
	w->running = u;
	kt_log(w->opts->log, KT_LOG_INFO, "workers group %s: restoring %s [%d] into %s", w->group, u->source,
	       (int)u->partition, u->target);
	return 1;
fail:
	kt_replay_destroy(w->rp);
	w->rp = NULL;
	close(w->lock_fd);
	w->lock_fd = -1;
	return err;
}

/* Collects the finished unit: done file on success. */
static int rw_finish(struct kt_replay_workers *w, char *errstr, size_t errstr_size)
{
	struct rw_unit *u = w->running;
	const struct kt_replay_summary *s;
	char path[PATH_MAX + 64], text[512];
	int err = w->thread_err;

	pthread_join(w->thread, NULL);
	s = kt_replay_summary(w->rp);
	w->summary.records_sent += s->records_acked;
	w->summary.records_skipped += s->records_skipped;
	w->summary.gaps += s->gaps;
	for (size_t i = 0; i < s->group_commit_count; i++)
		w->summary.group_commits += s->group_commits[i].committed;
	if (!err) {
		int n = snprintf(text, sizeof(text), "{\"topic\":\"%s\",\"partition\":%d,\"restore\":\"%s\"}\n",
				 u->source, (int)u->partition, s->restore_id);

		/* The done file is written only after the restore record says
		 * complete: a crash in between reruns an already complete
		 * restore, which finds everything in the target. */
		err = rw_path(w, u, "done", path, sizeof(path));
		if (!err)
			err = kt_write_file_atomic(path, text, (size_t)n, 0600, errstr, errstr_size);
		if (!err) {
			u->done = 1;
			w->summary.partitions_run++;
			kt_log(w->opts->log, KT_LOG_INFO,
			       "workers group %s: %s [%d] restored (%" PRIu64 " records sent, %" PRIu64
			       " already there), restore %s", w->group, u->source, (int)u->partition,
			       s->records_acked, s->records_skipped, s->restore_id);
		}
	} else if (err == KT_EINTERRUPTED || err == KT_ELOCKED) {
		/* Stopped (revoked, or the worker asked to stop), or its
		 * restore record is still locked by a previous owner: it
		 * resumes where it stands, here or on its new owner. */
		kt_log(w->opts->log, KT_LOG_INFO, "workers group %s: %s [%d] left resumable: %s", w->group, u->source,
		       (int)u->partition, w->thread_errstr);
		u->retry_ns = kt_now_ns() + 200 * 1000000LL;
		err = 0;
	} else {
		err = kt_seterr(errstr, errstr_size, err, "%s [%d]: %s", u->source, (int)u->partition,
				w->thread_errstr);
	}
	kt_replay_destroy(w->rp);
	w->rp = NULL;
	close(w->lock_fd);
	w->lock_fd = -1;
	w->running = NULL;
	return err;
}

/* ---- the group -------------------------------------------------------------------- */

static void rw_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *list,
			 void *opaque)
{
	struct kt_replay_workers *w = opaque;
	int cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
	int assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
	rd_kafka_error_t *error = NULL;

	for (int k = 0; k < list->cnt; k++) {
		struct rw_unit *u = rw_find(w, list->elems[k].topic, list->elems[k].partition);

		if (!u)
			continue;
		u->owned = assign;
		if (!assign && u == w->running && w->rp) {
			w->revoked = 1;
			kt_replay_stop(w->rp);
		}
	}
	if (cooperative)
		error = assign ? rd_kafka_incremental_assign(rk, list) : rd_kafka_incremental_unassign(rk, list);
	else
		rd_kafka_assign(rk, assign ? list : NULL);
	if (error) {
		kt_log(w->opts->log, KT_LOG_WARN, "workers group %s: %s", w->group, rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	}
	/* Nothing is consumed: the group only shares the partitions out. */
	if (assign)
		rd_kafka_pause_partitions(rk, list);
	kt_log(w->opts->log, KT_LOG_INFO, "workers group %s: %d target partitions %s", w->group, list->cnt,
	       assign ? "assigned to this worker" : "revoked");
}

/* librdkafka narrates reconnects in detail; the engine's own clients
 * report real trouble, so the group consumer's log is debug output. */
static void rw_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	struct kt_replay_workers *w = rd_kafka_opaque(rk);

	(void)level;
	if (w)
		kt_log(w->opts->log, KT_LOG_DEBUG, "librdkafka %s: %s", fac, buf);
}

static int rw_consumer(struct kt_replay_workers *w, char *errstr, size_t errstr_size)
{
	const struct kt_replay_opts *opts = w->opts;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	static const char *const props[][2] = {
		{ "partition.assignment.strategy", "cooperative-sticky" },
		{ "enable.auto.commit", "false" },
		{ "enable.auto.offset.store", "false" },
		{ "auto.offset.reset", "latest" },
		/* A dead worker's partitions move after this long. */
		{ "session.timeout.ms", "10000" },
		{ "heartbeat.interval.ms", "1000" },
		{ "client.id", "ktape-restore-worker" },
		{ "log.connection.close", "false" },
	};
	char why[512];
	int err = 0;

	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]) && !err; i++)
		if (rd_kafka_conf_set(conf, props[i][0], props[i][1], why, sizeof(why)) != RD_KAFKA_CONF_OK)
			err = kt_seterr(errstr, errstr_size, KT_EUSAGE, "librdkafka property '%s': %s", props[i][0], why);
	if (!err && opts->conf_apply)
		err = opts->conf_apply(opts->conf_opaque, conf, errstr, errstr_size);
	if (!err && (rd_kafka_conf_set(conf, "group.id", w->group, why, sizeof(why)) != RD_KAFKA_CONF_OK ||
		     (opts->brokers &&
		      rd_kafka_conf_set(conf, "bootstrap.servers", opts->brokers, why, sizeof(why)) != RD_KAFKA_CONF_OK)))
		err = kt_seterr(errstr, errstr_size, KT_EUSAGE, "%s", why);
	if (err) {
		rd_kafka_conf_destroy(conf);
		return err;
	}
	rd_kafka_conf_set_opaque(conf, w);
	rd_kafka_conf_set_log_cb(conf, rw_log);
	rd_kafka_conf_set_rebalance_cb(conf, rw_rebalance);
	w->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (!w->rk) {
		rd_kafka_conf_destroy(conf);
		return kt_seterr(errstr, errstr_size, KT_EKAFKA, "cannot create the group's consumer: %s", why);
	}
	rd_kafka_poll_set_consumer(w->rk);
	return 0;
}

/* The target topics must exist with the partitions to restore into: the
 * group can only assign partitions that exist.  (All-topics metadata: a
 * request naming a topic could create it with a default partition count.) */
static int rw_subscribe(struct kt_replay_workers *w, char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *sub;
	rd_kafka_resp_err_t rerr;
	int err = 0;

	rerr = rd_kafka_metadata(w->rk, 1, NULL, &md, w->opts->timeout_ms);
	if (rerr)
		return kt_seterr(errstr, errstr_size, KT_EKAFKA, "cannot read the target's metadata: %s",
				 rd_kafka_err2str(rerr));
	sub = rd_kafka_topic_partition_list_new(8);
	for (size_t i = 0; i < w->unit_count && !err; i++) {
		const struct rw_unit *u = &w->units[i];
		int found = 0;

		for (int t = 0; t < md->topic_cnt && !found; t++)
			if (!strcmp(md->topics[t].topic, u->target) && !md->topics[t].err)
				found = md->topics[t].partition_cnt > u->partition ? 1 : -1;
		if (found <= 0)
			err = kt_seterr(errstr, errstr_size, KT_ENOTFOUND,
					"target %s [%d] does not exist: with --workers-group the target topics "
					"must exist before the workers start (create them, or run one plain "
					"restore of the topics first)", u->target, (int)u->partition);
		else if (!rd_kafka_topic_partition_list_find(sub, u->target, RD_KAFKA_PARTITION_UA))
			rd_kafka_topic_partition_list_add(sub, u->target, RD_KAFKA_PARTITION_UA);
	}
	rd_kafka_metadata_destroy(md);
	if (!err && (rerr = rd_kafka_subscribe(w->rk, sub)))
		err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "workers group %s: cannot subscribe: %s", w->group,
				rd_kafka_err2str(rerr));
	rd_kafka_topic_partition_list_destroy(sub);
	return err;
}

int kt_replay_workers_run(struct kt_replay_workers *w, char *errstr, size_t errstr_size)
{
	int64_t next_check = 0;
	size_t remaining = 1;
	int err;

	err = rw_units(w, errstr, errstr_size);
	if (!err)
		err = rw_state_dir(w, errstr, errstr_size);
	if (!err && (remaining = rw_remaining(w)) == 0)
		goto out;
	if (!err)
		err = rw_consumer(w, errstr, errstr_size);
	if (!err)
		err = rw_subscribe(w, errstr, errstr_size);
	if (!err)
		kt_log(w->opts->log, KT_LOG_INFO, "workers group %s: restoring snapshot %s (%zu partitions, %zu left)",
		       w->group, w->snap->id, w->unit_count, remaining);
	while (!err && remaining > 0) {
		rd_kafka_message_t *msg = rd_kafka_consumer_poll(w->rk, 100);

		if (msg)
			rd_kafka_message_destroy(msg);
		if (w->stop && w->running && w->rp)
			kt_replay_stop(w->rp);
		if (w->running && atomic_load(&w->thread_done))
			err = rw_finish(w, errstr, errstr_size);
		if (err)
			break;
		if (w->stop && !w->running)
			break;
		if (!w->running && !w->stop) {
			int64_t now = kt_now_ns();

			for (size_t i = 0; i < w->unit_count && !w->running && !err; i++) {
				struct rw_unit *u = &w->units[i];

				int rc = u->owned && !u->done && u->retry_ns <= now ?
						 rw_start(w, u, errstr, errstr_size) : 0;

				if (rc < 0)
					err = rc;
			}
			if (err)
				break;
		}
		if (kt_now_ns() >= next_check) {
			remaining = rw_remaining(w);
			next_check = kt_now_ns() + RW_CHECK_NS;
		}
	}
	if (w->running) {
		/* A failure elsewhere: stop the unit in flight cleanly. */
		kt_replay_stop(w->rp);
		while (!atomic_load(&w->thread_done))
			usleep(10000);
		rw_finish(w, w->thread_errstr, sizeof(w->thread_errstr));
	}
	if (!err && w->stop && remaining > 0)
		err = kt_seterr(errstr, errstr_size, KT_EINTERRUPTED,
				"interrupted: %zu of %zu partitions are not restored yet; run the workers of group %s "
				"again to resume them", remaining, w->unit_count, w->group);
out:
	if (w->rk) {
		rd_kafka_consumer_close(w->rk);
		rd_kafka_destroy(w->rk);
		w->rk = NULL;
	}
	if (!err)
		kt_log(w->opts->log, KT_LOG_INFO, "workers group %s: all %zu partitions of snapshot %s are restored",
		       w->group, w->unit_count, w->snap->id);
	return err;
}
