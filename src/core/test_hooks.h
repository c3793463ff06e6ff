/*
 * test_hooks.h - fault injection for racefree's own tests: make the next
 * operation or commit fail, lose a commit's answer, crash after a commit.
 * Internal, not in racefree.h and not exported by the shared library: the
 * tests (and `racefree serve --test-hooks`) link the static library. Each
 * hook does something only on a handle opened with options.test_hooks.
 */
#ifndef RF_CORE_TEST_HOOKS_H
#define RF_CORE_TEST_HOOKS_H

#include "racefree.h"

/* The next operation whose name matches fails inside its savepoint with err
 * (after doing its writes), as a forced fault would. name "*" matches any. */
void rf_test_fail_next(rf *db, const char *op_name, rf_err err);
/* Every operation sleeps delay_ms inside its transaction (in-flight tests). */
void rf_test_set_op_delay(rf *db, int delay_ms);
/* The next commit fails as a store error would (SQLite: forced IOERR;
 * PostgreSQL: the connection is dropped before COMMIT). */
void rf_test_fail_next_commit(rf *db);
/* The next fsync that makes committed batches durable fails (SQLite at sync
 * full; elsewhere nothing happens): what those batches committed is answered
 * RF_ERR_OUTCOME_UNKNOWN. */
void rf_test_fail_next_sync(rf *db);
/* The process exits at once right after the next commit that includes an
 * operation named op_name: a power cut between a request's transactions. */
void rf_test_crash_after_commit(rf *db, const char *op_name);
/* The next n write commits reach the server, which commits (or refuses),
 * and their answers are lost, as when the connection dies in between; the
 * outcome is then resolved on a fresh connection (PostgreSQL; SQLite has no
 * answer to lose and ignores this). n <= 0 disarms. */
void rf_test_lose_commit_replies(rf *db, int n);
/* The next n write attempts fail with a serialization failure (SQLSTATE
 * 40001) raised by PostgreSQL inside their transaction after the operation's
 * body ran; the executor retries each like a real one. SQLite ignores this.
 * n <= 0 disarms. */
void rf_test_fail_serialization(rf *db, int n);
/* While on, write transactions run at SERIALIZABLE instead of READ COMMITTED
 * (PostgreSQL; SQLite ignores this), so a row another transaction changed
 * after this one's snapshot fails it with a genuine serialization failure. */
void rf_test_set_serializable(rf *db, bool on);
/* Payout batch runs (payout_batch_run) sleep pause_ms after each committed
 * chunk (a test kills the process or lets the lease expire meanwhile), scan
 * chunk_wallets wallets per chunk, and hold the payouts lease for
 * lease_ttl_ms; 0 keeps each default. */
void rf_test_payout_batch(rf *db, int pause_ms, int chunk_wallets, int64_t lease_ttl_ms);
/* Announcement fan-outs (rf_fanout_start's worker) sleep pause_ms after
 * each committed chunk (a test kills the process meanwhile), claim with
 * lease_ms leases (0: the default), and fail the delivery to every user id
 * in fail_users (comma-separated; NULL or "": none). */
void rf_test_fanout(rf *db, int pause_ms, int64_t lease_ms, const char *fail_users);
/* SQLite: from after_bytes more bytes written on, every write of the
 * store's files fails as on a full disk (RF_TEST_IO_FULL: SQLITE_FULL) or a
 * failing one (RF_TEST_IO_EIO: SQLITE_IOERR, fsync and truncate too), until
 * RF_TEST_IO_OK; reads keep working. Process-wide (store/sqlite_faults.h);
 * PostgreSQL ignores this. */
enum rf_test_io { RF_TEST_IO_OK = 0, RF_TEST_IO_EIO, RF_TEST_IO_FULL };
void rf_test_io_fault(rf *db, enum rf_test_io fault, int64_t after_bytes);
/* How many times the executor has run an operation's body (every attempt
 * counts, retries included); 0 without options.test_hooks. */
int64_t rf_test_op_runs(rf *db);

#endif
