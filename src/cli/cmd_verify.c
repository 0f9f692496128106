/* ktape verify: check a repository's snapshots without Kafka. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kt_store.h"

static void verify_usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape verify -r REPO [--snapshot ID]... [--all] [--repair] [--threads N] [--json]\n"
		"\n"
		"Checks every block checksum and record of the snapshots' segments, each\n"
		"segment against its manifest entry and index, and each partition's offset\n"
		"continuity. Works without Kafka.\n"
		"\n"
		"  -r, --repo REPO     the backup repository\n"
		"  -s, --snapshot ID   a snapshot to verify (repeatable; default: the latest)\n"
		"  -a, --all           verify every snapshot\n"
		"      --repair        rebuild missing or damaged index files from their segments\n"
		"  -j, --threads N     worker threads (default: one per core)\n"
		"      --json          print a JSON report on stdout\n"
		"\n"
		"Exit codes: 0 clean, 3 damaged (every problem is listed), 1 verification\n"
		"could not run, 2 usage.\n");
}

struct verify_out {
	int json;
	json_t *problems;
};

static void on_problem(void *opaque, const struct kt_store_verify_problem *p)
{
	struct verify_out *vo = opaque;

	if (vo->json) {
		json_t *ids = json_array();

		for (size_t i = 0; i < p->snapshots_affected; i++)
			json_array_append_new(ids, json_string(p->snapshot_ids[i]));
		json_array_append_new(vo->problems,
			json_pack("{s:s, s:I, s:o, s:s, s:i, s:s, s:I, s:I, s:I, s:s, s:s}",
				  "snapshot", p->snapshot, "snapshots_affected", (json_int_t)p->snapshots_affected,
				  "snapshots", ids,
				  "topic", p->topic ? p->topic : "", "partition", p->partition,
				  "path", p->path ? p->path : "", "block", (json_int_t)p->block,
				  "file_offset", (json_int_t)p->file_offset,
				  "records_affected", (json_int_t)p->records_affected,
				  "error", kt_strerror(p->code), "message", p->message));
		return;
	}
	if (p->partition >= 0)
		fprintf(stderr, "ktape verify: DAMAGED %s/%d %s", p->topic ? p->topic : "", p->partition,
			p->path && *p->path ? p->path : "(partition)");
	else /* the manifest itself */
		fprintf(stderr, "ktape verify: DAMAGED %s", p->path);
	if (p->block >= 0)
		fprintf(stderr, " block %lld at byte %llu", (long long)p->block, (unsigned long long)p->file_offset);
	fprintf(stderr, ": %s", p->message);
	if (p->records_affected)
		fprintf(stderr, "; %llu record(s) lost", (unsigned long long)p->records_affected);
	/* Which snapshots lose the records: a few by name, newest first. */
	fprintf(stderr, " [snapshot%s", p->snapshots_affected > 1 ? "s" : "");
	for (size_t i = 0; i < p->snapshots_affected && i < 4; i++)
		fprintf(stderr, "%s %s", i ? "," : "", p->snapshot_ids[i]);
	if (p->snapshots_affected > 4)
		fprintf(stderr, " and %zu more", p->snapshots_affected - 4);
	fprintf(stderr, "]\n");
}

int kt_cli_cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "all", no_argument, NULL, 'a' },
		{ "repair", no_argument, NULL, 'R' },
		{ "threads", required_argument, NULL, 'j' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kt_store_verify_opts vopts = { 0 };
	struct kt_store_verify_result res;
	struct verify_out vo = { 0, NULL };
	struct kt_store_repo *repo = NULL;
	const char *repo_path = NULL;
	char **ids = NULL, *latest[1] = { (char *)"latest" };
	size_t id_count = 0;
	int all = 0, c, err, rc = KT_EXIT_FAILURE;
	char errstr[1024] = "";

	ids = calloc((size_t)argc, sizeof(*ids));
	if (!ids)
		return KT_EXIT_FAILURE;
	while ((c = getopt_long(argc, argv, "r:s:aj:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			repo_path = optarg;
			break;
		case 's':
			ids[id_count++] = optarg;
			break;
		case 'a':
			all = 1;
			break;
		case 'R':
			vopts.repair = 1;
			break;
		case 'j': {
			uint64_t n;
			if (kt_parse_u64(optarg, 1024, &n) || n < 1) {
				kt_cli_error("verify", "--threads wants a number from 1 to 1024, not '%s'", optarg);
				rc = kt_cli_usage_error("verify");
				goto out;
			}
			vopts.threads = (unsigned)n;
			break;
		}
		case 'J':
			vo.json = 1;
			break;
		case 'h':
			verify_usage(stdout);
			rc = KT_EXIT_OK;
			goto out;
		default:
			rc = kt_cli_usage_error("verify");
			goto out;
		}
	}
	if (optind < argc) {
		kt_cli_error("verify", "unexpected argument '%s'", argv[optind]);
		rc = kt_cli_usage_error("verify");
		goto out;
	}
	if (!repo_path || (all && id_count)) {
		kt_cli_error("verify", !repo_path ? "-r REPO is required" : "--all and --snapshot exclude each other");
		rc = kt_cli_usage_error("verify");
		goto out;
	}
	err = kt_store_repo_open(&repo, repo_path, 0, 0, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error("verify", "%s", errstr);
		rc = kt_cli_exit_for(err);
		goto out;
	}
	if (vo.json)
		vo.problems = json_array();
	vopts.log = &kt_cli_log;
	vopts.on_problem = on_problem;
	vopts.opaque = &vo;
	err = kt_store_repo_verify(repo, all ? NULL : id_count ? ids : latest, all ? 0 : id_count ? id_count : 1,
				   &vopts, &res, errstr, sizeof(errstr));
	/* KT_ECORRUPT with no problem reported is a manifest that cannot be
	 * read at all: errstr names it, and a summary of zeros would not. */
	if (err && (err != KT_ECORRUPT || res.problems == 0)) {
		kt_cli_error("verify", "%s", errstr);
		rc = kt_cli_exit_for(err);
		goto out;
	}
	double mbps = res.seconds > 0 ? (double)res.raw_bytes / 1e6 / res.seconds : 0;
	if (vo.json) {
		json_t *root = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:o}",
					 "status", err ? "damaged" : "clean",
					 "snapshots", (json_int_t)res.snapshots, "segments", (json_int_t)res.segments,
					 "blocks", (json_int_t)res.blocks, "records", (json_int_t)res.records,
					 "stored_bytes", (json_int_t)res.stored_bytes, "raw_bytes", (json_int_t)res.raw_bytes,
					 "problems", (json_int_t)res.problems,
					 "records_affected", (json_int_t)res.records_affected,
					 "indexes_repaired", (json_int_t)res.indexes_repaired,
					 "seconds", res.seconds, "raw_mb_per_s", mbps, "problem_list", vo.problems);
		vo.problems = NULL;
		json_dumpf(root, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(root);
	} else if (err || kt_cli_verbosity >= KT_LOG_INFO) {
		/* -q keeps the summary only when it reports damage. */
		fprintf(stderr, "ktape verify: %llu snapshot(s), %llu segment(s), %llu block(s), %llu record(s), %.1f MB in %.2f s (%.0f MB/s): %s",
			(unsigned long long)res.snapshots, (unsigned long long)res.segments,
			(unsigned long long)res.blocks, (unsigned long long)res.records,
			(double)res.raw_bytes / 1e6, res.seconds, mbps,
			err ? "DAMAGED" : "clean");
		if (err)
			fprintf(stderr, ", %llu problem(s), %llu record(s) affected",
				(unsigned long long)res.problems, (unsigned long long)res.records_affected);
		if (res.indexes_repaired)
			fprintf(stderr, ", %llu index(es) rebuilt", (unsigned long long)res.indexes_repaired);
		fputc('\n', stderr);
	}
	rc = err ? KT_EXIT_DAMAGED : KT_EXIT_OK;
out:
	json_decref(vo.problems);
	kt_store_repo_destroy(repo);
	free(ids);
	return rc;
}
