/*
 * h_keys.c - /v1/keys (admin only): create (the secret is in the 201 body
 * and nowhere else, ever), list (no secrets), revoke.
 *
 * rf_key_create fills two outputs (the key and its secret), and the library
 * hands a renderer only one result pointer, so the create renderer reads
 * both from its render ctx (this handler's state, which the library has
 * filled before it renders) and ignores `result`.
 */
#include <string.h>

#include <sodium.h>

#include "base/ids.h"
#include "base/limits.h"
#include "http/handlers.h"
#include "http/request.h"
#include "http/respond.h"

static json_t *key_json(const struct rf_key *k) {
    return json_pack("{s:s, s:o, s:s, s:o, s:o}", "id", k->id, "name", rf_json_str(k->name),
                     "role", rf_role_name(k->role), "created_at", rf_json_time(k->created_at_ms),
                     "revoked_at", rf_json_time(k->revoked_at_ms));
}

static json_t *key_item(const void *items, int i) {
    return key_json(&((const struct rf_key *)items)[i]);
}

/* ---- POST /v1/keys ---------------------------------------------------------- */

enum { F_ROLE, F_NAME, CREATE_FIELDS };
static const struct rf_field_spec create_fields[CREATE_FIELDS] = {
    [F_ROLE] = {"role", RF_FIELD_STRING, true, RF_ROLE_BYTES - 1, 0, 0},
    [F_NAME] = {"name", RF_FIELD_ID, false, RF_ID_CHARS_MAX, 0, 0},
};

struct create_state {
    enum rf_role role;
    const char *name;
    struct rf_key key;
    char secret[RF_KEY_SECRET_BYTES];
};

static rf_err create_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    struct create_state *s = state;
    return rf_key_create(req->ctx->db, s->role, s->name, &s->key, s->secret, idem);
}

static rf_err create_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)result;
    const struct create_state *s = ctx;
    json_t *j = key_json(&s->key);
    if (!j || json_object_set_new(j, "key", json_string(s->secret)) != 0) {
        json_decref(j);
        return RF_ERR_NOMEM;
    }
    rf_reply_json(out, 201, j);
    rf_reply_header(out, "Cache-Control", "no-store");
    return RF_OK;
}

static void create_clear(void *state) {
    struct create_state *s = state;
    sodium_memzero(s->secret, sizeof s->secret);
}

void h_key_create(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct rf_field_val v[CREATE_FIELDS];
    struct create_state s = {0};
    if (!rf_req_fields(req, false, create_fields, CREATE_FIELDS, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    if (!rf_role_parse(v[F_ROLE].str, &s.role)) {
        rf_fields_clear(v, CREATE_FIELDS);
        rf_problem_set(&p, RF_ERR_INVALID_FIELD,
                       "field 'role' must be one of admin|service|worker|readonly");
        rf_reply_problem(out, &p);
        return;
    }
    s.name = v[F_NAME].present ? v[F_NAME].str : NULL;
    const struct rf_http_op op = {.call = create_call, .render = create_render, .state = &s,
                                  .result = &s.key, .clear = create_clear, .idempotent = true,
                                  .seal = true};
    rf_http_run(req, &op, out);
    rf_fields_clear(v, CREATE_FIELDS);
}

/* ---- GET /v1/keys ----------------------------------------------------------- */

struct list_state {
    struct rf_page page;
    struct rf_key_page res;
};

static rf_err list_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    struct list_state *s = state;
    return rf_key_list(req->ctx->db, s->page.after, s->page.limit, &s->res);
}

static rf_err list_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    const struct rf_key_page *pg = result;
    return rf_reply_page(out, pg->items, pg->n, key_item, pg->next);
}

static void list_clear(void *state) { rf_key_page_clear(&((struct list_state *)state)->res); }

void h_key_list(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct list_state s = {0};
    if (!rf_req_page(req, rf_id_valid, &s.page, &p)) { /* the cursor is a key id */
        rf_reply_problem(out, &p);
        return;
    }
    const struct rf_http_op op = {.call = list_call, .render = list_render, .state = &s,
                                  .result = &s.res, .clear = list_clear};
    rf_http_run(req, &op, out);
}

/* ---- DELETE /v1/keys/{id} ---------------------------------------------------- */

static rf_err revoke_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    (void)state;
    return rf_key_revoke(req->ctx->db, rf_path_param(req, "id"));
}

static rf_err revoke_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    (void)result;
    rf_reply_empty(out, 204);
    return RF_OK;
}

void h_key_revoke(struct rf_http_req *req, struct rf_reply *out) {
    const struct rf_http_op op = {.call = revoke_call, .render = revoke_render};
    rf_http_run(req, &op, out);
}
