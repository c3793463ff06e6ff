/*
 * log.h - the server's log: one JSON object per line on stderr, each with
 * `level` (debug|info|warn|error), `ts` (RFC 3339 UTC, milliseconds) and
 * `msg`, plus members of its own (`code`, `cause`, ...). A log shipper can
 * parse every line the same way and filter on level, so startup, shutdown,
 * store failures and the access log all share this shape.
 *
 * Secrets never reach it: callers log key ids, never keys, and database
 * URLs only by back end (they may hold passwords).
 */
#ifndef RF_LOG_H
#define RF_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "racefree.h"

enum rf_log_level { RF_LOG_DEBUG, RF_LOG_INFO, RF_LOG_WARN, RF_LOG_ERROR };

/* The least level written (default RF_LOG_INFO); any thread. */
void rf_log_level_set(enum rf_log_level level);
bool rf_log_enabled(enum rf_log_level level);
/* "debug", "info", "warn", "error" -> level; false for anything else. */
bool rf_log_level_parse(const char *name, enum rf_log_level *out);
const char *rf_log_level_name(enum rf_log_level level);

/* A member of a line: a string value (NULL: null), or an integer. */
struct rf_log_kv {
    const char *name;
    const char *str;
    long long num;
    bool is_num;
};
#define RF_KV_STR(n, v) ((struct rf_log_kv){.name = (n), .str = (v)})
#define RF_KV_INT(n, v) ((struct rf_log_kv){.name = (n), .num = (v), .is_num = true})

/* Writes {"level","ts","msg": printf(fmt), kv...} when level is enabled.
 * Strings are escaped; bytes outside printable ASCII become '?' (store
 * messages may hold anything). At most RF_LOG_LINE_BYTES_MAX bytes: a
 * longer msg or cause is cut. */
void rf_log_kv(enum rf_log_level level, const struct rf_log_kv *kv, int n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define rf_log(level, ...) rf_log_kv((level), NULL, 0, __VA_ARGS__)

/* A store or system failure: level error with `code` (the rf_err it maps
 * to) and `cause` (the store's own message, strerror, ...). */
void rf_log_failure(rf_err code, const char *cause, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The JSON-escaped, printable-ASCII form of s, appended to buf (used by
 * the access log too): false when it did not fit (buf is then cut). */
struct rf_log_buf {
    char *text;
    size_t len, cap;
    bool full;
};
void rf_log_raw(struct rf_log_buf *b, const char *s, size_t n);
void rf_log_str(struct rf_log_buf *b, const char *s);
/* A string literal, as is. */
#define RF_LOG_LIT(b, lit) rf_log_raw((b), (lit), sizeof(lit) - 1)
/* Starts a line: {"level":"...","ts":"..." */
void rf_log_begin(struct rf_log_buf *b, enum rf_log_level level);

#endif
