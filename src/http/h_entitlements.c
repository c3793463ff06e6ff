/*
 * h_entitlements.c - how an entitlement renders (the only place one becomes
 * JSON): grant (PUT), revoke (DELETE) and read (GET) are operation routes
 * run by h_op.c with this view, so a grant, its Idempotency-Key replay, a
 * read and a list item are the same shape.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/ids.h"
#include "base/limits.h"
#include "http/handlers.h"
#include "http/request.h"
#include "http/respond.h"

/* ---- Rendering ----------------------------------------------------------- */

static json_t *ent_json(const struct rf_entitlement *e) {
    json_t *meta = json_null();
    if (e->metadata_json) {
        meta = json_loads(e->metadata_json, 0, NULL);
        if (!meta) return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I}", "id", e->id,
                     "user_id", e->user_id, "key", e->key, "status", e->status, "source",
                     rf_json_str(e->source), "expires_at", rf_json_time(e->expires_at_ms),
                     "metadata", meta, "granted_at", rf_json_time(e->granted_at_ms),
                     "revoked_at", rf_json_time(e->revoked_at_ms), "updated_at",
                     rf_json_time(e->updated_at_ms), "version", (json_int_t)e->version);
}

static json_t *ent_item(const void *items, int i) {
    return ent_json(&((const struct rf_entitlement *)items)[i]);
}

static json_t *ent_view_json(const void *entity) { return ent_json(entity); }

_Static_assert(offsetof(struct rf_grant_res, ent) == 0, "a grant's result starts with it");
const struct rf_view rf_view_entitlement = {
    .json = ent_view_json,
    .version_offset = offsetof(struct rf_entitlement, version),
    .location_fmt = "/v1/users/%s/entitlements/%s",
    .location_offsets = {offsetof(struct rf_entitlement, user_id),
                         offsetof(struct rf_entitlement, key)},
    .n_location = 2,
    .entity_size = sizeof(struct rf_entitlement),
};

/* ---- GET: list ------------------------------------------------------------- */

static const char *const status_names[] = {"active", "revoked", "expired", "all"};
_Static_assert(RF_ENT_ACTIVE == 0 && RF_ENT_REVOKED == 1 && RF_ENT_EXPIRED == 2 &&
                   RF_ENT_ALL == 3,
               "status_names follows enum rf_ent_filter");

struct list_state {
    struct rf_page page;
    enum rf_ent_filter filter;
    struct rf_entitlement_page res;
};

static rf_err list_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    struct list_state *s = state;
    return rf_entitlement_list(req->ctx->db, rf_path_param(req, "user_id"), s->filter,
                               s->page.after, s->page.limit, &s->res);
}

static rf_err list_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    const struct rf_entitlement_page *pg = result;
    return rf_reply_page(out, pg->items, pg->n, ent_item, pg->next);
}

static void list_clear(void *state) {
    rf_entitlement_page_clear(&((struct list_state *)state)->res);
}

void h_entitlement_list(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct list_state s = {0};
    size_t filter;
    if (!rf_req_page(req, rf_id_valid, &s.page, &p) || /* the cursor is an entitlement key */
        !rf_req_choice(req, "status", status_names, 4, RF_ENT_ACTIVE, &filter, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    s.filter = (enum rf_ent_filter)filter;
    const struct rf_http_op op = {.call = list_call, .render = list_render, .state = &s,
                                  .result = &s.res, .clear = list_clear};
    rf_http_run(req, &op, out);
}
