/*
 * ktape - back up, restore and replay Apache Kafka topics.
 *
 * This file is the dispatcher: `ktape <command> [options]`.  Commands are
 * listed in one table so that `ktape --help` and dispatch cannot disagree.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int kt_cli_verbosity = KT_LOG_INFO;

static void cli_log_fn(void *opaque, int level, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	(void)opaque;
	if (level > kt_cli_verbosity)
		return;
	fprintf(stderr, "ktape: %s: %s\n", names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}

const struct kt_log kt_cli_log = { cli_log_fn, NULL, KT_LOG_DEBUG };

static const struct kt_cli_command commands[] = {
	/* KT_CLI_COMMANDS: one line per command, in the order `ktape --help`
	 * lists them. */
	{ "capture", kt_cli_cmd_capture, "back up topics into a repository (once, or continuously with --follow)" },
	{ "cat", kt_cli_cmd_cat, "print a backed-up topic's records as JSON lines (kcat -J fields)" },
	{ "restore", kt_cli_cmd_restore, "put a snapshot back into Kafka, each record exactly once (resumable)" },
	{ "replay", kt_cli_cmd_replay, "send a window of a snapshot as test traffic, at the original pace times a speed factor" },
	{ "ls", kt_cli_cmd_ls, "list a repository's snapshots, newest first" },
	{ "show", kt_cli_cmd_show, "show one snapshot's topics, partitions, gaps, configs and group offsets" },
	{ "verify", kt_cli_cmd_verify, "check every block, segment and manifest of a repository" },
	{ "prune", kt_cli_cmd_prune, "remove old snapshots by policy, then unreferenced segments" },
	{ "export", kt_cli_cmd_export, "write a snapshot as a self-contained tar archive" },
	{ "import", kt_cli_cmd_import, "bring a snapshot archive into a repository" },
	{ "diff", kt_cli_cmd_diff, "compare a snapshot with the live topics, record by record" },
	{ "version", kt_cli_cmd_version, "print the version of ktape and its libraries" },
	{ "sandbox", kt_cli_cmd_sandbox, "run an in-memory Kafka-protocol cluster for tests and trials" },
	{ "gen", kt_cli_cmd_gen, "produce deterministic test records into a cluster" },
	{ "demo", kt_cli_cmd_demo, "generate, capture, verify, restore, compare and replay, all in process" },
};

void kt_cli_stop_signals(void (*handler)(int))
{
	signal(SIGINT, handler);
	signal(SIGTERM, handler);
}

int kt_cli_exit_for(int err)
{
	switch (err) {
	case 0:
		return KT_EXIT_OK;
	case KT_EUSAGE:
		return KT_EXIT_USAGE;
	case KT_ECORRUPT:
	case KT_ETRUNCATED:
	case KT_EMAGIC:
		return KT_EXIT_DAMAGED;
	case KT_EGAP:
		return KT_EXIT_GAP;
	case KT_EINTERRUPTED:
		return KT_EXIT_INTERRUPTED;
	default:
		return KT_EXIT_FAILURE;
	}
}

void kt_cli_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ktape %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int kt_cli_parse_mode(const char *cmd, const char *text, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!text || *text < '0' || *text > '7')
		goto bad;
	v = strtoul(text, &end, 8);
	if (*end || v > 0777 || (v & 0600) != 0600)
		goto bad;
	*out = (unsigned)v;
	return 0;
bad:
	kt_cli_error(cmd, "--mode wants octal permission bits from 0600 to 0777 that keep the owner's read and write, not '%s'",
		     text ? text : "");
	return -1;
}

int kt_cli_usage_error(const char *cmd)
{
	fprintf(stderr, "Try 'ktape %s --help'.\n", cmd);
	return KT_EXIT_USAGE;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ktape [-v|-q] <command> [options]\n"
		"\n"
		"Back up, restore and replay Apache Kafka topics.\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\n"
		"Options:\n"
		"  -v, --verbose   more log output (repeatable)\n"
		"  -q, --quiet     errors only\n"
		"  -h, --help      this help; `ktape <command> --help` for a command\n"
		"  -V, --version   print the version\n"
		"\n"
		"Exit codes: 0 ok, 1 failure, 2 usage, 3 damaged data, 4 retention gap,\n"
		"5 interrupted, 6 differences found.  See README.md.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	/* A closed pipe (ktape cat | head) must end the program quietly, as it
	 * does for cat(1), instead of killing it mid-write of a file. */
	signal(SIGPIPE, SIG_IGN);

	/* '+' stops at the first non-option: everything after the command name
	 * belongs to the command. */
	while ((c = getopt_long(argc, argv, "+vqhV", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			kt_cli_verbosity++;
			break;
		case 'q':
			kt_cli_verbosity = KT_LOG_ERROR;
			break;
		case 'h':
			usage(stdout);
			return KT_EXIT_OK;
		case 'V':
			return kt_cli_cmd_version(1, (char *[]){ "version", NULL });
		default:
			usage(stderr);
			return KT_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return KT_EXIT_USAGE;
	}
	int first = optind;
	const char *name = argv[first];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0) {
			/* Each command parses its own options with a fresh getopt:
			 * its argv[0] is "ktape NAME", so getopt's own messages
			 * ("ktape ls: unrecognized option") look like every other
			 * error.  optind = 0 (not 1) makes glibc reinitialise fully,
			 * dropping the '+' (stop at the first operand) mode used
			 * above, so a command sees options placed after its
			 * operands too. */
			static char prog[64];

			snprintf(prog, sizeof(prog), "ktape %s", commands[i].name);
			argv[first] = prog;
			optind = 0;
			return commands[i].run(argc - first, argv + first);
		}
	}
	fprintf(stderr, "ktape: unknown command '%s'\n", name);
	usage(stderr);
	return KT_EXIT_USAGE;
}
