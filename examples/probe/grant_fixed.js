// grant_fixed.js - the fixed twin of grant_racy.js: one atomic statement
// checks and inserts (INSERT ... ON CONFLICT DO NOTHING), so exactly one
// request creates the grant (201) and the others get it back (200).
const db = require('./fake_db');

db.serve(async (user, key) => {
  const { grant, created } = await db.insertGrantIfAbsent(user, key);
  return [created ? 201 : 200, grant];
});
