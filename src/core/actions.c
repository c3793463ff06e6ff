/*
 * actions.c - racefree operations described as data, for approvals (see
 * actions.h). An action is validated when the approval is created, by the
 * named operation's own field spec and rules, so an approval never holds an
 * action that the same request on its own route would refuse; at approval it
 * runs through the operation table inside the approving transaction.
 */
#include "core/actions.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "core/api.h"

const char *const action_type_names[] = {"transfer", "entitlement_grant", "payout", NULL};
_Static_assert(RF_ACTION_TRANSFER == 0 && RF_ACTION_ENTITLEMENT_GRANT == 1 && RF_ACTION_PAYOUT == 2,
               "action_type_names follows enum rf_action_type");
#define N_KINDS ((int)(sizeof action_type_names / sizeof action_type_names[0]) - 1)

/* The operation each action type runs. */
static const rf_op kind_ops[N_KINDS] = {
    [RF_ACTION_TRANSFER] = RF_OP_TRANSFER_CREATE,
    [RF_ACTION_ENTITLEMENT_GRANT] = RF_OP_ENTITLEMENT_GRANT,
    [RF_ACTION_PAYOUT] = RF_OP_PAYOUT_CREATE,
};

const char *rf_action_type_name(enum rf_action_type t) {
    return (int)t >= 0 && (int)t < N_KINDS ? action_type_names[t] : NULL;
}

bool action_type_parse(const char *name, enum rf_action_type *out) {
    for (int t = 0; name && t < N_KINDS; t++)
        if (strcmp(action_type_names[t], name) == 0) {
            *out = (enum rf_action_type)t;
            return true;
        }
    return false;
}

void action_clear(struct action *a) {
    rf_decoded_clear(&a->decoded);
    json_decref(a->root);
    memset(a, 0, sizeof *a);
}

/* The refusal as one sentence about the action. */
static rf_err refuse(struct action *a, rf_err err, const struct rf_fault *f, char *detail,
                     size_t cap) {
    if (err == RF_ERR_RESERVED_ID && f->param[0])
        snprintf(detail, cap,
                 "action: field '%s' names an account racefree reserves for itself", f->param);
    else if (err == RF_ERR_SAME_ACCOUNT)
        snprintf(detail, cap, "action: the same account on both sides");
    else if (f->detail[0])
        snprintf(detail, cap, "action: %s", f->detail);
    else
        snprintf(detail, cap, "action: %s", rf_err_code(err));
    action_clear(a);
    return err;
}

rf_err action_parse(const char *json, struct action *out, char *detail, size_t cap) {
    RF_ASSERT(out && detail && cap > 0);
    memset(out, 0, sizeof *out);
    detail[0] = '\0';
    out->root = json ? json_loads(json, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_t *type = json_object_get(out->root, "type");
    if (!json_is_object(out->root) || !action_type_parse(json_string_value(type), &out->type)) {
        snprintf(detail, cap, "action: an object with type transfer, entitlement_grant or payout");
        action_clear(out);
        return RF_ERR_INVALID;
    }
    const rf_op op = kind_ops[out->type];
    const struct rf_op_row *row = rf_op_row(op);
    RF_ASSERT(row->req_size <= sizeof out->req);
    struct rf_fault f = {0};
    /* The body's fields and those a route takes from its path (a grant's
     * user and key); never If-Match or the caller. */
    rf_err err = rf_fields_decode(out->root, row->fields, row->n_fields, RF_AT_BODY | RF_AT_PATH,
                                  "type", &out->req, &out->decoded, &f);
    if (!err) err = rf_op_check(op, &out->req, &f);
    return err ? refuse(out, err, &f, detail, cap) : RF_OK;
}

/* ---- execution -------------------------------------------------------- */

/* The action's result as the approval records it: what ran, by id. */
static json_t *result_json(enum rf_action_type t, const void *res) {
    const char *type = action_type_names[t];
    if (t == RF_ACTION_TRANSFER) {
        const struct rf_transfer_res *r = res;
        return json_pack("{s:s, s:s, s:s}", "type", type, "transfer_id", r->transfer.id,
                         "status", rf_transfer_status_name(r->transfer.status));
    }
    if (t == RF_ACTION_ENTITLEMENT_GRANT) {
        const struct rf_grant_res *r = res;
        return json_pack("{s:s, s:s, s:I, s:b}", "type", type, "entitlement_id", r->ent.id,
                         "version", (json_int_t)r->ent.version, "created", r->created);
    }
    const struct rf_payout *r = res;
    return json_pack("{s:s, s:s, s:s}", "type", type, "payout_id", r->id, "hold_transfer_id",
                     r->hold_transfer_id);
}

rf_err action_execute(struct rf_tx *tx, const struct action *a, char **result_out) {
    RF_ASSERT(tx && a && result_out && (int)a->type >= 0 && (int)a->type < N_KINDS);
    *result_out = NULL;
    const struct rf_op_row *row = rf_op_row(kind_ops[a->type]);
    union {
        struct rf_transfer_res transfer;
        struct rf_grant_res grant;
        struct rf_payout payout;
    } res;
    RF_ASSERT(row->res_size <= sizeof res);
    memset(&res, 0, sizeof res);
    struct rf_fault f = {0};
    rf_err err = rf_op_run_tx(tx, kind_ops[a->type], &a->req, &res, &f);
    json_t *j = err ? NULL : result_json(a->type, &res);
    if (row->res_clear) row->res_clear(&res);
    if (err) return err;
    *result_out = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    return *result_out ? RF_OK : RF_ERR_NOMEM;
}
