/*
 * http.h - the types every file of the HTTP layer shares: the server-wide
 * context handlers read, one request as handlers see it, and a problem
 * (an API error before it is rendered).
 *
 * Handlers never see sockets: exchange.c fills struct rf_http_req and
 * turns the struct rf_reply a handler fills into a response. That keeps the
 * handlers, the parsers and the route table testable without a socket, and
 * makes the response a handler renders the same bytes the library stores
 * for an Idempotency-Key replay.
 */
#ifndef RF_HTTP_H
#define RF_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/limits.h"
#include "racefree.h"

/* A response as a handler fills it: status, malloc'd body and malloc'd
 * "Name: value\n" header lines (Content-Type is one of them). */
struct rf_reply {
    int status;
    char *body;     /* malloc'd; rf_reply_clear() */
    size_t body_len;
    char *headers;  /* malloc'd "Name: value\n" lines, or NULL */
};
void rf_reply_clear(struct rf_reply *r);

struct rf_metrics;
struct rf_match;

/* Shared by all requests of one server; read-only except `draining`. */
struct rf_http_ctx {
    rf *db;
    bool test_hooks;            /* serve the hidden /v1/_test routes */
    size_t body_max_bytes;      /* the limit of routes with body_max 0 */
    int webhook_tolerance_s;    /* a webhook signature's age bound, either way; 0: default */
    struct rf_metrics *metrics;
    struct scheduler *scheduler; /* this process's --schedule specs; NULL: none */
    /* per-role rate limits by the role's bit index (quota 0: none) */
    struct rf_rate_limit role_limits[RF_ROLES_COUNT];
    atomic_bool draining;       /* shutdown began: new requests get 503 */
};

/* Header lookup: exchange.c implements it over the parsed head, tests over
 * arrays. Returns NULL when absent. Values live for the request. Query
 * values are read from query_raw (rf_req_query in request.h). */
typedef const char *(*rf_lookup_fn)(void *src, const char *name);

/* One request as a handler sees it. */
struct rf_http_req {
    struct rf_http_ctx *ctx;
    const char *method;
    const char *path;           /* raw (not decoded), without the query string */
    const char *query_raw;      /* raw query string without '?'; "" when none */
    const char *body;           /* not NUL-terminated; NULL when empty */
    size_t body_len;
    const struct rf_match *match; /* route and path parameters */
    rf_lookup_fn header;
    void *src;                  /* passed to header() */
    bool authenticated;
    struct rf_key key;          /* the caller, when authenticated */
    const char *bearer;         /* the caller's API key text (never logged) */
    json_t *json;               /* parsed body; owned, rf_http_req_clear() */
};

/* An API error before rendering: its rf_err (the code, status and title
 * come from the list in racefree_errors.h) and a detail text. */
struct rf_problem {
    rf_err err;
    char param[RF_PROBLEM_PARAM_BYTES]; /* the one field or parameter at fault; "" none */
    char detail[RF_PROBLEM_DETAIL_BYTES];
};

/* Fills p (with no param); the detail is printf-formatted and truncated to fit. */
void rf_problem_set(struct rf_problem *p, rf_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Names the field or parameter at fault (name_len bytes of name): rendered
 * as the problem's "param" member. */
void rf_problem_param(struct rf_problem *p, const char *name, size_t name_len);

#endif
