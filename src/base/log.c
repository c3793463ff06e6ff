/*
 * log.c - the JSON log lines of log.h, written through logbuf.c (one
 * buffer, one order for every thread). A line other than the access log's
 * is rare (startup, shutdown, failures) and is flushed at once, so it is on
 * stderr before whatever follows it (an exit, a test reading the log).
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/limits.h"
#include "base/logbuf.h"

static _Atomic int least = RF_LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

void rf_log_level_set(enum rf_log_level level) {
    RF_ASSERT(level >= RF_LOG_DEBUG && level <= RF_LOG_ERROR);
    atomic_store(&least, (int)level);
}

bool rf_log_enabled(enum rf_log_level level) { return (int)level >= atomic_load(&least); }

bool rf_log_level_parse(const char *name, enum rf_log_level *out) {
    for (int i = RF_LOG_DEBUG; name && i <= RF_LOG_ERROR; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum rf_log_level)i;
            return true;
        }
    }
    return false;
}

const char *rf_log_level_name(enum rf_log_level level) {
    RF_ASSERT(level >= RF_LOG_DEBUG && level <= RF_LOG_ERROR);
    return names[level];
}

void rf_log_raw(struct rf_log_buf *b, const char *s, size_t n) {
    if (b->full || n >= b->cap - b->len) {
        b->full = true;
        return;
    }
    memcpy(b->text + b->len, s, n);
    b->len += n;
}

/* A JSON string of at most RF_LOG_VALUE_CHARS_MAX characters of s (NULL:
 * null): '"' and '\\' escaped, line breaks and tabs as a space, anything
 * else outside printable ASCII as '?'. */
void rf_log_str(struct rf_log_buf *b, const char *s) {
    if (!s) {
        RF_LOG_LIT(b, "null");
        return;
    }
    char out[2 * RF_LOG_VALUE_CHARS_MAX + 2];
    size_t n = 0;
    out[n++] = '"';
    for (size_t i = 0; s[i] && i < RF_LOG_VALUE_CHARS_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') out[n++] = '\\';
        /* a driver's message spans lines (libpq: "failed: ...\n\tIs the server
         * running"): whitespace reads as a space, other bytes as '?' */
        bool space = c == '\n' || c == '\t' || c == '\r';
        out[n++] = space ? ' ' : (c < 0x20 || c > 0x7e) ? '?' : (char)c;
    }
    out[n++] = '"';
    RF_ASSERT(n <= sizeof out);
    rf_log_raw(b, out, n);
}

void rf_log_begin(struct rf_log_buf *b, enum rf_log_level level) {
    char ts[RF_TIME_TEXT_BYTES];
    rf_time_format(rf_now_ms(), ts);
    RF_LOG_LIT(b, "{\"level\":");
    rf_log_str(b, rf_log_level_name(level));
    RF_LOG_LIT(b, ",\"ts\":");
    rf_log_str(b, ts);
}

static void log_v(enum rf_log_level level, const struct rf_log_kv *kv, int n, const char *fmt,
                  va_list ap) {
    RF_ASSERT(n >= 0 && (n == 0 || kv));
    if (!rf_log_enabled(level)) return;
    char msg[RF_LOG_VALUE_CHARS_MAX + 1], text[RF_LOG_LINE_BYTES_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    struct rf_log_buf b = {.text = text, .len = 0, .cap = sizeof text, .full = false};
    rf_log_begin(&b, level);
    RF_LOG_LIT(&b, ",\"msg\":");
    rf_log_str(&b, msg);
    for (int i = 0; i < n; i++) {
        RF_LOG_LIT(&b, ",");
        rf_log_str(&b, kv[i].name);
        RF_LOG_LIT(&b, ":");
        if (kv[i].is_num) {
            char num[32];
            int k = snprintf(num, sizeof num, "%lld", kv[i].num);
            rf_log_raw(&b, num, (size_t)k);
        } else {
            rf_log_str(&b, kv[i].str);
        }
    }
    RF_LOG_LIT(&b, "}");
    if (b.full) return; /* cannot happen with the bounded values callers pass */
    rf_log_line(b.text, b.len);
    rf_log_flush();
}

void rf_log_kv(enum rf_log_level level, const struct rf_log_kv *kv, int n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_v(level, kv, n, fmt, ap);
    va_end(ap);
}

void rf_log_failure(rf_err code, const char *cause, const char *fmt, ...) {
    struct rf_log_kv kv[2] = {RF_KV_STR("code", rf_err_code(code)), RF_KV_STR("cause", cause)};
    va_list ap;
    va_start(ap, fmt);
    log_v(RF_LOG_ERROR, kv, 2, fmt, ap);
    va_end(ap);
}
