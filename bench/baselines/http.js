'use strict';
// http.js - what both baselines share: the routes racefree serves for the
// benchmarked operations (same paths, headers and bodies, so one wrk script
// drives both), Bearer-token auth (one static token, BASELINE_TOKEN), body
// parsing, input checks and the answers (JSON, problems as
// application/problem+json with a stable code, like racefree's).
// A store module gives handlers { grant, createAccount, credit, transfer,
// enqueue, claim, complete }, each returning { status, body, replayed } or a
// Promise of it.
const http = require('node:http');
const crypto = require('node:crypto');

const ROUTES = [
  ['PUT', /^\/v1\/users\/([^/]+)\/entitlements\/([^/]+)$/, 'grant'],
  ['POST', /^\/v1\/accounts$/, 'createAccount'],
  ['POST', /^\/v1\/accounts\/([^/]+)\/credits$/, 'credit'],
  ['POST', /^\/v1\/transfers$/, 'transfer'],
  ['POST', /^\/v1\/jobs$/, 'enqueue'],
  ['POST', /^\/v1\/queues\/([^/]+)\/claim$/, 'claim'],
  ['POST', /^\/v1\/jobs\/([^/]+)\/complete$/, 'complete'],
];
const JOB_PAYLOAD_BYTES_MAX = 16 * 1024;
const CLAIM_JOBS_MAX = 100;
const LEASE_MS_MAX = 3600 * 1000;
const BODY_BYTES_MAX = 64 * 1024;
const ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

class Problem extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

function send(res, status, body, headers) {
  const text = JSON.stringify(body);
  res.writeHead(status, Object.assign({
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  }, headers));
  res.end(text);
}

function sendProblem(res, p) {
  const text = JSON.stringify({ type: `https://racefree.dev/problems/${p.code}`,
    title: p.code, status: p.status, detail: p.message, code: p.code });
  res.writeHead(p.status, { 'Content-Type': 'application/problem+json',
    'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

// The answer of a created (201) or existing (200) resource.
function sendResult(res, r, location) {
  const headers = { ETag: '"1"', Location: location };
  if (r.replayed) headers['Idempotent-Replayed'] = 'true';
  send(res, r.status, r.body, headers);
}

function id(value, name) {
  if (typeof value !== 'string' || !ID_RE.test(value)) throw new Problem(400, 'invalid_field', `${name} is not an id`);
  return value;
}

function amount(value) {
  if (!Number.isSafeInteger(value) || value <= 0) throw new Problem(400, 'invalid_field', 'amount_minor must be a positive integer');
  return value;
}

function idemKey(req) {
  const key = req.headers['idempotency-key'];
  if (!key) throw new Problem(400, 'idempotency_key_required', 'Idempotency-Key is required');
  if (key.length > 255) throw new Problem(400, 'invalid_header', 'Idempotency-Key is too long');
  return key;
}

// The transfer-shaped record of a history row (credits and transfers), as racefree answers it.
function transferJson(row) {
  return { id: row.id, debit_account: row.debit_account, credit_account: row.credit_account,
    amount_minor: Number(row.amount_minor), posted_amount_minor: Number(row.amount_minor),
    currency: row.currency, status: 'posted', pending: false, reference: null, metadata: null,
    expires_at: null, created_at: row.created_at, resolved_at: row.created_at, version: 1 };
}

// A job row as racefree answers it (the fields the benchmark reads and a few more).
function jobJson(row) {
  return { id: row.id, queue: row.queue, kind: row.kind, payload: JSON.parse(row.payload),
    unique_key: row.unique_key, status: row.status, priority: Number(row.priority),
    attempt: Number(row.attempt), max_attempts: Number(row.max_attempts), token: Number(row.token),
    worker_id: row.worker_id, result: row.result === null || row.result === undefined ? null : JSON.parse(row.result) };
}

function intIn(value, name, min, max) {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new Problem(400, 'invalid_field', `${name} must be an integer in ${min}..${max}`);
  return value;
}

function jobRequest(body) {
  const payload = JSON.stringify(body.payload === undefined ? {} : body.payload);
  if (payload.length > JOB_PAYLOAD_BYTES_MAX || typeof body.payload !== 'object') throw new Problem(400, 'invalid_field', 'payload');
  return { queue: id(body.queue, 'queue'), kind: id(body.kind, 'kind'), payload,
    uniqueKey: body.unique_key === undefined ? null : id(body.unique_key, 'unique_key'),
    priority: body.priority === undefined ? 0 : intIn(body.priority, 'priority', 0, 100),
    maxAttempts: body.max_attempts === undefined ? 10 : intIn(body.max_attempts, 'max_attempts', 1, 100) };
}

// Calls the route's handler with checked input; the location of its answer.
function dispatch(h, name, m, req, body) {
  switch (name) {
  case 'grant':
    return [h.grant(id(decodeURIComponent(m[1]), 'user_id'), id(decodeURIComponent(m[2]), 'key'),
      typeof body.source === 'string' ? body.source : null), m[0]];
  case 'createAccount': {
    const acct = { id: id(body.id, 'id'), currency: body.currency, kind: body.kind || 'user' };
    if (!/^[A-Z]{3}$/.test(acct.currency || '')) throw new Problem(400, 'invalid_field', 'currency');
    if (acct.kind !== 'user' && acct.kind !== 'system') throw new Problem(400, 'invalid_field', 'kind');
    return [h.createAccount(acct), `/v1/accounts/${acct.id}`];
  }
  case 'credit':
    return [h.credit(id(decodeURIComponent(m[1]), 'id'), idemKey(req), amount(body.amount_minor)), null];
  case 'transfer': {
    const t = { key: idemKey(req), debit: id(body.debit_account, 'debit_account'),
      credit: id(body.credit_account, 'credit_account'), amount: amount(body.amount_minor),
      currency: body.currency };
    if (t.debit === t.credit) throw new Problem(400, 'same_account', 'debit and credit are one account');
    return [h.transfer(t), null];
  }
  case 'enqueue':
    return [h.enqueue(jobRequest(body)), null];
  case 'claim':
    return [h.claim(id(decodeURIComponent(m[1]), 'queue'), id(body.worker_id, 'worker_id'),
      intIn(body.lease_ms, 'lease_ms', 1, LEASE_MS_MAX), intIn(body.max_jobs, 'max_jobs', 1, CLAIM_JOBS_MAX)), m[0]];
  case 'complete':
    return [h.complete(id(decodeURIComponent(m[1]), 'id'), intIn(body.token, 'token', 1, Number.MAX_SAFE_INTEGER),
      body.result === undefined ? null : JSON.stringify(body.result)), m[0]];
  }
  throw new Error(`no handler ${name}`);
}

function handle(h, req, res, raw) {
  const route = ROUTES.find(([method, re]) => method === req.method && re.test(req.url));
  if (!route) return sendProblem(res, new Problem(404, 'not_found', 'no such route'));
  let body = {};
  try {
    if (raw.length) body = JSON.parse(raw);
    if (typeof body !== 'object' || body === null) throw new Error('not an object');
  } catch (e) {
    return sendProblem(res, new Problem(400, 'invalid_json', 'the body is not a JSON object'));
  }
  Promise.resolve()
    .then(() => {
      const [result, location] = dispatch(h, route[2], req.url.match(route[1]), req, body);
      return Promise.resolve(result).then((r) =>
        sendResult(res, r, location || `/v1/${route[2] === 'enqueue' ? 'jobs' : 'transfers'}/${r.body.id}`));
    })
    .catch((e) => {
      if (e instanceof Problem) return sendProblem(res, e);
      console.error(e);
      sendProblem(res, new Problem(500, 'internal', 'internal error'));
    });
}

function authorized(req, expected) {
  const got = Buffer.from(req.headers.authorization || '');
  return got.length === expected.length && crypto.timingSafeEqual(got, expected);
}

// Serves handlers on BASELINE_LISTEN (HOST:PORT).
function serve(handlers) {
  const [host, port] = (process.env.BASELINE_LISTEN || '127.0.0.1:8090').split(':');
  const expected = Buffer.from(`Bearer ${process.env.BASELINE_TOKEN || ''}`);
  if (!process.env.BASELINE_TOKEN) throw new Error('BASELINE_TOKEN is not set');
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') return send(res, 200, { status: 'ok' });
    if (!authorized(req, expected)) return sendProblem(res, new Problem(401, 'unauthenticated', 'missing or bad API key'));
    const chunks = [];
    let size = 0;
    req.on('data', (c) => { size += c.length; if (size <= BODY_BYTES_MAX) chunks.push(c); });
    req.on('end', () => {
      if (size > BODY_BYTES_MAX) return sendProblem(res, new Problem(413, 'payload_too_large', 'body too large'));
      handle(handlers, req, res, Buffer.concat(chunks).toString('utf8'));
    });
  });
  server.keepAliveTimeout = 30000;
  server.listen(Number(port), host);
  return server;
}

module.exports = { serve, Problem, transferJson, jobJson };
