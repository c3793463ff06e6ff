/*
 * h_customers.c - provider-customer bindings (seed 002):
 * PUT/GET/DELETE /v1/users/{user_id}/customers/{provider} and the reverse
 * lookup GET /v1/customers/{provider}/{customer_id}.
 *
 * A binding is one-to-one per provider in both directions. PUT answers 201
 * when it bound now, 200 when exactly this binding exists, and 409
 * customer_binding_conflict otherwise, with the binding in the way named in
 * the problem body ("existing_customer_id": the user's customer,
 * "existing_user_id": the customer's user). The library decides all three
 * in one transaction, so a success never names another customer.
 *
 * PUT and DELETE are idempotent by nature and take no Idempotency-Key.
 * The renderer here is the only place a binding becomes JSON.
 */
#include "base/limits.h"
#include "http/handlers.h"
#include "http/request.h"
#include "http/respond.h"

/* ---- Rendering ----------------------------------------------------------- */

static json_t *binding_json(const struct rf_binding *b) {
    return json_pack("{s:s, s:s, s:s, s:o, s:I}", "provider", b->provider, "user_id", b->user_id,
                     "customer_id", b->customer_id, "created_at", rf_json_time(b->created_at_ms),
                     "version", (json_int_t)b->version);
}

/* status 200 or 201 (with Location), binding body, ETag. */
static rf_err render_binding(const struct rf_binding *b, int status, struct rf_reply *out) {
    return rf_reply_entity(out, status, binding_json(b), b->version, "/v1/users/%s/customers/%s",
                           b->user_id, b->provider);
}

/* ---- PUT: bind ------------------------------------------------------------- */

static const struct rf_field_spec bind_fields[] = {
    {"customer_id", RF_FIELD_ID, true, RF_ID_CHARS_MAX, 0, 0},
};

struct bind_state {
    const char *customer_id;
    struct rf_bind_res res;
};

static rf_err bind_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    struct bind_state *s = state;
    return rf_customer_bind(req->ctx->db, rf_path_param(req, "user_id"),
                            rf_path_param(req, "provider"), s->customer_id, &s->res);
}

static rf_err bind_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    const struct rf_bind_res *res = result;
    return render_binding(&res->binding, res->created ? 201 : 200, out);
}

/* 409 customer_binding_conflict names what is in the way: the customer the
 * user is bound to, and/or the user the customer is bound to. */
static json_t *bind_problem_extra(void *state, rf_err err) {
    const struct bind_state *s = state;
    if (err != RF_ERR_BINDING_CONFLICT) return NULL;
    const char *cus = s->res.existing_customer_id, *user = s->res.existing_user_id;
    struct rf_problem p;
    rf_problem_set(&p, RF_ERR_BINDING_CONFLICT, "%s%s%s%s%s",
                   cus[0] ? "the user is bound to customer " : "", cus,
                   cus[0] && user[0] ? "; " : "", user[0] ? "the customer is bound to user " : "",
                   user);
    json_t *j = json_pack("{s:s}", "detail", p.detail);
    if (j && cus[0]) json_object_set_new(j, "existing_customer_id", json_string(cus));
    if (j && user[0]) json_object_set_new(j, "existing_user_id", json_string(user));
    return j;
}

void h_customer_bind(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct rf_field_val v[1];
    if (!rf_req_fields(req, false, bind_fields, 1, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    struct bind_state s = {.customer_id = v[0].str};
    const struct rf_http_op op = {.call = bind_call, .render = bind_render, .state = &s,
                                  .result = &s.res, .problem_extra = bind_problem_extra};
    rf_http_run(req, &op, out);
    rf_fields_clear(v, 1);
}

/* ---- GET (both directions), DELETE ------------------------------------------- */

struct binding_state {
    int64_t if_match_version;
    struct rf_binding binding;
};

static rf_err render_ok(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    return render_binding(result, 200, out);
}

static rf_err get_by_user_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    struct binding_state *s = state;
    return rf_customer_get_by_user(req->ctx->db, rf_path_param(req, "user_id"),
                                   rf_path_param(req, "provider"), &s->binding);
}

void h_customer_get(struct rf_http_req *req, struct rf_reply *out) {
    struct binding_state s = {0};
    const struct rf_http_op op = {.call = get_by_user_call, .render = render_ok, .state = &s,
                                  .result = &s.binding};
    rf_http_run(req, &op, out);
}

static rf_err get_by_customer_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    struct binding_state *s = state;
    return rf_customer_get_by_customer(req->ctx->db, rf_path_param(req, "provider"),
                                       rf_path_param(req, "customer_id"), &s->binding);
}

/* The table's 404 text speaks of the user; this lookup starts from the customer. */
static json_t *lookup_problem_extra(void *state, rf_err err) {
    (void)state;
    if (err != RF_ERR_BINDING_NOT_FOUND) return NULL;
    return json_pack("{s:s}", "detail", "No user is bound to this customer at this provider.");
}

void h_customer_lookup(struct rf_http_req *req, struct rf_reply *out) {
    struct binding_state s = {0};
    const struct rf_http_op op = {.call = get_by_customer_call, .render = render_ok,
                                  .state = &s, .result = &s.binding,
                                  .problem_extra = lookup_problem_extra};
    rf_http_run(req, &op, out);
}

static rf_err unbind_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    struct binding_state *s = state;
    return rf_customer_unbind(req->ctx->db, rf_path_param(req, "user_id"),
                              rf_path_param(req, "provider"), s->if_match_version, &s->binding);
}

/* 204: the binding is gone, so there is no version left to name. */
static rf_err unbind_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    (void)result;
    rf_reply_empty(out, 204);
    return RF_OK;
}

void h_customer_unbind(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    struct binding_state s = {0};
    if (!rf_req_if_match(req, &s.if_match_version, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    const struct rf_http_op op = {.call = unbind_call, .render = unbind_render, .state = &s,
                                  .result = &s.binding};
    rf_http_run(req, &op, out);
}
