/*
 * plan.c - the capture plan of a workers group and its progress records
 * (format/repository.md section 8).  Several `ktape capture
 * --workers-group` processes share one snapshot: the first fixes it as a
 * plan, each sealed segment is recorded create-once, and whoever sees every
 * partition complete builds the manifest from the plan and the records and
 * commits it create-once.  This file only encodes, validates and stores;
 * src/capture/workers.c decides when.
 */
#include "kt_store.h"
#include "repo_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A plan carries a whole manifest (the parent's chains), so it may be as
 * large as one; a progress record is small. */
#define PLAN_MAX_BYTES (1024u * 1024u * 1024u)
#define RECORD_MAX_BYTES (64u * 1024u)

struct kt_store_plan *kt_store_plan_create(void)
{
	struct kt_store_plan *plan = calloc(1, sizeof(*plan));

	if (!plan)
		return NULL;
	plan->manifest = kt_store_snapshot_create();
	if (!plan->manifest) {
		free(plan);
		return NULL;
	}
	return plan;
}

void kt_store_plan_destroy(struct kt_store_plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; i < plan->part_count; i++)
		free(plan->parts[i].topic);
	free(plan->parts);
	free(plan->creator);
	kt_store_snapshot_destroy(plan->manifest);
	free(plan);
}

int kt_store_plan_add_part(struct kt_store_plan *plan, const char *topic, int32_t partition,
			   int64_t from, int64_t end)
{
	struct kt_store_plan_part *grown = realloc(plan->parts, (plan->part_count + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	plan->parts = grown;
	grown[plan->part_count].topic = strdup(topic);
	if (!grown[plan->part_count].topic)
		return -ENOMEM;
	grown[plan->part_count].partition = partition;
	grown[plan->part_count].from = from;
	grown[plan->part_count].end = end;
	plan->part_count++;
	return 0;
}

/* ---- JSON helpers ---------------------------------------------------------- */

static int get_int(json_t *obj, const char *name, int64_t min, int64_t *out, const char *ctx,
		   char *errstr, size_t errstr_size)
{
	json_t *v = json_object_get(obj, name);

	if (!json_is_integer(v))
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s%s must be an integer", ctx, name);
	*out = json_integer_value(v);
	if (*out < min)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s%s is %lld, below %lld", ctx, name,
				 (long long)*out, (long long)min);
	return 0;
}

static const char *get_str(json_t *obj, const char *name)
{
	return json_string_value(json_object_get(obj, name));
}

/* Checks format and version in the order repository.md section 4 gives
 * for manifests, which section 8 applies to plans and records. */
static int check_header(json_t *root, const char *format, const char *what, char *errstr, size_t errstr_size)
{
	json_t *v;

	if (!json_is_object(root))
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s is not a JSON object", what);
	if (!get_str(root, "format") || strcmp(get_str(root, "format"), format) != 0)
		return kt_seterr(errstr, errstr_size, KT_EMAGIC, "%s: format is not \"%s\"", what, format);
	v = json_object_get(root, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s: version must be a positive integer", what);
	if (json_integer_value(v) > 1)
		return kt_seterr(errstr, errstr_size, KT_EVERSION,
				 "%s: version %lld is newer than this ktape supports (1)", what,
				 (long long)json_integer_value(v));
	return 0;
}

/* ---- the plan ---------------------------------------------------------------- */

static int group_valid(const char *group)
{
	size_t len = strlen(group);

	if (len == 0 || len > 200 || group[0] == '.')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = group[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* The rules a plan obeys whichever direction it travels: every part names
 * a partition of the manifest exactly once, in manifest order, with
 * start <= from <= end and end the manifest's end offset. */
static int plan_check(const struct kt_store_plan *plan, char *errstr, size_t errstr_size)
{
	const struct kt_store_snapshot *snap = plan->manifest;
	size_t k = 0;

	if (!kt_store_snapshot_id_valid(plan->id))
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "plan id '%s' is not a snapshot id", plan->id);
	if (strcmp(snap->id, plan->id) != 0)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "plan %s: its manifest's id is %s", plan->id,
				 snap->id);
	if (!group_valid(plan->group))
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "plan %s: group '%s' is not 1 to 200 characters of [A-Za-z0-9._-] not starting with '.'",
				 plan->id, plan->group);
	for (size_t t = 0; t < snap->topic_count; t++)
		for (size_t p = 0; p < snap->topics[t].n_partitions; p++, k++) {
			const struct kt_store_partition *sp = &snap->topics[t].partitions[p];
			const struct kt_store_plan_part *part = k < plan->part_count ? &plan->parts[k] : NULL;

			if (!part || strcmp(part->topic, snap->topics[t].name) != 0 || part->partition != sp->partition)
				return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
						 "plan %s: parts[%zu] is not %s [%d] of its manifest", plan->id, k,
						 snap->topics[t].name, (int)sp->partition);
			if (part->from < sp->start_offset || part->from > part->end || part->end != sp->end_offset)
				return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
						 "plan %s: parts[%zu] (%s [%d]) range %lld..%lld does not fit the "
						 "manifest's %lld..%lld", plan->id, k, part->topic, (int)part->partition,
						 (long long)part->from, (long long)part->end,
						 (long long)sp->start_offset, (long long)sp->end_offset);
		}
	if (k != plan->part_count)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "plan %s: %zu parts for %zu partitions", plan->id,
				 plan->part_count, k);
	return 0;
}

int kt_store_plan_to_json(const struct kt_store_plan *plan, char **out, char *errstr, size_t errstr_size)
{
	json_t *root = NULL, *parts, *manifest;
	char *text = NULL;
	int err;

	*out = NULL;
	err = plan_check(plan, errstr, errstr_size);
	if (err)
		return err;
	err = kt_store_snapshot_to_json(plan->manifest, &text, errstr, errstr_size);
	if (err)
		return err;
	manifest = json_loads(text, 0, NULL);
	free(text);
	root = json_object();
	parts = json_array();
	if (!manifest || !root || !parts) {
		json_decref(manifest);
		json_decref(parts);
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "plan %s: out of memory", plan->id);
		goto out;
	}
	json_object_set_new(root, "format", json_string("ktape-plan"));
	json_object_set_new(root, "version", json_integer(1));
	json_object_set_new(root, "id", json_string(plan->id));
	json_object_set_new(root, "group", json_string(plan->group));
	json_object_set_new(root, "created_ms", json_integer(plan->created_ms));
	json_object_set_new(root, "creator", json_string(plan->creator ? plan->creator : ""));
	for (size_t i = 0; i < plan->part_count; i++) {
		const struct kt_store_plan_part *p = &plan->parts[i];

		json_array_append_new(parts, json_pack("{s:s, s:i, s:I, s:I}", "topic", p->topic, "partition",
						       (int)p->partition, "from", (json_int_t)p->from, "end",
						       (json_int_t)p->end));
	}
	json_object_set_new(root, "parts", parts);
	json_object_set_new(root, "manifest", manifest);
	*out = json_dumps(root, JSON_COMPACT);
	if (!*out)
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "plan %s: out of memory", plan->id);
out:
	json_decref(root);
	return err;
}

int kt_store_plan_from_json(const char *json, size_t len, struct kt_store_plan **out,
			    char *errstr, size_t errstr_size)
{
	struct kt_store_plan *plan = NULL;
	json_t *root, *parts, *manifest;
	char *text = NULL, ctx[64];
	const char *s;
	int err;

	*out = NULL;
	root = json_loadb(json, len, 0, NULL);
	err = check_header(root, "ktape-plan", "plan", errstr, errstr_size);
	if (err)
		goto out;
	plan = kt_store_plan_create();
	if (!plan) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	parts = json_object_get(root, "parts");
	manifest = json_object_get(root, "manifest");
	if (!(s = get_str(root, "id")) || strlen(s) >= sizeof(plan->id)) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "plan: id must be a snapshot id");
		goto out;
	}
	snprintf(plan->id, sizeof(plan->id), "%s", s);
	if (!(s = get_str(root, "group")) || strlen(s) >= sizeof(plan->group)) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "plan %s: group must be a string", plan->id);
		goto out;
	}
	snprintf(plan->group, sizeof(plan->group), "%s", s);
	plan->creator = strdup(get_str(root, "creator") ? get_str(root, "creator") : "");
	err = get_int(root, "created_ms", 0, &plan->created_ms, "plan: ", errstr, errstr_size);
	if (err)
		goto out;
	if (!json_is_array(parts) || !json_is_object(manifest) || !plan->creator) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "plan %s: parts must be an array and manifest an object",
				plan->id);
		goto out;
	}
	for (size_t i = 0; i < json_array_size(parts); i++) {
		json_t *p = json_array_get(parts, i);
		int64_t partition = 0, from = 0, end = 0;

		snprintf(ctx, sizeof(ctx), "plan parts[%zu].", i);
		if (!get_str(p, "topic")) {
			err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%stopic must be a string", ctx);
			goto out;
		}
		if ((err = get_int(p, "partition", 0, &partition, ctx, errstr, errstr_size)) ||
		    (err = get_int(p, "from", 0, &from, ctx, errstr, errstr_size)) ||
		    (err = get_int(p, "end", 0, &end, ctx, errstr, errstr_size)))
			goto out;
		if (partition > INT32_MAX) {
			err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%spartition is out of range", ctx);
			goto out;
		}
		if (kt_store_plan_add_part(plan, get_str(p, "topic"), (int32_t)partition, from, end)) {
			err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
			goto out;
		}
	}
	text = json_dumps(manifest, JSON_COMPACT);
	if (!text) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	kt_store_snapshot_destroy(plan->manifest);
	plan->manifest = NULL;
	err = kt_store_snapshot_from_json(text, strlen(text), &plan->manifest, errstr, errstr_size);
	if (!err)
		err = plan_check(plan, errstr, errstr_size);
	if (!err) {
		*out = plan;
		plan = NULL;
	}
out:
	free(text);
	kt_store_plan_destroy(plan);
	json_decref(root);
	return err;
}

/* ---- plans in the repository ---------------------------------------------------- */

static int plan_rel(char *buf, size_t size, const char *id)
{
	return snprintf(buf, size, "plans/%s.json", id) >= (int)size ? -ENAMETOOLONG : 0;
}

int kt_store_plan_new_id(struct kt_store_repo *repo, char *id, char *errstr, size_t errstr_size)
{
	/* The same ids as a committed snapshot gets (repo.c). */
	return kt_store_repo_new_snapshot_id(repo, id, 64, errstr, errstr_size);
}

int kt_store_plan_write(struct kt_store_repo *repo, const struct kt_store_plan *plan,
			char *errstr, size_t errstr_size)
{
	char rel[128], *text = NULL;
	int err;

	if (!kt_store_snapshot_id_valid(plan->id) || plan_rel(rel, sizeof(rel), plan->id))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "'%s' is not a valid snapshot id", plan->id);
	err = kt_store_plan_to_json(plan, &text, errstr, errstr_size);
	if (!err)
		err = kt_store_repo_write_file(repo, rel, text, strlen(text), KT_STORE_PUT_IF_ABSENT, errstr,
					       errstr_size);
	free(text);
	return err;
}

int kt_store_plan_list(struct kt_store_repo *repo, char ***ids, size_t *count, char *errstr, size_t errstr_size)
{
	char **names = NULL;
	size_t n = 0, kept = 0;
	int err;

	*ids = NULL;
	*count = 0;
	err = kt_store_repo_list_files(repo, "plans", &names, &n, errstr, errstr_size);
	if (err)
		return err;
	/* Only "<id>.json" names plans; anything else in plans/ is not one. */
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(names[i]);

		if (len > 5 && !strcmp(names[i] + len - 5, ".json")) {
			names[i][len - 5] = '\0';
			if (kt_store_snapshot_id_valid(names[i])) {
				char *keep = names[i];

				names[i] = names[kept];
				names[kept++] = keep;
				continue;
			}
		}
	}
	for (size_t i = kept; i < n; i++) {
		free(names[i]);
		names[i] = NULL;
	}
	*ids = names;
	*count = kept;
	return 0;
}

int kt_store_plan_load(struct kt_store_repo *repo, const char *id, struct kt_store_plan **out,
		       char *errstr, size_t errstr_size)
{
	char rel[128], why[512], *text = NULL;
	size_t len = 0;
	int err;

	*out = NULL;
	if (!kt_store_snapshot_id_valid(id) || plan_rel(rel, sizeof(rel), id))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "'%s' is not a valid plan id", id);
	err = kt_store_repo_read_file(repo, rel, PLAN_MAX_BYTES, &text, &len, errstr, errstr_size);
	if (err)
		return err;
	err = kt_store_plan_from_json(text, len, out, why, sizeof(why));
	free(text);
	if (err)
		return kt_seterr(errstr, errstr_size, err, "%s/%s: %s", kt_store_repo_path(repo), rel, why);
	if (strcmp((*out)->id, id) != 0) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s/%s: the plan says its id is %s",
				kt_store_repo_path(repo), rel, (*out)->id);
		kt_store_plan_destroy(*out);
		*out = NULL;
	}
	return err;
}

int kt_store_plan_remove(struct kt_store_repo *repo, const char *id, char *errstr, size_t errstr_size)
{
	char dir[128], rel[256];
	int err;

	if (!kt_store_snapshot_id_valid(id) || plan_rel(rel, sizeof(rel), id))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "'%s' is not a valid plan id", id);
	/* The records go first and the plan last: a remover killed in between
	 * leaves a plan whose snapshot is committed, which the next worker
	 * run recognises as finished and removes again. */
	snprintf(dir, sizeof(dir), "plans/%s", id);
	err = kt_store_repo_remove_dir(repo, dir, errstr, errstr_size);
	if (!err)
		err = kt_store_repo_remove_file(repo, rel, errstr, errstr_size);
	return err;
}

/* ---- progress records ----------------------------------------------------------- */

struct plan_chain {
	struct kt_store_plan_record *recs; /* sorted by from */
	size_t count;
	size_t cap;
};

struct kt_store_plan_progress {
	const struct kt_store_plan *plan;
	struct plan_chain *chains; /* one per plan part */
	char **seen;               /* record names read, sorted */
	size_t seen_count;
};

static const char *const kind_names[] = { "segment", "empty", "gap" };

int kt_store_plan_progress_create(struct kt_store_plan_progress **out, const struct kt_store_plan *plan)
{
	struct kt_store_plan_progress *pg = calloc(1, sizeof(*pg));

	*out = NULL;
	if (!pg)
		return -ENOMEM;
	pg->plan = plan;
	pg->chains = calloc(plan->part_count ? plan->part_count : 1, sizeof(*pg->chains));
	if (!pg->chains) {
		free(pg);
		return -ENOMEM;
	}
	*out = pg;
	return 0;
}

void kt_store_plan_progress_destroy(struct kt_store_plan_progress *pg)
{
	if (!pg)
		return;
	for (size_t i = 0; i < pg->plan->part_count; i++) {
		for (size_t j = 0; j < pg->chains[i].count; j++)
			free(pg->chains[i].recs[j].segment.path);
		free(pg->chains[i].recs);
	}
	free(pg->chains);
	kt_store_strv_free(pg->seen, pg->seen_count);
	free(pg);
}

static void record_name(char *buf, size_t size, const char *id, size_t part, int64_t from)
{
	snprintf(buf, size, "plans/%s/%zu-%020" PRId64 ".json", id, part, from);
}

/* Adds a record (copying its path) in from order; a second record with
 * the same from cannot exist (the name is create-once) and is ignored. */
static int chain_add(struct plan_chain *chain, const struct kt_store_plan_record *rec)
{
	size_t at = chain->count;

	for (size_t i = 0; i < chain->count; i++) {
		if (chain->recs[i].from == rec->from)
			return 0;
		if (chain->recs[i].from > rec->from) {
			at = i;
			break;
		}
	}
	if (chain->count == chain->cap) {
		size_t cap = chain->cap ? chain->cap * 2 : 4;
		struct kt_store_plan_record *grown = realloc(chain->recs, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		chain->recs = grown;
		chain->cap = cap;
	}
	memmove(&chain->recs[at + 1], &chain->recs[at], (chain->count - at) * sizeof(*rec));
	chain->recs[at] = *rec;
	chain->recs[at].segment.path = NULL;
	if (rec->kind == KT_PLAN_RECORD_SEGMENT && !(chain->recs[at].segment.path = strdup(rec->segment.path))) {
		memmove(&chain->recs[at], &chain->recs[at + 1], (chain->count - at) * sizeof(*rec));
		return -ENOMEM;
	}
	chain->count++;
	return 0;
}

int64_t kt_store_plan_progress_position(const struct kt_store_plan_progress *pg, size_t part)
{
	const struct plan_chain *chain = &pg->chains[part];
	int64_t pos = pg->plan->parts[part].from;

	/* Follow the chain: each record starts where the previous ended. */
	for (size_t i = 0; i < chain->count; i++)
		if (chain->recs[i].from == pos)
			pos = chain->recs[i].to;
	return pos;
}

size_t kt_store_plan_progress_remaining(const struct kt_store_plan_progress *pg)
{
	size_t remaining = 0;

	for (size_t i = 0; i < pg->plan->part_count; i++)
		remaining += kt_store_plan_progress_position(pg, i) < pg->plan->parts[i].end;
	return remaining;
}

/* The rules of one record against its plan (repository.md 8.3). */
static int record_check(const struct kt_store_plan *plan, const struct kt_store_plan_record *rec,
			char *errstr, size_t errstr_size)
{
	const struct kt_store_plan_part *part;
	const struct kt_store_segref *seg = &rec->segment;

	if (rec->part >= plan->part_count)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "part %zu is not in plan %s", rec->part, plan->id);
	part = &plan->parts[rec->part];
	if (rec->from < part->from || rec->to <= rec->from || rec->to > part->end)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "%s [%d]: range %lld..%lld is outside the plan's %lld..%lld", part->topic,
				 (int)part->partition, (long long)rec->from, (long long)rec->to,
				 (long long)part->from, (long long)part->end);
	if (rec->kind < KT_PLAN_RECORD_SEGMENT || rec->kind > KT_PLAN_RECORD_GAP)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s [%d]: unknown record kind %d", part->topic,
				 (int)part->partition, rec->kind);
	if (rec->kind == KT_PLAN_RECORD_SEGMENT &&
	    (!seg->path || !seg->path[0] || seg->path[0] == '/' || strstr(seg->path, "..") || seg->records == 0 ||
	     seg->first_offset < rec->from || seg->last_offset >= rec->to || seg->first_offset > seg->last_offset ||
	     seg->records > (uint64_t)(seg->last_offset - seg->first_offset + 1) || seg->min_ts > seg->max_ts))
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "%s [%d]: the segment of range %lld..%lld is not a valid reference inside it",
				 part->topic, (int)part->partition, (long long)rec->from, (long long)rec->to);
	return 0;
}

static int record_from_json(const struct kt_store_plan *plan, const char *text, size_t len,
			    struct kt_store_plan_record *rec, char *errstr, size_t errstr_size)
{
	json_t *root = json_loadb(text, len, 0, NULL), *seg;
	int64_t part = 0, v[7];
	const char *kind, *s;
	int err;

	memset(rec, 0, sizeof(*rec));
	err = check_header(root, "ktape-plan-record", "record", errstr, errstr_size);
	if (err)
		goto out;
	if ((err = get_int(root, "part", 0, &part, "", errstr, errstr_size)) ||
	    (err = get_int(root, "from", 0, &rec->from, "", errstr, errstr_size)) ||
	    (err = get_int(root, "to", 0, &rec->to, "", errstr, errstr_size)))
		goto out;
	rec->part = (size_t)part;
	kind = get_str(root, "kind");
	rec->kind = -1;
	for (int k = 0; kind && k < 3; k++)
		if (!strcmp(kind, kind_names[k]))
			rec->kind = k;
	if (rec->kind < 0) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "kind must be \"segment\", \"empty\" or \"gap\"");
		goto out;
	}
	seg = json_object_get(root, "segment");
	if (rec->kind == KT_PLAN_RECORD_SEGMENT) {
		static const char *const names[] = { "first_offset", "last_offset", "min_ts", "max_ts",
						     "records", "raw_bytes", "file_size" };

		for (int i = 0; i < 7; i++)
			if ((err = get_int(seg, names[i], i < 4 ? INT64_MIN : 0, &v[i], "segment.", errstr,
					   errstr_size)))
				goto out;
		s = get_str(seg, "checksum");
		if (!get_str(seg, "path") || !s || strlen(s) != 16 || strspn(s, "0123456789abcdef") != 16) {
			err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
					"segment.path must be a string and segment.checksum 16 lowercase hex digits");
			goto out;
		}
		rec->segment.path = (char *)get_str(seg, "path");
		rec->segment.first_offset = v[0];
		rec->segment.last_offset = v[1];
		rec->segment.min_ts = v[2];
		rec->segment.max_ts = v[3];
		rec->segment.records = (uint64_t)v[4];
		rec->segment.raw_bytes = (uint64_t)v[5];
		rec->segment.file_size = (uint64_t)v[6];
		rec->segment.checksum = strtoull(s, NULL, 16);
	}
	err = record_check(plan, rec, errstr, errstr_size);
	if (!err && rec->kind == KT_PLAN_RECORD_SEGMENT && !(rec->segment.path = strdup(rec->segment.path)))
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	if (err)
		rec->segment.path = NULL;
out:
	json_decref(root);
	return err;
}

static int seen_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int seen_has(const struct kt_store_plan_progress *pg, const char *name)
{
	return pg->seen_count && bsearch(&name, pg->seen, pg->seen_count, sizeof(char *), seen_cmp);
}

static int seen_add(struct kt_store_plan_progress *pg, const char *name)
{
	char **grown = realloc(pg->seen, (pg->seen_count + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	pg->seen = grown;
	if (!(grown[pg->seen_count] = strdup(name)))
		return -ENOMEM;
	pg->seen_count++;
	qsort(pg->seen, pg->seen_count, sizeof(char *), seen_cmp);
	return 0;
}

int kt_store_plan_progress_refresh(struct kt_store_repo *repo, struct kt_store_plan_progress *pg,
				   char *errstr, size_t errstr_size)
{
	char dir[128], rel[256], why[512], **names = NULL, *text = NULL;
	size_t count = 0, len = 0;
	int err;

	snprintf(dir, sizeof(dir), "plans/%s", pg->plan->id);
	err = kt_store_repo_list_files(repo, dir, &names, &count, errstr, errstr_size);
	for (size_t i = 0; i < count && !err; i++) {
		struct kt_store_plan_record rec;
		char expect[256];

		if (seen_has(pg, names[i]))
			continue;
		snprintf(rel, sizeof(rel), "%s/%s", dir, names[i]);
		err = kt_store_repo_read_file(repo, rel, RECORD_MAX_BYTES, &text, &len, errstr, errstr_size);
		if (err == KT_ENOTFOUND) {
			/* Removed since the listing: the plan is being cleaned up
			 * after its commit. */
			err = 0;
			continue;
		}
		if (err)
			break;
		err = record_from_json(pg->plan, text, len, &rec, why, sizeof(why));
		free(text);
		text = NULL;
		if (!err) {
			/* The name is the create-once key: a record must sit
			 * under the name of its own part and from offset. */
			record_name(expect, sizeof(expect), pg->plan->id, rec.part, rec.from);
			if (strcmp(expect, rel) != 0)
				err = kt_seterr(why, sizeof(why), KT_ECORRUPT, "its part and from offset name %s",
						expect);
		}
		if (err) {
			free(rec.segment.path);
			err = kt_seterr(errstr, errstr_size, err, "%s/%s: %s", kt_store_repo_path(repo), rel, why);
			break;
		}
		err = chain_add(&pg->chains[rec.part], &rec);
		free(rec.segment.path);
		if (!err)
			err = seen_add(pg, names[i]);
		if (err)
			err = kt_seterr(errstr, errstr_size, err, "out of memory");
	}
	kt_store_strv_free(names, count);
	return err;
}

int kt_store_plan_progress_record(struct kt_store_repo *repo, struct kt_store_plan_progress *pg,
				  const struct kt_store_plan_record *rec, char *errstr, size_t errstr_size)
{
	const struct kt_store_plan *plan = pg->plan;
	json_t *root = NULL, *seg = json_null();
	char rel[256], sum[17], *text = NULL;
	int err;

	err = record_check(plan, rec, errstr, errstr_size);
	if (err)
		return err;
	if (kt_store_plan_progress_position(pg, rec->part) != rec->from)
		return kt_seterr(errstr, errstr_size, KT_ERANGE,
				 "%s [%d]: a record must start at %lld, where the recorded ones end, not at %lld",
				 plan->parts[rec->part].topic, (int)plan->parts[rec->part].partition,
				 (long long)kt_store_plan_progress_position(pg, rec->part), (long long)rec->from);
	if (rec->kind == KT_PLAN_RECORD_SEGMENT) {
		const struct kt_store_segref *s = &rec->segment;

		snprintf(sum, sizeof(sum), "%016" PRIx64, s->checksum);
		seg = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "path", s->path, "first_offset",
				(json_int_t)s->first_offset, "last_offset", (json_int_t)s->last_offset, "min_ts",
				(json_int_t)s->min_ts, "max_ts", (json_int_t)s->max_ts, "records",
				(json_int_t)s->records, "raw_bytes", (json_int_t)s->raw_bytes, "file_size",
				(json_int_t)s->file_size, "checksum", sum);
	}
	root = json_pack("{s:s, s:i, s:s, s:I, s:s, s:i, s:I, s:I, s:s, s:o, s:I}", "format", "ktape-plan-record",
			 "version", 1, "plan", plan->id, "part", (json_int_t)rec->part, "topic",
			 plan->parts[rec->part].topic, "partition", (int)plan->parts[rec->part].partition, "from",
			 (json_int_t)rec->from, "to", (json_int_t)rec->to, "kind", kind_names[rec->kind], "segment",
			 seg, "written_ms", (json_int_t)kt_wall_ms());
	text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	if (!text) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		goto out;
	}
	record_name(rel, sizeof(rel), plan->id, rec->part, rec->from);
	err = kt_store_repo_write_file(repo, rel, text, strlen(text), KT_STORE_PUT_IF_ABSENT, errstr, errstr_size);
	if (!err)
		err = chain_add(&pg->chains[rec->part], rec);
	if (!err)
		err = seen_add(pg, strrchr(rel, '/') + 1);
	if (err == -ENOMEM)
		kt_seterr(errstr, errstr_size, err, "out of memory");
out:
	free(text);
	json_decref(root);
	return err;
}

static struct kt_store_partition *find_partition(struct kt_store_snapshot *snap, const char *topic,
						 int32_t partition)
{
	for (size_t t = 0; t < snap->topic_count; t++) {
		if (strcmp(snap->topics[t].name, topic) != 0)
			continue;
		for (size_t p = 0; p < snap->topics[t].n_partitions; p++)
			if (snap->topics[t].partitions[p].partition == partition)
				return &snap->topics[t].partitions[p];
	}
	return NULL;
}

int kt_store_plan_build_manifest(const struct kt_store_plan_progress *pg, int64_t completed_ms,
				 struct kt_store_snapshot **out, char *errstr, size_t errstr_size)
{
	const struct kt_store_plan *plan = pg->plan;
	struct kt_store_snapshot *snap = NULL;
	char *text = NULL;
	int err;

	*out = NULL;
	for (size_t i = 0; i < plan->part_count; i++)
		if (kt_store_plan_progress_position(pg, i) < plan->parts[i].end)
			return kt_seterr(errstr, errstr_size, KT_ERANGE,
					 "plan %s: %s [%d] is captured up to offset %lld of %lld", plan->id,
					 plan->parts[i].topic, (int)plan->parts[i].partition,
					 (long long)kt_store_plan_progress_position(pg, i),
					 (long long)plan->parts[i].end);
	/* A deep copy of the plan's manifest through its own encoding. */
	err = kt_store_snapshot_to_json(plan->manifest, &text, errstr, errstr_size);
	if (!err)
		err = kt_store_snapshot_from_json(text, strlen(text), &snap, errstr, errstr_size);
	free(text);
	if (err)
		return err;
	for (size_t i = 0; i < plan->part_count && !err; i++) {
		const struct plan_chain *chain = &pg->chains[i];
		struct kt_store_partition *sp = find_partition(snap, plan->parts[i].topic, plan->parts[i].partition);
		int64_t pos = plan->parts[i].from;

		if (!sp) {
			err = kt_seterr(errstr, errstr_size, KT_ECORRUPT, "plan %s: its manifest lacks %s [%d]", plan->id,
					plan->parts[i].topic, (int)plan->parts[i].partition);
			break;
		}
		for (size_t j = 0; j < chain->count && !err; j++) {
			const struct kt_store_plan_record *rec = &chain->recs[j];

			if (rec->from != pos)
				continue;
			pos = rec->to;
			if (rec->kind == KT_PLAN_RECORD_SEGMENT)
				err = kt_store_partition_add_segment(sp, &rec->segment);
			else if (rec->kind == KT_PLAN_RECORD_GAP)
				err = kt_store_partition_add_gap(sp, rec->from, rec->to, "retention");
			if (err)
				err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
		}
	}
	if (err) {
		kt_store_snapshot_destroy(snap);
		return err;
	}
	snap->kind = snap->parent[0] ? KT_SNAPSHOT_INCREMENTAL : KT_SNAPSHOT_FULL;
	snap->completed_ms = completed_ms;
	*out = snap;
	return 0;
}

int kt_store_plan_commit(struct kt_store_repo *repo, const struct kt_store_snapshot *snap,
			 char *errstr, size_t errstr_size)
{
	char rel[128], *text = NULL;
	size_t len;
	int err;

	if (!kt_store_snapshot_id_valid(snap->id))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "'%s' is not a valid snapshot id", snap->id);
	snprintf(rel, sizeof(rel), "snapshots/%s.json", snap->id);
	err = kt_store_snapshot_to_json(snap, &text, errstr, errstr_size);
	if (err)
		return err;
	len = strlen(text);
	char *nl = realloc(text, len + 2);
	if (!nl) {
		free(text);
		return kt_seterr(errstr, errstr_size, -ENOMEM, "snapshot %s: out of memory", snap->id);
	}
	text = nl;
	memcpy(text + len, "\n", 2);
	/* Create-once: of two workers that both saw the plan complete, one
	 * commits and the other gets KT_EEXIST. */
	err = kt_store_repo_write_file(repo, rel, text, len + 1, KT_STORE_PUT_IF_ABSENT, errstr, errstr_size);
	free(text);
	return err;
}
