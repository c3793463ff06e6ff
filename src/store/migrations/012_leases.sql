-- 012_leases (both back ends): leases with fencing tokens, payout batches.
--
-- leases: one row per lease name. token is the fencing token: it grows by
-- one on every acquire, in the one atomic statement that takes the lease
-- (an UPSERT guarded by "expired or released"), so two nodes can never be
-- given the same token nor a lower one than was issued before. The row is
-- never deleted: the token would start over. released marks a lease given
-- back (its token is then stale; expires_at keeps the last expiry).
--
-- payout_batches: one row per batch, identified by run_key (UNIQUE): a run
-- with the key of an existing batch finishes or returns that batch. A batch
-- walks the currency's user wallets in id order, one bounded chunk per
-- transaction; scan_cursor is the last wallet id a committed chunk scanned, so a
-- run that crashed is resumed after it by the next run, on any node.
--
-- payout_batch_items: the payout each wallet got from a batch.
-- PRIMARY KEY (batch_id, account_id): a wallet is paid at most once by one
-- batch, whatever resumes or overlaps it.

CREATE TABLE leases (
  name         TEXT PRIMARY KEY,
  holder       TEXT NOT NULL,
  token        BIGINT NOT NULL CHECK (token >= 1),
  ttl_ms       BIGINT NOT NULL CHECK (ttl_ms >= 1),
  acquired_at  BIGINT NOT NULL,
  expires_at   BIGINT NOT NULL,
  released     INTEGER NOT NULL CHECK (released IN (0,1)),
  updated_at   BIGINT NOT NULL,
  version      BIGINT NOT NULL CHECK (version >= 1)
);

CREATE TABLE payout_batches (
  id                TEXT PRIMARY KEY,
  run_key           TEXT NOT NULL UNIQUE,
  currency          TEXT NOT NULL CHECK (length(currency) = 3),
  min_amount_minor  BIGINT NOT NULL CHECK (min_amount_minor >= 1),
  provider          TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('running','completed')),
  scan_cursor       TEXT NOT NULL,
  wallets_scanned   BIGINT NOT NULL CHECK (wallets_scanned >= 0),
  payouts_created   BIGINT NOT NULL CHECK (payouts_created >= 0),
  skipped_pending   BIGINT NOT NULL CHECK (skipped_pending >= 0),
  total_minor       BIGINT NOT NULL CHECK (total_minor >= 0),
  chunks            BIGINT NOT NULL CHECK (chunks >= 0),
  lease_token       BIGINT NOT NULL,
  created_at        BIGINT NOT NULL,
  updated_at        BIGINT NOT NULL,
  completed_at      BIGINT,
  version           BIGINT NOT NULL CHECK (version >= 1)
);
CREATE INDEX payout_batches_running ON payout_batches (status, created_at, id);

CREATE TABLE payout_batch_items (
  batch_id      TEXT NOT NULL REFERENCES payout_batches (id),
  account_id    TEXT NOT NULL REFERENCES accounts (id),
  payout_id     TEXT NOT NULL UNIQUE REFERENCES payouts (id),
  amount_minor  BIGINT NOT NULL CHECK (amount_minor >= 1),
  created_at    BIGINT NOT NULL,
  PRIMARY KEY (batch_id, account_id)
);
-- The batch's pending check: a wallet's pending payouts.
CREATE INDEX payouts_account_pending ON payouts (account_id) WHERE status = 'pending';
-- The batch's walk: a currency's user wallets in id order.
CREATE INDEX accounts_wallets ON accounts (currency, kind, id);
