/*
 * unauth.c - requests without a valid API key (none, or a bad one: each
 * answered 401) counted per client IP with the GCRA of core/ratelimit.h, in
 * memory, so a flood of them cannot keep the workers and the store's key
 * reads busy. Past the limit such requests get 429 rate_limited at once,
 * before any key is looked up; a request with a key this process has
 * verified recently still passes (authenticated traffic never counts).
 *
 * A fixed table of RF_UNAUTH_IPS_MAX buckets, indexed by a hash of the IP:
 * an IP meeting another's slot takes it over (losing that IP's count). It
 * never allocates per request, and it is per process: N servers allow N
 * times the limit, which is fine for a guard against starvation (the
 * accounting limit that must hold across nodes is the store's, per key).
 */
#include "http/unauth.h"

#include <stdlib.h>

#include "base/assert.h"
#include "base/limits.h"
#include "core/ratelimit.h"

struct slot {
    uint32_t ip;
    bool used;
    int64_t tat;
};

struct rf_unauth {
    struct gcra g;
    struct slot s[RF_UNAUTH_IPS_MAX];
};

struct rf_unauth *rf_unauth_new(const struct rf_rate_limit *limit) {
    RF_ASSERT(rf_rate_limit_valid(limit));
    struct rf_unauth *u = calloc(1, sizeof *u);
    if (u) u->g = gcra_of(limit);
    return u;
}

void rf_unauth_free(struct rf_unauth *u) { free(u); }

static struct slot *slot_of(struct rf_unauth *u, uint32_t ip) {
    uint32_t h = ip * 2654435761u; /* Knuth's multiplicative hash */
    return &u->s[h % RF_UNAUTH_IPS_MAX];
}

/* A look only: an IP whose slot another IP holds has no count (it would
 * take the slot over with its first charge, not with every request). */
bool rf_unauth_over(struct rf_unauth *u, uint32_t ip, int64_t now_ms, int64_t *retry_ms) {
    struct slot *sl = slot_of(u, ip);
    if (!sl->used || sl->ip != ip) return false;
    int64_t tat = 0;
    struct rf_rate_result r;
    gcra_step(u->g, sl->tat != 0, sl->tat, now_ms, &tat, &r); /* a look: tat is not kept */
    *retry_ms = r.retry_after_ms;
    return !r.allowed;
}

void rf_unauth_charge(struct rf_unauth *u, uint32_t ip, int64_t now_ms) {
    struct slot *sl = slot_of(u, ip);
    if (!sl->used || sl->ip != ip) *sl = (struct slot){.ip = ip, .used = true, .tat = 0};
    struct rf_rate_result r;
    gcra_step(u->g, sl->tat != 0, sl->tat, now_ms, &sl->tat, &r);
}
