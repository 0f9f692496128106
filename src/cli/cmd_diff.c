/* ktape diff: compare a snapshot with the live topics, record by record. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kt_capture.h"
#include "kt_replay.h"
#include "kt_sandbox.h"

static void diff_usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape diff -b BROKERS -r REPO [--snapshot ID] [-t TOPIC|^REGEX]... [-X K=V] [-F FILE]\n"
		"\n"
		"Compares a snapshot with the live topics it was taken from: each partition\n"
		"is read over the snapshot's offset range and every record is compared byte\n"
		"for byte (key, value, headers, timestamp and its type). Reports, per\n"
		"partition, the records only in one side and the first differing offset.\n"
		"Records deleted by retention since the snapshot, and records produced\n"
		"after it, are counted but are not differences.\n"
		"\n"
		"  -b, --brokers LIST    bootstrap servers (host:port,...)\n"
		"  -r, --repo REPO       the backup repository\n"
		"  -s, --snapshot ID     the snapshot (default: the latest)\n"
		"  -t, --topic T         a topic name, or a regex when it starts with '^'\n"
		"                        (repeatable; default: every topic of the snapshot)\n"
		"      --restore ID      compare with what restore ID (or 'latest', the newest\n"
		"                        complete one) wrote: its target topics, through its\n"
		"                        offset map, over its window (the snapshot is the\n"
		"                        restore's); for a cluster restored with ktape\n"
		"      --state-dir DIR   where that restore's record is (as for restore)\n"
		"  -X KEY=VALUE          librdkafka property (SASL, SSL, timeouts...)\n"
		"  -F FILE               librdkafka properties file, as kcat's -F\n"
		"      --timeout DUR     give up on a partition that stalls this long (30s)\n"
		"      --json            print a JSON report on stdout\n"
		"\n"
		"Exit codes: 0 equal, 6 different, 1 failure, 2 usage, 3 damaged snapshot.\n");
}

struct diff_out {
	int json;
	json_t *parts;
	const struct kt_replay_layout *layout; /* with --restore */
};

/* Routes a snapshot partition through the layout of the restore
 * (format/restore.md section 4): its target, its window, its runs. */
static int route_partition(void *opaque, const char *topic, int32_t partition,
			   struct kt_capture_diff_route *route)
{
	struct diff_out *dout = opaque;
	const struct kt_replay_layout *layout = dout->layout;
	const struct kt_replay_layout_part *lp = kt_replay_layout_find(layout, topic, partition);

	if (!lp)
		return KT_ENOTFOUND;
	route->topic = lp->target_topic;
	route->partition = lp->target_partition;
	route->target_lo = lp->target_lo;
	route->target_hi = lp->target_hi;
	kt_store_range_init(&route->range);
	route->range.from_offset = lp->from_offset;
	route->range.to_offset = lp->to_offset;
	route->range.from_time = layout->from_time;
	route->range.to_time = layout->to_time;
	route->runs = lp->runs;
	route->run_count = lp->run_count;
	return 0;
}

static void on_partition(void *opaque, const struct kt_capture_diff_partition *p)
{
	struct diff_out *dout = opaque;
	int different = p->first_difference >= 0;

	if (dout->json) {
		json_t *o = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I}",
				      "topic", p->topic, "partition", p->partition,
				      "start_offset", (json_int_t)p->start_offset, "end_offset", (json_int_t)p->end_offset,
				      "live_low", (json_int_t)p->live_low, "live_high", (json_int_t)p->live_high,
				      "status", different ? "different" : "equal",
				      "records_equal", (json_int_t)p->records_equal,
				      "only_snapshot", (json_int_t)p->only_snapshot,
				      "only_live", (json_int_t)p->only_live, "differing", (json_int_t)p->differing,
				      "expired", (json_int_t)p->expired, "live_after_end", (json_int_t)p->live_after_end);
		if (o && dout->layout) {
			json_object_set_new(o, "target_topic", json_string(p->live_topic));
			json_object_set_new(o, "target_partition", json_integer(p->live_partition));
		}
		if (o && different) {
			json_object_set_new(o, "first_difference", json_integer(p->first_difference));
			json_object_set_new(o, "first_difference_field", json_string(p->first_difference_field));
		}
		json_array_append_new(dout->parts, o);
		return;
	}
	if (!different && kt_cli_verbosity <= KT_LOG_INFO)
		return;
	printf("%s %s/%d", different ? "DIFFERENT" : "equal", p->topic, p->partition);
	if (dout->layout)
		printf(" -> %s/%d", p->live_topic, p->live_partition);
	printf(" [%lld, %lld): %llu equal, %llu differ, %llu only in the snapshot, %llu only live",
	       (long long)p->start_offset,
	       (long long)p->end_offset, (unsigned long long)p->records_equal, (unsigned long long)p->differing,
	       (unsigned long long)p->only_snapshot, (unsigned long long)p->only_live);
	if (different)
		printf("; first difference at offset %lld (%s)", (long long)p->first_difference,
		       p->first_difference_field);
	if (p->live_high < 0)
		printf("; the partition does not exist live");
	if (p->expired)
		printf("; %llu record(s) since deleted by retention", (unsigned long long)p->expired);
	putchar('\n');
}

static int apply_kconf(void *opaque, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
	return kt_sandbox_kconf_apply(opaque, conf, errstr, errstr_size);
}

int kt_cli_cmd_diff(int argc, char **argv)
{
	enum { OPT_TIMEOUT = 256, OPT_JSON, OPT_RESTORE, OPT_STATE_DIR };
	static const struct option opts[] = {
		{ "brokers", required_argument, NULL, 'b' },
		{ "repo", required_argument, NULL, 'r' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "topic", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "restore", required_argument, NULL, OPT_RESTORE },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kt_capture_diff_opts dopts;
	struct kt_capture_diff_result res;
	struct kt_sandbox_kconf *kconf = NULL;
	struct diff_out dout = { 0 };
	struct kt_replay_layout *layout = NULL;
	const char *restore_id = NULL, *state_dir = NULL;
	const char **topics = NULL;
	char errstr[1024];
	int c, err = 0, rc = KT_EXIT_USAGE;

	kt_capture_diff_opts_init(&dopts);
	topics = calloc((size_t)argc, sizeof(*topics));
	if (!topics || kt_sandbox_kconf_create(&kconf)) {
		kt_cli_error("diff", "out of memory");
		rc = KT_EXIT_FAILURE;
		goto out;
	}
	while ((c = getopt_long(argc, argv, "b:r:s:t:X:F:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			dopts.brokers = optarg;
			break;
		case 'r':
			dopts.repo_path = optarg;
			break;
		case 's':
			dopts.snapshot = optarg;
			break;
		case 't':
			topics[dopts.topic_count++] = optarg;
			break;
		case 'X':
			err = kt_sandbox_kconf_add(kconf, optarg, errstr, sizeof(errstr));
			break;
		case 'F':
			err = kt_sandbox_kconf_add_file(kconf, optarg, errstr, sizeof(errstr));
			break;
		case OPT_TIMEOUT:
			if (kt_parse_duration_ms(optarg, &dopts.timeout_ms) || dopts.timeout_ms <= 0)
				err = kt_seterr(errstr, sizeof(errstr), KT_EUSAGE,
						"--timeout wants a duration such as 30s, not '%s'", optarg);
			break;
		case OPT_JSON:
			dout.json = 1;
			break;
		case OPT_RESTORE:
			restore_id = optarg;
			break;
		case OPT_STATE_DIR:
			state_dir = optarg;
			break;
		case 'h':
			diff_usage(stdout);
			rc = KT_EXIT_OK;
			goto out;
		default:
			rc = kt_cli_usage_error("diff");
			goto out;
		}
		if (err) {
			kt_cli_error("diff", "%s", errstr);
			rc = err == KT_EUSAGE ? kt_cli_usage_error("diff") : KT_EXIT_FAILURE;
			goto out;
		}
	}
	if (optind < argc || !dopts.repo_path || (!dopts.brokers && !kt_sandbox_kconf_get(kconf, "bootstrap.servers"))) {
		if (optind < argc)
			kt_cli_error("diff", "unexpected argument '%s'", argv[optind]);
		else
			kt_cli_error("diff", "%s", !dopts.repo_path ? "-r REPO is required" : "-b BROKERS is required");
		rc = kt_cli_usage_error("diff");
		goto out;
	}
	if (state_dir && !restore_id) {
		kt_cli_error("diff", "--state-dir is only meaningful with --restore");
		rc = kt_cli_usage_error("diff");
		goto out;
	}
	if (restore_id) {
		err = kt_replay_layout_load(&layout, dopts.repo_path, state_dir, restore_id, errstr, sizeof(errstr));
		if (err) {
			kt_cli_error("diff", "%s", errstr);
			rc = err == KT_EUSAGE ? KT_EXIT_FAILURE : kt_cli_exit_for(err);
			goto out;
		}
		if (dopts.snapshot && strcmp(dopts.snapshot, "latest") != 0 &&
		    strcmp(dopts.snapshot, layout->snapshot_id) != 0) {
			kt_cli_error("diff", "restore %s restored snapshot %s, not %s", layout->restore_id,
				     layout->snapshot_id, dopts.snapshot);
			rc = kt_cli_usage_error("diff");
			goto out;
		}
		dopts.snapshot = layout->snapshot_id;
		dout.layout = layout;
		dopts.route = route_partition;
	}
	dopts.topics = topics;
	dopts.configure = apply_kconf;
	dopts.configure_opaque = kconf;
	dopts.log = &kt_cli_log;
	dopts.on_partition = on_partition;
	dopts.opaque = &dout;
	if (dout.json)
		dout.parts = json_array();
	err = kt_capture_diff(&dopts, &res, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error("diff", "%s", errstr);
		rc = err == KT_EUSAGE ? kt_cli_usage_error("diff") : kt_cli_exit_for(err);
		goto out;
	}
	int different = res.partitions_different > 0;
	if (dout.json) {
		json_t *root = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
					 "snapshot", res.snapshot_id, "status", different ? "different" : "equal",
					 "topics", (json_int_t)res.topics, "partitions", (json_int_t)res.partitions,
					 "partitions_different", (json_int_t)res.partitions_different,
					 "records_equal", (json_int_t)res.records_equal,
					 "only_snapshot", (json_int_t)res.only_snapshot,
					 "only_live", (json_int_t)res.only_live, "differing", (json_int_t)res.differing,
					 "expired", (json_int_t)res.expired,
					 "live_after_end", (json_int_t)res.live_after_end, "partition_list", dout.parts);
		dout.parts = NULL;
		if (root && layout) {
			json_object_set_new(root, "restore", json_string(layout->restore_id));
			json_object_set_new(root, "partitions_not_restored",
					    json_integer((json_int_t)res.partitions_not_routed));
		}
		json_dumpf(root, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(root);
	}
	fprintf(stderr, "ktape diff: snapshot %s", res.snapshot_id);
	if (layout)
		fprintf(stderr, " as restore %s wrote it", layout->restore_id);
	fprintf(stderr, ", %llu topic(s), %llu partition(s): %llu record(s) equal, %llu differ, "
		"%llu only in the snapshot, %llu only live: %s",
		(unsigned long long)res.topics, (unsigned long long)res.partitions,
		(unsigned long long)res.records_equal, (unsigned long long)res.differing,
		(unsigned long long)res.only_snapshot, (unsigned long long)res.only_live,
		different ? "DIFFERENT" : "equal");
	if (different)
		fprintf(stderr, " in %llu partition(s)", (unsigned long long)res.partitions_different);
	if (res.expired)
		fprintf(stderr, "; %llu record(s) since deleted by retention", (unsigned long long)res.expired);
	if (res.live_after_end)
		fprintf(stderr, "; %llu offset(s) produced after the %s", (unsigned long long)res.live_after_end,
			layout ? "restore" : "snapshot");
	if (res.partitions_not_routed)
		fprintf(stderr, "; %llu partition(s) of the snapshot not sent by the restore, not compared",
			(unsigned long long)res.partitions_not_routed);
	fputc('\n', stderr);
	rc = different ? KT_EXIT_DIFFERENT : KT_EXIT_OK;
out:
	json_decref(dout.parts);
	kt_replay_layout_destroy(layout);
	kt_sandbox_kconf_destroy(kconf);
	free(topics);
	return rc;
}
