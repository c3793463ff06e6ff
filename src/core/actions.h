/*
 * actions.h - an operation described as data (approvals.c executes one):
 * {"type": "transfer" | "entitlement_grant" | "payout", ...} carries the
 * fields of the operation it names, decoded and validated with that
 * operation's own field spec and rules (core/api.c), and run with
 * rf_op_run_tx inside the approving transaction.
 */
#ifndef RF_CORE_ACTIONS_H
#define RF_CORE_ACTIONS_H

#include "core/fields.h"
#include "core/flows.h"

enum action_type { ACTION_TRANSFER = 0, ACTION_GRANT = 1, ACTION_PAYOUT = 2 };

struct action {
    enum action_type type;
    struct json_t *root;         /* the parsed JSON; the request strings point into it */
    struct rf_decoded decoded;   /* what decoding allocated (compact metadata) */
    union {                      /* the operation's own request struct */
        struct rf_transfer_req transfer;
        struct rf_grant_req grant;
        struct rf_payout_req payout;
    } req;
};

/* RF_ERR_INVALID with a sentence in detail when the action is not valid. */
rf_err action_parse(const char *json, struct action *out, char *detail, size_t cap);
void action_clear(struct action *a);
const char *action_type_name(enum action_type t);
/* Runs the action in tx; *result_out gets a malloc'd JSON object text. */
rf_err action_execute(struct rf_tx *tx, const struct action *a, char **result_out);

#endif
