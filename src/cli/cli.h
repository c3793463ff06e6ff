/*
 * cli.h - the command table's row type, the cmd_<name>() entry points and the
 * few helpers every command shares (the --db default rule, integer flags,
 * opening the store with the right messages and exit codes).
 *
 * Exit codes: 0 success, 1 runtime failure, 2 bad usage or a schema newer
 * than this binary.
 */
#ifndef RF_CLI_H
#define RF_CLI_H

#include <stdbool.h>

#include "racefree.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

#define CLI_DB_DEFAULT "sqlite:racefree.db"
#define CLI_LISTEN_DEFAULT "127.0.0.1:8080"

struct cli_cmd {
    const char *name;
    int (*fn)(int argc, char **argv); /* argv[0] is the command name */
    const char *usage;                /* arguments, after "racefree <name>" */
    const char *summary;
};

int cmd_serve(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_reconcile(int argc, char **argv);

/* The database URL: the flag, else $RACEFREE_DB, else CLI_DB_DEFAULT. */
const char *cli_db_url(const char *flag);
/* A decimal integer within [min, max]. */
bool cli_parse_long(const char *text, long min, long max, long *out);
/* Prints "racefree <cmd>: <message>" and the command's usage to stderr;
 * returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Opens the store; on failure prints why (without secrets) and returns the
 * exit code, else 0. */
int cli_open(const char *url, const struct rf_options *opt, rf **out);
/* Prints the failure of a library call: "racefree: <what>: <code>". */
int cli_fail(const char *what, rf_err err);

#endif
