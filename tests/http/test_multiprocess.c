/*
 * test_multiprocess - seed 000's deployment: two racefree processes, one store.
 *
 * Proves: two `racefree serve` processes on the same database (the same
 * SQLite file; the same PostgreSQL database), each hit by 32 concurrent grants
 * of the same (user, key), all 64 released together, give the single-process
 * outcome: every response 200 or 201, exactly one 201 across both processes,
 * one id, version 1, one row. The in-process writer queue cannot serialise
 * across processes, so this is what shows the store-level statement is atomic
 * (SQLite: BEGIN IMMEDIATE + busy_timeout; PostgreSQL: ON CONFLICT).
 * Also: 32 requests with one Idempotency-Key split over the two processes
 * make one effect; each answer is the original 201, a byte-identical replay,
 * or 409 in flight (the key record lives in the store, not in one process).
 * And the same for money: rounds of 32 credits with one Idempotency-Key over
 * two processes move the balance once. A record written in a transaction of
 * its own, after the effect's, lets the other process run the effect again
 * in between: the in-process in-flight check cannot see across processes.
 * And `serve --reuse-port` lets a second process listen on the first's port.
 */
#include "http_env.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define PER_SERVER 32
#define ROUNDS 3

static void test_two_processes_same_store(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    struct rf_server second;
    if (rf_server_start(e.db, NULL, &second) != 0)
        fail_msg("second racefree serve did not start on %s", e.db);

    static struct rf_par_req reqs[2 * PER_SERVER];
    for (int round = 0; round < ROUNDS; round++) {
        char user[64], key[64], path[512];
        RID(user, "u");
        RID(key, "pro");
        ent_path(path, sizeof path, user, key);
        memset(reqs, 0, sizeof reqs);
        for (int i = 0; i < 2 * PER_SERVER; i++) {
            reqs[i].port = (i % 2) ? second.port : e.srv.port;
            reqs[i].method = "PUT";
            snprintf(reqs[i].path, sizeof reqs[i].path, "%s", path);
            reqs[i].api_key = (i % 4 < 2) ? e.admin : e.service;
            reqs[i].body = "{\"source\": \"multiprocess\", \"metadata\": {\"round\": 1}}";
        }
        assert_int_equal(rf_parallel(reqs, 2 * PER_SERVER), 0);
        check_grant_race(&e, reqs, 2 * PER_SERVER, user, key);

        /* Both processes read the same row. */
        struct rf_t_resp a, b;
        rf_req(e.srv.port, "GET", path, e.readonly, NULL, NULL, &a);
        rf_req(second.port, "GET", path, e.readonly, NULL, NULL, &b);
        RF_ASSERT_STATUS(&a, 200);
        RF_ASSERT_STATUS(&b, 200);
        json_t *ja = ent_check(&a, user, key), *jb = ent_check(&b, user, key);
        assert_string_equal(rf_t_json_str(ja, "id"), rf_t_json_str(jb, "id"));
        assert_int_equal(rf_t_json_int(ja, "version"), rf_t_json_int(jb, "version"));
        json_decref(ja);
        json_decref(jb);
        rf_resp_free(&a);
        rf_resp_free(&b);
        rf_par_free(reqs, 2 * PER_SERVER);
    }

    /* A revoke through one process, a re-grant through the other: one row,
     * versions continue (2 then 3) across processes. */
    char user[64], key[64], path[512];
    RID(user, "u");
    RID(key, "pro");
    ent_path(path, sizeof path, user, key);
    struct rf_t_resp r;
    rf_req(e.srv.port, "PUT", path, e.service, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    rf_req(second.port, "DELETE", path, e.service, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 204);
    assert_int_equal(etag_version(&r), 2);
    rf_resp_free(&r);
    rf_req(e.srv.port, "PUT", path, e.service, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = ent_check(&r, user, key);
    assert_int_equal(rf_t_json_int(j, "version"), 3);
    assert_string_equal(rf_t_json_str(j, "status"), "active");
    json_decref(j);
    rf_resp_free(&r);

    /* One Idempotency-Key, one API key, both processes at once. */
    char ik[64], h[128];
    RID(user, "u");
    RID(key, "pro");
    RID(ik, "idem");
    ent_path(path, sizeof path, user, key);
    snprintf(h, sizeof h, "Idempotency-Key: %s", ik);
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < PER_SERVER; i++) {
        reqs[i].port = (i % 2) ? second.port : e.srv.port;
        reqs[i].method = "PUT";
        snprintf(reqs[i].path, sizeof reqs[i].path, "%s", path);
        reqs[i].api_key = e.service;
        reqs[i].body = "{\"source\": \"idem-multiprocess\"}";
        reqs[i].headers[0] = h;
    }
    assert_int_equal(rf_parallel(reqs, PER_SERVER), 0);
    int originals = 0, replays = 0, in_flight = 0;
    const struct rf_t_resp *orig = NULL;
    for (int i = 0; i < PER_SERVER; i++) {
        const struct rf_t_resp *q = &reqs[i].resp;
        const char *rp = rf_resp_header(q, "Idempotent-Replayed");
        bool is_replay = rp && strcmp(rp, "true") == 0;
        if (q->status == 201 && !is_replay) {
            originals++;
            orig = q;
        } else if (q->status == 201) {
            replays++;
        } else if (q->status == 409) {
            RF_ASSERT_PROBLEM(q, 409, "idempotency_key_in_flight");
            in_flight++;
        } else {
            fail_msg("same-key request %d (port %d): HTTP %d (%s) %s", i, reqs[i].port, q->status,
                     q->errmsg, q->body ? q->body : "");
        }
    }
    print_message("same key over 2 processes x%d: %d original, %d replayed, %d in flight\n",
                  PER_SERVER, originals, replays, in_flight);
    assert_int_equal(originals, 1);
    for (int i = 0; i < PER_SERVER; i++) {
        const struct rf_t_resp *q = &reqs[i].resp;
        if (q->status == 201 &&
            (q->body_len != orig->body_len || memcmp(q->body, orig->body, q->body_len) != 0))
            fail_msg("replay differs from the original:\n%s\n%s", orig->body, q->body);
    }
    assert_int_equal(list_all_count(&e, user, "all"), 1);
    rf_par_free(reqs, PER_SERVER);

    int rc = rf_server_stop(&second, 0);
    if (rc != 0)
        fail_msg("second server did not exit 0 (got %d)", rc);
    env_stop(&e);
}

#define CREDIT_ROUNDS 6
#define CREDIT_MINOR 700

/* One round: PER_SERVER credits of one key over both processes. */
static void same_key_credit_round(struct env *e, int second_port, const char *acct)
{
    static struct rf_par_req reqs[PER_SERVER];
    char h[160], path[256];
    idem_hdr_fresh(h, sizeof h);
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", acct);
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < PER_SERVER; i++) {
        reqs[i].port = (i % 2) ? second_port : e->srv.port;
        reqs[i].method = "POST";
        snprintf(reqs[i].path, sizeof reqs[i].path, "%s", path);
        reqs[i].api_key = e->service;
        reqs[i].body = "{\"amount_minor\": 700}";
        reqs[i].headers[0] = h;
    }
    assert_int_equal(rf_parallel(reqs, PER_SERVER), 0);
    int originals = 0;
    for (int i = 0; i < PER_SERVER; i++) {
        const struct rf_t_resp *q = &reqs[i].resp;
        if (q->status == 201 && !resp_replayed(q))
            originals++;
        else if (q->status == 409)
            RF_ASSERT_PROBLEM(q, 409, "idempotency_key_in_flight");
        else if (q->status != 201)
            fail_msg("credit %d (port %d): HTTP %d (%s) %s", i, reqs[i].port, q->status,
                     q->errmsg, q->body ? q->body : "");
    }
    assert_int_equal(originals, 1);
    rf_par_free(reqs, PER_SERVER);
}

static void test_same_key_credit_two_processes(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    struct rf_server second;
    if (rf_server_start(e.db, NULL, &second) != 0)
        fail_msg("second racefree serve did not start on %s", e.db);
    char acct[64], cur[4];
    rand_currency(cur);
    RID(acct, "wallet");
    env_account_create(&e, acct, cur, false);
    for (int round = 0; round < CREDIT_ROUNDS; round++) {
        same_key_credit_round(&e, second.port, acct);
        struct bal b = env_balance(&e, acct);
        if (b.posted != (int64_t)(round + 1) * CREDIT_MINOR)
            fail_msg("round %d: balance %lld, expected %lld: one key applied twice", round,
                     (long long)b.posted, (long long)(round + 1) * CREDIT_MINOR);
    }
    int rc = rf_server_stop(&second, 0);
    if (rc != 0)
        fail_msg("second server did not exit 0 (got %d)", rc);
    env_stop(&e);
}

/* True when the file holds text (a server's log). */
static bool log_says(const char *path, const char *text)
{
    char buf[8192];
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

/* --reuse-port: several processes on one store listen on one port (how the
 * benchmark runs three). Without the flag the port is taken and a second
 * process exits at start; with it the second binds too, and once the first
 * is gone the port is still served, so the second holds it. */
static void test_reuse_port_shares_one_port(void **state)
{
    (void)state;
    struct env e;
    const char *const reuse[] = {"--reuse-port", NULL};
    env_start(&e, false, reuse);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", e.srv.port);

    struct rf_server plain;
    const char *const plain_args[] = {"--listen", listen, NULL};
    assert_int_equal(rf_server_spawn(e.db, plain_args, &plain), 0);
    int rc = rf_server_wait(&plain, 20000);
    if (rc <= 0)
        fail_msg("a second process without --reuse-port on port %d: got %d, not a failed start",
                 e.srv.port, rc);

    struct rf_server second;
    const char *const shared[] = {"--listen", listen, "--reuse-port", NULL};
    assert_int_equal(rf_server_spawn(e.db, shared, &second), 0);
    second.port = e.srv.port;
    /* /healthz on the shared port may be the first's answer: wait for the
     * second's own word that it listens (or that it could not). */
    int64_t deadline = rf_t_now_ms() + 20000;
    while (!log_says(second.err_path, "listening on") && rf_t_now_ms() < deadline) {
        if (log_says(second.err_path, "cannot listen"))
            break;
        rf_t_sleep_ms(20);
    }
    if (!log_says(second.err_path, "listening on")) {
        rf_server_dump_log(&second, 4096);
        fail_msg("a second process with --reuse-port did not listen on port %d", e.srv.port);
    }
    e.running = false;
    assert_int_equal(rf_server_stop(&e.srv, 0), 0);

    char user[64], key[64], path[512];
    RID(user, "u");
    RID(key, "pro");
    ent_path(path, sizeof path, user, key);
    struct rf_t_resp r;
    rf_req(second.port, "PUT", path, e.admin, "{}", NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    assert_int_equal(rf_server_stop(&second, 0), 0);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_processes_same_store),
        cmocka_unit_test(test_same_key_credit_two_processes),
        cmocka_unit_test(test_reuse_port_shares_one_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
