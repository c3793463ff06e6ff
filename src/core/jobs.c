/*
 * jobs.c - the job queue: enqueue (with a unique_key's identity), claim
 * under a lease with a fencing token, heartbeat, complete, fail (retry with
 * backoff or fail for good), cancel, the rescue of expired leases, reads.
 *
 * The races a queue must close, and how:
 *   - two enqueues of one unique_key (check-then-insert): the partial
 *     UNIQUE index jobs_unique_live decides, INSERT .. ON CONFLICT DO
 *     NOTHING RETURNING, then the live row is read; never a SELECT first;
 *   - two workers claiming one job: the claim is ONE statement, the ids
 *     picked once (a MATERIALIZED CTE: SELECT .. LIMIT n FOR UPDATE SKIP
 *     LOCKED on PostgreSQL, so a row another claim holds is skipped, never
 *     taken twice; without the lock clause on SQLite, one writer at a time),
 *     then UPDATE .. FROM them .. RETURNING;
 *   - a worker that lost its job (lease expired and rescued, claimed again,
 *     canceled) finishing it anyway: every claim bumps the job's token, and
 *     heartbeat, complete and fail are each one UPDATE guarded by token and
 *     status = 'running', so a stale token changes nothing (stale_lease);
 *   - the rescue racing a late complete: the same guard on status decides
 *     which one moves the row; the loser changes nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"
#include "core/core.h"
#include "core/flows.h"
#include "core/ops.h"

#define JOB_COLS                                                                          \
    "id, queue, kind, payload, unique_key, status, priority, run_at, attempt,"            \
    " max_attempts, token, worker_id, lease_expires_at, lease_ms, last_error, result,"   \
    " created_at, updated_at, finished_at, version"

/* THE names of enum rf_job_status, in its order: the JSON's and the status
 * column's (its CHECK lets it hold only these). */
const char *const job_status_names[] = {"available", "running", "completed", "failed",
                                        "canceled",  NULL};
_Static_assert(RF_JOB_AVAILABLE == 0 && RF_JOB_RUNNING == 1 && RF_JOB_COMPLETED == 2 &&
                   RF_JOB_FAILED == 3 && RF_JOB_CANCELED == 4,
               "job_status_names follows enum rf_job_status");

const char *rf_job_status_name(enum rf_job_status status) {
    return (unsigned)status <= RF_JOB_CANCELED ? job_status_names[status] : NULL;
}

static enum rf_job_status status_of(const char *name) {
    enum rf_job_status s = RF_JOB_AVAILABLE;
    while (s < RF_JOB_CANCELED && strcmp(name, job_status_names[s]) != 0) s++;
    RF_ASSERT(strcmp(name, job_status_names[s]) == 0);
    return s;
}

void rf_job_clear(struct rf_job *j) {
    if (!j) return;
    free(j->payload_json);
    free(j->last_error);
    free(j->result_json);
    memset(j, 0, sizeof *j);
}

void rf_job_page_clear(struct rf_job_page *p) {
    if (!p) return;
    for (int i = 0; p->items && i < p->n; i++) rf_job_clear(&p->items[i]);
    free(p->items);
    memset(p, 0, sizeof *p);
}

/* Reads JOB_COLS. */
static void read_job(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_job *j = out;
    rf_job_clear(j);
    rf_strcpy(j->id, sizeof j->id, store_text(tx, r, 0));
    rf_strcpy(j->queue, sizeof j->queue, store_text(tx, r, 1));
    rf_strcpy(j->kind, sizeof j->kind, store_text(tx, r, 2));
    j->payload_json = core_dup_col(tx, r, 3);
    core_chars_col(tx, r, 4, j->unique_key, sizeof j->unique_key);
    j->status = status_of(store_text(tx, r, 5));
    j->priority = store_int(tx, r, 6);
    j->run_at_ms = store_int(tx, r, 7);
    j->attempt = store_int(tx, r, 8);
    j->max_attempts = store_int(tx, r, 9);
    j->token = store_int(tx, r, 10);
    core_chars_col(tx, r, 11, j->worker_id, sizeof j->worker_id);
    j->lease_expires_at_ms = store_null(tx, r, 12) ? 0 : store_int(tx, r, 12);
    j->lease_ms = store_int(tx, r, 13);
    j->last_error = core_dup_col(tx, r, 14);
    j->result_json = core_dup_col(tx, r, 15);
    j->created_at_ms = store_int(tx, r, 16);
    j->updated_at_ms = store_int(tx, r, 17);
    j->finished_at_ms = store_null(tx, r, 18) ? 0 : store_int(tx, r, 18);
    j->version = store_int(tx, r, 19);
    RF_ASSERT(j->version >= 1 && j->attempt >= 0 && j->token >= j->attempt);
    RF_ASSERT((j->status == RF_JOB_RUNNING) == (j->lease_expires_at_ms != 0));
}

static const char SQL_GET[] = "SELECT " JOB_COLS " FROM jobs WHERE id = $1";

static rf_err job_get(struct rf_tx *tx, const char *id, struct rf_job *out) {
    store_val p[1] = {SV_S(id)};
    rf_err err = store_query_one(tx, SQL_GET, p, 1, read_job, out);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_JOB_NOT_FOUND : err;
}

/* ---- enqueue ------------------------------------------------------------------ */

static const char SQL_INSERT[] =
    "INSERT INTO jobs (id, queue, kind, payload, unique_key, status, priority, run_at,"
    " max_attempts, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'available', $6, $7,"
    " $8, $9, $9) ON CONFLICT DO NOTHING RETURNING " JOB_COLS;
static const char SQL_LIVE[] =
    "SELECT " JOB_COLS " FROM jobs WHERE queue = $1 AND unique_key = $2"
    " AND status IN ('available', 'running')";

rf_err job_enqueue_tx(struct rf_tx *tx, const struct rf_job_req *req, struct rf_job *out,
                      bool *created) {
    RF_ASSERT(tx && req && out && created && req->queue && req->kind && req->payload_json);
    *created = false;
    int64_t run_at = req->run_at_ms ? req->run_at_ms : tx->now_ms;
    if (run_at > tx->now_ms + RF_JOB_RUN_AT_AHEAD_MS_MAX) return RF_ERR_INVALID;
    int64_t max_attempts = req->max_attempts ? req->max_attempts : RF_JOB_ATTEMPTS_DEFAULT;
    char id[RF_ID_BYTES];
    rf_uuid7(tx->now_ms, id);
    store_val p[9] = {SV_S(id),           SV_S(req->queue),    SV_S(req->kind),
                      SV_S(req->payload_json), SV_S(req->unique_key), SV_I(req->priority),
                      SV_I(run_at),       SV_I(max_attempts),  SV_I(tx->now_ms)};
    store_val q[2] = {SV_S(req->queue), SV_S(req->unique_key)};
    /* The live job of the key may finish between the INSERT that met it and
     * the read: then the next INSERT makes the new one. */
    for (int round = 0; round < RF_JOB_ENQUEUE_TRIES; round++) {
        rf_err err = store_query_one(tx, SQL_INSERT, p, 9, read_job, out);
        if (err != RF_ERR_NOT_FOUND) {
            *created = err == RF_OK;
            return err;
        }
        if (!req->unique_key) return RF_ERR_CONFLICT; /* only a taken id; uuid7 never is */
        err = store_query_one(tx, SQL_LIVE, q, 2, read_job, out);
        if (err != RF_ERR_NOT_FOUND) return err;
    }
    return RF_ERR_RETRY;
}

rf_err op_job_enqueue(struct rf_tx *tx, const void *req, void *res) {
    struct rf_job *out = res;
    return job_enqueue_tx(tx, req, out, &out->created);
}

/* ---- claim ---------------------------------------------------------------------- */

/* The ids are picked once, in a materialized CTE, then updated: with
 * "WHERE id IN (SELECT .. LIMIT n FOR UPDATE SKIP LOCKED)" PostgreSQL may run
 * the sub-select again for other outer rows (a semi-join rescanned, or
 * EvalPlanQual's recheck after a concurrent claim), and each run can pick
 * other rows, so one claim could move more than n jobs (the extra ones
 * running under a lease nobody knows of). The lock clause is inside the CTE,
 * where SQLite has no syntax for it, so the text comes in two spellings. */
#define SQL_CLAIM(lock)                                                                   \
    "WITH picked AS MATERIALIZED (SELECT id AS picked_id FROM jobs WHERE queue = $1"      \
    " AND status = 'available' AND run_at <= $5 ORDER BY priority, run_at, id LIMIT $6"   \
    lock ") UPDATE jobs SET status = 'running', attempt = attempt + 1,"                   \
    " token = token + 1, worker_id = $2, lease_ms = $3, lease_expires_at = $4,"          \
    " updated_at = $5, version = version + 1 FROM picked"                                 \
    " WHERE id = picked.picked_id AND status = 'available' RETURNING " JOB_COLS
static const char SQL_CLAIM_PG[] = SQL_CLAIM(" FOR UPDATE SKIP LOCKED");
static const char SQL_CLAIM_SQLITE[] = SQL_CLAIM("");

struct claimed {
    struct rf_job_page *page;
    int cap;
};

static void claimed_row(struct rf_tx *tx, struct store_rows *r, void *ctx) {
    struct claimed *c = ctx;
    if (c->page->n < c->cap) read_job(tx, r, &c->page->items[c->page->n]);
    c->page->n++; /* one past cap: more rows moved than asked (see SQL_CLAIM) */
}

rf_err op_job_claim(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_job_claim_req *r = req;
    struct rf_job_page *out = res;
    int max_jobs = r->max_jobs ? (int)r->max_jobs : 1;
    int64_t lease_ms = r->lease_ms ? r->lease_ms : RF_JOB_LEASE_MS_DEFAULT;
    RF_ASSERT(max_jobs >= 1 && max_jobs <= RF_JOB_CLAIM_MAX);
    /* Allocated per attempt: the row's res_clear frees it before a retry. */
    out->items = calloc((size_t)max_jobs, sizeof *out->items);
    if (!out->items) return RF_ERR_NOMEM;
    struct claimed c = {out, max_jobs};
    store_val p[6] = {SV_S(r->queue), SV_S(r->worker_id), SV_I(lease_ms),
                      SV_I(tx->now_ms + lease_ms), SV_I(tx->now_ms), SV_I(max_jobs)};
    const char *sql = tx->ops->backend == STORE_POSTGRES ? SQL_CLAIM_PG : SQL_CLAIM_SQLITE;
    rf_err err = store_query_each(tx, sql, p, 6, max_jobs + 1, claimed_row, &c);
    if (out->n > max_jobs) { /* never: each claimed job is one the caller is told of */
        out->n = max_jobs;
        return RF_ERR_INTERNAL;
    }
    return err;
}

/* ---- a worker's calls: heartbeat, complete, fail ------------------------------------ */

/* The job as the worker's token finds it: RF_ERR_STALE_LEASE unless it is
 * running under that token (its state is the refusal's fact). */
static rf_err job_held(struct rf_tx *tx, const struct rf_job_ref *r, struct rf_job *out) {
    rf_err err = job_get(tx, r->id, out);
    if (err) return err;
    core_fact_status(tx, rf_job_status_name(out->status));
    if (out->status != RF_JOB_RUNNING || out->token != r->token) return RF_ERR_STALE_LEASE;
    return RF_OK;
}

/* Runs a guarded UPDATE (id $1, token $2 and status running in its WHERE):
 * no row means a claim, rescue or cancel moved the job since job_held. */
static rf_err job_move(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                       struct rf_job *out) {
    rf_err err = store_query_one(tx, sql, p, n, read_job, out);
    if (err == RF_ERR_NOT_FOUND) {
        core_fact_status(tx, NULL);
        return RF_ERR_STALE_LEASE;
    }
    return err;
}

static const char SQL_HEARTBEAT[] =
    "UPDATE jobs SET lease_ms = COALESCE($3, lease_ms), lease_expires_at = $4 + COALESCE($3,"
    " lease_ms), updated_at = $4, version = version + 1"
    " WHERE id = $1 AND token = $2 AND status = 'running' RETURNING " JOB_COLS;

rf_err op_job_heartbeat(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_job_ref *r = req;
    rf_err err = job_held(tx, r, res);
    if (err) return err;
    store_val p[4] = {SV_S(r->id), SV_I(r->token), SV_I0(r->lease_ms), SV_I(tx->now_ms)};
    return job_move(tx, SQL_HEARTBEAT, p, 4, res);
}

static const char SQL_COMPLETE[] =
    "UPDATE jobs SET status = 'completed', result = $3, lease_expires_at = NULL,"
    " finished_at = $4, updated_at = $4, version = version + 1"
    " WHERE id = $1 AND token = $2 AND status = 'running' RETURNING " JOB_COLS;

rf_err op_job_complete(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_job_ref *r = req;
    rf_err err = job_held(tx, r, res);
    if (err) return err;
    store_val p[4] = {SV_S(r->id), SV_I(r->token), SV_S(r->result_json), SV_I(tx->now_ms)};
    return job_move(tx, SQL_COMPLETE, p, 4, res);
}

/* The wait before attempt + 1: RF_JOB_BACKOFF_BASE_MS doubled per attempt
 * made, capped, then a random point in its upper half, so workers failing
 * together do not all come back at one instant. */
static int64_t backoff_ms(int64_t attempt) {
    int64_t d = RF_JOB_BACKOFF_BASE_MS;
    for (int64_t i = 1; i < attempt && d < RF_JOB_BACKOFF_CAP_MS; i++) d *= 2;
    if (d > RF_JOB_BACKOFF_CAP_MS) d = RF_JOB_BACKOFF_CAP_MS;
    uint32_t u;
    rf_random_id_bytes(&u, sizeof u);
    return d / 2 + (int64_t)(u % (uint32_t)(d / 2 + 1));
}

static const char SQL_FAIL[] =
    "UPDATE jobs SET status = $3, run_at = $4, finished_at = $5, last_error = $6,"
    " lease_expires_at = NULL, updated_at = $7, version = version + 1"
    " WHERE id = $1 AND token = $2 AND status = 'running' RETURNING " JOB_COLS;

/* The attempt read by job_held is the one the UPDATE moves: a claim would
 * have changed the token the UPDATE is guarded by. */
rf_err op_job_fail(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_job_ref *r = req;
    struct rf_job *j = res;
    rf_err err = job_held(tx, r, j);
    if (err) return err;
    bool last = j->attempt >= j->max_attempts;
    int64_t wait = r->retry_in_ms ? r->retry_in_ms : backoff_ms(j->attempt);
    store_val p[7] = {SV_S(r->id),
                      SV_I(r->token),
                      SV_S(job_status_names[last ? RF_JOB_FAILED : RF_JOB_AVAILABLE]),
                      SV_I(last ? j->run_at_ms : tx->now_ms + wait),
                      last ? SV_I(tx->now_ms) : SV_N(),
                      SV_S(r->error),
                      SV_I(tx->now_ms)};
    return job_move(tx, SQL_FAIL, p, 7, j);
}

/* ---- cancel, reads ------------------------------------------------------------------ */

static const char SQL_CANCEL[] =
    "UPDATE jobs SET status = 'canceled', lease_expires_at = NULL, finished_at = $2,"
    " updated_at = $2, version = version + 1"
    " WHERE id = $1 AND status IN ('available', 'running') RETURNING " JOB_COLS;

rf_err op_job_cancel(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_job_ref *r = req;
    store_val p[2] = {SV_S(r->id), SV_I(tx->now_ms)};
    rf_err err = store_query_one(tx, SQL_CANCEL, p, 2, read_job, res);
    if (err != RF_ERR_NOT_FOUND) return err;
    err = job_get(tx, r->id, res); /* terminal (it stays so), or none */
    if (err) return err;
    core_fact_status(tx, rf_job_status_name(((struct rf_job *)res)->status));
    return RF_ERR_INVALID_STATE;
}

/* The claim's own index (jobs_claim) answers it. */
static const char SQL_READY[] =
    "SELECT 1 FROM jobs WHERE queue = $1 AND status = 'available' AND run_at <= $2 LIMIT 1";

rf_err job_ready_tx(struct rf_tx *tx, const char *queue, bool *ready) {
    RF_ASSERT(tx && queue && ready);
    int64_t one = 0;
    store_val p[2] = {SV_S(queue), SV_I(tx->now_ms)};
    rf_err err = store_query_one(tx, SQL_READY, p, 2, core_int_row, &one);
    *ready = err == RF_OK;
    return err == RF_ERR_NOT_FOUND ? RF_OK : err;
}

rf_err op_job_get(struct rf_tx *tx, const void *req, void *res) {
    return job_get(tx, ((const struct rf_job_ref *)req)->id, res);
}

static const char SQL_STATS[] =
    "SELECT status, COUNT(*), SUM(CASE WHEN run_at <= $2 THEN 1 ELSE 0 END),"
    " MIN(run_at) FROM jobs WHERE queue = $1 GROUP BY status";

static void stats_row(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_queue_stats *s = out;
    enum rf_job_status st = status_of(store_text(tx, r, 0));
    int64_t n = store_int(tx, r, 1);
    int64_t *counts[] = {&s->available, &s->running, &s->completed, &s->failed, &s->canceled};
    *counts[st] = n;
    if (st != RF_JOB_AVAILABLE) return;
    s->ready = store_int(tx, r, 2);
    int64_t oldest = store_int(tx, r, 3);
    s->oldest_ready_age_ms = s->ready > 0 && oldest < tx->now_ms ? tx->now_ms - oldest : 0;
}

/* The oldest ready job's wait is measured from the earliest run_at among
 * the available ones when any is ready (run_at <= now). */
rf_err op_queue_stats(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_job_claim_req *r = req;
    struct rf_queue_stats *out = res;
    rf_strcpy(out->queue, sizeof out->queue, r->queue);
    store_val p[2] = {SV_S(r->queue), SV_I(tx->now_ms)};
    return store_query_each(tx, SQL_STATS, p, 2, RF_JOB_CANCELED + 1, stats_row, out);
}

/* ---- the rescue (a sweep) ------------------------------------------------------------ */

/* Picked once, as the claim's (SQL_CLAIM says why), so a batch is at most
 * batch_max jobs. */
#define SQL_RESCUE(lock)                                                                  \
    "WITH picked AS MATERIALIZED (SELECT id AS picked_id FROM jobs"                       \
    " WHERE status = 'running' AND lease_expires_at <= $1 ORDER BY lease_expires_at"      \
    " LIMIT $2" lock ") UPDATE jobs SET status = CASE WHEN attempt >= max_attempts"       \
    " THEN 'failed' ELSE 'available' END, finished_at = CASE WHEN attempt >= max_attempts" \
    " THEN CAST($1 AS BIGINT) ELSE NULL END, run_at = $1, last_error = 'lease expired',"  \
    " lease_expires_at = NULL, updated_at = $1, version = version + 1 FROM picked"        \
    " WHERE id = picked.picked_id AND status = 'running' AND lease_expires_at <= $1"
static const char SQL_RESCUE_PG[] = SQL_RESCUE(" FOR UPDATE SKIP LOCKED");
static const char SQL_RESCUE_SQLITE[] = SQL_RESCUE("");

struct rescue {
    int batch_max;
    int rescued;
};

static rf_err rescue_tx(struct rf_tx *tx, void *ctx) {
    struct rescue *r = ctx;
    store_val p[2] = {SV_I(tx->now_ms), SV_I(r->batch_max)};
    const char *sql = tx->ops->backend == STORE_POSTGRES ? SQL_RESCUE_PG : SQL_RESCUE_SQLITE;
    int64_t n = 0;
    rf_err err = store_exec(tx, sql, p, 2, &n);
    RF_ASSERT(err || (n >= 0 && n <= r->batch_max));
    r->rescued = err ? 0 : (int)n;
    return err;
}

rf_err rf_job_rescue(rf *db, int batch_max, int *rescued_out) {
    if (rescued_out) *rescued_out = 0;
    if (!db) return RF_ERR_INVALID;
    struct rescue r = {batch_max <= 0 || batch_max > RF_JOB_RESCUE_BATCH ? RF_JOB_RESCUE_BATCH
                                                                         : batch_max, 0};
    rf_err err = core_write(db, "job_rescue", 0, rescue_tx, &r);
    if (!err && rescued_out) *rescued_out = r.rescued;
    return err;
}

/* ---- the public functions: thin wrappers over rf_op_run ------------------------------ */

rf_err rf_job_enqueue(rf *db, const struct rf_job_req *req, struct rf_job *out,
                      struct rf_idem *idem) {
    return rf_op_run(db, RF_OP_JOB_ENQUEUE, req, out, idem, NULL);
}

rf_err rf_job_claim(rf *db, const struct rf_job_claim_req *req, struct rf_job_page *out) {
    return rf_op_run(db, RF_OP_JOB_CLAIM, req, out, NULL, NULL);
}

rf_err rf_job_heartbeat(rf *db, const struct rf_job_ref *req, struct rf_job *out) {
    return rf_op_run(db, RF_OP_JOB_HEARTBEAT, req, out, NULL, NULL);
}

rf_err rf_job_complete(rf *db, const struct rf_job_ref *req, struct rf_job *out) {
    return rf_op_run(db, RF_OP_JOB_COMPLETE, req, out, NULL, NULL);
}

rf_err rf_job_fail(rf *db, const struct rf_job_ref *req, struct rf_job *out) {
    return rf_op_run(db, RF_OP_JOB_FAIL, req, out, NULL, NULL);
}

rf_err rf_job_cancel(rf *db, const char *id, struct rf_job *out) {
    struct rf_job_ref req = {.id = id};
    return rf_op_run(db, RF_OP_JOB_CANCEL, &req, out, NULL, NULL);
}

rf_err rf_job_get(rf *db, const char *id, struct rf_job *out) {
    struct rf_job_ref req = {.id = id};
    return rf_op_run(db, RF_OP_JOB_GET, &req, out, NULL, NULL);
}

rf_err rf_queue_stats(rf *db, const char *queue, struct rf_queue_stats *out) {
    struct rf_job_claim_req req = {.queue = queue};
    return rf_op_run(db, RF_OP_QUEUE_STATS, &req, out, NULL, NULL);
}
