/*
 * test_fields.c - the one validator (core/fields.c) and the result codec
 * (core/codec.c), without a store: JSON decoding and struct checking apply
 * the same rules with the same sentences; a result survives its stored
 * text exactly; and every operation of RF_OPS has a row in the table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/api.h"
#include "core/codec.h"
#include "core/fields.h"

struct demo_req {
    const char *id;
    const char *name;
    int64_t amount;
    int64_t at_ms;
    bool flag;
    const char *meta;
    const char *cur;
    int kind;
    const char *inner_a;
    const char *path_id;
};

static const char *const kinds[] = {"user", "system", NULL};
static const struct rf_field inner[] = {
    RF_F(struct demo_req, inner_a, "a", RF_FIELD_ID, true, .max_len = RF_ID_CHARS_MAX),
};
static const struct rf_field spec[] = {
    RF_F(struct demo_req, id, "id", RF_FIELD_ID, true, .max_len = RF_ID_CHARS_MAX),
    RF_F(struct demo_req, name, "name", RF_FIELD_STRING, false, .min = 1, .max_len = 4),
    RF_F(struct demo_req, amount, "amount_minor", RF_FIELD_INT, false, .min = 1,
         .max = INT64_MAX),
    RF_F(struct demo_req, at_ms, "at", RF_FIELD_TIME, false, .at = 0),
    RF_F(struct demo_req, flag, "flag", RF_FIELD_BOOL, false, .at = 0),
    RF_F(struct demo_req, meta, "metadata", RF_FIELD_OBJECT, false, .max_len = 32),
    RF_F(struct demo_req, cur, "currency", RF_FIELD_CURRENCY, false, .at = 0),
    RF_F(struct demo_req, kind, "kind", RF_FIELD_CHOICE, false, .choices = kinds,
         .choice_text = "user or system"),
    {.name = "dest", .type = RF_FIELD_NESTED, .sub = inner, .n_sub = 1},
    RF_F(struct demo_req, path_id, "pid", RF_FIELD_ID, false, .max_len = RF_ID_CHARS_MAX,
         .at = RF_AT_PATH),
};
#define N_SPEC (sizeof spec / sizeof spec[0])

/* Decodes text; returns the fault's code (RF_OK when it decoded and checked). */
static rf_err decode(const char *text, struct demo_req *r, struct rf_decoded *d,
                     struct rf_fault *f) {
    memset(r, 0, sizeof *r);
    memset(f, 0, sizeof *f);
    d->n = 0;
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    rf_err err = rf_fields_decode(j, spec, N_SPEC, RF_AT_BODY, NULL, r, d, f);
    if (!err) err = rf_fields_check(spec, N_SPEC, r, f);
    json_decref(j); /* the test reads only what it copied, or nothing */
    return err ? f->code : RF_OK;
}

static void test_decode_ok(void **state) {
    (void)state;
    struct demo_req r;
    struct rf_decoded d;
    struct rf_fault f;
    json_t *j = json_loads("{\"id\":\"u1\",\"name\":\"\xc3\xa9t\xc3\xa9\",\"amount_minor\":7,"
                           "\"at\":\"2026-02-15T10:04:05.123+01:00\",\"flag\":true,"
                           "\"metadata\":{\"b\":1,\"a\":[2]},\"currency\":\"EUR\","
                           "\"kind\":\"system\",\"dest\":{\"a\":\"x:y\"}}",
                           0, NULL);
    memset(&r, 0, sizeof r);
    d.n = 0;
    assert_int_equal(rf_fields_decode(j, spec, N_SPEC, RF_AT_BODY, NULL, &r, &d, &f), RF_OK);
    assert_int_equal(rf_fields_check(spec, N_SPEC, &r, &f), RF_OK);
    assert_string_equal(r.id, "u1");
    assert_int_equal(r.amount, 7);
    assert_int_equal(r.at_ms, 1771146245123LL);
    assert_true(r.flag);
    assert_string_equal(r.meta, "{\"a\":[2],\"b\":1}"); /* compact, sorted */
    assert_int_equal(r.kind, 1);
    assert_string_equal(r.inner_a, "x:y");
    assert_null(r.path_id); /* a PATH field is not read from the body */
    rf_decoded_clear(&d);
    json_decref(j);
}

static void test_decode_refused(void **state) {
    (void)state;
    struct demo_req r;
    struct rf_decoded d;
    struct rf_fault f;
    assert_int_equal(decode("{}", &r, &d, &f), RF_ERR_INVALID_FIELD);
    assert_string_equal(f.detail, "field 'id' is required");
    assert_string_equal(f.param, "id");
    assert_int_equal(decode("{\"id\":\"a\",\"x\":1}", &r, &d, &f), RF_ERR_UNKNOWN_FIELD);
    assert_string_equal(f.param, "x");
    assert_int_equal(decode("{\"id\":\"a\",\"pid\":\"b\"}", &r, &d, &f), RF_ERR_UNKNOWN_FIELD);
    assert_int_equal(decode("{\"id\":\"a b\"}", &r, &d, &f), RF_ERR_INVALID_FIELD);
    assert_string_equal(f.detail, "field 'id' must be 1-128 characters of [A-Za-z0-9._:-]");
    assert_int_equal(decode("{\"id\":\"a\",\"name\":\"abcde\"}", &r, &d, &f), RF_ERR_INVALID_FIELD);
    assert_string_equal(f.detail, "field 'name' must be 1-4 characters of UTF-8");
    assert_int_equal(decode("{\"id\":\"a\",\"amount_minor\":0}", &r, &d, &f), RF_ERR_INVALID_FIELD);
    assert_string_equal(f.detail, "field 'amount_minor' must be an integer from 1 to "
                                  "9223372036854775807");
    assert_int_equal(decode("{\"id\":\"a\",\"amount_minor\":1.5}", &r, &d, &f),
                     RF_ERR_INVALID_FIELD);
    assert_int_equal(decode("{\"id\":\"a\",\"at\":\"1969-12-31T23:59:59Z\"}", &r, &d, &f),
                     RF_ERR_INVALID_FIELD);
    assert_int_equal(decode("{\"id\":\"a\",\"flag\":1}", &r, &d, &f), RF_ERR_INVALID_FIELD);
    assert_string_equal(f.detail, "field 'flag' must be true or false");
    assert_int_equal(decode("{\"id\":\"a\",\"metadata\":{\"k\":\"0123456789012345678901234\"}}",
                            &r, &d, &f),
                     RF_ERR_INVALID_FIELD);
    assert_string_equal(f.detail, "field 'metadata' is larger than 32 bytes");
    assert_int_equal(decode("{\"id\":\"a\",\"currency\":\"usd\"}", &r, &d, &f),
                     RF_ERR_INVALID_FIELD);
    assert_int_equal(decode("{\"id\":\"a\",\"kind\":\"admin\"}", &r, &d, &f), RF_ERR_INVALID_FIELD);
    assert_string_equal(f.detail, "field 'kind' must be user or system");
    assert_int_equal(decode("{\"id\":\"a\",\"dest\":{\"a\":\"\"}}", &r, &d, &f),
                     RF_ERR_INVALID_FIELD);
    assert_string_equal(f.detail,
                        "in 'dest': field 'a' must be 1-128 characters of [A-Za-z0-9._:-]");
    assert_int_equal(decode("{\"id\":\"a\",\"dest\":{\"b\":\"c\"}}", &r, &d, &f),
                     RF_ERR_UNKNOWN_FIELD);
}

/* A struct built in C meets the same rules and sentences. */
static void test_check_struct(void **state) {
    (void)state;
    struct rf_fault f = {0};
    struct demo_req r = {.id = "ok", .inner_a = "in"};
    assert_int_equal(rf_fields_check(spec, N_SPEC, &r, &f), RF_OK);
    r.amount = -5;
    assert_int_equal(rf_fields_check(spec, N_SPEC, &r, &f), RF_ERR_INVALID);
    assert_int_equal(f.code, RF_ERR_INVALID_FIELD);
    assert_string_equal(f.param, "amount_minor");
    r.amount = 0;
    r.at_ms = -1;
    assert_int_equal(rf_fields_check(spec, N_SPEC, &r, &f), RF_ERR_INVALID);
    assert_string_equal(f.param, "at");
    r.at_ms = 0;
    r.meta = "[1]";
    assert_int_equal(rf_fields_check(spec, N_SPEC, &r, &f), RF_ERR_INVALID);
    assert_string_equal(f.detail, "field 'metadata' must be a JSON object");
    r.meta = NULL;
    r.kind = 7;
    assert_int_equal(rf_fields_check(spec, N_SPEC, &r, &f), RF_ERR_INVALID);
    r.kind = 0;
    r.inner_a = NULL;
    assert_int_equal(rf_fields_check(spec, N_SPEC, &r, &f), RF_ERR_INVALID);
    assert_string_equal(f.detail, "in 'dest': field 'a' is required");
    r.inner_a = "in";
    r.id = NULL;
    assert_int_equal(rf_fields_check(spec, N_SPEC, &r, &f), RF_ERR_INVALID);
    assert_string_equal(f.detail, "field 'id' is required");
}

struct demo_res {
    struct {
        char id[8];
        char *note;
        int64_t version;
    } ent;
    bool created;
    int kind;
    int state;
};
static const char *const states[] = {"open", "shut", NULL};
static const struct rf_member demo_members[] = {
    RF_MEMBER(struct demo_res, ent.id, CHARS),
    RF_MEMBER(struct demo_res, ent.note, TEXT),
    RF_MEMBER(struct demo_res, ent.version, I64),
    RF_MEMBER(struct demo_res, created, BOOL),
    RF_MEMBER(struct demo_res, kind, INT),
    RF_MEMBER_NAMED(struct demo_res, state, states),
};
static const struct rf_codec demo_codec = RF_CODEC(demo_members);

static void test_codec_round_trip(void **state) {
    (void)state;
    struct demo_res a = {.ent = {"abc", "n\"\xe2\x82\xac\n", INT64_MAX}, .created = true, .kind = 3,
                         .state = 1};
    char *text = rf_codec_encode(&demo_codec, &a);
    assert_non_null(text);
    struct demo_res b = {0};
    assert_int_equal(rf_codec_decode(&demo_codec, text, &b), RF_OK);
    assert_string_equal(b.ent.id, "abc");
    assert_string_equal(b.ent.note, a.ent.note);
    assert_int_equal(b.ent.version, INT64_MAX);
    assert_true(b.created);
    assert_int_equal(b.kind, 3);
    assert_int_equal(b.state, 1);
    assert_non_null(strstr(text, "\"state\":\"shut\"")); /* stored by name */
    /* the exact text: keys in strcmp order, compact, escapes, int64 edges */
    assert_string_equal(text, "{\"created\":true,\"ent.id\":\"abc\",\"ent.note\":\"n\\\"\xe2\x82\xac"
                              "\\u000a\",\"ent.version\":9223372036854775807,\"kind\":3,"
                              "\"state\":\"shut\"}");
    char *again = rf_codec_encode(&demo_codec, &b);
    assert_string_equal(again, text); /* the replay renders from the same values */
    free(b.ent.note);
    b.ent.note = NULL;
    a.ent.note = NULL; /* a NULL text survives as NULL */
    free(text);
    a.ent.version = INT64_MIN;
    text = rf_codec_encode(&demo_codec, &a);
    assert_non_null(strstr(text, "\"ent.note\":null,\"ent.version\":-9223372036854775808,"));
    assert_int_equal(rf_codec_decode(&demo_codec, text, &b), RF_OK);
    assert_null(b.ent.note);
    assert_int_equal(b.ent.version, INT64_MIN);
    /* text that does not fit: a missing member, a too-long id */
    struct demo_res c = {0};
    assert_int_equal(rf_codec_decode(&demo_codec, "{\"created\":true}", &c), RF_ERR_INTERNAL);
    assert_int_equal(rf_codec_decode(&demo_codec,
                                     "{\"ent.id\":\"12345678\",\"ent.note\":null,"
                                     "\"ent.version\":1,\"created\":true,\"kind\":0,"
                                     "\"state\":\"open\"}",
                                     &c),
                     RF_ERR_INTERNAL);
    /* a name the enum does not have */
    assert_int_equal(rf_codec_decode(&demo_codec,
                                     "{\"ent.id\":\"1\",\"ent.note\":null,\"ent.version\":1,"
                                     "\"created\":true,\"kind\":0,\"state\":\"ajar\"}",
                                     &c),
                     RF_ERR_INTERNAL);
    free(text);
    free(again);
    /* a member added after records were stored: an older record lacks it */
    static const struct rf_member grown_members[] = {
        RF_MEMBER(struct demo_res, created, BOOL),
        RF_MEMBER_ADDED(struct demo_res, ent.id, CHARS),
    };
    static const struct rf_codec grown = RF_CODEC(grown_members);
    struct demo_res d = {0};
    assert_int_equal(rf_codec_decode(&grown, "{\"created\":true}", &d), RF_OK);
    assert_true(d.created);
    assert_string_equal(d.ent.id, "");
    assert_int_equal(rf_codec_decode(&grown, "{\"created\":true,\"ent.id\":\"k\"}", &d), RF_OK);
    assert_string_equal(d.ent.id, "k");
    assert_int_equal(rf_codec_decode(&grown, "{\"ent.id\":\"k\"}", &d), RF_ERR_INTERNAL);
}

/* ARRAY: a JSON array of min..max objects, bounded in bytes, kept as its
 * compact text; the same rule for a decoded body and a struct. */
struct array_req {
    const char *items;
};
static const struct rf_field array_spec[] = {
    RF_F(struct array_req, items, "items", RF_FIELD_ARRAY, true, .min = 1, .max = 2,
         .max_len = 32),
};

static rf_err array_decode(const char *text, struct array_req *r, struct rf_decoded *d) {
    struct rf_fault f = {0};
    memset(r, 0, sizeof *r);
    d->n = 0;
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    rf_err err = rf_fields_decode(j, array_spec, 1, RF_AT_BODY, NULL, r, d, &f);
    json_decref(j);
    if (err) assert_int_equal(f.code, RF_ERR_INVALID_FIELD);
    return err;
}

static void test_array_field(void **state) {
    (void)state;
    struct array_req r;
    struct rf_decoded d = {0};
    assert_int_equal(array_decode("{\"items\": [ {\"b\": 1, \"a\": 2} ]}", &r, &d), RF_OK);
    assert_string_equal(r.items, "[{\"a\":2,\"b\":1}]");
    struct rf_fault f = {0};
    assert_int_equal(rf_fields_check(array_spec, 1, &r, &f), RF_OK);
    rf_decoded_clear(&d);
    const char *refused[] = {"{\"items\": []}", "{\"items\": [1]}", "{\"items\": {}}",
                             "{\"items\": [{},{},{}]}", "{\"items\": [{\"long\":\"0123456789012345678901\"}]}",
                             "{}"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_int_equal(array_decode(refused[i], &r, &d), RF_ERR_INVALID);
    const char *bad_structs[] = {"nope", "{}", "[]", "[{},{},{}]"};
    for (size_t i = 0; i < sizeof bad_structs / sizeof bad_structs[0]; i++) {
        r.items = bad_structs[i];
        assert_int_equal(rf_fields_check(array_spec, 1, &r, &f), RF_ERR_INVALID);
        assert_string_equal(f.param, "items");
    }
}

static void test_every_op_has_a_row(void **state) {
    (void)state;
    for (int op = 0; op < RF_OP__COUNT; op++) {
        assert_non_null(rf_op_name((rf_op)op));
        if (!rf_op_has_row((rf_op)op)) fail_msg("operation %s has no row", rf_op_name((rf_op)op));
        const struct rf_op_row *row = rf_op_row((rf_op)op);
        /* an idempotent operation stores its result: writes only */
        assert_true(row->write || !row->codec);
        for (size_t i = 0; i < row->n_fields; i++)
            assert_true(row->fields[i].offset < row->req_size);
    }
    assert_null(rf_op_name(RF_OP__COUNT));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_ok),
        cmocka_unit_test(test_decode_refused),
        cmocka_unit_test(test_check_struct),
        cmocka_unit_test(test_codec_round_trip),
        cmocka_unit_test(test_array_field),
        cmocka_unit_test(test_every_op_has_a_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
