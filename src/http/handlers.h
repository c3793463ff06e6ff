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


/* h_keys.c */
void h_key_create(struct rf_http_req *req, struct rf_reply *out);
void h_key_list(struct rf_http_req *req, struct rf_reply *out);
void h_key_revoke(struct rf_http_req *req, struct rf_reply *out);



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
