'use strict';
// setup.js - makes the accounts a benchmark suite needs, through the HTTP API
// (the same requests for racefree and the baselines), a few at a time over
// keep-alive connections so setup stays short next to the measured run.
//   node bench/setup.js URL TOKEN PREFIX PAIRS credits|transfers
// credits:   PREFIX-c-K for K < PAIRS, empty (credit.lua credits them).
// transfers: PREFIX-src-K (funded), PREFIX-dst-K, and PREFIX-hot (funded
//            for every transfer of a run), for transfer.lua's two modes.
const http = require('node:http');

const [url, token, prefix, pairsText, suite] = process.argv.slice(2);
const pairs = Number(pairsText);
const PARALLEL = 16;
const agent = new http.Agent({ keepAlive: true, maxSockets: PARALLEL });
let seq = 0;

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(`${url}${path}`, { method, agent, headers: {
      Authorization: `Bearer ${token}`, 'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(data), 'Idempotency-Key': `setup-${prefix}-${seq++}`,
    } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => (res.statusCode < 300 ? resolve()
        : reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const account = (id) => () => call('POST', '/v1/accounts', { id, currency: 'USD', kind: 'user' });
const fund = (id, amount) => () => call('POST', `/v1/accounts/${id}/credits`, { amount_minor: amount });

// Runs the steps PARALLEL at a time; rejects on the first failure.
async function runAll(steps) {
  let next = 0;
  const lane = async () => { while (next < steps.length) await steps[next++](); };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
}

async function main() {
  const ks = Array.from({ length: pairs }, (_, k) => k);
  if (suite === 'credits') return runAll(ks.map((k) => account(`${prefix}-c-${k}`)));
  if (suite !== 'transfers') throw new Error(`unknown suite ${suite}`);
  await runAll([...ks.flatMap((k) => [account(`${prefix}-src-${k}`), account(`${prefix}-dst-${k}`)]),
    account(`${prefix}-hot`)]);
  await runAll([...ks.map((k) => fund(`${prefix}-src-${k}`, 1e9)), fund(`${prefix}-hot`, 1e12)]);
}

main().then(() => agent.destroy(), (e) => { console.error(`setup.js: ${e.message}`); process.exit(1); });
