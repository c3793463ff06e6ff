/**
 * racefree - a typed client for racefree's HTTP API (docs/openapi.yaml).
 * Racefree (client.ts) is the entry point; errors.ts says what it throws;
 * json.ts is the lossless JSON reader and writer (amounts as bigint);
 * schema.ts is generated from docs/openapi.yaml (`npm run gen`), never edited.
 */
export { Racefree, backoffMs, retryAfterMs } from "./client.js";
export type { CallOptions, ClientOptions, RacefreeResponse, RequestOptions } from "./client.js";
export { RacefreeError, RacefreeNetworkError } from "./errors.js";
export { AMOUNT_KEYS, JsonSyntaxError, parseJson, stringifyJson } from "./json.js";
export type { JsonValue, ParseOptions } from "./json.js";
export type * from "./types.js";
export type { components, operations, paths } from "./schema.js";
