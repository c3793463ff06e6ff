/*
 * h_checkouts.c - how a checkout renders (the only place one becomes JSON):
 * create (POST /v1/checkouts), the provider reference binding (PUT
 * /{id}/provider-ref), a read (GET /{id}), a cancel (POST /{id}/cancel) and
 * a user's list (GET /v1/users/{user_id}/checkouts) are operation routes run
 * by h_op.c with this view, so every answer, its Idempotency-Key replay and
 * a list item are the same shape.
 *
 * Creating a checkout requires an Idempotency-Key: a client retrying after a
 * lost answer, or many racing tabs of one purchase, get one checkout.
 */
#include <stddef.h>

#include "base/ids.h"
#include "http/respond.h"
#include "http/view.h"

static json_t *checkout_json(const void *entity) {
    const struct rf_checkout *c = entity;
    json_t *items = c->items_json ? json_loads(c->items_json, 0, NULL) : json_array();
    if (!items) return NULL;
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:o, s:s, s:o, s:I, s:o, s:o, s:o, s:I}", "id",
                     c->id, "user_id", c->user_id, "currency", c->currency, "amount_minor",
                     (json_int_t)c->amount_minor, "provider", c->provider, "provider_ref",
                     c->provider_ref[0] ? json_string(c->provider_ref) : json_null(), "status",
                     rf_checkout_status_name(c->status), "items", items,
                     "refund_shortfall_minor", (json_int_t)c->refund_shortfall_minor,
                     "expires_at", rf_json_time(c->expires_at_ms), "created_at",
                     rf_json_time(c->created_at_ms), "updated_at",
                     rf_json_time(c->updated_at_ms), "version", (json_int_t)c->version);
}

/* Every checkout operation's result is the checkout itself (201 with
 * Location on create, 200 otherwise; ETag its version). */
const struct rf_view rf_view_checkout = {
    .json = checkout_json,
    .version_offset = offsetof(struct rf_checkout, version),
    .location_fmt = "/v1/checkouts/%s",
    .location_offsets = {offsetof(struct rf_checkout, id)},
    .n_location = 1,
    .entity_size = sizeof(struct rf_checkout),
};

/* GET /v1/users/{user_id}/checkouts: ?status= in enum rf_checkout_filter's
 * order, absent: all; the cursor is a checkout id. */
static const char *const status_names[] = {"all",     "pending",  "paid",    "fulfilled",
                                           "expired", "canceled", "refunded"};
_Static_assert(RF_CHECKOUTS_ALL == 0 && RF_CHECKOUTS_REFUNDED == 6,
               "status_names follows enum rf_checkout_filter");
const struct rf_list_query rf_list_checkouts = {
    .statuses = status_names, .n_statuses = 7, .status_default = RF_CHECKOUTS_ALL,
    .cursor_valid = rf_id_valid};
