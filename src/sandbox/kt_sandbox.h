/*
 * kt_sandbox.h - the one interface header of ktape's sandbox module.
 *
 * Three things live here, all about talking to a Kafka cluster from the
 * command line:
 *
 *  1. struct kt_sandbox: an in-process Kafka-protocol cluster built on
 *     librdkafka's PUBLIC mock API (rdkafka_mock.h), with topic creation and
 *     a text control protocol for fault injection (`ktape sandbox`).
 *  2. struct kt_sandbox_kconf: the librdkafka client configuration every
 *     broker-facing CLI command builds from `-X key=value` and
 *     `-F file.properties`, exactly as kcat does.  It is meant for every
 *     such command (capture, restore, replay, gen), so that flags, file
 *     syntax and error messages are the same everywhere and a secret value
 *     is never echoed.
 *  3. struct kt_gen: the deterministic record generator behind `ktape gen`.
 *
 * Ownership: every *_create has a matching *_destroy that accepts NULL.
 * Errors: 0 or a negative code (KT_E* or -errno) with a sentence in errstr.
 */
#ifndef KT_SANDBOX_H
#define KT_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "kt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================
 * Kafka client configuration from -X and -F (used by every CLI command
 * that talks to a broker)
 *
 * Usage in a command:
 *     struct kt_sandbox_kconf *kconf = NULL;
 *     kt_sandbox_kconf_create(&kconf);
 *     case 'X': err = kt_sandbox_kconf_add(kconf, optarg, errstr, sizeof errstr);
 *     case 'F': err = kt_sandbox_kconf_add_file(kconf, optarg, errstr, sizeof errstr);
 *     ...
 *     rd_kafka_conf_t *conf = rd_kafka_conf_new();
 *     err = kt_sandbox_kconf_apply(kconf, conf, errstr, sizeof errstr);
 * The settings are kept in the order given (a later one wins, as with
 * librdkafka), so one kconf can be applied to several client handles.
 * ====================================================================== */

struct kt_sandbox_kconf;

int kt_sandbox_kconf_create(struct kt_sandbox_kconf **out);
void kt_sandbox_kconf_destroy(struct kt_sandbox_kconf *kconf);

/* Records one "key=value" setting as given to -X.  A text without '=' or
 * with an empty key is KT_EUSAGE.  The value is not checked until apply. */
int kt_sandbox_kconf_add(struct kt_sandbox_kconf *kconf, const char *setting,
			 char *errstr, size_t errstr_size);

/* Records every setting of a properties file as given to -F (kcat's
 * syntax): one "key=value" per line, blanks around key and value trimmed,
 * empty lines and lines starting with '#' or '!' ignored.  Any other line
 * without '=' is refused with KT_EUSAGE naming file:line; nothing of the
 * file is recorded then. */
int kt_sandbox_kconf_add_file(struct kt_sandbox_kconf *kconf, const char *path,
			      char *errstr, size_t errstr_size);

/* Sets every recorded setting on conf with rd_kafka_conf_set().  A setting
 * librdkafka refuses gives KT_EUSAGE with its origin ("-X" or file:line),
 * the key and librdkafka's reason; the value is quoted only when
 * kt_config_is_secret() says the key is not a secret. */
int kt_sandbox_kconf_apply(const struct kt_sandbox_kconf *kconf,
			   rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);

/* The value last recorded for key, or NULL.  Owned by kconf. */
const char *kt_sandbox_kconf_get(const struct kt_sandbox_kconf *kconf, const char *key);

/* Writes "key=value, key=(secret), ..." into buf for logs and manifests:
 * secret values are replaced by "(secret)". Returns the length it needed
 * (like snprintf). */
size_t kt_sandbox_kconf_describe(const struct kt_sandbox_kconf *kconf, char *buf,
				 size_t buf_size);

/* ======================================================================
 * The mock cluster
 * ====================================================================== */

#define KT_SANDBOX_MAX_TOPIC_LEN 249 /* Kafka's limit */
#define KT_SANDBOX_MAX_BROKERS 64
#define KT_SANDBOX_MAX_PARTITIONS 100000

/* A topic as `--topic NAME:PARTITIONS[:RF]` gives it.  replication_factor
 * is 0 when not given: the cluster then uses min(brokers, 3). */
struct kt_sandbox_topic_spec {
	char name[KT_SANDBOX_MAX_TOPIC_LEN + 1];
	int32_t partitions;
	int32_t replication_factor;
};

/* Parses "NAME:PARTITIONS[:RF]".  The name must be a legal Kafka topic name
 * (letters, digits, '.', '_', '-'; at most 249; not "." or ".."). */
int kt_sandbox_parse_topic_spec(const char *text, struct kt_sandbox_topic_spec *spec,
				char *errstr, size_t errstr_size);

/* Returns nonzero if name is a legal Kafka topic name. */
int kt_sandbox_topic_name_valid(const char *name);

struct kt_sandbox;

/* Starts a mock cluster of `brokers` brokers (1..KT_SANDBOX_MAX_BROKERS) on
 * random loopback ports.  Its threads run until destroy.  log may be NULL;
 * it must outlive the sandbox. */
int kt_sandbox_create(struct kt_sandbox **out, int brokers, const struct kt_log *log,
		      char *errstr, size_t errstr_size);
/* Stops the cluster and frees everything; its data is gone.  NULL accepted. */
void kt_sandbox_destroy(struct kt_sandbox *sandbox);

/* "127.0.0.1:PORT,..." owned by the sandbox. */
const char *kt_sandbox_bootstrap(const struct kt_sandbox *sandbox);
int kt_sandbox_broker_count(const struct kt_sandbox *sandbox);

/* Creates a topic.  replication_factor 0 means min(brokers, 3).  A topic
 * that already exists is KT_EEXIST. */
int kt_sandbox_create_topic(struct kt_sandbox *sandbox, const char *name,
			    int32_t partitions, int32_t replication_factor,
			    char *errstr, size_t errstr_size);

/* ---- control protocol ----------------------------------------------------
 * One command per text line; the answer is one line, "ok" (possibly
 * followed by a space and a value) or "error: <reason>".  Commands:
 *
 *   ping                                 -> ok
 *   bootstrap                            -> ok 127.0.0.1:PORT,...
 *   help                                 -> ok <command list>
 *   broker down ID | broker up ID        a broker stops/starts answering
 *   broker rtt ID MS                     adds MS of round-trip delay
 *   broker rack ID RACK
 *   leader TOPIC PARTITION ID            moves the partition's leader
 *   follower TOPIC PARTITION ID          sets the preferred follower
 *   errors API ERR [ERR...]              the next requests of API (any broker)
 *                                        fail with ERR, one per request
 *   broker errors ID API ERR[@RTT] ...   same on one broker, with an RTT each
 *   clear errors API                     drops errors still queued for API
 *   topic create NAME:PARTITIONS[:RF]
 *   topic error TOPIC ERR                Metadata reports ERR for the topic
 *                                        (NO_ERROR clears it)
 *   coordinator group|transaction KEY ID
 *   apiversion API MIN MAX               limits the versions brokers offer
 *
 * API is a Kafka API key by name (Produce, Fetch, OffsetCommit, ...; case
 * does not matter) or number.  ERR is a librdkafka error by name
 * (NOT_LEADER_FOR_PARTITION, _TIMED_OUT, with or without RD_KAFKA_RESP_ERR_)
 * or number. */

enum kt_sandbox_op {
	KT_SANDBOX_OP_PING = 0,
	KT_SANDBOX_OP_BOOTSTRAP,
	KT_SANDBOX_OP_HELP,
	KT_SANDBOX_OP_BROKER_DOWN,
	KT_SANDBOX_OP_BROKER_UP,
	KT_SANDBOX_OP_BROKER_RTT,
	KT_SANDBOX_OP_BROKER_RACK,
	KT_SANDBOX_OP_LEADER,
	KT_SANDBOX_OP_FOLLOWER,
	KT_SANDBOX_OP_ERRORS,
	KT_SANDBOX_OP_BROKER_ERRORS,
	KT_SANDBOX_OP_CLEAR_ERRORS,
	KT_SANDBOX_OP_TOPIC_CREATE,
	KT_SANDBOX_OP_TOPIC_ERROR,
	KT_SANDBOX_OP_COORDINATOR,
	KT_SANDBOX_OP_APIVERSION,
};

#define KT_SANDBOX_MAX_LINE 4096
#define KT_SANDBOX_MAX_ERRORS 64

/* A parsed control command: plain data, no ownership. */
struct kt_sandbox_command {
	int op;           /* enum kt_sandbox_op */
	int32_t broker;   /* broker id (1-based, as the mock numbers them) */
	int16_t api_key;
	int32_t partition;
	int rtt_ms;
	int16_t min_version;
	int16_t max_version;
	size_t error_count;
	int errors[KT_SANDBOX_MAX_ERRORS];  /* rd_kafka_resp_err_t values */
	int rtts[KT_SANDBOX_MAX_ERRORS];    /* broker errors only, ms */
	struct kt_sandbox_topic_spec topic; /* name also for leader, topic error */
	char text[256];                     /* rack, or coordinator key */
	char key_type[16];                  /* "group" or "transaction" */
};

/* Parses one line (without or with its trailing newline).  Errors are
 * KT_EUSAGE with the reason in errstr. */
int kt_sandbox_command_parse(const char *line, struct kt_sandbox_command *cmd,
			     char *errstr, size_t errstr_size);

/* Runs a parsed command on the cluster.  reply gets the value of an "ok"
 * answer ("" when there is none). */
int kt_sandbox_command_exec(struct kt_sandbox *sandbox, const struct kt_sandbox_command *cmd,
			    char *reply, size_t reply_size,
			    char *errstr, size_t errstr_size);

/* Parses and runs one line and writes the protocol answer ("ok", "ok VALUE"
 * or "error: REASON", without newline) into answer.  Returns the code. */
int kt_sandbox_control(struct kt_sandbox *sandbox, const char *line,
		       char *answer, size_t answer_size);

/* Kafka API keys and librdkafka error codes by name or number.  Return 0
 * or KT_EUSAGE. */
int kt_sandbox_parse_api_key(const char *text, int16_t *out);
int kt_sandbox_parse_error_code(const char *text, int *out);

/* ======================================================================
 * The record generator (`ktape gen`)
 *
 * Deterministic: the same options and seed give the same records, keys,
 * headers, timestamps and partitions, on any machine, so a test can
 * recompute what a cluster or a backup must hold (`ktape gen --print`).
 * ====================================================================== */

struct kt_record; /* kt_store.h */

#define KT_GEN_MAX_VALUE_SIZE (16u << 20)
#define KT_GEN_MAX_GROUP_LEN 255
/* 2026-01-01T00:00:00Z: a fixed default start keeps output reproducible. */
#define KT_GEN_DEFAULT_TS_START 1767225600000LL

enum kt_gen_size_dist {
	KT_GEN_SIZE_UNIFORM = 0, /* every size in [min, max] equally likely */
	KT_GEN_SIZE_LOG = 1,     /* each power-of-two band equally likely, then
				  * uniform inside it: many small values, a
				  * long tail of large ones, as real topics have */
};

struct kt_gen_opts {
	uint64_t seed;
	uint64_t count;            /* records; UINT64_MAX when only bytes limits */
	uint64_t bytes;            /* stop once key+value bytes reach this; 0: none */
	int32_t partitions;        /* partition count of the topic */
	int32_t partition;         /* >= 0: every record there; -1: see below */
	int round_robin;           /* with partition -1: record i to i % partitions */
	/* Otherwise a keyed record goes where librdkafka's default partitioner
	 * would put it (CRC32 of the key, kt_gen_partition_for_key) and a
	 * null-keyed one to a partition drawn from the seed; the generator
	 * always names the partition, so --print knows where records land. */
	uint32_t min_size;         /* value bytes, in [min, max] */
	uint32_t max_size;
	int size_dist;             /* enum kt_gen_size_dist */
	uint64_t keys;             /* key cardinality; 0: every key null */
	const char *key_prefix;    /* keys are PREFIX<n>, n < keys; copied */
	double null_key_share;     /* shares are probabilities in [0, 1] */
	double tombstone_share;    /* null values */
	uint32_t max_headers;      /* 0..max headers per record, uniform */
	double null_header_share;  /* header values that are null */
	double dup_header_share;   /* headers repeating the previous name */
	double binary_share;       /* values given a NUL, a newline and 0xff */
	int compressibility;       /* 100: JSON-like text .. 0: random bytes */
	int64_t ts_start;          /* first timestamp, epoch ms */
	int64_t ts_span_ms;        /* timestamps spread evenly over this span */
	double disorder_share;     /* records moved back in time (out of order) */
};

/* Defaults: seed 1, 1000 records, 1 partition, key hashing, values of
 * 100-300 bytes of JSON-like text, 1000 keys "key-<n>", no nulls, no
 * headers, timestamps over one hour from KT_GEN_DEFAULT_TS_START. */
void kt_gen_opts_init(struct kt_gen_opts *opts);

/* Sets one option from its `ktape gen` flag name without the dashes
 * ("count", "bytes", "size" (N or MIN-MAX), "keys", "key-prefix",
 * "null-keys", "tombstones", "headers", "null-headers", "dup-headers",
 * "size-dist" (uniform or log), "binary", "compressibility", "ts-start",
 * "ts-span", "disorder", "seed",
 * "partitions", "partition").  Shares accept 0.25 or 25%.  "bytes" leaves
 * count alone: set count to UINT64_MAX for a byte budget alone.  Returns 0 or
 * KT_EUSAGE naming the flag.  key-prefix is not copied: it must outlive
 * kt_gen_create(). */
int kt_gen_opts_set(struct kt_gen_opts *opts, const char *name, const char *value,
		    char *errstr, size_t errstr_size);

/* Parses a share: "0.25" or "25%", in [0, 1]. */
int kt_gen_parse_share(const char *text, double *out);

/* The partition librdkafka's default partitioner picks for a key. */
int32_t kt_gen_partition_for_key(const void *key, size_t key_len, int32_t partitions);

struct kt_gen;

int kt_gen_create(struct kt_gen **out, const struct kt_gen_opts *opts,
		  char *errstr, size_t errstr_size);
void kt_gen_destroy(struct kt_gen *gen);

/* Makes the next record.  Returns 1 and fills *rec (offset -1) and
 * *partition, or 0 when the count or byte budget is reached.  rec's
 * pointers stay valid until the next call. */
int kt_gen_next(struct kt_gen *gen, struct kt_record *rec, int32_t *partition);

uint64_t kt_gen_records_made(const struct kt_gen *gen);

struct kt_gen_partition_stats {
	int32_t partition;
	uint64_t records;     /* acknowledged */
	int64_t first_offset; /* -1 when none */
	int64_t last_offset;
};

struct kt_gen_result {
	uint64_t records;    /* produced (queued) */
	uint64_t delivered;  /* acknowledged by the broker */
	uint64_t bytes;      /* key + value bytes (what --bytes budgets) */
	uint64_t header_bytes; /* header names + values: bytes + this is the
				* record bytes every other stage counts */
	uint64_t tombstones;
	uint64_t null_keys;
	uint64_t headers;
	size_t partition_count;
	struct kt_gen_partition_stats *partitions; /* indexed by partition */
};

/* Frees what kt_gen_produce put in result.  NULL accepted. */
void kt_gen_result_clear(struct kt_gen_result *result);

/* The partition count of topic, via a Metadata request for all topics
 * (never auto-creating it).  Takes ownership of conf.  KT_ENOTFOUND when
 * the topic does not exist. */
int kt_gen_topic_partitions(rd_kafka_conf_t *conf, const char *topic, int32_t *partitions,
			    char *errstr, size_t errstr_size);

/* Produces every record of gen to topic, each to its generated partition,
 * and waits for all acknowledgements.  Takes ownership of conf (set
 * bootstrap.servers, batching and compression on it first).  A set *stop
 * (from a signal handler) ends it with KT_EINTERRUPTED.  Any record not
 * acknowledged makes it KT_EDELIVERY.  Call kt_gen_result_clear after. */
int kt_gen_produce(struct kt_gen *gen, rd_kafka_conf_t *conf, const char *topic,
		   struct kt_gen_result *result, volatile int *stop,
		   char *errstr, size_t errstr_size);

/* A consumer-group offset to commit: `--commit GROUP:TOPIC:PARTITION:OFFSET`. */
struct kt_gen_commit {
	char group[KT_GEN_MAX_GROUP_LEN + 1];
	char topic[KT_SANDBOX_MAX_TOPIC_LEN + 1];
	int32_t partition;
	int64_t offset;
};

/* Parses GROUP:TOPIC:PARTITION:OFFSET (the group may contain ':'). */
int kt_gen_parse_commit(const char *text, struct kt_gen_commit *commit,
			char *errstr, size_t errstr_size);

/* Commits, as consumer group `group`, the offsets of the entries of commits
 * that name that group, with an explicit OffsetCommit (no subscription, no
 * rebalance).  Takes ownership of conf. */
int kt_gen_commit_offsets(rd_kafka_conf_t *conf, const char *group,
			  const struct kt_gen_commit *commits, size_t count,
			  char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif

#endif /* KT_SANDBOX_H */
