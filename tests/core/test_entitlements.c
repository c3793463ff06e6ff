/*
 * test_entitlements.c - the seed 000 grant race at the library level, on the
 * back end named by RF_TEST_DB: many threads released together by a barrier
 * grant the same (user, key); exactly one creates, all see the same record,
 * one row exists. Also grant/revoke interleavings (versions without gaps)
 * and the Idempotency-Key layer (replay, reuse, one effect). Versions carry
 * on across revoke or expiry and grant again, so no earlier If-Match ever
 * matches a later grant, also when revokes with old If-Match values race
 * re-grants. A list read that is retried answers a clean page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "core/test_hooks.h"
#include "racefree.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"
#include "tamper.h"

#define RACE_THREADS 64

struct race {
    rf *db;
    char user[64];
    char key[64];
    rf_err err[RACE_THREADS];
    struct rf_grant_res res[RACE_THREADS];
};

static void grant_one(int idx, void *ctx) {
    struct race *r = ctx;
    struct rf_grant_req req = {.user_id = r->user, .key = r->key, .source = "race"};
    r->err[idx] = rf_entitlement_grant(r->db, &req, &r->res[idx], NULL);
}

static void test_grant_race(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    for (int round = 0; round < 3; round++) {
        struct race *r = calloc(1, sizeof *r);
        r->db = db;
        rf_rand_id("user", r->user, sizeof r->user);
        rf_rand_id("pro", r->key, sizeof r->key);
        assert_int_equal(rf_parallel_fn(RACE_THREADS, grant_one, r), 0);
        int created = 0;
        for (int i = 0; i < RACE_THREADS; i++) {
            assert_int_equal(r->err[i], RF_OK);
            created += r->res[i].created;
            assert_string_equal(r->res[i].ent.id, r->res[0].ent.id);
            assert_int_equal(r->res[i].ent.version, 1);
            assert_int_equal(r->res[i].ent.granted_at_ms, r->res[0].ent.granted_at_ms);
            assert_int_equal(r->res[i].ent.status, RF_ENT_STATUS_ACTIVE);
        }
        assert_int_equal(created, 1);
        struct rf_entitlement_page page;
        assert_int_equal(rf_entitlement_list(db, r->user, RF_ENT_ALL, NULL, 10, &page), RF_OK);
        assert_int_equal(page.n, 1);
        rf_entitlement_page_clear(&page);
        for (int i = 0; i < RACE_THREADS; i++) rf_entitlement_clear(&r->res[i].ent);
        free(r);
    }
}

/* ---- interleaved grants and revokes ------------------------------------ */

#define MIX_THREADS 16
#define MIX_OPS 12

struct mix {
    rf *db;
    char user[64];
    int revokes_ok[MIX_THREADS];
    int64_t seen_max[MIX_THREADS * MIX_OPS];
    int n_seen[MIX_THREADS];
    rf_err bad[MIX_THREADS];
};

static void mix_one(int idx, void *ctx) {
    struct mix *m = ctx;
    for (int k = 0; k < MIX_OPS; k++) {
        rf_err err;
        if ((k + idx) % 2 == 0) {
            struct rf_grant_req req = {.user_id = m->user, .key = "k"};
            struct rf_grant_res res;
            err = rf_entitlement_grant(m->db, &req, &res, NULL);
            if (!err) {
                m->seen_max[idx * MIX_OPS + m->n_seen[idx]++] = res.ent.version;
                rf_entitlement_clear(&res.ent);
            }
        } else {
            struct rf_entitlement e;
            err = rf_entitlement_revoke(m->db, m->user, "k", 0, &e);
            if (!err) m->revokes_ok[idx]++;
            if (err == RF_ERR_ENTITLEMENT_NOT_FOUND) err = RF_OK;
            rf_entitlement_clear(&e);
        }
        if (err) m->bad[idx] = err;
    }
}

static void test_grant_revoke_versions(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    struct mix *m = calloc(1, sizeof *m);
    m->db = db;
    rf_rand_id("mix", m->user, sizeof m->user);
    assert_int_equal(rf_parallel_fn(MIX_THREADS, mix_one, m), 0);
    struct rf_entitlement fin;
    assert_int_equal(rf_entitlement_get(db, m->user, "k", &fin), RF_OK);
    int64_t v = fin.version;
    int revokes = 0;
    for (int i = 0; i < MIX_THREADS; i++) {
        assert_int_equal(m->bad[i], RF_OK);
        revokes += m->revokes_ok[i];
    }
    /* versions: 1 active, 2 revoked, 3 active, ... without gaps */
    assert_int_equal(fin.status, v % 2 ? RF_ENT_STATUS_ACTIVE : RF_ENT_STATUS_REVOKED);
    assert_int_equal(revokes, v / 2);
    for (int64_t odd = 1; odd <= v; odd += 2) {
        bool seen = false;
        for (int i = 0; i < MIX_THREADS * MIX_OPS && !seen; i++) seen = m->seen_max[i] == odd;
        assert_true(seen);
    }
    rf_entitlement_clear(&fin);
    free(m);
}

/* ---- Idempotency-Key ---------------------------------------------------- */

static void idem_init(struct rf_idem *idem, const char *key, const char *body) {
    memset(idem, 0, sizeof *idem);
    idem->key = key;
    idem->api_key_id = "test-key";
    rf_core_idem_hash(idem, "PUT", "/x", body, strlen(body));
}

struct idem_race {
    rf *db;
    char user[64];
    char ikey[64];
    rf_err err[32];
    int status[32];
    bool replayed[32];
    char body[32][256];
};

static void idem_one(int idx, void *ctx) {
    struct idem_race *r = ctx;
    struct rf_idem idem;
    idem_init(&idem, r->ikey, "same");
    struct rf_grant_req req = {.user_id = r->user, .key = "k"};
    struct rf_grant_res res;
    r->err[idx] = rf_entitlement_grant(r->db, &req, &res, &idem);
    if (!r->err[idx]) {
        /* the typed result, also on a replay: the stored first one */
        r->status[idx] = res.created ? 201 : 200;
        r->replayed[idx] = idem.replayed;
        snprintf(r->body[idx], sizeof r->body[idx], "%s %lld %lld %d", res.ent.id,
                 (long long)res.ent.version, (long long)res.ent.granted_at_ms,
                 (int)res.ent.status);
        rf_entitlement_clear(&res.ent);
    }
}

static void test_idempotency(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    struct idem_race *r = calloc(1, sizeof *r);
    r->db = db;
    rf_rand_id("idem", r->user, sizeof r->user);
    rf_rand_id("ik", r->ikey, sizeof r->ikey);
    assert_int_equal(rf_parallel_fn(32, idem_one, r), 0);
    int fresh = 0;
    const char *first = NULL;
    for (int i = 0; i < 32; i++) {
        if (r->err[i] == RF_ERR_IDEM_IN_FLIGHT) continue;
        assert_int_equal(r->err[i], RF_OK);
        assert_int_equal(r->status[i], 201); /* the stored first response */
        fresh += !r->replayed[i];
        if (!first) first = r->body[i];
        assert_string_equal(r->body[i], first); /* byte for byte */
    }
    assert_int_equal(fresh, 1);
    /* reuse with another request: 422; a later replay still works */
    struct rf_idem idem;
    struct rf_grant_req req = {.user_id = r->user, .key = "k"};
    struct rf_grant_res res;
    idem_init(&idem, r->ikey, "different");
    assert_int_equal(rf_entitlement_grant(db, &req, &res, &idem), RF_ERR_IDEM_REUSED);
    idem_init(&idem, r->ikey, "same");
    assert_int_equal(rf_entitlement_grant(db, &req, &res, &idem), RF_OK);
    assert_true(idem.replayed);
    char again[256];
    snprintf(again, sizeof again, "%s %lld %lld %d", res.ent.id, (long long)res.ent.version,
             (long long)res.ent.granted_at_ms, (int)res.ent.status);
    assert_string_equal(again, first);
    rf_entitlement_clear(&res.ent);
    struct rf_entitlement e;
    assert_int_equal(rf_entitlement_get(db, r->user, "k", &e), RF_OK);
    assert_int_equal(e.version, 1);
    rf_entitlement_clear(&e);
    free(r);
}

/* A record written before results were stored (a rendered reply, status
 * column != 0) cannot be decoded into a result: its effect happened, so the
 * retry is answered 409 conflict and never runs the operation again. The
 * store is edited behind racefree's back to make such a record. */
static void test_legacy_record_never_reruns(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    char user[64], ikey[64];
    rf_rand_id("legacy", user, sizeof user);
    rf_rand_id("lk", ikey, sizeof ikey);
    struct rf_idem idem;
    struct rf_grant_req req = {.user_id = user, .key = "k"};
    struct rf_grant_res res;
    idem_init(&idem, ikey, "same");
    assert_int_equal(rf_entitlement_grant(db, &req, &res, &idem), RF_OK);
    rf_entitlement_clear(&res.ent);
    tamper(rf_core_fx.url, "UPDATE idempotency_keys SET status = 201 WHERE idem_key = $1", ikey,
           NULL, 1);
    struct rf_entitlement e;
    assert_int_equal(rf_entitlement_revoke(db, user, "k", 0, &e), RF_OK);
    rf_entitlement_clear(&e);
    idem_init(&idem, ikey, "same");
    assert_int_equal(rf_entitlement_grant(db, &req, &res, &idem), RF_ERR_CONFLICT);
    assert_false(idem.replayed);
    assert_int_equal(rf_entitlement_get(db, user, "k", &e), RF_OK);
    assert_int_equal(e.status, RF_ENT_STATUS_REVOKED); /* the grant did not run again */
    rf_entitlement_clear(&e);
}

/* The status is an enum in C and its name in a stored result: a record
 * keeps the text form records had when the status was a string, and a
 * replay reads the enum back from the name. The record is edited behind
 * racefree's back (active -> revoked) to show the replay decodes the name. */
static void test_record_stores_status_name(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    char user[64], ikey[64];
    rf_rand_id("named", user, sizeof user);
    rf_rand_id("nk", ikey, sizeof ikey);
    struct rf_idem idem;
    struct rf_grant_req req = {.user_id = user, .key = "k"};
    struct rf_grant_res res;
    idem_init(&idem, ikey, "same");
    assert_int_equal(rf_entitlement_grant(db, &req, &res, &idem), RF_OK);
    assert_int_equal(res.ent.status, RF_ENT_STATUS_ACTIVE);
    rf_entitlement_clear(&res.ent);
    tamper(rf_core_fx.url,
           "UPDATE idempotency_keys SET body = replace(body, '\"ent.status\":\"active\"',"
           " '\"ent.status\":\"revoked\"') WHERE idem_key = $1"
           " AND body LIKE '%\"ent.status\":\"active\"%'",
           ikey, NULL, 1);
    idem_init(&idem, ikey, "same");
    assert_int_equal(rf_entitlement_grant(db, &req, &res, &idem), RF_OK);
    assert_true(idem.replayed);
    assert_int_equal(res.ent.status, RF_ENT_STATUS_REVOKED);
    rf_entitlement_clear(&res.ent);
    assert_string_equal(rf_ent_status_name(RF_ENT_STATUS_ACTIVE), "active");
    assert_string_equal(rf_ent_status_name(RF_ENT_STATUS_REVOKED), "revoked");
    assert_string_equal(rf_ent_status_name(RF_ENT_STATUS_EXPIRED), "expired");
    assert_null(rf_ent_status_name((enum rf_ent_status)(RF_ENT_STATUS_EXPIRED + 1)));
}

static void test_expiry_and_reactivation(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    char user[64];
    rf_rand_id("exp", user, sizeof user);
    struct rf_grant_req req = {.user_id = user, .key = "trial", .expires_at_ms = 1000};
    struct rf_grant_res res;
    assert_int_equal(rf_entitlement_grant(db, &req, &res, NULL), RF_OK);
    assert_true(res.created);
    assert_int_equal(res.ent.status, RF_ENT_STATUS_EXPIRED);
    rf_entitlement_clear(&res.ent);
    struct rf_entitlement_page page;
    assert_int_equal(rf_entitlement_list(db, user, RF_ENT_ACTIVE, NULL, 10, &page), RF_OK);
    assert_int_equal(page.n, 0);
    rf_entitlement_page_clear(&page);
    assert_int_equal(rf_entitlement_list(db, user, RF_ENT_EXPIRED, NULL, 10, &page), RF_OK);
    assert_int_equal(page.n, 1);
    rf_entitlement_page_clear(&page);
    req.expires_at_ms = 0; /* granting an expired one re-activates it */
    assert_int_equal(rf_entitlement_grant(db, &req, &res, NULL), RF_OK);
    assert_false(res.created);
    assert_int_equal(res.ent.version, 2);
    assert_int_equal(res.ent.status, RF_ENT_STATUS_ACTIVE);
    rf_entitlement_clear(&res.ent);
    req.if_match_version = 1; /* stale */
    assert_int_equal(rf_entitlement_grant(db, &req, &res, NULL), RF_ERR_VERSION_MISMATCH);
    struct rf_entitlement e;
    assert_int_equal(rf_entitlement_revoke(db, user, "trial", 1, &e), RF_ERR_VERSION_MISMATCH);
    assert_int_equal(rf_entitlement_revoke(db, user, "trial", 2, &e), RF_OK);
    assert_int_equal(e.version, 3);
    rf_entitlement_clear(&e);
    assert_int_equal(rf_entitlement_revoke(db, user, "trial", 0, &e),
                     RF_ERR_ENTITLEMENT_NOT_FOUND);
}

/* ---- versions across revoke / expiry and grant again ---------------------- */

#define CYCLES 4

static void assert_unseen(int64_t v, const int64_t *seen, int n) {
    for (int i = 0; i < n; i++)
        if (seen[i] == v) fail_msg("version %lld again (seen before as #%d)", (long long)v, i);
}

/* Every earlier version: grant and revoke with it are 412 and change nothing. */
static void stale_refused(rf *db, const char *user, const int64_t *seen, int n, int64_t now) {
    for (int i = 0; i < n; i++) {
        if (seen[i] == now) continue;
        struct rf_grant_req req = {.user_id = user, .key = "k", .if_match_version = seen[i]};
        struct rf_grant_res res;
        struct rf_entitlement e;
        assert_int_equal(rf_entitlement_grant(db, &req, &res, NULL), RF_ERR_VERSION_MISMATCH);
        assert_int_equal(rf_entitlement_revoke(db, user, "k", seen[i], &e),
                         RF_ERR_VERSION_MISMATCH);
        assert_int_equal(rf_entitlement_get(db, user, "k", &e), RF_OK);
        assert_int_equal(e.version, now);
        assert_int_equal(e.status, RF_ENT_STATUS_ACTIVE);
        rf_entitlement_clear(&e);
    }
}

/* Revoked and granted again, expired and granted again: one row whose
 * version carries on, so no earlier If-Match matches a later grant. */
static void test_regrant_never_repeats_version(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    char user[64];
    rf_rand_id("again", user, sizeof user);
    int64_t seen[3 * CYCLES];
    int n = 0;
    for (int i = 0; i < CYCLES; i++) {
        struct rf_grant_req req = {.user_id = user, .key = "k", .expires_at_ms = 1000};
        struct rf_grant_res res;
        assert_int_equal(rf_entitlement_grant(db, &req, &res, NULL), RF_OK); /* expired */
        assert_int_equal(res.ent.status, RF_ENT_STATUS_EXPIRED);
        assert_unseen(res.ent.version, seen, n);
        seen[n++] = res.ent.version;
        rf_entitlement_clear(&res.ent);
        req.expires_at_ms = 0;
        assert_int_equal(rf_entitlement_grant(db, &req, &res, NULL), RF_OK); /* active */
        int64_t now = res.ent.version;
        rf_entitlement_clear(&res.ent);
        assert_unseen(now, seen, n);
        stale_refused(db, user, seen, n, now);
        seen[n++] = now;
        struct rf_entitlement e;
        assert_int_equal(rf_entitlement_revoke(db, user, "k", now, &e), RF_OK);
        assert_unseen(e.version, seen, n);
        seen[n++] = e.version;
        rf_entitlement_clear(&e);
    }
}

/* Grants and revokes with an If-Match read now or earlier, racing on one
 * (user, key): a revoke succeeds only at the exact version it names. */
#define STALE_THREADS 16
#define STALE_OPS 12

struct stale_mix {
    rf *db;
    char user[64];
    int64_t first_version;  /* revoked before the race: stale throughout */
    pthread_mutex_t mu;
    int n_revoked;
    int64_t revoked_at[STALE_THREADS * STALE_OPS]; /* the If-Match of each revoke */
    rf_err bad[STALE_THREADS];
};

static void stale_revoke(struct stale_mix *m, int idx, int op, int64_t *older) {
    struct rf_entitlement e;
    int64_t now = 0;
    rf_err err = rf_entitlement_get(m->db, m->user, "k", &e);
    if (err == RF_OK && e.status == RF_ENT_STATUS_ACTIVE) now = e.version;
    else if (err && err != RF_ERR_ENTITLEMENT_NOT_FOUND) m->bad[idx] = err;
    rf_entitlement_clear(&e);
    int64_t if_match = (op % 2 == 0 && now) ? now : *older;
    if (now) *older = now;
    err = rf_entitlement_revoke(m->db, m->user, "k", if_match, &e);
    if (err == RF_OK) {
        if (e.version != if_match + 1) m->bad[idx] = RF_ERR_INTERNAL; /* not what it named */
        pthread_mutex_lock(&m->mu);
        m->revoked_at[m->n_revoked++] = if_match;
        pthread_mutex_unlock(&m->mu);
    } else if (err != RF_ERR_VERSION_MISMATCH && err != RF_ERR_ENTITLEMENT_NOT_FOUND) {
        m->bad[idx] = err;
    }
    rf_entitlement_clear(&e);
}

static void stale_mix_one(int idx, void *ctx) {
    struct stale_mix *m = ctx;
    int64_t older = m->first_version;
    for (int op = 0; op < STALE_OPS; op++) {
        if (idx % 2) {
            stale_revoke(m, idx, op, &older);
            continue;
        }
        struct rf_grant_req req = {.user_id = m->user, .key = "k"};
        struct rf_grant_res res;
        rf_err err = rf_entitlement_grant(m->db, &req, &res, NULL);
        if (err) m->bad[idx] = err;
        rf_entitlement_clear(&res.ent);
    }
}

static void test_stale_revoke_race(void **state) {
    (void)state;
    struct stale_mix *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->db = rf_core_fx.db;
    pthread_mutex_init(&m->mu, NULL);
    rf_rand_id("stale", m->user, sizeof m->user);
    struct rf_grant_req req = {.user_id = m->user, .key = "k"};
    struct rf_grant_res res;
    assert_int_equal(rf_entitlement_grant(m->db, &req, &res, NULL), RF_OK);
    m->first_version = res.ent.version;
    rf_entitlement_clear(&res.ent);
    struct rf_entitlement e;
    assert_int_equal(rf_entitlement_revoke(m->db, m->user, "k", m->first_version, &e), RF_OK);
    rf_entitlement_clear(&e);
    assert_int_equal(rf_parallel_fn(STALE_THREADS, stale_mix_one, m), 0);
    for (int i = 0; i < STALE_THREADS; i++) assert_int_equal(m->bad[i], RF_OK);
    for (int i = 0; i < m->n_revoked; i++) { /* each active version revoked at most once */
        assert_true(m->revoked_at[i] != m->first_version);
        for (int j = 0; j < i; j++) assert_true(m->revoked_at[j] != m->revoked_at[i]);
    }
    assert_int_equal(rf_entitlement_get(m->db, m->user, "k", &e), RF_OK);
    /* versions: first active, revoked, then one grant and one revoke per step */
    assert_int_equal(e.version, m->first_version + 1 + 2 * m->n_revoked +
                                    (e.status == RF_ENT_STATUS_ACTIVE));
    rf_entitlement_clear(&e);
    print_message("stale revoke race: %d revokes\n", m->n_revoked);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void test_pagination(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    char user[64];
    rf_rand_id("page", user, sizeof user);
    for (int i = 0; i < 7; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        struct rf_grant_req req = {.user_id = user, .key = key};
        struct rf_grant_res res;
        assert_int_equal(rf_entitlement_grant(db, &req, &res, NULL), RF_OK);
        rf_entitlement_clear(&res.ent);
    }
    char after[RF_CURSOR_BYTES] = "";
    int total = 0, pages = 0;
    do {
        struct rf_entitlement_page page;
        assert_int_equal(rf_entitlement_list(db, user, RF_ENT_ALL, after, 3, &page), RF_OK);
        total += page.n;
        pages++;
        snprintf(after, sizeof after, "%s", page.next);
        rf_entitlement_page_clear(&page);
    } while (after[0] && pages < 10);
    assert_int_equal(total, 7);
    assert_int_equal(pages, 3); /* 3 + 3 + 1: the short page ends it (next "") */
}

/* A list read that is retried starts from an empty page: what the failed
 * attempt read (items with memory of their own) is cleared, not kept or
 * listed twice. On PostgreSQL a list is an autocommit read, not retried:
 * the caller gets an empty page back. Leaks show under ASan. */
static void test_pagination_retried(void **state) {
    (void)state;
    struct rf_options opt = {.test_hooks = true};
    struct rf_core_fixture fx;
    assert_int_equal(rf_core_fixture_open(&fx, &opt), 0);
    rf *db = fx.db;
    char user[64];
    rf_rand_id("retry", user, sizeof user);
    for (int i = 0; i < 4; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        struct rf_grant_req req = {.user_id = user, .key = key, .source = "retry",
                                   .metadata_json = "{\"n\":1}"};
        struct rf_grant_res res;
        assert_int_equal(rf_entitlement_grant(db, &req, &res, NULL), RF_OK);
        rf_entitlement_clear(&res.ent);
    }
    struct rf_entitlement_page want, page;
    assert_int_equal(rf_entitlement_list(db, user, RF_ENT_ALL, NULL, 3, &want), RF_OK);
    assert_int_equal(want.n, 3);
    int64_t runs = rf_test_op_runs(db);
    rf_test_fail_next(db, "entitlement_list", RF_ERR_RETRY); /* after the rows were read */
    rf_err err = rf_entitlement_list(db, user, RF_ENT_ALL, NULL, 3, &page);
    if (rf_test_db_is_pg()) {
        assert_int_equal(err, RF_ERR_UNAVAILABLE);
        assert_null(page.items);
        assert_int_equal(page.n, 0);
        assert_string_equal(page.next, "");
    } else {
        assert_int_equal(err, RF_OK);
        assert_int_equal(rf_test_op_runs(db) - runs, 2); /* read, retried once */
        assert_int_equal(page.n, 3);
        for (int i = 0; i < 3; i++) {
            assert_string_equal(page.items[i].id, want.items[i].id);
            assert_string_equal(page.items[i].source, "retry");
        }
        assert_string_equal(page.next, want.next);
    }
    rf_entitlement_page_clear(&page);
    rf_entitlement_page_clear(&want);
    rf_core_fixture_close(&fx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        rf_core_unit_test(test_grant_race),
        rf_core_unit_test(test_grant_revoke_versions),
        rf_core_unit_test(test_idempotency),
        rf_core_unit_test(test_legacy_record_never_reruns),
        rf_core_unit_test(test_record_stores_status_name),
        rf_core_unit_test(test_expiry_and_reactivation),
        rf_core_unit_test(test_regrant_never_repeats_version),
        rf_core_unit_test(test_stale_revoke_race),
        rf_core_unit_test(test_pagination),
        cmocka_unit_test(test_pagination_retried), /* a fixture of its own: test hooks */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
