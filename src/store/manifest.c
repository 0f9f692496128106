/*
 * manifest.c - snapshot manifests in memory and as JSON
 * (format/repository.md section 4).
 *
 * One validator serves both directions: to_json refuses to write a manifest
 * that from_json would refuse to read, so a committed snapshot can always
 * be loaded again.
 */
#include "kt_store.h"
#include "repo_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define SNAPSHOT_FORMAT "ktape-snapshot"

static const char *const kind_names[] = { "full", "incremental", "partial" };

/* ---- construction and destruction --------------------------------------- */

struct kt_store_snapshot *kt_store_snapshot_create(void)
{
	struct kt_store_snapshot *snap = calloc(1, sizeof(*snap));

	if (!snap)
		return NULL;
	snap->kind = KT_SNAPSHOT_FULL;
	snap->tool_version = strdup(KT_VERSION_STRING);
	if (!snap->tool_version) {
		free(snap);
		return NULL;
	}
	return snap;
}

static void partition_free(struct kt_store_partition *part)
{
	for (size_t i = 0; i < part->segment_count; i++)
		free(part->segments[i].path);
	free(part->segments);
	for (size_t i = 0; i < part->gap_count; i++)
		free(part->gaps[i].reason);
	free(part->gaps);
}

static void topic_free(struct kt_store_topic *topic)
{
	free(topic->name);
	for (size_t i = 0; i < topic->config_count; i++) {
		free(topic->configs[i].name);
		free(topic->configs[i].value);
	}
	free(topic->configs);
	for (size_t i = 0; i < topic->n_partitions; i++)
		partition_free(&topic->partitions[i]);
	free(topic->partitions);
}

void kt_store_snapshot_destroy(struct kt_store_snapshot *snap)
{
	if (!snap)
		return;
	free(snap->source);
	free(snap->tool_version);
	for (size_t i = 0; i < snap->topic_count; i++)
		topic_free(&snap->topics[i]);
	free(snap->topics);
	for (size_t i = 0; i < snap->group_offset_count; i++) {
		free(snap->group_offsets[i].group);
		free(snap->group_offsets[i].topic);
		free(snap->group_offsets[i].metadata);
	}
	free(snap->group_offsets);
	free(snap);
}

/* Grows an array by one zeroed element.  Growth is by exactly one so that
 * arrays a caller allocated itself (the header allows filling fields
 * directly) are never assumed to have spare capacity. */
static void *grow(void *array, size_t count, size_t elem)
{
	char *p = realloc(array, (count + 1) * elem);

	if (p)
		memset(p + count * elem, 0, elem);
	return p;
}

/* strdup that keeps NULL as NULL; *ok is cleared when out of memory. */
static char *dup_or_null(const char *s, int *ok)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*ok = 0;
	return d;
}

struct kt_store_topic *kt_store_snapshot_add_topic(struct kt_store_snapshot *snap,
						   const char *name,
						   int32_t partition_count,
						   int32_t replication_factor)
{
	struct kt_store_topic *topics, *topic;
	char *copy = strdup(name);

	if (!copy)
		return NULL;
	topics = grow(snap->topics, snap->topic_count, sizeof(*topics));
	if (!topics) {
		free(copy);
		return NULL;
	}
	snap->topics = topics;
	topic = &topics[snap->topic_count++];
	topic->name = copy;
	topic->partition_count = partition_count;
	topic->replication_factor = replication_factor;
	return topic;
}

int kt_store_topic_add_config(struct kt_store_topic *topic, const char *name,
			      const char *value)
{
	struct kt_store_config_entry *configs;
	int ok = 1;
	char *n = dup_or_null(name, &ok), *v = dup_or_null(value, &ok);

	if (!name)
		ok = 0;
	configs = ok ? grow(topic->configs, topic->config_count, sizeof(*configs)) : NULL;
	if (!configs) {
		free(n);
		free(v);
		return name ? -ENOMEM : KT_EUSAGE;
	}
	topic->configs = configs;
	configs[topic->config_count].name = n;
	configs[topic->config_count].value = v;
	topic->config_count++;
	/* Having a config to record means the broker described them. */
	topic->configs_available = 1;
	return 0;
}

struct kt_store_partition *kt_store_topic_add_partition(struct kt_store_topic *topic,
							int32_t partition)
{
	struct kt_store_partition *parts;
	size_t at = topic->n_partitions;

	/* Kept sorted on insertion, as the manifest requires. */
	while (at > 0 && topic->partitions[at - 1].partition > partition)
		at--;
	if (at > 0 && topic->partitions[at - 1].partition == partition)
		return NULL;
	parts = grow(topic->partitions, topic->n_partitions, sizeof(*parts));
	if (!parts)
		return NULL;
	topic->partitions = parts;
	memmove(&parts[at + 1], &parts[at], (topic->n_partitions - at) * sizeof(*parts));
	memset(&parts[at], 0, sizeof(*parts));
	topic->n_partitions++;
	parts[at].partition = partition;
	parts[at].min_ts = INT64_MAX;
	parts[at].max_ts = INT64_MIN;
	parts[at].complete = 1;
	return &parts[at];
}

int kt_store_partition_add_segment(struct kt_store_partition *part,
				   const struct kt_store_segref *ref)
{
	struct kt_store_segref *segs;
	char *path;

	if (!ref->path)
		return KT_EUSAGE;
	path = strdup(ref->path);
	if (!path)
		return -ENOMEM;
	segs = grow(part->segments, part->segment_count, sizeof(*segs));
	if (!segs) {
		free(path);
		return -ENOMEM;
	}
	part->segments = segs;
	segs[part->segment_count] = *ref;
	segs[part->segment_count].path = path;
	part->segment_count++;
	/* The partition's totals are over its segments (repository.md 4.2),
	 * so the builder keeps them. */
	part->records += ref->records;
	part->raw_bytes += ref->raw_bytes;
	if (ref->records > 0) {
		if (ref->min_ts < part->min_ts)
			part->min_ts = ref->min_ts;
		if (ref->max_ts > part->max_ts)
			part->max_ts = ref->max_ts;
	}
	return 0;
}

int kt_store_partition_add_gap(struct kt_store_partition *part, int64_t from,
			       int64_t to, const char *reason)
{
	struct kt_store_gap *gaps;
	char *copy;

	if (!reason)
		return KT_EUSAGE;
	copy = strdup(reason);
	if (!copy)
		return -ENOMEM;
	gaps = grow(part->gaps, part->gap_count, sizeof(*gaps));
	if (!gaps) {
		free(copy);
		return -ENOMEM;
	}
	part->gaps = gaps;
	gaps[part->gap_count].from = from;
	gaps[part->gap_count].to = to;
	gaps[part->gap_count].reason = copy;
	part->gap_count++;
	return 0;
}

int kt_store_snapshot_add_group_offset(struct kt_store_snapshot *snap,
				       const char *group, const char *topic,
				       int32_t partition, int64_t offset,
				       const char *metadata)
{
	struct kt_store_group_offset *gos;
	int ok = 1;
	char *g = dup_or_null(group, &ok), *t = dup_or_null(topic, &ok);
	char *m = dup_or_null(metadata, &ok);

	if (!group || !topic)
		ok = 0;
	gos = ok ? grow(snap->group_offsets, snap->group_offset_count, sizeof(*gos)) : NULL;
	if (!gos) {
		free(g);
		free(t);
		free(m);
		return group && topic ? -ENOMEM : KT_EUSAGE;
	}
	snap->group_offsets = gos;
	gos[snap->group_offset_count].group = g;
	gos[snap->group_offset_count].topic = t;
	gos[snap->group_offset_count].partition = partition;
	gos[snap->group_offset_count].offset = offset;
	gos[snap->group_offset_count].metadata = m;
	snap->group_offset_count++;
	return 0;
}

const struct kt_store_topic *kt_store_snapshot_find_topic(const struct kt_store_snapshot *snap,
							  const char *name)
{
	for (size_t i = 0; i < snap->topic_count; i++)
		if (snap->topics[i].name && strcmp(snap->topics[i].name, name) == 0)
			return &snap->topics[i];
	return NULL;
}

const struct kt_store_partition *kt_store_topic_find_partition(const struct kt_store_topic *topic,
							       int32_t partition)
{
	size_t lo = 0, hi = topic->n_partitions;

	/* Partitions are sorted (the validator guarantees it for loaded
	 * manifests, the builder for built ones). */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (topic->partitions[mid].partition < partition)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < topic->n_partitions && topic->partitions[lo].partition == partition)
		return &topic->partitions[lo];
	return NULL;
}

/* ---- validation --------------------------------------------------------- */

int kt_store_snapshot_id_valid(const char *id)
{
	size_t len = strlen(id);

	return len > 0 && len < sizeof(((struct kt_store_snapshot *)0)->id) && id[0] != '.' &&
	       strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

/* A segment path must stay inside the repository: relative, '/' separated,
 * no empty, "." or ".." component. */
static int valid_rel_path(const char *path)
{
	const char *p = path;

	if (!path || !*path || *path == '/')
		return 0;
	while (*p) {
		size_t len = strcspn(p, "/");
		if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += len;
		if (*p == '/' && !*++p)
			return 0;
	}
	return 1;
}

#define BAD(...) kt_seterr(errstr, errstr_size, KT_ECORRUPT, __VA_ARGS__)

static int validate_partition(const struct kt_store_partition *part, const char *ctx,
			      char *errstr, size_t errstr_size)
{
	uint64_t records = 0, raw = 0;
	int64_t prev_last = -1;

	if (part->partition < 0)
		return BAD("%s.partition: %d is negative", ctx, part->partition);
	if (part->log_start_offset < -1)
		return BAD("%s.log_start_offset: %" PRId64 " is below -1", ctx, part->log_start_offset);
	if (part->start_offset < 0 || part->end_offset < part->start_offset)
		return BAD("%s: start_offset %" PRId64 " and end_offset %" PRId64 " do not form a range",
			   ctx, part->start_offset, part->end_offset);
	if (part->records > INT64_MAX || part->raw_bytes > INT64_MAX)
		return BAD("%s: records or raw_bytes exceeds a 64-bit signed integer", ctx);
	if (part->records > 0 && part->min_ts > part->max_ts)
		return BAD("%s: min_ts %" PRId64 " is after max_ts %" PRId64, ctx, part->min_ts, part->max_ts);
	for (size_t i = 0; i < part->segment_count; i++) {
		const struct kt_store_segref *seg = &part->segments[i];
		if (!valid_rel_path(seg->path))
			return BAD("%s.segments[%zu].path: \"%s\" is not a relative path inside the repository",
				   ctx, i, seg->path ? seg->path : "(null)");
		if (seg->records > INT64_MAX || seg->raw_bytes > INT64_MAX || seg->file_size > INT64_MAX)
			return BAD("%s.segments[%zu]: records, raw_bytes or file_size exceeds a 64-bit signed integer",
				   ctx, i);
		if (seg->records > 0) {
			if (seg->first_offset < part->start_offset || seg->last_offset < seg->first_offset ||
			    seg->last_offset >= part->end_offset)
				return BAD("%s.segments[%zu]: offsets %" PRId64 "..%" PRId64
					   " are not inside the partition's [%" PRId64 ", %" PRId64 ")",
					   ctx, i, seg->first_offset, seg->last_offset, part->start_offset, part->end_offset);
			if (seg->first_offset <= prev_last)
				return BAD("%s.segments[%zu].first_offset: %" PRId64
					   " does not follow the previous segment's last_offset %" PRId64,
					   ctx, i, seg->first_offset, prev_last);
			if (seg->records > (uint64_t)(seg->last_offset - seg->first_offset) + 1)
				return BAD("%s.segments[%zu].records: %" PRIu64 " records cannot fit offsets %" PRId64 "..%" PRId64,
					   ctx, i, seg->records, seg->first_offset, seg->last_offset);
			if (seg->min_ts > seg->max_ts)
				return BAD("%s.segments[%zu]: min_ts is after max_ts", ctx, i);
			prev_last = seg->last_offset;
		}
		if (__builtin_add_overflow(records, seg->records, &records) ||
		    __builtin_add_overflow(raw, seg->raw_bytes, &raw))
			return BAD("%s.segments: totals overflow", ctx);
	}
	if (records != part->records)
		return BAD("%s.records: %" PRIu64 " is not the sum of its segments' records (%" PRIu64 ")",
			   ctx, part->records, records);
	if (raw != part->raw_bytes)
		return BAD("%s.raw_bytes: %" PRIu64 " is not the sum of its segments' raw_bytes (%" PRIu64 ")",
			   ctx, part->raw_bytes, raw);
	for (size_t i = 0; i < part->gap_count; i++) {
		const struct kt_store_gap *gap = &part->gaps[i];
		if (gap->from < 0 || gap->to <= gap->from)
			return BAD("%s.gaps[%zu]: [%" PRId64 ", %" PRId64 ") is not a non-empty offset range",
				   ctx, i, gap->from, gap->to);
		if (!gap->reason)
			return BAD("%s.gaps[%zu].reason is missing", ctx, i);
	}
	return 0;
}

static int validate(const struct kt_store_snapshot *snap, char *errstr, size_t errstr_size)
{
	char ctx[128];
	int err;

	if (!kt_store_snapshot_id_valid(snap->id))
		return BAD("id: \"%.64s\" is not a snapshot id", snap->id);
	if (snap->parent[0] && !kt_store_snapshot_id_valid(snap->parent))
		return BAD("parent: \"%.64s\" is not a snapshot id", snap->parent);
	if (snap->kind < KT_SNAPSHOT_FULL || snap->kind > KT_SNAPSHOT_PARTIAL)
		return BAD("kind: %d is not a snapshot kind", snap->kind);
	if (snap->started_ms < 0 || snap->completed_ms < 0)
		return BAD("started_ms/completed_ms: a time before 1970 is not a capture time");
	for (size_t t = 0; t < snap->topic_count; t++) {
		const struct kt_store_topic *topic = &snap->topics[t];
		if (!topic->name || !*topic->name || strlen(topic->name) > KT_STORE_MAX_TOPIC_LEN)
			return BAD("topics[%zu].name: must be 1 to %d bytes", t, KT_STORE_MAX_TOPIC_LEN);
		for (size_t u = 0; u < t; u++)
			if (strcmp(snap->topics[u].name, topic->name) == 0)
				return BAD("topics[%zu].name: topic \"%s\" appears twice", t, topic->name);
		if (topic->partition_count < 0)
			return BAD("topics[%zu].partition_count: %d is negative", t, topic->partition_count);
		if (topic->replication_factor < -1)
			return BAD("topics[%zu].replication_factor: %d is below -1", t, topic->replication_factor);
		for (size_t c = 0; c < topic->config_count; c++) {
			if (!topic->configs[c].name || !*topic->configs[c].name)
				return BAD("topics[%zu].configs: entry %zu has no name", t, c);
			for (size_t d = 0; d < c; d++)
				if (strcmp(topic->configs[d].name, topic->configs[c].name) == 0)
					return BAD("topics[%zu].configs.%s appears twice", t, topic->configs[c].name);
		}
		for (size_t p = 0; p < topic->n_partitions; p++) {
			snprintf(ctx, sizeof(ctx), "topics[%zu].partitions[%zu]", t, p);
			if (p > 0 && topic->partitions[p].partition <= topic->partitions[p - 1].partition)
				return BAD("%s.partition: %d is not after %d (partitions must be sorted and unique)",
					   ctx, topic->partitions[p].partition, topic->partitions[p - 1].partition);
			err = validate_partition(&topic->partitions[p], ctx, errstr, errstr_size);
			if (err)
				return err;
		}
	}
	for (size_t i = 0; i < snap->group_offset_count; i++) {
		const struct kt_store_group_offset *go = &snap->group_offsets[i];
		if (!go->group || !go->topic || !*go->topic)
			return BAD("groups[%zu]: group and topic are required", i);
		if (go->partition < 0 || go->offset < -1)
			return BAD("groups[%zu]: partition %d / offset %" PRId64 " out of range", i, go->partition, go->offset);
	}
	return 0;
}

/* ---- to JSON ------------------------------------------------------------ */

/* Emission state: the first failure is kept, later calls are no-ops, so the
 * tree can be built straight-line and checked once. */
struct emit {
	int err;
	char *errstr;
	size_t errstr_size;
};

static void put(struct emit *e, json_t *obj, const char *key, json_t *val, const char *ctx)
{
	if (e->err) {
		json_decref(val);
		return;
	}
	if (!val || json_object_set_new(obj, key, val) < 0)
		e->err = kt_seterr(e->errstr, e->errstr_size, KT_EUSAGE,
				   "%s%s%s: not valid UTF-8 (or out of memory)", ctx, *ctx ? "." : "", key);
}

static void push(struct emit *e, json_t *arr, json_t *val, const char *ctx)
{
	if (e->err) {
		json_decref(val);
		return;
	}
	if (!val || json_array_append_new(arr, val) < 0)
		e->err = kt_seterr(e->errstr, e->errstr_size, -ENOMEM, "%s: out of memory", ctx);
}

/* Length of the valid UTF-8 sequence (RFC 3629: shortest form, no
 * surrogates, nothing above U+10FFFF) at p, or 0 if none starts there. */
static size_t utf8_seq(const unsigned char *p)
{
	uint32_t cp, min;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f, min = 0x80;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, cp = p[0] & 0x0f, min = 0x800;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07, min = 0x10000;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A malloc'd copy of s in which every byte that does not start a valid
 * UTF-8 sequence is replaced by U+FFFD. */
static char *utf8_repair(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(strlen(s) * 3 + 1), *o = out;

	if (!out)
		return NULL;
	while (*p) {
		size_t n = utf8_seq(p);
		if (n) {
			memcpy(o, p, n);
			p += n;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			n = 3;
			p++;
		}
		o += n;
	}
	*o = '\0';
	return out;
}

/* Strings Kafka takes from clients as raw bytes (group ids, commit
 * metadata, config values) may not be UTF-8, which JSON requires.  Rather
 * than fail a whole backup over one of them, they are stored with the bad
 * bytes replaced (format/repository.md section 4). */
static json_t *lossy_string(const char *s)
{
	json_t *v;
	char *fixed;

	if (!s)
		return json_null();
	v = json_string(s);
	if (v)
		return v;
	fixed = utf8_repair(s);
	v = fixed ? json_string(fixed) : NULL;
	free(fixed);
	return v;
}

static json_t *int64_or_null(int have, int64_t v)
{
	return have ? json_integer((json_int_t)v) : json_null();
}

static json_t *checksum_json(uint64_t sum)
{
	char hex[17];

	snprintf(hex, sizeof(hex), "%016" PRIx64, sum);
	return json_string(hex);
}

static json_t *partition_json(struct emit *e, const struct kt_store_partition *part, const char *ctx)
{
	json_t *obj = json_object(), *segs = json_array(), *gaps = json_array();
	char sctx[160];

	if (!obj || !segs || !gaps) {
		json_decref(obj);
		json_decref(segs);
		json_decref(gaps);
		return NULL;
	}
	put(e, obj, "partition", json_integer(part->partition), ctx);
	put(e, obj, "log_start_offset", json_integer(part->log_start_offset), ctx);
	put(e, obj, "start_offset", json_integer(part->start_offset), ctx);
	put(e, obj, "end_offset", json_integer(part->end_offset), ctx);
	put(e, obj, "records", json_integer((json_int_t)part->records), ctx);
	put(e, obj, "raw_bytes", json_integer((json_int_t)part->raw_bytes), ctx);
	put(e, obj, "min_ts", int64_or_null(part->records > 0, part->min_ts), ctx);
	put(e, obj, "max_ts", int64_or_null(part->records > 0, part->max_ts), ctx);
	put(e, obj, "complete", json_boolean(part->complete), ctx);
	for (size_t i = 0; i < part->segment_count; i++) {
		const struct kt_store_segref *seg = &part->segments[i];
		json_t *s = json_object();
		snprintf(sctx, sizeof(sctx), "%s.segments[%zu]", ctx, i);
		if (s) {
			put(e, s, "path", json_string(seg->path), sctx);
			put(e, s, "first_offset", json_integer(seg->first_offset), sctx);
			put(e, s, "last_offset", json_integer(seg->last_offset), sctx);
			put(e, s, "min_ts", json_integer(seg->min_ts), sctx);
			put(e, s, "max_ts", json_integer(seg->max_ts), sctx);
			put(e, s, "records", json_integer((json_int_t)seg->records), sctx);
			put(e, s, "raw_bytes", json_integer((json_int_t)seg->raw_bytes), sctx);
			put(e, s, "file_size", json_integer((json_int_t)seg->file_size), sctx);
			put(e, s, "checksum", checksum_json(seg->checksum), sctx);
		}
		push(e, segs, s, sctx);
	}
	put(e, obj, "segments", segs, ctx);
	for (size_t i = 0; i < part->gap_count; i++) {
		json_t *g = json_object();
		snprintf(sctx, sizeof(sctx), "%s.gaps[%zu]", ctx, i);
		if (g) {
			put(e, g, "from", json_integer(part->gaps[i].from), sctx);
			put(e, g, "to", json_integer(part->gaps[i].to), sctx);
			put(e, g, "reason", json_string(part->gaps[i].reason), sctx);
		}
		push(e, gaps, g, sctx);
	}
	put(e, obj, "gaps", gaps, ctx);
	return obj;
}

static json_t *topic_json(struct emit *e, const struct kt_store_topic *topic, const char *ctx)
{
	json_t *obj = json_object(), *parts = json_array(), *configs = NULL;
	char pctx[128];

	if (!obj || !parts) {
		json_decref(obj);
		json_decref(parts);
		return NULL;
	}
	put(e, obj, "name", json_string(topic->name), ctx);
	put(e, obj, "partition_count", json_integer(topic->partition_count), ctx);
	put(e, obj, "replication_factor", json_integer(topic->replication_factor), ctx);
	if (topic->configs_available) {
		configs = json_object();
		snprintf(pctx, sizeof(pctx), "%s.configs", ctx);
		for (size_t i = 0; configs && i < topic->config_count; i++) {
			char *name = utf8_repair(topic->configs[i].name);
			put(e, configs, name ? name : "", name ? lossy_string(topic->configs[i].value) : NULL, pctx);
			free(name);
		}
	} else {
		configs = json_null();
	}
	put(e, obj, "configs", configs, ctx);
	for (size_t i = 0; i < topic->n_partitions; i++) {
		snprintf(pctx, sizeof(pctx), "%s.partitions[%zu]", ctx, i);
		push(e, parts, partition_json(e, &topic->partitions[i], pctx), pctx);
	}
	put(e, obj, "partitions", parts, ctx);
	return obj;
}

int kt_store_snapshot_to_json(const struct kt_store_snapshot *snap, char **out,
			      char *errstr, size_t errstr_size)
{
	struct emit e = { 0, errstr, errstr_size };
	json_t *root = NULL, *topics, *groups;
	char ctx[64];

	*out = NULL;
	e.err = validate(snap, errstr, errstr_size);
	if (e.err)
		return e.err;
	root = json_object();
	topics = json_array();
	groups = json_array();
	if (!root || !topics || !groups) {
		json_decref(topics);
		json_decref(groups);
		e.err = kt_seterr(errstr, errstr_size, -ENOMEM, "manifest: out of memory");
		goto out;
	}
	put(&e, root, "format", json_string(SNAPSHOT_FORMAT), "");
	put(&e, root, "version", json_integer(KT_STORE_REPO_VERSION), "");
	put(&e, root, "id", json_string(snap->id), "");
	put(&e, root, "parent", snap->parent[0] ? json_string(snap->parent) : json_null(), "");
	put(&e, root, "kind", json_string(kind_names[snap->kind]), "");
	put(&e, root, "started_ms", json_integer(snap->started_ms), "");
	put(&e, root, "completed_ms", json_integer(snap->completed_ms), "");
	put(&e, root, "source", json_string(snap->source ? snap->source : ""), "");
	put(&e, root, "tool_version", json_string(snap->tool_version ? snap->tool_version : ""), "");
	for (size_t i = 0; i < snap->topic_count; i++) {
		snprintf(ctx, sizeof(ctx), "topics[%zu]", i);
		push(&e, topics, topic_json(&e, &snap->topics[i], ctx), ctx);
	}
	put(&e, root, "topics", topics, "");
	for (size_t i = 0; i < snap->group_offset_count; i++) {
		const struct kt_store_group_offset *go = &snap->group_offsets[i];
		json_t *g = json_object();
		snprintf(ctx, sizeof(ctx), "groups[%zu]", i);
		if (g) {
			put(&e, g, "group", lossy_string(go->group), ctx);
			put(&e, g, "topic", json_string(go->topic), ctx);
			put(&e, g, "partition", json_integer(go->partition), ctx);
			put(&e, g, "offset", json_integer(go->offset), ctx);
			put(&e, g, "metadata", lossy_string(go->metadata), ctx);
		}
		push(&e, groups, g, ctx);
	}
	put(&e, root, "groups", groups, "");
	if (e.err)
		goto out;
	*out = json_dumps(root, JSON_INDENT(1));
	if (!*out)
		e.err = kt_seterr(errstr, errstr_size, -ENOMEM, "manifest: out of memory serialising");
out:
	json_decref(root);
	return e.err;
}

/* ---- from JSON ---------------------------------------------------------- */

/* Field readers: each names the JSON path of the field it rejects. */
static json_t *field(json_t *obj, const char *ctx, const char *key, char *errstr, size_t errstr_size)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		BAD("%s%s%s is missing", ctx, *ctx ? "." : "", key);
	return v;
}

static int get_int(json_t *obj, const char *ctx, const char *key, int64_t min, int64_t max, int64_t *out,
		   char *errstr, size_t errstr_size)
{
	json_t *v = field(obj, ctx, key, errstr, errstr_size);

	if (!v)
		return KT_ECORRUPT;
	if (!json_is_integer(v))
		return BAD("%s%s%s must be an integer", ctx, *ctx ? "." : "", key);
	if (json_integer_value(v) < min || json_integer_value(v) > max)
		return BAD("%s%s%s: %" JSON_INTEGER_FORMAT " is out of range", ctx, *ctx ? "." : "", key,
			   json_integer_value(v));
	*out = json_integer_value(v);
	return 0;
}

/* A nullable integer: null gives null_value. */
static int get_int_or_null(json_t *obj, const char *ctx, const char *key, int64_t null_value, int64_t *out,
			   char *errstr, size_t errstr_size)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_null(v)) {
		*out = null_value;
		return 0;
	}
	return get_int(obj, ctx, key, INT64_MIN, INT64_MAX, out, errstr, errstr_size);
}

/* A string, copied into *out (NULL for JSON null when nullable). */
static int get_str(json_t *obj, const char *ctx, const char *key, int nullable, char **out,
		   char *errstr, size_t errstr_size)
{
	json_t *v = field(obj, ctx, key, errstr, errstr_size);

	*out = NULL;
	if (!v)
		return KT_ECORRUPT;
	if (nullable && json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return BAD("%s%s%s must be a string%s", ctx, *ctx ? "." : "", key, nullable ? " or null" : "");
	*out = strdup(json_string_value(v));
	return *out ? 0 : kt_seterr(errstr, errstr_size, -ENOMEM, "manifest: out of memory");
}

static json_t *get_array(json_t *obj, const char *ctx, const char *key, char *errstr, size_t errstr_size)
{
	json_t *v = field(obj, ctx, key, errstr, errstr_size);

	if (v && !json_is_array(v)) {
		BAD("%s%s%s must be an array", ctx, *ctx ? "." : "", key);
		return NULL;
	}
	return v;
}

/* Allocates n zeroed elements (n may be 0). */
static void *alloc_array(size_t n, size_t elem)
{
	return calloc(n ? n : 1, elem);
}

static int parse_partition(json_t *obj, struct kt_store_partition *part, const char *ctx,
			   char *errstr, size_t errstr_size)
{
	char sctx[160];
	json_t *segs, *gaps, *v;
	int64_t n;
	int err;

	part->min_ts = INT64_MAX;
	part->max_ts = INT64_MIN;
	if (!json_is_object(obj))
		return BAD("%s must be an object", ctx);
	if ((err = get_int(obj, ctx, "partition", 0, INT32_MAX, &n, errstr, errstr_size)))
		return err;
	part->partition = (int32_t)n;
	if ((err = get_int(obj, ctx, "log_start_offset", INT64_MIN, INT64_MAX, &part->log_start_offset, errstr, errstr_size)) ||
	    (err = get_int(obj, ctx, "start_offset", INT64_MIN, INT64_MAX, &part->start_offset, errstr, errstr_size)) ||
	    (err = get_int(obj, ctx, "end_offset", INT64_MIN, INT64_MAX, &part->end_offset, errstr, errstr_size)))
		return err;
	if ((err = get_int(obj, ctx, "records", 0, INT64_MAX, &n, errstr, errstr_size)))
		return err;
	part->records = (uint64_t)n;
	if ((err = get_int(obj, ctx, "raw_bytes", 0, INT64_MAX, &n, errstr, errstr_size)))
		return err;
	part->raw_bytes = (uint64_t)n;
	if (!field(obj, ctx, "min_ts", errstr, errstr_size) || !field(obj, ctx, "max_ts", errstr, errstr_size))
		return KT_ECORRUPT;
	if ((err = get_int_or_null(obj, ctx, "min_ts", INT64_MAX, &part->min_ts, errstr, errstr_size)) ||
	    (err = get_int_or_null(obj, ctx, "max_ts", INT64_MIN, &part->max_ts, errstr, errstr_size)))
		return err;
	v = field(obj, ctx, "complete", errstr, errstr_size);
	if (!v)
		return KT_ECORRUPT;
	if (!json_is_boolean(v))
		return BAD("%s.complete must be true or false", ctx);
	part->complete = json_is_true(v);

	if (!(segs = get_array(obj, ctx, "segments", errstr, errstr_size)))
		return KT_ECORRUPT;
	part->segments = alloc_array(json_array_size(segs), sizeof(*part->segments));
	if (!part->segments)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "manifest: out of memory");
	for (size_t i = 0; i < json_array_size(segs); i++) {
		struct kt_store_segref *seg = &part->segments[i];
		json_t *s = json_array_get(segs, i), *sum;
		snprintf(sctx, sizeof(sctx), "%s.segments[%zu]", ctx, i);
		part->segment_count = i + 1; /* so that destroy frees the path */
		if (!json_is_object(s))
			return BAD("%s must be an object", sctx);
		if ((err = get_str(s, sctx, "path", 0, &seg->path, errstr, errstr_size)) ||
		    (err = get_int(s, sctx, "first_offset", INT64_MIN, INT64_MAX, &seg->first_offset, errstr, errstr_size)) ||
		    (err = get_int(s, sctx, "last_offset", INT64_MIN, INT64_MAX, &seg->last_offset, errstr, errstr_size)) ||
		    (err = get_int(s, sctx, "min_ts", INT64_MIN, INT64_MAX, &seg->min_ts, errstr, errstr_size)) ||
		    (err = get_int(s, sctx, "max_ts", INT64_MIN, INT64_MAX, &seg->max_ts, errstr, errstr_size)))
			return err;
		if ((err = get_int(s, sctx, "records", 0, INT64_MAX, &n, errstr, errstr_size)))
			return err;
		seg->records = (uint64_t)n;
		if ((err = get_int(s, sctx, "raw_bytes", 0, INT64_MAX, &n, errstr, errstr_size)))
			return err;
		seg->raw_bytes = (uint64_t)n;
		if ((err = get_int(s, sctx, "file_size", 0, INT64_MAX, &n, errstr, errstr_size)))
			return err;
		seg->file_size = (uint64_t)n;
		sum = field(s, sctx, "checksum", errstr, errstr_size);
		if (!sum)
			return KT_ECORRUPT;
		if (!json_is_string(sum) || json_string_length(sum) != 16 ||
		    strspn(json_string_value(sum), "0123456789abcdef") != 16)
			return BAD("%s.checksum must be 16 lowercase hex digits", sctx);
		seg->checksum = strtoull(json_string_value(sum), NULL, 16);
	}

	if (!(gaps = get_array(obj, ctx, "gaps", errstr, errstr_size)))
		return KT_ECORRUPT;
	part->gaps = alloc_array(json_array_size(gaps), sizeof(*part->gaps));
	if (!part->gaps)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "manifest: out of memory");
	for (size_t i = 0; i < json_array_size(gaps); i++) {
		json_t *g = json_array_get(gaps, i);
		snprintf(sctx, sizeof(sctx), "%s.gaps[%zu]", ctx, i);
		part->gap_count = i + 1;
		if (!json_is_object(g))
			return BAD("%s must be an object", sctx);
		if ((err = get_int(g, sctx, "from", INT64_MIN, INT64_MAX, &part->gaps[i].from, errstr, errstr_size)) ||
		    (err = get_int(g, sctx, "to", INT64_MIN, INT64_MAX, &part->gaps[i].to, errstr, errstr_size)) ||
		    (err = get_str(g, sctx, "reason", 0, &part->gaps[i].reason, errstr, errstr_size)))
			return err;
	}
	return 0;
}

static int parse_topic(json_t *obj, struct kt_store_topic *topic, const char *ctx,
		       char *errstr, size_t errstr_size)
{
	char pctx[128];
	json_t *configs, *parts, *v;
	const char *key;
	int64_t n;
	int err;

	if (!json_is_object(obj))
		return BAD("%s must be an object", ctx);
	if ((err = get_str(obj, ctx, "name", 0, &topic->name, errstr, errstr_size)))
		return err;
	if ((err = get_int(obj, ctx, "partition_count", INT32_MIN, INT32_MAX, &n, errstr, errstr_size)))
		return err;
	topic->partition_count = (int32_t)n;
	if ((err = get_int(obj, ctx, "replication_factor", INT32_MIN, INT32_MAX, &n, errstr, errstr_size)))
		return err;
	topic->replication_factor = (int32_t)n;

	if (!(configs = field(obj, ctx, "configs", errstr, errstr_size)))
		return KT_ECORRUPT;
	if (!json_is_null(configs)) {
		if (!json_is_object(configs))
			return BAD("%s.configs must be an object or null", ctx);
		topic->configs_available = 1;
		topic->configs = alloc_array(json_object_size(configs), sizeof(*topic->configs));
		if (!topic->configs)
			return kt_seterr(errstr, errstr_size, -ENOMEM, "manifest: out of memory");
		json_object_foreach(configs, key, v) {
			struct kt_store_config_entry *c = &topic->configs[topic->config_count++];
			if (!json_is_string(v) && !json_is_null(v))
				return BAD("%s.configs.%s must be a string or null", ctx, key);
			c->name = strdup(key);
			c->value = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
			if (!c->name || (json_is_string(v) && !c->value))
				return kt_seterr(errstr, errstr_size, -ENOMEM, "manifest: out of memory");
		}
	}

	if (!(parts = get_array(obj, ctx, "partitions", errstr, errstr_size)))
		return KT_ECORRUPT;
	topic->partitions = alloc_array(json_array_size(parts), sizeof(*topic->partitions));
	if (!topic->partitions)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "manifest: out of memory");
	for (size_t i = 0; i < json_array_size(parts); i++) {
		snprintf(pctx, sizeof(pctx), "%s.partitions[%zu]", ctx, i);
		topic->n_partitions = i + 1;
		err = parse_partition(json_array_get(parts, i), &topic->partitions[i], pctx, errstr, errstr_size);
		if (err)
			return err;
	}
	return 0;
}

static int parse_group(json_t *obj, struct kt_store_group_offset *go, const char *ctx,
		       char *errstr, size_t errstr_size)
{
	int64_t n;
	int err;

	if (!json_is_object(obj))
		return BAD("%s must be an object", ctx);
	if ((err = get_str(obj, ctx, "group", 0, &go->group, errstr, errstr_size)) ||
	    (err = get_str(obj, ctx, "topic", 0, &go->topic, errstr, errstr_size)) ||
	    (err = get_int(obj, ctx, "partition", INT32_MIN, INT32_MAX, &n, errstr, errstr_size)) ||
	    (err = get_int(obj, ctx, "offset", INT64_MIN, INT64_MAX, &go->offset, errstr, errstr_size)) ||
	    (err = get_str(obj, ctx, "metadata", 1, &go->metadata, errstr, errstr_size)))
		return err;
	go->partition = (int32_t)n;
	return 0;
}

/* Copies a JSON string into a fixed id buffer; null allowed when nullable. */
static int get_id(json_t *obj, const char *key, int nullable, char *buf, size_t size,
		  char *errstr, size_t errstr_size)
{
	json_t *v = field(obj, "", key, errstr, errstr_size);

	buf[0] = '\0';
	if (!v)
		return KT_ECORRUPT;
	if (nullable && json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= size)
		return BAD("%s must be a snapshot id string%s", key, nullable ? " or null" : "");
	memcpy(buf, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

int kt_store_snapshot_from_json(const char *json, size_t len,
				struct kt_store_snapshot **out,
				char *errstr, size_t errstr_size)
{
	struct kt_store_snapshot *snap = NULL;
	json_t *root, *v, *topics, *groups;
	json_error_t jerr;
	char ctx[64];
	int err = 0;

	*out = NULL;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return BAD("not valid JSON (line %d, column %d: %s)", jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root)) {
		err = BAD("a manifest must be a JSON object");
		goto out;
	}
	/* format and version first: a future version may change every other
	 * field, and must be reported as such, not as a malformed manifest. */
	v = json_object_get(root, "format");
	if (!json_is_string(v) || strcmp(json_string_value(v), SNAPSHOT_FORMAT) != 0) {
		err = kt_seterr(errstr, errstr_size, KT_EMAGIC, "format: not a ktape snapshot manifest (expected \"%s\")",
				SNAPSHOT_FORMAT);
		goto out;
	}
	v = json_object_get(root, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		err = BAD("version must be a positive integer");
		goto out;
	}
	if (json_integer_value(v) > KT_STORE_REPO_VERSION) {
		err = kt_seterr(errstr, errstr_size, KT_EVERSION,
				"snapshot manifest version %" JSON_INTEGER_FORMAT " is newer than this ktape supports (%d)",
				json_integer_value(v), KT_STORE_REPO_VERSION);
		goto out;
	}
	snap = calloc(1, sizeof(*snap));
	if (!snap) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "manifest: out of memory");
		goto out;
	}
	if ((err = get_id(root, "id", 0, snap->id, sizeof(snap->id), errstr, errstr_size)) ||
	    (err = get_id(root, "parent", 1, snap->parent, sizeof(snap->parent), errstr, errstr_size)))
		goto out;
	v = field(root, "", "kind", errstr, errstr_size);
	if (!v) {
		err = KT_ECORRUPT;
		goto out;
	}
	snap->kind = -1;
	for (int k = 0; k < 3; k++)
		if (json_is_string(v) && strcmp(json_string_value(v), kind_names[k]) == 0)
			snap->kind = k;
	if (snap->kind < 0) {
		err = BAD("kind must be \"full\", \"incremental\" or \"partial\"");
		goto out;
	}
	if ((err = get_int(root, "", "started_ms", INT64_MIN, INT64_MAX, &snap->started_ms, errstr, errstr_size)) ||
	    (err = get_int(root, "", "completed_ms", INT64_MIN, INT64_MAX, &snap->completed_ms, errstr, errstr_size)) ||
	    (err = get_str(root, "", "source", 0, &snap->source, errstr, errstr_size)) ||
	    (err = get_str(root, "", "tool_version", 0, &snap->tool_version, errstr, errstr_size)))
		goto out;

	if (!(topics = get_array(root, "", "topics", errstr, errstr_size))) {
		err = KT_ECORRUPT;
		goto out;
	}
	snap->topics = alloc_array(json_array_size(topics), sizeof(*snap->topics));
	if (!snap->topics) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "manifest: out of memory");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(topics); i++) {
		snprintf(ctx, sizeof(ctx), "topics[%zu]", i);
		snap->topic_count = i + 1;
		err = parse_topic(json_array_get(topics, i), &snap->topics[i], ctx, errstr, errstr_size);
		if (err)
			goto out;
	}

	if (!(groups = get_array(root, "", "groups", errstr, errstr_size))) {
		err = KT_ECORRUPT;
		goto out;
	}
	snap->group_offsets = alloc_array(json_array_size(groups), sizeof(*snap->group_offsets));
	if (!snap->group_offsets) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "manifest: out of memory");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(groups); i++) {
		snprintf(ctx, sizeof(ctx), "groups[%zu]", i);
		snap->group_offset_count = i + 1;
		err = parse_group(json_array_get(groups, i), &snap->group_offsets[i], ctx, errstr, errstr_size);
		if (err)
			goto out;
	}
	err = validate(snap, errstr, errstr_size);
out:
	json_decref(root);
	if (err)
		kt_store_snapshot_destroy(snap);
	else
		*out = snap;
	return err;
}
