/*
 * h_op.c - the one handler of every route that names an operation: parse
 * the request into the operation's typed request struct with the
 * operation's own field spec (core/fields.h: path parameters, If-Match,
 * the caller, the list query, the JSON body), run it (rf_op_run, with the
 * Idempotency-Key record in the same transaction), and render the typed
 * result with the route's view, or the failure as problem+json.
 *
 * Rendering happens here, after the transaction, never on the writer
 * thread: on the request's worker (h_op: rf_op_run), or, for a write the
 * event loop submitted (h_op_submit: rf_op_submit), on the loop once the
 * executor answered (h_op_end). A replay decodes the stored
 * result into the same struct and comes through the same render, so it is
 * byte for byte the first answer, plus "Idempotent-Replayed: true".
 *
 * Order of checks (each refuses before the next is looked at): If-Match,
 * list query, body, Idempotency-Key.
 */
#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#include "base/assert.h"
#include "base/limits.h"
#include "core/api.h"
#include "http/handlers.h"
#include "http/request.h"
#include "http/respond.h"


/* The fields that do not come from the body. */
static bool fill_context(struct rf_http_req *req, const struct rf_route *route,
                         const struct rf_op_row *row, struct h_op_call *s, struct rf_problem *p) {
    for (size_t i = 0; i < row->n_fields; i++) {
        const struct rf_field *f = &row->fields[i];
        if (RF_FIELD_AT(f) == RF_AT_PATH) *rf_field_str(s->req, f) = rf_path_param(req, f->name);
        if (RF_FIELD_AT(f) == RF_AT_CALLER) *rf_field_str(s->req, f) = req->key.id;
        if (RF_FIELD_AT(f) == RF_AT_CALLER_ROLE)
            *(int *)(void *)(s->req + f->offset) = (int)req->key.role;
        if (RF_FIELD_AT(f) == RF_AT_IF_MATCH && !rf_req_if_match(req, rf_field_i64(s->req, f), p))
            return false;
    }
    if (route->reply != RF_REPLY_PAGE) return true;
    const struct rf_list_query *q = route->list;
    RF_ASSERT(q && row->req_size >= sizeof(struct rf_list_req)); /* it comes first */
    struct rf_list_req *lr = (struct rf_list_req *)s->req;
    if (!rf_req_page(req, q->cursor_valid, &s->page, p)) return false;
    size_t status = 0;
    const char *status_param = q->status_param ? q->status_param : "status";
    if (q->statuses && !rf_req_choice(req, status_param, q->statuses, q->n_statuses,
                                      q->status_default, &status, p))
        return false;
    lr->status = (int64_t)status;
    lr->after = s->page.after;
    lr->limit = s->page.limit;
    return true;
}

/* A filter's fault, said of the query: 400 invalid_query_param naming it. */
static void filter_fault(struct rf_fault *fault, struct rf_reply *out) {
    static const char field[] = "field '";
    char detail[RF_FAULT_DETAIL_BYTES], param[RF_FAULT_PARAM_BYTES];
    bool said_field = strncmp(fault->detail, field, strlen(field)) == 0;
    memcpy(detail, fault->detail, sizeof detail);
    memcpy(param, fault->param, sizeof param);
    rf_fault_set(fault, RF_ERR_INVALID_QUERY_PARAM, param, "%s%s",
                 said_field ? "query parameter '" : "", detail + (said_field ? strlen(field) : 0));
    rf_reply_fault(out, RF_ERR_INVALID_QUERY_PARAM, fault);
}

/* A list's filters (the fields at RF_AT_FILTER): each ?name= given becomes
 * the string member of that name of a JSON object, which the field spec
 * decodes, so a filter takes exactly the values a body field of its type
 * does. The object lives as long as the request (req->json: a GET has no
 * body), since decoded strings point into it. */
static bool fill_filters(struct rf_http_req *req, const struct rf_op_row *row,
                         struct h_op_call *s, struct rf_reply *out) {
    struct rf_fault fault = {0};
    for (size_t i = 0; i < row->n_fields; i++) {
        const struct rf_field *f = &row->fields[i];
        if (RF_FIELD_AT(f) != RF_AT_FILTER) continue;
        char value[RF_QUERY_FILTER_BYTES];
        int has = rf_req_query(req, f->name, value, sizeof value);
        if (has == 0) continue;
        if (!req->json) req->json = json_object();
        json_t *v = has > 0 ? json_string(value) : NULL; /* NULL: not UTF-8 */
        if (!v || !req->json || json_object_set_new(req->json, f->name, v) != 0) {
            rf_fault_set(&fault, RF_ERR_INVALID_QUERY_PARAM, f->name,
                         "query parameter '%s' must be at most %d bytes of UTF-8, "
                         "percent-encoded", f->name, RF_QUERY_FILTER_BYTES - 1);
            rf_reply_fault(out, RF_ERR_INVALID_QUERY_PARAM, &fault);
            return false;
        }
    }
    if (!req->json) return true;
    rf_err err = rf_fields_decode(req->json, row->fields, row->n_fields, RF_AT_FILTER, NULL,
                                  s->req, &s->decoded, &fault);
    if (err) filter_fault(&fault, out);
    return !err;
}

/* The JSON body, for methods that carry one: empty is allowed when the
 * operation has no required body field. */
static bool fill_body(struct rf_http_req *req, const struct rf_op_row *row, struct h_op_call *s,
                      struct rf_reply *out) {
    if (strcmp(req->method, "POST") != 0 && strcmp(req->method, "PUT") != 0) return true;
    if (!rf_req_body(req, row->fields, row->n_fields, s->req, &s->decoded, out)) return false;
    struct rf_fault fault = {0};
    rf_err err = row->body_check ? row->body_check(s->req, &fault) : RF_OK;
    if (err) rf_reply_fault(out, err, &fault);
    return !err;
}

/* Idempotency-Key header -> idem (use stays NULL without a key). */
static bool fill_idem(struct rf_http_req *req, const struct rf_route *route,
                      const struct rf_op_row *row, struct rf_idem *idem, struct rf_idem **use,
                      struct rf_reply *out) {
    *use = NULL;
    if (route->idem == RF_IDEM_NONE) return true;
    struct rf_problem p;
    const char *key = NULL;
    if (!rf_idem_key_parse(req->header(req->src, RF_HDR_IDEM_KEY), &key, &p)) {
        rf_reply_problem(out, &p);
        return false;
    }
    if (!key && route->idem == RF_IDEM_REQUIRED) {
        rf_problem_set(&p, RF_ERR_IDEM_REQUIRED,
                       "this operation moves money: send an Idempotency-Key header "
                       "(1-%d printable ASCII characters)",
                       RF_IDEM_KEY_CHARS_MAX);
        rf_problem_param(&p, RF_HDR_IDEM_KEY, strlen(RF_HDR_IDEM_KEY));
        rf_reply_problem(out, &p);
        return false;
    }
    if (!key) return true;
    RF_ASSERT(req->authenticated);
    idem->key = key;
    idem->api_key_id = req->key.id;
    idem->seal_secret = row->seal ? req->bearer : NULL;
    char path[RF_HTTP_PATH_BYTES_MAX + 1];
    rf_route_path(req, path, sizeof path);
    const void *parts[3] = {req->method, path, req->body};
    const size_t lens[3] = {strlen(req->method) + 1, strlen(path) + 1, req->body_len};
    rf_idem_hash(idem, 3, parts, lens);
    *use = idem;
    return true;
}

static const char *member(const void *entity, size_t offset) {
    return (const char *)entity + offset;
}

/* Every page struct of racefree.h has this shape (a static assert per list
 * in the resource's view file). */
struct any_page {
    void *items;
    int n;
    char next[RF_CURSOR_BYTES];
};

/* A list page, or a write's items (with_next false: no cursor to name). */
static rf_err render_page(const struct rf_view *v, const void *res, bool with_next,
                          struct rf_reply *out) {
    const struct any_page *pg = res;
    RF_ASSERT(pg->n >= 0 && pg->n <= RF_LIST_LIMIT_MAX && v->entity_size > 0);
    json_t *data = json_array();
    for (int i = 0; data && i < pg->n; i++) {
        json_t *item = v->json((const char *)pg->items + (size_t)i * v->entity_size);
        if (json_array_append_new(data, item) != 0) {
            json_decref(data);
            data = NULL;
        }
    }
    json_t *page = !data       ? NULL
                   : with_next ? json_pack("{s:o, s:o}", "data", data, "next", rf_json_str(pg->next))
                               : json_pack("{s:o}", "data", data);
    if (page && with_next && v->page_members && !v->page_members(res, page)) {
        json_decref(page);
        page = NULL;
    }
    if (!page) return RF_ERR_NOMEM;
    rf_reply_json(out, 200, page);
    return RF_OK;
}

static rf_err render(const struct rf_route *route, const struct rf_op_row *row, const void *res,
                     struct rf_reply *out) {
    const struct rf_view *v = route->view;
    if (route->reply == RF_REPLY_PAGE || route->reply == RF_REPLY_ITEMS)
        return render_page(v, res, route->reply == RF_REPLY_PAGE, out);
    if (route->reply == RF_REPLY_GONE) {
        rf_reply_empty(out, 204);
        return RF_OK;
    }
    int64_t version = *(const int64_t *)member(res, v->version_offset);
    if (route->reply == RF_REPLY_EMPTY) {
        rf_reply_empty(out, 204);
        rf_reply_header(out, "ETag", "\"%lld\"", (long long)version);
        return RF_OK;
    }
    bool created = route->reply == RF_REPLY_CREATED ||
                   (route->reply == RF_REPLY_UPSERT && *(const bool *)member(res, row->created_offset));
    const char *a = v->n_location > 0 ? member(res, v->location_offsets[0]) : "";
    const char *b = v->n_location > 1 ? member(res, v->location_offsets[1]) : "";
    return rf_reply_entity(out, created ? 201 : 200, v->json(res), version, v->location_fmt, a, b);
}

/* A resource without a version (an API key): no ETag, no Location. */
static rf_err render_unversioned(const struct rf_route *route, const void *res,
                                 struct rf_reply *out) {
    RF_ASSERT(route->reply == RF_REPLY_CREATED || route->reply == RF_REPLY_EMPTY ||
              route->reply == RF_REPLY_ENTITY);
    if (route->reply == RF_REPLY_EMPTY) {
        rf_reply_empty(out, 204);
        return RF_OK;
    }
    json_t *j = route->view->json(res);
    if (!j) return RF_ERR_NOMEM;
    rf_reply_json(out, route->reply == RF_REPLY_CREATED ? 201 : 200, j);
    return RF_OK;
}

bool h_op_begin(struct rf_http_req *req, struct h_op_call *s, struct rf_reply *out) {
    const struct rf_route *route = req->match->route;
    const struct rf_op_row *row = rf_op_row(route->op);
    RF_ASSERT(row->req_size <= RF_OP_REQ_BYTES_MAX && row->res_size <= RF_OP_RES_BYTES_MAX);
    RF_ASSERT(route->view && out->status == 0);
    memset(s->req, 0, row->req_size);
    s->decoded.n = 0;
    s->idem = (struct rf_idem){0};
    s->use = NULL;
    struct rf_problem p;
    if (!fill_context(req, route, row, s, &p)) {
        rf_reply_problem(out, &p);
        return false;
    }
    bool filtered = route->reply != RF_REPLY_PAGE || fill_filters(req, row, s, out);
    if (filtered && fill_body(req, row, s, out) &&
        fill_idem(req, route, row, &s->idem, &s->use, out))
        return true;
    rf_decoded_clear(&s->decoded);
    return false;
}

void h_op_end(struct rf_http_req *req, struct h_op_call *s, rf_err err, struct rf_reply *out) {
    const struct rf_route *route = req->match->route;
    const struct rf_op_row *row = rf_op_row(route->op);
    if (!err)
        err = route->reply != RF_REPLY_PAGE && route->view->no_version
                  ? render_unversioned(route, s->res, out)
                  : render(route, row, s->res, out);
    /* A result that carries a secret is never kept by a cache. */
    if (!err && row->seal) rf_reply_header(out, "Cache-Control", "no-store");
    if (err && out->status == 0) rf_reply_fault(out, err, &s->fault);
    else if (!err && s->use && s->idem.replayed)
        rf_reply_header(out, "Idempotent-Replayed", "true");
    if (row->res_clear) row->res_clear(s->res);
    rf_decoded_clear(&s->decoded);
}

bool h_op_submit(struct rf_http_req *req, struct h_op_call *s, struct rf_reply *out,
                 rf_done_fn done, void *arg) {
    if (!h_op_begin(req, s, out)) return false;
    rf_op_submit(req->ctx->db, req->match->route->op, s->req, s->res, s->use, &s->fault, done,
                 arg);
    return true;
}

void h_op(struct rf_http_req *req, struct rf_reply *out) {
    struct h_op_call s;
    if (!h_op_begin(req, &s, out)) return;
    rf_err err = rf_op_run(req->ctx->db, req->match->route->op, s.req, s.res, s.use, &s.fault);
    h_op_end(req, &s, err, out);
}
