/*
 * test_migrate.c - migrations on the back end in RF_TEST_DB: applying twice
 * changes nothing, two processes' worth of concurrent migrations agree, and
 * a store whose schema is newer than the binary is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "racefree.h"
#include "store/store.h"
#include "testlib/rf_testlib.h"

static char g_url[RF_T_URL_BYTES];

static void test_migrate_twice(void **state) {
    (void)state;
    int v1 = 0, v2 = 0;
    assert_int_equal(rf_migrate(g_url, &v1), RF_OK);
    assert_int_equal(rf_migrate(g_url, &v2), RF_OK);
    assert_int_equal(v1, v2);
    assert_true(v1 >= 1);
    rf *db = NULL;
    assert_int_equal(rf_open(g_url, NULL, &db), RF_OK);
    assert_int_equal(rf_ready(db), RF_OK);
    rf_close(db);
}

struct mig {
    rf_err err[8];
    int version[8];
};

static void migrate_one(int idx, void *ctx) {
    struct mig *m = ctx;
    m->err[idx] = rf_migrate(g_url, &m->version[idx]);
}

static void test_migrate_concurrently(void **state) {
    (void)state;
    char url[RF_T_URL_BYTES];
    assert_int_equal(rf_test_db_fresh(url, sizeof url), 0);
    rf_test_db_cleanup(g_url);
    snprintf(g_url, sizeof g_url, "%s", url);
    struct mig m = {0};
    assert_int_equal(rf_parallel_fn(8, migrate_one, &m), 0);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(m.err[i], RF_OK);
        assert_int_equal(m.version[i], m.version[0]);
    }
}

static void test_schema_too_new(void **state) {
    (void)state;
    const struct store_ops *ops = store_for_url(g_url);
    assert_non_null(ops);
    struct store_conn *c = NULL;
    struct rf_options opt = {0};
    assert_int_equal(ops->connect(g_url, &opt, false, &c), RF_OK);
    assert_int_equal(ops->exec_script(c, "INSERT INTO schema_version (version, name, applied_at)"
                                         " VALUES (9999, 'from_the_future', 0)"),
                     RF_OK);
    rf *db = NULL;
    assert_int_equal(rf_open(g_url, NULL, &db), RF_ERR_SCHEMA_TOO_NEW);
    assert_int_equal(ops->exec_script(c, "DELETE FROM schema_version WHERE version = 9999"),
                     RF_OK);
    ops->disconnect(c);
    assert_int_equal(rf_open(g_url, NULL, &db), RF_OK);
    rf_close(db);
}

static int setup(void **state) {
    (void)state;
    return rf_test_db_fresh(g_url, sizeof g_url);
}

static int teardown(void **state) {
    (void)state;
    rf_test_db_cleanup(g_url);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_twice),
        cmocka_unit_test(test_migrate_concurrently),
        cmocka_unit_test(test_schema_too_new),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
