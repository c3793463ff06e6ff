/*
 * h_entitlements.c - how an entitlement renders (the only place one becomes
 * JSON): grant (PUT), revoke (DELETE) and read (GET) are operation routes
 * run by h_op.c with this view, so a grant, its Idempotency-Key replay, a
 * read and a list item are the same shape.
 */
#include <stddef.h>

#include "base/ids.h"
#include "base/limits.h"
#include "http/respond.h"
#include "http/view.h"

/* ---- Rendering ----------------------------------------------------------- */

static json_t *ent_json(const void *entity) {
    const struct rf_entitlement *e = entity;
    json_t *meta = json_null();
    if (e->metadata_json) {
        meta = json_loads(e->metadata_json, 0, NULL);
        if (!meta) return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I}", "id", e->id,
                     "user_id", e->user_id, "key", e->key, "status",
                     rf_ent_status_name(e->status), "source", rf_json_str(e->source),
                     "expires_at", rf_json_time(e->expires_at_ms), "metadata", meta,
                     "granted_at", rf_json_time(e->granted_at_ms), "revoked_at",
                     rf_json_time(e->revoked_at_ms), "updated_at",
                     rf_json_time(e->updated_at_ms), "version", (json_int_t)e->version);
}

_Static_assert(offsetof(struct rf_grant_res, ent) == 0, "a grant's result starts with it");
const struct rf_view rf_view_entitlement = {
    .json = ent_json,
    .version_offset = offsetof(struct rf_entitlement, version),
    .location_fmt = "/v1/users/%s/entitlements/%s",
    .location_offsets = {offsetof(struct rf_entitlement, user_id),
                         offsetof(struct rf_entitlement, key)},
    .n_location = 2,
    .entity_size = sizeof(struct rf_entitlement),
};

/* GET /v1/users/{user_id}/entitlements: ?status= in enum rf_ent_filter's
 * order; the cursor is an entitlement key. */
static const char *const status_names[] = {"active", "revoked", "expired", "all"};
_Static_assert(RF_ENT_ACTIVE == 0 && RF_ENT_REVOKED == 1 && RF_ENT_EXPIRED == 2 &&
                   RF_ENT_ALL == 3,
               "status_names follows enum rf_ent_filter");
const struct rf_list_query rf_list_entitlements = {
    .statuses = status_names, .n_statuses = 4, .status_default = RF_ENT_ACTIVE,
    .cursor_valid = rf_id_valid};
