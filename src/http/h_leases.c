/*
 * h_leases.c - how leases and payout batches render (the only place they
 * become JSON), and POST /v1/payout-batches: the one route of this file
 * that is not an operation route, because a batch is many transactions
 * (core/payout_batches.c: payout_batch_run, under the payouts lease) run
 * synchronously on this worker thread, never on an executor thread.
 *
 * Its Idempotency-Key (required: it moves money) is the batch's identity:
 * run_key = "http:" + BLAKE2b-128 of (calling key id, Idempotency-Key), so
 * a retry with the same key finds the same batch (a completed one is
 * answered 200 with Idempotent-Replayed; a running one is finished), and
 * different keys make different batches. The same key with other terms is
 * 422 idempotency_key_reused.
 */
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"
#include "core/flows.h"
#include "core/ops.h"
#include "core/test_hooks.h"
#include "http/handlers.h"
#include "http/request.h"
#include "http/respond.h"
#include "http/view.h"

static const char *const lease_status_names[] = {"held", "expired", "released"};

static json_t *lease_json(const void *entity) {
    const struct rf_lease *l = entity;
    RF_ASSERT(l->status >= RF_LEASE_HELD && l->status <= RF_LEASE_RELEASED);
    return json_pack("{s:s, s:s, s:I, s:s, s:I, s:o, s:o, s:o, s:I}", "name", l->name, "holder",
                     l->holder, "token", (json_int_t)l->token, "status",
                     lease_status_names[l->status], "ttl_ms", (json_int_t)l->ttl_ms,
                     "acquired_at", rf_json_time(l->acquired_at_ms), "expires_at",
                     rf_json_time(l->expires_at_ms), "updated_at",
                     rf_json_time(l->updated_at_ms), "version", (json_int_t)l->version);
}

const struct rf_view rf_view_lease = {
    .json = lease_json, .version_offset = offsetof(struct rf_lease, version),
    .location_fmt = "/v1/leases/%s", .location_offsets = {offsetof(struct rf_lease, name)},
    .n_location = 1, .entity_size = sizeof(struct rf_lease)};

static json_t *batch_json(const void *entity) {
    const struct rf_payout_batch *b = entity;
    json_t *progress = json_pack(
        "{s:I, s:I, s:I, s:I, s:o}", "wallets_scanned", (json_int_t)b->wallets_scanned,
        "payouts_created", (json_int_t)b->payouts_created, "skipped_pending",
        (json_int_t)b->skipped_pending, "chunks", (json_int_t)b->chunks, "cursor",
        rf_json_str(b->cursor));
    json_t *totals = json_pack("{s:I, s:I}", "payouts", (json_int_t)b->payouts_created,
                               "amount_minor", (json_int_t)b->total_minor);
    if (!progress || !totals) {
        json_decref(progress);
        json_decref(totals);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:o, s:o, s:I, s:o, s:o, s:o, s:I}", "id", b->id,
                     "status", payout_batch_status_names[b->status], "currency", b->currency,
                     "min_amount_minor", (json_int_t)b->min_amount_minor, "provider",
                     b->provider, "progress", progress, "totals", totals, "lease_token",
                     (json_int_t)b->lease_token, "created_at", rf_json_time(b->created_at_ms),
                     "updated_at", rf_json_time(b->updated_at_ms), "completed_at",
                     rf_json_time(b->completed_at_ms), "version", (json_int_t)b->version);
}

const struct rf_view rf_view_payout_batch = {
    .json = batch_json, .version_offset = offsetof(struct rf_payout_batch, version),
    .entity_size = sizeof(struct rf_payout_batch)};

/* ---- POST /v1/payout-batches ---------------------------------------------- */

struct batch_body {
    const char *currency;
    int64_t min_amount_minor;
    const char *provider;
};

static const struct rf_field batch_fields[] = {
    RF_F(struct batch_body, currency, "currency", RF_FIELD_CURRENCY, true),
    RF_F(struct batch_body, min_amount_minor, "min_amount_minor", RF_FIELD_INT, true, .min = 1,
         .max = INT64_MAX),
    RF_F(struct batch_body, provider, "provider", RF_FIELD_ID, false, .max_len = RF_ID_CHARS_MAX),
};

/* The Idempotency-Key (required); false when out holds the refusal. */
static bool batch_idem_key(struct rf_http_req *req, const char **key, struct rf_reply *out) {
    struct rf_problem p;
    if (!rf_idem_key_parse(req->header(req->src, RF_HDR_IDEM_KEY), key, &p)) {
        rf_reply_problem(out, &p);
        return false;
    }
    if (*key) return true;
    rf_problem_set(&p, RF_ERR_IDEM_REQUIRED,
                   "a payout batch moves money: send an Idempotency-Key header "
                   "(1-%d printable ASCII characters)", RF_IDEM_KEY_CHARS_MAX);
    rf_problem_param(&p, RF_HDR_IDEM_KEY, strlen(RF_HDR_IDEM_KEY));
    rf_reply_problem(out, &p);
    return false;
}

/* "http:" + 32 hex of BLAKE2b-128(key id NUL idempotency key). */
static void batch_run_key(const char *key_id, const char *idem_key, char out[RF_ID_BYTES]) {
    unsigned char h[16];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const unsigned char *)key_id, strlen(key_id) + 1);
    crypto_generichash_update(&st, (const unsigned char *)idem_key, strlen(idem_key));
    crypto_generichash_final(&st, h, sizeof h);
    char hex[2 * sizeof h + 1];
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(out, RF_ID_BYTES, "http:%s", hex);
}

static void batch_reply(struct rf_reply *out, int status, const struct rf_payout_batch *b) {
    rf_err err = rf_reply_entity(out, status, batch_json(b), b->version,
                                 "/v1/payout-batches/%s", b->id);
    if (err) rf_reply_error(out, err, NULL);
}

/* A batch of this key found: the answer, or false to run it (running). */
static bool batch_known(const struct rf_payout_batch *b, const struct batch_body *body,
                        struct rf_reply *out) {
    const char *provider = body->provider ? body->provider : "batch";
    if (strcmp(b->currency, body->currency) != 0 ||
        b->min_amount_minor != body->min_amount_minor || strcmp(b->provider, provider) != 0) {
        rf_reply_error(out, RF_ERR_IDEM_REUSED, NULL);
        return true;
    }
    if (b->status != RF_PAYOUT_BATCH_COMPLETED) return false;
    batch_reply(out, 200, b);
    rf_reply_header(out, "Idempotent-Replayed", "true");
    return true;
}

void h_payout_batch_create(struct rf_http_req *req, struct rf_reply *out) {
    struct batch_body body = {0};
    struct rf_decoded d = {0};
    const char *idem_key = NULL;
    if (!rf_req_body(req, batch_fields, sizeof batch_fields / sizeof batch_fields[0], &body, &d,
                     out))
        return;
    RF_ASSERT(d.n == 0); /* strings borrow from req->json */
    if (!batch_idem_key(req, &idem_key, out)) return;
    char run_key[RF_ID_BYTES], holder[RF_ID_BYTES], id[RF_ID_BYTES];
    batch_run_key(req->key.id, idem_key, run_key);
    struct rf_payout_batch b;
    rf_err err = payout_batch_find(req->ctx->db, run_key, &b);
    if (!err && batch_known(&b, &body, out)) return;
    if (err && err != RF_ERR_PAYOUT_BATCH_NOT_FOUND) {
        rf_reply_error(out, err, NULL);
        return;
    }
    snprintf(holder, sizeof holder, "api.%ld.%.80s", (long)getpid(), req->key.id);
    struct payout_batch_spec spec = {.currency = body.currency,
                                     .min_amount_minor = body.min_amount_minor,
                                     .run_key = run_key, .holder = holder,
                                     .provider = body.provider};
    struct rf_fault fault;
    err = payout_batch_run(req->ctx->db, &spec, id, &fault);
    struct rf_payout_batch_ref ref = {.id = id};
    if (!err) err = rf_op_run(req->ctx->db, RF_OP_PAYOUT_BATCH_GET, &ref, &b, NULL, &fault);
    if (err) rf_reply_fault(out, err, &fault);
    else batch_reply(out, 201, &b);
}

/* ---- the test hook (--test-hooks) ------------------------------------------ */

struct batch_hook {
    int64_t pause_ms, chunk_wallets, lease_ttl_ms;
};

void h_test_payout_batch(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field f[] = {
        RF_F(struct batch_hook, pause_ms, "pause_ms", RF_FIELD_INT, false,
             .max = RF_TEST_BATCH_PAUSE_MS_MAX),
        RF_F(struct batch_hook, chunk_wallets, "chunk_wallets", RF_FIELD_INT, false,
             .max = RF_PAYOUT_BATCH_CHUNK_WALLETS),
        RF_F(struct batch_hook, lease_ttl_ms, "lease_ttl_ms", RF_FIELD_INT, false,
             .max = RF_LEASE_TTL_MS_LIMIT),
    };
    struct batch_hook a = {0};
    struct rf_decoded d = {0};
    if (!rf_req_body(req, f, sizeof f / sizeof f[0], &a, &d, out)) return;
    rf_test_payout_batch(req->ctx->db, (int)a.pause_ms, (int)a.chunk_wallets, a.lease_ttl_ms);
    rf_reply_empty(out, 204);
}
