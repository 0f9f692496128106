/* Unit tests of the sandbox's topic specs and control protocol: parsing
 * alone, and commands run against a real in-process mock cluster. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kt_sandbox.h"

static void test_topic_spec_parses_name_partitions_and_rf(void **state)
{
	struct kt_sandbox_topic_spec spec;
	char errstr[256];

	(void)state;
	assert_int_equal(kt_sandbox_parse_topic_spec("orders:12", &spec, errstr, sizeof(errstr)), 0);
	assert_string_equal(spec.name, "orders");
	assert_int_equal(spec.partitions, 12);
	assert_int_equal(spec.replication_factor, 0);
	assert_int_equal(kt_sandbox_parse_topic_spec("market.crypto.trades_v-2:40:3", &spec, errstr,
						     sizeof(errstr)), 0);
	assert_string_equal(spec.name, "market.crypto.trades_v-2");
	assert_int_equal(spec.partitions, 40);
	assert_int_equal(spec.replication_factor, 3);
}

static void test_topic_spec_rejects_malformed_specs(void **state)
{
	static const char *const bad[] = {
		"orders", "orders:", "orders:0", "orders:-1", "orders:x", "orders:3:0",
		"orders:3:x", "orders:3:1:", ":3", "a b:3", "./x:1", ".:1", "..:1",
		"orders:99999999999", "caf\xc3\xa9:1",
	};
	struct kt_sandbox_topic_spec spec;
	char errstr[256], longname[300];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errstr[0] = '\0';
		assert_int_equal(kt_sandbox_parse_topic_spec(bad[i], &spec, errstr, sizeof(errstr)),
				 KT_EUSAGE);
		assert_true(strlen(errstr) > 0);
	}
	memset(longname, 'a', 250);
	strcpy(longname + 250, ":1");
	assert_int_equal(kt_sandbox_parse_topic_spec(longname, &spec, errstr, sizeof(errstr)), KT_EUSAGE);
	longname[249] = '\0';
	strcat(longname, ":1");
	assert_int_equal(kt_sandbox_parse_topic_spec(longname, &spec, errstr, sizeof(errstr)), 0);
	assert_int_equal(strlen(spec.name), 249);
}

static void test_control_parses_broker_commands(void **state)
{
	struct kt_sandbox_command cmd;
	char errstr[256];

	(void)state;
	assert_int_equal(kt_sandbox_command_parse("broker down 2\n", &cmd, errstr, sizeof(errstr)), 0);
	assert_int_equal(cmd.op, KT_SANDBOX_OP_BROKER_DOWN);
	assert_int_equal(cmd.broker, 2);
	assert_int_equal(kt_sandbox_command_parse("  broker   up 3 ", &cmd, errstr, sizeof(errstr)), 0);
	assert_int_equal(cmd.op, KT_SANDBOX_OP_BROKER_UP);
	assert_int_equal(cmd.broker, 3);
	assert_int_equal(kt_sandbox_command_parse("broker rtt 1 250", &cmd, errstr, sizeof(errstr)), 0);
	assert_int_equal(cmd.op, KT_SANDBOX_OP_BROKER_RTT);
	assert_int_equal(cmd.rtt_ms, 250);
	assert_int_equal(kt_sandbox_command_parse("broker errors 2 Fetch NOT_LEADER_FOR_PARTITION@100 7",
						  &cmd, errstr, sizeof(errstr)), 0);
	assert_int_equal(cmd.op, KT_SANDBOX_OP_BROKER_ERRORS);
	assert_int_equal(cmd.api_key, 1);
	assert_int_equal(cmd.error_count, 2);
	assert_int_equal(cmd.errors[0], RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
	assert_int_equal(cmd.rtts[0], 100);
	assert_int_equal(cmd.errors[1], 7);
	assert_int_equal(cmd.rtts[1], 0);
}

static void test_control_accepts_api_and_error_names_or_numbers(void **state)
{
	struct kt_sandbox_command cmd;
	char errstr[256];
	int16_t api;
	int code;

	(void)state;
	assert_int_equal(kt_sandbox_parse_api_key("Produce", &api), 0);
	assert_int_equal(api, 0);
	assert_int_equal(kt_sandbox_parse_api_key("offsetcommit", &api), 0);
	assert_int_equal(api, 8);
	assert_int_equal(kt_sandbox_parse_api_key("18", &api), 0);
	assert_int_equal(api, 18);
	assert_int_equal(kt_sandbox_parse_api_key("Frobnicate", &api), KT_EUSAGE);
	assert_int_equal(kt_sandbox_parse_error_code("NOT_LEADER_FOR_PARTITION", &code), 0);
	assert_int_equal(code, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
	assert_int_equal(kt_sandbox_parse_error_code("RD_KAFKA_RESP_ERR__TIMED_OUT", &code), 0);
	assert_int_equal(code, RD_KAFKA_RESP_ERR__TIMED_OUT);
	assert_int_equal(kt_sandbox_parse_error_code("_timed_out", &code), 0);
	assert_int_equal(code, RD_KAFKA_RESP_ERR__TIMED_OUT);
	assert_int_equal(kt_sandbox_parse_error_code("-185", &code), 0);
	assert_int_equal(code, -185);
	assert_int_equal(kt_sandbox_parse_error_code("NO_SUCH_ERROR", &code), KT_EUSAGE);

	assert_int_equal(kt_sandbox_command_parse("errors produce REQUEST_TIMED_OUT 6 _TRANSPORT",
						  &cmd, errstr, sizeof(errstr)), 0);
	assert_int_equal(cmd.op, KT_SANDBOX_OP_ERRORS);
	assert_int_equal(cmd.api_key, 0);
	assert_int_equal(cmd.error_count, 3);
	assert_int_equal(cmd.errors[0], RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
	assert_int_equal(cmd.errors[1], 6);
	assert_int_equal(cmd.errors[2], RD_KAFKA_RESP_ERR__TRANSPORT);
}

static void test_control_parses_topic_leader_and_misc_commands(void **state)
{
	struct kt_sandbox_command cmd;
	char errstr[256];

	(void)state;
	assert_int_equal(kt_sandbox_command_parse("leader orders 3 2", &cmd, errstr, sizeof(errstr)), 0);
	assert_int_equal(cmd.op, KT_SANDBOX_OP_LEADER);
	assert_string_equal(cmd.topic.name, "orders");
	assert_int_equal(cmd.partition, 3);
	assert_int_equal(cmd.broker, 2);
	assert_int_equal(kt_sandbox_command_parse("topic create t:5:1", &cmd, errstr, sizeof(errstr)), 0);
	assert_int_equal(cmd.op, KT_SANDBOX_OP_TOPIC_CREATE);
	assert_int_equal(cmd.topic.partitions, 5);
	assert_int_equal(cmd.topic.replication_factor, 1);
	assert_int_equal(kt_sandbox_command_parse("topic error t UNKNOWN_TOPIC_OR_PART", &cmd, errstr,
						  sizeof(errstr)), 0);
	assert_int_equal(cmd.errors[0], RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
	assert_int_equal(kt_sandbox_command_parse("clear errors Fetch", &cmd, errstr, sizeof(errstr)), 0);
	assert_int_equal(cmd.op, KT_SANDBOX_OP_CLEAR_ERRORS);
	assert_int_equal(cmd.api_key, 1);
	assert_int_equal(kt_sandbox_command_parse("coordinator group g1 2", &cmd, errstr, sizeof(errstr)), 0);
	assert_string_equal(cmd.key_type, "group");
	assert_string_equal(cmd.text, "g1");
	assert_int_equal(kt_sandbox_command_parse("apiversion Fetch 0 4", &cmd, errstr, sizeof(errstr)), 0);
	assert_int_equal(cmd.min_version, 0);
	assert_int_equal(cmd.max_version, 4);
	assert_int_equal(kt_sandbox_command_parse("ping", &cmd, errstr, sizeof(errstr)), 0);
	assert_int_equal(cmd.op, KT_SANDBOX_OP_PING);
}

static void test_control_rejects_malformed_commands(void **state)
{
	static const char *const bad[] = {
		"", "   ", "frob", "ping now", "broker", "broker down", "broker down 0",
		"broker down x", "broker down 1 2", "broker rtt 1", "broker rtt 1 -5",
		"broker sideways 1", "broker errors 1 Produce", "leader t 0", "leader t x 1",
		"leader bad/name 0 1", "errors Produce", "errors Nope 6", "errors Produce NOPE",
		"clear Produce", "clear errors", "topic", "topic create", "topic create t",
		"topic delete t", "coordinator consumer g 1", "apiversion Fetch 4 0",
	};
	struct kt_sandbox_command cmd;
	char errstr[256], line[KT_SANDBOX_MAX_LINE + 16];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errstr[0] = '\0';
		if (kt_sandbox_command_parse(bad[i], &cmd, errstr, sizeof(errstr)) != KT_EUSAGE)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(strlen(errstr) > 0);
	}
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	assert_int_equal(kt_sandbox_command_parse(line, &cmd, errstr, sizeof(errstr)), KT_EUSAGE);
	/* More errors than a command may carry. */
	strcpy(line, "errors Produce");
	for (int i = 0; i < KT_SANDBOX_MAX_ERRORS + 1; i++)
		strcat(line, " 6");
	assert_int_equal(kt_sandbox_command_parse(line, &cmd, errstr, sizeof(errstr)), KT_EUSAGE);
}

static void test_control_runs_commands_on_a_mock_cluster(void **state)
{
	struct kt_sandbox *sandbox = NULL;
	char errstr[512], answer[1024];

	(void)state;
	assert_int_equal(kt_sandbox_create(&sandbox, 3, NULL, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_sandbox_broker_count(sandbox), 3);
	assert_non_null(strstr(kt_sandbox_bootstrap(sandbox), "127.0.0.1:"));
	assert_int_equal(kt_sandbox_create_topic(sandbox, "orders", 4, 0, errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_sandbox_create_topic(sandbox, "orders", 4, 0, errstr, sizeof(errstr)),
			 KT_EEXIST);
	assert_int_equal(kt_sandbox_create_topic(sandbox, "wide", 2, 4, errstr, sizeof(errstr)),
			 KT_EUSAGE);

	assert_int_equal(kt_sandbox_control(sandbox, "ping", answer, sizeof(answer)), 0);
	assert_string_equal(answer, "ok");
	assert_int_equal(kt_sandbox_control(sandbox, "bootstrap", answer, sizeof(answer)), 0);
	assert_int_equal(strncmp(answer, "ok ", 3), 0);
	assert_string_equal(answer + 3, kt_sandbox_bootstrap(sandbox));
	assert_int_equal(kt_sandbox_control(sandbox, "broker down 2", answer, sizeof(answer)), 0);
	assert_int_equal(kt_sandbox_control(sandbox, "broker up 2", answer, sizeof(answer)), 0);
	assert_int_equal(kt_sandbox_control(sandbox, "broker rtt 1 10", answer, sizeof(answer)), 0);
	assert_int_equal(kt_sandbox_control(sandbox, "leader orders 3 1", answer, sizeof(answer)), 0);
	assert_string_equal(answer, "ok");
	assert_int_equal(kt_sandbox_control(sandbox, "errors Produce _TIMED_OUT", answer, sizeof(answer)), 0);
	assert_int_equal(kt_sandbox_control(sandbox, "clear errors Produce", answer, sizeof(answer)), 0);
	assert_int_equal(kt_sandbox_control(sandbox, "topic create audit:2:1", answer, sizeof(answer)), 0);

	/* Names the mock does not have are errors, not crashes or topics
	 * auto-created by the check. */
	assert_int_equal(kt_sandbox_control(sandbox, "broker down 4", answer, sizeof(answer)), KT_EUSAGE);
	assert_non_null(strstr(answer, "error: no broker 4"));
	assert_int_equal(kt_sandbox_control(sandbox, "leader orders 4 1", answer, sizeof(answer)),
			 KT_ENOTFOUND);
	assert_non_null(strstr(answer, "no partition 4"));
	assert_int_equal(kt_sandbox_control(sandbox, "leader ghost 0 1", answer, sizeof(answer)),
			 KT_ENOTFOUND);
	assert_int_equal(kt_sandbox_control(sandbox, "leader ghost 0 1", answer, sizeof(answer)),
			 KT_ENOTFOUND);
	assert_int_equal(kt_sandbox_control(sandbox, "topic create orders:1", answer, sizeof(answer)),
			 KT_EEXIST);
	assert_int_equal(kt_sandbox_control(sandbox, "nonsense", answer, sizeof(answer)), KT_EUSAGE);
	assert_int_equal(strncmp(answer, "error: ", 7), 0);
	kt_sandbox_destroy(sandbox);
	kt_sandbox_destroy(NULL);
}

/* The TCP_NODELAY of the broker's side of the connection from fd client
 * (the mock runs in this process, so its accepted socket is one of ours):
 * 1 or 0, or -1 while the mock has not accepted it yet. */
static int accepted_nodelay(int client)
{
	struct sockaddr_in mine, peer;
	socklen_t len = sizeof(mine);
	DIR *dir;
	struct dirent *de;
	int found = -1;

	assert_int_equal(getsockname(client, (struct sockaddr *)&mine, &len), 0);
	dir = opendir("/proc/self/fd");
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL) {
		int fd = atoi(de->d_name), value = 0;
		socklen_t plen = sizeof(peer), vlen = sizeof(value);

		if (de->d_name[0] < '0' || de->d_name[0] > '9' || fd == client || fd == dirfd(dir))
			continue;
		/* The broker's end is the socket whose peer is our end. */
		if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0 || peer.sin_family != AF_INET ||
		    peer.sin_port != mine.sin_port)
			continue;
		if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &vlen) == 0)
			found = value != 0;
	}
	closedir(dir);
	return found;
}

/* Connects to the sandbox's first broker and returns the broker side's
 * TCP_NODELAY, waiting up to 2 s for the mock to accept. */
static int broker_connection_nodelay(const struct kt_sandbox *sandbox)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	const char *colon = strchr(kt_sandbox_bootstrap(sandbox), ':');
	int client, value = -1;

	assert_non_null(colon);
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	client = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(client >= 0);
	assert_int_equal(connect(client, (struct sockaddr *)&sin, sizeof(sin)), 0);
	for (int i = 0; i < 200 && value < 0; i++) {
		value = accepted_nodelay(client);
		if (value < 0)
			usleep(10000);
	}
	close(client);
	return value;
}

/* Kafka brokers answer without Nagle's delay; the mock's connections must
 * too, or a restore's last answer waits 40 ms for a delayed ACK.  Also
 * after a broker went down and came back up. */
static void test_sandbox_connections_have_nodelay(void **state)
{
	struct kt_sandbox *sandbox = NULL;
	char errstr[512], answer[256];

	(void)state;
	assert_int_equal(kt_sandbox_create(&sandbox, 1, NULL, errstr, sizeof(errstr)), 0);
	assert_int_equal(broker_connection_nodelay(sandbox), 1);
	assert_int_equal(kt_sandbox_control(sandbox, "broker down 1", answer, sizeof(answer)), 0);
	assert_int_equal(kt_sandbox_control(sandbox, "broker up 1", answer, sizeof(answer)), 0);
	assert_int_equal(broker_connection_nodelay(sandbox), 1);
	kt_sandbox_destroy(sandbox);
}

static void test_sandbox_refuses_bad_broker_counts(void **state)
{
	struct kt_sandbox *sandbox = NULL;
	char errstr[256];

	(void)state;
	assert_int_equal(kt_sandbox_create(&sandbox, 0, NULL, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_null(sandbox);
	assert_int_equal(kt_sandbox_create(&sandbox, KT_SANDBOX_MAX_BROKERS + 1, NULL, errstr,
					   sizeof(errstr)), KT_EUSAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topic_spec_parses_name_partitions_and_rf),
		cmocka_unit_test(test_topic_spec_rejects_malformed_specs),
		cmocka_unit_test(test_control_parses_broker_commands),
		cmocka_unit_test(test_control_accepts_api_and_error_names_or_numbers),
		cmocka_unit_test(test_control_parses_topic_leader_and_misc_commands),
		cmocka_unit_test(test_control_rejects_malformed_commands),
		cmocka_unit_test(test_control_runs_commands_on_a_mock_cluster),
		cmocka_unit_test(test_sandbox_connections_have_nodelay),
		cmocka_unit_test(test_sandbox_refuses_bad_broker_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
