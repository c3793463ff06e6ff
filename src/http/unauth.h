/*
 * unauth.h - the limit on requests without a valid API key, per client IP,
 * in this process's memory (unauth.c). The event loop alone uses it, so it
 * takes no lock.
 */
#ifndef RF_HTTP_UNAUTH_H
#define RF_HTTP_UNAUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "racefree.h"

struct rf_unauth;

/* A table for limit (valid: rf_rate_limit_valid); NULL when out of memory. */
struct rf_unauth *rf_unauth_new(const struct rf_rate_limit *limit);
void rf_unauth_free(struct rf_unauth *u);
/* True when ip has used up its unauthenticated requests at now_ms (a
 * monotonic clock); *retry_ms: until the next one is accepted. */
bool rf_unauth_over(struct rf_unauth *u, uint32_t ip, int64_t now_ms, int64_t *retry_ms);
/* Counts one unauthenticated request (an answer 401) of ip at now_ms. */
void rf_unauth_charge(struct rf_unauth *u, uint32_t ip, int64_t now_ms);

#endif
