/*
 * test_jobs.c - rf_op_run_then at the library level, on the back end in
 * RF_TEST_DB: an operation and its follow-up jobs commit together or not at
 * all. A successful grant commits with its job (both readable after); a
 * grant that fails leaves no job (the unique_key is still free); a job the
 * queue refuses inside the transaction rolls the grant back; an
 * Idempotency-Key replay runs nothing and enqueues nothing new; a job
 * request that fails its field spec refuses the call before anything runs.
 * Also the rescue batch: an expired lease is made available again with its
 * attempt counted, and failed when it was the last.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "racefree.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"

struct names {
    char user[64], key[64], queue[64], ukey[64];
};

static void names_fresh(struct names *n) {
    rf_rand_id("u", n->user, sizeof n->user);
    rf_rand_id("k", n->key, sizeof n->key);
    rf_rand_id("q", n->queue, sizeof n->queue);
    rf_rand_id("uk", n->ukey, sizeof n->ukey);
}

static struct rf_job_req job_of(const struct names *n) {
    return (struct rf_job_req){.queue = n->queue, .kind = "grant.followup",
                               .payload_json = "{\"user\":1}", .unique_key = n->ukey};
}

static int64_t available(const char *queue) {
    struct rf_queue_stats st;
    assert_int_equal(rf_queue_stats(rf_core_fx.db, queue, &st), RF_OK);
    return st.available;
}

/* rf_op_run_then of a grant of (n->user, n->key) with jobs; the grant's
 * result is not kept. */
static rf_err grant_then(const struct names *n, struct rf_idem *idem,
                         const struct rf_job_req *jobs, int n_jobs, struct rf_job *out,
                         struct rf_fault *fault) {
    struct rf_grant_req g = {.user_id = n->user, .key = n->key};
    struct rf_grant_res res = {0}; /* a misuse leaves it untouched */
    rf_err err = rf_op_run_then(rf_core_fx.db, RF_OP_ENTITLEMENT_GRANT, &g, &res, idem, fault,
                                jobs, n_jobs, out);
    rf_entitlement_clear(&res.ent);
    return err;
}

/* Whether the grant of (n->user, n->key) is in the store. */
static bool granted(const struct names *n) {
    struct rf_entitlement e;
    rf_err err = rf_entitlement_get(rf_core_fx.db, n->user, n->key, &e);
    assert_true(err == RF_OK || err == RF_ERR_ENTITLEMENT_NOT_FOUND);
    rf_entitlement_clear(&e);
    return err == RF_OK;
}

static void test_then_commits_together(void **state) {
    (void)state;
    struct names n;
    names_fresh(&n);
    struct rf_job_req jr = job_of(&n);
    struct rf_job out[1];
    struct rf_fault fault;
    assert_int_equal(grant_then(&n, NULL, &jr, 1, out, &fault), RF_OK);
    assert_true(out[0].created);
    struct rf_job j;
    assert_int_equal(rf_job_get(rf_core_fx.db, out[0].id, &j), RF_OK);
    assert_int_equal(j.status, RF_JOB_AVAILABLE);
    assert_string_equal(j.unique_key, n.ukey);
    assert_true(granted(&n));
    rf_job_clear(&j);
    rf_job_clear(&out[0]);
    assert_int_equal(available(n.queue), 1);
}

static void test_then_failed_op_enqueues_nothing(void **state) {
    (void)state;
    struct names n;
    names_fresh(&n);
    /* Revoking what was never granted fails: its job must not exist. */
    struct rf_ent_ref ref = {.user_id = n.user, .key = n.key};
    struct rf_entitlement res;
    struct rf_job_req jr = job_of(&n);
    struct rf_job out[1];
    struct rf_fault fault;
    assert_int_equal(rf_op_run_then(rf_core_fx.db, RF_OP_ENTITLEMENT_REVOKE, &ref, &res, NULL,
                                    &fault, &jr, 1, out),
                     RF_ERR_ENTITLEMENT_NOT_FOUND);
    assert_string_equal(out[0].id, "");
    assert_int_equal(available(n.queue), 0);
    struct rf_job j;
    assert_int_equal(rf_job_enqueue(rf_core_fx.db, &jr, &j, NULL), RF_OK);
    assert_true(j.created); /* the key was free: no job of the failed call holds it */
    rf_job_clear(&j);
}

static void test_then_refused_job_rolls_back_op(void **state) {
    (void)state;
    struct names n;
    names_fresh(&n);
    struct rf_job_req jobs[2] = {job_of(&n), job_of(&n)};
    jobs[1].unique_key = NULL;
    jobs[1].run_at_ms = 253402300799000LL; /* 9999: past what the queue takes, decided in tx */
    struct rf_job out[2];
    struct rf_fault fault;
    assert_int_equal(grant_then(&n, NULL, jobs, 2, out, &fault), RF_ERR_INVALID);
    assert_false(granted(&n));
    assert_int_equal(available(n.queue), 0); /* the first job went with the grant */
}

static void test_then_replay_enqueues_nothing(void **state) {
    (void)state;
    struct names n;
    names_fresh(&n);
    char idem_key[64];
    rf_rand_id("idem", idem_key, sizeof idem_key);
    struct rf_job_req jr = job_of(&n);
    jr.unique_key = NULL; /* without a key a second run would make a second job */
    for (int round = 0; round < 2; round++) {
        struct rf_idem idem = {.key = idem_key, .api_key_id = "app"};
        struct rf_job out[1];
        struct rf_fault fault;
        assert_int_equal(grant_then(&n, &idem, &jr, 1, out, &fault), RF_OK);
        assert_int_equal(idem.replayed, round == 1);
        assert_int_equal(out[0].id[0] != '\0', round == 0);
        rf_job_clear(&out[0]);
    }
    assert_int_equal(available(n.queue), 1);
}

static void test_then_bad_job_refused_first(void **state) {
    (void)state;
    struct names n;
    names_fresh(&n);
    struct rf_job_req jr = job_of(&n);
    jr.payload_json = "[1]";
    struct rf_job out[1];
    struct rf_fault fault;
    assert_int_equal(grant_then(&n, NULL, &jr, 1, out, &fault), RF_ERR_INVALID);
    assert_string_equal(fault.param, "jobs[0].payload");
    assert_false(granted(&n));
    /* More jobs than one call takes is a misuse: nothing runs either. */
    jr.payload_json = "{}";
    assert_int_equal(grant_then(&n, NULL, &jr, 17, out, &fault), RF_ERR_INVALID);
    assert_false(granted(&n));
}

static void test_rescue_counts_attempts(void **state) {
    (void)state;
    struct names n;
    names_fresh(&n);
    struct rf_job_req jr = job_of(&n);
    jr.max_attempts = 2;
    struct rf_job j;
    assert_int_equal(rf_job_enqueue(rf_core_fx.db, &jr, &j, NULL), RF_OK);
    char id[RF_ID_BYTES];
    snprintf(id, sizeof id, "%s", j.id);
    rf_job_clear(&j);
    for (int attempt = 1; attempt <= 2; attempt++) {
        struct rf_job_claim_req c = {.queue = n.queue, .worker_id = "w", .lease_ms = 100};
        struct rf_job_page page;
        assert_int_equal(rf_job_claim(rf_core_fx.db, &c, &page), RF_OK);
        assert_int_equal(page.n, 1);
        assert_int_equal(page.items[0].attempt, attempt);
        rf_job_page_clear(&page);
        rf_t_sleep_ms(150); /* past the lease */
        int rescued = 0;
        assert_int_equal(rf_job_rescue(rf_core_fx.db, 0, &rescued), RF_OK);
        assert_true(rescued >= 1);
        assert_int_equal(rf_job_get(rf_core_fx.db, id, &j), RF_OK);
        assert_int_equal(j.status, attempt < 2 ? RF_JOB_AVAILABLE : RF_JOB_FAILED);
        assert_string_equal(j.last_error, "lease expired");
        rf_job_clear(&j);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_then_commits_together),
        cmocka_unit_test(test_then_failed_op_enqueues_nothing),
        cmocka_unit_test(test_then_refused_job_rolls_back_op),
        cmocka_unit_test(test_then_replay_enqueues_nothing),
        cmocka_unit_test(test_then_bad_job_refused_first),
        cmocka_unit_test(test_rescue_counts_attempts),
    };
    return cmocka_run_group_tests(tests, rf_core_setup, rf_core_teardown);
}
