/*
 * deferred.h - balance moves deferred to the end of the write transaction:
 * every move on the system accounts (funding:<CUR>, payouts:<CUR>), and the
 * user-account side of a credit from one.
 *
 * The race it removes is not a wrong answer but a queue: every credit moves
 * funding:<CUR>, and a row UPDATEd early in a transaction stays locked until
 * COMMIT, so every writer in every process waited for the one before it;
 * and a batch that locked a user row early kept it across all its other
 * operations and its wait for the hot row, so batches of other processes
 * touching that user queued behind it too.
 * Here an operation registers such a move in the transaction's buffer
 * (tx->defer); right before COMMIT the executor calls the flush, which
 * applies, per account, ONE guarded UPDATE with the summed deltas and then
 * the moves' entries, with consecutive seq and running balance_after in the
 * order the operations registered them. Accounts are flushed user accounts
 * first, then system accounts, each kind in id order: no lock-order
 * deadlock between flushes, and the hot rows are locked last and shortest.
 *
 * Only moves that no guard but int64 can refuse are deferred: a system
 * account may go negative (its pending totals stay >= 0, since a release
 * only takes back its own hold), and a user account's deferred move is a
 * posted credit, which cannot take its available balance down. A user
 * account's debit or hold is never deferred: its overdraft guard stays
 * exact, per operation. (A debit decided before a credit of the same
 * batch is flushed sees the balance without it, as if it ran first: the
 * two were concurrent, and the entries record that order.) The flush
 * guards every prefix of the registered sequence, so it refuses exactly
 * when applying the moves one by one would have; it then fails with
 * RF_ERR_AMOUNT_OVERFLOW and the executor re-runs the transaction's
 * operations with nothing deferred, so the operation whose move leaves
 * int64 learns it alone (in a one-operation transaction the flush's answer
 * already is that operation's).
 */
#ifndef RF_CORE_DEFERRED_H
#define RF_CORE_DEFERRED_H

#include "exec/executor.h"

/* The buffer's operations the executor calls (rf_open passes them). */
extern const struct exec_defer_ops deferred_ops;

/* The account a move is on: a system account, or a user account known (by
 * a read in this transaction) to exist in currency. */
struct deferred_account {
    const char *id;
    const char *currency;
    bool system;
};

/* Registers a move on account a made by transfer `transfer_id`; a user
 * account's move must be a posted credit (d_posted > 0, nothing pending).
 * false: it was not registered (tx->defer is NULL, the buffer is full, or an
 * id does not fit) and the caller applies it at once, which is correct, just
 * slower. */
bool deferred_move(struct rf_tx *tx, const struct deferred_account *a, const char *transfer_id,
                   int64_t d_posted, int64_t d_pdebits, int64_t d_pcredits);

#endif
