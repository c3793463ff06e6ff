/*
 * server.c - libmicrohttpd lifecycle and the per-request plumbing around the
 * route table: body accumulation under the route's limit, request ids, the
 * access log, metrics, and graceful shutdown. The only file that includes
 * microhttpd.h.
 *
 * Threading: one thread per connection (handlers block on the library's
 * executor), so a request runs start to finish on one thread and its state
 * (struct conn_req) is never shared. Shared state is the read-only config,
 * the atomic metrics, the atomic in-flight count and the draining flag.
 *
 * A request's way: first callback -> match the route, decide the body limit,
 * answer early (404, 405, 413 by Content-Length, 503 while draining); body
 * callbacks -> append up to the limit, then count and drop (413 at the end,
 * the connection is closed past RF_BODY_DISCARD_BYTES_MAX); last callback ->
 * rf_route_serve; completion -> metrics, access log, free.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/limits.h"
#include "http/http.h"
#include "http/metrics.h"
#include "http/request.h"
#include "http/respond.h"
#include "http/routes.h"

struct rf_http_server {
    struct MHD_Daemon *daemon;
    struct rf_http_ctx ctx;
    struct rf_metrics metrics;
    atomic_int inflight;
    int port;
};

struct conn_req {
    struct rf_http_server *srv;
    struct MHD_Connection *conn;
    struct rf_http_req req;
    struct rf_match match;
    char request_id[RF_REQUEST_ID_CHARS_MAX + 1];
    char *query_raw;            /* rebuilt from libmicrohttpd's (raw) arguments */
    char *body;
    size_t body_len, body_cap, body_limit;
    size_t discarded;           /* bytes dropped (past the limit, or unwanted) */
    bool too_large;
    struct rf_reply pending;    /* decided before the body: sent after it */
    int status;                 /* 0 until a response is queued */
    int64_t start_us;
};

/* ---- Sending ---------------------------------------------------------------- */

static void free_body(void *p) { free(p); }

/* Adds the reply's "Name: value\n" lines (edited in place) to resp. A
 * line without ": " (never written by respond.c) is skipped. */
static void add_reply_headers(struct MHD_Response *resp, char *lines) {
    while (lines && *lines) {
        char *end = strchr(lines, '\n');
        if (end) *end = '\0';
        char *colon = strstr(lines, ": ");
        if (colon) {
            *colon = '\0';
            MHD_add_response_header(resp, lines, colon + 2);
        }
        if (!end) return;
        lines = end + 1;
    }
}

/* Queues reply (taking its body) and frees it. */
static enum MHD_Result send_reply(struct conn_req *cr, struct rf_reply *reply) {
    RF_ASSERT(reply->status >= 100 && reply->status <= 599 && cr->status == 0);
    struct MHD_Response *resp =
        reply->body ? MHD_create_response_from_buffer_with_free_callback(reply->body_len,
                                                                         reply->body, free_body)
                    : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        rf_reply_clear(reply);
        return MHD_NO;
    }
    reply->body = NULL; /* owned by resp now */
    add_reply_headers(resp, reply->headers);
    MHD_add_response_header(resp, "X-Request-Id", cr->request_id);
    if (atomic_load(&cr->srv->ctx.draining)) MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result r = MHD_queue_response(cr->conn, (unsigned)reply->status, resp);
    MHD_destroy_response(resp);
    if (r == MHD_YES) cr->status = reply->status;
    rf_reply_clear(reply);
    return r;
}

static enum MHD_Result send_too_large(struct conn_req *cr) {
    struct rf_problem p;
    rf_problem_set(&p, 413, "body_too_large", "the body is larger than %zu bytes",
                   cr->body_limit);
    struct rf_reply reply = {0};
    rf_reply_problem(&reply, &p);
    return send_reply(cr, &reply);
}

/* ---- Request callbacks ------------------------------------------------------- */

static const char *mhd_header(void *src, const char *name) {
    return MHD_lookup_connection_value(src, MHD_HEADER_KIND, name);
}

/* Leaves the URL and query arguments as sent: routing works on the raw path
 * and decodes each piece itself (http/uri.h). */
static size_t mhd_unescape_none(void *cls, struct MHD_Connection *conn, char *s) {
    (void)cls;
    (void)conn;
    return strlen(s);
}

/* Appends "&key=value" to the raw query; libmicrohttpd has turned '+' into
 * ' ' (a space cannot come raw from the wire), so it is turned back. */
static enum MHD_Result query_add(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value) {
    (void)kind;
    struct conn_req *cr = cls;
    size_t used = cr->query_raw ? strlen(cr->query_raw) : 0;
    size_t need = used + strlen(key) + (value ? strlen(value) + 1 : 0) + 2;
    char *q = realloc(cr->query_raw, need);
    if (!q) return MHD_NO;
    snprintf(q + used, need - used, "%s%s%s%s", used ? "&" : "", key, value ? "=" : "",
             value ? value : "");
    for (char *c = q + used; *c; c++)
        if (*c == ' ') *c = '+';
    cr->query_raw = q;
    return MHD_YES;
}

static void request_id_init(struct conn_req *cr) {
    const char *given = mhd_header(cr->conn, "X-Request-Id");
    if (rf_request_id_valid(given)) {
        snprintf(cr->request_id, sizeof cr->request_id, "%s", given);
        return;
    }
    uint8_t rnd[16];
    randombytes_buf(rnd, sizeof rnd);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof rnd; i++) {
        cr->request_id[2 * i] = hex[rnd[i] >> 4];
        cr->request_id[2 * i + 1] = hex[rnd[i] & 15];
    }
    cr->request_id[2 * sizeof rnd] = '\0';
}

static struct conn_req *req_begin(struct rf_http_server *srv, struct MHD_Connection *conn,
                                  const char *url, const char *method) {
    struct conn_req *cr = calloc(1, sizeof *cr);
    if (!cr) return NULL;
    atomic_fetch_add(&srv->inflight, 1);
    cr->srv = srv;
    cr->conn = conn;
    cr->start_us = rf_mono_us();
    request_id_init(cr);
    rf_route_match(method, url, srv->ctx.test_hooks, &cr->match);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_add, cr);
    cr->req = (struct rf_http_req){.ctx = &srv->ctx, .method = method, .path = url,
                                   .query_raw = cr->query_raw ? cr->query_raw : "",
                                   .match = &cr->match, .header = mhd_header, .src = conn};
    cr->body_limit = srv->ctx.body_max_bytes;
    if (cr->match.kind == RF_MATCH_OK && cr->match.route->body_max)
        cr->body_limit = cr->match.route->body_max;
    return cr;
}

/* Decides what needs no body: 404, 405 and 503 while draining are kept in
 * cr->pending and sent after the body is drained (so the connection stays
 * usable); 413 by Content-Length is sent now, without reading the body. */
static enum MHD_Result req_early(struct conn_req *cr) {
    struct rf_problem p;
    if (atomic_load(&cr->srv->ctx.draining)) {
        rf_reply_error(&cr->pending, RF_ERR_SHUTTING_DOWN, NULL);
        return MHD_YES;
    }
    if (cr->match.kind == RF_MATCH_NONE) {
        rf_problem_set(&p, 404, "route_not_found", "no route matches this path");
        rf_reply_problem(&cr->pending, &p);
        return MHD_YES;
    }
    if (cr->match.kind == RF_MATCH_NO_METHOD) {
        rf_problem_set(&p, 405, "method_not_allowed", "this path accepts %s", cr->match.allow);
        rf_reply_problem(&cr->pending, &p);
        rf_reply_header(&cr->pending, "Allow", "%s", cr->match.allow);
        return MHD_YES;
    }
    const char *cl = mhd_header(cr->conn, "Content-Length");
    unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
    if (declared > cr->body_limit) {
        cr->too_large = true;
        return send_too_large(cr);
    }
    if (declared > 0) {
        cr->body = malloc((size_t)declared);
        if (!cr->body) return MHD_NO;
        cr->body_cap = (size_t)declared;
    }
    return MHD_YES;
}

/* Appends a body chunk within the limit; past it, counts and drops. */
static enum MHD_Result req_body(struct conn_req *cr, const char *data, size_t n) {
    if (cr->status != 0 || cr->pending.status != 0) {
        cr->discarded += n;
        return cr->discarded > RF_BODY_DISCARD_BYTES_MAX ? MHD_NO : MHD_YES;
    }
    if (cr->too_large || n > cr->body_limit - cr->body_len) {
        if (!cr->too_large) {
            cr->too_large = true;
            free(cr->body);
            cr->body = NULL;
            cr->body_len = cr->body_cap = 0;
        }
        cr->discarded += n;
        return cr->discarded > RF_BODY_DISCARD_BYTES_MAX ? MHD_NO : MHD_YES;
    }
    if (cr->body_len + n > cr->body_cap) {
        size_t cap = cr->body_cap ? cr->body_cap : 1024;
        while (cap < cr->body_len + n) cap *= 2;
        if (cap > cr->body_limit) cap = cr->body_limit;
        char *p = realloc(cr->body, cap);
        if (!p) return MHD_NO;
        cr->body = p;
        cr->body_cap = cap;
    }
    memcpy(cr->body + cr->body_len, data, n);
    cr->body_len += n;
    return MHD_YES;
}

static enum MHD_Result req_finish(struct conn_req *cr) {
    if (cr->pending.status != 0) return send_reply(cr, &cr->pending);
    if (cr->too_large) return send_too_large(cr);
    cr->req.body = cr->body;
    cr->req.body_len = cr->body_len;
    struct rf_reply reply = {0};
    rf_route_serve(&cr->req, &reply);
    return send_reply(cr, &reply);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    struct conn_req *cr = *con_cls;
    if (!cr) {
        cr = req_begin(cls, conn, url, method);
        if (!cr) return MHD_NO;
        *con_cls = cr;
        return req_early(cr);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return req_body(cr, upload_data, n);
    }
    if (cr->status != 0) return MHD_YES; /* answered early */
    return req_finish(cr);
}

/* ---- Completion: metrics and the access log --------------------------------- */

/* Printable ASCII copy for the log (paths may hold any decoded byte). */
static void log_text(const char *in, char *out, size_t cap) {
    size_t i = 0;
    for (; in && in[i] && i + 1 < cap; i++)
        out[i] = ((unsigned char)in[i] < 0x20 || (unsigned char)in[i] > 0x7e) ? '?' : in[i];
    out[i] = '\0';
}

static void access_log(const struct conn_req *cr, int64_t duration_us) {
    char ts[RF_TIME_TEXT_BYTES], path[RF_HTTP_PATH_BYTES_MAX + 1], method[32];
    rf_time_format(rf_now_ms(), ts);
    log_text(cr->req.path, path, sizeof path);
    log_text(cr->req.method, method, sizeof method);
    const struct rf_route *r = cr->match.kind == RF_MATCH_OK ? cr->match.route : NULL;
    json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:s, s:i, s:f, s:o}", "ts", ts, "request_id",
                          cr->request_id, "method", method, "route",
                          r ? json_string(r->pattern) : json_null(), "path", path, "status",
                          cr->status, "duration_ms", (double)(duration_us / 1000) +
                          (double)(duration_us % 1000) / 1000.0, "key_id",
                          cr->req.authenticated ? json_string(cr->req.key.id) : json_null());
    char *line = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(j);
    if (line && strlen(line) < RF_ACCESS_LOG_BYTES_MAX) fprintf(stderr, "%s\n", line);
    free(line);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    (void)toe;
    struct rf_http_server *srv = cls;
    struct conn_req *cr = *con_cls;
    if (!cr) return;
    int64_t duration_us = rf_mono_us() - cr->start_us;
    if (cr->status != 0)
        rf_metrics_observe(&srv->metrics, cr->match.route_index, cr->req.method, cr->status,
                           duration_us);
    access_log(cr, duration_us);
    rf_http_req_clear(&cr->req);
    rf_reply_clear(&cr->pending);
    free(cr->body);
    free(cr->query_raw);
    free(cr);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->inflight, 1);
}

/* ---- Lifecycle ----------------------------------------------------------------- */

/* libmicrohttpd's errors, prefixed; a client hanging up is not one. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (strncmp(msg, "Connection was closed by remote side", 36) == 0) return;
    fprintf(stderr, "racefree: http: %s%s", msg, strchr(msg, '\n') ? "" : "\n");
}

bool rf_http_parse_listen(const char *text, char host[RF_HOST_BYTES], int *port) {
    const char *colon = text ? strrchr(text, ':') : NULL;
    if (!colon || colon == text || (size_t)(colon - text) >= RF_HOST_BYTES) return false;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    const char *p = colon + 1;
    long v = 0;
    size_t n = 0;
    for (; p[n]; n++) {
        if (n >= 5 || p[n] < '0' || p[n] > '9') return false;
        v = v * 10 + (p[n] - '0');
    }
    if (n == 0 || v > 65535) return false;
    *port = (int)v;
    return true;
}

static bool listen_addr(const char *host, int port, struct sockaddr_in *sa) {
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1;
}

struct rf_http_server *rf_http_start(const struct rf_http_config *cfg, char *err,
                                     size_t err_cap) {
    RF_ASSERT(cfg->db && cfg->host && cfg->port >= 0 && cfg->port <= 65535);
    struct sockaddr_in sa;
    if (!listen_addr(cfg->host, cfg->port, &sa)) {
        snprintf(err, err_cap, "listen host '%s' is not an IPv4 address or localhost", cfg->host);
        return NULL;
    }
    if (sodium_init() < 0) {
        snprintf(err, err_cap, "libsodium failed to initialise");
        return NULL;
    }
    struct rf_http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_cap, "out of memory");
        return NULL;
    }
    s->ctx.db = cfg->db;
    s->ctx.test_hooks = cfg->test_hooks;
    s->ctx.body_max_bytes = cfg->body_max_bytes ? cfg->body_max_bytes : RF_BODY_BYTES_MAX;
    s->ctx.metrics = &s->metrics;
    atomic_init(&s->ctx.draining, false);
    atomic_init(&s->inflight, 0);
    rf_metrics_init(&s->metrics);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)RF_HTTP_CONNS_MAX, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)RF_HTTP_TIMEOUT_S,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)RF_HTTP_THREAD_STACK_BYTES,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)RF_HTTP_CONN_MEMORY_BYTES,
        MHD_OPTION_UNESCAPE_CALLBACK, mhd_unescape_none, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, err_cap, "cannot listen on %s:%d (address in use or not permitted?)",
                 cfg->host, cfg->port);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    return s;
}

int rf_http_port(const struct rf_http_server *s) { return s->port; }

void rf_http_stop(struct rf_http_server *s) {
    if (!s) return;
    atomic_store(&s->ctx.draining, true);
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    int64_t deadline = rf_mono_ms() + RF_SHUTDOWN_DRAIN_MS;
    while (atomic_load(&s->inflight) > 0 && rf_mono_ms() < deadline) {
        struct timespec step = {0, RF_SHUTDOWN_POLL_MS * 1000000L};
        nanosleep(&step, NULL);
    }
    int left = atomic_load(&s->inflight);
    if (left > 0)
        fprintf(stderr, "racefree: %d request(s) still running after %d ms; stopping anyway\n",
                left, RF_SHUTDOWN_DRAIN_MS);
    MHD_stop_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    free(s);
}
