-- 001_init: API keys, Idempotency-Keys and entitlements.
-- Every natural key is a UNIQUE or PRIMARY KEY constraint: code never relies
-- on a prior SELECT to avoid a duplicate. Times are int64 milliseconds (UTC).
-- One text serves both back ends: BIGINT has INTEGER affinity in SQLite.

CREATE TABLE api_keys (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  role        TEXT NOT NULL CHECK (role IN ('admin','service','worker','readonly')),
  secret_hash TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  revoked_at  BIGINT
);

CREATE TABLE idempotency_keys (
  key_id       TEXT NOT NULL,
  idem_key     TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status       BIGINT NOT NULL,
  body         TEXT NOT NULL,
  headers      TEXT,
  created_at   BIGINT NOT NULL,
  expires_at   BIGINT NOT NULL,
  PRIMARY KEY (key_id, idem_key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

CREATE TABLE entitlements (
  id              TEXT PRIMARY KEY,
  user_id         TEXT NOT NULL,
  entitlement_key TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('active','revoked')),
  source          TEXT,
  metadata        TEXT,
  expires_at      BIGINT,
  granted_at      BIGINT NOT NULL,
  revoked_at      BIGINT,
  updated_at      BIGINT NOT NULL,
  version         BIGINT NOT NULL CHECK (version >= 1),
  CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
  UNIQUE (user_id, entitlement_key)
);
CREATE INDEX entitlements_user_id ON entitlements (user_id, id);

-- One row at most: the first admin key is created exactly once per store.
CREATE TABLE bootstrap (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  key_id     TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
