/*
 * test_money_owners - records that one flow owns are changed only through
 * that flow, over HTTP, black box, on the back end in RF_TEST_DB.
 *
 *  - The payout-hold race: for each round a fresh wallet with a pending
 *    payout, then 64 requests released by a barrier mixing the payout's
 *    `succeeded` and `failed`, void, whole and partial post of its hold
 *    through the transfer routes, and spending transfers from the wallet.
 *    The payout ends paid or failed with its hold posted or voided to match,
 *    every void/post of the hold is 409 hold_owned_by_payout, every refused
 *    spend is 409 insufficient_funds, the wallet is never below zero and its
 *    balance is exactly what the 2xx answers moved, no 5xx, and both the
 *    library's ledger check and `racefree reconcile` are clean. (Before, a
 *    void answered 200 and released the held money while the payout stayed
 *    pending for good.)
 *  - Debits and credits racing on one account near zero: every refusal is
 *    409 insufficient_funds (PostgreSQL answered amount_overflow when the
 *    miss was classified by a later read), balances equal the 201s.
 *  - Reserved ids: funding:<CUR> and payouts:<CUR> cannot be created by a
 *    client (400 reserved_id, param id), and credits in <CUR> still work
 *    afterwards (a squatted funding:<CUR> in another currency used to make
 *    every credit in <CUR> answer currency_mismatch for good); payouts:<CUR>
 *    is refused in transfers, credits and as a payout's account.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "racefree.h"

#define RACE_REQS 64
#define RACE_ROUNDS 6
#define WALLET_FUNDS 300
#define PAYOUT_AMOUNT 100
#define SPEND_AMOUNT 20

static void req_ik(const char *method, const char *path, const char *body, struct rf_t_resp *out)
{
    char h[128];
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    env_req(&g_env, method, path, g_env.service, body, hdrs, out);
}

/* POST with a fresh Idempotency-Key; checks the status; returns the body
 * parsed (json_decref it). */
static json_t *post_ik(const char *path, const char *body, int want)
{
    struct rf_t_resp r;
    req_ik("POST", path, body, &r);
    RF_ASSERT_STATUS(&r, want);
    json_t *j = rf_resp_json(&r);
    rf_resp_free(&r);
    return j;
}

static void make_account(char *id, size_t cap, const char *prefix, const char *cur)
{
    rf_rand_id(prefix, id, cap);
    char body[256];
    snprintf(body, sizeof body, "{\"id\": \"%s\", \"currency\": \"%s\"}", id, cur);
    json_decref(post_ik("/v1/accounts", body, 201));
}

static void credit(const char *id, int64_t amount, int want)
{
    char path[256], body[64];
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", id);
    snprintf(body, sizeof body, "{\"amount_minor\": %lld}", (long long)amount);
    json_decref(post_ik(path, body, want));
}

/* ---- the payout-hold race -------------------------------------------------- */

enum kind { K_SUCCEEDED, K_FAILED, K_VOID, K_POST, K_POST_PART, K_SPEND, K_SPEND2, K_SPEND3 };

struct race {
    struct rf_par_req reqs[RACE_REQS];
    char idem[RACE_REQS][128];
};

static void race_prepare(struct race *r, const char *payout, const char *hold,
                         const char *wallet, const char *sink, const char *cur, const char *ppid)
{
    static char bodies[3][256];
    snprintf(bodies[0], sizeof bodies[0], "{\"provider_payout_id\": \"%s\"}", ppid);
    snprintf(bodies[1], sizeof bodies[1], "{\"reason\": \"declined\", \"retryable\": false}");
    snprintf(bodies[2], sizeof bodies[2],
             "{\"debit_account\": \"%s\", \"credit_account\": \"%s\", \"amount_minor\": %d,"
             " \"currency\": \"%s\"}",
             wallet, sink, SPEND_AMOUNT, cur);
    memset(r, 0, sizeof *r);
    for (int i = 0; i < RACE_REQS; i++) {
        struct rf_par_req *q = &r->reqs[i];
        q->port = g_env.srv.port;
        q->method = "POST";
        q->api_key = g_env.service;
        idem_hdr_fresh(r->idem[i], sizeof r->idem[i]);
        q->headers[0] = r->idem[i];
        switch ((enum kind)(i % 8)) {
        case K_SUCCEEDED:
            snprintf(q->path, sizeof q->path, "/v1/payouts/%s/succeeded", payout);
            q->body = bodies[0];
            break;
        case K_FAILED:
            snprintf(q->path, sizeof q->path, "/v1/payouts/%s/failed", payout);
            q->body = bodies[1];
            break;
        case K_VOID: snprintf(q->path, sizeof q->path, "/v1/transfers/%s/void", hold); break;
        case K_POST: snprintf(q->path, sizeof q->path, "/v1/transfers/%s/post", hold); break;
        case K_POST_PART:
            snprintf(q->path, sizeof q->path, "/v1/transfers/%s/post", hold);
            q->body = "{\"amount_minor\": 1}";
            break;
        default:
            snprintf(q->path, sizeof q->path, "/v1/transfers");
            q->body = bodies[2];
        }
    }
}

/* Checks each answer; returns the number of spends that went through and
 * whether the payout was paid (a succeeded answered 200). */
static int race_tally(struct race *r, bool *paid)
{
    int spent = 0, succeeded = 0, failed = 0;
    for (int i = 0; i < RACE_REQS; i++) {
        struct rf_t_resp *resp = &r->reqs[i].resp;
        enum kind k = (enum kind)(i % 8);
        if (k == K_VOID || k == K_POST || k == K_POST_PART) {
            RF_ASSERT_PROBLEM(resp, 409, "hold_owned_by_payout");
        } else if (k == K_SUCCEEDED || k == K_FAILED) {
            if (resp->status == 409) RF_ASSERT_PROBLEM(resp, 409, "invalid_state");
            else RF_ASSERT_STATUS(resp, 200);
            succeeded += k == K_SUCCEEDED && resp->status == 200;
            failed += k == K_FAILED && resp->status == 200;
        } else if (resp->status == 409) {
            RF_ASSERT_PROBLEM(resp, 409, "insufficient_funds");
        } else {
            RF_ASSERT_STATUS(resp, 201);
            spent++;
        }
    }
    /* one terminal outcome; repeats of it (same provider id) are 200 too */
    if ((succeeded > 0) == (failed > 0))
        fail_msg("succeeded 200 x%d, failed 200 x%d: want exactly one outcome", succeeded, failed);
    assert_true(failed <= 1);
    *paid = succeeded > 0;
    return spent;
}

/* sink_total: what every round so far moved into the shared sink. */
static void check_round(const char *payout, const char *hold, const char *wallet,
                        const char *sink, int64_t sink_total, int spent, bool paid)
{
    struct rf_t_resp r;
    char path[256];
    snprintf(path, sizeof path, "/v1/payouts/%s", payout);
    env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(j, "status"), paid ? "paid" : "failed");
    json_decref(j);
    rf_resp_free(&r);
    snprintf(path, sizeof path, "/v1/transfers/%s", hold);
    env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    j = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(j, "status"), paid ? "posted" : "voided");
    if (paid) assert_int_equal(rf_t_json_int(j, "posted_amount_minor"), PAYOUT_AMOUNT);
    json_decref(j);
    rf_resp_free(&r);
    struct bal w = env_balance(&g_env, wallet);
    int64_t want = WALLET_FUNDS - (int64_t)spent * SPEND_AMOUNT - (paid ? PAYOUT_AMOUNT : 0);
    assert_int_equal(w.posted, want);
    assert_true(w.posted >= 0);
    assert_int_equal(w.pending_debits, 0);
    assert_int_equal(w.available, w.posted);
    assert_int_equal(env_balance(&g_env, sink).posted, sink_total);
    /* the hold kept the payout's money from being spent while it was pending */
    assert_true(spent <= (WALLET_FUNDS - (paid ? PAYOUT_AMOUNT : 0)) / SPEND_AMOUNT);
}

static void reconcile_clean(void)
{
    const char *args[] = {"reconcile", "--db", g_env.db, NULL};
    static char out[8192], err[8192];
    int rc = rf_cli_run(args, out, sizeof out, err, sizeof err, 0);
    if (rc != 0) fail_msg("racefree reconcile exited %d: %s %s", rc, out, err);
    assert_non_null(strstr(out, "\npayout_holds "));
    assert_non_null(strstr(out, "\nreconcile: clean ("));
}

static void test_payout_hold_race(void **state)
{
    (void)state;
    char cur[4], sink[64];
    rand_currency(cur);
    make_account(sink, sizeof sink, "sink", cur);
    struct race *r = malloc(sizeof *r);
    assert_non_null(r);
    int paid_rounds = 0;
    int64_t sink_total = 0;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        char wallet[64], ppid[64], body[512];
        make_account(wallet, sizeof wallet, "wallet", cur);
        credit(wallet, WALLET_FUNDS, 201);
        snprintf(body, sizeof body,
                 "{\"account\": \"%s\", \"amount_minor\": %d, \"currency\": \"%s\","
                 " \"destination\": {\"provider\": \"stripe\", \"ref\": \"acct_1\"}}",
                 wallet, PAYOUT_AMOUNT, cur);
        json_t *p = post_ik("/v1/payouts", body, 201);
        char payout[RF_ID_BYTES], hold[RF_ID_BYTES];
        snprintf(payout, sizeof payout, "%s", rf_t_json_str(p, "id"));
        snprintf(hold, sizeof hold, "%s", rf_t_json_str(p, "hold_transfer_id"));
        json_decref(p);
        RID(ppid, "po");
        race_prepare(r, payout, hold, wallet, sink, cur, ppid);
        assert_int_equal(rf_parallel(r->reqs, RACE_REQS), 0);
        env_no_5xx(r->reqs, RACE_REQS);
        bool paid = false;
        int spent = race_tally(r, &paid);
        rf_par_free(r->reqs, RACE_REQS);
        sink_total += (int64_t)spent * SPEND_AMOUNT;
        check_round(payout, hold, wallet, sink, sink_total, spent, paid);
        paid_rounds += paid;
        /* after the outcome, the hold is still the payout's */
        char path[256];
        snprintf(path, sizeof path, "/v1/transfers/%s/void", hold);
        struct rf_t_resp v;
        req_ik("POST", path, NULL, &v);
        RF_ASSERT_PROBLEM(&v, 409, "hold_owned_by_payout");
        rf_resp_free(&v);
    }
    print_message("payout-hold race: %d of %d rounds paid\n", paid_rounds, RACE_ROUNDS);
    free(r);
    env_ledger_check(&g_env, 1);
    reconcile_clean();
}

/* ---- refusals classified by the state that decided them -------------------- */

/* Debits of 2 and credits of 1 racing on one account near zero (its peer may
 * go negative): every refusal is 409 insufficient_funds (no balance is near
 * int64; on PostgreSQL a second read that saw a later credit used to answer
 * amount_overflow), no 5xx, and the balances equal what the 201s moved. */
#define MIX_ROUNDS 4

static void test_refusals_classified(void **state)
{
    (void)state;
    char cur[4], hot[64], peer[64], body[2][256];
    rand_currency(cur);
    make_account(hot, sizeof hot, "hot", cur);
    rf_rand_id("peer", peer, sizeof peer);
    snprintf(body[0], sizeof body[0],
             "{\"id\": \"%s\", \"currency\": \"%s\", \"allow_negative\": true}", peer, cur);
    json_decref(post_ik("/v1/accounts", body[0], 201));
    snprintf(body[0], sizeof body[0],
             "{\"debit_account\": \"%s\", \"credit_account\": \"%s\", \"amount_minor\": 1,"
             " \"currency\": \"%s\"}", peer, hot, cur);
    snprintf(body[1], sizeof body[1],
             "{\"debit_account\": \"%s\", \"credit_account\": \"%s\", \"amount_minor\": 2,"
             " \"currency\": \"%s\"}", hot, peer, cur);
    struct race *r = malloc(sizeof *r);
    assert_non_null(r);
    int64_t moved = 0, refused = 0;
    for (int round = 0; round < MIX_ROUNDS; round++) {
        memset(r, 0, sizeof *r);
        for (int i = 0; i < RACE_REQS; i++) {
            struct rf_par_req *q = &r->reqs[i];
            q->port = g_env.srv.port;
            q->method = "POST";
            q->api_key = g_env.service;
            snprintf(q->path, sizeof q->path, "/v1/transfers");
            q->body = body[(i + round) % 2];
            idem_hdr_fresh(r->idem[i], sizeof r->idem[i]);
            q->headers[0] = r->idem[i];
        }
        assert_int_equal(rf_parallel(r->reqs, RACE_REQS), 0);
        env_no_5xx(r->reqs, RACE_REQS);
        for (int i = 0; i < RACE_REQS; i++) {
            struct rf_t_resp *resp = &r->reqs[i].resp;
            bool debit = (i + round) % 2 == 1;
            if (debit && resp->status == 409) {
                RF_ASSERT_PROBLEM(resp, 409, "insufficient_funds");
                refused++;
                continue;
            }
            RF_ASSERT_STATUS(resp, 201);
            moved += debit ? -2 : 1;
        }
        rf_par_free(r->reqs, RACE_REQS);
        struct bal h = env_balance(&g_env, hot);
        assert_int_equal(h.posted, moved);
        assert_true(h.posted >= 0);
        assert_int_equal(env_balance(&g_env, peer).posted, -moved);
    }
    print_message("refusals classified: %lld debits refused\n", (long long)refused);
    assert_true(refused > 0); /* the shortfall was exercised */
    free(r);
    env_ledger_check(&g_env, 1);
}

/* ---- reserved ids ------------------------------------------------------------ */

static void expect_reserved(const char *method, const char *path, const char *body,
                            const char *param)
{
    struct rf_t_resp r;
    req_ik(method, path, body, &r);
    RF_ASSERT_PROBLEM(&r, 400, "reserved_id");
    json_t *j = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(j, "param"), param);
    json_decref(j);
    rf_resp_free(&r);
}

static void test_reserved_ids(void **state)
{
    (void)state;
    char cur[4], other[4], body[512], path[256];
    rand_currency(cur);
    rand_currency(other);
    static const char *const ns[] = {"funding", "payouts"};
    for (int i = 0; i < 2; i++) {
        snprintf(body, sizeof body, "{\"id\": \"%s:%s\", \"currency\": \"%s\"}", ns[i], cur,
                 other);
        expect_reserved("POST", "/v1/accounts", body, "id");
        snprintf(body, sizeof body,
                 "{\"id\": \"%s:%s\", \"currency\": \"%s\", \"kind\": \"system\"}", ns[i], cur,
                 cur);
        expect_reserved("POST", "/v1/accounts", body, "id");
    }
    /* nothing was squatted: credits in the currency work */
    char wallet[64];
    make_account(wallet, sizeof wallet, "wallet", cur);
    credit(wallet, 500, 201);
    assert_int_equal(env_balance(&g_env, wallet).posted, 500);
    char funding[32], clearing[32];
    snprintf(funding, sizeof funding, "funding:%s", cur);
    snprintf(clearing, sizeof clearing, "payouts:%s", cur);
    assert_int_equal(env_balance(&g_env, funding).posted, -500);
    /* payouts:<CUR> moves only with payouts */
    snprintf(body, sizeof body,
             "{\"debit_account\": \"%s\", \"credit_account\": \"%s\", \"amount_minor\": 5,"
             " \"currency\": \"%s\", \"pending\": true}",
             wallet, clearing, cur);
    expect_reserved("POST", "/v1/transfers", body, "credit_account");
    snprintf(body, sizeof body,
             "{\"debit_account\": \"%s\", \"credit_account\": \"%s\", \"amount_minor\": 5,"
             " \"currency\": \"%s\"}",
             clearing, wallet, cur);
    expect_reserved("POST", "/v1/transfers", body, "debit_account");
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", clearing);
    expect_reserved("POST", path, "{\"amount_minor\": 5}", "id");
    snprintf(body, sizeof body,
             "{\"account\": \"%s\", \"amount_minor\": 5, \"currency\": \"%s\","
             " \"destination\": {\"provider\": \"stripe\", \"ref\": \"acct_1\"}}",
             funding, cur);
    expect_reserved("POST", "/v1/payouts", body, "account");
    struct bal w = env_balance(&g_env, wallet), c = env_balance(&g_env, clearing);
    assert_int_equal(w.posted, 500);
    assert_int_equal(w.available, 500);
    assert_int_equal(c.posted, 0);
    assert_int_equal(c.pending_credits, 0);
    env_ledger_check(&g_env, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_payout_hold_race, env_ledger_clean_before),
        cmocka_unit_test_setup(test_refusals_classified, env_ledger_clean_before),
        cmocka_unit_test_setup(test_reserved_ids, env_ledger_clean_before),
    };
    return cmocka_run_group_tests(tests, env_group_setup, env_group_teardown);
}
