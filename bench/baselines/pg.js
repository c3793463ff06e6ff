'use strict';
// pg.js - the hand-written fix on PostgreSQL with node-postgres, as the seeds
// recommend it: Node `cluster` with BASELINE_WORKERS processes (default 3),
// each with a pg Pool of BASELINE_POOL connections (default 16, racefree's
// --pool default), one transaction per write:
// - credit (DI-002): BEGIN / Idempotency-Key check / SELECT ... FOR UPDATE of
//   the account / UPDATE balance = balance + $1 / INSERT history / COMMIT.
// - transfer: the same, locking both accounts FOR UPDATE in id order (no
//   deadlock between two transfers), the overdraft checked under the lock.
// - grant (DEBT-015's fix): in one transaction, INSERT ... ON CONFLICT DO
//   NOTHING RETURNING, else the existing row.
// - jobs (seed 001's queue worker with job identity): enqueue INSERT ... ON
//   CONFLICT on a partial UNIQUE (queue, unique_key) of live jobs; claim one
//   UPDATE ... FROM (a MATERIALIZED CTE ... FOR UPDATE SKIP LOCKED) that bumps
//   the fencing token; complete UPDATE ... WHERE token = $2 AND running.
// Two requests racing with one Idempotency-Key: the loser's history INSERT
// hits the UNIQUE key, rolls back, and it answers the winner's row.
// BASELINE_PG_URL is the database; BASELINE_LISTEN, BASELINE_TOKEN as in http.js.
const cluster = require('node:cluster');
const { randomUUID } = require('node:crypto');
const { Pool } = require('pg');
const { serve, Problem, transferJson, jobJson } = require('./http');

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, currency TEXT NOT NULL,
    kind TEXT NOT NULL, balance BIGINT NOT NULL DEFAULT 0, created_at TIMESTAMPTZ NOT NULL DEFAULT now());
  CREATE TABLE IF NOT EXISTS history (id UUID PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,
    debit_account TEXT NOT NULL, credit_account TEXT NOT NULL, amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now());
  CREATE TABLE IF NOT EXISTS entitlements (id UUID PRIMARY KEY, user_id TEXT NOT NULL,
    key TEXT NOT NULL, status TEXT NOT NULL, source TEXT, granted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, key));
  CREATE TABLE IF NOT EXISTS jobs (id UUID PRIMARY KEY, queue TEXT NOT NULL, kind TEXT NOT NULL,
    payload TEXT NOT NULL, unique_key TEXT, status TEXT NOT NULL, priority INT NOT NULL,
    run_at TIMESTAMPTZ NOT NULL DEFAULT now(), attempt INT NOT NULL DEFAULT 0, max_attempts INT NOT NULL,
    token BIGINT NOT NULL DEFAULT 0, worker_id TEXT, lease_expires_at TIMESTAMPTZ, result TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), finished_at TIMESTAMPTZ);
  CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (queue, priority, run_at, id) WHERE status = 'available';
  CREATE UNIQUE INDEX IF NOT EXISTS jobs_unique ON jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('available', 'running');`;
const UNIQUE_VIOLATION = '23505';

function pool() {
  return new Pool({ connectionString: process.env.BASELINE_PG_URL,
    max: Number(process.env.BASELINE_POOL || 16) });
}

async function inTx(db, fn) {
  const c = await db.connect();
  try {
    await c.query('BEGIN');
    const r = await fn(c);
    await c.query('COMMIT');
    return r;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}

async function replay(c, key) {
  const seen = await c.query('SELECT * FROM history WHERE idempotency_key = $1', [key]);
  return seen.rows.length ? { status: 201, body: transferJson(seen.rows[0]), replayed: true } : null;
}

async function record(c, key, debit, credit, amountMinor, currency) {
  const r = await c.query(`INSERT INTO history (id, idempotency_key, debit_account, credit_account,
    amount_minor, currency) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
  [randomUUID(), key, debit, credit, amountMinor, currency]);
  return { status: 201, body: transferJson(r.rows[0]) };
}

// One keyed write: the transaction, or the winner's row when it lost the key race.
async function keyed(db, key, fn) {
  try {
    return await inTx(db, async (c) => (await replay(c, key)) || fn(c));
  } catch (e) {
    const won = e.code === UNIQUE_VIOLATION && (await replay(db, key));
    if (!won) throw e;
    return won;
  }
}

function handlers(db) {
  return {
    credit: (accountId, key, amountMinor) => keyed(db, key, async (c) => {
      const a = await c.query('SELECT id, currency FROM accounts WHERE id = $1 FOR UPDATE', [accountId]);
      if (!a.rows.length) throw new Problem(404, 'account_not_found', `no account ${accountId}`);
      await c.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [amountMinor, accountId]);
      const cur = a.rows[0].currency;
      return record(c, key, `funding:${cur}`, accountId, amountMinor, cur);
    }),
    transfer: (t) => keyed(db, t.key, async (c) => {
      const r = await c.query('SELECT id, currency, balance FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE',
        [[t.debit, t.credit]]);
      const from = r.rows.find((a) => a.id === t.debit), to = r.rows.find((a) => a.id === t.credit);
      if (!from || !to) throw new Problem(404, 'account_not_found', 'no such account');
      const currency = t.currency || from.currency;
      if (from.currency !== currency || to.currency !== currency) throw new Problem(400, 'currency_mismatch', 'currencies differ');
      if (BigInt(from.balance) < BigInt(t.amount)) throw new Problem(409, 'insufficient_funds', 'the debit would overdraw the account');
      await c.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [t.amount, t.debit]);
      await c.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [t.amount, t.credit]);
      return record(c, t.key, t.debit, t.credit, t.amount, currency);
    }),
    grant: (userId, key, source) => inTx(db, async (c) => {
      const ins = await c.query(`INSERT INTO entitlements (id, user_id, key, status, source)
        VALUES ($1, $2, $3, 'active', $4) ON CONFLICT (user_id, key) DO NOTHING RETURNING *`,
      [randomUUID(), userId, key, source]);
      if (ins.rows.length) return { status: 201, body: ins.rows[0] };
      const row = await c.query('SELECT * FROM entitlements WHERE user_id = $1 AND key = $2', [userId, key]);
      return { status: 200, body: row.rows[0] };
    }),
    createAccount: async (a) => {
      const ins = await db.query(`INSERT INTO accounts (id, currency, kind) VALUES ($1, $2, $3)
        ON CONFLICT (id) DO NOTHING RETURNING *`, [a.id, a.currency, a.kind]);
      if (ins.rows.length) return { status: 201, body: ins.rows[0] };
      const row = (await db.query('SELECT * FROM accounts WHERE id = $1', [a.id])).rows[0];
      if (row.currency !== a.currency || row.kind !== a.kind) throw new Problem(409, 'account_exists', 'the id exists with other attributes');
      return { status: 200, body: row };
    },
    enqueue: async (j) => {
      const ins = await db.query(`INSERT INTO jobs (id, queue, kind, payload, unique_key, status, priority, max_attempts)
        VALUES ($1, $2, $3, $4, $5, 'available', $6, $7)
        ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL AND status IN ('available', 'running')
        DO NOTHING RETURNING *`, [randomUUID(), j.queue, j.kind, j.payload, j.uniqueKey, j.priority, j.maxAttempts]);
      if (ins.rows.length) return { status: 201, body: jobJson(ins.rows[0]) };
      const row = await db.query(`SELECT * FROM jobs WHERE queue = $1 AND unique_key = $2
        AND status IN ('available', 'running')`, [j.queue, j.uniqueKey]);
      if (!row.rows.length) throw new Problem(409, 'conflict', 'the job with this unique_key just finished; retry');
      return { status: 200, body: jobJson(row.rows[0]) };
    },
    claim: async (queue, workerId, leaseMs, maxJobs) => {
      // The ids picked once (a MATERIALIZED CTE): as `WHERE id IN (SELECT ...
      // LIMIT n FOR UPDATE SKIP LOCKED)` PostgreSQL may run the sub-select
      // again and claim more than n jobs.
      const r = await db.query(`WITH picked AS MATERIALIZED (
          SELECT id FROM jobs WHERE queue = $1 AND status = 'available' AND run_at <= now()
          ORDER BY priority, run_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
        UPDATE jobs SET status = 'running', attempt = attempt + 1, token = token + 1,
          worker_id = $2, lease_expires_at = now() + $3 * interval '1 millisecond'
        FROM picked WHERE jobs.id = picked.id
        RETURNING jobs.*`, [queue, workerId, leaseMs, maxJobs]);
      return { status: 200, body: { data: r.rows.map(jobJson) } };
    },
    complete: async (jobId, token, result) => {
      const r = await db.query(`UPDATE jobs SET status = 'completed', result = $3, finished_at = now()
        WHERE id = $1 AND token = $2 AND status = 'running' RETURNING *`, [jobId, token, result]);
      if (!r.rows.length) throw new Problem(409, 'stale_lease', 'the token is not the job\'s current claim');
      return { status: 200, body: jobJson(r.rows[0]) };
    },
  };
}

async function primary() {
  const db = pool();
  await db.query(SCHEMA);
  await db.end();
  const n = Number(process.env.BASELINE_WORKERS || 3);
  for (let i = 0; i < n; i++) cluster.fork();
  cluster.on('exit', (w, code) => { if (code) console.error(`worker ${w.process.pid} exited ${code}`); });
  const stop = () => { for (const w of Object.values(cluster.workers)) w.kill(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (cluster.isPrimary) {
  primary().catch((e) => { console.error(e); process.exit(1); });
} else {
  serve(handlers(pool()));
}
