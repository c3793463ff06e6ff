/*
 * racefree_errors.h - the one list of racefree's error codes.
 *
 * Every error a client can see is one row here; nothing else spells a code.
 * The enum rf_err (racefree.h), the code strings (rf_err_code, rf_err_parse),
 * and the HTTP status, Retry-After, title and generic detail of a problem
 * (http/respond.c) are all generated from this list, so they cannot drift.
 *
 * A row is X(NAME, "code", http_status, retry_after_s, "Title", "Detail."):
 *   NAME           the rf_err enumerator;
 *   "code"         the stable snake_case `code` clients switch on (also the
 *                  last part of the problem `type` URI); never changes once
 *                  released, and no two rows share one (a unit test checks);
 *   http_status    the status it is answered with (400-599; RF_OK: 200);
 *   retry_after_s  seconds sent as Retry-After (0: no header);
 *   "Title"        the problem title: one per code (RFC 9457: a problem
 *                  type's title does not change between occurrences);
 *   "Detail."      the generic detail, used when the caller gives none.
 *
 * Codes are appended, never reordered: an rf_err's value is part of the
 * library ABI. This header is public and includes nothing.
 */
#ifndef RACEFREE_ERRORS_H
#define RACEFREE_ERRORS_H

/* Errors the library returns (rf_*() functions), in enum order. */
#define RF_ERRORS_LIBRARY(X)                                                                      \
    X(RF_OK, "ok", 200, 0, "OK", "")                                                              \
    X(RF_ERR_INVALID, "invalid_request", 400, 0, "Invalid request", "The request is not valid.") \
    X(RF_ERR_NOT_FOUND, "not_found", 404, 0, "Not found", "The resource does not exist.")       \
    X(RF_ERR_ENTITLEMENT_NOT_FOUND, "entitlement_not_found", 404, 0, "Entitlement not found",    \
      "The entitlement does not exist or is already revoked.")                                   \
    X(RF_ERR_KEY_NOT_FOUND, "key_not_found", 404, 0, "API key not found",                        \
      "The API key does not exist or is already revoked.")                                       \
    X(RF_ERR_UNAUTHENTICATED, "unauthenticated", 401, 0, "Unauthenticated",                      \
      "A valid API key is required: Authorization: Bearer <key>.")                               \
    X(RF_ERR_FORBIDDEN, "forbidden", 403, 0, "Forbidden", "The API key's role may not do this.") \
    X(RF_ERR_VERSION_MISMATCH, "version_mismatch", 412, 0, "Version mismatch",                   \
      "The resource has changed since the version in If-Match.")                                 \
    X(RF_ERR_INVALID_STATE, "invalid_state", 409, 0, "Invalid state",                            \
      "The resource's current state does not allow this.")                                       \
    /* a constraint the flow did not expect */                                                    \
    X(RF_ERR_CONFLICT, "conflict", 409, 0, "Conflict",                                           \
      "The request conflicts with the current state.")                                           \
    X(RF_ERR_IDEM_REUSED, "idempotency_key_reused", 422, 0, "Idempotency key reused",            \
      "The Idempotency-Key was used with a different request.")                                  \
    X(RF_ERR_IDEM_IN_FLIGHT, "idempotency_key_in_flight", 409, 0, "Idempotency key in flight",   \
      "A request with this Idempotency-Key is still running.")                                   \
    /* the executor's queue is full */                                                            \
    X(RF_ERR_OVERLOADED, "overloaded", 503, 1, "Overloaded",                                     \
      "The server is overloaded; retry later.")                                                  \
    X(RF_ERR_SHUTTING_DOWN, "shutting_down", 503, 1, "Shutting down",                            \
      "The server is shutting down.")                                                            \
    /* busy, I/O error, lost connection */                                                        \
    X(RF_ERR_UNAVAILABLE, "store_unavailable", 503, 1, "Store unavailable",                      \
      "The store is unavailable; retry.")                                                        \
    /* internal: a serialization failure, retried by the executor */                              \
    X(RF_ERR_RETRY, "retry", 503, 1, "Retry", "The transaction could not complete; retry.")      \
    X(RF_ERR_SCHEMA_TOO_NEW, "schema_too_new", 503, 1, "Schema too new",                         \
      "The database schema is newer than this server.")                                          \
    X(RF_ERR_NOMEM, "out_of_memory", 503, 1, "Out of memory",                                    \
      "The server is out of memory; retry.")                                                     \
    X(RF_ERR_INTERNAL, "internal", 500, 0, "Internal error", "An internal error occurred.")     \
    X(RF_ERR_ACCOUNT_NOT_FOUND, "account_not_found", 404, 0, "Account not found",                \
      "The account does not exist.")                                                             \
    X(RF_ERR_ACCOUNT_EXISTS, "account_exists", 409, 0, "Account exists",                         \
      "An account with this id exists with other attributes.")                                   \
    X(RF_ERR_TRANSFER_NOT_FOUND, "transfer_not_found", 404, 0, "Transfer not found",             \
      "The transfer does not exist.")                                                            \
    X(RF_ERR_INSUFFICIENT_FUNDS, "insufficient_funds", 409, 0, "Insufficient funds",             \
      "The debit would overdraw the account.")                                                   \
    X(RF_ERR_CURRENCY_MISMATCH, "currency_mismatch", 400, 0, "Currency mismatch",                \
      "The currency does not match the account's currency.")                                     \
    X(RF_ERR_SAME_ACCOUNT, "same_account", 400, 0, "Same account",                               \
      "A transfer needs two different accounts.")                                                \
    X(RF_ERR_DUPLICATE_REFERENCE, "duplicate_reference", 409, 0, "Duplicate reference",          \
      "A transfer with this reference exists.")                                                  \
    /* a balance would leave int64 */                                                             \
    X(RF_ERR_AMOUNT_OVERFLOW, "amount_overflow", 409, 0, "Amount overflow",                      \
      "The balance would leave the int64 range.")                                                \
    X(RF_ERR_PAYOUT_NOT_FOUND, "payout_not_found", 404, 0, "Payout not found",                   \
      "The payout does not exist.")                                                              \
    X(RF_ERR_DUPLICATE_PROVIDER_PAYOUT, "duplicate_provider_payout_id", 409, 0,                  \
      "Duplicate provider payout id", "Another payout has this provider_payout_id.")             \
    X(RF_ERR_BINDING_CONFLICT, "customer_binding_conflict", 409, 0, "Customer binding conflict", \
      "The user or the customer is bound to another.")                                           \
    X(RF_ERR_BINDING_NOT_FOUND, "customer_binding_not_found", 404, 0,                            \
      "Customer binding not found", "The user has no customer at this provider.")                \
    X(RF_ERR_APPROVAL_NOT_FOUND, "approval_not_found", 404, 0, "Approval not found",             \
      "The approval does not exist.")                                                            \
    X(RF_ERR_APPROVAL_EXPIRED, "approval_expired", 409, 0, "Approval expired",                   \
      "The approval expired before it was approved.")                                            \
    X(RF_ERR_SELF_APPROVAL, "self_approval", 403, 0, "Self approval",                            \
      "The requester may not approve their own request.")                                        \
    X(RF_ERR_NOT_REQUESTER, "not_requester", 403, 0, "Not the requester",                        \
      "Only the requester may cancel an approval.")                                              \
    /* COMMIT sent, reply lost: the change may have committed */                                  \
    X(RF_ERR_OUTCOME_UNKNOWN, "outcome_unknown", 503, 1, "Outcome unknown",                      \
      "The connection to the store was lost during COMMIT; the change may have committed. "      \
      "Retry with the same Idempotency-Key.")                                                    \
    /* a payout's hold resolves only through its payout */                                        \
    X(RF_ERR_HOLD_OWNED, "hold_owned_by_payout", 409, 0, "Hold owned by payout",                 \
      "This hold belongs to a payout; it resolves only through the payout.")                     \
    /* an id namespace racefree uses itself */                                                    \
    X(RF_ERR_RESERVED_ID, "reserved_id", 400, 0, "Reserved id",                                  \
      "The id is in a namespace racefree reserves for itself.")                                  \
    /* ?after= names no row of the list */                                                        \
    X(RF_ERR_INVALID_CURSOR, "invalid_cursor", 400, 0, "Invalid cursor",                         \
      "after must be the next of a previous page or a listed row's id.")                    \
    /* checkouts */                                                                               \
    X(RF_ERR_CHECKOUT_NOT_FOUND, "checkout_not_found", 404, 0, "Checkout not found",             \
      "The checkout does not exist.")                                                            \
    X(RF_ERR_PROVIDER_REF_TAKEN, "provider_ref_taken", 409, 0, "Provider reference taken",       \
      "Another checkout holds this provider reference.")                                         \
    X(RF_ERR_PROVIDER_REF_BOUND, "provider_ref_bound", 409, 0, "Provider reference bound",       \
      "The checkout is bound to another provider reference.")                                    \
    /* webhooks: no secret is configured for the provider in the path */                          \
    X(RF_ERR_WEBHOOK_PROVIDER_UNKNOWN, "webhook_provider_unknown", 404, 0,                       \
      "Webhook provider unknown", "No webhook secret is configured for this provider.")          \
    /* the signature header is absent or not t=<unix>,v1=<hex> */                                 \
    X(RF_ERR_WEBHOOK_SIGNATURE_MALFORMED, "webhook_signature_malformed", 400, 0,                 \
      "Webhook signature malformed",                                                             \
      "The signature header must be t=<unix seconds>,v1=<hex HMAC-SHA256>.")                     \
    X(RF_ERR_WEBHOOK_SIGNATURE_MISMATCH, "webhook_signature_mismatch", 401, 0,                   \
      "Webhook signature mismatch",                                                              \
      "No v1 signature matches the body under the provider's active secrets.")                   \
    X(RF_ERR_WEBHOOK_TIMESTAMP_STALE, "webhook_timestamp_out_of_tolerance", 401, 0,              \
      "Webhook timestamp out of tolerance",                                                      \
      "The signature's timestamp is too far from the server's clock.")                           \
    /* a verified body that is not an event in the provider's envelope */                         \
    X(RF_ERR_WEBHOOK_PAYLOAD_INVALID, "webhook_payload_invalid", 400, 0,                         \
      "Webhook payload invalid", "The body is not an event this endpoint can read.")             \
    /* the given secrets key does not load, or the secrets were sealed under another */           \
    X(RF_ERR_SECRETS_KEY_UNAVAILABLE, "secrets_key_unavailable", 503, 0,                         \
      "Secrets key unavailable",                                                                 \
      "The webhook secrets cannot be opened with this server's secrets key "                    \
      "(RACEFREE_SECRETS_KEY or RACEFREE_SECRETS_KEY_FILE).")                                \
    /* leases: another holder has the lease (holder and expires_at in the problem) */            \
    X(RF_ERR_LEASE_HELD, "lease_held", 409, 0, "Lease held",                                     \
      "Another holder has this lease until it expires or is released.")                         \
    /* a fencing token lower than the highest issued, or no longer the holder's */               \
    X(RF_ERR_STALE_LEASE, "stale_lease", 409, 0, "Stale lease",                                  \
      "The token is not the current holder's: the lease expired and was taken over, "         \
      "or was released.")                                                                       \
    X(RF_ERR_LEASE_NOT_FOUND, "lease_not_found", 404, 0, "Lease not found",                      \
      "No lease of this name was ever acquired.")                                              \
    X(RF_ERR_PAYOUT_BATCH_NOT_FOUND, "payout_batch_not_found", 404, 0, "Payout batch not found", \
      "The payout batch does not exist.")                                                        \
    /* schedules: no schedule of that name is configured on this server */                     \
    X(RF_ERR_SCHEDULE_NOT_FOUND, "schedule_not_found", 404, 0, "Schedule not found",            \
      "This server has no schedule of that name (racefree serve --schedule).")              \
    /* the job queue: no job with this id */                                                     \
    X(RF_ERR_JOB_NOT_FOUND, "job_not_found", 404, 0, "Job not found",                            \
      "No job with this id exists.")                                                             \
    /* notifications: none with this id under this user (another user's is not found either) */ \
    X(RF_ERR_NOTIFICATION_NOT_FOUND, "notification_not_found", 404, 0, "Notification not found", \
      "This user has no notification with this id.")                                             \
    /* announcements: no announcement with this id */                                           \
    X(RF_ERR_ANNOUNCEMENT_NOT_FOUND, "announcement_not_found", 404, 0, "Announcement not found", \
      "No announcement with this id exists.")                                                    \
    /* the caller's rate limit is used up; Retry-After is set per answer */                      \
    X(RF_ERR_RATE_LIMITED, "rate_limited", 429, 0, "Rate limited",                               \
      "Too many requests; retry after the Retry-After header's seconds.")

/* Errors only the HTTP edge answers (request parsing, framing, routing,
 * connection limits); the library never returns them. Their titles name the
 * code, as the library's do (the reason phrase of their status is on the
 * status line): one title per code, never "Not Found" beside "Not found". */
#define RF_ERRORS_HTTP(X)                                                                         \
    X(RF_ERR_INVALID_FIELD, "invalid_field", 400, 0, "Invalid field",                             \
      "A field of the body is not valid.")                                                        \
    X(RF_ERR_UNKNOWN_FIELD, "unknown_field", 400, 0, "Unknown field",                             \
      "The body has a field this operation does not take.")                                       \
    X(RF_ERR_MALFORMED_JSON, "malformed_json", 400, 0, "Malformed JSON",                          \
      "The body is not well-formed JSON.")                                                        \
    X(RF_ERR_INVALID_IDEM_KEY, "invalid_idempotency_key", 400, 0, "Invalid Idempotency-Key",      \
      "The Idempotency-Key header is not valid.")                                                 \
    X(RF_ERR_IDEM_REQUIRED, "idempotency_key_required", 400, 0, "Idempotency key required",       \
      "This operation needs an Idempotency-Key header.")                                          \
    X(RF_ERR_INVALID_IF_MATCH, "invalid_if_match", 400, 0, "Invalid If-Match",                    \
      "The If-Match header is not valid.")                                                        \
    X(RF_ERR_INVALID_LIMIT, "invalid_limit", 400, 0, "Invalid limit",                             \
      "The limit query parameter is not valid.")                                                  \
    X(RF_ERR_INVALID_QUERY_PARAM, "invalid_query_param", 400, 0, "Invalid query parameter",       \
      "A query parameter is not valid.")                                                          \
    X(RF_ERR_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", 415, 0, "Unsupported media type",  \
      "The body must be application/json.")                                                       \
    X(RF_ERR_INVALID_PATH_PARAM, "invalid_path_param", 400, 0, "Invalid path parameter",          \
      "A path parameter is not valid.")                                                           \
    X(RF_ERR_ROUTE_NOT_FOUND, "route_not_found", 404, 0, "Route not found",                       \
      "No route matches this path.")                                                              \
    X(RF_ERR_METHOD_NOT_ALLOWED, "method_not_allowed", 405, 0, "Method not allowed",              \
      "This path does not accept the method.")                                                    \
    X(RF_ERR_INVALID_REQUEST_LINE, "invalid_request_line", 400, 0, "Invalid request line",        \
      "The request line is not valid.")                                                           \
    X(RF_ERR_HTTP_VERSION, "http_version_not_supported", 505, 0, "HTTP version not supported",    \
      "Only HTTP/1.0 and HTTP/1.1 are served.")                                                   \
    X(RF_ERR_INVALID_HEADER, "invalid_header", 400, 0, "Invalid header",                          \
      "A header line is not valid.")                                                              \
    X(RF_ERR_INVALID_CONTENT_LENGTH, "invalid_content_length", 400, 0, "Invalid Content-Length",  \
      "The Content-Length header is not valid.")                                                  \
    X(RF_ERR_MISSING_HOST, "missing_host", 400, 0, "Missing Host",                                \
      "HTTP/1.1 needs exactly one Host header.")                                                  \
    X(RF_ERR_UNSUPPORTED_TRANSFER_ENCODING, "unsupported_transfer_encoding", 501, 0,              \
      "Unsupported transfer encoding", "Only the chunked transfer coding is served.")             \
    X(RF_ERR_HEADERS_TOO_LARGE, "headers_too_large", 431, 0, "Headers too large",                 \
      "The header section is too large.")                                                         \
    X(RF_ERR_BODY_TOO_LARGE, "body_too_large", 413, 0, "Body too large",                          \
      "The body is too large.")                                                                   \
    X(RF_ERR_MALFORMED_CHUNKED_BODY, "malformed_chunked_body", 400, 0, "Malformed chunked body",  \
      "The chunked body is malformed.")                                                           \
    X(RF_ERR_REQUEST_TIMEOUT, "request_timeout", 408, 0, "Request timeout",                       \
      "The request took too long to arrive.")                                                     \
    X(RF_ERR_TOO_MANY_CONNECTIONS, "too_many_connections", 503, 1, "Too many connections",        \
      "The server has too many connections; retry later.")

/* Every code: the library's first (their values are the ABI), then the edge's. */
#define RF_ERRORS(X) RF_ERRORS_LIBRARY(X) RF_ERRORS_HTTP(X)

#endif
