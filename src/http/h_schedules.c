/*
 * h_schedules.c - /v1/schedules: this server's --schedule specs with their
 * last runs (GET /v1/schedules), a run's trigger (POST
 * /v1/schedules/{name}/run: admin only, as every HTTP trigger of a scheduled
 * job: the public, repeatable cron endpoint is what it replaces), and a
 * schedule's runs (GET /v1/schedules/{name}/runs), and how a run renders
 * (the only place one becomes JSON).
 *
 * The trigger runs the current slot's run on the worker thread that serves
 * it (never the event loop or an executor thread): idempotent per slot, as
 * the scheduler's own ticks are, so five calls within one interval make one
 * run, and a call while another process holds the slot answers that run.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/ids.h"
#include "core/schedule.h"
#include "http/handlers.h"
#include "http/respond.h"
#include "http/routes.h"

/* batch_ids "a,b" -> ["a", "b"] ("" -> []). */
static json_t *batch_ids_json(const char *ids) {
    json_t *a = json_array();
    for (const char *p = ids; a && *p;) {
        size_t n = strcspn(p, ",");
        json_array_append_new(a, json_stringn(p, n));
        p += n + (p[n] == ',');
    }
    return a;
}

static json_t *run_json(const struct sched_run *r) {
    return json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o}",
                     "id", r->id, "schedule", r->name, "slot", (json_int_t)r->slot,
                     "interval_ms", (json_int_t)r->interval_ms, "spec", r->spec, "node", r->node,
                     "via", r->via, "status", r->status, "attempts", (json_int_t)r->attempts,
                     "batch_ids", batch_ids_json(r->batch_ids), "error",
                     rf_json_str(r->error[0] ? r->error : NULL), "started_at",
                     rf_json_time(r->started_at_ms), "updated_at", rf_json_time(r->updated_at_ms),
                     "finished_at", rf_json_time(r->finished_at_ms));
}

static json_t *run_item_json(const void *items, int i) {
    return run_json(&((const struct sched_run *)items)[i]);
}

/* The {name} of the route as one of this server's schedules; else 404. */
static const struct sched_spec *named_spec(struct rf_http_req *req, struct rf_reply *out) {
    const char *name = rf_path_param(req, "name");
    const struct sched_spec *sp = scheduler_find(req->ctx->scheduler, name);
    if (!sp) {
        struct rf_problem p;
        rf_problem_set(&p, RF_ERR_SCHEDULE_NOT_FOUND,
                       "this server has no schedule named '%s' (racefree serve --schedule)", name);
        rf_problem_param(&p, "name", 4);
        rf_reply_problem(out, &p);
    }
    return sp;
}

static json_t *schedule_json(const struct sched_spec *sp, const struct sched_run *last,
                             bool found) {
    int64_t slot = sched_slot(sp, rf_now_ms());
    return json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:o, s:o}", "name", sp->name, "spec",
                     sp->text, "task", "payouts", "currency",
                     rf_json_str(sp->currency[0] ? sp->currency : NULL), "min_amount_minor",
                     (json_int_t)sp->min_amount_minor, "interval_ms",
                     (json_int_t)sp->interval_ms, "current_slot", (json_int_t)slot,
                     "next_run_at", rf_json_time((slot + 1) * sp->interval_ms), "last_run",
                     found ? run_json(last) : json_null());
}

void h_schedule_list(struct rf_http_req *req, struct rf_reply *out) {
    const struct scheduler *s = req->ctx->scheduler;
    json_t *data = json_array();
    for (int i = 0; data && i < scheduler_count(s); i++) {
        struct sched_run last;
        bool found = false;
        rf_err err = sched_last_run(req->ctx->db, scheduler_spec(s, i), &last, &found);
        if (err) {
            json_decref(data);
            rf_reply_error(out, err, NULL);
            return;
        }
        json_array_append_new(data, schedule_json(scheduler_spec(s, i), &last, found));
    }
    rf_reply_json(out, 200, json_pack("{s:o, s:n}", "data", data, "next"));
}

void h_schedule_run(struct rf_http_req *req, struct rf_reply *out) {
    const struct sched_spec *sp = named_spec(req, out);
    if (!sp) return;
    struct sched_run run;
    bool created = false;
    rf_err err = scheduler_run_now(req->ctx->scheduler, sp, &run, &created);
    if (err) {
        rf_reply_error(out, err, NULL);
        return;
    }
    rf_reply_json(out, created ? 201 : 200, run_json(&run));
}

void h_schedule_runs(struct rf_http_req *req, struct rf_reply *out) {
    const struct sched_spec *sp = named_spec(req, out);
    if (!sp) return;
    struct rf_page page;
    struct rf_problem p;
    if (!rf_req_page(req, rf_id_valid, &page, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    struct sched_run_page pg;
    rf_err err = sched_runs_list(req->ctx->db, sp->name, page.after, page.limit, &pg);
    if (!err) err = rf_reply_page(out, pg.items, pg.n, run_item_json, pg.next);
    if (err) rf_reply_error(out, err, NULL);
    free(pg.items);
}
