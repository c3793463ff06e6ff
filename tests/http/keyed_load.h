/*
 * keyed_load.h - client threads that apply keyed writes through crashes and
 * outages, and the check that each took effect exactly once.
 *
 * Each client owns two accounts (a, which may go negative, and b) and a
 * user, and runs a script drawn from a seeded generator: credits of a,
 * transfers from a to b, and entitlement grants, each request with its own
 * Idempotency-Key. A request that gets no definite answer (no HTTP answer at
 * all: the server died; or a 503: the store is away) is sent again, the
 * same request with the same key, until it gets one; only then does the
 * client go on. So when the load is finished every request the script
 * issued has been acknowledged once, and the store must hold each effect
 * exactly once: a retry that ran an effect again (its first attempt had
 * committed before the crash) shows as a balance that differs from the
 * script's sum; an acknowledged effect that was lost shows the same way.
 */
#ifndef RF_KEYED_LOAD_H
#define RF_KEYED_LOAD_H

#include <pthread.h>
#include <stdatomic.h>

#include "http_env.h"

#define KL_CLIENTS_MAX 16
#define KL_RETRY_MAX_MS 60000 /* a request still unanswered after this fails the test */

struct kl_client {
    uint64_t rng;
    char acct_a[64], acct_b[64], user[64];
    int64_t want_a, want_b; /* what the issued credits and transfers add up to */
    int grants;             /* grants issued (entitlement keys g0 .. g<grants-1>) */
    int64_t ops;            /* requests acknowledged */
    int64_t retries;        /* attempts after the first of a request */
    int64_t replays;        /* retries answered "Idempotent-Replayed: true" */
    int64_t no_answer;      /* attempts that got no HTTP answer */
    int64_t unavailable;    /* attempts answered 503 */
    int64_t no_retry_after; /* 503s without Retry-After */
    int bad_status;         /* the first answer that is none of 2xx, 503 or none (-1: gave up) */
    char bad_what[400];
};

struct kl_load {
    struct env *e;
    atomic_int port;  /* where the clients send: a restarted server has a new port */
    atomic_bool stop; /* finish the request in progress, then return */
    atomic_llong acked;       /* requests acknowledged, all clients */
    atomic_llong unavailable; /* attempts answered 503, all clients */
    atomic_int failed;        /* clients that stopped on a bad answer (bad_status set first) */
    int n_clients;
    uint64_t seed;
    char run[40];     /* this run's prefix of ids and Idempotency-Keys */
    char cur[4];
    struct kl_client c[KL_CLIENTS_MAX];
    pthread_t threads[KL_CLIENTS_MAX];
};

/* The seed: RACEFREE_CRASH_SEED when set, else a fresh one; printed, so a
 * failing run can be repeated. */
uint64_t kl_seed(const char *test);
/* A number from the environment variable name (> 0), else dflt. */
int kl_env_int(const char *name, int dflt);
/* A draw in [0, n) from *state (splitmix64): the same seed, the same draws. */
uint32_t kl_draw(uint64_t *state, uint32_t n);

/* Makes the clients' accounts in a fresh currency; the load sends to the
 * env's server until kl_set_port says otherwise. */
void kl_init(struct kl_load *l, struct env *e, int clients, uint64_t seed);
void kl_start(struct kl_load *l);
void kl_set_port(struct kl_load *l, int port);
/* Waits (bounded by KL_RETRY_MAX_MS) until at least n more requests were
 * acknowledged than when called: the load is running. */
void kl_wait_acked(struct kl_load *l, int64_t n);
/* The same for n more attempts answered 503: the store is seen away. */
void kl_wait_unavailable(struct kl_load *l, int64_t n);
/* Asks every client to stop after its request in progress is answered, and
 * joins them. */
void kl_finish(struct kl_load *l);

struct kl_totals {
    int64_t ops, retries, replays, no_answer, unavailable, no_retry_after;
};
struct kl_totals kl_sum(const struct kl_load *l);

/* Fails the test unless: no client saw an answer other than 2xx, 503 or
 * none; every account holds exactly what its script adds up to; every
 * user has exactly the entitlements its script granted; the ledger's
 * invariants hold (rf_ledger_check) and `racefree reconcile` exits 0. */
void kl_check(struct kl_load *l);

#endif
