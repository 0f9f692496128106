/*
 * restore.c - the engine behind `ktape restore` and `ktape replay`.
 *
 * It reads the selected partitions of a snapshot through the store's scans
 * (so a time or offset window reads only the blocks inside it), sends every
 * record with an idempotent librdkafka producer in a deterministic order,
 * and tracks each delivery report.  In restore mode it keeps a restore
 * record in the repository (format/restore.md): the plan, written before the
 * first send, lets a rerun skip exactly the records a killed run had already
 * written; the offset map, written at the end, translates consumer-group
 * offsets onto the target.
 *
 * Threads: everything here runs in the caller's thread.  librdkafka invokes
 * the delivery-report callback from rd_kafka_poll()/rd_kafka_flush() in this
 * same thread, so the bookkeeping needs no locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "checkpoint_priv.h"
#include "kt_replay.h"
#include "kt_store.h"
#include "offsetmap_priv.h"
#include "replay_units_priv.h"

/* Records taken from one partition per turn of the round-robin order
 * (format/restore.md section 2.1).  Part of the on-disk contract: changing
 * it changes which records a rerun skips. */
#define RR_CHUNK 1024
/* Partitions in the round-robin rotation at once; also part of the
 * contract. */
#define RR_WINDOW 64
/* How often (in records) the send loop serves delivery reports and looks at
 * the clock. */
#define POLL_EVERY 256
/* How often the checkpoint is rewritten while a restore runs. */
#define CHECKPOINT_EVERY_NS 1000000000LL
/* Topic creation gets at most this long: brokers that cannot create topics
 * (the sandbox) make CreateTopics wait for a controller that never answers. */
#define CREATE_TIMEOUT_MS 5000

struct rs_flight {
	int32_t source_partition;
	int64_t source_offset;
};

/* A target partition.  The FIFO holds the source of every record sent to
 * it and not yet acknowledged: Kafka acknowledges a partition's records in
 * the order they were sent, so the head is always the one reported. */
struct rs_target {
	struct rs_topic *topic;
	int32_t partition;
	int in_plan;
	int64_t base;
	int64_t end_now; /* end offset when the run started */
	uint64_t skip;   /* records of the plan already in the target */
	uint64_t seen;   /* records of the plan met so far for this partition */
	uint64_t acked;  /* acknowledged or found present, counted from base */
	long section;    /* offset-map section, or -1 */
	int warned;
	struct rs_flight *fifo;
	size_t fifo_head;
	size_t fifo_len;
	size_t fifo_cap;
};

struct rs_topic {
	const struct kt_store_topic *st;
	const char *source; /* owned by the plan */
	const char *target; /* owned by the plan */
	rd_kafka_topic_t *rkt;
	int32_t target_partitions;
	int exists;
	struct rs_target *targets; /* [target_partitions], by partition number */
	uint64_t null_key_rr;
};

struct rs_part {
	struct rs_topic *topic;
	const struct kt_store_partition *sp;
	int64_t from_offset;
	int64_t to_offset;
	struct kt_store_scan *scan;
	const struct kt_record *head;
	int done;
};

/* A topic pattern as capture takes them: an exact name, or a POSIX
 * extended regex when it starts with '^' (as librdkafka's subscribe). */
struct rs_pattern {
	int is_regex;
	regex_t re;
};

struct kt_replay {
	struct kt_replay_opts opts;
	volatile sig_atomic_t stop;
	struct rs_pattern *topic_pats;
	struct rs_pattern *exclude_pats;
	regex_t group_re;
	int group_re_set;

	struct kt_store_repo *repo;
	struct kt_store_snapshot *snap;
	struct kt_replay_plan *plan;
	struct kt_replay_checkpoint *ckpt;
	struct kt_replay_omap *omap;
	char dir[PATH_MAX]; /* restores/<id>, "" when nothing is recorded */
	/* A finished restore of the same snapshot into a topic this one
	 * writes: a new restore into non-empty targets would duplicate it. */
	char dup_id[64];
	char dup_topic[KT_STORE_MAX_TOPIC_LEN + 1];
	int lock_fd;
	int record; /* restore mode, not a dry run: keep the restore record */

	rd_kafka_t *rk;
	size_t topic_count;
	struct rs_topic *topics;
	size_t part_count;
	struct rs_part *parts;
	size_t *heap; /* part indexes, for the time order */
	size_t heap_len;

	struct kt_replay_clock clock;
	struct kt_replay_bucket *rate;
	struct kt_replay_bucket *byte_rate;
	struct kt_replay_pacer *pacer;
	uint64_t xs; /* xorshift64* state for random partitioning */

	int64_t ts_shift;      /* --timestamps shift */
	int ts_shift_set;
	int64_t loop_shift;    /* added to timestamps on this loop */
	int64_t min_ts_seen;
	int64_t max_ts_seen;

	int dr_err;            /* the first failed delivery */
	char dr_errstr[512];
	uint64_t in_flight;
	uint64_t records_planned;
	int64_t start_ns;
	int64_t last_progress_ns;
	int64_t last_ckpt_ns;
	int ran;
	struct kt_replay_summary summary;
};

/* ======================================================================
 * Options
 * ====================================================================== */

void kt_replay_opts_init(struct kt_replay_opts *opts, int mode)
{
	memset(opts, 0, sizeof(*opts));
	opts->mode = mode;
	opts->from_time = INT64_MIN;
	opts->to_time = INT64_MAX;
	opts->partitioning = KT_REPLAY_PART_PRESERVE;
	opts->pace = KT_REPLAY_PACE_NONE;
	opts->speed = 1.0;
	opts->timestamps = KT_REPLAY_TS_KEEP;
	opts->loops = 1;
	opts->create_topics = 1;
	opts->timeout_ms = 10000;
	opts->progress_interval_ms = 500;
	opts->only_partition = -1;
}

int kt_replay_parse_offset_bound(char *text, struct kt_replay_offset_bound *bound,
				 char *errstr, size_t errstr_size)
{
	char *fields[3], *p = text, *end;
	size_t n = 0;
	long long v;

	while (n < 3) {
		fields[n++] = p;
		p = strchr(p, ':');
		if (!p)
			break;
		*p++ = '\0';
	}
	if (p)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "offset bound has too many ':' fields (want N, P:N or TOPIC:P:N)");
	bound->topic = n == 3 ? fields[0] : NULL;
	bound->partition = -1;
	if (n >= 2) {
		const char *ps = fields[n - 2];

		errno = 0;
		v = strtoll(ps, &end, 10);
		if (!*ps || *end || errno || v < 0 || v > INT32_MAX)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "offset bound: '%s' is not a partition number", ps);
		bound->partition = (int32_t)v;
	}
	if (bound->topic && !*bound->topic)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "offset bound: empty topic name");
	errno = 0;
	v = strtoll(fields[n - 1], &end, 10);
	if (!*fields[n - 1] || *end || errno || v < 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "offset bound: '%s' is not an offset (a number >= 0)", fields[n - 1]);
	bound->offset = v;
	return 0;
}

struct kt_replay_args {
	struct kt_replay_opts *opts;
	const char **topics;
	const char **excludes;
	const char **groups;
	struct kt_replay_map *maps;
	struct kt_replay_offset_bound *from_offsets;
	struct kt_replay_offset_bound *to_offsets;
};

int kt_replay_args_create(struct kt_replay_args **out, struct kt_replay_opts *opts, int argc)
{
	struct kt_replay_args *args = calloc(1, sizeof(*args));
	size_t n = argc > 0 ? (size_t)argc : 1;

	*out = NULL;
	if (!args)
		return -ENOMEM;
	args->opts = opts;
	args->topics = calloc(n, sizeof(*args->topics));
	args->excludes = calloc(n, sizeof(*args->excludes));
	args->groups = calloc(n, sizeof(*args->groups));
	args->maps = calloc(n, sizeof(*args->maps));
	args->from_offsets = calloc(n, sizeof(*args->from_offsets));
	args->to_offsets = calloc(n, sizeof(*args->to_offsets));
	if (!args->topics || !args->excludes || !args->groups || !args->maps ||
	    !args->from_offsets || !args->to_offsets) {
		kt_replay_args_destroy(args);
		return -ENOMEM;
	}
	opts->topics = args->topics;
	opts->excludes = args->excludes;
	opts->groups = args->groups;
	opts->maps = args->maps;
	opts->from_offsets = args->from_offsets;
	opts->to_offsets = args->to_offsets;
	*out = args;
	return 0;
}

void kt_replay_args_destroy(struct kt_replay_args *args)
{
	if (!args)
		return;
	free(args->topics);
	free(args->excludes);
	free(args->groups);
	free(args->maps);
	free(args->from_offsets);
	free(args->to_offsets);
	free(args);
}

static int parse_rate(const char *text, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end || !(v > 0) || v > 1e15)
		return KT_EUSAGE;
	*out = v;
	return 0;
}

int kt_replay_args_apply(struct kt_replay_args *args, const char *name, char *value,
			 char *errstr, size_t errstr_size)
{
	struct kt_replay_opts *o = args->opts;
	uint64_t u64;
	int64_t ms;
	char *end;
	long v;

	if (!strcmp(name, "no-create-topics")) {
		o->create_topics = 0;
		return 1;
	}
	if (!value)
		return 0;
	if (!strcmp(name, "topic")) {
		args->topics[o->topic_count++] = value;
	} else if (!strcmp(name, "exclude")) {
		args->excludes[o->exclude_count++] = value;
	} else if (!strcmp(name, "group")) {
		args->groups[o->group_count++] = value;
	} else if (!strcmp(name, "groups")) {
		o->group_regex = value;
	} else if (!strcmp(name, "prefix")) {
		o->prefix = value;
	} else if (!strcmp(name, "map")) {
		char *eq = strchr(value, '=');

		if (!eq || eq == value || !eq[1])
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--map '%s': expected SOURCE=TARGET", value);
		*eq = '\0';
		args->maps[o->map_count].source = value;
		args->maps[o->map_count++].target = eq + 1;
	} else if (!strcmp(name, "from-time") || !strcmp(name, "to-time")) {
		if (kt_parse_time_ms(value, &ms))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--%s '%s': expected ISO-8601 (2026-11-22T01:30:00Z) or epoch milliseconds",
					 name, value);
		*(name[0] == 'f' ? &o->from_time : &o->to_time) = ms;
	} else if (!strcmp(name, "from-offset") || !strcmp(name, "to-offset")) {
		int from = name[0] == 'f';
		struct kt_replay_offset_bound *b = from ? &args->from_offsets[o->from_offset_count]
						        : &args->to_offsets[o->to_offset_count];
		char why[256];

		if (kt_replay_parse_offset_bound(value, b, why, sizeof(why)))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE, "--%s: %s", name, why);
		*(from ? &o->from_offset_count : &o->to_offset_count) += 1;
	} else if (!strcmp(name, "partitioning")) {
		if (!strcmp(value, "preserve"))
			o->partitioning = KT_REPLAY_PART_PRESERVE;
		else if (!strcmp(value, "key"))
			o->partitioning = KT_REPLAY_PART_KEY;
		else if (!strcmp(value, "random"))
			o->partitioning = KT_REPLAY_PART_RANDOM;
		else
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--partitioning '%s': expected preserve, key or random", value);
	} else if (!strcmp(name, "max-rate")) {
		if (parse_rate(value, &o->max_rate))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--max-rate '%s': expected a positive number of records per second",
					 value);
	} else if (!strcmp(name, "max-bytes-rate")) {
		if (kt_parse_size(value, &u64) || u64 == 0)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--max-bytes-rate '%s': expected a positive byte count per second"
					 " (e.g. 500K, 20M)", value);
		o->max_bytes_rate = (double)u64;
	} else if (!strcmp(name, "replication-factor")) {
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || *end || end == value || v < 1 || v > INT16_MAX)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--replication-factor '%s': expected a positive integer", value);
		o->replication_factor = (int32_t)v;
	} else if (!strcmp(name, "timeout")) {
		if (kt_parse_duration_ms(value, &ms) || ms <= 0 || ms > INT32_MAX)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--timeout '%s': expected a positive duration (500ms, 10s)", value);
		o->timeout_ms = (int)ms;
	} else {
		return 0;
	}
	return 1;
}

/* The bound that applies to topic/partition: the most specific match
 * wins.  Returns none when no bound matches. */
static int64_t pick_bound(const struct kt_replay_offset_bound *b, size_t n, const char *topic,
			  int32_t partition, int64_t none)
{
	int best = -1;
	int64_t v = none;

	for (size_t i = 0; i < n; i++) {
		int score;

		if (b[i].topic && strcmp(b[i].topic, topic) != 0)
			continue;
		if (b[i].partition >= 0 && b[i].partition != partition)
			continue;
		score = (b[i].topic ? 1 : 0) + (b[i].partition >= 0 ? 2 : 0);
		if (score >= best) {
			best = score;
			v = b[i].offset;
		}
	}
	return v;
}

static int compile_regex(regex_t *re, const char *pattern, const char *what,
			 char *errstr, size_t errstr_size)
{
	int rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);

	if (rc != 0) {
		char msg[128];

		regerror(rc, re, msg, sizeof(msg));
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "%s '%s' is not a valid regular expression: %s", what, pattern, msg);
	}
	return 0;
}

/* Compiles n topic patterns; *out gets an array of n (freed with
 * free_patterns) or stays NULL when n is 0. */
static int compile_patterns(struct rs_pattern **out, const char *const *texts, size_t n,
			    const char *what, char *errstr, size_t errstr_size)
{
	struct rs_pattern *pats;

	*out = NULL;
	if (!n)
		return 0;
	pats = calloc(n, sizeof(*pats));
	if (!pats)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		int err;

		if (!texts[i] || !*texts[i])
			err = kt_seterr(errstr, errstr_size, KT_EUSAGE, "an empty %s is not allowed", what);
		else if (texts[i][0] != '^')
			continue;
		else
			err = compile_regex(&pats[i].re, texts[i], what, errstr, errstr_size);
		if (err) {
			for (size_t j = 0; j < i; j++)
				if (pats[j].is_regex)
					regfree(&pats[j].re);
			free(pats);
			return err;
		}
		pats[i].is_regex = 1;
	}
	*out = pats;
	return 0;
}

static void free_patterns(struct rs_pattern *pats, size_t n)
{
	for (size_t i = 0; pats && i < n; i++)
		if (pats[i].is_regex)
			regfree(&pats[i].re);
	free(pats);
}

static int pattern_match(const struct rs_pattern *pat, const char *text, const char *name)
{
	if (!pat->is_regex)
		return strcmp(text, name) == 0;
	/* Internal topics (__consumer_offsets...) only when named exactly. */
	return strncmp(name, "__", 2) != 0 && regexec(&pat->re, name, 0, NULL, 0) == 0;
}

int kt_replay_create(struct kt_replay **out, const struct kt_replay_opts *opts,
		     char *errstr, size_t errstr_size)
{
	struct kt_replay *rp;
	int err = 0;

	*out = NULL;
	if (!opts->repo_path || !*opts->repo_path)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "no repository given (-r REPO)");
	if (!opts->brokers || !*opts->brokers)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "no target brokers given (-b BROKERS)");
	if (opts->mode != KT_REPLAY_MODE_RESTORE && opts->mode != KT_REPLAY_MODE_REPLAY)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "unknown engine mode %d", opts->mode);
	if (opts->partitioning < KT_REPLAY_PART_PRESERVE || opts->partitioning > KT_REPLAY_PART_RANDOM ||
	    opts->timestamps < KT_REPLAY_TS_KEEP || opts->timestamps > KT_REPLAY_TS_NOW ||
	    opts->pace < KT_REPLAY_PACE_NONE || opts->pace > KT_REPLAY_PACE_ORIGINAL)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "invalid partitioning, pace or timestamps mode");
	if (opts->from_time >= opts->to_time)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "--from-time must be before --to-time (the window is [from, to))");
	if (opts->pace == KT_REPLAY_PACE_ORIGINAL && !(opts->speed > 0))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "--speed must be greater than 0");
	if (opts->max_rate < 0 || opts->max_bytes_rate < 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "rate limits must be positive");
	if (opts->mode == KT_REPLAY_MODE_RESTORE) {
		/* A restore is a copy: anything that makes the target differ
		 * from the snapshot belongs to replay. */
		if (opts->loops > 1)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--loop is for ktape replay; a restore sends each record once");
		if (opts->timestamps != KT_REPLAY_TS_KEEP)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "a restore keeps the original timestamps; use ktape replay to rewrite them");
		if (opts->resume_id && opts->force_new)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE, "--resume and --new exclude each other");
		/* An id is a directory name under restores/: nothing that could
		 * climb out of it. */
		if (opts->resume_id && (!*opts->resume_id ||
					strspn(opts->resume_id, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
						"abcdefghijklmnopqrstuvwxyz-") != strlen(opts->resume_id)))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--resume '%s' is not a restore id (like 20261122T021500123Z-4be1a9c0)",
					 opts->resume_id);
	} else if (opts->group_count || opts->group_regex || opts->resume_id) {
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "consumer groups and --resume are for ktape restore");
	}
	for (size_t i = 0; i < opts->from_offset_count; i++) {
		for (size_t j = 0; j < opts->to_offset_count; j++) {
			const struct kt_replay_offset_bound *f = &opts->from_offsets[i];
			const struct kt_replay_offset_bound *t = &opts->to_offsets[j];

			if (f->partition == t->partition &&
			    ((!f->topic && !t->topic) || (f->topic && t->topic && !strcmp(f->topic, t->topic))) &&
			    f->offset >= t->offset)
				return kt_seterr(errstr, errstr_size, KT_EUSAGE,
						 "--from-offset %" PRId64 " is not before --to-offset %" PRId64
						 " (the window is [from, to))", f->offset, t->offset);
		}
	}
	for (size_t i = 0; i < opts->map_count; i++) {
		for (size_t j = i + 1; j < opts->map_count; j++) {
			if (!strcmp(opts->maps[i].source, opts->maps[j].source))
				return kt_seterr(errstr, errstr_size, KT_EUSAGE, "--map %s is given twice",
						 opts->maps[i].source);
		}
	}

	rp = calloc(1, sizeof(*rp));
	if (!rp)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	rp->opts = *opts;
	rp->lock_fd = -1;
	if (rp->opts.loops == 0)
		rp->opts.loops = 1;
	if (rp->opts.timeout_ms <= 0)
		rp->opts.timeout_ms = 10000;
	if (rp->opts.progress_interval_ms <= 0)
		rp->opts.progress_interval_ms = 500;
	err = compile_patterns(&rp->topic_pats, opts->topics, opts->topic_count, "topic pattern",
			       errstr, errstr_size);
	if (!err)
		err = compile_patterns(&rp->exclude_pats, opts->excludes, opts->exclude_count,
				       "--exclude pattern", errstr, errstr_size);
	if (err)
		goto fail;
	if (opts->group_regex) {
		err = compile_regex(&rp->group_re, opts->group_regex, "--groups pattern",
				    errstr, errstr_size);
		if (err)
			goto fail;
		rp->group_re_set = 1;
	}
	rp->record = opts->mode == KT_REPLAY_MODE_RESTORE && !opts->dry_run;
	*out = rp;
	return 0;
fail:
	kt_replay_destroy(rp);
	return err;
}

void kt_replay_stop(struct kt_replay *rp)
{
	/* A second request also abandons waiting for acknowledgements. */
	rp->stop = rp->stop + 1;
}

const struct kt_replay_summary *kt_replay_summary(const struct kt_replay *rp)
{
	return &rp->summary;
}

/* ======================================================================
 * Clock: sleeping serves delivery reports and ends early on stop
 * ====================================================================== */

static int64_t engine_now_ns(void *opaque)
{
	(void)opaque;
	return kt_now_ns();
}

static void engine_sleep_ns(void *opaque, int64_t ns)
{
	struct kt_replay *rp = opaque;
	int64_t deadline = kt_now_ns() + ns;

	/* A paced or rate-limited run spends most of its time here; polling
	 * instead of sleeping keeps acknowledgements flowing meanwhile. */
	while (!rp->stop) {
		int64_t rem = deadline - kt_now_ns();

		if (rem <= 0)
			break;
		if (rp->rk && rem >= 1000000) {
			int64_t ms = rem / 1000000;

			rd_kafka_poll(rp->rk, (int)(ms > 50 ? 50 : ms));
		} else {
			struct timespec ts = { 0, (long)rem };

			nanosleep(&ts, NULL);
		}
	}
}

/* ======================================================================
 * Delivery reports
 * ====================================================================== */

static int fifo_push(struct rs_target *t, int32_t partition, int64_t offset)
{
	if (t->fifo_len == t->fifo_cap) {
		size_t cap = t->fifo_cap ? t->fifo_cap * 2 : 1024;
		struct rs_flight *f = malloc(cap * sizeof(*f));

		if (!f)
			return -ENOMEM;
		/* Unroll the ring into the new array. */
		for (size_t i = 0; i < t->fifo_len; i++)
			f[i] = t->fifo[(t->fifo_head + i) % t->fifo_cap];
		free(t->fifo);
		t->fifo = f;
		t->fifo_cap = cap;
		t->fifo_head = 0;
	}
	t->fifo[(t->fifo_head + t->fifo_len) % t->fifo_cap] =
		(struct rs_flight){ partition, offset };
	t->fifo_len++;
	return 0;
}

/* Counts one record of the plan as present in target t at target_offset:
 * acknowledged now, or found there by reconciliation. */
static void note_landed(struct kt_replay *rp, struct rs_target *t, int32_t sp, int64_t so,
			int64_t target_offset)
{
	int64_t expect = t->base + (int64_t)t->acked;

	if (target_offset < 0)
		target_offset = expect;
	if (target_offset != expect && !t->warned) {
		/* Only another producer's records can explain it; the map
		 * below still records the true offsets. */
		kt_log(rp->opts.log, KT_LOG_WARN,
		       "target %s[%" PRId32 "]: record landed at offset %" PRId64 ", expected %" PRId64
		       ": another producer is writing to this partition, so a rerun could not"
		       " tell its records from restored ones",
		       t->topic->target, t->partition, target_offset, expect);
		t->warned = 1;
	}
	t->acked++;
	if (t->section >= 0 && !rp->dr_err) {
		int err = kt_replay_omap_append(&rp->omap->sections[t->section], sp, so,
						target_offset);

		if (err && !rp->dr_err) {
			rp->dr_err = err;
			snprintf(rp->dr_errstr, sizeof(rp->dr_errstr),
				 "offset map of %s[%" PRId32 "]: cannot record source %s[%" PRId32
				 "] offset %" PRId64 " at target offset %" PRId64 ": %s",
				 t->topic->target, t->partition, t->topic->source, sp, so,
				 target_offset, kt_strerror(err));
		}
	}
}

/* What to do about a record too large for the client or the broker. */
static const char *size_hint(rd_kafka_resp_err_t e)
{
	if (e != RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
		return "";
	return " (raise -X message.max.bytes for the client, and the target topic's"
	       " max.message.bytes, to at least the record's size)";
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	struct kt_replay *rp = opaque;
	struct rs_topic *topic = rd_kafka_topic_opaque(msg->rkt);
	struct rs_target *t = topic && msg->partition >= 0 && msg->partition < topic->target_partitions
				      ? &topic->targets[msg->partition]
				      : NULL;
	struct rs_flight f = { -1, -1 };

	(void)rk;
	/* librdkafka is done with the value (this report comes just before it
	 * destroys the message, as for RD_KAFKA_MSG_F_FREE): the block it
	 * pointed into may go. */
	kt_store_block_release(msg->_private);
	if (t && t->fifo_len) {
		f = t->fifo[t->fifo_head];
		t->fifo_head = (t->fifo_head + 1) % t->fifo_cap;
		t->fifo_len--;
	}
	rp->in_flight--;
	if (msg->err) {
		if (!rp->dr_err) {
			rp->dr_err = KT_EDELIVERY;
			snprintf(rp->dr_errstr, sizeof(rp->dr_errstr),
				 "delivery to %s[%" PRId32 "] failed for source %s[%" PRId32
				 "] offset %" PRId64 ": %s%s",
				 t ? t->topic->target : "?", msg->partition,
				 t ? t->topic->source : "?", f.source_partition, f.source_offset,
				 rd_kafka_err2str(msg->err), size_hint(msg->err));
		}
		return;
	}
	if (t) {
		rp->summary.records_acked++;
		note_landed(rp, t, f.source_partition, f.source_offset, msg->offset);
	}
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kt_replay *rp = opaque;
	char fatal[256];

	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		/* The idempotent producer can no longer guarantee order or
		 * exactly-once: stop rather than send past a hole. */
		rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
		if (!rp->dr_err) {
			rp->dr_err = KT_EDELIVERY;
			snprintf(rp->dr_errstr, sizeof(rp->dr_errstr),
				 "the producer failed fatally: %s", fatal);
		}
		return;
	}
	kt_log(rp->opts.log, KT_LOG_WARN, "kafka: %s", reason);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	struct kt_replay *rp = rd_kafka_opaque(rk);

	int ours = level <= 2 ? KT_LOG_ERROR : level <= 4 ? KT_LOG_WARN : KT_LOG_DEBUG;

	/* librdkafka's own log goes through the module's sink: syslog levels
	 * 0-2 are errors, 3-4 warnings, the rest debug.  librdkafka logs every
	 * lost broker connection at 3 (LOG_ERR) although it retries and the
	 * restore rides it out; a failure that stops the restore is reported
	 * as an error by the engine itself, so log-based alerts stay quiet
	 * for outages that cost nothing (RELIABILITY.md finding 9.5).  The group-commit
	 * consumer gets the producer's -X settings too; its complaints about
	 * producer-only properties are noise. */
	if (rd_kafka_type(rk) == RD_KAFKA_CONSUMER && !strcmp(fac, "CONFWARN"))
		ours = KT_LOG_DEBUG;
	kt_log(rp->opts.log, ours, "librdkafka %s: %s", fac, buf);
}

/* ======================================================================
 * Kafka client setup, metadata, topics
 * ====================================================================== */

static int set_conf(rd_kafka_conf_t *conf, const char *name, const char *value,
		    char *errstr, size_t errstr_size)
{
	char why[256];

	if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "librdkafka refused %s=%s: %s",
				 name, value, why);
	return 0;
}

/* Sets a default unless the user's settings already chose a value. */
static int set_default(rd_kafka_conf_t *conf, const char *name, const char *value,
		       const rd_kafka_conf_t *user, char *errstr, size_t errstr_size)
{
	char buf[64], dflt[64];
	size_t n = sizeof(buf), dn = sizeof(dflt);
	rd_kafka_conf_t *fresh = rd_kafka_conf_new();
	int same;

	/* A property the user did not touch has librdkafka's default value. */
	same = rd_kafka_conf_get(user, name, buf, &n) == RD_KAFKA_CONF_OK &&
	       rd_kafka_conf_get(fresh, name, dflt, &dn) == RD_KAFKA_CONF_OK && !strcmp(buf, dflt);
	rd_kafka_conf_destroy(fresh);
	if (!same)
		return 0;
	return set_conf(conf, name, value, errstr, errstr_size);
}

static int make_producer(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new(), *user = rd_kafka_conf_new();
	char why[512], buf[64];
	size_t n;
	int err = 0;

	/* The user's settings are applied to a scratch conf first, to learn
	 * which defaults they chose to override. */
	if (rp->opts.conf_apply) {
		err = rp->opts.conf_apply(rp->opts.conf_opaque, user, errstr, errstr_size);
		if (err)
			goto out;
	}
	/* Large batches and a bounded queue: throughput near a bare producer
	 * with memory independent of the backup's size.  Batches are
	 * compressed with lz4 unless -X says otherwise: uncompressed batches
	 * could make a restored cluster need several times the source's disk
	 * (the source's producers almost always compressed), and lz4 costs
	 * the least CPU of Kafka's codecs. */
	if ((err = set_default(conf, "compression.type", "lz4", user, errstr, errstr_size)) ||
	    (err = set_default(conf, "linger.ms", "5", user, errstr, errstr_size)) ||
	    (err = set_default(conf, "batch.num.messages", "10000", user, errstr, errstr_size)) ||
	    (err = set_default(conf, "queue.buffering.max.kbytes", "65536", user, errstr, errstr_size)) ||
	    (err = set_default(conf, "queue.buffering.max.messages", "200000", user, errstr, errstr_size)))
		goto out;
	if (rp->opts.conf_apply) {
		err = rp->opts.conf_apply(rp->opts.conf_opaque, conf, errstr, errstr_size);
		if (err)
			goto out;
	}
	if ((err = set_conf(conf, "bootstrap.servers", rp->opts.brokers, errstr, errstr_size)))
		goto out;
	if (rp->opts.mode == KT_REPLAY_MODE_RESTORE) {
		/* Exactly once per partition, in order, is what the prefix rule
		 * of format/restore.md rests on: not negotiable.  Idempotence is
		 * forced on below whatever -X says; acks other than all (the
		 * default) can only come from the user and are refused. */
		n = sizeof(buf);
		if (rd_kafka_conf_get(user, "acks", buf, &n) == RD_KAFKA_CONF_OK &&
		    strcmp(buf, "-1") != 0 && strcmp(buf, "all") != 0) {
			err = kt_seterr(errstr, errstr_size, KT_EUSAGE,
					"a restore needs acks=all; remove the -X acks setting");
			goto out;
		}
	}
	if ((err = set_conf(conf, "enable.idempotence", "true", errstr, errstr_size)) ||
	    (err = set_conf(conf, "acks", "all", errstr, errstr_size)))
		goto out;
	rd_kafka_conf_set_opaque(conf, rp);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rp->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
	if (!rp->rk) {
		err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "cannot create a Kafka producer: %s", why);
		goto out;
	}
	conf = NULL; /* owned by rk now */
out:
	if (conf)
		rd_kafka_conf_destroy(conf);
	rd_kafka_conf_destroy(user);
	return err;
}

/* Metadata of ALL topics: asking for a named topic would make brokers with
 * auto-creation (and the sandbox, always) create it with default settings. */
static int fetch_metadata(struct kt_replay *rp, const struct rd_kafka_metadata **md,
			  char *errstr, size_t errstr_size)
{
	rd_kafka_resp_err_t e = rd_kafka_metadata(rp->rk, 1, NULL, md, rp->opts.timeout_ms);

	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	*md = NULL;
	if (e == RD_KAFKA_RESP_ERR__TIMED_OUT || e == RD_KAFKA_RESP_ERR__TRANSPORT ||
	    e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		return kt_seterr(errstr, errstr_size, KT_ETIMEDOUT,
				 "cannot reach the target brokers %s within %d ms (%s); check -b and"
				 " --timeout", rp->opts.brokers, rp->opts.timeout_ms, rd_kafka_err2str(e));
	return kt_seterr(errstr, errstr_size, KT_EKAFKA, "metadata request to %s failed: %s",
			 rp->opts.brokers, rd_kafka_err2str(e));
}

static int32_t md_partitions(const struct rd_kafka_metadata *md, const char *topic)
{
	for (int i = 0; i < md->topic_cnt; i++)
		if (!strcmp(md->topics[i].topic, topic) && !md->topics[i].err)
			return md->topics[i].partition_cnt;
	return -1;
}

static int create_topics(struct kt_replay *rp, struct rs_topic **missing, size_t n,
			 char *errstr, size_t errstr_size)
{
	rd_kafka_NewTopic_t **nts = calloc(n, sizeof(*nts));
	rd_kafka_AdminOptions_t *ao = NULL;
	rd_kafka_queue_t *q = NULL;
	rd_kafka_event_t *ev = NULL;
	int timeout = rp->opts.timeout_ms < CREATE_TIMEOUT_MS ? rp->opts.timeout_ms : CREATE_TIMEOUT_MS;
	char why[512];
	int err = 0;

	if (!nts)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct kt_store_topic *st = missing[i]->st;
		int32_t rf = st->replication_factor;

		if (rp->opts.replication_factor > 0 && (rf <= 0 || rf > rp->opts.replication_factor))
			rf = rp->opts.replication_factor;
		if (rf <= 0)
			rf = -1; /* the broker's default.replication.factor */
		nts[i] = rd_kafka_NewTopic_new(missing[i]->target, st->partition_count, rf, why,
					       sizeof(why));
		if (!nts[i]) {
			err = kt_seterr(errstr, errstr_size, KT_EUSAGE, "cannot create topic %s: %s",
					missing[i]->target, why);
			goto out;
		}
		for (size_t c = 0; c < st->config_count; c++) {
			/* Secret or null values were never recorded. */
			if (st->configs[c].value)
				rd_kafka_NewTopic_set_config(nts[i], st->configs[c].name,
							     st->configs[c].value);
		}
	}
	ao = rd_kafka_AdminOptions_new(rp->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	q = rd_kafka_queue_new(rp->rk);
	if (!ao || !q) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	rd_kafka_AdminOptions_set_request_timeout(ao, timeout, why, sizeof(why));
	rd_kafka_AdminOptions_set_operation_timeout(ao, timeout, why, sizeof(why));
	rd_kafka_CreateTopics(rp->rk, nts, n, ao, q);
	ev = rd_kafka_queue_poll(q, timeout + 2000);
	if (!ev || rd_kafka_event_error(ev)) {
		err = kt_seterr(errstr, errstr_size, KT_EUNSUPPORTED,
				"target topic %s does not exist and the brokers did not create it"
				" (CreateTopics: %s); create the topics first, e.g. with"
				" `ktape sandbox --from-snapshot %s`, or with your cluster's tools"
				" using the partition counts in the snapshot",
				missing[0]->target, ev ? rd_kafka_event_error_string(ev) : "no answer",
				rp->opts.repo_path);
		goto out;
	}
	{
		const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
		size_t cnt = 0;
		const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);

		for (size_t i = 0; i < cnt; i++) {
			rd_kafka_resp_err_t te = rd_kafka_topic_result_error(tr[i]);

			if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
				err = kt_seterr(errstr, errstr_size, KT_EKAFKA,
						"creating target topic %s failed: %s; create it first"
						" (e.g. `ktape sandbox --from-snapshot %s`)",
						rd_kafka_topic_result_name(tr[i]),
						rd_kafka_topic_result_error_string(tr[i]) ?
						rd_kafka_topic_result_error_string(tr[i]) :
						rd_kafka_err2str(te), rp->opts.repo_path);
				goto out;
			}
			kt_log(rp->opts.log, KT_LOG_INFO, "created target topic %s",
			       rd_kafka_topic_result_name(tr[i]));
		}
	}
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	if (q)
		rd_kafka_queue_destroy(q);
	if (ao)
		rd_kafka_AdminOptions_destroy(ao);
	for (size_t i = 0; i < n; i++)
		if (nts[i])
			rd_kafka_NewTopic_destroy(nts[i]);
	free(nts);
	return err;
}

/* Finds every target topic, creates the missing ones, and checks partition
 * counts against the partitioning, all before anything is sent. */
static int prepare_topics(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	struct rs_topic **missing = NULL;
	size_t n_missing = 0;
	int err;

	err = fetch_metadata(rp, &md, errstr, errstr_size);
	if (err)
		return err;
	missing = calloc(rp->topic_count ? rp->topic_count : 1, sizeof(*missing));
	if (!missing) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < rp->topic_count; i++) {
		struct rs_topic *t = &rp->topics[i];

		t->target_partitions = md_partitions(md, t->target);
		t->exists = t->target_partitions > 0;
		if (!t->exists)
			missing[n_missing++] = t;
	}
	if (n_missing && !rp->opts.dry_run) {
		if (!rp->opts.create_topics) {
			err = kt_seterr(errstr, errstr_size, KT_ENOTFOUND,
					"target topic %s does not exist (and topic creation is off);"
					" create it first, e.g. `ktape sandbox --from-snapshot %s`",
					missing[0]->target, rp->opts.repo_path);
			goto out;
		}
		err = create_topics(rp, missing, n_missing, errstr, errstr_size);
		if (err)
			goto out;
		/* Created topics take a moment to appear in metadata. */
		for (int64_t deadline = kt_now_ns() + (int64_t)rp->opts.timeout_ms * 1000000;;) {
			size_t still = 0;

			rd_kafka_metadata_destroy(md);
			md = NULL;
			err = fetch_metadata(rp, &md, errstr, errstr_size);
			if (err)
				goto out;
			for (size_t i = 0; i < n_missing; i++) {
				missing[i]->target_partitions = md_partitions(md, missing[i]->target);
				missing[i]->exists = missing[i]->target_partitions > 0;
				still += !missing[i]->exists;
			}
			if (!still)
				break;
			if (kt_now_ns() > deadline) {
				err = kt_seterr(errstr, errstr_size, KT_ETIMEDOUT,
						"created topics did not appear in metadata within %d ms",
						rp->opts.timeout_ms);
				goto out;
			}
			rd_kafka_poll(rp->rk, 200);
		}
	}
	for (size_t i = 0; i < rp->topic_count; i++) {
		struct rs_topic *t = &rp->topics[i];

		if (!t->exists) {
			/* A dry run predicts onto the topic as it would be created. */
			t->target_partitions = t->st->partition_count;
			continue;
		}
		if (rp->plan->partitioning == KT_REPLAY_PART_PRESERVE &&
		    t->target_partitions != t->st->partition_count) {
			err = kt_seterr(errstr, errstr_size, KT_EUSAGE,
					"target topic %s has %" PRId32 " partitions but source topic %s"
					" had %" PRId32 "; nothing was sent. Pass --partitioning key to"
					" place records by key hash as a Java producer would, or give the"
					" target %" PRId32 " partitions", t->target, t->target_partitions,
					t->source, t->st->partition_count, t->st->partition_count);
			goto out;
		}
	}
out:
	free(missing);
	if (md)
		rd_kafka_metadata_destroy(md);
	return err;
}

/* Reads the end offset of every target partition the plan may send to,
 * in one ListOffsets request per broker (offsets for "time" -1, the end)
 * rather than one round trip per partition. */
static int query_ends(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(64);
	rd_kafka_resp_err_t e;
	int err = 0;

	for (size_t i = 0; i < rp->topic_count; i++) {
		const struct rs_topic *t = &rp->topics[i];

		for (int32_t p = 0; t->exists && p < t->target_partitions; p++)
			if (t->targets[p].in_plan)
				rd_kafka_topic_partition_list_add(list, t->target, p)->offset =
					RD_KAFKA_OFFSET_END;
	}
	if (list->cnt == 0)
		goto out;
	e = rd_kafka_offsets_for_times(rp->rk, list, rp->opts.timeout_ms);
	if (e) {
		err = kt_seterr(errstr, errstr_size, e == RD_KAFKA_RESP_ERR__TIMED_OUT ? KT_ETIMEDOUT : KT_EKAFKA,
				"cannot read the end offsets of the target partitions: %s",
				rd_kafka_err2str(e));
		goto out;
	}
	for (int i = 0; i < list->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &list->elems[i];

		if (tp->err || tp->offset < 0) {
			err = kt_seterr(errstr, errstr_size, KT_EKAFKA,
					"cannot read the end offset of target %s[%" PRId32 "]: %s",
					tp->topic, tp->partition,
					tp->err ? rd_kafka_err2str(tp->err) : "no offset returned");
			goto out;
		}
		for (size_t k = 0; k < rp->topic_count; k++)
			if (!strcmp(rp->topics[k].target, tp->topic))
				rp->topics[k].targets[tp->partition].end_now = tp->offset;
	}
out:
	rd_kafka_topic_partition_list_destroy(list);
	return err;
}

/* ======================================================================
 * Plan: selection, mapping, windows
 * ====================================================================== */

static int topic_selected(const struct kt_replay *rp, const char *name)
{
	/* No -t: every topic the snapshot holds (it holds only what capture
	 * selected, internal topics included only if they were named). */
	int in = rp->opts.topic_count == 0;

	for (size_t i = 0; i < rp->opts.topic_count && !in; i++)
		in = pattern_match(&rp->topic_pats[i], rp->opts.topics[i], name);
	for (size_t i = 0; i < rp->opts.exclude_count && in; i++)
		in = !pattern_match(&rp->exclude_pats[i], rp->opts.excludes[i], name);
	return in;
}

static int target_name(const struct kt_replay *rp, const char *source, char *buf, size_t size)
{
	for (size_t i = 0; i < rp->opts.map_count; i++)
		if (!strcmp(rp->opts.maps[i].source, source))
			return snprintf(buf, size, "%s", rp->opts.maps[i].target) >= (int)size ? -1 : 0;
	return snprintf(buf, size, "%s%s", rp->opts.prefix ? rp->opts.prefix : "", source) >= (int)size
		       ? -1 : 0;
}

static int cmp_topic_ptr(const void *a, const void *b)
{
	const struct kt_store_topic *x = *(const struct kt_store_topic *const *)a;
	const struct kt_store_topic *y = *(const struct kt_store_topic *const *)b;

	return strcmp(x->name, y->name);
}

/* Builds a new plan from the options and the snapshot: topics sorted by
 * name, partitions by number.  Target partition counts and bases come
 * later, from the brokers. */
static int plan_from_opts(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	const struct kt_store_topic **sorted = NULL;
	char name[KT_STORE_MAX_TOPIC_LEN + 2];
	int err = 0;

	rp->plan = kt_replay_plan_create(rp->opts.brokers);
	if (!rp->plan)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	snprintf(rp->plan->snapshot, sizeof(rp->plan->snapshot), "%s", rp->snap->id);
	rp->plan->partitioning = rp->opts.partitioning;
	rp->plan->order = rp->opts.pace == KT_REPLAY_PACE_ORIGINAL ? KT_REPLAY_ORDER_TIME
								   : KT_REPLAY_ORDER_ROUND_ROBIN;
	rp->plan->from_time = rp->opts.from_time;
	rp->plan->to_time = rp->opts.to_time;
	if (rp->opts.partitioning == KT_REPLAY_PART_RANDOM) {
		uint64_t seed = rp->opts.seed;

		while (!seed) {
			err = kt_random_bytes(&seed, sizeof(seed));
			if (err)
				return kt_seterr(errstr, errstr_size, err, "cannot draw a random seed");
		}
		/* JSON integers are exact to 2^53 in most readers. */
		rp->plan->seed = seed & ((1ull << 53) - 1);
		if (!rp->plan->seed)
			rp->plan->seed = 1;
	}
	sorted = calloc(rp->snap->topic_count ? rp->snap->topic_count : 1, sizeof(*sorted));
	if (!sorted)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	for (size_t i = 0; i < rp->snap->topic_count; i++)
		sorted[i] = &rp->snap->topics[i];
	qsort(sorted, rp->snap->topic_count, sizeof(*sorted), cmp_topic_ptr);
	for (size_t i = 0; i < rp->snap->topic_count; i++) {
		const struct kt_store_topic *st = sorted[i];
		struct kt_replay_plan_topic *pt;

		if (!topic_selected(rp, st->name))
			continue;
		if (target_name(rp, st->name, name, sizeof(name)) || strlen(name) > KT_STORE_MAX_TOPIC_LEN) {
			err = kt_seterr(errstr, errstr_size, KT_EUSAGE,
					"target name for topic %s is longer than Kafka's %d characters",
					st->name, KT_STORE_MAX_TOPIC_LEN);
			goto out;
		}
		for (size_t j = 0; j < rp->plan->topic_count; j++) {
			if (!strcmp(rp->plan->topics[j].target, name)) {
				err = kt_seterr(errstr, errstr_size, KT_EUSAGE,
						"topics %s and %s would both be restored into %s",
						rp->plan->topics[j].source, st->name, name);
				goto out;
			}
		}
		pt = kt_replay_plan_add_topic(rp->plan, st->name, name, st->partition_count);
		if (!pt) {
			err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
			goto out;
		}
		for (size_t j = 0; j < st->n_partitions; j++) {
			int32_t p = st->partitions[j].partition;

			/* One partition's share of a restore --workers-group. */
			if (rp->opts.only_partition >= 0 && p != rp->opts.only_partition)
				continue;
			int64_t from = pick_bound(rp->opts.from_offsets, rp->opts.from_offset_count,
						  st->name, p, KT_REPLAY_NO_BOUND_LO);
			int64_t to = pick_bound(rp->opts.to_offsets, rp->opts.to_offset_count,
						st->name, p, KT_REPLAY_NO_BOUND_HI);

			if (from != KT_REPLAY_NO_BOUND_LO && to != KT_REPLAY_NO_BOUND_HI && from >= to) {
				err = kt_seterr(errstr, errstr_size, KT_EUSAGE,
						"offset window [%" PRId64 ", %" PRId64 ") of %s[%" PRId32
						"] is empty", from, to, st->name, p);
				goto out;
			}
			if (kt_replay_plan_add_part(pt, p, from, to)) {
				err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
				goto out;
			}
		}
	}
	for (size_t i = 0; i < rp->opts.topic_count; i++) {
		if (rp->opts.topics[i][0] != '^' &&
		    !kt_store_snapshot_find_topic(rp->snap, rp->opts.topics[i])) {
			err = kt_seterr(errstr, errstr_size, KT_ENOTFOUND,
					"snapshot %s has no topic %s", rp->snap->id, rp->opts.topics[i]);
			goto out;
		}
	}
	if (!rp->plan->topic_count) {
		err = kt_seterr(errstr, errstr_size, KT_ENOTFOUND,
				"no topic of snapshot %s matches the selection", rp->snap->id);
		goto out;
	}
	for (size_t i = 0; i < rp->opts.map_count; i++) {
		if (!kt_store_snapshot_find_topic(rp->snap, rp->opts.maps[i].source)) {
			err = kt_seterr(errstr, errstr_size, KT_ENOTFOUND,
					"--map %s=%s: snapshot %s has no topic %s", rp->opts.maps[i].source,
					rp->opts.maps[i].target, rp->snap->id, rp->opts.maps[i].source);
			goto out;
		}
	}
out:
	free(sorted);
	return err;
}

/* Builds the engine's topics and partitions from the plan. */
static int build_state(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	size_t np = 0, k = 0;

	rp->topic_count = rp->plan->topic_count;
	rp->topics = calloc(rp->topic_count, sizeof(*rp->topics));
	if (!rp->topics)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	for (size_t i = 0; i < rp->plan->topic_count; i++) {
		const struct kt_replay_plan_topic *pt = &rp->plan->topics[i];
		struct rs_topic *t = &rp->topics[i];

		t->source = pt->source;
		t->target = pt->target;
		t->st = kt_store_snapshot_find_topic(rp->snap, pt->source);
		if (!t->st)
			return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					 "restore plan names topic %s, which snapshot %s does not have",
					 pt->source, rp->snap->id);
		np += pt->part_count;
	}
	rp->parts = calloc(np ? np : 1, sizeof(*rp->parts));
	rp->heap = calloc(np ? np : 1, sizeof(*rp->heap));
	if (!rp->parts || !rp->heap)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	for (size_t i = 0; i < rp->plan->topic_count; i++) {
		const struct kt_replay_plan_topic *pt = &rp->plan->topics[i];

		for (size_t j = 0; j < pt->part_count; j++) {
			struct rs_part *part = &rp->parts[k++];

			part->topic = &rp->topics[i];
			part->sp = kt_store_topic_find_partition(rp->topics[i].st, pt->parts[j].partition);
			if (!part->sp)
				return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
						 "restore plan names %s[%" PRId32 "], which snapshot %s does not have",
						 pt->source, pt->parts[j].partition, rp->snap->id);
			part->from_offset = pt->parts[j].from_offset;
			part->to_offset = pt->parts[j].to_offset;
		}
	}
	rp->part_count = k;
	return 0;
}

/* Gives each topic its target-partition table; marks the partitions the
 * plan may send to. */
static int build_targets(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	for (size_t i = 0; i < rp->topic_count; i++) {
		struct rs_topic *t = &rp->topics[i];

		t->targets = calloc((size_t)t->target_partitions, sizeof(*t->targets));
		if (!t->targets)
			return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		for (int32_t p = 0; p < t->target_partitions; p++) {
			t->targets[p].topic = t;
			t->targets[p].partition = p;
			t->targets[p].section = -1;
			t->targets[p].in_plan = rp->plan->partitioning != KT_REPLAY_PART_PRESERVE;
		}
	}
	for (size_t i = 0; i < rp->part_count; i++) {
		struct rs_part *part = &rp->parts[i];

		if (rp->plan->partitioning == KT_REPLAY_PART_PRESERVE) {
			if (part->sp->partition >= part->topic->target_partitions)
				return kt_seterr(errstr, errstr_size, KT_EUSAGE,
						 "source %s[%" PRId32 "] has no partition of that number in"
						 " target %s (%" PRId32 " partitions)", part->topic->source,
						 part->sp->partition, part->topic->target,
						 part->topic->target_partitions);
			part->topic->targets[part->sp->partition].in_plan = 1;
		}
	}
	return 0;
}

/* ======================================================================
 * The restore record (format/restore.md)
 * ====================================================================== */

static int restores_dir(const struct kt_replay *rp, const char *id, char *buf, size_t size)
{
	return kt_replay_restores_dir(kt_store_repo_path(rp->repo), rp->opts.state_dir, id, buf, size);
}

static int load_plan_file(const struct kt_replay *rp, const char *id, struct kt_replay_plan **out,
			  char *errstr, size_t errstr_size)
{
	char path[PATH_MAX], dir[PATH_MAX], *json = NULL;
	size_t len = 0;
	int err;

	if (restores_dir(rp, id, dir, sizeof(dir)) ||
	    snprintf(path, sizeof(path), "%s/plan.json", dir) >= (int)sizeof(path))
		return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "restore path too long");
	err = kt_replay_read_file(path, 64u << 20, &json, &len, errstr, errstr_size);
	if (err == -ENOENT)
		return kt_seterr(errstr, errstr_size, KT_ENOTFOUND,
				 "restore %s not found in %s (no %s)", id, rp->opts.repo_path, path);
	if (err)
		return err;
	err = kt_replay_plan_from_json(json, len, path, out, errstr, errstr_size);
	free(json);
	if (!err && strcmp((*out)->id, id) != 0) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s names restore %s, not %s", path,
				(*out)->id, id);
		kt_replay_plan_destroy(*out);
		*out = NULL;
	}
	return err;
}

/* Whether restore id is finished, by its checkpoint. */
static int restore_complete(const struct kt_replay *rp, const char *id)
{
	struct kt_replay_checkpoint *ckpt = NULL;
	char path[PATH_MAX + 64], dir[PATH_MAX], *json = NULL, ignored[256];
	size_t len = 0;
	int done = 0;

	if (restores_dir(rp, id, dir, sizeof(dir)))
		return 0;
	snprintf(path, sizeof(path), "%s/checkpoint.json", dir);
	if (kt_replay_read_file(path, 64u << 20, &json, &len, ignored, sizeof(ignored)))
		return 0;
	if (!kt_replay_checkpoint_from_json(json, len, path, &ckpt, ignored, sizeof(ignored)))
		done = ckpt->state == KT_REPLAY_CKPT_COMPLETE;
	kt_replay_checkpoint_destroy(ckpt);
	free(json);
	return done;
}

/* Whether two plans' topics may write to a common target partition: with
 * both preserving partitions, only when they share a source partition
 * (restore --workers-group runs one restore per partition); otherwise
 * any partition may receive any record. */
static int plans_share_partition(const struct kt_replay_plan *a, const struct kt_replay_plan_topic *ta,
				 const struct kt_replay_plan *b, const struct kt_replay_plan_topic *tb)
{
	if (a->partitioning != KT_REPLAY_PART_PRESERVE || b->partitioning != KT_REPLAY_PART_PRESERVE)
		return 1;
	for (size_t x = 0; x < ta->part_count; x++)
		for (size_t y = 0; y < tb->part_count; y++)
			if (ta->parts[x].partition == tb->parts[y].partition)
				return 1;
	return 0;
}

/* Whether two plans send to a common target partition of the same cluster. */
static int plans_overlap(const struct kt_replay_plan *a, const struct kt_replay_plan *b,
			 const char **topic)
{
	char wa[1024], wb[1024];

	kt_replay_plan_target_identity(a, wa, sizeof(wa));
	kt_replay_plan_target_identity(b, wb, sizeof(wb));
	if (strcmp(wa, wb) != 0)
		return 0;
	for (size_t i = 0; i < a->topic_count; i++) {
		for (size_t j = 0; j < b->topic_count; j++) {
			if (!strcmp(a->topics[i].target, b->topics[j].target) &&
			    plans_share_partition(a, &a->topics[i], b, &b->topics[j])) {
				*topic = a->topics[i].target;
				return 1;
			}
		}
	}
	return 0;
}

/* Whether [a_lo, a_hi) and [b_lo, b_hi) share a value. */
static int ranges_meet(int64_t a_lo, int64_t a_hi, int64_t b_lo, int64_t b_hi)
{
	return a_lo < b_hi && b_lo < a_hi;
}

/* Whether two plans of the same snapshot may send some record twice: a
 * source topic restored into the same target by both, a source partition
 * both select, and offset and time windows that meet (a conservative
 * test: windows that meet may still select disjoint records).  *topic
 * gets the target topic. */
static int plans_may_duplicate(const struct kt_replay_plan *a, const struct kt_replay_plan *b,
			       const char **topic)
{
	if (strcmp(a->snapshot, b->snapshot) != 0 ||
	    !ranges_meet(a->from_time, a->to_time, b->from_time, b->to_time))
		return 0;
	for (size_t i = 0; i < a->topic_count; i++) {
		const struct kt_replay_plan_topic *ta = &a->topics[i];

		for (size_t j = 0; j < b->topic_count; j++) {
			const struct kt_replay_plan_topic *tb = &b->topics[j];

			if (strcmp(ta->source, tb->source) != 0 || strcmp(ta->target, tb->target) != 0)
				continue;
			for (size_t x = 0; x < ta->part_count; x++)
				for (size_t y = 0; y < tb->part_count; y++)
					if (ta->parts[x].partition == tb->parts[y].partition &&
					    ranges_meet(ta->parts[x].from_offset, ta->parts[x].to_offset,
							tb->parts[y].from_offset, tb->parts[y].to_offset)) {
						*topic = ta->target;
						return 1;
					}
		}
	}
	return 0;
}

/* Looks through the earlier restores: the newest one with the plan's
 * fingerprint goes to found (else ""); an unfinished one with another
 * fingerprint that writes to the same topics goes to conflict (else ""),
 * with the topic in conflict_topic; a finished one of the same snapshot
 * that wrote to the same topics goes to rp->dup_id and rp->dup_topic. */
static int scan_restores(struct kt_replay *rp, char *found, char *conflict,
			 char *conflict_topic, size_t id_size, char *errstr, size_t errstr_size)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;

	found[0] = conflict[0] = '\0';
	if (restores_dir(rp, NULL, dir, sizeof(dir)))
		return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "restore path too long");
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : kt_seterr(errstr, errstr_size, -errno, "cannot list %s: %s",
							dir, strerror(errno));
	while ((de = readdir(d))) {
		struct kt_replay_plan *plan = NULL;
		const char *topic = NULL;
		char ignored[256];

		if (de->d_name[0] == '.' || strlen(de->d_name) >= id_size)
			continue;
		/* A directory without a readable plan is a restore that never
		 * sent anything (section 2); skip it. */
		if (load_plan_file(rp, de->d_name, &plan, ignored, sizeof(ignored)))
			continue;
		if (!strcmp(plan->fingerprint, rp->plan->fingerprint)) {
			if (strcmp(de->d_name, found) > 0)
				snprintf(found, id_size, "%s", de->d_name);
		} else if (plans_overlap(plan, rp->plan, &topic)) {
			if (!restore_complete(rp, de->d_name)) {
				snprintf(conflict, id_size, "%s", de->d_name);
				snprintf(conflict_topic, KT_STORE_MAX_TOPIC_LEN + 1, "%s", topic);
			} else if (plans_may_duplicate(plan, rp->plan, &topic) &&
				   strcmp(de->d_name, rp->dup_id) > 0) {
				/* d_name is shorter than id_size (checked above). */
				snprintf(rp->dup_id, sizeof(rp->dup_id), "%.*s", (int)sizeof(rp->dup_id) - 1,
					 de->d_name);
				snprintf(rp->dup_topic, sizeof(rp->dup_topic), "%s", topic);
			}
		}
		kt_replay_plan_destroy(plan);
	}
	closedir(d);
	return 0;
}

static int lock_restore(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	char path[PATH_MAX + 8];

	snprintf(path, sizeof(path), "%s/lock", rp->dir);
	rp->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, kt_store_repo_mode(rp->repo) & 0666);
	if (rp->lock_fd < 0)
		return kt_seterr(errstr, errstr_size, -errno, "cannot open %s: %s", path, strerror(errno));
	if (flock(rp->lock_fd, LOCK_EX | LOCK_NB) != 0)
		return kt_seterr(errstr, errstr_size, errno == EWOULDBLOCK ? KT_ELOCKED : -errno,
				 "restore %s is being run by another process (%s is locked)",
				 rp->plan->id, path);
	return 0;
}

static int write_checkpoint(struct kt_replay *rp, int state, const char *error,
			    char *errstr, size_t errstr_size)
{
	char path[PATH_MAX + 32], *json = NULL;
	int err;

	if (!rp->record || !rp->ckpt)
		return 0;
	rp->ckpt->state = state;
	rp->ckpt->updated_ms = kt_wall_ms();
	if (error && kt_replay_checkpoint_set_error(rp->ckpt, error))
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	for (size_t i = 0; i < rp->topic_count; i++) {
		struct rs_topic *t = &rp->topics[i];

		for (int32_t p = 0; p < t->target_partitions; p++) {
			if (t->targets[p].in_plan &&
			    kt_replay_checkpoint_set(rp->ckpt, t->target, p, t->targets[p].acked))
				return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		}
	}
	err = kt_replay_checkpoint_to_json(rp->ckpt, &json, errstr, errstr_size);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/checkpoint.json", rp->dir);
	err = kt_write_file_atomic(path, json, strlen(json), kt_store_repo_mode(rp->repo),
				   errstr, errstr_size);
	free(json);
	return err;
}

static void new_restore_id(char *buf, size_t size)
{
	int64_t ms = kt_wall_ms();
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	uint32_t rnd = 0;

	gmtime_r(&s, &tm);
	if (kt_random_bytes(&rnd, sizeof(rnd)))
		rnd = (uint32_t)kt_now_ns();
	snprintf(buf, size, "%04d%02d%02dT%02d%02d%02d%03dZ-%08" PRIx32, tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000), rnd);
}

/* Sets the bases of a new plan (every target partition's end now), or for
 * a resumed one reconciles its targets (section 3.1). */
static int plan_bases(struct kt_replay *rp, int resumed, char *errstr, size_t errstr_size)
{
	int err = query_ends(rp, errstr, errstr_size);

	if (err)
		return err;

	size_t nonempty = 0;
	const char *example = NULL;

	for (size_t i = 0; i < rp->topic_count; i++) {
		struct rs_topic *t = &rp->topics[i];
		struct kt_replay_plan_topic *pt = &rp->plan->topics[i];

		if (resumed && pt->target_partitions != t->target_partitions)
			return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					 "target %s has %" PRId32 " partitions now but %" PRId32
					 " when restore %s was planned; start a separate restore with --new",
					 t->target, t->target_partitions, pt->target_partitions, rp->plan->id);
		pt->target_partitions = t->target_partitions;
		for (int32_t p = 0; p < t->target_partitions; p++) {
			struct rs_target *tg = &t->targets[p];
			int64_t end = tg->end_now;

			if (!tg->in_plan)
				continue;
			if (!resumed) {
				tg->base = end;
				if (end > 0 && nonempty++ == 0)
					example = t->target;
				if (kt_replay_plan_add_base(pt, p, end))
					return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
				continue;
			}
			if (kt_replay_plan_find_base(pt, p, &tg->base))
				return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
						 "restore %s has no base offset for %s[%" PRId32 "]",
						 rp->plan->id, t->target, p);
			err = kt_replay_reconcile(t->target, p, tg->base, end,
						  kt_replay_checkpoint_acked(rp->ckpt, t->target, p),
						  &tg->skip, errstr, errstr_size);
			if (err)
				return err;
		}
	}
	/* A new restore appends after whatever the targets hold.  When an
	 * earlier restore of this snapshot wrote to these topics (another
	 * selection, say), its records would be there twice: refuse unless
	 * the operator asked for a new restore.  Empty targets (recreated
	 * topics) are a clean second restore and go ahead. */
	if (nonempty && !resumed && rp->dup_id[0] && rp->opts.mode == KT_REPLAY_MODE_RESTORE)
		return kt_seterr(errstr, errstr_size, KT_EEXIST,
				 "restore %s already wrote snapshot %s into %s on this cluster, and %zu target"
				 " partition(s) hold records; restoring again would put them there twice."
				 " Rerun that restore's exact command (or --resume %s) to check it, or pass"
				 " --new to send the records again", rp->dup_id, rp->plan->snapshot,
				 rp->dup_topic, nonempty, rp->dup_id);
	if (nonempty && rp->opts.mode == KT_REPLAY_MODE_RESTORE)
		kt_log(rp->opts.log, KT_LOG_WARN,
		       "%zu target partition(s) (of %s, ...) already hold records; this new restore appends "
		       "after them, so records an earlier restore put there would be there twice. To "
		       "continue an earlier restore, rerun its exact command or use --resume ID",
		       nonempty, example);
	return 0;
}

static int load_checkpoint(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	char path[PATH_MAX + 32], *json = NULL;
	size_t len = 0;
	int err;

	snprintf(path, sizeof(path), "%s/checkpoint.json", rp->dir);
	err = kt_replay_read_file(path, 64u << 20, &json, &len, errstr, errstr_size);
	if (err == -ENOENT) {
		rp->ckpt = kt_replay_checkpoint_create(rp->plan->id);
		return rp->ckpt ? 0 : kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	}
	if (err)
		return err;
	err = kt_replay_checkpoint_from_json(json, len, path, &rp->ckpt, errstr, errstr_size);
	free(json);
	return err;
}

/* Decides between a new restore and a rerun, writes or reads the restore
 * record, and computes bases and skips.  Called with topics known. */
static int setup_restore(struct kt_replay *rp, int from_file, char *errstr, size_t errstr_size)
{
	char found[64] = "", cluster[128] = "", *cid;
	int resumed = from_file, err;

	if (rp->opts.mode == KT_REPLAY_MODE_REPLAY)
		return plan_bases(rp, 0, errstr, errstr_size);
	/* The cluster id names the target better than an address list that
	 * can be spelled many ways; brokers too old to have one fall back to
	 * the list (kt_replay_plan_target_identity). */
	cid = rd_kafka_clusterid(rp->rk, rp->opts.timeout_ms);
	if (cid) {
		snprintf(cluster, sizeof(cluster), "%s", cid);
		rd_kafka_mem_free(rp->rk, cid);
	}
	if (from_file && cluster[0] && rp->plan->target_cluster[0] &&
	    strcmp(cluster, rp->plan->target_cluster) != 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "restore %s wrote to Kafka cluster %s, but %s is cluster %s; resuming it"
				 " there would not find its records", rp->plan->id,
				 rp->plan->target_cluster, rp->opts.brokers, cluster);
	if (!from_file) {
		for (size_t i = 0; i < rp->topic_count; i++)
			rp->plan->topics[i].target_partitions = rp->topics[i].target_partitions;
		snprintf(rp->plan->target_cluster, sizeof(rp->plan->target_cluster), "%s", cluster);
		kt_replay_plan_fingerprint(rp->plan);
		if (!rp->opts.force_new) {
			char conflict[64], topic[KT_STORE_MAX_TOPIC_LEN + 1];

			err = scan_restores(rp, found, conflict, topic, sizeof(found), errstr, errstr_size);
			if (err)
				return err;
			if (!found[0] && conflict[0]) {
				/* A new plan would take the unfinished one's records
				 * as its base and send its own on top: duplicates. */
				err = kt_seterr(errstr, errstr_size, KT_EEXIST,
						"restore %s into %s on the same cluster is unfinished; finish it"
						" with --resume %s, or pass --new to restore anyway (the records"
						" it already wrote would then be there twice)", conflict, topic,
						conflict);
				return err;
			}
		}
		if (found[0]) {
			struct kt_replay_plan *old = NULL;

			err = load_plan_file(rp, found, &old, errstr, errstr_size);
			if (err)
				return err;
			kt_replay_plan_destroy(rp->plan);
			rp->plan = old;
			/* The loaded plan's strings replace the fresh one's. */
			for (size_t i = 0; i < rp->topic_count; i++) {
				rp->topics[i].source = rp->plan->topics[i].source;
				rp->topics[i].target = rp->plan->topics[i].target;
			}
			resumed = 1;
			kt_log(rp->opts.log, KT_LOG_INFO,
			       "resuming restore %s (same snapshot, selection and target)", found);
		}
	}
	if (!resumed)
		new_restore_id(rp->plan->id, sizeof(rp->plan->id));
	if (restores_dir(rp, rp->plan->id, rp->dir, sizeof(rp->dir)))
		return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "restore path too long");
	rp->summary.resumed = resumed;
	if (!rp->record) {
		/* A dry run reads the restore record but never writes it. */
		rp->dir[0] = '\0';
		return plan_bases(rp, resumed, errstr, errstr_size);
	}
	err = kt_mkdir_p(rp->dir, (kt_store_repo_mode(rp->repo) & 0777) | 0700);
	if (err)
		return kt_seterr(errstr, errstr_size, err, "cannot create %s: %s%s", rp->dir, kt_strerror(err),
				 err == -EROFS || err == -EACCES || err == -ENOTDIR ?
				 " (the restore record must be writable: give --state-dir DIR)" : "");
	err = lock_restore(rp, errstr, errstr_size);
	if (err)
		return err;
	if (resumed) {
		err = load_checkpoint(rp, errstr, errstr_size);
		if (err)
			return err;
		err = plan_bases(rp, 1, errstr, errstr_size);
		if (err)
			return err;
	} else {
		char path[PATH_MAX + 32], *json = NULL;

		rp->plan->created_ms = kt_wall_ms();
		err = plan_bases(rp, 0, errstr, errstr_size);
		if (err)
			return err;
		/* Durable before the first send: a crash from here on leaves a
		 * plan a rerun can reconcile against. */
		err = kt_replay_plan_to_json(rp->plan, &json, errstr, errstr_size);
		if (err)
			return err;
		snprintf(path, sizeof(path), "%s/plan.json", rp->dir);
		err = kt_write_file_atomic(path, json, strlen(json), kt_store_repo_mode(rp->repo),
					   errstr, errstr_size);
		free(json);
		if (err)
			return err;
		rp->ckpt = kt_replay_checkpoint_create(rp->plan->id);
		if (!rp->ckpt)
			return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	}
	rp->ckpt->runs++;
	kt_replay_checkpoint_set_error(rp->ckpt, NULL);
	return write_checkpoint(rp, KT_REPLAY_CKPT_RUNNING, NULL, errstr, errstr_size);
}

/* ======================================================================
 * Sending
 * ====================================================================== */

static int open_scan(struct kt_replay *rp, struct rs_part *part, char *errstr, size_t errstr_size)
{
	struct kt_store_range range;

	kt_store_range_init(&range);
	range.from_offset = part->from_offset;
	range.to_offset = part->to_offset;
	range.from_time = rp->plan->from_time;
	range.to_time = rp->plan->to_time;
	part->done = 0;
	part->head = NULL;
	return kt_store_scan_create(&part->scan, rp->repo, part->sp, &range, errstr, errstr_size);
}

/* Closes part's scan (if open), adding what it read to the summary. */
static void close_scan(struct kt_replay *rp, struct rs_part *part)
{
	struct kt_store_read_stats st;
	uint64_t total = 0;

	if (!part->scan)
		return;
	kt_store_scan_stats(part->scan, &st, &total);
	rp->summary.blocks_read += st.blocks_loaded;
	rp->summary.stored_bytes_read += st.stored_bytes_read;
	rp->summary.blocks_total += total;
	kt_store_scan_destroy(part->scan);
	part->scan = NULL;
}

static void close_scans(struct kt_replay *rp)
{
	for (size_t i = 0; i < rp->part_count; i++)
		close_scan(rp, &rp->parts[i]);
}

/* Advances part to its next record; sets done at the end. */
static int part_advance(struct rs_part *part, char *errstr, size_t errstr_size)
{
	int r = kt_store_scan_next(part->scan, &part->head, errstr, errstr_size);

	if (r < 0)
		return r;
	if (r == 0) {
		part->head = NULL;
		part->done = 1;
	}
	return 0;
}

static int heap_less(const struct kt_replay *rp, size_t a, size_t b)
{
	int64_t ta = rp->parts[a].head->timestamp, tb = rp->parts[b].head->timestamp;

	return ta < tb || (ta == tb && a < b);
}

static void heap_sift_down(struct kt_replay *rp, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < rp->heap_len && heap_less(rp, rp->heap[l], rp->heap[m]))
			m = l;
		if (r < rp->heap_len && heap_less(rp, rp->heap[r], rp->heap[m]))
			m = r;
		if (m == i)
			return;
		size_t tmp = rp->heap[i];

		rp->heap[i] = rp->heap[m];
		rp->heap[m] = tmp;
		i = m;
	}
}

static uint64_t xorshift64s(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static int32_t choose_partition(struct kt_replay *rp, struct rs_topic *t, const struct rs_part *part,
				const struct kt_record *rec)
{
	switch (rp->plan->partitioning) {
	case KT_REPLAY_PART_KEY:
		if (rec->key)
			return kt_replay_partition_for_key(rec->key, rec->key_len, t->target_partitions);
		return (int32_t)(t->null_key_rr++ % (uint64_t)t->target_partitions);
	case KT_REPLAY_PART_RANDOM:
		return (int32_t)(xorshift64s(&rp->xs) % (uint64_t)t->target_partitions);
	default:
		return part->sp->partition;
	}
}

static int64_t record_bytes(const struct kt_record *rec)
{
	int64_t n = (int64_t)(rec->key_len + rec->value_len);

	for (size_t i = 0; i < rec->header_count; i++)
		n += (int64_t)(rec->headers[i].name_len + rec->headers[i].value_len);
	return n;
}

/* The timestamp to send: 0 asks librdkafka to stamp the send time. */
static int64_t send_timestamp(struct kt_replay *rp, const struct kt_record *rec)
{
	int64_t ts = rec->timestamp + rp->loop_shift;

	switch (rp->opts.timestamps) {
	case KT_REPLAY_TS_NOW:
		return 0;
	case KT_REPLAY_TS_SHIFT:
		if (!rp->ts_shift_set) {
			rp->ts_shift = kt_wall_ms() - ts;
			rp->ts_shift_set = 1;
		}
		return ts + rp->ts_shift;
	default:
		if (rec->ts_type != KT_TS_CREATE || rec->timestamp <= 0)
			rp->summary.timestamps_not_exact++;
		if (rec->ts_type == KT_TS_NONE || rec->timestamp <= 0)
			return 0;
		return ts;
	}
}

static void report_progress(struct kt_replay *rp, int done)
{
	struct kt_replay_progress pr;

	rp->summary.elapsed_s = (double)(kt_now_ns() - rp->start_ns) / 1e9;
	if (!rp->opts.progress)
		return;
	pr.records_sent = rp->summary.records_sent;
	pr.records_acked = rp->summary.records_acked;
	pr.records_skipped = rp->summary.records_skipped;
	pr.bytes_sent = rp->summary.bytes_sent;
	pr.records_planned = rp->records_planned;
	pr.elapsed_s = rp->summary.elapsed_s;
	pr.done = done;
	rp->opts.progress(rp->opts.progress_opaque, &pr);
}

/* Periodic work of the send loop: acknowledgements, progress, checkpoint. */
static int tick(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	int64_t now;

	if (rp->rk)
		rd_kafka_poll(rp->rk, 0);
	now = kt_now_ns();
	if (now - rp->last_progress_ns >= (int64_t)rp->opts.progress_interval_ms * 1000000) {
		rp->last_progress_ns = now;
		report_progress(rp, 0);
	}
	if (rp->record && now - rp->last_ckpt_ns >= CHECKPOINT_EVERY_NS) {
		rp->last_ckpt_ns = now;
		return write_checkpoint(rp, KT_REPLAY_CKPT_RUNNING, NULL, errstr, errstr_size);
	}
	return 0;
}

static int send_record(struct kt_replay *rp, struct rs_part *part, const struct kt_record *rec,
		       char *errstr, size_t errstr_size)
{
	struct rs_topic *t = part->topic;
	struct rs_target *tg;
	struct kt_store_block *block;
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_resp_err_t e;
	int32_t p = choose_partition(rp, t, part, rec);
	int64_t ts, bytes;
	uint64_t idx;

	if (p < 0 || p >= t->target_partitions)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "no target partition for %s[%" PRId32 "] offset %" PRId64, t->source,
				 part->sp->partition, rec->offset);
	tg = &t->targets[p];
	idx = tg->seen++;
	if (rec->timestamp < rp->min_ts_seen)
		rp->min_ts_seen = rec->timestamp;
	if (rec->timestamp > rp->max_ts_seen)
		rp->max_ts_seen = rec->timestamp;
	if (idx < tg->skip) {
		/* Already in the target (section 3.1): the prefix rule says
		 * it sits at base + idx. */
		rp->summary.records_skipped++;
		note_landed(rp, tg, part->sp->partition, rec->offset, tg->base + (int64_t)idx);
		return 0;
	}
	bytes = record_bytes(rec);
	if (rp->rate)
		kt_replay_bucket_take(rp->rate, 1);
	if (rp->byte_rate)
		kt_replay_bucket_take(rp->byte_rate, (double)bytes);
	if (rp->pacer)
		kt_replay_pacer_wait(rp->pacer, rec->timestamp + rp->loop_shift);
	if (rp->stop)
		return KT_EINTERRUPTED;
	ts = send_timestamp(rp, rec);
	rp->summary.records_sent++;
	rp->summary.bytes_sent += (uint64_t)bytes;
	if (rp->opts.dry_run) {
		/* Predicted: nothing else writes, so it would land next. */
		rp->summary.records_acked++;
		note_landed(rp, tg, part->sp->partition, rec->offset, tg->base + (int64_t)idx);
		return 0;
	}
	if (fifo_push(tg, part->sp->partition, rec->offset))
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	/* The value is sent from the decompressed block without a copy: the
	 * message holds the block until its delivery report.  Copying every
	 * value (RD_KAFKA_MSG_F_COPY) cost a bare producer 0.15 CPU s of 1.15
	 * on 280 MB (bench/RESULTS.md); blocks stored uncompressed are
	 * overwritten by the next read, so their values are still copied. */
	block = kt_store_scan_hold_block(part->scan);
	for (;;) {
		if (rec->header_count) {
			hdrs = rd_kafka_headers_new(rec->header_count);
			for (size_t i = 0; i < rec->header_count; i++)
				rd_kafka_header_add(hdrs, rec->headers[i].name,
						    (ssize_t)rec->headers[i].name_len,
						    rec->headers[i].value,
						    (ssize_t)rec->headers[i].value_len);
		}
		/* RD_KAFKA_V_KEY/VALUE keep NULL (null) apart from a non-NULL
		 * pointer with length 0 (empty), as checked with kcat -J. */
		e = rd_kafka_producev(rp->rk, RD_KAFKA_V_RKT(t->rkt), RD_KAFKA_V_PARTITION(p),
				      RD_KAFKA_V_MSGFLAGS(block ? 0 : RD_KAFKA_MSG_F_COPY),
				      RD_KAFKA_V_KEY(rec->key, rec->key_len),
				      RD_KAFKA_V_VALUE((void *)rec->value, rec->value_len),
				      RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_HEADERS(hdrs),
				      RD_KAFKA_V_OPAQUE(block), RD_KAFKA_V_END);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		/* On failure the headers stay ours. */
		if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		hdrs = NULL;
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			tg->fifo_len--;
			kt_store_block_release(block);
			return kt_seterr(errstr, errstr_size, KT_EKAFKA,
					 "cannot send source %s[%" PRId32 "] offset %" PRId64
					 " to %s[%" PRId32 "]: %s%s", t->source, part->sp->partition,
					 rec->offset, t->target, p, rd_kafka_err2str(e), size_hint(e));
		}
		/* The producer queue is full: serve acknowledgements, retry. */
		rd_kafka_poll(rp->rk, 10);
		if (rp->dr_err)
			break;
	}
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
		rp->in_flight++;
	} else {
		tg->fifo_len--;
		kt_store_block_release(block);
	}
	return 0;
}

/* One pass over every selected partition in the plan's order. */
static int send_pass(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	uint64_t n = 0;
	int err;

	if (rp->plan->order == KT_REPLAY_ORDER_TIME) {
		/* One timeline: every partition's next record competes, so
		 * every scan is open at once. */
		rp->heap_len = 0;
		for (size_t i = 0; i < rp->part_count; i++) {
			err = open_scan(rp, &rp->parts[i], errstr, errstr_size);
			if (!err)
				err = part_advance(&rp->parts[i], errstr, errstr_size);
			if (err)
				return err;
			if (!rp->parts[i].done)
				rp->heap[rp->heap_len++] = i;
		}
		for (size_t i = rp->heap_len; i-- > 0;)
			heap_sift_down(rp, i);
		while (rp->heap_len && !rp->stop && !rp->dr_err) {
			struct rs_part *part = &rp->parts[rp->heap[0]];

			err = send_record(rp, part, part->head, errstr, errstr_size);
			if (err)
				return err;
			err = part_advance(part, errstr, errstr_size);
			if (err)
				return err;
			if (part->done)
				rp->heap[0] = rp->heap[--rp->heap_len];
			heap_sift_down(rp, 0);
			if (++n % POLL_EVERY == 0 && (err = tick(rp, errstr, errstr_size)))
				return err;
		}
		return 0;
	}
	/* Round-robin over a window of at most RR_WINDOW open partitions
	 * (format/restore.md section 2.1), which bounds the memory of open
	 * scans whatever the partition count.  rp->heap holds the window. */
	for (size_t next = 0, active = 0; !rp->stop && !rp->dr_err;) {
		size_t kept = 0;

		while (active < RR_WINDOW && next < rp->part_count) {
			err = open_scan(rp, &rp->parts[next], errstr, errstr_size);
			if (err)
				return err;
			rp->heap[active++] = next++;
		}
		if (!active)
			break;
		for (size_t a = 0; a < active && !rp->stop && !rp->dr_err; a++) {
			struct rs_part *part = &rp->parts[rp->heap[a]];

			for (unsigned k = 0; k < RR_CHUNK && !part->done && !rp->stop && !rp->dr_err; k++) {
				err = part_advance(part, errstr, errstr_size);
				if (err)
					return err;
				if (part->done)
					break;
				err = send_record(rp, part, part->head, errstr, errstr_size);
				if (err)
					return err;
				if (++n % POLL_EVERY == 0 && (err = tick(rp, errstr, errstr_size)))
					return err;
			}
			if (part->done)
				close_scan(rp, part);
			else
				rp->heap[kept++] = rp->heap[a];
		}
		active = kept;
	}
	return 0;
}

/* Waits until every record sent was acknowledged or failed. */
static void drain(struct kt_replay *rp)
{
	int64_t last_ckpt = kt_now_ns();

	while (rp->rk && rp->in_flight > 0) {
		/* flush, unlike poll, sends what lingers at once: the last
		 * batches need not wait for linger.ms. */
		rd_kafka_flush(rp->rk, 100);
		if (kt_now_ns() - last_ckpt > CHECKPOINT_EVERY_NS) {
			last_ckpt = kt_now_ns();
			report_progress(rp, 0);
		}
		if (rp->stop > 1)
			break;
	}
}

static void count_gaps(struct kt_replay *rp)
{
	for (size_t i = 0; i < rp->part_count; i++) {
		const struct rs_part *part = &rp->parts[i];
		int64_t lo = part->from_offset, hi = part->to_offset;

		for (size_t g = 0; g < part->sp->gap_count; g++) {
			int64_t a = part->sp->gaps[g].from, b = part->sp->gaps[g].to;

			if (a < lo)
				a = lo;
			if (b > hi)
				b = hi;
			if (a < b) {
				rp->summary.gaps++;
				rp->summary.gap_offsets += (uint64_t)(b - a);
				kt_log(rp->opts.log, KT_LOG_WARN,
				       "%s[%" PRId32 "]: offsets [%" PRId64 ", %" PRId64 ") were lost to %s"
				       " before the capture and cannot be restored", part->topic->source,
				       part->sp->partition, a, b,
				       part->sp->gaps[g].reason ? part->sp->gaps[g].reason : "retention");
			}
		}
		if (!part->sp->complete)
			kt_log(rp->opts.log, KT_LOG_WARN,
			       "%s[%" PRId32 "]: snapshot %s is partial here: it stopped at offset %" PRId64
			       " and only what it holds is restored", part->topic->source,
			       part->sp->partition, rp->snap->id, part->sp->end_offset);
		if (part->from_offset == KT_REPLAY_NO_BOUND_LO && part->to_offset == KT_REPLAY_NO_BOUND_HI &&
		    rp->plan->from_time == KT_REPLAY_NO_BOUND_LO && rp->plan->to_time == KT_REPLAY_NO_BOUND_HI)
			rp->records_planned += part->sp->records;
	}
	rp->records_planned *= rp->opts.loops;
}

/* After the last pass: every target partition must hold exactly the plan's
 * records; then the offset map is written. */
static int finish_restore(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	char path[PATH_MAX + 32];
	int err;

	for (size_t i = 0; i < rp->topic_count; i++) {
		struct rs_topic *t = &rp->topics[i];

		for (int32_t p = 0; p < t->target_partitions; p++) {
			struct rs_target *tg = &t->targets[p];

			if (!tg->in_plan)
				continue;
			if (tg->skip > tg->seen)
				return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
						 "target %s[%" PRId32 "] holds %" PRIu64 " records after its"
						 " base offset %" PRId64 " but restore %s sends only %" PRIu64
						 " there: another producer wrote to it, so which records are"
						 " restored cannot be told; restore into an empty topic",
						 t->target, p, tg->skip, tg->base, rp->plan->id, tg->seen);
			if (tg->acked != tg->seen)
				return kt_seterr(errstr, errstr_size, KT_EDELIVERY,
						 "target %s[%" PRId32 "]: %" PRIu64 " of %" PRIu64
						 " records acknowledged", t->target, p, tg->acked, tg->seen);
		}
	}
	if (!rp->record)
		return 0;
	snprintf(path, sizeof(path), "%s/offsets.ktm", rp->dir);
	err = kt_replay_omap_write(rp->omap, path, kt_store_repo_mode(rp->repo), errstr, errstr_size);
	if (err)
		return err;
	return write_checkpoint(rp, KT_REPLAY_CKPT_COMPLETE, NULL, errstr, errstr_size);
}

/* ======================================================================
 * Consumer groups (format/restore.md section 4.4)
 * ====================================================================== */

static int group_selected(const struct kt_replay *rp, const char *group)
{
	for (size_t i = 0; i < rp->opts.group_count; i++)
		if (!strcmp(rp->opts.groups[i], group))
			return 1;
	return rp->group_re_set && regexec(&rp->group_re, group, 0, NULL, 0) == 0;
}

static int add_commit(struct kt_replay *rp, const char *group, const struct rs_topic *t, int32_t p,
		      int32_t sp, int64_t so, int64_t to)
{
	struct kt_replay_summary *s = &rp->summary;
	struct kt_replay_group_commit *c;

	/* One row per (group, target partition): keep the smallest. */
	for (size_t i = 0; i < s->group_commit_count; i++) {
		c = &s->group_commits[i];
		if (c->partition == p && !strcmp(c->group, group) && !strcmp(c->topic, t->target)) {
			if (to < c->target_offset) {
				c->target_offset = to;
				c->source_partition = sp;
				c->source_offset = so;
			}
			return 0;
		}
	}
	c = realloc(s->group_commits, (s->group_commit_count + 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	s->group_commits = c;
	c = &c[s->group_commit_count];
	memset(c, 0, sizeof(*c));
	c->group = strdup(group);
	c->topic = strdup(t->target);
	c->source_topic = strdup(t->source);
	if (!c->group || !c->topic || !c->source_topic) {
		free(c->group);
		free(c->topic);
		free(c->source_topic);
		return -ENOMEM;
	}
	c->partition = p;
	c->source_partition = sp;
	c->source_offset = so;
	c->target_offset = to;
	s->group_commit_count++;
	return 0;
}

static int translate_groups(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	for (size_t g = 0; g < rp->snap->group_offset_count; g++) {
		const struct kt_store_group_offset *go = &rp->snap->group_offsets[g];

		if (!group_selected(rp, go->group))
			continue;
		for (size_t i = 0; i < rp->topic_count; i++) {
			struct rs_topic *t = &rp->topics[i];

			if (strcmp(t->source, go->topic) != 0)
				continue;
			for (int32_t p = 0; p < t->target_partitions; p++) {
				int64_t to = 0;

				if (t->targets[p].section < 0)
					continue;
				if (kt_replay_omap_translate(&rp->omap->sections[t->targets[p].section],
							     go->partition, go->offset, &to) < 0)
					continue;
				if (add_commit(rp, go->group, t, p, go->partition, go->offset, to))
					return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
			}
		}
	}
	if (!rp->summary.group_commit_count)
		kt_log(rp->opts.log, KT_LOG_WARN,
		       "no committed offset of a selected group falls on a restored partition");
	return 0;
}

static int commit_group(struct kt_replay *rp, const char *group, char *errstr, size_t errstr_size)
{
	struct kt_replay_summary *s = &rp->summary;
	rd_kafka_topic_partition_list_t *list = NULL, *check = NULL;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *ck = NULL;
	rd_kafka_resp_err_t e;
	char why[512];
	int err = 0;

	if (rp->opts.conf_apply) {
		err = rp->opts.conf_apply(rp->opts.conf_opaque, conf, errstr, errstr_size);
		if (err)
			goto out;
	}
	if ((err = set_conf(conf, "bootstrap.servers", rp->opts.brokers, errstr, errstr_size)) ||
	    (err = set_conf(conf, "group.id", group, errstr, errstr_size)) ||
	    (err = set_conf(conf, "enable.auto.commit", "false", errstr, errstr_size)))
		goto out;
	rd_kafka_conf_set_opaque(conf, rp);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	ck = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (!ck) {
		err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "cannot create a consumer for group %s: %s",
				group, why);
		goto out;
	}
	conf = NULL;
	list = rd_kafka_topic_partition_list_new(4);
	for (size_t i = 0; i < s->group_commit_count; i++) {
		const struct kt_replay_group_commit *c = &s->group_commits[i];

		if (!strcmp(c->group, group))
			rd_kafka_topic_partition_list_add(list, c->topic, c->partition)->offset =
				c->target_offset;
	}
	/* A plain OffsetCommit outside any generation: what works on every
	 * broker for a group with no live members. */
	e = rd_kafka_commit(ck, list, 0);
	if (e) {
		err = kt_seterr(errstr, errstr_size, KT_EKAFKA,
				"committing offsets of group %s on the target failed: %s (a group with"
				" live members cannot be moved; stop its consumers first)", group,
				rd_kafka_err2str(e));
		goto out;
	}
	/* Read back, so "committed" means the broker has it. */
	check = rd_kafka_topic_partition_list_copy(list);
	e = rd_kafka_committed(ck, check, rp->opts.timeout_ms);
	for (int i = 0; !e && i < check->cnt; i++) {
		if (check->elems[i].err || check->elems[i].offset != list->elems[i].offset) {
			err = kt_seterr(errstr, errstr_size, KT_EKAFKA,
					"group %s: %s[%" PRId32 "] reads back offset %" PRId64
					" after committing %" PRId64, group, check->elems[i].topic,
					check->elems[i].partition, check->elems[i].offset,
					list->elems[i].offset);
			goto out;
		}
	}
	if (e) {
		err = kt_seterr(errstr, errstr_size, KT_EKAFKA,
				"cannot read back the offsets of group %s: %s", group, rd_kafka_err2str(e));
		goto out;
	}
	for (size_t i = 0; i < s->group_commit_count; i++)
		if (!strcmp(s->group_commits[i].group, group))
			s->group_commits[i].committed = 1;
out:
	if (check)
		rd_kafka_topic_partition_list_destroy(check);
	if (list)
		rd_kafka_topic_partition_list_destroy(list);
	if (ck) {
		rd_kafka_consumer_close(ck);
		rd_kafka_destroy(ck);
	}
	if (conf)
		rd_kafka_conf_destroy(conf);
	return err;
}

static int commit_groups(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	struct kt_replay_summary *s = &rp->summary;

	for (size_t i = 0; i < s->group_commit_count; i++) {
		int seen = 0, err;

		for (size_t j = 0; j < i && !seen; j++)
			seen = !strcmp(s->group_commits[j].group, s->group_commits[i].group);
		if (seen)
			continue;
		err = commit_group(rp, s->group_commits[i].group, errstr, errstr_size);
		if (err)
			return err;
	}
	return 0;
}

/* ======================================================================
 * Run
 * ====================================================================== */

static int setup_pacing(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	rp->clock.now_ns = engine_now_ns;
	rp->clock.sleep_ns = engine_sleep_ns;
	rp->clock.opaque = rp;
	if (rp->opts.max_rate > 0 &&
	    kt_replay_bucket_create(&rp->rate, rp->opts.max_rate,
				    kt_replay_bucket_default_burst(rp->opts.max_rate), &rp->clock))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "invalid --max-rate %g", rp->opts.max_rate);
	if (rp->opts.max_bytes_rate > 0 &&
	    kt_replay_bucket_create(&rp->byte_rate, rp->opts.max_bytes_rate,
				    kt_replay_bucket_default_burst(rp->opts.max_bytes_rate), &rp->clock))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "invalid --max-bytes-rate %g",
				 rp->opts.max_bytes_rate);
	if (rp->opts.pace == KT_REPLAY_PACE_ORIGINAL &&
	    kt_replay_pacer_create(&rp->pacer, rp->opts.speed, rp->opts.max_gap_ms, &rp->clock))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "invalid --speed %g", rp->opts.speed);
	rp->xs = rp->plan->seed ? rp->plan->seed : 0x9E3779B97F4A7C15ULL;
	return 0;
}

static int open_topics(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	rp->omap = kt_replay_omap_create();
	if (!rp->omap)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	for (size_t i = 0; i < rp->topic_count; i++) {
		struct rs_topic *t = &rp->topics[i];

		if (!rp->opts.dry_run) {
			/* The -X topic settings, with the topic as opaque: the
			 * delivery report finds its target through it. */
			rd_kafka_topic_conf_t *tconf = rd_kafka_default_topic_conf_dup(rp->rk);

			if (!tconf)
				return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
			rd_kafka_topic_conf_set_opaque(tconf, t);
			t->rkt = rd_kafka_topic_new(rp->rk, t->target, tconf);
			if (!t->rkt)
				return kt_seterr(errstr, errstr_size, KT_EKAFKA, "cannot open topic %s: %s",
						 t->target, rd_kafka_err2str(rd_kafka_last_error()));
		}
		if (rp->opts.mode != KT_REPLAY_MODE_RESTORE)
			continue;
		for (int32_t p = 0; p < t->target_partitions; p++) {
			long s;

			if (!t->targets[p].in_plan)
				continue;
			s = kt_replay_omap_add_section(rp->omap, t->target, t->source, p,
						       t->targets[p].base);
			if (s < 0)
				return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
			t->targets[p].section = s;
		}
	}
	return 0;
}

/* Destroys the producer and its topic handles.  Whatever is still queued
 * after a failure is dropped: the engine has already said where it
 * stopped.  Done before kt_replay_run() returns a failure, so librdkafka's
 * last log lines (a broker that went away) come before the caller prints
 * the error, not after it. */
static void release_kafka(struct kt_replay *rp)
{
	for (size_t i = 0; i < rp->topic_count; i++) {
		if (rp->topics[i].rkt) {
			rd_kafka_topic_destroy(rp->topics[i].rkt);
			rp->topics[i].rkt = NULL;
		}
	}
	if (rp->rk) {
		rd_kafka_purge(rp->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(rp->rk, 0);
		rd_kafka_destroy(rp->rk);
		rp->rk = NULL;
	}
}

int kt_replay_run(struct kt_replay *rp, char *errstr, size_t errstr_size)
{
	struct kt_replay_summary *s = &rp->summary;
	int from_file = 0, restored = 0, err;

	if (rp->ran)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "kt_replay_run called twice");
	rp->ran = 1;
	rp->start_ns = kt_now_ns();
	rp->last_progress_ns = rp->last_ckpt_ns = rp->start_ns;
	rp->min_ts_seen = INT64_MAX;
	rp->max_ts_seen = INT64_MIN;

	err = kt_store_repo_open(&rp->repo, rp->opts.repo_path, 0, 0, errstr, errstr_size);
	if (err)
		goto out;
	if (rp->opts.resume_id) {
		err = load_plan_file(rp, rp->opts.resume_id, &rp->plan, errstr, errstr_size);
		if (err)
			goto out;
		from_file = 1;
		if (strcmp(rp->plan->target, rp->opts.brokers) != 0)
			kt_log(rp->opts.log, KT_LOG_WARN,
			       "restore %s was planned against %s; resuming against %s", rp->plan->id,
			       rp->plan->target, rp->opts.brokers);
	}
	err = kt_store_repo_load_snapshot(rp->repo, from_file ? rp->plan->snapshot : rp->opts.snapshot_id,
					  &rp->snap, errstr, errstr_size);
	if (err)
		goto out;
	snprintf(s->snapshot_id, sizeof(s->snapshot_id), "%s", rp->snap->id);
	if (!from_file) {
		err = plan_from_opts(rp, errstr, errstr_size);
		if (err)
			goto out;
	}
	err = build_state(rp, errstr, errstr_size);
	if (err)
		goto out;
	s->topics = rp->topic_count;
	s->partitions = rp->part_count;
	err = make_producer(rp, errstr, errstr_size);
	if (err)
		goto out;
	err = prepare_topics(rp, errstr, errstr_size);
	if (err)
		goto out;
	err = build_targets(rp, errstr, errstr_size);
	if (err)
		goto out;
	err = setup_restore(rp, from_file, errstr, errstr_size);
	if (err)
		goto out;
	if (rp->opts.mode == KT_REPLAY_MODE_RESTORE)
		snprintf(s->restore_id, sizeof(s->restore_id), "%s",
			 rp->record || s->resumed ? rp->plan->id : "");
	err = setup_pacing(rp, errstr, errstr_size);
	if (err)
		goto out;
	err = open_topics(rp, errstr, errstr_size);
	if (err)
		goto out;
	count_gaps(rp);
	kt_log(rp->opts.log, KT_LOG_DEBUG, "planned in %.1f ms", (double)(kt_now_ns() - rp->start_ns) / 1e6);

	for (unsigned loop = 0; loop < rp->opts.loops && !rp->stop && !rp->dr_err; loop++) {
		if (loop > 0) {
			/* Each pass continues the timeline after the previous
			 * one, so shifted timestamps keep increasing. */
			if (rp->max_ts_seen >= rp->min_ts_seen)
				rp->loop_shift += rp->max_ts_seen - rp->min_ts_seen + 1;
		}
		err = send_pass(rp, errstr, errstr_size);
		close_scans(rp);
		if (err && err != KT_EINTERRUPTED)
			break;
		err = 0;
	}
	kt_log(rp->opts.log, KT_LOG_DEBUG, "sent %" PRIu64 " records by %.1f ms", s->records_sent,
	       (double)(kt_now_ns() - rp->start_ns) / 1e6);
	drain(rp);
	kt_log(rp->opts.log, KT_LOG_DEBUG, "all acknowledged by %.1f ms",
	       (double)(kt_now_ns() - rp->start_ns) / 1e6);
	if (!err && rp->dr_err) {
		err = kt_seterr(errstr, errstr_size, rp->dr_err, "%s", rp->dr_errstr);
	} else if (!err && rp->stop) {
		err = kt_seterr(errstr, errstr_size, KT_EINTERRUPTED,
				"stopped after %" PRIu64 " records were sent and acknowledged%s",
				s->records_acked, rp->record ? "; rerun the same command to resume" : "");
	}
	if (!err && s->records_sent + s->records_skipped == 0)
		kt_log(rp->opts.log, KT_LOG_WARN, "the selected range of snapshot %s holds no records",
		       rp->snap->id);
	if (!err && rp->opts.mode == KT_REPLAY_MODE_RESTORE) {
		err = finish_restore(rp, errstr, errstr_size);
		if (!err) {
			s->already_complete = s->records_sent == 0 && s->records_skipped > 0;
			/* The records are all in: a group failure below must not
			 * mark the restore itself as failed. */
			restored = 1;
		}
		if (!err && (rp->opts.group_count || rp->group_re_set)) {
			err = translate_groups(rp, errstr, errstr_size);
			if (!err && !rp->opts.dry_run)
				err = commit_groups(rp, errstr, errstr_size);
		}
	}
	if (err && !restored && rp->record && rp->ckpt) {
		char ignored[256];

		write_checkpoint(rp, err == KT_EINTERRUPTED ? KT_REPLAY_CKPT_INTERRUPTED
							   : KT_REPLAY_CKPT_FAILED,
				 errstr, ignored, sizeof(ignored));
	}
out:
	close_scans(rp);
	report_progress(rp, 1);
	if (err && err != KT_EINTERRUPTED)
		release_kafka(rp);
	return err;
}

void kt_replay_destroy(struct kt_replay *rp)
{
	if (!rp)
		return;
	close_scans(rp);
	release_kafka(rp);
	for (size_t i = 0; i < rp->topic_count; i++) {
		struct rs_topic *t = &rp->topics[i];

		for (int32_t p = 0; t->targets && p < t->target_partitions; p++)
			free(t->targets[p].fifo);
		free(t->targets);
	}
	free(rp->topics);
	free(rp->parts);
	free(rp->heap);
	kt_replay_bucket_destroy(rp->rate);
	kt_replay_bucket_destroy(rp->byte_rate);
	kt_replay_pacer_destroy(rp->pacer);
	kt_replay_omap_destroy(rp->omap);
	kt_replay_checkpoint_destroy(rp->ckpt);
	kt_replay_plan_destroy(rp->plan);
	kt_store_snapshot_destroy(rp->snap);
	kt_store_repo_destroy(rp->repo);
	if (rp->lock_fd >= 0)
		close(rp->lock_fd);
	free_patterns(rp->topic_pats, rp->opts.topic_count);
	free_patterns(rp->exclude_pats, rp->opts.exclude_count);
	if (rp->group_re_set)
		regfree(&rp->group_re);
	for (size_t i = 0; i < rp->summary.group_commit_count; i++) {
		free(rp->summary.group_commits[i].group);
		free(rp->summary.group_commits[i].topic);
		free(rp->summary.group_commits[i].source_topic);
	}
	free(rp->summary.group_commits);
	free(rp);
}

/* ======================================================================
 * Summary renderings
 * ====================================================================== */

char *kt_replay_summary_json(const struct kt_replay_summary *s, int mode)
{
	json_t *root, *groups = json_array();
	char *out = NULL;

	root = json_pack("{s:s,s:s,s:s,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:o}",
			 "command", mode == KT_REPLAY_MODE_RESTORE ? "restore" : "replay",
			 "restore_id", s->restore_id, "snapshot", s->snapshot_id, "resumed",
			 s->resumed, "already_complete", s->already_complete, "topics",
			 (json_int_t)s->topics, "partitions", (json_int_t)s->partitions,
			 "records_sent", (json_int_t)s->records_sent, "records_acked",
			 (json_int_t)s->records_acked, "records_skipped", (json_int_t)s->records_skipped,
			 "bytes_sent", (json_int_t)s->bytes_sent, "timestamps_not_exact",
			 (json_int_t)s->timestamps_not_exact, "gaps", (json_int_t)s->gaps,
			 "gap_offsets", (json_int_t)s->gap_offsets, "blocks_read",
			 (json_int_t)s->blocks_read, "blocks_total", (json_int_t)s->blocks_total,
			 "stored_bytes_read", (json_int_t)s->stored_bytes_read, "elapsed_s",
			 s->elapsed_s, "groups", groups);
	if (!root)
		return NULL;
	for (size_t i = 0; i < s->group_commit_count; i++) {
		const struct kt_replay_group_commit *c = &s->group_commits[i];

		if (json_array_append_new(groups, json_pack(
			    "{s:s,s:s,s:i,s:s,s:i,s:I,s:I,s:b}", "group", c->group, "topic", c->topic,
			    "partition", (int)c->partition, "source_topic", c->source_topic,
			    "source_partition", (int)c->source_partition, "source_offset",
			    (json_int_t)c->source_offset, "target_offset", (json_int_t)c->target_offset,
			    "committed", c->committed)))
			goto out;
	}
	out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(root);
	return out;
}

char *kt_replay_summary_prometheus(const struct kt_replay_summary *s, int mode)
{
	const char *cmd = mode == KT_REPLAY_MODE_RESTORE ? "restore" : "replay";
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	const struct {
		const char *name, *type, *help;
		double v;
	} m[] = {
		{ "records_sent_total", "counter", "records handed to the producer", (double)s->records_sent },
		{ "records_acked_total", "counter", "records acknowledged by Kafka", (double)s->records_acked },
		{ "records_skipped_total", "counter", "records found already restored", (double)s->records_skipped },
		{ "bytes_sent_total", "counter", "key, value and header bytes sent", (double)s->bytes_sent },
		{ "timestamps_not_exact_total", "counter", "records whose timestamp could not be kept", (double)s->timestamps_not_exact },
		{ "gap_offsets", "gauge", "offsets lost to retention before capture", (double)s->gap_offsets },
		{ "blocks_read_total", "counter", "store blocks decoded", (double)s->blocks_read },
		{ "elapsed_seconds", "gauge", "seconds since the start", s->elapsed_s },
	};

	if (!f)
		return NULL;
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		fprintf(f, "# HELP ktape_%s_%s %s\n# TYPE ktape_%s_%s %s\nktape_%s_%s{snapshot=\"%s\"} %.17g\n",
			cmd, m[i].name, m[i].help, cmd, m[i].name, m[i].type, cmd, m[i].name,
			s->snapshot_id, m[i].v);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
