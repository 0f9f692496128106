/*
 * The mock cluster: librdkafka's public mock API (rdkafka_mock.h) wrapped
 * with topic specs and validation, so that bad input is an error message
 * instead of an assertion inside librdkafka.
 */
#include "kt_sandbox.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <librdkafka/rdkafka_mock.h>

struct kt_sandbox {
	rd_kafka_t *rk;             /* owns the mock cluster's bookkeeping */
	rd_kafka_mock_cluster_t *mc;
	rd_kafka_t *probe;          /* client for Metadata checks; lazily made */
	int brokers;
	char *bootstrap;
	const struct kt_log *log;
};

int kt_sandbox_topic_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > KT_SANDBOX_MAX_TOPIC_LEN)
		return 0;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return 0;
	}
	return 1;
}

/* A whole decimal int32 in [min, max], through the common parser so that
 * every command judges numbers alike. */
static int parse_int32(const char *text, int32_t min, int32_t max, int32_t *out)
{
	int64_t v;
	int err = kt_parse_i64(text, min, max, &v);

	if (!err)
		*out = (int32_t)v;
	return err;
}

int kt_sandbox_parse_topic_spec(const char *text, struct kt_sandbox_topic_spec *spec,
				char *errstr, size_t errstr_size)
{
	char buf[KT_SANDBOX_MAX_TOPIC_LEN + 64];
	char *colon, *colon2;

	memset(spec, 0, sizeof(*spec));
	if (snprintf(buf, sizeof(buf), "%s", text) >= (int)sizeof(buf))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "topic spec '%.40s...' is too long (a topic name has at most %d characters)",
				 text, KT_SANDBOX_MAX_TOPIC_LEN);
	colon = strchr(buf, ':');
	if (!colon)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "topic spec '%s' has no partition count: expected NAME:PARTITIONS[:RF]", text);
	*colon = '\0';
	colon2 = strchr(colon + 1, ':');
	if (colon2)
		*colon2 = '\0';
	if (!kt_sandbox_topic_name_valid(buf))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "topic spec '%s': '%s' is not a legal topic name (1-249 of a-z A-Z 0-9 . _ -)",
				 text, buf);
	if (parse_int32(colon + 1, 1, KT_SANDBOX_MAX_PARTITIONS, &spec->partitions))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "topic spec '%s': partition count '%s' is not a number from 1 to %d",
				 text, colon + 1, KT_SANDBOX_MAX_PARTITIONS);
	if (colon2 && parse_int32(colon2 + 1, 1, KT_SANDBOX_MAX_BROKERS, &spec->replication_factor))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "topic spec '%s': replication factor '%s' is not a number from 1 to %d",
				 text, colon2 + 1, KT_SANDBOX_MAX_BROKERS);
	memcpy(spec->name, buf, strlen(buf) + 1);
	return 0;
}

/* Routes librdkafka's log lines to the sandbox's log sink. */
static void sandbox_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	const struct kt_log *log = rd_kafka_opaque(rk);
	/* Syslog levels; librdkafka's notices (such as the warning that the
	 * bookkeeping handle has no bootstrap servers) are debug noise here. */
	int kt_level = level <= 3 ? KT_LOG_ERROR : level == 4 ? KT_LOG_WARN : KT_LOG_DEBUG;

	kt_log(log, kt_level, "librdkafka %s: %s", fac, buf);
}

/* Whether port is one of the "host:port,host:port" bootstrap list's. */
static int bootstrap_has_port(const char *bootstrap, unsigned port)
{
	for (const char *p = bootstrap; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		const char *colon = strchr(p, ':'), *comma = strchr(p, ',');

		if (colon && (!comma || colon < comma) && strtoul(colon + 1, NULL, 10) == port)
			return 1;
	}
	return 0;
}

/* Real Kafka brokers set TCP_NODELAY on every connection; librdkafka
 * 2.0.2's mock brokers do not.  Without it a small response written while
 * the previous one is still unacknowledged waits for the client's delayed
 * ACK (40 ms on Linux): the last ProduceResponse of a restore arrived
 * 43 ms late, more than half of a 1% window restore's time.  The mock
 * offers no hook, so the option is set on its sockets, found among this
 * process's descriptors by their local ports: the listeners, whose
 * accepted connections inherit it on Linux, and connections already
 * accepted.  Called at start and after a broker comes back up (the mock
 * then listens on a new socket).  Returns how many sockets were set. */
static int sandbox_set_nodelay(const char *bootstrap)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	int count = 0;

	if (!dir)
		return 0;
	while ((de = readdir(dir)) != NULL) {
		struct sockaddr_in sin;
		socklen_t len = sizeof(sin);
		int fd, one = 1;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		fd = atoi(de->d_name);
		if (fd == dirfd(dir) || getsockname(fd, (struct sockaddr *)&sin, &len) < 0 ||
		    sin.sin_family != AF_INET || !bootstrap_has_port(bootstrap, ntohs(sin.sin_port)))
			continue;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0)
			count++;
	}
	closedir(dir);
	return count;
}

int kt_sandbox_create(struct kt_sandbox **out, int brokers, const struct kt_log *log,
		      char *errstr, size_t errstr_size)
{
	struct kt_sandbox *sandbox = NULL;
	rd_kafka_conf_t *conf = NULL;
	char rkerr[512];
	const char *bs;
	int err = 0;

	*out = NULL;
	if (brokers < 1 || brokers > KT_SANDBOX_MAX_BROKERS)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "broker count %d is outside 1..%d", brokers, KT_SANDBOX_MAX_BROKERS);
	sandbox = calloc(1, sizeof(*sandbox));
	if (!sandbox)
		return kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory creating the sandbox");
	sandbox->brokers = brokers;
	sandbox->log = log;

	/* The handle only carries the mock cluster; it never connects. */
	conf = rd_kafka_conf_new();
	rd_kafka_conf_set_opaque(conf, (void *)log);
	rd_kafka_conf_set_log_cb(conf, sandbox_log_cb);
	sandbox->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rkerr, sizeof(rkerr));
	if (!sandbox->rk) {
		rd_kafka_conf_destroy(conf);
		err = kt_seterr(errstr, errstr_size, KT_EKAFKA,
				"cannot create the librdkafka handle for the mock cluster: %s", rkerr);
		goto fail;
	}
	sandbox->mc = rd_kafka_mock_cluster_new(sandbox->rk, brokers);
	if (!sandbox->mc) {
		err = kt_seterr(errstr, errstr_size, KT_EKAFKA,
				"librdkafka could not start a mock cluster of %d brokers "
				"(no free loopback ports or threads?)", brokers);
		goto fail;
	}
	bs = rd_kafka_mock_cluster_bootstraps(sandbox->mc);
	sandbox->bootstrap = strdup(bs ? bs : "");
	if (!sandbox->bootstrap) {
		err = kt_seterr(errstr, errstr_size, -ENOMEM, "out of memory creating the sandbox");
		goto fail;
	}
	kt_log(log, KT_LOG_DEBUG, "mock cluster of %d brokers at %s (TCP_NODELAY on %d listeners)", brokers,
	       sandbox->bootstrap, sandbox_set_nodelay(sandbox->bootstrap));
	*out = sandbox;
	return 0;
fail:
	kt_sandbox_destroy(sandbox);
	return err;
}

void kt_sandbox_destroy(struct kt_sandbox *sandbox)
{
	if (!sandbox)
		return;
	/* The probe client must go before the brokers it talks to. */
	if (sandbox->probe)
		rd_kafka_destroy(sandbox->probe);
	if (sandbox->mc)
		rd_kafka_mock_cluster_destroy(sandbox->mc);
	if (sandbox->rk)
		rd_kafka_destroy(sandbox->rk);
	free(sandbox->bootstrap);
	free(sandbox);
}

const char *kt_sandbox_bootstrap(const struct kt_sandbox *sandbox)
{
	return sandbox->bootstrap;
}

int kt_sandbox_broker_count(const struct kt_sandbox *sandbox)
{
	return sandbox->brokers;
}

int kt_sandbox_create_topic(struct kt_sandbox *sandbox, const char *name,
			    int32_t partitions, int32_t replication_factor,
			    char *errstr, size_t errstr_size)
{
	rd_kafka_resp_err_t rkerr;

	if (!kt_sandbox_topic_name_valid(name))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "'%s' is not a legal topic name (1-249 of a-z A-Z 0-9 . _ -)", name);
	if (partitions < 1 || partitions > KT_SANDBOX_MAX_PARTITIONS)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "topic %s: partition count %d is outside 1..%d", name, (int)partitions,
				 KT_SANDBOX_MAX_PARTITIONS);
	if (replication_factor == 0)
		replication_factor = sandbox->brokers < 3 ? sandbox->brokers : 3;
	if (replication_factor < 1 || replication_factor > sandbox->brokers)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "topic %s: replication factor %d needs 1..%d (the cluster has %d brokers)",
				 name, (int)replication_factor, sandbox->brokers, sandbox->brokers);
	rkerr = rd_kafka_mock_topic_create(sandbox->mc, name, partitions, replication_factor);
	if (rkerr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
		return kt_seterr(errstr, errstr_size, KT_EEXIST, "topic %s already exists", name);
	if (rkerr)
		return kt_seterr(errstr, errstr_size, KT_EKAFKA, "topic %s could not be created: %s",
				 name, rd_kafka_err2str(rkerr));
	kt_log(sandbox->log, KT_LOG_DEBUG, "created topic %s with %d partitions, replication factor %d",
	       name, (int)partitions, (int)replication_factor);
	return 0;
}

/* ---- control protocol ------------------------------------------------ */

/* Kafka's API keys, indexed by key, for naming them in commands. */
static const char *const api_names[] = {
	"Produce", "Fetch", "ListOffsets", "Metadata", "LeaderAndIsr", "StopReplica",
	"UpdateMetadata", "ControlledShutdown", "OffsetCommit", "OffsetFetch",
	"FindCoordinator", "JoinGroup", "Heartbeat", "LeaveGroup", "SyncGroup",
	"DescribeGroups", "ListGroups", "SaslHandshake", "ApiVersions", "CreateTopics",
	"DeleteTopics", "DeleteRecords", "InitProducerId", "OffsetForLeaderEpoch",
	"AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn", "WriteTxnMarkers",
	"TxnOffsetCommit", "DescribeAcls", "CreateAcls", "DeleteAcls", "DescribeConfigs",
	"AlterConfigs", "AlterReplicaLogDirs", "DescribeLogDirs", "SaslAuthenticate",
	"CreatePartitions", "CreateDelegationToken", "RenewDelegationToken",
	"ExpireDelegationToken", "DescribeDelegationToken", "DeleteGroups", "ElectLeaders",
	"IncrementalAlterConfigs", "AlterPartitionReassignments",
	"ListPartitionReassignments", "OffsetDelete",
};

int kt_sandbox_parse_api_key(const char *text, int16_t *out)
{
	int32_t v;

	if (parse_int32(text, 0, 32767, &v) == 0) {
		*out = (int16_t)v;
		return 0;
	}
	for (size_t i = 0; i < sizeof(api_names) / sizeof(api_names[0]); i++) {
		if (strcasecmp(text, api_names[i]) == 0) {
			*out = (int16_t)i;
			return 0;
		}
	}
	return KT_EUSAGE;
}

int kt_sandbox_parse_error_code(const char *text, int *out)
{
	static const char prefix[] = "RD_KAFKA_RESP_ERR";
	const struct rd_kafka_err_desc *descs;
	size_t count;
	int32_t v;

	if (parse_int32(text, -200, 32767, &v) == 0) {
		*out = v;
		return 0;
	}
	/* Accept RD_KAFKA_RESP_ERR_NOT_LEADER..., and RD_KAFKA_RESP_ERR__TIMED_OUT
	 * whose name in the table is "_TIMED_OUT". */
	if (strncasecmp(text, prefix, sizeof(prefix) - 1) == 0 && text[sizeof(prefix) - 1] == '_')
		text += sizeof(prefix);
	rd_kafka_get_err_descs(&descs, &count);
	for (size_t i = 0; i < count; i++) {
		if (descs[i].name && strcasecmp(descs[i].name, text) == 0) {
			*out = descs[i].code;
			return 0;
		}
	}
	return KT_EUSAGE;
}

#define MAX_TOKENS (KT_SANDBOX_MAX_ERRORS + 8)

/* Splits line in place at blanks; returns the token count or -1 if there
 * are too many. */
static int tokenize(char *line, char **tok)
{
	int n = 0;
	char *p = line;

	for (;;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			return n;
		if (n == MAX_TOKENS)
			return -1;
		tok[n++] = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
}

static int parse_broker(const char *text, int32_t *out, char *errstr, size_t errstr_size)
{
	if (parse_int32(text, 1, KT_SANDBOX_MAX_BROKERS, out))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "broker id '%s' is not a number from 1 to %d", text, KT_SANDBOX_MAX_BROKERS);
	return 0;
}

static int parse_api(const char *text, int16_t *out, char *errstr, size_t errstr_size)
{
	if (kt_sandbox_parse_api_key(text, out))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "'%s' is not a Kafka API name (Produce, Fetch, Metadata, ...) or key number", text);
	return 0;
}

static int parse_err(const char *text, int *out, char *errstr, size_t errstr_size)
{
	if (kt_sandbox_parse_error_code(text, out))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "'%s' is not a Kafka error name (NOT_LEADER_FOR_PARTITION, _TIMED_OUT, ...) or code",
				 text);
	return 0;
}

static int parse_topic_name(const char *text, struct kt_sandbox_topic_spec *spec,
			    char *errstr, size_t errstr_size)
{
	if (!kt_sandbox_topic_name_valid(text))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "'%s' is not a legal topic name", text);
	snprintf(spec->name, sizeof(spec->name), "%s", text);
	return 0;
}

static int want_args(int ntok, int want, const char *usage, char *errstr, size_t errstr_size)
{
	if (ntok != want)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "usage: %s", usage);
	return 0;
}

static int parse_broker_cmd(char **tok, int ntok, struct kt_sandbox_command *cmd,
			    char *errstr, size_t errstr_size)
{
	int err;

	if (ntok < 2)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "usage: broker down|up|rtt|rack|errors ID ...");
	if (strcmp(tok[1], "down") == 0 || strcmp(tok[1], "up") == 0) {
		cmd->op = tok[1][0] == 'd' ? KT_SANDBOX_OP_BROKER_DOWN : KT_SANDBOX_OP_BROKER_UP;
		if ((err = want_args(ntok, 3, "broker down|up ID", errstr, errstr_size)))
			return err;
		return parse_broker(tok[2], &cmd->broker, errstr, errstr_size);
	}
	if (strcmp(tok[1], "rtt") == 0) {
		int32_t ms;
		cmd->op = KT_SANDBOX_OP_BROKER_RTT;
		if ((err = want_args(ntok, 4, "broker rtt ID MS", errstr, errstr_size)) ||
		    (err = parse_broker(tok[2], &cmd->broker, errstr, errstr_size)))
			return err;
		if (parse_int32(tok[3], 0, 3600000, &ms))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "rtt '%s' is not a number of milliseconds from 0 to 3600000", tok[3]);
		cmd->rtt_ms = ms;
		return 0;
	}
	if (strcmp(tok[1], "rack") == 0) {
		cmd->op = KT_SANDBOX_OP_BROKER_RACK;
		if ((err = want_args(ntok, 4, "broker rack ID RACK", errstr, errstr_size)) ||
		    (err = parse_broker(tok[2], &cmd->broker, errstr, errstr_size)))
			return err;
		if (strlen(tok[3]) >= sizeof(cmd->text))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE, "rack name is too long");
		snprintf(cmd->text, sizeof(cmd->text), "%s", tok[3]);
		return 0;
	}
	if (strcmp(tok[1], "errors") == 0) {
		cmd->op = KT_SANDBOX_OP_BROKER_ERRORS;
		if (ntok < 5)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "usage: broker errors ID API ERR[@RTT_MS] ...");
		if ((err = parse_broker(tok[2], &cmd->broker, errstr, errstr_size)) ||
		    (err = parse_api(tok[3], &cmd->api_key, errstr, errstr_size)))
			return err;
		if (ntok - 4 > KT_SANDBOX_MAX_ERRORS)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "at most %d errors per command", KT_SANDBOX_MAX_ERRORS);
		for (int i = 4; i < ntok; i++) {
			char *at = strchr(tok[i], '@');
			int32_t rtt = 0;
			if (at) {
				*at = '\0';
				if (parse_int32(at + 1, 0, 3600000, &rtt))
					return kt_seterr(errstr, errstr_size, KT_EUSAGE,
							 "rtt '%s' is not a number of milliseconds", at + 1);
			}
			if ((err = parse_err(tok[i], &cmd->errors[cmd->error_count], errstr, errstr_size)))
				return err;
			cmd->rtts[cmd->error_count++] = rtt;
		}
		return 0;
	}
	return kt_seterr(errstr, errstr_size, KT_EUSAGE,
			 "unknown broker command '%s' (down, up, rtt, rack, errors)", tok[1]);
}

int kt_sandbox_command_parse(const char *line, struct kt_sandbox_command *cmd,
			     char *errstr, size_t errstr_size)
{
	char buf[KT_SANDBOX_MAX_LINE];
	char *tok[MAX_TOKENS];
	int ntok, err;

	memset(cmd, 0, sizeof(*cmd));
	if (snprintf(buf, sizeof(buf), "%s", line) >= (int)sizeof(buf))
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "command longer than %d bytes", KT_SANDBOX_MAX_LINE - 1);
	ntok = tokenize(buf, tok);
	if (ntok < 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "too many words in the command (at most %d errors at once)", KT_SANDBOX_MAX_ERRORS);
	if (ntok == 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "empty command (try 'help')");

	if (strcmp(tok[0], "ping") == 0 || strcmp(tok[0], "bootstrap") == 0 ||
	    strcmp(tok[0], "help") == 0) {
		cmd->op = tok[0][0] == 'p' ? KT_SANDBOX_OP_PING :
			  tok[0][0] == 'b' ? KT_SANDBOX_OP_BOOTSTRAP : KT_SANDBOX_OP_HELP;
		return want_args(ntok, 1, tok[0], errstr, errstr_size);
	}
	if (strcmp(tok[0], "broker") == 0)
		return parse_broker_cmd(tok, ntok, cmd, errstr, errstr_size);
	if (strcmp(tok[0], "leader") == 0 || strcmp(tok[0], "follower") == 0) {
		cmd->op = tok[0][0] == 'l' ? KT_SANDBOX_OP_LEADER : KT_SANDBOX_OP_FOLLOWER;
		if ((err = want_args(ntok, 4, "leader|follower TOPIC PARTITION BROKER_ID",
				     errstr, errstr_size)) ||
		    (err = parse_topic_name(tok[1], &cmd->topic, errstr, errstr_size)))
			return err;
		if (parse_int32(tok[2], 0, KT_SANDBOX_MAX_PARTITIONS - 1, &cmd->partition))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE, "partition '%s' is not a number", tok[2]);
		return parse_broker(tok[3], &cmd->broker, errstr, errstr_size);
	}
	if (strcmp(tok[0], "errors") == 0) {
		cmd->op = KT_SANDBOX_OP_ERRORS;
		if (ntok < 3)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE, "usage: errors API ERR [ERR...]");
		if (ntok - 2 > KT_SANDBOX_MAX_ERRORS)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "at most %d errors per command", KT_SANDBOX_MAX_ERRORS);
		if ((err = parse_api(tok[1], &cmd->api_key, errstr, errstr_size)))
			return err;
		for (int i = 2; i < ntok; i++)
			if ((err = parse_err(tok[i], &cmd->errors[cmd->error_count++], errstr, errstr_size)))
				return err;
		return 0;
	}
	if (strcmp(tok[0], "clear") == 0) {
		cmd->op = KT_SANDBOX_OP_CLEAR_ERRORS;
		if ((err = want_args(ntok, 3, "clear errors API", errstr, errstr_size)))
			return err;
		if (strcmp(tok[1], "errors") != 0)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE, "usage: clear errors API");
		return parse_api(tok[2], &cmd->api_key, errstr, errstr_size);
	}
	if (strcmp(tok[0], "topic") == 0) {
		if (ntok >= 2 && strcmp(tok[1], "create") == 0) {
			cmd->op = KT_SANDBOX_OP_TOPIC_CREATE;
			if ((err = want_args(ntok, 3, "topic create NAME:PARTITIONS[:RF]", errstr, errstr_size)))
				return err;
			return kt_sandbox_parse_topic_spec(tok[2], &cmd->topic, errstr, errstr_size);
		}
		if (ntok >= 2 && strcmp(tok[1], "error") == 0) {
			cmd->op = KT_SANDBOX_OP_TOPIC_ERROR;
			if ((err = want_args(ntok, 4, "topic error TOPIC ERR", errstr, errstr_size)) ||
			    (err = parse_topic_name(tok[2], &cmd->topic, errstr, errstr_size)))
				return err;
			cmd->error_count = 1;
			return parse_err(tok[3], &cmd->errors[0], errstr, errstr_size);
		}
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "usage: topic create|error ...");
	}
	if (strcmp(tok[0], "coordinator") == 0) {
		cmd->op = KT_SANDBOX_OP_COORDINATOR;
		if ((err = want_args(ntok, 4, "coordinator group|transaction KEY BROKER_ID",
				     errstr, errstr_size)))
			return err;
		if (strcmp(tok[1], "group") != 0 && strcmp(tok[1], "transaction") != 0)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "coordinator type '%s' is neither 'group' nor 'transaction'", tok[1]);
		if (strlen(tok[2]) >= sizeof(cmd->text))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE, "coordinator key is too long");
		snprintf(cmd->key_type, sizeof(cmd->key_type), "%s", tok[1]);
		snprintf(cmd->text, sizeof(cmd->text), "%s", tok[2]);
		return parse_broker(tok[3], &cmd->broker, errstr, errstr_size);
	}
	if (strcmp(tok[0], "apiversion") == 0) {
		int32_t lo, hi;
		cmd->op = KT_SANDBOX_OP_APIVERSION;
		if ((err = want_args(ntok, 4, "apiversion API MIN MAX", errstr, errstr_size)) ||
		    (err = parse_api(tok[1], &cmd->api_key, errstr, errstr_size)))
			return err;
		if (parse_int32(tok[2], -1, 32767, &lo) || parse_int32(tok[3], -1, 32767, &hi) || lo > hi)
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "versions '%s' '%s' are not MIN <= MAX numbers", tok[2], tok[3]);
		cmd->min_version = (int16_t)lo;
		cmd->max_version = (int16_t)hi;
		return 0;
	}
	return kt_seterr(errstr, errstr_size, KT_EUSAGE, "unknown command '%s' (try 'help')", tok[0]);
}

static int check_broker(const struct kt_sandbox *sandbox, int32_t broker,
			char *errstr, size_t errstr_size)
{
	if (broker < 1 || broker > sandbox->brokers)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "no broker %d: the cluster has brokers 1..%d", (int)broker, sandbox->brokers);
	return 0;
}

/* The mock asserts or silently auto-creates a topic when a fault command
 * names one it does not have, so the topic and partition are checked first
 * through a Metadata request for all topics (which never auto-creates). */
static int check_partition(struct kt_sandbox *sandbox, const char *topic, int32_t partition,
			   char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t rkerr;
	int err = KT_ENOTFOUND;

	if (!sandbox->probe) {
		rd_kafka_conf_t *conf = rd_kafka_conf_new();
		char rkerrstr[512];

		rd_kafka_conf_set_opaque(conf, (void *)sandbox->log);
		rd_kafka_conf_set_log_cb(conf, sandbox_log_cb);
		if (rd_kafka_conf_set(conf, "bootstrap.servers", sandbox->bootstrap,
				      rkerrstr, sizeof(rkerrstr)) != RD_KAFKA_CONF_OK) {
			rd_kafka_conf_destroy(conf);
			return kt_seterr(errstr, errstr_size, KT_EKAFKA, "probe client: %s", rkerrstr);
		}
		sandbox->probe = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rkerrstr, sizeof(rkerrstr));
		if (!sandbox->probe) {
			rd_kafka_conf_destroy(conf);
			return kt_seterr(errstr, errstr_size, KT_EKAFKA, "probe client: %s", rkerrstr);
		}
	}
	rkerr = rd_kafka_metadata(sandbox->probe, 1, NULL, &md, 5000);
	if (rkerr)
		return kt_seterr(errstr, errstr_size, KT_EKAFKA,
				 "cannot list the cluster's topics to check %s: %s", topic,
				 rd_kafka_err2str(rkerr));
	for (int i = 0; i < md->topic_cnt; i++) {
		if (strcmp(md->topics[i].topic, topic) != 0)
			continue;
		if (partition >= 0 && partition < md->topics[i].partition_cnt)
			err = 0;
		else
			kt_seterr(errstr, errstr_size, KT_ENOTFOUND,
				  "topic %s has no partition %d (it has %d)", topic, (int)partition,
				  md->topics[i].partition_cnt);
		goto out;
	}
	kt_seterr(errstr, errstr_size, KT_ENOTFOUND, "no topic %s in the cluster", topic);
out:
	rd_kafka_metadata_destroy(md);
	return err;
}

static int kafka_result(rd_kafka_resp_err_t rkerr, const char *what, char *errstr, size_t errstr_size)
{
	if (rkerr)
		return kt_seterr(errstr, errstr_size, KT_EKAFKA, "%s: %s", what, rd_kafka_err2str(rkerr));
	return 0;
}

int kt_sandbox_command_exec(struct kt_sandbox *sandbox, const struct kt_sandbox_command *cmd,
			    char *reply, size_t reply_size,
			    char *errstr, size_t errstr_size)
{
	rd_kafka_resp_err_t rkerr = 0;
	char what[KT_SANDBOX_MAX_TOPIC_LEN + 64];
	int err;

	if (reply_size)
		reply[0] = '\0';
	switch (cmd->op) {
	case KT_SANDBOX_OP_PING:
		return 0;
	case KT_SANDBOX_OP_BOOTSTRAP:
		snprintf(reply, reply_size, "%s", sandbox->bootstrap);
		return 0;
	case KT_SANDBOX_OP_HELP:
		snprintf(reply, reply_size,
			 "ping | bootstrap | broker down|up ID | broker rtt ID MS | broker rack ID RACK"
			 " | broker errors ID API ERR[@RTT]... | leader TOPIC PARTITION ID"
			 " | follower TOPIC PARTITION ID | errors API ERR... | clear errors API"
			 " | topic create NAME:PARTITIONS[:RF] | topic error TOPIC ERR"
			 " | coordinator group|transaction KEY ID | apiversion API MIN MAX");
		return 0;
	case KT_SANDBOX_OP_BROKER_DOWN:
	case KT_SANDBOX_OP_BROKER_UP:
	case KT_SANDBOX_OP_BROKER_RTT:
	case KT_SANDBOX_OP_BROKER_RACK:
	case KT_SANDBOX_OP_BROKER_ERRORS:
	case KT_SANDBOX_OP_COORDINATOR:
	case KT_SANDBOX_OP_LEADER:
	case KT_SANDBOX_OP_FOLLOWER:
		if ((err = check_broker(sandbox, cmd->broker, errstr, errstr_size)))
			return err;
		break;
	default:
		break;
	}

	switch (cmd->op) {
	case KT_SANDBOX_OP_BROKER_DOWN:
		rkerr = rd_kafka_mock_broker_set_down(sandbox->mc, cmd->broker);
		break;
	case KT_SANDBOX_OP_BROKER_UP:
		rkerr = rd_kafka_mock_broker_set_up(sandbox->mc, cmd->broker);
		if (!rkerr)
			sandbox_set_nodelay(sandbox->bootstrap);
		break;
	case KT_SANDBOX_OP_BROKER_RTT:
		rkerr = rd_kafka_mock_broker_set_rtt(sandbox->mc, cmd->broker, cmd->rtt_ms);
		break;
	case KT_SANDBOX_OP_BROKER_RACK:
		rkerr = rd_kafka_mock_broker_set_rack(sandbox->mc, cmd->broker, cmd->text);
		break;
	case KT_SANDBOX_OP_BROKER_ERRORS:
		/* The variadic call takes (err, rtt) pairs; pushing them one at a
		 * time keeps their order and avoids building a va_list. */
		for (size_t i = 0; i < cmd->error_count && !rkerr; i++)
			rkerr = rd_kafka_mock_broker_push_request_error_rtts(
				sandbox->mc, cmd->broker, cmd->api_key, 1,
				(rd_kafka_resp_err_t)cmd->errors[i], cmd->rtts[i]);
		break;
	case KT_SANDBOX_OP_LEADER:
	case KT_SANDBOX_OP_FOLLOWER:
		snprintf(what, sizeof(what), "topic %s partition %d", cmd->topic.name, (int)cmd->partition);
		if ((err = check_partition(sandbox, cmd->topic.name, cmd->partition,
						      errstr, errstr_size)))
			return err;
		if (cmd->op == KT_SANDBOX_OP_LEADER)
			rkerr = rd_kafka_mock_partition_set_leader(sandbox->mc, cmd->topic.name,
								   cmd->partition, cmd->broker);
		else
			rkerr = rd_kafka_mock_partition_set_follower(sandbox->mc, cmd->topic.name,
								     cmd->partition, cmd->broker);
		return kafka_result(rkerr, what, errstr, errstr_size);
	case KT_SANDBOX_OP_ERRORS: {
		rd_kafka_resp_err_t errs[KT_SANDBOX_MAX_ERRORS];
		for (size_t i = 0; i < cmd->error_count; i++)
			errs[i] = (rd_kafka_resp_err_t)cmd->errors[i];
		rd_kafka_mock_push_request_errors_array(sandbox->mc, cmd->api_key, cmd->error_count, errs);
		return 0;
	}
	case KT_SANDBOX_OP_CLEAR_ERRORS:
		rd_kafka_mock_clear_request_errors(sandbox->mc, cmd->api_key);
		return 0;
	case KT_SANDBOX_OP_TOPIC_CREATE:
		return kt_sandbox_create_topic(sandbox, cmd->topic.name, cmd->topic.partitions,
					       cmd->topic.replication_factor, errstr, errstr_size);
	case KT_SANDBOX_OP_TOPIC_ERROR:
		rd_kafka_mock_topic_set_error(sandbox->mc, cmd->topic.name,
					      (rd_kafka_resp_err_t)cmd->errors[0]);
		return 0;
	case KT_SANDBOX_OP_COORDINATOR:
		rkerr = rd_kafka_mock_coordinator_set(sandbox->mc, cmd->key_type, cmd->text, cmd->broker);
		break;
	case KT_SANDBOX_OP_APIVERSION:
		rkerr = rd_kafka_mock_set_apiversion(sandbox->mc, cmd->api_key, cmd->min_version,
						     cmd->max_version);
		break;
	default:
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "unknown command code %d", cmd->op);
	}
	snprintf(what, sizeof(what), "broker %d", (int)cmd->broker);
	return kafka_result(rkerr, what, errstr, errstr_size);
}

int kt_sandbox_control(struct kt_sandbox *sandbox, const char *line,
		       char *answer, size_t answer_size)
{
	struct kt_sandbox_command cmd;
	char errstr[512], reply[1024];
	int err;

	err = kt_sandbox_command_parse(line, &cmd, errstr, sizeof(errstr));
	if (!err)
		err = kt_sandbox_command_exec(sandbox, &cmd, reply, sizeof(reply), errstr, sizeof(errstr));
	if (err)
		snprintf(answer, answer_size, "error: %s", errstr);
	else if (reply[0])
		snprintf(answer, answer_size, "ok %s", reply);
	else
		snprintf(answer, answer_size, "ok");
	return err;
}
