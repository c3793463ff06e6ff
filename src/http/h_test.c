/*
 * h_test.c - fault injection for the black-box tests: hidden routes that the
 * server registers only with `serve --test-hooks` (admin key required), each
 * a thin wrapper over an rf_test_* library hook. Never documented in
 * docs/openapi.yaml; never served in production.
 */
#include <string.h>

#include "base/limits.h"
#include "http/handlers.h"
#include "http/request.h"
#include "http/respond.h"

/* The hook to run, with its parsed arguments. */
struct hook_state {
    enum { HOOK_DELAY, HOOK_FAIL_NEXT, HOOK_FAIL_COMMIT, HOOK_LOSE_REPLIES, HOOK_CRASH } hook;
    int64_t num; /* HOOK_DELAY: milliseconds; HOOK_LOSE_REPLIES: a count */
    const char *op;
    rf_err err;
};

static rf_err hook_call(struct rf_http_req *req, void *state, struct rf_idem *idem) {
    (void)idem;
    const struct hook_state *s = state;
    switch (s->hook) {
    case HOOK_DELAY: rf_test_set_op_delay(req->ctx->db, (int)s->num); break;
    case HOOK_FAIL_NEXT: rf_test_fail_next(req->ctx->db, s->op, s->err); break;
    case HOOK_FAIL_COMMIT: rf_test_fail_next_commit(req->ctx->db); break;
    case HOOK_LOSE_REPLIES: rf_test_lose_commit_replies(req->ctx->db, (int)s->num); break;
    case HOOK_CRASH: rf_test_crash_after_commit(req->ctx->db, s->op); break;
    }
    return RF_OK;
}

static rf_err hook_render(void *ctx, const void *result, struct rf_reply *out) {
    (void)ctx;
    (void)result;
    rf_reply_empty(out, 204);
    return RF_OK;
}

/* Runs the parsed hook through the shared handler shape. */
static void hook_run(struct rf_http_req *req, struct hook_state *s, struct rf_reply *out) {
    const struct rf_http_op op = {.call = hook_call, .render = hook_render, .state = s};
    rf_http_run(req, &op, out);
}

void h_test_op_delay(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field_spec spec[] = {
        {"ms", RF_FIELD_INT, true, 0, 0, RF_TEST_DELAY_MS_MAX}};
    struct rf_field_val v[1];
    struct rf_problem p;
    if (!rf_req_fields(req, false, spec, 1, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    struct hook_state s = {.hook = HOOK_DELAY, .num = v[0].num};
    hook_run(req, &s, out);
}

void h_test_fail_next(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field_spec spec[] = {
        {"op", RF_FIELD_STRING, true, RF_ID_CHARS_MAX, 0, 0},
        {"code", RF_FIELD_STRING, true, RF_ID_CHARS_MAX, 0, 0}};
    struct rf_field_val v[2];
    struct rf_problem p;
    struct hook_state s = {.hook = HOOK_FAIL_NEXT};
    if (!rf_req_fields(req, false, spec, 2, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    /* Only an error the library returns can be injected into an operation. */
    bool library = rf_err_parse(v[1].str, &s.err) && s.err != RF_OK;
    if (!library || s.err >= RF_ERR__LIBRARY_COUNT) {
        rf_problem_set(&p, RF_ERR_INVALID_FIELD, "field 'code' must be an error code such as %s",
                       rf_err_code(RF_ERR_UNAVAILABLE));
        rf_reply_problem(out, &p);
        return;
    }
    s.op = v[0].str;
    hook_run(req, &s, out);
}

/* {"op": name}: the process exits at once right after the next commit that
 * includes that operation, like a power cut: whatever a request still had to
 * do in a later transaction never happens. */
void h_test_crash_after_commit(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field_spec spec[] = {
        {"op", RF_FIELD_STRING, true, RF_ID_CHARS_MAX, 0, 0}};
    struct rf_field_val v[1];
    struct rf_problem p;
    if (!rf_req_fields(req, false, spec, 1, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    struct hook_state s = {.hook = HOOK_CRASH, .op = v[0].str};
    hook_run(req, &s, out);
}

/* {"count": n}: the next n write commits lose their answer after the server
 * processed them (PostgreSQL; a no-op on SQLite, which has no answer to
 * lose). The outcome must then be resolved, never guessed. */
void h_test_lose_commit_replies(struct rf_http_req *req, struct rf_reply *out) {
    static const struct rf_field_spec spec[] = {
        {"count", RF_FIELD_INT, true, 0, 0, RF_QUEUE_OPS_MAX}};
    struct rf_field_val v[1];
    struct rf_problem p;
    if (!rf_req_fields(req, false, spec, 1, v, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    struct hook_state s = {.hook = HOOK_LOSE_REPLIES, .num = v[0].num};
    hook_run(req, &s, out);
}

void h_test_fail_next_commit(struct rf_http_req *req, struct rf_reply *out) {
    struct rf_problem p;
    if (!rf_req_fields(req, true, NULL, 0, NULL, &p)) {
        rf_reply_problem(out, &p);
        return;
    }
    struct hook_state s = {.hook = HOOK_FAIL_COMMIT};
    hook_run(req, &s, out);
}
