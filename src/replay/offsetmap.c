/*
 * offsetmap.c - the offset map of a restore: building it as acknowledgements
 * arrive, translating committed offsets through it, and its file format
 * (format/restore.md section 4).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "kt_common.h"
#include "checkpoint_priv.h"
#include "offsetmap_priv.h"

#define OMAP_MAGIC "KTAPEOFM"
#define OMAP_VERSION 1
#define OMAP_HEADER_SIZE 24
#define OMAP_SECTION_SIZE 40
#define OMAP_TRAILER_SIZE 8
#define OMAP_MAX_TOPIC 249
/* A decoded file bigger than this is refused rather than read into memory:
 * even a per-record map of a billion records stays well below it. */
#define OMAP_MAX_FILE (64ull << 30)

struct kt_replay_omap *kt_replay_omap_create(void)
{
	struct kt_replay_omap *map = calloc(1, sizeof(*map));

	if (map)
		map->created_ms = kt_wall_ms();
	return map;
}

void kt_replay_omap_destroy(struct kt_replay_omap *map)
{
	if (!map)
		return;
	for (size_t i = 0; i < map->section_count; i++) {
		free(map->sections[i].topic);
		free(map->sections[i].source_topic);
		free(map->sections[i].runs);
	}
	free(map->sections);
	free(map);
}

long kt_replay_omap_add_section(struct kt_replay_omap *map, const char *topic,
				const char *source_topic, int32_t partition,
				int64_t base_offset)
{
	struct kt_replay_omap_section *section;

	if (map->section_count == map->section_cap) {
		size_t cap = map->section_cap ? map->section_cap * 2 : 8;
		void *p = realloc(map->sections, cap * sizeof(*map->sections));

		if (!p)
			return -ENOMEM;
		map->sections = p;
		map->section_cap = cap;
	}
	section = &map->sections[map->section_count];
	memset(section, 0, sizeof(*section));
	section->topic = strdup(topic);
	section->source_topic = strdup(source_topic);
	if (!section->topic || !section->source_topic) {
		free(section->topic);
		free(section->source_topic);
		return -ENOMEM;
	}
	section->partition = partition;
	section->base_offset = base_offset;
	section->end_offset = base_offset;
	return (long)map->section_count++;
}

int kt_replay_omap_append(struct kt_replay_omap_section *section,
			  int32_t source_partition, int64_t source_offset,
			  int64_t target_offset)
{
	struct kt_replay_omap_run *last;

	if (target_offset < section->end_offset || source_offset < 0)
		return KT_ERANGE;
	last = section->run_count ? &section->runs[section->run_count - 1] : NULL;
	if (last && last->source_partition == source_partition &&
	    last->source_offset + (int64_t)last->count == source_offset &&
	    last->target_offset + (int64_t)last->count == target_offset) {
		last->count++;
	} else {
		if (section->run_count == section->run_cap) {
			size_t cap = section->run_cap ? section->run_cap * 2 : 4;
			void *p = realloc(section->runs, cap * sizeof(*section->runs));

			if (!p)
				return -ENOMEM;
			section->runs = p;
			section->run_cap = cap;
		}
		section->runs[section->run_count++] = (struct kt_replay_omap_run){
			.source_partition = source_partition,
			.source_offset = source_offset,
			.target_offset = target_offset,
			.count = 1,
		};
	}
	section->record_count++;
	section->end_offset = target_offset + 1;
	return 0;
}

int kt_replay_omap_translate(const struct kt_replay_omap_section *section,
			     int32_t source_partition, int64_t source_offset,
			     int64_t *target)
{
	int seen = 0;

	/* Runs are in target order, and within one source partition also in
	 * source order (a partition's records are sent in offset order), so
	 * the first run of the partition that reaches past source_offset holds
	 * the answer.  A linear walk: translation happens once per group and
	 * partition, not per record. */
	for (size_t i = 0; i < section->run_count; i++) {
		const struct kt_replay_omap_run *run = &section->runs[i];

		if (run->source_partition != source_partition)
			continue;
		seen = 1;
		if (run->source_offset + (int64_t)run->count > source_offset) {
			int64_t skip = source_offset - run->source_offset;

			*target = run->target_offset + (skip > 0 ? skip : 0);
			return 0;
		}
	}
	if (!seen)
		return KT_ENOTFOUND;
	*target = section->end_offset;
	return 1;
}

const struct kt_replay_omap_section *
kt_replay_omap_find(const struct kt_replay_omap *map, const char *topic, int32_t partition)
{
	for (size_t i = 0; i < map->section_count; i++)
		if (map->sections[i].partition == partition &&
		    strcmp(map->sections[i].topic, topic) == 0)
			return &map->sections[i];
	return NULL;
}

/* ---- encoding ------------------------------------------------------------ */

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Reads a shortest-form varint (format/README.md); -1 when it is overlong,
 * runs past end, or does not fit in 64 bits. */
static int varint_get(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;

	for (unsigned i = 0; i < 10; i++) {
		if (p >= end)
			return -1;
		uint8_t b = *p++;

		if (i == 9 && b > 1)
			return -1;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			if (i > 0 && b == 0)
				return -1;
			*pp = p;
			*out = v;
			return 0;
		}
	}
	return -1;
}

static uint64_t zigzag(int64_t d)
{
	return ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static int section_cmp(const void *a, const void *b)
{
	const struct kt_replay_omap_section *x = *(const struct kt_replay_omap_section *const *)a;
	const struct kt_replay_omap_section *y = *(const struct kt_replay_omap_section *const *)b;
	int c = strcmp(x->topic, y->topic);

	if (c)
		return c;
	return (x->partition > y->partition) - (x->partition < y->partition);
}

int kt_replay_omap_encode(const struct kt_replay_omap *map, uint8_t **out, size_t *out_len,
			  char *errstr, size_t errstr_size)
{
	const struct kt_replay_omap_section **order = NULL;
	uint8_t *buf = NULL, *p;
	size_t size = OMAP_HEADER_SIZE + OMAP_TRAILER_SIZE;
	int err = 0;

	if (map->section_count > UINT32_MAX)
		return kt_seterr(errstr, errstr_size, KT_ERANGE,
				 "offset map has too many sections (%zu)", map->section_count);
	order = malloc((map->section_count ? map->section_count : 1) * sizeof(*order));
	if (!order)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory encoding the offset map");
	for (size_t i = 0; i < map->section_count; i++) {
		const struct kt_replay_omap_section *s = &map->sections[i];
		size_t tl = strlen(s->topic), sl = strlen(s->source_topic);

		if (tl < 1 || tl > OMAP_MAX_TOPIC || sl < 1 || sl > OMAP_MAX_TOPIC) {
			err = kt_seterr(errstr, errstr_size, KT_EUSAGE,
					"offset map section %zu has a topic name of invalid length", i);
			goto out;
		}
		order[i] = s;
		/* Four varints of at most 10 bytes each per run. */
		size += OMAP_SECTION_SIZE + tl + sl + s->run_count * 40;
	}
	qsort(order, map->section_count, sizeof(*order), section_cmp);
	for (size_t i = 1; i < map->section_count; i++) {
		if (section_cmp(&order[i - 1], &order[i]) == 0) {
			err = kt_seterr(errstr, errstr_size, KT_EUSAGE,
					"offset map has two sections for %s[%" PRId32 "]",
					order[i]->topic, order[i]->partition);
			goto out;
		}
	}
	buf = malloc(size);
	if (!buf) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM,
				"out of memory encoding an offset map of %zu bytes", size);
		goto out;
	}
	memcpy(buf, OMAP_MAGIC, 8);
	put_u16(buf + 8, OMAP_VERSION);
	put_u16(buf + 10, 0);
	put_u32(buf + 12, (uint32_t)map->section_count);
	put_u64(buf + 16, (uint64_t)map->created_ms);
	p = buf + OMAP_HEADER_SIZE;
	for (size_t i = 0; i < map->section_count; i++) {
		const struct kt_replay_omap_section *s = order[i];
		size_t tl = strlen(s->topic), sl = strlen(s->source_topic);
		int64_t prev_src = 0, prev_tgt = s->base_offset;

		put_u16(p, (uint16_t)tl);
		put_u16(p + 2, (uint16_t)sl);
		put_u32(p + 4, (uint32_t)s->partition);
		put_u64(p + 8, (uint64_t)s->base_offset);
		put_u64(p + 16, (uint64_t)s->end_offset);
		put_u64(p + 24, s->run_count);
		put_u64(p + 32, s->record_count);
		memcpy(p + 40, s->topic, tl);
		memcpy(p + 40 + tl, s->source_topic, sl);
		p += OMAP_SECTION_SIZE + tl + sl;
		for (size_t r = 0; r < s->run_count; r++) {
			const struct kt_replay_omap_run *run = &s->runs[r];

			p += varint_put(p, (uint64_t)run->source_partition);
			p += varint_put(p, zigzag(run->source_offset - prev_src));
			p += varint_put(p, (uint64_t)(run->target_offset - prev_tgt));
			p += varint_put(p, run->count);
			prev_src = run->source_offset + (int64_t)run->count;
			prev_tgt = run->target_offset + (int64_t)run->count;
		}
	}
	put_u64(p, XXH3_64bits(buf, (size_t)(p - buf)));
	p += OMAP_TRAILER_SIZE;
	*out = buf;
	*out_len = (size_t)(p - buf);
	buf = NULL;
out:
	free(order);
	free(buf);
	return err;
}

static int decode_section(const uint8_t **pp, const uint8_t *end, size_t index,
			  const struct kt_replay_omap_section *prev,
			  struct kt_replay_omap *map, const char *what,
			  char *errstr, size_t errstr_size)
{
	const uint8_t *p = *pp;
	char topic[OMAP_MAX_TOPIC + 1], source[OMAP_MAX_TOPIC + 1];
	struct kt_replay_omap_section *s;
	uint64_t run_count, record_count, sum = 0;
	int64_t base, endo, prev_src = 0, prev_tgt;
	int32_t partition;
	uint16_t tl, sl;
	long idx;

	if ((size_t)(end - p) < OMAP_SECTION_SIZE)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "%s: section %zu runs past the trailer", what, index);
	tl = get_u16(p);
	sl = get_u16(p + 2);
	partition = (int32_t)get_u32(p + 4);
	base = (int64_t)get_u64(p + 8);
	endo = (int64_t)get_u64(p + 16);
	run_count = get_u64(p + 24);
	record_count = get_u64(p + 32);
	if (tl < 1 || tl > OMAP_MAX_TOPIC || sl < 1 || sl > OMAP_MAX_TOPIC || partition < 0 ||
	    base < 0 || endo < base)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "%s: section %zu has an invalid header", what, index);
	p += OMAP_SECTION_SIZE;
	if ((size_t)(end - p) < (size_t)tl + sl)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "%s: section %zu names run past the trailer", what, index);
	memcpy(topic, p, tl);
	topic[tl] = '\0';
	memcpy(source, p + tl, sl);
	source[sl] = '\0';
	if (strlen(topic) != tl || strlen(source) != sl)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "%s: section %zu has a NUL byte in a topic name", what, index);
	p += tl + sl;
	if (prev) {
		int c = strcmp(prev->topic, topic);

		if (c > 0 || (c == 0 && prev->partition >= partition))
			return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					 "%s: section %zu (%s[%" PRId32 "]) is out of order or repeated",
					 what, index, topic, partition);
	}
	/* Every run takes at least four bytes, which bounds run_count before
	 * anything is allocated for it. */
	if (run_count > (uint64_t)(end - p) / 4)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "%s: section %zu claims %" PRIu64 " runs, more than its bytes hold",
				 what, index, run_count);
	idx = kt_replay_omap_add_section(map, topic, source, partition, base);
	if (idx < 0)
		return kt_seterr(errstr, errstr_size, (int)idx, "out of memory reading %s", what);
	s = &map->sections[idx];
	s->runs = malloc((run_count ? run_count : 1) * sizeof(*s->runs));
	if (!s->runs)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory reading %s", what);
	s->run_cap = run_count ? run_count : 1;
	prev_tgt = base;
	for (uint64_t r = 0; r < run_count; r++) {
		uint64_t sp, sd, td, count;
		struct kt_replay_omap_run *run = &s->runs[r];

		if (varint_get(&p, end, &sp) || varint_get(&p, end, &sd) ||
		    varint_get(&p, end, &td) || varint_get(&p, end, &count))
			return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					 "%s: section %zu run %" PRIu64 " has a malformed varint",
					 what, index, r);
		if (sp > INT32_MAX || count < 1 || count > (uint64_t)INT64_MAX ||
		    td > (uint64_t)INT64_MAX - (uint64_t)prev_tgt)
			return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					 "%s: section %zu run %" PRIu64 " is out of range",
					 what, index, r);
		run->source_partition = (int32_t)sp;
		run->source_offset = (int64_t)((uint64_t)prev_src + (uint64_t)unzigzag(sd));
		run->target_offset = prev_tgt + (int64_t)td;
		run->count = count;
		if (run->source_offset < 0 ||
		    run->source_offset > INT64_MAX - (int64_t)count ||
		    run->target_offset > endo - (int64_t)count)
			return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					 "%s: section %zu run %" PRIu64 " maps outside [base, end)",
					 what, index, r);
		prev_src = run->source_offset + (int64_t)count;
		prev_tgt = run->target_offset + (int64_t)count;
		sum += count;
		s->run_count++;
	}
	if (sum != record_count)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "%s: section %zu counts %" PRIu64 " records but its runs hold %" PRIu64,
				 what, index, record_count, sum);
	s->record_count = record_count;
	s->end_offset = endo;
	*pp = p;
	return 0;
}

int kt_replay_omap_decode(const uint8_t *buf, size_t len, const char *what,
			  struct kt_replay_omap **out, char *errstr, size_t errstr_size)
{
	struct kt_replay_omap *map = NULL;
	const uint8_t *p, *end;
	uint32_t count;
	uint16_t version;
	int err = 0;

	*out = NULL;
	if (len < OMAP_HEADER_SIZE + OMAP_TRAILER_SIZE)
		return kt_seterr(errstr, errstr_size, KT_ETRUNCATED,
				 "%s: %zu bytes is shorter than an offset map's header and trailer",
				 what, len);
	if (memcmp(buf, OMAP_MAGIC, 8) != 0)
		return kt_seterr(errstr, errstr_size, KT_EMAGIC, "%s: not a ktape offset map", what);
	version = get_u16(buf + 8);
	if (version > OMAP_VERSION)
		return kt_seterr(errstr, errstr_size, KT_EVERSION,
				 "%s: offset map version %u is newer than this ktape supports (%d)",
				 what, version, OMAP_VERSION);
	if (version == 0)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s: offset map version 0", what);
	end = buf + len - OMAP_TRAILER_SIZE;
	if (get_u64(end) != XXH3_64bits(buf, (size_t)(end - buf)))
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "%s: checksum mismatch at byte %zu", what, len - OMAP_TRAILER_SIZE);
	if (get_u16(buf + 10) != 0)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "%s: reserved header field is not zero", what);
	count = get_u32(buf + 12);
	map = kt_replay_omap_create();
	if (!map)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory reading %s", what);
	map->created_ms = (int64_t)get_u64(buf + 16);
	p = buf + OMAP_HEADER_SIZE;
	for (uint32_t i = 0; i < count; i++) {
		const struct kt_replay_omap_section *prev =
			i ? &map->sections[map->section_count - 1] : NULL;

		err = decode_section(&p, end, i, prev, map, what, errstr, errstr_size);
		if (err)
			goto out;
	}
	if (p != end) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"%s: %zu unexplained bytes before the trailer", what,
				(size_t)(end - p));
		goto out;
	}
	*out = map;
	map = NULL;
out:
	kt_replay_omap_destroy(map);
	return err;
}

int kt_replay_omap_write(const struct kt_replay_omap *map, const char *path, unsigned mode,
			 char *errstr, size_t errstr_size)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int err;

	err = kt_replay_omap_encode(map, &buf, &len, errstr, errstr_size);
	if (err)
		return err;
	err = kt_write_file_atomic(path, buf, len, mode, errstr, errstr_size);
	free(buf);
	return err;
}

int kt_replay_omap_read(const char *path, struct kt_replay_omap **out,
			char *errstr, size_t errstr_size)
{
	char *buf = NULL;
	size_t len = 0;
	int err;

	*out = NULL;
	err = kt_replay_read_file(path, OMAP_MAX_FILE, &buf, &len, errstr, errstr_size);
	if (err == -ENOENT)
		return kt_seterr(errstr, errstr_size, err, "offset map %s does not exist", path);
	if (err)
		return err;
	err = kt_replay_omap_decode((const uint8_t *)buf, len, path, out, errstr, errstr_size);
	free(buf);
	return err;
}
