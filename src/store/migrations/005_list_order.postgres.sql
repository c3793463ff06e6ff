-- 005_list_order (PostgreSQL): lists in commit order (src/core/listing.h).
-- list_pos is the id of the transaction that inserted the row; a list shows
-- only rows below list_horizon, the oldest transaction still running in the
-- reading statement's snapshot, so no row can ever commit behind a cursor.
-- Rows from before this migration get 0 and come first, in id order.
-- Adding the column with DEFAULT 0 and then setting the insert default
-- fills existing rows without rewriting the tables.

ALTER TABLE entitlements ADD COLUMN list_pos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE entitlements ALTER COLUMN list_pos SET DEFAULT txid_current();
ALTER TABLE api_keys ADD COLUMN list_pos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ALTER COLUMN list_pos SET DEFAULT txid_current();
ALTER TABLE payouts ADD COLUMN list_pos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payouts ALTER COLUMN list_pos SET DEFAULT txid_current();
ALTER TABLE approvals ADD COLUMN list_pos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE approvals ALTER COLUMN list_pos SET DEFAULT txid_current();

CREATE VIEW list_horizon AS SELECT txid_snapshot_xmin(txid_current_snapshot()) AS horizon;

-- The list orders replace the id-ordered list indexes.
DROP INDEX entitlements_user_id;
CREATE INDEX entitlements_list ON entitlements (user_id, list_pos, id);
CREATE INDEX api_keys_list ON api_keys (list_pos, id);
DROP INDEX payouts_status;
CREATE INDEX payouts_list ON payouts (list_pos, id);
CREATE INDEX payouts_status_list ON payouts (status, list_pos, id);
DROP INDEX approvals_status;
CREATE INDEX approvals_list ON approvals (list_pos, id);
CREATE INDEX approvals_status_list ON approvals (status, list_pos, id);
