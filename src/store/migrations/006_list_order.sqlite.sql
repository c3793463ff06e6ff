-- 006_list_order (SQLite): lists in commit order (src/core/listing.h).
-- SQLite has one writer at a time (BEGIN IMMEDIATE, across processes), so a
-- counter bumped inside the write transaction grows in commit order:
-- list_clock holds it, and a trigger stamps each inserted row with the next
-- value. A SAVEPOINT rolled back by group commit takes its bump with it.
-- Nothing can commit behind a reader, so list_horizon has no bound.
-- Rows from before this migration get 0 and come first, in id order.

CREATE TABLE list_clock (
  id  INTEGER PRIMARY KEY CHECK (id = 1),
  pos BIGINT NOT NULL
);
INSERT INTO list_clock (id, pos) VALUES (1, 0);

CREATE VIEW list_horizon AS SELECT 9223372036854775807 AS horizon;

ALTER TABLE entitlements ADD COLUMN list_pos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN list_pos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payouts ADD COLUMN list_pos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE approvals ADD COLUMN list_pos BIGINT NOT NULL DEFAULT 0;

CREATE TRIGGER entitlements_list_pos AFTER INSERT ON entitlements BEGIN
  UPDATE list_clock SET pos = pos + 1 WHERE id = 1;
  UPDATE entitlements SET list_pos = (SELECT pos FROM list_clock WHERE id = 1)
   WHERE rowid = NEW.rowid;
END;
CREATE TRIGGER api_keys_list_pos AFTER INSERT ON api_keys BEGIN
  UPDATE list_clock SET pos = pos + 1 WHERE id = 1;
  UPDATE api_keys SET list_pos = (SELECT pos FROM list_clock WHERE id = 1)
   WHERE rowid = NEW.rowid;
END;
CREATE TRIGGER payouts_list_pos AFTER INSERT ON payouts BEGIN
  UPDATE list_clock SET pos = pos + 1 WHERE id = 1;
  UPDATE payouts SET list_pos = (SELECT pos FROM list_clock WHERE id = 1)
   WHERE rowid = NEW.rowid;
END;
CREATE TRIGGER approvals_list_pos AFTER INSERT ON approvals BEGIN
  UPDATE list_clock SET pos = pos + 1 WHERE id = 1;
  UPDATE approvals SET list_pos = (SELECT pos FROM list_clock WHERE id = 1)
   WHERE rowid = NEW.rowid;
END;

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
