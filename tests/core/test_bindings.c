/*
 * test_bindings.c - seed 002 at the library level, on the back end in
 * RF_TEST_DB: two requests released together bind one user to two customers
 * (and two users to one customer), 100 rounds each; every round exactly one
 * creates and the other gets a conflict naming the winner, and the store
 * holds the winner only. Never a success for a customer the caller did not
 * send.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "racefree.h"
#include "testlib/rf_testlib.h"

#define ROUNDS 100

static rf *g_db;

struct race {
    char user[2][64];
    char customer[2][64];
    rf_err err[2];
    struct rf_bind_res res[2];
};

static void bind_one(int idx, void *ctx) {
    struct race *r = ctx;
    r->err[idx] = rf_customer_bind(g_db, r->user[idx], "stripe", r->customer[idx], &r->res[idx]);
}

/* Exactly one winner; the loser's conflict names the winner's side. */
static int check_round(struct race *r, bool same_user) {
    int w = r->err[0] == RF_OK ? 0 : 1, l = 1 - w;
    assert_int_equal(r->err[w], RF_OK);
    assert_true(r->res[w].created);
    assert_string_equal(r->res[w].binding.customer_id, r->customer[w]);
    assert_string_equal(r->res[w].binding.user_id, r->user[w]);
    assert_int_equal(r->err[l], RF_ERR_BINDING_CONFLICT);
    if (same_user) assert_string_equal(r->res[l].existing_customer_id, r->customer[w]);
    else assert_string_equal(r->res[l].existing_user_id, r->user[w]);
    struct rf_binding b;
    assert_int_equal(rf_customer_get_by_user(g_db, r->user[w], "stripe", &b), RF_OK);
    assert_string_equal(b.customer_id, r->customer[w]);
    assert_int_equal(rf_customer_get_by_customer(g_db, "stripe", r->customer[w], &b), RF_OK);
    assert_string_equal(b.user_id, r->user[w]);
    if (same_user) /* the loser's customer is bound to nobody */
        assert_int_equal(rf_customer_get_by_customer(g_db, "stripe", r->customer[l], &b),
                         RF_ERR_BINDING_NOT_FOUND);
    else
        assert_int_equal(rf_customer_get_by_user(g_db, r->user[l], "stripe", &b),
                         RF_ERR_BINDING_NOT_FOUND);
    return w;
}

static void test_one_user_two_customers(void **state) {
    (void)state;
    for (int round = 0; round < ROUNDS; round++) {
        struct race r;
        memset(&r, 0, sizeof r);
        rf_rand_id("user", r.user[0], sizeof r.user[0]);
        strcpy(r.user[1], r.user[0]);
        rf_rand_id("cus_AAA", r.customer[0], sizeof r.customer[0]);
        rf_rand_id("cus_BBB", r.customer[1], sizeof r.customer[1]);
        assert_int_equal(rf_parallel_fn(2, bind_one, &r), 0);
        check_round(&r, true);
    }
}

static void test_two_users_one_customer(void **state) {
    (void)state;
    for (int round = 0; round < ROUNDS; round++) {
        struct race r;
        memset(&r, 0, sizeof r);
        rf_rand_id("user-a", r.user[0], sizeof r.user[0]);
        rf_rand_id("user-b", r.user[1], sizeof r.user[1]);
        rf_rand_id("cus", r.customer[0], sizeof r.customer[0]);
        strcpy(r.customer[1], r.customer[0]);
        assert_int_equal(rf_parallel_fn(2, bind_one, &r), 0);
        check_round(&r, false);
    }
}

static void test_rebind_and_unbind(void **state) {
    (void)state;
    char user[64], cus[64];
    rf_rand_id("user", user, sizeof user);
    rf_rand_id("cus", cus, sizeof cus);
    struct rf_bind_res res;
    assert_int_equal(rf_customer_bind(g_db, user, "stripe", cus, &res), RF_OK);
    assert_true(res.created);
    assert_int_equal(rf_customer_bind(g_db, user, "stripe", cus, &res), RF_OK);
    assert_false(res.created); /* 200: exactly this binding exists */
    char other[64];
    rf_rand_id("cus_pp", other, sizeof other);
    assert_int_equal(rf_customer_bind(g_db, user, "paypal", other, &res), RF_OK);
    assert_true(res.created); /* per provider */
    struct rf_binding b;
    assert_int_equal(rf_customer_unbind(g_db, user, "stripe", 7, &b), RF_ERR_VERSION_MISMATCH);
    assert_int_equal(rf_customer_unbind(g_db, user, "stripe", 1, &b), RF_OK);
    assert_int_equal(rf_customer_unbind(g_db, user, "stripe", 0, &b), RF_ERR_BINDING_NOT_FOUND);
    rf_rand_id("cus_new", other, sizeof other);
    assert_int_equal(rf_customer_bind(g_db, user, "stripe", other, &res), RF_OK);
    assert_true(res.created);
    assert_int_equal(rf_customer_bind(g_db, "bad id", "stripe", cus, &res), RF_ERR_INVALID);
}

static int setup(void **state) {
    (void)state;
    char url[RF_T_URL_BYTES];
    if (rf_test_db_url(url, sizeof url) != 0) return -1;
    return rf_open(url, NULL, &g_db) == RF_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    rf_close(g_db);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_user_two_customers),
        cmocka_unit_test(test_two_users_one_customer),
        cmocka_unit_test(test_rebind_and_unbind),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
