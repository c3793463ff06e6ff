/*
 * test_versions - an ETag never repeats for one natural key, even across
 * delete and re-create, so a stale If-Match never matches a newer
 * incarnation. Black box, on the back end in RF_TEST_DB:
 *  - a customer binding unbound and bound again to another customer, several
 *    times: every new ETag differs from every earlier one; DELETE with any
 *    earlier ETag is 412 version_mismatch and the new binding is intact;
 *    with the current ETag it is 204;
 *  - a customer bound again to another user: the reverse lookup's ETag never
 *    repeats, and the customer's old ETag does not unbind the new user;
 *  - an entitlement revoked and granted again, and one expired and granted
 *    again: PUT and DELETE with an earlier ETag are 412 and change nothing;
 *  - an account created again with the same id: the answer carries the
 *    current version, never the first one again;
 *  - a barrier race on one user: threads re-binding (each to a fresh
 *    customer) and threads unbinding with an If-Match read now or earlier.
 *    No two bindings got one version, every ETag seen for a customer is that
 *    binding's version, every 204 removed exactly the binding its If-Match
 *    named (the ones made before the race never match again), and no 5xx.
 */
#include "http_env.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROVIDER "stripe"
#define CYCLES 4
#define RACE_THREADS 16 /* even: re-bind, odd: unbind */
#define RACE_OPS 12
#define RACE_RECORDS (RACE_THREADS * RACE_OPS + 1)

/* ---- helpers ----------------------------------------------------------------- */

static void req(const char *method, const char *path, const char *key, const char *body,
                const char *const *headers, struct rf_t_resp *out)
{
    env_req(&g_env, method, path, key, body, headers, out);
    env_no_5xx_one(method, path, out);
}

/* A request with `If-Match: "<version>"`. */
static void req_if_match(const char *method, const char *path, const char *body, int64_t version,
                         struct rf_t_resp *out)
{
    char h[64];
    snprintf(h, sizeof h, "If-Match: \"%lld\"", (long long)version);
    const char *hdrs[] = {h, NULL};
    req(method, path, g_env.admin, body, hdrs, out);
}

static void user_path(char *out, size_t cap, const char *user)
{
    snprintf(out, cap, "/v1/users/%s/customers/%s", user, PROVIDER);
}

static void customer_path(char *out, size_t cap, const char *customer)
{
    snprintf(out, cap, "/v1/customers/%s/%s", PROVIDER, customer);
}

/* The ETag of a response that must have one (and the body's version). */
static int64_t etag_of(const struct rf_t_resp *r)
{
    int64_t v = etag_version(r);
    if (v < 1)
        fail_msg("HTTP %d without a version ETag: %s", r->status, r->body);
    if (r->body_len) {
        json_t *j = rf_resp_json(r);
        if (rf_t_json_int(j, "version") != v)
            fail_msg("ETag %lld is not the body's version: %s", (long long)v, r->body);
        json_decref(j);
    }
    return v;
}

/* Fails unless v differs from every one of the n earlier ETags. */
static void assert_fresh_etag(int64_t v, const int64_t *earlier, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        if (earlier[i] == v)
            fail_msg("%s: ETag \"%lld\" again (seen before as #%d)", what, (long long)v, i);
}

/* PUT a binding of user to customer; the answer's status must be want. */
static int64_t bind_to(const char *user, const char *customer, int want)
{
    char path[256], body[256];
    user_path(path, sizeof path, user);
    snprintf(body, sizeof body, "{\"customer_id\": \"%s\"}", customer);
    struct rf_t_resp r;
    req("PUT", path, g_env.service, body, NULL, &r);
    RF_ASSERT_STATUS(&r, want);
    int64_t v = etag_of(&r);
    rf_resp_free(&r);
    return v;
}

/* GET by user: bound to customer with this ETag. */
static void expect_binding(const char *user, const char *customer, int64_t etag)
{
    char path[256];
    user_path(path, sizeof path, user);
    struct rf_t_resp r;
    req("GET", path, g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(j, "customer_id"), customer);
    json_decref(j);
    assert_int_equal(etag_of(&r), etag);
    rf_resp_free(&r);
}

/* ---- bindings ------------------------------------------------------------------- */

static void test_binding_rebound_to_another_customer(void **state)
{
    (void)state;
    char user[64], path[256];
    RID(user, "user");
    user_path(path, sizeof path, user);
    int64_t seen[CYCLES];
    for (int i = 0; i < CYCLES; i++) {
        char cus[64];
        RID(cus, "cus");
        int64_t v = bind_to(user, cus, 201);
        assert_fresh_etag(v, seen, i, "binding bound again");
        seen[i] = v;
        struct rf_t_resp r;
        for (int old = 0; old < i; old++) {
            req_if_match("DELETE", path, NULL, seen[old], &r);
            RF_ASSERT_PROBLEM(&r, 412, "version_mismatch");
            rf_resp_free(&r);
            expect_binding(user, cus, v); /* the new binding is intact */
        }
        req_if_match("DELETE", path, NULL, v, &r);
        RF_ASSERT_STATUS(&r, 204);
        rf_resp_free(&r);
        req("GET", path, g_env.readonly, NULL, NULL, &r);
        RF_ASSERT_PROBLEM(&r, 404, "customer_binding_not_found");
        rf_resp_free(&r);
    }
}

static void test_customer_rebound_to_another_user(void **state)
{
    (void)state;
    char cus[64], cpath[256];
    RID(cus, "cus");
    customer_path(cpath, sizeof cpath, cus);
    int64_t seen[CYCLES];
    for (int i = 0; i < CYCLES; i++) {
        char user[64], path[256];
        RID(user, "user");
        user_path(path, sizeof path, user);
        bind_to(user, cus, 201);
        struct rf_t_resp r;
        req("GET", cpath, g_env.readonly, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        int64_t v = etag_of(&r);
        rf_resp_free(&r);
        assert_fresh_etag(v, seen, i, "customer bound again");
        seen[i] = v;
        if (i > 0) { /* the customer's previous ETag, sent to its new user */
            req_if_match("DELETE", path, NULL, seen[i - 1], &r);
            RF_ASSERT_PROBLEM(&r, 412, "version_mismatch");
            rf_resp_free(&r);
            expect_binding(user, cus, v);
        }
        req_if_match("DELETE", path, NULL, v, &r);
        RF_ASSERT_STATUS(&r, 204);
        rf_resp_free(&r);
    }
}

/* ---- entitlements ------------------------------------------------------------------ */

/* PUT or DELETE with each earlier ETag: 412, and the entitlement is still
 * active at etag_now. */
static void stale_ent_changes_refused(const char *path, const int64_t *seen, int n,
                                      int64_t etag_now)
{
    for (int i = 0; i < n; i++) {
        if (seen[i] == etag_now)
            continue;
        struct rf_t_resp r;
        req_if_match("PUT", path, "{\"source\": \"stale\"}", seen[i], &r);
        RF_ASSERT_PROBLEM(&r, 412, "version_mismatch");
        rf_resp_free(&r);
        req_if_match("DELETE", path, NULL, seen[i], &r);
        RF_ASSERT_PROBLEM(&r, 412, "version_mismatch");
        rf_resp_free(&r);
        req("GET", path, g_env.readonly, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r);
        assert_string_equal(rf_t_json_str(j, "status"), "active");
        json_decref(j);
        assert_int_equal(etag_of(&r), etag_now);
        rf_resp_free(&r);
    }
}

static void test_entitlement_revoked_and_granted_again(void **state)
{
    (void)state;
    char user[64], path[256];
    RID(user, "user");
    ent_path(path, sizeof path, user, "pro");
    int64_t seen[2 * CYCLES];
    int n = 0;
    for (int i = 0; i < CYCLES; i++) {
        struct rf_t_resp r;
        req("PUT", path, g_env.service, "{\"source\": \"test\"}", NULL, &r);
        RF_ASSERT_STATUS(&r, i == 0 ? 201 : 200);
        int64_t v = etag_of(&r);
        rf_resp_free(&r);
        assert_fresh_etag(v, seen, n, "entitlement granted again");
        stale_ent_changes_refused(path, seen, n, v);
        seen[n++] = v;
        req_if_match("DELETE", path, NULL, v, &r);
        RF_ASSERT_STATUS(&r, 204);
        int64_t revoked = etag_version(&r); /* the revoked state's version */
        rf_resp_free(&r);
        assert_true(revoked > 0);
        assert_fresh_etag(revoked, seen, n, "entitlement revoked");
        seen[n++] = revoked;
    }
}

static void test_entitlement_expired_and_granted_again(void **state)
{
    (void)state;
    char user[64], path[256];
    RID(user, "user");
    ent_path(path, sizeof path, user, "trial");
    int64_t seen[CYCLES];
    for (int i = 0; i < CYCLES; i++) {
        struct rf_t_resp r;
        /* expired at once; the next grant starts a new incarnation */
        req("PUT", path, g_env.service, "{\"expires_at\": \"2001-01-01T00:00:00.000Z\"}", NULL,
            &r);
        RF_ASSERT_STATUS(&r, i == 0 ? 201 : 200);
        int64_t v = etag_of(&r);
        json_t *j = rf_resp_json(&r);
        assert_string_equal(rf_t_json_str(j, "status"), "expired");
        json_decref(j);
        rf_resp_free(&r);
        assert_fresh_etag(v, seen, i, "entitlement expired and granted again");
        seen[i] = v;
    }
    struct rf_t_resp r;
    req("PUT", path, g_env.service, "{}", NULL, &r); /* active, no expiry */
    RF_ASSERT_STATUS(&r, 200);
    int64_t v = etag_of(&r);
    rf_resp_free(&r);
    assert_fresh_etag(v, seen, CYCLES, "entitlement granted after expiry");
    stale_ent_changes_refused(path, seen, CYCLES, v);
    req_if_match("DELETE", path, NULL, v, &r);
    RF_ASSERT_STATUS(&r, 204);
    rf_resp_free(&r);
}

/* ---- accounts --------------------------------------------------------------------- */

static void test_account_created_again(void **state)
{
    (void)state;
    char id[64], cur[4], body[256], path[256];
    RID(id, "acct");
    rand_currency(cur);
    snprintf(body, sizeof body, "{\"id\": \"%s\", \"currency\": \"%s\"}", id, cur);
    struct rf_t_resp r;
    req("POST", "/v1/accounts", g_env.service, body, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    int64_t first = etag_of(&r);
    rf_resp_free(&r);
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", id);
    char ik[128];
    idem_hdr_fresh(ik, sizeof ik);
    const char *hdrs[] = {ik, NULL};
    req("POST", path, g_env.service, "{\"amount_minor\": 5}", hdrs, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    int64_t now = env_balance(&g_env, id).version;
    assert_true(now > first);
    req("POST", "/v1/accounts", g_env.service, body, NULL, &r); /* the same account again */
    RF_ASSERT_STATUS(&r, 200);
    assert_int_equal(etag_of(&r), now);
    rf_resp_free(&r);
}

/* ---- the race ----------------------------------------------------------------------- */

/* One answer as a thread saw it; checked after the join. */
struct seen {
    char method[8];
    int status;
    int64_t if_match;  /* DELETE: what it sent */
    int64_t etag;      /* PUT/GET: the ETag, -1 when absent */
    char customer[64]; /* PUT: the one sent; GET: the one shown */
    char body[160];
};

struct race {
    char user[64];
    int port;
    const char *service, *admin;
    int64_t before[2]; /* the versions of the bindings made before the race */
    struct seen log[RACE_THREADS][2 * RACE_OPS];
    int n[RACE_THREADS];
};

static struct seen *log_next(struct race *r, int idx, const char *method,
                             const struct rf_t_resp *resp)
{
    struct seen *s = &r->log[idx][r->n[idx]++];
    snprintf(s->method, sizeof s->method, "%s", method);
    s->status = resp->status;
    s->etag = etag_version(resp);
    snprintf(s->body, sizeof s->body, "%s", resp->body ? resp->body : resp->errmsg);
    return s;
}

static void race_rebind(struct race *r, int idx)
{
    char path[256], body[256], cus[64];
    rf_rand_id("cus", cus, sizeof cus);
    user_path(path, sizeof path, r->user);
    snprintf(body, sizeof body, "{\"customer_id\": \"%s\"}", cus);
    struct rf_t_resp resp;
    rf_req(r->port, "PUT", path, r->service, body, NULL, &resp);
    struct seen *s = log_next(r, idx, "PUT", &resp);
    snprintf(s->customer, sizeof s->customer, "%s", cus);
    rf_resp_free(&resp);
}

/* GET, then DELETE with the ETag just read or (every other time) one read
 * earlier, starting with a binding made before the race. */
static void race_unbind(struct race *r, int idx, int op, int64_t *older)
{
    char path[256], h[64];
    user_path(path, sizeof path, r->user);
    struct rf_t_resp resp;
    rf_req(r->port, "GET", path, r->admin, NULL, NULL, &resp);
    struct seen *s = log_next(r, idx, "GET", &resp);
    json_t *j = resp.status == 200 ? rf_resp_json(&resp) : NULL;
    if (j)
        snprintf(s->customer, sizeof s->customer, "%s", rf_t_json_str(j, "customer_id"));
    json_decref(j);
    rf_resp_free(&resp);
    int64_t now = s->status == 200 ? s->etag : 0;
    int64_t if_match = (op % 2 == 0 && now > 0) ? now : *older;
    if (now > 0)
        *older = now;
    snprintf(h, sizeof h, "If-Match: \"%lld\"", (long long)if_match);
    const char *hdrs[] = {h, NULL};
    rf_req(r->port, "DELETE", path, r->admin, NULL, hdrs, &resp);
    log_next(r, idx, "DELETE", &resp)->if_match = if_match;
    rf_resp_free(&resp);
}

static void race_one(int idx, void *ctx)
{
    struct race *r = ctx;
    int64_t older = r->before[(idx / 2) % 2];
    for (int op = 0; op < RACE_OPS; op++) {
        if (idx % 2)
            race_unbind(r, idx, op, &older);
        else
            race_rebind(r, idx);
    }
}

/* Versions of the bindings made (201s, plus those made before the race). */
struct made {
    int n;
    int64_t v[RACE_RECORDS];
    char customer[RACE_RECORDS][64];
    bool removed[RACE_RECORDS];
};

static int made_with(const struct made *m, int64_t v)
{
    int found = -1;
    for (int i = 0; i < m->n; i++) {
        if (m->v[i] != v)
            continue;
        if (found >= 0)
            fail_msg("two bindings of one user got ETag \"%lld\"", (long long)v);
        found = i;
    }
    return found;
}

static void collect_made(const struct race *r, struct made *m)
{
    for (int t = 0; t < RACE_THREADS; t++)
        for (int i = 0; i < r->n[t]; i++) {
            const struct seen *s = &r->log[t][i];
            if (s->status >= 500 || s->status == 0)
                fail_msg("%s: HTTP %d %s", s->method, s->status, s->body);
            if (strcmp(s->method, "PUT") != 0 || s->status == 409)
                continue;
            if (s->status != 201)
                fail_msg("PUT of a fresh customer: HTTP %d %s", s->status, s->body);
            m->v[m->n] = s->etag;
            snprintf(m->customer[m->n++], 64, "%s", s->customer);
        }
    for (int i = 0; i < m->n; i++)
        (void)made_with(m, m->v[i]);
}

/* Every GET showed a binding made with that ETag; every 204 removed exactly
 * the binding its If-Match named, and each binding at most once. */
static void check_reads_and_removals(const struct race *r, struct made *m)
{
    for (int t = 0; t < RACE_THREADS; t++)
        for (int i = 0; i < r->n[t]; i++) {
            const struct seen *s = &r->log[t][i];
            if (strcmp(s->method, "GET") == 0 && s->status == 200) {
                int k = made_with(m, s->etag);
                if (k < 0 || strcmp(m->customer[k], s->customer) != 0)
                    fail_msg("GET showed %s at ETag \"%lld\", not a binding made so",
                             s->customer, (long long)s->etag);
            } else if (strcmp(s->method, "DELETE") == 0) {
                if (s->status != 204 && s->status != 404 && s->status != 412)
                    fail_msg("DELETE: HTTP %d %s", s->status, s->body);
                if (s->status != 204)
                    continue;
                int k = made_with(m, s->if_match);
                if (k < 0 || m->removed[k])
                    fail_msg("a 204 for If-Match \"%lld\", which names no binding left",
                             (long long)s->if_match);
                m->removed[k] = true;
            }
        }
}

static void test_stale_if_match_race(void **state)
{
    (void)state;
    struct race *r = calloc(1, sizeof *r);
    struct made *m = calloc(1, sizeof *m);
    assert_non_null(r);
    assert_non_null(m);
    RID(r->user, "user");
    r->port = g_env.srv.port;
    r->service = g_env.service;
    r->admin = g_env.admin;
    char path[256];
    user_path(path, sizeof path, r->user);
    for (int i = 0; i < 2; i++) { /* two bindings made and removed before the race */
        RID(m->customer[i], "cus");
        m->v[i] = r->before[i] = bind_to(r->user, m->customer[i], 201);
        struct rf_t_resp resp;
        req_if_match("DELETE", path, NULL, m->v[i], &resp);
        RF_ASSERT_STATUS(&resp, 204);
        rf_resp_free(&resp);
        m->removed[i] = true;
    }
    m->n = 2;
    assert_int_equal(rf_parallel_fn(RACE_THREADS, race_one, r), 0);
    collect_made(r, m);
    assert_true(m->n >= 3); /* the user was free: some re-bind made a binding */
    check_reads_and_removals(r, m);
    int left = 0;
    for (int i = 0; i < m->n; i++)
        left += !m->removed[i];
    struct rf_t_resp resp;
    req("GET", path, g_env.readonly, NULL, NULL, &resp);
    assert_true(resp.status == 200 || resp.status == 404);
    assert_int_equal(left, resp.status == 200); /* each binding made is gone or is the one left */
    if (resp.status == 200)
        assert_false(m->removed[made_with(m, etag_of(&resp))]);
    rf_resp_free(&resp);
    print_message("stale If-Match race: %d bindings made, %d left\n", m->n, left);
    free(m);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binding_rebound_to_another_customer),
        cmocka_unit_test(test_customer_rebound_to_another_user),
        cmocka_unit_test(test_entitlement_revoked_and_granted_again),
        cmocka_unit_test(test_entitlement_expired_and_granted_again),
        cmocka_unit_test(test_account_created_again),
        cmocka_unit_test(test_stale_if_match_race),
    };
    return cmocka_run_group_tests(tests, env_group_setup, env_group_teardown);
}
