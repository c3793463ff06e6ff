/*
 * torture_work.c - the scenarios of work done once: a job claimed by one
 * worker however many claim at once (the check-then-update of "available"),
 * one holder of a lease however many acquire it at once,
 * a notification's read_at set once when reads and read-alls race, and a
 * rate limit that holds when a burst past its quota arrives at once (on
 * every node: the limit is kept in the store). The rate limit is checked
 * only where the deployment has one for readonly keys (their GETs carry a
 * RateLimit-Policy header); else the scenario is skipped, saying so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/torture.h"

/* ---- claim --------------------------------------------------------------------------- */

/* Each job id of the claims' answers once; the ids into ids[]. */
static int claimed_ids(struct tt_stats *s, const struct race_resp *rs, int n, char ids[][64],
                       int *empty) {
    int got = 0;
    *empty = 0;
    for (int i = 0; i < n; i++) {
        json_t *j = tt_body(&rs[i]), *job;
        json_t *data = json_object_get(j, "data");
        size_t k;
        *empty += rs[i].status == 200 && json_array_size(data) == 0;
        json_array_foreach(data, k, job) {
            const char *id = json_string_value(json_object_get(job, "id"));
            for (int d = 0; id && d < got; d++)
                if (strcmp(ids[d], id) == 0)
                    tt_violation(s, "claim", "job %s claimed by two workers at once", id);
            if (id && got < RF_RACE_COPIES_MAX) snprintf(ids[got++], 64, "%s", id);
        }
        json_decref(j);
    }
    return got;
}

static void claim_round(struct tt *t, struct tt_stats *s) {
    char queue[64], body[200], path[200];
    static char ids[RF_RACE_COPIES_MAX][64], bodies[RF_RACE_COPIES_MAX][128];
    int n = t->clients, jobs = n / 2, empty = 0;
    tt_id(t, "queue", queue, sizeof queue);
    snprintf(body, sizeof body, "{\"queue\":\"%s\",\"kind\":\"torture\",\"payload\":{}}", queue);
    for (int i = 0; i < jobs && !s->failed; i++)
        json_decref(
            tt_must(t, s, &(struct tt_req){"POST", "/v1/jobs", t->service, 0, body, 0, NULL}, 201));
    if (s->failed) return;
    snprintf(path, sizeof path, "/v1/queues/%s/claim", queue);
    struct tt_req qs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    for (int i = 0; i < n; i++) {
        snprintf(bodies[i], sizeof bodies[i], "{\"worker_id\":\"%s-w%d\",\"lease_ms\":60000,"
                 "\"max_jobs\":1}", t->run, i);
        qs[i] = (struct tt_req){"POST", path, t->worker, NULL, bodies[i], NULL, NULL};
    }
    if (tt_race(t, s, qs, n, rs) != 0) return;
    tt_conflicts(s, rs, n);
    int got = claimed_ids(s, rs, n, ids, &empty);
    s->conflicts += empty; /* a claim that found every job taken lost to another */
    if (got != jobs || tt_count(rs, n, 200) != n)
        tt_violation(s, "claim", "queue %s: %d workers claimed %d of its %d jobs (%d x 200); "
                     "want every job claimed once", queue, n, got, jobs, tt_count(rs, n, 200));
    tt_free(rs, n);
    for (int i = 0; i < got; i++) { /* finish them: nothing left for the sweep */
        snprintf(path, sizeof path, "/v1/jobs/%.63s/complete", ids[i]);
        json_decref(tt_must(
            t, s, &(struct tt_req){"POST", path, t->worker, 0, "{\"token\":1}", 0, NULL}, 200));
    }
}

/* ---- lease ------------------------------------------------------------------------------ */

static void lease_round(struct tt *t, struct tt_stats *s) {
    char name[64], path[200], holder[64] = "";
    static char bodies[RF_RACE_COPIES_MAX][128];
    tt_id(t, "lease", name, sizeof name);
    snprintf(path, sizeof path, "/v1/leases/%s/acquire", name);
    struct tt_req qs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    int n = t->clients;
    for (int i = 0; i < n; i++) {
        snprintf(bodies[i], sizeof bodies[i], "{\"holder\":\"%s-h%d\",\"ttl_ms\":30000}", t->run,
                 i);
        qs[i] = (struct tt_req){"POST", path, t->service, NULL, bodies[i], NULL, NULL};
    }
    if (tt_race(t, s, qs, n, rs) != 0) return;
    tt_conflicts(s, rs, n);
    for (int i = 0; i < n; i++)
        if (rs[i].status == 201) snprintf(holder, sizeof holder, "%s-h%d", t->run, i);
    int won = tt_count(rs, n, 201), held = tt_count(rs, n, 409);
    if (won != 1 || held != n - 1)
        tt_violation(s, "lease", "lease %s: %d x 201 and %d x 409 of %d acquires (want one holder)",
                     name, won, held, n);
    tt_free(rs, n);
    snprintf(path, sizeof path, "/v1/leases/%s", name);
    json_t *j = tt_must(t, s, &(struct tt_req){"GET", path, t->service, 0, 0, 0, NULL}, 200);
    const char *h = json_string_value(json_object_get(j, "holder"));
    if (j && (!h || strcmp(h, holder) != 0 || json_integer_value(json_object_get(j, "token")) != 1))
        tt_violation(s, "lease", "lease %s is held by '%s' with token %lld; the 201 went to '%s' "
                     "with token 1", name, h ? h : "?",
                     (long long)json_integer_value(json_object_get(j, "token")), holder);
    json_decref(j);
}

/* ---- read_once ----------------------------------------------------------------------- */

static void read_check(struct tt *t, struct tt_stats *s, const char *path, const char *read_at) {
    json_t *j = tt_must(t, s, &(struct tt_req){"GET", path, t->service, 0, 0, 0, NULL}, 200);
    const char *now = json_string_value(json_object_get(j, "read_at"));
    if (j && (!now || !read_at || strcmp(now, read_at) != 0))
        tt_violation(s, "read_once", "%s: read_at is %s after the race answered %s", path,
                     now ? now : "null", read_at ? read_at : "none");
    json_decref(j);
}

static void read_round(struct tt *t, struct tt_stats *s) {
    char user[64], base[160], path[240], read[260], all_body[160], all[200];
    tt_id(t, "user", user, sizeof user);
    snprintf(base, sizeof base, "/v1/users/%s/notifications", user);
    json_t *j =
        tt_must(t, s,
                &(struct tt_req){"POST", base, t->service, 0,
                                 "{\"kind\":\"torture\",\"title\":\"t\",\"body\":\"b\"}", 0, NULL},
                201);
    const char *id = json_string_value(json_object_get(j, "id"));
    if (!id) return json_decref(j);
    snprintf(path, sizeof path, "%s/%s", base, id);
    snprintf(read, sizeof read, "%s/read", path);
    snprintf(all, sizeof all, "%s/read-all", base);
    snprintf(all_body, sizeof all_body, "{\"up_to\":\"%s\"}", id);
    json_decref(j);
    struct tt_req qs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    int n = t->clients, marked = 0, lost = 0;
    for (int i = 0; i < n; i++) /* reads and read-alls, alternating */
        qs[i] = i % 2 ? (struct tt_req){"POST", all, t->service, 0, all_body, 0, NULL}
                      : (struct tt_req){"POST", read, t->service, 0, NULL, 0, NULL};
    if (tt_race(t, s, qs, n, rs) != 0) return;
    tt_conflicts(s, rs, n);
    for (int i = 1; i < n; i += 2) {
        json_t *b = tt_body(&rs[i]);
        int m = (int)json_integer_value(json_object_get(b, "marked"));
        marked += m, lost += rs[i].status == 200 && m == 0;
        json_decref(b);
    }
    s->conflicts += lost; /* a read-all that found it read already lost to another */
    int distinct = tt_distinct(rs, n, "read_at");
    if (tt_count(rs, n, 200) != n || marked > 1 || distinct != 1)
        tt_violation(s, "read_once", "%s: %d x 200 of %d, read-alls marked it %d times, %d "
                     "different read_at (want one)", path, tt_count(rs, n, 200), n, marked,
                     distinct);
    json_t *b0 = tt_body(&rs[0]);
    read_check(t, s, path, json_string_value(json_object_get(b0, "read_at")));
    json_decref(b0);
    tt_free(rs, n);
}

/* ---- rate_limit ------------------------------------------------------------------------ */

/* A number after "<name>=" in a structured header value, or -1. */
static long header_param(const char *v, const char *name) {
    char pat[8];
    snprintf(pat, sizeof pat, ";%s=", name);
    const char *p = strstr(v, pat);
    return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

/* The readonly key's read limit: quota q per w seconds, r left now; false
 * when the deployment sends no RateLimit-Policy (no limit). */
static bool read_limit(struct tt *t, struct tt_stats *s, const char *path, long *q, long *w,
                       long *r) {
    struct race_resp one;
    char policy[128] = "", left[128] = "";
    tt_call(t, s, &(struct tt_req){"GET", path, t->readonly, 0, 0, 0, NULL}, &one);
    bool limited = race_resp_header(&one, "RateLimit-Policy", policy, sizeof policy);
    race_resp_header(&one, "RateLimit", left, sizeof left);
    race_resp_free(&one);
    *q = header_param(policy, "q"), *w = header_param(policy, "w"), *r = header_param(left, "r");
    return limited && *q > 0 && *w > 0 && *r >= 0;
}

static void rate_round(struct tt *t, struct tt_stats *s) {
    char user[64], path[200];
    long q = 0, w = 0, r = 0;
    tt_id(t, "user", user, sizeof user);
    snprintf(path, sizeof path, "/v1/users/%s/entitlements?status=all", user);
    if (!read_limit(t, s, path, &q, &w, &r)) {
        s->skipped = !s->failed;
        snprintf(s->note, sizeof s->note, "no RateLimit-Policy on a readonly key's GET: this "
                 "deployment has no read limit for readonly keys to check");
        return;
    }
    int n = (int)(r + t->clients);
    if (n > RF_RACE_COPIES_MAX) {
        s->skipped = true;
        snprintf(s->note, sizeof s->note, "quota %ld per %ld s: more than %d requests to pass it "
                 "in one race", q, w, RF_RACE_COPIES_MAX);
        return;
    }
    struct tt_req qs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    for (int i = 0; i < n; i++) qs[i] = (struct tt_req){"GET", path, t->readonly, 0, 0, 0, NULL};
    if (tt_race(t, s, qs, n, rs) != 0) return;
    tt_conflicts(s, rs, n);
    int64_t slowest_us = 0;
    int no_retry = 0;
    for (int i = 0; i < n; i++) {
        char ra[32];
        slowest_us = rs[i].latency_us > slowest_us ? rs[i].latency_us : slowest_us;
        no_retry += rs[i].status == 429 && !race_resp_header(&rs[i], "Retry-After", ra, sizeof ra);
    }
    /* What the bucket may let through: what was left, plus its refill while
     * the race ran (one request per w/q seconds), plus one. */
    long allowed = r + (long)(slowest_us * q / (w * 1000000L)) + 1;
    int ok = tt_count(rs, n, 200);
    if (ok > allowed || ok + tt_count(rs, n, 429) != n || no_retry)
        tt_violation(s, "rate_limit", "%d of %d GETs passed a limit of %ld per %ld s with %ld "
                     "left (at most %ld may); %d x 429 without Retry-After", ok, n, q, w, r,
                     allowed, no_retry);
    tt_free(rs, n);
}

static void sc_claim(struct tt *t, struct tt_stats *s) { tt_rounds(t, s, claim_round); }
static void sc_read(struct tt *t, struct tt_stats *s) { tt_rounds(t, s, read_round); }
static void sc_lease(struct tt *t, struct tt_stats *s) { tt_rounds(t, s, lease_round); }
static void sc_rate(struct tt *t, struct tt_stats *s) {
    s->expect_429 = true;
    if (!t->readonly[0] && !tt_make_key(t, s, "readonly", t->readonly)) return;
    for (int i = 0; i < t->rounds && !s->failed && !s->skipped; i++) rate_round(t, s);
}

const struct tt_scenario tt_work_scenarios[] = {
    {"claim", "N workers claim a queue of N/2 jobs at once: each job claimed by one worker",
     sc_claim},
    {"lease", "N acquires of one lease: one holder (201, token 1), the rest 409 lease_held",
     sc_lease},
    {"read_once", "reads and read-alls of one notification race: one read_at, marked once",
     sc_read},
    {"rate_limit", "a burst past a readonly key's read quota: no more pass than it allows, the "
     "rest 429 with Retry-After (skipped without a configured limit)", sc_rate},
};
const int tt_work_count = sizeof tt_work_scenarios / sizeof tt_work_scenarios[0];
