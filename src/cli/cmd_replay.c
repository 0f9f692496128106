/*
 * ktape replay: send a window of a backup into other topics or clusters as
 * test traffic, on the original timeline times a speed factor or as fast as
 * a rate limit allows.
 *
 * The same engine as `ktape restore` (src/replay/kt_replay.h) in its replay
 * mode: nothing is recorded in the repository, so a replay is not resumed,
 * and the defaults favour realistic traffic (--pace original) over an exact
 * copy.  This file only turns flags into engine options, shows progress and
 * prints the summary.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "kt_replay.h"
#include "kt_sandbox.h"

#define CMD "replay"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape replay -b BROKERS -r REPO [options]\n"
		"\n"
		"Sends the records of a backup snapshot (or a window of it) to a Kafka\n"
		"cluster as test traffic: on the original timeline divided by --speed, or\n"
		"as fast as the rate limits allow.  Keys, values and headers are sent as\n"
		"recorded; timestamps as --timestamps says.  Nothing is written to the\n"
		"repository.  Ctrl-C stops cleanly after what is in flight is acknowledged\n"
		"(a second Ctrl-C kills at once).\n"
		"\n"
		"Source and target:\n"
		"  -b, --brokers LIST         bootstrap servers of the target cluster\n"
		"  -r, --repo DIR             backup repository\n"
		"  -s, --snapshot ID          snapshot to replay (default: latest)\n"
		"  -t, --topic T              a topic name, or a regex when it starts with '^'\n"
		"                             (repeatable; default: every topic of the snapshot)\n"
		"  -x, --exclude T            leave out a name or '^regex' (repeatable)\n"
		"      --map SRC=DST          send topic SRC to DST (repeatable)\n"
		"      --prefix P             send every other topic to P<name>\n"
		"  -X NAME=VALUE              librdkafka producer property (repeatable);\n"
		"                             batches are lz4-compressed unless\n"
		"                             compression.type is set\n"
		"  -F FILE                    librdkafka properties file (kcat syntax)\n"
		"\n"
		"Window:\n"
		"      --from-time T          first timestamp (ISO-8601 or epoch ms), inclusive\n"
		"      --to-time T            end timestamp, exclusive\n"
		"      --from-offset [[TOPIC:]P:]N   first offset, inclusive (repeatable)\n"
		"      --to-offset [[TOPIC:]P:]N     end offset, exclusive (repeatable)\n"
		"\n"
		"Pace and shape:\n"
		"      --pace original|none   original: one timeline over all partitions,\n"
		"                             each record at its recorded offset in time from\n"
		"                             the first, divided by --speed (default);\n"
		"                             none: as fast as the limits allow\n"
		"      --speed X              time compression of --pace original (default 1;\n"
		"                             10 = ten times faster, 0.5 = half speed)\n"
		"      --max-gap D            shorten recorded silences longer than D (e.g.\n"
		"                             5s, 1m) to D, before --speed applies\n"
		"      --timestamps keep|shift|now\n"
		"                             keep the recorded CreateTime (default), shift\n"
		"                             them all so the first is now (gaps kept), or\n"
		"                             stamp each record when it is sent\n"
		"      --loop N               replay the window N times (default 1)\n"
		"      --partitioning preserve|key|random\n"
		"                             the source partition (default), Java's murmur2\n"
		"                             placement of the key, or uniformly at random\n"
		"      --seed N               seed of --partitioning random\n"
		"      --max-rate R           at most R records per second (smooth)\n"
		"      --max-bytes-rate R     at most R bytes per second (K/M/G suffixes)\n"
		"\n"
		"Topics:\n"
		"      --replication-factor N cap of the replication factor of created topics\n"
		"      --no-create-topics     refuse missing target topics instead of\n"
		"                             creating them\n"
		"\n"
		"Output:\n"
		"      --json                 print the summary as one JSON object\n"
		"      --stats-file FILE      write the summary as Prometheus metrics\n"
		"      --progress / --no-progress\n"
		"                             live progress on stderr (default: when it is\n"
		"                             a terminal)\n"
		"      --timeout D            broker round trips (default 10s)\n"
		"  -h, --help                 this help\n"
		"\n"
		"Exit codes: 0 done, 1 failure, 2 usage, 3 damaged backup, 5 interrupted.\n");
}

enum {
	/* Options restore and replay share: kt_replay_args_apply() parses
	 * them by their long name. */
	OPT_SHARED = 256,
	OPT_PACE,
	OPT_SPEED,
	OPT_MAX_GAP,
	OPT_TIMESTAMPS,
	OPT_LOOP,
	OPT_SEED,
	OPT_JSON,
	OPT_STATS_FILE,
	OPT_PROGRESS,
	OPT_NO_PROGRESS,
};

/* The engine being run, for the signal handler.  kt_replay_stop() is
 * async-signal-safe; the pointer is set before the handler is installed and
 * cleared after it is removed. */
static struct kt_replay *volatile running_replay;

static void on_stop_signal(int sig)
{
	struct kt_replay *rp = running_replay;

	if (rp)
		kt_replay_stop(rp);
	/* A second Ctrl-C is the operator insisting: let it kill. */
	signal(sig, SIG_DFL);
}

/* Matches text against a list of words; returns the index or -1. */
static int pick(const char *text, const char *const *words, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(text, words[i]) == 0)
			return (int)i;
	return -1;
}

/* A positive, finite decimal number ("10", "0.5", "2e3"). */
static int parse_positive(const char *text, double *out)
{
	double v;

	if (kt_parse_double(text, &v) || !(v > 0))
		return KT_EUSAGE;
	*out = v;
	return 0;
}

struct progress_view {
	int enabled;
	int shown; /* a progress line is on the terminal */
};

static void on_progress(void *opaque, const struct kt_replay_progress *progress)
{
	struct progress_view *view = opaque;
	double rate = progress->elapsed_s > 0 ? (double)progress->records_acked / progress->elapsed_s : 0;

	if (!view->enabled)
		return;
	if (progress->records_planned)
		fprintf(stderr, "\rktape replay: %" PRIu64 "/%" PRIu64 " records (%.0f%%), %.1f MB, %.0f records/s  ",
			progress->records_acked, progress->records_planned,
			100.0 * (double)progress->records_acked / (double)progress->records_planned,
			(double)progress->bytes_sent / 1e6, rate);
	else
		fprintf(stderr, "\rktape replay: %" PRIu64 " records, %.1f MB, %.0f records/s  ",
			progress->records_acked, (double)progress->bytes_sent / 1e6, rate);
	view->shown = 1;
	if (progress->done) {
		fputc('\n', stderr);
		view->shown = 0;
	}
	fflush(stderr);
}

static void print_summary(const struct kt_replay_summary *summary, const char *brokers,
			  int interrupted)
{
	double secs = summary->elapsed_s > 0 ? summary->elapsed_s : 0;

	printf("%s %" PRIu64 " records (%" PRIu64 " bytes) of snapshot %s to %s in %.2f s",
	       interrupted ? "interrupted after sending" : "replayed", summary->records_acked,
	       summary->bytes_sent, summary->snapshot_id, brokers, secs);
	if (secs > 0)
		printf(" (%.0f records/s, %.1f MB/s)", (double)summary->records_acked / secs,
		       (double)summary->bytes_sent / 1e6 / secs);
	printf("\n");
	printf("  topics %" PRIu64 ", source partitions %" PRIu64 ", blocks read %" PRIu64 " of %" PRIu64 "\n",
	       summary->topics, summary->partitions, summary->blocks_read, summary->blocks_total);
	if (summary->records_sent != summary->records_acked)
		printf("  %" PRIu64 " records were handed to the producer but not acknowledged\n",
		       summary->records_sent - summary->records_acked);
	if (summary->gaps)
		printf("  %" PRIu64 " retention gaps inside the window (%" PRIu64 " offsets were never captured)\n",
		       summary->gaps, summary->gap_offsets);
}

/* The engine's hook for -X and -F: the same parsing, order and
 * secret-safe messages as every other broker-facing command. */
static int apply_kconf(void *opaque, void *rd_kafka_conf, char *errstr, size_t errstr_size)
{
	return kt_sandbox_kconf_apply(opaque, rd_kafka_conf, errstr, errstr_size);
}

/* Writes the Prometheus rendering of the summary atomically, so a scraper
 * never reads half a file. */
static int write_stats_file(const char *path, const struct kt_replay_summary *summary)
{
	char errstr[512];
	char *text = kt_replay_summary_prometheus(summary, KT_REPLAY_MODE_REPLAY);
	int err;

	if (!text) {
		kt_cli_error(CMD, "out of memory rendering --stats-file");
		return -ENOMEM;
	}
	err = kt_write_file_atomic(path, text, strlen(text), 0644, errstr, sizeof(errstr));
	if (err)
		kt_cli_error(CMD, "--stats-file %s: %s", path, errstr);
	free(text);
	return err;
}

/* The stats file is written after the run; a directory it cannot be
 * written into is found now, before anything is sent, rather than after a
 * whole replay.  Returns 0, or -errno with the message printed. */
static int check_stats_dir(const char *path)
{
	char *copy = strdup(path);
	const char *dir;
	int err = 0;

	if (!copy) {
		kt_cli_error(CMD, "out of memory");
		return -ENOMEM;
	}
	dir = dirname(copy);
	if (access(dir, W_OK | X_OK) < 0) {
		err = -errno;
		kt_cli_error(CMD, "--stats-file %s: cannot write into directory %s: %s", path, dir,
			     strerror(errno));
	}
	free(copy);
	return err;
}

int kt_cli_cmd_replay(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "brokers", required_argument, NULL, 'b' },
		{ "repo", required_argument, NULL, 'r' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "topic", required_argument, NULL, 't' },
		{ "exclude", required_argument, NULL, 'x' },
		{ "map", required_argument, NULL, OPT_SHARED },
		{ "prefix", required_argument, NULL, OPT_SHARED },
		{ "from-time", required_argument, NULL, OPT_SHARED },
		{ "to-time", required_argument, NULL, OPT_SHARED },
		{ "from-offset", required_argument, NULL, OPT_SHARED },
		{ "to-offset", required_argument, NULL, OPT_SHARED },
		{ "pace", required_argument, NULL, OPT_PACE },
		{ "speed", required_argument, NULL, OPT_SPEED },
		{ "max-gap", required_argument, NULL, OPT_MAX_GAP },
		{ "timestamps", required_argument, NULL, OPT_TIMESTAMPS },
		{ "loop", required_argument, NULL, OPT_LOOP },
		{ "partitioning", required_argument, NULL, OPT_SHARED },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "max-rate", required_argument, NULL, OPT_SHARED },
		{ "max-bytes-rate", required_argument, NULL, OPT_SHARED },
		{ "replication-factor", required_argument, NULL, OPT_SHARED },
		{ "no-create-topics", no_argument, NULL, OPT_SHARED },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "stats-file", required_argument, NULL, OPT_STATS_FILE },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "timeout", required_argument, NULL, OPT_SHARED },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const paces[] = { "none", "original" };
	static const char *const stamps[] = { "keep", "shift", "now" };
	struct kt_replay_opts opts;
	struct kt_replay *rp = NULL;
	struct kt_sandbox_kconf *kconf = NULL;
	struct progress_view view = { .enabled = -1 };
	struct kt_replay_args *args = NULL;
	const char *stats_file = NULL;
	int json = 0, c, idx = 0, rc = KT_EXIT_USAGE, err;
	char errstr[1024];
	uint64_t u64;

	kt_replay_opts_init(&opts, KT_REPLAY_MODE_REPLAY);
	/* Replay's own defaults: traffic on its recorded timeline. */
	opts.pace = KT_REPLAY_PACE_ORIGINAL;
	opts.speed = 1.0;
	opts.log = &kt_cli_log;

	if (kt_replay_args_create(&args, &opts, argc) || kt_sandbox_kconf_create(&kconf)) {
		kt_cli_error(CMD, "out of memory");
		rc = KT_EXIT_FAILURE;
		goto out;
	}

	while ((c = getopt_long(argc, argv, "b:r:s:t:x:X:F:h", longopts, &idx)) != -1) {
		switch (c) {
		case 'b':
			opts.brokers = optarg;
			break;
		case 'r':
			opts.repo_path = optarg;
			break;
		case 's':
			opts.snapshot_id = optarg;
			break;
		case 't':
		case 'x':
		case OPT_SHARED:
			err = kt_replay_args_apply(args, c == 't' ? "topic" : c == 'x' ? "exclude" :
						   longopts[idx].name, optarg, errstr, sizeof(errstr));
			if (err < 0)
				kt_cli_error(CMD, "%s", errstr);
			if (err <= 0)
				goto usage;
			break;
		case OPT_PACE:
			opts.pace = pick(optarg, paces, 2);
			if (opts.pace < 0) {
				kt_cli_error(CMD, "--pace '%s': expected original or none", optarg);
				goto usage;
			}
			opts.pace = opts.pace == 1 ? KT_REPLAY_PACE_ORIGINAL : KT_REPLAY_PACE_NONE;
			break;
		case OPT_SPEED:
			if (parse_positive(optarg, &opts.speed)) {
				kt_cli_error(CMD, "--speed '%s': expected a positive number (10 = ten times faster)",
					     optarg);
				goto usage;
			}
			break;
		case OPT_MAX_GAP:
			if (kt_parse_duration_ms(optarg, &opts.max_gap_ms) || opts.max_gap_ms <= 0) {
				kt_cli_error(CMD, "--max-gap '%s': expected a positive duration (500ms, 5s, 1m)",
					     optarg);
				goto usage;
			}
			break;
		case OPT_TIMESTAMPS:
			opts.timestamps = pick(optarg, stamps, 3);
			if (opts.timestamps < 0) {
				kt_cli_error(CMD, "--timestamps '%s': expected keep, shift or now", optarg);
				goto usage;
			}
			opts.timestamps = opts.timestamps == 0 ? KT_REPLAY_TS_KEEP :
					  opts.timestamps == 1 ? KT_REPLAY_TS_SHIFT : KT_REPLAY_TS_NOW;
			break;
		case OPT_LOOP:
			if (kt_parse_u64(optarg, UINT32_MAX, &u64) || u64 == 0) {
				kt_cli_error(CMD, "--loop '%s': expected a count of at least 1", optarg);
				goto usage;
			}
			opts.loops = (unsigned)u64;
			break;
		case OPT_SEED:
			if (kt_parse_u64(optarg, UINT64_MAX, &opts.seed)) {
				kt_cli_error(CMD, "--seed '%s': expected a non-negative integer", optarg);
				goto usage;
			}
			break;
		case OPT_JSON:
			json = 1;
			break;
		case OPT_STATS_FILE:
			stats_file = optarg;
			break;
		case OPT_PROGRESS:
			view.enabled = 1;
			break;
		case OPT_NO_PROGRESS:
			view.enabled = 0;
			break;
		case 'X':
			if (kt_sandbox_kconf_add(kconf, optarg, errstr, sizeof(errstr))) {
				kt_cli_error(CMD, "-X: %s", errstr);
				goto usage;
			}
			break;
		case 'F':
			if (kt_sandbox_kconf_add_file(kconf, optarg, errstr, sizeof(errstr))) {
				kt_cli_error(CMD, "-F: %s", errstr);
				goto usage;
			}
			break;
		case 'h':
			usage(stdout);
			rc = KT_EXIT_OK;
			goto out;
		default:
			goto usage;
		}
	}
	if (optind < argc) {
		kt_cli_error(CMD, "unexpected argument '%s'", argv[optind]);
		goto usage;
	}
	if (!opts.brokers || !opts.repo_path) {
		kt_cli_error(CMD, "%s", !opts.repo_path ? "--repo is required" : "--brokers is required");
		goto usage;
	}
	if (opts.from_time != INT64_MIN && opts.to_time != INT64_MAX && opts.from_time >= opts.to_time) {
		kt_cli_error(CMD, "--from-time must be earlier than --to-time");
		goto usage;
	}
	if (stats_file && check_stats_dir(stats_file))
		goto usage;
	if (opts.pace == KT_REPLAY_PACE_NONE && (opts.max_gap_ms > 0 || opts.speed != 1.0))
		kt_log(&kt_cli_log, KT_LOG_WARN, "--speed and --max-gap only apply with --pace original");
	opts.conf_apply = apply_kconf;
	opts.conf_opaque = kconf;

	if (view.enabled < 0)
		view.enabled = isatty(STDERR_FILENO) && kt_cli_verbosity >= KT_LOG_INFO;
	opts.progress = on_progress;
	opts.progress_opaque = &view;

	err = kt_replay_create(&rp, &opts, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error(CMD, "%s", errstr);
		rc = kt_cli_exit_for(err);
		goto out;
	}

	running_replay = rp;
	kt_cli_stop_signals(on_stop_signal);
	err = kt_replay_run(rp, errstr, sizeof(errstr));
	kt_cli_stop_signals(SIG_DFL);
	running_replay = NULL;
	if (view.shown)
		fputc('\n', stderr);

	const struct kt_replay_summary *summary = kt_replay_summary(rp);
	if (err && err != KT_EINTERRUPTED)
		kt_cli_error(CMD, "%s", errstr);
	if (json) {
		char *text = kt_replay_summary_json(summary, KT_REPLAY_MODE_REPLAY);
		if (text) {
			printf("%s\n", text);
			free(text);
		}
	} else if ((!err || err == KT_EINTERRUPTED) && kt_cli_verbosity >= KT_LOG_INFO) {
		print_summary(summary, opts.brokers, err == KT_EINTERRUPTED);
	}
	rc = kt_cli_exit_for(err);
	if (stats_file && write_stats_file(stats_file, summary) && rc == KT_EXIT_OK)
		rc = KT_EXIT_FAILURE;
	goto out;

usage:
	rc = kt_cli_usage_error(CMD);
out:
	kt_replay_destroy(rp);
	kt_sandbox_kconf_destroy(kconf);
	kt_replay_args_destroy(args);
	return rc;
}
