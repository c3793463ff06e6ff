/*
 * test_store.c - the store_ops contract, checked directly against one back
 * end: RF_TEST_DB="sqlite" (a file in /tmp) or a PostgreSQL URL.
 *
 * Flows rely on these behaviours being the same on both back ends: $N
 * parameters in any order, savepoints that undo only their part, constraint
 * violations as RF_ERR_CONFLICT with the transaction still usable, RETURNING,
 * ON CONFLICT DO NOTHING, a FOR UPDATE suffix, and the commit fault hook.
 * exec_later: a statement sent without waiting (PostgreSQL: pipeline mode)
 * whose failure is the next call's answer, mapped as exec maps it, with what
 * followed it not run and the savepoint before it still usable; SQLite runs
 * it at once.
 * RETURNING answers alike whether SQLite runs it as written or the store
 * reads the written rows back (store/sqlite.c): every row a statement
 * wrote, with its new values, none for a row it did not write, a
 * constraint's conflict, and the statement's values where a trigger
 * changed the row afterwards (SQLite).
 * PostgreSQL only: a COMMIT whose answer is lost is resolved (committed ->
 * RF_OK; not learnable -> RF_ERR_OUTCOME_UNKNOWN), and every wait is bounded (a statement the server would run
 * forever, a server that accepts TCP and never answers).
 * Each test uses its own id range in one table with a random name, so runs
 * against a shared PostgreSQL never collide.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/limits.h"
#include "store/store.h"
#include "testlib/rf_testlib.h"

#define SQL_BYTES 512

static struct {
    const struct store_ops *ops;
    struct store_conn *c;
    bool is_pg;
    char url[512];
    char sqlite_path[128];
    char table[64];
    /* Built once, so every call passes the same pointer (the cached path). */
    char create[SQL_BYTES], drop[SQL_BYTES], ins[SQL_BYTES], sel[SQL_BYTES],
        count[SQL_BYTES], ins_ret[SQL_BYTES], ins_ignore[SQL_BYTES],
        upd_ret[SQL_BYTES], sel_upd[SQL_BYTES], sel_skip[SQL_BYTES], bad[SQL_BYTES],
        sel_gap[SQL_BYTES], upd_many[SQL_BYTES], upsert_ret[SQL_BYTES];
} F;

static void sql(char *buf, const char *fmt) {
    int n = snprintf(buf, SQL_BYTES, fmt, F.table);
    assert_true(n > 0 && n < SQL_BYTES);
}

#define must(e) assert_int_equal((e), RF_OK) /* a macro: the failing line is reported */

/* Inserts (id, name, note, amount); params deliberately bound $2 before $1. */
static rf_err ins(struct store_conn *c, int64_t id, const char *name, const char *note,
                  int64_t amount) {
    store_val p[4] = {SV_I(id), SV_S(name), SV_S(note), SV_I(amount)};
    int64_t changes = -1;
    rf_err err = F.ops->exec(c, F.ins, p, 4, &changes);
    if (!err) assert_int_equal(changes, 1);
    return err;
}

/* A one-row, one-column integer query. */
static int64_t q_int(struct store_conn *c, const char *text, const store_val *p, int n) {
    struct store_rows *r = NULL;
    must(F.ops->query(c, text, p, n, &r));
    assert_int_equal(F.ops->rows_next(r), 1);
    int64_t v = F.ops->rows_int(r, 0);
    assert_int_equal(F.ops->rows_next(r), 0);
    F.ops->rows_close(r);
    return v;
}

static int64_t count_ids(int64_t lo, int64_t hi) {
    store_val p[2] = {SV_I(lo), SV_I(hi)};
    return q_int(F.c, F.count, p, 2);
}

/* ---- setup ------------------------------------------------------------ */

static void random_hex(char *out, size_t bytes) {
    unsigned char raw[16];
    assert_true(bytes <= sizeof raw);
    int fd = open("/dev/urandom", O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, raw, bytes), (ssize_t)bytes);
    close(fd);
    for (size_t i = 0; i < bytes; i++) sprintf(out + 2 * i, "%02x", raw[i]);
}

static void build_sql(void) {
    sql(F.create, "CREATE TABLE %s (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
                  " note TEXT, amount BIGINT NOT NULL DEFAULT 0 CHECK (amount >= 0))");
    sql(F.drop, "DROP TABLE %s");
    sql(F.ins, "INSERT INTO %s (name, id, note, amount) VALUES ($2, $1, $3, $4)");
    sql(F.sel, "SELECT id, name, note, amount FROM %s WHERE id = $1");
    sql(F.count, "SELECT COUNT(*) FROM %s WHERE id >= $1 AND id <= $2");
    sql(F.ins_ret, "INSERT INTO %s (id, name, amount) VALUES ($1, $2, $3)"
                   " RETURNING id, name, amount");
    sql(F.ins_ignore, "INSERT INTO %s (id, name) VALUES ($1, $2)"
                      " ON CONFLICT (name) DO NOTHING RETURNING id");
    sql(F.upd_ret, "UPDATE %s SET amount = amount - $1 WHERE id = $2 AND amount >= $1"
                   " RETURNING amount");
    sql(F.sel_upd, "SELECT amount FROM %s WHERE id = $1 FOR UPDATE");
    sql(F.sel_skip, "SELECT id FROM %s WHERE id >= $1 AND id <= $2 ORDER BY id"
                    " FOR UPDATE SKIP LOCKED");
    sql(F.bad, "SELECT no_such_column FROM %s");
    sql(F.sel_gap, "SELECT COUNT(*) FROM %s WHERE id >= $3 AND name <> $1");
    sql(F.upd_many, "UPDATE %s SET amount = amount + $1, note = 'many' WHERE id >= $2 AND id <= $3"
                    " RETURNING id, amount, note");
    int n = snprintf(F.upsert_ret, SQL_BYTES, "INSERT INTO %s (id, name, amount)"
                     " VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET amount = %s.amount + excluded.amount"
                     " WHERE %s.amount < 1000 RETURNING id, amount", F.table, F.table, F.table);
    assert_true(n > 0 && n < SQL_BYTES);
}

static int group_setup(void **state) {
    (void)state;
    const char *db = getenv("RF_TEST_DB");
    if (!db || !*db) db = "sqlite";
    F.is_pg = strcmp(db, "sqlite") != 0;
    if (F.is_pg) {
        snprintf(F.url, sizeof F.url, "%s", db);
        F.ops = &store_postgres_ops;
    } else {
        snprintf(F.sqlite_path, sizeof F.sqlite_path, "/tmp/rf-test-store-%d.db", (int)getpid());
        unlink(F.sqlite_path);
        snprintf(F.url, sizeof F.url, "sqlite:%s", F.sqlite_path);
        F.ops = &store_sqlite_ops;
    }
    assert_ptr_equal(store_for_url(F.url), F.ops);
    char hex[17];
    random_hex(hex, 8);
    snprintf(F.table, sizeof F.table, "rf_test_store_%s", hex);
    build_sql();
    must(F.ops->connect(F.url, NULL, false, &F.c));
    must(F.ops->exec_script(F.c, F.create));
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    if (F.c) {
        rf_err err = F.ops->exec_script(F.c, F.drop);
        F.ops->disconnect(F.c);
        F.c = NULL;
        if (err) return -1;
    }
    if (!F.is_pg) {
        char p[160];
        const char *suffixes[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "%s%s", F.sqlite_path, suffixes[i]);
            unlink(p);
        }
    }
    return 0;
}

/* ---- tests ------------------------------------------------------------ */

static void test_params_and_rows(void **state) {
    (void)state;
    struct store_conn *c = F.c;
    must(F.ops->begin(c, true));
    must(ins(c, 1, "alice", NULL, 10));
    must(ins(c, INT64_MAX, "gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac", "a note", 0));
    must(ins(c, INT64_MIN, "min", "", 0));

    struct store_rows *r = NULL;
    store_val p1[1] = {SV_I(1)};
    must(F.ops->query(c, F.sel, p1, 1, &r));
    assert_int_equal(F.ops->rows_next(r), 1);
    assert_int_equal(F.ops->rows_int(r, 0), 1);
    assert_string_equal(F.ops->rows_text(r, 1), "alice");
    assert_false(F.ops->rows_null(r, 1));
    assert_true(F.ops->rows_null(r, 2));
    assert_string_equal(F.ops->rows_text(r, 2), "");
    assert_int_equal(F.ops->rows_int(r, 3), 10);
    assert_int_equal(F.ops->rows_next(r), 0);
    F.ops->rows_close(r);

    store_val pmax[1] = {SV_I(INT64_MAX)};
    must(F.ops->query(c, F.sel, pmax, 1, &r));
    assert_int_equal(F.ops->rows_next(r), 1);
    assert_true(F.ops->rows_int(r, 0) == INT64_MAX);
    assert_string_equal(F.ops->rows_text(r, 1), "gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac");
    assert_string_equal(F.ops->rows_text(r, 2), "a note");
    F.ops->rows_close(r);

    /* An empty string is not NULL. */
    store_val pmin[1] = {SV_I(INT64_MIN)};
    must(F.ops->query(c, F.sel, pmin, 1, &r));
    assert_int_equal(F.ops->rows_next(r), 1);
    assert_true(F.ops->rows_int(r, 0) == INT64_MIN);
    assert_false(F.ops->rows_null(r, 2));
    F.ops->rows_close(r);
    must(F.ops->commit(c));

    must(F.ops->begin(c, false));
    assert_int_equal(count_ids(1, 1), 1);
    /* A parameter the text does not use ($2) is accepted and ignored. */
    store_val gap[3] = {SV_S("nobody"), SV_I(12345), SV_I(INT64_MAX)};
    assert_int_equal(q_int(c, F.sel_gap, gap, 3), 1);
    must(F.ops->commit(c));
}

static void test_savepoint_undoes_only_its_part(void **state) {
    (void)state;
    struct store_conn *c = F.c;
    must(F.ops->begin(c, true));
    must(ins(c, 100, "sp-100", NULL, 0));
    must(F.ops->savepoint(c, 1));
    must(ins(c, 101, "sp-101", NULL, 0));
    F.ops->rollback_to(c, 1);
    must(F.ops->release(c, 1));
    must(F.ops->savepoint(c, 2));
    must(ins(c, 102, "sp-102", NULL, 0));
    must(F.ops->release(c, 2));
    assert_int_equal(count_ids(100, 102), 2);
    must(F.ops->commit(c));
    assert_int_equal(count_ids(100, 100), 1);
    assert_int_equal(count_ids(101, 101), 0);
    assert_int_equal(count_ids(102, 102), 1);
}

/* A savepoint whose journal outgrows memory (SQLite journals each page a
 * savepoint changes that existed before it, 64 KiB in memory, the rest in a
 * temp file): 400 rows of 1 KiB written, then all changed and one more
 * added under a savepoint that rolls back, leave the rows as they were. */
static void test_savepoint_past_memory(void **state) {
    (void)state;
    struct store_conn *c = F.c;
    char note[1024], upd[SQL_BYTES];
    memset(note, 'n', sizeof note - 1);
    note[sizeof note - 1] = '\0';
    snprintf(upd, sizeof upd, "UPDATE %s SET note = 'changed', amount = 1"
                              " WHERE id >= $1 AND id <= $2", F.table);
    must(F.ops->begin(c, true));
    for (int i = 0; i < 400; i++) {
        char name[16];
        snprintf(name, sizeof name, "big-%d", 2000 + i);
        must(ins(c, 2000 + i, name, note, 0));
    }
    must(F.ops->savepoint(c, 1));
    store_val p[2] = {SV_I(2000), SV_I(2399)};
    int64_t changed = 0;
    must(F.ops->exec(c, upd, p, 2, &changed));
    assert_int_equal(changed, 400);
    must(ins(c, 2400, "big-2400", note, 0));
    F.ops->rollback_to(c, 1);
    must(F.ops->release(c, 1));
    must(F.ops->commit(c));
    assert_int_equal(count_ids(2000, 2400), 400);
    static char changed_count[SQL_BYTES];
    snprintf(changed_count, sizeof changed_count,
             "SELECT COUNT(*) FROM %s WHERE id >= $1 AND id <= $2 AND amount = 0 AND note = $3",
             F.table);
    store_val q[3] = {SV_I(2000), SV_I(2399), SV_S(note)};
    assert_int_equal(q_int(c, changed_count, q, 3), 400);
}

static void test_constraints_conflict_and_tx_stays_usable(void **state) {
    (void)state;
    struct store_conn *c = F.c;
    must(F.ops->begin(c, true));
    must(ins(c, 200, "dup", NULL, 0));
    must(F.ops->savepoint(c, 1));
    assert_int_equal(ins(c, 201, "dup", NULL, 0), RF_ERR_CONFLICT); /* unique */
    F.ops->rollback_to(c, 1);
    must(F.ops->savepoint(c, 2));
    assert_int_equal(ins(c, 200, "other", NULL, 0), RF_ERR_CONFLICT); /* primary key */
    F.ops->rollback_to(c, 2);
    must(F.ops->savepoint(c, 3));
    assert_int_equal(ins(c, 202, "negative", NULL, -1), RF_ERR_CONFLICT); /* check */
    F.ops->rollback_to(c, 3);
    must(F.ops->savepoint(c, 4));
    assert_int_equal(ins(c, 204, NULL, NULL, 0), RF_ERR_CONFLICT); /* not null */
    F.ops->rollback_to(c, 4);
    must(ins(c, 203, "ok", NULL, 0));
    assert_int_equal(count_ids(200, 204), 2);
    must(F.ops->commit(c));
    assert_int_equal(count_ids(200, 204), 2);
}

static void test_returning(void **state) {
    (void)state;
    struct store_conn *c = F.c;
    must(F.ops->begin(c, true));
    struct store_rows *r = NULL;
    store_val p[3] = {SV_I(300), SV_S("ret"), SV_I(50)};
    must(F.ops->query(c, F.ins_ret, p, 3, &r));
    assert_int_equal(F.ops->rows_next(r), 1);
    assert_int_equal(F.ops->rows_int(r, 0), 300);
    assert_string_equal(F.ops->rows_text(r, 1), "ret");
    assert_int_equal(F.ops->rows_int(r, 2), 50);
    assert_int_equal(F.ops->rows_next(r), 0);
    F.ops->rows_close(r);

    /* ON CONFLICT DO NOTHING: the first insert returns its row, a second
     * with the same natural key returns none and is no error. */
    store_val a[2] = {SV_I(301), SV_S("ign")};
    assert_int_equal(q_int(c, F.ins_ignore, a, 2), 301);
    store_val b[2] = {SV_I(302), SV_S("ign")};
    must(F.ops->query(c, F.ins_ignore, b, 2, &r));
    assert_int_equal(F.ops->rows_next(r), 0);
    F.ops->rows_close(r);

    /* A conditional UPDATE ... RETURNING: a row when the condition holds. */
    store_val u1[2] = {SV_I(20), SV_I(300)};
    assert_int_equal(q_int(c, F.upd_ret, u1, 2), 30);
    store_val u2[2] = {SV_I(40), SV_I(300)};
    must(F.ops->query(c, F.upd_ret, u2, 2, &r));
    assert_int_equal(F.ops->rows_next(r), 0);
    F.ops->rows_close(r);
    int64_t changes = -1;
    store_val u3[2] = {SV_I(10), SV_I(300)};
    must(F.ops->exec(c, F.upd_ret, u3, 2, &changes));
    assert_int_equal(changes, 1);
    must(F.ops->commit(c));
    assert_int_equal(count_ids(300, 302), 2);
}

/* Every row a multi-row UPDATE wrote, each with its new values (also while
 * other RETURNING statements run between its rows); an upsert's
 * row whether it inserted or updated, none when its WHERE kept the row; a
 * constraint failure as a conflict that leaves the transaction usable; and
 * the same answers outside a transaction. */
static void test_returning_rows_written(void **state) {
    (void)state;
    struct store_conn *c = F.c;
    must(F.ops->begin(c, true));
    for (int64_t id = 500; id < 503; id++) {
        char name[16];
        snprintf(name, sizeof name, "many-%d", (int)id);
        must(ins(c, id, name, NULL, id));
    }
    struct store_rows *r = NULL;
    store_val p[3] = {SV_I(7), SV_I(500), SV_I(502)};
    must(F.ops->query(c, F.upd_many, p, 3, &r));
    int64_t seen = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(F.ops->rows_next(r), 1);
        int64_t id = F.ops->rows_int(r, 0);
        assert_true(id >= 500 && id <= 502 && !(seen & (1 << (id - 500))));
        seen |= 1 << (id - 500);
        assert_int_equal(F.ops->rows_int(r, 1), id + 7);
        assert_string_equal(F.ops->rows_text(r, 2), "many");
        /* another RETURNING while this cursor is open takes none of its rows */
        store_val other[3] = {SV_I(520 + i), SV_S(i == 0 ? "o0" : i == 1 ? "o1" : "o2"), SV_I(1)};
        assert_int_equal(q_int(c, F.upsert_ret, other, 3), 520 + i);
    }
    assert_int_equal(F.ops->rows_next(r), 0);
    F.ops->rows_close(r);

    store_val up[3] = {SV_I(510), SV_S("up"), SV_I(600)};
    assert_int_equal(q_int(c, F.upsert_ret, up, 3), 510); /* inserted */
    store_val again[3] = {SV_I(510), SV_S("up"), SV_I(600)};
    must(F.ops->query(c, F.upsert_ret, again, 3, &r)); /* updated: 1200 */
    assert_int_equal(F.ops->rows_next(r), 1);
    assert_int_equal(F.ops->rows_int(r, 1), 1200);
    assert_int_equal(F.ops->rows_next(r), 0);
    F.ops->rows_close(r);
    must(F.ops->query(c, F.upsert_ret, again, 3, &r)); /* 1200 is not < 1000: kept */
    assert_int_equal(F.ops->rows_next(r), 0);
    F.ops->rows_close(r);

    must(F.ops->savepoint(c, 1));
    store_val neg[3] = {SV_I(-1000), SV_I(500), SV_I(502)}; /* amount >= 0 fails */
    rf_err err = F.ops->query(c, F.upd_many, neg, 3, &r); /* PostgreSQL fails here */
    if (!err) { /* SQLite at the first step */
        assert_int_equal(F.ops->rows_next(r), -1);
        err = F.ops->rows_err(r);
        F.ops->rows_close(r);
    }
    assert_int_equal(err, RF_ERR_CONFLICT);
    F.ops->rollback_to(c, 1);
    must(F.ops->release(c, 1));
    must(F.ops->commit(c));

    store_val after[3] = {SV_I(1), SV_I(501), SV_I(501)}; /* autocommit */
    must(F.ops->query(c, F.upd_many, after, 3, &r));
    assert_int_equal(F.ops->rows_next(r), 1);
    assert_int_equal(F.ops->rows_int(r, 1), 501 + 7 + 1);
    assert_int_equal(F.ops->rows_next(r), 0);
    F.ops->rows_close(r);
}

/* SQLite: RETURNING reports the statement's values, not what a trigger
 * wrote to the row afterwards; a table with a trigger keeps SQLite's own
 * RETURNING, which the store's read-back would not match. */
static void test_returning_before_trigger(void **state) {
    (void)state;
    if (F.is_pg) skip(); /* the trigger syntax is SQLite's; the point is the store's read-back */
    struct store_conn *c = F.c;
    must(F.ops->exec_script(c, "CREATE TABLE rf_test_trig (id INTEGER PRIMARY KEY, v BIGINT);"
                               "CREATE TRIGGER rf_test_trig_bump AFTER UPDATE ON rf_test_trig BEGIN"
                               " UPDATE rf_test_trig SET v = v + 100 WHERE id = NEW.id AND v < 100;"
                               " END;"
                               "INSERT INTO rf_test_trig VALUES (1, 1);"));
    static const char upd[] = "UPDATE rf_test_trig SET v = v + 1 WHERE id = $1 RETURNING v";
    must(F.ops->begin(c, true));
    store_val p[1] = {SV_I(1)};
    assert_int_equal(q_int(c, upd, p, 1), 2);   /* the trigger then made it 102 */
    assert_int_equal(q_int(c, upd, p, 1), 103);
    must(F.ops->commit(c));
    must(F.ops->exec_script(c, "DROP TABLE rf_test_trig"));
}

static void test_for_update(void **state) {
    (void)state;
    struct store_conn *c = F.c;
    must(F.ops->begin(c, true));
    must(ins(c, 400, "fu-400", NULL, 7));
    must(ins(c, 401, "fu-401", NULL, 8));
    must(F.ops->commit(c));

    must(F.ops->begin(c, true));
    store_val p[1] = {SV_I(400)};
    assert_int_equal(q_int(c, F.sel_upd, p, 1), 7);
    struct store_rows *r = NULL;
    store_val range[2] = {SV_I(400), SV_I(401)};
    must(F.ops->query(c, F.sel_skip, range, 2, &r));
    assert_int_equal(F.ops->rows_next(r), 1);
    assert_int_equal(F.ops->rows_int(r, 0), 400);
    assert_int_equal(F.ops->rows_next(r), 1);
    assert_int_equal(F.ops->rows_int(r, 0), 401);
    assert_int_equal(F.ops->rows_next(r), 0);
    F.ops->rows_close(r);
    must(F.ops->commit(c));
    if (!F.is_pg) return;

    /* PostgreSQL: a row locked by another transaction is skipped. */
    struct store_conn *c2 = NULL;
    must(F.ops->connect(F.url, NULL, false, &c2));
    must(F.ops->begin(c2, true));
    assert_int_equal(q_int(c2, F.sel_upd, p, 1), 7);
    must(F.ops->begin(c, true));
    assert_int_equal(q_int(c, F.sel_skip, range, 2), 401);
    must(F.ops->commit(c));
    must(F.ops->commit(c2));
    F.ops->disconnect(c2);
}

static void test_unexpected_error_is_internal(void **state) {
    (void)state;
    struct store_conn *c = F.c;
    must(F.ops->begin(c, true));
    struct store_rows *r = NULL;
    assert_int_equal(F.ops->query(c, F.bad, NULL, 0, &r), RF_ERR_INTERNAL);
    assert_null(r);
    F.ops->rollback(c);
    assert_false(F.ops->broken(c));
    if (F.is_pg) {
        /* COMMIT of a transaction an error aborted must not look like success. */
        must(F.ops->begin(c, true));
        assert_int_equal(F.ops->exec(c, F.bad, NULL, 0, NULL), RF_ERR_INTERNAL);
        assert_int_equal(F.ops->commit(c), RF_ERR_INTERNAL);
        F.ops->rollback(c);
    }
    must(F.ops->begin(c, false));
    assert_int_equal(count_ids(1, 1), 1);
    must(F.ops->commit(c));
}

/* Statements are cached per connection by pointer: a reused buffer must not
 * run its old text, and a full cache must still run every statement. */
static void test_statement_cache(void **state) {
    (void)state;
    struct store_conn *c = F.c;
    store_val p[1] = {SV_I(40)};
    must(F.ops->begin(c, false));
    char buf[64];
    snprintf(buf, sizeof buf, "SELECT $1 + 1");
    assert_int_equal(q_int(c, buf, p, 1), 41);
    snprintf(buf, sizeof buf, "SELECT $1 + 2");
    assert_int_equal(q_int(c, buf, p, 1), 42);

    enum { N = RF_STMT_CACHE_MAX + 16 };
    static char texts[N][48];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(texts[i], sizeof texts[i], "SELECT $1 + %d", 1000 + i);
            assert_int_equal(q_int(c, texts[i], p, 1), 1040 + i);
        }
    }
    must(F.ops->commit(c));
}

static void test_fail_next_commit(void **state) {
    (void)state;
    struct store_conn *c2 = NULL;
    must(F.ops->connect(F.url, NULL, false, &c2));
    must(F.ops->begin(c2, true));
    must(ins(c2, 900, "lost", NULL, 0));
    F.ops->fail_next_commit(c2);
    assert_int_equal(F.ops->commit(c2), RF_ERR_UNAVAILABLE);
    if (F.is_pg) {
        assert_true(F.ops->broken(c2));
        assert_int_equal(F.ops->begin(c2, true), RF_ERR_UNAVAILABLE);
    }
    F.ops->rollback(c2);
    F.ops->disconnect(c2);
    assert_int_equal(count_ids(900, 900), 0);
    assert_false(F.ops->broken(F.c));
}

/* The answer to COMMIT is lost after the server committed: commit resolves
 * it on a fresh connection and answers RF_OK; the row is there once, and the
 * connection is never reused. SQLite runs in process: no answer to lose. */
static void test_lost_commit_answer_resolved(void **state) {
    (void)state;
    if (!F.is_pg) {
        assert_null(F.ops->lose_next_commit_reply);
        return;
    }
    for (int i = 0; i < 3; i++) {
        struct store_conn *c2 = NULL;
        must(F.ops->connect(F.url, NULL, false, &c2));
        must(F.ops->begin(c2, true));
        char name[16];
        snprintf(name, sizeof name, "kept%d", i);
        must(ins(c2, 950 + i, name, NULL, 0));
        F.ops->lose_next_commit_reply(c2);
        assert_int_equal(F.ops->commit(c2), RF_OK);
        assert_true(F.ops->broken(c2));
        assert_int_equal(F.ops->begin(c2, true), RF_ERR_UNAVAILABLE);
        F.ops->disconnect(c2);
    }
    assert_int_equal(count_ids(950, 952), 3);
}

/* Runs one parameterless statement on c (no prepared statement: the text
 * lives in a stack buffer). */
static void run_text(struct store_conn *c, const char *fmt, const char *arg) {
    char sql[SQL_BYTES];
    snprintf(sql, sizeof sql, fmt, arg);
    must(F.ops->exec_script(c, sql));
}

/* The answer to COMMIT is lost and the database then refuses the fresh
 * connection that would learn the outcome: RF_ERR_OUTCOME_UNKNOWN, never
 * "changed nothing" -- and indeed the transaction had committed. */
static void test_lost_commit_answer_unknown(void **state) {
    (void)state;
    if (!F.is_pg) return; /* SQLite: no answer to lose (see the test above) */
    char url[512], name[64];
    assert_int_equal(rf_test_db_fresh(url, sizeof url), 0);
    const char *at = strstr(url, "rf_t_");
    assert_non_null(at);
    snprintf(name, sizeof name, "%.*s", (int)strcspn(at, "?"), at);
    struct rf_options opt = {.pg_timeout_ms = 1000};
    struct store_conn *c2 = NULL;
    must(F.ops->connect(url, &opt, false, &c2));
    must(F.ops->exec_script(c2, "CREATE TABLE lost (id BIGINT PRIMARY KEY)"));
    must(F.ops->begin(c2, true));
    must(F.ops->exec_script(c2, "INSERT INTO lost VALUES (1)"));
    run_text(F.c, "ALTER DATABASE %s ALLOW_CONNECTIONS false", name);
    F.ops->lose_next_commit_reply(c2);
    assert_int_equal(F.ops->commit(c2), RF_ERR_OUTCOME_UNKNOWN);
    assert_true(F.ops->broken(c2));
    F.ops->disconnect(c2);
    run_text(F.c, "ALTER DATABASE %s ALLOW_CONNECTIONS true", name);
    must(F.ops->connect(url, NULL, false, &c2));
    assert_int_equal(q_int(c2, "SELECT count(*) FROM lost", NULL, 0), 1);
    F.ops->disconnect(c2);
    rf_test_db_cleanup(url);
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define SHORT_TIMEOUT_MS 300
/* Generous: the point is "not forever" (pg_sleep asks for 30 s). */
#define SHORT_BOUND_MS (SHORT_TIMEOUT_MS + 2000)

/* A statement the server would run for 30 s: the server's statement_timeout
 * (just below the bound) cancels it and the connection stays usable; with
 * that turned off, the client's own deadline ends the wait and drops the
 * connection. */
static void test_statement_deadline(void **state) {
    (void)state;
    if (!F.is_pg) return; /* SQLite waits only for its file lock: busy_timeout */
    struct rf_options opt = {.pg_timeout_ms = SHORT_TIMEOUT_MS};
    struct store_conn *c2 = NULL;
    must(F.ops->connect(F.url, &opt, false, &c2));
    static const char sleep_sql[] = "SELECT pg_sleep(30)";
    int64_t t0 = mono_ms();
    assert_int_equal(F.ops->exec(c2, sleep_sql, NULL, 0, NULL), RF_ERR_UNAVAILABLE);
    assert_true(mono_ms() - t0 < SHORT_BOUND_MS);
    assert_false(F.ops->broken(c2)); /* a definite answer from the server */
    must(F.ops->exec(c2, "SET statement_timeout = 0", NULL, 0, NULL));
    t0 = mono_ms();
    assert_int_equal(F.ops->exec(c2, sleep_sql, NULL, 0, NULL), RF_ERR_UNAVAILABLE);
    int64_t took = mono_ms() - t0;
    assert_true(took >= SHORT_TIMEOUT_MS - 50 && took < SHORT_BOUND_MS);
    assert_true(F.ops->broken(c2)); /* never reused */
    assert_int_equal(F.ops->exec(c2, "SELECT 1", NULL, 0, NULL), RF_ERR_UNAVAILABLE);
    F.ops->disconnect(c2);
}

/* A listener that never accepts: the kernel completes the TCP handshake (as
 * for a frozen server) and the startup packet is never answered. */
static void test_connect_deadline(void **state) {
    (void)state;
    if (!F.is_pg) return; /* SQLite opens a file */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char url[128];
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%d/postgres", ntohs(a.sin_port));
    struct rf_options opt = {.pg_timeout_ms = SHORT_TIMEOUT_MS};
    struct store_conn *c = NULL;
    int64_t t0 = mono_ms();
    assert_int_equal(F.ops->connect(url, &opt, false, &c), RF_ERR_UNAVAILABLE);
    int64_t took = mono_ms() - t0;
    assert_true(took >= SHORT_TIMEOUT_MS - 50 && took < SHORT_BOUND_MS);
    close(fd);
}

/* ---- exec_later ------------------------------------------------------- */

/* Queues (PostgreSQL) or runs (SQLite) an insert of (id, name, amount). */
static rf_err later(struct store_conn *c, int64_t id, const char *name, int64_t amount) {
    store_val p[4] = {SV_I(id), SV_S(name), SV_N(), SV_I(amount)};
    return F.ops->exec_later(c, F.ins, p, 4, NULL, NULL);
}

/* A queued statement that fails: PostgreSQL answers RF_OK now and the error
 * at the next synchronous call; SQLite answers it now. want is the error. */
static void later_fails(struct store_conn *c, int64_t id, const char *name, int64_t amount,
                        rf_err want) {
    assert_int_equal(later(c, id, name, amount), F.is_pg ? RF_OK : want);
}

/* Queued inserts are learned at the next statement, whose own result (rows)
 * comes back with them; a failed one is the release's answer, the release
 * does not run and the savepoint still undoes exactly its part. */
static void test_exec_later_release(void **state) {
    (void)state;
    struct store_conn *c = F.c;
    must(F.ops->begin(c, true));
    must(ins(c, 700, "l-700", NULL, 0)); /* also prepares F.ins on c */
    must(F.ops->savepoint(c, 1));
    must(later(c, 701, "l-701", 0));
    must(later(c, 702, "l-702", 0));
    assert_int_equal(count_ids(700, 709), 3); /* its own rows, after the queued ones */
    must(F.ops->release_savepoint(c, 1));
    must(later(c, 703, "l-703", 0));
    later_fails(c, 704, "l-700", 0, RF_ERR_CONFLICT); /* unique name */
    if (F.is_pg) {
        must(later(c, 705, "l-705", 0)); /* after the failure: never runs */
        assert_int_equal(F.ops->release_savepoint(c, 1), RF_ERR_CONFLICT);
        assert_false(F.ops->broken(c));
    }
    F.ops->rollback_to(c, 1); /* the savepoint held: 703 goes, the rest stays */
    must(F.ops->release_savepoint(c, 1));
    later_fails(c, 706, "l-706", -1, RF_ERR_CONFLICT); /* check constraint */
    if (F.is_pg) assert_int_equal(F.ops->release(c, 1), RF_ERR_CONFLICT);
    F.ops->rollback_to(c, 1);
    must(F.ops->release(c, 1));
    must(later(c, 707, "l-707", 0));
    must(F.ops->commit(c)); /* settles the queue first */
    assert_int_equal(count_ids(700, 709), 4);
    assert_int_equal(count_ids(703, 706), 0);
}

struct got_row {
    int calls;
    char name[32];
};

static void got_name(void *ctx, struct store_rows *r) {
    struct got_row *g = ctx;
    g->calls++;
    snprintf(g->name, sizeof g->name, "%s", F.ops->rows_text(r, 1));
}

/* A queued query's first row reaches its fn when the next statement returns
 * (SQLite: at once); a query with no row, or one after a failure, never
 * calls it. */
static void test_query_later(void **state) {
    (void)state;
    struct store_conn *c = F.c;
    must(F.ops->begin(c, true));
    must(ins(c, 730, "q-730", NULL, 0));
    struct got_row g = {0}, none = {0}, after = {0};
    must(F.ops->exec_later(c, F.sel, (store_val[]){SV_I(730)}, 1, got_name, &g));
    must(F.ops->exec_later(c, F.sel, (store_val[]){SV_I(739)}, 1, got_name, &none));
    assert_int_equal(g.calls, F.is_pg ? 0 : 1); /* PostgreSQL: not read yet */
    assert_int_equal(count_ids(730, 739), 1);
    assert_int_equal(g.calls, 1);
    assert_string_equal(g.name, "q-730");
    assert_int_equal(none.calls, 0);
    must(F.ops->savepoint(c, 1));
    later_fails(c, 731, "q-730", 0, RF_ERR_CONFLICT);
    if (F.is_pg) {
        must(F.ops->exec_later(c, F.sel, (store_val[]){SV_I(730)}, 1, got_name, &after));
        assert_int_equal(F.ops->release(c, 1), RF_ERR_CONFLICT);
        assert_int_equal(after.calls, 0); /* skipped after the failure */
    }
    F.ops->rollback_to(c, 1);
    must(F.ops->release(c, 1));
    must(F.ops->commit(c));
    assert_int_equal(count_ids(730, 739), 1);
}

static const char SQL_RAISE_40001[] =
    "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$";

/* A queued failure is mapped as exec maps it (a serialization failure is
 * RF_ERR_RETRY) and is also COMMIT's answer: nothing commits, and the
 * connection begins again cleanly. */
static void test_exec_later_commit(void **state) {
    (void)state;
    struct store_conn *c = F.c;
    must(F.ops->begin(c, true));
    must(ins(c, 710, "l-710", NULL, 0));
    later_fails(c, 711, "l-710", 0, RF_ERR_CONFLICT);
    if (F.is_pg) assert_int_equal(F.ops->commit(c), RF_ERR_CONFLICT);
    else F.ops->rollback(c);
    assert_false(F.ops->broken(c));
    assert_int_equal(count_ids(710, 719), 0);
    if (!F.is_pg) return; /* SQLite has no serialization failure to raise */
    struct store_conn *c2 = NULL; /* a statement cache with room (F.c's is full) */
    must(F.ops->connect(F.url, NULL, false, &c2));
    must(F.ops->begin(c2, true));
    must(F.ops->savepoint(c2, 1));
    /* the first use prepares, and so runs at once */
    assert_int_equal(F.ops->exec_later(c2, SQL_RAISE_40001, NULL, 0, NULL, NULL), RF_ERR_RETRY);
    F.ops->rollback_to(c2, 1);
    must(ins(c2, 712, "l-712", NULL, 0));
    must(later(c2, 713, "l-713", 0));
    must(F.ops->exec_later(c2, SQL_RAISE_40001, NULL, 0, NULL, NULL));
    assert_int_equal(F.ops->exec(c2, F.count, (store_val[]){SV_I(0), SV_I(1)}, 2, NULL),
                     RF_ERR_RETRY);
    F.ops->rollback(c2);
    assert_false(F.ops->broken(c2));
    F.ops->disconnect(c2);
    assert_int_equal(count_ids(710, 719), 0);
}

/* The connection dies with statements queued: the next call answers
 * RF_ERR_UNAVAILABLE, the connection is never reused and nothing commits.
 * A queued statement that never ends meets the client's deadline. */
static void test_exec_later_connection_lost(void **state) {
    (void)state;
    if (!F.is_pg) return; /* SQLite has no connection to lose */
    struct store_conn *c2 = NULL;
    must(F.ops->connect(F.url, NULL, false, &c2));
    must(F.ops->begin(c2, true));
    must(ins(c2, 720, "l-720", NULL, 0));
    int64_t pid = q_int(c2, "SELECT pg_backend_pid()", NULL, 0);
    must(later(c2, 721, "l-721", 0));
    store_val p[1] = {SV_I(pid)};
    assert_int_equal(q_int(F.c, "SELECT pg_terminate_backend($1::int)::int", p, 1), 1);
    for (int i = 0; i < 500 && q_int(F.c, "SELECT count(*) FROM pg_stat_activity"
                                          " WHERE pid = $1::int", p, 1) > 0; i++)
        usleep(10 * 1000); /* bounded: 5 s */
    assert_int_equal(F.ops->release_savepoint(c2, 1), RF_ERR_UNAVAILABLE);
    assert_true(F.ops->broken(c2));
    assert_int_equal(F.ops->commit(c2), RF_ERR_UNAVAILABLE);
    F.ops->rollback(c2);
    F.ops->disconnect(c2);
    assert_int_equal(count_ids(720, 729), 0);

    struct rf_options opt = {.pg_timeout_ms = SHORT_TIMEOUT_MS};
    must(F.ops->connect(F.url, &opt, false, &c2));
    must(F.ops->exec(c2, "SET statement_timeout = 0", NULL, 0, NULL));
    static const char sleep_sql[] = "SELECT pg_sleep($1)";
    must(F.ops->begin(c2, true));
    must(F.ops->exec(c2, sleep_sql, (store_val[]){SV_I(0)}, 1, NULL)); /* prepared */
    must(F.ops->exec_later(c2, sleep_sql, (store_val[]){SV_I(30)}, 1, NULL, NULL));
    int64_t t0 = mono_ms();
    assert_int_equal(F.ops->release_savepoint(c2, 1), RF_ERR_UNAVAILABLE);
    int64_t took = mono_ms() - t0;
    assert_true(took >= SHORT_TIMEOUT_MS - 50 && took < SHORT_BOUND_MS);
    assert_true(F.ops->broken(c2));
    assert_int_equal(F.ops->commit(c2), RF_ERR_UNAVAILABLE);
    F.ops->disconnect(c2);
}

static void test_connect_refused(void **state) {
    (void)state;
    if (!F.is_pg) skip();
    struct store_conn *c = NULL;
    assert_int_equal(F.ops->connect("postgresql://postgres@127.0.0.1:1/postgres", NULL, false, &c),
                     RF_ERR_UNAVAILABLE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_and_rows),
        cmocka_unit_test(test_savepoint_undoes_only_its_part),
        cmocka_unit_test(test_savepoint_past_memory),
        cmocka_unit_test(test_constraints_conflict_and_tx_stays_usable),
        cmocka_unit_test(test_returning),
        cmocka_unit_test(test_returning_rows_written),
        cmocka_unit_test(test_returning_before_trigger),
        cmocka_unit_test(test_for_update),
        cmocka_unit_test(test_unexpected_error_is_internal),
        cmocka_unit_test(test_statement_cache),
        cmocka_unit_test(test_fail_next_commit),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_lost_commit_answer_resolved),
        cmocka_unit_test(test_lost_commit_answer_unknown),
        cmocka_unit_test(test_statement_deadline),
        cmocka_unit_test(test_connect_deadline),
        cmocka_unit_test(test_exec_later_release),
        cmocka_unit_test(test_exec_later_commit),
        cmocka_unit_test(test_query_later),
        cmocka_unit_test(test_exec_later_connection_lost),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
