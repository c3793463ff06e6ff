-- 003_bindings_approvals: provider-customer bindings and approvals.
-- Bindings are one-to-one per provider in both directions: both directions
-- are constraints, so the database, not a prior SELECT, decides who wins.
-- Approvals carry CHECKs that make a contradictory row (executed but
-- rejected, approved without an approver) impossible to store.

CREATE TABLE customer_bindings (
  provider    TEXT NOT NULL,
  user_id     TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  version     BIGINT NOT NULL CHECK (version >= 1),
  PRIMARY KEY (provider, user_id),
  UNIQUE (provider, customer_id)
);

CREATE TABLE approvals (
  id                        TEXT PRIMARY KEY,
  status                    TEXT NOT NULL
                            CHECK (status IN ('pending','approved','rejected','cancelled')),
  action_type               TEXT NOT NULL
                            CHECK (action_type IN ('transfer','entitlement_grant','payout')),
  action                    TEXT NOT NULL,
  requested_by              TEXT NOT NULL,
  require_distinct_approver INTEGER NOT NULL CHECK (require_distinct_approver IN (0,1)),
  metadata                  TEXT,
  expires_at                BIGINT,
  approved_by               TEXT,
  approved_at               BIGINT,
  executed_at               BIGINT,
  result                    TEXT,
  rejected_by               TEXT,
  rejected_at               BIGINT,
  rejection_reason          TEXT,
  cancelled_at              BIGINT,
  created_at                BIGINT NOT NULL,
  updated_at                BIGINT NOT NULL,
  version                   BIGINT NOT NULL CHECK (version >= 1),
  -- executed if and only if approved, and approved means fully recorded
  CHECK ((status = 'approved') = (executed_at IS NOT NULL)),
  CHECK ((status = 'approved') = (approved_by IS NOT NULL AND approved_at IS NOT NULL
                                  AND result IS NOT NULL)),
  CHECK (status = 'approved' OR (approved_by IS NULL AND approved_at IS NULL AND result IS NULL)),
  -- rejection fields only when rejected
  CHECK ((status = 'rejected') = (rejected_by IS NOT NULL AND rejected_at IS NOT NULL)),
  CHECK (status = 'rejected' OR (rejected_by IS NULL AND rejected_at IS NULL
                                 AND rejection_reason IS NULL)),
  CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
  CHECK (require_distinct_approver = 0 OR approved_by IS NULL OR approved_by <> requested_by)
);
CREATE INDEX approvals_status ON approvals (status, id);
