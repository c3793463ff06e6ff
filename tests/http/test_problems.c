/*
 * test_problems - what a problem+json body tells a client, over real HTTP:
 *  - the facts a refusal depends on: 409 insufficient_funds carries the
 *    debited account's `available` balance and `currency`, 409 invalid_state
 *    the resource's `current_status`, 412 version_mismatch its
 *    `current_version`, each equal to what a GET then shows;
 *  - `param` names the one input at fault: a body field, a path parameter,
 *    the Idempotency-Key and If-Match headers;
 *  - `request_id` equals the X-Request-Id header (given by the client or
 *    made by the server) on problems the handlers make and on those the HTTP
 *    layer makes itself (404 route, 413 body);
 *  - every title is the one error list's title of its code (RF_ASSERT_PROBLEM
 *    checks title and request_id on every problem of every black-box test).
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* POST path with a fresh Idempotency-Key (and one more header or NULL). */
static void post_ik(const char *path, const char *body, const char *hdr, struct rf_t_resp *r)
{
    char ik[128];
    idem_hdr_fresh(ik, sizeof ik);
    const char *hdrs[] = {ik, hdr, NULL};
    env_req(&g_env, "POST", path, g_env.service, body, hdrs, r);
}

/* The problem's body; fails unless it is `code` at `status`. */
static json_t *problem(const struct rf_t_resp *r, int status, const char *code)
{
    RF_ASSERT_PROBLEM(r, status, code);
    json_t *j = rf_resp_json(r);
    assert_non_null(j);
    return j;
}

#define ACCOUNT_ID_BYTES 64

/* Two fresh accounts in a fresh currency; a may go negative. */
static void two_accounts(char cur[4], char *a, char *b, bool a_negative)
{
    rand_currency(cur);
    rf_rand_id("pa", a, ACCOUNT_ID_BYTES);
    rf_rand_id("pb", b, ACCOUNT_ID_BYTES);
    env_account_create(&g_env, a, cur, a_negative);
    env_account_create(&g_env, b, cur, false);
}

/* POST /v1/transfers of amount from a to b (a hold when pending). */
static void transfer(const char *a, const char *b, int amount, const char *cur, bool pending,
                     struct rf_t_resp *r)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"debit_account\": \"%s\", \"credit_account\": \"%s\", \"amount_minor\": %d,"
             " \"currency\": \"%s\", \"pending\": %s}",
             a, b, amount, cur, pending ? "true" : "false");
    post_ik("/v1/transfers", body, NULL, r);
}

static void test_insufficient_funds_names_available(void **state)
{
    (void)state;
    char cur[4], a[ACCOUNT_ID_BYTES], b[ACCOUNT_ID_BYTES], path[256];
    two_accounts(cur, a, b, false);
    struct rf_t_resp r;
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", a);
    post_ik(path, "{\"amount_minor\": 40}", NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    transfer(a, b, 15, cur, true, &r); /* a hold: available 25 */
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    transfer(a, b, 26, cur, false, &r);
    json_t *j = problem(&r, 409, "insufficient_funds");
    assert_int_equal(rf_t_json_int(j, "available"), 25);
    assert_int_equal(rf_t_json_int(j, "available"), env_balance(&g_env, a).available);
    assert_string_equal(rf_t_json_str(j, "currency"), cur);
    json_decref(j);
    rf_resp_free(&r);
}

static void test_invalid_state_names_status(void **state)
{
    (void)state;
    char cur[4], a[ACCOUNT_ID_BYTES], b[ACCOUNT_ID_BYTES], path[256];
    two_accounts(cur, a, b, true);
    struct rf_t_resp r;
    transfer(a, b, 5, cur, true, &r);
    RF_ASSERT_STATUS(&r, 201);
    json_t *t = rf_resp_json(&r);
    rf_resp_free(&r);
    snprintf(path, sizeof path, "/v1/transfers/%s/void", rf_t_json_str(t, "id"));
    post_ik(path, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    snprintf(path, sizeof path, "/v1/transfers/%s/post", rf_t_json_str(t, "id"));
    json_decref(t);
    post_ik(path, NULL, NULL, &r);
    json_t *j = problem(&r, 409, "invalid_state");
    assert_string_equal(rf_t_json_str(j, "current_status"), "voided");
    json_decref(j);
    rf_resp_free(&r);
}

static void test_version_mismatch_names_version(void **state)
{
    (void)state;
    char user[64], path[512];
    RID(user, "pv");
    ent_path(path, sizeof path, user, "pro");
    struct rf_t_resp r;
    env_req(&g_env, "PUT", path, g_env.service, "{}", NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    int64_t now = etag_version(&r);
    rf_resp_free(&r);
    const char *stale[] = {"If-Match: \"5\"", NULL};
    env_req(&g_env, "PUT", path, g_env.service, "{}", stale, &r);
    json_t *j = problem(&r, 412, "version_mismatch");
    assert_int_equal(now, 1);
    assert_int_equal(rf_t_json_int(j, "current_version"), now);
    json_decref(j);
    rf_resp_free(&r);
}

/* An approval once rejected: approving it is 409 invalid_state naming the
 * state, and with a stale If-Match 412 naming the version (If-Match is
 * judged first). */
static void test_approval_facts(void **state)
{
    (void)state;
    char user[64], body[512], path[256];
    RID(user, "pa");
    snprintf(body, sizeof body,
             "{\"action\": {\"type\": \"entitlement_grant\", \"user_id\": \"%s\","
             " \"key\": \"pro\"}, \"requested_by\": \"requester\"}", user);
    struct rf_t_resp r;
    post_ik("/v1/approvals", body, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    json_t *a = rf_resp_json(&r);
    rf_resp_free(&r);
    snprintf(path, sizeof path, "/v1/approvals/%s/reject", rf_t_json_str(a, "id"));
    post_ik(path, "{\"rejected_by\": \"checker\", \"reason\": \"no\"}", NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    int64_t now = etag_version(&r);
    rf_resp_free(&r);
    snprintf(path, sizeof path, "/v1/approvals/%s/approve", rf_t_json_str(a, "id"));
    json_decref(a);
    post_ik(path, "{\"approved_by\": \"checker\"}", NULL, &r);
    json_t *j = problem(&r, 409, "invalid_state");
    assert_string_equal(rf_t_json_str(j, "current_status"), "rejected");
    json_decref(j);
    rf_resp_free(&r);
    post_ik(path, "{\"approved_by\": \"checker\"}", "If-Match: \"1\"", &r);
    j = problem(&r, 412, "version_mismatch");
    assert_int_equal(now, 2);
    assert_int_equal(rf_t_json_int(j, "current_version"), now);
    json_decref(j);
    rf_resp_free(&r);
}

static void expect_param(const struct rf_t_resp *r, int status, const char *code,
                         const char *param)
{
    json_t *j = problem(r, status, code);
    assert_string_equal(rf_t_json_str(j, "param"), param);
    json_decref(j);
}

static void test_param_names_the_input(void **state)
{
    (void)state;
    struct rf_t_resp r;
    const char *body = "{\"debit_account\": \"x-1\", \"credit_account\": \"x-2\","
                       " \"amount_minor\": 1, \"currency\": \"EUR\"}";
    env_req(&g_env, "POST", "/v1/transfers", g_env.service, body, NULL, &r);
    expect_param(&r, 400, "idempotency_key_required", "Idempotency-Key");
    rf_resp_free(&r);
    char long_key[400] = "Idempotency-Key: ";
    memset(long_key + strlen(long_key), 'k', 300);
    const char *hk[] = {long_key, NULL};
    env_req(&g_env, "POST", "/v1/transfers", g_env.service, body, hk, &r);
    expect_param(&r, 400, "invalid_idempotency_key", "Idempotency-Key");
    rf_resp_free(&r);
    const char *hm[] = {"If-Match: soon", NULL};
    env_req(&g_env, "PUT", "/v1/users/u-p/entitlements/pro", g_env.service, "{}", hm, &r);
    expect_param(&r, 400, "invalid_if_match", "If-Match");
    rf_resp_free(&r);
    post_ik("/v1/transfers", "{\"debit_account\": \"x-1\", \"credit_account\": \"x-2\","
            " \"amount_minor\": 0, \"currency\": \"EUR\"}", NULL, &r);
    expect_param(&r, 400, "invalid_field", "amount_minor");
    rf_resp_free(&r);
    env_req(&g_env, "GET", "/v1/transfers/a%2Fb", g_env.service, NULL, NULL, &r);
    expect_param(&r, 400, "invalid_path_param", "id");
    rf_resp_free(&r);
}

/* request_id: the client's X-Request-Id when valid, else the server's; in
 * the body of problems the HTTP layer answers itself too. */
static void test_request_id_everywhere(void **state)
{
    (void)state;
    struct rf_t_resp r;
    const char *mine[] = {"X-Request-Id: rid-problems-1", NULL};
    env_req(&g_env, "GET", "/v1/no-such-route", g_env.service, NULL, mine, &r);
    json_t *j = problem(&r, 404, "route_not_found");
    assert_string_equal(rf_t_json_str(j, "request_id"), "rid-problems-1");
    json_decref(j);
    rf_resp_free(&r);
    env_req(&g_env, "GET", "/v1/no-such-route", NULL, NULL, NULL, &r);
    j = problem(&r, 404, "route_not_found"); /* checks it equals the made-up header */
    assert_true(strlen(rf_t_json_str(j, "request_id")) >= 16);
    json_decref(j);
    rf_resp_free(&r);
    size_t n = 70 * 1024;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    post_ik("/v1/accounts", big, "X-Request-Id: rid-problems-2", &r);
    free(big);
    j = problem(&r, 413, "body_too_large");
    assert_string_equal(rf_t_json_str(j, "request_id"), "rid-problems-2");
    json_decref(j);
    rf_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insufficient_funds_names_available),
        cmocka_unit_test(test_invalid_state_names_status),
        cmocka_unit_test(test_version_mismatch_names_version),
        cmocka_unit_test(test_approval_facts),
        cmocka_unit_test(test_param_names_the_input),
        cmocka_unit_test(test_request_id_everywhere),
    };
    return cmocka_run_group_tests(tests, env_group_setup, env_group_teardown);
}
