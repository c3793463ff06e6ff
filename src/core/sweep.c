/*
 * sweep.c - the sweeps (racefree.h, "Maintenance"): void pending transfers
 * past expires_at, delete Idempotency-Key records past their retention,
 * rescue jobs whose lease expired (jobs.c). Each happens only when a sweep
 * runs, so an embedding program either calls
 * rf_sweep() or asks rf_open for the thread here (sweep_interval_ms), which
 * runs rf_sweep(RF_SWEEP_ALL) every interval until rf_close.
 *
 * Each batch is its own transaction (ledger.c's rf_transfer_expire, the
 * purge in idempotency.c), with guarded statements: two sweepers at once
 * (two processes, or the thread and a caller) void or delete each row once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/log.h"
#include "core/core.h"

_Static_assert(RF_EXPIRE_BATCH_MAX == 500 && RF_IDEM_PURGE_BATCH == 1000 &&
                   RF_JOB_RESCUE_BATCH == 500,
               "racefree.h's sweep comment names these batch sizes");
_Static_assert(RF_SWEEP_INTERVAL_MS_MIN >= 1 &&
                   RF_SWEEP_INTERVAL_MS_MIN <= RF_SWEEP_INTERVAL_MS_MAX,
               "the interval's bounds");

/* One sweep's batches until one comes back short (nothing left past due)
 * or RF_SWEEP_ROUNDS_MAX ran. */
static rf_err sweep_rounds(rf *db, rf_err (*batch)(rf *, int, int *), int batch_max,
                           int64_t *total) {
    for (int round = 0; round < RF_SWEEP_ROUNDS_MAX; round++) {
        int n = 0;
        rf_err err = batch(db, batch_max, &n);
        if (err) return err;
        *total += n;
        if (n < batch_max) return RF_OK;
    }
    return RF_OK;
}

rf_err rf_sweep(rf *db, unsigned what, struct rf_sweep_stats *out) {
    struct rf_sweep_stats st = {0, 0, 0};
    if (out) *out = st;
    if (!db || what == 0 || (what & ~(unsigned)RF_SWEEP_ALL)) return RF_ERR_INVALID;
    rf_err err = RF_OK;
    if (what & RF_SWEEP_EXPIRE_HOLDS)
        err = sweep_rounds(db, rf_transfer_expire, RF_EXPIRE_BATCH_MAX, &st.holds_voided);
    if (!err && (what & RF_SWEEP_PURGE_IDEM))
        err = sweep_rounds(db, rf_idem_purge, RF_IDEM_PURGE_BATCH, &st.idem_purged);
    if (!err && (what & RF_SWEEP_RESCUE_JOBS))
        err = sweep_rounds(db, rf_job_rescue, RF_JOB_RESCUE_BATCH, &st.jobs_rescued);
    if (out) *out = st;
    return err;
}

/* ---- the thread (rf_options.sweep_interval_ms) ----------------------------- */

struct sweeper {
    rf *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* on CLOCK_MONOTONIC */
    bool stop;
    int interval_ms;
};

/* A failed sweep (the store unavailable, shutting down) is tried again at
 * the next interval: nothing it would have done is lost by waiting. */
static void *sweeper_main(void *arg) {
    struct sweeper *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        struct timespec until = rf_mono_deadline(s->interval_ms);
        while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT) {
        }
        if (s->stop) break;
        pthread_mutex_unlock(&s->mu);
        rf_err err = rf_sweep(s->db, RF_SWEEP_ALL, NULL);
        if (err && err != RF_ERR_SHUTTING_DOWN)
            rf_log_failure(err, "a sweep transaction failed", "sweep");
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

bool sweep_interval_valid(int interval_ms) {
    return interval_ms == 0 ||
           (interval_ms >= RF_SWEEP_INTERVAL_MS_MIN && interval_ms <= RF_SWEEP_INTERVAL_MS_MAX);
}

rf_err sweeper_start(rf *db, int interval_ms) {
    RF_ASSERT(sweep_interval_valid(interval_ms) && !db->sweeper);
    if (interval_ms == 0) return RF_OK;
    struct sweeper *s = calloc(1, sizeof *s);
    if (!s) return RF_ERR_NOMEM;
    *s = (struct sweeper){.db = db, .interval_ms = interval_ms};
    rf_cond_init_mono(&s->cv);
    pthread_mutex_init(&s->mu, NULL);
    if (pthread_create(&s->thread, NULL, sweeper_main, s) != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return RF_ERR_INTERNAL;
    }
    db->sweeper = s;
    return RF_OK;
}

void sweeper_stop(rf *db) {
    struct sweeper *s = db->sweeper;
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    db->sweeper = NULL;
}
