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

/* ---- encoding: JSON text written directly ---------------------------------
 * Every keyed write encodes its result inside the transaction, so this is a
 * hot path: one pass counts, one pass writes into one allocation, no tree of
 * JSON values and no printf. Keys in strcmp order (the text jansson's
 * JSON_SORT_KEYS wrote before, so a record reads the same either way). */

#define CODEC_MEMBERS_MAX 64

/* Counts (out NULL) or writes. */
struct jw {
    char *out;
    size_t len;
};

static void jw_put(struct jw *w, const char *s, size_t n) {
    if (w->out) memcpy(w->out + w->len, s, n);
    w->len += n;
}

static void jw_str(struct jw *w, const char *s) {
    static const char hex[] = "0123456789abcdef";
    jw_put(w, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    for (;;) {
        const unsigned char *run = p; /* bytes that need no escape go in one piece */
        while (*p && *p != '"' && *p != '\\' && *p >= 0x20) p++;
        jw_put(w, (const char *)run, (size_t)(p - run));
        if (!*p) break;
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            jw_put(w, e, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            jw_put(w, e, 6);
        }
        p++;
    }
    jw_put(w, "\"", 1);
}

static void jw_i64(struct jw *w, int64_t v) {
    char digits[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v; /* INT64_MIN too */
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) digits[n++] = '-';
    RF_ASSERT(n <= (int)sizeof digits);
    for (int i = n - 1; i >= 0; i--) jw_put(w, &digits[i], 1);
}

static void member_write(struct jw *w, const struct rf_member *m, const char *at) {
    switch (m->type) {
    case RF_MEMBER_CHARS:
        RF_ASSERT(memchr(at, '\0', m->size) != NULL);
        jw_str(w, at);
        return;
    case RF_MEMBER_TEXT: {
        const char *s = *(char *const *)at;
        if (s) jw_str(w, s);
        else jw_put(w, "null", 4);
        return;
    }
    case RF_MEMBER_I64: jw_i64(w, *(const int64_t *)at); return;
    case RF_MEMBER_INT: jw_i64(w, *(const int *)at); return;
    case RF_MEMBER_BOOL:
        if (*(const bool *)at) jw_put(w, "true", 4);
        else jw_put(w, "false", 5);
        return;
    case RF_MEMBER_ENUM: {
        int v = *(const int *)at;
        RF_ASSERT(m->names && v >= 0);
        for (int i = 0; i <= v; i++) RF_ASSERT(m->names[i]); /* v names a value */
        jw_str(w, m->names[v]);
        return;
    }
    }
    RF_ASSERT(0);
}

static void encode(struct jw *w, const struct rf_codec *c, const size_t *order, const void *res) {
    jw_put(w, "{", 1);
    for (size_t k = 0; k < c->n; k++) {
        const struct rf_member *m = &c->members[order[k]];
        if (k) jw_put(w, ",", 1);
        jw_str(w, m->name);
        jw_put(w, ":", 1);
        member_write(w, m, (const char *)res + m->offset);
    }
    jw_put(w, "}", 1);
}

char *rf_codec_encode(const struct rf_codec *c, const void *res) {
    RF_ASSERT(c && c->n > 0 && c->n <= CODEC_MEMBERS_MAX && res);
    size_t order[CODEC_MEMBERS_MAX];
    for (size_t i = 0; i < c->n; i++) { /* insertion sort by name: a handful of members */
        size_t k = i;
        for (; k > 0 && strcmp(c->members[order[k - 1]].name, c->members[i].name) > 0; k--)
            order[k] = order[k - 1];
        order[k] = i;
    }
    struct jw count = {NULL, 0};
    encode(&count, c, order, res);
    char *text = malloc(count.len + 1);
    if (!text) return NULL;
    struct jw w = {text, 0};
    encode(&w, c, order, res);
    RF_ASSERT(w.len == count.len);
    text[w.len] = '\0';
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
        if (v) err = member_fill(m, v, (char *)res + m->offset);
        else if (!m->added) err = RF_ERR_INTERNAL;
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
