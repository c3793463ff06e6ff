/*
 * schedule.h - scheduled runs (`racefree serve --schedule SPEC`): the SPEC
 * grammar, the task table (name -> what a run does), the scheduler thread,
 * and the runs the store records (migration 014, table schedule_runs).
 *
 * Exactly once per interval across every process on one store: an
 * interval's identity is its slot, floor(now_ms / interval_ms); a run is
 * claimed by inserting (name, interval_ms, slot) with INSERT .. ON CONFLICT
 * DO NOTHING RETURNING, and only the process whose insert made the row runs
 * it (the check-then-run of a stateless cron endpoint, which any caller can
 * repeat, is what this replaces). A task derives the identities of what it
 * makes from the slot (payout batches: run_key "schedule:<name>:<interval>
 * :<slot>..."), so even a resumed run makes nothing twice.
 */
#ifndef RF_CORE_SCHEDULE_H
#define RF_CORE_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/limits.h"
#include "racefree.h"

struct sched_task;

/* One parsed --schedule SPEC: TASK[:CUR[:MIN]]@INTERVAL. */
struct sched_spec {
    char text[RF_SCHEDULE_SPEC_CHARS_MAX + 1];  /* as given */
    char name[RF_SCHEDULE_NAME_CHARS_MAX + 1];  /* the part before '@' */
    const struct sched_task *task;
    char currency[RF_CURRENCY_BYTES];           /* "": every currency with user wallets */
    int64_t min_amount_minor;                   /* >= 1 */
    int64_t interval_ms;
};

/* Parses text; false with why (a sentence for `racefree serve: ...`). */
bool sched_spec_parse(const char *text, struct sched_spec *out, char *why, size_t why_cap);
/* The task names, for messages and help: "payouts". */
const char *sched_task_names(void);

/* One row of schedule_runs. */
struct sched_run {
    char id[RF_ID_BYTES];                     /* "<name>:<interval_ms>:<slot>" */
    char name[RF_SCHEDULE_NAME_CHARS_MAX + 1];
    int64_t interval_ms;
    int64_t slot;
    char spec[RF_SCHEDULE_SPEC_CHARS_MAX + 1];
    char node[RF_ID_BYTES];                   /* the process that claimed (or resumed) it */
    char via[16];                             /* "schedule" or "http" */
    char status[16];                          /* "running", "succeeded", "failed" */
    int64_t attempts;
    char batch_ids[RF_SCHEDULE_BATCH_IDS_BYTES]; /* comma-separated */
    char error[RF_SCHEDULE_ERROR_CHARS_MAX + 1]; /* "" none */
    int64_t started_at_ms, updated_at_ms, finished_at_ms; /* finished 0: running */
};

struct sched_run_page {
    struct sched_run *items;   /* malloc'd; free() */
    int n;
    char next[RF_CURSOR_BYTES];
};

/* The scheduler: one thread per process that ticks every spec at each of
 * its slots. n may be 0 (no thread; the HTTP routes then list nothing).
 * node names this process in the runs it claims. */
struct scheduler;
rf_err scheduler_start(rf *db, const struct sched_spec *specs, int n, struct scheduler **out);
/* Stops the thread after the run it is in (if any); s stays usable by
 * scheduler_run_now (HTTP triggers still draining) until scheduler_free,
 * which stops it first if need be (NULL: no-op for both). */
void scheduler_stop(struct scheduler *s);
void scheduler_free(struct scheduler *s);

int scheduler_count(const struct scheduler *s);
const struct sched_spec *scheduler_spec(const struct scheduler *s, int i);
/* The spec named name, or NULL. */
const struct sched_spec *scheduler_find(const struct scheduler *s, const char *name);
/* The slot now, and when the next one starts (ms since the epoch). */
int64_t sched_slot(const struct sched_spec *sp, int64_t now_ms);

/* Runs the current slot's run of sp now, on the calling thread (blocks for
 * the run; never on an executor thread): claims it and runs it, or resumes
 * it when its claimer left it unfinished, or returns it as it is (running
 * on another process, or finished). *created: this call claimed the slot. */
rf_err scheduler_run_now(struct scheduler *s, const struct sched_spec *sp, struct sched_run *out,
                         bool *created);

/* The latest run of sp (by slot); *found false when none. */
rf_err sched_last_run(rf *db, const struct sched_spec *sp, struct sched_run *out, bool *found);
/* The runs of the schedule named name (every interval), in claim order
 * (listing.h), after the run id `after` ("" or NULL: the start). */
rf_err sched_runs_list(rf *db, const char *name, const char *after, int limit,
                       struct sched_run_page *out);

#endif
