-- 007_transfer_status_check (SQLite): the transfers' status CHECK without
-- an IN list. SQLite evaluates "status IN ('posted','pending','voided')"
-- by building a temporary b-tree of the three names for every statement
-- that checks it: every transfer insert (every credit) paid about a third
-- of its cost for it. Three comparisons allow exactly the same values.
--
-- A CHECK cannot be altered in place, so the table is rebuilt: its rows are
-- copied aside, the table is dropped and created again with the new CHECK,
-- and the rows come back. entries and payouts reference transfers by name,
-- so they reference the new table. The drop takes the referenced rows away
-- for a moment: defer_foreign_keys (until COMMIT; this migration runs in one
-- transaction) lets that wait, and putting each row back settles it, so the
-- COMMIT still finds every reference intact and fails if one is not.

PRAGMA defer_foreign_keys = ON;

CREATE TABLE transfers_007 AS SELECT
  id, debit_account, credit_account, amount_minor, posted_amount, currency, status, was_pending,
  reference, metadata, expires_at, created_at, resolved_at, version
FROM transfers;

DROP TABLE transfers;

CREATE TABLE transfers (
  id              TEXT PRIMARY KEY,
  debit_account   TEXT NOT NULL REFERENCES accounts (id),
  credit_account  TEXT NOT NULL REFERENCES accounts (id),
  amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
  posted_amount   BIGINT CHECK (posted_amount IS NULL OR (posted_amount > 0 AND posted_amount <= amount_minor)),
  currency        TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status = 'posted' OR status = 'pending' OR status = 'voided'),
  was_pending     INTEGER NOT NULL CHECK (was_pending IN (0,1)),
  reference       TEXT UNIQUE,
  metadata        TEXT,
  expires_at      BIGINT,
  created_at      BIGINT NOT NULL,
  resolved_at     BIGINT,
  version         BIGINT NOT NULL CHECK (version >= 1),
  CHECK (debit_account <> credit_account),
  CHECK ((status = 'posted') = (posted_amount IS NOT NULL))
);

INSERT INTO transfers (id, debit_account, credit_account, amount_minor, posted_amount, currency,
                       status, was_pending, reference, metadata, expires_at, created_at,
                       resolved_at, version)
SELECT id, debit_account, credit_account, amount_minor, posted_amount, currency, status,
       was_pending, reference, metadata, expires_at, created_at, resolved_at, version
FROM transfers_007 ORDER BY rowid;

DROP TABLE transfers_007;

CREATE INDEX transfers_pending_expiry ON transfers (expires_at) WHERE status = 'pending';

PRAGMA defer_foreign_keys = OFF;
