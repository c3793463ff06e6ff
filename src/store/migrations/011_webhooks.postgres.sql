-- 011_webhooks (PostgreSQL): webhook signing secrets and the event ledger.
--
-- webhook_secrets: one row per provider, holding its primary secret and,
-- during a rotation's overlap, the previous one with the time it stops
-- being accepted. Both are sealed (libsodium secretbox, hex of nonce ||
-- ciphertext) under the process's secrets key (core/webhooks.c): HMAC
-- verification needs the secret itself, so a hash cannot serve.
--
-- webhook_events: every verified event, once. UNIQUE (provider, event_id)
-- decides first delivery against replay inside the transaction that applies
-- the event's effect (INSERT .. ON CONFLICT DO NOTHING), so parallel
-- deliveries of one event cannot both apply it.

CREATE TABLE webhook_secrets (
  provider             TEXT PRIMARY KEY,
  primary_sealed       TEXT NOT NULL,
  primary_set_at       BIGINT NOT NULL,
  previous_sealed      TEXT,
  previous_expires_at  BIGINT NOT NULL DEFAULT 0,
  version              BIGINT NOT NULL,
  list_pos             BIGINT NOT NULL DEFAULT txid_current()
);

-- secrets_store_key: the key that seals the secrets when the process is
-- given none (RACEFREE_SECRETS_KEY / _FILE): one random key per store, made
-- by the first secret set, so webhooks work with no set-up on every node.
CREATE TABLE secrets_store_key (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  key_hex  TEXT NOT NULL
);

CREATE TABLE webhook_events (
  id                TEXT PRIMARY KEY,
  provider          TEXT NOT NULL,
  event_id          TEXT NOT NULL,
  type              TEXT NOT NULL,
  status            TEXT NOT NULL
                    CHECK (status IN ('processed','ignored','unmatched','deferred')),
  effect            TEXT CHECK (effect IN ('paid','expired','refunded')),
  checkout_id       TEXT,
  provider_ref      TEXT,
  event_created_at  BIGINT NOT NULL,
  received_at       BIGINT NOT NULL,
  list_pos          BIGINT NOT NULL DEFAULT txid_current(),
  UNIQUE (provider, event_id)
);

CREATE INDEX webhook_secrets_list ON webhook_secrets (list_pos, provider);
CREATE INDEX webhook_events_list ON webhook_events (list_pos, id);
CREATE INDEX webhook_events_status_list ON webhook_events (status, list_pos, id);
-- Events still waiting for their checkout (unmatched: none found yet;
-- deferred: a refund delivered before the payment), found again by
-- webhook_events_match when the checkout appears or is paid.
CREATE INDEX webhook_events_waiting_checkout ON webhook_events (provider, checkout_id)
  WHERE status IN ('unmatched', 'deferred');
CREATE INDEX webhook_events_waiting_ref ON webhook_events (provider, provider_ref)
  WHERE status IN ('unmatched', 'deferred');
