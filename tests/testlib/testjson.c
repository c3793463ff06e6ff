/*
 * testjson.c - JSON helpers for tests: parse a body, check problem+json.
 */
#include "testlib/rf_testjson.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "racefree_errors.h"

json_t *rf_resp_json(const struct rf_t_resp *r)
{
    if (!r->body)
        return NULL;
    json_error_t e;
    return json_loadb(r->body, r->body_len, 0, &e);
}

const char *rf_t_json_str(json_t *obj, const char *name)
{
    json_t *v = obj ? json_object_get(obj, name) : NULL;
    return json_is_string(v) ? json_string_value(v) : "";
}

int64_t rf_t_json_int(json_t *obj, const char *name)
{
    json_t *v = obj ? json_object_get(obj, name) : NULL;
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

void rf_problem_code(const struct rf_t_resp *r, char *out, size_t cap)
{
    json_t *j = rf_resp_json(r);
    snprintf(out, cap, "%s", rf_t_json_str(j, "code"));
    json_decref(j);
}

/* The one title of a code, from the one error list; NULL for no code of it. */
static const char *list_title(const char *code)
{
#define TITLE_ROW(name, code_, status, retry_after, title, detail) {code_, title},
    static const struct {
        const char *code, *title;
    } rows[] = {RF_ERRORS(TITLE_ROW)};
#undef TITLE_ROW
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (strcmp(rows[i].code, code) == 0)
            return rows[i].title;
    return NULL;
}

/* Every problem names its exchange: request_id equal to X-Request-Id (a
 * replayed answer is the stored bytes, sent as they were first). */
static int check_request_id(const struct rf_t_resp *r, json_t *j, char *why, size_t cap)
{
    const char *hdr = rf_resp_header(r, "X-Request-Id");
    const char *replayed = rf_resp_header(r, "Idempotent-Replayed");
    if (replayed && strcmp(replayed, "true") == 0)
        return 0;
    json_t *id = json_object_get(j, "request_id");
    if (!json_is_string(id) || !hdr || strcmp(json_string_value(id), hdr) != 0) {
        snprintf(why, cap, "request_id %s is not the X-Request-Id header %s",
                 json_is_string(id) ? json_string_value(id) : "(absent)", hdr ? hdr : "(absent)");
        return -1;
    }
    return 0;
}

int rf_check_problem(const struct rf_t_resp *r, const char *want_code, char *why, size_t cap)
{
    const char *ct = rf_resp_header(r, "Content-Type");
    if (!ct || strncasecmp(ct, "application/problem+json", 24) != 0) {
        snprintf(why, cap, "Content-Type is %s, not application/problem+json", ct ? ct : "absent");
        return -1;
    }
    json_t *j = rf_resp_json(r);
    if (!json_is_object(j)) {
        snprintf(why, cap, "body is not a JSON object");
        json_decref(j);
        return -1;
    }
    int rc = 0;
    const char *code = rf_t_json_str(j, "code");
    if (!*code || strspn(code, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(code)) {
        snprintf(why, cap, "code \"%s\" is not a snake_case string", code);
        rc = -1;
    } else if (want_code && strcmp(code, want_code) != 0) {
        snprintf(why, cap, "code is \"%s\", expected \"%s\"", code, want_code);
        rc = -1;
    } else if (rf_t_json_int(j, "status") != r->status) {
        snprintf(why, cap, "member status is %lld, HTTP status %d", (long long)rf_t_json_int(j, "status"),
                 r->status);
        rc = -1;
    } else if (!json_is_string(json_object_get(j, "title")) ||
               !json_is_string(json_object_get(j, "type"))) {
        snprintf(why, cap, "type or title missing");
        rc = -1;
    } else if (!list_title(code) || strcmp(rf_t_json_str(j, "title"), list_title(code)) != 0) {
        snprintf(why, cap, "title \"%s\" is not the list's title of %s (\"%s\")",
                 rf_t_json_str(j, "title"), code,
                 list_title(code) ? list_title(code) : "no such code");
        rc = -1;
    } else {
        rc = check_request_id(r, j, why, cap);
    }
    json_decref(j);
    return rc;
}
