/*
 * fields.c - the one validator (see fields.h). Each type has one predicate
 * and one sentence; decoding JSON and checking a struct both use them, so
 * the rules cannot drift apart. Every loop is bounded by the spec's length
 * (at most RF_HTTP_FIELDS_MAX) or by a member's bounded text.
 */
#include "core/fields.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/ids.h"

#define OBJECT_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

void rf_fault_set(struct rf_fault *fault, rf_err code, const char *param, const char *fmt, ...) {
    if (!fault) return;
    fault->code = code;
    snprintf(fault->param, sizeof fault->param, "%s",
             param && strlen(param) < sizeof fault->param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fault->detail, sizeof fault->detail, fmt, ap);
    va_end(ap);
    rf_printable_force(fault->detail);
}

void rf_decoded_clear(struct rf_decoded *d) {
    RF_ASSERT(d->n >= 0 && d->n <= RF_HTTP_FIELDS_MAX);
    for (int i = 0; i < d->n; i++) free(d->texts[i]);
    d->n = 0;
}

/* ---- one predicate and one sentence per rule ----------------------------- */

static rf_err bad(struct rf_fault *fault, const struct rf_field *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static rf_err bad(struct rf_fault *fault, const struct rf_field *f, const char *fmt, ...) {
    char text[RF_FAULT_DETAIL_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    rf_fault_set(fault, RF_ERR_INVALID_FIELD, f->name, "%s", text);
    return RF_ERR_INVALID;
}

/* A nested field's fault, qualified: "in 'destination': field 'ref' ...". */
static rf_err nested_fault(const struct rf_field *f, rf_err err, struct rf_fault *fault) {
    if (!fault || err == RF_OK || err == RF_ERR_NOMEM) return err;
    char inner[RF_FAULT_DETAIL_BYTES];
    snprintf(inner, sizeof inner, "%s", fault->detail);
    rf_fault_set(fault, fault->code, NULL, "in '%s': %s", f->name, inner);
    return err;
}

static bool upper_az(char c) { return c >= 'A' && c <= 'Z'; }

/* Containers nested at most RF_JSON_DEPTH_MAX deep; `depth` is v's level.
 * Recursion stops one level past the bound. */
static bool depth_ok(json_t *v, int depth) {
    if (!json_is_object(v) && !json_is_array(v)) return true;
    if (depth > RF_JSON_DEPTH_MAX) return false;
    json_t *child;
    if (json_is_object(v)) {
        const char *k;
        json_object_foreach(v, k, child) if (!depth_ok(child, depth + 1)) return false;
    } else {
        size_t i;
        json_array_foreach(v, i, child) if (!depth_ok(child, depth + 1)) return false;
    }
    return true;
}

/* A string value of a string-typed field. */
static rf_err text_check(const struct rf_field *f, const char *s, struct rf_fault *fault) {
    switch (f->type) {
    case RF_FIELD_STRING: {
        size_t chars = rf_utf8_chars(s); /* SIZE_MAX: not UTF-8 */
        if (chars > f->max_len || (int64_t)chars < f->min)
            return bad(fault, f, "field '%s' must be %lld-%zu characters of UTF-8", f->name,
                       (long long)f->min, f->max_len);
        return RF_OK;
    }
    case RF_FIELD_ID: {
        /* max_len: a shorter bound than every id's (a queue's name) */
        int max = f->max_len && f->max_len < RF_ID_CHARS_MAX ? (int)f->max_len : RF_ID_CHARS_MAX;
        if (!rf_id_valid(s) || strlen(s) > (size_t)max)
            return bad(fault, f, "field '%s' must be 1-%d characters of [A-Za-z0-9._:-]",
                       f->name, max);
        return RF_OK;
    }
    case RF_FIELD_CURRENCY:
        if (strlen(s) != 3 || !upper_az(s[0]) || !upper_az(s[1]) || !upper_az(s[2]))
            return bad(fault, f,
                       "field '%s' must be an ISO 4217 code: three upper-case letters, "
                       "such as USD",
                       f->name);
        return RF_OK;
    default:
        RF_ASSERT(0);
        return RF_ERR_INTERNAL;
    }
}

static rf_err time_bad(const struct rf_field *f, struct rf_fault *fault) {
    return bad(fault, f,
               "field '%s' must be an RFC 3339 time from 1970 to 9999 in UTC, "
               "such as 2026-02-15T10:04:05.123Z",
               f->name);
}

static rf_err int_bad(const struct rf_field *f, struct rf_fault *fault) {
    return bad(fault, f, "field '%s' must be an integer from %lld to %lld", f->name,
               (long long)f->min, (long long)f->max);
}

static rf_err int_check(const struct rf_field *f, int64_t v, struct rf_fault *fault) {
    return v >= f->min && v <= f->max ? RF_OK : int_bad(f, fault);
}

/* A container value's nesting and compact size, bounded. */
static rf_err bounded(const struct rf_field *f, json_t *v, struct rf_fault *fault) {
    if (!depth_ok(v, 1))
        return bad(fault, f, "field '%s' is nested deeper than %d levels", f->name,
                   RF_JSON_DEPTH_MAX);
    size_t need = json_dumpb(v, NULL, 0, OBJECT_FLAGS);
    if (need == 0 || need > f->max_len)
        return bad(fault, f, "field '%s' is larger than %zu bytes", f->name, f->max_len);
    return RF_OK;
}

/* An object value: nesting and compact size bounded. */
static rf_err object_check(const struct rf_field *f, json_t *v, struct rf_fault *fault) {
    if (!json_is_object(v)) return bad(fault, f, "field '%s' must be a JSON object", f->name);
    return bounded(f, v, fault);
}

/* An array value: min..max elements, each an object, bounded as an OBJECT. */
static rf_err array_check(const struct rf_field *f, json_t *v, struct rf_fault *fault) {
    if (!json_is_array(v)) return bad(fault, f, "field '%s' must be a JSON array", f->name);
    size_t n = json_array_size(v);
    if ((int64_t)n < f->min || (int64_t)n > f->max)
        return bad(fault, f, "field '%s' must have %lld to %lld elements", f->name,
                   (long long)f->min, (long long)f->max);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) if (!json_is_object(e))
        return bad(fault, f, "field '%s' must be an array of JSON objects", f->name);
    return bounded(f, v, fault);
}

/* OBJECT or ARRAY: the value's own check. */
static rf_err json_value_check(const struct rf_field *f, json_t *v, struct rf_fault *fault) {
    return f->type == RF_FIELD_ARRAY ? array_check(f, v, fault) : object_check(f, v, fault);
}

/* CHOICE: the C value of name, or -1 when name is not one of the choices. */
static int choice_of(const struct rf_field *f, const char *name) {
    for (int i = 0; f->choices[i]; i++)
        if (strcmp(f->choices[i], name) == 0) return f->choice_values ? f->choice_values[i] : i;
    return -1;
}

static bool choice_valid(const struct rf_field *f, int v) {
    for (int i = 0; f->choices[i]; i++)
        if ((f->choice_values ? f->choice_values[i] : i) == v) return true;
    return false;
}

static rf_err choice_bad(const struct rf_field *f, struct rf_fault *fault) {
    return bad(fault, f, "field '%s' must be %s", f->name, f->choice_text);
}

static bool *bool_at(void *req, const struct rf_field *f) {
    return (bool *)((char *)req + f->offset);
}
static int *enum_at(void *req, const struct rf_field *f) {
    return (int *)((char *)req + f->offset);
}

/* ---- JSON -> request struct ------------------------------------------------ */

static rf_err decode_object(const struct rf_field *f, json_t *v, void *req, struct rf_decoded *d,
                            struct rf_fault *fault) {
    rf_err err = json_value_check(f, v, fault);
    if (err) return err;
    RF_ASSERT(d->n < RF_HTTP_FIELDS_MAX);
    char *text = json_dumps(v, OBJECT_FLAGS);
    if (!text) {
        rf_fault_set(fault, RF_ERR_NOMEM, NULL, "out of memory");
        return RF_ERR_NOMEM;
    }
    d->texts[d->n++] = text;
    *rf_field_str(req, f) = text;
    return RF_OK;
}

static rf_err decode_fields(json_t *o, const struct rf_field *f, size_t n, unsigned at,
                           const char *skip, void *req, struct rf_decoded *d,
                           struct rf_fault *fault);

static rf_err decode_one(const struct rf_field *f, json_t *v, void *req, struct rf_decoded *d,
                         struct rf_fault *fault) {
    switch (f->type) {
    case RF_FIELD_NESTED: /* its members: decode_nested, once the level is done */
        if (f->max_len) return object_check(f, v, fault);
        if (!json_is_object(v)) return bad(fault, f, "field '%s' must be a JSON object", f->name);
        return RF_OK;
    case RF_FIELD_OBJECT:
    case RF_FIELD_ARRAY:
        return decode_object(f, v, req, d, fault);
    case RF_FIELD_BOOL:
        if (!json_is_boolean(v)) return bad(fault, f, "field '%s' must be true or false", f->name);
        *bool_at(req, f) = json_is_true(v);
        return RF_OK;
    case RF_FIELD_INT:
        if (!json_is_integer(v)) return int_bad(f, fault);
        *rf_field_i64(req, f) = json_integer_value(v);
        return int_check(f, *rf_field_i64(req, f), fault);
    default:
        break;
    }
    if (!json_is_string(v)) return bad(fault, f, "field '%s' must be a string", f->name);
    const char *s = json_string_value(v);
    if (f->type == RF_FIELD_CHOICE) {
        int c = choice_of(f, s);
        if (c < 0) return choice_bad(f, fault);
        *enum_at(req, f) = c;
        return RF_OK;
    }
    if (f->type == RF_FIELD_TIME) {
        int64_t ms;
        if (!rf_time_parse(s, &ms) || ms <= 0) return time_bad(f, fault);
        *rf_field_i64(req, f) = ms;
        return RF_OK;
    }
    *rf_field_str(req, f) = s;
    return text_check(f, s, fault);
}

static const struct rf_field *spec_find(const struct rf_field *f, size_t n, unsigned at,
                                        const char *name) {
    for (size_t i = 0; i < n; i++)
        if ((RF_FIELD_AT(&f[i]) & at) && strcmp(f[i].name, name) == 0) return &f[i];
    return NULL;
}

/* The members of each nested object present at this level, after every
 * field of the level itself (the order the edge has always reported). */
static rf_err decode_nested(json_t *o, const struct rf_field *f, size_t n, unsigned at,
                            void *req, struct rf_decoded *d, struct rf_fault *fault) {
    for (size_t i = 0; i < n; i++) {
        if (f[i].type != RF_FIELD_NESTED || !(RF_FIELD_AT(&f[i]) & at)) continue;
        json_t *v = o ? json_object_get(o, f[i].name) : NULL;
        if (!v || json_is_null(v)) continue;
        rf_err err = decode_fields(v, f[i].sub, f[i].n_sub, ~0u, NULL, req, d, fault);
        if (err) return nested_fault(&f[i], err, fault);
    }
    return RF_OK;
}

static rf_err decode_fields(json_t *o, const struct rf_field *f, size_t n, unsigned at,
                           const char *skip, void *req, struct rf_decoded *d,
                           struct rf_fault *fault) {
    const char *name;
    json_t *v;
    json_object_foreach(o, name, v) {
        if (skip && strcmp(name, skip) == 0) continue;
        if (!spec_find(f, n, at, name)) {
            rf_fault_set(fault, RF_ERR_UNKNOWN_FIELD, name, "unknown field '%s'", name);
            return RF_ERR_INVALID;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!(RF_FIELD_AT(&f[i]) & at)) continue;
        v = o ? json_object_get(o, f[i].name) : NULL;
        if (!v || json_is_null(v)) {
            if (f[i].type == RF_FIELD_BOOL && f[i].min) *bool_at(req, &f[i]) = true;
            if (!f[i].required) continue;
            return bad(fault, &f[i], "field '%s' is required", f[i].name);
        }
        rf_err err = decode_one(&f[i], v, req, d, fault);
        if (err) return err;
    }
    return decode_nested(o, f, n, at, req, d, fault);
}

rf_err rf_fields_decode(const json_t *obj, const struct rf_field *f, size_t n, unsigned at,
                        const char *skip, void *req, struct rf_decoded *d, struct rf_fault *fault) {
    RF_ASSERT(n <= RF_HTTP_FIELDS_MAX && req && d && d->n == 0);
    RF_ASSERT(obj == NULL || json_is_object(obj));
    /* jansson's iteration API is not const */
    rf_err err = decode_fields((json_t *)obj, f, n, at, skip, req, d, fault);
    if (err) rf_decoded_clear(d);
    return err;
}

/* ---- request struct ---------------------------------------------------------- */

static rf_err check_one(const struct rf_field *f, const void *req, struct rf_fault *fault) {
    void *r = (void *)req;
    switch (f->type) {
    case RF_FIELD_BOOL:
        return RF_OK;
    case RF_FIELD_NESTED:
        return nested_fault(f, rf_fields_check(f->sub, f->n_sub, req, fault), fault);
    case RF_FIELD_CHOICE: {
        int v = *enum_at(r, f);
        if (v == 0 && !f->required) return RF_OK;
        return choice_valid(f, v) ? RF_OK : choice_bad(f, fault);
    }
    case RF_FIELD_INT: {
        int64_t v = *rf_field_i64(r, f);
        if (v == 0 && !f->required) return RF_OK;
        return int_check(f, v, fault);
    }
    case RF_FIELD_TIME: {
        int64_t ms = *rf_field_i64(r, f);
        if (ms == 0) return f->required ? bad(fault, f, "field '%s' is required", f->name) : RF_OK;
        return ms > 0 && ms <= RF_TIME_MS_MAX ? RF_OK : time_bad(f, fault);
    }
    default:
        break;
    }
    const char *s = *rf_field_str(r, f);
    if (!s) return f->required ? bad(fault, f, "field '%s' is required", f->name) : RF_OK;
    if (f->type != RF_FIELD_OBJECT && f->type != RF_FIELD_ARRAY) return text_check(f, s, fault);
    json_t *v = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
    rf_err err = v ? json_value_check(f, v, fault)
                   : bad(fault, f, "field '%s' must be a JSON %s", f->name,
                         f->type == RF_FIELD_ARRAY ? "array" : "object");
    json_decref(v);
    return err;
}

rf_err rf_fields_check(const struct rf_field *f, size_t n, const void *req,
                       struct rf_fault *fault) {
    RF_ASSERT(n <= RF_HTTP_FIELDS_MAX && req);
    for (size_t i = 0; i < n; i++) {
        rf_err err = check_one(&f[i], req, fault);
        if (err) return err;
    }
    return RF_OK;
}
