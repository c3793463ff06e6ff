'use strict';
// sqlite.js - the hand-written fix with better-sqlite3, as the seeds
// recommend it: one Node process, WAL, synchronous=FULL (every acknowledged
// write durable, like `racefree serve --sync full`).
// - grant (ENT-01): INSERT OR IGNORE on UNIQUE(user_id, key), then re-read the
//   row by (user_id, key): 201 when this request inserted it, else 200.
// - credit (DI-002): one transaction: Idempotency-Key check, balance update
//   (balance = balance + ?, never read-modify-write), history insert.
// - transfer: one transaction: key check, guarded debit (balance >= amount:
//   overdraft guard), credit, history insert.
// - jobs: enqueue INSERT ... ON CONFLICT DO NOTHING on a partial UNIQUE
//   (queue, unique_key) of live jobs, then the existing row; claim one
//   UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING (one writer: no
//   lock clause needed), bumping the fencing token; complete guarded by token.
// A transaction is BEGIN IMMEDIATE: the write lock is taken up front.
// BASELINE_DB is the file; BASELINE_LISTEN and BASELINE_TOKEN as in http.js.
const Database = require('better-sqlite3');
const { randomUUID } = require('node:crypto');
const { serve, Problem, transferJson, jobJson } = require('./http');

const db = new Database(process.env.BASELINE_DB || 'baseline.db');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');
db.exec(`
  CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, currency TEXT NOT NULL,
    kind TEXT NOT NULL, balance INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS history (id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,
    debit_account TEXT NOT NULL, credit_account TEXT NOT NULL, amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL, created_at TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS entitlements (id TEXT PRIMARY KEY, user_id TEXT NOT NULL,
    key TEXT NOT NULL, status TEXT NOT NULL, source TEXT, granted_at TEXT NOT NULL,
    UNIQUE (user_id, key));
  CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, queue TEXT NOT NULL, kind TEXT NOT NULL,
    payload TEXT NOT NULL, unique_key TEXT, status TEXT NOT NULL, priority INTEGER NOT NULL,
    run_at INTEGER NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,
    token INTEGER NOT NULL DEFAULT 0, worker_id TEXT, lease_expires_at INTEGER, result TEXT,
    created_at INTEGER NOT NULL, finished_at INTEGER);
  CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (queue, priority, run_at, id) WHERE status = 'available';
  CREATE UNIQUE INDEX IF NOT EXISTS jobs_unique ON jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('available', 'running');`);

const q = {
  grant: db.prepare(`INSERT OR IGNORE INTO entitlements (id, user_id, key, status, source, granted_at)
                     VALUES (?, ?, ?, 'active', ?, ?)`),
  entitlement: db.prepare('SELECT * FROM entitlements WHERE user_id = ? AND key = ?'),
  account: db.prepare('SELECT id, currency, kind, balance FROM accounts WHERE id = ?'),
  accountInsert: db.prepare(`INSERT OR IGNORE INTO accounts (id, currency, kind, created_at)
                             VALUES (?, ?, ?, ?)`),
  byKey: db.prepare('SELECT * FROM history WHERE idempotency_key = ?'),
  add: db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?'),
  debit: db.prepare('UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?'),
  history: db.prepare(`INSERT INTO history (id, idempotency_key, debit_account, credit_account,
                       amount_minor, currency, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
  enqueue: db.prepare(`INSERT INTO jobs (id, queue, kind, payload, unique_key, status, priority, max_attempts,
                       run_at, created_at) VALUES (?, ?, ?, ?, ?, 'available', ?, ?, ?, ?)
                       ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL
                       AND status IN ('available', 'running') DO NOTHING RETURNING *`),
  liveJob: db.prepare(`SELECT * FROM jobs WHERE queue = ? AND unique_key = ? AND status IN ('available', 'running')`),
  claim: db.prepare(`UPDATE jobs SET status = 'running', attempt = attempt + 1, token = token + 1,
                     worker_id = ?, lease_expires_at = ?
                     WHERE id IN (SELECT id FROM jobs WHERE queue = ? AND status = 'available' AND run_at <= ?
                                  ORDER BY priority, run_at, id LIMIT ?) RETURNING *`),
  complete: db.prepare(`UPDATE jobs SET status = 'completed', result = ?, finished_at = ?
                        WHERE id = ? AND token = ? AND status = 'running' RETURNING *`),
};

function mustAccount(id) {
  const a = q.account.get(id);
  if (!a) throw new Problem(404, 'account_not_found', `no account ${id}`);
  return a;
}

function record(key, debit, credit, amountMinor, currency) {
  const row = { id: randomUUID(), debit_account: debit, credit_account: credit,
    amount_minor: amountMinor, currency, created_at: new Date().toISOString() };
  q.history.run(row.id, key, debit, credit, amountMinor, currency, row.created_at);
  return { status: 201, body: transferJson(row) };
}

function replay(key) {
  const seen = q.byKey.get(key);
  return seen && { status: 201, body: transferJson(seen), replayed: true };
}

const credit = db.transaction((accountId, key, amountMinor) => {
  const seen = replay(key);
  if (seen) return seen;
  const a = mustAccount(accountId);
  q.add.run(amountMinor, accountId);
  return record(key, `funding:${a.currency}`, accountId, amountMinor, a.currency);
});

const transfer = db.transaction((t) => {
  const seen = replay(t.key);
  if (seen) return seen;
  const from = mustAccount(t.debit), to = mustAccount(t.credit);
  const currency = t.currency || from.currency;
  if (from.currency !== currency || to.currency !== currency) throw new Problem(400, 'currency_mismatch', 'currencies differ');
  if (q.debit.run(t.amount, t.debit, t.amount).changes === 0) throw new Problem(409, 'insufficient_funds', 'the debit would overdraw the account');
  q.add.run(t.amount, t.credit);
  return record(t.key, t.debit, t.credit, t.amount, currency);
});

const enqueue = db.transaction((j) => {
  const now = Date.now();
  const row = q.enqueue.get(randomUUID(), j.queue, j.kind, j.payload, j.uniqueKey, j.priority, j.maxAttempts, now, now);
  if (row) return { status: 201, body: jobJson(row) };
  return { status: 200, body: jobJson(q.liveJob.get(j.queue, j.uniqueKey)) };
});

const handlers = {
  grant(userId, key, source) {
    const inserted = q.grant.run(randomUUID(), userId, key, source, new Date().toISOString()).changes === 1;
    return { status: inserted ? 201 : 200, body: q.entitlement.get(userId, key) };
  },
  createAccount(a) {
    const inserted = q.accountInsert.run(a.id, a.currency, a.kind, new Date().toISOString()).changes === 1;
    const row = q.account.get(a.id);
    if (row.currency !== a.currency || row.kind !== a.kind) throw new Problem(409, 'account_exists', 'the id exists with other attributes');
    return { status: inserted ? 201 : 200, body: row };
  },
  credit: (accountId, key, amountMinor) => credit.immediate(accountId, key, amountMinor),
  transfer: (t) => transfer.immediate(t),
  enqueue: (j) => enqueue.immediate(j),
  claim(queue, workerId, leaseMs, maxJobs) {
    const now = Date.now();
    return { status: 200, body: { data: q.claim.all(workerId, now + leaseMs, queue, now, maxJobs).map(jobJson) } };
  },
  complete(jobId, token, result) {
    const row = q.complete.get(result, Date.now(), jobId, token);
    if (!row) throw new Problem(409, 'stale_lease', 'the token is not the job\'s current claim');
    return { status: 200, body: jobJson(row) };
  },
};

serve(handlers);
