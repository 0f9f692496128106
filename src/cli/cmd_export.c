/* ktape export / ktape import: a snapshot as a self-contained tar archive
 * (format/archive.md), to a file or a pipe into any uploader. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "kt_store.h"

static void export_usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape export -r REPO [--snapshot ID] -o FILE|- [--compress none|zstd|gzip]\n"
		"\n"
		"Writes a self-contained tar archive of one snapshot: its manifest, segments\n"
		"and indexes. With -o - it goes to stdout, for piping into an uploader.\n"
		"A file is written under a temporary name and renamed when complete.\n"
		"\n"
		"  -r, --repo REPO       the backup repository\n"
		"  -s, --snapshot ID     the snapshot (default: the latest)\n"
		"  -o, --output FILE     the archive, or - for stdout\n"
		"  -c, --compress C      none (default; readable in place), zstd or gzip\n");
}

int kt_cli_cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "compress", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kt_store_repo *repo = NULL;
	const char *repo_path = NULL, *snapshot = "latest", *output = NULL;
	char errstr[1024], tmp[PATH_MAX] = "";
	int compression = KT_ARCHIVE_NONE, c, err, fd = -1, rc = KT_EXIT_FAILURE;

	while ((c = getopt_long(argc, argv, "r:s:o:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			repo_path = optarg;
			break;
		case 's':
			snapshot = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'c':
			if (strcmp(optarg, "none") == 0)
				compression = KT_ARCHIVE_NONE;
			else if (strcmp(optarg, "zstd") == 0)
				compression = KT_ARCHIVE_ZSTD;
			else if (strcmp(optarg, "gzip") == 0)
				compression = KT_ARCHIVE_GZIP;
			else {
				kt_cli_error("export", "--compress wants none, zstd or gzip, not '%s'", optarg);
				return kt_cli_usage_error("export");
			}
			break;
		case 'h':
			export_usage(stdout);
			return KT_EXIT_OK;
		default:
			return kt_cli_usage_error("export");
		}
	}
	if (!repo_path || !output || optind < argc) {
		if (optind < argc)
			kt_cli_error("export", "unexpected argument '%s'", argv[optind]);
		else
			kt_cli_error("export", "%s", !repo_path ? "-r REPO is required" : "-o FILE (or -o -) is required");
		return kt_cli_usage_error("export");
	}
	/* Archives are read and written as local files (format/archive.md). */
	if (strncmp(repo_path, "s3://", 5) == 0) {
		kt_cli_error("export", "%s: exporting from a repository on object storage is not implemented; "
			     "copy it to a directory first (aws s3 sync) and export from there", repo_path);
		return KT_EXIT_FAILURE;
	}
	if (strcmp(output, "-") == 0 && isatty(STDOUT_FILENO)) {
		kt_cli_error("export", "refusing to write a binary archive to a terminal; redirect stdout or use -o FILE");
		return kt_cli_usage_error("export");
	}
	err = kt_store_repo_open(&repo, repo_path, 0, 0, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error("export", "%s", errstr);
		rc = kt_cli_exit_for(err);
		goto out;
	}
	if (strcmp(output, "-") == 0) {
		fd = STDOUT_FILENO;
	} else {
		snprintf(tmp, sizeof(tmp), "%s.tmp-%d", output, (int)getpid());
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			kt_cli_error("export", "%s: cannot create: %s", tmp, strerror(errno));
			tmp[0] = '\0';
			goto out;
		}
	}
	err = kt_store_repo_export(repo, snapshot, fd, compression, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error("export", "writing %s: %s", strcmp(output, "-") == 0 ? "stdout" : output, errstr);
		rc = kt_cli_exit_for(err);
		goto out;
	}
	if (tmp[0]) {
		if (fsync(fd) < 0 || close(fd) < 0) {
			fd = -1;
			kt_cli_error("export", "%s: cannot flush: %s", tmp, strerror(errno));
			goto out;
		}
		fd = -1;
		if (rename(tmp, output) < 0) {
			kt_cli_error("export", "%s: cannot rename into place: %s", output, strerror(errno));
			goto out;
		}
		tmp[0] = '\0';
		kt_fsync_parent_dir(output);
		if (kt_cli_verbosity >= KT_LOG_INFO)
			fprintf(stderr, "ktape export: snapshot %s written to %s\n", snapshot, output);
	}
	rc = KT_EXIT_OK;
out:
	if (fd >= 0 && fd != STDOUT_FILENO)
		close(fd);
	if (tmp[0])
		unlink(tmp);
	kt_store_repo_destroy(repo);
	return rc;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void import_usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape import FILE|- -r REPO\n"
		"\n"
		"Brings a snapshot archive written by `ktape export` into a repository\n"
		"(created if missing). Entries that would escape the repository (absolute\n"
		"paths, '..', links, devices) are refused; a torn or refused archive\n"
		"publishes nothing.\n"
		"\n"
		"  -r, --repo REPO   the backup repository\n"
		"      --mode MODE   permission bits of a new repository's files, octal\n"
		"                    (default 0600: owner only; directories get x)\n");
}

int kt_cli_cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kt_store_repo *repo = NULL;
	const char *repo_path = NULL, *input = NULL;
	unsigned mode = 0;
	int created = 0;
	char errstr[1024], id[64];
	int c, err, fd = -1, rc = KT_EXIT_FAILURE;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			repo_path = optarg;
			break;
		case 'm':
			if (kt_cli_parse_mode("import", optarg, &mode))
				return kt_cli_usage_error("import");
			break;
		case 'h':
			import_usage(stdout);
			return KT_EXIT_OK;
		default:
			return kt_cli_usage_error("import");
		}
	}
	if (optind < argc)
		input = argv[optind++];
	if (!repo_path || !input || optind < argc) {
		if (optind < argc)
			kt_cli_error("import", "unexpected argument '%s'", argv[optind]);
		else
			kt_cli_error("import", "%s", !repo_path ? "-r REPO is required" :
				     "the archive FILE (or -) is required");
		return kt_cli_usage_error("import");
	}
	if (strncmp(repo_path, "s3://", 5) == 0) {
		kt_cli_error("import", "%s: importing into a repository on object storage is not implemented; "
			     "import into a directory and copy it to the bucket (aws s3 sync)", repo_path);
		return KT_EXIT_FAILURE;
	}
	/* A repository this import creates and then fails to fill is removed
	 * again: a failed import must not leave an empty repository that
	 * looks like a backup. */
	created = access(repo_path, F_OK) != 0;
	fd = strcmp(input, "-") == 0 ? STDIN_FILENO : open(input, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		kt_cli_error("import", "%s: cannot open: %s", input, strerror(errno));
		return KT_EXIT_FAILURE;
	}
	err = kt_store_repo_open(&repo, repo_path, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK, mode,
				 errstr, sizeof(errstr));
	if (!err)
		err = kt_store_repo_import(repo, fd, id, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error("import", "%s: %s", input, errstr);
		rc = kt_cli_exit_for(err);
		kt_store_repo_destroy(repo);
		repo = NULL;
		if (created && nftw(repo_path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
			kt_cli_error("import", "%s: could not remove the repository this import created: %s",
				     repo_path, strerror(errno));
		goto out;
	}
	if (kt_cli_verbosity >= KT_LOG_INFO)
		fprintf(stderr, "ktape import: snapshot %s imported into %s\n", id, repo_path);
	rc = KT_EXIT_OK;
out:
	if (fd > STDIN_FILENO)
		close(fd);
	kt_store_repo_destroy(repo);
	return rc;
}
