/*
 * listing.h - what every list shares: the cursor, the order, and the page.
 *
 * The race a list must close: a consumer pages on with `after=<cursor>` while
 * writers commit. If rows were ordered by a key taken before commit (an id),
 * a transaction that took a smaller key but committed after the consumer read
 * past it would land behind the cursor and never be seen. So lists are in
 * commit order, and a row is listed only once nothing can still commit before
 * it:
 *   - every listed table has a column list_pos set when the row is inserted
 *     (migration 006; accounts and transfers: 008): on PostgreSQL the inserting transaction's id
 *     (txid_current()), on SQLite a counter bumped inside the write
 *     transaction (writes are serialized, so counter order is commit order);
 *   - a list returns only rows with list_pos below the view list_horizon: on
 *     PostgreSQL the oldest transaction id still running in the statement's
 *     snapshot, leaving out those shown in another database (every
 *     transaction below it has finished, so no row can later appear below
 *     it), on SQLite no bound at all;
 *   - rows are ordered by (list_pos, key), and the cursor is the last row's
 *     (list_pos, key).
 * A row written before its table got list_pos has list_pos 0: those come
 * first, in key order.
 *
 * Lists whose rows are already in commit order (an account's entries: seq is
 * the account's version, taken under the account's row lock) use the same
 * cursor with pos alone.
 */
#ifndef RF_CORE_LISTING_H
#define RF_CORE_LISTING_H

#include <stdint.h>

#include "racefree.h"
#include "exec/executor.h"
#include "store/store.h"

/* A position in a list: the rows after (pos, key) in (list_pos, key) order.
 * A client names it by the last row's key (an id; entries: the decimal
 * seq), which list_page_run resolves to its list_pos inside the reading
 * transaction; "" is the start of the list. */
struct list_cursor {
    int64_t pos;               /* LIST_POS_UNRESOLVED until list_page_run */
    char key[RF_ID_BYTES];     /* "" at the start */
};
#define LIST_POS_UNRESOLVED (-2)
#define LIST_START ((struct list_cursor){.pos = -1, .key = ""})

/* Takes ?after= (NULL or "": the start) as the key of the last row seen;
 * RF_ERR_INVALID_CURSOR when it is not an id. */
rf_err list_cursor_parse(const char *after, struct list_cursor *out);
/* A list ordered by pos alone (an account's entries) names its cursor by
 * the decimal pos: 0..INT64_MAX without leading zeros; false otherwise. */
bool list_pos_text_parse(const char *s, int64_t *out);

/* SQL shared by the lists over list_pos. A list query binds the cursor as
 * $1 (pos) and $2 (key) and the horizon as $3 (LIST_HORIZON_SLOT, filled by
 * list_page_run), tests LIST_AFTER(key column) in its WHERE clause, ends in
 * LIST_ORDER(key column) LIMIT $n with the limit as its LAST parameter, and
 * selects list_pos as one of its columns.
 *
 * The horizon is read by a statement of its own, BEFORE the statement that
 * reads the rows (PostgreSQL reads run statement by statement, each with a
 * newer snapshot): every transaction below it had finished, or belongs to
 * another database, when it was computed, so the later snapshot sees all of
 * their rows. That lets the view leave out transactions that finished
 * between its snapshot and its look at pg_stat_activity (txid_status), so
 * a busy neighbour database does not hold this one's lists back. */
#define LIST_AFTER(key)                                                     \
    "(list_pos, " key ") > ($1, $2) AND list_pos < $3"
#define LIST_HORIZON_SLOT SV_I(0)
#define LIST_ORDER(key) " ORDER BY list_pos, " key

/* Fills one item in place from a row (the item is zeroed when called). */
typedef void (*list_item_fn)(struct rf_tx *tx, struct store_rows *r, void *item);
/* Frees what an item owns; NULL when items own no memory. */
typedef void (*list_clear_fn)(void *item);

/* One page of a list. The caller fills the public part; list_read
 * allocates items (limit of item_size each) before the operation is
 * queued, so nothing allocates inside the transaction. list_page_run
 * empties the page (a retried transaction starts clean), resolves the
 * cursor, reads up to limit rows (asking for one more to know whether the
 * page ended the list), fills items[n++] with read_row for each, and
 * writes next: the last row's key (entries: its pos) when more rows
 * follow, "" when this page reached the end for now. A consumer that
 * later asks again with after = the last key it saw gets exactly the rows
 * committed since. */
struct list_page {
    struct list_cursor after;   /* from list_cursor_parse; bound as $1, $2 */
    int limit;                  /* rows asked, 1..RF_LIST_LIMIT_MAX */
    int pos_col;                /* column of list_pos (or seq) */
    int key_col;                /* column of the key; -1 when pos alone orders */
    const char *pos_sql;        /* key_col >= 0: "SELECT list_pos FROM t WHERE id = $1" */
    size_t item_size;
    list_item_fn read_row;
    list_clear_fn clear_item;
    char *next;                 /* out, RF_CURSOR_BYTES */
    size_t next_bytes;
    void *items;                /* out: limit items, the first n filled */
    int n;
    /* Optional (NULL: none): called with every row the statement returns,
     * before it becomes an item, so a page can read a value the same
     * statement (one snapshot) computed beside its rows. A row whose
     * list_pos is NULL is then no item: a statement that must return that
     * value even when no row is listed returns one such row (a LEFT JOIN). */
    void (*row_seen)(struct rf_tx *tx, struct store_rows *r, void *ctx);
    void *row_ctx;
    /* private to list_page_run */
    int n_seen;
    struct list_cursor last;
};

/* The part of a list_page taken from the rf_*_page `out` it fills. */
#define LIST_OUT(out) \
    .item_size = sizeof *(out)->items, .next = (out)->next, .next_bytes = sizeof (out)->next

/* The shape every public rf_*_page has (api.c asserts it for each). */
struct list_out {
    void *items;
    int n;
    char next[RF_CURSOR_BYTES];
};

/* A list_page over the page `out` of a list operation, whose items
 * rf_op_run allocated (limit of them). It takes out->n too: a retried
 * attempt's page_reset then clears what the failed attempt read. The
 * operation ends with out->n = lp.n, also on failure. */
#define LIST_INTO(out, limit_)                                                          \
    .limit = (limit_), .items = (out)->items, .item_size = sizeof *(out)->items,      \
    .n = (out)->n, .next = (out)->next, .next_bytes = sizeof (out)->next

/* p[n - 1] must be the LIMIT parameter: list_page_run binds limit + 1 there.
 * RF_ERR_INVALID_CURSOR when the cursor names no row of the table. */
rf_err list_page_run(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                     struct list_page *lp);

/* Runs op (which ends in list_page_run) as a read over lp's items. On
 * success lp->items holds lp->n items for the caller's page (freed with
 * page_clear); on failure nothing is left (items NULL, n 0, next ""). */
rf_err list_read(rf *db, const char *name, exec_fn op, void *ctx, struct list_page *lp);

/* What every rf_*_page_clear does: clears the n items, frees the array. */
void page_clear(void *items, int n, size_t item_size, list_clear_fn clear_item);

#endif
