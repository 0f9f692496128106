/*
 * ktape restore: put a snapshot back into Kafka, every record exactly once,
 * in its partition, with key, value, headers and CreateTime as captured.
 *
 * The engine (src/replay/kt_replay.h) does the work and keeps the restore
 * record in the repository (format/restore.md); this file turns flags into
 * engine options, shows progress and prints the summary and the consumer
 * group table.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "kt_replay.h"
#include "kt_sandbox.h"

#define CMD "restore"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape restore -b BROKERS -r REPO [options]\n"
		"\n"
		"Writes the records of a snapshot back into a Kafka cluster: each record\n"
		"exactly once, in the partition it came from, with its key, value, headers\n"
		"(order, duplicates and null values kept) and CreateTime.  Missing topics\n"
		"are created with the recorded partition count and configs where the\n"
		"brokers allow it.  A restore keeps a record in REPO/restores/<id>/: rerun\n"
		"the same command after an interruption (even kill -9) and it resumes,\n"
		"skipping what the target already holds.  This is exact only while ktape\n"
		"is the only producer to the target partitions.\n"
		"\n"
		"Source and target:\n"
		"  -b, --brokers LIST         bootstrap servers of the target cluster\n"
		"  -r, --repo DIR             backup repository\n"
		"  -s, --snapshot ID          snapshot to restore (default: latest)\n"
		"  -t, --topic T              a topic name, or a regex when it starts with '^'\n"
		"                             (repeatable; default: every topic of the snapshot)\n"
		"  -x, --exclude T            leave out a name or '^regex' (repeatable)\n"
		"      --map SRC=DST          restore topic SRC into DST (repeatable)\n"
		"      --prefix P             restore every other topic into P<name>\n"
		"  -X NAME=VALUE              librdkafka property (repeatable); batches are\n"
		"                             lz4-compressed unless compression.type is set\n"
		"  -F FILE                    librdkafka properties file (kcat syntax)\n"
		"\n"
		"Window:\n"
		"      --from-time T          first timestamp (ISO-8601 or epoch ms), inclusive\n"
		"      --to-time T            end timestamp, exclusive\n"
		"      --from-offset [[TOPIC:]P:]N   first offset, inclusive (repeatable; a\n"
		"                             plain N applies to every partition, P:N to\n"
		"                             partition P, TOPIC:P:N to one partition)\n"
		"      --to-offset [[TOPIC:]P:]N     end offset, exclusive (repeatable)\n"
		"\n"
		"Placement and rate:\n"
		"      --partitioning preserve|key|random\n"
		"                             preserve: the source partition (default; the\n"
		"                             target must have the recorded partition count);\n"
		"                             key: Java's murmur2 placement of the key onto\n"
		"                             the target's count (null keys round-robin)\n"
		"      --max-rate R           at most R records per second (smooth)\n"
		"      --max-bytes-rate R     at most R bytes per second (K/M/G suffixes)\n"
		"      --replication-factor N cap of the replication factor of created topics\n"
		"      --no-create-topics     refuse missing target topics\n"
		"\n"
		"Resume:\n"
		"      --resume ID            resume restore ID with its recorded plan\n"
		"      --new                  start a new restore even if an earlier one with\n"
		"                             the same arguments exists, an unfinished one\n"
		"                             writes to the same topics, or a finished one of\n"
		"                             the same snapshot filled them (duplicates them)\n"
		"      --state-dir DIR        keep the restore record in DIR instead of\n"
		"                             REPO/restores (FILE.tar.restores for an archive);\n"
		"                             needed for a read-only repository and for\n"
		"                             one on object storage (s3://)\n"
		"      --workers-group NAME   one worker of many (on any hosts) sharing the\n"
		"                             snapshot's partitions through the Kafka consumer\n"
		"                             group NAME over the target topics, which must\n"
		"                             exist; each partition is its own resumable\n"
		"                             restore. Run every worker with the same options\n"
		"                             and --snapshot ID (docs/multi-host.md)\n"
		"\n"
		"Consumer groups:\n"
		"      --group NAME           set group NAME's captured offsets on the target,\n"
		"                             translated so it resumes at the first record it\n"
		"                             had not consumed (repeatable)\n"
		"      --groups REGEX         the same for every group matching\n"
		"      --dry-run              send and commit nothing; print the plan's group\n"
		"                             table (group, topic, partition, source offset,\n"
		"                             target offset) as predicted\n"
		"\n"
		"Output:\n"
		"      --json                 print the summary as one JSON object\n"
		"      --stats-file FILE      keep Prometheus metrics of the run in FILE\n"
		"      --progress / --no-progress\n"
		"                             live progress on stderr (default: on a terminal)\n"
		"      --timeout D            broker round trips (default 10s)\n"
		"  -h, --help                 this help\n"
		"\n"
		"Exit codes: 0 done, 1 failure, 2 usage, 3 damaged backup, 4 done but the\n"
		"snapshot has retention gaps in the range, 5 interrupted (rerun to resume).\n");
}

enum {
	/* Options both restore and replay take: kt_replay_args_apply() parses
	 * them by their long name. */
	OPT_SHARED = 256,
	OPT_RESUME,
	OPT_NEW,
	OPT_STATE_DIR,
	OPT_WORKERS_GROUP,
	OPT_DRY_RUN,
	OPT_JSON,
	OPT_STATS_FILE,
	OPT_PROGRESS,
	OPT_NO_PROGRESS,
};

/* Set before the handler is installed, cleared after it is removed;
 * kt_replay_stop() is async-signal-safe. */
static struct kt_replay *volatile running_restore;

static void on_stop_signal(int sig)
{
	struct kt_replay *rp = running_restore;

	(void)sig;
	if (rp)
		kt_replay_stop(rp);
}

struct restore_view {
	int progress;    /* print a progress line */
	int shown;       /* a progress line is on the terminal */
	const char *stats_file;
	struct kt_replay *rp;
};

/* The Prometheus rendering, written atomically so a scraper never reads
 * half a file. */
static int write_stats(const char *path, const struct kt_replay_summary *summary, int quiet)
{
	char errstr[512], *text = kt_replay_summary_prometheus(summary, KT_REPLAY_MODE_RESTORE);
	int err;

	if (!text)
		return -ENOMEM;
	err = kt_write_file_atomic(path, text, strlen(text), 0644, errstr, sizeof(errstr));
	if (err && !quiet)
		kt_cli_error(CMD, "--stats-file: %s", errstr);
	free(text);
	return err;
}

static void on_progress(void *opaque, const struct kt_replay_progress *p)
{
	struct restore_view *view = opaque;
	uint64_t done = p->records_acked + p->records_skipped;
	double rate = p->elapsed_s > 0 ? (double)p->records_acked / p->elapsed_s : 0;

	/* Metrics during the run too, so a long restore can be watched. */
	if (view->stats_file && view->rp)
		write_stats(view->stats_file, kt_replay_summary(view->rp), 1);
	if (!view->progress)
		return;
	if (p->records_planned)
		fprintf(stderr, "\rktape restore: %" PRIu64 "/%" PRIu64 " records (%.0f%%), %.1f MB, %.0f records/s  ",
			done, p->records_planned, 100.0 * (double)done / (double)p->records_planned,
			(double)p->bytes_sent / 1e6, rate);
	else
		fprintf(stderr, "\rktape restore: %" PRIu64 " records, %.1f MB, %.0f records/s  ", done,
			(double)p->bytes_sent / 1e6, rate);
	view->shown = !p->done;
	if (p->done)
		fputc('\n', stderr);
	fflush(stderr);
}

static int apply_kconf(void *opaque, void *rd_kafka_conf, char *errstr, size_t errstr_size)
{
	return kt_sandbox_kconf_apply(opaque, rd_kafka_conf, errstr, errstr_size);
}

static void print_groups(const struct kt_replay_summary *s, int dry_run)
{
	if (!s->group_commit_count)
		return;
	printf("%s\n", dry_run ? "consumer group offsets (dry run: nothing committed)"
			       : "consumer group offsets committed on the target");
	printf("  %-24s %-24s %9s %14s %14s\n", "GROUP", "TOPIC", "PARTITION", "SOURCE_OFFSET",
	       "TARGET_OFFSET");
	for (size_t i = 0; i < s->group_commit_count; i++) {
		const struct kt_replay_group_commit *c = &s->group_commits[i];

		printf("  %-24s %-24s %9" PRId32 " %14" PRId64 " %14" PRId64 "\n", c->group, c->topic,
		       c->partition, c->source_offset, c->target_offset);
	}
}

static void print_summary(const struct kt_replay_summary *s, const char *brokers, int dry_run)
{
	double secs = s->elapsed_s;

	if (s->already_complete)
		printf("restore %s was already complete: all %" PRIu64 " records are in %s\n",
		       s->restore_id, s->records_skipped, brokers);
	else
		printf("%s %" PRIu64 " records (%.1f MB) of snapshot %s to %s in %.2f s%s%s\n",
		       dry_run ? "would restore" : "restored", s->records_acked,
		       (double)s->bytes_sent / 1e6, s->snapshot_id, brokers, secs,
		       s->restore_id[0] ? ", restore " : "", s->restore_id);
	if (secs > 0 && !dry_run && s->records_acked)
		printf("  %.0f records/s, %.1f MB/s\n", (double)s->records_acked / secs,
		       (double)s->bytes_sent / 1e6 / secs);
	if (s->resumed && !s->already_complete)
		printf("  resumed: %" PRIu64 " records were already in the target and were not sent again\n",
		       s->records_skipped);
	printf("  topics %" PRIu64 ", source partitions %" PRIu64 ", blocks read %" PRIu64 " of %" PRIu64 "\n",
	       s->topics, s->partitions, s->blocks_read, s->blocks_total);
	if (s->timestamps_not_exact)
		printf("  %" PRIu64 " records had LogAppendTime, no timestamp or CreateTime 0: they"
		       " carry a broker- or send-time stamp now (format/restore.md section 6)\n",
		       s->timestamps_not_exact);
	if (s->gaps)
		printf("  %" PRIu64 " retention gaps in the range: %" PRIu64 " offsets were deleted by"
		       " Kafka before they were captured and are not in the backup\n", s->gaps,
		       s->gap_offsets);
	print_groups(s, dry_run);
}

static struct kt_replay_workers *volatile running_workers;

static void on_workers_signal(int sig)
{
	(void)sig;
	if (running_workers)
		kt_replay_workers_stop(running_workers);
}

/* restore --workers-group: this process is one of the workers sharing the
 * snapshot's partitions (src/replay/workers.c). */
static int run_workers(struct kt_replay_opts *opts, const char *group)
{
	struct kt_replay_workers *workers = NULL;
	const struct kt_replay_workers_summary *s;
	char errstr[1024];
	int err, rc;

	opts->progress = NULL;
	err = kt_replay_workers_create(&workers, opts, group, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error(CMD, "%s", errstr);
		return err == KT_EUSAGE ? kt_cli_usage_error(CMD) : kt_cli_exit_for(err);
	}
	running_workers = workers;
	kt_cli_stop_signals(on_workers_signal);
	err = kt_replay_workers_run(workers, errstr, sizeof(errstr));
	kt_cli_stop_signals(SIG_DFL);
	running_workers = NULL;
	s = kt_replay_workers_summary(workers);
	if (err)
		kt_cli_error(CMD, "%s", errstr);
	else
		printf("snapshot %s: all %" PRIu64 " partitions restored by workers group %s; this worker restored %"
		       PRIu64 " (%" PRIu64 " records sent, %" PRIu64 " found already there, %" PRIu64
		       " group offsets committed)\n", s->snapshot_id, s->partitions, group, s->partitions_run,
		       s->records_sent, s->records_skipped, s->group_commits);
	rc = err ? kt_cli_exit_for(err) : s->gaps ? KT_EXIT_GAP : KT_EXIT_OK;
	kt_replay_workers_destroy(workers);
	return rc;
}

int kt_cli_cmd_restore(int argc, char **argv)
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
		{ "partitioning", required_argument, NULL, OPT_SHARED },
		{ "max-rate", required_argument, NULL, OPT_SHARED },
		{ "max-bytes-rate", required_argument, NULL, OPT_SHARED },
		{ "replication-factor", required_argument, NULL, OPT_SHARED },
		{ "no-create-topics", no_argument, NULL, OPT_SHARED },
		{ "group", required_argument, NULL, OPT_SHARED },
		{ "groups", required_argument, NULL, OPT_SHARED },
		{ "timeout", required_argument, NULL, OPT_SHARED },
		{ "resume", required_argument, NULL, OPT_RESUME },
		{ "new", no_argument, NULL, OPT_NEW },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "workers-group", required_argument, NULL, OPT_WORKERS_GROUP },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "stats-file", required_argument, NULL, OPT_STATS_FILE },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kt_replay_opts opts;
	struct kt_replay *rp = NULL;
	struct kt_replay_args *args = NULL;
	struct kt_sandbox_kconf *kconf = NULL;
	struct restore_view view = { .progress = -1 };
	int json = 0, c, idx, rc = KT_EXIT_USAGE, err;
	const char *workers_group = NULL;
	char errstr[1024];

	kt_replay_opts_init(&opts, KT_REPLAY_MODE_RESTORE);
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
		case OPT_RESUME:
			/* The id names a directory under REPO/restores: a path
			 * must not lead the resume outside the repository. */
			if (!*optarg || optarg[0] == '.' || strchr(optarg, '/')) {
				kt_cli_error(CMD, "--resume '%s' is not a restore id", optarg);
				goto usage;
			}
			opts.resume_id = optarg;
			break;
		case OPT_NEW:
			opts.force_new = 1;
			break;
		case OPT_STATE_DIR:
			opts.state_dir = optarg;
			break;
		case OPT_WORKERS_GROUP:
			workers_group = optarg;
			break;
		case OPT_DRY_RUN:
			opts.dry_run = 1;
			break;
		case OPT_JSON:
			json = 1;
			break;
		case OPT_STATS_FILE:
			view.stats_file = optarg;
			break;
		case OPT_PROGRESS:
		case OPT_NO_PROGRESS:
			view.progress = c == OPT_PROGRESS;
			break;
		case 'X':
		case 'F':
			err = c == 'X' ? kt_sandbox_kconf_add(kconf, optarg, errstr, sizeof(errstr))
				       : kt_sandbox_kconf_add_file(kconf, optarg, errstr, sizeof(errstr));
			if (err) {
				kt_cli_error(CMD, "%s", errstr);
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
		kt_cli_error(CMD, "%s is required", !opts.repo_path ? "--repo" : "--brokers");
		goto usage;
	}
	/* A repository on object storage keeps no restore records
	 * (docs/object-storage.md): they need a local directory. */
	if (!opts.state_dir && strncmp(opts.repo_path, "s3://", 5) == 0) {
		kt_cli_error(CMD, "repository %s is on object storage, which keeps no restore records: "
			     "give --state-dir DIR, a local directory for this restore's record "
			     "(rerun with the same DIR to resume)", opts.repo_path);
		rc = KT_EXIT_USAGE;
		goto out;
	}
	opts.conf_apply = apply_kconf;
	opts.conf_opaque = kconf;
	if (view.progress < 0)
		view.progress = isatty(STDERR_FILENO) && kt_cli_verbosity >= KT_LOG_INFO && !json;
	opts.progress = on_progress;
	opts.progress_opaque = &view;
	if (workers_group) {
		if (json || view.stats_file) {
			kt_cli_error(CMD, "--json and --stats-file are not supported with --workers-group");
			goto usage;
		}
		rc = run_workers(&opts, workers_group);
		goto out;
	}

	err = kt_replay_create(&rp, &opts, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error(CMD, "%s", errstr);
		rc = kt_cli_exit_for(err);
		goto out;
	}
	view.rp = rp;
	running_restore = rp;
	kt_cli_stop_signals(on_stop_signal);
	err = kt_replay_run(rp, errstr, sizeof(errstr));
	kt_cli_stop_signals(SIG_DFL);
	running_restore = NULL;
	if (view.shown)
		fputc('\n', stderr);

	const struct kt_replay_summary *summary = kt_replay_summary(rp);

	if (err)
		kt_cli_error(CMD, "%s", errstr);
	if (json) {
		char *text = kt_replay_summary_json(summary, KT_REPLAY_MODE_RESTORE);

		if (text)
			printf("%s\n", text);
		free(text);
	} else if (!err && (kt_cli_verbosity >= KT_LOG_INFO || opts.dry_run)) {
		/* -q: errors only; a dry run's table is what was asked for. */
		print_summary(summary, opts.brokers, opts.dry_run);
	}
	rc = kt_cli_exit_for(err);
	if (!err && summary->gaps)
		rc = KT_EXIT_GAP;
	if (view.stats_file && write_stats(view.stats_file, summary, 0) && rc == KT_EXIT_OK)
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
