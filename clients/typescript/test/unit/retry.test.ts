// The client's retry rules without a server (a fetch stand-in): 503, 429 and
// network errors are retried with the same Idempotency-Key, 4xx never,
// attempts are bounded, Retry-After is honoured, a long one is not waited for.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Racefree, RacefreeError, RacefreeNetworkError, backoffMs, retryAfterMs } from "../../src/index.js";

type Step = { status: number; body?: string; headers?: Record<string, string> } | "network";

function scripted(steps: Step[]) {
  const seen: { method: string; key: string | null; body: string | null }[] = [];
  const f = async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const h = new Headers(init?.headers);
    seen.push({ method: String(init?.method), key: h.get("Idempotency-Key"), body: (init?.body as string) ?? null });
    const s = steps.shift();
    if (s === undefined) throw new Error("no more scripted answers");
    if (s === "network") throw new TypeError("fetch failed");
    return new Response(s.body ?? null, { status: s.status, headers: s.headers });
  };
  return { f: f as typeof fetch, seen };
}

const problem = (code: string, status: number) =>
  JSON.stringify({ type: `https://racefree.dev/problems/${code}`, title: "t", status, detail: "d", code,
    param: "amount_minor", request_id: "req-1", available: 12 });

const fast = { baseDelayMs: 1, maxDelayMs: 2000 };

test("503 then success: retried with the same generated key, after Retry-After", async () => {
  const { f, seen } = scripted([
    { status: 503, body: problem("overloaded", 503), headers: { "Retry-After": "1" } },
    { status: 201, body: `{"amount_minor":9007199254740993}`, headers: { "Content-Type": "application/json" } },
  ]);
  const c = new Racefree("http://x", "k", { ...fast, fetch: f });
  const t0 = Date.now();
  const r = await c.request<{ amount_minor: bigint }>("POST", "/v1/transfers", { body: { amount_minor: 9007199254740993n } });
  assert.ok(Date.now() - t0 >= 900, "Retry-After: 1 was not waited for");
  assert.equal(r.attempts, 2);
  assert.equal(r.data.amount_minor, 9007199254740993n);
  assert.equal(seen.length, 2);
  assert.ok(seen[0]!.key && seen[0]!.key === seen[1]!.key, "the retry must carry the first key");
  assert.equal(seen[0]!.body, `{"amount_minor":9007199254740993}`);
});

test("429 rate_limited then success: retried after Retry-After, like a 503", async () => {
  const { f, seen } = scripted([
    { status: 429, body: problem("rate_limited", 429), headers: { "Retry-After": "1" } },
    { status: 200, body: `{"data":[],"next":null}`, headers: { "Content-Type": "application/json" } },
  ]);
  const c = new Racefree("http://x", "k", { ...fast, fetch: f });
  const t0 = Date.now();
  const r = await c.request("GET", "/v1/accounts");
  assert.ok(Date.now() - t0 >= 900, "Retry-After: 1 was not waited for");
  assert.equal(r.attempts, 2);
  assert.equal(seen.length, 2);
});

test("a 429 whose Retry-After is longer than maxDelayMs is thrown as rate_limited", async () => {
  const { f, seen } = scripted([{ status: 429, body: problem("rate_limited", 429), headers: { "Retry-After": "60" } }]);
  const c = new Racefree("http://x", "k", { ...fast, fetch: f });
  await assert.rejects(c.request("GET", "/a"),
    (e: unknown) => e instanceof RacefreeError && e.status === 429 && e.code === "rate_limited");
  assert.equal(seen.length, 1);
});

test("network errors are retried with the caller's key, bounded by maxAttempts", async () => {
  const { f, seen } = scripted(["network", "network", "network", "network"]);
  const c = new Racefree("http://x", "k", { ...fast, maxAttempts: 3, fetch: f });
  await assert.rejects(c.request("POST", "/v1/keys", { body: {}, idempotencyKey: "mine" }), (e: unknown) => {
    assert.ok(e instanceof RacefreeNetworkError);
    assert.equal(e.attempts, 3);
    assert.equal(e.idempotencyKey, "mine");
    return true;
  });
  assert.deepEqual(seen.map((s) => s.key), ["mine", "mine", "mine"]);
});

test("each call gets its own key; GET gets none", async () => {
  const ok = { status: 200, body: "{}" };
  const { f, seen } = scripted([ok, ok, ok]);
  const c = new Racefree("http://x", "k", { fetch: f });
  await c.request("POST", "/a", { body: {} });
  await c.request("POST", "/a", { body: {} });
  await c.request("GET", "/a");
  assert.ok(seen[0]!.key && seen[1]!.key && seen[0]!.key !== seen[1]!.key);
  assert.equal(seen[2]!.key, null);
});

test("4xx is never retried and becomes a typed error", async () => {
  const { f, seen } = scripted([{ status: 409, body: problem("insufficient_funds", 409) }, { status: 200 }]);
  const c = new Racefree("http://x", "k", { ...fast, fetch: f });
  await assert.rejects(c.request("POST", "/v1/transfers", { body: {} }), (e: unknown) => {
    assert.ok(e instanceof RacefreeError);
    assert.equal(e.status, 409);
    assert.equal(e.code, "insufficient_funds");
    assert.equal(e.param, "amount_minor");
    assert.equal(e.requestId, "req-1");
    assert.equal(e.problem.available, 12n);
    return true;
  });
  assert.equal(seen.length, 1);
});

test("a Retry-After longer than maxDelayMs is not waited for", async () => {
  const { f, seen } = scripted([{ status: 503, body: problem("overloaded", 503), headers: { "Retry-After": "60" } }]);
  const c = new Racefree("http://x", "k", { ...fast, fetch: f });
  await assert.rejects(c.request("POST", "/a", { body: {} }), (e: unknown) => e instanceof RacefreeError && e.status === 503);
  assert.equal(seen.length, 1);
});

test("backoff: Retry-After wins, else jittered and capped", () => {
  assert.equal(retryAfterMs("2"), 2000);
  assert.equal(retryAfterMs(null), undefined);
  assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4000), 6000);
  assert.equal(backoffMs(3, 1500, 100, 10_000), 1500);
  for (let i = 0; i < 50; i++) {
    const d = backoffMs(3, undefined, 100, 10_000);
    assert.ok(d >= 200 && d <= 400, String(d));
    assert.ok(backoffMs(30, undefined, 100, 1000) <= 1000);
  }
});
