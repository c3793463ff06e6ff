/*
 * test_request.c - the HTTP layer's pure parts without a server: the JSON
 * body and field-spec validator, If-Match, Idempotency-Key, pagination,
 * query choices (decoded from the raw query), bearer tokens, request ids,
 * the JSON media type, UTF-8 lengths in characters, RFC 3339 times, route
 * matching on the raw path with path parameter decoding and validation, the
 * rf_err -> status table and --listen parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/clock.h"
#include "base/ids.h"
#include "base/limits.h"
#include "core/api.h"
#include "http/request.h"
#include "http/respond.h"
#include "http/routes.h"
#include "http/server.h"

/* ---- JSON body and field specs --------------------------------------------- */

/* The one validator (core/fields.h) over a JSON body, as h_op uses it. */
struct six {
    const char *s, *id, *o;
    int64_t t, i;
    bool b;
};
static const struct rf_field specs[] = {
    RF_F(struct six, s, "s", RF_FIELD_STRING, false, .max_len = 4),
    RF_F(struct six, id, "id", RF_FIELD_ID, false, .max_len = RF_ID_CHARS_MAX),
    RF_F(struct six, t, "t", RF_FIELD_TIME, false, .at = 0),
    RF_F(struct six, o, "o", RF_FIELD_OBJECT, false, .max_len = 64),
    RF_F(struct six, b, "b", RF_FIELD_BOOL, false, .at = 0),
    RF_F(struct six, i, "i", RF_FIELD_INT, false, .min = -5, .max = 5),
};
#define N_FIELDS (sizeof specs / sizeof specs[0])

/* Parses text against specs; returns the problem code or NULL on success.
 * String values borrow from the parsed body, kept until the next call. */
static const char *check(const char *text, struct six *vals) {
    static struct rf_problem p;
    static json_t *obj;
    static struct rf_decoded d;
    json_decref(obj);
    obj = NULL;
    rf_decoded_clear(&d);
    memset(&p, 0, sizeof p);
    memset(vals, 0, sizeof *vals);
    if (!rf_json_body_parse(text, strlen(text), true, &obj, &p)) return rf_err_code(p.err);
    struct rf_fault f = {0};
    if (rf_fields_decode(obj, specs, N_FIELDS, RF_AT_BODY, NULL, vals, &d, &f) != RF_OK) {
        assert_int_equal(rf_err_status(f.code), 400);
        return rf_err_code(f.code);
    }
    return NULL;
}

static void test_body_parse(void **state) {
    (void)state;
    struct rf_problem p;
    json_t *obj = (json_t *)1;
    assert_true(rf_json_body_parse("", 0, true, &obj, &p));
    assert_null(obj);
    assert_true(rf_json_body_parse(" \n", 2, true, &obj, &p));
    assert_null(obj);
    assert_false(rf_json_body_parse("", 0, false, &obj, &p));
    assert_string_equal(rf_err_code(p.err), "invalid_request");
    assert_false(rf_json_body_parse("{", 1, true, &obj, &p));
    assert_string_equal(rf_err_code(p.err), "malformed_json");
    assert_false(rf_json_body_parse("{} x", 4, true, &obj, &p));
    assert_string_equal(rf_err_code(p.err), "malformed_json");
    const char *dup = "{\"a\":1,\"a\":2}";
    assert_false(rf_json_body_parse(dup, strlen(dup), true, &obj, &p));
    assert_string_equal(rf_err_code(p.err), "malformed_json");
    assert_false(rf_json_body_parse("[1]", 3, true, &obj, &p));
    assert_string_equal(rf_err_code(p.err), "invalid_request");
    assert_false(rf_json_body_parse("\"x\"", 3, true, &obj, &p));
    assert_string_equal(rf_err_code(p.err), "invalid_request");
}

static void test_fields_ok(void **state) {
    (void)state;
    struct six v;
    assert_null(check("{}", &v));
    assert_null(v.s);
    assert_null(v.o);
    assert_null(check("{\"s\":\"h\xc3\xa9ll\",\"id\":\"u-1.a:b_c\",\"t\":\"2026-02-15T10:04:05.123Z\","
                      "\"o\":{\"z\":1,\"a\":[true]},\"b\":false,\"i\":-5}",
                      &v));
    assert_string_equal(v.s, "h\xc3\xa9ll"); /* 4 characters, 5 bytes */
    assert_string_equal(v.id, "u-1.a:b_c");
    assert_int_equal(v.t, 1771149845123LL);
    assert_string_equal(v.o, "{\"a\":[true],\"z\":1}"); /* compact, sorted */
    assert_false(v.b);
    assert_int_equal(v.i, -5);
    /* null is "absent" for an optional field */
    assert_null(check("{\"s\":null,\"o\":null}", &v));
    assert_null(v.s);
    assert_null(v.o);
}

static void test_fields_rejected(void **state) {
    (void)state;
    struct six v;
    assert_string_equal(check("{\"x\":1}", &v), "unknown_field");
    assert_string_equal(check("{\"s\":1}", &v), "invalid_field");
    assert_string_equal(check("{\"s\":\"abcde\"}", &v), "invalid_field");
    assert_string_equal(check("{\"s\":\"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\"}", &v),
                        "invalid_field"); /* 5 characters */
    assert_string_equal(check("{\"id\":\"a b\"}", &v), "invalid_field");
    assert_string_equal(check("{\"id\":\"\"}", &v), "invalid_field");
    assert_string_equal(check("{\"t\":\"2026-02-30T00:00:00Z\"}", &v), "invalid_field");
    assert_string_equal(check("{\"t\":\"yesterday\"}", &v), "invalid_field");
    assert_string_equal(check("{\"t\":5}", &v), "invalid_field");
    assert_string_equal(check("{\"o\":[]}", &v), "invalid_field");
    assert_string_equal(check("{\"o\":{\"k\":\"0123456789012345678901234567890123456789"
                              "0123456789012345678901234567890123456789\"}}",
                              &v),
                        "invalid_field"); /* larger than 64 bytes */
    assert_string_equal(check("{\"b\":1}", &v), "invalid_field");
    assert_string_equal(check("{\"i\":6}", &v), "invalid_field");
    assert_string_equal(check("{\"i\":1.5}", &v), "invalid_field");
    assert_string_equal(check("{\"i\":\"1\"}", &v), "invalid_field");
}

struct role_meta {
    const char *role, *meta;
};

static void test_fields_required_and_depth(void **state) {
    (void)state;
    const struct rf_field req[] = {
        RF_F(struct role_meta, role, "role", RF_FIELD_STRING, true, .max_len = 16),
        RF_F(struct role_meta, meta, "meta", RF_FIELD_OBJECT, false, .max_len = 4096)};
    struct role_meta v = {0};
    struct rf_decoded d = {0};
    struct rf_fault f = {0};
    assert_int_equal(rf_fields_decode(NULL, req, 2, RF_AT_BODY, NULL, &v, &d, &f), RF_ERR_INVALID);
    assert_string_equal(rf_err_code(f.code), "invalid_field");
    assert_non_null(strstr(f.detail, "'role'"));
    /* nesting: RF_JSON_DEPTH_MAX levels pass, one more fails */
    char text[512] = "{\"role\":\"x\",\"meta\":";
    for (int depth = RF_JSON_DEPTH_MAX; depth <= RF_JSON_DEPTH_MAX + 1; depth++) {
        size_t n = strlen("{\"role\":\"x\",\"meta\":");
        text[n] = '\0';
        for (int i = 0; i < depth - 1; i++) strcat(text, "{\"a\":");
        strcat(text, "{}");
        for (int i = 0; i < depth - 1; i++) strcat(text, "}");
        strcat(text, "}");
        json_t *obj = json_loads(text, 0, NULL);
        assert_non_null(obj);
        bool ok = rf_fields_decode(obj, req, 2, RF_AT_BODY, NULL, &v, &d, &f) == RF_OK;
        json_decref(obj);
        assert_int_equal(ok, depth <= RF_JSON_DEPTH_MAX);
        if (ok) rf_decoded_clear(&d);
        else assert_string_equal(rf_err_code(f.code), "invalid_field");
    }
    const char *bad[] = {"\x80", "\xc3", "a\xc3(", "\xc0\xaf" /* overlong '/' */,
                         "\xe0\x80\xaf", "\xed\xa0\x80" /* surrogate */, "\xf4\x90\x80\x80",
                         "\xff", "\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_true(rf_utf8_chars(bad[i]) == SIZE_MAX);
}

/* ---- Headers ------------------------------------------------------------------- */

static void test_if_match(void **state) {
    (void)state;
    struct rf_problem p;
    int64_t v = -1;
    assert_true(rf_if_match_parse(NULL, &v, &p));
    assert_int_equal(v, 0);
    assert_true(rf_if_match_parse("*", &v, &p));
    assert_int_equal(v, 0);
    assert_true(rf_if_match_parse("\"3\"", &v, &p));
    assert_int_equal(v, 3);
    assert_true(rf_if_match_parse("W/\"42\"", &v, &p));
    assert_int_equal(v, 42);
    assert_true(rf_if_match_parse(" 7 ", &v, &p));
    assert_int_equal(v, 7);
    assert_true(rf_if_match_parse("\"9223372036854775807\"", &v, &p));
    assert_int_equal(v, INT64_MAX);
    const char *bad[] = {"",      "\"0\"",  "0",       "-1",     "\"\"",   "\"3",
                         "abc",   "\"1\", \"2\"", "W/3x", "\"9223372036854775808\"",
                         "1.5",   "W/\"\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(rf_if_match_parse(bad[i], &v, &p));
        assert_string_equal(rf_err_code(p.err), "invalid_if_match");
        assert_int_equal(rf_err_status(p.err), 400);
    }
}

static void test_idem_key(void **state) {
    (void)state;
    struct rf_problem p;
    const char *k = "x";
    assert_true(rf_idem_key_parse(NULL, &k, &p));
    assert_null(k);
    assert_true(rf_idem_key_parse("order-1 retry", &k, &p));
    assert_string_equal(k, "order-1 retry");
    char longk[300];
    memset(longk, 'a', sizeof longk);
    longk[255] = '\0';
    assert_true(rf_idem_key_parse(longk, &k, &p));
    longk[255] = 'a';
    longk[256] = '\0';
    assert_false(rf_idem_key_parse(longk, &k, &p));
    assert_string_equal(rf_err_code(p.err), "invalid_idempotency_key");
    assert_false(rf_idem_key_parse("", &k, &p));
    assert_false(rf_idem_key_parse("caf\xc3\xa9", &k, &p));
    assert_false(rf_idem_key_parse("a\tb", &k, &p));
}

static void test_bearer_and_request_id(void **state) {
    (void)state;
    assert_string_equal(rf_bearer_token("Bearer rfk_a_b"), "rfk_a_b");
    assert_string_equal(rf_bearer_token("bearer   tok"), "tok");
    assert_null(rf_bearer_token(NULL));
    assert_null(rf_bearer_token("Basic dXNlcg=="));
    assert_null(rf_bearer_token("Bearer"));
    assert_null(rf_bearer_token("Bearer "));
    assert_null(rf_bearer_token("Bearertok"));
    assert_null(rf_bearer_token("Bearer a b"));
    assert_true(rf_request_id_valid("abc-123-XYZ"));
    assert_false(rf_request_id_valid(""));
    assert_false(rf_request_id_valid("a_b"));
    assert_false(rf_request_id_valid("a b"));
    char id[80];
    memset(id, 'a', sizeof id);
    id[64] = '\0';
    assert_true(rf_request_id_valid(id));
    id[64] = 'a';
    id[65] = '\0';
    assert_false(rf_request_id_valid(id));
}

/* ---- Query ---------------------------------------------------------------------- */

static void test_pagination(void **state) {
    (void)state;
    struct rf_problem p;
    struct rf_page pg;
    assert_true(rf_page_parse(NULL, NULL, NULL, &pg, &p));
    assert_int_equal(pg.limit, RF_LIST_LIMIT_DEFAULT);
    assert_null(pg.after);
    assert_true(rf_page_parse("1", "c1", NULL, &pg, &p));
    assert_int_equal(pg.limit, 1);
    assert_string_equal(pg.after, "c1");
    assert_true(rf_page_parse("500", NULL, NULL, &pg, &p));
    assert_int_equal(pg.limit, 500);
    const char *bad_limits[] = {"0", "501", "-1", "", "abc", "1.5", "99999999999", " 5"};
    for (size_t i = 0; i < sizeof bad_limits / sizeof bad_limits[0]; i++) {
        assert_false(rf_page_parse(bad_limits[i], NULL, NULL, &pg, &p));
        assert_string_equal(rf_err_code(p.err), "invalid_limit");
    }
    char cursor[RF_CURSOR_BYTES + 1];
    memset(cursor, 'c', sizeof cursor);
    cursor[RF_CURSOR_BYTES - 1] = '\0';
    assert_true(rf_page_parse(NULL, cursor, NULL, &pg, &p));
    cursor[RF_CURSOR_BYTES - 1] = 'c';
    cursor[RF_CURSOR_BYTES] = '\0';
    assert_false(rf_page_parse(NULL, cursor, NULL, &pg, &p));
    assert_string_equal(rf_err_code(p.err), "invalid_cursor");
    assert_false(rf_page_parse(NULL, "", NULL, &pg, &p));
    assert_false(rf_page_parse(NULL, "a\nb", NULL, &pg, &p));
    assert_string_equal(rf_err_code(p.err), "invalid_cursor");
}

static void test_query_choice(void **state) {
    (void)state;
    static const char *const names[] = {"active", "revoked", "expired", "all"};
    struct rf_problem p;
    size_t i = 99;
    assert_true(rf_query_choice(NULL, "status", names, 4, 0, &i, &p));
    assert_int_equal(i, 0);
    assert_true(rf_query_choice("all", "status", names, 4, 0, &i, &p));
    assert_int_equal(i, 3);
    assert_false(rf_query_choice("ALL", "status", names, 4, 0, &i, &p));
    assert_string_equal(rf_err_code(p.err), "invalid_query_param");
    assert_non_null(strstr(p.detail, "status"));
}


/* A request with only a raw query, as the server builds it. */
static struct rf_http_req query_req(const char *query_raw) {
    return (struct rf_http_req){.query_raw = query_raw};
}

static void test_query_decoded(void **state) {
    (void)state;
    struct rf_problem p;
    struct rf_page pg;
    struct rf_http_req req = query_req("limit=%35&after=c%31");
    assert_true(rf_req_page(&req, NULL, &pg, &p));
    assert_int_equal(pg.limit, 5);
    assert_string_equal(pg.after, "c1");
    req = query_req("x=1");
    assert_true(rf_req_page(&req, NULL, &pg, &p));
    assert_int_equal(pg.limit, RF_LIST_LIMIT_DEFAULT);
    assert_null(pg.after);
    /* malformed values: the parameter's own code, and the problem names it */
    static const struct { const char *q, *code, *param; } bad[] = {
        {"after=%zz", "invalid_cursor", "after"},    {"after=a%00b", "invalid_cursor", "after"},
        {"after=a%0Ab", "invalid_cursor", "after"},  {"after=%", "invalid_cursor", "after"},
        {"after=a%24b", "invalid_cursor", "after"},  /* "a$b" is not an id */
        {"limit=%zz", "invalid_limit", "limit"},     {"limit=5%00", "invalid_limit", "limit"},
        {"limit=%35%30%31", "invalid_limit", "limit"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        req = query_req(bad[i].q);
        memset(&p, 0, sizeof p);
        assert_false(rf_req_page(&req, rf_id_valid, &pg, &p));
        assert_int_equal(rf_err_status(p.err), 400);
        assert_string_equal(rf_err_code(p.err), bad[i].code);
        assert_string_equal(p.param, bad[i].param);
    }
    static const char *const names[] = {"active", "all"};
    size_t i = 9;
    req = query_req("status=%61ll");
    assert_true(rf_req_choice(&req, "status", names, 2, 0, &i, &p));
    assert_int_equal(i, 1);
    const char *bad_status[] = {"status=%zz", "status=all%00", "status=", "status=al%6"};
    for (size_t k = 0; k < sizeof bad_status / sizeof bad_status[0]; k++) {
        req = query_req(bad_status[k]);
        assert_false(rf_req_choice(&req, "status", names, 2, 0, &i, &p));
        assert_string_equal(rf_err_code(p.err), "invalid_query_param");
        assert_string_equal(p.param, "status");
    }
}

static void test_media_type(void **state) {
    (void)state;
    const char *good[] = {"application/json", "Application/JSON", "application/json; charset=utf-8",
                          "application/json;charset=UTF-8", " application/json ",
                          "application/json; charset=\"utf-8\"", "application/json; v=1"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(rf_media_type_json(good[i]));
    const char *bad[] = {NULL, "", "text/plain", "application/jsonx", "application/json-patch+json",
                         "application/x-www-form-urlencoded", "application/json; charset=latin1",
                         "text/json", "multipart/form-data; boundary=x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(rf_media_type_json(bad[i]));
}

static void test_utf8_chars(void **state) {
    (void)state;
    assert_int_equal(rf_utf8_chars(""), 0);
    assert_int_equal(rf_utf8_chars("abc"), 3);
    assert_int_equal(rf_utf8_chars("h\xc3\xa9"), 2);          /* 2-byte */
    assert_int_equal(rf_utf8_chars("\xe2\x82\xac\xe2\x82\xac"), 2); /* 3-byte */
    assert_int_equal(rf_utf8_chars("\xf0\x9f\x98\x80"), 1);     /* 4-byte */
    const char *bad[] = {"\x80", "\xc3", "a\xc3(", "\xc0\xaf" /* overlong '/' */,
                         "\xe0\x80\xaf", "\xed\xa0\x80" /* surrogate */, "\xf4\x90\x80\x80",
                         "\xff", "\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_true(rf_utf8_chars(bad[i]) == SIZE_MAX);
}

/* A 200-character reason of 3-byte characters (600 bytes) fits a limit of
 * 512 characters; 513 characters do not; min 1 refuses "". */
struct reason {
    const char *reason;
};

static rf_err decode_reason(json_t *o, struct reason *v, struct rf_fault *f) {
    static const struct rf_field spec[] = {
        RF_F(struct reason, reason, "reason", RF_FIELD_STRING, false, .min = 1, .max_len = 512)};
    struct rf_decoded d = {0};
    memset(v, 0, sizeof *v);
    memset(f, 0, sizeof *f);
    rf_err err = rf_fields_decode(o, spec, 1, RF_AT_BODY, NULL, v, &d, f);
    rf_decoded_clear(&d);
    return err;
}

static void test_string_chars(void **state) {
    (void)state;
    struct reason v;
    struct rf_fault f;
    for (int chars = 200; chars <= 513; chars += 313) {
        json_t *o = json_object();
        char *text = malloc(3 * (size_t)chars + 1);
        assert_non_null(text);
        for (int i = 0; i < chars; i++) memcpy(text + 3 * i, "\xe2\x82\xac", 3);
        text[3 * chars] = '\0';
        json_object_set_new(o, "reason", json_string(text));
        bool ok = decode_reason(o, &v, &f) == RF_OK;
        assert_int_equal(ok, chars <= 512);
        if (ok) assert_int_equal(strlen(v.reason), 3 * (size_t)chars);
        else assert_string_equal(f.param, "reason");
        json_decref(o);
        free(text);
    }
    json_t *o = json_pack("{s:s}", "reason", "");
    assert_int_equal(decode_reason(o, &v, &f), RF_ERR_INVALID);
    assert_string_equal(rf_err_code(f.code), "invalid_field");
    json_decref(o);
    /* invalid UTF-8 (jansson keeps it when told not to check): refused */
    o = json_object();
    json_object_set_new_nocheck(o, "reason", json_stringn_nocheck("a\xc3(", 3));
    assert_int_equal(decode_reason(o, &v, &f), RF_ERR_INVALID);
    assert_string_equal(rf_err_code(f.code), "invalid_field");
    json_decref(o);
}

/* Offsets are normalised to UTC; a UTC instant outside 0001..9999 is refused. */
static void test_times(void **state) {
    (void)state;
    int64_t a = 0, b = 0;
    assert_true(rf_time_parse("2026-02-15T10:04:05.123Z", &a));
    assert_true(rf_time_parse("2026-02-15T05:04:05.123-05:00", &b));
    assert_int_equal(a, b);
    assert_true(rf_time_parse("2026-02-15T15:34:05.123+05:30", &b));
    assert_int_equal(a, b);
    char text[RF_TIME_TEXT_BYTES];
    rf_time_format(b, text);
    assert_string_equal(text, "2026-02-15T10:04:05.123Z");
    assert_true(rf_time_parse("9999-12-31T18:59:59.999-05:00", &b));
    assert_int_equal(b, RF_TIME_MS_MAX);
    rf_time_format(b, text);
    assert_string_equal(text, "9999-12-31T23:59:59.999Z");
    assert_false(rf_time_parse("9999-12-31T23:00:00-05:00", &b)); /* year 10000 in UTC */
    assert_false(rf_time_parse("9999-12-31T23:59:59.999-00:01", &b));
    assert_false(rf_time_parse("0001-01-01T00:00:00+00:01", &b)); /* year 0 in UTC */
    /* a field: the same refusal, naming it */
    struct six v;
    assert_string_equal(check("{\"t\":\"9999-12-31T23:00:00-05:00\"}", &v), "invalid_field");
    assert_null(check("{\"t\":\"2026-02-15T05:04:05.123-05:00\"}", &v));
    assert_int_equal(v.t, a);
}

/* ---- Routes and ids --------------------------------------------------------------- */

static void test_ids(void **state) {
    (void)state;
    assert_true(rf_id_valid("user_1"));
    assert_true(rf_id_valid("a.b:c-d"));
    assert_false(rf_id_valid(""));
    assert_false(rf_id_valid("a/b"));
    assert_false(rf_id_valid("a%20b"));
    assert_false(rf_id_valid("."));
    assert_false(rf_id_valid(".."));
    assert_true(rf_id_valid("..."));
    assert_true(rf_id_valid(".a"));
    assert_true(rf_id_valid("a.."));
    char id[RF_ID_CHARS_MAX + 2];
    memset(id, 'x', sizeof id);
    id[RF_ID_CHARS_MAX] = '\0';
    assert_true(rf_id_valid(id));
    id[RF_ID_CHARS_MAX] = 'x';
    id[RF_ID_CHARS_MAX + 1] = '\0';
    assert_false(rf_id_valid(id));
}

static void test_route_match(void **state) {
    (void)state;
    struct rf_match m;
    rf_route_match("PUT", "/v1/users/u1/entitlements/pro", false, &m);
    assert_int_equal(m.kind, RF_MATCH_OK);
    assert_string_equal(m.route->pattern, "/v1/users/{user_id}/entitlements/{key}");
    assert_int_equal(m.n_params, 2);
    assert_true(m.params[0].valid && m.params[1].valid);
    assert_string_equal(m.params[0].value, "u1");
    assert_string_equal(m.params[1].value, "pro");

    rf_route_match("GET", "/v1/users/bad id/entitlements", false, &m);
    assert_int_equal(m.kind, RF_MATCH_OK); /* matched; rf_route_serve answers 400 */
    assert_false(m.params[0].valid);

    char longp[400] = "/v1/keys/";
    memset(longp + 9, 'k', RF_ID_CHARS_MAX + 1);
    rf_route_match("DELETE", longp, false, &m);
    assert_int_equal(m.kind, RF_MATCH_OK);
    assert_false(m.params[0].valid);

    /* Routing is on the raw path; each parameter is decoded by itself. */
    rf_route_match("GET", "/v1/users/u%31/entitlements/p%72o", false, &m);
    assert_int_equal(m.kind, RF_MATCH_OK);
    assert_true(m.params[0].valid && m.params[1].valid);
    assert_string_equal(m.params[0].value, "u1");
    assert_string_equal(m.params[1].value, "pro");
    rf_route_match("GET", "/v1/accounts/ID%2Fentries", false, &m);
    assert_int_equal(m.kind, RF_MATCH_OK);
    assert_string_equal(m.route->pattern, "/v1/accounts/{id}"); /* not .../entries */
    assert_false(m.params[0].valid);
    const char *bad_segs[] = {"X%00zzz", "X%2Fentries", ".", "..", "%2e%2e", "%2E", "X%0a",
                              "%zz", "X%", "X%7f", "a%20b"};
    for (size_t i = 0; i < sizeof bad_segs / sizeof bad_segs[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/keys/%s", bad_segs[i]);
        rf_route_match("DELETE", path, false, &m);
        assert_int_equal(m.kind, RF_MATCH_OK);
        assert_false(m.params[0].valid);
        assert_string_equal(m.params[0].value, "");
    }
    /* The canonical spelling an Idempotency-Key record is bound to. */
    char canon[RF_HTTP_PATH_BYTES_MAX + 1];
    struct rf_http_req creq = {.path = "/v1/users/u%31/entitlements/p%72o", .match = &m};
    rf_route_match("PUT", creq.path, false, &m);
    rf_route_path(&creq, canon, sizeof canon);
    assert_string_equal(canon, "/v1/users/u1/entitlements/pro");
    creq.path = "/v1/accounts/funding%3AUSD/credits";
    rf_route_match("POST", creq.path, false, &m);
    rf_route_path(&creq, canon, sizeof canon);
    assert_string_equal(canon, "/v1/accounts/funding:USD/credits");
    creq.path = "/v1/keys/x%00y";
    rf_route_match("DELETE", creq.path, false, &m);
    rf_route_path(&creq, canon, sizeof canon);
    assert_string_equal(canon, "/v1/keys/x%00y"); /* invalid: never served, kept raw */

    rf_route_match("POST", "/v1/accounts/a/credits%00", false, &m);
    assert_int_equal(m.kind, RF_MATCH_NONE); /* literal segments match raw text */
    rf_route_match("GET", "/v1/%6Beys", false, &m);
    assert_int_equal(m.kind, RF_MATCH_NONE);

    rf_route_match("PATCH", "/v1/users/u1/entitlements/pro", false, &m);
    assert_int_equal(m.kind, RF_MATCH_NO_METHOD);
    assert_string_equal(m.allow, "PUT, DELETE, GET");

    const char *none[] = {"/", "/v1", "/v1/keys/", "/v1/users//entitlements", "/healthz/x",
                          "/v1/users/u/entitlements/k/x", "healthz", ""};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        rf_route_match("GET", none[i], false, &m);
        assert_int_equal(m.kind, RF_MATCH_NONE);
    }
    rf_route_match("POST", "/v1/_test/op-delay", false, &m);
    assert_int_equal(m.kind, RF_MATCH_NONE); /* hidden without --test-hooks */
    rf_route_match("POST", "/v1/_test/op-delay", true, &m);
    assert_int_equal(m.kind, RF_MATCH_OK);
}

static void test_route_table(void **state) {
    (void)state;
    assert_true(rf_routes_count <= RF_HTTP_ROUTES_MAX);
    for (size_t i = 0; i < rf_routes_count; i++) {
        const struct rf_route *r = &rf_routes[i];
        /* a handler of its own, or an operation with a row and a view */
        assert_true(r->fn || (rf_op_has_row(r->op) && r->view));
        /* no two rows share a method and pattern */
        for (size_t j = 0; j < i; j++)
            assert_false(strcmp(r->method, rf_routes[j].method) == 0 &&
                         strcmp(r->pattern, rf_routes[j].pattern) == 0);
        if (r->hidden) assert_int_equal(r->roles, RF_ROLE_ADMIN);
    }
}

static void test_err_status(void **state) {
    (void)state;
    static const struct { rf_err err; int status; } want[] = {
        {RF_ERR_INVALID, 400},          {RF_ERR_NOT_FOUND, 404},
        {RF_ERR_ENTITLEMENT_NOT_FOUND, 404}, {RF_ERR_KEY_NOT_FOUND, 404},
        {RF_ERR_UNAUTHENTICATED, 401},  {RF_ERR_FORBIDDEN, 403},
        {RF_ERR_VERSION_MISMATCH, 412}, {RF_ERR_INVALID_STATE, 409},
        {RF_ERR_CONFLICT, 409},         {RF_ERR_IDEM_REUSED, 422},
        {RF_ERR_IDEM_IN_FLIGHT, 409},   {RF_ERR_OVERLOADED, 503},
        {RF_ERR_SHUTTING_DOWN, 503},    {RF_ERR_UNAVAILABLE, 503},
        {RF_ERR_RETRY, 503},            {RF_ERR_SCHEMA_TOO_NEW, 503},
        {RF_ERR_NOMEM, 503},            {RF_ERR_INTERNAL, 500},
        {RF_ERR_UNSUPPORTED_MEDIA_TYPE, 415}, {RF_ERR_HEADERS_TOO_LARGE, 431},
        {RF_ERR_TOO_MANY_CONNECTIONS, 503},   {RF_ERR_HTTP_VERSION, 505},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_int_equal(rf_err_status(want[i].err), want[i].status);
}

/* The one list (racefree_errors.h): every row a distinct code, an error
 * status and a title; the library's codes first, with their ABI values. */
static void test_error_list(void **state) {
    (void)state;
    assert_int_equal(RF_OK, 0);
    /* ABI: released values never move (codes are appended after them). */
    assert_int_equal(RF_ERR_INVALID, 1);
    assert_int_equal(RF_ERR_SECRETS_KEY_UNAVAILABLE, 47);
    assert_true(RF_ERR_STALE_LEASE < RF_ERR__LIBRARY_COUNT);
    assert_true(RF_ERR__LIBRARY_COUNT < RF_ERR__COUNT);
    for (int e = RF_OK; e < RF_ERR__COUNT; e++) {
        const char *code = rf_err_code((rf_err)e);
        assert_true(code && *code);
        for (int o = RF_OK; o < e; o++)
            if (strcmp(code, rf_err_code((rf_err)o)) == 0)
                fail_msg("code %s is in the list twice (rows %d and %d)", code, o, e);
        for (const char *c = code; *c; c++) assert_true((*c >= 'a' && *c <= 'z') || *c == '_');
        int st = rf_err_status((rf_err)e);
        if (e == RF_OK) assert_int_equal(st, 200);
        else if (st < 400 || st > 599) fail_msg("%s has status %d", code, st);
        const char *title = rf_err_title((rf_err)e);
        assert_true(title && *title);
        rf_err back = RF_ERR__COUNT;
        assert_true(rf_err_parse(code, &back));
        assert_int_equal(back, e);
    }
    rf_err out = RF_ERR_INTERNAL;
    assert_false(rf_err_parse("no_such_code", &out));
    assert_false(rf_err_parse("", &out));
    assert_false(rf_err_parse("Invalid_request", &out));
    assert_int_equal(out, RF_ERR_INTERNAL);
    assert_string_equal(rf_err_code(RF_ERR__COUNT), "internal");
}

/* The list's title of every code, straight from the rows (not through
 * rf_err_title, which the test checks). */
#define TITLE_ROW(name, code, status, retry_after, title, detail) [name] = title,
static const char *const list_titles[RF_ERR__COUNT] = {RF_ERRORS(TITLE_ROW)};
#undef TITLE_ROW

/* The members every problem body has, checked against err's row. */
static void check_problem_body(const struct rf_reply *r, rf_err err) {
    assert_int_equal(r->status, rf_err_status(err));
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "status")), r->status);
    assert_string_equal(json_string_value(json_object_get(j, "code")), rf_err_code(err));
    assert_string_equal(json_string_value(json_object_get(j, "title")), list_titles[err]);
    json_decref(j);
}

/* Every code, by each way a problem is made (a handler's rf_problem, a
 * library error, an operation's fault), has its list title, and no two
 * codes share one: a client can show the title for the code. */
static void test_problem_from_list(void **state) {
    (void)state;
    for (int e = RF_OK + 1; e < RF_ERR__COUNT; e++) {
        for (int o = RF_OK + 1; o < e; o++)
            if (strcmp(list_titles[e], list_titles[o]) == 0)
                fail_msg("%s and %s share the title \"%s\"", rf_err_code((rf_err)o),
                         rf_err_code((rf_err)e), list_titles[e]);
        struct rf_problem p;
        rf_problem_set(&p, (rf_err)e, "detail %d", 7);
        assert_int_equal(p.err, e);
        struct rf_reply r = {0};
        rf_reply_problem(&r, &p);
        check_problem_body(&r, (rf_err)e);
        rf_reply_clear(&r);
        rf_reply_error(&r, (rf_err)e, NULL);
        check_problem_body(&r, (rf_err)e);
        rf_reply_clear(&r);
        struct rf_fault f = {.code = (rf_err)e};
        rf_reply_fault(&r, RF_ERR_INVALID, &f);
        check_problem_body(&r, (rf_err)e);
        rf_reply_clear(&r);
    }
}

/* A fault's facts render under the Problem schema's names, each only for
 * the code that depends on it. */
static void test_problem_facts(void **state) {
    (void)state;
    struct rf_fault f = {.facts = {.status = "voided", .version = 7, .has_available = true,
                                   .available = 9007199254740993LL, .currency = "EUR"}};
    static const struct {
        rf_err err;
        const char *has[2], *lacks[3];
    } want[] = {
        {RF_ERR_INVALID_STATE, {"current_status", NULL}, {"current_version", "available", NULL}},
        {RF_ERR_VERSION_MISMATCH, {"current_version", NULL}, {"current_status", "available", NULL}},
        {RF_ERR_INSUFFICIENT_FUNDS, {"available", "currency"}, {"current_status", NULL, NULL}},
        {RF_ERR_CONFLICT, {NULL, NULL}, {"current_status", "current_version", "available"}},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        struct rf_reply r = {0};
        rf_reply_fault(&r, want[i].err, &f);
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        for (int k = 0; k < 2 && want[i].has[k]; k++)
            assert_non_null(json_object_get(j, want[i].has[k]));
        for (int k = 0; k < 3 && want[i].lacks[k]; k++)
            assert_null(json_object_get(j, want[i].lacks[k]));
        json_decref(j);
        rf_reply_clear(&r);
    }
    struct rf_reply r = {0};
    rf_reply_fault(&r, RF_ERR_INSUFFICIENT_FUNDS, &f);
    assert_non_null(strstr(r.body, "\"available\":9007199254740993,\"currency\":\"EUR\""));
    rf_reply_clear(&r);
    rf_reply_fault(&r, RF_ERR_VERSION_MISMATCH, &f);
    assert_non_null(strstr(r.body, "\"current_version\":7"));
    rf_reply_clear(&r);
    rf_reply_fault(&r, RF_ERR_INVALID_STATE, &f);
    assert_non_null(strstr(r.body, "\"current_status\":\"voided\""));
    rf_reply_clear(&r);
}

static void test_listen(void **state) {
    (void)state;
    char host[RF_HOST_BYTES];
    int port = -1;
    assert_true(rf_http_parse_listen("127.0.0.1:8080", host, &port));
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_true(rf_http_parse_listen("localhost:0", host, &port));
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 0);
    const char *bad[] = {"8080", ":8080", "host:", "host:65536", "host:80x", "host:123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(rf_http_parse_listen(bad[i], host, &port));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_parse),
        cmocka_unit_test(test_fields_ok),
        cmocka_unit_test(test_fields_rejected),
        cmocka_unit_test(test_fields_required_and_depth),
        cmocka_unit_test(test_if_match),
        cmocka_unit_test(test_idem_key),
        cmocka_unit_test(test_bearer_and_request_id),
        cmocka_unit_test(test_pagination),
        cmocka_unit_test(test_query_choice),
        cmocka_unit_test(test_query_decoded),
        cmocka_unit_test(test_media_type),
        cmocka_unit_test(test_utf8_chars),
        cmocka_unit_test(test_string_chars),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_route_match),
        cmocka_unit_test(test_route_table),
        cmocka_unit_test(test_err_status),
        cmocka_unit_test(test_problem_facts),
        cmocka_unit_test(test_error_list),
        cmocka_unit_test(test_problem_from_list),
        cmocka_unit_test(test_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
