/*
 * cmd_reconcile.c - `racefree reconcile [--db URL] [--json] [--progress]`:
 * every invariant the flows promise, checked straight against the store in
 * one read snapshot (rf_reconcile, core/reconcile.c), each violation with
 * the rows involved (at most RF_RECONCILE_EXAMPLES_MAX per check, and the
 * total count).
 *
 * The exit code is the contract scripts, cron and the crash tests rely on:
 * 0 clean, 1 drift (some invariant does not hold), 2 could not run (bad
 * usage, bad URL, store unreachable, schema newer than this binary, a
 * check that failed or timed out). Stdout holds only the result (a table,
 * or with --json the document README "Reconcile" describes); progress and
 * errors go to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/limits.h"
#include "cli/cli.h"

#define EXIT_DRIFT 1
#define EXIT_CANNOT_RUN 2

struct reconcile_args {
    struct cli_store store;
    bool json;
    bool progress;
    int pg_timeout_ms;
};

static const struct cli_flag reconcile_flags[] = {
    CLI_STORE_FLAGS(struct reconcile_args),
    {"json", NULL, "print the result as one JSON document (README \"Reconcile\")", NULL, 0,
     cli_set_true, offsetof(struct reconcile_args, json), 0, 0, false},
    {"progress", NULL, "print each check as it starts, on stderr",
     "on when stderr is a terminal", 0, cli_set_true, offsetof(struct reconcile_args, progress),
     0, 0, false},
    {"pg-timeout-ms", "N", "PostgreSQL: the bound on connecting and on each check's statement",
     NULL, RF_RECONCILE_PG_TIMEOUT_MS, cli_set_int,
     offsetof(struct reconcile_args, pg_timeout_ms), RF_PG_TIMEOUT_MS_MIN, RF_PG_TIMEOUT_MS_MAX,
     false},
};

static void print_progress(void *ctx, int step, int steps, const char *name) {
    (void)ctx;
    fprintf(stderr, "racefree reconcile: [%d/%d] %s\n", step, steps, name);
}

static const struct cli_spec reconcile_spec = {
    "reconcile", "",
    "Checks every invariant of the ledger, payouts, approvals, checkouts, webhook\n"
    "events, announcements, notifications and jobs in one read snapshot (writers are\n"
    "never blocked) and prints each check with its violations and up to "
    RF_STR(RF_RECONCILE_EXAMPLES_MAX) " of the\n"
    "rows involved. Exit 0: clean; 1: drift; 2: could not run (bad usage or URL, store\n"
    "unreachable, schema too new, a check failed). A sqlite: URL whose file does not\n"
    "exist is refused (nothing is created).",
    reconcile_flags, sizeof reconcile_flags / sizeof reconcile_flags[0]};

/* One example row: "a" or "a b", the columns' names in the header line. */
static void print_check(const struct rf_reconcile_check *c) {
    printf("%-24s %10lld", c->name, (long long)c->violations);
    for (int i = 0; i < c->n_examples; i++)
        printf("%s%s%s%s", i ? ", " : "  ", c->cells[i][0], c->cells[i][1] ? " " : "",
               c->cells[i][1] ? c->cells[i][1] : "");
    if (c->violations > c->n_examples) printf(", ...");
    printf("\n");
}

static void print_table(const struct rf_reconcile *r) {
    printf("%-24s %10s  %s\n", "CHECK", "VIOLATIONS", "ROWS (first "
           RF_STR(RF_RECONCILE_EXAMPLES_MAX) ")");
    for (int i = 0; i < r->n; i++) print_check(&r->checks[i]);
    int bad = 0;
    for (int i = 0; i < r->n; i++) bad += r->checks[i].violations > 0;
    if (r->clean) printf("reconcile: clean (%d checks)\n", r->n);
    else printf("reconcile: NOT CLEAN: %lld violations in %d of %d checks\n",
                (long long)r->violations, bad, r->n);
}

static int print_json(const struct rf_reconcile *r) {
    char *doc = rf_reconcile_json(r);
    if (!doc) {
        cli_fail("reconcile", RF_ERR_NOMEM);
        return EXIT_CANNOT_RUN;
    }
    printf("%s\n", doc);
    free(doc);
    return 0;
}

int cmd_reconcile(int argc, char **argv) {
    struct reconcile_args a = {.pg_timeout_ms = RF_RECONCILE_PG_TIMEOUT_MS};
    int first = 0;
    int rc = cli_parse(&reconcile_spec, argc, argv, &a, &first);
    if (rc) return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : EXIT_CANNOT_RUN;
    if (first < argc) {
        cli_usage_error("reconcile", "unexpected argument '%s'", argv[first]);
        return EXIT_CANNOT_RUN;
    }
    rf *db = NULL;
    if (cli_store_open("reconcile", &a.store, true,
                       &(struct rf_options){.pg_timeout_ms = a.pg_timeout_ms}, &db))
        return EXIT_CANNOT_RUN;
    bool progress = a.progress || isatty(STDERR_FILENO);
    struct rf_reconcile r;
    rf_err err = rf_reconcile(db, &(struct rf_reconcile_opts){progress ? print_progress : NULL,
                                                             NULL}, &r);
    rf_close(db);
    if (err != RF_OK) {
        cli_fail("reconcile", err);
        return EXIT_CANNOT_RUN;
    }
    if (a.json) rc = print_json(&r);
    else print_table(&r);
    int exit_code = rc ? rc : r.clean ? CLI_EXIT_OK : EXIT_DRIFT;
    if (!rc && !r.clean)
        fprintf(stderr, "racefree: reconcile: %lld violations of the store's invariants\n",
                (long long)r.violations);
    rf_reconcile_clear(&r);
    return exit_code;
}
