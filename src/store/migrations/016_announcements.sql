-- 016_announcements (both back ends): announcements and their delivery truth.
--
-- announcements: one row per announcement. Its fan-out runs on the job queue
-- (queue racefree.announcements, unique_key the announcement's id), enqueued
-- in the transaction that inserts this row, so neither exists without the
-- other. fanout_cursor is the last user id (in byte order) whose recipient row
-- exists: a chunk reads the audience after it, so a chunk resumed after a
-- crash continues where the last committed chunk ended. fanout_done_at: the
-- audience is exhausted (every recipient row exists). The state shown is
-- derived from this and the recipients, never stored.
--
-- announcement_recipients: one row per (announcement, user), the PRIMARY KEY,
-- inserted with ON CONFLICT DO NOTHING, so a resumed or repeated chunk makes no
-- second recipient. status pending -> delivered (with the notification's id)
-- or failed; retry-failed moves failed back to pending. Times: int64 ms.

CREATE TABLE announcements (
  id              TEXT PRIMARY KEY,
  title           TEXT NOT NULL,
  body            TEXT NOT NULL,
  audience_kind   TEXT NOT NULL CHECK (audience_kind IN ('all','user_ids','entitlement_key')),
  audience        TEXT NOT NULL,
  audience_size   BIGINT NOT NULL DEFAULT 0,
  send_at         BIGINT NOT NULL,
  fanout_cursor   TEXT NOT NULL DEFAULT '',
  fanout_done_at  BIGINT,
  retries         BIGINT NOT NULL DEFAULT 0 CHECK (retries >= 0),
  job_id          TEXT NOT NULL,
  created_at      BIGINT NOT NULL,
  updated_at      BIGINT NOT NULL,
  version         BIGINT NOT NULL DEFAULT 1 CHECK (version >= 1)
);

CREATE TABLE announcement_recipients (
  announcement_id  TEXT NOT NULL REFERENCES announcements (id),
  user_id          TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('pending','delivered','failed')),
  notification_id  TEXT,
  attempts         BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_error       TEXT,
  updated_at       BIGINT NOT NULL,
  PRIMARY KEY (announcement_id, user_id),
  CHECK ((status = 'delivered') = (notification_id IS NOT NULL))
);

-- A chunk's pending recipients, in order; the counts by status.
CREATE INDEX announcement_recipients_status
  ON announcement_recipients (announcement_id, status, user_id);
-- The "all" audience and entitlement_key audiences read user ids in order.
CREATE INDEX entitlements_key_user ON entitlements (entitlement_key, user_id);
