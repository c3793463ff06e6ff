/*
 * test_cli - the command line as a newcomer meets it, run as real processes.
 *
 * Proves:
 *  - --help / -h on every command and subcommand (and `racefree help CMD
 *    [SUB]`, which prints the same) exits 0 and lists every flag with its
 *    default; test-only flags are not listed; an unknown flag or a flag
 *    without its value exits 2 and names it;
 *  - keys and reconcile refuse a sqlite: URL whose file does not exist
 *    (exit 2, the file is not created); migrate creates it; reconcile
 *    --progress prints each check on stderr;
 *  - a PostgreSQL that cannot be reached is reported with libpq's reason;
 *  - keys list prints a header row, and --json a JSON array of the keys;
 *  - serve on a busy port exits non-zero with a clear message and creates
 *    neither the store nor a key (test_keys_cli: a second start on a store
 *    with keys says how to create an admin key);
 *  - PostgreSQL: --schema (and ?schema= in the URL) puts racefree's tables
 *    in their own schema beside an app's own `accounts` table, which a
 *    migration, a server and a credit leave untouched. SQLite refuses
 *    --schema (exit 2).
 */
#include "http_env.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char out[RF_T_CLI_OUT_BYTES], err[65536];

/* Runs racefree with args (NULL-terminated) into out/err; the exit code. */
static int run(const char *const *args)
{
    out[0] = err[0] = '\0';
    return rf_cli_run(args, out, sizeof out, err, sizeof err, 30000);
}

#define RUN(...) run((const char *const[]){__VA_ARGS__, NULL})

static void must_contain(const char *text, const char *what, const char *cmd)
{
    if (!strstr(text, what))
        fail_msg("`racefree %s`: no '%s' in:\n%s", cmd, what, text);
}

struct help_case {
    const char *argv[4];
    const char *flags[24]; /* every flag the help must list */
};

static const struct help_case help_cases[] = {
    {{"serve", "--help"},
     {"--db URL", "--schema NAME", "--listen HOST:PORT", "--sync full|normal",
      "--body-max-bytes N", "--idem-retention-hours N", "--payout-max-attempts N", "--pool N",
      "--pg-timeout-ms N", "--queue-max N", "--batch-max N", "--writers N", "--http-workers N",
      "--max-connections N", "--max-client-connections N", "--header-timeout-ms N",
      "--body-timeout-ms N", "--idle-timeout-ms N", "--log-level debug|info|warn|error",
      "--reuse-port", "--help"}},
    {{"serve", "-h"}, {"--db URL", "--listen HOST:PORT", "--help"}},
    {{"migrate", "--help"}, {"--db URL", "--schema NAME", "--help"}},
    {{"reconcile", "-h"}, {"--db URL", "--schema NAME", "--json", "--progress", "--help"}},
    {{"keys", "create", "--help"}, {"--db URL", "--schema NAME", "--role ROLE", "--name NAME"}},
    {{"keys", "list", "-h"}, {"--db URL", "--schema NAME", "--json"}},
    {{"keys", "revoke", "--help"}, {"--db URL", "--schema NAME", "--help"}},
    {{"keys", "--help"}, {"keys create", "keys list", "keys revoke"}},
    {{"probe", "--help"},
     {"--request FILE", "--copies N", "--rounds R", "--vary HEADER", "--url BASE",
      "--timeout-ms MS", "--help"}},
    {{"torture", "-h"},
     {"--url URL", "--key KEY", "--scenario NAME", "--clients N", "--rounds N", "--seed S",
      "--timeout-ms MS", "--help"}},
    {{"help", "--help"}, {"--help"}},
    {{"help"}, {"serve", "migrate", "reconcile", "keys", "probe", "torture", "version", "help"}},
    {{"--help"}, {"serve", "migrate", "reconcile", "keys", "probe", "torture", "version", "help"}},
    {{"version", "--help"}, {"--version", "--help"}},
};

static void test_help_everywhere(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof help_cases / sizeof help_cases[0]; i++) {
        const struct help_case *c = &help_cases[i];
        char cmd[128];
        snprintf(cmd, sizeof cmd, "%s %s %s", c->argv[0], c->argv[1] ? c->argv[1] : "",
                 c->argv[1] && c->argv[2] ? c->argv[2] : "");
        int rc = run(c->argv);
        if (rc != 0)
            fail_msg("`racefree %s` exited %d: %s", cmd, rc, err);
        must_contain(out, "usage: racefree", cmd);
        for (int f = 0; c->flags[f]; f++)
            must_contain(out, c->flags[f], cmd);
        /* --db shows its default (help wraps it over lines). */
        if (strcmp(c->argv[0], "serve") == 0 || strcmp(c->argv[0], "migrate") == 0) {
            must_contain(out, "(default:", cmd);
            must_contain(out, "$RACEFREE_DB", cmd);
        }
        if (strstr(out, "--test-hooks") || strstr(out, "--maintenance-interval-ms"))
            fail_msg("`racefree %s` lists a test-only flag:\n%s", cmd, out);
    }
    assert_int_equal(RUN("serve", "--help"), 0);
    must_contain(out, "--pool N", "serve --help");
    must_contain(out, "(default: 16)", "serve --help");
    static char serve_help[RF_T_CLI_OUT_BYTES];
    snprintf(serve_help, sizeof serve_help, "%s", out);
    assert_int_equal(RUN("help", "serve"), 0);
    assert_string_equal(out, serve_help);
    assert_int_equal(RUN("keys", "create", "--help"), 0);
    snprintf(serve_help, sizeof serve_help, "%s", out);
    assert_int_equal(RUN("help", "keys", "create"), 0);
    assert_string_equal(out, serve_help);
}

static void test_bad_flags_exit_2(void **state)
{
    (void)state;
    assert_int_equal(RUN("serve", "--bogus"), 2);
    must_contain(err, "unknown option '--bogus'", "serve --bogus");
    assert_int_equal(RUN("keys", "list", "--role", "admin"), 2);
    must_contain(err, "unknown option '--role'", "keys list --role");
    assert_int_equal(RUN("migrate", "--db"), 2);
    must_contain(err, "--db needs a value", "migrate --db");
    assert_int_equal(RUN("serve", "--pool", "0"), 2);
    must_contain(err, "--pool must be", "serve --pool 0");
    assert_int_equal(RUN("help", "nosuch"), 2);
    must_contain(err, "unknown command 'nosuch'", "help nosuch");
}

static void test_missing_sqlite_refused(void **state)
{
    (void)state;
    char id[64], path[128], url[160];
    RID(id, "missing");
    snprintf(path, sizeof path, "/tmp/rf-cli-%s.db", id);
    snprintf(url, sizeof url, "sqlite:%s", path);
    const char *const cases[][8] = {
        {"keys", "list", "--db", url},
        {"keys", "create", "--role", "admin", "--db", url},
        {"keys", "revoke", "key-1", "--db", url},
        {"reconcile", "--db", url},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run(cases[i]);
        if (rc != 2)
            fail_msg("`racefree %s %s` on a missing file exited %d: %s", cases[i][0],
                     cases[i][1], rc, err);
        must_contain(err, "no SQLite database at", cases[i][0]);
        if (access(path, F_OK) == 0)
            fail_msg("`racefree %s` created %s", cases[i][0], path);
    }
    assert_int_equal(RUN("migrate", "--db", url), 0);
    assert_int_equal(access(path, F_OK), 0);
    /* Progress goes to stderr with --progress (or a terminal), the result
     * to stdout either way. */
    assert_int_equal(RUN("reconcile", "--db", url), 0);
    if (strstr(err, "[1/"))
        fail_msg("reconcile printed progress without --progress to a file:\n%s", err);
    assert_int_equal(RUN("reconcile", "--progress", "--db", url), 0);
    must_contain(err, "racefree reconcile: [1/14] currency_balances", "reconcile --progress");
    must_contain(err, "racefree reconcile: [7/14] approvals_executed", "reconcile --progress");
    must_contain(err, "racefree reconcile: [14/14] references", "reconcile --progress");
    must_contain(out, "reconcile: clean (14 checks)", "reconcile --progress");
    if (strstr(out, "[1/"))
        fail_msg("reconcile printed progress on stdout:\n%s", out);
    rf_test_db_cleanup(url);
}

static void test_pg_unreachable_says_why(void **state)
{
    (void)state;
    /* Nothing listens on port 1: libpq's "Connection refused". */
    int rc = RUN("keys", "list", "--db", "postgresql://postgres@127.0.0.1:1/racefree");
    assert_int_equal(rc, 1);
    must_contain(err, "Connection refused", "keys list (unreachable)");
    must_contain(err, "store_unavailable", "keys list (unreachable)");
    /* serve says the same, and every line it writes is a JSON log line:
     * its startup failures too. */
    rc = RUN("serve", "--db", "postgresql://postgres@127.0.0.1:1/racefree", "--listen",
             "127.0.0.1:0");
    assert_int_equal(rc, 1);
    must_contain(err, "Connection refused", "serve (unreachable)");
    int lines = 0;
    for (const char *s = err; *s; lines++) {
        size_t len = strcspn(s, "\n");
        json_error_t jerr;
        json_t *j = json_loadb(s, len, 0, &jerr);
        if (!json_is_object(j) || !json_is_string(json_object_get(j, "level")))
            fail_msg("serve wrote a line that is not a JSON log line: %.*s", (int)len, s);
        json_decref(j);
        s += len + (s[len] == '\n');
    }
    assert_true(lines >= 2); /* the cause, then what could not be opened */
}

static void test_keys_list_header_and_json(void **state)
{
    (void)state;
    char db[RF_T_URL_BYTES], name[64], key[RF_T_KEY_BYTES];
    if (rf_test_db_fresh(db, sizeof db) != 0)
        fail_msg("no fresh database");
    RID(name, "json");
    if (rf_key_create_cli(db, "worker", name, key) != 0)
        fail_msg("keys create failed");
    assert_int_equal(RUN("keys", "list", "--db", db), 0);
    if (strncmp(out, "ID\tROLE\tNAME\tCREATED\tREVOKED\tRATE_LIMIT\n", 40) != 0)
        fail_msg("keys list has no header row:\n%s", out);
    must_contain(out, name, "keys list");
    assert_int_equal(RUN("keys", "list", "--json", "--db", db), 0);
    json_error_t jerr;
    json_t *arr = json_loads(out, 0, &jerr);
    if (!json_is_array(arr))
        fail_msg("keys list --json is not a JSON array (%s):\n%s", jerr.text, out);
    assert_int_equal(json_array_size(arr), 1);
    json_t *k = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(k, "name")), name);
    assert_string_equal(json_string_value(json_object_get(k, "role")), "worker");
    assert_true(is_rfc3339_ms(json_string_value(json_object_get(k, "created_at"))));
    assert_true(json_is_null(json_object_get(k, "revoked_at")));
    assert_non_null(json_string_value(json_object_get(k, "id")));
    if (strstr(out, key))
        fail_msg("keys list --json shows the secret");
    assert_true(json_is_null(json_object_get(k, "rate_limit"))); /* its role's */
    json_decref(arr);
    /* a key's own limit, in the largest whole unit, in both forms */
    assert_int_equal(RUN("keys", "create", "--role", "service", "--rate-limit", "1500/60000ms",
                         "--db", db), 0);
    assert_int_equal(RUN("keys", "list", "--db", db), 0);
    must_contain(out, "\t1500/1m\n", "keys list");
    must_contain(out, "\t-\n", "keys list");
    assert_int_equal(RUN("keys", "list", "--json", "--db", db), 0);
    must_contain(out, "\"rate_limit\":\"1500/1m\"", "keys list --json");
    rf_test_db_cleanup(db);
}

/* A socket listening on 127.0.0.1:<free port>, and that port. */
static int busy_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 1) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        fail_msg("cannot make a busy port");
    *port = ntohs(sa.sin_port);
    return fd;
}

static void test_busy_port_creates_nothing(void **state)
{
    (void)state;
    char db[RF_T_URL_BYTES], listen_at[64];
    if (rf_test_db_fresh(db, sizeof db) != 0)
        fail_msg("no fresh database");
    int port = 0, fd = busy_port(&port);
    snprintf(listen_at, sizeof listen_at, "127.0.0.1:%d", port);
    int rc = RUN("serve", "--db", db, "--listen", listen_at);
    close(fd);
    if (rc == 0 || rc == -1)
        fail_msg("serve on a busy port exited %d", rc);
    must_contain(err, "cannot listen on", "serve (busy port)");
    must_contain(err, "Address already in use", "serve (busy port)");
    if (strstr(out, "rfk_"))
        fail_msg("serve on a busy port printed a key:\n%s", out);
    if (strncmp(db, "sqlite:", 7) == 0 && access(db + 7, F_OK) == 0)
        fail_msg("serve on a busy port created %s", db + 7);
    /* No key was made: the store (made now) has none. */
    assert_int_equal(RUN("migrate", "--db", db), 0);
    assert_int_equal(RUN("keys", "list", "--json", "--db", db), 0);
    json_t *arr = json_loads(out, 0, NULL);
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    rf_test_db_cleanup(db);
}

/* Runs sql on url (libpq); the first value of the first row into val. */
static void pg_exec(const char *url, const char *sql, char *val, size_t cap)
{
    PGconn *pg = PQconnectdb(url);
    if (PQstatus(pg) != CONNECTION_OK)
        fail_msg("libpq: %s", PQerrorMessage(pg));
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(pg));
    if (val)
        snprintf(val, cap, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    PQfinish(pg);
}

static void credit_over_http(int port, const char *key)
{
    struct rf_t_resp r;
    rf_req(port, "POST", "/v1/accounts", key,
           "{\"id\":\"wallet-1\",\"currency\":\"USD\",\"kind\":\"user\"}", NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    const char *idem[] = {"Idempotency-Key: schema-credit-1", NULL};
    rf_req(port, "POST", "/v1/accounts/wallet-1/credits", key,
           "{\"amount_minor\":1000,\"reason\":\"welcome\"}", idem, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
}

static void test_schema_beside_app_tables(void **state)
{
    (void)state;
    char db[RF_T_URL_BYTES], url[RF_T_URL_BYTES + 32], v[256];
    if (rf_test_db_fresh(db, sizeof db) != 0)
        fail_msg("no fresh database");
    if (!rf_test_db_is_pg()) { /* SQLite: --schema is refused, nothing made */
        assert_int_equal(RUN("migrate", "--db", db, "--schema", "rf_app"), 2);
        must_contain(err, "--schema is for PostgreSQL", "migrate --schema (sqlite)");
        assert_int_not_equal(access(db + 7, F_OK), 0);
        return;
    }
    pg_exec(db, "CREATE TABLE accounts (name text PRIMARY KEY, email text NOT NULL);"
                "INSERT INTO accounts VALUES ('app-user', 'a@example.com')", NULL, 0);
    assert_int_equal(RUN("migrate", "--db", db, "--schema", "Bad-Name"), 2);
    assert_int_equal(RUN("migrate", "--db", db, "--schema", "rf_app"), 0);
    must_contain(out, "schema version", "migrate --schema");
    /* The URL parameter is the same setting: keys and the server use it. */
    snprintf(url, sizeof url, "%s%cschema=rf_app", db, strchr(db, '?') ? '&' : '?');
    char key[RF_T_KEY_BYTES];
    if (rf_key_create_cli(url, "service", NULL, key) != 0)
        fail_msg("keys create with ?schema= failed");
    struct rf_server srv;
    if (rf_server_start(url, NULL, &srv) != 0)
        fail_msg("serve with ?schema= failed");
    credit_over_http(srv.port, key);
    assert_int_equal(rf_server_stop(&srv, 0), 0);
    assert_int_equal(RUN("reconcile", "--db", db, "--schema", "rf_app"), 0);
    /* schema= among libpq's own parameters; given twice is refused. */
    char url2[RF_T_URL_BYTES + 96];
    snprintf(url2, sizeof url2, "%s%cconnect_timeout=10&schema=rf_app&application_name=t", db,
             strchr(db, '?') ? '&' : '?');
    assert_int_equal(RUN("keys", "list", "--json", "--db", url2), 0);
    must_contain(out, "\"role\":\"service\"", "keys list (?schema= among others)");
    assert_int_equal(RUN("keys", "list", "--db", url2, "--schema", "rf_app"), 2);
    must_contain(err, "give the schema once", "keys list (schema twice)");

    pg_exec(db, "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM "
                "information_schema.columns WHERE table_schema = 'public' AND table_name = "
                "'accounts'", v, sizeof v);
    assert_string_equal(v, "name,email");
    pg_exec(db, "SELECT string_agg(name || ':' || email, ',') FROM public.accounts", v,
            sizeof v);
    assert_string_equal(v, "app-user:a@example.com");
    pg_exec(db, "SELECT posted FROM rf_app.accounts WHERE id = 'wallet-1'", v, sizeof v);
    assert_string_equal(v, "1000");
    pg_exec(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", v, sizeof v);
    assert_string_equal(v, "1");
    rf_test_db_cleanup(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_everywhere),
        cmocka_unit_test(test_bad_flags_exit_2),
        cmocka_unit_test(test_missing_sqlite_refused),
        cmocka_unit_test(test_pg_unreachable_says_why),
        cmocka_unit_test(test_keys_list_header_and_json),
        cmocka_unit_test(test_busy_port_creates_nothing),
        cmocka_unit_test(test_schema_beside_app_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
