-- 008_ledger_list_order (SQLite): GET /v1/accounts and GET /v1/transfers in
-- commit order, as every list (006_list_order, src/core/listing.h): each
-- inserted account and transfer is stamped by a trigger with the next value
-- of list_clock, bumped inside the write transaction (one writer at a
-- time, so counter order is commit order). Rows from before this migration
-- get 0 and come first, in id order.

ALTER TABLE accounts ADD COLUMN list_pos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE transfers ADD COLUMN list_pos BIGINT NOT NULL DEFAULT 0;

CREATE TRIGGER accounts_list_pos AFTER INSERT ON accounts BEGIN
  UPDATE list_clock SET pos = pos + 1 WHERE id = 1;
  UPDATE accounts SET list_pos = (SELECT pos FROM list_clock WHERE id = 1)
   WHERE rowid = NEW.rowid;
END;
CREATE TRIGGER transfers_list_pos AFTER INSERT ON transfers BEGIN
  UPDATE list_clock SET pos = pos + 1 WHERE id = 1;
  UPDATE transfers SET list_pos = (SELECT pos FROM list_clock WHERE id = 1)
   WHERE rowid = NEW.rowid;
END;

CREATE INDEX accounts_list ON accounts (list_pos, id);
CREATE INDEX transfers_list ON transfers (list_pos, id);
