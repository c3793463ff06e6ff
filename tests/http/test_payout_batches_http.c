/*
 * test_payout_batches_http - payout batches under the payouts lease,
 * black-box, with several `racefree serve` processes on one store.
 *
 * Every test builds wallets in a currency of its own: some below the
 * minimum, one with a payout already pending (made with POST /v1/payouts),
 * the rest eligible; and checks the one outcome that matters (check_outcome):
 * every eligible wallet has exactly one batch payout, of its whole available
 * balance; no other wallet has one; the holds equal the eligible balances;
 * every batch that paid is completed and their totals sum to the eligible
 * balances; the ledger's invariants hold.
 *
 * Proves: a batch and its Idempotency-Key replay (200, Idempotent-Replayed),
 * 422 for the key with other terms, a second batch pays nobody twice; auth
 * (401 without a key, 403 for service, worker, readonly); two and then three
 * runs started at once on different processes (losers 409 lease_held, never
 * 5xx); a run killed with SIGKILL halfway is finished by a run on another
 * process with the same totals; a run whose lease expired mid-batch and was
 * taken over creates nothing more (409 stale_lease).
 */
#include "http_env.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define WALLETS 14
#define MIN_MINOR 500
#define BATCHES_MAX 8
#define PRE_PENDING_MINOR 100

struct fixture {
    char cur[4];
    char ids[WALLETS][64];
    int64_t balance[WALLETS];
    int64_t pre_pending[WALLETS]; /* a payout pending before the batch */
    int64_t eligible_sum;
    int n_eligible;
};

static bool eligible(const struct fixture *f, int i)
{
    return f->balance[i] - f->pre_pending[i] >= MIN_MINOR && f->pre_pending[i] == 0;
}

static void post_ok(struct env *e, const char *path, const char *body, int want)
{
    char h[160];
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    struct rf_t_resp r;
    env_req(e, "POST", path, e->service, body, hdrs, &r);
    RF_ASSERT_STATUS(&r, want);
    rf_resp_free(&r);
}

/* Wallets: every third below the minimum, wallet 1 with a pending payout
 * that leaves it above the minimum (the batch must skip it). */
static void fixture_make(struct env *e, struct fixture *f)
{
    memset(f, 0, sizeof *f);
    rand_currency(f->cur);
    char path[160], body[256];
    for (int i = 0; i < WALLETS; i++) {
        RID(f->ids[i], "w");
        env_account_create(e, f->ids[i], f->cur, false);
        f->balance[i] = i % 3 == 0 ? MIN_MINOR - 1 : MIN_MINOR + 100 * i;
        snprintf(path, sizeof path, "/v1/accounts/%s/credits", f->ids[i]);
        snprintf(body, sizeof body, "{\"amount_minor\": %lld}", (long long)f->balance[i]);
        post_ok(e, path, body, 201);
    }
    f->pre_pending[1] = PRE_PENDING_MINOR;
    snprintf(body, sizeof body,
             "{\"account\": \"%s\", \"amount_minor\": %d, \"currency\": \"%s\","
             " \"destination\": {\"provider\": \"manual\", \"ref\": \"x\"}}",
             f->ids[1], PRE_PENDING_MINOR, f->cur);
    post_ok(e, "/v1/payouts", body, 201);
    for (int i = 0; i < WALLETS; i++) {
        if (!eligible(f, i)) continue;
        f->n_eligible++;
        f->eligible_sum += f->balance[i];
    }
    assert_true(f->n_eligible >= 6 && f->balance[1] - PRE_PENDING_MINOR >= MIN_MINOR);
}

/* POST /v1/payout-batches to port with idem (NULL: none). */
static void batch_post(int port, const char *key, const struct fixture *f, int64_t min,
                       const char *idem, struct rf_t_resp *r)
{
    char body[128], h[160];
    snprintf(body, sizeof body, "{\"currency\": \"%s\", \"min_amount_minor\": %lld}", f->cur,
             (long long)min);
    snprintf(h, sizeof h, "Idempotency-Key: %s", idem ? idem : "");
    const char *hdrs[] = {h, NULL};
    rf_req(port, "POST", "/v1/payout-batches", key, body, idem ? hdrs : NULL, r);
}

static json_t *batch_get(struct env *e, const char *id)
{
    return env_get_json(e, e->readonly, "/v1/payout-batches/%s", id);
}

static int64_t nested_int(json_t *j, const char *obj, const char *name)
{
    json_t *v = json_object_get(json_object_get(j, obj), name);
    if (!json_is_integer(v)) fail_msg("%s.%s is not an integer", obj, name);
    return json_integer_value(v);
}

struct seen {
    int per_wallet[WALLETS];
    char batches[BATCHES_MAX][64];
    int n_batches;
};

/* One listed payout of the fixture's currency, into s. */
static void seen_payout(const struct fixture *f, json_t *p, struct seen *s)
{
    json_t *meta = json_object_get(p, "metadata");
    const char *batch = json_is_object(meta) ? rf_t_json_str(meta, "payout_batch_id") : "";
    if (!*batch) return; /* the manual one */
    int w = -1;
    for (int i = 0; i < WALLETS; i++)
        if (strcmp(f->ids[i], rf_t_json_str(p, "account")) == 0) w = i;
    assert_true(w >= 0);
    s->per_wallet[w]++;
    assert_int_equal(rf_t_json_int(p, "amount_minor"), f->balance[w]);
    int k = 0;
    while (k < s->n_batches && strcmp(s->batches[k], batch) != 0) k++;
    if (k == s->n_batches) {
        assert_true(k < BATCHES_MAX);
        snprintf(s->batches[s->n_batches++], sizeof s->batches[0], "%s", batch);
    }
}

/* Every payout of the store, following cursors, into s. */
static void seen_all(struct env *e, const struct fixture *f, struct seen *s)
{
    memset(s, 0, sizeof *s);
    char path[400] = "/v1/payouts?limit=500";
    for (int page = 0; page < 100; page++) {
        struct rf_t_resp r;
        env_req(e, "GET", path, e->readonly, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r), *data = json_object_get(j, "data"), *p;
        size_t i;
        json_array_foreach(data, i, p)
            if (strcmp(rf_t_json_str(p, "currency"), f->cur) == 0) seen_payout(f, p, s);
        const char *next = rf_t_json_str(j, "next"); /* "": the last page */
        bool more = *next;
        char enc[300];
        if (more) assert_int_equal(rf_urlencode(next, enc, sizeof enc) >= 0, 1);
        if (more) snprintf(path, sizeof path, "/v1/payouts?limit=500&after=%s", enc);
        json_decref(j);
        rf_resp_free(&r);
        if (!more) return;
    }
    fail_msg("payout list did not end");
}

static void check_outcome(struct env *e, const struct fixture *f)
{
    struct seen s;
    seen_all(e, f, &s);
    for (int i = 0; i < WALLETS; i++) {
        if (s.per_wallet[i] != (eligible(f, i) ? 1 : 0))
            fail_msg("wallet %d (%s, balance %lld): %d batch payouts", i, f->ids[i],
                     (long long)f->balance[i], s.per_wallet[i]);
        struct bal b = env_balance(e, f->ids[i]);
        assert_int_equal(b.pending_debits, eligible(f, i) ? f->balance[i] : f->pre_pending[i]);
        assert_int_equal(b.available,
                         eligible(f, i) ? 0 : f->balance[i] - f->pre_pending[i]);
    }
    int64_t total = 0, created = 0;
    for (int k = 0; k < s.n_batches; k++) {
        json_t *b = batch_get(e, s.batches[k]);
        assert_string_equal(rf_t_json_str(b, "status"), "completed");
        total += nested_int(b, "totals", "amount_minor");
        created += nested_int(b, "progress", "payouts_created");
        json_decref(b);
    }
    assert_int_equal(total, f->eligible_sum);
    assert_int_equal(created, f->n_eligible);
    env_ledger_check(e, 1);
}

/* The test hook on the server at port. */
static void hook_batch(struct env *e, int port, int pause_ms, int chunk, int ttl_ms)
{
    char body[160];
    snprintf(body, sizeof body, "{\"pause_ms\": %d, \"chunk_wallets\": %d, \"lease_ttl_ms\": %d}",
             pause_ms, chunk, ttl_ms);
    struct rf_t_resp r;
    rf_req(port, "POST", "/v1/_test/payout-batch", e->admin, body, NULL, &r);
    RF_ASSERT_STATUS(&r, 204);
    rf_resp_free(&r);
}

static void test_batch_replay_and_auth(void **state)
{
    (void)state;
    struct env e;
    env_start_fresh(&e, true, NULL);
    hook_batch(&e, e.srv.port, 0, 4, 0);
    struct fixture f;
    fixture_make(&e, &f);
    char idem[64];
    RID(idem, "batch");
    struct rf_t_resp r, again;
    batch_post(e.srv.port, e.admin, &f, MIN_MINOR, idem, &r);
    if (r.status != 201) rf_server_dump_log(&e.srv, 8192);
    RF_ASSERT_STATUS(&r, 201);
    json_t *b = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(b, "status"), "completed");
    assert_int_equal(nested_int(b, "progress", "wallets_scanned"), WALLETS);
    assert_int_equal(nested_int(b, "progress", "skipped_pending"), 1);
    json_decref(b);
    check_outcome(&e, &f);

    batch_post(e.srv.port, e.admin, &f, MIN_MINOR, idem, &again);
    RF_ASSERT_STATUS(&again, 200);
    assert_true(resp_replayed(&again));
    assert_string_equal(again.body, r.body);
    rf_resp_free(&again);
    rf_resp_free(&r);
    batch_post(e.srv.port, e.admin, &f, MIN_MINOR + 1, idem, &r);
    RF_ASSERT_PROBLEM(&r, 422, "idempotency_key_reused");
    rf_resp_free(&r);
    /* Another batch finds nothing left to pay. */
    RID(idem, "batch");
    batch_post(e.srv.port, e.admin, &f, MIN_MINOR, idem, &r);
    RF_ASSERT_STATUS(&r, 201);
    b = rf_resp_json(&r);
    assert_int_equal(nested_int(b, "totals", "payouts"), 0);
    json_decref(b);
    rf_resp_free(&r);
    check_outcome(&e, &f);

    batch_post(e.srv.port, e.admin, &f, MIN_MINOR, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 400, "idempotency_key_required");
    rf_resp_free(&r);
    batch_post(e.srv.port, NULL, &f, MIN_MINOR, idem, &r);
    RF_ASSERT_PROBLEM(&r, 401, "unauthenticated");
    rf_resp_free(&r);
    const char *denied[] = {e.service, e.worker, e.readonly};
    for (int i = 0; i < 3; i++) {
        batch_post(e.srv.port, denied[i], &f, MIN_MINOR, idem, &r);
        RF_ASSERT_PROBLEM(&r, 403, "forbidden");
        rf_resp_free(&r);
    }
    env_req(&e, "GET", "/v1/payout-batches/no-such-batch", e.worker, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    env_req(&e, "GET", "/v1/payout-batches/no-such-batch", e.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "payout_batch_not_found");
    rf_resp_free(&r);
    env_stop(&e);
}

/* n runs at once, one per server; each 201 or 409 lease_held. */
static void concurrent_round(struct env *e, const int *ports, int n)
{
    struct fixture f;
    fixture_make(e, &f);
    static struct rf_par_req reqs[3];
    static char hdrs[3][160];
    char body[128];
    snprintf(body, sizeof body, "{\"currency\": \"%s\", \"min_amount_minor\": %d}", f.cur,
             MIN_MINOR);
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < n; i++) {
        idem_hdr_fresh(hdrs[i], sizeof hdrs[i]);
        reqs[i] = (struct rf_par_req){.port = ports[i], .method = "POST", .api_key = e->admin,
                                      .body = body, .headers = {hdrs[i], NULL}};
        snprintf(reqs[i].path, sizeof reqs[i].path, "/v1/payout-batches");
    }
    assert_int_equal(rf_parallel(reqs, n), 0);
    env_no_5xx(reqs, n);
    int ran = 0;
    for (int i = 0; i < n; i++) {
        if (reqs[i].resp.status == 201) ran++;
        else RF_ASSERT_PROBLEM(&reqs[i].resp, 409, "lease_held");
    }
    print_message("%d runs at once: %d ran, %d lease_held\n", n, ran, n - ran);
    assert_true(ran >= 1);
    rf_par_free(reqs, n);
    check_outcome(e, &f);
}

static const char *const hooks_arg[] = {"--test-hooks", NULL};

static void test_batch_runs_at_once_on_three_processes(void **state)
{
    (void)state;
    struct env e;
    env_start_fresh(&e, true, NULL);
    struct rf_server more[2];
    for (int i = 0; i < 2; i++)
        if (rf_server_start(e.db, hooks_arg, &more[i]) != 0) fail_msg("server %d", i + 2);
    int ports[3] = {e.srv.port, more[0].port, more[1].port};
    for (int i = 0; i < 3; i++) hook_batch(&e, ports[i], 20, 3, 0); /* runs overlap */
    concurrent_round(&e, ports, 2);
    concurrent_round(&e, ports, 3);
    for (int i = 0; i < 2; i++) assert_int_equal(rf_server_stop(&more[i], 0), 0);
    env_stop(&e);
}

/* A batch request on its own thread (it blocks for the whole run). */
struct bg_post {
    pthread_t th;
    int port;
    const char *key;
    const struct fixture *f;
    char idem[64];
    struct rf_t_resp resp;
};

static void *bg_run(void *arg)
{
    struct bg_post *b = arg;
    batch_post(b->port, b->key, b->f, MIN_MINOR, b->idem, &b->resp);
    return NULL;
}

static void bg_start(struct bg_post *b, int port, const char *key, const struct fixture *f)
{
    memset(b, 0, sizeof *b);
    b->port = port;
    b->key = key;
    b->f = f;
    RID(b->idem, "bg");
    assert_int_equal(pthread_create(&b->th, NULL, bg_run, b), 0);
}

/* Waits (bounded) until some batch paid a wallet of f; its batch id. */
static void wait_first_payout(struct env *e, const struct fixture *f, char *batch, size_t cap)
{
    int64_t deadline = rf_t_now_ms() + 20000;
    for (;;) {
        struct seen s;
        seen_all(e, f, &s);
        if (s.n_batches > 0) {
            snprintf(batch, cap, "%s", s.batches[0]);
            return;
        }
        if (rf_t_now_ms() > deadline) fail_msg("the batch made no payout");
        rf_t_sleep_ms(20);
    }
}

/* Posts to port until the run gets the lease (the other's must expire). */
static void post_until_run(struct env *e, int port, const struct fixture *f,
                           struct rf_t_resp *r)
{
    char idem[64];
    RID(idem, "second");
    int64_t deadline = rf_t_now_ms() + 20000;
    for (;;) {
        batch_post(port, e->admin, f, MIN_MINOR, idem, r);
        if (r->status != 409) return;
        RF_ASSERT_PROBLEM(r, 409, "lease_held");
        rf_resp_free(r);
        if (rf_t_now_ms() > deadline) fail_msg("the payouts lease never came free");
        rf_t_sleep_ms(50);
    }
}

/* Two processes on a fresh store: `slow` pauses pause_ms after every chunk
 * (holding the payouts lease for ttl_ms), the env's own server runs
 * straight; a batch is started on slow and has paid a first chunk. */
struct slow_run {
    struct env e;
    struct rf_server slow;
    struct fixture f;
    struct bg_post bg;
    char first[64]; /* the slow run's batch */
};

static void slow_run_start(struct slow_run *s, int pause_ms, int ttl_ms)
{
    env_start_fresh(&s->e, true, NULL);
    if (rf_server_start(s->e.db, hooks_arg, &s->slow) != 0) fail_msg("second server");
    hook_batch(&s->e, s->slow.port, pause_ms, 3, ttl_ms);
    hook_batch(&s->e, s->e.srv.port, 0, 3, 0);
    fixture_make(&s->e, &s->f);
    bg_start(&s->bg, s->slow.port, s->e.admin, &s->f);
    wait_first_payout(&s->e, &s->f, s->first, sizeof s->first);
}

static void test_batch_killed_halfway_is_finished_elsewhere(void **state)
{
    (void)state;
    static struct slow_run s;
    slow_run_start(&s, 1000, 800);
    json_t *b = batch_get(&s.e, s.first);
    assert_string_equal(rf_t_json_str(b, "status"), "running"); /* halfway */
    json_decref(b);
    assert_int_equal(rf_server_signal(&s.slow, SIGKILL), 0);
    rf_server_wait(&s.slow, 20000);
    pthread_join(s.bg.th, NULL);
    assert_true(s.bg.resp.status == 0); /* it never answered */
    rf_resp_free(&s.bg.resp);

    struct rf_t_resp r;
    post_until_run(&s.e, s.e.srv.port, &s.f, &r);
    RF_ASSERT_STATUS(&r, 201);
    b = rf_resp_json(&r);
    assert_int_equal(nested_int(b, "totals", "payouts"), 0); /* the killed batch paid them */
    json_decref(b);
    rf_resp_free(&r);
    b = batch_get(&s.e, s.first);
    assert_int_equal(nested_int(b, "progress", "payouts_created"), s.f.n_eligible);
    json_decref(b);
    check_outcome(&s.e, &s.f);
    env_stop(&s.e);
}

static void test_batch_taken_over_is_fenced(void **state)
{
    (void)state;
    static struct slow_run s;
    slow_run_start(&s, 3000, 200); /* its lease expires in every pause */
    struct rf_t_resp r;
    post_until_run(&s.e, s.e.srv.port, &s.f, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    pthread_join(s.bg.th, NULL);
    RF_ASSERT_PROBLEM(&s.bg.resp, 409, "stale_lease"); /* it woke to a newer token */
    rf_resp_free(&s.bg.resp);
    check_outcome(&s.e, &s.f);
    assert_int_equal(rf_server_stop(&s.slow, 0), 0);
    env_stop(&s.e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_replay_and_auth),
        cmocka_unit_test(test_batch_runs_at_once_on_three_processes),
        cmocka_unit_test(test_batch_killed_halfway_is_finished_elsewhere),
        cmocka_unit_test(test_batch_taken_over_is_fenced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
