/*
 * test_reconcile_http.c - GET /v1/admin/reconcile against a real server on
 * a store of its own:
 *  - after real flows over HTTP (accounts and credits, a transfer and a hold,
 *    a payout, an approved approval that ran a transfer, a notification
 *    created and read, a job enqueued twice under one unique_key) it answers
 *    200 with clean: true and every check listed, and `racefree reconcile`
 *    exits 0;
 *  - admin only: service and readonly keys get 403, no key 401;
 *  - drift planted with SQL behind the server's back (a balance changed
 *    without an entry) answers 200 with clean: false, the check's count and
 *    the account's id as its example, the same document the CLI prints
 *    with --json (exit 1); repaired, clean again.
 * (Every other flow's checks are proven in tests/core/test_reconcile, and
 * every env_ledger_check of the other HTTP tests requires reconcile clean.)
 */
#include <stdio.h>
#include <string.h>

#include "core/tamper.h"
#include "http_env.h"

static struct env g_e;

static int setup(void **state)
{
    (void)state;
    env_start_fresh(&g_e, false, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    env_stop(&g_e);
    return 0;
}

/* A request that must answer want; its body parsed (json_decref it), or
 * NULL when want is not 2xx. */
static json_t *call(const char *method, const char *path, const char *key, const char *body,
                    bool idem, int want)
{
    char h[128];
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    struct rf_t_resp r;
    env_req(&g_e, method, path, key, body, idem ? hdrs : NULL, &r);
    RF_ASSERT_STATUS(&r, want);
    json_t *j = want < 300 ? rf_resp_json(&r) : NULL;
    rf_resp_free(&r);
    return j;
}

static void flows(char *wallet, size_t cap)
{
    char other[64], body[512], path[256];
    RID(other, "other");
    rf_rand_id("wallet", wallet, cap);
    const char *ids[] = {wallet, other};
    for (int i = 0; i < 2; i++) {
        snprintf(body, sizeof body, "{\"id\":\"%s\",\"currency\":\"USD\",\"kind\":\"user\"}",
                 ids[i]);
        json_decref(call("POST", "/v1/accounts", g_e.service, body, false, 201));
        snprintf(path, sizeof path, "/v1/accounts/%s/credits", ids[i]);
        json_decref(call("POST", path, g_e.service, "{\"amount_minor\":1000}", true, 201));
    }
    snprintf(body, sizeof body, "{\"debit_account\":\"%s\",\"credit_account\":\"%s\","
             "\"amount_minor\":40,\"currency\":\"USD\"%s}", wallet, other, "");
    json_decref(call("POST", "/v1/transfers", g_e.service, body, true, 201));
    snprintf(body, sizeof body, "{\"debit_account\":\"%s\",\"credit_account\":\"%s\","
             "\"amount_minor\":25,\"currency\":\"USD\",\"pending\":true}", wallet, other);
    json_decref(call("POST", "/v1/transfers", g_e.service, body, true, 201));
    snprintf(body, sizeof body, "{\"account\":\"%s\",\"amount_minor\":30,\"currency\":\"USD\","
             "\"destination\":{\"provider\":\"stripe\",\"ref\":\"acct_1\"}}", wallet);
    json_decref(call("POST", "/v1/payouts", g_e.service, body, true, 201));
    snprintf(body, sizeof body, "{\"action\":{\"type\":\"transfer\",\"debit_account\":\"%s\","
             "\"credit_account\":\"%s\",\"amount_minor\":7,\"currency\":\"USD\"},"
             "\"requested_by\":\"alice\"}", other, wallet);
    json_t *ap = call("POST", "/v1/approvals", g_e.service, body, false, 201);
    snprintf(path, sizeof path, "/v1/approvals/%s/approve", rf_t_json_str(ap, "id"));
    json_decref(ap);
    json_decref(call("POST", path, g_e.admin, "{\"approved_by\":\"boss\"}", false, 200));
    json_t *n = call("POST", "/v1/users/u1/notifications", g_e.service,
                     "{\"kind\":\"k\",\"title\":\"t\",\"body\":\"b\"}", false, 201);
    snprintf(path, sizeof path, "/v1/users/u1/notifications/%s/read", rf_t_json_str(n, "id"));
    json_decref(n);
    json_decref(call("POST", path, g_e.service, NULL, false, 200));
    static const char job[] = "{\"queue\":\"mail\",\"kind\":\"k\",\"payload\":{},"
                              "\"unique_key\":\"once\"}";
    json_decref(call("POST", "/v1/jobs", g_e.service, job, false, 201));
    json_decref(call("POST", "/v1/jobs", g_e.service, job, false, 200));
}

static json_t *check_named(json_t *doc, const char *name)
{
    json_t *checks = json_object_get(doc, "checks"), *c;
    size_t i;
    json_array_foreach(checks, i, c) if (strcmp(rf_t_json_str(c, "name"), name) == 0) return c;
    fail_msg("no check %s in %s", name, json_dumps(doc, 0));
    return NULL;
}

/* The CLI's --json document equals the endpoint's; its exit code is want. */
static void cli_agrees(json_t *doc, int want)
{
    static char out[256 * 1024], err[4096];
    const char *args[] = {"reconcile", "--json", "--db", g_e.db, NULL};
    int rc = rf_cli_run(args, out, sizeof out, err, sizeof err, 0);
    if (rc != want) fail_msg("racefree reconcile exited %d, want %d: %s %s", rc, want, out, err);
    json_t *cli = json_loads(out, 0, NULL);
    assert_non_null(cli);
    if (!json_equal(cli, doc)) fail_msg("CLI printed %s", out);
    json_decref(cli);
}

static void test_reconcile_endpoint(void **state)
{
    (void)state;
    char wallet[64];
    flows(wallet, sizeof wallet);
    call("GET", "/v1/admin/reconcile", g_e.service, NULL, false, 403);
    call("GET", "/v1/admin/reconcile", g_e.readonly, NULL, false, 403);
    call("GET", "/v1/admin/reconcile", NULL, NULL, false, 401);
    json_t *doc = call("GET", "/v1/admin/reconcile", g_e.admin, NULL, false, 200);
    assert_string_equal(rf_t_json_str(doc, "object"), "reconciliation");
    assert_true(json_is_true(json_object_get(doc, "clean")));
    assert_int_equal(rf_t_json_int(doc, "violations"), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "checks")), 14);
    cli_agrees(doc, 0);
    json_decref(doc);

    tamper(g_e.db, "UPDATE accounts SET posted = posted + 5 WHERE id = $1", wallet, NULL, 1);
    doc = call("GET", "/v1/admin/reconcile", g_e.admin, NULL, false, 200);
    assert_true(json_is_false(json_object_get(doc, "clean")));
    assert_int_equal(rf_t_json_int(doc, "violations"), 2);
    json_t *c = check_named(doc, "account_entries");
    assert_int_equal(rf_t_json_int(c, "violations"), 1);
    assert_true(json_is_false(json_object_get(c, "clean")));
    json_t *row = json_array_get(json_object_get(c, "examples"), 0);
    assert_string_equal(json_string_value(json_array_get(row, 0)), wallet);
    c = check_named(doc, "currency_balances");
    row = json_array_get(json_object_get(c, "examples"), 0);
    assert_string_equal(json_string_value(json_array_get(row, 0)), "USD");
    cli_agrees(doc, 1);
    json_decref(doc);

    tamper(g_e.db, "UPDATE accounts SET posted = posted - 5 WHERE id = $1", wallet, NULL, 1);
    doc = call("GET", "/v1/admin/reconcile", g_e.admin, NULL, false, 200);
    assert_true(json_is_true(json_object_get(doc, "clean")));
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reconcile_endpoint),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
