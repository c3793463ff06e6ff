/*
 * h_accounts.c - /v1/accounts: create (POST), read (GET /{id}) and history
 * (GET /{id}/entries). Balances are in minor units; `available` is posted
 * minus pending debits (what a debit may take). The credit shorthand
 * POST /v1/accounts/{id}/credits makes a transfer, so it lives with the
 * transfer renderer in h_transfers.c.
 *
 * The renderers here are the only place an account or an entry becomes
 * JSON, so a create, its Idempotency-Key replay and a read are one shape.
 */
#include <stdlib.h>
#include <string.h>

#include "base/ids.h"
#include "base/limits.h"
#include "http/handlers.h"
#include "http/request.h"
#include "http/respond.h"


/* ---- Rendering ----------------------------------------------------------- */

static json_t *account_json(const struct rf_account *a) {
    json_t *meta = json_null();
    if (a->metadata_json) {
        meta = json_loads(a->metadata_json, 0, NULL);
        if (!meta) return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "id", a->id,
                     "currency", a->currency, "kind", a->kind, "allow_negative",
                     a->allow_negative, "metadata", meta, "posted", (json_int_t)a->posted,
                     "pending_debits", (json_int_t)a->pending_debits, "pending_credits",
                     (json_int_t)a->pending_credits, "available", (json_int_t)a->available,
                     "version", (json_int_t)a->version, "created_at",
                     rf_json_time(a->created_at_ms), "updated_at",
                     rf_json_time(a->updated_at_ms));
}

/* status 200 or 201 (with Location), account body, ETag. */
static rf_err render_account(const struct rf_account *a, int status, struct rf_reply *out) {
    return rf_reply_entity(out, status, account_json(a), a->version, "/v1/accounts/%s", a->id);
}

static json_t *entry_item(const void *items, int i) {
    const struct rf_entry *e = &((const struct rf_entry *)items)[i];
    return json_pack("{s:I, s:s, s:s, s:I, s:I, s:o}", "seq", (json_int_t)e->seq, "transfer_id",
                     e->transfer_id, "side", e->side, "amount_minor", (json_int_t)e->amount_minor,
                     "balance_after", (json_int_t)e->balance_after, "created_at",
                     rf_json_time(e->created_at_ms));
}

/* ---- POST /v1/accounts --------------------------------------------------- */

enum { F_ID, F_CURRENCY, F_KIND, F_ALLOW_NEGATIVE, F_METADATA, CREATE_FIELDS };
static const struct rf_field_spec create_fields[CREATE_FIELDS] = {
    [F_ID] = {"id", RF_FIELD_ID, false, RF_ID_CHARS_MAX, 0, 0},
    [F_CURRENCY] = {"currency", RF_FIELD_CURRENCY, true, 3, 0, 0},
    [F_KIND] = {"kind", RF_FIELD_STRING, false, RF_ID_CHARS_MAX, 0, 0}, /* default user */
    [F_ALLOW_NEGATIVE] = {"allow_negative", RF_FIELD_BOOL, false, 0, 0, 0},
    [F_METADATA] = {"metadata", RF_FIELD_OBJECT, false, RF_METADATA_BYTES_MAX, 0, 0},
};

struct create_state {
    struct rf_account_req req;
    struct rf_account_res res;
};

static rf_err create_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    struct create_state *s = state;
    return rf_account_create(req->ctx->db, &s->req, &s->res, idem);
}

static rf_err create_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    const struct rf_account_res *res = result;
    return render_account(&res->account, res->created ? 201 : 200, out);
}

/* 400 reserved_id: the id is in a namespace racefree reserves (funding:*,
 * payouts:*), refused by the library. */
static json_t *create_problem_extra(void *state, rf_err err) {
    (void)state;
    return err == RF_ERR_RESERVED_ID ? json_pack("{s:s}", "param", "id") : NULL;
}

static void create_clear(void *state) {
    rf_account_clear(&((struct create_state *)state)->res.account);
}

void h_account_create(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct rf_field_val v[CREATE_FIELDS];
    struct create_state s = {0};
    if (!rf_req_fields(req, false, create_fields, CREATE_FIELDS, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    const char *kind = v[F_KIND].present ? v[F_KIND].str : "user";
    if (strcmp(kind, "user") != 0 && strcmp(kind, "system") != 0) {
        rf_fields_clear(v, CREATE_FIELDS);
        rf_problem_set(&p, RF_ERR_INVALID_FIELD, "field 'kind' must be user or system");
        rf_reply_problem(out, &p);
        return;
    }
    s.req.id = v[F_ID].present ? v[F_ID].str : NULL;
    s.req.currency = v[F_CURRENCY].str;
    s.req.kind = kind;
    s.req.allow_negative = v[F_ALLOW_NEGATIVE].present && v[F_ALLOW_NEGATIVE].flag;
    s.req.metadata_json = v[F_METADATA].json_text;
    const struct rf_http_op op = {.call = create_call, .render = create_render, .state = &s,
                                  .result = &s.res, .clear = create_clear, .idempotent = true,
                                  .problem_extra = create_problem_extra};
    rf_http_run(req, &op, out);
    rf_fields_clear(v, CREATE_FIELDS);
}

/* ---- GET /v1/accounts/{id} ------------------------------------------------ */

struct get_state {
    struct rf_account account;
};

static rf_err get_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    struct get_state *s = state;
    return rf_account_get(req->ctx->db, rf_path_param(req, "id"), &s->account);
}

static rf_err get_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    return render_account(result, 200, out);
}

static void get_clear(void *state) { rf_account_clear(&((struct get_state *)state)->account); }

void h_account_get(struct rf_http_req *req, struct rf_reply *out) {
    struct get_state s = {0};
    const struct rf_http_op op = {.call = get_call, .render = get_render, .state = &s,
                                  .result = &s.account, .clear = get_clear};
    rf_http_run(req, &op, out);
}

/* ---- GET /v1/accounts/{id}/entries ------------------------------------------ */

struct entries_state {
    struct rf_page page;
    struct rf_entry_page res;
};

static rf_err entries_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    struct entries_state *s = state;
    return rf_account_entries(req->ctx->db, rf_path_param(req, "id"), s->page.after,
                              s->page.limit, &s->res);
}

static rf_err entries_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    const struct rf_entry_page *pg = result;
    return rf_reply_page(out, pg->items, pg->n, entry_item, pg->next);
}

static void entries_clear(void *state) {
    rf_entry_page_clear(&((struct entries_state *)state)->res);
}

void h_account_entries(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct entries_state s = {0};
    if (!rf_req_page(req, rf_id_valid, &s.page, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    const struct rf_http_op op = {.call = entries_call, .render = entries_render, .state = &s,
                                  .result = &s.res, .clear = entries_clear};
    rf_http_run(req, &op, out);
}
