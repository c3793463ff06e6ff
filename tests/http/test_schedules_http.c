/*
 * test_schedules_http - `racefree serve --schedule` and /v1/schedules.
 *
 * Proves:
 *  - three serve processes on one store, each with --schedule
 *    'payouts@1s', over 10+ intervals: every slot that began and ended while
 *    all three ran has exactly one run, finished (succeeded, first attempt),
 *    with one payout batch (the one USD wallet's currency), no batch shared by
 *    two slots; and across the three processes' logs exactly one process
 *    started that slot's run ("schedule: running" once per run). Without the
 *    claim on the slot's key, every process would run every slot (three
 *    runs each). Both counts come from what the API and logs show, not from
 *    the payout batch implementation.
 *  - POST /v1/schedules/payouts/run: 401 without a key, 403 for service,
 *    worker and readonly keys, 200/201 for admin; 5 calls within one interval
 *    name one run (one id, one batch, at most one 201) and the slot has one
 *    run in the list.
 *  - a bad --schedule exits 2 with a message naming it, before anything is
 *    created; an unknown schedule name is 404 schedule_not_found.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NODES 3
#define INTERVAL_MS 1000
#define FULL_SLOTS_MIN 10
#define RUNS_PAGES_MAX 100
#define LOG_BYTES (1024 * 1024)

static int64_t wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Every run of schedule name, following next; a JSON array (decref it). */
static json_t *all_runs(int port, const char *key, const char *name)
{
    json_t *runs = json_array();
    char after[300] = "";
    for (int page = 0; page < RUNS_PAGES_MAX; page++) {
        char path[512];
        snprintf(path, sizeof path, "/v1/schedules/%s/runs?limit=500%s%s", name,
                 after[0] ? "&after=" : "", after);
        struct rf_t_resp r;
        rf_req(port, "GET", path, key, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r);
        json_array_extend(runs, json_object_get(j, "data"));
        json_t *next = json_object_get(j, "next");
        bool more = json_is_string(next);
        if (more) snprintf(after, sizeof after, "%s", json_string_value(next));
        json_decref(j);
        rf_resp_free(&r);
        if (!more) return runs;
    }
    fail_msg("runs list did not end within %d pages", RUNS_PAGES_MAX);
    return runs;
}

static json_t *run_of_slot(json_t *runs, int64_t slot, int *count)
{
    json_t *found = NULL;
    size_t i;
    json_t *run;
    *count = 0;
    json_array_foreach(runs, i, run) {
        if (rf_t_json_int(run, "slot") != slot) continue;
        (*count)++;
        found = run;
    }
    return found;
}

/* How many times text holds needle. */
static int occurrences(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void check_slot(json_t *runs, int64_t slot, const char *logs, json_t *seen_batches)
{
    int count = 0;
    json_t *run = run_of_slot(runs, slot, &count);
    if (count != 1) fail_msg("slot %lld has %d runs, want 1", (long long)slot, count);
    assert_string_equal(rf_t_json_str(run, "status"), "succeeded");
    assert_int_equal(rf_t_json_int(run, "attempts"), 1);
    assert_string_equal(rf_t_json_str(run, "via"), "schedule");
    json_t *batches = json_object_get(run, "batch_ids");
    assert_int_equal(json_array_size(batches), 1);
    const char *batch = json_string_value(json_array_get(batches, 0));
    assert_non_null(batch);
    if (json_object_get(seen_batches, batch))
        fail_msg("batch %s is named by two slots", batch);
    json_object_set_new(seen_batches, batch, json_true());
    char needle[160];
    snprintf(needle, sizeof needle, "\"msg\":\"schedule: running\",\"schedule\":\"payouts\","
             "\"slot\":%lld,", (long long)slot);
    int started = occurrences(logs, needle);
    if (started != 1)
        fail_msg("slot %lld was started %d times across %d processes", (long long)slot,
                 started, NODES);
}

static void test_three_schedulers_one_run_per_slot(void **state)
{
    (void)state;
    struct env e;
    env_start_fresh(&e, false, NULL);
    struct rf_t_resp r;
    char acct[64], body[160];
    RID(acct, "wallet");
    snprintf(body, sizeof body, "{\"id\": \"%s\", \"currency\": \"USD\"}", acct);
    env_req(&e, "POST", "/v1/accounts", e.service, body, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);

    const char *args[] = {"--schedule", "payouts@1s", NULL};
    static struct rf_server nodes[NODES];
    for (int i = 0; i < NODES; i++)
        if (rf_server_spawn(e.db, args, &nodes[i]) != 0) fail_msg("node %d did not spawn", i);
    for (int i = 0; i < NODES; i++)
        if (rf_server_wait_healthy(&nodes[i]) != 0) fail_msg("node %d did not start", i);
    int64_t first = wall_ms() / INTERVAL_MS + 1; /* the first slot all three saw begin */
    rf_t_sleep_ms((FULL_SLOTS_MIN + 1) * INTERVAL_MS + INTERVAL_MS / 2);
    int64_t last = wall_ms() / INTERVAL_MS - 1;  /* the last slot that ended since */
    rf_t_sleep_ms(INTERVAL_MS / 2);              /* its run has finished */
    assert_true(last - first + 1 >= FULL_SLOTS_MIN);

    json_t *runs = all_runs(nodes[0].port, e.readonly, "payouts");
    static char logs[NODES * LOG_BYTES];
    size_t used = 0;
    for (int i = 0; i < NODES; i++)
        used += rf_server_read_stderr(&nodes[i], logs + used, sizeof logs - used);
    json_t *seen = json_object();
    for (int64_t slot = first; slot <= last; slot++) check_slot(runs, slot, logs, seen);
    json_decref(seen);
    json_decref(runs);
    for (int i = 0; i < NODES; i++) assert_int_equal(rf_server_stop(&nodes[i], 0), 0);
    env_stop(&e);
}

/* POST .../run with key; the parsed answer when it is 200 or 201. */
static json_t *trigger(struct env *e, const char *key, int *status)
{
    struct rf_t_resp r;
    env_req(e, "POST", "/v1/schedules/payouts/run", key, NULL, NULL, &r);
    *status = r.status;
    json_t *j = (r.status == 200 || r.status == 201) ? rf_resp_json(&r) : NULL;
    rf_resp_free(&r);
    return j;
}

/* Waits (bounded) until the last run of every schedule has finished. */
static void wait_last_run_finished(struct env *e)
{
    for (int tries = 0; tries < 200; tries++) {
        struct rf_t_resp r;
        env_req(e, "GET", "/v1/schedules", e->readonly, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r);
        size_t i;
        json_t *sch;
        bool done = true;
        json_array_foreach(json_object_get(j, "data"), i, sch) {
            json_t *last = json_object_get(sch, "last_run");
            done = done && json_is_object(last) &&
                   strcmp(rf_t_json_str(last, "status"), "running") != 0;
        }
        json_decref(j);
        rf_resp_free(&r);
        if (done) return;
        rf_t_sleep_ms(50);
    }
    fail_msg("the scheduler's first runs did not finish within 10 s");
}

static void test_trigger_admin_only_and_once_per_slot(void **state)
{
    (void)state;
    struct env e;
    const char *args[] = {"--schedule", "payouts:USD:5@1h", "--schedule", "payouts@1h", NULL};
    env_start(&e, false, args);
    struct rf_t_resp r;
    env_req(&e, "POST", "/v1/schedules/payouts/run", NULL, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 401, "unauthenticated");
    rf_resp_free(&r);
    const char *refused[] = {e.service, e.worker, e.readonly};
    for (int i = 0; i < 3; i++) {
        env_req(&e, "POST", "/v1/schedules/payouts/run", refused[i], NULL, NULL, &r);
        RF_ASSERT_PROBLEM(&r, 403, "forbidden");
        rf_resp_free(&r);
    }
    env_req(&e, "POST", "/v1/schedules/payouts:USD:5/run", e.worker, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);

    /* The scheduler claimed this hour's slot at start; once its run has
     * finished, every trigger in the slot answers that run. */
    wait_last_run_finished(&e);
    /* Five calls within one hour's slot (retried if the hour turned). */
    for (int tries = 0; tries < 2; tries++) {
        int64_t slot = wall_ms() / 3600000;
        char id[160] = "";
        int created = 0;
        for (int i = 0; i < 5; i++) {
            int status = 0;
            json_t *run = trigger(&e, e.admin, &status);
            if (status != 200 && status != 201) fail_msg("admin trigger answered %d", status);
            created += status == 201;
            if (i == 0) snprintf(id, sizeof id, "%s", rf_t_json_str(run, "id"));
            assert_string_equal(rf_t_json_str(run, "id"), id);
            assert_string_equal(rf_t_json_str(run, "status"), "succeeded");
            json_decref(run);
        }
        if (wall_ms() / 3600000 != slot) continue;
        assert_true(created <= 1);
        json_t *runs = all_runs(e.srv.port, e.admin, "payouts");
        int count = 0;
        run_of_slot(runs, slot, &count);
        assert_int_equal(count, 1);
        json_decref(runs);
        break;
    }

    /* The list: this server's schedules with their last runs. */
    env_req(&e, "GET", "/v1/schedules", e.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    json_t *data = json_object_get(j, "data");
    assert_int_equal(json_array_size(data), 2);
    json_t *usd = json_array_get(data, 0);
    assert_string_equal(rf_t_json_str(usd, "name"), "payouts:USD:5");
    assert_string_equal(rf_t_json_str(usd, "currency"), "USD");
    assert_int_equal(rf_t_json_int(usd, "min_amount_minor"), 5);
    assert_int_equal(rf_t_json_int(usd, "interval_ms"), 3600000);
    assert_true(json_is_object(json_object_get(json_array_get(data, 1), "last_run")));
    json_decref(j);
    rf_resp_free(&r);
    env_req(&e, "GET", "/v1/schedules", e.service, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    env_stop(&e);
}

static void test_unknown_schedule_404(void **state)
{
    (void)state;
    struct env e;
    const char *args[] = {"--schedule", "payouts@1h", NULL};
    env_start(&e, false, args);
    struct rf_t_resp r;
    env_req(&e, "POST", "/v1/schedules/payouts:EUR/run", e.admin, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "schedule_not_found");
    rf_resp_free(&r);
    env_req(&e, "GET", "/v1/schedules/nosuch/runs", e.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "schedule_not_found");
    rf_resp_free(&r);
    env_req(&e, "GET", "/v1/schedules/payouts/runs?after=nosuch:1:2", e.readonly, NULL, NULL,
            &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_cursor");
    rf_resp_free(&r);
    env_stop(&e);
}

static void test_bad_specs_exit_2(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"payouts", "TASK[:CUR[:MIN]]@INTERVAL"},
        {"payouts@", "the interval must be"},
        {"payouts@0s", "the interval must be"},
        {"payouts@100ms", "from 200ms"},
        {"payouts@8d", "the interval must be"},
        {"payouts@1x", "the interval must be"},
        {"payouts@1.5s", "the interval must be"},
        {"refunds@1s", "unknown task 'refunds'"},
        {"payouts:usd@1s", "not a currency code"},
        {"payouts:USD:0@1s", "minimum amount"},
        {"payouts:USD:x@1s", "minimum amount"},
        {"payouts:USDX@1s", ":CUR"},
    };
    char id[64], path[128], url[160];
    RID(id, "nosched");
    snprintf(path, sizeof path, "/tmp/%s.db", id);
    snprintf(url, sizeof url, "sqlite:%s", path);
    static char out[RF_T_CLI_OUT_BYTES], err[RF_T_CLI_OUT_BYTES];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[] = {"serve", "--db", url, "--listen", "127.0.0.1:0", "--schedule",
                              bad[i][0], NULL};
        int rc = rf_cli_run(argv, out, sizeof out, err, sizeof err, 30000);
        if (rc != 2) fail_msg("serve --schedule '%s' exited %d: %s", bad[i][0], rc, err);
        if (!strstr(err, "--schedule") || !strstr(err, bad[i][1]))
            fail_msg("serve --schedule '%s': no '%s' in: %s", bad[i][0], bad[i][1], err);
    }
    const char *dup[] = {"serve", "--db", url, "--schedule", "payouts@1s", "--schedule",
                         "payouts@1h", NULL};
    assert_int_equal(rf_cli_run(dup, out, sizeof out, err, sizeof err, 30000), 2);
    if (!strstr(err, "already given")) fail_msg("duplicate schedule: %s", err);
    /* Refused before the store was opened: nothing was created. */
    assert_int_not_equal(access(path, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_specs_exit_2),
        cmocka_unit_test(test_unknown_schedule_404),
        cmocka_unit_test(test_trigger_admin_only_and_once_per_slot),
        cmocka_unit_test(test_three_schedulers_one_run_per_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
