-- 017_rate_limits (both back ends): the distributed rate limiter's state and
-- the per-key limits.
--
-- api_keys.rate_limit_quota / rate_limit_window_ms: a key's own limit
-- (quota requests per window), overriding its role's (serve --rate-limit);
-- both NULL: the role's limit, if any.
--
-- rate_limits: one row per (API key, route class) holding the GCRA
-- theoretical arrival time (tat, ms since the epoch). Every limited request
-- is one UPSERT on the PRIMARY KEY that advances tat only when the request
-- conforms, so N server processes on one store share one limit and no two
-- requests read-modify-write the same tat across statements.
ALTER TABLE api_keys ADD COLUMN rate_limit_quota BIGINT
  CHECK (rate_limit_quota IS NULL OR rate_limit_quota >= 1);
ALTER TABLE api_keys ADD COLUMN rate_limit_window_ms BIGINT
  CHECK (rate_limit_window_ms IS NULL OR rate_limit_window_ms >= 1);

CREATE TABLE rate_limits (
  key_id       TEXT NOT NULL,
  route_class  TEXT NOT NULL,
  tat          BIGINT NOT NULL,
  PRIMARY KEY (key_id, route_class)
);
