/*
 * test_keys.c - API keys through the operation table, at the library level,
 * on the back end named by RF_TEST_DB.
 *
 * Proves:
 *  - rf_key_create answers the new key and its secret in one result, and
 *    the secret authenticates with the key's role; a NULL or "" name is the
 *    role's name;
 *  - the one field spec refuses a role that is not one of the four (0, two
 *    bits at once, an unknown bit) and a name that is not an id, with the
 *    field named and today's sentence, and makes no key;
 *  - with an Idempotency-Key, many threads released together make one key:
 *    every answer (first or replayed) carries the same id and secret, the
 *    record at rest is sealed (neither the secret nor the id readable in the
 *    store), another seal secret cannot open it, another request under the
 *    same key is idempotency_key_reused, and an Idempotency-Key without a
 *    seal secret is refused before anything runs;
 *  - many threads revoking one key at once: exactly one succeeds, the rest
 *    are key_not_found, and the key no longer authenticates;
 *  - the list pages through every key exactly once; a bad cursor is
 *    invalid_cursor and a bad limit invalid.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include <cmocka.h>

#include "racefree.h"
#include "store/store.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"

#define THREADS 16
#define MINE_MAX 8

static int64_t active_keys(rf *db) {
    int64_t n = -1;
    assert_int_equal(rf_key_count_active(db, &n), RF_OK);
    return n;
}

/* The stored body of the Idempotency-Key record ikey (scope api_key_id),
 * read with a connection of its own; "" when there is none. */
static void stored_body(const char *api_key_id, const char *ikey, char *out, size_t cap) {
    const struct store_ops *ops = store_for_url(rf_core_fx.url);
    struct store_conn *c = NULL;
    struct rf_options opt = {0};
    assert_non_null(ops);
    assert_int_equal(ops->connect(rf_core_fx.url, &opt, true, &c), RF_OK);
    store_val p[2] = {SV_S(api_key_id), SV_S(ikey)};
    struct store_rows *r = NULL;
    out[0] = '\0';
    assert_int_equal(ops->query(c, "SELECT body FROM idempotency_keys WHERE key_id = $1"
                                   " AND idem_key = $2",
                                p, 2, &r),
                     RF_OK);
    if (ops->rows_next(r) > 0) snprintf(out, cap, "%s", ops->rows_text(r, 0));
    ops->rows_close(r);
    ops->disconnect(c);
}

static void test_create_answers_secret(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    static const struct {
        enum rf_role role;
        const char *name, *want_name;
    } cases[] = {{RF_ROLE_SERVICE, "svc-a", "svc-a"},
                 {RF_ROLE_WORKER, NULL, "worker"},
                 {RF_ROLE_READONLY, "", "readonly"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rf_key_created made;
        assert_int_equal(rf_key_create(db, cases[i].role, cases[i].name, &made, NULL), RF_OK);
        assert_string_equal(made.key.name, cases[i].want_name);
        assert_int_equal(made.key.role, cases[i].role);
        assert_int_equal(made.key.revoked_at_ms, 0);
        assert_true(made.key.created_at_ms > 0);
        struct rf_key who;
        assert_int_equal(rf_key_authenticate(db, made.secret, &who), RF_OK);
        assert_string_equal(who.id, made.key.id);
        assert_int_equal(who.role, cases[i].role);
        rf_key_created_clear(&made);
        assert_int_equal(made.secret[0], '\0');
    }
}

static void test_create_refuses_bad_input(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    int64_t before = active_keys(db);
    static const struct {
        int role;
        const char *name, *param, *detail;
    } cases[] = {
        {0, "k0", "role", "field 'role' must be one of admin|service|worker|readonly"},
        {RF_ROLE_ADMIN | RF_ROLE_SERVICE, "k1", "role",
         "field 'role' must be one of admin|service|worker|readonly"},
        {16, "k2", "role", "field 'role' must be one of admin|service|worker|readonly"},
        {RF_ROLE_ADMIN, "..", "name", "field 'name' must be 1-128 characters of [A-Za-z0-9._:-]"},
        {RF_ROLE_ADMIN, "a b", "name",
         "field 'name' must be 1-128 characters of [A-Za-z0-9._:-]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rf_key_create_req req = {(enum rf_role)cases[i].role, cases[i].name, NULL};
        struct rf_key_created made;
        memset(&made, 'x', sizeof made);
        struct rf_fault fault;
        assert_int_equal(rf_op_run(db, RF_OP_KEY_CREATE, &req, &made, NULL, &fault),
                         RF_ERR_INVALID);
        assert_int_equal(fault.code, RF_ERR_INVALID_FIELD);
        assert_string_equal(fault.param, cases[i].param);
        assert_string_equal(fault.detail, cases[i].detail);
        assert_int_equal(made.secret[0], '\0'); /* a failure leaves no secret behind */
        assert_int_equal(rf_key_create(db, req.role, req.name, &made, NULL), RF_ERR_INVALID);
    }
    assert_int_equal(active_keys(db), before);
}

struct idem_race {
    rf *db;
    char ikey[64];
    char name[64];
    rf_err err[THREADS];
    bool replayed[THREADS];
    struct rf_key_created made[THREADS];
};

static void idem_init(struct rf_idem *idem, const char *ikey, const char *body,
                      const char *seal_secret) {
    memset(idem, 0, sizeof *idem);
    idem->key = ikey;
    idem->api_key_id = "test-admin";
    idem->seal_secret = seal_secret;
    rf_core_idem_hash(idem, "POST", "/v1/keys", body, strlen(body));
}

static void create_one(int idx, void *ctx) {
    struct idem_race *r = ctx;
    struct rf_idem idem;
    idem_init(&idem, r->ikey, "same", "rfk_the-callers-key");
    r->err[idx] = rf_key_create(r->db, RF_ROLE_SERVICE, r->name, &r->made[idx], &idem);
    r->replayed[idx] = idem.replayed;
}

static void test_idempotent_create_sealed(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    struct idem_race *r = calloc(1, sizeof *r);
    r->db = db;
    rf_rand_id("ik", r->ikey, sizeof r->ikey);
    rf_rand_id("idem", r->name, sizeof r->name);
    int64_t before = active_keys(db);
    assert_int_equal(rf_parallel_fn(THREADS, create_one, r), 0);
    int fresh = 0, answered = 0;
    const struct rf_key_created *first = NULL;
    for (int i = 0; i < THREADS; i++) {
        if (r->err[i] == RF_ERR_IDEM_IN_FLIGHT) continue;
        assert_int_equal(r->err[i], RF_OK);
        answered++;
        fresh += !r->replayed[i];
        if (!first) first = &r->made[i];
        /* the first answer and every replay: one key, one secret */
        assert_string_equal(r->made[i].key.id, first->key.id);
        assert_string_equal(r->made[i].secret, first->secret);
        assert_string_equal(r->made[i].key.name, r->name);
        assert_int_equal(r->made[i].key.role, RF_ROLE_SERVICE);
        assert_int_equal(r->made[i].key.created_at_ms, first->key.created_at_ms);
    }
    assert_true(answered >= 1);
    assert_int_equal(fresh, 1);
    assert_int_equal(active_keys(db), before + 1);
    struct rf_key who;
    assert_int_equal(rf_key_authenticate(db, first->secret, &who), RF_OK);
    assert_string_equal(who.id, first->key.id);

    /* At rest the record is sealed: neither the secret nor the id shows. */
    char body[4096];
    stored_body("test-admin", r->ikey, body, sizeof body);
    assert_true(strncmp(body, "sealed:", 7) == 0);
    assert_null(strstr(body, first->secret + 4 + 37)); /* the secret's hex part */
    assert_null(strstr(body, first->key.id));

    /* Another seal secret cannot open it; another request is a reuse. */
    struct rf_idem idem;
    struct rf_key_created made;
    idem_init(&idem, r->ikey, "same", "rfk_someone-else");
    assert_int_equal(rf_key_create(db, RF_ROLE_SERVICE, r->name, &made, &idem),
                     RF_ERR_IDEM_REUSED);
    assert_int_equal(made.secret[0], '\0');
    idem_init(&idem, r->ikey, "different", "rfk_the-callers-key");
    assert_int_equal(rf_key_create(db, RF_ROLE_SERVICE, r->name, &made, &idem),
                     RF_ERR_IDEM_REUSED);
    /* The same caller still replays the first answer. */
    idem_init(&idem, r->ikey, "same", "rfk_the-callers-key");
    assert_int_equal(rf_key_create(db, RF_ROLE_SERVICE, r->name, &made, &idem), RF_OK);
    assert_true(idem.replayed);
    assert_string_equal(made.secret, first->secret);
    rf_key_created_clear(&made);

    /* A key's secret is never stored unsealed: no seal secret, no run. */
    char other[64];
    rf_rand_id("ik", other, sizeof other);
    idem_init(&idem, other, "same", NULL);
    struct rf_fault fault;
    struct rf_key_create_req req = {RF_ROLE_SERVICE, r->name, NULL};
    assert_int_equal(rf_op_run(db, RF_OP_KEY_CREATE, &req, &made, &idem, &fault),
                     RF_ERR_INVALID);
    assert_non_null(strstr(fault.detail, "seal_secret"));
    stored_body("test-admin", other, body, sizeof body);
    assert_string_equal(body, "");
    assert_int_equal(active_keys(db), before + 1);
    for (int i = 0; i < THREADS; i++) rf_key_created_clear(&r->made[i]);
    free(r);
}

struct revoke_race {
    rf *db;
    char id[RF_ID_BYTES];
    rf_err err[THREADS];
};

static void revoke_one(int idx, void *ctx) {
    struct revoke_race *r = ctx;
    r->err[idx] = rf_key_revoke(r->db, r->id);
}

static void test_revoke_race(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    for (int round = 0; round < 3; round++) {
        struct rf_key_created made;
        assert_int_equal(rf_key_create(db, RF_ROLE_WORKER, NULL, &made, NULL), RF_OK);
        struct revoke_race *r = calloc(1, sizeof *r);
        r->db = db;
        snprintf(r->id, sizeof r->id, "%s", made.key.id);
        int64_t before = active_keys(db);
        assert_int_equal(rf_parallel_fn(THREADS, revoke_one, r), 0);
        int ok = 0;
        for (int i = 0; i < THREADS; i++) {
            if (r->err[i] == RF_OK) ok++;
            else assert_int_equal(r->err[i], RF_ERR_KEY_NOT_FOUND);
        }
        assert_int_equal(ok, 1);
        assert_int_equal(active_keys(db), before - 1);
        struct rf_key who;
        assert_int_equal(rf_key_authenticate(db, made.secret, &who), RF_ERR_UNAUTHENTICATED);
        assert_int_equal(rf_key_revoke(db, "no-such-key"), RF_ERR_KEY_NOT_FOUND);
        assert_int_equal(rf_key_revoke(db, ".."), RF_ERR_INVALID);
        /* the revoked key still reads, with the time it was revoked */
        struct rf_key got;
        assert_int_equal(rf_key_get(db, made.key.id, &got), RF_OK);
        assert_string_equal(got.id, made.key.id);
        assert_int_equal(got.role, RF_ROLE_WORKER);
        assert_int_equal(got.created_at_ms, made.key.created_at_ms);
        assert_true(got.revoked_at_ms >= got.created_at_ms);
        assert_int_equal(rf_key_get(db, "no-such-key", &got), RF_ERR_KEY_NOT_FOUND);
        assert_int_equal(rf_key_get(db, "a b", &got), RF_ERR_INVALID);
        rf_key_created_clear(&made);
        free(r);
    }
}

/* The authentication cache: a key revoked by this process stops working at
 * once. Threads authenticate in a loop while the key is revoked; a call that
 * began after rf_key_revoke returned must be refused, even when a read that
 * began before the revoke committed was still putting the key back into the
 * cache. */
struct auth_race {
    rf *db;
    char secret[RF_KEY_SECRET_BYTES];
    atomic_bool revoked; /* rf_key_revoke returned */
    atomic_bool stop;
    atomic_int late_ok;  /* began after the revoke returned, and succeeded */
    atomic_int ok_before;
};

static void auth_loop(int idx, void *ctx) {
    struct auth_race *r = ctx;
    if (idx == 0) { /* the revoker, once the others are running */
        for (int ms = 0; atomic_load(&r->ok_before) < 200 && ms < 10000; ms++) rf_t_sleep_ms(1);
        char id[RF_ID_BYTES];
        snprintf(id, sizeof id, "%.36s", r->secret + 4);
        assert_int_equal(rf_key_revoke(r->db, id), RF_OK);
        atomic_store(&r->revoked, true);
        return;
    }
    for (int n = 0; n < 200000 && !atomic_load(&r->stop); n++) {
        bool after = atomic_load(&r->revoked);
        struct rf_key k;
        rf_err err = rf_key_authenticate(r->db, r->secret, &k);
        if (err == RF_OK && after) atomic_fetch_add(&r->late_ok, 1);
        if (err == RF_OK && !after) atomic_fetch_add(&r->ok_before, 1);
        if (err == RF_ERR_UNAUTHENTICATED && after) break; /* seen */
        assert_true(err == RF_OK || err == RF_ERR_UNAUTHENTICATED);
    }
}

static void test_revoked_at_once_here(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    for (int round = 0; round < 3; round++) {
        struct rf_key_created made;
        assert_int_equal(rf_key_create(db, RF_ROLE_SERVICE, NULL, &made, NULL), RF_OK);
        struct auth_race *r = calloc(1, sizeof *r);
        r->db = db;
        snprintf(r->secret, sizeof r->secret, "%s", made.secret);
        assert_int_equal(strncmp(made.secret + 4, made.key.id, strlen(made.key.id)), 0);
        assert_int_equal(rf_parallel_fn(THREADS, auth_loop, r), 0);
        assert_true(atomic_load(&r->revoked));
        assert_int_equal(atomic_load(&r->late_ok), 0);
        struct rf_key k;
        assert_int_equal(rf_key_authenticate(db, made.secret, &k), RF_ERR_UNAUTHENTICATED);
        rf_key_created_clear(&made);
        free(r);
    }
}

/* Another process's revoke (here: the store changed behind this process's
 * back, as `racefree keys revoke` does) is seen within the cache's TTL. */
static void test_revoked_elsewhere_within_ttl(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    struct rf_key_created made;
    assert_int_equal(rf_key_create(db, RF_ROLE_SERVICE, NULL, &made, NULL), RF_OK);
    struct rf_key k;
    assert_int_equal(rf_key_authenticate(db, made.secret, &k), RF_OK); /* now cached */
    rf *other = NULL;
    assert_int_equal(rf_open(rf_core_fx.url, NULL, &other), RF_OK);
    assert_int_equal(rf_key_revoke(other, made.key.id), RF_OK);
    rf_close(other);
    int64_t t0 = rf_t_now_ms(), waited = 0;
    while (rf_key_authenticate(db, made.secret, &k) == RF_OK) {
        waited = rf_t_now_ms() - t0;
        if (waited > 3000) fail_msg("revoked key still accepted after %lld ms", (long long)waited);
        rf_t_sleep_ms(20);
    }
    assert_true(rf_t_now_ms() - t0 <= 1000 + 1000); /* the TTL, and scheduling slack */
    rf_key_created_clear(&made);
}

static void test_list_pages(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    char names[MINE_MAX][64];
    char revoked_id[RF_ID_BYTES] = "";
    for (int i = 0; i < MINE_MAX; i++) {
        rf_rand_id("list", names[i], sizeof names[i]);
        struct rf_key_created made;
        assert_int_equal(rf_key_create(db, RF_ROLE_READONLY, names[i], &made, NULL), RF_OK);
        if (i == 3) snprintf(revoked_id, sizeof revoked_id, "%s", made.key.id);
        rf_key_created_clear(&made);
    }
    assert_int_equal(rf_key_revoke(db, revoked_id), RF_OK);
    int seen[MINE_MAX] = {0};
    char after[RF_CURSOR_BYTES] = "";
    for (int pages = 0;; pages++) {
        assert_true(pages < 10000);
        struct rf_key_page pg;
        assert_int_equal(rf_key_list(db, after, 3, &pg), RF_OK);
        assert_true(pg.n <= 3);
        for (int i = 0; i < pg.n; i++) {
            for (int k = 0; k < MINE_MAX; k++) {
                if (strcmp(pg.items[i].name, names[k]) != 0) continue;
                seen[k]++;
                bool is_revoked = strcmp(pg.items[i].id, revoked_id) == 0;
                assert_int_equal(pg.items[i].revoked_at_ms != 0, is_revoked);
            }
        }
        snprintf(after, sizeof after, "%s", pg.next);
        rf_key_page_clear(&pg);
        if (!after[0]) break;
    }
    for (int k = 0; k < MINE_MAX; k++) assert_int_equal(seen[k], 1);
    struct rf_key_page pg;
    assert_int_equal(rf_key_list(db, "..", 3, &pg), RF_ERR_INVALID_CURSOR);
    assert_null(pg.items);
    assert_int_equal(rf_key_list(db, "no-such-key", 3, &pg), RF_ERR_INVALID_CURSOR);
    assert_int_equal(rf_key_list(db, NULL, -1, &pg), RF_ERR_INVALID);
    assert_int_equal(pg.n, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        rf_core_unit_test(test_create_answers_secret),
        rf_core_unit_test(test_create_refuses_bad_input),
        rf_core_unit_test(test_idempotent_create_sealed),
        rf_core_unit_test(test_revoke_race),
        rf_core_unit_test(test_revoked_at_once_here),
        rf_core_unit_test(test_revoked_elsewhere_within_ttl),
        rf_core_unit_test(test_list_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
