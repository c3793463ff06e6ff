/*
 * h_admin.c - GET /v1/admin/reconcile (admin keys only): the store's
 * invariants checked now, as the same document `racefree reconcile --json`
 * prints. 200 whether clean or not (the document's `clean` says which: a
 * finding is the answer, not a failure of the request); a check that could
 * not run answers its problem (503 store_unavailable when a statement passed
 * the server's PostgreSQL bound, --pg-timeout-ms). It is a handler rather
 * than an operation of the table because it has no request, no entity and
 * no Idempotency-Key, and its answer is a report, not a resource.
 */
#include "core/reconcile.h"
#include "http/handlers.h"
#include "http/respond.h"

void h_admin_reconcile(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_reconcile r;
    rf_err err = rf_reconcile(req->ctx->db, NULL, &r);
    if (err) {
        rf_reply_error(out, err, NULL);
        return;
    }
    json_t *doc = reconcile_json(&r);
    rf_reconcile_clear(&r);
    if (!doc) {
        rf_reply_error(out, RF_ERR_NOMEM, NULL);
        return;
    }
    rf_reply_json(out, 200, doc);
}
