/*
 * test_pg_restart - PostgreSQL stopped and started again under load: 503s
 * while it is away, nothing applied twice, and the server recovers alone.
 *
 * The test runs `racefree serve --pg-timeout-ms 1000` on a PostgreSQL
 * cluster of its own (pg_cluster.h) with CLIENTS clients running
 * keyed_load.h's scripts, and stops the cluster twice, once with
 * `pg_ctl stop -m fast` (connections terminated by the server) and once
 * with `-m immediate` (as a crash: the next start runs recovery), each time
 * until the clients have been answered 503 several times, then starts it
 * again on the same port. The racefree process is never restarted. Then:
 *  - while PostgreSQL is away every answer is a 503 store_unavailable or
 *    outcome_unknown with Retry-After (/readyz too); no 500, no other 5xx,
 *    no request left without an answer (keyed_load records any other
 *    answer, and kl_check fails on it);
 *  - once it is back, requests succeed again (the clients' retries go
 *    through: bounded by KL_RETRY_MAX_MS, a hang guard, not a timing claim);
 *  - every request (each retried with its key until answered) took effect
 *    exactly once, the ledger's invariants hold and reconcile is clean;
 *  - the server exits 0 on SIGTERM at the end (it never crashed).
 *
 * PostgreSQL only (registered when the PostgreSQL variant runs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyed_load.h"
#include "pg_cluster.h"

#define CLIENTS 4
#define ACKED_BEFORE_STOP 20 /* answers before each stop: the load is running */
#define UNAVAILABLE_WHILE_DOWN (2 * CLIENTS) /* 503s seen before PostgreSQL is started again */
#define ACKED_AFTER_START 20 /* answers after the start: recovered */

static struct pg_cluster g_pg;
static struct env g_e;

static int setup(void **state)
{
    (void)state;
    if (!rf_test_db_is_pg())
        fail_msg("test_pg_restart is registered for PostgreSQL only");
    pg_cluster_start(&g_pg, "rst", true); /* an answered commit must survive -m immediate */
    static const char *const args[] = {"--pg-timeout-ms", "1000", NULL};
    pg_cluster_env_start(&g_pg, &g_e, args);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = g_e.running ? rf_server_stop(&g_e.srv, 0) : 0;
    pg_cluster_stop(&g_pg);
    if (rc != 0)
        fail_msg("racefree serve did not exit 0 on SIGTERM (got %d)", rc);
    return 0;
}

static void readyz_is(int want)
{
    struct rf_t_resp r;
    rf_req(g_e.srv.port, "GET", "/readyz", NULL, NULL, NULL, &r);
    if (want == 503)
        RF_ASSERT_PROBLEM(&r, 503, "store_unavailable");
    else
        RF_ASSERT_STATUS(&r, want);
    rf_resp_free(&r);
}

static void restart_under_load(struct kl_load *l, const char *mode)
{
    kl_wait_acked(l, ACKED_BEFORE_STOP);
    pg_cluster_down(&g_pg, mode);
    kl_wait_unavailable(l, UNAVAILABLE_WHILE_DOWN);
    readyz_is(503);
    pg_cluster_up(&g_pg);
    kl_wait_acked(l, ACKED_AFTER_START);
    fprintf(stderr, "test_pg_restart: stopped (-m %s) and started again: %lld answers 503 so "
            "far, and requests succeed again\n", mode, (long long)atomic_load(&l->unavailable));
}

static void test_restart_under_load(void **state)
{
    (void)state;
    static struct kl_load l;
    kl_init(&l, &g_e, CLIENTS, kl_seed("test_pg_restart"));
    kl_start(&l);
    restart_under_load(&l, "fast");
    restart_under_load(&l, "immediate");
    kl_finish(&l);
    readyz_is(200);
    struct kl_totals t = kl_sum(&l);
    fprintf(stderr, "test_pg_restart: %lld requests acknowledged, %lld answered 503 first, "
            "%lld retries replayed\n", (long long)t.ops, (long long)t.unavailable,
            (long long)t.replays);
    kl_check(&l);
    assert_int_equal(t.no_answer, 0);      /* the server stayed up and answered all */
    assert_int_equal(t.no_retry_after, 0);
    assert_true(t.unavailable >= 2 * UNAVAILABLE_WHILE_DOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
