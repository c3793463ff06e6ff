/*
 * test_bad_input - invalid requests are refused whole and write nothing.
 *
 * Proves: malformed JSON, a body that is not an object, unknown fields
 * (400 unknown_field), wrong types, bad expires_at, metadata that is not an
 * object, a body over the 64 KiB limit (413), bad ids in the path (too long,
 * characters outside [A-Za-z0-9._:-]), bad list queries (limit, after,
 * status), bad If-Match and bad Idempotency-Key values each get a 4xx
 * application/problem+json with a code, and afterwards the store shows
 * nothing: GET is 404 and the user's list is empty. Finally a valid grant on
 * the same path still works, so the refusals left no half-state behind.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bad_put {
    const char *what;
    const char *body;
    const char *header;  /* an extra header, or NULL */
    int status;          /* exact status expected, or 0 for "any 4xx" */
    const char *code;    /* exact code expected, or NULL */
};

static void assert_nothing_written(struct env *e, const char *user, const char *path)
{
    struct rf_t_resp r;
    env_req(e, "GET", path, e->admin, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "entitlement_not_found");
    rf_resp_free(&r);
    assert_int_equal(list_all_count(e, user, "all"), 0);
}

static void test_bad_bodies(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    char user[64], ent[64], path[512];
    RID(user, "u");
    RID(ent, "pro");
    ent_path(path, sizeof path, user, ent);

    static char idem_long[300];
    memset(idem_long, 0, sizeof idem_long);
    strcpy(idem_long, "Idempotency-Key: ");
    memset(idem_long + strlen(idem_long), 'k', 256);

    const struct bad_put cases[] = {
        {"malformed JSON", "{\"source\": ", NULL, 400, NULL},
        {"trailing garbage", "{\"source\": \"a\"} x", NULL, 400, NULL},
        {"not an object (array)", "[1, 2]", NULL, 400, NULL},
        {"not an object (string)", "\"grant\"", NULL, 400, NULL},
        {"unknown field", "{\"sauce\": \"typo\"}", NULL, 400, "unknown_field"},
        {"unknown field beside known", "{\"source\": \"a\", \"expires\": \"x\"}", NULL, 400,
         "unknown_field"},
        {"source not a string", "{\"source\": 5}", NULL, 400, NULL},
        {"source an object", "{\"source\": {}}", NULL, 400, NULL},
        {"metadata an array", "{\"metadata\": [1]}", NULL, 400, NULL},
        {"metadata a string", "{\"metadata\": \"x\"}", NULL, 400, NULL},
        {"metadata a number", "{\"metadata\": 1}", NULL, 400, NULL},
        {"expires_at words", "{\"expires_at\": \"tomorrow\"}", NULL, 400, NULL},
        {"expires_at a number", "{\"expires_at\": 1767225600}", NULL, 400, NULL},
        {"expires_at month 13", "{\"expires_at\": \"2030-13-01T00:00:00.000Z\"}", NULL, 400, NULL},
        {"expires_at day 32", "{\"expires_at\": \"2030-01-32T00:00:00.000Z\"}", NULL, 400, NULL},
        {"expires_at no zone", "{\"expires_at\": \"2030-01-01T00:00:00\"}", NULL, 400, NULL},
        {"If-Match not a version", NULL, "If-Match: \"abc\"", 0, NULL},
        {"If-Match unquoted garbage", NULL, "If-Match: banana", 0, NULL},
        {"Idempotency-Key empty", NULL, "Idempotency-Key:", 400, NULL},
        {"Idempotency-Key 256 chars", NULL, idem_long, 400, NULL},
        {"Idempotency-Key non-ASCII", NULL, "Idempotency-Key: cl\xc3\xa9", 400, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *hdrs[] = {cases[i].header, NULL};
        struct rf_t_resp r;
        env_req(&e, "PUT", path, e.service, cases[i].body, hdrs, &r);
        print_message("%-28s -> %d %.160s\n", cases[i].what, r.status, r.body ? r.body : "");
        if (cases[i].status && r.status != cases[i].status)
            fail_msg("%s: expected %d, got %d: %s", cases[i].what, cases[i].status, r.status,
                     r.body ? r.body : r.errmsg);
        RF_ASSERT_4XX_PROBLEM(&r);
        if (cases[i].code)
            RF_ASSERT_PROBLEM(&r, cases[i].status, cases[i].code);
        rf_resp_free(&r);
        assert_nothing_written(&e, user, path);
    }

    /* Over the 64 KiB body limit: 413. */
    size_t big_n = 70 * 1024;
    char *big = malloc(big_n + 64);
    assert_non_null(big);
    int off = snprintf(big, 64, "{\"metadata\": {\"x\": \"");
    memset(big + off, 'a', big_n);
    strcpy(big + off + big_n, "\"}}");
    struct rf_t_resp r;
    env_req(&e, "PUT", path, e.service, big, NULL, &r);
    if (r.status != 413)
        fail_msg("body of %zu bytes: expected 413, got %d (%s) %.300s", strlen(big), r.status,
                 r.errmsg, r.body ? r.body : "");
    RF_ASSERT_4XX_PROBLEM(&r);
    rf_resp_free(&r);
    free(big);
    assert_nothing_written(&e, user, path);

    /* The same path still takes a valid grant afterwards. */
    env_req(&e, "PUT", path, e.service,
            "{\"source\": \"ok\", \"expires_at\": \"2099-01-01T00:00:00.000Z\", "
            "\"metadata\": {\"plan\": \"pro\"}}",
            NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    json_t *j = ent_check(&r, user, ent);
    assert_string_equal(rf_t_json_str(j, "expires_at"), "2099-01-01T00:00:00.000Z");
    assert_string_equal(rf_t_json_str(json_object_get(j, "metadata"), "plan"), "pro");
    json_decref(j);
    rf_resp_free(&r);

    /* A stale If-Match on it: 412 version_mismatch, nothing changes. */
    const char *stale[] = {"If-Match: \"7\"", NULL};
    env_req(&e, "DELETE", path, e.service, NULL, stale, &r);
    RF_ASSERT_PROBLEM(&r, 412, "version_mismatch");
    rf_resp_free(&r);
    env_req(&e, "GET", path, e.service, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    j = ent_check(&r, user, ent);
    assert_string_equal(rf_t_json_str(j, "status"), "active");
    assert_int_equal(rf_t_json_int(j, "version"), 1);
    json_decref(j);
    rf_resp_free(&r);
    env_stop(&e);
}

static void test_bad_paths(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    char user[64], ok_key[64];
    RID(user, "u");
    RID(ok_key, "pro");
    char long_id[200];
    memset(long_id, 0, sizeof long_id);
    memset(long_id, 'x', 129);
    char max_id[200];
    memset(max_id, 0, sizeof max_id);
    memset(max_id, 'y', 128);

    /* (A percent-encoded "/" is left out: decoded, it changes the route.) */
    const char *bad_ids[] = {long_id, "bad$char", "sp%20ace", "caf%C3%A9", "quote%22",
                             "semi;colon", "tab%09", "star*"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        char path[700];
        for (int which = 0; which < 2; which++) {
            if (which == 0)
                snprintf(path, sizeof path, "/v1/users/%s/entitlements/%s", bad_ids[i], ok_key);
            else
                snprintf(path, sizeof path, "/v1/users/%s/entitlements/%s", user, bad_ids[i]);
            const char *methods[] = {"PUT", "GET", "DELETE"};
            for (int m = 0; m < 3; m++) {
                struct rf_t_resp r;
                env_req(&e, methods[m], path, e.admin, NULL, NULL, &r);
                if (r.status != 400)
                    fail_msg("%s %s: expected 400, got %d %s", methods[m], path, r.status,
                             r.body ? r.body : r.errmsg);
                RF_ASSERT_4XX_PROBLEM(&r);
                rf_resp_free(&r);
            }
        }
        char lpath[700];
        snprintf(lpath, sizeof lpath, "/v1/users/%s/entitlements", bad_ids[i]);
        struct rf_t_resp r;
        env_req(&e, "GET", lpath, e.admin, NULL, NULL, &r);
        if (r.status != 400)
            fail_msg("GET %s: expected 400, got %d %s", lpath, r.status, r.body);
        RF_ASSERT_4XX_PROBLEM(&r);
        rf_resp_free(&r);
    }
    assert_int_equal(list_all_count(&e, user, "all"), 0);

    /* 128 characters is allowed: the boundary itself. */
    char path[700];
    snprintf(path, sizeof path, "/v1/users/%s/entitlements/%s", user, max_id);
    struct rf_t_resp r;
    env_req(&e, "PUT", path, e.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    assert_int_equal(list_all_count(&e, user, "all"), 1);
    env_stop(&e);
}

static void test_bad_list_queries(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    char user[64], path[512];
    RID(user, "u");
    ent_path(path, sizeof path, user, "pro");
    struct rf_t_resp r;
    env_req(&e, "PUT", path, e.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);

    const char *queries[] = {"limit=0", "limit=501", "limit=-1", "limit=abc", "limit=10x",
                             "limit=99999999999999999999", "status=bogus", "status=deleted",
                             "after=%21%21not-a-cursor%21%21"};
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        char q[700];
        snprintf(q, sizeof q, "/v1/users/%s/entitlements?%s", user, queries[i]);
        env_req(&e, "GET", q, e.readonly, NULL, NULL, &r);
        print_message("?%-32s -> %d %.120s\n", queries[i], r.status, r.body ? r.body : "");
        if (r.status != 400)
            fail_msg("GET ?%s: expected 400, got %d %s", queries[i], r.status, r.body);
        RF_ASSERT_4XX_PROBLEM(&r);
        rf_resp_free(&r);
    }
    /* The valid forms work. */
    const char *good[] = {"limit=1", "limit=500", "status=active", "status=revoked",
                          "status=expired", "status=all"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char q[700];
        snprintf(q, sizeof q, "/v1/users/%s/entitlements?%s", user, good[i]);
        env_req(&e, "GET", q, e.readonly, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        rf_resp_free(&r);
    }
    assert_int_equal(list_all_count(&e, user, "all"), 1);
    env_stop(&e);
}

/* POST /v1/keys refuses bad bodies and makes no key. */
static void test_bad_key_bodies(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    char name[64];
    RID(name, "k");
    char bodies[5][200];
    snprintf(bodies[0], 200, "{\"role\": \"root\", \"name\": \"%s\"}", name);
    snprintf(bodies[1], 200, "{\"role\": \"admin\", \"name\": \"%s\", \"extra\": 1}", name);
    snprintf(bodies[2], 200, "{\"role\": 1, \"name\": \"%s\"}", name);
    snprintf(bodies[3], 200, "{\"name\": \"%s\"", name);
    snprintf(bodies[4], 200, "[\"%s\"]", name);
    for (int i = 0; i < 5; i++) {
        struct rf_t_resp r;
        env_req(&e, "POST", "/v1/keys", e.admin, bodies[i], NULL, &r);
        if (r.status != 400)
            fail_msg("POST /v1/keys %s: expected 400, got %d %s", bodies[i], r.status, r.body);
        RF_ASSERT_4XX_PROBLEM(&r);
        if (i == 1)
            RF_ASSERT_PROBLEM(&r, 400, "unknown_field");
        if (i == 0) { /* an unknown role: the sentence of today, naming the field */
            RF_ASSERT_PROBLEM(&r, 400, "invalid_field");
            json_t *j = rf_resp_json(&r);
            assert_string_equal(rf_t_json_str(j, "detail"),
                                "field 'role' must be one of admin|service|worker|readonly");
            assert_string_equal(rf_t_json_str(j, "param"), "role");
            json_decref(j);
        }
        rf_resp_free(&r);
    }
    assert_int_equal(keys_named(&e, name), 0);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_bad_list_queries),
        cmocka_unit_test(test_bad_key_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
