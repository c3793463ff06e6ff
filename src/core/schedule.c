/*
 * schedule.c - scheduled runs (schedule.h): the SPEC grammar, the task
 * table, the claim and bookkeeping of each slot's run in schedule_runs, and
 * the one scheduler thread of a serve process.
 *
 * The races this closes, and how:
 *   - N processes tick the same slot: each inserts (name, interval, slot)
 *     with ON CONFLICT DO NOTHING RETURNING; the PRIMARY KEY lets one insert
 *     make the row, and only that process runs the slot (a SELECT-then-
 *     INSERT "has this interval run?" would let two see "no").
 *   - a claimer died mid-run: its row stays running; once its resume_at has
 *     passed, a tick on any process takes it over with a guarded UPDATE that
 *     compares the attempts it read (two resumers: one UPDATE matches), and
 *     runs the task again with the same slot, so the task's own identities
 *     (payout batch run keys) make the second run finish the first's work
 *     instead of repeating it.
 *   - another process holds the payouts lease (lease_held): retried a few
 *     times with a doubling backoff within the tick, then left running with
 *     resume_at = now, so the next tick (any process) takes it over.
 */
#include "core/schedule.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/halt.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/log.h"
#include "core/core.h"
#include "core/flows.h"
#include "core/ledger.h"
#include "core/listing.h"

/* ---- the task table --------------------------------------------------------- */

/* A task runs slot `slot` of sp as holder, naming what it made in batch_ids
 * (comma-separated). It blocks; it is never run on an executor thread. */
typedef rf_err (*sched_task_fn)(rf *db, const struct sched_spec *sp, int64_t slot,
                                const char *holder, char *batch_ids, size_t cap);

struct sched_task {
    const char *name;
    bool takes_currency;   /* TASK:CUR[:MIN] is allowed */
    sched_task_fn run;
};

static rf_err task_payouts(rf *db, const struct sched_spec *sp, int64_t slot,
                           const char *holder, char *batch_ids, size_t cap);

/* Every task a --schedule may name; a new one is a new row. */
static const struct sched_task sched_tasks[] = {
    {"payouts", true, task_payouts},
};
#define N_TASKS (sizeof sched_tasks / sizeof sched_tasks[0])

const char *sched_task_names(void) { return "payouts"; }

/* ---- SPEC: TASK[:CUR[:MIN]]@INTERVAL ---------------------------------------------- */

/* "500ms", "30s", "10m", "1h", "1d" -> ms within the bounds. */
static bool interval_parse(const char *text, int64_t *out) {
    static const struct { const char *unit; int64_t ms; } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    char *end = NULL;
    if (*text < '0' || *text > '9') return false;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (errno || n <= 0 || n > RF_SCHEDULE_INTERVAL_MS_MAX) return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) != 0) continue;
        if (n > RF_SCHEDULE_INTERVAL_MS_MAX / units[i].ms) return false;
        *out = n * units[i].ms;
        return *out >= RF_SCHEDULE_INTERVAL_MS_MIN && *out <= RF_SCHEDULE_INTERVAL_MS_MAX;
    }
    return false;
}

/* The name's parts after the task: ":CUR" and ":MIN". */
static bool spec_args_parse(const char *args, struct sched_spec *out, char *why, size_t cap) {
    if (!*args) return true;
    if (!out->task->takes_currency || args[0] != ':' || strlen(args) < 4 ||
        (args[4] != '\0' && args[4] != ':')) {
        snprintf(why, cap, "after the task comes :CUR (3 upper-case letters), then :MIN");
        return false;
    }
    memcpy(out->currency, args + 1, 3);
    out->currency[3] = '\0';
    if (!ledger_currency_valid(out->currency)) {
        snprintf(why, cap, "'%s' is not a currency code (3 upper-case letters)", out->currency);
        return false;
    }
    if (args[4] == '\0') return true;
    char *end = NULL;
    errno = 0;
    long long min = (args[5] >= '0' && args[5] <= '9') ? strtoll(args + 5, &end, 10) : 0;
    if (errno || min < 1 || *end) {
        snprintf(why, cap, "the minimum amount must be an integer >= 1 (minor units)");
        return false;
    }
    out->min_amount_minor = min;
    return true;
}

bool sched_spec_parse(const char *text, struct sched_spec *out, char *why, size_t cap) {
    memset(out, 0, sizeof *out);
    out->min_amount_minor = 1;
    const char *at = strchr(text, '@');
    size_t name_len = at ? (size_t)(at - text) : 0;
    if (strlen(text) > RF_SCHEDULE_SPEC_CHARS_MAX || !at || name_len == 0 ||
        name_len > RF_SCHEDULE_NAME_CHARS_MAX) {
        snprintf(why, cap, "a schedule is TASK[:CUR[:MIN]]@INTERVAL of at most %d characters "
                 "(e.g. payouts@1h, payouts:USD:500@30m)", RF_SCHEDULE_SPEC_CHARS_MAX);
        return false;
    }
    rf_strcpy(out->text, sizeof out->text, text);
    memcpy(out->name, text, name_len);
    out->name[name_len] = '\0';
    size_t task_len = strcspn(out->name, ":");
    for (size_t i = 0; i < N_TASKS && !out->task; i++)
        if (strlen(sched_tasks[i].name) == task_len &&
            memcmp(sched_tasks[i].name, out->name, task_len) == 0)
            out->task = &sched_tasks[i];
    if (!out->task) {
        snprintf(why, cap, "unknown task '%.*s' (known: %s)", (int)task_len, out->name,
                 sched_task_names());
        return false;
    }
    if (!spec_args_parse(out->name + task_len, out, why, cap)) return false;
    if (!interval_parse(at + 1, &out->interval_ms)) {
        snprintf(why, cap, "the interval must be a whole number with a unit ms, s, m, h or d, "
                 "from %dms to 7d, got '%s'", RF_SCHEDULE_INTERVAL_MS_MIN, at + 1);
        return false;
    }
    return true;
}

int64_t sched_slot(const struct sched_spec *sp, int64_t now_ms) {
    RF_ASSERT(sp->interval_ms >= RF_SCHEDULE_INTERVAL_MS_MIN && now_ms >= 0);
    return now_ms / sp->interval_ms;
}

/* ---- schedule_runs ---------------------------------------------------------------- */

#define RUN_COLS                                                                       \
    "id, name, interval_ms, slot, spec, node, via, status, attempts, batch_ids, "      \
    "COALESCE(error, ''), started_at, updated_at, COALESCE(finished_at, 0), list_pos"
#define RUN_KEY "name = $1 AND interval_ms = $2 AND slot = $3"

static void read_run(struct rf_tx *tx, struct store_rows *r, void *item) {
    struct sched_run *o = item;
    rf_strcpy(o->id, sizeof o->id, store_text(tx, r, 0));
    rf_strcpy(o->name, sizeof o->name, store_text(tx, r, 1));
    o->interval_ms = store_int(tx, r, 2);
    o->slot = store_int(tx, r, 3);
    rf_strcpy(o->spec, sizeof o->spec, store_text(tx, r, 4));
    rf_strcpy(o->node, sizeof o->node, store_text(tx, r, 5));
    rf_strcpy(o->via, sizeof o->via, store_text(tx, r, 6));
    rf_strcpy(o->status, sizeof o->status, store_text(tx, r, 7));
    o->attempts = store_int(tx, r, 8);
    rf_strcpy(o->batch_ids, sizeof o->batch_ids, store_text(tx, r, 9));
    rf_strcpy(o->error, sizeof o->error, store_text(tx, r, 10));
    o->started_at_ms = store_int(tx, r, 11);
    o->updated_at_ms = store_int(tx, r, 12);
    o->finished_at_ms = store_int(tx, r, 13);
}

/* One slot of one spec, as the transactions below take it. */
struct run_ctx {
    const struct sched_spec *sp;
    int64_t slot;
    const char *node;
    const char *via;
    int64_t seen_attempts;   /* resume: the attempts the resumer read */
    const char *status;      /* finish: the outcome */
    const char *batch_ids;
    const char *error;
    bool keep_running;       /* finish: leave it for the next tick */
    bool changed;            /* out: the claim or update matched */
    struct sched_run run;    /* out: the row after the transaction */
};

static rf_err run_reread(struct rf_tx *tx, struct run_ctx *c) {
    store_val p[3] = {SV_S(c->sp->name), SV_I(c->sp->interval_ms), SV_I(c->slot)};
    return store_query_one(tx, "SELECT " RUN_COLS " FROM schedule_runs WHERE " RUN_KEY, p, 3,
                           read_run, &c->run);
}

/* The claim: the insert that makes the row wins the slot; every other
 * process's insert changes nothing (ON CONFLICT DO NOTHING). */
static rf_err op_claim(struct rf_tx *tx, void *ctx) {
    struct run_ctx *c = ctx;
    char id[RF_ID_BYTES];
    snprintf(id, sizeof id, "%s:%" PRId64 ":%" PRId64, c->sp->name, c->sp->interval_ms, c->slot);
    store_val p[9] = {SV_S(id), SV_S(c->sp->name), SV_I(c->sp->interval_ms), SV_I(c->slot),
                      SV_S(c->sp->text), SV_S(c->node), SV_S(c->via), SV_I(tx->now_ms),
                      SV_I(tx->now_ms + RF_SCHEDULE_RESUME_AFTER_MS)};
    struct store_rows *r = NULL;
    rf_err err = store_query(tx,
                             "INSERT INTO schedule_runs (id, name, interval_ms, slot, spec, node,"
                             " via, status, attempts, started_at, updated_at, resume_at)"
                             " VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', 1, $8, $8, $9)"
                             " ON CONFLICT DO NOTHING RETURNING slot",
                             p, 9, &r);
    if (err) return err;
    int rc = store_next(tx, r);
    if (rc < 0) err = store_rows_err(tx, r);
    store_close(tx, r);
    if (err) return err;
    c->changed = rc > 0;
    return run_reread(tx, c);
}

/* A takeover of a run its claimer left unfinished: matches only while the
 * row still has the attempts this resumer read (one of two resumers wins). */
static rf_err op_resume(struct rf_tx *tx, void *ctx) {
    struct run_ctx *c = ctx;
    store_val p[7] = {SV_S(c->sp->name), SV_I(c->sp->interval_ms), SV_I(c->slot),
                      SV_I(c->seen_attempts), SV_S(c->node), SV_I(tx->now_ms),
                      SV_I(tx->now_ms + RF_SCHEDULE_RESUME_AFTER_MS)};
    int64_t n = 0;
    rf_err err = store_exec(tx,
                            "UPDATE schedule_runs SET attempts = attempts + 1, node = $5,"
                            " updated_at = $6, resume_at = $7 WHERE " RUN_KEY
                            " AND status = 'running' AND attempts = $4 AND resume_at <= $6",
                            p, 7, &n);
    if (err) return err;
    c->changed = n == 1;
    return run_reread(tx, c);
}

/* A run whose last attempt died with the process (or left it running)
 * after RF_SCHEDULE_ATTEMPTS_MAX attempts: failed, so no tick picks it up
 * again. Guarded like a resume. */
static rf_err op_abandon(struct rf_tx *tx, void *ctx) {
    struct run_ctx *c = ctx;
    store_val p[5] = {SV_S(c->sp->name), SV_I(c->sp->interval_ms), SV_I(c->slot),
                      SV_I(c->seen_attempts), SV_I(tx->now_ms)};
    int64_t n = 0;
    rf_err err = store_exec(tx,
                            "UPDATE schedule_runs SET status = 'failed', updated_at = $5,"
                            " finished_at = $5, error = COALESCE(error, 'attempts_exhausted')"
                            " WHERE " RUN_KEY " AND status = 'running' AND attempts = $4"
                            " AND resume_at <= $5",
                            p, 5, &n);
    if (err) return err;
    c->changed = n == 1;
    return run_reread(tx, c);
}

/* The outcome of an attempt; keep_running leaves the run for the next tick
 * (resume_at now), else it is finished with status. Guarded by the attempt
 * it belongs to, so a slower earlier attempt cannot overwrite a later one. */
static rf_err op_finish(struct rf_tx *tx, void *ctx) {
    struct run_ctx *c = ctx;
    store_val p[9] = {SV_S(c->sp->name), SV_I(c->sp->interval_ms), SV_I(c->slot),
                      SV_I(c->seen_attempts), SV_S(c->batch_ids), SV_S(c->error),
                      SV_I(tx->now_ms), SV_S(c->keep_running ? "running" : c->status),
                      c->keep_running ? SV_N() : SV_I(tx->now_ms)};
    int64_t n = 0;
    rf_err err = store_exec(tx,
                            "UPDATE schedule_runs SET status = $8, batch_ids = $5, error = $6,"
                            " updated_at = $7, resume_at = $7, finished_at = $9"
                            " WHERE " RUN_KEY " AND status = 'running' AND attempts = $4",
                            p, 9, &n);
    if (err) return err;
    c->changed = n == 1;
    return run_reread(tx, c);
}

/* ---- running a slot ---------------------------------------------------------------- */

struct scheduler {
    rf *db;
    struct sched_spec specs[RF_SCHEDULES_MAX];
    int n;
    int64_t ticked[RF_SCHEDULES_MAX];   /* the last slot each spec ticked */
    char node[RF_ID_BYTES];
    pthread_t thread;
    bool started;
    struct rf_halt halt;
};

static bool stopping(struct scheduler *s) { return rf_halt_requested(&s->halt); }

/* Waits ms, or less when the scheduler is told to stop; false then. */
static bool pause_ms(struct scheduler *s, int64_t ms) { return rf_halt_wait_ms(&s->halt, ms); }

/* The task, retried while another holder has the lease (doubling backoff,
 * RF_SCHEDULE_LEASE_TRIES_MAX tries in all). */
static rf_err task_try(struct scheduler *s, const struct sched_spec *sp, int64_t slot,
                       char *batch_ids, size_t cap) {
    int64_t wait_ms = RF_SCHEDULE_LEASE_BACKOFF_MS;
    rf_err err = RF_OK;
    for (int i = 0; i < RF_SCHEDULE_LEASE_TRIES_MAX; i++) {
        batch_ids[0] = '\0';
        err = sp->task->run(s->db, sp, slot, s->node, batch_ids, cap);
        if (err != RF_ERR_LEASE_HELD || i + 1 == RF_SCHEDULE_LEASE_TRIES_MAX) break;
        struct rf_log_kv kv[2] = {RF_KV_STR("schedule", sp->name), RF_KV_INT("slot", slot)};
        rf_log_kv(RF_LOG_INFO, kv, 2, "schedule: the payouts lease is held elsewhere; "
                  "trying again in %" PRId64 " ms", wait_ms);
        if (!pause_ms(s, wait_ms)) break;
        wait_ms *= 2;
    }
    return err;
}

/* Runs attempt c->run.attempts of a slot this process holds (claimed or
 * resumed) and records its outcome; c->run is the row afterwards. */
static rf_err run_attempt(struct scheduler *s, struct run_ctx *c) {
    struct rf_log_kv kv[4] = {RF_KV_STR("schedule", c->sp->name), RF_KV_INT("slot", c->slot),
                              RF_KV_STR("run", c->run.id), RF_KV_INT("attempt", c->run.attempts)};
    rf_log_kv(RF_LOG_INFO, kv, 4, "schedule: running");
    char batch_ids[RF_SCHEDULE_BATCH_IDS_BYTES];
    rf_err err = task_try(s, c->sp, c->slot, batch_ids, sizeof batch_ids);
    c->seen_attempts = c->run.attempts;
    c->batch_ids = batch_ids;
    c->error = err ? rf_err_code(err) : NULL;
    c->status = err ? "failed" : "succeeded";
    /* lease_held, an unreachable store, shutting down: the next tick tries
     * again, until the attempts run out. */
    c->keep_running = err && c->run.attempts < RF_SCHEDULE_ATTEMPTS_MAX;
    rf_err ferr = core_write(s->db, "schedule_finish", 0, op_finish, c);
    if (ferr) {
        rf_log_failure(ferr, rf_err_code(ferr), "schedule: recording run %s failed", c->run.id);
        return ferr;
    }
    struct rf_log_kv done[4] = {RF_KV_STR("schedule", c->sp->name), RF_KV_STR("run", c->run.id),
                                RF_KV_STR("status", c->run.status),
                                RF_KV_STR("batch_ids", c->run.batch_ids)};
    rf_log_kv(err ? RF_LOG_WARN : RF_LOG_INFO, done, 4, "schedule: run %s%s%s", c->run.status,
              err ? ": " : "", err ? rf_err_code(err) : "");
    return RF_OK;
}

/* Claims slot (or takes it over when its claimer left it unfinished) and
 * runs it when this process got it; c->run is the row afterwards. */
static rf_err run_slot(struct scheduler *s, struct run_ctx *c, bool *created) {
    *created = false;
    rf_err err = core_write(s->db, "schedule_claim", 0, op_claim, c);
    if (err) return err;
    if (c->changed) {
        *created = true;
        return run_attempt(s, c);
    }
    if (strcmp(c->run.status, "running") != 0) return RF_OK;
    c->seen_attempts = c->run.attempts;
    if (c->run.attempts >= RF_SCHEDULE_ATTEMPTS_MAX)
        return core_write(s->db, "schedule_abandon", 0, op_abandon, c);
    err = core_write(s->db, "schedule_resume", 0, op_resume, c);
    if (err || !c->changed) return err;
    return run_attempt(s, c);
}

rf_err scheduler_run_now(struct scheduler *s, const struct sched_spec *sp, struct sched_run *out,
                         bool *created) {
    RF_ASSERT(s && sp && out && created);
    struct run_ctx c = {.sp = sp, .slot = sched_slot(sp, rf_now_ms()), .node = s->node,
                        .via = "http"};
    rf_err err = run_slot(s, &c, created);
    *out = c.run;
    return err;
}

/* Unfinished runs of earlier slots whose resume_at has passed. */
struct stale_runs {
    const struct sched_spec *sp;
    int64_t slot;            /* the current slot: those before it */
    int64_t slots[RF_SCHEDULE_RESUME_MAX];
    int n;
};
static void read_stale(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct stale_runs *st = out;
    RF_ASSERT(st->n < RF_SCHEDULE_RESUME_MAX);
    st->slots[st->n++] = store_int(tx, r, 0);
}
static rf_err op_stale(struct rf_tx *tx, void *ctx) {
    struct stale_runs *st = ctx;
    st->n = 0;
    store_val p[4] = {SV_S(st->sp->name), SV_I(st->sp->interval_ms), SV_I(st->slot),
                      SV_I(tx->now_ms)};
    return store_query_each(tx,
                            "SELECT slot FROM schedule_runs WHERE name = $1 AND interval_ms = $2"
                            " AND slot < $3 AND status = 'running' AND resume_at <= $4"
                            " ORDER BY slot LIMIT " RF_STR(RF_SCHEDULE_RESUME_MAX),
                            p, 4, RF_SCHEDULE_RESUME_MAX, read_stale, st);
}

/* One tick of spec i: earlier slots left unfinished first, then this one. */
static void tick(struct scheduler *s, int i, int64_t slot) {
    const struct sched_spec *sp = &s->specs[i];
    struct stale_runs st = {.sp = sp, .slot = slot, .n = 0};
    rf_err err = core_read(s->db, "schedule_stale", op_stale, &st);
    for (int k = 0; !err && k < st.n && !stopping(s); k++) {
        struct run_ctx c = {.sp = sp, .slot = st.slots[k], .node = s->node, .via = "schedule"};
        bool created = false;
        err = run_slot(s, &c, &created);
    }
    struct run_ctx c = {.sp = sp, .slot = slot, .node = s->node, .via = "schedule"};
    bool created = false;
    if (!err && !stopping(s)) err = run_slot(s, &c, &created);
    if (err && err != RF_ERR_SHUTTING_DOWN)
        rf_log_failure(err, rf_err_code(err), "schedule %s: slot %" PRId64 " not run", sp->name,
                       slot);
}

/* Ticks every spec whose slot changed, then sleeps until the next slot of
 * any of them begins. */
static void *scheduler_main(void *arg) {
    struct scheduler *s = arg;
    while (!stopping(s)) {
        int64_t now = rf_now_ms(), wake = INT64_MAX;
        for (int i = 0; i < s->n && !stopping(s); i++) {
            int64_t slot = sched_slot(&s->specs[i], now);
            /* Woken a whole slot late (a stalled process, a long run): the
             * slot slept through is claimed too, unless another process has
             * it; at most one, so a long outage is not replayed. */
            if (s->ticked[i] >= 0 && slot > s->ticked[i] + 1) tick(s, i, slot - 1);
            if (slot > s->ticked[i]) tick(s, i, slot);
            s->ticked[i] = slot;
            int64_t next = (slot + 1) * s->specs[i].interval_ms;
            if (next < wake) wake = next;
        }
        int64_t wait = wake - rf_now_ms();
        if (wait > 0 && !pause_ms(s, wait)) break;
    }
    return NULL;
}

/* This process in the runs it claims: pid and random bits (ids charset). */
static void node_name(char out[RF_ID_BYTES]) {
    uint8_t b[4];
    char hex[9];
    rf_random_id_bytes(b, sizeof b);
    rf_hex(b, sizeof b, hex);
    snprintf(out, RF_ID_BYTES, "racefree-%ld-%s", (long)getpid(), hex);
}

rf_err scheduler_start(rf *db, const struct sched_spec *specs, int n, struct scheduler **out) {
    RF_ASSERT(db && out && n >= 0 && n <= RF_SCHEDULES_MAX);
    struct scheduler *s = calloc(1, sizeof *s);
    if (!s) return RF_ERR_NOMEM;
    s->db = db;
    s->n = n;
    for (int i = 0; i < n; i++) {
        s->specs[i] = specs[i];
        s->ticked[i] = -1;
    }
    node_name(s->node);
    rf_halt_init(&s->halt);
    if (n > 0 && pthread_create(&s->thread, NULL, scheduler_main, s) != 0) {
        scheduler_free(s);
        return RF_ERR_INTERNAL;
    }
    s->started = n > 0;
    *out = s;
    return RF_OK;
}

void scheduler_stop(struct scheduler *s) {
    if (!s) return;
    rf_halt_request(&s->halt);
    if (s->started) pthread_join(s->thread, NULL);
    s->started = false;
}

void scheduler_free(struct scheduler *s) {
    if (!s) return;
    scheduler_stop(s);
    rf_halt_destroy(&s->halt);
    free(s);
}

int scheduler_count(const struct scheduler *s) { return s ? s->n : 0; }

const struct sched_spec *scheduler_spec(const struct scheduler *s, int i) {
    RF_ASSERT(s && i >= 0 && i < s->n);
    return &s->specs[i];
}

const struct sched_spec *scheduler_find(const struct scheduler *s, const char *name) {
    for (int i = 0; i < scheduler_count(s); i++)
        if (strcmp(s->specs[i].name, name) == 0) return &s->specs[i];
    return NULL;
}

/* ---- reads ------------------------------------------------------------------------- */

static rf_err op_last_run(struct rf_tx *tx, void *ctx) {
    struct run_ctx *c = ctx;
    store_val p[2] = {SV_S(c->sp->name), SV_I(c->sp->interval_ms)};
    rf_err err = store_query_one(tx,
                                 "SELECT " RUN_COLS " FROM schedule_runs WHERE name = $1 AND"
                                 " interval_ms = $2 ORDER BY slot DESC LIMIT 1",
                                 p, 2, read_run, &c->run);
    c->changed = err == RF_OK;
    return err == RF_ERR_NOT_FOUND ? RF_OK : err;
}

rf_err sched_last_run(rf *db, const struct sched_spec *sp, struct sched_run *out, bool *found) {
    struct run_ctx c = {.sp = sp};
    rf_err err = core_read(db, "schedule_last_run", op_last_run, &c);
    *found = !err && c.changed;
    *out = c.run;
    return err;
}

struct list_ctx {
    const char *name;
    struct list_page lp;
};

static rf_err op_runs_list(struct rf_tx *tx, void *ctx) {
    struct list_ctx *c = ctx;
    store_val p[5] = {SV_I(c->lp.after.pos), SV_S(c->lp.after.key), LIST_HORIZON_SLOT,
                      SV_S(c->name), SV_I(c->lp.limit)};
    return list_page_run(tx,
                         "SELECT " RUN_COLS " FROM schedule_runs WHERE name = $4 AND "
                         LIST_AFTER("id") LIST_ORDER("id") " LIMIT $5",
                         p, 5, &c->lp);
}

rf_err sched_runs_list(rf *db, const char *name, const char *after, int limit,
                       struct sched_run_page *out) {
    memset(out, 0, sizeof *out);
    if (limit < 1) limit = RF_LIST_LIMIT_DEFAULT;
    if (limit > RF_LIST_LIMIT_MAX) limit = RF_LIST_LIMIT_MAX;
    struct list_ctx c = {.name = name,
                         .lp = {.limit = limit, .pos_col = 14, .key_col = 0,
                                .pos_sql = "SELECT list_pos FROM schedule_runs WHERE id = $1",
                                .read_row = read_run, LIST_OUT(out)}};
    rf_err err = list_cursor_parse(after, &c.lp.after);
    if (err) return err;
    err = list_read(db, "schedule_runs_list", op_runs_list, &c, &c.lp);
    out->items = c.lp.items;
    out->n = c.lp.n;
    return err;
}

/* ---- the payouts task --------------------------------------------------------------- */

struct currencies {
    char cur[RF_SCHEDULE_CURRENCIES_MAX][RF_CURRENCY_BYTES];
    int n;
};
static void read_currency(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct currencies *c = out;
    RF_ASSERT(c->n < RF_SCHEDULE_CURRENCIES_MAX);
    rf_strcpy(c->cur[c->n++], RF_CURRENCY_BYTES, store_text(tx, r, 0));
}
static rf_err op_currencies(struct rf_tx *tx, void *ctx) {
    return store_query_each(tx,
                            "SELECT DISTINCT currency FROM accounts WHERE kind = 'user'"
                            " ORDER BY currency LIMIT " RF_STR(RF_SCHEDULE_CURRENCIES_MAX),
                            NULL, 0, RF_SCHEDULE_CURRENCIES_MAX, read_currency, ctx);
}

/* One payout batch per currency (the spec's, or every currency that has
 * user wallets), each with a run key derived from the slot, so a resumed
 * or repeated run of the slot finishes or returns the same batches. */
static rf_err task_payouts(rf *db, const struct sched_spec *sp, int64_t slot,
                           const char *holder, char *batch_ids, size_t cap) {
    struct currencies cs = {.n = 0};
    if (sp->currency[0]) rf_strcpy(cs.cur[cs.n++], RF_CURRENCY_BYTES, sp->currency);
    else {
        rf_err err = core_read(db, "schedule_currencies", op_currencies, &cs);
        if (err) return err;
    }
    size_t used = 0;
    for (int i = 0; i < cs.n; i++) {
        char run_key[RF_ID_BYTES], batch[RF_ID_BYTES] = "";
        snprintf(run_key, sizeof run_key, "schedule:payouts:%s:%" PRId64 ":%" PRId64 ":%" PRId64,
                 cs.cur[i], sp->min_amount_minor, sp->interval_ms, slot);
        struct payout_batch_spec bs = {.currency = cs.cur[i],
                                       .min_amount_minor = sp->min_amount_minor,
                                       .run_key = run_key, .holder = holder};
        struct rf_fault fault;
        memset(&fault, 0, sizeof fault);
        rf_err err = payout_batch_run(db, &bs, batch, &fault);
        if (err) return err;
        int n = snprintf(batch_ids + used, cap - used, "%s%s", used ? "," : "", batch);
        RF_ASSERT(n > 0 && (size_t)n < cap - used);
        used += (size_t)n;
    }
    return RF_OK;
}
