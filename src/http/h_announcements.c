/*
 * h_announcements.c - how an announcement renders (the only place it becomes
 * JSON): POST /v1/announcements, GET /v1/announcements/{id} and POST
 * .../retry-failed are operation routes run by h_op.c with this view, so a
 * first answer, its Idempotency-Key replay and a read are the same shape.
 * Also the fan-out's test hook (hidden, --test-hooks only).
 */
#include <stddef.h>

#include "base/limits.h"
#include "core/fields.h"
#include "core/test_hooks.h"
#include "http/handlers.h"
#include "http/request.h"
#include "http/respond.h"
#include "http/view.h"

static json_t *audience_json(const struct rf_announcement *a) {
    if (a->entitlement_key[0]) return json_pack("{s:s}", "entitlement_key", a->entitlement_key);
    if (a->audience_size) return json_pack("{s:I}", "user_ids", (json_int_t)a->audience_size);
    return json_pack("{s:b}", "all", 1);
}

static json_t *announcement_json(const void *entity) {
    const struct rf_announcement *a = entity;
    return json_pack("{s:s, s:s?, s:s?, s:o, s:s, s:b, s:{s:I, s:I, s:I, s:I}, s:I, s:s,"
                     " s:o, s:o, s:o, s:I}",
                     "id", a->id, "title", a->title, "body", a->body, "audience",
                     audience_json(a), "state", rf_announcement_state_name(a->state),
                     "fanout_done", a->fanout_done, "counts", "recipients",
                     (json_int_t)a->recipients, "pending", (json_int_t)a->pending, "delivered",
                     (json_int_t)a->delivered, "failed", (json_int_t)a->failed, "retries",
                     (json_int_t)a->retries, "job_id", a->job_id, "send_at",
                     rf_json_time(a->send_at_ms), "created_at", rf_json_time(a->created_at_ms),
                     "updated_at", rf_json_time(a->updated_at_ms), "version",
                     (json_int_t)a->version);
}

/* An announcement (201 with Location when created; ETag its version). */
const struct rf_view rf_view_announcement = {
    .json = announcement_json,
    .version_offset = offsetof(struct rf_announcement, version),
    .location_fmt = "/v1/announcements/%s",
    .location_offsets = {offsetof(struct rf_announcement, id)},
    .n_location = 1,
    .entity_size = sizeof(struct rf_announcement),
};

/* ---- the test hook (--test-hooks) ------------------------------------------ */

struct fanout_hook_args {
    int64_t pause_ms, lease_ms;
    const char *fail_user_ids;
};

/* {"pause_ms"?, "lease_ms"?, "fail_user_ids"?: "u1,u2"}: every field absent
 * resets it. */
void h_test_fanout(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field f[] = {
        RF_F(struct fanout_hook_args, pause_ms, "pause_ms", RF_FIELD_INT, false,
             .max = RF_TEST_FANOUT_PAUSE_MS_MAX),
        RF_F(struct fanout_hook_args, lease_ms, "lease_ms", RF_FIELD_INT, false,
             .min = RF_JOB_LEASE_MS_MIN, .max = RF_JOB_LEASE_MS_MAX),
        RF_F(struct fanout_hook_args, fail_user_ids, "fail_user_ids", RF_FIELD_STRING, false,
             .max_len = RF_TEST_FANOUT_FAIL_USERS_CHARS_MAX),
    };
    struct fanout_hook_args a = {0};
    struct rf_decoded d = {0};
    if (!rf_req_body(req, f, sizeof f / sizeof f[0], &a, &d, out)) return;
    rf_test_fanout(req->ctx->db, (int)a.pause_ms, a.lease_ms, a.fail_user_ids);
    rf_reply_empty(out, 204);
}
