/*
 * test_ts_client.c - the TypeScript client (clients/typescript) against a real
 * `racefree serve`, on the back end of RF_TEST_DB (registered for SQLite and
 * PostgreSQL).
 *
 * Starts a server on a fresh store with an admin key made by `racefree keys
 * create`, then runs with Node (RF_NODE), in clients/typescript, with
 * RACEFREE_URL and RACEFREE_KEY set:
 *  - the client's live tests (dist/test/live: every flow the README shows,
 *    2^53+1 and 2^63-1 read back exactly, typed errors, replays, and retries
 *    through a proxy that fails once, the effect happening once);
 *  - the README example (dist/examples/readme.js, compiled by tsc --strict),
 *    which exits non-zero when a step fails or a balance is wrong.
 * The client is built by the fixture test client.ts_build (npm ci, tsc) first.
 */
#include "http/http_env.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NODE_RUN_TIMEOUT_MS 120000 /* a hang bound; the live tests take seconds */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs `$RF_NODE args...` in clients/typescript with the server's URL and
 * key in its environment; its output goes to the test's. Returns the exit
 * code, or -1 (signal, timeout, failure to start). */
static int node_run(const struct env *e, const char *const *args)
{
    const char *node = getenv("RF_NODE");
    const char *src = getenv("RF_SOURCE_DIR");
    assert_non_null(node);
    assert_non_null(src);
    char dir[1024], url[64];
    snprintf(dir, sizeof dir, "%s/clients/typescript", src);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", e->srv.port);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        char *argv[16];
        int n = 0;
        argv[n++] = (char *)node;
        for (int i = 0; args[i] && n < 15; i++)
            argv[n++] = (char *)args[i];
        argv[n] = NULL;
        if (chdir(dir) != 0 || setenv("RACEFREE_URL", url, 1) != 0 ||
            setenv("RACEFREE_KEY", e->admin, 1) != 0)
            _exit(126);
        execv(node, argv);
        _exit(127);
    }
    long long deadline = now_ms() + NODE_RUN_TIMEOUT_MS;
    int st;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            return -1;
        if (now_ms() > deadline) {
            fprintf(stderr, "node %s: no exit within %d ms, killed\n", args[0], NODE_RUN_TIMEOUT_MS);
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(20 * 1000);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_client_live(void **state)
{
    (void)state;
    struct env e;
    /* the server seals webhook secrets under this key (inherited) */
    setenv("RACEFREE_SECRETS_KEY",
           "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100", 1);
    /* rf.schedules; and limits no test reaches, so that every keyed answer
     * carries the RateLimit headers and the declared-headers check sees them */
    const char *serve_args[] = {"--schedule", "payouts@1h",
                                "--rate-limit", "admin=1000000/1h", "--rate-limit", "service=1000000/1h",
                                "--rate-limit", "worker=1000000/1h", "--rate-limit", "readonly=1000000/1h",
                                NULL};
    env_start_fresh(&e, false, serve_args);
    const char *live[] = {"--test", "dist/test/live/client.test.js", NULL};
    int rc = node_run(&e, live);
    if (rc != 0)
        rf_server_dump_log(&e.srv, 4096);
    assert_int_equal(rc, 0);
    const char *example[] = {"dist/examples/readme.js", NULL};
    rc = node_run(&e, example);
    if (rc != 0)
        rf_server_dump_log(&e.srv, 4096);
    assert_int_equal(rc, 0);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_live),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
