-- 004_versions: versions that never repeat for a natural key.
-- A resource whose row is deleted and created again (a customer binding:
-- unbind, then bind) would start again at version 1, and a stale If-Match
-- from the old incarnation would then match the new one. version_counters
-- keeps the highest version ever handed out per natural key; a re-creation
-- takes the next one with an atomic upsert on the PRIMARY KEY (the row lock
-- orders racing re-creations), never from a prior SELECT.
--
--   resource     what the key names ('binding_user': (provider, user_id);
--                'binding_customer': (provider, customer_id))
--   scope        the namespace of the key (the provider); '' with
--                natural_key '' is the resource's floor: every key of that
--                resource starts above it
--   last_version the highest version given out for this key

CREATE TABLE version_counters (
  resource     TEXT NOT NULL,
  scope        TEXT NOT NULL,
  natural_key  TEXT NOT NULL,
  last_version BIGINT NOT NULL CHECK (last_version >= 1),
  PRIMARY KEY (resource, scope, natural_key)
);

-- The live bindings carry on from their current version.
INSERT INTO version_counters (resource, scope, natural_key, last_version)
  SELECT 'binding_user', provider, user_id, version FROM customer_bindings;
INSERT INTO version_counters (resource, scope, natural_key, last_version)
  SELECT 'binding_customer', provider, customer_id, version FROM customer_bindings;

-- Deleted bindings left no row, but before this migration every binding was
-- created at version 1 and never changed: a store already in use gets a
-- floor of 1, so no binding made from now on is version 1 again. A fresh
-- store (every table still empty) keeps starting at 1.
INSERT INTO version_counters (resource, scope, natural_key, last_version)
  SELECT r.resource, '', '', 1
  FROM (SELECT 'binding_user' AS resource UNION ALL SELECT 'binding_customer') AS r
  WHERE EXISTS (SELECT 1 FROM api_keys) OR EXISTS (SELECT 1 FROM customer_bindings)
     OR EXISTS (SELECT 1 FROM entitlements) OR EXISTS (SELECT 1 FROM accounts)
     OR EXISTS (SELECT 1 FROM approvals);
