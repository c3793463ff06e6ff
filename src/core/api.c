/*
 * api.c - THE operation table (see api.h) and rf_op_run, the one path from
 * a typed request to a typed result: validate with the operation's field
 * spec and rules, run its transaction function as one transaction (with the
 * Idempotency-Key record in the same transaction), and on failure say what
 * was wrong. Everything here is data or the shared shape; the flows' logic
 * lives in their own files.
 */
#include "core/api.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"
#include "core/actions.h"
#include "core/announce.h"
#include "core/core.h"
#include "core/flows.h"
#include "core/ledger.h"
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
/* A fencing token: a lease's or a job claim's. */
#define F_TOKEN(T) RF_F(T, token, "token", RF_FIELD_INT, true, .min = 1, .max = INT64_MAX)
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
    RF_F(struct rf_key_create_req, rate_limit, "rate_limit", RF_FIELD_STRING, false, .min = 1,
         .max_len = RF_RATE_SPEC_CHARS_MAX),
};

/* rate_limit is "N/PERIOD", as `keys create --rate-limit` takes it. */
static rf_err key_create_check(const void *req, struct rf_fault *fault) {
    const struct rf_key_create_req *r = req;
    struct rf_rate_limit limit;
    char why[128];
    if (!r->rate_limit || rf_rate_limit_parse(r->rate_limit, &limit, why, sizeof why))
        return RF_OK;
    rf_fault_set(fault, RF_ERR_INVALID_FIELD, "rate_limit", "field 'rate_limit' %s", why);
    return RF_ERR_INVALID_FIELD;
}
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
    RF_MEMBER_ADDED(struct rf_key_created, key.rate_limit.quota, I64),
    RF_MEMBER_ADDED(struct rf_key_created, key.rate_limit.window_ms, I64),
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
    RF_MEMBER_NAMED(struct rf_grant_res, ent.status, ent_status_names),
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

/* ---- customers ------------------------------------------------------------- */

static const struct rf_field bind_fields[] = {
    F_ID(struct rf_bind_req, user_id, "user_id", RF_AT_PATH),
    F_ID(struct rf_bind_req, provider, "provider", RF_AT_PATH),
    F_ID(struct rf_bind_req, customer_id, "customer_id", RF_AT_BODY),
};
static const struct rf_field bind_get_fields[] = {
    F_ID(struct rf_bind_req, user_id, "user_id", RF_AT_PATH),
    F_ID(struct rf_bind_req, provider, "provider", RF_AT_PATH),
};
static const struct rf_field bind_lookup_fields[] = {
    F_ID(struct rf_bind_req, provider, "provider", RF_AT_PATH),
    F_ID(struct rf_bind_req, customer_id, "customer_id", RF_AT_PATH),
};
static const struct rf_field unbind_fields[] = {
    F_ID(struct rf_bind_req, user_id, "user_id", RF_AT_PATH),
    F_ID(struct rf_bind_req, provider, "provider", RF_AT_PATH),
    F_IF_MATCH(struct rf_bind_req, if_match_version),
};

/* 409 customer_binding_conflict names what is in the way: the customer the
 * user is bound to, and/or the user the customer is bound to. */
static const struct rf_op_extra bind_extras[] = {
    {RF_ERR_BINDING_CONFLICT, "existing_customer_id", true,
     offsetof(struct rf_bind_res, existing_customer_id)},
    {RF_ERR_BINDING_CONFLICT, "existing_user_id", true,
     offsetof(struct rf_bind_res, existing_user_id)},
};

static void bind_explain(const void *req, const void *res, rf_err err, struct rf_fault *fault) {
    (void)req;
    if (err != RF_ERR_BINDING_CONFLICT) return;
    const struct rf_bind_res *r = res;
    const char *cus = r->existing_customer_id, *user = r->existing_user_id;
    RF_ASSERT(cus[0] || user[0]); /* a conflict has a binding in the way */
    rf_fault_set(fault, err, NULL, "%s%s%s%s%s", cus[0] ? "the user is bound to customer " : "",
                 cus, cus[0] && user[0] ? "; " : "",
                 user[0] ? "the customer is bound to user " : "", user);
}

/* The table's 404 text speaks of the user; this lookup starts from the customer. */
static void lookup_explain(const void *req, const void *res, rf_err err, struct rf_fault *fault) {
    (void)req;
    (void)res;
    if (err == RF_ERR_BINDING_NOT_FOUND)
        rf_fault_set(fault, err, NULL, "No user is bound to this customer at this provider.");
}

/* ---- transfers and credits ------------------------------------------------- */

#define F_AMOUNT(T, required_) \
    RF_F(T, amount_minor, "amount_minor", RF_FIELD_INT, required_, .min = 1, .max = INT64_MAX)

static const struct rf_field transfer_fields[] = {
    F_ID(struct rf_transfer_req, debit_account, "debit_account", RF_AT_BODY),
    F_ID(struct rf_transfer_req, credit_account, "credit_account", RF_AT_BODY),
    F_AMOUNT(struct rf_transfer_req, true),
    RF_F(struct rf_transfer_req, currency, "currency", RF_FIELD_CURRENCY, true, .max_len = 3),
    RF_F(struct rf_transfer_req, pending, "pending", RF_FIELD_BOOL, false, .at = RF_AT_BODY),
    RF_F(struct rf_transfer_req, reference, "reference", RF_FIELD_ID, false,
         .max_len = RF_ID_CHARS_MAX),
    F_METADATA(struct rf_transfer_req, metadata_json),
    F_TIME(struct rf_transfer_req, expires_at_ms, "expires_at"),
};
static const struct rf_field transfer_get_fields[] = {
    F_ID(struct rf_transfer_ref, id, "id", RF_AT_PATH),
};
static const struct rf_field transfer_post_fields[] = {
    F_ID(struct rf_transfer_ref, id, "id", RF_AT_PATH),
    F_AMOUNT(struct rf_transfer_ref, false), /* absent: the whole hold */
};
static const struct rf_field credit_fields[] = {
    F_ID(struct rf_credit_req, id, "id", RF_AT_PATH),
    F_AMOUNT(struct rf_credit_req, true),
    RF_F(struct rf_credit_req, reason, "reason", RF_FIELD_STRING, false,
         .max_len = RF_REASON_CHARS_MAX),
};

/* RF_ERR_RESERVED_ID naming the field that names a reserved account. */
static rf_err reserved_id(struct rf_fault *fault, const char *param) {
    rf_fault_set(fault, RF_ERR_RESERVED_ID, param, "%s", "");
    return RF_ERR_RESERVED_ID;
}

/* expires_at only with a hold (no param: the answer was always without). */
static rf_err transfer_body_check(const void *req, struct rf_fault *fault) {
    const struct rf_transfer_req *r = req;
    if (!r->expires_at_ms || r->pending) return RF_OK;
    rf_fault_set(fault, RF_ERR_INVALID_FIELD, NULL,
                 "field 'expires_at' is for pending transfers only (\"pending\": true)");
    return RF_ERR_INVALID;
}

/* A client's transfer, in the order they were always reported: two
 * different accounts, and neither an account only its own flow moves
 * (payouts:*; payouts place their holds through ledger.h). */
static rf_err transfer_check(const void *req, struct rf_fault *fault) {
    const struct rf_transfer_req *r = req;
    if (strcmp(r->debit_account, r->credit_account) == 0) return RF_ERR_SAME_ACCOUNT;
    if (rf_account_id_flow_owned(r->debit_account)) return reserved_id(fault, "debit_account");
    if (rf_account_id_flow_owned(r->credit_account)) return reserved_id(fault, "credit_account");
    return RF_OK;
}

/* A credit comes from the system accounts: it may not credit one. */
static rf_err credit_check(const void *req, struct rf_fault *fault) {
    const struct rf_credit_req *r = req;
    return rf_account_id_reserved(r->id) ? reserved_id(fault, "id") : RF_OK;
}

/* The post's one invalid_request past its fields: more than the hold. */
static void post_explain(const void *req, const void *res, rf_err err, struct rf_fault *fault) {
    (void)res;
    const struct rf_transfer_ref *r = req;
    if (err == RF_ERR_INVALID && fault->code == RF_ERR_INVALID && !fault->detail[0] &&
        r->amount_minor)
        rf_fault_set(fault, RF_ERR_INVALID, NULL,
                     "amount_minor is more than the pending transfer holds");
}

static const struct rf_op_extra transfer_extras[] = {
    {RF_ERR_DUPLICATE_REFERENCE, "existing_transfer_id", true,
     offsetof(struct rf_transfer_res, existing_id)},
};

static const struct rf_member transfer_members[] = {
    RF_MEMBER(struct rf_transfer_res, transfer.id, CHARS),
    RF_MEMBER(struct rf_transfer_res, transfer.debit_account, CHARS),
    RF_MEMBER(struct rf_transfer_res, transfer.credit_account, CHARS),
    RF_MEMBER(struct rf_transfer_res, transfer.amount_minor, I64),
    RF_MEMBER(struct rf_transfer_res, transfer.posted_amount_minor, I64),
    RF_MEMBER(struct rf_transfer_res, transfer.currency, CHARS),
    RF_MEMBER_NAMED(struct rf_transfer_res, transfer.status, ledger_transfer_statuses),
    RF_MEMBER(struct rf_transfer_res, transfer.pending, BOOL),
    RF_MEMBER(struct rf_transfer_res, transfer.reference, TEXT),
    RF_MEMBER(struct rf_transfer_res, transfer.metadata_json, TEXT),
    RF_MEMBER(struct rf_transfer_res, transfer.expires_at_ms, I64),
    RF_MEMBER(struct rf_transfer_res, transfer.created_at_ms, I64),
    RF_MEMBER(struct rf_transfer_res, transfer.resolved_at_ms, I64),
    RF_MEMBER(struct rf_transfer_res, transfer.version, I64),
};
static const struct rf_codec transfer_codec = RF_CODEC(transfer_members);
_Static_assert(sizeof(enum rf_transfer_status) == sizeof(int),
               "a transfer's status is stored as an enum (int) member");

static void transfer_res_clear(void *res) {
    rf_transfer_clear(&((struct rf_transfer_res *)res)->transfer);
}
static void transfer_clear(void *res) { rf_transfer_clear(res); }

/* Every write of a transfer answers one, stored for its Idempotency-Key. */
/* A committed transfer that moved a system account: they exist for good. */
static void transfer_committed(rf *db, const void *req, const void *res) {
    (void)req;
    ledger_transfer_committed(db, &((const struct rf_transfer_res *)res)->transfer);
}

#define TRANSFER_WRITE(fields_, req_t, tx_)                                                   \
    .write = true, FIELDS(fields_), .req_size = sizeof(req_t), .tx = (tx_),                   \
    .res_size = sizeof(struct rf_transfer_res), .res_clear = transfer_res_clear,              \
    .codec = &transfer_codec, .committed = transfer_committed
/* ---- accounts ------------------------------------------------------------- */

/* A committed account: its creation made its currency's system accounts. */
static void account_committed(rf *db, const void *req, const void *res) {
    (void)req;
    ledger_system_committed(db, ((const struct rf_account_res *)res)->account.currency);
}

/* kind comes last: a bad kind has always been reported after every other
 * field (absent: user). */
static const struct rf_field account_create_fields[] = {
    RF_F(struct rf_account_req, id, "id", RF_FIELD_ID, false, .max_len = RF_ID_CHARS_MAX),
    RF_F(struct rf_account_req, currency, "currency", RF_FIELD_CURRENCY, true),
    RF_F(struct rf_account_req, allow_negative, "allow_negative", RF_FIELD_BOOL, false),
    F_METADATA(struct rf_account_req, metadata_json),
    RF_F(struct rf_account_req, kind, "kind", RF_FIELD_CHOICE, false,
         .choices = ledger_account_kinds, .choice_text = "user or system"),
};
static const struct rf_field account_get_fields[] = {
    F_ID(struct rf_account_ref, id, "id", RF_AT_PATH),
};
/* No ?status=; the cursor is an entry's seq (its form is checked in the
 * transaction, after the account is found). */
static const struct rf_field account_entries_fields[] = {
    F_ID(struct rf_list_req, scope, "id", RF_AT_PATH),
    F_LIST_QUERY(1),
};

/* Every account and every transfer: ?kind= / ?status= take the list's
 * status slot (struct rf_list_req comes first in each request), the rest
 * are filters. */
_Static_assert(offsetof(struct rf_account_list_req, list) == 0 &&
                   offsetof(struct rf_transfer_list_req, list) == 0,
               "a filtered list's request starts with the list's");
#define F_FILTER(T, member, name_, type_, ...) \
    RF_F(T, member, name_, type_, false, .at = RF_AT_FILTER, __VA_ARGS__)
static const struct rf_field account_list_fields[] = {
    F_LIST_QUERY(RF_ACCOUNTS_SYSTEM + 1),
    F_FILTER(struct rf_account_list_req, currency, "currency", RF_FIELD_CURRENCY, .max_len = 3),
};
static const struct rf_field transfer_list_fields[] = {
    F_LIST_QUERY(RF_TRANSFERS_VOIDED + 1),
    F_FILTER(struct rf_transfer_list_req, account, "account", RF_FIELD_ID,
             .max_len = RF_ID_CHARS_MAX),
    F_FILTER(struct rf_transfer_list_req, currency, "currency", RF_FIELD_CURRENCY, .max_len = 3),
    F_FILTER(struct rf_transfer_list_req, created_after_ms, "created_after", RF_FIELD_TIME,
             .max_len = 0),
    F_FILTER(struct rf_transfer_list_req, created_before_ms, "created_before", RF_FIELD_TIME,
             .max_len = 0),
};

/* An id in a namespace racefree reserves for its system accounts
 * (funding:*, payouts:*): no client creates one. */
static rf_err account_create_check(const void *req, struct rf_fault *fault) {
    if (!rf_account_id_reserved(((const struct rf_account_req *)req)->id)) return RF_OK;
    rf_fault_set(fault, RF_ERR_RESERVED_ID, "id", "%s", ""); /* the code's own detail */
    return RF_ERR_RESERVED_ID;
}

static const struct rf_member account_members[] = {
    RF_MEMBER(struct rf_account_res, account.id, CHARS),
    RF_MEMBER(struct rf_account_res, account.currency, CHARS),
    RF_MEMBER(struct rf_account_res, account.kind, INT),
    RF_MEMBER(struct rf_account_res, account.allow_negative, BOOL),
    RF_MEMBER(struct rf_account_res, account.metadata_json, TEXT),
    RF_MEMBER(struct rf_account_res, account.posted, I64),
    RF_MEMBER(struct rf_account_res, account.pending_debits, I64),
    RF_MEMBER(struct rf_account_res, account.pending_credits, I64),
    RF_MEMBER(struct rf_account_res, account.available, I64),
    RF_MEMBER(struct rf_account_res, account.version, I64),
    RF_MEMBER(struct rf_account_res, account.created_at_ms, I64),
    RF_MEMBER(struct rf_account_res, account.updated_at_ms, I64),
    RF_MEMBER(struct rf_account_res, created, BOOL),
};
static const struct rf_codec account_codec = RF_CODEC(account_members);
_Static_assert(sizeof(enum rf_account_kind) == sizeof(int), "a kind is stored as an INT member");

static void account_res_clear(void *res) {
    rf_account_clear(&((struct rf_account_res *)res)->account);
}
static void account_clear(void *res) { rf_account_clear(res); }
static void entry_page_clear(void *res) { rf_entry_page_clear(res); }
static void account_page_clear(void *res) { rf_account_page_clear(res); }
static void transfer_page_clear(void *res) { rf_transfer_page_clear(res); }
/* ---- payouts ------------------------------------------------------------- */

static const struct rf_field payout_destination_fields[] = {
    F_ID(struct rf_payout_req, provider, "provider", RF_AT_BODY),
    F_ID(struct rf_payout_req, destination_ref, "ref", RF_AT_BODY),
};
static const struct rf_field payout_create_fields[] = {
    F_ID(struct rf_payout_req, account, "account", RF_AT_BODY),
    RF_F(struct rf_payout_req, amount_minor, "amount_minor", RF_FIELD_INT, true, .min = 1,
         .max = INT64_MAX),
    RF_F(struct rf_payout_req, currency, "currency", RF_FIELD_CURRENCY, true),
    RF_F(struct rf_payout_req, provider, "destination", RF_FIELD_NESTED, true,
         .max_len = RF_METADATA_BYTES_MAX, .sub = payout_destination_fields,
         .n_sub = N_OF(payout_destination_fields)),
    F_METADATA(struct rf_payout_req, metadata_json),
    RF_F(struct rf_payout_req, max_attempts, "max_attempts", RF_FIELD_INT, false, .min = 1,
         .max = RF_PAYOUT_MAX_ATTEMPTS_MAX),
};
#define F_PAYOUT_ID F_ID(struct rf_payout_outcome_req, id, "id", RF_AT_PATH)
static const struct rf_field payout_ref_fields[] = {F_PAYOUT_ID};
static const struct rf_field payout_succeeded_fields[] = {
    F_PAYOUT_ID,
    F_ID(struct rf_payout_outcome_req, provider_payout_id, "provider_payout_id", RF_AT_BODY),
};
static const struct rf_field payout_failed_fields[] = {
    F_PAYOUT_ID,
    RF_F(struct rf_payout_outcome_req, reason, "reason", RF_FIELD_STRING, true, .min = 1,
         .max_len = RF_REASON_CHARS_MAX),
    RF_F(struct rf_payout_outcome_req, retryable, "retryable", RF_FIELD_BOOL, true),
};
static const struct rf_field payout_list_fields[] = {F_LIST_QUERY(RF_PAYOUT_FAILED + 1)};

/* A payout from a system account (funding:<CUR> may go negative; payouts:<CUR>
 * is the clearing account itself) would pay out money nobody holds. */
static rf_err payout_create_check(const void *req, struct rf_fault *fault) {
    if (!rf_account_id_reserved(((const struct rf_payout_req *)req)->account)) return RF_OK;
    rf_fault_set(fault, RF_ERR_RESERVED_ID, "account", "%s", "");
    return RF_ERR_RESERVED_ID;
}

static const struct rf_member payout_members[] = {
    RF_MEMBER(struct rf_payout, id, CHARS),
    RF_MEMBER(struct rf_payout, account, CHARS),
    RF_MEMBER(struct rf_payout, amount_minor, I64),
    RF_MEMBER(struct rf_payout, currency, CHARS),
    RF_MEMBER(struct rf_payout, provider, CHARS),
    RF_MEMBER(struct rf_payout, destination_ref, CHARS),
    RF_MEMBER_NAMED(struct rf_payout, status, payout_status_names),
    RF_MEMBER(struct rf_payout, hold_transfer_id, CHARS),
    RF_MEMBER(struct rf_payout, provider_idempotency_key, CHARS),
    RF_MEMBER(struct rf_payout, provider_payout_id, TEXT),
    RF_MEMBER(struct rf_payout, attempt_count, I64),
    RF_MEMBER(struct rf_payout, max_attempts, I64),
    RF_MEMBER(struct rf_payout, last_error, TEXT),
    RF_MEMBER(struct rf_payout, metadata_json, TEXT),
    RF_MEMBER(struct rf_payout, created_at_ms, I64),
    RF_MEMBER(struct rf_payout, updated_at_ms, I64),
    RF_MEMBER(struct rf_payout, version, I64),
};
static const struct rf_codec payout_codec = RF_CODEC(payout_members);

static void payout_clear(void *res) { rf_payout_clear(res); }
static void payout_page_clear(void *res) { rf_payout_page_clear(res); }

/* Every payout write: its result is the payout, stored for a replay. */
#define PAYOUT_WRITE(spec, tx_)                                                              \
    {.write = true, FIELDS(spec), .req_size = sizeof(struct rf_payout_outcome_req),          \
     .tx = tx_, .res_size = sizeof(struct rf_payout), .res_clear = payout_clear,             \
     .codec = &payout_codec}

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
PAGE_SHAPE(struct rf_account_page);
PAGE_SHAPE(struct rf_transfer_page);

/* ---- approvals ------------------------------------------------------------ */

static const struct rf_field approval_create_fields[] = {
    RF_F(struct rf_approval_req, action_json, "action", RF_FIELD_OBJECT, true,
         .max_len = RF_METADATA_BYTES_MAX),
    F_ID(struct rf_approval_req, requested_by, "requested_by", RF_AT_BODY),
    F_TIME(struct rf_approval_req, expires_at_ms, "expires_at"),
    RF_F(struct rf_approval_req, require_distinct_approver, "require_distinct_approver",
         RF_FIELD_BOOL, false, .min = 1), /* absent: true */
    F_METADATA(struct rf_approval_req, metadata_json),
    RF_F(struct rf_approval_req, requested_key, "requested_key", RF_FIELD_ID, false,
         .max_len = RF_ID_CHARS_MAX, .at = RF_AT_CALLER),
};
static const struct rf_field approval_get_fields[] = {
    F_ID(struct rf_approval_ref, id, "id", RF_AT_PATH),
};
/* Who acts is the calling key, recorded on the approval (core/approvals.c
 * judges self-approval by it); the body's name is a label. */
#define F_CALLER_KEY                                                                  \
    RF_F(struct rf_approval_ref, caller_key, "caller_key", RF_FIELD_ID, false,       \
         .max_len = RF_ID_CHARS_MAX, .at = RF_AT_CALLER)
static const struct rf_field approval_approve_fields[] = {
    F_ID(struct rf_approval_ref, id, "id", RF_AT_PATH),
    F_ID(struct rf_approval_ref, by, "approved_by", RF_AT_BODY),
    F_CALLER_KEY,
    F_IF_MATCH(struct rf_approval_ref, if_match_version),
};
static const struct rf_field approval_reject_fields[] = {
    F_ID(struct rf_approval_ref, id, "id", RF_AT_PATH),
    F_ID(struct rf_approval_ref, by, "rejected_by", RF_AT_BODY),
    RF_F(struct rf_approval_ref, reason, "reason", RF_FIELD_STRING, false,
         .max_len = RF_REASON_CHARS_MAX, .min = 1),
    F_CALLER_KEY,
    F_IF_MATCH(struct rf_approval_ref, if_match_version),
};
/* Cancelling: who asks is the calling key and its role (an admin key may
 * cancel any approval; core/approvals.c decides). */
static const char *const caller_role_names[] = {"admin", "service", "worker", "readonly", NULL};
static const int caller_role_values[] = {RF_ROLE_ADMIN, RF_ROLE_SERVICE, RF_ROLE_WORKER,
                                  RF_ROLE_READONLY};
static const struct rf_field approval_cancel_fields[] = {
    F_ID(struct rf_approval_ref, id, "id", RF_AT_PATH),
    RF_F(struct rf_approval_ref, by, "cancelled_by", RF_FIELD_ID, false,
         .max_len = RF_ID_CHARS_MAX),
    F_CALLER_KEY,
    RF_F(struct rf_approval_ref, caller_role, "caller_role", RF_FIELD_CHOICE, false,
         .at = RF_AT_CALLER_ROLE, .choices = caller_role_names, .choice_values = caller_role_values,
         .choice_text = "admin, service, worker or readonly"),
    F_IF_MATCH(struct rf_approval_ref, if_match_version),
};
static const struct rf_field approval_list_fields[] = {
    F_LIST_QUERY(RF_APPROVAL_EXPIRED + 1),
};

/* The action's own fields are core/actions.c's to check: its sentence
 * ("action: unknown field 'x'") is the fault's detail, its error the code
 * (invalid_request; same_account, reserved_id for those rules). */
static rf_err approval_create_check(const void *req, struct rf_fault *fault) {
    struct action act;
    char detail[RF_FAULT_DETAIL_BYTES];
    rf_err err = action_parse(((const struct rf_approval_req *)req)->action_json, &act, detail,
                              sizeof detail);
    if (err) rf_fault_set(fault, err, NULL, "%s", detail);
    else action_clear(&act);
    return err;
}

static const struct rf_member approval_members[] = {
    RF_MEMBER(struct rf_approval, id, CHARS),
    RF_MEMBER_NAMED(struct rf_approval, status, approval_status_names),
    RF_MEMBER_NAMED(struct rf_approval, action_type, action_type_names),
    RF_MEMBER(struct rf_approval, action_json, TEXT),
    RF_MEMBER(struct rf_approval, requested_by, CHARS),
    RF_MEMBER(struct rf_approval, requested_key, CHARS),
    RF_MEMBER(struct rf_approval, require_distinct_approver, BOOL),
    RF_MEMBER(struct rf_approval, metadata_json, TEXT),
    RF_MEMBER(struct rf_approval, expires_at_ms, I64),
    RF_MEMBER(struct rf_approval, approved_by, CHARS),
    RF_MEMBER_ADDED(struct rf_approval, approved_key, CHARS),
    RF_MEMBER(struct rf_approval, approved_at_ms, I64),
    RF_MEMBER(struct rf_approval, executed_at_ms, I64),
    RF_MEMBER(struct rf_approval, result_json, TEXT),
    RF_MEMBER(struct rf_approval, rejected_by, CHARS),
    RF_MEMBER_ADDED(struct rf_approval, rejected_key, CHARS),
    RF_MEMBER(struct rf_approval, rejected_at_ms, I64),
    RF_MEMBER(struct rf_approval, rejection_reason, TEXT),
    RF_MEMBER(struct rf_approval, cancelled_at_ms, I64),
    RF_MEMBER(struct rf_approval, created_at_ms, I64),
    RF_MEMBER(struct rf_approval, updated_at_ms, I64),
    RF_MEMBER(struct rf_approval, version, I64),
};
static const struct rf_codec approval_codec = RF_CODEC(approval_members);

static void approval_clear(void *res) { rf_approval_clear(res); }
static void approval_page_clear(void *res) { rf_approval_page_clear(res); }

/* Approve, reject and cancel: one shape, each its own fields and function. */
#define APPROVAL_TRANSITION(spec, fn)                                                      \
    {.write = true, FIELDS(spec), .req_size = sizeof(struct rf_approval_ref), .tx = fn,   \
     .res_size = sizeof(struct rf_approval), .res_clear = approval_clear,                 \
     .codec = &approval_codec}

/* ---- checkouts -------------------------------------------------------------- */

static const struct rf_field checkout_create_fields[] = {
    F_ID(struct rf_checkout_req, user_id, "user_id", RF_AT_BODY),
    RF_F(struct rf_checkout_req, currency, "currency", RF_FIELD_CURRENCY, true),
    F_AMOUNT(struct rf_checkout_req, true),
    F_ID(struct rf_checkout_req, provider, "provider", RF_AT_BODY),
    RF_F(struct rf_checkout_req, provider_ref, "provider_ref", RF_FIELD_ID, false,
         .max_len = RF_ID_CHARS_MAX),
    RF_F(struct rf_checkout_req, items_json, "items", RF_FIELD_ARRAY, true, .min = 1,
         .max = RF_CHECKOUT_ITEMS_MAX, .max_len = RF_CHECKOUT_ITEMS_BYTES_MAX),
    F_TIME(struct rf_checkout_req, expires_at_ms, "expires_at"),
    RF_F(struct rf_checkout_req, created_key, "created_key", RF_FIELD_ID, false,
         .max_len = RF_ID_CHARS_MAX, .at = RF_AT_CALLER),
};
static const struct rf_field checkout_get_fields[] = {
    F_ID(struct rf_checkout_ref, id, "id", RF_AT_PATH),
};
static const struct rf_field checkout_bind_fields[] = {
    F_ID(struct rf_checkout_ref, id, "id", RF_AT_PATH),
    F_ID(struct rf_checkout_ref, provider, "provider", RF_AT_BODY),
    F_ID(struct rf_checkout_ref, ref, "ref", RF_AT_BODY),
};
static const struct rf_field checkout_cancel_fields[] = {
    F_ID(struct rf_checkout_ref, id, "id", RF_AT_PATH),
    F_IF_MATCH(struct rf_checkout_ref, if_match_version),
    RF_F(struct rf_checkout_ref, caller_key, "caller_key", RF_FIELD_ID, false,
         .max_len = RF_ID_CHARS_MAX, .at = RF_AT_CALLER),
};
static const struct rf_field checkout_list_fields[] = {
    F_ID(struct rf_list_req, scope, "user_id", RF_AT_PATH),
    F_LIST_QUERY(RF_CHECKOUTS_REFUNDED + 1),
};

/* The two invalid_requests decided in the transaction: a checkout born
 * expired, a binding naming another provider than the checkout's. */
static void checkout_create_explain(const void *req, const void *res, rf_err err,
                                    struct rf_fault *fault) {
    (void)req;
    (void)res;
    if (err == RF_ERR_INVALID && !fault->detail[0])
        rf_fault_set(fault, RF_ERR_INVALID_FIELD, "expires_at", "expires_at is not in the future");
}
static void checkout_bind_explain(const void *req, const void *res, rf_err err,
                                  struct rf_fault *fault) {
    (void)req;
    const struct rf_checkout *c = res;
    if (err == RF_ERR_INVALID && !fault->detail[0])
        rf_fault_set(fault, RF_ERR_INVALID_FIELD, "provider", "the checkout's provider is %s",
                     c->provider);
}

static const struct rf_member checkout_members[] = {
    RF_MEMBER(struct rf_checkout, id, CHARS),
    RF_MEMBER(struct rf_checkout, user_id, CHARS),
    RF_MEMBER(struct rf_checkout, currency, CHARS),
    RF_MEMBER(struct rf_checkout, amount_minor, I64),
    RF_MEMBER(struct rf_checkout, provider, CHARS),
    RF_MEMBER(struct rf_checkout, provider_ref, CHARS),
    RF_MEMBER_NAMED(struct rf_checkout, status, checkout_status_names),
    RF_MEMBER(struct rf_checkout, items_json, TEXT),
    RF_MEMBER(struct rf_checkout, refund_shortfall_minor, I64),
    RF_MEMBER(struct rf_checkout, expires_at_ms, I64),
    RF_MEMBER(struct rf_checkout, created_key, CHARS),
    RF_MEMBER(struct rf_checkout, created_at_ms, I64),
    RF_MEMBER(struct rf_checkout, updated_at_ms, I64),
    RF_MEMBER(struct rf_checkout, version, I64),
};
static const struct rf_codec checkout_codec = RF_CODEC(checkout_members);
_Static_assert(sizeof(enum rf_checkout_status) == sizeof(int),
               "a checkout's status is stored as an enum (int) member");

static void checkout_clear(void *res) { rf_checkout_clear(res); }
static void checkout_page_clear(void *res) { rf_checkout_page_clear(res); }
PAGE_SHAPE(struct rf_checkout_page);

/* Every checkout write answers the checkout, stored for its Idempotency-Key. */
#define CHECKOUT_WRITE(spec, req_t, fn)                                                   \
    .write = true, FIELDS(spec), .req_size = sizeof(req_t), .tx = fn,                     \
    .res_size = sizeof(struct rf_checkout), .res_clear = checkout_clear,                  \
    .codec = &checkout_codec

/* ---- webhooks ------------------------------------------------------------- */

static const struct rf_field webhook_secret_set_fields[] = {
    F_ID(struct rf_webhook_secret_req, provider, "provider", RF_AT_PATH),
    RF_F(struct rf_webhook_secret_req, secret, "secret", RF_FIELD_STRING, true,
         .min = RF_WEBHOOK_SECRET_CHARS_MIN, .max_len = RF_WEBHOOK_SECRET_CHARS_MAX),
};
static const struct rf_field webhook_secret_rotate_fields[] = {
    F_ID(struct rf_webhook_secret_req, provider, "provider", RF_AT_PATH),
    RF_F(struct rf_webhook_secret_req, secret, "secret", RF_FIELD_STRING, true,
         .min = RF_WEBHOOK_SECRET_CHARS_MIN, .max_len = RF_WEBHOOK_SECRET_CHARS_MAX),
    RF_F(struct rf_webhook_secret_req, overlap_s, "overlap_seconds", RF_FIELD_INT, false,
         .min = 1, .max = RF_WEBHOOK_OVERLAP_S_MAX),
};
static const struct rf_field webhook_secret_list_fields[] = {
    F_LIST_QUERY(1), /* no ?status=: every provider */
};
/* A secret is what the provider's dashboard shows: printable ASCII. */
static rf_err webhook_secret_check(const void *req, struct rf_fault *fault) {
    const struct rf_webhook_secret_req *r = req;
    for (const char *c = r->secret; c && *c; c++)
        if (*c < 0x21 || *c > 0x7e) {
            rf_fault_set(fault, RF_ERR_INVALID, "secret",
                         "field 'secret' must be printable ASCII without spaces");
            return RF_ERR_INVALID;
        }
    return RF_OK;
}
static const struct rf_member webhook_secret_members[] = {
    RF_MEMBER(struct rf_webhook_secret, provider, CHARS),
    RF_MEMBER(struct rf_webhook_secret, primary_set_at_ms, I64),
    RF_MEMBER(struct rf_webhook_secret, previous_expires_at_ms, I64),
    RF_MEMBER(struct rf_webhook_secret, version, I64),
};
static const struct rf_codec webhook_secret_codec = RF_CODEC(webhook_secret_members);
static void webhook_secret_page_clear(void *res) { rf_webhook_secret_page_clear(res); }

/* A delivery: the provider is the path's; the signature header and the raw
 * body are not JSON fields (the body is the provider's, verified byte for
 * byte before it is read), so webhook_receive_check bounds them. */
static const struct rf_field webhook_receive_fields[] = {
    F_ID(struct rf_webhook_req, provider, "provider", RF_AT_PATH),
    RF_F(struct rf_webhook_req, tolerance_s, "tolerance_s", RF_FIELD_INT, false, .min = 1,
         .max = RF_WEBHOOK_TOLERANCE_S_MAX),
};
static rf_err webhook_receive_check(const void *req, struct rf_fault *fault) {
    const struct rf_webhook_req *r = req;
    (void)fault;
    if (!r->body && r->body_len) return RF_ERR_INVALID;
    if (!r->signature ||
        strnlen(r->signature, RF_WEBHOOK_SIG_HEADER_BYTES_MAX + 1) > RF_WEBHOOK_SIG_HEADER_BYTES_MAX)
        return RF_ERR_WEBHOOK_SIGNATURE_MALFORMED;
    return RF_OK;
}

static const struct rf_field webhook_event_list_fields[] = {
    F_LIST_QUERY(RF_WEBHOOK_EVENTS_DEFERRED + 1),
    F_FILTER(struct rf_webhook_event_list_req, provider, "provider", RF_FIELD_ID,
             .max_len = RF_ID_CHARS_MAX),
};
_Static_assert(offsetof(struct rf_webhook_event_list_req, list) == 0,
               "a filtered list's request starts with the list's");
static void webhook_event_page_clear(void *res) { rf_webhook_event_page_clear(res); }

#define WEBHOOK_SECRET_WRITE(spec, tx_)                                                   \
    {.write = true, FIELDS(spec), .req_size = sizeof(struct rf_webhook_secret_req),       \
     .body_check = webhook_secret_check, .tx = tx_,                                       \
     .res_size = sizeof(struct rf_webhook_secret), .codec = &webhook_secret_codec}

/* ---- leases and payout batches -------------------------------------------- */

#define F_LEASE_NAME F_ID(struct rf_lease_req, name, "name", RF_AT_PATH)
#define F_LEASE_TTL(required_)                                                            \
    RF_F(struct rf_lease_req, ttl_ms, "ttl_ms", RF_FIELD_INT, required_, .min = 1,       \
         .max = RF_LEASE_TTL_MS_LIMIT) /* the store's own maximum: in the transaction */
#define F_LEASE_TOKEN F_TOKEN(struct rf_lease_req)
static const struct rf_field lease_acquire_fields[] = {
    F_LEASE_NAME,
    F_ID(struct rf_lease_req, holder, "holder", RF_AT_BODY),
    F_LEASE_TTL(true),
};
static const struct rf_field lease_renew_fields[] = {F_LEASE_NAME, F_LEASE_TOKEN,
                                                     F_LEASE_TTL(false)};
static const struct rf_field lease_release_fields[] = {F_LEASE_NAME, F_LEASE_TOKEN};
static const struct rf_field lease_get_fields[] = {F_LEASE_NAME};

/* 409 lease_held names who holds it and until when. */
static const struct rf_op_extra lease_extras[] = {
    {RF_ERR_LEASE_HELD, "holder", true, offsetof(struct rf_lease, holder)},
    {RF_ERR_LEASE_HELD, "expires_at", true, offsetof(struct rf_lease, held_until)},
};

/* A ttl_ms past the configured maximum is decided in the transaction. */
static void lease_explain(const void *req, const void *res, rf_err err, struct rf_fault *fault) {
    (void)req;
    const struct rf_lease *l = res;
    if (err == RF_ERR_INVALID && l->ttl_max_ms > 0)
        rf_fault_set(fault, RF_ERR_INVALID_FIELD, "ttl_ms",
                     "field 'ttl_ms' must be at most %lld (the server's lease maximum)",
                     (long long)l->ttl_max_ms);
}

static const struct rf_member lease_members[] = {
    RF_MEMBER(struct rf_lease, name, CHARS),
    RF_MEMBER(struct rf_lease, holder, CHARS),
    RF_MEMBER(struct rf_lease, token, I64),
    RF_MEMBER(struct rf_lease, status, INT),
    RF_MEMBER(struct rf_lease, ttl_ms, I64),
    RF_MEMBER(struct rf_lease, acquired_at_ms, I64),
    RF_MEMBER(struct rf_lease, expires_at_ms, I64),
    RF_MEMBER(struct rf_lease, updated_at_ms, I64),
    RF_MEMBER(struct rf_lease, version, I64),
};
static const struct rf_codec lease_codec = RF_CODEC(lease_members);
_Static_assert(sizeof(enum rf_lease_status) == sizeof(int), "a lease status is an INT member");

#define LEASE_WRITE(spec, fn)                                                              \
    {.write = true, FIELDS(spec), .req_size = sizeof(struct rf_lease_req), .tx = fn,      \
     .res_size = sizeof(struct rf_lease), .codec = &lease_codec, EXTRAS(lease_extras),    \
     .explain = lease_explain}

static const struct rf_field payout_batch_get_fields[] = {
    F_ID(struct rf_payout_batch_ref, id, "id", RF_AT_PATH),
};

/* ---- the job queue and drop-in processing ---------------------------------- */

#define F_LEASE_MS(T) \
    RF_F(T, lease_ms, "lease_ms", RF_FIELD_INT, false, .min = RF_JOB_LEASE_MS_MIN, \
         .max = RF_JOB_LEASE_MS_MAX)

static const struct rf_field job_enqueue_fields[] = {
    RF_F(struct rf_job_req, queue, "queue", RF_FIELD_ID, true, .max_len = RF_JOB_QUEUE_CHARS_MAX),
    RF_F(struct rf_job_req, kind, "kind", RF_FIELD_ID, true, .max_len = RF_JOB_KIND_CHARS_MAX),
    RF_F(struct rf_job_req, payload_json, "payload", RF_FIELD_OBJECT, true,
         .max_len = RF_JOB_PAYLOAD_BYTES_MAX),
    RF_F(struct rf_job_req, unique_key, "unique_key", RF_FIELD_ID, false,
         .max_len = RF_ID_CHARS_MAX),
    F_TIME(struct rf_job_req, run_at_ms, "run_at"),
    RF_F(struct rf_job_req, max_attempts, "max_attempts", RF_FIELD_INT, false, .min = 1,
         .max = RF_JOB_ATTEMPTS_MAX),
    RF_F(struct rf_job_req, priority, "priority", RF_FIELD_INT, false, .min = 0,
         .max = RF_JOB_PRIORITY_MAX),
};
/* A queue named in the path: an id (the router checked), bounded here to a
 * queue name's length; too long is the path's fault (invalid_path_param). */
#define F_QUEUE_PATH(T) F_ID(T, queue, "queue", RF_AT_PATH)
static rf_err queue_path_check(const void *req, struct rf_fault *fault) {
    const char *q = ((const struct rf_job_claim_req *)req)->queue;
    if (q && strlen(q) <= RF_JOB_QUEUE_CHARS_MAX) return RF_OK;
    rf_fault_set(fault, RF_ERR_INVALID_PATH_PARAM, "queue",
                 "path parameter 'queue' must be an id of at most %d characters",
                 RF_JOB_QUEUE_CHARS_MAX);
    return RF_ERR_INVALID;
}

static const struct rf_field job_claim_fields[] = {
    F_QUEUE_PATH(struct rf_job_claim_req),
    F_ID(struct rf_job_claim_req, worker_id, "worker_id", RF_AT_BODY),
    F_LEASE_MS(struct rf_job_claim_req),
    RF_F(struct rf_job_claim_req, max_jobs, "max_jobs", RF_FIELD_INT, false, .min = 1,
         .max = RF_JOB_CLAIM_MAX),
};
static const struct rf_field queue_stats_fields[] = {
    F_QUEUE_PATH(struct rf_job_claim_req),
};
static const struct rf_field job_ref_fields[] = {
    F_ID(struct rf_job_ref, id, "id", RF_AT_PATH),
};
static const struct rf_field job_heartbeat_fields[] = {
    F_ID(struct rf_job_ref, id, "id", RF_AT_PATH),
    F_TOKEN(struct rf_job_ref),
    F_LEASE_MS(struct rf_job_ref),
};
static const struct rf_field job_complete_fields[] = {
    F_ID(struct rf_job_ref, id, "id", RF_AT_PATH),
    F_TOKEN(struct rf_job_ref),
    RF_F(struct rf_job_ref, result_json, "result", RF_FIELD_OBJECT, false,
         .max_len = RF_JOB_RESULT_BYTES_MAX),
};
static const struct rf_field job_fail_fields[] = {
    F_ID(struct rf_job_ref, id, "id", RF_AT_PATH),
    F_TOKEN(struct rf_job_ref),
    RF_F(struct rf_job_ref, error, "error", RF_FIELD_STRING, true, .min = 1,
         .max_len = RF_JOB_ERROR_CHARS_MAX),
    RF_F(struct rf_job_ref, retry_in_ms, "retry_in_ms", RF_FIELD_INT, false, .min = 1,
         .max = RF_JOB_RETRY_IN_MS_MAX),
};

/* The one invalid_request an enqueue decides in its transaction: the job's
 * start (the field named field) too far ahead. */
static void run_at_explain(rf_err err, const char *field, struct rf_fault *fault) {
    if (err == RF_ERR_INVALID && !fault->detail[0])
        rf_fault_set(fault, RF_ERR_INVALID_FIELD, field, "%s is at most %d days ahead", field,
                     (int)(RF_JOB_RUN_AT_AHEAD_MS_MAX / 86400000));
}

static void job_enqueue_explain(const void *req, const void *res, rf_err err,
                                struct rf_fault *fault) {
    (void)req;
    (void)res;
    run_at_explain(err, "run_at", fault);
}

static const struct rf_member job_members[] = {
    RF_MEMBER(struct rf_job, id, CHARS),
    RF_MEMBER(struct rf_job, queue, CHARS),
    RF_MEMBER(struct rf_job, kind, CHARS),
    RF_MEMBER(struct rf_job, payload_json, TEXT),
    RF_MEMBER(struct rf_job, unique_key, CHARS),
    RF_MEMBER_NAMED(struct rf_job, status, job_status_names),
    RF_MEMBER(struct rf_job, priority, I64),
    RF_MEMBER(struct rf_job, run_at_ms, I64),
    RF_MEMBER(struct rf_job, attempt, I64),
    RF_MEMBER(struct rf_job, max_attempts, I64),
    RF_MEMBER(struct rf_job, token, I64),
    RF_MEMBER(struct rf_job, worker_id, CHARS),
    RF_MEMBER(struct rf_job, lease_expires_at_ms, I64),
    RF_MEMBER(struct rf_job, lease_ms, I64),
    RF_MEMBER(struct rf_job, last_error, TEXT),
    RF_MEMBER(struct rf_job, result_json, TEXT),
    RF_MEMBER(struct rf_job, created_at_ms, I64),
    RF_MEMBER(struct rf_job, updated_at_ms, I64),
    RF_MEMBER(struct rf_job, finished_at_ms, I64),
    RF_MEMBER(struct rf_job, version, I64),
    RF_MEMBER(struct rf_job, created, BOOL),
};
static const struct rf_codec job_codec = RF_CODEC(job_members);
_Static_assert(sizeof(enum rf_job_status) == sizeof(int),
               "a job's status is stored as an enum (int) member");

static void job_clear(void *res) { rf_job_clear(res); }
static void job_page_clear(void *res) { rf_job_page_clear(res); }
PAGE_SHAPE(struct rf_job_page);

/* A worker's call on one job: the job after it, stored for its key. */
#define JOB_WRITE(spec, fn)                                                               \
    {.write = true, FIELDS(spec), .req_size = sizeof(struct rf_job_ref), .tx = fn,       \
     .res_size = sizeof(struct rf_job), .res_clear = job_clear, .codec = &job_codec}

static const struct rf_field dropin_process_fields[] = {
    F_ID(struct rf_dropin_req, photo_id, "photo_id", RF_AT_PATH),
};
static const struct rf_field dropin_match_fields[] = {
    F_ID(struct rf_dropin_req, photo_id, "photo_id", RF_AT_PATH),
    F_ID(struct rf_dropin_req, attendee_id, "attendee_id", RF_AT_PATH),
    F_ID(struct rf_dropin_req, face_id, "face_id", RF_AT_PATH),
    RF_F(struct rf_dropin_req, similarity_bp, "similarity_bp", RF_FIELD_INT, false, .min = 0,
         .max = RF_DROPIN_SIMILARITY_BP_MAX),
    F_METADATA(struct rf_dropin_req, metadata_json),
};
static const struct rf_field dropin_match_list_fields[] = {
    F_ID(struct rf_list_req, scope, "photo_id", RF_AT_PATH),
    F_LIST_QUERY(1), /* no ?status=: every match */
};
static void dropin_match_clear(void *res) { rf_dropin_match_clear(res); }
static void dropin_match_page_clear(void *res) { rf_dropin_match_page_clear(res); }
PAGE_SHAPE(struct rf_dropin_match_page);

/* ---- notifications ------------------------------------------------------------ */

static const struct rf_field notification_create_fields[] = {
    F_ID(struct rf_notification_req, user_id, "user_id", RF_AT_PATH),
    RF_F(struct rf_notification_req, kind, "kind", RF_FIELD_ID, true,
         .max_len = RF_NOTIFICATION_KIND_CHARS_MAX),
    RF_F(struct rf_notification_req, title, "title", RF_FIELD_STRING, true, .min = 1,
         .max_len = RF_NOTIFICATION_TITLE_CHARS_MAX),
    RF_F(struct rf_notification_req, body, "body", RF_FIELD_STRING, true,
         .max_len = RF_NOTIFICATION_BODY_CHARS_MAX),
    RF_F(struct rf_notification_req, data_json, "data", RF_FIELD_OBJECT, false,
         .max_len = RF_NOTIFICATION_DATA_BYTES_MAX),
    RF_F(struct rf_notification_req, dedupe_key, "dedupe_key", RF_FIELD_ID, false,
         .max_len = RF_NOTIFICATION_DEDUPE_CHARS_MAX),
};
static const struct rf_field notification_ref_fields[] = {
    F_ID(struct rf_notification_ref, user_id, "user_id", RF_AT_PATH),
    F_ID(struct rf_notification_ref, id, "id", RF_AT_PATH),
};
static const struct rf_field notification_user_fields[] = {
    F_ID(struct rf_notification_ref, user_id, "user_id", RF_AT_PATH),
};
static const struct rf_field notification_read_all_fields[] = {
    F_ID(struct rf_notification_ref, user_id, "user_id", RF_AT_PATH),
    F_ID(struct rf_notification_ref, up_to, "up_to", RF_AT_BODY),
};
/* ?unread=true: the unread ones; ?unread=false: the read ones; absent: all. */
static const char *const notification_unread_names[] = {"true", "false", NULL};
static const int notification_unread_values[] = {RF_NOTIFICATIONS_UNREAD, RF_NOTIFICATIONS_READ};
_Static_assert(offsetof(struct rf_notification_list_req, list) == 0,
               "a filtered list's request starts with the list's");
static const struct rf_field notification_list_fields[] = {
    F_ID(struct rf_list_req, scope, "user_id", RF_AT_PATH),
    F_LIST_QUERY(1), /* no ?status= */
    RF_F(struct rf_notification_list_req, unread, "unread", RF_FIELD_CHOICE, false,
         .at = RF_AT_FILTER, .choices = notification_unread_names,
         .choice_values = notification_unread_values, .choice_text = "true or false"),
};

static const struct rf_member notification_members[] = {
    RF_MEMBER(struct rf_notification, id, CHARS),
    RF_MEMBER(struct rf_notification, user_id, CHARS),
    RF_MEMBER(struct rf_notification, kind, CHARS),
    RF_MEMBER(struct rf_notification, title, TEXT),
    RF_MEMBER(struct rf_notification, body, TEXT),
    RF_MEMBER(struct rf_notification, data_json, TEXT),
    RF_MEMBER(struct rf_notification, dedupe_key, CHARS),
    RF_MEMBER(struct rf_notification, announcement_id, CHARS),
    RF_MEMBER(struct rf_notification, read_at_ms, I64),
    RF_MEMBER(struct rf_notification, created_at_ms, I64),
    RF_MEMBER(struct rf_notification, updated_at_ms, I64),
    RF_MEMBER(struct rf_notification, version, I64),
    RF_MEMBER(struct rf_notification, created, BOOL),
};
static const struct rf_codec notification_codec = RF_CODEC(notification_members);

static const struct rf_member notification_count_members[] = {
    RF_MEMBER(struct rf_notification_count, user_id, CHARS),
    RF_MEMBER(struct rf_notification_count, unread_count, I64),
    RF_MEMBER(struct rf_notification_count, marked, I64),
    RF_MEMBER(struct rf_notification_count, up_to, CHARS),
};
static const struct rf_codec notification_count_codec = RF_CODEC(notification_count_members);

static void notification_clear(void *res) { rf_notification_clear(res); }
static void notification_page_clear(void *res) { rf_notification_page_clear(res); }
/* A page with one member more (the unread count) after every page's. */
_Static_assert(offsetof(struct rf_notification_page, items) == offsetof(struct list_out, items) &&
                   offsetof(struct rf_notification_page, n) == offsetof(struct list_out, n) &&
                   offsetof(struct rf_notification_page, next) ==
                       offsetof(struct list_out, next),
               "struct rf_notification_page starts with the shape of every page");

/* A read of one notification or of the count. */
#define NOTIFICATION_OP(spec, fn)                                                           \
    {FIELDS(spec), .req_size = sizeof(struct rf_notification_ref), .tx = fn,               \
     .res_size = sizeof(struct rf_notification), .res_clear = notification_clear}
#define NOTIFICATION_COUNT_OP(spec, fn)                                                     \
    {FIELDS(spec), .req_size = sizeof(struct rf_notification_ref), .tx = fn,               \
     .res_size = sizeof(struct rf_notification_count)}
/* A change of the read state: its result stored for an Idempotency-Key. */
#define NOTIFICATION_MARK(spec, fn, res_type, clear, codec_)                               \
    {.write = true, FIELDS(spec), .req_size = sizeof(struct rf_notification_ref), .tx = fn, \
     .res_size = sizeof(res_type), .res_clear = clear, .codec = &(codec_)}
/* ---- announcements ---------------------------------------------------------- */

static const struct rf_field announcement_create_fields[] = {
    RF_F(struct rf_announcement_req, title, "title", RF_FIELD_STRING, true, .min = 1,
         .max_len = RF_ANNOUNCE_TITLE_CHARS_MAX),
    RF_F(struct rf_announcement_req, body, "body", RF_FIELD_STRING, true, .min = 1,
         .max_len = RF_ANNOUNCE_BODY_CHARS_MAX),
    RF_F(struct rf_announcement_req, audience_json, "audience", RF_FIELD_OBJECT, true,
         .max_len = RF_ANNOUNCE_AUDIENCE_BYTES_MAX),
    F_TIME(struct rf_announcement_req, send_at_ms, "send_at"),
};
static const struct rf_field announcement_ref_fields[] = {
    F_ID(struct rf_announcement_req, id, "id", RF_AT_PATH),
};

/* send_at is the fan-out job's run_at. */
static void announcement_create_explain(const void *req, const void *res, rf_err err,
                                        struct rf_fault *fault) {
    (void)req;
    (void)res;
    run_at_explain(err, "send_at", fault);
}

static const struct rf_member announcement_members[] = {
    RF_MEMBER(struct rf_announcement, id, CHARS),
    RF_MEMBER(struct rf_announcement, title, TEXT),
    RF_MEMBER(struct rf_announcement, body, TEXT),
    RF_MEMBER(struct rf_announcement, audience, CHARS),
    RF_MEMBER(struct rf_announcement, entitlement_key, CHARS),
    RF_MEMBER(struct rf_announcement, audience_size, I64),
    RF_MEMBER_NAMED(struct rf_announcement, state, announcement_state_names),
    RF_MEMBER(struct rf_announcement, fanout_done, BOOL),
    RF_MEMBER(struct rf_announcement, recipients, I64),
    RF_MEMBER(struct rf_announcement, pending, I64),
    RF_MEMBER(struct rf_announcement, delivered, I64),
    RF_MEMBER(struct rf_announcement, failed, I64),
    RF_MEMBER(struct rf_announcement, retries, I64),
    RF_MEMBER(struct rf_announcement, job_id, CHARS),
    RF_MEMBER(struct rf_announcement, send_at_ms, I64),
    RF_MEMBER(struct rf_announcement, created_at_ms, I64),
    RF_MEMBER(struct rf_announcement, updated_at_ms, I64),
    RF_MEMBER(struct rf_announcement, version, I64),
    RF_MEMBER(struct rf_announcement, created, BOOL),
};
static const struct rf_codec announcement_codec = RF_CODEC(announcement_members);
_Static_assert(sizeof(enum rf_announcement_state) == sizeof(int),
               "an announcement's state is stored as an enum (int) member");
static void announcement_clear(void *res) { rf_announcement_clear(res); }

#define ANNOUNCEMENT_ROW(spec, fn, write_)                                                  \
    .write = write_, FIELDS(spec), .req_size = sizeof(struct rf_announcement_req), .tx = fn, \
    .res_size = sizeof(struct rf_announcement), .res_clear = announcement_clear

/* ---- the table ------------------------------------------------------------- */

static const struct rf_op_row rows[RF_OP__COUNT] = {
    [RF_OP_KEY_CREATE] = {.write = true, FIELDS(key_create_fields), .check = key_create_check,
                          .req_size = sizeof(struct rf_key_create_req), .tx = op_key_create,
                          .res_size = sizeof(struct rf_key_created),
                          .res_clear = key_created_clear, .codec = &key_created_codec,
                          .seal = true},
    [RF_OP_KEY_REVOKE] = {.write = true, FIELDS(key_ref_fields), .committed = key_revoked,
                          .req_size = sizeof(struct rf_key_ref), .tx = op_key_revoke,
                          .res_size = sizeof(struct rf_key)},
    [RF_OP_KEY_GET] = {FIELDS(key_ref_fields), .req_size = sizeof(struct rf_key_ref),
                       .tx = op_key_get, .res_size = sizeof(struct rf_key)},
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

    [RF_OP_CUSTOMER_BIND] = {.write = true, FIELDS(bind_fields),
                             .req_size = sizeof(struct rf_bind_req), .tx = op_customer_bind,
                             .res_size = sizeof(struct rf_bind_res),
                             .created_offset = offsetof(struct rf_bind_res, created),
                             EXTRAS(bind_extras), .explain = bind_explain},
    [RF_OP_CUSTOMER_GET] = {FIELDS(bind_get_fields), .req_size = sizeof(struct rf_bind_req),
                            .tx = op_customer_get, .res_size = sizeof(struct rf_binding)},
    [RF_OP_CUSTOMER_LOOKUP] = {FIELDS(bind_lookup_fields), .req_size = sizeof(struct rf_bind_req),
                               .tx = op_customer_lookup, .res_size = sizeof(struct rf_binding),
                               .explain = lookup_explain},
    [RF_OP_CUSTOMER_UNBIND] = {.write = true, FIELDS(unbind_fields),
                               .req_size = sizeof(struct rf_bind_req), .tx = op_customer_unbind,
                               .res_size = sizeof(struct rf_binding)},
    [RF_OP_TRANSFER_CREATE] = {TRANSFER_WRITE(transfer_fields, struct rf_transfer_req,
                                              op_transfer_create),
                               .body_check = transfer_body_check, .check = transfer_check,
                               EXTRAS(transfer_extras)},
    [RF_OP_TRANSFER_GET] = {FIELDS(transfer_get_fields), .req_size = sizeof(struct rf_transfer_ref),
                            .tx = op_transfer_get, .res_size = sizeof(struct rf_transfer),
                            .res_clear = transfer_clear},
    [RF_OP_TRANSFER_POST] = {TRANSFER_WRITE(transfer_post_fields, struct rf_transfer_ref,
                                            op_transfer_post),
                             .explain = post_explain},
    [RF_OP_TRANSFER_VOID] = {TRANSFER_WRITE(transfer_get_fields, struct rf_transfer_ref,
                                            op_transfer_void)},
    [RF_OP_CREDIT_APPLY] = {TRANSFER_WRITE(credit_fields, struct rf_credit_req, op_credit_apply),
                            .check = credit_check},
    [RF_OP_APPROVAL_CREATE] = {.write = true, FIELDS(approval_create_fields),
                               .req_size = sizeof(struct rf_approval_req),
                               .check = approval_create_check, .tx = op_approval_create,
                               .res_size = sizeof(struct rf_approval),
                               .res_clear = approval_clear, .codec = &approval_codec},
    [RF_OP_APPROVAL_APPROVE] = APPROVAL_TRANSITION(approval_approve_fields, op_approval_approve),
    [RF_OP_APPROVAL_REJECT] = APPROVAL_TRANSITION(approval_reject_fields, op_approval_reject),
    [RF_OP_APPROVAL_CANCEL] = APPROVAL_TRANSITION(approval_cancel_fields, op_approval_cancel),
    [RF_OP_APPROVAL_GET] = {FIELDS(approval_get_fields),
                            .req_size = sizeof(struct rf_approval_ref), .tx = op_approval_get,
                            .res_size = sizeof(struct rf_approval), .res_clear = approval_clear},
    [RF_OP_APPROVAL_LIST] = {FIELDS(approval_list_fields), .req_size = sizeof(struct rf_list_req),
                             .tx = op_approval_list,
                             .res_size = sizeof(struct rf_approval_page),
                             .res_clear = approval_page_clear,
                             .page_item_size = sizeof(struct rf_approval)},
    [RF_OP_ACCOUNT_CREATE] = {.write = true, FIELDS(account_create_fields),
                              .req_size = sizeof(struct rf_account_req),
                              .check = account_create_check, .tx = op_account_create,
                              .res_size = sizeof(struct rf_account_res),
                              .res_clear = account_res_clear, .codec = &account_codec,
                              .created_offset = offsetof(struct rf_account_res, created),
                              .committed = account_committed},
    [RF_OP_ACCOUNT_GET] = {FIELDS(account_get_fields), .req_size = sizeof(struct rf_account_ref),
                           .tx = op_account_get, .res_size = sizeof(struct rf_account),
                           .res_clear = account_clear},
    [RF_OP_ACCOUNT_ENTRIES] = {FIELDS(account_entries_fields),
                               .req_size = sizeof(struct rf_list_req),
                               .tx = op_account_entries,
                               .res_size = sizeof(struct rf_entry_page),
                               .res_clear = entry_page_clear,
                               .page_item_size = sizeof(struct rf_entry)},
    [RF_OP_ACCOUNT_LIST] = {FIELDS(account_list_fields),
                            .req_size = sizeof(struct rf_account_list_req),
                            .tx = op_account_list, .res_size = sizeof(struct rf_account_page),
                            .res_clear = account_page_clear,
                            .page_item_size = sizeof(struct rf_account)},
    [RF_OP_TRANSFER_LIST] = {FIELDS(transfer_list_fields),
                             .req_size = sizeof(struct rf_transfer_list_req),
                             .tx = op_transfer_list, .res_size = sizeof(struct rf_transfer_page),
                             .res_clear = transfer_page_clear,
                             .page_item_size = sizeof(struct rf_transfer)},
    [RF_OP_PAYOUT_CREATE] = {.write = true, FIELDS(payout_create_fields),
                             .req_size = sizeof(struct rf_payout_req),
                             .check = payout_create_check, .tx = op_payout_create,
                             .res_size = sizeof(struct rf_payout), .res_clear = payout_clear,
                             .codec = &payout_codec},
    [RF_OP_PAYOUT_ATTEMPT] = PAYOUT_WRITE(payout_ref_fields, op_payout_attempt),
    [RF_OP_PAYOUT_SUCCEEDED] = PAYOUT_WRITE(payout_succeeded_fields, op_payout_succeeded),
    [RF_OP_PAYOUT_FAILED] = PAYOUT_WRITE(payout_failed_fields, op_payout_failed),
    [RF_OP_PAYOUT_GET] = {FIELDS(payout_ref_fields),
                          .req_size = sizeof(struct rf_payout_outcome_req),
                          .tx = op_payout_get, .res_size = sizeof(struct rf_payout),
                          .res_clear = payout_clear},
    [RF_OP_PAYOUT_LIST] = {FIELDS(payout_list_fields), .req_size = sizeof(struct rf_list_req),
                           .tx = op_payout_list, .res_size = sizeof(struct rf_payout_page),
                           .res_clear = payout_page_clear,
                           .page_item_size = sizeof(struct rf_payout)},
    [RF_OP_CHECKOUT_CREATE] = {CHECKOUT_WRITE(checkout_create_fields, struct rf_checkout_req,
                                              op_checkout_create),
                               .body_check = checkout_items_check,
                               .explain = checkout_create_explain},
    [RF_OP_CHECKOUT_BIND_REF] = {CHECKOUT_WRITE(checkout_bind_fields, struct rf_checkout_ref,
                                                op_checkout_bind_ref),
                                 .explain = checkout_bind_explain},
    [RF_OP_CHECKOUT_GET] = {FIELDS(checkout_get_fields), .req_size = sizeof(struct rf_checkout_ref),
                            .tx = op_checkout_get, .res_size = sizeof(struct rf_checkout),
                            .res_clear = checkout_clear},
    [RF_OP_CHECKOUT_LIST] = {FIELDS(checkout_list_fields), .req_size = sizeof(struct rf_list_req),
                             .tx = op_checkout_list, .res_size = sizeof(struct rf_checkout_page),
                             .res_clear = checkout_page_clear,
                             .page_item_size = sizeof(struct rf_checkout)},
    [RF_OP_CHECKOUT_CANCEL] = {CHECKOUT_WRITE(checkout_cancel_fields, struct rf_checkout_ref,
                                              op_checkout_cancel)},
    [RF_OP_WEBHOOK_SECRET_SET] = WEBHOOK_SECRET_WRITE(webhook_secret_set_fields,
                                                      op_webhook_secret_set),
    [RF_OP_WEBHOOK_SECRET_ROTATE] = WEBHOOK_SECRET_WRITE(webhook_secret_rotate_fields,
                                                         op_webhook_secret_rotate),
    [RF_OP_WEBHOOK_SECRET_LIST] = {FIELDS(webhook_secret_list_fields),
                                   .req_size = sizeof(struct rf_list_req),
                                   .tx = op_webhook_secret_list,
                                   .res_size = sizeof(struct rf_webhook_secret_page),
                                   .res_clear = webhook_secret_page_clear,
                                   .page_item_size = sizeof(struct rf_webhook_secret)},
    [RF_OP_WEBHOOK_RECEIVE] = {.write = true, FIELDS(webhook_receive_fields),
                               .req_size = sizeof(struct rf_webhook_req),
                               .check = webhook_receive_check, .tx = op_webhook_receive,
                               .res_size = sizeof(struct rf_webhook_res)},
    [RF_OP_WEBHOOK_EVENT_LIST] = {FIELDS(webhook_event_list_fields),
                                  .req_size = sizeof(struct rf_webhook_event_list_req),
                                  .tx = op_webhook_event_list,
                                  .res_size = sizeof(struct rf_webhook_event_page),
                                  .res_clear = webhook_event_page_clear,
                                  .page_item_size = sizeof(struct rf_webhook_event)},
    [RF_OP_LEASE_ACQUIRE] = LEASE_WRITE(lease_acquire_fields, op_lease_acquire),
    [RF_OP_LEASE_RENEW] = LEASE_WRITE(lease_renew_fields, op_lease_renew),
    [RF_OP_LEASE_RELEASE] = LEASE_WRITE(lease_release_fields, op_lease_release),
    [RF_OP_LEASE_GET] = {FIELDS(lease_get_fields), .req_size = sizeof(struct rf_lease_req),
                         .tx = op_lease_get, .res_size = sizeof(struct rf_lease)},
    [RF_OP_PAYOUT_BATCH_GET] = {FIELDS(payout_batch_get_fields),
                                .req_size = sizeof(struct rf_payout_batch_ref),
                                .tx = op_payout_batch_get,
                                .res_size = sizeof(struct rf_payout_batch)},
    [RF_OP_JOB_ENQUEUE] = {.write = true, FIELDS(job_enqueue_fields),
                           .req_size = sizeof(struct rf_job_req), .tx = op_job_enqueue,
                           .res_size = sizeof(struct rf_job), .res_clear = job_clear,
                           .codec = &job_codec,
                           .created_offset = offsetof(struct rf_job, created),
                           .explain = job_enqueue_explain},
    [RF_OP_JOB_CLAIM] = {.write = true, FIELDS(job_claim_fields),
                         .req_size = sizeof(struct rf_job_claim_req),
                         .check = queue_path_check, .tx = op_job_claim,
                         .res_size = sizeof(struct rf_job_page), .res_clear = job_page_clear},
    [RF_OP_JOB_HEARTBEAT] = JOB_WRITE(job_heartbeat_fields, op_job_heartbeat),
    [RF_OP_JOB_COMPLETE] = JOB_WRITE(job_complete_fields, op_job_complete),
    [RF_OP_JOB_FAIL] = JOB_WRITE(job_fail_fields, op_job_fail),
    [RF_OP_JOB_CANCEL] = JOB_WRITE(job_ref_fields, op_job_cancel),
    [RF_OP_JOB_GET] = {FIELDS(job_ref_fields), .req_size = sizeof(struct rf_job_ref),
                       .tx = op_job_get, .res_size = sizeof(struct rf_job),
                       .res_clear = job_clear},
    [RF_OP_QUEUE_STATS] = {FIELDS(queue_stats_fields), .req_size = sizeof(struct rf_job_claim_req),
                           .check = queue_path_check, .tx = op_queue_stats,
                           .res_size = sizeof(struct rf_queue_stats)},
    [RF_OP_DROPIN_PROCESS] = {.write = true, FIELDS(dropin_process_fields),
                              .req_size = sizeof(struct rf_dropin_req), .tx = op_dropin_process,
                              .res_size = sizeof(struct rf_job), .res_clear = job_clear,
                              .created_offset = offsetof(struct rf_job, created)},
    [RF_OP_DROPIN_MATCH_RECORD] = {.write = true, FIELDS(dropin_match_fields),
                                   .req_size = sizeof(struct rf_dropin_req),
                                   .tx = op_dropin_match_record,
                                   .res_size = sizeof(struct rf_dropin_match),
                                   .res_clear = dropin_match_clear,
                                   .created_offset = offsetof(struct rf_dropin_match, created)},
    [RF_OP_DROPIN_MATCH_LIST] = {FIELDS(dropin_match_list_fields),
                                 .req_size = sizeof(struct rf_list_req),
                                 .tx = op_dropin_match_list,
                                 .res_size = sizeof(struct rf_dropin_match_page),
                                 .res_clear = dropin_match_page_clear,
                                 .page_item_size = sizeof(struct rf_dropin_match)},
    [RF_OP_NOTIFICATION_CREATE] = {.write = true, FIELDS(notification_create_fields),
                                   .req_size = sizeof(struct rf_notification_req),
                                   .tx = op_notification_create,
                                   .res_size = sizeof(struct rf_notification),
                                   .res_clear = notification_clear, .codec = &notification_codec,
                                   .created_offset = offsetof(struct rf_notification, created)},
    [RF_OP_NOTIFICATION_GET] = NOTIFICATION_OP(notification_ref_fields, op_notification_get),
    [RF_OP_NOTIFICATION_LIST] = {FIELDS(notification_list_fields),
                                 .req_size = sizeof(struct rf_notification_list_req),
                                 .tx = op_notification_list,
                                 .res_size = sizeof(struct rf_notification_page),
                                 .res_clear = notification_page_clear,
                                 .page_item_size = sizeof(struct rf_notification)},
    [RF_OP_NOTIFICATION_UNREAD_COUNT] = NOTIFICATION_COUNT_OP(notification_user_fields,
                                                              op_notification_unread_count),
    [RF_OP_NOTIFICATION_READ] = NOTIFICATION_MARK(notification_ref_fields, op_notification_read,
                                                  struct rf_notification, notification_clear,
                                                  notification_codec),
    [RF_OP_NOTIFICATION_UNREAD] = NOTIFICATION_MARK(notification_ref_fields,
                                                    op_notification_unread,
                                                    struct rf_notification, notification_clear,
                                                    notification_codec),
    [RF_OP_NOTIFICATION_READ_ALL] = NOTIFICATION_MARK(notification_read_all_fields,
                                                      op_notification_read_all,
                                                      struct rf_notification_count, NULL,
                                                      notification_count_codec),
    [RF_OP_ANNOUNCEMENT_CREATE] = {ANNOUNCEMENT_ROW(announcement_create_fields,
                                                    op_announcement_create, true),
                                   .codec = &announcement_codec,
                                   .body_check = announcement_audience_check,
                                   .created_offset = offsetof(struct rf_announcement, created),
                                   .explain = announcement_create_explain},
    [RF_OP_ANNOUNCEMENT_GET] = {ANNOUNCEMENT_ROW(announcement_ref_fields, op_announcement_get,
                                                 false)},
    [RF_OP_ANNOUNCEMENT_RETRY_FAILED] = {ANNOUNCEMENT_ROW(announcement_ref_fields,
                                                         op_announcement_retry_failed, true),
                                         .codec = &announcement_codec},
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
    struct rf_facts *facts;   /* the caller's fault's: what a refusal depends on */
};

void core_fact_status(struct rf_tx *tx, const char *status) {
    if (tx->facts && status) rf_strcpy(tx->facts->status, sizeof tx->facts->status, status);
}

void core_fact_version(struct rf_tx *tx, int64_t version) {
    if (tx->facts) tx->facts->version = version;
}

void core_fact_available(struct rf_tx *tx, int64_t available, const char *currency) {
    if (!tx->facts) return;
    tx->facts->has_available = true;
    tx->facts->available = available;
    rf_strcpy(tx->facts->currency, sizeof tx->facts->currency, currency ? currency : "");
}

/* Every attempt (the executor retries) starts from a zeroed result; a
 * page keeps its items, which list_page_run empties. */
static rf_err op_exec(struct rf_tx *tx, void *ctx) {
    struct op_call *c = ctx;
    if (!c->row->page_item_size) {
        if (c->row->res_clear) c->row->res_clear(c->res);
        memset(c->res, 0, c->row->res_size);
    }
    /* An operation inside another's transaction (an approval's action)
     * records into the outer call's facts. */
    bool own_facts = !tx->facts;
    if (own_facts) {
        memset(c->facts, 0, sizeof *c->facts);
        tx->facts = c->facts;
    }
    rf_err err = c->row->tx(tx, c->req, c->res);
    if (own_facts) tx->facts = NULL;
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
    if (!err && row->body_check) err = row->body_check(req, fault);
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

/* A key the operation cannot take (checked before anything is queued): a
 * read or an operation that stores no result, a key or scope without text
 * or longer than a key may be, a sealed result without the caller's secret. */
static rf_err idem_refusal(rf_op op, const struct rf_op_row *row, const struct rf_idem *idem,
                           struct rf_fault *fault) {
    if (!row->write || !idem || !idem->key) return RF_OK;
    size_t key_len = strnlen(idem->key, RF_IDEM_KEY_CHARS_MAX + 1);
    if (key_len == 0 || key_len > RF_IDEM_KEY_CHARS_MAX) {
        rf_fault_set(fault, RF_ERR_INVALID, NULL, "an Idempotency-Key is 1..%d characters",
                     RF_IDEM_KEY_CHARS_MAX);
        return RF_ERR_INVALID;
    }
    size_t scope_len = idem->api_key_id ? strnlen(idem->api_key_id, RF_ID_CHARS_MAX + 1) : 0;
    if (scope_len == 0 || scope_len > RF_ID_CHARS_MAX) {
        rf_fault_set(fault, RF_ERR_INVALID, NULL,
                     "an Idempotency-Key needs api_key_id, the scope its keys are unique in "
                     "(1..%d characters; any fixed text, e.g. \"app\")", RF_ID_CHARS_MAX);
        return RF_ERR_INVALID;
    }
    if (!row->codec) {
        rf_fault_set(fault, RF_ERR_INVALID, NULL, "%s takes no Idempotency-Key", rf_op_name(op));
        return RF_ERR_INVALID;
    }
    if (row->seal && !idem->seal_secret) {
        rf_fault_set(fault, RF_ERR_INVALID, NULL,
                     "%s answers a secret: an Idempotency-Key needs seal_secret", rf_op_name(op));
        return RF_ERR_INVALID;
    }
    return RF_OK;
}

/* The Idempotency-Key record's view of the call's result (NULL: no key). */
static const struct core_result *keyed_result(const struct op_call *c, const struct rf_idem *idem,
                                              struct core_result *r) {
    if (!idem || !idem->key) return NULL;
    *r = (struct core_result){c->row->codec, c->res, c->row->res_size, c->row->res_clear,
                              c->row->seal};
    return r;
}

/* Both doors' first half: clean outputs, then everything that refuses the
 * call before the store is asked (fields, rules, the key), and a list's items. */
static rf_err op_begin(rf_op op, const struct op_call *c, struct rf_idem *idem,
                       struct rf_fault *fault) {
    memset(fault, 0, sizeof *fault);
    memset(c->res, 0, c->row->res_size);
    if (idem) idem->replayed = false;
    rf_err err = op_validate(c->row, c->req, fault);
    if (!err && c->row->page_item_size) err = page_alloc(c->row, c->req, c->res);
    if (!err) err = idem_refusal(op, c->row, idem, fault);
    return err;
}

/* Both doors' last half, once the outcome is known: what a commit makes
 * this process forget, or what a failure shows (and an empty result). */
static rf_err op_end(rf *db, const struct op_call *c, const struct rf_idem *idem, rf_err err,
                     struct rf_fault *fault) {
    const struct rf_op_row *row = c->row;
    if (!err && row->committed && !(idem && idem->replayed)) row->committed(db, c->req, c->res);
    if (!err) memset(&fault->facts, 0, sizeof fault->facts); /* a refused attempt's */
    if (err) {
        op_explain(row, c->req, c->res, err, fault);
        if (row->res_clear) row->res_clear(c->res);
        memset(c->res, 0, row->res_size);
    }
    RF_ASSERT(err || fault->code == RF_OK);
    return err;
}

/* The write's shard (exec_op.shard): a hash of its first identifying field
 * (an id or string the field spec names first: the user of a grant, the
 * account of a credit, the debit account of a transfer), so writes to one
 * natural key run on one committer in order and never wait on each other's
 * row locks across batches of one process. */
static uint32_t op_shard(const struct op_call *c) {
    const struct rf_op_row *row = c->row;
    for (size_t i = 0; i < row->n_fields; i++) {
        const struct rf_field *f = &row->fields[i];
        bool identifies = f->at == 0 || f->at == RF_AT_BODY || f->at == RF_AT_PATH;
        if (!identifies || (f->type != RF_FIELD_ID && f->type != RF_FIELD_STRING)) continue;
        const char *v = *rf_field_str((void *)c->req, f);
        if (!v) continue;
        uint32_t h = 2166136261u; /* FNV-1a */
        for (const unsigned char *p = (const unsigned char *)v; *p; p++) h = (h ^ *p) * 16777619u;
        return h ? h : 1;
    }
    return 0;
}

/* A call no operation can run (a NULL handle, request or result, an op
 * outside RF_OPS): RF_ERR_INVALID with what is wrong, and nothing touched
 * but fault. The library's caller gets an error, never an abort. */
static rf_err op_misuse(const rf *db, rf_op op, const void *req, const void *res,
                        struct rf_fault *fault) {
    const char *what = !db ? "db is NULL"
                       : !rf_op_has_row(op) ? "op is not an operation of RF_OPS"
                       : !req ? "req is NULL"
                       : !res ? "res is NULL"
                              : NULL;
    if (!what) return RF_OK;
    if (fault) memset(fault, 0, sizeof *fault);
    rf_fault_set(fault, RF_ERR_INVALID, NULL, "%s", what);
    return RF_ERR_INVALID;
}

/* The follow-up jobs of rf_op_run_then, enqueued in the operation's own
 * transaction right after its effect (call comes first: op_exec's ctx). */
struct op_then {
    struct op_call call;
    const struct rf_job_req *jobs;
    int n_jobs;
    struct rf_job *jobs_out;
};

static rf_err op_then_exec(struct rf_tx *tx, void *ctx) {
    struct op_then *t = ctx;
    rf_err err = op_exec(tx, &t->call);
    for (int i = 0; i < t->n_jobs; i++) rf_job_clear(&t->jobs_out[i]); /* a retried attempt's */
    for (int i = 0; !err && i < t->n_jobs; i++)
        err = job_enqueue_tx(tx, &t->jobs[i], &t->jobs_out[i], &t->jobs_out[i].created);
    return err;
}

/* Each follow-up job passes the queue's own field spec before anything runs. */
static rf_err then_check(const struct op_then *t, struct rf_fault *fault) {
    for (int i = 0; i < t->n_jobs; i++) {
        struct rf_fault f = {0};
        if (!rf_op_check(RF_OP_JOB_ENQUEUE, &t->jobs[i], &f)) continue;
        rf_fault_set(fault, RF_ERR_INVALID, NULL, "jobs[%d]: %s", i, f.detail);
        snprintf(fault->param, sizeof fault->param, "jobs[%d].%.40s", i, f.param);
        return RF_ERR_INVALID;
    }
    return RF_OK;
}

static rf_err op_run(rf *db, rf_op op, struct op_then *t, struct rf_idem *idem,
                     struct rf_fault *fault) {
    struct op_call *call = &t->call;
    struct core_result r;
    const char *name = rf_op_name(op);
    rf_err err = op_begin(op, call, idem, fault);
    if (!err && t->n_jobs) err = then_check(t, fault);
    uint32_t shard = err ? 0 : op_shard(call);
    if (!err && !call->row->write) err = core_read(db, name, op_exec, call);
    else if (!err && !keyed_result(call, idem, &r)) err = core_write(db, name, shard, op_then_exec, t);
    else if (!err) err = core_write_result(db, name, shard, op_then_exec, t, &r, idem);
    if (err || (idem && idem->replayed))
        for (int i = 0; i < t->n_jobs; i++) rf_job_clear(&t->jobs_out[i]);
    return op_end(db, call, idem, err, fault);
}

rf_err rf_op_run(rf *db, rf_op op, const void *req, void *res, struct rf_idem *idem,
                 struct rf_fault *fault) {
    rf_err misuse = op_misuse(db, op, req, res, fault);
    if (misuse) return misuse;
    struct rf_fault scratch;
    if (!fault) fault = &scratch;
    struct op_then t = {.call = {rf_op_row(op), req, res, &fault->facts}};
    return op_run(db, op, &t, idem, fault);
}

rf_err rf_op_run_then(rf *db, rf_op op, const void *req, void *res, struct rf_idem *idem,
                      struct rf_fault *fault, const struct rf_job_req *jobs, int n_jobs,
                      struct rf_job *jobs_out) {
    rf_err misuse = op_misuse(db, op, req, res, fault);
    if (misuse) return misuse;
    if (n_jobs < 0 || n_jobs > RF_JOBS_THEN_MAX || (n_jobs && (!jobs || !jobs_out)) ||
        !rf_op_row(op)->write) {
        if (fault) memset(fault, 0, sizeof *fault);
        rf_fault_set(fault, RF_ERR_INVALID, NULL,
                     "rf_op_run_then takes a write op and 0..%d jobs with jobs_out",
                     RF_JOBS_THEN_MAX);
        return RF_ERR_INVALID;
    }
    struct rf_fault scratch;
    if (!fault) fault = &scratch;
    if (n_jobs) memset(jobs_out, 0, (size_t)n_jobs * sizeof *jobs_out);
    struct op_then t = {.call = {rf_op_row(op), req, res, &fault->facts}, .jobs = jobs,
                        .n_jobs = n_jobs, .jobs_out = jobs_out};
    return op_run(db, op, &t, idem, fault);
}

/* ---- rf_op_submit ---------------------------------------------------------
 * A submitted write's state lives in a slot of a fixed pool per handle (no
 * allocation per call): taken before it is queued, given back right before
 * the caller's callback runs. */

struct op_slot {
    struct core_pending pending;
    struct op_call call;
    rf *db;
    struct rf_idem *idem;
    struct rf_fault *fault;
    struct rf_fault own_fault;  /* when the caller passed none */
    rf_done_fn done;
    void *arg;
    struct op_slot *next_free;
};

struct op_pool {
    pthread_mutex_t mu;
    struct op_slot *free;       /* given back */
    int n_used;                 /* slots ever taken: the rest were never touched */
    struct op_slot slots[RF_SUBMIT_CALLS_MAX];
};

rf_err op_pool_open(rf *db) {
    struct op_pool *p = calloc(1, sizeof *p);
    if (!p) return RF_ERR_NOMEM;
    pthread_mutex_init(&p->mu, NULL);
    db->op_pool = p;
    return RF_OK;
}

void op_pool_close(rf *db) {
    struct op_pool *p = db->op_pool;
    if (!p) return;
    int n_free = 0;
    for (struct op_slot *s = p->free; s; s = s->next_free) n_free++;
    RF_ASSERT(n_free == p->n_used); /* the executor answered every call */
    pthread_mutex_destroy(&p->mu);
    free(p);
    db->op_pool = NULL;
}

static struct op_slot *slot_take(struct op_pool *p) {
    pthread_mutex_lock(&p->mu);
    struct op_slot *s = p->free;
    if (s) p->free = s->next_free;
    else if (p->n_used < RF_SUBMIT_CALLS_MAX) s = &p->slots[p->n_used++];
    pthread_mutex_unlock(&p->mu);
    return s;
}

static void slot_give(struct op_pool *p, struct op_slot *s) {
    pthread_mutex_lock(&p->mu);
    s->next_free = p->free;
    p->free = s;
    pthread_mutex_unlock(&p->mu);
}

/* The executor's answer (or a refusal on the caller's thread): the same last
 * half as rf_op_run, then the slot is free again and the caller hears. */
static void op_done(void *arg, rf_err err) {
    struct op_slot *s = arg;
    err = op_end(s->db, &s->call, s->idem, err, s->fault);
    rf_done_fn done = s->done;
    void *done_arg = s->arg;
    slot_give(s->db->op_pool, s);
    done(done_arg, err);
}

rf_err rf_op_submit(rf *db, rf_op op, const void *req, void *res, struct rf_idem *idem,
                    struct rf_fault *fault, rf_done_fn done, void *arg) {
    if (!done) return RF_ERR_INVALID; /* no one to tell: nothing is submitted */
    rf_err misuse = op_misuse(db, op, req, res, fault);
    if (misuse) {
        done(arg, misuse);
        return RF_OK;
    }
    struct op_call call = {rf_op_row(op), req, res, NULL}; /* facts: once a slot holds it */
    if (!call.row->write) { /* a read decides nothing: answered at once */
        done(arg, rf_op_run(db, op, req, res, idem, fault));
        return RF_OK;
    }
    struct rf_fault scratch;
    rf_err err = op_begin(op, &call, idem, fault ? fault : &scratch);
    struct op_slot *s = err ? NULL : slot_take(db->op_pool);
    if (!err && !s) err = RF_ERR_OVERLOADED; /* as many calls in flight as the queue holds */
    if (err) {
        done(arg, op_end(db, &call, idem, err, fault ? fault : &scratch));
        return RF_OK;
    }
    *s = (struct op_slot){.call = call, .db = db, .idem = idem, .fault = fault, .done = done,
                          .arg = arg};
    if (!fault) s->fault = &s->own_fault;
    s->call.facts = &s->fault->facts;
    struct core_result r;
    const struct core_result *keyed = keyed_result(&s->call, idem, &r);
    core_write_submit(db, rf_op_name(op), op_shard(&s->call), op_exec, &s->call, keyed, idem,
                      &s->pending, op_done, s);
    return RF_OK;
}

rf_err rf_op_check(rf_op op, const void *req, struct rf_fault *fault) {
    RF_ASSERT(req && fault);
    return op_validate(rf_op_row(op), req, fault);
}

rf_err rf_op_run_tx(struct rf_tx *tx, rf_op op, const void *req, void *res,
                    struct rf_fault *fault) {
    RF_ASSERT(tx && req && res && fault);
    const struct rf_op_row *row = rf_op_row(op);
    RF_ASSERT(row->write); /* composed inside a write */
    struct op_call call = {row, req, res, &fault->facts};
    rf_err err = op_validate(row, req, fault);
    if (!err) err = op_exec(tx, &call);
    if (err) op_explain(row, req, res, err, fault);
    return err;
}
