-- 008_ledger_list_order (PostgreSQL): GET /v1/accounts and GET
-- /v1/transfers in commit order, as every list (006_list_order,
-- src/core/listing.h): list_pos is the id of the transaction that inserted
-- the row, and a list shows only rows below list_horizon. Rows from before
-- this migration get 0 and come first, in id order. Adding the column with
-- DEFAULT 0 and then setting the insert default fills existing rows without
-- rewriting the tables.

ALTER TABLE accounts ADD COLUMN list_pos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ALTER COLUMN list_pos SET DEFAULT txid_current();
ALTER TABLE transfers ADD COLUMN list_pos BIGINT NOT NULL DEFAULT 0;
ALTER TABLE transfers ALTER COLUMN list_pos SET DEFAULT txid_current();

CREATE INDEX accounts_list ON accounts (list_pos, id);
CREATE INDEX transfers_list ON transfers (list_pos, id);

-- The lists read transfers through this view, as on SQLite (where list_pos
-- is the rowid). A migration that adds a column to transfers re-creates it.
CREATE VIEW transfers_listed AS SELECT * FROM transfers;
