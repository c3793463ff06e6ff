/*
 * test_migrate.c - migrations on the back end in RF_TEST_DB: applying twice
 * changes nothing, two processes' worth of concurrent migrations agree, and
 * a store whose schema is newer than the binary is refused; a store in use
 * at version 6 migrates to the latest keeping every row, reference and
 * constraint (007 rebuilds transfers; 008 orders the lists of accounts and
 * transfers, older rows first; 009 keeps approvals and judges the older
 * ones by label).
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

/* ---- a store in use at version 6, migrated to the latest ------------------ */

extern const struct store_migration store_migrations_sqlite[];
extern const struct store_migration store_migrations_postgres[];

/* The stored definition of transfers (SQLite only; "" elsewhere). */
static void transfers_sql(const char *url, char *out, size_t cap) {
    out[0] = '\0';
    const struct store_ops *ops = store_for_url(url);
    if (ops->backend != STORE_SQLITE) return;
    struct store_conn *c = NULL;
    assert_int_equal(ops->connect(url, &(struct rf_options){0}, true, &c), RF_OK);
    struct store_rows *r = NULL;
    assert_int_equal(ops->query(c, "SELECT sql FROM sqlite_schema WHERE name = 'transfers'", NULL,
                                0, &r), RF_OK);
    assert_int_equal(ops->rows_next(r), 1);
    snprintf(out, cap, "%s", ops->rows_text(r, 0));
    ops->rows_close(r);
    ops->disconnect(c);
}

/* What a store at version 6 held: a credit, a referenced transfer and a hold
 * (balances and entries as the ledger keeps them), and two pending
 * approvals labelled "alice": one from before keys were recorded, one
 * requested by key k1. */
static const char V6_ROWS[] =
    "INSERT INTO accounts (id, currency, kind, allow_negative, posted, pending_debits,"
    " pending_credits, version, created_at, updated_at) VALUES"
    " ('funding:USD', 'USD', 'system', 1, -500, 0, 0, 2, 1, 1),"
    " ('payouts:USD', 'USD', 'system', 1, 0, 0, 0, 1, 1, 1),"
    " ('m7-a', 'USD', 'user', 0, 430, 30, 0, 4, 1, 1),"
    " ('m7-b', 'USD', 'user', 0, 70, 0, 30, 3, 1, 1);"
    "INSERT INTO transfers (id, debit_account, credit_account, amount_minor, posted_amount,"
    " currency, status, was_pending, reference, metadata, created_at, resolved_at, version)"
    " VALUES ('t7-1', 'funding:USD', 'm7-a', 500, 500, 'USD', 'posted', 0, NULL,"
    " '{\"reason\":\"seed\"}', 1, 1, 1),"
    " ('t7-2', 'm7-a', 'm7-b', 70, 70, 'USD', 'posted', 0, 'm7-ref', NULL, 1, 1, 1),"
    " ('t7-3', 'm7-a', 'm7-b', 30, NULL, 'USD', 'pending', 1, NULL, NULL, 1, NULL, 1);"
    "INSERT INTO entries (account_id, seq, transfer_id, side, amount_minor, balance_after,"
    " created_at) VALUES ('funding:USD', 2, 't7-1', 'debit', 500, -500, 1),"
    " ('m7-a', 2, 't7-1', 'credit', 500, 500, 1), ('m7-a', 3, 't7-2', 'debit', 70, 430, 1),"
    " ('m7-b', 2, 't7-2', 'credit', 70, 70, 1);"
    "INSERT INTO approvals (id, status, action_type, action, requested_by,"
    " require_distinct_approver, created_at, updated_at, version, requested_key) VALUES"
    " ('ap-old', 'pending', 'entitlement_grant',"
    " '{\"type\":\"entitlement_grant\",\"user_id\":\"u-old\",\"key\":\"pro\"}', 'alice', 1,"
    " 1, 1, 1, NULL),"
    " ('ap-k1', 'pending', 'entitlement_grant',"
    " '{\"type\":\"entitlement_grant\",\"user_id\":\"u-k1\",\"key\":\"pro\"}', 'alice', 1,"
    " 1, 1, 1, 'k1');";

/* A fresh store taken to version 6 (the migrations of that time, as
 * rf_migrate applies them) with V6_ROWS in it. */
static void store_at_v6(const char *url) {
    const struct store_ops *ops = store_for_url(url);
    const struct store_migration *m =
        ops->backend == STORE_SQLITE ? store_migrations_sqlite : store_migrations_postgres;
    struct store_conn *c = NULL;
    assert_int_equal(ops->connect(url, &(struct rf_options){0}, false, &c), RF_OK);
    assert_int_equal(ops->begin(c, true), RF_OK);
    assert_int_equal(ops->exec_script(c, "CREATE TABLE schema_version (version BIGINT PRIMARY"
                                         " KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"),
                     RF_OK);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(m[i].version, i + 1);
        assert_int_equal(ops->exec_script(c, m[i].sql), RF_OK);
        store_val p[3] = {SV_I(m[i].version), SV_S(m[i].name), SV_I(1)};
        assert_int_equal(ops->exec(c, "INSERT INTO schema_version (version, name, applied_at)"
                                      " VALUES ($1, $2, $3)", p, 3, NULL),
                         RF_OK);
    }
    assert_int_equal(ops->exec_script(c, V6_ROWS), RF_OK);
    assert_int_equal(ops->commit(c), RF_OK);
    ops->disconnect(c);
}

/* 007 rebuilds transfers (SQLite) keeping every row, reference and
 * constraint; 008 lists the rows from before it first, in id order, and
 * new ones after them; 009 keeps the approvals, judges the old one by its
 * label and the keyed one by key. */
static void check_ledger_after(rf *db) {
    struct rf_transfer t = {0};
    assert_int_equal(rf_transfer_get(db, "t7-1", &t), RF_OK);
    assert_int_equal(t.amount_minor, 500);
    assert_string_equal(t.credit_account, "m7-a");
    assert_string_equal(t.metadata_json, "{\"reason\":\"seed\"}");
    rf_transfer_clear(&t);
    struct rf_transfer_res res = {0};
    struct rf_transfer_req dup = {.debit_account = "m7-a", .credit_account = "m7-b",
                                  .amount_minor = 1, .currency = "USD", .reference = "m7-ref"};
    assert_int_equal(rf_transfer_create(db, &dup, &res, NULL), RF_ERR_DUPLICATE_REFERENCE);
    rf_transfer_clear(&res.transfer);
    assert_int_equal(rf_transfer_post(db, "t7-3", 0, &res, NULL), RF_OK); /* the hold is intact */
    assert_int_equal(res.transfer.status, RF_TRANSFER_POSTED);
    rf_transfer_clear(&res.transfer);
    assert_int_equal(rf_credit_apply(db, "m7-b", 5, NULL, &res, NULL), RF_OK);
    char fresh[RF_ID_BYTES];
    snprintf(fresh, sizeof fresh, "%s", res.transfer.id);
    rf_transfer_clear(&res.transfer);
    struct rf_transfer_list_req lr = {.list = {.limit = 10}, .currency = "USD"};
    struct rf_transfer_page pg = {0};
    assert_int_equal(rf_transfer_list(db, &lr, &pg), RF_OK);
    assert_int_equal(pg.n, 4);
    const char *const want[] = {"t7-1", "t7-2", "t7-3", fresh};
    for (int i = 0; i < 4; i++)
        assert_string_equal(pg.items[i].id, want[i]);
    rf_transfer_page_clear(&pg);
    struct rf_ledger_check check;
    assert_int_equal(rf_ledger_check(db, &check), RF_OK);
    assert_true(check.clean);
    assert_int_equal(check.accounts_entries_mismatched, 0);
}

static rf_err approve_as(rf *db, const char *id, const char *label, const char *key) {
    struct rf_approval_ref ref = {.id = id, .by = label, .caller_key = key};
    struct rf_approval out;
    struct rf_fault fault;
    rf_err err = rf_op_run(db, RF_OP_APPROVAL_APPROVE, &ref, &out, NULL, &fault);
    if (!err) {
        assert_string_equal(out.approved_key, key);
        rf_approval_clear(&out);
    }
    return err;
}

static void test_store_in_use_migrated(void **state) {
    (void)state;
    char url[RF_T_URL_BYTES];
    assert_int_equal(rf_test_db_fresh(url, sizeof url), 0);
    store_at_v6(url);
    int version = 0;
    assert_int_equal(rf_migrate(url, &version), RF_OK);
    assert_true(version >= 9);
    char sql[4096];
    transfers_sql(url, sql, sizeof sql);
    assert_null(strstr(sql, "IN ('posted'")); /* the check SQLite built a b-tree for */
    rf *db = NULL;
    assert_int_equal(rf_open(url, NULL, &db), RF_OK);
    check_ledger_after(db);
    assert_int_equal(approve_as(db, "ap-old", "alice", "k2"), RF_ERR_SELF_APPROVAL);
    assert_int_equal(approve_as(db, "ap-old", "bob", "k2"), RF_OK);
    assert_int_equal(approve_as(db, "ap-k1", "bob", "k1"), RF_ERR_SELF_APPROVAL);
    assert_int_equal(approve_as(db, "ap-k1", "alice", "k2"), RF_OK);
    rf_close(db);
    rf_test_db_cleanup(url);
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
        cmocka_unit_test(test_store_in_use_migrated),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
