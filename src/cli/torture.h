/*
 * torture.h - `racefree torture`: the run's context (the deployment's nodes,
 * the keys it made, its seeded random ids), the per-scenario tallies, and
 * the scenario table. A scenario makes fresh data, releases conflicting
 * requests together through the race engine (race.c), and checks the flow's
 * invariant through the API; scenarios live a few to a file
 * (torture_access.c, torture_ledger.c, torture_work.c, torture_flows.c).
 *
 * A "conflict provoked" is a raced answer that reports losing to another
 * request of the same race: any 409, 412, 422 or 429, an idempotent replay
 * (Idempotent-Replayed: true), or a 200 "already there" answer to a create
 * whose winner got 201; and, where a flow answers a loser without an
 * error, the scenario's own visible loss (a claim that got no job). A
 * "violation" is a broken invariant or a 5xx.
 */
#ifndef RF_CLI_TORTURE_H
#define RF_CLI_TORTURE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli/race.h"


struct tt {
    struct race_target nodes[RF_RACE_TARGETS_MAX];
    int n_nodes;
    const char *admin;           /* --key */
    char service[RF_TORTURE_KEY_BYTES];  /* made by the run (POST /v1/keys), revoked at its end */
    char worker[RF_TORTURE_KEY_BYTES];
    char readonly[RF_TORTURE_KEY_BYTES];
    char key_ids[3][RF_ID_CHARS_MAX + 1];
    int n_keys;
    uint64_t rng;                /* splitmix64 state, from --seed */
    char run[24];                /* the prefix of every id this run makes */
    char currency[4];            /* "Z" and two letters, never an ISO 4217 currency */
    int clients, rounds, timeout_ms;
    int next_node;               /* round robin over nodes */
};

/* One scenario's tallies (a row of the final table). */
struct tt_stats {
    int requests, conflicts, violations, races, together;
    bool skipped, failed;        /* skipped: not applicable here; failed: could not run */
    bool expect_429;             /* the scenario provokes 429s (else one fails it: a limit
                                    below --clients would read as a broken invariant) */
    char note[256];              /* why skipped or failed */
    int64_t *lat;                /* raced requests' latencies, us */
    int n_lat, cap_lat;
};

/* One request of a race, or a single call. */
struct tt_req {
    const char *method, *path, *key, *idem, *body, *if_match;
    const char *header; /* one more "Name: value", or NULL */
};

/* A fresh id "<run>-<what>-<n>" from the run's seeded generator. */
void tt_id(struct tt *t, const char *what, char *out, size_t cap);
uint64_t tt_rand(struct tt *t);

/* Makes a key of role with the admin key (remembered for revoking at the
 * end); its secret into secret. False (s->failed) when refused. */
bool tt_make_key(struct tt *t, struct tt_stats *s, const char *role, char *secret);

/* One request to one node; its status (0: no answer). out is freed by the
 * caller (race_resp_free). A 5xx counts as a violation in s. */
int tt_call(struct tt *t, struct tt_stats *s, const struct tt_req *q, struct race_resp *out);
/* The same, parsed: the body as JSON (NULL when not JSON), its status into
 * *status. */
json_t *tt_json(struct tt *t, struct tt_stats *s, const struct tt_req *q, int *status);
/* A call that must answer want (else the scenario fails: s->failed with
 * the answer in s->note); returns its JSON body or NULL. */
json_t *tt_must(struct tt *t, struct tt_stats *s, const struct tt_req *q, int want);

/* Releases n requests together (spread over the nodes); tallies requests,
 * latencies, togetherness and 5xx into s. -1 (s->failed) when the race
 * could not run. */
int tt_race(struct tt *t, struct tt_stats *s, const struct tt_req *qs, int n,
            struct race_resp *out);
/* Counts the conflicts among a race's answers (the definition above) into s;
 * returns how many. */
int tt_conflicts(struct tt_stats *s, const struct race_resp *rs, int n);
/* Records a violation: prints "VIOLATION <scenario>: <what>" and counts it. */
void tt_violation(struct tt_stats *s, const char *scenario, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Counts the answers with this status. */
int tt_count(const struct race_resp *rs, int n, int status);
/* The answer's JSON body (NULL when not JSON); json_decref it. */
json_t *tt_body(const struct race_resp *r);
/* The problem+json `code` of an answer, or "". */
void tt_code(const struct race_resp *r, char *out, size_t cap);
void tt_free(struct race_resp *rs, int n);
/* How many distinct values the string `field` has among the 2xx answers. */
int tt_distinct(const struct race_resp *rs, int n, const char *field);
/* GET path (a list) with key: its rows on one page, or -1 (more pages, or
 * not a list: the scenario fails). */
int tt_list_count(struct tt *t, struct tt_stats *s, const char *path, const char *key);
/* The answers to n copies of one request with one Idempotency-Key: one
 * first 201, the rest replays of it or 409 idempotency_key_in_flight, one
 * id among them (else a violation naming what). */
void tt_one_key_check(struct tt_stats *s, const char *scenario, const char *what,
                      const struct race_resp *rs, int n);
/* True when the answer is an idempotent replay. */
bool tt_replayed(const struct race_resp *r);

/* Ledger helpers (torture_ledger.c): a fresh user account in the run's
 * currency (its id into id); a credit to it from funding; the account
 * checked against its history (posted = the sum of its entries = the last
 * balance_after) and the balance the scenario expects (else a violation). */
bool tt_account_new(struct tt *t, struct tt_stats *s, char *id, size_t cap);
bool tt_credit(struct tt *t, struct tt_stats *s, const char *id, int64_t amount);
void tt_history_check(struct tt *t, struct tt_stats *s, const char *scenario, const char *id,
                      int64_t want);

/* Runs round() --rounds times, each on fresh data, until one fails to run. */
void tt_rounds(struct tt *t, struct tt_stats *s, void (*round)(struct tt *, struct tt_stats *));

/* A scenario: runs its rounds, tallying into s. */
struct tt_scenario {
    const char *name;
    const char *about;
    void (*run)(struct tt *t, struct tt_stats *s);
};

/* The scenario rows of each file, and the table they make up (torture.c). */
extern const struct tt_scenario tt_access_scenarios[];
extern const int tt_access_count;
extern const struct tt_scenario tt_ledger_scenarios[];
extern const int tt_ledger_count;
extern const struct tt_scenario tt_work_scenarios[];
extern const int tt_work_count;
extern const struct tt_scenario tt_flow_scenarios[];
extern const int tt_flow_count;

#endif
