/*
 * layout.c - where a finished restore put each record, read back from its
 * record (format/restore.md: plan.json, checkpoint.json, offsets.ktm), so
 * that `ktape diff --restore` can compare a snapshot with a cluster it was
 * restored into even when the target offsets differ from the source's
 * (retention moved the log start, compaction or transactions left holes,
 * or the target already held records).
 */
#include "kt_replay.h"
#include "checkpoint_priv.h"
#include "offsetmap_priv.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_RECORD_FILE (64u << 20)

struct layout_priv {
	struct kt_replay_plan *plan;
	struct kt_replay_omap *map;
	struct kt_store_offset_run *runs; /* every part's runs, back to back */
};

int kt_replay_restores_dir(const char *repo_path, const char *state_dir, const char *id,
			   char *buf, size_t size)
{
	struct stat st;
	int n;

	/* An archive read in place cannot hold the record, so by default it
	 * goes beside it; --state-dir puts it anywhere (a read-only repo). */
	if (state_dir)
		n = snprintf(buf, size, "%s%s%s", state_dir, id ? "/" : "", id ? id : "");
	else if (stat(repo_path, &st) == 0 && S_ISREG(st.st_mode))
		n = snprintf(buf, size, "%s.restores%s%s", repo_path, id ? "/" : "", id ? id : "");
	else
		n = snprintf(buf, size, "%s/restores%s%s", repo_path, id ? "/" : "", id ? id : "");
	return n < 0 || n >= (int)size ? -ENAMETOOLONG : 0;
}

/* Reads and parses dir/checkpoint.json; *complete is set when it says so.
 * A missing checkpoint is an unfinished restore, not an error. */
static int read_state(const char *dir, int *complete, char *state, size_t state_size,
		      char *errstr, size_t errstr_size)
{
	struct kt_replay_checkpoint *ckpt = NULL;
	char path[PATH_MAX + 32], *json = NULL;
	size_t len = 0;
	int err;

	*complete = 0;
	snprintf(state, state_size, "not started");
	snprintf(path, sizeof(path), "%s/checkpoint.json", dir);
	err = kt_replay_read_file(path, MAX_RECORD_FILE, &json, &len, errstr, errstr_size);
	if (err == -ENOENT)
		return 0;
	if (err)
		return err;
	err = kt_replay_checkpoint_from_json(json, len, path, &ckpt, errstr, errstr_size);
	free(json);
	if (err)
		return err;
	*complete = ckpt->state == KT_REPLAY_CKPT_COMPLETE;
	snprintf(state, state_size, "%s", kt_replay_ckpt_state_name(ckpt->state));
	kt_replay_checkpoint_destroy(ckpt);
	return 0;
}

/* The newest restore directory under dir whose checkpoint says complete. */
static int newest_complete(const char *dir, char *id, size_t id_size, char *errstr, size_t errstr_size)
{
	struct dirent *de;
	DIR *d;

	id[0] = '\0';
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : kt_seterr(errstr, errstr_size, -errno, "cannot list %s: %s",
							dir, strerror(errno));
	while ((de = readdir(d))) {
		char sub[PATH_MAX], state[32], ignored[256];
		int complete = 0;

		if (de->d_name[0] == '.' || strlen(de->d_name) >= id_size || strcmp(de->d_name, id) <= 0)
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >= (int)sizeof(sub))
			continue;
		if (read_state(sub, &complete, state, sizeof(state), ignored, sizeof(ignored)) == 0 && complete)
			snprintf(id, id_size, "%s", de->d_name);
	}
	closedir(d);
	return 0;
}

static int read_plan(const char *dir, const char *id, struct kt_replay_plan **out,
		     char *errstr, size_t errstr_size)
{
	char path[PATH_MAX + 32], *json = NULL;
	size_t len = 0;
	int err;

	snprintf(path, sizeof(path), "%s/plan.json", dir);
	err = kt_replay_read_file(path, MAX_RECORD_FILE, &json, &len, errstr, errstr_size);
	if (err == -ENOENT)
		return kt_seterr(errstr, errstr_size, KT_ENOTFOUND, "restore %s not found (no %s)", id, path);
	if (err)
		return err;
	err = kt_replay_plan_from_json(json, len, path, out, errstr, errstr_size);
	free(json);
	if (!err && strcmp((*out)->id, id) != 0) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s names restore %s, not %s", path, (*out)->id, id);
		kt_replay_plan_destroy(*out);
		*out = NULL;
	}
	return err;
}

/* Fills the parts from the plan and the offset map: with preserve
 * partitioning, source partition P of a topic went to partition P of its
 * target, and the map's section for that target holds its runs. */
static int build_parts(struct kt_replay_layout *layout, struct layout_priv *priv,
		       char *errstr, size_t errstr_size)
{
	const struct kt_replay_plan *plan = priv->plan;
	size_t parts = 0, runs = 0, r = 0, i = 0;

	for (size_t t = 0; t < plan->topic_count; t++) {
		parts += plan->topics[t].part_count;
		for (size_t p = 0; p < plan->topics[t].part_count; p++) {
			const struct kt_replay_omap_section *sec =
				kt_replay_omap_find(priv->map, plan->topics[t].target, plan->topics[t].parts[p].partition);
			runs += sec ? sec->run_count : 0;
		}
	}
	layout->parts = calloc(parts ? parts : 1, sizeof(*layout->parts));
	priv->runs = calloc(runs ? runs : 1, sizeof(*priv->runs));
	if (!layout->parts || !priv->runs)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	for (size_t t = 0; t < plan->topic_count; t++) {
		const struct kt_replay_plan_topic *pt = &plan->topics[t];

		for (size_t p = 0; p < pt->part_count; p++) {
			struct kt_replay_layout_part *lp = &layout->parts[i++];
			int32_t partition = pt->parts[p].partition;
			const struct kt_replay_omap_section *sec = kt_replay_omap_find(priv->map, pt->target, partition);
			int64_t base = 0;

			lp->source_topic = pt->source;
			lp->source_partition = partition;
			lp->target_topic = pt->target;
			lp->target_partition = partition;
			lp->from_offset = pt->parts[p].from_offset;
			lp->to_offset = pt->parts[p].to_offset;
			lp->runs = &priv->runs[r];
			if (!sec) {
				/* Nothing of this partition was in the window: the
				 * restore wrote nothing there. */
				if (kt_replay_plan_find_base(pt, partition, &base))
					base = 0;
				lp->target_lo = lp->target_hi = base;
				continue;
			}
			if (strcmp(sec->source_topic, pt->source) != 0)
				return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
						 "restore %s: the offset map gives %s[%d] source topic %s, the plan %s",
						 plan->id, pt->target, (int)partition, sec->source_topic, pt->source);
			lp->target_lo = sec->base_offset;
			lp->target_hi = sec->end_offset;
			for (size_t k = 0; k < sec->run_count; k++) {
				const struct kt_replay_omap_run *run = &sec->runs[k];

				if (run->source_partition != partition)
					return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
							 "restore %s: %s[%d] holds records of source partition %d,"
							 " but the plan kept partitions", plan->id, pt->target,
							 (int)partition, (int)run->source_partition);
				priv->runs[r++] = (struct kt_store_offset_run){
					.source_offset = run->source_offset,
					.target_offset = run->target_offset,
					.count = run->count,
				};
				lp->run_count++;
			}
		}
	}
	layout->part_count = i;
	return 0;
}

int kt_replay_layout_load(struct kt_replay_layout **out, const char *repo_path, const char *state_dir,
			  const char *restore_id, char *errstr, size_t errstr_size)
{
	struct kt_replay_layout *layout = NULL;
	struct layout_priv *priv = NULL;
	char dir[PATH_MAX], id[64], state[32], path[PATH_MAX + 32];
	int complete = 0, err;

	*out = NULL;
	if (!restore_id || strcmp(restore_id, "latest") == 0) {
		if (kt_replay_restores_dir(repo_path, state_dir, NULL, dir, sizeof(dir)))
			return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "restore path too long");
		err = newest_complete(dir, id, sizeof(id), errstr, errstr_size);
		if (err)
			return err;
		if (!id[0])
			return kt_seterr(errstr, errstr_size, KT_ENOTFOUND, "%s holds no complete restore", dir);
	} else {
		/* An id names a directory: nothing that could leave it. */
		if (strlen(restore_id) >= sizeof(id) || strchr(restore_id, '/') || restore_id[0] == '.' ||
		    !restore_id[0])
			return kt_seterr(errstr, errstr_size, KT_EUSAGE, "'%s' is not a restore id", restore_id);
		snprintf(id, sizeof(id), "%s", restore_id);
	}
	if (kt_replay_restores_dir(repo_path, state_dir, id, dir, sizeof(dir)))
		return kt_seterr(errstr, errstr_size, -ENAMETOOLONG, "restore path too long");
	layout = calloc(1, sizeof(*layout));
	priv = calloc(1, sizeof(*priv));
	if (!layout || !priv) {
		free(layout);
		free(priv);
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	}
	layout->priv = priv;
	err = read_plan(dir, id, &priv->plan, errstr, errstr_size);
	if (err)
		goto out;
	err = read_state(dir, &complete, state, sizeof(state), errstr, errstr_size);
	if (err)
		goto out;
	if (!complete) {
		err = kt_seterr(errstr, errstr_size, KT_EUSAGE,
				"restore %s is not complete (%s): finish it with ktape restore --resume %s first",
				id, state, id);
		goto out;
	}
	if (priv->plan->partitioning != KT_REPLAY_PART_PRESERVE) {
		err = kt_seterr(errstr, errstr_size, KT_EUNSUPPORTED,
				"restore %s used %s partitioning, so a target partition mixes records of"
				" several source partitions; compare contents with ktape cat instead",
				id, priv->plan->partitioning == KT_REPLAY_PART_KEY ? "key" : "random");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/offsets.ktm", dir);
	err = kt_replay_omap_read(path, &priv->map, errstr, errstr_size);
	if (err)
		goto out;
	snprintf(layout->restore_id, sizeof(layout->restore_id), "%s", id);
	snprintf(layout->snapshot_id, sizeof(layout->snapshot_id), "%s", priv->plan->snapshot);
	layout->from_time = priv->plan->from_time;
	layout->to_time = priv->plan->to_time;
	err = build_parts(layout, priv, errstr, errstr_size);
out:
	if (err) {
		kt_replay_layout_destroy(layout);
		return err;
	}
	*out = layout;
	return 0;
}

const struct kt_replay_layout_part *kt_replay_layout_find(const struct kt_replay_layout *layout,
							  const char *source_topic, int32_t source_partition)
{
	for (size_t i = 0; i < layout->part_count; i++)
		if (layout->parts[i].source_partition == source_partition &&
		    strcmp(layout->parts[i].source_topic, source_topic) == 0)
			return &layout->parts[i];
	return NULL;
}

void kt_replay_layout_destroy(struct kt_replay_layout *layout)
{
	struct layout_priv *priv;

	if (!layout)
		return;
	priv = layout->priv;
	if (priv) {
		kt_replay_plan_destroy(priv->plan);
		kt_replay_omap_destroy(priv->map);
		free(priv->runs);
		free(priv);
	}
	free(layout->parts);
	free(layout);
}
