-- 005_approval_requester_key: the API key that created an approval.
-- Who acted is the API key; `requested_by` is a label the client chose.
-- Cancelling is for the key that asked (or an admin key), so the key is
-- recorded on the approval. NULL for approvals made before this migration:
-- only an admin key can cancel those.
ALTER TABLE approvals ADD COLUMN requested_key TEXT;
