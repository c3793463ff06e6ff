/*
 * test_jobs_http - the job queue and drop-in processing over HTTP, on real
 * `racefree serve` processes (with --test-hooks --maintenance-interval-ms so
 * expired leases are rescued within a fraction of a second).
 *
 * Proves:
 *  - a unique_key is a job's identity while it is live: 32 parallel
 *    enqueues make one job (one 201, 31 x 200 with its id); once it
 *    completed, the key makes a new job;
 *  - 64 workers over 1,000 jobs (two servers on SQLite, three on
 *    PostgreSQL): no job is held by two live claims, every job is completed
 *    exactly once, none is lost, every claim the server made was answered
 *    to a worker (a job's token counts the claims workers saw of it); 8 workers that claim and never finish (as
 *    if killed) lose their jobs to the rescue, others complete them, and
 *    their late completes are 409 stale_lease;
 *  - fail with attempts left -> available (retry_in_ms, or the backoff:
 *    500..1000 ms after the first attempt), the last attempt -> failed;
 *    cancel -> canceled, a stale token then, a second cancel 409
 *    invalid_state; a heartbeat keeps a short lease from being rescued;
 *    once rescued and claimed again, the first claim's token can neither
 *    complete nor fail the job;
 *  - 32 parallel drop-in triggers of one photo -> one job; a completed job
 *    is returned again; a canceled one lets a trigger enqueue a fresh one;
 *    32 parallel identical match records -> one row;
 *  - roles: the drop-in trigger is service-only (401 without a key, 403
 *    for worker, readonly, admin), readonly cannot claim, worker cannot
 *    enqueue; bad input is 400 with the field named.
 */
#include "http_env.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_JOBS 1000
#define N_WORKERS 64
#define N_KILLED 8
#define PAR 32
#define KILLED_LEASE_MS 300
#define RUN_DEADLINE_MS 150000
#define RF_DROPIN_QUEUE_NAME "drop-in"
#define SHORT_LEASE_MS 500
#define PAST_LEASE_MS 1500 /* a short lease and several sweeps */

static const char *const hook_args[] = {"--maintenance-interval-ms", "100", NULL};
static const char *const server_args[] = {"--test-hooks", "--maintenance-interval-ms", "100",
                                          NULL};
static struct env g;

static int group_setup(void **state) {
    (void)state;
    env_start(&g, true, hook_args);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    env_stop(&g);
    return 0;
}

/* POST path with body as key on port; the parsed body (json_decref). */
static json_t *post(int port, const char *path, const char *key, const char *body, int want) {
    struct rf_t_resp r;
    rf_req(port, "POST", path, key, body, NULL, &r);
    RF_ASSERT_STATUS(&r, want);
    json_t *j = rf_resp_json(&r);
    rf_resp_free(&r);
    assert_non_null(j);
    return j;
}

static void post_problem(const char *path, const char *key, const char *body, int status,
                         const char *code) {
    struct rf_t_resp r;
    rf_req(g.srv.port, "POST", path, key, body, NULL, &r);
    RF_ASSERT_PROBLEM(&r, status, code);
    rf_resp_free(&r);
}

static json_t *enqueue(const char *queue, const char *extra, int want) {
    char body[512];
    snprintf(body, sizeof body, "{\"queue\":\"%s\",\"kind\":\"t.kind\",\"payload\":{\"n\":1}%s}",
             queue, extra ? extra : "");
    return post(g.srv.port, "/v1/jobs", g.service, body, want);
}

/* Claims from queue (one job expected, or none when want_n is 0). */
static json_t *claim_one(const char *queue, int lease_ms, int want_n) {
    char path[256], body[128];
    snprintf(path, sizeof path, "/v1/queues/%s/claim", queue);
    snprintf(body, sizeof body, "{\"worker_id\":\"w-test\",\"lease_ms\":%d,\"max_jobs\":1}",
             lease_ms);
    json_t *j = post(g.srv.port, path, g.worker, body, 200);
    json_t *data = json_object_get(j, "data");
    assert_int_equal((int)json_array_size(data), want_n);
    json_t *job = want_n ? json_incref(json_array_get(data, 0)) : NULL;
    json_decref(j);
    return job;
}

static json_t *job_call(const char *id, const char *what, const char *body, int want) {
    char path[256];
    snprintf(path, sizeof path, "/v1/jobs/%s/%s", id, what);
    return post(g.srv.port, path, g.worker, body, want);
}

static void job_call_problem(const char *id, const char *what, const char *key,
                             const char *body, int status, const char *code) {
    char path[256];
    snprintf(path, sizeof path, "/v1/jobs/%s/%s", id, what);
    post_problem(path, key, body, status, code);
}

static int64_t time_ms(const char *s) {
    struct tm tm = {0};
    int ms = 0;
    assert_non_null(s);
    assert_true(sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                       &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) == 7);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static void par_same(struct rf_par_req *reqs, const char *method, const char *path,
                     const char *key, const char *body) {
    memset(reqs, 0, sizeof(struct rf_par_req) * PAR);
    for (int i = 0; i < PAR; i++) {
        reqs[i] = (struct rf_par_req){.port = g.srv.port, .method = method, .api_key = key,
                                      .body = body};
        snprintf(reqs[i].path, sizeof reqs[i].path, "%s", path);
    }
    assert_int_equal(rf_parallel(reqs, PAR), 0);
}

/* One 201 and the rest 200, all naming one id (copied into id). */
static void one_created(struct rf_par_req *reqs, char *id, size_t cap) {
    int n201 = 0;
    id[0] = '\0';
    for (int i = 0; i < PAR; i++) {
        if (reqs[i].resp.status != 200) RF_ASSERT_STATUS(&reqs[i].resp, 201);
        n201 += reqs[i].resp.status == 201;
        json_t *j = rf_resp_json(&reqs[i].resp);
        if (!id[0]) snprintf(id, cap, "%s", rf_t_json_str(j, "id"));
        assert_string_equal(rf_t_json_str(j, "id"), id);
        json_decref(j);
    }
    assert_int_equal(n201, 1);
    rf_par_free(reqs, PAR);
}

/* Enqueues into queue (201) and copies the new job's id into id. */
static void enqueue_id(const char *queue, const char *extra, char *id, size_t cap) {
    json_t *j = enqueue(queue, extra, 201);
    snprintf(id, cap, "%s", rf_t_json_str(j, "id"));
    json_decref(j);
}

/* ---- unique_key ------------------------------------------------------------ */

static void test_unique_key_race(void **state) {
    (void)state;
    char queue[64], ukey[64], body[512];
    RID(queue, "q");
    RID(ukey, "uk");
    snprintf(body, sizeof body,
             "{\"queue\":\"%s\",\"kind\":\"k\",\"payload\":{},\"unique_key\":\"%s\"}", queue, ukey);
    static struct rf_par_req reqs[PAR];
    char id[128];
    par_same(reqs, "POST", "/v1/jobs", g.service, body);
    one_created(reqs, id, sizeof id);

    /* Completed: the key is free for a new job. */
    json_t *job = claim_one(queue, 30000, 1);
    assert_string_equal(rf_t_json_str(job, "id"), id);
    char tok[64];
    snprintf(tok, sizeof tok, "{\"token\":%lld}", (long long)rf_t_json_int(job, "token"));
    json_decref(job_call(id, "complete", tok, 200));
    json_decref(job);
    json_t *again = post(g.srv.port, "/v1/jobs", g.service, body, 201);
    assert_string_not_equal(rf_t_json_str(again, "id"), id);
    json_t *third = post(g.srv.port, "/v1/jobs", g.service, body, 200);
    assert_string_equal(rf_t_json_str(third, "id"), rf_t_json_str(again, "id"));
    json_decref(again);
    json_decref(third);
}

/* ---- 64 workers ------------------------------------------------------------ */

struct job_track {
    char id[64];
    int completes;        /* 200s of /complete */
    int64_t live_token;   /* a normal worker's unfinished claim; 0: none */
    unsigned tokens_seen; /* bit t: a claim got token t */
};

struct run {
    int ports[3];
    int n_ports;
    const char *worker_key;
    char queue[64];
    pthread_mutex_t mu;
    struct job_track jobs[N_JOBS];
    atomic_int done;
    atomic_int violations;
    atomic_int stale_ok;
    int64_t deadline;
    /* what the killed workers held: (job index, token) */
    int killed_n;
    int killed_job[N_KILLED * 4];
    int64_t killed_token[N_KILLED * 4];
};

static struct run R;

static int job_index(const char *id) {
    for (int i = 0; i < N_JOBS; i++)
        if (strcmp(R.jobs[i].id, id) == 0) return i;
    return -1;
}

static void enqueue_part(int idx, void *ctx) {
    (void)ctx;
    for (int i = idx; i < N_JOBS; i += 8) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"queue\":\"%s\",\"kind\":\"k\",\"payload\":{\"i\":%d},\"priority\":%d}",
                 R.queue, i, i % 3);
        struct rf_t_resp r;
        rf_req(R.ports[i % R.n_ports], "POST", "/v1/jobs", g.service, body, NULL, &r);
        json_t *j = r.status == 201 ? rf_resp_json(&r) : NULL;
        if (!j) atomic_fetch_add(&R.violations, 1);
        else snprintf(R.jobs[i].id, sizeof R.jobs[i].id, "%s", rf_t_json_str(j, "id"));
        json_decref(j);
        rf_resp_free(&r);
    }
}

/* Records a claim; false when the job already had a live claim of a worker
 * that is still working on it, or the token was handed out before. */
static bool claim_seen(int k, int64_t token, bool killed) {
    pthread_mutex_lock(&R.mu);
    struct job_track *t = &R.jobs[k];
    bool ok = token >= 1 && token < 32 && !(t->tokens_seen & (1u << token)) && !t->live_token;
    if (token >= 1 && token < 32) t->tokens_seen |= 1u << token;
    if (!killed) t->live_token = token;
    if (killed && R.killed_n < N_KILLED * 4) {
        R.killed_job[R.killed_n] = k;
        R.killed_token[R.killed_n++] = token;
    }
    pthread_mutex_unlock(&R.mu);
    return ok;
}

static void complete_one(int port, int k, int64_t token) {
    char path[256], body[64];
    snprintf(path, sizeof path, "/v1/jobs/%s/complete", R.jobs[k].id);
    snprintf(body, sizeof body, "{\"token\":%lld,\"result\":{\"ok\":true}}", (long long)token);
    struct rf_t_resp r;
    rf_req(port, "POST", path, R.worker_key, body, NULL, &r);
    pthread_mutex_lock(&R.mu);
    if (r.status == 200) {
        R.jobs[k].completes++;
        R.jobs[k].live_token = 0;
    }
    pthread_mutex_unlock(&R.mu);
    if (r.status == 200) atomic_fetch_add(&R.done, 1);
    else atomic_fetch_add(&R.violations, 1); /* a normal worker's lease never expires */
    rf_resp_free(&r);
}

/* One claim round: the jobs claimed, each recorded; killed workers keep them. */
static int claim_round(int idx, bool killed) {
    int port = R.ports[idx % R.n_ports];
    char path[256], body[160];
    snprintf(path, sizeof path, "/v1/queues/%s/claim", R.queue);
    snprintf(body, sizeof body, "{\"worker_id\":\"w%d\",\"lease_ms\":%d,\"max_jobs\":%d}", idx,
             killed ? KILLED_LEASE_MS : 60000, killed ? 2 : 1 + idx % 4);
    struct rf_t_resp r;
    rf_req(port, "POST", path, R.worker_key, body, NULL, &r);
    json_t *j = r.status == 200 ? rf_resp_json(&r) : NULL;
    if (!j) atomic_fetch_add(&R.violations, 1);
    rf_resp_free(&r);
    json_t *data = json_object_get(j, "data");
    int n = (int)json_array_size(data);
    for (int i = 0; i < n; i++) {
        json_t *job = json_array_get(data, (size_t)i);
        int k = job_index(rf_t_json_str(job, "id"));
        int64_t token = rf_t_json_int(job, "token");
        if (k < 0 || !claim_seen(k, token, killed)) atomic_fetch_add(&R.violations, 1);
        else if (!killed) complete_one(port, k, token);
    }
    json_decref(j);
    return n;
}

static void worker(int idx, void *ctx) {
    (void)ctx;
    bool killed = idx < N_KILLED;
    if (killed) {
        claim_round(idx, true); /* claims, then "dies" holding what it got */
        return;
    }
    while (atomic_load(&R.done) < N_JOBS && rf_t_now_ms() < R.deadline)
        if (claim_round(idx, false) == 0) rf_t_sleep_ms(20);
}

static void stats_check(int port, const char *queue) {
    char path[256];
    snprintf(path, sizeof path, "/v1/queues/%s/stats", queue);
    struct rf_t_resp r;
    rf_req(port, "GET", path, g.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r), *counts = json_object_get(j, "counts");
    assert_int_equal(rf_t_json_int(counts, "completed"), N_JOBS);
    assert_int_equal(rf_t_json_int(counts, "available"), 0);
    assert_int_equal(rf_t_json_int(counts, "running"), 0);
    json_decref(j);
    rf_resp_free(&r);
}

/* Every claim the server made was told to a worker: a job's token (one per
 * claim) equals the claims the workers saw of it, and it is completed. A
 * claim that moved more jobs than it answered would leave a job with a
 * token nobody saw. */
static void claims_told(int port) {
    for (int i = 0; i < N_JOBS; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/jobs/%s", R.jobs[i].id);
        struct rf_t_resp r;
        rf_req(port, "GET", path, g.readonly, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r);
        assert_string_equal(rf_t_json_str(j, "status"), "completed");
        if (rf_t_json_int(j, "token") != __builtin_popcount(R.jobs[i].tokens_seen))
            fail_msg("job %s: token %lld, claims seen %d", R.jobs[i].id,
                     (long long)rf_t_json_int(j, "token"),
                     __builtin_popcount(R.jobs[i].tokens_seen));
        json_decref(j);
        rf_resp_free(&r);
    }
}

static void test_64_workers(void **state) {
    (void)state;
    struct rf_server extra[2];
    int n_extra = rf_test_db_is_pg() ? 2 : 1;
    memset(&R, 0, sizeof R);
    pthread_mutex_init(&R.mu, NULL);
    R.ports[0] = g.srv.port;
    for (int i = 0; i < n_extra; i++) {
        if (rf_server_start(g.db, server_args, &extra[i]) != 0) fail_msg("extra server");
        R.ports[1 + i] = extra[i].port;
    }
    R.n_ports = 1 + n_extra;
    R.worker_key = g.worker;
    RID(R.queue, "q64");
    assert_int_equal(rf_parallel_fn(8, enqueue_part, NULL), 0);
    assert_int_equal(atomic_load(&R.violations), 0);
    R.deadline = rf_t_now_ms() + RUN_DEADLINE_MS;
    assert_int_equal(rf_parallel_fn(N_WORKERS, worker, NULL), 0);

    assert_int_equal(atomic_load(&R.violations), 0);
    assert_int_equal(atomic_load(&R.done), N_JOBS);
    for (int i = 0; i < N_JOBS; i++) assert_int_equal(R.jobs[i].completes, 1);
    assert_true(R.killed_n > 0); /* the killed workers did hold jobs */
    /* The killed workers come back: their tokens are stale. */
    for (int i = 0; i < R.killed_n; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"token\":%lld}", (long long)R.killed_token[i]);
        job_call_problem(R.jobs[R.killed_job[i]].id, "complete", g.worker, body, 409,
                         "stale_lease");
        assert_true(R.jobs[R.killed_job[i]].tokens_seen > (1u << R.killed_token[i]));
    }
    for (int i = 0; i < R.n_ports; i++) stats_check(R.ports[i], R.queue);
    claims_told(R.ports[R.n_ports - 1]);
    for (int i = 0; i < n_extra; i++) assert_int_equal(rf_server_stop(&extra[i], 0), 0);
    pthread_mutex_destroy(&R.mu);
}

/* ---- fail, backoff, cancel, heartbeat ------------------------------------------ */

static void test_fail_and_attempts(void **state) {
    (void)state;
    char queue[64];
    RID(queue, "qf");
    char id[64];
    enqueue_id(queue, ",\"max_attempts\":2", id, sizeof id);

    json_t *c1 = claim_one(queue, 30000, 1);
    assert_int_equal(rf_t_json_int(c1, "attempt"), 1);
    json_t *f1 = job_call(id, "fail", "{\"token\":1,\"error\":\"boom\",\"retry_in_ms\":1}", 200);
    assert_string_equal(rf_t_json_str(f1, "status"), "available");
    assert_string_equal(rf_t_json_str(f1, "last_error"), "boom");
    json_decref(f1);
    json_decref(c1);
    job_call_problem(id, "fail", g.worker, "{\"token\":1,\"error\":\"again\"}", 409,
                     "stale_lease");
    rf_t_sleep_ms(5); /* past run_at */
    json_t *c2 = claim_one(queue, 30000, 1);
    assert_int_equal(rf_t_json_int(c2, "token"), 2);
    assert_int_equal(rf_t_json_int(c2, "attempt"), 2);
    json_decref(c2);
    json_t *f2 = job_call(id, "fail", "{\"token\":2,\"error\":\"boom2\"}", 200);
    assert_string_equal(rf_t_json_str(f2, "status"), "failed");
    assert_true(json_is_string(json_object_get(f2, "finished_at")));
    json_decref(f2);
    claim_one(queue, 30000, 0); /* nothing left to claim */

    /* The backoff after a first attempt: 500..1000 ms. */
    json_decref(enqueue(queue, NULL, 201));
    json_t *c3 = claim_one(queue, 30000, 1);
    char tok[96];
    snprintf(tok, sizeof tok, "{\"token\":%lld,\"error\":\"x\"}",
             (long long)rf_t_json_int(c3, "token"));
    json_t *f3 = job_call(rf_t_json_str(c3, "id"), "fail", tok, 200);
    int64_t wait = time_ms(rf_t_json_str(f3, "run_at")) - time_ms(rf_t_json_str(f3, "updated_at"));
    assert_true(wait >= 500 && wait <= 1000);
    json_decref(f3);
    json_decref(c3);
}

static void test_cancel(void **state) {
    (void)state;
    char queue[64], id[64];
    RID(queue, "qc");
    enqueue_id(queue, NULL, id, sizeof id);
    json_decref(claim_one(queue, 30000, 1));
    job_call_problem(id, "cancel", g.worker, "{}", 403, "forbidden");
    char path[256];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    json_t *c = post(g.srv.port, path, g.service, "{}", 200);
    assert_string_equal(rf_t_json_str(c, "status"), "canceled");
    json_decref(c);
    job_call_problem(id, "complete", g.worker, "{\"token\":1}", 409, "stale_lease");
    job_call_problem(id, "cancel", g.admin, "{}", 409, "invalid_state");
    job_call_problem("no-such-job", "cancel", g.admin, "{}", 404, "job_not_found");
}

static void test_heartbeat_extends(void **state) {
    (void)state;
    char queue[64], id[64];
    RID(queue, "qh");
    enqueue_id(queue, NULL, id, sizeof id);
    json_t *c = claim_one(queue, SHORT_LEASE_MS, 1);
    json_t *h = job_call(id, "heartbeat", "{\"token\":1,\"lease_ms\":60000}", 200);
    assert_true(time_ms(rf_t_json_str(h, "lease_expires_at")) >
                time_ms(rf_t_json_str(c, "lease_expires_at")));
    json_decref(h);
    json_decref(c);
    rf_t_sleep_ms(PAST_LEASE_MS); /* past the claim's own lease */
    json_t *done = job_call(id, "complete", "{\"token\":1}", 200);
    assert_string_equal(rf_t_json_str(done, "status"), "completed");
    assert_int_equal(rf_t_json_int(done, "attempt"), 1);
    json_decref(done);
    /* Without a heartbeat the same lease is rescued: its token goes stale. */
    json_decref(enqueue(queue, NULL, 201));
    json_t *c2 = claim_one(queue, SHORT_LEASE_MS, 1);
    char id2[64];
    snprintf(id2, sizeof id2, "%s", rf_t_json_str(c2, "id"));
    json_decref(c2);
    rf_t_sleep_ms(PAST_LEASE_MS);
    job_call_problem(id2, "heartbeat", g.worker, "{\"token\":1}", 409, "stale_lease");
    /* Claimed again (token 2): the first claim's token finishes nothing. */
    json_t *c3 = claim_one(queue, 60000, 1);
    assert_string_equal(rf_t_json_str(c3, "id"), id2);
    assert_int_equal(rf_t_json_int(c3, "token"), 2);
    json_decref(c3);
    job_call_problem(id2, "complete", g.worker, "{\"token\":1}", 409, "stale_lease");
    job_call_problem(id2, "fail", g.worker, "{\"token\":1,\"error\":\"late\"}", 409,
                     "stale_lease");
    json_t *done2 = job_call(id2, "complete", "{\"token\":2}", 200);
    assert_string_equal(rf_t_json_str(done2, "status"), "completed");
    json_decref(done2);
}

/* ---- drop-in ---------------------------------------------------------------- */

static void test_dropin_triggers_and_matches(void **state) {
    (void)state;
    static struct rf_par_req reqs[PAR];
    char photo[64], path[256], job_id[64], match_id[64];
    RID(photo, "photo");
    snprintf(path, sizeof path, "/v1/drop-in/photos/%s/process", photo);
    par_same(reqs, "POST", path, g.service, NULL);
    one_created(reqs, job_id, sizeof job_id);

    char mpath[256];
    snprintf(mpath, sizeof mpath, "/v1/drop-in/photos/%s/matches/att-1/face-1", photo);
    par_same(reqs, "PUT", mpath, g.worker, "{\"similarity_bp\":9912,\"metadata\":{\"b\":1}}");
    one_created(reqs, match_id, sizeof match_id);
    char lpath[256];
    snprintf(lpath, sizeof lpath, "/v1/drop-in/photos/%s/matches", photo);
    struct rf_t_resp r;
    rf_req(g.srv.port, "GET", lpath, g.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *list = rf_resp_json(&r);
    json_t *data = json_object_get(list, "data");
    assert_int_equal((int)json_array_size(data), 1);
    assert_string_equal(rf_t_json_str(json_array_get(data, 0), "id"), match_id);
    assert_int_equal(rf_t_json_int(json_array_get(data, 0), "similarity_bp"), 9912);
    json_decref(list);
    rf_resp_free(&r);

    /* The worker completes the photo's job: a trigger returns it, done. */
    json_t *c = claim_one(RF_DROPIN_QUEUE_NAME, 30000, 1);
    assert_string_equal(rf_t_json_str(c, "id"), job_id);
    json_t *payload = json_object_get(c, "payload");
    assert_string_equal(rf_t_json_str(payload, "photo_id"), photo);
    json_decref(job_call(job_id, "complete", "{\"token\":1}", 200));
    json_decref(c);
    json_t *again = post(g.srv.port, path, g.service, NULL, 200);
    assert_string_equal(rf_t_json_str(again, "id"), job_id);
    assert_string_equal(rf_t_json_str(again, "status"), "completed");
    json_decref(again);

    /* A canceled job lets the photo be processed again. */
    char photo2[64], path2[256];
    RID(photo2, "photo");
    snprintf(path2, sizeof path2, "/v1/drop-in/photos/%s/process", photo2);
    json_t *first = post(g.srv.port, path2, g.service, NULL, 201);
    char cpath[256];
    snprintf(cpath, sizeof cpath, "/v1/jobs/%s/cancel", rf_t_json_str(first, "id"));
    json_decref(post(g.srv.port, cpath, g.admin, "{}", 200));
    json_t *fresh = post(g.srv.port, path2, g.service, NULL, 201);
    assert_string_not_equal(rf_t_json_str(fresh, "id"), rf_t_json_str(first, "id"));
    json_decref(post(g.srv.port, path2, g.service, NULL, 200));
    json_decref(first);
    json_decref(fresh);
}

/* ---- roles and bad input --------------------------------------------------------- */

static void test_roles(void **state) {
    (void)state;
    const char *path = "/v1/drop-in/photos/p-roles/process";
    struct rf_t_resp r;
    rf_req(g.srv.port, "POST", path, NULL, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 401, "unauthenticated");
    rf_resp_free(&r);
    const char *not_service[] = {g.worker, g.readonly, g.admin};
    for (int i = 0; i < 3; i++) post_problem(path, not_service[i], NULL, 403, "forbidden");
    post_problem("/v1/queues/q-roles/claim", g.readonly, "{\"worker_id\":\"w\"}", 403,
                 "forbidden");
    post_problem("/v1/jobs", g.worker, "{\"queue\":\"q\",\"kind\":\"k\",\"payload\":{}}", 403,
                 "forbidden");
    rf_req(g.srv.port, "PUT", "/v1/drop-in/photos/p-roles/matches/a/f", g.readonly, "{}", NULL,
           &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
}

struct bad {
    const char *path;
    const char *body;
    const char *param;
};

static void test_bad_input(void **state) {
    (void)state;
    char long_queue[80], long_kind[140], b1[256], b2[256];
    memset(long_queue, 'q', 65);
    long_queue[65] = '\0';
    memset(long_kind, 'k', 129);
    long_kind[129] = '\0';
    snprintf(b1, sizeof b1, "{\"queue\":\"%s\",\"kind\":\"k\",\"payload\":{}}", long_queue);
    snprintf(b2, sizeof b2, "{\"queue\":\"q\",\"kind\":\"%s\",\"payload\":{}}", long_kind);
    const struct bad cases[] = {
        {"/v1/jobs", b1, "queue"},
        {"/v1/jobs", b2, "kind"},
        {"/v1/jobs", "{\"queue\":\"q\",\"kind\":\"k\",\"payload\":[1]}", "payload"},
        {"/v1/jobs", "{\"queue\":\"q\",\"kind\":\"k\",\"payload\":\"x\"}", "payload"},
        {"/v1/jobs", "{\"queue\":\"q\",\"kind\":\"k\"}", "payload"},
        {"/v1/jobs", "{\"queue\":\"q\",\"kind\":\"k\",\"payload\":{},\"priority\":101}",
         "priority"},
        {"/v1/jobs", "{\"queue\":\"q\",\"kind\":\"k\",\"payload\":{},\"max_attempts\":101}",
         "max_attempts"},
        {"/v1/jobs", "{\"queue\":\"q\",\"kind\":\"k\",\"payload\":{},\"run_at\":"
                     "\"2099-01-01T00:00:00.000Z\"}", "run_at"},
        {"/v1/queues/q/claim", "{\"worker_id\":\"w\",\"lease_ms\":99}", "lease_ms"},
        {"/v1/queues/q/claim", "{\"worker_id\":\"w\",\"lease_ms\":3600001}", "lease_ms"},
        {"/v1/queues/q/claim", "{\"worker_id\":\"w\",\"max_jobs\":101}", "max_jobs"},
        {"/v1/queues/q/claim", "{\"worker_id\":\"w\",\"max_jobs\":-1}", "max_jobs"},
        {"/v1/queues/q/claim", "{\"lease_ms\":1000}", "worker_id"},
        {"/v1/jobs/j1/complete", "{\"token\":0}", "token"},
        {"/v1/jobs/j1/fail", "{\"token\":1}", "error"},
        {"/v1/jobs/j1/fail", "{\"token\":1,\"error\":\"e\",\"retry_in_ms\":0}", "retry_in_ms"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rf_t_resp r;
        rf_req(g.srv.port, "POST", cases[i].path, g.service, cases[i].body, NULL, &r);
        RF_ASSERT_4XX_PROBLEM(&r);
        assert_int_equal(r.status, 400);
        json_t *j = rf_resp_json(&r);
        if (strcmp(rf_t_json_str(j, "param"), cases[i].param) != 0)
            fail_msg("case %zu: param %s, want %s: %s", i, rf_t_json_str(j, "param"),
                     cases[i].param, r.body);
        json_decref(j);
        rf_resp_free(&r);
    }
    /* A long queue in the path is refused too, and nothing was enqueued. */
    char path[160];
    snprintf(path, sizeof path, "/v1/queues/%s/claim", long_queue);
    struct rf_t_resp r;
    rf_req(g.srv.port, "POST", path, g.worker, "{\"worker_id\":\"w\"}", NULL, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_path_param");
    rf_resp_free(&r);
    rf_req(g.srv.port, "GET", "/v1/queues/q/stats", g.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    assert_int_equal(rf_t_json_int(json_object_get(j, "counts"), "available"), 0);
    json_decref(j);
    rf_resp_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unique_key_race),
        cmocka_unit_test(test_fail_and_attempts),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_heartbeat_extends),
        cmocka_unit_test(test_dropin_triggers_and_matches),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_64_workers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
