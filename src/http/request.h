/*
 * request.h - turning request text into typed values, with no store access:
 * the JSON body and its field specs, Idempotency-Key, If-Match, pagination,
 * query choices, the bearer token and X-Request-Id. Each parser returns
 * false and fills a struct rf_problem (status 400, a stable code, a detail
 * naming the offending field or parameter) when the input is not valid.
 *
 * Codes: malformed_json, invalid_request (body not an object or missing),
 * unknown_field, invalid_field (wrong type, bad value, missing required:
 * from the one validator, core/fields.h),
 * invalid_idempotency_key, invalid_if_match, invalid_limit, invalid_cursor,
 * invalid_query_param, and 415 unsupported_media_type. The problem names
 * the field or parameter at fault in its param member. (routes.c adds
 * invalid_path_param.)
 */
#ifndef RF_HTTP_REQUEST_H
#define RF_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/fields.h"
#include "http/http.h"

/* ---- JSON body ----------------------------------------------------------- */

/* Parses a body that must be a JSON object. An empty (or all-whitespace)
 * body gives *out = NULL when empty_ok, else invalid_request. Duplicate
 * keys are malformed. A number outside int64 (or double) is invalid_field,
 * as an out-of-range value is, not malformed_json. */
bool rf_json_body_parse(const char *body, size_t len, bool empty_ok, json_t **out,
                        struct rf_problem *p);
/* Parses req's body (kept in req->json) and decodes its members into dst
 * with the one validator (core/fields.h): the fields at RF_AT_BODY of f;
 * an empty body is allowed when none of them is required. On failure out
 * holds the problem and dst nothing to free; on success d what dst points
 * into (rf_decoded_clear). */
bool rf_req_body(struct rf_http_req *req, const struct rf_field *f, size_t n, void *dst,
                 struct rf_decoded *d, struct rf_reply *out);

/* ---- Headers --------------------------------------------------------------- */

/* The headers a problem can name as its `param`. */
#define RF_HDR_IDEM_KEY "Idempotency-Key"
#define RF_HDR_IF_MATCH "If-Match"

/* NULL header: *key_out = NULL. Else 1-255 printable ASCII. */
bool rf_idem_key_parse(const char *value, const char **key_out, struct rf_problem *p);
/* NULL or "*": 0 (unconditional). "N", W/"N" or N with N >= 1: N. */
bool rf_if_match_parse(const char *value, int64_t *version_out, struct rf_problem *p);
bool rf_req_if_match(const struct rf_http_req *req, int64_t *version_out, struct rf_problem *p);
/* "Bearer <token>" (scheme case-insensitive): the token, or NULL. */
const char *rf_bearer_token(const char *authorization);
/* 1-64 chars of [A-Za-z0-9-]. */
bool rf_request_id_valid(const char *s);

/* ---- Media type ------------------------------------------------------------ */

/* application/json, case-insensitive, with optional parameters (a charset,
 * when given, must be utf-8). */
bool rf_media_type_json(const char *content_type);
/* A non-empty body must come with a JSON Content-Type; otherwise 415
 * unsupported_media_type. An empty body needs none. */
bool rf_req_media_type(const struct rf_http_req *req, struct rf_problem *p);

/* ---- Query ----------------------------------------------------------------- */

/* ?name= from req->query_raw, percent-decoded into out[cap]: 1 present,
 * 0 absent, -1 malformed (a bad escape, a control character, or longer
 * than cap - 1 bytes). */
int rf_req_query(const struct rf_http_req *req, const char *name, char *out, size_t cap);

struct rf_page {
    int limit;           /* 1..RF_LIST_LIMIT_MAX */
    const char *after;   /* NULL: from the start; rf_req_page points it at after_buf */
    char after_buf[RF_CURSOR_BYTES];
};

/* Whether a cursor has the form the list hands out in "next". */
typedef bool (*rf_cursor_valid_fn)(const char *cursor);

/* ?limit= (default RF_LIST_LIMIT_DEFAULT) and ?after= (a cursor of at most
 * RF_CURSOR_BYTES - 1 printable chars that `valid` accepts; valid NULL:
 * any such). NULL means absent. 400 invalid_limit / invalid_cursor. */
bool rf_page_parse(const char *limit, const char *after, rf_cursor_valid_fn valid,
                   struct rf_page *out, struct rf_problem *p);
/* The same over req->query_raw; a malformed limit or after value is
 * invalid_limit or invalid_cursor too. */
bool rf_req_page(const struct rf_http_req *req, rf_cursor_valid_fn valid, struct rf_page *out,
                 struct rf_problem *p);
/* ?param= must be one of names (absent: dflt); *out gets its index. */
bool rf_query_choice(const char *value, const char *param, const char *const *names, size_t n,
                     size_t dflt, size_t *out, struct rf_problem *p);
/* The same over req->query_raw (a malformed value is not one of names). */
bool rf_req_choice(const struct rf_http_req *req, const char *param, const char *const *names,
                   size_t n, size_t dflt, size_t *out, struct rf_problem *p);

/* Frees what parsing attached to req (req->json). */
void rf_http_req_clear(struct rf_http_req *req);

#endif
