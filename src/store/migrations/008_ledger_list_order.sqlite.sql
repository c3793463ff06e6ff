-- 008_ledger_list_order (SQLite): GET /v1/accounts and GET /v1/transfers in
-- commit order, as every list (006_list_order, src/core/listing.h): each
-- inserted account is stamped by a trigger with the next value of
-- list_clock, bumped inside the write transaction (one writer at a time, so
-- counter order is commit order). Rows from before this migration get 0 and
-- come first, in id order.
--
-- Transfers are listed through transfers_listed, whose list_pos is the
-- rowid: a transfer is never deleted, so each insert takes max(rowid) + 1
-- inside the one write transaction, and rowid order is commit order too. A
-- trigger would cost every credit and transfer a counter update and a
-- rewrite of the row it just inserted (and the store's RETURNING shortcut,
-- which needs a table without triggers); the rowid costs nothing.

ALTER TABLE accounts ADD COLUMN list_pos BIGINT NOT NULL DEFAULT 0;

CREATE TRIGGER accounts_list_pos AFTER INSERT ON accounts BEGIN
  UPDATE list_clock SET pos = pos + 1 WHERE id = 1;
  UPDATE accounts SET list_pos = (SELECT pos FROM list_clock WHERE id = 1)
   WHERE rowid = NEW.rowid;
END;

CREATE INDEX accounts_list ON accounts (list_pos, id);
CREATE VIEW transfers_listed AS SELECT rowid AS list_pos, * FROM transfers;
