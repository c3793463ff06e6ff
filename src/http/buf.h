/*
 * buf.h - a growable byte buffer with a hard ceiling, for the texts the HTTP
 * layer builds: response header lines, the /metrics page, access log lines.
 * Appending past the ceiling (or failing to allocate) sets `failed` and keeps
 * what fit, so callers check once at the end instead of after every append.
 */
#ifndef RF_HTTP_BUF_H
#define RF_HTTP_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct rf_buf {
    char *data;     /* NUL-terminated while len < cap */
    size_t len;
    size_t cap;
    size_t max;     /* ceiling in bytes, including the NUL */
    bool failed;
};

void rf_buf_init(struct rf_buf *b, size_t max_bytes);
void rf_buf_append(struct rf_buf *b, const char *s, size_t n);
void rf_buf_puts(struct rf_buf *b, const char *s);
void rf_buf_printf(struct rf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the malloc'd text to the caller (NULL when failed or empty) and
 * resets b. */
char *rf_buf_take(struct rf_buf *b, size_t *len_out);
void rf_buf_free(struct rf_buf *b);

#endif
