// fake_db.js - a table of grants in memory, standing in for a database:
// every statement is one round trip (an await), so other requests run in
// between, as they do with a real driver. Like many real tables it has no
// UNIQUE (user, key): the application's code is all that keeps one grant.
const crypto = require('node:crypto');

const grants = [];
const roundTrip = () => new Promise((resolve) => setTimeout(resolve, 50));
const newGrant = (user, key) =>
  ({ id: crypto.randomUUID(), user, key, granted_at: new Date().toISOString() });
const find = (user, key) => grants.find((g) => g.user === user && g.key === key);

// SELECT * FROM grants WHERE user = $1 AND key = $2
exports.selectGrant = async (user, key) => { await roundTrip(); return find(user, key); };

// SELECT * FROM grants WHERE user = $1
exports.selectGrants = async (user) => { await roundTrip(); return grants.filter((g) => g.user === user); };

// INSERT INTO grants ... RETURNING *
exports.insertGrant = async (user, key) => {
  await roundTrip();
  const g = newGrant(user, key);
  grants.push(g);
  return g;
};

// One statement, checked and written together: INSERT ... ON CONFLICT (user, key)
// DO NOTHING RETURNING *, then the existing row when nothing was inserted.
exports.insertGrantIfAbsent = async (user, key) => {
  await roundTrip();
  const existing = find(user, key);
  if (existing) return { grant: existing, created: false };
  const g = newGrant(user, key);
  grants.push(g);
  return { grant: g, created: true };
};

// Both example servers: PUT /users/USER/grants/KEY on 127.0.0.1:PORT (argv[2], 0: any).
exports.serve = (grant) => {
  require('node:http').createServer(async (req, res) => {
    req.resume();
    const m = req.url.match(/^\/users\/([\w.-]+)\/grants\/([\w.-]+)$/);
    if (req.method !== 'PUT' || !m) return res.writeHead(404).end();
    const [status, body] = await grant(m[1], m[2]);
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  }).listen(Number(process.argv[2] || 0), '127.0.0.1', function () {
    console.log(`listening on ${this.address().port}`);
  });
};
