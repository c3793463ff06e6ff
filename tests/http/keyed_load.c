/*
 * keyed_load.c - see keyed_load.h.
 */
#include "keyed_load.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define KL_AMOUNT_MAX 1000   /* minor units of one credit or transfer */
#define KL_RETRY_SLEEP_MS 10 /* between attempts of one request */

uint32_t kl_draw(uint64_t *state, uint32_t n)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (uint32_t)(z % n);
}

int kl_env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    long n = v && *v ? strtol(v, NULL, 10) : 0;
    return n > 0 && n < 1000000 ? (int)n : dflt;
}

uint64_t kl_seed(const char *test)
{
    const char *v = getenv("RACEFREE_CRASH_SEED");
    uint64_t seed = v && *v ? strtoull(v, NULL, 0)
                            : ((uint64_t)time(NULL) << 20) ^ rf_rand_below(1u << 20);
    fprintf(stderr, "%s: seed %" PRIu64 " (repeat with RACEFREE_CRASH_SEED=%" PRIu64 ")\n", test,
            seed, seed);
    return seed;
}

void kl_init(struct kl_load *l, struct env *e, int clients, uint64_t seed)
{
    assert_true(clients >= 1 && clients <= KL_CLIENTS_MAX);
    memset(l, 0, sizeof *l);
    l->e = e;
    l->n_clients = clients;
    l->seed = seed;
    atomic_init(&l->port, e->srv.port);
    RID(l->run, "kl");
    rand_currency(l->cur);
    for (int i = 0; i < clients; i++) {
        struct kl_client *c = &l->c[i];
        c->rng = seed ^ (0x100000001b3ULL * (uint64_t)(i + 1));
        snprintf(c->acct_a, sizeof c->acct_a, "%s-a%d", l->run, i);
        snprintf(c->acct_b, sizeof c->acct_b, "%s-b%d", l->run, i);
        snprintf(c->user, sizeof c->user, "%s-u%d", l->run, i);
        env_account_create(e, c->acct_a, l->cur, true);
        env_account_create(e, c->acct_b, l->cur, false);
    }
}

void kl_set_port(struct kl_load *l, int port) { atomic_store(&l->port, port); }

/* One request of the script, sent until it gets a definite answer. */
struct kl_req {
    const char *method;
    char path[256];
    char body[400];
    char key_hdr[160];
};

static void bad(struct kl_client *c, int status, const struct kl_req *q, const char *what)
{
    if (c->bad_status != 0)
        return;
    c->bad_status = status;
    int n = snprintf(c->bad_what, sizeof c->bad_what, "%s %s: %.300s", q->method, q->path, what);
    (void)n; /* a long answer is cut: the start says what went wrong */
}

/* A 503 that says the store is away (not that the server is overloaded or
 * shutting down: this load never provokes those). */
static bool store_away(const struct rf_t_resp *r)
{
    char code[64];
    rf_problem_code(r, code, sizeof code);
    return strcmp(code, "store_unavailable") == 0 || strcmp(code, "outcome_unknown") == 0;
}

/* Sends q until it is answered 2xx (true), or something else definite
 * (false, recorded as bad). */
static bool send_until_answered(struct kl_load *l, struct kl_client *c, const struct kl_req *q)
{
    const char *hdrs[] = {q->key_hdr, NULL};
    int64_t t0 = rf_t_now_ms();
    for (int attempt = 0;; attempt++) {
        struct rf_t_resp r;
        const char *body = q->body[0] ? q->body : NULL;
        rf_req(atomic_load(&l->port), q->method, q->path, l->e->service, body, hdrs, &r);
        int s = r.status;
        if (attempt > 0)
            c->retries++;
        if (s >= 200 && s <= 299) {
            if (attempt > 0 && resp_replayed(&r))
                c->replays++;
            rf_resp_free(&r);
            return true;
        }
        if (s == 0)
            c->no_answer++;
        else if (s == 503 && store_away(&r)) {
            c->unavailable++;
            atomic_fetch_add(&l->unavailable, 1);
            c->no_retry_after += rf_resp_header(&r, "Retry-After") == NULL;
        } else {
            bad(c, s, q, r.body ? r.body : "");
            rf_resp_free(&r);
            return false;
        }
        rf_resp_free(&r);
        if (rf_t_now_ms() - t0 > KL_RETRY_MAX_MS) {
            bad(c, -1, q, "no definite answer within KL_RETRY_MAX_MS");
            return false;
        }
        rf_t_sleep_ms(KL_RETRY_SLEEP_MS);
    }
}

/* The next request of c's script; *da and *db (what it adds to a and b)
 * count only once it is acknowledged. */
static void next_req(struct kl_load *l, struct kl_client *c, int64_t n, struct kl_req *q,
                     int64_t *da, int64_t *db, bool *grant)
{
    memset(q, 0, sizeof *q);
    snprintf(q->key_hdr, sizeof q->key_hdr, "Idempotency-Key: %s-%s-%" PRId64, l->run, c->user, n);
    int64_t amount = 1 + kl_draw(&c->rng, KL_AMOUNT_MAX);
    *da = *db = 0;
    *grant = false;
    switch (kl_draw(&c->rng, 3)) {
    case 0:
        q->method = "POST";
        snprintf(q->path, sizeof q->path, "/v1/accounts/%s/credits", c->acct_a);
        snprintf(q->body, sizeof q->body, "{\"amount_minor\": %" PRId64 "}", amount);
        *da = amount;
        break;
    case 1:
        q->method = "POST";
        snprintf(q->path, sizeof q->path, "/v1/transfers");
        snprintf(q->body, sizeof q->body,
                 "{\"debit_account\": \"%s\", \"credit_account\": \"%s\","
                 " \"amount_minor\": %" PRId64 ", \"currency\": \"%s\"}",
                 c->acct_a, c->acct_b, amount, l->cur);
        *da = -amount;
        *db = amount;
        break;
    default:
        q->method = "PUT";
        char key[32];
        snprintf(key, sizeof key, "g%d", c->grants);
        ent_path(q->path, sizeof q->path, c->user, key);
        *grant = true;
        break;
    }
}

struct kl_arg {
    struct kl_load *l;
    int idx;
};

static void *client_main(void *arg)
{
    struct kl_load *l = ((struct kl_arg *)arg)->l;
    struct kl_client *c = &l->c[((struct kl_arg *)arg)->idx];
    free(arg);
    for (int64_t n = 0; !atomic_load(&l->stop); n++) {
        struct kl_req q;
        int64_t da, db;
        bool grant;
        next_req(l, c, n, &q, &da, &db, &grant);
        /* Issued: from here on its effect is owed, whatever the answers. */
        c->want_a += da;
        c->want_b += db;
        c->grants += grant;
        if (!send_until_answered(l, c, &q)) {
            atomic_fetch_add(&l->failed, 1);
            return NULL;
        }
        c->ops++;
        atomic_fetch_add(&l->acked, 1);
    }
    return NULL;
}

void kl_start(struct kl_load *l)
{
    for (int i = 0; i < l->n_clients; i++) {
        struct kl_arg *a = malloc(sizeof *a);
        assert_non_null(a);
        *a = (struct kl_arg){l, i};
        assert_int_equal(pthread_create(&l->threads[i], NULL, client_main, a), 0);
    }
}

/* Fails the test with the first bad answer a client stopped on. */
static void no_client_failed(struct kl_load *l)
{
    if (atomic_load(&l->failed) == 0)
        return;
    for (int i = 0; i < l->n_clients; i++)
        if (l->c[i].bad_status != 0)
            fail_msg("client %d: answer %d: %s", i, l->c[i].bad_status, l->c[i].bad_what);
}

static void wait_count(struct kl_load *l, atomic_llong *count, int64_t n, const char *what)
{
    int64_t from = atomic_load(count), t0 = rf_t_now_ms();
    while (atomic_load(count) < from + n) {
        no_client_failed(l);
        if (rf_t_now_ms() - t0 > KL_RETRY_MAX_MS)
            fail_msg("the load had %lld %s in %d ms, waiting for %lld",
                     (long long)(atomic_load(count) - from), what, KL_RETRY_MAX_MS, (long long)n);
        rf_t_sleep_ms(5);
    }
}

void kl_wait_acked(struct kl_load *l, int64_t n)
{
    wait_count(l, &l->acked, n, "requests acknowledged");
}

void kl_wait_unavailable(struct kl_load *l, int64_t n)
{
    wait_count(l, &l->unavailable, n, "answers 503");
}

void kl_finish(struct kl_load *l)
{
    atomic_store(&l->stop, true);
    for (int i = 0; i < l->n_clients; i++)
        pthread_join(l->threads[i], NULL);
}

struct kl_totals kl_sum(const struct kl_load *l)
{
    struct kl_totals t = {0};
    for (int i = 0; i < l->n_clients; i++) {
        const struct kl_client *c = &l->c[i];
        t.ops += c->ops;
        t.retries += c->retries;
        t.replays += c->replays;
        t.no_answer += c->no_answer;
        t.unavailable += c->unavailable;
        t.no_retry_after += c->no_retry_after;
    }
    return t;
}

/* `racefree reconcile --db URL` must find nothing. */
static void reconcile_clean(struct env *e)
{
    static char out[RF_T_CLI_OUT_BYTES], err[RF_T_CLI_OUT_BYTES];
    const char *args[] = {"reconcile", "--db", e->db, NULL};
    int rc = rf_cli_run(args, out, sizeof out, err, sizeof err, 0);
    if (rc != 0)
        fail_msg("racefree reconcile exited %d:\n%.4000s\n%.4000s", rc, out, err);
}

void kl_check(struct kl_load *l)
{
    for (int i = 0; i < l->n_clients; i++) {
        const struct kl_client *c = &l->c[i];
        if (c->bad_status != 0)
            fail_msg("client %d: answer %d: %s", i, c->bad_status, c->bad_what);
    }
    for (int i = 0; i < l->n_clients; i++) {
        const struct kl_client *c = &l->c[i];
        struct bal a = env_balance(l->e, c->acct_a), b = env_balance(l->e, c->acct_b);
        if (a.posted != c->want_a || b.posted != c->want_b)
            fail_msg("client %d after %lld requests: %s holds %lld (script: %lld), %s holds %lld "
                     "(script: %lld): an effect was lost or applied twice",
                     i, (long long)c->ops, c->acct_a, (long long)a.posted, (long long)c->want_a,
                     c->acct_b, (long long)b.posted, (long long)c->want_b);
        assert_int_equal(a.pending_debits + a.pending_credits + b.pending_debits, 0);
        assert_int_equal(list_all_count(l->e, c->user, "all"), c->grants);
    }
    env_ledger_check(l->e, 1);
    reconcile_clean(l->e);
}
