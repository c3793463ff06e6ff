-- 009_approval_actor_keys (PostgreSQL): the API key that approved or
-- rejected an approval, beside the one that requested it (005). Who acted is
-- the key; `approved_by` / `rejected_by` stay the labels the client chose.
-- NULL for transitions made before this migration and for library calls,
-- which have no key.
--
-- The self-approval rule moves from the labels to the keys: when both the
-- requesting and the approving key are known, they must differ (two keys
-- may share a label); otherwise (an approval made before 005 has no
-- requesting key; a library call has no approving key) the labels must
-- differ, as before. The old CHECK compared labels only, so it is replaced;
-- it was unnamed, so it is found by its text.
ALTER TABLE approvals ADD COLUMN approved_key TEXT;
ALTER TABLE approvals ADD COLUMN rejected_key TEXT;

DO $$
DECLARE c TEXT;
BEGIN
  FOR c IN SELECT conname FROM pg_constraint
            WHERE conrelid = 'approvals'::regclass AND contype = 'c'
              AND pg_get_constraintdef(oid) LIKE '%approved_by <> requested_by%'
  LOOP
    EXECUTE format('ALTER TABLE approvals DROP CONSTRAINT %I', c);
  END LOOP;
END $$;

ALTER TABLE approvals ADD CONSTRAINT approvals_distinct_approver CHECK (
  require_distinct_approver = 0 OR approved_by IS NULL OR
  CASE WHEN requested_key IS NOT NULL AND approved_key IS NOT NULL
       THEN approved_key <> requested_key
       ELSE approved_by <> requested_by END);
