/* ktape show: what one snapshot holds, per topic and partition. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "kt_store.h"

static void show_usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape show -r REPO [SNAPSHOT] [--json]\n"
		"\n"
		"Shows one snapshot (default: the latest): per topic its configs and per\n"
		"partition the offset and time ranges, record counts, segments, gaps\n"
		"(offsets lost to retention before capture) and completeness; then the\n"
		"consumer-group offsets captured with it.  --json prints the snapshot's\n"
		"manifest as format/repository.md section 4 specifies it.\n"
		"\n"
		"  -r, --repo REPO   the backup repository\n"
		"      --json        print the manifest JSON on stdout\n"
		"\n"
		"Exit codes: 0 ok, 3 the manifest is damaged, 1 failure (e.g. no such\n"
		"snapshot), 2 usage.\n");
}

static void show_partition(const struct kt_store_partition *part)
{
	char from[40], to[40], raw[32];
	uint64_t missing = 0;

	printf("  partition %d: offsets [%" PRId64 ", %" PRId64 ")", part->partition, part->start_offset,
	       part->end_offset);
	if (part->log_start_offset >= 0)
		printf(" (log start %" PRId64 ")", part->log_start_offset);
	kt_cli_format_bytes(part->raw_bytes, raw, sizeof(raw));
	printf(", %" PRIu64 " records, %s raw, %zu segment(s)%s\n", part->records, raw, part->segment_count,
	       part->complete ? "" : ", INCOMPLETE (capture stopped here)");
	if (part->records > 0) {
		kt_format_time_ms(part->min_ts, from, sizeof(from));
		kt_format_time_ms(part->max_ts, to, sizeof(to));
		printf("    times %s .. %s\n", from, to);
	}
	for (size_t g = 0; g < part->gap_count; g++) {
		const struct kt_store_gap *gap = &part->gaps[g];
		missing += (uint64_t)(gap->to - gap->from);
		printf("    GAP [%" PRId64 ", %" PRId64 "): %" PRId64 " offset(s) lost (%s)\n", gap->from, gap->to,
		       gap->to - gap->from, gap->reason);
	}
	if (part->gap_count > 1)
		printf("    %" PRIu64 " offset(s) lost in all\n", missing);
}

static void show_topic(const struct kt_store_topic *topic)
{
	printf("topic %s: %zu of %d partition(s) captured, replication factor ", topic->name, topic->n_partitions,
	       topic->partition_count);
	if (topic->replication_factor >= 0)
		printf("%d\n", topic->replication_factor);
	else
		printf("unknown\n");
	if (!topic->configs_available)
		printf("  configs: not available (the broker could not describe them)\n");
	else if (topic->config_count == 0)
		printf("  configs: none differ from the broker defaults\n");
	for (size_t c = 0; c < topic->config_count; c++)
		printf("  config %s = %s\n", topic->configs[c].name,
		       topic->configs[c].value ? topic->configs[c].value : "(null or secret)");
	for (size_t p = 0; p < topic->n_partitions; p++)
		show_partition(&topic->partitions[p]);
}

int kt_cli_cmd_show(int argc, char **argv)
{
	struct kt_store_repo *repo = NULL;
	struct kt_store_snapshot *snap = NULL;
	const char *repo_path, *id;
	char errstr[1024], *text = NULL, started[40], completed[40];
	int json, err;
	int rc = kt_cli_repo_args("show", argc, argv, show_usage, 1, &repo_path, &json);

	if (rc >= 0)
		return rc;
	rc = KT_EXIT_FAILURE;
	id = optind < argc ? argv[optind] : "latest";
	err = kt_store_repo_open(&repo, repo_path, 0, 0, errstr, sizeof(errstr));
	if (!err)
		err = kt_store_repo_load_snapshot(repo, id, &snap, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error("show", "%s", errstr);
		rc = kt_cli_exit_for(err);
		goto out;
	}
	if (json) {
		err = kt_store_snapshot_to_json(snap, &text, errstr, sizeof(errstr));
		if (err) {
			kt_cli_error("show", "%s", errstr);
			goto out;
		}
		printf("%s\n", text);
	} else {
		kt_format_time_ms(snap->started_ms, started, sizeof(started));
		kt_format_time_ms(snap->completed_ms, completed, sizeof(completed));
		printf("snapshot %s (%s)\n", snap->id, kt_cli_snapshot_kind_name(snap->kind));
		if (snap->parent[0])
			printf("  continues %s\n", snap->parent);
		printf("  started %s, completed %s\n", started, completed);
		printf("  source %s, written by ktape %s\n", snap->source && *snap->source ? snap->source : "(unknown)",
		       snap->tool_version);
		for (size_t t = 0; t < snap->topic_count; t++)
			show_topic(&snap->topics[t]);
		if (snap->group_offset_count)
			printf("consumer group offsets (committed when the snapshot began):\n");
		for (size_t i = 0; i < snap->group_offset_count; i++) {
			const struct kt_store_group_offset *go = &snap->group_offsets[i];
			printf("  %s %s/%d = %" PRId64, go->group, go->topic, go->partition, go->offset);
			if (go->metadata && *go->metadata)
				printf(" (metadata \"%s\")", go->metadata);
			printf("\n");
		}
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		kt_cli_error("show", "writing to standard output failed");
		goto out;
	}
	rc = KT_EXIT_OK;
out:
	free(text);
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
	return rc;
}
