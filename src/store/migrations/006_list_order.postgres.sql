-- 006_list_order (PostgreSQL): lists in commit order (src/core/listing.h).
-- list_pos is the id of the transaction that inserted the row; a list shows
-- only rows below list_horizon, so no row can ever commit behind a cursor.
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

-- The horizon is the oldest transaction still running as the view is read
-- (all those before it have finished: nothing can commit below it any
-- more), or the snapshot's xmax when none is. A transaction of the
-- snapshot that has finished since is left out (txid_status): a list reads
-- its rows in a later statement, with a later snapshot that sees them
-- (src/core/listing.h). Running transactions that pg_stat_activity shows in
-- another database of the cluster cannot write these tables and are left
-- out too, so a long transaction elsewhere (CREATE DATABASE, a batch job)
-- does not hold lists back. The CTEs fix the order: pg_stat_activity is
-- read before any txid_status call, so a transaction still running at that
-- call was running, and shown, when pg_stat_activity was read; one that
-- cannot be placed counts. A txid is epoch << 32 | xid.
CREATE VIEW list_horizon AS
WITH other_db AS MATERIALIZED (
  SELECT a.backend_xid::text::bigint AS xid FROM pg_stat_activity a
   WHERE a.backend_xid IS NOT NULL AND a.datname <> current_database()),
snap AS MATERIALIZED (
  SELECT txid_current_snapshot() AS s, (SELECT count(*) FROM other_db) AS n_other),
mine AS MATERIALIZED (
  SELECT x FROM snap, txid_snapshot_xip(snap.s) AS x
   WHERE snap.n_other >= 0 AND (x % 4294967296) NOT IN (SELECT xid FROM other_db))
SELECT COALESCE(
  (SELECT min(x) FROM mine WHERE txid_status(x) = 'in progress'),
  (SELECT txid_snapshot_xmax(s) FROM snap)) AS horizon;

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
