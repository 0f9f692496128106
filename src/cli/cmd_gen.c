/*
 * ktape gen: produces deterministic test records into a cluster (or prints
 * them as JSON lines without one), and commits consumer-group offsets, so
 * that tests and benchmarks can build clusters shaped like production and
 * recompute what they must find afterwards.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "jsonl.h"
#include "kt_sandbox.h"
#include "kt_store.h"

#define CMD "gen"
#define MAX_COMMITS 1024

static volatile int gen_stop;

static void on_signal(int sig)
{
	(void)sig;
	gen_stop = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape gen -b BROKERS -t TOPIC [options]\n"
		"       ktape gen --print -t TOPIC --partitions N [options]\n"
		"       ktape gen -b BROKERS --commit GROUP:TOPIC:PARTITION:OFFSET... --count 0\n"
		"\n"
		"Produces deterministic records (the same options and --seed give the same\n"
		"records) and prints a JSON summary: records, bytes, per-partition offsets.\n"
		"\n"
		"Target:\n"
		"  -b, --brokers LIST         bootstrap servers\n"
		"  -t, --topic NAME           topic (must exist; its partition count is read)\n"
		"  -X key=value               librdkafka property (repeatable)\n"
		"  -F FILE                    librdkafka properties file (kcat syntax)\n"
		"  -z, --compression CODEC    none, gzip, snappy, lz4, zstd (default zstd)\n"
		"      --print                write the records as JSON lines\n"
		"                             (docs/json-records.md) instead of producing\n"
		"      --partitions N         the topic's partition count, for --print\n"
		"      --commit GROUP:TOPIC:PARTITION:OFFSET\n"
		"                             commit a group offset after producing (repeatable)\n"
		"Amount:\n"
		"  -n, --count N              records (default 1000; 0 with --commit alone)\n"
		"      --bytes SIZE           stop after SIZE key+value bytes (4M, 1G...);\n"
		"                             with --count, whichever comes first\n"
		"      --seed N               (default 1)\n"
		"Shape:\n"
		"  -p, --partition N          every record to partition N\n"
		"      --round-robin          record i to partition i %% partitions\n"
		"                             (default: CRC32 of the key as librdkafka's\n"
		"                             default partitioner; null keys seeded-random)\n"
		"      --size N|MIN-MAX       value bytes (default 100-300)\n"
		"      --size-dist D          uniform (default), or log: each power-of-two\n"
		"                             band equally likely (many small, few large)\n"
		"      --keys N               distinct keys (default 1000; 0: all null)\n"
		"      --key-prefix STR       keys are STR<n> (default key-)\n"
		"      --null-keys SHARE      share of null keys (0.1 or 10%%)\n"
		"      --tombstones SHARE     share of null values\n"
		"      --headers N            0..N headers per record (default 0)\n"
		"      --null-headers SHARE   share of null header values\n"
		"      --dup-headers SHARE    share of headers repeating the previous name\n"
		"      --binary SHARE         share of values with NUL, newline and 0xff bytes\n"
		"      --compressibility P    100 JSON-like text (default) .. 0 random bytes\n"
		"      --ts-start TIME        first timestamp (default 2026-01-01T00:00:00Z)\n"
		"      --ts-span DURATION     spread over this span (default 1h)\n"
		"      --disorder SHARE       share of records moved back in time\n");
}

/* librdkafka's own log goes through ktape's, so that it reads like every
 * other command's output and -q silences it: by default librdkafka would
 * print raw "%3|...|FAIL|" lines on stderr.  Its errors are retried
 * connection attempts, warnings at most: what ends the command is reported
 * once, as ktape's own error. */
static void gen_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	kt_log(&kt_cli_log, level <= 4 ? KT_LOG_WARN : KT_LOG_DEBUG, "kafka: %s: %s", fac, buf);
}

/* Builds a client configuration: bootstrap, then ktape's defaults for bulk
 * producing, then the user's -X/-F (which win). */
static rd_kafka_conf_t *make_conf(const char *brokers, const struct kt_sandbox_kconf *kconf,
				  const char *compression, int producer)
{
	static const char *const producer_defaults[][2] = {
		/* Big batches: the mock keeps 5 MiB or 100,000 batches per
		 * partition and fetches one batch per request. */
		{ "linger.ms", "50" },
		{ "batch.size", "1000000" },
		{ "batch.num.messages", "100000" },
		{ "queue.buffering.max.kbytes", "262144" },
		{ "queue.buffering.max.messages", "1000000" },
		{ "acks", "all" },
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[1024];

	rd_kafka_conf_set_log_cb(conf, gen_rdkafka_log);
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		goto bad;
	if (producer) {
		for (size_t i = 0; i < sizeof(producer_defaults) / sizeof(producer_defaults[0]); i++)
			if (rd_kafka_conf_set(conf, producer_defaults[i][0], producer_defaults[i][1], errstr,
					      sizeof(errstr)) != RD_KAFKA_CONF_OK)
				goto bad;
		if (rd_kafka_conf_set(conf, "compression.codec", compression, errstr, sizeof(errstr)) !=
		    RD_KAFKA_CONF_OK) {
			kt_cli_error(CMD, "--compression %s: %s", compression, errstr);
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	if (kt_sandbox_kconf_apply(kconf, conf, errstr, sizeof(errstr)))
		goto bad;
	return conf;
bad:
	kt_cli_error(CMD, "%s", errstr);
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* Writes the records as JSON lines, numbering offsets per partition from 0
 * as an empty topic would, so the output equals a dump of the topic after
 * producing the same records into it. */
static int print_records(struct kt_gen *gen, const char *topic, int32_t partitions)
{
	int64_t *next_offset = calloc((size_t)partitions, sizeof(*next_offset));
	struct kt_record rec;
	int32_t partition;
	int err = 0;

	if (!next_offset) {
		kt_cli_error(CMD, "out of memory");
		return -ENOMEM;
	}
	while (kt_gen_next(gen, &rec, &partition) == 1) {
		rec.offset = next_offset[partition]++;
		err = kt_cli_jsonl_write(stdout, topic, partition, &rec);
		if (err) {
			kt_cli_error(CMD, "writing to stdout failed: %s", kt_strerror(err));
			goto out;
		}
	}
	if (fflush(stdout) != 0) {
		err = -errno;
		kt_cli_error(CMD, "writing to stdout failed: %s", strerror(errno));
	}
out:
	free(next_offset);
	return err;
}

static void print_summary(const char *topic, const struct kt_gen_opts *opts,
			  const struct kt_gen_result *result,
			  const struct kt_gen_commit *commits, size_t ncommits)
{
	json_t *root = json_object(), *parts = json_array(), *cs = json_array();
	char *text;

	json_object_set_new(root, "topic", json_string(topic));
	json_object_set_new(root, "seed", json_integer((json_int_t)opts->seed));
	json_object_set_new(root, "records", json_integer((json_int_t)result->records));
	json_object_set_new(root, "delivered", json_integer((json_int_t)result->delivered));
	json_object_set_new(root, "bytes", json_integer((json_int_t)result->bytes));
	json_object_set_new(root, "header_bytes", json_integer((json_int_t)result->header_bytes));
	json_object_set_new(root, "tombstones", json_integer((json_int_t)result->tombstones));
	json_object_set_new(root, "null_keys", json_integer((json_int_t)result->null_keys));
	json_object_set_new(root, "headers", json_integer((json_int_t)result->headers));
	for (size_t i = 0; i < result->partition_count; i++) {
		const struct kt_gen_partition_stats *p = &result->partitions[i];
		json_t *o = json_object();
		json_object_set_new(o, "partition", json_integer(p->partition));
		json_object_set_new(o, "records", json_integer((json_int_t)p->records));
		json_object_set_new(o, "first_offset", json_integer(p->first_offset));
		json_object_set_new(o, "last_offset", json_integer(p->last_offset));
		json_array_append_new(parts, o);
	}
	json_object_set_new(root, "partitions", parts);
	for (size_t i = 0; i < ncommits; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "group", json_string(commits[i].group));
		json_object_set_new(o, "topic", json_string(commits[i].topic));
		json_object_set_new(o, "partition", json_integer(commits[i].partition));
		json_object_set_new(o, "offset", json_integer(commits[i].offset));
		json_array_append_new(cs, o);
	}
	json_object_set_new(root, "commits", cs);
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text) {
		printf("%s\n", text);
		fflush(stdout);
	}
	free(text);
	json_decref(root);
}

int kt_cli_cmd_gen(int argc, char **argv)
{
	enum {
		OPT_PRINT = 256, OPT_PARTITIONS, OPT_COMMIT, OPT_ROUND_ROBIN, OPT_BYTES, OPT_SEED,
		OPT_SIZE, OPT_KEYS, OPT_KEY_PREFIX, OPT_NULL_KEYS, OPT_TOMBSTONES, OPT_HEADERS,
		OPT_NULL_HEADERS, OPT_DUP_HEADERS, OPT_BINARY, OPT_COMPRESSIBILITY, OPT_TS_START,
		OPT_TS_SPAN, OPT_DISORDER, OPT_SIZE_DIST,
	};
	static const struct option opts[] = {
		{ "brokers", required_argument, NULL, 'b' },
		{ "topic", required_argument, NULL, 't' },
		{ "compression", required_argument, NULL, 'z' },
		{ "count", required_argument, NULL, 'n' },
		{ "partition", required_argument, NULL, 'p' },
		{ "print", no_argument, NULL, OPT_PRINT },
		{ "partitions", required_argument, NULL, OPT_PARTITIONS },
		{ "commit", required_argument, NULL, OPT_COMMIT },
		{ "round-robin", no_argument, NULL, OPT_ROUND_ROBIN },
		{ "bytes", required_argument, NULL, OPT_BYTES },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "size-dist", required_argument, NULL, OPT_SIZE_DIST },
		{ "keys", required_argument, NULL, OPT_KEYS },
		{ "key-prefix", required_argument, NULL, OPT_KEY_PREFIX },
		{ "null-keys", required_argument, NULL, OPT_NULL_KEYS },
		{ "tombstones", required_argument, NULL, OPT_TOMBSTONES },
		{ "headers", required_argument, NULL, OPT_HEADERS },
		{ "null-headers", required_argument, NULL, OPT_NULL_HEADERS },
		{ "dup-headers", required_argument, NULL, OPT_DUP_HEADERS },
		{ "binary", required_argument, NULL, OPT_BINARY },
		{ "compressibility", required_argument, NULL, OPT_COMPRESSIBILITY },
		{ "ts-start", required_argument, NULL, OPT_TS_START },
		{ "ts-span", required_argument, NULL, OPT_TS_SPAN },
		{ "disorder", required_argument, NULL, OPT_DISORDER },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kt_gen_opts gopts;
	struct kt_gen_result result = { 0 };
	struct kt_sandbox_kconf *kconf = NULL;
	struct kt_gen_commit *commits = NULL;
	struct kt_gen *gen = NULL;
	const char *brokers = NULL, *topic = NULL, *compression = "zstd";
	size_t ncommits = 0;
	char errstr[1024];
	int c, err = 0, print = 0, partitions_given = 0, count_given = 0, longidx = 0;
	struct sigaction sa = { .sa_handler = on_signal }, old_int, old_term;

	kt_gen_opts_init(&gopts);
	if (kt_sandbox_kconf_create(&kconf)) {
		kt_cli_error(CMD, "out of memory");
		return KT_EXIT_FAILURE;
	}
	commits = calloc(MAX_COMMITS, sizeof(*commits));
	if (!commits) {
		kt_cli_error(CMD, "out of memory");
		err = -ENOMEM;
		goto out;
	}
	while ((c = getopt_long(argc, argv, "b:t:z:n:p:X:F:h", opts, &longidx)) != -1) {
		const char *gen_name = NULL;

		switch (c) {
		case 'b':
			brokers = optarg;
			break;
		case 't':
			topic = optarg;
			break;
		case 'z':
			compression = optarg;
			break;
		case 'X':
			err = kt_sandbox_kconf_add(kconf, optarg, errstr, sizeof(errstr));
			break;
		case 'F':
			err = kt_sandbox_kconf_add_file(kconf, optarg, errstr, sizeof(errstr));
			if (err && err != KT_EUSAGE)
				err = KT_EUSAGE;
			break;
		case 'n':
			gen_name = "count";
			count_given = 1;
			break;
		case 'p':
			gen_name = "partition";
			break;
		case OPT_PARTITIONS:
			gen_name = "partitions";
			partitions_given = 1;
			break;
		case OPT_PRINT:
			print = 1;
			break;
		case OPT_ROUND_ROBIN:
			gopts.round_robin = 1;
			break;
		case OPT_COMMIT:
			if (ncommits == MAX_COMMITS) {
				snprintf(errstr, sizeof(errstr), "more than %d --commit", MAX_COMMITS);
				err = KT_EUSAGE;
				break;
			}
			err = kt_gen_parse_commit(optarg, &commits[ncommits], errstr, sizeof(errstr));
			if (!err)
				ncommits++;
			break;
		case 'h':
			usage(stdout);
			goto out;
		case '?':
			err = KT_EUSAGE;
			errstr[0] = '\0';
			break;
		default:
			/* Every other long option is a generator option of the
			 * same name. */
			gen_name = opts[longidx].name;
			break;
		}
		if (gen_name)
			err = kt_gen_opts_set(&gopts, gen_name, optarg, errstr, sizeof(errstr));
		if (err) {
			if (errstr[0])
				kt_cli_error(CMD, "%s", errstr);
			kt_cli_usage_error(CMD);
			err = KT_EUSAGE;
			goto out;
		}
	}
	if (optind < argc) {
		kt_cli_error(CMD, "unexpected argument '%s'", argv[optind]);
		kt_cli_usage_error(CMD);
		err = KT_EUSAGE;
		goto out;
	}
	/* --bytes alone is a byte budget; with --count, whichever ends first. */
	if (gopts.bytes && !count_given)
		gopts.count = UINT64_MAX;
	if (gopts.count == 0 && ncommits == 0) {
		kt_cli_error(CMD, "--count 0 makes sense only with --commit");
		kt_cli_usage_error(CMD);
		err = KT_EUSAGE;
		goto out;
	}
	if (print) {
		if (!topic || brokers || ncommits) {
			kt_cli_error(CMD, "--print needs -t TOPIC and takes neither -b nor --commit");
			kt_cli_usage_error(CMD);
			err = KT_EUSAGE;
			goto out;
		}
		if (!partitions_given && gopts.partition < 0) {
			kt_cli_error(CMD, "--print needs --partitions N (or -p N): without a broker the "
				     "partition count is unknown");
			kt_cli_usage_error(CMD);
			err = KT_EUSAGE;
			goto out;
		}
		if (!partitions_given)
			gopts.partitions = gopts.partition + 1;
		err = kt_gen_create(&gen, &gopts, errstr, sizeof(errstr));
		if (err) {
			kt_cli_error(CMD, "%s", errstr);
			goto out;
		}
		err = print_records(gen, topic, gopts.partitions);
		goto out;
	}
	if (!brokers || (!topic && gopts.count > 0)) {
		kt_cli_error(CMD, "-b BROKERS and -t TOPIC are required (or --print)");
		kt_cli_usage_error(CMD);
		err = KT_EUSAGE;
		goto out;
	}
	/* Check -z, -X and -F now, as a usage error, rather than after a
	 * metadata round trip that an unreachable broker makes last seconds. */
	{
		rd_kafka_conf_t *probe = make_conf(brokers, kconf, compression, 1);

		if (!probe) {
			err = KT_EUSAGE;
			goto out;
		}
		rd_kafka_conf_destroy(probe);
	}

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	if (gopts.count > 0) {
		int32_t partitions = 0;
		rd_kafka_conf_t *conf = make_conf(brokers, kconf, compression, 0);

		if (!conf) {
			err = KT_EUSAGE;
			goto restore;
		}
		err = kt_gen_topic_partitions(conf, topic, &partitions, errstr, sizeof(errstr));
		if (err) {
			kt_cli_error(CMD, "%s", errstr);
			goto restore;
		}
		if (partitions_given && partitions != gopts.partitions) {
			kt_cli_error(CMD, "--partitions %d, but topic %s has %d", (int)gopts.partitions, topic,
				     (int)partitions);
			err = KT_EUSAGE;
			goto restore;
		}
		gopts.partitions = partitions;
		err = kt_gen_create(&gen, &gopts, errstr, sizeof(errstr));
		if (err) {
			kt_cli_error(CMD, "%s", errstr);
			goto restore;
		}
		conf = make_conf(brokers, kconf, compression, 1);
		if (!conf) {
			err = KT_EUSAGE;
			goto restore;
		}
		err = kt_gen_produce(gen, conf, topic, &result, &gen_stop, errstr, sizeof(errstr));
		if (err) {
			kt_cli_error(CMD, "%s", errstr);
			goto restore;
		}
	}
	for (size_t i = 0; i < ncommits; i++) {
		size_t j;
		rd_kafka_conf_t *conf;

		/* One consumer per group, for the first entry naming it. */
		for (j = 0; j < i && strcmp(commits[j].group, commits[i].group) != 0; j++)
			;
		if (j < i)
			continue;
		conf = make_conf(brokers, kconf, compression, 0);
		if (!conf) {
			err = KT_EUSAGE;
			goto restore;
		}
		err = kt_gen_commit_offsets(conf, commits[i].group, commits, ncommits, errstr, sizeof(errstr));
		if (err) {
			kt_cli_error(CMD, "%s", errstr);
			goto restore;
		}
	}
	print_summary(topic ? topic : "", &gopts, &result, commits, ncommits);
restore:
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
out:
	kt_gen_result_clear(&result);
	kt_gen_destroy(gen);
	kt_sandbox_kconf_destroy(kconf);
	free(commits);
	return kt_cli_exit_for(err);
}
