/*
 * test_faults - a failed request changes nothing; acknowledged work is kept.
 *
 * Uses the server's fault-injection hooks (serve --test-hooks):
 *  - an operation forced to fail after doing its writes (fail-next) answers
 *    its error as problem+json and leaves nothing behind: no row, no version
 *    bump, and no stored Idempotency-Key response (the retry runs for real);
 *  - among 16 concurrent grants the one forced to fail is the only one
 *    missing; the 15 others are committed and answered 201. On SQLite they
 *    queue behind a blocker held in the writer by op-delay, so all 16 run in
 *    one group-commit batch, and /metrics must show exactly that batch (the
 *    blocker's, and one of at least 16 operations), else the test fails as
 *    not having shared a batch;
 *  - a commit that fails as a store error would (fail-next-commit) answers
 *    503 store_unavailable with Retry-After to the operations it carried,
 *    none of which is in the store, while every operation answered 2xx is.
 */
#include "http_env.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BATCH 16

static void hook_fail_commit(struct env *e)
{
    struct rf_t_resp r;
    env_req(e, "POST", "/v1/_test/fail-next-commit", e->admin, NULL, NULL, &r);
    if (r.status < 200 || r.status > 299)
        fail_msg("POST /v1/_test/fail-next-commit: HTTP %d %s", r.status,
                 r.body ? r.body : r.errmsg);
    rf_resp_free(&r);
}

static int get_status(struct env *e, const char *path)
{
    struct rf_t_resp r;
    env_req(e, "GET", path, e->readonly, NULL, NULL, &r);
    int s = r.status;
    rf_resp_free(&r);
    return s;
}

static void test_forced_error_writes_nothing(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, true, NULL);
    char user[64], path[512], ik[64], h[128];
    RID(user, "u");
    ent_path(path, sizeof path, user, "pro");
    RID(ik, "idem");
    snprintf(h, sizeof h, "Idempotency-Key: %s", ik);
    const char *hdrs[] = {h, NULL};
    struct rf_t_resp r;

    /* internal error: 500 problem+json, nothing written */
    hook_fail_next(&e, "entitlement_grant", "internal");
    env_req(&e, "PUT", path, e.service, "{\"source\": \"f\"}", hdrs, &r);
    RF_ASSERT_PROBLEM(&r, 500, "internal");
    rf_resp_free(&r);
    assert_int_equal(get_status(&e, path), 404);
    assert_int_equal(list_all_count(&e, user, "all"), 0);

    /* store unavailable: 503 with Retry-After, nothing written */
    hook_fail_next(&e, "entitlement_grant", "store_unavailable");
    env_req(&e, "PUT", path, e.service, "{\"source\": \"f\"}", hdrs, &r);
    RF_ASSERT_PROBLEM(&r, 503, "store_unavailable");
    if (!rf_resp_header(&r, "Retry-After"))
        fail_msg("503 without Retry-After");
    rf_resp_free(&r);
    assert_int_equal(get_status(&e, path), 404);

    /* The retry with the same Idempotency-Key runs for real: no stored
     * failure is replayed. */
    env_req(&e, "PUT", path, e.service, "{\"source\": \"f\"}", hdrs, &r);
    RF_ASSERT_STATUS(&r, 201);
    const char *rp = rf_resp_header(&r, "Idempotent-Replayed");
    assert_true(rp == NULL || strcasecmp(rp, "true") != 0);
    json_t *j = ent_check(&r, user, "pro");
    assert_int_equal(rf_t_json_int(j, "version"), 1);
    json_decref(j);
    rf_resp_free(&r);

    /* A revoke forced to fail leaves the entitlement active at version 1. */
    hook_fail_next(&e, "entitlement_revoke", "internal");
    env_req(&e, "DELETE", path, e.service, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 500, "internal");
    rf_resp_free(&r);
    env_req(&e, "GET", path, e.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    j = ent_check(&r, user, "pro");
    assert_string_equal(rf_t_json_str(j, "status"), "active");
    assert_int_equal(rf_t_json_int(j, "version"), 1);
    json_decref(j);
    rf_resp_free(&r);
    env_stop(&e);
}

static void fill_batch(struct env *e, struct rf_par_req *reqs, const char *user)
{
    memset(reqs, 0, sizeof(struct rf_par_req) * BATCH);
    for (int i = 0; i < BATCH; i++) {
        char key[32];
        snprintf(key, sizeof key, "ent-%02d", i);
        reqs[i].port = e->srv.port;
        reqs[i].method = "PUT";
        ent_path(reqs[i].path, sizeof reqs[i].path, user, key);
        reqs[i].api_key = e->service;
    }
}

/* The value of the /metrics sample named exactly `name`. */
static int64_t metric(struct env *e, const char *name)
{
    struct rf_t_resp r;
    env_req(e, "GET", "/metrics", NULL, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    size_t n = strlen(name);
    for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ') {
            int64_t v = strtoll(p + n + 1, NULL, 10);
            rf_resp_free(&r);
            return v;
        }
    }
    fail_msg("/metrics has no %s", name);
    rf_resp_free(&r);
    return -1;
}

#define BATCHES "racefree_executor_batches_total"
#define SMALL_BATCHES "racefree_executor_batch_ops_bucket{le=\"15\"}"
#define BLOCKER_DELAY_MS 1000 /* the writer holds each batch this long before running it */

struct blocker {
    struct env *e;
    char path[300];
    int status;
};

/* A write that is no grant (revoking what does not exist: 404), so fail-next
 * does not fire on it: it occupies the writer while the grants queue. */
static void *run_blocker(void *arg)
{
    struct blocker *b = arg;
    struct rf_t_resp r;
    env_req(b->e, "DELETE", b->path, b->e->service, NULL, NULL, &r);
    b->status = r.status;
    rf_resp_free(&r);
    return NULL;
}

static void test_one_failure_in_a_batch(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, true, NULL);
    bool sqlite = strncmp(e.db, "sqlite", 6) == 0; /* PostgreSQL runs each op alone */
    char user[64];
    RID(user, "u");
    static struct rf_par_req reqs[BATCH];
    fill_batch(&e, reqs, user);
    int64_t batches = sqlite ? metric(&e, BATCHES) : 0;
    int64_t small = sqlite ? metric(&e, SMALL_BATCHES) : 0;
    hook_op_delay(&e, BLOCKER_DELAY_MS);
    hook_fail_next(&e, "entitlement_grant", "internal");
    struct blocker b = {.e = &e};
    ent_path(b.path, sizeof b.path, user, "blocker");
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_blocker, &b), 0);
    rf_t_sleep_ms(BLOCKER_DELAY_MS / 4); /* the blocker's batch is now in its delay */
    assert_int_equal(rf_parallel(reqs, BATCH), 0);
    pthread_join(t, NULL);
    hook_op_delay(&e, 0);
    assert_int_equal(b.status, 404);
    if (sqlite) { /* two batches: the blocker's alone, then all 16 grants together */
        assert_int_equal(metric(&e, BATCHES) - batches, 2);
        if (metric(&e, SMALL_BATCHES) - small != 1)
            fail_msg("the grants did not share one batch (the test did not test a batch)");
    }
    int failed = 0;
    for (int i = 0; i < BATCH; i++) {
        struct rf_t_resp *r = &reqs[i].resp;
        if (r->status == 201) {
            assert_int_equal(get_status(&e, reqs[i].path), 200);
        } else if (r->status == 500) {
            RF_ASSERT_PROBLEM(r, 500, "internal");
            failed++;
            assert_int_equal(get_status(&e, reqs[i].path), 404);
        } else {
            fail_msg("grant %d: HTTP %d (%s) %s", i, r->status, r->errmsg, r->body ? r->body : "");
        }
    }
    assert_int_equal(failed, 1);
    assert_int_equal(list_all_count(&e, user, "all"), BATCH - 1);
    rf_par_free(reqs, BATCH);
    env_stop(&e);
}

/* A full executor queue answers 503 overloaded with Retry-After, and a
 * refused grant leaves nothing behind; the queued ones commit. */
static void test_full_queue(void **state)
{
    (void)state;
    struct env e;
    static const char *const args[] = {"--queue-max", "2", "--pool", "2", NULL};
    env_start(&e, true, args);
    char user[64];
    RID(user, "q");
    static struct rf_par_req reqs[BATCH];
    fill_batch(&e, reqs, user);
    hook_op_delay(&e, 300);
    assert_int_equal(rf_parallel(reqs, BATCH), 0);
    hook_op_delay(&e, 0);
    int ok = 0, overloaded = 0;
    for (int i = 0; i < BATCH; i++) {
        struct rf_t_resp *r = &reqs[i].resp;
        if (r->status == 201) {
            ok++;
            assert_int_equal(get_status(&e, reqs[i].path), 200);
        } else {
            RF_ASSERT_PROBLEM(r, 503, "overloaded");
            assert_non_null(rf_resp_header(r, "Retry-After"));
            overloaded++;
            assert_int_equal(get_status(&e, reqs[i].path), 404);
        }
    }
    assert_true(ok >= 1);
    assert_true(overloaded >= 1);
    assert_int_equal(list_all_count(&e, user, "all"), ok);
    rf_par_free(reqs, BATCH);
    env_stop(&e);
}

static void test_failed_commit(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, true, NULL);
    char user[64], path[512];
    RID(user, "u");
    ent_path(path, sizeof path, user, "solo");
    struct rf_t_resp r;

    /* One operation, its commit fails: 503, nothing there; then it works. */
    hook_fail_commit(&e);
    env_req(&e, "PUT", path, e.service, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 503, "store_unavailable");
    if (!rf_resp_header(&r, "Retry-After"))
        fail_msg("503 without Retry-After");
    rf_resp_free(&r);
    assert_int_equal(get_status(&e, path), 404);
    env_req(&e, "PUT", path, e.service, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);

    /* A batch whose commit fails: the ones answered 503 are absent, every
     * one answered 201 is present. */
    static struct rf_par_req reqs[BATCH];
    fill_batch(&e, reqs, user);
    hook_op_delay(&e, 100);
    hook_fail_commit(&e);
    assert_int_equal(rf_parallel(reqs, BATCH), 0);
    hook_op_delay(&e, 0);
    int ok = 0, unavailable = 0;
    for (int i = 0; i < BATCH; i++) {
        struct rf_t_resp *q = &reqs[i].resp;
        if (q->status == 201) {
            ok++;
            assert_int_equal(get_status(&e, reqs[i].path), 200);
        } else if (q->status == 503) {
            RF_ASSERT_PROBLEM(q, 503, "store_unavailable");
            unavailable++;
            assert_int_equal(get_status(&e, reqs[i].path), 404);
        } else {
            fail_msg("grant %d: HTTP %d (%s) %s", i, q->status, q->errmsg,
                     q->body ? q->body : "");
        }
    }
    print_message("failed commit: %d acknowledged, %d answered 503\n", ok, unavailable);
    assert_true(unavailable >= 1);
    assert_int_equal(list_all_count(&e, user, "all"), 1 + ok);
    /* And the server is healthy afterwards. */
    env_req(&e, "GET", "/readyz", NULL, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    rf_par_free(reqs, BATCH);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forced_error_writes_nothing),
        cmocka_unit_test(test_one_failure_in_a_batch),
        cmocka_unit_test(test_failed_commit),
        cmocka_unit_test(test_full_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
