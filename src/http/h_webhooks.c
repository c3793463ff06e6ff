/*
 * h_webhooks.c - how webhook secrets and ledger events render (the only
 * place they become JSON), and POST /v1/webhooks/{provider}: the one route
 * that authenticates by the provider's signature instead of an API key.
 * Its body is the provider's, not racefree's: it goes to the library as
 * raw bytes with the signature header, verified byte for byte before it is
 * parsed, so it is not decoded by a field spec here. A secret's value is
 * in no view.
 */
#include <stddef.h>
#include <string.h>

#include "base/ids.h"
#include "core/ops.h"
#include "http/handlers.h"
#include "http/respond.h"
#include "http/routes.h"
#include "http/view.h"

static json_t *secret_json(const void *entity) {
    const struct rf_webhook_secret *s = entity;
    return json_pack("{s:s, s:o, s:o, s:I}", "provider", s->provider, "primary_set_at",
                     rf_json_time(s->primary_set_at_ms), "previous_expires_at",
                     rf_json_time(s->previous_expires_at_ms), "version", (json_int_t)s->version);
}

const struct rf_view rf_view_webhook_secret = {
    .json = secret_json, .version_offset = offsetof(struct rf_webhook_secret, version),
    .entity_size = sizeof(struct rf_webhook_secret)};

/* GET /v1/webhook-secrets: no ?status=; the cursor is a provider. */
const struct rf_list_query rf_list_webhook_secrets = {.cursor_valid = rf_id_valid};

static json_t *event_json(const void *entity) {
    const struct rf_webhook_event *e = entity;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "id", e->id, "provider",
                     e->provider, "event_id", e->event_id, "type", e->type, "status", e->status,
                     "checkout_id", rf_json_str(e->checkout_id), "provider_ref",
                     rf_json_str(e->provider_ref), "event_created_at",
                     rf_json_time(e->event_created_at_ms), "received_at",
                     rf_json_time(e->received_at_ms));
}

const struct rf_view rf_view_webhook_event = {
    .json = event_json, .entity_size = sizeof(struct rf_webhook_event), .no_version = true};

/* GET /v1/webhook-events?status=processed|ignored|unmatched|deferred&provider=. */
const struct rf_list_query rf_list_webhook_events = {
    .statuses = webhook_event_filter_names, .n_statuses = 5,
    .status_default = RF_WEBHOOK_EVENTS_ALL, .cursor_valid = rf_id_valid};

/* Stripe signs with Stripe-Signature; every other provider with racefree's
 * own header of the same construction. */
static const char *signature_header(const char *provider) {
    return strcmp(provider, "stripe") == 0 ? "Stripe-Signature" : "X-Racefree-Signature";
}

/* 200 for a first delivery and for every replay (a provider retries what
 * is not 2xx): {"received": true, "duplicate": ..., "event": {...}}. */
void h_webhook_receive(struct rf_http_req *req, struct rf_reply *out) {
    const char *provider = rf_path_param(req, "provider");
    struct rf_webhook_req r = {.provider = provider,
                               .signature = req->header(req->src, signature_header(provider)),
                               .body = req->body, .body_len = req->body_len,
                               .tolerance_s = req->ctx->webhook_tolerance_s};
    struct rf_webhook_res res;
    struct rf_fault fault = {0};
    rf_err err = rf_op_run(req->ctx->db, RF_OP_WEBHOOK_RECEIVE, &r, &res, NULL, &fault);
    if (err) {
        rf_reply_fault(out, err, &fault);
        return;
    }
    json_t *body = json_pack("{s:b, s:b, s:o, s:o}", "received", 1, "duplicate", res.duplicate,
                             "event", event_json(&res.event), "checkout_status",
                             rf_json_str(res.checkout_status));
    rf_reply_json(out, 200, body);
}
