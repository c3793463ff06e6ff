/*
 * http_env.h - the setting of one black-box test: a test database, a running
 * `racefree serve`, one API key per role, and a random id prefix so tests on
 * the shared PostgreSQL database never see each other's rows.
 */
#ifndef RF_HTTP_ENV_H
#define RF_HTTP_ENV_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testlib/rf_testassert.h"
#include "testlib/rf_testjson.h"
#include "testlib/rf_testlib.h"

struct env {
    char db[RF_T_URL_BYTES];
    struct rf_server srv;
    bool running;
    char admin[RF_T_KEY_BYTES];
    char service[RF_T_KEY_BYTES];
    char worker[RF_T_KEY_BYTES];
    char readonly[RF_T_KEY_BYTES];
};

/* A fresh test database (rf_test_db_url), keys for every role made with the
 * CLI, and a server (with --test-hooks when hooks). Fails the test on error. */
void env_start(struct env *e, bool hooks, const char *const *extra_args);
/* The server most test files share for all their tests, and the cmocka
 * group fixture that starts it (env_start without hooks) and stops it. */
extern struct env g_env;
int env_group_setup(void **state);
int env_group_teardown(void **state);
/* The same on a fresh, empty store (rf_test_db_fresh): for tests that read
 * a whole list and must not see other tests' rows. */
void env_start_fresh(struct env *e, bool hooks, const char *const *extra_args);
/* Stops the server (it must exit 0) and removes the test database. */
void env_stop(struct env *e);

/* "/v1/users/<user>/entitlements/<key>" */
void ent_path(char *out, size_t cap, const char *user, const char *key);

/* One request to the env's server with an API key (may be NULL) and
 * optional extra headers (NULL-terminated, may be NULL). */
void env_req(struct env *e, const char *method, const char *path, const char *api_key,
             const char *body, const char *const *headers, struct rf_t_resp *out);

/* GET path (printf format) with api_key: must answer 200 with a JSON body,
 * which it returns (json_decref it). */
json_t *env_get_json(struct env *e, const char *api_key, const char *path_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A key revoked by ANOTHER process (the CLI) stops working on a running
 * server within its key cache's TTL (RF_KEY_CACHE_TTL_MS, 1 s): asks GET
 * path with api_key until it answers 401, and fails unless that happened
 * within the TTL plus scheduling slack. */
void env_wait_revoked(struct env *e, const char *path, const char *api_key);

/* Test hooks (admin key; server started with hooks). */
void hook_op_delay(struct env *e, int ms);
void hook_fail_next(struct env *e, const char *op, const char *code);

/* The ETag header as a version ("\"7\"" -> 7), or -1. */
int64_t etag_version(const struct rf_t_resp *r);

/* GET the user's list with ?status=..., following cursors; returns the
 * number of entitlements. It first waits (bounded) until every write
 * acknowledged so far is listable: a list may hold a new row back for as
 * long as an older write transaction runs. */
int list_all_count(struct env *e, const char *user, const char *status);

/* Checks that r carries a well-formed entitlement for (user, key): every
 * member present with its type, times in RFC 3339 UTC with milliseconds, and
 * an ETag equal to the version. Returns the parsed body (json_decref it). */
json_t *ent_check(const struct rf_t_resp *r, const char *user, const char *key);
/* True for "YYYY-MM-DDTHH:MM:SS.mmmZ". */
bool is_rfc3339_ms(const char *s);

/* The outcome seed 000 asks of n concurrent grants of (user, key) whose
 * responses are in reqs: all 200/201, exactly one 201, one id and
 * granted_at, version 1, and exactly one entitlement in the store. */
void check_grant_race(struct env *e, struct rf_par_req *reqs, int n, const char *user,
                      const char *key);

/* Number of API keys named `name` in GET /v1/keys (admin, following
 * cursors); fails the test if a listed key shows a secret. */
int keys_named(struct env *e, const char *name);
/* Creates a key over HTTP (admin); its id and secret into the buffers. */
void key_create_http(struct env *e, const char *role, const char *name, char *id, size_t id_cap,
                     char *secret, size_t secret_cap);

/* Fails the test when a response is a 5xx or no response at all. */
void env_no_5xx_one(const char *method, const char *path, const struct rf_t_resp *r);
void env_no_5xx(const struct rf_par_req *reqs, int n);

/* Opens the env's store with the library (not through the server) and fails
 * the test unless the ledger's invariants hold: every currency sums to zero,
 * every balance equals its entries, every hold matches its pending transfers;
 * and at least min_currencies currencies exist (so the check is not vacuous). */
void env_ledger_check(struct env *e, int min_currencies);
/* A cmocka per-test setup: g_env's ledger is clean before the test runs, so
 * a broken check at its end is that test's doing (the database is this
 * process's own; its tests run one after another). */
int env_ledger_clean_before(void **state);

/* True when the response carries "Idempotent-Replayed: true". */
bool resp_replayed(const struct rf_t_resp *r);
/* "Idempotency-Key: <a fresh random key>" into buf. */
void idem_hdr_fresh(char *buf, size_t cap);
/* Three random upper-case letters: a currency (and so funding:<CUR>) that no
 * other test touches, even on the shared PostgreSQL database. */
void rand_currency(char out[4]);
/* POST /v1/accounts {id, currency, kind user[, allow_negative]} as the
 * service key; fails the test unless it is 201. */
void env_account_create(struct env *e, const char *id, const char *currency,
                        bool allow_negative);

/* An account as GET /v1/accounts/{id} reports it (readonly key); fails the
 * test unless available = posted - pending_debits and the ETag is the
 * version. */
struct bal {
    int64_t posted, pending_debits, pending_credits, available, version;
};
struct bal env_balance(struct env *e, const char *account_id);

/* A unique id: "<prefix>-<16 hex>". */
#define RID(buf, prefix) rf_rand_id((prefix), (buf), sizeof(buf))

#endif
