/*
 * http_env.c - see http_env.h.
 */
#include "http_env.h"

#include "racefree.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void env_start_on(struct env *e, bool fresh, bool hooks, const char *const *extra_args)
{
    memset(e, 0, sizeof *e);
    if ((fresh ? rf_test_db_fresh(e->db, sizeof e->db) : rf_test_db_url(e->db, sizeof e->db)) != 0)
        fail_msg("no test database");
    struct {
        const char *role;
        char *out;
    } roles[] = {{"admin", e->admin},
                 {"service", e->service},
                 {"worker", e->worker},
                 {"readonly", e->readonly}};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        char name[64];
        rf_rand_id(roles[i].role, name, sizeof name);
        if (rf_key_create_cli(e->db, roles[i].role, name, roles[i].out) != 0)
            fail_msg("keys create --role %s failed", roles[i].role);
    }
    const char *args[24];
    int n = 0;
    if (hooks)
        args[n++] = "--test-hooks";
    for (int i = 0; extra_args && extra_args[i] && n < 23; i++)
        args[n++] = extra_args[i];
    args[n] = NULL;
    if (rf_server_start(e->db, args, &e->srv) != 0)
        fail_msg("racefree serve did not start on %s", e->db);
    e->running = true;
}

void env_start(struct env *e, bool hooks, const char *const *extra_args)
{
    env_start_on(e, false, hooks, extra_args);
}

void env_start_fresh(struct env *e, bool hooks, const char *const *extra_args)
{
    env_start_on(e, true, hooks, extra_args);
}

struct env g_env;

int env_group_setup(void **state)
{
    (void)state;
    env_start(&g_env, false, NULL);
    return 0;
}

int env_group_teardown(void **state)
{
    (void)state;
    env_stop(&g_env);
    return 0;
}

void env_stop(struct env *e)
{
    if (e->running) {
        e->running = false;
        int rc = rf_server_stop(&e->srv, 0);
        if (rc != 0)
            fail_msg("racefree serve did not exit 0 on SIGTERM (got %d)", rc);
    }
    rf_test_db_cleanup(e->db);
}

void ent_path(char *out, size_t cap, const char *user, const char *key)
{
    snprintf(out, cap, "/v1/users/%s/entitlements/%s", user, key);
}

void env_req(struct env *e, const char *method, const char *path, const char *api_key,
             const char *body, const char *const *headers, struct rf_t_resp *out)
{
    rf_req(e->srv.port, method, path, api_key, body, headers, out);
}

void hook_op_delay(struct env *e, int ms)
{
    char body[64];
    snprintf(body, sizeof body, "{\"ms\": %d}", ms);
    struct rf_t_resp r;
    env_req(e, "POST", "/v1/_test/op-delay", e->admin, body, NULL, &r);
    if (r.status < 200 || r.status > 299)
        fail_msg("POST /v1/_test/op-delay: HTTP %d %s", r.status, r.body ? r.body : r.errmsg);
    rf_resp_free(&r);
}

void hook_fail_next(struct env *e, const char *op, const char *code)
{
    char body[160];
    snprintf(body, sizeof body, "{\"op\": \"%s\", \"code\": \"%s\"}", op, code);
    struct rf_t_resp r;
    env_req(e, "POST", "/v1/_test/fail-next", e->admin, body, NULL, &r);
    if (r.status < 200 || r.status > 299)
        fail_msg("POST /v1/_test/fail-next: HTTP %d %s", r.status, r.body ? r.body : r.errmsg);
    rf_resp_free(&r);
}

int64_t etag_version(const struct rf_t_resp *r)
{
    const char *v = rf_resp_header(r, "ETag");
    if (!v || v[0] != '"')
        return -1;  /* absent, or weak (W/"..."): versions are strong validators */
    char *end;
    long long n = strtoll(v + 1, &end, 10);
    if (end == v + 1 || end[0] != '"' || end[1] != '\0')
        return -1;
    return n;
}

/* Waits until every write acknowledged so far is listable. A list shows a
 * row once every older write transaction has finished (src/core/listing.h):
 * on a loaded PostgreSQL a row answered 201 a moment ago may still wait for
 * an older transaction. So: write a marker (a newer transaction than every
 * acknowledged write), and wait until the marker is listed; from then on
 * nothing acknowledged before it is held back. Bounded by LIST_SETTLE_MS. */
#define LIST_SETTLE_MS 10000
static void list_settle(struct env *e)
{
    char user[64], path[256];
    RID(user, "settle");
    snprintf(path, sizeof path, "/v1/users/%s/entitlements/marker", user);
    struct rf_t_resp r;
    env_req(e, "PUT", path, e->service, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    snprintf(path, sizeof path, "/v1/users/%s/entitlements?status=all", user);
    int64_t deadline = rf_t_now_ms() + LIST_SETTLE_MS;
    for (;;) {
        env_req(e, "GET", path, e->admin, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        bool listed = r.body && strstr(r.body, "\"marker\"") != NULL;
        rf_resp_free(&r);
        if (listed)
            return;
        if (rf_t_now_ms() > deadline)
            fail_msg("a row answered 201 was not listed within %d ms", LIST_SETTLE_MS);
        rf_t_sleep_ms(5);
    }
}

int list_all_count(struct env *e, const char *user, const char *status)
{
    list_settle(e);
    char after[512] = "";
    int total = 0;
    for (int page = 0; page < 100; page++) {
        char path[1200];
        snprintf(path, sizeof path, "/v1/users/%s/entitlements?status=%s&limit=500%s%s", user,
                 status, after[0] ? "&after=" : "", after);
        struct rf_t_resp r;
        env_req(e, "GET", path, e->admin, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r);
        json_t *data = json_object_get(j, "data");
        if (!json_is_array(data))
            fail_msg("GET %s: no data array: %s", path, r.body);
        json_t *next = json_object_get(j, "next");
        if (!next)
            fail_msg("GET %s: no next member: %s", path, r.body);
        total += (int)json_array_size(data);
        bool more = json_is_string(next) && json_string_length(next) > 0;
        if (more && rf_urlencode(json_string_value(next), after, sizeof after) != 0)
            fail_msg("cursor too long: %s", json_string_value(next));
        json_decref(j);
        rf_resp_free(&r);
        if (!more)
            return total;
    }
    fail_msg("GET list for %s: more than 100 pages", user);
    return -1;
}

bool is_rfc3339_ms(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(s) != sizeof pat - 1)
        return false;
    for (size_t i = 0; pat[i]; i++) {
        if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
            return false;
    }
    return true;
}

static void want_time_or_null(json_t *j, const char *name, bool nullable, const char *body)
{
    json_t *v = json_object_get(j, name);
    if (!v)
        fail_msg("entitlement has no \"%s\": %s", name, body);
    if (json_is_null(v) && nullable)
        return;
    if (!json_is_string(v) || !is_rfc3339_ms(json_string_value(v)))
        fail_msg("entitlement \"%s\" is not an RFC 3339 UTC time with ms: %s", name, body);
}

json_t *ent_check(const struct rf_t_resp *r, const char *user, const char *key)
{
    const char *body = r->body ? r->body : "";
    const char *ct = rf_resp_header(r, "Content-Type");
    if (!ct || strncmp(ct, "application/json", 16) != 0)
        fail_msg("entitlement response Content-Type is %s", ct ? ct : "absent");
    json_t *j = rf_resp_json(r);
    if (!json_is_object(j))
        fail_msg("entitlement response is not a JSON object: %s", body);
    if (!*rf_t_json_str(j, "id"))
        fail_msg("entitlement has no id: %s", body);
    if (strcmp(rf_t_json_str(j, "user_id"), user) != 0 || strcmp(rf_t_json_str(j, "key"), key) != 0)
        fail_msg("entitlement is not for %s/%s: %s", user, key, body);
    const char *st = rf_t_json_str(j, "status");
    if (strcmp(st, "active") && strcmp(st, "revoked") && strcmp(st, "expired"))
        fail_msg("entitlement status \"%s\" unknown: %s", st, body);
    json_t *src = json_object_get(j, "source");
    if (!src || !(json_is_null(src) || json_is_string(src)))
        fail_msg("entitlement source is missing or not a string/null: %s", body);
    json_t *md = json_object_get(j, "metadata");
    if (!md || !(json_is_null(md) || json_is_object(md)))
        fail_msg("entitlement metadata is missing or not an object/null: %s", body);
    want_time_or_null(j, "expires_at", true, body);
    want_time_or_null(j, "granted_at", false, body);
    want_time_or_null(j, "revoked_at", true, body);
    want_time_or_null(j, "updated_at", false, body);
    if (strcmp(st, "revoked") == 0 && json_is_null(json_object_get(j, "revoked_at")))
        fail_msg("status revoked with revoked_at null: %s", body);
    int64_t v = rf_t_json_int(j, "version");
    if (v < 1)
        fail_msg("entitlement version missing or < 1: %s", body);
    if (etag_version(r) != v)
        fail_msg("ETag %s does not match version %lld", rf_resp_header(r, "ETag") ? rf_resp_header(r, "ETag") : "(absent)",
                 (long long)v);
    return j;
}

void check_grant_race(struct env *e, struct rf_par_req *reqs, int n, const char *user,
                        const char *key)
{
    int created = 0;
    char id[256] = "", granted_at[64] = "";
    for (int i = 0; i < n; i++) {
        struct rf_t_resp *r = &reqs[i].resp;
        if (r->status != 200 && r->status != 201)
            fail_msg("grant %d/%d: HTTP %d (%s) %s", i, n, r->status, r->errmsg,
                     r->body ? r->body : "");
        if (r->status == 201)
            created++;
        json_t *j = ent_check(r, user, key);
        if (strcmp(rf_t_json_str(j, "status"), "active") != 0)
            fail_msg("grant %d answered a non-active entitlement: %s", i, r->body);
        if (rf_t_json_int(j, "version") != 1)
            fail_msg("grant %d: version %lld, expected 1 (no grant may bump an active one): %s",
                     i, (long long)rf_t_json_int(j, "version"), r->body);
        if (!id[0]) {
            snprintf(id, sizeof id, "%s", rf_t_json_str(j, "id"));
            snprintf(granted_at, sizeof granted_at, "%s", rf_t_json_str(j, "granted_at"));
        } else {
            if (strcmp(id, rf_t_json_str(j, "id")) != 0)
                fail_msg("grant %d: id %s differs from %s", i, rf_t_json_str(j, "id"), id);
            if (strcmp(granted_at, rf_t_json_str(j, "granted_at")) != 0)
                fail_msg("grant %d: granted_at %s differs from %s", i,
                         rf_t_json_str(j, "granted_at"), granted_at);
        }
        json_decref(j);
    }
    assert_int_equal(created, 1);

    /* One row: the single GET and the list agree. */
    char path[512];
    ent_path(path, sizeof path, user, key);
    struct rf_t_resp g;
    env_req(e, "GET", path, e->readonly, NULL, NULL, &g);
    RF_ASSERT_STATUS(&g, 200);
    json_t *j = ent_check(&g, user, key);
    assert_string_equal(rf_t_json_str(j, "id"), id);
    assert_int_equal(rf_t_json_int(j, "version"), 1);
    json_decref(j);
    rf_resp_free(&g);
    assert_int_equal(list_all_count(e, user, "all"), 1);
    assert_int_equal(list_all_count(e, user, "active"), 1);
}

/* Number of keys named `name` in GET /v1/keys (following cursors). */
int keys_named(struct env *e, const char *name)
{
    char after[512] = "";
    int found = 0;
    for (int page = 0; page < 200; page++) {
        char path[700];
        snprintf(path, sizeof path, "/v1/keys?limit=500%s%s", after[0] ? "&after=" : "", after);
        struct rf_t_resp r;
        env_req(e, "GET", path, e->admin, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r);
        json_t *data = json_object_get(j, "data"), *item;
        if (!json_is_array(data))
            fail_msg("GET /v1/keys: no data array: %s", r.body);
        size_t i;
        json_array_foreach(data, i, item) {
            if (strcmp(rf_t_json_str(item, "name"), name) == 0)
                found++;
            if (json_object_get(item, "key") || json_object_get(item, "secret") ||
                json_object_get(item, "hash"))
                fail_msg("GET /v1/keys exposes a secret: %s", r.body);
        }
        json_t *next = json_object_get(j, "next");
        bool more = json_is_string(next) && json_string_length(next) > 0;
        if (more && rf_urlencode(json_string_value(next), after, sizeof after) != 0)
            fail_msg("cursor too long");
        json_decref(j);
        rf_resp_free(&r);
        if (!more)
            return found;
    }
    fail_msg("GET /v1/keys: too many pages");
    return -1;
}

void key_create_http(struct env *e, const char *role, const char *name, char *id, size_t id_cap,
                     char *secret, size_t secret_cap)
{
    char body[300];
    snprintf(body, sizeof body, "{\"role\": \"%s\", \"name\": \"%s\"}", role, name);
    struct rf_t_resp r;
    env_req(e, "POST", "/v1/keys", e->admin, body, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    json_t *j = rf_resp_json(&r);
    if (!*rf_t_json_str(j, "id") || !*rf_t_json_str(j, "key"))
        fail_msg("POST /v1/keys: no id or key: %s", r.body);
    if (strcmp(rf_t_json_str(j, "role"), role) != 0 || strcmp(rf_t_json_str(j, "name"), name) != 0)
        fail_msg("POST /v1/keys: role/name differ: %s", r.body);
    snprintf(id, id_cap, "%s", rf_t_json_str(j, "id"));
    snprintf(secret, secret_cap, "%s", rf_t_json_str(j, "key"));
    json_decref(j);
    rf_resp_free(&r);
}

void env_no_5xx_one(const char *method, const char *path, const struct rf_t_resp *r)
{
    if (r->status == 0 || r->status >= 500)
        fail_msg("%s %s: HTTP %d %s %s", method, path, r->status, r->errmsg,
                 r->body ? r->body : "");
}

void env_no_5xx(const struct rf_par_req *reqs, int n)
{
    for (int i = 0; i < n; i++)
        env_no_5xx_one(reqs[i].method, reqs[i].path, &reqs[i].resp);
}

/* Every invariant rf_reconcile checks holds too (the flows the test ran
 * left nothing that reconcile calls drift); names the first broken check. */
static void reconcile_clean_or_fail(rf *db, const char *when)
{
    struct rf_reconcile r;
    rf_err err = rf_reconcile(db, NULL, &r);
    if (err != RF_OK)
        fail_msg("rf_reconcile: %s", rf_err_code(err));
    for (int i = 0; i < r.n && !r.clean; i++) {
        const struct rf_reconcile_check *k = &r.checks[i];
        if (k->violations)
            fail_msg("reconcile %s: %s: %lld violations (first: %s %s)", when, k->name,
                     (long long)k->violations, k->cells[0][0],
                     k->cells[0][1] ? k->cells[0][1] : "");
    }
    rf_reconcile_clear(&r);
}

static void ledger_check_or_fail(struct env *e, int min_currencies, const char *when)
{
    rf *db = NULL;
    struct rf_options opt = {.no_migrate = true};
    rf_err err = rf_open(e->db, &opt, &db);
    if (err != RF_OK)
        fail_msg("rf_open(%s): %s", e->db, rf_err_code(err));
    struct rf_ledger_check c;
    err = rf_ledger_check(db, &c);
    if (err == RF_OK)
        reconcile_clean_or_fail(db, when);
    rf_close(db);
    if (err != RF_OK)
        fail_msg("rf_ledger_check: %s", rf_err_code(err));
    if (c.currencies < min_currencies || !c.clean)
        fail_msg("ledger invariants broken %s: %lld currencies (%lld unbalanced), %lld accounts "
                 "(%lld mismatched), %lld payouts (%lld mismatched), %lld unowned clearing, "
                 "%lld approved approvals (%lld whose action did not run), %lld checkouts "
                 "(%lld mismatched)",
                 when, (long long)c.currencies, (long long)c.currencies_unbalanced,
                 (long long)c.accounts, (long long)c.accounts_mismatched, (long long)c.payouts,
                 (long long)c.payouts_mismatched, (long long)c.clearing_unowned,
                 (long long)c.approvals, (long long)c.approvals_unexecuted,
                 (long long)c.checkouts, (long long)c.checkouts_mismatched);
}

void env_ledger_check(struct env *e, int min_currencies)
{
    ledger_check_or_fail(e, min_currencies, "after this test's requests");
}

int env_ledger_clean_before(void **state)
{
    (void)state;
    ledger_check_or_fail(&g_env, 0,
                         "BEFORE this test ran: an earlier test in this process broke them");
    return 0;
}

bool resp_replayed(const struct rf_t_resp *r)
{
    const char *v = rf_resp_header(r, "Idempotent-Replayed");
    return v && strcasecmp(v, "true") == 0;
}

void idem_hdr_fresh(char *buf, size_t cap)
{
    char k[64];
    RID(k, "ik");
    snprintf(buf, cap, "Idempotency-Key: %s", k);
}

/* Never the same one twice in a process, so no two tests share a
 * currency's accounts (funding:<CUR>, payouts:<CUR>) in their database. */
void rand_currency(char out[4])
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static bool used[26 * 26 * 26];
    pthread_mutex_lock(&mu);
    uint32_t n;
    do
        n = rf_rand_below(26 * 26 * 26);
    while (used[n]);
    used[n] = true;
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < 3; i++, n /= 26)
        out[i] = (char)('A' + n % 26);
    out[3] = '\0';
}

json_t *env_get_json(struct env *e, const char *api_key, const char *path_fmt, ...)
{
    char path[1024];
    va_list ap;
    va_start(ap, path_fmt);
    int n = vsnprintf(path, sizeof path, path_fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof path);
    struct rf_t_resp r;
    env_req(e, "GET", path, api_key, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    if (!j) fail_msg("GET %s: the body is not JSON: %s", path, r.body ? r.body : "");
    rf_resp_free(&r);
    return j;
}

struct bal env_balance(struct env *e, const char *account_id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/accounts/%s", account_id);
    struct rf_t_resp r;
    env_req(e, "GET", path, e->readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    struct bal b = {rf_t_json_int(j, "posted"), rf_t_json_int(j, "pending_debits"),
                    rf_t_json_int(j, "pending_credits"), rf_t_json_int(j, "available"),
                    rf_t_json_int(j, "version")};
    if (b.available != b.posted - b.pending_debits)
        fail_msg("available != posted - pending_debits: %s", r.body);
    if (etag_version(&r) != b.version)
        fail_msg("ETag does not match version: %s", r.body);
    json_decref(j);
    rf_resp_free(&r);
    return b;
}

void env_account_create(struct env *e, const char *id, const char *currency,
                        bool allow_negative)
{
    char body[256];
    snprintf(body, sizeof body, "{\"id\": \"%s\", \"currency\": \"%s\", \"kind\": \"user\"%s}",
             id, currency, allow_negative ? ", \"allow_negative\": true" : "");
    struct rf_t_resp r;
    env_req(e, "POST", "/v1/accounts", e->service, body, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
}

void env_wait_revoked(struct env *e, const char *path, const char *api_key)
{
    int64_t t0 = rf_t_now_ms();
    for (;;) {
        struct rf_t_resp r;
        env_req(e, "GET", path, api_key, NULL, NULL, &r);
        int status = r.status;
        if (status != 200 && status != 401)
            fail_msg("GET %s with a revoked key: HTTP %d %s", path, status, r.body);
        if (status == 401) RF_ASSERT_PROBLEM(&r, 401, "unauthenticated");
        rf_resp_free(&r);
        int64_t waited_ms = rf_t_now_ms() - t0;
        if (status == 401) return;
        if (waited_ms > 1000 + 1000)
            fail_msg("a key revoked by another process still works after %lld ms",
                     (long long)waited_ms);
        rf_t_sleep_ms(20);
    }
}
