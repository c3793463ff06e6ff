/*
 * h_transfers.c - how a transfer renders (the only place one becomes JSON).
 * /v1/transfers: create (POST), read (GET /{id}), the list (GET, with
 * ?account= either side, ?currency=, ?status=, ?created_after= inclusive and
 * ?created_before= exclusive), and the two ways a hold
 * resolves (POST /{id}/post, POST /{id}/void); plus the credit shorthand
 * POST /v1/accounts/{id}/credits, which is a transfer from the currency's
 * funding account and answers a transfer. All are operation routes run by
 * h_op.c with this view, so a first answer, its Idempotency-Key replay and
 * a read are the same shape.
 *
 * Every request that moves money needs an Idempotency-Key (the routes'
 * RF_IDEM_REQUIRED: 400 idempotency_key_required without one), so a client
 * that retries after a lost response gets the first answer instead of a
 * second transfer. amount_minor is a JSON integer from 1 to 2^63-1 (the
 * operations' field specs, core/api.c).
 *
 * posted_amount_minor is null until the transfer is posted (a void posts
 * nothing; a partial post shows the part that moved).
 */
#include <stddef.h>
#include <string.h>

#include "base/ids.h"
#include "http/respond.h"
#include "http/view.h"

static json_t *transfer_json(const void *entity) {
    const struct rf_transfer *t = entity;
    json_t *meta = json_null();
    if (t->metadata_json) {
        meta = json_loads(t->metadata_json, 0, NULL);
        if (!meta) return NULL;
    }
    bool posted = t->status == RF_TRANSFER_POSTED;
    json_t *posted_amount = posted ? json_integer((json_int_t)t->posted_amount_minor)
                                   : json_null();
    return json_pack("{s:s, s:s, s:s, s:I, s:o, s:s, s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:I}",
                     "id", t->id, "debit_account", t->debit_account, "credit_account",
                     t->credit_account, "amount_minor", (json_int_t)t->amount_minor,
                     "posted_amount_minor", posted_amount, "currency", t->currency, "status",
                     rf_transfer_status_name(t->status), "pending", t->pending, "reference",
                     rf_json_str(t->reference), "metadata", meta, "expires_at",
                     rf_json_time(t->expires_at_ms), "created_at", rf_json_time(t->created_at_ms),
                     "resolved_at", rf_json_time(t->resolved_at_ms), "version",
                     (json_int_t)t->version);
}

/* A write's result (struct rf_transfer_res) and a read's (struct
 * rf_transfer) both start with the transfer. */
_Static_assert(offsetof(struct rf_transfer_res, transfer) == 0, "a write's result starts with it");
const struct rf_view rf_view_transfer = {
    .json = transfer_json,
    .version_offset = offsetof(struct rf_transfer, version),
    .location_fmt = "/v1/transfers/%s",
    .location_offsets = {offsetof(struct rf_transfer, id)},
    .n_location = 1,
    .entity_size = sizeof(struct rf_transfer),
};

/* GET /v1/transfers: ?status= in enum rf_transfer_filter's order (absent:
 * all); the other filters are the operation's own (core/api.c); the cursor
 * is a transfer id. */
static const char *const status_names[] = {"all", "posted", "pending", "voided"};
_Static_assert(RF_TRANSFERS_ALL == 0 && RF_TRANSFERS_POSTED == 1 && RF_TRANSFERS_PENDING == 2 &&
                   RF_TRANSFERS_VOIDED == 3,
               "status_names follows enum rf_transfer_filter");
const struct rf_list_query rf_list_transfers = {
    .statuses = status_names, .n_statuses = 4, .status_default = RF_TRANSFERS_ALL,
    .cursor_valid = rf_id_valid};
