/*
 * flows.h - operations of one flow that another flow composes inside its own
 * transaction (an approval executes a grant, a transfer or a payout; later a
 * webhook fulfils a checkout the same way). Like every core operation they
 * never begin or commit.
 */
#ifndef RF_CORE_FLOWS_H
#define RF_CORE_FLOWS_H

#include "core/ledger.h"

rf_err entitlement_grant_tx(struct rf_tx *tx, const struct rf_grant_req *req,
                            struct rf_grant_res *res);

rf_err payout_create_tx(struct rf_tx *tx, const struct rf_payout_req *req, struct rf_payout *out);

/* The ledger check's approvals invariant: every approved approval's action
 * ran, i.e. the effect its result names is in the store. Counts the approved
 * approvals checked and those whose effect is missing. */
rf_err approvals_check(struct rf_tx *tx, int64_t *checked, int64_t *unexecuted);

#endif
