/*
 * test_rate_limits - the distributed rate limiter and the unauthenticated
 * limit, against real `racefree serve` processes.
 *
 * Proves: a key limited to 100 requests per 10 s, hammered through 3 server
 * processes on one store at once, gets between 100 and 100 + the refill
 * during the hammer (one request per 100 ms of its measured duration, +1)
 * answers 200, every other answer 429 rate_limited with Retry-After 1..10 s
 * and the RateLimit headers (per process the store's one UPSERT is the only
 * arbiter: three in-memory limiters would let 300 through). A key's own
 * limit beats its role's; reads and writes have a bucket each; the headers
 * count down, and a server without limits sends none. A flood without a key
 * from one IP gets 429 while a key this server verified still gets through.
 * Bad --rate-limit specs exit 2 with a message.
 */
#include "http_env.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HAMMER_THREADS 24
#define HAMMER_PER_THREAD 12
#define HAMMER_TOTAL (HAMMER_THREADS * HAMMER_PER_THREAD)
#define QUOTA 100
#define EMISSION_MS 100 /* 10 s / 100 */

/* A key made with the CLI with its own --rate-limit; the key text into out. */
static void key_with_limit(const char *db, const char *role, const char *limit, char *out,
                           size_t cap)
{
    char so[2048], se[1024];
    const char *args[] = {"keys", "create", "--db", db, "--role", role, "--rate-limit", limit, NULL};
    int rc = rf_cli_run(args, so, sizeof so, se, sizeof se, 0);
    if (rc != 0)
        fail_msg("keys create --rate-limit %s: exit %d: %s", limit, rc, se);
    assert_non_null(strstr(so, "rate limit: "));
    char *last = so + strlen(so);
    while (last > so && last[-1] == '\n')
        *--last = '\0';
    char *nl = strrchr(so, '\n');
    snprintf(out, cap, "%s", nl ? nl + 1 : so);
}

/* The value of `name`=N in a RateLimit or RateLimit-Policy header ("r", "q"...). */
static long long param_of(const char *header, const char *name)
{
    char pat[8];
    snprintf(pat, sizeof pat, ";%s=", name);
    const char *at = header ? strstr(header, pat) : NULL;
    return at ? atoll(at + strlen(pat)) : -1;
}

struct hammer {
    int ports[3];
    const char *key;
    const char *path;
    atomic_int ok, limited, other;
    atomic_int bad_retry, bad_headers;
};

static void hammer_one(int idx, void *ctx)
{
    struct hammer *h = ctx;
    for (int i = 0; i < HAMMER_PER_THREAD; i++) {
        struct rf_t_resp r;
        rf_req(h->ports[(idx + i) % 3], "GET", h->path, h->key, NULL, NULL, &r);
        const char *policy = rf_resp_header(&r, "RateLimit-Policy");
        const char *state = rf_resp_header(&r, "RateLimit");
        if (param_of(policy, "q") != QUOTA || param_of(policy, "w") != 10 ||
            param_of(state, "r") < 0 || !strstr(policy, "\"read\""))
            atomic_fetch_add(&h->bad_headers, 1);
        if (r.status == 200) {
            atomic_fetch_add(&h->ok, 1);
        } else if (r.status == 429 && strstr(r.body, "\"rate_limited\"")) {
            atomic_fetch_add(&h->limited, 1);
            const char *ra = rf_resp_header(&r, "Retry-After");
            long s = ra ? atol(ra) : 0;
            if (s < 1 || s > 10 || param_of(state, "r") != 0)
                atomic_fetch_add(&h->bad_retry, 1);
        } else {
            atomic_fetch_add(&h->other, 1);
        }
        rf_resp_free(&r);
    }
}

static void test_three_nodes_share_one_limit(void **state)
{
    (void)state;
    struct env e;
    env_start_fresh(&e, false, NULL);
    char key[RF_T_KEY_BYTES];
    key_with_limit(e.db, "service", "100/10s", key, sizeof key);
    struct rf_server b, c;
    if (rf_server_start(e.db, NULL, &b) != 0 || rf_server_start(e.db, NULL, &c) != 0)
        fail_msg("more servers did not start on %s", e.db);
    struct hammer h = {.ports = {e.srv.port, b.port, c.port}, .key = key,
                       .path = "/v1/users/rl-user/entitlements"};
    int64_t t0 = rf_t_now_ms();
    assert_int_equal(rf_parallel_fn(HAMMER_THREADS, hammer_one, &h), 0);
    int64_t elapsed = rf_t_now_ms() - t0;
    /* GCRA: the whole quota at once, then one more per emission interval */
    int64_t most = QUOTA + elapsed / EMISSION_MS + 1;
    print_message("hammer: %d ok, %d limited in %lld ms (bound %lld)\n", atomic_load(&h.ok),
                  atomic_load(&h.limited), (long long)elapsed, (long long)most);
    assert_int_equal(atomic_load(&h.other), 0);
    assert_int_equal(atomic_load(&h.ok) + atomic_load(&h.limited), HAMMER_TOTAL);
    assert_true(atomic_load(&h.ok) >= QUOTA);
    assert_true(atomic_load(&h.ok) <= most);
    assert_int_equal(atomic_load(&h.bad_retry), 0);
    assert_int_equal(atomic_load(&h.bad_headers), 0);
    assert_int_equal(rf_server_stop(&b, 0), 0);
    assert_int_equal(rf_server_stop(&c, 0), 0);
    env_stop(&e);
}

/* GET path with key: status, RateLimit's r (or -1 without the header). */
static long long limited_get(struct env *e, const char *path, const char *key, int status)
{
    struct rf_t_resp r;
    env_req(e, "GET", path, key, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, status);
    long long rem = param_of(rf_resp_header(&r, "RateLimit"), "r");
    if (status == 429) {
        assert_non_null(strstr(r.body, "\"rate_limited\""));
        long ra = atol(rf_resp_header(&r, "Retry-After") ? rf_resp_header(&r, "Retry-After") : "0");
        assert_true(ra >= 1 && ra <= 3600);
    }
    rf_resp_free(&r);
    return rem;
}

static void test_role_and_key_limits(void **state)
{
    (void)state;
    struct env e;
    const char *args[] = {"--rate-limit", "service=2/1h", NULL};
    env_start_fresh(&e, false, args);
    char own[RF_T_KEY_BYTES];
    key_with_limit(e.db, "service", "3/1h", own, sizeof own);
    const char *path = "/v1/users/rl-user/entitlements";
    /* the role's limit: 2, counting down, then 429 */
    assert_int_equal(limited_get(&e, path, e.service, 200), 1);
    assert_int_equal(limited_get(&e, path, e.service, 200), 0);
    assert_int_equal(limited_get(&e, path, e.service, 429), 0);
    /* the key's own limit overrides the role's: 3 */
    assert_int_equal(limited_get(&e, path, own, 200), 2);
    assert_int_equal(limited_get(&e, path, own, 200), 1);
    assert_int_equal(limited_get(&e, path, own, 200), 0);
    assert_int_equal(limited_get(&e, path, own, 429), 0);
    /* writes have a bucket of their own */
    struct rf_t_resp r;
    env_req(&e, "PUT", "/v1/users/rl-user/entitlements/pro", e.service, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    const char *policy = rf_resp_header(&r, "RateLimit-Policy");
    assert_non_null(policy);
    assert_non_null(strstr(policy, "\"write\";q=2;w=3600"));
    assert_int_equal(param_of(rf_resp_header(&r, "RateLimit"), "r"), 1);
    rf_resp_free(&r);
    /* a role without a limit: no headers */
    assert_int_equal(limited_get(&e, path, e.readonly, 200), -1);
    env_stop(&e);
}

static void test_no_limit_no_headers(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    struct rf_t_resp r;
    env_req(&e, "GET", "/v1/users/rl-user/entitlements", e.service, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    assert_null(rf_resp_header(&r, "RateLimit"));
    assert_null(rf_resp_header(&r, "RateLimit-Policy"));
    rf_resp_free(&r);
    env_stop(&e);
}

static void test_unauthenticated_flood(void **state)
{
    (void)state;
    struct env e;
    const char *args[] = {"--unauth-rate-limit", "20/1h", NULL};
    env_start(&e, false, args);
    struct rf_t_resp r;
    env_req(&e, "GET", "/v1/keys", e.admin, NULL, NULL, &r); /* this server verifies the key */
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    int n401 = 0, n429 = 0;
    for (int i = 0; i < 40; i++) {
        env_req(&e, "GET", "/v1/keys", i % 2 ? NULL : "rfk_bad", NULL, NULL, &r);
        if (r.status == 401) n401++;
        if (r.status == 429) {
            n429++;
            const char *ra = rf_resp_header(&r, "Retry-After");
            assert_non_null(ra);
            assert_true(atol(ra) >= 1);
            assert_non_null(strstr(r.body, "\"rate_limited\""));
        }
        rf_resp_free(&r);
    }
    assert_int_equal(n401, 20);
    assert_int_equal(n429, 20);
    /* authenticated traffic from the same address still gets through */
    env_req(&e, "GET", "/v1/keys", e.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    /* and the probes need no key */
    env_req(&e, "GET", "/healthz", NULL, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    env_stop(&e);
}

/* The key's own limit through POST /v1/keys: shown on the key (create, GET,
 * list), enforced, replayed with its Idempotency-Key; a bad spec is 400 with
 * param rate_limit and makes no key. */
static void test_keys_api_limit(void **state)
{
    (void)state;
    struct env e;
    env_start_fresh(&e, false, NULL);
    struct rf_t_resp r, again;
    const char *hdrs[] = {"Idempotency-Key: rl-key-1", NULL};
    const char *body = "{\"role\":\"service\",\"name\":\"limited\",\"rate_limit\":\"2/1h\"}";
    env_req(&e, "POST", "/v1/keys", e.admin, body, hdrs, &r);
    RF_ASSERT_STATUS(&r, 201);
    env_req(&e, "POST", "/v1/keys", e.admin, body, hdrs, &again);
    RF_ASSERT_STATUS(&again, 201);
    assert_true(resp_replayed(&again));
    json_t *k = rf_resp_json(&r), *k2 = rf_resp_json(&again);
    json_t *rl = json_object_get(k, "rate_limit");
    assert_int_equal(json_integer_value(json_object_get(rl, "quota")), 2);
    assert_int_equal(json_integer_value(json_object_get(rl, "window_ms")), 3600000);
    assert_true(json_equal(rl, json_object_get(k2, "rate_limit")));
    char id[64], secret[RF_T_KEY_BYTES];
    snprintf(id, sizeof id, "%s", rf_t_json_str(k, "id"));
    snprintf(secret, sizeof secret, "%s", rf_t_json_str(k, "key"));
    json_decref(k);
    json_decref(k2);
    rf_resp_free(&r);
    rf_resp_free(&again);
    k = env_get_json(&e, e.admin, "/v1/keys/%s", id);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(k, "rate_limit"),
                                                        "quota")), 2);
    json_decref(k);
    json_t *page = env_get_json(&e, e.admin, "/v1/keys?limit=100"), *item;
    size_t i;
    int limited = 0, unlimited = 0;
    json_array_foreach(json_object_get(page, "data"), i, item) {
        json_t *l = json_object_get(item, "rate_limit");
        if (strcmp(rf_t_json_str(item, "id"), id) == 0) limited += json_is_object(l);
        else unlimited += json_is_null(l);
    }
    assert_int_equal(limited, 1);
    assert_true(unlimited >= 1);
    json_decref(page);
    const char *upath = "/v1/users/rl-user/entitlements";
    assert_int_equal(limited_get(&e, upath, secret, 200), 1);
    assert_int_equal(limited_get(&e, upath, secret, 200), 0);
    assert_int_equal(limited_get(&e, upath, secret, 429), 0);
    int before = keys_named(&e, "bad");
    const char *bad[] = {"\"5/1w\"", "\"0/1s\"", "\"\"", "7", "\"2000/1s\""};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        char bb[128];
        snprintf(bb, sizeof bb, "{\"role\":\"service\",\"name\":\"bad\",\"rate_limit\":%s}",
                 bad[b]);
        env_req(&e, "POST", "/v1/keys", e.admin, bb, NULL, &r);
        RF_ASSERT_STATUS(&r, 400);
        json_t *p = rf_resp_json(&r);
        assert_string_equal(rf_t_json_str(p, "code"), "invalid_field");
        assert_string_equal(rf_t_json_str(p, "param"), "rate_limit");
        json_decref(p);
        rf_resp_free(&r);
    }
    assert_int_equal(keys_named(&e, "bad"), before);
    env_stop(&e);
}

static void expect_usage(const char *const *args, const char *msg)
{
    char so[1024], se[1024];
    int rc = rf_cli_run(args, so, sizeof so, se, sizeof se, 0);
    if (rc != 2 || !strstr(se, msg))
        fail_msg("%s %s: exit %d, stderr: %s", args[0], args[2], rc, se);
}

static void test_bad_specs(void **state)
{
    (void)state;
    char db[RF_T_URL_BYTES];
    if (rf_test_db_url(db, sizeof db) != 0)
        fail_msg("no test database");
    const char *bad_serve[] = {"service=0/10s", "service=10/10", "boss=1/1s", "service",
                               "service=5/0s", "service=2000/1s", "service=1/25h"};
    for (size_t i = 0; i < sizeof bad_serve / sizeof bad_serve[0]; i++) {
        const char *args[] = {"serve", "--rate-limit", bad_serve[i], "--db", db, NULL};
        expect_usage(args, "--rate-limit");
    }
    const char *twice[] = {"serve", "--rate-limit", "service=1/1s", "--rate-limit",
                           "service=2/1s", "--db", db, NULL};
    expect_usage(twice, "has a limit already");
    const char *unauth[] = {"serve", "--unauth-rate-limit", "lots", "--db", db, NULL};
    expect_usage(unauth, "--unauth-rate-limit");
    const char *keys[] = {"keys", "create", "--role", "service", "--rate-limit", "5/1w",
                          "--db", db, NULL};
    expect_usage(keys, "--rate-limit");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_nodes_share_one_limit),
        cmocka_unit_test(test_role_and_key_limits),
        cmocka_unit_test(test_no_limit_no_headers),
        cmocka_unit_test(test_unauthenticated_flood),
        cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_keys_api_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
