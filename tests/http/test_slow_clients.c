/*
 * test_slow_clients - slow and idle clients cannot lock a polite one out.
 *
 * Proves: with 1,100 slow-header connections (a header byte every ~2 s,
 * reconnecting whenever the server drops them, from 127.0.0.2) and 1,100
 * idle keep-alive connections (one request answered, then silent, also
 * reconnecting, from 127.0.0.3) held against a server limited to 1,500
 * connections and 1,000 per client, a polite client on fresh connections
 * (from 127.0.0.1) gets every request answered within 5 s for ~20 s, and
 * the server stays healthy and stops cleanly. The old server (1,024
 * connections, no per-client limit, no header deadline) left the polite
 * client with no answer at all. Also: a connection that trickles header
 * lines but never ends its header section is answered 408 request_timeout
 * and closed at the header deadline (shortened to 4 s here by a serve flag).
 * With 4 connections per client: a fifth connection evicts the client's
 * oldest idle keep-alive connection (others stay served); when the four are
 * all reading request bodies nothing is evicted and the fifth gets
 * 503 too_many_connections with Retry-After; idle connections are closed
 * after --idle-timeout-ms.
 */
#include "http_env.h"
#include "raw_http.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SLOW_CONNS 1100
#define IDLE_CONNS 1100
#define TICK_MS 2000
#define RUN_MS 20000
#define ANSWER_MS 5000
#define HEADER_TIMEOUT_MS 4000

static const char *const server_args[] = {"--max-connections", "1500",
                                          "--max-client-connections", "1000",
                                          "--header-timeout-ms", "4000", NULL};

static const char SLOW_START[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
static const char IDLE_REQ[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

struct flood {
    int port;
    int slow[SLOW_CONNS];
    int idle[IDLE_CONNS];
    atomic_bool stop;
    atomic_bool ready;          /* every connection was opened once */
    int opened;                 /* connections opened, reconnects included */
    int failed;                 /* connects that failed */
};

/* Opens a flood connection and sends its opening bytes; -1 on failure. */
static int flood_open(struct flood *f, bool slow) {
    int fd = raw_connect_fd(f->port, slow ? "127.0.0.2" : "127.0.0.3", true);
    if (fd < 0) {
        f->failed++;
        return -1;
    }
    const char *start = slow ? SLOW_START : IDLE_REQ;
    size_t len = slow ? sizeof SLOW_START - 1 : sizeof IDLE_REQ - 1;
    if (send(fd, start, len, MSG_NOSIGNAL) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    f->opened++;
    return fd;
}

/* True when the server closed fd (or answered it: a slow request's 408). */
static bool dropped(int fd, bool slow) {
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    return slow; /* an idle connection reads its one answer; slow ones get none */
}

/* One tick: each slow connection sends one more header byte; every dropped
 * connection is opened again, as a client bent on holding it would. */
static void flood_tick(struct flood *f) {
    for (int i = 0; i < SLOW_CONNS; i++) {
        if (f->slow[i] >= 0 && !dropped(f->slow[i], true) &&
            send(f->slow[i], "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
            continue;
        if (f->slow[i] >= 0) close(f->slow[i]);
        f->slow[i] = flood_open(f, true);
    }
    for (int i = 0; i < IDLE_CONNS; i++) {
        if (f->idle[i] >= 0 && !dropped(f->idle[i], false)) continue;
        if (f->idle[i] >= 0) close(f->idle[i]);
        f->idle[i] = flood_open(f, false);
    }
}

static void *flood_main(void *arg) {
    struct flood *f = arg;
    for (int i = 0; i < SLOW_CONNS; i++) f->slow[i] = flood_open(f, true);
    for (int i = 0; i < IDLE_CONNS; i++) f->idle[i] = flood_open(f, false);
    atomic_store(&f->ready, true);
    while (!atomic_load(&f->stop)) {
        for (int waited = 0; waited < TICK_MS && !atomic_load(&f->stop); waited += 100)
            rf_t_sleep_ms(100);
        if (!atomic_load(&f->stop)) flood_tick(f);
    }
    for (int i = 0; i < SLOW_CONNS; i++)
        if (f->slow[i] >= 0) close(f->slow[i]);
    for (int i = 0; i < IDLE_CONNS; i++)
        if (f->idle[i] >= 0) close(f->idle[i]);
    return NULL;
}

static void raise_nofile(void) {
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < SLOW_CONNS + IDLE_CONNS + 256)
        fail_msg("the open file limit (%llu) is too low for this test",
                 (unsigned long long)rl.rlim_cur);
}

/* One polite request on a fresh connection, answered within ANSWER_MS. */
static void polite(struct env *e, const char *path, const char *key) {
    int64_t t0 = rf_t_now_ms();
    struct rf_t_resp r;
    rf_req(e->srv.port, "GET", path, key, NULL, NULL, &r);
    int64_t took = rf_t_now_ms() - t0;
    RF_ASSERT_STATUS(&r, 200);
    if (took > ANSWER_MS) fail_msg("GET %s took %lld ms", path, (long long)took);
    rf_resp_free(&r);
}

static void test_flood(void **state) {
    (void)state;
    raise_nofile();
    struct env e;
    env_start(&e, false, server_args);
    struct flood *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->port = e.srv.port;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flood_main, f), 0);
    while (!atomic_load(&f->ready)) rf_t_sleep_ms(50);
    int answered = 0;
    for (int64_t end = rf_t_now_ms() + RUN_MS; rf_t_now_ms() < end; answered += 2) {
        polite(&e, "/healthz", NULL);
        polite(&e, "/v1/keys?limit=1", e.admin);
        rf_t_sleep_ms(100);
    }
    atomic_store(&f->stop, true);
    pthread_join(th, NULL);
    print_message("polite requests answered: %d; flood connections opened: %d (failed %d)\n",
                  answered, f->opened, f->failed);
    /* the load was real: every flood connection was opened at least once */
    assert_true(f->opened >= SLOW_CONNS + IDLE_CONNS);
    polite(&e, "/healthz", NULL);
    free(f);
    env_stop(&e);
}

/* Header lines trickling in forever: 408 at the header deadline, then closed. */
static void test_header_deadline(void **state) {
    (void)state;
    struct env e;
    env_start(&e, false, server_args);
    struct raw_conn c;
    RF_CHECK(raw_open(&c, e.srv.port));
    RF_CHECK(raw_send_str(&c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"));
    int64_t t0 = rf_t_now_ms();
    struct rf_t_resp r = {0};
    bool answered = false;
    while (!answered && rf_t_now_ms() - t0 < HEADER_TIMEOUT_MS + 10000) {
        if (raw_send_str(&c, "X-Trickle: 1\r\n") != 0) break; /* closed: read what came */
        answered = raw_read(&c, &r, 500) == 0;
        if (!answered) rf_resp_free(&r);
    }
    if (!answered && raw_read(&c, &r, 1000) != 0)
        fail_msg("no answer %lld ms after the first byte", (long long)(rf_t_now_ms() - t0));
    print_message("answered %d after %lld ms\n", r.status, (long long)(rf_t_now_ms() - t0));
    RF_ASSERT_PROBLEM(&r, 408, "request_timeout");
    assert_true(raw_wait_closed(&c, 5000));
    rf_resp_free(&r);
    raw_close(&c);
    env_stop(&e);
}

static void get_ok(struct raw_conn *c) {
    struct rf_t_resp r;
    RF_CHECK(raw_send_str(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    RF_CHECK(raw_read(c, &r, 10000));
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
}

static void open_from(struct raw_conn *c, int port, const char *src) {
    c->len = 0;
    c->buf = malloc(RAW_BUF_BYTES);
    assert_non_null(c->buf);
    c->fd = raw_connect_fd(port, src, false);
    assert_true(c->fd >= 0);
}

static void test_client_limits(void **state) {
    (void)state;
    static const char *const args[] = {"--max-client-connections", "4", "--idle-timeout-ms",
                                       "2000", NULL};
    struct env e;
    env_start(&e, false, args);
    struct raw_conn idle[5], body[5];
    for (int i = 0; i < 4; i++) {
        open_from(&idle[i], e.srv.port, "127.0.0.2");
        get_ok(&idle[i]);
        rf_t_sleep_ms(20); /* distinct ages */
    }
    open_from(&idle[4], e.srv.port, "127.0.0.2");
    get_ok(&idle[4]);
    assert_true(raw_wait_closed(&idle[0], 5000)); /* the oldest idle one made room */
    for (int i = 1; i < 5; i++) get_ok(&idle[i]);

    for (int i = 0; i < 4; i++) {
        open_from(&body[i], e.srv.port, "127.0.0.3");
        RF_CHECK(raw_send_str(&body[i], "POST /v1/keys HTTP/1.1\r\nHost: x\r\n"
                                        "Content-Length: 2\r\n\r\n"));
    }
    rf_t_sleep_ms(200); /* the server has read their heads */
    open_from(&body[4], e.srv.port, "127.0.0.3");
    struct rf_t_resp r;
    RF_CHECK(raw_read(&body[4], &r, 10000));
    RF_ASSERT_PROBLEM(&r, 503, "too_many_connections");
    assert_non_null(rf_resp_header(&r, "Retry-After"));
    rf_resp_free(&r);
    for (int i = 0; i < 4; i++) { /* the refused one took nothing from them */
        RF_CHECK(raw_send_str(&body[i], "{}"));
        RF_CHECK(raw_read(&body[i], &r, 10000));
        RF_ASSERT_PROBLEM(&r, 401, "unauthenticated");
        rf_resp_free(&r);
    }
    for (int i = 1; i < 5; i++) assert_true(raw_wait_closed(&idle[i], 2000 + 5000));
    for (int i = 0; i < 5; i++) {
        raw_close(&idle[i]);
        raw_close(&body[i]);
    }
    env_stop(&e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_deadline),
        cmocka_unit_test(test_client_limits),
        cmocka_unit_test(test_flood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
