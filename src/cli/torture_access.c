/*
 * torture_access.c - the scenarios of who may have what: one grant per
 * (user, key) however many grants race (the check-then-insert the seed
 * found in entitlements), one winner when many users bind one provider
 * customer, and one terminal state when approve, reject and cancel race on
 * one approval (with the approved action's effect iff it was approved).
 */
#include <stdio.h>
#include <string.h>

#include "cli/torture.h"

#define ACCESS_PROVIDER "torture"

/* ---- grant --------------------------------------------------------------------- */

static void grant_round(struct tt *t, struct tt_stats *s) {
    char user[64], key[64], path[200], list[240];
    tt_id(t, "user", user, sizeof user);
    tt_id(t, "ent", key, sizeof key);
    snprintf(path, sizeof path, "/v1/users/%s/entitlements/%s", user, key);
    struct tt_req qs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    int n = t->clients;
    for (int i = 0; i < n; i++)
        qs[i] =
            (struct tt_req){"PUT", path, t->service, NULL, "{\"source\":\"torture\"}", NULL, NULL};
    if (tt_race(t, s, qs, n, rs) != 0) return;
    tt_conflicts(s, rs, n);
    int created = tt_count(rs, n, 201), ok = created + tt_count(rs, n, 200);
    if (created != 1 || ok != n)
        tt_violation(s, "grant", "%s: %d x 201 and %d x 200 of %d grants (want one 201, the "
                     "rest 200)", path, created, ok - created, n);
    if (tt_distinct(rs, n, "id") != 1)
        tt_violation(s, "grant", "%s: %d different entitlement ids", path,
                     tt_distinct(rs, n, "id"));
    tt_free(rs, n);
    snprintf(list, sizeof list, "/v1/users/%s/entitlements?status=all&limit=500", user);
    int rows = tt_list_count(t, s, list, t->service);
    if (rows >= 0 && rows != 1)
        tt_violation(s, "grant", "user %s holds %d entitlements %s, want 1", user, rows, key);
}

/* ---- bind ---------------------------------------------------------------------- */

/* The user a provider customer belongs to, or "" (404). */
static void bound_user(struct tt *t, struct tt_stats *s, const char *customer, char *out,
                       size_t cap) {
    char path[200];
    snprintf(path, sizeof path, "/v1/customers/" ACCESS_PROVIDER "/%s", customer);
    int st = 0;
    json_t *j = tt_json(t, s, &(struct tt_req){"GET", path, t->service, 0, 0, 0, NULL}, &st);
    const char *u = json_string_value(json_object_get(j, "user_id"));
    snprintf(out, cap, "%s", st == 200 && u ? u : "");
    json_decref(j);
}

static void bind_round(struct tt *t, struct tt_stats *s) {
    char customer[64], body[128];
    static char users[RF_RACE_COPIES_MAX][64], paths[RF_RACE_COPIES_MAX][200];
    tt_id(t, "cus", customer, sizeof customer);
    snprintf(body, sizeof body, "{\"customer_id\":\"%s\"}", customer);
    struct tt_req qs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    int n = t->clients, winner = -1;
    for (int i = 0; i < n; i++) {
        tt_id(t, "user", users[i], sizeof users[i]);
        snprintf(paths[i], sizeof paths[i], "/v1/users/%.63s/customers/" ACCESS_PROVIDER,
                 users[i]);
        qs[i] = (struct tt_req){"PUT", paths[i], t->service, NULL, body, NULL, NULL};
    }
    if (tt_race(t, s, qs, n, rs) != 0) return;
    tt_conflicts(s, rs, n);
    for (int i = 0; i < n; i++) winner = rs[i].status == 201 ? i : winner;
    int created = tt_count(rs, n, 201), refused = tt_count(rs, n, 409);
    if (created != 1 || refused != n - 1)
        tt_violation(s, "bind", "customer %s: %d x 201 and %d x 409 of %d users binding it "
                     "(want one winner)", customer, created, refused, n);
    tt_free(rs, n);
    char owner[64];
    bound_user(t, s, customer, owner, sizeof owner);
    if (winner >= 0 && strcmp(owner, users[winner]) != 0)
        tt_violation(s, "bind", "customer %s belongs to '%s', but %s's bind got the 201",
                     customer, owner, users[winner]);
}

/* ---- approval -------------------------------------------------------------------- */

enum { APPROVE, REJECT, CANCEL };
static const char *const verbs[] = {"approve", "reject", "cancel"};
static const char *const states[] = {"approved", "rejected", "cancelled"};

static void approval_check(struct tt *t, struct tt_stats *s, const char *id, int won,
                           const char *ent_path) {
    char path[200];
    snprintf(path, sizeof path, "/v1/approvals/%s", id);
    json_t *j = tt_must(t, s, &(struct tt_req){"GET", path, t->service, 0, 0, 0, NULL}, 200);
    const char *status = json_string_value(json_object_get(j, "status"));
    if (j && won >= 0 && (!status || strcmp(status, states[won]) != 0))
        tt_violation(s, "approval", "%s is '%s' but its %s won", id, status ? status : "?",
                     verbs[won]);
    json_decref(j);
    struct race_resp r;
    int st = tt_call(t, s, &(struct tt_req){"GET", ent_path, t->service, 0, 0, 0, NULL}, &r);
    race_resp_free(&r);
    if (won >= 0 && st != (won == APPROVE ? 200 : 404))
        tt_violation(s, "approval", "%s ended %s, but its granted entitlement answers %d",
                     id, states[won], st);
}

static void approval_round(struct tt *t, struct tt_stats *s) {
    char user[64], key[64], body[400], path[3][200], ent_path[200];
    tt_id(t, "user", user, sizeof user);
    tt_id(t, "ent", key, sizeof key);
    snprintf(ent_path, sizeof ent_path, "/v1/users/%s/entitlements/%s", user, key);
    snprintf(body, sizeof body, "{\"action\":{\"type\":\"entitlement_grant\",\"user_id\":\"%s\","
             "\"key\":\"%s\"},\"requested_by\":\"torture\"}", user, key);
    json_t *a =
        tt_must(t, s, &(struct tt_req){"POST", "/v1/approvals", t->service, 0, body, 0, NULL}, 201);
    const char *id = json_string_value(json_object_get(a, "id"));
    if (!id) return json_decref(a);
    struct tt_req qs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    static const char *const bodies[] = {"{\"approved_by\":\"torture\"}",
        "{\"rejected_by\":\"torture\",\"reason\":\"torture\"}", "{\"cancelled_by\":\"torture\"}"};
    int n = t->clients, won = -1;
    for (int v = 0; v < 3; v++)
        snprintf(path[v], sizeof path[v], "/v1/approvals/%s/%s", id, verbs[v]);
    /* The requester (service) may cancel; another key (admin) approves and rejects. */
    for (int i = 0; i < n; i++)
        qs[i] = (struct tt_req){"POST", path[i % 3], i % 3 == CANCEL ? t->service : t->admin,
                                NULL, bodies[i % 3], NULL, NULL};
    if (tt_race(t, s, qs, n, rs) == 0) {
        tt_conflicts(s, rs, n);
        for (int i = 0; i < n; i++) won = rs[i].status == 200 ? i % 3 : won;
        int ok = tt_count(rs, n, 200), refused = tt_count(rs, n, 409);
        if (ok != 1 || refused != n - 1)
            tt_violation(s, "approval", "%s: %d x 200 and %d x 409 of %d racing approve/reject/"
                         "cancel (want one terminal state)", id, ok, refused, n);
        tt_free(rs, n);
        approval_check(t, s, id, won, ent_path);
    }
    json_decref(a);
}

static void sc_grant(struct tt *t, struct tt_stats *s) { tt_rounds(t, s, grant_round); }
static void sc_bind(struct tt *t, struct tt_stats *s) { tt_rounds(t, s, bind_round); }
static void sc_approval(struct tt *t, struct tt_stats *s) { tt_rounds(t, s, approval_round); }

const struct tt_scenario tt_access_scenarios[] = {
    {"grant", "N grants of one entitlement: one 201, the rest 200 with its id; one row", sc_grant},
    {"bind", "N users bind one provider customer: one 201, the rest 409; the lookup names the "
     "winner", sc_bind},
    {"approval", "approve, reject and cancel race on one approval: one 200, the rest 409; its "
     "status and its grant match the winner", sc_approval},
};
const int tt_access_count = sizeof tt_access_scenarios / sizeof tt_access_scenarios[0];
