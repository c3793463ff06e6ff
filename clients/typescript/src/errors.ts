/**
 * errors.ts - what a failed call throws.
 *
 * RacefreeError: the server answered with an error status. racefree answers
 * every error with application/problem+json (RFC 9457) carrying a stable
 * `code` to switch on; the error keeps each member and the whole body
 * (`problem`: facts such as `existing_transfer_id` or `available` are there).
 * RacefreeNetworkError: no answer came (connection refused or reset, timeout)
 * after the client's last attempt; a write may or may not have happened, and
 * retrying it with the same Idempotency-Key (`idempotencyKey`) is safe.
 */
import type { Problem } from "./types.js";

export class RacefreeError extends Error {
  /** The HTTP status (400-599). */
  readonly status: number;
  /** The stable snake_case code (`insufficient_funds`, ...); `unknown` when the body had none. */
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  /** The field, query or path parameter, or header at fault, when one is. */
  readonly param: string | undefined;
  /** The request's id (the body's `request_id`, else the X-Request-Id header). */
  readonly requestId: string | undefined;
  /** The Idempotency-Key the request was sent with, if any. */
  readonly idempotencyKey: string | undefined;
  /** The whole problem body (an empty object when the body was not JSON). */
  readonly problem: Problem;

  constructor(status: number, problem: Problem, requestId: string | undefined, idempotencyKey: string | undefined) {
    const code = typeof problem.code === "string" ? problem.code : "unknown";
    const detail = typeof problem.detail === "string" ? problem.detail : "";
    super(`${status} ${code}${detail ? `: ${detail}` : ""}`);
    this.name = "RacefreeError";
    this.status = status;
    this.code = code;
    this.title = typeof problem.title === "string" ? problem.title : "";
    this.detail = detail;
    this.param = typeof problem.param === "string" ? problem.param : undefined;
    this.requestId = typeof problem.request_id === "string" ? problem.request_id : requestId;
    this.idempotencyKey = idempotencyKey;
    this.problem = problem;
  }
}

export class RacefreeNetworkError extends Error {
  readonly idempotencyKey: string | undefined;
  readonly attempts: number;

  constructor(message: string, cause: unknown, idempotencyKey: string | undefined, attempts: number) {
    super(message, { cause });
    this.name = "RacefreeNetworkError";
    this.idempotencyKey = idempotencyKey;
    this.attempts = attempts;
  }
}
