/*
 * executor.h - runs operations, each as one transaction (or one savepoint of a
 * group-committed transaction), on behalf of the public rf_* functions.
 *
 * The executor owns every BEGIN/COMMIT. Operations (exec_fn) only issue
 * statements through the rf_tx they are given, so they compose: one operation
 * may call another with the same tx.
 */
#ifndef RF_EXECUTOR_H
#define RF_EXECUTOR_H

#include "store/store.h"

typedef rf_err (*exec_fn)(struct rf_tx *tx, void *ctx);
/* Called when an operation's effect is undone after it returned RF_OK (its
 * savepoint or transaction rolled back), so it can drop what it rendered. */
typedef void (*exec_undo_fn)(void *ctx);

struct exec_op {
    const char *name;   /* for metrics and test hooks, e.g. "entitlement_grant" */
    exec_fn fn;
    exec_undo_fn undo;  /* may be NULL */
    void *ctx;
    bool write;
    /* Writes: a hash of the operation's natural key (0: none). Operations
     * with one shard run on one committer, in the order they were queued. */
    uint32_t shard;
};

struct rf_exec;

/* Work an operation defers to the end of its transaction (core/deferred.c:
 * balance moves, applied once per account and transaction in a fixed order,
 * so no row is locked across a batch's other operations). The executor owns
 * one buffer per transaction (tx->defer), resets it at BEGIN (users: a user
 * account's moves may wait too: only in a batch's first run), rewinds it to
 * the operation's mark when the operation's savepoint rolls back, and calls
 * flush right before COMMIT, in two phases: the user accounts' rows, then
 * the hot system accounts' (a batch waits for the former as long as for any
 * row, for the latter without bound: see run_batch). A flush error fails the
 * transaction as a whole: a batch whose flush refused a move
 * (RF_ERR_INSUFFICIENT_FUNDS, RF_ERR_AMOUNT_OVERFLOW) runs again as one
 * batch with users off, and after any other error (or a second refusal) one
 * operation per transaction. */
enum exec_flush_phase { EXEC_FLUSH_USERS, EXEC_FLUSH_SYSTEM };
struct exec_defer_ops {
    size_t buf_bytes;
    void (*reset)(void *buf, bool users);
    int (*mark)(const void *buf);
    void (*rewind)(void *buf, int mark);
    rf_err (*flush)(struct rf_tx *tx, enum exec_flush_phase phase);
};

/* defer may be NULL: tx->defer is then NULL and operations apply at once. */
rf_err exec_open(const char *url, const struct rf_options *opt, struct rf *db,
                 const struct exec_defer_ops *defer, struct rf_exec **out);
/* Blocks until the operation committed or failed. RF_ERR_OVERLOADED when the
 * queue is full, RF_ERR_SHUTTING_DOWN after exec_shutdown_begin,
 * RF_ERR_UNAVAILABLE when a PostgreSQL operation met a serialization failure
 * or deadlock in each of RF_RETRIES_MAX attempts (nothing was applied). */
rf_err exec_run(struct rf_exec *ex, const struct exec_op *op);
/* Called exactly once per submitted operation with its outcome: on an
 * executor thread after its COMMIT or rollback returned, or on the caller's
 * thread before exec_submit returns when it was refused (overloaded,
 * shutting down). It must be short and must not call into the executor. */
typedef void (*exec_done_fn)(void *arg, rf_err err);
/* Queues op without waiting; op (and its ctx) must live until done ran. */
void exec_submit(struct rf_exec *ex, const struct exec_op *op, exec_done_fn done, void *arg);
void exec_shutdown_begin(struct rf_exec *ex);
/* Drains queued operations, then closes every connection. */
void exec_close(struct rf_exec *ex);
void exec_stats(struct rf_exec *ex, struct rf_stats *out);
/* The upper bounds, in microseconds, of rf_stats.tx_us_hist's buckets but
 * the last (+Inf): Prometheus's default latency buckets from 0.5 ms. */
extern const int64_t exec_tx_bounds_us[RF_STATS_TX_BUCKETS - 1];
const struct store_ops *exec_store(struct rf_exec *ex);

/* Test hooks (see rf_test_* in racefree.h). */
void exec_test_fail_next(struct rf_exec *ex, const char *op_name, rf_err err);
void exec_test_set_op_delay(struct rf_exec *ex, int delay_ms);
void exec_test_fail_next_commit(struct rf_exec *ex);
void exec_test_fail_next_sync(struct rf_exec *ex);
/* The process exits (RF_TEST_CRASH_EXIT_CODE) right after the next commit
 * that includes an operation named op_name. */
void exec_test_crash_after_commit(struct rf_exec *ex, const char *op_name);
void exec_test_lose_commit_replies(struct rf_exec *ex, int n);
void exec_test_fail_serialization(struct rf_exec *ex, int n);
void exec_test_set_serializable(struct rf_exec *ex, bool on);
int64_t exec_test_op_runs(struct rf_exec *ex);

#endif
