/*
 * store.c - back-end selection and the thin store_* wrappers flows call.
 * Keeping flows on these wrappers means a flow never names a back end.
 */
#include "store/store.h"

#include <string.h>

#include "base/assert.h"

const struct store_ops *store_for_url(const char *url) {
    if (!url) return NULL;
    if (strncmp(url, "sqlite:", 7) == 0) return &store_sqlite_ops;
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
        return &store_postgres_ops;
    return NULL;
}

rf_err store_exec(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                  int64_t *changes_out) {
    RF_ASSERT(tx && tx->conn && sql);
    return tx->ops->exec(tx->conn, sql, p, n, changes_out);
}

rf_err store_exec_later(struct rf_tx *tx, const char *sql, const store_val *p, int n) {
    RF_ASSERT(tx && tx->conn && sql);
    return tx->ops->exec_later(tx->conn, sql, p, n, NULL, NULL);
}

rf_err store_query_later(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                         store_later_fn fn, void *ctx) {
    RF_ASSERT(tx && tx->conn && sql && fn);
    return tx->ops->exec_later(tx->conn, sql, p, n, fn, ctx);
}

rf_err store_query(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                   struct store_rows **rows_out) {
    RF_ASSERT(tx && tx->conn && sql && rows_out);
    return tx->ops->query(tx->conn, sql, p, n, rows_out);
}

int store_next(struct rf_tx *tx, struct store_rows *r) { return tx->ops->rows_next(r); }
rf_err store_rows_err(struct rf_tx *tx, struct store_rows *r) { return tx->ops->rows_err(r); }
bool store_null(struct rf_tx *tx, struct store_rows *r, int col) {
    return tx->ops->rows_null(r, col);
}
int64_t store_int(struct rf_tx *tx, struct store_rows *r, int col) {
    return tx->ops->rows_int(r, col);
}
const char *store_text(struct rf_tx *tx, struct store_rows *r, int col) {
    return tx->ops->rows_text(r, col);
}
void store_close(struct rf_tx *tx, struct store_rows *r) {
    if (r) tx->ops->rows_close(r);
}

rf_err store_query_each(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                        int max_rows, store_row_fn row_fn, void *out) {
    RF_ASSERT(max_rows >= 0);
    struct store_rows *r = NULL;
    rf_err err = store_query(tx, sql, p, n, &r);
    if (err) return err;
    int rows = 0, rc;
    while (rows < max_rows && (rc = store_next(tx, r)) > 0) {
        row_fn(tx, r, out);
        rows++;
    }
    if (rows < max_rows && rc < 0) err = store_rows_err(tx, r);
    store_close(tx, r);
    return err;
}

struct one_ctx {
    store_row_fn fn;
    void *out;
    int rows;
};

static void one_row(struct rf_tx *tx, struct store_rows *r, void *ctx) {
    struct one_ctx *c = ctx;
    c->rows++;
    c->fn(tx, r, c->out);
}

rf_err store_query_one(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                       store_row_fn row_fn, void *out) {
    struct one_ctx c = {row_fn, out, 0};
    rf_err err = store_query_each(tx, sql, p, n, 1, one_row, &c);
    if (err) return err;
    return c.rows == 1 ? RF_OK : RF_ERR_NOT_FOUND;
}
