/*
 * ktape demo: the whole life of a backup on one machine, with no Kafka to
 * install.  An embedded sandbox is filled with two realistic clusters'
 * topics, captured into a repository, verified, restored into a second,
 * empty sandbox and compared with the source record by record, and a time
 * window is replayed at a speed factor into a third sandbox.  A short report
 * says what each stage did and how fast; the exit status says whether the
 * restored cluster equals the source.
 *
 * Every stage goes through the same engines as the real commands (capture,
 * the store's verifier, the restore/replay engine); the demo only wires them
 * together and checks their results from the outside, with a plain
 * librdkafka consumer.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "cli.h"
#include "kt_capture.h"
#include "kt_replay.h"
#include "kt_sandbox.h"
#include "kt_store.h"

#define CMD "demo"
/* How long any one broker answer may take before the demo gives up.  The
 * sandbox is in process, so only a wedged engine takes this long. */
#define DEMO_TIMEOUT_MS 15000
/* The sandbox keeps 5 MiB per partition; at --size 4 somabrain_events'
 * partitions would outgrow it. */
#define DEMO_MAX_SIZE 3

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape demo [options]\n"
		"\n"
		"Shows a backup's whole life without any Kafka to install: starts an\n"
		"embedded sandbox with two realistic clusters' topics (a three-topic\n"
		"platform with consumer groups, and market data keyed by symbol with a\n"
		"compacted _schemas topic), generates data, captures a snapshot, verifies\n"
		"it, restores it into a second, empty sandbox, compares both clusters\n"
		"record by record, replays a time window at --speed into a third sandbox,\n"
		"and prints a report.  Exit status 0 only when the restored cluster\n"
		"equals the source and the replay delivered the whole window.\n"
		"\n"
		"Options:\n"
		"      --size N        generate N times the default amount of data\n"
		"                      (1..%d, default 1: about 94,000 records)\n"
		"      --speed X       speed factor of the replay (default 10)\n"
		"      --window D      recorded time to replay (default 20s)\n"
		"      --repo DIR      keep the repository in DIR (default: a temporary\n"
		"                      one, removed at the end)\n"
		"      --brokers N     brokers per sandbox (default 1)\n"
		"      --json          print the report as one JSON object\n"
		"      --inject-difference record|offset\n"
		"                      for testing the comparison itself: after the\n"
		"                      restore, add one record to the restored cluster,\n"
		"                      or move one group's offset; the demo must then\n"
		"                      report equal: no and exit 6\n"
		"  -h, --help          this help\n"
		"\n"
		"Exit codes: 0 equal, 1 a stage failed, 2 usage, 3 the backup did not\n"
		"verify, 5 interrupted, 6 a difference was found.\n",
		DEMO_MAX_SIZE);
}

/* The two fixtures' topics (tests/integration/fixtures.sh): a platform of
 * three services with an outbox, and market data keyed by symbol. */
static const struct {
	const char *name;
	int32_t partitions;
} demo_topics[] = {
	{ "audit_events", 2 },
	{ "outbox_events", 2 },
	{ "somabrain_events", 4 },
	{ "market.equities.trades.asx", 30 },
	{ "market.crypto.trades.binance", 40 },
	{ "_schemas", 1 },
};
#define DEMO_TOPIC_COUNT (sizeof(demo_topics) / sizeof(demo_topics[0]))

/* The fixtures' data, spec by spec, with the same seeds, keys, sizes and
 * shares as fixtures.sh; the demo multiplies the counts by DEMO_SCALE per
 * --size so that the stages have something to measure. */
struct demo_spec {
	const char *topic;
	int32_t partitions;
	uint64_t count;
	int32_t partition; /* -1: by key */
	uint64_t seed;
	uint64_t keys;
	const char *key_prefix;
	uint32_t min_size;
	uint32_t max_size;
	uint32_t max_headers;
	double null_keys;
	double tombstones;
	double null_headers;
	double dup_headers;
	double binary;
	int compressibility;
	double disorder;
};

static const struct demo_spec demo_specs[] = {
	{ "audit_events", 2, 400, 0, 101, 50, "tenant-", 150, 400, 3, 0, 0, 0.2, 0.3, 0, 100, 0 },
	{ "audit_events", 2, 350, 1, 102, 50, "tenant-", 150, 400, 3, 0, 0, 0.2, 0.3, 0, 100, 0 },
	{ "outbox_events", 2, 250, 0, 201, 100, "aggregate-", 200, 600, 2, 0, 0.1, 0, 0, 0, 100, 0.1 },
	{ "outbox_events", 2, 250, 1, 202, 100, "aggregate-", 200, 600, 2, 0, 0.1, 0, 0, 0, 100, 0.1 },
	{ "somabrain_events", 4, 1000, -1, 301, 400, "mem-", 50, 1500, 1, 0.05, 0, 0, 0, 0.2, 70, 0 },
	{ "market.equities.trades.asx", 30, 1500, -1, 401, 200, "ASX:SYM", 80, 160, 0, 0, 0, 0, 0, 0, 100,
	  0.02 },
	{ "market.crypto.trades.binance", 40, 2000, -1, 402, 300, "BINANCE:SYM", 80, 200, 0, 0, 0, 0, 0, 0,
	  40, 0.05 },
	{ "_schemas", 1, 100, -1, 403, 20, "subject-", 300, 900, 0, 0, 0.2, 0, 0, 0, 100, 0 },
};
#define DEMO_SPEC_COUNT (sizeof(demo_specs) / sizeof(demo_specs[0]))
#define DEMO_SCALE 16

/* The fixture's group offsets at fixture size 1 (scaled like the counts):
 * audit_processor_group is caught up on p0 and 50 behind on p1,
 * outbox_publisher_group half-way through p0 and caught up on p1.  A
 * restore must move them to the translated offsets. */
static const struct {
	const char *group;
	const char *topic;
	int32_t partition;
	int64_t offset;
} demo_commits[] = {
	{ "audit_processor_group", "audit_events", 0, 400 },
	{ "audit_processor_group", "audit_events", 1, 300 },
	{ "outbox_publisher_group", "outbox_events", 0, 200 },
	{ "outbox_publisher_group", "outbox_events", 1, 250 },
};
#define DEMO_COMMIT_COUNT (sizeof(demo_commits) / sizeof(demo_commits[0]))
static const char *const demo_groups[] = { "audit_processor_group", "outbox_publisher_group" };
#define DEMO_GROUP_COUNT (sizeof(demo_groups) / sizeof(demo_groups[0]))

/* Recorded time the generated data spans: five minutes of traffic. */
#define DEMO_SPAN_MS (5 * 60 * 1000)

enum demo_inject {
	INJECT_NONE,
	INJECT_RECORD,
	INJECT_OFFSET,
};

enum demo_stage_id {
	STAGE_GENERATE,
	STAGE_CAPTURE,
	STAGE_VERIFY,
	STAGE_RESTORE,
	STAGE_COMPARE,
	STAGE_REPLAY,
	STAGE_COUNT,
};

static const char *const stage_names[STAGE_COUNT] = {
	"generate", "capture", "verify", "restore", "compare", "replay",
};

struct demo_stage {
	int done;
	uint64_t records;
	uint64_t bytes;        /* record bytes: keys, values, header names and values */
	uint64_t stored_bytes; /* 0: not applicable */
	double seconds;
};

struct demo_compare {
	uint64_t records;
	uint64_t bytes;
	uint64_t partitions;
	int equal;
	char difference[512]; /* the first difference found */
};

struct demo {
	/* options */
	unsigned size;
	double speed;
	int64_t window_ms;
	int brokers;
	const char *repo_opt;
	int json;
	int inject; /* enum demo_inject */

	char tmpdir[PATH_MAX];
	char repo_path[PATH_MAX];
	struct kt_sandbox *source;
	struct kt_sandbox *target;
	struct kt_sandbox *replay_target;
	struct kt_store_repo *repo;
	struct kt_store_snapshot *snap;
	char snapshot_id[64];

	struct demo_stage stages[STAGE_COUNT];
	struct demo_compare cmp;
	uint64_t groups_compared;
	/* replay */
	int64_t window_from;
	int64_t window_to;
	uint64_t window_records;
	double window_expected_s;
	uint64_t replayed_records;
	int replay_complete;
};

/* The sink handed to the engines: warnings and errors unless -v. */
static struct kt_log demo_log;

/* Set by SIGINT/SIGTERM; the running engine is asked to stop too. */
static volatile int demo_stop;
static struct kt_capture *volatile running_capture;
static struct kt_replay *volatile running_replay;

static void on_stop_signal(int sig)
{
	struct kt_capture *cap = running_capture;
	struct kt_replay *rp = running_replay;

	demo_stop = 1;
	if (cap)
		kt_capture_stop(cap);
	if (rp)
		kt_replay_stop(rp);
	signal(sig, SIG_DFL);
}

/* ---- comparing two clusters record by record ---------------------------- */

/* A consumer reading whole partitions through their own queues, so that two
 * clusters can be read in lockstep, partition by partition, with memory
 * bounded by librdkafka's prefetch limits and not by the data. */
static void demo_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	(void)level;
	kt_log(&demo_log, KT_LOG_DEBUG, "librdkafka %s: %s", fac, buf);
}

static int demo_consumer_new(rd_kafka_t **out, const char *bootstrap, const char *group,
			     char *errstr, size_t errstr_size)
{
	static const char *const settings[][2] = {
		{ "enable.auto.commit", "false" },
		{ "enable.partition.eof", "false" },
		{ "auto.offset.reset", "earliest" },
		/* The sandbox answers a fetch with one batch per partition and
		 * makes a fetch that finds nothing new on some partition wait
		 * the whole fetch.wait.max.ms: reading many partitions costs
		 * a round trip of that length per batch.  Keep it short. */
		{ "fetch.wait.max.ms", "2" },
		/* Every partition of a topic prefetches at once (compare).
		 * librdkafka 2.0.2 pauses a partition whose queue is full for
		 * a fixed second, which lockstep reading would hit on every
		 * partition; so the queues are not bounded here.  What they
		 * can hold is bounded anyway: the sandbox keeps at most 5 MiB
		 * per partition and --size is capped. */
		{ "queued.max.messages.kbytes", "1048576" },
		{ "queued.min.messages", "10000000" },
		/* A fetch that starts before its partition's leader is known
		 * backs off this long (500 ms by default) per topic. */
		{ "fetch.error.backoff.ms", "10" },
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char rderr[256];

	*out = NULL;
	if (!conf)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory for a consumer");
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, rderr, sizeof(rderr)) ||
	    rd_kafka_conf_set(conf, "group.id", group, rderr, sizeof(rderr)))
		goto bad;
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], rderr, sizeof(rderr)))
			goto bad;
	rd_kafka_conf_set_log_cb(conf, demo_rdkafka_log);
	*out = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
	if (!*out) {
		rd_kafka_conf_destroy(conf);
		return kt_seterr(errstr, errstr_size, KT_EKAFKA, "cannot create a consumer of %s: %s",
				 bootstrap, rderr);
	}
	return 0;
bad:
	rd_kafka_conf_destroy(conf);
	return kt_seterr(errstr, errstr_size, KT_EKAFKA, "consumer configuration: %s", rderr);
}

/* Two byte strings, where NULL (Kafka's null) differs from empty. */
static int bytes_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (!a || !b)
		return !a && !b;
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Describes the first field in which two records differ into why, or
 * returns 1 when they are the same in every field a restore must keep. */
static int demo_records_equal(const rd_kafka_message_t *a, const rd_kafka_message_t *b,
			      char *why, size_t why_size)
{
	rd_kafka_timestamp_type_t at, bt;
	rd_kafka_headers_t *ah = NULL, *bh = NULL;
	int64_t ats = rd_kafka_message_timestamp(a, &at);
	int64_t bts = rd_kafka_message_timestamp(b, &bt);
	size_t an, bn;

	if (a->offset != b->offset) {
		snprintf(why, why_size, "offset %" PRId64 " on one side, %" PRId64 " on the other",
			 a->offset, b->offset);
		return 0;
	}
	if (!bytes_equal(a->key, a->key_len, b->key, b->key_len)) {
		snprintf(why, why_size, "keys differ");
		return 0;
	}
	if (!bytes_equal(a->payload, a->len, b->payload, b->len)) {
		snprintf(why, why_size, "values differ%s", !a->payload != !b->payload ?
			 " (a tombstone on one side only)" : "");
		return 0;
	}
	if (ats != bts || at != bt) {
		snprintf(why, why_size, "timestamps differ: %" PRId64 " and %" PRId64, ats, bts);
		return 0;
	}
	/* A message without headers gives an error here; treat it as none. */
	if (rd_kafka_message_headers(a, &ah))
		ah = NULL;
	if (rd_kafka_message_headers(b, &bh))
		bh = NULL;
	an = ah ? rd_kafka_header_cnt(ah) : 0;
	bn = bh ? rd_kafka_header_cnt(bh) : 0;
	if (an != bn) {
		snprintf(why, why_size, "%zu headers on one side, %zu on the other", an, bn);
		return 0;
	}
	for (size_t i = 0; i < an; i++) {
		const char *aname, *bname;
		const void *aval, *bval;
		size_t alen, blen;

		rd_kafka_header_get_all(ah, i, &aname, &aval, &alen);
		rd_kafka_header_get_all(bh, i, &bname, &bval, &blen);
		if (strcmp(aname, bname) != 0 || !bytes_equal(aval, alen, bval, blen)) {
			snprintf(why, why_size, "header %zu (%s) differs", i, aname);
			return 0;
		}
	}
	return 1;
}

static uint64_t message_bytes(const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *hdrs = NULL;
	uint64_t n = m->key_len + m->len;

	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (size_t i = 0; i < rd_kafka_header_cnt(hdrs); i++) {
			const char *name;
			const void *val;
			size_t len;

			rd_kafka_header_get_all(hdrs, i, &name, &val, &len);
			n += strlen(name) + len;
		}
	}
	return n;
}

/* The next message of a partition queue, or NULL with errstr set. */
static rd_kafka_message_t *next_message(rd_kafka_queue_t *queue, const char *side,
					const char *topic, int32_t partition, int64_t expected,
					char *errstr, size_t errstr_size)
{
	rd_kafka_message_t *m = rd_kafka_consume_queue(queue, DEMO_TIMEOUT_MS);

	if (!m) {
		kt_seterr(errstr, errstr_size, KT_ETIMEDOUT,
			  "%s %s/%d: no record arrived within %d ms at offset %" PRId64, side, topic,
			  (int)partition, DEMO_TIMEOUT_MS, expected);
		return NULL;
	}
	if (m->err) {
		kt_seterr(errstr, errstr_size, KT_EKAFKA, "%s %s/%d: %s", side, topic, (int)partition,
			  rd_kafka_message_errstr(m));
		rd_kafka_message_destroy(m);
		return NULL;
	}
	return m;
}


/* Reads a partition's low and high watermarks. */
static int watermarks(rd_kafka_t *rk, const char *side, const char *topic, int32_t partition,
		      int64_t *low, int64_t *high, char *errstr, size_t errstr_size)
{
	rd_kafka_resp_err_t rerr = rd_kafka_query_watermark_offsets(rk, topic, partition, low, high,
								    DEMO_TIMEOUT_MS);
	if (rerr)
		return kt_seterr(errstr, errstr_size, KT_EKAFKA, "%s %s/%d: cannot read its offsets: %s",
				 side, topic, (int)partition, rd_kafka_err2str(rerr));
	return 0;
}

/* Compares one topic of the two clusters: the same number of records in
 * each partition, and the same records in the same order. */
static int compare_topic(rd_kafka_t *left, rd_kafka_t *right, const char *topic,
			 int32_t partitions, struct demo_compare *cmp, char *errstr,
			 size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(partitions);
	rd_kafka_t *const sides[2] = { left, right };
	rd_kafka_queue_t **queues = calloc(2 * (size_t)partitions, sizeof(*queues));
	int assigned[2] = { 0, 0 };
	int err = 0;

	if (!list || !queues) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory comparing %s", topic);
		goto out;
	}
	/* Each partition is read from its own queue, not from the consumer
	 * queue all partitions share, so that the two clusters can be read in
	 * lockstep partition by partition.  Forwarding must be turned off
	 * before the assignment starts fetching, or the first records would
	 * already sit in the shared queue. */
	for (int s = 0; s < 2; s++) {
		for (int32_t p = 0; p < partitions; p++) {
			queues[s * partitions + p] = rd_kafka_queue_get_partition(sides[s], topic, p);
			if (!queues[s * partitions + p]) {
				err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "no queue for %s/%d", topic,
						(int)p);
				goto out;
			}
			rd_kafka_queue_forward(queues[s * partitions + p], NULL);
		}
	}
	for (int32_t p = 0; p < partitions; p++)
		rd_kafka_topic_partition_list_add(list, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	for (int s = 0; s < 2; s++) {
		rd_kafka_resp_err_t rerr = rd_kafka_assign(sides[s], list);
		if (rerr) {
			err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "cannot read %s: %s", topic,
					rd_kafka_err2str(rerr));
			goto out;
		}
		assigned[s] = 1;
	}
	for (int32_t p = 0; p < partitions && cmp->equal; p++) {
		int64_t low[2], high[2];
		char why[256];

		for (int s = 0; s < 2 && !err; s++)
			err = watermarks(sides[s], s ? "target" : "source", topic, p, &low[s], &high[s],
					 errstr, errstr_size);
		if (err)
			goto out;
		cmp->partitions++;
		if (high[0] - low[0] != high[1] - low[1]) {
			snprintf(cmp->difference, sizeof(cmp->difference),
				 "%s/%d holds %" PRId64 " records in the source and %" PRId64 " in the target",
				 topic, (int)p, high[0] - low[0], high[1] - low[1]);
			cmp->equal = 0;
			break;
		}
		for (int64_t i = 0; i < high[0] - low[0] && cmp->equal; i++) {
			rd_kafka_message_t *a = next_message(queues[p], "source", topic, p, low[0] + i,
							     errstr, errstr_size);
			rd_kafka_message_t *b = a ? next_message(queues[partitions + p], "target", topic, p,
								 low[1] + i, errstr, errstr_size) : NULL;
			if (!a || !b) {
				if (a)
					rd_kafka_message_destroy(a);
				err = KT_ETIMEDOUT;
				goto out;
			}
			if (!demo_records_equal(a, b, why, sizeof(why))) {
				snprintf(cmp->difference, sizeof(cmp->difference),
					 "%s/%d offset %" PRId64 ": %s", topic, (int)p, a->offset, why);
				cmp->equal = 0;
			}
			cmp->records++;
			cmp->bytes += message_bytes(a);
			rd_kafka_message_destroy(a);
			rd_kafka_message_destroy(b);
		}
	}
out:
	for (int s = 0; s < 2; s++) {
		if (assigned[s])
			rd_kafka_assign(sides[s], NULL);
		for (int32_t p = 0; queues && p < partitions; p++)
			if (queues[s * partitions + p])
				rd_kafka_queue_destroy(queues[s * partitions + p]);
	}
	free(queues);
	if (list)
		rd_kafka_topic_partition_list_destroy(list);
	return err;
}

/* Compares the committed offsets of a consumer group on both clusters for
 * every partition of the snapshot's topics. */
static int compare_group(const char *left_bs, const char *right_bs, const char *group,
			 const struct kt_store_snapshot *snap, struct demo_compare *cmp,
			 char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *lists[2] = { NULL, NULL };
	rd_kafka_t *sides[2] = { NULL, NULL };
	const char *bootstraps[2] = { left_bs, right_bs };
	int err = 0;

	for (int s = 0; s < 2; s++) {
		err = demo_consumer_new(&sides[s], bootstraps[s], group, errstr, errstr_size);
		if (err)
			goto out;
		lists[s] = rd_kafka_topic_partition_list_new(16);
		for (size_t t = 0; t < snap->topic_count; t++)
			for (int32_t p = 0; p < snap->topics[t].partition_count; p++)
				rd_kafka_topic_partition_list_add(lists[s], snap->topics[t].name, p);
		/* committed() only asks the coordinator (OffsetFetch): it does
		 * not join the group. */
		rd_kafka_resp_err_t rerr = rd_kafka_committed(sides[s], lists[s], DEMO_TIMEOUT_MS);
		if (rerr) {
			err = kt_seterr(errstr, errstr_size, KT_EKAFKA,
					"cannot read the offsets of group %s on the %s: %s", group,
					s ? "target" : "source", rd_kafka_err2str(rerr));
			goto out;
		}
	}
	for (int i = 0; i < lists[0]->cnt; i++) {
		const rd_kafka_topic_partition_t *a = &lists[0]->elems[i], *b = &lists[1]->elems[i];
		if (a->offset != b->offset) {
			snprintf(cmp->difference, sizeof(cmp->difference),
				 "group %s on %s/%d: committed offset %" PRId64 " in the source, %" PRId64
				 " in the target", group, a->topic, (int)a->partition, a->offset, b->offset);
			cmp->equal = 0;
			break;
		}
	}
out:
	for (int s = 0; s < 2; s++) {
		if (lists[s])
			rd_kafka_topic_partition_list_destroy(lists[s]);
		if (sides[s])
			rd_kafka_destroy(sides[s]);
	}
	return err;
}

/* ---- stages ------------------------------------------------------------- */

static double seconds_since(int64_t start_ns)
{
	return (double)(kt_now_ns() - start_ns) / 1e9;
}

/* A producer configuration for the generator: large compressed batches, so
 * that the sandbox (which keeps 5 MiB per partition) holds more data. */
static rd_kafka_conf_t *gen_conf(const char *bootstrap, char *errstr, size_t errstr_size)
{
	static const char *const settings[][2] = {
		{ "linger.ms", "20" },
		{ "batch.size", "1000000" },
		{ "compression.type", "zstd" },
		{ "acks", "all" },
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char rderr[256];

	if (!conf) {
		kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		return NULL;
	}
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, rderr, sizeof(rderr)))
		goto bad;
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], rderr, sizeof(rderr)))
			goto bad;
	rd_kafka_conf_set_log_cb(conf, demo_rdkafka_log);
	return conf;
bad:
	rd_kafka_conf_destroy(conf);
	kt_seterr(errstr, errstr_size, KT_EKAFKA, "producer configuration: %s", rderr);
	return NULL;
}


/* Commits the fixture's group offsets, scaled like the data, as consumers
 * that are caught up or behind would have. */
static int commit_groups(struct demo *d, char *errstr, size_t errstr_size)
{
	struct kt_gen_commit commits[DEMO_COMMIT_COUNT];
	int err = 0;

	for (size_t i = 0; i < DEMO_COMMIT_COUNT; i++) {
		memset(&commits[i], 0, sizeof(commits[i]));
		snprintf(commits[i].group, sizeof(commits[i].group), "%s", demo_commits[i].group);
		snprintf(commits[i].topic, sizeof(commits[i].topic), "%s", demo_commits[i].topic);
		commits[i].partition = demo_commits[i].partition;
		commits[i].offset = demo_commits[i].offset * DEMO_SCALE * (int64_t)d->size;
	}
	for (size_t g = 0; g < DEMO_GROUP_COUNT && !err; g++) {
		rd_kafka_conf_t *conf = gen_conf(kt_sandbox_bootstrap(d->source), errstr, errstr_size);
		if (!conf)
			return KT_EKAFKA;
		/* It commits the entries that name this group. */
		err = kt_gen_commit_offsets(conf, demo_groups[g], commits, DEMO_COMMIT_COUNT, errstr,
					    errstr_size);
	}
	return err;
}

/* The sandbox keeps 5 MiB per partition and silently drops older batches:
 * a --size too large for it would make the source lose records before the
 * capture, which the demo must not pass off as a difference of the restore. */
static int check_nothing_expired(struct demo *d, char *errstr, size_t errstr_size)
{
	rd_kafka_t *rk = NULL;
	int err;

	err = demo_consumer_new(&rk, kt_sandbox_bootstrap(d->source), "ktape-demo", errstr, errstr_size);
	if (err)
		return err;
	for (size_t t = 0; t < DEMO_TOPIC_COUNT && !err; t++) {
		for (int32_t p = 0; p < demo_topics[t].partitions && !err; p++) {
			int64_t low, high;

			err = watermarks(rk, "source", demo_topics[t].name, p, &low, &high, errstr, errstr_size);
			if (!err && low > 0)
				err = kt_seterr(errstr, errstr_size, KT_EUSAGE,
						"--size %u is too large for the sandbox: %s/%d outgrew the 5 MiB "
						"it keeps per partition and dropped its first %" PRId64
						" records; use a smaller --size",
						d->size, demo_topics[t].name, (int)p, low);
		}
	}
	rd_kafka_destroy(rk);
	return err;
}

/* Fills the source sandbox with both fixtures and commits the groups. */
static int stage_generate(struct demo *d, char *errstr, size_t errstr_size)
{
	struct demo_stage *st = &d->stages[STAGE_GENERATE];
	int64_t start = kt_now_ns();
	int err;

	err = kt_sandbox_create(&d->source, d->brokers, &demo_log, errstr, errstr_size);
	for (size_t t = 0; !err && t < DEMO_TOPIC_COUNT; t++)
		err = kt_sandbox_create_topic(d->source, demo_topics[t].name, demo_topics[t].partitions, 0,
					      errstr, errstr_size);
	for (size_t i = 0; !err && i < DEMO_SPEC_COUNT; i++) {
		const struct demo_spec *spec = &demo_specs[i];
		struct kt_gen_result result;
		struct kt_gen_opts gopts;
		struct kt_gen *gen = NULL;
		rd_kafka_conf_t *conf;

		kt_gen_opts_init(&gopts);
		gopts.seed = spec->seed;
		gopts.count = spec->count * DEMO_SCALE * d->size;
		gopts.partitions = spec->partitions;
		gopts.partition = spec->partition;
		gopts.keys = spec->keys;
		gopts.key_prefix = spec->key_prefix;
		gopts.min_size = spec->min_size;
		gopts.max_size = spec->max_size;
		gopts.max_headers = spec->max_headers;
		gopts.null_key_share = spec->null_keys;
		gopts.tombstone_share = spec->tombstones;
		gopts.null_header_share = spec->null_headers;
		gopts.dup_header_share = spec->dup_headers;
		gopts.binary_share = spec->binary;
		gopts.compressibility = spec->compressibility;
		gopts.disorder_share = spec->disorder;
		/* Every topic covers the same five minutes from the generator's
		 * fixed start, so that one replay window cuts through all of
		 * them and every run makes the same records. */
		gopts.ts_span_ms = DEMO_SPAN_MS;
		err = kt_gen_create(&gen, &gopts, errstr, errstr_size);
		if (err)
			break;
		conf = gen_conf(kt_sandbox_bootstrap(d->source), errstr, errstr_size);
		if (!conf) {
			kt_gen_destroy(gen);
			err = KT_EKAFKA;
			break;
		}
		memset(&result, 0, sizeof(result));
		err = kt_gen_produce(gen, conf, spec->topic, &result, &demo_stop, errstr, errstr_size);
		kt_gen_destroy(gen);
		st->records += result.delivered;
		st->bytes += result.bytes + result.header_bytes;
		kt_gen_result_clear(&result);
	}
	if (!err)
		err = commit_groups(d, errstr, errstr_size);
	if (!err)
		err = check_nothing_expired(d, errstr, errstr_size);
	if (err)
		return err;
	st->seconds = seconds_since(start);
	st->done = 1;
	return 0;
}

static int stage_capture(struct demo *d, char *errstr, size_t errstr_size)
{
	struct demo_stage *st = &d->stages[STAGE_CAPTURE];
	const struct kt_capture_summary *summary = NULL;
	const char *topics[DEMO_TOPIC_COUNT], *groups[DEMO_GROUP_COUNT];
	struct kt_capture_opts copts;
	struct kt_capture *cap = NULL;
	int64_t start = kt_now_ns();
	int err;

	for (size_t t = 0; t < DEMO_TOPIC_COUNT; t++)
		topics[t] = demo_topics[t].name;
	for (size_t g = 0; g < DEMO_GROUP_COUNT; g++)
		groups[g] = demo_groups[g];
	kt_capture_opts_init(&copts);
	copts.brokers = kt_sandbox_bootstrap(d->source);
	copts.repo_path = d->repo_path;
	copts.topics = topics;
	copts.topic_count = DEMO_TOPIC_COUNT;
	copts.groups = groups;
	copts.group_count = DEMO_GROUP_COUNT;
	copts.log = &demo_log;
	/* The sandbox cannot describe topic configs (no controller): do not
	 * spend the default five seconds finding that out. */
	copts.admin_timeout_ms = 300;
	err = kt_capture_create(&cap, &copts, errstr, errstr_size);
	if (err)
		return err;
	running_capture = cap;
	if (demo_stop)
		kt_capture_stop(cap);
	err = kt_capture_run(cap, &summary, errstr, errstr_size);
	running_capture = NULL;
	if (!err && summary) {
		st->records = summary->records;
		st->bytes = summary->raw_bytes;
		st->stored_bytes = summary->stored_bytes;
		snprintf(d->snapshot_id, sizeof(d->snapshot_id), "%s", summary->snapshot_id);
		st->seconds = seconds_since(start);
		st->done = 1;
	}
	kt_capture_destroy(cap);
	if (err)
		return err;
	err = kt_store_repo_open(&d->repo, d->repo_path, 0, 0, errstr, errstr_size);
	if (err)
		return err;
	return kt_store_repo_load_snapshot(d->repo, d->snapshot_id, &d->snap, errstr, errstr_size);
}

struct verify_problems {
	uint64_t count;
	char first[512];
};

static void on_verify_problem(void *opaque, const struct kt_store_verify_problem *problem)
{
	struct verify_problems *vp = opaque;

	if (vp->count++ == 0)
		snprintf(vp->first, sizeof(vp->first), "%s", problem->message);
}

/* Reads every block of every segment of the snapshot back and checks it
 * against its checksum, structure, manifest and index. */
static int stage_verify(struct demo *d, char *errstr, size_t errstr_size)
{
	struct demo_stage *st = &d->stages[STAGE_VERIFY];
	struct verify_problems vp = { 0 };
	struct kt_store_verify_opts vopts = { 0 };
	struct kt_store_verify_result result = { 0 };
	char *ids[1] = { d->snapshot_id };
	int64_t start = kt_now_ns();
	int err;

	vopts.log = &demo_log;
	vopts.on_problem = on_verify_problem;
	vopts.opaque = &vp;
	err = kt_store_repo_verify(d->repo, ids, 1, &vopts, &result, errstr, errstr_size);
	if (err == KT_ECORRUPT || vp.count)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "the snapshot did not verify: %" PRIu64 " problems, the first: %s",
				 vp.count, vp.first[0] ? vp.first : errstr);
	if (err)
		return err;
	st->records = result.records;
	/* The repository is new, so the snapshot holds exactly what the
	 * capture wrote: its record bytes are the capture's.  result.raw_bytes
	 * counts the blocks' encoding too, and would not compare with the
	 * other rows. */
	st->bytes = d->stages[STAGE_CAPTURE].bytes;
	st->stored_bytes = result.stored_bytes;
	st->seconds = seconds_since(start);
	st->done = 1;
	return 0;
}

/* Starts an empty sandbox with the snapshot's topics: the sandbox cannot
 * create topics through CreateTopics, as `ktape sandbox --from-snapshot`
 * explains. */
static int sandbox_like_snapshot(struct demo *d, struct kt_sandbox **out, char *errstr,
				 size_t errstr_size)
{
	int err = kt_sandbox_create(out, d->brokers, &demo_log, errstr, errstr_size);

	for (size_t t = 0; !err && t < d->snap->topic_count; t++)
		err = kt_sandbox_create_topic(*out, d->snap->topics[t].name,
					      d->snap->topics[t].partition_count, 0, errstr, errstr_size);
	return err;
}

/* The engine's producer settings for the sandboxes: compressed batches, as
 * the generator writes them, so that what fitted the source's 5 MiB per
 * partition fits the target's too (the demo's -X compression.type=zstd). */
static int demo_engine_conf(void *opaque, void *rd_kafka_conf, char *errstr, size_t errstr_size)
{
	char rderr[256];

	(void)opaque;
	if (rd_kafka_conf_set(rd_kafka_conf, "compression.type", "zstd", rderr, sizeof(rderr)))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "compression.type: %s", rderr);
	return 0;
}

/* Runs the restore/replay engine to completion. */
static int run_engine(const struct kt_replay_opts *opts, struct demo_stage *st, char *errstr,
		      size_t errstr_size)
{
	struct kt_replay *rp = NULL;
	int64_t start = kt_now_ns();
	int err;

	struct kt_replay_opts with_conf = *opts;
	with_conf.conf_apply = demo_engine_conf;
	err = kt_replay_create(&rp, &with_conf, errstr, errstr_size);
	if (err)
		return err;
	running_replay = rp;
	if (demo_stop)
		kt_replay_stop(rp);
	err = kt_replay_run(rp, errstr, errstr_size);
	running_replay = NULL;
	const struct kt_replay_summary *summary = kt_replay_summary(rp);
	st->records = summary->records_acked;
	st->bytes = summary->bytes_sent;
	st->seconds = seconds_since(start);
	st->done = !err;
	kt_replay_destroy(rp);
	return err;
}

/* --inject-difference: one change to the restored cluster that the
 * comparison must find, so that a test can prove "equal: yes" is earned. */
static int inject_difference(struct demo *d, char *errstr, size_t errstr_size)
{
	const char *bootstrap = kt_sandbox_bootstrap(d->target);
	rd_kafka_conf_t *conf = gen_conf(bootstrap, errstr, errstr_size);
	struct kt_gen_result result;
	struct kt_gen_opts gopts;
	struct kt_gen *gen = NULL;
	int err;

	if (!conf)
		return KT_EKAFKA;
	if (d->inject == INJECT_OFFSET) {
		struct kt_gen_commit commit = { .partition = 1, .offset = 1 };

		snprintf(commit.group, sizeof(commit.group), "%s", "audit_processor_group");
		snprintf(commit.topic, sizeof(commit.topic), "%s", "audit_events");
		return kt_gen_commit_offsets(conf, commit.group, &commit, 1, errstr, errstr_size);
	}
	kt_gen_opts_init(&gopts);
	gopts.count = 1;
	gopts.partitions = 2;
	gopts.partition = 0;
	err = kt_gen_create(&gen, &gopts, errstr, errstr_size);
	if (err) {
		rd_kafka_conf_destroy(conf);
		return err;
	}
	memset(&result, 0, sizeof(result));
	err = kt_gen_produce(gen, conf, "outbox_events", &result, &demo_stop, errstr, errstr_size);
	kt_gen_result_clear(&result);
	kt_gen_destroy(gen);
	return err;
}

static int stage_restore(struct demo *d, char *errstr, size_t errstr_size)
{
	const char *groups[DEMO_GROUP_COUNT];
	struct kt_replay_opts opts;
	int err;

	err = sandbox_like_snapshot(d, &d->target, errstr, errstr_size);
	if (err)
		return err;
	for (size_t g = 0; g < DEMO_GROUP_COUNT; g++)
		groups[g] = demo_groups[g];
	kt_replay_opts_init(&opts, KT_REPLAY_MODE_RESTORE);
	opts.repo_path = d->repo_path;
	opts.snapshot_id = d->snapshot_id;
	opts.brokers = kt_sandbox_bootstrap(d->target);
	opts.groups = groups;
	opts.group_count = DEMO_GROUP_COUNT;
	opts.log = &demo_log;
	err = run_engine(&opts, &d->stages[STAGE_RESTORE], errstr, errstr_size);
	if (!err && d->inject != INJECT_NONE)
		err = inject_difference(d, errstr, errstr_size);
	return err;
}

static int stage_compare(struct demo *d, char *errstr, size_t errstr_size)
{
	struct demo_stage *st = &d->stages[STAGE_COMPARE];
	const char *left = kt_sandbox_bootstrap(d->source), *right = kt_sandbox_bootstrap(d->target);
	rd_kafka_t *sides[2] = { NULL, NULL };
	int64_t start = kt_now_ns();
	int err;

	d->cmp.equal = 1;
	err = demo_consumer_new(&sides[0], left, "ktape-demo-compare", errstr, errstr_size);
	if (!err)
		err = demo_consumer_new(&sides[1], right, "ktape-demo-compare", errstr, errstr_size);
	/* Knowing every partition's leader before the first assignment saves
	 * each topic a wait for a metadata refresh. */
	for (int s = 0; s < 2 && !err; s++) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_resp_err_t rerr = rd_kafka_metadata(sides[s], 1, NULL, &md, DEMO_TIMEOUT_MS);
		if (rerr)
			err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "cannot read the %s's topics: %s",
					s ? "target" : "source", rd_kafka_err2str(rerr));
		if (md)
			rd_kafka_metadata_destroy(md);
	}
	for (size_t t = 0; !err && d->cmp.equal && t < d->snap->topic_count; t++)
		err = compare_topic(sides[0], sides[1], d->snap->topics[t].name,
				    d->snap->topics[t].partition_count, &d->cmp, errstr, errstr_size);
	for (size_t g = 0; !err && d->cmp.equal && g < DEMO_GROUP_COUNT; g++) {
		err = compare_group(left, right, demo_groups[g], d->snap, &d->cmp, errstr,
				    errstr_size);
		d->groups_compared += !err;
	}
	for (int s = 0; s < 2; s++)
		if (sides[s])
			rd_kafka_destroy(sides[s]);
	if (err)
		return err;
	st->records = d->cmp.records;
	st->bytes = d->cmp.bytes;
	st->seconds = seconds_since(start);
	st->done = 1;
	return 0;
}

/* Picks the replay window in the middle of the recorded time and counts,
 * from the snapshot itself, the records it holds and the time they span. */
static int plan_window(struct demo *d, char *errstr, size_t errstr_size)
{
	int64_t min_ts = INT64_MAX, max_ts = INT64_MIN, first = INT64_MAX, last = INT64_MIN;
	struct kt_store_range range;
	int err = 0;

	for (size_t t = 0; t < d->snap->topic_count; t++) {
		for (size_t p = 0; p < d->snap->topics[t].n_partitions; p++) {
			const struct kt_store_partition *part = &d->snap->topics[t].partitions[p];
			if (part->records == 0)
				continue;
			min_ts = part->min_ts < min_ts ? part->min_ts : min_ts;
			max_ts = part->max_ts > max_ts ? part->max_ts : max_ts;
		}
	}
	if (min_ts > max_ts)
		return kt_seterr(errstr, errstr_size, KT_ENOTFOUND, "the snapshot %s holds no records",
				 d->snapshot_id);
	int64_t window = d->window_ms < max_ts - min_ts ? d->window_ms : max_ts - min_ts + 1;
	d->window_from = min_ts + (max_ts - min_ts - window) / 2;
	d->window_to = d->window_from + window;

	kt_store_range_init(&range);
	range.from_time = d->window_from;
	range.to_time = d->window_to;
	for (size_t t = 0; !err && t < d->snap->topic_count; t++) {
		for (size_t p = 0; !err && p < d->snap->topics[t].n_partitions; p++) {
			struct kt_store_scan *scan = NULL;
			const struct kt_record *rec;

			err = kt_store_scan_create(&scan, d->repo, &d->snap->topics[t].partitions[p], &range,
						   errstr, errstr_size);
			while (!err && (err = kt_store_scan_next(scan, &rec, errstr, errstr_size)) == 1) {
				d->window_records++;
				first = rec->timestamp < first ? rec->timestamp : first;
				last = rec->timestamp > last ? rec->timestamp : last;
				err = 0;
			}
			kt_store_scan_destroy(scan);
		}
	}
	if (err)
		return err;
	d->window_expected_s = d->window_records ? (double)(last - first) / 1000.0 / d->speed : 0;
	return 0;
}

static int stage_replay(struct demo *d, char *errstr, size_t errstr_size)
{
	struct demo_stage *st = &d->stages[STAGE_REPLAY];
	struct kt_replay_opts opts;
	rd_kafka_t *rk = NULL;
	int err;

	err = plan_window(d, errstr, errstr_size);
	if (!err)
		err = sandbox_like_snapshot(d, &d->replay_target, errstr, errstr_size);
	if (err)
		return err;
	kt_replay_opts_init(&opts, KT_REPLAY_MODE_REPLAY);
	opts.repo_path = d->repo_path;
	opts.snapshot_id = d->snapshot_id;
	opts.brokers = kt_sandbox_bootstrap(d->replay_target);
	opts.from_time = d->window_from;
	opts.to_time = d->window_to;
	opts.pace = KT_REPLAY_PACE_ORIGINAL;
	opts.speed = d->speed;
	opts.log = &demo_log;
	err = run_engine(&opts, st, errstr, errstr_size);
	if (err)
		return err;

	/* Count what arrived, from the outside. */
	err = demo_consumer_new(&rk, opts.brokers, "ktape-demo", errstr, errstr_size);
	for (size_t t = 0; !err && t < d->snap->topic_count; t++) {
		for (int32_t p = 0; !err && p < d->snap->topics[t].partition_count; p++) {
			int64_t low, high;

			err = watermarks(rk, "replay target", d->snap->topics[t].name, p, &low, &high, errstr,
					 errstr_size);
			d->replayed_records += err ? 0 : (uint64_t)(high - low);
		}
	}
	if (rk)
		rd_kafka_destroy(rk);
	d->replay_complete = !err && d->replayed_records == d->window_records;
	return err;
}

/* ---- report ------------------------------------------------------------- */

static double mb(uint64_t bytes)
{
	return (double)bytes / 1e6;
}

static void print_report(const struct demo *d, int equal, const char *failure)
{
	printf("\nktape demo: %zu topics of two clusters, size %u, repository %s\n\n",
	       DEMO_TOPIC_COUNT, d->size, d->repo_opt ? d->repo_path : "(temporary)");
	if (!d->stages[STAGE_GENERATE].done)
		goto verdict;
	printf("%-9s %10s %10s %10s %7s %9s %9s\n", "stage", "records", "MB", "stored MB", "ratio",
	       "seconds", "MB/s");
	for (int s = 0; s < STAGE_COUNT; s++) {
		const struct demo_stage *st = &d->stages[s];
		char stored[32] = "-", ratio[32] = "-";

		if (!st->done) {
			printf("%-9s %10s\n", stage_names[s], "not done");
			continue;
		}
		if (st->stored_bytes) {
			snprintf(stored, sizeof(stored), "%.2f", mb(st->stored_bytes));
			snprintf(ratio, sizeof(ratio), "%.2fx", (double)st->bytes / (double)st->stored_bytes);
		}
		printf("%-9s %10" PRIu64 " %10.2f %10s %7s %9.2f %9.1f\n", stage_names[s], st->records,
		       mb(st->bytes), stored, ratio, st->seconds,
		       st->seconds > 0 ? mb(st->bytes) / st->seconds : 0.0);
	}
	printf("(MB: record bytes - keys, values, header names and values - in every row, MB = 10^6 bytes;"
	       " stored MB: segment files; ratio: MB / stored MB)\n\n");
	if (d->stages[STAGE_COMPARE].done)
		printf("compare: %" PRIu64 " records in %" PRIu64 " partitions and %" PRIu64
		       " consumer groups' offsets compared%s%s\n",
		       d->cmp.records, d->cmp.partitions, d->groups_compared,
		       d->cmp.equal ? "" : "; first difference: ", d->cmp.equal ? "" : d->cmp.difference);
	if (d->stages[STAGE_REPLAY].done) {
		char from[40], to[40];

		kt_format_time_ms(d->window_from, from, sizeof(from));
		kt_format_time_ms(d->window_to, to, sizeof(to));
		printf("replay: window %s .. %s at %gx: %" PRIu64 " of %" PRIu64
		       " records arrived in %.2f s (the window's records span %.2f s at that speed)\n",
		       from, to, d->speed, d->replayed_records, d->window_records,
		       d->stages[STAGE_REPLAY].seconds, d->window_expected_s);
	}
verdict:
	if (failure)
		printf("failed: %s\n", failure);
	printf("equal: %s\n", equal ? "yes" : "no");
}

static void print_json(const struct demo *d, int equal, const char *failure)
{
	json_t *root = json_object(), *stages = json_array();
	char *text;

	for (int s = 0; s < STAGE_COUNT; s++) {
		const struct demo_stage *st = &d->stages[s];
		json_t *o = json_object();

		json_object_set_new(o, "stage", json_string(stage_names[s]));
		json_object_set_new(o, "done", json_boolean(st->done));
		json_object_set_new(o, "records", json_integer((json_int_t)st->records));
		json_object_set_new(o, "bytes", json_integer((json_int_t)st->bytes));
		if (st->stored_bytes)
			json_object_set_new(o, "stored_bytes", json_integer((json_int_t)st->stored_bytes));
		json_object_set_new(o, "seconds", json_real(st->seconds));
		json_array_append_new(stages, o);
	}
	json_object_set_new(root, "size", json_integer(d->size));
	json_object_set_new(root, "snapshot", json_string(d->snapshot_id));
	json_object_set_new(root, "stages", stages);
	json_object_set_new(root, "partitions_compared", json_integer((json_int_t)d->cmp.partitions));
	json_object_set_new(root, "groups_compared", json_integer((json_int_t)d->groups_compared));
	json_object_set_new(root, "replay_speed", json_real(d->speed));
	json_object_set_new(root, "replay_window_from", json_integer(d->window_from));
	json_object_set_new(root, "replay_window_to", json_integer(d->window_to));
	json_object_set_new(root, "replay_window_records", json_integer((json_int_t)d->window_records));
	json_object_set_new(root, "replay_expected_seconds", json_real(d->window_expected_s));
	json_object_set_new(root, "replayed_records", json_integer((json_int_t)d->replayed_records));
	json_object_set_new(root, "difference", d->cmp.equal || !d->cmp.difference[0] ? json_null() :
				    json_string(d->cmp.difference));
	json_object_set_new(root, "failure", failure ? json_string(failure) : json_null());
	json_object_set_new(root, "equal", json_boolean(equal));
	text = json_dumps(root, JSON_COMPACT);
	if (text)
		printf("%s\n", text);
	free(text);
	json_decref(root);
}

/* ---- setup and teardown ------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void demo_cleanup(struct demo *d)
{
	kt_store_snapshot_destroy(d->snap);
	kt_store_repo_destroy(d->repo);
	kt_sandbox_destroy(d->replay_target);
	kt_sandbox_destroy(d->target);
	kt_sandbox_destroy(d->source);
	/* Only the directory the demo made itself is removed. */
	if (d->tmpdir[0])
		nftw(d->tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int dir_is_empty_or_absent(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *ent;
	int empty = 1;

	if (!dir)
		return errno == ENOENT;
	while (empty && (ent = readdir(dir)) != NULL)
		empty = strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0;
	closedir(dir);
	return empty;
}

static int parse_options(struct demo *d, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 'S' },
		{ "speed", required_argument, NULL, 's' },
		{ "window", required_argument, NULL, 'w' },
		{ "repo", required_argument, NULL, 'r' },
		{ "brokers", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "inject-difference", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t u64;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			if (kt_parse_u64(optarg, DEMO_MAX_SIZE, &u64) || u64 < 1) {
				kt_cli_error(CMD, "--size '%s': expected a whole number from 1 to %d", optarg,
					     DEMO_MAX_SIZE);
				return kt_cli_usage_error(CMD);
			}
			d->size = (unsigned)u64;
			break;
		case 's':
			if (kt_parse_double(optarg, &d->speed) || !(d->speed > 0)) {
				kt_cli_error(CMD, "--speed '%s': expected a positive number", optarg);
				return kt_cli_usage_error(CMD);
			}
			break;
		case 'w':
			if (kt_parse_duration_ms(optarg, &d->window_ms) || d->window_ms <= 0) {
				kt_cli_error(CMD, "--window '%s': expected a positive duration (20s, 1m)", optarg);
				return kt_cli_usage_error(CMD);
			}
			break;
		case 'r':
			d->repo_opt = optarg;
			break;
		case 'n':
			if (kt_parse_u64(optarg, 16, &u64) || u64 < 1) {
				kt_cli_error(CMD, "--brokers '%s': expected 1 to 16", optarg);
				return kt_cli_usage_error(CMD);
			}
			d->brokers = (int)u64;
			break;
		case 'j':
			d->json = 1;
			break;
		case 'i':
			if (strcmp(optarg, "record") == 0) {
				d->inject = INJECT_RECORD;
			} else if (strcmp(optarg, "offset") == 0) {
				d->inject = INJECT_OFFSET;
			} else {
				kt_cli_error(CMD, "--inject-difference '%s': expected record or offset", optarg);
				return kt_cli_usage_error(CMD);
			}
			break;
		case 'h':
			usage(stdout);
			return KT_EXIT_OK;
		default:
			return kt_cli_usage_error(CMD);
		}
	}
	if (optind < argc) {
		kt_cli_error(CMD, "unexpected argument '%s'", argv[optind]);
		return kt_cli_usage_error(CMD);
	}
	return -1;
}

static void stage_note(const struct demo *d, int s)
{
	if (!d->json && kt_cli_verbosity >= KT_LOG_INFO)
		fprintf(stderr, "ktape demo: %s...\n", stage_names[s]);
}

int kt_cli_cmd_demo(int argc, char **argv)
{
	static int (*const stages[STAGE_COUNT])(struct demo *, char *, size_t) = {
		stage_generate, stage_capture, stage_verify, stage_restore, stage_compare, stage_replay,
	};
	struct demo d = { .size = 1, .speed = 10.0, .window_ms = 20000, .brokers = 1 };
	char errstr[1024] = "", failure[1200] = "";
	int rc, err = 0;

	rc = parse_options(&d, argc, argv);
	if (rc >= 0)
		return rc;

	demo_log.fn = kt_cli_log.fn;
	demo_log.opaque = kt_cli_log.opaque;
	/* The engines' progress notes would drown the report: only warnings
	 * and errors, unless -v asks for more. */
	demo_log.max_level = kt_cli_verbosity > KT_LOG_INFO ? kt_cli_verbosity : KT_LOG_WARN;

	if (d.repo_opt) {
		if (snprintf(d.repo_path, sizeof(d.repo_path), "%s", d.repo_opt) >= (int)sizeof(d.repo_path)) {
			kt_cli_error(CMD, "--repo: path too long");
			return KT_EXIT_USAGE;
		}
		/* A repository with snapshots would make the capture an
		 * incremental one of a different cluster: the demo starts
		 * from nothing. */
		if (!dir_is_empty_or_absent(d.repo_path)) {
			kt_cli_error(CMD, "--repo %s exists and is not an empty directory; give a new or empty one",
				     d.repo_path);
			return kt_cli_usage_error(CMD);
		}
		/* Made now, so that a path that cannot hold it fails before
		 * seconds of generating, not at the capture. */
		err = kt_mkdir_p(d.repo_path, 0700);
		if (err) {
			kt_cli_error(CMD, "--repo %s: cannot create the directory: %s", d.repo_path,
				     kt_strerror(err));
			return KT_EXIT_FAILURE;
		}
	} else {
		const char *base = getenv("TMPDIR");
		snprintf(d.tmpdir, sizeof(d.tmpdir), "%s/ktape-demo.XXXXXX", base && *base ? base : "/tmp");
		if (!mkdtemp(d.tmpdir)) {
			kt_cli_error(CMD, "cannot create a temporary directory in %s: %s",
				     base && *base ? base : "/tmp", strerror(errno));
			return KT_EXIT_FAILURE;
		}
		if (snprintf(d.repo_path, sizeof(d.repo_path), "%s/repo", d.tmpdir) >=
		    (int)sizeof(d.repo_path)) {
			kt_cli_error(CMD, "TMPDIR is too long a path");
			rmdir(d.tmpdir);
			return KT_EXIT_FAILURE;
		}
	}

	kt_cli_stop_signals(on_stop_signal);
	for (int s = 0; s < STAGE_COUNT && !err; s++) {
		stage_note(&d, s);
		err = stages[s](&d, errstr, sizeof(errstr));
		if (!err && demo_stop)
			err = KT_EINTERRUPTED;
		if (err) {
			snprintf(failure, sizeof(failure), "%s: %s", stage_names[s],
				 errstr[0] ? errstr : kt_strerror(err));
			if (err == KT_EINTERRUPTED)
				snprintf(failure, sizeof(failure), "interrupted during %s", stage_names[s]);
		}
		if (!err && s == STAGE_COMPARE && !d.cmp.equal)
			break; /* no point replaying a restore that differs */
	}
	kt_cli_stop_signals(SIG_DFL);

	int equal = !err && d.cmp.equal && d.stages[STAGE_COMPARE].done && d.replay_complete;
	if (!err && d.stages[STAGE_REPLAY].done && !d.replay_complete)
		snprintf(failure, sizeof(failure),
			 "replay: %" PRIu64 " records of the window arrived, %" PRIu64 " expected",
			 d.replayed_records, d.window_records);
	if (d.json)
		print_json(&d, equal, failure[0] ? failure : NULL);
	else
		print_report(&d, equal, failure[0] ? failure : NULL);
	if (err)
		kt_cli_error(CMD, "%s", failure);
	demo_cleanup(&d);
	if (err)
		return kt_cli_exit_for(err);
	return equal ? KT_EXIT_OK : KT_EXIT_DIFFERENT;
}
