// The client against a real `racefree serve` (RACEFREE_URL, RACEFREE_KEY: an
// admin key), run by tests/client on SQLite and on PostgreSQL. Every flow the
// README shows, amounts past 2^53 read back exactly, typed errors, replays,
// and retries through a local proxy that fails once: the effect happens once.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { before, test } from "node:test";

import { Racefree, RacefreeError } from "../../src/index.js";
import { recordingFetch, seen, undeclared } from "./declared.js";

const URL_ = process.env.RACEFREE_URL;
const KEY = process.env.RACEFREE_KEY;
if (!URL_ || !KEY) throw new Error("RACEFREE_URL and RACEFREE_KEY must be set (tests/client runs this)");

const rf = new Racefree(URL_, KEY, { fetch: recordingFetch });
const uid = (p: string): string => `${p}-${randomBytes(6).toString("hex")}`;
/** A currency no other test uses, so funding:<CUR> may take any amount. */
const currency = (): string => Array.from(randomBytes(3), (b) => String.fromCharCode(65 + (b % 26))).join("");

async function wallet(cur = "USD"): Promise<string> {
  const id = uid("wallet");
  const a = await rf.accounts.create({ id, currency: cur, metadata: { owner: "client-test", nested: { n: 1 } } });
  assert.equal(a.id, id);
  assert.equal(a.posted, 0n);
  assert.deepEqual(a.metadata, { owner: "client-test", nested: { n: 1 } });
  return id;
}

async function expectError(p: Promise<unknown>, status: number, code: string): Promise<RacefreeError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof RacefreeError, `not a RacefreeError: ${String(e)}`);
    assert.equal(e.status, status, e.message);
    assert.equal(e.code, code, e.message);
    assert.ok(e.requestId, "no request id");
    assert.equal(e.problem.code, code);
    assert.ok(e.title.length > 0);
    return e;
  }
  assert.fail(`expected ${status} ${code}`);
}

test("entitlements: grant (201 then 200), get, list, revoke", async () => {
  const user = uid("user");
  const first = await rf.request("PUT", `/v1/users/${user}/entitlements/pro`,
    { body: { source: "checkout", metadata: { plan: "pro" } } });
  assert.equal(first.status, 201);
  assert.ok(first.etag);
  const again = await rf.entitlements.grant(user, "pro", { source: "checkout", metadata: { plan: "pro" } });
  assert.deepEqual(again, first.data);
  assert.equal((await rf.entitlements.get(user, "pro")).status, "active");
  const page = await rf.entitlements.list(user, { status: "all", limit: 10 });
  assert.deepEqual(page.data.map((e) => e.key), ["pro"]);
  assert.equal(page.next, null);
  await rf.entitlements.revoke(user, "pro", { ifMatch: again.version });
  assert.equal((await rf.entitlements.get(user, "pro")).status, "revoked");
  await expectError(rf.entitlements.revoke(user, "pro"), 404, "entitlement_not_found");
});

test("credits with and without an explicit key; a replay applies once", async () => {
  const w = await wallet();
  const t1 = await rf.accounts.credit(w, { amount_minor: 100n });
  assert.equal(t1.amount_minor, 100n);
  assert.equal(t1.credit_account, w);
  const t2 = await rf.accounts.credit(w, { amount_minor: 100 }); // a new generated key: a second credit
  assert.notEqual(t2.id, t1.id);
  const key = uid("credit");
  const a = await rf.request<{ id: string }>("POST", `/v1/accounts/${w}/credits`,
    { body: { amount_minor: 50n, reason: "bonus" }, idempotencyKey: key });
  const b = await rf.request<{ id: string }>("POST", `/v1/accounts/${w}/credits`,
    { body: { amount_minor: 50n, reason: "bonus" }, idempotencyKey: key });
  assert.equal(a.replayed, false);
  assert.equal(b.replayed, true);
  assert.equal(b.data.id, a.data.id);
  assert.equal(b.idempotencyKey, key);
  assert.equal((await rf.accounts.get(w)).posted, 250n);
  const e = await expectError(rf.accounts.credit(w, { amount_minor: 51n }, { idempotencyKey: key }), 422,
    "idempotency_key_reused");
  assert.equal(e.idempotencyKey, key);
  const entries = await rf.accounts.entries(w);
  assert.deepEqual(entries.data.map((x) => x.balance_after), [100n, 200n, 250n]);
});

test("2^53+1 and 2^63-1 are credited and read back exactly", async () => {
  const cur = currency();
  const w = await wallet(cur);
  const big = 9007199254740993n;
  const t = await rf.accounts.credit(w, { amount_minor: big });
  assert.equal(t.amount_minor, big);
  assert.equal((await rf.transfers.get(t.id)).posted_amount_minor, big);
  const acct = await rf.accounts.get(w);
  assert.equal(acct.posted, big);
  assert.equal(acct.available, big);
  assert.equal((await rf.accounts.get(`funding:${cur}`)).posted, -big);
  const cur2 = currency();
  const w2 = await wallet(cur2);
  const max = 9223372036854775807n;
  await rf.accounts.credit(w2, { amount_minor: max });
  assert.equal((await rf.accounts.get(w2)).posted, max);
  assert.equal((await rf.accounts.get(`funding:${cur2}`)).posted, -max);
  await expectError(rf.accounts.credit(w2, { amount_minor: 1n }), 409, "amount_overflow");
});

test("transfers: posted, a hold posted in part, a hold voided, typed refusals", async () => {
  const a = await wallet();
  const b = await wallet();
  await rf.accounts.credit(a, { amount_minor: 1000n });
  const t = await rf.transfers.create({ debit_account: a, credit_account: b, amount_minor: 300n, currency: "USD",
    reference: uid("order") });
  assert.equal(t.status, "posted");
  const dup = await expectError(rf.transfers.create({ debit_account: a, credit_account: b, amount_minor: 1n,
    currency: "USD", reference: t.reference ?? "" }), 409, "duplicate_reference");
  assert.equal(dup.problem.existing_transfer_id, t.id);
  const hold = await rf.transfers.create({ debit_account: a, credit_account: b, amount_minor: 200n, currency: "USD",
    pending: true });
  assert.equal((await rf.accounts.get(a)).available, 500n);
  const posted = await rf.transfers.post(hold.id, { amount_minor: 150n });
  assert.equal(posted.posted_amount_minor, 150n);
  const hold2 = await rf.transfers.create({ debit_account: a, credit_account: b, amount_minor: 100n, currency: "USD",
    pending: true });
  assert.equal((await rf.transfers.void(hold2.id)).status, "voided");
  await expectError(rf.transfers.void(hold2.id), 409, "invalid_state");
  const acct = await rf.accounts.get(a);
  assert.equal(acct.posted, 550n);
  assert.equal(acct.pending_debits, 0n);
  const e = await expectError(rf.transfers.create({ debit_account: a, credit_account: b, amount_minor: 10_000n,
    currency: "USD" }), 409, "insufficient_funds");
  assert.equal(e.status, 409);
  await expectError(rf.accounts.get(uid("nobody")), 404, "account_not_found");
  const bad = await expectError(rf.request("POST", "/v1/transfers", { body: { debit_account: a, credit_account: b,
    amount_minor: -1, currency: "USD" } }), 400, "invalid_field");
  assert.equal(bad.param, "amount_minor");
});

test("payouts: create holds, attempts count, succeeded posts, failed releases", async () => {
  const w = await wallet();
  await rf.accounts.credit(w, { amount_minor: 1000n });
  const p = await rf.payouts.create({ account: w, amount_minor: 400n, currency: "USD",
    destination: { provider: "stripe", ref: "acct_123" } });
  assert.equal(p.status, "pending");
  assert.ok(p.provider_idempotency_key);
  assert.equal((await rf.accounts.get(w)).available, 600n);
  assert.equal((await rf.payouts.recordAttempt(p.id)).attempt_count, 1);
  const paid = await rf.payouts.succeeded(p.id, { provider_payout_id: uid("po") });
  assert.equal(paid.status, "paid");
  const p2 = await rf.payouts.create({ account: w, amount_minor: 100n, currency: "USD",
    destination: { provider: "stripe", ref: "acct_123" } });
  assert.equal((await rf.payouts.failed(p2.id, { reason: "closed", retryable: false })).status, "failed");
  await expectError(rf.transfers.void(p.hold_transfer_id), 409, "hold_owned_by_payout");
  const acct = await rf.accounts.get(w);
  assert.equal(acct.posted, 600n);
  assert.equal(acct.available, 600n);
  const listed = await rf.payouts.list({ status: "all", limit: 500 });
  assert.ok(listed.data.some((x) => x.id === p.id && x.status === "paid"));
});

test("checkouts: create with a key (a replay is the same checkout), bind a reference once, list, cancel", async () => {
  const w = await wallet();
  const user = uid("buyer");
  const body = { user_id: user, currency: "USD", amount_minor: 1999n, provider: "stripe",
    items: [{ type: "entitlement" as const, key: uid("pro") }, { type: "credit" as const, account: w, amount_minor: 500n }] };
  const key = uid("cart");
  const c = await rf.checkouts.create(body, { idempotencyKey: key });
  assert.equal(c.status, "pending");
  assert.equal(c.provider_ref, null);
  assert.equal(c.refund_shortfall_minor, 0n);
  assert.equal((await rf.checkouts.create(body, { idempotencyKey: key })).id, c.id);
  const ref = uid("cs");
  const bound = await rf.checkouts.bindProviderRef(c.id, { provider: "stripe", ref });
  assert.equal(bound.provider_ref, ref);
  assert.equal((await rf.checkouts.bindProviderRef(c.id, { provider: "stripe", ref })).version, bound.version);
  await expectError(rf.checkouts.bindProviderRef(c.id, { provider: "stripe", ref: uid("cs") }), 409, "provider_ref_bound");
  const other = await rf.checkouts.create(body, { idempotencyKey: uid("cart") });
  await expectError(rf.checkouts.bindProviderRef(other.id, { provider: "stripe", ref }), 409, "provider_ref_taken");
  assert.equal((await rf.checkouts.get(c.id)).items.length, 2);
  const canceled = await rf.checkouts.cancel(other.id, { ifMatch: other.version });
  assert.equal(canceled.status, "canceled");
  await expectError(rf.checkouts.cancel(other.id), 409, "invalid_state");
  const listed = await rf.checkouts.listByUser(user, { status: "all", limit: 500 });
  assert.deepEqual(listed.data.map((x) => x.id).sort(), [c.id, other.id].sort());
  await expectError(rf.checkouts.get("no-such-checkout"), 404, "checkout_not_found");
});

test("customer bindings: bind, read both ways, conflict, unbind with If-Match", async () => {
  const user = uid("user");
  const cus = uid("cus");
  const b = await rf.customers.bind(user, "stripe", cus);
  assert.equal(b.customer_id, cus);
  assert.deepEqual(await rf.customers.get(user, "stripe"), b);
  assert.deepEqual(await rf.customers.lookup("stripe", cus), b);
  const c = await expectError(rf.customers.bind(user, "stripe", uid("cus")), 409, "customer_binding_conflict");
  assert.equal(c.problem.existing_customer_id, cus);
  await expectError(rf.customers.unbind(user, "stripe", { ifMatch: b.version + 1 }), 412, "version_mismatch");
  await rf.customers.unbind(user, "stripe", { ifMatch: b.version });
  await expectError(rf.customers.get(user, "stripe"), 404, "customer_binding_not_found");
});

test("approvals: a transfer action runs once when approved; reject and cancel", async () => {
  const a = await wallet();
  const ap = await rf.approvals.create({ action: { type: "transfer", debit_account: "funding:USD",
    credit_account: a, amount_minor: 9007199254740993n, currency: "USD" }, requested_by: "agent-7" });
  assert.equal(ap.status, "pending");
  assert.equal(ap.action.type, "transfer");
  assert.equal(ap.action.type === "transfer" && ap.action.amount_minor, 9007199254740993n);
  // The requesting key may not approve, whatever label it writes; another key may.
  await expectError(rf.approvals.approve(ap.id, { approved_by: "ops-2" }), 403, "self_approval");
  const second = await rf.keys.create({ role: "service", name: uid("approver") });
  const approver = new Racefree(URL_, second.key, { fetch: recordingFetch });
  const done = await approver.approvals.approve(ap.id, { approved_by: "ops-2" }, { ifMatch: ap.version });
  assert.equal(done.status, "approved");
  assert.equal(done.approved_by_key, second.id);
  assert.equal(done.requested_by_key, ap.requested_by_key);
  assert.equal(done.result?.type, "transfer");
  assert.equal((await rf.accounts.get(a)).posted, 9007199254740993n);
  await expectError(rf.approvals.reject(ap.id, { rejected_by: "ops-2" }), 409, "invalid_state");
  const grant = await rf.approvals.create({ action: { type: "entitlement_grant", user_id: uid("user"), key: "pro" },
    requested_by: "agent-7" });
  assert.equal((await rf.approvals.reject(grant.id, { rejected_by: "ops-2", reason: "no" })).status, "rejected");
  const pay = await rf.approvals.create({ action: { type: "payout", account: a, amount_minor: 1n, currency: "USD",
    destination: { provider: "stripe", ref: "acct_1" } }, requested_by: "agent-7" });
  assert.equal((await rf.approvals.cancel(pay.id)).status, "cancelled");
  const page = await rf.approvals.list({ status: "all", limit: 500 });
  assert.ok(page.data.some((x) => x.id === ap.id));
  assert.equal((await rf.approvals.get(ap.id)).version, done.version);
});

test("keys: create, list, get, revoke; the revoked key stops working", async () => {
  const k = await rf.keys.create({ role: "readonly", name: uid("ro") });
  assert.ok(k.key.length > 0);
  const ro = new Racefree(URL_, k.key, { fetch: recordingFetch });
  const w = await wallet();
  assert.equal((await ro.accounts.get(w)).id, w);
  await expectError(ro.accounts.credit(w, { amount_minor: 1n }), 403, "forbidden");
  assert.equal((await rf.keys.get(k.id)).role, "readonly");
  assert.ok((await rf.keys.list({ limit: 500 })).data.some((x) => x.id === k.id));
  await rf.keys.revoke(k.id);
  await expectError(ro.accounts.get(w), 401, "unauthenticated");
});

test("webhooks: secrets set, rotated and listed without their values; the event ledger lists", async () => {
  const provider = uid("gen");
  const set = await rf.webhooks.setSecret(provider, "whsec_client_test_0123456789");
  assert.equal(set.provider, provider);
  assert.equal(set.version, 1);
  assert.equal(set.previous_expires_at, null);
  const rot = await rf.webhooks.rotateSecret(provider, { secret: "whsec_client_test_abcdefghij", overlap_seconds: 60 });
  assert.equal(rot.version, 2);
  assert.ok(typeof rot.previous_expires_at === "string");
  const page = await rf.webhooks.listSecrets({ limit: 500 });
  assert.ok(page.data.some((x) => x.provider === provider));
  assert.ok(!JSON.stringify(page).includes("whsec_"));
  await expectError(rf.webhooks.rotateSecret(uid("none"), { secret: "whsec_client_test_abcdefghij" }), 404,
    "webhook_provider_unknown");
  const events = await rf.webhooks.listEvents({ provider, status: "unmatched", limit: 10 });
  assert.deepEqual(events.data, []);
  assert.equal(events.next, null);
});

/** A proxy to the server that can fail a request in one of two ways, once. */
async function proxy(fail: "503-before" | "drop-after") {
  const keys: string[] = [];
  let failed = false;
  const target = new URL(URL_ as string);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      keys.push(String(req.headers["idempotency-key"] ?? ""));
      const first = !failed && req.method === "POST";
      if (first) failed = true;
      if (first && fail === "503-before") {
        res.writeHead(503, { "Content-Type": "application/problem+json", "Retry-After": "1" });
        res.end(JSON.stringify({ type: "about:blank", title: "Overloaded", status: 503, detail: "try later",
          code: "overloaded" }));
        return;
      }
      const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url,
        headers: req.headers }, (ur) => {
        const body: Buffer[] = [];
        ur.on("data", (c: Buffer) => body.push(c));
        ur.on("end", () => {
          if (first && fail === "drop-after") {
            req.socket.destroy(); // the effect happened; the answer is lost
            return;
          }
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          res.end(Buffer.concat(body));
        });
      });
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, keys, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test("admin.reconcile: the store's invariants, clean after the flows above; admin only", async () => {
  const r = await rf.admin.reconcile();
  assert.equal(r.object, "reconciliation");
  assert.equal(r.clean, true, JSON.stringify(r.checks.filter((c) => !c.clean)));
  assert.equal(r.violations, 0);
  assert.ok(r.checks.some((c) => c.name === "account_entries" && c.columns[0] === "account"));
  const k = await rf.keys.create({ role: "readonly", name: uid("ro") });
  const ro = new Racefree(URL_, k.key, { fetch: recordingFetch });
  await expectError(ro.admin.reconcile(), 403, "forbidden");
});

test("schedules: this server's list, a run triggered twice is one run, its runs; unknown name 404", async () => {
  const list = await rf.schedules.list();
  const payouts = list.data.find((x) => x.name === "payouts");
  assert.ok(payouts, "the server runs with --schedule payouts@1h");
  assert.equal(payouts.interval_ms, 3600000);
  const slot = payouts.current_slot;
  const a = await rf.schedules.run("payouts");
  const b = await rf.schedules.run("payouts");
  if (a.slot === slot && b.slot === slot) assert.equal(a.id, b.id);
  assert.ok(["running", "succeeded"].includes(b.status));
  const runs = await rf.schedules.runs("payouts", { limit: 500 });
  assert.equal(runs.data.filter((r) => r.slot === b.slot).length, 1);
  await expectError(rf.schedules.run("nosuch"), 404, "schedule_not_found");
});

test("jobs: enqueue (unique_key), claim, heartbeat, complete, fail, cancel, stats; drop-in", async () => {
  const k = await rf.keys.create({ role: "service", name: uid("svc") });
  const svc = new Racefree(URL_, k.key, { fetch: recordingFetch });
  const queue = uid("q");
  const job = await svc.jobs.enqueue({ queue, kind: "mail.send", payload: { to: "a" }, unique_key: "u1" });
  assert.equal(job.status, "available");
  assert.equal((await svc.jobs.enqueue({ queue, kind: "mail.send", payload: {}, unique_key: "u1" })).id, job.id);
  const [claimed] = await svc.jobs.claim(queue, { worker_id: "w1", lease_ms: 30000, max_jobs: 5 });
  assert.equal(claimed?.id, job.id);
  assert.equal(claimed?.token, 1);
  assert.equal((await svc.jobs.heartbeat(job.id, { token: 1, lease_ms: 60000 })).status, "running");
  await expectError(svc.jobs.complete(job.id, { token: 2 }), 409, "stale_lease");
  assert.equal((await svc.jobs.complete(job.id, { token: 1, result: { ok: true } })).status, "completed");
  const other = await svc.jobs.enqueue({ queue, kind: "mail.send", payload: {}, max_attempts: 1 });
  await svc.jobs.claim(queue, { worker_id: "w1" });
  assert.equal((await svc.jobs.fail(other.id, { token: 1, error: "boom" })).status, "failed");
  const third = await svc.jobs.enqueue({ queue, kind: "mail.send", payload: {} });
  assert.equal((await rf.jobs.cancel(third.id)).status, "canceled");
  await expectError(rf.jobs.cancel(third.id), 409, "invalid_state");
  assert.equal((await rf.jobs.get(job.id)).status, "completed");
  const st = await rf.queues.stats(queue);
  assert.deepEqual(st.counts, { available: 0, running: 0, completed: 1, failed: 1, canceled: 1 });

  const photo = uid("photo");
  const pj = await svc.dropIn.process(photo);
  assert.equal((await svc.dropIn.process(photo)).id, pj.id);
  await expectError(rf.dropIn.process(photo), 403, "forbidden");
  const m = await svc.dropIn.recordMatch(photo, "att-1", "face-1", { similarity_bp: 9900 });
  assert.equal((await svc.dropIn.recordMatch(photo, "att-1", "face-1", { similarity_bp: 9900 })).id, m.id);
  const page = await rf.dropIn.listMatches(photo);
  assert.deepEqual(page.data.map((x) => x.id), [m.id]);
});

test("announcements: create (one per key), delivered to every listed user, retry-failed with none failed", async () => {
  const users = [uid("ann"), uid("ann"), uid("ann")];
  const key = uid("announce");
  const body = { title: "Hi", body: "News", audience: { user_ids: users } };
  const a = await rf.announcements.create(body, { idempotencyKey: key });
  assert.equal((await rf.announcements.create(body, { idempotencyKey: key })).id, a.id);
  let got = await rf.announcements.get(a.id);
  for (let i = 0; i < 400 && got.state !== "sent"; i++) {
    await new Promise((r) => setTimeout(r, 50));
    got = await rf.announcements.get(a.id);
  }
  assert.equal(got.state, "sent");
  assert.deepEqual(got.counts, { recipients: 3, pending: 0, delivered: 3, failed: 0 });
  assert.equal((await rf.announcements.retryFailed(a.id)).retries, 0);
  await expectError(rf.announcements.get("no-such-announcement"), 404, "announcement_not_found");
});

test("a 503 with Retry-After is retried with the same key: the credit happens once", async () => {
  const w = await wallet();
  const p = await proxy("503-before");
  try {
    const c = new Racefree(p.url, KEY, { baseDelayMs: 10 });
    const t0 = Date.now();
    const r = await c.request<{ amount_minor: bigint }>("POST", `/v1/accounts/${w}/credits`,
      { body: { amount_minor: 70n } });
    assert.ok(Date.now() - t0 >= 900, "Retry-After was not honoured");
    assert.equal(r.attempts, 2);
    assert.equal(r.status, 201);
    assert.equal(r.replayed, false);
    assert.equal(p.keys.length, 2);
    assert.equal(p.keys[0], p.keys[1]);
    assert.equal(p.keys[0], r.idempotencyKey);
  } finally {
    await p.close();
  }
  assert.equal((await rf.accounts.get(w)).posted, 70n);
});

test("an answer lost after the effect: the retry with the same key replays it, the credit happens once", async () => {
  const w = await wallet();
  const p = await proxy("drop-after");
  try {
    const c = new Racefree(p.url, KEY, { baseDelayMs: 10 });
    const r = await c.request<{ id: string }>("POST", `/v1/accounts/${w}/credits`, { body: { amount_minor: 30n } });
    assert.equal(r.attempts, 2);
    assert.equal(r.replayed, true);
    assert.equal(p.keys.length, 2);
    assert.equal(p.keys[0], p.keys[1]);
    const entries = await rf.accounts.entries(w);
    assert.equal(entries.data.length, 1);
    assert.equal(entries.data[0]?.transfer_id, r.data.id);
  } finally {
    await p.close();
  }
  assert.equal((await rf.accounts.get(w)).posted, 30n);
});

test("leases: acquire, held (409 with holder), renew, stale token, release, a higher token next", async () => {
  const name = uid("lease");
  const a = await rf.leases.acquire(name, { holder: "node-a", ttl_ms: 5000 });
  assert.equal(a.status, "held");
  const held = await expectError(rf.leases.acquire(name, { holder: "node-b", ttl_ms: 5000 }), 409, "lease_held");
  assert.equal(held.problem.holder, "node-a");
  assert.equal(held.problem.expires_at, a.expires_at);
  assert.equal((await rf.leases.renew(name, { token: a.token })).token, a.token);
  await expectError(rf.leases.renew(name, { token: a.token + 1 }), 409, "stale_lease");
  assert.equal((await rf.leases.release(name, { token: a.token })).status, "released");
  await expectError(rf.leases.release(name, { token: a.token }), 409, "stale_lease");
  const b = await rf.leases.acquire(name, { holder: "node-b", ttl_ms: 5000 });
  assert.ok(b.token > a.token);
  assert.equal((await rf.leases.get(name)).holder, "node-b");
  await rf.leases.release(name, { token: b.token });
});

test("payout batches: one payout per eligible wallet, a replay with the same key, totals", async () => {
  const cur = currency();
  const rich = await wallet(cur);
  const poor = await wallet(cur);
  await rf.accounts.credit(rich, { amount_minor: 900n });
  await rf.accounts.credit(poor, { amount_minor: 10n });
  const idempotencyKey = uid("batch");
  const first = await rf.request<{ id: string }>("POST", "/v1/payout-batches",
    { body: { currency: cur, min_amount_minor: 100 }, idempotencyKey });
  assert.equal(first.status, 201);
  const b = await rf.payoutBatches.create({ currency: cur, min_amount_minor: 100 }, { idempotencyKey });
  assert.equal(b.id, first.data.id);
  assert.equal(b.status, "completed");
  assert.equal(b.totals.payouts, 1);
  assert.equal(b.totals.amount_minor, 900n);
  assert.deepEqual(await rf.payoutBatches.get(b.id), b);
  assert.equal((await rf.accounts.get(rich)).available, 0n);
  assert.equal((await rf.accounts.get(poor)).available, 10n);
});

test("every header the server sent is declared in docs/openapi.yaml for its operation and status", () => {
  assert.ok(seen.length > 50, `only ${seen.length} responses recorded`);
  assert.deepEqual(undeclared(), []);
});

before(async () => {
  assert.equal((await rf.request<{ status: string }>("GET", "/healthz")).data.status, "ok");
});

test("notifications: create (dedupe_key), read once, unread, list with unread_count, readAll; another user's id 404", async () => {
  const user = uid("user");
  const other = uid("user");
  const a = await rf.notifications.create(user, { kind: "order.shipped", title: "Shipped", body: "b", data: { o: 1 }, dedupe_key: "s-1" });
  assert.equal(a.read_at, null);
  assert.equal((await rf.notifications.create(user, { kind: "x", title: "t", body: "", dedupe_key: "s-1" })).id, a.id);
  const b = await rf.notifications.create(user, { kind: "k", title: "second", body: "b" });
  const r1 = await rf.notifications.read(user, a.id);
  assert.ok(r1.read_at);
  assert.equal((await rf.notifications.read(user, a.id)).read_at, r1.read_at);
  assert.equal((await rf.notifications.unreadCount(user)).unread_count, 1);
  const page = await rf.notifications.list(user, { unread: true });
  assert.deepEqual(page.data.map((n) => n.id), [b.id]);
  assert.equal(page.unread_count, 1);
  assert.equal((await rf.notifications.unread(user, a.id)).read_at, null);
  const all = await rf.notifications.readAll(user, b.id);
  assert.equal(all.marked, 2);
  assert.equal(all.unread_count, 0);
  assert.equal((await rf.notifications.get(user, b.id)).id, b.id);
  await expectError(rf.notifications.get(other, a.id), 404, "notification_not_found");
  await expectError(rf.notifications.read(other, a.id), 404, "notification_not_found");
  await expectError(rf.notifications.readAll(other, a.id), 404, "notification_not_found");
});
