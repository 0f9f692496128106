/*
 * verify.c - `ktape verify`: prove that a repository's snapshots can be
 * restored, without Kafka.
 *
 * Every segment referenced by the chosen snapshots is checked once, however
 * many snapshots share it, by a pool of threads: block checksums and record
 * structure (through the segment reader), agreement with the manifest entry
 * (size, checksum, counts, offsets) and with its index.  Then each
 * partition's chain is checked for continuity.  A problem is reported with
 * the file, block and byte offset, the records it costs, and the snapshots
 * that lose them.
 */
#include "kt_store.h"
#include "s3_repo_priv.h"
#include "segment_format.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A segment to check, and who references it. */
struct verify_item {
	const struct kt_store_segref *ref; /* first manifest entry seen */
	const char *topic;
	int32_t partition;
	const char *first_snapshot; /* the newest snapshot affected */
	size_t snapshots;
	const char **ids;           /* all snapshots affected, newest first
				     * (malloc'd); NULL: first_snapshot only */
};

struct verify_ctx {
	struct kt_store_repo *repo;
	const struct kt_store_verify_opts *opts;
	struct verify_item *items;
	size_t item_count;
	size_t next;                /* next item to take, under lock */
	pthread_mutex_t lock;       /* guards next, result and callbacks */
	struct kt_store_verify_result *result;
	size_t unlisted;            /* segment files no verified snapshot lists */
	int archive;                /* the repository is an archive read in place */
};

static void report(struct verify_ctx *ctx, const struct verify_item *item, int64_t block,
		   uint64_t file_offset, uint64_t records, int code, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

static void report(struct verify_ctx *ctx, const struct verify_item *item, int64_t block,
		   uint64_t file_offset, uint64_t records, int code, const char *fmt, ...)
{
	struct kt_store_verify_problem problem;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	problem.snapshot = item->first_snapshot;
	problem.snapshots_affected = item->ids ? item->snapshots : 1;
	problem.snapshot_ids = item->ids ? item->ids : &item->first_snapshot;
	problem.topic = item->topic;
	problem.partition = item->partition;
	problem.path = item->ref ? item->ref->path : "";
	problem.block = block;
	problem.file_offset = file_offset;
	problem.records_affected = records;
	problem.code = code;
	problem.message = msg;
	pthread_mutex_lock(&ctx->lock);
	ctx->result->problems++;
	ctx->result->records_affected += records;
	if (ctx->opts->on_problem)
		ctx->opts->on_problem(ctx->opts->opaque, &problem);
	pthread_mutex_unlock(&ctx->lock);
}

/* The slow path, taken only when the whole-segment check failed: walk every
 * block on its own so that each damaged one is named with what it costs. */
static int report_bad_blocks(struct verify_ctx *ctx, const struct verify_item *item,
			     struct kt_store_reader *reader)
{
	const struct kt_store_segment_info *info = kt_store_reader_info(reader);
	char errstr[512];
	int found = 0;

	for (size_t b = 0; b < info->block_count; b++) {
		const struct kt_store_block_info *blk = kt_store_reader_block(reader, b);
		const struct kt_record *rec;
		int err = kt_store_reader_seek_block(reader, b, errstr, sizeof(errstr));

		for (uint32_t r = 0; !err && r < blk->record_count; r++) {
			err = kt_store_reader_next(reader, &rec, errstr, sizeof(errstr));
			if (err == 1)
				err = 0;
			else if (err == 0)
				err = kt_seterr(errstr, sizeof(errstr), KT_ECORRUPT,
						"block %zu ends after %u of its %u records", b, r, blk->record_count);
		}
		if (err) {
			report(ctx, item, (int64_t)b, blk->file_offset, blk->record_count, err,
			       "%s (offsets %lld-%lld lost)", errstr,
			       (long long)blk->first_offset, (long long)blk->last_offset);
			found++;
		}
	}
	return found;
}

/* Checks the index beside a segment, rebuilding it when asked to.  Returns
 * 1 when it reported a problem with the index. */
static int check_index(struct verify_ctx *ctx, const struct verify_item *item, const char *abs,
			struct kt_store_reader *reader)
{
	const struct kt_store_segment_info *info = kt_store_reader_info(reader);
	int64_t *running = NULL;
	struct kt_store_block_info *blocks = NULL;
	char index_path[PATH_MAX], errstr[512];
	size_t n = info->block_count;
	int err, reported = 0;

	if (kt_store_index_path(abs, index_path, sizeof(index_path)) != 0)
		return 0;
	blocks = malloc((n ? n : 1) * sizeof(*blocks));
	running = malloc((n ? n : 1) * sizeof(*running));
	if (!blocks || !running) {
		report(ctx, item, -1, 0, 0, -ENOMEM, "out of memory checking the index of %s", abs);
		reported = 1;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		blocks[i] = *kt_store_reader_block(reader, i);
	err = kt_seg_index_load(index_path, blocks, n, info->file_size, info->checksum, running,
				errstr, sizeof(errstr));
	if (!err)
		goto out;
	if (ctx->opts->repair) {
		char rerr[512];
		int rc = kt_store_index_rebuild(abs, kt_store_repo_mode(ctx->repo) ? kt_store_repo_mode(ctx->repo) : 0600,
						rerr, sizeof(rerr));
		if (rc == 0) {
			pthread_mutex_lock(&ctx->lock);
			ctx->result->indexes_repaired++;
			pthread_mutex_unlock(&ctx->lock);
			kt_log(ctx->opts->log, KT_LOG_INFO, "%s: rebuilt (%s)", index_path,
			       err == -ENOENT ? "it was missing" : errstr);
			goto out;
		}
		report(ctx, item, -1, 0, 0, rc, "%s: cannot be rebuilt: %s", index_path, rerr);
		reported = 1;
		goto out;
	}
	if (err == -ENOENT)
		report(ctx, item, -1, 0, 0, KT_ENOTFOUND, "%s: index file is missing (ktape verify --repair rebuilds it)",
		       index_path);
	else
		report(ctx, item, -1, 0, 0, err, "%s (ktape verify --repair rebuilds it)", errstr);
	reported = 1;
out:
	free(blocks);
	free(running);
	return reported;
}

/* Compares what the segment says about itself with its manifest entry. */
static void check_against_manifest(struct verify_ctx *ctx, const struct verify_item *item,
				   const struct kt_store_segment_info *info)
{
	const struct kt_store_segref *ref = item->ref;

	if (info->checksum != ref->checksum)
		report(ctx, item, -1, 0, ref->records, KT_ECORRUPT,
		       "segment checksum %016llx differs from the manifest's %016llx: this is not the segment the snapshot recorded",
		       (unsigned long long)info->checksum, (unsigned long long)ref->checksum);
	if (info->record_count != ref->records || info->first_offset != ref->first_offset ||
	    info->last_offset != ref->last_offset || info->file_size != ref->file_size)
		report(ctx, item, -1, 0, ref->records > info->record_count ? ref->records - info->record_count : 0,
		       KT_ECORRUPT,
		       "segment holds %llu records at offsets %lld-%lld in %llu bytes; the manifest says %llu records at %lld-%lld in %llu bytes",
		       (unsigned long long)info->record_count, (long long)info->first_offset,
		       (long long)info->last_offset, (unsigned long long)info->file_size,
		       (unsigned long long)ref->records, (long long)ref->first_offset,
		       (long long)ref->last_offset, (unsigned long long)ref->file_size);
	if (strcmp(info->topic, item->topic) != 0 || info->partition != item->partition)
		report(ctx, item, -1, 0, ref->records, KT_ECORRUPT,
		       "segment belongs to %s/%d, but the manifest lists it under %s/%d",
		       info->topic, info->partition, item->topic, item->partition);
}

static void verify_one(struct verify_ctx *ctx, const struct verify_item *item)
{
	struct kt_store_reader *reader = NULL;
	char abs[PATH_MAX], errstr[512];
	uint64_t bad = 0;
	int err;

	err = kt_store_repo_open_segment(ctx->repo, item->ref->path, KT_STORE_OPEN_NO_INDEX, &reader,
					 errstr, sizeof(errstr));
	if (err) {
		report(ctx, item, -1, 0, item->ref->records, err, "%s",
		       err == -ENOENT ? "segment file is missing" : errstr);
		return;
	}
	const struct kt_store_segment_info *info = kt_store_reader_info(reader);
	check_against_manifest(ctx, item, info);
	/* An archive read in place has its indexes, but they are never used
	 * there (segments are read through their seek tables), and repairing
	 * them would mean writing into the archive. */
	int index_reported = 0;
	if (!ctx->archive && kt_store_repo_abs_path(ctx->repo, item->ref->path, abs, sizeof(abs)) == 0)
		index_reported = check_index(ctx, item, abs, reader);
	err = kt_store_reader_verify(reader, &bad, errstr, sizeof(errstr));
	if (err && report_bad_blocks(ctx, item, reader) == 0 && !index_reported) {
		/* The reader saw a problem no single block explains (the index,
		 * unless check_index already named it): report it as the
		 * segment's. */
		report(ctx, item, -1, 0, 0, err, "%s", errstr);
	}
	pthread_mutex_lock(&ctx->lock);
	ctx->result->segments++;
	ctx->result->blocks += info->block_count;
	ctx->result->records += info->record_count;
	ctx->result->stored_bytes += info->file_size;
	ctx->result->raw_bytes += info->raw_bytes;
	pthread_mutex_unlock(&ctx->lock);
	kt_store_reader_destroy(reader);
}

static void *verify_worker(void *arg)
{
	struct verify_ctx *ctx = arg;

	for (;;) {
		pthread_mutex_lock(&ctx->lock);
		size_t i = ctx->next++;
		pthread_mutex_unlock(&ctx->lock);
		if (i >= ctx->item_count)
			break;
		verify_one(ctx, &ctx->items[i]);
	}
	return NULL;
}

/* Continuity of one partition's chain in one snapshot. */
static void check_chain(struct verify_ctx *ctx, const struct kt_store_snapshot *snap,
			const struct kt_store_topic *topic, const struct kt_store_partition *part)
{
	struct verify_item item = { NULL, topic->name, part->partition, snap->id, 1 };
	uint64_t records = 0;

	for (size_t s = 0; s < part->segment_count; s++) {
		const struct kt_store_segref *ref = &part->segments[s];

		item.ref = ref;
		records += ref->records;
		if (ref->first_offset > ref->last_offset || ref->first_offset < part->start_offset ||
		    ref->last_offset >= part->end_offset)
			report(ctx, &item, -1, 0, 0, KT_ECORRUPT,
			       "segment offsets %lld-%lld fall outside the partition's range [%lld, %lld)",
			       (long long)ref->first_offset, (long long)ref->last_offset,
			       (long long)part->start_offset, (long long)part->end_offset);
		if (s > 0 && ref->first_offset <= part->segments[s - 1].last_offset)
			report(ctx, &item, -1, 0, 0, KT_ECORRUPT,
			       "segment starts at offset %lld, not after the previous segment's last offset %lld: records would repeat",
			       (long long)ref->first_offset, (long long)part->segments[s - 1].last_offset);
	}
	item.ref = NULL;
	if (records != part->records)
		report(ctx, &item, -1, 0, part->records > records ? part->records - records : 0, KT_ECORRUPT,
		       "partition lists %llu records but its segments hold %llu",
		       (unsigned long long)part->records, (unsigned long long)records);
	for (size_t g = 0; g < part->gap_count; g++) {
		const struct kt_store_gap *gap = &part->gaps[g];
		if (gap->from >= gap->to || gap->from < part->start_offset || gap->to > part->end_offset)
			report(ctx, &item, -1, 0, 0, KT_ECORRUPT,
			       "gap [%lld, %lld) is not inside the partition's range [%lld, %lld)",
			       (long long)gap->from, (long long)gap->to,
			       (long long)part->start_offset, (long long)part->end_offset);
		/* A gap says those offsets were lost: a segment holding any of
		 * them contradicts it. */
		for (size_t s = 0; s < part->segment_count; s++) {
			const struct kt_store_segref *ref = &part->segments[s];
			if (ref->first_offset < gap->to && ref->last_offset >= gap->from) {
				item.ref = ref;
				report(ctx, &item, -1, 0, 0, KT_ECORRUPT,
				       "segment offsets %lld-%lld overlap the gap [%lld, %lld) the manifest records as lost",
				       (long long)ref->first_offset, (long long)ref->last_offset,
				       (long long)gap->from, (long long)gap->to);
				item.ref = NULL;
			}
		}
	}
}

/* Snapshot ids sort by time: descending is newest first. */
static int cmp_id_desc(const void *a, const void *b)
{
	return strcmp(*(const char *const *)b, *(const char *const *)a);
}

static int cmp_item(const void *a, const void *b)
{
	return strcmp(((const struct verify_item *)a)->ref->path, ((const struct verify_item *)b)->ref->path);
}

/* Whether part's listed segments cover every offset of [lo, hi].  They are
 * sorted and do not overlap, so one pass suffices. */
static int listed_cover(const struct kt_store_partition *part, int64_t lo, int64_t hi)
{
	int64_t cur = lo;

	for (size_t s = 0; s < part->segment_count && cur <= hi; s++) {
		const struct kt_store_segref *ref = &part->segments[s];
		if (ref->first_offset <= cur && ref->last_offset >= cur)
			cur = ref->last_offset + 1;
	}
	return cur > hi;
}

/* A segment file no verified snapshot lists.  Usually harmless (a capture
 * or prune was interrupted; prune removes it), but when it holds offsets
 * that a snapshot's range covers and none of that snapshot's listed
 * segments do, the manifest has lost an entry: those records are in the
 * repository yet the snapshot would not restore them. */
static void check_unlisted(struct verify_ctx *ctx, struct kt_store_snapshot **snaps, size_t snap_count,
			   const char *rel, const char *abs)
{
	struct kt_store_reader *reader = NULL;
	struct kt_store_segref ref = { 0 };
	char errstr[512];
	const char **ids = NULL;
	size_t affected = 0;

	if (kt_store_reader_open(&reader, abs, KT_STORE_OPEN_NO_INDEX | KT_STORE_OPEN_RECOVER,
				 errstr, sizeof(errstr)) != 0) {
		kt_log(ctx->opts->log, KT_LOG_WARN, "%s: unreferenced and unreadable: %s", abs, errstr);
		return;
	}
	const struct kt_store_segment_info *info = kt_store_reader_info(reader);
	for (size_t i = 0; i < snap_count && info->record_count > 0; i++) {
		const struct kt_store_topic *topic = kt_store_snapshot_find_topic(snaps[i], info->topic);
		const struct kt_store_partition *part = topic ? kt_store_topic_find_partition(topic, info->partition) : NULL;
		if (!part)
			continue;
		int64_t lo = info->first_offset > part->start_offset ? info->first_offset : part->start_offset;
		int64_t hi = info->last_offset < part->end_offset - 1 ? info->last_offset : part->end_offset - 1;
		if (lo > hi || listed_cover(part, lo, hi))
			continue;
		if (!ids && !(ids = calloc(snap_count, sizeof(*ids))))
			break; /* out of memory: the segment goes unjudged */
		ids[affected++] = snaps[i]->id;
	}
	if (affected) {
		struct verify_item item = { &ref, info->topic, info->partition, NULL, affected, ids };
		qsort(ids, affected, sizeof(*ids), cmp_id_desc);
		item.first_snapshot = ids[0];
		ref.path = (char *)rel;
		report(ctx, &item, -1, 0, info->record_count, KT_ECORRUPT,
		       "segment holds offsets %lld-%lld of %s/%d, inside the snapshot's range, but the manifest does not list it "
		       "and no listed segment covers those offsets: the manifest has lost an entry",
		       (long long)info->first_offset, (long long)info->last_offset, info->topic, info->partition);
	} else {
		pthread_mutex_lock(&ctx->lock);
		ctx->unlisted++;
		pthread_mutex_unlock(&ctx->lock);
	}
	free(ids);
	kt_store_reader_destroy(reader);
}

/* scan_unlisted() on object storage: one listing of segments/ instead of
 * a directory walk.  A listing that fails leaves the check undone, as an
 * unreadable directory does, with a warning. */
static void scan_unlisted_objects(struct verify_ctx *ctx, struct kt_store_snapshot **snaps, size_t snap_count,
				  int64_t max_end)
{
	char dir[PATH_MAX], rel[PATH_MAX], abs[PATH_MAX], errstr[512];
	struct kt_s3_listed *objs = NULL;
	size_t n = 0;

	if (kt_store_repo_abs_path(ctx->repo, "segments/", dir, sizeof(dir)) != 0)
		return;
	if (kt_s3_url_list(dir, &objs, &n, errstr, sizeof(errstr)) != 0) {
		kt_log(ctx->opts->log, KT_LOG_WARN, "unreferenced segments not checked: %s", errstr);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = strrchr(objs[i].rel, '/');
		size_t len = strlen(objs[i].rel);
		struct kt_store_segref key;
		struct verify_item probe = { &key, NULL, 0, NULL, 0 };

		name = name ? name + 1 : objs[i].rel;
		if (len < 5 || strcmp(objs[i].rel + len - 4, ".kts") != 0 ||
		    (size_t)snprintf(rel, sizeof(rel), "segments/%s", objs[i].rel) >= sizeof(rel))
			continue;
		key.path = rel;
		if (bsearch(&probe, ctx->items, ctx->item_count, sizeof(*ctx->items), cmp_item))
			continue;
		if (strtoll(name, NULL, 10) >= max_end) {
			ctx->unlisted++;
			continue;
		}
		if (kt_store_repo_abs_path(ctx->repo, rel, abs, sizeof(abs)) == 0)
			check_unlisted(ctx, snaps, snap_count, rel, abs);
	}
	kt_s3_listed_free(objs, n);
}

/* Finds the segment files (segments/<topic>/<partition>/<name>.kts) that
 * no item lists; items are sorted by path. */
static void scan_unlisted(struct verify_ctx *ctx, struct kt_store_snapshot **snaps, size_t snap_count)
{
	char root[PATH_MAX], rel[PATH_MAX], abs[PATH_MAX];
	DIR *topics = NULL;
	struct dirent *t;
	int64_t max_end = 0;

	/* A segment's name starts with its first offset (repository.md 1):
	 * one starting at or past every verified range needs no opening. */
	for (size_t i = 0; i < snap_count; i++)
		for (size_t t2 = 0; t2 < snaps[i]->topic_count; t2++)
			for (size_t p2 = 0; p2 < snaps[i]->topics[t2].n_partitions; p2++)
				if (snaps[i]->topics[t2].partitions[p2].end_offset > max_end)
					max_end = snaps[i]->topics[t2].partitions[p2].end_offset;
	if (kt_s3_url_is_s3(kt_store_repo_path(ctx->repo))) {
		scan_unlisted_objects(ctx, snaps, snap_count, max_end);
		return;
	}
	if (kt_store_repo_abs_path(ctx->repo, "segments", root, sizeof(root)) != 0 ||
	    !(topics = opendir(root)))
		return;
	while ((t = readdir(topics)) != NULL) {
		DIR *parts;
		struct dirent *p;

		if (t->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(abs, sizeof(abs), "%s/%s", root, t->d_name) >= sizeof(abs) ||
		    !(parts = opendir(abs)))
			continue;
		while ((p = readdir(parts)) != NULL) {
			DIR *segs;
			struct dirent *f;

			if (p->d_name[0] == '.')
				continue;
			if ((size_t)snprintf(abs, sizeof(abs), "%s/%s/%s", root, t->d_name, p->d_name) >= sizeof(abs) ||
			    !(segs = opendir(abs)))
				continue;
			while ((f = readdir(segs)) != NULL) {
				size_t len = strlen(f->d_name);
				struct kt_store_segref key;
				struct verify_item probe = { &key, NULL, 0, NULL, 0 };

				if (len < 5 || strcmp(f->d_name + len - 4, ".kts") != 0)
					continue;
				if ((size_t)snprintf(rel, sizeof(rel), "segments/%s/%s/%s", t->d_name, p->d_name,
						     f->d_name) >= sizeof(rel))
					continue;
				key.path = rel;
				if (bsearch(&probe, ctx->items, ctx->item_count, sizeof(*ctx->items), cmp_item))
					continue;
				if (strtoll(f->d_name, NULL, 10) >= max_end) {
					ctx->unlisted++;
					continue;
				}
				if (kt_store_repo_abs_path(ctx->repo, rel, abs, sizeof(abs)) == 0)
					check_unlisted(ctx, snaps, snap_count, rel, abs);
			}
			closedir(segs);
		}
		closedir(parts);
	}
	closedir(topics);
}


int kt_store_repo_verify(struct kt_store_repo *repo, char *const *ids, size_t id_count,
			 const struct kt_store_verify_opts *opts,
			 struct kt_store_verify_result *result,
			 char *errstr, size_t errstr_size)
{
	struct verify_ctx ctx;
	struct kt_store_snapshot **snaps = NULL;
	char **listed = NULL;
	size_t listed_count = 0, snap_count = 0, cap = 0;
	pthread_t *threads = NULL;
	unsigned nthreads, started = 0;
	int64_t t0 = kt_now_ns();
	int err = 0;

	memset(result, 0, sizeof(*result));
	memset(&ctx, 0, sizeof(ctx));
	ctx.repo = repo;
	ctx.opts = opts;
	ctx.result = result;
	pthread_mutex_init(&ctx.lock, NULL);
	{
		struct stat st;
		ctx.archive = stat(kt_store_repo_path(repo), &st) == 0 && S_ISREG(st.st_mode);
	}

	if (!ids) {
		err = kt_store_repo_list_snapshots(repo, &listed, &listed_count, errstr, errstr_size);
		if (err)
			goto out;
		ids = listed;
		id_count = listed_count;
	}
	snaps = calloc(id_count ? id_count : 1, sizeof(*snaps));
	if (!snaps) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < id_count; i++) {
		char why[1024], newest[64];
		const char *id = ids[i];

		/* "latest" is named by its id in reports. */
		if (id && strcmp(id, "latest") == 0) {
			char **all = NULL;
			size_t n = 0;

			if (kt_store_repo_list_snapshots(repo, &all, &n, why, sizeof(why)) == 0 && n > 0) {
				snprintf(newest, sizeof(newest), "%s", all[0]);
				id = newest;
			}
			kt_store_strv_free(all, n);
		}
		err = kt_store_repo_load_snapshot(repo, id, &snaps[snap_count], why, sizeof(why));
		if (err == KT_ECORRUPT || err == KT_ETRUNCATED) {
			/* A damaged manifest is damage like any other: that
			 * snapshot cannot be restored, the others still are
			 * checked.  (A newer format version is not damage: it
			 * stops verification, naming the version.) */
			char rel[128];
			struct kt_store_segref ref = { 0 };
			struct verify_item item = { &ref, "", -1, id, 1, NULL };

			snprintf(rel, sizeof(rel), "snapshots/%s.json", id);
			ref.path = rel;
			report(&ctx, &item, -1, 0, 0, err, "%s", why);
			result->snapshots++;
			continue;
		}
		if (err) {
			kt_seterr(errstr, errstr_size, err, "%s", why);
			goto out; /* an unknown snapshot, or no memory: named */
		}
		snap_count++;
	}
	result->snapshots += snap_count;

	/* Every (snapshot, segment) pair, then merged by path. */
	for (size_t i = 0; i < snap_count; i++)
		for (size_t t = 0; t < snaps[i]->topic_count; t++) {
			const struct kt_store_topic *topic = &snaps[i]->topics[t];
			for (size_t p = 0; p < topic->n_partitions; p++) {
				const struct kt_store_partition *part = &topic->partitions[p];
				check_chain(&ctx, snaps[i], topic, part);
				for (size_t s = 0; s < part->segment_count; s++) {
					if (ctx.item_count == cap) {
						cap = cap ? cap * 2 : 256;
						struct verify_item *n = realloc(ctx.items, cap * sizeof(*n));
						if (!n) {
							err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
							goto out;
						}
						ctx.items = n;
					}
					ctx.items[ctx.item_count++] = (struct verify_item){
						&part->segments[s], topic->name, part->partition, snaps[i]->id, 1
					};
				}
			}
		}
	if (ctx.item_count > 1)
		qsort(ctx.items, ctx.item_count, sizeof(*ctx.items), cmp_item);
	/* One item per path, listing every snapshot that references it: a
	 * problem names them all, the newest first. */
	size_t w = 0;
	for (size_t r = 0; r < ctx.item_count;) {
		size_t e = r + 1;

		while (e < ctx.item_count && strcmp(ctx.items[r].ref->path, ctx.items[e].ref->path) == 0) {
			if (ctx.items[e].ref->checksum != ctx.items[r].ref->checksum)
				report(&ctx, &ctx.items[e], -1, 0, 0, KT_ECORRUPT,
				       "snapshots %s and %s disagree about this segment's checksum",
				       ctx.items[r].first_snapshot, ctx.items[e].first_snapshot);
			e++;
		}
		const char **group = malloc((e - r) * sizeof(*group));
		if (!group) {
			err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
			ctx.item_count = w;
			goto out;
		}
		for (size_t i = r; i < e; i++)
			group[i - r] = ctx.items[i].first_snapshot;
		qsort(group, e - r, sizeof(*group), cmp_id_desc);
		ctx.items[w] = ctx.items[r];
		ctx.items[w].ids = group;
		ctx.items[w].snapshots = e - r;
		ctx.items[w].first_snapshot = group[0];
		w++;
		r = e;
	}
	ctx.item_count = w;

	nthreads = opts->threads ? opts->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > ctx.item_count)
		nthreads = ctx.item_count ? (unsigned)ctx.item_count : 1;
	threads = calloc(nthreads, sizeof(*threads));
	if (!threads) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		if (pthread_create(&threads[i], NULL, verify_worker, &ctx) != 0)
			break;
		started++;
	}
	if (started == 0)
		verify_worker(&ctx); /* no thread could start: do it here */
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	scan_unlisted(&ctx, snaps, snap_count);
	if (ctx.unlisted && listed) /* only --all can tell what no snapshot lists */
		kt_log(opts->log, KT_LOG_INFO,
		       "%zu segment file(s) belong to no snapshot (left by an interrupted capture or prune; ktape prune removes them)",
		       ctx.unlisted);
	err = result->problems ? KT_ECORRUPT : 0;
	if (err)
		kt_seterr(errstr, errstr_size, err, "%llu problem(s) found; %llu record(s) affected",
			  (unsigned long long)result->problems, (unsigned long long)result->records_affected);
out:
	result->seconds = (double)(kt_now_ns() - t0) / 1e9;
	free(threads);
	for (size_t i = 0; i < ctx.item_count; i++)
		free(ctx.items[i].ids);
	free(ctx.items);
	for (size_t i = 0; i < snap_count; i++)
		kt_store_snapshot_destroy(snaps[i]);
	free(snaps);
	kt_store_strv_free(listed, listed_count);
	pthread_mutex_destroy(&ctx.lock);
	return err;
}
