/*
 * actions.h - an operation described as data (approvals.c executes one).
 */
#ifndef RF_CORE_ACTIONS_H
#define RF_CORE_ACTIONS_H

#include "core/flows.h"

enum action_type { ACTION_TRANSFER = 0, ACTION_GRANT = 1, ACTION_PAYOUT = 2 };

struct action {
    enum action_type type;
    struct json_t *root;         /* the parsed JSON; the request strings point into it */
    char *metadata_json;         /* malloc'd compact metadata, or NULL */
    struct rf_transfer_req transfer;
    struct rf_grant_req grant;
    struct rf_payout_req payout;
};

/* RF_ERR_INVALID with a sentence in detail when the action is not valid. */
rf_err action_parse(const char *json, struct action *out, char *detail, size_t cap);
void action_clear(struct action *a);
const char *action_type_name(enum action_type t);
/* Runs the action in tx; *result_out gets a malloc'd JSON object text. */
rf_err action_execute(struct rf_tx *tx, const struct action *a, char **result_out);

#endif
