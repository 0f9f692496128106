/*
 * prune.c - retention of snapshots and garbage collection of segments.
 *
 * Safety argument (format/repository.md section 6): a snapshot is its
 * manifest, and segments are shared between manifests.  Prune therefore
 * works in two phases that are each safe to interrupt:
 *   1. unlink the manifests the policy drops (one rename-free unlink each,
 *      atomic), then fsync the snapshots directory;
 *   2. read every REMAINING manifest, and delete only segments that none of
 *      them references.
 * A kill between or during the phases leaves every remaining snapshot with
 * all of its segments; at worst some unreferenced segments survive until the
 * next prune.  If any remaining manifest cannot be read, phase 2 is skipped:
 * deleting a segment we cannot prove unused could destroy a backup.
 */
#include "kt_store.h"
#include "s3_repo_priv.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct prune_snap {
	char *id;
	int64_t when_ms;
	int keep;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Days since the epoch (UTC) and ISO-8601 week number keys of a time. */
static int64_t day_key(int64_t ms)
{
	return ms >= 0 ? ms / 86400000 : (ms - 86399999) / 86400000;
}

static int64_t week_key(int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char buf[16];

	gmtime_r(&secs, &tm);
	/* %G-%V is the ISO year and week: a week that straddles New Year
	 * belongs to one year only. */
	strftime(buf, sizeof(buf), "%G%V", &tm);
	return strtoll(buf, NULL, 10);
}

/* Marks the newest snapshot of each of the newest n distinct keys.
 * snaps are sorted newest first. */
static void keep_by_key(struct prune_snap *snaps, size_t count, unsigned n,
			int64_t (*key)(int64_t))
{
	int64_t last = 0;
	unsigned seen = 0;

	for (size_t i = 0; i < count && seen < n; i++) {
		int64_t k = key(snaps[i].when_ms);
		if (seen > 0 && k == last)
			continue;
		snaps[i].keep = 1;
		last = k;
		seen++;
	}
}

/* Marks the snapshots that unfinished restores read (format/restore.md:
 * a plan.json naming the snapshot, and a checkpoint.json that is missing
 * or not "complete").  Deleting one would leave that restore unable to
 * resume, half-way through a disaster recovery.  Records kept elsewhere
 * with --state-dir are not seen: the docs say to pause retention then. */
static size_t pin_restored(struct kt_store_repo *repo, struct prune_snap *snaps, size_t count)
{
	char dir[PATH_MAX];
	size_t pinned = 0;
	struct dirent *de;
	DIR *d;

	/* A repository on object storage keeps no restore records: they live
	 * in the local --state-dir (docs/object-storage.md). */
	if (kt_s3_url_is_s3(kt_store_repo_path(repo)) ||
	    kt_store_repo_abs_path(repo, "restores", dir, sizeof(dir)) != 0 || !(d = opendir(dir)))
		return 0;
	while ((de = readdir(d)) != NULL) {
		char path[PATH_MAX + 300];
		json_t *plan, *ckpt;
		const char *snap_id, *state;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/plan.json", dir, de->d_name);
		plan = json_load_file(path, 0, NULL);
		snap_id = json_string_value(json_object_get(plan, "snapshot"));
		snprintf(path, sizeof(path), "%s/%s/checkpoint.json", dir, de->d_name);
		ckpt = json_load_file(path, 0, NULL);
		state = json_string_value(json_object_get(ckpt, "state"));
		if (snap_id && !(state && strcmp(state, "complete") == 0)) {
			for (size_t i = 0; i < count; i++) {
				if (strcmp(snaps[i].id, snap_id) == 0 && !snaps[i].keep) {
					snaps[i].keep = 1;
					pinned++;
				}
			}
		}
		json_decref(plan);
		json_decref(ckpt);
	}
	closedir(d);
	return pinned;
}

/* Snapshot time: the manifest's completion time, else its start. */
static int64_t snapshot_time(const struct kt_store_snapshot *snap)
{
	return snap->completed_ms > 0 ? snap->completed_ms : snap->started_ms;
}

/* Collects the repository-relative path of every segment that the given
 * manifests reference into a sorted array. */
static int collect_referenced(struct kt_store_repo *repo, char *const *ids, size_t id_count,
			      char ***out, size_t *out_count, char *errstr, size_t errstr_size)
{
	char **refs = NULL;
	size_t count = 0, cap = 0;
	int err = 0;

	for (size_t i = 0; i < id_count && !err; i++) {
		struct kt_store_snapshot *snap = NULL;

		err = kt_store_repo_load_snapshot(repo, ids[i], &snap, errstr, errstr_size);
		if (err)
			goto out;
		for (size_t t = 0; t < snap->topic_count && !err; t++) {
			const struct kt_store_topic *topic = &snap->topics[t];
			for (size_t p = 0; p < topic->n_partitions && !err; p++) {
				const struct kt_store_partition *part = &topic->partitions[p];
				for (size_t s = 0; s < part->segment_count && !err; s++) {
					if (count == cap) {
						size_t ncap = cap ? cap * 2 : 256;
						char **n = realloc(refs, ncap * sizeof(*n));
						if (!n) {
							err = -ENOMEM;
							break;
						}
						refs = n;
						cap = ncap;
					}
					refs[count] = strdup(part->segments[s].path);
					if (!refs[count])
						err = -ENOMEM;
					else
						count++;
				}
			}
		}
		kt_store_snapshot_destroy(snap);
	}
	if (err) {
		kt_seterr(errstr, errstr_size, err, "out of memory while listing segments");
		goto out;
	}
	qsort(refs, count, sizeof(*refs), cmp_str);
	*out = refs;
	*out_count = count;
	refs = NULL;
	count = 0;
out:
	kt_store_strv_free(refs, count);
	return err;
}

static int is_referenced(char **refs, size_t count, const char *rel)
{
	return bsearch(&rel, refs, count, sizeof(*refs), cmp_str) != NULL;
}

/* State for the nftw() walk of segments/: nftw has no user pointer. */
static struct {
	size_t root_len;
	char **refs;
	size_t ref_count;
	int dry_run;
	struct kt_store_prune_result *result;
	int err;
	char *errstr;
	size_t errstr_size;
} walk;

/* Removes a file the walk found to be garbage, counting what it frees. */
static void remove_garbage(const char *fpath, const struct stat *sb, int is_segment)
{
	if (!walk.dry_run && unlink(fpath) < 0 && errno != ENOENT) {
		if (!walk.err)
			walk.err = kt_seterr(walk.errstr, walk.errstr_size, -errno,
					     "%s: cannot delete: %s", fpath, strerror(errno));
		return;
	}
	walk.result->bytes_freed += (uint64_t)sb->st_size;
	if (is_segment)
		walk.result->segments_removed++;
}

static int walk_fn(const char *fpath, const struct stat *sb, int typeflag, struct FTW *ftwbuf)
{
	const char *rel = fpath + walk.root_len + 1;
	size_t len = strlen(rel);
	char seg[PATH_MAX];

	(void)ftwbuf;
	if (typeflag != FTW_F)
		return 0;
	if (len > 4 && strcmp(rel + len - 4, ".kts") == 0) {
		if (!is_referenced(walk.refs, walk.ref_count, rel))
			remove_garbage(fpath, sb, 1);
	} else if (len > 4 && strcmp(rel + len - 4, ".kti") == 0) {
		/* An index goes with its segment. */
		snprintf(seg, sizeof(seg), "%.*s.kts", (int)(len - 4), rel);
		if (!is_referenced(walk.refs, walk.ref_count, seg))
			remove_garbage(fpath, sb, 0);
	} else if (strstr(rel, ".tmp-") != NULL) {
		/* A temp file left by a writer that died before its rename. */
		remove_garbage(fpath, sb, 0);
	}
	return 0;
}

/* Deletes the snapshots the policy drops; fills result->removed_ids. */
static int drop_manifests(struct kt_store_repo *repo, struct prune_snap *snaps, size_t count,
			  const struct kt_store_prune_policy *policy,
			  struct kt_store_prune_result *result, char *errstr, size_t errstr_size)
{
	char path[PATH_MAX], rel[128];
	int err = 0;

	result->removed_ids = calloc(count ? count : 1, sizeof(char *));
	if (!result->removed_ids)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	for (size_t i = 0; i < count; i++) {
		if (snaps[i].keep) {
			result->snapshots_kept++;
			continue;
		}
		snprintf(rel, sizeof(rel), "snapshots/%s.json", snaps[i].id);
		err = kt_store_repo_abs_path(repo, rel, path, sizeof(path));
		if (err)
			return kt_seterr(errstr, errstr_size, err, "snapshot id '%s' makes a bad path", snaps[i].id);
		if (!policy->dry_run && kt_s3_url_is_s3(path)) {
			err = kt_s3_url_remove(path, errstr, errstr_size);
			if (err)
				return err;
		} else if (!policy->dry_run && unlink(path) < 0) {
			return kt_seterr(errstr, errstr_size, -errno, "%s: cannot delete: %s", path, strerror(errno));
		}
		result->removed_ids[result->removed_count] = strdup(snaps[i].id);
		if (!result->removed_ids[result->removed_count])
			return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		result->removed_count++;
		result->snapshots_removed++;
	}
	/* A DELETE acknowledged is durable: object storage has no directory
	 * to sync. */
	if (!policy->dry_run && result->snapshots_removed > 0 && !kt_s3_url_is_s3(kt_store_repo_path(repo))) {
		/* The unlinks must be durable before any segment goes: otherwise a
		 * crash could bring back a manifest whose segments are gone. */
		err = kt_store_repo_abs_path(repo, "snapshots/x", path, sizeof(path));
		if (!err)
			err = kt_fsync_parent_dir(path);
		if (err)
			return kt_seterr(errstr, errstr_size, err, "%s: fsync of the snapshots directory failed: %s",
					 kt_store_repo_path(repo), kt_strerror(err));
	}
	return 0;
}

/* The walk of segments/ on object storage (format/object-storage.md
 * section 7): every .kts no remaining manifest references goes, and its
 * .kti with it.  Keys are listed in byte order, so a segment's ".kti"
 * comes before its ".kts" and is deleted first: a segment still referenced
 * never loses its index, and one whose deletion was interrupted is found
 * again by the next prune. */
static int prune_objects(struct kt_store_repo *repo, char **refs, size_t ref_count, int dry_run,
			 struct kt_store_prune_result *result, char *errstr, size_t errstr_size)
{
	char dir[PATH_MAX], url[PATH_MAX + 16], rel[PATH_MAX + 16];
	struct kt_s3_listed *objs = NULL;
	size_t n = 0;
	int err;

	err = kt_store_repo_abs_path(repo, "segments/", dir, sizeof(dir));
	if (err)
		return kt_seterr(errstr, errstr_size, err, "%s: URL too long", kt_store_repo_path(repo));
	err = kt_s3_url_list(dir, &objs, &n, errstr, errstr_size);
	for (size_t i = 0; !err && i < n; i++) {
		size_t len = strlen(objs[i].rel);
		int is_segment = len > 4 && strcmp(objs[i].rel + len - 4, ".kts") == 0;
		int is_index = len > 4 && strcmp(objs[i].rel + len - 4, ".kti") == 0;

		if (!is_segment && !is_index)
			continue; /* not ours to judge */
		snprintf(rel, sizeof(rel), "segments/%.*s.kts", (int)(len - 4), objs[i].rel);
		if (is_referenced(refs, ref_count, rel))
			continue;
		snprintf(url, sizeof(url), "%s%s", dir, objs[i].rel);
		if (!dry_run)
			err = kt_s3_url_remove(url, errstr, errstr_size);
		if (err)
			break;
		result->bytes_freed += objs[i].size;
		if (is_segment)
			result->segments_removed++;
	}
	kt_s3_listed_free(objs, n);
	return err;
}

int kt_store_repo_prune(struct kt_store_repo *repo,
			const struct kt_store_prune_policy *policy,
			struct kt_store_prune_result *result,
			char *errstr, size_t errstr_size)
{
	struct prune_snap *snaps = NULL;
	char **ids = NULL, **refs = NULL;
	size_t id_count = 0, ref_count = 0;
	char root[PATH_MAX];
	int err;

	memset(result, 0, sizeof(*result));
	if (policy->keep_last == 0 && policy->keep_daily == 0 && policy->keep_weekly == 0) {
		err = kt_seterr(errstr, errstr_size, KT_EUSAGE,
				"the retention policy keeps no snapshot: give --keep-last, --keep-daily or --keep-weekly");
		goto out;
	}
	if (!policy->dry_run) {
		err = kt_store_repo_lock(repo, errstr, errstr_size);
		if (err)
			goto out;
	}
	{
		/* The workers of a --workers-group capture write segments
		 * without the writer lock, referenced only by their plan's
		 * progress records until the snapshot commits, and the plan's
		 * manifest names its parent (repository.md section 8.5): while
		 * a plan is live, nothing may be deleted. */
		char **plan_ids = NULL;
		size_t plan_count = 0;

		err = kt_store_plan_list(repo, &plan_ids, &plan_count, errstr, errstr_size);
		if (!err && plan_count > 0)
			err = kt_seterr(errstr, errstr_size, KT_ELOCKED,
					"repository %s: a --workers-group capture of snapshot %s is unfinished "
					"(plans/%s.json); prune once its workers have committed it",
					kt_store_repo_path(repo), plan_ids[0], plan_ids[0]);
		kt_store_strv_free(plan_ids, plan_count);
		if (err)
			goto out;
	}
	err = kt_store_repo_list_snapshots(repo, &ids, &id_count, errstr, errstr_size);
	if (err)
		goto out;
	snaps = calloc(id_count ? id_count : 1, sizeof(*snaps));
	if (!snaps) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < id_count; i++) {
		struct kt_store_snapshot *snap = NULL;

		/* A manifest that cannot be read stops the prune: we could
		 * neither judge its age nor know which segments it needs. */
		err = kt_store_repo_load_snapshot(repo, ids[i], &snap, errstr, errstr_size);
		if (err)
			goto out;
		snaps[i].id = ids[i];
		snaps[i].when_ms = snapshot_time(snap);
		kt_store_snapshot_destroy(snap);
	}
	/* list_snapshots returns newest first, which the rules rely on. */
	for (size_t i = 0; i < id_count && i < policy->keep_last; i++)
		snaps[i].keep = 1;
	keep_by_key(snaps, id_count, policy->keep_daily, day_key);
	keep_by_key(snaps, id_count, policy->keep_weekly, week_key);
	result->snapshots_pinned = pin_restored(repo, snaps, id_count);

	err = drop_manifests(repo, snaps, id_count, policy, result, errstr, errstr_size);
	if (err)
		goto out;

	if (policy->dry_run) {
		/* Nothing was deleted: what would remain is what the kept
		 * snapshots reference. */
		char **kept_ids = calloc(id_count ? id_count : 1, sizeof(char *));
		size_t kept = 0;

		if (!kept_ids) {
			err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < id_count; i++)
			if (snaps[i].keep)
				kept_ids[kept++] = snaps[i].id;
		err = collect_referenced(repo, kept_ids, kept, &refs, &ref_count, errstr, errstr_size);
		free(kept_ids); /* the strings belong to ids */
	} else {
		/* Read the manifests that really remain, not the ones we meant
		 * to keep: that is what the segments must serve. */
		char **left = NULL;
		size_t left_count = 0;

		err = kt_store_repo_list_snapshots(repo, &left, &left_count, errstr, errstr_size);
		if (!err)
			err = collect_referenced(repo, left, left_count, &refs, &ref_count, errstr, errstr_size);
		kt_store_strv_free(left, left_count);
	}
	if (err)
		goto out;

	if (kt_s3_url_is_s3(kt_store_repo_path(repo))) {
		err = prune_objects(repo, refs, ref_count, policy->dry_run, result, errstr, errstr_size);
		goto out;
	}
	snprintf(root, sizeof(root), "%s", kt_store_repo_path(repo));
	walk.root_len = strlen(root);
	walk.refs = refs;
	walk.ref_count = ref_count;
	walk.dry_run = policy->dry_run;
	walk.result = result;
	walk.err = 0;
	walk.errstr = errstr;
	walk.errstr_size = errstr_size;
	for (int pass = 0; pass < 2; pass++) {
		char dir[PATH_MAX];

		err = kt_store_repo_abs_path(repo, pass == 0 ? "segments" : "tmp", dir, sizeof(dir));
		if (err)
			goto out;
		if (access(dir, F_OK) != 0)
			continue;
		if (nftw(dir, walk_fn, 16, FTW_PHYS) != 0 && !walk.err)
			walk.err = kt_seterr(errstr, errstr_size, -errno, "%s: cannot walk: %s", dir, strerror(errno));
	}
	err = walk.err;
out:
	kt_store_strv_free(refs, ref_count);
	free(snaps);
	kt_store_strv_free(ids, id_count);
	return err;
}

void kt_store_prune_result_clear(struct kt_store_prune_result *result)
{
	if (!result)
		return;
	kt_store_strv_free(result->removed_ids, result->removed_count);
	memset(result, 0, sizeof(*result));
}
