/*
 * test_submit.c - rf_op_submit, the door that does not wait, on the back end
 * in RF_TEST_DB:
 *  - one thread submits 1000 keyed credits (to 8 accounts) without waiting
 *    for any: every callback arrives exactly once, on an executor thread,
 *    each with its own result, and each balance holds its credits exactly
 *    once (the ledger stays balanced);
 *  - a key submitted again in the same flight is answered as rf_op_run
 *    answers it (a replay of the first result, or in flight; another body
 *    with the key: reused), and the effect happens once;
 *  - a request the validator refuses completes at once, on the calling
 *    thread, with the same code and fault rf_op_run gives.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "racefree.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"

#define N_CREDITS 1000
#define WAIT_MS 30000 /* a generous bound: all callbacks arrive well within it */
#define MORE_MS 200    /* how long a test watches for a callback too many */

/* Counts callbacks; the submitting thread waits on it at the end only. */
struct flight {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
};

/* One submitted credit: the memory rf_op_submit borrows until its callback. */
struct call {
    struct flight *f;
    struct rf_credit_req req;
    struct rf_transfer_res res;
    struct rf_idem idem;
    struct rf_fault fault;
    char key[64];
    int calls;          /* under f->mu */
    rf_err err;
    bool replayed;
    pthread_t thread;   /* who ran the callback */
};

static void flight_init(struct flight *f) {
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->done = 0;
}

static void flight_destroy(struct flight *f) {
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
}

/* The callback: short, no rf_* call; it records what it was told. */
static void on_done(void *arg, rf_err err) {
    struct call *c = arg;
    pthread_mutex_lock(&c->f->mu);
    c->calls++;
    c->err = err;
    c->replayed = c->idem.replayed;
    c->thread = pthread_self();
    c->f->done++;
    pthread_cond_broadcast(&c->f->cv);
    pthread_mutex_unlock(&c->f->mu);
}

/* Waits at most ms until n callbacks arrived; returns how many did. */
static int flight_wait(struct flight *f, int n, int ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->mu);
    while (f->done < n && pthread_cond_timedwait(&f->cv, &f->mu, &until) == 0) {
    }
    int done = f->done;
    pthread_mutex_unlock(&f->mu);
    return done;
}

static void make_account(char *id, size_t cap) {
    rf_rand_id("sub", id, cap);
    struct rf_account_req req = {.id = id, .currency = "USD", .kind = RF_ACCOUNT_USER};
    struct rf_account_res res;
    assert_int_equal(rf_account_create(rf_core_fx.db, &req, &res, NULL), RF_OK);
    rf_account_clear(&res.account);
}

static int64_t balance(const char *id) {
    struct rf_account a;
    assert_int_equal(rf_account_get(rf_core_fx.db, id, &a), RF_OK);
    int64_t posted = a.posted;
    rf_account_clear(&a);
    return posted;
}

static void check_ledger(void) {
    struct rf_ledger_check c;
    assert_int_equal(rf_ledger_check(rf_core_fx.db, &c), RF_OK);
    assert_int_equal(c.currencies_unbalanced, 0);
    assert_int_equal(c.accounts_mismatched, 0);
    assert_true(c.clean);
}

/* A keyed credit of amount to account, hashed as the server hashes it. */
static void call_init(struct call *c, struct flight *f, const char *account, const char *key,
                      int64_t amount) {
    memset(c, 0, sizeof *c);
    c->f = f;
    snprintf(c->key, sizeof c->key, "%s", key);
    c->req = (struct rf_credit_req){.id = account, .amount_minor = amount, .reason = "submit"};
    c->idem = (struct rf_idem){.key = c->key, .api_key_id = "k"};
    char body[32];
    snprintf(body, sizeof body, "%lld", (long long)amount);
    rf_core_idem_hash(&c->idem, "POST", account, body, strlen(body));
}

static void submit(struct call *c, bool with_fault) {
    rf_op_submit(rf_core_fx.db, RF_OP_CREDIT_APPLY, &c->req, &c->res, &c->idem,
                 with_fault ? &c->fault : NULL, on_done, c);
}

#define N_ACCOUNTS 8

static void test_many_credits_one_thread(void **state) {
    (void)state;
    char accounts[N_ACCOUNTS][64], prefix[32];
    for (int a = 0; a < N_ACCOUNTS; a++) make_account(accounts[a], sizeof accounts[a]);
    rf_rand_id("key", prefix, sizeof prefix);
    struct call *calls = calloc(N_CREDITS, sizeof *calls);
    assert_non_null(calls);
    struct flight f;
    flight_init(&f);
    int64_t want[N_ACCOUNTS] = {0};
    for (int i = 0; i < N_CREDITS; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s-%d", prefix, i);
        call_init(&calls[i], &f, accounts[i % N_ACCOUNTS], key, 1 + i % 3);
        want[i % N_ACCOUNTS] += 1 + i % 3;
        submit(&calls[i], i % 2 == 0); /* half without a fault: it may be NULL */
    }
    assert_int_equal(flight_wait(&f, N_CREDITS, WAIT_MS), N_CREDITS);
    struct rf_stats st;
    rf_stats_get(rf_core_fx.db, &st);
    print_message("%d credits in %lld batches (%lld retries)\n", N_CREDITS, (long long)st.batches,
                  (long long)st.retries);
    for (int i = 0; i < N_CREDITS; i++) {
        assert_int_equal(calls[i].calls, 1);
        assert_int_equal(calls[i].err, RF_OK);
        assert_false(calls[i].replayed);
        /* answered after its COMMIT, by the executor: never by the submitter */
        assert_false(pthread_equal(calls[i].thread, pthread_self()));
        assert_int_equal(calls[i].res.transfer.amount_minor, 1 + i % 3);
        assert_string_equal(calls[i].res.transfer.credit_account, accounts[i % N_ACCOUNTS]);
        for (int j = 0; j < i; j += 97) /* each its own transfer */
            assert_string_not_equal(calls[i].res.transfer.id, calls[j].res.transfer.id);
        rf_transfer_clear(&calls[i].res.transfer);
    }
    for (int a = 0; a < N_ACCOUNTS; a++) assert_true(balance(accounts[a]) == want[a]);
    /* nothing more arrives later */
    assert_int_equal(flight_wait(&f, N_CREDITS + 1, MORE_MS), N_CREDITS);
    check_ledger();
    flight_destroy(&f);
    free(calls);
}

/* In one flight: a key, the same request again, the key with another body;
 * then (after the flight) the key again, through both doors. */
static void test_replay_in_the_same_flight(void **state) {
    (void)state;
    char account[64], key[32];
    make_account(account, sizeof account);
    rf_rand_id("key", key, sizeof key);
    struct flight f;
    flight_init(&f);
    struct call c[4];
    call_init(&c[0], &f, account, key, 5);
    call_init(&c[1], &f, account, key, 5);
    call_init(&c[2], &f, account, key, 7);
    for (int i = 0; i < 3; i++) submit(&c[i], true);
    assert_int_equal(flight_wait(&f, 3, WAIT_MS), 3);
    assert_int_equal(c[0].err, RF_OK);
    assert_false(c[0].replayed);
    /* as concurrent rf_op_run calls: a replay of the first answer, or in flight */
    assert_true(c[1].err == RF_OK || c[1].err == RF_ERR_IDEM_IN_FLIGHT);
    if (c[1].err == RF_OK) {
        assert_true(c[1].replayed);
        assert_string_equal(c[1].res.transfer.id, c[0].res.transfer.id);
    } else {
        assert_int_equal(c[1].fault.code, RF_ERR_IDEM_IN_FLIGHT);
    }
    assert_true(c[2].err == RF_ERR_IDEM_REUSED || c[2].err == RF_ERR_IDEM_IN_FLIGHT);
    assert_int_equal(c[2].fault.code, c[2].err);
    assert_string_equal(c[2].res.transfer.id, ""); /* a failure leaves an empty result */
    assert_true(balance(account) == 5);

    call_init(&c[3], &f, account, key, 5); /* the flight is over: a replay, always */
    submit(&c[3], true);
    assert_int_equal(flight_wait(&f, 4, WAIT_MS), 4);
    assert_int_equal(c[3].err, RF_OK);
    assert_true(c[3].replayed);
    assert_string_equal(c[3].res.transfer.id, c[0].res.transfer.id);
    struct call blocking;
    call_init(&blocking, &f, account, key, 5);
    assert_int_equal(rf_op_run(rf_core_fx.db, RF_OP_CREDIT_APPLY, &blocking.req, &blocking.res,
                               &blocking.idem, &blocking.fault),
                     RF_OK);
    assert_true(blocking.idem.replayed);
    assert_string_equal(blocking.res.transfer.id, c[0].res.transfer.id);
    assert_true(balance(account) == 5);
    for (int i = 0; i < 4; i++) rf_transfer_clear(&c[i].res.transfer);
    rf_transfer_clear(&blocking.res.transfer);
    check_ledger();
    flight_destroy(&f);
}

/* Refused by the validator: answered before rf_op_submit returns, on this
 * thread, with rf_op_run's code and fault, and nothing queued. */
static void refused_as_run_refuses(const char *account, int64_t amount, rf_err want,
                                   const char *param) {
    struct flight f;
    flight_init(&f);
    struct call c, run;
    call_init(&c, &f, account, "refused", amount);
    call_init(&run, &f, account, "refused", amount);
    submit(&c, true);
    assert_int_equal(c.calls, 1); /* already: no wait */
    assert_true(pthread_equal(c.thread, pthread_self()));
    assert_int_equal(c.err, want);
    rf_err err = rf_op_run(rf_core_fx.db, RF_OP_CREDIT_APPLY, &run.req, &run.res, &run.idem,
                           &run.fault);
    assert_int_equal(err, want);
    assert_int_equal(c.fault.code, run.fault.code);
    assert_string_equal(c.fault.param, param);
    assert_string_equal(c.fault.param, run.fault.param);
    assert_string_equal(c.fault.detail, run.fault.detail);
    assert_int_equal(flight_wait(&f, 2, MORE_MS), 1);
    flight_destroy(&f);
}

static void test_refusals_complete_at_once(void **state) {
    (void)state;
    char account[64];
    make_account(account, sizeof account);
    refused_as_run_refuses(account, 0, RF_ERR_INVALID, "amount_minor");
    refused_as_run_refuses("funding:USD", 5, RF_ERR_RESERVED_ID, "id");
    assert_true(balance(account) == 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_credits_one_thread),
        cmocka_unit_test(test_replay_in_the_same_flight),
        cmocka_unit_test(test_refusals_complete_at_once),
    };
    return cmocka_run_group_tests(tests, rf_core_setup, rf_core_teardown);
}
