/*
 * test_torture - `racefree torture --scenario all` against real `racefree
 * serve` processes: one on SQLite, three on one PostgreSQL store (each race
 * spread over the three), with a read limit for readonly keys so the
 * rate_limit scenario runs instead of skipping.
 *
 * Proves: every scenario runs and reports zero violations (exit 0); every
 * race had all its requests in flight before the first answer ("together"
 * equals the races run: requests sent one after another would fail this);
 * every scenario whose losers answer differently from the winner provoked
 * conflicts; the run revoked the keys it made; the same --seed repeats the
 * same ids; and `--scenario list` names the scenarios while bad usage exits 2.
 */
#include "../http/http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TORTURE_OUT_BYTES (64 * 1024)
#define TORTURE_SEED "20261205"
#define TORTURE_RUN "tt1352955" /* "tt" and the seed in hex: the prefix of its ids and keys */

/* The scenarios and whether their races must show conflicts: only
 * credit_many_keys has none to show (every credit has its own key). */
static const struct {
    const char *name;
    bool conflicts;
} expected[] = {
    {"grant", true},     {"bind", true},      {"approval", true},
    {"credit_one_key", true}, {"credit_many_keys", false}, {"overdraft", true},
    {"hold", true},      {"checkout_one_key", true}, {"fulfil", true},
    {"payout_batch", true}, {"claim", true}, {"lease", true},
    {"read_once", true}, {"rate_limit", true},
};

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One row of the final table. */
struct row {
    int requests, together, races, conflicts, violations;
};

static bool table_row(const char *out, const char *name, struct row *r) {
    char pat[64];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *at = strstr(out, pat);
    return at && sscanf(at + strlen(pat), "%d %d/%d %d %d", &r->requests, &r->together, &r->races,
                        &r->conflicts, &r->violations) == 5;
}

/* Every key the run made (named TORTURE_RUN-<role>) is revoked. */
static void check_keys_revoked(struct env *e) {
    struct rf_t_resp r;
    env_req(e, "GET", "/v1/keys?limit=500", e->admin, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *j = rf_resp_json(&r), *k;
    size_t i;
    int made = 0;
    json_array_foreach(json_object_get(j, "data"), i, k) {
        const char *name = json_string_value(json_object_get(k, "name"));
        if (!name || strncmp(name, TORTURE_RUN "-", strlen(TORTURE_RUN) + 1) != 0) continue;
        made++;
        if (json_is_null(json_object_get(k, "revoked_at"))) fail_msg("key %s not revoked", name);
    }
    assert_int_equal(made, 3); /* service, worker, readonly */
    json_decref(j);
    rf_resp_free(&r);
}

static void test_all_scenarios(void **state) {
    (void)state;
    static const char *const limit[] = {"--rate-limit", "readonly=40/10s", NULL};
    struct env e;
    env_start_fresh(&e, false, limit);
    struct rf_server extra[2];
    int n_extra = rf_test_db_is_pg() ? 2 : 0;
    char url[512];
    int len = snprintf(url, sizeof url, "http://127.0.0.1:%d", e.srv.port);
    for (int i = 0; i < n_extra; i++) {
        if (rf_server_start(e.db, limit, &extra[i]) != 0) fail_msg("extra server");
        len += snprintf(url + len, sizeof url - (size_t)len, ",http://127.0.0.1:%d", extra[i].port);
    }
    static char out[TORTURE_OUT_BYTES], err[TORTURE_OUT_BYTES];
    const char *args[] = {"torture", "--url", url, "--key", e.admin, "--scenario", "all",
                          "--clients", "16", "--rounds", "3", "--seed", TORTURE_SEED, NULL};
    int64_t t0 = rf_t_now_ms();
    int rc = rf_cli_run(args, out, sizeof out, err, sizeof err, 180000);
    fprintf(stderr, "torture took %lld ms:\n%s", (long long)(rf_t_now_ms() - t0), out);
    if (rc != 0) fail_msg("torture exit %d:\n%s\n%s", rc, out, err);
    assert_non_null(strstr(out, "result: no violations"));
    assert_non_null(strstr(out, "seed " TORTURE_SEED " "));
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        struct row r;
        if (!table_row(out, expected[i].name, &r)) fail_msg("no row for %s", expected[i].name);
        assert_int_equal(r.violations, 0);
        assert_int_equal(r.races, 3);
        assert_int_equal(r.together, r.races);
        assert_true(r.requests >= 48);
        if (expected[i].conflicts) assert_true(r.conflicts > 0);
    }
    check_keys_revoked(&e);
    for (int i = 0; i < n_extra; i++) assert_int_equal(rf_server_stop(&extra[i], 0), 0);
    env_stop(&e);
}

/* The webhook event ids one store holds for the run's provider, sorted and
 * joined into out. */
static void event_ids(struct env *e, const char *provider, char *out, size_t cap) {
    char path[160];
    snprintf(path, sizeof path, "/v1/webhook-events?provider=%s&status=all&limit=500", provider);
    struct rf_t_resp r;
    env_req(e, "GET", path, e->admin, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *j = rf_resp_json(&r), *ev;
    const char *ids[64];
    size_t i, n = 0;
    json_array_foreach(json_object_get(j, "data"), i, ev) {
        if (n < 64) ids[n++] = json_string_value(json_object_get(ev, "event_id"));
    }
    qsort(ids, n, sizeof ids[0], cmp_str);
    size_t len = 0;
    out[0] = '\0';
    for (i = 0; i < n; i++) len += (size_t)snprintf(out + len, cap - len, "%s,", ids[i]);
    assert_true(n >= 3 && len < cap);
    json_decref(j);
    rf_resp_free(&r);
}

/* The same --seed makes the same ids: two fresh stores given one seed hold
 * the same webhook event ids afterwards; a store that has seen a seed
 * refuses it (its grants would answer 200, not 201), and takes another. */
static void test_seed_repeats(void **state) {
    (void)state;
    struct env e[2];
    static char out[TORTURE_OUT_BYTES], err[TORTURE_OUT_BYTES], ids[2][4096];
    for (int i = 0; i < 2; i++) {
        env_start_fresh(&e[i], false, NULL);
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d", e[i].srv.port);
        const char *seed[] = {"torture", "--url", url, "--key", e[i].admin, "--scenario",
                              "grant,fulfil", "--rounds", "1", "--clients", "4", "--seed", "77",
                              NULL};
        assert_int_equal(rf_cli_run(seed, out, sizeof out, err, sizeof err, 0), 0);
        event_ids(&e[i], "tt4d", ids[i], sizeof ids[i]);
        if (i == 1) continue;
        assert_int_equal(rf_cli_run(seed, out, sizeof out, err, sizeof err, 0), 2);
        assert_non_null(strstr(err, "already seen seed 77"));
        seed[12] = "78";
        assert_int_equal(rf_cli_run(seed, out, sizeof out, err, sizeof err, 0), 0);
    }
    assert_string_equal(ids[0], ids[1]);
    for (int i = 0; i < 2; i++) env_stop(&e[i]);
}

static void test_usage(void **state) {
    (void)state;
    static char out[TORTURE_OUT_BYTES], err[4096];
    const char *list[] = {"torture", "--scenario", "list", NULL};
    assert_int_equal(rf_cli_run(list, out, sizeof out, err, sizeof err, 0), 0);
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        char pat[64];
        snprintf(pat, sizeof pat, "%s ", expected[i].name);
        assert_non_null(strstr(out, pat));
    }
    const char *unknown[] = {"torture", "--url", "http://127.0.0.1:1", "--key", "k",
                             "--scenario", "nope", NULL};
    assert_int_equal(rf_cli_run(unknown, out, sizeof out, err, sizeof err, 0), 2);
    assert_non_null(strstr(err, "unknown scenario 'nope'"));
    const char *tls[] = {"torture", "--url", "https://127.0.0.1:1", "--key", "k", NULL};
    assert_int_equal(rf_cli_run(tls, out, sizeof out, err, sizeof err, 0), 2);
    assert_non_null(strstr(err, "no TLS"));
    const char *down[] = {"torture", "--url", "http://127.0.0.1:1", "--key", "k", NULL};
    assert_int_equal(rf_cli_run(down, out, sizeof out, err, sizeof err, 0), 2);
    assert_non_null(strstr(err, "cannot connect"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_all_scenarios),
        cmocka_unit_test(test_seed_repeats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
