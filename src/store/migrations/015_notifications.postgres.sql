-- 015_notifications (PostgreSQL): a user's notifications, with one read state.
--
-- read_at is THE read state: NULL while unread, else the first read's time
-- (int64 ms). A read is one guarded UPDATE (WHERE read_at IS NULL), so
-- racing reads keep the first time and bump the version once.
--
-- Identity: a notification's dedupe_key is unique per user, and an
-- announcement makes at most one notification per user; both are partial
-- UNIQUE indexes, so a create is INSERT .. ON CONFLICT DO NOTHING and two
-- racing sends of one key make one row (never a SELECT-then-INSERT).
--
-- Commit order for the lists (core/listing.h): list_pos is the inserting
-- transaction's id, as every list's.

CREATE TABLE notifications (
  id               TEXT PRIMARY KEY,
  user_id          TEXT NOT NULL,
  kind             TEXT NOT NULL,
  title            TEXT NOT NULL,
  body             TEXT NOT NULL,
  data             TEXT,
  dedupe_key       TEXT,
  announcement_id  TEXT,
  read_at          BIGINT,
  created_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  version          BIGINT NOT NULL DEFAULT 1,
  list_pos         BIGINT NOT NULL DEFAULT txid_current()
);

CREATE UNIQUE INDEX notifications_dedupe ON notifications (user_id, dedupe_key)
  WHERE dedupe_key IS NOT NULL;
CREATE UNIQUE INDEX notifications_announcement ON notifications (announcement_id, user_id)
  WHERE announcement_id IS NOT NULL;
-- A user's list in commit order.
CREATE INDEX notifications_user ON notifications (user_id, list_pos, id);
-- A user's unread ones: the count and ?unread=true.
CREATE INDEX notifications_unread ON notifications (user_id, list_pos, id)
  WHERE read_at IS NULL;
