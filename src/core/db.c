/*
 * db.c - the rf handle: open (migrate, start the executor and the sweep
 * thread), close, readiness, stats, the version and the test hooks (their
 * declarations are internal: core/test_hooks.h). Flows live in their own
 * files.
 */
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "core/core.h"
#include "core/deferred.h"
#include "core/test_hooks.h"
#include "store/sqlite_faults.h"

static rf_err migrate_with(const struct store_ops *ops, const char *url,
                           const struct rf_options *opt, int *version_out) {
    struct store_conn *c = NULL;
    rf_err err = ops->connect(url, opt, false, &c);
    if (err) return err;
    err = store_migrate(ops, c, version_out);
    ops->disconnect(c);
    return err;
}

rf_err rf_migrate(const char *url, int *version_out) {
    if (sodium_init() < 0) return RF_ERR_INTERNAL;
    const struct store_ops *ops = store_for_url(url);
    if (!ops) return RF_ERR_INVALID;
    struct rf_options opt = {0};
    return migrate_with(ops, url, &opt, version_out);
}

int rf_schema_version_latest(void) { return store_schema_latest(STORE_SQLITE); }

rf_err rf_open(const char *url, const struct rf_options *options, rf **out) {
    if (!out) return RF_ERR_INVALID;
    *out = NULL;
    if (sodium_init() < 0) return RF_ERR_INTERNAL;
    const struct store_ops *ops = store_for_url(url);
    if (!ops) return RF_ERR_INVALID;
    struct rf_options opt = options ? *options : (struct rf_options){0};
    if (!sweep_interval_valid(opt.sweep_interval_ms)) return RF_ERR_INVALID;
    if (opt.idem_retention_ms <= 0) opt.idem_retention_ms = RF_IDEM_RETENTION_MS;
    if (opt.lease_max_ttl_ms > RF_LEASE_TTL_MS_LIMIT) return RF_ERR_INVALID;
    if (opt.lease_max_ttl_ms <= 0) opt.lease_max_ttl_ms = RF_LEASE_TTL_MS_MAX_DEFAULT;
    const char *spread = getenv("RACEFREE_SPREAD_KEYS");
    if (spread && strcmp(spread, "1") == 0) opt.spread_keys = true;
    if (!opt.no_migrate) {
        rf_err err = migrate_with(ops, url, &opt, NULL);
        if (err) return err;
    }
    rf *db = calloc(1, sizeof *db);
    if (!db) return RF_ERR_NOMEM;
    db->ops = ops;
    db->opt = opt;
    db->test_hooks = opt.test_hooks;
    pthread_mutex_init(&db->inflight_mu, NULL);
    pthread_mutex_init(&db->sys_mu, NULL);
    pthread_mutex_init(&db->fanout_hook.mu, NULL);
    rf_err err = key_cache_open(db);
    if (!err) err = op_pool_open(db);
    if (!err) err = exec_open(url, &opt, db, &deferred_ops, &db->exec);
    if (!err) err = sweeper_start(db, opt.sweep_interval_ms);
    if (err) {
        if (db->exec) exec_close(db->exec);
        op_pool_close(db);
        key_cache_close(db);
        pthread_mutex_destroy(&db->inflight_mu);
        pthread_mutex_destroy(&db->sys_mu);
        pthread_mutex_destroy(&db->fanout_hook.mu);
        free(db);
        return err;
    }
    *out = db;
    return RF_OK;
}

void rf_shutdown_begin(rf *db) {
    if (db) exec_shutdown_begin(db->exec);
}

void rf_close(rf *db) {
    if (!db) return;
    sweeper_stop(db); /* its sweep in progress finishes first */
    exec_close(db->exec);
    op_pool_close(db);
    key_cache_close(db);
    RF_ASSERT(db->inflight_n == 0);
    pthread_mutex_destroy(&db->inflight_mu);
    pthread_mutex_destroy(&db->sys_mu);
    pthread_mutex_destroy(&db->fanout_hook.mu);
    free(db);
}

static rf_err op_ready(struct rf_tx *tx, void *ctx) {
    (void)ctx;
    return store_schema_check(tx->ops, tx->conn);
}

rf_err rf_ready(rf *db) { return db ? core_read(db, "ready", op_ready, NULL) : RF_ERR_INVALID; }

void rf_stats_get(rf *db, struct rf_stats *out) {
    if (!out) return;
    if (!db) memset(out, 0, sizeof *out);
    else exec_stats(db->exec, out);
}

const char *rf_backend_name(rf *db) { return db ? db->ops->name : NULL; }

void rf_test_fail_next(rf *db, const char *op_name, rf_err err) {
    if (db->test_hooks) exec_test_fail_next(db->exec, op_name, err);
}

void rf_test_set_op_delay(rf *db, int delay_ms) {
    if (db->test_hooks) exec_test_set_op_delay(db->exec, delay_ms);
}

void rf_test_crash_after_commit(rf *db, const char *op_name) {
    if (db->test_hooks) exec_test_crash_after_commit(db->exec, op_name);
}

void rf_test_fail_next_commit(rf *db) {
    if (db->test_hooks) exec_test_fail_next_commit(db->exec);
}

void rf_test_fail_next_sync(rf *db) {
    if (db->test_hooks) exec_test_fail_next_sync(db->exec);
}

void rf_test_lose_commit_replies(rf *db, int n) {
    if (db->test_hooks) exec_test_lose_commit_replies(db->exec, n);
}

void rf_test_io_fault(rf *db, enum rf_test_io fault, int64_t after_bytes) {
    static const enum store_io_fault map[] = {
        [RF_TEST_IO_OK] = STORE_IO_OK, [RF_TEST_IO_EIO] = STORE_IO_EIO,
        [RF_TEST_IO_FULL] = STORE_IO_FULL};
    RF_ASSERT(fault >= RF_TEST_IO_OK && fault <= RF_TEST_IO_FULL);
    if (db->test_hooks && db->ops->backend == STORE_SQLITE) store_io_fault(map[fault], after_bytes);
}

void rf_test_fail_serialization(rf *db, int n) {
    if (db->test_hooks) exec_test_fail_serialization(db->exec, n);
}

void rf_test_set_serializable(rf *db, bool on) {
    if (db->test_hooks) exec_test_set_serializable(db->exec, on);
}

void rf_test_payout_batch(rf *db, int pause_ms, int chunk_wallets, int64_t lease_ttl_ms) {
    if (!db->test_hooks) return;
    atomic_store(&db->batch_hook.pause_ms, pause_ms);
    atomic_store(&db->batch_hook.chunk_wallets, chunk_wallets);
    atomic_store(&db->batch_hook.lease_ttl_ms, lease_ttl_ms);
}

int64_t rf_test_op_runs(rf *db) { return db->test_hooks ? exec_test_op_runs(db->exec) : 0; }

char *core_dup_col(struct rf_tx *tx, struct store_rows *r, int col) {
    if (store_null(tx, r, col)) return NULL;
    return strdup(store_text(tx, r, col));
}

void core_int_row(struct rf_tx *tx, struct store_rows *r, void *out) {
    *(int64_t *)out = store_int(tx, r, 0);
}

void core_chars_col(struct rf_tx *tx, struct store_rows *r, int col, char *out, size_t cap) {
    if (!store_null(tx, r, col)) rf_strcpy(out, cap, store_text(tx, r, col));
}

int core_limit(int limit) {
    if (limit <= 0) return RF_LIST_LIMIT_DEFAULT;
    return limit > RF_LIST_LIMIT_MAX ? RF_LIST_LIMIT_MAX : limit;
}
