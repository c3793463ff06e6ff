/*
 * ledger.h - the ledger's operations as pieces other flows compose inside
 * their own transaction (payouts place and resolve holds; later, approvals
 * execute transfers and webhooks apply credits). They never begin or commit.
 */
#ifndef RF_CORE_LEDGER_H
#define RF_CORE_LEDGER_H

#include "core/core.h"

bool ledger_currency_valid(const char *currency);
/* "funding:<CUR>" / "payouts:<CUR>" into out[RF_ID_BYTES]. */
void ledger_system_id(const char *role, const char *currency, char *out);

rf_err ledger_transfer(struct rf_tx *tx, const struct rf_transfer_req *req,
                       struct rf_transfer_res *res);
/* post == false voids; amount_minor 0 posts the whole hold. */
rf_err ledger_resolve(struct rf_tx *tx, const char *id, bool post, int64_t amount_minor,
                      struct rf_transfer_res *res);
rf_err ledger_account_currency(struct rf_tx *tx, const char *id,
                               char currency[RF_CURRENCY_BYTES]);

#endif
