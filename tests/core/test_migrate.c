/*
 * test_migrate.c - migrations on the back end in RF_TEST_DB: applying twice
 * changes nothing, two processes' worth of concurrent migrations agree, and
 * a store whose schema is newer than the binary is refused; migration 007
 * rebuilds transfers on a store in use and keeps every row, reference and
 * constraint.
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

/* ---- 007: transfers rebuilt with its rows ------------------------------- */

static void make_account(rf *db, const char *id) {
    struct rf_account_req req = {.id = id, .currency = "USD", .kind = RF_ACCOUNT_USER};
    struct rf_account_res res;
    assert_int_equal(rf_account_create(db, &req, &res, NULL), RF_OK);
    rf_account_clear(&res.account);
}

/* The stored definition of transfers (SQLite only; "" elsewhere). */
static void transfers_sql(char *out, size_t cap) {
    out[0] = '\0';
    const struct store_ops *ops = store_for_url(g_url);
    if (ops->backend != STORE_SQLITE) return;
    struct store_conn *c = NULL;
    assert_int_equal(ops->connect(g_url, &(struct rf_options){0}, true, &c), RF_OK);
    struct store_rows *r = NULL;
    assert_int_equal(ops->query(c, "SELECT sql FROM sqlite_schema WHERE name = 'transfers'", NULL,
                                0, &r), RF_OK);
    assert_int_equal(ops->rows_next(r), 1);
    snprintf(out, cap, "%s", ops->rows_text(r, 0));
    ops->rows_close(r);
    ops->disconnect(c);
}

/* The ledger a store in use has: credits, a referenced transfer, a hold. */
static void ledger_in_use(rf *db, char held[RF_ID_BYTES], char credited[RF_ID_BYTES]) {
    make_account(db, "m7-a");
    make_account(db, "m7-b");
    struct rf_transfer_res res = {0};
    assert_int_equal(rf_credit_apply(db, "m7-a", 500, "seed", &res, NULL), RF_OK);
    snprintf(credited, RF_ID_BYTES, "%s", res.transfer.id);
    rf_transfer_clear(&res.transfer);
    struct rf_transfer_req t = {.debit_account = "m7-a", .credit_account = "m7-b",
                                .amount_minor = 70, .currency = "USD", .reference = "m7-ref"};
    assert_int_equal(rf_transfer_create(db, &t, &res, NULL), RF_OK);
    rf_transfer_clear(&res.transfer);
    t = (struct rf_transfer_req){.debit_account = "m7-a", .credit_account = "m7-b",
                                 .amount_minor = 30, .currency = "USD", .pending = true};
    assert_int_equal(rf_transfer_create(db, &t, &res, NULL), RF_OK);
    snprintf(held, RF_ID_BYTES, "%s", res.transfer.id);
    rf_transfer_clear(&res.transfer);
}

/* Applies 007 again to a store with rows, as a store at version 6 gets it. */
static void reapply_007(void) {
    const struct store_ops *ops = store_for_url(g_url);
    struct store_conn *c = NULL;
    assert_int_equal(ops->connect(g_url, &(struct rf_options){0}, false, &c), RF_OK);
    assert_int_equal(ops->exec_script(c, "DELETE FROM schema_version WHERE version >= 7"), RF_OK);
    ops->disconnect(c);
    int version = 0;
    assert_int_equal(rf_migrate(g_url, &version), RF_OK);
    assert_true(version >= 7);
}

static void test_transfers_rebuilt_keep_rows(void **state) {
    (void)state;
    rf *db = NULL;
    assert_int_equal(rf_open(g_url, NULL, &db), RF_OK);
    char held[RF_ID_BYTES], credited[RF_ID_BYTES];
    ledger_in_use(db, held, credited);
    rf_close(db);
    reapply_007();
    char sql[4096];
    transfers_sql(sql, sizeof sql);
    assert_null(strstr(sql, "IN ('posted'")); /* the check SQLite built a b-tree for */
    assert_int_equal(rf_open(g_url, NULL, &db), RF_OK);
    struct rf_transfer t = {0};
    assert_int_equal(rf_transfer_get(db, credited, &t), RF_OK);
    assert_int_equal(t.amount_minor, 500);
    assert_string_equal(t.credit_account, "m7-a");
    assert_string_equal(t.metadata_json, "{\"reason\":\"seed\"}");
    rf_transfer_clear(&t);
    struct rf_transfer_res res = {0};
    struct rf_transfer_req dup = {.debit_account = "m7-a", .credit_account = "m7-b",
                                  .amount_minor = 1, .currency = "USD", .reference = "m7-ref"};
    assert_int_equal(rf_transfer_create(db, &dup, &res, NULL), RF_ERR_DUPLICATE_REFERENCE);
    rf_transfer_clear(&res.transfer);
    assert_int_equal(rf_transfer_post(db, held, 0, &res, NULL), RF_OK); /* the hold is intact */
    assert_int_equal(res.transfer.status, RF_TRANSFER_POSTED);
    rf_transfer_clear(&res.transfer);
    struct rf_ledger_check check;
    assert_int_equal(rf_ledger_check(db, &check), RF_OK);
    assert_true(check.clean);
    assert_int_equal(check.accounts_entries_mismatched, 0);
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
        cmocka_unit_test(test_transfers_rebuilt_keep_rows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
