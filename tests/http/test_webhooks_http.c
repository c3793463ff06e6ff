/*
 * test_webhooks_http - webhook ingestion and the event ledger over HTTP,
 * black box, on the back end in RF_TEST_DB. Deliveries are signed by the
 * test's own provider (webhook_sign.c, libsodium HMAC-SHA256 like Stripe).
 * Proves:
 *  - secrets: PUT/rotate/list as admin, never showing a secret; other roles
 *    403; bad input 400; rotate of an unknown provider 404;
 *  - rejections: bad signature, stale and future timestamps, wrong secret,
 *    one altered body byte, no header, a malformed header, an unknown
 *    provider: each its 4xx code, and the ledger holds nothing for them;
 *  - serve --webhook-tolerance-s narrows the timestamp window;
 *  - rotation: during the overlap both the old and the new secret verify;
 *    after `set` only the new one does;
 *  - the ledger: an event for no known checkout is recorded unmatched, a
 *    replay answers 200 {"duplicate": true} and records nothing more; an
 *    unhandled type is recorded ignored; several v1 values (one right) and
 *    a v0 are accepted; 32 parallel deliveries of one event: all 200,
 *    exactly one first delivery, one row;
 *  - GET /v1/webhook-events?status=&provider= lists them, admin only;
 *  - the CLI's secrets (set, rotate, list) are the ones the server verifies with.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "webhook_sign.h"

#define SECRET_A "whsec_test_secret_aaaaaaaaaaaaaaaa"
#define SECRET_B "whsec_test_secret_bbbbbbbbbbbbbbbb"
#define SECRET_C "whsec_test_secret_cccccccccccccccc"
#define PARALLEL 32

static void expect_status(const struct rf_t_resp *r, int status, const char *code) {
    if (r->status != status) fail_msg("expected %d %s, got %d %s", status, code ? code : "",
                                      r->status, r->body);
    if (!code) return;
    char why[256];
    if (rf_check_problem(r, code, why, sizeof why) != 0) fail_msg("%s: %s", why, r->body);
}

/* A provider name no other test run uses (the PostgreSQL store is shared). */
static void fresh_provider(char *out, size_t cap) { rf_rand_id("gen", out, cap); }

static void generic_event(char *out, size_t cap, const char *event_id, const char *type,
                          const char *checkout_id) {
    snprintf(out, cap,
             "{\"id\": \"%s\", \"type\": \"%s\", \"created\": 1767225600,"
             " \"checkout_id\": \"%s\", \"extra\": {\"ignored\": [1, 2]}}",
             event_id, type, checkout_id);
}

/* A fresh provider with SECRET_A, and a fresh generic event of type for
 * checkout_id. */
static void provider_and_event(char *prov, size_t prov_cap, char *body, size_t cap,
                               const char *type, const char *checkout_id) {
    char ev_id[64];
    fresh_provider(prov, prov_cap);
    wh_secret_set(&g_env, prov, SECRET_A);
    rf_rand_id("evt", ev_id, sizeof ev_id);
    generic_event(body, cap, ev_id, type, checkout_id);
}

/* The number of ledger rows of provider (with ?status= when not NULL). */
static int events_listed(const char *provider, const char *status) {
    char path[512];
    snprintf(path, sizeof path, "/v1/webhook-events?provider=%s%s%s&limit=500", provider,
             status ? "&status=" : "", status ? status : "");
    struct rf_t_resp r;
    env_req(&g_env, "GET", path, g_env.admin, NULL, NULL, &r);
    expect_status(&r, 200, NULL);
    json_t *j = rf_resp_json(&r);
    json_t *data = json_object_get(j, "data");
    if (!json_is_array(data)) fail_msg("no data: %s", r.body);
    int n = (int)json_array_size(data);
    for (int i = 0; i < n; i++)
        if (strcmp(rf_t_json_str(json_array_get(data, (size_t)i), "provider"), provider) != 0)
            fail_msg("?provider= listed another provider: %s", r.body);
    json_decref(j);
    rf_resp_free(&r);
    return n;
}

static json_t *delivered(const struct rf_t_resp *r, bool duplicate, const char *status) {
    expect_status(r, 200, NULL);
    json_t *j = rf_resp_json(r);
    if (!json_is_true(json_object_get(j, "received")) ||
        json_is_true(json_object_get(j, "duplicate")) != duplicate)
        fail_msg("expected duplicate=%d: %s", duplicate, r->body);
    json_t *ev = json_object_get(j, "event");
    if (status && strcmp(rf_t_json_str(ev, "status"), status) != 0)
        fail_msg("expected event status %s: %s", status, r->body);
    return j;
}

/* ---- secrets --------------------------------------------------------------- */

static void test_secret_admin(void **state) {
    (void)state;
    char prov[64], path[256];
    fresh_provider(prov, sizeof prov);
    snprintf(path, sizeof path, "/v1/webhook-secrets/%s", prov);
    struct rf_t_resp r;
    env_req(&g_env, "PUT", path, g_env.admin, "{\"secret\": \"" SECRET_A "\"}", NULL, &r);
    expect_status(&r, 200, NULL);
    json_t *j = rf_resp_json(&r);
    assert_int_equal(rf_t_json_int(j, "version"), 1);
    assert_int_equal(etag_version(&r), 1);
    assert_true(json_is_null(json_object_get(j, "previous_expires_at")));
    assert_null(strstr(r.body, SECRET_A));
    json_decref(j);
    rf_resp_free(&r);

    char rot[300];
    snprintf(rot, sizeof rot, "%s/rotate", path);
    env_req(&g_env, "POST", rot, g_env.admin, "{\"secret\": \"" SECRET_B "\"}", NULL, &r);
    expect_status(&r, 200, NULL);
    j = rf_resp_json(&r);
    assert_int_equal(rf_t_json_int(j, "version"), 2);
    assert_true(is_rfc3339_ms(rf_t_json_str(j, "previous_expires_at")));
    assert_null(strstr(r.body, SECRET_B));
    json_decref(j);
    rf_resp_free(&r);

    /* the list shows the provider and no secret */
    env_req(&g_env, "GET", "/v1/webhook-secrets?limit=500", g_env.admin, NULL, NULL, &r);
    expect_status(&r, 200, NULL);
    assert_non_null(strstr(r.body, prov));
    assert_null(strstr(r.body, "whsec_"));
    rf_resp_free(&r);

    /* roles, bad input, unknown provider */
    env_req(&g_env, "PUT", path, g_env.service, "{\"secret\": \"" SECRET_C "\"}", NULL, &r);
    expect_status(&r, 403, "forbidden");
    rf_resp_free(&r);
    env_req(&g_env, "GET", "/v1/webhook-secrets", g_env.readonly, NULL, NULL, &r);
    expect_status(&r, 403, "forbidden");
    rf_resp_free(&r);
    env_req(&g_env, "PUT", path, g_env.admin, "{\"secret\": \"short\"}", NULL, &r);
    expect_status(&r, 400, NULL);
    rf_resp_free(&r);
    env_req(&g_env, "PUT", path, g_env.admin, "{\"secret\": \"" SECRET_C "\", \"x\": 1}", NULL,
            &r);
    expect_status(&r, 400, "unknown_field");
    rf_resp_free(&r);
    char other[64], rot2[300];
    fresh_provider(other, sizeof other);
    snprintf(rot2, sizeof rot2, "/v1/webhook-secrets/%s/rotate", other);
    env_req(&g_env, "POST", rot2, g_env.admin, "{\"secret\": \"" SECRET_C "\"}", NULL, &r);
    expect_status(&r, 404, "webhook_provider_unknown");
    rf_resp_free(&r);
}

/* ---- rejections ------------------------------------------------------------ */

static void post_raw(const char *provider, const char *header, const char *body,
                     struct rf_t_resp *r) {
    char path[256];
    snprintf(path, sizeof path, "/v1/webhooks/%s", provider);
    const char *h[] = {header, NULL};
    env_req(&g_env, "POST", path, NULL, body, header ? h : NULL, r);
    env_no_5xx_one("POST", path, r);
}

static void test_rejections(void **state) {
    (void)state;
    char prov[64], body[512], sig[WH_SIG_BYTES], hdr[WH_HEADER_BYTES];
    provider_and_event(prov, sizeof prov, body, sizeof body, "checkout.paid", "co-none");
    int64_t now = wh_now_s();
    struct rf_t_resp r;

    wh_deliver(&g_env, prov, SECRET_B, now, body, &r); /* wrong secret */
    expect_status(&r, 401, "webhook_signature_mismatch");
    rf_resp_free(&r);
    wh_deliver(&g_env, prov, SECRET_A, now - 301, body, &r); /* stale */
    expect_status(&r, 401, "webhook_timestamp_out_of_tolerance");
    rf_resp_free(&r);
    wh_deliver(&g_env, prov, SECRET_A, now + 301, body, &r); /* from the future */
    expect_status(&r, 401, "webhook_timestamp_out_of_tolerance");
    rf_resp_free(&r);

    /* one byte of the body altered after signing */
    wh_sign(SECRET_A, now, body, sig);
    wh_header(prov, sig, hdr);
    char altered[512];
    snprintf(altered, sizeof altered, "%s", body);
    char *p = strstr(altered, "1767225600");
    p[9] = '1';
    post_raw(prov, hdr, altered, &r);
    expect_status(&r, 401, "webhook_signature_mismatch");
    rf_resp_free(&r);
    /* a bad signature: right shape, wrong digits */
    char bad[WH_HEADER_BYTES];
    snprintf(bad, sizeof bad, "X-Racefree-Signature: t=%lld,v1=%064d", (long long)now, 0);
    post_raw(prov, bad, body, &r);
    expect_status(&r, 401, "webhook_signature_mismatch");
    rf_resp_free(&r);
    post_raw(prov, NULL, body, &r); /* no header */
    expect_status(&r, 400, "webhook_signature_malformed");
    rf_resp_free(&r);
    post_raw(prov, "X-Racefree-Signature: v1=abc", body, &r);
    expect_status(&r, 400, "webhook_signature_malformed");
    rf_resp_free(&r);
    /* signed for stripe's header name but sent to a generic provider */
    char stripe_hdr[WH_HEADER_BYTES];
    wh_header("stripe", sig, stripe_hdr);
    post_raw(prov, stripe_hdr, body, &r);
    expect_status(&r, 400, "webhook_signature_malformed");
    rf_resp_free(&r);
    /* an unknown provider, correctly signed with some secret */
    char unknown[64];
    fresh_provider(unknown, sizeof unknown);
    wh_deliver(&g_env, unknown, SECRET_A, now, body, &r);
    expect_status(&r, 404, "webhook_provider_unknown");
    rf_resp_free(&r);
    assert_int_equal(events_listed(prov, NULL), 0);
    assert_int_equal(events_listed(unknown, NULL), 0);

    /* a verified body that is no event: 400, nothing recorded */
    wh_deliver(&g_env, prov, SECRET_A, now, "{\"type\": \"checkout.paid\"}", &r);
    expect_status(&r, 400, "webhook_payload_invalid");
    rf_resp_free(&r);
    assert_int_equal(events_listed(prov, NULL), 0);

    /* and the same event correctly signed is accepted */
    wh_deliver(&g_env, prov, SECRET_A, now, body, &r);
    json_decref(delivered(&r, false, "unmatched"));
    rf_resp_free(&r);
    assert_int_equal(events_listed(prov, NULL), 1);
}

/* ---- rotation ------------------------------------------------------------------ */

static void deliver_new(const char *prov, const char *secret, int status, const char *code) {
    char ev_id[64], body[512];
    rf_rand_id("evt", ev_id, sizeof ev_id);
    generic_event(body, sizeof body, ev_id, "checkout.expired", "co-none");
    struct rf_t_resp r;
    wh_deliver(&g_env, prov, secret, wh_now_s(), body, &r);
    expect_status(&r, status, code);
    rf_resp_free(&r);
}

static void test_rotation_overlap(void **state) {
    (void)state;
    char prov[64], path[256];
    fresh_provider(prov, sizeof prov);
    wh_secret_set(&g_env, prov, SECRET_A);
    snprintf(path, sizeof path, "/v1/webhook-secrets/%s/rotate", prov);
    struct rf_t_resp r;
    env_req(&g_env, "POST", path, g_env.admin, "{\"secret\": \"" SECRET_B "\"}", NULL, &r);
    expect_status(&r, 200, NULL);
    rf_resp_free(&r);
    deliver_new(prov, SECRET_A, 200, NULL); /* the old one, during the overlap */
    deliver_new(prov, SECRET_B, 200, NULL);
    deliver_new(prov, SECRET_C, 401, "webhook_signature_mismatch");
    wh_secret_set(&g_env, prov, SECRET_C); /* set ends the overlap */
    deliver_new(prov, SECRET_A, 401, "webhook_signature_mismatch");
    deliver_new(prov, SECRET_B, 401, "webhook_signature_mismatch");
    deliver_new(prov, SECRET_C, 200, NULL);
    assert_int_equal(events_listed(prov, NULL), 3);
}

/* ---- the ledger ----------------------------------------------------------------- */

static void test_replay_and_statuses(void **state) {
    (void)state;
    char prov[64], ev_id[64], body[512];
    fresh_provider(prov, sizeof prov);
    wh_secret_set(&g_env, prov, SECRET_A);
    rf_rand_id("evt", ev_id, sizeof ev_id);
    generic_event(body, sizeof body, ev_id, "checkout.paid", "co-not-yet");
    struct rf_t_resp r;
    wh_deliver(&g_env, prov, SECRET_A, wh_now_s(), body, &r);
    json_t *first = delivered(&r, false, "unmatched");
    rf_resp_free(&r);
    /* a replay, signed again later as providers do */
    wh_deliver(&g_env, prov, SECRET_A, wh_now_s() + 1, body, &r);
    json_t *again = delivered(&r, true, "unmatched");
    rf_resp_free(&r);
    json_t *e1 = json_object_get(first, "event"), *e2 = json_object_get(again, "event");
    assert_string_equal(rf_t_json_str(e1, "id"), rf_t_json_str(e2, "id"));
    assert_string_equal(rf_t_json_str(e1, "event_id"), ev_id);
    assert_string_equal(rf_t_json_str(e1, "checkout_id"), "co-not-yet");
    assert_true(is_rfc3339_ms(rf_t_json_str(e1, "received_at")));
    assert_string_equal(rf_t_json_str(e1, "event_created_at"), "2026-01-01T00:00:00.000Z");
    json_decref(first);
    json_decref(again);

    /* an unhandled type: ignored */
    char ev2[64];
    rf_rand_id("evt", ev2, sizeof ev2);
    generic_event(body, sizeof body, ev2, "customer.updated", "co-x");
    wh_deliver(&g_env, prov, SECRET_A, wh_now_s(), body, &r);
    json_decref(delivered(&r, false, "ignored"));
    rf_resp_free(&r);

    assert_int_equal(events_listed(prov, NULL), 2);
    assert_int_equal(events_listed(prov, "unmatched"), 1);
    assert_int_equal(events_listed(prov, "ignored"), 1);
    assert_int_equal(events_listed(prov, "processed"), 0);
    env_req(&g_env, "GET", "/v1/webhook-events?status=bogus", g_env.admin, NULL, NULL, &r);
    expect_status(&r, 400, NULL);
    rf_resp_free(&r);
    env_req(&g_env, "GET", "/v1/webhook-events", g_env.service, NULL, NULL, &r);
    expect_status(&r, 403, "forbidden");
    rf_resp_free(&r);
}

/* Stripe's header: several v1 values (a rotation on Stripe's side), one
 * right, and a v0 scheme that is ignored. */
static void test_stripe_header_forms(void **state) {
    (void)state;
    wh_secret_set(&g_env, "stripe", WH_STRIPE_SECRET);
    char ev_id[64], body[512], sig[WH_SIG_BYTES], hdr[600];
    rf_rand_id("evt", ev_id, sizeof ev_id);
    snprintf(body, sizeof body,
             "{\"id\": \"%s\", \"object\": \"event\", \"type\": \"customer.created\","
             " \"created\": 1767225600, \"data\": {\"object\": {\"id\": \"cus_1\"}}}",
             ev_id);
    int64_t now = wh_now_s();
    wh_sign(WH_STRIPE_SECRET, now, body, sig);
    const char *v1 = strstr(sig, "v1=");
    snprintf(hdr, sizeof hdr, "Stripe-Signature: t=%lld,v0=%064d,v1=%064d,%s", (long long)now, 7,
             0, v1);
    struct rf_t_resp r;
    post_raw("stripe", hdr, body, &r);
    json_decref(delivered(&r, false, "ignored"));
    rf_resp_free(&r);
    /* the racefree header is not Stripe's */
    char rf_hdr[WH_HEADER_BYTES];
    wh_header("generic", sig, rf_hdr);
    post_raw("stripe", rf_hdr, body, &r);
    expect_status(&r, 400, "webhook_signature_malformed");
    rf_resp_free(&r);
}

static void test_parallel_one_event(void **state) {
    (void)state;
    char prov[64], body[512];
    provider_and_event(prov, sizeof prov, body, sizeof body, "checkout.refunded", "co-par");
    assert_int_equal(wh_deliver_parallel(&g_env, prov, SECRET_A, body, PARALLEL), 1);
    assert_int_equal(events_listed(prov, NULL), 1);
}

/* serve --webhook-tolerance-s bounds the timestamp's age (and lead) instead
 * of the 300 s default: 60 s is then too old, 5 s fine. */
static void test_tolerance_flag(void **state) {
    (void)state;
    struct env e;
    const char *args[] = {"--webhook-tolerance-s", "10", NULL};
    env_start(&e, false, args);
    char prov[64], ev_id[64], body[512];
    fresh_provider(prov, sizeof prov);
    wh_secret_set(&e, prov, SECRET_A);
    rf_rand_id("evt", ev_id, sizeof ev_id);
    generic_event(body, sizeof body, ev_id, "checkout.paid", "co-none");
    struct rf_t_resp r;
    wh_deliver(&e, prov, SECRET_A, wh_now_s() - 60, body, &r);
    expect_status(&r, 401, "webhook_timestamp_out_of_tolerance");
    rf_resp_free(&r);
    wh_deliver(&e, prov, SECRET_A, wh_now_s() + 60, body, &r);
    expect_status(&r, 401, "webhook_timestamp_out_of_tolerance");
    rf_resp_free(&r);
    wh_deliver(&e, prov, SECRET_A, wh_now_s() - 5, body, &r);
    expect_status(&r, 200, NULL);
    rf_resp_free(&r);
    env_stop(&e);
}

/* With no secrets key given to either, the server and the CLI seal with the
 * store's own key: a secret set by the CLI verifies a delivery the server
 * takes, and one set over HTTP too (webhooks work with no set-up). */
static void test_store_key_when_none_given(void **state) {
    (void)state;
    unsetenv("RACEFREE_SECRETS_KEY");
    struct env e;
    env_start_fresh(&e, false, NULL);
    char prov[64], prov2[64], ev_id[64], body[512], out[4096], err[4096];
    fresh_provider(prov, sizeof prov);
    const char *set[] = {"webhooks", "secret", "set", "--db", e.db, "--provider", prov,
                         "--secret", SECRET_A, NULL};
    int rc = rf_cli_run(set, out, sizeof out, err, sizeof err, 0);
    if (rc != 0) fail_msg("webhooks secret set without a key: exit %d: %s", rc, err);
    fresh_provider(prov2, sizeof prov2);
    wh_secret_set(&e, prov2, SECRET_B);
    const char *provs[2] = {prov, prov2}, *secrets[2] = {SECRET_A, SECRET_B};
    for (int i = 0; i < 2; i++) {
        rf_rand_id("evt", ev_id, sizeof ev_id);
        generic_event(body, sizeof body, ev_id, "checkout.paid", "co-none");
        struct rf_t_resp r;
        wh_deliver(&e, provs[i], secrets[i], wh_now_s(), body, &r);
        expect_status(&r, 200, NULL);
        rf_resp_free(&r);
        wh_deliver(&e, provs[i], secrets[1 - i], wh_now_s(), body, &r); /* the other's */
        expect_status(&r, 401, "webhook_signature_mismatch");
        rf_resp_free(&r);
    }
    env_stop(&e);
    setenv("RACEFREE_SECRETS_KEY", WH_TEST_SECRETS_KEY, 1);
}

/* ---- the CLI ---------------------------------------------------------------------- */

/* `racefree webhooks secret set|rotate|list` on the server's store: the
 * running server verifies with what the CLI sealed (the same key), list
 * never prints a secret, and bad usage exits 2. */
static void test_cli(void **state) {
    (void)state;
    char prov[64], out[8192], err[2048];
    fresh_provider(prov, sizeof prov);
    const char *set[] = {"webhooks", "secret", "set", "--db", g_env.db, "--provider", prov,
                         "--secret", SECRET_A, NULL};
    assert_int_equal(rf_cli_run(set, out, sizeof out, err, sizeof err, 0), 0);
    deliver_new(prov, SECRET_A, 200, NULL);
    const char *rot[] = {"webhooks", "secret", "rotate", "--db", g_env.db, "--provider", prov,
                         "--secret", SECRET_B, "--overlap-s", "600", NULL};
    assert_int_equal(rf_cli_run(rot, out, sizeof out, err, sizeof err, 0), 0);
    assert_null(strstr(out, "whsec_"));
    deliver_new(prov, SECRET_A, 200, NULL);
    deliver_new(prov, SECRET_B, 200, NULL);
    const char *list[] = {"webhooks", "secret", "list", "--db", g_env.db, NULL};
    assert_int_equal(rf_cli_run(list, out, sizeof out, err, sizeof err, 0), 0);
    assert_non_null(strstr(out, prov));
    assert_null(strstr(out, "whsec_"));
    const char *help[] = {"webhooks", "secret", "rotate", "--help", NULL};
    assert_int_equal(rf_cli_run(help, out, sizeof out, err, sizeof err, 0), 0);
    assert_non_null(strstr(out, "--overlap-s"));
    const char *no_secret[] = {"webhooks", "secret", "set", "--db", g_env.db, "--provider",
                               prov, NULL};
    assert_int_equal(rf_cli_run(no_secret, out, sizeof out, err, sizeof err, 0), 2);
    char unknown[64];
    fresh_provider(unknown, sizeof unknown);
    const char *rot_unknown[] = {"webhooks", "secret", "rotate", "--db", g_env.db, "--provider",
                                 unknown, "--secret", SECRET_B, NULL};
    assert_int_equal(rf_cli_run(rot_unknown, out, sizeof out, err, sizeof err, 0), 1);
}

static int setup(void **state) {
    /* the server seals secrets under this key (inherited from this process) */
    setenv("RACEFREE_SECRETS_KEY", WH_TEST_SECRETS_KEY, 1);
    return env_group_setup(state);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_admin),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_rotation_overlap),
        cmocka_unit_test(test_replay_and_statuses),
        cmocka_unit_test(test_stripe_header_forms),
        cmocka_unit_test(test_parallel_one_event),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_tolerance_flag),
        cmocka_unit_test(test_store_key_when_none_given),
    };
    return cmocka_run_group_tests(tests, setup, env_group_teardown);
}
