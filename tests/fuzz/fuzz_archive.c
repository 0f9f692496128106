/*
 * fuzz_archive - libFuzzer target for the snapshot archive importer,
 * kt_store_repo_import (format/archive.md), fed through a memory file as
 * `ktape import` is fed through a pipe.
 *
 * Each input is imported into a fresh repository inside a scratch
 * directory.  Beyond memory errors it checks the importer's promises:
 * nothing is ever written outside the repository (the scratch directory
 * holds only it afterwards), a refused archive publishes no snapshot, and
 * an accepted one names a snapshot that loads and whose segments read end
 * to end.  Seeds: tests/fuzz/run.sh builds archives of the repositories in
 * format/vectors/repo at run time.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_lib.h"
#include "kt_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fails unless dir holds exactly the one entry `only` (or nothing, when
 * only is NULL). */
static void check_dir_holds(const char *dir, const char *only)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d && errno == ENOENT)
		return;
	if (!d)
		kt_fuzz_fail("cannot list %s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!only || strcmp(de->d_name, only) != 0)
			kt_fuzz_fail("the import left '%s' in %s", de->d_name, dir);
	}
	closedir(d);
}

/* Reads every segment of an imported snapshot end to end. */
static void read_snapshot(struct kt_store_repo *repo, const char *id)
{
	struct kt_store_snapshot *snap = NULL;
	char errstr[512] = "";
	int rc;

	rc = kt_store_repo_load_snapshot(repo, id, &snap, errstr, sizeof(errstr));
	if (rc != 0)
		kt_fuzz_fail("imported snapshot %s does not load: %s", id, errstr);
	for (size_t t = 0; t < snap->topic_count; t++)
		for (size_t p = 0; p < snap->topics[t].n_partitions; p++) {
			const struct kt_store_partition *part = &snap->topics[t].partitions[p];
			for (size_t s = 0; s < part->segment_count; s++) {
				char abs[4200];
				if (kt_store_repo_abs_path(repo, part->segments[s].path, abs,
							   sizeof(abs)) != 0)
					kt_fuzz_fail("imported snapshot %s names a path outside "
						     "the repository: %s", id, part->segments[s].path);
				kt_fuzz_exercise_segment(abs, 0);
			}
		}
	kt_store_snapshot_destroy(snap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *scratch = kt_fuzz_scratch_dir();
	struct kt_store_repo *repo = NULL;
	char root[4200], snaps[4300], id[64] = "", errstr[512] = "";
	size_t done = 0;
	int fd, rc;

	snprintf(root, sizeof(root), "%s/repo", scratch);
	snprintf(snaps, sizeof(snaps), "%s/snapshots", root);
	kt_fuzz_remove_tree(root);
	rc = kt_store_repo_open(&repo, root, KT_STORE_REPO_CREATE | KT_STORE_REPO_LOCK, 0, errstr,
				sizeof(errstr));
	if (rc != 0)
		kt_fuzz_fail("cannot create the repository %s: %s", root, errstr);
	fd = memfd_create("kt-fuzz-archive", MFD_CLOEXEC);
	if (fd < 0)
		kt_fuzz_fail("memfd_create: %s", strerror(errno));
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);
		if (n <= 0)
			kt_fuzz_fail("cannot fill the memory file: %s", strerror(errno));
		done += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) != 0)
		kt_fuzz_fail("cannot rewind the memory file: %s", strerror(errno));

	rc = kt_store_repo_import(repo, fd, id, errstr, sizeof(errstr));
	close(fd);
	if (rc != 0) {
		if (errstr[0] == '\0')
			kt_fuzz_fail("import failed with %d but left errstr empty", rc);
		check_dir_holds(snaps, NULL);
	} else {
		if (id[0] == '\0')
			kt_fuzz_fail("import succeeded without naming the snapshot");
		read_snapshot(repo, id);
	}
	kt_store_repo_destroy(repo);
	check_dir_holds(scratch, "repo");
	return 0;
}
