/*
 * h_approvals.c - how an approval renders (the only place one becomes
 * JSON). Every /v1/approvals route is an operation route run by h_op.c
 * with this view: create (POST, 201 with Location), read (GET /{id}), list
 * (GET ?status=), and the three transitions out of `pending`: POST
 * /{id}/approve, /{id}/reject and /{id}/cancel (200). So a creation, a
 * transition, their Idempotency-Key replays, a read and a list item are
 * the same shape.
 *
 * What the routes check lives in core/api.c's approval rows: an action is
 * a bounded JSON object here and core/actions.c names what is wrong in it
 * (the problem's detail). Who acted is the API key: requested_by_key,
 * approved_by_key and rejected_by_key are the calling keys' ids (never from
 * the body; requested_key_id is the older name of requested_by_key, kept
 * for clients that read it), and the *_by members are labels. The key that
 * requested may not approve (403 self_approval) and only it, or an admin
 * key, may cancel (403 not_requester).
 */
#include <stddef.h>

#include "base/ids.h"
#include "http/respond.h"
#include "http/view.h"

/* A stored JSON text as a value: null when absent, NULL when unreadable. */
static json_t *stored_json(const char *text) {
    return text ? json_loads(text, 0, NULL) : json_null();
}

static json_t *approval_json(const void *entity) {
    const struct rf_approval *a = entity;
    json_t *action = a->action_json ? stored_json(a->action_json) : NULL;
    json_t *meta = stored_json(a->metadata_json);
    json_t *result = stored_json(a->result_json);
    if (!action || !meta || !result) {
        json_decref(action);
        json_decref(meta);
        json_decref(result);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:o,"
                     " s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I}",
                     "id", a->id, "status", rf_approval_status_name(a->status), "action", action,
                     "action_type", rf_action_type_name(a->action_type), "requested_by",
                     a->requested_by, "requested_by_key", rf_json_str(a->requested_key),
                     "requested_key_id", rf_json_str(a->requested_key),
                     "require_distinct_approver", a->require_distinct_approver, "metadata", meta,
                     "expires_at", rf_json_time(a->expires_at_ms), "approved_by",
                     rf_json_str(a->approved_by), "approved_by_key",
                     rf_json_str(a->approved_key), "approved_at", rf_json_time(a->approved_at_ms),
                     "executed_at", rf_json_time(a->executed_at_ms), "result", result,
                     "rejected_by", rf_json_str(a->rejected_by), "rejected_by_key",
                     rf_json_str(a->rejected_key), "rejected_at",
                     rf_json_time(a->rejected_at_ms), "rejection_reason",
                     rf_json_str(a->rejection_reason), "cancelled_at",
                     rf_json_time(a->cancelled_at_ms), "created_at",
                     rf_json_time(a->created_at_ms), "updated_at", rf_json_time(a->updated_at_ms),
                     "version", (json_int_t)a->version);
}

/* Every approval operation's result is the approval itself. */
const struct rf_view rf_view_approval = {
    .json = approval_json,
    .version_offset = offsetof(struct rf_approval, version),
    .location_fmt = "/v1/approvals/%s",
    .location_offsets = {offsetof(struct rf_approval, id)},
    .n_location = 1,
    .entity_size = sizeof(struct rf_approval),
};

/* GET /v1/approvals: ?status= in enum rf_approval_filter's order (absent:
 * all); the cursor is an approval id. */
static const char *const status_names[] = {"all",       "pending",   "approved",
                                           "rejected",  "cancelled", "expired"};
_Static_assert(RF_APPROVAL_ALL == 0 && RF_APPROVAL_PENDING == 1 && RF_APPROVAL_APPROVED == 2 &&
                   RF_APPROVAL_REJECTED == 3 && RF_APPROVAL_CANCELLED == 4 &&
                   RF_APPROVAL_EXPIRED == 5,
               "status_names follows enum rf_approval_filter");
const struct rf_list_query rf_list_approvals = {
    .statuses = status_names, .n_statuses = 6, .status_default = RF_APPROVAL_ALL,
    .cursor_valid = rf_id_valid};
