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

/* THE names of enum rf_action_type, in its order, NULL-terminated: the
 * action's "type", the approvals.action_type column and the codec's text. */
extern const char *const action_type_names[];
/* The enum named by name; false when it names none. */
bool action_type_parse(const char *name, enum rf_action_type *out);

struct action {
    enum rf_action_type type;
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
/* Runs the action in tx; *result_out gets a malloc'd JSON object text. */
rf_err action_execute(struct rf_tx *tx, const struct action *a, char **result_out);

#endif
