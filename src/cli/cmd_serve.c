/*
 * cmd_serve.c - `racefree serve`: open the store (applying migrations),
 * create the first admin key on an empty store, serve HTTP, do maintenance
 * in the background (void expired holds every few seconds, purge expired
 * Idempotency-Keys every minute), and shut down gracefully.
 *
 * Signals: SIGTERM and SIGINT are blocked before any thread exists (the
 * library's executor, the HTTP server's threads and the maintenance thread
 * inherit the mask), and main waits for them with sigwait(), so shutdown
 * runs as ordinary code: stop accepting, drain in-flight requests, stop the
 * daemon, stop maintenance, rf_close (which drains the executor), exit 0.
 */
#include <getopt.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "base/assert.h"
#include "base/limits.h"
#include "base/log.h"
#include "cli/cli.h"
#include "http/server.h"

/* Maintenance periods. Expired holds are voided within about this long of
 * their expires_at, in batches of RF_EXPIRE_BATCH_MAX (bounded rounds per
 * tick, so a backlog drains over several ticks without starving purges). */
#define SERVE_MAINT_TICK_MS 5000
#define SERVE_EXPIRE_ROUNDS_MAX 16
_Static_assert(RF_IDEM_PURGE_INTERVAL_MS % SERVE_MAINT_TICK_MS == 0,
               "purges run on a whole number of ticks");
_Static_assert(RF_MAINT_TICK_TEST_MS_MIN <= SERVE_MAINT_TICK_MS, "the default is allowed");

struct serve_args {
    const char *db;
    char host[RF_HOST_BYTES];
    int port;
    struct rf_options opt;
    size_t body_max_bytes;
    struct rf_http_config http;   /* connection handling flags only */
    int maint_tick_ms;            /* --maintenance-interval-ms, test hooks only */
    enum rf_log_level log_level;  /* --log-level: the least level logged */
};

/* Plain integer flags: option letter, name, bounds, field. */
struct int_flag {
    int c;
    const char *name;
    long min, max;
    size_t offset;                /* an int in struct serve_args */
};

#define ARG(field) offsetof(struct serve_args, field)
static const struct int_flag int_flags[] = {
    {'W', "http-workers", 1, RF_HTTP_WORKERS_MAX, ARG(http.workers)},
    {'C', "max-connections", 16, RF_HTTP_CONNS_CONFIG_MAX, ARG(http.conns_max)},
    {'P', "max-client-connections", 1, RF_HTTP_CONNS_CONFIG_MAX, ARG(http.client_conns_max)},
    {'H', "header-timeout-ms", 100, RF_HTTP_TIMEOUT_CONFIG_MS_MAX, ARG(http.header_timeout_ms)},
    {'B', "body-timeout-ms", 100, RF_HTTP_TIMEOUT_CONFIG_MS_MAX, ARG(http.body_timeout_ms)},
    {'I', "idle-timeout-ms", 100, RF_HTTP_TIMEOUT_CONFIG_MS_MAX, ARG(http.idle_timeout_ms)},
    {'p', "pool", 1, RF_POOL_CONNS_MAX, ARG(opt.pool_conns)},
    {'q', "queue-max", 1, RF_QUEUE_OPS_MAX, ARG(opt.queue_ops_max)},
    {'x', "batch-max", 1, RF_BATCH_OPS_MAX, ARG(opt.batch_ops_max)},
    {'w', "writers", 1, RF_WRITERS_MAX, ARG(opt.writers)},
};
#define INT_FLAGS (sizeof int_flags / sizeof int_flags[0])

/* 1: not an integer flag; 0: parsed; else a usage error. */
static int int_flag(int c, struct serve_args *a) {
    for (size_t i = 0; i < INT_FLAGS; i++) {
        const struct int_flag *f = &int_flags[i];
        if (f->c != c) continue;
        long v = 0;
        if (!cli_parse_long(optarg, f->min, f->max, &v))
            return cli_usage_error("serve", "--%s must be %ld..%ld", f->name, f->min, f->max);
        *(int *)((char *)a + f->offset) = (int)v;
        return 0;
    }
    return 1;
}

static int serve_flag(int c, struct serve_args *a) {
    long v = 0;
    int rc = int_flag(c, a);
    if (rc != 1) return rc;
    switch (c) {
    case 'd': a->db = optarg; return 0;
    case 'l':
        if (!rf_http_parse_listen(optarg, a->host, &a->port))
            return cli_usage_error("serve", "--listen must be HOST:PORT, got '%s'", optarg);
        return 0;
    case 's':
        if (strcmp(optarg, "full") == 0) a->opt.sync = RF_SYNC_FULL;
        else if (strcmp(optarg, "normal") == 0) a->opt.sync = RF_SYNC_NORMAL;
        else return cli_usage_error("serve", "--sync must be full or normal");
        return 0;
    case 'b':
        if (!cli_parse_long(optarg, 1, RF_BODY_BYTES_CONFIG_MAX, &v))
            return cli_usage_error("serve", "--body-max-bytes must be 1..%d",
                                   RF_BODY_BYTES_CONFIG_MAX);
        a->body_max_bytes = (size_t)v;
        return 0;
    case 'r':
        if (!cli_parse_long(optarg, 1, RF_IDEM_RETENTION_HOURS_MAX, &v))
            return cli_usage_error("serve", "--idem-retention-hours must be 1..%d",
                                   RF_IDEM_RETENTION_HOURS_MAX);
        a->opt.idem_retention_ms = (int64_t)v * 3600 * 1000;
        return 0;
    case 'm':
        if (!cli_parse_long(optarg, 1, RF_PAYOUT_MAX_ATTEMPTS_MAX, &v))
            return cli_usage_error("serve", "--payout-max-attempts must be 1..%d",
                                   RF_PAYOUT_MAX_ATTEMPTS_MAX);
        a->opt.payout_max_attempts = (int)v;
        return 0;
    case 'T':
        if (!cli_parse_long(optarg, RF_PG_TIMEOUT_MS_MIN, RF_PG_TIMEOUT_MS_MAX, &v))
            return cli_usage_error("serve", "--pg-timeout-ms must be %d..%d",
                                   RF_PG_TIMEOUT_MS_MIN, RF_PG_TIMEOUT_MS_MAX);
        a->opt.pg_timeout_ms = (int)v;
        return 0;
    case 'L':
        if (!rf_log_level_parse(optarg, &a->log_level))
            return cli_usage_error("serve", "--log-level must be debug, info, warn or error");
        return 0;
    case 't': a->opt.test_hooks = true; return 0;
    case 'R': a->http.reuse_port = true; return 0;
    case 'M':
        if (!cli_parse_long(optarg, RF_MAINT_TICK_TEST_MS_MIN, SERVE_MAINT_TICK_MS, &v))
            return cli_usage_error("serve", "--maintenance-interval-ms must be %d..%d",
                                   RF_MAINT_TICK_TEST_MS_MIN, SERVE_MAINT_TICK_MS);
        a->maint_tick_ms = (int)v;
        return 0;
    default: return cli_usage_error("serve", "bad option");
    }
}

static int serve_parse(int argc, char **argv, struct serve_args *a) {
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"sync", required_argument, NULL, 's'},
        {"body-max-bytes", required_argument, NULL, 'b'},
        {"idem-retention-hours", required_argument, NULL, 'r'},
        {"pool", required_argument, NULL, 'p'},
        {"payout-max-attempts", required_argument, NULL, 'm'},
        {"queue-max", required_argument, NULL, 'q'},
        {"batch-max", required_argument, NULL, 'x'},
        {"writers", required_argument, NULL, 'w'},
        {"pg-timeout-ms", required_argument, NULL, 'T'},
        {"log-level", required_argument, NULL, 'L'},
        {"test-hooks", no_argument, NULL, 't'},
        {"reuse-port", no_argument, NULL, 'R'},
        {"maintenance-interval-ms", required_argument, NULL, 'M'},
        {"http-workers", required_argument, NULL, 'W'},
        {"max-connections", required_argument, NULL, 'C'},
        {"max-client-connections", required_argument, NULL, 'P'},
        {"header-timeout-ms", required_argument, NULL, 'H'},
        {"body-timeout-ms", required_argument, NULL, 'B'},
        {"idle-timeout-ms", required_argument, NULL, 'I'},
        {NULL, 0, NULL, 0}};
    const char *listen = getenv("RACEFREE_LISTEN");
    if (!listen || !*listen) listen = CLI_LISTEN_DEFAULT;
    if (!rf_http_parse_listen(listen, a->host, &a->port))
        return cli_usage_error("serve", "RACEFREE_LISTEN must be HOST:PORT, got '%s'", listen);
    optind = 0;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        int rc = serve_flag(c, a);
        if (rc) return rc;
    }
    if (optind < argc) return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    /* A shorter tick exists so tests need not wait out the real one. */
    if (a->maint_tick_ms && !a->opt.test_hooks)
        return cli_usage_error("serve", "--maintenance-interval-ms needs --test-hooks");
    if (!a->maint_tick_ms) a->maint_tick_ms = SERVE_MAINT_TICK_MS;
    a->db = cli_db_url(a->db);
    return 0;
}

/* ---- Maintenance: void expired holds, purge expired Idempotency-Keys ------- */

struct maint {
    rf *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* CLOCK_MONOTONIC */
    bool stop;
    int tick_ms;        /* SERVE_MAINT_TICK_MS, or shorter under test hooks */
};

static void maint_purge(rf *db) {
    for (int round = 0; round < RF_IDEM_PURGE_ROUNDS_MAX; round++) {
        int purged = 0;
        rf_err err = rf_idem_purge(db, RF_IDEM_PURGE_BATCH, &purged);
        if (err != RF_OK) {
            rf_log_failure(err, "the purge transaction failed", "idempotency purge");
            return;
        }
        if (purged < RF_IDEM_PURGE_BATCH) return;
    }
}

/* Voids pending transfers past expires_at, RF_EXPIRE_BATCH_MAX at a time. */
static void maint_expire(rf *db) {
    for (int round = 0; round < SERVE_EXPIRE_ROUNDS_MAX; round++) {
        int voided = 0;
        rf_err err = rf_transfer_expire(db, RF_EXPIRE_BATCH_MAX, &voided);
        if (err != RF_OK) {
            rf_log_failure(err, "the expiry transaction failed", "expiring holds");
            return;
        }
        if (voided < RF_EXPIRE_BATCH_MAX) return;
    }
}

static void *maint_main(void *arg) {
    struct maint *m = arg;
    const int purge_ticks = RF_IDEM_PURGE_INTERVAL_MS / m->tick_ms;
    int tick = 0;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t ns = until.tv_nsec + (int64_t)(m->tick_ms % 1000) * 1000000;
        until.tv_sec += m->tick_ms / 1000 + (time_t)(ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        while (!m->stop && pthread_cond_timedwait(&m->cv, &m->mu, &until) == 0) {
        }
        if (m->stop) break;
        pthread_mutex_unlock(&m->mu);
        maint_expire(m->db);
        if (++tick % purge_ticks == 0) maint_purge(m->db);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static bool maint_start(struct maint *m, rf *db, int tick_ms) {
    RF_ASSERT(tick_ms >= RF_MAINT_TICK_TEST_MS_MIN && tick_ms <= SERVE_MAINT_TICK_MS);
    m->db = db;
    m->tick_ms = tick_ms;
    m->stop = false;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&m->mu, NULL);
    return pthread_create(&m->thread, NULL, maint_main, m) == 0;
}

static void maint_stop(struct maint *m) {
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
}

/* ---- Serving ----------------------------------------------------------------- */

/* The first admin key, when this start created it (shown once). */
struct boot_key {
    bool created;
    struct rf_key key;
    char secret[RF_KEY_SECRET_BYTES];
};

static void boot_key_print(struct boot_key *b, const char *host, int port) {
    if (!b->created) return;
    if (strcmp(host, "0.0.0.0") == 0) host = "127.0.0.1";
    printf("racefree: created the first admin key (id %s). It is shown once, now; store it:\n"
           "%s\n"
           "Try it:\n"
           "  curl -s -H \"Authorization: Bearer %s\" http://%s:%d/v1/keys\n",
           b->key.id, b->secret, b->secret, host, port);
    fflush(stdout);
    sodium_memzero(b->secret, sizeof b->secret);
}

/* Serves until SIGTERM/SIGINT. The first admin key exists before the server
 * accepts, and is printed before the "listening" line. */
static int serve_run(const struct serve_args *a, rf *db, const sigset_t *sigs) {
    struct boot_key boot = {0};
    rf_err err = rf_key_bootstrap(db, &boot.key, boot.secret, &boot.created);
    if (err != RF_OK) return cli_fail("creating the first admin key", err);
    char msg[256];
    struct rf_http_config cfg = a->http;
    cfg.db = db;
    cfg.host = a->host;
    cfg.port = a->port;
    cfg.body_max_bytes = a->body_max_bytes;
    cfg.test_hooks = a->opt.test_hooks;
    struct rf_http_server *srv = rf_http_start(&cfg, msg, sizeof msg);
    if (!srv) {
        rf_log(RF_LOG_ERROR, "%s", msg);
        return CLI_EXIT_FAIL;
    }
    struct maint m;
    if (!maint_start(&m, db, a->maint_tick_ms)) {
        rf_http_stop(srv);
        return cli_fail("starting maintenance", RF_ERR_NOMEM);
    }
    boot_key_print(&boot, a->host, rf_http_port(srv));
    if (a->opt.test_hooks) rf_log(RF_LOG_WARN, "test hooks are on (/v1/_test/*)");
    struct rf_log_kv kv[2] = {RF_KV_STR("store", rf_backend_name(db)),
                              RF_KV_STR("log_level", rf_log_level_name(a->log_level))};
    rf_log_kv(RF_LOG_INFO, kv, 2, "listening on http://%s:%d", a->host, rf_http_port(srv));
    int sig = 0;
    sigwait(sigs, &sig);
    rf_log(RF_LOG_INFO, "%s: stopping (draining in-flight requests)",
           sig == SIGINT ? "SIGINT" : "SIGTERM");
    rf_http_stop(srv);
    maint_stop(&m);
    return CLI_EXIT_OK;
}

int cmd_serve(int argc, char **argv) {
    struct serve_args a = {.log_level = RF_LOG_INFO};
    int rc = serve_parse(argc, argv, &a);
    if (rc) return rc;
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    int masked = pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    RF_ASSERT(masked == 0);
    signal(SIGPIPE, SIG_IGN);
    rf_log_level_set(a.log_level);
    rf *db = NULL;
    rc = cli_open(a.db, &a.opt, &db);
    if (rc) return rc;
    /* the URL may hold a password: the back end only */
    rf_log_kv(RF_LOG_INFO, &RF_KV_INT("schema_version", rf_schema_version_latest()), 1,
              "store open (%s)", rf_backend_name(db));
    rc = serve_run(&a, db, &sigs);
    rf_close(db);
    if (rc == CLI_EXIT_OK) rf_log(RF_LOG_INFO, "stopped");
    return rc;
}
