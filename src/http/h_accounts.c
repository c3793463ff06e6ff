/*
 * h_accounts.c - how an account and an account's entry render (the only
 * place either becomes JSON). Create (POST /v1/accounts), read (GET
 * /v1/accounts/{id}), history (GET /v1/accounts/{id}/entries) and the list
 * of every account (GET /v1/accounts?currency=&kind=) are operation routes run by h_op.c with these views, so a create, its
 * Idempotency-Key replay and a read are one shape. Balances are in minor
 * units; `available` is posted minus pending debits (what a debit may
 * take). The credit shorthand POST /v1/accounts/{id}/credits makes a
 * transfer, so it lives with the transfer renderer in h_transfers.c.
 */
#include <stddef.h>

#include "base/ids.h"
#include "http/respond.h"
#include "http/view.h"

/* ---- Rendering ----------------------------------------------------------- */

static json_t *account_json(const void *entity) {
    const struct rf_account *a = entity;
    json_t *meta = json_null();
    if (a->metadata_json) {
        meta = json_loads(a->metadata_json, 0, NULL);
        if (!meta) return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "id", a->id,
                     "currency", a->currency, "kind", rf_account_kind_name(a->kind),
                     "allow_negative", a->allow_negative, "metadata", meta, "posted",
                     (json_int_t)a->posted, "pending_debits", (json_int_t)a->pending_debits,
                     "pending_credits", (json_int_t)a->pending_credits, "available",
                     (json_int_t)a->available, "version", (json_int_t)a->version,
                     "created_at", rf_json_time(a->created_at_ms), "updated_at",
                     rf_json_time(a->updated_at_ms));
}

static json_t *entry_json(const void *entity) {
    const struct rf_entry *e = entity;
    return json_pack("{s:I, s:s, s:s, s:I, s:I, s:o}", "seq", (json_int_t)e->seq, "transfer_id",
                     e->transfer_id, "side", rf_entry_side_name(e->side), "amount_minor",
                     (json_int_t)e->amount_minor, "balance_after", (json_int_t)e->balance_after,
                     "created_at", rf_json_time(e->created_at_ms));
}

_Static_assert(offsetof(struct rf_account_res, account) == 0, "a create's result starts with it");
const struct rf_view rf_view_account = {
    .json = account_json,
    .version_offset = offsetof(struct rf_account, version),
    .location_fmt = "/v1/accounts/%s",
    .location_offsets = {offsetof(struct rf_account, id)},
    .n_location = 1,
    .entity_size = sizeof(struct rf_account),
};

/* An entry is only ever a list item: no version, no Location. */
const struct rf_view rf_view_entry = {.json = entry_json, .entity_size = sizeof(struct rf_entry)};

/* GET /v1/accounts/{id}/entries: no ?status=; the cursor has an id's form
 * here (a decimal seq, which the library checks once the account is
 * found). */
const struct rf_list_query rf_list_entries = {.cursor_valid = rf_id_valid};

/* GET /v1/accounts: ?kind= in enum rf_account_filter's order (absent: all),
 * ?currency= a filter of the operation's own (core/api.c); the cursor is an
 * account id. */
static const char *const kind_names[] = {"all", "user", "system"};
_Static_assert(RF_ACCOUNTS_ALL == 0 && RF_ACCOUNTS_USER == 1 && RF_ACCOUNTS_SYSTEM == 2,
               "kind_names follows enum rf_account_filter");
const struct rf_list_query rf_list_accounts = {
    .status_param = "kind", .statuses = kind_names, .n_statuses = 3,
    .status_default = RF_ACCOUNTS_ALL, .cursor_valid = rf_id_valid};
