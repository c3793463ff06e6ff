/*
 * api.c - THE operation table (see api.h) and rf_op_run, the one path from
 * a typed request to a typed result: validate with the operation's field
 * spec and rules, run its transaction function as one transaction (with the
 * Idempotency-Key record in the same transaction), and on failure say what
 * was wrong. Everything here is data or the shared shape; the flows' logic
 * lives in their own files.
 */
#include "core/api.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/limits.h"
#include "core/core.h"
#include "core/listing.h"
#include "core/ops.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define FIELDS(spec) .fields = (spec), .n_fields = N_OF(spec)
#define EXTRAS(list) .extras = (list), .n_extras = N_OF(list)

/* Shared field shapes. */
#define F_ID(T, member, name_, at_) \
    RF_F(T, member, name_, RF_FIELD_ID, true, .max_len = RF_ID_CHARS_MAX, .at = at_)
#define F_IF_MATCH(T, member) \
    RF_F(T, member, "if_match_version", RF_FIELD_INT, false, .max = INT64_MAX, .at = RF_AT_IF_MATCH)
#define F_METADATA(T, member) \
    RF_F(T, member, "metadata", RF_FIELD_OBJECT, false, .max_len = RF_METADATA_BYTES_MAX)
#define F_TIME(T, member, name_) RF_F(T, member, name_, RF_FIELD_TIME, false, .at = 0)
/* Every list: ?status= (an index into the route's names), ?after=, ?limit=. */
#define F_LIST_QUERY(n_statuses)                                                              \
    RF_F(struct rf_list_req, status, "status", RF_FIELD_INT, false, .max = (n_statuses) - 1,  \
         .at = RF_AT_QUERY),                                                                  \
        RF_F(struct rf_list_req, after, "after", RF_FIELD_STRING, false,                      \
             .max_len = RF_CURSOR_BYTES - 1, .at = RF_AT_QUERY),                              \
        RF_F(struct rf_list_req, limit, "limit", RF_FIELD_INT, false, .min = 1,              \
             .max = INT32_MAX, .at = RF_AT_QUERY) /* more than RF_LIST_LIMIT_MAX: the max */

/* ---- API keys ------------------------------------------------------------ */

_Static_assert(sizeof(enum rf_role) == sizeof(int), "a CHOICE member is an int");
static const struct rf_field key_create_fields[] = {
    RF_F(struct rf_key_create_req, role, "role", RF_FIELD_CHOICE, true,
         .choices = key_role_names, .choice_values = key_role_values,
         .choice_text = "one of admin|service|worker|readonly"),
    RF_F(struct rf_key_create_req, name, "name", RF_FIELD_ID, false, .max_len = RF_ID_CHARS_MAX),
};
static const struct rf_field key_ref_fields[] = {
    F_ID(struct rf_key_ref, id, "id", RF_AT_PATH),
};
static const struct rf_field key_list_fields[] = {
    F_LIST_QUERY(1), /* no ?status=: every key */
};

/* The secret is in the record, which the row's seal keeps sealed at rest. */
static const struct rf_member key_created_members[] = {
    RF_MEMBER(struct rf_key_created, key.id, CHARS),
    RF_MEMBER(struct rf_key_created, key.name, CHARS),
    RF_MEMBER(struct rf_key_created, key.role, INT),
    RF_MEMBER(struct rf_key_created, key.created_at_ms, I64),
    RF_MEMBER(struct rf_key_created, key.revoked_at_ms, I64),
    RF_MEMBER(struct rf_key_created, secret, CHARS),
};
static const struct rf_codec key_created_codec = RF_CODEC(key_created_members);

static void key_created_clear(void *res) { rf_key_created_clear(res); }
static void key_page_clear(void *res) { rf_key_page_clear(res); }

/* ---- entitlements -------------------------------------------------------- */

static const struct rf_field grant_fields[] = {
    F_ID(struct rf_grant_req, user_id, "user_id", RF_AT_PATH),
    F_ID(struct rf_grant_req, key, "key", RF_AT_PATH),
    RF_F(struct rf_grant_req, source, "source", RF_FIELD_STRING, false,
         .max_len = RF_SOURCE_CHARS_MAX),
    F_TIME(struct rf_grant_req, expires_at_ms, "expires_at"),
    F_METADATA(struct rf_grant_req, metadata_json),
    F_IF_MATCH(struct rf_grant_req, if_match_version),
};
static const struct rf_field ent_get_fields[] = {
    F_ID(struct rf_ent_ref, user_id, "user_id", RF_AT_PATH),
    F_ID(struct rf_ent_ref, key, "key", RF_AT_PATH),
};
static const struct rf_field ent_ref_fields[] = {
    F_ID(struct rf_ent_ref, user_id, "user_id", RF_AT_PATH),
    F_ID(struct rf_ent_ref, key, "key", RF_AT_PATH),
    F_IF_MATCH(struct rf_ent_ref, if_match_version),
};

static const struct rf_field ent_list_fields[] = {
    F_ID(struct rf_list_req, scope, "user_id", RF_AT_PATH),
    F_LIST_QUERY(RF_ENT_ALL + 1),
};

static const struct rf_member grant_members[] = {
    RF_MEMBER(struct rf_grant_res, ent.id, CHARS),
    RF_MEMBER(struct rf_grant_res, ent.user_id, CHARS),
    RF_MEMBER(struct rf_grant_res, ent.key, CHARS),
    RF_MEMBER(struct rf_grant_res, ent.status, CHARS),
    RF_MEMBER(struct rf_grant_res, ent.source, TEXT),
    RF_MEMBER(struct rf_grant_res, ent.metadata_json, TEXT),
    RF_MEMBER(struct rf_grant_res, ent.expires_at_ms, I64),
    RF_MEMBER(struct rf_grant_res, ent.granted_at_ms, I64),
    RF_MEMBER(struct rf_grant_res, ent.revoked_at_ms, I64),
    RF_MEMBER(struct rf_grant_res, ent.updated_at_ms, I64),
    RF_MEMBER(struct rf_grant_res, ent.version, I64),
    RF_MEMBER(struct rf_grant_res, created, BOOL),
};
static const struct rf_codec grant_codec = RF_CODEC(grant_members);

static void grant_res_clear(void *res) { rf_entitlement_clear(&((struct rf_grant_res *)res)->ent); }
static void ent_clear(void *res) { rf_entitlement_clear(res); }
static void ent_page_clear(void *res) { rf_entitlement_page_clear(res); }

#define PAGE_SHAPE(T)                                                                         \
    _Static_assert(offsetof(T, items) == offsetof(struct list_out, items) &&                  \
                       offsetof(T, n) == offsetof(struct list_out, n) &&                      \
                       offsetof(T, next) == offsetof(struct list_out, next) &&                \
                       sizeof(T) == sizeof(struct list_out),                                  \
                   #T " has the shape of every page")
PAGE_SHAPE(struct rf_entitlement_page);
PAGE_SHAPE(struct rf_key_page);
PAGE_SHAPE(struct rf_entry_page);
PAGE_SHAPE(struct rf_payout_page);
PAGE_SHAPE(struct rf_approval_page);

/* ---- the table ------------------------------------------------------------- */

static const struct rf_op_row rows[RF_OP__COUNT] = {
    [RF_OP_KEY_CREATE] = {.write = true, FIELDS(key_create_fields),
                          .req_size = sizeof(struct rf_key_create_req), .tx = op_key_create,
                          .res_size = sizeof(struct rf_key_created),
                          .res_clear = key_created_clear, .codec = &key_created_codec,
                          .seal = true},
    [RF_OP_KEY_REVOKE] = {.write = true, FIELDS(key_ref_fields),
                          .req_size = sizeof(struct rf_key_ref), .tx = op_key_revoke,
                          .res_size = sizeof(struct rf_key)},
    [RF_OP_KEY_LIST] = {FIELDS(key_list_fields), .req_size = sizeof(struct rf_list_req),
                        .tx = op_key_list, .res_size = sizeof(struct rf_key_page),
                        .res_clear = key_page_clear, .page_item_size = sizeof(struct rf_key)},

    [RF_OP_ENTITLEMENT_GRANT] = {.write = true, FIELDS(grant_fields),
                                 .req_size = sizeof(struct rf_grant_req),
                                 .tx = op_entitlement_grant,
                                 .res_size = sizeof(struct rf_grant_res),
                                 .res_clear = grant_res_clear, .codec = &grant_codec,
                                 .created_offset = offsetof(struct rf_grant_res, created)},
    [RF_OP_ENTITLEMENT_REVOKE] = {.write = true, FIELDS(ent_ref_fields),
                                  .req_size = sizeof(struct rf_ent_ref),
                                  .tx = op_entitlement_revoke,
                                  .res_size = sizeof(struct rf_entitlement),
                                  .res_clear = ent_clear},
    [RF_OP_ENTITLEMENT_GET] = {FIELDS(ent_get_fields), .req_size = sizeof(struct rf_ent_ref),
                               .tx = op_entitlement_get,
                               .res_size = sizeof(struct rf_entitlement), .res_clear = ent_clear},
    [RF_OP_ENTITLEMENT_LIST] = {FIELDS(ent_list_fields), .req_size = sizeof(struct rf_list_req),
                                .tx = op_entitlement_list,
                                .res_size = sizeof(struct rf_entitlement_page),
                                .res_clear = ent_page_clear,
                                .page_item_size = sizeof(struct rf_entitlement)},
};

static const char *const op_names[RF_OP__COUNT] = {
#define RF_OP_NAME_(id, name) [id] = name,
    RF_OPS(RF_OP_NAME_)
#undef RF_OP_NAME_
};

const char *rf_op_name(rf_op op) {
    return (int)op >= 0 && op < RF_OP__COUNT ? op_names[op] : NULL;
}

bool rf_op_has_row(rf_op op) { return (int)op >= 0 && op < RF_OP__COUNT && rows[op].tx; }

const struct rf_op_row *rf_op_row(rf_op op) {
    RF_ASSERT(rf_op_has_row(op));
    const struct rf_op_row *row = &rows[op];
    RF_ASSERT(row->req_size > 0 && row->res_size > 0 && row->n_fields <= RF_HTTP_FIELDS_MAX);
    RF_ASSERT(row->write || !row->codec); /* only writes store a result */
    RF_ASSERT(row->n_extras <= RF_OP_EXTRAS_MAX);
    return row;
}

/* ---- rf_op_run ----------------------------------------------------------------- */

struct op_call {
    const struct rf_op_row *row;
    const void *req;
    void *res;
};

/* Every attempt (the executor retries) starts from a zeroed result; a
 * page keeps its items, which list_page_run empties. */
static rf_err op_exec(struct rf_tx *tx, void *ctx) {
    struct op_call *c = ctx;
    if (!c->row->page_item_size) {
        if (c->row->res_clear) c->row->res_clear(c->res);
        memset(c->res, 0, c->row->res_size);
    }
    rf_err err = c->row->tx(tx, c->req, c->res);
    if (c->row->page_item_size && !err) {
        const struct list_out *pg = c->res;
        RF_ASSERT(pg->n >= 0 && pg->n <= core_limit((int)((const struct rf_list_req *)c->req)->limit));
    }
    return err;
}

/* A list's items, allocated before the read is queued (never inside the
 * transaction): as many as the request may get. */
static rf_err page_alloc(const struct rf_op_row *row, const void *req, void *res) {
    int limit = core_limit((int)((const struct rf_list_req *)req)->limit);
    struct list_out *pg = res;
    pg->items = calloc((size_t)limit, row->page_item_size);
    return pg->items ? RF_OK : RF_ERR_NOMEM;
}

static rf_err op_validate(const struct rf_op_row *row, const void *req, struct rf_fault *fault) {
    rf_err err = rf_fields_check(row->fields, row->n_fields, req, fault);
    if (!err && row->check) err = row->check(req, fault);
    return err;
}

/* What a failure shows: its code (a validation fault keeps its own), the
 * row's extras, the row's explanation. */
static void op_explain(const struct rf_op_row *row, const void *req, const void *res, rf_err err,
                       struct rf_fault *fault) {
    if (fault->code == RF_OK) fault->code = err;
    int k = 0;
    for (size_t i = 0; i < row->n_extras; i++) {
        const struct rf_op_extra *x = &row->extras[i];
        if (x->err != err) continue;
        const char *v = x->of_result ? (const char *)res + x->offset
                                     : *(const char *const *)((const char *)req + x->offset);
        if (!v || !*v) continue;
        fault->extra[k].name = x->name;
        snprintf(fault->extra[k].value, sizeof fault->extra[k].value, "%s", v);
        k++;
    }
    if (row->explain) row->explain(req, res, err, fault);
}

static rf_err op_submit(rf *db, rf_op op, const struct rf_op_row *row, struct op_call *call,
                        struct rf_idem *idem, struct rf_fault *fault) {
    if (!row->write) return core_read(db, rf_op_name(op), op_exec, call);
    if (!idem || !idem->key) return core_write(db, rf_op_name(op), op_exec, call, NULL, NULL);
    if (!row->codec) {
        rf_fault_set(fault, RF_ERR_INVALID, NULL, "%s takes no Idempotency-Key", rf_op_name(op));
        return RF_ERR_INVALID;
    }
    if (row->seal && !idem->seal_secret) {
        rf_fault_set(fault, RF_ERR_INVALID, NULL,
                     "%s answers a secret: an Idempotency-Key needs seal_secret", rf_op_name(op));
        return RF_ERR_INVALID;
    }
    struct core_result r = {row->codec, call->res, row->res_size, row->res_clear, row->seal};
    return core_write_result(db, rf_op_name(op), op_exec, call, &r, idem);
}

rf_err rf_op_run(rf *db, rf_op op, const void *req, void *res, struct rf_idem *idem,
                 struct rf_fault *fault) {
    RF_ASSERT(db && req && res);
    const struct rf_op_row *row = rf_op_row(op);
    struct rf_fault scratch;
    if (!fault) fault = &scratch;
    memset(fault, 0, sizeof *fault);
    memset(res, 0, row->res_size);
    if (idem) idem->replayed = false;
    struct op_call call = {row, req, res};
    rf_err err = op_validate(row, req, fault);
    if (!err && row->page_item_size) err = page_alloc(row, req, res);
    if (!err) err = op_submit(db, op, row, &call, idem, fault);
    if (err) {
        op_explain(row, req, res, err, fault);
        if (row->res_clear) row->res_clear(res);
        memset(res, 0, row->res_size);
    }
    RF_ASSERT(err || fault->code == RF_OK);
    return err;
}

rf_err rf_op_run_tx(struct rf_tx *tx, rf_op op, const void *req, void *res,
                    struct rf_fault *fault) {
    RF_ASSERT(tx && req && res && fault);
    const struct rf_op_row *row = rf_op_row(op);
    RF_ASSERT(row->write); /* composed inside a write */
    struct op_call call = {row, req, res};
    rf_err err = op_validate(row, req, fault);
    if (!err) err = op_exec(tx, &call);
    if (err) op_explain(row, req, res, err, fault);
    return err;
}
