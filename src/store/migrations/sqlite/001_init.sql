-- 001_init: API keys, Idempotency-Keys and entitlements.
-- Every natural key is a UNIQUE or PRIMARY KEY constraint: code never relies
-- on a prior SELECT to avoid a duplicate. Times are int64 milliseconds (UTC).

CREATE TABLE api_keys (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  role        TEXT NOT NULL CHECK (role IN ('admin','service','worker','readonly')),
  secret_hash TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
);

CREATE TABLE idempotency_keys (
  key_id       TEXT NOT NULL,
  idem_key     TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status       INTEGER NOT NULL,
  body         TEXT NOT NULL,
  headers      TEXT,
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
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
  expires_at      INTEGER,
  granted_at      INTEGER NOT NULL,
  revoked_at      INTEGER,
  updated_at      INTEGER NOT NULL,
  version         INTEGER NOT NULL CHECK (version >= 1),
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
