/*
 * cursor.c - see cursor.h. The pos part is parsed digit by digit with an
 * overflow check (strtoll would accept signs, spaces and saturate).
 */
#include "base/cursor.h"

#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"

#define POS_DIGITS_MAX 19 /* INT64_MAX has 19 digits */

/* Parses the leading digits of s into *pos; returns the count, 0 if none or
 * out of range. */
static size_t parse_pos(const char *s, int64_t *pos) {
    int64_t v = 0;
    size_t n = 0;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        int d = s[n] - '0';
        if (n >= POS_DIGITS_MAX || v > (INT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    *pos = v;
    return n;
}

bool rf_cursor_parse(const char *s, struct rf_cursor *out) {
    if (!s) return false;
    int64_t pos = 0;
    size_t n = parse_pos(s, &pos);
    if (n == 0) return false;
    const char *key = s + n;
    if (*key && (*key != '.' || !rf_id_valid(key + 1))) return false;
    if (out) {
        out->pos = pos;
        rf_strcpy(out->key, sizeof out->key, *key ? key + 1 : "");
    }
    return true;
}

void rf_cursor_format(const struct rf_cursor *c, char *out, size_t cap) {
    RF_ASSERT(c->pos >= 0 && cap >= RF_CURSOR_BYTES);
    int w = c->key[0] ? snprintf(out, cap, "%lld.%s", (long long)c->pos, c->key)
                      : snprintf(out, cap, "%lld", (long long)c->pos);
    RF_ASSERT(w > 0 && (size_t)w < cap);
}
