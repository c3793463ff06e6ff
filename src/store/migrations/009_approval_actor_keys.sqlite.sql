-- 009_approval_actor_keys (SQLite): the API key that approved or rejected an
-- approval, beside the one that requested it (005). Who acted is the key;
-- `approved_by` / `rejected_by` stay the labels the client chose. NULL for
-- transitions made before this migration and for library calls, which have
-- no key.
--
-- The self-approval rule moves from the labels to the keys: when both the
-- requesting and the approving key are known, they must differ (two keys
-- may share a label); otherwise (an approval made before 005 has no
-- requesting key; a library call has no approving key) the labels must
-- differ, as before. A CHECK cannot be altered in place, so the table is
-- rebuilt (as 007 rebuilt transfers), with its list trigger and indexes;
-- no table references approvals.

CREATE TABLE approvals_009 (
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
  requested_key             TEXT,
  list_pos                  BIGINT NOT NULL DEFAULT 0,
  approved_key              TEXT,
  rejected_key              TEXT,
  CHECK ((status = 'approved') = (executed_at IS NOT NULL)),
  CHECK ((status = 'approved') = (approved_by IS NOT NULL AND approved_at IS NOT NULL
                                  AND result IS NOT NULL)),
  CHECK (status = 'approved' OR (approved_by IS NULL AND approved_at IS NULL AND result IS NULL)),
  CHECK ((status = 'rejected') = (rejected_by IS NOT NULL AND rejected_at IS NOT NULL)),
  CHECK (status = 'rejected' OR (rejected_by IS NULL AND rejected_at IS NULL
                                 AND rejection_reason IS NULL)),
  CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
  CHECK (require_distinct_approver = 0 OR approved_by IS NULL OR
         CASE WHEN requested_key IS NOT NULL AND approved_key IS NOT NULL
              THEN approved_key <> requested_key
              ELSE approved_by <> requested_by END)
);

INSERT INTO approvals_009 (id, status, action_type, action, requested_by,
  require_distinct_approver, metadata, expires_at, approved_by, approved_at, executed_at, result,
  rejected_by, rejected_at, rejection_reason, cancelled_at, created_at, updated_at, version,
  requested_key, list_pos)
SELECT id, status, action_type, action, requested_by, require_distinct_approver, metadata,
  expires_at, approved_by, approved_at, executed_at, result, rejected_by, rejected_at,
  rejection_reason, cancelled_at, created_at, updated_at, version, requested_key, list_pos
FROM approvals ORDER BY rowid;

DROP TABLE approvals;
ALTER TABLE approvals_009 RENAME TO approvals;

CREATE TRIGGER approvals_list_pos AFTER INSERT ON approvals BEGIN
  UPDATE list_clock SET pos = pos + 1 WHERE id = 1;
  UPDATE approvals SET list_pos = (SELECT pos FROM list_clock WHERE id = 1)
   WHERE rowid = NEW.rowid;
END;
CREATE INDEX approvals_list ON approvals (list_pos, id);
CREATE INDEX approvals_status_list ON approvals (status, list_pos, id);
