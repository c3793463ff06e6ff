/*
 * exchange.c - one request/response exchange (see exchange.h): request ids,
 * routing on the raw path, lookups, early refusals, running the route,
 * rendering HTTP/1.1 responses, the access log and metrics.
 *
 * Every problem+json answer gets the exchange's request id as a
 * `request_id` member (and every answer the X-Request-Id header), here in
 * one place, so framing errors and handler errors look alike. A replayed
 * Idempotency-Key answer is sent byte for byte as stored.
 */
#include "http/exchange.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/log.h"
#include "base/logbuf.h"
#include "http/buf.h"
#include "http/handlers.h"
#include "http/metrics.h"
#include "http/request.h"
#include "http/respond.h"

#define RESPONSE_HEAD_BYTES_MAX (2 * RF_HEADER_BYTES_MAX)

void rf_x_init(struct rf_exchange *x, struct rf_http_ctx *ctx) {
    memset(x, 0, sizeof *x);
    x->ctx = ctx;
    x->start_us = rf_mono_us();
}

/* ---- lookups handlers use --------------------------------------------------- */

static const char *x_header(void *src, const char *name) {
    struct rf_exchange *x = src;
    return rf_h1_field(&x->h1, name);
}

/* ---- the head ----------------------------------------------------------------- */

static void request_id_init(struct rf_exchange *x) {
    const char *given = x->parsed ? rf_h1_field(&x->h1, "X-Request-Id") : NULL;
    if (rf_request_id_valid(given)) {
        snprintf(x->request_id, sizeof x->request_id, "%s", given);
        return;
    }
    uint8_t rnd[16];
    rf_random_id_bytes(rnd, sizeof rnd);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof rnd; i++) {
        x->request_id[2 * i] = hex[rnd[i] >> 4];
        x->request_id[2 * i + 1] = hex[rnd[i] & 15];
    }
    x->request_id[2 * sizeof rnd] = '\0';
}

static void early_refusal(struct rf_exchange *x) {
    struct rf_problem p;
    if (atomic_load(&x->ctx->draining)) {
        rf_reply_error(&x->pending, RF_ERR_SHUTTING_DOWN, NULL);
    } else if (x->match.kind == RF_MATCH_NONE) {
        rf_problem_set(&p, RF_ERR_ROUTE_NOT_FOUND, "no route matches this path");
        rf_reply_problem(&x->pending, &p);
    } else if (x->match.kind == RF_MATCH_NO_METHOD) {
        rf_problem_set(&p, RF_ERR_METHOD_NOT_ALLOWED, "this path accepts %s", x->match.allow);
        rf_reply_problem(&x->pending, &p);
        rf_reply_header(&x->pending, "Allow", "%s", x->match.allow);
    }
}

void rf_x_head_done(struct rf_exchange *x) {
    x->parsed = true;
    request_id_init(x);
    rf_route_match(x->h1.method, x->h1.path, x->ctx->test_hooks, &x->match);
    x->req = (struct rf_http_req){.ctx = x->ctx, .method = x->h1.method, .path = x->h1.path,
                                  .query_raw = x->h1.query, .match = &x->match,
                                  .header = x_header, .src = x};
    x->body_limit = x->ctx->body_max_bytes;
    if (x->match.kind == RF_MATCH_OK && x->match.route->body_max)
        x->body_limit = x->match.route->body_max;
    early_refusal(x);
}

bool rf_x_body_append(struct rf_exchange *x, const char *data, size_t n) {
    if (n == 0) return true;
    if (n > x->body_limit - x->body_len) return false;
    if (x->body_len + n > x->body_cap) {
        size_t cap = x->body_cap ? x->body_cap : 1024;
        while (cap < x->body_len + n) cap *= 2;
        if (cap > x->body_limit) cap = x->body_limit;
        char *p = realloc(x->body, cap);
        if (!p) return false;
        x->body = p;
        x->body_cap = cap;
    }
    memcpy(x->body + x->body_len, data, n);
    x->body_len += n;
    return true;
}

void rf_x_problem(struct rf_reply *out, rf_err err, const char *detail) {
    rf_reply_error(out, err, detail);
}

void rf_x_serve(struct rf_exchange *x, struct rf_reply *out) {
    RF_ASSERT(x->parsed && x->match.kind == RF_MATCH_OK && x->pending.status == 0);
    x->req.body = x->body;
    x->req.body_len = x->body_len;
    rf_route_serve(&x->req, out);
}

enum rf_start rf_x_start(struct rf_exchange *x, struct h_op_call *s, struct rf_reply *out,
                         rf_done_fn done, void *arg) {
    RF_ASSERT(x->parsed && x->match.kind == RF_MATCH_OK && x->pending.status == 0);
    x->req.body = x->body;
    x->req.body_len = x->body_len;
    return rf_route_start(&x->req, s, out, done, arg);
}

void rf_x_finish(struct rf_exchange *x, struct h_op_call *s, rf_err err, struct rf_reply *out) {
    h_op_end(&x->req, s, err, out);
}

/* ---- rendering ------------------------------------------------------------------ */

/* True when the "Name: value\n" lines hold a line starting with prefix. */
static bool has_line(const char *lines, const char *prefix) {
    size_t n = strlen(prefix);
    for (const char *s = lines; s && *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : "")
        if (strncasecmp(s, prefix, n) == 0) return true;
    return false;
}

/* Adds "request_id" to a problem+json body (not to a stored replay). */
static void problem_add_request_id(const char *id, struct rf_reply *r) {
    if (!r->body || !has_line(r->headers, "Content-Type: " RF_CT_PROBLEM) ||
        has_line(r->headers, "Idempotent-Replayed:"))
        return;
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    if (json_is_object(j) && !json_object_get(j, "request_id") &&
        json_object_set_new(j, "request_id", json_string(id)) == 0) {
        char *text = json_dumps(j, JSON_COMPACT);
        if (text) {
            free(r->body);
            r->body = text;
            r->body_len = strlen(text);
        }
    }
    json_decref(j);
}

/* The reply's "Name: value\n" lines as "Name: value\r\n". */
static void put_headers(struct rf_buf *b, const char *lines) {
    while (lines && *lines) {
        size_t n = strcspn(lines, "\n");
        rf_buf_append(b, lines, n);
        rf_buf_puts(b, "\r\n");
        lines += n + (lines[n] == '\n');
    }
}

static void put_date(struct rf_buf *b) {
    time_t now = time(NULL);
    struct tm tm;
    char date[64];
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    rf_buf_printf(b, "Date: %s\r\n", date);
}

static char *render_bytes(const struct rf_exchange *x, const struct rf_reply *r, bool close,
                          size_t *len_out) {
    bool no_body = r->status == 204 || r->status == 304 || (r->status >= 100 && r->status < 200);
    bool head = x->parsed && strcmp(x->h1.method, "HEAD") == 0;
    struct rf_buf b;
    rf_buf_init(&b, RESPONSE_HEAD_BYTES_MAX + r->body_len + 1);
    rf_buf_printf(&b, "HTTP/1.1 %d %s\r\n", r->status, rf_status_reason(r->status));
    put_headers(&b, r->headers);
    rf_buf_printf(&b, "X-Request-Id: %s\r\n", x->request_id);
    put_date(&b);
    if (!no_body) rf_buf_printf(&b, "Content-Length: %zu\r\n", r->body_len);
    if (close) rf_buf_puts(&b, "Connection: close\r\n");
    else if (x->parsed && x->h1.minor == 0) rf_buf_puts(&b, "Connection: keep-alive\r\n");
    rf_buf_puts(&b, "\r\n");
    if (!no_body && !head && r->body_len) rf_buf_append(&b, r->body, r->body_len);
    return rf_buf_take(&b, len_out);
}

/* Printable ASCII copy for the log (paths may hold any byte). */
static void log_text(const char *in, char *out, size_t cap) {
    size_t i = 0;
    for (; in && in[i] && i + 1 < cap; i++)
        out[i] = ((unsigned char)in[i] < 0x20 || (unsigned char)in[i] > 0x7e) ? '?' : in[i];
    out[i] = '\0';
}

/* The problem's code when reply is problem+json: its "code" member, found
 * as text (the body is compact JSON we made or stored; the sequence
 * "code":" cannot occur inside a JSON string, whose quotes are escaped).
 * "" when there is none. */
static void problem_code(const struct rf_reply *r, char *out, size_t cap) {
    out[0] = '\0';
    if (!r->body || !has_line(r->headers, "Content-Type: " RF_CT_PROBLEM)) return;
    const char *at = memmem(r->body, r->body_len, "\"code\":\"", 8);
    if (!at) return;
    at += 8;
    size_t n = 0;
    while (at + n < r->body + r->body_len && at[n] != '"' && n + 1 < cap) n++;
    memcpy(out, at, n);
    out[n] = '\0';
}

/* The access log line's level: a 5xx is an error (its code is on the
 * line, its cause on the store's line before it); a probe (the public
 * routes: /healthz, /readyz, /metrics) is debug, so the default level does
 * not log a line per probe; everything else info. */
static enum rf_log_level access_level(const struct rf_exchange *x) {
    if (x->status >= 500) return RF_LOG_ERROR;
    const struct rf_route *r = x->match.kind == RF_MATCH_OK ? x->match.route : NULL;
    bool probe = r && r->roles == RF_ROLES_PUBLIC; /* no route before the head parsed */
    return probe ? RF_LOG_DEBUG : RF_LOG_INFO;
}

/* One access log line, built in a fixed buffer (no JSON library, no
 * allocation: it is written for every request); too long a line is
 * dropped. Never the Authorization header or a body: the key's id only. */
static void access_log(const struct rf_exchange *x, const char *code, int64_t duration_us) {
    enum rf_log_level level = access_level(x);
    if (!rf_log_enabled(level)) return;
    char path[RF_HTTP_PATH_BYTES_MAX + 1], method[40], nums[64], text[RF_ACCESS_LOG_BYTES_MAX];
    log_text(x->parsed ? x->h1.path : "", path, sizeof path);
    log_text(x->parsed ? x->h1.method : "-", method, sizeof method);
    const struct rf_route *r = x->match.kind == RF_MATCH_OK ? x->match.route : NULL;
    struct rf_log_buf l = {.text = text, .len = 0, .cap = sizeof text, .full = false};
    rf_log_begin(&l, level);
    RF_LOG_LIT(&l, ",\"msg\":\"request\",\"request_id\":");
    rf_log_str(&l, x->request_id);
    RF_LOG_LIT(&l, ",\"method\":");
    rf_log_str(&l, method);
    RF_LOG_LIT(&l, ",\"route\":");
    rf_log_str(&l, r ? r->pattern : NULL);
    RF_LOG_LIT(&l, ",\"path\":");
    rf_log_str(&l, path);
    int n = snprintf(nums, sizeof nums, ",\"status\":%d,\"duration_ms\":%lld.%03lld,\"key_id\":",
                     x->status, (long long)(duration_us / 1000), (long long)(duration_us % 1000));
    RF_ASSERT(n > 0 && (size_t)n < sizeof nums && duration_us >= 0);
    rf_log_raw(&l, nums, (size_t)n);
    rf_log_str(&l, x->req.authenticated ? x->req.key.id : NULL);
    if (code[0]) {
        RF_LOG_LIT(&l, ",\"code\":");
        rf_log_str(&l, code);
    }
    RF_LOG_LIT(&l, "}");
    if (!l.full) rf_log_line(l.text, l.len);
}

char *rf_x_render(struct rf_exchange *x, struct rf_reply *reply, bool close, size_t *len_out) {
    RF_ASSERT(reply->status >= 100 && reply->status <= 599 && x->status == 0);
    if (!x->request_id[0]) request_id_init(x);
    problem_add_request_id(x->request_id, reply);
    char code[64];
    problem_code(reply, code, sizeof code);
    char *bytes = render_bytes(x, reply, close, len_out);
    int status = reply->status;
    rf_reply_clear(reply);
    x->status = bytes ? status : 503;
    int64_t duration_us = rf_mono_us() - x->start_us;
    int route = x->match.kind == RF_MATCH_OK ? x->match.route_index : -1;
    rf_metrics_observe(x->ctx->metrics, route, x->parsed ? x->h1.method : "", x->status,
                       duration_us);
    access_log(x, code, duration_us);
    return bytes;
}

void rf_x_clear(struct rf_exchange *x) {
    rf_http_req_clear(&x->req);
    rf_reply_clear(&x->pending);
    free(x->body);
    free(x->head);
    memset(x, 0, sizeof *x);
}

char *rf_x_refusal(struct rf_http_ctx *ctx, size_t *len_out) {
    struct rf_exchange x;
    rf_x_init(&x, ctx);
    struct rf_reply r = {0};
    rf_x_problem(&r, RF_ERR_TOO_MANY_CONNECTIONS,
                 "this client (or the server) has too many open connections; retry later");
    char *bytes = rf_x_render(&x, &r, true, len_out);
    rf_x_clear(&x);
    return bytes;
}
