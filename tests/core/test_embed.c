/*
 * test_embed.c - what a program embedding the library relies on, on the
 * back end named by RF_TEST_DB.
 *
 * Proves:
 *  - misuse is answered, never aborts: a NULL handle, request or result, an
 *    op outside RF_OPS, an Idempotency-Key without a scope or longer than
 *    255 characters, a done-less rf_op_submit, a bad sweep interval or
 *    sweep set, bad rf_idem_hash counts, NULL outputs of the key and check
 *    functions are RF_ERR_INVALID (with the fault's detail where there is
 *    one), and a refused keyed credit moves no money; void functions given
 *    a NULL handle do nothing; a queue bound past its range is clamped;
 *  - an Idempotency-Key replay fills the typed result as the first run did
 *    (a credit, a transfer, an account; through rf_op_run and rf_op_submit)
 *    and moves the money once;
 *  - rf_sweep() voids a hold past its expires_at and deletes an
 *    Idempotency-Key record past its retention, and says how many;
 *  - rf_options.sweep_interval_ms does both with no call at all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "racefree.h"
#include "tamper.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"

/* How long the sweep thread's test waits for what it must do: far above
 * the 50 ms interval, so only a sweep that never runs fails it. */
#define SWEEP_WAIT_MS_MAX 20000

static int64_t wall_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* The sweep tests' handles: records kept 500 ms; swept by the caller, or
 * by the handle's own thread every 50 ms. */
static int setup_sweep_call(void **state) {
    *state = &rf_core_fx;
    struct rf_options opt = {.idem_retention_ms = 500};
    return rf_core_fixture_open(&rf_core_fx, &opt);
}

static int setup_sweep_thread(void **state) {
    *state = &rf_core_fx;
    struct rf_options opt = {.idem_retention_ms = 500, .sweep_interval_ms = 50};
    return rf_core_fixture_open(&rf_core_fx, &opt);
}

static char *new_account(rf *db, char *id, size_t cap) {
    rf_rand_id("emb", id, cap);
    struct rf_account_res res;
    assert_int_equal(
        rf_account_create(db, &(struct rf_account_req){.id = id, .currency = "EUR"}, &res, NULL),
        RF_OK);
    rf_account_clear(&res.account);
    return id;
}

static int64_t available(rf *db, const char *id) {
    struct rf_account a;
    assert_int_equal(rf_account_get(db, id, &a), RF_OK);
    int64_t v = a.available;
    rf_account_clear(&a);
    return v;
}

/* Rows of idempotency_keys for (scope, key), counted behind the library. */
static int64_t idem_rows(const char *url, const char *scope, const char *key) {
    int64_t n = -1;
    assert_int_equal(tamper_try(url,
                                "UPDATE idempotency_keys SET status = status"
                                " WHERE key_id = $1 AND idem_key = $2",
                                scope, key, &n),
                     RF_OK);
    return n;
}

/* What rf_op_submit's callback heard: how often, and the last answer.
 * It may run on an executor thread: n is published last (release), so a
 * reader that sees it (acquire) sees err and the call's result too. */
struct heard {
    atomic_int n;
    atomic_int err;
};

static void done_count(void *arg, rf_err err) {
    struct heard *h = arg;
    atomic_store_explicit(&h->err, (int)err, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->n, 1, memory_order_release);
}

static int heard_n(struct heard *h) { return atomic_load_explicit(&h->n, memory_order_acquire); }

static void test_misuse_at_the_door(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    char acc[64];
    new_account(db, acc, sizeof acc);
    struct rf_transfer_res tr;
    struct rf_account out;
    struct rf_fault fault;
    struct rf_account_ref ref = {acc};
    /* the one door: each argument it cannot run without */
    assert_int_equal(rf_op_run(NULL, RF_OP_ACCOUNT_GET, &ref, &out, NULL, &fault), RF_ERR_INVALID);
    assert_string_equal(fault.detail, "db is NULL");
    assert_int_equal(rf_op_run(db, RF_OP_ACCOUNT_GET, NULL, &out, NULL, &fault), RF_ERR_INVALID);
    assert_string_equal(fault.detail, "req is NULL");
    assert_int_equal(rf_op_run(db, RF_OP_ACCOUNT_GET, &ref, NULL, NULL, &fault), RF_ERR_INVALID);
    assert_string_equal(fault.detail, "res is NULL");
    assert_int_equal(rf_op_run(db, RF_OP__COUNT, &ref, &out, NULL, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_op_run(db, (rf_op)-1, &ref, &out, NULL, &fault), RF_ERR_INVALID);
    assert_int_equal(fault.code, RF_ERR_INVALID);
    /* the typed wrappers reach it with their NULLs */
    assert_int_equal(rf_account_get(db, acc, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_credit_apply(db, acc, 5, NULL, NULL, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_transfer_create(db, NULL, &tr, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_account_create(NULL, NULL, NULL, NULL), RF_ERR_INVALID);
    /* an Idempotency-Key without its scope, or too long: refused, no money moves */
    struct rf_idem idem = {.key = "k-no-scope"};
    assert_int_equal(rf_credit_apply(db, acc, 5, NULL, &tr, &idem), RF_ERR_INVALID);
    char long_key[300];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    idem = (struct rf_idem){.key = long_key, .api_key_id = "app"};
    assert_int_equal(rf_credit_apply(db, acc, 5, NULL, &tr, &idem), RF_ERR_INVALID);
    idem = (struct rf_idem){.key = "", .api_key_id = "app"};
    assert_int_equal(rf_credit_apply(db, acc, 5, NULL, &tr, &idem), RF_ERR_INVALID);
    assert_int_equal(available(db, acc), 0);
}

static void test_misuse_elsewhere(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    char acc[64];
    new_account(db, acc, sizeof acc);
    struct rf_transfer_res tr;
    struct rf_account out;
    struct rf_account_ref ref = {acc};
    struct rf_idem idem = {.key = "k", .api_key_id = "app"};
    /* submit: no callback is refused; the rest is told to the callback once */
    struct heard seen = {0, 0};
    assert_int_equal(rf_op_submit(db, RF_OP_ACCOUNT_GET, &ref, &out, NULL, NULL, NULL, NULL),
                     RF_ERR_INVALID);
    assert_int_equal(rf_op_submit(db, RF_OP__COUNT, &ref, &out, NULL, NULL, done_count, &seen),
                     RF_OK);
    assert_int_equal(heard_n(&seen), 1); /* on this thread, before it returned */
    assert_int_equal(atomic_load(&seen.err), RF_ERR_INVALID);
    assert_int_equal(rf_op_submit(NULL, RF_OP_CREDIT_APPLY, &ref, &tr, NULL, NULL, done_count,
                                  &seen),
                     RF_OK);
    assert_int_equal(heard_n(&seen), 2);
    assert_int_equal(atomic_load(&seen.err), RF_ERR_INVALID);
    /* the rest of the API's arguments */
    assert_int_equal(rf_idem_hash(NULL, 0, NULL, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_idem_hash(&idem, RF_IDEM_HASH_PARTS_MAX + 1, NULL, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_idem_hash(&idem, -1, NULL, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_idem_hash(&idem, 2, NULL, NULL), RF_ERR_INVALID);
    bool created;
    char secret[RF_KEY_SECRET_BYTES];
    assert_int_equal(rf_key_bootstrap(db, NULL, secret, &created), RF_ERR_INVALID);
    assert_int_equal(rf_key_authenticate(db, "rfk_x_y", NULL), RF_ERR_INVALID);
    rf_err err = RF_OK;
    assert_true(rf_key_authenticate_cached(NULL, "rfk_x_y", NULL, &err));
    assert_int_equal(err, RF_ERR_INVALID);
    assert_int_equal(rf_key_count_active(db, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_ledger_check(db, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_transfer_expire(NULL, 10, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_idem_purge(NULL, 10, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_ready(NULL), RF_ERR_INVALID);
    assert_int_equal(rf_sweep(NULL, RF_SWEEP_ALL, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_sweep(db, 0, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_sweep(db, RF_SWEEP_ALL + 1, NULL), RF_ERR_INVALID); /* no such bit */
    assert_false(rf_err_parse(NULL, NULL));
    assert_int_equal(rf_open(rf_core_fx.url, NULL, NULL), RF_ERR_INVALID);
    rf *other = (rf *)&rf_core_fx; /* must be overwritten */
    struct rf_options bad = {.sweep_interval_ms = RF_SWEEP_INTERVAL_MS_MIN - 1};
    assert_int_equal(rf_open(rf_core_fx.url, &bad, &other), RF_ERR_INVALID);
    assert_null(other);
    /* a bound past its range is clamped, not an allocation of it */
    struct rf_options big = {.queue_ops_max = 1 << 30, .no_migrate = true};
    assert_int_equal(rf_open(rf_core_fx.url, &big, &other), RF_OK);
    struct rf_stats big_st;
    rf_stats_get(other, &big_st);
    assert_int_equal(big_st.queue_ops_max, 4096);
    rf_close(other);
    /* void functions with a NULL handle do nothing */
    struct rf_stats st;
    memset(&st, 0xff, sizeof st);
    rf_stats_get(NULL, &st);
    assert_int_equal(st.batches, 0);
    rf_stats_get(db, NULL);
    rf_shutdown_begin(NULL);
    rf_close(NULL);
    assert_null(rf_backend_name(NULL));
    /* and the handle still works */
    assert_int_equal(rf_credit_apply(db, acc, 5, NULL, &tr, NULL), RF_OK);
    rf_transfer_clear(&tr.transfer);
    assert_int_equal(available(db, acc), 5);
}

/* The first run's result and its replay's must be the same transfer. */
static void assert_same_transfer(const struct rf_transfer *a, const struct rf_transfer *b) {
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->debit_account, b->debit_account);
    assert_string_equal(a->credit_account, b->credit_account);
    assert_int_equal(a->amount_minor, b->amount_minor);
    assert_int_equal(a->posted_amount_minor, b->posted_amount_minor);
    assert_string_equal(a->currency, b->currency);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->created_at_ms, b->created_at_ms);
    assert_int_equal(a->version, b->version);
    assert_string_equal(a->metadata_json ? a->metadata_json : "",
                        b->metadata_json ? b->metadata_json : "");
}

static void keyed(struct rf_idem *idem, const char *key) {
    *idem = (struct rf_idem){.key = key, .api_key_id = "embed-test"};
}

static void test_replay_fills_result(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    char a[64], b[64], kc[80], kt[80];
    new_account(db, a, sizeof a);
    new_account(db, b, sizeof b);
    snprintf(kc, sizeof kc, "credit-%s", a);
    snprintf(kt, sizeof kt, "transfer-%s", a);
    struct rf_idem idem;
    struct rf_transfer_res first, again;
    keyed(&idem, kc);
    assert_int_equal(rf_credit_apply(db, a, 700, "bonus", &first, &idem), RF_OK);
    assert_false(idem.replayed);
    keyed(&idem, kc);
    assert_int_equal(rf_credit_apply(db, a, 700, "bonus", &again, &idem), RF_OK);
    assert_true(idem.replayed);
    assert_same_transfer(&first.transfer, &again.transfer);
    assert_non_null(again.transfer.metadata_json);
    rf_transfer_clear(&again.transfer);
    /* through rf_op_submit too */
    struct rf_credit_req creq = {a, 700, "bonus"};
    struct heard seen = {0, 0};
    keyed(&idem, kc);
    assert_int_equal(rf_op_submit(db, RF_OP_CREDIT_APPLY, &creq, &again, &idem, NULL, done_count,
                                  &seen),
                     RF_OK);
    for (int i = 0; i < 2000 && heard_n(&seen) == 0; i++) rf_t_sleep_ms(10);
    assert_int_equal(heard_n(&seen), 1);
    assert_int_equal(atomic_load(&seen.err), RF_OK);
    assert_true(idem.replayed);
    assert_same_transfer(&first.transfer, &again.transfer);
    rf_transfer_clear(&again.transfer);
    rf_transfer_clear(&first.transfer);
    assert_int_equal(available(db, a), 700); /* credited once */
    /* a transfer */
    struct rf_transfer_req t = {.debit_account = a, .credit_account = b, .amount_minor = 300,
                                .currency = "EUR"};
    keyed(&idem, kt);
    assert_int_equal(rf_transfer_create(db, &t, &first, &idem), RF_OK);
    keyed(&idem, kt);
    assert_int_equal(rf_transfer_create(db, &t, &again, &idem), RF_OK);
    assert_true(idem.replayed);
    assert_same_transfer(&first.transfer, &again.transfer);
    rf_transfer_clear(&first.transfer);
    rf_transfer_clear(&again.transfer);
    assert_int_equal(available(db, a), 400);
    assert_int_equal(available(db, b), 300);
}

/* An account's replay: created stays what the first run said. */
static void test_replay_fills_account(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    char ka[80];
    rf_rand_id("acct", ka, sizeof ka);
    struct rf_idem idem;
    struct rf_account_req areq = {.id = ka, .currency = "USD", .metadata_json = "{\"n\":1}"};
    struct rf_account_res r1, r2;
    keyed(&idem, ka);
    assert_int_equal(rf_account_create(db, &areq, &r1, &idem), RF_OK);
    keyed(&idem, ka);
    assert_int_equal(rf_account_create(db, &areq, &r2, &idem), RF_OK);
    assert_true(idem.replayed);
    assert_true(r1.created && r2.created);
    assert_string_equal(r1.account.id, r2.account.id);
    assert_string_equal(r2.account.currency, "USD");
    assert_string_equal(r2.account.metadata_json, r1.account.metadata_json);
    assert_int_equal(r1.account.created_at_ms, r2.account.created_at_ms);
    assert_int_equal(r1.account.version, r2.account.version);
    rf_account_clear(&r1.account);
    rf_account_clear(&r2.account);
}

/* A hold on a new account, expiring ~1 s from now; its id in hold. */
static void hold_expiring(rf *db, char *hold, size_t cap) {
    char a[64], b[64];
    new_account(db, a, sizeof a);
    new_account(db, b, sizeof b);
    struct rf_transfer_res res;
    assert_int_equal(rf_credit_apply(db, a, 100, NULL, &res, NULL), RF_OK);
    rf_transfer_clear(&res.transfer);
    struct rf_transfer_req req = {.debit_account = a, .credit_account = b, .amount_minor = 40,
                                  .currency = "EUR", .pending = true,
                                  .expires_at_ms = wall_ms() + 1000};
    assert_int_equal(rf_transfer_create(db, &req, &res, NULL), RF_OK);
    assert_int_equal(res.transfer.status, RF_TRANSFER_PENDING);
    snprintf(hold, cap, "%s", res.transfer.id);
    rf_transfer_clear(&res.transfer);
}

static enum rf_transfer_status status_of(rf *db, const char *id) {
    struct rf_transfer t;
    assert_int_equal(rf_transfer_get(db, id, &t), RF_OK);
    enum rf_transfer_status s = t.status;
    rf_transfer_clear(&t);
    return s;
}

/* A keyed credit whose record is kept retention_ms (the handle's option). */
static void keyed_credit(rf *db, const char *key) {
    char a[64];
    new_account(db, a, sizeof a);
    struct rf_idem idem;
    keyed(&idem, key);
    struct rf_transfer_res res;
    assert_int_equal(rf_credit_apply(db, a, 1, NULL, &res, &idem), RF_OK);
    rf_transfer_clear(&res.transfer);
}

static void test_sweep_call(void **state) {
    (void)state;
    struct rf_core_fixture fx = rf_core_fx;
    char hold[RF_ID_BYTES], key[64];
    rf_rand_id("sweep-call", key, sizeof key);
    hold_expiring(fx.db, hold, sizeof hold);
    keyed_credit(fx.db, key);
    assert_int_equal(idem_rows(fx.url, "embed-test", key), 1);
    int64_t past = wall_ms() + 1100;
    while (wall_ms() <= past) rf_t_sleep_ms(20);
    /* nothing happens on its own: both wait for a sweep */
    assert_int_equal(status_of(fx.db, hold), RF_TRANSFER_PENDING);
    assert_int_equal(idem_rows(fx.url, "embed-test", key), 1);
    struct rf_sweep_stats st;
    assert_int_equal(rf_sweep(fx.db, RF_SWEEP_EXPIRE_HOLDS, &st), RF_OK);
    assert_true(st.holds_voided >= 1);
    assert_int_equal(st.idem_purged, 0); /* not asked */
    assert_int_equal(status_of(fx.db, hold), RF_TRANSFER_VOIDED);
    assert_int_equal(idem_rows(fx.url, "embed-test", key), 1);
    assert_int_equal(rf_sweep(fx.db, RF_SWEEP_PURGE_IDEM, &st), RF_OK);
    assert_true(st.idem_purged >= 1);
    assert_int_equal(st.holds_voided, 0);
    assert_int_equal(idem_rows(fx.url, "embed-test", key), 0);
}

static void test_sweep_thread(void **state) {
    (void)state;
    struct rf_core_fixture fx = rf_core_fx;
    char hold[RF_ID_BYTES], key[64];
    rf_rand_id("sweep-thread", key, sizeof key);
    hold_expiring(fx.db, hold, sizeof hold);
    keyed_credit(fx.db, key);
    int64_t give_up = wall_ms() + SWEEP_WAIT_MS_MAX;
    bool voided = false, purged = false;
    while ((!voided || !purged) && wall_ms() < give_up) {
        rf_t_sleep_ms(50);
        voided = status_of(fx.db, hold) == RF_TRANSFER_VOIDED;
        purged = idem_rows(fx.url, "embed-test", key) == 0;
    }
    assert_true(voided);
    assert_true(purged);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        rf_core_unit_test(test_misuse_at_the_door),
        rf_core_unit_test(test_misuse_elsewhere),
        rf_core_unit_test(test_replay_fills_result),
        rf_core_unit_test(test_replay_fills_account),
        cmocka_unit_test_setup_teardown(test_sweep_call, setup_sweep_call, rf_core_teardown),
        cmocka_unit_test_setup_teardown(test_sweep_thread, setup_sweep_thread, rf_core_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
