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

void h_readyz(struct rf_http_req *req, struct rf_reply *out) {
    rf_err err = atomic_load(&req->ctx->draining) ? RF_ERR_SHUTTING_DOWN : rf_ready(req->ctx->db);
    if (err) {
        rf_reply_error(out, err, NULL);
        return;
    }
    rf_reply_json(out, 200, json_pack("{s:s}", "status", "ready"));
}

void h_metrics(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_stats stats;
    rf_stats_get(req->ctx->db, &stats);
    size_t len = 0;
    char *text = rf_metrics_render(req->ctx->metrics, &stats, &len);
    if (!text) {
        rf_reply_error(out, RF_ERR_NOMEM, NULL);
        return;
    }
    rf_reply_text(out, 200, CT_PROMETHEUS, text, len);
}
