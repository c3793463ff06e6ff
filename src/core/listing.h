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
 *     (migration 006): on PostgreSQL the inserting transaction's id
 *     (txid_current()), on SQLite a counter bumped inside the write
 *     transaction (writes are serialized, so counter order is commit order);
 *   - a list returns only rows with list_pos below the view list_horizon: on
 *     PostgreSQL the oldest transaction id still running in the statement's
 *     snapshot, leaving out those shown in another database (every
 *     transaction below it has finished, so no row can later appear below
 *     it), on SQLite no bound at all;
 *   - rows are ordered by (list_pos, key), and the cursor is the last row's
 *     (list_pos, key).
 * A row written before migration 006 has list_pos 0: those come first, in
 * key order.
 *
 * Lists whose rows are already in commit order (an account's entries: seq is
 * the account's version, taken under the account's row lock) use the same
 * cursor with pos alone.
 */
#ifndef RF_CORE_LISTING_H
#define RF_CORE_LISTING_H

#include <stdint.h>

#include "racefree.h"
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

/* One page of a list. The caller fills the public part; list_page_run
 * resolves the cursor, reads up to limit rows (asking for one more to know
 * whether the page ended the list), calls read for each, and writes next:
 * the last row's key (entries: its pos) when more rows follow, "" when this
 * page reached the end for now. A consumer that later asks again with
 * after = the last key it saw gets exactly the rows committed since. */
struct list_page {
    struct list_cursor after;   /* from list_cursor_parse; bound as $1, $2 */
    int limit;                  /* rows asked, 1..RF_LIST_LIMIT_MAX */
    int pos_col;                /* column of list_pos (or seq) */
    int key_col;                /* column of the key; -1 when pos alone orders */
    const char *pos_sql;        /* key_col >= 0: "SELECT list_pos FROM t WHERE id = $1" */
    store_row_fn read;          /* appends one item to ctx's page */
    void *ctx;
    char *next;                 /* out, RF_CURSOR_BYTES */
    size_t next_bytes;
    /* private to list_page_run */
    int n_seen;
    struct list_cursor last;
};

/* p[n - 1] must be the LIMIT parameter: list_page_run binds limit + 1 there.
 * RF_ERR_INVALID_CURSOR when the cursor names no row of the table. */
rf_err list_page_run(struct rf_tx *tx, const char *sql, const store_val *p, int n,
                     struct list_page *lp);

#endif
