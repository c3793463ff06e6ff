/*
 * test_deferred.c - the deferred balance moves (core/deferred.h),
 * on the back end in RF_TEST_DB, each test on an empty store of its own so
 * funding:USD's totals are exact:
 *  - a group-committed batch of credits in which operations that registered
 *    a deferred move on funding:USD then failed (a duplicate reference) are
 *    rolled back alone: their moves are gone from the flush too;
 *  - many threads released by a barrier crediting many accounts, with
 *    payouts placing, posting and voiding holds on payouts:USD meanwhile;
 *  - a system account's int64 edge still refuses exactly the operation whose
 *    move leaves int64, alone; so does a user account's, whose credits from
 *    funding:USD are deferred too;
 *  - many transfers released together out of one account that can pay only
 *    some: exactly those succeed (a user account's debits are deferred too,
 *    and the flush's guard on its availability is exact);
 *  - the buffer keeps a slot for the release of each hold it holds;
 * and after each, every account's history is gapless where every move
 * posts, balance_after is the running balance in seq order, and the
 * ledger's invariants hold (rf_ledger_check, what reconcile runs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/ids.h"
#include "base/limits.h"
#include "core/deferred.h"
#include "core/test_hooks.h"
#include "racefree.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"

static struct rf_core_fixture fx;

static void open_fresh(void) {
    struct rf_options opt = {.test_hooks = true};
    assert_int_equal(rf_core_fixture_open_fresh(&fx, &opt), 0);
}

static void check_invariants(void) {
    struct rf_ledger_check c;
    assert_int_equal(rf_ledger_check(fx.db, &c), RF_OK);
    assert_int_equal(c.currencies_unbalanced, 0);
    assert_int_equal(c.accounts_mismatched, 0);
    assert_int_equal(c.payouts_mismatched, 0);
    assert_int_equal(c.clearing_unowned, 0);
    assert_true(c.clean);
}

static void make_account(const char *prefix, char *id, size_t cap) {
    rf_rand_id(prefix, id, cap);
    struct rf_account_req req = {.id = id, .currency = "USD", .kind = RF_ACCOUNT_USER};
    struct rf_account_res res;
    assert_int_equal(rf_account_create(fx.db, &req, &res, NULL), RF_OK);
    rf_account_clear(&res.account);
}

static int64_t posted_of(const char *id, int64_t *version) {
    struct rf_account a;
    assert_int_equal(rf_account_get(fx.db, id, &a), RF_OK);
    int64_t posted = a.posted;
    if (version) *version = a.version;
    rf_account_clear(&a);
    return posted;
}

/* Walks the account's whole history in seq order: each balance_after is the
 * one before plus the entry's signed amount (from 0: a fresh store), the
 * last is the posted balance, seq rises (by exactly 1 when every move of the
 * account posts: dense) and ends at most at the account's version. Returns
 * the number of entries. */
static int check_history(const char *id, bool dense) {
    int64_t version, posted = posted_of(id, &version);
    int64_t balance = 0, seq = 0;
    int n = 0;
    char after[RF_CURSOR_BYTES] = "";
    for (int pages = 0; pages < 1000; pages++) {
        struct rf_entry_page page;
        assert_int_equal(rf_account_entries(fx.db, id, after[0] ? after : NULL, 500, &page),
                         RF_OK);
        for (int i = 0; i < page.n; i++) {
            const struct rf_entry *e = &page.items[i];
            if (seq && dense) assert_int_equal(e->seq, seq + 1);
            assert_true(e->seq > seq && e->seq >= 2);
            balance += e->side == RF_ENTRY_CREDIT ? e->amount_minor : -e->amount_minor;
            assert_int_equal(e->balance_after, balance);
            seq = e->seq;
            n++;
        }
        snprintf(after, sizeof after, "%s", page.next);
        rf_entry_page_clear(&page);
        if (!after[0]) break;
    }
    assert_int_equal(balance, posted);
    assert_true(seq <= version);
    if (dense && n) assert_int_equal(seq, version); /* every version is an entry's */
    return n;
}

static rf_err credit(const char *id, int64_t amount) {
    struct rf_transfer_res res;
    rf_err err = rf_credit_apply(fx.db, id, amount, "test", &res, NULL);
    rf_transfer_clear(&res.transfer);
    return err;
}

static rf_err from_funding(const char *to, int64_t amount, const char *reference) {
    struct rf_transfer_req req = {.debit_account = "funding:USD", .credit_account = to,
                                  .amount_minor = amount, .currency = "USD",
                                  .reference = reference};
    struct rf_transfer_res res;
    rf_err err = rf_transfer_create(fx.db, &req, &res, NULL);
    rf_transfer_clear(&res.transfer);
    return err;
}

/* ---- a batch with operations rolled back alone --------------------------- */

#define BATCH_THREADS 24
#define BATCH_FAILING 6 /* every 4th thread: a duplicate reference */

struct batch {
    char acct[BATCH_THREADS][RF_ID_BYTES];
    rf_err err[BATCH_THREADS];
};

/* The failing ones register funding:USD's move, then meet the duplicate
 * reference at the transfer's insert: rolled back after deferring. */
static void batch_one(int idx, void *ctx) {
    struct batch *b = ctx;
    b->err[idx] = idx % 4 == 0 ? from_funding(b->acct[idx], 1000 + idx, "dup-ref")
                               : credit(b->acct[idx], 100 + idx);
}

static void test_batch_failures_rewound(void **state) {
    (void)state;
    open_fresh();
    struct batch b;
    for (int i = 0; i < BATCH_THREADS; i++) make_account("batch", b.acct[i], RF_ID_BYTES);
    assert_int_equal(from_funding(b.acct[1], 7, "dup-ref"), RF_OK); /* the reference, taken */
    rf_test_set_op_delay(fx.db, 150); /* a batch builds up behind the first */
    assert_int_equal(rf_parallel_fn(BATCH_THREADS, batch_one, &b), 0);
    rf_test_set_op_delay(fx.db, 0);
    int64_t total = 7;
    for (int i = 0; i < BATCH_THREADS; i++) {
        bool fails = i % 4 == 0;
        assert_int_equal(b.err[i], fails ? RF_ERR_DUPLICATE_REFERENCE : RF_OK);
        int64_t want = (fails ? 0 : 100 + i) + (i == 1 ? 7 : 0);
        assert_int_equal(posted_of(b.acct[i], NULL), want);
        assert_int_equal(check_history(b.acct[i], true), fails ? 0 : i == 1 ? 2 : 1);
        total += fails ? 0 : 100 + i;
    }
    assert_int_equal(posted_of("funding:USD", NULL), -total);
    assert_int_equal(check_history("funding:USD", true), BATCH_THREADS - BATCH_FAILING + 1);
    if (strcmp(rf_backend_name(fx.db), "sqlite") == 0) { /* the failures shared a batch */
        struct rf_stats st;
        rf_stats_get(fx.db, &st);
        int64_t multi = 0;
        for (int i = 2; i < 8; i++) multi += st.batch_ops_hist[i];
        assert_true(multi >= 1);
    }
    check_invariants();
    rf_core_fixture_close(&fx);
}

/* ---- many writers at once, credits and payouts ---------------------------- */

#define WRITERS 32
#define ACCOUNTS 16
#define CREDITS_EACH 8
#define PAYOUT_WRITERS 4 /* the first few place and resolve payouts instead */

struct many {
    char acct[ACCOUNTS][RF_ID_BYTES];
    int64_t credited[WRITERS];
    int paid[WRITERS], failed[WRITERS];
};

/* A payout placed (a hold on payouts:USD), then posted or voided. */
static void payout_round(struct many *m, int idx, int k) {
    struct rf_payout_req req = {.account = m->acct[idx], .amount_minor = 10 + k,
                                .currency = "USD", .provider = "stripe",
                                .destination_ref = "acct_1", .max_attempts = 1};
    struct rf_payout p, q;
    assert_int_equal(rf_payout_create(fx.db, &req, &p, NULL), RF_OK);
    char provider_id[64];
    snprintf(provider_id, sizeof provider_id, "po-%d-%d", idx, k);
    rf_err err = k % 2 ? rf_payout_failed(fx.db, p.id, "declined", false, &q, NULL)
                       : rf_payout_succeeded(fx.db, p.id, provider_id, &q, NULL);
    assert_int_equal(err, RF_OK);
    if (k % 2) m->failed[idx]++;
    else m->paid[idx]++;
    rf_payout_clear(&p);
    rf_payout_clear(&q);
}

static void many_one(int idx, void *ctx) {
    struct many *m = ctx;
    for (int k = 0; k < CREDITS_EACH; k++) {
        if (idx < PAYOUT_WRITERS) {
            payout_round(m, idx, k);
            continue;
        }
        int64_t amount = 1 + idx * CREDITS_EACH + k;
        rf_err err = credit(m->acct[(idx + k) % ACCOUNTS], amount);
        assert_int_equal(err, RF_OK);
        m->credited[idx] += amount;
    }
}

static void test_many_writers(void **state) {
    (void)state;
    open_fresh();
    struct many m = {0};
    for (int i = 0; i < ACCOUNTS; i++) make_account("many", m.acct[i], RF_ID_BYTES);
    for (int i = 0; i < PAYOUT_WRITERS; i++) assert_int_equal(credit(m.acct[i], 1000), RF_OK);
    int64_t total = 1000 * PAYOUT_WRITERS, paid = 0;
    assert_int_equal(rf_parallel_fn(WRITERS, many_one, &m), 0);
    for (int i = 0; i < WRITERS; i++) total += m.credited[i];
    for (int i = 0; i < PAYOUT_WRITERS; i++) {
        assert_int_equal(m.paid[i] + m.failed[i], CREDITS_EACH);
        for (int k = 0; k < CREDITS_EACH; k += 2) paid += 10 + k;
    }
    assert_int_equal(posted_of("funding:USD", NULL), -total);
    int credits = (WRITERS - PAYOUT_WRITERS) * CREDITS_EACH + PAYOUT_WRITERS;
    assert_int_equal(check_history("funding:USD", true), credits);
    struct rf_account clearing;
    assert_int_equal(rf_account_get(fx.db, "payouts:USD", &clearing), RF_OK);
    assert_int_equal(clearing.posted, paid);
    assert_int_equal(clearing.pending_credits, 0);
    /* every hold, post and void a version each; only posts write an entry */
    assert_int_equal(clearing.version, 1 + PAYOUT_WRITERS * CREDITS_EACH * 2);
    rf_account_clear(&clearing);
    assert_int_equal(check_history("payouts:USD", false), PAYOUT_WRITERS * CREDITS_EACH / 2);
    for (int i = 0; i < ACCOUNTS; i++) check_history(m.acct[i], i >= PAYOUT_WRITERS);
    check_invariants();
    rf_core_fixture_close(&fx);
}

/* ---- the int64 edge of a system account ---------------------------------- */

struct edge {
    char acct[4][RF_ID_BYTES];
    rf_err err[4];
};

static void edge_one(int idx, void *ctx) {
    struct edge *e = ctx;
    e->err[idx] = credit(e->acct[idx], idx == 0 ? 3 : 1);
}

/* funding:USD at INT64_MIN + 2 after one credit: a credit of 3 would take it
 * past INT64_MIN, two credits of 1 take it to the edge. Batched together
 * (their net would not fit), only the credit of 3 is refused, in any order. */
static void test_system_edge_exact(void **state) {
    (void)state;
    open_fresh();
    struct edge e;
    for (int i = 0; i < 4; i++) make_account("edge", e.acct[i], RF_ID_BYTES);
    assert_int_equal(credit(e.acct[3], INT64_MAX - 1), RF_OK); /* funding: INT64_MIN + 2 */
    rf_test_set_op_delay(fx.db, 150);
    assert_int_equal(rf_parallel_fn(3, edge_one, &e), 0);
    rf_test_set_op_delay(fx.db, 0);
    assert_int_equal(e.err[0], RF_ERR_AMOUNT_OVERFLOW);
    assert_int_equal(e.err[1], RF_OK);
    assert_int_equal(e.err[2], RF_OK);
    assert_int_equal(posted_of("funding:USD", NULL), INT64_MIN);
    assert_int_equal(posted_of(e.acct[0], NULL), 0);
    assert_int_equal(credit(e.acct[0], 1), RF_ERR_AMOUNT_OVERFLOW);
    check_history("funding:USD", true);
    check_invariants();
    rf_core_fixture_close(&fx);
}

/* ---- the int64 edge of a user account's deferred credits ------------------ */

static void user_edge_one(int idx, void *ctx) {
    struct edge *e = ctx;
    e->err[idx] = credit(e->acct[0], idx == 0 ? 3 : 1);
}

/* A user account at INT64_MAX - 2 (moved there from an account that may go
 * negative, so funding:USD stays far from its own edge): its credits are
 * deferred, and batched together three credits 3, 1, 1 do not fit, while
 * one by one only the 3 is refused. Exactly that happens, and its history
 * stays dense. */
static void test_user_edge_exact(void **state) {
    (void)state;
    open_fresh();
    struct edge e;
    make_account("uedge", e.acct[0], RF_ID_BYTES);
    rf_rand_id("uneg", e.acct[1], RF_ID_BYTES);
    struct rf_account_req neg = {.id = e.acct[1], .currency = "USD", .kind = RF_ACCOUNT_USER,
                                 .allow_negative = true};
    struct rf_account_res res;
    assert_int_equal(rf_account_create(fx.db, &neg, &res, NULL), RF_OK);
    rf_account_clear(&res.account);
    struct rf_transfer_req up = {.debit_account = e.acct[1], .credit_account = e.acct[0],
                                 .amount_minor = INT64_MAX - 2, .currency = "USD"};
    struct rf_transfer_res t;
    assert_int_equal(rf_transfer_create(fx.db, &up, &t, NULL), RF_OK);
    rf_transfer_clear(&t.transfer);
    rf_test_set_op_delay(fx.db, 150);
    assert_int_equal(rf_parallel_fn(3, user_edge_one, &e), 0);
    rf_test_set_op_delay(fx.db, 0);
    assert_int_equal(e.err[0], RF_ERR_AMOUNT_OVERFLOW);
    assert_int_equal(e.err[1], RF_OK);
    assert_int_equal(e.err[2], RF_OK);
    assert_int_equal(posted_of(e.acct[0], NULL), INT64_MAX);
    assert_int_equal(posted_of("funding:USD", NULL), -2);
    assert_int_equal(check_history(e.acct[0], true), 3);
    check_history("funding:USD", true);
    check_invariants();
    rf_core_fixture_close(&fx);
}

/* ---- a user account's deferred debits: the overdraft guard stays exact ---- */

#define DEBITORS 24
#define DEBIT_FUNDS 7      /* the hot account's balance: 7 debits of 1 fit */
#define DEBIT_ROUNDS 2     /* then one round more, with the account dry */

struct debits {
    char hot[RF_ID_BYTES];
    char to[DEBITORS][RF_ID_BYTES];
    rf_err err[DEBITORS];
};

static void debit_one(int idx, void *ctx) {
    struct debits *d = ctx;
    struct rf_transfer_req req = {.debit_account = d->hot, .credit_account = d->to[idx],
                                  .amount_minor = 1, .currency = "USD"};
    struct rf_transfer_res res;
    d->err[idx] = rf_transfer_create(fx.db, &req, &res, NULL);
    rf_transfer_clear(&res.transfer);
}

/* Many threads released together each move 1 out of one account holding
 * DEBIT_FUNDS, in batches that defer both sides of every transfer: exactly
 * DEBIT_FUNDS succeed, the rest answer insufficient_funds (a flush that
 * would overdraw is refused and its batch runs again with each move under
 * its own guard), the account ends at 0 and never went below (its history
 * is dense and every balance_after >= 0 follows from the running sum
 * ending at 0 with only debits), and a dry account refuses every one. */
static void test_user_debits_exact(void **state) {
    (void)state;
    open_fresh();
    struct debits d;
    make_account("hot", d.hot, RF_ID_BYTES);
    for (int i = 0; i < DEBITORS; i++) make_account("to", d.to[i], RF_ID_BYTES);
    assert_int_equal(credit(d.hot, DEBIT_FUNDS), RF_OK);
    for (int round = 0; round < DEBIT_ROUNDS; round++) {
        rf_test_set_op_delay(fx.db, 100); /* the batch builds up behind the first */
        assert_int_equal(rf_parallel_fn(DEBITORS, debit_one, &d), 0);
        rf_test_set_op_delay(fx.db, 0);
        int ok = 0;
        for (int i = 0; i < DEBITORS; i++) {
            assert_true(d.err[i] == RF_OK || d.err[i] == RF_ERR_INSUFFICIENT_FUNDS);
            ok += d.err[i] == RF_OK;
        }
        assert_int_equal(ok, round == 0 ? DEBIT_FUNDS : 0);
        assert_int_equal(posted_of(d.hot, NULL), 0);
    }
    assert_int_equal(check_history(d.hot, true), 1 + DEBIT_FUNDS);
    int64_t moved = 0;
    for (int i = 0; i < DEBITORS; i++) moved += posted_of(d.to[i], NULL);
    assert_int_equal(moved, DEBIT_FUNDS);
    check_invariants();
    rf_core_fixture_close(&fx);
}

/* ---- the buffer's own accounting ------------------------------------------ */

static void test_buffer_keeps_release_slots(void **state) {
    (void)state;
    void *buf = malloc(deferred_ops.buf_bytes);
    assert_non_null(buf);
    deferred_ops.reset(buf, true);
    struct rf_tx tx = {.now_ms = 1, .defer = buf};
    const struct deferred_account payouts = {"payouts:USD", "USD", true};
    const struct deferred_account funding = {"funding:USD", "USD", true};
    char id[RF_UUID_TEXT_BYTES];
    int holds = 0;
    for (;; holds++) { /* holds until the buffer refuses one */
        snprintf(id, sizeof id, "hold-%d", holds);
        if (!deferred_move(&tx, &payouts, id, 0, 0, 5)) break;
    }
    assert_int_equal(holds, RF_DEFER_MOVES_MAX / 2);
    assert_false(deferred_move(&tx, &funding, "plain", -1, 0, 0)); /* full */
    assert_false(deferred_move(&tx, &payouts, "not-buffered", 5, 0, -5));
    int mark = deferred_ops.mark(buf);
    for (int i = 0; i < holds; i++) { /* every buffered hold's release fits */
        snprintf(id, sizeof id, "hold-%d", i);
        assert_true(deferred_move(&tx, &payouts, id, 5, 0, -5));
    }
    assert_false(deferred_move(&tx, &funding, "plain", -1, 0, 0));
    deferred_ops.rewind(buf, mark); /* the releases are gone: their slots kept again */
    assert_false(deferred_move(&tx, &funding, "plain", -1, 0, 0));
    snprintf(id, sizeof id, "hold-%d", 0);
    assert_true(deferred_move(&tx, &payouts, id, 5, 0, -5));
    tx.defer = NULL; /* nothing may be deferred */
    assert_false(deferred_move(&tx, &funding, "plain", -1, 0, 0));
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffer_keeps_release_slots),
        cmocka_unit_test(test_batch_failures_rewound),
        cmocka_unit_test(test_many_writers),
        cmocka_unit_test(test_system_edge_exact),
        cmocka_unit_test(test_user_edge_exact),
        cmocka_unit_test(test_user_debits_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
