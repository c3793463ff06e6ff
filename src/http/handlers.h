/*
 * handlers.h - the handlers the route table points at, one h_<resource>.c
 * each. Every handler has the shape parse -> call library -> render, with
 * the shared part in respond.c (rf_http_run).
 */
#ifndef RF_HTTP_HANDLERS_H
#define RF_HTTP_HANDLERS_H

#include "http/routes.h"

/* h_op.c: every route that names an operation */
void h_op(struct rf_http_req *req, struct rf_reply *out);


/* h_accounts.c */
void h_account_create(struct rf_http_req *req, struct rf_reply *out);
void h_account_get(struct rf_http_req *req, struct rf_reply *out);
void h_account_entries(struct rf_http_req *req, struct rf_reply *out);

/* h_transfers.c (with the credit shorthand, which answers a transfer) */
void h_transfer_create(struct rf_http_req *req, struct rf_reply *out);
void h_transfer_get(struct rf_http_req *req, struct rf_reply *out);
void h_transfer_post(struct rf_http_req *req, struct rf_reply *out);
void h_transfer_void(struct rf_http_req *req, struct rf_reply *out);
void h_account_credit(struct rf_http_req *req, struct rf_reply *out);

/* h_payouts.c */
void h_payout_create(struct rf_http_req *req, struct rf_reply *out);
void h_payout_attempt(struct rf_http_req *req, struct rf_reply *out);
void h_payout_succeeded(struct rf_http_req *req, struct rf_reply *out);
void h_payout_failed(struct rf_http_req *req, struct rf_reply *out);
void h_payout_get(struct rf_http_req *req, struct rf_reply *out);
void h_payout_list(struct rf_http_req *req, struct rf_reply *out);

/* h_customers.c */
void h_customer_bind(struct rf_http_req *req, struct rf_reply *out);
void h_customer_get(struct rf_http_req *req, struct rf_reply *out);
void h_customer_unbind(struct rf_http_req *req, struct rf_reply *out);
void h_customer_lookup(struct rf_http_req *req, struct rf_reply *out);

/* h_approvals.c */
void h_approval_create(struct rf_http_req *req, struct rf_reply *out);
void h_approval_list(struct rf_http_req *req, struct rf_reply *out);
void h_approval_get(struct rf_http_req *req, struct rf_reply *out);
void h_approval_approve(struct rf_http_req *req, struct rf_reply *out);
void h_approval_reject(struct rf_http_req *req, struct rf_reply *out);
void h_approval_cancel(struct rf_http_req *req, struct rf_reply *out);

/* h_ops.c */
void h_healthz(struct rf_http_req *req, struct rf_reply *out);
void h_readyz(struct rf_http_req *req, struct rf_reply *out);
void h_metrics(struct rf_http_req *req, struct rf_reply *out);

/* h_test.c (hidden routes, --test-hooks only) */
void h_test_op_delay(struct rf_http_req *req, struct rf_reply *out);
void h_test_fail_next(struct rf_http_req *req, struct rf_reply *out);
void h_test_fail_next_commit(struct rf_http_req *req, struct rf_reply *out);
void h_test_crash_after_commit(struct rf_http_req *req, struct rf_reply *out);
void h_test_lose_commit_replies(struct rf_http_req *req, struct rf_reply *out);

#endif
