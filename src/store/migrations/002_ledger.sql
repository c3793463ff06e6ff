-- 002_ledger: double-entry accounts, transfers (posted or pending holds),
-- per-account entries, payouts and their attempts.
-- Balances change only through guarded atomic UPDATEs; the CHECKs below are
-- the last line: no code path can store an overdrawn or negative-hold row.

CREATE TABLE accounts (
  id              TEXT PRIMARY KEY,
  currency        TEXT NOT NULL CHECK (length(currency) = 3),
  kind            TEXT NOT NULL CHECK (kind IN ('user','system')),
  allow_negative  INTEGER NOT NULL CHECK (allow_negative IN (0,1)),
  metadata        TEXT,
  posted          BIGINT NOT NULL DEFAULT 0,
  pending_debits  BIGINT NOT NULL DEFAULT 0 CHECK (pending_debits >= 0),
  pending_credits BIGINT NOT NULL DEFAULT 0 CHECK (pending_credits >= 0),
  version         BIGINT NOT NULL CHECK (version >= 1),
  created_at      BIGINT NOT NULL,
  updated_at      BIGINT NOT NULL,
  CHECK (allow_negative = 1 OR posted - pending_debits >= 0)
);

CREATE TABLE transfers (
  id              TEXT PRIMARY KEY,
  debit_account   TEXT NOT NULL REFERENCES accounts (id),
  credit_account  TEXT NOT NULL REFERENCES accounts (id),
  amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
  posted_amount   BIGINT CHECK (posted_amount IS NULL OR (posted_amount > 0 AND posted_amount <= amount_minor)),
  currency        TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('posted','pending','voided')),
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
CREATE INDEX transfers_pending_expiry ON transfers (expires_at) WHERE status = 'pending';

-- One row per posted balance change; seq is the account's version after it.
CREATE TABLE entries (
  account_id      TEXT NOT NULL REFERENCES accounts (id),
  seq             BIGINT NOT NULL,
  transfer_id     TEXT NOT NULL REFERENCES transfers (id),
  side            TEXT NOT NULL CHECK (side IN ('debit','credit')),
  amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
  balance_after   BIGINT NOT NULL,
  created_at      BIGINT NOT NULL,
  PRIMARY KEY (account_id, seq)
);

CREATE TABLE payouts (
  id                       TEXT PRIMARY KEY,
  account_id               TEXT NOT NULL REFERENCES accounts (id),
  amount_minor             BIGINT NOT NULL CHECK (amount_minor > 0),
  currency                 TEXT NOT NULL,
  provider                 TEXT NOT NULL,
  destination_ref          TEXT NOT NULL,
  status                   TEXT NOT NULL CHECK (status IN ('pending','paid','failed')),
  hold_transfer_id         TEXT NOT NULL UNIQUE REFERENCES transfers (id),
  provider_idempotency_key TEXT NOT NULL UNIQUE,
  provider_payout_id       TEXT UNIQUE,
  attempt_count            BIGINT NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
  max_attempts             INTEGER NOT NULL CHECK (max_attempts >= 1),
  last_error               TEXT,
  metadata                 TEXT,
  created_at               BIGINT NOT NULL,
  updated_at               BIGINT NOT NULL,
  version                  BIGINT NOT NULL CHECK (version >= 1),
  CHECK ((status = 'paid') = (provider_payout_id IS NOT NULL))
);
CREATE INDEX payouts_status ON payouts (status, id);

-- Every attempt and every outcome; seq is the payout's version after it.
CREATE TABLE payout_attempts (
  payout_id   TEXT NOT NULL REFERENCES payouts (id),
  seq         BIGINT NOT NULL,
  attempt     BIGINT NOT NULL CHECK (attempt >= 1),
  outcome     TEXT NOT NULL CHECK (outcome IN ('started','failed','succeeded')),
  reason      TEXT,
  retryable   INTEGER CHECK (retryable IS NULL OR retryable IN (0,1)),
  created_at  BIGINT NOT NULL,
  PRIMARY KEY (payout_id, seq)
);
