/*
 * torture_run.c - what every torture scenario shares: seeded ids, single
 * calls and released-together races against the deployment's nodes (round
 * robin, so a race on a multi-node deployment lands on every node), and the
 * tallies of the final table (requests, conflicts provoked, violations,
 * latencies). See torture.h for the definitions.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "cli/torture.h"

uint64_t tt_rand(struct tt *t) { /* splitmix64: the same seed, the same ids */
    uint64_t z = (t->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void tt_id(struct tt *t, const char *what, char *out, size_t cap) {
    snprintf(out, cap, "%s-%s-%08llx", t->run, what, (unsigned long long)(tt_rand(t) >> 32));
}

static bool build(struct tt *t, const struct tt_req *q, struct race_msg *m) {
    const char *hs[5];
    char auth[RF_TORTURE_KEY_BYTES + 32], idem[RF_IDEM_KEY_CHARS_MAX + 32], im[64];
    int n = 0;
    if (q->key) snprintf(auth, sizeof auth, "Authorization: Bearer %s", q->key), hs[n++] = auth;
    if (q->idem) snprintf(idem, sizeof idem, "Idempotency-Key: %s", q->idem), hs[n++] = idem;
    if (q->if_match) snprintf(im, sizeof im, "If-Match: \"%s\"", q->if_match), hs[n++] = im;
    if (q->body) hs[n++] = "Content-Type: application/json";
    if (q->header) hs[n++] = q->header;
    const struct race_target *to = &t->nodes[t->next_node++ % t->n_nodes];
    return race_build(to, q->method, q->path, hs, n, q->body, q->body ? strlen(q->body) : 0, m);
}

static void fail(struct tt_stats *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct tt_stats *s, const char *fmt, ...) {
    if (s->failed) return; /* the first reason is the one to see */
    s->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->note, sizeof s->note, fmt, ap);
    va_end(ap);
}

int tt_race(struct tt *t, struct tt_stats *s, const struct tt_req *qs, int n,
            struct race_resp *out) {
    RF_ASSERT(n >= 1 && n <= RF_RACE_COPIES_MAX);
    memset(out, 0, sizeof *out * (size_t)n); /* freeable whatever happens */
    struct race_msg msgs[RF_RACE_COPIES_MAX] = {{0}};
    for (int i = 0; i < n; i++)
        if (!build(t, &qs[i], &msgs[i])) {
            for (int k = 0; k < i; k++) free(msgs[k].data);
            fail(s, "a request too large to send");
            return -1;
        }
    char why[256];
    struct race_timing tm;
    int rc = race_run(msgs, n, t->timeout_ms, out, &tm, why, sizeof why);
    for (int i = 0; i < n; i++) free(msgs[i].data);
    if (rc != 0) {
        fail(s, "%s", why);
        return -1;
    }
    if (!s->expect_429 && tt_count(out, n, 429) > 0) {
        fail(s, "%s %s: 429: the deployment's rate limit for the run's keys is below what a race "
             "sends at once; raise it or lower --clients", qs[0].method, qs[0].path);
        tt_free(out, n);
        return -1;
    }
    if (n > 1) s->races++, s->together += tm.lead_us >= 0;
    for (int i = 0; i < n; i++) {
        if (out[i].status >= 500)
            tt_violation(s, "", "%s %s answered %d: %.120s", qs[i].method, qs[i].path,
                         out[i].status, out[i].body);
        if (out[i].status == 0) fail(s, "%s %s: %s", qs[i].method, qs[i].path, out[i].err);
    }
    if (n == 1) return 0; /* setup and checks: not in the table's counts */
    s->requests += n;
    for (int i = 0; i < n; i++) {
        if (!out[i].status) continue;
        if (s->n_lat == s->cap_lat) {
            int cap = s->cap_lat ? 2 * s->cap_lat : 256;
            int64_t *nl = realloc(s->lat, (size_t)cap * sizeof *nl);
            if (!nl) break;
            s->lat = nl, s->cap_lat = cap;
        }
        s->lat[s->n_lat++] = out[i].latency_us;
    }
    return 0;
}

int tt_call(struct tt *t, struct tt_stats *s, const struct tt_req *q, struct race_resp *out) {
    if (tt_race(t, s, q, 1, out) != 0) return 0;
    return out->status;
}

json_t *tt_body(const struct race_resp *r) {
    if (!r->status || !r->body_len) return NULL;
    return json_loadb(r->body, r->body_len, 0, NULL);
}

json_t *tt_json(struct tt *t, struct tt_stats *s, const struct tt_req *q, int *status) {
    struct race_resp r;
    *status = tt_call(t, s, q, &r);
    json_t *j = tt_body(&r);
    race_resp_free(&r);
    return j;
}

json_t *tt_must(struct tt *t, struct tt_stats *s, const struct tt_req *q, int want) {
    struct race_resp r;
    int st = tt_call(t, s, q, &r);
    json_t *j = st == want ? tt_body(&r) : NULL;
    if (st != want)
        fail(s, "%s %s: %d, expected %d: %.80s", q->method, q->path, st, want,
             st ? r.body : r.err);
    else if (!j && r.body_len)
        fail(s, "%s %s: the answer is not JSON", q->method, q->path);
    race_resp_free(&r);
    return j;
}

void tt_code(const struct race_resp *r, char *out, size_t cap) {
    json_t *j = tt_body(r);
    const char *c = json_string_value(json_object_get(j, "code"));
    snprintf(out, cap, "%s", c ? c : "");
    json_decref(j);
}

int tt_count(const struct race_resp *rs, int n, int status) {
    int c = 0;
    for (int i = 0; i < n; i++) c += rs[i].status == status;
    return c;
}

int tt_conflicts(struct tt_stats *s, const struct race_resp *rs, int n) {
    int c = 0;
    bool created = tt_count(rs, n, 201) > 0;
    for (int i = 0; i < n; i++) {
        int st = rs[i].status;
        c += st == 409 || st == 412 || st == 422 || st == 429 || tt_replayed(&rs[i]) ||
             (st == 200 && created);
    }
    s->conflicts += c;
    return c;
}

void tt_violation(struct tt_stats *s, const char *scenario, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("VIOLATION%s%s: %s\n", *scenario ? " " : "", scenario, msg);
    fflush(stdout);
    s->violations++;
}

void tt_free(struct race_resp *rs, int n) {
    for (int i = 0; i < n; i++) race_resp_free(&rs[i]);
}

int tt_distinct(const struct race_resp *rs, int n, const char *field) {
    const char *seen[RF_RACE_COPIES_MAX];
    json_t *bodies[RF_RACE_COPIES_MAX];
    int n_seen = 0;
    for (int i = 0; i < n; i++) {
        bodies[i] = rs[i].status / 100 == 2 ? tt_body(&rs[i]) : NULL;
        const char *v = json_string_value(json_object_get(bodies[i], field));
        bool dup = !v;
        for (int k = 0; k < n_seen && !dup; k++) dup = strcmp(seen[k], v) == 0;
        if (!dup) seen[n_seen++] = v;
    }
    for (int i = 0; i < n; i++) json_decref(bodies[i]);
    return n_seen;
}

int tt_list_count(struct tt *t, struct tt_stats *s, const char *path, const char *key) {
    json_t *j = tt_must(t, s, &(struct tt_req){"GET", path, key, 0, 0, 0, NULL}, 200);
    json_t *data = json_object_get(j, "data");
    int n = json_is_array(data) && json_is_null(json_object_get(j, "next"))
                ? (int)json_array_size(data)
                : -1;
    json_decref(j);
    return n;
}

bool tt_replayed(const struct race_resp *r) {
    char v[16];
    return race_resp_header(r, "Idempotent-Replayed", v, sizeof v) && strcmp(v, "true") == 0;
}

void tt_rounds(struct tt *t, struct tt_stats *s, void (*round)(struct tt *, struct tt_stats *)) {
    for (int r = 0; r < t->rounds && !s->failed; r++) round(t, s);
}

bool tt_make_key(struct tt *t, struct tt_stats *s, const char *role, char *secret) {
    RF_ASSERT(t->n_keys < (int)(sizeof t->key_ids / sizeof t->key_ids[0]));
    char body[160];
    snprintf(body, sizeof body, "{\"role\":\"%s\",\"name\":\"%s-%s\"}", role, t->run, role);
    json_t *j =
        tt_must(t, s, &(struct tt_req){"POST", "/v1/keys", t->admin, NULL, body, NULL, NULL}, 201);
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *key = json_string_value(json_object_get(j, "key"));
    if (id && key) {
        snprintf(t->key_ids[t->n_keys++], sizeof t->key_ids[0], "%s", id);
        snprintf(secret, RF_TORTURE_KEY_BYTES, "%s", key);
    }
    json_decref(j);
    return id && key;
}


void tt_one_key_check(struct tt_stats *s, const char *scenario, const char *what,
                      const struct race_resp *rs, int n) {
    int first = 0, replays = 0, in_flight = 0;
    for (int i = 0; i < n; i++) {
        char code[64];
        tt_code(&rs[i], code, sizeof code);
        first += rs[i].status == 201 && !tt_replayed(&rs[i]);
        replays += rs[i].status == 201 && tt_replayed(&rs[i]);
        in_flight += rs[i].status == 409 && strcmp(code, "idempotency_key_in_flight") == 0;
    }
    if (first != 1 || first + replays + in_flight != n || tt_distinct(rs, n, "id") != 1)
        tt_violation(s, scenario, "%s with one Idempotency-Key x %d: %d first 201, %d replays, "
                     "%d in flight, %d ids (want one 201, the rest replays or in flight)", what,
                     n, first, replays, in_flight, tt_distinct(rs, n, "id"));
}
