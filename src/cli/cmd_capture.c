/* ktape capture: back up Kafka topics into a repository (the nightly
 * backup), once or continuously with --follow.  The engine is
 * src/capture; this file parses flags, turns signals into a clean stop,
 * shows progress, and writes the --json summary and --stats-file metrics. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "kt_capture.h"
#include "kt_sandbox.h"
#include "kt_store.h"

static void capture_usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape capture -b BROKERS -r REPO -t TOPIC|^REGEX... [options]\n"
		"\n"
		"Backs up topics into a repository: fixes each partition's end offset (the\n"
		"last stable offset under read_committed), captures every partition up to\n"
		"exactly there in parallel, and commits a snapshot. A repository that already\n"
		"holds a snapshot is continued incrementally; records retention deleted\n"
		"before they were captured are recorded as gaps (exit code 4).\n"
		"\n"
		"Selection and Kafka:\n"
		"  -b, --brokers LIST       bootstrap servers (host:port,...)\n"
		"  -r, --repo REPO          the backup repository (created if absent)\n"
		"  -t, --topic T            a topic name, or a regex when it starts with '^'\n"
		"                           (repeatable); internal topics (__*) only by name\n"
		"      --exclude T          leave out a topic name or '^regex' (repeatable)\n"
		"  -X KEY=VALUE             librdkafka property (SASL, SSL, timeouts...)\n"
		"  -F FILE                  librdkafka properties file, as kcat's -F\n"
		"      --group NAME         record this consumer group's offsets (repeatable)\n"
		"      --groups REGEX       record the offsets of the groups the broker lists\n"
		"                           that match (needs ListConsumerGroups)\n"
		"\n"
		"Storage:\n"
		"  -z, --compression C      none or zstd (default zstd)\n"
		"  -l, --level N            zstd level (default 3)\n"
		"      --segment-size SIZE  roll to a new segment past this (default 256M)\n"
		"      --block-size SIZE    raw bytes per block (default: from partition count)\n"
		"      --io-backend B       auto, uring or pwrite (default auto: io_uring\n"
		"                           where the kernel allows it)\n"
		"\n"
		"Running:\n"
		"  -j, --threads N          worker threads (default: one per core)\n"
		"      --memory SIZE        memory for prefetch and open blocks (default 128M)\n"
		"      --mode MODE          permission bits of a new repository's files, octal\n"
		"                           (default 0600: owner only; directories get x)\n"
		"      --timeout DUR        broker answers and stalls (default 30s)\n"
		"      --admin-timeout DUR  DescribeConfigs and group calls (default 5s)\n"
		"      --follow             commit a new snapshot every --interval until\n"
		"                           SIGINT/SIGTERM, then commit what is complete\n"
		"      --interval DUR       the --follow period, i.e. the RPO (default 60s)\n"
		"      --workers-group NAME one worker of many (on any hosts) sharing one\n"
		"                           snapshot: each joins the Kafka consumer group NAME\n"
		"                           and captures the partitions it is assigned; run\n"
		"                           every worker with the same options (docs/multi-host.md)\n"
		"      --json               print a JSON summary on stdout at the end\n"
		"      --stats-file PATH    write Prometheus textfile metrics (atomically)\n"
		"      --progress/--no-progress  live progress line (default: on a terminal)\n"
		"\n"
		"SIGINT/SIGTERM finish the blocks in flight and commit a partial snapshot of\n"
		"what is complete; the next capture continues it. A second signal ends at once\n"
		"(earlier snapshots stay intact).\n"
		"\n"
		"Exit codes: 0 ok, 1 failure, 2 usage, 4 records lost to retention (gaps\n"
		"recorded), 5 interrupted (partial snapshot kept).\n");
}

/* The capture running, for the signal handler. */
static struct kt_capture *volatile capture_running;

static void on_signal(int sig)
{
	(void)sig;
	if (capture_running)
		kt_capture_stop(capture_running);
}

struct capture_cli {
	struct kt_sandbox_kconf *kconf;
	int progress_line;        /* draw a live line on stderr */
	int line_shown;           /* a progress line is on screen */
	pthread_mutex_t lock;     /* stderr between log lines and progress */
	const char *stats_file;
	const char *repo_path;
	int64_t started_ms;
	uint64_t records;         /* over all rounds (counters) */
	uint64_t raw_bytes;
	uint64_t stored_bytes;
	uint64_t gap_offsets;
	uint64_t snapshots;
	int64_t last_success_s;
	double last_duration_s;
	uint32_t partitions_incomplete;
};


/* Log lines clear the progress line first, so the two never interleave. */
static void capture_log_fn(void *opaque, int level, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	struct capture_cli *cli = opaque;

	if (level > kt_cli_verbosity)
		return;
	pthread_mutex_lock(&cli->lock);
	if (cli->line_shown) {
		fputs("\r\033[K", stderr);
		cli->line_shown = 0;
	}
	fprintf(stderr, "ktape: %s: %s\n", names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
	pthread_mutex_unlock(&cli->lock);
}

static int apply_kconf(void *opaque, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
	return kt_sandbox_kconf_apply(opaque, conf, errstr, errstr_size);
}

static void format_eta(char *buf, size_t size, double seconds)
{
	if (seconds < 0 || seconds > 360000)
		snprintf(buf, size, "--:--");
	else if (seconds >= 3600)
		snprintf(buf, size, "%d:%02d:%02d", (int)seconds / 3600, ((int)seconds / 60) % 60, (int)seconds % 60);
	else
		snprintf(buf, size, "%d:%02d", (int)seconds / 60, (int)seconds % 60);
}

static void on_progress(void *opaque, const struct kt_capture_progress *p)
{
	struct capture_cli *cli = opaque;
	double secs = (double)p->elapsed_ns / 1e9;
	double mbps = secs > 0 ? (double)p->raw_bytes / 1e6 / secs : 0;
	double pct = p->offsets_total ? 100.0 * (double)p->offsets_done / (double)p->offsets_total : 100.0;
	double rate = secs > 0 ? (double)p->offsets_done / secs : 0;
	double eta = rate > 0 ? (double)(p->offsets_total - p->offsets_done) / rate : -1;
	char line[1024], eta_text[32];
	size_t used;
	struct winsize ws;
	size_t width = 100;

	format_eta(eta_text, sizeof(eta_text), eta);
	if (!cli->progress_line) {
		kt_log(&(struct kt_log){ capture_log_fn, cli, KT_LOG_DEBUG }, KT_LOG_INFO,
		       "progress: %.1f%% of %" PRIu64 " offsets, %" PRIu64 " records, %.1f MB/s, ETA %s",
		       pct, p->offsets_total, p->records, mbps, eta_text);
		return;
	}
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		width = ws.ws_col - 1;
	if (width >= sizeof(line))
		width = sizeof(line) - 1;
	used = (size_t)snprintf(line, sizeof(line), "%5.1f%% %8.1f MB/s ETA %s |", pct, mbps, eta_text);
	for (size_t i = 0; i < p->topic_count && used < width; i++) {
		const struct kt_capture_topic_progress *t = &p->topics[i];
		double tpct = t->offsets_total ? 100.0 * (double)t->offsets_done / (double)t->offsets_total : 100.0;

		used += (size_t)snprintf(line + used, sizeof(line) - used, " %s %.0f%%", t->name, tpct);
	}
	if (used > width)
		used = width;
	line[used] = '\0';
	pthread_mutex_lock(&cli->lock);
	fprintf(stderr, "\r\033[K%s", line);
	cli->line_shown = 1;
	pthread_mutex_unlock(&cli->lock);
}

/* Writes a Prometheus label value with its escapes. */
static void put_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*s, f);
	}
}

/* The last success time a previous run recorded, so that a failed run
 * does not make an old backup look fresh, nor a fresh one look lost. */
static int64_t previous_last_success(const char *path)
{
	static const char name[] = "ktape_capture_last_success_timestamp_seconds";
	FILE *f = fopen(path, "r");
	char line[1024];
	int64_t value = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		const char *p = line + sizeof(name) - 1;

		if (strncmp(line, name, sizeof(name) - 1) != 0)
			continue;
		if (*p == '{')
			p = strchr(p, '}') ? strchr(p, '}') + 1 : p;
		value = strtoll(p, NULL, 10);
	}
	fclose(f);
	return value;
}

static void write_stats(struct capture_cli *cli, const struct kt_capture_summary *s, int success)
{
	char *buf = NULL, errstr[512];
	size_t len = 0;
	FILE *f;
	int err;

	if (!cli->stats_file)
		return;
	f = open_memstream(&buf, &len);
	if (!f)
		return;
#define METRIC(name, type, help) fprintf(f, "# HELP " name " " help "\n# TYPE " name " " type "\n")
#define LABELS() (fputs("{repo=\"", f), put_label(f, cli->repo_path), fputs("\"}", f))
	METRIC("ktape_capture_records_total", "counter", "Records captured by this run of ktape capture.");
	fputs("ktape_capture_records_total", f), LABELS(), fprintf(f, " %" PRIu64 "\n", cli->records);
	METRIC("ktape_capture_bytes_total", "counter", "Record bytes (before compression) captured by this run.");
	fputs("ktape_capture_bytes_total", f), LABELS(), fprintf(f, " %" PRIu64 "\n", cli->raw_bytes);
	METRIC("ktape_capture_stored_bytes_total", "counter", "Segment bytes written by this run.");
	fputs("ktape_capture_stored_bytes_total", f), LABELS(), fprintf(f, " %" PRIu64 "\n", cli->stored_bytes);
	METRIC("ktape_capture_gap_offsets_total", "counter",
	       "Offsets retention deleted before they could be captured, found by this run.");
	fputs("ktape_capture_gap_offsets_total", f), LABELS(), fprintf(f, " %" PRIu64 "\n", cli->gap_offsets);
	METRIC("ktape_capture_snapshots_total", "counter", "Snapshots committed by this run.");
	fputs("ktape_capture_snapshots_total", f), LABELS(), fprintf(f, " %" PRIu64 "\n", cli->snapshots);
	METRIC("ktape_capture_duration_seconds", "gauge", "Duration of the last capture round.");
	fputs("ktape_capture_duration_seconds", f), LABELS(), fprintf(f, " %.3f\n", cli->last_duration_s);
	METRIC("ktape_capture_partitions_incomplete", "gauge", "Partitions the last snapshot did not complete.");
	fputs("ktape_capture_partitions_incomplete", f), LABELS(),
		fprintf(f, " %" PRIu32 "\n", s ? s->partitions_incomplete : 0);
	METRIC("ktape_capture_success", "gauge", "1 when the last capture round succeeded.");
	fputs("ktape_capture_success", f), LABELS(), fprintf(f, " %d\n", success);
	METRIC("ktape_capture_last_run_timestamp_seconds", "gauge", "When a capture round last ended.");
	fputs("ktape_capture_last_run_timestamp_seconds", f), LABELS(), fprintf(f, " %" PRId64 "\n", kt_wall_ms() / 1000);
	METRIC("ktape_capture_last_success_timestamp_seconds", "gauge",
	       "When a capture last committed a complete snapshot without gaps.");
	fputs("ktape_capture_last_success_timestamp_seconds", f), LABELS(),
		fprintf(f, " %" PRId64 "\n", cli->last_success_s);
	if (s && s->topic_count) {
		METRIC("ktape_capture_topic_records", "gauge", "Records captured per topic by the last round.");
		for (size_t i = 0; i < s->topic_count; i++) {
			fputs("ktape_capture_topic_records{repo=\"", f);
			put_label(f, cli->repo_path);
			fputs("\",topic=\"", f);
			put_label(f, s->topics[i].name);
			fprintf(f, "\"} %" PRIu64 "\n", s->topics[i].records);
		}
	}
#undef LABELS
#undef METRIC
	fclose(f);
	err = kt_write_file_atomic(cli->stats_file, buf, len, 0644, errstr, sizeof(errstr));
	if (err)
		kt_log(&(struct kt_log){ capture_log_fn, cli, KT_LOG_DEBUG }, KT_LOG_WARN,
		       "cannot write the stats file: %s", errstr);
	free(buf);
}

static void on_snapshot(void *opaque, const struct kt_capture_summary *s)
{
	struct capture_cli *cli = opaque;

	cli->records += s->records;
	cli->raw_bytes += s->raw_bytes;
	cli->stored_bytes += s->stored_bytes;
	cli->gap_offsets += s->gap_offsets;
	cli->snapshots++;
	cli->last_duration_s = (double)s->duration_ns / 1e9;
	if (s->partitions_incomplete == 0 && s->gap_offsets == 0)
		cli->last_success_s = s->completed_ms / 1000;
	kt_log(&(struct kt_log){ capture_log_fn, cli, KT_LOG_DEBUG }, KT_LOG_INFO,
	       "snapshot %s: %" PRIu64 " records, %.1f MB raw, %.1f MB stored, %" PRIu32 " partitions%s in %.1f s",
	       s->snapshot_id, s->records, (double)s->raw_bytes / 1e6, (double)s->stored_bytes / 1e6,
	       s->partitions, s->partitions_incomplete ? " (some incomplete)" : "", cli->last_duration_s);
	write_stats(cli, s, s->partitions_incomplete == 0 && s->gap_offsets == 0);
}

static void on_round_error(void *opaque, int err, const char *errstr)
{
	struct capture_cli *cli = opaque;

	(void)err;
	(void)errstr; /* the engine logged it */
	write_stats(cli, NULL, 0);
}

static const char *kind_name(int kind)
{
	return kind == KT_SNAPSHOT_PARTIAL ? "partial" : kind == KT_SNAPSHOT_INCREMENTAL ? "incremental" : "full";
}

static void print_json(const struct kt_capture_summary *s, int rc, const char *error)
{
	json_t *root = json_object(), *topics = json_array();

	for (size_t i = 0; s && i < s->topic_count; i++) {
		const struct kt_capture_topic_summary *t = &s->topics[i];

		json_array_append_new(topics,
			json_pack("{s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:b}", "name", t->name,
				  "partitions", (int)t->partitions, "partitions_incomplete",
				  (int)t->partitions_incomplete, "records", (json_int_t)t->records,
				  "raw_bytes", (json_int_t)t->raw_bytes, "stored_bytes", (json_int_t)t->stored_bytes,
				  "gap_offsets", (json_int_t)t->gap_offsets, "configs_available",
				  t->configs_available));
	}
	json_object_set_new(root, "exit_code", json_integer(rc));
	json_object_set_new(root, "error", error ? json_string(error) : json_null());
	if (s && s->snapshot_id[0]) {
		json_object_set_new(root, "snapshot", json_string(s->snapshot_id));
		json_object_set_new(root, "parent", s->parent_id[0] ? json_string(s->parent_id) : json_null());
		json_object_set_new(root, "kind", json_string(kind_name(s->kind)));
		json_object_set_new(root, "started_ms", json_integer(s->started_ms));
		json_object_set_new(root, "completed_ms", json_integer(s->completed_ms));
		json_object_set_new(root, "duration_seconds", json_real((double)s->duration_ns / 1e9));
		json_object_set_new(root, "records", json_integer((json_int_t)s->records));
		json_object_set_new(root, "raw_bytes", json_integer((json_int_t)s->raw_bytes));
		json_object_set_new(root, "stored_bytes", json_integer((json_int_t)s->stored_bytes));
		json_object_set_new(root, "segments", json_integer((json_int_t)s->segments));
		json_object_set_new(root, "partitions", json_integer(s->partitions));
		json_object_set_new(root, "partitions_incomplete", json_integer(s->partitions_incomplete));
		json_object_set_new(root, "gaps", json_integer((json_int_t)s->gap_count));
		json_object_set_new(root, "gap_offsets", json_integer((json_int_t)s->gap_offsets));
		json_object_set_new(root, "groups", json_integer(s->groups));
		json_object_set_new(root, "configs_available", json_boolean(s->configs_available));
	} else {
		json_object_set_new(root, "snapshot", json_null());
	}
	json_object_set_new(root, "topics", topics);
	json_dumpf(root, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(root);
}

static int parse_uint(const char *text, unsigned long long max, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(text, &end, 10);
	return errno || end == text || *end || *out > max || text[0] == '-' ? KT_EUSAGE : 0;
}

int kt_cli_cmd_capture(int argc, char **argv)
{
	enum {
		OPT_EXCLUDE = 256, OPT_GROUP, OPT_GROUPS, OPT_SEGMENT_SIZE, OPT_BLOCK_SIZE, OPT_IO_BACKEND,
		OPT_MEMORY, OPT_TIMEOUT, OPT_ADMIN_TIMEOUT, OPT_FOLLOW, OPT_INTERVAL, OPT_JSON, OPT_STATS,
		OPT_PROGRESS, OPT_NO_PROGRESS, OPT_MODE, OPT_WORKERS_GROUP,
	};
	static const struct option opts[] = {
		{ "brokers", required_argument, NULL, 'b' },
		{ "repo", required_argument, NULL, 'r' },
		{ "topic", required_argument, NULL, 't' },
		{ "exclude", required_argument, NULL, OPT_EXCLUDE },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "groups", required_argument, NULL, OPT_GROUPS },
		{ "compression", required_argument, NULL, 'z' },
		{ "level", required_argument, NULL, 'l' },
		{ "segment-size", required_argument, NULL, OPT_SEGMENT_SIZE },
		{ "block-size", required_argument, NULL, OPT_BLOCK_SIZE },
		{ "io-backend", required_argument, NULL, OPT_IO_BACKEND },
		{ "threads", required_argument, NULL, 'j' },
		{ "memory", required_argument, NULL, OPT_MEMORY },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "admin-timeout", required_argument, NULL, OPT_ADMIN_TIMEOUT },
		{ "follow", no_argument, NULL, OPT_FOLLOW },
		{ "workers-group", required_argument, NULL, OPT_WORKERS_GROUP },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "stats-file", required_argument, NULL, OPT_STATS },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct capture_cli cli = { 0 };
	struct kt_capture_opts copts;
	struct kt_capture *cap = NULL;
	const struct kt_capture_summary *summary = NULL;
	const char **topics = NULL, **excludes = NULL, **groups = NULL;
	struct kt_log log = { capture_log_fn, &cli, KT_LOG_DEBUG };
	struct sigaction sa, old_int, old_term;
	int c, err, rc = KT_EXIT_FAILURE, json = 0, progress = -1;
	unsigned long long n;
	uint64_t size;
	char errstr[1024];

	pthread_mutex_init(&cli.lock, NULL);
	/* librdkafka frees decompressed batches of a few hundred KiB from
	 * other threads; glibc's sliding mmap threshold would soon keep them
	 * on the heap, where freed memory is not returned, and peak RSS would
	 * grow well past --memory.  A fixed threshold maps them instead; at
	 * 1 MiB rather than 256 KiB the page faults and munmaps of the
	 * smaller batches cost about 5% less CPU, with peak RSS still well
	 * inside the 256 MiB target (bench/RESULTS.md, capture). */
	mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	kt_capture_opts_init(&copts);
	topics = calloc((size_t)argc, sizeof(*topics));
	excludes = calloc((size_t)argc, sizeof(*excludes));
	groups = calloc((size_t)argc, sizeof(*groups));
	if (!topics || !excludes || !groups || kt_sandbox_kconf_create(&cli.kconf)) {
		kt_cli_error("capture", "out of memory");
		goto out;
	}
	while ((c = getopt_long(argc, argv, "b:r:t:X:F:z:l:j:h", opts, NULL)) != -1) {
		int64_t ms;

		err = 0;
		switch (c) {
		case 'b':
			copts.brokers = optarg;
			break;
		case 'r':
			copts.repo_path = optarg;
			break;
		case 't':
			topics[copts.topic_count++] = optarg;
			break;
		case OPT_EXCLUDE:
			excludes[copts.exclude_count++] = optarg;
			break;
		case OPT_GROUP:
			groups[copts.group_count++] = optarg;
			break;
		case OPT_GROUPS:
			copts.groups_regex = optarg;
			break;
		case 'X':
			err = kt_sandbox_kconf_add(cli.kconf, optarg, errstr, sizeof(errstr));
			break;
		case 'F':
			err = kt_sandbox_kconf_add_file(cli.kconf, optarg, errstr, sizeof(errstr));
			break;
		case 'z':
			if (strcmp(optarg, "none") == 0)
				copts.codec = KT_CODEC_NONE;
			else if (strcmp(optarg, "zstd") == 0)
				copts.codec = KT_CODEC_ZSTD;
			else
				err = kt_seterr(errstr, sizeof(errstr), KT_EUSAGE,
						"--compression wants none or zstd, not '%s'", optarg);
			break;
		case 'l': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || end == optarg || v < -7 || v > 22)
				err = kt_seterr(errstr, sizeof(errstr), KT_EUSAGE,
						"--level wants a zstd level from -7 to 22, not '%s'", optarg);
			copts.level = (int)v;
			break;
		}
		case OPT_MODE:
			if (kt_cli_parse_mode("capture", optarg, &copts.repo_mode)) {
				rc = kt_cli_usage_error("capture");
				goto out;
			}
			break;
		case OPT_SEGMENT_SIZE:
		case OPT_BLOCK_SIZE:
		case OPT_MEMORY:
			if (kt_parse_size(optarg, &size) || size == 0) {
				err = kt_seterr(errstr, sizeof(errstr), KT_EUSAGE,
						"%s wants a size such as 64M, not '%s'",
						c == OPT_SEGMENT_SIZE ? "--segment-size" :
						c == OPT_BLOCK_SIZE ? "--block-size" : "--memory", optarg);
				break;
			}
			if (c == OPT_SEGMENT_SIZE)
				copts.segment_size = size;
			else if (c == OPT_BLOCK_SIZE)
				copts.block_size = (size_t)size;
			else
				copts.memory_budget = size;
			break;
		case OPT_IO_BACKEND:
			if (strcmp(optarg, "auto") == 0)
				copts.io_backend = KT_IO_AUTO;
			else if (strcmp(optarg, "uring") == 0 || strcmp(optarg, "io_uring") == 0)
				copts.io_backend = KT_IO_URING;
			else if (strcmp(optarg, "pwrite") == 0)
				copts.io_backend = KT_IO_PWRITE;
			else
				err = kt_seterr(errstr, sizeof(errstr), KT_EUSAGE,
						"--io-backend wants auto, uring or pwrite, not '%s'", optarg);
			break;
		case 'j':
			if (parse_uint(optarg, 256, &n) || n == 0)
				err = kt_seterr(errstr, sizeof(errstr), KT_EUSAGE,
						"--threads wants a number from 1 to 256, not '%s'", optarg);
			copts.threads = (unsigned)n;
			break;
		case OPT_TIMEOUT:
		case OPT_ADMIN_TIMEOUT:
		case OPT_INTERVAL:
			if (kt_parse_duration_ms(optarg, &ms) || ms <= 0) {
				err = kt_seterr(errstr, sizeof(errstr), KT_EUSAGE,
						"%s wants a duration such as 30s, not '%s'",
						c == OPT_TIMEOUT ? "--timeout" :
						c == OPT_ADMIN_TIMEOUT ? "--admin-timeout" : "--interval", optarg);
				break;
			}
			if (c == OPT_TIMEOUT)
				copts.timeout_ms = ms;
			else if (c == OPT_ADMIN_TIMEOUT)
				copts.admin_timeout_ms = ms;
			else
				copts.interval_ms = ms;
			break;
		case OPT_FOLLOW:
			copts.follow = 1;
			break;
		case OPT_WORKERS_GROUP:
			copts.workers_group = optarg;
			break;
		case OPT_JSON:
			json = 1;
			break;
		case OPT_STATS:
			cli.stats_file = optarg;
			break;
		case OPT_PROGRESS:
			progress = 1;
			break;
		case OPT_NO_PROGRESS:
			progress = 0;
			break;
		case 'h':
			capture_usage(stdout);
			rc = KT_EXIT_OK;
			goto out;
		default:
			rc = kt_cli_usage_error("capture");
			goto out;
		}
		if (err) {
			kt_cli_error("capture", "%s", errstr);
			rc = err == KT_EUSAGE ? kt_cli_usage_error("capture") : KT_EXIT_FAILURE;
			goto out;
		}
	}
	if (optind < argc) {
		kt_cli_error("capture", "unexpected argument '%s'", argv[optind]);
		rc = kt_cli_usage_error("capture");
		goto out;
	}
	copts.topics = topics;
	copts.excludes = excludes;
	copts.groups = groups;
	copts.configure = apply_kconf;
	copts.configure_opaque = cli.kconf;
	copts.log = &log;
	copts.opaque = &cli;
	copts.on_snapshot = on_snapshot;
	copts.on_round_error = on_round_error;
	copts.on_progress = on_progress;
	cli.progress_line = progress >= 0 ? progress : isatty(STDERR_FILENO);
	if (cli.progress_line && kt_cli_verbosity < KT_LOG_INFO)
		cli.progress_line = 0;
	/* A live line redraws often; log lines every 10 s are enough in a
	 * log file. */
	copts.progress_interval_ms = cli.progress_line ? 250 : 10000;
	if (kt_cli_verbosity < KT_LOG_INFO)
		copts.on_progress = NULL;
	cli.repo_path = copts.repo_path ? copts.repo_path : "";
	err = kt_capture_create(&cap, &copts, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error("capture", "%s", errstr);
		rc = err == KT_EUSAGE ? kt_cli_usage_error("capture") : kt_cli_exit_for(err);
		goto out;
	}
	if (cli.stats_file)
		cli.last_success_s = previous_last_success(cli.stats_file);
	cli.started_ms = kt_wall_ms();

	/* The first SIGINT/SIGTERM asks for a clean stop; SA_RESETHAND makes
	 * a second one end the process at once. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	capture_running = cap;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	err = kt_capture_run(cap, &summary, errstr, sizeof(errstr));
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	capture_running = NULL;
	pthread_mutex_lock(&cli.lock);
	if (cli.line_shown) {
		fputs("\r\033[K", stderr);
		cli.line_shown = 0;
	}
	pthread_mutex_unlock(&cli.lock);

	rc = kt_cli_exit_for(err);
	if (err == KT_EGAP)
		kt_log(&log, KT_LOG_ERROR, "%s", errstr);
	else if (err == KT_EINTERRUPTED)
		kt_log(&log, KT_LOG_WARN, "%s", errstr);
	else if (err)
		kt_cli_error("capture", "%s", errstr);
	if (err && err != KT_EGAP && err != KT_EINTERRUPTED && (!summary || !summary->snapshot_id[0]))
		write_stats(&cli, NULL, 0);
	if (json)
		print_json(summary && summary->snapshot_id[0] ? summary : NULL, rc, err ? errstr : NULL);
out:
	kt_capture_destroy(cap);
	kt_sandbox_kconf_destroy(cli.kconf);
	free(topics);
	free(excludes);
	free(groups);
	pthread_mutex_destroy(&cli.lock);
	return rc;
}
