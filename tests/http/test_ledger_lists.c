/*
 * test_ledger_lists - GET /v1/accounts and GET /v1/transfers, black box.
 *
 * Proves, on the back end in RF_TEST_DB, over accounts and transfers made in
 * currencies no other test touches:
 *  - every filter lists exactly the rows it names: accounts by ?currency=
 *    and ?kind=; transfers by ?account= (the debit or the credit side),
 *    ?currency=, ?status= and the created range (?created_after= inclusive,
 *    ?created_before= exclusive: the two halves split a list exactly);
 *  - the order is commit order (here: the order the writes were made) and
 *    pages of one row followed by `next` list the same rows as one page;
 *  - every bad filter, limit and cursor is 400 with its stable code and
 *    names the parameter; readonly, service and admin keys may list, a
 *    worker key gets 403 and no key 401.
 * (Following `next` while writers commit: test_list_follow.)
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "racefree.h"

#define IDS_MAX 16
#define WAIT_LISTED_MS 10000

typedef char rid_t[RF_ID_BYTES];

struct listed {
    int n;
    rid_t id[IDS_MAX];
    char created[IDS_MAX][32];
};

/* Follows `next` through path (which has a '?') with pages of `limit`,
 * as `key`; every row's id and created_at into out. */
static void list_all(const char *path, int limit, struct listed *out)
{
    char after[RF_CURSOR_BYTES * 3] = "";
    memset(out, 0, sizeof *out);
    for (int page = 0; page <= IDS_MAX; page++) {
        char url[1024];
        snprintf(url, sizeof url, "%s&limit=%d%s%s", path, limit, after[0] ? "&after=" : "",
                 after);
        struct rf_t_resp r;
        env_req(&g_env, "GET", url, g_env.readonly, NULL, NULL, &r);
        if (r.status != 200)
            fail_msg("GET %s: %d %s", url, r.status, r.body);
        json_t *j = rf_resp_json(&r);
        json_t *data = json_object_get(j, "data"), *next = json_object_get(j, "next");
        assert_true(json_is_array(data) && (int)json_array_size(data) <= limit);
        for (size_t i = 0; i < json_array_size(data); i++) {
            assert_true(out->n < IDS_MAX);
            json_t *row = json_array_get(data, i);
            snprintf(out->id[out->n], sizeof out->id[0], "%s", rf_t_json_str(row, "id"));
            snprintf(out->created[out->n++], sizeof out->created[0], "%s",
                     rf_t_json_str(row, "created_at"));
        }
        bool more = json_is_string(next);
        if (more)
            assert_int_equal(rf_urlencode(json_string_value(next), after, sizeof after), 0);
        else
            assert_true(json_is_null(next));
        json_decref(j);
        rf_resp_free(&r);
        if (!more)
            return;
    }
    fail_msg("GET %s: more pages than rows", path);
}

static bool has_id(const char *const *ids, int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return true;
    return false;
}

/* The list at path is exactly want[0..n), in that order, whether read in
 * pages of one row or in one page; when !ordered, in any order (rows one
 * transaction wrote share a place in commit order and come in id order:
 * an account and its currency's system accounts). */
static void expect_rows(const char *path, const char *const *want, int n, bool ordered)
{
    for (int pass = 0; pass < 2; pass++) {
        struct listed got;
        list_all(path, pass == 0 ? 1 : 500, &got);
        bool same = got.n == n;
        for (int i = 0; same && i < n; i++)
            same = ordered ? strcmp(got.id[i], want[i]) == 0 : has_id(want, n, got.id[i]);
        if (!same) {
            char text[2048] = "";
            for (int i = 0; i < got.n; i++)
                snprintf(text + strlen(text), sizeof text - strlen(text), " %s", got.id[i]);
            fail_msg("GET %s (limit %d): %d rows, want %d:%s", path, pass == 0 ? 1 : 500, got.n,
                     n, text);
        }
    }
}

static void expect_list(const char *path, const char *const *want, int n)
{
    expect_rows(path, want, n, true);
}

/* A list may hold a row back while an older write transaction still runs
 * (PostgreSQL): waits, bounded, until the row with id is listed at path. */
static void wait_listed(const char *path, const char *id)
{
    int64_t until = rf_t_now_ms() + WAIT_LISTED_MS;
    for (;;) {
        struct listed got;
        list_all(path, 500, &got);
        for (int i = 0; i < got.n; i++)
            if (strcmp(got.id[i], id) == 0)
                return;
        if (rf_t_now_ms() > until)
            fail_msg("GET %s: %s never listed", path, id);
        rf_t_sleep_ms(10);
    }
}

/* A write that answers a transfer; its id into out. */
static void transfer_write(const char *path, const char *body, int status, char *out)
{
    char h[128];
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    struct rf_t_resp r;
    env_req(&g_env, "POST", path, g_env.service, body, hdrs, &r);
    if (r.status != status)
        fail_msg("POST %s: %d %s", path, r.status, r.body);
    json_t *j = rf_resp_json(&r);
    snprintf(out, RF_ID_BYTES, "%s", rf_t_json_str(j, "id"));
    json_decref(j);
    rf_resp_free(&r);
}

static void credit(const char *account, int amount, char *out)
{
    char path[256], body[64];
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", account);
    snprintf(body, sizeof body, "{\"amount_minor\": %d}", amount);
    transfer_write(path, body, 201, out);
}

static void transfer(const char *from, const char *to, const char *cur, int amount, bool hold,
                     char *out)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"debit_account\": \"%s\", \"credit_account\": \"%s\", \"amount_minor\": %d,"
             " \"currency\": \"%s\", \"pending\": %s}",
             from, to, amount, cur, hold ? "true" : "false");
    transfer_write("/v1/transfers", body, 201, out);
}

/* The fixture: accounts a, b in cur and c in cur2; transfers t[0..5]:
 * credit a, credit b, a->b posted, a->b held, a->b held then voided,
 * credit c (cur2). */
struct ledger {
    char cur[4], cur2[4];
    rid_t a, b, c, fund, pay, fund2;
    rid_t t[6];
};

static void ledger_make(struct ledger *l)
{
    rand_currency(l->cur);
    do
        rand_currency(l->cur2);
    while (strcmp(l->cur, l->cur2) == 0);
    RID(l->a, "la");
    RID(l->b, "lb");
    RID(l->c, "lc");
    snprintf(l->fund, sizeof l->fund, "funding:%s", l->cur);
    snprintf(l->pay, sizeof l->pay, "payouts:%s", l->cur);
    snprintf(l->fund2, sizeof l->fund2, "funding:%s", l->cur2);
    env_account_create(&g_env, l->a, l->cur, false);
    env_account_create(&g_env, l->b, l->cur, false);
    env_account_create(&g_env, l->c, l->cur2, false);
    credit(l->a, 100, l->t[0]);
    credit(l->b, 50, l->t[1]);
    transfer(l->a, l->b, l->cur, 10, false, l->t[2]);
    transfer(l->a, l->b, l->cur, 5, true, l->t[3]);
    transfer(l->a, l->b, l->cur, 3, true, l->t[4]);
    char path[256], voided[RF_ID_BYTES];
    snprintf(path, sizeof path, "/v1/transfers/%s/void", l->t[4]);
    transfer_write(path, NULL, 200, voided);
    assert_string_equal(voided, l->t[4]);
    credit(l->c, 7, l->t[5]);
    snprintf(path, sizeof path, "/v1/transfers?currency=%s", l->cur);
    wait_listed(path, l->t[4]);
    snprintf(path, sizeof path, "/v1/transfers?currency=%s", l->cur2);
    wait_listed(path, l->t[5]);
}

static void test_account_filters(void **state)
{
    (void)state;
    struct ledger l;
    ledger_make(&l);
    char path[256];
    /* A currency's system accounts are made with its first account. */
    snprintf(path, sizeof path, "/v1/accounts?currency=%s", l.cur);
    expect_rows(path, (const char *const[]){l.fund, l.pay, l.a, l.b}, 4, false);
    struct listed got; /* b, alone in its transaction, after those of a's */
    list_all(path, 500, &got);
    assert_string_equal(got.id[3], l.b);
    snprintf(path, sizeof path, "/v1/accounts?currency=%s&kind=user", l.cur);
    expect_list(path, (const char *const[]){l.a, l.b}, 2);
    char pay2[RF_ID_BYTES];
    snprintf(pay2, sizeof pay2, "payouts:%s", l.cur2);
    snprintf(path, sizeof path, "/v1/accounts?kind=system&currency=%s", l.cur2);
    expect_rows(path, (const char *const[]){l.fund2, pay2}, 2, false);
    snprintf(path, sizeof path, "/v1/accounts?currency=%s&kind=all", l.cur2);
    expect_rows(path, (const char *const[]){l.fund2, pay2, l.c}, 3, false);
}

static void test_transfer_filters(void **state)
{
    (void)state;
    struct ledger l;
    ledger_make(&l);
    char path[512];
    const char *const *t = (const char *const[]){l.t[0], l.t[1], l.t[2], l.t[3], l.t[4], l.t[5]};
    snprintf(path, sizeof path, "/v1/transfers?currency=%s", l.cur);
    expect_list(path, t, 5);
    /* Either side: a is credited by t0 and debited by t2..t4. */
    snprintf(path, sizeof path, "/v1/transfers?account=%s", l.a);
    expect_list(path, (const char *const[]){t[0], t[2], t[3], t[4]}, 4);
    snprintf(path, sizeof path, "/v1/transfers?account=%s", l.b);
    expect_list(path, (const char *const[]){t[1], t[2], t[3], t[4]}, 4);
    snprintf(path, sizeof path, "/v1/transfers?account=%s", l.fund2);
    expect_list(path, (const char *const[]){t[5], NULL}, 1);
    snprintf(path, sizeof path, "/v1/transfers?account=%s&currency=%s", l.a, l.cur2);
    expect_list(path, NULL, 0);
    snprintf(path, sizeof path, "/v1/transfers?currency=%s&status=posted", l.cur);
    expect_list(path, (const char *const[]){t[0], t[1], t[2]}, 3);
    snprintf(path, sizeof path, "/v1/transfers?status=pending&account=%s", l.b);
    expect_list(path, (const char *const[]){t[3], NULL}, 1);
    snprintf(path, sizeof path, "/v1/transfers?status=voided&currency=%s", l.cur);
    expect_list(path, (const char *const[]){t[4], NULL}, 1);
    snprintf(path, sizeof path, "/v1/transfers?status=all&currency=%s", l.cur);
    expect_list(path, t, 5);

    /* The created range at t2's created_at: [.., t2) and [t2, ..) split the
     * list, each row on the side its created_at says. */
    struct listed all, before, after;
    snprintf(path, sizeof path, "/v1/transfers?currency=%s", l.cur);
    list_all(path, 500, &all);
    assert_int_equal(all.n, 5);
    char at[32];
    snprintf(at, sizeof at, "%s", all.created[2]);
    snprintf(path, sizeof path, "/v1/transfers?currency=%s&created_before=%s", l.cur, at);
    list_all(path, 2, &before);
    snprintf(path, sizeof path, "/v1/transfers?created_after=%s&currency=%s", at, l.cur);
    list_all(path, 2, &after);
    assert_int_equal(before.n + after.n, all.n);
    for (int i = 0; i < before.n; i++) {
        assert_string_equal(before.id[i], all.id[i]);
        assert_true(strcmp(before.created[i], at) < 0);
    }
    for (int i = 0; i < after.n; i++) {
        assert_string_equal(after.id[i], all.id[before.n + i]);
        assert_true(strcmp(after.created[i], at) >= 0);
    }
    assert_true(after.n >= 3); /* t2 itself and what followed it */
    /* Both bounds: one millisecond from t2's created_at on lists t2. */
    snprintf(path, sizeof path, "/v1/transfers?currency=%s&created_after=%s&created_before=%s",
             l.cur, at, "9999-01-01T00:00:00.000Z");
    list_all(path, 500, &after);
    assert_true(after.n >= 3);
    snprintf(path, sizeof path, "/v1/transfers?currency=%s&created_after=%s&created_before=%s",
             l.cur, at, at);
    expect_list(path, NULL, 0);
    snprintf(path, sizeof path,
             "/v1/transfers?currency=%s&created_after=2000-01-01T00:00:00Z"
             "&created_before=2000-01-02T00:00:00Z",
             l.cur);
    expect_list(path, NULL, 0);
}

static void test_bad_queries_and_roles(void **state)
{
    (void)state;
    static const struct {
        const char *query, *code, *param;
    } bad[] = {
        {"currency=usd", "invalid_query_param", "currency"},
        {"currency=USDX", "invalid_query_param", "currency"},
        {"currency=", "invalid_query_param", "currency"},
        {"status=done", "invalid_query_param", "status"},
        {"account=a%2Fb", "invalid_query_param", "account"},
        {"account=%FF", "invalid_query_param", "account"},
        {"created_after=yesterday", "invalid_query_param", "created_after"},
        {"created_before=2026-13-01T00:00:00Z", "invalid_query_param", "created_before"},
        {"created_before=1960-01-01T00:00:00Z", "invalid_query_param", "created_before"},
        {"limit=0", "invalid_limit", "limit"},
        {"limit=501", "invalid_limit", "limit"},
        {"after=no-such-row", "invalid_cursor", NULL},
        {"after=a%20b", "invalid_cursor", "after"},
        {"kind=both", "invalid_query_param", "kind"},
    };
    static const char *const lists[] = {"/v1/accounts", "/v1/transfers"};
    for (size_t li = 0; li < 2; li++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            bool accounts = li == 0;
            /* accounts have no status/account/created filters, transfers no kind */
            bool applies = accounts ? strncmp(bad[i].query, "status", 6) != 0 &&
                                          strncmp(bad[i].query, "account", 7) != 0 &&
                                          strncmp(bad[i].query, "created", 7) != 0
                                    : strncmp(bad[i].query, "kind", 4) != 0;
            if (!applies)
                continue;
            char path[256];
            snprintf(path, sizeof path, "%s?%s", lists[li], bad[i].query);
            struct rf_t_resp r;
            env_req(&g_env, "GET", path, g_env.readonly, NULL, NULL, &r);
            if (r.status != 400)
                fail_msg("GET %s: %d %s", path, r.status, r.body);
            RF_ASSERT_PROBLEM(&r, 400, bad[i].code);
            json_t *j = rf_resp_json(&r);
            if (bad[i].param)
                assert_string_equal(rf_t_json_str(j, "param"), bad[i].param);
            json_decref(j);
            rf_resp_free(&r);
        }
        const char *const keys[] = {g_env.readonly, g_env.service, g_env.admin, g_env.worker,
                                    NULL};
        for (int k = 0; k < 5; k++) {
            struct rf_t_resp r;
            env_req(&g_env, "GET", lists[li], keys[k], NULL, NULL, &r);
            if (k < 3)
                RF_ASSERT_STATUS(&r, 200);
            else
                RF_ASSERT_PROBLEM(&r, k == 3 ? 403 : 401, k == 3 ? "forbidden" : "unauthenticated");
            rf_resp_free(&r);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_account_filters),
        cmocka_unit_test(test_transfer_filters),
        cmocka_unit_test(test_bad_queries_and_roles),
    };
    return cmocka_run_group_tests(tests, env_group_setup, env_group_teardown);
}
