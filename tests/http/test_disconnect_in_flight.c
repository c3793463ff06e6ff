/*
 * test_disconnect_in_flight - a client that hangs up while its write is
 * being committed.
 *
 * A write whose caller's key is in the key cache is submitted by the event
 * loop itself; the connection waits (no thread holds it) until the
 * executor's callback hands it back. Proves, with the executor slowed by
 * the op-delay hook so the writes are surely in flight:
 *  - several keyed credits whose clients close their connections while the
 *    credits commit each commit exactly once: the same request again (new
 *    connection, same Idempotency-Key) is a replay of it, and the balance
 *    holds each amount once;
 *  - the server keeps serving, and the closed connections are gone (no
 *    socket of the server's port is left in CLOSE_WAIT: the server closed
 *    its end of each); under ASan the server's
 *    exit at the end also proves nothing leaked;
 *  - a server stopped (SIGTERM) while such a write is in flight exits 0
 *    after it committed: after a restart the same request is a replay.
 */
#include "http_env.h"
#include "raw_http.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define N_CONNS 8
#define DELAY_MS 1500       /* each write's time in the executor */
#define IN_FLIGHT_MS 300    /* when the clients hang up: well inside DELAY_MS */
#define SETTLE_MS 10000     /* a generous bound on every wait below */

/* Server-side sockets of port in CLOSE_WAIT: the client hung up and the
 * server never closed its end (a connection it lost track of). */
static int close_wait(int port) {
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f) return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned local_port = 0, st = 0;
        if (sscanf(line, " %*d: %*x:%x %*x:%*x %x", &local_port, &st) == 2 &&
            (int)local_port == port && st == 0x08)
            n++;
    }
    fclose(f);
    return n;
}

static void credit_path(char *out, size_t cap, const char *account) {
    snprintf(out, cap, "/v1/accounts/%s/credits", account);
}

/* Sends a keyed credit on a new raw connection and leaves it open. */
static void send_credit(struct env *e, struct raw_conn *c, const char *account,
                        const char *idem_key, int64_t amount) {
    char path[256], body[64], req[1024];
    credit_path(path, sizeof path, account);
    snprintf(body, sizeof body, "{\"amount_minor\": %lld}", (long long)amount);
    snprintf(req, sizeof req,
             "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nIdempotency-Key: %s\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             path, e->service, idem_key, strlen(body), body);
    assert_int_equal(raw_open(c, e->srv.port), 0);
    assert_int_equal(raw_send_str(c, req), 0);
}

/* The same credit again on a new connection, once the first is no longer
 * in flight: it must be a replay of a committed credit. */
static void expect_replay(struct env *e, const char *account, const char *idem_key,
                          int64_t amount) {
    char path[256], body[64], hdr[300];
    credit_path(path, sizeof path, account);
    snprintf(body, sizeof body, "{\"amount_minor\": %lld}", (long long)amount);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", idem_key);
    const char *hdrs[] = {hdr, NULL};
    int64_t until = rf_t_now_ms() + SETTLE_MS;
    for (;;) {
        struct rf_t_resp r;
        env_req(e, "POST", path, e->service, body, hdrs, &r);
        bool in_flight = r.status == 409 && r.body && strstr(r.body, "idempotency_key_in_flight");
        if (in_flight && rf_t_now_ms() < until) {
            rf_resp_free(&r);
            rf_t_sleep_ms(50);
            continue;
        }
        RF_ASSERT_STATUS(&r, 201);
        const char *replayed = rf_resp_header(&r, "Idempotent-Replayed");
        if (!replayed || strcmp(replayed, "true") != 0)
            fail_msg("credit %s: not a replay: the hung-up request never committed", idem_key);
        rf_resp_free(&r);
        return;
    }
}

/* A read with the service key: its key is in the server's key cache for
 * the next second, so the writes that follow take the event loop's way. */
static void warm_key(struct env *e, const char *account) {
    struct rf_t_resp r;
    char path[256];
    snprintf(path, sizeof path, "/v1/accounts/%s", account);
    env_req(e, "GET", path, e->service, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
}

static void test_clients_hang_up_while_committing(void **state) {
    (void)state;
    struct env e;
    env_start(&e, true, NULL);
    char account[64], prefix[40];
    RID(account, "hang");
    RID(prefix, "ik");
    env_account_create(&e, account, "USD", false);

    hook_op_delay(&e, DELAY_MS);
    warm_key(&e, account);
    struct raw_conn c[N_CONNS];
    char keys[N_CONNS][64];
    for (int i = 0; i < N_CONNS; i++) {
        snprintf(keys[i], sizeof keys[i], "%s-%d", prefix, i);
        send_credit(&e, &c[i], account, keys[i], i + 1);
    }
    rf_t_sleep_ms(IN_FLIGHT_MS);
    for (int i = 0; i < N_CONNS; i++) raw_close(&c[i]); /* the clients are gone */
    hook_op_delay(&e, 0);

    int64_t want = 0;
    for (int i = 0; i < N_CONNS; i++) {
        expect_replay(&e, account, keys[i], i + 1);
        want += i + 1;
    }
    struct bal b = env_balance(&e, account);
    assert_true(b.posted == want); /* each exactly once */

    /* Still serving, and every hung-up connection closed. */
    struct rf_t_resp r;
    env_req(&e, "GET", "/healthz", NULL, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    int64_t until = rf_t_now_ms() + SETTLE_MS;
    while (close_wait(e.srv.port) != 0 && rf_t_now_ms() < until) rf_t_sleep_ms(50);
    assert_int_equal(close_wait(e.srv.port), 0);
    env_stop(&e);
}

static void test_stop_while_committing(void **state) {
    (void)state;
    struct env e;
    env_start(&e, true, NULL);
    char account[64], key[64];
    RID(account, "stop");
    RID(key, "ik");
    env_account_create(&e, account, "USD", false);
    hook_op_delay(&e, DELAY_MS);
    warm_key(&e, account);
    struct raw_conn c;
    send_credit(&e, &c, account, key, 7);
    rf_t_sleep_ms(IN_FLIGHT_MS);
    raw_close(&c);
    assert_int_equal(rf_server_signal(&e.srv, SIGTERM), 0);
    int rc = rf_server_wait(&e.srv, 60000);
    e.running = false;
    if (rc != 0) fail_msg("server exited %d after SIGTERM with a write in flight", rc);

    if (rf_server_start(e.db, NULL, &e.srv) != 0) fail_msg("restart failed");
    e.running = true;
    expect_replay(&e, account, key, 7);
    assert_true(env_balance(&e, account).posted == 7);
    env_stop(&e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clients_hang_up_while_committing),
        cmocka_unit_test(test_stop_while_committing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
