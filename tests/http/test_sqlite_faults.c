/*
 * test_sqlite_faults - a full disk and failing I/O under keyed load: 503s,
 * nothing half-written, reads served, writes back once the fault is gone.
 *
 * `racefree serve --test-hooks` opens its SQLite files through the fault
 * VFS (src/store/sqlite_faults.h); POST /v1/_test/io-fault arms it. With
 * CLIENTS clients running keyed_load.h's scripts, the test makes the disk
 * full (every write fails with SQLITE_FULL) and then failing (SQLITE_IOERR
 * on writes, fsync and truncate), FAULT_ROUNDS times, each after a random
 * budget of bytes from the printed seed, so the first failure lands
 * anywhere in a WAL append:
 *  - while the fault holds, writes are answered 503 store_unavailable (or
 *    outcome_unknown: committed, its fsync failed; the key replays it) with
 *    Retry-After, never a 500 and never no answer; a grant without a key
 *    answered 503 is absent afterwards; reads are answered 200 from what
 *    is committed, and so is /readyz;
 *  - once the fault is lifted, writes succeed again on the same server;
 *  - every request, retried with its key until answered, took effect
 *    exactly once; the ledger's invariants hold and reconcile is clean;
 *  - the server exits 0 on SIGTERM, and the file then passes
 *    PRAGMA integrity_check.
 *
 * SQLite only: the VFS is SQLite's (PostgreSQL's disk is its server's).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyed_load.h"

#define CLIENTS 4
#define ACKED_BEFORE 20            /* answers before each fault: the load is running */
#define UNAVAILABLE_DURING (2 * CLIENTS) /* 503s before the fault is lifted */
#define ACKED_AFTER 20             /* answers after it is lifted: writes recovered */
#define FAULT_ROUNDS 3             /* a full disk, then a failing one, this many times */
#define BUDGET_BYTES_MAX (256 * 1024) /* a fault lands after 0..this many bytes */

static void io_fault(struct env *e, const char *fault, int64_t after_bytes)
{
    char body[96];
    snprintf(body, sizeof body, "{\"fault\": \"%s\", \"after_bytes\": %lld}", fault,
             (long long)after_bytes);
    struct rf_t_resp r;
    env_req(e, "POST", "/v1/_test/io-fault", e->admin, body, NULL, &r);
    RF_ASSERT_STATUS(&r, 204);
    rf_resp_free(&r);
}

static int status_of(struct env *e, const char *method, const char *path, const char *key)
{
    struct rf_t_resp r;
    env_req(e, method, path, key, NULL, NULL, &r);
    int s = r.status;
    if (s == 503)
        RF_ASSERT_PROBLEM(&r, 503, "store_unavailable");
    rf_resp_free(&r);
    return s;
}

/* While the store cannot write: a write without a key (probe) is refused
 * 503, and reads are served. */
static void while_faulty(struct env *e, struct kl_load *l, const char *probe)
{
    assert_int_equal(status_of(e, "PUT", probe, e->service), 503);
    char path[160];
    snprintf(path, sizeof path, "/v1/accounts/%s", l->c[0].acct_a);
    assert_int_equal(status_of(e, "GET", path, e->readonly), 200);
    assert_int_equal(status_of(e, "GET", "/readyz", NULL), 200);
}

static void fault_under_load(struct env *e, struct kl_load *l, uint64_t *rng, const char *fault)
{
    char probe[256], user[64];
    RID(user, "probe");
    ent_path(probe, sizeof probe, user, fault);
    kl_wait_acked(l, ACKED_BEFORE);
    int64_t budget = kl_draw(rng, BUDGET_BYTES_MAX + 1);
    io_fault(e, fault, budget);
    kl_wait_unavailable(l, UNAVAILABLE_DURING);
    while_faulty(e, l, probe);
    io_fault(e, "off", 0);
    kl_wait_acked(l, ACKED_AFTER);
    assert_int_equal(status_of(e, "GET", probe, e->readonly), 404); /* nothing half-written */
    fprintf(stderr, "test_sqlite_faults: disk %s after %lld bytes, lifted: %lld answers 503 so "
            "far, and writes succeed again\n", fault, (long long)budget,
            (long long)atomic_load(&l->unavailable));
}

static void integrity_ok(const char *db_url)
{
    assert_true(strncmp(db_url, "sqlite:", 7) == 0);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_url + 7, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const char *verdict = (const char *)sqlite3_column_text(st, 0);
    if (!verdict || strcmp(verdict, "ok") != 0)
        fail_msg("PRAGMA integrity_check: %s", verdict ? verdict : "(null)");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_full_then_failing_disk(void **state)
{
    (void)state;
    uint64_t seed = kl_seed("test_sqlite_faults"), rng = seed;
    struct env e;
    env_start(&e, true, NULL);
    static struct kl_load l;
    kl_init(&l, &e, CLIENTS, seed);
    kl_start(&l);
    for (int i = 0; i < FAULT_ROUNDS; i++) {
        fault_under_load(&e, &l, &rng, "full");
        fault_under_load(&e, &l, &rng, "eio");
    }
    kl_finish(&l);
    struct kl_totals t = kl_sum(&l);
    fprintf(stderr, "test_sqlite_faults: %lld requests acknowledged, %lld answered 503 first, "
            "%lld retries replayed\n", (long long)t.ops, (long long)t.unavailable,
            (long long)t.replays);
    kl_check(&l);
    assert_int_equal(t.no_answer, 0);
    assert_int_equal(t.no_retry_after, 0);
    e.running = false;
    assert_int_equal(rf_server_stop(&e.srv, 0), 0);
    integrity_ok(e.db);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_then_failing_disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
