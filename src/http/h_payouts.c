/*
 * h_payouts.c - how a payout renders (the only place one becomes JSON):
 * create (POST /v1/payouts; places the hold), an attempt (POST
 * /{id}/attempts), the outcomes (POST /{id}/succeeded, /{id}/failed), a
 * read (GET /{id}) and the list (GET ?status=) are operation routes run by
 * h_op.c with this view, so every answer, its Idempotency-Key replay and a
 * list item are the same shape.
 *
 * Creating a payout moves money into a hold, so its route requires an
 * Idempotency-Key; attempts and outcomes accept one (a worker that retries
 * after a lost response sends the same key to have its attempt counted
 * once). `destination` is a nested object checked by the operation's field
 * spec (core/api.c).
 */
#include <stddef.h>

#include "base/ids.h"
#include "http/respond.h"
#include "http/view.h"

static json_t *payout_json(const void *entity) {
    const struct rf_payout *p = entity;
    json_t *meta = json_null();
    if (p->metadata_json) {
        meta = json_loads(p->metadata_json, 0, NULL);
        if (!meta) return NULL;
    }
    json_t *dest = json_pack("{s:s, s:s}", "provider", p->provider, "ref", p->destination_ref);
    if (!dest) {
        json_decref(meta);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:I, s:s, s:o, s:s, s:s, s:s, s:o, s:I, s:I, s:o, s:o, s:o,"
                     " s:o, s:I}",
                     "id", p->id, "account", p->account, "amount_minor",
                     (json_int_t)p->amount_minor, "currency", p->currency, "destination", dest,
                     "status", rf_payout_status_name(p->status), "hold_transfer_id",
                     p->hold_transfer_id, "provider_idempotency_key", p->provider_idempotency_key,
                     "provider_payout_id", rf_json_str(p->provider_payout_id), "attempt_count",
                     (json_int_t)p->attempt_count, "max_attempts", (json_int_t)p->max_attempts,
                     "last_error", rf_json_str(p->last_error), "metadata", meta, "created_at",
                     rf_json_time(p->created_at_ms), "updated_at",
                     rf_json_time(p->updated_at_ms), "version", (json_int_t)p->version);
}

/* Every payout operation's result is the payout itself (201 with Location
 * on create, 200 otherwise; ETag its version). */
const struct rf_view rf_view_payout = {
    .json = payout_json,
    .version_offset = offsetof(struct rf_payout, version),
    .location_fmt = "/v1/payouts/%s",
    .location_offsets = {offsetof(struct rf_payout, id)},
    .n_location = 1,
    .entity_size = sizeof(struct rf_payout),
};

/* GET /v1/payouts: ?status= in enum rf_payout_filter's order, absent: all;
 * the cursor is a payout id. */
static const char *const status_names[] = {"all", "pending", "paid", "failed"};
_Static_assert(RF_PAYOUT_ALL == 0 && RF_PAYOUT_PENDING == 1 && RF_PAYOUT_PAID == 2 &&
                   RF_PAYOUT_FAILED == 3,
               "status_names follows enum rf_payout_filter");
const struct rf_list_query rf_list_payouts = {
    .statuses = status_names, .n_statuses = 4, .status_default = RF_PAYOUT_ALL,
    .cursor_valid = rf_id_valid};
