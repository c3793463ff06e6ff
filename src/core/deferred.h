/*
 * deferred.h - balance moves on the system accounts (funding:<CUR>,
 * payouts:<CUR>), deferred to the end of the write transaction.
 *
 * The race it removes is not a wrong answer but a queue: every credit moves
 * funding:<CUR>, and a row UPDATEd early in a transaction stays locked until
 * COMMIT, so every writer in every process waited for the one before it.
 * Here an operation registers its move on a system account in the
 * transaction's buffer (tx->defer); right before COMMIT the executor calls
 * the flush, which applies, per system account in id order (no lock-order
 * deadlock between transactions), ONE guarded UPDATE with the summed deltas
 * and then the moves' entries, with consecutive seq and running
 * balance_after in the order the operations registered them. A user
 * account's move is never deferred: its overdraft guard stays exact, per
 * operation.
 *
 * A system account may go negative, so the only guards its moves meet are
 * the int64 bounds (and pending totals >= 0, which a release of its own hold
 * keeps). The flush guards every prefix of the registered sequence, so it
 * refuses exactly when applying the moves one by one would have; it then
 * fails with RF_ERR_AMOUNT_OVERFLOW and the executor re-runs the
 * transaction's operations with nothing deferred, so the operation whose
 * move leaves int64 learns it alone (in a one-operation transaction the
 * flush's answer already is that operation's).
 */
#ifndef RF_CORE_DEFERRED_H
#define RF_CORE_DEFERRED_H

#include "exec/executor.h"

/* The buffer's operations the executor calls (rf_open passes them). */
extern const struct exec_defer_ops deferred_ops;

/* Registers a move on the system account `account` made by transfer
 * `transfer_id`. false: it was not registered (tx->defer is NULL, the buffer
 * is full, or an id does not fit) and the caller applies it at once, which
 * is correct, just slower. */
bool deferred_move(struct rf_tx *tx, const char *account, const char *transfer_id,
                   int64_t d_posted, int64_t d_pdebits, int64_t d_pcredits);

#endif
