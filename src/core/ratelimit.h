/*
 * ratelimit.h - the GCRA arithmetic of the rate limiter (pure, so a unit
 * test pins it), shared by ratelimit.c (the store's bucket per API key and
 * route class) and the HTTP edge's in-memory bucket per client IP.
 *
 * GCRA (generic cell rate algorithm, as redis-cell uses it): a bucket is
 * one number, the theoretical arrival time (tat). With the emission
 * interval T = window / quota and the tolerance tau = T * quota, a request
 * at now conforms when max(tat, now) + T - tau <= now, and then tat becomes
 * max(tat, now) + T. So a full quota may arrive at once, then one request
 * per T. A tat more than tau ahead of now (another node's clock ahead of
 * ours) is taken as now + tau, so a skewed clock can never lock a key out
 * for longer than one window.
 *
 * All values are int64 milliseconds; with the bounds of limits.h (window at
 * most a day, now a wall clock before year 292 million) no sum overflows.
 */
#ifndef RF_CORE_RATELIMIT_H
#define RF_CORE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "racefree.h"

struct gcra {
    int64_t t_ms;   /* emission interval: window / quota, >= 1 */
    int64_t tau_ms; /* tolerance: t_ms * quota, <= window */
};

/* The parameters of a valid limit (rf_rate_limit_valid). */
struct gcra gcra_of(const struct rf_rate_limit *l);
bool rf_rate_limit_valid(const struct rf_rate_limit *l);
/* tat as the algorithm sees it at now: at least now, at most now + tau. */
int64_t gcra_clamp(struct gcra g, int64_t tat, int64_t now);
/* The verdict for one request at now against the bucket's tat (has_tat
 * false: no bucket yet). *new_tat: the tat to store when allowed. */
void gcra_step(struct gcra g, bool has_tat, int64_t tat, int64_t now, int64_t *new_tat,
               struct rf_rate_result *out);
/* The verdict after the store said allowed (tat: the stored new tat) or
 * refused (tat: the bucket's current tat). */
void gcra_result(struct gcra g, bool allowed, int64_t tat, int64_t now,
                 struct rf_rate_result *out);
/* True when this process verified the key text lately (its row is in the
 * authentication cache, however old, and the secret matches, and it was not
 * revoked): the edge's unauthenticated limit lets such requests by
 * (keys.c). No store access. */
bool rf_key_seen(rf *db, const char *key_text);
/* Whole seconds, rounded up, at least 1: Retry-After and the headers' t. */
int64_t gcra_ceil_s(int64_t ms);

#endif
