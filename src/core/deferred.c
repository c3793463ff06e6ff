/*
 * deferred.c - the per-transaction buffer of deferred balance moves and
 * its flush (see deferred.h for which moves wait until COMMIT, and why).
 *
 * The buffer has a fixed capacity (RF_DEFER_MOVES_MAX) and is never
 * allocated per operation: the executor owns one per transaction. A move
 * that does not fit is applied at once by the ledger, which is safe in any
 * order against the buffered moves except for one case: the release of a
 * hold that is itself still buffered would take the row's pending total
 * below zero (the hold is not in the row yet). So every buffered hold keeps
 * one slot free for its release (n + holds <= capacity), and such a release
 * always fits.
 *
 * The executor's mark is (holds, n) in one int; a rewind to it drops the
 * moves of an operation whose savepoint rolled back.
 */
#include "core/deferred.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"
#include "core/ledger.h"

enum { COL_POSTED, COL_PDEBITS, COL_PCREDITS, COLS };

struct dmove {
    char account[RF_ID_BYTES];
    char currency[RF_CURRENCY_BYTES];
    char transfer_id[RF_UUID_TEXT_BYTES];
    int64_t d[COLS];    /* the deltas, by column */
    int64_t at_ms;      /* the registering operation's clock: its entry's time */
    bool hold;          /* raises a pending total: keeps a slot free for its release */
    bool system;        /* a system account's (else a user account's posted move) */
};

struct defer_buf {
    int n;
    int holds;  /* buffered holds whose release is not buffered */
    bool users; /* a user account's posted move may wait too (deferred.h) */
    struct dmove moves[RF_DEFER_MOVES_MAX];
};

#define MARK_STRIDE (RF_DEFER_MOVES_MAX + 1)
_Static_assert((int64_t)MARK_STRIDE * MARK_STRIDE < INT32_MAX, "a mark fits in an int");

/* ---- registering -------------------------------------------------------- */

static bool hold_buffered(const struct defer_buf *b, const char *account, const char *transfer) {
    for (int i = 0; i < b->n; i++) {
        const struct dmove *m = &b->moves[i];
        if (m->hold && strcmp(m->transfer_id, transfer) == 0 && strcmp(m->account, account) == 0)
            return true;
    }
    return false;
}

bool deferred_move(struct rf_tx *tx, const struct deferred_account *a, const char *transfer_id,
                   int64_t d_posted, int64_t d_pdebits, int64_t d_pcredits) {
    struct defer_buf *b = tx->defer;
    if (!b || (!a->system && !b->users)) return false; /* nothing waits, or no user move now */
    if (strlen(a->id) >= RF_ID_BYTES || strlen(a->currency) >= RF_CURRENCY_BYTES ||
        strlen(transfer_id) >= RF_UUID_TEXT_BYTES)
        return false;
    /* A user account's only deferred move is a posted one: the flush
     * guards its availability (a debit) and int64 (both) per prefix. */
    RF_ASSERT(a->system || (d_posted != 0 && d_pdebits == 0 && d_pcredits == 0));
    bool hold = d_pdebits > 0 || d_pcredits > 0;
    bool release = d_pdebits < 0 || d_pcredits < 0;
    RF_ASSERT(!(hold && release)); /* a move places a hold or resolves one */
    bool own_release = release && hold_buffered(b, a->id, transfer_id);
    /* A release of a buffered hold takes the slot its hold kept. */
    int slots = own_release ? 0 : hold ? 2 : 1;
    if (b->n + b->holds + slots > RF_DEFER_MOVES_MAX) return false;
    struct dmove *m = &b->moves[b->n++];
    rf_strcpy(m->account, sizeof m->account, a->id);
    rf_strcpy(m->currency, sizeof m->currency, a->currency);
    m->system = a->system;
    rf_strcpy(m->transfer_id, sizeof m->transfer_id, transfer_id);
    m->d[COL_POSTED] = d_posted;
    m->d[COL_PDEBITS] = d_pdebits;
    m->d[COL_PCREDITS] = d_pcredits;
    m->at_ms = tx->now_ms;
    m->hold = hold;
    b->holds += hold ? 1 : own_release ? -1 : 0;
    RF_ASSERT(m->system || !m->hold);
    RF_ASSERT(b->holds >= 0 && b->n + b->holds <= RF_DEFER_MOVES_MAX);
    return true;
}

bool deferred_users(const struct rf_tx *tx) {
    const struct defer_buf *b = tx->defer;
    return b && b->users;
}

int64_t deferred_posted(const struct rf_tx *tx, const char *account) {
    const struct defer_buf *b = tx->defer;
    int64_t sum = 0;
    for (int i = 0; b && i < b->n; i++)
        if (strcmp(b->moves[i].account, account) == 0 &&
            __builtin_add_overflow(sum, b->moves[i].d[COL_POSTED], &sum))
            return 0; /* cannot happen: the flush keeps every prefix in int64 */
    return sum;
}

/* ---- the executor's buffer operations ----------------------------------- */

static void buf_reset(void *buf, bool users) {
    struct defer_buf *b = buf;
    b->n = 0;
    b->holds = 0;
    b->users = users;
}

static int buf_mark(const void *buf) {
    const struct defer_buf *b = buf;
    return b->holds * MARK_STRIDE + b->n;
}

static void buf_rewind(void *buf, int mark) {
    struct defer_buf *b = buf;
    RF_ASSERT(mark >= 0 && mark % MARK_STRIDE <= b->n); /* a mark of this transaction */
    b->n = mark % MARK_STRIDE;
    b->holds = mark / MARK_STRIDE;
}

/* ---- the flush ---------------------------------------------------------- */

/* A column's net delta and the bounds its starting value must keep so that
 * every prefix of the moves leaves it inside int64 (pending totals: >= 0). */
struct span {
    __int128 sum, lo_prefix, hi_prefix;
};

struct guard {
    int64_t net[COLS], lo[COLS], hi[COLS];
    int64_t need; /* the availability (posted - pending_debits) every prefix needs */
};

/* false: no starting value lets the moves pass (or their net leaves int64):
 * applied one by one, some move would be refused. A user account's debits
 * need its available balance to cover the lowest prefix; a system account
 * may go negative, so its need is never checked (the flush's CASE). */
static bool guard_of(const struct dmove *const *m, int k, struct guard *g) {
    struct span s[COLS] = {{0, 0, 0}};
    for (int i = 0; i < k; i++)
        for (int c = 0; c < COLS; c++) {
            s[c].sum += m[i]->d[c];
            if (s[c].sum < s[c].lo_prefix) s[c].lo_prefix = s[c].sum;
            if (s[c].sum > s[c].hi_prefix) s[c].hi_prefix = s[c].sum;
        }
    for (int c = 0; c < COLS; c++) {
        __int128 floor = c == COL_POSTED ? (__int128)INT64_MIN : 0;
        __int128 lo = floor - s[c].lo_prefix, hi = (__int128)INT64_MAX - s[c].hi_prefix;
        if (lo > hi || s[c].sum < INT64_MIN || s[c].sum > INT64_MAX) return false;
        g->net[c] = (int64_t)s[c].sum;
        g->lo[c] = (int64_t)lo; /* lo <= hi <= INT64_MAX, lo >= INT64_MIN */
        g->hi[c] = (int64_t)hi;
    }
    __int128 need = -s[COL_POSTED].lo_prefix; /* >= 0: the empty prefix moves nothing */
    if (need > INT64_MAX && !m[0]->system) return false;
    g->need = need > INT64_MAX ? INT64_MAX : (int64_t)need;
    return true;
}

/* $5 is the number of moves: each is one version, as applied one by one. */
static const char SQL_FLUSH[] =
    "UPDATE accounts SET posted = posted + $2, pending_debits = pending_debits + $3,"
    " pending_credits = pending_credits + $4, version = version + $5, updated_at = $6"
    " WHERE id = $1 AND currency = $13 AND posted >= $7 AND posted <= $8"
    " AND pending_debits >= $9 AND pending_debits <= $10"
    " AND pending_credits >= $11 AND pending_credits <= $12"
    " AND (CASE WHEN allow_negative = 1 THEN 1 WHEN posted - pending_debits >= $14 THEN 1"
    " ELSE 0 END) = 1"
    " RETURNING posted, version";
static const char SQL_FLUSH_MISS[] = "SELECT allow_negative, posted, pending_debits FROM accounts"
                                     " WHERE id = $1 AND currency = $2 FOR UPDATE";

/* ENTRIES_PER_INSERT entries in one statement: a batch's funding entries
 * are as many as its credits, and a statement each was most of a flush. */
#define ENTRIES_PER_INSERT 8
static const char SQL_ENTRIES[] =
    "INSERT INTO entries (account_id, seq, transfer_id, side, amount_minor, balance_after,"
    " created_at) VALUES "
    "($1, $2, $3, $4, $5, $6, $7), ($8, $9, $10, $11, $12, $13, $14)"
    ", ($15, $16, $17, $18, $19, $20, $21), ($22, $23, $24, $25, $26, $27, $28)"
    ", ($29, $30, $31, $32, $33, $34, $35), ($36, $37, $38, $39, $40, $41, $42)"
    ", ($43, $44, $45, $46, $47, $48, $49), ($50, $51, $52, $53, $54, $55, $56)";
_Static_assert(ENTRIES_PER_INSERT * 7 <= RF_SQL_PARAMS_MAX, "one statement's parameters");

struct flushed {
    int64_t posted, version;
};

static void read_flushed(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct flushed *f = out;
    f->posted = store_int(tx, r, 0);
    f->version = store_int(tx, r, 1);
}

struct missed {
    bool allow_negative;
    int64_t posted, pending_debits;
};

static void read_missed(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct missed *m = out;
    m->allow_negative = store_int(tx, r, 0) != 0;
    m->posted = store_int(tx, r, 1);
    m->pending_debits = store_int(tx, r, 2);
}

/* Why the guarded UPDATE missed. A system account is made by the ledger in
 * its id's currency with allow_negative (ensure_system_accounts) and exists
 * before a transfer names it; a user account's move was deferred only
 * after a read in this transaction found it in that currency (accounts are
 * never deleted, nor change currency). So the miss is the bounds: a move
 * applied alone would leave int64 (a pending total below zero is ruled out
 * by the release slots), or a user account's debits need more than it has.
 * The executor then re-runs the operations with their user accounts' moves
 * applied at once, each under its own guard (a refused flush is never an
 * operation's answer: see exec_defer_ops). */
static rf_err flush_miss(struct rf_tx *tx, const struct dmove *m, int64_t need) {
    struct missed row = {0};
    store_val p[2] = {SV_S(m->account), SV_S(m->currency)};
    rf_err err = store_query_one(tx, SQL_FLUSH_MISS, p, 2, read_missed, &row);
    if (err) return err == RF_ERR_NOT_FOUND ? RF_ERR_INTERNAL : err;
    if (m->system) return row.allow_negative ? RF_ERR_AMOUNT_OVERFLOW : RF_ERR_INTERNAL;
    /* pending_debits >= 0, and posted >= it unless allow_negative: no overflow */
    bool short_funds = !row.allow_negative && row.posted - row.pending_debits < need;
    return short_funds ? RF_ERR_INSUFFICIENT_FUNDS : RF_ERR_AMOUNT_OVERFLOW;
}

/* The entries of one account's k moves, in registration order: seq the
 * version each move would have given it, balance_after the running total. */
static rf_err entries_insert(struct rf_tx *tx, const struct dmove *const *m, int k,
                             const struct flushed *f, int64_t net_posted) {
    int64_t version = f->version - k, posted = f->posted - net_posted; /* before the moves */
    RF_ASSERT(version >= 1);
    store_val e[ENTRIES_PER_INSERT * 7];
    int rows = 0;
    for (int i = 0; i < k; i++) {
        int64_t d = m[i]->d[COL_POSTED];
        version++;
        posted += d; /* inside int64: the guard kept every prefix there */
        if (d == 0) continue;
        enum rf_entry_side side = d < 0 ? RF_ENTRY_DEBIT : RF_ENTRY_CREDIT;
        store_val *row = &e[rows * 7];
        row[0] = SV_S(m[i]->account);
        row[1] = SV_I(version);
        row[2] = SV_S(m[i]->transfer_id);
        row[3] = SV_S(rf_entry_side_name(side));
        row[4] = SV_I(d < 0 ? -d : d);
        row[5] = SV_I(posted);
        row[6] = SV_I(m[i]->at_ms);
        if (++rows < ENTRIES_PER_INSERT) continue;
        rf_err err = store_exec_later(tx, SQL_ENTRIES, e, rows * 7);
        if (err) return err;
        rows = 0;
    }
    for (int r = 0; r < rows; r++) { /* the rest one by one */
        rf_err err = store_exec_later(tx, ledger_sql_entry, &e[r * 7], 7);
        if (err) return err;
    }
    RF_ASSERT(version == f->version && posted == f->posted);
    return RF_OK;
}

static rf_err account_flush(struct rf_tx *tx, const struct dmove *const *m, int k) {
    struct guard g;
    if (!guard_of(m, k, &g)) return RF_ERR_AMOUNT_OVERFLOW;
    const char *currency = m[0]->currency;
    store_val p[14] = {SV_S(m[0]->account), SV_I(g.net[COL_POSTED]), SV_I(g.net[COL_PDEBITS]),
                       SV_I(g.net[COL_PCREDITS]), SV_I(k), SV_I(tx->now_ms),
                       SV_I(g.lo[COL_POSTED]), SV_I(g.hi[COL_POSTED]),
                       SV_I(g.lo[COL_PDEBITS]), SV_I(g.hi[COL_PDEBITS]),
                       SV_I(g.lo[COL_PCREDITS]), SV_I(g.hi[COL_PCREDITS]), SV_S(currency),
                       SV_I(g.need)};
    struct flushed f;
    rf_err err = store_query_one(tx, SQL_FLUSH, p, 14, read_flushed, &f);
    if (err == RF_ERR_NOT_FOUND) return flush_miss(tx, m[0], g.need);
    if (err) return err;
    return entries_insert(tx, m, k, &f, g.net[COL_POSTED]);
}

/* User accounts before system accounts, each by id, then in registration
 * order (the buffer's order). */
static int by_account(const void *a, const void *b) {
    const struct dmove *x = *(const struct dmove *const *)a, *y = *(const struct dmove *const *)b;
    if (x->system != y->system) return x->system ? 1 : -1;
    int c = strcmp(x->account, y->account);
    return c ? c : (x > y) - (x < y);
}

/* Drops the applied user moves, keeping the system moves in their order (a
 * user move is never a hold: the release slots stay as they were). */
static void keep_system_moves(struct defer_buf *b) {
    int kept = 0;
    for (int i = 0; i < b->n; i++)
        if (b->moves[i].system) {
            if (kept != i) b->moves[kept] = b->moves[i];
            kept++;
        }
    b->n = kept;
}

/* One phase's accounts in (system, id) order: every transaction locks user
 * rows before system rows and each kind in one order, so two flushes never
 * wait for each other in a cycle, and the hot system rows are locked last,
 * for the shortest time before COMMIT. */
static rf_err buf_flush(struct rf_tx *tx, enum exec_flush_phase phase) {
    struct defer_buf *b = tx->defer;
    if (!b || b->n == 0) return RF_OK;
    bool system = phase == EXEC_FLUSH_SYSTEM;
    const struct dmove *order[RF_DEFER_MOVES_MAX];
    int n = 0;
    for (int i = 0; i < b->n; i++)
        if (b->moves[i].system == system) order[n++] = &b->moves[i];
    RF_ASSERT(!system || n == b->n); /* the user phase ran first */
    qsort(order, (size_t)n, sizeof order[0], by_account);
    for (int i = 0, k; i < n; i += k) {
        for (k = 1; i + k < n && strcmp(order[i + k]->account, order[i]->account) == 0; k++) {}
        rf_err err = account_flush(tx, order + i, k);
        if (err) return err;
    }
    /* applied: a second flush applies nothing twice */
    if (system) buf_reset(b, b->users);
    else keep_system_moves(b);
    return RF_OK;
}

const struct exec_defer_ops deferred_ops = {
    .buf_bytes = sizeof(struct defer_buf),
    .reset = buf_reset,
    .mark = buf_mark,
    .rewind = buf_rewind,
    .flush = buf_flush,
};
