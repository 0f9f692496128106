/*
 * scan.c - the records of one partition of a snapshot, across its chain of
 * segments, restricted to an offset and time window.
 *
 * Work is skipped at two levels: a whole segment whose manifest bounds miss
 * the window is never opened, and inside a segment a block whose seek-table
 * bounds miss it is never loaded.  Blocks are consumed record by record with
 * a count from the seek table, so the scan knows when a block ends before
 * the reader would load the next one, and can jump over it instead.
 */
#include "kt_store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct kt_store_scan {
	struct kt_store_repo *repo;
	const struct kt_store_partition *part;
	struct kt_store_range range;
	size_t next_segment;            /* index of the next segment to consider */
	struct kt_store_reader *reader; /* the open segment, or NULL */
	const char *reader_path;        /* its manifest path, for messages */
	size_t block;                   /* block the scan is in or goes to next */
	uint64_t left;                  /* records of `block` not yet read */
	int positioned;                 /* the reader's next record is block's next */
	int finished;                   /* nothing further can be in range */
	struct kt_store_read_stats closed; /* of the readers already closed */
	uint64_t blocks_total;          /* blocks of every segment opened */
};

void kt_store_range_init(struct kt_store_range *range)
{
	range->from_offset = INT64_MIN;
	range->to_offset = INT64_MAX;
	range->from_time = INT64_MIN;
	range->to_time = INT64_MAX;
}

int kt_store_scan_create(struct kt_store_scan **out, struct kt_store_repo *repo,
			 const struct kt_store_partition *part,
			 const struct kt_store_range *range,
			 char *errstr, size_t errstr_size)
{
	struct kt_store_scan *scan;

	*out = NULL;
	scan = calloc(1, sizeof(*scan));
	if (!scan)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "partition %d: out of memory for a scan", part->partition);
	scan->repo = repo;
	scan->part = part;
	if (range)
		scan->range = *range;
	else
		kt_store_range_init(&scan->range);
	/* An empty window yields nothing and opens nothing. */
	scan->finished = scan->range.from_offset >= scan->range.to_offset ||
			 scan->range.from_time >= scan->range.to_time;
	*out = scan;
	return 0;
}

static void close_segment(struct kt_store_scan *scan)
{
	struct kt_store_read_stats st;

	if (!scan->reader)
		return;
	kt_store_reader_stats(scan->reader, &st);
	scan->closed.blocks_loaded += st.blocks_loaded;
	scan->closed.stored_bytes_read += st.stored_bytes_read;
	scan->closed.raw_bytes_decoded += st.raw_bytes_decoded;
	kt_store_reader_destroy(scan->reader);
	scan->reader = NULL;
}

/* Do the bounds [first, last] x [min_ts, max_ts] miss the window? */
static int misses(const struct kt_store_range *r, int64_t first, int64_t last, int64_t min_ts, int64_t max_ts)
{
	return last < r->from_offset || first >= r->to_offset || max_ts < r->from_time || min_ts >= r->to_time;
}

/* Opens the next segment that can hold records in the window and finds its
 * first candidate block.  Returns 1 with a reader open, 0 when the
 * partition has nothing more in range, or a negative code. */
static int open_next_segment(struct kt_store_scan *scan, char *errstr, size_t errstr_size)
{
	const struct kt_store_range *r = &scan->range;
	char abs[PATH_MAX];
	int err;

	while (scan->next_segment < scan->part->segment_count) {
		const struct kt_store_segref *seg = &scan->part->segments[scan->next_segment++];
		size_t b_off = 0, b_time = 0;

		if (seg->records == 0)
			continue;
		/* Segments are in offset order: once one starts past the
		 * window, so do all that follow. */
		if (seg->first_offset >= r->to_offset)
			return 0;
		if (misses(r, seg->first_offset, seg->last_offset, seg->min_ts, seg->max_ts))
			continue;
		err = kt_store_repo_abs_path(scan->repo, seg->path, abs, sizeof(abs));
		if (err)
			return kt_seterr(errstr, errstr_size, err == KT_ECORRUPT ? KT_ECORRUPT : err,
					 "partition %d: segment path \"%s\" is not inside the repository",
					 scan->part->partition, seg->path);
		/* From the directory, or in place from an archive. */
		err = kt_store_repo_open_segment(scan->repo, seg->path, 0, &scan->reader, errstr, errstr_size);
		if (err)
			return err;
		scan->reader_path = seg->path;
		const struct kt_store_segment_info *info = kt_store_reader_info(scan->reader);
		/* The manifest names a segment by content; a different file at
		 * that path (restored from elsewhere, overwritten) is damage. */
		if (info->checksum != seg->checksum) {
			err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					"%s: segment checksum %016" PRIx64 " is not the %016" PRIx64
					" the manifest references", abs, info->checksum, seg->checksum);
			close_segment(scan);
			return err;
		}
		scan->blocks_total += info->block_count;
		if (r->from_offset != INT64_MIN &&
		    kt_store_reader_find_offset(scan->reader, r->from_offset, &b_off) == KT_ENOTFOUND) {
			close_segment(scan);
			continue;
		}
		if (r->from_time != INT64_MIN &&
		    kt_store_reader_find_time(scan->reader, r->from_time, &b_time) == KT_ENOTFOUND) {
			close_segment(scan);
			continue;
		}
		scan->block = b_off > b_time ? b_off : b_time;
		scan->left = 0;
		scan->positioned = 0;
		return 1;
	}
	return 0;
}

int kt_store_scan_next(struct kt_store_scan *scan, const struct kt_record **rec,
		       char *errstr, size_t errstr_size)
{
	const struct kt_store_range *r = &scan->range;
	int err;

	while (!scan->finished) {
		if (!scan->reader) {
			err = open_next_segment(scan, errstr, errstr_size);
			if (err <= 0) {
				scan->finished = err == 0;
				return err;
			}
		}
		if (scan->left == 0) {
			/* Between blocks: pick the next one worth loading. */
			const struct kt_store_block_info *bi = kt_store_reader_block(scan->reader, scan->block);
			if (!bi) {
				close_segment(scan);
				continue;
			}
			if (bi->first_offset >= r->to_offset) {
				close_segment(scan);
				scan->finished = 1;
				break;
			}
			if (bi->record_count == 0 ||
			    misses(r, bi->first_offset, bi->last_offset, bi->min_ts, bi->max_ts)) {
				scan->block++;
				scan->positioned = 0;
				continue;
			}
			if (!scan->positioned) {
				err = kt_store_reader_seek_block(scan->reader, scan->block, errstr, errstr_size);
				if (err)
					return err;
			}
			scan->left = bi->record_count;
			scan->positioned = 1;
		}
		err = kt_store_reader_next(scan->reader, rec, errstr, errstr_size);
		if (err < 0)
			return err;
		if (err == 0)
			return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					 "%s: block %zu ends %" PRIu64 " records before the count its seek table gives",
					 scan->reader_path, scan->block, scan->left);
		if (--scan->left == 0)
			scan->block++; /* the reader continues into it without a seek */
		const struct kt_record *rc = *rec;
		if (rc->offset >= r->to_offset) {
			close_segment(scan);
			scan->finished = 1;
			break;
		}
		if (rc->offset < r->from_offset || rc->timestamp < r->from_time || rc->timestamp >= r->to_time)
			continue;
		return 1;
	}
	*rec = NULL;
	return 0;
}

void kt_store_scan_stats(const struct kt_store_scan *scan,
			 struct kt_store_read_stats *stats, uint64_t *blocks_total)
{
	*stats = scan->closed;
	if (scan->reader) {
		struct kt_store_read_stats st;
		kt_store_reader_stats(scan->reader, &st);
		stats->blocks_loaded += st.blocks_loaded;
		stats->stored_bytes_read += st.stored_bytes_read;
		stats->raw_bytes_decoded += st.raw_bytes_decoded;
	}
	if (blocks_total)
		*blocks_total = scan->blocks_total;
}

void kt_store_scan_destroy(struct kt_store_scan *scan)
{
	if (!scan)
		return;
	close_segment(scan);
	free(scan);
}

struct kt_store_block *kt_store_scan_hold_block(struct kt_store_scan *scan)
{
	return scan->reader ? kt_store_reader_hold_block(scan->reader) : NULL;
}
