/*
 * buf.c - the bounded growable buffer (see buf.h). Growth doubles from a small
 * start, so building a page costs O(log n) allocations and never exceeds the
 * ceiling the caller set.
 */
#include "http/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

#define BUF_START_BYTES 256

void rf_buf_init(struct rf_buf *b, size_t max_bytes) {
    RF_ASSERT(max_bytes > 1);
    *b = (struct rf_buf){.max = max_bytes};
}

/* Makes room for `need` more bytes plus the NUL. */
static bool buf_reserve(struct rf_buf *b, size_t need) {
    if (b->failed) return false;
    if (need >= b->max - b->len) {
        b->failed = true;
        return false;
    }
    size_t want = b->len + need + 1;
    if (want <= b->cap) return true;
    size_t cap = b->cap ? b->cap : BUF_START_BYTES;
    while (cap < want) cap *= 2;
    if (cap > b->max) cap = b->max;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void rf_buf_append(struct rf_buf *b, const char *s, size_t n) {
    if (!buf_reserve(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void rf_buf_puts(struct rf_buf *b, const char *s) { rf_buf_append(b, s, strlen(s)); }

void rf_buf_printf(struct rf_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *rf_buf_take(struct rf_buf *b, size_t *len_out) {
    char *out = NULL;
    size_t len = 0;
    if (!b->failed && b->data) {
        out = b->data;
        len = b->len;
        b->data = NULL;
    }
    rf_buf_free(b);
    if (len_out) *len_out = len;
    return out;
}

void rf_buf_free(struct rf_buf *b) {
    free(b->data);
    size_t max = b->max;
    *b = (struct rf_buf){.max = max};
}
