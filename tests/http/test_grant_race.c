/*
 * test_grant_race - seed 000, the race itself, over HTTP.
 *
 * Proves: 64 concurrent grants of the same (user, key), released together by
 * a barrier, never produce a 5xx or a second row. Every response is 200 or
 * 201, exactly one is 201, every body carries the same id, granted_at and
 * version 1, and the store holds exactly one entitlement. Repeated over a few
 * rounds with fresh keys, alternating admin and service API keys.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 64
#define ROUNDS 4

static void test_64_concurrent_grants(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    static struct rf_par_req reqs[THREADS];
    for (int round = 0; round < ROUNDS; round++) {
        char user[64], key[64], path[512];
        RID(user, "u");
        RID(key, "pro");
        ent_path(path, sizeof path, user, key);
        memset(reqs, 0, sizeof reqs);
        for (int i = 0; i < THREADS; i++) {
            reqs[i].port = e.srv.port;
            reqs[i].method = "PUT";
            snprintf(reqs[i].path, sizeof reqs[i].path, "%s", path);
            reqs[i].api_key = (i % 2) ? e.service : e.admin;
            /* Half send the optional body, half none: both are grants. */
            reqs[i].body = (round % 2 == 0 || i % 2) ? "{\"source\": \"race\"}" : NULL;
        }
        assert_int_equal(rf_parallel(reqs, THREADS), 0);
        check_grant_race(&e, reqs, THREADS, user, key);
        rf_par_free(reqs, THREADS);
    }
    env_stop(&e);
}

/* Many users, one key each, granted concurrently: distinct rows, all 201. */
static void test_concurrent_distinct_grants(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    static struct rf_par_req reqs[THREADS];
    static char users[THREADS][64];
    char key[64];
    RID(key, "plan");
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < THREADS; i++) {
        RID(users[i], "u");
        reqs[i].port = e.srv.port;
        reqs[i].method = "PUT";
        ent_path(reqs[i].path, sizeof reqs[i].path, users[i], key);
        reqs[i].api_key = e.service;
    }
    assert_int_equal(rf_parallel(reqs, THREADS), 0);
    for (int i = 0; i < THREADS; i++) {
        RF_ASSERT_STATUS(&reqs[i].resp, 201);
        json_t *j = ent_check(&reqs[i].resp, users[i], key);
        assert_int_equal(rf_t_json_int(j, "version"), 1);
        json_decref(j);
        assert_int_equal(list_all_count(&e, users[i], "all"), 1);
    }
    rf_par_free(reqs, THREADS);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_64_concurrent_grants),
        cmocka_unit_test(test_concurrent_distinct_grants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
