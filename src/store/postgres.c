/*
 * postgres.c - the PostgreSQL back end of store_ops (libpq).
 *
 * This file owns one libpq connection per struct store_conn and everything
 * that is PostgreSQL-specific below the store interface:
 *
 *  - Parameters go over the wire as text with no declared types, so the
 *    server infers each $N from its use in the statement; that is what lets
 *    one SQL text serve SQLite and PostgreSQL. A parameter the text does not
 *    use (SQLite ignores those) is declared text, as PostgreSQL cannot infer
 *    a type for it.
 *  - Each SQL text is prepared once per connection (named "rf_s<N>") and then
 *    only executed: planning is paid once, not per call. The cache is keyed by
 *    the text's address (flows pass static strings) and checked against a
 *    private copy, so a reused buffer holding other text is never confused
 *    with a cached one. A full cache falls back to unprepared execution.
 *  - SQLSTATE codes are mapped to rf_err as store.h requires. Only
 *    unexpected errors are logged, and never with parameter values.
 *  - Results are fetched whole (PGresult); flows bound their row counts with
 *    LIMIT, so a cursor is an index into that result.
 *  - Every wait is bounded by the connection's timeout (rf_options
 *    .pg_timeout_ms): connecting, each statement and COMMIT. libpq's blocking
 *    calls would wait forever on a frozen server (SIGSTOP, a partition: on
 *    loopback the kernel still accepts and ACKs), so statements are sent with
 *    the asynchronous API and the socket is polled against a client-side
 *    deadline. A connection whose deadline passed is dead: it is never reused
 *    (the executor drops it). The server's statement_timeout is set a little
 *    below the client's deadline, so a merely slow server answers a definite
 *    error first and the connection survives.
 *  - A lost COMMIT is resolved, never guessed: a write transaction learns its
 *    id with its BEGIN (no extra round trip), and when the answer to COMMIT
 *    is lost (connection broken or deadline passed after COMMIT was sent), a
 *    fresh connection asks pg_xact_status() for it: committed -> RF_OK, as if
 *    the answer had arrived; aborted -> RF_ERR_UNAVAILABLE (changed nothing);
 *    not learnable within the bound -> RF_ERR_OUTCOME_UNKNOWN (may have
 *    committed).
 *  - A statement whose result nobody reads (exec_later: an INSERT of
 *    history, a record) is sent inside a transaction in libpq's pipeline
 *    mode and not waited for. The next synchronous call sends its own
 *    statement in the same pipeline, then a Sync, and reads every result in
 *    order: one round trip for all of them. The first error among them is
 *    the call's answer (the server skips what follows an error until the
 *    Sync: PGRES_PIPELINE_ABORTED, not run), mapped as any statement's. A
 *    statement's first use on a connection still prepares it in a round trip
 *    of its own (the queue is settled first), so a prepare never sits in a
 *    pipeline that may abort it.
 *
 * A store_conn is used by one thread at a time (the executor's pool hands it
 * out); this file keeps no mutable global state.
 */
#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/limits.h"
#include "base/log.h"
#include "store/store.h"

/* Open addressing at load <= 1/2 keeps probe chains short. */
#define PG_SLOTS (2 * RF_STMT_CACHE_MAX)
_Static_assert((PG_SLOTS & (PG_SLOTS - 1)) == 0, "PG_SLOTS must be a power of two");

#define PG_STMT_NAME_BYTES 16 /* "rf_s" + up to 11 digits */
#define PG_INT_TEXT_BYTES RF_I64_TEXT_BYTES
#define PG_CMD_BYTES 64       /* "SET idle_in_transaction_session_timeout = <int>" */
#define PG_LOG_SQL_CHARS 160  /* SQL text shown in an error log line */
#define PG_XID_TEXT_BYTES 24  /* an xid8 as text: up to 20 digits */
#define PG_RESULTS_MAX 1024   /* results of one sent query string: a migration script's statements */

#define PG_TEXT_OID 25        /* pg_type oid of text: fixed in the catalog */

struct pg_stmt {
    const char *key; /* the caller's pointer; NULL: empty slot */
    char *text;      /* private copy, to verify a pointer match */
    int n_params;
    int id;          /* prepared as "rf_s<id>" */
    char name[PG_STMT_NAME_BYTES]; /* that name, kept: not formatted per statement */
};

/* A statement sent in pipeline mode whose result is not read yet. */
struct pg_queued {
    const char *sql;   /* its text (static), for the log */
    store_later_fn fn; /* given its first row; NULL: nobody reads it */
    void *ctx;
};

struct store_conn {
    PGconn *pg;
    char *url;        /* to open the fresh connection that resolves a lost COMMIT */
    int timeout_ms;   /* bound on each wait: connect, statement, COMMIT */
    bool readonly;    /* kept for the interface; PostgreSQL uses one pool */
    bool dead;        /* a deadline passed: the protocol state is unknown, never reuse */
    bool fail_commit; /* test hook: cut the connection before the next COMMIT */
    bool lose_reply;  /* test hook: lose the answer to the next COMMIT */
    bool serializable; /* test hook: the next write transaction at SERIALIZABLE */
    bool batch;        /* the next write transaction is a batch (bounded lock waits) */
    char xid[PG_XID_TEXT_BYTES]; /* the open write transaction's id; "" if none */
    int n_queued;     /* exec_later statements sent in pipeline mode, results unread;
                         > 0 exactly while c is in pipeline mode */
    struct pg_queued queued[RF_PG_QUEUED_MAX];
    int n_stmts;      /* prepared so far, <= RF_STMT_CACHE_MAX */
    struct pg_stmt slots[PG_SLOTS];
};

struct store_rows {
    PGresult *res;
    int row; /* -1 before the first rows_next */
    int n_rows;
    int n_cols;
};

/* Parameter texts for one call; ints are rendered into ints[]. */
struct pg_params {
    const char *values[RF_SQL_PARAMS_MAX];
    char ints[RF_SQL_PARAMS_MAX][PG_INT_TEXT_BYTES];
};

/* ---- errors ---------------------------------------------------------- */

static bool sqlstate_is(const char *state, const char *prefix) {
    return strncmp(state, prefix, strlen(prefix)) == 0;
}

/* libpq's message about the connection, on one line. */
static void pg_cause(const PGconn *pg, char *out, size_t cap) {
    rf_strcpy(out, cap, pg ? PQerrorMessage(pg) : "no connection");
    for (char *s = out; *s; s++)
        if (*s == '\n' || *s == '\r') *s = (s[1] ? ' ' : '\0');
    if (!out[0]) rf_strcpy(out, cap, "connection lost");
}

/* Messages of data exceptions (22) and raised exceptions (P0) can quote
 * values; only the SQLSTATE of those is logged. */
static void log_internal(const PGresult *res, const char *state, const char *what) {
    /* The primary message only: DETAIL lines quote key values. */
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (!msg) msg = "(no message)";
    if (sqlstate_is(state, "22") || sqlstate_is(state, "P0")) msg = "(withheld: may quote values)";
    char cause[RF_LOG_VALUE_CHARS_MAX];
    snprintf(cause, sizeof cause, "SQLSTATE %s: %s", state, msg);
    rf_log_failure(RF_ERR_INTERNAL, cause, "postgres: %.*s", PG_LOG_SQL_CHARS, what);
}

static rf_err map_sqlstate(const char *s) {
    if (sqlstate_is(s, "23")) return RF_ERR_CONFLICT; /* unique, check, fk, not null */
    /* 55P03: a lock wait past a batch's lock_timeout (pg_batch_next_begin) */
    if (!strcmp(s, "40001") || !strcmp(s, "40P01") || !strcmp(s, "55P03")) return RF_ERR_RETRY;
    /* 57014: the server's statement_timeout (set below the client's deadline) */
    if (sqlstate_is(s, "08") || sqlstate_is(s, "53") || !strcmp(s, "57014") ||
        !strcmp(s, "57P01") ||
        !strcmp(s, "57P02") || !strcmp(s, "57P03"))
        return RF_ERR_UNAVAILABLE;
    return RF_ERR_INTERNAL;
}

/* Maps a result to rf_err; what is the SQL text (or command) for the log. */
static rf_err check_result(PGconn *pg, const PGresult *res, const char *what) {
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return RF_OK;
    if (PQstatus(pg) != CONNECTION_OK) {
        char cause[RF_LOG_VALUE_CHARS_MAX];
        pg_cause(pg, cause, sizeof cause);
        rf_log_failure(RF_ERR_UNAVAILABLE, cause, "postgres: %.*s", PG_LOG_SQL_CHARS, what);
        return RF_ERR_UNAVAILABLE;
    }
    if (!res) return RF_ERR_NOMEM; /* libpq returns NULL only when out of memory */
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (!state) state = "XX000"; /* a client-side error has no SQLSTATE */
    rf_err err = map_sqlstate(state);
    if (err == RF_ERR_INTERNAL) log_internal(res, state, what);
    return err;
}

/* ---- bounded waits --------------------------------------------------- */

/* Waits until the socket is ready for events; false when the deadline (a
 * rf_mono_ms() time) passed first or the socket failed. */
static bool wait_socket(int fd, short events, int64_t deadline_ms) {
    if (fd < 0) return false;
    for (;;) { /* bounded by the deadline; EINTR only restarts the wait */
        int64_t left = deadline_ms - rf_mono_ms();
        if (left <= 0) return false;
        struct pollfd pfd = {.fd = fd, .events = events, .revents = 0};
        int rc = poll(&pfd, 1, (int)left);
        if (rc > 0) return true; /* POLLERR/POLLHUP too: libpq reads the error */
        if (rc < 0 && errno != EINTR) return false;
    }
}

/* Marks c dead after a deadline: its protocol state is unknown (a query may
 * still be in flight), so it is never used again; broken() reports it. */
static void conn_dead(struct store_conn *c, const char *what) {
    if (!c->dead)
        rf_log_failure(RF_ERR_UNAVAILABLE, "no answer within the timeout: connection dropped",
                       "postgres: %.*s (%d ms)", PG_LOG_SQL_CHARS, what, c->timeout_ms);
    c->dead = true;
}

/* Sends what libpq has buffered and waits until a result can be read without
 * blocking; false when the deadline passed. A broken connection returns true:
 * libpq then hands out the error as a result. */
static bool await_result(PGconn *pg, int64_t deadline_ms) {
    for (;;) { /* bounded by the deadline */
        int f = PQflush(pg);
        if (f < 0) return true;
        if (f == 0) break;
        if (!wait_socket(PQsocket(pg), POLLOUT | POLLIN, deadline_ms)) return false;
        if (!PQconsumeInput(pg)) return true;
    }
    while (PQisBusy(pg)) { /* bounded by the deadline */
        if (!wait_socket(PQsocket(pg), POLLIN, deadline_ms)) return false;
        if (!PQconsumeInput(pg)) return true;
    }
    return true;
}

/* Reads one query's results, up to the NULL that ends them; *out gets the
 * deciding one (the first error's, else the last one; may be NULL) to
 * PQclear. After the deadline c is dead and the error RF_ERR_UNAVAILABLE.
 * In a pipeline, a statement the server skipped after an earlier error
 * (PGRES_PIPELINE_ABORTED) reports RF_ERR_INTERNAL unlogged (that earlier
 * error always comes first), and a connection that broke meanwhile is
 * RF_ERR_UNAVAILABLE. */
static rf_err results_read(struct store_conn *c, int64_t deadline, const char *what,
                           bool pipelined, PGresult **out) {
    *out = NULL;
    rf_err err = RF_OK;
    for (int i = 0; i < PG_RESULTS_MAX; i++) {
        if (!await_result(c->pg, deadline)) {
            conn_dead(c, what);
            PQclear(*out);
            *out = NULL;
            return RF_ERR_UNAVAILABLE;
        }
        PGresult *res = PQgetResult(c->pg);
        if (!res) return err;
        if (err) {
            PQclear(res); /* the first error decides */
            continue;
        }
        PQclear(*out);
        *out = res;
        bool skipped = pipelined && PQresultStatus(res) == PGRES_PIPELINE_ABORTED;
        err = skipped ? RF_ERR_INTERNAL : check_result(c->pg, res, what);
        if (pipelined && PQstatus(c->pg) != CONNECTION_OK) return RF_ERR_UNAVAILABLE;
    }
    RF_ASSERT(!"more results than PG_RESULTS_MAX for one query string");
    return RF_ERR_INTERNAL;
}

/* Collects the results of the query string just sent (sent: the PQsend*
 * return), within c's timeout. Returns the first error, else RF_OK; *out gets
 * the deciding result (the first error's, else the last one; may be NULL) to
 * PQclear. After a deadline c is dead and the error is RF_ERR_UNAVAILABLE. */
static rf_err round_trip(struct store_conn *c, int sent, const char *what, PGresult **out) {
    *out = NULL;
    if (!sent) return check_result(c->pg, NULL, what);
    return results_read(c, rf_mono_ms() + c->timeout_ms, what, false, out);
}

static rf_err pipe_commands(struct store_conn *c, const char *const *cmds, int n);

/* Runs a parameterless command (BEGIN, COMMIT, SAVEPOINT ...); after queued
 * statements, in their pipeline (then cmd must be one statement). */
static rf_err run_command(struct store_conn *c, const char *cmd) {
    if (c->dead) return RF_ERR_UNAVAILABLE;
    if (c->n_queued) return pipe_commands(c, &cmd, 1);
    PGresult *res = NULL;
    rf_err err = round_trip(c, PQsendQuery(c->pg, cmd), cmd, &res);
    PQclear(res);
    return err;
}

/* Notices (e.g. "there is no transaction in progress" after a failed COMMIT,
 * "relation already exists, skipping") carry nothing the library acts on. */
static void ignore_notice(void *arg, const char *message) {
    (void)arg;
    (void)message;
}

/* ---- connections ----------------------------------------------------- */

/* Connects with libpq's non-blocking API, so the whole handshake (TCP, the
 * startup packet, authentication) is bounded by timeout_ms: a frozen server
 * still accepts TCP connections but never answers the startup packet. */
static rf_err open_pg(const char *url, int timeout_ms, PGconn **out) {
    char connect_s[PG_INT_TEXT_BYTES], user_ms[PG_INT_TEXT_BYTES];
    snprintf(connect_s, sizeof connect_s, "%d", (timeout_ms + 999) / 1000);
    snprintf(user_ms, sizeof user_ms, "%d", timeout_ms);
    /* Later entries override earlier ones: the url may set its own
     * connect_timeout and tcp_user_timeout (which bound unacknowledged data
     * on a real partition), but the encoding is always UTF-8. */
    const char *const keys[] = {"connect_timeout", "tcp_user_timeout", "application_name",
                                "dbname", "client_encoding", NULL};
    const char *const vals[] = {connect_s, user_ms, "racefree", url, "UTF8", NULL};
    *out = NULL;
    PGconn *pg = PQconnectStartParams(keys, vals, 1);
    if (!pg) return RF_ERR_NOMEM;
    int64_t deadline = rf_mono_ms() + timeout_ms;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (PQstatus(pg) != CONNECTION_BAD && st != PGRES_POLLING_OK) { /* bounded by deadline */
        if (st == PGRES_POLLING_FAILED) break;
        short ev = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        if (!wait_socket(PQsocket(pg), ev, deadline)) break;
        st = PQconnectPoll(pg);
    }
    if (st != PGRES_POLLING_OK || PQstatus(pg) != CONNECTION_OK) {
        /* libpq's reason (refused, unknown host, authentication, timed
         * out...): what an operator needs; it never holds the password. */
        const char *why = PQstatus(pg) == CONNECTION_BAD ? PQerrorMessage(pg) : "";
        size_t n = strlen(why);
        while (n > 0 && (why[n - 1] == '\n' || why[n - 1] == ' ')) n--;
        char cause[RF_LOG_LINE_BYTES_MAX / 2];
        snprintf(cause, sizeof cause, "%.*s", (int)n,
                 n ? why : "no answer within the connect timeout (--pg-timeout-ms)");
        rf_log_failure(RF_ERR_UNAVAILABLE, cause, "postgres: cannot connect");
        PQfinish(pg);
        return RF_ERR_UNAVAILABLE;
    }
    *out = pg;
    return RF_OK;
}

/* The server cancels a statement a little before the client gives up, so a
 * slow (not frozen) server answers a definite error on a live connection.
 * It also ends a transaction left idle by a racefree process that stopped
 * (frozen, partitioned) mid-transaction: an open write transaction holds
 * its row locks and holds back every list (core/listing.h) until it ends. */
static rf_err set_server_timeout(struct store_conn *c) {
    char cmd[PG_CMD_BYTES];
    int ms = c->timeout_ms - c->timeout_ms * RF_PG_SERVER_TIMEOUT_MARGIN_PERCENT / 100;
    snprintf(cmd, sizeof cmd, "SET statement_timeout = %d", ms > 0 ? ms : 1);
    rf_err err = run_command(c, cmd);
    if (err) return err;
    /* Longer than any pause racefree makes inside a transaction (the test
     * hooks' op delay included). */
    snprintf(cmd, sizeof cmd, "SET idle_in_transaction_session_timeout = %d",
             c->timeout_ms * 2 + RF_TEST_DELAY_MS_MAX);
    return run_command(c, cmd);
}

/* Takes the schema=NAME query parameter out of url (libpq knows no such
 * parameter) into out and schema ("" when absent); false when NAME breaks
 * rf_schema_name_valid or url is too long. */
static bool url_take_schema(const char *url, char out[RF_DB_URL_BYTES],
                            char schema[RF_PG_SCHEMA_CHARS_MAX + 1]) {
    schema[0] = '\0';
    const char *q = strchr(url, '?');
    size_t n = q ? (size_t)(q - url) : strlen(url);
    if (n >= RF_DB_URL_BYTES) return false;
    memcpy(out, url, n);
    out[n] = '\0';
    int kept = 0; /* parameters kept */
    for (const char *p = q; p && *p;) { /* each "?k=v" or "&k=v" */
        size_t len = strcspn(p + 1, "&") + 1;
        if (strncmp(p + 1, "schema=", 7) == 0) {
            if (len - 8 > RF_PG_SCHEMA_CHARS_MAX) return false;
            snprintf(schema, RF_PG_SCHEMA_CHARS_MAX + 1, "%.*s", (int)(len - 8), p + 8);
            if (!rf_schema_name_valid(schema)) return false;
        } else {
            if (n + len >= RF_DB_URL_BYTES) return false;
            out[n] = kept++ ? '&' : '?';
            memcpy(out + n + 1, p + 1, len - 1);
            n += len;
            out[n] = '\0';
        }
        p += len;
    }
    return true;
}

/* Every statement names racefree's tables unqualified: with a schema they
 * resolve there (only there: an app's own tables of the same name, in
 * public, are never seen), and migrate creates them there. */
static rf_err set_schema(struct store_conn *c, const char *schema) {
    char cmd[PG_CMD_BYTES + RF_PG_SCHEMA_CHARS_MAX];
    if (!schema[0]) return RF_OK;
    snprintf(cmd, sizeof cmd, "SET search_path TO %s", schema); /* needs no quoting */
    return run_command(c, cmd);
}

static rf_err conn_open(const char *url, int timeout_ms, bool readonly,
                        struct store_conn **out) {
    RF_ASSERT(url && out && timeout_ms > 0);
    *out = NULL;
    char libpq_url[RF_DB_URL_BYTES], schema[RF_PG_SCHEMA_CHARS_MAX + 1];
    if (!url_take_schema(url, libpq_url, schema)) return RF_ERR_INVALID;
    struct store_conn *c = calloc(1, sizeof *c);
    if (!c) return RF_ERR_NOMEM;
    c->url = strdup(url);
    c->timeout_ms = timeout_ms;
    c->readonly = readonly;
    rf_err err = c->url ? open_pg(libpq_url, timeout_ms, &c->pg) : RF_ERR_NOMEM;
    if (!err && PQsetnonblocking(c->pg, 1) != 0) err = RF_ERR_UNAVAILABLE;
    if (!err) {
        PQsetNoticeProcessor(c->pg, ignore_notice, NULL);
        err = set_server_timeout(c);
    }
    if (!err) err = set_schema(c, schema);
    if (err) {
        PQfinish(c->pg);
        free(c->url);
        free(c);
        return err;
    }
    *out = c;
    return RF_OK;
}

static rf_err pg_connect(const char *url, const struct rf_options *opt, bool readonly,
                         struct store_conn **out) {
    int timeout_ms = opt && opt->pg_timeout_ms > 0 ? opt->pg_timeout_ms : RF_PG_TIMEOUT_MS;
    return conn_open(url, timeout_ms, readonly, out);
}

static void pg_disconnect(struct store_conn *c) {
    if (!c) return;
    for (int i = 0; i < PG_SLOTS; i++) free(c->slots[i].text);
    PQfinish(c->pg); /* non-blocking: never waits for a frozen server */
    free(c->url);
    free(c);
}

static bool pg_broken(struct store_conn *c) {
    RF_ASSERT(c);
    return c->dead || PQstatus(c->pg) != CONNECTION_OK;
}

static void pg_fail_next_commit(struct store_conn *c) {
    RF_ASSERT(c);
    c->fail_commit = true;
}

static void pg_lose_next_commit_reply(struct store_conn *c) {
    RF_ASSERT(c);
    c->lose_reply = true;
}

static void pg_serializable_next_begin(struct store_conn *c) {
    RF_ASSERT(c);
    c->serializable = true;
}

static void pg_batch_next_begin(struct store_conn *c) {
    RF_ASSERT(c);
    c->batch = true;
}

static rf_err pipe_queue(struct store_conn *c, const struct pg_queued *q, const char *name,
                         int n_params, const struct pg_params *pp);

/* Queued: it rides the flush's first statement. */
static rf_err pg_batch_flush_begins(struct store_conn *c) {
    static const char cmd[] = "SET LOCAL lock_timeout = 0";
    RF_ASSERT(c);
    if (c->dead) return RF_ERR_UNAVAILABLE;
    if (!c->n_queued && PQtransactionStatus(c->pg) != PQTRANS_INTRANS) return run_command(c, cmd);
    static const struct pg_params none; /* no parameters */
    return pipe_queue(c, &(struct pg_queued){cmd, NULL, NULL}, "", 0, &none);
}

/* ---- prepared statement cache --------------------------------------- */

static unsigned slot_hash(const char *key) {
    uint64_t h = (uint64_t)(uintptr_t)key;
    h ^= h >> 29;
    h *= UINT64_C(0x9E3779B97F4A7C15);
    return (unsigned)(h >> 32) & (PG_SLOTS - 1);
}

/* The slot holding key, or the empty slot where it would go. Never fails:
 * at most RF_STMT_CACHE_MAX of PG_SLOTS slots are ever used. */
static struct pg_stmt *slot_find(struct store_conn *c, const char *key) {
    unsigned i = slot_hash(key);
    for (int probe = 0; probe < PG_SLOTS; probe++, i = (i + 1) & (PG_SLOTS - 1)) {
        struct pg_stmt *s = &c->slots[i];
        if (!s->key || s->key == key) return s;
    }
    RF_ASSERT(!"statement cache has no empty slot");
    return NULL;
}

/* Types for PQprepare/PQexecParams: NULL (all inferred) when the text uses
 * every parameter, else text for the unused ones. A '$' inside a literal may
 * count as a use; that only leaves a type to inference. */
static const Oid *param_types(const char *sql, int n, Oid types[RF_SQL_PARAMS_MAX]) {
    bool used[RF_SQL_PARAMS_MAX] = {false};
    const char *p = sql;
    while ((p = strchr(p, '$')) != NULL) { /* bounded by the text's length */
        p++;
        if (!isdigit((unsigned char)*p)) continue;
        char *end;
        long k = strtol(p, &end, 10);
        if (k >= 1 && k <= n) used[k - 1] = true;
        p = end;
    }
    bool all = true;
    for (int i = 0; i < n; i++) {
        types[i] = used[i] ? 0 : PG_TEXT_OID;
        all = all && used[i];
    }
    return all ? NULL : types;
}

/* Prepares sql into the empty slot s. */
static rf_err stmt_prepare(struct store_conn *c, struct pg_stmt *s, const char *sql,
                           int n_params) {
    RF_ASSERT(!s->key && c->n_stmts < RF_STMT_CACHE_MAX);
    char *text = strdup(sql);
    if (!text) return RF_ERR_NOMEM;
    char name[PG_STMT_NAME_BYTES];
    snprintf(name, sizeof name, "rf_s%d", c->n_stmts);
    Oid types[RF_SQL_PARAMS_MAX];
    PGresult *res = NULL;
    rf_err err = round_trip(
        c, PQsendPrepare(c->pg, name, sql, n_params, param_types(sql, n_params, types)), sql,
        &res);
    PQclear(res);
    if (err) {
        free(text);
        return err;
    }
    *s = (struct pg_stmt){.key = sql, .text = text, .n_params = n_params, .id = c->n_stmts};
    rf_strcpy(s->name, sizeof s->name, name);
    c->n_stmts++;
    return RF_OK;
}

/* Fills name with the prepared statement for sql, or "" when sql runs
 * unprepared (cache full, or the pointer is cached for a different text);
 * false when sql is not prepared yet and can be (its first use on c). */
static bool stmt_known(struct store_conn *c, const char *sql, int n_params,
                       char name[PG_STMT_NAME_BYTES]) {
    name[0] = '\0';
    struct pg_stmt *s = slot_find(c, sql);
    if (!s->key) return c->n_stmts >= RF_STMT_CACHE_MAX;
    if (strcmp(s->text, sql) != 0) return true;
    RF_ASSERT(s->n_params == n_params); /* one SQL text, one parameter count */
    memcpy(name, s->name, PG_STMT_NAME_BYTES);
    return true;
}

/* stmt_known, preparing sql on its first use (a round trip: c must not be
 * in pipeline mode). */
static rf_err stmt_lookup(struct store_conn *c, const char *sql, int n_params,
                          char name[PG_STMT_NAME_BYTES]) {
    RF_ASSERT(c->n_queued == 0);
    if (stmt_known(c, sql, n_params, name)) return RF_OK;
    rf_err err = stmt_prepare(c, slot_find(c, sql), sql, n_params);
    if (err) return err;
    bool known = stmt_known(c, sql, n_params, name);
    RF_ASSERT(known && name[0]);
    return RF_OK;
}

/* ---- statements ------------------------------------------------------ */

static void params_render(struct pg_params *pp, const store_val *params, int n) {
    for (int i = 0; i < n; i++) {
        const store_val *v = &params[i];
        switch (v->type) {
        case SV_NULL:
            pp->values[i] = NULL;
            break;
        case SV_INT:
            rf_i64_text(v->i, pp->ints[i]);
            pp->values[i] = pp->ints[i];
            break;
        case SV_TEXT:
            RF_ASSERT(v->s);
            pp->values[i] = v->s;
            break;
        default:
            RF_ASSERT(!"unknown store_val type");
        }
    }
}

/* Sends one statement, prepared as name ("" : unprepared); the PQsend*
 * return. */
static int send_statement(struct store_conn *c, const char *sql, const char *name,
                          int n_params, const struct pg_params *pp) {
    Oid types[RF_SQL_PARAMS_MAX];
    return name[0] ? PQsendQueryPrepared(c->pg, name, n_params, pp->values, NULL, NULL, 0)
                   : PQsendQueryParams(c->pg, sql, n_params, param_types(sql, n_params, types),
                                       pp->values, NULL, NULL, 0);
}

/* ---- pipeline (exec_later) ------------------------------------------- */

/* The connection broke, a send failed or the protocol went out of step
 * mid-pipeline: its state is unknown, so it is never reused (broken() says
 * so). Nothing it sent in the open transaction can commit. */
static rf_err pipe_lost(struct store_conn *c) {
    c->n_queued = 0;
    c->dead = true;
    return RF_ERR_UNAVAILABLE;
}

/* Reads the results of the pipeline's next statement. */
static rf_err pipe_read(struct store_conn *c, int64_t deadline, const char *what,
                        PGresult **out) {
    return results_read(c, deadline, what, true, out);
}

/* Reads the Sync's result and leaves pipeline mode; false when the
 * connection broke (the server left after an error: 57P01) or the deadline
 * passed first. */
static bool pipe_synced(struct store_conn *c, int64_t deadline, const char *what) {
    if (!await_result(c->pg, deadline)) {
        conn_dead(c, what);
        return false;
    }
    PGresult *sync = PQgetResult(c->pg);
    bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (synced && PQexitPipelineMode(c->pg)) return true;
    if (PQstatus(c->pg) == CONNECTION_OK)
        rf_log_failure(RF_ERR_UNAVAILABLE, "a pipeline ended out of step: connection dropped",
                       "postgres: %.*s", PG_LOG_SQL_CHARS, what);
    return false;
}

/* Ends the pipeline: a Sync after the queued statements and the caller's
 * n_own statements sent after them, then every result in order, within c's
 * timeout. Returns the first error among them all; *own_out (may be NULL)
 * gets the last own statement's result when none failed. c leaves pipeline
 * mode, ready for plain calls. */
static void pipe_deliver(const struct pg_queued *q, PGresult *res);

static rf_err pipe_finish(struct store_conn *c, int n_own, const char *what,
                          PGresult **own_out) {
    RF_ASSERT(c->n_queued > 0 && c->n_queued <= RF_PG_QUEUED_MAX && n_own >= 0);
    if (own_out) *own_out = NULL;
    int n = c->n_queued;
    if (c->dead || !PQpipelineSync(c->pg)) return pipe_lost(c);
    c->n_queued = 0;
    int64_t deadline = rf_mono_ms() + c->timeout_ms;
    rf_err err = RF_OK;
    for (int i = 0; i < n + n_own; i++) {
        PGresult *res = NULL;
        rf_err e = pipe_read(c, deadline, i < n ? c->queued[i].sql : what, &res);
        if (c->dead || PQstatus(c->pg) != CONNECTION_OK) {
            PQclear(res);
            if (own_out) PQclear(*own_out);
            if (own_out) *own_out = NULL;
            return pipe_lost(c);
        }
        if (!err) err = e;
        if (i < n && !err && c->queued[i].fn) pipe_deliver(&c->queued[i], res);
        if (own_out && i >= n && !err) {
            PQclear(*own_out);
            *own_out = res;
        } else {
            PQclear(res);
        }
    }
    if (pipe_synced(c, deadline, what)) return err;
    if (own_out) PQclear(*own_out);
    if (own_out) *own_out = NULL;
    return pipe_lost(c);
}

static int pg_rows_next(struct store_rows *r);
static void pg_rows_close(struct store_rows *r);

/* A query_later's first row, to its fn. */
static void pipe_deliver(const struct pg_queued *q, PGresult *res) {
    struct store_rows r = {.res = res, .row = -1, .n_rows = PQntuples(res),
                           .n_cols = PQnfields(res)};
    if (pg_rows_next(&r) > 0) q->fn(q->ctx, &r);
}

/* Learns what was queued: the first error among it, else RF_OK. */
static rf_err pipe_settle(struct store_conn *c) {
    return c->n_queued ? pipe_finish(c, 0, "(queued statements)", NULL) : RF_OK;
}

static rf_err pg_settle(struct store_conn *c) {
    RF_ASSERT(c);
    return pipe_settle(c);
}

/* Parameterless commands after the queued statements, ending their pipeline
 * (one round trip). The pipeline's extended protocol takes one statement per
 * text, so each command is one statement. */
static rf_err pipe_commands(struct store_conn *c, const char *const *cmds, int n) {
    RF_ASSERT(c->n_queued > 0 && n >= 1);
    for (int i = 0; i < n; i++)
        if (!PQsendQueryParams(c->pg, cmds[i], 0, NULL, NULL, NULL, NULL, 0)) return pipe_lost(c);
    return pipe_finish(c, n, cmds[n - 1], NULL);
}

/* Runs one statement; *res_out (may be NULL on error) must be PQclear'd.
 * After queued statements it rides their pipeline, unless it must first be
 * prepared (its first use): then the queue is settled first. */
static rf_err run_statement(struct store_conn *c, const char *sql, const store_val *params,
                            int n_params, PGresult **res_out) {
    RF_ASSERT(c && sql && res_out);
    RF_ASSERT(n_params >= 0 && n_params <= RF_SQL_PARAMS_MAX);
    RF_ASSERT(n_params == 0 || params);
    *res_out = NULL;
    if (c->dead) return RF_ERR_UNAVAILABLE;
    struct pg_params pp;
    params_render(&pp, params, n_params);
    char name[PG_STMT_NAME_BYTES];
    if (!stmt_known(c, sql, n_params, name)) {
        rf_err err = pipe_settle(c);
        if (!err) err = stmt_lookup(c, sql, n_params, name);
        if (err) return err;
    }
    int sent = send_statement(c, sql, name, n_params, &pp);
    if (!c->n_queued) return round_trip(c, sent, sql, res_out);
    return sent ? pipe_finish(c, 1, sql, res_out) : pipe_lost(c);
}

static rf_err pg_exec(struct store_conn *c, const char *sql, const store_val *params,
                      int n_params, int64_t *changes_out);

/* Sends sql (prepared as name, or "" : unprepared) into c's pipeline,
 * entering it; its result is learned at the next synchronous call. c is
 * inside a transaction. */
static rf_err pipe_queue(struct store_conn *c, const struct pg_queued *q, const char *name,
                         int n_params, const struct pg_params *pp) {
    const char *sql = q->sql;
    if (c->n_queued == RF_PG_QUEUED_MAX) {
        rf_err err = pipe_settle(c);
        if (err) return err;
    }
    if (c->n_queued == 0 && !PQenterPipelineMode(c->pg)) return pipe_lost(c);
    c->queued[c->n_queued++] = *q;
    return send_statement(c, sql, name, n_params, pp) ? RF_OK : pipe_lost(c);
}

/* Queues sql in c's pipeline (entering it) when c is inside a transaction
 * and sql is prepared; else runs it at once: outside a transaction each Sync
 * would commit what it ends, and a first use prepares in a round trip anyway. */
static rf_err pg_query(struct store_conn *c, const char *sql, const store_val *params,
                       int n_params, struct store_rows **rows_out);

/* At once: its row goes to fn before exec_later returns. */
static rf_err exec_now(struct store_conn *c, const char *sql, const store_val *params,
                       int n_params, store_later_fn fn, void *ctx) {
    if (!fn) return pg_exec(c, sql, params, n_params, NULL);
    struct store_rows *r = NULL;
    rf_err err = pg_query(c, sql, params, n_params, &r);
    if (err) return err;
    if (pg_rows_next(r) > 0) fn(ctx, r);
    pg_rows_close(r);
    return RF_OK;
}

static rf_err pg_exec_later(struct store_conn *c, const char *sql, const store_val *params,
                            int n_params, store_later_fn fn, void *ctx) {
    RF_ASSERT(c && sql && n_params >= 0 && n_params <= RF_SQL_PARAMS_MAX);
    RF_ASSERT(n_params == 0 || params);
    if (c->dead) return RF_ERR_UNAVAILABLE;
    char name[PG_STMT_NAME_BYTES];
    bool in_tx = c->n_queued > 0 || PQtransactionStatus(c->pg) == PQTRANS_INTRANS;
    if (!in_tx || !stmt_known(c, sql, n_params, name) || !name[0])
        return exec_now(c, sql, params, n_params, fn, ctx);
    struct pg_params pp;
    params_render(&pp, params, n_params);
    return pipe_queue(c, &(struct pg_queued){sql, fn, ctx}, name, n_params, &pp);
}

/* Migration scripts may rebuild large tables: inside the migration's
 * transaction they get a bound of their own instead of the per-statement one. */
static rf_err pg_exec_script(struct store_conn *c, const char *sql) {
    RF_ASSERT(c && sql);
    char cmd[PG_CMD_BYTES];
    snprintf(cmd, sizeof cmd, "SET LOCAL statement_timeout = %d", RF_PG_SCRIPT_TIMEOUT_MS);
    rf_err err = pipe_settle(c); /* a script is many statements: never in a pipeline */
    if (!err && PQtransactionStatus(c->pg) == PQTRANS_INTRANS) err = run_command(c, cmd);
    int saved = c->timeout_ms;
    c->timeout_ms = RF_PG_SCRIPT_TIMEOUT_MS + RF_PG_SCRIPT_TIMEOUT_MS / 10;
    if (!err) err = run_command(c, sql);
    c->timeout_ms = saved;
    return err;
}

static rf_err pg_exec(struct store_conn *c, const char *sql, const store_val *params,
                      int n_params, int64_t *changes_out) {
    PGresult *res = NULL;
    rf_err err = run_statement(c, sql, params, n_params, &res);
    if (!err && changes_out) *changes_out = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return err;
}

static rf_err pg_query(struct store_conn *c, const char *sql, const store_val *params,
                       int n_params, struct store_rows **rows_out) {
    RF_ASSERT(rows_out);
    *rows_out = NULL;
    PGresult *res = NULL;
    rf_err err = run_statement(c, sql, params, n_params, &res);
    if (err) {
        PQclear(res);
        return err;
    }
    struct store_rows *r = malloc(sizeof *r);
    if (!r) {
        PQclear(res);
        return RF_ERR_NOMEM;
    }
    *r = (struct store_rows){.res = res, .row = -1, .n_rows = PQntuples(res),
                             .n_cols = PQnfields(res)};
    *rows_out = r;
    return RF_OK;
}

/* ---- rows ------------------------------------------------------------ */

/* The whole result is already here, so advancing cannot fail. */
static int pg_rows_next(struct store_rows *r) {
    RF_ASSERT(r);
    if (r->row + 1 >= r->n_rows) {
        r->row = r->n_rows;
        return 0;
    }
    r->row++;
    return 1;
}

static rf_err pg_rows_err(struct store_rows *r) {
    RF_ASSERT(r);
    return RF_OK;
}

static void rows_check(const struct store_rows *r, int col) {
    RF_ASSERT(r && r->row >= 0 && r->row < r->n_rows);
    RF_ASSERT(col >= 0 && col < r->n_cols);
}

static bool pg_rows_null(struct store_rows *r, int col) {
    rows_check(r, col);
    return PQgetisnull(r->res, r->row, col) != 0;
}

/* Integers arrive as text. A PostgreSQL boolean (EXISTS, comparisons) reads
 * as 1/0, the same as on SQLite. NULL reads as 0. */
static int64_t pg_rows_int(struct store_rows *r, int col) {
    rows_check(r, col);
    if (PQgetisnull(r->res, r->row, col)) return 0;
    const char *text = PQgetvalue(r->res, r->row, col);
    if (!strcmp(text, "t")) return 1;
    if (!strcmp(text, "f")) return 0;
    return strtoll(text, NULL, 10);
}

static const char *pg_rows_text(struct store_rows *r, int col) {
    rows_check(r, col);
    return PQgetvalue(r->res, r->row, col); /* "" for NULL */
}

static void pg_rows_close(struct store_rows *r) {
    if (!r) return;
    PQclear(r->res);
    free(r);
}

/* ---- transactions ---------------------------------------------------- */

/* A write transaction learns its id in BEGIN's own round trip (one query
 * string, two results): the id must be known before COMMIT is sent, or a
 * lost answer to COMMIT could not be resolved. It costs an xid for a write
 * transaction that ends up writing nothing, and no round trip. */
static const char PG_BEGIN_WRITE[] = "BEGIN; SELECT pg_current_xact_id()::text";
/* Test hook: the SELECT takes the transaction's snapshot, so a row changed
 * by another transaction that commits after BEGIN cannot be written. */
static const char PG_BEGIN_SERIALIZABLE[] =
    "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT pg_current_xact_id()::text";
#define PG_BATCH_LOCK_WAIT "SET LOCAL lock_timeout = " RF_STR(RF_PG_BATCH_LOCK_WAIT_MS) "; "
static const char PG_BEGIN_BATCH[] =
    "BEGIN; " PG_BATCH_LOCK_WAIT "SELECT pg_current_xact_id()::text";
static const char PG_BEGIN_BATCH_SERIALIZABLE[] =
    "BEGIN ISOLATION LEVEL SERIALIZABLE; " PG_BATCH_LOCK_WAIT "SELECT pg_current_xact_id()::text";

static rf_err pg_begin(struct store_conn *c, bool write) {
    RF_ASSERT(c);
    c->xid[0] = '\0';
    if (c->dead) return RF_ERR_UNAVAILABLE;
    /* A BEGIN inside an open transaction only warns on PostgreSQL and would
     * merge two operations into one: the executor must never do that. */
    PGTransactionStatusType ts = PQtransactionStatus(c->pg);
    RF_ASSERT(ts == PQTRANS_IDLE || ts == PQTRANS_UNKNOWN);
    RF_ASSERT(c->n_queued == 0); /* commit and rollback settle the queue */
    if (!write) return run_command(c, "BEGIN READ ONLY");
    const char *sql = c->serializable ? (c->batch ? PG_BEGIN_BATCH_SERIALIZABLE
                                                  : PG_BEGIN_SERIALIZABLE)
                      : c->batch ? PG_BEGIN_BATCH : PG_BEGIN_WRITE;
    c->serializable = false;
    c->batch = false;
    PGresult *res = NULL;
    rf_err err = round_trip(c, PQsendQuery(c->pg, sql), sql, &res);
    if (!err && (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))) err = RF_ERR_INTERNAL;
    if (!err) snprintf(c->xid, sizeof c->xid, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return err;
}

/* Test hook: cuts the socket before COMMIT is sent, so the COMMIT fails
 * exactly as on a lost connection, and the server rolls back. */
static void drop_socket(struct store_conn *c) {
    int fd = PQsocket(c->pg);
    if (fd >= 0 && shutdown(fd, SHUT_RDWR) != 0)
        rf_log_failure(RF_ERR_INTERNAL, strerror(errno), "postgres: test hook shutdown");
}

/* Test hook: COMMIT was sent; waits until its answer is in the socket (the
 * server has committed or refused), then swaps the socket for a closed one
 * before libpq reads it: the answer is lost exactly as when the connection
 * dies between the server's commit and the client's read. */
static void lose_reply(struct store_conn *c) {
    int64_t deadline = rf_mono_ms() + c->timeout_ms;
    int fd = PQsocket(c->pg);
    while (fd >= 0 && PQflush(c->pg) > 0) /* bounded by the deadline */
        if (!wait_socket(fd, POLLOUT, deadline)) break;
    int sv[2];
    if (fd < 0 || !wait_socket(fd, POLLIN, deadline) ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        rf_log(RF_LOG_WARN, "postgres: test hook: the answer to COMMIT did not arrive");
        return;
    }
    close(sv[1]);
    if (dup2(sv[0], fd) < 0) /* closes the real socket: reads now see EOF */
        rf_log_failure(RF_ERR_INTERNAL, strerror(errno), "postgres: test hook dup2");
    close(sv[0]);
}

/* One question on a fresh connection: the status of xid ("committed",
 * "aborted", "in progress"), into status; false when it cannot be learned. */
static bool xact_status(struct store_conn *q, const char *xid, char *status, size_t cap) {
    static const char sql[] = "SELECT pg_xact_status($1::xid8)";
    store_val p[1] = {SV_S(xid)};
    struct store_rows *r = NULL;
    if (pg_query(q, sql, p, 1, &r) != RF_OK) return false;
    bool ok = r->n_rows == 1 && !PQgetisnull(r->res, 0, 0);
    if (ok) snprintf(status, cap, "%s", PQgetvalue(r->res, 0, 0));
    pg_rows_close(r);
    return ok;
}

/* The answer to COMMIT of transaction c->xid was lost: asks a fresh
 * connection, within c's timeout, what became of it. "in progress" means the
 * old backend has not yet seen the connection close (or is still
 * committing); it is asked again until the deadline. */
static rf_err resolve_commit(struct store_conn *c) {
    if (!c->xid[0]) return RF_ERR_UNAVAILABLE; /* no write transaction: nothing to commit */
    int64_t deadline = rf_mono_ms() + c->timeout_ms;
    struct store_conn *q = NULL;
    char status[32] = "no answer";
    rf_err err = RF_ERR_OUTCOME_UNKNOWN;
    if (conn_open(c->url, c->timeout_ms, false, &q) == RF_OK) {
        while (xact_status(q, c->xid, status, sizeof status) && /* bounded by the deadline */
               strcmp(status, "in progress") == 0 && rf_mono_ms() < deadline) {
            struct timespec ts = {0, RF_PG_RESOLVE_POLL_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (strcmp(status, "committed") == 0) err = RF_OK;
        else if (strcmp(status, "aborted") == 0) err = RF_ERR_UNAVAILABLE;
        pg_disconnect(q);
    }
    char cause[RF_LOG_VALUE_CHARS_MAX];
    pg_cause(c->pg, cause, sizeof cause);
    if (err == RF_OK) /* the answer the client gets is the commit's: no failure */
        rf_log_kv(RF_LOG_WARN, &RF_KV_STR("cause", cause), 1,
                  "postgres: the answer to COMMIT was lost; transaction %s: committed", c->xid);
    else
        rf_log_failure(err, cause, "postgres: the answer to COMMIT was lost; transaction %s: %s%s",
                       c->xid, err == RF_ERR_UNAVAILABLE ? "aborted" : "outcome unknown, ",
                       err == RF_ERR_OUTCOME_UNKNOWN ? status : "");
    return err;
}

static void pg_rollback(struct store_conn *c);

/* What exec_later queued is learned before COMMIT is sent, in a round trip
 * of its own: a COMMIT in a pipeline that aborted would be skipped and leave
 * the transaction open, and the lost-COMMIT resolution would have to tell a
 * skipped COMMIT from a lost one. Nothing is queued there on the executor's
 * paths (it settles after the deferred work); this keeps commit correct
 * for any caller. A failed queued statement rolls the transaction back; its
 * error (RF_ERR_RETRY included: that is a definite rollback) is returned. */
static rf_err commit_settle(struct store_conn *c) {
    rf_err err = pipe_settle(c);
    if (!err) return RF_OK;
    pg_rollback(c);
    return err == RF_ERR_RETRY && pg_broken(c) ? RF_ERR_UNAVAILABLE : err;
}

/* RF_OK: committed (also when the answer was lost and a fresh connection
 * learned that it committed). RF_ERR_OUTCOME_UNKNOWN: may have committed.
 * Any other error: the server did not commit. Never RF_ERR_RETRY for a COMMIT
 * whose answer was lost, so the executor never re-runs such a transaction. */
static rf_err pg_commit(struct store_conn *c) {
    RF_ASSERT(c);
    if (c->dead || PQstatus(c->pg) != CONNECTION_OK) return RF_ERR_UNAVAILABLE; /* not sent */
    rf_err settled = commit_settle(c);
    if (settled) return settled;
    if (c->fail_commit) {
        c->fail_commit = false;
        drop_socket(c);
    }
    int sent = PQsendQuery(c->pg, "COMMIT");
    if (sent && c->lose_reply) {
        c->lose_reply = false;
        lose_reply(c);
    }
    PGresult *res = NULL;
    rf_err err = round_trip(c, sent, "COMMIT", &res);
    if (c->dead || PQstatus(c->pg) != CONNECTION_OK) {
        err = resolve_commit(c); /* no answer, or the server left after answering */
        c->dead = true;
    } else if (!err && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        /* COMMIT of a transaction an earlier error aborted reports ROLLBACK:
         * a flow ignored an error, which is a bug, and nothing was written. */
        rf_log_failure(RF_ERR_INTERNAL, "COMMIT answered ROLLBACK",
                       "postgres: COMMIT of an aborted transaction rolled back");
        err = RF_ERR_INTERNAL;
    }
    PQclear(res);
    c->xid[0] = '\0';
    RF_ASSERT(err != RF_ERR_RETRY || !pg_broken(c));
    return err;
}

/* Queued results are learned and dropped first: a ROLLBACK in a pipeline
 * that aborted would be skipped. */
static void pg_rollback(struct store_conn *c) {
    RF_ASSERT(c);
    c->xid[0] = '\0';
    (void)pipe_settle(c);
    if (!pg_broken(c)) (void)run_command(c, "ROLLBACK");
}

static rf_err savepoint_command(struct store_conn *c, const char *verb, int n) {
    RF_ASSERT(c && n >= 0);
    char cmd[PG_CMD_BYTES];
    int len = snprintf(cmd, sizeof cmd, "%s sp%d", verb, n);
    RF_ASSERT(len > 0 && (size_t)len < sizeof cmd);
    return run_command(c, cmd);
}

static rf_err pg_savepoint(struct store_conn *c, int n) {
    return savepoint_command(c, "SAVEPOINT", n);
}

static rf_err pg_release(struct store_conn *c, int n) {
    return savepoint_command(c, "RELEASE SAVEPOINT", n);
}

/* After queued statements: RELEASE and SAVEPOINT ride their pipeline as two
 * statements; a queued error skips both, so savepoint n still holds. */
static rf_err pg_release_savepoint(struct store_conn *c, int n) {
    RF_ASSERT(c && n >= 0);
    char rel[PG_CMD_BYTES], set[PG_CMD_BYTES], both[2 * PG_CMD_BYTES + 2];
    snprintf(rel, sizeof rel, "RELEASE SAVEPOINT sp%d", n);
    snprintf(set, sizeof set, "SAVEPOINT sp%d", n);
    const char *const cmds[2] = {rel, set};
    if (c->n_queued && !c->dead) return pipe_commands(c, cmds, 2);
    snprintf(both, sizeof both, "%s; %s", rel, set);
    return run_command(c, both);
}

/* Queued results are dropped first: the rollback discards what they did,
 * and a ROLLBACK TO in a pipeline that aborted would be skipped. */
static void pg_rollback_to(struct store_conn *c, int n) {
    (void)pipe_settle(c);
    (void)savepoint_command(c, "ROLLBACK TO SAVEPOINT", n);
}

const struct store_ops store_postgres_ops = {
    .backend = STORE_POSTGRES,
    .name = "postgres",
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .exec_script = pg_exec_script,
    .exec = pg_exec,
    .exec_later = pg_exec_later,
    .settle = pg_settle,
    .query = pg_query,
    .rows_next = pg_rows_next,
    .rows_err = pg_rows_err,
    .rows_null = pg_rows_null,
    .rows_int = pg_rows_int,
    .rows_text = pg_rows_text,
    .rows_close = pg_rows_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .savepoint = pg_savepoint,
    .release = pg_release,
    .rollback_to = pg_rollback_to,
    .release_savepoint = pg_release_savepoint,
    .broken = pg_broken,
    .fail_next_commit = pg_fail_next_commit,
    .lose_next_commit_reply = pg_lose_next_commit_reply,
    .serializable_next_begin = pg_serializable_next_begin,
    .batch_next_begin = pg_batch_next_begin,
    .batch_flush_begins = pg_batch_flush_begins,
};
