/* ktape cat: print a backed-up topic's records as JSON lines, with the
 * fields of kcat -J (docs/json-records.md), so that a backup can be read
 * with jq and compared with kcat's own dump. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jsonl.h"
#include "kt_store.h"

static void cat_usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape cat -r REPO -t TOPIC [-s ID] [-p N]... [--from-offset O] [--to-offset O]\n"
		"                 [--from-time T] [--to-time T]\n"
		"\n"
		"Prints the records of one topic of a snapshot as JSON lines with the fields\n"
		"of kcat -J (docs/json-records.md), partition by partition, in offset order.\n"
		"Offset and time windows are found through the segment indexes, so only the\n"
		"blocks inside the window are read.\n"
		"\n"
		"  -r, --repo REPO        the backup repository\n"
		"  -s, --snapshot ID      the snapshot to read (default: the latest)\n"
		"  -t, --topic TOPIC      the topic\n"
		"  -p, --partition N      only this partition (repeatable; default: all)\n"
		"      --from-offset O    first offset (inclusive)\n"
		"      --to-offset O      end offset (exclusive)\n"
		"      --from-time T      first timestamp (inclusive), ISO-8601 or epoch ms\n"
		"      --to-time T        end timestamp (exclusive), ISO-8601 or epoch ms\n"
		"\n"
		"Exit codes: 0 ok, 1 failure (unknown snapshot, topic or partition),\n"
		"2 usage, 3 damaged data (a block failed its checksum).\n");
}

static int parse_i64(const char *text, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno || end == text || *end)
		return KT_EUSAGE;
	*out = v;
	return 0;
}

/* Prints one partition's records in the range.  Returns 0, a negative code
 * (errstr says where), or 1 when stdout went away (a closed pipe). */
static int cat_partition(struct kt_store_repo *repo, const char *topic,
			 const struct kt_store_partition *part, const struct kt_store_range *range,
			 char *errstr, size_t errstr_size)
{
	struct kt_store_scan *scan = NULL;
	const struct kt_record *rec;
	int err;

	for (size_t i = 0; i < part->gap_count; i++)
		kt_log(&kt_cli_log, KT_LOG_WARN,
		       "%s [%d]: offsets %lld..%lld are not in the backup (%s)", topic, (int)part->partition,
		       (long long)part->gaps[i].from, (long long)part->gaps[i].to - 1,
		       part->gaps[i].reason ? part->gaps[i].reason : "gap");
	if (!part->complete)
		kt_log(&kt_cli_log, KT_LOG_WARN,
		       "%s [%d]: this partial snapshot stopped at offset %lld, before the partition's end",
		       topic, (int)part->partition, (long long)part->end_offset);
	err = kt_store_scan_create(&scan, repo, part, range, errstr, errstr_size);
	if (err)
		return err;
	while ((err = kt_store_scan_next(scan, &rec, errstr, errstr_size)) == 1) {
		if (kt_cli_jsonl_write(stdout, topic, part->partition, rec)) {
			err = errno == EPIPE ? 1 : -errno;
			if (err < 0)
				kt_seterr(errstr, errstr_size, err, "cannot write to standard output: %s",
					  kt_strerror(err));
			break;
		}
	}
	kt_store_scan_destroy(scan);
	return err;
}

int kt_cli_cmd_cat(int argc, char **argv)
{
	enum { OPT_FROM_OFFSET = 256, OPT_TO_OFFSET, OPT_FROM_TIME, OPT_TO_TIME };
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "topic", required_argument, NULL, 't' },
		{ "partition", required_argument, NULL, 'p' },
		{ "from-offset", required_argument, NULL, OPT_FROM_OFFSET },
		{ "to-offset", required_argument, NULL, OPT_TO_OFFSET },
		{ "from-time", required_argument, NULL, OPT_FROM_TIME },
		{ "to-time", required_argument, NULL, OPT_TO_TIME },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kt_store_repo *repo = NULL;
	struct kt_store_snapshot *snap = NULL;
	const struct kt_store_topic *topic;
	struct kt_store_range range;
	const char *repo_path = NULL, *snapshot = "latest", *topic_name = NULL;
	int32_t *partitions = NULL;
	size_t partition_count = 0;
	static char outbuf[1 << 20];
	char errstr[1024];
	int c, err = 0, rc = KT_EXIT_FAILURE;

	kt_store_range_init(&range);
	partitions = calloc((size_t)argc, sizeof(*partitions));
	if (!partitions)
		return KT_EXIT_FAILURE;
	while ((c = getopt_long(argc, argv, "r:s:t:p:h", opts, NULL)) != -1) {
		int64_t v;

		switch (c) {
		case 'r':
			repo_path = optarg;
			break;
		case 's':
			snapshot = optarg;
			break;
		case 't':
			topic_name = optarg;
			break;
		case 'p':
			if (parse_i64(optarg, &v) || v < 0 || v > INT32_MAX) {
				kt_cli_error("cat", "--partition wants a partition number, not '%s'", optarg);
				rc = kt_cli_usage_error("cat");
				goto out;
			}
			partitions[partition_count++] = (int32_t)v;
			break;
		case OPT_FROM_OFFSET:
		case OPT_TO_OFFSET:
			if (parse_i64(optarg, &v) || v < 0) {
				kt_cli_error("cat", "--%s wants an offset, not '%s'",
					     c == OPT_FROM_OFFSET ? "from-offset" : "to-offset", optarg);
				rc = kt_cli_usage_error("cat");
				goto out;
			}
			*(c == OPT_FROM_OFFSET ? &range.from_offset : &range.to_offset) = v;
			break;
		case OPT_FROM_TIME:
		case OPT_TO_TIME:
			if (kt_parse_time_ms(optarg, &v)) {
				kt_cli_error("cat", "--%s wants an ISO-8601 time or epoch milliseconds, not '%s'",
					     c == OPT_FROM_TIME ? "from-time" : "to-time", optarg);
				rc = kt_cli_usage_error("cat");
				goto out;
			}
			*(c == OPT_FROM_TIME ? &range.from_time : &range.to_time) = v;
			break;
		case 'h':
			cat_usage(stdout);
			rc = KT_EXIT_OK;
			goto out;
		default:
			rc = kt_cli_usage_error("cat");
			goto out;
		}
	}
	if (optind < argc || !repo_path || !topic_name) {
		if (optind < argc)
			kt_cli_error("cat", "unexpected argument '%s'", argv[optind]);
		else
			kt_cli_error("cat", "%s", !repo_path ? "no repository given (-r REPO)" : "no topic given (-t TOPIC)");
		rc = kt_cli_usage_error("cat");
		goto out;
	}
	/* An empty window is a typing mistake, never a wish for no output. */
	if (range.from_offset >= range.to_offset || range.from_time >= range.to_time) {
		kt_cli_error("cat", "the window is empty: --to-%s must be above --from-%s",
			     range.from_offset >= range.to_offset ? "offset" : "time",
			     range.from_offset >= range.to_offset ? "offset" : "time");
		rc = kt_cli_usage_error("cat");
		goto out;
	}
	err = kt_store_repo_open(&repo, repo_path, 0, 0, errstr, sizeof(errstr));
	if (!err)
		err = kt_store_repo_load_snapshot(repo, snapshot, &snap, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error("cat", "%s", errstr);
		rc = kt_cli_exit_for(err);
		goto out;
	}
	topic = kt_store_snapshot_find_topic(snap, topic_name);
	if (!topic) {
		kt_cli_error("cat", "topic '%s' is not in snapshot %s", topic_name, snap->id);
		goto out;
	}
	for (size_t i = 0; i < partition_count; i++)
		if (!kt_store_topic_find_partition(topic, partitions[i])) {
			kt_cli_error("cat", "topic '%s' has no partition %d in snapshot %s", topic_name,
				     (int)partitions[i], snap->id);
			goto out;
		}
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	for (size_t i = 0; i < topic->n_partitions && err == 0; i++) {
		const struct kt_store_partition *part = &topic->partitions[i];
		int wanted = partition_count == 0;

		for (size_t j = 0; j < partition_count && !wanted; j++)
			wanted = partitions[j] == part->partition;
		if (wanted)
			err = cat_partition(repo, topic->name, part, &range, errstr, sizeof(errstr));
	}
	if (err == 0 && fflush(stdout) != 0 && errno != EPIPE) {
		err = -errno;
		kt_seterr(errstr, sizeof(errstr), err, "cannot write to standard output: %s", kt_strerror(err));
	}
	if (err < 0) {
		kt_cli_error("cat", "%s", errstr);
		rc = kt_cli_exit_for(err);
		goto out;
	}
	rc = KT_EXIT_OK; /* also when a reader closed the pipe early */
out:
	fflush(stdout);
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
	free(partitions);
	return rc;
}
