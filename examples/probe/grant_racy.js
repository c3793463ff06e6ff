// grant_racy.js - the check-then-insert grant race: SELECT, and INSERT when
// nothing was found. Two requests that arrive together both find nothing and
// both insert: two grants, two 201s. `racefree probe` finds it.
const db = require('./fake_db');

db.serve(async (user, key) => {
  const existing = await db.selectGrant(user, key);
  if (existing) return [200, existing];
  return [201, await db.insertGrant(user, key)];
});
