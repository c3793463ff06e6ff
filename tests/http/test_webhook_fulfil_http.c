/*
 * test_webhook_fulfil_http - webhook deliveries driving checkouts to their
 * effects, black box, on the back end in RF_TEST_DB (seed 001's webhook
 * rows). Each test creates a checkout (one entitlement item, one credit
 * item into a fresh account) and delivers signed events. Proves:
 *  - one Stripe checkout.session.completed delivered 10 times one after
 *    another and then 32 times at once: every delivery 200, exactly one not
 *    a duplicate, the checkout fulfilled once (its version never moves
 *    again), the entitlement granted once, the credit applied once (one
 *    entry, the balance the item's amount), one processed ledger row;
 *  - out of order: expired after completed (ignored, still fulfilled);
 *    refunded delivered before completed (deferred, then applied right
 *    after the payment: refunded, balance 0, entitlement revoked); a refund
 *    delivered twice (one effect); a checkout matched by
 *    client_reference_id when the provider ref is not bound;
 * and after every test `rf_ledger_check` is clean: the ledger balances and
 * every fulfilled checkout has exactly its grants and credits.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "webhook_sign.h"

#define SEQUENTIAL 10
#define PARALLEL 32
#define CREDIT 500

struct co {
    char id[130], user[64], key[64], wallet[64], ref[64], cur[4];
};

static void expect(const struct rf_t_resp *r, int status) {
    if (r->status != status) fail_msg("expected %d, got %d %s", status, r->status, r->body);
}

/* Fresh names for a checkout not created yet, and its wallet. */
static void co_init(struct co *c) {
    memset(c, 0, sizeof *c);
    rand_currency(c->cur);
    RID(c->user, "u");
    RID(c->key, "pro");
    RID(c->wallet, "w");
    RID(c->ref, "cs");
    env_account_create(&g_env, c->wallet, c->cur, false);
}

/* Creates c's checkout of provider (ref bound at creation when with_ref);
 * its status in the 201 must be want. */
static void checkout_post(const char *provider, bool with_ref, struct co *c, const char *want) {
    char body[1024], ref_part[128] = "", idem[128];
    if (with_ref) snprintf(ref_part, sizeof ref_part, ", \"provider_ref\": \"%s\"", c->ref);
    snprintf(body, sizeof body,
             "{\"user_id\": \"%s\", \"currency\": \"%s\", \"amount_minor\": 1999,"
             " \"provider\": \"%s\"%s, \"items\": [{\"type\": \"entitlement\", \"key\": \"%s\"},"
             " {\"type\": \"credit\", \"account\": \"%s\", \"amount_minor\": %d}]}",
             c->user, c->cur, provider, ref_part, c->key, c->wallet, CREDIT);
    idem_hdr_fresh(idem, sizeof idem);
    const char *h[] = {idem, NULL};
    struct rf_t_resp r;
    env_req(&g_env, "POST", "/v1/checkouts", g_env.service, body, h, &r);
    expect(&r, 201);
    json_t *j = rf_resp_json(&r);
    snprintf(c->id, sizeof c->id, "%s", rf_t_json_str(j, "id"));
    if (strcmp(rf_t_json_str(j, "status"), want) != 0)
        fail_msg("a new checkout is %s, expected %s: %s", rf_t_json_str(j, "status"), want, r.body);
    json_decref(j);
    rf_resp_free(&r);
}

/* A pending checkout of provider (ref bound at creation when with_ref). */
static void checkout_new(const char *provider, bool with_ref, struct co *c) {
    co_init(c);
    checkout_post(provider, with_ref, c, "pending");
}

/* The checkout's status; its version into *version when not NULL. */
static void checkout_state(const struct co *c, char *status, size_t cap, int64_t *version) {
    char path[256];
    snprintf(path, sizeof path, "/v1/checkouts/%s", c->id);
    struct rf_t_resp r;
    env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
    expect(&r, 200);
    json_t *j = rf_resp_json(&r);
    snprintf(status, cap, "%s", rf_t_json_str(j, "status"));
    if (version) *version = rf_t_json_int(j, "version");
    json_decref(j);
    rf_resp_free(&r);
}

static void assert_checkout(const struct co *c, const char *want) {
    char status[32];
    checkout_state(c, status, sizeof status, NULL);
    if (strcmp(status, want) != 0) fail_msg("checkout %s is %s, expected %s", c->id, status, want);
}

/* The entitlement's status ("" when there is none). */
static void ent_status(const struct co *c, char *out, size_t cap) {
    char path[256];
    ent_path(path, sizeof path, c->user, c->key);
    struct rf_t_resp r;
    env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
    out[0] = '\0';
    if (r.status == 200) {
        json_t *j = rf_resp_json(&r);
        snprintf(out, cap, "%s", rf_t_json_str(j, "status"));
        json_decref(j);
    } else if (r.status != 404) {
        fail_msg("entitlement read: %d %s", r.status, r.body);
    }
    rf_resp_free(&r);
}

/* The number of the wallet's ledger entries. */
static int entries(const struct co *c) {
    char path[256];
    snprintf(path, sizeof path, "/v1/accounts/%s/entries?limit=500", c->wallet);
    struct rf_t_resp r;
    env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
    expect(&r, 200);
    json_t *j = rf_resp_json(&r);
    int n = (int)json_array_size(json_object_get(j, "data"));
    json_decref(j);
    rf_resp_free(&r);
    return n;
}

static void stripe_event(char *out, size_t cap, const char *ev_id, const char *type,
                         const char *object) {
    snprintf(out, cap,
             "{\"id\": \"%s\", \"object\": \"event\", \"api_version\": \"2024-06-20\","
             " \"type\": \"%s\", \"created\": %lld, \"livemode\": false,"
             " \"data\": {\"object\": %s}}",
             ev_id, type, (long long)wh_now_s(), object);
}

static void session_completed(char *out, size_t cap, const char *ev_id, const struct co *c) {
    char obj[512];
    snprintf(obj, sizeof obj,
             "{\"id\": \"%s\", \"object\": \"checkout.session\", \"payment_status\": \"paid\","
             " \"client_reference_id\": \"%s\", \"amount_total\": 1999}",
             c->ref, c->id);
    stripe_event(out, cap, ev_id, "checkout.session.completed", obj);
}

/* Delivers body (signed now) and returns whether it was a duplicate. */
static bool deliver(const char *provider, const char *body, const char *want_status) {
    struct rf_t_resp r;
    wh_deliver(&g_env, provider, WH_STRIPE_SECRET, wh_now_s(), body, &r);
    expect(&r, 200);
    json_t *j = rf_resp_json(&r);
    bool dup = json_is_true(json_object_get(j, "duplicate"));
    const char *st = rf_t_json_str(json_object_get(j, "event"), "status");
    if (want_status && strcmp(st, want_status) != 0)
        fail_msg("event status %s, expected %s: %s", st, want_status, r.body);
    json_decref(j);
    rf_resp_free(&r);
    return dup;
}

static void assert_fulfilled_once(const struct co *c) {
    char st[32];
    assert_checkout(c, "fulfilled");
    ent_status(c, st, sizeof st);
    assert_string_equal(st, "active");
    assert_int_equal(env_balance(&g_env, c->wallet).posted, CREDIT);
    assert_int_equal(entries(c), 1);
}

/* ---- exactly once ------------------------------------------------------------ */

static void test_completed_delivered_42_times(void **state) {
    (void)state;
    struct co c;
    checkout_new("stripe", true, &c);
    char ev_id[64], body[1024];
    RID(ev_id, "evt");
    session_completed(body, sizeof body, ev_id, &c);
    int firsts = 0;
    for (int i = 0; i < SEQUENTIAL; i++) firsts += !deliver("stripe", body, "processed");
    assert_int_equal(firsts, 1);
    assert_fulfilled_once(&c);
    int64_t version = 0;
    char st[32];
    checkout_state(&c, st, sizeof st, &version);

    /* every one a replay now */
    assert_int_equal(wh_deliver_parallel(&g_env, "stripe", WH_STRIPE_SECRET, body, PARALLEL), 0);
    assert_fulfilled_once(&c);
    int64_t after = 0;
    checkout_state(&c, st, sizeof st, &after);
    assert_int_equal(after, version); /* no further transition */
    env_ledger_check(&g_env, 1);
}

/* A fresh event id delivered 32 times at once as its first delivery: one
 * fulfilment among racing first deliveries. */
static void test_first_delivery_parallel(void **state) {
    (void)state;
    struct co c;
    checkout_new("stripe", true, &c);
    char ev_id[64], body[1024];
    RID(ev_id, "evt");
    session_completed(body, sizeof body, ev_id, &c);
    int firsts = wh_deliver_parallel(&g_env, "stripe", WH_STRIPE_SECRET, body, PARALLEL);
    assert_int_equal(firsts, 1);
    assert_fulfilled_once(&c);
    env_ledger_check(&g_env, 1);
}

/* A checkout paid by a first checkout.session.completed (its body into
 * paid[cap]): fulfilled. */
static void checkout_fulfilled(struct co *c, char *paid, size_t cap) {
    char ev[64];
    checkout_new("stripe", true, c);
    RID(ev, "evt");
    session_completed(paid, cap, ev, c);
    assert_false(deliver("stripe", paid, "processed"));
    assert_fulfilled_once(c);
}

/* ---- out of order ----------------------------------------------------------- */

static void test_expired_after_completed(void **state) {
    (void)state;
    struct co c;
    char ev[64], body[1024], obj[256];
    checkout_fulfilled(&c, body, sizeof body);
    RID(ev, "evt");
    snprintf(obj, sizeof obj, "{\"id\": \"%s\", \"object\": \"checkout.session\"}", c.ref);
    stripe_event(body, sizeof body, ev, "checkout.session.expired", obj);
    assert_false(deliver("stripe", body, "ignored"));
    assert_fulfilled_once(&c);
    env_ledger_check(&g_env, 1);
}

static void refund_body(char *out, size_t cap, const char *ev, const struct co *c) {
    char obj[512];
    snprintf(obj, sizeof obj,
             "{\"id\": \"ch_1\", \"object\": \"charge\", \"refunded\": true,"
             " \"amount_refunded\": 1999, \"payment_intent\": \"pi_unbound\","
             " \"metadata\": {\"checkout_id\": \"%s\"}}",
             c->id);
    stripe_event(out, cap, ev, "charge.refunded", obj);
}

static void assert_refunded(const struct co *c) {
    char st[32];
    assert_checkout(c, "refunded");
    ent_status(c, st, sizeof st);
    if (strcmp(st, "active") == 0) fail_msg("the entitlement of a refunded checkout is active");
    assert_int_equal(env_balance(&g_env, c->wallet).posted, 0);
}

static void test_refund_before_completed_and_twice(void **state) {
    (void)state;
    struct co c;
    checkout_new("stripe", true, &c);
    char refund_ev[64], paid_ev[64], refund[1024], paid[1024];
    RID(refund_ev, "evt");
    RID(paid_ev, "evt");
    refund_body(refund, sizeof refund, refund_ev, &c);
    session_completed(paid, sizeof paid, paid_ev, &c);
    assert_false(deliver("stripe", refund, "deferred")); /* no payment yet: waits */
    assert_checkout(&c, "pending");
    assert_false(deliver("stripe", paid, "processed")); /* pays, then the refund follows */
    assert_refunded(&c);
    assert_true(deliver("stripe", refund, NULL)); /* the refund again: nothing */
    assert_true(deliver("stripe", paid, NULL));   /* the payment again: nothing */
    char other[64], again[1024];
    RID(other, "evt"); /* a second refund event for the same charge */
    refund_body(again, sizeof again, other, &c);
    assert_false(deliver("stripe", again, "ignored"));
    assert_refunded(&c);
    env_ledger_check(&g_env, 1);
}

static void test_refund_after_completed_twice(void **state) {
    (void)state;
    struct co c;
    char ev[64], body[1024], refund[1024];
    checkout_fulfilled(&c, body, sizeof body);
    RID(ev, "evt");
    refund_body(refund, sizeof refund, ev, &c);
    assert_false(deliver("stripe", refund, "processed"));
    assert_true(deliver("stripe", refund, "processed"));
    assert_refunded(&c);
    /* completed delivered again after the refund: a duplicate, nothing */
    assert_true(deliver("stripe", body, NULL));
    assert_refunded(&c);
    env_ledger_check(&g_env, 1);
}

/* No ref bound: the session's client_reference_id names the checkout. */
static void test_matched_by_client_reference(void **state) {
    (void)state;
    struct co c;
    checkout_new("stripe", false, &c);
    char ev[64], body[1024];
    RID(ev, "evt");
    session_completed(body, sizeof body, ev, &c);
    assert_false(deliver("stripe", body, "processed"));
    assert_fulfilled_once(&c);
    env_ledger_check(&g_env, 1);
}

/* A payment delivered before its checkout can be found waits as unmatched,
 * and is applied in the transaction that makes the checkout findable: its
 * creation with the reference, or the reference's binding. */
static void completed_by_ref_only(char *out, size_t cap, const char *ev_id, const struct co *c) {
    char obj[256];
    snprintf(obj, sizeof obj,
             "{\"id\": \"%s\", \"object\": \"checkout.session\", \"payment_status\": \"paid\"}",
             c->ref);
    stripe_event(out, cap, ev_id, "checkout.session.completed", obj);
}

static void test_unmatched_matched_later(void **state) {
    (void)state;
    char ev[64], body[1024];
    struct co c;
    co_init(&c); /* the event first, then the checkout that carries its ref */
    RID(ev, "evt");
    completed_by_ref_only(body, sizeof body, ev, &c);
    assert_false(deliver("stripe", body, "unmatched"));
    checkout_post("stripe", true, &c, "fulfilled");
    assert_fulfilled_once(&c);
    assert_true(deliver("stripe", body, NULL)); /* still a replay, nothing more */
    assert_fulfilled_once(&c);

    struct co d; /* the checkout first, the event, then the binding */
    checkout_new("stripe", false, &d);
    RID(ev, "evt");
    completed_by_ref_only(body, sizeof body, ev, &d);
    assert_false(deliver("stripe", body, "unmatched"));
    assert_checkout(&d, "pending");
    char path[256], bind[256];
    snprintf(path, sizeof path, "/v1/checkouts/%s/provider-ref", d.id);
    snprintf(bind, sizeof bind, "{\"provider\": \"stripe\", \"ref\": \"%s\"}", d.ref);
    struct rf_t_resp r;
    env_req(&g_env, "PUT", path, g_env.service, bind, NULL, &r);
    expect(&r, 200);
    rf_resp_free(&r);
    assert_fulfilled_once(&d);
    env_req(&g_env, "PUT", path, g_env.service, bind, NULL, &r); /* the same binding again */
    expect(&r, 200);
    rf_resp_free(&r);
    assert_fulfilled_once(&d);
    env_ledger_check(&g_env, 1);
}

/* The generic scheme: checkout.paid by provider_ref on another provider. */
static void test_generic_provider(void **state) {
    (void)state;
    char prov[64];
    RID(prov, "gen");
    wh_secret_set(&g_env, prov, WH_STRIPE_SECRET);
    struct co c;
    checkout_new(prov, true, &c);
    char ev[64], body[512];
    RID(ev, "evt");
    snprintf(body, sizeof body,
             "{\"id\": \"%s\", \"type\": \"checkout.paid\", \"created\": 1767225600,"
             " \"provider_ref\": \"%s\"}", ev, c.ref);
    assert_false(deliver(prov, body, "processed"));
    assert_fulfilled_once(&c);
    RID(ev, "evt");
    snprintf(body, sizeof body,
             "{\"id\": \"%s\", \"type\": \"checkout.refunded\", \"created\": 1767225601,"
             " \"checkout_id\": \"%s\"}", ev, c.id);
    assert_false(deliver(prov, body, "processed"));
    assert_refunded(&c);
    env_ledger_check(&g_env, 1);
}

static int setup(void **state) {
    setenv("RACEFREE_SECRETS_KEY", WH_TEST_SECRETS_KEY, 1);
    int rc = env_group_setup(state);
    if (rc == 0) wh_secret_set(&g_env, "stripe", WH_STRIPE_SECRET);
    return rc;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completed_delivered_42_times),
        cmocka_unit_test(test_first_delivery_parallel),
        cmocka_unit_test(test_expired_after_completed),
        cmocka_unit_test(test_refund_before_completed_and_twice),
        cmocka_unit_test(test_refund_after_completed_twice),
        cmocka_unit_test(test_matched_by_client_reference),
        cmocka_unit_test(test_unmatched_matched_later),
        cmocka_unit_test(test_generic_provider),
    };
    return cmocka_run_group_tests(tests, setup, env_group_teardown);
}
