/*
 * test_crash.c - a crash loses nothing that was acknowledged.
 *
 * 16 client threads grant entitlements as fast as they can while one more
 * thread kills the server with SIGKILL in the middle of the load (no
 * shutdown, no drain: a crash, or a power cut as far as the process knows).
 * After a restart on the same store, every grant that was answered 201 must
 * be there: the executor answers only after COMMIT returned (group commit,
 * --sync full on SQLite; a durable commit on PostgreSQL). Grants that got no
 * answer may or may not exist; either is correct.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_env.h"

#define CLIENTS 16
#define GRANTS_MAX 400

struct load {
    struct env *e;
    char user[CLIENTS][64];
    int acked[CLIENTS][GRANTS_MAX]; /* key numbers answered 201 */
    int n_acked[CLIENTS];
    int bad_status[CLIENTS];        /* an answer other than 201 or no answer */
};

static void client(int idx, struct load *l) {
    int c = idx - 1;
    for (int i = 0; i < GRANTS_MAX; i++) {
        char path[256], key[16];
        snprintf(key, sizeof key, "k%d", i);
        ent_path(path, sizeof path, l->user[c], key);
        struct rf_t_resp r;
        env_req(l->e, "PUT", path, l->e->service, NULL, NULL, &r);
        int status = r.status;
        rf_resp_free(&r);
        if (status == 0) return; /* the server is gone */
        if (status == 201) l->acked[c][l->n_acked[c]++] = i;
        else if (status != 503) l->bad_status[c] = status; /* 503: shutting down is fine */
    }
}

static void crash_one(int idx, void *ctx) {
    struct load *l = ctx;
    if (idx > 0) {
        client(idx, l);
        return;
    }
    rf_t_sleep_ms(400); /* let the load build, then pull the plug */
    assert_int_equal(rf_server_signal(&l->e->srv, SIGKILL), 0);
}

static void test_kill_during_load(void **state) {
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    struct load *l = calloc(1, sizeof *l);
    l->e = &e;
    for (int c = 0; c < CLIENTS; c++) RID(l->user[c], "crash");
    assert_int_equal(rf_parallel_fn(CLIENTS + 1, crash_one, l), 0);
    rf_server_wait(&e.srv, 10000); /* reap the killed process */
    /* restart on the same store: recovery, then every acknowledged grant */
    assert_int_equal(rf_server_start(e.db, NULL, &e.srv), 0);
    int acked = 0;
    for (int c = 0; c < CLIENTS; c++) {
        assert_int_equal(l->bad_status[c], 0);
        for (int k = 0; k < l->n_acked[c]; k++) {
            char path[256], key[16];
            snprintf(key, sizeof key, "k%d", l->acked[c][k]);
            ent_path(path, sizeof path, l->user[c], key);
            struct rf_t_resp r;
            env_req(&e, "GET", path, e.service, NULL, NULL, &r);
            if (r.status != 200) fprintf(stderr, "lost acknowledged grant %s\n", path);
            assert_int_equal(r.status, 200);
            rf_resp_free(&r);
            acked++;
        }
    }
    assert_true(acked > 0); /* the kill came during the load, not before it */
    fprintf(stderr, "crash test: %d acknowledged grants, all present after restart\n", acked);
    free(l);
    env_stop(&e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_during_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
