/*
 * test_checkouts.c - checkouts at the library level, on the back end in
 * RF_TEST_DB: checkout_apply_event (core/flows.h) as the webhook ledger
 * drives it, inside a write transaction of its own here: PAID fulfils once
 * (a second PAID changes nothing: one grant, one credit, one fulfilled
 * transition), EXPIRED after fulfilled is recorded without effect, REFUNDED
 * reverses once, a refund of money already spent records its shortfall, a
 * key the user held from another source is neither re-sourced nor revoked;
 * the create's item rules and the provider reference binding. The ledger
 * check (with its checkouts invariant) is clean after each test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/clock.h"
#include "core/core.h"
#include "core/flows.h"
#include "racefree.h"
#include "store/store.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"
#include "ledger_clean.h"

static int clean_before(void **state) {
    (void)state;
    return ledger_clean_before(rf_core_fx.db);
}

static void check_clean(void) {
    struct rf_ledger_check c;
    assert_int_equal(rf_ledger_check(rf_core_fx.db, &c), RF_OK);
    if (c.checkouts_mismatched) fail_msg("%lld checkout mismatches", (long long)c.checkouts_mismatched);
    assert_true(c.clean);
}

/* ---- fixtures ------------------------------------------------------------ */

static void wallet(char *id, size_t cap, const char *currency, bool allow_negative) {
    rf_rand_id("wallet", id, cap);
    struct rf_account_req req = {.id = id, .currency = currency, .kind = RF_ACCOUNT_USER,
                                 .allow_negative = allow_negative};
    struct rf_account_res res;
    assert_int_equal(rf_account_create(rf_core_fx.db, &req, &res, NULL), RF_OK);
    rf_account_clear(&res.account);
}

static int64_t posted(const char *id) {
    struct rf_account a;
    assert_int_equal(rf_account_get(rf_core_fx.db, id, &a), RF_OK);
    int64_t p = a.posted;
    rf_account_clear(&a);
    return p;
}

struct sale {
    char user[64], key[64], wallet[64];
    char items[512];
    struct rf_checkout co;
};

/* A pending checkout: the key and 500 credited to a wallet. */
static void sale_new(struct sale *s, bool allow_negative, int64_t expires_at_ms) {
    memset(s, 0, sizeof *s);
    rf_rand_id("user", s->user, sizeof s->user);
    rf_rand_id("pro", s->key, sizeof s->key);
    wallet(s->wallet, sizeof s->wallet, "USD", allow_negative);
    snprintf(s->items, sizeof s->items,
             "[{\"type\":\"entitlement\",\"key\":\"%s\"},"
             "{\"type\":\"credit\",\"account\":\"%s\",\"amount_minor\":500}]",
             s->key, s->wallet);
    struct rf_checkout_req req = {.user_id = s->user, .currency = "USD", .amount_minor = 1999,
                                  .provider = "stripe", .items_json = s->items,
                                  .expires_at_ms = expires_at_ms};
    assert_int_equal(rf_checkout_create(rf_core_fx.db, &req, &s->co, NULL), RF_OK);
    assert_int_equal(s->co.status, RF_CHECKOUT_PENDING);
    assert_int_equal(s->co.version, 1);
}

static void sale_reload(struct sale *s) {
    char id[RF_ID_BYTES];
    snprintf(id, sizeof id, "%s", s->co.id);
    rf_checkout_clear(&s->co);
    assert_int_equal(rf_checkout_get(rf_core_fx.db, id, &s->co), RF_OK);
}

struct event_call {
    enum checkout_event ev;
    const char *id, *ref;
    struct checkout_event_res res;
};

static rf_err event_tx(struct rf_tx *tx, void *ctx) {
    struct event_call *e = ctx;
    return checkout_apply_event(tx, e->ev, "stripe", e->id, e->ref, &e->res);
}

/* One event in a write transaction of its own, as the webhook ledger runs it. */
static struct checkout_event_res event(enum checkout_event ev, const char *id) {
    struct event_call e = {.ev = ev, .id = id};
    assert_int_equal(core_write(rf_core_fx.db, "test_checkout_event", 0, event_tx, &e), RF_OK);
    return e.res;
}

struct count_call {
    const char *sql, *arg;
    int64_t n;
};

static void read_count(struct rf_tx *tx, struct store_rows *r, void *out) {
    *(int64_t *)out = store_int(tx, r, 0);
}

static rf_err count_tx(struct rf_tx *tx, void *ctx) {
    struct count_call *c = ctx;
    store_val p[1] = {SV_S(c->arg)};
    return store_query_one(tx, c->sql, p, 1, read_count, &c->n);
}

static int64_t count(const char *sql, const char *arg) {
    struct count_call c = {sql, arg, -1};
    assert_int_equal(core_read(rf_core_fx.db, "test_count", count_tx, &c), RF_OK);
    return c.n;
}

#define TRANSITIONS(where) "SELECT count(*) FROM checkout_transitions WHERE checkout_id = $1 AND " where
#define CREDITS "SELECT count(*) FROM transfers WHERE reference LIKE $1 || ':%'"

static void assert_ent(const struct sale *s, enum rf_ent_status want, const char *source) {
    struct rf_entitlement e;
    assert_int_equal(rf_entitlement_get(rf_core_fx.db, s->user, s->key, &e), RF_OK);
    assert_int_equal(e.status, want);
    assert_string_equal(e.source, source);
    rf_entitlement_clear(&e);
}

static const char *source(const struct sale *s, char *buf, size_t cap) {
    snprintf(buf, cap, "checkout:%s", s->co.id);
    return buf;
}

/* ---- events ------------------------------------------------------------------ */

static void test_paid_twice_fulfils_once(void **state) {
    (void)state;
    struct sale s;
    sale_new(&s, false, 0);
    char src[200], ref[200];
    struct checkout_event_res r = event(CHECKOUT_EV_PAID, s.co.id);
    assert_true(r.matched && r.applied);
    assert_string_equal(r.status, "fulfilled");
    r = event(CHECKOUT_EV_PAID, s.co.id);
    assert_true(r.matched);
    assert_false(r.applied);
    assert_string_equal(r.status, "fulfilled");
    sale_reload(&s);
    assert_int_equal(s.co.status, RF_CHECKOUT_FULFILLED);
    assert_int_equal(s.co.version, 3); /* pending -> paid -> fulfilled */
    assert_ent(&s, RF_ENT_STATUS_ACTIVE, source(&s, src, sizeof src));
    assert_int_equal(posted(s.wallet), 500); /* credited once */
    snprintf(ref, sizeof ref, "checkout:%s", s.co.id);
    assert_int_equal(count(CREDITS, ref), 1);
    assert_int_equal(count(TRANSITIONS("to_status = 'fulfilled' AND applied = 1"), s.co.id), 1);
    assert_int_equal(count(TRANSITIONS("to_status = 'paid' AND applied = 0"), s.co.id), 1);
    rf_checkout_clear(&s.co);
    check_clean();
}

static void test_expired_after_fulfilled_no_effect(void **state) {
    (void)state;
    struct sale s;
    sale_new(&s, false, 0);
    event(CHECKOUT_EV_PAID, s.co.id);
    struct checkout_event_res r = event(CHECKOUT_EV_EXPIRED, s.co.id);
    assert_true(r.matched);
    assert_false(r.applied);
    assert_string_equal(r.status, "fulfilled");
    sale_reload(&s);
    assert_int_equal(s.co.status, RF_CHECKOUT_FULFILLED);
    assert_int_equal(s.co.version, 3);
    assert_int_equal(posted(s.wallet), 500);
    assert_int_equal(count(TRANSITIONS("to_status = 'expired' AND applied = 0"), s.co.id), 1);
    rf_checkout_clear(&s.co);
    check_clean();
}

static void test_refunded_twice_reverses_once(void **state) {
    (void)state;
    struct sale s;
    sale_new(&s, false, 0);
    char src[200], ref[200];
    event(CHECKOUT_EV_PAID, s.co.id);
    struct checkout_event_res r = event(CHECKOUT_EV_REFUNDED, s.co.id);
    assert_true(r.matched && r.applied);
    assert_string_equal(r.status, "refunded");
    r = event(CHECKOUT_EV_REFUNDED, s.co.id);
    assert_false(r.applied);
    assert_string_equal(r.status, "refunded");
    sale_reload(&s);
    assert_int_equal(s.co.status, RF_CHECKOUT_REFUNDED);
    assert_int_equal(s.co.version, 4);
    assert_int_equal(s.co.refund_shortfall_minor, 0);
    assert_ent(&s, RF_ENT_STATUS_REVOKED, source(&s, src, sizeof src));
    assert_int_equal(posted(s.wallet), 0);
    snprintf(ref, sizeof ref, "checkout:%s", s.co.id);
    assert_int_equal(count(CREDITS, ref), 2); /* the credit and its one reversal */
    /* paid after refunded: recorded, nothing moves */
    r = event(CHECKOUT_EV_PAID, s.co.id);
    assert_false(r.applied);
    assert_int_equal(posted(s.wallet), 0);
    rf_checkout_clear(&s.co);
    check_clean();
}

/* The user spent 400 of the 500 credited: the refund takes back the 100
 * left (the account may not go negative) and records 400 short. */
static void test_refund_shortfall(void **state) {
    (void)state;
    struct sale s;
    sale_new(&s, false, 0);
    event(CHECKOUT_EV_PAID, s.co.id);
    char shop[64];
    wallet(shop, sizeof shop, "USD", false);
    struct rf_transfer_req spend = {.debit_account = s.wallet, .credit_account = shop,
                                    .amount_minor = 400, .currency = "USD"};
    struct rf_transfer_res t;
    assert_int_equal(rf_transfer_create(rf_core_fx.db, &spend, &t, NULL), RF_OK);
    rf_transfer_clear(&t.transfer);
    struct checkout_event_res r = event(CHECKOUT_EV_REFUNDED, s.co.id);
    assert_true(r.applied);
    sale_reload(&s);
    assert_int_equal(s.co.status, RF_CHECKOUT_REFUNDED);
    assert_int_equal(s.co.refund_shortfall_minor, 400);
    assert_int_equal(posted(s.wallet), 0);
    assert_int_equal(posted(shop), 400);
    rf_checkout_clear(&s.co);
    check_clean();
}

/* An account that may go negative gives the whole credit back. */
static void test_refund_negative_allowed(void **state) {
    (void)state;
    struct sale s;
    sale_new(&s, true, 0);
    event(CHECKOUT_EV_PAID, s.co.id);
    char shop[64];
    wallet(shop, sizeof shop, "USD", false);
    struct rf_transfer_req spend = {.debit_account = s.wallet, .credit_account = shop,
                                    .amount_minor = 400, .currency = "USD"};
    struct rf_transfer_res t;
    assert_int_equal(rf_transfer_create(rf_core_fx.db, &spend, &t, NULL), RF_OK);
    rf_transfer_clear(&t.transfer);
    assert_true(event(CHECKOUT_EV_REFUNDED, s.co.id).applied);
    sale_reload(&s);
    assert_int_equal(s.co.refund_shortfall_minor, 0);
    assert_int_equal(posted(s.wallet), -400);
    rf_checkout_clear(&s.co);
    check_clean();
}

/* Refund and expiry of a pending checkout; an unknown checkout. */
static void test_pending_edges(void **state) {
    (void)state;
    struct sale s;
    sale_new(&s, false, 0);
    struct checkout_event_res r = event(CHECKOUT_EV_REFUNDED, s.co.id);
    assert_true(r.matched);
    assert_false(r.applied);
    assert_string_equal(r.status, "pending");
    r = event(CHECKOUT_EV_EXPIRED, s.co.id);
    assert_true(r.applied);
    assert_string_equal(r.status, "expired");
    r = event(CHECKOUT_EV_PAID, s.co.id); /* paid after expired: nothing granted */
    assert_false(r.applied);
    assert_int_equal(posted(s.wallet), 0);
    assert_int_equal(rf_entitlement_get(rf_core_fx.db, s.user, s.key, &(struct rf_entitlement){0}),
                     RF_ERR_ENTITLEMENT_NOT_FOUND);
    r = event(CHECKOUT_EV_PAID, "no-such-checkout");
    assert_false(r.matched);
    rf_checkout_clear(&s.co);
    check_clean();
}

/* Past expires_at a pending checkout reads as expired and cannot be paid. */
static void test_lapsed_cannot_be_paid(void **state) {
    (void)state;
    struct sale s;
    sale_new(&s, false, rf_now_ms() + 300);
    nanosleep(&(struct timespec){0, 400 * 1000 * 1000}, NULL);
    sale_reload(&s);
    assert_int_equal(s.co.status, RF_CHECKOUT_EXPIRED);
    struct checkout_event_res r = event(CHECKOUT_EV_PAID, s.co.id);
    assert_false(r.applied);
    assert_string_equal(r.status, "expired");
    assert_int_equal(posted(s.wallet), 0);
    assert_true(event(CHECKOUT_EV_EXPIRED, s.co.id).applied); /* its row turns expired */
    rf_checkout_clear(&s.co);
    check_clean();
}

/* A key the user already held from another source stays that source's. */
static void test_key_held_elsewhere(void **state) {
    (void)state;
    struct sale s;
    sale_new(&s, false, 0);
    struct rf_grant_req g = {.user_id = s.user, .key = s.key, .source = "manual"};
    struct rf_grant_res gr;
    assert_int_equal(rf_entitlement_grant(rf_core_fx.db, &g, &gr, NULL), RF_OK);
    rf_entitlement_clear(&gr.ent);
    assert_true(event(CHECKOUT_EV_PAID, s.co.id).applied);
    assert_ent(&s, RF_ENT_STATUS_ACTIVE, "manual");
    assert_true(event(CHECKOUT_EV_REFUNDED, s.co.id).applied);
    assert_ent(&s, RF_ENT_STATUS_ACTIVE, "manual"); /* not this checkout's to revoke */
    assert_int_equal(posted(s.wallet), 0);
    rf_checkout_clear(&s.co);
    check_clean();
}

/* ---- create and bind ----------------------------------------------------------- */

static rf_err create_with(const char *items, const char *ref, struct rf_checkout *out) {
    struct rf_checkout_req req = {.user_id = "u1", .currency = "USD", .amount_minor = 100,
                                  .provider = "stripe", .provider_ref = ref, .items_json = items};
    struct rf_fault f;
    rf_err err = rf_op_run(rf_core_fx.db, RF_OP_CHECKOUT_CREATE, &req, out, NULL, &f);
    return err;
}

static void test_create_rules(void **state) {
    (void)state;
    struct rf_checkout c;
    char eur[64], items[512];
    wallet(eur, sizeof eur, "EUR", false);
    snprintf(items, sizeof items, "[{\"type\":\"credit\",\"account\":\"%s\",\"amount_minor\":1}]", eur);
    assert_int_equal(create_with(items, NULL, &c), RF_ERR_CURRENCY_MISMATCH);
    assert_int_equal(create_with("[{\"type\":\"credit\",\"account\":\"nobody-here\","
                                 "\"amount_minor\":1}]", NULL, &c), RF_ERR_ACCOUNT_NOT_FOUND);
    assert_int_equal(create_with("[{\"type\":\"entitlement\",\"key\":\"k\",\"amount_minor\":1}]",
                                 NULL, &c), RF_ERR_INVALID);
    assert_int_equal(create_with("[{\"type\":\"credit\",\"account\":\"funding:USD\","
                                 "\"amount_minor\":1}]", NULL, &c), RF_ERR_INVALID);
    assert_int_equal(create_with("[{\"type\":\"entitlement\",\"key\":\"k\"},"
                                 "{\"type\":\"entitlement\",\"key\":\"k\"}]", NULL, &c),
                     RF_ERR_INVALID);
    assert_int_equal(create_with("[]", NULL, &c), RF_ERR_INVALID);
    assert_int_equal(create_with("{}", NULL, &c), RF_ERR_INVALID);
    char many[4096] = "[";
    for (int i = 0; i <= RF_CHECKOUT_ITEMS_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s{\"type\":\"entitlement\","
                 "\"key\":\"k%d\"}", i ? "," : "", i);
    strcat(many, "]");
    assert_int_equal(create_with(many, NULL, &c), RF_ERR_INVALID);
    check_clean();
}

static void test_bind_ref(void **state) {
    (void)state;
    struct sale a, b;
    sale_new(&a, false, 0);
    sale_new(&b, false, 0);
    char ref[64], other[64];
    rf_rand_id("cs", ref, sizeof ref);
    rf_rand_id("cs", other, sizeof other);
    struct rf_checkout c;
    struct rf_checkout_ref bind = {.id = a.co.id, .provider = "stripe", .ref = ref};
    assert_int_equal(rf_checkout_bind_ref(rf_core_fx.db, &bind, &c), RF_OK);
    assert_string_equal(c.provider_ref, ref);
    assert_int_equal(c.version, 2);
    rf_checkout_clear(&c);
    assert_int_equal(rf_checkout_bind_ref(rf_core_fx.db, &bind, &c), RF_OK); /* the same again */
    assert_int_equal(c.version, 2);
    rf_checkout_clear(&c);
    bind.ref = other;
    assert_int_equal(rf_checkout_bind_ref(rf_core_fx.db, &bind, &c), RF_ERR_PROVIDER_REF_BOUND);
    struct rf_checkout_ref steal = {.id = b.co.id, .provider = "stripe", .ref = ref};
    assert_int_equal(rf_checkout_bind_ref(rf_core_fx.db, &steal, &c), RF_ERR_PROVIDER_REF_TAKEN);
    steal.provider = "paypal";
    assert_int_equal(rf_checkout_bind_ref(rf_core_fx.db, &steal, &c), RF_ERR_INVALID);
    /* an event finds the checkout by its reference */
    struct event_call e = {.ev = CHECKOUT_EV_PAID, .ref = ref};
    assert_int_equal(core_write(rf_core_fx.db, "test_checkout_event", 0, event_tx, &e), RF_OK);
    assert_true(e.res.matched && e.res.applied);
    assert_string_equal(e.res.checkout_id, a.co.id);
    /* cancel: pending only */
    struct rf_checkout_ref cancel = {.id = b.co.id};
    assert_int_equal(rf_checkout_cancel(rf_core_fx.db, &cancel, &c), RF_OK);
    assert_int_equal(c.status, RF_CHECKOUT_CANCELED);
    rf_checkout_clear(&c);
    assert_int_equal(rf_checkout_cancel(rf_core_fx.db, &cancel, &c), RF_ERR_INVALID_STATE);
    cancel.id = a.co.id;
    assert_int_equal(rf_checkout_cancel(rf_core_fx.db, &cancel, &c), RF_ERR_INVALID_STATE);
    rf_checkout_clear(&a.co);
    rf_checkout_clear(&b.co);
    check_clean();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_paid_twice_fulfils_once, clean_before),
        cmocka_unit_test_setup(test_expired_after_fulfilled_no_effect, clean_before),
        cmocka_unit_test_setup(test_refunded_twice_reverses_once, clean_before),
        cmocka_unit_test_setup(test_refund_shortfall, clean_before),
        cmocka_unit_test_setup(test_refund_negative_allowed, clean_before),
        cmocka_unit_test_setup(test_pending_edges, clean_before),
        cmocka_unit_test_setup(test_lapsed_cannot_be_paid, clean_before),
        cmocka_unit_test_setup(test_key_held_elsewhere, clean_before),
        cmocka_unit_test_setup(test_create_rules, clean_before),
        cmocka_unit_test_setup(test_bind_ref, clean_before),
    };
    return cmocka_run_group_tests(tests, rf_core_setup, rf_core_teardown);
}
