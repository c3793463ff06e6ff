/*
 * executor.c - the only place that begins and commits transactions.
 *
 * SQLite: one writer thread owns the write connection. Callers enqueue write
 * operations on a bounded queue (full -> RF_ERR_OVERLOADED, never unbounded
 * memory) and sleep; the writer takes up to batch_ops_max of them, runs them
 * in ONE "BEGIN IMMEDIATE ... COMMIT" with a SAVEPOINT each (group commit:
 * one fsync for many operations, and one operation's failure is rolled back
 * alone), and wakes every caller only after COMMIT returned, so nothing is
 * acknowledged that is not durable. BEGIN IMMEDIATE takes the file's write
 * lock, so two racefree processes on one file serialize their batches
 * (busy_timeout waits). Reads run on their own WAL connections and never wait
 * for the writer.
 *
 * PostgreSQL: a bounded connection pool; each write operation is BEGIN ...
 * COMMIT on one pooled connection, retried a bounded number of times on
 * serialization failure or deadlock (RF_ERR_RETRY; after RF_RETRIES_MAX
 * attempts RF_ERR_UNAVAILABLE, nothing applied); reads run statement by
 * statement. A broken connection is dropped and replaced on next use. Every
 * wait is bounded by pg_timeout_ms: the pool wait here, connect, statements
 * and COMMIT in the store (postgres.c), so a frozen server gives prompt 503s.
 *
 * A COMMIT whose answer was lost is never run again: the store resolves it
 * (committed -> RF_OK, the operation's real result is answered; aborted ->
 * RF_ERR_UNAVAILABLE; unknown -> RF_ERR_OUTCOME_UNKNOWN) and never reports
 * it as RF_ERR_RETRY, the only error that re-runs an operation here, and a
 * broken connection ends the operation instead of being replaced under it.
 * Re-running a transaction that may have committed would apply it twice.
 */
#include "exec/executor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/limits.h"

struct job {
    const struct exec_op *op;
    rf_err err;
    bool done;
    bool decided; /* its batch's BEGIN failed, its COMMIT returned, or it was rolled back */
    pthread_cond_t cond;
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

    /* SQLite writer */
    pthread_t writer;
    bool writer_running;
    struct store_conn *wconn;
    void *wdefer;        /* defer: the writer's buffer (defer_ops->buf_bytes), or NULL */
    struct job **queue;  /* ring of queue_cap */
    int q_head, q_len, q_cap;
    pthread_cond_t q_cond;
    bool closing;

    struct pool pool;    /* SQLite readers, or the PostgreSQL pool */
    atomic_bool shutting_down;

    atomic_llong batches, batch_ops_total, retries, overloaded, store_errors;
    atomic_llong hist[8];

    /* test hooks */
    char fail_op[64];   /* guarded by mu */
    rf_err fail_err;
    atomic_bool fail_armed;
    atomic_int delay_ms;
    atomic_bool fail_commit;
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

static void count_batch(struct rf_exec *ex, int n) {
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

/* ---- one operation in its own transaction (PostgreSQL; reads) ----------- */

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
    fprintf(stderr, "racefree: test hook: exiting right after the commit of %s\n", op->name);
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

/* defer: applies the transaction's deferred moves right before COMMIT; on a
 * failure the operation's effect is gone with the rollback. */
static rf_err defer_flush(struct rf_exec *ex, struct rf_tx *tx, const struct exec_op *op) {
    rf_err err = ex->defer_ops->flush(tx);
    if (err) undo(op);
    return err;
}

/* Retries only RF_ERR_RETRY, which a lost COMMIT never is (see the top). */
static rf_err run_in_tx_with(struct rf_exec *ex, struct store_conn *c, const struct exec_op *op,
                             void *defer) {
    for (int attempt = 0;; attempt++) {
        RF_ASSERT(attempt < RF_RETRIES_MAX); /* the bound below ends the loop first */
        struct rf_tx tx = make_tx(ex, c, op->write);
        tx.defer = defer; /* defer: */
        if (op->write && atomic_load(&ex->serializable) && ex->ops->serializable_next_begin)
            ex->ops->serializable_next_begin(c);
        rf_err err = ex->ops->begin(c, op->write);
        if (!err && op->write && ex->ops->backend == STORE_POSTGRES) {
            int delay = atomic_load(&ex->delay_ms);
            if (delay > 0) sleep_ms(delay);
        }
        if (!err && defer) ex->defer_ops->reset(defer); /* defer: at BEGIN */
        if (!err) err = run_one(ex, &tx, op);
        if (!err && defer) err = defer_flush(ex, &tx, op); /* defer: */
        if (!err && op->write) err = test_serialization_failure(ex, c, op);
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

/* defer: a buffer per write transaction for now; the batched executor keeps
 * one per batch instead of allocating it per operation. */
static rf_err run_in_tx(struct rf_exec *ex, struct store_conn *c, const struct exec_op *op) {
    bool deferring = op->write && ex->defer_ops;
    void *defer = deferring ? malloc(ex->defer_ops->buf_bytes) : NULL;
    if (deferring && !defer) return RF_ERR_NOMEM;
    rf_err err = run_in_tx_with(ex, c, op, defer);
    free(defer);
    return err;
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
    err = autocommit ? run_autocommit_read(ex, c, op) : run_in_tx(ex, c, op);
    pool_put(ex, &ex->pool, c);
    return err;
}

/* ---- SQLite writer: group commit ---------------------------------------- */

/* The batch's outcome is final: what run_batch answers is what the store has. */
static void batch_decided(struct job **batch, int n) {
    for (int i = 0; i < n; i++) batch[i]->decided = true;
}

/* Ends a batch that cannot commit: every operation that had succeeded is
 * undone and answered as a store error. */
static void batch_lost(struct rf_exec *ex, struct job **batch, int n) {
    ex->ops->rollback(ex->wconn);
    atomic_fetch_add(&ex->store_errors, 1);
    for (int i = 0; i < n; i++) {
        if (batch[i]->err == RF_OK) {
            undo(batch[i]->op);
            batch[i]->err = RF_ERR_UNAVAILABLE;
        }
        RF_ASSERT(batch[i]->err != RF_OK); /* rolled back: nobody is told success */
    }
}

/* Runs batch[i] inside savepoint 1; false if the transaction itself is lost. */
static bool batch_step(struct rf_exec *ex, struct rf_tx *tx, struct job *job) {
    const struct store_ops *ops = ex->ops;
    rf_err err = ops->savepoint(tx->conn, 1);
    if (err) { job->err = err; return false; }
    tx->now_ms = rf_now_ms();
    int mark = tx->defer ? ex->defer_ops->mark(tx->defer) : 0; /* defer: */
    job->err = run_one(ex, tx, job->op);
    RF_ASSERT(job->err != RF_ERR_RETRY); /* SQLite has no serialization failure to re-run */
    if (job->err) {
        ops->rollback_to(tx->conn, 1);
        if (tx->defer) ex->defer_ops->rewind(tx->defer, mark); /* defer: its moves are gone */
        if (job->err == RF_ERR_UNAVAILABLE) atomic_fetch_add(&ex->store_errors, 1);
    }
    if (ops->release(tx->conn, 1) != RF_OK) {
        if (job->err == RF_OK) undo(job->op);
        if (job->err == RF_OK) job->err = RF_ERR_UNAVAILABLE;
        RF_ASSERT(job->err != RF_OK); /* its savepoint is gone: never a success */
        return false;
    }
    return true;
}

/* defer: the flush found that applying the deferred moves one by one would
 * have refused one (a system account leaving int64): the batch is rolled
 * back, undecided, to run again with every move applied at once, so only the
 * operation whose move is refused fails. */
static bool batch_flush_refused(struct rf_exec *ex, struct job **batch, int n) {
    ex->ops->rollback(ex->wconn);
    for (int i = 0; i < n; i++)
        if (batch[i]->err == RF_OK) undo(batch[i]->op);
    return true;
}

/* Returns true when the batch must run again without deferring (defer:). */
static bool run_batch_tx(struct rf_exec *ex, struct job **batch, int n, void *defer) {
    RF_ASSERT(n >= 1 && n <= ex->opt.batch_ops_max && ex->opt.batch_ops_max <= RF_BATCH_OPS_MAX);
    struct rf_tx tx = make_tx(ex, ex->wconn, true);
    tx.defer = defer; /* defer: */
    for (int i = 0; i < n; i++) batch[i]->err = RF_OK;
    rf_err err = ex->ops->begin(ex->wconn, true);
    if (err) {
        atomic_fetch_add(&ex->store_errors, 1);
        for (int i = 0; i < n; i++) batch[i]->err = err;
        batch_decided(batch, n);
        return false;
    }
    if (defer) ex->defer_ops->reset(defer); /* defer: at BEGIN */
    int delay = atomic_load(&ex->delay_ms);
    if (delay > 0) sleep_ms(delay);
    for (int i = 0; i < n; i++) {
        if (!batch_step(ex, &tx, batch[i])) {
            for (int k = i + 1; k < n; k++) batch[k]->err = RF_ERR_UNAVAILABLE;
            batch_lost(ex, batch, i + 1);
            batch_decided(batch, n);
            return false;
        }
    }
    err = defer ? ex->defer_ops->flush(&tx) : RF_OK; /* defer: right before COMMIT */
    if (err == RF_ERR_AMOUNT_OVERFLOW) return batch_flush_refused(ex, batch, n);
    if (err) {
        batch_lost(ex, batch, n);
        batch_decided(batch, n);
        return false;
    }
    arm_commit_hooks(ex, ex->wconn);
    if (ex->ops->commit(ex->wconn) != RF_OK) {
        batch_lost(ex, batch, n);
    } else {
        for (int i = 0; i < n; i++) crash_if_armed(ex, batch[i]->op);
    }
    batch_decided(batch, n);
    count_batch(ex, n);
    return false;
}

static void run_batch(struct rf_exec *ex, struct job **batch, int n) {
    if (run_batch_tx(ex, batch, n, ex->wdefer)) run_batch_tx(ex, batch, n, NULL); /* defer: */
}

static void *writer_main(void *arg) {
    struct rf_exec *ex = arg;
    struct job *batch[RF_BATCH_OPS_MAX];
    for (;;) {
        pthread_mutex_lock(&ex->mu);
        while (ex->q_len == 0 && !ex->closing) pthread_cond_wait(&ex->q_cond, &ex->mu);
        if (ex->q_len == 0) { /* closing and drained */
            pthread_mutex_unlock(&ex->mu);
            return NULL;
        }
        int n = ex->q_len < ex->opt.batch_ops_max ? ex->q_len : ex->opt.batch_ops_max;
        RF_ASSERT(n >= 1 && n <= RF_BATCH_OPS_MAX && ex->q_len <= ex->q_cap); /* batch[] holds it */
        for (int i = 0; i < n; i++) {
            batch[i] = ex->queue[ex->q_head];
            ex->q_head = (ex->q_head + 1) % ex->q_cap;
        }
        ex->q_len -= n;
        pthread_mutex_unlock(&ex->mu);

        run_batch(ex, batch, n);

        pthread_mutex_lock(&ex->mu);
        for (int i = 0; i < n; i++) { /* woken once, after its COMMIT or rollback returned */
            RF_ASSERT(!batch[i]->done && batch[i]->decided);
            batch[i]->done = true;
            pthread_cond_signal(&batch[i]->cond);
        }
        pthread_mutex_unlock(&ex->mu);
    }
}

static rf_err enqueue_and_wait(struct rf_exec *ex, const struct exec_op *op) {
    struct job job = {.op = op, .err = RF_OK, .done = false};
    pthread_cond_init(&job.cond, NULL);
    pthread_mutex_lock(&ex->mu);
    if (ex->closing) {
        pthread_mutex_unlock(&ex->mu);
        pthread_cond_destroy(&job.cond);
        return RF_ERR_SHUTTING_DOWN;
    }
    if (ex->q_len >= ex->q_cap) {
        pthread_mutex_unlock(&ex->mu);
        pthread_cond_destroy(&job.cond);
        atomic_fetch_add(&ex->overloaded, 1);
        return RF_ERR_OVERLOADED;
    }
    ex->queue[(ex->q_head + ex->q_len) % ex->q_cap] = &job;
    ex->q_len++;
    RF_ASSERT(ex->q_len <= ex->q_cap); /* checked full above, under the same lock */
    pthread_cond_signal(&ex->q_cond);
    while (!job.done) pthread_cond_wait(&job.cond, &ex->mu);
    pthread_mutex_unlock(&ex->mu);
    pthread_cond_destroy(&job.cond);
    return job.err;
}

/* ---- public ------------------------------------------------------------ */

/* For now the submitting thread runs the operation and waits; the executor
 * threads will answer through done once they complete operations themselves. */
void exec_submit(struct rf_exec *ex, const struct exec_op *op, exec_done_fn done, void *arg) {
    RF_ASSERT(done);
    done(arg, exec_run(ex, op));
}

rf_err exec_run(struct rf_exec *ex, const struct exec_op *op) {
    RF_ASSERT(ex && op && op->fn && op->name);
    if (atomic_load(&ex->shutting_down)) return RF_ERR_SHUTTING_DOWN;
    if (ex->ops->backend == STORE_SQLITE && op->write) return enqueue_and_wait(ex, op);
    return run_pooled(ex, op);
}

static void options_defaults(struct rf_options *o) {
    if (o->queue_ops_max <= 0) o->queue_ops_max = RF_QUEUE_OPS_MAX;
    if (o->batch_ops_max <= 0 || o->batch_ops_max > RF_BATCH_OPS_MAX)
        o->batch_ops_max = RF_BATCH_OPS_MAX;
    if (o->pool_conns <= 0) o->pool_conns = RF_POOL_CONNS_DEFAULT;
    if (o->pool_conns > RF_POOL_CONNS_MAX) o->pool_conns = RF_POOL_CONNS_MAX;
    if (o->busy_timeout_ms <= 0) o->busy_timeout_ms = RF_BUSY_TIMEOUT_MS;
    if (o->pg_timeout_ms <= 0) o->pg_timeout_ms = RF_PG_TIMEOUT_MS;
}

static rf_err start_sqlite(struct rf_exec *ex) {
    rf_err err = ex->ops->connect(ex->url, &ex->opt, false, &ex->wconn);
    if (err) return err;
    if (ex->defer_ops && !(ex->wdefer = malloc(ex->defer_ops->buf_bytes))) /* defer: */
        return RF_ERR_NOMEM;
    ex->pool.cap = RF_READERS_MAX;
    ex->pool.readonly = true;
    if (pthread_create(&ex->writer, NULL, writer_main, ex) != 0) return RF_ERR_INTERNAL;
    ex->writer_running = true;
    return RF_OK;
}

static rf_err start_postgres(struct rf_exec *ex) {
    ex->pool.cap = ex->opt.pool_conns;
    struct store_conn *c = NULL; /* connect one now: fail fast on a bad url */
    rf_err err = pool_get(ex, &ex->pool, &c);
    if (err) return err;
    pool_put(ex, &ex->pool, c);
    return RF_OK;
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
    ex->queue = calloc((size_t)ex->q_cap, sizeof *ex->queue);
    pthread_mutex_init(&ex->mu, NULL);
    pthread_cond_init(&ex->q_cond, NULL);
    pthread_cond_init(&ex->pool.cond, NULL);
    rf_err err = (!ex->url || !ex->queue) ? RF_ERR_NOMEM
                 : ops->backend == STORE_SQLITE ? start_sqlite(ex) : start_postgres(ex);
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
    pthread_cond_broadcast(&ex->q_cond);
    pthread_mutex_unlock(&ex->mu);
    if (ex->writer_running) pthread_join(ex->writer, NULL); /* drains the queue */
    if (ex->wconn) ex->ops->disconnect(ex->wconn);
    free(ex->wdefer); /* defer: */
    RF_ASSERT(ex->pool.n_free == ex->pool.n_open); /* no connection still lent out */
    for (int i = 0; i < ex->pool.n_free; i++) ex->ops->disconnect(ex->pool.free[i]);
    pthread_cond_destroy(&ex->pool.cond);
    pthread_cond_destroy(&ex->q_cond);
    pthread_mutex_destroy(&ex->mu);
    free(ex->queue);
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
