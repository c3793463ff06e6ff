/*
 * store.h - the narrow interface between flows and a database back end.
 *
 * A back end (sqlite.c, postgres.c) implements struct store_ops. Flows see
 * only struct rf_tx and the store_* helpers below: exec, query, row accessors.
 * One SQL text serves both back ends: parameters are written $1..$N, times are
 * int64 milliseconds passed in from C, booleans are 0/1 integers. A query text
 * ending in " FOR UPDATE" or " FOR UPDATE SKIP LOCKED" takes row locks on
 * PostgreSQL; SQLite drops the suffix (its writer already holds the database
 * lock for the whole transaction).
 *
 * Error mapping every back end must follow:
 *   unique / primary key / check violation -> RF_ERR_CONFLICT
 *   serialization failure, deadlock (40001, 40P01) -> RF_ERR_RETRY
 *   busy, locked, I/O error, lost connection, a wait past the store's
 *   bound (PostgreSQL: pg_timeout_ms) -> RF_ERR_UNAVAILABLE
 *   anything else -> RF_ERR_INTERNAL
 */
#ifndef RF_STORE_H
#define RF_STORE_H

#include "racefree.h"

enum store_backend { STORE_SQLITE = 1, STORE_POSTGRES = 2 };

enum store_val_type { SV_NULL = 0, SV_INT, SV_TEXT };

/* A statement parameter. Text is borrowed for the call. */
typedef struct store_val {
    enum store_val_type type;
    int64_t i;
    const char *s;
} store_val;

static inline store_val sv_text(const char *s) {
    store_val v = {.type = s ? SV_TEXT : SV_NULL, .i = 0, .s = s};
    return v;
}

#define SV_I(x) ((store_val){.type = SV_INT, .i = (int64_t)(x), .s = NULL})
#define SV_S(x) sv_text(x)
#define SV_N() ((store_val){.type = SV_NULL, .i = 0, .s = NULL})
/* An optional int: 0 means NULL (unset times, unset versions). */
#define SV_I0(x) ((x) ? SV_I(x) : SV_N())

struct store_conn;  /* one back-end connection, owned by one thread at a time */
struct store_rows;  /* a result cursor */

/* Learns the first row of a statement sent with exec_later (store_query_later). */
typedef void (*store_later_fn)(void *ctx, struct store_rows *r);

struct store_ops {
    enum store_backend backend;
    const char *name;
    /* url is the full rf_open url. readonly: a reader connection. */
    rf_err (*connect)(const char *url, const struct rf_options *opt, bool readonly,
                      struct store_conn **out);
    void (*disconnect)(struct store_conn *c);
    /* Multi-statement script (migrations); no parameters, no rows. */
    rf_err (*exec_script)(struct store_conn *c, const char *sql);
    /* One statement. changes_out (may be NULL) gets the affected row count. */
    rf_err (*exec)(struct store_conn *c, const char *sql, const store_val *params,
                   int n_params, int64_t *changes_out);
    /* One statement whose result the caller does not need and whose failure
     * is exceptional (it fails the operation). SQLite: runs it, as exec.
     * PostgreSQL: inside a transaction, sends it without waiting (libpq
     * pipeline mode) and returns RF_OK; its result is learned at the next
     * synchronous call on c (exec, query, savepoint, release, commit,
     * settle ...), which sends its own statement in the same round trip and
     * returns the FIRST error among the queued statements in place of its
     * own result (a statement after a failed one is not run). Outside a
     * transaction it runs at once, as exec. fn (may be NULL) is given the
     * statement's first row, if it has one and nothing before it failed,
     * before that synchronous call returns (SQLite: before exec_later does);
     * ctx must stay valid until then. */
    rf_err (*exec_later)(struct store_conn *c, const char *sql, const store_val *params,
                         int n_params, store_later_fn fn, void *ctx);
    /* Learns the results of what exec_later queued on c: the first error
     * among them, else RF_OK (nothing queued: RF_OK, no round trip). */
    rf_err (*settle)(struct store_conn *c);
    /* One statement returning rows; *rows_out must be closed. */
    rf_err (*query)(struct store_conn *c, const char *sql, const store_val *params,
                    int n_params, struct store_rows **rows_out);
    /* Advance: 1 row ready, 0 end, <0 error (see rows_err). */
    int (*rows_next)(struct store_rows *r);
    rf_err (*rows_err)(struct store_rows *r);
    bool (*rows_null)(struct store_rows *r, int col);
    int64_t (*rows_int)(struct store_rows *r, int col);
    /* Valid until the next rows_next/rows_close; "" for NULL. */
    const char *(*rows_text)(struct store_rows *r, int col);
    void (*rows_close)(struct store_rows *r);
    /* Transactions. begin(write): SQLite BEGIN IMMEDIATE / DEFERRED for reads;
     * PostgreSQL BEGIN (READ COMMITTED) / BEGIN READ ONLY (the executor runs
     * PostgreSQL reads without one: see run_autocommit_read). */
    rf_err (*begin)(struct store_conn *c, bool write);
    /* Queued statements (exec_later) are settled first: when one failed,
     * the transaction is rolled back and its error returned.
     * RF_OK: committed. RF_ERR_OUTCOME_UNKNOWN: the answer was lost and the
     * outcome could not be learned, so it may have committed. Any other
     * error: nothing was committed. A back end whose COMMIT answer can be
     * lost (PostgreSQL) resolves it before returning, and never returns
     * RF_ERR_RETRY for it: the executor re-runs only what surely rolled back. */
    rf_err (*commit)(struct store_conn *c);
    void (*rollback)(struct store_conn *c);
    /* Savepoints are named sp<n>. release and release_savepoint settle what
     * exec_later queued in the same round trip: when a queued statement
     * failed, its error is returned on a live connection (broken() false),
     * the release did NOT run and savepoint n still holds, so the caller can
     * roll back to it. rollback_to and rollback discard queued results. */
    rf_err (*savepoint)(struct store_conn *c, int n);
    rf_err (*release)(struct store_conn *c, int n);
    void (*rollback_to)(struct store_conn *c, int n);
    /* RELEASE savepoint n, then SAVEPOINT n again: between two operations of
     * a batch, in one round trip where the store is remote. */
    rf_err (*release_savepoint)(struct store_conn *c, int n);
    /* True if the connection is broken and must be replaced (PostgreSQL). */
    bool (*broken)(struct store_conn *c);
    /* Test hook: make the next commit fail as a store error (the connection
     * is cut before COMMIT is sent). */
    void (*fail_next_commit)(struct store_conn *c);
    /* Test hook: the next COMMIT reaches the server and its answer is lost
     * (commit must then resolve the outcome). NULL where commit has no answer
     * to lose (SQLite runs in process). */
    void (*lose_next_commit_reply)(struct store_conn *c);
    /* Test hook: the next write transaction begins at SERIALIZABLE. NULL
     * where there is no weaker level to leave (SQLite). */
    void (*serializable_next_begin)(struct store_conn *c);
    /* The next write transaction is a batch of operations: a lock wait inside
     * it ends after RF_PG_BATCH_LOCK_WAIT_MS with RF_ERR_RETRY (the operation
     * then runs again alone), so two batches that wait for each other's rows
     * part in a fraction of the server's deadlock_timeout. NULL where one
     * writer holds the whole store (SQLite). */
    void (*batch_next_begin)(struct store_conn *c);
    /* The batch's deferred work on the system accounts begins (PostgreSQL):
     * its lock waits are no longer bounded by RF_PG_BATCH_LOCK_WAIT_MS. Only
     * flushes lock those rows, after every user row and in id order, so it
     * waits for other flushes' COMMITs and never for a cycle; bounding it
     * would fail whole batches over to one transaction per operation exactly
     * when the hot row is busiest. PostgreSQL queues it as exec_later does
     * (no round trip of its own). */
    rf_err (*batch_flush_begins)(struct store_conn *c);
    /* SQLite: after each commit on c, fn(arg, pages) learns the WAL's length
     * in pages; c checkpoints (passive) only when fn returns true, instead of
     * at SQLite's automatic threshold. NULL where there is no WAL. */
    void (*on_wal)(struct store_conn *c, bool (*fn)(void *arg, int pages), void *arg);
    /* SQLite: a PASSIVE checkpoint (never waits for readers or the writer). */
    rf_err (*checkpoint)(struct store_conn *c);
    /* SQLite: c's commits stop waiting for their fsync (they are appended to
     * the WAL, visible, and durable once wal_sync returns); the caller tells
     * nobody of a commit before a wal_sync that began after it. NULL where a
     * commit is durable when it returns (PostgreSQL). */
    rf_err (*commit_unsynced)(struct store_conn *c);
    /* SQLite: fdatasync of the file's WAL; every commit (of any connection of
     * this process) that returned before the call is durable once it returns
     * RF_OK. c is used for nothing else meanwhile (its own thread). */
    rf_err (*wal_sync)(struct store_conn *c);
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_postgres_ops;

/* Picks the back end for a url; NULL if the scheme is unknown. */
const struct store_ops *store_for_url(const char *url);

/* The transaction a core operation runs in. Operations never begin, commit
 * or roll back: the executor does (src/exec/executor.c). */
struct rf_tx {
    const struct store_ops *ops;
    struct store_conn *conn;
    struct rf *db;
    int64_t now_ms;     /* one clock reading per operation */
    bool write;
    void *defer;        /* the transaction's deferred work (exec_defer_ops); NULL: none */
    /* Where the running operation records what its refusal depends on
     * (rf_facts: current state, version, balance); NULL between operations. */
    struct rf_facts *facts;
};

/* Convenience wrappers over tx->ops (store.c). */
rf_err store_exec(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                  int64_t *changes_out);
/* store_exec for a statement whose result the caller does not read and
 * whose failure fails the operation (an INSERT of history, a record): on
 * PostgreSQL it costs no round trip of its own; its error, if any, is
 * returned by the operation's next statement, or by the executor's release
 * of the operation's savepoint (see store_ops.exec_later). Parameters are
 * copied before it returns. */
rf_err store_exec_later(struct rf_tx *tx, const char *sql, const store_val *p, int n);
/* store_exec_later for a query whose first row is needed only after the
 * caller's next statement, which it makes before it returns (that statement
 * then costs the round trip of both): fn(ctx, row) runs before that
 * statement's call returns, when the query has a row and nothing failed. */
rf_err store_query_later(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                         store_later_fn fn, void *ctx);
rf_err store_query(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                   struct store_rows **rows_out);
int store_next(struct rf_tx *tx, struct store_rows *r);
rf_err store_rows_err(struct rf_tx *tx, struct store_rows *r);
bool store_null(struct rf_tx *tx, struct store_rows *r, int col);
int64_t store_int(struct rf_tx *tx, struct store_rows *r, int col);
const char *store_text(struct rf_tx *tx, struct store_rows *r, int col);
void store_close(struct rf_tx *tx, struct store_rows *r);

/* Runs a query expected to return at most one row; calls row_fn on it.
 * Returns RF_ERR_NOT_FOUND when there is no row. */
typedef void (*store_row_fn)(struct rf_tx *tx, struct store_rows *r, void *out);
rf_err store_query_one(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                       store_row_fn row_fn, void *out);
/* Runs a query and calls row_fn for each row, at most max_rows rows. */
rf_err store_query_each(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                        int max_rows, store_row_fn row_fn, void *out);

/* Migrations (migrate.c): embedded numbered SQL files per back end. */
struct store_migration {
    int version;
    const char *name;
    const char *sql;
};
/* Applies pending migrations in one transaction; refuses a newer schema. */
rf_err store_migrate(const struct store_ops *ops, struct store_conn *c, int *version_out);
/* Current schema version, or RF_ERR_SCHEMA_TOO_NEW / RF_ERR_INVALID (behind). */
rf_err store_schema_check(const struct store_ops *ops, struct store_conn *c);
int store_schema_latest(enum store_backend be);

#endif
