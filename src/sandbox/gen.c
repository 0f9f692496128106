/*
 * The record generator behind `ktape gen`: deterministic from a seed, with
 * every record shape a backup must preserve (null and empty keys and values,
 * duplicate and null headers, binary bytes, out-of-order timestamps), and a
 * producer that writes them into a cluster in large compressed batches.
 *
 * Records are built one at a time into buffers the generator owns, so
 * memory does not grow with the number of records.
 */
#include "kt_sandbox.h"
#include "kt_store.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_MAX_HEADERS 64
#define GEN_HEADER_VALUE_MAX 24

struct kt_gen {
	struct kt_gen_opts opts;
	char *key_prefix;          /* owned copy of opts.key_prefix */
	uint64_t s[4];             /* xoshiro256** state */
	uint64_t index;            /* records made so far */
	uint64_t bytes;            /* key + value bytes made so far */
	uint64_t expected;         /* records the time span is spread over */
	unsigned char *value;      /* max_size bytes */
	char key[320];
	struct kt_header headers[GEN_MAX_HEADERS];
	char header_values[GEN_MAX_HEADERS][GEN_HEADER_VALUE_MAX];
};

/* ---- randomness ----------------------------------------------------------
 * xoshiro256** seeded through splitmix64 (both public-domain algorithms by
 * Vigna), written out here because determinism across platforms and library
 * versions is the point: rand() is neither. */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t next64(struct kt_gen *gen)
{
	uint64_t *s = gen->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, n); n > 0.  The modulo bias is irrelevant at these sizes. */
static uint64_t below(struct kt_gen *gen, uint64_t n)
{
	return next64(gen) % n;
}

/* True with probability p. */
static int chance(struct kt_gen *gen, double p)
{
	if (p <= 0)
		return 0;
	return (double)(next64(gen) >> 11) * 0x1.0p-53 < p;
}

/* ---- options ------------------------------------------------------------- */

void kt_gen_opts_init(struct kt_gen_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->seed = 1;
	opts->count = 1000;
	opts->partitions = 1;
	opts->partition = -1;
	opts->min_size = 100;
	opts->max_size = 300;
	opts->keys = 1000;
	opts->key_prefix = "key-";
	opts->compressibility = 100;
	opts->ts_start = KT_GEN_DEFAULT_TS_START;
	opts->ts_span_ms = 3600 * 1000;
}

int kt_gen_parse_share(const char *text, double *out)
{
	char num[64];
	size_t len;
	int percent;
	double v;

	if (!text)
		return KT_EUSAGE;
	/* "25%" is the number 25 and a percent sign; the number itself is
	 * parsed as every other decimal flag is. */
	len = strlen(text);
	if (len >= sizeof(num))
		return KT_EUSAGE;
	memcpy(num, text, len + 1);
	percent = len > 0 && num[len - 1] == '%';
	if (percent)
		num[len - 1] = '\0';
	if (kt_parse_double(num, &v))
		return KT_EUSAGE;
	if (percent)
		v /= 100.0;
	if (!(v >= 0.0 && v <= 1.0))
		return KT_EUSAGE;
	*out = v;
	return 0;
}

int kt_gen_opts_set(struct kt_gen_opts *opts, const char *name, const char *value,
		    char *errstr, size_t errstr_size)
{
	uint64_t u, u2;
	double d;

	if (strcmp(name, "seed") == 0) {
		if (kt_parse_u64(value, UINT64_MAX, &opts->seed))
			goto bad_number;
	} else if (strcmp(name, "count") == 0) {
		if (kt_parse_u64(value, UINT64_MAX, &opts->count))
			goto bad_number;
	} else if (strcmp(name, "bytes") == 0) {
		if (kt_parse_size(value, &opts->bytes) || opts->bytes == 0)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--bytes '%s' is not a positive size (like 4M)", value);
	} else if (strcmp(name, "partitions") == 0) {
		if (kt_parse_u64(value, KT_SANDBOX_MAX_PARTITIONS, &u) || u == 0)
			goto bad_number;
		opts->partitions = (int32_t)u;
	} else if (strcmp(name, "partition") == 0) {
		if (kt_parse_u64(value, KT_SANDBOX_MAX_PARTITIONS - 1, &u))
			goto bad_number;
		opts->partition = (int32_t)u;
	} else if (strcmp(name, "size") == 0) {
		/* MIN-MAX or one size. */
		char buf[64], *dash;
		if (snprintf(buf, sizeof(buf), "%s", value) >= (int)sizeof(buf))
			goto bad_size;
		dash = strchr(buf, '-');
		if (dash)
			*dash = '\0';
		if (kt_parse_size(buf, &u) || (dash && kt_parse_size(dash + 1, &u2)))
			goto bad_size;
		if (!dash)
			u2 = u;
		if (u > u2 || u2 > KT_GEN_MAX_VALUE_SIZE)
			goto bad_size;
		opts->min_size = (uint32_t)u;
		opts->max_size = (uint32_t)u2;
	} else if (strcmp(name, "size-dist") == 0) {
		if (strcmp(value, "uniform") == 0)
			opts->size_dist = KT_GEN_SIZE_UNIFORM;
		else if (strcmp(value, "log") == 0)
			opts->size_dist = KT_GEN_SIZE_LOG;
		else
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--size-dist '%s' is neither 'uniform' nor 'log'", value);
	} else if (strcmp(name, "keys") == 0) {
		if (kt_parse_u64(value, UINT64_MAX, &opts->keys))
			goto bad_number;
	} else if (strcmp(name, "key-prefix") == 0) {
		if (strlen(value) > 255)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE, "--key-prefix is longer than 255 bytes");
		opts->key_prefix = value;
	} else if (strcmp(name, "headers") == 0) {
		if (kt_parse_u64(value, GEN_MAX_HEADERS, &u))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--headers '%s' is not a number from 0 to %d", value, GEN_MAX_HEADERS);
		opts->max_headers = (uint32_t)u;
	} else if (strcmp(name, "compressibility") == 0) {
		if (kt_parse_u64(value, 100, &u))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--compressibility '%s' is not a number from 0 (random) to 100 (text)",
					 value);
		opts->compressibility = (int)u;
	} else if (strcmp(name, "ts-start") == 0) {
		if (kt_parse_time_ms(value, &opts->ts_start))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--ts-start '%s' is neither epoch milliseconds nor ISO-8601", value);
	} else if (strcmp(name, "ts-span") == 0) {
		if (kt_parse_duration_ms(value, &opts->ts_span_ms) || opts->ts_span_ms < 0)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--ts-span '%s' is not a duration (like 90s, 10m, 2h)", value);
	} else {
		double *share = strcmp(name, "null-keys") == 0 ? &opts->null_key_share :
				strcmp(name, "tombstones") == 0 ? &opts->tombstone_share :
				strcmp(name, "null-headers") == 0 ? &opts->null_header_share :
				strcmp(name, "dup-headers") == 0 ? &opts->dup_header_share :
				strcmp(name, "binary") == 0 ? &opts->binary_share :
				strcmp(name, "disorder") == 0 ? &opts->disorder_share : NULL;
		if (!share)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE, "unknown generator option '%s'", name);
		if (kt_gen_parse_share(value, &d))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "--%s '%s' is not a share from 0 to 1 (or 0%% to 100%%)", name, value);
		*share = d;
	}
	return 0;
bad_number:
	return kt_seterr(errstr, errstr_size, KT_EUSAGE, "--%s '%s' is not a valid number", name, value);
bad_size:
	return kt_seterr(errstr, errstr_size, KT_EUSAGE,
			 "--size '%s' is not SIZE or MIN-MAX with MIN <= MAX <= %u", value,
			 (unsigned)KT_GEN_MAX_VALUE_SIZE);
}

int kt_gen_parse_commit(const char *text, struct kt_gen_commit *commit,
			char *errstr, size_t errstr_size)
{
	char buf[KT_GEN_MAX_GROUP_LEN + KT_SANDBOX_MAX_TOPIC_LEN + 64];
	char *c3, *c2, *c1;
	uint64_t u;

	memset(commit, 0, sizeof(*commit));
	if (snprintf(buf, sizeof(buf), "%s", text) >= (int)sizeof(buf))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "--commit '%.40s...' is too long", text);
	/* From the right: a group id may itself contain ':', a topic may not. */
	c3 = strrchr(buf, ':');
	if (!c3)
		goto bad;
	*c3 = '\0';
	c2 = strrchr(buf, ':');
	if (!c2)
		goto bad;
	*c2 = '\0';
	c1 = strrchr(buf, ':');
	if (!c1 || c1 == buf)
		goto bad;
	*c1 = '\0';
	if (!kt_sandbox_topic_name_valid(c1 + 1))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "--commit '%s': '%s' is not a legal topic name", text, c1 + 1);
	if (kt_parse_u64(c2 + 1, KT_SANDBOX_MAX_PARTITIONS - 1, &u))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "--commit '%s': partition '%s' is not a number", text, c2 + 1);
	commit->partition = (int32_t)u;
	if (kt_parse_u64(c3 + 1, INT64_MAX, &u))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "--commit '%s': offset '%s' is not a number", text, c3 + 1);
	commit->offset = (int64_t)u;
	if (strlen(buf) > KT_GEN_MAX_GROUP_LEN)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "--commit '%s': group id too long", text);
	memcpy(commit->group, buf, strlen(buf) + 1);
	memcpy(commit->topic, c1 + 1, strlen(c1 + 1) + 1);
	return 0;
bad:
	return kt_seterr(errstr, errstr_size, KT_EUSAGE,
			 "--commit '%s' is not GROUP:TOPIC:PARTITION:OFFSET", text);
}

/* ---- generating ----------------------------------------------------------- */

int32_t kt_gen_partition_for_key(const void *key, size_t key_len, int32_t partitions)
{
	/* librdkafka's default partitioner (consistent_random) sends a keyed
	 * record to CRC32(key) % partitions through this very function, so the
	 * answer matches a producer that does its own partitioning. */
	return rd_kafka_msg_partitioner_consistent(NULL, key, key_len, partitions, NULL, NULL);
}

int kt_gen_create(struct kt_gen **out, const struct kt_gen_opts *opts,
		  char *errstr, size_t errstr_size)
{
	struct kt_gen *gen;
	uint64_t x;
	double avg;

	*out = NULL;
	if (opts->partitions < 1)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "the topic needs at least one partition");
	if (opts->partition >= opts->partitions)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "partition %d does not exist: the topic has %d", (int)opts->partition,
				 (int)opts->partitions);
	if (opts->min_size > opts->max_size || opts->max_size > KT_GEN_MAX_VALUE_SIZE)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "value sizes %u-%u are out of range",
				 opts->min_size, opts->max_size);
	if (opts->max_headers > GEN_MAX_HEADERS || opts->compressibility < 0 ||
	    opts->compressibility > 100 || opts->ts_span_ms < 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "generator options out of range");
	if (opts->count == UINT64_MAX && opts->bytes == 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "give a record count or a byte budget");
	gen = calloc(1, sizeof(*gen));
	if (!gen)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	gen->opts = *opts;
	gen->key_prefix = strdup(opts->key_prefix ? opts->key_prefix : "");
	gen->value = malloc(opts->max_size ? opts->max_size : 1);
	if (!gen->key_prefix || !gen->value) {
		kt_gen_destroy(gen);
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory for values of %u bytes",
				 opts->max_size);
	}
	gen->opts.key_prefix = gen->key_prefix;
	x = opts->seed;
	for (int i = 0; i < 4; i++)
		gen->s[i] = splitmix64(&x);
	/* The time span is spread over the records expected; with a byte
	 * budget that is an estimate from the mean record size. */
	avg = (opts->min_size + opts->max_size) / 2.0 * (1.0 - opts->tombstone_share) + 8.0;
	gen->expected = opts->count != UINT64_MAX ? opts->count : (uint64_t)ceil((double)opts->bytes / avg);
	if (gen->expected == 0)
		gen->expected = 1;
	*out = gen;
	return 0;
}

void kt_gen_destroy(struct kt_gen *gen)
{
	if (!gen)
		return;
	free(gen->key_prefix);
	free(gen->value);
	free(gen);
}

static const char *const words[] = {
	"order", "created", "payment", "settled", "user", "login", "audit", "event",
	"shipment", "delayed", "refund", "approved", "session", "expired", "quote",
	"trade", "filled", "cancel", "ack", "retry",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static const char *const header_names[] = {
	"trace-id", "content-type", "source", "retry-count", "tenant", "schema-version",
};
#define NHEADER_NAMES (sizeof(header_names) / sizeof(header_names[0]))

/* A value size in [min, max] following the size distribution.  Integer
 * arithmetic only, so sizes are the same on every machine. */
static size_t value_size(struct kt_gen *gen)
{
	uint64_t lo = gen->opts.min_size, hi = gen->opts.max_size;
	uint64_t band_lo, band_hi;
	int first = 0, last = 0;

	if (gen->opts.size_dist != KT_GEN_SIZE_LOG || lo == hi)
		return (size_t)(lo + below(gen, hi - lo + 1));
	/* Bands [2^k - 1, 2^(k+1) - 2] (k >= 0) tile 0..max; pick one of those
	 * overlapping [lo, hi] uniformly, then a size inside the overlap. */
	while (((2ULL << first) - 2) < lo)
		first++;
	while (((1ULL << last) - 1) <= hi && last < 63)
		last++;
	last--;
	int k = first + (int)below(gen, (uint64_t)(last - first + 1));
	band_lo = (1ULL << k) - 1;
	band_hi = (2ULL << k) - 2;
	if (band_lo < lo)
		band_lo = lo;
	if (band_hi > hi)
		band_hi = hi;
	return (size_t)(band_lo + below(gen, band_hi - band_lo + 1));
}

/* A JSON-like text value of exactly len bytes (cut short when len is below
 * the fixed part). */
static void fill_text(struct kt_gen *gen, unsigned char *v, size_t len)
{
	char head[200];
	size_t n, pos;
	uint64_t r = next64(gen);
	int hl = snprintf(head, sizeof(head),
			  "{\"seq\":%llu,\"id\":\"%016llx\",\"user\":\"user-%u\",\"event\":\"%s\","
			  "\"amount\":%u.%02u,\"note\":\"",
			  (unsigned long long)gen->index, (unsigned long long)r,
			  (unsigned)(r % 5000), words[(r >> 16) % NWORDS],
			  (unsigned)((r >> 24) % 100000), (unsigned)((r >> 40) % 100));

	n = (size_t)hl < len ? (size_t)hl : len;
	memcpy(v, head, n);
	pos = n;
	while (pos + 2 < len) {
		const char *w = words[below(gen, NWORDS)];
		size_t wl = strlen(w);
		if (wl + 1 > len - 2 - pos)
			wl = len - 2 - pos - 1;
		memcpy(v + pos, w, wl);
		pos += wl;
		v[pos++] = ' ';
	}
	if (len >= (size_t)hl + 2) {
		v[len - 2] = '"';
		v[len - 1] = '}';
	} else {
		while (pos < len)
			v[pos++] = ' ';
	}
}

int kt_gen_next(struct kt_gen *gen, struct kt_record *rec, int32_t *partition)
{
	const struct kt_gen_opts *o = &gen->opts;
	size_t len;
	int64_t ts;

	if (gen->index >= o->count || (o->bytes && gen->bytes >= o->bytes))
		return 0;
	memset(rec, 0, sizeof(*rec));
	rec->offset = -1;
	rec->ts_type = KT_TS_CREATE;

	/* Key. */
	if (o->keys > 0 && !chance(gen, o->null_key_share)) {
		int kl = snprintf(gen->key, sizeof(gen->key), "%s%llu", gen->key_prefix,
				  (unsigned long long)below(gen, o->keys));
		rec->key = gen->key;
		rec->key_len = (size_t)kl;
	}

	/* Value. */
	if (!chance(gen, o->tombstone_share)) {
		len = value_size(gen);
		fill_text(gen, gen->value, len);
		/* Random 64-byte blocks replace text in proportion to how
		 * incompressible the values should be. */
		if (o->compressibility < 100) {
			for (size_t b = 0; b < len; b += 64) {
				if (below(gen, 100) < (uint64_t)(100 - o->compressibility)) {
					for (size_t j = b; j < b + 64 && j < len; j += 8) {
						uint64_t r = next64(gen);
						memcpy(gen->value + j, &r, len - j < 8 ? len - j : 8);
					}
				}
			}
		}
		if (len >= 3 && chance(gen, o->binary_share)) {
			gen->value[below(gen, len)] = '\0';
			gen->value[below(gen, len)] = '\n';
			gen->value[below(gen, len)] = 0xff;
		}
		rec->value = gen->value;
		rec->value_len = len;
	}

	/* Headers. */
	if (o->max_headers > 0) {
		size_t n = (size_t)below(gen, o->max_headers + 1);
		for (size_t i = 0; i < n; i++) {
			struct kt_header *h = &gen->headers[i];
			const char *name = i > 0 && chance(gen, o->dup_header_share) ?
					   gen->headers[i - 1].name : header_names[below(gen, NHEADER_NAMES)];
			h->name = name;
			h->name_len = strlen(name);
			if (chance(gen, o->null_header_share)) {
				h->value = NULL;
				h->value_len = 0;
			} else {
				int vl = snprintf(gen->header_values[i], GEN_HEADER_VALUE_MAX, "%llx",
						  (unsigned long long)next64(gen));
				h->value = gen->header_values[i];
				h->value_len = (size_t)vl;
			}
		}
		rec->headers = gen->headers;
		rec->header_count = n;
	}

	/* Timestamp: spread evenly over the span, some records moved back. */
	ts = o->ts_start;
	if (gen->expected > 1 && o->ts_span_ms > 0) {
		uint64_t i = gen->index < gen->expected ? gen->index : gen->expected - 1;
		ts += (int64_t)((double)o->ts_span_ms * (double)i / (double)(gen->expected - 1));
	}
	if (chance(gen, o->disorder_share))
		ts -= (int64_t)below(gen, (uint64_t)(o->ts_span_ms / 10) + 1000);
	rec->timestamp = ts < 0 ? 0 : ts;

	/* Partition. */
	if (o->partition >= 0)
		*partition = o->partition;
	else if (o->round_robin)
		*partition = (int32_t)(gen->index % (uint64_t)o->partitions);
	else if (rec->key)
		*partition = kt_gen_partition_for_key(rec->key, rec->key_len, o->partitions);
	else
		*partition = (int32_t)below(gen, (uint64_t)o->partitions);

	gen->index++;
	gen->bytes += rec->key_len + rec->value_len;
	return 1;
}

uint64_t kt_gen_records_made(const struct kt_gen *gen)
{
	return gen->index;
}

/* ---- producing ------------------------------------------------------------ */

struct produce_state {
	struct kt_gen_result *result;
	uint64_t delivered;
	uint64_t failed;
	rd_kafka_resp_err_t first_error;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	struct produce_state *st = opaque;
	struct kt_gen_partition_stats *ps;

	(void)rk;
	if (msg->err) {
		if (!st->failed)
			st->first_error = msg->err;
		st->failed++;
		return;
	}
	st->delivered++;
	if (msg->partition < 0 || (size_t)msg->partition >= st->result->partition_count)
		return;
	ps = &st->result->partitions[msg->partition];
	if (ps->records == 0 || msg->offset < ps->first_offset)
		ps->first_offset = msg->offset;
	if (ps->records == 0 || msg->offset > ps->last_offset)
		ps->last_offset = msg->offset;
	ps->records++;
}

int kt_gen_topic_partitions(rd_kafka_conf_t *conf, const char *topic, int32_t *partitions,
			    char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t rkerr;
	rd_kafka_t *rk;
	char rkerrstr[512];
	int err = 0;

	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rkerrstr, sizeof(rkerrstr));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "cannot create a Kafka client: %s", rkerrstr);
	}
	/* All topics: asking for one by name would make the mock (and brokers
	 * with auto.create.topics.enable) create it. */
	rkerr = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
	if (rkerr) {
		err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "cannot read the cluster's topics: %s",
				rd_kafka_err2str(rkerr));
		goto out;
	}
	err = kt_seterr(errstr, errstr_size, KT_ENOTFOUND, "topic %s does not exist in the cluster", topic);
	for (int i = 0; i < md->topic_cnt; i++) {
		if (strcmp(md->topics[i].topic, topic) == 0) {
			*partitions = md->topics[i].partition_cnt;
			err = 0;
			break;
		}
	}
out:
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_destroy(rk);
	return err;
}

int kt_gen_produce(struct kt_gen *gen, rd_kafka_conf_t *conf, const char *topic,
		   struct kt_gen_result *result, volatile int *stop,
		   char *errstr, size_t errstr_size)
{
	struct produce_state st = { .result = result };
	struct kt_record rec;
	rd_kafka_t *rk = NULL;
	char rkerrstr[512];
	int32_t partition;
	int err = 0, more;

	memset(result, 0, sizeof(*result));
	result->partition_count = (size_t)gen->opts.partitions;
	result->partitions = calloc(result->partition_count, sizeof(*result->partitions));
	if (!result->partitions) {
		rd_kafka_conf_destroy(conf);
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < result->partition_count; i++) {
		result->partitions[i].partition = (int32_t)i;
		result->partitions[i].first_offset = -1;
		result->partitions[i].last_offset = -1;
	}
	rd_kafka_conf_set_opaque(conf, &st);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rkerrstr, sizeof(rkerrstr));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "cannot create a producer: %s", rkerrstr);
	}
	while ((more = kt_gen_next(gen, &rec, &partition)) == 1) {
		rd_kafka_headers_t *hdrs = NULL;
		rd_kafka_resp_err_t rkerr;

		if (stop && *stop) {
			err = kt_seterr(errstr, errstr_size, KT_EINTERRUPTED, "interrupted after %llu records",
					(unsigned long long)result->records);
			break;
		}
		if (rec.header_count) {
			hdrs = rd_kafka_headers_new(rec.header_count);
			for (size_t i = 0; i < rec.header_count; i++)
				rd_kafka_header_add(hdrs, rec.headers[i].name, (ssize_t)rec.headers[i].name_len,
						    rec.headers[i].value, (ssize_t)rec.headers[i].value_len);
		}
		for (;;) {
			rkerr = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
						  RD_KAFKA_V_KEY(rec.key, rec.key_len),
						  RD_KAFKA_V_VALUE((void *)rec.value, rec.value_len),
						  RD_KAFKA_V_TIMESTAMP(rec.timestamp),
						  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
						  RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
			if (rkerr != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				break;
			/* The local queue is full: serve delivery reports to
			 * make room, then try again. */
			rd_kafka_poll(rk, 100);
		}
		if (rkerr) {
			rd_kafka_headers_destroy(hdrs);
			err = kt_seterr(errstr, errstr_size, KT_EKAFKA,
					"cannot produce record %llu to %s partition %d: %s",
					(unsigned long long)result->records, topic, (int)partition,
					rd_kafka_err2str(rkerr));
			break;
		}
		result->records++;
		result->bytes += rec.key_len + rec.value_len;
		for (size_t i = 0; i < rec.header_count; i++)
			result->header_bytes += rec.headers[i].name_len + rec.headers[i].value_len;
		result->tombstones += rec.value == NULL;
		result->null_keys += rec.key == NULL;
		result->headers += rec.header_count;
		/* Delivery reports are served in batches: a poll takes the
		 * queue's lock, and once per record it only adds work.  A full
		 * queue is served above. */
		if ((result->records & 1023) == 0)
			rd_kafka_poll(rk, 0);
	}
	/* Everything queued must be acknowledged (or have failed) before the
	 * counts can be trusted. */
	while (rd_kafka_outq_len(rk) > 0) {
		if (stop && *stop && !err)
			err = kt_seterr(errstr, errstr_size, KT_EINTERRUPTED, "interrupted while flushing");
		rd_kafka_flush(rk, 1000);
		if (stop && *stop)
			break;
	}
	if (!err && st.failed)
		err = kt_seterr(errstr, errstr_size, KT_EDELIVERY,
				"%llu of %llu records were not acknowledged (first error: %s)",
				(unsigned long long)st.failed, (unsigned long long)result->records,
				rd_kafka_err2str(st.first_error));
	result->delivered = st.delivered;
	rd_kafka_destroy(rk);
	return err;
}

void kt_gen_result_clear(struct kt_gen_result *result)
{
	if (!result)
		return;
	free(result->partitions);
	memset(result, 0, sizeof(*result));
}

int kt_gen_commit_offsets(rd_kafka_conf_t *conf, const char *group,
			  const struct kt_gen_commit *commits, size_t count,
			  char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *offsets = NULL;
	rd_kafka_resp_err_t rkerr;
	rd_kafka_t *rk;
	char rkerrstr[512];
	int err = 0;

	if (rd_kafka_conf_set(conf, "group.id", group, rkerrstr, sizeof(rkerrstr)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", rkerrstr, sizeof(rkerrstr)) !=
		    RD_KAFKA_CONF_OK) {
		rd_kafka_conf_destroy(conf);
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "group %s: %s", group, rkerrstr);
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rkerrstr, sizeof(rkerrstr));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "cannot create a consumer: %s", rkerrstr);
	}
	offsets = rd_kafka_topic_partition_list_new((int)count);
	for (size_t i = 0; i < count; i++)
		if (strcmp(commits[i].group, group) == 0)
			rd_kafka_topic_partition_list_add(offsets, commits[i].topic, commits[i].partition)->offset =
				commits[i].offset;
	/* An explicit commit needs no subscription: it goes straight to the
	 * group coordinator, which is all a fixture needs. */
	rkerr = rd_kafka_commit(rk, offsets, 0);
	if (!rkerr) {
		for (int i = 0; i < offsets->cnt; i++) {
			if (offsets->elems[i].err) {
				rkerr = offsets->elems[i].err;
				err = kt_seterr(errstr, errstr_size, KT_EKAFKA,
						"group %s: commit of %s partition %d failed: %s", group,
						offsets->elems[i].topic, (int)offsets->elems[i].partition,
						rd_kafka_err2str(rkerr));
				break;
			}
		}
	} else {
		err = kt_seterr(errstr, errstr_size, KT_EKAFKA, "group %s: commit failed: %s", group,
				rd_kafka_err2str(rkerr));
	}
	rd_kafka_topic_partition_list_destroy(offsets);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return err;
}
