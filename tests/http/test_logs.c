/*
 * test_logs - what `racefree serve` writes, read back from a real run:
 *  - every line on stderr and stdout is one JSON object with `level`
 *    (debug|info|warn|error), `ts` and `msg`, startup and shutdown lines
 *    included (store open, listening, stopped);
 *  - a store failure (a COMMIT forced to fail) logs its code and cause at
 *    error, and the 503 it answers has an access line at error with the code;
 *  - probes (/healthz, /readyz, /metrics) have no line at the default level
 *    and have one at --log-level debug; --log-level error drops info lines;
 *  - no API key reaches the log: neither a key the server made (its secret
 *    is in an answer body) nor a bearer token a client sent, valid or not.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_BYTES_MAX (1 << 20)

/* The server's output, kept readable past its exit (the harness removes
 * the files when the server exits 0). */
struct run_log {
    FILE *err, *out;
    char *text; /* stderr then stdout, after the run */
};

static void log_open(struct env *e, struct run_log *l)
{
    l->err = fopen(e->srv.err_path, "r");
    l->out = fopen(e->srv.out_path, "r");
    assert_non_null(l->err);
    assert_non_null(l->out);
}

/* Stops the server (it must exit 0) and reads both streams whole. */
static void log_finish(struct env *e, struct run_log *l)
{
    env_stop(e);
    l->text = calloc(1, LOG_BYTES_MAX + 1);
    assert_non_null(l->text);
    size_t n = fread(l->text, 1, LOG_BYTES_MAX / 2, l->err);
    n += fread(l->text + n, 1, LOG_BYTES_MAX / 2, l->out);
    l->text[n] = '\0';
    fclose(l->err);
    fclose(l->out);
}

/* Every line a JSON object with a known level, a ts and a msg; counts the
 * lines for which match(line) holds. */
typedef bool (*line_fn)(json_t *line, const void *arg);

static int count_lines(const struct run_log *l, line_fn match, const void *arg)
{
    int n = 0;
    for (const char *s = l->text; *s;) {
        size_t len = strcspn(s, "\n");
        json_error_t err;
        json_t *j = json_loadb(s, len, 0, &err);
        if (!json_is_object(j))
            fail_msg("a log line is not a JSON object (%s): %.*s", err.text, (int)len, s);
        const char *level = rf_t_json_str(j, "level");
        if (strcmp(level, "debug") && strcmp(level, "info") && strcmp(level, "warn") &&
            strcmp(level, "error"))
            fail_msg("a log line has no level: %.*s", (int)len, s);
        if (!is_rfc3339_ms(rf_t_json_str(j, "ts")) || !json_is_string(json_object_get(j, "msg")))
            fail_msg("a log line lacks ts or msg: %.*s", (int)len, s);
        if (!match || match(j, arg))
            n++;
        json_decref(j);
        s += len + (s[len] == '\n');
    }
    return n;
}

static bool route_is(json_t *j, const void *arg)
{
    return strcmp(rf_t_json_str(j, "route"), (const char *)arg) == 0;
}

static bool msg_starts(json_t *j, const void *arg)
{
    return strncmp(rf_t_json_str(j, "msg"), arg, strlen(arg)) == 0;
}

static bool level_is(json_t *j, const void *arg)
{
    return strcmp(rf_t_json_str(j, "level"), (const char *)arg) == 0;
}

/* A store failure's line: error, code store_unavailable, a cause. */
static bool store_failure(json_t *j, const void *arg)
{
    (void)arg;
    return level_is(j, "error") && !json_object_get(j, "route") &&
           strcmp(rf_t_json_str(j, "code"), "store_unavailable") == 0 &&
           strlen(rf_t_json_str(j, "cause")) > 0;
}

/* The 503's access line: error with its code. */
static bool access_503(json_t *j, const void *arg)
{
    (void)arg;
    return level_is(j, "error") && rf_t_json_int(j, "status") == 503 &&
           strcmp(rf_t_json_str(j, "code"), "store_unavailable") == 0;
}

static void probe_all(struct env *e)
{
    static const char *const probes[] = {"/healthz", "/readyz", "/metrics"};
    for (int i = 0; i < 3; i++) {
        struct rf_t_resp r;
        env_req(e, "GET", probes[i], NULL, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        rf_resp_free(&r);
    }
}

static void test_default_level(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, true, NULL);
    struct run_log l = {0};
    log_open(&e, &l);
    probe_all(&e);
    char id[128], secret[256], user[64], path[256];
    key_create_http(&e, "service", "logged-key", id, sizeof id, secret, sizeof secret);
    struct rf_t_resp r;
    env_req(&e, "GET", "/v1/payouts", secret, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    static const char bogus[] = "not-a-key-but-secret-7f3a9c2e51";
    env_req(&e, "GET", "/v1/payouts", bogus, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 401, "unauthenticated");
    rf_resp_free(&r);
    env_req(&e, "POST", "/v1/_test/fail-next-commit", e.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 204);
    rf_resp_free(&r);
    RID(user, "logs");
    ent_path(path, sizeof path, user, "pro");
    env_req(&e, "PUT", path, e.service, "{}", NULL, &r);
    RF_ASSERT_PROBLEM(&r, 503, "store_unavailable");
    rf_resp_free(&r);
    char admin[RF_T_KEY_BYTES];
    snprintf(admin, sizeof admin, "%s", e.admin);
    log_finish(&e, &l);

    assert_int_equal(count_lines(&l, route_is, "/healthz"), 0);
    assert_int_equal(count_lines(&l, route_is, "/readyz"), 0);
    assert_int_equal(count_lines(&l, route_is, "/metrics"), 0);
    assert_int_equal(count_lines(&l, route_is, "/v1/payouts"), 2);
    assert_int_equal(count_lines(&l, level_is, "debug"), 0);
    assert_true(count_lines(&l, store_failure, NULL) >= 1);
    assert_int_equal(count_lines(&l, access_503, NULL), 1);
    assert_int_equal(count_lines(&l, msg_starts, "store open"), 1);
    assert_int_equal(count_lines(&l, msg_starts, "listening on http://"), 1);
    assert_int_equal(count_lines(&l, msg_starts, "stopped"), 1);
    assert_non_null(strstr(l.text, id)); /* the key's id is logged, its secret never */
    assert_null(strstr(l.text, secret));
    assert_null(strstr(l.text, bogus));
    assert_null(strstr(l.text, admin));
    free(l.text);
}

static void test_debug_and_error_levels(void **state)
{
    (void)state;
    struct env e;
    const char *debug[] = {"--log-level", "debug", NULL};
    env_start(&e, false, debug);
    struct run_log l = {0};
    log_open(&e, &l);
    probe_all(&e);
    log_finish(&e, &l);
    /* the harness's own readiness probes count too: at least ours */
    assert_true(count_lines(&l, route_is, "/healthz") >= 1);
    assert_int_equal(count_lines(&l, route_is, "/readyz"), 1);
    assert_int_equal(count_lines(&l, route_is, "/metrics"), 1);
    assert_true(count_lines(&l, level_is, "debug") >= 3);
    free(l.text);

    const char *quiet[] = {"--log-level", "error", NULL};
    env_start(&e, false, quiet);
    log_open(&e, &l);
    probe_all(&e);
    struct rf_t_resp r;
    env_req(&e, "GET", "/v1/payouts", e.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    log_finish(&e, &l);
    assert_int_equal(count_lines(&l, NULL, NULL), 0); /* nothing failed: no line at all */
    free(l.text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_level),
        cmocka_unit_test(test_debug_and_error_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
