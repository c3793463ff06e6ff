/*
 * test_ledger_http - seed 003 (credits and balances) over HTTP, black box.
 *
 * Proves, on the back end in RF_TEST_DB, with requests released together by
 * a barrier, that money moves exactly once:
 *  - 64 concurrent credits of 1 with distinct Idempotency-Keys: all 201, the
 *    balance grows by exactly 64, 64 history entries with balance_after 1..64;
 *  - 64 concurrent credits with ONE shared key: one effect; every other
 *    answer is a byte-identical replay (Idempotent-Replayed: true) or 409
 *    idempotency_key_in_flight, and that request sent again replays it;
 *  - an account holding 10 and 64 concurrent transfers of 1 out: exactly 10
 *    are 201, 54 are 409 insufficient_funds, the balance ends at 0;
 *  - a concurrent post and void of one hold: exactly one 200 and one 409
 *    invalid_state, and the transfer and balances show the winner;
 * and after each: no response was a 5xx, and the store, opened with the
 * library (rf_open + rf_ledger_check), is balanced per currency with every
 * account equal to the sum of its entries and holds.
 *
 * Also: a matrix of bad requests (amounts negative, zero, 1.5, "10", 2^63,
 * -2^63, a balance overflow; currency missing, wrong or lower case; unknown
 * or identical accounts; no Idempotency-Key; unknown fields; ...) each gets
 * a 4xx problem+json with its code and changes no balance; a duplicate
 * reference is 409 with existing_transfer_id; the hold rule on expires_at
 * and a post of more than the hold answer exactly as ever (before a missing
 * Idempotency-Key), a post's and a void's replay are byte for byte the
 * first answer; partial posts; holds past
 * expires_at are voided by the server's maintenance; roles;
 * `racefree reconcile` exits 0 on the clean store; an account create's
 * replay and its refusals (bad kind with param kind, after the other fields;
 * reserved_id after every field) as they have always been; and a credit's reason
 * (quotes, backslashes, control characters, non-ASCII) renders as its
 * metadata with the same bytes as ever.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "racefree.h"

#define THREADS 64
#define HOLD_ROUNDS 8
#define MAINT_TICK_MS 50 /* serve --maintenance-interval-ms */
#define MAINT_TICK_TEXT "50"

/* ---- helpers ------------------------------------------------------------- */

/* One request with a fresh Idempotency-Key. */
static void req_ik(const char *method, const char *path, const char *key, const char *body,
                   struct rf_t_resp *out)
{
    char h[128];
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    env_req(&g_env, method, path, key, body, hdrs, out);
}

static void make_account(char *id, size_t cap, const char *prefix, const char *currency,
                         bool allow_negative)
{
    rf_rand_id(prefix, id, cap);
    env_account_create(&g_env, id, currency, allow_negative);
}

static void credit(const char *id, int64_t amount)
{
    char path[256], body[64];
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", id);
    snprintf(body, sizeof body, "{\"amount_minor\": %lld}", (long long)amount);
    struct rf_t_resp r;
    req_ik("POST", path, g_env.service, body, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
}

/* A transfer; returns the parsed body (json_decref it) or fails. */
static json_t *transfer(const char *from, const char *to, int64_t amount, const char *currency,
                        bool pending, int want_status)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"debit_account\": \"%s\", \"credit_account\": \"%s\", \"amount_minor\": %lld,"
             " \"currency\": \"%s\", \"pending\": %s}",
             from, to, (long long)amount, currency, pending ? "true" : "false");
    struct rf_t_resp r;
    req_ik("POST", "/v1/transfers", g_env.service, body, &r);
    RF_ASSERT_STATUS(&r, want_status);
    json_t *j = rf_resp_json(&r);
    rf_resp_free(&r);
    return j;
}

/* All entries of an account (following cursors); checks order. */
static int entries_count(const char *id, int64_t *last_balance)
{
    char after[64] = "";
    int total = 0;
    int64_t last_seq = 0;
    for (int page = 0; page < 100; page++) {
        char path[512];
        snprintf(path, sizeof path, "/v1/accounts/%s/entries?limit=25%s%s", id,
                 after[0] ? "&after=" : "", after);
        struct rf_t_resp r;
        env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r), *data = json_object_get(j, "data"), *item;
        if (!json_is_array(data))
            fail_msg("no data array: %s", r.body);
        size_t i;
        json_array_foreach(data, i, item) {
            int64_t seq = rf_t_json_int(item, "seq");
            if (seq <= last_seq)
                fail_msg("entries out of order (seq %lld after %lld): %s", (long long)seq,
                         (long long)last_seq, r.body);
            last_seq = seq;
            if (last_balance)
                *last_balance = rf_t_json_int(item, "balance_after");
            if (rf_t_json_int(item, "amount_minor") < 1 || !*rf_t_json_str(item, "transfer_id") ||
                !is_rfc3339_ms(rf_t_json_str(item, "created_at")))
                fail_msg("malformed entry: %s", r.body);
            total++;
        }
        json_t *next = json_object_get(j, "next");
        bool more = json_is_string(next);
        if (more)
            snprintf(after, sizeof after, "%s", json_string_value(next));
        json_decref(j);
        rf_resp_free(&r);
        if (!more)
            return total;
    }
    fail_msg("entries of %s: more than 100 pages", id);
    return -1;
}

/* ---- the races ------------------------------------------------------------- */

static char g_hdrs[THREADS][128];

static void prep(struct rf_par_req *reqs, int n, const char *method, const char *path,
                 const char *body)
{
    memset(reqs, 0, sizeof *reqs * (size_t)n);
    for (int i = 0; i < n; i++) {
        reqs[i].port = g_env.srv.port;
        reqs[i].method = method;
        snprintf(reqs[i].path, sizeof reqs[i].path, "%s", path);
        reqs[i].api_key = (i % 2) ? g_env.service : g_env.admin;
        reqs[i].body = body;
        idem_hdr_fresh(g_hdrs[i], sizeof g_hdrs[i]);
        reqs[i].headers[0] = g_hdrs[i];
    }
}

static void test_concurrent_credits_distinct_keys(void **state)
{
    (void)state;
    char cur[4], acct[64], path[256];
    rand_currency(cur);
    make_account(acct, sizeof acct, "wallet", cur, false);
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", acct);
    static struct rf_par_req reqs[THREADS];
    prep(reqs, THREADS, "POST", path, "{\"amount_minor\": 1, \"reason\": \"race\"}");
    assert_int_equal(rf_parallel(reqs, THREADS), 0);
    env_no_5xx(reqs, THREADS);
    for (int i = 0; i < THREADS; i++) {
        RF_ASSERT_STATUS(&reqs[i].resp, 201);
        assert_false(resp_replayed(&reqs[i].resp));
    }
    rf_par_free(reqs, THREADS);
    struct bal b = env_balance(&g_env, acct);
    assert_int_equal(b.posted, THREADS);
    assert_int_equal(b.available, THREADS);
    int64_t last = -1;
    assert_int_equal(entries_count(acct, &last), THREADS);
    assert_int_equal(last, THREADS);
    char funding[32];
    snprintf(funding, sizeof funding, "funding:%s", cur);
    assert_int_equal(env_balance(&g_env, funding).posted, -THREADS);
    env_ledger_check(&g_env, 1);
}

static void test_concurrent_credits_shared_key(void **state)
{
    (void)state;
    char cur[4], acct[64], path[256], h[128];
    rand_currency(cur);
    make_account(acct, sizeof acct, "wallet", cur, false);
    credit(acct, 5);
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", acct);
    static struct rf_par_req reqs[THREADS];
    prep(reqs, THREADS, "POST", path, "{\"amount_minor\": 1}");
    idem_hdr_fresh(h, sizeof h);
    for (int i = 0; i < THREADS; i++) {
        reqs[i].headers[0] = h;
        reqs[i].api_key = g_env.service; /* keys are scoped per API key */
    }
    assert_int_equal(rf_parallel(reqs, THREADS), 0);
    env_no_5xx(reqs, THREADS);
    int first = -1, replays = 0, in_flight = 0;
    for (int i = 0; i < THREADS; i++) {
        struct rf_t_resp *r = &reqs[i].resp;
        if (r->status == 409) {
            RF_ASSERT_PROBLEM(r, 409, "idempotency_key_in_flight");
            in_flight++;
        } else if (r->status == 201 && resp_replayed(r)) {
            replays++;
        } else if (r->status == 201) {
            if (first >= 0)
                fail_msg("two original 201s for one key:\n%s\n%s", reqs[first].resp.body, r->body);
            first = i;
        } else {
            fail_msg("request %d: HTTP %d %s", i, r->status, r->body ? r->body : "");
        }
    }
    print_message("shared key: 1 original, %d replays, %d in flight\n", replays, in_flight);
    if (first < 0)
        fail_msg("no original 201 among %d requests", THREADS);
    for (int i = 0; i < THREADS; i++) {
        struct rf_t_resp *r = &reqs[i].resp;
        if (r->status == 201 && i != first &&
            (r->body_len != reqs[first].resp.body_len ||
             memcmp(r->body, reqs[first].resp.body, r->body_len) != 0))
            fail_msg("replay differs:\n%s\n%s", reqs[first].resp.body, r->body);
    }
    /* A 409 in flight only meant "not yet": the same request again now
     * replays the original, byte for byte, and moves nothing. */
    for (int i = 0; i < THREADS; i++) {
        if (reqs[i].resp.status != 409)
            continue;
        const char *hdrs[] = {h, NULL};
        struct rf_t_resp again;
        env_req(&g_env, "POST", path, g_env.service, "{\"amount_minor\": 1}", hdrs, &again);
        RF_ASSERT_STATUS(&again, 201);
        assert_true(resp_replayed(&again));
        assert_int_equal(again.body_len, reqs[first].resp.body_len);
        assert_memory_equal(again.body, reqs[first].resp.body, again.body_len);
        rf_resp_free(&again);
    }
    rf_par_free(reqs, THREADS);
    assert_int_equal(env_balance(&g_env, acct).posted, 6);
    assert_int_equal(entries_count(acct, NULL), 2);
    env_ledger_check(&g_env, 1);
}

static void test_concurrent_debits(void **state)
{
    (void)state;
    char cur[4], from[64], to[64], body[512];
    rand_currency(cur);
    make_account(from, sizeof from, "rich", cur, false);
    make_account(to, sizeof to, "shop", cur, false);
    credit(from, 10);
    snprintf(body, sizeof body,
             "{\"debit_account\": \"%s\", \"credit_account\": \"%s\", \"amount_minor\": 1,"
             " \"currency\": \"%s\"}",
             from, to, cur);
    static struct rf_par_req reqs[THREADS];
    prep(reqs, THREADS, "POST", "/v1/transfers", body);
    assert_int_equal(rf_parallel(reqs, THREADS), 0);
    env_no_5xx(reqs, THREADS);
    int ok = 0, short_funds = 0;
    for (int i = 0; i < THREADS; i++) {
        struct rf_t_resp *r = &reqs[i].resp;
        if (r->status == 201) {
            ok++;
        } else {
            RF_ASSERT_PROBLEM(r, 409, "insufficient_funds");
            short_funds++;
        }
    }
    rf_par_free(reqs, THREADS);
    assert_int_equal(ok, 10);
    assert_int_equal(short_funds, THREADS - 10);
    struct bal bf = env_balance(&g_env, from), bt = env_balance(&g_env, to);
    assert_int_equal(bf.posted, 0);
    assert_int_equal(bf.available, 0);
    assert_int_equal(bt.posted, 10);
    assert_int_equal(entries_count(from, NULL), 11);
    env_ledger_check(&g_env, 1);
}

static void test_post_void_race(void **state)
{
    (void)state;
    char cur[4], a[64], b[64];
    rand_currency(cur);
    make_account(a, sizeof a, "holder", cur, false);
    make_account(b, sizeof b, "payee", cur, false);
    credit(a, 100);
    static struct rf_par_req reqs[2];
    static char h[2][128];
    int posts = 0;
    for (int round = 0; round < HOLD_ROUNDS; round++) {
        struct bal before = env_balance(&g_env, a), payee = env_balance(&g_env, b);
        json_t *t = transfer(a, b, 5, cur, true, 201);
        char id[RF_ID_BYTES];
        snprintf(id, sizeof id, "%s", rf_t_json_str(t, "id"));
        assert_string_equal(rf_t_json_str(t, "status"), "pending");
        assert_true(json_is_null(json_object_get(t, "posted_amount_minor")));
        json_decref(t);
        struct bal held = env_balance(&g_env, a);
        assert_int_equal(held.available, before.available - 5);
        assert_int_equal(held.pending_debits, before.pending_debits + 5);
        assert_int_equal(env_balance(&g_env, b).pending_credits, payee.pending_credits + 5);

        /* Which one's thread starts first alternates by round. */
        int p_at = round % 2, v_at = 1 - p_at;
        memset(reqs, 0, sizeof reqs);
        for (int i = 0; i < 2; i++) {
            reqs[i].port = g_env.srv.port;
            reqs[i].method = "POST";
            snprintf(reqs[i].path, sizeof reqs[i].path, "/v1/transfers/%s/%s", id,
                     i == p_at ? "post" : "void");
            reqs[i].api_key = g_env.service;
            idem_hdr_fresh(h[i], sizeof h[i]);
            reqs[i].headers[0] = h[i];
        }
        assert_int_equal(rf_parallel(reqs, 2), 0);
        env_no_5xx(reqs, 2);
        int winner = reqs[p_at].resp.status == 200 ? p_at : v_at;
        RF_ASSERT_STATUS(&reqs[winner].resp, 200);
        RF_ASSERT_PROBLEM(&reqs[1 - winner].resp, 409, "invalid_state");
        bool posted = winner == p_at;
        posts += posted;
        char path[256];
        snprintf(path, sizeof path, "/v1/transfers/%s", id);
        struct rf_t_resp g;
        env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &g);
        RF_ASSERT_STATUS(&g, 200);
        t = rf_resp_json(&g);
        assert_string_equal(rf_t_json_str(t, "status"), posted ? "posted" : "voided");
        if (posted)
            assert_int_equal(rf_t_json_int(t, "posted_amount_minor"), 5);
        else
            assert_true(json_is_null(json_object_get(t, "posted_amount_minor")));
        assert_true(is_rfc3339_ms(rf_t_json_str(t, "resolved_at")));
        assert_int_equal(rf_t_json_int(t, "version"), 2);
        assert_int_equal(etag_version(&g), 2);
        json_decref(t);
        rf_resp_free(&g);
        rf_par_free(reqs, 2);
        struct bal after = env_balance(&g_env, a);
        assert_int_equal(after.posted, before.posted - (posted ? 5 : 0));
        assert_int_equal(after.pending_debits, before.pending_debits);
        assert_int_equal(after.available, after.posted);
        assert_int_equal(env_balance(&g_env, b).pending_credits, payee.pending_credits);
        assert_int_equal(env_balance(&g_env, b).posted, payee.posted + (posted ? 5 : 0));
    }
    print_message("post won %d of %d rounds\n", posts, HOLD_ROUNDS);
    env_ledger_check(&g_env, 1);
}

/* ---- bad input --------------------------------------------------------------- */

struct bad {
    const char *what;
    const char *method;
    const char *path;   /* "%s" is replaced by the subject (an account or transfer id) */
    const char *body;   /* "%A" debit, "%B" credit, "%C" currency */
    bool no_key;        /* omit the Idempotency-Key */
    const char *api_key_role; /* NULL: service */
    int status;
    const char *code;
};

/* Expands %A, %B, %C and %T in a template into out. */
static void expand(const char *tpl, const char *a, const char *b, const char *c, const char *t,
                   char *out, size_t cap)
{
    size_t n = 0;
    for (const char *s = tpl; *s && n + 1 < cap; s++) {
        const char *sub = NULL;
        if (s[0] == '%' && s[1]) {
            sub = s[1] == 'A' ? a : s[1] == 'B' ? b : s[1] == 'C' ? c : s[1] == 'T' ? t : NULL;
        }
        if (sub) {
            n += (size_t)snprintf(out + n, cap - n, "%s", sub);
            s++;
        } else {
            out[n++] = *s;
        }
    }
    out[n < cap ? n : cap - 1] = '\0';
}

#define XFER(amount, extra)                                                                   \
    "{\"debit_account\": \"%A\", \"credit_account\": \"%B\", \"amount_minor\": " amount        \
    ", \"currency\": \"%C\"" extra "}"

static void test_bad_input_changes_nothing(void **state)
{
    (void)state;
    char cur[4], other_cur[4], a[64], b[64], c_other[64], funding[32];
    rand_currency(cur);
    do
        rand_currency(other_cur);
    while (strcmp(cur, other_cur) == 0);
    make_account(a, sizeof a, "bad-a", cur, false);
    make_account(b, sizeof b, "bad-b", cur, false);
    make_account(c_other, sizeof c_other, "bad-eur", other_cur, false);
    snprintf(funding, sizeof funding, "funding:%s", cur);
    credit(a, 100);
    json_t *hold = transfer(a, b, 7, cur, true, 201);
    char hold_id[RF_ID_BYTES];
    snprintf(hold_id, sizeof hold_id, "%s", rf_t_json_str(hold, "id"));
    json_decref(hold);

    struct bal ba = env_balance(&g_env, a), bb = env_balance(&g_env, b), bf = env_balance(&g_env, funding), bo = env_balance(&g_env, c_other);
    int ea = entries_count(a, NULL), eb = entries_count(b, NULL);

    static char long_reason[700];
    memset(long_reason, 0, sizeof long_reason);
    strcpy(long_reason, "{\"amount_minor\": 1, \"reason\": \"");
    memset(long_reason + strlen(long_reason), 'r', 513);
    strcat(long_reason, "\"}");

    const struct bad cases[] = {
        {"negative", "POST", "/v1/transfers", XFER("-1", ""), false, NULL, 400, "invalid_field"},
        {"zero", "POST", "/v1/transfers", XFER("0", ""), false, NULL, 400, "invalid_field"},
        {"1.5", "POST", "/v1/transfers", XFER("1.5", ""), false, NULL, 400, "invalid_field"},
        {"1.0 (a real)", "POST", "/v1/transfers", XFER("1.0", ""), false, NULL, 400,
         "invalid_field"},
        {"1e2", "POST", "/v1/transfers", XFER("1e2", ""), false, NULL, 400, "invalid_field"},
        {"\"10\"", "POST", "/v1/transfers", XFER("\"10\"", ""), false, NULL, 400,
         "invalid_field"},
        {"null amount", "POST", "/v1/transfers", XFER("null", ""), false, NULL, 400,
         "invalid_field"},
        {"2^63", "POST", "/v1/transfers", XFER("9223372036854775808", ""), false, NULL, 400,
         "invalid_field"},
        {"-2^63", "POST", "/v1/transfers", XFER("-9223372036854775808", ""), false, NULL, 400,
         "invalid_field"},
        {"10^30", "POST", "/v1/transfers", XFER("1000000000000000000000000000000", ""), false,
         NULL, 400, "invalid_field"},
        {"2^63-1 (no funds)", "POST", "/v1/transfers", XFER("9223372036854775807", ""), false,
         NULL, 409, "insufficient_funds"},
        {"more than the balance", "POST", "/v1/transfers", XFER("94", ""), false, NULL, 409,
         "insufficient_funds"},
        {"missing amount", "POST", "/v1/transfers",
         "{\"debit_account\": \"%A\", \"credit_account\": \"%B\", \"currency\": \"%C\"}", false,
         NULL, 400, "invalid_field"},
        {"missing currency", "POST", "/v1/transfers",
         "{\"debit_account\": \"%A\", \"credit_account\": \"%B\", \"amount_minor\": 1}", false,
         NULL, 400, "invalid_field"},
        {"lower-case currency", "POST", "/v1/transfers",
         "{\"debit_account\": \"%A\", \"credit_account\": \"%B\", \"amount_minor\": 1,"
         " \"currency\": \"usd\"}",
         false, NULL, 400, "invalid_field"},
        {"currency of 4 letters", "POST", "/v1/transfers",
         "{\"debit_account\": \"%A\", \"credit_account\": \"%B\", \"amount_minor\": 1,"
         " \"currency\": \"USDX\"}",
         false, NULL, 400, "invalid_field"},
        {"wrong currency", "POST", "/v1/transfers",
         "{\"debit_account\": \"%A\", \"credit_account\": \"%B\", \"amount_minor\": 1,"
         " \"currency\": \"%T\"}",
         false, NULL, 400, "currency_mismatch"},
        {"unknown debit account", "POST", "/v1/transfers",
         "{\"debit_account\": \"no-such-acct\", \"credit_account\": \"%B\", \"amount_minor\": 1,"
         " \"currency\": \"%C\"}",
         false, NULL, 404, "account_not_found"},
        {"unknown credit account", "POST", "/v1/transfers",
         "{\"debit_account\": \"%A\", \"credit_account\": \"no-such-acct\", \"amount_minor\": 1,"
         " \"currency\": \"%C\"}",
         false, NULL, 404, "account_not_found"},
        {"same account", "POST", "/v1/transfers",
         "{\"debit_account\": \"%A\", \"credit_account\": \"%A\", \"amount_minor\": 1,"
         " \"currency\": \"%C\"}",
         false, NULL, 400, "same_account"},
        {"bad account id", "POST", "/v1/transfers",
         "{\"debit_account\": \"a b\", \"credit_account\": \"%B\", \"amount_minor\": 1,"
         " \"currency\": \"%C\"}",
         false, NULL, 400, "invalid_field"},
        {"missing Idempotency-Key", "POST", "/v1/transfers", XFER("1", ""), true, NULL, 400,
         "idempotency_key_required"},
        {"unknown field", "POST", "/v1/transfers", XFER("1", ", \"memo\": \"typo\""), false, NULL,
         400, "unknown_field"},
        {"pending not a bool", "POST", "/v1/transfers", XFER("1", ", \"pending\": 1"), false, NULL,
         400, "invalid_field"},
        {"expires_at on a posted transfer", "POST", "/v1/transfers",
         XFER("1", ", \"expires_at\": \"2030-01-01T00:00:00.000Z\""), false, NULL, 400,
         "invalid_field"},
        {"metadata not an object", "POST", "/v1/transfers", XFER("1", ", \"metadata\": [1]"),
         false, NULL, 400, "invalid_field"},
        {"malformed JSON", "POST", "/v1/transfers", "{\"debit_account\": ", false, NULL, 400,
         "malformed_json"},
        {"no body", "POST", "/v1/transfers", NULL, false, NULL, 400, "invalid_request"},
        {"readonly may not transfer", "POST", "/v1/transfers", XFER("1", ""), false, "readonly",
         403, "forbidden"},
        {"worker may not transfer", "POST", "/v1/transfers", XFER("1", ""), false, "worker", 403,
         "forbidden"},
        {"no API key", "POST", "/v1/transfers", XFER("1", ""), false, "none", 401,
         "unauthenticated"},
        {"credit: zero", "POST", "/v1/accounts/%A/credits", "{\"amount_minor\": 0}", false, NULL,
         400, "invalid_field"},
        {"credit: negative", "POST", "/v1/accounts/%A/credits", "{\"amount_minor\": -5}", false,
         NULL, 400, "invalid_field"},
        {"credit: 2^63", "POST", "/v1/accounts/%A/credits",
         "{\"amount_minor\": 9223372036854775808}", false, NULL, 400, "invalid_field"},
        {"credit: overflow", "POST", "/v1/accounts/%A/credits",
         "{\"amount_minor\": 9223372036854775807}", false, NULL, 409, "amount_overflow"},
        {"credit: no key", "POST", "/v1/accounts/%A/credits", "{\"amount_minor\": 1}", true, NULL,
         400, "idempotency_key_required"},
        {"credit: unknown account", "POST", "/v1/accounts/no-such-acct/credits",
         "{\"amount_minor\": 1}", false, NULL, 404, "account_not_found"},
        {"credit: reason too long", "POST", "/v1/accounts/%A/credits", long_reason, false, NULL,
         400, "invalid_field"},
        {"credit: unknown field", "POST", "/v1/accounts/%A/credits",
         "{\"amount_minor\": 1, \"currency\": \"%C\"}", false, NULL, 400, "unknown_field"},
        {"post: more than the hold", "POST", "/v1/transfers/%H/post", "{\"amount_minor\": 8}",
         false, NULL, 400, "invalid_request"},
        {"post: zero", "POST", "/v1/transfers/%H/post", "{\"amount_minor\": 0}", false, NULL, 400,
         "invalid_field"},
        {"post: no key", "POST", "/v1/transfers/%H/post", NULL, true, NULL, 400,
         "idempotency_key_required"},
        {"post: unknown transfer", "POST", "/v1/transfers/no-such-transfer/post", NULL, false,
         NULL, 404, "transfer_not_found"},
        {"void: a body field", "POST", "/v1/transfers/%H/void", "{\"amount_minor\": 1}", false,
         NULL, 400, "unknown_field"},
        {"void: no key", "POST", "/v1/transfers/%H/void", NULL, true, NULL, 400,
         "idempotency_key_required"},
        {"void: unknown transfer", "POST", "/v1/transfers/no-such-transfer/void", NULL, false,
         NULL, 404, "transfer_not_found"},
        {"account: lower-case currency", "POST", "/v1/accounts",
         "{\"currency\": \"usd\", \"kind\": \"user\"}", false, NULL, 400, "invalid_field"},
        {"account: bad kind", "POST", "/v1/accounts", "{\"currency\": \"%C\", \"kind\": \"robot\"}",
         false, NULL, 400, "invalid_field"},
        {"account: unknown field", "POST", "/v1/accounts",
         "{\"currency\": \"%C\", \"kind\": \"user\", \"balance\": 100}", false, NULL, 400,
         "unknown_field"},
        {"account: exists with other attributes", "POST", "/v1/accounts",
         "{\"id\": \"%A\", \"currency\": \"%T\", \"kind\": \"user\"}", false, NULL, 409,
         "account_exists"},
        {"account: a system account's id", "POST", "/v1/accounts",
         "{\"id\": \"funding:%C\", \"currency\": \"%C\", \"kind\": \"user\"}", false, NULL, 400,
         "reserved_id"},
        {"get: unknown account", "GET", "/v1/accounts/no-such-acct", NULL, true, NULL, 404,
         "account_not_found"},
        {"get: bad account id", "GET", "/v1/accounts/a%20b", NULL, true, NULL, 400,
         "invalid_path_param"},
        {"entries: bad cursor", "GET", "/v1/accounts/%A/entries?after=x1", NULL, true, NULL, 400,
         "invalid_cursor"},
        {"entries: bad limit", "GET", "/v1/accounts/%A/entries?limit=0", NULL, true, NULL, 400,
         "invalid_limit"},
        {"entries: unknown account", "GET", "/v1/accounts/no-such-acct/entries", NULL, true, NULL,
         404, "account_not_found"},
        {"get: unknown transfer", "GET", "/v1/transfers/no-such-transfer", NULL, true, NULL, 404,
         "transfer_not_found"},
        {"worker may not read accounts", "GET", "/v1/accounts/%A", NULL, true, "worker", 403,
         "forbidden"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct bad *c = &cases[i];
        char path[512], body[1024], tmp[512];
        /* %H: the hold id (path only) */
        expand(c->path, a, b, cur, other_cur, tmp, sizeof tmp);
        char *hpos = strstr(tmp, "%H");
        if (hpos)
            snprintf(path, sizeof path, "%.*s%s%s", (int)(hpos - tmp), tmp, hold_id, hpos + 2);
        else
            snprintf(path, sizeof path, "%s", tmp);
        if (c->body)
            expand(c->body, a, b, cur, other_cur, body, sizeof body);
        const char *key = !c->api_key_role                        ? g_env.service
                          : strcmp(c->api_key_role, "readonly") == 0 ? g_env.readonly
                          : strcmp(c->api_key_role, "worker") == 0   ? g_env.worker
                                                                     : NULL;
        char h[128];
        idem_hdr_fresh(h, sizeof h);
        const char *hdrs[] = {c->no_key ? NULL : h, NULL};
        struct rf_t_resp r;
        env_req(&g_env, c->method, path, key, c->body ? body : NULL, hdrs, &r);
        print_message("%-36s -> %d %.150s\n", c->what, r.status, r.body ? r.body : "");
        if (r.status != c->status)
            fail_msg("%s: expected %d %s, got %d: %s", c->what, c->status, c->code, r.status,
                     r.body ? r.body : r.errmsg);
        RF_ASSERT_PROBLEM(&r, c->status, c->code);
        rf_resp_free(&r);
    }

    /* Nothing moved: balances, holds and histories as before. */
    struct bal ba2 = env_balance(&g_env, a), bb2 = env_balance(&g_env, b), bf2 = env_balance(&g_env, funding), bo2 = env_balance(&g_env, c_other);
    assert_memory_equal(&ba, &ba2, sizeof ba);
    assert_memory_equal(&bb, &bb2, sizeof bb);
    assert_memory_equal(&bf, &bf2, sizeof bf);
    assert_memory_equal(&bo, &bo2, sizeof bo);
    assert_int_equal(entries_count(a, NULL), ea);
    assert_int_equal(entries_count(b, NULL), eb);
    char tpath[256];
    snprintf(tpath, sizeof tpath, "/v1/transfers/%s", hold_id);
    struct rf_t_resp g;
    env_req(&g_env, "GET", tpath, g_env.readonly, NULL, NULL, &g);
    RF_ASSERT_STATUS(&g, 200);
    json_t *t = rf_resp_json(&g);
    assert_string_equal(rf_t_json_str(t, "status"), "pending");
    assert_int_equal(rf_t_json_int(t, "version"), 1);
    json_decref(t);
    rf_resp_free(&g);
    env_ledger_check(&g_env, 1);
}

/* A credit's reason comes back as the metadata {"reason": ...}, escaped as
 * JSON: quotes, backslashes, control characters and non-ASCII text are the
 * same string again, and the response bytes are those of every release so
 * far, on the credit and on a later read. */
static void test_credit_reason_metadata(void **state)
{
    (void)state;
    char acct[64], path[256];
    make_account(acct, sizeof acct, "reason", "USD", false);
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", acct);
    static const char body[] = "{\"amount_minor\": 3, \"reason\": "
                               "\"q\\\"b\\\\s/\\u0001\\u001f\\b\\f\\n\\r\\t\\u007f \xc3\xa9 "
                               "\xe2\x82\xac \xf0\x9f\x98\x80\"}";
    static const char reason[] = "q\"b\\s/\x01\x1f\b\f\n\r\t\x7f \xc3\xa9 \xe2\x82\xac "
                                 "\xf0\x9f\x98\x80";
    static const char rendered[] = "\"metadata\":{\"reason\":\"q\\\"b\\\\s/\\u0001\\u001F\\b"
                                   "\\f\\n\\r\\t\x7f \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}";
    struct rf_t_resp r, g;
    req_ik("POST", path, g_env.service, body, &r);
    RF_ASSERT_STATUS(&r, 201);
    json_t *t = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(json_object_get(t, "metadata"), "reason"), reason);
    assert_non_null(strstr(r.body, rendered));
    snprintf(path, sizeof path, "/v1/transfers/%s", rf_t_json_str(t, "id"));
    env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &g);
    RF_ASSERT_STATUS(&g, 200);
    assert_non_null(strstr(g.body, rendered));
    json_decref(t);
    rf_resp_free(&r);
    rf_resp_free(&g);
}

/* ---- references, partial posts, expiry, accounts ------------------------------- */

static void test_duplicate_reference(void **state)
{
    (void)state;
    char cur[4], a[64], b[64], ref[64], body[512];
    rand_currency(cur);
    make_account(a, sizeof a, "ref-a", cur, false);
    make_account(b, sizeof b, "ref-b", cur, false);
    credit(a, 50);
    RID(ref, "order");
    snprintf(body, sizeof body,
             "{\"debit_account\": \"%s\", \"credit_account\": \"%s\", \"amount_minor\": 20,"
             " \"currency\": \"%s\", \"reference\": \"%s\", \"metadata\": {\"order\": 1}}",
             a, b, cur, ref);
    struct rf_t_resp r1, r2;
    req_ik("POST", "/v1/transfers", g_env.service, body, &r1);
    RF_ASSERT_STATUS(&r1, 201);
    json_t *j = rf_resp_json(&r1);
    char path[256];
    snprintf(path, sizeof path, "/v1/transfers/%s", rf_t_json_str(j, "id"));
    assert_string_equal(rf_resp_header(&r1, "Location"), path);
    assert_int_equal(etag_version(&r1), 1);
    assert_string_equal(rf_t_json_str(j, "reference"), ref);
    assert_string_equal(rf_t_json_str(j, "status"), "posted");
    assert_int_equal(rf_t_json_int(j, "posted_amount_minor"), 20);
    assert_int_equal(rf_t_json_int(json_object_get(j, "metadata"), "order"), 1);
    /* Another key, the same reference: 409 naming the first transfer. */
    req_ik("POST", "/v1/transfers", g_env.service, body, &r2);
    RF_ASSERT_PROBLEM(&r2, 409, "duplicate_reference");
    json_t *p = rf_resp_json(&r2);
    assert_string_equal(rf_t_json_str(p, "existing_transfer_id"), rf_t_json_str(j, "id"));
    json_decref(p);
    rf_resp_free(&r2);
    /* Concurrently, 16 more with distinct keys: all 409, nothing moves. */
    static struct rf_par_req reqs[16];
    prep(reqs, 16, "POST", "/v1/transfers", body);
    assert_int_equal(rf_parallel(reqs, 16), 0);
    env_no_5xx(reqs, 16);
    for (int i = 0; i < 16; i++) {
        RF_ASSERT_PROBLEM(&reqs[i].resp, 409, "duplicate_reference");
        p = rf_resp_json(&reqs[i].resp);
        assert_string_equal(rf_t_json_str(p, "existing_transfer_id"), rf_t_json_str(j, "id"));
        json_decref(p);
    }
    rf_par_free(reqs, 16);
    json_decref(j);
    rf_resp_free(&r1);
    assert_int_equal(env_balance(&g_env, a).posted, 30);
    assert_int_equal(env_balance(&g_env, b).posted, 20);
    env_ledger_check(&g_env, 1);
}

static void time_text(int64_t ms, char *out, size_t cap)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03dZ", base, (int)(ms % 1000));
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_partial_post_and_expiry(void **state)
{
    (void)state;
    char cur[4], a[64], b[64];
    rand_currency(cur);
    make_account(a, sizeof a, "part-a", cur, false);
    make_account(b, sizeof b, "part-b", cur, false);
    credit(a, 100);

    /* Post 30 of a 50 hold: 30 moves, 20 is released. */
    json_t *t = transfer(a, b, 50, cur, true, 201);
    char path[256];
    snprintf(path, sizeof path, "/v1/transfers/%s/post", rf_t_json_str(t, "id"));
    json_decref(t);
    struct rf_t_resp r;
    req_ik("POST", path, g_env.service, "{\"amount_minor\": 30}", &r);
    RF_ASSERT_STATUS(&r, 200);
    t = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(t, "status"), "posted");
    assert_int_equal(rf_t_json_int(t, "amount_minor"), 50);
    assert_int_equal(rf_t_json_int(t, "posted_amount_minor"), 30);
    assert_true(json_is_true(json_object_get(t, "pending")));
    json_decref(t);
    rf_resp_free(&r);
    struct bal ba = env_balance(&g_env, a), bb = env_balance(&g_env, b);
    assert_int_equal(ba.posted, 70);
    assert_int_equal(ba.available, 70);
    assert_int_equal(ba.pending_debits, 0);
    assert_int_equal(bb.posted, 30);
    assert_int_equal(bb.pending_credits, 0);

    /* A hold that expires: the server's maintenance voids it (every
     * MAINT_TICK_MS here), polled every few ms up to a generous bound. */
    char body[512], exp[40];
    time_text(wall_ms() + 1000, exp, sizeof exp);
    snprintf(body, sizeof body,
             "{\"debit_account\": \"%s\", \"credit_account\": \"%s\", \"amount_minor\": 40,"
             " \"currency\": \"%s\", \"pending\": true, \"expires_at\": \"%s\"}",
             a, b, cur, exp);
    req_ik("POST", "/v1/transfers", g_env.service, body, &r);
    RF_ASSERT_STATUS(&r, 201);
    t = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(t, "expires_at"), exp);
    snprintf(path, sizeof path, "/v1/transfers/%s", rf_t_json_str(t, "id"));
    json_decref(t);
    rf_resp_free(&r);
    assert_int_equal(env_balance(&g_env, a).available, 30);
    bool voided = false;
    int64_t deadline = rf_t_now_ms() + 15000;
    while (!voided && rf_t_now_ms() < deadline) {
        rf_t_sleep_ms(MAINT_TICK_MS / 2);
        env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        t = rf_resp_json(&r);
        voided = strcmp(rf_t_json_str(t, "status"), "voided") == 0;
        json_decref(t);
        rf_resp_free(&r);
    }
    if (!voided)
        fail_msg("the expired hold %s was not voided within 15 s", path);
    /* Once expired, it cannot be posted. */
    char post_path[300];
    snprintf(post_path, sizeof post_path, "%s/post", path);
    req_ik("POST", post_path, g_env.service, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 409, "invalid_state");
    rf_resp_free(&r);
    ba = env_balance(&g_env, a);
    assert_int_equal(ba.posted, 70);
    assert_int_equal(ba.available, 70);
    assert_int_equal(env_balance(&g_env, b).pending_credits, 0);
    env_ledger_check(&g_env, 1);
}

/* The problem body without its request_id, compact, members in order. */
static void problem_text(const struct rf_t_resp *r, char *out, size_t cap)
{
    json_t *j = rf_resp_json(r);
    assert_int_equal(json_object_del(j, "request_id"), 0);
    char *text = json_dumps(j, JSON_COMPACT);
    snprintf(out, cap, "%s", text);
    free(text);
    json_decref(j);
}

#define PROBLEM_BASE "{\"type\":\"https://racefree.dev/problems/"

/* Answers whose every member is the contract, compared whole: the rule that
 * expires_at needs a hold (no param; reported with the body, so before a
 * missing Idempotency-Key), a post of more than the hold, and a post's and
 * a void's replay, byte for byte with the same ETag. */
static void test_exact_answers(void **state)
{
    (void)state;
    char cur[4], a[64], b[64], body[512], text[1024], exp[40], path[256];
    rand_currency(cur);
    make_account(a, sizeof a, "exact-a", cur, false);
    make_account(b, sizeof b, "exact-b", cur, false);
    credit(a, 100);
    time_text(wall_ms() + 3600 * 1000, exp, sizeof exp);
    snprintf(body, sizeof body,
             "{\"debit_account\": \"%s\", \"credit_account\": \"%s\", \"amount_minor\": 1,"
             " \"currency\": \"%s\", \"expires_at\": \"%s\"}",
             a, b, cur, exp);
    static const char hold_rule[] =
        PROBLEM_BASE "invalid_field\",\"title\":\"Invalid field\",\"status\":400,"
        "\"detail\":\"field 'expires_at' is for pending transfers only (\\\"pending\\\": "
        "true)\",\"code\":\"invalid_field\"}";
    for (int with_key = 0; with_key < 2; with_key++) {
        struct rf_t_resp r;
        if (with_key)
            req_ik("POST", "/v1/transfers", g_env.service, body, &r);
        else
            env_req(&g_env, "POST", "/v1/transfers", g_env.service, body, NULL, &r);
        RF_ASSERT_STATUS(&r, 400);
        problem_text(&r, text, sizeof text);
        assert_string_equal(text, hold_rule);
        rf_resp_free(&r);
    }

    json_t *hold = transfer(a, b, 7, cur, true, 201);
    snprintf(path, sizeof path, "/v1/transfers/%s/post", rf_t_json_str(hold, "id"));
    json_decref(hold);
    struct rf_t_resp r;
    req_ik("POST", path, g_env.service, "{\"amount_minor\": 8}", &r);
    RF_ASSERT_STATUS(&r, 400);
    problem_text(&r, text, sizeof text);
    assert_string_equal(text, PROBLEM_BASE "invalid_request\",\"title\":\"Invalid request\","
                              "\"status\":400,\"detail\":\"amount_minor is more than the "
                              "pending transfer holds\",\"code\":\"invalid_request\"}");
    rf_resp_free(&r);

    /* post 3 of the 7, then void another hold: each replayed whole */
    json_t *other = transfer(a, b, 5, cur, true, 201);
    char void_path[256];
    snprintf(void_path, sizeof void_path, "/v1/transfers/%s/void", rf_t_json_str(other, "id"));
    json_decref(other);
    const char *const paths[2] = {path, void_path};
    const char *const bodies[2] = {"{\"amount_minor\": 3}", NULL};
    const char *const statuses[2] = {"posted", "voided"};
    for (int i = 0; i < 2; i++) {
        char h[128];
        idem_hdr_fresh(h, sizeof h);
        const char *hdrs[] = {h, NULL};
        struct rf_t_resp first, again;
        env_req(&g_env, "POST", paths[i], g_env.service, bodies[i], hdrs, &first);
        env_req(&g_env, "POST", paths[i], g_env.service, bodies[i], hdrs, &again);
        RF_ASSERT_STATUS(&first, 200);
        RF_ASSERT_STATUS(&again, 200);
        assert_false(resp_replayed(&first));
        assert_true(resp_replayed(&again));
        assert_string_equal(rf_resp_header(&again, "ETag"), "\"2\"");
        assert_string_equal(rf_resp_header(&first, "ETag"), "\"2\"");
        assert_int_equal(again.body_len, first.body_len);
        assert_memory_equal(again.body, first.body, first.body_len);
        json_t *t = rf_resp_json(&again);
        assert_string_equal(rf_t_json_str(t, "status"), statuses[i]);
        json_decref(t);
        rf_resp_free(&first);
        rf_resp_free(&again);
    }
    struct bal ba = env_balance(&g_env, a);
    assert_int_equal(ba.posted, 97);
    assert_int_equal(ba.pending_debits, 0);
    assert_int_equal(env_balance(&g_env, b).posted, 3);
    env_ledger_check(&g_env, 1);
}

static void test_accounts(void **state)
{
    (void)state;
    char cur[4], id[64], body[256];
    rand_currency(cur);
    RID(id, "acct");
    snprintf(body, sizeof body,
             "{\"id\": \"%s\", \"currency\": \"%s\", \"kind\": \"system\", \"allow_negative\": true,"
             " \"metadata\": {\"owner\": \"ops\"}}",
             id, cur);
    struct rf_t_resp r1, r2;
    env_req(&g_env, "POST", "/v1/accounts", g_env.admin, body, NULL, &r1);
    RF_ASSERT_STATUS(&r1, 201);
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/accounts/%s", id);
    assert_string_equal(rf_resp_header(&r1, "Location"), loc);
    json_t *j = rf_resp_json(&r1);
    assert_string_equal(rf_t_json_str(j, "kind"), "system");
    assert_true(json_is_true(json_object_get(j, "allow_negative")));
    assert_string_equal(rf_t_json_str(json_object_get(j, "metadata"), "owner"), "ops");
    assert_int_equal(rf_t_json_int(j, "posted"), 0);
    assert_int_equal(rf_t_json_int(j, "version"), 1);
    assert_true(is_rfc3339_ms(rf_t_json_str(j, "created_at")));
    json_decref(j);
    /* The same again: 200 and the same account. */
    env_req(&g_env, "POST", "/v1/accounts", g_env.service, body, NULL, &r2);
    RF_ASSERT_STATUS(&r2, 200);
    assert_string_equal(r1.body, r2.body);
    rf_resp_free(&r2);
    /* An Idempotency-Key replays the first answer. */
    char h[128];
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    char id2[64], body2[256];
    RID(id2, "acct");
    snprintf(body2, sizeof body2, "{\"id\": \"%s\", \"currency\": \"%s\", \"kind\": \"user\"}",
             id2, cur);
    env_req(&g_env, "POST", "/v1/accounts", g_env.service, body2, hdrs, &r2);
    RF_ASSERT_STATUS(&r2, 201);
    struct rf_t_resp r3;
    env_req(&g_env, "POST", "/v1/accounts", g_env.service, body2, hdrs, &r3);
    RF_ASSERT_STATUS(&r3, 201);
    assert_true(resp_replayed(&r3));
    assert_string_equal(r2.body, r3.body);
    rf_resp_free(&r3);
    rf_resp_free(&r2);
    /* A server-made id. */
    snprintf(body2, sizeof body2, "{\"currency\": \"%s\", \"kind\": \"user\"}", cur);
    env_req(&g_env, "POST", "/v1/accounts", g_env.service, body2, NULL, &r2);
    RF_ASSERT_STATUS(&r2, 201);
    j = rf_resp_json(&r2);
    assert_true(strlen(rf_t_json_str(j, "id")) >= 32);
    json_decref(j);
    rf_resp_free(&r2);
    /* A GET by readonly: the same body and the ETag. */
    env_req(&g_env, "GET", loc, g_env.readonly, NULL, NULL, &r2);
    RF_ASSERT_STATUS(&r2, 200);
    assert_string_equal(r1.body, r2.body);
    assert_int_equal(etag_version(&r2), 1);
    rf_resp_free(&r2);
    rf_resp_free(&r1);
    /* An allow_negative account can be debited below zero. */
    char other[64];
    make_account(other, sizeof other, "neg-payee", cur, false);
    json_decref(transfer(id, other, 25, cur, false, 201));
    assert_int_equal(env_balance(&g_env, id).posted, -25);
    assert_int_equal(env_balance(&g_env, other).posted, 25);
    env_ledger_check(&g_env, 1);
}

/* A create's answer and every way it can be refused, as the API has always
 * shown them: an Idempotency-Key replay is the first answer with the same
 * body, ETag and Location; an absent kind is user; a kind that is none is
 * 400 invalid_field naming kind, reported after every other field; a
 * reserved id is 400 reserved_id naming id, after the fields. Nothing
 * refused is written. */
static void test_account_create_answers(void **state)
{
    (void)state;
    char cur[4], fresh[4], id[64], body[256], h[128];
    rand_currency(cur);
    do rand_currency(fresh); while (strcmp(fresh, cur) == 0); /* never used before */
    RID(id, "ans");
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    snprintf(body, sizeof body, "{\"id\": \"%s\", \"currency\": \"%s\"}", id, cur);
    struct rf_t_resp r1, r2;
    env_req(&g_env, "POST", "/v1/accounts", g_env.service, body, hdrs, &r1);
    RF_ASSERT_STATUS(&r1, 201);
    assert_false(resp_replayed(&r1));
    json_t *j = rf_resp_json(&r1);
    assert_string_equal(rf_t_json_str(j, "kind"), "user");
    json_decref(j);
    env_req(&g_env, "POST", "/v1/accounts", g_env.service, body, hdrs, &r2);
    RF_ASSERT_STATUS(&r2, 201);
    assert_true(resp_replayed(&r2));
    assert_string_equal(r1.body, r2.body);
    assert_string_equal(rf_resp_header(&r1, "ETag"), rf_resp_header(&r2, "ETag"));
    assert_string_equal(rf_resp_header(&r1, "Location"), rf_resp_header(&r2, "Location"));
    rf_resp_free(&r2);
    rf_resp_free(&r1);
    char bad_id[64];
    RID(bad_id, "ans-bad");
    static const struct {
        const char *fmt; /* %s: the id, the currency, then a currency never used */
        const char *code, *param, *detail;
    } cases[] = {
        {"{\"id\": \"%s\", \"currency\": \"%s\", \"kind\": \"robot\"}", "invalid_field",
         "kind", "field 'kind' must be user or system"},
        {"{\"id\": \"%s\", \"currency\": \"%s\", \"kind\": \"User\"}", "invalid_field", "kind",
         "field 'kind' must be user or system"},
        {"{\"id\": \"%s\", \"currency\": \"%s\", \"kind\": 1}", "invalid_field", "kind",
         "field 'kind' must be a string"},
        {"{\"id\": \"%s\", \"currency\": \"%s\", \"kind\": \"robot\", \"allow_negative\": 1}",
         "invalid_field", "allow_negative", "field 'allow_negative' must be true or false"},
        {"{\"id\": \"%s\", \"currency\": \"%s\", \"kind\": \"robot\", \"metadata\": 1}",
         "invalid_field", "metadata", "field 'metadata' must be a JSON object"},
        {"{\"id\": \"payouts:%.0s%.0s%s\", \"currency\": \"EUR\", \"kind\": \"robot\"}",
         "invalid_field", "kind", "field 'kind' must be user or system"},
        {"{\"id\": \"payouts:%.0s%.0s%s\", \"currency\": \"%s\", \"kind\": \"system\"}",
         "reserved_id", "id", "The id is in a namespace racefree reserves for itself."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(body, sizeof body, cases[i].fmt, bad_id, cur, fresh, fresh);
        env_req(&g_env, "POST", "/v1/accounts", g_env.service, body, NULL, &r1);
        RF_ASSERT_PROBLEM(&r1, 400, cases[i].code);
        j = rf_resp_json(&r1);
        assert_string_equal(rf_t_json_str(j, "param"), cases[i].param);
        assert_string_equal(rf_t_json_str(j, "detail"), cases[i].detail);
        json_decref(j);
        rf_resp_free(&r1);
    }
    char path[128];
    snprintf(path, sizeof path, "/v1/accounts/%s", bad_id);
    env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r1);
    RF_ASSERT_PROBLEM(&r1, 404, "account_not_found");
    rf_resp_free(&r1);
    /* the refused reserved create did not even make fresh's system accounts */
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "/v1/accounts/%s:%s", k ? "funding" : "payouts", fresh);
        env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r1);
        RF_ASSERT_PROBLEM(&r1, 404, "account_not_found");
        rf_resp_free(&r1);
    }
}

static void test_reconcile_cli(void **state)
{
    (void)state;
    const char *args[] = {"reconcile", "--db", g_env.db, NULL};
    static char out[8192], err[8192];
    int rc = rf_cli_run(args, out, sizeof out, err, sizeof err, 0);
    if (rc != 0)
        fail_msg("racefree reconcile exited %d: %s %s", rc, out, err);
    assert_non_null(strstr(out, "\ncurrency_balances "));
    assert_non_null(strstr(out, "\naccount_entries "));
    assert_non_null(strstr(out, "\nreconcile: clean ("));
}

/* The shared server, with maintenance every MAINT_TICK_MS (a test-hooks
 * flag) so an expired hold is voided soon, not on the 5 s production tick. */
static int setup(void **state)
{
    (void)state;
    static const char *const args[] = {"--maintenance-interval-ms", MAINT_TICK_TEXT, NULL};
    env_start(&g_env, true, args);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_concurrent_credits_distinct_keys, env_ledger_clean_before),
        cmocka_unit_test_setup(test_concurrent_credits_shared_key, env_ledger_clean_before),
        cmocka_unit_test_setup(test_concurrent_debits, env_ledger_clean_before),
        cmocka_unit_test_setup(test_post_void_race, env_ledger_clean_before),
        cmocka_unit_test_setup(test_bad_input_changes_nothing, env_ledger_clean_before),
        cmocka_unit_test_setup(test_credit_reason_metadata, env_ledger_clean_before),
        cmocka_unit_test_setup(test_duplicate_reference, env_ledger_clean_before),
        cmocka_unit_test_setup(test_partial_post_and_expiry, env_ledger_clean_before),
        cmocka_unit_test_setup(test_exact_answers, env_ledger_clean_before),
        cmocka_unit_test_setup(test_accounts, env_ledger_clean_before),
        cmocka_unit_test_setup(test_account_create_answers, env_ledger_clean_before),
        cmocka_unit_test_setup(test_reconcile_cli, env_ledger_clean_before),
    };
    return cmocka_run_group_tests(tests, setup, env_group_teardown);
}
