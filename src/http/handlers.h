/*
 * handlers.h - the handlers the route table points at. Every route that
 * names an operation runs h_op (h_op.c: request struct in, typed result
 * rendered out with the resource's view from its h_<resource>.c); the few
 * routes that are not operations (health, metrics, test hooks) have their
 * own.
 */
#ifndef RF_HTTP_HANDLERS_H
#define RF_HTTP_HANDLERS_H

#include "http/routes.h"

/* h_op.c: every route that names an operation */
void h_op(struct rf_http_req *req, struct rf_reply *out);

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
