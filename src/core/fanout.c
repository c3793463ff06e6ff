/*
 * fanout.c - the announcement fan-out worker: a thread (one per `racefree
 * serve`) that claims jobs of the announcements queue through the job
 * queue's own calls and runs each in chunks, one transaction per chunk
 * (fanout_chunk_tx), with a heartbeat between chunks.
 *
 * Why a job and a cursor rather than a loop in the request: the request's
 * transaction commits the announcement and its job together; any process's
 * worker may run the job, and one killed mid-way (kill -9) loses only the
 * chunk in flight (rolled back): its lease expires, the sweep makes the job
 * available again, and the next claim continues from the cursor the last
 * committed chunk left. It never runs on an HTTP thread and stops at a
 * chunk's end: a stop gives the job back at once (a fail with a short
 * retry) instead of leaving it to the lease.
 */
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/halt.h"
#include "base/ids.h"
#include "base/limits.h"
#include "base/log.h"
#include "core/announce.h"
#include "core/core.h"
#include "core/flows.h"
#include "core/test_hooks.h"

struct rf_fanout {
    rf *db;
    int chunk;
    char node[RF_ID_BYTES];
    pthread_t thread;
    bool started;
    struct rf_halt halt;
};

static bool stopping(struct rf_fanout *f) { return rf_halt_requested(&f->halt); }

/* Waits ms, or less when told to stop; false then. */
static bool pause_ms(struct rf_fanout *f, int64_t ms) { return rf_halt_wait_ms(&f->halt, ms); }

/* ---- the test hook ------------------------------------------------------------ */

void rf_test_fanout(rf *db, int pause_ms_, int64_t lease_ms, const char *fail_users) {
    if (!db->test_hooks) return;
    atomic_store(&db->fanout_hook.pause_ms, pause_ms_);
    atomic_store(&db->fanout_hook.lease_ms, lease_ms);
    pthread_mutex_lock(&db->fanout_hook.mu);
    rf_strcpy(db->fanout_hook.fail_users, sizeof db->fanout_hook.fail_users,
              fail_users ? fail_users : "");
    pthread_mutex_unlock(&db->fanout_hook.mu);
}

/* Whether user_id is one of the hook's comma-separated fail_users. */
static bool hook_fails(void *arg, const char *user_id) {
    rf *db = arg;
    size_t n = strlen(user_id);
    pthread_mutex_lock(&db->fanout_hook.mu);
    const char *p = db->fanout_hook.fail_users;
    bool hit = false;
    while (*p && !hit) {
        size_t len = strcspn(p, ",");
        hit = len == n && memcmp(p, user_id, n) == 0;
        p += len + (p[len] == ',');
    }
    pthread_mutex_unlock(&db->fanout_hook.mu);
    return hit;
}

/* ---- one job -------------------------------------------------------------------- */

static int64_t lease_of(rf *db) {
    int64_t ms = db->test_hooks ? atomic_load(&db->fanout_hook.lease_ms) : 0;
    return ms > 0 ? ms : RF_FANOUT_LEASE_MS;
}

/* The job's announcement id (its payload's announcement_id). */
static bool job_announcement(const struct rf_job *job, char id[RF_ID_BYTES]) {
    json_t *o = job->payload_json ? json_loads(job->payload_json, 0, NULL) : NULL;
    const char *s = json_string_value(json_object_get(o, "announcement_id"));
    bool ok = s && strlen(s) < RF_ID_BYTES;
    if (ok) rf_strcpy(id, RF_ID_BYTES, s);
    json_decref(o);
    return ok;
}

/* Runs chunks until none is left, the lease is lost or the worker stops.
 * RF_OK: done; RF_ERR_STALE_LEASE: the job is someone else's now. */
static rf_err run_chunks(struct rf_fanout *f, const char *id, struct rf_job_ref *ref) {
    rf *db = f->db;
    for (;;) {
        struct fanout_chunk c = {.id = id, .chunk = f->chunk,
                                 .fails = db->test_hooks ? hook_fails : NULL, .fails_arg = db};
        rf_err err = core_write(db, "announcement_fanout", 0, fanout_chunk_tx, &c);
        if (err || !c.more) return err;
        int pause = db->test_hooks ? atomic_load(&db->fanout_hook.pause_ms) : 0;
        if (pause > 0 && !pause_ms(f, pause)) return RF_ERR_SHUTTING_DOWN;
        if (stopping(f)) return RF_ERR_SHUTTING_DOWN;
        struct rf_job hb = {0};
        ref->lease_ms = lease_of(db);
        err = rf_job_heartbeat(db, ref, &hb);
        rf_job_clear(&hb);
        if (err) return err;
    }
}

static void run_job(struct rf_fanout *f, const struct rf_job *job) {
    char id[RF_ID_BYTES];
    struct rf_job_ref ref = {.id = job->id, .token = job->token};
    rf_err err = job_announcement(job, id) ? run_chunks(f, id, &ref) : RF_ERR_INVALID;
    struct rf_log_kv kv[2] = {RF_KV_STR("job_id", job->id), RF_KV_STR("announcement_id", id)};
    struct rf_job out = {0};
    if (err == RF_ERR_STALE_LEASE) {
        rf_log_kv(RF_LOG_WARN, kv, 2, "fan-out: the job's lease was lost; another claim has it");
    } else if (!err) {
        rf_job_complete(f->db, &ref, &out);
        rf_log_kv(RF_LOG_INFO, kv, 2, "fan-out: announcement delivered to its audience");
    } else {
        ref.error = rf_err_code(err);
        /* Stopping: given back at once, for another process to continue. */
        ref.retry_in_ms = err == RF_ERR_SHUTTING_DOWN ? 1 : RF_FANOUT_FAIL_RETRY_MS;
        rf_job_fail(f->db, &ref, &out);
        if (err != RF_ERR_SHUTTING_DOWN)
            rf_log_kv(RF_LOG_WARN, kv, 2, "fan-out: a chunk failed (%s); retried later",
                      rf_err_code(err));
    }
    rf_job_clear(&out);
}

static rf_err ready_tx(struct rf_tx *tx, void *ctx) {
    return job_ready_tx(tx, RF_ANNOUNCE_QUEUE, ctx);
}

/* Polls with a read and claims only when a job is ready: an idle server
 * (every process, every RF_FANOUT_POLL_MS) then runs no write transaction,
 * which would wait for SQLite's writer and count as a write everywhere. */
static void *fanout_main(void *arg) {
    struct rf_fanout *f = arg;
    while (!stopping(f)) {
        bool ready = false;
        rf_err err = core_read(f->db, "announcement_poll", ready_tx, &ready);
        struct rf_job_page page = {0};
        if (!err && ready) {
            struct rf_job_claim_req req = {.queue = RF_ANNOUNCE_QUEUE, .worker_id = f->node,
                                           .lease_ms = lease_of(f->db), .max_jobs = 1};
            err = rf_job_claim(f->db, &req, &page);
        }
        if (!err && page.n == 1) run_job(f, &page.items[0]);
        bool idle = err || page.n == 0;
        rf_job_page_clear(&page);
        if (idle && !pause_ms(f, RF_FANOUT_POLL_MS)) break;
    }
    return NULL;
}

/* ---- start, stop ------------------------------------------------------------------ */

rf_err rf_fanout_start(rf *db, int chunk, struct rf_fanout **out) {
    if (!db || !out || chunk < 0 || chunk > RF_FANOUT_CHUNK_MAX) return RF_ERR_INVALID;
    struct rf_fanout *f = calloc(1, sizeof *f);
    if (!f) return RF_ERR_NOMEM;
    f->db = db;
    f->chunk = chunk ? chunk : RF_FANOUT_CHUNK_DEFAULT;
    uint8_t b[4];
    char hex[9];
    rf_random_id_bytes(b, sizeof b);
    rf_hex(b, sizeof b, hex);
    snprintf(f->node, sizeof f->node, "fanout-%ld-%s", (long)getpid(), hex);
    rf_halt_init(&f->halt);
    if (pthread_create(&f->thread, NULL, fanout_main, f) != 0) {
        rf_fanout_stop(f);
        return RF_ERR_INTERNAL;
    }
    f->started = true;
    *out = f;
    return RF_OK;
}

void rf_fanout_stop(struct rf_fanout *f) {
    if (!f) return;
    rf_halt_request(&f->halt);
    if (f->started) pthread_join(f->thread, NULL);
    rf_halt_destroy(&f->halt);
    free(f);
}
