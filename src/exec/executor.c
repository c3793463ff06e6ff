/*
 * executor.c - the only place that begins and commits transactions.
 *
 * Writes, both back ends: callers enqueue write operations on a bounded
 * queue (full -> RF_ERR_OVERLOADED, never unbounded memory) and either sleep
 * (exec_run) or go on (exec_submit, answered through a callback). Committer
 * threads take up to batch_ops_max queued operations and run them in ONE
 * transaction with a SAVEPOINT each (group commit: one commit, one fsync for
 * many operations, and one operation's failure is rolled back alone), then
 * answer every caller only after COMMIT returned, so nothing is acknowledged
 * that is not durable. Work an operation defers (exec_defer_ops: the hot
 * system accounts' balances) is applied once per transaction, right before
 * COMMIT.
 *
 * SQLite: one committer owns the write connection (BEGIN IMMEDIATE takes the
 * file's write lock, so two racefree processes on one file serialize their
 * batches; busy_timeout waits). Reads run on their own WAL connections and
 * never wait for the writer. A checkpointer thread with its own connection
 * copies the WAL back into the database once it passes
 * RF_SQLITE_CHECKPOINT_PAGES, so a COMMIT never does (it only appends). At
 * sync full a syncer thread fsyncs the WAL for many batches at once and
 * only then answers them, so the writer never waits for the disk (see
 * "the WAL made durable off the writer" below).
 *
 * PostgreSQL: opt.writers committers, each on its own connection, so batches
 * overlap on the server. A row lock wait inside a batch is bounded
 * (RF_PG_BATCH_LOCK_WAIT_MS): an operation that meets it, a deadlock or a
 * serialization failure (RF_ERR_RETRY) is rolled back to its savepoint,
 * which releases the locks it took, and runs again alone in its own
 * transaction once the batch committed, with a bounded number of attempts
 * (after RF_RETRIES_MAX in all: RF_ERR_UNAVAILABLE, nothing applied). A batch
 * whose COMMIT or deferred work fails that way runs each operation alone the
 * same way. Reads run statement by statement on a bounded pool. A broken
 * connection is dropped and replaced on next use. Every wait is bounded by
 * pg_timeout_ms: the pool wait here, connect, statements and COMMIT in the
 * store (postgres.c), so a frozen server gives prompt 503s.
 *
 * A COMMIT whose answer was lost is never run again: the store resolves it
 * (committed -> RF_OK, every operation's real result is answered; aborted ->
 * RF_ERR_UNAVAILABLE; unknown -> RF_ERR_OUTCOME_UNKNOWN) and never reports
 * it as RF_ERR_RETRY, the only error that re-runs an operation here, and a
 * broken connection ends the batch instead of being replaced under it.
 * Re-running a transaction that may have committed would apply it twice.
 */
#include "exec/executor.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/log.h"

struct job {
    const struct exec_op *op;
    rf_err err;
    bool done;    /* answered (exec_run's waiter; under mu) */
    bool decided; /* its batch's BEGIN failed, its COMMIT returned, or it was rolled back */
    bool rerun;   /* its batch could not decide it: it runs again in its own transaction */
    exec_done_fn done_fn; /* exec_submit's; NULL: a waiter sleeps on answered */
    void *done_arg;
    struct job *next;      /* in its committer's queue */
    struct job *next_free; /* in the free slots */
    /* Posted once, after mu is released: a woken waiter does not then queue
     * for mu behind the committer still answering the rest of the batch
     * (64 waiters per batch made that most of the handoff's cost). */
    sem_t answered;
};

/* A thread that takes batches off the queue and commits them on its own
 * write connection: one for SQLite (the file has one writer anyway), several
 * for PostgreSQL (batches of different committers overlap on the server). */
struct committer {
    struct rf_exec *ex;
    pthread_t thread;
    bool running;
    struct store_conn *conn; /* NULL until connected; a broken one is dropped */
    void *defer;             /* the transaction's deferred work, or NULL */
    struct job *head, *tail; /* its queue, guarded by rf_exec.mu */
    int q_len;
    pthread_cond_t cond;     /* its queue is not empty, or closing */
};

/* Connections not in use, plus how many exist; guarded by rf_exec.mu. */
struct pool {
    struct store_conn *free[RF_POOL_CONNS_MAX];
    int n_free;
    int n_open;
    int cap;
    int waiters;
    pthread_cond_t cond;
    bool readonly;
};

struct rf_exec {
    const struct store_ops *ops;
    const struct exec_defer_ops *defer_ops; /* NULL: nothing is deferred */
    struct rf *db;
    char *url;
    struct rf_options opt;
    pthread_mutex_t mu;

    /* write operations: a bounded queue, committers, slots for submitted jobs */
    struct committer committers[RF_WRITERS_MAX];
    int n_committers;
    struct job *slots;   /* queue_cap + every committer's batch; guarded by mu */
    struct job *free_slots;
    int q_len, q_cap;    /* queued in all committers' queues, and the bound */

    /* SQLite: the WAL checkpointer (its own thread and connection) */
    pthread_t ckpt_thread;
    bool ckpt_running;
    struct store_conn *ckpt_conn;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cond;
    bool ckpt_due, ckpt_stop; /* guarded by ckpt_mu */
    bool closing;

    /* SQLite at sync full: the WAL made durable off the writer (the syncer:
     * its own thread and connection) */
    pthread_t sync_thread;
    bool sync_running;
    struct store_conn *sync_conn;
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_work, sync_room;
    struct job *sync_jobs[RF_SYNC_JOBS_MAX]; /* decided, unanswered, in commit order */
    int sync_n;
    bool sync_stop;                          /* sync_* guarded by sync_mu */

    struct pool pool;    /* SQLite readers, or the PostgreSQL pool */
    atomic_bool shutting_down;

    atomic_llong batches, batch_ops_total, retries, overloaded, store_errors;
    atomic_llong hist[8];
    atomic_llong tx_hist[RF_STATS_TX_BUCKETS], tx_us_total;

    /* test hooks */
    char fail_op[64];   /* guarded by mu */
    rf_err fail_err;
    atomic_bool fail_armed;
    atomic_int delay_ms;
    atomic_bool fail_commit;
    atomic_bool fail_sync;    /* the syncer's next fdatasync fails */
    atomic_int lose_replies;  /* commits whose answer the store loses */
    atomic_int fail_serial;   /* write attempts that raise a genuine 40001 */
    atomic_bool serializable; /* write transactions at SERIALIZABLE */
    atomic_llong op_runs;     /* operation bodies run, each retry included */
    char crash_op[64];        /* written before crash_armed is set */
    atomic_bool crash_armed;  /* exit right after the commit of crash_op */
};

/* ---- shared pieces ----------------------------------------------------- */

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Runs one operation's body and applies the fail-next test hook. */
static rf_err run_one(struct rf_exec *ex, struct rf_tx *tx, const struct exec_op *op) {
    atomic_fetch_add(&ex->op_runs, 1);
    rf_err err = op->fn(tx, op->ctx);
    if (err != RF_OK || !atomic_load(&ex->fail_armed)) return err;
    pthread_mutex_lock(&ex->mu);
    if (ex->fail_op[0] && (strcmp(ex->fail_op, "*") == 0 || strcmp(ex->fail_op, op->name) == 0)) {
        err = ex->fail_err;
        ex->fail_op[0] = '\0';
        atomic_store(&ex->fail_armed, false);
    }
    pthread_mutex_unlock(&ex->mu);
    return err;
}

static void undo(const struct exec_op *op) {
    if (op->undo) op->undo(op->ctx);
}

const int64_t exec_tx_bounds_us[RF_STATS_TX_BUCKETS - 1] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};

/* A batch's size, and its transaction's latency since started_us. */
static void count_batch(struct rf_exec *ex, int n, int64_t started_us) {
    int64_t us = rf_mono_us() - started_us;
    int t = 0;
    while (t < RF_STATS_TX_BUCKETS - 1 && us > exec_tx_bounds_us[t]) t++;
    atomic_fetch_add(&ex->tx_hist[t], 1);
    atomic_fetch_add(&ex->tx_us_total, us > 0 ? us : 0);
    int b = 0;
    while ((1 << (b + 1)) <= n && b < 7) b++;
    atomic_fetch_add(&ex->hist[b], 1);
    atomic_fetch_add(&ex->batches, 1);
    atomic_fetch_add(&ex->batch_ops_total, n);
}

static struct rf_tx make_tx(struct rf_exec *ex, struct store_conn *c, bool write) {
    struct rf_tx tx = {.ops = ex->ops, .conn = c, .db = ex->db, .now_ms = rf_now_ms(),
                       .write = write};
    return tx;
}


/* ---- deferred work (exec_defer_ops) --------------------------------------- */

static void defer_reset(struct rf_exec *ex, void *buf, bool users) {
    if (buf) ex->defer_ops->reset(buf, users);
}

static int defer_mark(struct rf_exec *ex, const struct committer *cm) {
    return cm->defer ? ex->defer_ops->mark(cm->defer) : 0;
}

static void defer_rewind(struct rf_exec *ex, struct committer *cm, int mark) {
    if (cm->defer) ex->defer_ops->rewind(cm->defer, mark);
}

/* One phase of the deferred work; after the last (EXEC_FLUSH_SYSTEM), what
 * statements it (or a lone operation's body) queued without waiting
 * (store_exec_later) are settled, so their failure is the flush's and COMMIT
 * never meets one. */
static rf_err defer_flush(struct rf_exec *ex, struct rf_tx *tx, enum exec_flush_phase phase) {
    rf_err err = tx->defer ? ex->defer_ops->flush(tx, phase) : RF_OK;
    if (err || phase != EXEC_FLUSH_SYSTEM) return err;
    return ex->ops->settle(tx->conn);
}

/* ---- slots for submitted jobs (guarded by mu) ------------------------------ */

static struct job *job_alloc(struct rf_exec *ex) {
    struct job *j = ex->free_slots;
    if (j) ex->free_slots = j->next_free;
    return j;
}

static void job_free(struct rf_exec *ex, struct job *j) {
    RF_ASSERT(j >= ex->slots && j->done_fn); /* only submitted jobs live in slots */
    j->done_fn = NULL;
    j->next_free = ex->free_slots;
    ex->free_slots = j;
}

/* ---- connection pool --------------------------------------------------- */

/* The pool wait: PostgreSQL's shares the store's bound (pg_timeout_ms). */
static struct timespec pool_deadline(const struct rf_exec *ex) {
    int ms = ex->ops->backend == STORE_POSTGRES ? ex->opt.pg_timeout_ms : RF_POOL_WAIT_MS;
    struct timespec d;
    clock_gettime(CLOCK_REALTIME, &d);
    d.tv_sec += ms / 1000;
    d.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (d.tv_nsec >= 1000000000L) {
        d.tv_sec++;
        d.tv_nsec -= 1000000000L;
    }
    return d;
}

static rf_err pool_get(struct rf_exec *ex, struct pool *p, struct store_conn **out) {
    struct timespec deadline = pool_deadline(ex);
    pthread_mutex_lock(&ex->mu);
    while (p->n_free == 0 && p->n_open >= p->cap) {
        if (p->waiters >= ex->q_cap) {
            pthread_mutex_unlock(&ex->mu);
            atomic_fetch_add(&ex->overloaded, 1);
            return RF_ERR_OVERLOADED;
        }
        p->waiters++;
        int rc = pthread_cond_timedwait(&p->cond, &ex->mu, &deadline);
        p->waiters--;
        if (rc != 0 && p->n_free == 0 && p->n_open >= p->cap) {
            pthread_mutex_unlock(&ex->mu);
            atomic_fetch_add(&ex->overloaded, 1);
            return RF_ERR_OVERLOADED;
        }
    }
    if (p->n_free > 0) {
        *out = p->free[--p->n_free];
        pthread_mutex_unlock(&ex->mu);
        return RF_OK;
    }
    RF_ASSERT(p->n_open < p->cap && p->cap <= RF_POOL_CONNS_MAX);
    p->n_open++; /* reserve the slot, connect outside the lock */
    pthread_mutex_unlock(&ex->mu);
    rf_err err = ex->ops->connect(ex->url, &ex->opt, p->readonly, out);
    if (err) {
        pthread_mutex_lock(&ex->mu);
        p->n_open--;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&ex->mu);
        atomic_fetch_add(&ex->store_errors, 1);
    }
    return err;
}

static void pool_put(struct rf_exec *ex, struct pool *p, struct store_conn *c) {
    bool drop = ex->ops->broken(c);
    if (drop) ex->ops->disconnect(c);
    pthread_mutex_lock(&ex->mu);
    if (drop) {
        p->n_open--;
    } else {
        RF_ASSERT(p->n_free < RF_POOL_CONNS_MAX);
        p->free[p->n_free++] = c;
    }
    RF_ASSERT(p->n_free <= p->n_open && p->n_open >= 0); /* a free one is an open one */
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&ex->mu);
}

/* ---- one operation in its own transaction (reads; re-runs) -------------- */

/* Takes one from a test hook's counter; true if one was left. */
static bool take_one(atomic_int *counter) {
    int n = atomic_load(counter);
    while (n > 0) /* a CAS loop: exactly one per call */
        if (atomic_compare_exchange_weak(counter, &n, n - 1)) return true;
    return false;
}

/* Test hook: a power cut right after a commit that included op (the process
 * exits at once: nobody is answered, nothing later runs). Shows what a crash
 * between two transactions of one request would leave behind. */
static void crash_if_armed(struct rf_exec *ex, const struct exec_op *op) {
    if (!atomic_load(&ex->crash_armed) || strcmp(ex->crash_op, op->name) != 0) return;
    rf_log(RF_LOG_WARN, "test hook: exiting right after the commit of %s", op->name);
    _exit(RF_TEST_CRASH_EXIT_CODE);
}

/* Arms the store's commit test hooks for a write about to commit. */
static void arm_commit_hooks(struct rf_exec *ex, struct store_conn *c) {
    if (atomic_exchange(&ex->fail_commit, false)) ex->ops->fail_next_commit(c);
    if (ex->ops->lose_next_commit_reply && take_one(&ex->lose_replies))
        ex->ops->lose_next_commit_reply(c);
}

/* Test hook: a serialization failure raised by the server itself inside the
 * transaction, after the operation's body ran, so it travels the store's
 * real SQLSTATE mapping and rollback like one PostgreSQL detected. */
static const char SQL_RAISE_40001[] =
    "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$";

static rf_err test_serialization_failure(struct rf_exec *ex, struct store_conn *c,
                                         const struct exec_op *op) {
    if (ex->ops->backend != STORE_POSTGRES || !take_one(&ex->fail_serial)) return RF_OK;
    rf_err err = ex->ops->exec(c, SQL_RAISE_40001, NULL, 0, NULL);
    if (err) undo(op); /* the body had succeeded */
    return err;
}

static bool is_store_error(rf_err err) {
    return err == RF_ERR_UNAVAILABLE || err == RF_ERR_OUTCOME_UNKNOWN;
}

/* Retries only RF_ERR_RETRY, which a lost COMMIT never is (see the top). */
static rf_err run_in_tx(struct rf_exec *ex, struct store_conn *c, void *defer,
                        const struct exec_op *op, int attempts_used) {
    RF_ASSERT(attempts_used >= 0 && attempts_used < RF_RETRIES_MAX);
    for (int attempt = attempts_used;; attempt++) {
        RF_ASSERT(attempt < RF_RETRIES_MAX); /* the bound below ends the loop first */
        struct rf_tx tx = make_tx(ex, c, op->write);
        tx.defer = op->write ? defer : NULL;
        defer_reset(ex, tx.defer, false); /* its flush's answer is the operation's */
        if (op->write && atomic_load(&ex->serializable) && ex->ops->serializable_next_begin)
            ex->ops->serializable_next_begin(c);
        rf_err err = ex->ops->begin(c, op->write);
        if (!err && op->write && ex->ops->backend == STORE_POSTGRES) {
            int delay = atomic_load(&ex->delay_ms);
            if (delay > 0) sleep_ms(delay);
        }
        if (!err) err = run_one(ex, &tx, op);
        if (!err && op->write) err = test_serialization_failure(ex, c, op);
        if (!err && op->write) {
            err = defer_flush(ex, &tx, EXEC_FLUSH_USERS);
            if (!err) err = defer_flush(ex, &tx, EXEC_FLUSH_SYSTEM);
            if (err) undo(op);
        }
        if (!err && op->write) arm_commit_hooks(ex, c);
        if (!err) {
            err = ex->ops->commit(c);
            if (err) undo(op);
            if (!err && op->write) crash_if_armed(ex, op);
            RF_ASSERT(err != RF_ERR_RETRY || !ex->ops->broken(c)); /* a definite rollback */
        } else {
            ex->ops->rollback(c);
        }
        if (err != RF_ERR_RETRY) {
            if (is_store_error(err)) atomic_fetch_add(&ex->store_errors, 1);
            return err;
        }
        if (attempt + 1 >= RF_RETRIES_MAX || ex->ops->broken(c)) return RF_ERR_UNAVAILABLE;
        atomic_fetch_add(&ex->retries, 1);
        sleep_ms(1 + (attempt * attempt) % 20 + rand() % 5); /* bounded backoff with jitter */
    }
}

/* A PostgreSQL read that decides no write runs without BEGIN/COMMIT: under
 * READ COMMITTED each statement takes its own snapshot either way, so the
 * transaction would add two round trips and no consistency. (SQLite reads
 * keep theirs: a WAL read transaction is one snapshot for all statements.) */
static rf_err run_autocommit_read(struct rf_exec *ex, struct store_conn *c,
                                  const struct exec_op *op) {
    RF_ASSERT(!op->write && ex->ops->backend == STORE_POSTGRES);
    struct rf_tx tx = make_tx(ex, c, false);
    rf_err err = run_one(ex, &tx, op);
    if (err == RF_ERR_UNAVAILABLE) atomic_fetch_add(&ex->store_errors, 1);
    return err == RF_ERR_RETRY ? RF_ERR_UNAVAILABLE : err;
}

static rf_err run_pooled(struct rf_exec *ex, const struct exec_op *op) {
    struct store_conn *c = NULL;
    rf_err err = pool_get(ex, &ex->pool, &c);
    if (err) return err;
    bool autocommit = !op->write && ex->ops->backend == STORE_POSTGRES;
    err = autocommit ? run_autocommit_read(ex, c, op) : run_in_tx(ex, c, NULL, op, 0);
    pool_put(ex, &ex->pool, c);
    return err;
}

/* ---- committers: group commit on both back ends ------------------------- */

/* A committer's write connection, (re)connected on first use and after a
 * broken one was dropped. */
static rf_err committer_connect(struct rf_exec *ex, struct committer *cm) {
    if (cm->conn) return RF_OK;
    rf_err err = ex->ops->connect(ex->url, &ex->opt, false, &cm->conn);
    if (err) cm->conn = NULL;
    if (!err && ex->sync_running) { /* the syncer makes its commits durable */
        err = ex->ops->commit_unsynced(cm->conn);
        if (err) {
            ex->ops->disconnect(cm->conn);
            cm->conn = NULL;
        }
    }
    return err;
}

/* Drops a connection that broke (PostgreSQL), so the next batch reconnects. */
static void committer_check(struct rf_exec *ex, struct committer *cm) {
    if (!cm->conn || !ex->ops->broken(cm->conn)) return;
    ex->ops->disconnect(cm->conn);
    cm->conn = NULL;
}

static struct rf_tx committer_tx(struct rf_exec *ex, struct committer *cm, bool users) {
    struct rf_tx tx = make_tx(ex, cm->conn, true);
    tx.defer = cm->defer;
    defer_reset(ex, tx.defer, users);
    return tx;
}

/* The batch's outcome is final: what run_batch answers is what the store has. */
static void batch_decided(struct job **batch, int n) {
    for (int i = 0; i < n; i++) batch[i]->decided = true;
}

/* Ends a batch that cannot commit: every operation that had succeeded is
 * undone and answered err (a store error: nothing it did is in the store, or
 * RF_ERR_OUTCOME_UNKNOWN when a lost COMMIT could not be resolved). */
static void batch_lost(struct rf_exec *ex, struct committer *cm, struct job **batch, int n,
                       rf_err err) {
    RF_ASSERT(err != RF_OK && err != RF_ERR_RETRY);
    ex->ops->rollback(cm->conn);
    atomic_fetch_add(&ex->store_errors, 1);
    for (int i = 0; i < n; i++) {
        if (batch[i]->err == RF_OK) {
            undo(batch[i]->op);
            batch[i]->err = err;
        }
        RF_ASSERT(batch[i]->err != RF_OK); /* rolled back: nobody is told success */
    }
}

/* The batch's transaction rolled back for a reason a lone transaction may
 * not meet (a serialization failure or deadlock at COMMIT or in the deferred
 * work): every operation that had succeeded runs again, alone. */
static void batch_rerun_all(struct rf_exec *ex, struct committer *cm, struct job **batch, int n) {
    ex->ops->rollback(cm->conn);
    for (int i = 0; i < n; i++) {
        if (batch[i]->err != RF_OK) continue;
        undo(batch[i]->op);
        batch[i]->err = RF_ERR_RETRY;
        batch[i]->rerun = true;
    }
}

/* A failed operation: back to its savepoint, its deferred work dropped. */
static void step_failed(struct rf_exec *ex, struct committer *cm, struct rf_tx *tx,
                        struct job *job, int mark) {
    RF_ASSERT(job->err != RF_OK);
    ex->ops->rollback_to(tx->conn, 1);
    defer_rewind(ex, cm, mark);
    if (job->err == RF_ERR_UNAVAILABLE) atomic_fetch_add(&ex->store_errors, 1);
    if (job->err == RF_ERR_RETRY) job->rerun = true;
}

static rf_err step_release(const struct store_ops *ops, struct rf_tx *tx, bool last) {
    return last ? ops->release(tx->conn, 1) : ops->release_savepoint(tx->conn, 1);
}

/* Runs job inside savepoint 1 (set before it), then releases it and, unless
 * job is the batch's last, sets it again for the next one (one round trip);
 * false if the transaction itself is lost. An operation that met a
 * serialization failure or deadlock (PostgreSQL) is rolled back to its
 * savepoint, which also releases the row locks it took, and marked to run
 * again in a transaction of its own once the batch ends. */
static bool batch_step(struct rf_exec *ex, struct committer *cm, struct rf_tx *tx,
                       struct job *job, bool last) {
    const struct store_ops *ops = ex->ops;
    int mark = defer_mark(ex, cm);
    tx->now_ms = rf_now_ms();
    job->err = run_one(ex, tx, job->op);
    if (!job->err && ops->backend == STORE_POSTGRES)
        job->err = test_serialization_failure(ex, tx->conn, job->op);
    RF_ASSERT(job->err != RF_ERR_RETRY || ops->backend == STORE_POSTGRES);
    if (job->err) step_failed(ex, cm, tx, job, mark);
    rf_err err = step_release(ops, tx, last);
    if (err != RF_OK && job->err == RF_OK && !ops->broken(tx->conn)) {
        /* The release settles what the operation queued (store_exec_later)
         * and did not run when a queued statement failed: the savepoint
         * holds, so the operation fails alone, as if the statement had
         * answered at once. */
        undo(job->op);
        job->err = err;
        step_failed(ex, cm, tx, job, mark);
        err = step_release(ops, tx, last);
    }
    if (err != RF_OK) {
        if (job->err == RF_OK) undo(job->op);
        if (job->err == RF_OK || job->rerun) job->err = RF_ERR_UNAVAILABLE;
        job->rerun = false;
        RF_ASSERT(job->err != RF_OK); /* its savepoint is gone: never a success */
        return false;
    }
    return true;
}

/* A flush that refused a move: applied one by one, some operation's move
 * would have been refused (exec_defer_ops). */
static bool flush_refused(rf_err err) {
    return err == RF_ERR_INSUFFICIENT_FUNDS || err == RF_ERR_AMOUNT_OVERFLOW;
}

/* BEGIN, one savepoint per operation, the deferred work, COMMIT. users: a
 * user account's moves may wait for the flush. true: the flush refused a
 * user-deferred move, and every operation that had succeeded is marked to
 * run again (the caller runs them as one batch with users off). */
static bool run_batch(struct rf_exec *ex, struct committer *cm, struct job **batch, int n,
                      bool users) {
    RF_ASSERT(n >= 1 && n <= ex->opt.batch_ops_max && ex->opt.batch_ops_max <= RF_BATCH_OPS_MAX);
    for (int i = 0; i < n; i++) batch[i]->err = RF_OK;
    int64_t started_us = rf_mono_us();
    rf_err err = committer_connect(ex, cm);
    if (!err) {
        if (atomic_load(&ex->serializable) && ex->ops->serializable_next_begin)
            ex->ops->serializable_next_begin(cm->conn);
        if (ex->ops->batch_next_begin) ex->ops->batch_next_begin(cm->conn);
        err = ex->ops->begin(cm->conn, true);
    }
    if (err) {
        atomic_fetch_add(&ex->store_errors, 1);
        for (int i = 0; i < n; i++) batch[i]->err = err;
        return false;
    }
    struct rf_tx tx = committer_tx(ex, cm, users);
    int delay = atomic_load(&ex->delay_ms);
    if (delay > 0) sleep_ms(delay);
    if (ex->ops->savepoint(cm->conn, 1) != RF_OK) {
        for (int k = 0; k < n; k++) batch[k]->err = RF_ERR_UNAVAILABLE;
        batch_lost(ex, cm, batch, 0, RF_ERR_UNAVAILABLE);
        return false;
    }
    for (int i = 0; i < n; i++) {
        if (!batch_step(ex, cm, &tx, batch[i], i == n - 1)) {
            for (int k = i + 1; k < n; k++) batch[k]->err = RF_ERR_UNAVAILABLE;
            batch_lost(ex, cm, batch, i + 1, RF_ERR_UNAVAILABLE);
            return false;
        }
    }
    /* A user account's row may be locked early by another batch's
     * operation, so the flush waits for it as long as an operation would
     * (lock_timeout); the system accounts are locked by flushes alone, in id
     * order after every user row, so their wait has no cycle and no bound. */
    err = defer_flush(ex, &tx, EXEC_FLUSH_USERS);
    bool deferred = defer_mark(ex, cm) != 0; /* system work is left */
    if (!err && deferred && ex->ops->batch_flush_begins)
        err = ex->ops->batch_flush_begins(cm->conn);
    if (!err) err = defer_flush(ex, &tx, EXEC_FLUSH_SYSTEM);
    if (err) {
        batch_rerun_all(ex, cm, batch, n);
        return users && flush_refused(err);
    }
    arm_commit_hooks(ex, cm->conn);
    err = ex->ops->commit(cm->conn);
    if (err == RF_ERR_RETRY) {
        batch_rerun_all(ex, cm, batch, n); /* the store says: surely rolled back */
    } else if (err) {
        batch_lost(ex, cm, batch, n, err == RF_ERR_OUTCOME_UNKNOWN ? err : RF_ERR_UNAVAILABLE);
    } else {
        for (int i = 0; i < n; i++)
            if (batch[i]->err == RF_OK) crash_if_armed(ex, batch[i]->op);
    }
    count_batch(ex, n, started_us);
    return false;
}

/* After a refused flush: the operations to run again, as one batch with
 * every move applied at once (what a user-deferred flush refused is then
 * decided per operation, by its own guard), instead of a transaction each.
 * What this batch cannot decide either is left marked for rerun_alone. */
static void rerun_batch(struct rf_exec *ex, struct committer *cm, struct job **batch, int n) {
    struct job *again[RF_BATCH_OPS_MAX];
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!batch[i]->rerun) continue;
        RF_ASSERT(batch[i]->err == RF_ERR_RETRY);
        batch[i]->rerun = false;
        again[m++] = batch[i];
    }
    RF_ASSERT(m <= n);
    if (m == 0) return;
    atomic_fetch_add(&ex->retries, 1);
    bool refused = run_batch(ex, cm, again, m, false);
    RF_ASSERT(!refused); /* users off: nothing of theirs to refuse */
}

/* The operations a batch could not decide run one per transaction, with the
 * bounded retry of run_in_tx: a batch that keeps failing degrades to what
 * PostgreSQL did before batching, never to an error a lone operation would
 * not meet. */
static void rerun_alone(struct rf_exec *ex, struct committer *cm, struct job **batch, int n) {
    for (int i = 0; i < n; i++) {
        if (!batch[i]->rerun) continue;
        RF_ASSERT(batch[i]->err == RF_ERR_RETRY);
        batch[i]->rerun = false;
        atomic_fetch_add(&ex->retries, 1);
        rf_err err = committer_connect(ex, cm);
        batch[i]->err = err ? err : run_in_tx(ex, cm->conn, cm->defer, batch[i]->op, 1);
    }
}

/* Answers every job of a finished batch: a waiter is woken, a submitted job's
 * done runs (outside the lock) and its slot goes back to the free list. */
static void answer(struct rf_exec *ex, struct job **batch, int n) {
    struct { exec_done_fn fn; void *arg; rf_err err; } calls[RF_BATCH_OPS_MAX];
    struct job *waiters[RF_BATCH_OPS_MAX];
    int n_calls = 0, n_waiters = 0;
    pthread_mutex_lock(&ex->mu);
    for (int i = 0; i < n; i++) { /* answered once, after its COMMIT or rollback returned */
        struct job *j = batch[i];
        RF_ASSERT(!j->done && j->decided && !j->rerun && j->err != RF_ERR_RETRY);
        if (j->done_fn) {
            calls[n_calls].fn = j->done_fn;
            calls[n_calls].arg = j->done_arg;
            calls[n_calls].err = j->err;
            n_calls++;
            job_free(ex, j);
        } else {
            j->done = true;
            waiters[n_waiters++] = j;
        }
    }
    pthread_mutex_unlock(&ex->mu);
    /* After its post a waiter's job (on its stack) may be gone: not touched. */
    for (int i = 0; i < n_waiters; i++) sem_post(&waiters[i]->answered);
    for (int i = 0; i < n_calls; i++) calls[i].fn(calls[i].arg, calls[i].err);
}

/* Takes up to batch_ops_max of cm's queued jobs; 0 when closing and drained. */
static int take_batch(struct rf_exec *ex, struct committer *cm, struct job **batch) {
    pthread_mutex_lock(&ex->mu);
    while (cm->q_len == 0 && !ex->closing) pthread_cond_wait(&cm->cond, &ex->mu);
    int n = cm->q_len < ex->opt.batch_ops_max ? cm->q_len : ex->opt.batch_ops_max;
    RF_ASSERT(n >= 0 && n <= RF_BATCH_OPS_MAX && cm->q_len <= ex->q_len); /* batch[] holds it */
    for (int i = 0; i < n; i++) {
        batch[i] = cm->head;
        cm->head = cm->head->next;
    }
    if (!cm->head) cm->tail = NULL;
    cm->q_len -= n;
    ex->q_len -= n;
    pthread_mutex_unlock(&ex->mu);
    return n;
}

/* ---- SQLite: the WAL made durable off the writer ---------------------------
 *
 * At sync full a commit on the writer only appends to the WAL
 * (commit_unsynced) and the writer goes on to the next batch at once; the
 * syncer fdatasyncs the WAL and only then answers the batches committed
 * before it began, many at a time. So the writer never waits for the disk,
 * and every answer still waits for its own commit to be durable. Every
 * batch goes through here, even one that committed nothing: its answers
 * (an idempotent replay, a refusal for lack of funds) may rest on what an
 * earlier batch wrote, and nobody may learn of that before it is durable.
 * Readers may see a commit before its fsync: a crash of this process loses
 * nothing (the page cache keeps the WAL), and a power cut can only undo
 * commits nobody was told of, whose callers try again. */

/* Hands a decided batch to the syncer; waits while RF_SYNC_JOBS_MAX answers
 * already wait for a sync (a bound on the pipeline, not a queue). */
static void sync_hand(struct rf_exec *ex, struct job **batch, int n) {
    RF_ASSERT(n >= 1 && n <= RF_BATCH_OPS_MAX && RF_BATCH_OPS_MAX <= RF_SYNC_JOBS_MAX);
    pthread_mutex_lock(&ex->sync_mu);
    while (ex->sync_n + n > RF_SYNC_JOBS_MAX) pthread_cond_wait(&ex->sync_room, &ex->sync_mu);
    memcpy(ex->sync_jobs + ex->sync_n, batch, (size_t)n * sizeof *batch);
    ex->sync_n += n;
    pthread_cond_signal(&ex->sync_work);
    pthread_mutex_unlock(&ex->sync_mu);
}

/* One fdatasync for every job handed over before it began, then their
 * answers. When the sync fails nothing is known of what reached the disk:
 * what succeeded is answered RF_ERR_OUTCOME_UNKNOWN (it is committed and
 * visible; its Idempotency-Key replays it). */
static void sync_answer(struct rf_exec *ex, struct job **jobs, int n) {
    rf_err err = atomic_exchange(&ex->fail_sync, false) ? RF_ERR_UNAVAILABLE
                                                        : ex->ops->wal_sync(ex->sync_conn);
    if (err) {
        atomic_fetch_add(&ex->store_errors, 1);
        for (int i = 0; i < n; i++) {
            if (jobs[i]->err != RF_OK) continue;
            undo(jobs[i]->op);
            jobs[i]->err = RF_ERR_OUTCOME_UNKNOWN;
        }
    }
    for (int i = 0; i < n; i += RF_BATCH_OPS_MAX)
        answer(ex, jobs + i, n - i < RF_BATCH_OPS_MAX ? n - i : RF_BATCH_OPS_MAX);
}

static void *syncer_main(void *arg) {
    struct rf_exec *ex = arg;
    struct job *jobs[RF_SYNC_JOBS_MAX];
    for (;;) {
        pthread_mutex_lock(&ex->sync_mu);
        while (ex->sync_n == 0 && !ex->sync_stop) pthread_cond_wait(&ex->sync_work, &ex->sync_mu);
        int n = ex->sync_n;
        memcpy(jobs, ex->sync_jobs, (size_t)n * sizeof *jobs);
        ex->sync_n = 0;
        pthread_cond_broadcast(&ex->sync_room);
        pthread_mutex_unlock(&ex->sync_mu);
        if (n == 0) return NULL; /* stopping, and every batch answered */
        sync_answer(ex, jobs, n);
    }
}

/* Before the committer starts: the syncer runs only where the store can
 * leave a commit's fsync to it (SQLite) and the caller asked for durable
 * answers (sync full). */
static rf_err start_syncer(struct rf_exec *ex) {
    if (ex->opt.sync != RF_SYNC_FULL || !ex->ops->commit_unsynced) return RF_OK;
    rf_err err = ex->ops->connect(ex->url, &ex->opt, false, &ex->sync_conn);
    if (err) return err;
    if (pthread_create(&ex->sync_thread, NULL, syncer_main, ex) != 0) return RF_ERR_INTERNAL;
    ex->sync_running = true;
    return RF_OK;
}

/* After the committers ended: every batch they handed over is answered. */
static void stop_syncer(struct rf_exec *ex) {
    pthread_mutex_lock(&ex->sync_mu);
    ex->sync_stop = true;
    pthread_cond_signal(&ex->sync_work);
    pthread_mutex_unlock(&ex->sync_mu);
    if (ex->sync_running) pthread_join(ex->sync_thread, NULL);
    ex->sync_running = false;
    RF_ASSERT(ex->sync_n == 0);
    if (ex->sync_conn) ex->ops->disconnect(ex->sync_conn);
    ex->sync_conn = NULL;
}

static void *committer_main(void *arg) {
    struct committer *cm = arg;
    struct rf_exec *ex = cm->ex;
    struct job *batch[RF_BATCH_OPS_MAX];
    for (;;) {
        int n = take_batch(ex, cm, batch);
        if (n == 0) return NULL;
        if (run_batch(ex, cm, batch, n, true)) rerun_batch(ex, cm, batch, n);
        rerun_alone(ex, cm, batch, n);
        batch_decided(batch, n);
        committer_check(ex, cm);
        if (ex->sync_running) sync_hand(ex, batch, n);
        else answer(ex, batch, n);
    }
}

/* The committer for job: operations with one shard (one natural key) go to
 * one committer, in queue order, so a process's batches never wait for each
 * other's locks on a hot row; the rest (every one with spread_keys) to the
 * shortest queue. */
static struct committer *committer_for(struct rf_exec *ex, const struct job *job) {
    if (job->op->shard && !ex->opt.spread_keys)
        return &ex->committers[job->op->shard % (uint32_t)ex->n_committers];
    struct committer *best = &ex->committers[0];
    for (int i = 1; i < ex->n_committers; i++)
        if (ex->committers[i].q_len < best->q_len) best = &ex->committers[i];
    return best;
}

/* Queues job (under mu); an error (nothing queued) when closing or full. */
static rf_err enqueue(struct rf_exec *ex, struct job *job) {
    if (ex->closing) return RF_ERR_SHUTTING_DOWN;
    if (ex->q_len >= ex->q_cap) {
        atomic_fetch_add(&ex->overloaded, 1);
        return RF_ERR_OVERLOADED;
    }
    struct committer *cm = committer_for(ex, job);
    job->next = NULL;
    if (cm->tail) cm->tail->next = job;
    else cm->head = job;
    cm->tail = job;
    cm->q_len++;
    ex->q_len++;
    RF_ASSERT(ex->q_len <= ex->q_cap); /* checked full above, under the same lock */
    pthread_cond_signal(&cm->cond);
    return RF_OK;
}

static rf_err enqueue_and_wait(struct rf_exec *ex, const struct exec_op *op) {
    struct job job = {.op = op, .err = RF_OK, .done = false};
    if (sem_init(&job.answered, 0, 0) != 0) return RF_ERR_INTERNAL;
    pthread_mutex_lock(&ex->mu);
    rf_err err = enqueue(ex, &job);
    pthread_mutex_unlock(&ex->mu);
    if (!err) {
        while (sem_wait(&job.answered) != 0) RF_ASSERT(errno == EINTR);
        err = job.err; /* the post ordered the committer's writes before this read */
    }
    sem_destroy(&job.answered);
    return err;
}

/* ---- public ------------------------------------------------------------ */

rf_err exec_run(struct rf_exec *ex, const struct exec_op *op) {
    RF_ASSERT(ex && op && op->fn && op->name);
    if (atomic_load(&ex->shutting_down)) return RF_ERR_SHUTTING_DOWN;
    if (op->write) return enqueue_and_wait(ex, op);
    return run_pooled(ex, op);
}

void exec_submit(struct rf_exec *ex, const struct exec_op *op, exec_done_fn done, void *arg) {
    RF_ASSERT(ex && op && op->fn && op->name && done);
    if (!op->write || atomic_load(&ex->shutting_down)) {
        done(arg, exec_run(ex, op)); /* a read runs on the caller's thread */
        return;
    }
    pthread_mutex_lock(&ex->mu);
    struct job *job = job_alloc(ex); /* slots cover the queue plus every batch */
    rf_err err = RF_ERR_OVERLOADED;
    if (job) {
        *job = (struct job){.op = op, .done_fn = done, .done_arg = arg};
        err = enqueue(ex, job);
        if (err) job_free(ex, job);
    } else {
        atomic_fetch_add(&ex->overloaded, 1);
    }
    pthread_mutex_unlock(&ex->mu);
    if (err) done(arg, err);
}

/* A field left 0 gets its default; one past its bound is clamped to it (a
 * queue larger than RF_QUEUE_OPS_MAX would also outgrow the in-flight key
 * set, which is sized by it). */
static void options_defaults(struct rf_options *o) {
    if (o->queue_ops_max <= 0 || o->queue_ops_max > RF_QUEUE_OPS_MAX)
        o->queue_ops_max = RF_QUEUE_OPS_MAX;
    if (o->batch_ops_max <= 0 || o->batch_ops_max > RF_BATCH_OPS_MAX)
        o->batch_ops_max = RF_BATCH_OPS_MAX;
    if (o->pool_conns <= 0) o->pool_conns = RF_POOL_CONNS_DEFAULT;
    if (o->pool_conns > RF_POOL_CONNS_MAX) o->pool_conns = RF_POOL_CONNS_MAX;
    if (o->busy_timeout_ms <= 0) o->busy_timeout_ms = RF_BUSY_TIMEOUT_MS;
    if (o->pg_timeout_ms <= 0) o->pg_timeout_ms = RF_PG_TIMEOUT_MS;
    if (o->writers <= 0) o->writers = RF_WRITERS_DEFAULT;
    if (o->writers > RF_WRITERS_MAX) o->writers = RF_WRITERS_MAX;
}

/* One committer for SQLite (connected now: its write connection also proves
 * the file opens), opt.writers for PostgreSQL (they connect on first use). */
static rf_err start_committers(struct rf_exec *ex) {
    bool sqlite = ex->ops->backend == STORE_SQLITE;
    ex->n_committers = sqlite ? 1 : ex->opt.writers;
    RF_ASSERT(ex->n_committers >= 1 && ex->n_committers <= RF_WRITERS_MAX);
    for (int i = 0; i < ex->n_committers; i++) {
        struct committer *cm = &ex->committers[i];
        cm->ex = ex;
        pthread_cond_init(&cm->cond, NULL);
        if (ex->defer_ops && !(cm->defer = calloc(1, ex->defer_ops->buf_bytes)))
            return RF_ERR_NOMEM;
        if (sqlite) {
            rf_err err = committer_connect(ex, cm);
            if (err) return err;
        }
        if (pthread_create(&cm->thread, NULL, committer_main, cm) != 0) return RF_ERR_INTERNAL;
        cm->running = true;
    }
    return RF_OK;
}

/* Job slots for exec_submit: the queue's bound plus every committer's batch
 * plus the answers waiting for the syncer, so a slot exists for every job
 * the queue accepts. */
static rf_err slots_alloc(struct rf_exec *ex) {
    int n = ex->q_cap + RF_WRITERS_MAX * RF_BATCH_OPS_MAX + RF_SYNC_JOBS_MAX;
    ex->slots = calloc((size_t)n, sizeof *ex->slots);
    if (!ex->slots) return RF_ERR_NOMEM;
    for (int i = n - 1; i >= 0; i--) {
        ex->slots[i].next_free = ex->free_slots;
        ex->free_slots = &ex->slots[i];
    }
    return RF_OK;
}

/* ---- SQLite: checkpoints off the writer ---------------------------------- */

/* After each commit (on the committer): a WAL past RF_SQLITE_CHECKPOINT_PAGES
 * wakes the checkpointer, which copies pages back into the database and
 * fsyncs it while the committer goes on appending. A checkpoint running
 * beside a busy writer never catches up with it, and only a WAL whose every
 * frame is copied back starts over, so past RF_SQLITE_WAL_PAGES_MAX the
 * committer finishes the job itself between two batches (true: checkpoint
 * here): what is left is the few frames since the background pass. */
static bool wal_grew(void *arg, int pages) {
    struct rf_exec *ex = arg;
    if (pages < RF_SQLITE_CHECKPOINT_PAGES) return false;
    pthread_mutex_lock(&ex->ckpt_mu);
    ex->ckpt_due = true;
    pthread_cond_signal(&ex->ckpt_cond);
    pthread_mutex_unlock(&ex->ckpt_mu);
    return pages >= RF_SQLITE_WAL_PAGES_MAX;
}

static void *checkpointer_main(void *arg) {
    struct rf_exec *ex = arg;
    for (;;) {
        pthread_mutex_lock(&ex->ckpt_mu);
        while (!ex->ckpt_due && !ex->ckpt_stop) pthread_cond_wait(&ex->ckpt_cond, &ex->ckpt_mu);
        bool stop = ex->ckpt_stop;
        ex->ckpt_due = false;
        pthread_mutex_unlock(&ex->ckpt_mu);
        if (stop) return NULL;
        if (ex->ops->checkpoint(ex->ckpt_conn) != RF_OK) atomic_fetch_add(&ex->store_errors, 1);
    }
}

static rf_err start_checkpointer(struct rf_exec *ex) {
    rf_err err = ex->ops->connect(ex->url, &ex->opt, false, &ex->ckpt_conn);
    if (err) return err;
    ex->ops->on_wal(ex->committers[0].conn, wal_grew, ex);
    if (pthread_create(&ex->ckpt_thread, NULL, checkpointer_main, ex) != 0) return RF_ERR_INTERNAL;
    ex->ckpt_running = true;
    return RF_OK;
}

static void stop_checkpointer(struct rf_exec *ex) {
    pthread_mutex_lock(&ex->ckpt_mu);
    ex->ckpt_stop = true;
    pthread_cond_signal(&ex->ckpt_cond);
    pthread_mutex_unlock(&ex->ckpt_mu);
    if (ex->ckpt_running) pthread_join(ex->ckpt_thread, NULL);
    if (ex->ckpt_conn) ex->ops->disconnect(ex->ckpt_conn);
}

static rf_err start_sqlite(struct rf_exec *ex) {
    ex->pool.cap = RF_READERS_MAX;
    ex->pool.readonly = true;
    rf_err err = start_syncer(ex);
    if (!err) err = start_committers(ex);
    return err ? err : start_checkpointer(ex);
}

static rf_err start_postgres(struct rf_exec *ex) {
    ex->pool.cap = ex->opt.pool_conns;
    if (ex->opt.batch_ops_max > RF_PG_BATCH_OPS_MAX) ex->opt.batch_ops_max = RF_PG_BATCH_OPS_MAX;
    struct store_conn *c = NULL; /* connect one now: fail fast on a bad url */
    rf_err err = pool_get(ex, &ex->pool, &c);
    if (err) return err;
    pool_put(ex, &ex->pool, c);
    return start_committers(ex);
}

rf_err exec_open(const char *url, const struct rf_options *opt, struct rf *db,
                 const struct exec_defer_ops *defer, struct rf_exec **out) {
    const struct store_ops *ops = store_for_url(url);
    if (!ops) return RF_ERR_INVALID;
    struct rf_exec *ex = calloc(1, sizeof *ex);
    if (!ex) return RF_ERR_NOMEM;
    ex->ops = ops;
    ex->db = db;
    ex->defer_ops = defer;
    ex->url = strdup(url);
    ex->opt = opt ? *opt : (struct rf_options){0};
    options_defaults(&ex->opt);
    ex->q_cap = ex->opt.queue_ops_max;
    pthread_mutex_init(&ex->mu, NULL);
    pthread_mutex_init(&ex->ckpt_mu, NULL);
    pthread_cond_init(&ex->ckpt_cond, NULL);
    pthread_mutex_init(&ex->sync_mu, NULL);
    pthread_cond_init(&ex->sync_work, NULL);
    pthread_cond_init(&ex->sync_room, NULL);
    pthread_cond_init(&ex->pool.cond, NULL);
    rf_err err = !ex->url ? RF_ERR_NOMEM : slots_alloc(ex);
    if (!err) err = ops->backend == STORE_SQLITE ? start_sqlite(ex) : start_postgres(ex);
    if (err) {
        exec_close(ex);
        return err;
    }
    *out = ex;
    return RF_OK;
}

void exec_shutdown_begin(struct rf_exec *ex) { atomic_store(&ex->shutting_down, true); }

void exec_close(struct rf_exec *ex) {
    if (!ex) return;
    atomic_store(&ex->shutting_down, true);
    pthread_mutex_lock(&ex->mu);
    ex->closing = true;
    for (int i = 0; i < ex->n_committers; i++)
        if (ex->committers[i].ex) pthread_cond_broadcast(&ex->committers[i].cond);
    pthread_mutex_unlock(&ex->mu);
    for (int i = 0; i < ex->n_committers; i++) { /* they drain the queue, then end */
        struct committer *cm = &ex->committers[i];
        if (cm->running) pthread_join(cm->thread, NULL);
    }
    stop_syncer(ex); /* answers what the committers handed it */
    pthread_cond_destroy(&ex->sync_room);
    pthread_cond_destroy(&ex->sync_work);
    pthread_mutex_destroy(&ex->sync_mu);
    for (int i = 0; i < ex->n_committers; i++) {
        struct committer *cm = &ex->committers[i];
        if (cm->conn) ex->ops->disconnect(cm->conn);
        free(cm->defer);
        if (cm->ex) pthread_cond_destroy(&cm->cond);
    }
    free(ex->slots);
    stop_checkpointer(ex); /* after the committers: their last commits may have woken it */
    pthread_cond_destroy(&ex->ckpt_cond);
    pthread_mutex_destroy(&ex->ckpt_mu);
    RF_ASSERT(ex->pool.n_free == ex->pool.n_open); /* no connection still lent out */
    for (int i = 0; i < ex->pool.n_free; i++) ex->ops->disconnect(ex->pool.free[i]);
    pthread_cond_destroy(&ex->pool.cond);
    pthread_mutex_destroy(&ex->mu);
    free(ex->url);
    free(ex);
}

void exec_stats(struct rf_exec *ex, struct rf_stats *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&ex->mu);
    out->queue_depth = ex->q_len + ex->pool.waiters;
    pthread_mutex_unlock(&ex->mu);
    out->queue_ops_max = ex->q_cap;
    out->batches = atomic_load(&ex->batches);
    out->batch_ops_total = atomic_load(&ex->batch_ops_total);
    for (int i = 0; i < 8; i++) out->batch_ops_hist[i] = atomic_load(&ex->hist[i]);
    out->retries = atomic_load(&ex->retries);
    out->overloaded = atomic_load(&ex->overloaded);
    out->store_errors = atomic_load(&ex->store_errors);
    for (int i = 0; i < RF_STATS_TX_BUCKETS; i++) out->tx_us_hist[i] = atomic_load(&ex->tx_hist[i]);
    out->tx_us_total = atomic_load(&ex->tx_us_total);
}

const struct store_ops *exec_store(struct rf_exec *ex) { return ex->ops; }

void exec_test_fail_next(struct rf_exec *ex, const char *op_name, rf_err err) {
    pthread_mutex_lock(&ex->mu);
    snprintf(ex->fail_op, sizeof ex->fail_op, "%s", op_name ? op_name : "");
    ex->fail_err = err;
    atomic_store(&ex->fail_armed, ex->fail_op[0] != '\0');
    pthread_mutex_unlock(&ex->mu);
}

void exec_test_set_op_delay(struct rf_exec *ex, int delay_ms) {
    if (delay_ms < 0) delay_ms = 0;
    if (delay_ms > RF_TEST_DELAY_MS_MAX) delay_ms = RF_TEST_DELAY_MS_MAX;
    atomic_store(&ex->delay_ms, delay_ms);
}

void exec_test_fail_next_commit(struct rf_exec *ex) { atomic_store(&ex->fail_commit, true); }

void exec_test_fail_next_sync(struct rf_exec *ex) { atomic_store(&ex->fail_sync, true); }

void exec_test_crash_after_commit(struct rf_exec *ex, const char *op_name) {
    RF_ASSERT(op_name && !atomic_load(&ex->crash_armed));
    snprintf(ex->crash_op, sizeof ex->crash_op, "%s", op_name);
    atomic_store(&ex->crash_armed, true);
}

void exec_test_lose_commit_replies(struct rf_exec *ex, int n) {
    atomic_store(&ex->lose_replies, n > 0 ? n : 0);
}

void exec_test_fail_serialization(struct rf_exec *ex, int n) {
    atomic_store(&ex->fail_serial, n > 0 ? n : 0);
}

void exec_test_set_serializable(struct rf_exec *ex, bool on) {
    atomic_store(&ex->serializable, on);
}

int64_t exec_test_op_runs(struct rf_exec *ex) { return atomic_load(&ex->op_runs); }
