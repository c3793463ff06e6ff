/*
 * listing.c - see listing.h: the cursor and the page every list shares, so
 * that each list is one SQL text, its row reader and its position lookup.
 */
#include "core/listing.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"
#include "core/core.h"

rf_err list_cursor_parse(const char *after, struct list_cursor *out) {
    *out = LIST_START;
    if (!after || !*after) return RF_OK;
    if (!rf_id_valid(after)) return RF_ERR_INVALID_CURSOR;
    out->pos = LIST_POS_UNRESOLVED;
    rf_strcpy(out->key, sizeof out->key, after);
    return RF_OK;
}

bool list_pos_text_parse(const char *s, int64_t *out) {
    size_t n = strlen(s);
    if (n == 0 || n > 19 || (n > 1 && s[0] == '0')) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX) return false;
    *out = (int64_t)v;
    return true;
}

/* Its own statement, before the rows' (listing.h). */
static const char SQL_HORIZON[] = "SELECT horizon FROM list_horizon";

static void read_pos(struct rf_tx *tx, struct store_rows *r, void *ctx) {
    *(int64_t *)ctx = store_int(tx, r, 0);
}

/* Turns the key a client named into a position, in the reading
 * transaction: a key that names no row is not a cursor. */
static rf_err cursor_resolve(struct rf_tx *tx, struct list_page *lp) {
    struct list_cursor *c = &lp->after;
    if (c->pos != LIST_POS_UNRESOLVED) return RF_OK;
    if (lp->key_col < 0) {
        if (!list_pos_text_parse(c->key, &c->pos)) return RF_ERR_INVALID_CURSOR;
        c->key[0] = '\0';
        return RF_OK;
    }
    RF_ASSERT(lp->pos_sql);
    store_val p[1] = {SV_S(c->key)};
    rf_err err = store_query_one(tx, lp->pos_sql, p, 1, read_pos, &c->pos);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_INVALID_CURSOR : err;
}

/* Reads one row (the one past the limit only says "more follow"). */
static void page_row(struct rf_tx *tx, struct store_rows *r, void *ctx) {
    struct list_page *lp = ctx;
    if (lp->row_seen) {
        lp->row_seen(tx, r, lp->row_ctx);
        if (store_null(tx, r, lp->pos_col)) return;
    }
    if (++lp->n_seen > lp->limit) return;
    RF_ASSERT(lp->n < lp->limit); /* the array holds limit items */
    lp->last.pos = store_int(tx, r, lp->pos_col);
    rf_strcpy(lp->last.key, sizeof lp->last.key,
              lp->key_col >= 0 ? store_text(tx, r, lp->key_col) : "");
    lp->read_row(tx, r, (char *)lp->items + (size_t)lp->n++ * lp->item_size);
}

static void items_clear(void *items, int n, size_t item_size, list_clear_fn clear_item) {
    if (clear_item)
        for (int i = 0; i < n; i++) clear_item((char *)items + (size_t)i * item_size);
}

/* Empties the page: what an earlier attempt of a retried transaction read
 * is not part of this one's answer. */
static void page_reset(struct list_page *lp) {
    items_clear(lp->items, lp->n, lp->item_size, lp->clear_item);
    memset(lp->items, 0, (size_t)lp->limit * lp->item_size);
    lp->n = 0;
    lp->next[0] = '\0';
}

rf_err list_page_run(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                     struct list_page *lp) {
    RF_ASSERT(lp->limit >= 1 && lp->limit <= RF_LIST_LIMIT_MAX && lp->read_row);
    RF_ASSERT(lp->items && lp->item_size > 0);
    RF_ASSERT(lp->next && lp->next_bytes >= RF_CURSOR_BYTES);
    RF_ASSERT(n >= (lp->key_col >= 0 ? 4 : 2) && n <= RF_SQL_PARAMS_MAX);
    page_reset(lp);
    lp->n_seen = 0;
    rf_err err = cursor_resolve(tx, lp);
    if (err) return err;
    store_val params[RF_SQL_PARAMS_MAX];
    memcpy(params, p, (size_t)n * sizeof *p);
    params[0] = (store_val)SV_I(lp->after.pos);
    if (lp->key_col >= 0) {
        int64_t horizon = 0;
        err = store_query_one(tx, SQL_HORIZON, NULL, 0, read_pos, &horizon);
        if (err) return err;
        params[1] = (store_val)SV_S(lp->after.key);
        params[2] = (store_val)SV_I(horizon);
    }
    params[n - 1] = (store_val)SV_I(lp->limit + 1);
    err = store_query_each(tx, sql, params, n, lp->limit + 1, page_row, lp);
    if (err || lp->n_seen <= lp->limit) return err;
    if (lp->key_col >= 0)
        rf_strcpy(lp->next, lp->next_bytes, lp->last.key);
    else
        snprintf(lp->next, lp->next_bytes, "%" PRId64, lp->last.pos);
    return RF_OK;
}

rf_err list_read(rf *db, const char *name, exec_fn op, void *ctx, struct list_page *lp) {
    RF_ASSERT(lp->limit >= 1 && lp->limit <= RF_LIST_LIMIT_MAX && lp->item_size > 0);
    lp->n = 0;
    lp->items = calloc((size_t)lp->limit, lp->item_size);
    if (!lp->items) return RF_ERR_NOMEM;
    rf_err err = core_read(db, name, op, ctx);
    if (!err) return RF_OK;
    page_clear(lp->items, lp->n, lp->item_size, lp->clear_item);
    lp->items = NULL;
    lp->n = 0;
    lp->next[0] = '\0';
    return err;
}

void page_clear(void *items, int n, size_t item_size, list_clear_fn clear_item) {
    items_clear(items, n, item_size, clear_item);
    free(items);
}
