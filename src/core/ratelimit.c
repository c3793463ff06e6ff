/*
 * ratelimit.c - the distributed rate limiter: one GCRA bucket per (API key,
 * route class) in the store's rate_limits table (ratelimit.h explains the
 * arithmetic), so every server process on one PostgreSQL database or one
 * SQLite file shares one limit; and the "N/PERIOD" spec of --rate-limit.
 *
 * One request is one atomic UPSERT on the bucket's PRIMARY KEY that
 * advances tat only when the request conforms (the condition is the
 * statement's own WHERE, evaluated on the row it locks), never a read and a
 * later write: two processes reading the same tat and both writing tat + T
 * would each let a request through that only one of them may
 * (read-modify-write). Only a refused request reads tat again, in the same
 * transaction, for its Retry-After.
 */
#include "core/ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"
#include "core/core.h"

_Static_assert(RF_RATE_WINDOW_MS_MAX <= INT64_MAX / 8, "tat + T + tau fits int64");

bool rf_rate_limit_valid(const struct rf_rate_limit *l) {
    return l && l->quota >= 1 && l->quota <= RF_RATE_QUOTA_MAX &&
           l->window_ms >= RF_RATE_WINDOW_MS_MIN && l->window_ms <= RF_RATE_WINDOW_MS_MAX &&
           l->quota <= l->window_ms;
}

struct gcra gcra_of(const struct rf_rate_limit *l) {
    RF_ASSERT(rf_rate_limit_valid(l));
    struct gcra g = {.t_ms = l->window_ms / l->quota, .tau_ms = 0};
    g.tau_ms = g.t_ms * l->quota;
    RF_ASSERT(g.t_ms >= 1 && g.tau_ms <= l->window_ms && g.tau_ms >= g.t_ms);
    return g;
}

int64_t gcra_clamp(struct gcra g, int64_t tat, int64_t now) {
    RF_ASSERT(now >= 0 && now <= INT64_MAX / 2);
    if (tat < now) return now;
    return tat - now > g.tau_ms ? now + g.tau_ms : tat;
}

int64_t gcra_ceil_s(int64_t ms) {
    if (ms <= 1000) return 1;
    return ms / 1000 + (ms % 1000 != 0);
}

void gcra_result(struct gcra g, bool allowed, int64_t tat, int64_t now,
                 struct rf_rate_result *out) {
    int64_t ahead = gcra_clamp(g, tat, now) - now; /* 0..tau */
    out->allowed = allowed;
    out->reset_ms = ahead;
    out->remaining = (g.tau_ms - ahead) / g.t_ms;
    /* refused: the next request conforms once tat + T - tau <= now */
    int64_t wait = ahead + g.t_ms - g.tau_ms;
    out->retry_after_ms = allowed ? 0 : (wait < 1 ? 1 : wait);
    RF_ASSERT(out->remaining >= 0 && out->retry_after_ms <= g.t_ms);
}

void gcra_step(struct gcra g, bool has_tat, int64_t tat, int64_t now, int64_t *new_tat,
               struct rf_rate_result *out) {
    int64_t base = has_tat ? gcra_clamp(g, tat, now) : now;
    int64_t next = base + g.t_ms;
    bool ok = next - g.tau_ms <= now;
    *new_tat = ok ? next : base;
    gcra_result(g, ok, *new_tat, now, out);
}

static bool bad_spec(const char *text, char *why, size_t why_cap) {
    snprintf(why, why_cap, "'%.*s' is not N/PERIOD (e.g. 100/10s; PERIOD a whole number with ms, "
             "s, m or h)", RF_RATE_SPEC_CHARS_MAX, text ? text : "");
    return false;
}

/* "N/PERIOD" -> quota and window; digits only (no sign, no space), the unit
 * required. strtoll saturates, and the bounds check catches that. */
bool rf_rate_limit_parse(const char *text, struct rf_rate_limit *out, char *why,
                         size_t why_cap) {
    static const struct { const char *unit; int64_t ms; } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    if (!text || strlen(text) > RF_RATE_SPEC_CHARS_MAX || text[0] < '0' || text[0] > '9')
        return bad_spec(text, why, why_cap);
    char *end = NULL;
    long long n = strtoll(text, &end, 10);
    if (*end != '/' || end[1] < '0' || end[1] > '9') return bad_spec(text, why, why_cap);
    long long p = strtoll(end + 1, &end, 10);
    int64_t unit_ms = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].unit) == 0) unit_ms = units[i].ms;
    if (!unit_ms) return bad_spec(text, why, why_cap);
    struct rf_rate_limit l = {.quota = n,
                              .window_ms = p <= RF_RATE_WINDOW_MS_MAX ? p * unit_ms : 0};
    if (!rf_rate_limit_valid(&l)) {
        snprintf(why, why_cap, "'%s': N must be 1-%d, PERIOD 1ms-24h, and N at most one per ms "
                 "of PERIOD", text, RF_RATE_QUOTA_MAX);
        return false;
    }
    *out = l;
    return true;
}

/* ---- the store's bucket ------------------------------------------------------ */

/* $1 key, $2 class, $3 now, $4 T, $5 tau (cast: PostgreSQL infers no type
 * for a sum of parameters). The new row conforms always (T <= tau); an
 * existing one advances only under the WHERE. */
#define NOW "CAST($3 AS BIGINT)"
#define T_ "CAST($4 AS BIGINT)"
#define TAU "CAST($5 AS BIGINT)"
#define SQL_TAKE(MIN, MAX)                                                                   \
    "INSERT INTO rate_limits (key_id, route_class, tat) VALUES ($1, $2, " NOW " + " T_ ")"  \
    " ON CONFLICT (key_id, route_class) DO UPDATE SET tat = " MIN "(" MAX "(rate_limits.tat, " \
    NOW "), " NOW " + " TAU ") + " T_ " WHERE " MIN "(" MAX "(rate_limits.tat, " NOW "), " NOW \
    " + " TAU ") + " T_ " - " TAU " <= " NOW " RETURNING tat"
static const char SQL_TAKE_SQLITE[] = SQL_TAKE("MIN", "MAX");
static const char SQL_TAKE_PG[] = SQL_TAKE("LEAST", "GREATEST");
static const char SQL_TAT[] = "SELECT tat FROM rate_limits WHERE key_id = $1 AND route_class = $2";

struct take_args {
    const char *key_id, *route_class;
    struct gcra g;
    struct rf_rate_result *out;
};

static rf_err op_rate_take(struct rf_tx *tx, void *ctx) {
    struct take_args *a = ctx;
    const char *sql = tx->ops->backend == STORE_POSTGRES ? SQL_TAKE_PG : SQL_TAKE_SQLITE;
    store_val p[5] = {SV_S(a->key_id), SV_S(a->route_class), SV_I(tx->now_ms), SV_I(a->g.t_ms),
                      SV_I(a->g.tau_ms)};
    int64_t tat = 0;
    rf_err err = store_query_one(tx, sql, p, 5, core_int_row, &tat);
    bool allowed = err == RF_OK;
    if (err == RF_ERR_NOT_FOUND) /* the WHERE refused: the current tat, for Retry-After */
        err = store_query_one(tx, SQL_TAT, p, 2, core_int_row, &tat);
    if (err) return err;
    gcra_result(a->g, allowed, tat, tx->now_ms, a->out);
    return RF_OK;
}

static uint32_t bucket_shard(const char *key_id, const char *route_class) {
    uint32_t h = 2166136261u; /* FNV-1a: one bucket, one committer, in order */
    for (const char *s = key_id; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    for (const char *s = route_class; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h ? h : 1;
}

rf_err rf_rate_take(rf *db, const char *key_id, const char *route_class,
                    const struct rf_rate_limit *limit, struct rf_rate_result *out) {
    if (!db || !out || !rf_id_valid(key_id) || !rf_id_valid(route_class) ||
        !rf_rate_limit_valid(limit))
        return RF_ERR_INVALID;
    memset(out, 0, sizeof *out);
    struct take_args a = {key_id, route_class, gcra_of(limit), out};
    return core_write(db, "rate_take", bucket_shard(key_id, route_class), op_rate_take, &a);
}
