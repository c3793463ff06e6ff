/*
 * test_grant_revoke - interleaved concurrent grants and revokes of one
 * (user, key).
 *
 * Proves: with 32 threads each doing a random mix of PUT (grant) and DELETE
 * (revoke), released together, there is no 5xx, and the version history is
 * exactly the sequence of committed state changes with no gaps or repeats:
 *  - versions alternate: odd = active (1 granted, 3 re-granted, ...),
 *    even = revoked; the final state is active iff the final version V is odd;
 *  - exactly one 201 (version 1); every other grant is 200;
 *  - the 204s carry ETags 2, 4, ..., each exactly once: number of 204s = V/2;
 *  - every odd version <= V was returned by some grant response, and grants
 *    only ever return active (odd) versions;
 *  - what one thread sees never goes backwards;
 *  - a DELETE that finds nothing active answers 404 entitlement_not_found.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 32
#define OPS 6
#define ROUNDS 2

struct op {
    bool grant;
    int status;
    int64_t version;  /* grant: body version; revoke 204: ETag; else -1 */
    char code[64];
    char err[160];
};

struct ctx {
    struct env *e;
    char user[64], key[64], path[512];
    struct op ops[THREADS][OPS];
};

static void worker(int idx, void *arg)
{
    struct ctx *c = arg;
    for (int k = 0; k < OPS; k++) {
        struct op *op = &c->ops[idx][k];
        op->grant = rf_rand_below(2) == 0;
        op->version = -1;
        struct rf_t_resp r;
        const char *api_key = (idx % 2) ? c->e->admin : c->e->service;
        rf_req(c->e->srv.port, op->grant ? "PUT" : "DELETE", c->path, api_key,
               op->grant && (k % 2) ? "{\"source\": \"interleaved\"}" : NULL, NULL, &r);
        op->status = r.status;
        snprintf(op->err, sizeof op->err, "%s", r.errmsg);
        if (op->grant && (r.status == 200 || r.status == 201)) {
            json_t *j = rf_resp_json(&r);
            op->version = rf_t_json_int(j, "version");
            if (strcmp(rf_t_json_str(j, "status"), "active") != 0)
                op->version = -2;  /* a grant that answered a non-active record */
            if (etag_version(&r) != op->version)
                op->version = -3;  /* ETag disagrees with the body */
            json_decref(j);
        } else if (!op->grant && r.status == 204) {
            op->version = etag_version(&r);
        } else if (r.status >= 400) {
            rf_problem_code(&r, op->code, sizeof op->code);
        }
        rf_resp_free(&r);
    }
}

static void run_round(struct env *e)
{
    static struct ctx c;
    memset(&c, 0, sizeof c);
    c.e = e;
    RID(c.user, "u");
    RID(c.key, "ent");
    ent_path(c.path, sizeof c.path, c.user, c.key);
    assert_int_equal(rf_parallel_fn(THREADS, worker, &c), 0);

    /* The final state. */
    struct rf_t_resp g;
    env_req(e, "GET", c.path, e->readonly, NULL, NULL, &g);
    int64_t V = 0;
    bool active = false;
    if (g.status == 200) {
        json_t *j = ent_check(&g, c.user, c.key);
        V = rf_t_json_int(j, "version");
        const char *st = rf_t_json_str(j, "status");
        active = strcmp(st, "active") == 0;
        if (!active && strcmp(st, "revoked") != 0)
            fail_msg("final status %s", st);
        json_decref(j);
    } else {
        RF_ASSERT_PROBLEM(&g, 404, "entitlement_not_found");
    }
    rf_resp_free(&g);

    int n201 = 0, n204 = 0, n_grants = 0, n_revokes = 0, n404 = 0;
    int64_t max_seen = 0;
    bool *odd_seen = calloc((size_t)V + 2, 1);
    int *even_seen = calloc((size_t)V + 2, sizeof(int));
    assert_non_null(odd_seen);
    assert_non_null(even_seen);
    for (int t = 0; t < THREADS; t++) {
        int64_t last = 0;
        for (int k = 0; k < OPS; k++) {
            struct op *op = &c.ops[t][k];
            if (op->status == 0)
                fail_msg("thread %d op %d: no response: %s", t, k, op->err);
            if (op->status >= 500)
                fail_msg("thread %d op %d (%s): HTTP %d %s", t, k, op->grant ? "PUT" : "DELETE",
                         op->status, op->code);
            if (op->grant) {
                n_grants++;
                if (op->status != 200 && op->status != 201)
                    fail_msg("thread %d op %d: grant answered %d %s", t, k, op->status, op->code);
                if (op->version == -2)
                    fail_msg("thread %d op %d: grant answered a non-active entitlement", t, k);
                if (op->version == -3)
                    fail_msg("thread %d op %d: grant ETag differs from its version", t, k);
                if (op->version < 1 || op->version % 2 != 1)
                    fail_msg("thread %d op %d: grant returned version %lld (must be odd)", t, k,
                             (long long)op->version);
                if (op->version > V)
                    fail_msg("grant returned version %lld above the final %lld",
                             (long long)op->version, (long long)V);
                odd_seen[op->version] = true;
                if (op->status == 201) {
                    n201++;
                    if (op->version != 1)
                        fail_msg("201 with version %lld", (long long)op->version);
                }
            } else {
                n_revokes++;
                if (op->status == 204) {
                    n204++;
                    if (op->version < 2 || op->version % 2 != 0 || op->version > V)
                        fail_msg("thread %d op %d: 204 with ETag version %lld (final %lld)", t, k,
                                 (long long)op->version, (long long)V);
                    even_seen[op->version]++;
                } else if (op->status == 404) {
                    n404++;
                    if (strcmp(op->code, "entitlement_not_found") != 0)
                        fail_msg("DELETE 404 with code \"%s\"", op->code);
                } else {
                    fail_msg("thread %d op %d: revoke answered %d %s", t, k, op->status, op->code);
                }
            }
            if (op->version > 0) {
                if (op->version < last)
                    fail_msg("thread %d saw version %lld after %lld", t, (long long)op->version,
                             (long long)last);
                last = op->version;
            }
            if (op->version > max_seen)
                max_seen = op->version;
        }
    }
    print_message("round %s: %d grants (%d created), %d revokes (%d done, %d not found), "
                  "final version %lld %s\n",
                  c.key, n_grants, n201, n_revokes, n204, n404, (long long)V,
                  active ? "active" : "revoked");

    if (n_grants > 0) {
        assert_int_equal(n201, 1);
        assert_true(V >= 1);
    }
    assert_int_equal(max_seen, V);
    /* active iff V odd */
    if (V > 0)
        assert_int_equal(active, V % 2 == 1);
    /* one revoke per even version, no gaps */
    assert_int_equal(n204, V / 2);
    for (int64_t v = 2; v <= V; v += 2)
        if (even_seen[v] != 1)
            fail_msg("version %lld was returned by %d revokes, expected 1", (long long)v,
                     even_seen[v]);
    for (int64_t v = 1; v <= V; v += 2)
        if (!odd_seen[v])
            fail_msg("no grant response carried version %lld", (long long)v);
    free(odd_seen);
    free(even_seen);

    assert_int_equal(list_all_count(e, c.user, "all"), V > 0 ? 1 : 0);
    assert_int_equal(list_all_count(e, c.user, "active"), active ? 1 : 0);
    assert_int_equal(list_all_count(e, c.user, "revoked"), V > 0 && !active ? 1 : 0);
}

static void test_interleaved_grants_and_revokes(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    for (int round = 0; round < ROUNDS; round++)
        run_round(&e);
    env_stop(&e);
}

/* The sequential contract the concurrent test relies on. */
static void test_sequential_versions(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    char user[64], key[64], path[512];
    RID(user, "u");
    RID(key, "ent");
    ent_path(path, sizeof path, user, key);
    struct rf_t_resp r;

    env_req(&e, "DELETE", path, e.service, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "entitlement_not_found");
    rf_resp_free(&r);

    env_req(&e, "PUT", path, e.service, "{\"source\": \"seq\"}", NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    json_t *first = ent_check(&r, user, key);
    assert_int_equal(rf_t_json_int(first, "version"), 1);
    assert_string_equal(rf_t_json_str(first, "source"), "seq");
    rf_resp_free(&r);

    /* A later grant of an active one: 200, the identical record. */
    env_req(&e, "PUT", path, e.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *again = ent_check(&r, user, key);
    assert_true(json_equal(first, again));
    json_decref(again);
    rf_resp_free(&r);

    env_req(&e, "DELETE", path, e.service, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 204);
    assert_int_equal(r.body_len, 0);
    assert_int_equal(etag_version(&r), 2);
    rf_resp_free(&r);

    env_req(&e, "GET", path, e.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *rev = ent_check(&r, user, key);
    assert_string_equal(rf_t_json_str(rev, "status"), "revoked");
    assert_int_equal(rf_t_json_int(rev, "version"), 2);
    assert_string_equal(rf_t_json_str(rev, "id"), rf_t_json_str(first, "id"));
    json_decref(rev);
    rf_resp_free(&r);

    env_req(&e, "DELETE", path, e.service, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "entitlement_not_found");
    rf_resp_free(&r);

    /* Re-grant: 200, same id, version 3, active again. */
    env_req(&e, "PUT", path, e.service, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *re = ent_check(&r, user, key);
    assert_string_equal(rf_t_json_str(re, "status"), "active");
    assert_int_equal(rf_t_json_int(re, "version"), 3);
    assert_string_equal(rf_t_json_str(re, "id"), rf_t_json_str(first, "id"));
    json_decref(re);
    rf_resp_free(&r);
    json_decref(first);

    assert_int_equal(list_all_count(&e, user, "all"), 1);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential_versions),
        cmocka_unit_test(test_interleaved_grants_and_revokes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
