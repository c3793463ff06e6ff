-- 014_schedules (PostgreSQL): the runs of `racefree serve --schedule`.
--
-- schedule_runs: one row per (schedule name, interval, slot), where a slot
-- is floor(now_ms / interval_ms): the interval's identity (the interval is
-- part of the key, so a schedule whose interval changes never meets the
-- slot numbers of its old interval). Every node of a
-- deployment ticks each slot; the PRIMARY KEY decides which one runs it
-- (INSERT .. ON CONFLICT DO NOTHING RETURNING: the node whose insert made
-- the row runs the slot, every other node's insert changes nothing), so N
-- processes on one store run each interval once: a stateless endpoint
-- invocation that anyone may repeat cannot. The row records the run
-- (started, finished, status, the batches it made, the last error); a
-- winner that died mid-run leaves status running, and a later tick (any
-- node) resumes it with the same run keys, which the payout batches are
-- idempotent on.

CREATE TABLE schedule_runs (
  id           TEXT NOT NULL UNIQUE,   -- "<name>:<interval_ms>:<slot>": the list cursor
  name         TEXT NOT NULL,
  slot         BIGINT NOT NULL CHECK (slot >= 0),
  spec         TEXT NOT NULL,
  interval_ms  BIGINT NOT NULL CHECK (interval_ms > 0),
  node         TEXT NOT NULL,          -- who claimed it
  via          TEXT NOT NULL CHECK (via IN ('schedule','http')),  -- what claimed it
  status       TEXT NOT NULL CHECK (status IN ('running','succeeded','failed')),
  attempts     BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  batch_ids    TEXT NOT NULL DEFAULT '',  -- comma-separated payout batch ids
  error        TEXT,
  started_at   BIGINT NOT NULL,
  updated_at   BIGINT NOT NULL,
  resume_at    BIGINT NOT NULL,        -- from then on any node may resume a running run
  finished_at  BIGINT,
  list_pos     BIGINT NOT NULL DEFAULT txid_current(),
  PRIMARY KEY (name, interval_ms, slot),
  CHECK ((status = 'running') = (finished_at IS NULL))
);


CREATE INDEX schedule_runs_list ON schedule_runs (name, list_pos, id);
CREATE INDEX schedule_runs_running ON schedule_runs (name, interval_ms, resume_at)
  WHERE status = 'running';
