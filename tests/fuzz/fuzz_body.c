/*
 * fuzz_body.c - request JSON for every operation: the first byte picks the
 * operation (an index into RF_OPS; one past the last: an approval's action
 * object), the rest is the body. It takes the HTTP edge's path (h_op.c):
 * rf_req_body (jansson, then the one validator core/fields.c over the
 * operation's field table in core/api.c), the problem rendered, the
 * operation's body_check, then the context fields a route would fill and
 * rf_op_check, the check rf_op_run makes before it queues.
 *
 * Invariant: the validator's two halves agree. A body that decoded is a
 * request struct whose every body field rf_fields_check accepts (fields.h:
 * "the same rules", whether a request arrives as JSON or from C).
 */
#include <stdbool.h>

#include "core/actions.h"
#include "core/api.h"
#include "fuzz/fuzz.h"
#include "http/request.h"
#include "http/respond.h"

/* What a route fills from outside the body (h_op.c fill_context). */
static void fill_context(const struct rf_op_row *row, char *req) {
    for (size_t i = 0; i < row->n_fields; i++) {
        const struct rf_field *f = &row->fields[i];
        unsigned at = RF_FIELD_AT(f);
        if (at == RF_AT_PATH) *rf_field_str(req, f) = "fuzz-path-id";
        if (at == RF_AT_CALLER) *rf_field_str(req, f) = "fuzz-caller-key";
        if (at == RF_AT_CALLER_ROLE) *(int *)(void *)(req + f->offset) = RF_ROLE_ADMIN;
    }
    if (row->page_item_size) ((struct rf_list_req *)(void *)req)->limit = RF_LIST_LIMIT_DEFAULT;
}

/* Every decoded body field passes the struct check on its own. A nested
 * object is left out: its members are decoded only when it is present, and
 * checked alone they would call an absent object's required members
 * missing. */
static void check_agrees(const struct rf_field *f, size_t n, const void *req) {
    for (size_t i = 0; i < n; i++) {
        if (f[i].type == RF_FIELD_NESTED) continue;
        struct rf_fault fault = {0};
        rf_err err = rf_fields_check(&f[i], 1, req, &fault);
        if (err) fprintf(stderr, "field %s: decoded, then refused: %s\n", f[i].name, fault.detail);
        FUZZ_CHECK(err == RF_OK);
    }
}

static void run_op(rf_op op, const char *body, size_t len) {
    const struct rf_op_row *row = rf_op_row(op);
    char *req = calloc(1, row->req_size);
    FUZZ_CHECK(req);
    struct rf_http_req http = {.method = "POST", .body = len ? body : NULL, .body_len = len};
    struct rf_decoded decoded = {0};
    struct rf_reply out = {0};
    if (rf_req_body(&http, row->fields, row->n_fields, req, &decoded, &out)) {
        struct rf_field body_fields[RF_HTTP_FIELDS_MAX];
        size_t nb = 0;
        for (size_t i = 0; i < row->n_fields; i++)
            if (RF_FIELD_AT(&row->fields[i]) == RF_AT_BODY) body_fields[nb++] = row->fields[i];
        check_agrees(body_fields, nb, req);
        struct rf_fault fault = {0};
        rf_err err = row->body_check ? row->body_check(req, &fault) : RF_OK;
        fill_context(row, req);
        if (!err) err = rf_op_check(op, req, &fault);
        if (err) rf_reply_fault(&out, err, &fault);
    } else {
        FUZZ_CHECK(out.status >= 400 && out.status < 500 && out.body);
    }
    rf_reply_clear(&out);
    rf_decoded_clear(&decoded);
    rf_http_req_clear(&http);
    free(req);
}

static void run_action(const char *text) {
    struct action a;
    char detail[RF_FAULT_DETAIL_BYTES];
    if (action_parse(text, &a, detail, sizeof detail) == RF_OK) action_clear(&a);
    else FUZZ_CHECK(detail[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    unsigned pick = data[0] % (RF_OP__COUNT + 1);
    char *body = fuzz_cstr(data + 1, size - 1);
    if (pick == RF_OP__COUNT) run_action(body);
    else run_op((rf_op)pick, body, size - 1);
    free(body);
    return 0;
}
