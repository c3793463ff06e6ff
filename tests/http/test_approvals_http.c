/*
 * test_approvals_http - seed 004 (approvals) over HTTP, black box.
 *
 * Proves, on the back end in RF_TEST_DB, with requests released together by
 * a barrier, that an approval is never both executed and rejected and that
 * its action runs at most once:
 *  - 64 concurrent approve/reject calls (mixed, different approvers, none the
 *    requester) on one approval with a transfer action, several rounds:
 *    exactly one 200, every other answer 409 invalid_state, the approval's
 *    version is 2 and GET shows the winner's body; if approved, the transfer
 *    ran exactly once (the credit account's posted balance grew by the amount
 *    once, with one history entry, and result.transfer_id is a posted
 *    transfer); if rejected, it never ran;
 *  - approve with a stale If-Match: 412 and nothing changed;
 *  - self approval is judged by API key: the requesting key gets 403
 *    self_approval whatever label it sends, another key may approve under
 *    the requester's label (allowed for the same key when
 *    require_distinct_approver is false); the answers name the keys;
 *  - an action that fails (insufficient_funds): 409 insufficient_funds, the
 *    approval stays pending at version 1, nothing moved, and approving again
 *    (even with the same Idempotency-Key) succeeds after a credit;
 *  - approve racing with expiry (from 20 ms before expires_at to 20 ms after):
 *    either 200 approved strictly before expires_at and the action ran, or
 *    409 approval_expired and it did not; GET agrees; both outcomes occur;
 *  - cancel by a non-requester (another label, or another API key even with
 *    the requester's label): 403 not_requester; by the creating key: 200,
 *    and nothing can happen after; an admin key may cancel any approval;
 *  - every action type (transfer, entitlement_grant, payout) executes on
 *    approval and its result names what it made;
 *  - bad actions (unknown type, unknown member, negative or zero amounts, ...)
 *    and bad bodies: 400 problem+json with nothing written;
 *  - Idempotency-Key replays on create and transitions; the list by status;
 *    roles;
 * and no response anywhere is a 5xx.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "racefree.h"

#define THREADS 64
#define RACE_ROUNDS 4
#define EXPIRY_ROUNDS 10
#define EXPIRY_LEAD_MS 300
#define EXPIRY_SPREAD_MS 20 /* approvals land from this much before to after expiry */
#define LIST_PAGES_MAX 2000

static char g_cur[4]; /* this run's currency: funding:<CUR> is ours alone */
/* A second service key: approvals are requested with g_env.service and
 * decided with this one (the requesting key may not approve). */
static char g_approver[256], g_approver_id[RF_ID_BYTES];

static int setup(void **state)
{
    (void)state;
    env_start_fresh(&g_env, false, NULL); /* lists read from the start */
    rand_currency(g_cur);
    char name[64];
    RID(name, "approver");
    key_create_http(&g_env, "service", name, g_approver_id, sizeof g_approver_id, g_approver,
                    sizeof g_approver);
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

/* Every single request goes through here: no 5xx, ever. */
static void req(const char *method, const char *path, const char *key, const char *body,
                const char *const *headers, struct rf_t_resp *out)
{
    env_req(&g_env, method, path, key, body, headers, out);
    env_no_5xx_one(method, path, out);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fmt_time(int64_t ms, char *out, size_t cap)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03dZ", date, (int)(ms % 1000));
}

/* An account in this run's currency, credited with `funds` (if any). */
static void make_account(char *id, size_t cap, const char *prefix, int64_t funds)
{
    rf_rand_id(prefix, id, cap);
    char body[256], path[256], h[128];
    snprintf(body, sizeof body, "{\"id\": \"%s\", \"currency\": \"%s\", \"kind\": \"user\"}", id,
             g_cur);
    struct rf_t_resp r;
    req("POST", "/v1/accounts", g_env.service, body, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    if (funds <= 0)
        return;
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", id);
    snprintf(body, sizeof body, "{\"amount_minor\": %lld}", (long long)funds);
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    req("POST", path, g_env.service, body, hdrs, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
}

static void credit(const char *id, int64_t amount)
{
    char path[256], body[64], h[128];
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", id);
    snprintf(body, sizeof body, "{\"amount_minor\": %lld}", (long long)amount);
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    struct rf_t_resp r;
    req("POST", path, g_env.service, body, hdrs, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
}

/* The number of history entries of an account (one page is enough here). */
static int entries(const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/accounts/%s/entries?limit=500", id);
    struct rf_t_resp r;
    req("GET", path, g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    int n = (int)json_array_size(json_object_get(j, "data"));
    assert_true(n < 500); /* the page is not full: it holds every entry */
    json_decref(j);
    rf_resp_free(&r);
    return n;
}

static void transfer_action(char *out, size_t cap, const char *from, const char *to,
                            int64_t amount)
{
    snprintf(out, cap,
             "{\"type\": \"transfer\", \"debit_account\": \"%s\", \"credit_account\": \"%s\","
             " \"amount_minor\": %lld, \"currency\": \"%s\"}",
             from, to, (long long)amount, g_cur);
}

static bool is_time_or_null(json_t *v, bool want_null)
{
    if (want_null)
        return json_is_null(v);
    return json_is_string(v) && is_rfc3339_ms(json_string_value(v));
}

/* Checks an approval body: every member with its type, the fields that go
 * with the status (executed_at if and only if approved, ...) and the ETag.
 * Returns the parsed body (json_decref it). */
static json_t *check_approval(const struct rf_t_resp *r)
{
    const char *body = r->body ? r->body : "";
    const char *ct = rf_resp_header(r, "Content-Type");
    if (!ct || strncmp(ct, "application/json", 16) != 0)
        fail_msg("approval Content-Type is %s: %s", ct ? ct : "absent", body);
    json_t *j = rf_resp_json(r);
    if (!json_is_object(j) || json_object_size(j) != 23)
        fail_msg("approval is not an object of 23 members: %s", body);
    static const char *const members[] = {
        "id", "status", "action", "action_type", "requested_by", "requested_by_key",
        "requested_key_id", "require_distinct_approver",
        "metadata", "expires_at", "approved_by", "approved_by_key", "approved_at", "executed_at",
        "result", "rejected_by", "rejected_by_key", "rejected_at", "rejection_reason",
        "cancelled_at", "created_at", "updated_at", "version"};
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
        if (!json_object_get(j, members[i]))
            fail_msg("approval has no \"%s\": %s", members[i], body);
    const char *st = rf_t_json_str(j, "status");
    bool approved = !strcmp(st, "approved"), rejected = !strcmp(st, "rejected"),
         cancelled = !strcmp(st, "cancelled");
    if (!approved && !rejected && !cancelled && strcmp(st, "pending") && strcmp(st, "expired"))
        fail_msg("unknown status: %s", body);
    if (!json_is_object(json_object_get(j, "action")) ||
        strcmp(rf_t_json_str(json_object_get(j, "action"), "type"),
               rf_t_json_str(j, "action_type")) != 0)
        fail_msg("action is not an object of action_type: %s", body);
    if (!json_is_boolean(json_object_get(j, "require_distinct_approver")))
        fail_msg("require_distinct_approver is not a boolean: %s", body);
    json_t *md = json_object_get(j, "metadata");
    if (!json_is_null(md) && !json_is_object(md))
        fail_msg("metadata is not an object or null: %s", body);
    if (!is_time_or_null(json_object_get(j, "expires_at"), false) &&
        !json_is_null(json_object_get(j, "expires_at")))
        fail_msg("expires_at malformed: %s", body);
    /* The CHECKs of the schema, as the API shows them. */
    if (!is_time_or_null(json_object_get(j, "executed_at"), !approved) ||
        !is_time_or_null(json_object_get(j, "approved_at"), !approved) ||
        json_is_null(json_object_get(j, "approved_by")) == approved ||
        json_is_null(json_object_get(j, "approved_by_key")) == approved ||
        (approved ? !json_is_object(json_object_get(j, "result"))
                  : !json_is_null(json_object_get(j, "result"))))
        fail_msg("approval fields contradict status %s: %s", st, body);
    if (!is_time_or_null(json_object_get(j, "rejected_at"), !rejected) ||
        json_is_null(json_object_get(j, "rejected_by")) == rejected ||
        json_is_null(json_object_get(j, "rejected_by_key")) == rejected ||
        json_is_null(json_object_get(j, "rejection_reason")) == rejected)
        fail_msg("rejection fields contradict status %s: %s", st, body);
    if (!is_time_or_null(json_object_get(j, "cancelled_at"), !cancelled))
        fail_msg("cancelled_at contradicts status %s: %s", st, body);
    if (!is_rfc3339_ms(rf_t_json_str(j, "created_at")) ||
        !is_rfc3339_ms(rf_t_json_str(j, "updated_at")))
        fail_msg("created_at/updated_at malformed: %s", body);
    int64_t v = rf_t_json_int(j, "version");
    if (v < 1 || etag_version(r) != v)
        fail_msg("version %lld and ETag %s differ: %s", (long long)v,
                 rf_resp_header(r, "ETag") ? rf_resp_header(r, "ETag") : "(absent)", body);
    if (v != ((approved || rejected || cancelled) ? 2 : 1))
        fail_msg("status %s with version %lld: %s", st, (long long)v, body);
    return j;
}

/* Creates an approval (201) of `action` (a JSON object text) with extra
 * top-level members (", ..." or ""). Checks the answer, returns its body
 * (json_decref it) and the id. */
static json_t *create_approval(const char *action, const char *requested_by, const char *extra,
                               char *id, size_t cap)
{
    char body[2048];
    snprintf(body, sizeof body, "{\"action\": %s, \"requested_by\": \"%s\"%s}", action,
             requested_by, extra);
    struct rf_t_resp r;
    req("POST", "/v1/approvals", g_env.service, body, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    json_t *j = check_approval(&r);
    snprintf(id, cap, "%s", rf_t_json_str(j, "id"));
    char loc[256];
    snprintf(loc, sizeof loc, "/v1/approvals/%s", id);
    const char *got = rf_resp_header(&r, "Location");
    if (!got || strcmp(got, loc) != 0)
        fail_msg("Location %s, expected %s", got ? got : "(absent)", loc);
    json_t *sent = json_loads(action, 0, NULL);
    assert_non_null(sent);
    if (!json_equal(sent, json_object_get(j, "action")))
        fail_msg("the approval's action differs from the one sent: %s", r.body);
    json_decref(sent);
    assert_string_equal(rf_t_json_str(j, "requested_by"), requested_by);
    assert_int_equal(rf_t_json_int(j, "version"), 1);
    rf_resp_free(&r);
    return j;
}

/* GET /v1/approvals/{id}: checked and parsed; the raw body into raw (may be NULL). */
static json_t *approval_get(const char *id, char *raw, size_t cap)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/approvals/%s", id);
    struct rf_t_resp r;
    req("GET", path, g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = check_approval(&r);
    if (raw)
        snprintf(raw, cap, "%s", r.body);
    rf_resp_free(&r);
    return j;
}

/* POST /v1/approvals/{id}/<what> with body and optional extra headers: a
 * cancel by the requesting key, an approval or a rejection by another. */
static void decide(const char *id, const char *what, const char *body, const char *const *hdrs,
                   struct rf_t_resp *out)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/approvals/%s/%s", id, what);
    req("POST", path, strcmp(what, "cancel") == 0 ? g_env.service : g_approver, body, hdrs, out);
}

static void expect_status(const char *id, const char *status, int64_t version)
{
    json_t *j = approval_get(id, NULL, 0);
    assert_string_equal(rf_t_json_str(j, "status"), status);
    assert_int_equal(rf_t_json_int(j, "version"), version);
    json_decref(j);
}

/* ---- the race ------------------------------------------------------------------- */

static void test_approve_reject_race(void **state)
{
    (void)state;
    static struct rf_par_req reqs[THREADS];
    static char bodies[THREADS][160];
    int approved_rounds = 0;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        char from[64], to[64], action[512], id[RF_ID_BYTES];
        make_account(from, sizeof from, "treasury", 1000);
        make_account(to, sizeof to, "wallet", 0);
        transfer_action(action, sizeof action, from, to, 100);
        json_t *created = create_approval(action, "requester", "", id, sizeof id);
        json_decref(created);
        memset(reqs, 0, sizeof reqs);
        for (int i = 0; i < THREADS; i++) {
            bool approve = (i + round) % 2 == 0;
            reqs[i].port = g_env.srv.port;
            reqs[i].method = "POST";
            snprintf(reqs[i].path, sizeof reqs[i].path, "/v1/approvals/%s/%s", id,
                     approve ? "approve" : "reject");
            reqs[i].api_key = (i % 3) ? g_approver : g_env.admin;
            if (approve)
                snprintf(bodies[i], sizeof bodies[i], "{\"approved_by\": \"approver-%d\"}", i);
            else
                snprintf(bodies[i], sizeof bodies[i],
                         "{\"rejected_by\": \"rejector-%d\", \"reason\": \"race %d\"}", i, i);
            reqs[i].body = bodies[i];
        }
        assert_int_equal(rf_parallel(reqs, THREADS), 0);
        env_no_5xx(reqs, THREADS);
        int winner = -1;
        for (int i = 0; i < THREADS; i++) {
            if (reqs[i].resp.status == 200) {
                if (winner >= 0)
                    fail_msg("round %d: two 200s:\n%s\n%s", round, reqs[winner].resp.body,
                             reqs[i].resp.body);
                winner = i;
            } else {
                RF_ASSERT_PROBLEM(&reqs[i].resp, 409, "invalid_state");
            }
        }
        if (winner < 0)
            fail_msg("round %d: no request succeeded", round);
        bool approved = strstr(reqs[winner].path, "/approve") != NULL;
        approved_rounds += approved;
        json_t *w = check_approval(&reqs[winner].resp);
        assert_string_equal(rf_t_json_str(w, "status"), approved ? "approved" : "rejected");
        assert_int_equal(rf_t_json_int(w, "version"), 2);
        char who[32];
        snprintf(who, sizeof who, "%s-%d", approved ? "approver" : "rejector", winner);
        assert_string_equal(rf_t_json_str(w, approved ? "approved_by" : "rejected_by"), who);
        char transfer_id[RF_ID_BYTES] = "";
        if (approved) {
            json_t *res = json_object_get(w, "result");
            assert_string_equal(rf_t_json_str(res, "type"), "transfer");
            assert_string_equal(rf_t_json_str(res, "status"), "posted");
            snprintf(transfer_id, sizeof transfer_id, "%s", rf_t_json_str(res, "transfer_id"));
        }
        json_decref(w);

        /* The store shows the winner, byte for byte. */
        char raw[4096];
        json_t *g = approval_get(id, raw, sizeof raw);
        assert_int_equal(rf_t_json_int(g, "version"), 2);
        json_decref(g);
        assert_string_equal(raw, reqs[winner].resp.body);
        rf_par_free(reqs, THREADS);

        /* The transfer ran exactly once if approved, never if rejected. */
        assert_int_equal(env_balance(&g_env, to).posted, approved ? 100 : 0);
        assert_int_equal(env_balance(&g_env, from).posted, approved ? 900 : 1000);
        assert_int_equal(entries(to), approved ? 1 : 0);
        if (approved) {
            char path[256];
            snprintf(path, sizeof path, "/v1/transfers/%s", transfer_id);
            struct rf_t_resp r;
            req("GET", path, g_env.readonly, NULL, NULL, &r);
            RF_ASSERT_STATUS(&r, 200);
            json_t *t = rf_resp_json(&r);
            assert_string_equal(rf_t_json_str(t, "status"), "posted");
            assert_string_equal(rf_t_json_str(t, "debit_account"), from);
            assert_string_equal(rf_t_json_str(t, "credit_account"), to);
            assert_int_equal(rf_t_json_int(t, "amount_minor"), 100);
            json_decref(t);
            rf_resp_free(&r);
        }
    }
    print_message("approve won %d of %d rounds\n", approved_rounds, RACE_ROUNDS);
}

/* ---- If-Match, self approval, action failure --------------------------------------- */

static void test_stale_if_match(void **state)
{
    (void)state;
    char from[64], to[64], action[512], id[RF_ID_BYTES];
    make_account(from, sizeof from, "treasury", 500);
    make_account(to, sizeof to, "wallet", 0);
    transfer_action(action, sizeof action, from, to, 70);
    json_decref(create_approval(action, "requester", "", id, sizeof id));

    struct rf_t_resp r;
    const char *stale[] = {"If-Match: \"2\"", NULL};
    decide(id, "approve", "{\"approved_by\": \"boss\"}", stale, &r);
    RF_ASSERT_PROBLEM(&r, 412, "version_mismatch");
    rf_resp_free(&r);
    decide(id, "reject", "{\"rejected_by\": \"boss\", \"reason\": \"no\"}", stale, &r);
    RF_ASSERT_PROBLEM(&r, 412, "version_mismatch");
    rf_resp_free(&r);
    decide(id, "cancel", "{\"cancelled_by\": \"requester\"}", stale, &r);
    RF_ASSERT_PROBLEM(&r, 412, "version_mismatch");
    rf_resp_free(&r);
    const char *bad[] = {"If-Match: \"v1\"", NULL};
    decide(id, "approve", "{\"approved_by\": \"boss\"}", bad, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_if_match");
    rf_resp_free(&r);
    expect_status(id, "pending", 1);
    assert_int_equal(env_balance(&g_env, to).posted, 0);
    assert_int_equal(env_balance(&g_env, from).posted, 500);

    const char *right[] = {"If-Match: \"1\"", NULL};
    decide(id, "approve", "{\"approved_by\": \"boss\"}", right, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_decref(check_approval(&r));
    assert_int_equal(etag_version(&r), 2);
    rf_resp_free(&r);
    assert_int_equal(env_balance(&g_env, to).posted, 70);
    /* The old version is stale now; without If-Match it is the state. */
    decide(id, "reject", "{\"rejected_by\": \"boss\", \"reason\": \"late\"}", right, &r);
    RF_ASSERT_PROBLEM(&r, 412, "version_mismatch");
    rf_resp_free(&r);
    decide(id, "reject", "{\"rejected_by\": \"boss\", \"reason\": \"late\"}", NULL, &r);
    RF_ASSERT_PROBLEM(&r, 409, "invalid_state");
    rf_resp_free(&r);
    decide(id, "approve", "{\"approved_by\": \"boss2\"}", NULL, &r);
    RF_ASSERT_PROBLEM(&r, 409, "invalid_state");
    rf_resp_free(&r);
    expect_status(id, "approved", 2);
    assert_int_equal(env_balance(&g_env, to).posted, 70); /* once */
}

/* Who acts is the API key, never the body: the key that requested an
 * approval may not approve it under any label (403 self_approval), another
 * key may under the requester's own label, and the answer names both keys
 * (requested_by_key, approved_by_key; rejected_by_key for a rejection). */
static void test_self_approval(void **state)
{
    (void)state;
    char from[64], to[64], action[512], id[RF_ID_BYTES];
    make_account(from, sizeof from, "treasury", 100);
    make_account(to, sizeof to, "wallet", 0);
    transfer_action(action, sizeof action, from, to, 10);
    char name[64], req_id[RF_ID_BYTES], req_key[256], path[256];
    RID(name, "requester");
    key_create_http(&g_env, "service", name, req_id, sizeof req_id, req_key, sizeof req_key);
    char body[1024];
    snprintf(body, sizeof body,
             "{\"action\": %s, \"requested_by\": \"alice\", \"metadata\": {\"ticket\": \"OPS-1\"},"
             " \"requested_by_key\": null}", action);
    struct rf_t_resp r;
    /* the key is never taken from the body */
    req("POST", "/v1/approvals", req_key, body, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 400, "unknown_field");
    rf_resp_free(&r);
    snprintf(body, sizeof body,
             "{\"action\": %s, \"requested_by\": \"alice\", \"metadata\": {\"ticket\": \"OPS-1\"}}",
             action);
    req("POST", "/v1/approvals", req_key, body, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    json_t *j = check_approval(&r);
    snprintf(id, sizeof id, "%s", rf_t_json_str(j, "id"));
    assert_true(json_is_true(json_object_get(j, "require_distinct_approver")));
    assert_string_equal(rf_t_json_str(j, "requested_by_key"), req_id);
    assert_string_equal(rf_t_json_str(j, "requested_key_id"), req_id);
    assert_true(json_is_null(json_object_get(j, "approved_by_key")));
    json_decref(j);
    rf_resp_free(&r);
    snprintf(path, sizeof path, "/v1/approvals/%s/approve", id);
    /* the requesting key, under another label, a label-free one or its own */
    const char *same_key[] = {"{\"approved_by\": \"bob\"}", "{\"approved_by\": \"alice\"}"};
    for (int i = 0; i < 2; i++) {
        req("POST", path, req_key, same_key[i], NULL, &r);
        RF_ASSERT_PROBLEM(&r, 403, "self_approval");
        rf_resp_free(&r);
    }
    expect_status(id, "pending", 1);
    assert_int_equal(env_balance(&g_env, to).posted, 0);
    /* another key under the requester's label */
    req("POST", path, g_approver, "{\"approved_by\": \"alice\"}", NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    j = check_approval(&r);
    assert_string_equal(rf_t_json_str(j, "approved_by"), "alice");
    assert_string_equal(rf_t_json_str(j, "approved_by_key"), g_approver_id);
    assert_string_equal(rf_t_json_str(j, "requested_by_key"), req_id);
    json_decref(j);
    rf_resp_free(&r);
    assert_int_equal(env_balance(&g_env, to).posted, 10);
    j = approval_get(id, NULL, 0); /* and so it reads */
    assert_string_equal(rf_t_json_str(j, "approved_by_key"), g_approver_id);
    json_decref(j);

    /* Without the requirement the requesting key may approve. */
    json_decref(create_approval(action, "alice", ", \"require_distinct_approver\": false", id,
                                sizeof id));
    snprintf(path, sizeof path, "/v1/approvals/%s/approve", id);
    req("POST", path, g_env.service, "{\"approved_by\": \"alice\"}", NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    j = check_approval(&r);
    assert_string_equal(rf_t_json_str(j, "approved_by"), "alice");
    assert_string_equal(rf_t_json_str(j, "approved_by_key"),
                        rf_t_json_str(j, "requested_by_key"));
    assert_true(json_is_false(json_object_get(j, "require_distinct_approver")));
    json_decref(j);
    rf_resp_free(&r);
    assert_int_equal(env_balance(&g_env, to).posted, 20);

    /* A rejection names its key. */
    json_decref(create_approval(action, "alice", "", id, sizeof id));
    decide(id, "reject", "{\"rejected_by\": \"carol\", \"reason\": \"no\"}", NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    j = check_approval(&r);
    assert_string_equal(rf_t_json_str(j, "rejected_by_key"), g_approver_id);
    assert_true(json_is_null(json_object_get(j, "approved_by_key")));
    json_decref(j);
    rf_resp_free(&r);
}

static void test_action_failure_retryable(void **state)
{
    (void)state;
    char from[64], to[64], action[512], id[RF_ID_BYTES], h[128];
    make_account(from, sizeof from, "treasury", 50);
    make_account(to, sizeof to, "wallet", 0);
    transfer_action(action, sizeof action, from, to, 80);
    json_decref(create_approval(action, "requester", "", id, sizeof id));
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    struct rf_t_resp r;
    for (int i = 0; i < 2; i++) {
        decide(id, "approve", "{\"approved_by\": \"boss\"}", i ? hdrs : NULL, &r);
        RF_ASSERT_PROBLEM(&r, 409, "insufficient_funds");
        rf_resp_free(&r);
    }
    json_t *j = approval_get(id, NULL, 0);
    assert_string_equal(rf_t_json_str(j, "status"), "pending");
    assert_int_equal(rf_t_json_int(j, "version"), 1);
    assert_true(json_is_null(json_object_get(j, "executed_at")));
    assert_true(json_is_null(json_object_get(j, "result")));
    json_decref(j);
    assert_int_equal(env_balance(&g_env, from).posted, 50);
    assert_int_equal(env_balance(&g_env, to).posted, 0);
    assert_int_equal(entries(to), 0);

    /* After a credit the same approval (and the same Idempotency-Key, as a
     * failure stores no response) approves. */
    credit(from, 30);
    decide(id, "approve", "{\"approved_by\": \"boss\"}", hdrs, &r);
    RF_ASSERT_STATUS(&r, 200);
    assert_false(resp_replayed(&r));
    j = check_approval(&r);
    assert_string_equal(rf_t_json_str(j, "status"), "approved");
    json_decref(j);
    char first[4096];
    snprintf(first, sizeof first, "%s", r.body);
    rf_resp_free(&r);
    /* A retry with that key replays the answer and moves nothing. */
    decide(id, "approve", "{\"approved_by\": \"boss\"}", hdrs, &r);
    RF_ASSERT_STATUS(&r, 200);
    assert_true(resp_replayed(&r));
    assert_string_equal(r.body, first);
    rf_resp_free(&r);
    assert_int_equal(env_balance(&g_env, from).posted, 0);
    assert_int_equal(env_balance(&g_env, to).posted, 80);
    assert_int_equal(entries(to), 1);

    /* An action whose account does not exist fails with its own code. */
    transfer_action(action, sizeof action, from, "no-such-account", 1);
    json_decref(create_approval(action, "requester", "", id, sizeof id));
    decide(id, "approve", "{\"approved_by\": \"boss\"}", NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "account_not_found");
    rf_resp_free(&r);
    expect_status(id, "pending", 1);
}

/* ---- expiry ---------------------------------------------------------------------------- */

static void test_approve_racing_expiry(void **state)
{
    (void)state;
    char from[64];
    make_account(from, sizeof from, "treasury", 10000);
    int approved = 0, expired = 0;
    for (int round = 0; round < EXPIRY_ROUNDS; round++) {
        char to[64], action[512], id[RF_ID_BYTES], extra[96], when[40];
        make_account(to, sizeof to, "wallet", 0);
        transfer_action(action, sizeof action, from, to, 7);
        int64_t expires = wall_ms() + EXPIRY_LEAD_MS;
        fmt_time(expires, when, sizeof when);
        snprintf(extra, sizeof extra, ", \"expires_at\": \"%s\"", when);
        char body[1024];
        snprintf(body, sizeof body, "{\"action\": %s, \"requested_by\": \"requester\"%s}", action,
                 extra);
        struct rf_t_resp r;
        req("POST", "/v1/approvals", g_env.service, body, NULL, &r);
        RF_ASSERT_STATUS(&r, 201);
        json_t *j = check_approval(&r);
        snprintf(id, sizeof id, "%s", rf_t_json_str(j, "id"));
        assert_string_equal(rf_t_json_str(j, "expires_at"), when);
        json_decref(j);
        rf_resp_free(&r);
        /* Approve from well before to well after expires_at, through the
         * instant itself. */
        int64_t target = expires - EXPIRY_SPREAD_MS + 2 * EXPIRY_SPREAD_MS * round /
                                                         (EXPIRY_ROUNDS - 1);
        while (wall_ms() < target)
            rf_t_sleep_ms(1);
        decide(id, "approve", "{\"approved_by\": \"boss\"}", NULL, &r);
        bool ok = r.status == 200;
        if (ok) { /* approved strictly before it expired, by the server's clock */
            j = check_approval(&r);
            const char *at = rf_t_json_str(j, "approved_at");
            assert_int_equal(strlen(at), strlen(when)); /* one format: compares as text */
            if (strcmp(at, when) >= 0)
                fail_msg("round %d: approved at %s, expires at %s", round, at, when);
            json_decref(j);
            approved++;
        } else {
            RF_ASSERT_PROBLEM(&r, 409, "approval_expired");
            expired++;
        }
        rf_resp_free(&r);
        /* Whatever won, GET and the money agree (and expiry is not undone). */
        while (wall_ms() <= expires + 5)
            rf_t_sleep_ms(2);
        expect_status(id, ok ? "approved" : "expired", ok ? 2 : 1);
        assert_int_equal(env_balance(&g_env, to).posted, ok ? 7 : 0);
        assert_int_equal(entries(to), ok ? 1 : 0);
        if (!ok) {
            decide(id, "approve", "{\"approved_by\": \"boss2\"}", NULL, &r);
            RF_ASSERT_PROBLEM(&r, 409, "approval_expired");
            rf_resp_free(&r);
            decide(id, "reject", "{\"rejected_by\": \"boss\", \"reason\": \"late\"}", NULL, &r);
            RF_ASSERT_PROBLEM(&r, 409, "invalid_state");
            rf_resp_free(&r);
            decide(id, "cancel", "{\"cancelled_by\": \"requester\"}", NULL, &r);
            RF_ASSERT_PROBLEM(&r, 409, "invalid_state");
            rf_resp_free(&r);
            expect_status(id, "expired", 1);
        }
    }
    print_message("expiry race: %d approved, %d expired\n", approved, expired);
    assert_true(approved > 0 && expired > 0); /* else the rounds did not race the instant */
    assert_int_equal(env_balance(&g_env, from).posted, 10000 - 7 * approved);
}

/* ---- cancel ------------------------------------------------------------------------------- */

static void test_cancel(void **state)
{
    (void)state;
    char from[64], to[64], action[512], id[RF_ID_BYTES];
    make_account(from, sizeof from, "treasury", 100);
    make_account(to, sizeof to, "wallet", 0);
    transfer_action(action, sizeof action, from, to, 5);
    json_decref(create_approval(action, "carol", "", id, sizeof id));
    struct rf_t_resp r;
    decide(id, "cancel", "{\"cancelled_by\": \"dave\"}", NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "not_requester");
    rf_resp_free(&r);
    expect_status(id, "pending", 1);
    /* Who acted is the API key: another service key may not cancel, with or
     * without the requester's label (before, any key could, without one). */
    char other_name[64], other_id[RF_ID_BYTES], other[256], path[256];
    RID(other_name, "other-service");
    key_create_http(&g_env, "service", other_name, other_id, sizeof other_id, other, sizeof other);
    snprintf(path, sizeof path, "/v1/approvals/%s/cancel", id);
    const char *other_bodies[] = {NULL, "{}", "{\"cancelled_by\": \"carol\"}"};
    for (int i = 0; i < 3; i++) {
        req("POST", path, other, other_bodies[i], NULL, &r);
        RF_ASSERT_PROBLEM(&r, 403, "not_requester");
        rf_resp_free(&r);
    }
    expect_status(id, "pending", 1);
    json_t *got = approval_get(id, NULL, 0);
    const char *requested_key = rf_t_json_str(got, "requested_key_id");
    if (!*requested_key || strcmp(requested_key, other_id) == 0)
        fail_msg("requested_key_id is \"%s\", expected the creating key's id", requested_key);
    json_decref(got);
    const char *right[] = {"If-Match: \"1\"", NULL};
    decide(id, "cancel", "{\"cancelled_by\": \"carol\"}", right, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = check_approval(&r);
    assert_string_equal(rf_t_json_str(j, "status"), "cancelled");
    json_decref(j);
    rf_resp_free(&r);
    decide(id, "approve", "{\"approved_by\": \"boss\"}", NULL, &r);
    RF_ASSERT_PROBLEM(&r, 409, "invalid_state");
    rf_resp_free(&r);
    decide(id, "reject", "{\"rejected_by\": \"boss\", \"reason\": \"x\"}", NULL, &r);
    RF_ASSERT_PROBLEM(&r, 409, "invalid_state");
    rf_resp_free(&r);
    decide(id, "cancel", "{\"cancelled_by\": \"carol\"}", NULL, &r);
    RF_ASSERT_PROBLEM(&r, 409, "invalid_state");
    rf_resp_free(&r);
    expect_status(id, "cancelled", 2);
    assert_int_equal(env_balance(&g_env, to).posted, 0);

    /* An admin key may cancel any approval, with no label. */
    json_decref(create_approval(action, "carol", "", id, sizeof id));
    snprintf(path, sizeof path, "/v1/approvals/%s/cancel", id);
    req("POST", path, g_env.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    expect_status(id, "cancelled", 2);
}

/* ---- every action type ---------------------------------------------------------------------- */

static void test_action_types(void **state)
{
    (void)state;
    char user[64], key[64], action[512], id[RF_ID_BYTES], path[256];
    RID(user, "user");
    RID(key, "pro");
    snprintf(action, sizeof action,
             "{\"type\": \"entitlement_grant\", \"user_id\": \"%s\", \"key\": \"%s\","
             " \"source\": \"approval\", \"metadata\": {\"plan\": \"pro\"}}",
             user, key);
    json_decref(create_approval(action, "requester", "", id, sizeof id));
    ent_path(path, sizeof path, user, key);
    struct rf_t_resp r;
    req("GET", path, g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "entitlement_not_found"); /* nothing before approval */
    rf_resp_free(&r);
    decide(id, "approve", "{\"approved_by\": \"boss\"}", NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = check_approval(&r);
    json_t *res = json_object_get(j, "result");
    assert_string_equal(rf_t_json_str(res, "type"), "entitlement_grant");
    char ent_id[RF_ID_BYTES];
    snprintf(ent_id, sizeof ent_id, "%s", rf_t_json_str(res, "entitlement_id"));
    json_decref(j);
    rf_resp_free(&r);
    req("GET", path, g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    j = ent_check(&r, user, key);
    assert_string_equal(rf_t_json_str(j, "id"), ent_id);
    assert_string_equal(rf_t_json_str(j, "status"), "active");
    assert_string_equal(rf_t_json_str(j, "source"), "approval");
    json_decref(j);
    rf_resp_free(&r);

    char wallet[64];
    make_account(wallet, sizeof wallet, "wallet", 300);
    snprintf(action, sizeof action,
             "{\"type\": \"payout\", \"account\": \"%s\", \"amount_minor\": 120,"
             " \"currency\": \"%s\", \"destination\": {\"provider\": \"stripe\", \"ref\": "
             "\"acct_1\"}, \"max_attempts\": 3}",
             wallet, g_cur);
    json_decref(create_approval(action, "requester", "", id, sizeof id));
    assert_int_equal(env_balance(&g_env, wallet).available, 300);
    decide(id, "approve", "{\"approved_by\": \"boss\"}", NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    j = check_approval(&r);
    res = json_object_get(j, "result");
    assert_string_equal(rf_t_json_str(res, "type"), "payout");
    snprintf(path, sizeof path, "/v1/payouts/%s", rf_t_json_str(res, "payout_id"));
    json_decref(j);
    rf_resp_free(&r);
    req("GET", path, g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    j = rf_resp_json(&r);
    assert_string_equal(rf_t_json_str(j, "status"), "pending");
    assert_string_equal(rf_t_json_str(j, "account"), wallet);
    assert_int_equal(rf_t_json_int(j, "amount_minor"), 120);
    assert_int_equal(rf_t_json_int(j, "max_attempts"), 3);
    json_decref(j);
    rf_resp_free(&r);
    struct bal b = env_balance(&g_env, wallet);
    assert_int_equal(b.posted, 300);
    assert_int_equal(b.available, 180); /* held once */
}

/* ---- bad input ------------------------------------------------------------------------------ */

/* Whether any approval was requested by `who` (the store is this file's
 * own, so the whole list is short). */
static bool requested_by(const char *who)
{
    char after[RF_CURSOR_BYTES] = "";
    for (int page = 0; page < LIST_PAGES_MAX; page++) {
        char path[512];
        snprintf(path, sizeof path, "/v1/approvals?limit=500%s%s", after[0] ? "&after=" : "",
                 after);
        struct rf_t_resp r;
        req("GET", path, g_env.readonly, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r), *item;
        size_t i;
        bool found = false;
        json_array_foreach(json_object_get(j, "data"), i, item)
            found |= strcmp(rf_t_json_str(item, "requested_by"), who) == 0;
        json_t *next = json_object_get(j, "next");
        bool more = json_is_string(next);
        if (more)
            snprintf(after, sizeof after, "%s", json_string_value(next));
        json_decref(j);
        rf_resp_free(&r);
        if (found)
            return true;
        if (!more)
            return false;
    }
    fail_msg("approval list: more than %d pages", LIST_PAGES_MAX);
    return true;
}

static void test_bad_input(void **state)
{
    (void)state;
    char from[64], to[64], action[512], anchor[RF_ID_BYTES], who[64];
    make_account(from, sizeof from, "treasury", 100);
    make_account(to, sizeof to, "wallet", 0);
    transfer_action(action, sizeof action, from, to, 10);
    json_decref(create_approval(action, "anchor", "", anchor, sizeof anchor));
    RID(who, "bad");

    /* %F, %T: the accounts; %C: the currency; %W: the requester. */
    static const struct {
        const char *what, *body;
        int status;
        const char *code, *detail_has;
    } cases[] = {
        {"unknown action type",
         "{\"action\": {\"type\": \"wire\", \"amount_minor\": 1}, \"requested_by\": \"%W\"}",
         400, "invalid_request", "type"},
        {"action without type",
         "{\"action\": {\"debit_account\": \"%F\", \"credit_account\": \"%T\", "
         "\"amount_minor\": 1, \"currency\": \"%C\"}, \"requested_by\": \"%W\"}",
         400, "invalid_request", "type"},
        {"unknown member in the action",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%T\", \"amount_minor\": 1, \"currency\": \"%C\", \"memo\": \"x\"}, "
         "\"requested_by\": \"%W\"}",
         400, "invalid_request", "memo"},
        {"negative amount",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%T\", \"amount_minor\": -5, \"currency\": \"%C\"}, \"requested_by\": \"%W\"}",
         400, "invalid_request", "amount_minor"},
        {"zero amount",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%T\", \"amount_minor\": 0, \"currency\": \"%C\"}, \"requested_by\": \"%W\"}",
         400, "invalid_request", "amount_minor"},
        {"amount a string",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%T\", \"amount_minor\": \"10\", \"currency\": \"%C\"}, \"requested_by\": \"%W\"}",
         400, "invalid_request", "amount_minor"},
        {"amount 1.5",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%T\", \"amount_minor\": 1.5, \"currency\": \"%C\"}, \"requested_by\": \"%W\"}",
         400, "invalid_request", "amount_minor"},
        {"amount 2^63",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%T\", \"amount_minor\": 9223372036854775808, \"currency\": \"%C\"}, "
         "\"requested_by\": \"%W\"}",
         400, "invalid_field", NULL},
        {"action without currency",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%T\", \"amount_minor\": 1}, \"requested_by\": \"%W\"}",
         400, "invalid_request", "currency"},
        {"lower-case currency",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%T\", \"amount_minor\": 1, \"currency\": \"usd\"}, \"requested_by\": \"%W\"}",
         400, "invalid_request", "currency"},
        {"bad account id",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"a b\", \"credit_account\": "
         "\"%T\", \"amount_minor\": 1, \"currency\": \"%C\"}, \"requested_by\": \"%W\"}",
         400, "invalid_request", "debit_account"},
        {"same account",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%F\", \"amount_minor\": 1, \"currency\": \"%C\"}, \"requested_by\": \"%W\"}",
         400, "same_account", NULL},
        {"grant without key",
         "{\"action\": {\"type\": \"entitlement_grant\", \"user_id\": \"u1\"}, "
         "\"requested_by\": \"%W\"}",
         400, "invalid_request", "key"},
        {"payout destination extra member",
         "{\"action\": {\"type\": \"payout\", \"account\": \"%F\", \"amount_minor\": 1, "
         "\"currency\": \"%C\", \"destination\": {\"provider\": \"p\", \"ref\": \"r\", "
         "\"iban\": \"x\"}}, \"requested_by\": \"%W\"}",
         400, "invalid_request", "iban"},
        {"payout max_attempts 101",
         "{\"action\": {\"type\": \"payout\", \"account\": \"%F\", \"amount_minor\": 1, "
         "\"currency\": \"%C\", \"destination\": {\"provider\": \"p\", \"ref\": \"r\"}, "
         "\"max_attempts\": 101}, \"requested_by\": \"%W\"}",
         400, "invalid_request", "max_attempts"},
        {"action a string", "{\"action\": \"transfer\", \"requested_by\": \"%W\"}", 400,
         "invalid_field", "action"},
        {"action an array", "{\"action\": [1], \"requested_by\": \"%W\"}", 400, "invalid_field",
         "action"},
        {"no action", "{\"requested_by\": \"%W\"}", 400, "invalid_field", "action"},
        {"no requested_by",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%T\", \"amount_minor\": 1, \"currency\": \"%C\"}}",
         400, "invalid_field", "requested_by"},
        {"bad requested_by",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%T\", \"amount_minor\": 1, \"currency\": \"%C\"}, \"requested_by\": \"a b\"}",
         400, "invalid_field", "requested_by"},
        {"unknown top-level field",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%T\", \"amount_minor\": 1, \"currency\": \"%C\"}, \"requested_by\": \"%W\", "
         "\"approver\": \"x\"}",
         400, "unknown_field", "approver"},
        {"require_distinct_approver a string",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%T\", \"amount_minor\": 1, \"currency\": \"%C\"}, \"requested_by\": \"%W\", "
         "\"require_distinct_approver\": \"yes\"}",
         400, "invalid_field", "require_distinct_approver"},
        {"bad expires_at",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%T\", \"amount_minor\": 1, \"currency\": \"%C\"}, \"requested_by\": \"%W\", "
         "\"expires_at\": \"tomorrow\"}",
         400, "invalid_field", "expires_at"},
        {"metadata a string",
         "{\"action\": {\"type\": \"transfer\", \"debit_account\": \"%F\", \"credit_account\": "
         "\"%T\", \"amount_minor\": 1, \"currency\": \"%C\"}, \"requested_by\": \"%W\", "
         "\"metadata\": \"x\"}",
         400, "invalid_field", "metadata"},
        {"malformed JSON", "{\"action\": {\"type\": ", 400, "malformed_json", NULL},
        {"empty body", "", 400, "invalid_request", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[1024];
        size_t n = 0;
        for (const char *s = cases[i].body; *s && n + 1 < sizeof body; s++) {
            const char *sub = NULL;
            if (s[0] == '%' && s[1] == 'F')
                sub = from;
            else if (s[0] == '%' && s[1] == 'T')
                sub = to;
            else if (s[0] == '%' && s[1] == 'C')
                sub = g_cur;
            else if (s[0] == '%' && s[1] == 'W')
                sub = who;
            if (sub) {
                n += (size_t)snprintf(body + n, sizeof body - n, "%s", sub);
                s++;
            } else {
                body[n++] = *s;
            }
        }
        body[n] = '\0';
        char h[128];
        idem_hdr_fresh(h, sizeof h);
        const char *hdrs[] = {h, NULL};
        struct rf_t_resp r;
        req("POST", "/v1/approvals", g_env.service, body, (i % 2) ? hdrs : NULL, &r);
        print_message("%-36s -> %d %.160s\n", cases[i].what, r.status, r.body ? r.body : "");
        RF_ASSERT_PROBLEM(&r, cases[i].status, cases[i].code);
        if (cases[i].detail_has) {
            json_t *j = rf_resp_json(&r);
            if (!strstr(rf_t_json_str(j, "detail"), cases[i].detail_has))
                fail_msg("%s: the detail does not name '%s': %s", cases[i].what,
                         cases[i].detail_has, r.body);
            json_decref(j);
        }
        rf_resp_free(&r);
    }
    if (requested_by(who))
        fail_msg("a refused request stored an approval");
    assert_int_equal(env_balance(&g_env, from).posted, 100);
    assert_int_equal(env_balance(&g_env, to).posted, 0);

    /* Transition bodies. */
    char long_reason[2 * 520 + 64], wide_reason[2 * 512 + 64];
    memset(long_reason, 'r', 513);
    long_reason[513] = '\0';
    wide_reason[0] = '\0';
    for (int i = 0; i < 513; i++)
        strcat(wide_reason, "\xc3\xa9"); /* 513 characters, 1026 bytes (limits count characters) */
    char lr_body[1200], wr_body[1200];
    snprintf(lr_body, sizeof lr_body, "{\"rejected_by\": \"b\", \"reason\": \"%s\"}", long_reason);
    snprintf(wr_body, sizeof wr_body, "{\"rejected_by\": \"b\", \"reason\": \"%s\"}", wide_reason);
    struct {
        const char *what, *op, *body;
        const char *code;
    } tcases[] = {
        {"approve without approved_by", "approve", "{}", "invalid_field"},
        {"approve no body", "approve", NULL, "invalid_request"},
        {"approve bad approver", "approve", "{\"approved_by\": \"a/b\"}", "invalid_field"},
        {"approve unknown field", "approve", "{\"approved_by\": \"b\", \"note\": 1}",
         "unknown_field"},
        {"reject empty reason", "reject", "{\"rejected_by\": \"b\", \"reason\": \"\"}",
         "invalid_field"},
        {"reject 513-char reason", "reject", lr_body, "invalid_field"},
        {"reject 513-char 2-byte reason", "reject", wr_body, "invalid_field"},
        {"reject without rejected_by", "reject", "{\"reason\": \"no\"}", "invalid_field"},
        {"cancel approved_by instead", "cancel", "{\"approved_by\": \"anchor\"}",
         "unknown_field"},
    };
    for (size_t i = 0; i < sizeof tcases / sizeof tcases[0]; i++) {
        struct rf_t_resp r;
        decide(anchor, tcases[i].op, tcases[i].body, NULL, &r);
        print_message("%-36s -> %d %.160s\n", tcases[i].what, r.status, r.body ? r.body : "");
        RF_ASSERT_PROBLEM(&r, 400, tcases[i].code);
        rf_resp_free(&r);
    }
    expect_status(anchor, "pending", 1);
    assert_int_equal(env_balance(&g_env, to).posted, 0);

    /* Unknown approvals, bad ids, bad list queries. */
    struct rf_t_resp r;
    const char *ops[] = {"approve", "reject", "cancel"};
    const char *bodies[] = {"{\"approved_by\": \"b\"}", "{\"rejected_by\": \"b\", \"reason\": \"n\"}",
                            "{\"cancelled_by\": \"b\"}"};
    for (int i = 0; i < 3; i++) {
        decide("no-such-approval", ops[i], bodies[i], NULL, &r);
        RF_ASSERT_PROBLEM(&r, 404, "approval_not_found");
        rf_resp_free(&r);
        decide("a%20b", ops[i], bodies[i], NULL, &r);
        RF_ASSERT_PROBLEM(&r, 400, "invalid_path_param");
        rf_resp_free(&r);
    }
    req("GET", "/v1/approvals/no-such-approval", g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "approval_not_found");
    rf_resp_free(&r);
    req("GET", "/v1/approvals?status=done", g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_query_param");
    rf_resp_free(&r);
    req("GET", "/v1/approvals?after=a%20b", g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_cursor");
    rf_resp_free(&r);
    req("GET", "/v1/approvals?limit=0", g_env.readonly, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 400, "invalid_limit");
    rf_resp_free(&r);
}

/* ---- Idempotency-Key, roles, list ----------------------------------------------------------- */

static void test_idempotency_and_roles(void **state)
{
    (void)state;
    char from[64], to[64], action[512], body[1024], h[128];
    make_account(from, sizeof from, "treasury", 100);
    make_account(to, sizeof to, "wallet", 0);
    transfer_action(action, sizeof action, from, to, 10);
    snprintf(body, sizeof body, "{\"action\": %s, \"requested_by\": \"requester\"}", action);
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    struct rf_t_resp r1, r2, r;
    req("POST", "/v1/approvals", g_env.service, body, hdrs, &r1);
    RF_ASSERT_STATUS(&r1, 201);
    req("POST", "/v1/approvals", g_env.service, body, hdrs, &r2);
    RF_ASSERT_STATUS(&r2, 201);
    assert_true(resp_replayed(&r2));
    assert_string_equal(r1.body, r2.body); /* one approval */
    json_t *j = check_approval(&r1);
    char id[RF_ID_BYTES];
    snprintf(id, sizeof id, "%s", rf_t_json_str(j, "id"));
    json_decref(j);
    rf_resp_free(&r1);
    rf_resp_free(&r2);
    char other[1024];
    transfer_action(action, sizeof action, from, to, 11);
    snprintf(other, sizeof other, "{\"action\": %s, \"requested_by\": \"requester\"}", action);
    req("POST", "/v1/approvals", g_env.service, other, hdrs, &r);
    RF_ASSERT_PROBLEM(&r, 422, "idempotency_key_reused");
    rf_resp_free(&r);

    /* Roles. */
    req("POST", "/v1/approvals", g_env.readonly, body, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    req("POST", "/v1/approvals", g_env.worker, body, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    char path[256];
    static const char *const ops[] = {"approve", "reject", "cancel"};
    static const char *const op_bodies[] = {"{\"approved_by\": \"boss\"}",
                                            "{\"rejected_by\": \"boss\", \"reason\": \"n\"}",
                                            "{\"cancelled_by\": \"requester\"}"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/v1/approvals/%s/%s", id, ops[i]);
        req("POST", path, g_env.readonly, op_bodies[i], NULL, &r);
        RF_ASSERT_PROBLEM(&r, 403, "forbidden");
        rf_resp_free(&r);
        req("POST", path, g_env.worker, op_bodies[i], NULL, &r);
        RF_ASSERT_PROBLEM(&r, 403, "forbidden");
        rf_resp_free(&r);
    }
    snprintf(path, sizeof path, "/v1/approvals/%s", id);
    req("GET", path, g_env.worker, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    req("GET", "/v1/approvals", g_env.worker, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    const char *readers[] = {g_env.admin, g_env.service, g_env.readonly};
    for (int i = 0; i < 3; i++) {
        req("GET", path, readers[i], NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        rf_resp_free(&r);
    }
    expect_status(id, "pending", 1);

    /* A transition with a key: replayed, once; the key on another body: 422. */
    idem_hdr_fresh(h, sizeof h);
    snprintf(path, sizeof path, "/v1/approvals/%s/reject", id);
    req("POST", path, g_env.admin, "{\"rejected_by\": \"boss\", \"reason\": \"dup\"}", hdrs, &r1);
    RF_ASSERT_STATUS(&r1, 200);
    req("POST", path, g_env.admin, "{\"rejected_by\": \"boss\", \"reason\": \"dup\"}", hdrs, &r2);
    RF_ASSERT_STATUS(&r2, 200);
    assert_true(resp_replayed(&r2));
    assert_string_equal(r1.body, r2.body);
    rf_resp_free(&r1);
    rf_resp_free(&r2);
    req("POST", path, g_env.admin, "{\"rejected_by\": \"boss\", \"reason\": \"other\"}", hdrs,
        &r);
    RF_ASSERT_PROBLEM(&r, 422, "idempotency_key_reused");
    rf_resp_free(&r);
    j = approval_get(id, NULL, 0);
    assert_string_equal(rf_t_json_str(j, "status"), "rejected");
    assert_string_equal(rf_t_json_str(j, "rejection_reason"), "dup");
    json_decref(j);
    assert_int_equal(env_balance(&g_env, to).posted, 0);
}

static void test_list_by_status(void **state)
{
    (void)state;
    char from[64], to[64], action[512];
    make_account(from, sizeof from, "treasury", 100);
    make_account(to, sizeof to, "wallet", 0);
    transfer_action(action, sizeof action, from, to, 1);
    /* One approval in each state, in this order. */
    static const char *const names[] = {"pending", "approved", "rejected", "cancelled", "expired"};
    char ids[5][RF_ID_BYTES];
    struct rf_t_resp r;
    int64_t expires = 0;
    for (int s = 0; s < 5; s++) {
        char extra[96] = "";
        if (s == 4) { /* the lead: room to create it under load */
            char when[40];
            expires = wall_ms() + EXPIRY_LEAD_MS;
            fmt_time(expires, when, sizeof when);
            snprintf(extra, sizeof extra, ", \"expires_at\": \"%s\"", when);
        }
        json_decref(create_approval(action, "requester", extra, ids[s], sizeof ids[s]));
    }
    decide(ids[1], "approve", "{\"approved_by\": \"boss\"}", NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    decide(ids[2], "reject", "{\"rejected_by\": \"boss\", \"reason\": \"no\"}", NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    decide(ids[3], "cancel", "{\"cancelled_by\": \"requester\"}", NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    while (wall_ms() <= expires) /* until ids[4] is past expires_at */
        rf_t_sleep_ms(5);
    expect_status(ids[4], "expired", 1);

    /* Each filter (and "all", and no filter) from the start, two per page
     * (the store is this file's own, so the lists are short). */
    for (int f = 0; f < 7; f++) {
        const char *filter = f < 5 ? names[f] : f == 5 ? "all" : NULL;
        int found[5] = {0};
        char after[RF_CURSOR_BYTES] = "";
        int page = 0;
        for (; page < LIST_PAGES_MAX; page++) {
            char path[512];
            snprintf(path, sizeof path, "/v1/approvals?limit=2%s%s%s%s", after[0] ? "&after=" : "",
                     after, filter ? "&status=" : "", filter ? filter : "");
            req("GET", path, g_env.readonly, NULL, NULL, &r);
            RF_ASSERT_STATUS(&r, 200);
            json_t *j = rf_resp_json(&r), *data = json_object_get(j, "data"), *item;
            assert_true(json_array_size(data) <= 2);
            size_t i;
            json_array_foreach(data, i, item) {
                if (f < 5 && strcmp(rf_t_json_str(item, "status"), filter) != 0)
                    fail_msg("status=%s listed: %s", filter, r.body);
                for (int s = 0; s < 5; s++)
                    found[s] += strcmp(rf_t_json_str(item, "id"), ids[s]) == 0;
            }
            json_t *next = json_object_get(j, "next");
            bool more = json_is_string(next);
            if (more)
                snprintf(after, sizeof after, "%s", json_string_value(next));
            json_decref(j);
            rf_resp_free(&r);
            if (!more)
                break;
        }
        assert_true(page < LIST_PAGES_MAX);
        for (int s = 0; s < 5; s++) {
            int want = (f >= 5 || f == s) ? 1 : 0;
            if (found[s] != want)
                fail_msg("status=%s: the %s approval listed %d times, expected %d",
                         filter ? filter : "(none)", names[s], found[s], want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_approve_reject_race),
        cmocka_unit_test(test_stale_if_match),
        cmocka_unit_test(test_self_approval),
        cmocka_unit_test(test_action_failure_retryable),
        cmocka_unit_test(test_approve_racing_expiry),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_action_types),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_idempotency_and_roles),
        cmocka_unit_test(test_list_by_status),
    };
    return cmocka_run_group_tests(tests, setup, env_group_teardown);
}
