/*
 * test_keys_cli - API keys through the CLI, and the first-start admin key.
 *
 * Proves:
 *  - the first `racefree serve` on an empty store prints an admin key and a
 *    curl example on stdout, and that key works as admin; a second start on
 *    the same store prints no new key, says how to create an admin key
 *    (`racefree keys create --db ... --role admin`), and the first key still
 *    works (one bootstrap key per store);
 *  - `racefree keys create` prints the key alone on its last stdout line, and
 *    the key authenticates with its role;
 *  - `racefree keys list` shows it (never the secret);
 *  - `racefree keys revoke ID` makes it 401 on the running server within its
 *    key cache's TTL (1 s) and from then on;
 *  - bad CLI input (unknown role) fails with a non-zero exit and makes nothing.
 * On PostgreSQL the empty store is a database of its own, made for the test.
 */
#include "http_env.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first token starting with "rfk_" in text, into out. */
static bool find_key(const char *text, char *out, size_t cap)
{
    const char *p = strstr(text, "rfk_");
    if (!p)
        return false;
    size_t n = 0;
    while (p[n] && (isalnum((unsigned char)p[n]) || strchr("_-.~+/=", p[n])))
        n++;
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* Whether the server has logged its "listening" line on stderr, which it
 * writes only after the first admin key (if it made one) is on stdout. */
static bool listening(const struct rf_server *srv)
{
    char buf[8192];
    FILE *f = fopen(srv->err_path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, "\"msg\":\"listening on http://") != NULL;
}

/* The key the server printed, if it printed one: polls its stdout until the
 * key shows or the server is listening without one (at most 10 s). */
static bool wait_key(struct rf_server *srv, char *out, size_t cap, char *key, size_t key_cap)
{
    for (int64_t deadline = rf_t_now_ms() + 10000; rf_t_now_ms() < deadline;) {
        bool done = listening(srv); /* before reading stdout: the key precedes it */
        rf_server_read_stdout(srv, out, cap);
        if (find_key(out, key, key_cap))
            return true;
        if (done)
            return false;
        rf_t_sleep_ms(10);
    }
    fail_msg("the server neither printed a key nor logged listening within 10 s");
    return false;
}

static int get_status(int port, const char *path, const char *key)
{
    struct rf_t_resp r;
    rf_req(port, "GET", path, key, NULL, NULL, &r);
    int s = r.status;
    rf_resp_free(&r);
    return s;
}

static void test_bootstrap_admin_key(void **state)
{
    (void)state;
    char db[RF_T_URL_BYTES];
    if (rf_test_db_fresh(db, sizeof db) != 0)
        fail_msg("no fresh database");
    struct rf_server srv;
    if (rf_server_start(db, NULL, &srv) != 0)
        fail_msg("serve on an empty store did not start");
    static char out[65536];
    char key[RF_T_KEY_BYTES];
    if (!wait_key(&srv, out, sizeof out, key, sizeof key))
        fail_msg("first start printed no admin key on stdout before listening:\n%s", out);
    if (!strstr(out, "curl"))
        fail_msg("first start printed no curl example:\n%s", out);
    assert_int_equal(get_status(srv.port, "/v1/keys", key), 200);
    if (rf_server_stop(&srv, 0) != 0)
        fail_msg("first server did not exit 0");

    /* Second start: no new key; the first still works; one key in the store. */
    if (rf_server_start(db, NULL, &srv) != 0)
        fail_msg("second start failed");
    char key2[RF_T_KEY_BYTES];
    if (wait_key(&srv, out, sizeof out, key2, sizeof key2))
        fail_msg("second start printed a key again:\n%s", out);
    /* ... but says how to make one (a log line before the "listening" one). */
    rf_server_read_stderr(&srv, out, sizeof out);
    if (!strstr(out, "already has API keys") || !strstr(out, "racefree keys create --db '") ||
        !strstr(out, "--role admin"))
        fail_msg("second start did not say how to create an admin key:\n%s", out);
    assert_int_equal(get_status(srv.port, "/v1/keys", key), 200);
    struct rf_t_resp r;
    rf_req(srv.port, "GET", "/v1/keys?limit=500", key, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = rf_resp_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 1);
    json_decref(j);
    rf_resp_free(&r);
    if (rf_server_stop(&srv, 0) != 0)
        fail_msg("second server did not exit 0");
    rf_test_db_cleanup(db);
}

/* Two servers starting at once on one empty store make one bootstrap key. */
static void test_bootstrap_once_under_race(void **state)
{
    (void)state;
    char db[RF_T_URL_BYTES];
    if (rf_test_db_fresh(db, sizeof db) != 0)
        fail_msg("no fresh database");
    /* Create the schema first so both servers race on the key, not on
     * migrations (migrations have their own test in tests/core). */
    char out[8192], err[8192];
    const char *margs[] = {"migrate", "--db", db, NULL};
    int rc = rf_cli_run(margs, out, sizeof out, err, sizeof err, 0);
    if (rc != 0)
        fail_msg("migrate exited %d: %s %s", rc, out, err);
    struct rf_server a, b;
    if (rf_server_spawn(db, NULL, &a) != 0 || rf_server_spawn(db, NULL, &b) != 0 ||
        rf_server_wait_healthy(&a) != 0 || rf_server_wait_healthy(&b) != 0)
        fail_msg("servers did not start");
    static char oa[65536], ob[65536];
    char ka[RF_T_KEY_BYTES], kb[RF_T_KEY_BYTES];
    bool ha = wait_key(&a, oa, sizeof oa, ka, sizeof ka);
    bool hb = find_key(ob, kb, sizeof kb) || wait_key(&b, ob, sizeof ob, kb, sizeof kb);
    if (ha && hb)
        fail_msg("both servers printed a bootstrap key:\n%s\n%s", oa, ob);
    if (ha + hb != 1)
        fail_msg("%d of 2 servers printed a bootstrap key", ha + hb);
    assert_int_equal(get_status(a.port, "/v1/keys", ha ? ka : kb), 200);
    assert_int_equal(rf_server_stop(&a, 0), 0);
    assert_int_equal(rf_server_stop(&b, 0), 0);
    rf_test_db_cleanup(db);
}

static void test_keys_create_list_revoke(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    char name[64];
    RID(name, "cli");

    /* create: the key alone on the last line */
    static char out[RF_T_CLI_OUT_BYTES], err[65536];
    const char *cargs[] = {"keys", "create", "--db", e.db, "--role", "service", "--name", name,
                           NULL};
    int rc = rf_cli_run(cargs, out, sizeof out, err, sizeof err, 0);
    if (rc != 0)
        fail_msg("keys create exited %d:\n%s\n%s", rc, out, err);
    char key[RF_T_KEY_BYTES];
    assert_int_equal(rf_last_line(out, key, sizeof key), 0);
    for (const char *p = key; *p; p++)
        if (isspace((unsigned char)*p))
            fail_msg("last line is not the key alone: \"%s\"", key);
    assert_true(strlen(key) >= 22);  /* >= 128 bits of secret */
    assert_null(strstr(err, key));   /* the secret is not logged */

    /* it authenticates, with its role */
    char user[64], lpath[300], epath[512];
    RID(user, "u");
    snprintf(lpath, sizeof lpath, "/v1/users/%s/entitlements", user);
    ent_path(epath, sizeof epath, user, "pro");
    assert_int_equal(get_status(e.srv.port, lpath, key), 200);
    struct rf_t_resp r;
    env_req(&e, "PUT", epath, key, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    env_req(&e, "GET", "/v1/keys", key, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);

    /* list: it is there by name, and its id is the one the API reports */
    const char *largs[] = {"keys", "list", "--db", e.db, NULL};
    rc = rf_cli_run(largs, out, sizeof out, err, sizeof err, 0);
    if (rc != 0)
        fail_msg("keys list exited %d:\n%s\n%s", rc, out, err);
    if (!strstr(out, name))
        fail_msg("keys list does not show %s:\n%s", name, out);
    if (strstr(out, key))
        fail_msg("keys list shows the secret:\n%s", out);
    char id[256] = "", after[256] = "";
    for (int page = 0; page < 200 && !id[0]; page++) { /* the shared store has many keys */
        char path[400];
        snprintf(path, sizeof path, "/v1/keys?limit=500%s%s", after[0] ? "&after=" : "", after);
        env_req(&e, "GET", path, e.admin, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r), *item;
        size_t i;
        json_array_foreach(json_object_get(j, "data"), i, item) {
            if (strcmp(rf_t_json_str(item, "name"), name) == 0) {
                snprintf(id, sizeof id, "%s", rf_t_json_str(item, "id"));
                assert_string_equal(rf_t_json_str(item, "role"), "service");
            }
        }
        json_t *next = json_object_get(j, "next");
        bool more = json_is_string(next);
        if (more) snprintf(after, sizeof after, "%s", json_string_value(next)); /* uuid: no escaping */
        json_decref(j);
        rf_resp_free(&r);
        if (!more) break;
    }
    if (!id[0])
        fail_msg("GET /v1/keys does not list %s", name);
    if (!strstr(out, id))
        fail_msg("keys list does not show id %s:\n%s", id, out);

    /* revoke: 401 from then on; a second revoke fails */
    const char *rargs[] = {"keys", "revoke", "--db", e.db, id, NULL};
    rc = rf_cli_run(rargs, out, sizeof out, err, sizeof err, 0);
    if (rc != 0)
        fail_msg("keys revoke exited %d:\n%s\n%s", rc, out, err);
    env_wait_revoked(&e, lpath, key);
    env_req(&e, "GET", lpath, key, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 401, "unauthenticated");
    rf_resp_free(&r);
    rc = rf_cli_run(rargs, out, sizeof out, err, sizeof err, 0);
    assert_int_not_equal(rc, 0);

    /* bad input: non-zero exit, no key */
    char bad_name[64];
    RID(bad_name, "bad");
    const char *bargs[] = {"keys", "create", "--db", e.db, "--role", "root", "--name", bad_name,
                           NULL};
    rc = rf_cli_run(bargs, out, sizeof out, err, sizeof err, 0);
    assert_int_not_equal(rc, 0);
    assert_int_equal(keys_named(&e, bad_name), 0);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bootstrap_admin_key),
        cmocka_unit_test(test_bootstrap_once_under_race),
        cmocka_unit_test(test_keys_create_list_revoke),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
