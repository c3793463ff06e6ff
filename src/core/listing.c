/*
 * listing.c - see listing.h: the cursor and the page every list shares, so
 * that each list is one SQL text and its row reader.
 */
#include "core/listing.h"

#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"

rf_err list_cursor_parse(const char *after, struct rf_cursor *out) {
    *out = LIST_START;
    if (!after || !*after) return RF_OK;
    return rf_cursor_parse(after, out) ? RF_OK : RF_ERR_INVALID;
}

/* Reads one row and remembers its cursor. */
static void page_row(struct rf_tx *tx, struct store_rows *r, void *ctx) {
    struct list_page *lp = ctx;
    lp->n_read++;
    lp->last.pos = store_int(tx, r, lp->pos_col);
    rf_strcpy(lp->last.key, sizeof lp->last.key,
              lp->key_col >= 0 ? store_text(tx, r, lp->key_col) : "");
    lp->read(tx, r, lp->ctx);
}

rf_err list_page_run(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                     struct list_page *lp) {
    RF_ASSERT(lp->limit >= 1 && lp->limit <= RF_LIST_LIMIT_MAX && lp->read);
    RF_ASSERT(lp->next && lp->next_bytes >= RF_CURSOR_BYTES);
    lp->n_read = 0;
    lp->next[0] = '\0';
    rf_err err = store_query_each(tx, sql, p, n, lp->limit, page_row, lp);
    if (!err && lp->n_read > 0) rf_cursor_format(&lp->last, lp->next, lp->next_bytes);
    return err;
}
