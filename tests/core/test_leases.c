/*
 * test_leases.c - the lease fence and payout_batch_run at the library level,
 * on the back end in RF_TEST_DB.
 *
 * Proves: lease_fence_tx passes only the current token of a lease that is
 * not released (an expired lease nobody took is still its holder's), and it
 * holds the lease row until its transaction ends: a takeover's acquire from
 * another handle (another process's connection) started while a fenced
 * transaction is open returns only after that transaction committed, so no
 * newer token is issued between a fence and its write's commit (the
 * read-then-write the fence would otherwise be). And payout_batch_run's
 * identity: a second run with the same run_key returns the same batch, with
 * other terms it is RF_ERR_IDEM_REUSED, a bad spec is RF_ERR_INVALID naming
 * the field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>

#include "core/core.h"
#include "core/flows.h"
#include "racefree.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"

#define HOLD_OPEN_MS 300

static int64_t acquire(rf *db, const char *name, int64_t ttl_ms, rf_err want) {
    struct rf_lease_req req = {.name = name, .holder = "core-test", .ttl_ms = ttl_ms};
    struct rf_lease l;
    struct rf_fault f;
    assert_int_equal(rf_op_run(db, RF_OP_LEASE_ACQUIRE, &req, &l, NULL, &f), want);
    return want ? 0 : l.token;
}

struct fence_call {
    const char *name;
    int64_t token;
    int hold_ms;              /* stay in the transaction this long after the fence */
    atomic_int fenced;        /* the fence passed; the transaction is still open */
    /* the hold is over: the transaction function returns and the executor
     * commits next. The flag, not core_write's return, is what the takeover
     * is compared with: a takeover that waited for the commit returns after
     * it was set; one that did not wait returns during the hold. (core_write
     * returns only after the commit, so a flag set there may trail the
     * takeover's return on a slow machine.) */
    atomic_int held;
    rf_err err;
};

static rf_err fence_tx(struct rf_tx *tx, void *ctx) {
    struct fence_call *c = ctx;
    rf_err err = lease_fence_tx(tx, c->name, c->token);
    if (!err && c->hold_ms) {
        atomic_store(&c->fenced, 1);
        rf_t_sleep_ms(c->hold_ms);
        atomic_store(&c->held, 1);
    }
    return err;
}

static rf_err fence(rf *db, const char *name, int64_t token) {
    struct fence_call c = {.name = name, .token = token};
    return core_write(db, "test_fence", 0, fence_tx, &c);
}

static void *fence_thread(void *arg) {
    struct fence_call *c = arg;
    c->err = core_write(rf_core_fx.db, "test_fence", 0, fence_tx, c);
    return NULL;
}

static void test_fence_passes_only_the_current_token(void **state) {
    (void)state;
    char name[64];
    rf_rand_id("fence", name, sizeof name);
    rf *db = rf_core_fx.db;
    assert_int_equal(fence(db, name, 1), RF_ERR_STALE_LEASE); /* never acquired */
    int64_t t = acquire(db, name, 60000, RF_OK);
    assert_int_equal(fence(db, name, t), RF_OK);
    assert_int_equal(fence(db, name, t + 1), RF_ERR_STALE_LEASE);
    struct rf_lease_req rel = {.name = name, .token = t};
    struct rf_lease l;
    assert_int_equal(rf_op_run(db, RF_OP_LEASE_RELEASE, &rel, &l, NULL, NULL), RF_OK);
    assert_int_equal(fence(db, name, t), RF_ERR_STALE_LEASE); /* released */
    int64_t t2 = acquire(db, name, 1, RF_OK);
    assert_true(t2 == t + 1);
    rf_t_sleep_ms(5);
    assert_int_equal(fence(db, name, t2), RF_OK); /* expired, nobody took it */
}

static void test_fence_blocks_a_takeover_until_commit(void **state) {
    (void)state;
    char name[64];
    rf_rand_id("takeover", name, sizeof name);
    rf *other = NULL;
    assert_int_equal(rf_open(rf_core_fx.url, NULL, &other), RF_OK);
    int64_t t = acquire(rf_core_fx.db, name, 1, RF_OK);
    rf_t_sleep_ms(5); /* expired: free for a takeover */
    struct fence_call c = {.name = name, .token = t, .hold_ms = HOLD_OPEN_MS};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fence_thread, &c), 0);
    while (!atomic_load(&c.fenced)) rf_t_sleep_ms(1);
    int64_t t2 = acquire(other, name, 60000, RF_OK);
    bool after_hold = atomic_load(&c.held) != 0;
    pthread_join(th, NULL);
    assert_int_equal(c.err, RF_OK);
    if (!after_hold) fail_msg("the takeover's acquire returned while the fenced transaction was open");
    assert_true(t2 == t + 1);
    assert_int_equal(fence(rf_core_fx.db, name, t), RF_ERR_STALE_LEASE);
    rf_close(other);
}

static void test_batch_run_identity(void **state) {
    (void)state;
    char run_key[64], id1[RF_ID_BYTES], id2[RF_ID_BYTES];
    rf_rand_id("run", run_key, sizeof run_key);
    struct payout_batch_spec s = {.currency = "QQQ", .min_amount_minor = 100, .run_key = run_key,
                                  .holder = "core-test"};
    struct rf_fault f;
    assert_int_equal(payout_batch_run(rf_core_fx.db, &s, id1, &f), RF_OK);
    assert_int_equal(payout_batch_run(rf_core_fx.db, &s, id2, &f), RF_OK);
    assert_string_equal(id1, id2);
    struct rf_payout_batch_ref ref = {.id = id1};
    struct rf_payout_batch b;
    assert_int_equal(rf_op_run(rf_core_fx.db, RF_OP_PAYOUT_BATCH_GET, &ref, &b, NULL, NULL), RF_OK);
    assert_int_equal(b.status, RF_PAYOUT_BATCH_COMPLETED);
    s.min_amount_minor = 101;
    assert_int_equal(payout_batch_run(rf_core_fx.db, &s, id2, &f), RF_ERR_IDEM_REUSED);
    s.min_amount_minor = 0;
    assert_int_equal(payout_batch_run(rf_core_fx.db, &s, id2, &f), RF_ERR_INVALID);
    assert_string_equal(f.param, "min_amount_minor");
    /* The lease is free again after every run, whatever its outcome. */
    struct rf_lease_req get = {.name = "payouts"};
    struct rf_lease l;
    assert_int_equal(rf_op_run(rf_core_fx.db, RF_OP_LEASE_GET, &get, &l, NULL, NULL), RF_OK);
    assert_int_equal(l.status, RF_LEASE_RELEASED);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fence_passes_only_the_current_token),
        cmocka_unit_test(test_fence_blocks_a_takeover_until_commit),
        cmocka_unit_test(test_batch_run_identity),
    };
    return cmocka_run_group_tests(tests, rf_core_setup, rf_core_teardown);
}
