/*
 * ledger.h - the ledger's operations as pieces other flows compose inside
 * their own transaction (payouts place and resolve holds; later, approvals
 * execute transfers and webhooks apply credits). They never begin or commit.
 */
#ifndef RF_CORE_LEDGER_H
#define RF_CORE_LEDGER_H

#include "core/core.h"

/* The reserved namespaces of racefree's system accounts (the one list of
 * reserved namespaces is in ledger.c). */
#define LEDGER_NS_FUNDING "funding"
#define LEDGER_NS_PAYOUTS "payouts"

/* The names of enum rf_account_kind in its order, NULL-terminated (the
 * field spec of an account's create takes them as its choices). */
extern const char *const ledger_account_kinds[];

bool ledger_currency_valid(const char *currency);
/* "<ns>:<CUR>" (LEDGER_NS_FUNDING, LEDGER_NS_PAYOUTS) into out[RF_ID_BYTES]. */
void ledger_system_id(const char *ns, const char *currency, char *out);
/* The one history row insert ($1..$7: account, seq, transfer, side, amount,
 * balance_after, created_at), shared with the deferred flush so a
 * connection prepares it once. */
extern const char ledger_sql_entry[];
/* Committed hooks: currency's system accounts exist (see ledger.c), as a
 * committed account or a committed transfer naming one shows. */
void ledger_system_committed(rf *db, const char *currency);
void ledger_transfer_committed(rf *db, const struct rf_transfer *t);

rf_err ledger_transfer(struct rf_tx *tx, const struct rf_transfer_req *req,
                       struct rf_transfer_res *res);
/* post == false voids; amount_minor 0 posts the whole hold. owner is the id
 * of the payout resolving its own hold, or NULL for anyone else: a hold that
 * a payout owns refuses every other resolver with RF_ERR_HOLD_OWNED, decided
 * in the resolving UPDATE. */
rf_err ledger_resolve(struct rf_tx *tx, const char *id, const char *owner, bool post,
                      int64_t amount_minor, struct rf_transfer_res *res);
/* rf_ledger_check, telling fn (may be NULL) each step as it starts (rows 0)
 * and every RF_CHECK_PROGRESS_ROWS rows of a step read row by row. fn runs
 * on the executor's reader thread, inside the read transaction. For
 * `racefree reconcile --progress`. */
typedef void (*ledger_progress_fn)(void *ctx, int step, int steps, const char *what,
                                   int64_t rows);
rf_err ledger_check_progress(rf *db, struct rf_ledger_check *out, ledger_progress_fn fn,
                             void *ctx);
rf_err ledger_account_currency(struct rf_tx *tx, const char *id,
                               char currency[RF_CURRENCY_BYTES]);

#endif
