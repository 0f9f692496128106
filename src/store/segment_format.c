/* Pack and unpack of the fixed structures of format/segment.md. */
#include "segment_format.h"

#include <xxhash.h>

uint64_t kt_seg_checksum(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}

/* ---- file header ---------------------------------------------------------- */

size_t kt_seg_file_header_pack(uint8_t *out, const struct kt_seg_file_header *hdr)
{
	size_t body = KT_SEG_FILE_HEADER_FIXED + hdr->topic_len;

	memcpy(out, KT_SEG_MAGIC, KT_SEG_MAGIC_LEN);
	kt_put_le16(out + 8, KT_SEG_VERSION);
	kt_put_le16(out + 10, (uint16_t)(body + 8));
	kt_put_le32(out + 12, 0);
	kt_put_le32(out + 16, (uint32_t)hdr->partition);
	kt_put_le16(out + 20, hdr->topic_len);
	kt_put_le16(out + 22, 0);
	kt_put_le64(out + 24, (uint64_t)hdr->created_ms);
	memcpy(out + KT_SEG_FILE_HEADER_FIXED, hdr->topic, hdr->topic_len);
	kt_put_le64(out + body, kt_seg_checksum(out, body));
	return body + 8;
}

int kt_seg_file_header_unpack(const uint8_t *in, size_t len, uint64_t file_size,
			      struct kt_seg_file_header *hdr, const char **why)
{
	size_t body;

	if (len < KT_SEG_FILE_HEADER_MIN || memcmp(in, KT_SEG_MAGIC, KT_SEG_MAGIC_LEN) != 0) {
		*why = "is not a ktape segment (file header magic missing)";
		return KT_EMAGIC;
	}
	hdr->version = kt_le16(in + 8);
	hdr->header_size = kt_le16(in + 10);
	hdr->partition = (int32_t)kt_le32(in + 16);
	hdr->topic_len = kt_le16(in + 20);
	hdr->created_ms = (int64_t)kt_le64(in + 24);
	hdr->topic = (const char *)in + KT_SEG_FILE_HEADER_FIXED;
	if (hdr->version > KT_SEG_VERSION) {
		*why = "has a format version from the future";
		return KT_EVERSION;
	}
	if (hdr->version == 0) {
		*why = "has format version 0, which does not exist";
		return KT_ECORRUPT;
	}
	if (file_size < (uint64_t)KT_SEG_FILE_HEADER_MIN + hdr->topic_len) {
		*why = "ends inside its file header";
		return KT_ETRUNCATED;
	}
	if (hdr->topic_len == 0 || hdr->topic_len > KT_STORE_MAX_TOPIC_LEN) {
		*why = "has a topic name length outside 1..249 in its file header";
		return KT_ECORRUPT;
	}
	body = KT_SEG_FILE_HEADER_FIXED + hdr->topic_len;
	if (len < body + 8) {
		*why = "ends inside its file header";
		return KT_ETRUNCATED;
	}
	if (kt_le64(in + body) != kt_seg_checksum(in, body)) {
		*why = "has a file header checksum mismatch";
		return KT_ECORRUPT;
	}
	if (kt_le32(in + 12) != 0 || kt_le16(in + 22) != 0) {
		*why = "has nonzero flags or reserved fields in its file header";
		return KT_ECORRUPT;
	}
	if (hdr->header_size != KT_SEG_FILE_HEADER_MIN + hdr->topic_len) {
		*why = "has a file header size that disagrees with its topic length";
		return KT_ECORRUPT;
	}
	if (hdr->partition < 0) {
		*why = "has a negative partition in its file header";
		return KT_ECORRUPT;
	}
	if (memchr(hdr->topic, 0, hdr->topic_len) != NULL) {
		*why = "has a NUL byte in its topic name";
		return KT_ECORRUPT;
	}
	return 0;
}

/* ---- blocks --------------------------------------------------------------- */

/* The checks a block description must pass wherever it is read from. */
static int block_fields_check(const struct kt_store_block_info *blk, const char **why)
{
	if (blk->codec != KT_CODEC_NONE && blk->codec != KT_CODEC_ZSTD) {
		*why = "has an unknown codec";
		return KT_ECORRUPT;
	}
	if (blk->record_count == 0) {
		*why = "has a record count of 0";
		return KT_ECORRUPT;
	}
	if (blk->raw_size > KT_SEG_MAX_RAW_SIZE) {
		*why = "has a raw size larger than any writer produces";
		return KT_ECORRUPT;
	}
	if (blk->codec == KT_CODEC_NONE && blk->raw_size != blk->stored_size) {
		*why = "is uncompressed but its raw and stored sizes differ";
		return KT_ECORRUPT;
	}
	if (blk->first_offset < 0) {
		*why = "has a negative first offset";
		return KT_ECORRUPT;
	}
	if (blk->last_offset < blk->first_offset ||
	    (uint64_t)blk->last_offset - (uint64_t)blk->first_offset < blk->record_count - 1) {
		*why = "has an offset range too small for its record count";
		return KT_ECORRUPT;
	}
	if (blk->min_ts > blk->max_ts) {
		*why = "has min_ts above max_ts";
		return KT_ECORRUPT;
	}
	return 0;
}

/* Bytes 24-63 are laid out alike in a block header and a seek table entry:
 * first_offset, last_offset, min_ts, max_ts, payload_checksum. */
static void put_block_bounds(uint8_t *out, const struct kt_store_block_info *blk)
{
	kt_put_le64(out + 24, (uint64_t)blk->first_offset);
	kt_put_le64(out + 32, (uint64_t)blk->last_offset);
	kt_put_le64(out + 40, (uint64_t)blk->min_ts);
	kt_put_le64(out + 48, (uint64_t)blk->max_ts);
	kt_put_le64(out + 56, blk->checksum);
}

static void get_block_bounds(const uint8_t *in, struct kt_store_block_info *blk)
{
	blk->first_offset = (int64_t)kt_le64(in + 24);
	blk->last_offset = (int64_t)kt_le64(in + 32);
	blk->min_ts = (int64_t)kt_le64(in + 40);
	blk->max_ts = (int64_t)kt_le64(in + 48);
	blk->checksum = kt_le64(in + 56);
}

void kt_seg_block_header_pack(uint8_t out[KT_SEG_BLOCK_HEADER_SIZE],
			      const struct kt_store_block_info *blk)
{
	memcpy(out, KT_SEG_BLOCK_MAGIC, 4);
	out[4] = (uint8_t)blk->codec;
	out[5] = 0;
	kt_put_le16(out + 6, 0);
	kt_put_le32(out + 8, blk->record_count);
	kt_put_le32(out + 12, blk->stored_size);
	kt_put_le32(out + 16, blk->raw_size);
	kt_put_le32(out + 20, 0);
	put_block_bounds(out, blk);
	kt_put_le64(out + 64, kt_seg_checksum(out, 64));
}

int kt_seg_block_header_unpack(const uint8_t in[KT_SEG_BLOCK_HEADER_SIZE],
			       struct kt_store_block_info *blk, const char **why)
{
	if (memcmp(in, KT_SEG_BLOCK_MAGIC, 4) != 0) {
		*why = "has no block header magic";
		return KT_ECORRUPT;
	}
	if (kt_le64(in + 64) != kt_seg_checksum(in, 64)) {
		*why = "has a block header checksum mismatch";
		return KT_ECORRUPT;
	}
	if (in[5] != 0 || kt_le16(in + 6) != 0 || kt_le32(in + 20) != 0) {
		*why = "has nonzero reserved bits in its block header";
		return KT_ECORRUPT;
	}
	blk->codec = in[4];
	blk->record_count = kt_le32(in + 8);
	blk->stored_size = kt_le32(in + 12);
	blk->raw_size = kt_le32(in + 16);
	get_block_bounds(in, blk);
	return block_fields_check(blk, why);
}

void kt_seg_seek_entry_pack(uint8_t out[KT_SEG_SEEK_ENTRY_SIZE],
			    const struct kt_store_block_info *blk)
{
	kt_put_le64(out, blk->file_offset);
	kt_put_le32(out + 8, blk->stored_size);
	kt_put_le32(out + 12, blk->raw_size);
	kt_put_le32(out + 16, blk->record_count);
	out[20] = (uint8_t)blk->codec;
	out[21] = out[22] = out[23] = 0;
	put_block_bounds(out, blk);
}

int kt_seg_seek_entry_unpack(const uint8_t in[KT_SEG_SEEK_ENTRY_SIZE],
			     struct kt_store_block_info *blk, const char **why)
{
	if (in[21] != 0 || in[22] != 0 || in[23] != 0) {
		*why = "has nonzero reserved bytes in its seek table entry";
		return KT_ECORRUPT;
	}
	blk->file_offset = kt_le64(in);
	blk->stored_size = kt_le32(in + 8);
	blk->raw_size = kt_le32(in + 12);
	blk->record_count = kt_le32(in + 16);
	blk->codec = in[20];
	get_block_bounds(in, blk);
	return block_fields_check(blk, why);
}

int kt_seg_block_info_equal(const struct kt_store_block_info *a,
			    const struct kt_store_block_info *b)
{
	return a->stored_size == b->stored_size && a->raw_size == b->raw_size &&
	       a->record_count == b->record_count && a->codec == b->codec &&
	       a->first_offset == b->first_offset && a->last_offset == b->last_offset &&
	       a->min_ts == b->min_ts && a->max_ts == b->max_ts &&
	       a->checksum == b->checksum;
}

uint64_t kt_seg_seek_table_pack(uint8_t *out, const struct kt_store_block_info *blocks,
				size_t n)
{
	memcpy(out, KT_SEG_SEEK_MAGIC, 4);
	kt_put_le32(out + 4, KT_SEG_SEEK_ENTRY_SIZE);
	kt_put_le64(out + 8, n);
	for (size_t i = 0; i < n; i++)
		kt_seg_seek_entry_pack(out + KT_SEG_SEEK_HEADER_SIZE + i * KT_SEG_SEEK_ENTRY_SIZE,
				       &blocks[i]);
	return kt_seg_checksum(out, KT_SEG_SEEK_HEADER_SIZE + n * KT_SEG_SEEK_ENTRY_SIZE);
}

/* ---- footer --------------------------------------------------------------- */

void kt_seg_footer_pack(uint8_t out[KT_SEG_FOOTER_SIZE], const struct kt_seg_footer *ftr)
{
	kt_put_le64(out, ftr->seek_table_offset);
	kt_put_le64(out + 8, ftr->block_count);
	kt_put_le64(out + 16, ftr->record_count);
	kt_put_le64(out + 24, (uint64_t)ftr->first_offset);
	kt_put_le64(out + 32, (uint64_t)ftr->last_offset);
	kt_put_le64(out + 40, (uint64_t)ftr->min_ts);
	kt_put_le64(out + 48, (uint64_t)ftr->max_ts);
	kt_put_le64(out + 56, ftr->segment_checksum);
	kt_put_le64(out + 64, kt_seg_checksum(out, 64));
	memcpy(out + 72, KT_SEG_END_MAGIC, 8);
}

int kt_seg_footer_unpack(const uint8_t in[KT_SEG_FOOTER_SIZE], struct kt_seg_footer *ftr,
			 const char **why)
{
	if (memcmp(in + 72, KT_SEG_END_MAGIC, 8) != 0) {
		*why = "has no footer (end magic missing): the segment was not sealed or is torn";
		return KT_ETRUNCATED;
	}
	if (kt_le64(in + 64) != kt_seg_checksum(in, 64)) {
		*why = "has a footer checksum mismatch: the segment is torn";
		return KT_ETRUNCATED;
	}
	ftr->seek_table_offset = kt_le64(in);
	ftr->block_count = kt_le64(in + 8);
	ftr->record_count = kt_le64(in + 16);
	ftr->first_offset = (int64_t)kt_le64(in + 24);
	ftr->last_offset = (int64_t)kt_le64(in + 32);
	ftr->min_ts = (int64_t)kt_le64(in + 40);
	ftr->max_ts = (int64_t)kt_le64(in + 48);
	ftr->segment_checksum = kt_le64(in + 56);
	return 0;
}

void kt_seg_footer_from_blocks(struct kt_seg_footer *ftr,
			       const struct kt_store_block_info *blocks, size_t n)
{
	ftr->block_count = n;
	ftr->record_count = 0;
	ftr->first_offset = n ? blocks[0].first_offset : -1;
	ftr->last_offset = n ? blocks[n - 1].last_offset : -1;
	ftr->min_ts = INT64_MAX;
	ftr->max_ts = INT64_MIN;
	for (size_t i = 0; i < n; i++) {
		ftr->record_count += blocks[i].record_count;
		if (blocks[i].min_ts < ftr->min_ts)
			ftr->min_ts = blocks[i].min_ts;
		if (blocks[i].max_ts > ftr->max_ts)
			ftr->max_ts = blocks[i].max_ts;
	}
}
