/*
 * h_payouts.c - /v1/payouts (seed 000, part 2): create (POST; places the
 * hold), record an attempt (POST /{id}/attempts), record the outcome
 * (POST /{id}/succeeded, POST /{id}/failed), read (GET /{id}) and list
 * (GET ?status=).
 *
 * Creating a payout moves money into a hold, so it needs an Idempotency-Key
 * (op.idem_required). Attempts and outcomes accept one: an attempt is
 * counted once per call, and a worker that retries after a lost response
 * should send the same key to have it counted once. `destination` is a
 * nested object whose own fields are checked the same way (unknown members
 * rejected).
 *
 * The renderer here is the only place a payout becomes JSON.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ids.h"
#include "base/limits.h"
#include "http/handlers.h"
#include "http/request.h"
#include "http/respond.h"

/* ---- Rendering ----------------------------------------------------------- */

static json_t *payout_json(const struct rf_payout *p) {
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
                     "status", p->status, "hold_transfer_id", p->hold_transfer_id,
                     "provider_idempotency_key", p->provider_idempotency_key,
                     "provider_payout_id", rf_json_str(p->provider_payout_id), "attempt_count",
                     (json_int_t)p->attempt_count, "max_attempts", (json_int_t)p->max_attempts,
                     "last_error", rf_json_str(p->last_error), "metadata", meta, "created_at",
                     rf_json_time(p->created_at_ms), "updated_at",
                     rf_json_time(p->updated_at_ms), "version", (json_int_t)p->version);
}

static json_t *payout_item(const void *items, int i) {
    return payout_json(&((const struct rf_payout *)items)[i]);
}

/* status 200 or 201 (with Location), payout body, ETag. */
static rf_err render_payout(const struct rf_payout *p, int status, struct rf_reply *out) {
    return rf_reply_entity(out, status, payout_json(p), p->version, "/v1/payouts/%s", p->id);
}

static rf_err render_created(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    return render_payout(result, 201, out);
}

static rf_err render_ok(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    return render_payout(result, 200, out);
}

/* Every state here starts with its payout (one clear()). */
static void payout_state_clear(void *state) { rf_payout_clear(state); }

/* ---- POST /v1/payouts -------------------------------------------------------- */

enum { F_ACCOUNT, F_AMOUNT, F_CURRENCY, F_DESTINATION, F_METADATA, F_MAX_ATTEMPTS, CREATE_FIELDS };
static const struct rf_field_spec create_fields[CREATE_FIELDS] = {
    [F_ACCOUNT] = {"account", RF_FIELD_ID, true, RF_ID_CHARS_MAX, 0, 0},
    [F_AMOUNT] = {"amount_minor", RF_FIELD_INT, true, 0, 1, INT64_MAX},
    [F_CURRENCY] = {"currency", RF_FIELD_CURRENCY, true, 3, 0, 0},
    [F_DESTINATION] = {"destination", RF_FIELD_OBJECT, true, RF_METADATA_BYTES_MAX, 0, 0},
    [F_METADATA] = {"metadata", RF_FIELD_OBJECT, false, RF_METADATA_BYTES_MAX, 0, 0},
    [F_MAX_ATTEMPTS] = {"max_attempts", RF_FIELD_INT, false, 0, 1, RF_PAYOUT_MAX_ATTEMPTS_MAX},
};

enum { D_PROVIDER, D_REF, DEST_FIELDS };
static const struct rf_field_spec dest_fields[DEST_FIELDS] = {
    [D_PROVIDER] = {"provider", RF_FIELD_ID, true, RF_ID_CHARS_MAX, 0, 0},
    [D_REF] = {"ref", RF_FIELD_ID, true, RF_ID_CHARS_MAX, 0, 0},
};

struct create_state {
    struct rf_payout payout;
    struct rf_payout_req req;
};

static rf_err create_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    struct create_state *s = state;
    return rf_payout_create(req->ctx->db, &s->req, &s->payout, idem);
}

/* 400 reserved_id: a payout from a system account (funding:*, payouts:*). */
static json_t *create_problem_extra(void *state, rf_err err) {
    (void)state;
    return err == RF_ERR_RESERVED_ID ? json_pack("{s:s}", "param", "account") : NULL;
}

/* The nested destination object, with its field names qualified in the
 * problem detail ("destination.ref"). */
static bool dest_parse(const json_t *body, struct rf_field_val *v, struct rf_problem *p) {
    if (rf_fields_parse(json_object_get(body, "destination"), dest_fields, DEST_FIELDS, v, p))
        return true;
    char inner[RF_PROBLEM_DETAIL_BYTES];
    snprintf(inner, sizeof inner, "%s", p->detail);
    rf_problem_set(p, p->err, "in 'destination': %s", inner);
    return false;
}

void h_payout_create(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct rf_field_val v[CREATE_FIELDS], d[DEST_FIELDS];
    struct create_state s = {0};
    if (!rf_req_fields(req, false, create_fields, CREATE_FIELDS, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    if (!dest_parse(req->json, d, &p)) {
        rf_fields_clear(v, CREATE_FIELDS);
        rf_reply_problem(out, &p);
        return;
    }
    s.req.account = v[F_ACCOUNT].str;
    s.req.amount_minor = v[F_AMOUNT].num;
    s.req.currency = v[F_CURRENCY].str;
    s.req.provider = d[D_PROVIDER].str;
    s.req.destination_ref = d[D_REF].str;
    s.req.metadata_json = v[F_METADATA].json_text;
    s.req.max_attempts = v[F_MAX_ATTEMPTS].present ? (int)v[F_MAX_ATTEMPTS].num : 0;
    const struct rf_http_op op = {.call = create_call, .render = render_created, .state = &s,
                                  .result = &s.payout, .clear = payout_state_clear,
                                  .idempotent = true, .idem_required = true,
                                  .problem_extra = create_problem_extra};
    rf_http_run(req, &op, out);
    rf_fields_clear(d, DEST_FIELDS);
    rf_fields_clear(v, CREATE_FIELDS);
}

/* ---- POST /v1/payouts/{id}/attempts, /succeeded, /failed ------------------------ */

struct outcome_state {
    struct rf_payout payout;
    enum { OUT_ATTEMPT, OUT_SUCCEEDED, OUT_FAILED } kind;
    const char *text; /* provider_payout_id or reason */
    bool retryable;
};

static rf_err outcome_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    struct outcome_state *s = state;
    rf *db = req->ctx->db;
    const char *id = rf_path_param(req, "id");
    switch (s->kind) {
    case OUT_ATTEMPT: return rf_payout_attempt(db, id, &s->payout, idem);
    case OUT_SUCCEEDED: return rf_payout_succeeded(db, id, s->text, &s->payout, idem);
    case OUT_FAILED: return rf_payout_failed(db, id, s->text, s->retryable, &s->payout, idem);
    }
    return RF_ERR_INTERNAL;
}

static void outcome_run(struct rf_http_req *req, struct outcome_state *s, struct rf_reply *out) {
    const struct rf_http_op op = {.call = outcome_call, .render = render_ok, .state = s,
                                  .result = &s->payout, .clear = payout_state_clear,
                                  .idempotent = true};
    rf_http_run(req, &op, out);
}

_Static_assert(offsetof(struct create_state, payout) == 0 &&
                   offsetof(struct outcome_state, payout) == 0,
               "payout_state_clear() needs the payout first");

void h_payout_attempt(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    if (!rf_req_fields(req, true, NULL, 0, NULL, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    struct outcome_state s = {.kind = OUT_ATTEMPT};
    outcome_run(req, &s, out);
}

void h_payout_succeeded(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field_spec spec[] = {
        {"provider_payout_id", RF_FIELD_ID, true, RF_ID_CHARS_MAX, 0, 0}};
    struct rf_problem p;
    struct rf_field_val v[1];
    if (!rf_req_fields(req, false, spec, 1, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    struct outcome_state s = {.kind = OUT_SUCCEEDED, .text = v[0].str};
    outcome_run(req, &s, out);
    rf_fields_clear(v, 1);
}

void h_payout_failed(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field_spec spec[] = {
        {"reason", RF_FIELD_STRING, true, RF_REASON_CHARS_MAX, 1, 0},
        {"retryable", RF_FIELD_BOOL, true, 0, 0, 0}};
    struct rf_problem p;
    struct rf_field_val v[2];
    if (!rf_req_fields(req, false, spec, 2, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    struct outcome_state s = {.kind = OUT_FAILED, .text = v[0].str, .retryable = v[1].flag};
    outcome_run(req, &s, out);
    rf_fields_clear(v, 2);
}

/* ---- GET /v1/payouts/{id} ------------------------------------------------------ */

static rf_err get_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    return rf_payout_get(req->ctx->db, rf_path_param(req, "id"), state);
}

void h_payout_get(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_payout payout = {0};
    const struct rf_http_op op = {.call = get_call, .render = render_ok, .state = &payout,
                                  .result = &payout, .clear = payout_state_clear};
    rf_http_run(req, &op, out);
}

/* ---- GET /v1/payouts ------------------------------------------------------------ */

static const char *const status_names[] = {"all", "pending", "paid", "failed"};

struct list_state {
    struct rf_page page;
    const char *status; /* "" for all */
    struct rf_payout_page res;
};

static rf_err list_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    struct list_state *s = state;
    return rf_payout_list(req->ctx->db, s->status, s->page.after, s->page.limit, &s->res);
}

static rf_err list_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    const struct rf_payout_page *pg = result;
    return rf_reply_page(out, pg->items, pg->n, payout_item, pg->next);
}

static void list_clear(void *state) { rf_payout_page_clear(&((struct list_state *)state)->res); }

void h_payout_list(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct list_state s = {0};
    size_t status;
    if (!rf_req_page(req, rf_id_valid, &s.page, &p) || /* the cursor is a payout id */
        !rf_req_choice(req, "status", status_names, 4, 0, &status, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    s.status = status == 0 ? "" : status_names[status];
    const struct rf_http_op op = {.call = list_call, .render = list_render, .state = &s,
                                  .result = &s.res, .clear = list_clear};
    rf_http_run(req, &op, out);
}
