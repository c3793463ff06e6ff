/**
 * client.ts - the hand-written client over racefree's HTTP API.
 *
 * One door, request(): it writes the body with the lossless writer, reads
 * the answer with the lossless reader (json.ts), turns every error status
 * into a RacefreeError, and retries what is safe to retry:
 *  - every POST carries an Idempotency-Key: the caller's, or one made per
 *    call (a random UUID), so a retry can never apply the effect twice: the
 *    server replays the first answer for the same key;
 *  - a 503 (overloaded, store_unavailable, outcome_unknown, ...), a 429
 *    (rate_limited: nothing was done) and a
 *    network error (no answer, connection reset, timeout) are retried with
 *    the SAME key, at most `maxAttempts` attempts in all; the wait honours
 *    Retry-After, else grows exponentially from `baseDelayMs` with jitter,
 *    capped at `maxDelayMs`; a Retry-After longer than `maxDelayMs` is not
 *    waited for (the error is thrown);
 *  - any other status (other 4xx and 5xx) is never retried.
 * The resource methods (accounts, transfers, ...) are thin typed wrappers.
 */
import { randomUUID } from "node:crypto";

import { RacefreeError, RacefreeNetworkError } from "./errors.js";
import { parseJson, stringifyJson } from "./json.js";
import type * as T from "./types.js";

export interface ClientOptions {
  /** Attempts in all for one call, retries included (default 4). */
  maxAttempts?: number;
  /** First backoff step without Retry-After, doubled per retry (default 200 ms). */
  baseDelayMs?: number;
  /** Longest wait between attempts; a longer Retry-After is not waited for (default 10 000 ms). */
  maxDelayMs?: number;
  /** Deadline of one attempt; past it the attempt counts as a network error (default 30 000 ms). */
  timeoutMs?: number;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
}

export interface CallOptions {
  /** Sent as Idempotency-Key; a POST without one gets a fresh key per call. */
  idempotencyKey?: string;
  /** Sent as If-Match (a version number is quoted: 3 -> "3"). */
  ifMatch?: string | number;
  /** Extra headers (X-Request-Id, ...). */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface RequestOptions extends CallOptions {
  body?: unknown;
  query?: Record<string, string | number | null | undefined>;
}

export interface RacefreeResponse<D> {
  status: number;
  data: D;
  headers: Headers;
  /** The ETag header without quotes ("3" -> "3"), when sent. */
  etag: string | undefined;
  /** True when the server replayed the stored answer of an earlier request with this key. */
  replayed: boolean;
  requestId: string | undefined;
  /** The Idempotency-Key sent (the caller's or the generated one). */
  idempotencyKey: string | undefined;
  /** Attempts it took (1 when the first succeeded). */
  attempts: number;
}

const DEFAULTS = { maxAttempts: 4, baseDelayMs: 200, maxDelayMs: 10_000, timeoutMs: 30_000 };

const seg = (s: string): string => encodeURIComponent(s);

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Retry-After in ms (seconds or an HTTP date), or undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The wait before retry number `retry` (1, 2, ...): Retry-After, else jittered exponential. */
export function backoffMs(retry: number, retryAfter: number | undefined, base: number, cap: number): number {
  if (retryAfter !== undefined) return retryAfter;
  const ceiling = Math.min(cap, base * 2 ** (retry - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

export class Racefree {
  readonly baseUrl: string;
  readonly #apiKey: string;
  readonly #opts: Required<Omit<ClientOptions, "fetch">>;
  readonly #fetch: typeof fetch;

  constructor(baseUrl: string, apiKey: string, options: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#apiKey = apiKey;
    this.#opts = {
      maxAttempts: Math.max(1, options.maxAttempts ?? DEFAULTS.maxAttempts),
      baseDelayMs: options.baseDelayMs ?? DEFAULTS.baseDelayMs,
      maxDelayMs: options.maxDelayMs ?? DEFAULTS.maxDelayMs,
      timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
    };
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  #url(path: string, query?: RequestOptions["query"]): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null) q.set(k, String(v));
    const qs = q.toString();
    return this.baseUrl + path + (qs ? `?${qs}` : "");
  }

  #headers(method: string, o: RequestOptions, key: string | undefined): Record<string, string> {
    const h: Record<string, string> = { Authorization: `Bearer ${this.#apiKey}`, Accept: "application/json" };
    if (o.body !== undefined) h["Content-Type"] = "application/json";
    if (key !== undefined) h["Idempotency-Key"] = key;
    if (o.ifMatch !== undefined) h["If-Match"] = typeof o.ifMatch === "number" ? `"${o.ifMatch}"` : o.ifMatch;
    return { ...h, ...o.headers };
  }

  /** Any endpoint: `path` starts with `/` (`/v1/accounts/a1`); the answer's body is parsed losslessly. */
  async request<D = unknown>(method: string, path: string, o: RequestOptions = {}): Promise<RacefreeResponse<D>> {
    const m = method.toUpperCase();
    const key = o.idempotencyKey ?? (m === "POST" ? randomUUID() : undefined);
    const init = {
      method: m,
      headers: this.#headers(m, o, key),
      body: o.body === undefined ? undefined : stringifyJson(o.body),
    };
    const url = this.#url(path, o.query);
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await this.#fetch(url, { ...init, signal: this.#signal(o.signal) });
      } catch (err) {
        if (o.signal?.aborted) throw err;
        if (attempt >= this.#opts.maxAttempts) {
          throw new RacefreeNetworkError(`${m} ${path}: no answer after ${attempt} attempts`, err, key, attempt);
        }
        await sleep(backoffMs(attempt, undefined, this.#opts.baseDelayMs, this.#opts.maxDelayMs), o.signal);
        continue;
      }
      const text = await res.text();
      if ((res.status === 503 || res.status === 429) && attempt < this.#opts.maxAttempts) {
        const wait = backoffMs(attempt, retryAfterMs(res.headers.get("Retry-After")), this.#opts.baseDelayMs,
          this.#opts.maxDelayMs);
        if (wait <= this.#opts.maxDelayMs) {
          await sleep(wait, o.signal);
          continue;
        }
      }
      return this.#finish<D>(res, text, key, attempt);
    }
  }

  #signal(caller: AbortSignal | undefined): AbortSignal {
    const t = AbortSignal.timeout(this.#opts.timeoutMs);
    if (!caller) return t;
    // AbortSignal.any is Node 20.3+; before it the caller's signal alone bounds the attempt.
    return typeof AbortSignal.any === "function" ? AbortSignal.any([caller, t]) : caller;
  }

  #finish<D>(res: Response, text: string, key: string | undefined, attempts: number): RacefreeResponse<D> {
    const requestId = res.headers.get("X-Request-Id") ?? undefined;
    let body: unknown = undefined;
    if (text.length > 0) {
      try {
        body = parseJson(text);
      } catch (err) {
        if (res.ok) throw err;
      }
    }
    if (!res.ok) {
      const problem = (body !== null && typeof body === "object" && !Array.isArray(body) ? body : {}) as T.Problem;
      throw new RacefreeError(res.status, problem, requestId, key);
    }
    const etag = res.headers.get("ETag")?.replace(/^(W\/)?"(.*)"$/, "$2") ?? undefined;
    return {
      status: res.status,
      data: body as D,
      headers: res.headers,
      etag,
      replayed: res.headers.get("Idempotent-Replayed") === "true",
      requestId,
      idempotencyKey: key,
      attempts,
    };
  }

  async #data<D>(method: string, path: string, o: RequestOptions = {}): Promise<D> {
    return (await this.request<D>(method, path, o)).data;
  }

  #list<D>(path: string, l: T.ListOptions & { status?: string } = {}): Promise<T.Page<D>> {
    return this.#data<T.Page<D>>("GET", path, { query: { status: l.status, limit: l.limit, after: l.after } });
  }

  readonly accounts = {
    create: (body: T.AccountCreate, o?: CallOptions) => this.#data<T.Account>("POST", "/v1/accounts", { ...o, body }),
    get: (id: string) => this.#data<T.Account>("GET", `/v1/accounts/${seg(id)}`),
    entries: (id: string, l?: T.ListOptions) => this.#list<T.Entry>(`/v1/accounts/${seg(id)}/entries`, l),
    /** Credits the account from funding:<CUR>; answers the transfer that moved the money. */
    credit: (id: string, body: T.CreditApply, o?: CallOptions) =>
      this.#data<T.Transfer>("POST", `/v1/accounts/${seg(id)}/credits`, { ...o, body }),
  };

  readonly transfers = {
    create: (body: T.TransferCreate, o?: CallOptions) => this.#data<T.Transfer>("POST", "/v1/transfers", { ...o, body }),
    get: (id: string) => this.#data<T.Transfer>("GET", `/v1/transfers/${seg(id)}`),
    /** Posts a hold: all of it, or `amount_minor` and releases the rest. */
    post: (id: string, body: T.TransferPost = {}, o?: CallOptions) =>
      this.#data<T.Transfer>("POST", `/v1/transfers/${seg(id)}/post`, { ...o, body }),
    void: (id: string, o?: CallOptions) => this.#data<T.Transfer>("POST", `/v1/transfers/${seg(id)}/void`, o),
  };

  readonly entitlements = {
    grant: (userId: string, key: string, body: T.EntitlementGrant = {}, o?: CallOptions) =>
      this.#data<T.Entitlement>("PUT", `/v1/users/${seg(userId)}/entitlements/${seg(key)}`, { ...o, body }),
    revoke: (userId: string, key: string, o?: CallOptions) =>
      this.#data<void>("DELETE", `/v1/users/${seg(userId)}/entitlements/${seg(key)}`, o),
    get: (userId: string, key: string) =>
      this.#data<T.Entitlement>("GET", `/v1/users/${seg(userId)}/entitlements/${seg(key)}`),
    list: (userId: string, l?: T.ListOptions & { status?: T.EntitlementStatus }) =>
      this.#list<T.Entitlement>(`/v1/users/${seg(userId)}/entitlements`, l),
  };

  readonly customers = {
    bind: (userId: string, provider: string, customerId: string) =>
      this.#data<T.CustomerBinding>("PUT", `/v1/users/${seg(userId)}/customers/${seg(provider)}`,
        { body: { customer_id: customerId } }),
    get: (userId: string, provider: string) =>
      this.#data<T.CustomerBinding>("GET", `/v1/users/${seg(userId)}/customers/${seg(provider)}`),
    /** The binding of a provider's customer (reverse lookup). */
    lookup: (provider: string, customerId: string) =>
      this.#data<T.CustomerBinding>("GET", `/v1/customers/${seg(provider)}/${seg(customerId)}`),
    unbind: (userId: string, provider: string, o?: CallOptions) =>
      this.#data<void>("DELETE", `/v1/users/${seg(userId)}/customers/${seg(provider)}`, o),
  };

  readonly approvals = {
    create: (body: T.ApprovalCreate, o?: CallOptions) => this.#data<T.Approval>("POST", "/v1/approvals", { ...o, body }),
    get: (id: string) => this.#data<T.Approval>("GET", `/v1/approvals/${seg(id)}`),
    list: (l?: T.ListOptions & { status?: T.ApprovalStatus }) => this.#list<T.Approval>("/v1/approvals", l),
    approve: (id: string, body: T.ApprovalApprove, o?: CallOptions) =>
      this.#data<T.Approval>("POST", `/v1/approvals/${seg(id)}/approve`, { ...o, body }),
    reject: (id: string, body: T.ApprovalReject, o?: CallOptions) =>
      this.#data<T.Approval>("POST", `/v1/approvals/${seg(id)}/reject`, { ...o, body }),
    cancel: (id: string, body: T.ApprovalCancel = {}, o?: CallOptions) =>
      this.#data<T.Approval>("POST", `/v1/approvals/${seg(id)}/cancel`, { ...o, body }),
  };

  readonly payouts = {
    create: (body: T.PayoutCreate, o?: CallOptions) => this.#data<T.Payout>("POST", "/v1/payouts", { ...o, body }),
    get: (id: string) => this.#data<T.Payout>("GET", `/v1/payouts/${seg(id)}`),
    list: (l?: T.ListOptions & { status?: T.PayoutStatus }) => this.#list<T.Payout>("/v1/payouts", l),
    /** Counts an attempt (call it before asking the provider). */
    recordAttempt: (id: string, o?: CallOptions) => this.#data<T.Payout>("POST", `/v1/payouts/${seg(id)}/attempts`, o),
    succeeded: (id: string, body: T.PayoutSucceeded, o?: CallOptions) =>
      this.#data<T.Payout>("POST", `/v1/payouts/${seg(id)}/succeeded`, { ...o, body }),
    failed: (id: string, body: T.PayoutFailed, o?: CallOptions) =>
      this.#data<T.Payout>("POST", `/v1/payouts/${seg(id)}/failed`, { ...o, body }),
  };

  /** Named leases with fencing tokens: `acquire` answers a token strictly above every
   * earlier one for the name, or throws 409 `lease_held` (problem members `holder`,
   * `expires_at`); `renew` and `release` need the current token (409 `stale_lease`). */
  readonly leases = {
    acquire: (name: string, body: T.LeaseAcquire, o?: CallOptions) =>
      this.#data<T.Lease>("POST", `/v1/leases/${seg(name)}/acquire`, { ...o, body }),
    renew: (name: string, body: T.LeaseRenew, o?: CallOptions) =>
      this.#data<T.Lease>("POST", `/v1/leases/${seg(name)}/renew`, { ...o, body }),
    release: (name: string, body: T.LeaseRelease, o?: CallOptions) =>
      this.#data<T.Lease>("POST", `/v1/leases/${seg(name)}/release`, { ...o, body }),
    get: (name: string) => this.#data<T.Lease>("GET", `/v1/leases/${seg(name)}`),
  };

  /** Payout batches (admin): one payout per wallet of a currency at or above a minimum,
   * under the `payouts` lease. The Idempotency-Key is the batch's identity: pass one so
   * that a retry finishes or returns the same batch. */
  readonly payoutBatches = {
    create: (body: T.PayoutBatchCreate, o?: CallOptions) =>
      this.#data<T.PayoutBatch>("POST", "/v1/payout-batches", { ...o, body }),
    get: (id: string) => this.#data<T.PayoutBatch>("GET", `/v1/payout-batches/${seg(id)}`),
  };

  readonly checkouts = {
    /** Idempotency-Key required: pass one to make retries (and racing tabs) one checkout. */
    create: (body: T.CheckoutCreate, o?: CallOptions) => this.#data<T.Checkout>("POST", "/v1/checkouts", { ...o, body }),
    get: (id: string) => this.#data<T.Checkout>("GET", `/v1/checkouts/${seg(id)}`),
    /** Binds the provider's reference once; the same binding again is answered 200. */
    bindProviderRef: (id: string, body: T.CheckoutProviderRef) =>
      this.#data<T.Checkout>("PUT", `/v1/checkouts/${seg(id)}/provider-ref`, { body }),
    cancel: (id: string, o?: CallOptions) => this.#data<T.Checkout>("POST", `/v1/checkouts/${seg(id)}/cancel`, o),
    listByUser: (userId: string, l?: T.ListOptions & { status?: T.CheckoutStatus }) =>
      this.#list<T.Checkout>(`/v1/users/${seg(userId)}/checkouts`, l),
  };

  /** Webhook signing secrets (never returned) and the event ledger (admin). Deliveries
   * themselves come from the payment provider, signed, to POST /v1/webhooks/{provider}. */
  readonly webhooks = {
    /** Sets the provider's secret; it becomes the only one accepted. */
    setSecret: (provider: string, secret: string) =>
      this.#data<T.WebhookSecret>("PUT", `/v1/webhook-secrets/${seg(provider)}`, { body: { secret } }),
    /** A new primary; the old secret stays accepted for `overlap_seconds` (default 24 h). */
    rotateSecret: (provider: string, body: T.WebhookSecretRotate, o?: CallOptions) =>
      this.#data<T.WebhookSecret>("POST", `/v1/webhook-secrets/${seg(provider)}/rotate`, { ...o, body }),
    listSecrets: (l?: T.ListOptions) => this.#list<T.WebhookSecret>("/v1/webhook-secrets", l),
    listEvents: (l: T.ListOptions & { status?: T.WebhookEventStatus; provider?: string } = {}) =>
      this.#data<T.Page<T.WebhookEvent>>("GET", "/v1/webhook-events", {
        query: { status: l.status, provider: l.provider, limit: l.limit, after: l.after },
      }),
  };

  /** This server's `racefree serve --schedule` runs. Triggering a run is admin only. */
  readonly schedules = {
    /** This server's schedules, each with its last run and next slot (admin, readonly). */
    list: () => this.#data<T.Page<T.Schedule>>("GET", "/v1/schedules"),
    /** Runs the current slot now; once per slot however often it is called (201: this call
     * claimed it, 200: the slot's run as it is). */
    run: (name: string, o?: CallOptions) =>
      this.#data<T.ScheduleRun>("POST", `/v1/schedules/${seg(name)}/run`, o),
    /** A schedule's runs, in claim order. */
    runs: (name: string, l?: T.ListOptions) => this.#list<T.ScheduleRun>(`/v1/schedules/${seg(name)}/runs`, l),
  };

  /** The job queue: producers enqueue (a unique_key makes one live job), workers claim under
   * a lease and answer with the claim's fencing token (a stale one is 409 stale_lease). */
  readonly jobs = {
    /** 201 a new job; 200 the live job of its unique_key in that queue. */
    enqueue: (body: T.JobCreate, o?: CallOptions) => this.#data<T.Job>("POST", "/v1/jobs", { ...o, body }),
    /** Up to max_jobs ready jobs, each running under a lease with a new token (maybe none). */
    claim: async (queue: string, body: T.JobClaim) =>
      (await this.#data<{ data: T.Job[] }>("POST", `/v1/queues/${seg(queue)}/claim`, { body })).data,
    heartbeat: (id: string, body: T.JobHeartbeat) =>
      this.#data<T.Job>("POST", `/v1/jobs/${seg(id)}/heartbeat`, { body }),
    complete: (id: string, body: T.JobComplete, o?: CallOptions) =>
      this.#data<T.Job>("POST", `/v1/jobs/${seg(id)}/complete`, { ...o, body }),
    /** Retried after retry_in_ms or the backoff while attempts are left; else failed. */
    fail: (id: string, body: T.JobFail, o?: CallOptions) =>
      this.#data<T.Job>("POST", `/v1/jobs/${seg(id)}/fail`, { ...o, body }),
    cancel: (id: string, o?: CallOptions) => this.#data<T.Job>("POST", `/v1/jobs/${seg(id)}/cancel`, o),
    get: (id: string) => this.#data<T.Job>("GET", `/v1/jobs/${seg(id)}`),
  };

  readonly queues = {
    /** counts.available shares its name with the balance member the JSON reader reads as a
     * bigint (AMOUNT_KEYS); a count is a number, so it is given back as one. */
    stats: async (queue: string) => {
      const st = await this.#data<T.QueueStats>("GET", `/v1/queues/${seg(queue)}/stats`);
      return { ...st, counts: { ...st.counts, available: Number(st.counts.available) } };
    },
  };

  /** Drop-in photo processing: one job per photo (service keys trigger it), matches once each. */
  readonly dropIn = {
    /** 201 the photo's new job; 200 its job while available, running or completed. */
    process: (photoId: string) => this.#data<T.Job>("POST", `/v1/drop-in/photos/${seg(photoId)}/process`),
    /** 201 the first record; 200 with that same row for every later one. */
    recordMatch: (photoId: string, attendeeId: string, faceId: string, body: T.DropInMatchRecord = {}) =>
      this.#data<T.DropInMatch>("PUT",
        `/v1/drop-in/photos/${seg(photoId)}/matches/${seg(attendeeId)}/${seg(faceId)}`, { body }),
    listMatches: (photoId: string, l?: T.ListOptions) =>
      this.#list<T.DropInMatch>(`/v1/drop-in/photos/${seg(photoId)}/matches`, l),
  };

  /** A user's notifications, reachable only under that user (another user's id is 404
   * notification_not_found). One read state: read_at, null or the first read's time. */
  readonly notifications = {
    /** 201 a new one; 200 the user's existing one with this dedupe_key. */
    create: (userId: string, body: T.NotificationCreate, o?: CallOptions) =>
      this.#data<T.Notification>("POST", `/v1/users/${seg(userId)}/notifications`, { ...o, body }),
    get: (userId: string, id: string) =>
      this.#data<T.Notification>("GET", `/v1/users/${seg(userId)}/notifications/${seg(id)}`),
    /** A page in commit order with the user's unread_count read by the same statement;
     * unread: true only the unread ones, false only the read ones. */
    list: (userId: string, l: T.ListOptions & { unread?: boolean } = {}) =>
      this.#data<T.NotificationPage>("GET", `/v1/users/${seg(userId)}/notifications`, {
        query: { limit: l.limit, after: l.after, unread: l.unread === undefined ? undefined : String(l.unread) },
      }),
    unreadCount: (userId: string) =>
      this.#data<T.NotificationUnreadCount>("GET", `/v1/users/${seg(userId)}/notifications/unread-count`),
    /** Sets read_at once: a repeat answers the same read_at. */
    read: (userId: string, id: string) =>
      this.#data<T.Notification>("POST", `/v1/users/${seg(userId)}/notifications/${seg(id)}/read`),
    unread: (userId: string, id: string) =>
      this.#data<T.Notification>("POST", `/v1/users/${seg(userId)}/notifications/${seg(id)}/unread`),
    /** Marks every unread one up to and including upTo in list order. */
    readAll: (userId: string, upTo: string) =>
      this.#data<T.NotificationReadAllResult>("POST", `/v1/users/${seg(userId)}/notifications/read-all`, {
        body: { up_to: upTo },
      }),
  };

  /** Announcements through the outbox: the announcement and its fan-out job commit together;
   * the server delivers it in chunks; its state is derived from the recipients. */
  readonly announcements = {
    /** Idempotency-Key required: pass one so that a retried send makes one announcement. */
    create: (body: T.AnnouncementCreate, o?: CallOptions) =>
      this.#data<T.Announcement>("POST", "/v1/announcements", { ...o, body }),
    /** State (scheduled, sending, sent, partially_failed) and recipients' counts. */
    get: (id: string) => this.#data<T.Announcement>("GET", `/v1/announcements/${seg(id)}`),
    /** Failed recipients back to pending, delivered by a job of their own (none failed: no-op). */
    retryFailed: (id: string, o?: CallOptions) =>
      this.#data<T.Announcement>("POST", `/v1/announcements/${seg(id)}/retry-failed`, o),
  };

  /** Administration (admin keys only). */
  readonly admin = {
    /** Every invariant of the store checked now in one read snapshot: `clean`, and per check its
     * count of violating rows with up to `examples_max` of them (200 whether clean or not). */
    reconcile: () => this.#data<T.Reconciliation>("GET", "/v1/admin/reconcile"),
  };

  readonly keys = {
    create: (body: T.KeyCreate, o?: CallOptions) => this.#data<T.KeyCreated>("POST", "/v1/keys", { ...o, body }),
    get: (id: string) => this.#data<T.Key>("GET", `/v1/keys/${seg(id)}`),
    list: (l?: T.ListOptions) => this.#list<T.Key>("/v1/keys", l),
    revoke: (id: string) => this.#data<void>("DELETE", `/v1/keys/${seg(id)}`),
  };
}
