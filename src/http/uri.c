/*
 * uri.c - percent-decoding for path segments and query values (see uri.h).
 * Pure functions over bounded buffers: no allocation, no locale.
 */
#include "http/uri.h"

#include <string.h>

#include "base/assert.h"

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

enum rf_uri_err rf_uri_decode(const char *in, size_t in_len, bool segment, char *out, size_t cap,
                              size_t *out_len) {
    RF_ASSERT(in && out && cap > 0);
    size_t n = 0;
    for (size_t i = 0; i < in_len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            if (i + 2 >= in_len) return RF_URI_BAD_ESCAPE;
            int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return RF_URI_BAD_ESCAPE;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || (segment && c == '/')) return RF_URI_FORBIDDEN_CHAR;
        if (n + 1 >= cap) return RF_URI_TOO_LONG;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    if (out_len) *out_len = n;
    return RF_URI_OK;
}

int rf_uri_query_get(const char *query, const char *name, char *out, size_t cap) {
    RF_ASSERT(name && out && cap > 0);
    size_t name_len = strlen(name);
    const char *p = query;
    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t key_len = eq ? (size_t)(eq - p) : len;
        if (key_len == name_len && memcmp(p, name, name_len) == 0) {
            const char *v = eq ? eq + 1 : p + len;
            size_t v_len = (size_t)(p + len - v);
            return rf_uri_decode(v, v_len, false, out, cap, NULL) == RF_URI_OK ? 1 : -1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}
