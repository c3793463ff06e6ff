/*
 * test_paths - a path parameter never reaches another resource.
 *
 * The server routes on the raw path and decodes each parameter segment by
 * itself. Before, the HTTP library decoded the whole path first, so "%00"
 * cut a segment short (DELETE /v1/keys/X%00zzz revoked key X) and "%2F"
 * made a new segment (GET /v1/accounts/ID%2Fentries listed entries).
 *
 * Proves:
 *  - every route of the route table (rf_routes) with a path parameter
 *    answers each hostile form of each parameter (X%00zzz, X%2Fentries, .,
 *    .., %2e%2e, X%0a, %zz) with 400 invalid_path_param naming it;
 *  - those requests act on nothing: key X stays usable, basic%00x grants
 *    nothing, pro%00-trial revokes nothing, ID%00evil reads nothing, and an
 *    Idempotency-Key sent to a credits path carrying %00 never replays the
 *    record of the real credits path (the balance moves once), while another
 *    spelling of the same path (%61 for "a") replays it;
 *  - "." and ".." are refused as ids in bodies too (400 invalid_field);
 *  - every list answers a malformed cursor (a bad escape, a NUL, a cursor
 *    of the wrong form) with 400 invalid_cursor naming `after`, and bad
 *    escapes in limit and status with invalid_limit / invalid_query_param.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/routes.h"

static const char *const hostile[] = {"X%00zzz", "X%2Fentries", ".",   "..",
                                      "%2e%2e",  "X%0a",        "%zz"};
#define N_HOSTILE (sizeof hostile / sizeof hostile[0])

/* The pattern with parameter number `which` replaced by `bad` and every other
 * parameter by a valid id. Returns the parameter's name into name. */
static void path_with(const char *pattern, int which, const char *bad, char *out, size_t cap,
                      char *name, size_t name_cap)
{
    size_t used = 0;
    int idx = 0;
    for (const char *p = pattern; *p;) {
        if (*p != '{') {
            assert_true(used + 1 < cap);
            out[used++] = *p++;
            continue;
        }
        const char *end = strchr(p, '}');
        assert_non_null(end);
        const char *value = idx == which ? bad : "ok-id";
        if (idx == which)
            snprintf(name, name_cap, "%.*s", (int)(end - p - 1), p + 1);
        int n = snprintf(out + used, cap - used, "%s", value);
        assert_true(n > 0 && (size_t)n < cap - used);
        used += (size_t)n;
        idx++;
        p = end + 1;
    }
    out[used] = '\0';
}

static int param_count(const char *pattern)
{
    int n = 0;
    for (const char *p = pattern; (p = strchr(p, '{')); p++)
        n++;
    return n;
}

/* The problem's "param" member, or "" (into out). */
static void problem_param(const struct rf_t_resp *r, char *out, size_t cap)
{
    json_t *j = rf_resp_json(r);
    const char *v = json_string_value(json_object_get(j, "param"));
    snprintf(out, cap, "%s", v ? v : "");
    json_decref(j);
}

/* A key of a role the route admits (admin where it may): the role check
 * comes before the path's, so only an admitted caller reaches it. */
static const char *key_for(const struct rf_route *route)
{
    if (route->roles & (unsigned)RF_ROLE_ADMIN) return g_env.admin;
    if (route->roles & (unsigned)RF_ROLE_SERVICE) return g_env.service;
    return g_env.worker;
}

static void test_every_route_refuses_hostile_params(void **state)
{
    (void)state;
    int checked = 0;
    for (size_t i = 0; i < rf_routes_count; i++) {
        const struct rf_route *route = &rf_routes[i];
        int n = param_count(route->pattern);
        if (route->hidden || n == 0)
            continue;
        for (int which = 0; which < n; which++) {
            for (size_t h = 0; h < N_HOSTILE; h++) {
                char path[512], name[64], idem[128], got[64];
                path_with(route->pattern, which, hostile[h], path, sizeof path, name,
                          sizeof name);
                idem_hdr_fresh(idem, sizeof idem);
                const char *hdrs[] = {idem, NULL};
                bool has_body = strcmp(route->method, "GET") != 0 &&
                                strcmp(route->method, "DELETE") != 0;
                struct rf_t_resp r;
                env_req(&g_env, route->method, path, key_for(route), has_body ? "{}" : NULL,
                        hdrs, &r);
                if (r.status != 400)
                    fail_msg("%s %s: expected 400 invalid_path_param, got %d %s", route->method,
                             path, r.status, r.body ? r.body : r.errmsg);
                RF_ASSERT_PROBLEM(&r, 400, "invalid_path_param");
                problem_param(&r, got, sizeof got);
                if (strcmp(got, name) != 0)
                    fail_msg("%s %s: param is '%s', not '%s': %s", route->method, path, got,
                             name, r.body);
                rf_resp_free(&r);
                checked++;
            }
        }
    }
    print_message("%d hostile requests over the route table\n", checked);
    assert_true(checked >= 20 * (int)N_HOSTILE); /* the table has ~20 parameterised routes */
}

/* A request whose answer must be 400 invalid_path_param (the param is bad)
 * or 404 route_not_found (a literal segment was disguised). */
static void expect_refused(const char *method, const char *path, const char *key,
                           const char *body, const char *const *hdrs)
{
    struct rf_t_resp r;
    env_req(&g_env, method, path, key, body, hdrs, &r);
    print_message("%s %s -> %d\n", method, path, r.status);
    if (r.status != 400 && r.status != 404)
        fail_msg("%s %s: expected 400 or 404, got %d %s", method, path, r.status,
                 r.body ? r.body : r.errmsg);
    RF_ASSERT_PROBLEM(&r, r.status, r.status == 400 ? "invalid_path_param" : "route_not_found");
    if (resp_replayed(&r))
        fail_msg("%s %s replayed another request's record: %s", method, path, r.body);
    rf_resp_free(&r);
}

static void test_key_revoke_cut_short(void **state)
{
    (void)state;
    char name[64], id[128], secret[256];
    RID(name, "victim");
    key_create_http(&g_env, "readonly", name, id, sizeof id, secret, sizeof secret);
    const char *suffixes[] = {"%00zzz", "%00", "%0a", "%2F", "%2Fx", "%2F.."};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char path[300];
        snprintf(path, sizeof path, "/v1/keys/%s%s", id, suffixes[i]);
        expect_refused("DELETE", path, g_env.admin, NULL, NULL);
    }
    /* Key X still authenticates: nothing revoked it. */
    struct rf_t_resp r;
    env_req(&g_env, "GET", "/v1/users/anyone/entitlements", secret, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
}

static void expect_ent(const char *user, const char *key, int status)
{
    char path[300];
    ent_path(path, sizeof path, user, key);
    struct rf_t_resp r;
    env_req(&g_env, "GET", path, g_env.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, status);
    if (status == 200) {
        json_t *j = ent_check(&r, user, key);
        assert_string_equal(rf_t_json_str(j, "status"), "active");
        assert_int_equal(rf_t_json_int(j, "version"), 1);
        json_decref(j);
    }
    rf_resp_free(&r);
}

static void test_entitlement_cut_short(void **state)
{
    (void)state;
    char user[64], path[300];
    RID(user, "u");
    /* PUT basic%00x must not grant basic. */
    const char *grants[] = {"basic%00x", "basic%00", "basic%0a", "basic%2Fx"};
    for (size_t i = 0; i < sizeof grants / sizeof grants[0]; i++) {
        snprintf(path, sizeof path, "/v1/users/%s/entitlements/%s", user, grants[i]);
        expect_refused("PUT", path, g_env.service, "{\"source\": \"evil\"}", NULL);
    }
    expect_ent(user, "basic", 404);
    /* The user id itself, disguised: "u%00x" must not grant u's entitlement. */
    snprintf(path, sizeof path, "/v1/users/%s%%00x/entitlements/basic", user);
    expect_refused("PUT", path, g_env.service, NULL, NULL);
    expect_ent(user, "basic", 404);
    assert_int_equal(list_all_count(&g_env, user, "all"), 0);

    /* DELETE pro%00-trial must not revoke pro. */
    ent_path(path, sizeof path, user, "pro");
    struct rf_t_resp r;
    env_req(&g_env, "PUT", path, g_env.service, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    const char *revokes[] = {"pro%00-trial", "pro%00", "pro%2F..", "pro%0d%0a"};
    for (size_t i = 0; i < sizeof revokes / sizeof revokes[0]; i++) {
        snprintf(path, sizeof path, "/v1/users/%s/entitlements/%s", user, revokes[i]);
        expect_refused("DELETE", path, g_env.service, NULL, NULL);
    }
    expect_ent(user, "pro", 200);
}

static void test_account_cut_short(void **state)
{
    (void)state;
    char acct[64], cur[4], path[300];
    RID(acct, "acct");
    rand_currency(cur);
    env_account_create(&g_env, acct, cur, false);
    const char *reads[] = {"%s%%00evil", "%s%%2Fentries", "%s%%2F"};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        char fmt[64];
        snprintf(fmt, sizeof fmt, "/v1/accounts/%s", reads[i]);
        snprintf(path, sizeof path, fmt, acct);
        expect_refused("GET", path, g_env.readonly, NULL, NULL);
    }

    /* An Idempotency-Key used on the real credits path, then on disguised
     * ones: never a replay of the first, and the balance moves once. */
    char idem[128];
    idem_hdr_fresh(idem, sizeof idem);
    const char *hdrs[] = {idem, NULL};
    const char *body = "{\"amount_minor\": 250}";
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", acct);
    struct rf_t_resp r;
    env_req(&g_env, "POST", path, g_env.service, body, hdrs, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    const char *disguised[] = {"/v1/accounts/%s/credits%%00", "/v1/accounts/%s%%00/credits",
                               "/v1/accounts/%s/credits%%00x", "/v1/accounts/%s%%00zzz/credits"};
    for (size_t i = 0; i < sizeof disguised / sizeof disguised[0]; i++) {
        snprintf(path, sizeof path, disguised[i], acct);
        expect_refused("POST", path, g_env.service, body, hdrs);
    }
    assert_int_equal(env_balance(&g_env, acct).posted, 250);
    /* Another spelling of the same path ("a" as %61) is the same request:
     * the record is replayed, the balance does not move again. */
    assert_true(acct[0] == 'a');
    snprintf(path, sizeof path, "/v1/accounts/%%61%s/credits", acct + 1);
    env_req(&g_env, "POST", path, g_env.service, body, hdrs, &r);
    RF_ASSERT_STATUS(&r, 201);
    if (!resp_replayed(&r))
        fail_msg("POST %s with the same Idempotency-Key was not a replay: %s", path, r.body);
    rf_resp_free(&r);
    assert_int_equal(env_balance(&g_env, acct).posted, 250);
}

/* "." and ".." are not ids in bodies either: 400 invalid_field naming the field. */
static void test_dot_ids_in_bodies(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *body, *param;
    } cases[] = {
        {"POST", "/v1/accounts", "{\"id\": \".\", \"currency\": \"USD\"}", "id"},
        {"POST", "/v1/accounts", "{\"id\": \"..\", \"currency\": \"USD\"}", "id"},
        {"POST", "/v1/keys", "{\"role\": \"readonly\", \"name\": \"..\"}", "name"},
        {"PUT", "/v1/users/u-1/customers/stripe", "{\"customer_id\": \"..\"}", "customer_id"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rf_t_resp r;
        char got[64];
        env_req(&g_env, cases[i].method, cases[i].path, g_env.admin, cases[i].body, NULL, &r);
        RF_ASSERT_PROBLEM(&r, 400, "invalid_field");
        problem_param(&r, got, sizeof got);
        assert_string_equal(got, cases[i].param);
        rf_resp_free(&r);
    }
    struct rf_t_resp r;
    env_req(&g_env, "GET", "/v1/accounts/..", g_env.admin, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_path_param");
    rf_resp_free(&r);
}

/* Every list: a malformed cursor is 400 invalid_cursor naming `after`. */
static void test_list_cursors(void **state)
{
    (void)state;
    static const char *const lists[] = {"/v1/keys", "/v1/users/u-1/entitlements",
                                        "/v1/accounts/a-1/entries", "/v1/payouts",
                                        "/v1/approvals"};
    static const struct {
        const char *query, *code, *param;
    } bad[] = {
        {"after=%21bad%21", "invalid_cursor", "after"}, /* "!bad!": not this list's form */
        {"after=%zz", "invalid_cursor", "after"},
        {"after=a%00b", "invalid_cursor", "after"},
        {"after=", "invalid_cursor", "after"},
        {"after=..", "invalid_cursor", "after"},
        {"limit=%zz", "invalid_limit", "limit"},
        {"limit=1%00", "invalid_limit", "limit"},
    };
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
        /* the list is in the route table (so this test follows it) */
        struct rf_match m;
        rf_route_match("GET", lists[l], false, &m);
        assert_int_equal(m.kind, RF_MATCH_OK);
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            char path[300], got[64];
            snprintf(path, sizeof path, "%s?%s", lists[l], bad[b].query);
            struct rf_t_resp r;
            env_req(&g_env, "GET", path, g_env.admin, NULL, NULL, &r);
            print_message("GET %s -> %d\n", path, r.status);
            RF_ASSERT_PROBLEM(&r, 400, bad[b].code);
            problem_param(&r, got, sizeof got);
            assert_string_equal(got, bad[b].param);
            rf_resp_free(&r);
        }
    }
    /* status filters decode their value; a bad escape is invalid_query_param */
    const char *status_lists[] = {"/v1/users/u-1/entitlements", "/v1/payouts", "/v1/approvals"};
    for (size_t l = 0; l < sizeof status_lists / sizeof status_lists[0]; l++) {
        char path[300];
        struct rf_t_resp r;
        snprintf(path, sizeof path, "%s?status=%%zz", status_lists[l]);
        env_req(&g_env, "GET", path, g_env.admin, NULL, NULL, &r);
        RF_ASSERT_PROBLEM(&r, 400, "invalid_query_param");
        rf_resp_free(&r);
        snprintf(path, sizeof path, "%s?status=%%61ll", status_lists[l]); /* "all" */
        env_req(&g_env, "GET", path, g_env.admin, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        rf_resp_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_refuses_hostile_params),
        cmocka_unit_test(test_key_revoke_cut_short),
        cmocka_unit_test(test_entitlement_cut_short),
        cmocka_unit_test(test_account_cut_short),
        cmocka_unit_test(test_dot_ids_in_bodies),
        cmocka_unit_test(test_list_cursors),
    };
    return cmocka_run_group_tests(tests, env_group_setup, env_group_teardown);
}
