/*
 * codec.c - typed results to text and back (see codec.h).
 */
#include "core/codec.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"

static json_t *member_json(const struct rf_member *m, const char *at) {
    switch (m->type) {
    case RF_MEMBER_CHARS:
        RF_ASSERT(memchr(at, '\0', m->size) != NULL);
        return json_string(at);
    case RF_MEMBER_TEXT: {
        const char *s = *(char *const *)at;
        return s ? json_string(s) : json_null();
    }
    case RF_MEMBER_I64: return json_integer(*(const int64_t *)at);
    case RF_MEMBER_INT: return json_integer(*(const int *)at);
    case RF_MEMBER_BOOL: return json_boolean(*(const bool *)at);
    case RF_MEMBER_ENUM: {
        int v = *(const int *)at;
        RF_ASSERT(m->names && v >= 0);
        for (int i = 0; i <= v; i++) RF_ASSERT(m->names[i]); /* v names a value */
        return json_string(m->names[v]);
    }
    }
    RF_ASSERT(0);
    return NULL;
}

char *rf_codec_encode(const struct rf_codec *c, const void *res) {
    RF_ASSERT(c && c->n > 0 && res);
    json_t *o = json_object();
    for (size_t i = 0; o && i < c->n; i++) {
        const struct rf_member *m = &c->members[i];
        if (json_object_set_new(o, m->name, member_json(m, (const char *)res + m->offset)) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return text;
}

static rf_err member_fill(const struct rf_member *m, json_t *v, char *at) {
    switch (m->type) {
    case RF_MEMBER_CHARS:
        if (!json_is_string(v) || json_string_length(v) >= m->size) return RF_ERR_INTERNAL;
        memcpy(at, json_string_value(v), json_string_length(v) + 1);
        return RF_OK;
    case RF_MEMBER_TEXT:
        if (json_is_null(v)) return RF_OK;
        if (!json_is_string(v)) return RF_ERR_INTERNAL;
        *(char **)at = strdup(json_string_value(v));
        return *(char **)at ? RF_OK : RF_ERR_NOMEM;
    case RF_MEMBER_I64:
        if (!json_is_integer(v)) return RF_ERR_INTERNAL;
        *(int64_t *)at = json_integer_value(v);
        return RF_OK;
    case RF_MEMBER_INT:
        if (!json_is_integer(v)) return RF_ERR_INTERNAL;
        *(int *)at = (int)json_integer_value(v);
        return RF_OK;
    case RF_MEMBER_BOOL:
        if (!json_is_boolean(v)) return RF_ERR_INTERNAL;
        *(bool *)at = json_is_true(v);
        return RF_OK;
    case RF_MEMBER_ENUM:
        if (!json_is_string(v)) return RF_ERR_INTERNAL;
        for (int i = 0; m->names[i]; i++) {
            if (strcmp(m->names[i], json_string_value(v)) != 0) continue;
            *(int *)at = i;
            return RF_OK;
        }
        return RF_ERR_INTERNAL;
    }
    return RF_ERR_INTERNAL;
}

rf_err rf_codec_decode(const struct rf_codec *c, const char *text, void *res) {
    RF_ASSERT(c && text && res);
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    rf_err err = json_is_object(o) ? RF_OK : RF_ERR_INTERNAL;
    for (size_t i = 0; !err && i < c->n; i++) {
        const struct rf_member *m = &c->members[i];
        json_t *v = json_object_get(o, m->name);
        err = v ? member_fill(m, v, (char *)res + m->offset) : RF_ERR_INTERNAL;
    }
    json_decref(o);
    return err;
}

size_t rf_json_quote(const char *s, char *out, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    if (cap < 3) return 0;
    out[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (cap - n < 6 + 2) return 0; /* the longest escape, the quote, the NUL */
        const char *short_esc = *p == '"' ? "\\\"" : *p == '\\' ? "\\\\" : *p == '\b' ? "\\b"
                              : *p == '\f' ? "\\f" : *p == '\n' ? "\\n" : *p == '\r' ? "\\r"
                              : *p == '\t' ? "\\t" : NULL;
        if (short_esc) {
            out[n++] = short_esc[0];
            out[n++] = short_esc[1];
        } else if (*p < 0x20) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[*p >> 4];
            out[n + 5] = hex[*p & 15];
            n += 6;
        } else {
            out[n++] = (char)*p;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
    return n;
}
