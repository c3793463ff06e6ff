/*
 * test_contract - small promises of the API conventions, each of which the
 * server used to break.
 *
 * Proves:
 *  - request bodies must be JSON: a non-empty body with Content-Type
 *    text/plain, a form type, a non-UTF-8 charset or no Content-Type at all
 *    is 415 unsupported_media_type and changes nothing (before, it was
 *    parsed as JSON and acted on); application/json with parameters in any
 *    case works, and empty-body PUT/DELETE/POST need no Content-Type;
 *  - string limits count characters, not bytes: a 200-character reason of
 *    3-byte characters is accepted by credits and approval rejections (it
 *    was refused as too long), 512 4-byte characters are the boundary, 513
 *    characters are refused naming the field;
 *  - times with an offset are normalised to UTC; one whose UTC value is past
 *    9999-12-31 (9999-12-31T23:00:00-05:00, which was stored and rendered as
 *    year 10000) is 400 naming `expires_at`, for grants and approvals;
 *  - creating an account again: the same currency, kind, allow_negative and
 *    metadata is 200 with the existing account, anything different is 409
 *    account_exists, and the account keeps what it had.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The problem's "param" member must be `param`. */
static void assert_param(const struct rf_t_resp *r, const char *param)
{
    json_t *j = rf_resp_json(r);
    const char *got = json_string_value(json_object_get(j, "param"));
    if (!got || strcmp(got, param) != 0)
        fail_msg("problem param is %s, expected %s: %s", got ? got : "(absent)", param, r->body);
    json_decref(j);
}

static void ent_status(const char *user, const char *key, int status)
{
    char path[300];
    ent_path(path, sizeof path, user, key);
    struct rf_t_resp r;
    env_req(&g_env, "GET", path, g_env.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, status);
    rf_resp_free(&r);
}

/* POST .../credits with a fresh Idempotency-Key and extra headers (may be NULL). */
static void credit(const char *acct, const char *body, const char *ct, struct rf_t_resp *r)
{
    char path[256], idem[128];
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", acct);
    idem_hdr_fresh(idem, sizeof idem);
    const char *hdrs[] = {idem, ct, NULL};
    env_req(&g_env, "POST", path, g_env.service, body, hdrs, r);
}

static void test_bodies_must_be_json(void **state)
{
    (void)state;
    char user[64], path[300], acct[64], cur[4];
    RID(user, "u");
    ent_path(path, sizeof path, user, "pro");
    const char *refused[] = {"Content-Type: text/plain", "Content-Type",
                             "Content-Type: application/x-www-form-urlencoded",
                             "Content-Type: application/json; charset=latin1",
                             "Content-Type: text/json", "Content-Type: application/jsonp"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *hdrs[] = {refused[i], NULL};
        struct rf_t_resp r;
        env_req(&g_env, "PUT", path, g_env.service, "{\"source\": \"plain\"}", hdrs, &r);
        print_message("PUT with %s -> %d\n", refused[i], r.status);
        RF_ASSERT_PROBLEM(&r, 415, "unsupported_media_type");
        rf_resp_free(&r);
    }
    ent_status(user, "pro", 404);

    /* The same for a money flow: the balance does not move. */
    RID(acct, "acct");
    rand_currency(cur);
    env_account_create(&g_env, acct, cur, false);
    struct rf_t_resp r;
    credit(acct, "{\"amount_minor\": 5}", "Content-Type: text/plain", &r);
    RF_ASSERT_PROBLEM(&r, 415, "unsupported_media_type");
    rf_resp_free(&r);
    credit(acct, "{\"amount_minor\": 5}", "Content-Type", &r);
    RF_ASSERT_PROBLEM(&r, 415, "unsupported_media_type");
    rf_resp_free(&r);
    assert_int_equal(env_balance(&g_env, acct).posted, 0);
    credit(acct, "{\"amount_minor\": 5}", "Content-Type: Application/JSON; Charset=\"UTF-8\"", &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    assert_int_equal(env_balance(&g_env, acct).posted, 5);

    /* JSON with parameters, in any case, is JSON. */
    const char *ok[] = {"Content-Type: application/json; charset=utf-8", NULL};
    env_req(&g_env, "PUT", path, g_env.service, "{\"source\": \"json\"}", ok, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    /* Empty bodies need no Content-Type: PUT (another key) and DELETE. */
    const char *none[] = {"Content-Type", NULL};
    char basic[300];
    ent_path(basic, sizeof basic, user, "basic");
    env_req(&g_env, "PUT", basic, g_env.service, NULL, none, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    env_req(&g_env, "DELETE", basic, g_env.service, NULL, none, &r);
    RF_ASSERT_STATUS(&r, 204);
    rf_resp_free(&r);
}

/* n copies of the UTF-8 character ch: malloc'd. */
static char *repeat(const char *ch, int n)
{
    size_t len = strlen(ch);
    char *s = malloc(len * (size_t)n + 1);
    assert_non_null(s);
    for (int i = 0; i < n; i++)
        memcpy(s + len * (size_t)i, ch, len);
    s[len * (size_t)n] = '\0';
    return s;
}

/* Credits acct with 1 and `reason`; returns the status (and checks that an
 * accepted reason is stored as sent). */
static int credit_reason(const char *acct, const char *reason)
{
    char *body = malloc(strlen(reason) + 64);
    assert_non_null(body);
    sprintf(body, "{\"amount_minor\": 1, \"reason\": \"%s\"}", reason);
    struct rf_t_resp r;
    credit(acct, body, NULL, &r);
    int status = r.status;
    if (status == 201) {
        json_t *j = rf_resp_json(&r);
        const char *got = rf_t_json_str(json_object_get(j, "metadata"), "reason");
        if (strcmp(got, reason) != 0)
            fail_msg("stored reason differs from the one sent: %.200s", r.body);
        json_decref(j);
    } else {
        RF_ASSERT_PROBLEM(&r, 400, "invalid_field");
        assert_param(&r, "reason");
    }
    rf_resp_free(&r);
    free(body);
    return status;
}

static void test_lengths_in_characters(void **state)
{
    (void)state;
    char acct[64], cur[4];
    RID(acct, "acct");
    rand_currency(cur);
    env_account_create(&g_env, acct, cur, false);
    char *euro200 = repeat("\xe2\x82\xac", 200);   /* 200 characters, 600 bytes */
    char *emoji512 = repeat("\xf0\x9f\x98\x80", 512); /* 512 characters, 2048 bytes */
    char *e513 = repeat("\xc3\xa9", 513);          /* 513 characters */
    assert_int_equal(credit_reason(acct, euro200), 201);
    assert_int_equal(credit_reason(acct, emoji512), 201);
    assert_int_equal(credit_reason(acct, e513), 400);
    assert_int_equal(env_balance(&g_env, acct).posted, 2);

    /* An approval rejected with a 200-character multi-byte reason. */
    char user[64], body[512], id[128], path[256];
    RID(user, "u");
    snprintf(body, sizeof body,
             "{\"action\": {\"type\": \"entitlement_grant\", \"user_id\": \"%s\", \"key\": "
             "\"pro\"}, \"requested_by\": \"alice\"}",
             user);
    struct rf_t_resp r;
    env_req(&g_env, "POST", "/v1/approvals", g_env.service, body, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    json_t *j = rf_resp_json(&r);
    snprintf(id, sizeof id, "%s", rf_t_json_str(j, "id"));
    json_decref(j);
    rf_resp_free(&r);
    char *reject = malloc(strlen(euro200) + 64);
    assert_non_null(reject);
    sprintf(reject, "{\"rejected_by\": \"bob\", \"reason\": \"%s\"}", euro200);
    snprintf(path, sizeof path, "/v1/approvals/%s/reject", id);
    env_req(&g_env, "POST", path, g_env.service, reject, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    j = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(j, "rejection_reason"), euro200);
    json_decref(j);
    rf_resp_free(&r);

    /* An entitlement source: 256 characters of 2 bytes pass, 257 do not. */
    char *s256 = repeat("\xc3\xa9", 256), *s257 = repeat("\xc3\xa9", 257);
    char *grant = malloc(strlen(s257) + 64);
    assert_non_null(grant);
    ent_path(path, sizeof path, user, "basic");
    sprintf(grant, "{\"source\": \"%s\"}", s257);
    env_req(&g_env, "PUT", path, g_env.service, grant, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_field");
    assert_param(&r, "source");
    rf_resp_free(&r);
    sprintf(grant, "{\"source\": \"%s\"}", s256);
    env_req(&g_env, "PUT", path, g_env.service, grant, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    j = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(j, "source"), s256);
    json_decref(j);
    rf_resp_free(&r);
    free(grant);
    free(s256);
    free(s257);
    free(reject);
    free(euro200);
    free(emoji512);
    free(e513);
}

static void test_times_in_utc(void **state)
{
    (void)state;
    char user[64], path[300];
    RID(user, "u");
    static const struct {
        const char *key, *sent, *stored; /* stored NULL: refused */
    } cases[] = {
        {"a", "2099-01-01T00:00:00.000-05:00", "2099-01-01T05:00:00.000Z"},
        {"b", "2099-01-01T00:00:00+05:30", "2098-12-31T18:30:00.000Z"},
        {"c", "9999-12-31T18:59:59.999-05:00", "9999-12-31T23:59:59.999Z"},
        {"d", "9999-12-31T23:00:00-05:00", NULL}, /* year 10000 in UTC */
        {"e", "9999-12-31T23:59:59.999-00:01", NULL},
        {"f", "1970-01-01T00:00:00+01:00", NULL}, /* before 1970 in UTC */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"expires_at\": \"%s\"}", cases[i].sent);
        ent_path(path, sizeof path, user, cases[i].key);
        struct rf_t_resp r;
        env_req(&g_env, "PUT", path, g_env.service, body, NULL, &r);
        print_message("expires_at %s -> %d %.160s\n", cases[i].sent, r.status, r.body);
        if (!cases[i].stored) {
            RF_ASSERT_PROBLEM(&r, 400, "invalid_field");
            assert_param(&r, "expires_at");
            rf_resp_free(&r);
            ent_status(user, cases[i].key, 404);
            continue;
        }
        RF_ASSERT_STATUS(&r, 201);
        json_t *j = ent_check(&r, user, cases[i].key);
        assert_string_equal(rf_t_json_str(j, "expires_at"), cases[i].stored);
        json_decref(j);
        rf_resp_free(&r);
        /* read back: the same UTC text */
        env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        j = ent_check(&r, user, cases[i].key);
        assert_string_equal(rf_t_json_str(j, "expires_at"), cases[i].stored);
        json_decref(j);
        rf_resp_free(&r);
    }
    /* An approval's expires_at: the same rule. */
    char body[512];
    snprintf(body, sizeof body,
             "{\"action\": {\"type\": \"entitlement_grant\", \"user_id\": \"%s\", \"key\": "
             "\"pro\"}, \"requested_by\": \"alice\", \"expires_at\": "
             "\"9999-12-31T23:00:00-05:00\"}",
             user);
    struct rf_t_resp r;
    env_req(&g_env, "POST", "/v1/approvals", g_env.service, body, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_field");
    assert_param(&r, "expires_at");
    rf_resp_free(&r);
}

static void create_account(const char *body, int status, const char *code, struct rf_t_resp *r)
{
    env_req(&g_env, "POST", "/v1/accounts", g_env.service, body, NULL, r);
    print_message("POST /v1/accounts %s -> %d\n", body, r->status);
    if (code)
        RF_ASSERT_PROBLEM(r, status, code);
    else
        RF_ASSERT_STATUS(r, status);
}

static void test_account_create_again(void **state)
{
    (void)state;
    char id[64], cur[4], other[4], body[512];
    RID(id, "acct");
    rand_currency(cur);
    do
        rand_currency(other);
    while (strcmp(other, cur) == 0);
    struct rf_t_resp first, r;
    snprintf(body, sizeof body,
             "{\"id\": \"%s\", \"currency\": \"%s\", \"metadata\": {\"owner\": \"a\"}}", id, cur);
    create_account(body, 201, NULL, &first);
    /* the same again (kind user and allow_negative false are the defaults) */
    snprintf(body, sizeof body,
             "{\"id\": \"%s\", \"currency\": \"%s\", \"kind\": \"user\", \"allow_negative\": false,"
             " \"metadata\": {\"owner\": \"a\"}}",
             id, cur);
    create_account(body, 200, NULL, &r);
    assert_string_equal(r.body, first.body); /* the existing account, unchanged */
    rf_resp_free(&r);
    const char *differ[] = {
        "{\"id\": \"%s\", \"currency\": \"%s\", \"metadata\": {\"owner\": \"b\"}}",
        "{\"id\": \"%s\", \"currency\": \"%s\"}",
        "{\"id\": \"%s\", \"currency\": \"%s\", \"metadata\": {\"owner\": \"a\"}, \"kind\": "
        "\"system\"}",
        "{\"id\": \"%s\", \"currency\": \"%s\", \"metadata\": {\"owner\": \"a\"}, "
        "\"allow_negative\": true}",
    };
    for (size_t i = 0; i < sizeof differ / sizeof differ[0]; i++) {
        snprintf(body, sizeof body, differ[i], id, cur);
        create_account(body, 409, "account_exists", &r);
        rf_resp_free(&r);
    }
    snprintf(body, sizeof body,
             "{\"id\": \"%s\", \"currency\": \"%s\", \"metadata\": {\"owner\": \"a\"}}", id,
             other);
    create_account(body, 409, "account_exists", &r);
    rf_resp_free(&r);
    /* it keeps what it had */
    char path[256];
    snprintf(path, sizeof path, "/v1/accounts/%s", id);
    env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    assert_string_equal(r.body, first.body);
    rf_resp_free(&r);
    rf_resp_free(&first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bodies_must_be_json),
        cmocka_unit_test(test_lengths_in_characters),
        cmocka_unit_test(test_times_in_utc),
        cmocka_unit_test(test_account_create_again),
    };
    return cmocka_run_group_tests(tests, env_group_setup, env_group_teardown);
}
