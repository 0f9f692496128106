/*
 * cli.h - private to the ktape command-line program.
 *
 * Only the CLI prints and exits.  Each command lives in cmd_<name>.c and is
 * listed in the table in main.c; it returns one of the exit codes below.
 */
#ifndef KT_CLI_H
#define KT_CLI_H

#include <stdio.h>

#include "kt_common.h"

/* Exit codes, documented in README.md ("Exit codes"). Scripts and alerting
 * depend on them: never renumber. */
enum kt_exit {
	KT_EXIT_OK = 0,          /* the command did all it was asked */
	KT_EXIT_FAILURE = 1,     /* an error stopped it; nothing half-published */
	KT_EXIT_USAGE = 2,       /* bad flags or arguments; nothing was done */
	KT_EXIT_DAMAGED = 3,     /* corrupt or missing data found (verify, reads) */
	KT_EXIT_GAP = 4,         /* done, but records were lost to retention */
	KT_EXIT_INTERRUPTED = 5, /* stopped by a signal; a partial result kept */
	KT_EXIT_DIFFERENT = 6,   /* a comparison found differences (diff, demo) */
};

struct kt_cli_command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;
};

/* Verbosity shared by all commands: -v raises it, -q lowers it. */
extern int kt_cli_verbosity;

/* The log sink the CLI hands to modules: "ktape: LEVEL: message" on stderr. */
extern const struct kt_log kt_cli_log;

/* Routes SIGINT and SIGTERM to handler while a command runs (SIG_DFL puts
 * the default back): restore, replay and demo stop cleanly on either. */
void kt_cli_stop_signals(void (*handler)(int));

/* Maps a negative ktape/errno code to the exit code a script should see. */
int kt_cli_exit_for(int err);

/* Prints "ktape <cmd>: <message>" on stderr. */
void kt_cli_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prints the one-line usage hint after a bad option and returns
 * KT_EXIT_USAGE. */
int kt_cli_usage_error(const char *cmd);

/* Formats a byte count for people ("12.3 MiB"); defined in cmd_ls.c. */
void kt_cli_format_bytes(uint64_t n, char *buf, size_t size);

/* Parses the options ls and show share (-r REPO, --json, --help) and allows
 * at most max_args arguments, left at argv[optind..argc).  Returns -1 to go
 * on, or the exit code the command returns (help printed, or usage error).
 * Defined in cmd_ls.c. */
int kt_cli_repo_args(const char *cmd, int argc, char **argv, void (*usage)(FILE *out),
		     int max_args, const char **repo_path, int *json);

/* "full", "incremental" or "partial" (enum kt_store_snapshot_kind). */
const char *kt_cli_snapshot_kind_name(int kind);

/* Command entry points. */
int kt_cli_cmd_version(int argc, char **argv);
/* Parses a repository permission mode given as octal (--mode 0640): files
 * get it, directories it plus x where r is set.  The owner must keep read
 * and write, and no bit beyond 0777 is allowed.  Prints the error and
 * returns -1 on bad input. */
int kt_cli_parse_mode(const char *cmd, const char *text, unsigned *out);

/* KT_CLI_PROTOTYPES: one line per command, added with the command. */
int kt_cli_cmd_restore(int argc, char **argv);
int kt_cli_cmd_capture(int argc, char **argv);
int kt_cli_cmd_cat(int argc, char **argv);
int kt_cli_cmd_verify(int argc, char **argv);
int kt_cli_cmd_ls(int argc, char **argv);
int kt_cli_cmd_show(int argc, char **argv);
int kt_cli_cmd_prune(int argc, char **argv);
int kt_cli_cmd_export(int argc, char **argv);
int kt_cli_cmd_import(int argc, char **argv);
int kt_cli_cmd_diff(int argc, char **argv);
int kt_cli_cmd_sandbox(int argc, char **argv);
int kt_cli_cmd_gen(int argc, char **argv);
int kt_cli_cmd_replay(int argc, char **argv);
int kt_cli_cmd_demo(int argc, char **argv);

#endif /* KT_CLI_H */
