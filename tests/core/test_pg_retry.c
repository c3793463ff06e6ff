/*
 * test_pg_retry.c - the PostgreSQL executor's fault paths, forced for real
 * (PostgreSQL only: SQLite's single writer can neither deadlock nor fail to
 * serialize). Each test counts the attempts (rf_test_op_runs: operation
 * bodies run; rf_stats.retries: re-runs) and checks the money against the
 * history (balances, entries, rf_ledger_check):
 *  - a deadlock (40P01): a second session locks the transfer's two accounts
 *    in the opposite order; PostgreSQL aborts racefree's transaction, the
 *    executor runs the transfer once more, the caller gets RF_OK, the
 *    transfer applies once;
 *  - a serialization failure (40001): with racefree at SERIALIZABLE (test
 *    hook), a raw session changes the debited row between the transfer's
 *    snapshot and its write (ordered by lock waits, no sleeps); the
 *    transfer runs once more and applies once;
 *  - 40001 raised by the server in k attempts: k + 1 runs, applied once; in
 *    RF_RETRIES_MAX attempts: RF_ERR_UNAVAILABLE promptly, nothing applied;
 *  - a bind whose INSERT .. ON CONFLICT met a binding that an unbind (second
 *    handle) removed before the bind read it back: a statement trigger the
 *    test installs holds the bind between the two statements on a lock the
 *    raw session owns; the bind runs once more and creates the binding,
 *    never answering success with no binding;
 *  - a revoke whose If-Match check waits for the row while a raw session
 *    moves it on two versions: 412, nothing changed (the check reads the
 *    row under the lock the write keeps);
 *  - two handles' batches placing holds on two accounts in opposite orders:
 *    a lock cycle between batches; one hold is aborted in its savepoint and
 *    runs again alone, every hold is placed once;
 *  - a COMMIT that fails after the operation ran: RF_ERR_UNAVAILABLE, not
 *    re-run, nothing applied; the client's retry with the same
 *    Idempotency-Key (meeting a serialization failure of its own) applies
 *    once, and a third call replays it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <pthread.h>

#include "base/limits.h"
#include "core/test_hooks.h"
#include "racefree.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"

#define WAIT_MS_MAX 20000      /* a backend reaching the state a test waits for */
#define POLL_MS 5
#define EXHAUST_MS_MAX 10000   /* RF_RETRIES_MAX failed attempts answer within this */

/* ---- accounts and money ------------------------------------------------- */

struct pair {
    char a[64], b[64]; /* a < b: racefree moves a first (id order) */
};

static void make_account(char *id, size_t cap, const char *prefix) {
    rf_rand_id(prefix, id, cap);
    struct rf_account_req req = {.id = id, .currency = "USD", .kind = RF_ACCOUNT_USER};
    struct rf_account_res res;
    assert_int_equal(rf_account_create(rf_core_fx.db, &req, &res, NULL), RF_OK);
    rf_account_clear(&res.account);
}

static rf_err credit(rf *db, const char *id, int64_t amount) {
    struct rf_transfer_res res;
    rf_err err = rf_credit_apply(db, id, amount, "test", &res, NULL);
    rf_transfer_clear(&res.transfer);
    return err;
}

/* Two accounts, a funded with 100. */
static void make_pair(struct pair *p) {
    make_account(p->a, sizeof p->a, "acct-a");
    make_account(p->b, sizeof p->b, "acct-b");
    assert_true(strcmp(p->a, p->b) < 0);
    assert_int_equal(credit(rf_core_fx.db, p->a, 100), RF_OK);
}

static rf_err transfer(rf *db, const char *from, const char *to, int64_t amount,
                       struct rf_idem *idem) {
    struct rf_transfer_req req = {.debit_account = from, .credit_account = to,
                                  .amount_minor = amount, .currency = "USD"};
    struct rf_transfer_res res;
    rf_err err = rf_transfer_create(db, &req, &res, idem);
    rf_transfer_clear(&res.transfer);
    return err;
}

static int64_t posted(const char *id) {
    struct rf_account a;
    assert_int_equal(rf_account_get(rf_core_fx.db, id, &a), RF_OK);
    int64_t v = a.posted;
    rf_account_clear(&a);
    return v;
}

static int entries(const char *id) {
    struct rf_entry_page page;
    assert_int_equal(rf_account_entries(rf_core_fx.db, id, NULL, 100, &page), RF_OK);
    int n = page.n;
    rf_entry_page_clear(&page);
    return n;
}

/* Balances and history agree, and each account has the expected entries. */
static void expect_money(const struct pair *p, int64_t a, int64_t b, int entries_a,
                         int entries_b) {
    assert_int_equal(posted(p->a), a);
    assert_int_equal(posted(p->b), b);
    assert_int_equal(entries(p->a), entries_a);
    assert_int_equal(entries(p->b), entries_b);
    struct rf_ledger_check c;
    assert_int_equal(rf_ledger_check(rf_core_fx.db, &c), RF_OK);
    assert_int_equal(c.accounts_mismatched, 0);
    assert_int_equal(c.currencies_unbalanced, 0);
    assert_true(c.clean);
}

/* ---- attempts ------------------------------------------------------------- */

struct attempts {
    int64_t runs, retries;
};

static struct attempts attempts_now(void) {
    struct rf_stats s;
    rf_stats_get(rf_core_fx.db, &s);
    return (struct attempts){rf_test_op_runs(rf_core_fx.db), s.retries};
}

/* The operations since `before` ran between runs_min and runs_max bodies, all
 * but the first of them re-runs. */
static void expect_attempts_between(struct attempts before, int64_t runs_min, int64_t runs_max) {
    struct attempts now = attempts_now();
    int64_t runs = now.runs - before.runs;
    assert_true(runs >= runs_min && runs <= runs_max);
    assert_int_equal(now.retries - before.retries, runs - 1);
}

/* The operations since `before` ran `runs` bodies, `retries` of them re-runs. */
static void expect_attempts(struct attempts before, int64_t runs, int64_t retries) {
    struct attempts now = attempts_now();
    assert_int_equal(now.runs - before.runs, runs);
    assert_int_equal(now.retries - before.retries, retries);
}

/* Each test starts with every hook off, whatever the last one left armed. */
static int hooks_off(void **state) {
    (void)state;
    rf_test_fail_serialization(rf_core_fx.db, 0);
    rf_test_set_serializable(rf_core_fx.db, false);
    rf_test_set_op_delay(rf_core_fx.db, 0);
    return 0;
}

/* ---- a raw session beside racefree --------------------------------------- */

static PGconn *raw_connect(void) {
    PGconn *pg = PQconnectdb(rf_core_fx.url);
    if (PQstatus(pg) != CONNECTION_OK) fail_msg("raw session: %s", PQerrorMessage(pg));
    return pg;
}

/* One statement with at most one parameter; fails the test on an error. */
static void raw_exec(PGconn *pg, const char *sql, const char *param) {
    PGresult *res = PQexecParams(pg, sql, param ? 1 : 0, NULL, &param, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("raw session: %s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
}

/* Waits (bounded) until at least n other backends on this test's database
 * match `where` (a condition on pg_stat_activity). The watcher must be
 * outside a transaction: one keeps its first view of pg_stat_activity. */
static void wait_for_backends(PGconn *watcher, const char *where, int n) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
             " AND pid <> pg_backend_pid() AND %s", where);
    int64_t deadline = rf_t_now_ms() + WAIT_MS_MAX;
    while (rf_t_now_ms() < deadline) {
        PGresult *res = PQexec(watcher, sql);
        bool found = PQresultStatus(res) == PGRES_TUPLES_OK && atoi(PQgetvalue(res, 0, 0)) >= n;
        PQclear(res);
        if (found) return;
        rf_t_sleep_ms(POLL_MS);
    }
    fail_msg("fewer than %d backends reached: %s", n, where);
}

#define WAITING_FOR_LOCK "wait_event_type = 'Lock'"

/* On its own thread: a transfer a -> b of `amount`. */
struct bg_op {
    pthread_t thread;
    rf *db;
    const struct pair *p;
    int64_t amount;
    rf_err err;
};

static void *bg_main(void *arg) {
    struct bg_op *t = arg;
    t->err = transfer(t->db, t->p->a, t->p->b, t->amount, NULL);
    return NULL;
}

static void bg_start(struct bg_op *t, rf *db, const struct pair *p, int64_t amount) {
    *t = (struct bg_op){.db = db, .p = p, .amount = amount, .err = RF_ERR_INTERNAL};
    assert_int_equal(pthread_create(&t->thread, NULL, bg_main, t), 0);
}

static rf_err bg_join(struct bg_op *t) {
    assert_int_equal(pthread_join(t->thread, NULL), 0);
    return t->err;
}

/* ---- 40P01: a real deadlock ------------------------------------------------ */

/* racefree's transfer locks a then b; the raw session locks b, waits until
 * racefree holds a and waits for b, then asks for a: a lock cycle.
 * The session's deadlock_timeout is long (setting it needs a superuser, as
 * the test clusters of scripts/pg.sh give), so racefree's backend (waiting
 * since before, at the default 1 s) finds the cycle and is the one aborted. */
static void test_deadlock_is_retried(void **state) {
    (void)state;
    struct pair p;
    make_pair(&p);
    PGconn *s = raw_connect(), *watcher = raw_connect();
    raw_exec(s, "SET deadlock_timeout = '60s'", NULL);
    raw_exec(s, "BEGIN", NULL);
    raw_exec(s, "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", p.b);
    struct attempts before = attempts_now();
    struct bg_op t;
    bg_start(&t, rf_core_fx.db, &p, 30);
    wait_for_backends(watcher, WAITING_FOR_LOCK, 1); /* racefree holds a, waits for b */
    raw_exec(s, "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", p.a); /* the cycle */
    raw_exec(s, "ROLLBACK", NULL); /* only after racefree's first attempt was aborted */
    PQfinish(s);
    PQfinish(watcher);
    assert_int_equal(bg_join(&t), RF_OK);
    /* 2 runs; 3 when the batch's bounded lock wait (RF_PG_BATCH_LOCK_WAIT_MS)
     * ended the first before the cycle formed, and the cycle then caught
     * the re-run alone */
    expect_attempts_between(before, 2, 3);
    expect_money(&p, 70, 30, 2, 1);
}

/* ---- 40001: a real serialization failure ---------------------------------- */

/* Ordered by lock waits, not by timing: a raw session locks a; the
 * transfer (SERIALIZABLE, test hook) takes its snapshot in its first
 * statements and queues for a (a transfer's rows are moved in the flush,
 * and its insert's foreign key check on a waits too). The session then
 * changes a (a new row version, no new money) and commits: the transfer's
 * write to a, changed after its snapshot, fails with 40001, and the
 * transfer runs again, alone, and commits once. */
static void test_serialization_failure_is_retried(void **state) {
    (void)state;
    struct pair p;
    make_pair(&p);
    PGconn *s = raw_connect(), *watcher = raw_connect();
    raw_exec(s, "BEGIN", NULL);
    raw_exec(s, "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", p.a);
    rf_test_set_serializable(rf_core_fx.db, true);
    struct attempts before = attempts_now();
    struct bg_op t;
    bg_start(&t, rf_core_fx.db, &p, 30);
    wait_for_backends(watcher, WAITING_FOR_LOCK, 1);
    raw_exec(s, "UPDATE accounts SET updated_at = updated_at WHERE id = $1", p.a);
    raw_exec(s, "COMMIT", NULL);
    PQfinish(s);
    PQfinish(watcher);
    rf_err err = bg_join(&t);
    hooks_off(NULL);
    assert_int_equal(err, RF_OK);
    expect_attempts(before, 2, 1);
    expect_money(&p, 70, 30, 2, 1);
}

/* ---- 40001 raised in a number of attempts ---------------------------------- */

static void test_serialization_failures_bounded_retry(void **state) {
    (void)state;
    struct pair p;
    make_pair(&p);
    struct attempts before = attempts_now();
    rf_test_fail_serialization(rf_core_fx.db, 3);
    assert_int_equal(transfer(rf_core_fx.db, p.a, p.b, 10, NULL), RF_OK);
    expect_attempts(before, 4, 3);
    expect_money(&p, 90, 10, 2, 1);
}

/* Every attempt fails: the documented RF_ERR_UNAVAILABLE after exactly
 * RF_RETRIES_MAX attempts, promptly, and nothing applied; the hook is then
 * used up, so the next transfer runs once. */
static void test_serialization_failures_exhaust_retries(void **state) {
    (void)state;
    struct pair p;
    make_pair(&p);
    struct attempts before = attempts_now();
    rf_test_fail_serialization(rf_core_fx.db, RF_RETRIES_MAX);
    int64_t t0 = rf_t_now_ms();
    assert_int_equal(transfer(rf_core_fx.db, p.a, p.b, 10, NULL), RF_ERR_UNAVAILABLE);
    assert_true(rf_t_now_ms() - t0 < EXHAUST_MS_MAX);
    expect_attempts(before, RF_RETRIES_MAX, RF_RETRIES_MAX - 1);
    expect_money(&p, 100, 0, 1, 0);
    before = attempts_now();
    assert_int_equal(transfer(rf_core_fx.db, p.a, p.b, 10, NULL), RF_OK);
    expect_attempts(before, 1, 0);
    expect_money(&p, 90, 10, 2, 1);
}

/* ---- two handles' batches locking two rows in opposite orders --------------- */

/* One blocking hold (or the opener's grant) on its own thread. */
struct bg_hold {
    pthread_t thread;
    rf *db;
    const char *account;
    rf_err err;
};

static void *bg_hold_main(void *arg) {
    struct bg_hold *c = arg;
    if (!c->account) { /* the opener: a grant that starts a delayed batch */
        char user[64]; /* its own user: the openers never wait for each other */
        rf_rand_id("opener", user, sizeof user);
        struct rf_grant_req req = {.user_id = user, .key = "k"};
        struct rf_grant_res res;
        c->err = rf_entitlement_grant(c->db, &req, &res, NULL);
        rf_entitlement_clear(&res.ent);
    } else { /* a hold: its user side locks the row at once (deferred.h) */
        struct rf_transfer_req req = {.debit_account = c->account,
                                      .credit_account = "funding:USD", .amount_minor = 5,
                                      .currency = "USD", .pending = true};
        struct rf_transfer_res res;
        c->err = rf_transfer_create(c->db, &req, &res, NULL);
        rf_transfer_clear(&res.transfer);
    }
    return NULL;
}

static void bg_hold_start(struct bg_hold *c, rf *db, const char *account) {
    *c = (struct bg_hold){.db = db, .account = account, .err = RF_ERR_INTERNAL};
    assert_int_equal(pthread_create(&c->thread, NULL, bg_hold_main, c), 0);
    rf_t_sleep_ms(100); /* queued in this order behind the opener's delayed batch */
}

/* Queues, on handle db, a batch holding on first then second: an opener's
 * batch sleeps after BEGIN (op delay hook) while the two holds queue. */
static void queue_batch(rf *db, struct bg_hold c[3], const char *first, const char *second) {
    bg_hold_start(&c[0], db, NULL);
    bg_hold_start(&c[1], db, first);
    bg_hold_start(&c[2], db, second);
}

/* Two racefree handles (as two processes: each its own executor and
 * connections), each with one committer: handle A's batch places a hold on
 * a then on b, handle B's on b then a (a hold's user row is locked by the
 * operation, not by the flush, so the order is the batch's). A raw session
 * holds both rows until both batches wait for their first row, then lets
 * go: A takes a, B takes b, and each waits for the other's: a lock cycle
 * between two batches. The batch lock wait (RF_PG_BATCH_LOCK_WAIT_MS) or
 * the deadlock detector aborts one hold in its savepoint; its batch commits the rest and runs it again alone. Every
 * hold is answered RF_OK and placed once. */
static void test_batches_deadlock_retried(void **state) {
    (void)state;
    struct pair p;
    make_pair(&p);
    assert_int_equal(credit(rf_core_fx.db, p.b, 100), RF_OK);
    struct rf_options opt = {.test_hooks = true, .writers = 1};
    rf *h[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rf_open(rf_core_fx.url, &opt, &h[i]), RF_OK);
        rf_test_set_op_delay(h[i], 600); /* past the three 100 ms queueing steps */
    }
    PGconn *s = raw_connect(), *watcher = raw_connect();
    raw_exec(s, "BEGIN", NULL);
    raw_exec(s, "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", p.a);
    raw_exec(s, "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", p.b);
    struct bg_hold c[2][3];
    queue_batch(h[0], c[0], p.a, p.b);
    queue_batch(h[1], c[1], p.b, p.a);
    wait_for_backends(watcher, WAITING_FOR_LOCK, 2); /* both batches at their first row */
    for (int i = 0; i < 2; i++) rf_test_set_op_delay(h[i], 0);
    raw_exec(s, "ROLLBACK", NULL);
    PQfinish(s);
    PQfinish(watcher);
    int64_t retries = 0;
    for (int i = 0; i < 2; i++) {
        for (int k = 0; k < 3; k++) {
            assert_int_equal(pthread_join(c[i][k].thread, NULL), 0);
            assert_int_equal(c[i][k].err, RF_OK);
        }
        struct rf_stats st;
        rf_stats_get(h[i], &st);
        retries += st.retries;
        rf_close(h[i]);
    }
    assert_true(retries >= 1); /* the cycle happened and was broken by a re-run */
    expect_money(&p, 100, 100, 1, 1);
    for (int i = 0; i < 2; i++) { /* one hold of 5 per handle on each */
        struct rf_account a;
        assert_int_equal(rf_account_get(rf_core_fx.db, i ? p.b : p.a, &a), RF_OK);
        assert_int_equal(a.pending_debits, 10);
        rf_account_clear(&a);
    }
}

/* ---- a bind whose conflict an unbind removes before its read-back ---------- */

/* The gate: a statement trigger, installed by the test in its own database,
 * that ends every INSERT on customer_bindings by waiting for an advisory lock
 * the raw session holds. Its own lock_timeout 0: a batch's bounded lock wait
 * (RF_PG_BATCH_LOCK_WAIT_MS) must not end the wait and re-run the bind. */
#define BIND_GATE_KEY "16016"
static const char SQL_GATE_FN[] =
    "CREATE FUNCTION rf_test_bind_gate() RETURNS trigger LANGUAGE plpgsql"
    " SET lock_timeout = 0 AS $$ BEGIN"
    " PERFORM pg_advisory_xact_lock_shared(" BIND_GATE_KEY "); RETURN NULL; END $$";
static const char SQL_GATE_TRIGGER[] =
    "CREATE TRIGGER rf_test_bind_gate AFTER INSERT ON customer_bindings"
    " FOR EACH STATEMENT EXECUTE PROCEDURE rf_test_bind_gate()";

/* On its own thread: a bind of user to customer on "stripe". */
struct bg_bind {
    pthread_t thread;
    const char *user, *customer;
    struct rf_bind_res res;
    rf_err err;
};

static void *bg_bind_main(void *arg) {
    struct bg_bind *b = arg;
    b->err = rf_customer_bind(rf_core_fx.db, b->user, "stripe", b->customer, &b->res);
    return NULL;
}

/* Check-then-act across two statements: the bind's INSERT .. ON CONFLICT DO
 * NOTHING meets the committed binding and inserts nothing; the gate holds
 * the bind there while an unbind from a second handle (another process)
 * commits; the bind's read of the rows in the way (READ COMMITTED: a new
 * snapshot) then finds none. Ordered by the gate's lock wait, no sleeps.
 * The bind must run again and create the binding (2 runs, 1 re-run), never
 * answer success with no binding. */
static void test_bind_meets_unbind_is_retried(void **state) {
    (void)state;
    char user[64], cus[64];
    rf_rand_id("user", user, sizeof user);
    rf_rand_id("cus", cus, sizeof cus);
    struct rf_bind_res first;
    assert_int_equal(rf_customer_bind(rf_core_fx.db, user, "stripe", cus, &first), RF_OK);
    assert_true(first.created);
    struct rf_options opt = {0};
    rf *other = NULL;
    assert_int_equal(rf_open(rf_core_fx.url, &opt, &other), RF_OK);
    PGconn *s = raw_connect(), *watcher = raw_connect();
    raw_exec(s, SQL_GATE_FN, NULL);
    raw_exec(s, SQL_GATE_TRIGGER, NULL);
    raw_exec(s, "SELECT pg_advisory_lock(" BIND_GATE_KEY ")", NULL);
    struct attempts before = attempts_now();
    struct bg_bind t = {.user = user, .customer = cus, .err = RF_ERR_INTERNAL};
    assert_int_equal(pthread_create(&t.thread, NULL, bg_bind_main, &t), 0);
    wait_for_backends(watcher, "wait_event = 'advisory'", 1); /* met the binding */
    struct rf_binding gone;
    rf_err unbound = rf_customer_unbind(other, user, "stripe", 0, &gone);
    raw_exec(s, "SELECT pg_advisory_unlock(" BIND_GATE_KEY ")", NULL);
    assert_int_equal(pthread_join(t.thread, NULL), 0);
    raw_exec(s, "DROP TRIGGER rf_test_bind_gate ON customer_bindings", NULL);
    raw_exec(s, "DROP FUNCTION rf_test_bind_gate()", NULL);
    PQfinish(s);
    PQfinish(watcher);
    rf_close(other);
    assert_int_equal(unbound, RF_OK);
    assert_int_equal(gone.version, first.binding.version);
    assert_int_equal(t.err, RF_OK);
    if (!t.res.created || strcmp(t.res.binding.customer_id, cus) ||
        strcmp(t.res.binding.user_id, user))
        fail_msg("bind answered OK (created %d) with binding '%s'/'%s' v%lld", t.res.created,
                 t.res.binding.user_id, t.res.binding.customer_id,
                 (long long)t.res.binding.version);
    assert_true(t.res.binding.version > first.binding.version);
    expect_attempts(before, 2, 1);
    struct rf_binding now;
    assert_int_equal(rf_customer_get_by_user(rf_core_fx.db, user, "stripe", &now), RF_OK);
    assert_int_equal(now.version, t.res.binding.version);
    assert_string_equal(now.customer_id, cus);
}

/* ---- a COMMIT that fails after the operation ran --------------------------- */

/* One transfer a -> b of 25 under Idempotency-Key `key`; the typed result
 * (the stored one on a replay) as text into body, "" when it failed. */
static rf_err keyed_transfer(const struct pair *p, const char *key, bool *replayed,
                             char *body, size_t cap) {
    struct rf_idem idem = {.key = key, .api_key_id = "k"};
    rf_core_idem_hash(&idem, "POST", "/v1/transfers", "25", 2);
    struct rf_transfer_req req = {.debit_account = p->a, .credit_account = p->b,
                                  .amount_minor = 25, .currency = "USD"};
    struct rf_transfer_res res;
    rf_err err = rf_transfer_create(rf_core_fx.db, &req, &res, &idem);
    *replayed = idem.replayed;
    const struct rf_transfer *t = &res.transfer;
    if (err) snprintf(body, cap, "%s", "");
    else
        snprintf(body, cap, "{\"id\":\"%s\"} %s %lld %lld %lld", t->id,
                 rf_transfer_status_name(t->status),
                 (long long)t->amount_minor, (long long)t->created_at_ms, (long long)t->version);
    rf_transfer_clear(&res.transfer);
    return err;
}

static void test_commit_failure_then_keyed_retry(void **state) {
    (void)state;
    struct pair p;
    make_pair(&p);
    char key[64], first[256], second[256], third[256];
    rf_rand_id("ik", key, sizeof key);
    bool replayed = true;
    struct attempts before = attempts_now();
    rf_test_fail_next_commit(rf_core_fx.db);
    assert_int_equal(keyed_transfer(&p, key, &replayed, first, sizeof first), RF_ERR_UNAVAILABLE);
    assert_string_equal(first, "");
    expect_attempts(before, 1, 0); /* a COMMIT that may not be repeated is not */
    expect_money(&p, 100, 0, 1, 0);

    before = attempts_now();
    rf_test_fail_serialization(rf_core_fx.db, 1); /* the client's retry meets a 40001 */
    assert_int_equal(keyed_transfer(&p, key, &replayed, second, sizeof second), RF_OK);
    assert_false(replayed);
    assert_non_null(strstr(second, "\"id\":\""));
    expect_attempts(before, 2, 1);
    expect_money(&p, 75, 25, 2, 1);

    assert_int_equal(keyed_transfer(&p, key, &replayed, third, sizeof third), RF_OK);
    assert_true(replayed);
    assert_string_equal(third, second);
    expect_money(&p, 75, 25, 2, 1);
}

/* ---- an If-Match check holds its row until the write it decides ------------ */

struct bg_revoke {
    pthread_t thread;
    const char *user;
    int64_t if_match;
    struct rf_entitlement ent;
    rf_err err;
};

static void *bg_revoke_main(void *arg) {
    struct bg_revoke *r = arg;
    r->err = rf_entitlement_revoke(rf_core_fx.db, r->user, "k", r->if_match, &r->ent);
    return NULL;
}

/* A revoke with If-Match: 1 while a raw session holds the entitlement's row;
 * once the revoke waits for it, the session moves the row on two versions
 * (as a revoke and a grant committed meanwhile would: still active) and
 * commits. The revoke's version check reads the row under its lock, so it
 * sees version 3 and answers 412, changing nothing. Read without the lock,
 * the check would pass on version 1 and the revoke's UPDATE, waiting behind
 * the session, would then revoke version 3: a write decided on a version
 * that was gone. Ordered by lock waits, no sleeps. */
static void test_if_match_holds_row_lock(void **state) {
    (void)state;
    char user[64];
    rf_rand_id("ifm", user, sizeof user);
    struct rf_grant_req req = {.user_id = user, .key = "k"};
    struct rf_grant_res res;
    assert_int_equal(rf_entitlement_grant(rf_core_fx.db, &req, &res, NULL), RF_OK);
    assert_int_equal(res.ent.version, 1);
    rf_entitlement_clear(&res.ent);
    PGconn *s = raw_connect(), *watcher = raw_connect();
    raw_exec(s, "BEGIN", NULL);
    raw_exec(s, "SELECT 1 FROM entitlements WHERE user_id = $1 AND entitlement_key = 'k'"
                " FOR UPDATE", user);
    struct bg_revoke r = {.user = user, .if_match = 1, .err = RF_ERR_INTERNAL};
    assert_int_equal(pthread_create(&r.thread, NULL, bg_revoke_main, &r), 0);
    wait_for_backends(watcher, WAITING_FOR_LOCK, 1);
    raw_exec(s, "UPDATE entitlements SET version = version + 2 WHERE user_id = $1"
                " AND entitlement_key = 'k'", user);
    raw_exec(s, "COMMIT", NULL);
    PQfinish(s);
    PQfinish(watcher);
    assert_int_equal(pthread_join(r.thread, NULL), 0);
    if (r.err == RF_OK)
        fail_msg("revoke with If-Match 1 answered OK at version %lld", (long long)r.ent.version);
    rf_entitlement_clear(&r.ent);
    assert_int_equal(r.err, RF_ERR_VERSION_MISMATCH);
    struct rf_entitlement e;
    assert_int_equal(rf_entitlement_get(rf_core_fx.db, user, "k", &e), RF_OK);
    assert_int_equal(e.status, RF_ENT_STATUS_ACTIVE);
    assert_int_equal(e.version, 3);
    rf_entitlement_clear(&e);
}

/* ---- fixture ---------------------------------------------------------------- */

/* rf_core_fx with the test hooks (forced SERIALIZABLE, failed COMMIT). */
static int setup(void **state) {
    *state = &rf_core_fx;
    if (!rf_test_db_is_pg()) return -1;
    struct rf_options opt = {.test_hooks = true};
    return rf_core_fixture_open(&rf_core_fx, &opt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_deadlock_is_retried, hooks_off),
        cmocka_unit_test_setup(test_batches_deadlock_retried, hooks_off),
        cmocka_unit_test_setup(test_serialization_failure_is_retried, hooks_off),
        cmocka_unit_test_setup(test_serialization_failures_bounded_retry, hooks_off),
        cmocka_unit_test_setup(test_serialization_failures_exhaust_retries, hooks_off),
        cmocka_unit_test_setup(test_bind_meets_unbind_is_retried, hooks_off),
        cmocka_unit_test_setup(test_if_match_holds_row_lock, hooks_off),
        cmocka_unit_test_setup(test_commit_failure_then_keyed_retry, hooks_off),
    };
    return cmocka_run_group_tests(tests, setup, rf_core_teardown);
}
