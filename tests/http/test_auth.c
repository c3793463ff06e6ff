/*
 * test_auth - every credential against every entitlement and key route.
 *
 * Proves the role table of the conventions:
 *   PUT/DELETE entitlement: admin, service     GET entitlement(s): + readonly
 *   POST/GET /v1/keys, DELETE /v1/keys/{id}: admin only      worker: nothing
 * - no key, a malformed header, an unknown key, a tampered key and a revoked
 *   key all get 401 unauthenticated with a WWW-Authenticate challenge;
 * - a valid key without the role gets 403 forbidden;
 * - allowed roles get their 2xx (or 404 for what does not exist);
 * - a refused request (401/403) changes nothing.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { R_ADMIN = 1, R_SERVICE = 2, R_WORKER = 4, R_READONLY = 8 };

struct cred {
    const char *label;
    int role;            /* 0: not a valid key -> 401 */
    char header[400];    /* the Authorization header line, or "" for none */
};

enum route {
    PUT_ENT, DELETE_ENT, GET_ENT, GET_ENT_MISSING, LIST_ENT, POST_KEYS, GET_KEYS, DELETE_KEY,
    DELETE_KEY_MISSING, GET_KEY_MISSING, ROUTES
};
static const struct {
    const char *name;
    int allowed;
} routes[ROUTES] = {
    [PUT_ENT] = {"PUT /v1/users/{u}/entitlements/{k}", R_ADMIN | R_SERVICE},
    [DELETE_ENT] = {"DELETE /v1/users/{u}/entitlements/{k}", R_ADMIN | R_SERVICE},
    [GET_ENT] = {"GET /v1/users/{u}/entitlements/{k}", R_ADMIN | R_SERVICE | R_READONLY},
    [GET_ENT_MISSING] = {"GET /v1/users/{u}/entitlements/{missing}",
                         R_ADMIN | R_SERVICE | R_READONLY},
    [LIST_ENT] = {"GET /v1/users/{u}/entitlements", R_ADMIN | R_SERVICE | R_READONLY},
    [POST_KEYS] = {"POST /v1/keys", R_ADMIN},
    [GET_KEYS] = {"GET /v1/keys", R_ADMIN},
    [DELETE_KEY] = {"DELETE /v1/keys/{id}", R_ADMIN},
    [DELETE_KEY_MISSING] = {"DELETE /v1/keys/{missing}", R_ADMIN},
    [GET_KEY_MISSING] = {"GET /v1/keys/{missing}", R_ADMIN},
};

static void expect_refused(const struct cred *c, int rt, const struct rf_t_resp *r)
{
    if (c->role == 0) {
        if (r->status != 401)
            fail_msg("%s with %s: expected 401, got %d %s", routes[rt].name, c->label, r->status,
                     r->body);
        RF_ASSERT_PROBLEM(r, 401, "unauthenticated");
        const char *wa = rf_resp_header(r, "WWW-Authenticate");
        if (!wa || strncasecmp(wa, "Bearer", 6) != 0)
            fail_msg("%s with %s: 401 without a Bearer WWW-Authenticate (%s)", routes[rt].name,
                     c->label, wa ? wa : "absent");
    } else {
        if (r->status != 403)
            fail_msg("%s with %s: expected 403, got %d %s", routes[rt].name, c->label, r->status,
                     r->body);
        RF_ASSERT_PROBLEM(r, 403, "forbidden");
    }
}

static void expect_allowed(const struct cred *c, int rt, const struct rf_t_resp *r, int want)
{
    if (r->status != want)
        fail_msg("%s with %s: expected %d, got %d %s", routes[rt].name, c->label, want, r->status,
                 r->body ? r->body : r->errmsg);
}

static void run_cred(struct env *e, const struct cred *c)
{
    const char *hdrs[] = {c->header[0] ? c->header : NULL, NULL};
    char user[64], ent[64], path[600];
    RID(user, "u");
    RID(ent, "pro");
    ent_path(path, sizeof path, user, ent);
    struct rf_t_resp r;

    for (int rt = 0; rt < ROUTES; rt++) {
        bool ok = c->role && (routes[rt].allowed & c->role);
        char p[700], body[300] = "";
        const char *method = "GET";
        /* Set-up with the admin key, then the request under test. */
        switch (rt) {
        case PUT_ENT:
            method = "PUT";
            snprintf(p, sizeof p, "%s", path);
            break;
        case DELETE_ENT:
        case GET_ENT: {
            char u2[64];
            RID(u2, "u");
            ent_path(p, sizeof p, u2, ent);
            env_req(e, "PUT", p, e->admin, NULL, NULL, &r);
            RF_ASSERT_STATUS(&r, 201);
            rf_resp_free(&r);
            method = rt == DELETE_ENT ? "DELETE" : "GET";
            break;
        }
        case GET_ENT_MISSING:
            ent_path(p, sizeof p, user, "missing");
            break;
        case LIST_ENT:
            snprintf(p, sizeof p, "/v1/users/%s/entitlements?status=all", user);
            break;
        case POST_KEYS: {
            char name[64];
            RID(name, "k");
            method = "POST";
            snprintf(p, sizeof p, "/v1/keys");
            snprintf(body, sizeof body, "{\"role\": \"readonly\", \"name\": \"%s\"}", name);
            break;
        }
        case GET_KEYS:
            snprintf(p, sizeof p, "/v1/keys");
            break;
        case DELETE_KEY:
        case DELETE_KEY_MISSING:
            method = "DELETE";
            snprintf(p, sizeof p, "/v1/keys/%s", "no-such-key-id");
            break;
        case GET_KEY_MISSING:
            snprintf(p, sizeof p, "/v1/keys/%s", "no-such-key-id");
            break;
        }
        char victim_id[256] = "", victim_secret[RF_T_KEY_BYTES] = "";
        if (rt == DELETE_KEY) {
            char name[64];
            RID(name, "victim");
            key_create_http(e, "readonly", name, victim_id, sizeof victim_id, victim_secret,
                            sizeof victim_secret);
            snprintf(p, sizeof p, "/v1/keys/%s", victim_id);
        }

        rf_http(e->srv.port, method, p, hdrs, body[0] ? body : NULL, strlen(body), &r);
        char name_in_body[64] = "";
        if (rt == POST_KEYS)
            sscanf(strstr(body, "\"name\": \"") + 9, "%63[^\"]", name_in_body);

        if (!ok) {
            expect_refused(c, rt, &r);
            rf_resp_free(&r);
            /* Nothing changed. */
            switch (rt) {
            case PUT_ENT:
                env_req(e, "GET", p, e->admin, NULL, NULL, &r);
                RF_ASSERT_PROBLEM(&r, 404, "entitlement_not_found");
                rf_resp_free(&r);
                break;
            case DELETE_ENT: {
                env_req(e, "GET", p, e->admin, NULL, NULL, &r);
                RF_ASSERT_STATUS(&r, 200);
                json_t *j = rf_resp_json(&r);
                assert_string_equal(rf_t_json_str(j, "status"), "active");
                assert_int_equal(rf_t_json_int(j, "version"), 1);
                json_decref(j);
                rf_resp_free(&r);
                break;
            }
            case POST_KEYS:
                assert_int_equal(keys_named(e, name_in_body), 0);
                break;
            case DELETE_KEY: {
                char lp[200];
                snprintf(lp, sizeof lp, "/v1/users/%s/entitlements", user);
                env_req(e, "GET", lp, victim_secret, NULL, NULL, &r);
                RF_ASSERT_STATUS(&r, 200);
                rf_resp_free(&r);
                break;
            }
            default:
                break;
            }
            continue;
        }

        switch (rt) {
        case PUT_ENT:
            expect_allowed(c, rt, &r, 201);
            break;
        case DELETE_ENT:
            expect_allowed(c, rt, &r, 204);
            break;
        case GET_ENT:
        case LIST_ENT:
        case GET_KEYS:
            expect_allowed(c, rt, &r, 200);
            break;
        case GET_ENT_MISSING:
            RF_ASSERT_PROBLEM(&r, 404, "entitlement_not_found");
            break;
        case POST_KEYS:
            expect_allowed(c, rt, &r, 201);
            assert_int_equal(keys_named(e, name_in_body), 1);
            break;
        case DELETE_KEY: {
            expect_allowed(c, rt, &r, 204);
            rf_resp_free(&r);
            char lp[200];
            snprintf(lp, sizeof lp, "/v1/users/%s/entitlements", user);
            env_req(e, "GET", lp, victim_secret, NULL, NULL, &r);
            RF_ASSERT_PROBLEM(&r, 401, "unauthenticated");
            break;
        }
        case DELETE_KEY_MISSING:
        case GET_KEY_MISSING:
            RF_ASSERT_PROBLEM(&r, 404, "key_not_found");
            break;
        }
        rf_resp_free(&r);
    }
}

static void test_every_credential_every_route(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);

    /* A key revoked over HTTP, and one revoked with the CLI. */
    char rname[64], rid[256], rsecret[RF_T_KEY_BYTES];
    RID(rname, "revoked");
    key_create_http(&e, "admin", rname, rid, sizeof rid, rsecret, sizeof rsecret);
    char path[300];
    snprintf(path, sizeof path, "/v1/keys/%s", rid);
    struct rf_t_resp r;
    env_req(&e, "DELETE", path, e.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 204);
    rf_resp_free(&r);
    env_req(&e, "DELETE", path, e.admin, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "key_not_found");
    rf_resp_free(&r);

    char tampered[RF_T_KEY_BYTES];
    snprintf(tampered, sizeof tampered, "%s", e.admin);
    size_t n = strlen(tampered);
    tampered[n - 1] = tampered[n - 1] == 'A' ? 'B' : 'A';

    static struct cred creds[16];
    int nc = 0;
    creds[nc] = (struct cred){"admin", R_ADMIN, ""};
    snprintf(creds[nc++].header, sizeof creds[0].header, "Authorization: Bearer %s", e.admin);
    creds[nc] = (struct cred){"service", R_SERVICE, ""};
    snprintf(creds[nc++].header, sizeof creds[0].header, "Authorization: Bearer %s", e.service);
    creds[nc] = (struct cred){"worker", R_WORKER, ""};
    snprintf(creds[nc++].header, sizeof creds[0].header, "Authorization: Bearer %s", e.worker);
    creds[nc] = (struct cred){"readonly", R_READONLY, ""};
    snprintf(creds[nc++].header, sizeof creds[0].header, "Authorization: Bearer %s", e.readonly);
    creds[nc++] = (struct cred){"no key", 0, ""};
    creds[nc++] = (struct cred){"Bearer without token", 0, "Authorization: Bearer"};
    creds[nc++] = (struct cred){"Basic scheme", 0, "Authorization: Basic dXNlcjpwYXNzd29yZA=="};
    creds[nc++] = (struct cred){"unknown key", 0,
                                "Authorization: Bearer rfk_00000000000000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    creds[nc++] = (struct cred){"garbage", 0, "Authorization: Bearer !!!not a key!!!"};
    creds[nc] = (struct cred){"tampered admin key", 0, ""};
    snprintf(creds[nc++].header, sizeof creds[0].header, "Authorization: Bearer %s", tampered);
    creds[nc] = (struct cred){"revoked admin key", 0, ""};
    snprintf(creds[nc++].header, sizeof creds[0].header, "Authorization: Bearer %s", rsecret);

    for (int i = 0; i < nc; i++)
        run_cred(&e, &creds[i]);
    env_stop(&e);
}

/* A key revoked with the CLI while the server runs is refused at once. */
static void test_cli_revoked_key_refused(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    char name[64], id[256], secret[RF_T_KEY_BYTES];
    RID(name, "svc");
    key_create_http(&e, "service", name, id, sizeof id, secret, sizeof secret);
    char user[64], path[300];
    RID(user, "u");
    snprintf(path, sizeof path, "/v1/users/%s/entitlements", user);
    struct rf_t_resp r;
    env_req(&e, "GET", path, secret, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);

    char out[4096], err[4096];
    const char *args[] = {"keys", "revoke", "--db", e.db, id, NULL};
    int rc = rf_cli_run(args, out, sizeof out, err, sizeof err, 0);
    if (rc != 0)
        fail_msg("keys revoke exited %d: %s %s", rc, out, err);
    env_wait_revoked(&e, path, secret); /* another process: within the key cache's TTL */
    /* GET /v1/keys/{id}: the key, revoked now, never its secret */
    char kp[300];
    snprintf(kp, sizeof kp, "/v1/keys/%s", id);
    env_req(&e, "GET", kp, e.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *k = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(k, "id"), id);
    assert_string_equal(rf_t_json_str(k, "name"), name);
    assert_string_equal(rf_t_json_str(k, "role"), "service");
    assert_non_null(rf_t_json_str(k, "revoked_at"));
    assert_null(json_object_get(k, "key"));
    assert_null(strstr(r.body, secret + 4)); /* no part of the key text */
    json_decref(k);
    rf_resp_free(&r);
    env_stop(&e);
}

/* GET /v1/keys/{id} of an active key: the same member for member as the
 * key's item in GET /v1/keys (one view renders both). */
static void test_key_get_matches_list(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    char name[64], id[256], secret[RF_T_KEY_BYTES], kp[300];
    RID(name, "ro");
    key_create_http(&e, "readonly", name, id, sizeof id, secret, sizeof secret);
    snprintf(kp, sizeof kp, "/v1/keys/%s", id);
    struct rf_t_resp r;
    env_req(&e, "GET", kp, e.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    assert_null(rf_resp_header(&r, "ETag")); /* a key has no version */
    json_t *one = rf_resp_json(&r);
    rf_resp_free(&r);
    assert_true(json_is_null(json_object_get(one, "revoked_at")));
    json_t *found = NULL;
    char lp[400] = "/v1/keys?limit=500";
    for (int pages = 0; !found && pages < 100; pages++) {
        env_req(&e, "GET", lp, e.admin, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *pg = rf_resp_json(&r);
        rf_resp_free(&r);
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(pg, "data"), i, item) if (
            strcmp(rf_t_json_str(item, "id"), id) == 0) found = json_incref(item);
        const char *next = rf_t_json_str(pg, "next");
        if (!found && !next) fail_msg("key %s not listed", id);
        if (next) snprintf(lp, sizeof lp, "/v1/keys?limit=500&after=%s", next);
        json_decref(pg);
    }
    assert_true(json_equal(one, found));
    json_decref(one);
    json_decref(found);
    env_req(&e, "GET", kp, secret, NULL, NULL, &r); /* readonly may not */
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    /* The key is in this server's key cache now; revoked through this server
     * it stops working at once, with no TTL to wait out. */
    char up[200];
    snprintf(up, sizeof up, "/v1/users/%s/entitlements", name);
    env_req(&e, "GET", up, secret, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    env_req(&e, "DELETE", kp, e.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 204);
    rf_resp_free(&r);
    env_req(&e, "GET", up, secret, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 401, "unauthenticated");
    rf_resp_free(&r);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_credential_every_route),
        cmocka_unit_test(test_cli_revoked_key_refused),
        cmocka_unit_test(test_key_get_matches_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
