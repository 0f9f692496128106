/*
 * segment_format.h - private to src/store: the byte layout of segment and
 * index files (format/segment.md), in one place.
 *
 * Every structure of the format has a pack function that writes it exactly
 * as the byte tables say (computing its checksum) and an unpack function
 * that reads it back and checks everything the structure alone can prove:
 * magic, checksum, reserved fields, value ranges.  Unpack functions return
 * 0 or a KT_E* code and set *why to a static phrase; the caller adds the
 * file, block number and byte offset, which only it knows.
 *
 * Little-endian loads/stores and varints are inline because the record
 * encoder and parser run them for every field of every record.
 */
#ifndef KT_STORE_SEGMENT_FORMAT_H
#define KT_STORE_SEGMENT_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kt_store.h"

/* ---- sizes and magics (format/segment.md) -------------------------------- */

#define KT_SEG_MAGIC "KTAPESEG"
#define KT_SEG_MAGIC_LEN 8
#define KT_SEG_VERSION 1
#define KT_SEG_FILE_HEADER_FIXED 32 /* bytes before the topic name */
#define KT_SEG_FILE_HEADER_MIN 40   /* header with an empty topic */
#define KT_SEG_FILE_HEADER_MAX (KT_SEG_FILE_HEADER_MIN + KT_STORE_MAX_TOPIC_LEN)

#define KT_SEG_BLOCK_MAGIC "KTBK"
#define KT_SEG_BLOCK_HEADER_SIZE 72

#define KT_SEG_SEEK_MAGIC "KTSK"
#define KT_SEG_SEEK_HEADER_SIZE 16
#define KT_SEG_SEEK_ENTRY_SIZE 64

#define KT_SEG_FOOTER_SIZE 80
#define KT_SEG_END_MAGIC "KTSEGEND"

#define KT_IDX_MAGIC "KTAPEIDX"
#define KT_IDX_VERSION 1
#define KT_IDX_HEADER_SIZE 48
#define KT_IDX_ENTRY_SIZE 48
#define KT_IDX_TRAILER_SIZE 8

/* Record attribute bits. */
#define KT_SEG_ATTR_TS_MASK 0x03u
#define KT_SEG_ATTR_KEY_NULL 0x04u
#define KT_SEG_ATTR_VALUE_NULL 0x08u
#define KT_SEG_ATTR_RESERVED 0xf0u

#define KT_SEG_VARINT_MAX 10

/* Largest raw block a reader accepts: a writer's largest block size
 * (256 MiB) plus one record of the largest encoded size.  It bounds the
 * memory a hostile block header can make a reader allocate. */
#define KT_SEG_MAX_RAW_SIZE ((256u << 20) + KT_STORE_MAX_RECORD_SIZE + 64u)

/* ---- little-endian ------------------------------------------------------- */

static inline uint16_t kt_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t kt_le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static inline uint64_t kt_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline void kt_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void kt_put_le32(uint8_t *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	memcpy(p, &v, 4);
}

static inline void kt_put_le64(uint8_t *p, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	memcpy(p, &v, 8);
}

/* ---- varints (unsigned LEB128, at most 10 bytes) -------------------------- */

/* Bytes the varint encoding of v takes. */
static inline size_t kt_varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Writes v at p (room for KT_SEG_VARINT_MAX bytes assumed); returns the
 * byte after it. */
static inline uint8_t *kt_varint_put(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Reads a varint from [*pp, end).  Returns 0 and advances *pp, or -1 when
 * the bytes end first, the encoding runs past 10 bytes, the value does not
 * fit in 64 bits (the tenth byte may only carry bit 63), or the encoding is
 * not the shortest (a last byte of 0 after others), so that every value
 * has exactly one encoding (format/README.md). */
static inline int kt_varint_get(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
	const uint8_t *p = *pp;
	uint64_t v;

	if (p < end && *p < 0x80) {
		/* One-byte values are by far the most frequent (deltas, counts,
		 * short lengths). */
		*out = *p;
		*pp = p + 1;
		return 0;
	}
	v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t b;
		if (p >= end)
			return -1;
		b = *p++;
		if (shift == 63 && b > 1)
			return -1;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (b < 0x80) {
			if (b == 0)
				return -1;
			*out = v;
			*pp = p;
			return 0;
		}
	}
	return -1;
}

/* ---- structures ---------------------------------------------------------- */

/* XXH3-64 with seed 0, the format's only checksum. */
uint64_t kt_seg_checksum(const void *data, size_t len);

struct kt_seg_file_header {
	uint16_t version;
	uint16_t header_size;
	int32_t partition;
	uint16_t topic_len;
	int64_t created_ms;
	const char *topic; /* unpack: points into the input bytes */
};

/* Writes a file header of 40 + topic_len bytes into out; returns its size. */
size_t kt_seg_file_header_pack(uint8_t *out, const struct kt_seg_file_header *hdr);

/* Checks a file header, in the order of format/segment.md section 7 rows
 * 1-5: magic (KT_EMAGIC), version (KT_EVERSION, or KT_ECORRUPT for 0), a
 * file that ends inside the header (KT_ETRUNCATED), then checksum, reserved
 * fields, topic length, header size, partition and topic bytes
 * (KT_ECORRUPT).  in holds the first len bytes of a file_size-byte file. */
int kt_seg_file_header_unpack(const uint8_t *in, size_t len, uint64_t file_size,
			      struct kt_seg_file_header *hdr, const char **why);

/* Block header: the fields of struct kt_store_block_info except
 * file_offset, which is where it lies. */
void kt_seg_block_header_pack(uint8_t out[KT_SEG_BLOCK_HEADER_SIZE],
			      const struct kt_store_block_info *blk);
int kt_seg_block_header_unpack(const uint8_t in[KT_SEG_BLOCK_HEADER_SIZE],
			       struct kt_store_block_info *blk, const char **why);

/* Seek table entry. */
void kt_seg_seek_entry_pack(uint8_t out[KT_SEG_SEEK_ENTRY_SIZE],
			    const struct kt_store_block_info *blk);
int kt_seg_seek_entry_unpack(const uint8_t in[KT_SEG_SEEK_ENTRY_SIZE],
			     struct kt_store_block_info *blk, const char **why);

/* Nonzero when two descriptions of one block agree in every field. */
int kt_seg_block_info_equal(const struct kt_store_block_info *a,
			    const struct kt_store_block_info *b);

/* Writes the seek table of n blocks (16 + 64 n bytes) into out; returns
 * its XXH3-64, the segment checksum. */
uint64_t kt_seg_seek_table_pack(uint8_t *out, const struct kt_store_block_info *blocks,
				size_t n);

struct kt_seg_footer {
	uint64_t seek_table_offset;
	uint64_t block_count;
	uint64_t record_count;
	int64_t first_offset;
	int64_t last_offset;
	int64_t min_ts;
	int64_t max_ts;
	uint64_t segment_checksum;
};

void kt_seg_footer_pack(uint8_t out[KT_SEG_FOOTER_SIZE], const struct kt_seg_footer *ftr);
/* KT_ETRUNCATED when the end magic or checksum is wrong: a footer that is
 * not whole is a torn file, not a corrupt one (format/segment.md 7). */
int kt_seg_footer_unpack(const uint8_t in[KT_SEG_FOOTER_SIZE], struct kt_seg_footer *ftr,
			 const char **why);

/* Computes the footer aggregates of a block list. */
void kt_seg_footer_from_blocks(struct kt_seg_footer *ftr,
			       const struct kt_store_block_info *blocks, size_t n);

/* ---- index files (implemented in index.c) -------------------------------- */

/* Size of the index of n blocks. */
size_t kt_seg_index_size(size_t n);

/* Writes the index of n blocks into out (kt_seg_index_size(n) bytes). */
void kt_seg_index_pack(uint8_t *out, const struct kt_store_block_info *blocks, size_t n,
		       uint64_t segment_file_size, uint64_t segment_checksum);

/* Reads the index file at index_path and checks it describes exactly the
 * given segment (file size, segment checksum, every entry).  On success
 * fills running_max_ts[0..n) from it.  Returns 0, -ENOENT when the file is
 * absent, or KT_ECORRUPT (KT_EVERSION for a newer version) with errstr
 * saying how it differs. */
int kt_seg_index_load(const char *index_path, const struct kt_store_block_info *blocks,
		      size_t n, uint64_t segment_file_size, uint64_t segment_checksum,
		      int64_t *running_max_ts, char *errstr, size_t errstr_size);

/* Writes the index for a segment by temp file + fsync + rename, fsyncing
 * the directory. */
int kt_seg_index_write(const char *segment_path, const struct kt_store_block_info *blocks,
		       size_t n, uint64_t segment_file_size, uint64_t segment_checksum,
		       unsigned file_mode, char *errstr, size_t errstr_size);

#endif /* KT_STORE_SEGMENT_FORMAT_H */
