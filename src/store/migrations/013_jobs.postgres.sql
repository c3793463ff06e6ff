-- 013_jobs (PostgreSQL): the job queue and drop-in processing.
--
-- jobs: one row per job. Its identity while it is live is the partial
-- UNIQUE index jobs_unique_live on (queue, unique_key) over the available
-- and running rows: an enqueue is INSERT .. ON CONFLICT DO NOTHING, so two
-- racing enqueues of one key make one row (never a SELECT-then-INSERT).
-- token is the fencing token: every claim bumps it, and a worker's
-- heartbeat, complete or fail is one UPDATE guarded by token and status.
-- Times are int64 milliseconds.
--
-- drop_in_photos: the photo's current processing job (its identity is the
-- photo id); drop_in_matches: one row per (photo, attendee, face), UNIQUE.

CREATE TABLE jobs (
  id                TEXT PRIMARY KEY,
  queue             TEXT NOT NULL,
  kind              TEXT NOT NULL,
  payload           TEXT NOT NULL,
  unique_key        TEXT,
  status            TEXT NOT NULL
                    CHECK (status IN ('available','running','completed','failed','canceled')),
  priority          BIGINT NOT NULL CHECK (priority BETWEEN 0 AND 100),
  run_at            BIGINT NOT NULL,
  attempt           BIGINT NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  max_attempts      BIGINT NOT NULL CHECK (max_attempts >= 1),
  token             BIGINT NOT NULL DEFAULT 0,
  worker_id         TEXT,
  lease_expires_at  BIGINT,
  lease_ms          BIGINT NOT NULL DEFAULT 0,
  last_error        TEXT,
  result            TEXT,
  created_at        BIGINT NOT NULL,
  updated_at        BIGINT NOT NULL,
  finished_at       BIGINT,
  version           BIGINT NOT NULL DEFAULT 1,
  CHECK ((status = 'running') = (lease_expires_at IS NOT NULL))
);

CREATE UNIQUE INDEX jobs_unique_live ON jobs (queue, unique_key)
  WHERE unique_key IS NOT NULL AND status IN ('available','running');
-- The claim's order, over the rows it may take.
CREATE INDEX jobs_claim ON jobs (queue, priority, run_at, id) WHERE status = 'available';
-- The rescue's scan.
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_queue_status ON jobs (queue, status);

CREATE TABLE drop_in_photos (
  photo_id    TEXT PRIMARY KEY,
  job_id      TEXT NOT NULL REFERENCES jobs (id),
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL
);

CREATE TABLE drop_in_matches (
  id             TEXT PRIMARY KEY,
  photo_id       TEXT NOT NULL,
  attendee_id    TEXT NOT NULL,
  face_id        TEXT NOT NULL,
  similarity_bp  BIGINT NOT NULL CHECK (similarity_bp BETWEEN 0 AND 10000),
  metadata       TEXT,
  created_at     BIGINT NOT NULL,
  list_pos       BIGINT NOT NULL DEFAULT txid_current(),
  UNIQUE (photo_id, attendee_id, face_id)
);


CREATE INDEX drop_in_matches_list ON drop_in_matches (photo_id, list_pos, id);
