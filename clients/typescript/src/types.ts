/**
 * types.ts - the generated schema types (schema.ts, from docs/openapi.yaml) as
 * this client hands them out and takes them in.
 *
 * The schema types amounts as `number` (a JSON integer). The client reads
 * every amount member (json.ts AMOUNT_KEYS) as a `bigint`, so `Read<T>` turns
 * those members' `number` into `bigint`, at any depth; requests take `bigint`
 * or `number` there (`Write<T>`): a number must be a safe integer (the writer
 * refuses one past 2^53-1, which has already been rounded).
 */
import type { components } from "./schema.js";

type Schemas = components["schemas"];

/** The amount members (kept in step with json.ts AMOUNT_KEYS). */
export type AmountKey =
  | "amount_minor"
  | "posted_amount_minor"
  | "posted"
  | "pending_debits"
  | "pending_credits"
  | "available"
  | "balance_after"
  | "refund_shortfall_minor";

type NumberTo<T, R> = T extends number ? R : T;

/** A response type as the client returns it: amounts are bigint. */
export type Read<T> = T extends readonly (infer U)[]
  ? Read<U>[]
  : T extends object
    ? { [K in keyof T]: K extends AmountKey ? NumberTo<T[K], bigint> : Read<T[K]> }
    : T;

/** A request type as the client takes it: amounts are bigint or number. */
export type Write<T> = T extends readonly (infer U)[]
  ? Write<U>[]
  : T extends object
    ? { [K in keyof T]: K extends AmountKey ? NumberTo<T[K], bigint | number> : Write<T[K]> }
    : T;

export type Account = Read<Schemas["Account"]>;
export type AccountCreate = Write<Schemas["AccountCreate"]>;
export type Entry = Read<Schemas["Entry"]>;
export type Transfer = Read<Schemas["Transfer"]>;
export type TransferCreate = Write<Schemas["TransferCreate"]>;
export type TransferPost = Write<Schemas["TransferPost"]>;
export type CreditApply = Write<Schemas["CreditApply"]>;
export type Entitlement = Read<Schemas["Entitlement"]>;
export type EntitlementGrant = Write<Schemas["EntitlementGrant"]>;
export type Payout = Read<Schemas["Payout"]>;
export type PayoutCreate = Write<Schemas["PayoutCreate"]>;
export type PayoutSucceeded = Write<Schemas["PayoutSucceeded"]>;
export type PayoutFailed = Write<Schemas["PayoutFailed"]>;
export type Checkout = Read<Schemas["Checkout"]>;
export type CheckoutCreate = Write<Schemas["CheckoutCreate"]>;
export type CheckoutItem = Write<Schemas["CheckoutItem"]>;
export type CheckoutProviderRef = Write<Schemas["CheckoutProviderRef"]>;
export type CustomerBinding = Read<Schemas["CustomerBinding"]>;
export type Approval = Read<Schemas["Approval"]>;
export type ApprovalCreate = Write<Schemas["ApprovalCreate"]>;
export type ApprovalAction = Write<Schemas["ApprovalAction"]>;
export type ApprovalApprove = Write<Schemas["ApprovalApprove"]>;
export type ApprovalReject = Write<Schemas["ApprovalReject"]>;
export type ApprovalCancel = Write<Schemas["ApprovalCancel"]>;
export type Key = Read<Schemas["Key"]>;
export type KeyCreate = Write<Schemas["KeyCreate"]>;
export type KeyCreated = Read<Schemas["KeyCreated"]>;
export type WebhookSecret = Read<Schemas["WebhookSecret"]>;
export type WebhookSecretRotate = Write<Schemas["WebhookSecretRotate"]>;
export type WebhookEvent = Read<Schemas["WebhookEvent"]>;
export type Lease = Read<Schemas["Lease"]>;
export type LeaseAcquire = Write<Schemas["LeaseAcquire"]>;
export type LeaseRenew = Write<Schemas["LeaseRenew"]>;
export type LeaseRelease = Write<Schemas["LeaseRelease"]>;
export type PayoutBatch = Read<Schemas["PayoutBatch"]>;
export type PayoutBatchCreate = Write<Schemas["PayoutBatchCreate"]>;
export type Schedule = Read<Schemas["Schedule"]>;
export type ScheduleRun = Read<Schemas["ScheduleRun"]>;
export type Reconciliation = Read<Schemas["Reconciliation"]>;
export type ReconcileCheck = Read<Schemas["ReconcileCheck"]>;
export type Job = Read<Schemas["Job"]>;
export type JobCreate = Write<Schemas["JobCreate"]>;
export type JobClaim = Write<Schemas["JobClaim"]>;
export type JobHeartbeat = Write<Schemas["JobHeartbeat"]>;
export type JobComplete = Write<Schemas["JobComplete"]>;
export type JobFail = Write<Schemas["JobFail"]>;
export type QueueStats = Read<Schemas["QueueStats"]>;
export type DropInMatch = Read<Schemas["DropInMatch"]>;
export type DropInMatchRecord = Write<Schemas["DropInMatchRecord"]>;
export type Notification = Read<Schemas["Notification"]>;
export type NotificationCreate = Write<Schemas["NotificationCreate"]>;
export type NotificationPage = Read<Schemas["NotificationPage"]>;
export type NotificationReadAllResult = Read<Schemas["NotificationReadAllResult"]>;
export type NotificationUnreadCount = Read<Schemas["NotificationUnreadCount"]>;
export type Announcement = Read<Schemas["Announcement"]>;
export type AnnouncementCreate = Write<Schemas["AnnouncementCreate"]>;
export type Problem = Read<Schemas["Problem"]> & { [member: string]: unknown };

/** One page of a list: `next` is the cursor for the following page, or null. */
export interface Page<T> {
  data: T[];
  next: string | null;
}

export type EntitlementStatus = "active" | "revoked" | "expired" | "all";
export type PayoutStatus = "all" | "pending" | "paid" | "failed";
export type CheckoutStatus = "all" | "pending" | "paid" | "fulfilled" | "expired" | "canceled" | "refunded";
export type WebhookEventStatus = "all" | "processed" | "ignored" | "unmatched" | "deferred";
export type ApprovalStatus = "all" | "pending" | "approved" | "rejected" | "cancelled" | "expired";

/** limit (1-500) and after (a cursor: the previous page's `next`). */
export interface ListOptions {
  limit?: number;
  after?: string | null;
}
