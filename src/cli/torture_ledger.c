/*
 * torture_ledger.c - the scenarios of money: no double credit when one
 * Idempotency-Key races with itself, every credit counted once when many
 * keys race, and no overdraft when debits race past the balance (the
 * read-modify-write of a balance), and one resolution when posts and voids
 * of one hold race. Each ends with the account checked
 * against its history: its posted balance equals the sum of its entries and
 * the last entry's balance_after, and the amount the race should leave.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/torture.h"

#define LEDGER_AMOUNT_MINOR 100 /* each raced credit or debit */

bool tt_account_new(struct tt *t, struct tt_stats *s, char *id, size_t cap) {
    char body[200];
    tt_id(t, "acct", id, cap);
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"currency\":\"%s\",\"kind\":\"user\"}", id,
             t->currency);
    json_t *j =
        tt_must(t, s, &(struct tt_req){"POST", "/v1/accounts", t->service, 0, body, 0, NULL}, 201);
    json_decref(j);
    return j != NULL;
}

static void credit_body(char *out, size_t cap, int64_t amount) {
    snprintf(out, cap, "{\"amount_minor\":%" PRId64 ",\"reason\":\"torture\"}", amount);
}

bool tt_credit(struct tt *t, struct tt_stats *s, const char *id, int64_t amount) {
    char path[200], key[96], body[96];
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", id);
    tt_id(t, "idem", key, sizeof key);
    credit_body(body, sizeof body, amount);
    json_decref(tt_must(t, s, &(struct tt_req){"POST", path, t->service, key, body, 0, NULL}, 201));
    return !s->failed;
}

void tt_history_check(struct tt *t, struct tt_stats *s, const char *sc, const char *id,
                          int64_t want) {
    char path[200];
    snprintf(path, sizeof path, "/v1/accounts/%s", id);
    json_t *a = tt_must(t, s, &(struct tt_req){"GET", path, t->service, 0, 0, 0, NULL}, 200);
    snprintf(path, sizeof path, "/v1/accounts/%s/entries?limit=500", id);
    json_t *e = tt_must(t, s, &(struct tt_req){"GET", path, t->service, 0, 0, 0, NULL}, 200);
    json_t *data = json_object_get(e, "data"), *row;
    size_t i;
    int64_t sum = 0, last = 0;
    json_array_foreach(data, i, row) {
        int64_t amt = json_integer_value(json_object_get(row, "amount_minor"));
        const char *side = json_string_value(json_object_get(row, "side"));
        sum += side && strcmp(side, "credit") == 0 ? amt : -amt;
        last = json_integer_value(json_object_get(row, "balance_after"));
    }
    int64_t posted = json_integer_value(json_object_get(a, "posted"));
    if (a && e && (posted != sum || posted != last || posted != want))
        tt_violation(s, sc, "account %s: posted %" PRId64 ", its %zu entries sum to %" PRId64
                     " (last balance_after %" PRId64 "), the race should leave %" PRId64,
                     id, posted, json_array_size(data), sum, last, want);
    json_decref(a);
    json_decref(e);
}

/* ---- one key ---------------------------------------------------------------------- */

static void one_key_round(struct tt *t, struct tt_stats *s) {
    char id[64], path[200], key[96], body[96];
    if (!tt_account_new(t, s, id, sizeof id)) return;
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", id);
    tt_id(t, "idem", key, sizeof key);
    credit_body(body, sizeof body, LEDGER_AMOUNT_MINOR);
    struct tt_req qs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    int n = t->clients;
    for (int i = 0; i < n; i++)
        qs[i] = (struct tt_req){"POST", path, t->service, key, body, NULL, NULL};
    if (tt_race(t, s, qs, n, rs) != 0) return;
    tt_conflicts(s, rs, n);
    tt_one_key_check(s, "credit_one_key", path, rs, n);
    tt_free(rs, n);
    tt_history_check(t, s, "credit_one_key", id, LEDGER_AMOUNT_MINOR);
}

/* ---- many keys ---------------------------------------------------------------------- */

static void many_keys_round(struct tt *t, struct tt_stats *s) {
    char id[64], path[200];
    static char keys[RF_RACE_COPIES_MAX][96], bodies[RF_RACE_COPIES_MAX][96];
    if (!tt_account_new(t, s, id, sizeof id)) return;
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", id);
    struct tt_req qs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    int n = t->clients;
    int64_t total = 0;
    for (int i = 0; i < n; i++) { /* distinct amounts: a lost or doubled one shows in the sum */
        tt_id(t, "idem", keys[i], sizeof keys[i]);
        credit_body(bodies[i], sizeof bodies[i], LEDGER_AMOUNT_MINOR + i);
        total += LEDGER_AMOUNT_MINOR + i;
        qs[i] = (struct tt_req){"POST", path, t->service, keys[i], bodies[i], NULL, NULL};
    }
    if (tt_race(t, s, qs, n, rs) != 0) return;
    tt_conflicts(s, rs, n);
    int created = tt_count(rs, n, 201);
    if (created != n || tt_distinct(rs, n, "id") != n)
        tt_violation(s, "credit_many_keys", "%s with %d keys: %d x 201, %d transfer ids", path, n,
                     created, tt_distinct(rs, n, "id"));
    tt_free(rs, n);
    tt_history_check(t, s, "credit_many_keys", id, total);
}

/* ---- overdraft ---------------------------------------------------------------------------- */

static void overdraft_round(struct tt *t, struct tt_stats *s) {
    char id[64];
    static char keys[RF_RACE_COPIES_MAX][96], bodies[RF_RACE_COPIES_MAX][200];
    int n = t->clients, fit = n / 2;
    int64_t funded = (int64_t)fit * LEDGER_AMOUNT_MINOR + LEDGER_AMOUNT_MINOR / 2;
    if (!tt_account_new(t, s, id, sizeof id) || !tt_credit(t, s, id, funded)) return;
    struct tt_req qs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    for (int i = 0; i < n; i++) {
        tt_id(t, "idem", keys[i], sizeof keys[i]);
        snprintf(bodies[i], sizeof bodies[i], "{\"debit_account\":\"%s\",\"credit_account\":"
                 "\"funding:%s\",\"amount_minor\":%d,\"currency\":\"%s\"}", id, t->currency,
                 LEDGER_AMOUNT_MINOR, t->currency);
        qs[i] =
            (struct tt_req){"POST", "/v1/transfers", t->service, keys[i], bodies[i], NULL, NULL};
    }
    if (tt_race(t, s, qs, n, rs) != 0) return;
    tt_conflicts(s, rs, n);
    int paid = tt_count(rs, n, 201), refused = tt_count(rs, n, 409);
    if (paid != fit || refused != n - fit)
        tt_violation(s, "overdraft", "account %s with %" PRId64 ": %d of %d debits of %d "
                     "succeeded and %d were refused (want exactly %d = floor(balance/amount))",
                     id, funded, paid, n, LEDGER_AMOUNT_MINOR, refused, fit);
    tt_free(rs, n);
    tt_history_check(t, s, "overdraft", id, funded - (int64_t)paid * LEDGER_AMOUNT_MINOR);
}

/* ---- hold ------------------------------------------------------------------------------ */

/* A hold of LEDGER_AMOUNT_MINOR on a funded account; its transfer id into tid. */
static bool hold_new(struct tt *t, struct tt_stats *s, char *acct, char *tid, size_t cap) {
    char key[96], body[256];
    if (!tt_account_new(t, s, acct, 64) || !tt_credit(t, s, acct, 4 * LEDGER_AMOUNT_MINOR))
        return false;
    tt_id(t, "idem", key, sizeof key);
    snprintf(body, sizeof body, "{\"debit_account\":\"%s\",\"credit_account\":\"funding:%s\","
             "\"amount_minor\":%d,\"currency\":\"%s\",\"pending\":true}", acct, t->currency,
             LEDGER_AMOUNT_MINOR, t->currency);
    json_t *j = tt_must(t, s, &(struct tt_req){"POST", "/v1/transfers", t->service, key, body, 0,
                                               NULL}, 201);
    const char *id = json_string_value(json_object_get(j, "id"));
    snprintf(tid, cap, "%s", id ? id : "");
    json_decref(j);
    return id != NULL;
}

static void hold_round(struct tt *t, struct tt_stats *s) {
    char acct[64], tid[64], paths[2][200];
    static char keys[RF_RACE_COPIES_MAX][96];
    if (!hold_new(t, s, acct, tid, sizeof tid)) return;
    snprintf(paths[0], sizeof paths[0], "/v1/transfers/%s/post", tid);
    snprintf(paths[1], sizeof paths[1], "/v1/transfers/%s/void", tid);
    struct tt_req qs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    int n = t->clients, posted = -1;
    for (int i = 0; i < n; i++) { /* posts and voids, alternating */
        tt_id(t, "idem", keys[i], sizeof keys[i]);
        qs[i] = (struct tt_req){"POST", paths[i % 2], t->service, keys[i], NULL, NULL, NULL};
    }
    if (tt_race(t, s, qs, n, rs) != 0) return;
    tt_conflicts(s, rs, n);
    for (int i = 0; i < n; i++) posted = rs[i].status == 200 ? i % 2 == 0 : posted;
    int ok = tt_count(rs, n, 200), refused = tt_count(rs, n, 409);
    if (ok != 1 || refused != n - 1)
        tt_violation(s, "hold", "hold %s: %d x 200 and %d x 409 of %d racing posts and voids "
                     "(want one resolution)", tid, ok, refused, n);
    tt_free(rs, n);
    tt_history_check(t, s, "hold", acct,
                     4 * LEDGER_AMOUNT_MINOR - (posted == 1 ? LEDGER_AMOUNT_MINOR : 0));
}

static void sc_one_key(struct tt *t, struct tt_stats *s) { tt_rounds(t, s, one_key_round); }
static void sc_many_keys(struct tt *t, struct tt_stats *s) { tt_rounds(t, s, many_keys_round); }
static void sc_overdraft(struct tt *t, struct tt_stats *s) { tt_rounds(t, s, overdraft_round); }
static void sc_hold(struct tt *t, struct tt_stats *s) { tt_rounds(t, s, hold_round); }

const struct tt_scenario tt_ledger_scenarios[] = {
    {"credit_one_key", "N credits with one Idempotency-Key: one credit, the rest replays or "
     "409 in flight; balance = the one credit = its history", sc_one_key},
    {"credit_many_keys", "N credits with N keys: N credits; balance = their sum = its history",
     sc_many_keys},
    {"overdraft", "N debits past the balance: exactly floor(balance/amount) succeed, the rest "
     "409; balance = its history", sc_overdraft},
    {"hold", "posts and voids of one hold race: one resolution, the rest 409; balance = its "
     "history", sc_hold},
};
const int tt_ledger_count = sizeof tt_ledger_scenarios / sizeof tt_ledger_scenarios[0];
