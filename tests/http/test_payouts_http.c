/*
 * test_payouts_http - seed 000 part 2 (payout executions) over HTTP, black box.
 *
 * Proves, on the back end in RF_TEST_DB, with requests released together by
 * a barrier:
 *  - 32 concurrent POST /attempts on one payout: all 200 and attempt_count
 *    ends at exactly 32 (no lost or doubled attempt);
 *  - a concurrent `succeeded` and non-retryable `failed` on one payout:
 *    exactly one 200 and one 409 invalid_state, the payout is paid or failed
 *    to match, its hold (GET /v1/transfers/{hold}) is posted or voided to
 *    match, and the wallet and payouts:<CUR> balances move (or not) to match;
 *  - retryable failures keep the payout pending until max_attempts (here the
 *    server's --payout-max-attempts 3), then it fails and the hold is voided;
 *    terminal payouts refuse every further change with 409 invalid_state;
 *  - `succeeded` repeated with the same provider_payout_id is an idempotent
 *    200 that moves nothing; the same id on another payout is 409
 *    duplicate_provider_payout_id;
 * and after each race: no 5xx, and the store, opened with the library
 * (rf_open + rf_ledger_check), is balanced. Also bad input (4xx problem+json,
 * nothing held) and the list filter.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "racefree.h"

#define ATTEMPTS 32
#define RACE_ROUNDS 6
#define SERVER_MAX_ATTEMPTS 3

static int setup(void **state)
{
    (void)state;
    static const char *const args[] = {"--payout-max-attempts", "3", NULL};
    env_start(&g_env, false, args);
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static void req_ik(const char *method, const char *path, const char *body, struct rf_t_resp *out)
{
    char h[128];
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    env_req(&g_env, method, path, g_env.service, body, hdrs, out);
}

/* A wallet in a fresh currency holding `amount`. */
static void make_wallet(char *id, size_t cap, char cur[4], int64_t amount)
{
    rand_currency(cur);
    rf_rand_id("wallet", id, cap);
    env_account_create(&g_env, id, cur, false);
    char body[256];
    struct rf_t_resp r;
    char path[256];
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", id);
    snprintf(body, sizeof body, "{\"amount_minor\": %lld}", (long long)amount);
    req_ik("POST", path, body, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
}

struct payout {
    char id[RF_ID_BYTES];
    char hold[RF_ID_BYTES];
};

/* Creates a payout (201) and checks its shape; max_attempts 0: the default. */
static void make_payout(const char *wallet, const char *cur, int64_t amount, int max_attempts,
                        struct payout *out)
{
    char body[512], extra[64] = "";
    if (max_attempts)
        snprintf(extra, sizeof extra, ", \"max_attempts\": %d", max_attempts);
    snprintf(body, sizeof body,
             "{\"account\": \"%s\", \"amount_minor\": %lld, \"currency\": \"%s\","
             " \"destination\": {\"provider\": \"stripe\", \"ref\": \"acct_%s\"},"
             " \"metadata\": {\"batch\": \"b1\"}%s}",
             wallet, (long long)amount, cur, cur, extra);
    struct rf_t_resp r;
    req_ik("POST", "/v1/payouts", body, &r);
    RF_ASSERT_STATUS(&r, 201);
    json_t *j = rf_resp_json(&r);
    snprintf(out->id, sizeof out->id, "%s", rf_t_json_str(j, "id"));
    snprintf(out->hold, sizeof out->hold, "%s", rf_t_json_str(j, "hold_transfer_id"));
    char loc[256];
    snprintf(loc, sizeof loc, "/v1/payouts/%s", out->id);
    assert_string_equal(rf_resp_header(&r, "Location"), loc);
    assert_int_equal(etag_version(&r), 1);
    assert_string_equal(rf_t_json_str(j, "status"), "pending");
    assert_string_equal(rf_t_json_str(j, "account"), wallet);
    assert_int_equal(rf_t_json_int(j, "amount_minor"), amount);
    json_t *dest = json_object_get(j, "destination");
    assert_string_equal(rf_t_json_str(dest, "provider"), "stripe");
    assert_true(*rf_t_json_str(j, "provider_idempotency_key"));
    assert_true(*out->hold);
    assert_true(json_is_null(json_object_get(j, "provider_payout_id")));
    assert_true(json_is_null(json_object_get(j, "last_error")));
    assert_int_equal(rf_t_json_int(j, "attempt_count"), 0);
    assert_int_equal(rf_t_json_int(j, "max_attempts"),
                     max_attempts ? max_attempts : SERVER_MAX_ATTEMPTS);
    assert_string_equal(rf_t_json_str(json_object_get(j, "metadata"), "batch"), "b1");
    assert_true(is_rfc3339_ms(rf_t_json_str(j, "created_at")));
    json_decref(j);
    rf_resp_free(&r);
}

/* GET /v1/payouts/{id} parsed (json_decref it). */
static json_t *payout_get(const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/payouts/%s", id);
    struct rf_t_resp r;
    env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    assert_int_equal(etag_version(&r), rf_t_json_int(j, "version"));
    rf_resp_free(&r);
    return j;
}

/* The hold's status ("pending", "posted", "voided"). */
static void hold_status(const char *hold, char *out, size_t cap)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/transfers/%s", hold);
    struct rf_t_resp r;
    env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    snprintf(out, cap, "%s", rf_t_json_str(j, "status"));
    json_decref(j);
    rf_resp_free(&r);
}

/* POST /v1/payouts/{id}/<what> with body; the response into out. */
static void payout_do(const char *id, const char *what, const char *body, struct rf_t_resp *out)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/payouts/%s/%s", id, what);
    env_req(&g_env, "POST", path, g_env.service, body, NULL, out);
}

/* The worker role records what the provider said, and nothing else: a
 * worker key posts an attempt (with an Idempotency-Key, replayed once), a
 * retryable failure and the success of one payout; the same key gets 403
 * forbidden on a credit, a grant, a key, a transfer, a new payout and a
 * read, and those refusals change nothing. */
static void worker_post(const char *id, const char *what, const char *body, const char *ik,
                        int status, struct rf_t_resp *out)
{
    char path[256], h[160];
    snprintf(path, sizeof path, "/v1/payouts/%s/%s", id, what);
    snprintf(h, sizeof h, "Idempotency-Key: %s", ik);
    const char *hdrs[] = {h, NULL};
    env_req(&g_env, "POST", path, g_env.worker, body, ik[0] ? hdrs : NULL, out);
    RF_ASSERT_STATUS(out, status);
}

static void test_worker_records_attempts_and_outcomes(void **state)
{
    (void)state;
    char wallet[64], cur[4];
    make_wallet(wallet, sizeof wallet, cur, 50);
    struct payout po;
    make_payout(wallet, cur, 10, 3, &po);
    char ik[64];
    rf_rand_id("wk", ik, sizeof ik);
    struct rf_t_resp r;
    for (int i = 0; i < 2; i++) { /* the second is the first's replay */
        worker_post(po.id, "attempts", NULL, ik, 200, &r);
        json_t *j = rf_resp_json(&r);
        assert_int_equal(rf_t_json_int(j, "attempt_count"), 1);
        const char *replayed = rf_resp_header(&r, "Idempotent-Replayed");
        assert_true(i == 0 ? replayed == NULL : replayed && strcmp(replayed, "true") == 0);
        json_decref(j);
        rf_resp_free(&r);
    }
    worker_post(po.id, "failed", "{\"reason\": \"timeout\", \"retryable\": true}", "", 200, &r);
    json_t *j = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(j, "status"), "pending");
    assert_string_equal(rf_t_json_str(j, "last_error"), "timeout");
    json_decref(j);
    rf_resp_free(&r);
    worker_post(po.id, "succeeded", "{\"provider_payout_id\": \"po_w1\"}", "", 200, &r);
    rf_resp_free(&r);
    j = payout_get(po.id);
    assert_string_equal(rf_t_json_str(j, "status"), "paid");
    assert_string_equal(rf_t_json_str(j, "provider_payout_id"), "po_w1");
    json_decref(j);

    struct bal before = env_balance(&g_env, wallet);
    char credit[256], grant[256], payout[256];
    snprintf(credit, sizeof credit, "/v1/accounts/%s/credits", wallet);
    snprintf(grant, sizeof grant, "/v1/users/%s/entitlements/pro", wallet);
    snprintf(payout, sizeof payout, "/v1/payouts/%s", po.id);
    char xfer[256], newpo[512];
    snprintf(xfer, sizeof xfer,
             "{\"debit_account\": \"%s\", \"credit_account\": \"funding:%s\","
             " \"amount_minor\": 1, \"currency\": \"%s\"}", wallet, cur, cur);
    snprintf(newpo, sizeof newpo,
             "{\"account\": \"%s\", \"amount_minor\": 1, \"currency\": \"%s\","
             " \"destination\": {\"provider\": \"p\", \"ref\": \"r\"}}", wallet, cur);
    const struct {
        const char *method, *path, *body;
    } refused[] = {
        {"POST", credit, "{\"amount_minor\": 5}"}, {"PUT", grant, "{}"},
        {"POST", "/v1/keys", "{\"role\": \"admin\"}"}, {"GET", "/v1/keys", NULL},
        {"POST", "/v1/transfers", xfer}, {"POST", "/v1/payouts", newpo},
        {"GET", payout, NULL},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char h[128];
        idem_hdr_fresh(h, sizeof h);
        const char *hdrs[] = {h, NULL};
        env_req(&g_env, refused[i].method, refused[i].path, g_env.worker, refused[i].body, hdrs,
                &r);
        if (r.status != 403)
            fail_msg("worker %s %s: expected 403, got %d %s", refused[i].method,
                     refused[i].path, r.status, r.body);
        RF_ASSERT_PROBLEM(&r, 403, "forbidden");
        rf_resp_free(&r);
    }
    struct bal after = env_balance(&g_env, wallet);
    assert_memory_equal(&before, &after, sizeof before);
    env_req(&g_env, "GET", grant, g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "entitlement_not_found");
    rf_resp_free(&r);
}

/* ---- the races ------------------------------------------------------------- */

static void test_concurrent_attempts(void **state)
{
    (void)state;
    char wallet[64], cur[4];
    make_wallet(wallet, sizeof wallet, cur, 100);
    struct payout po;
    make_payout(wallet, cur, 40, 0, &po);
    static struct rf_par_req reqs[ATTEMPTS];
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < ATTEMPTS; i++) {
        reqs[i].port = g_env.srv.port;
        reqs[i].method = "POST";
        snprintf(reqs[i].path, sizeof reqs[i].path, "/v1/payouts/%s/attempts", po.id);
        reqs[i].api_key = (i % 2) ? g_env.service : g_env.admin;
        reqs[i].body = (i % 3) ? NULL : "{}";
    }
    assert_int_equal(rf_parallel(reqs, ATTEMPTS), 0);
    env_no_5xx(reqs, ATTEMPTS);
    /* Every call counted once: the answers carry distinct counts 1..32. */
    bool seen[ATTEMPTS + 1] = {false};
    for (int i = 0; i < ATTEMPTS; i++) {
        RF_ASSERT_STATUS(&reqs[i].resp, 200);
        json_t *j = rf_resp_json(&reqs[i].resp);
        int64_t n = rf_t_json_int(j, "attempt_count");
        if (n < 1 || n > ATTEMPTS || seen[n])
            fail_msg("attempt %d answered attempt_count %lld (duplicate or out of range)", i,
                     (long long)n);
        seen[n] = true;
        assert_string_equal(rf_t_json_str(j, "status"), "pending");
        json_decref(j);
    }
    rf_par_free(reqs, ATTEMPTS);
    json_t *j = payout_get(po.id);
    assert_int_equal(rf_t_json_int(j, "attempt_count"), ATTEMPTS);
    assert_int_equal(rf_t_json_int(j, "version"), 1 + ATTEMPTS);
    assert_string_equal(rf_t_json_str(j, "status"), "pending");
    json_decref(j);
    /* Attempts moved no money: the hold is still in place. */
    struct bal b = env_balance(&g_env, wallet);
    assert_int_equal(b.posted, 100);
    assert_int_equal(b.available, 60);
    char st[16];
    hold_status(po.hold, st, sizeof st);
    assert_string_equal(st, "pending");
    /* With an Idempotency-Key, a retried attempt counts once. */
    char h[128];
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    char path[256];
    snprintf(path, sizeof path, "/v1/payouts/%s/attempts", po.id);
    struct rf_t_resp r1, r2;
    env_req(&g_env, "POST", path, g_env.service, NULL, hdrs, &r1);
    env_req(&g_env, "POST", path, g_env.service, NULL, hdrs, &r2);
    RF_ASSERT_STATUS(&r1, 200);
    RF_ASSERT_STATUS(&r2, 200);
    assert_string_equal(r1.body, r2.body);
    assert_non_null(rf_resp_header(&r2, "Idempotent-Replayed"));
    rf_resp_free(&r1);
    rf_resp_free(&r2);
    j = payout_get(po.id);
    assert_int_equal(rf_t_json_int(j, "attempt_count"), ATTEMPTS + 1);
    json_decref(j);
    env_ledger_check(&g_env, 1);
}

static void test_succeeded_failed_race(void **state)
{
    (void)state;
    char wallet[64], cur[4], clearing[32];
    make_wallet(wallet, sizeof wallet, cur, 1000);
    snprintf(clearing, sizeof clearing, "payouts:%s", cur);
    static struct rf_par_req reqs[2];
    static char bodies[2][128];
    int paid = 0;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        struct bal before = env_balance(&g_env, wallet), clr = env_balance(&g_env, clearing);
        struct payout po;
        make_payout(wallet, cur, 10, 0, &po);
        struct rf_t_resp r;
        payout_do(po.id, "attempts", NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        rf_resp_free(&r);
        assert_int_equal(env_balance(&g_env, wallet).available, before.available - 10);

        char ppid[64];
        RID(ppid, "po");
        snprintf(bodies[0], sizeof bodies[0], "{\"provider_payout_id\": \"%s\"}", ppid);
        snprintf(bodies[1], sizeof bodies[1],
                 "{\"reason\": \"account closed\", \"retryable\": false}");
        /* Which one's thread starts first alternates by round. */
        int s_at = round % 2, f_at = 1 - s_at;
        memset(reqs, 0, sizeof reqs);
        for (int i = 0; i < 2; i++) {
            reqs[i].port = g_env.srv.port;
            reqs[i].method = "POST";
            snprintf(reqs[i].path, sizeof reqs[i].path, "/v1/payouts/%s/%s", po.id,
                     i == s_at ? "succeeded" : "failed");
            reqs[i].api_key = g_env.service;
            reqs[i].body = bodies[i == s_at ? 0 : 1];
        }
        assert_int_equal(rf_parallel(reqs, 2), 0);
        env_no_5xx(reqs, 2);
        int winner = reqs[s_at].resp.status == 200 ? s_at : f_at;
        RF_ASSERT_STATUS(&reqs[winner].resp, 200);
        RF_ASSERT_PROBLEM(&reqs[1 - winner].resp, 409, "invalid_state");
        bool was_paid = winner == s_at;
        paid += was_paid;
        rf_par_free(reqs, 2);

        json_t *j = payout_get(po.id);
        assert_string_equal(rf_t_json_str(j, "status"), was_paid ? "paid" : "failed");
        if (was_paid) {
            assert_string_equal(rf_t_json_str(j, "provider_payout_id"), ppid);
        } else {
            assert_true(json_is_null(json_object_get(j, "provider_payout_id")));
            assert_string_equal(rf_t_json_str(j, "last_error"), "account closed");
        }
        assert_int_equal(rf_t_json_int(j, "attempt_count"), 1);
        json_decref(j);
        char st[16];
        hold_status(po.hold, st, sizeof st);
        assert_string_equal(st, was_paid ? "posted" : "voided");
        struct bal after = env_balance(&g_env, wallet), clr2 = env_balance(&g_env, clearing);
        assert_int_equal(after.posted, before.posted - (was_paid ? 10 : 0));
        assert_int_equal(after.pending_debits, before.pending_debits);
        assert_int_equal(after.available, after.posted);
        assert_int_equal(clr2.posted, clr.posted + (was_paid ? 10 : 0));
        assert_int_equal(clr2.pending_credits, clr.pending_credits);
    }
    print_message("succeeded won %d of %d rounds\n", paid, RACE_ROUNDS);
    env_ledger_check(&g_env, 1);
}

static void test_retry_until_max_attempts(void **state)
{
    (void)state;
    char wallet[64], cur[4];
    make_wallet(wallet, sizeof wallet, cur, 100);
    struct payout po;
    make_payout(wallet, cur, 30, 0, &po); /* the server's default: 3 */
    struct rf_t_resp r;
    for (int attempt = 1; attempt <= SERVER_MAX_ATTEMPTS; attempt++) {
        payout_do(po.id, "attempts", NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        rf_resp_free(&r);
        char reason[64];
        snprintf(reason, sizeof reason, "{\"reason\": \"timeout %d\", \"retryable\": true}",
                 attempt);
        payout_do(po.id, "failed", reason, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r);
        bool last = attempt == SERVER_MAX_ATTEMPTS;
        assert_string_equal(rf_t_json_str(j, "status"), last ? "failed" : "pending");
        assert_int_equal(rf_t_json_int(j, "attempt_count"), attempt);
        char want[32];
        snprintf(want, sizeof want, "timeout %d", attempt);
        assert_string_equal(rf_t_json_str(j, "last_error"), want);
        json_decref(j);
        rf_resp_free(&r);
        char st[16];
        hold_status(po.hold, st, sizeof st);
        assert_string_equal(st, last ? "voided" : "pending");
        assert_int_equal(env_balance(&g_env, wallet).available, last ? 100 : 70);
    }
    /* Terminal: nothing changes any more. */
    payout_do(po.id, "attempts", NULL, &r);
    RF_ASSERT_PROBLEM(&r, 409, "invalid_state");
    rf_resp_free(&r);
    payout_do(po.id, "succeeded", "{\"provider_payout_id\": \"po-late\"}", &r);
    RF_ASSERT_PROBLEM(&r, 409, "invalid_state");
    rf_resp_free(&r);
    payout_do(po.id, "failed", "{\"reason\": \"again\", \"retryable\": false}", &r);
    RF_ASSERT_PROBLEM(&r, 409, "invalid_state");
    rf_resp_free(&r);
    json_t *j = payout_get(po.id);
    assert_string_equal(rf_t_json_str(j, "status"), "failed");
    assert_string_equal(rf_t_json_str(j, "last_error"), "timeout 3");
    json_decref(j);
    struct bal b = env_balance(&g_env, wallet);
    assert_int_equal(b.posted, 100);
    assert_int_equal(b.available, 100);

    /* A payout's own max_attempts overrides the server's; a non-retryable
     * failure ends it at once. */
    make_payout(wallet, cur, 5, 1, &po);
    payout_do(po.id, "failed", "{\"reason\": \"bad iban\", \"retryable\": false}", &r);
    RF_ASSERT_STATUS(&r, 200);
    j = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(j, "status"), "failed");
    json_decref(j);
    rf_resp_free(&r);
    assert_int_equal(env_balance(&g_env, wallet).available, 100);
    env_ledger_check(&g_env, 1);
}

static void test_succeeded_repeat_idempotent(void **state)
{
    (void)state;
    char wallet[64], cur[4], clearing[32], ppid[64], body[128];
    make_wallet(wallet, sizeof wallet, cur, 100);
    snprintf(clearing, sizeof clearing, "payouts:%s", cur);
    struct payout a, b;
    make_payout(wallet, cur, 25, 0, &a);
    make_payout(wallet, cur, 15, 0, &b);
    RID(ppid, "po");
    snprintf(body, sizeof body, "{\"provider_payout_id\": \"%s\"}", ppid);
    struct rf_t_resp r1, r2;
    payout_do(a.id, "succeeded", body, &r1);
    RF_ASSERT_STATUS(&r1, 200);
    for (int i = 0; i < 3; i++) {
        payout_do(a.id, "succeeded", body, &r2);
        RF_ASSERT_STATUS(&r2, 200);
        assert_string_equal(r1.body, r2.body); /* nothing changed: same version */
        rf_resp_free(&r2);
    }
    json_t *j = rf_resp_json(&r1);
    assert_string_equal(rf_t_json_str(j, "status"), "paid");
    assert_string_equal(rf_t_json_str(j, "provider_payout_id"), ppid);
    assert_int_equal(rf_t_json_int(j, "attempt_count"), 1);
    json_decref(j);
    rf_resp_free(&r1);
    /* The same provider id on another payout; another id on this one. */
    payout_do(b.id, "succeeded", body, &r2);
    RF_ASSERT_PROBLEM(&r2, 409, "duplicate_provider_payout_id");
    rf_resp_free(&r2);
    payout_do(a.id, "succeeded", "{\"provider_payout_id\": \"po-other\"}", &r2);
    RF_ASSERT_PROBLEM(&r2, 409, "invalid_state");
    rf_resp_free(&r2);
    /* Money moved once: 25 paid, 15 still held. */
    struct bal w = env_balance(&g_env, wallet), c = env_balance(&g_env, clearing);
    assert_int_equal(w.posted, 75);
    assert_int_equal(w.available, 60);
    assert_int_equal(c.posted, 25);
    assert_int_equal(c.pending_credits, 15);
    char st[16];
    hold_status(a.hold, st, sizeof st);
    assert_string_equal(st, "posted");
    hold_status(b.hold, st, sizeof st);
    assert_string_equal(st, "pending");
    /* Concurrent repeats of the same success: all 200, one effect. */
    static struct rf_par_req reqs[16];
    memset(reqs, 0, sizeof reqs);
    RID(ppid, "po");
    snprintf(body, sizeof body, "{\"provider_payout_id\": \"%s\"}", ppid);
    for (int i = 0; i < 16; i++) {
        reqs[i].port = g_env.srv.port;
        reqs[i].method = "POST";
        snprintf(reqs[i].path, sizeof reqs[i].path, "/v1/payouts/%s/succeeded", b.id);
        reqs[i].api_key = g_env.service;
        reqs[i].body = body;
    }
    assert_int_equal(rf_parallel(reqs, 16), 0);
    env_no_5xx(reqs, 16);
    for (int i = 0; i < 16; i++)
        RF_ASSERT_STATUS(&reqs[i].resp, 200);
    rf_par_free(reqs, 16);
    w = env_balance(&g_env, wallet);
    c = env_balance(&g_env, clearing);
    assert_int_equal(w.posted, 60);
    assert_int_equal(w.available, 60);
    assert_int_equal(c.posted, 40);
    assert_int_equal(c.pending_credits, 0);
    env_ledger_check(&g_env, 1);
}

/* ---- bad input and the list ----------------------------------------------------- */

static void test_bad_input_and_list(void **state)
{
    (void)state;
    char wallet[64], cur[4];
    make_wallet(wallet, sizeof wallet, cur, 50);
    struct payout po;
    make_payout(wallet, cur, 10, 0, &po);
    struct bal before = env_balance(&g_env, wallet);

    struct {
        const char *what, *body;
        bool no_key;
        int status;
        const char *code;
    } cases[] = {
        {"no key", "{\"account\": \"%W\", \"amount_minor\": 1, \"currency\": \"%C\", "
                   "\"destination\": {\"provider\": \"p\", \"ref\": \"r\"}}",
         true, 400, "idempotency_key_required"},
        {"zero", "{\"account\": \"%W\", \"amount_minor\": 0, \"currency\": \"%C\", "
                 "\"destination\": {\"provider\": \"p\", \"ref\": \"r\"}}",
         false, 400, "invalid_field"},
        {"2^63", "{\"account\": \"%W\", \"amount_minor\": 9223372036854775808, \"currency\": "
                 "\"%C\", \"destination\": {\"provider\": \"p\", \"ref\": \"r\"}}",
         false, 400, "invalid_field"},
        {"no destination", "{\"account\": \"%W\", \"amount_minor\": 1, \"currency\": \"%C\"}",
         false, 400, "invalid_field"},
        {"destination a string", "{\"account\": \"%W\", \"amount_minor\": 1, \"currency\": "
                                 "\"%C\", \"destination\": \"stripe:acct\"}",
         false, 400, "invalid_field"},
        {"destination without ref", "{\"account\": \"%W\", \"amount_minor\": 1, \"currency\": "
                                    "\"%C\", \"destination\": {\"provider\": \"p\"}}",
         false, 400, "invalid_field"},
        {"destination unknown field",
         "{\"account\": \"%W\", \"amount_minor\": 1, \"currency\": \"%C\", \"destination\": "
         "{\"provider\": \"p\", \"ref\": \"r\", \"iban\": \"x\"}}",
         false, 400, "unknown_field"},
        {"destination bad ref", "{\"account\": \"%W\", \"amount_minor\": 1, \"currency\": "
                                "\"%C\", \"destination\": {\"provider\": \"p\", \"ref\": \"a b\"}}",
         false, 400, "invalid_field"},
        {"max_attempts 0", "{\"account\": \"%W\", \"amount_minor\": 1, \"currency\": \"%C\", "
                           "\"destination\": {\"provider\": \"p\", \"ref\": \"r\"}, "
                           "\"max_attempts\": 0}",
         false, 400, "invalid_field"},
        {"max_attempts 101", "{\"account\": \"%W\", \"amount_minor\": 1, \"currency\": \"%C\", "
                             "\"destination\": {\"provider\": \"p\", \"ref\": \"r\"}, "
                             "\"max_attempts\": 101}",
         false, 400, "invalid_field"},
        {"unknown field", "{\"account\": \"%W\", \"amount_minor\": 1, \"currency\": \"%C\", "
                          "\"destination\": {\"provider\": \"p\", \"ref\": \"r\"}, \"to\": 1}",
         false, 400, "unknown_field"},
        {"insufficient funds", "{\"account\": \"%W\", \"amount_minor\": 41, \"currency\": \"%C\", "
                               "\"destination\": {\"provider\": \"p\", \"ref\": \"r\"}}",
         false, 409, "insufficient_funds"},
        {"unknown account", "{\"account\": \"no-such-wallet\", \"amount_minor\": 1, \"currency\": "
                            "\"%C\", \"destination\": {\"provider\": \"p\", \"ref\": \"r\"}}",
         false, 404, "account_not_found"},
        {"lower-case currency", "{\"account\": \"%W\", \"amount_minor\": 1, \"currency\": "
                                "\"abc\", \"destination\": {\"provider\": \"p\", \"ref\": \"r\"}}",
         false, 400, "invalid_field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[600];
        size_t n = 0;
        for (const char *s = cases[i].body; *s && n + 1 < sizeof body; s++) {
            if (s[0] == '%' && (s[1] == 'W' || s[1] == 'C')) {
                n += (size_t)snprintf(body + n, sizeof body - n, "%s", s[1] == 'W' ? wallet : cur);
                s++;
            } else {
                body[n++] = *s;
            }
        }
        body[n] = '\0';
        struct rf_t_resp r;
        if (cases[i].no_key)
            env_req(&g_env, "POST", "/v1/payouts", g_env.service, body, NULL, &r);
        else
            req_ik("POST", "/v1/payouts", body, &r);
        print_message("%-28s -> %d %.150s\n", cases[i].what, r.status, r.body ? r.body : "");
        RF_ASSERT_PROBLEM(&r, cases[i].status, cases[i].code);
        rf_resp_free(&r);
    }
    /* Outcome endpoints. */
    struct {
        const char *what, *op, *body;
        int status;
        const char *code;
    } ocases[] = {
        {"failed without retryable", "failed", "{\"reason\": \"x\"}", 400, "invalid_field"},
        {"failed empty reason", "failed", "{\"reason\": \"\", \"retryable\": true}", 400,
         "invalid_field"},
        {"failed retryable a string", "failed", "{\"reason\": \"x\", \"retryable\": \"no\"}", 400,
         "invalid_field"},
        {"succeeded without id", "succeeded", "{}", 400, "invalid_field"},
        {"succeeded bad id", "succeeded", "{\"provider_payout_id\": \"a b\"}", 400,
         "invalid_field"},
        {"attempts with a field", "attempts", "{\"n\": 1}", 400, "unknown_field"},
    };
    for (size_t i = 0; i < sizeof ocases / sizeof ocases[0]; i++) {
        struct rf_t_resp r;
        payout_do(po.id, ocases[i].op, ocases[i].body, &r);
        print_message("%-28s -> %d %.150s\n", ocases[i].what, r.status, r.body ? r.body : "");
        RF_ASSERT_PROBLEM(&r, ocases[i].status, ocases[i].code);
        rf_resp_free(&r);
    }
    struct rf_t_resp r;
    payout_do("no-such-payout", "attempts", NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "payout_not_found");
    rf_resp_free(&r);
    env_req(&g_env, "GET", "/v1/payouts/no-such-payout", g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "payout_not_found");
    rf_resp_free(&r);
    env_req(&g_env, "GET", "/v1/payouts?status=done", g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_query_param");
    rf_resp_free(&r);
    env_req(&g_env, "GET", "/v1/payouts?after=a%20b", g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_cursor");
    rf_resp_free(&r);
    env_req(&g_env, "POST", "/v1/payouts/x/attempts", g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    env_req(&g_env, "GET", "/v1/payouts", g_env.worker, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);

    /* Nothing held or moved by the refusals; the payout untouched. */
    struct bal after = env_balance(&g_env, wallet);
    assert_memory_equal(&before, &after, sizeof before);
    json_t *j = payout_get(po.id);
    assert_int_equal(rf_t_json_int(j, "version"), 1);
    json_decref(j);

    /* The list: our pending payout is under status=pending (following cursors,
     * with a small page to exercise them), not under paid. */
    struct payout p2;
    make_payout(wallet, cur, 1, 0, &p2);
    int found[2] = {0, 0};
    for (int s = 0; s < 2; s++) {
        char after[RF_CURSOR_BYTES] = "";
        for (int page = 0; page < 2000; page++) {
            char path[512];
            snprintf(path, sizeof path, "/v1/payouts?status=%s&limit=2%s%s",
                     s == 0 ? "pending" : "paid", after[0] ? "&after=" : "", after);
            env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
            RF_ASSERT_STATUS(&r, 200);
            json_t *pg = rf_resp_json(&r), *data = json_object_get(pg, "data"), *item;
            size_t k;
            json_array_foreach(data, k, item) {
                assert_string_equal(rf_t_json_str(item, "status"), s == 0 ? "pending" : "paid");
                if (strcmp(rf_t_json_str(item, "id"), po.id) == 0 ||
                    strcmp(rf_t_json_str(item, "id"), p2.id) == 0)
                    found[s]++;
            }
            json_t *next = json_object_get(pg, "next");
            bool more = json_is_string(next);
            if (more)
                snprintf(after, sizeof after, "%s", json_string_value(next));
            json_decref(pg);
            rf_resp_free(&r);
            if (!more)
                break;
        }
    }
    assert_int_equal(found[0], 2);
    assert_int_equal(found[1], 0);
    env_ledger_check(&g_env, 1);
}

/* ---- every refusal's exact body ------------------------------------------------- */

/* One refusal of POST /v1/payouts. In body, %W is the wallet, %C its
 * currency, %F the filler. detail and param are the exact members (param
 * NULL: the problem has none). */
struct problem_case {
    const char *what, *body;
    const char *filler;
    int status;
    const char *code, *detail, *param;
};

static char *body_fill(const char *fmt, const char *wallet, const char *cur, const char *filler)
{
    size_t cap = strlen(fmt) + 4 * (strlen(wallet) + strlen(filler)) + 16, n = 0;
    char *body = malloc(cap);
    assert_non_null(body);
    for (const char *s = fmt; *s; s++) {
        const char *with = NULL;
        if (s[0] == '%' && s[1] == 'W') with = wallet;
        if (s[0] == '%' && s[1] == 'C') with = cur;
        if (s[0] == '%' && s[1] == 'F') with = filler;
        if (with) {
            n += (size_t)snprintf(body + n, cap - n, "%s", with);
            s++;
        } else {
            body[n++] = *s;
        }
        assert_true(n < cap);
    }
    body[n] = '\0';
    return body;
}

static void problem_check(const struct problem_case *c, const char *wallet, const char *cur)
{
    char *body = body_fill(c->body, wallet, cur, c->filler ? c->filler : "");
    struct rf_t_resp r;
    req_ik("POST", "/v1/payouts", body, &r);
    print_message("%-30s -> %d %.200s\n", c->what, r.status, r.body ? r.body : "");
    RF_ASSERT_PROBLEM(&r, c->status, c->code);
    json_t *j = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(j, "detail"), c->detail);
    if (c->param)
        assert_string_equal(rf_t_json_str(j, "param"), c->param);
    else
        assert_null(json_object_get(j, "param"));
    json_decref(j);
    rf_resp_free(&r);
    free(body);
}

/* What a status and a code do not show: the sentence, the member at fault,
 * and which of two bad inputs is named (every top-level field before
 * destination's own members). A nested object too deep or too large is
 * refused as a whole, as an object field is; a refusal from the ledger
 * carries its code's own sentence and nothing left over from checking the
 * nested field. */
static void test_problem_details(void **state)
{
    (void)state;
    char wallet[64], cur[4], other[64], other_cur[4];
    make_wallet(wallet, sizeof wallet, cur, 50);
    make_wallet(other, sizeof other, other_cur, 50);
    char *big = malloc(20001);
    assert_non_null(big);
    memset(big, 'x', 20000);
    big[20000] = '\0';
    char deep[200] = "";
    for (int i = 0; i < 20; i++) strcat(deep, "{\"a\":");
    strcat(deep, "1");
    for (int i = 0; i < 20; i++) strcat(deep, "}");
#define HEAD "{\"account\": \"%W\", \"amount_minor\": 5, \"currency\": \"%C\", "
#define DEST "\"destination\": {\"provider\": \"p\", \"ref\": \"r\"}"
    const struct problem_case cases[] = {
        {"destination too deep", HEAD "\"destination\": {\"provider\": \"p\", \"d\": %F}}", deep,
         400, "invalid_field", "field 'destination' is nested deeper than 16 levels",
         "destination"},
        {"destination too large", HEAD "\"destination\": {\"ref\": \"r\", \"big\": \"%F\"}}", big,
         400, "invalid_field", "field 'destination' is larger than 16384 bytes", "destination"},
        {"bad ref, bad max_attempts",
         HEAD "\"destination\": {\"provider\": \"p\", \"ref\": \"a b\"}, \"max_attempts\": 0}",
         NULL, 400, "invalid_field", "field 'max_attempts' must be an integer from 1 to 100",
         "max_attempts"},
        {"no ref, bad metadata", HEAD "\"destination\": {\"provider\": \"p\"}, \"metadata\": 1}",
         NULL, 400, "invalid_field", "field 'metadata' must be a JSON object", "metadata"},
        {"destination without ref", HEAD "\"destination\": {\"provider\": \"p\"}}", NULL, 400,
         "invalid_field", "in 'destination': field 'ref' is required", NULL},
        {"destination unknown member",
         HEAD "\"destination\": {\"provider\": \"p\", \"ref\": \"r\", \"iban\": 1}}", NULL, 400,
         "unknown_field", "in 'destination': unknown field 'iban'", NULL},
        {"destination a string", HEAD "\"destination\": \"p:r\"}", NULL, 400, "invalid_field",
         "field 'destination' must be a JSON object", "destination"},
        {"system account",
         "{\"account\": \"funding:%C\", \"amount_minor\": 5, \"currency\": \"%C\", " DEST "}",
         NULL, 400, "reserved_id", "The id is in a namespace racefree reserves for itself.",
         "account"},
        {"currency mismatch",
         "{\"account\": \"%W\", \"amount_minor\": 5, \"currency\": \"%F\", " DEST "}", other_cur,
         400, "currency_mismatch", "The currency does not match the account's currency.", NULL},
        {"insufficient funds",
         "{\"account\": \"%W\", \"amount_minor\": 51, \"currency\": \"%C\", " DEST "}", NULL,
         409, "insufficient_funds", "The debit would overdraw the account.", NULL},
    };
#undef HEAD
#undef DEST
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        problem_check(&cases[i], wallet, cur);
    free(big);
    /* Nothing held by any refusal. */
    struct bal b = env_balance(&g_env, wallet);
    assert_int_equal(b.posted, 50);
    assert_int_equal(b.available, 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_concurrent_attempts, env_ledger_clean_before),
        cmocka_unit_test_setup(test_succeeded_failed_race, env_ledger_clean_before),
        cmocka_unit_test_setup(test_retry_until_max_attempts, env_ledger_clean_before),
        cmocka_unit_test_setup(test_succeeded_repeat_idempotent, env_ledger_clean_before),
        cmocka_unit_test_setup(test_bad_input_and_list, env_ledger_clean_before),
        cmocka_unit_test_setup(test_problem_details, env_ledger_clean_before),
        cmocka_unit_test_setup(test_worker_records_attempts_and_outcomes,
                               env_ledger_clean_before),
    };
    return cmocka_run_group_tests(tests, setup, env_group_teardown);
}
