/*
 * test_payouts.c - seed 000 part 2 at the library level, on the back end in
 * RF_TEST_DB: 32 concurrent attempts count 32 exactly (rounds from one handle,
 * then from two, as two processes); concurrent succeeded
 * and failed leave exactly one terminal state with the hold posted or voided
 * to match; retries up to max_attempts; terminal states never change; and
 * the ledger's invariants hold afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/tamper.h"
#include "racefree.h"
#include "store/store.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"
#include "ledger_clean.h"

static int clean_before(void **state) {
    (void)state;
    return ledger_clean_before(rf_core_fx.db);
}

static void check_invariants(void) {
    struct rf_ledger_check c;
    assert_int_equal(rf_ledger_check(rf_core_fx.db, &c), RF_OK);
    assert_int_equal(c.currencies_unbalanced, 0);
    assert_int_equal(c.accounts_mismatched, 0);
    assert_int_equal(c.payouts_mismatched, 0);
    assert_int_equal(c.clearing_unowned, 0);
    assert_true(c.clean);
}

static void wallet(char *id, size_t cap, int64_t funds) {
    rf_rand_id("wallet", id, cap);
    struct rf_account_req req = {.id = id, .currency = "USD", .kind = RF_ACCOUNT_USER};
    struct rf_account_res res;
    assert_int_equal(rf_account_create(rf_core_fx.db, &req, &res, NULL), RF_OK);
    rf_account_clear(&res.account);
    struct rf_transfer_res t;
    assert_int_equal(rf_credit_apply(rf_core_fx.db, id, funds, "seed", &t, NULL), RF_OK);
    rf_transfer_clear(&t.transfer);
}

static void account(const char *id, int64_t *posted, int64_t *available) {
    struct rf_account a;
    assert_int_equal(rf_account_get(rf_core_fx.db, id, &a), RF_OK);
    *posted = a.posted;
    *available = a.available;
    rf_account_clear(&a);
}

static void payout(const char *wallet_id, int64_t amount, int max_attempts,
                   struct rf_payout *out) {
    struct rf_payout_req req = {.account = wallet_id, .amount_minor = amount,
                                .currency = "USD", .provider = "stripe",
                                .destination_ref = "acct_123", .max_attempts = max_attempts};
    assert_int_equal(rf_payout_create(rf_core_fx.db, &req, out, NULL), RF_OK);
    assert_int_equal(out->status, RF_PAYOUT_STATUS_PENDING);
    assert_int_equal(out->attempt_count, 0);
    assert_true(strncmp(out->provider_idempotency_key, "rfpo_", 5) == 0);
}

struct attempts {
    char id[RF_ID_BYTES];
    rf_err err[32];
    int64_t count[32];
};

/* A second handle, as another process has: while open, the odd threads'
 * attempts go through it, so one payout's attempts also race between
 * executors (within one handle key routing, or its absence, decides). */
static rf *g_other;

static void attempt_one(int idx, void *ctx) {
    struct attempts *a = ctx;
    struct rf_payout p;
    rf *db = g_other && idx % 2 ? g_other : rf_core_fx.db;
    a->err[idx] = rf_payout_attempt(db, a->id, &p, NULL);
    a->count[idx] = p.attempt_count;
    rf_payout_clear(&p);
}

static void concurrent_attempts(void) {
    char w[64];
    wallet(w, sizeof w, 100);
    struct rf_payout p;
    payout(w, 40, 0, &p);
    int64_t posted, avail;
    account(w, &posted, &avail);
    assert_int_equal(posted, 100);
    assert_int_equal(avail, 60); /* held */
    struct attempts a;
    snprintf(a.id, sizeof a.id, "%s", p.id);
    rf_payout_clear(&p);
    assert_int_equal(rf_parallel_fn(32, attempt_one, &a), 0);
    bool seen[33] = {false};
    for (int i = 0; i < 32; i++) {
        assert_int_equal(a.err[i], RF_OK);
        assert_true(a.count[i] >= 1 && a.count[i] <= 32);
        assert_false(seen[a.count[i]]); /* every attempt got its own number */
        seen[a.count[i]] = true;
    }
    assert_int_equal(rf_payout_get(rf_core_fx.db, a.id, &p), RF_OK);
    assert_int_equal(p.attempt_count, 32);
    rf_payout_clear(&p);
    check_invariants();
}

#define ATTEMPT_ROUNDS 4

/* Rounds of 32 attempts on a fresh payout, from one handle and then from
 * two: a read of attempt_count, one added in C and written back
 * (read-modify-write) loses the other committers' attempts. */
static void test_concurrent_attempts(void **state) {
    (void)state;
    for (int round = 0; round < ATTEMPT_ROUNDS; round++) concurrent_attempts();
    struct rf_options opt = {0};
    assert_int_equal(rf_open(rf_core_fx.url, &opt, &g_other), RF_OK);
    for (int round = 0; round < ATTEMPT_ROUNDS; round++) concurrent_attempts();
    rf_close(g_other);
    g_other = NULL;
}

struct outcome {
    char id[RF_ID_BYTES];
    char provider_id[64];
    rf_err err[2];
};

static void outcome_one(int idx, void *ctx) {
    struct outcome *o = ctx;
    struct rf_payout p;
    o->err[idx] = idx == 0
                      ? rf_payout_succeeded(rf_core_fx.db, o->id, o->provider_id, &p, NULL)
                      : rf_payout_failed(rf_core_fx.db, o->id, "card_declined", false, &p, NULL);
    rf_payout_clear(&p);
}

static void test_succeeded_failed_race(void **state) {
    (void)state;
    char w[64];
    wallet(w, sizeof w, 1000);
    for (int round = 0; round < 16; round++) {
        struct rf_payout p;
        int64_t before, avail;
        account(w, &before, &avail);
        payout(w, 10, 0, &p);
        struct outcome o;
        snprintf(o.id, sizeof o.id, "%s", p.id);
        rf_rand_id("po", o.provider_id, sizeof o.provider_id);
        rf_payout_clear(&p);
        assert_int_equal(rf_parallel_fn(2, outcome_one, &o), 0);
        assert_true((o.err[0] == RF_OK) != (o.err[1] == RF_OK));
        assert_int_equal(o.err[0] == RF_OK ? o.err[1] : o.err[0], RF_ERR_INVALID_STATE);
        assert_int_equal(rf_payout_get(rf_core_fx.db, o.id, &p), RF_OK);
        struct rf_transfer hold;
        assert_int_equal(rf_transfer_get(rf_core_fx.db, p.hold_transfer_id, &hold), RF_OK);
        int64_t after;
        account(w, &after, &avail);
        if (o.err[0] == RF_OK) {
            assert_int_equal(p.status, RF_PAYOUT_STATUS_PAID);
            assert_int_equal(hold.status, RF_TRANSFER_POSTED);
            assert_int_equal(after, before - 10);
        } else {
            assert_int_equal(p.status, RF_PAYOUT_STATUS_FAILED);
            assert_int_equal(hold.status, RF_TRANSFER_VOIDED);
            assert_int_equal(after, before);
        }
        assert_int_equal(avail, after); /* no hold left behind */
        rf_transfer_clear(&hold);
        rf_payout_clear(&p);
    }
    check_invariants();
}

static void test_retries_and_terminal_states(void **state) {
    (void)state;
    char w[64];
    wallet(w, sizeof w, 100);
    struct rf_payout p, q;
    payout(w, 30, 3, &p);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(rf_payout_attempt(rf_core_fx.db, p.id, &q, NULL), RF_OK);
        assert_int_equal(q.attempt_count, i);
        rf_payout_clear(&q);
        assert_int_equal(rf_payout_failed(rf_core_fx.db, p.id, "timeout", true, &q, NULL), RF_OK);
        assert_int_equal(q.status, i < 3 ? RF_PAYOUT_STATUS_PENDING : RF_PAYOUT_STATUS_FAILED);
        rf_payout_clear(&q);
    }
    int64_t posted, avail;
    account(w, &posted, &avail);
    assert_int_equal(avail, 100); /* the hold was voided */
    assert_int_equal(rf_payout_attempt(rf_core_fx.db, p.id, &q, NULL), RF_ERR_INVALID_STATE);
    assert_int_equal(rf_payout_succeeded(rf_core_fx.db, p.id, "po_late", &q, NULL),
                     RF_ERR_INVALID_STATE);
    rf_payout_clear(&p);

    payout(w, 20, 0, &p);
    char pid[64];
    rf_rand_id("po", pid, sizeof pid);
    assert_int_equal(rf_payout_succeeded(rf_core_fx.db, p.id, pid, &q, NULL), RF_OK);
    assert_int_equal(q.status, RF_PAYOUT_STATUS_PAID);
    int64_t version = q.version;
    rf_payout_clear(&q);
    /* idempotent */
    assert_int_equal(rf_payout_succeeded(rf_core_fx.db, p.id, pid, &q, NULL), RF_OK);
    assert_int_equal(q.version, version);
    rf_payout_clear(&q);
    assert_int_equal(rf_payout_succeeded(rf_core_fx.db, p.id, "po_other", &q, NULL),
                     RF_ERR_INVALID_STATE);
    assert_int_equal(rf_payout_failed(rf_core_fx.db, p.id, "late", false, &q, NULL),
                     RF_ERR_INVALID_STATE);
    struct rf_payout r;
    payout(w, 5, 0, &r); /* the provider id belongs to p */
    assert_int_equal(rf_payout_succeeded(rf_core_fx.db, r.id, pid, &q, NULL),
                     RF_ERR_DUPLICATE_PROVIDER_PAYOUT);
    account(w, &posted, &avail);
    assert_int_equal(posted, 80);
    assert_int_equal(avail, 75);
    bool found = false; /* follow the cursor: a shared store holds many payouts */
    char after[RF_CURSOR_BYTES] = "";
    for (int pages = 0; pages < 1000 && !found; pages++) {
        struct rf_payout_page page;
        assert_int_equal(rf_payout_list(rf_core_fx.db, "paid", after, 500, &page), RF_OK);
        for (int i = 0; i < page.n; i++) {
            found |= strcmp(page.items[i].id, p.id) == 0;
            assert_int_equal(page.items[i].status, RF_PAYOUT_STATUS_PAID);
        }
        snprintf(after, sizeof after, "%s", page.next);
        rf_payout_page_clear(&page);
        if (!after[0]) break;
    }
    assert_true(found);
    struct rf_payout_req big = {.account = w, .amount_minor = 1000, .currency = "USD",
                                .provider = "stripe", .destination_ref = "x"};
    assert_int_equal(rf_payout_create(rf_core_fx.db, &big, &q, NULL), RF_ERR_INSUFFICIENT_FUNDS);
    rf_payout_clear(&p);
    rf_payout_clear(&r);
    check_invariants();
}

/* A payout's hold resolves only through its payout: the transfer routes'
 * post (whole or partial) and void answer hold_owned_by_payout, before,
 * during (threads released together with succeeded and failed) and after
 * the payout's outcome, and never move money. */
struct hold_race {
    char payout[RF_ID_BYTES];
    char hold[RF_ID_BYTES];
    char provider_id[64];
    rf_err err[8];
};

static void hold_race_one(int idx, void *ctx) {
    struct hold_race *h = ctx;
    struct rf_payout p;
    struct rf_transfer_res t;
    memset(&p, 0, sizeof p);
    memset(&t, 0, sizeof t);
    if (idx == 0)
        h->err[idx] = rf_payout_succeeded(rf_core_fx.db, h->payout, h->provider_id, &p, NULL);
    else if (idx == 1)
        h->err[idx] = rf_payout_failed(rf_core_fx.db, h->payout, "declined", false, &p, NULL);
    else if (idx % 3 == 0) h->err[idx] = rf_transfer_void(rf_core_fx.db, h->hold, &t, NULL);
    else h->err[idx] = rf_transfer_post(rf_core_fx.db, h->hold, idx % 2 ? 0 : 1, &t, NULL);
    rf_payout_clear(&p);
    rf_transfer_clear(&t.transfer);
}

static void test_hold_resolves_only_through_payout(void **state) {
    (void)state;
    char w[64];
    wallet(w, sizeof w, 1000);
    for (int round = 0; round < 12; round++) {
        struct rf_payout p;
        int64_t before, avail, after;
        account(w, &before, &avail);
        payout(w, 10, 0, &p);
        struct hold_race h;
        snprintf(h.payout, sizeof h.payout, "%s", p.id);
        snprintf(h.hold, sizeof h.hold, "%s", p.hold_transfer_id);
        rf_rand_id("po", h.provider_id, sizeof h.provider_id);
        rf_payout_clear(&p);
        struct rf_transfer_res t;
        assert_int_equal(rf_transfer_void(rf_core_fx.db, h.hold, &t, NULL), RF_ERR_HOLD_OWNED);
        assert_int_equal(rf_transfer_post(rf_core_fx.db, h.hold, 3, &t, NULL), RF_ERR_HOLD_OWNED);
        assert_int_equal(rf_parallel_fn(8, hold_race_one, &h), 0);
        assert_true((h.err[0] == RF_OK) != (h.err[1] == RF_OK));
        for (int i = 2; i < 8; i++) assert_int_equal(h.err[i], RF_ERR_HOLD_OWNED);
        assert_int_equal(rf_transfer_void(rf_core_fx.db, h.hold, &t, NULL), RF_ERR_HOLD_OWNED);
        assert_int_equal(rf_payout_get(rf_core_fx.db, h.payout, &p), RF_OK);
        struct rf_transfer hold;
        assert_int_equal(rf_transfer_get(rf_core_fx.db, h.hold, &hold), RF_OK);
        account(w, &after, &avail);
        bool paid = h.err[0] == RF_OK;
        assert_int_equal(p.status, paid ? RF_PAYOUT_STATUS_PAID : RF_PAYOUT_STATUS_FAILED);
        assert_int_equal(hold.status, paid ? RF_TRANSFER_POSTED : RF_TRANSFER_VOIDED);
        assert_int_equal(after, paid ? before - 10 : before);
        assert_int_equal(avail, after);
        rf_transfer_clear(&hold);
        rf_payout_clear(&p);
    }
    check_invariants();
}

/* ---- Idempotency-Key: the typed result ------------------------------------ */

static void idem_init(struct rf_idem *idem, const char *key, const char *request) {
    memset(idem, 0, sizeof *idem);
    idem->key = key;
    idem->api_key_id = "test-key";
    rf_core_idem_hash(idem, "POST", "/x", request, strlen(request));
}

static void text_equal(const char *a, const char *b) {
    assert_true((a == NULL) == (b == NULL));
    if (a) assert_string_equal(a, b);
}

/* Every member the edge renders. */
static void payout_equal(const struct rf_payout *a, const struct rf_payout *b) {
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->account, b->account);
    assert_int_equal(a->amount_minor, b->amount_minor);
    assert_string_equal(a->currency, b->currency);
    assert_string_equal(a->provider, b->provider);
    assert_string_equal(a->destination_ref, b->destination_ref);
    assert_int_equal(a->status, b->status);
    assert_string_equal(a->hold_transfer_id, b->hold_transfer_id);
    assert_string_equal(a->provider_idempotency_key, b->provider_idempotency_key);
    text_equal(a->provider_payout_id, b->provider_payout_id);
    assert_int_equal(a->attempt_count, b->attempt_count);
    assert_int_equal(a->max_attempts, b->max_attempts);
    text_equal(a->last_error, b->last_error);
    text_equal(a->metadata_json, b->metadata_json);
    assert_int_equal(a->created_at_ms, b->created_at_ms);
    assert_int_equal(a->updated_at_ms, b->updated_at_ms);
    assert_int_equal(a->version, b->version);
}

enum { STEP_CREATE, STEP_FAILED, STEP_SUCCEEDED, STEPS };

static rf_err idem_step(int step, const struct rf_payout_req *req, const char *id,
                        struct rf_payout *out, struct rf_idem *idem) {
    rf *db = rf_core_fx.db;
    if (step == STEP_CREATE) return rf_payout_create(db, req, out, idem);
    if (step == STEP_FAILED) return rf_payout_failed(db, id, "timeout", true, out, idem);
    return rf_payout_succeeded(db, id, "po_idem_1", out, idem);
}

/* A replay answers the first result, member for member, after the payout
 * moved on: the record holds the result itself, not a re-read; another
 * request under a used key is refused and changes nothing. */
static void test_replay_is_the_first_result(void **state) {
    (void)state;
    char w[64], keys[STEPS][64];
    wallet(w, sizeof w, 100);
    struct rf_payout_req req = {.account = w, .amount_minor = 30, .currency = "USD",
                                .provider = "stripe", .destination_ref = "acct_9",
                                .metadata_json = "{\"order\":\"o-1\"}", .max_attempts = 4};
    struct rf_payout first[STEPS], again;
    struct rf_idem idem;
    char id[RF_ID_BYTES] = "";
    for (int step = 0; step < STEPS; step++) {
        rf_rand_id("ik", keys[step], sizeof keys[step]);
        idem_init(&idem, keys[step], "same");
        assert_int_equal(idem_step(step, &req, id, &first[step], &idem), RF_OK);
        assert_false(idem.replayed);
        memcpy(id, first[step].id, sizeof id); /* both RF_ID_BYTES */
    }
    assert_string_equal(first[STEP_FAILED].last_error, "timeout");
    assert_string_equal(first[STEP_SUCCEEDED].provider_payout_id, "po_idem_1");
    for (int step = 0; step < STEPS; step++) {
        idem_init(&idem, keys[step], "same");
        assert_int_equal(idem_step(step, &req, id, &again, &idem), RF_OK);
        assert_true(idem.replayed);
        payout_equal(&again, &first[step]);
        rf_payout_clear(&again);
        idem_init(&idem, keys[step], "different");
        assert_int_equal(idem_step(step, &req, id, &again, &idem), RF_ERR_IDEM_REUSED);
        assert_null(again.metadata_json); /* cleared on failure */
    }
    assert_int_equal(first[STEP_CREATE].status, RF_PAYOUT_STATUS_PENDING);
    assert_int_equal(first[STEP_CREATE].max_attempts, 4);
    assert_int_equal(rf_payout_get(rf_core_fx.db, id, &again), RF_OK);
    payout_equal(&again, &first[STEP_SUCCEEDED]); /* one payout, paid once */
    rf_payout_clear(&again);
    for (int step = 0; step < STEPS; step++) rf_payout_clear(&first[step]);
    int64_t posted, avail;
    account(w, &posted, &avail);
    assert_int_equal(posted, 70);
    assert_int_equal(avail, 70);
    check_invariants();
}

/* The library refuses what the edge refuses, with its old codes: bad ids,
 * amounts and attempts are RF_ERR_INVALID, a system account is
 * RF_ERR_RESERVED_ID, an unknown list filter RF_ERR_INVALID; a limit of 0
 * or less is the default. */
static void test_library_refusals(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    char w[64];
    wallet(w, sizeof w, 10);
    struct rf_payout p;
    const struct rf_payout_req bad[] = {
        {.account = "a b", .amount_minor = 1, .currency = "USD", .provider = "p",
         .destination_ref = "r"},
        {.account = w, .amount_minor = 0, .currency = "USD", .provider = "p",
         .destination_ref = "r"},
        {.account = w, .amount_minor = 1, .currency = "usd", .provider = "p",
         .destination_ref = "r"},
        {.account = w, .amount_minor = 1, .currency = "USD", .destination_ref = "r"},
        {.account = w, .amount_minor = 1, .currency = "USD", .provider = "p"},
        {.account = w, .amount_minor = 1, .currency = "USD", .provider = "p",
         .destination_ref = "r", .max_attempts = 100 + 1},
        {.account = w, .amount_minor = 1, .currency = "USD", .provider = "p",
         .destination_ref = "r", .max_attempts = -1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(rf_payout_create(db, &bad[i], &p, NULL), RF_ERR_INVALID);
    struct rf_payout_req sys = bad[0];
    sys.account = "payouts:USD";
    assert_int_equal(rf_payout_create(db, &sys, &p, NULL), RF_ERR_RESERVED_ID);
    assert_int_equal(rf_payout_attempt(db, "a b", &p, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_payout_attempt(db, "no-such", &p, NULL), RF_ERR_PAYOUT_NOT_FOUND);
    assert_int_equal(rf_payout_succeeded(db, "no-such", "a b", &p, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_payout_failed(db, "no-such", "", true, &p, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_payout_failed(db, "no-such", NULL, true, &p, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_payout_get(db, "a b", &p), RF_ERR_INVALID);
    struct rf_payout_page page;
    assert_int_equal(rf_payout_list(db, "all", NULL, 10, &page), RF_ERR_INVALID);
    assert_null(page.items);
    assert_int_equal(rf_payout_list(db, "a b", NULL, 10, &page), RF_ERR_INVALID);
    assert_int_equal(rf_payout_list(db, NULL, "a b", 10, &page), RF_ERR_INVALID_CURSOR);
    assert_int_equal(rf_payout_list(db, "paid", NULL, -5, &page), RF_OK);
    rf_payout_page_clear(&page);
    int64_t posted, avail;
    account(w, &posted, &avail);
    assert_int_equal(avail, 10); /* nothing held */
}

/* The check compares every payout with its hold: drift planted straight in
 * the store (as an outside resolution or a bug would leave it) is reported,
 * and `racefree reconcile` exits 1 on it. Also the expiry sweep leaves a
 * payout's hold alone even when the row says it expired. In a store of its
 * own, so the drift never reaches the shared one. */
static void check_drift(int64_t payouts_mismatched, int64_t clearing_unowned) {
    struct rf_ledger_check c;
    assert_int_equal(rf_ledger_check(rf_core_fx.db, &c), RF_OK);
    assert_int_equal(c.payouts, 4);
    assert_int_equal(c.payouts_mismatched, payouts_mismatched);
    assert_int_equal(c.clearing_unowned, clearing_unowned);
    assert_int_equal(c.clean, payouts_mismatched == 0 && clearing_unowned == 0 &&
                                  c.accounts_mismatched == 0 && c.currencies_unbalanced == 0);
}

static void test_check_catches_payout_drift(void **state) {
    (void)state;
    struct rf_core_fixture shared = rf_core_fx; /* back after this store of its own */
    assert_int_equal(rf_core_fixture_open_fresh(&rf_core_fx, NULL), 0);
    const char *url = rf_core_fx.url;
    char w[64], other[64];
    wallet(w, sizeof w, 1000);
    wallet(other, sizeof other, 1);
    struct rf_payout p[4];
    for (int i = 0; i < 4; i++) payout(w, 10 + i, 0, &p[i]);
    check_drift(0, 0);
    /* the sweep never voids a payout's hold, even one marked expired */
    tamper(url, "UPDATE transfers SET expires_at = 1 WHERE id = $1", p[3].hold_transfer_id, NULL,
           1);
    int voided = -1;
    assert_int_equal(rf_transfer_expire(rf_core_fx.db, 100, &voided), RF_OK);
    assert_int_equal(voided, 0);
    struct rf_payout q;
    assert_int_equal(rf_payout_failed(rf_core_fx.db, p[3].id, "declined", false, &q, NULL), RF_OK);
    rf_payout_clear(&q);
    check_drift(0, 0);
    /* failed while the hold is still pending; a payout of another amount */
    tamper(url, "UPDATE payouts SET status = 'failed' WHERE id = $1", p[0].id, NULL, 1);
    check_drift(1, 0);
    tamper(url, "UPDATE payouts SET amount_minor = amount_minor + 1 WHERE id = $1", p[1].id, NULL,
           1);
    check_drift(2, 0);
    reconcile_expect(rf_core_fx.db, url, &(struct reconcile_want){"payout_holds", 2,
                     {NULL}}, 1);
    /* a hold on payouts:USD that no payout owns */
    struct rf_transfer_req req = {.debit_account = w, .credit_account = other,
                                  .amount_minor = 5, .currency = "USD", .pending = true};
    struct rf_transfer_res t;
    assert_int_equal(rf_transfer_create(rf_core_fx.db, &req, &t, NULL), RF_OK);
    tamper(url, "UPDATE transfers SET credit_account = 'payouts:USD' WHERE id = $1",
           t.transfer.id, NULL, 1);
    rf_transfer_clear(&t.transfer);
    check_drift(2, 1);
    reconcile_expect(rf_core_fx.db, url, (const struct reconcile_want[]){
                     {"payout_holds", 2, {NULL}}, {"payout_clearing", 1, {NULL}},
                     /* the hold's credit side moved: other and payouts:USD */
                     {"account_holds", 2, {"payouts:USD", other}}}, 3);
    for (int i = 0; i < 4; i++) rf_payout_clear(&p[i]);
    rf_core_fixture_close(&rf_core_fx);
    rf_core_fx = shared;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_concurrent_attempts, clean_before),
        cmocka_unit_test_setup(test_succeeded_failed_race, clean_before),
        cmocka_unit_test_setup(test_retries_and_terminal_states, clean_before),
        cmocka_unit_test_setup(test_hold_resolves_only_through_payout, clean_before),
        cmocka_unit_test_setup(test_replay_is_the_first_result, clean_before),
        cmocka_unit_test_setup(test_library_refusals, clean_before),
        cmocka_unit_test_setup(test_check_catches_payout_drift, clean_before),
    };
    return cmocka_run_group_tests(tests, rf_core_setup, rf_core_teardown);
}
