/*
 * test_bindings_http - seed 002 (provider-customer bindings) over HTTP, black box.
 *
 * Proves, on the back end in RF_TEST_DB, with requests released together by
 * a barrier, that a binding is decided first-writer-wins in both directions
 * and that no answer ever names a customer other than the one sent:
 *  - 100 rounds of two PUTs binding one user to cus_A and cus_B at once
 *    (fresh ids each round): exactly one 201 and one 409
 *    customer_binding_conflict whose existing_customer_id names the winner's
 *    customer; GET shows the winner only; the loser's customer reverse
 *    lookup is 404 and the winner's names the user;
 *  - 100 rounds of two users racing for one customer: one 201, one 409 whose
 *    existing_user_id names the winner; the loser has no binding;
 *  - 16 concurrent PUTs of the same binding: one 201, fifteen 200, one row;
 *  - bind racing unbind: rounds of 8 PUTs and 8 DELETEs (no If-Match) of one
 *    (provider, user) released together: every 200/201 names the customer
 *    it bound (never an empty binding), every DELETE is 204 or 404, and the
 *    store after each round is what the 201s and 204s add up to;
 *  - re-PUT of an existing binding is 200 with the identical body; DELETE
 *    with a stale If-Match is 412 and changes nothing, with the right one 204,
 *    then 404, and both sides are free to bind again;
 *  - roles: readonly cannot PUT, service cannot DELETE, worker cannot GET;
 *  - bad input (missing customer_id, unknown field, bad ids, bad JSON, bad
 *    If-Match, bad path ids): 400 problem+json and nothing written;
 *  - the answers byte for byte (a fixed X-Request-Id): the 409 naming both
 *    sides in the way (its detail sentence and member order), the reverse
 *    lookup's own 404 sentence, 201's Location, 204 with no ETag (nothing
 *    left to name), and a PUT ignoring Idempotency-Key and If-Match;
 * and no response anywhere is a 5xx.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "racefree.h"

#define RACE_ROUNDS 100
#define SAME_BIND_THREADS 16
#define PROVIDER "stripe"

/* ---- helpers ------------------------------------------------------------- */

/* Every single request goes through here: no 5xx, ever. */
static void req(const char *method, const char *path, const char *key, const char *body,
                const char *const *headers, struct rf_t_resp *out)
{
    env_req(&g_env, method, path, key, body, headers, out);
    env_no_5xx_one(method, path, out);
}

static void user_path(char *out, size_t cap, const char *user)
{
    snprintf(out, cap, "/v1/users/%s/customers/%s", user, PROVIDER);
}

static void customer_path(char *out, size_t cap, const char *customer)
{
    snprintf(out, cap, "/v1/customers/%s/%s", PROVIDER, customer);
}

/* Checks a binding body (and its ETag) for exactly (user, customer). */
static void check_binding(const struct rf_t_resp *r, const char *user, const char *customer)
{
    const char *ct = rf_resp_header(r, "Content-Type");
    if (!ct || strncmp(ct, "application/json", 16) != 0)
        fail_msg("binding Content-Type is %s: %s", ct ? ct : "absent", r->body);
    json_t *j = rf_resp_json(r);
    if (!json_is_object(j))
        fail_msg("binding is not a JSON object: %s", r->body);
    if (strcmp(rf_t_json_str(j, "provider"), PROVIDER) != 0 ||
        strcmp(rf_t_json_str(j, "user_id"), user) != 0 ||
        strcmp(rf_t_json_str(j, "customer_id"), customer) != 0)
        fail_msg("expected %s -> %s, got %s", user, customer, r->body);
    if (!is_rfc3339_ms(rf_t_json_str(j, "created_at")))
        fail_msg("created_at is not RFC 3339 with ms: %s", r->body);
    int64_t v = rf_t_json_int(j, "version");
    if (v < 1 || etag_version(r) != v)
        fail_msg("version %lld / ETag %s mismatch: %s", (long long)v,
                 rf_resp_header(r, "ETag") ? rf_resp_header(r, "ETag") : "(absent)", r->body);
    if (json_object_size(j) != 5)
        fail_msg("binding has members other than provider, user_id, customer_id, created_at, "
                 "version: %s",
                 r->body);
    json_decref(j);
}

/* GET the user's binding: it must name `customer`, or be 404 when NULL. */
static void expect_user(const char *user, const char *customer)
{
    char path[256];
    user_path(path, sizeof path, user);
    struct rf_t_resp r;
    req("GET", path, g_env.readonly, NULL, NULL, &r);
    if (customer) {
        RF_ASSERT_STATUS(&r, 200);
        check_binding(&r, user, customer);
    } else {
        RF_ASSERT_PROBLEM(&r, 404, "customer_binding_not_found");
    }
    rf_resp_free(&r);
}

/* Reverse lookup of the customer: it must name `user`, or be 404 when NULL. */
static void expect_customer(const char *customer, const char *user)
{
    char path[256];
    customer_path(path, sizeof path, customer);
    struct rf_t_resp r;
    req("GET", path, g_env.readonly, NULL, NULL, &r);
    if (user) {
        RF_ASSERT_STATUS(&r, 200);
        check_binding(&r, user, customer);
    } else {
        RF_ASSERT_PROBLEM(&r, 404, "customer_binding_not_found");
    }
    rf_resp_free(&r);
}

static void bind_body(char *out, size_t cap, const char *customer)
{
    snprintf(out, cap, "{\"customer_id\": \"%s\"}", customer);
}

/* One PUT; the status must be want (201 or 200) and the body the binding. */
static void bind_ok(const char *user, const char *customer, int want, struct rf_t_resp *keep)
{
    char path[256], body[256];
    user_path(path, sizeof path, user);
    bind_body(body, sizeof body, customer);
    struct rf_t_resp r;
    req("PUT", path, g_env.service, body, NULL, &r);
    RF_ASSERT_STATUS(&r, want);
    check_binding(&r, user, customer);
    const char *loc = rf_resp_header(&r, "Location");
    if (want == 201) {
        if (!loc || strcmp(loc, path) != 0)
            fail_msg("201 Location is %s, expected %s", loc ? loc : "absent", path);
    } else if (loc) {
        fail_msg("200 carries a Location: %s", loc);
    }
    if (keep)
        *keep = r;
    else
        rf_resp_free(&r);
}

/* The problem member `name` ("" when absent). */
static void problem_member(const struct rf_t_resp *r, const char *name, char *out, size_t cap)
{
    json_t *j = rf_resp_json(r);
    snprintf(out, cap, "%s", rf_t_json_str(j, name));
    json_decref(j);
}

/* ---- the races ------------------------------------------------------------- */

/* Two requests bind one user to two customers at once. */
static void test_user_race(void **state)
{
    (void)state;
    static struct rf_par_req reqs[2];
    static char bodies[2][256];
    int first_wins = 0;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        char user[64], cus[2][64];
        RID(user, "user");
        RID(cus[0], "cus_A");
        RID(cus[1], "cus_B");
        memset(reqs, 0, sizeof reqs);
        for (int i = 0; i < 2; i++) {
            reqs[i].port = g_env.srv.port;
            reqs[i].method = "PUT";
            user_path(reqs[i].path, sizeof reqs[i].path, user);
            reqs[i].api_key = i ? g_env.service : g_env.admin;
            bind_body(bodies[i], sizeof bodies[i], cus[i]);
            reqs[i].body = bodies[i];
        }
        assert_int_equal(rf_parallel(reqs, 2), 0);
        env_no_5xx(reqs, 2);
        int w = reqs[0].resp.status == 201 ? 0 : 1, l = 1 - w;
        if (reqs[w].resp.status != 201 || reqs[l].resp.status != 409)
            fail_msg("round %d: expected one 201 and one 409, got %d (%s) and %d (%s)", round,
                     reqs[0].resp.status, reqs[0].resp.body, reqs[1].resp.status,
                     reqs[1].resp.body);
        check_binding(&reqs[w].resp, user, cus[w]);
        RF_ASSERT_PROBLEM(&reqs[l].resp, 409, "customer_binding_conflict");
        char existing[RF_ID_BYTES], other[RF_ID_BYTES];
        problem_member(&reqs[l].resp, "existing_customer_id", existing, sizeof existing);
        problem_member(&reqs[l].resp, "existing_user_id", other, sizeof other);
        if (strcmp(existing, cus[w]) != 0)
            fail_msg("round %d: the 409 names customer '%s', the winner is %s: %s", round,
                     existing, cus[w], reqs[l].resp.body);
        if (other[0]) /* the loser's customer is free: only the user side conflicts */
            fail_msg("round %d: the 409 names a user for a free customer: %s", round,
                     reqs[l].resp.body);
        first_wins += w == 0;
        rf_par_free(reqs, 2);
        expect_user(user, cus[w]);
        expect_customer(cus[w], user);
        expect_customer(cus[l], NULL);
    }
    print_message("user race: the first request won %d of %d rounds\n", first_wins, RACE_ROUNDS);
}

/* Two users race for one customer. */
static void test_customer_race(void **state)
{
    (void)state;
    static struct rf_par_req reqs[2];
    static char body[256];
    for (int round = 0; round < RACE_ROUNDS; round++) {
        char users[2][64], cus[64];
        RID(users[0], "user_a");
        RID(users[1], "user_b");
        RID(cus, "cus");
        bind_body(body, sizeof body, cus);
        memset(reqs, 0, sizeof reqs);
        for (int i = 0; i < 2; i++) {
            reqs[i].port = g_env.srv.port;
            reqs[i].method = "PUT";
            user_path(reqs[i].path, sizeof reqs[i].path, users[i]);
            reqs[i].api_key = i ? g_env.admin : g_env.service;
            reqs[i].body = body;
        }
        assert_int_equal(rf_parallel(reqs, 2), 0);
        env_no_5xx(reqs, 2);
        int w = reqs[0].resp.status == 201 ? 0 : 1, l = 1 - w;
        if (reqs[w].resp.status != 201 || reqs[l].resp.status != 409)
            fail_msg("round %d: expected one 201 and one 409, got %d (%s) and %d (%s)", round,
                     reqs[0].resp.status, reqs[0].resp.body, reqs[1].resp.status,
                     reqs[1].resp.body);
        check_binding(&reqs[w].resp, users[w], cus);
        RF_ASSERT_PROBLEM(&reqs[l].resp, 409, "customer_binding_conflict");
        char existing[RF_ID_BYTES], other[RF_ID_BYTES];
        problem_member(&reqs[l].resp, "existing_user_id", existing, sizeof existing);
        problem_member(&reqs[l].resp, "existing_customer_id", other, sizeof other);
        if (strcmp(existing, users[w]) != 0)
            fail_msg("round %d: the 409 names user '%s', the winner is %s: %s", round, existing,
                     users[w], reqs[l].resp.body);
        if (other[0])
            fail_msg("round %d: the 409 names a customer for an unbound user: %s", round,
                     reqs[l].resp.body);
        rf_par_free(reqs, 2);
        expect_user(users[w], cus);
        expect_user(users[l], NULL);
        expect_customer(cus, users[w]);
    }
}

/* Many PUTs of one and the same binding: one 201, the rest 200, identical. */
static void test_same_binding_concurrent(void **state)
{
    (void)state;
    static struct rf_par_req reqs[SAME_BIND_THREADS];
    char user[64], cus[64], body[256];
    RID(user, "user");
    RID(cus, "cus");
    bind_body(body, sizeof body, cus);
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < SAME_BIND_THREADS; i++) {
        reqs[i].port = g_env.srv.port;
        reqs[i].method = "PUT";
        user_path(reqs[i].path, sizeof reqs[i].path, user);
        reqs[i].api_key = (i % 2) ? g_env.service : g_env.admin;
        reqs[i].body = body;
    }
    assert_int_equal(rf_parallel(reqs, SAME_BIND_THREADS), 0);
    env_no_5xx(reqs, SAME_BIND_THREADS);
    int created = 0;
    char created_at[64] = "";
    int64_t version = 0;
    for (int i = 0; i < SAME_BIND_THREADS; i++) {
        struct rf_t_resp *r = &reqs[i].resp;
        if (r->status != 200 && r->status != 201)
            fail_msg("PUT %d: HTTP %d %s", i, r->status, r->body);
        created += r->status == 201;
        check_binding(r, user, cus);
        json_t *j = rf_resp_json(r);
        if (!created_at[0]) {
            snprintf(created_at, sizeof created_at, "%s", rf_t_json_str(j, "created_at"));
            version = rf_t_json_int(j, "version");
        }
        /* One binding: every answer names its created_at and its version. */
        assert_int_equal(rf_t_json_int(j, "version"), version);
        assert_string_equal(rf_t_json_str(j, "created_at"), created_at);
        json_decref(j);
    }
    assert_int_equal(created, 1);
    rf_par_free(reqs, SAME_BIND_THREADS);
    expect_user(user, cus);
    expect_customer(cus, user);
}

/* ---- bind racing unbind ---------------------------------------------------- */

#define FLIP_ROUNDS 30
#define FLIP_REQS 16 /* half PUT, half DELETE */

/* One round; adds its 201s and 204s to *created and *removed. */
static void flip_round(struct rf_par_req *reqs, const char *user, const char *cus,
                       int *created, int *removed)
{
    char body[256];
    bind_body(body, sizeof body, cus);
    memset(reqs, 0, sizeof(struct rf_par_req) * FLIP_REQS);
    for (int i = 0; i < FLIP_REQS; i++) {
        reqs[i].port = g_env.srv.port;
        reqs[i].method = i % 2 ? "DELETE" : "PUT";
        user_path(reqs[i].path, sizeof reqs[i].path, user);
        reqs[i].api_key = i % 2 ? g_env.admin : g_env.service;
        reqs[i].body = i % 2 ? NULL : body;
    }
    assert_int_equal(rf_parallel(reqs, FLIP_REQS), 0);
    env_no_5xx(reqs, FLIP_REQS);
    for (int i = 0; i < FLIP_REQS; i++) {
        struct rf_t_resp *r = &reqs[i].resp;
        if (i % 2 == 0 && (r->status == 200 || r->status == 201)) {
            check_binding(r, user, cus);
            *created += r->status == 201;
        } else if (i % 2 == 1 && r->status == 204) {
            (*removed)++;
        } else if (i % 2 == 1 && r->status == 404) {
            RF_ASSERT_PROBLEM(r, 404, "customer_binding_not_found");
        } else {
            fail_msg("%s %d: HTTP %d %s", reqs[i].method, i, r->status, r->body);
        }
    }
    rf_par_free(reqs, FLIP_REQS);
}

static void test_bind_races_unbind(void **state)
{
    (void)state;
    static struct rf_par_req reqs[FLIP_REQS];
    char user[64], cus[64];
    RID(user, "user");
    RID(cus, "cus");
    int created = 0, removed = 0;
    for (int round = 0; round < FLIP_ROUNDS; round++) {
        flip_round(reqs, user, cus, &created, &removed);
        int bound = created - removed; /* every bind and unbind the answers admit */
        if (bound != 0 && bound != 1)
            fail_msg("round %d: %d created, %d removed", round, created, removed);
        expect_user(user, bound ? cus : NULL);
        expect_customer(cus, bound ? user : NULL);
    }
    print_message("bind vs unbind over HTTP: %d created, %d removed\n", created, removed);
    assert_true(created >= 2 && removed >= 1); /* it flipped: the requests raced */
}

/* ---- re-PUT, DELETE with If-Match ---------------------------------------------- */

static void test_reput_and_delete(void **state)
{
    (void)state;
    char user[64], cus[64], path[256];
    RID(user, "user");
    RID(cus, "cus");
    user_path(path, sizeof path, user);
    struct rf_t_resp first, again;
    bind_ok(user, cus, 201, &first);
    bind_ok(user, cus, 200, &again);
    assert_string_equal(first.body, again.body); /* exactly this binding, unchanged */
    /* A new binding's version is not always 1: it continues from earlier
     * bindings of the user and of the customer (a store in use starts at 2). */
    int64_t v = etag_version(&first);
    assert_true(v >= 1);
    rf_resp_free(&first);
    rf_resp_free(&again);

    struct rf_t_resp r;
    char stale_hdr[64], right_hdr[64];
    snprintf(stale_hdr, sizeof stale_hdr, "If-Match: \"%lld\"", (long long)v + 1);
    snprintf(right_hdr, sizeof right_hdr, "If-Match: \"%lld\"", (long long)v);
    const char *stale[] = {stale_hdr, NULL};
    req("DELETE", path, g_env.admin, NULL, stale, &r);
    RF_ASSERT_PROBLEM(&r, 412, "version_mismatch");
    rf_resp_free(&r);
    expect_user(user, cus);
    expect_customer(cus, user);

    const char *bad[] = {"If-Match: \"one\"", NULL};
    req("DELETE", path, g_env.admin, NULL, bad, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_if_match");
    rf_resp_free(&r);
    expect_user(user, cus);

    const char *right[] = {right_hdr, NULL};
    req("DELETE", path, g_env.admin, NULL, right, &r);
    RF_ASSERT_STATUS(&r, 204);
    assert_int_equal((int)r.body_len, 0);
    rf_resp_free(&r);
    expect_user(user, NULL);
    expect_customer(cus, NULL);
    req("DELETE", path, g_env.admin, NULL, right, &r);
    RF_ASSERT_PROBLEM(&r, 404, "customer_binding_not_found");
    rf_resp_free(&r);
    req("DELETE", path, g_env.admin, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "customer_binding_not_found");
    rf_resp_free(&r);

    /* Both sides are free again: the customer to another user, the user to
     * another customer. An unconditional DELETE works too. */
    char user2[64], cus2[64];
    RID(user2, "user");
    RID(cus2, "cus");
    bind_ok(user2, cus, 201, NULL);
    bind_ok(user, cus2, 201, NULL);
    expect_customer(cus, user2);
    expect_user(user, cus2);
    req("DELETE", path, g_env.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 204);
    rf_resp_free(&r);
    expect_user(user, NULL);
    expect_customer(cus2, NULL);
    expect_customer(cus, user2);
}

/* ---- roles -------------------------------------------------------------------------- */

static void test_roles(void **state)
{
    (void)state;
    char user[64], cus[64], path[256], cpath[256], body[256];
    RID(user, "user");
    RID(cus, "cus");
    user_path(path, sizeof path, user);
    customer_path(cpath, sizeof cpath, cus);
    bind_body(body, sizeof body, cus);
    struct rf_t_resp r;
    req("PUT", path, g_env.readonly, body, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    req("PUT", path, g_env.worker, body, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    req("PUT", path, NULL, body, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 401, "unauthenticated");
    rf_resp_free(&r);
    expect_user(user, NULL); /* none of them wrote */

    bind_ok(user, cus, 201, NULL);
    req("DELETE", path, g_env.service, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    req("DELETE", path, g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    expect_user(user, cus); /* still bound */

    req("GET", path, g_env.worker, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    req("GET", cpath, g_env.worker, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    const char *keys[] = {g_env.admin, g_env.service, g_env.readonly};
    for (int i = 0; i < 3; i++) {
        req("GET", path, keys[i], NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        check_binding(&r, user, cus);
        rf_resp_free(&r);
        req("GET", cpath, keys[i], NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        check_binding(&r, user, cus);
        rf_resp_free(&r);
    }
    req("DELETE", path, g_env.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 204);
    rf_resp_free(&r);
}

/* ---- bad input -------------------------------------------------------------------------- */

static void test_bad_input(void **state)
{
    (void)state;
    char user[64], cus[64], path[256];
    RID(user, "user");
    RID(cus, "cus");
    user_path(path, sizeof path, user);
    char long_id[RF_ID_BYTES + 8];
    memset(long_id, 'x', RF_ID_BYTES);
    long_id[RF_ID_BYTES] = '\0'; /* 129 characters: one too many */
    char too_long[300];
    snprintf(too_long, sizeof too_long, "{\"customer_id\": \"%s\"}", long_id);
    char unknown[256], extra[256], dup[256];
    snprintf(unknown, sizeof unknown, "{\"customer_id\": \"%s\", \"customer\": \"x\"}", cus);
    snprintf(extra, sizeof extra, "{\"customer_id\": \"%s\", \"provider\": \"paypal\"}", cus);
    snprintf(dup, sizeof dup, "{\"customer_id\": \"%s\", \"customer_id\": \"%s\"}", cus, cus);
    struct {
        const char *what, *body;
        const char *code;
    } cases[] = {
        {"no body", NULL, "invalid_request"},
        {"empty object", "{}", "invalid_field"},
        {"customer_id null", "{\"customer_id\": null}", "invalid_field"},
        {"customer_id a number", "{\"customer_id\": 42}", "invalid_field"},
        {"customer_id empty", "{\"customer_id\": \"\"}", "invalid_field"},
        {"customer_id with a space", "{\"customer_id\": \"cus AAA\"}", "invalid_field"},
        {"customer_id with a slash", "{\"customer_id\": \"cus/AAA\"}", "invalid_field"},
        {"customer_id 129 chars", too_long, "invalid_field"},
        {"unknown field", unknown, "unknown_field"},
        {"provider in the body", extra, "unknown_field"},
        {"duplicate key", dup, "malformed_json"},
        {"malformed JSON", "{\"customer_id\": ", "malformed_json"},
        {"an array", "[\"cus_AAA\"]", "invalid_request"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rf_t_resp r;
        req("PUT", path, g_env.service, cases[i].body, NULL, &r);
        print_message("%-26s -> %d %.140s\n", cases[i].what, r.status, r.body ? r.body : "");
        RF_ASSERT_PROBLEM(&r, 400, cases[i].code);
        rf_resp_free(&r);
    }
    expect_user(user, NULL);
    expect_customer(cus, NULL);

    /* Bad ids in the path: 400 invalid_path_param, for every method. */
    char body[256];
    bind_body(body, sizeof body, cus);
    static const char *const bad_paths[] = {
        "/v1/users/a%20b/customers/stripe",
        "/v1/users/user-1/customers/str%21ipe",
        "/v1/users/user-1/customers/%C3%A9",
    };
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
        struct rf_t_resp r;
        req("PUT", bad_paths[i], g_env.service, body, NULL, &r);
        RF_ASSERT_PROBLEM(&r, 400, "invalid_path_param");
        rf_resp_free(&r);
        req("GET", bad_paths[i], g_env.service, NULL, NULL, &r);
        RF_ASSERT_PROBLEM(&r, 400, "invalid_path_param");
        rf_resp_free(&r);
        req("DELETE", bad_paths[i], g_env.admin, NULL, NULL, &r);
        RF_ASSERT_PROBLEM(&r, 400, "invalid_path_param");
        rf_resp_free(&r);
    }
    struct rf_t_resp r;
    req("GET", "/v1/customers/stripe/cus%20AAA", g_env.service, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_path_param");
    rf_resp_free(&r);
    expect_customer(cus, NULL); /* the body's customer was never bound */

    /* Not a method of these paths. */
    req("POST", path, g_env.admin, body, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 405, "method_not_allowed");
    rf_resp_free(&r);
    req("DELETE", "/v1/customers/stripe/cus_x", g_env.admin, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 405, "method_not_allowed");
    rf_resp_free(&r);
    expect_user(user, NULL);
}

/* ---- the answers, byte for byte ------------------------------------------------------- */

/* One request with a fixed X-Request-Id, so a problem body is exact text. */
static void req_rid(const char *method, const char *path, const char *key, const char *body,
                    const char *extra_header, struct rf_t_resp *out)
{
    const char *headers[] = {"X-Request-Id: rid-bindings", extra_header, NULL};
    req(method, path, key, body, headers, out);
}

static void assert_body(const struct rf_t_resp *r, const char *want)
{
    if (!r->body || strcmp(r->body, want) != 0)
        fail_msg("HTTP %d body\n  %s\nwanted\n  %s", r->status, r->body ? r->body : "(none)", want);
}

static void assert_no_header(const struct rf_t_resp *r, const char *name)
{
    if (rf_resp_header(r, name))
        fail_msg("HTTP %d carries %s: %s", r->status, name, rf_resp_header(r, name));
}

#define PROBLEM_PREFIX(code_, title_, status_) \
    "{\"type\":\"https://racefree.dev/problems/" code_ "\",\"title\":\"" title_ "\",\"status\":" status_

static void test_answers_exact(void **state)
{
    (void)state;
    char user[64], user2[64], cus[64], cus2[64], path[256], path2[256], cpath[256];
    char body[256], want[1024];
    RID(user, "user");
    RID(user2, "user");
    RID(cus, "cus");
    RID(cus2, "cus");
    user_path(path, sizeof path, user);
    user_path(path2, sizeof path2, user2);

    /* A PUT reads no Idempotency-Key and no If-Match (even malformed ones). */
    struct rf_t_resp r;
    char long_key[300]; /* 256 characters: a malformed key where one is read */
    snprintf(long_key, sizeof long_key, "Idempotency-Key: %0256d", 7);
    bind_body(body, sizeof body, cus);
    req_rid("PUT", path, g_env.service, body, long_key, &r);
    RF_ASSERT_STATUS(&r, 201);
    check_binding(&r, user, cus);
    assert_string_equal(rf_resp_header(&r, "Location"), path);
    assert_no_header(&r, "Idempotent-Replayed");
    rf_resp_free(&r);
    req_rid("PUT", path, g_env.service, body, "If-Match: \"one\"", &r);
    RF_ASSERT_STATUS(&r, 200);
    assert_no_header(&r, "Location");
    rf_resp_free(&r);
    bind_ok(user2, cus2, 201, NULL);

    /* user -> cus2: the user is bound to cus, cus2 to user2. */
    bind_body(body, sizeof body, cus2);
    req_rid("PUT", path, g_env.service, body, "Idempotency-Key: k1", &r);
    snprintf(want, sizeof want,
             PROBLEM_PREFIX("customer_binding_conflict", "Customer binding conflict", "409")
             ",\"detail\":\"the user is bound to customer %s; the customer is bound to user %s\""
             ",\"code\":\"customer_binding_conflict\",\"existing_customer_id\":\"%s\""
             ",\"existing_user_id\":\"%s\",\"request_id\":\"rid-bindings\"}",
             cus, user2, cus, user2);
    assert_body(&r, want);
    assert_no_header(&r, "ETag");
    rf_resp_free(&r);
    /* user2 -> cus: both sides again, the other way round. */
    bind_body(body, sizeof body, cus);
    req_rid("PUT", path2, g_env.service, body, NULL, &r);
    snprintf(want, sizeof want,
             PROBLEM_PREFIX("customer_binding_conflict", "Customer binding conflict", "409")
             ",\"detail\":\"the user is bound to customer %s; the customer is bound to user %s\""
             ",\"code\":\"customer_binding_conflict\",\"existing_customer_id\":\"%s\""
             ",\"existing_user_id\":\"%s\",\"request_id\":\"rid-bindings\"}",
             cus2, user, cus2, user);
    assert_body(&r, want);
    rf_resp_free(&r);

    /* Unbind user2; user2 -> cus then names only the user holding cus. */
    req_rid("DELETE", path2, g_env.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 204);
    assert_int_equal((int)r.body_len, 0);
    assert_no_header(&r, "ETag");
    assert_no_header(&r, "Content-Type");
    rf_resp_free(&r);
    req_rid("PUT", path2, g_env.service, body, NULL, &r);
    snprintf(want, sizeof want,
             PROBLEM_PREFIX("customer_binding_conflict", "Customer binding conflict", "409")
             ",\"detail\":\"the customer is bound to user %s\""
             ",\"code\":\"customer_binding_conflict\",\"existing_user_id\":\"%s\""
             ",\"request_id\":\"rid-bindings\"}",
             user, user);
    assert_body(&r, want);
    rf_resp_free(&r);

    /* The two 404 sentences: from the user, and from the customer. */
    req_rid("GET", path2, g_env.readonly, NULL, NULL, &r);
    assert_body(&r, PROBLEM_PREFIX("customer_binding_not_found", "Customer binding not found",
                                   "404")
                ",\"detail\":\"The user has no customer at this provider.\""
                ",\"code\":\"customer_binding_not_found\",\"request_id\":\"rid-bindings\"}");
    rf_resp_free(&r);
    customer_path(cpath, sizeof cpath, cus2);
    req_rid("GET", cpath, g_env.readonly, NULL, NULL, &r);
    assert_body(&r, PROBLEM_PREFIX("customer_binding_not_found", "Customer binding not found",
                                   "404")
                ",\"detail\":\"No user is bound to this customer at this provider.\""
                ",\"code\":\"customer_binding_not_found\",\"request_id\":\"rid-bindings\"}");
    rf_resp_free(&r);
    req_rid("DELETE", path2, g_env.admin, NULL, NULL, &r);
    assert_body(&r, PROBLEM_PREFIX("customer_binding_not_found", "Customer binding not found",
                                   "404")
                ",\"detail\":\"The user has no customer at this provider.\""
                ",\"code\":\"customer_binding_not_found\",\"request_id\":\"rid-bindings\"}");
    rf_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_race),
        cmocka_unit_test(test_customer_race),
        cmocka_unit_test(test_same_binding_concurrent),
        cmocka_unit_test(test_bind_races_unbind),
        cmocka_unit_test(test_reput_and_delete),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_answers_exact),
    };
    return cmocka_run_group_tests(tests, env_group_setup, env_group_teardown);
}
