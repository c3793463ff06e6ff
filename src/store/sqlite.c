/*
 * sqlite.c - the SQLite back end of store.h.
 *
 * One store_conn is one sqlite3 handle used by one thread at a time (opened
 * NOMUTEX): the executor's writer thread owns the write connection, readers
 * take their own WAL connections. Statements are prepared once per connection
 * and cached by SQL text. "$N" parameters are bound by name, so one SQL text
 * serves PostgreSQL and SQLite. A trailing " FOR UPDATE [SKIP LOCKED]" is
 * dropped at prepare time: a SQLite write transaction (BEGIN IMMEDIATE)
 * already holds the database write lock, which is stronger than a row lock.
 *
 * RETURNING without its temporary b-tree: SQLite runs "INSERT/UPDATE ..
 * RETURNING cols" by writing the returned rows into an ephemeral table, one
 * opened, filled and freed per execution (about 25k instructions: more than
 * the guarded UPDATE of a credit itself). So for a cached statement on a
 * rowid table without triggers, run inside a transaction, the store runs the
 * statement without its RETURNING clause, notes the rowids it inserted or
 * updated in that table (sqlite3_update_hook), and reads each row back with
 * "SELECT cols FROM table WHERE rowid = ?". Those are the same rows with the
 * same values: without triggers only the statement itself changes the
 * table's rows, and the write transaction keeps every other writer out
 * until COMMIT. Anything else (a DELETE, a table with triggers, a WITHOUT
 * ROWID table, autocommit) runs the statement as written.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/limits.h"
#include "base/log.h"
#include "store/sqlite_faults.h"
#include "store/store.h"

#define SQLITE_SQL_BYTES_MAX 8192

struct stmt_entry {
    const char *key;  /* the caller's SQL pointer */
    char *text;       /* copy, to verify a pointer is not reused for other text */
    sqlite3_stmt *stmt;
    bool in_use;      /* a cursor is open on it */
    /* $k is the statement's parameter number param_index[k - 1] (0: the text
     * does not use $k), found once at prepare instead of per bind by name;
     * param_max is the highest k the text names. */
    uint8_t param_index[RF_SQL_PARAMS_MAX];
    int param_max;
    /* The RETURNING emulation (file comment), NULL when the text does not
     * qualify: the statement without its RETURNING clause, and the read of
     * one returned row by rowid. */
    sqlite3_stmt *dml, *reread;
    char table[RF_SQLITE_TABLE_NAME_BYTES]; /* the table they write and read */
    /* The rows its last run wrote (update hook), per statement: a cursor on
     * it keeps them while other statements run; the array is reused. */
    int64_t *rowids;
    int rowids_n, rowids_cap;
    bool rowids_nomem;
};
_Static_assert(RF_SQL_PARAMS_MAX <= UINT8_MAX, "a parameter number fits param_index");

/* What sqlite3_wal_hook's callback hands the WAL length to (sq_on_wal). */
struct wal_watch {
    bool (*fn)(void *arg, int pages);
    void *arg;
};

/* Transaction control statements, prepared once per connection: parsing
 * "SAVEPOINT sp1" for every operation of a batch cost more than many of the
 * operations' own statements. */
enum ctl { CTL_BEGIN_IMMEDIATE, CTL_BEGIN, CTL_COMMIT, CTL_ROLLBACK, CTL_SAVEPOINT,
           CTL_RELEASE, CTL_ROLLBACK_TO, CTL_COUNT };
static const char *const ctl_sql[CTL_COUNT] = {
    "BEGIN IMMEDIATE", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT sp1", "RELEASE sp1",
    "ROLLBACK TO sp1"};
#define CTL_SAVEPOINT_N 1 /* the savepoint the prepared statements name */

struct store_conn {
    sqlite3 *db;
    sqlite3_stmt *ctl[CTL_COUNT]; /* NULL until first used */
    bool fail_next_commit;
    struct wal_watch wal_watch;
    int cached;
    struct stmt_entry cache[RF_STMT_CACHE_MAX];
    struct store_rows *spare_rows; /* a closed cursor kept for the next query */
    sqlite3_file *wal;             /* wal_sync's WAL file (its VFS handle); NULL: not yet */
};

struct store_rows {
    struct store_conn *conn;
    sqlite3_stmt *stmt;       /* the statement whose row the cells are read from */
    struct stmt_entry *entry; /* NULL: a one-off statement, finalized at close */
    int rc;
    bool emulated;            /* RETURNING emulated: entry->dml, then entry->reread */
    bool written;             /* entry->dml has run; entry->rowids[next..] are left to read */
    int next;
};

static rf_err map_rc(int rc) {
    switch (rc & 0xff) {
    case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return RF_OK;
    case SQLITE_CONSTRAINT: return RF_ERR_CONFLICT;
    case SQLITE_BUSY: case SQLITE_LOCKED: case SQLITE_IOERR: case SQLITE_FULL:
    case SQLITE_CANTOPEN: case SQLITE_PROTOCOL: case SQLITE_READONLY:
        return RF_ERR_UNAVAILABLE;
    case SQLITE_NOMEM: return RF_ERR_NOMEM;
    default: return RF_ERR_INTERNAL;
    }
}

static rf_err report(struct store_conn *c, int rc, const char *what) {
    rf_err err = map_rc(rc);
    if (err == RF_ERR_INTERNAL || err == RF_ERR_UNAVAILABLE)
        rf_log_failure(err, sqlite3_errmsg(c->db), "sqlite: %s", what);
    return err;
}

static rf_err control(struct store_conn *c, enum ctl k) {
    RF_ASSERT(k >= 0 && k < CTL_COUNT);
    if (!c->ctl[k]) {
        int rc = sqlite3_prepare_v3(c->db, ctl_sql[k], -1, SQLITE_PREPARE_PERSISTENT, &c->ctl[k],
                                    NULL);
        if (rc != SQLITE_OK) return report(c, rc, ctl_sql[k]);
    }
    int rc = sqlite3_step(c->ctl[k]);
    sqlite3_reset(c->ctl[k]);
    if (rc == SQLITE_DONE) return RF_OK;
    rf_err err = map_rc(rc);
    if (err != RF_ERR_CONFLICT)
        rf_log_failure(err, sqlite3_errmsg(c->db), "sqlite: %s", ctl_sql[k]);
    return err;
}

static rf_err simple(struct store_conn *c, const char *sql) {
    char *msg = NULL;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        rf_err err = map_rc(rc);
        if (err != RF_ERR_CONFLICT) rf_log_failure(err, msg ? msg : "?", "sqlite: %.200s", sql);
        sqlite3_free(msg);
        return err;
    }
    return RF_OK;
}

static rf_err sq_connect(const char *url, const struct rf_options *opt, bool readonly,
                         struct store_conn **out) {
    RF_ASSERT(url && strncmp(url, "sqlite:", 7) == 0 && out);
    const char *path = url + 7;
    if (*path == '\0') return RF_ERR_INVALID;
    struct store_conn *c = calloc(1, sizeof *c);
    if (!c) return RF_ERR_NOMEM;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    /* A test-hooks handle's files go through the fault VFS (sqlite_faults.h). */
    const char *vfs = opt && opt->test_hooks ? store_faults_vfs() : NULL;
    int rc = sqlite3_open_v2(path, &c->db, flags, vfs);
    if (rc != SQLITE_OK) {
        rf_log_failure(RF_ERR_UNAVAILABLE, c->db ? sqlite3_errmsg(c->db) : "out of memory",
                       "sqlite: cannot open %s", path);
        sqlite3_close(c->db);
        free(c);
        return RF_ERR_UNAVAILABLE;
    }
    int busy_ms = opt && opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : RF_BUSY_TIMEOUT_MS;
    sqlite3_busy_timeout(c->db, busy_ms);
    bool normal = opt && opt->sync == RF_SYNC_NORMAL;
    rf_err err = simple(c, readonly ? "PRAGMA query_only=1" : "PRAGMA journal_mode=WAL");
    if (!err) err = simple(c, normal ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL");
    /* The schema's REFERENCES are not enforced on SQLite: their probes cost
     * every transfer and entry insert a read of each row referenced, and the
     * flows already write the referenced row first (a move finds its
     * account, a transfer precedes its entries, a hold its payout). Nothing
     * relies on a foreign key error; `racefree reconcile` counts a dangling
     * reference, and PostgreSQL keeps enforcing them. */
    if (!err) err = simple(c, "PRAGMA foreign_keys=OFF");
    /* The writer's savepoint journals: with temp_store=FILE SQLite keeps a
     * statement journal in memory up to 64 KiB (SQLITE_STMTJRNL_SPILL) in
     * one 64 KiB chunk, and writes a temp file only past that. With MEMORY
     * it grows the journal in 1 KiB chunks, and frees them all at every
     * RELEASE: each operation's savepoint malloc'd and freed four chunks
     * per page it wrote (~12k instructions an operation, on the writer
     * thread). Readers write no journal: their sorts stay in memory. */
    if (!err) err = simple(c, readonly ? "PRAGMA temp_store=MEMORY" : "PRAGMA temp_store=FILE");
    if (!err && !readonly) err = simple(c, "PRAGMA cache_size=" RF_STR(RF_SQLITE_WRITER_CACHE_KIB));
    if (err) {
        sqlite3_close(c->db);
        free(c);
        return err;
    }
    *out = c;
    return RF_OK;
}

static void sq_disconnect(struct store_conn *c) {
    if (!c) return;
    free(c->spare_rows);
    for (int i = 0; i < RF_STMT_CACHE_MAX; i++) {
        RF_ASSERT(!c->cache[i].in_use);
        sqlite3_finalize(c->cache[i].stmt);
        sqlite3_finalize(c->cache[i].dml);
        sqlite3_finalize(c->cache[i].reread);
        free(c->cache[i].rowids);
        free(c->cache[i].text);
    }
    for (int k = 0; k < CTL_COUNT; k++) sqlite3_finalize(c->ctl[k]);
    sqlite3_close(c->db);
    free(c);
}

/* Drops a trailing FOR UPDATE clause (see the file comment). */
static int sql_length_for_sqlite(const char *sql) {
    size_t n = strlen(sql);
    RF_ASSERT(n < SQLITE_SQL_BYTES_MAX);
    static const char *const suffixes[] = {" FOR UPDATE SKIP LOCKED", " FOR UPDATE"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t k = strlen(suffixes[i]);
        if (n >= k && strcmp(sql + n - k, suffixes[i]) == 0) return (int)(n - k);
    }
    return (int)n;
}

static rf_err prepare(struct store_conn *c, const char *sql, sqlite3_stmt **out) {
    int rc = sqlite3_prepare_v3(c->db, sql, sql_length_for_sqlite(sql),
                                SQLITE_PREPARE_PERSISTENT, out, NULL);
    if (rc != SQLITE_OK) return report(c, rc, "prepare");
    return RF_OK;
}

/* The $k -> parameter number table of a cached statement; false when the
 * text names a parameter that is not $1..$RF_SQL_PARAMS_MAX. */
static bool params_index(struct stmt_entry *e) {
    memset(e->param_index, 0, sizeof e->param_index);
    e->param_max = 0;
    for (int i = 1; i <= sqlite3_bind_parameter_count(e->stmt); i++) {
        const char *name = sqlite3_bind_parameter_name(e->stmt, i);
        long k = name && name[0] == '$' ? strtol(name + 1, NULL, 10) : 0;
        if (k < 1 || k > RF_SQL_PARAMS_MAX) return false;
        e->param_index[k - 1] = (uint8_t)i;
        if (k > e->param_max) e->param_max = (int)k;
    }
    return true;
}

/* ---- RETURNING without a temporary b-tree (file comment) --------------- */

/* The table an "UPDATE t ..." or "INSERT INTO t ..." text writes, into out;
 * false for any other statement. */
static bool written_table(const char *sql, char out[RF_SQLITE_TABLE_NAME_BYTES]) {
    static const char *const verbs[] = {"UPDATE ", "INSERT INTO "};
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        size_t v = strlen(verbs[i]);
        if (strncmp(sql, verbs[i], v) != 0) continue;
        size_t n = strcspn(sql + v, " (");
        /* a plain name: a schema-qualified or quoted one is not the name the
         * update hook and sqlite_schema report */
        if (n == 0 || n >= RF_SQLITE_TABLE_NAME_BYTES || strcspn(sql + v, ".\"'`[") < n)
            return false;
        memcpy(out, sql + v, n);
        out[n] = '\0';
        return true;
    }
    return false;
}

/* True when a trigger fires on table: its changes could differ from what a
 * RETURNING clause reports, so such a table keeps the real RETURNING. */
static bool has_triggers(struct store_conn *c, const char *table) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM sqlite_schema WHERE type = 'trigger'"
                                  " AND tbl_name = ?1", -1, &st, NULL) != SQLITE_OK)
        return true;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    bool found = sqlite3_step(st) != SQLITE_DONE;
    sqlite3_finalize(st);
    return found;
}

/* Prepares e->dml and e->reread when e's text qualifies: INSERT or UPDATE
 * of a rowid table without triggers, with a RETURNING list of no
 * parameters. Otherwise they stay NULL and the text runs as written. */
static void returning_prepare(struct store_conn *c, struct stmt_entry *e) {
    int len = sql_length_for_sqlite(e->text);
    const char *ret = NULL;
    for (const char *p = e->text; (p = strstr(p, " RETURNING ")) && p < e->text + len; p++)
        ret = p;
    if (!ret || strchr(ret, '$') || !written_table(e->text, e->table) ||
        has_triggers(c, e->table))
        return;
    const char *cols = ret + strlen(" RETURNING ");
    char sql[SQLITE_SQL_BYTES_MAX];
    int n = snprintf(sql, sizeof sql, "SELECT %.*s FROM %s WHERE rowid = ?1",
                     (int)(e->text + len - cols), cols, e->table);
    /* A WITHOUT ROWID table has no rowid: the read does not prepare. */
    const unsigned keep = SQLITE_PREPARE_PERSISTENT;
    if (n <= 0 || (size_t)n >= sizeof sql ||
        sqlite3_prepare_v3(c->db, sql, n, keep, &e->reread, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(c->db, e->text, (int)(ret - e->text), keep, &e->dml, NULL)) {
        sqlite3_finalize(e->reread);
        e->reread = NULL;
        return;
    }
    /* The clause named no parameter: both texts number $k alike. */
    RF_ASSERT(sqlite3_bind_parameter_count(e->dml) == sqlite3_bind_parameter_count(e->stmt));
}

/* sqlite3_update_hook: a row the emulated statement inserted or updated in
 * its table (a DELETE is never emulated; other tables are not its rows). */
static void note_rowid(void *arg, int op, const char *db, const char *table, sqlite3_int64 rowid) {
    struct stmt_entry *e = arg;
    if (op == SQLITE_DELETE || strcmp(db, "main") != 0 || strcmp(table, e->table) != 0) return;
    if (e->rowids_n == e->rowids_cap) {
        int cap = e->rowids_cap ? 2 * e->rowids_cap : 4;
        int64_t *grown = realloc(e->rowids, (size_t)cap * sizeof *grown);
        if (!grown) { e->rowids_nomem = true; return; }
        e->rowids = grown;
        e->rowids_cap = cap;
    }
    e->rowids[e->rowids_n++] = rowid;
}

/* Runs the statement without its RETURNING clause, noting the rows it
 * wrote: SQLITE_DONE, or the statement's error. */
static int returning_write(struct store_rows *r) {
    struct stmt_entry *e = r->entry;
    e->rowids_n = 0;
    e->rowids_nomem = false;
    sqlite3_update_hook(r->conn->db, note_rowid, e);
    int rc = sqlite3_step(e->dml);
    sqlite3_update_hook(r->conn->db, NULL, NULL);
    if (rc == SQLITE_ROW) rc = SQLITE_MISUSE; /* no RETURNING left to give rows */
    if (rc == SQLITE_DONE && e->rowids_nomem) rc = SQLITE_NOMEM;
    return rc;
}

/* The next returned row: the first call writes, every call reads one row. */
static int returning_next(struct store_rows *r) {
    if (!r->written) {
        r->written = true;
        r->next = 0;
        r->rc = returning_write(r);
        if (r->rc != SQLITE_DONE) return -1;
    }
    struct stmt_entry *e = r->entry;
    if (r->next == e->rowids_n) return r->rc = SQLITE_DONE, 0;
    sqlite3_reset(e->reread);
    sqlite3_bind_int64(e->reread, 1, e->rowids[r->next++]);
    r->stmt = r->entry->reread;
    r->rc = sqlite3_step(r->stmt);
    /* the write lock is held: the row it just wrote is there */
    if (r->rc == SQLITE_DONE) r->rc = SQLITE_INTERNAL;
    return r->rc == SQLITE_ROW ? 1 : -1;
}

/* Finds or prepares the cached statement for sql; entry_out is NULL when the
 * statement is a one-off (cache full, or the cached one has an open cursor). */
static rf_err stmt_get(struct store_conn *c, const char *sql, sqlite3_stmt **stmt_out,
                       struct stmt_entry **entry_out) {
    size_t h = ((size_t)(uintptr_t)sql >> 3) % RF_STMT_CACHE_MAX;
    for (int probe = 0; probe < RF_STMT_CACHE_MAX; probe++) {
        struct stmt_entry *e = &c->cache[(h + (size_t)probe) % RF_STMT_CACHE_MAX];
        if (e->key == sql && strcmp(e->text, sql) == 0) {
            if (e->in_use) break;
            *stmt_out = e->stmt;
            *entry_out = e;
            return RF_OK;
        }
        if (e->key == NULL && c->cached < RF_STMT_CACHE_MAX / 2) {
            rf_err err = prepare(c, sql, &e->stmt);
            if (err) return err;
            bool named = params_index(e);
            RF_ASSERT(named); /* our texts name $1..$n only */
            e->text = strdup(sql);
            if (!e->text) { sqlite3_finalize(e->stmt); e->stmt = NULL; return RF_ERR_NOMEM; }
            e->key = sql;
            c->cached++;
            returning_prepare(c, e);
            *stmt_out = e->stmt;
            *entry_out = e;
            return RF_OK;
        }
    }
    *entry_out = NULL;
    return prepare(c, sql, stmt_out);
}

/* Every parameter the text names is one of $1..$n: a parameter past the
 * caller's count would silently bind NULL. */
static bool params_within(sqlite3_stmt *st, int n) {
    for (int i = 1; i <= sqlite3_bind_parameter_count(st); i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        long k = name && name[0] == '$' ? strtol(name + 1, NULL, 10) : 0;
        if (k < 1 || k > n) return false;
    }
    return true;
}

/* The parameter number of $k (1-based), 0 when the text does not use it:
 * from the cached statement's table, by name for a one-off statement. */
static int param_number(sqlite3_stmt *st, const struct stmt_entry *e, int k) {
    if (e) return e->param_index[k - 1];
    char name[16];
    snprintf(name, sizeof name, "$%d", k);
    return sqlite3_bind_parameter_index(st, name);
}

static rf_err bind_all(struct store_conn *c, sqlite3_stmt *st, const struct stmt_entry *e,
                       const store_val *p, int n) {
    RF_ASSERT(n >= 0 && n <= RF_SQL_PARAMS_MAX && (n == 0 || p));
    RF_ASSERT(e ? e->param_max <= n : params_within(st, n));
    for (int i = 0; i < n; i++) {
        int idx = param_number(st, e, i + 1);
        if (idx == 0) continue; /* a parameter this text does not use */
        int rc;
        if (p[i].type == SV_INT) rc = sqlite3_bind_int64(st, idx, p[i].i);
        else if (p[i].type == SV_TEXT) rc = sqlite3_bind_text(st, idx, p[i].s, -1, SQLITE_STATIC);
        else rc = sqlite3_bind_null(st, idx);
        if (rc != SQLITE_OK) return report(c, rc, "bind");
    }
    return RF_OK;
}

static rf_err sq_query(struct store_conn *c, const char *sql, const store_val *p, int n,
                       struct store_rows **out) {
    struct store_rows *r = c->spare_rows; /* no allocation per statement */
    c->spare_rows = NULL;
    if (!r && !(r = malloc(sizeof *r))) return RF_ERR_NOMEM;
    memset(r, 0, sizeof *r);
    rf_err err = stmt_get(c, sql, &r->stmt, &r->entry);
    if (!err && r->entry && r->entry->dml && !sqlite3_get_autocommit(c->db)) {
        r->emulated = true; /* in a transaction: the file comment's RETURNING */
        r->stmt = r->entry->dml;
    }
    if (!err) err = bind_all(c, r->stmt, r->entry, p, n);
    if (err) {
        if (r->entry) { sqlite3_reset(r->stmt); sqlite3_clear_bindings(r->stmt); }
        else sqlite3_finalize(r->stmt);
        free(r);
        return err;
    }
    if (r->entry) r->entry->in_use = true;
    r->conn = c;
    *out = r;
    return RF_OK;
}

static int sq_rows_next(struct store_rows *r) {
    if (r->emulated) return returning_next(r);
    r->rc = sqlite3_step(r->stmt);
    if (r->rc == SQLITE_ROW) return 1;
    if (r->rc == SQLITE_DONE) return 0;
    return -1;
}

static rf_err sq_rows_err(struct store_rows *r) { return report(r->conn, r->rc, "step"); }

/* A cell of the current row: a row was stepped to, col is one of its columns. */
static void cell_check(const struct store_rows *r, int col) {
    RF_ASSERT(r && r->rc == SQLITE_ROW);
    RF_ASSERT(col >= 0 && col < sqlite3_column_count(r->stmt));
}

static bool sq_rows_null(struct store_rows *r, int col) {
    cell_check(r, col);
    return sqlite3_column_type(r->stmt, col) == SQLITE_NULL;
}

static int64_t sq_rows_int(struct store_rows *r, int col) {
    cell_check(r, col);
    return sqlite3_column_int64(r->stmt, col);
}

static const char *sq_rows_text(struct store_rows *r, int col) {
    cell_check(r, col);
    const unsigned char *t = sqlite3_column_text(r->stmt, col);
    return t ? (const char *)t : "";
}

static void sq_rows_close(struct store_rows *r) {
    if (!r) return;
    if (r->emulated) {
        sqlite3_reset(r->entry->dml);
        sqlite3_clear_bindings(r->entry->dml);
        sqlite3_reset(r->entry->reread);
        r->entry->in_use = false;
    } else if (r->entry) {
        sqlite3_reset(r->stmt);
        sqlite3_clear_bindings(r->stmt);
        r->entry->in_use = false;
    } else {
        sqlite3_finalize(r->stmt);
    }
    if (r->conn && !r->conn->spare_rows) r->conn->spare_rows = r;
    else free(r);
}

static rf_err sq_exec(struct store_conn *c, const char *sql, const store_val *p, int n,
                      int64_t *changes_out) {
    struct store_rows *r = NULL;
    rf_err err = sq_query(c, sql, p, n, &r);
    if (err) return err;
    int rc, rows = 0;
    while ((rc = sq_rows_next(r)) > 0) rows++; /* RETURNING rows, if any, are dropped */
    if (rc < 0) err = sq_rows_err(r);
    else if (changes_out) *changes_out = sqlite3_changes64(c->db);
    sq_rows_close(r);
    (void)rows;
    return err;
}

/* In process, a statement costs no round trip: nothing is worth queuing. */
static rf_err sq_exec_later(struct store_conn *c, const char *sql, const store_val *p, int n,
                            store_later_fn fn, void *ctx) {
    if (!fn) return sq_exec(c, sql, p, n, NULL);
    struct store_rows *r = NULL;
    rf_err err = sq_query(c, sql, p, n, &r);
    if (err) return err;
    int rc = sq_rows_next(r);
    if (rc > 0) fn(ctx, r);
    if (rc < 0) err = sq_rows_err(r);
    sq_rows_close(r);
    return err;
}

static rf_err sq_settle(struct store_conn *c) {
    (void)c;
    return RF_OK;
}

static rf_err sq_exec_script(struct store_conn *c, const char *sql) { return simple(c, sql); }

static rf_err sq_begin(struct store_conn *c, bool write) {
    return control(c, write ? CTL_BEGIN_IMMEDIATE : CTL_BEGIN);
}

static void sq_rollback(struct store_conn *c) {
    if (!sqlite3_get_autocommit(c->db)) (void)control(c, CTL_ROLLBACK);
}

static rf_err sq_commit(struct store_conn *c) {
    if (c->fail_next_commit) {
        c->fail_next_commit = false;
        rf_log_failure(RF_ERR_UNAVAILABLE, "forced commit failure (test hook)", "sqlite: COMMIT");
        sq_rollback(c);
        return RF_ERR_UNAVAILABLE;
    }
    rf_err err = control(c, CTL_COMMIT);
    if (err) sq_rollback(c);
    return err;
}

/* k: CTL_SAVEPOINT, CTL_RELEASE or CTL_ROLLBACK_TO, of savepoint n. */
static rf_err savepoint_cmd(struct store_conn *c, enum ctl k, int n) {
    RF_ASSERT(n >= 0 && n < 1000);
    RF_ASSERT(k == CTL_SAVEPOINT || k == CTL_RELEASE || k == CTL_ROLLBACK_TO);
    if (n == CTL_SAVEPOINT_N) return control(c, k); /* the executor's */
    const char *verb = k == CTL_SAVEPOINT ? "SAVEPOINT" : k == CTL_RELEASE ? "RELEASE" : "ROLLBACK TO";
    char sql[48];
    snprintf(sql, sizeof sql, "%s sp%d", verb, n);
    return simple(c, sql);
}

static rf_err sq_savepoint(struct store_conn *c, int n) { return savepoint_cmd(c, CTL_SAVEPOINT, n); }
static rf_err sq_release(struct store_conn *c, int n) { return savepoint_cmd(c, CTL_RELEASE, n); }
static rf_err sq_release_savepoint(struct store_conn *c, int n) {
    rf_err err = sq_release(c, n);
    return err ? err : sq_savepoint(c, n);
}
static void sq_rollback_to(struct store_conn *c, int n) {
    (void)savepoint_cmd(c, CTL_ROLLBACK_TO, n);
}

/* A SQLite handle never breaks the way a socket does; errors are per call.
 * Outside a transaction after BEGIN means SQLite rolled it back itself. */
static bool sq_broken(struct store_conn *c) { (void)c; return false; }

static void sq_fail_next_commit(struct store_conn *c) { c->fail_next_commit = true; }

static int wal_hook(void *ctx, sqlite3 *db, const char *name, int pages) {
    (void)name;
    const struct wal_watch *w = ctx;
    if (w->fn(w->arg, pages)) (void)sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                                               NULL, NULL);
    return SQLITE_OK;
}

/* Replaces the connection's automatic checkpoint (itself a WAL hook), which
 * would copy pages and fsync the database inside a COMMIT of the writer. */
static void sq_on_wal(struct store_conn *c, bool (*fn)(void *arg, int pages), void *arg) {
    c->wal_watch.fn = fn;
    c->wal_watch.arg = arg;
    sqlite3_wal_hook(c->db, wal_hook, &c->wal_watch);
}

static rf_err sq_checkpoint(struct store_conn *c) {
    int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return rc == SQLITE_OK || rc == SQLITE_BUSY ? RF_OK : report(c, rc, "checkpoint");
}

static rf_err sq_commit_unsynced(struct store_conn *c) {
    return simple(c, "PRAGMA synchronous=NORMAL");
}

/* The WAL file as this connection's VFS opened it: a read transaction
 * opens the WAL (and keeps it open while the connection is), and
 * SQLITE_FCNTL_JOURNAL_POINTER then names it. Syncing through the VFS, not
 * a descriptor of our own, keeps whatever the VFS does at a sync (the unix
 * VFS: fdatasync, and once the directory entry of a file it created). */
static rf_err wal_file(struct store_conn *c, sqlite3_file **out) {
    *out = NULL;
    rf_err err = simple(c, "SELECT count(*) FROM sqlite_schema");
    if (err) return err;
    int rc = sqlite3_file_control(c->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, out);
    if (rc != SQLITE_OK) return report(c, rc, "WAL file");
    if (!*out || !(*out)->pMethods) { /* not in WAL mode: nothing else syncs its commits */
        *out = NULL;
        rf_log_failure(RF_ERR_UNAVAILABLE, "the store has no open WAL file to sync",
                       "sqlite: sync");
        return RF_ERR_UNAVAILABLE;
    }
    return RF_OK;
}

/* Linux: a sync of any handle of the file writes back every dirty page of
 * it, whichever connection wrote them. */
static rf_err sq_wal_sync(struct store_conn *c) {
    if (!c->wal) {
        rf_err err = wal_file(c, &c->wal);
        if (err) return err;
    }
    int rc = c->wal->pMethods->xSync(c->wal, SQLITE_SYNC_NORMAL);
    return rc == SQLITE_OK ? RF_OK : report(c, rc, "sync of the WAL");
}

const struct store_ops store_sqlite_ops = {
    .backend = STORE_SQLITE,
    .name = "sqlite",
    .connect = sq_connect,
    .disconnect = sq_disconnect,
    .exec_script = sq_exec_script,
    .exec = sq_exec,
    .exec_later = sq_exec_later,
    .settle = sq_settle,
    .query = sq_query,
    .rows_next = sq_rows_next,
    .rows_err = sq_rows_err,
    .rows_null = sq_rows_null,
    .rows_int = sq_rows_int,
    .rows_text = sq_rows_text,
    .rows_close = sq_rows_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .rollback_to = sq_rollback_to,
    .release_savepoint = sq_release_savepoint,
    .broken = sq_broken,
    .fail_next_commit = sq_fail_next_commit,
    .on_wal = sq_on_wal,
    .checkpoint = sq_checkpoint,
    .commit_unsynced = sq_commit_unsynced,
    .wal_sync = sq_wal_sync,
};
