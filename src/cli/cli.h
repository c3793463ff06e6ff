/*
 * cli.h - the command table's row type, the cmd_<name>() entry points, the
 * flag table every command parses with (one row per flag: its getopt option,
 * its line in --help with description and default, and its parser), and the
 * few helpers every command shares (the --db default rule, opening the store
 * with the right messages and exit codes).
 *
 * Exit codes: 0 success (and --help), 1 runtime failure, 2 bad usage (an
 * unknown flag, a bad value, a missing SQLite file where the store must
 * already exist) or a schema newer than this binary.
 */
#ifndef RF_CLI_H
#define RF_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/limits.h"
#include "racefree.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2
/* cli_parse's answer when it printed --help: the command exits 0. */
#define CLI_HELP_SHOWN (-1)

#define CLI_DB_DEFAULT "sqlite:racefree.db"
#define CLI_LISTEN_DEFAULT "127.0.0.1:8080"

struct cli_flag;
/* Stores value (NULL for a switch) into args; 0, or prints why and returns
 * CLI_EXIT_USAGE. */
typedef int (*cli_set_fn)(const struct cli_flag *f, void *args, const char *value);

/* One row of a command's flag table. */
struct cli_flag {
    const char *name;   /* the long name, without "--" */
    const char *arg;    /* the value's name in help ("N", "URL"); NULL: a switch */
    const char *help;   /* what it does */
    const char *dflt;   /* the default as help shows it; NULL: dflt_n, else none */
    long dflt_n;        /* a numeric default (when dflt is NULL and this is not 0) */
    cli_set_fn set;
    size_t offset;      /* the field set writes, in the command's args struct */
    long min, max;      /* bounds, for cli_set_int */
    bool hidden;        /* internal or test-only: accepted, never shown */
};

/* A command (or subcommand) as --help shows it. */
struct cli_spec {
    const char *cmd;          /* "serve", "keys create" */
    const char *operands;     /* after the flags ("ID"), or "" */
    const char *about;        /* a paragraph: what it does */
    const struct cli_flag *flags;
    size_t n_flags;
};

/* Setters for the common field types. */
int cli_set_str(const struct cli_flag *f, void *args, const char *value);  /* const char * */
int cli_set_true(const struct cli_flag *f, void *args, const char *value); /* bool */
int cli_set_int(const struct cli_flag *f, void *args, const char *value);  /* int in [min, max] */
/* struct rf_rate_limit from "N/PERIOD" (rf_rate_limit_parse); exit 2 when bad */
int cli_set_rate_limit(const struct cli_flag *f, void *args, const char *value);

/* Parses argv (argv[0] is the command name) with s's flags, -h and --help.
 * Returns 0 with *first_operand set to the first non-flag argument's index,
 * CLI_HELP_SHOWN after printing help to stdout, or CLI_EXIT_USAGE after
 * printing why (an unknown flag, a missing value, a bad value). */
int cli_parse(const struct cli_spec *s, int argc, char **argv, void *args, int *first_operand);
/* Prints s's usage, description and every visible flag with its default. */
void cli_print_spec(FILE *f, const struct cli_spec *s);

/* Where a command's store is: --db and --schema, shared by every command. */
struct cli_store {
    const char *db;      /* --db; NULL: $RACEFREE_DB, else CLI_DB_DEFAULT */
    const char *schema;  /* --schema; NULL: the URL's ?schema=, else the server's default */
};
/* The two rows every store-using command has (args has a struct cli_store
 * member named `store`). */
#define CLI_STORE_FLAGS(type)                                                                  \
    {"db", "URL", "the database: sqlite:PATH or postgres://...[?schema=NAME]",                \
     "$RACEFREE_DB, else " CLI_DB_DEFAULT, 0, cli_set_str,                                    \
     offsetof(type, store.db), 0, 0, false},                                                  \
    {"schema", "NAME", "PostgreSQL: keep racefree's tables in this schema (created by "       \
     "migrate and serve; lower-case letters, digits, _; not pg_*); SQLite rejects it",        \
     "the URL's ?schema=, else the database's search_path", 0, cli_set_str,                   \
     offsetof(type, store.schema), 0, 0, false}

/* The --timeout-ms row of the commands that fire requests (probe, torture):
 * args has an int member timeout_ms. */
#define CLI_RACE_TIMEOUT_FLAG(type, help_)                                                     \
    {"timeout-ms", "MS", help_, NULL, RF_RACE_TIMEOUT_MS_DEFAULT, cli_set_int,                \
     offsetof(type, timeout_ms), 1, RF_RACE_TIMEOUT_MS_MAX, false}

/* The store's URL with --schema folded in as ?schema=NAME, into out.
 * 0, or prints why and returns CLI_EXIT_USAGE. must_exist: a sqlite: URL
 * whose file does not exist is refused (nothing is created). */
int cli_store_url(const char *cmd, const struct cli_store *s, bool must_exist, char *out,
                  size_t cap);
/* cli_store_url, then opens the store; on failure prints why (without
 * secrets) and returns the exit code, else 0. */
int cli_store_open(const char *cmd, const struct cli_store *s, bool must_exist,
                   const struct rf_options *opt, rf **out);

struct cli_cmd {
    const char *name;
    int (*fn)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;
};

int cmd_serve(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_reconcile(int argc, char **argv);
int cmd_webhooks(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_torture(int argc, char **argv);

/* The database URL: the flag, else $RACEFREE_DB, else CLI_DB_DEFAULT. */
const char *cli_db_url(const char *flag);
/* A decimal integer within [min, max]. */
bool cli_parse_long(const char *text, long min, long max, long *out);
/* Prints "racefree <cmd>: <message>" and where to find the usage to stderr;
 * returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A command's own error: "racefree: <message>" on stderr, or, once
 * cli_log_json() ran (serve: every line it writes is a JSON log line), an
 * error-level log line. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_log_json(void);
/* Prints the failure of a library call (cli_error "<what>: <code>"). */
int cli_fail(const char *what, rf_err err);
/* The schema-too-new message; returns CLI_EXIT_USAGE. */
int cli_schema_too_new(void);

#endif
