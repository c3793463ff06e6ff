/*
 * h_entitlements.c - /v1/users/{user_id}/entitlements[/{key}]: grant (PUT),
 * revoke (DELETE), read (GET) and list. Each handler parses into the
 * library's request struct and hands the call and the renderer to
 * rf_http_run(); the renderers here are the only place an entitlement
 * becomes JSON, so a grant, its Idempotency-Key replay, a read and a list
 * item are the same shape.
 */
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

/* status 200 or 201 (with Location), entity body, ETag. */
static rf_err render_ent(const struct rf_entitlement *e, int status, struct rf_reply *out) {
    return rf_reply_entity(out, status, ent_json(e), e->version, "/v1/users/%s/entitlements/%s",
                           e->user_id, e->key);
}

/* ---- PUT: grant ---------------------------------------------------------- */

enum { F_SOURCE, F_EXPIRES_AT, F_METADATA, GRANT_FIELDS };
static const struct rf_field_spec grant_fields[GRANT_FIELDS] = {
    [F_SOURCE] = {"source", RF_FIELD_STRING, false, RF_SOURCE_CHARS_MAX, 0, 0},
    [F_EXPIRES_AT] = {"expires_at", RF_FIELD_TIME, false, 0, 0, 0},
    [F_METADATA] = {"metadata", RF_FIELD_OBJECT, false, RF_METADATA_BYTES_MAX, 0, 0},
};

struct grant_state {
    struct rf_grant_req req;
    struct rf_grant_res res;
};

static rf_err grant_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    struct grant_state *s = state;
    return rf_entitlement_grant(req->ctx->db, &s->req, &s->res, idem);
}

static rf_err grant_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    const struct rf_grant_res *res = result;
    return render_ent(&res->ent, res->created ? 201 : 200, out);
}

static void grant_clear(void *state) {
    rf_entitlement_clear(&((struct grant_state *)state)->res.ent);
}

void h_entitlement_put(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct rf_field_val v[GRANT_FIELDS];
    struct grant_state s = {0};
    if (!rf_req_if_match(req, &s.req.if_match_version, &p) ||
        !rf_req_fields(req, true, grant_fields, GRANT_FIELDS, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    s.req.user_id = rf_path_param(req, "user_id");
    s.req.key = rf_path_param(req, "key");
    s.req.source = v[F_SOURCE].present ? v[F_SOURCE].str : NULL;
    s.req.expires_at_ms = v[F_EXPIRES_AT].present ? v[F_EXPIRES_AT].num : 0;
    s.req.metadata_json = v[F_METADATA].json_text;
    const struct rf_http_op op = {.call = grant_call, .render = grant_render, .state = &s,
                                  .result = &s.res, .clear = grant_clear, .idempotent = true};
    rf_http_run(req, &op, out);
    rf_fields_clear(v, GRANT_FIELDS);
}

/* ---- DELETE: revoke, GET: read -------------------------------------------- */

struct ent_state {
    int64_t if_match_version;
    struct rf_entitlement ent;
};

static rf_err revoke_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    struct ent_state *s = state;
    return rf_entitlement_revoke(req->ctx->db, rf_path_param(req, "user_id"),
                                 rf_path_param(req, "key"), s->if_match_version, &s->ent);
}

static rf_err revoke_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    const struct rf_entitlement *e = result;
    rf_reply_empty(out, 204);
    rf_reply_header(out, "ETag", "\"%lld\"", (long long)e->version);
    return RF_OK;
}

static void ent_clear(void *state) { rf_entitlement_clear(&((struct ent_state *)state)->ent); }

void h_entitlement_delete(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct ent_state s = {0};
    if (!rf_req_if_match(req, &s.if_match_version, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    const struct rf_http_op op = {.call = revoke_call, .render = revoke_render, .state = &s,
                                  .result = &s.ent, .clear = ent_clear};
    rf_http_run(req, &op, out);
}

static rf_err get_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    struct ent_state *s = state;
    return rf_entitlement_get(req->ctx->db, rf_path_param(req, "user_id"),
                              rf_path_param(req, "key"), &s->ent);
}

static rf_err get_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    return render_ent(result, 200, out);
}

void h_entitlement_get(struct rf_http_req *req, struct rf_reply *out) {
    struct ent_state s = {0};
    const struct rf_http_op op = {.call = get_call, .render = get_render, .state = &s,
                                  .result = &s.ent, .clear = ent_clear};
    rf_http_run(req, &op, out);
}

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
