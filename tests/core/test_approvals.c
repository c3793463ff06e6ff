/*
 * test_approvals.c - seed 004 at the library level, on the back end in
 * RF_TEST_DB: 64 concurrent approve/reject calls on one approval with a
 * transfer action leave exactly one terminal state, the transfer executed
 * exactly once if approved and never if rejected, and version 2. Also:
 * approve racing expiry, stale If-Match, self approval, an action failure
 * leaves the approval pending and retryable, and bad actions are refused at
 * creation. Through the operation table: an Idempotency-Key replay fills
 * the same typed approval as the first answer, and an admin caller's role
 * lets another key cancel.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "racefree.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"

static void account(char *id, size_t cap, int64_t funds) {
    rf_rand_id("acct", id, cap);
    struct rf_account_req req = {.id = id, .currency = "USD", .kind = RF_ACCOUNT_USER};
    struct rf_account_res res;
    assert_int_equal(rf_account_create(rf_core_fx.db, &req, &res, NULL), RF_OK);
    rf_account_clear(&res.account);
    if (funds) {
        struct rf_transfer_res t;
        assert_int_equal(rf_credit_apply(rf_core_fx.db, id, funds, "seed", &t, NULL), RF_OK);
        rf_transfer_clear(&t.transfer);
    }
}

static int64_t posted(const char *id) {
    struct rf_account a;
    assert_int_equal(rf_account_get(rf_core_fx.db, id, &a), RF_OK);
    int64_t v = a.posted;
    rf_account_clear(&a);
    return v;
}

static void create(const char *action, int64_t expires_at_ms, struct rf_approval *out) {
    struct rf_approval_req req = {.action_json = action, .requested_by = "alice",
                                  .expires_at_ms = expires_at_ms,
                                  .require_distinct_approver = true};
    char detail[160];
    rf_err err = rf_approval_create(rf_core_fx.db, &req, out, NULL, detail, sizeof detail);
    if (err) fprintf(stderr, "create: %s: %s\n", rf_err_code(err), detail);
    assert_int_equal(err, RF_OK);
    assert_int_equal(out->status, RF_APPROVAL_STATUS_PENDING);
    assert_int_equal(out->version, 1);
}

static void transfer_action(char *buf, size_t cap, const char *from, const char *to, int amount) {
    snprintf(buf, cap,
             "{\"type\":\"transfer\",\"debit_account\":\"%s\",\"credit_account\":\"%s\","
             "\"amount_minor\":%d,\"currency\":\"USD\"}",
             from, to, amount);
}

#define N 64

struct race {
    char id[RF_ID_BYTES];
    rf_err err[N];
};

static void decide_one(int idx, void *ctx) {
    struct race *r = ctx;
    struct rf_approval a;
    char who[32];
    snprintf(who, sizeof who, "user%d", idx);
    r->err[idx] = idx % 2 ? rf_approval_approve(rf_core_fx.db, r->id, who, 0, &a, NULL)
                          : rf_approval_reject(rf_core_fx.db, r->id, who, "no", 0, &a, NULL);
    rf_approval_clear(&a);
}

static void test_approve_reject_race(void **state) {
    (void)state;
    char from[64], to[64], action[512];
    account(from, sizeof from, 1000);
    account(to, sizeof to, 0);
    for (int round = 0; round < 4; round++) {
        transfer_action(action, sizeof action, from, to, 7);
        struct rf_approval a;
        create(action, 0, &a);
        struct race r;
        snprintf(r.id, sizeof r.id, "%s", a.id);
        rf_approval_clear(&a);
        int64_t before = posted(to);
        assert_int_equal(rf_parallel_fn(N, decide_one, &r), 0);
        int wins = 0, winner = -1;
        for (int i = 0; i < N; i++) {
            if (r.err[i] == RF_OK) wins++, winner = i;
            else assert_int_equal(r.err[i], RF_ERR_INVALID_STATE);
        }
        assert_int_equal(wins, 1);
        assert_int_equal(rf_approval_get(rf_core_fx.db, r.id, &a), RF_OK);
        assert_int_equal(a.version, 2);
        bool approved = winner % 2 == 1;
        assert_int_equal(a.status,
                         approved ? RF_APPROVAL_STATUS_APPROVED : RF_APPROVAL_STATUS_REJECTED);
        assert_int_equal(posted(to), before + (approved ? 7 : 0)); /* exactly once, or never */
        assert_true(approved ? a.executed_at_ms != 0 : a.executed_at_ms == 0);
        assert_true(approved ? a.result_json != NULL : a.rejected_by[0] != '\0');
        rf_approval_clear(&a);
    }
}

/* ---- approve and reject racing the expiry instant ------------------------- */

#define EXPIRY_THREADS 8   /* half approve, half reject */
#define EXPIRY_LEAD_MS 300 /* room to create the approval before it expires */
#define EXPIRY_ROUNDS 14

/* Where a round's deciders land around expires_at, in ms: the outer rounds
 * land clearly before or after it (so both outcomes occur), the inner ones
 * straddle the instant itself. */
static const int expiry_shift_ms[] = {-25, -4, -2, -1, 0, 1, 2, 4, 25, -3, 0, 3, -25, 25};

static void sleep_until_wall_ms(int64_t ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
}

static void test_failure_expiry_if_match_self(void **state) {
    (void)state;
    char poor[64], to[64], action[512];
    account(poor, sizeof poor, 5);
    account(to, sizeof to, 0);
    transfer_action(action, sizeof action, poor, to, 10);
    struct rf_approval a, b;
    create(action, 0, &a);
    /* self approval */
    assert_int_equal(rf_approval_approve(rf_core_fx.db, a.id, "alice", 0, &b, NULL),
                     RF_ERR_SELF_APPROVAL);
    /* the action fails: nothing changes, the approval stays pending and retryable */
    assert_int_equal(rf_approval_approve(rf_core_fx.db, a.id, "bob", 0, &b, NULL),
                     RF_ERR_INSUFFICIENT_FUNDS);
    assert_int_equal(rf_approval_get(rf_core_fx.db, a.id, &b), RF_OK);
    assert_int_equal(b.status, RF_APPROVAL_STATUS_PENDING);
    assert_int_equal(b.version, 1);
    rf_approval_clear(&b);
    struct rf_transfer_res t;
    assert_int_equal(rf_credit_apply(rf_core_fx.db, poor, 5, "top up", &t, NULL), RF_OK);
    rf_transfer_clear(&t.transfer);
    /* stale If-Match */
    assert_int_equal(rf_approval_approve(rf_core_fx.db, a.id, "bob", 3, &b, NULL),
                     RF_ERR_VERSION_MISMATCH);
    assert_int_equal(rf_approval_approve(rf_core_fx.db, a.id, "bob", 1, &b, NULL), RF_OK);
    assert_int_equal(b.status, RF_APPROVAL_STATUS_APPROVED);
    assert_string_equal(b.approved_by, "bob");
    rf_approval_clear(&b);
    assert_int_equal(posted(poor), 0);
    assert_int_equal(posted(to), 10);
    assert_int_equal(rf_approval_reject(rf_core_fx.db, a.id, "carol", "late", 0, &b, NULL),
                     RF_ERR_INVALID_STATE);
    assert_int_equal(rf_approval_cancel(rf_core_fx.db, a.id, "alice", NULL, 0, &b, NULL),
                     RF_ERR_INVALID_STATE);
    rf_approval_clear(&a);
    /* expired: reads as expired, refuses approval */
    struct rf_approval_req past = {
        .action_json = "{\"type\":\"entitlement_grant\",\"user_id\":\"u-exp\",\"key\":\"pro\"}",
        .requested_by = "alice", .expires_at_ms = 1000};
    assert_int_equal(rf_approval_create(rf_core_fx.db, &past, &a, NULL, NULL, 0), RF_ERR_INVALID);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t soon = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + EXPIRY_LEAD_MS;
    create(past.action_json, soon, &a); /* the lead: room to create it under load */
    sleep_until_wall_ms(soon + 1);
    assert_int_equal(rf_approval_get(rf_core_fx.db, a.id, &b), RF_OK);
    assert_int_equal(b.status, RF_APPROVAL_STATUS_EXPIRED);
    rf_approval_clear(&b);
    assert_int_equal(rf_approval_approve(rf_core_fx.db, a.id, "bob", 0, &b, NULL),
                     RF_ERR_APPROVAL_EXPIRED);
    rf_approval_clear(&a);
    /* cancel by the requester only */
    create("{\"type\":\"entitlement_grant\",\"user_id\":\"u-c\",\"key\":\"pro\"}", 0, &a);
    assert_int_equal(rf_approval_cancel(rf_core_fx.db, a.id, "bob", NULL, 0, &b, NULL),
                     RF_ERR_NOT_REQUESTER);
    assert_int_equal(rf_approval_cancel(rf_core_fx.db, a.id, "alice", NULL, 0, &b, NULL), RF_OK);
    assert_int_equal(b.status, RF_APPROVAL_STATUS_CANCELLED);
    rf_approval_clear(&b);
    rf_approval_clear(&a);
    /* a rejection reason is optional; so is the canceller (the API key is trusted) */
    create("{\"type\":\"entitlement_grant\",\"user_id\":\"u-r\",\"key\":\"pro\"}", 0, &a);
    assert_int_equal(rf_approval_reject(rf_core_fx.db, a.id, "bob", NULL, 0, &b, NULL), RF_OK);
    assert_null(b.rejection_reason);
    rf_approval_clear(&b);
    rf_approval_clear(&a);
    create("{\"type\":\"entitlement_grant\",\"user_id\":\"u-c2\",\"key\":\"pro\"}", 0, &a);
    assert_int_equal(rf_approval_cancel(rf_core_fx.db, a.id, NULL, NULL, 0, &b, NULL), RF_OK);
    assert_int_equal(b.status, RF_APPROVAL_STATUS_CANCELLED);
    rf_approval_clear(&b);
    /* an approval without a recorded key: no key may cancel it, a trusted caller may */
    assert_string_equal(a.requested_key, "");
    rf_approval_clear(&a);
    create("{\"type\":\"entitlement_grant\",\"user_id\":\"u-c3\",\"key\":\"pro\"}", 0, &a);
    assert_int_equal(rf_approval_cancel(rf_core_fx.db, a.id, NULL, "key-a", 0, &b, NULL),
                     RF_ERR_NOT_REQUESTER);
    rf_approval_clear(&a);
    /* the key that created it cancels; another key may not, even with the label */
    struct rf_approval_req keyed = {
        .action_json = "{\"type\":\"entitlement_grant\",\"user_id\":\"u-c4\",\"key\":\"pro\"}",
        .requested_by = "alice", .requested_key = "key-a"};
    assert_int_equal(rf_approval_create(rf_core_fx.db, &keyed, &a, NULL, NULL, 0), RF_OK);
    assert_string_equal(a.requested_key, "key-a");
    assert_int_equal(rf_approval_cancel(rf_core_fx.db, a.id, "alice", "key-b", 0, &b, NULL),
                     RF_ERR_NOT_REQUESTER);
    assert_int_equal(rf_approval_cancel(rf_core_fx.db, a.id, NULL, "key-b", 0, &b, NULL),
                     RF_ERR_NOT_REQUESTER);
    assert_int_equal(rf_approval_cancel(rf_core_fx.db, a.id, NULL, "key-a", 0, &b, NULL), RF_OK);
    assert_int_equal(b.status, RF_APPROVAL_STATUS_CANCELLED);
    rf_approval_clear(&b);
    rf_approval_clear(&a);
}

struct expiry_race {
    char id[RF_ID_BYTES];
    int64_t expires_at_ms;
    int shift_ms;
    rf_err err[EXPIRY_THREADS];
};

/* Released with the others, then waits for its instant: the shift, spread
 * over a few ms by thread. */
static void decide_at_expiry(int idx, void *ctx) {
    struct expiry_race *r = ctx;
    sleep_until_wall_ms(r->expires_at_ms + r->shift_ms + idx % 4 - 2);
    struct rf_approval a;
    char who[32];
    snprintf(who, sizeof who, "bob%d", idx);
    r->err[idx] = idx % 2 ? rf_approval_approve(rf_core_fx.db, r->id, who, 0, &a, NULL)
                          : rf_approval_reject(rf_core_fx.db, r->id, who, "no", 0, &a, NULL);
    rf_approval_clear(&a);
}

/* Exactly one terminal state: one decision won before expires_at (by the
 * store's clock) and the action ran iff it was an approval, or none won and
 * the approval reads expired with nothing executed. Returns whether one won. */
static bool check_expiry_round(const struct expiry_race *r, const char *user) {
    int wins = 0, winner = -1;
    for (int i = 0; i < EXPIRY_THREADS; i++) {
        if (r->err[i] == RF_OK) wins++, winner = i;
        else if (!(r->err[i] == RF_ERR_INVALID_STATE ||
                   (i % 2 && r->err[i] == RF_ERR_APPROVAL_EXPIRED)))
            fail_msg("thread %d: %s", i, rf_err_code(r->err[i]));
    }
    assert_true(wins <= 1);
    struct rf_approval a;
    assert_int_equal(rf_approval_get(rf_core_fx.db, r->id, &a), RF_OK);
    bool approved = wins == 1 && winner % 2 == 1;
    assert_int_equal(a.status, wins == 0  ? RF_APPROVAL_STATUS_EXPIRED
                               : approved ? RF_APPROVAL_STATUS_APPROVED
                                          : RF_APPROVAL_STATUS_REJECTED);
    assert_int_equal(a.version, wins == 0 ? 1 : 2);
    if (wins) /* decided strictly before it expired */
        assert_true((approved ? a.approved_at_ms : a.rejected_at_ms) < r->expires_at_ms);
    assert_true(approved ? a.executed_at_ms != 0 : a.executed_at_ms == 0);
    rf_approval_clear(&a);
    struct rf_entitlement e;
    rf_err got = rf_entitlement_get(rf_core_fx.db, user, "pro", &e);
    rf_entitlement_clear(&e);
    assert_int_equal(got, approved ? RF_OK : RF_ERR_ENTITLEMENT_NOT_FOUND); /* executed iff */
    return wins == 1;
}

/* Approvers and rejecters released together at the expiry instant. */
static void test_approve_racing_expiry(void **state) {
    (void)state;
    int decided = 0, expired = 0;
    for (int round = 0; round < EXPIRY_ROUNDS; round++) {
        char user[64], action[256];
        rf_rand_id("u-race", user, sizeof user);
        snprintf(action, sizeof action,
                 "{\"type\":\"entitlement_grant\",\"user_id\":\"%s\",\"key\":\"pro\"}", user);
        struct expiry_race r = {.shift_ms = expiry_shift_ms[round]};
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r.expires_at_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + EXPIRY_LEAD_MS;
        struct rf_approval a;
        create(action, r.expires_at_ms, &a);
        snprintf(r.id, sizeof r.id, "%s", a.id);
        rf_approval_clear(&a);
        assert_int_equal(rf_parallel_fn(EXPIRY_THREADS, decide_at_expiry, &r), 0);
        if (check_expiry_round(&r, user)) decided++;
        else expired++;
    }
    print_message("expiry race: %d decided, %d expired\n", decided, expired);
    assert_true(decided > 0 && expired > 0); /* else the rounds did not race the instant */
}

static void test_bad_actions(void **state) {
    (void)state;
    static const char *const bad[] = {
        "not json", "[]", "{}", "{\"type\":\"launch_missiles\"}",
        "{\"type\":\"transfer\",\"debit_account\":\"a\",\"credit_account\":\"b\","
        "\"amount_minor\":-1,\"currency\":\"USD\"}",
        "{\"type\":\"transfer\",\"debit_account\":\"a\",\"credit_account\":\"a\","
        "\"amount_minor\":1,\"currency\":\"USD\"}",
        "{\"type\":\"transfer\",\"debit_account\":\"a\",\"credit_account\":\"b\","
        "\"amount_minor\":1,\"currency\":\"USD\",\"extra\":1}",
        "{\"type\":\"entitlement_grant\",\"user_id\":\"u\"}",
        "{\"type\":\"payout\",\"account\":\"a\",\"amount_minor\":1,\"currency\":\"USD\","
        "\"destination\":{\"provider\":\"stripe\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct rf_approval_req req = {.action_json = bad[i], .requested_by = "alice"};
        struct rf_approval a;
        char detail[160] = "";
        rf_err err = rf_approval_create(rf_core_fx.db, &req, &a, NULL, detail, sizeof detail);
        assert_true(err == RF_ERR_INVALID || (i == 5 && err == RF_ERR_SAME_ACCOUNT));
        /* text that is no JSON object fails the action field's own type (the
         * one validator); a JSON object's content is named by the action */
        if (i < 2) assert_string_equal(detail, "field 'action' must be a JSON object");
        else assert_true(strncmp(detail, "action: ", 8) == 0);
    }
    /* a payout action runs the payout flow: hold placed on approval */
    char w[64], action[512];
    account(w, sizeof w, 50);
    snprintf(action, sizeof action,
             "{\"type\":\"payout\",\"account\":\"%s\",\"amount_minor\":20,\"currency\":\"USD\","
             "\"destination\":{\"provider\":\"stripe\",\"ref\":\"acct_1\"}}",
             w);
    struct rf_approval a, b;
    create(action, 0, &a);
    assert_int_equal(rf_approval_approve(rf_core_fx.db, a.id, "bob", 0, &b, NULL), RF_OK);
    assert_non_null(strstr(b.result_json, "payout_id"));
    assert_int_equal(b.action_type, RF_ACTION_PAYOUT);
    struct rf_account acc;
    assert_int_equal(rf_account_get(rf_core_fx.db, w, &acc), RF_OK);
    assert_int_equal(acc.available, 30);
    rf_account_clear(&acc);
    rf_approval_clear(&a);
    rf_approval_clear(&b);
    struct rf_approval_page page;
    assert_int_equal(rf_approval_list(rf_core_fx.db, "approved", NULL, 5, &page), RF_OK);
    assert_true(page.n >= 1);
    for (int i = 0; i < page.n; i++)
        assert_int_equal(page.items[i].status, RF_APPROVAL_STATUS_APPROVED);
    rf_approval_page_clear(&page);
    assert_int_equal(rf_approval_list(rf_core_fx.db, "bogus", NULL, 5, &page), RF_ERR_INVALID);
}

/* ---- typed results and who cancels ---------------------------------------- */

static void idem_init(struct rf_idem *idem, const char *key, const char *body) {
    memset(idem, 0, sizeof *idem);
    idem->key = key;
    idem->api_key_id = "test-key";
    rf_core_idem_hash(idem, "POST", "/x", body, strlen(body));
}

static void assert_text_equal(const char *a, const char *b) {
    if (!a || !b) assert_ptr_equal(a, b);
    else assert_string_equal(a, b);
}

/* Every member the edge renders. */
static void assert_same_approval(const struct rf_approval *a, const struct rf_approval *b) {
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->action_type, b->action_type);
    assert_text_equal(a->action_json, b->action_json);
    assert_string_equal(a->requested_by, b->requested_by);
    assert_string_equal(a->requested_key, b->requested_key);
    assert_int_equal(a->require_distinct_approver, b->require_distinct_approver);
    assert_text_equal(a->metadata_json, b->metadata_json);
    assert_int_equal(a->expires_at_ms, b->expires_at_ms);
    assert_string_equal(a->approved_by, b->approved_by);
    assert_int_equal(a->approved_at_ms, b->approved_at_ms);
    assert_int_equal(a->executed_at_ms, b->executed_at_ms);
    assert_text_equal(a->result_json, b->result_json);
    assert_string_equal(a->rejected_by, b->rejected_by);
    assert_int_equal(a->rejected_at_ms, b->rejected_at_ms);
    assert_text_equal(a->rejection_reason, b->rejection_reason);
    assert_int_equal(a->cancelled_at_ms, b->cancelled_at_ms);
    assert_int_equal(a->created_at_ms, b->created_at_ms);
    assert_int_equal(a->updated_at_ms, b->updated_at_ms);
    assert_int_equal(a->version, b->version);
}

/* An Idempotency-Key replay of a creation and of a transition fills the
 * same typed result as the first answer (the record stores the result,
 * every member the edge renders), and runs nothing again. */
static void test_replays_fill_the_result(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    char ikey[64], user[64], action[256];
    rf_rand_id("ik", ikey, sizeof ikey);
    rf_rand_id("u-idem", user, sizeof user);
    snprintf(action, sizeof action,
             "{\"type\":\"entitlement_grant\",\"user_id\":\"%s\",\"key\":\"pro\"}", user);
    struct rf_approval_req req = {.action_json = action, .requested_by = "alice",
                                  .requested_key = "key-a", .metadata_json = "{\"a\":[1,2]}",
                                  .expires_at_ms = 32503680000000, /* 3000-01-01 */
                                  .require_distinct_approver = true};
    struct rf_idem idem;
    struct rf_approval first, again, rejected, replay;
    idem_init(&idem, ikey, "create");
    assert_int_equal(rf_approval_create(db, &req, &first, &idem, NULL, 0), RF_OK);
    assert_false(idem.replayed);
    idem_init(&idem, ikey, "create");
    assert_int_equal(rf_approval_create(db, &req, &again, &idem, NULL, 0), RF_OK);
    assert_true(idem.replayed);
    assert_same_approval(&first, &again);
    rf_approval_clear(&again);
    char rkey[80];
    snprintf(rkey, sizeof rkey, "%s-r", ikey);
    idem_init(&idem, rkey, "reject");
    assert_int_equal(rf_approval_reject(db, first.id, "bob", "too pricey", 1, &rejected, &idem),
                     RF_OK);
    idem_init(&idem, rkey, "reject");
    assert_int_equal(rf_approval_reject(db, first.id, "bob", "too pricey", 1, &replay, &idem),
                     RF_OK);
    assert_true(idem.replayed);
    assert_same_approval(&rejected, &replay);
    assert_string_equal(replay.rejection_reason, "too pricey");
    assert_int_equal(replay.version, 2);
    rf_approval_clear(&replay);
    assert_int_equal(rf_approval_get(db, first.id, &replay), RF_OK);
    assert_same_approval(&rejected, &replay); /* the replay ran nothing: still version 2 */
    rf_approval_clear(&replay);
    rf_approval_clear(&rejected);
    rf_approval_clear(&first);
}

/* Cancel through the operation table: a key that did not create the
 * approval may not cancel it unless its role is admin; a role that is no
 * role is refused by the field spec. The library's list names no "all". */
static void test_cancel_caller_role(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    struct rf_approval_req req = {
        .action_json = "{\"type\":\"entitlement_grant\",\"user_id\":\"u-role\",\"key\":\"pro\"}",
        .requested_by = "alice", .requested_key = "key-a"};
    struct rf_approval a, b;
    assert_int_equal(rf_approval_create(db, &req, &a, NULL, NULL, 0), RF_OK);
    struct rf_approval_ref ref = {.id = a.id, .caller_key = "key-b",
                                  .caller_role = RF_ROLE_SERVICE};
    struct rf_fault fault;
    assert_int_equal(rf_op_run(db, RF_OP_APPROVAL_CANCEL, &ref, &b, NULL, &fault),
                     RF_ERR_NOT_REQUESTER);
    ref.caller_role = 3; /* admin | service is no role */
    assert_int_equal(rf_op_run(db, RF_OP_APPROVAL_CANCEL, &ref, &b, NULL, &fault),
                     RF_ERR_INVALID);
    assert_string_equal(fault.param, "caller_role");
    ref.caller_role = RF_ROLE_ADMIN;
    ref.by = "bob"; /* the label still must be the requester's */
    assert_int_equal(rf_op_run(db, RF_OP_APPROVAL_CANCEL, &ref, &b, NULL, &fault),
                     RF_ERR_NOT_REQUESTER);
    ref.by = NULL;
    assert_int_equal(rf_op_run(db, RF_OP_APPROVAL_CANCEL, &ref, &b, NULL, &fault), RF_OK);
    assert_int_equal(b.status, RF_APPROVAL_STATUS_CANCELLED);
    assert_int_equal(b.version, 2);
    rf_approval_clear(&b);
    rf_approval_clear(&a);
    struct rf_approval_page page;
    assert_int_equal(rf_approval_list(db, "all", NULL, 5, &page), RF_ERR_INVALID);
    assert_int_equal(rf_approval_list(db, "", NULL, 5, &page), RF_OK);
    assert_true(page.n >= 1);
    rf_approval_page_clear(&page);
}

/* Self-approval is judged by the acting key when both keys are known: the
 * requesting key may not approve under any label, another key may under
 * the same label; each key is recorded. Without a requesting key (an
 * approval from before keys were recorded, or made by the library) or
 * without an approving key, the labels decide, as they always did. */
static rf_err approve_as(const char *id, const char *label, const char *key,
                         struct rf_approval *out) {
    struct rf_approval_ref ref = {.id = id, .by = label, .caller_key = key};
    struct rf_fault fault;
    return rf_op_run(rf_core_fx.db, RF_OP_APPROVAL_APPROVE, &ref, out, NULL, &fault);
}

static void test_self_approval_by_key(void **state) {
    (void)state;
    rf *db = rf_core_fx.db;
    struct rf_approval_req req = {
        .action_json = "{\"type\":\"entitlement_grant\",\"user_id\":\"u-sk\",\"key\":\"pro\"}",
        .requested_by = "alice", .requested_key = "key-a", .require_distinct_approver = true};
    struct rf_approval a, b;
    assert_int_equal(rf_approval_create(db, &req, &a, NULL, NULL, 0), RF_OK);
    assert_int_equal(approve_as(a.id, "bob", "key-a", &b), RF_ERR_SELF_APPROVAL);
    assert_int_equal(approve_as(a.id, "alice", "key-b", &b), RF_OK);
    assert_string_equal(b.approved_by, "alice");
    assert_string_equal(b.approved_key, "key-b");
    assert_string_equal(b.requested_key, "key-a");
    rf_approval_clear(&b);
    rf_approval_clear(&a);
    /* rejecting records its key too */
    req.action_json = "{\"type\":\"entitlement_grant\",\"user_id\":\"u-sk2\",\"key\":\"pro\"}";
    assert_int_equal(rf_approval_create(db, &req, &a, NULL, NULL, 0), RF_OK);
    struct rf_approval_ref rej = {.id = a.id, .by = "carol", .caller_key = "key-c"};
    struct rf_fault fault;
    assert_int_equal(rf_op_run(db, RF_OP_APPROVAL_REJECT, &rej, &b, NULL, &fault), RF_OK);
    assert_string_equal(b.rejected_key, "key-c");
    assert_string_equal(b.approved_key, "");
    rf_approval_clear(&b);
    rf_approval_clear(&a);
    /* no requesting key: the labels decide, whoever approves */
    req.action_json = "{\"type\":\"entitlement_grant\",\"user_id\":\"u-sk3\",\"key\":\"pro\"}";
    req.requested_key = NULL;
    assert_int_equal(rf_approval_create(db, &req, &a, NULL, NULL, 0), RF_OK);
    assert_int_equal(approve_as(a.id, "alice", "key-b", &b), RF_ERR_SELF_APPROVAL);
    assert_int_equal(approve_as(a.id, "bob", "key-b", &b), RF_OK);
    assert_string_equal(b.approved_key, "key-b");
    rf_approval_clear(&b);
    rf_approval_clear(&a);
    /* no approving key (the library): the labels decide */
    req.action_json = "{\"type\":\"entitlement_grant\",\"user_id\":\"u-sk4\",\"key\":\"pro\"}";
    req.requested_key = "key-a";
    assert_int_equal(rf_approval_create(db, &req, &a, NULL, NULL, 0), RF_OK);
    assert_int_equal(rf_approval_approve(db, a.id, "alice", 0, &b, NULL), RF_ERR_SELF_APPROVAL);
    assert_int_equal(rf_approval_approve(db, a.id, "bob", 0, &b, NULL), RF_OK);
    assert_string_equal(b.approved_key, "");
    rf_approval_clear(&b);
    rf_approval_clear(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_approve_reject_race),
        cmocka_unit_test(test_failure_expiry_if_match_self),
        cmocka_unit_test(test_approve_racing_expiry),
        cmocka_unit_test(test_bad_actions),
        cmocka_unit_test(test_replays_fill_the_result),
        cmocka_unit_test(test_cancel_caller_role),
        cmocka_unit_test(test_self_approval_by_key),
    };
    return cmocka_run_group_tests(tests, rf_core_setup, rf_core_teardown);
}
