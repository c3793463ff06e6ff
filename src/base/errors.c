/*
 * errors.c - the stable code names of rf_err. Clients switch on these
 * strings, so a name never changes once released.
 */
#include "racefree.h"
#include "base/assert.h"

static const char *const err_codes[RF_ERR__COUNT] = {
    [RF_OK] = "ok",
    [RF_ERR_INVALID] = "invalid_request",
    [RF_ERR_NOT_FOUND] = "not_found",
    [RF_ERR_ENTITLEMENT_NOT_FOUND] = "entitlement_not_found",
    [RF_ERR_KEY_NOT_FOUND] = "key_not_found",
    [RF_ERR_UNAUTHENTICATED] = "unauthenticated",
    [RF_ERR_FORBIDDEN] = "forbidden",
    [RF_ERR_VERSION_MISMATCH] = "version_mismatch",
    [RF_ERR_INVALID_STATE] = "invalid_state",
    [RF_ERR_CONFLICT] = "conflict",
    [RF_ERR_IDEM_REUSED] = "idempotency_key_reused",
    [RF_ERR_IDEM_IN_FLIGHT] = "idempotency_key_in_flight",
    [RF_ERR_OVERLOADED] = "overloaded",
    [RF_ERR_SHUTTING_DOWN] = "shutting_down",
    [RF_ERR_UNAVAILABLE] = "store_unavailable",
    [RF_ERR_RETRY] = "retry",
    [RF_ERR_SCHEMA_TOO_NEW] = "schema_too_new",
    [RF_ERR_NOMEM] = "out_of_memory",
    [RF_ERR_INTERNAL] = "internal",
    [RF_ERR_ACCOUNT_NOT_FOUND] = "account_not_found",
    [RF_ERR_ACCOUNT_EXISTS] = "account_exists",
    [RF_ERR_TRANSFER_NOT_FOUND] = "transfer_not_found",
    [RF_ERR_INSUFFICIENT_FUNDS] = "insufficient_funds",
    [RF_ERR_CURRENCY_MISMATCH] = "currency_mismatch",
    [RF_ERR_SAME_ACCOUNT] = "same_account",
    [RF_ERR_DUPLICATE_REFERENCE] = "duplicate_reference",
    [RF_ERR_AMOUNT_OVERFLOW] = "amount_overflow",
    [RF_ERR_PAYOUT_NOT_FOUND] = "payout_not_found",
    [RF_ERR_DUPLICATE_PROVIDER_PAYOUT] = "duplicate_provider_payout_id",
    [RF_ERR_BINDING_CONFLICT] = "customer_binding_conflict",
    [RF_ERR_BINDING_NOT_FOUND] = "customer_binding_not_found",
    [RF_ERR_APPROVAL_NOT_FOUND] = "approval_not_found",
    [RF_ERR_APPROVAL_EXPIRED] = "approval_expired",
    [RF_ERR_SELF_APPROVAL] = "self_approval",
    [RF_ERR_NOT_REQUESTER] = "not_requester",
    [RF_ERR_OUTCOME_UNKNOWN] = "outcome_unknown",
    [RF_ERR_HOLD_OWNED] = "hold_owned_by_payout",
    [RF_ERR_RESERVED_ID] = "reserved_id",
    [RF_ERR_INVALID_CURSOR] = "invalid_cursor",
};

const char *rf_err_code(rf_err err) {
    if ((int)err < 0 || err >= RF_ERR__COUNT) return "internal";
    RF_ASSERT(err_codes[err] != NULL);
    return err_codes[err];
}
