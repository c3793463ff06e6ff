/*
 * test_crash.c - a crash loses nothing that was acknowledged.
 *
 * 16 client threads grant entitlements as fast as they can while one more
 * thread kills the server with SIGKILL in the middle of the load (no
 * shutdown, no drain: a crash, or a power cut as far as the process knows).
 * After a restart on the same store, every grant that was answered 201 must
 * be there: the executor answers only after COMMIT returned (group commit,
 * --sync full on SQLite; a durable commit on PostgreSQL). Grants that got no
 * answer may or may not exist; either is correct; no other grant exists (the
 * user's list counts exactly the acknowledged ones and the unanswered ones
 * found). Worker threads only record; the main thread asserts.
 *
 * And a crash at the worst instant for an Idempotency-Key: the process exits
 * right after the commit of a keyed credit (a test hook), before answering.
 * The client retries with the same key on the restarted server and gets the
 * original answer replayed, and the balance moved once: the key's record
 * was committed with the effect. A record written in a later transaction
 * would be missing, and the retry would credit again.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "http_env.h"

#define CLIENTS 16
#define GRANTS_MAX 400

struct load {
    struct env *e;
    char user[CLIENTS][64];
    int acked[CLIENTS][GRANTS_MAX]; /* key numbers answered 201 */
    int n_acked[CLIENTS];
    int maybe[CLIENTS][GRANTS_MAX]; /* sent without a definite answer: may exist */
    int n_maybe[CLIENTS];
    bool cut_off[CLIENTS];          /* this client saw the server go away */
    int bad_status[CLIENTS];        /* an answer other than 201, 503 or none */
    int kill_rc;                    /* rf_server_signal's answer, checked by the main thread */
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
        if (status == 201) {
            l->acked[c][l->n_acked[c]++] = i;
            continue;
        }
        l->maybe[c][l->n_maybe[c]++] = i;
        if (status == 0) { /* the server is gone: this grant may or may not exist */
            l->cut_off[c] = true;
            return;
        }
        if (status != 503) l->bad_status[c] = status; /* 503: shutting down is fine */
    }
}

/* Worker threads only record; every assertion runs on the main thread. */
static void crash_one(int idx, void *ctx) {
    struct load *l = ctx;
    if (idx > 0) {
        client(idx, l);
        return;
    }
    rf_t_sleep_ms(400); /* let the load build, then pull the plug */
    l->kill_rc = rf_server_signal(&l->e->srv, SIGKILL);
}

static int grant_status(struct env *e, const char *user, int k) {
    char path[256], key[16];
    snprintf(key, sizeof key, "k%d", k);
    ent_path(path, sizeof path, user, key);
    struct rf_t_resp r;
    env_req(e, "GET", path, e->service, NULL, NULL, &r);
    int status = r.status;
    rf_resp_free(&r);
    if (status != 200 && status != 404) fail_msg("GET %s: HTTP %d", path, status);
    return status;
}

/* Every acknowledged grant survived; an unanswered one may have; nothing
 * else exists. Returns the acknowledged grants. */
static int check_client(struct env *e, const struct load *l, int c) {
    assert_int_equal(l->bad_status[c], 0);
    for (int k = 0; k < l->n_acked[c]; k++)
        if (grant_status(e, l->user[c], l->acked[c][k]) != 200)
            fail_msg("lost acknowledged grant %s k%d", l->user[c], l->acked[c][k]);
    int present = l->n_acked[c];
    for (int k = 0; k < l->n_maybe[c]; k++)
        present += grant_status(e, l->user[c], l->maybe[c][k]) == 200;
    assert_int_equal(list_all_count(e, l->user[c], "all"), present);
    return l->n_acked[c];
}

static void test_kill_during_load(void **state) {
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    struct load *l = calloc(1, sizeof *l);
    assert_non_null(l);
    l->e = &e;
    for (int c = 0; c < CLIENTS; c++) RID(l->user[c], "crash");
    assert_int_equal(rf_parallel_fn(CLIENTS + 1, crash_one, l), 0);
    assert_int_equal(l->kill_rc, 0);
    rf_server_wait(&e.srv, 10000); /* reap the killed process */
    /* restart on the same store: recovery, then every acknowledged grant */
    assert_int_equal(rf_server_start(e.db, NULL, &e.srv), 0);
    int acked = 0, cut_off = 0;
    for (int c = 0; c < CLIENTS; c++) {
        acked += check_client(&e, l, c);
        cut_off += l->cut_off[c];
    }
    /* The kill came during the load: some grants were acknowledged before
     * it, and clients were still sending when it came. */
    fprintf(stderr, "crash test: %d acknowledged grants, all present after restart; %d of %d"
                    " clients cut off\n", acked, cut_off, CLIENTS);
    assert_true(acked > 0);
    assert_true(cut_off > 0);
    free(l);
    env_stop(&e);
}

static void test_crash_after_keyed_commit(void **state) {
    (void)state;
    struct env e;
    env_start(&e, true, NULL);
    char acct[64], cur[4], path[256], ik[160], hook[128];
    rand_currency(cur);
    RID(acct, "crash-wallet");
    env_account_create(&e, acct, cur, false);
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", acct);
    idem_hdr_fresh(ik, sizeof ik);
    const char *hdrs[] = {ik, NULL};
    const char *body = "{\"amount_minor\": 1200}";
    struct rf_t_resp r;
    snprintf(hook, sizeof hook, "{\"op\": \"credit_apply\"}");
    env_req(&e, "POST", "/v1/_test/crash-after-commit", e.admin, hook, NULL, &r);
    RF_ASSERT_STATUS(&r, 204);
    rf_resp_free(&r);
    env_req(&e, "POST", path, e.service, body, hdrs, &r);
    if (r.status != 0)
        fail_msg("the credit was answered (HTTP %d) though the server exits after its commit",
                 r.status);
    rf_resp_free(&r);
    assert_int_equal(rf_server_wait(&e.srv, 10000), RF_TEST_CRASH_EXIT_CODE);
    assert_int_equal(rf_server_start(e.db, NULL, &e.srv), 0);
    env_req(&e, "POST", path, e.service, body, hdrs, &r);
    RF_ASSERT_STATUS(&r, 201);
    if (!resp_replayed(&r))
        fail_msg("the retry ran the credit again instead of replaying it: %s", r.body);
    rf_resp_free(&r);
    struct bal b = env_balance(&e, acct);
    assert_int_equal(b.posted, 1200);
    env_stop(&e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_during_load),
        cmocka_unit_test(test_crash_after_keyed_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
