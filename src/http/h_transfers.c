/*
 * h_transfers.c - /v1/transfers: create (POST), read (GET /{id}), and the
 * two ways a hold resolves (POST /{id}/post, POST /{id}/void); plus the
 * credit shorthand POST /v1/accounts/{id}/credits, which is a transfer from
 * the currency's funding account and answers a transfer.
 *
 * Every request that moves money needs an Idempotency-Key (op.idem_required:
 * 400 idempotency_key_required without one), so a client that retries after
 * a lost response gets the first answer instead of a second transfer.
 * amount_minor is a JSON integer from 1 to 2^63-1: 1.5, "10", 0, negatives
 * and numbers past int64 are 400 invalid_field before the library is called.
 *
 * The renderer here is the only place a transfer becomes JSON.
 * posted_amount_minor is null until the transfer is posted (a void posts
 * nothing; a partial post shows the part that moved).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "http/handlers.h"
#include "http/request.h"
#include "http/respond.h"

/* ---- Rendering ----------------------------------------------------------- */

static json_t *transfer_json(const struct rf_transfer *t) {
    json_t *meta = json_null();
    if (t->metadata_json) {
        meta = json_loads(t->metadata_json, 0, NULL);
        if (!meta) return NULL;
    }
    bool posted = strcmp(t->status, "posted") == 0;
    json_t *posted_amount = posted ? json_integer((json_int_t)t->posted_amount_minor)
                                   : json_null();
    return json_pack("{s:s, s:s, s:s, s:I, s:o, s:s, s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:I}",
                     "id", t->id, "debit_account", t->debit_account, "credit_account",
                     t->credit_account, "amount_minor", (json_int_t)t->amount_minor,
                     "posted_amount_minor", posted_amount, "currency", t->currency, "status",
                     t->status, "pending", t->pending, "reference", rf_json_str(t->reference),
                     "metadata", meta, "expires_at", rf_json_time(t->expires_at_ms),
                     "created_at", rf_json_time(t->created_at_ms), "resolved_at",
                     rf_json_time(t->resolved_at_ms), "version", (json_int_t)t->version);
}

/* status 200 or 201 (with Location), transfer body, ETag. */
static rf_err render_transfer(const struct rf_transfer *t, int status, struct rf_reply *out) {
    return rf_reply_entity(out, status, transfer_json(t), t->version, "/v1/transfers/%s", t->id);
}

static rf_err render_created(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    return render_transfer(&((const struct rf_transfer_res *)result)->transfer, 201, out);
}

static rf_err render_ok(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    return render_transfer(&((const struct rf_transfer_res *)result)->transfer, 200, out);
}

#define AMOUNT_SPEC(required) {"amount_minor", RF_FIELD_INT, (required), 0, 1, INT64_MAX}

/* ---- POST /v1/transfers ---------------------------------------------------- */

enum {
    F_DEBIT,
    F_CREDIT,
    F_AMOUNT,
    F_CURRENCY,
    F_PENDING,
    F_REFERENCE,
    F_METADATA,
    F_EXPIRES_AT,
    CREATE_FIELDS
};
static const struct rf_field_spec create_fields[CREATE_FIELDS] = {
    [F_DEBIT] = {"debit_account", RF_FIELD_ID, true, RF_ID_CHARS_MAX, 0, 0},
    [F_CREDIT] = {"credit_account", RF_FIELD_ID, true, RF_ID_CHARS_MAX, 0, 0},
    [F_AMOUNT] = AMOUNT_SPEC(true),
    [F_CURRENCY] = {"currency", RF_FIELD_CURRENCY, true, 3, 0, 0},
    [F_PENDING] = {"pending", RF_FIELD_BOOL, false, 0, 0, 0},
    [F_REFERENCE] = {"reference", RF_FIELD_ID, false, RF_ID_CHARS_MAX, 0, 0},
    [F_METADATA] = {"metadata", RF_FIELD_OBJECT, false, RF_METADATA_BYTES_MAX, 0, 0},
    [F_EXPIRES_AT] = {"expires_at", RF_FIELD_TIME, false, 0, 0, 0},
};

/* Every state here starts with its struct rf_transfer_res (one clear()). */
struct create_state {
    struct rf_transfer_res res;
    struct rf_transfer_req req;
};

static rf_err create_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    struct create_state *s = state;
    return rf_transfer_create(req->ctx->db, &s->req, &s->res, idem);
}

static void transfer_res_clear(void *state) {
    rf_transfer_clear(&((struct rf_transfer_res *)state)->transfer);
}

/* 409 duplicate_reference names the transfer that has the reference;
 * 400 reserved_id names the side that is an account only its own flow moves
 * (payouts:*). */
static json_t *create_problem_extra(void *state, rf_err err) {
    const struct create_state *s = state;
    if (err == RF_ERR_RESERVED_ID)
        return json_pack("{s:s}", "param", rf_account_id_flow_owned(s->req.debit_account)
                                               ? "debit_account" : "credit_account");
    if (err != RF_ERR_DUPLICATE_REFERENCE || !s->res.existing_id[0]) return NULL;
    return json_pack("{s:s}", "existing_transfer_id", s->res.existing_id);
}

void h_transfer_create(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct rf_field_val v[CREATE_FIELDS];
    struct create_state s = {0};
    if (!rf_req_fields(req, false, create_fields, CREATE_FIELDS, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    bool pending = v[F_PENDING].present && v[F_PENDING].flag;
    if (v[F_EXPIRES_AT].present && !pending) {
        rf_fields_clear(v, CREATE_FIELDS);
        rf_problem_set(&p, RF_ERR_INVALID_FIELD,
                       "field 'expires_at' is for pending transfers only (\"pending\": true)");
        rf_reply_problem(out, &p);
        return;
    }
    s.req.debit_account = v[F_DEBIT].str;
    s.req.credit_account = v[F_CREDIT].str;
    s.req.amount_minor = v[F_AMOUNT].num;
    s.req.currency = v[F_CURRENCY].str;
    s.req.pending = pending;
    s.req.reference = v[F_REFERENCE].present ? v[F_REFERENCE].str : NULL;
    s.req.metadata_json = v[F_METADATA].json_text;
    s.req.expires_at_ms = v[F_EXPIRES_AT].present ? v[F_EXPIRES_AT].num : 0;
    const struct rf_http_op op = {.call = create_call, .render = render_created, .state = &s,
                                  .result = &s.res, .clear = transfer_res_clear,
                                  .idempotent = true, .idem_required = true,
                                  .problem_extra = create_problem_extra};
    rf_http_run(req, &op, out);
    rf_fields_clear(v, CREATE_FIELDS);
}

/* ---- GET /v1/transfers/{id} -------------------------------------------------- */

struct get_state {
    struct rf_transfer_res res; /* only .transfer is used */
};

static rf_err get_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    struct get_state *s = state;
    return rf_transfer_get(req->ctx->db, rf_path_param(req, "id"), &s->res.transfer);
}

void h_transfer_get(struct rf_http_req *req, struct rf_reply *out) {
    struct get_state s = {0};
    const struct rf_http_op op = {.call = get_call, .render = render_ok, .state = &s,
                                  .result = &s.res, .clear = transfer_res_clear};
    rf_http_run(req, &op, out);
}

/* ---- POST /v1/transfers/{id}/post and /void ------------------------------------ */

struct resolve_state {
    struct rf_transfer_res res;
    bool post;
    int64_t amount; /* post: 0 posts the whole hold */
};

static rf_err resolve_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    struct resolve_state *s = state;
    const char *id = rf_path_param(req, "id");
    return s->post ? rf_transfer_post(req->ctx->db, id, s->amount, &s->res, idem)
                   : rf_transfer_void(req->ctx->db, id, &s->res, idem);
}

/* The library's one invalid_request here: more than the hold. */
static json_t *resolve_problem_extra(void *state, rf_err err) {
    const struct resolve_state *s = state;
    if (err != RF_ERR_INVALID || !s->post || !s->amount) return NULL;
    return json_pack("{s:s}", "detail", "amount_minor is more than the pending transfer holds");
}

static void resolve_run(struct rf_http_req *req, struct resolve_state *s, struct rf_reply *out) {
    const struct rf_http_op op = {.call = resolve_call, .render = render_ok, .state = s,
                                  .result = &s->res, .clear = transfer_res_clear,
                                  .idempotent = true, .idem_required = true,
                                  .problem_extra = resolve_problem_extra};
    rf_http_run(req, &op, out);
}

void h_transfer_post(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field_spec spec[] = {AMOUNT_SPEC(false)};
    struct rf_problem p;
    struct rf_field_val v[1];
    if (!rf_req_fields(req, true, spec, 1, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    struct resolve_state s = {.post = true, .amount = v[0].present ? v[0].num : 0};
    resolve_run(req, &s, out);
    rf_fields_clear(v, 1);
}

void h_transfer_void(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    if (!rf_req_fields(req, true, NULL, 0, NULL, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    struct resolve_state s = {.post = false};
    resolve_run(req, &s, out);
}

/* ---- POST /v1/accounts/{id}/credits ------------------------------------------- */

enum { C_AMOUNT, C_REASON, CREDIT_FIELDS };
static const struct rf_field_spec credit_fields[CREDIT_FIELDS] = {
    [C_AMOUNT] = AMOUNT_SPEC(true),
    [C_REASON] = {"reason", RF_FIELD_STRING, false, RF_REASON_CHARS_MAX, 0, 0},
};

struct credit_state {
    struct rf_transfer_res res;
    int64_t amount;
    const char *reason;
};

static rf_err credit_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    struct credit_state *s = state;
    return rf_credit_apply(req->ctx->db, rf_path_param(req, "id"), s->amount, s->reason, &s->res,
                           idem);
}

_Static_assert(offsetof(struct create_state, res) == 0 && offsetof(struct get_state, res) == 0 &&
                   offsetof(struct resolve_state, res) == 0 &&
                   offsetof(struct credit_state, res) == 0,
               "transfer_res_clear() needs res first");

/* 400 reserved_id: the path's account is a system account. */
static json_t *credit_problem_extra(void *state, rf_err err) {
    (void)state;
    return err == RF_ERR_RESERVED_ID ? json_pack("{s:s}", "param", "id") : NULL;
}

void h_account_credit(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct rf_field_val v[CREDIT_FIELDS];
    if (!rf_req_fields(req, false, credit_fields, CREDIT_FIELDS, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    struct credit_state s = {.amount = v[C_AMOUNT].num,
                             .reason = v[C_REASON].present ? v[C_REASON].str : NULL};
    const struct rf_http_op op = {.call = credit_call, .render = render_created, .state = &s,
                                  .result = &s.res, .clear = transfer_res_clear,
                                  .idempotent = true, .idem_required = true,
                                  .problem_extra = credit_problem_extra};
    rf_http_run(req, &op, out);
    rf_fields_clear(v, CREDIT_FIELDS);
}
