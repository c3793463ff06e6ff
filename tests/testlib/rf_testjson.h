/*
 * rf_testjson.h - reading JSON and problem+json responses in tests (jansson).
 */
#ifndef RF_TESTJSON_H
#define RF_TESTJSON_H

#include <jansson.h>
#include <stdint.h>

#include "testlib/rf_testlib.h"

/* The body parsed as JSON (the caller json_decref()s it), or NULL. */
json_t *rf_resp_json(const struct rf_t_resp *r);
/* 0 when the response is application/problem+json whose status member
 * equals the HTTP status and whose "code" is a non-empty snake_case string,
 * equal to want_code when that is non-NULL, whose title is the one error
 * list's title of that code, and whose request_id equals the X-Request-Id
 * header (unless Idempotent-Replayed); else -1 with a reason in why. */
int rf_check_problem(const struct rf_t_resp *r, const char *want_code, char *why, size_t cap);
/* The problem's "code" (or "" when absent) into out. */
void rf_problem_code(const struct rf_t_resp *r, char *out, size_t cap);

/* Members of a JSON object; "" / -1 when absent or of another type. */
const char *rf_t_json_str(json_t *obj, const char *name);
int64_t rf_t_json_int(json_t *obj, const char *name);

#endif
