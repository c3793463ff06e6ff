-- 010_checkouts (SQLite): checkout sessions (src/core/checkouts.c).
-- UNIQUE (provider, provider_ref) is the provider reference's binding
-- identity: two checkouts can never hold one provider's reference, decided
-- by the database, not by a prior SELECT. Many checkouts without a reference
-- yet coexist (NULLs are distinct in a UNIQUE constraint).
-- A pending checkout past expires_at reads as expired (checkouts.c).

CREATE TABLE checkouts (
  id               TEXT PRIMARY KEY,
  user_id          TEXT NOT NULL,
  currency         TEXT NOT NULL CHECK (length(currency) = 3),
  amount_minor     BIGINT NOT NULL CHECK (amount_minor > 0),
  provider         TEXT NOT NULL,
  provider_ref     TEXT,
  status           TEXT NOT NULL CHECK (status IN
                     ('pending','paid','fulfilled','expired','canceled','refunded')),
  items            TEXT NOT NULL,
  refund_shortfall BIGINT NOT NULL DEFAULT 0 CHECK (refund_shortfall >= 0),
  expires_at       BIGINT NOT NULL,
  created_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  version          BIGINT NOT NULL CHECK (version >= 1),
  list_pos         BIGINT NOT NULL DEFAULT 0,
  UNIQUE (provider, provider_ref)
);

-- One row per item, in the order of the request (idx from 0). What
-- fulfilment did is recorded on the item: the entitlement it granted (NULL:
-- the user already held the key from another source, so this checkout
-- granted nothing and a refund revokes nothing), the credit's transfer and,
-- after a refund, its reversal and the part not reversed (shortfall).
CREATE TABLE checkout_items (
  checkout_id      TEXT NOT NULL REFERENCES checkouts (id),
  idx              BIGINT NOT NULL CHECK (idx >= 0),
  type             TEXT NOT NULL CHECK (type IN ('entitlement','credit')),
  entitlement_key  TEXT,
  account_id       TEXT,
  amount_minor     BIGINT,
  entitlement_id   TEXT,
  transfer_id      TEXT,
  reversal_id      TEXT,
  shortfall        BIGINT NOT NULL DEFAULT 0 CHECK (shortfall >= 0),
  PRIMARY KEY (checkout_id, idx),
  CHECK ((type = 'entitlement' AND entitlement_key IS NOT NULL AND account_id IS NULL
          AND amount_minor IS NULL)
      OR (type = 'credit' AND entitlement_key IS NULL AND account_id IS NOT NULL
          AND amount_minor > 0))
);

-- Every transition attempt, allowed or not: applied = 0 records one the
-- state machine refused (it changed nothing).
CREATE TABLE checkout_transitions (
  id           TEXT PRIMARY KEY,
  checkout_id  TEXT NOT NULL REFERENCES checkouts (id),
  from_status  TEXT NOT NULL,
  to_status    TEXT NOT NULL,
  cause        TEXT NOT NULL,
  applied      INTEGER NOT NULL CHECK (applied IN (0,1)),
  at           BIGINT NOT NULL
);
CREATE INDEX checkout_transitions_checkout ON checkout_transitions (checkout_id, id);

CREATE TRIGGER checkouts_list_pos AFTER INSERT ON checkouts BEGIN
  UPDATE list_clock SET pos = pos + 1 WHERE id = 1;
  UPDATE checkouts SET list_pos = (SELECT pos FROM list_clock WHERE id = 1)
   WHERE rowid = NEW.rowid;
END;
CREATE INDEX checkouts_user_list ON checkouts (user_id, list_pos, id);

-- The ledger check (racefree reconcile) finds an item by what it made.
CREATE INDEX checkout_items_transfer ON checkout_items (transfer_id);
CREATE INDEX checkout_items_reversal ON checkout_items (reversal_id);
CREATE INDEX checkout_items_entitlement ON checkout_items (entitlement_id);
