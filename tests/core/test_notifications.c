/*
 * test_notifications.c - notification_create_tx (core/flows.h) at the
 * library level, on the back end in RF_TEST_DB: the create that
 * announcements' fan-out calls inside its own transactions.
 *
 * Proves: a first create makes the row (created true); the same dedupe_key
 * for the same user finds it (created false, the same id) and another user
 * may use the key; the same (announcement_id, user_id) finds the first
 * row, also in a second transaction (a fan-out chunk run again after a
 * crash), while another recipient of the announcement gets a row of its
 * own; 16 threads creating one announcement's notification for one user
 * at once make one row; a rolled-back transaction leaves nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "core/flows.h"
#include "racefree.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"

struct create {
    struct notification_spec spec;
    char id[RF_ID_BYTES];
    bool created;
    bool fail_after; /* roll the transaction back after the create */
};

static rf_err create_tx(struct rf_tx *tx, void *ctx) {
    struct create *c = ctx;
    rf_err err = notification_create_tx(tx, &c->spec, c->id, &c->created);
    return !err && c->fail_after ? RF_ERR_CONFLICT : err;
}

static rf_err create(struct create *c) {
    return core_write(rf_core_fx.db, "test_notification_create", 0, create_tx, c);
}

static struct create spec_of(const char *user, const char *dedupe, const char *announcement) {
    return (struct create){.spec = {.user_id = user, .kind = "test.kind", .title = "t",
                                    .body = "b", .data_json = "{\"a\":1}",
                                    .dedupe_key = dedupe, .announcement_id = announcement}};
}

static int64_t unread(const char *user) {
    struct rf_notification_count c;
    assert_int_equal(rf_notification_unread_count(rf_core_fx.db, user, &c), RF_OK);
    return c.unread_count;
}

static void test_dedupe_identity(void **state) {
    (void)state;
    char u1[64], u2[64];
    rf_rand_id("u", u1, sizeof u1);
    rf_rand_id("u", u2, sizeof u2);
    struct create a = spec_of(u1, "d-1", NULL), b = spec_of(u1, "d-1", NULL),
                  c = spec_of(u2, "d-1", NULL), d = spec_of(u1, NULL, NULL);
    assert_int_equal(create(&a), RF_OK);
    assert_true(a.created);
    assert_int_equal(create(&b), RF_OK);
    assert_false(b.created);
    assert_string_equal(b.id, a.id);
    assert_int_equal(create(&c), RF_OK); /* another user's key space */
    assert_true(c.created);
    assert_string_not_equal(c.id, a.id);
    assert_int_equal(create(&d), RF_OK); /* no key: always a new one */
    assert_true(d.created);
    assert_int_equal(unread(u1), 2);
    struct rf_notification n = {0};
    assert_int_equal(rf_notification_get(rf_core_fx.db, u1, a.id, &n), RF_OK);
    assert_string_equal(n.dedupe_key, "d-1");
    assert_string_equal(n.data_json, "{\"a\":1}");
    rf_notification_clear(&n);
    /* Only under its own user. */
    assert_int_equal(rf_notification_get(rf_core_fx.db, u2, a.id, &n),
                     RF_ERR_NOTIFICATION_NOT_FOUND);
}

static void test_announcement_identity(void **state) {
    (void)state;
    char u1[64], u2[64], ann[64];
    rf_rand_id("u", u1, sizeof u1);
    rf_rand_id("u", u2, sizeof u2);
    rf_rand_id("ann", ann, sizeof ann);
    struct create a = spec_of(u1, NULL, ann), again = spec_of(u1, NULL, ann),
                  other = spec_of(u2, NULL, ann);
    assert_int_equal(create(&a), RF_OK);
    assert_true(a.created);
    assert_int_equal(create(&again), RF_OK); /* a chunk run again */
    assert_false(again.created);
    assert_string_equal(again.id, a.id);
    assert_int_equal(create(&other), RF_OK);
    assert_true(other.created);
    assert_int_equal(unread(u1), 1);
    assert_int_equal(unread(u2), 1);
    /* Rolled back: nothing is left. */
    char u3[64];
    rf_rand_id("u", u3, sizeof u3);
    struct create gone = spec_of(u3, NULL, ann);
    gone.fail_after = true;
    assert_int_equal(create(&gone), RF_ERR_CONFLICT);
    assert_int_equal(unread(u3), 0);
}

#define RACERS 16

struct race {
    char user[64], ann[64];
    struct create c[RACERS];
};

static void race_fn(int idx, void *ctx) {
    struct race *r = ctx;
    r->c[idx] = spec_of(r->user, NULL, r->ann);
    if (create(&r->c[idx]) != RF_OK) r->c[idx].id[0] = '\0';
}

static void test_announcement_race(void **state) {
    (void)state;
    static struct race r;
    memset(&r, 0, sizeof r);
    rf_rand_id("u", r.user, sizeof r.user);
    rf_rand_id("ann", r.ann, sizeof r.ann);
    assert_int_equal(rf_parallel_fn(RACERS, race_fn, &r), 0);
    int created = 0;
    for (int i = 0; i < RACERS; i++) {
        assert_string_equal(r.c[i].id, r.c[0].id);
        created += r.c[i].created;
    }
    assert_int_equal(created, 1);
    assert_int_equal(unread(r.user), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedupe_identity),
        cmocka_unit_test(test_announcement_identity),
        cmocka_unit_test(test_announcement_race),
    };
    return cmocka_run_group_tests(tests, rf_core_setup, rf_core_teardown);
}
