/*
 * cmd_reconcile.c - `racefree reconcile [--db URL]`: checks the ledger's
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
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"

int cmd_reconcile(int argc, char **argv) {
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *db_flag = NULL;
    optind = 0;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        if (c == 'd') db_flag = optarg;
        else if (c == 'h') return printf("usage: racefree reconcile [--db URL]\n"), CLI_EXIT_OK;
        else return cli_usage_error("reconcile", "bad option");
    }
    if (optind < argc)
        return cli_usage_error("reconcile", "unexpected argument '%s'", argv[optind]);
    rf *db = NULL;
    int rc = cli_open(cli_db_url(db_flag), &(struct rf_options){0}, &db);
    if (rc) return rc;
    struct rf_ledger_check c;
    rf_err err = rf_ledger_check(db, &c);
    rf_close(db);
    if (err != RF_OK) return cli_fail("reconcile", err);
    printf("currencies checked: %lld\n"
           "accounts checked: %lld\n"
           "payouts checked: %lld\n"
           "approved approvals checked: %lld\n"
           "currencies unbalanced: %lld\n"
           "accounts mismatched: %lld\n"
           "accounts whose balance differs from their entries: %lld\n"
           "accounts whose pending totals differ from their open holds: %lld\n"
           "payouts mismatched with their hold: %lld\n"
           "payout clearing transfers without a payout: %lld\n"
           "approved approvals whose action did not run: %lld\n"
           "rows whose reference names no row: %lld\n"
           "ledger: %s\n",
           (long long)c.currencies, (long long)c.accounts, (long long)c.payouts,
           (long long)c.approvals, (long long)c.currencies_unbalanced,
           (long long)c.accounts_mismatched, (long long)c.accounts_entries_mismatched,
           (long long)c.accounts_holds_mismatched, (long long)c.payouts_mismatched,
           (long long)c.clearing_unowned, (long long)c.approvals_unexecuted,
           (long long)c.rows_dangling, c.clean ? "clean" : "NOT CLEAN");
    if (!c.clean)
        fprintf(stderr, "racefree: reconcile: the ledger's invariants do not hold "
                        "(%lld unbalanced currencies, %lld mismatched accounts, %lld mismatched "
                        "payouts, %lld unowned clearing transfers, %lld approvals whose action "
                        "did not run, %lld rows whose reference names no row)\n",
                (long long)c.currencies_unbalanced, (long long)c.accounts_mismatched,
                (long long)c.payouts_mismatched, (long long)c.clearing_unowned,
                (long long)c.approvals_unexecuted, (long long)c.rows_dangling);
    return c.clean ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
