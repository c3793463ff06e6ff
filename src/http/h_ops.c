/*
 * h_ops.c - the operations endpoints: /healthz (the process answers),
 * /readyz (store reachable, schema current, not shutting down) and /metrics
 * (Prometheus text). They need no key and expose no data.
 */
#include "http/handlers.h"
#include "http/metrics.h"
#include "http/respond.h"

#define CT_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"

void h_healthz(struct rf_http_req *req, struct rf_reply *out) {
    (void)req;
    rf_reply_json(out, 200, json_pack("{s:s}", "status", "ok"));
}

static rf_err ready_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)state;
    (void)idem;
    if (atomic_load(&req->ctx->draining)) return RF_ERR_SHUTTING_DOWN;
    return rf_ready(req->ctx->db);
}

static rf_err ready_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    (void)result;
    rf_reply_json(out, 200, json_pack("{s:s}", "status", "ready"));
    return RF_OK;
}

void h_readyz(struct rf_http_req *req, struct rf_reply *out) {
    const struct rf_http_op op = {.call = ready_call, .render = ready_render};
    rf_http_run(req, &op, out);
}

struct metrics_state {
    struct rf_metrics *metrics;
    struct rf_stats stats;
};

static rf_err metrics_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    struct metrics_state *s = state;
    rf_stats_get(req->ctx->db, &s->stats);
    return RF_OK;
}

static rf_err metrics_render(void *ctx, const void *result, struct rf_reply *out) {
    const struct metrics_state *s = ctx;
    size_t len = 0;
    char *text = rf_metrics_render(s->metrics, result, &len);
    if (!text) return RF_ERR_NOMEM;
    rf_reply_text(out, 200, CT_PROMETHEUS, text, len);
    return RF_OK;
}

void h_metrics(struct rf_http_req *req, struct rf_reply *out) {
    struct metrics_state s = {.metrics = req->ctx->metrics};
    const struct rf_http_op op = {.call = metrics_call, .render = metrics_render, .state = &s,
                                  .result = &s.stats};
    rf_http_run(req, &op, out);
}
