/*
 * testdb.c - the database a black-box test runs against, and random ids.
 *
 * RF_TEST_DB is "sqlite" (each test gets a fresh file under /tmp) or a
 * PostgreSQL URL. On PostgreSQL each test process gets a database of its
 * own on that server (rf_test_db_url: the same one for the whole process),
 * because tests that run at once in one database see each other: a list
 * shows a row only once every older write transaction in its database has
 * finished, so a test holding a transaction open on purpose would stall
 * another test's lists. Tests still make their ids unique with rf_rand_id()
 * (a process may start several servers on its database); a test that needs
 * an empty store gets one from rf_test_db_fresh().
 */
#include "testlib/rf_testlib.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static atomic_int db_counter;

static const char *test_db(void)
{
    const char *v = getenv("RF_TEST_DB");
    return v && *v ? v : "sqlite";
}

bool rf_test_db_is_pg(void)
{
    const char *v = test_db();
    return strncmp(v, "postgres://", 11) == 0 || strncmp(v, "postgresql://", 13) == 0;
}

static void rand_bytes(void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom((char *)p + got, n - got, 0);
        if (r < 0) {
            perror("getrandom");
            abort();
        }
        got += (size_t)r;
    }
}

uint32_t rf_rand_below(uint32_t n)
{
    if (n <= 1)
        return 0;
    uint32_t lim = UINT32_MAX - UINT32_MAX % n, v;
    do
        rand_bytes(&v, sizeof v);
    while (v >= lim);
    return v % n;
}

void rf_rand_id(const char *prefix, char *out, size_t cap)
{
    uint8_t b[8];
    rand_bytes(b, sizeof b);
    snprintf(out, cap, "%s-%02x%02x%02x%02x%02x%02x%02x%02x", prefix, b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7]);
}

static int sqlite_fresh(char *out, size_t cap)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/rf-http-%d-%d.db", (int)getpid(),
             atomic_fetch_add(&db_counter, 1));
    rf_test_db_cleanup(path);  /* a leftover of an earlier run with this pid */
    if ((size_t)snprintf(out, cap, "sqlite:%s", path) >= cap)
        return -1;
    return 0;
}

/* Splits a postgres URL around its database name: [0, *db_at) is the part
 * before the name, *rest_at starts the query string (or the end). */
static int pg_url_split(const char *url, size_t *db_at, size_t *rest_at)
{
    const char *p = strstr(url, "://");
    if (!p)
        return -1;
    p += 3;
    const char *slash = strchr(p, '/');
    const char *q = strchr(p, '?');
    if (!slash || (q && slash > q)) {
        /* no database in the URL: insert one before the query string */
        size_t at = q ? (size_t)(q - url) : strlen(url);
        *db_at = at;
        *rest_at = at;
        return 1;
    }
    *db_at = (size_t)(slash - url) + 1;
    *rest_at = q ? (size_t)(q - url) : strlen(url);
    return 0;
}

static int pg_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "testlib: connect %s: %s", url, PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    PGresult *r = PQexec(c, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc)
        fprintf(stderr, "testlib: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return rc;
}

/* Creates a database named <prefix>_<hex> on the RF_TEST_DB server and
 * writes its URL into out. */
static int pg_create(const char *prefix, char *out, size_t cap)
{
    const char *base = test_db();
    char name[64], sql[128];
    rf_rand_id(prefix, name, sizeof name);
    name[strlen(prefix)] = '_';  /* "<prefix>_<hex>": a plain identifier */
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    if (pg_exec(base, sql) != 0)
        return -1;
    size_t db_at, rest_at;
    int kind = pg_url_split(base, &db_at, &rest_at);
    if (kind < 0)
        return -1;
    int n = snprintf(out, cap, "%.*s%s%s%s", (int)db_at, base, kind == 1 ? "/" : "", name,
                     base + rest_at);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int rf_test_db_fresh(char *out, size_t cap)
{
    if (!rf_test_db_is_pg())
        return sqlite_fresh(out, cap);
    return pg_create("rf_t", out, cap);
}

/* The process's own database ("rf_p_...": rf_test_db_cleanup leaves it; it
 * goes with the throwaway server). */
static pthread_mutex_t proc_db_lock = PTHREAD_MUTEX_INITIALIZER;
static char proc_db_url[600];

int rf_test_db_url(char *out, size_t cap)
{
    if (!rf_test_db_is_pg())
        return sqlite_fresh(out, cap);
    pthread_mutex_lock(&proc_db_lock);
    int rc = proc_db_url[0] ? 0 : pg_create("rf_p", proc_db_url, sizeof proc_db_url);
    pthread_mutex_unlock(&proc_db_lock);
    if (rc != 0 || (size_t)snprintf(out, cap, "%s", proc_db_url) >= cap)
        return -1;
    return 0;
}

void rf_test_db_cleanup(const char *url)
{
    if (!url || !*url)
        return;
    if (strncmp(url, "sqlite:", 7) == 0 || url[0] == '/') {
        const char *path = url[0] == '/' ? url : url + 7;
        const char *suffix[] = {"", "-wal", "-shm", "-journal"};
        for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
            char p[600];
            snprintf(p, sizeof p, "%s%s", path, suffix[i]);
            unlink(p);
        }
        return;
    }
    /* A PostgreSQL database of our own (rf_t_...): drop it; the shared one stays. */
    size_t db_at, rest_at;
    if (pg_url_split(url, &db_at, &rest_at) != 0)
        return;
    char name[128];
    size_t n = rest_at - db_at;
    if (n == 0 || n >= sizeof name)
        return;
    memcpy(name, url + db_at, n);
    name[n] = '\0';
    if (strncmp(name, "rf_t_", 5) != 0 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
        return;
    char sql[200];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    pg_exec(test_db(), sql);
}
