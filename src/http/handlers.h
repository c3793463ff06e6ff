/*
 * handlers.h - the handlers the route table points at. Every route that
 * names an operation runs h_op (h_op.c: request struct in, typed result
 * rendered out with the resource's view from its h_<resource>.c); the few
 * routes that are not operations (health, metrics, test hooks) have their
 * own.
 */
#ifndef RF_HTTP_HANDLERS_H
#define RF_HTTP_HANDLERS_H

#include <stdalign.h>
#include <stddef.h>

#include "http/request.h"
#include "http/routes.h"

/* h_op.c: every route that names an operation */
void h_op(struct rf_http_req *req, struct rf_reply *out);

/* One operation's request in its typed form, its result and what it was
 * told; h_op keeps it on its stack, a submitted write in its connection. */
struct h_op_call {
    alignas(max_align_t) unsigned char req[RF_OP_REQ_BYTES_MAX];
    alignas(max_align_t) unsigned char res[RF_OP_RES_BYTES_MAX];
    struct rf_decoded decoded;
    struct rf_page page;
    struct rf_idem idem;
    struct rf_idem *use;       /* &idem with an Idempotency-Key, else NULL */
    struct rf_fault fault;
};
/* h_op in halves, for the event loop: the request parsed into s (false:
 * refused, with out filled), then rf_op_submit(..., done, arg) (done runs
 * exactly once, maybe before this returns); once done ran, h_op_end renders
 * the outcome err into out and frees what s holds. */
bool h_op_submit(struct rf_http_req *req, struct h_op_call *s, struct rf_reply *out,
                 rf_done_fn done, void *arg);
bool h_op_begin(struct rf_http_req *req, struct h_op_call *s, struct rf_reply *out);
void h_op_end(struct rf_http_req *req, struct h_op_call *s, rf_err err, struct rf_reply *out);

/* h_ops.c */
void h_healthz(struct rf_http_req *req, struct rf_reply *out);
void h_readyz(struct rf_http_req *req, struct rf_reply *out);
void h_metrics(struct rf_http_req *req, struct rf_reply *out);

/* h_webhooks.c: POST /v1/webhooks/{provider} (signature, not API key) */
void h_webhook_receive(struct rf_http_req *req, struct rf_reply *out);

/* h_leases.c: POST /v1/payout-batches (a batch run on this worker), and
 * its test hook (hidden, --test-hooks only) */
void h_payout_batch_create(struct rf_http_req *req, struct rf_reply *out);
void h_test_payout_batch(struct rf_http_req *req, struct rf_reply *out);
/* h_announcements.c: the fan-out's test hook (hidden, --test-hooks only) */
void h_test_fanout(struct rf_http_req *req, struct rf_reply *out);
/* h_schedules.c: /v1/schedules (serve --schedule) */
void h_schedule_list(struct rf_http_req *req, struct rf_reply *out);
void h_schedule_run(struct rf_http_req *req, struct rf_reply *out);
void h_schedule_runs(struct rf_http_req *req, struct rf_reply *out);
/* h_admin.c: GET /v1/admin/reconcile */
void h_admin_reconcile(struct rf_http_req *req, struct rf_reply *out);

/* h_test.c (hidden routes, --test-hooks only) */
void h_test_op_delay(struct rf_http_req *req, struct rf_reply *out);
void h_test_fail_next(struct rf_http_req *req, struct rf_reply *out);
void h_test_fail_next_commit(struct rf_http_req *req, struct rf_reply *out);
void h_test_crash_after_commit(struct rf_http_req *req, struct rf_reply *out);
void h_test_io_fault(struct rf_http_req *req, struct rf_reply *out);
void h_test_lose_commit_replies(struct rf_http_req *req, struct rf_reply *out);

#endif
