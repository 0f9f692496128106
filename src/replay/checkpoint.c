/*
 * checkpoint.c - a restore's plan.json and checkpoint.json
 * (format/restore.md sections 2 and 3), and reconciliation.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
/* For a stack-allocated XXH3_state_t (a complete type in xxHash 0.8). */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "checkpoint_priv.h"
#include "kt_common.h"
#include "kt_replay.h"

#define PLAN_FORMAT "ktape-restore-plan"
#define CKPT_FORMAT "ktape-restore-checkpoint"
#define RESTORE_VERSION 1

static const char *const partitioning_names[] = { "preserve", "key", "random" };
static const char *const order_names[] = { "round-robin", "time" };
static const char *const state_names[] = { "running", "interrupted", "failed", "complete" };

const char *kt_replay_ckpt_state_name(int state)
{
	if (state < 0 || state > KT_REPLAY_CKPT_COMPLETE)
		return "unknown";
	return state_names[state];
}

static int name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

/* ---- plan ---------------------------------------------------------------- */

struct kt_replay_plan *kt_replay_plan_create(const char *target)
{
	struct kt_replay_plan *plan = calloc(1, sizeof(*plan));

	if (!plan)
		return NULL;
	plan->target = strdup(target ? target : "");
	if (!plan->target) {
		free(plan);
		return NULL;
	}
	plan->from_time = KT_REPLAY_NO_BOUND_LO;
	plan->to_time = KT_REPLAY_NO_BOUND_HI;
	return plan;
}

void kt_replay_plan_destroy(struct kt_replay_plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; i < plan->topic_count; i++) {
		free(plan->topics[i].source);
		free(plan->topics[i].target);
		free(plan->topics[i].parts);
		free(plan->topics[i].bases);
	}
	free(plan->topics);
	free(plan->target);
	free(plan);
}

struct kt_replay_plan_topic *kt_replay_plan_add_topic(struct kt_replay_plan *plan,
						      const char *source, const char *target,
						      int32_t target_partitions)
{
	struct kt_replay_plan_topic *topic;
	void *p = realloc(plan->topics, (plan->topic_count + 1) * sizeof(*plan->topics));

	if (!p)
		return NULL;
	plan->topics = p;
	topic = &plan->topics[plan->topic_count];
	memset(topic, 0, sizeof(*topic));
	topic->source = strdup(source);
	topic->target = strdup(target);
	if (!topic->source || !topic->target) {
		free(topic->source);
		free(topic->target);
		return NULL;
	}
	topic->target_partitions = target_partitions;
	plan->topic_count++;
	return topic;
}

int kt_replay_plan_add_part(struct kt_replay_plan_topic *topic, int32_t partition,
			    int64_t from_offset, int64_t to_offset)
{
	void *p = realloc(topic->parts, (topic->part_count + 1) * sizeof(*topic->parts));

	if (!p)
		return -ENOMEM;
	topic->parts = p;
	topic->parts[topic->part_count++] = (struct kt_replay_plan_part){
		partition, from_offset, to_offset
	};
	return 0;
}

int kt_replay_plan_add_base(struct kt_replay_plan_topic *topic, int32_t partition, int64_t base)
{
	void *p = realloc(topic->bases, (topic->base_count + 1) * sizeof(*topic->bases));

	if (!p)
		return -ENOMEM;
	topic->bases = p;
	topic->bases[topic->base_count++] = (struct kt_replay_plan_base){ partition, base };
	return 0;
}

int kt_replay_plan_find_base(const struct kt_replay_plan_topic *topic, int32_t partition,
			     int64_t *base)
{
	for (size_t i = 0; i < topic->base_count; i++) {
		if (topic->bases[i].partition == partition) {
			*base = topic->bases[i].base;
			return 0;
		}
	}
	return KT_ENOTFOUND;
}

/* Appends one fingerprint item and its newline to the hash state. */
static void fp_item(XXH3_state_t *st, const char *s)
{
	XXH3_64bits_update(st, s, strlen(s));
	XXH3_64bits_update(st, "\n", 1);
}

static void fp_bound(XXH3_state_t *st, int64_t v, int unbounded)
{
	char buf[32];

	if (unbounded)
		fp_item(st, "-");
	else {
		snprintf(buf, sizeof(buf), "%" PRId64, v);
		fp_item(st, buf);
	}
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void kt_replay_plan_target_identity(const struct kt_replay_plan *plan, char *buf, size_t size)
{
	char *copy, *names[256], *save = NULL, *tok;
	size_t n = 0, used;

	if (plan->target_cluster[0]) {
		snprintf(buf, size, "cluster:%s", plan->target_cluster);
		return;
	}
	used = (size_t)snprintf(buf, size, "brokers:");
	copy = strdup(plan->target);
	if (!copy)
		return;
	for (tok = strtok_r(copy, ",", &save); tok && n < 256; tok = strtok_r(NULL, ",", &save)) {
		char *end;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*tok)
			names[n++] = tok;
	}
	qsort(names, n, sizeof(names[0]), cmp_cstr);
	for (size_t i = 0; i < n && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? "," : "", names[i]);
	free(copy);
}

void kt_replay_plan_fingerprint(struct kt_replay_plan *plan)
{
	char who[1024];

	XXH3_state_t st;
	char buf[32];

	/* A stack state (XXH3_state_t is a complete type in xxhash 0.8) keeps
	 * this free of allocation failures. */
	XXH3_INITSTATE(&st);
	XXH3_64bits_reset(&st);
	fp_item(&st, plan->snapshot);
	kt_replay_plan_target_identity(plan, who, sizeof(who));
	fp_item(&st, who);
	fp_item(&st, partitioning_names[plan->partitioning]);
	snprintf(buf, sizeof(buf), "%" PRIu64, plan->seed);
	fp_item(&st, buf);
	fp_item(&st, order_names[plan->order]);
	fp_bound(&st, plan->from_time, plan->from_time == KT_REPLAY_NO_BOUND_LO);
	fp_bound(&st, plan->to_time, plan->to_time == KT_REPLAY_NO_BOUND_HI);
	for (size_t i = 0; i < plan->topic_count; i++) {
		const struct kt_replay_plan_topic *t = &plan->topics[i];

		fp_item(&st, t->source);
		fp_item(&st, t->target);
		snprintf(buf, sizeof(buf), "%" PRId32, t->target_partitions);
		fp_item(&st, buf);
		for (size_t j = 0; j < t->part_count; j++) {
			snprintf(buf, sizeof(buf), "%" PRId32, t->parts[j].partition);
			fp_item(&st, buf);
			fp_bound(&st, t->parts[j].from_offset,
				 t->parts[j].from_offset == KT_REPLAY_NO_BOUND_LO);
			fp_bound(&st, t->parts[j].to_offset,
				 t->parts[j].to_offset == KT_REPLAY_NO_BOUND_HI);
		}
	}
	snprintf(plan->fingerprint, sizeof(plan->fingerprint), "%016" PRIx64,
		 (uint64_t)XXH3_64bits_digest(&st));
}

static json_t *bound_json(int64_t v, int64_t none)
{
	return v == none ? json_null() : json_integer(v);
}

/* The common end of the encoders: serializes root when it was built
 * whole, and frees it either way. */
static int finish_json(json_t *root, int built, char **out, const char *what, const char *id,
		       char *errstr, size_t errstr_size)
{
	*out = built ? json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(root);
	if (!*out)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory encoding %s %s", what, id);
	return 0;
}

int kt_replay_plan_to_json(const struct kt_replay_plan *plan, char **out,
			   char *errstr, size_t errstr_size)
{
	json_t *root = NULL, *topics, *range;
	int built = 0;

	*out = NULL;
	range = json_pack("{s:o,s:o}", "from_time",
			  bound_json(plan->from_time, KT_REPLAY_NO_BOUND_LO), "to_time",
			  bound_json(plan->to_time, KT_REPLAY_NO_BOUND_HI));
	topics = json_array();
	if (!range || !topics) {
		json_decref(range);
		json_decref(topics);
		goto out;
	}
	root = json_pack("{s:s,s:i,s:s,s:I,s:s,s:s,s:s,s:o,s:s,s:I,s:s,s:o,s:o}",
			 "format", PLAN_FORMAT, "version", RESTORE_VERSION, "id", plan->id,
			 "created_ms", (json_int_t)plan->created_ms, "fingerprint",
			 plan->fingerprint, "snapshot", plan->snapshot, "target", plan->target,
			 "target_cluster",
			 plan->target_cluster[0] ? json_string(plan->target_cluster) : json_null(),
			 "partitioning", partitioning_names[plan->partitioning], "seed",
			 (json_int_t)plan->seed, "order", order_names[plan->order], "range", range,
			 "topics", topics);
	if (!root)
		goto out;
	for (size_t i = 0; i < plan->topic_count; i++) {
		const struct kt_replay_plan_topic *t = &plan->topics[i];
		json_t *parts = json_array(), *bases = json_array(), *obj;

		obj = json_pack("{s:s,s:s,s:i,s:o,s:o}", "source", t->source, "target", t->target,
				"target_partitions", (int)t->target_partitions, "partitions",
				parts, "bases", bases);
		if (!obj || json_array_append_new(topics, obj))
			goto out;
		for (size_t j = 0; j < t->part_count; j++) {
			const struct kt_replay_plan_part *pp = &t->parts[j];

			if (json_array_append_new(parts, json_pack(
				    "{s:i,s:o,s:o}", "partition", (int)pp->partition, "from_offset",
				    bound_json(pp->from_offset, KT_REPLAY_NO_BOUND_LO),
				    "to_offset", bound_json(pp->to_offset, KT_REPLAY_NO_BOUND_HI))))
				goto out;
		}
		for (size_t j = 0; j < t->base_count; j++) {
			if (json_array_append_new(bases, json_pack(
				    "{s:i,s:I}", "partition", (int)t->bases[j].partition, "base",
				    (json_int_t)t->bases[j].base)))
				goto out;
		}
	}
	built = 1;
out:
	return finish_json(root, built, out, "restore plan", plan->id, errstr, errstr_size);
}

/* Checks format and version in the order format/restore.md gives. */
static int check_header(json_t *root, const char *format, const char *what,
			char *errstr, size_t errstr_size)
{
	json_t *f, *v;

	if (!json_is_object(root))
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s is not a JSON object", what);
	f = json_object_get(root, "format");
	if (!json_is_string(f) || strcmp(json_string_value(f), format) != 0)
		return kt_seterr(errstr, errstr_size, KT_EMAGIC, "%s is not a %s file", what, format);
	v = json_object_get(root, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "%s has no valid \"version\"", what);
	if (json_integer_value(v) > RESTORE_VERSION)
		return kt_seterr(errstr, errstr_size, KT_EVERSION,
				 "%s: version %lld is newer than this ktape supports (%d)", what,
				 (long long)json_integer_value(v), RESTORE_VERSION);
	return 0;
}

/* Parses json and checks its format and version; *root is then owned by
 * the caller. */
static int load_root(const char *json, size_t len, const char *format, const char *what,
		     json_t **root, char *errstr, size_t errstr_size)
{
	json_error_t jerr;
	int err;

	*root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!*root)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "%s is not valid JSON: %s (line %d)",
				 what, jerr.text, jerr.line);
	err = check_header(*root, format, what, errstr, errstr_size);
	if (err) {
		json_decref(*root);
		*root = NULL;
	}
	return err;
}

static int get_bound(json_t *obj, const char *key, int64_t none, int64_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_null(v)) {
		*out = none;
		return 0;
	}
	if (!json_is_integer(v))
		return -1;
	*out = json_integer_value(v);
	return 0;
}

static int copy_id(char *dst, size_t dst_size, json_t *v)
{
	if (!json_is_string(v) || strlen(json_string_value(v)) >= dst_size)
		return -1;
	strcpy(dst, json_string_value(v));
	return 0;
}

static int plan_topic_from_json(struct kt_replay_plan *plan, json_t *jt)
{
	struct kt_replay_plan_topic *t;
	json_t *parts, *bases, *src, *dst, *tp, *e;
	size_t i;

	src = json_object_get(jt, "source");
	dst = json_object_get(jt, "target");
	tp = json_object_get(jt, "target_partitions");
	parts = json_object_get(jt, "partitions");
	bases = json_object_get(jt, "bases");
	if (!json_is_string(src) || !json_is_string(dst) || !json_is_integer(tp) ||
	    json_integer_value(tp) < 1 || json_integer_value(tp) > INT32_MAX ||
	    !json_is_array(parts) || !json_is_array(bases))
		return -1;
	t = kt_replay_plan_add_topic(plan, json_string_value(src), json_string_value(dst),
				     (int32_t)json_integer_value(tp));
	if (!t)
		return -ENOMEM;
	json_array_foreach(parts, i, e) {
		json_t *p = json_object_get(e, "partition");
		int64_t from, to;

		if (!json_is_integer(p) || json_integer_value(p) < 0 ||
		    json_integer_value(p) > INT32_MAX ||
		    get_bound(e, "from_offset", KT_REPLAY_NO_BOUND_LO, &from) ||
		    get_bound(e, "to_offset", KT_REPLAY_NO_BOUND_HI, &to))
			return -1;
		if (kt_replay_plan_add_part(t, (int32_t)json_integer_value(p), from, to))
			return -ENOMEM;
	}
	json_array_foreach(bases, i, e) {
		json_t *p = json_object_get(e, "partition"), *b = json_object_get(e, "base");

		if (!json_is_integer(p) || json_integer_value(p) < 0 ||
		    json_integer_value(p) > INT32_MAX || !json_is_integer(b) ||
		    json_integer_value(b) < 0)
			return -1;
		if (kt_replay_plan_add_base(t, (int32_t)json_integer_value(p),
					    json_integer_value(b)))
			return -ENOMEM;
	}
	return 0;
}

int kt_replay_plan_from_json(const char *json, size_t len, const char *what,
			     struct kt_replay_plan **out, char *errstr, size_t errstr_size)
{
	struct kt_replay_plan *plan = NULL;
	json_t *root, *target, *pt, *ord, *range, *topics, *seed, *created, *e;
	size_t i;
	int err = 0, pi, oi;

	*out = NULL;
	err = load_root(json, len, PLAN_FORMAT, what, &root, errstr, errstr_size);
	if (err)
		return err;
	target = json_object_get(root, "target");
	pt = json_object_get(root, "partitioning");
	ord = json_object_get(root, "order");
	range = json_object_get(root, "range");
	topics = json_object_get(root, "topics");
	seed = json_object_get(root, "seed");
	created = json_object_get(root, "created_ms");
	pi = json_is_string(pt) ? name_index(partitioning_names, 3, json_string_value(pt)) : -1;
	oi = json_is_string(ord) ? name_index(order_names, 2, json_string_value(ord)) : -1;
	if (!json_is_string(target) || pi < 0 || oi < 0 || !json_is_object(range) ||
	    !json_is_array(topics) || !json_is_integer(seed) || json_integer_value(seed) < 0 ||
	    !json_is_integer(created))
		goto corrupt;
	plan = kt_replay_plan_create(json_string_value(target));
	if (!plan) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory reading %s", what);
		goto out;
	}
	if (json_is_string(json_object_get(root, "target_cluster")) &&
	    copy_id(plan->target_cluster, sizeof(plan->target_cluster),
		    json_object_get(root, "target_cluster")))
		goto corrupt;
	if (copy_id(plan->id, sizeof(plan->id), json_object_get(root, "id")) ||
	    copy_id(plan->snapshot, sizeof(plan->snapshot), json_object_get(root, "snapshot")) ||
	    copy_id(plan->fingerprint, sizeof(plan->fingerprint),
		    json_object_get(root, "fingerprint")) ||
	    get_bound(range, "from_time", KT_REPLAY_NO_BOUND_LO, &plan->from_time) ||
	    get_bound(range, "to_time", KT_REPLAY_NO_BOUND_HI, &plan->to_time))
		goto corrupt;
	plan->partitioning = pi;
	plan->order = oi;
	plan->seed = (uint64_t)json_integer_value(seed);
	plan->created_ms = json_integer_value(created);
	json_array_foreach(topics, i, e) {
		int r = plan_topic_from_json(plan, e);

		if (r == -ENOMEM) {
			err = kt_seterr(errstr, errstr_size, r, "out of memory reading %s", what);
			goto out;
		}
		if (r)
			goto corrupt;
	}
	*out = plan;
	plan = NULL;
	goto out;
corrupt:
	err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
			"%s: a required field is missing or has the wrong type", what);
out:
	kt_replay_plan_destroy(plan);
	json_decref(root);
	return err;
}

/* ---- checkpoint ------------------------------------------------------------ */

struct kt_replay_checkpoint *kt_replay_checkpoint_create(const char *id)
{
	struct kt_replay_checkpoint *ckpt = calloc(1, sizeof(*ckpt));

	if (ckpt)
		snprintf(ckpt->id, sizeof(ckpt->id), "%s", id);
	return ckpt;
}

void kt_replay_checkpoint_destroy(struct kt_replay_checkpoint *ckpt)
{
	if (!ckpt)
		return;
	for (size_t i = 0; i < ckpt->part_count; i++)
		free(ckpt->parts[i].topic);
	free(ckpt->parts);
	free(ckpt->error);
	free(ckpt);
}

int kt_replay_checkpoint_set(struct kt_replay_checkpoint *ckpt, const char *topic,
			     int32_t partition, uint64_t acked)
{
	void *p;

	for (size_t i = 0; i < ckpt->part_count; i++) {
		if (ckpt->parts[i].partition == partition &&
		    strcmp(ckpt->parts[i].topic, topic) == 0) {
			ckpt->parts[i].acked = acked;
			return 0;
		}
	}
	p = realloc(ckpt->parts, (ckpt->part_count + 1) * sizeof(*ckpt->parts));
	if (!p)
		return -ENOMEM;
	ckpt->parts = p;
	ckpt->parts[ckpt->part_count].topic = strdup(topic);
	if (!ckpt->parts[ckpt->part_count].topic)
		return -ENOMEM;
	ckpt->parts[ckpt->part_count].partition = partition;
	ckpt->parts[ckpt->part_count].acked = acked;
	ckpt->part_count++;
	return 0;
}

uint64_t kt_replay_checkpoint_acked(const struct kt_replay_checkpoint *ckpt,
				    const char *topic, int32_t partition)
{
	for (size_t i = 0; ckpt && i < ckpt->part_count; i++)
		if (ckpt->parts[i].partition == partition &&
		    strcmp(ckpt->parts[i].topic, topic) == 0)
			return ckpt->parts[i].acked;
	return 0;
}

int kt_replay_checkpoint_set_error(struct kt_replay_checkpoint *ckpt, const char *error)
{
	char *copy = error ? strdup(error) : NULL;

	if (error && !copy)
		return -ENOMEM;
	free(ckpt->error);
	ckpt->error = copy;
	return 0;
}

int kt_replay_checkpoint_to_json(const struct kt_replay_checkpoint *ckpt, char **out,
				 char *errstr, size_t errstr_size)
{
	json_t *root, *parts = json_array();
	int built = 0;

	*out = NULL;
	root = json_pack("{s:s,s:i,s:s,s:I,s:s,s:I,s:o,s:o}", "format", CKPT_FORMAT, "version",
			 RESTORE_VERSION, "id", ckpt->id, "updated_ms",
			 (json_int_t)ckpt->updated_ms, "state",
			 kt_replay_ckpt_state_name(ckpt->state), "runs", (json_int_t)ckpt->runs,
			 "error", ckpt->error ? json_string(ckpt->error) : json_null(),
			 "partitions", parts);
	if (!root)
		goto out;
	for (size_t i = 0; i < ckpt->part_count; i++) {
		if (json_array_append_new(parts, json_pack(
			    "{s:s,s:i,s:I}", "topic", ckpt->parts[i].topic, "partition",
			    (int)ckpt->parts[i].partition, "acked",
			    (json_int_t)ckpt->parts[i].acked)))
			goto out;
	}
	built = 1;
out:
	return finish_json(root, built, out, "checkpoint of restore", ckpt->id, errstr, errstr_size);
}

int kt_replay_checkpoint_from_json(const char *json, size_t len, const char *what,
				   struct kt_replay_checkpoint **out,
				   char *errstr, size_t errstr_size)
{
	struct kt_replay_checkpoint *ckpt = NULL;
	json_t *root, *state, *runs, *updated, *error, *parts, *e;
	size_t i;
	int err = 0, si;

	*out = NULL;
	err = load_root(json, len, CKPT_FORMAT, what, &root, errstr, errstr_size);
	if (err)
		return err;
	state = json_object_get(root, "state");
	runs = json_object_get(root, "runs");
	updated = json_object_get(root, "updated_ms");
	error = json_object_get(root, "error");
	parts = json_object_get(root, "partitions");
	si = json_is_string(state) ? name_index(state_names, 4, json_string_value(state)) : -1;
	if (si < 0 || !json_is_integer(runs) || json_integer_value(runs) < 0 ||
	    !json_is_integer(updated) || !(json_is_null(error) || json_is_string(error)) ||
	    !json_is_array(parts))
		goto corrupt;
	ckpt = kt_replay_checkpoint_create("");
	if (!ckpt || copy_id(ckpt->id, sizeof(ckpt->id), json_object_get(root, "id")) ||
	    (json_is_string(error) && kt_replay_checkpoint_set_error(ckpt, json_string_value(error))))
		goto corrupt;
	ckpt->state = si;
	ckpt->runs = (unsigned)json_integer_value(runs);
	ckpt->updated_ms = json_integer_value(updated);
	json_array_foreach(parts, i, e) {
		json_t *t = json_object_get(e, "topic"), *p = json_object_get(e, "partition"),
		       *a = json_object_get(e, "acked");

		if (!json_is_string(t) || !json_is_integer(p) || json_integer_value(p) < 0 ||
		    json_integer_value(p) > INT32_MAX || !json_is_integer(a) ||
		    json_integer_value(a) < 0)
			goto corrupt;
		if (kt_replay_checkpoint_set(ckpt, json_string_value(t),
					     (int32_t)json_integer_value(p),
					     (uint64_t)json_integer_value(a))) {
			err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory reading %s", what);
			goto out;
		}
	}
	*out = ckpt;
	ckpt = NULL;
	goto out;
corrupt:
	err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
			"%s: a required field is missing or has the wrong type", what);
out:
	kt_replay_checkpoint_destroy(ckpt);
	json_decref(root);
	return err;
}

int kt_replay_reconcile(const char *topic, int32_t partition, int64_t base,
			int64_t end_now, uint64_t acked, uint64_t *skip,
			char *errstr, size_t errstr_size)
{
	/* Records can only have been added after base; fewer than were
	 * acknowledged means the partition is not the one written to. */
	if (end_now < base || (uint64_t)(end_now - base) < acked)
		return kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				 "target %s[%" PRId32 "] ends at offset %" PRId64
				 " but this restore had %" PRIu64 " records acknowledged there from"
				 " base offset %" PRId64 ": the topic was recreated or truncated,"
				 " or this is another cluster; start a separate restore with --new",
				 topic, partition, end_now, acked, base);
	*skip = (uint64_t)(end_now - base);
	return 0;
}

int kt_replay_read_file(const char *path, uint64_t max_size, char **out, size_t *len,
			char *errstr, size_t errstr_size)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, err = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT)
			return err;
		return kt_seterr(errstr, errstr_size, err, "cannot open %s: %s", path,
				 kt_strerror(err));
	}
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > max_size) {
		err = kt_seterr(errstr, errstr_size, KT_ECORRUPT,
				"%s cannot be examined or is larger than %" PRIu64 " bytes", path, max_size);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory reading %s", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = kt_seterr(errstr, errstr_size, -errno, "cannot read %s: %s", path,
					kt_strerror(-errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}
