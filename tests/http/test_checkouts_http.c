/*
 * test_checkouts_http - checkouts over HTTP, black box, on the back end in
 * RF_TEST_DB, with requests released together by a barrier:
 *  - 32 POST /v1/checkouts with one Idempotency-Key: one checkout; every
 *    answer is 201 (one original, the rest replays of it) or 409
 *    idempotency_key_in_flight, which the client retries into a replay of
 *    the same checkout; the user's list holds exactly one;
 *  - 32 PUT /provider-ref of two different references to one checkout:
 *    exactly one reference wins (every 200 names it, the others are 409
 *    provider_ref_bound) and GET shows it;
 *  - 32 PUT /provider-ref of one reference to two checkouts: one checkout
 *    wins, the other's answers are all 409 provider_ref_taken;
 *  - the rules at the edge: no Idempotency-Key, bad items, a checkout born
 *    expired, an unknown checkout, roles, another provider's reference,
 *    cancel with If-Match (412, 200, then 409);
 * no response is a 5xx, and the ledger check (its checkouts invariant with
 * it) is clean after each test.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "racefree.h"

#define RACERS 32
#define ROUNDS 3
#define IN_FLIGHT_RETRIES 200

static void req(const char *method, const char *path, const char *key, const char *body,
                const char *const *headers, struct rf_t_resp *out)
{
    env_req(&g_env, method, path, key, body, headers, out);
    env_no_5xx_one(method, path, out);
}

/* A checkout body for user: a grant and a credit of 500 to a new account. */
static void checkout_body(char *out, size_t cap, const char *user, const char *currency)
{
    char wallet[64], key[64];
    RID(wallet, "wallet");
    RID(key, "pro");
    env_account_create(&g_env, wallet, currency, false);
    snprintf(out, cap,
             "{\"user_id\":\"%s\",\"currency\":\"%s\",\"amount_minor\":1999,"
             "\"provider\":\"stripe\",\"items\":[{\"type\":\"entitlement\",\"key\":\"%s\"},"
             "{\"type\":\"credit\",\"account\":\"%s\",\"amount_minor\":500}]}",
             user, currency, key, wallet);
}

/* A new pending checkout's id (201). */
static void checkout_new(const char *user, const char *currency, char *id, size_t cap)
{
    char body[1024], h[128];
    checkout_body(body, sizeof body, user, currency);
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    struct rf_t_resp r = {0};
    req("POST", "/v1/checkouts", g_env.service, body, hdrs, &r);
    RF_ASSERT_STATUS(&r, 201);
    json_t *j = rf_resp_json(&r);
    snprintf(id, cap, "%s", rf_t_json_str(j, "id"));
    assert_string_equal(rf_t_json_str(j, "status"), "pending");
    const char *by = rf_t_json_str(j, "created_key"); /* who acted: the calling key */
    assert_true(by && *by && strstr(g_env.service, by) != NULL);
    json_decref(j);
    rf_resp_free(&r);
}

/* The id in a 2xx answer's body ("" otherwise). */
static void answer_id(const struct rf_t_resp *r, char *out, size_t cap)
{
    json_t *j = rf_resp_json(r);
    snprintf(out, cap, "%s", j && rf_t_json_str(j, "id") ? rf_t_json_str(j, "id") : "");
    json_decref(j);
}

/* The user's checkouts; waits (bounded) for a listed row to show. */
static int user_checkouts(const char *user)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/users/%s/checkouts?limit=100", user);
    int n = 0;
    for (int tries = 0; tries < 50 && n == 0; tries++) {
        struct rf_t_resp r = {0};
        req("GET", path, g_env.readonly, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r);
        n = (int)json_array_size(json_object_get(j, "data"));
        json_decref(j);
        rf_resp_free(&r);
        if (n == 0) rf_t_sleep_ms(100);
    }
    return n;
}

/* ---- one Idempotency-Key, 32 racers -------------------------------------- */

/* A 409 in flight is retried (the first request is still running) until it
 * is answered with the stored checkout. */
static void retry_in_flight(struct rf_par_req *q)
{
    for (int t = 0; t < IN_FLIGHT_RETRIES && q->resp.status == 409; t++) {
        RF_ASSERT_PROBLEM(&q->resp, 409, "idempotency_key_in_flight");
        rf_resp_free(&q->resp);
        rf_t_sleep_ms(10);
        req(q->method, q->path, q->api_key, q->body, q->headers, &q->resp);
    }
}

static void test_create_one_key_race(void **state)
{
    (void)state;
    char cur[4];
    rand_currency(cur);
    for (int round = 0; round < ROUNDS; round++) {
        char user[64], body[1024], h[128];
        RID(user, "buyer");
        checkout_body(body, sizeof body, user, cur);
        idem_hdr_fresh(h, sizeof h);
        static struct rf_par_req reqs[RACERS];
        memset(reqs, 0, sizeof reqs);
        for (int i = 0; i < RACERS; i++) {
            reqs[i] = (struct rf_par_req){.port = g_env.srv.port, .method = "POST",
                                          .path = "/v1/checkouts", .api_key = g_env.service,
                                          .body = body, .headers = {h, NULL}};
        }
        assert_int_equal(rf_parallel(reqs, RACERS), 0);
        env_no_5xx(reqs, RACERS);
        char first[RF_ID_BYTES] = "";
        int originals = 0;
        for (int i = 0; i < RACERS; i++) {
            retry_in_flight(&reqs[i]);
            RF_ASSERT_STATUS(&reqs[i].resp, 201);
            originals += !resp_replayed(&reqs[i].resp);
            char id[RF_ID_BYTES];
            answer_id(&reqs[i].resp, id, sizeof id);
            if (!first[0]) snprintf(first, sizeof first, "%s", id);
            assert_string_equal(id, first);
        }
        assert_int_equal(originals, 1);
        assert_int_equal(user_checkouts(user), 1);
        rf_par_free(reqs, RACERS);
    }
    env_ledger_check(&g_env, 1);
}

/* ---- provider reference bindings ------------------------------------------ */

static void bind_reqs(struct rf_par_req *reqs, char paths[2][256], char bodies[2][256])
{
    memset(reqs, 0, sizeof *reqs * RACERS);
    for (int i = 0; i < RACERS; i++) {
        reqs[i].port = g_env.srv.port;
        reqs[i].method = "PUT";
        snprintf(reqs[i].path, sizeof reqs[i].path, "%s", paths[i % 2]);
        reqs[i].api_key = g_env.service;
        reqs[i].body = bodies[i % 2];
    }
}

/* Racers of side i % 2: every request of one side is 200 (its resends are
 * the same binding), every request of the other is 409 loser_code.
 * Returns the winning side. */
static int one_side_won(const struct rf_par_req *reqs, const char *loser_code, int round)
{
    int won[2] = {0, 0};
    for (int i = 0; i < RACERS; i++) {
        if (reqs[i].resp.status == 200) won[i % 2]++;
        else RF_ASSERT_PROBLEM(&reqs[i].resp, 409, loser_code);
    }
    if ((won[0] > 0) == (won[1] > 0))
        fail_msg("round %d: the sides won %d and %d times: exactly one may", round, won[0],
                 won[1]);
    int w = won[0] ? 0 : 1;
    assert_int_equal(won[w], RACERS / 2);
    return w;
}

static void test_bind_two_refs_race(void **state)
{
    (void)state;
    char cur[4];
    rand_currency(cur);
    for (int round = 0; round < ROUNDS; round++) {
        char user[64], id[64], refs[2][64], paths[2][256], bodies[2][256];
        RID(user, "buyer");
        checkout_new(user, cur, id, sizeof id);
        for (int k = 0; k < 2; k++) {
            RID(refs[k], "cs");
            snprintf(paths[k], sizeof paths[k], "/v1/checkouts/%s/provider-ref", id);
            snprintf(bodies[k], sizeof bodies[k], "{\"provider\":\"stripe\",\"ref\":\"%s\"}",
                     refs[k]);
        }
        static struct rf_par_req reqs[RACERS];
        bind_reqs(reqs, paths, bodies);
        assert_int_equal(rf_parallel(reqs, RACERS), 0);
        env_no_5xx(reqs, RACERS);
        int w = one_side_won(reqs, "provider_ref_bound", round);
        struct rf_t_resp r = {0};
        char get[256];
        snprintf(get, sizeof get, "/v1/checkouts/%s", id);
        req("GET", get, g_env.readonly, NULL, NULL, &r);
        json_t *j = rf_resp_json(&r);
        assert_string_equal(rf_t_json_str(j, "provider_ref"), refs[w]);
        assert_int_equal(rf_t_json_int(j, "version"), 2); /* bound once */
        json_decref(j);
        rf_resp_free(&r);
        rf_par_free(reqs, RACERS);
    }
    env_ledger_check(&g_env, 1);
}

static void test_bind_one_ref_two_checkouts(void **state)
{
    (void)state;
    char cur[4];
    rand_currency(cur);
    for (int round = 0; round < ROUNDS; round++) {
        char user[64], ids[2][64], ref[64], paths[2][256], bodies[2][256];
        RID(user, "buyer");
        RID(ref, "cs");
        for (int k = 0; k < 2; k++) {
            checkout_new(user, cur, ids[k], sizeof ids[k]);
            snprintf(paths[k], sizeof paths[k], "/v1/checkouts/%s/provider-ref", ids[k]);
            snprintf(bodies[k], sizeof bodies[k], "{\"provider\":\"stripe\",\"ref\":\"%s\"}", ref);
        }
        static struct rf_par_req reqs[RACERS];
        bind_reqs(reqs, paths, bodies);
        assert_int_equal(rf_parallel(reqs, RACERS), 0);
        env_no_5xx(reqs, RACERS);
        one_side_won(reqs, "provider_ref_taken", round);
        rf_par_free(reqs, RACERS);
    }
    env_ledger_check(&g_env, 1);
}

/* ---- the rules at the edge ------------------------------------------------ */

static void test_edge_rules(void **state)
{
    (void)state;
    char cur[4], user[64], body[1024], id[64], path[256], h[128];
    rand_currency(cur);
    RID(user, "buyer");
    checkout_body(body, sizeof body, user, cur);
    struct rf_t_resp r = {0};
    req("POST", "/v1/checkouts", g_env.service, body, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 400, "idempotency_key_required");
    rf_resp_free(&r);
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    req("POST", "/v1/checkouts", g_env.readonly, body, hdrs, &r);
    RF_ASSERT_STATUS(&r, 403);
    rf_resp_free(&r);
    req("POST", "/v1/checkouts", g_env.service,
        "{\"user_id\":\"u\",\"currency\":\"USD\",\"amount_minor\":1,\"provider\":\"stripe\","
        "\"items\":[{\"type\":\"gift\"}]}", hdrs, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_field");
    rf_resp_free(&r);
    req("POST", "/v1/checkouts", g_env.service,
        "{\"user_id\":\"u\",\"currency\":\"USD\",\"amount_minor\":1,\"provider\":\"stripe\","
        "\"expires_at\":\"2020-01-01T00:00:00.000Z\",\"items\":[{\"type\":\"entitlement\","
        "\"key\":\"k\"}]}", hdrs, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_field"); /* born expired */
    rf_resp_free(&r);
    req("GET", "/v1/checkouts/no-such-checkout", g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "checkout_not_found");
    rf_resp_free(&r);
    checkout_new(user, cur, id, sizeof id);
    snprintf(path, sizeof path, "/v1/checkouts/%s/provider-ref", id);
    req("PUT", path, g_env.service, "{\"provider\":\"paypal\",\"ref\":\"o-1\"}", NULL, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_field"); /* not the checkout's provider */
    rf_resp_free(&r);
    snprintf(path, sizeof path, "/v1/checkouts/%s/cancel", id);
    const char *stale[] = {"If-Match: \"7\"", NULL};
    req("POST", path, g_env.service, NULL, stale, &r);
    RF_ASSERT_PROBLEM(&r, 412, "version_mismatch");
    rf_resp_free(&r);
    const char *fresh[] = {"If-Match: \"1\"", NULL};
    req("POST", path, g_env.service, NULL, fresh, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(j, "status"), "canceled");
    assert_int_equal(etag_version(&r), 2);
    json_decref(j);
    rf_resp_free(&r);
    req("POST", path, g_env.service, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 409, "invalid_state");
    rf_resp_free(&r);
    env_ledger_check(&g_env, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_create_one_key_race, env_ledger_clean_before),
        cmocka_unit_test_setup(test_bind_two_refs_race, env_ledger_clean_before),
        cmocka_unit_test_setup(test_bind_one_ref_two_checkouts, env_ledger_clean_before),
        cmocka_unit_test_setup(test_edge_rules, env_ledger_clean_before),
    };
    return cmocka_run_group_tests(tests, env_group_setup, env_group_teardown);
}
