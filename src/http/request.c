/*
 * request.c - request parsing and validation (see request.h). Pure
 * functions of their inputs, so tests/unit/test_request.c checks them
 * without a server. Every loop runs over text whose length is already
 * bounded: bodies by the route's body limit, headers by the connection's
 * memory limit, and each value by the limit named where it is checked.
 */
#include "http/request.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/limits.h"
#include "http/respond.h"
#include "http/uri.h"

#define IF_MATCH_CHARS_MAX 32  /* W/"9223372036854775807" fits */
#define LIMIT_DIGITS_MAX 10

/* ---- JSON body ----------------------------------------------------------- */

bool rf_json_body_parse(const char *body, size_t len, bool empty_ok, json_t **out,
                        struct rf_problem *p) {
    *out = NULL;
    size_t i = 0;
    while (i < len && isspace((unsigned char)body[i])) i++;
    if (i == len) {
        if (empty_ok) return true;
        rf_problem_set(p, RF_ERR_INVALID, "a JSON object body is required");
        return false;
    }
    json_error_t e;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
    if (!j && json_error_code(&e) == json_error_numeric_overflow) {
        /* Well-formed JSON whose number does not fit: jansson refuses to
         * parse an integer beyond int64 (or a real beyond double), so this
         * is a bad value (such as an amount_minor of 2^63), not bad syntax. */
        rf_problem_set(p, RF_ERR_INVALID_FIELD,
                       "a number at line %d, column %d is outside the 64-bit integer range "
                       "(-9223372036854775808 to 9223372036854775807): %s",
                       e.line, e.column, e.text);
        return false;
    }
    if (!j) {
        rf_problem_set(p, RF_ERR_MALFORMED_JSON, "malformed JSON at line %d, column %d: %s",
                       e.line, e.column, e.text);
        return false;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        rf_problem_set(p, RF_ERR_INVALID, "the body must be a JSON object");
        return false;
    }
    *out = j;
    return true;
}

bool rf_req_body(struct rf_http_req *req, const struct rf_field *f, size_t n, void *dst,
                 struct rf_decoded *d, struct rf_reply *out) {
    RF_ASSERT(req->json == NULL && d->n == 0);
    bool empty_ok = true;
    for (size_t i = 0; i < n; i++)
        if (RF_FIELD_AT(&f[i]) == RF_AT_BODY && f[i].required) empty_ok = false;
    struct rf_problem p;
    if (!rf_json_body_parse(req->body, req->body_len, empty_ok, &req->json, &p)) {
        rf_reply_problem(out, &p);
        return false;
    }
    struct rf_fault fault = {0};
    rf_err err = rf_fields_decode(req->json, f, n, RF_AT_BODY, NULL, dst, d, &fault);
    if (err) rf_reply_fault(out, err, &fault);
    return !err;
}

/* ---- Headers --------------------------------------------------------------- */

bool rf_idem_key_parse(const char *value, const char **key_out, struct rf_problem *p) {
    *key_out = NULL;
    if (!value) return true;
    if (!rf_printable_valid(value, RF_IDEM_KEY_CHARS_MAX)) {
        rf_problem_set(p, RF_ERR_INVALID_IDEM_KEY,
                       "Idempotency-Key must be 1-%d printable ASCII characters",
                       RF_IDEM_KEY_CHARS_MAX);
        rf_problem_param(p, RF_HDR_IDEM_KEY, strlen(RF_HDR_IDEM_KEY));
        return false;
    }
    *key_out = value;
    return true;
}

/* Digits only, 1..INT64_MAX. */
static bool parse_version(const char *s, size_t len, int64_t *out) {
    if (len == 0 || len > 19) return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (v < 1) return false;
    *out = v;
    return true;
}

bool rf_if_match_parse(const char *value, int64_t *version_out, struct rf_problem *p) {
    *version_out = 0;
    if (!value) return true;
    const char *s = value;
    while (*s == ' ' || *s == '\t') s++;
    size_t len = strnlen(s, IF_MATCH_CHARS_MAX + 1);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    if (len == 1 && s[0] == '*') return true;
    if (len >= 2 && s[0] == 'W' && s[1] == '/') {
        s += 2;
        len -= 2;
    }
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        s++;
        len -= 2;
    }
    if (len <= IF_MATCH_CHARS_MAX && parse_version(s, len, version_out)) return true;
    *version_out = 0;
    rf_problem_set(p, RF_ERR_INVALID_IF_MATCH,
                   "If-Match must be \"<version>\" with a version >= 1, or *");
    rf_problem_param(p, RF_HDR_IF_MATCH, strlen(RF_HDR_IF_MATCH));
    return false;
}

bool rf_req_if_match(const struct rf_http_req *req, int64_t *version_out, struct rf_problem *p) {
    return rf_if_match_parse(req->header(req->src, RF_HDR_IF_MATCH), version_out, p);
}

const char *rf_bearer_token(const char *authorization) {
    if (!authorization) return NULL;
    const char *s = authorization;
    while (*s == ' ') s++;
    if (strncasecmp(s, "Bearer", 6) != 0 || s[6] != ' ') return NULL;
    s += 6;
    while (*s == ' ') s++;
    size_t n = strnlen(s, RF_KEY_SECRET_BYTES);
    if (n == 0 || n >= RF_KEY_SECRET_BYTES) return NULL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] > 0x7e) return NULL;
    return s;
}

bool rf_request_id_valid(const char *s) {
    if (!s) return false;
    size_t n = 0;
    for (; s[n]; n++) {
        if (n >= RF_REQUEST_ID_CHARS_MAX) return false;
        if (!isalnum((unsigned char)s[n]) && s[n] != '-') return false;
    }
    return n >= 1;
}

/* ---- Media type ------------------------------------------------------------ */

/* s[0..n) with blanks around it dropped, compared case-insensitively. */
static bool token_is(const char *s, size_t n, const char *want) {
    while (n > 0 && (*s == ' ' || *s == '\t')) s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    return n == strlen(want) && strncasecmp(s, want, n) == 0;
}

bool rf_media_type_json(const char *ct) {
    if (!ct) return false;
    size_t len = strcspn(ct, ";");
    if (!token_is(ct, len, "application/json")) return false;
    /* Parameters: ";name=value" each; a charset must be utf-8 (quoted or not). */
    for (const char *s = ct + len; *s == ';';) {
        s++;
        size_t n = strcspn(s, ";"), name_n = strcspn(s, "=");
        if (name_n < n && token_is(s, name_n, "charset")) {
            const char *v = s + name_n + 1;
            size_t v_n = n - name_n - 1;
            if (!token_is(v, v_n, "utf-8") && !token_is(v, v_n, "\"utf-8\"")) return false;
        }
        s += n;
    }
    return true;
}

bool rf_req_media_type(const struct rf_http_req *req, struct rf_problem *p) {
    if (req->body_len == 0) return true;
    if (rf_media_type_json(req->header(req->src, "Content-Type"))) return true;
    rf_problem_set(p, RF_ERR_UNSUPPORTED_MEDIA_TYPE,
                   "a request body must be JSON: Content-Type: application/json");
    rf_problem_param(p, "Content-Type", strlen("Content-Type"));
    return false;
}

/* ---- Query ----------------------------------------------------------------- */

int rf_req_query(const struct rf_http_req *req, const char *name, char *out, size_t cap) {
    return rf_uri_query_get(req->query_raw ? req->query_raw : "", name, out, cap);
}

static bool cursor_problem(struct rf_problem *p) {
    rf_problem_set(p, RF_ERR_INVALID_CURSOR,
                   "after must be a cursor from a previous page's \"next\"");
    rf_problem_param(p, "after", strlen("after"));
    return false;
}

static bool limit_problem(struct rf_problem *p) {
    rf_problem_set(p, RF_ERR_INVALID_LIMIT, "limit must be an integer from 1 to %d",
                   RF_LIST_LIMIT_MAX);
    rf_problem_param(p, "limit", strlen("limit"));
    return false;
}

bool rf_page_parse(const char *limit, const char *after, rf_cursor_valid_fn valid,
                   struct rf_page *out, struct rf_problem *p) {
    out->limit = RF_LIST_LIMIT_DEFAULT;
    out->after = NULL;
    if (limit) {
        size_t n = strnlen(limit, LIMIT_DIGITS_MAX + 1);
        long v = 0;
        bool ok = n >= 1 && n <= LIMIT_DIGITS_MAX;
        for (size_t i = 0; ok && i < n; i++) {
            ok = limit[i] >= '0' && limit[i] <= '9';
            v = v * 10 + (limit[i] - '0');
        }
        if (!ok || v < 1 || v > RF_LIST_LIMIT_MAX) return limit_problem(p);
        out->limit = (int)v;
    }
    if (after) {
        if (!rf_printable_valid(after, RF_CURSOR_BYTES - 1) || (valid && !valid(after)))
            return cursor_problem(p);
        out->after = after;
    }
    return true;
}

bool rf_req_page(const struct rf_http_req *req, rf_cursor_valid_fn valid, struct rf_page *out,
                 struct rf_problem *p) {
    char limit[LIMIT_DIGITS_MAX + 2];
    int has_limit = rf_req_query(req, "limit", limit, sizeof limit);
    if (has_limit < 0) return limit_problem(p);
    int has_after = rf_req_query(req, "after", out->after_buf, sizeof out->after_buf);
    if (has_after < 0) return cursor_problem(p);
    return rf_page_parse(has_limit ? limit : NULL, has_after ? out->after_buf : NULL, valid, out,
                         p);
}

bool rf_query_choice(const char *value, const char *param, const char *const *names, size_t n,
                     size_t dflt, size_t *out, struct rf_problem *p) {
    RF_ASSERT(dflt < n);
    *out = dflt;
    if (!value) return true;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(value, names[i]) == 0) {
            *out = i;
            return true;
        }
    }
    char list[128] = "";
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", i ? "|" : "", names[i]);
    }
    rf_problem_set(p, RF_ERR_INVALID_QUERY_PARAM, "%s must be one of %s", param, list);
    rf_problem_param(p, param, strlen(param));
    return false;
}

bool rf_req_choice(const struct rf_http_req *req, const char *param, const char *const *names,
                   size_t n, size_t dflt, size_t *out, struct rf_problem *p) {
    char value[RF_QUERY_CHOICE_BYTES];
    int has = rf_req_query(req, param, value, sizeof value);
    if (has < 0) value[0] = '\0'; /* malformed: matches no name */
    return rf_query_choice(has ? value : NULL, param, names, n, dflt, out, p);
}

void rf_http_req_clear(struct rf_http_req *req) {
    json_decref(req->json);
    req->json = NULL;
}
