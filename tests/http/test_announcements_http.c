/*
 * test_announcements_http - announcements through the outbox, on real
 * `racefree serve` processes (fresh stores, --test-hooks).
 *
 * Proves:
 *  - an announcement to 5,000 listed users (a body past the default body
 *    limit) fans out in chunks to exactly 5,000 recipients, all delivered,
 *    state sent; two POSTs with one Idempotency-Key make one announcement;
 *  - a server killed with SIGKILL mid-way through a fan-out (its chunks
 *    slowed by the test hook) and started again: the rescued job continues
 *    from the cursor, still exactly 5,000 recipients, all delivered, sent,
 *    and the job was claimed more than once (the kill landed mid-way);
 *  - injected delivery failures -> partially_failed with their counts;
 *    retry-failed -> sent; a second retry-failed changes nothing;
 *  - send_at ahead: the fan-out job waits for it (run_at = send_at), the
 *    announcement stays scheduled with no recipient;
 *  - audiences: entitlement_key reaches the users with an active
 *    entitlement of that key (not a revoked one), all reaches every user
 *    the store knows;
 *  - roles (401 without a key, 403 for worker and readonly writes, readonly
 *    reads), the Idempotency-Key required, bad input 400 with the field,
 *    an unknown id 404.
 */
#include "http_env.h"
#include "racefree.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_USERS 5000
#define WAIT_MS 40000

static const char *const args[] = {"--maintenance-interval-ms", "100", NULL};
static struct env g;

static int group_setup(void **state) {
    (void)state;
    env_start_fresh(&g, true, args);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    env_stop(&g);
    return 0;
}

/* A create body for user ids "<prefix>-<i>" (i < n), each listed once. */
static char *listed_body(const char *prefix, int n) {
    size_t cap = (size_t)n * (strlen(prefix) + 16) + 256, len = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    len += (size_t)snprintf(b, cap, "{\"title\":\"Hi\",\"body\":\"News\",\"audience\":{\"user_ids\":[");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, cap - len, "%s\"%s-%05d\"", i ? "," : "", prefix, i);
    snprintf(b + len, cap - len, "]}}");
    return b;
}

/* POST /v1/announcements with a fresh or given Idempotency-Key. */
static void create(struct env *e, const char *key, const char *body, const char *idem,
                   struct rf_t_resp *r) {
    char h[128];
    if (idem) snprintf(h, sizeof h, "Idempotency-Key: %s", idem);
    else idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    env_req(e, "POST", "/v1/announcements", key, body, hdrs, r);
}

/* Creates it (201); its id into id. */
static void create_ok(struct env *e, const char *body, char *id, size_t cap) {
    struct rf_t_resp r;
    create(e, e->service, body, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    json_t *j = rf_resp_json(&r);
    snprintf(id, cap, "%s", rf_t_json_str(j, "id"));
    json_decref(j);
    rf_resp_free(&r);
}

static json_t *ann_get(struct env *e, const char *id) {
    return env_get_json(e, e->readonly, "/v1/announcements/%s", id);
}

static int64_t count(json_t *a, const char *name) {
    return json_integer_value(json_object_get(json_object_get(a, "counts"), name));
}

/* Polls until the state is neither scheduled nor sending (bounded). */
static json_t *wait_settled(struct env *e, const char *id) {
    int64_t deadline = rf_t_now_ms() + WAIT_MS;
    for (;;) {
        json_t *a = ann_get(e, id);
        const char *st = rf_t_json_str(a, "state");
        /* Never sent before every recipient is delivered. */
        if (strcmp(st, "sent") == 0) assert_int_equal(count(a, "delivered"), count(a, "recipients"));
        if (strcmp(st, "scheduled") != 0 && strcmp(st, "sending") != 0) return a;
        json_decref(a);
        if (rf_t_now_ms() > deadline) fail_msg("announcement %s never settled", id);
        rf_t_sleep_ms(50);
    }
}

static void assert_sent(json_t *a, int64_t n) {
    assert_string_equal(rf_t_json_str(a, "state"), "sent");
    assert_int_equal(count(a, "recipients"), n);
    assert_int_equal(count(a, "delivered"), n);
    assert_int_equal(count(a, "pending"), 0);
    assert_int_equal(count(a, "failed"), 0);
    assert_true(json_is_true(json_object_get(a, "fanout_done")));
}

/* Delivery truth from the store itself: each listed user "<prefix>-<i>"
 * (i < n) holds exactly one notification of this announcement, read
 * through the library on the server's own store. */
static void assert_notified(struct env *e, const char *prefix, int n, const char *ann_id) {
    rf *db = NULL;
    struct rf_options opt = {.no_migrate = true};
    if (rf_open(e->db, &opt, &db) != RF_OK) fail_msg("rf_open(%s)", e->db);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        char user[64];
        snprintf(user, sizeof user, "%s-%05d", prefix, i);
        struct rf_notification_list_req q = {.list = {.scope = user, .limit = 100}};
        struct rf_notification_page page = {0};
        rf_err err = rf_notification_list(db, &q, &page);
        if (err != RF_OK) fail_msg("rf_notification_list(%s): %s", user, rf_err_code(err));
        int mine = 0;
        for (int k = 0; k < page.n; k++)
            mine += strcmp(page.items[k].announcement_id, ann_id) == 0;
        assert_string_equal(page.next, ""); /* one page holds all of them */
        rf_notification_page_clear(&page);
        if (mine != 1) fail_msg("user %s has %d notifications of %s", user, mine, ann_id);
        total += mine;
    }
    rf_close(db);
    assert_int_equal(total, n);
}

static void test_5000_listed_users_once(void **state) {
    (void)state;
    char prefix[40], idem[64], id[128];
    RID(prefix, "u");
    RID(idem, "ann");
    char *body = listed_body(prefix, N_USERS);
    assert_true(strlen(body) > 64 * 1024); /* past the default body limit */
    struct rf_t_resp r1, r2;
    create(&g, g.service, body, idem, &r1);
    create(&g, g.service, body, idem, &r2);
    RF_ASSERT_STATUS(&r1, 201);
    RF_ASSERT_STATUS(&r2, 201);
    assert_true(resp_replayed(&r2));
    json_t *a1 = rf_resp_json(&r1), *a2 = rf_resp_json(&r2);
    assert_string_equal(rf_t_json_str(a1, "id"), rf_t_json_str(a2, "id"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(a1, "audience"),
                                                        "user_ids")), N_USERS);
    snprintf(id, sizeof id, "%s", rf_t_json_str(a1, "id"));
    json_decref(a1);
    json_decref(a2);
    rf_resp_free(&r1);
    rf_resp_free(&r2);
    free(body);
    json_t *a = wait_settled(&g, id);
    assert_sent(a, N_USERS);
    json_decref(a);
    assert_notified(&g, prefix, N_USERS, id);
}

/* One server of its own: chunks of 500 slowed to 400 ms each, 1 s leases;
 * killed once 1,000 are delivered, started again without the hook. */
static void test_killed_mid_fanout_resumes(void **state) {
    (void)state;
    static struct env k;
    env_start_fresh(&k, true, args);
    struct rf_t_resp r;
    env_req(&k, "POST", "/v1/_test/fanout", k.admin, "{\"pause_ms\":400,\"lease_ms\":1000}",
            NULL, &r);
    RF_ASSERT_STATUS(&r, 204);
    rf_resp_free(&r);
    char prefix[40], id[128];
    RID(prefix, "k");
    char *body = listed_body(prefix, N_USERS);
    create_ok(&k, body, id, sizeof id);
    free(body);
    int64_t deadline = rf_t_now_ms() + WAIT_MS;
    for (;;) {
        json_t *a = ann_get(&k, id);
        int64_t delivered = count(a, "delivered");
        const char *st = rf_t_json_str(a, "state");
        bool mid = delivered >= 1000 && strcmp(st, "sending") == 0;
        json_decref(a);
        if (mid) break;
        assert_true(delivered < N_USERS); /* the pause lets the kill land mid-way */
        if (rf_t_now_ms() > deadline) fail_msg("the fan-out never got going");
        rf_t_sleep_ms(20);
    }
    assert_int_equal(rf_server_signal(&k.srv, SIGKILL), 0);
    rf_server_wait(&k.srv, 20000);
    const char *restart[] = {"--test-hooks", "--maintenance-interval-ms", "100", NULL};
    if (rf_server_start(k.db, restart, &k.srv) != 0) fail_msg("restart");
    json_t *a = wait_settled(&k, id);
    assert_sent(a, N_USERS);
    json_t *job = env_get_json(&k, k.readonly, "/v1/jobs/%s", rf_t_json_str(a, "job_id"));
    json_decref(a);
    assert_string_equal(rf_t_json_str(job, "status"), "completed");
    assert_true(rf_t_json_int(job, "attempt") >= 2); /* rescued and claimed again */
    json_decref(job);
    assert_notified(&k, prefix, N_USERS, id); /* no duplicate from the chunk replayed */
    env_stop(&k);
}

static void hook(const char *body) {
    struct rf_t_resp r;
    env_req(&g, "POST", "/v1/_test/fanout", g.admin, body, NULL, &r);
    RF_ASSERT_STATUS(&r, 204);
    rf_resp_free(&r);
}

static json_t *retry(const char *id) {
    char path[256];
    snprintf(path, sizeof path, "/v1/announcements/%s/retry-failed", id);
    struct rf_t_resp r;
    env_req(&g, "POST", path, g.service, "{}", NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    rf_resp_free(&r);
    return j;
}

static void test_failures_then_retry(void **state) {
    (void)state;
    char prefix[40], id[128], fails[256];
    RID(prefix, "f");
    snprintf(fails, sizeof fails, "{\"fail_user_ids\":\"%s-00003,%s-00017,%s-00049\"}", prefix,
             prefix, prefix);
    hook(fails);
    char *body = listed_body(prefix, 50);
    create_ok(&g, body, id, sizeof id);
    free(body);
    json_t *a = wait_settled(&g, id);
    hook("{}");
    assert_string_equal(rf_t_json_str(a, "state"), "partially_failed");
    assert_int_equal(count(a, "recipients"), 50);
    assert_int_equal(count(a, "delivered"), 47);
    assert_int_equal(count(a, "failed"), 3);
    assert_int_equal(count(a, "pending"), 0);
    json_decref(a);
    a = retry(id);
    assert_int_equal(rf_t_json_int(a, "retries"), 1);
    int64_t retried_version = rf_t_json_int(a, "version");
    json_decref(a);
    a = wait_settled(&g, id);
    assert_sent(a, 50);
    assert_true(rf_t_json_int(a, "version") > retried_version); /* the deliveries changed it */
    json_decref(a);
    assert_notified(&g, prefix, 50, id);
    a = retry(id); /* none failed: nothing moves */
    assert_int_equal(rf_t_json_int(a, "retries"), 1);
    assert_string_equal(rf_t_json_str(a, "state"), "sent");
    json_decref(a);
}

static void grant(const char *user, const char *key) {
    char path[512];
    ent_path(path, sizeof path, user, key);
    struct rf_t_resp r;
    env_req(&g, "PUT", path, g.service, "{}", NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
}

static void test_entitlement_key_and_all(void **state) {
    (void)state;
    char key[40], other[40], user[64], path[512], body[256], id[128];
    RID(key, "plan");
    RID(other, "other");
    for (int i = 0; i < 12; i++) {
        snprintf(user, sizeof user, "%s-e%02d", key, i);
        grant(user, i < 10 ? key : other);
    }
    snprintf(user, sizeof user, "%s-e%02d", key, 0);
    ent_path(path, sizeof path, user, key);
    struct rf_t_resp r;
    env_req(&g, "DELETE", path, g.service, NULL, NULL, &r); /* revoked: not reached */
    RF_ASSERT_STATUS(&r, 204);
    rf_resp_free(&r);
    snprintf(body, sizeof body,
             "{\"title\":\"t\",\"body\":\"b\",\"audience\":{\"entitlement_key\":\"%s\"}}", key);
    create_ok(&g, body, id, sizeof id);
    json_t *a = wait_settled(&g, id);
    assert_sent(a, 9);
    json_decref(a);
    /* all: every user of this fresh store, the 12 above (this test runs
     * first: the later tests' recipients get notifications, which make them
     * users the store knows). */
    create_ok(&g, "{\"title\":\"t\",\"body\":\"b\",\"audience\":{\"all\":true}}", id, sizeof id);
    a = wait_settled(&g, id);
    assert_sent(a, 12);
    json_decref(a);
}

/* send_at an hour ahead: the job waits for it, nothing is delivered. */
static void test_send_at_later_is_scheduled(void **state) {
    (void)state;
    char at[32], body[256], id[128];
    time_t later = time(NULL) + 3600;
    struct tm tm;
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&later, &tm));
    snprintf(body, sizeof body,
             "{\"title\":\"t\",\"body\":\"b\",\"audience\":{\"all\":true},\"send_at\":\"%s\"}",
             at);
    create_ok(&g, body, id, sizeof id);
    rf_t_sleep_ms(600); /* more than two polls of the fan-out thread */
    json_t *a = ann_get(&g, id);
    assert_string_equal(rf_t_json_str(a, "state"), "scheduled");
    assert_int_equal(count(a, "recipients"), 0);
    assert_false(json_is_true(json_object_get(a, "fanout_done")));
    json_t *want = json_object_get(a, "send_at");
    json_t *job = env_get_json(&g, g.readonly, "/v1/jobs/%s", rf_t_json_str(a, "job_id"));
    assert_string_equal(rf_t_json_str(job, "status"), "available");
    assert_string_equal(rf_t_json_str(job, "run_at"), json_string_value(want));
    assert_string_equal(rf_t_json_str(job, "queue"), "racefree.announcements");
    json_decref(job);
    json_decref(a);
}

static void problem(const char *key, const char *body, bool with_idem, int status,
                    const char *code) {
    struct rf_t_resp r;
    if (with_idem) create(&g, key, body, NULL, &r);
    else env_req(&g, "POST", "/v1/announcements", key, body, NULL, &r);
    RF_ASSERT_PROBLEM(&r, status, code);
    rf_resp_free(&r);
}

#define OK_BODY "{\"title\":\"t\",\"body\":\"b\",\"audience\":{\"all\":true}}"

static void test_roles_and_bad_input(void **state) {
    (void)state;
    problem(NULL, OK_BODY, true, 401, "unauthenticated");
    problem(g.worker, OK_BODY, true, 403, "forbidden");
    problem(g.readonly, OK_BODY, true, 403, "forbidden");
    problem(g.service, OK_BODY, false, 400, "idempotency_key_required");
    static const char *const bad[] = {
        "{\"title\":\"t\",\"body\":\"b\",\"audience\":{}}",
        "{\"title\":\"t\",\"body\":\"b\",\"audience\":{\"all\":false}}",
        "{\"title\":\"t\",\"body\":\"b\",\"audience\":{\"all\":true,\"entitlement_key\":\"k\"}}",
        "{\"title\":\"t\",\"body\":\"b\",\"audience\":{\"user_ids\":[]}}",
        "{\"title\":\"t\",\"body\":\"b\",\"audience\":{\"user_ids\":[\"a\",7]}}",
        "{\"title\":\"t\",\"body\":\"b\",\"audience\":{\"user_ids\":[\"a b\"]}}",
        "{\"title\":\"t\",\"body\":\"b\",\"audience\":{\"entitlement_key\":\"\"}}",
        "{\"title\":\"t\",\"body\":\"b\",\"audience\":{\"everyone\":true}}",
        "{\"title\":\"t\",\"body\":\"b\",\"audience\":{\"all\":true},\"send_at\":"
        "\"2999-01-01T00:00:00Z\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        problem(g.service, bad[i], true, 400, "invalid_field");
    problem(g.service, "{\"body\":\"b\",\"audience\":{\"all\":true}}", true, 400,
            "invalid_field");
    problem(g.service, "{\"title\":\"\",\"body\":\"b\",\"audience\":{\"all\":true}}", true, 400,
            "invalid_field");
    char *body = listed_body("x", N_USERS + 1);
    problem(g.service, body, true, 400, "invalid_field");
    free(body);

    struct rf_t_resp r;
    env_req(&g, "GET", "/v1/announcements/nope", g.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "announcement_not_found");
    rf_resp_free(&r);
    env_req(&g, "GET", "/v1/announcements/nope", g.worker, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    env_req(&g, "POST", "/v1/announcements/nope/retry-failed", g.readonly, "{}", NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    env_req(&g, "POST", "/v1/announcements/nope/retry-failed", g.service, "{}", NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "announcement_not_found");
    rf_resp_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entitlement_key_and_all),
        cmocka_unit_test(test_roles_and_bad_input),
        cmocka_unit_test(test_5000_listed_users_once),
        cmocka_unit_test(test_failures_then_retry),
        cmocka_unit_test(test_send_at_later_is_scheduled),
        cmocka_unit_test(test_killed_mid_fanout_resumes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
