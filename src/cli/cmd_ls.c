/* ktape ls: the snapshots of a repository, newest first, with what each
 * holds and how well it compressed. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kt_store.h"

static void ls_usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape ls -r REPO [--json]\n"
		"\n"
		"Lists the snapshots of a repository, newest first: id, commit time,\n"
		"kind (full, incremental or partial), topics, records, bytes stored and\n"
		"the compression ratio (raw record bytes / stored segment bytes).\n"
		"Records and bytes are those of the whole chain a restore would read.\n"
		"\n"
		"  -r, --repo REPO   the backup repository\n"
		"      --json        print a JSON array on stdout\n"
		"\n"
		"Exit codes: 0 ok, 3 a manifest is damaged (it is listed with its\n"
		"error, the others are still shown), 1 failure, 2 usage.\n");
}

void kt_cli_format_bytes(uint64_t n, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%" PRIu64 " B", n);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
}

/* Totals of one snapshot over every partition and segment it references. */
struct ls_totals {
	uint64_t partitions, records, raw_bytes, stored_bytes;
};

static void totals_of(const struct kt_store_snapshot *snap, struct ls_totals *t)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < snap->topic_count; i++) {
		const struct kt_store_topic *topic = &snap->topics[i];
		t->partitions += topic->n_partitions;
		for (size_t p = 0; p < topic->n_partitions; p++) {
			const struct kt_store_partition *part = &topic->partitions[p];
			t->records += part->records;
			t->raw_bytes += part->raw_bytes;
			for (size_t s = 0; s < part->segment_count; s++)
				t->stored_bytes += part->segments[s].file_size;
		}
	}
}

int kt_cli_repo_args(const char *cmd, int argc, char **argv, void (*usage)(FILE *out),
		     int max_args, const char **repo_path, int *json)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*repo_path = NULL;
	*json = 0;
	/* optind 0 makes glibc start getopt afresh: with the 1 that main()
	 * leaves, it keeps main's '+' (stop at the first argument) and would
	 * not see an option after SNAPSHOT, as in `show -r R ID --json`. */
	optind = 0;
	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			*repo_path = optarg;
			break;
		case 'J':
			*json = 1;
			break;
		case 'h':
			usage(stdout);
			return KT_EXIT_OK;
		default:
			return kt_cli_usage_error(cmd);
		}
	}
	if (argc - optind > max_args) {
		kt_cli_error(cmd, "unexpected argument '%s'", argv[optind + max_args]);
		return kt_cli_usage_error(cmd);
	}
	if (!*repo_path) {
		kt_cli_error(cmd, "-r REPO is required");
		return kt_cli_usage_error(cmd);
	}
	return -1;
}

const char *kt_cli_snapshot_kind_name(int kind)
{
	static const char *const names[] = { "full", "incremental", "partial" };

	return kind >= 0 && kind < 3 ? names[kind] : "unknown";
}

int kt_cli_cmd_ls(int argc, char **argv)
{
	struct kt_store_repo *repo = NULL;
	const char *repo_path;
	char **ids = NULL, errstr[1024];
	size_t count = 0;
	json_t *arr = NULL;
	int json, err, damaged = 0;
	int rc = kt_cli_repo_args("ls", argc, argv, ls_usage, 0, &repo_path, &json);

	if (rc >= 0)
		return rc;
	rc = KT_EXIT_FAILURE;
	err = kt_store_repo_open(&repo, repo_path, 0, 0, errstr, sizeof(errstr));
	if (!err)
		err = kt_store_repo_list_snapshots(repo, &ids, &count, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error("ls", "%s", errstr);
		rc = kt_cli_exit_for(err);
		goto out;
	}
	if (json) {
		arr = json_array();
		if (!arr)
			goto out;
	} else if (count > 0) {
		printf("%-28s  %-24s  %-11s  %6s  %14s  %10s  %6s\n", "ID", "COMPLETED (UTC)", "KIND", "TOPICS",
		       "RECORDS", "STORED", "RATIO");
	}
	for (size_t i = 0; i < count; i++) {
		struct kt_store_snapshot *snap = NULL;
		struct ls_totals t;
		char when[40], stored[32];

		/* A damaged manifest is listed with its error, never skipped:
		 * someone deciding what to restore must see it. */
		err = kt_store_repo_load_snapshot(repo, ids[i], &snap, errstr, sizeof(errstr));
		if (err) {
			damaged = 1;
			if (json)
				json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "id", ids[i],
								     "error", kt_strerror(err), "message", errstr));
			else
				printf("%-28s  DAMAGED: %s\n", ids[i], errstr);
			continue;
		}
		totals_of(snap, &t);
		double ratio = t.stored_bytes ? (double)t.raw_bytes / (double)t.stored_bytes : 0;
		kt_format_time_ms(snap->completed_ms, when, sizeof(when));
		if (json) {
			json_array_append_new(arr, json_pack("{s:s, s:s?, s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
				"id", snap->id, "parent", snap->parent[0] ? snap->parent : NULL,
				"kind", kt_cli_snapshot_kind_name(snap->kind), "completed_ms", (json_int_t)snap->completed_ms,
				"completed", when, "started_ms", (json_int_t)snap->started_ms,
				"topics", (json_int_t)snap->topic_count, "partitions", (json_int_t)t.partitions,
				"records", (json_int_t)t.records, "raw_bytes", (json_int_t)t.raw_bytes,
				"stored_bytes", (json_int_t)t.stored_bytes, "compression_ratio", ratio));
		} else {
			kt_cli_format_bytes(t.stored_bytes, stored, sizeof(stored));
			printf("%-28s  %-24s  %-11s  %6zu  %14" PRIu64 "  %10s  %5.2fx\n", snap->id, when,
			       kt_cli_snapshot_kind_name(snap->kind), snap->topic_count, t.records, stored, ratio);
		}
		kt_store_snapshot_destroy(snap);
	}
	if (json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else if (count == 0) {
		fprintf(stderr, "ktape ls: repository %s has no snapshots\n", kt_store_repo_path(repo));
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		kt_cli_error("ls", "writing to standard output failed");
		goto out;
	}
	rc = damaged ? KT_EXIT_DAMAGED : KT_EXIT_OK;
out:
	json_decref(arr);
	kt_store_strv_free(ids, count);
	kt_store_repo_destroy(repo);
	return rc;
}
