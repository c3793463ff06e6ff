/*
 * h_test.c - fault injection for the black-box tests: hidden routes that the
 * server registers only with `serve --test-hooks` (admin key required), each
 * a thin wrapper over an rf_test_* library hook. Never documented in
 * docs/openapi.yaml; never served in production. Bodies are read with the
 * one validator (core/fields.h), like every operation's.
 */
#include <string.h>

#include "base/assert.h"
#include "base/limits.h"
#include "core/test_hooks.h"
#include "http/handlers.h"
#include "http/request.h"
#include "http/respond.h"

/* Every hook's arguments. */
struct hook_args {
    int64_t ms;     /* op-delay */
    int64_t count;  /* lose-commit-replies */
    const char *op; /* fail-next, crash-after-commit */
    const char *code;
    const char *fault;   /* io-fault */
    int64_t after_bytes; /* io-fault */
};

#define ARG_OP RF_F(struct hook_args, op, "op", RF_FIELD_STRING, true, .max_len = RF_ID_CHARS_MAX)

/* Reads the body into a; false when out holds the refusal. */
static bool hook_args(struct rf_http_req *req, const struct rf_field *f, size_t n,
                      struct hook_args *a, struct rf_reply *out) {
    struct rf_decoded d = {0};
    memset(a, 0, sizeof *a);
    if (!rf_req_body(req, f, n, a, &d, out)) return false;
    RF_ASSERT(d.n == 0); /* no object fields: strings borrow from req->json */
    return true;
}

void h_test_op_delay(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field f[] = {RF_F(struct hook_args, ms, "ms", RF_FIELD_INT, true,
                                             .max = RF_TEST_DELAY_MS_MAX)};
    struct hook_args a;
    if (!hook_args(req, f, 1, &a, out)) return;
    rf_test_set_op_delay(req->ctx->db, (int)a.ms);
    rf_reply_empty(out, 204);
}

void h_test_fail_next(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field f[] = {
        ARG_OP, RF_F(struct hook_args, code, "code", RF_FIELD_STRING, true,
                     .max_len = RF_ID_CHARS_MAX)};
    struct hook_args a;
    if (!hook_args(req, f, 2, &a, out)) return;
    /* Only an error the library returns can be injected into an operation. */
    rf_err err = RF_OK;
    if (!rf_err_parse(a.code, &err) || err == RF_OK || err >= RF_ERR__LIBRARY_COUNT) {
        struct rf_problem p;
        rf_problem_set(&p, RF_ERR_INVALID_FIELD, "field 'code' must be an error code such as %s",
                       rf_err_code(RF_ERR_UNAVAILABLE));
        rf_reply_problem(out, &p);
        return;
    }
    rf_test_fail_next(req->ctx->db, a.op, err);
    rf_reply_empty(out, 204);
}

/* {"op": name}: the process exits at once right after the next commit that
 * includes that operation, like a power cut: whatever a request still had to
 * do in a later transaction never happens. */
void h_test_crash_after_commit(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field f[] = {ARG_OP};
    struct hook_args a;
    if (!hook_args(req, f, 1, &a, out)) return;
    rf_test_crash_after_commit(req->ctx->db, a.op);
    rf_reply_empty(out, 204);
}

/* {"count": n}: the next n write commits lose their answer after the server
 * processed them (PostgreSQL; a no-op on SQLite, which has no answer to
 * lose). The outcome must then be resolved, never guessed. */
void h_test_lose_commit_replies(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field f[] = {RF_F(struct hook_args, count, "count", RF_FIELD_INT,
                                             true, .max = RF_QUEUE_OPS_MAX)};
    struct hook_args a;
    if (!hook_args(req, f, 1, &a, out)) return;
    rf_test_lose_commit_replies(req->ctx->db, (int)a.count);
    rf_reply_empty(out, 204);
}

/* {"fault": "full"|"eio"|"off", "after_bytes": n}: SQLite's writes fail
 * as on a full or failing disk once n more bytes were written (0 or absent:
 * the next write), until "off" (store/sqlite_faults.h). */
void h_test_io_fault(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field f[] = {
        RF_F(struct hook_args, fault, "fault", RF_FIELD_STRING, true, .max_len = 8),
        RF_F(struct hook_args, after_bytes, "after_bytes", RF_FIELD_INT, false,
             .max = RF_TEST_IO_AFTER_BYTES_MAX)};
    struct hook_args a;
    if (!hook_args(req, f, 2, &a, out)) return;
    static const char *const names[] = {[RF_TEST_IO_OK] = "off", [RF_TEST_IO_EIO] = "eio",
                                        [RF_TEST_IO_FULL] = "full"};
    for (int i = RF_TEST_IO_OK; i <= RF_TEST_IO_FULL; i++) {
        if (strcmp(a.fault, names[i]) != 0) continue;
        rf_test_io_fault(req->ctx->db, (enum rf_test_io)i, a.after_bytes);
        rf_reply_empty(out, 204);
        return;
    }
    struct rf_problem p;
    rf_problem_set(&p, RF_ERR_INVALID_FIELD, "field 'fault' must be full, eio or off");
    rf_reply_problem(out, &p);
}

void h_test_fail_next_commit(struct rf_http_req *req, struct rf_reply *out) {
    struct hook_args a;
    if (!hook_args(req, NULL, 0, &a, out)) return;
    rf_test_fail_next_commit(req->ctx->db);
    rf_reply_empty(out, 204);
}
