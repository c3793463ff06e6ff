/*
 * exchange.h - one request/response exchange, the part of the HTTP server
 * that knows racefree: request ids, route matching on the raw path, the
 * header lookup handlers use, early refusals (404, 405, 503
 * while draining), running the route, rendering a struct rf_reply as
 * HTTP/1.1 bytes (problem+json bodies carry the request id), the access log
 * and metrics.
 *
 * server.c owns sockets and connection state; an exchange is touched by the
 * event loop until the request is complete, then by one worker while the
 * handler runs, then by the loop again (handed over under a mutex). A write
 * the loop submits itself (rf_x_start) is not touched by anyone while the
 * executor has it: its request and result are the executor's until done.
 */
#ifndef RF_HTTP_EXCHANGE_H
#define RF_HTTP_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "http/http1.h"
#include "http/routes.h"

struct rf_exchange {
    struct rf_http_ctx *ctx;
    char *head;                 /* malloc'd copy of the head; h1 points into it */
    struct rf_h1_req h1;
    bool parsed;                /* h1 is valid */
    char request_id[RF_REQUEST_ID_CHARS_MAX + 1];
    struct rf_match match;
    struct rf_http_req req;
    size_t body_limit;
    char *body;
    size_t body_len, body_cap;
    struct rf_reply pending;    /* an answer decided before the body was read */
    int status;                 /* 0 until rendered */
    int64_t start_us;
};

/* A fresh exchange for a request whose head starts now. */
void rf_x_init(struct rf_exchange *x, struct rf_http_ctx *ctx);
/* After the head parsed: request id, route match, body limit, and x->pending
 * set to 503 shutting_down, 404 or 405 when the request will not be served. */
void rf_x_head_done(struct rf_exchange *x);
/* Appends body bytes; false when the body would pass x->body_limit (or no
 * memory: the caller answers 413 either way; memory is bounded by the limit). */
bool rf_x_body_append(struct rf_exchange *x, const char *data, size_t n);
/* A problem answer (framing error, 413, 408, 503) into out: status, title
 * and Retry-After from err's row. */
void rf_x_problem(struct rf_reply *out, rf_err err, const char *detail);
/* Runs the route (worker threads): authentication, handler. */
void rf_x_serve(struct rf_exchange *x, struct rf_reply *out);
/* The event loop's own way for a write (rf_route_start): RF_START_WORKER
 * (nothing done: rf_x_serve on a worker), RF_START_ANSWERED (out filled),
 * or RF_START_SUBMITTED: done(arg, err) runs exactly once, maybe before
 * this returns, and then rf_x_finish renders err and s into out. */
enum rf_start rf_x_start(struct rf_exchange *x, struct h_op_call *s, struct rf_reply *out,
                         rf_done_fn done, void *arg);
void rf_x_finish(struct rf_exchange *x, struct h_op_call *s, rf_err err, struct rf_reply *out);
/* Renders reply (consumed) as response bytes, logs and counts the exchange.
 * close: send Connection: close. NULL when out of memory. */
char *rf_x_render(struct rf_exchange *x, struct rf_reply *reply, bool close, size_t *len_out);
/* Frees what the exchange holds and zeroes it. */
void rf_x_clear(struct rf_exchange *x);

/* The answer to a connection refused at accept (no exchange): 503
 * too_many_connections with Retry-After, as bytes. NULL when out of memory. */
char *rf_x_refusal(struct rf_http_ctx *ctx, size_t *len_out);

#endif
