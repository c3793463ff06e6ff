/*
 * cmd_serve.c - `racefree serve`: bind the listen address first (a busy port
 * fails before anything is created), open the store (applying migrations,
 * with the library's sweep thread: expired holds voided, expired
 * Idempotency-Keys purged and expired job leases rescued every few seconds,
 * rf_options.sweep_interval_ms),
 * create the first admin key on an empty store (or say how to make one when
 * the store has keys), serve HTTP, and shut down gracefully.
 *
 * Signals: SIGTERM and SIGINT are blocked before any thread exists (the
 * library's executor and sweep thread and the HTTP server's threads inherit
 * the mask), and main waits for them with sigwait(), so shutdown runs as
 * ordinary code: stop accepting, drain in-flight requests, stop the daemon,
 * rf_close (which stops the sweeps and drains the executor), exit 0. */
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "base/assert.h"
#include "base/limits.h"
#include "base/log.h"
#include "cli/cli.h"
#include "core/schedule.h"
#include "http/server.h"

/* The sweeps' period (rf_options.sweep_interval_ms: the library's sweep
 * thread voids expired holds and purges expired Idempotency-Keys): expired
 * holds are voided within about this long of their expires_at. */
#define SERVE_MAINT_TICK_MS 5000
_Static_assert(RF_MAINT_TICK_TEST_MS_MIN <= SERVE_MAINT_TICK_MS, "the default is allowed");

struct serve_args {
    struct cli_store store;
    char host[RF_HOST_BYTES];
    int port;
    struct rf_options opt;
    int body_max_bytes;
    int idem_retention_hours;
    int lease_max_ttl_ms;         /* --lease-max-ttl-ms */
    struct rf_http_config http;   /* connection handling flags only */
    int maint_tick_ms;            /* --maintenance-interval-ms, test hooks only */
    enum rf_log_level log_level;  /* --log-level: the least level logged */
    struct sched_spec schedules[RF_SCHEDULES_MAX]; /* --schedule, in the order given */
    int n_schedules;
    int fanout_chunk;             /* --fanout-chunk: recipients per fan-out transaction */
};

static int set_listen(const struct cli_flag *f, void *args, const char *value) {
    struct serve_args *a = args;
    (void)f;
    if (!rf_http_parse_listen(value, a->host, &a->port))
        return cli_usage_error("serve", "--listen must be HOST:PORT, got '%s'", value);
    return 0;
}

static int set_sync(const struct cli_flag *f, void *args, const char *value) {
    struct serve_args *a = args;
    (void)f;
    if (strcmp(value, "full") == 0) a->opt.sync = RF_SYNC_FULL;
    else if (strcmp(value, "normal") == 0) a->opt.sync = RF_SYNC_NORMAL;
    else return cli_usage_error("serve", "--sync must be full or normal, got '%s'", value);
    return 0;
}

static int set_log_level(const struct cli_flag *f, void *args, const char *value) {
    struct serve_args *a = args;
    (void)f;
    if (!rf_log_level_parse(value, &a->log_level))
        return cli_usage_error("serve", "--log-level must be debug, info, warn or error, got '%s'",
                               value);
    return 0;
}

/* --schedule SPEC (repeatable): parsed here, so a bad one exits 2 before
 * anything is bound or opened. */
static int add_schedule(const struct cli_flag *f, void *args, const char *value) {
    struct serve_args *a = args;
    (void)f;
    char why[256];
    if (a->n_schedules == RF_SCHEDULES_MAX)
        return cli_usage_error("serve", "at most %d --schedule flags", RF_SCHEDULES_MAX);
    struct sched_spec *sp = &a->schedules[a->n_schedules];
    if (!sched_spec_parse(value, sp, why, sizeof why))
        return cli_usage_error("serve", "--schedule '%s': %s", value, why);
    for (int i = 0; i < a->n_schedules; i++)
        if (strcmp(a->schedules[i].name, sp->name) == 0)
            return cli_usage_error("serve", "--schedule '%s': a schedule named '%s' is "
                                   "already given ('%s')", value, sp->name,
                                   a->schedules[i].text);
    a->n_schedules++;
    return 0;
}

/* --rate-limit ROLE=N/PERIOD (repeatable, one per role): parsed here, so a
 * bad one exits 2 before anything is bound or opened. */
static int add_rate_limit(const struct cli_flag *f, void *args, const char *value) {
    struct serve_args *a = args;
    (void)f;
    char role[16], why[160];
    size_t n = strcspn(value, "=");
    enum rf_role r;
    if (value[n] != '=' || n >= sizeof role)
        return cli_usage_error("serve", "--rate-limit must be ROLE=N/PERIOD, got '%s'", value);
    memcpy(role, value, n);
    role[n] = '\0';
    if (!rf_role_parse(role, &r))
        return cli_usage_error("serve", "--rate-limit '%s': ROLE must be admin, service, worker "
                               "or readonly", value);
    struct rf_rate_limit *l = &a->http.role_limits[__builtin_ctz((unsigned)r)];
    if (l->quota)
        return cli_usage_error("serve", "--rate-limit '%s': role %s has a limit already", value,
                               role);
    if (!rf_rate_limit_parse(value + n + 1, l, why, sizeof why))
        return cli_usage_error("serve", "--rate-limit: %s", why);
    return 0;
}

static int set_unauth_limit(const struct cli_flag *f, void *args, const char *value) {
    struct serve_args *a = args;
    char why[160];
    (void)f;
    a->http.unauth_off = strcmp(value, "off") == 0;
    if (!a->http.unauth_off && !rf_rate_limit_parse(value, &a->http.unauth_limit, why, sizeof why))
        return cli_usage_error("serve", "--unauth-rate-limit: %s (or off)", why);
    return 0;
}

/* serve's flags: one row each (name, value, description, default, parser,
 * field, bounds, hidden). A new flag is a new row; --help lists it. */
#define ARG(field) offsetof(struct serve_args, field)
static const struct cli_flag serve_flags[] = {
    CLI_STORE_FLAGS(struct serve_args),
    {"listen", "HOST:PORT", "the address to serve HTTP on (an IPv4 address or localhost; "
     "port 0: any free port)", "$RACEFREE_LISTEN, else " CLI_LISTEN_DEFAULT, 0, set_listen, 0,
     0, 0, false},
    {"sync", "full|normal", "SQLite: fsync every commit (full) or let the last commits before "
     "a power loss be lost (normal)", "full", 0, set_sync, 0, 0, 0, false},
    {"body-max-bytes", "N", "the largest request body accepted", NULL, RF_BODY_BYTES_MAX,
     cli_set_int, ARG(body_max_bytes), 1, RF_BODY_BYTES_CONFIG_MAX, false},
    {"idem-retention-hours", "N", "how long an Idempotency-Key's answer is kept for replay",
     NULL, RF_IDEM_RETENTION_MS / 3600000, cli_set_int, ARG(idem_retention_hours), 1,
     RF_IDEM_RETENTION_HOURS_MAX, false},
    {"payout-max-attempts", "N", "failed attempts after which a payout fails", NULL,
     RF_PAYOUT_MAX_ATTEMPTS_DEFAULT, cli_set_int, ARG(opt.payout_max_attempts), 1,
     RF_PAYOUT_MAX_ATTEMPTS_MAX, false},
    {"lease-max-ttl-ms", "N", "the longest ttl_ms a lease acquire or renew may ask", NULL,
     RF_LEASE_TTL_MS_MAX_DEFAULT, cli_set_int, ARG(lease_max_ttl_ms), 1, RF_LEASE_TTL_MS_LIMIT,
     false},
    {"pool", "N", "PostgreSQL: connections in the pool", NULL, RF_POOL_CONNS_DEFAULT,
     cli_set_int, ARG(opt.pool_conns), 1, RF_POOL_CONNS_MAX, false},
    {"pg-timeout-ms", "N", "PostgreSQL: the bound on each wait (connect, statement, COMMIT, "
     "pool)", NULL, RF_PG_TIMEOUT_MS, cli_set_int, ARG(opt.pg_timeout_ms),
     RF_PG_TIMEOUT_MS_MIN, RF_PG_TIMEOUT_MS_MAX, false},
    {"queue-max", "N", "operations waiting for a writer before 503 overloaded", NULL,
     RF_QUEUE_OPS_MAX, cli_set_int, ARG(opt.queue_ops_max), 1, RF_QUEUE_OPS_MAX, false},
    {"batch-max", "N", "operations committed together in one transaction",
     RF_STR(RF_BATCH_OPS_MAX) " on SQLite, " RF_STR(RF_PG_BATCH_OPS_MAX) " on PostgreSQL", 0,
     cli_set_int, ARG(opt.batch_ops_max), 1, RF_BATCH_OPS_MAX, false},
    {"writers", "N", "PostgreSQL: threads committing batches, each on its own connection",
     NULL, RF_WRITERS_DEFAULT, cli_set_int, ARG(opt.writers), 1, RF_WRITERS_MAX, false},
    {"http-workers", "N", "HTTP handler threads", NULL, RF_HTTP_WORKERS_DEFAULT, cli_set_int,
     ARG(http.workers), 1, RF_HTTP_WORKERS_MAX, false},
    {"max-connections", "N", "open client connections (the oldest idle one is closed past "
     "it)", NULL, RF_HTTP_CONNS_MAX, cli_set_int, ARG(http.conns_max), 16,
     RF_HTTP_CONNS_CONFIG_MAX, false},
    {"max-client-connections", "N", "open connections per client IP address", NULL,
     RF_HTTP_CLIENT_CONNS_MAX, cli_set_int, ARG(http.client_conns_max), 1,
     RF_HTTP_CONNS_CONFIG_MAX, false},
    {"header-timeout-ms", "N", "time to send a request's whole header section", NULL,
     RF_HTTP_HEADER_TIMEOUT_MS, cli_set_int, ARG(http.header_timeout_ms), 100,
     RF_HTTP_TIMEOUT_CONFIG_MS_MAX, false},
    {"body-timeout-ms", "N", "time to send a request's whole body", NULL,
     RF_HTTP_BODY_TIMEOUT_MS, cli_set_int, ARG(http.body_timeout_ms), 100,
     RF_HTTP_TIMEOUT_CONFIG_MS_MAX, false},
    {"idle-timeout-ms", "N", "how long a keep-alive connection may idle between requests",
     NULL, RF_HTTP_IDLE_TIMEOUT_MS, cli_set_int, ARG(http.idle_timeout_ms), 100,
     RF_HTTP_TIMEOUT_CONFIG_MS_MAX, false},
    {"webhook-tolerance-s", "N", "how far a webhook signature's timestamp may be from now, "
     "either way", NULL, RF_WEBHOOK_TOLERANCE_S_DEFAULT, cli_set_int,
     ARG(http.webhook_tolerance_s), 1, RF_WEBHOOK_TOLERANCE_S_MAX, false},
    {"log-level", "debug|info|warn|error", "the least level logged (debug also logs /healthz, "
     "/readyz and /metrics)", "info", 0, set_log_level, 0, 0, 0, false},
    {"rate-limit", "ROLE=N/PERIOD", "limit each key of ROLE to N requests per PERIOD (ms, s, m "
     "or h) per route class (read: GET; write: the rest), shared by every server on the store; "
     "repeatable, one per role; a key's own keys create --rate-limit overrides it", "none", 0,
     add_rate_limit, 0, 0, 0, false},
    {"unauth-rate-limit", "N/PERIOD|off", "requests without a valid API key accepted per client "
     "IP address by this process (more get 429 rate_limited)", RF_UNAUTH_RATE_DEFAULT, 0,
     set_unauth_limit, 0, 0, 0, false},
    {"schedule", "SPEC", "run a task every interval, once across every server on the store "
     "(repeatable): payouts[:CUR[:MIN]]@INTERVAL, INTERVAL like 500ms, 30s, 10m, 1h, 1d",
     "none", 0, add_schedule, 0, 0, 0, false},
    {"fanout-chunk", "N", "announcement fan-out: recipients delivered per transaction", NULL,
     RF_FANOUT_CHUNK_DEFAULT, cli_set_int, ARG(fanout_chunk), 1, RF_FANOUT_CHUNK_MAX, false},
    {"reuse-port", NULL, "SO_REUSEPORT: several racefree processes share one port", "off", 0,
     cli_set_true, ARG(http.reuse_port), 0, 0, false},
    /* Tests only: fault injection routes and a short maintenance tick. */
    {"test-hooks", NULL, "serve /v1/_test/* (tests only)", NULL, 0, cli_set_true,
     ARG(opt.test_hooks), 0, 0, true},
    {"maintenance-interval-ms", "N", "maintenance tick (needs --test-hooks)", NULL,
     SERVE_MAINT_TICK_MS, cli_set_int, ARG(maint_tick_ms), RF_MAINT_TICK_TEST_MS_MIN,
     SERVE_MAINT_TICK_MS, true},
};

static const struct cli_spec serve_spec = {
    "serve", "",
    "Serves the HTTP API. Binds the listen address first (a busy port changes nothing),\n"
    "then opens the store (creating a SQLite file and applying migrations), creates the\n"
    "first admin key on an empty store and prints it once, and serves until SIGTERM or\n"
    "SIGINT (then drains in-flight requests and exits 0).",
    serve_flags, sizeof serve_flags / sizeof serve_flags[0]};

static int serve_parse(int argc, char **argv, struct serve_args *a) {
    const char *listen = getenv("RACEFREE_LISTEN");
    if (!listen || !*listen) listen = CLI_LISTEN_DEFAULT;
    if (!rf_http_parse_listen(listen, a->host, &a->port))
        return cli_usage_error("serve", "RACEFREE_LISTEN must be HOST:PORT, got '%s'", listen);
    int first = 0;
    int rc = cli_parse(&serve_spec, argc, argv, a, &first);
    if (rc) return rc;
    if (first < argc) return cli_usage_error("serve", "unexpected argument '%s'", argv[first]);
    /* A shorter tick exists so tests need not wait out the real one. */
    if (a->maint_tick_ms && !a->opt.test_hooks)
        return cli_usage_error("serve", "--maintenance-interval-ms needs --test-hooks");
    if (!a->maint_tick_ms) a->maint_tick_ms = SERVE_MAINT_TICK_MS;
    a->opt.sweep_interval_ms = a->maint_tick_ms;
    a->opt.lease_max_ttl_ms = a->lease_max_ttl_ms;
    if (a->idem_retention_hours)
        a->opt.idem_retention_ms = (int64_t)a->idem_retention_hours * 3600 * 1000;
    return 0;
}

/* ---- Serving ----------------------------------------------------------------- */

/* The first admin key, when this start created it (shown once). */
struct boot_key {
    bool created;
    struct rf_key key;
    char secret[RF_KEY_SECRET_BYTES];
};

/* The store's URL as a copyable --db value without its password
 * (postgres://user:SECRET@host -> postgres://user:PASSWORD@host). */
static void url_redacted(const char *url, char *out, size_t cap) {
    const char *auth = strstr(url, "://");
    const char *at = auth ? strchr(auth + 3, '@') : NULL;
    const char *slash = auth ? strchr(auth + 3, '/') : NULL;
    const char *colon = auth ? strchr(auth + 3, ':') : NULL;
    if (at && (!slash || at < slash) && colon && colon < at)
        snprintf(out, cap, "%.*sPASSWORD%s", (int)(colon + 1 - url), url, at);
    else snprintf(out, cap, "%s", url);
}

/* Shown once: the key, a curl line to copy, and the shell variables the
 * README's examples use. Without a new key: how to make one (the store's
 * first admin key was shown by the start that created it). */
static void boot_key_print(struct boot_key *b, const struct serve_args *a, int port) {
    const char *host = strcmp(a->host, "0.0.0.0") == 0 ? "127.0.0.1" : a->host;
    if (!b->created) {
        /* Not a secret, so a log line (stderr, JSON) like every other. */
        char url[RF_DB_URL_BYTES], cmd[RF_DB_URL_BYTES + 2 * RF_PG_SCHEMA_CHARS_MAX];
        url_redacted(cli_db_url(a->store.db), url, sizeof url);
        snprintf(cmd, sizeof cmd, "racefree keys create --db '%s'%s%s --role admin", url,
                 a->store.schema ? " --schema " : "", a->store.schema ? a->store.schema : "");
        rf_log_kv(RF_LOG_INFO, &RF_KV_STR("command", cmd), 1,
                  "this store already has API keys (its first admin key was shown when it was "
                  "created); to make another admin key: %s", cmd);
        return;
    }
    printf("racefree: created the first admin key (id %s). It is shown once, now; store it:\n"
           "%s\n"
           "Try it:\n"
           "  curl -s -H \"Authorization: Bearer %s\" http://%s:%d/v1/keys\n"
           "For the README's examples:\n"
           "  export BASE=http://%s:%d KEY=%s\n",
           b->key.id, b->secret, b->secret, host, port, host, port, b->secret);
    fflush(stdout);
    sodium_memzero(b->secret, sizeof b->secret);
}

/* Serves on lfd until SIGTERM/SIGINT. The first admin key exists before the
 * server accepts, and is printed before the "listening" line. */
static int serve_run(const struct serve_args *a, rf *db, int lfd, const sigset_t *sigs) {
    struct boot_key boot = {0};
    rf_err err = rf_key_bootstrap(db, &boot.key, boot.secret, &boot.created);
    if (err != RF_OK) {
        close(lfd);
        return cli_fail("creating the first admin key", err);
    }
    char msg[256];
    struct rf_http_config cfg = a->http;
    cfg.db = db;
    cfg.host = a->host;
    cfg.port = a->port;
    cfg.body_max_bytes = (size_t)a->body_max_bytes;
    cfg.test_hooks = a->opt.test_hooks;
    err = scheduler_start(db, a->schedules, a->n_schedules, &cfg.scheduler);
    if (err != RF_OK) {
        close(lfd);
        return cli_fail("starting the scheduler", err);
    }
    struct rf_fanout *fanout = NULL;
    err = rf_fanout_start(db, a->fanout_chunk, &fanout);
    if (err != RF_OK) {
        scheduler_free(cfg.scheduler);
        close(lfd);
        return cli_fail("starting the announcement fan-out", err);
    }
    struct rf_http_server *srv = rf_http_start(&cfg, lfd, msg, sizeof msg);
    if (!srv) {
        rf_fanout_stop(fanout);
        scheduler_free(cfg.scheduler);
        rf_log(RF_LOG_ERROR, "%s", msg);
        return CLI_EXIT_FAIL;
    }
    for (int i = 0; i < a->n_schedules; i++)
        rf_log_kv(RF_LOG_INFO, &RF_KV_STR("schedule", a->schedules[i].name), 1,
                  "schedule %s: every %lld ms", a->schedules[i].text,
                  (long long)a->schedules[i].interval_ms);
    boot_key_print(&boot, a, rf_http_port(srv));
    if (a->opt.test_hooks) rf_log(RF_LOG_WARN, "test hooks are on (/v1/_test/*)");
    struct rf_log_kv kv[2] = {RF_KV_STR("store", rf_backend_name(db)),
                              RF_KV_STR("log_level", rf_log_level_name(a->log_level))};
    rf_log_kv(RF_LOG_INFO, kv, 2, "listening on http://%s:%d", a->host, rf_http_port(srv));
    int sig = 0;
    sigwait(sigs, &sig);
    rf_log(RF_LOG_INFO, "%s: stopping (draining in-flight requests)",
           sig == SIGINT ? "SIGINT" : "SIGTERM");
    /* The scheduler first (it finishes the run it is in, starts no other),
     * while HTTP still answers; then HTTP drains, its schedule triggers
     * included, and only then is the scheduler they use freed. The fan-out
     * after the drain (nothing on HTTP waits for it, and its chunk in flight
     * must not delay the refusal of new requests): it finishes its chunk
     * and gives its job back before the store closes. */
    scheduler_stop(cfg.scheduler);
    rf_http_stop(srv);
    rf_fanout_stop(fanout);
    scheduler_free(cfg.scheduler);
    return CLI_EXIT_OK;
}

/* Order: flags, then the listen address (a busy port fails before the
 * store or any key exists), then the store, then the first admin key. */
int cmd_serve(int argc, char **argv) {
    struct serve_args a = {.log_level = RF_LOG_INFO};
    int rc = serve_parse(argc, argv, &a);
    if (rc) return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    cli_log_json(); /* from here on, every line serve writes is a log line */
    char url[RF_DB_URL_BYTES], msg[256];
    rc = cli_store_url("serve", &a.store, false, url, sizeof url);
    if (rc) return rc;
    int lfd = rf_http_listen(a.host, a.port, a.http.reuse_port, msg, sizeof msg);
    if (lfd < 0) {
        rf_log(RF_LOG_ERROR, "%s", msg);
        return CLI_EXIT_FAIL;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    int masked = pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    RF_ASSERT(masked == 0);
    signal(SIGPIPE, SIG_IGN);
    rf_log_level_set(a.log_level);
    rf *db = NULL;
    rc = cli_store_open("serve", &a.store, false, &a.opt, &db);
    if (rc) {
        close(lfd);
        return rc;
    }
    /* the URL may hold a password: the back end only */
    rf_log_kv(RF_LOG_INFO, &RF_KV_INT("schema_version", rf_schema_version_latest()), 1,
              "store open (%s)", rf_backend_name(db));
    rc = serve_run(&a, db, lfd, &sigs);
    rf_close(db);
    if (rc == CLI_EXIT_OK) rf_log(RF_LOG_INFO, "stopped");
    return rc;
}
