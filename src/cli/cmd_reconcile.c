/*
 * cmd_reconcile.c - `racefree reconcile [--db URL] [--progress]`: checks the ledger's
 * invariants straight against the store (rf_ledger_check, one read
 * transaction): per currency the posted balances sum to zero, every
 * account's balance equals the sum of its entries and its holds equal its
 * pending transfers, every payout's hold matches the payout (pending <->
 * pending, paid <-> posted in full, failed <-> voided, same amount), and no
 * transfer moves a payouts:<CUR> account without a payout owning it, and
 * every approved approval's action ran (the effect it names exists), and
 * every reference between rows names a row (SQLite does not enforce them on
 * write; PostgreSQL does). Prints
 * what it checked and what it found; exits 0 when the ledger is clean, 1 when
 * it is not (or the check could not run), so it can gate a deploy or page
 * someone from cron.
 */
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/ledger.h"

struct reconcile_args {
    struct cli_store store;
    bool progress;
};

static const struct cli_flag reconcile_flags[] = {
    CLI_STORE_FLAGS(struct reconcile_args),
    {"progress", NULL, "print each check as it starts, and a line every "
     RF_STR(RF_CHECK_PROGRESS_ROWS) " rows, on stderr", "on when stderr is a terminal", 0,
     cli_set_true, offsetof(struct reconcile_args, progress), 0, 0, false},
};

/* One line per step and per RF_CHECK_PROGRESS_ROWS rows, on stderr (stdout
 * keeps only the result, for scripts). */
static void print_progress(void *ctx, int step, int steps, const char *what, int64_t rows) {
    (void)ctx;
    if (rows) fprintf(stderr, "racefree reconcile: [%d/%d] %s: %lld rows\n", step, steps, what,
                      (long long)rows);
    else fprintf(stderr, "racefree reconcile: [%d/%d] %s\n", step, steps, what);
}
static const struct cli_spec reconcile_spec = {
    "reconcile", "",
    "Checks the ledger's invariants in one read transaction and prints what it checked\n"
    "(progress on stderr: each check, and a line per " RF_STR(RF_CHECK_PROGRESS_ROWS) " rows)\n"
    "and found. Exit 0: clean; 1: not clean (or the check could not run); 2: bad usage,\n"
    "or a sqlite: URL whose file does not exist (nothing is created).",
    reconcile_flags, sizeof reconcile_flags / sizeof reconcile_flags[0]};

int cmd_reconcile(int argc, char **argv) {
    struct reconcile_args a = {0};
    int first = 0;
    int rc = cli_parse(&reconcile_spec, argc, argv, &a, &first);
    if (rc) return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    if (first < argc)
        return cli_usage_error("reconcile", "unexpected argument '%s'", argv[first]);
    rf *db = NULL;
    rc = cli_store_open("reconcile", &a.store, true, &(struct rf_options){0}, &db);
    if (rc) return rc;
    struct rf_ledger_check c;
    bool progress = a.progress || isatty(STDERR_FILENO);
    rf_err err = ledger_check_progress(db, &c, progress ? print_progress : NULL, NULL);
    rf_close(db);
    if (err != RF_OK) return cli_fail("reconcile", err);
    printf("currencies checked: %lld\n"
           "accounts checked: %lld\n"
           "payouts checked: %lld\n"
           "approved approvals checked: %lld\n"
           "checkouts checked: %lld\n"
           "currencies unbalanced: %lld\n"
           "accounts mismatched: %lld\n"
           "accounts whose balance differs from their entries: %lld\n"
           "accounts whose pending totals differ from their open holds: %lld\n"
           "payouts mismatched with their hold: %lld\n"
           "payout clearing transfers without a payout: %lld\n"
           "approved approvals whose action did not run: %lld\n"
           "checkouts whose grants and credits differ from their items: %lld\n"
           "rows whose reference names no row: %lld\n"
           "ledger: %s\n",
           (long long)c.currencies, (long long)c.accounts, (long long)c.payouts,
           (long long)c.approvals, (long long)c.checkouts, (long long)c.currencies_unbalanced,
           (long long)c.accounts_mismatched, (long long)c.accounts_entries_mismatched,
           (long long)c.accounts_holds_mismatched, (long long)c.payouts_mismatched,
           (long long)c.clearing_unowned, (long long)c.approvals_unexecuted,
           (long long)c.checkouts_mismatched, (long long)c.rows_dangling, c.clean ? "clean" : "NOT CLEAN");
    if (!c.clean)
        fprintf(stderr, "racefree: reconcile: the ledger's invariants do not hold "
                        "(%lld unbalanced currencies, %lld mismatched accounts, %lld mismatched "
                        "payouts, %lld unowned clearing transfers, %lld approvals whose action "
                        "did not run, %lld mismatched checkouts, %lld rows whose reference names no "
                        "row)\n",
                (long long)c.currencies_unbalanced, (long long)c.accounts_mismatched,
                (long long)c.payouts_mismatched, (long long)c.clearing_unowned,
                (long long)c.approvals_unexecuted, (long long)c.checkouts_mismatched,
                (long long)c.rows_dangling);
    return c.clean ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
