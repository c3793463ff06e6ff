/*
 * h_approvals.c - /v1/approvals (seed 004): create (POST), read (GET /{id}),
 * list (GET ?status=), and the three transitions out of `pending`:
 * POST /{id}/approve, /{id}/reject and /{id}/cancel.
 *
 * An approval carries an action described as data ({"type": "transfer" |
 * "entitlement_grant" | "payout", ...the operation's fields}). This layer
 * checks only that "action" is a bounded JSON object and hands its compact
 * text to the library, which validates the action's own fields (unknown
 * members, types, amounts) and names what is wrong; that sentence becomes
 * the problem's detail. Approving executes the action in the same
 * transaction that marks the approval approved; when the action fails its
 * error is the answer (409 insufficient_funds, ...) and the approval stays
 * pending. Concurrent transitions get exactly one winner; the others
 * answer 409 invalid_state. Who asked is the API key, recorded on the
 * approval (requested_key_id): only that key, or an admin key, may cancel
 * it (403 not_requester); requested_by and cancelled_by are labels.
 *
 * Every POST accepts an Idempotency-Key (none requires one: creating moves
 * no money, and a transition happens at most once by its nature) and every
 * transition an If-Match. The renderer here is the only place an approval
 * becomes JSON.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"
#include "http/handlers.h"
#include "http/request.h"
#include "http/respond.h"

/* ---- Rendering ----------------------------------------------------------- */

/* A stored JSON text as a value: null when absent, NULL when unreadable. */
static json_t *stored_json(const char *text) {
    return text ? json_loads(text, 0, NULL) : json_null();
}

static json_t *approval_json(const struct rf_approval *a) {
    json_t *action = a->action_json ? stored_json(a->action_json) : NULL;
    json_t *meta = stored_json(a->metadata_json);
    json_t *result = stored_json(a->result_json);
    if (!action || !meta || !result) {
        json_decref(action);
        json_decref(meta);
        json_decref(result);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:o, s:s, s:s, s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
                     " s:o, s:o, s:o, s:o, s:o, s:I}",
                     "id", a->id, "status", a->status, "action", action, "action_type",
                     a->action_type, "requested_by", a->requested_by, "requested_key_id",
                     rf_json_str(a->requested_key),
                     "require_distinct_approver", a->require_distinct_approver, "metadata", meta,
                     "expires_at", rf_json_time(a->expires_at_ms), "approved_by",
                     rf_json_str(a->approved_by), "approved_at", rf_json_time(a->approved_at_ms),
                     "executed_at", rf_json_time(a->executed_at_ms), "result", result,
                     "rejected_by", rf_json_str(a->rejected_by), "rejected_at",
                     rf_json_time(a->rejected_at_ms), "rejection_reason",
                     rf_json_str(a->rejection_reason), "cancelled_at",
                     rf_json_time(a->cancelled_at_ms), "created_at",
                     rf_json_time(a->created_at_ms), "updated_at", rf_json_time(a->updated_at_ms),
                     "version", (json_int_t)a->version);
}

static json_t *approval_item(const void *items, int i) {
    return approval_json(&((const struct rf_approval *)items)[i]);
}

/* status 200 or 201 (with Location), approval body, ETag. */
static rf_err render_approval(const struct rf_approval *a, int status, struct rf_reply *out) {
    return rf_reply_entity(out, status, approval_json(a), a->version, "/v1/approvals/%s", a->id);
}

static rf_err render_created(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    return render_approval(result, 201, out);
}

static rf_err render_ok(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    return render_approval(result, 200, out);
}

/* Every state here starts with its approval (one clear()). */
static void approval_state_clear(void *state) { rf_approval_clear(state); }

/* ---- POST /v1/approvals --------------------------------------------------------- */

enum { F_ACTION, F_REQUESTED_BY, F_EXPIRES_AT, F_DISTINCT, F_METADATA, CREATE_FIELDS };
static const struct rf_field_spec create_fields[CREATE_FIELDS] = {
    /* The action's own fields are the library's to check; here only its
     * shape and size (compact JSON, bounded like metadata). */
    [F_ACTION] = {"action", RF_FIELD_OBJECT, true, RF_METADATA_BYTES_MAX, 0, 0},
    [F_REQUESTED_BY] = {"requested_by", RF_FIELD_ID, true, RF_ID_CHARS_MAX, 0, 0},
    [F_EXPIRES_AT] = {"expires_at", RF_FIELD_TIME, false, 0, 0, 0},
    [F_DISTINCT] = {"require_distinct_approver", RF_FIELD_BOOL, false, 0, 0, 0},
    [F_METADATA] = {"metadata", RF_FIELD_OBJECT, false, RF_METADATA_BYTES_MAX, 0, 0},
};

struct create_state {
    struct rf_approval approval;
    struct rf_approval_req req;
    char detail[RF_PROBLEM_DETAIL_BYTES]; /* the library's sentence on a bad action */
};

static rf_err create_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    struct create_state *s = state;
    return rf_approval_create(req->ctx->db, &s->req, &s->approval, idem, s->detail,
                              sizeof s->detail);
}

/* A refused action: the library's sentence ("action: unknown field 'x'")
 * replaces the generic detail, made printable ASCII as every detail is. */
static json_t *create_problem_extra(void *state, rf_err err) {
    const struct create_state *s = state;
    (void)err;
    if (!s->detail[0]) return NULL;
    struct rf_problem p;
    rf_problem_set(&p, RF_ERR_INVALID, "%s", s->detail);
    return json_pack("{s:s}", "detail", p.detail);
}

void h_approval_create(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct rf_field_val v[CREATE_FIELDS];
    struct create_state s = {0};
    if (!rf_req_fields(req, false, create_fields, CREATE_FIELDS, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    s.req.action_json = v[F_ACTION].json_text;
    s.req.requested_by = v[F_REQUESTED_BY].str;
    s.req.requested_key = req->key.id; /* who acted: the API key, not the label */
    s.req.expires_at_ms = v[F_EXPIRES_AT].present ? v[F_EXPIRES_AT].num : 0;
    s.req.require_distinct_approver = !v[F_DISTINCT].present || v[F_DISTINCT].flag;
    s.req.metadata_json = v[F_METADATA].json_text;
    const struct rf_http_op op = {.call = create_call, .render = render_created, .state = &s,
                                  .result = &s.approval, .clear = approval_state_clear,
                                  .idempotent = true, .problem_extra = create_problem_extra};
    rf_http_run(req, &op, out);
    rf_fields_clear(v, CREATE_FIELDS);
}

/* ---- POST /v1/approvals/{id}/approve, /reject, /cancel ------------------------------- */

struct transition_state {
    struct rf_approval approval;
    enum { T_APPROVE, T_REJECT, T_CANCEL } kind;
    const char *who;    /* approved_by, rejected_by or cancelled_by */
    const char *reason; /* reject */
    int64_t if_match_version;
};

static rf_err transition_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    struct transition_state *s = state;
    rf *db = req->ctx->db;
    const char *id = rf_path_param(req, "id");
    switch (s->kind) {
    case T_APPROVE:
        return rf_approval_approve(db, id, s->who, s->if_match_version, &s->approval, idem);
    case T_REJECT:
        return rf_approval_reject(db, id, s->who, s->reason, s->if_match_version, &s->approval,
                                  idem);
    case T_CANCEL:
        /* An admin key may cancel any approval; another key only its own. */
        return rf_approval_cancel(db, id, s->who,
                                  req->key.role == RF_ROLE_ADMIN ? NULL : req->key.id,
                                  s->if_match_version, &s->approval, idem);
    }
    return RF_ERR_INTERNAL;
}

_Static_assert(offsetof(struct create_state, approval) == 0 &&
                   offsetof(struct transition_state, approval) == 0,
               "approval_state_clear() needs the approval first");

/* Parses If-Match and a body of one id field (`who`) plus, for a rejection,
 * an optional `reason`, then runs the transition. A cancel may have no body
 * (its one field is optional). */
static void transition_run(struct rf_http_req *req, struct transition_state *s,
                           const struct rf_field_spec *specs, size_t n, struct rf_reply *out) {
    struct rf_problem p;
    struct rf_field_val v[2];
    RF_ASSERT(n >= 1 && n <= 2);
    if (!rf_req_if_match(req, &s->if_match_version, &p) ||
        !rf_req_fields(req, s->kind == T_CANCEL, specs, n, v, &p)) { /* cancel: all optional */
        rf_reply_problem(out, &p);
        return;
    }
    s->who = v[0].present ? v[0].str : NULL;
    if (n == 2 && v[1].present) s->reason = v[1].str;
    const struct rf_http_op op = {.call = transition_call, .render = render_ok, .state = s,
                                  .result = &s->approval, .clear = approval_state_clear,
                                  .idempotent = true};
    rf_http_run(req, &op, out);
    rf_fields_clear(v, n);
}

void h_approval_approve(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field_spec spec[] = {
        {"approved_by", RF_FIELD_ID, true, RF_ID_CHARS_MAX, 0, 0}};
    struct transition_state s = {.kind = T_APPROVE};
    transition_run(req, &s, spec, 1, out);
}

void h_approval_reject(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field_spec spec[] = {
        {"rejected_by", RF_FIELD_ID, true, RF_ID_CHARS_MAX, 0, 0},
        {"reason", RF_FIELD_STRING, false, RF_REASON_CHARS_MAX, 1, 0}};
    struct transition_state s = {.kind = T_REJECT};
    transition_run(req, &s, spec, 2, out);
}

void h_approval_cancel(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field_spec spec[] = {
        {"cancelled_by", RF_FIELD_ID, false, RF_ID_CHARS_MAX, 0, 0}};
    struct transition_state s = {.kind = T_CANCEL};
    transition_run(req, &s, spec, 1, out);
}

/* ---- GET /v1/approvals/{id} ------------------------------------------------------- */

static rf_err get_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    return rf_approval_get(req->ctx->db, rf_path_param(req, "id"), state);
}

void h_approval_get(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_approval approval = {0};
    const struct rf_http_op op = {.call = get_call, .render = render_ok, .state = &approval,
                                  .result = &approval, .clear = approval_state_clear};
    rf_http_run(req, &op, out);
}

/* ---- GET /v1/approvals ------------------------------------------------------------- */

static const char *const status_names[] = {"all",       "pending", "approved",
                                           "rejected",  "cancelled", "expired"};
#define STATUS_NAMES (sizeof status_names / sizeof status_names[0])

struct list_state {
    struct rf_page page;
    const char *status; /* "" for all */
    struct rf_approval_page res;
};

static rf_err list_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    struct list_state *s = state;
    return rf_approval_list(req->ctx->db, s->status, s->page.after, s->page.limit, &s->res);
}

static rf_err list_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    const struct rf_approval_page *pg = result;
    return rf_reply_page(out, pg->items, pg->n, approval_item, pg->next);
}

static void list_clear(void *state) {
    rf_approval_page_clear(&((struct list_state *)state)->res);
}

void h_approval_list(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct list_state s = {0};
    size_t status;
    if (!rf_req_page(req, rf_id_valid, &s.page, &p) || /* the cursor is an approval id */
        !rf_req_choice(req, "status", status_names, STATUS_NAMES, 0, &status, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    s.status = status == 0 ? "" : status_names[status];
    const struct rf_http_op op = {.call = list_call, .render = list_render, .state = &s,
                                  .result = &s.res, .clear = list_clear};
    rf_http_run(req, &op, out);
}
