/*
 * ktape sandbox: an in-memory Kafka-protocol cluster on loopback, for tests
 * and for trying ktape without Kafka; and `ktape sandbox ctl`, which sends
 * one control command to a running sandbox (shell scripts cannot speak to a
 * unix socket themselves).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "kt_sandbox.h"
#include "kt_store.h"

#define CMD "sandbox"
#define MAX_CLIENTS 16
#define MAX_TOPICS 4096

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape sandbox [options]\n"
		"       ktape sandbox ctl --control PATH COMMAND...\n"
		"\n"
		"Runs an in-memory Kafka-protocol cluster (librdkafka's mock cluster) on\n"
		"loopback until SIGINT or SIGTERM.  Prints `bootstrap=HOST:PORT,...` on\n"
		"stdout once the topics exist.  Data lives in memory only; at most 5 MiB\n"
		"is kept per partition.\n"
		"\n"
		"Options:\n"
		"  -n, --brokers N            number of brokers (default 3)\n"
		"  -t, --topic NAME:PARTITIONS[:RF]\n"
		"                             create a topic (repeatable)\n"
		"      --topic-file FILE      one NAME:PARTITIONS[:RF] per line ('#' comments)\n"
		"      --from-snapshot REPO[:ID]\n"
		"                             create the topics of a backup snapshot with\n"
		"                             their partition counts (ID default: latest)\n"
		"      --bootstrap-file PATH  also write the bootstrap string there (atomically)\n"
		"      --control PATH         answer control commands on this unix socket\n"
		"      --stdin                also read control commands from stdin\n"
		"                             (answers go to stdout)\n"
		"  -h, --help                 this help\n"
		"\n"
		"Control commands (one per line; answer `ok [VALUE]` or `error: REASON`):\n"
		"  ping | bootstrap | help\n"
		"  broker down ID | broker up ID | broker rtt ID MS | broker rack ID RACK\n"
		"  broker errors ID API ERR[@RTT_MS]...\n"
		"  leader TOPIC PARTITION ID | follower TOPIC PARTITION ID\n"
		"  errors API ERR... | clear errors API\n"
		"  topic create NAME:PARTITIONS[:RF] | topic error TOPIC ERR\n"
		"  coordinator group|transaction KEY ID | apiversion API MIN MAX\n"
		"API: Produce, Fetch, Metadata, OffsetCommit... or a number.\n"
		"ERR: NOT_LEADER_FOR_PARTITION, _TIMED_OUT... or a number.\n");
}

static void ctl_usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape sandbox ctl --control PATH [--timeout SECONDS] COMMAND...\n"
		"\n"
		"Sends one control command (its words joined by spaces) to a running\n"
		"`ktape sandbox --control PATH` and prints the answer.  Exit status 0 when\n"
		"the answer is `ok`, 1 when it is an error or the sandbox is unreachable.\n");
}

/* ---- topic sources ----------------------------------------------------- */

struct topic_list {
	struct kt_sandbox_topic_spec *specs;
	size_t count;
};

static int topic_list_add(struct topic_list *list, const struct kt_sandbox_topic_spec *spec)
{
	struct kt_sandbox_topic_spec *grown;

	if (list->count == MAX_TOPICS) {
		kt_cli_error(CMD, "more than %d topics", MAX_TOPICS);
		return KT_EUSAGE;
	}
	grown = realloc(list->specs, (list->count + 1) * sizeof(*grown));
	if (!grown) {
		kt_cli_error(CMD, "out of memory");
		return -ENOMEM;
	}
	list->specs = grown;
	list->specs[list->count++] = *spec;
	return 0;
}

static int add_topic_text(struct topic_list *list, const char *text, const char *where)
{
	struct kt_sandbox_topic_spec spec;
	/* Room for a message that quotes a 249-byte name twice and still
	 * ends with the reason. */
	char errstr[2048];
	int err;

	err = kt_sandbox_parse_topic_spec(text, &spec, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error(CMD, "%s%s%s", where ? where : "", where ? ": " : "", errstr);
		return err;
	}
	return topic_list_add(list, &spec);
}

static int add_topic_file(struct topic_list *list, const char *path)
{
	char *line = NULL, where[4096 + 16];
	size_t cap = 0;
	ssize_t len;
	unsigned lineno = 0;
	FILE *f = fopen(path, "re");
	int err = 0;

	if (!f) {
		kt_cli_error(CMD, "%s: cannot open the topic file: %s", path, strerror(errno));
		return KT_EUSAGE;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		char *p = line;

		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
				   line[len - 1] == ' ' || line[len - 1] == '\t'))
			line[--len] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		err = add_topic_text(list, p, where);
		if (err)
			break;
	}
	free(line);
	fclose(f);
	return err;
}

/* Adds the topics of a snapshot, REPO or REPO:ID.  A colon may belong to
 * the path, so the text after the last colon is taken as the id only when
 * the whole text is not itself an existing path. */
static int add_snapshot_topics(struct topic_list *list, const char *text, int brokers)
{
	struct kt_store_repo *repo = NULL;
	struct kt_store_snapshot *snap = NULL;
	struct kt_sandbox_topic_spec spec;
	char path[4096], errstr[1024];
	const char *id = NULL;
	struct stat st;
	int err;

	if (snprintf(path, sizeof(path), "%s", text) >= (int)sizeof(path)) {
		kt_cli_error(CMD, "--from-snapshot: path too long");
		return KT_EUSAGE;
	}
	if (stat(path, &st) != 0) {
		char *colon = strrchr(path, ':');
		/* The colon of an s3:// scheme never starts an id. */
		if (colon && strncmp(path, "s3://", 5) == 0 && colon < path + 5)
			colon = NULL;
		if (colon) {
			*colon = '\0';
			id = colon + 1;
		}
	}
	err = kt_store_repo_open(&repo, path, 0, 0, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error(CMD, "--from-snapshot: %s", errstr);
		goto out;
	}
	err = kt_store_repo_load_snapshot(repo, id && *id ? id : NULL, &snap, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error(CMD, "--from-snapshot: %s", errstr);
		goto out;
	}
	for (size_t i = 0; i < snap->topic_count; i++) {
		const struct kt_store_topic *topic = &snap->topics[i];

		memset(&spec, 0, sizeof(spec));
		if (!kt_sandbox_topic_name_valid(topic->name) || topic->partition_count < 1) {
			kt_cli_error(CMD, "--from-snapshot: snapshot %s has topic '%s' with %d partitions, "
				     "which cannot be created", snap->id, topic->name,
				     (int)topic->partition_count);
			err = KT_ECORRUPT;
			goto out;
		}
		snprintf(spec.name, sizeof(spec.name), "%s", topic->name);
		spec.partitions = topic->partition_count;
		/* Production's replication factor may exceed the sandbox's
		 * broker count; the shape that matters is the partition count. */
		spec.replication_factor = topic->replication_factor > 0 &&
					  topic->replication_factor <= brokers ?
					  topic->replication_factor : 0;
		err = topic_list_add(list, &spec);
		if (err)
			goto out;
	}
out:
	kt_store_snapshot_destroy(snap);
	kt_store_repo_destroy(repo);
	/* A repository or snapshot that is not there is a wrong argument;
	 * a damaged one keeps its own code (exit 3). */
	if (err == KT_ENOTFOUND || err == -ENOENT)
		err = KT_EUSAGE;
	return err;
}

/* ---- control channel --------------------------------------------------- */

struct conn {
	int fd;     /* -1 when the slot is free */
	int out_fd; /* where answers go: fd itself, or stdout for stdin */
	size_t len; /* bytes of an unfinished line in buf */
	char buf[KT_SANDBOX_MAX_LINE];
};

/* Answers every whole line in the connection's buffer.  Returns -1 when the
 * connection must be closed (write failure, or a line too long). */
static int serve_lines(struct kt_sandbox *sandbox, struct conn *c)
{
	char answer[KT_SANDBOX_MAX_LINE + 64];
	char *nl;

	while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
		size_t line_len = (size_t)(nl - c->buf);

		*nl = '\0';
		if (line_len > 0 && c->buf[line_len - 1] == '\r')
			c->buf[line_len - 1] = '\0';
		kt_sandbox_control(sandbox, c->buf, answer, sizeof(answer) - 1);
		kt_log(&kt_cli_log, KT_LOG_DEBUG, "control: %s -> %s", c->buf, answer);
		strcat(answer, "\n");
		if (kt_write_all(c->out_fd, answer, strlen(answer)))
			return -1;
		memmove(c->buf, nl + 1, c->len - line_len - 1);
		c->len -= line_len + 1;
	}
	if (c->len == sizeof(c->buf)) {
		static const char too_long[] = "error: command line too long\n";
		(void)kt_write_all(c->out_fd, too_long, sizeof(too_long) - 1);
		return -1;
	}
	return 0;
}

/* Reads what is available; returns -1 at EOF or error. */
static int conn_read(struct kt_sandbox *sandbox, struct conn *c)
{
	ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);

	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (r <= 0) {
		/* A last command without newline still gets its answer. */
		if (r == 0 && c->len > 0 && c->len < sizeof(c->buf)) {
			c->buf[c->len++] = '\n';
			(void)serve_lines(sandbox, c);
		}
		return -1;
	}
	c->len += (size_t)r;
	return serve_lines(sandbox, c);
}

static int listen_control(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		kt_cli_error(CMD, "--control %s: a unix socket path has at most %zu bytes", path,
			     sizeof(addr.sun_path) - 1);
		return KT_EUSAGE;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	/* A socket left by a dead sandbox is replaced; one that still answers,
	 * or anything that is not a socket, is not touched. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			kt_cli_error(CMD, "--control %s: exists and is not a socket", path);
			return KT_EUSAGE;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
			close(fd);
			kt_cli_error(CMD, "--control %s: another sandbox is listening there", path);
			return KT_EUSAGE;
		}
		if (fd >= 0)
			close(fd);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		kt_cli_error(CMD, "--control: socket: %s", strerror(errno));
		return -errno;
	}
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 16) < 0) {
		int e = errno;
		kt_cli_error(CMD, "--control %s: cannot listen: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

/* ---- the server --------------------------------------------------------- */

static int run_server(struct kt_sandbox *sandbox, const char *control_path,
		      const char *bootstrap_file, int use_stdin)
{
	struct pollfd pfd[MAX_CLIENTS + 3];
	struct conn *conns = NULL;
	struct conn stdin_conn = { .fd = -1 };
	sigset_t mask;
	int sfd = -1, lfd = -1, err = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		kt_cli_error(CMD, "signalfd: %s", strerror(errno));
		err = -errno;
		goto out;
	}
	conns = calloc(MAX_CLIENTS, sizeof(*conns));
	if (!conns) {
		kt_cli_error(CMD, "out of memory");
		err = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		conns[i].fd = -1;
	if (control_path) {
		lfd = listen_control(control_path);
		if (lfd < 0) {
			err = lfd;
			lfd = -1;
			goto out;
		}
	}
	if (use_stdin) {
		stdin_conn.fd = STDIN_FILENO;
		stdin_conn.out_fd = STDOUT_FILENO;
	}
	/* The bootstrap file and line announce readiness: they come only once
	 * the topics exist and the control socket accepts connections. */
	if (bootstrap_file) {
		char content[4096], errstr[1024];
		int n = snprintf(content, sizeof(content), "%s\n", kt_sandbox_bootstrap(sandbox));
		err = kt_write_file_atomic(bootstrap_file, content, (size_t)n, 0644, errstr, sizeof(errstr));
		if (err) {
			kt_cli_error(CMD, "--bootstrap-file: %s", errstr);
			goto out;
		}
	}
	printf("bootstrap=%s\n", kt_sandbox_bootstrap(sandbox));
	fflush(stdout);

	for (;;) {
		int n = 0, conn_base;

		pfd[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = stdin_conn.fd, .events = POLLIN };
		conn_base = n;
		for (int i = 0; i < MAX_CLIENTS; i++)
			pfd[n++] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			kt_cli_error(CMD, "poll: %s", strerror(errno));
			err = -errno;
			goto out;
		}
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				kt_log(&kt_cli_log, KT_LOG_INFO, "signal %u: stopping the sandbox",
				       si.ssi_signo);
			goto out;
		}
		if (lfd >= 0 && (pfd[1].revents & POLLIN)) {
			int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (cfd >= 0) {
				int slot = -1;
				for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
					if (conns[i].fd < 0)
						slot = i;
				if (slot < 0) {
					static const char busy[] = "error: too many control connections\n";
					(void)kt_write_all(cfd, busy, sizeof(busy) - 1);
					close(cfd);
				} else {
					conns[slot].fd = cfd;
					conns[slot].out_fd = cfd;
					conns[slot].len = 0;
				}
			}
		}
		/* Stdin's answers go to stdout, after the bootstrap line; at
		 * EOF the sandbox keeps running and stops reading it. */
		if (stdin_conn.fd >= 0 && pfd[2].revents && conn_read(sandbox, &stdin_conn) < 0)
			stdin_conn.fd = -1;
		for (int i = 0; i < MAX_CLIENTS; i++) {
			if (conns[i].fd < 0 || !pfd[conn_base + i].revents)
				continue;
			if (conn_read(sandbox, &conns[i]) < 0) {
				close(conns[i].fd);
				conns[i].fd = -1;
			}
		}
	}
out:
	if (conns)
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (conns[i].fd >= 0)
				close(conns[i].fd);
	free(conns);
	if (lfd >= 0) {
		close(lfd);
		unlink(control_path);
	}
	if (sfd >= 0)
		close(sfd);
	return err;
}

/* ---- ktape sandbox ctl -------------------------------------------------- */

static int run_ctl(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	const char *path = NULL;
	char line[KT_SANDBOX_MAX_LINE + 1], answer[KT_SANDBOX_MAX_LINE + 64];
	size_t len = 0, alen = 0;
	int64_t timeout_ms = 30000;
	int c, fd = -1, rc = KT_EXIT_FAILURE;

	/* "+": the command's words may look like options ("errors Produce -1"). */
	while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'T':
			if (kt_parse_duration_ms(optarg, &timeout_ms) || timeout_ms <= 0) {
				kt_cli_error("sandbox ctl", "--timeout '%s' is not a duration", optarg);
				return kt_cli_usage_error("sandbox ctl");
			}
			break;
		case 'h':
			ctl_usage(stdout);
			return KT_EXIT_OK;
		default:
			return kt_cli_usage_error("sandbox ctl");
		}
	}
	if (!path || optind >= argc) {
		kt_cli_error("sandbox ctl", "%s", !path ? "--control PATH is required" : "no command given");
		return kt_cli_usage_error("sandbox ctl");
	}
	for (int i = optind; i < argc; i++) {
		size_t n = strlen(argv[i]);
		if (len + n + 2 > sizeof(line)) {
			kt_cli_error("sandbox ctl", "command too long");
			return KT_EXIT_USAGE;
		}
		if (i > optind)
			line[len++] = ' ';
		memcpy(line + len, argv[i], n);
		len += n;
		if (memchr(argv[i], '\n', n)) {
			kt_cli_error("sandbox ctl", "a command word contains a newline");
			return KT_EXIT_USAGE;
		}
	}
	line[len++] = '\n';
	if (strlen(path) >= sizeof(addr.sun_path)) {
		kt_cli_error("sandbox ctl", "--control %s: path too long for a unix socket", path);
		return KT_EXIT_USAGE;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		kt_cli_error("sandbox ctl", "cannot reach a sandbox at %s: %s", path, strerror(errno));
		goto out;
	}
	if (kt_write_all(fd, line, len)) {
		kt_cli_error("sandbox ctl", "%s: write failed: %s", path, strerror(errno));
		goto out;
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int pr = poll(&p, 1, (int)timeout_ms);
		ssize_t r;
		if (pr == 0) {
			kt_cli_error("sandbox ctl", "%s: no answer within %lld ms", path, (long long)timeout_ms);
			goto out;
		}
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			kt_cli_error("sandbox ctl", "poll: %s", strerror(errno));
			goto out;
		}
		r = read(fd, answer + alen, sizeof(answer) - 1 - alen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		alen += (size_t)r;
		if (memchr(answer, '\n', alen) || alen == sizeof(answer) - 1)
			break;
	}
	answer[alen] = '\0';
	answer[strcspn(answer, "\n")] = '\0';
	if (alen == 0) {
		kt_cli_error("sandbox ctl", "%s: the sandbox closed the connection without answering", path);
		goto out;
	}
	printf("%s\n", answer);
	rc = strncmp(answer, "ok", 2) == 0 && (answer[2] == '\0' || answer[2] == ' ') ?
	     KT_EXIT_OK : KT_EXIT_FAILURE;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ---- ktape sandbox ------------------------------------------------------ */

int kt_cli_cmd_sandbox(int argc, char **argv)
{
	enum { OPT_TOPIC_FILE = 256, OPT_FROM_SNAPSHOT, OPT_BOOTSTRAP_FILE, OPT_CONTROL, OPT_STDIN };
	static const struct option opts[] = {
		{ "brokers", required_argument, NULL, 'n' },
		{ "topic", required_argument, NULL, 't' },
		{ "topic-file", required_argument, NULL, OPT_TOPIC_FILE },
		{ "from-snapshot", required_argument, NULL, OPT_FROM_SNAPSHOT },
		{ "bootstrap-file", required_argument, NULL, OPT_BOOTSTRAP_FILE },
		{ "control", required_argument, NULL, OPT_CONTROL },
		{ "stdin", no_argument, NULL, OPT_STDIN },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct topic_list topics = { 0 };
	struct kt_sandbox *sandbox = NULL;
	const char *bootstrap_file = NULL, *control_path = NULL;
	const char *snapshot_arg = NULL;
	char errstr[1024];
	int32_t brokers = 3;
	int use_stdin = 0, c, err = 0, rc = KT_EXIT_OK;
	sigset_t mask, old_mask;

	if (argc > 1 && strcmp(argv[1], "ctl") == 0) {
		static char prog[] = "ktape sandbox ctl";

		argv[1] = prog; /* getopt's messages name it */
		optind = 1;
		return run_ctl(argc - 1, argv + 1);
	}

	/* SIGINT/SIGTERM are read through a signalfd; blocking them now, before
	 * librdkafka starts threads, makes every thread inherit the mask so the
	 * signal cannot land in one of them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, &old_mask);

	while ((c = getopt_long(argc, argv, "n:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': {
			int64_t v;
			if (kt_parse_i64(optarg, 1, KT_SANDBOX_MAX_BROKERS, &v)) {
				kt_cli_error(CMD, "--brokers '%s' is not a number from 1 to %d", optarg,
					     KT_SANDBOX_MAX_BROKERS);
				kt_cli_usage_error(CMD);
				err = KT_EUSAGE;
				goto out;
			}
			brokers = (int32_t)v;
			break;
		}
		case 't':
			err = add_topic_text(&topics, optarg, "--topic");
			if (err == KT_EUSAGE)
				kt_cli_usage_error(CMD);
			if (err)
				goto out;
			break;
		case OPT_TOPIC_FILE:
			err = add_topic_file(&topics, optarg);
			if (err)
				goto out;
			break;
		case OPT_FROM_SNAPSHOT:
			snapshot_arg = optarg;
			break;
		case OPT_BOOTSTRAP_FILE:
			bootstrap_file = optarg;
			break;
		case OPT_CONTROL:
			control_path = optarg;
			break;
		case OPT_STDIN:
			use_stdin = 1;
			break;
		case 'h':
			usage(stdout);
			goto out;
		default:
			rc = kt_cli_usage_error(CMD);
			goto out;
		}
	}
	if (optind < argc) {
		kt_cli_error(CMD, "unexpected argument '%s'", argv[optind]);
		rc = kt_cli_usage_error(CMD);
		goto out;
	}
	/* Snapshot topics are read after -n so replication factors can be
	 * fitted to the broker count. */
	if (snapshot_arg && (err = add_snapshot_topics(&topics, snapshot_arg, brokers)))
		goto out;
	for (size_t i = 0; i < topics.count; i++) {
		if (topics.specs[i].replication_factor > brokers) {
			kt_cli_error(CMD, "topic %s: replication factor %d exceeds the %d brokers",
				     topics.specs[i].name, (int)topics.specs[i].replication_factor,
				     (int)brokers);
			err = KT_EUSAGE;
			goto out;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(topics.specs[i].name, topics.specs[j].name) == 0) {
				kt_cli_error(CMD, "topic %s is given twice", topics.specs[i].name);
				err = KT_EUSAGE;
				goto out;
			}
		}
	}

	err = kt_sandbox_create(&sandbox, brokers, &kt_cli_log, errstr, sizeof(errstr));
	if (err) {
		kt_cli_error(CMD, "%s", errstr);
		goto out;
	}
	for (size_t i = 0; i < topics.count; i++) {
		err = kt_sandbox_create_topic(sandbox, topics.specs[i].name, topics.specs[i].partitions,
					      topics.specs[i].replication_factor, errstr, sizeof(errstr));
		if (err) {
			kt_cli_error(CMD, "%s", errstr);
			goto out;
		}
	}
	kt_log(&kt_cli_log, KT_LOG_INFO, "sandbox of %d broker%s with %zu topic%s at %s",
	       (int)brokers, brokers == 1 ? "" : "s", topics.count, topics.count == 1 ? "" : "s",
	       kt_sandbox_bootstrap(sandbox));
	err = run_server(sandbox, control_path, bootstrap_file, use_stdin);
out:
	kt_sandbox_destroy(sandbox);
	free(topics.specs);
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	if (err)
		return err == KT_EUSAGE ? KT_EXIT_USAGE : kt_cli_exit_for(err);
	return rc;
}
