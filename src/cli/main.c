/*
 * main.c - the racefree command line: a table mapping command names to
 * cmd_<name>() in cmd_<name>.c (Redis style), `racefree help [CMD]`, and the
 * helpers the commands share (see cli.h).
 */
#include <malloc.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "base/log.h"
#include "cli/cli.h"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct cli_cmd commands[] = {
    {"serve", cmd_serve, "run the HTTP API server (creates the store and the first admin key)"},
    {"migrate", cmd_migrate, "apply schema migrations and print the version"},
    {"reconcile", cmd_reconcile,
     "check the ledger's invariants; exit 0 when they hold, 1 when not"},
    {"keys", cmd_keys, "create, list and revoke API keys (keys create|list|revoke)"},
    {"webhooks", cmd_webhooks,
     "set, rotate and list providers' webhook signing secrets (webhooks secret set|rotate|list)"},
    {"probe", cmd_probe,
     "fire N copies of one HTTP request released together; exit 1 on a race sign"},
    {"torture", cmd_torture,
     "race every racefree flow on a deployment and check its invariants through the API"},
    {"version", cmd_version, "print the version and the commit it was built from (--version)"},
    {"help", cmd_help, "show this help, or a command's: racefree help COMMAND [SUBCOMMAND]"},
};
static const size_t commands_count = sizeof commands / sizeof commands[0];

static const struct cli_flag help_flags[] = {{0}};
static const struct cli_spec help_spec = {
    "help", "[COMMAND [SUBCOMMAND]]",
    "Shows the list of commands, or a command's usage, flags and defaults (the same as\n"
    "`racefree COMMAND [SUBCOMMAND] --help`).",
    help_flags, 0};

static const struct cli_cmd *find_cmd(const char *name) {
    for (size_t i = 0; i < commands_count; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void print_help(FILE *f) {
    fprintf(f, "racefree - race-free transaction service\n\n"
               "usage: racefree COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < commands_count; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nThe database URL is --db, else $RACEFREE_DB, else %s\n"
               "(sqlite:PATH or postgres://...[?schema=NAME]). serve listens on --listen,\n"
               "else $RACEFREE_LISTEN, else %s.\n"
               "Run `racefree COMMAND --help` (or `racefree help COMMAND`) for its flags.\n",
            CLI_DB_DEFAULT, CLI_LISTEN_DEFAULT);
}

/* `help CMD [SUB]` is `CMD [SUB] --help`: one place prints each usage. */
static int cmd_help(int argc, char **argv) {
    int first = 0;
    int rc = cli_parse(&help_spec, argc, argv, NULL, &first);
    if (rc) return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    if (first >= argc) {
        print_help(stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_cmd *c = find_cmd(argv[first]);
    if (!c) return cli_usage_error("help", "unknown command '%s'", argv[first]);
    if (argc - first > 2) return cli_usage_error("help", "unexpected argument '%s'", argv[first + 2]);
    char help[] = "--help";
    char *sub[] = {argv[first], argc - first == 2 ? argv[first + 1] : help, help, NULL};
    return c->fn(argc - first == 2 ? 3 : 2, sub);
}

const char *cli_db_url(const char *flag) {
    if (flag) return flag;
    const char *env = getenv("RACEFREE_DB");
    return (env && *env) ? env : CLI_DB_DEFAULT;
}

bool cli_parse_long(const char *text, long min, long max, long *out) {
    if (!text || !*text) return false;
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (*end != '\0' || v < min || v > max) return false;
    *out = v;
    return true;
}

static bool log_json; /* set once, before any thread, by serve */

void cli_log_json(void) { log_json = true; }

void cli_error(const char *fmt, ...) {
    char msg[RF_LOG_LINE_BYTES_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log_json) rf_log(RF_LOG_ERROR, "%s", msg);
    else fprintf(stderr, "racefree: %s\n", msg);
}

int cli_fail(const char *what, rf_err err) {
    if (log_json) rf_log_kv(RF_LOG_ERROR, &RF_KV_STR("code", rf_err_code(err)), 1, "%s", what);
    else fprintf(stderr, "racefree: %s: %s\n", what, rf_err_code(err));
    return CLI_EXIT_FAIL;
}

int cli_schema_too_new(void) {
    cli_error("the database schema is newer than this binary (which knows schema version %d); "
              "run a newer racefree",
              rf_schema_version_latest());
    return CLI_EXIT_USAGE;
}

int cli_store_open(const char *cmd, const struct cli_store *s, bool must_exist,
                   const struct rf_options *opt, rf **out) {
    char url[RF_DB_URL_BYTES];
    int rc = cli_store_url(cmd, s, must_exist, url, sizeof url);
    if (rc) return rc;
    rf_err err = rf_open(url, opt, out);
    if (err == RF_OK) return 0;
    if (err == RF_ERR_SCHEMA_TOO_NEW) return cli_schema_too_new();
    if (err == RF_ERR_INVALID) {
        cli_error("invalid database URL (use sqlite:PATH or postgres://...[?schema=NAME], NAME "
                  "as --schema allows)");
        return CLI_EXIT_USAGE;
    }
    /* The URL may hold a password: name only the back end (the store
     * printed the driver's reason above). */
    cli_error("cannot open the %s database: %s",
              strncmp(url, "sqlite:", 7) == 0 ? "sqlite" : "postgres", rf_err_code(err));
    return CLI_EXIT_FAIL;
}

/* SQLite frees a temporary b-tree and a statement journal after many write
 * statements (RETURNING, RELEASE); glibc then hands the writer's heap top
 * back to the kernel (madvise, with TLB shootdowns on every core) and the
 * next operation faults it in again: a fifth of all cycles under load. The
 * process keeps up to RF_MALLOC_TRIM_BYTES of free heap instead. An embedder
 * makes the same call in its own main (README). */
static void malloc_keep_heap(void) {
    (void)mallopt(M_TRIM_THRESHOLD, RF_MALLOC_TRIM_BYTES);
    (void)mallopt(M_MMAP_THRESHOLD, RF_MALLOC_MMAP_BYTES);
}

/* SQLite counts every allocation it makes under a process-wide mutex
 * (memory statistics, SQLITE_CONFIG_MEMSTATUS): about a hundred lock and
 * unlock pairs per credit on the writer thread, ~7k instructions. racefree
 * reads none of those statistics. Before SQLite initializes (its first
 * connection); an embedder makes the same call in its own main (README). */
static void sqlite_no_memstatus(void) {
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* `racefree --version` / `racefree version`: the version, and the commit
 * it was built from when the build knew it. */
static int print_version(void) {
    const char *commit = rf_build_commit();
    printf("racefree %s%s%s%s\n", rf_version(), *commit ? " (git " : "", commit,
           *commit ? ")" : "");
    return CLI_EXIT_OK;
}

static const struct cli_flag version_flags[] = {{0}};
static const struct cli_spec version_spec = {
    "version", "", "Prints `racefree VERSION (git COMMIT)`; the same as `racefree --version`.",
    version_flags, 0};

static int cmd_version(int argc, char **argv) {
    int first = 0;
    int rc = cli_parse(&version_spec, argc, argv, NULL, &first);
    if (rc) return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    if (first < argc) return cli_usage_error("version", "unexpected argument '%s'", argv[first]);
    return print_version();
}

int main(int argc, char **argv) {
    malloc_keep_heap();
    sqlite_no_memstatus();
    if (argc < 2) {
        print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_help(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) return print_version();
    const struct cli_cmd *c = find_cmd(argv[1]);
    if (!c) {
        fprintf(stderr, "racefree: unknown command '%s'\n\n", argv[1]);
        print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    return c->fn(argc - 1, argv + 1);
}
