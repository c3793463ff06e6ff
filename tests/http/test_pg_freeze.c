/*
 * test_pg_freeze - a frozen PostgreSQL gives prompt 503s, not hung requests.
 *
 * The test starts a PostgreSQL cluster of its own (scripts/pg.sh, stopped at
 * the end), runs `racefree serve --pg-timeout-ms 1000` on it, and freezes the
 * postmaster and every backend with SIGSTOP: the kernel still accepts TCP
 * connections and ACKs what is sent (a network partition looks the same), so
 * only the client's own deadline can end a wait. Before the fix every data
 * request and /readyz hung for the whole freeze and then answered 200.
 *  - while frozen: /readyz, reads, grants and a burst of concurrent grants
 *    each answer 503 store_unavailable within the bound plus a margin; so
 *    does a grant frozen in the middle of its transaction (held there by the
 *    op-delay hook while the freeze lands);
 *  - after SIGCONT: /readyz is 200 again, every grant that was answered 503
 *    is absent (it changed nothing), and new requests succeed.
 * A watchdog thaws the cluster after FREEZE_MAX_MS whatever happens, so a
 * regression fails the test instead of hanging it.
 *
 * PostgreSQL only (registered when the PostgreSQL variant runs); it needs the
 * server binaries scripts/pg.sh uses and RF_SOURCE_DIR.
 */
#include "pg_cluster.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PG_TIMEOUT_MS 1000
#define PG_TIMEOUT_ARG "1000"
/* Generous: a wait is one bound (two when a connection must be opened after
 * a statement timed out); the failure this catches is "for the whole freeze". */
#define ANSWER_BOUND_MS (3 * PG_TIMEOUT_MS + 2500)
#define FREEZE_MAX_MS 15000     /* the watchdog thaws the cluster then */
#define RECOVER_MAX_MS 20000    /* /readyz 200 again after SIGCONT */
#define BURST 8                 /* concurrent grants while frozen (< the pool) */
#define FROZEN_MAX 256          /* processes of one cluster */
#define MID_TX_DELAY_MS 1500    /* op-delay: a write waits this long after BEGIN */
#define MID_TX_FREEZE_MS 500    /* the freeze lands this long into that wait */

static struct {
    struct pg_cluster pg;
    pid_t pids[FROZEN_MAX]; /* [0] the postmaster */
    int n_pids;
    pthread_mutex_t mu;
    bool frozen;
    pthread_t watchdog;
    bool watchdog_running;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- the cluster ---------------------------------------------------------- */

static pid_t postmaster_pid(void)
{
    char path[192];
    snprintf(path, sizeof path, "%s/data/postmaster.pid", P.pg.dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long pid = 0;
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    assert_true(pid > 1);
    return (pid_t)pid;
}

/* Parent pid and state letter of pid from /proc/<pid>/stat; false if gone. */
static bool proc_stat(pid_t pid, pid_t *ppid, char *state)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    int pp = 0;
    if (!p || sscanf(p + 1, " %c %d", state, &pp) != 2)
        return false;
    *ppid = (pid_t)pp;
    return true;
}

/* Appends every child of the postmaster not yet in P.pids. */
static void collect_children(void)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        pid_t pid = (pid_t)atoi(e->d_name), ppid = 0;
        char state;
        if (pid <= 0 || !proc_stat(pid, &ppid, &state) || ppid != P.pids[0])
            continue;
        bool known = false;
        for (int i = 1; i < P.n_pids; i++)
            known = known || P.pids[i] == pid;
        if (!known && P.n_pids < FROZEN_MAX)
            P.pids[P.n_pids++] = pid;
    }
    closedir(d);
}

static void signal_all(int sig)
{
    for (int i = 0; i < P.n_pids; i++)
        kill(P.pids[i], sig); /* a backend that exited meanwhile is fine */
}

static void thaw(void)
{
    pthread_mutex_lock(&P.mu);
    if (P.frozen) {
        signal_all(SIGCONT);
        P.frozen = false;
    }
    pthread_mutex_unlock(&P.mu);
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    for (int64_t t0 = rf_t_now_ms(); rf_t_now_ms() - t0 < FREEZE_MAX_MS;) {
        pthread_mutex_lock(&P.mu);
        bool frozen = P.frozen;
        pthread_mutex_unlock(&P.mu);
        if (!frozen)
            return NULL;
        rf_t_sleep_ms(50);
    }
    fprintf(stderr, "test_pg_freeze: watchdog: thawing the cluster after %d ms\n",
            FREEZE_MAX_MS);
    thaw();
    return NULL;
}

/* SIGSTOPs the postmaster first (it forks no more), then its children. */
static void freeze(void)
{
    pthread_mutex_lock(&P.mu);
    P.n_pids = 0;
    P.pids[P.n_pids++] = postmaster_pid();
    assert_int_equal(kill(P.pids[0], SIGSTOP), 0);
    P.frozen = true;
    collect_children();
    signal_all(SIGSTOP);
    collect_children(); /* one forked just before the postmaster stopped */
    signal_all(SIGSTOP);
    pthread_mutex_unlock(&P.mu);
    assert_true(P.n_pids >= 2);
    rf_t_sleep_ms(100); /* SIGSTOP is asynchronous: let it land */
    pid_t ppid;
    char state = '?';
    assert_true(proc_stat(P.pids[0], &ppid, &state));
    assert_true(state == 'T'); /* really stopped */
    assert_int_equal(pthread_create(&P.watchdog, NULL, watchdog_main, NULL), 0);
    P.watchdog_running = true;
}

/* ---- fixture ------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    if (!rf_test_db_is_pg())
        fail_msg("test_pg_freeze is registered for PostgreSQL only");
    pg_cluster_start(&P.pg, "frz", false);
    static const char *const args[] = {"--pg-timeout-ms", PG_TIMEOUT_ARG, "--test-hooks", NULL};
    pg_cluster_env_start(&P.pg, &g_env, args);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    thaw();
    if (P.watchdog_running)
        pthread_join(P.watchdog, NULL);
    int rc = 0;
    if (g_env.running)
        rc = rf_server_stop(&g_env.srv, 0);
    pg_cluster_stop(&P.pg);
    if (rc != 0)
        fail_msg("racefree serve did not exit 0 on SIGTERM (got %d)", rc);
    return 0;
}

/* ---- requests -------------------------------------------------------------- */

static void req(const char *method, const char *path, const char *key, struct rf_t_resp *out)
{
    rf_req(g_env.srv.port, method, path, key, NULL, NULL, out);
}

/* One request while frozen: 503 store_unavailable within ANSWER_BOUND_MS. */
static void frozen_req(const char *method, const char *path, const char *key)
{
    struct rf_t_resp r;
    int64_t t0 = rf_t_now_ms();
    req(method, path, key, &r);
    int64_t took = rf_t_now_ms() - t0;
    print_message("frozen: %s %s -> %d in %lld ms\n", method, path, r.status, (long long)took);
    RF_ASSERT_PROBLEM(&r, 503, "store_unavailable");
    assert_non_null(rf_resp_header(&r, "Retry-After"));
    if (took > ANSWER_BOUND_MS)
        fail_msg("%s %s answered after %lld ms (bound %d ms)", method, path, (long long)took,
                 ANSWER_BOUND_MS);
    rf_resp_free(&r);
}

static int status_of(const char *method, const char *path, const char *key)
{
    struct rf_t_resp r;
    req(method, path, key, &r);
    int s = r.status;
    rf_resp_free(&r);
    return s;
}

/* A grant whose transaction is open (sleeping in op-delay) when the freeze
 * lands: its next statement hangs on the frozen backend. */
struct mid_tx {
    pthread_t thread;
    char path[256];
    struct rf_t_resp resp;
    int64_t took_ms;
};

static void *mid_tx_main(void *arg)
{
    struct mid_tx *m = arg;
    int64_t t0 = rf_t_now_ms();
    req("PUT", m->path, g_env.service, &m->resp);
    m->took_ms = rf_t_now_ms() - t0;
    return NULL;
}

static void mid_tx_start(struct mid_tx *m, const char *user)
{
    hook_op_delay(&g_env, MID_TX_DELAY_MS);
    ent_path(m->path, sizeof m->path, user, "mid-tx");
    assert_int_equal(pthread_create(&m->thread, NULL, mid_tx_main, m), 0);
    rf_t_sleep_ms(MID_TX_FREEZE_MS);
}

static void mid_tx_check(struct mid_tx *m)
{
    pthread_join(m->thread, NULL);
    print_message("frozen mid-transaction: PUT %s -> %d in %lld ms\n", m->path, m->resp.status,
                  (long long)m->took_ms);
    RF_ASSERT_PROBLEM(&m->resp, 503, "store_unavailable");
    if (m->took_ms > MID_TX_DELAY_MS + ANSWER_BOUND_MS)
        fail_msg("the grant frozen mid-transaction answered after %lld ms", (long long)m->took_ms);
    rf_resp_free(&m->resp);
}

static void test_frozen_store_answers_503_promptly(void **state)
{
    (void)state;
    char user[64], ok_path[256], frozen_path[256], after_path[256];
    RID(user, "frz");
    ent_path(ok_path, sizeof ok_path, user, "before");
    ent_path(frozen_path, sizeof frozen_path, user, "during");
    ent_path(after_path, sizeof after_path, user, "after");
    assert_int_equal(status_of("PUT", ok_path, g_env.service), 201);
    assert_int_equal(status_of("GET", "/readyz", NULL), 200);

    static struct mid_tx mid;
    mid_tx_start(&mid, user);
    freeze();
    frozen_req("GET", "/readyz", NULL);
    frozen_req("GET", ok_path, g_env.readonly);
    frozen_req("PUT", frozen_path, g_env.service);
    static struct rf_par_req reqs[BURST];
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < BURST; i++) {
        char key[16];
        snprintf(key, sizeof key, "burst%d", i);
        reqs[i].port = g_env.srv.port;
        reqs[i].method = "PUT";
        reqs[i].api_key = g_env.service;
        ent_path(reqs[i].path, sizeof reqs[i].path, user, key);
    }
    int64_t t0 = rf_t_now_ms();
    assert_int_equal(rf_parallel(reqs, BURST), 0);
    int64_t took = rf_t_now_ms() - t0;
    for (int i = 0; i < BURST; i++)
        RF_ASSERT_PROBLEM(&reqs[i].resp, 503, "store_unavailable");
    if (took > ANSWER_BOUND_MS)
        fail_msg("a burst of %d grants took %lld ms (bound %d ms)", BURST, (long long)took,
                 ANSWER_BOUND_MS);
    frozen_req("GET", "/readyz", NULL); /* still prompt after the burst */
    mid_tx_check(&mid);
    thaw();

    int64_t t1 = rf_t_now_ms();
    while (status_of("GET", "/readyz", NULL) != 200) {
        if (rf_t_now_ms() - t1 > RECOVER_MAX_MS)
            fail_msg("/readyz not 200 within %d ms of SIGCONT", RECOVER_MAX_MS);
        rf_t_sleep_ms(100);
    }
    hook_op_delay(&g_env, 0);
    /* Answered 503: changed nothing (the frozen backend rolled back when it
     * found its connection closed). */
    assert_int_equal(status_of("GET", frozen_path, g_env.readonly), 404);
    assert_int_equal(status_of("GET", mid.path, g_env.readonly), 404);
    for (int i = 0; i < BURST; i++)
        assert_int_equal(status_of("GET", reqs[i].path, g_env.readonly), 404);
    assert_int_equal(list_all_count(&g_env, user, "all"), 1);
    assert_int_equal(status_of("PUT", after_path, g_env.service), 201);
    assert_int_equal(status_of("GET", ok_path, g_env.readonly), 200);
    rf_par_free(reqs, BURST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frozen_store_answers_503_promptly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
