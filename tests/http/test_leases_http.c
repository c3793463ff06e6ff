/*
 * test_leases_http - leases with fencing tokens, black-box.
 *
 * Proves: acquire / held (409 lease_held naming holder and expires_at) /
 * renew / release / re-acquire, with tokens strictly increasing per name;
 * 32 acquires of one free lease released together make exactly one holder;
 * ttl_ms is bounded by `serve --lease-max-ttl-ms` (400 invalid_field, param
 * ttl_ms); roles (401 without a key, 403 for worker and readonly writes);
 * fencing: a holder whose lease expired and was taken over gets 409
 * stale_lease on renew and release, and the new holder is untouched.
 */
#include "http_env.h"

#include <stdio.h>
#include <string.h>

#define RACERS 32

static const char *const lease_args[] = {"--lease-max-ttl-ms", "5000", NULL};

/* POST /v1/leases/<name>/<verb> with body (the caller frees *r). */
static void lease_post(struct env *e, const char *key, const char *name, const char *verb,
                       const char *body, struct rf_t_resp *r)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/leases/%s/%s", name, verb);
    env_req(e, "POST", path, key, body, NULL, r);
}

/* Acquires name for holder; returns its token (fails unless 201). */
static int64_t acquire_ok(struct env *e, const char *name, const char *holder, int ttl_ms)
{
    char body[160];
    snprintf(body, sizeof body, "{\"holder\": \"%s\", \"ttl_ms\": %d}", holder, ttl_ms);
    struct rf_t_resp r;
    lease_post(e, e->service, name, "acquire", body, &r);
    RF_ASSERT_STATUS(&r, 201);
    json_t *j = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(j, "holder"), holder);
    assert_string_equal(rf_t_json_str(j, "status"), "held");
    assert_true(is_rfc3339_ms(rf_t_json_str(j, "expires_at")));
    int64_t token = rf_t_json_int(j, "token");
    json_decref(j);
    rf_resp_free(&r);
    return token;
}

/* A token body: {"token": t} */
static void token_body(char *out, size_t cap, int64_t token)
{
    snprintf(out, cap, "{\"token\": %lld}", (long long)token);
}

static void test_lease_lifecycle(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, lease_args);
    char name[64], body[160];
    RID(name, "lease");
    int64_t t1 = acquire_ok(&e, name, "node-a", 3000);
    assert_true(t1 >= 1);

    /* Held: anyone else, and the holder's name too, gets 409 with the facts. */
    struct rf_t_resp r;
    const char *holders[] = {"node-b", "node-a"};
    for (int i = 0; i < 2; i++) {
        snprintf(body, sizeof body, "{\"holder\": \"%s\", \"ttl_ms\": 1000}", holders[i]);
        lease_post(&e, e.admin, name, "acquire", body, &r);
        RF_ASSERT_PROBLEM(&r, 409, "lease_held");
        json_t *j = rf_resp_json(&r);
        assert_string_equal(rf_t_json_str(j, "holder"), "node-a");
        assert_true(is_rfc3339_ms(rf_t_json_str(j, "expires_at")));
        json_decref(j);
        rf_resp_free(&r);
    }

    /* Renew with the token; a wrong token is stale. */
    token_body(body, sizeof body, t1);
    lease_post(&e, e.service, name, "renew", body, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    token_body(body, sizeof body, t1 + 1);
    lease_post(&e, e.service, name, "renew", body, &r);
    RF_ASSERT_PROBLEM(&r, 409, "stale_lease");
    rf_resp_free(&r);

    /* Release; again is stale; the next acquire issues a higher token. */
    token_body(body, sizeof body, t1);
    lease_post(&e, e.service, name, "release", body, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(j, "status"), "released");
    json_decref(j);
    rf_resp_free(&r);
    lease_post(&e, e.service, name, "release", body, &r);
    RF_ASSERT_PROBLEM(&r, 409, "stale_lease");
    rf_resp_free(&r);
    int64_t prev = t1;
    for (int i = 0; i < 3; i++) {
        int64_t t = acquire_ok(&e, name, "node-b", 2000);
        assert_true(t > prev);
        token_body(body, sizeof body, t);
        lease_post(&e, e.service, name, "release", body, &r);
        RF_ASSERT_STATUS(&r, 200);
        rf_resp_free(&r);
        prev = t;
    }

    /* GET: readonly may read; an unknown name is 404. */
    char path[256];
    snprintf(path, sizeof path, "/v1/leases/%s", name);
    env_req(&e, "GET", path, e.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    j = rf_resp_json(&r);
    assert_int_equal(rf_t_json_int(j, "token"), prev);
    json_decref(j);
    rf_resp_free(&r);
    env_req(&e, "GET", "/v1/leases/never-taken", e.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "lease_not_found");
    rf_resp_free(&r);
    env_stop(&e);
}

static void test_lease_bounds_and_roles(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, lease_args);
    char name[64];
    RID(name, "lease");
    const char *bad[] = {"{\"holder\": \"a\", \"ttl_ms\": 5001}", /* past --lease-max-ttl-ms */
                         "{\"holder\": \"a\", \"ttl_ms\": 0}",
                         "{\"holder\": \"a\"}"};
    struct rf_t_resp r;
    for (int i = 0; i < 3; i++) {
        lease_post(&e, e.admin, name, "acquire", bad[i], &r);
        RF_ASSERT_STATUS(&r, 400);
        json_t *j = rf_resp_json(&r);
        assert_string_equal(rf_t_json_str(j, "param"), "ttl_ms");
        json_decref(j);
        rf_resp_free(&r);
    }
    acquire_ok(&e, name, "a", 5000); /* the maximum itself is allowed */
    lease_post(&e, e.service, name, "renew", "{\"token\": 1, \"ttl_ms\": 9000}", &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_field");
    rf_resp_free(&r);

    const char *body = "{\"holder\": \"a\", \"ttl_ms\": 100}";
    lease_post(&e, NULL, name, "acquire", body, &r);
    RF_ASSERT_PROBLEM(&r, 401, "unauthenticated");
    rf_resp_free(&r);
    const char *denied[] = {e.worker, e.readonly};
    for (int i = 0; i < 2; i++) {
        lease_post(&e, denied[i], name, "acquire", body, &r);
        RF_ASSERT_PROBLEM(&r, 403, "forbidden");
        rf_resp_free(&r);
        lease_post(&e, denied[i], name, "release", "{\"token\": 1}", &r);
        RF_ASSERT_PROBLEM(&r, 403, "forbidden");
        rf_resp_free(&r);
    }
    env_stop(&e);
}

static void test_lease_race_one_winner(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, lease_args);
    static struct rf_par_req reqs[RACERS];
    static char bodies[RACERS][96];
    char name[64];
    RID(name, "race");
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < RACERS; i++) {
        snprintf(bodies[i], sizeof bodies[i], "{\"holder\": \"racer-%d\", \"ttl_ms\": 5000}", i);
        reqs[i].port = e.srv.port;
        reqs[i].method = "POST";
        snprintf(reqs[i].path, sizeof reqs[i].path, "/v1/leases/%s/acquire", name);
        reqs[i].api_key = i % 2 ? e.admin : e.service;
        reqs[i].body = bodies[i];
    }
    assert_int_equal(rf_parallel(reqs, RACERS), 0);
    int won = 0, held = 0;
    for (int i = 0; i < RACERS; i++) {
        if (reqs[i].resp.status == 201) {
            won++;
            json_t *j = rf_resp_json(&reqs[i].resp);
            assert_int_equal(rf_t_json_int(j, "token"), 1);
            json_decref(j);
        } else {
            RF_ASSERT_PROBLEM(&reqs[i].resp, 409, "lease_held");
            held++;
        }
    }
    assert_int_equal(won, 1);
    assert_int_equal(held, RACERS - 1);
    rf_par_free(reqs, RACERS);
    env_stop(&e);
}

/* Waits (bounded) until GET says the lease expired. */
static void wait_expired(struct env *e, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/leases/%s", name);
    int64_t deadline = rf_t_now_ms() + 20000;
    for (;;) {
        struct rf_t_resp r;
        env_req(e, "GET", path, e->readonly, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r);
        bool expired = strcmp(rf_t_json_str(j, "status"), "expired") == 0;
        json_decref(j);
        rf_resp_free(&r);
        if (expired) return;
        if (rf_t_now_ms() > deadline) fail_msg("lease %s never expired", name);
        rf_t_sleep_ms(50);
    }
}

static void test_lease_takeover_fences_old_holder(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, lease_args);
    char name[64], body[96];
    RID(name, "fence");
    int64_t ta = acquire_ok(&e, name, "node-a", 200);
    wait_expired(&e, name);
    int64_t tb = acquire_ok(&e, name, "node-b", 5000);
    assert_true(tb > ta);
    struct rf_t_resp r;
    token_body(body, sizeof body, ta);
    lease_post(&e, e.service, name, "renew", body, &r);
    RF_ASSERT_PROBLEM(&r, 409, "stale_lease");
    rf_resp_free(&r);
    lease_post(&e, e.service, name, "release", body, &r);
    RF_ASSERT_PROBLEM(&r, 409, "stale_lease");
    rf_resp_free(&r);
    /* B still holds it: A's refused calls changed nothing. */
    token_body(body, sizeof body, tb);
    lease_post(&e, e.service, name, "renew", body, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(j, "holder"), "node-b");
    assert_string_equal(rf_t_json_str(j, "status"), "held");
    json_decref(j);
    rf_resp_free(&r);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_lifecycle),
        cmocka_unit_test(test_lease_bounds_and_roles),
        cmocka_unit_test(test_lease_race_one_winner),
        cmocka_unit_test(test_lease_takeover_fences_old_holder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
