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
 *
 * A store_conn is used by one thread at a time (the executor's pool hands it
 * out); this file keeps no mutable global state.
 */
#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/assert.h"
#include "base/limits.h"
#include "store/store.h"

/* Open addressing at load <= 1/2 keeps probe chains short. */
#define PG_SLOTS (2 * RF_STMT_CACHE_MAX)
_Static_assert((PG_SLOTS & (PG_SLOTS - 1)) == 0, "PG_SLOTS must be a power of two");

#define PG_STMT_NAME_BYTES 16 /* "rf_s" + up to 11 digits */
#define PG_INT_TEXT_BYTES 24  /* "-9223372036854775808" + NUL */
#define PG_CMD_BYTES 48       /* "ROLLBACK TO SAVEPOINT sp<int>" */
#define PG_LOG_SQL_CHARS 160  /* SQL text shown in an error log line */

#define PG_TEXT_OID 25        /* pg_type oid of text: fixed in the catalog */

#define PG_STR_(x) #x
#define PG_STR(x) PG_STR_(x)

struct pg_stmt {
    const char *key; /* the caller's pointer; NULL: empty slot */
    char *text;      /* private copy, to verify a pointer match */
    int n_params;
    int id;          /* prepared as "rf_s<id>" */
};

struct store_conn {
    PGconn *pg;
    bool readonly;    /* kept for the interface; PostgreSQL uses one pool */
    bool fail_commit; /* test hook: drop the connection at the next commit */
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

/* Messages of data exceptions (22) and raised exceptions (P0) can quote
 * values; only the SQLSTATE of those is logged. */
static void log_internal(const PGresult *res, const char *state, const char *what) {
    /* The primary message only: DETAIL lines quote key values. */
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (!msg) msg = "(no message)";
    if (sqlstate_is(state, "22") || sqlstate_is(state, "P0")) msg = "(withheld: may quote values)";
    fprintf(stderr, "racefree: postgres: SQLSTATE %s: %s [%.*s]\n", state, msg,
            PG_LOG_SQL_CHARS, what);
}

static rf_err map_sqlstate(const char *s) {
    if (sqlstate_is(s, "23")) return RF_ERR_CONFLICT; /* unique, check, fk, not null */
    if (!strcmp(s, "40001") || !strcmp(s, "40P01")) return RF_ERR_RETRY;
    if (sqlstate_is(s, "08") || sqlstate_is(s, "53") || !strcmp(s, "57P01") ||
        !strcmp(s, "57P02") || !strcmp(s, "57P03") || !strcmp(s, "55P03"))
        return RF_ERR_UNAVAILABLE;
    return RF_ERR_INTERNAL;
}

/* Maps a result to rf_err; what is the SQL text (or command) for the log. */
static rf_err check_result(PGconn *pg, const PGresult *res, const char *what) {
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return RF_OK;
    if (PQstatus(pg) != CONNECTION_OK) return RF_ERR_UNAVAILABLE;
    if (!res) return RF_ERR_NOMEM; /* libpq returns NULL only when out of memory */
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (!state) state = "XX000"; /* a client-side error has no SQLSTATE */
    rf_err err = map_sqlstate(state);
    if (err == RF_ERR_INTERNAL) log_internal(res, state, what);
    return err;
}

/* Runs a parameterless command (BEGIN, COMMIT, SAVEPOINT ...). */
static rf_err run_command(struct store_conn *c, const char *cmd) {
    PGresult *res = PQexec(c->pg, cmd);
    rf_err err = check_result(c->pg, res, cmd);
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

static rf_err pg_connect(const char *url, const struct rf_options *opt, bool readonly,
                         struct store_conn **out) {
    RF_ASSERT(url && out);
    (void)opt;
    *out = NULL;
    /* Later entries override earlier ones: the url may set its own
     * connect_timeout, but the encoding is always UTF-8. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname",
                                "client_encoding", NULL};
    const char *const vals[] = {PG_STR(RF_PG_CONNECT_TIMEOUT_S), "racefree", url, "UTF8",
                                NULL};
    struct store_conn *c = calloc(1, sizeof *c);
    if (!c) return RF_ERR_NOMEM;
    c->pg = PQconnectdbParams(keys, vals, 1);
    if (!c->pg) {
        free(c);
        return RF_ERR_NOMEM;
    }
    if (PQstatus(c->pg) != CONNECTION_OK) {
        PQfinish(c->pg);
        free(c);
        return RF_ERR_UNAVAILABLE;
    }
    PQsetNoticeProcessor(c->pg, ignore_notice, NULL);
    c->readonly = readonly;
    *out = c;
    return RF_OK;
}

static void pg_disconnect(struct store_conn *c) {
    if (!c) return;
    for (int i = 0; i < PG_SLOTS; i++) free(c->slots[i].text);
    PQfinish(c->pg);
    free(c);
}

static bool pg_broken(struct store_conn *c) {
    RF_ASSERT(c);
    return PQstatus(c->pg) != CONNECTION_OK;
}

static void pg_fail_next_commit(struct store_conn *c) {
    RF_ASSERT(c);
    c->fail_commit = true;
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
    PGresult *res = PQprepare(c->pg, name, sql, n_params, param_types(sql, n_params, types));
    rf_err err = check_result(c->pg, res, sql);
    PQclear(res);
    if (err) {
        free(text);
        return err;
    }
    *s = (struct pg_stmt){.key = sql, .text = text, .n_params = n_params, .id = c->n_stmts};
    c->n_stmts++;
    return RF_OK;
}

/* Fills name with the prepared statement for sql, preparing it on first use;
 * leaves name "" when sql must run unprepared (cache full, or the pointer is
 * cached for a different text). */
static rf_err stmt_lookup(struct store_conn *c, const char *sql, int n_params,
                          char name[PG_STMT_NAME_BYTES]) {
    name[0] = '\0';
    struct pg_stmt *s = slot_find(c, sql);
    if (!s->key) {
        if (c->n_stmts >= RF_STMT_CACHE_MAX) return RF_OK;
        rf_err err = stmt_prepare(c, s, sql, n_params);
        if (err) return err;
    } else if (strcmp(s->text, sql) != 0) {
        return RF_OK;
    }
    RF_ASSERT(s->n_params == n_params); /* one SQL text, one parameter count */
    snprintf(name, PG_STMT_NAME_BYTES, "rf_s%d", s->id);
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
            snprintf(pp->ints[i], PG_INT_TEXT_BYTES, "%lld", (long long)v->i);
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

/* Runs one statement; *res_out (may be NULL on error) must be PQclear'd. */
static rf_err run_statement(struct store_conn *c, const char *sql, const store_val *params,
                            int n_params, PGresult **res_out) {
    RF_ASSERT(c && sql && res_out);
    RF_ASSERT(n_params >= 0 && n_params <= RF_SQL_PARAMS_MAX);
    RF_ASSERT(n_params == 0 || params);
    *res_out = NULL;
    struct pg_params pp;
    params_render(&pp, params, n_params);
    char name[PG_STMT_NAME_BYTES];
    rf_err err = stmt_lookup(c, sql, n_params, name);
    if (err) return err;
    PGresult *res;
    Oid types[RF_SQL_PARAMS_MAX];
    if (name[0])
        res = PQexecPrepared(c->pg, name, n_params, pp.values, NULL, NULL, 0);
    else
        res = PQexecParams(c->pg, sql, n_params, param_types(sql, n_params, types), pp.values,
                           NULL, NULL, 0);
    err = check_result(c->pg, res, sql);
    *res_out = res;
    return err;
}

static rf_err pg_exec_script(struct store_conn *c, const char *sql) {
    RF_ASSERT(c && sql);
    return run_command(c, sql);
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

static rf_err pg_begin(struct store_conn *c, bool write) {
    RF_ASSERT(c);
    /* A BEGIN inside an open transaction only warns on PostgreSQL and would
     * merge two operations into one: the executor must never do that. */
    PGTransactionStatusType ts = PQtransactionStatus(c->pg);
    RF_ASSERT(ts == PQTRANS_IDLE || ts == PQTRANS_UNKNOWN);
    return run_command(c, write ? "BEGIN" : "BEGIN READ ONLY");
}

/* The test hook cuts the socket before COMMIT is sent, so the COMMIT fails
 * exactly as on a lost connection, and the server rolls back. */
static void drop_socket(struct store_conn *c) {
    int fd = PQsocket(c->pg);
    if (fd >= 0 && shutdown(fd, SHUT_RDWR) != 0)
        fprintf(stderr, "racefree: postgres: test hook shutdown: %s\n", strerror(errno));
}

static rf_err pg_commit(struct store_conn *c) {
    RF_ASSERT(c);
    if (c->fail_commit) {
        c->fail_commit = false;
        drop_socket(c);
    }
    PGresult *res = PQexec(c->pg, "COMMIT");
    rf_err err = check_result(c->pg, res, "COMMIT");
    /* COMMIT of a transaction an earlier error aborted reports ROLLBACK:
     * a flow ignored an error, which is a bug, and nothing was written. */
    if (!err && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        fprintf(stderr, "racefree: postgres: COMMIT of an aborted transaction rolled back\n");
        err = RF_ERR_INTERNAL;
    }
    PQclear(res);
    return err;
}

static void pg_rollback(struct store_conn *c) {
    RF_ASSERT(c);
    (void)run_command(c, "ROLLBACK");
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

static void pg_rollback_to(struct store_conn *c, int n) {
    (void)savepoint_command(c, "ROLLBACK TO SAVEPOINT", n);
}

const struct store_ops store_postgres_ops = {
    .backend = STORE_POSTGRES,
    .name = "postgres",
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .exec_script = pg_exec_script,
    .exec = pg_exec,
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
    .broken = pg_broken,
    .fail_next_commit = pg_fail_next_commit,
};
