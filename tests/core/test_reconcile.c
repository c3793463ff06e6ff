/*
 * test_reconcile.c - every check of rf_reconcile proven able to fail: the
 * tests share a store of their own holding a clean ledger made by the
 * library (a funded wallet, a payout); each writes rows straight into it
 * with plain SQL (as a bug, a manual fix or a restored backup would),
 * requires rf_reconcile and `racefree reconcile --json` (exit 1) to report
 * exactly that violation, with the rows' ids, every other check clean, and
 * undoes its rows. Also what reconcile must NOT call drift (a batch payout
 * beside a POST /v1/payouts one; a store a writer is changing while it
 * reads) and its exit 2 when it cannot run. test_reconcile_memory: its
 * memory on 200,000 entries. (test_checker covers the ledger's checks
 * against rf_ledger_check too.)
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
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

struct store {
    struct rf_core_fixture fx;
    char wallet[64];
    char payout[RF_ID_BYTES], hold[RF_ID_BYTES];
};

static bool is_sqlite(const struct store *s) { return strncmp(s->fx.url, "sqlite:", 7) == 0; }

static void payout(struct store *s, int64_t amount, char *id, char *hold) {
    struct rf_payout_req req = {.account = s->wallet, .amount_minor = amount, .currency = "USD",
                                .provider = "stripe", .destination_ref = "acct_1"};
    struct rf_payout p;
    assert_int_equal(rf_payout_create(s->fx.db, &req, &p, NULL), RF_OK);
    snprintf(id, RF_ID_BYTES, "%s", p.id);
    if (hold) snprintf(hold, RF_ID_BYTES, "%s", p.hold_transfer_id);
    rf_payout_clear(&p);
}

/* One store for the file, built once (a fresh PostgreSQL database costs
 * seconds) and checked clean; every test undoes what it planted and checks
 * the store clean again (undo), so the next one starts clean. */
static struct store g_store;
static bool g_built;

static void build(struct store *s) {
    if (!g_built) {
        assert_int_equal(rf_core_fixture_open_fresh(&s->fx, NULL), 0);
        rf_rand_id("wallet", s->wallet, sizeof s->wallet);
        struct rf_account_req req = {.id = s->wallet, .currency = "USD",
                                     .kind = RF_ACCOUNT_USER};
        struct rf_account_res res;
        assert_int_equal(rf_account_create(s->fx.db, &req, &res, NULL), RF_OK);
        rf_account_clear(&res.account);
        struct rf_transfer_res t;
        assert_int_equal(rf_credit_apply(s->fx.db, s->wallet, 1000, "seed", &t, NULL), RF_OK);
        rf_transfer_clear(&t.transfer);
        payout(s, 100, s->payout, s->hold);
        g_built = true;
        reconcile_expect(s->fx.db, s->fx.url, NULL, 0);
    }
}

static int teardown(void **state) {
    (void)state;
    if (g_built) rf_core_fixture_close(&g_store.fx);
    return 0;
}

/* Runs each statement (no parameters) to undo a test's rows, then requires
 * the store clean again. */
static void undo(struct store *s, const char *const *sql) {
    for (int i = 0; sql[i]; i++) tamper(s->fx.url, sql[i], NULL, NULL, -1);
    reconcile_expect(s->fx.db, s->fx.url, NULL, 0);
}
#define UNDO(s, ...) undo(s, (const char *const[]){__VA_ARGS__, NULL})

/* An example row as reconcile_want names it: two ids and a space. */
#define ROW_BYTES (3 * RF_ID_BYTES)
#define RECONCILE_LIVE_RUNS 20    /* reconciles while the writer runs */
#define RECONCILE_WRITES_MAX 2000 /* the writer's moves, at most (it stops when told) */
#define ONE(check, n, ...) (const struct reconcile_want[]){{check, n, {__VA_ARGS__, NULL}}}, 1

/* An account of another currency with a balance and no entry: its currency
 * no longer sums to zero and its balance is not its entries'. */
static void test_currency_and_entries(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    tamper(s->fx.url, "INSERT INTO accounts (id, currency, kind, allow_negative, posted, version,"
                     " created_at, updated_at) VALUES ('eur_wallet', 'EUR', 'user', 0, 5, 1, 1, 1)",
           NULL, NULL, 1);
    reconcile_expect(s->fx.db, s->fx.url, (const struct reconcile_want[]){
        {"currency_balances", 1, {"EUR"}}, {"account_entries", 1, {"eur_wallet"}}}, 2);
    UNDO(s, "DELETE FROM accounts WHERE id = 'eur_wallet'");
}

/* Balances whose halves overflow a naive SQL SUM (two accounts at the
 * int64 limits) still sum exactly: +max and -max is zero, +max and -max+1
 * is not. */
static void test_currency_sum_is_exact(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    static const char big[] = "INSERT INTO accounts (id, currency, kind, allow_negative, posted,"
                              " version, created_at, updated_at) VALUES ($1, 'JPY', 'system', 1,"
                              " CAST($2 AS BIGINT), 1, 1, 1)";
    tamper(s->fx.url, big, "jpy_a", "9223372036854775807", 1);
    tamper(s->fx.url, big, "jpy_b", "9223372036854775807", 1);
    tamper(s->fx.url, big, "jpy_c", "-9223372036854775807", 1);
    tamper(s->fx.url, big, "jpy_d", "-9223372036854775807", 1);
    const struct reconcile_want entries = {"account_entries", 4, {"jpy_a", "jpy_d"}};
    reconcile_expect(s->fx.db, s->fx.url, &entries, 1);
    tamper(s->fx.url, "UPDATE accounts SET posted = posted + 1 WHERE id = 'jpy_d'", NULL, NULL, 1);
    reconcile_expect(s->fx.db, s->fx.url, (const struct reconcile_want[]){
        {"currency_balances", 1, {"JPY"}}, entries}, 2);
    UNDO(s, "DELETE FROM accounts WHERE id LIKE 'jpy_%'");
}

static void test_account_holds(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    tamper(s->fx.url, "UPDATE accounts SET pending_credits = 7 WHERE id = $1", s->wallet, NULL, 1);
    reconcile_expect(s->fx.db, s->fx.url, ONE("account_holds", 1, s->wallet));
    UNDO(s, "UPDATE accounts SET pending_credits = 0 WHERE kind = 'user'");
}

/* The payout row says paid while its hold is pending; its row names the
 * payout and the hold. */
static void test_payout_holds(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    tamper(s->fx.url, "UPDATE payouts SET status = 'paid', provider_payout_id = 'po_x' WHERE id = $1",
           s->payout, NULL, 1);
    char row[ROW_BYTES];
    snprintf(row, sizeof row, "%.120s %.120s", s->payout, s->hold);
    reconcile_expect(s->fx.db, s->fx.url, ONE("payout_holds", 1, row));
    UNDO(s, "UPDATE payouts SET status = 'pending', provider_payout_id = NULL"
            " WHERE provider_payout_id = 'po_x'");
}

static void test_payout_clearing(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    /* a posted move into payouts:USD with no payout, its entries and
     * balances consistent so only this check sees it */
    tamper(s->fx.url, "INSERT INTO transfers (id, debit_account, credit_account, amount_minor,"
                     " posted_amount, currency, status, was_pending, created_at, version)"
                     " VALUES ('tr_stray', $1, 'payouts:USD', 3, 3, 'USD', 'posted', 0, 1, 1)",
           s->wallet, NULL, 1);
    tamper(s->fx.url, "INSERT INTO entries (account_id, seq, transfer_id, side, amount_minor,"
                     " balance_after, created_at) VALUES ($1, 1000, 'tr_stray', 'debit', 3, 0, 1),"
                     " ('payouts:USD', 1000, 'tr_stray', 'credit', 3, 0, 1)", s->wallet, NULL, 2);
    tamper(s->fx.url, "UPDATE accounts SET posted = posted + CASE WHEN id = $1 THEN -3 ELSE 3 END"
                     " WHERE id IN ($1, 'payouts:USD')", s->wallet, NULL, 2);
    reconcile_expect(s->fx.db, s->fx.url, ONE("payout_clearing", 1, "tr_stray"));
    UNDO(s, "UPDATE accounts SET posted = posted + CASE WHEN id = 'payouts:USD' THEN -3 ELSE 3"
            " END WHERE id IN (SELECT debit_account FROM transfers WHERE id = 'tr_stray')"
            " OR id = 'payouts:USD'",
         "DELETE FROM entries WHERE transfer_id = 'tr_stray'",
         "DELETE FROM transfers WHERE id = 'tr_stray'");
}

static void batch_item(struct store *s, const char *batch, const char *payout_id) {
    char sql[512];
    snprintf(sql, sizeof sql, "INSERT INTO payout_batches (id, run_key, currency, min_amount_minor,"
             " provider, status, scan_cursor, wallets_scanned, payouts_created, skipped_pending,"
             " total_minor, chunks, lease_token, created_at, updated_at, version)"
             " SELECT '%s', 'run_%s', 'USD', 1, 'batch', 'completed', '', 1, 1, 0, 100, 1, 1, 1,"
             " 1, 1 WHERE NOT EXISTS (SELECT 1 FROM payout_batches WHERE id = '%s')",
             batch, batch, batch);
    tamper(s->fx.url, sql, NULL, NULL, -1);
    tamper(s->fx.url, "INSERT INTO payout_batch_items (batch_id, account_id, payout_id,"
                      " amount_minor, created_at) VALUES ($1, (SELECT account_id FROM payouts"
                      " WHERE id = $2), $2, 100, 1)", batch, payout_id, 1);
}

/* The rule the store promises: a batch never puts a second payout in flight
 * for a wallet. One batch payout beside a POST /v1/payouts one (here the
 * payout build() made) is legal (the POST may have come later, and that
 * endpoint allows several); two batch payouts both pending are not. */
static void test_payout_batch_in_flight(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    char first[RF_ID_BYTES], second[RF_ID_BYTES];
    payout(s, 100, first, NULL);
    payout(s, 100, second, NULL);
    batch_item(s, "batch_1", first);
    reconcile_expect(s->fx.db, s->fx.url, NULL, 0); /* one batch payout, one POST payout */
    batch_item(s, "batch_2", second);
    char a[ROW_BYTES], b[ROW_BYTES];
    snprintf(a, sizeof a, "%.120s %.120s", s->wallet, first);
    snprintf(b, sizeof b, "%.120s %.120s", s->wallet, second);
    reconcile_expect(s->fx.db, s->fx.url, ONE("payout_batch_in_flight", 2, a, b));
    /* the earlier one paid out: one in flight again */
    struct rf_payout p;
    assert_int_equal(rf_payout_attempt(s->fx.db, first, &p, NULL), RF_OK);
    rf_payout_clear(&p);
    assert_int_equal(rf_payout_succeeded(s->fx.db, first, "po_1", &p, NULL), RF_OK);
    rf_payout_clear(&p);
    reconcile_expect(s->fx.db, s->fx.url, NULL, 0);
    UNDO(s, "DELETE FROM payout_batch_items", "DELETE FROM payout_batches");
}

/* approved approvals: an execution that never ran, two approvals naming one
 * payout, and (PostgreSQL, with the schema's CHECKs dropped; SQLite cannot
 * drop a table's CHECK) a cancelled approval carrying an execution. */
static void test_approvals_executed(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    static const char ins[] =
        "INSERT INTO approvals (id, status, action_type, action, requested_by,"
        " require_distinct_approver, approved_by, approved_at, executed_at, result, created_at,"
        " updated_at, version) VALUES ($1, 'approved', 'payout', '{}', 'alice', 0, 'bob', 1, 1,"
        " '{\"type\":\"payout\",\"payout_id\":\"' || $2 || '\"}', 1, 1, 2)";
    tamper(s->fx.url, ins, "ap_ran", s->payout, 1);
    reconcile_expect(s->fx.db, s->fx.url, NULL, 0);
    tamper(s->fx.url, ins, "ap_never", "po_never", 1);
    reconcile_expect(s->fx.db, s->fx.url, ONE("approvals_executed", 1, "ap_never po_never"));
    tamper(s->fx.url, "DELETE FROM approvals WHERE id = 'ap_never'", NULL, NULL, 1);
    tamper(s->fx.url, ins, "ap_twice", s->payout, 1);
    char a[ROW_BYTES], b[ROW_BYTES];
    snprintf(a, sizeof a, "ap_ran %.120s", s->payout);
    snprintf(b, sizeof b, "ap_twice %.120s", s->payout);
    reconcile_expect(s->fx.db, s->fx.url, ONE("approvals_executed", 2, a, b));
    tamper(s->fx.url, "DELETE FROM approvals WHERE id = 'ap_twice'", NULL, NULL, 1);
    if (!is_sqlite(s)) {
        tamper(s->fx.url, "DO $$DECLARE c text; BEGIN FOR c IN SELECT conname FROM pg_constraint"
                         " WHERE conrelid = 'approvals'::regclass AND contype = 'c' LOOP EXECUTE"
                         " 'ALTER TABLE approvals DROP CONSTRAINT ' || quote_ident(c);"
                         " END LOOP; END$$", NULL, NULL, -1);
        tamper(s->fx.url, "UPDATE approvals SET status = 'cancelled', cancelled_at = 2"
                         " WHERE id = 'ap_ran'", NULL, NULL, 1);
        reconcile_expect(s->fx.db, s->fx.url, ONE("approvals_executed", 1, "ap_ran "));
    }
    UNDO(s, "DELETE FROM approvals");
}

static const char CHECKOUT[] =
    "INSERT INTO checkouts (id, user_id, currency, amount_minor, provider, provider_ref, status,"
    " items, expires_at, created_at, updated_at, version) VALUES ($1, 'u1', 'USD', 500,"
    " 'stripe', $1, $2, '[]', 9, 1, 1, 1)";

/* A fulfilled checkout whose entitlement item was never granted, and a
 * grant that names a checkout without its item. */
static void test_checkout_effects(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    tamper(s->fx.url, CHECKOUT, "ck_done", "fulfilled", 1);
    tamper(s->fx.url, "INSERT INTO checkout_items (checkout_id, idx, type, entitlement_key)"
                     " VALUES ('ck_done', 0, 'entitlement', 'pro')", NULL, NULL, 1);
    reconcile_expect(s->fx.db, s->fx.url, ONE("checkout_effects", 1, "ck_done 0"));
    tamper(s->fx.url, "INSERT INTO entitlements (id, user_id, entitlement_key, status, source,"
                     " granted_at, updated_at, version) VALUES ('ent_1', 'u1', 'pro', 'active',"
                     " 'checkout:ck_done', 1, 1, 1)", NULL, NULL, 1);
    tamper(s->fx.url, "UPDATE checkout_items SET entitlement_id = 'ent_1'", NULL, NULL, 1);
    reconcile_expect(s->fx.db, s->fx.url, NULL, 0);
    tamper(s->fx.url, "INSERT INTO entitlements (id, user_id, entitlement_key, status, source,"
                     " granted_at, updated_at, version) VALUES ('ent_2', 'u2', 'pro', 'active',"
                     " 'checkout:ck_other', 1, 1, 1)", NULL, NULL, 1);
    reconcile_expect(s->fx.db, s->fx.url, ONE("checkout_effects", 1, " ent_2"));
    UNDO(s, "DELETE FROM checkout_items", "DELETE FROM entitlements", "DELETE FROM checkouts");
}

static const char EVENT[] =
    "INSERT INTO webhook_events (id, provider, event_id, type, status, effect, checkout_id,"
    " event_created_at, received_at) VALUES ($1, 'stripe', $1, 'checkout.paid', 'processed',"
    " 'paid', $2, 1, 1)";

/* A processed paid event whose checkout is still pending, then two
 * processed paid events of one fulfilled checkout. */
static void test_webhook_effects(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    tamper(s->fx.url, CHECKOUT, "ck_pending", "pending", 1);
    tamper(s->fx.url, EVENT, "ev_1", "ck_pending", 1);
    reconcile_expect(s->fx.db, s->fx.url, ONE("webhook_effects", 1, "ev_1 ck_pending"));
    tamper(s->fx.url, "UPDATE checkouts SET status = 'fulfilled'", NULL, NULL, 1);
    reconcile_expect(s->fx.db, s->fx.url, NULL, 0);
    tamper(s->fx.url, EVENT, "ev_2", "ck_pending", 1);
    reconcile_expect(s->fx.db, s->fx.url,
                     ONE("webhook_effects", 2, "ev_1 ck_pending", "ev_2 ck_pending"));
    UNDO(s, "DELETE FROM webhook_events", "DELETE FROM checkouts");
}

static const char NOTE[] =
    "INSERT INTO notifications (id, user_id, kind, title, body, announcement_id, dedupe_key,"
    " read_at, created_at, updated_at) VALUES ($1, $2, 'k', 't', 'b', NULL, NULL, NULL, 1, 1)";

/* A delivered recipient whose notification is missing; a notification of
 * the announcement no recipient delivered; a finished fan-out to listed ids
 * with a recipient short. */
static void test_announcement_recipients(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    tamper(s->fx.url, "INSERT INTO announcements (id, title, body, audience_kind, audience,"
                     " audience_size, send_at, fanout_done_at, job_id, created_at, updated_at)"
                     " VALUES ('ann_1', 't', 'b', 'user_ids', '[\"u1\",\"u2\"]', 2, 1, 2, 'job_x',"
                     " 1, 1)", NULL, NULL, 1);
    static const char recipient[] =
        "INSERT INTO announcement_recipients (announcement_id, user_id, status, notification_id,"
        " updated_at) VALUES ('ann_1', $1, 'delivered', $2, 1)";
    tamper(s->fx.url, recipient, "u1", "n_1", 1);
    tamper(s->fx.url, NOTE, "n_1", "u1", 1);
    tamper(s->fx.url, "UPDATE notifications SET announcement_id = 'ann_1'", NULL, NULL, 1);
    reconcile_expect(s->fx.db, s->fx.url, ONE("announcement_recipients", 1, "ann_1 "));
    tamper(s->fx.url, recipient, "u2", "n_2", 1);
    reconcile_expect(s->fx.db, s->fx.url, ONE("announcement_recipients", 1, "ann_1 u2"));
    tamper(s->fx.url, NOTE, "n_2", "u2", 1);
    tamper(s->fx.url, "UPDATE notifications SET announcement_id = 'ann_1' WHERE id = 'n_2'", NULL,
           NULL, 1);
    reconcile_expect(s->fx.db, s->fx.url, NULL, 0);
    tamper(s->fx.url, NOTE, "n_3", "u3", 1);
    tamper(s->fx.url, "UPDATE notifications SET announcement_id = 'ann_1' WHERE id = 'n_3'", NULL,
           NULL, 1);
    reconcile_expect(s->fx.db, s->fx.url, ONE("announcement_recipients", 1, "ann_1 u3"));
    UNDO(s, "DELETE FROM notifications", "DELETE FROM announcement_recipients",
         "DELETE FROM announcements");
}

static void test_notification_read_state(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    tamper(s->fx.url, NOTE, "n_1", "u1", 1);
    tamper(s->fx.url, "UPDATE notifications SET read_at = 1", NULL, NULL, 1);
    reconcile_expect(s->fx.db, s->fx.url, NULL, 0);
    tamper(s->fx.url, "UPDATE notifications SET read_at = 5", NULL, NULL, 1);
    reconcile_expect(s->fx.db, s->fx.url, ONE("notification_read_state", 1, "n_1 u1"));
    UNDO(s, "DELETE FROM notifications");
}

/* With the partial unique index dropped (as a bad migration might), two
 * live jobs of one (queue, unique_key): reported by this check and as a
 * duplicate natural key. */
static void test_jobs_and_duplicate_keys(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    tamper(s->fx.url, "DROP INDEX jobs_unique_live", NULL, NULL, -1);
    static const char job[] =
        "INSERT INTO jobs (id, queue, kind, payload, unique_key, status, priority, run_at,"
        " max_attempts, created_at, updated_at) VALUES ($1, 'mail', 'send', '{}', 'k1', $2, 0,"
        " 1, 3, 1, 1)";
    tamper(s->fx.url, job, "job_1", "available", 1);
    tamper(s->fx.url, job, "job_2", "completed", 1);
    reconcile_expect(s->fx.db, s->fx.url, NULL, 0);
    tamper(s->fx.url, job, "job_3", "available", 1);
    reconcile_expect(s->fx.db, s->fx.url, ONE("jobs_unique_live", 1, "mail k1"));
    tamper(s->fx.url, "DELETE FROM jobs WHERE id = 'job_3'", NULL, NULL, 1);
    tamper(s->fx.url, "DROP INDEX notifications_dedupe", NULL, NULL, -1);
    tamper(s->fx.url, NOTE, "n_1", "u1", 1);
    tamper(s->fx.url, NOTE, "n_2", "u1", 1);
    tamper(s->fx.url, "UPDATE notifications SET dedupe_key = 'd1'", NULL, NULL, 2);
    reconcile_expect(s->fx.db, s->fx.url, ONE("duplicate_keys", 1, "notifications u1/d1"));
    UNDO(s, "DELETE FROM jobs", "DELETE FROM notifications");
}

/* An item naming a checkout that is not there (SQLite does not enforce the
 * REFERENCES; PostgreSQL refuses the row). */
static void test_references(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    rf_err err = tamper_try(s->fx.url, "INSERT INTO checkout_items (checkout_id, idx, type,"
                                      " entitlement_key) VALUES ('ck_gone', 0, 'entitlement',"
                                      " 'pro')", NULL, NULL, NULL);
    if (!is_sqlite(s)) {
        assert_int_equal(err, RF_ERR_CONFLICT);
        reconcile_expect(s->fx.db, s->fx.url, NULL, 0);
    } else {
        assert_int_equal(err, RF_OK);
        reconcile_expect(s->fx.db, s->fx.url, ONE("references", 1, "checkout_items ck_gone/0"));
    }
    UNDO(s, "DELETE FROM checkout_items");
}

/* Exit 2 when it cannot run: no server at the URL, a URL of no back end, a
 * schema newer than this binary. */
static void test_cannot_run(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    char out[4096], err[4096];
    const char *refused[] = {"reconcile", "--db", "postgres://127.0.0.1:1/none",
                             NULL};
    assert_int_equal(rf_cli_run(refused, out, sizeof out, err, sizeof err, 0), 2);
    assert_string_equal(out, "");
    const char *bad[] = {"reconcile", "--json", "--db", "mysql://x", NULL};
    assert_int_equal(rf_cli_run(bad, out, sizeof out, err, sizeof err, 0), 2);
    tamper(s->fx.url, "INSERT INTO schema_version (version, name, applied_at)"
                     " VALUES (9999, 'future', 1)", NULL, NULL, 1);
    const char *newer[] = {"reconcile", "--json", "--db", s->fx.url, NULL};
    assert_int_equal(rf_cli_run(newer, out, sizeof out, err, sizeof err, 0), 2);
    assert_string_equal(out, "");
    tamper(s->fx.url, "DELETE FROM schema_version WHERE version = 9999", NULL, NULL, 1);
}

/* What a writer does while reconcile reads: moves between two wallets, each
 * a hold then its post or void. */
struct writer {
    struct store *s;
    char other[64];
    atomic_bool stop;
    atomic_int rounds;
};

static void *write_loop(void *arg) {
    struct writer *w = arg;
    for (int i = 0; i < RECONCILE_WRITES_MAX && !atomic_load(&w->stop); i++) {
        struct rf_transfer_req req = {.debit_account = w->s->wallet, .credit_account = w->other,
                                      .amount_minor = 1, .currency = "USD", .pending = true};
        struct rf_transfer_res t, done;
        if (rf_transfer_create(w->s->fx.db, &req, &t, NULL) != RF_OK) return "create";
        rf_err err = i % 2 ? rf_transfer_void(w->s->fx.db, t.transfer.id, &done, NULL)
                           : rf_transfer_post(w->s->fx.db, t.transfer.id, 0, &done, NULL);
        rf_transfer_clear(&t.transfer);
        if (err != RF_OK) return "resolve";
        rf_transfer_clear(&done.transfer);
        atomic_store(&w->rounds, i + 1);
    }
    return NULL;
}

/* Reconcile on a live store: run again and again while a writer moves
 * money, it never reports drift that is not there, and the writer keeps
 * committing meanwhile (its moves all succeed). */
static void test_live_store(void **state) {
    (void)state;
    struct store *s = &g_store;
    build(s);
    static struct writer w;
    w.s = s;
    atomic_store(&w.stop, false);
    atomic_store(&w.rounds, 0);
    rf_rand_id("other", w.other, sizeof w.other);
    struct rf_account_req req = {.id = w.other, .currency = "USD", .kind = RF_ACCOUNT_USER};
    struct rf_account_res res;
    assert_int_equal(rf_account_create(s->fx.db, &req, &res, NULL), RF_OK);
    rf_account_clear(&res.account);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, write_loop, &w), 0);
    for (int i = 0; i < RECONCILE_LIVE_RUNS; i++) {
        struct rf_reconcile r;
        assert_int_equal(rf_reconcile(s->fx.db, NULL, &r), RF_OK);
        for (int j = 0; j < r.n; j++)
            if (r.checks[j].violations)
                fail_msg("live store: %s reported %lld", r.checks[j].name,
                         (long long)r.checks[j].violations);
        rf_reconcile_clear(&r);
    }
    atomic_store(&w.stop, true);
    void *failed = NULL;
    assert_int_equal(pthread_join(th, &failed), 0);
    if (failed) fail_msg("the writer's %s failed", (const char *)failed);
    assert_true(atomic_load(&w.rounds) > 0);
    reconcile_expect(s->fx.db, s->fx.url, NULL, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_currency_and_entries),
        cmocka_unit_test(test_currency_sum_is_exact),
        cmocka_unit_test(test_account_holds),
        cmocka_unit_test(test_payout_holds),
        cmocka_unit_test(test_payout_clearing),
        cmocka_unit_test(test_payout_batch_in_flight),
        cmocka_unit_test(test_approvals_executed),
        cmocka_unit_test(test_checkout_effects),
        cmocka_unit_test(test_webhook_effects),
        cmocka_unit_test(test_announcement_recipients),
        cmocka_unit_test(test_notification_read_state),
        cmocka_unit_test(test_jobs_and_duplicate_keys),
        cmocka_unit_test(test_references),
        cmocka_unit_test(test_live_store),
        cmocka_unit_test(test_cannot_run),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
