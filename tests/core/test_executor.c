/*
 * test_executor.c - the executor's promises, on the back end in RF_TEST_DB:
 *  - one failing operation in a group-committed batch is rolled back alone;
 *    also when what fails is a statement the operation did not wait for
 *    (store_exec_later: on PostgreSQL its error arrives with the release of
 *    the operation's savepoint), with the same error it always had;
 *  - a store error (forced commit failure; a real SQLITE_BUSY; a dropped
 *    PostgreSQL connection) answers RF_ERR_UNAVAILABLE to the operations it
 *    affected and loses none that were acknowledged;
 *  - a COMMIT whose answer is lost after the server committed answers the
 *    operation's real result, once (PostgreSQL resolves it);
 *  - a full queue answers RF_ERR_OVERLOADED, and nothing else breaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/tamper.h"
#include "core/test_hooks.h"
#include "racefree.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"

/* fx opened with opt and the test hooks on. */
static rf *open_db(struct rf_core_fixture *fx, struct rf_options *opt) {
    opt->test_hooks = true;
    assert_int_equal(rf_core_fixture_open(fx, opt), 0);
    return fx->db;
}

static rf_err grant(rf *db, const char *user, const char *key, int64_t *version) {
    struct rf_grant_req req = {.user_id = user, .key = key};
    struct rf_grant_res res;
    rf_err err = rf_entitlement_grant(db, &req, &res, NULL);
    if (!err && version) *version = res.ent.version;
    rf_entitlement_clear(&res.ent);
    return err;
}

static bool exists(rf *db, const char *user, const char *key) {
    struct rf_entitlement e;
    rf_err err = rf_entitlement_get(db, user, key, &e);
    rf_entitlement_clear(&e);
    assert_true(err == RF_OK || err == RF_ERR_ENTITLEMENT_NOT_FOUND);
    return err == RF_OK;
}

#define N_OPS 16

struct batch {
    rf *db;
    char user[64];
    rf_err err[N_OPS];
};

/* Thread 0 revokes the pre-made "victim"; the others grant k<idx>. */
static void batch_one(int idx, void *ctx) {
    struct batch *b = ctx;
    char key[16];
    snprintf(key, sizeof key, "k%d", idx);
    if (idx == 0) {
        struct rf_entitlement e;
        b->err[0] = rf_entitlement_revoke(b->db, b->user, "victim", 0, &e);
        rf_entitlement_clear(&e);
    } else {
        b->err[idx] = grant(b->db, b->user, key, NULL);
    }
}

/* Group commit really batched: some committed batch held several operations. */
static void assert_batched(rf *db) {
    struct rf_stats st;
    rf_stats_get(db, &st);
    int64_t multi = 0;
    for (int i = 1; i < 8; i++) multi += st.batch_ops_hist[i];
    assert_true(multi >= 1);
}

/* One operation of a group-committed batch fails; it alone is rolled back
 * (its savepoint), every other one commits. On both back ends: PostgreSQL
 * batches like SQLite (one committer here, so the batch builds up). */
static void test_failure_in_batch(void **state) {
    (void)state;
    struct rf_options opt = {.writers = 1};
    struct rf_core_fixture fx;
    rf *db = open_db(&fx, &opt);
    struct batch b = {.db = db};
    rf_rand_id("batch", b.user, sizeof b.user);
    assert_int_equal(grant(db, b.user, "victim", NULL), RF_OK);
    rf_test_set_op_delay(db, 150); /* let a batch build up behind the first */
    rf_test_fail_next(db, "entitlement_revoke", RF_ERR_INTERNAL);
    assert_int_equal(rf_parallel_fn(N_OPS, batch_one, &b), 0);
    rf_test_set_op_delay(db, 0);
    assert_int_equal(b.err[0], RF_ERR_INTERNAL);
    for (int i = 1; i < N_OPS; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(b.err[i], RF_OK);
        assert_true(exists(db, b.user, key));
    }
    /* the failed revoke left nothing: still active at version 1 */
    struct rf_entitlement e;
    assert_int_equal(rf_entitlement_get(db, b.user, "victim", &e), RF_OK);
    assert_int_equal(e.status, RF_ENT_STATUS_ACTIVE);
    assert_int_equal(e.version, 1);
    rf_entitlement_clear(&e);
    assert_batched(db);
    rf_core_fixture_close(&fx);
}

#define N_CREDITS 16

struct credits {
    rf *db;
    char ikey[64];
    char donor[64]; /* a user account that may go negative: the source */
    char account[N_CREDITS][64];
    char hold[N_CREDITS][RF_ID_BYTES]; /* a hold of 1 from donor to account[i] */
    rf_err err[N_CREDITS];
};

/* Every fourth credit goes to an account whose next entry row is taken. A
 * credit is the post of a hold: a posted transfer would write its entries
 * in the flush (deferred.h), not in the operation; a hold's resolution
 * moves its rows at once and writes its entries as it goes. */
static bool is_victim(int idx) { return idx % 4 == 1; }

static void place_hold(struct credits *c, int idx) {
    struct rf_transfer_req req = {.debit_account = c->donor, .credit_account = c->account[idx],
                                  .amount_minor = 1, .currency = "USD", .pending = true};
    struct rf_transfer_res res;
    assert_int_equal(rf_transfer_create(c->db, &req, &res, NULL), RF_OK);
    snprintf(c->hold[idx], sizeof c->hold[idx], "%s", res.transfer.id);
    rf_transfer_clear(&res.transfer);
}

static rf_err keyed_credit(struct credits *c, int idx, bool *replayed) {
    char key[96];
    snprintf(key, sizeof key, "%s-%d", c->ikey, idx);
    struct rf_idem idem = {.api_key_id = "k", .key = key};
    rf_core_idem_hash(&idem, "POST", "/credits", "1", 1);
    struct rf_transfer_res res;
    rf_err err = rf_transfer_post(c->db, c->hold[idx], 0, &res, &idem);
    rf_transfer_clear(&res.transfer);
    if (replayed) *replayed = idem.replayed;
    return err;
}

static void credit_one(int idx, void *ctx) {
    struct credits *c = ctx;
    c->err[idx] = keyed_credit(c, idx, NULL);
}

static int64_t posted(rf *db, const char *id) {
    struct rf_account a;
    assert_int_equal(rf_account_get(db, id, &a), RF_OK);
    int64_t v = a.posted;
    rf_account_clear(&a);
    return v;
}

static void make_account(rf *db, const char *prefix, char *id, size_t cap) {
    rf_rand_id(prefix, id, cap);
    struct rf_account_req req = {.id = id, .currency = "USD", .kind = RF_ACCOUNT_USER};
    struct rf_account_res res;
    assert_int_equal(rf_account_create(db, &req, &res, NULL), RF_OK);
    rf_account_clear(&res.account);
}

/* The entry row a credit would write next, written first behind racefree's
 * back: the credit's entry INSERT, which nothing waits for on PostgreSQL,
 * violates the primary key. */
static const char SQL_TAKE_NEXT_ENTRY[] =
    "INSERT INTO entries (account_id, seq, transfer_id, side, amount_minor, balance_after,"
    " created_at) SELECT id, version + 1, $2, 'credit', 1, 1, 0 FROM accounts WHERE id = $1";
static const char SQL_FREE_ENTRY[] = "DELETE FROM entries WHERE account_id = $1 AND transfer_id = $2";

/* Keyed credits (posts of holds) in group-committed batches; the entry INSERT of every
 * fourth fails. Each of those answers RF_ERR_CONFLICT (the store's answer to
 * a key violation, as when the INSERT was waited for) and changes nothing:
 * no balance, no idempotency record (the same key runs again later); every
 * other credit commits once (its key replays), and the ledger stays clean. */
static void test_queued_failure_in_batch(void **state) {
    (void)state;
    struct rf_options opt = {.writers = 1};
    struct rf_core_fixture fx;
    struct credits c = {.db = open_db(&fx, &opt)};
    rf_rand_id("qf", c.ikey, sizeof c.ikey);
    char t_id[RF_ID_BYTES];
    rf_rand_id("qf-donor", c.donor, sizeof c.donor);
    struct rf_account_req donor = {.id = c.donor, .currency = "USD", .kind = RF_ACCOUNT_USER,
                                   .allow_negative = true};
    struct rf_account_res made;
    assert_int_equal(rf_account_create(c.db, &donor, &made, NULL), RF_OK);
    rf_account_clear(&made.account);
    struct rf_transfer_res res;
    assert_int_equal(rf_credit_apply(c.db, c.donor, 1, "donor", &res, NULL), RF_OK);
    snprintf(t_id, sizeof t_id, "%s", res.transfer.id);
    rf_transfer_clear(&res.transfer);
    for (int i = 0; i < N_CREDITS; i++) {
        make_account(c.db, "qf", c.account[i], sizeof c.account[i]);
        place_hold(&c, i);
        if (is_victim(i)) tamper(fx.url, SQL_TAKE_NEXT_ENTRY, c.account[i], t_id, 1);
    }
    rf_test_set_op_delay(c.db, 150); /* let a batch build up behind the first */
    assert_int_equal(rf_parallel_fn(N_CREDITS, credit_one, &c), 0);
    rf_test_set_op_delay(c.db, 0);
    for (int i = 0; i < N_CREDITS; i++) {
        assert_int_equal(c.err[i], is_victim(i) ? RF_ERR_CONFLICT : RF_OK);
        assert_int_equal(posted(c.db, c.account[i]), is_victim(i) ? 0 : 1);
    }
    assert_batched(c.db);
    for (int i = 0; i < N_CREDITS; i++) {
        if (is_victim(i)) tamper(fx.url, SQL_FREE_ENTRY, c.account[i], t_id, 1);
        bool replayed = false;
        assert_int_equal(keyed_credit(&c, i, &replayed), RF_OK);
        assert_true(replayed == !is_victim(i)); /* a failed credit stored no record */
        assert_int_equal(posted(c.db, c.account[i]), 1);
    }
    struct rf_ledger_check chk;
    assert_int_equal(rf_ledger_check(c.db, &chk), RF_OK);
    assert_true(chk.clean);
    rf_core_fixture_close(&fx);
}

/* A keyed credit of 7 on account, with the key's replay flag. */
static rf_err keyed_credit7(rf *db, const char *account, const char *key, bool *replayed) {
    struct rf_idem idem = {.api_key_id = "k", .key = key};
    rf_core_idem_hash(&idem, "POST", "/credit7", account, strlen(account));
    struct rf_transfer_res res;
    rf_err err = rf_credit_apply(db, account, 7, NULL, &res, &idem);
    rf_transfer_clear(&res.transfer);
    *replayed = idem.replayed;
    return err;
}

/* SQLite at sync full answers a batch only after the fsync that makes it
 * durable (the syncer): when that fsync fails, the credit it committed is
 * answered outcome_unknown, not success; the caller's retry with the same
 * key replays it, applied once. (PostgreSQL's COMMIT is durable when it
 * returns: there the hook changes nothing and the first call succeeds.) */
static void test_sync_failure(void **state) {
    (void)state;
    struct rf_options opt = {0};
    struct rf_core_fixture fx;
    rf *db = open_db(&fx, &opt);
    bool sqlite = strcmp(rf_backend_name(db), "sqlite") == 0;
    char account[64], key[64];
    make_account(db, "sync", account, sizeof account);
    rf_rand_id("sync-key", key, sizeof key);
    bool replayed = true;
    rf_test_fail_next_sync(db);
    assert_int_equal(keyed_credit7(db, account, key, &replayed),
                     sqlite ? RF_ERR_OUTCOME_UNKNOWN : RF_OK);
    assert_false(replayed);
    assert_int_equal(posted(db, account), 7); /* committed either way */
    assert_int_equal(keyed_credit7(db, account, key, &replayed), RF_OK);
    assert_true(replayed);
    assert_int_equal(posted(db, account), 7);
    struct rf_stats st;
    rf_stats_get(db, &st);
    assert_int_equal(st.store_errors, sqlite ? 1 : 0);
    rf_core_fixture_close(&fx);
}

static void test_commit_failure(void **state) {
    (void)state;
    struct rf_options opt = {0};
    struct rf_core_fixture fx;
    rf *db = open_db(&fx, &opt);
    char user[64];
    rf_rand_id("commit", user, sizeof user);
    assert_int_equal(grant(db, user, "before", NULL), RF_OK); /* acknowledged */
    rf_test_fail_next_commit(db);
    assert_int_equal(grant(db, user, "lost", NULL), RF_ERR_UNAVAILABLE);
    assert_false(exists(db, user, "lost"));
    assert_int_equal(grant(db, user, "after", NULL), RF_OK); /* the store recovers */
    /* a new process view: acknowledged effects are durable */
    assert_int_equal(rf_core_fixture_reopen(&fx, &opt), 0);
    db = fx.db;
    assert_true(exists(db, user, "before"));
    assert_true(exists(db, user, "after"));
    assert_false(exists(db, user, "lost"));
    rf_core_fixture_close(&fx);
}

/* COMMITs whose answer is lost after the server committed: each operation
 * is answered with its real result (PostgreSQL learns it on a fresh
 * connection; SQLite commits in process and has no answer to lose), is there
 * once, and was not run twice (granting again finds version 1). */
static void test_lost_commit_answer(void **state) {
    (void)state;
    struct rf_options opt = {0};
    struct rf_core_fixture fx;
    rf *db = open_db(&fx, &opt);
    char user[64];
    rf_rand_id("lost", user, sizeof user);
    enum { LOST = 4 };
    rf_test_lose_commit_replies(db, 2 * LOST); /* every commit below */
    for (int i = 0; i < LOST; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        int64_t version = 0;
        assert_int_equal(grant(db, user, key, &version), RF_OK);
        assert_int_equal(version, 1);
        assert_true(exists(db, user, key));
        assert_int_equal(grant(db, user, key, &version), RF_OK);
        assert_int_equal(version, 1);
    }
    struct rf_stats st;
    rf_stats_get(db, &st);
    assert_int_equal(st.store_errors, 0);
    rf_core_fixture_close(&fx);
}

/* A handle remembers a currency's system accounts only after a transaction
 * that had them committed: here the one that made them (with the first
 * account in a new currency) fails at COMMIT, so the next one makes them
 * again, and a credit in that currency still finds its funding account. */
static void test_system_accounts_after_failed_commit(void **state) {
    (void)state;
    struct rf_options opt = {0};
    struct rf_core_fixture fx;
    rf *db = open_db(&fx, &opt);
    char id[64];
    rf_rand_id("sys", id, sizeof id);
    struct rf_account_req req = {.id = id, .currency = "XTS", .kind = RF_ACCOUNT_USER};
    struct rf_account_res res;
    rf_test_fail_next_commit(db);
    assert_int_equal(rf_account_create(db, &req, &res, NULL), RF_ERR_UNAVAILABLE);
    rf_account_clear(&res.account);
    assert_int_equal(rf_account_create(db, &req, &res, NULL), RF_OK);
    rf_account_clear(&res.account);
    struct rf_transfer_res t;
    assert_int_equal(rf_credit_apply(db, id, 7, "test", &t, NULL), RF_OK);
    rf_transfer_clear(&t.transfer);
    struct rf_account a;
    assert_int_equal(rf_account_get(db, "funding:XTS", &a), RF_OK);
    assert_int_equal(a.posted, -7);
    rf_account_clear(&a);
    rf_core_fixture_close(&fx);
}

static void test_sqlite_busy(void **state) {
    (void)state;
    if (strncmp(getenv("RF_TEST_DB") ? getenv("RF_TEST_DB") : "", "sqlite", 6) != 0) {
        /* PostgreSQL's equivalent (a dropped connection) is test_commit_failure. */
        struct rf_options opt = {0};
        struct rf_core_fixture fx;
        rf *db = open_db(&fx, &opt);
        char user[64];
        rf_rand_id("drop", user, sizeof user);
        for (int i = 0; i < 3; i++) {
            rf_test_fail_next_commit(db);
            assert_int_equal(grant(db, user, "x", NULL), RF_ERR_UNAVAILABLE);
        }
        assert_int_equal(grant(db, user, "x", NULL), RF_OK);
        rf_core_fixture_close(&fx);
        return;
    }
    struct rf_options opt = {.busy_timeout_ms = 100};
    struct rf_core_fixture fx;
    rf *db = open_db(&fx, &opt);
    char user[64];
    rf_rand_id("busy", user, sizeof user);
    assert_int_equal(grant(db, user, "before", NULL), RF_OK);
    sqlite3 *other = NULL; /* another process's writer holding the lock */
    assert_int_equal(sqlite3_open(fx.url + 7, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(grant(db, user, "blocked", NULL), RF_ERR_UNAVAILABLE);
    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_false(exists(db, user, "blocked"));
    assert_int_equal(grant(db, user, "blocked", NULL), RF_OK);
    assert_true(exists(db, user, "before"));
    struct rf_stats st;
    rf_stats_get(db, &st);
    assert_true(st.store_errors >= 1);
    rf_core_fixture_close(&fx);
}

#define FLOOD 48
_Static_assert(FLOOD >= N_OPS, "a batch race fits in struct flood");

struct flood {
    rf *db;
    char user[64];
    rf_err err[FLOOD];
};

static void flood_one(int idx, void *ctx) {
    struct flood *f = ctx;
    char key[16];
    snprintf(key, sizeof key, "f%d", idx);
    f->err[idx] = grant(f->db, f->user, key, NULL);
}

/* A batch's COMMIT answer lost after the server committed: every operation
 * of the batch is answered with its real result, and is there once. */
static void test_lost_commit_answer_batch(void **state) {
    (void)state;
    struct rf_options opt = {.writers = 1};
    struct rf_core_fixture fx;
    rf *db = open_db(&fx, &opt);
    struct flood b = {.db = db};
    rf_rand_id("lostb", b.user, sizeof b.user);
    assert_int_equal(grant(db, b.user, "opener", NULL), RF_OK);
    rf_test_set_op_delay(db, 150); /* let a batch build up behind the first */
    rf_test_lose_commit_replies(db, 2 * N_OPS); /* every commit of the round */
    assert_int_equal(rf_parallel_fn(N_OPS, flood_one, &b), 0);
    rf_test_set_op_delay(db, 0);
    rf_test_lose_commit_replies(db, 0);
    for (int i = 0; i < N_OPS; i++) {
        char key[16];
        snprintf(key, sizeof key, "f%d", i);
        assert_int_equal(b.err[i], RF_OK);
        assert_true(exists(db, b.user, key));
        int64_t version = 0; /* applied once: granting again finds version 1 */
        assert_int_equal(grant(db, b.user, key, &version), RF_OK);
        assert_int_equal(version, 1);
    }
    struct rf_stats st;
    rf_stats_get(db, &st);
    assert_int_equal(st.store_errors, 0);
    assert_batched(db);
    rf_core_fixture_close(&fx);
}

static void test_queue_full(void **state) {
    (void)state;
    struct rf_options opt = {.queue_ops_max = 4, .batch_ops_max = 2, .pool_conns = 2};
    struct rf_core_fixture fx;
    rf *db = open_db(&fx, &opt);
    struct flood f = {.db = db};
    rf_rand_id("flood", f.user, sizeof f.user);
    rf_test_set_op_delay(db, 200);
    assert_int_equal(rf_parallel_fn(FLOOD, flood_one, &f), 0);
    rf_test_set_op_delay(db, 0);
    int ok = 0, overloaded = 0;
    for (int i = 0; i < FLOOD; i++) {
        char key[16];
        snprintf(key, sizeof key, "f%d", i);
        assert_true(f.err[i] == RF_OK || f.err[i] == RF_ERR_OVERLOADED);
        ok += f.err[i] == RF_OK;
        overloaded += f.err[i] == RF_ERR_OVERLOADED;
        assert_int_equal(exists(db, f.user, key), f.err[i] == RF_OK);
    }
    assert_true(ok >= 1);
    assert_true(overloaded >= 1);
    struct rf_stats st;
    rf_stats_get(db, &st);
    assert_int_equal(st.overloaded, overloaded);
    assert_int_equal(st.queue_depth, 0);
    rf_core_fixture_close(&fx);
}

static void test_shutdown_refuses(void **state) {
    (void)state;
    struct rf_options opt = {0};
    struct rf_core_fixture fx;
    rf *db = open_db(&fx, &opt);
    char user[64];
    rf_rand_id("shut", user, sizeof user);
    rf_shutdown_begin(db);
    assert_int_equal(grant(db, user, "x", NULL), RF_ERR_SHUTTING_DOWN);
    rf_core_fixture_close(&fx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failure_in_batch),
        cmocka_unit_test(test_queued_failure_in_batch),
        cmocka_unit_test(test_commit_failure),
        cmocka_unit_test(test_sync_failure),
        cmocka_unit_test(test_lost_commit_answer),
        cmocka_unit_test(test_lost_commit_answer_batch),
        cmocka_unit_test(test_system_accounts_after_failed_commit),
        cmocka_unit_test(test_sqlite_busy),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_shutdown_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
