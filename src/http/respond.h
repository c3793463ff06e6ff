/*
 * respond.h - everything a handler sends: JSON bodies, RFC 9457 problems,
 * header lines, and the one table that maps each rf_err to an HTTP status.
 *
 * A response is a struct rf_reply (http.h): status, malloc'd body and
 * malloc'd "Name: value\n" header lines; Content-Type is one of them.
 * Operation routes render typed results through h_op.c, so a first answer
 * and its Idempotency-Key replay are the same bytes by construction.
 */
#ifndef RF_HTTP_RESPOND_H
#define RF_HTTP_RESPOND_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "http/http.h"

#define RF_CT_JSON "application/json; charset=utf-8"
#define RF_CT_PROBLEM "application/problem+json"
#define RF_PROBLEM_TYPE_BASE "https://racefree.dev/problems/"

/* The HTTP status an rf_err is answered with (RF_OK: 200). */
int rf_err_status(rf_err err);
/* The problem title of an rf_err (one per code, from racefree_errors.h). */
const char *rf_err_title(rf_err err);
/* The HTTP reason phrase of status, for the status line; "Status" for one
 * not listed. */
const char *rf_status_reason(int status);

/* Sets status and a compact JSON body (steals `body`), adds Content-Type.
 * On allocation failure the reply becomes an empty 503. */
void rf_reply_json(struct rf_reply *out, int status, json_t *body);
/* Sets status with no body (204). */
void rf_reply_empty(struct rf_reply *out, int status);
/* Takes a malloc'd body of len bytes with the given content type. */
void rf_reply_text(struct rf_reply *out, int status, const char *content_type, char *body,
                   size_t len);
/* application/problem+json from a problem: status and title from its
 * rf_err's row (no Retry-After: a handler's problem never asks for one). */
void rf_reply_problem(struct rf_reply *out, const struct rf_problem *p);
/* application/problem+json for a library error; detail NULL: the generic
 * text. Adds Retry-After where the table says so. */
void rf_reply_error(struct rf_reply *out, rf_err err, const char *detail);
/* The same, with further members added to the problem body (RFC 9457
 * extension members, such as "existing_transfer_id"). `extra` is stolen and
 * may be NULL; a "detail" member in it replaces the detail; it cannot
 * replace type, title, status or code. */
void rf_reply_error_ext(struct rf_reply *out, rf_err err, const char *detail, json_t *extra);
/* Appends a "Name: value\n" header line; value is printf-formatted and must
 * not contain CR or LF. */
void rf_reply_header(struct rf_reply *out, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A versioned resource: status, body (stolen), ETag "<version>", and on 201
 * a Location from location_fmt. RF_ERR_INTERNAL when body is NULL (its
 * renderer could not build it). */
rf_err rf_reply_entity(struct rf_reply *out, int status, json_t *body, int64_t version,
                       const char *location_fmt, ...) __attribute__((format(printf, 5, 6)));

/* A list page as a 200: {"data": [item(items, i) for i < n], "next": next
 * or null when next is ""}. RF_ERR_NOMEM when an item cannot be built. */
typedef json_t *(*rf_item_json_fn)(const void *items, int i);
rf_err rf_reply_page(struct rf_reply *out, const void *items, int n, rf_item_json_fn item,
                     const char *next);

/* Renderer helpers: RFC 3339 text or null when ms is 0; string or null. */
json_t *rf_json_time(int64_t ms);
json_t *rf_json_str(const char *s);

/* A refusal or failure of an operation (rf_op_run, the field validator):
 * the fault's code when it has one (else err), its detail (else the code's
 * generic text), its param and its extension members. */
void rf_reply_fault(struct rf_reply *out, rf_err err, const struct rf_fault *f);

#endif
