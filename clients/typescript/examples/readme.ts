// readme.ts - what the README does, as a typed program: grant an entitlement,
// open two wallets, credit one, transfer to the other, pay out. Compiled with
// `tsc --strict` in the tests and run against a real server on both back ends.
//   RACEFREE_URL=http://127.0.0.1:8080 RACEFREE_KEY=rfk_... node dist/examples/readme.js
import { Racefree, RacefreeError } from "racefree";

const rf = new Racefree(process.env.RACEFREE_URL ?? "http://127.0.0.1:8080", process.env.RACEFREE_KEY ?? "");
const run = Date.now().toString(36); // fresh ids per run: the README's are fixed

const pro = await rf.entitlements.grant(`user-${run}`, "pro", { source: "checkout", metadata: { plan: "pro" } });
console.log(`entitlement ${pro.key} is ${pro.status} (version ${pro.version})`);

await rf.accounts.create({ id: `wallet-${run}`, currency: "USD", metadata: { user: `user-${run}` } });
await rf.accounts.create({ id: `shop-${run}`, currency: "USD" });
// Exactly once per Idempotency-Key: a retry of this call can never credit twice.
await rf.accounts.credit(`wallet-${run}`, { amount_minor: 1000n, reason: "welcome bonus" },
  { idempotencyKey: `credit-${run}` });
const t = await rf.transfers.create({ debit_account: `wallet-${run}`, credit_account: `shop-${run}`,
  amount_minor: 250n, currency: "USD", reference: `order-${run}` });
console.log(`transfer ${t.id}: ${t.amount_minor} ${t.currency} ${t.status}`);

const p = await rf.payouts.create({ account: `wallet-${run}`, amount_minor: 500n, currency: "USD",
  destination: { provider: "stripe", ref: "acct_123" } });
await rf.payouts.recordAttempt(p.id);
// ... send p.provider_idempotency_key to the provider with the payout, then:
const paid = await rf.payouts.succeeded(p.id, { provider_payout_id: `po_${run}` });
const wallet = await rf.accounts.get(`wallet-${run}`);
console.log(`payout ${paid.status}; wallet posted ${wallet.posted}, available ${wallet.available}`);

try {
  await rf.transfers.create({ debit_account: `wallet-${run}`, credit_account: `shop-${run}`,
    amount_minor: 1_000_000n, currency: "USD" });
} catch (e) {
  if (!(e instanceof RacefreeError) || e.code !== "insufficient_funds") throw e;
  console.log(`refused: ${e.status} ${e.code} (request ${e.requestId})`);
}
if (wallet.posted !== 250n) throw new Error(`wallet posted ${wallet.posted}, expected 250`);
