/*
 * deferred.h - balance moves deferred to the end of the write transaction:
 * every move on the system accounts (funding:<CUR>, payouts:<CUR>), and, in
 * a batch's first run, a user account's posted moves (both sides of a
 * posted transfer, the user side of a credit).
 *
 * The race it removes is not a wrong answer but a queue: every credit moves
 * funding:<CUR>, and a row UPDATEd early in a transaction stays locked until
 * COMMIT, so every writer in every process waited for the one before it;
 * and a batch that locked a user row early kept it across all its other
 * operations, so batches of other processes touching that user (one hot
 * account that every transfer debits) queued behind it, or waited for each
 * other in a cycle (batch A holds x and wants y, batch B holds y and wants x).
 * Here an operation registers such a move in the transaction's buffer
 * (tx->defer); right before COMMIT the executor calls the flush, which
 * applies, per account, ONE guarded UPDATE with the summed deltas and then
 * the moves' entries, with consecutive seq and running balance_after in the
 * order the operations registered them. Accounts are flushed user accounts
 * first, then system accounts, each kind in id order: no lock-order
 * deadlock between flushes, and the hot rows are locked last and shortest.
 *
 * Only posted moves are deferred on a user account (a hold, and a hold's
 * resolution, apply at once). The flush guards every prefix of the
 * registered sequence: int64 for every column, and for a user account that
 * may not go negative, an available balance (posted - pending_debits) that
 * covers the lowest prefix of its debits. So it refuses exactly when
 * applying the moves one by one, in registration order, would have refused
 * one. A refused flush is never an answer: the executor rolls the batch back
 * and runs it again with every user account's move applied at once, each
 * under its own guard (reset(buf, false)); an operation alone in its
 * transaction never defers a user move, and there the flush's answer (a
 * system account's int64 edge) is the operation's. A move applied at once
 * in the same transaction (a hold) is decided before the deferred ones, as
 * if it had arrived first: the requests were concurrent, and the entries
 * record that order.
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
 * account's move must be posted (d_posted != 0, nothing pending).
 * false: it was not registered (tx->defer is NULL, the buffer is full or
 * takes no user move now, or an id does not fit) and the caller applies it
 * at once, which is correct, just slower. */
bool deferred_move(struct rf_tx *tx, const struct deferred_account *a, const char *transfer_id,
                   int64_t d_posted, int64_t d_pdebits, int64_t d_pcredits);

/* True when tx's buffer takes a user account's move now (in a batch's first
 * run), so an operation learns whether an account read would serve. */
bool deferred_users(const struct rf_tx *tx);

/* The posted delta tx's buffer holds for account (0: none): what a read of
 * the account's row does not show yet. A refund sizes its reversal by the
 * row plus this, so it sees the credits of earlier operations of its batch. */
int64_t deferred_posted(const struct rf_tx *tx, const char *account);

#endif
