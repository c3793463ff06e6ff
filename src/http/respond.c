/*
 * respond.c - JSON and problem+json replies, header lines, the rf_err ->
 * HTTP status table (from the one error list) and the rendering of an
 * operation's fault (see respond.h). Nothing here knows sockets: exchange.c renders the
 * struct rf_reply these functions fill.
 */
#include "http/respond.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/limits.h"
#include "http/buf.h"
#include "http/request.h"
#include "http/routes.h"

/* ---- The rf_err table --------------------------------------------------- */

/* How each rf_err is answered, generated from racefree_errors.h. */
struct err_http {
    int status;
    int retry_after_s;  /* seconds for "Retry-After"; 0: no header */
    const char *title;
    const char *detail; /* generic; a handler may pass a better one */
};

#define HTTP_ROW(name, code, status, retry_after, title, detail) \
    [name] = {status, retry_after, title, detail},
static const struct err_http err_table[RF_ERR__COUNT] = {RF_ERRORS(HTTP_ROW)};
#undef HTTP_ROW

/* An out-of-range value (never made by the list) answers as internal. */
static const struct err_http *err_entry(rf_err err) {
    if ((int)err < 0 || err >= RF_ERR__COUNT) err = RF_ERR_INTERNAL;
    return &err_table[err];
}

int rf_err_status(rf_err err) { return err_entry(err)->status; }

const char *rf_err_title(rf_err err) { return err_entry(err)->title; }

const char *rf_status_reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
    }
}

/* ---- Building replies --------------------------------------------------- */

void rf_reply_clear(struct rf_reply *r) {
    if (!r) return;
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

/* The fallback when a reply cannot be built: an empty 503. */
static void reply_nomem(struct rf_reply *out) {
    rf_reply_clear(out);
    out->status = 503;
}

void rf_problem_set(struct rf_problem *p, rf_err err, const char *fmt, ...) {
    RF_ASSERT(err != RF_OK && (int)err >= 0 && err < RF_ERR__COUNT);
    p->err = err;
    p->param[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->detail, sizeof p->detail, fmt, ap);
    va_end(ap);
    rf_printable_force(p->detail);
}

void rf_problem_param(struct rf_problem *p, const char *name, size_t name_len) {
    RF_ASSERT(name && name_len < sizeof p->param); /* names come from specs and patterns */
    memcpy(p->param, name, name_len);
    p->param[name_len] = '\0';
}

void rf_reply_header(struct rf_reply *out, const char *name, const char *fmt, ...) {
    char value[RF_HEADER_BYTES_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    RF_ASSERT(n >= 0 && (size_t)n < sizeof value);
    RF_ASSERT(!strpbrk(value, "\r\n") && !strpbrk(name, "\r\n: "));
    struct rf_buf b;
    rf_buf_init(&b, RF_HEADER_BYTES_MAX);
    if (out->headers) rf_buf_puts(&b, out->headers);
    rf_buf_printf(&b, "%s: %s\n", name, value);
    char *text = rf_buf_take(&b, NULL);
    if (!text) {
        reply_nomem(out);
        return;
    }
    free(out->headers);
    out->headers = text;
}

void rf_reply_text(struct rf_reply *out, int status, const char *content_type, char *body,
                   size_t len) {
    RF_ASSERT(out->body == NULL && status >= 100 && status <= 599);
    out->status = status;
    out->body = body;
    out->body_len = len;
    rf_reply_header(out, "Content-Type", "%s", content_type);
}

void rf_reply_json(struct rf_reply *out, int status, json_t *body) {
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        reply_nomem(out);
        return;
    }
    rf_reply_text(out, status, RF_CT_JSON, text, strlen(text));
}

void rf_reply_empty(struct rf_reply *out, int status) {
    RF_ASSERT(out->body == NULL);
    out->status = status;
}

/* extra (stolen, may be NULL): further members; its "detail" replaces the
 * detail, the members that identify the problem are kept. */
static void reply_problem_ext(struct rf_reply *out, int status, const char *title,
                              const char *code, const char *detail, json_t *extra) {
    char type[128];
    snprintf(type, sizeof type, "%s%s", RF_PROBLEM_TYPE_BASE, code);
    json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", title, "status",
                          status, "detail", detail, "code", code);
    if (j && extra) {
        json_object_del(extra, "type");
        json_object_del(extra, "title");
        json_object_del(extra, "status");
        json_object_del(extra, "code");
        if (json_object_update(j, extra) != 0) {
            json_decref(j);
            j = NULL;
        }
    }
    json_decref(extra);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        reply_nomem(out);
        return;
    }
    rf_reply_text(out, status, RF_CT_PROBLEM, text, strlen(text));
}

void rf_reply_problem(struct rf_reply *out, const struct rf_problem *p) {
    json_t *extra = p->param[0] ? json_pack("{s:s}", "param", p->param) : NULL;
    const struct err_http *e = err_entry(p->err);
    reply_problem_ext(out, e->status, e->title, rf_err_code(p->err), p->detail, extra);
}

void rf_reply_error_ext(struct rf_reply *out, rf_err err, const char *detail, json_t *extra) {
    RF_ASSERT(err != RF_OK);
    const struct err_http *e = err_entry(err);
    reply_problem_ext(out, e->status, e->title, rf_err_code(err), detail ? detail : e->detail,
                      extra);
    if (e->retry_after_s) rf_reply_header(out, "Retry-After", "%d", e->retry_after_s);
}

void rf_reply_error(struct rf_reply *out, rf_err err, const char *detail) {
    rf_reply_error_ext(out, err, detail, NULL);
}

rf_err rf_reply_entity(struct rf_reply *out, int status, json_t *body, int64_t version,
                       const char *location_fmt, ...) {
    RF_ASSERT(version >= 1);
    if (!body) return RF_ERR_INTERNAL;
    rf_reply_json(out, status, body);
    rf_reply_header(out, "ETag", "\"%lld\"", (long long)version);
    if (status == 201) {
        char location[RF_HTTP_PATH_BYTES_MAX];
        va_list ap;
        va_start(ap, location_fmt);
        int n = vsnprintf(location, sizeof location, location_fmt, ap);
        va_end(ap);
        RF_ASSERT(n > 0 && (size_t)n < sizeof location); /* made of validated ids */
        rf_reply_header(out, "Location", "%s", location);
    }
    return RF_OK;
}

rf_err rf_reply_page(struct rf_reply *out, const void *items, int n, rf_item_json_fn item,
                     const char *next) {
    RF_ASSERT(n >= 0 && n <= RF_LIST_LIMIT_MAX);
    json_t *data = json_array();
    for (int i = 0; data && i < n; i++) {
        if (json_array_append_new(data, item(items, i)) != 0) {
            json_decref(data);
            data = NULL;
        }
    }
    json_t *page = data ? json_pack("{s:o, s:o}", "data", data, "next", rf_json_str(next)) : NULL;
    if (!page) return RF_ERR_NOMEM;
    rf_reply_json(out, 200, page);
    return RF_OK;
}

json_t *rf_json_time(int64_t ms) {
    if (ms == 0) return json_null();
    char text[RF_TIME_TEXT_BYTES];
    rf_time_format(ms, text);
    return json_string(text);
}

json_t *rf_json_str(const char *s) { return (s && *s) ? json_string(s) : json_null(); }

/* ---- Failures of operations --------------------------------------------- */

/* The facts the code's answer depends on (rf_facts), under the names the
 * Problem schema documents: each code shows only its own, so a transfer
 * that an approval ran and that found the funds short shows the balance,
 * not the approval's state. */
static void put_facts(json_t *extra, rf_err code, const struct rf_facts *facts) {
    if (code == RF_ERR_INVALID_STATE && facts->status[0])
        json_object_set_new(extra, "current_status", json_string(facts->status));
    if (code == RF_ERR_VERSION_MISMATCH && facts->version > 0)
        json_object_set_new(extra, "current_version", json_integer(facts->version));
    if (code == RF_ERR_INSUFFICIENT_FUNDS && facts->has_available) {
        json_object_set_new(extra, "available", json_integer(facts->available));
        json_object_set_new(extra, "currency", json_string(facts->currency));
    }
}

void rf_reply_fault(struct rf_reply *out, rf_err err, const struct rf_fault *f) {
    RF_ASSERT(err != RF_OK && f);
    rf_err code = f->code != RF_OK ? f->code : err;
    json_t *extra = json_object();
    if (extra) put_facts(extra, code, &f->facts);
    if (extra && f->param[0]) json_object_set_new(extra, "param", json_string(f->param));
    for (int i = 0; extra && i < 2; i++)
        if (f->extra[i].name)
            json_object_set_new(extra, f->extra[i].name, json_string(f->extra[i].value));
    rf_reply_error_ext(out, code, f->detail[0] ? f->detail : NULL, extra);
}
