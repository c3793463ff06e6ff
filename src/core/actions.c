/*
 * actions.c - racefree operations described as data, for approvals: parsed
 * and validated at creation (so an approval never holds an action that
 * cannot run for a reason visible up front), executed inside the approving
 * transaction by calling the flow's own composable operation.
 *
 *   {"type": "transfer", "debit_account", "credit_account", "amount_minor",
 *    "currency", "pending"?, "reference"?, "metadata"?}
 *   {"type": "entitlement_grant", "user_id", "key", "source"?, "expires_at"?,
 *    "metadata"?}
 *   {"type": "payout", "account", "amount_minor", "currency",
 *    "destination": {"provider", "ref"}, "metadata"?, "max_attempts"?}
 */
#include "core/actions.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/limits.h"

enum field_kind { K_ID, K_STR, K_INT, K_BOOL, K_TIME, K_OBJ, K_CUR };

struct field {
    const char *name;
    enum field_kind kind;
    bool required;
};

static const struct field transfer_fields[] = {
    {"debit_account", K_ID, true}, {"credit_account", K_ID, true},
    {"amount_minor", K_INT, true}, {"currency", K_CUR, true},
    {"pending", K_BOOL, false},    {"reference", K_ID, false},
    {"metadata", K_OBJ, false},
};
static const struct field grant_fields[] = {
    {"user_id", K_ID, true},      {"key", K_ID, true},       {"source", K_STR, false},
    {"expires_at", K_TIME, false}, {"metadata", K_OBJ, false},
};
static const struct field payout_fields[] = {
    {"account", K_ID, true},       {"amount_minor", K_INT, true}, {"currency", K_CUR, true},
    {"destination", K_OBJ, true},  {"metadata", K_OBJ, false},    {"max_attempts", K_INT, false},
};
static const struct field destination_fields[] = {
    {"provider", K_ID, true},
    {"ref", K_ID, true},
};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static bool kind_ok(json_t *v, enum field_kind kind) {
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    int64_t ms;
    switch (kind) {
    case K_ID: return s && rf_id_valid(s);
    case K_STR: return s && rf_utf8_chars(s) <= RF_SOURCE_CHARS_MAX;
    case K_INT: return json_is_integer(v) && json_integer_value(v) > 0;
    case K_BOOL: return json_is_boolean(v);
    case K_TIME: return s && rf_time_parse(s, &ms) && ms > 0;
    case K_OBJ: return json_is_object(v);
    case K_CUR: return s && ledger_currency_valid(s);
    }
    return false;
}

/* Every member known and well typed, every required one present. */
static bool check_fields(json_t *obj, const struct field *f, int n, const char *skip,
                         char *detail, size_t cap) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int i = 0;
        while (i < n && strcmp(f[i].name, key) != 0) i++;
        if (skip && strcmp(key, skip) == 0) continue;
        if (i == n) return snprintf(detail, cap, "action: unknown field '%s'", key), false;
        if (!json_is_null(v) && !kind_ok(v, f[i].kind))
            return snprintf(detail, cap, "action: field '%s' is not valid", key), false;
    }
    for (int i = 0; i < n; i++) {
        v = json_object_get(obj, f[i].name);
        if (f[i].required && (!v || json_is_null(v)))
            return snprintf(detail, cap, "action: field '%s' is required", f[i].name), false;
    }
    return true;
}

static const char *str(json_t *obj, const char *name) {
    json_t *v = json_object_get(obj, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Compact text of an optional object member, malloc'd (NULL when absent). */
static char *obj_text(json_t *obj, const char *name) {
    json_t *v = json_object_get(obj, name);
    return json_is_object(v) ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

void action_clear(struct action *a) {
    json_decref(a->root);
    free(a->metadata_json);
    memset(a, 0, sizeof *a);
}

/* An action naming a reserved account is refused up front, as the same
 * request would be on its own route (and again at execution, for an
 * approval stored before the namespace was reserved). */
static rf_err reserved(const char *field, char *detail, size_t cap) {
    snprintf(detail, cap, "action: field '%s' names an account racefree reserves for itself",
             field);
    return RF_ERR_RESERVED_ID;
}

static rf_err fill_transfer(struct action *a, json_t *o, char *detail, size_t cap) {
    struct rf_transfer_req *t = &a->transfer;
    t->debit_account = str(o, "debit_account");
    t->credit_account = str(o, "credit_account");
    t->amount_minor = json_integer_value(json_object_get(o, "amount_minor"));
    t->currency = str(o, "currency");
    t->pending = json_is_true(json_object_get(o, "pending"));
    t->reference = str(o, "reference");
    t->metadata_json = a->metadata_json = obj_text(o, "metadata");
    if (rf_account_id_flow_owned(t->debit_account)) return reserved("debit_account", detail, cap);
    if (rf_account_id_flow_owned(t->credit_account))
        return reserved("credit_account", detail, cap);
    return strcmp(t->debit_account, t->credit_account) == 0 ? RF_ERR_SAME_ACCOUNT : RF_OK;
}

static rf_err fill_grant(struct action *a, json_t *o) {
    struct rf_grant_req *g = &a->grant;
    g->user_id = str(o, "user_id");
    g->key = str(o, "key");
    g->source = str(o, "source");
    if (str(o, "expires_at")) rf_time_parse(str(o, "expires_at"), &g->expires_at_ms);
    g->metadata_json = a->metadata_json = obj_text(o, "metadata");
    return RF_OK;
}

static rf_err fill_payout(struct action *a, json_t *o, char *detail, size_t cap) {
    struct rf_payout_req *p = &a->payout;
    json_t *dest = json_object_get(o, "destination");
    if (!check_fields(dest, destination_fields, N_OF(destination_fields), NULL, detail, cap))
        return RF_ERR_INVALID;
    p->account = str(o, "account");
    if (rf_account_id_reserved(p->account)) return reserved("account", detail, cap);
    p->amount_minor = json_integer_value(json_object_get(o, "amount_minor"));
    p->currency = str(o, "currency");
    p->provider = str(dest, "provider");
    p->destination_ref = str(dest, "ref");
    json_int_t max = json_integer_value(json_object_get(o, "max_attempts"));
    if (max > RF_PAYOUT_MAX_ATTEMPTS_MAX) {
        snprintf(detail, cap, "action: max_attempts is at most %d", RF_PAYOUT_MAX_ATTEMPTS_MAX);
        return RF_ERR_INVALID;
    }
    p->max_attempts = (int)max;
    p->metadata_json = a->metadata_json = obj_text(o, "metadata");
    return RF_OK;
}

rf_err action_parse(const char *json, struct action *out, char *detail, size_t cap) {
    RF_ASSERT(out && detail && cap > 0);
    memset(out, 0, sizeof *out);
    detail[0] = '\0';
    json_error_t jerr;
    out->root = json ? json_loads(json, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    const char *type = out->root ? str(out->root, "type") : NULL;
    static const char *const types[] = {"transfer", "entitlement_grant", "payout"};
    static const struct field *const specs[] = {transfer_fields, grant_fields, payout_fields};
    static const int counts[] = {N_OF(transfer_fields), N_OF(grant_fields), N_OF(payout_fields)};
    int t = 0;
    while (type && t < 3 && strcmp(types[t], type) != 0) t++;
    if (!json_is_object(out->root) || !type || t == 3) {
        snprintf(detail, cap, "action: an object with type transfer, entitlement_grant or payout");
        action_clear(out);
        return RF_ERR_INVALID;
    }
    out->type = (enum action_type)t;
    rf_err err = check_fields(out->root, specs[t], counts[t], "type", detail, cap)
                     ? RF_OK : RF_ERR_INVALID;
    if (!err && t == ACTION_TRANSFER) err = fill_transfer(out, out->root, detail, cap);
    if (!err && t == ACTION_GRANT) err = fill_grant(out, out->root);
    if (!err && t == ACTION_PAYOUT) err = fill_payout(out, out->root, detail, cap);
    if (err == RF_ERR_SAME_ACCOUNT) snprintf(detail, cap, "action: the same account on both sides");
    if (err) action_clear(out);
    return err;
}

const char *action_type_name(enum action_type t) {
    static const char *const names[] = {"transfer", "entitlement_grant", "payout"};
    RF_ASSERT((int)t >= 0 && t <= ACTION_PAYOUT);
    return names[t];
}

/* ---- execution -------------------------------------------------------- */

static char *result_text(json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    return s;
}

rf_err action_execute(struct rf_tx *tx, const struct action *a, char **result_out) {
    RF_ASSERT(tx && a && result_out);
    *result_out = NULL;
    rf_err err = RF_OK;
    json_t *j = NULL;
    if (a->type == ACTION_TRANSFER) {
        struct rf_transfer_res res = {0};
        err = ledger_transfer(tx, &a->transfer, &res);
        if (!err) j = json_pack("{s:s, s:s, s:s}", "type", "transfer", "transfer_id",
                                res.transfer.id, "status", res.transfer.status);
        rf_transfer_clear(&res.transfer);
    } else if (a->type == ACTION_GRANT) {
        struct rf_grant_res res = {0};
        err = entitlement_grant_tx(tx, &a->grant, &res);
        if (!err) j = json_pack("{s:s, s:s, s:I, s:b}", "type", "entitlement_grant",
                                "entitlement_id", res.ent.id, "version",
                                (json_int_t)res.ent.version, "created", res.created);
        rf_entitlement_clear(&res.ent);
    } else {
        struct rf_payout res = {0};
        err = payout_create_tx(tx, &a->payout, &res);
        if (!err) j = json_pack("{s:s, s:s, s:s}", "type", "payout", "payout_id", res.id,
                                "hold_transfer_id", res.hold_transfer_id);
        rf_payout_clear(&res);
    }
    if (err) return err;
    *result_out = result_text(j);
    return *result_out ? RF_OK : RF_ERR_NOMEM;
}
