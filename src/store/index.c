/*
 * index.c - the .kti index file (format/segment.md section 5): building it
 * from a block list, checking a file on disk against a segment, and
 * rebuilding it from the segment alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kt_store.h"
#include "repo_priv.h"
#include "s3_repo_priv.h"
#include "segment_format.h"

size_t kt_seg_index_size(size_t n)
{
	return KT_IDX_HEADER_SIZE + n * KT_IDX_ENTRY_SIZE + KT_IDX_TRAILER_SIZE;
}

void kt_seg_index_pack(uint8_t *out, const struct kt_store_block_info *blocks, size_t n,
		       uint64_t segment_file_size, uint64_t segment_checksum)
{
	uint8_t *e = out + KT_IDX_HEADER_SIZE;
	int64_t running = INT64_MIN;

	memcpy(out, KT_IDX_MAGIC, 8);
	kt_put_le16(out + 8, KT_IDX_VERSION);
	kt_put_le16(out + 10, 0);
	kt_put_le32(out + 12, KT_IDX_ENTRY_SIZE);
	kt_put_le64(out + 16, n);
	kt_put_le64(out + 24, segment_file_size);
	kt_put_le64(out + 32, segment_checksum);
	kt_put_le64(out + 40, kt_seg_checksum(out, 40));
	for (size_t i = 0; i < n; i++, e += KT_IDX_ENTRY_SIZE) {
		if (blocks[i].max_ts > running)
			running = blocks[i].max_ts;
		kt_put_le64(e, (uint64_t)blocks[i].first_offset);
		kt_put_le64(e + 8, (uint64_t)blocks[i].last_offset);
		kt_put_le64(e + 16, blocks[i].file_offset);
		kt_put_le64(e + 24, (uint64_t)blocks[i].min_ts);
		kt_put_le64(e + 32, (uint64_t)blocks[i].max_ts);
		kt_put_le64(e + 40, (uint64_t)running);
	}
	kt_put_le64(e, kt_seg_checksum(out + KT_IDX_HEADER_SIZE, n * KT_IDX_ENTRY_SIZE));
}

/* Reads a whole small file; -ENOENT when absent. */
static int read_whole(const char *path, uint8_t **data, size_t *len, size_t max)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd, err = 0;

	*data = NULL;
	if (kt_s3_url_is_s3(path)) {
		/* The bound (the index of the blocks the seek table lists) is
		 * what keeps a hostile store from making us allocate without
		 * limit (format/object-storage.md section 5). */
		char *text = NULL;

		err = kt_s3_url_read(path, max, &text, len, NULL, 0);
		*data = (uint8_t *)text;
		return err == KT_ENOTFOUND ? -ENOENT : err;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		err = -EFBIG;
		goto out;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	while (done < (size_t)st.st_size) {
		ssize_t r = pread(fd, buf + done, (size_t)st.st_size - done, (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r < 0 ? -errno : -EIO;
			free(buf);
			goto out;
		}
		done += (size_t)r;
	}
	*data = buf;
	*len = done;
out:
	close(fd);
	return err;
}

int kt_seg_index_load(const char *index_path, const struct kt_store_block_info *blocks,
		      size_t n, uint64_t segment_file_size, uint64_t segment_checksum,
		      int64_t *running_max_ts, char *errstr, size_t errstr_size)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int err;

	/* An index is never much larger than one entry per block makes it;
	 * the margin lets a newer version's header be recognised. */
	err = read_whole(index_path, &data, &len, kt_seg_index_size(n) + 65536);
	if (err == -ENOENT)
		return err;
	if (err == -EFBIG) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"index %s does not match its segment: it is larger than "
				"%zu blocks need", index_path, n);
		goto out;
	}
	if (err) {
		err = kt_seterr(errstr, errstr_size, err, "index %s: cannot read: %s",
				index_path, kt_strerror(err));
		goto out;
	}
	err = kt_store_index_check(index_path, data, len, blocks, n, segment_file_size, segment_checksum,
				   running_max_ts, errstr, errstr_size);
out:
	free(data);
	return err;
}

int kt_store_index_check(const char *index_path, const uint8_t *data, size_t len,
			 const struct kt_store_block_info *blocks, size_t n,
			 uint64_t segment_file_size, uint64_t segment_checksum,
			 int64_t *running_max_ts, char *errstr, size_t errstr_size)
{
	const uint8_t *e;
	int64_t running = INT64_MIN;
	int err;

	/* Checked in the order of segment.md section 7 rows 19-20: a right
	 * magic with a newer version is KT_EVERSION before anything else. */
	if (len < 8 || memcmp(data, KT_IDX_MAGIC, 8) != 0) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"index %s is damaged: no index magic at byte 0", index_path);
		goto out;
	}
	if (len >= 10 && kt_le16(data + 8) > KT_IDX_VERSION) {
		err = kt_seterr(errstr, errstr_size, KT_EVERSION,
				"index %s has format version %u, newer than this ktape knows",
				index_path, kt_le16(data + 8));
		goto out;
	}
	if (len < KT_IDX_HEADER_SIZE) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"index %s is damaged: it ends inside its %d-byte header",
				index_path, KT_IDX_HEADER_SIZE);
		goto out;
	}
	if (kt_le64(data + 40) != kt_seg_checksum(data, 40)) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"index %s is damaged: header checksum mismatch at byte 40",
				index_path);
		goto out;
	}
	if (kt_le16(data + 8) == 0 || kt_le16(data + 10) != 0 ||
	    kt_le32(data + 12) != KT_IDX_ENTRY_SIZE) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"index %s is damaged: bad version, reserved field or entry "
				"size in its header", index_path);
		goto out;
	}
	if (kt_le64(data + 16) != n || kt_le64(data + 24) != segment_file_size ||
	    kt_le64(data + 32) != segment_checksum) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"index %s does not match its segment: it describes %llu blocks "
				"of a %llu-byte segment with checksum %016llx, the segment has "
				"%zu blocks, %llu bytes, checksum %016llx", index_path,
				(unsigned long long)kt_le64(data + 16),
				(unsigned long long)kt_le64(data + 24),
				(unsigned long long)kt_le64(data + 32), n,
				(unsigned long long)segment_file_size,
				(unsigned long long)segment_checksum);
		goto out;
	}
	if (len != kt_seg_index_size(n)) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"index %s is damaged: %zu bytes long, %zu expected", index_path,
				len, kt_seg_index_size(n));
		goto out;
	}
	e = data + KT_IDX_HEADER_SIZE;
	if (kt_le64(e + n * KT_IDX_ENTRY_SIZE) !=
	    kt_seg_checksum(e, n * KT_IDX_ENTRY_SIZE)) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"index %s is damaged: entries checksum mismatch at byte %zu",
				index_path, KT_IDX_HEADER_SIZE + n * KT_IDX_ENTRY_SIZE);
		goto out;
	}
	for (size_t i = 0; i < n; i++, e += KT_IDX_ENTRY_SIZE) {
		if (blocks[i].max_ts > running)
			running = blocks[i].max_ts;
		if ((int64_t)kt_le64(e) != blocks[i].first_offset ||
		    (int64_t)kt_le64(e + 8) != blocks[i].last_offset ||
		    kt_le64(e + 16) != blocks[i].file_offset ||
		    (int64_t)kt_le64(e + 24) != blocks[i].min_ts ||
		    (int64_t)kt_le64(e + 32) != blocks[i].max_ts ||
		    (int64_t)kt_le64(e + 40) != running) {
			err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					"index %s does not match its segment: entry %zu (byte "
					"%zu) disagrees with block %zu", index_path, i,
					(size_t)(e - data), i);
			goto out;
		}
		running_max_ts[i] = running;
	}
	err = 0;
out:
	return err;
}

int kt_seg_index_write(const char *segment_path, const struct kt_store_block_info *blocks,
		       size_t n, uint64_t segment_file_size, uint64_t segment_checksum,
		       unsigned file_mode, char *errstr, size_t errstr_size)
{
	char ipath[PATH_MAX];
	size_t len = kt_seg_index_size(n);
	uint8_t *buf;
	int err;

	err = kt_store_index_path(segment_path, ipath, sizeof(ipath));
	if (err)
		return kt_seterr(errstr, errstr_size, err, "segment %s: index path too long",
				 segment_path);
	buf = malloc(len);
	if (!buf)
		return kt_seterr(errstr, errstr_size, -ENOMEM,
				 "index %s: out of memory for %zu blocks", ipath, n);
	kt_seg_index_pack(buf, blocks, n, segment_file_size, segment_checksum);
	if (kt_s3_url_is_s3(ipath))
		err = kt_s3_url_write(ipath, buf, len, 0, errstr, errstr_size);
	else
		err = kt_write_file_atomic(ipath, buf, len, file_mode ? file_mode : 0600,
					   errstr, errstr_size);
	free(buf);
	return err;
}

int kt_store_index_rebuild(const char *segment_path, unsigned file_mode,
			   char *errstr, size_t errstr_size)
{
	struct kt_store_reader *reader = NULL;
	const struct kt_store_segment_info *info;
	struct kt_store_block_info *blocks = NULL;
	int err;

	/* Without recovery: a torn segment has no valid index (segment.md 5),
	 * so rebuilding one for it would only describe blocks a reader will
	 * not trust the index for; the open error says the file is torn. */
	err = kt_store_reader_open(&reader, segment_path, KT_STORE_OPEN_NO_INDEX,
				   errstr, errstr_size);
	if (err)
		goto out;
	info = kt_store_reader_info(reader);
	blocks = malloc((info->block_count ? info->block_count : 1) * sizeof(*blocks));
	if (!blocks) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM,
				"segment %s: out of memory for its block list", segment_path);
		goto out;
	}
	for (size_t i = 0; i < info->block_count; i++)
		blocks[i] = *kt_store_reader_block(reader, i);
	err = kt_seg_index_write(segment_path, blocks, info->block_count, info->file_size,
				 info->checksum, file_mode, errstr, errstr_size);
out:
	free(blocks);
	kt_store_reader_destroy(reader);
	return err;
}
