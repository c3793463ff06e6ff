/*
 * test_bindings.c - seed 002 at the library level, on the back end in
 * RF_TEST_DB: two requests released together bind one user to two customers
 * (and two users to one customer), 100 rounds each; every round exactly one
 * creates and the other gets a conflict naming the winner, and the store
 * holds the winner only. Never a success for a customer the caller did not
 * send.
 *
 * Versions never repeat for a natural key: a user unbound and bound again
 * (to another customer), or a customer bound again to another user, gets a
 * version above every earlier one, so an unbind with the old If-Match is a
 * version mismatch and leaves the new binding alone; and under a barrier race
 * of re-binds and stale unbinds on one user, no two bindings share a version
 * and every unbind removed exactly the binding its If-Match named. A store
 * upgraded from before migration 004 (whose bindings were all version 1)
 * never hands out version 1 again.
 *
 * Bind racing unbind: many threads bind one user to one customer while others
 * unbind it, released together. A bind whose insert met a binding that an
 * unbind then removed must run again, never answer success with no binding:
 * every successful bind names the customer it bound, every unbind removed a
 * binding some bind created, and the store ends as the answers add up to.
 * (The window is narrow here; test_pg_retry holds it open on PostgreSQL.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "racefree.h"
#include "store/store.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"

#define ROUNDS 100
#define CYCLES 6          /* bind/unbind cycles on one natural key */
#define RACE_THREADS 16   /* half re-bind, half unbind with an old If-Match */
#define RACE_OPS 20       /* operations per thread */
#define RACE_RECORDS (RACE_THREADS * RACE_OPS + 1)
#define FLIP_THREADS 16   /* a quarter bind, the rest unbind one (provider, user) */
#define FLIP_OPS 60       /* operations per thread */
#define FLIP_RECORDS (FLIP_THREADS * FLIP_OPS)
#define FLIP_ROUNDS 5     /* each on a fresh user: the window is narrow */

struct race {
    char user[2][64];
    char customer[2][64];
    rf_err err[2];
    struct rf_bind_res res[2];
};

static void bind_one(int idx, void *ctx) {
    struct race *r = ctx;
    r->err[idx] =
        rf_customer_bind(rf_core_fx.db, r->user[idx], "stripe", r->customer[idx], &r->res[idx]);
}

/* Exactly one winner; the loser's conflict names the winner's side. */
static int check_round(struct race *r, bool same_user) {
    int w = r->err[0] == RF_OK ? 0 : 1, l = 1 - w;
    assert_int_equal(r->err[w], RF_OK);
    assert_true(r->res[w].created);
    assert_string_equal(r->res[w].binding.customer_id, r->customer[w]);
    assert_string_equal(r->res[w].binding.user_id, r->user[w]);
    assert_int_equal(r->err[l], RF_ERR_BINDING_CONFLICT);
    if (same_user) assert_string_equal(r->res[l].existing_customer_id, r->customer[w]);
    else assert_string_equal(r->res[l].existing_user_id, r->user[w]);
    struct rf_binding b;
    assert_int_equal(rf_customer_get_by_user(rf_core_fx.db, r->user[w], "stripe", &b), RF_OK);
    assert_string_equal(b.customer_id, r->customer[w]);
    assert_int_equal(rf_customer_get_by_customer(rf_core_fx.db, "stripe", r->customer[w], &b),
                     RF_OK);
    assert_string_equal(b.user_id, r->user[w]);
    if (same_user) /* the loser's customer is bound to nobody */
        assert_int_equal(rf_customer_get_by_customer(rf_core_fx.db, "stripe", r->customer[l], &b),
                         RF_ERR_BINDING_NOT_FOUND);
    else
        assert_int_equal(rf_customer_get_by_user(rf_core_fx.db, r->user[l], "stripe", &b),
                         RF_ERR_BINDING_NOT_FOUND);
    return w;
}

static void test_one_user_two_customers(void **state) {
    (void)state;
    for (int round = 0; round < ROUNDS; round++) {
        struct race r;
        memset(&r, 0, sizeof r);
        rf_rand_id("user", r.user[0], sizeof r.user[0]);
        strcpy(r.user[1], r.user[0]);
        rf_rand_id("cus_AAA", r.customer[0], sizeof r.customer[0]);
        rf_rand_id("cus_BBB", r.customer[1], sizeof r.customer[1]);
        assert_int_equal(rf_parallel_fn(2, bind_one, &r), 0);
        check_round(&r, true);
    }
}

static void test_two_users_one_customer(void **state) {
    (void)state;
    for (int round = 0; round < ROUNDS; round++) {
        struct race r;
        memset(&r, 0, sizeof r);
        rf_rand_id("user-a", r.user[0], sizeof r.user[0]);
        rf_rand_id("user-b", r.user[1], sizeof r.user[1]);
        rf_rand_id("cus", r.customer[0], sizeof r.customer[0]);
        strcpy(r.customer[1], r.customer[0]);
        assert_int_equal(rf_parallel_fn(2, bind_one, &r), 0);
        check_round(&r, false);
    }
}

static void test_rebind_and_unbind(void **state) {
    (void)state;
    char user[64], cus[64];
    rf_rand_id("user", user, sizeof user);
    rf_rand_id("cus", cus, sizeof cus);
    struct rf_bind_res res;
    assert_int_equal(rf_customer_bind(rf_core_fx.db, user, "stripe", cus, &res), RF_OK);
    assert_true(res.created);
    assert_int_equal(rf_customer_bind(rf_core_fx.db, user, "stripe", cus, &res), RF_OK);
    assert_false(res.created); /* 200: exactly this binding exists */
    int64_t v = res.binding.version; /* >= 1; 1 only in a fresh store */
    assert_true(v >= 1);
    char other[64];
    rf_rand_id("cus_pp", other, sizeof other);
    assert_int_equal(rf_customer_bind(rf_core_fx.db, user, "paypal", other, &res), RF_OK);
    assert_true(res.created); /* per provider */
    struct rf_binding b;
    assert_int_equal(rf_customer_unbind(rf_core_fx.db, user, "stripe", v + 6, &b),
                     RF_ERR_VERSION_MISMATCH);
    assert_int_equal(rf_customer_unbind(rf_core_fx.db, user, "stripe", v, &b), RF_OK);
    assert_int_equal(rf_customer_unbind(rf_core_fx.db, user, "stripe", 0, &b),
                     RF_ERR_BINDING_NOT_FOUND);
    rf_rand_id("cus_new", other, sizeof other);
    assert_int_equal(rf_customer_bind(rf_core_fx.db, user, "stripe", other, &res), RF_OK);
    assert_true(res.created);
    /* Both sides in the way: the user holds `other`, user2 holds cus. The
     * conflict names both and leaves no binding in the result. */
    char user2[64];
    rf_rand_id("user2", user2, sizeof user2);
    assert_int_equal(rf_customer_bind(rf_core_fx.db, user2, "stripe", cus, &res), RF_OK);
    assert_int_equal(rf_customer_bind(rf_core_fx.db, user, "stripe", cus, &res),
                     RF_ERR_BINDING_CONFLICT);
    assert_string_equal(res.existing_customer_id, other);
    assert_string_equal(res.existing_user_id, user2);
    assert_int_equal(res.binding.version, 0);
    assert_false(res.created);
    /* Bad input, whichever function gets it: RF_ERR_INVALID. */
    assert_int_equal(rf_customer_bind(rf_core_fx.db, "bad id", "stripe", cus, &res),
                     RF_ERR_INVALID);
    assert_int_equal(rf_customer_bind(rf_core_fx.db, user, "stripe", NULL, &res), RF_ERR_INVALID);
    assert_int_equal(rf_customer_get_by_user(rf_core_fx.db, user, "..", &b), RF_ERR_INVALID);
    assert_int_equal(rf_customer_get_by_customer(rf_core_fx.db, "stripe", "a/b", &b),
                     RF_ERR_INVALID);
    assert_int_equal(rf_customer_unbind(rf_core_fx.db, user, "stripe", -1, &b), RF_ERR_INVALID);
    assert_int_equal(rf_customer_get_by_user(rf_core_fx.db, user, "stripe", &b), RF_OK);
    assert_string_equal(b.customer_id, other); /* none of them changed anything */
}

/* ---- versions across unbind and re-bind ---------------------------------- */

static void assert_new_version(int64_t v, const int64_t *earlier, int n) {
    for (int i = 0; i < n; i++)
        if (v <= earlier[i])
            fail_msg("version %lld after %lld: a new binding must be above every earlier one",
                     (long long)v, (long long)earlier[i]);
}

/* One user, bound to a new customer each cycle. */
static void test_rebind_never_repeats_version_by_user(void **state) {
    (void)state;
    char user[64], cus[CYCLES][64];
    int64_t seen[CYCLES];
    rf_rand_id("user", user, sizeof user);
    for (int i = 0; i < CYCLES; i++) {
        rf_rand_id("cus", cus[i], sizeof cus[i]);
        struct rf_bind_res res;
        assert_int_equal(rf_customer_bind(rf_core_fx.db, user, "stripe", cus[i], &res), RF_OK);
        assert_true(res.created);
        assert_new_version(res.binding.version, seen, i);
        seen[i] = res.binding.version;
        struct rf_binding b;
        for (int old = 0; old < i; old++) { /* every stale If-Match: 412, nothing changes */
            assert_int_equal(rf_customer_unbind(rf_core_fx.db, user, "stripe", seen[old], &b),
                             RF_ERR_VERSION_MISMATCH);
            assert_int_equal(rf_customer_get_by_user(rf_core_fx.db, user, "stripe", &b), RF_OK);
            assert_string_equal(b.customer_id, cus[i]);
            assert_int_equal(b.version, seen[i]);
        }
        assert_int_equal(rf_customer_get_by_customer(rf_core_fx.db, "stripe", cus[i], &b), RF_OK);
        assert_int_equal(b.version, seen[i]);
        assert_int_equal(rf_customer_unbind(rf_core_fx.db, user, "stripe", seen[i], &b), RF_OK);
        assert_string_equal(b.customer_id, cus[i]);
        assert_int_equal(b.version, seen[i]);
    }
}

/* One customer, bound to a new user each cycle: a fresh user's binding still
 * continues from the customer's earlier bindings. */
static void test_rebind_never_repeats_version_by_customer(void **state) {
    (void)state;
    char cus[64], user[CYCLES][64];
    int64_t seen[CYCLES];
    rf_rand_id("cus", cus, sizeof cus);
    for (int i = 0; i < CYCLES; i++) {
        rf_rand_id("user", user[i], sizeof user[i]);
        struct rf_bind_res res;
        assert_int_equal(rf_customer_bind(rf_core_fx.db, user[i], "stripe", cus, &res), RF_OK);
        assert_true(res.created);
        assert_new_version(res.binding.version, seen, i);
        seen[i] = res.binding.version;
        struct rf_binding b;
        if (i > 0) /* the version read from the customer's previous binding */
            assert_int_equal(rf_customer_unbind(rf_core_fx.db, user[i], "stripe", seen[i - 1], &b),
                             RF_ERR_VERSION_MISMATCH);
        assert_int_equal(rf_customer_get_by_customer(rf_core_fx.db, "stripe", cus, &b), RF_OK);
        assert_string_equal(b.user_id, user[i]);
        assert_int_equal(b.version, seen[i]);
        assert_int_equal(rf_customer_unbind(rf_core_fx.db, user[i], "stripe", seen[i], &b), RF_OK);
    }
}

/* Re-binds and unbinds with old If-Match values racing on one user. */
struct stale_race {
    char user[64];
    pthread_mutex_t mu;
    int n_created, n_removed;
    int64_t created_v[RACE_RECORDS];
    char created_cus[RACE_RECORDS][RF_ID_BYTES];
    int64_t removed_if_match[RACE_RECORDS], removed_v[RACE_RECORDS];
    char removed_cus[RACE_RECORDS][RF_ID_BYTES];
    int64_t first_version;    /* the binding before the race: stale throughout */
    int first_removed;        /* unbinds carrying first_version that succeeded */
    rf_err bad[RACE_THREADS]; /* an answer no interleaving allows */
};

static void race_rebind(struct stale_race *r, int idx) {
    char cus[64];
    rf_rand_id("cus", cus, sizeof cus);
    struct rf_bind_res res;
    rf_err err = rf_customer_bind(rf_core_fx.db, r->user, "stripe", cus, &res);
    if (err == RF_ERR_BINDING_CONFLICT) return; /* still bound to another customer */
    if (err || !res.created) {
        r->bad[idx] = err ? err : RF_ERR_INTERNAL;
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->created_v[r->n_created] = res.binding.version;
    snprintf(r->created_cus[r->n_created++], RF_ID_BYTES, "%s", cus);
    pthread_mutex_unlock(&r->mu);
}

/* Unbinds with the version read just now, or (every other time) with one
 * read earlier: the binding before the race, or an older read. */
static void race_unbind(struct stale_race *r, int idx, int op, int64_t *older) {
    struct rf_binding b;
    int64_t now = 0;
    rf_err err = rf_customer_get_by_user(rf_core_fx.db, r->user, "stripe", &b);
    if (err == RF_OK) now = b.version;
    else if (err != RF_ERR_BINDING_NOT_FOUND) r->bad[idx] = err;
    int64_t if_match = (op % 2 == 0 && now) ? now : *older;
    if (now) *older = now;
    err = rf_customer_unbind(rf_core_fx.db, r->user, "stripe", if_match, &b);
    if (err == RF_ERR_VERSION_MISMATCH || err == RF_ERR_BINDING_NOT_FOUND) return;
    if (err) {
        r->bad[idx] = err;
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->removed_if_match[r->n_removed] = if_match;
    r->removed_v[r->n_removed] = b.version;
    snprintf(r->removed_cus[r->n_removed++], RF_ID_BYTES, "%s", b.customer_id);
    r->first_removed += if_match == r->first_version;
    pthread_mutex_unlock(&r->mu);
}

static void stale_race_one(int idx, void *ctx) {
    struct stale_race *r = ctx;
    int64_t older = r->first_version;
    for (int op = 0; op < RACE_OPS; op++) {
        if (idx % 2) race_unbind(r, idx, op, &older);
        else race_rebind(r, idx);
    }
}

/* The binding created with version v, or -1; versions must be unique. */
static int created_with(const struct stale_race *r, int64_t v) {
    int found = -1;
    for (int i = 0; i < r->n_created; i++) {
        if (r->created_v[i] != v) continue;
        if (found >= 0) fail_msg("two bindings of one user got version %lld", (long long)v);
        found = i;
    }
    return found;
}

static void check_stale_race(struct stale_race *r) {
    for (int i = 0; i < RACE_THREADS; i++) assert_int_equal(r->bad[i], RF_OK);
    assert_int_equal(r->first_removed, 0); /* its binding was gone before the race */
    for (int i = 0; i < r->n_created; i++) (void)created_with(r, r->created_v[i]);
    for (int i = 0; i < r->n_removed; i++) { /* removed exactly what If-Match named */
        assert_int_equal(r->removed_v[i], r->removed_if_match[i]);
        int c = created_with(r, r->removed_v[i]);
        assert_true(c >= 0);
        assert_string_equal(r->removed_cus[i], r->created_cus[c]);
        for (int j = 0; j < i; j++) assert_true(r->removed_v[j] != r->removed_v[i]);
    }
    struct rf_binding b; /* every binding made is removed, or is the one left */
    rf_err err = rf_customer_get_by_user(rf_core_fx.db, r->user, "stripe", &b);
    assert_true(err == RF_OK || err == RF_ERR_BINDING_NOT_FOUND);
    if (err == RF_OK)
        assert_string_equal(b.customer_id, r->created_cus[created_with(r, b.version)]);
    assert_int_equal(r->n_created, r->n_removed + (err == RF_OK));
}

static void test_stale_unbind_race(void **state) {
    (void)state;
    struct stale_race *r = calloc(1, sizeof *r);
    assert_non_null(r);
    pthread_mutex_init(&r->mu, NULL);
    rf_rand_id("user", r->user, sizeof r->user);
    char cus[64];
    rf_rand_id("cus", cus, sizeof cus);
    struct rf_bind_res res;
    assert_int_equal(rf_customer_bind(rf_core_fx.db, r->user, "stripe", cus, &res), RF_OK);
    r->first_version = res.binding.version;
    struct rf_binding b;
    assert_int_equal(rf_customer_unbind(rf_core_fx.db, r->user, "stripe", r->first_version, &b),
                     RF_OK);
    r->created_v[0] = r->first_version; /* the first binding counts among the versions */
    snprintf(r->created_cus[0], RF_ID_BYTES, "%s", cus);
    r->removed_if_match[0] = r->removed_v[0] = r->first_version;
    snprintf(r->removed_cus[0], RF_ID_BYTES, "%s", cus);
    r->n_created = r->n_removed = 1;
    assert_int_equal(rf_parallel_fn(RACE_THREADS, stale_race_one, r), 0);
    assert_true(r->n_created >= 2); /* the user was free: some re-bind created */
    print_message("stale unbind race: %d bindings made, %d removed\n", r->n_created,
                  r->n_removed);
    check_stale_race(r);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- bind racing unbind on one (provider, user) --------------------------- */

struct flip_race {
    char user[64], cus[64];
    pthread_mutex_t mu;
    int n_created, n_existing, n_removed;
    int64_t created_v[FLIP_RECORDS], existing_v[FLIP_RECORDS], removed_v[FLIP_RECORDS];
    char bad[FLIP_THREADS][400]; /* an answer no interleaving allows */
};

/* A second handle, as another process has: while open, about half of each
 * kind of thread goes through it, so the bind and the unbind race between
 * executors too (within one handle key routing decides who meets whom). */
static rf *g_other;

static rf *flip_db(int idx) { return g_other && (idx + idx / 4) % 2 ? g_other : rf_core_fx.db; }

static void flip_record(struct flip_race *r, int64_t *list, int *n, int64_t v) {
    pthread_mutex_lock(&r->mu);
    list[(*n)++] = v;
    pthread_mutex_unlock(&r->mu);
}

static void flip_bind(struct flip_race *r, int idx) {
    struct rf_bind_res res;
    rf_err err = rf_customer_bind(flip_db(idx), r->user, "stripe", r->cus, &res);
    if (err) {
        snprintf(r->bad[idx], sizeof r->bad[idx], "bind: %s", rf_err_code(err));
    } else if (strcmp(res.binding.customer_id, r->cus) || strcmp(res.binding.user_id, r->user) ||
               res.binding.version < 1) {
        snprintf(r->bad[idx], sizeof r->bad[idx],
                 "bind answered OK (created %d) with binding '%s'/'%s' v%lld", res.created,
                 res.binding.user_id, res.binding.customer_id, (long long)res.binding.version);
    } else if (res.created) {
        flip_record(r, r->created_v, &r->n_created, res.binding.version);
    } else {
        flip_record(r, r->existing_v, &r->n_existing, res.binding.version);
    }
}

static void flip_unbind(struct flip_race *r, int idx) {
    struct rf_binding b;
    rf_err err = rf_customer_unbind(flip_db(idx), r->user, "stripe", 0, &b);
    if (err == RF_ERR_BINDING_NOT_FOUND) return;
    if (err || strcmp(b.customer_id, r->cus))
        snprintf(r->bad[idx], sizeof r->bad[idx], "unbind: %s, binding '%s'", rf_err_code(err),
                 b.customer_id);
    else flip_record(r, r->removed_v, &r->n_removed, b.version);
}

static void flip_race_one(int idx, void *ctx) {
    struct flip_race *r = ctx;
    for (int op = 0; op < FLIP_OPS && !r->bad[idx][0]; op++) {
        if (idx % 4) flip_unbind(r, idx); /* most unbind: a bind meets a binding that */
        else flip_bind(r, idx);           /* goes away before it reads it back */
    }
}

static bool flip_listed(const int64_t *list, int n, int64_t v) {
    for (int i = 0; i < n; i++)
        if (list[i] == v) return true;
    return false;
}

static void check_flip_race(struct flip_race *r) {
    for (int i = 0; i < FLIP_THREADS; i++)
        if (r->bad[i][0]) fail_msg("thread %d: %s", i, r->bad[i]);
    for (int i = 0; i < r->n_created; i++) /* each binding made once, removed at most once */
        for (int j = 0; j < i; j++) assert_true(r->created_v[i] != r->created_v[j]);
    for (int i = 0; i < r->n_removed; i++) {
        assert_true(flip_listed(r->created_v, r->n_created, r->removed_v[i]));
        for (int j = 0; j < i; j++) assert_true(r->removed_v[i] != r->removed_v[j]);
    }
    for (int i = 0; i < r->n_existing; i++) /* "exactly this binding" names a made one */
        assert_true(flip_listed(r->created_v, r->n_created, r->existing_v[i]));
    struct rf_binding b;
    rf_err err = rf_customer_get_by_user(rf_core_fx.db, r->user, "stripe", &b);
    assert_true(err == RF_OK || err == RF_ERR_BINDING_NOT_FOUND);
    assert_int_equal(r->n_created, r->n_removed + (err == RF_OK));
    if (err == RF_OK) {
        assert_string_equal(b.customer_id, r->cus);
        assert_true(flip_listed(r->created_v, r->n_created, b.version));
        assert_false(flip_listed(r->removed_v, r->n_removed, b.version));
    }
}

static void test_bind_races_unbind(void **state) {
    (void)state;
    for (int round = 0; round < FLIP_ROUNDS; round++) {
        if (round == 1) { /* the later rounds from two handles */
            struct rf_options opt = {0};
            assert_int_equal(rf_open(rf_core_fx.url, &opt, &g_other), RF_OK);
        }
        struct flip_race *r = calloc(1, sizeof *r);
        assert_non_null(r);
        pthread_mutex_init(&r->mu, NULL);
        rf_rand_id("user", r->user, sizeof r->user);
        rf_rand_id("cus", r->cus, sizeof r->cus);
        assert_int_equal(rf_parallel_fn(FLIP_THREADS, flip_race_one, r), 0);
        print_message("bind vs unbind: %d created, %d already bound, %d removed\n",
                      r->n_created, r->n_existing, r->n_removed);
        check_flip_race(r);
        assert_true(r->n_created >= 2 && r->n_removed >= 1); /* it flipped: the threads raced */
        pthread_mutex_destroy(&r->mu);
        free(r);
    }
    rf_close(g_other);
    g_other = NULL;
}

/* A store made by a binary before migration 004: every binding it made was
 * version 1, and the unbound ones left no row. After the upgrade no binding
 * is version 1 again, so an If-Match read before the upgrade cannot match. */
extern const struct store_migration store_migrations_sqlite[];
extern const struct store_migration store_migrations_postgres[];

static void make_pre_004_store(const char *url) {
    const struct store_ops *ops = store_for_url(url);
    assert_non_null(ops);
    const struct store_migration *m =
        ops->backend == STORE_SQLITE ? store_migrations_sqlite : store_migrations_postgres;
    struct store_conn *c = NULL;
    struct rf_options opt = {0};
    assert_int_equal(ops->connect(url, &opt, false, &c), RF_OK);
    assert_int_equal(ops->exec_script(c, "CREATE TABLE schema_version (version BIGINT PRIMARY"
                                         " KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"),
                     RF_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(m[i].version, i + 1);
        assert_int_equal(ops->exec_script(c, m[i].sql), RF_OK);
        store_val p[2] = {SV_I(m[i].version), SV_S(m[i].name)};
        assert_int_equal(ops->exec(c, "INSERT INTO schema_version (version, name, applied_at)"
                                      " VALUES ($1, $2, 0)", p, 2, NULL),
                         RF_OK);
    }
    /* Bound and still bound: u-live to c-live (version 1). Bound and unbound
     * before the upgrade: u-gone to c-gone, which left no row. */
    assert_int_equal(ops->exec_script(c, "INSERT INTO customer_bindings (provider, user_id,"
                                         " customer_id, created_at, version) VALUES"
                                         " ('stripe', 'u-live', 'c-live', 0, 1)"),
                     RF_OK);
    ops->disconnect(c);
}

static void test_upgrade_keeps_versions_from_repeating(void **state) {
    (void)state;
    char url[RF_T_URL_BYTES];
    assert_int_equal(rf_test_db_fresh(url, sizeof url), 0);
    make_pre_004_store(url);
    rf *db = NULL;
    assert_int_equal(rf_open(url, NULL, &db), RF_OK); /* migrates to the latest */
    struct rf_bind_res res;
    struct rf_binding b;
    assert_int_equal(rf_customer_bind(db, "u-gone", "stripe", "c-gone", &res), RF_OK);
    assert_true(res.created);
    assert_true(res.binding.version >= 2); /* "1" was this key's binding before */
    assert_int_equal(rf_customer_unbind(db, "u-gone", "stripe", 1, &b), RF_ERR_VERSION_MISMATCH);
    assert_int_equal(rf_customer_unbind(db, "u-live", "stripe", 1, &b), RF_OK); /* carries on */
    assert_int_equal(rf_customer_bind(db, "u-live", "stripe", "c-other", &res), RF_OK);
    assert_true(res.binding.version >= 2);
    assert_int_equal(rf_customer_unbind(db, "u-live", "stripe", 1, &b), RF_ERR_VERSION_MISMATCH);
    assert_int_equal(rf_customer_bind(db, "u-new", "stripe", "c-live", &res), RF_OK);
    assert_true(res.binding.version >= 2); /* c-live's old binding was version 1 */
    rf_close(db);
    rf_test_db_cleanup(url);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_user_two_customers),
        cmocka_unit_test(test_two_users_one_customer),
        cmocka_unit_test(test_rebind_and_unbind),
        cmocka_unit_test(test_rebind_never_repeats_version_by_user),
        cmocka_unit_test(test_rebind_never_repeats_version_by_customer),
        cmocka_unit_test(test_stale_unbind_race),
        cmocka_unit_test(test_bind_races_unbind),
        cmocka_unit_test(test_upgrade_keeps_versions_from_repeating),
    };
    return cmocka_run_group_tests(tests, rf_core_setup, rf_core_teardown);
}
