/* ktape prune: apply a retention policy to a repository. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kt_store.h"

static void prune_usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape prune -r REPO [--keep-last N] [--keep-daily N] [--keep-weekly N] [--dry-run]\n"
		"\n"
		"Removes the snapshots the policy does not keep, then deletes the segments no\n"
		"remaining snapshot references. A snapshot is kept when any rule keeps it.\n"
		"Safe to kill at any moment: every remaining snapshot still verifies.\n"
		"\n"
		"  -r, --repo REPO       the backup repository\n"
		"      --keep-last N     keep the newest N snapshots\n"
		"      --keep-daily N    keep the newest snapshot of each of the last N days (UTC)\n"
		"      --keep-weekly N   keep the newest snapshot of each of the last N ISO weeks\n"
		"  -n, --dry-run         show what would be removed, remove nothing\n");
}

static int parse_count(const char *flag, const char *text, unsigned *out)
{
	uint64_t n;

	if (kt_parse_u64(text, 1000000, &n)) {
		kt_cli_error("prune", "%s wants a number of snapshots, not '%s'", flag, text);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

int kt_cli_cmd_prune(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "keep-last", required_argument, NULL, 'L' },
		{ "keep-daily", required_argument, NULL, 'D' },
		{ "keep-weekly", required_argument, NULL, 'W' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kt_store_prune_policy policy = { 0 };
	struct kt_store_prune_result res = { 0 };
	struct kt_store_repo *repo = NULL;
	const char *repo_path = NULL;
	char errstr[1024];
	int c, err, rc = KT_EXIT_USAGE;

	while ((c = getopt_long(argc, argv, "r:nh", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			repo_path = optarg;
			break;
		case 'L':
			if (parse_count("--keep-last", optarg, &policy.keep_last))
				return kt_cli_usage_error("prune");
			break;
		case 'D':
			if (parse_count("--keep-daily", optarg, &policy.keep_daily))
				return kt_cli_usage_error("prune");
			break;
		case 'W':
			if (parse_count("--keep-weekly", optarg, &policy.keep_weekly))
				return kt_cli_usage_error("prune");
			break;
		case 'n':
			policy.dry_run = 1;
			break;
		case 'h':
			prune_usage(stdout);
			return KT_EXIT_OK;
		default:
			return kt_cli_usage_error("prune");
		}
	}
	if (!repo_path || optind < argc) {
		kt_cli_error("prune", !repo_path ? "-r REPO is required" : "unexpected argument '%s'", argv[optind]);
		return kt_cli_usage_error("prune");
	}
	if (!policy.keep_last && !policy.keep_daily && !policy.keep_weekly) {
		kt_cli_error("prune", "the policy would keep no snapshot: give --keep-last, --keep-daily or --keep-weekly");
		return kt_cli_usage_error("prune");
	}
	err = kt_store_repo_open(&repo, repo_path, 0, 0, errstr, sizeof(errstr));
	if (!err)
		err = kt_store_repo_prune(repo, &policy, &res, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error("prune", "%s", errstr);
		rc = kt_cli_exit_for(err);
		goto out;
	}
	for (size_t i = 0; i < res.removed_count; i++)
		printf("%s %s\n", policy.dry_run ? "would remove" : "removed", res.removed_ids[i]);
	if (res.snapshots_pinned)
		fprintf(stderr, "ktape prune: %zu snapshot(s) kept beyond the policy: unfinished restores in %s/restores read them\n",
			res.snapshots_pinned, repo_path);
	if (kt_cli_verbosity >= KT_LOG_INFO)
		fprintf(stderr, "ktape prune: %s%zu snapshot(s) %s, %zu kept; %zu unreferenced segment(s), %.1f MB %s\n",
		policy.dry_run ? "(dry run) " : "", res.snapshots_removed,
		policy.dry_run ? "would be removed" : "removed", res.snapshots_kept,
		res.segments_removed, (double)res.bytes_freed / 1e6, policy.dry_run ? "would be freed" : "freed");
	rc = KT_EXIT_OK;
out:
	kt_store_prune_result_clear(&res);
	kt_store_repo_destroy(repo);
	return rc;
}
