/*
 * h_jobs.c - how a job, a queue's stats and a drop-in match render (the
 * only place they become JSON). Every job route (POST /v1/jobs, the claim
 * POST /v1/queues/{queue}/claim, a worker's /heartbeat, /complete, /fail,
 * /cancel, GET /v1/jobs/{id}, the drop-in trigger) and the match routes are
 * operation routes run by h_op.c with these views, so a first answer, its
 * Idempotency-Key replay, a read and a claimed item are the same shape.
 */
#include <stddef.h>

#include "base/ids.h"
#include "http/respond.h"
#include "http/view.h"

/* A stored JSON text (an object), or null. */
static bool json_member(const char *text, json_t **out) {
    *out = text ? json_loads(text, 0, NULL) : json_null();
    return *out != NULL;
}

static json_t *time_or_null(int64_t ms) { return ms ? rf_json_time(ms) : json_null(); }

static json_t *job_json(const void *entity) {
    const struct rf_job *j = entity;
    json_t *payload, *result;
    if (!json_member(j->payload_json, &payload)) return NULL;
    if (!json_member(j->result_json, &result)) {
        json_decref(payload);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:I, s:o, s:I, s:I, s:I, s:o, s:o, s:o,"
                     " s:o, s:o, s:o, s:o, s:I}",
                     "id", j->id, "queue", j->queue, "kind", j->kind, "payload", payload,
                     "unique_key", rf_json_str(j->unique_key), "status",
                     rf_job_status_name(j->status), "priority", (json_int_t)j->priority,
                     "run_at", rf_json_time(j->run_at_ms), "attempt", (json_int_t)j->attempt,
                     "max_attempts", (json_int_t)j->max_attempts, "token",
                     (json_int_t)j->token, "worker_id", rf_json_str(j->worker_id),
                     "lease_expires_at", time_or_null(j->lease_expires_at_ms), "last_error",
                     j->last_error ? json_string(j->last_error) : json_null(), "result", result,
                     "created_at", rf_json_time(j->created_at_ms), "updated_at",
                     rf_json_time(j->updated_at_ms), "finished_at",
                     time_or_null(j->finished_at_ms), "version", (json_int_t)j->version);
}

/* A job (201 with Location when an enqueue made it, 200 otherwise; ETag
 * its version); the claim answers {"data": [job, ...]}. */
const struct rf_view rf_view_job = {
    .json = job_json,
    .version_offset = offsetof(struct rf_job, version),
    .location_fmt = "/v1/jobs/%s",
    .location_offsets = {offsetof(struct rf_job, id)},
    .n_location = 1,
    .entity_size = sizeof(struct rf_job),
};

static json_t *queue_stats_json(const void *entity) {
    const struct rf_queue_stats *s = entity;
    return json_pack("{s:s, s:{s:I, s:I, s:I, s:I, s:I}, s:I, s:I}", "queue", s->queue,
                     "counts", "available", (json_int_t)s->available, "running",
                     (json_int_t)s->running, "completed", (json_int_t)s->completed, "failed",
                     (json_int_t)s->failed, "canceled", (json_int_t)s->canceled, "ready",
                     (json_int_t)s->ready, "oldest_ready_age_ms",
                     (json_int_t)s->oldest_ready_age_ms);
}

/* A count read now, not a resource: no version, no ETag. */
const struct rf_view rf_view_queue_stats = {
    .json = queue_stats_json,
    .no_version = true,
};

static json_t *dropin_match_json(const void *entity) {
    const struct rf_dropin_match *m = entity;
    json_t *meta;
    if (!json_member(m->metadata_json, &meta)) return NULL;
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:o}", "id", m->id, "photo_id",
                     m->photo_id, "attendee_id", m->attendee_id, "face_id", m->face_id,
                     "similarity_bp", (json_int_t)m->similarity_bp, "metadata", meta,
                     "created_at", rf_json_time(m->created_at_ms));
}

/* A match never changes (its ETag is always 1); 201 names the photo's list. */
const struct rf_view rf_view_dropin_match = {
    .json = dropin_match_json,
    .version_offset = offsetof(struct rf_dropin_match, version),
    .location_fmt = "/v1/drop-in/photos/%s/matches",
    .location_offsets = {offsetof(struct rf_dropin_match, photo_id)},
    .n_location = 1,
    .entity_size = sizeof(struct rf_dropin_match),
};

/* GET /v1/drop-in/photos/{photo_id}/matches: no ?status=; the cursor is a
 * match id. */
const struct rf_list_query rf_list_dropin_matches = {.cursor_valid = rf_id_valid};
