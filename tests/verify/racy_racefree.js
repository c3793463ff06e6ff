// racy_racefree.js - a stand-in for a racefree deployment whose entitlement
// grant is the check-then-insert of examples/probe (SELECT, then INSERT),
// speaking just enough of racefree's API for `racefree torture --scenario
// grant`: POST/DELETE /v1/keys, PUT /v1/users/U/entitlements/K, and its list.
// test_torture_finds.sh runs torture against it: torture must report the race.
const http = require('node:http');
const db = require('../../examples/probe/fake_db');

const send = (res, status, body) => {
  res.writeHead(status, body ? { 'Content-Type': 'application/json' } : {});
  res.end(body ? JSON.stringify(body) : undefined);
};
let keys = 0;
const leases = new Map(); // name -> acquires so far (the fencing token)

http.createServer(async (req, res) => {
  req.resume();
  const url = new URL(req.url, 'http://x');
  const grant = url.pathname.match(/^\/v1\/users\/([\w.:-]+)\/entitlements\/([\w.:-]+)$/);
  const list = url.pathname.match(/^\/v1\/users\/([\w.:-]+)\/entitlements$/);
  if (req.method === 'POST' && url.pathname === '/v1/keys')
    return send(res, 201, { id: `key-${++keys}`, key: `secret-${keys}` });
  if (req.method === 'DELETE' && url.pathname.startsWith('/v1/keys/')) return send(res, 204);
  const lease = url.pathname.match(/^\/v1\/leases\/([\w.:-]+)\/(acquire|release)$/);
  if (req.method === 'POST' && lease && lease[2] === 'acquire') {
    leases.set(lease[1], (leases.get(lease[1]) || 0) + 1);
    return send(res, 201, { name: lease[1], token: leases.get(lease[1]) });
  }
  if (req.method === 'POST' && lease) return send(res, 200, { name: lease[1] });
  if (req.method === 'PUT' && grant) {
    const existing = await db.selectGrant(grant[1], grant[2]);
    if (existing) return send(res, 200, existing);
    return send(res, 201, await db.insertGrant(grant[1], grant[2]));
  }
  if (req.method === 'GET' && list)
    return send(res, 200, { data: await db.selectGrants(list[1]), next: null });
  return send(res, 404, { code: 'not_found' });
}).listen(0, '127.0.0.1', function () { console.log(`listening on ${this.address().port}`); });
