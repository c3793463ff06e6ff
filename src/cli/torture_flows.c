/*
 * torture_flows.c - the scenarios of the payment flows: one fulfillment per
 * checkout however many payment events arrive at once (replays of one event
 * and distinct events alike: the webhook event ledger and the checkout's
 * state machine), and one payout per wallet however many payout batches
 * start at once (the payouts lease, on any node), and one checkout however
 * many creates with one Idempotency-Key race.
 *
 * Webhooks are delivered under a provider named after the run, whose signing
 * secret the run sets (PUT /v1/webhook-secrets, admin), signed as racefree's
 * generic scheme expects: X-Racefree-Signature: t=<unix s>,v1=<hex
 * HMAC-SHA256(secret, "<t>.<body>")>.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/torture.h"
#include "core/webhook_sig.h"

#define FLOW_CREDIT_MINOR 500    /* the checkout's credit item */
#define FLOW_PRICE_MINOR 1999    /* the checkout's amount */
#define FLOW_WALLET_MINOR 1000   /* a payout batch's minimum, and each wallet's base balance */
#define FLOW_SECRET_BYTES 24     /* the run's webhook secret, before hex */

/* ---- fulfil ----------------------------------------------------------------------------- */

/* The run's provider secret, set once (hex into secret). */
static bool webhook_secret(struct tt *t, struct tt_stats *s, char *secret, size_t cap) {
    unsigned char raw[FLOW_SECRET_BYTES];
    for (size_t i = 0; i < sizeof raw; i++) raw[i] = (unsigned char)tt_rand(t);
    sodium_bin2hex(secret, cap, raw, sizeof raw);
    char path[200], body[128];
    snprintf(path, sizeof path, "/v1/webhook-secrets/%s", t->run);
    snprintf(body, sizeof body, "{\"secret\":\"%s\"}", secret);
    json_decref(tt_must(t, s, &(struct tt_req){"PUT", path, t->admin, 0, body, 0, NULL}, 200));
    return !s->failed;
}

/* "X-Racefree-Signature: t=...,v1=..." for body, signed now with secret. */
static void sign(const char *secret, int64_t ts, const char *body, char *out, size_t cap) {
    char sig[128];
    webhook_sig_sign(secret, strlen(secret), ts, body, strlen(body), sig, sizeof sig);
    snprintf(out, cap, "X-Racefree-Signature: %s", sig);
}

/* A checkout's body: an entitlement and a credit to a fresh account. */
static bool checkout_body(struct tt *t, struct tt_stats *s, char *user, char *key, char *acct,
                          char *body, size_t cap) {
    tt_id(t, "user", user, 64);
    tt_id(t, "ent", key, 64);
    if (!tt_account_new(t, s, acct, 64)) return false;
    snprintf(body, cap, "{\"user_id\":\"%s\",\"currency\":\"%s\",\"amount_minor\":%d,"
             "\"provider\":\"%s\",\"items\":[{\"type\":\"entitlement\",\"key\":\"%s\"},{\"type\":"
             "\"credit\",\"account\":\"%s\",\"amount_minor\":%d}]}", user, t->currency,
             FLOW_PRICE_MINOR, t->run, key, acct, FLOW_CREDIT_MINOR);
    return true;
}

/* A pending checkout (its id into id). */
static bool checkout_new(struct tt *t, struct tt_stats *s, char *id, char *user, char *key,
                         char *acct) {
    char idem[96], body[600];
    tt_id(t, "idem", idem, sizeof idem);
    if (!checkout_body(t, s, user, key, acct, body, sizeof body)) return false;
    json_t *j = tt_must(t, s, &(struct tt_req){"POST", "/v1/checkouts", t->service, idem, body, 0,
                                               NULL}, 201);
    const char *cid = json_string_value(json_object_get(j, "id"));
    snprintf(id, 64, "%s", cid ? cid : "");
    json_decref(j);
    return cid != NULL;
}

/* The deliveries' answers: one applied the payment, the rest were
 * duplicates or ignored; the repeated event was new exactly once. */
static void fulfil_answers(struct tt_stats *s, const struct race_resp *rs, int n, const char *cid) {
    int processed = 0, first_of_a = 0, lost = 0;
    for (int i = 0; i < n; i++) {
        json_t *b = tt_body(&rs[i]);
        bool dup = json_is_true(json_object_get(b, "duplicate"));
        const char *st = json_string_value(json_object_get(json_object_get(b, "event"), "status"));
        processed += !dup && st && strcmp(st, "processed") == 0;
        first_of_a += i % 2 == 0 && rs[i].status == 200 && !dup;
        lost += rs[i].status == 200 && (dup || !st || strcmp(st, "processed") != 0);
        json_decref(b);
    }
    s->conflicts += lost; /* a duplicate, or an event the paid checkout ignored */
    if (tt_count(rs, n, 200) != n || processed != 1 || first_of_a != 1)
        tt_violation(s, "fulfil", "checkout %s: %d x 200 of %d deliveries, %d applied the "
                     "payment, the repeated event was new %d times (want 1 and 1)", cid,
                     tt_count(rs, n, 200), n, processed, first_of_a);
}

static void fulfil_check(struct tt *t, struct tt_stats *s, const char *cid, const char *user,
                         const char *acct) {
    char path[200];
    snprintf(path, sizeof path, "/v1/checkouts/%s", cid);
    json_t *c = tt_must(t, s, &(struct tt_req){"GET", path, t->service, 0, 0, 0, NULL}, 200);
    const char *st = json_string_value(json_object_get(c, "status"));
    if (c && (!st || strcmp(st, "fulfilled") != 0))
        tt_violation(s, "fulfil", "checkout %s is '%s' after its payment", cid, st ? st : "?");
    json_decref(c);
    snprintf(path, sizeof path, "/v1/users/%s/entitlements?status=all&limit=500", user);
    int rows = tt_list_count(t, s, path, t->service);
    if (rows >= 0 && rows != 1)
        tt_violation(s, "fulfil", "checkout %s granted %d entitlements, want 1", cid, rows);
    tt_history_check(t, s, "fulfil", acct, FLOW_CREDIT_MINOR);
}

static void fulfil_round(struct tt *t, struct tt_stats *s, const char *secret) {
    char cid[64], user[64], key[64], acct[64], path[200], event_a[64];
    static char bodies[RF_RACE_COPIES_MAX][400], sigs[RF_RACE_COPIES_MAX][200];
    if (!checkout_new(t, s, cid, user, key, acct)) return;
    snprintf(path, sizeof path, "/v1/webhooks/%s", t->run);
    tt_id(t, "evt", event_a, sizeof event_a);
    int64_t now = (int64_t)time(NULL);
    struct tt_req qs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    int n = t->clients;
    for (int i = 0; i < n; i++) { /* even: one event again and again; odd: an event each */
        char event[64];
        if (i % 2) tt_id(t, "evt", event, sizeof event);
        snprintf(bodies[i], sizeof bodies[i], "{\"id\":\"%s\",\"type\":\"checkout.paid\","
                 "\"created\":%" PRId64 ",\"checkout_id\":\"%s\"}", i % 2 ? event : event_a, now,
                 cid);
        sign(secret, now, bodies[i], sigs[i], sizeof sigs[i]);
        qs[i] = (struct tt_req){"POST", path, NULL, NULL, bodies[i], NULL, sigs[i]};
    }
    if (tt_race(t, s, qs, n, rs) != 0) return;
    tt_conflicts(s, rs, n);
    fulfil_answers(s, rs, n, cid);
    tt_free(rs, n);
    fulfil_check(t, s, cid, user, acct);
}

static void sc_fulfil(struct tt *t, struct tt_stats *s) {
    char secret[2 * FLOW_SECRET_BYTES + 1];
    if (!webhook_secret(t, s, secret, sizeof secret)) return;
    for (int r = 0; r < t->rounds && !s->failed; r++) fulfil_round(t, s, secret);
}

/* ---- checkout_one_key ------------------------------------------------------------------------ */

static void checkout_round(struct tt *t, struct tt_stats *s) {
    char user[64], key[64], acct[64], idem[96], body[600], list[200];
    tt_id(t, "idem", idem, sizeof idem);
    if (!checkout_body(t, s, user, key, acct, body, sizeof body)) return;
    struct tt_req qs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    int n = t->clients;
    for (int i = 0; i < n; i++)
        qs[i] = (struct tt_req){"POST", "/v1/checkouts", t->service, idem, body, NULL, NULL};
    if (tt_race(t, s, qs, n, rs) != 0) return;
    tt_conflicts(s, rs, n);
    tt_one_key_check(s, "checkout_one_key", "POST /v1/checkouts", rs, n);
    tt_free(rs, n);
    snprintf(list, sizeof list, "/v1/users/%s/checkouts?status=all&limit=500", user);
    int rows = tt_list_count(t, s, list, t->service);
    if (rows >= 0 && rows != 1)
        tt_violation(s, "checkout_one_key", "user %s has %d checkouts from one key, want 1", user,
                     rows);
}

/* ---- payout_batch ------------------------------------------------------------------------ */

/* Each wallet's whole balance is held by exactly one payout. */
static void wallets_check(struct tt *t, struct tt_stats *s, char wallets[][64], int w) {
    for (int i = 0; i < w; i++) {
        char path[200];
        snprintf(path, sizeof path, "/v1/accounts/%.63s", wallets[i]);
        json_t *a = tt_must(t, s, &(struct tt_req){"GET", path, t->service, 0, 0, 0, NULL}, 200);
        int64_t held = json_integer_value(json_object_get(a, "pending_debits"));
        int64_t avail = json_integer_value(json_object_get(a, "available"));
        if (a && (held != FLOW_WALLET_MINOR + i || avail != 0))
            tt_violation(s, "payout_batch", "wallet %s of %d: %" PRId64 " held by payouts, %"
                         PRId64 " available (want one payout of all of it)", wallets[i],
                         FLOW_WALLET_MINOR + i, held, avail);
        json_decref(a);
    }
}

static void payout_round(struct tt *t, struct tt_stats *s) {
    static char wallets[RF_RACE_COPIES_MAX][64], keys[RF_RACE_COPIES_MAX][96];
    char body[160];
    int n = t->clients, w = n / 2;
    for (int i = 0; i < w && !s->failed; i++)
        if (tt_account_new(t, s, wallets[i], sizeof wallets[i]))
            tt_credit(t, s, wallets[i], FLOW_WALLET_MINOR + i);
    if (s->failed) return;
    snprintf(body, sizeof body, "{\"currency\":\"%s\",\"min_amount_minor\":%d,\"provider\":"
             "\"torture\"}", t->currency, FLOW_WALLET_MINOR);
    struct tt_req qs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    for (int i = 0; i < n; i++) { /* n distinct batches */
        tt_id(t, "batch", keys[i], sizeof keys[i]);
        qs[i] = (struct tt_req){"POST", "/v1/payout-batches", t->admin, keys[i], body, 0, NULL};
    }
    if (tt_race(t, s, qs, n, rs) != 0) return;
    tt_conflicts(s, rs, n);
    int ran = tt_count(rs, n, 201), held = tt_count(rs, n, 409);
    if (ran < 1 || ran + held != n)
        tt_violation(s, "payout_batch", "%d batches at once: %d x 201, %d x 409 (want 201 for "
                     "those that got the lease, 409 for the rest)", n, ran, held);
    tt_free(rs, n);
    wallets_check(t, s, wallets, w);
}

static void sc_payout(struct tt *t, struct tt_stats *s) { tt_rounds(t, s, payout_round); }
static void sc_checkout(struct tt *t, struct tt_stats *s) { tt_rounds(t, s, checkout_round); }

const struct tt_scenario tt_flow_scenarios[] = {
    {"checkout_one_key", "N creates of one checkout with one Idempotency-Key: one checkout, the "
     "rest replays or 409 in flight", sc_checkout},
    {"fulfil", "payment events for one checkout race (one event repeated, and distinct ones): "
     "one applied, the rest duplicate or ignored; fulfilled with one grant and one credit",
     sc_fulfil},
    {"payout_batch", "N payout batches start at once: one payout per wallet, holding its whole "
     "balance; the batches without the lease 409", sc_payout},
};
const int tt_flow_count = sizeof tt_flow_scenarios / sizeof tt_flow_scenarios[0];
