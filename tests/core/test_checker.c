/*
 * test_checker.c - the ledger checker proven: each test builds a small
 * ledger in a store of its own (so the checker sees only these rows), breaks
 * ONE invariant behind racefree's back with plain SQL, and requires both
 * rf_ledger_check, rf_reconcile and `racefree reconcile` (exit 1) to report exactly that
 * violation, every other count zero; then repairs it and requires clean
 * again. A checker that always says clean fails every test here.
 *
 * The ledger: wallets A and B (USD) funded by credits, a posted transfer
 * A -> B, an open hold A -> B, and three approvals: one approved that ran a
 * transfer, one approved that ran a payout (so a pending payout and its
 * hold), one pending entitlement grant.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/limits.h"
#include "core/tamper.h"
#include "racefree.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"

struct ledger {
    struct rf_core_fixture fx; /* a store of its own: the checker sees exact totals */
    char a[64], b[64];
    char transfer[RF_ID_BYTES], hold[RF_ID_BYTES];
    char payout[RF_ID_BYTES], pending_approval[RF_ID_BYTES];
};

/* What the checker must find: the count of each kind of violation. */
struct want {
    int64_t currencies_unbalanced, accounts_entries, accounts_holds, accounts_either;
    int64_t payouts, clearing, approvals_unexecuted, dangling;
};

static void wallet(struct ledger *l, char *id, size_t cap, int64_t funds) {
    rf_rand_id("wallet", id, cap);
    struct rf_account_req req = {.id = id, .currency = "USD", .kind = RF_ACCOUNT_USER};
    struct rf_account_res res;
    assert_int_equal(rf_account_create(l->fx.db, &req, &res, NULL), RF_OK);
    rf_account_clear(&res.account);
    struct rf_transfer_res t;
    assert_int_equal(rf_credit_apply(l->fx.db, id, funds, "seed", &t, NULL), RF_OK);
    rf_transfer_clear(&t.transfer);
}

static void transfer(struct ledger *l, int64_t amount, bool pending, char *id_out) {
    struct rf_transfer_req req = {.debit_account = l->a, .credit_account = l->b,
                                  .amount_minor = amount, .currency = "USD",
                                  .pending = pending};
    struct rf_transfer_res t;
    assert_int_equal(rf_transfer_create(l->fx.db, &req, &t, NULL), RF_OK);
    snprintf(id_out, RF_ID_BYTES, "%s", t.transfer.id);
    rf_transfer_clear(&t.transfer);
}

/* Creates an approval for action (a printf format over the wallets' ids)
 * and, when approve, approves it; result_key names the effect's id in the
 * result, copied to effect_out. */
static void approval(struct ledger *l, const char *action, bool approve, const char *result_key,
                     char *id_out, char *effect_out) {
    char json[512];
    snprintf(json, sizeof json, action, l->a, l->b);
    struct rf_approval_req req = {.action_json = json, .requested_by = "alice"};
    struct rf_approval ap, done;
    char detail[256];
    assert_int_equal(rf_approval_create(l->fx.db, &req, &ap, NULL, detail, sizeof detail), RF_OK);
    if (id_out) snprintf(id_out, RF_ID_BYTES, "%s", ap.id);
    if (approve) {
        assert_int_equal(rf_approval_approve(l->fx.db, ap.id, "bob", 0, &done, NULL), RF_OK);
        const char *at = strstr(done.result_json, result_key);
        assert_non_null(at);
        at += strlen(result_key) + 3; /* past `key":"` */
        size_t n = strcspn(at, "\"");
        assert_true(n > 0 && n < RF_ID_BYTES);
        memcpy(effect_out, at, n);
        effect_out[n] = '\0';
        rf_approval_clear(&done);
    }
    rf_approval_clear(&ap);
}

static void expect(struct ledger *l, const struct want *w);
static const struct want CLEAN = {0};

/* The ledger above, checked clean before any test breaks it. */
static void build(struct ledger *l) {
    memset(l, 0, sizeof *l);
    assert_int_equal(rf_core_fixture_open_fresh(&l->fx, NULL), 0);
    wallet(l, l->a, sizeof l->a, 1000);
    wallet(l, l->b, sizeof l->b, 50);
    transfer(l, 40, false, l->transfer);
    transfer(l, 25, true, l->hold);
    char ignored[RF_ID_BYTES];
    approval(l, "{\"type\":\"transfer\",\"debit_account\":\"%s\",\"credit_account\":\"%s\","
                "\"amount_minor\":7,\"currency\":\"USD\"}",
             true, "transfer_id", NULL, ignored);
    approval(l, "{\"type\":\"payout\",\"account\":\"%s\",\"amount_minor\":30,\"currency\":\"USD\","
                "\"destination\":{\"provider\":\"stripe\",\"ref\":\"acct_%.8s\"}}",
             true, "payout_id", NULL, l->payout);
    approval(l, "{\"type\":\"entitlement_grant\",\"user_id\":\"%s\",\"key\":\"pro\"}", false, NULL,
             l->pending_approval, NULL);
    expect(l, &CLEAN);
}

static void destroy(struct ledger *l) {
    rf_core_fixture_close(&l->fx);
}

/* rf_ledger_check, rf_reconcile and `racefree reconcile` all report exactly w. */
static void expect(struct ledger *l, const struct want *w) {
    struct rf_ledger_check c;
    assert_int_equal(rf_ledger_check(l->fx.db, &c), RF_OK);
    /* funding:USD, A, B and payouts:USD; two approved approvals */
    assert_int_equal(c.currencies, 1);
    assert_int_equal(c.accounts, 4);
    assert_int_equal(c.payouts, 1);
    assert_int_equal(c.approvals, 2 + w->approvals_unexecuted);
    assert_int_equal(c.currencies_unbalanced, w->currencies_unbalanced);
    assert_int_equal(c.accounts_entries_mismatched, w->accounts_entries);
    assert_int_equal(c.accounts_holds_mismatched, w->accounts_holds);
    assert_int_equal(c.accounts_mismatched, w->accounts_either);
    assert_int_equal(c.payouts_mismatched, w->payouts);
    assert_int_equal(c.clearing_unowned, w->clearing);
    assert_int_equal(c.approvals_unexecuted, w->approvals_unexecuted);
    assert_int_equal(c.rows_dangling, w->dangling);
    bool clean = !memcmp(w, &(struct want){0}, sizeof *w);
    assert_int_equal(c.clean, clean);
    /* rf_reconcile and `racefree reconcile` count the same rows by name */
    const struct reconcile_want all[] = {
        {"currency_balances", w->currencies_unbalanced, {NULL}},
        {"account_entries", w->accounts_entries, {NULL}},
        {"account_holds", w->accounts_holds, {NULL}},
        {"payout_holds", w->payouts, {NULL}},
        {"payout_clearing", w->clearing, {NULL}},
        {"approvals_executed", w->approvals_unexecuted, {NULL}},
        {"references", w->dangling, {NULL}},
    };
    struct reconcile_want found[sizeof all / sizeof all[0]];
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i].violations) found[n++] = all[i];
    reconcile_expect(l->fx.db, l->fx.url, found, n);
}

/* A balance changed without an entry: moved from A to B (each currency
 * still sums to zero), then added to A alone (the currency no longer does). */
static void test_balance_changed_without_entry(void **state) {
    (void)state;
    struct ledger l;
    build(&l);
    static const char move[] = "UPDATE accounts SET posted = posted +"
                               " CASE WHEN id = $1 THEN -5 ELSE 5 END WHERE id IN ($1, $2)";
    tamper(l.fx.url, move, l.a, l.b, 2);
    expect(&l, &(struct want){.accounts_entries = 2, .accounts_either = 2});
    tamper(l.fx.url, move, l.b, l.a, 2);
    expect(&l, &CLEAN);
    tamper(l.fx.url, "UPDATE accounts SET posted = posted + 5 WHERE id = $1", l.a, NULL, 1);
    expect(&l, &(struct want){.accounts_entries = 1, .accounts_either = 1,
                              .currencies_unbalanced = 1});
    tamper(l.fx.url, "UPDATE accounts SET posted = posted - 5 WHERE id = $1", l.a, NULL, 1);
    expect(&l, &CLEAN);
    destroy(&l);
}

/* An entry's amount changed, then the entry deleted (kept aside and put
 * back to repair). */
static void test_entry_changed_or_deleted(void **state) {
    (void)state;
    struct ledger l;
    build(&l);
    static const char where[] = " WHERE account_id = $1 AND transfer_id = $2";
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE entries SET amount_minor = amount_minor + 3%s", where);
    tamper(l.fx.url, sql, l.b, l.transfer, 1);
    expect(&l, &(struct want){.accounts_entries = 1, .accounts_either = 1});
    snprintf(sql, sizeof sql, "UPDATE entries SET amount_minor = amount_minor - 3%s", where);
    tamper(l.fx.url, sql, l.b, l.transfer, 1);
    expect(&l, &CLEAN);
    snprintf(sql, sizeof sql, "CREATE TABLE kept AS SELECT * FROM entries%s", where);
    tamper(l.fx.url, sql, l.b, l.transfer, -1);
    snprintf(sql, sizeof sql, "DELETE FROM entries%s", where);
    tamper(l.fx.url, sql, l.b, l.transfer, 1);
    expect(&l, &(struct want){.accounts_entries = 1, .accounts_either = 1});
    tamper(l.fx.url, "INSERT INTO entries SELECT * FROM kept", NULL, NULL, 1);
    expect(&l, &CLEAN);
    destroy(&l);
}

/* Per-currency balances not summing to zero, with every account still
 * matching its entries: A's balance and the entry behind it both grew. */
static void test_currency_does_not_sum_to_zero(void **state) {
    (void)state;
    struct ledger l;
    build(&l);
    /* B's credit entry for the transfer, and B's balance with it */
    tamper(l.fx.url, "UPDATE entries SET amount_minor = amount_minor + 9"
                  " WHERE account_id = $1 AND transfer_id = $2", l.b, l.transfer, 1);
    tamper(l.fx.url, "UPDATE accounts SET posted = posted + 9 WHERE id = $1", l.b, NULL, 1);
    expect(&l, &(struct want){.currencies_unbalanced = 1});
    tamper(l.fx.url, "UPDATE entries SET amount_minor = amount_minor - 9"
                  " WHERE account_id = $1 AND transfer_id = $2", l.b, l.transfer, 1);
    tamper(l.fx.url, "UPDATE accounts SET posted = posted - 9 WHERE id = $1", l.b, NULL, 1);
    expect(&l, &CLEAN);
    destroy(&l);
}

/* An account's pending totals not matching its open holds: the total
 * changed, the hold's amount changed, the hold voided behind its back. */
static void test_pending_totals_not_open_holds(void **state) {
    (void)state;
    struct ledger l;
    build(&l);
    tamper(l.fx.url, "UPDATE accounts SET pending_debits = pending_debits + 3 WHERE id = $1", l.a,
           NULL, 1);
    expect(&l, &(struct want){.accounts_holds = 1, .accounts_either = 1});
    tamper(l.fx.url, "UPDATE accounts SET pending_debits = pending_debits - 3 WHERE id = $1", l.a,
           NULL, 1);
    expect(&l, &CLEAN);
    /* A's pending debits and B's pending credits both disagree now */
    tamper(l.fx.url, "UPDATE transfers SET amount_minor = amount_minor + 3 WHERE id = $1", l.hold,
           NULL, 1);
    expect(&l, &(struct want){.accounts_holds = 2, .accounts_either = 2});
    tamper(l.fx.url, "UPDATE transfers SET amount_minor = amount_minor - 3 WHERE id = $1", l.hold,
           NULL, 1);
    expect(&l, &CLEAN);
    tamper(l.fx.url, "UPDATE transfers SET status = 'voided' WHERE id = $1", l.hold, NULL, 1);
    expect(&l, &(struct want){.accounts_holds = 2, .accounts_either = 2});
    tamper(l.fx.url, "UPDATE transfers SET status = 'pending' WHERE id = $1", l.hold, NULL, 1);
    expect(&l, &CLEAN);
    destroy(&l);
}

/* A payout marked paid while its hold is still pending (test_payouts covers
 * failed-while-pending, another amount and an unowned clearing transfer). */
static void test_payout_paid_hold_pending(void **state) {
    (void)state;
    struct ledger l;
    build(&l);
    tamper(l.fx.url, "UPDATE payouts SET status = 'paid', provider_payout_id = 'po_x' WHERE id = $1",
           l.payout, NULL, 1);
    expect(&l, &(struct want){.payouts = 1});
    tamper(l.fx.url, "UPDATE payouts SET status = 'pending', provider_payout_id = NULL"
                  " WHERE id = $1", l.payout, NULL, 1);
    expect(&l, &CLEAN);
    destroy(&l);
}

/* An approval marked approved and executed whose action never ran: the
 * entitlement its result names was never granted. The other way round, a
 * rejected approval whose action ran, cannot be stored: the schema's CHECKs
 * refuse a rejected row that keeps its execution (and a rejected row never
 * names an effect, so there is nothing more for the checker to read). */
static void test_approval_executed_is_its_action_run(void **state) {
    (void)state;
    struct ledger l;
    build(&l);
    tamper(l.fx.url, "UPDATE approvals SET status = 'approved', approved_by = 'bob',"
                  " approved_at = 1, executed_at = 1, version = version + 1, result ="
                  " '{\"created\":true,\"entitlement_id\":\"ent_never\","
                  "\"type\":\"entitlement_grant\",\"version\":1}' WHERE id = $1",
           l.pending_approval, NULL, 1);
    expect(&l, &(struct want){.approvals_unexecuted = 1});
    tamper(l.fx.url, "UPDATE approvals SET status = 'pending', approved_by = NULL,"
                  " approved_at = NULL, executed_at = NULL, result = NULL WHERE id = $1",
           l.pending_approval, NULL, 1);
    expect(&l, &CLEAN);
    assert_int_not_equal(tamper_try(l.fx.url, "UPDATE approvals SET status = 'rejected',"
                                           " rejected_by = 'carol', rejected_at = 1"
                                           " WHERE status = 'approved'",
                                    NULL, NULL, NULL),
                         RF_OK);
    expect(&l, &CLEAN);
    destroy(&l);
}

/* A reference that names no row: an entry's transfer, then a transfer's
 * debit account. SQLite's writer does not enforce the schema's REFERENCES
 * (the flows write the referenced row first), so the checker is where a
 * dangling one shows; on PostgreSQL the foreign keys refuse the change. */
static void test_reference_names_no_row(void **state) {
    (void)state;
    struct ledger l;
    build(&l);
    static const char entry_gone[] = "UPDATE entries SET transfer_id = 'gone'"
                                     " WHERE account_id = $1 AND transfer_id = $2";
    int64_t rows = 0;
    rf_err err = tamper_try(l.fx.url, entry_gone, l.b, l.transfer, &rows);
    if (strncmp(l.fx.url, "sqlite:", 7) != 0) {
        assert_int_equal(err, RF_ERR_CONFLICT); /* PostgreSQL: the foreign key */
        expect(&l, &CLEAN);
        destroy(&l);
        return;
    }
    assert_int_equal(err, RF_OK);
    assert_int_equal(rows, 1);
    expect(&l, &(struct want){.dangling = 1});
    tamper(l.fx.url, "UPDATE entries SET transfer_id = $2"
                  " WHERE account_id = $1 AND transfer_id = 'gone'", l.b, l.transfer, 1);
    expect(&l, &CLEAN);
    tamper(l.fx.url, "UPDATE transfers SET debit_account = 'nobody' WHERE id = $1", l.transfer,
           NULL, 1);
    expect(&l, &(struct want){.dangling = 1});
    tamper(l.fx.url, "UPDATE transfers SET debit_account = $2 WHERE id = $1", l.transfer, l.a, 1);
    expect(&l, &CLEAN);
    destroy(&l);
}

/* The approvals are read a page at a time: a violation past the first page
 * (300 copies of the approved transfer's approval, then one whose
 * entitlement was never granted, last in id order) is still found. */
static void test_approval_past_the_first_page(void **state) {
    (void)state;
    struct ledger l;
    build(&l);
    static const char copy[] =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)"
        " INSERT INTO approvals (id, status, action_type, action, requested_by,"
        " require_distinct_approver, approved_by, approved_at, executed_at, result,"
        " created_at, updated_at, version) SELECT 'copy_' || CAST(n.i AS TEXT), status,"
        " action_type, action, requested_by, require_distinct_approver, approved_by,"
        " approved_at, executed_at, result, created_at, updated_at, version"
        " FROM approvals, n WHERE status = 'approved' AND action_type = 'transfer'";
    tamper(l.fx.url, copy, NULL, NULL, 300);
    tamper(l.fx.url, "UPDATE approvals SET id = 'zz_last', status = 'approved',"
                  " approved_by = 'bob', approved_at = 1, executed_at = 1, result ="
                  " '{\"entitlement_id\":\"ent_never\",\"type\":\"entitlement_grant\"}'"
                  " WHERE id = $1", l.pending_approval, NULL, 1);
    struct rf_ledger_check c;
    assert_int_equal(rf_ledger_check(l.fx.db, &c), RF_OK);
    assert_true(RF_CHECK_PAGE_ROWS < 2 + 300);
    assert_int_equal(c.approvals, 2 + 300 + 1);
    assert_int_equal(c.approvals_unexecuted, 1);
    assert_false(c.clean);
    /* reconcile reads it in SQL, no pages; it also sees the 300 copies for
     * what they are: 301 approvals naming one transfer, ran once for all */
    reconcile_reports(l.fx.db, l.fx.url, "approvals_executed", 301 + 1);
    tamper(l.fx.url, "DELETE FROM approvals WHERE id = 'zz_last'", NULL, NULL, 1);
    assert_int_equal(rf_ledger_check(l.fx.db, &c), RF_OK);
    assert_int_equal(c.approvals, 2 + 300);
    assert_true(c.clean);
    reconcile_reports(l.fx.db, l.fx.url, "approvals_executed", 301);
    destroy(&l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_balance_changed_without_entry),
        cmocka_unit_test(test_entry_changed_or_deleted),
        cmocka_unit_test(test_currency_does_not_sum_to_zero),
        cmocka_unit_test(test_pending_totals_not_open_holds),
        cmocka_unit_test(test_payout_paid_hold_pending),
        cmocka_unit_test(test_approval_executed_is_its_action_run),
        cmocka_unit_test(test_approval_past_the_first_page),
        cmocka_unit_test(test_reference_names_no_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
