/*
 * test_ops - operations endpoints and graceful shutdown.
 *
 * Proves:
 *  - /healthz and /readyz answer 200 without a key; /metrics is Prometheus
 *    text with racefree_http_requests_total and racefree_executor_queue_depth,
 *    and counts the requests made; every line of it parses (a comment, or a
 *    name, optional labels and a number); it has racefree_build_info, the
 *    process_* series with plausible values, and the store's transaction
 *    latency histogram counting the writes made;
 *  - SIGTERM while 16 grants are in flight (each held 1500 ms in its
 *    transaction by the op-delay test hook) lets every one of them finish with
 *    a 2xx, the process exits 0, and all 16 grants are there after a restart
 *    on the same database: acknowledged work is never lost at shutdown;
 *  - after SIGTERM the server accepts no new work.
 */
#include "http_env.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Every line of an exposition: "# HELP|TYPE ...", or "name[{labels}] number". */
static void metrics_parse(const char *body)
{
    for (const char *s = body; *s;) {
        size_t len = strcspn(s, "\n");
        char line[1024];
        if (len >= sizeof line)
            fail_msg("/metrics line too long: %.200s", s);
        memcpy(line, s, len);
        line[len] = '\0';
        s += len + (s[len] == '\n');
        if (line[0] == '#') {
            if (strncmp(line, "# HELP ", 7) && strncmp(line, "# TYPE ", 7))
                fail_msg("/metrics comment is neither HELP nor TYPE: %s", line);
            continue;
        }
        size_t name =
            strspn(line, "abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:");
        char *value = line + name;
        if (*value == '{')
            value = strstr(value, "} ") ? strstr(value, "} ") + 1 : NULL;
        char *end = NULL;
        if (name == 0 || !value || *value != ' ' || (strtod(value + 1, &end), *end != '\0'))
            fail_msg("/metrics line does not parse: %s", line);
    }
}

/* The value of the sample whose text before the value is exactly `series`
 * ("name" or "name{labels}"); fails when there is none. */
static double metric(const char *body, const char *series)
{
    size_t n = strlen(series);
    for (const char *s = body; s && *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : NULL)
        if (strncmp(s, series, n) == 0 && s[n] == ' ')
            return strtod(s + n + 1, NULL);
    fail_msg("/metrics has no sample %s", series);
    return 0;
}

/* The build and process series, and the store latency histogram. */
static void metrics_build_process_store(const char *body)
{
    metrics_parse(body);
    const char *info = strstr(body, "\nracefree_build_info{version=\"");
    if (!info || !strstr(info, "\",commit=\"") || strncmp(strstr(info, "} "), "} 1\n", 4) != 0)
        fail_msg("/metrics lacks racefree_build_info{version,commit} 1:\n%.3000s", body);
    assert_true(metric(body, "process_cpu_seconds_total") > 0);
    assert_true(metric(body, "process_resident_memory_bytes") > 1024 * 1024);
    double fds = metric(body, "process_open_fds");
    assert_true(fds >= 3 && fds <= metric(body, "process_max_fds"));
    double start = metric(body, "process_start_time_seconds");
    double now = (double)time(NULL);
    if (!(start > now - 3600 && start <= now + 1)) /* started by this test, within its bound */
        fail_msg("process_start_time_seconds %.0f is not near now (%.0f)", start, now);
    double count = metric(body, "racefree_store_transaction_seconds_count");
    assert_true(count >= 1); /* the three writes ran in one batch or more */
    assert_true(metric(body, "racefree_store_transaction_seconds_bucket{le=\"+Inf\"}") == count);
    assert_true(metric(body, "racefree_store_transaction_seconds_bucket{le=\"0.0005\"}") <= count);
    assert_true(metric(body, "racefree_store_transaction_seconds_sum") > 0);
}

static void test_health_ready_metrics(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    struct rf_t_resp r;
    env_req(&e, "GET", "/healthz", NULL, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    env_req(&e, "GET", "/readyz", NULL, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);

    /* Some traffic to count. */
    char user[64], path[512];
    RID(user, "u");
    ent_path(path, sizeof path, user, "pro");
    for (int i = 0; i < 3; i++) {
        env_req(&e, "PUT", path, e.service, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, i == 0 ? 201 : 200);
        rf_resp_free(&r);
    }

    env_req(&e, "GET", "/metrics", NULL, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    const char *ct = rf_resp_header(&r, "Content-Type");
    if (!ct || strncasecmp(ct, "text/plain", 10) != 0)
        fail_msg("/metrics Content-Type %s", ct ? ct : "absent");
    const char *want[] = {"racefree_http_requests_total", "racefree_executor_queue_depth"};
    for (size_t i = 0; i < 2; i++)
        if (!strstr(r.body, want[i]))
            fail_msg("/metrics lacks %s:\n%.2000s", want[i], r.body);
    /* The PUTs show up: some racefree_http_requests_total sample line with
     * status 201 and a count of at least 1. */
    bool found = false;
    for (char *line = r.body; line && *line;) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, "racefree_http_requests_total{", 29) == 0) {
            char *end = nl ? nl : line + strlen(line);
            char *sp = end;
            while (sp > line && sp[-1] != ' ')
                sp--;
            char save = *end;
            *end = '\0';
            if (strstr(line, "201") && atof(sp) >= 1)
                found = true;
            *end = save;
        }
        line = nl ? nl + 1 : NULL;
    }
    if (!found)
        fail_msg("/metrics has no racefree_http_requests_total sample for the 201:\n%.3000s",
                 r.body);
    metrics_build_process_store(r.body);
    /* Never data: no user id, no key. */
    assert_null(strstr(r.body, user));
    assert_null(strstr(r.body, e.admin));
    rf_resp_free(&r);
    env_stop(&e);
}

#define IN_FLIGHT 16

struct flight {
    struct env *e;
    char user[64];
    struct rf_par_req reqs[IN_FLIGHT];
    int64_t start_ms, done_ms;
};

static void *flight_main(void *arg)
{
    struct flight *f = arg;
    f->start_ms = rf_t_now_ms();
    rf_parallel(f->reqs, IN_FLIGHT);
    f->done_ms = rf_t_now_ms();
    return NULL;
}

static void test_sigterm_drains_in_flight(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, true, NULL);
    static struct flight f;
    memset(&f, 0, sizeof f);
    f.e = &e;
    RID(f.user, "u");
    for (int i = 0; i < IN_FLIGHT; i++) {
        f.reqs[i].port = e.srv.port;
        f.reqs[i].method = "PUT";
        char key[32];
        snprintf(key, sizeof key, "ent-%02d", i);
        ent_path(f.reqs[i].path, sizeof f.reqs[i].path, f.user, key);
        f.reqs[i].api_key = e.service;
        f.reqs[i].body = "{\"source\": \"shutdown\"}";
    }
    hook_op_delay(&e, 1500);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, flight_main, &f), 0);
    /* The requests are in the server, inside op-delay: 800 ms leaves room
     * for a slow (sanitizer) build to have read all of them. */
    rf_t_sleep_ms(800);
    int64_t term_ms = rf_t_now_ms();
    assert_int_equal(rf_server_signal(&e.srv, SIGTERM), 0);

    /* New connections after SIGTERM get no work done: refused, or 503. */
    rf_t_sleep_ms(200);
    struct rf_t_resp late;
    char late_path[512];
    ent_path(late_path, sizeof late_path, f.user, "late");
    rf_req(e.srv.port, "PUT", late_path, e.service, NULL, NULL, &late);
    bool late_refused = late.status == 0 || late.status == 503;
    int late_status = late.status;
    if (late.status == 503 && !rf_resp_header(&late, "Retry-After"))
        fail_msg("503 after SIGTERM without Retry-After");
    rf_resp_free(&late);

    pthread_join(t, NULL);
    int rc = rf_server_wait(&e.srv, 60000);
    e.running = false;
    for (int i = 0; i < IN_FLIGHT; i++) {
        struct rf_t_resp *r = &f.reqs[i].resp;
        if (r->status < 200 || r->status > 299)
            fail_msg("in-flight grant %d at shutdown: HTTP %d (%s) %s", i, r->status, r->errmsg,
                     r->body ? r->body : "");
    }
    if (rc != 0)
        fail_msg("server exited %d after SIGTERM", rc);
    print_message("requests sent at +0 ms, SIGTERM at +%lld ms, last answer at +%lld ms\n",
                  (long long)(term_ms - f.start_ms), (long long)(f.done_ms - f.start_ms));
    /* The point of the test: work was still running when SIGTERM came. */
    assert_true(f.done_ms > term_ms);
    if (!late_refused)
        fail_msg("a request after SIGTERM was served: HTTP %d", late_status);

    /* Restart on the same database: all 16 grants are there. */
    if (rf_server_start(e.db, NULL, &e.srv) != 0)
        fail_msg("restart failed");
    e.running = true;
    for (int i = 0; i < IN_FLIGHT; i++) {
        struct rf_t_resp r;
        env_req(&e, "GET", f.reqs[i].path, e.readonly, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r);
        assert_string_equal(rf_t_json_str(j, "status"), "active");
        assert_int_equal(rf_t_json_int(j, "version"), 1);
        json_decref(j);
        rf_resp_free(&r);
    }
    assert_int_equal(list_all_count(&e, f.user, "all"), IN_FLIGHT);
    rf_par_free(f.reqs, IN_FLIGHT);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_ready_metrics),
        cmocka_unit_test(test_sigterm_drains_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
