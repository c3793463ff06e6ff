/*
 * test_lost_commit - on PostgreSQL, a COMMIT whose answer is lost after the
 * server committed is resolved before the client is answered.
 *
 * The server runs with --test-hooks; /v1/_test/lose-commit-replies makes the
 * next n COMMITs reach PostgreSQL, waits until the server has answered, and
 * cuts the connection before racefree reads that answer (the connection died
 * between the server's commit and the client's read). Before the fix every
 * such request was answered 503 store_unavailable ("changed nothing") although
 * it had committed. Now every answer is checked against the store:
 *  - 2xx: the effect is there, exactly once;
 *  - 503 store_unavailable: the effect is NOT there (the cut-before-COMMIT
 *    hook, fail-next-commit, is mixed in so this path is exercised too);
 *  - 503 outcome_unknown: never, as the database stays reachable and the
 *    outcome can always be learned.
 * Covered: concurrent entitlement grants, customer bindings, payout attempts
 * (attempt_count equals the attempts answered 200), all without an
 * Idempotency-Key, and credits, which always carry one (the balance is
 * exactly the credits answered 201; a retry with the same key replays the
 * first answer and moves nothing).
 *
 * PostgreSQL only: SQLite commits in process and has no answer to lose.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PAR 24 /* concurrent requests per round, all under the hook */
#define PROVIDER "stripe"
#define WALLET_FUNDS 1000000

static int setup(void **state)
{
    (void)state;
    if (!rf_test_db_is_pg())
        fail_msg("test_lost_commit is registered for PostgreSQL only");
    /* One operation per transaction, so each request's COMMIT answer is the
     * one the hooks lose or cut (a batch's is shared by all its operations,
     * see test_pg_retry.c and test_executor.c for lost answers of batches). */
    static const char *const args[] = {"--batch-max", "1", NULL};
    env_start(&g_env, true, args);
    return 0;
}

/* ---- hooks and the server's own account of them ------------------------- */

static void hook_post(const char *path, const char *body)
{
    struct rf_t_resp r;
    env_req(&g_env, "POST", path, g_env.admin, body, NULL, &r);
    if (r.status != 204)
        fail_msg("POST %s: HTTP %d %s", path, r.status, r.body ? r.body : r.errmsg);
    rf_resp_free(&r);
}

static void lose_replies(int n)
{
    char body[64];
    snprintf(body, sizeof body, "{\"count\": %d}", n);
    hook_post("/v1/_test/lose-commit-replies", body);
}

/* Lines of the server's stderr containing needle: the store logs each lost
 * COMMIT with the outcome it learned. */
static int log_count(const char *needle)
{
    FILE *f = fopen(g_env.srv.err_path, "r");
    assert_non_null(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

#define LOG_COMMITTED "the answer to COMMIT was lost; transaction"

/* ---- answers checked against the store ---------------------------------- */

/* 1 for a success (ok1 or ok2), 0 for 503 store_unavailable; fails the test
 * on anything else, outcome_unknown included. */
static int outcome(const struct rf_t_resp *r, int ok1, int ok2, const char *what, int i)
{
    if (r->status == ok1 || r->status == ok2)
        return 1;
    if (r->status == 503) {
        char code[64];
        rf_problem_code(r, code, sizeof code);
        if (strcmp(code, "store_unavailable") == 0)
            return 0;
    }
    fail_msg("%s %d: HTTP %d (%s) %s", what, i, r->status, r->errmsg, r->body ? r->body : "");
    return -1;
}

static int get_status(const char *path)
{
    struct rf_t_resp r;
    env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
    int s = r.status;
    rf_resp_free(&r);
    return s;
}

/* Arms both hooks for one round: every commit but the cut one loses its
 * answer; returns the lines logged so far, to compare after the round. */
static int arm_round(int n)
{
    int before = log_count(LOG_COMMITTED);
    lose_replies(n);
    hook_post("/v1/_test/fail-next-commit", NULL);
    return before;
}

/* After a round: every armed hook was used up by the round's commits (or the
 * server's own maintenance), and the log shows the outcomes it resolved. */
static void end_round(int before, int unavailable)
{
    lose_replies(0);
    int resolved = log_count(LOG_COMMITTED) - before;
    print_message("round: %d lost answers resolved, %d answered store_unavailable\n", resolved,
                  unavailable);
    assert_true(resolved >= N_PAR / 2); /* the hook really cut the answers */
    assert_true(unavailable <= 1);      /* at most the one cut before COMMIT */
    assert_int_equal(log_count("outcome unknown"), 0);
}

static void par_fill(struct rf_par_req *reqs, const char *method, const char *api_key)
{
    memset(reqs, 0, sizeof(struct rf_par_req) * N_PAR);
    for (int i = 0; i < N_PAR; i++) {
        reqs[i].port = g_env.srv.port;
        reqs[i].method = method;
        reqs[i].api_key = api_key;
    }
}

/* ---- entitlement grants ------------------------------------------------- */

static void test_grants(void **state)
{
    (void)state;
    char user[64];
    RID(user, "lc");
    static struct rf_par_req reqs[N_PAR];
    par_fill(reqs, "PUT", g_env.service);
    for (int i = 0; i < N_PAR; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%02d", i);
        ent_path(reqs[i].path, sizeof reqs[i].path, user, key);
    }
    int before = arm_round(N_PAR);
    assert_int_equal(rf_parallel(reqs, N_PAR), 0);
    int ok = 0, unavailable = 0;
    for (int i = 0; i < N_PAR; i++) {
        if (outcome(&reqs[i].resp, 201, 201, "grant", i)) {
            ok++;
            struct rf_t_resp r; /* there, once: the grant again is a 200 at version 1 */
            env_req(&g_env, "PUT", reqs[i].path, g_env.service, NULL, NULL, &r);
            RF_ASSERT_STATUS(&r, 200);
            assert_int_equal(etag_version(&r), 1);
            rf_resp_free(&r);
        } else {
            unavailable++;
            assert_int_equal(get_status(reqs[i].path), 404);
        }
    }
    assert_int_equal(list_all_count(&g_env, user, "all"), ok);
    end_round(before, unavailable);
    rf_par_free(reqs, N_PAR);
}

/* ---- customer bindings --------------------------------------------------- */

static void test_bindings(void **state)
{
    (void)state;
    static struct rf_par_req reqs[N_PAR];
    static char bodies[N_PAR][128], customers[N_PAR][64];
    par_fill(reqs, "PUT", g_env.service);
    for (int i = 0; i < N_PAR; i++) {
        char user[64];
        RID(user, "lcu");
        RID(customers[i], "cus");
        snprintf(reqs[i].path, sizeof reqs[i].path, "/v1/users/%s/customers/%s", user, PROVIDER);
        snprintf(bodies[i], sizeof bodies[i], "{\"customer_id\": \"%.63s\"}", customers[i]);
        reqs[i].body = bodies[i];
    }
    int before = arm_round(N_PAR);
    assert_int_equal(rf_parallel(reqs, N_PAR), 0);
    int unavailable = 0;
    for (int i = 0; i < N_PAR; i++) {
        struct rf_t_resp r;
        env_req(&g_env, "GET", reqs[i].path, g_env.readonly, NULL, NULL, &r);
        if (outcome(&reqs[i].resp, 201, 201, "bind", i)) {
            RF_ASSERT_STATUS(&r, 200);
            json_t *j = rf_resp_json(&r);
            assert_string_equal(rf_t_json_str(j, "customer_id"), customers[i]);
            json_decref(j);
        } else {
            unavailable++;
            RF_ASSERT_STATUS(&r, 404);
        }
        rf_resp_free(&r);
    }
    end_round(before, unavailable);
    rf_par_free(reqs, N_PAR);
}

/* ---- payout attempts and credits ----------------------------------------- */

/* A user account in a fresh currency; returns nothing, fails on error. */
static void make_account(char *id, size_t cap, char cur[4])
{
    rand_currency(cur);
    rf_rand_id("lcw", id, cap);
    env_account_create(&g_env, id, cur, false);
}

/* POST with a fresh Idempotency-Key, expecting 201; the body's "id" into id. */
static void post_created(const char *path, const char *body, char *id, size_t cap)
{
    char h[128];
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    struct rf_t_resp r;
    env_req(&g_env, "POST", path, g_env.service, body, hdrs, &r);
    RF_ASSERT_STATUS(&r, 201);
    if (id) {
        json_t *j = rf_resp_json(&r);
        snprintf(id, cap, "%s", rf_t_json_str(j, "id"));
        json_decref(j);
    }
    rf_resp_free(&r);
}

static void test_payout_attempts(void **state)
{
    (void)state;
    char wallet[64], cur[4], path[256], body[512], payout[64];
    make_account(wallet, sizeof wallet, cur);
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", wallet);
    snprintf(body, sizeof body, "{\"amount_minor\": %d}", WALLET_FUNDS);
    post_created(path, body, NULL, 0);
    snprintf(body, sizeof body,
             "{\"account\": \"%s\", \"amount_minor\": 100, \"currency\": \"%s\","
             " \"destination\": {\"provider\": \"stripe\", \"ref\": \"acct_%s\"}}",
             wallet, cur, cur);
    post_created("/v1/payouts", body, payout, sizeof payout);

    static struct rf_par_req reqs[N_PAR];
    par_fill(reqs, "POST", g_env.service);
    for (int i = 0; i < N_PAR; i++)
        snprintf(reqs[i].path, sizeof reqs[i].path, "/v1/payouts/%s/attempts", payout);
    int before = arm_round(N_PAR);
    assert_int_equal(rf_parallel(reqs, N_PAR), 0);
    int ok = 0;
    for (int i = 0; i < N_PAR; i++)
        ok += outcome(&reqs[i].resp, 200, 200, "attempt", i);
    snprintf(path, sizeof path, "/v1/payouts/%s", payout);
    struct rf_t_resp r;
    env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    assert_int_equal(rf_t_json_int(j, "attempt_count"), ok);
    json_decref(j);
    rf_resp_free(&r);
    end_round(before, N_PAR - ok);
    rf_par_free(reqs, N_PAR);
}

/* Credits of 2^i minor units (credits move money: each has an
 * Idempotency-Key): the posted balance names exactly the credits that are
 * in, so each answer is checked against it. A retry with the same key
 * replays the first answer and moves nothing, or, after store_unavailable,
 * runs for real. */
static void test_credits(void **state)
{
    (void)state;
    char wallet[64], cur[4];
    make_account(wallet, sizeof wallet, cur);
    static struct rf_par_req reqs[N_PAR];
    static char bodies[N_PAR][64], keys[N_PAR][128];
    par_fill(reqs, "POST", g_env.service);
    for (int i = 0; i < N_PAR; i++) {
        snprintf(reqs[i].path, sizeof reqs[i].path, "/v1/accounts/%s/credits", wallet);
        snprintf(bodies[i], sizeof bodies[i], "{\"amount_minor\": %lld}", 1LL << i);
        reqs[i].body = bodies[i];
        idem_hdr_fresh(keys[i], sizeof keys[i]);
        reqs[i].headers[0] = keys[i];
    }
    int before = arm_round(N_PAR);
    assert_int_equal(rf_parallel(reqs, N_PAR), 0);
    int64_t in = 0;
    int unavailable = 0;
    for (int i = 0; i < N_PAR; i++) {
        if (outcome(&reqs[i].resp, 201, 201, "credit", i))
            in |= 1LL << i;
        else
            unavailable++;
    }
    end_round(before, unavailable);
    struct bal b = env_balance(&g_env, wallet);
    assert_int_equal(b.posted, in); /* 201 is there once; 503 is not there */

    for (int i = 0; i < N_PAR; i++) { /* the retries, with the same key */
        const char *hdrs[] = {keys[i], NULL};
        struct rf_t_resp r;
        env_req(&g_env, "POST", reqs[i].path, g_env.service, bodies[i], hdrs, &r);
        RF_ASSERT_STATUS(&r, 201);
        assert_int_equal(resp_replayed(&r), (in >> i) & 1);
        if (resp_replayed(&r)) /* byte for byte the first answer */
            assert_string_equal(r.body, reqs[i].resp.body);
        rf_resp_free(&r);
        in |= 1LL << i;
    }
    b = env_balance(&g_env, wallet);
    assert_int_equal(b.posted, in);
    rf_par_free(reqs, N_PAR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grants),
        cmocka_unit_test(test_bindings),
        cmocka_unit_test(test_payout_attempts),
        cmocka_unit_test(test_credits),
    };
    return cmocka_run_group_tests(tests, setup, env_group_teardown);
}
