/*
 * api.h - THE operation table: one row per operation of racefree.h's
 * RF_OPS list. A row names the operation's request fields (the one field
 * spec, core/fields.h), the rules across fields, its transaction function,
 * its typed result (and how the Idempotency-Key record stores it) and what
 * a failure shows besides its code. rf_op_run (api.c) is the one path every
 * caller takes: the public rf_*() wrappers, the HTTP edge and approvals.
 *
 * Adding an operation: a name in RF_OPS, its request and result structs in
 * racefree.h, its transaction function in its flow's core file, a row here,
 * and a route row in http/routes.c that says how its result renders.
 */
#ifndef RF_CORE_API_H
#define RF_CORE_API_H

#include "core/codec.h"
#include "core/fields.h"
#include "store/store.h"

/* A member of the request or the result shown with a failure: when the
 * operation fails with err, the CHARS member at offset (of the result when
 * of_result, else a const char * of the request), if not empty, is shown as
 * `name` (a problem's extension member). */
struct rf_op_extra {
    rf_err err;
    const char *name;
    bool of_result;
    size_t offset;
};
#define RF_OP_EXTRAS_MAX 2

struct rf_op_row {
    bool write;                       /* a write transaction (else a read) */
    const struct rf_field *fields;    /* the request's one field spec */
    size_t n_fields;
    size_t req_size;
    /* Rules across the body's own fields (NULL: none); fills fault. They are
     * part of the body: the HTTP edge applies them right after decoding it,
     * before the Idempotency-Key is looked at (h_op.c). */
    rf_err (*body_check)(const void *req, struct rf_fault *fault);
    /* Rules across fields, beyond each field's own (NULL: none); fills fault.
     * Run after the body_check, when the operation is submitted. */
    rf_err (*check)(const void *req, struct rf_fault *fault);
    /* The transaction body: never begins or commits; res starts zeroed. */
    rf_err (*tx)(struct rf_tx *tx, const void *req, void *res);
    size_t res_size;
    void (*res_clear)(void *res);     /* frees what res owns; NULL: nothing */
    /* Lists: the request is a struct rf_list_req and the result a page
     * (struct list_out's shape) of items this size; rf_op_run allocates
     * the items before the read is queued, and list_page_run empties the
     * page at the start of every attempt. 0: not a list. */
    size_t page_item_size;
    /* Idempotency-Key: the stored form of the result (NULL: the operation
     * takes no key). seal: the result carries a secret, stored sealed under
     * the caller's seal_secret (required with a key). */
    const struct rf_codec *codec;
    bool seal;
    size_t created_offset;            /* bool in res: created (201) vs found (200) */
    const struct rf_op_extra *extras; /* up to RF_OP_EXTRAS_MAX, or NULL */
    size_t n_extras;
    /* Called after a write committed (not on an Idempotency-Key replay):
     * what this process must forget at once (NULL: nothing). */
    void (*committed)(rf *db, const void *req, const void *res);
    /* Fills fault's detail or param for a failure of tx (NULL: the code's
     * generic text). */
    void (*explain)(const void *req, const void *res, rf_err err, struct rf_fault *fault);
};

/* The row of op; asserts op is in range and has a row. */
const struct rf_op_row *rf_op_row(rf_op op);
/* Whether op has a row yet (every op of RF_OPS must; a unit test checks). */
bool rf_op_has_row(rf_op op);

/* Validates req with op's field spec and rules (no store access): what
 * rf_op_run checks before it queues; an approval checks its action so. */
rf_err rf_op_check(rf_op op, const void *req, struct rf_fault *fault);

/* Composable entry for flows that run another operation inside their own
 * transaction (approvals): validates req with the op's spec and runs its
 * transaction function with tx. */
rf_err rf_op_run_tx(struct rf_tx *tx, rf_op op, const void *req, void *res,
                    struct rf_fault *fault);

#endif
