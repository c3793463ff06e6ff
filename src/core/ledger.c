/*
 * ledger.c - double-entry accounts, transfers and holds (seed 003).
 *
 * The race in the seed: read the balance, add in the application, write it
 * back; two requests double-apply or lose a credit. Here every balance change
 * is ONE guarded UPDATE (move_apply): the deltas are applied by the database
 * to the row it has locked, the funds check and the int64 range check are in
 * its WHERE clause, and a miss is classified afterwards (not found, currency,
 * insufficient funds, overflow) in the same transaction, on the row locked
 * (classify_miss), so the answer reflects the state that decided it. Both
 * accounts of a transfer are updated in id order, so two opposite transfers
 * cannot deadlock on PostgreSQL. Posted changes also write an entry whose seq is the
 * account's new version, so history order is the order of the balance. A
 * system account's move (funding:*, payouts:*: every credit moves one) and,
 * in a batch's first run, both sides of a posted transfer are deferred to
 * the end of the transaction (core/deferred.h), where one guarded UPDATE per
 * account applies them, exact over every prefix, so no row is locked from
 * an early operation of a batch until COMMIT. Holds and their resolution
 * move their user rows at once, under the same guard.
 * rf_ledger_check reads every invariant (the ledger's, the payouts', the
 * approvals' through approvals_check) in one snapshot.
 */
#include "core/ledger.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "core/deferred.h"
#include "core/flows.h"
#include "core/listing.h"
#include "core/ops.h"

#define ACCOUNT_COLS                                                                   \
    "id, currency, kind, allow_negative, metadata, posted, pending_debits,"           \
    " pending_credits, version, created_at, updated_at"
#define TRANSFER_COLS                                                                  \
    "id, debit_account, credit_account, amount_minor, posted_amount, currency, status," \
    " was_pending, reference, metadata, expires_at, created_at, resolved_at, version"

bool ledger_currency_valid(const char *c) {
    if (!c || strlen(c) != 3) return false;
    for (int i = 0; i < 3; i++)
        if (c[i] < 'A' || c[i] > 'Z') return false;
    return true;
}

/* Every credit names funding:<CUR>: copied, not formatted. */
void ledger_system_id(const char *role, const char *currency, char *out) {
    RF_ASSERT(ledger_currency_valid(currency));
    size_t n = strlen(role);
    RF_ASSERT(n + 1 + 3 < RF_ID_BYTES);
    memcpy(out, role, n);
    out[n] = ':';
    memcpy(out + n + 1, currency, 4); /* its three letters and NUL */
}

void rf_account_clear(struct rf_account *a) {
    if (!a) return;
    free(a->metadata_json);
    memset(a, 0, sizeof *a);
}

void rf_transfer_clear(struct rf_transfer *t) {
    if (!t) return;
    free(t->reference);
    free(t->metadata_json);
    memset(t, 0, sizeof *t);
}

void rf_entry_page_clear(struct rf_entry_page *p) {
    if (!p) return;
    page_clear(p->items, p->n, sizeof *p->items, NULL);
    memset(p, 0, sizeof *p);
}

/* THE names of enum rf_account_kind, in its order: the JSON's and the kind
 * column's (migration 002 lets the column hold only these). */
const char *const ledger_account_kinds[] = {"user", "system", NULL};
_Static_assert(RF_ACCOUNT_USER == 0 && RF_ACCOUNT_SYSTEM == 1,
               "ledger_account_kinds follows enum rf_account_kind");

const char *rf_account_kind_name(enum rf_account_kind kind) {
    return kind == RF_ACCOUNT_USER || kind == RF_ACCOUNT_SYSTEM ? ledger_account_kinds[kind]
                                                                 : NULL;
}

/* THE names of enum rf_transfer_status, in its order: the JSON's, the
 * status column's (its CHECK lets it hold only these) and the stored
 * result's (the transfer's codec). */
const char *const ledger_transfer_statuses[] = {"posted", "pending", "voided", NULL};
_Static_assert(RF_TRANSFER_POSTED == 0 && RF_TRANSFER_PENDING == 1 && RF_TRANSFER_VOIDED == 2,
               "ledger_transfer_statuses follows enum rf_transfer_status");

const char *rf_transfer_status_name(enum rf_transfer_status status) {
    return (unsigned)status <= RF_TRANSFER_VOIDED ? ledger_transfer_statuses[status] : NULL;
}

/* THE names of enum rf_entry_side, in its order: the JSON's and the side
 * column's (its CHECK lets it hold only these). */
static const char *const entry_sides[] = {"debit", "credit", NULL};
_Static_assert(RF_ENTRY_DEBIT == 0 && RF_ENTRY_CREDIT == 1,
               "entry_sides follows enum rf_entry_side");

const char *rf_entry_side_name(enum rf_entry_side side) {
    return (unsigned)side <= RF_ENTRY_CREDIT ? entry_sides[side] : NULL;
}

/* A column's text as the index of its name in names (NULL-terminated): the
 * schema's CHECK lets the column hold only those names. */
static int column_enum(const char *const names[], const char *text) {
    int i = 0;
    while (names[i] && strcmp(names[i], text) != 0) i++;
    RF_ASSERT(names[i]); /* a known name */
    return i;
}

static void read_account(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_account *a = out;
    rf_account_clear(a);
    rf_strcpy(a->id, sizeof a->id, store_text(tx, r, 0));
    rf_strcpy(a->currency, sizeof a->currency, store_text(tx, r, 1));
    a->kind = column_enum(ledger_account_kinds, store_text(tx, r, 2));
    a->allow_negative = store_int(tx, r, 3) != 0;
    a->metadata_json = core_dup_col(tx, r, 4);
    a->posted = store_int(tx, r, 5);
    a->pending_debits = store_int(tx, r, 6);
    a->pending_credits = store_int(tx, r, 7);
    a->version = store_int(tx, r, 8);
    a->created_at_ms = store_int(tx, r, 9);
    a->updated_at_ms = store_int(tx, r, 10);
    if (__builtin_sub_overflow(a->posted, a->pending_debits, &a->available))
        a->available = a->posted < 0 ? INT64_MIN : INT64_MAX;
    RF_ASSERT(a->pending_debits >= 0 && a->pending_credits >= 0 && a->version >= 1);
}

static void read_transfer(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_transfer *t = out;
    rf_transfer_clear(t);
    rf_strcpy(t->id, sizeof t->id, store_text(tx, r, 0));
    rf_strcpy(t->debit_account, sizeof t->debit_account, store_text(tx, r, 1));
    rf_strcpy(t->credit_account, sizeof t->credit_account, store_text(tx, r, 2));
    t->amount_minor = store_int(tx, r, 3);
    t->posted_amount_minor = store_int(tx, r, 4);
    rf_strcpy(t->currency, sizeof t->currency, store_text(tx, r, 5));
    t->status = column_enum(ledger_transfer_statuses, store_text(tx, r, 6));
    t->pending = store_int(tx, r, 7) != 0;
    t->reference = core_dup_col(tx, r, 8);
    t->metadata_json = core_dup_col(tx, r, 9);
    t->expires_at_ms = store_int(tx, r, 10);
    t->created_at_ms = store_int(tx, r, 11);
    t->resolved_at_ms = store_int(tx, r, 12);
    t->version = store_int(tx, r, 13);
    RF_ASSERT(t->amount_minor > 0 && t->posted_amount_minor <= t->amount_minor);
}

/* ---- system accounts and the id namespaces racefree reserves ------------ */

/* THE list of reserved id namespaces: an id "<ns>:..." can never be created
 * by a client (a squatted funding:USD in another currency or kind would make
 * every credit in USD fail for good). A namespace whose accounts only their
 * own flow moves (client_moves false) is also refused in client transfers,
 * credits and payouts: payouts:<CUR> holds exactly the payouts' holds, which
 * reconcile checks against the payouts. funding:<CUR> is the documented
 * counterparty for money entering and leaving the ledger, so clients may
 * move money to and from it. A new namespace is one row here. */
static const struct reserved_ns {
    const char *ns;
    bool per_currency;  /* a system account <ns>:<CUR> is made on the currency's first use */
    bool client_moves;  /* client transfers may name it */
} RESERVED[] = {
    {LEDGER_NS_FUNDING, true, true},
    {LEDGER_NS_PAYOUTS, true, false},
};
#define RESERVED_N ((int)(sizeof RESERVED / sizeof RESERVED[0]))

static const struct reserved_ns *reserved_ns_of(const char *id) {
    for (int i = 0; id && i < RESERVED_N; i++) {
        size_t n = strlen(RESERVED[i].ns);
        if (strncmp(id, RESERVED[i].ns, n) == 0 && id[n] == ':') return &RESERVED[i];
    }
    return NULL;
}

bool rf_account_id_reserved(const char *id) { return reserved_ns_of(id) != NULL; }

bool rf_account_id_flow_owned(const char *id) {
    const struct reserved_ns *r = reserved_ns_of(id);
    return r && !r->client_moves;
}

/* All system accounts may go negative (deferred.c relies on it). */
static const char SQL_SYSTEM_ACCOUNT[] =
    "INSERT INTO accounts (id, currency, kind, allow_negative, metadata, posted,"
    " pending_debits, pending_credits, version, created_at, updated_at)"
    " VALUES ($1, $2, 'system', 1, NULL, 0, 0, 0, 1, $3, $3) ON CONFLICT (id) DO NOTHING";
/* A plain read never waits. On PostgreSQL an INSERT .. ON CONFLICT waits for
 * any transaction that has the existing row locked (each one flushing a move
 * on it), so every credit would queue behind the one before again; and on
 * SQLite an INSERT .. SELECT from its own table goes through a temporary
 * table. So the accounts are read first and inserted only when missing; the
 * read only skips a no-op: who creates a missing account is still decided
 * by the primary key (ON CONFLICT DO NOTHING), not by the read. */
static const char SQL_SYSTEM_MADE[] = "SELECT COUNT(*) FROM accounts WHERE id IN ($1, $2)";
_Static_assert(RESERVED_N == 2, "SQL_SYSTEM_MADE names every reserved namespace's account");

static bool system_known(rf *db, const char *currency) {
    int n = atomic_load_explicit(&db->sys_n, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (strcmp(db->sys_known[i], currency) == 0) return true;
    return false;
}

/* After a transaction that made or moved currency's system accounts
 * committed: they exist for good (accounts are never deleted). Only then,
 * since one that rolled back may have made them and taken them back. */
void ledger_system_committed(rf *db, const char *currency) {
    if (!ledger_currency_valid(currency) || system_known(db, currency)) return;
    pthread_mutex_lock(&db->sys_mu);
    int n = atomic_load_explicit(&db->sys_n, memory_order_relaxed);
    if (n < RF_SYS_CURRENCIES_MAX && !system_known(db, currency)) {
        rf_strcpy(db->sys_known[n], RF_CURRENCY_BYTES, currency);
        atomic_store_explicit(&db->sys_n, n + 1, memory_order_release);
    } /* full: the rest keep checking, correct and a statement slower */
    pthread_mutex_unlock(&db->sys_mu);
}

/* Makes currency's system accounts unless this handle saw a transaction
 * that had them commit: a plain read (never waits for a locked row), an
 * insert only when one is missing. */
static rf_err ensure_system_accounts(struct rf_tx *tx, const char *currency) {
    if (system_known(tx->db, currency)) return RF_OK;
    char ids[RESERVED_N][RF_ID_BYTES];
    for (int i = 0; i < RESERVED_N; i++) {
        RF_ASSERT(RESERVED[i].per_currency);
        ledger_system_id(RESERVED[i].ns, currency, ids[i]);
    }
    int64_t made = 0;
    store_val q[2] = {SV_S(ids[0]), SV_S(ids[1])};
    rf_err err = store_query_one(tx, SQL_SYSTEM_MADE, q, 2, core_int_row, &made);
    if (err || made == RESERVED_N) return err;
    for (int i = 0; i < RESERVED_N && !err; i++) {
        store_val p[3] = {SV_S(ids[i]), SV_S(currency), SV_I(tx->now_ms)};
        err = store_exec(tx, SQL_SYSTEM_ACCOUNT, p, 3, NULL);
    }
    return err;
}

/* An id of the form <ns>:CUR of a per-currency namespace names a system
 * account. */
static bool is_system_id(const char *id, const char *currency) {
    const struct reserved_ns *r = reserved_ns_of(id);
    return r && r->per_currency && strcmp(id + strlen(r->ns) + 1, currency) == 0;
}

void ledger_transfer_committed(rf *db, const struct rf_transfer *t) {
    if (is_system_id(t->debit_account, t->currency) || is_system_id(t->credit_account, t->currency))
        ledger_system_committed(db, t->currency);
}

/* ---- accounts ----------------------------------------------------------- */

static const char SQL_ACCOUNT_INSERT[] =
    "INSERT INTO accounts (id, currency, kind, allow_negative, metadata, posted,"
    " pending_debits, pending_credits, version, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 1, $6, $6) ON CONFLICT (id) DO NOTHING"
    " RETURNING " ACCOUNT_COLS;
static const char SQL_ACCOUNT_GET[] = "SELECT " ACCOUNT_COLS " FROM accounts WHERE id = $1";

/* The create found the id taken: the same account is an idempotent 200,
 * another is a conflict. */
static rf_err account_existing(struct rf_tx *tx, const struct rf_account_req *req,
                               const store_val *id, struct rf_account_res *res) {
    rf_err err = store_query_one(tx, SQL_ACCOUNT_GET, id, 1, read_account, &res->account);
    if (err) return err == RF_ERR_NOT_FOUND ? RF_ERR_INTERNAL : err; /* accounts stay */
    const struct rf_account *have = &res->account;
    const char *meta = req->metadata_json ? req->metadata_json : "";
    bool same = strcmp(have->currency, req->currency) == 0 && have->kind == req->kind &&
                have->allow_negative == req->allow_negative &&
                strcmp(have->metadata_json ? have->metadata_json : "", meta) == 0;
    return same ? RF_OK : RF_ERR_ACCOUNT_EXISTS;
}

/* What a created account is: the request's attributes, nothing moved yet,
 * at version 1, made now. */
static void account_created(const struct rf_tx *tx, const struct rf_account_req *req,
                            const struct rf_account *a) {
    RF_ASSERT(a->version == 1 && a->created_at_ms == tx->now_ms &&
              a->updated_at_ms == tx->now_ms);
    RF_ASSERT(a->posted == 0 && a->pending_debits == 0 && a->pending_credits == 0 &&
              a->available == 0);
    RF_ASSERT(a->kind == req->kind && a->allow_negative == req->allow_negative &&
              strcmp(a->currency, req->currency) == 0);
}

/* ---- the operation table's rows (core/ops.h) ------------------------------ */

/* Insert-or-find in one statement (INSERT .. ON CONFLICT DO NOTHING
 * RETURNING), never check-then-insert: two creates of one id make one
 * account, and the second answers it (or a conflict). */
rf_err op_account_create(struct rf_tx *tx, const void *request, void *result) {
    const struct rf_account_req *req = request;
    struct rf_account_res *res = result;
    RF_ASSERT(!rf_account_id_reserved(req->id)); /* the row's check refused it */
    rf_account_clear(&res->account);
    char id[RF_ID_BYTES];
    if (req->id) rf_strcpy(id, sizeof id, req->id);
    else rf_uuid7(tx->now_ms, id);
    rf_err err = ensure_system_accounts(tx, req->currency);
    if (err) return err;
    store_val p[6] = {SV_S(id), SV_S(req->currency), SV_S(rf_account_kind_name(req->kind)),
                      SV_I(req->allow_negative ? 1 : 0), SV_S(req->metadata_json),
                      SV_I(tx->now_ms)};
    err = store_query_one(tx, SQL_ACCOUNT_INSERT, p, 6, read_account, &res->account);
    res->created = err == RF_OK;
    if (err == RF_OK) account_created(tx, req, &res->account);
    if (err != RF_ERR_NOT_FOUND) return err;
    return account_existing(tx, req, p, res);
}

rf_err op_account_get(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_account_ref *a = req;
    store_val p[1] = {SV_S(a->id)};
    rf_err err = store_query_one(tx, SQL_ACCOUNT_GET, p, 1, read_account, res);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_ACCOUNT_NOT_FOUND : err;
}

/* ---- the public functions: thin wrappers over rf_op_run ------------------- */

rf_err rf_account_create(rf *db, const struct rf_account_req *req, struct rf_account_res *res,
                         struct rf_idem *idem) {
    return rf_op_run(db, RF_OP_ACCOUNT_CREATE, req, res, idem, NULL);
}

rf_err rf_account_get(rf *db, const char *id, struct rf_account *out) {
    struct rf_account_ref req = {id};
    return rf_op_run(db, RF_OP_ACCOUNT_GET, &req, out, NULL, NULL);
}

/* Only the column asked for: every credit reads it (the whole row cost
 * SQLite eleven columns and a metadata copy). */
static const char SQL_ACCOUNT_CURRENCY[] = "SELECT currency FROM accounts WHERE id = $1";

static void read_currency(struct rf_tx *tx, struct store_rows *r, void *out) {
    const char *c = store_text(tx, r, 0);
    RF_ASSERT(c && strlen(c) == RF_CURRENCY_BYTES - 1); /* the table's CHECK */
    rf_strcpy(out, RF_CURRENCY_BYTES, c);
}

rf_err ledger_account_currency(struct rf_tx *tx, const char *id, char currency[RF_CURRENCY_BYTES]) {
    store_val p[1] = {SV_S(id)};
    rf_err err = store_query_one(tx, SQL_ACCOUNT_CURRENCY, p, 1, read_currency, currency);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_ACCOUNT_NOT_FOUND : err;
}

/* ---- balance moves ------------------------------------------------------ */

/* One account's change. Deltas are applied by the database; the WHERE clause
 * keeps every column inside int64 and the available balance >= 0 unless the
 * account may go negative. */
struct move {
    const char *account;
    const char *currency;
    const char *transfer_id;
    int64_t d_posted, d_pdebits, d_pcredits;
};

static const char SQL_MOVE[] =
    "UPDATE accounts SET posted = posted + $2, pending_debits = pending_debits + $3,"
    " pending_credits = pending_credits + $4, version = version + 1, updated_at = $5"
    " WHERE id = $1 AND currency = $6"
    " AND posted >= $7 AND posted <= $8"
    " AND pending_debits >= $9 AND pending_debits <= $10"
    " AND pending_credits >= $11 AND pending_credits <= $12"
    " AND (CASE WHEN allow_negative = 1 THEN 1 WHEN posted - pending_debits >= $13 THEN 1"
    " ELSE 0 END) = 1"
    " RETURNING posted, version, pending_debits, pending_credits, allow_negative";

const char ledger_sql_entry[] =
    "INSERT INTO entries (account_id, seq, transfer_id, side, amount_minor, balance_after,"
    " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/* Bounds on a column so that column + d stays inside int64. */
static void bounds(int64_t d, int64_t *lo, int64_t *hi) {
    *lo = d < 0 ? INT64_MIN - d : INT64_MIN;
    *hi = d > 0 ? INT64_MAX - d : INT64_MAX;
}

/* The moved row as SQL_MOVE returns it (the later columns only for
 * move_done's checks). */
struct after {
    int64_t posted, version, pending_debits, pending_credits;
    bool allow_negative;
    bool deferred; /* registered for the flush (deferred.h): nothing above is read */
};

static void read_after(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct after *a = out;
    a->posted = store_int(tx, r, 0);
    a->version = store_int(tx, r, 1);
    a->pending_debits = store_int(tx, r, 2);
    a->pending_credits = store_int(tx, r, 3);
    a->allow_negative = store_int(tx, r, 4) != 0;
}

/* What the guarded UPDATE guarantees of the row it moved: its version went
 * past the insert's 1 (the entry's seq is that version), and an account that
 * may not go negative still has available = posted - pending_debits >= 0,
 * since the WHERE clause required the old available to cover the move. The
 * pending totals stay >= 0: a release only ever takes back its own hold. */
static void move_done(const struct move *m, const struct after *a) {
    RF_ASSERT(a->version >= 2);
    RF_ASSERT(a->pending_debits >= 0 && a->pending_credits >= 0);
    RF_ASSERT(a->allow_negative || a->posted >= a->pending_debits);
    RF_ASSERT(m->d_posted || m->d_pdebits || m->d_pcredits); /* a move moves something */
}

/* The account row, locked until the transaction ends (PostgreSQL; on SQLite
 * the writer already holds the database lock, and the store drops the
 * suffix). */
static const char SQL_ACCOUNT_LOCK[] = "SELECT " ACCOUNT_COLS " FROM accounts WHERE id = $1"
                                       " FOR UPDATE";

/* True when column + d leaves int64. */
static bool leaves_int64(int64_t column, int64_t d) {
    int64_t sum;
    return __builtin_add_overflow(column, d, &sum);
}

/* Why a move missed, decided on the locked row: the account is absent, in
 * another currency, short of funds, or a balance would leave int64. RF_OK
 * means the locked state allows the move after all: on PostgreSQL (READ
 * COMMITTED) another transaction changed the row between the guarded UPDATE
 * and the lock. Classifying with a plain second read instead would judge a
 * newer state than the one that decided the miss, and call a shortfall an
 * overflow once a credit had committed in between. */
static rf_err classify_miss(struct rf_tx *tx, const struct move *m) {
    struct rf_account a = {0};
    store_val p[1] = {SV_S(m->account)};
    rf_err err = store_query_one(tx, SQL_ACCOUNT_LOCK, p, 1, read_account, &a);
    if (err == RF_ERR_NOT_FOUND) return RF_ERR_ACCOUNT_NOT_FOUND;
    if (err) return err;
    bool other_currency = strcmp(a.currency, m->currency) != 0;
    int64_t need = m->d_pdebits - m->d_posted; /* what availability must cover */
    int64_t avail;
    bool short_funds = !a.allow_negative &&
                       (__builtin_sub_overflow(a.posted, a.pending_debits, &avail) || avail < need);
    bool overflow = leaves_int64(a.posted, m->d_posted) ||
                    leaves_int64(a.pending_debits, m->d_pdebits) ||
                    leaves_int64(a.pending_credits, m->d_pcredits);
    if (!other_currency && short_funds) core_fact_available(tx, avail, a.currency);
    rf_account_clear(&a);
    if (other_currency) return RF_ERR_CURRENCY_MISMATCH;
    if (short_funds) return RF_ERR_INSUFFICIENT_FUNDS;
    return overflow ? RF_ERR_AMOUNT_OVERFLOW : RF_OK;
}

/* Registers m for the flush (deferred.h) when it may wait there: a system
 * account's move, or a user account's posted move once a plain read in this
 * transaction found the account in the move's currency (known). A user
 * account not known so (absent, another currency), a hold and a hold's
 * resolution apply at once, where the guarded UPDATE reports what is wrong.
 * false: apply it now. */
static bool move_defer(struct rf_tx *tx, const struct move *m, bool known) {
    struct deferred_account a = {m->account, m->currency, is_system_id(m->account, m->currency)};
    if (!a.system && (!known || m->d_posted == 0 || m->d_pdebits || m->d_pcredits)) return false;
    return deferred_move(tx, &a, m->transfer_id, m->d_posted, m->d_pdebits, m->d_pcredits);
}

/* Which of a posted transfer's user accounts exist in its currency, for
 * move_defer; seen[] (debit, credit) may be true already (read by the
 * operation). One statement for both: each read is a round trip on
 * PostgreSQL. Accounts are never deleted nor change currency, so the
 * plain read stays true until COMMIT. */
static const char SQL_ACCOUNTS_SEEN[] = "SELECT id, currency FROM accounts WHERE id IN ($1, $2)";

struct seen_read {
    const struct move *m[2];
    bool *seen;
};

static void read_seen(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct seen_read *s = out;
    const char *id = store_text(tx, r, 0), *currency = store_text(tx, r, 1);
    for (int i = 0; i < 2; i++)
        if (s->m[i] && strcmp(s->m[i]->account, id) == 0)
            s->seen[i] = strcmp(s->m[i]->currency, currency) == 0;
}

static rf_err accounts_seen(struct rf_tx *tx, const struct move *debit, const struct move *credit,
                            bool seen[2]) {
    if (!deferred_users(tx)) return RF_OK; /* no user move would wait: nothing to learn */
    const struct move *sides[2] = {debit, credit};
    struct seen_read s = {{NULL, NULL}, seen};
    for (int i = 0; i < 2; i++)
        if (!seen[i] && !is_system_id(sides[i]->account, sides[i]->currency)) s.m[i] = sides[i];
    if (!s.m[0] && !s.m[1]) return RF_OK;
    const char *a = s.m[0] ? s.m[0]->account : s.m[1]->account;
    const char *b = s.m[1] ? s.m[1]->account : a;
    store_val p[2] = {SV_S(a), SV_S(b)};
    return store_query_each(tx, SQL_ACCOUNTS_SEEN, p, 2, 2, read_seen, &s);
}

/* The guarded UPDATE; on a miss the row is locked and the miss classified on
 * it, and when the locked state allows the move it is applied (the lock
 * keeps it allowed, so a second try cannot miss; the bound is defensive). */
static rf_err move_apply(struct rf_tx *tx, const struct move *m, bool known,
                         struct after *after) {
    /* A deferred move (its entry too) waits for the flush, so its row is
     * locked only at the end of the transaction. */
    after->deferred = move_defer(tx, m, known);
    if (after->deferred) return RF_OK;
    int64_t plo, phi, dlo, dhi, clo, chi;
    bounds(m->d_posted, &plo, &phi);
    bounds(m->d_pdebits, &dlo, &dhi);
    bounds(m->d_pcredits, &clo, &chi);
    int64_t need = m->d_pdebits - m->d_posted; /* both bounded by transfer amounts */
    store_val p[13] = {SV_S(m->account), SV_I(m->d_posted), SV_I(m->d_pdebits),
                       SV_I(m->d_pcredits), SV_I(tx->now_ms), SV_S(m->currency), SV_I(plo),
                       SV_I(phi), SV_I(dlo), SV_I(dhi), SV_I(clo), SV_I(chi), SV_I(need)};
    for (int tries = 0; tries < RF_MOVE_TRIES_MAX; tries++) {
        rf_err err = store_query_one(tx, SQL_MOVE, p, 13, read_after, after);
        if (err == RF_OK) move_done(m, after);
        if (err != RF_ERR_NOT_FOUND) return err;
        err = classify_miss(tx, m);
        if (err) return err;
    }
    return RF_ERR_INTERNAL; /* the locked row allowed the move, the UPDATE did not */
}

/* The history row of a posted change; seq is the account's new version. */
static rf_err entry_write(struct rf_tx *tx, const struct move *m, const struct after *after) {
    if (m->d_posted == 0 || after->deferred) return RF_OK;
    int64_t amount = m->d_posted < 0 ? -m->d_posted : m->d_posted;
    RF_ASSERT(amount > 0 && after->version >= 2); /* seq 1 is no change's */
    enum rf_entry_side side = m->d_posted < 0 ? RF_ENTRY_DEBIT : RF_ENTRY_CREDIT;
    store_val e[7] = {SV_S(m->account), SV_I(after->version), SV_S(m->transfer_id),
                      SV_S(entry_sides[side]), SV_I(amount), SV_I(after->posted),
                      SV_I(tx->now_ms)};
    return store_exec_later(tx, ledger_sql_entry, e, 7); /* a failure fails the operation */
}

/* Applies both sides in account id order (no lock-order deadlocks). Double
 * entry: what the debit side's posted total loses the credit side's gains,
 * and a hold raises (or its resolution lowers) the debit side's pending
 * debits and the credit side's pending credits by the same amount. A
 * posted transfer defers both sides (deferred.h), so it locks no row before
 * the flush; a hold and its resolution lock theirs now. seen: (debit,
 * credit) was found in this currency by a read in this transaction. */
static rf_err moves_apply(struct rf_tx *tx, const struct move *debit, const struct move *credit,
                          const bool seen[2], struct after after[2]) {
    RF_ASSERT(debit->d_posted <= 0 && debit->d_posted == -credit->d_posted);
    RF_ASSERT(debit->d_pdebits == credit->d_pcredits && debit->d_pcredits == 0 &&
              credit->d_pdebits == 0);
    RF_ASSERT(strcmp(debit->account, credit->account) != 0);
    bool debit_first = strcmp(debit->account, credit->account) < 0;
    const struct move *first = debit_first ? debit : credit, *second = debit_first ? credit : debit;
    struct after *a_first = &after[debit_first ? 0 : 1], *a_second = &after[debit_first ? 1 : 0];
    rf_err err = move_apply(tx, first, seen[debit_first ? 0 : 1], a_first);
    return err ? err : move_apply(tx, second, seen[debit_first ? 1 : 0], a_second);
}

static rf_err entries_write(struct rf_tx *tx, const struct move *debit,
                            const struct move *credit, const struct after after[2]) {
    rf_err err = entry_write(tx, debit, &after[0]);
    return err ? err : entry_write(tx, credit, &after[1]);
}

/* ---- transfers ---------------------------------------------------------- */

static const char SQL_TRANSFER_INSERT[] =
    "INSERT INTO transfers (id, debit_account, credit_account, amount_minor, posted_amount,"
    " currency, status, was_pending, reference, metadata, expires_at, created_at, resolved_at,"
    " version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1)"
    " ON CONFLICT (reference) DO NOTHING";
static const char SQL_TRANSFER_BY_REF[] = "SELECT " TRANSFER_COLS " FROM transfers WHERE reference = $1";
static const char SQL_TRANSFER_GET[] = "SELECT " TRANSFER_COLS " FROM transfers WHERE id = $1";

static rf_err transfer_validate(const struct rf_transfer_req *req) {
    if (!rf_id_valid(req->debit_account) || !rf_id_valid(req->credit_account) ||
        !ledger_currency_valid(req->currency) || req->amount_minor <= 0 ||
        req->expires_at_ms < 0 || (req->expires_at_ms && !req->pending) ||
        (req->reference && !rf_id_valid(req->reference)))
        return RF_ERR_INVALID;
    return strcmp(req->debit_account, req->credit_account) == 0 ? RF_ERR_SAME_ACCOUNT : RF_OK;
}

/* After the balance moves (which report unknown accounts before the row's
 * foreign keys could), before the entries that reference it. */
/* The row just inserted, from what was inserted: every column is the
 * request's or this transaction's, so nothing is read back (a RETURNING costs
 * SQLite a temporary b-tree per statement). */
static rf_err transfer_as_inserted(const struct rf_transfer_req *req, const char *id,
                                   int64_t now_ms, struct rf_transfer *t) {
    rf_strcpy(t->id, sizeof t->id, id);
    rf_strcpy(t->debit_account, sizeof t->debit_account, req->debit_account);
    rf_strcpy(t->credit_account, sizeof t->credit_account, req->credit_account);
    t->amount_minor = req->amount_minor;
    t->posted_amount_minor = req->pending ? 0 : req->amount_minor;
    rf_strcpy(t->currency, sizeof t->currency, req->currency);
    t->status = req->pending ? RF_TRANSFER_PENDING : RF_TRANSFER_POSTED;
    t->pending = req->pending;
    t->reference = req->reference ? strdup(req->reference) : NULL;
    t->metadata_json = req->metadata_json ? strdup(req->metadata_json) : NULL;
    t->expires_at_ms = req->expires_at_ms;
    t->created_at_ms = now_ms;
    t->resolved_at_ms = req->pending ? 0 : now_ms; /* a posted one is resolved now */
    t->version = 1;
    if ((req->reference && !t->reference) || (req->metadata_json && !t->metadata_json))
        return RF_ERR_NOMEM;
    return RF_OK;
}

static rf_err transfer_insert(struct rf_tx *tx, const struct rf_transfer_req *req,
                              const char *id, struct rf_transfer_res *res) {
    enum rf_transfer_status status = req->pending ? RF_TRANSFER_PENDING : RF_TRANSFER_POSTED;
    store_val p[13] = {SV_S(id), SV_S(req->debit_account), SV_S(req->credit_account),
                       SV_I(req->amount_minor), req->pending ? SV_N() : SV_I(req->amount_minor),
                       SV_S(req->currency), SV_S(ledger_transfer_statuses[status]),
                       SV_I(req->pending ? 1 : 0), SV_S(req->reference),
                       SV_S(req->metadata_json), SV_I0(req->expires_at_ms), SV_I(tx->now_ms),
                       req->pending ? SV_N() : SV_I(tx->now_ms)};
    /* Without a reference nothing can conflict (the id is fresh): the row
     * count is not read, and a failure fails the operation. */
    if (!req->reference) {
        rf_err err = store_exec_later(tx, SQL_TRANSFER_INSERT, p, 13);
        return err ? err : transfer_as_inserted(req, id, tx->now_ms, &res->transfer);
    }
    int64_t inserted = 0;
    rf_err err = store_exec(tx, SQL_TRANSFER_INSERT, p, 13, &inserted);
    RF_ASSERT(err || inserted == 0 || inserted == 1);
    if (!err && inserted == 1) return transfer_as_inserted(req, id, tx->now_ms, &res->transfer);
    if (!err) err = RF_ERR_NOT_FOUND; /* the reference's row exists */
    if (err != RF_ERR_NOT_FOUND) return err;
    RF_ASSERT(req->reference); /* only a reference can conflict: ids are fresh */
    struct rf_transfer existing = {0};
    store_val r[1] = {SV_S(req->reference)};
    err = store_query_one(tx, SQL_TRANSFER_BY_REF, r, 1, read_transfer, &existing);
    if (!err) rf_strcpy(res->existing_id, sizeof res->existing_id, existing.id);
    rf_transfer_clear(&existing);
    return err ? err : RF_ERR_DUPLICATE_REFERENCE;
}

/* credit_known: the operation has read the credit account, in req's
 * currency, in this transaction. */
static rf_err transfer_apply(struct rf_tx *tx, const struct rf_transfer_req *req,
                             bool credit_known, struct rf_transfer_res *res) {
    rf_transfer_clear(&res->transfer);
    res->existing_id[0] = '\0';
    rf_err err = transfer_validate(req);
    if (err) return err;
    if (req->expires_at_ms && req->expires_at_ms <= tx->now_ms) return RF_ERR_INVALID; /* born expired */
    if (is_system_id(req->debit_account, req->currency) ||
        is_system_id(req->credit_account, req->currency)) {
        err = ensure_system_accounts(tx, req->currency);
        if (err) return err;
    }
    char id[RF_ID_BYTES];
    rf_uuid7(tx->now_ms, id);
    int64_t amt = req->amount_minor;
    struct move debit = {req->debit_account, req->currency, id, 0, 0, 0};
    struct move credit = {req->credit_account, req->currency, id, 0, 0, 0};
    if (req->pending) {
        debit.d_pdebits = amt;
        credit.d_pcredits = amt;
    } else {
        debit.d_posted = -amt;
        credit.d_posted = amt;
    }
    bool seen[2] = {false, credit_known};
    err = req->pending ? RF_OK : accounts_seen(tx, &debit, &credit, seen);
    struct after after[2];
    if (!err) err = moves_apply(tx, &debit, &credit, seen, after);
    if (!err) err = transfer_insert(tx, req, id, res);
    if (!err) err = entries_write(tx, &debit, &credit, after);
    return err;
}

rf_err ledger_transfer(struct rf_tx *tx, const struct rf_transfer_req *req,
                       struct rf_transfer_res *res) {
    return transfer_apply(tx, req, false, res);
}

/* A client's transfer: the operation table has checked its fields and that
 * it names no account only its own flow moves (payouts:*). */
rf_err op_transfer_create(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_transfer_req *r = req;
    RF_ASSERT(!rf_account_id_flow_owned(r->debit_account) &&
              !rf_account_id_flow_owned(r->credit_account));
    return ledger_transfer(tx, r, res);
}

/* ---- resolving holds ---------------------------------------------------- */

/* A hold that a payout owns (payouts.hold_transfer_id) resolves only through
 * that payout: $4 is the resolving payout's id, '' for anyone else (the
 * transfer routes, the expiry sweep). The owner is decided inside the guarded
 * UPDATE itself, so no check-then-act window exists; a payout row is written
 * in the transaction that creates its hold and never changes hold, so any
 * snapshot that sees the hold sees its owner. Voiding or posting a payout's
 * hold outside the payout used to release money the payout could still pay
 * out, and left the payout pending for good. */
#define OWNER_GUARD                                                                    \
    " AND COALESCE((SELECT p.id FROM payouts p WHERE p.hold_transfer_id = $1), '') = $4"

/* $2 = 0 posts the whole hold. */
static const char SQL_POST[] =
    "UPDATE transfers SET status = 'posted',"
    " posted_amount = CASE WHEN $2 = 0 THEN amount_minor ELSE $2 END, resolved_at = $3,"
    " version = version + 1 WHERE id = $1 AND status = 'pending' AND amount_minor >= $2"
    " AND (expires_at IS NULL OR expires_at > $3)" OWNER_GUARD " RETURNING " TRANSFER_COLS;
static const char SQL_VOID[] =
    "UPDATE transfers SET status = 'voided', resolved_at = $3, version = version + 1"
    " WHERE id = $1 AND status = 'pending' AND $2 = 0" OWNER_GUARD " RETURNING " TRANSFER_COLS;
static const char SQL_HOLD_OWNER[] = "SELECT id FROM payouts WHERE hold_transfer_id = $1";

static void read_owner(struct rf_tx *tx, struct store_rows *r, void *out) {
    rf_strcpy(out, RF_ID_BYTES, store_text(tx, r, 0));
}

/* Why a resolution missed: absent, owned by a payout (other than the one
 * resolving it), already resolved (or expired), or more than the hold. */
static rf_err classify_resolve(struct rf_tx *tx, const char *id, const char *owner,
                               int64_t amount) {
    char have[RF_ID_BYTES] = "";
    store_val p[1] = {SV_S(id)};
    rf_err err = store_query_one(tx, SQL_HOLD_OWNER, p, 1, read_owner, have);
    if (err && err != RF_ERR_NOT_FOUND) return err;
    struct rf_transfer t = {0};
    err = store_query_one(tx, SQL_TRANSFER_GET, p, 1, read_transfer, &t);
    bool pending = !err && t.status == RF_TRANSFER_PENDING;
    bool too_much = !err && amount > t.amount_minor;
    /* a hold past expires_at is pending until the sweep voids it */
    bool expired = pending && t.expires_at_ms && t.expires_at_ms <= tx->now_ms;
    if (!err) core_fact_status(tx, expired ? "expired" : ledger_transfer_statuses[t.status]);
    rf_transfer_clear(&t);
    if (err == RF_ERR_NOT_FOUND) return RF_ERR_TRANSFER_NOT_FOUND;
    if (err) return err;
    if (strcmp(have, owner) != 0) return RF_ERR_HOLD_OWNED;
    return pending && too_much ? RF_ERR_INVALID : RF_ERR_INVALID_STATE;
}

rf_err ledger_resolve(struct rf_tx *tx, const char *id, const char *owner, bool post,
                      int64_t amount, struct rf_transfer_res *res) {
    rf_transfer_clear(&res->transfer);
    if (!owner) owner = "";
    if (!rf_id_valid(id) || amount < 0 || (!post && amount) || (*owner && !rf_id_valid(owner)))
        return RF_ERR_INVALID;
    store_val p[4] = {SV_S(id), SV_I(amount), SV_I(tx->now_ms), SV_S(owner)};
    rf_err err = store_query_one(tx, post ? SQL_POST : SQL_VOID, p, 4, read_transfer,
                                 &res->transfer);
    if (err == RF_ERR_NOT_FOUND) return classify_resolve(tx, id, owner, amount);
    if (err) return err;
    const struct rf_transfer *t = &res->transfer;
    int64_t amt = t->amount_minor, paid = post ? t->posted_amount_minor : 0;
    /* The guarded UPDATE took a hold that was pending: resolved now, and a
     * post pays exactly what was asked (the whole hold for 0), never more. */
    RF_ASSERT(t->pending && t->version >= 2 && t->resolved_at_ms == tx->now_ms &&
              t->status == (post ? RF_TRANSFER_POSTED : RF_TRANSFER_VOIDED));
    RF_ASSERT(!post || (paid == (amount ? amount : amt) && paid > 0 && paid <= amt));
    struct move debit = {t->debit_account, t->currency, t->id, -paid, -amt, 0};
    struct move credit = {t->credit_account, t->currency, t->id, paid, 0, -amt};
    struct after after[2];
    const bool seen[2] = {false, false}; /* a resolution's user moves apply at once */
    err = moves_apply(tx, &debit, &credit, seen, after);
    return err ? err : entries_write(tx, &debit, &credit, after);
}

/* Anyone but a payout resolves a hold here (owner NULL): a payout's own
 * hold answers RF_ERR_HOLD_OWNED. */
rf_err op_transfer_post(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_transfer_ref *r = req;
    RF_ASSERT(r->amount_minor >= 0);
    return ledger_resolve(tx, r->id, NULL, true, r->amount_minor, res);
}

rf_err op_transfer_void(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_transfer_ref *r = req;
    return ledger_resolve(tx, r->id, NULL, false, r->amount_minor, res);
}

rf_err op_transfer_get(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_transfer_ref *r = req;
    store_val p[1] = {SV_S(r->id)};
    rf_err err = store_query_one(tx, SQL_TRANSFER_GET, p, 1, read_transfer, res);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_TRANSFER_NOT_FOUND : err;
}

/* ---- expiry: void holds past expires_at, in bounded batches ------------- */

/* A payout's hold never expires: only its payout resolves it (its hold is
 * made without expires_at; the guard keeps the sweep from ever taking one). */
static const char SQL_EXPIRED[] =
    "SELECT id FROM transfers WHERE status = 'pending' AND expires_at IS NOT NULL"
    " AND expires_at <= $1"
    " AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.hold_transfer_id = transfers.id)"
    " ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED";

struct expire_args {
    int batch_max;
    int n;
    char (*ids)[RF_ID_BYTES];
};

static void read_expired(struct rf_tx *tx, struct store_rows *r, void *ctx) {
    struct expire_args *a = ctx;
    rf_strcpy(a->ids[a->n++], RF_ID_BYTES, store_text(tx, r, 0));
}

static rf_err op_expire(struct rf_tx *tx, void *ctx) {
    struct expire_args *a = ctx;
    a->n = 0;
    store_val p[2] = {SV_I(tx->now_ms), SV_I(a->batch_max)};
    rf_err err = store_query_each(tx, SQL_EXPIRED, p, 2, a->batch_max, read_expired, a);
    for (int i = 0; !err && i < a->n; i++) {
        struct rf_transfer_res res = {0};
        err = ledger_resolve(tx, a->ids[i], NULL, false, 0, &res);
        rf_transfer_clear(&res.transfer);
    }
    return err;
}

rf_err rf_transfer_expire(rf *db, int batch_max, int *voided_out) {
    if (!db) return RF_ERR_INVALID;
    if (batch_max <= 0 || batch_max > RF_EXPIRE_BATCH_MAX) batch_max = RF_EXPIRE_BATCH_MAX;
    struct expire_args a = {batch_max, 0, calloc((size_t)batch_max, RF_ID_BYTES)};
    if (!a.ids) return RF_ERR_NOMEM;
    rf_err err = core_write(db, "transfer_expire", 0, op_expire, &a);
    if (!err && voided_out) *voided_out = a.n;
    free(a.ids);
    return err;
}

/* ---- credit application (seed 003) ------------------------------------- */

/* {"reason":"..."} as json_dumps writes it compact with sorted keys (one
 * key), into a fixed buffer: no json_t built and dumped per credit. */
#define REASON_META_OPEN "{\"reason\":"
/* An escaped character takes 6 bytes at most (a 4-byte UTF-8 one stays 4);
 * rf_json_quote wants room for its longest escape, quote and NUL left. */
#define REASON_META_BYTES (sizeof REASON_META_OPEN + 6 * RF_REASON_CHARS_MAX + 8 + 1)

static void reason_metadata(const char *reason, char out[REASON_META_BYTES]) {
    size_t open = sizeof REASON_META_OPEN - 1;
    memcpy(out, REASON_META_OPEN, open);
    /* The table has checked reason: UTF-8 of at most RF_REASON_CHARS_MAX
     * characters: it fits. */
    size_t n = rf_json_quote(reason, out + open, REASON_META_BYTES - open - 1);
    RF_ASSERT(n > 0);
    memcpy(out + open + n, "}", 2);
}

/* A transfer from funding:<CUR> of the account's currency; the table has
 * refused a reserved (system) account. */
rf_err op_credit_apply(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_credit_req *r = req;
    RF_ASSERT(r->amount_minor > 0 && !rf_account_id_reserved(r->id));
    char currency[RF_CURRENCY_BYTES], funding[RF_ID_BYTES];
    rf_err err = ledger_account_currency(tx, r->id, currency); /* immutable */
    if (err) return err;
    ledger_system_id(LEDGER_NS_FUNDING, currency, funding);
    char meta[REASON_META_BYTES];
    if (r->reason) reason_metadata(r->reason, meta);
    struct rf_transfer_req t = {.debit_account = funding, .credit_account = r->id,
                                .amount_minor = r->amount_minor, .currency = currency,
                                .metadata_json = r->reason ? meta : NULL};
    return transfer_apply(tx, &t, true, res);
}

/* ---- transfers and credits: the public functions, over rf_op_run ---------- */

/* A duplicate reference names the transfer that has it (the fault's extra,
 * back into the result for C callers). */
rf_err rf_transfer_create(rf *db, const struct rf_transfer_req *req, struct rf_transfer_res *res,
                          struct rf_idem *idem) {
    struct rf_fault fault;
    rf_err err = rf_op_run(db, RF_OP_TRANSFER_CREATE, req, res, idem, &fault);
    if (err == RF_ERR_DUPLICATE_REFERENCE && fault.extra[0].name)
        rf_strcpy(res->existing_id, sizeof res->existing_id, fault.extra[0].value);
    return err;
}

rf_err rf_transfer_get(rf *db, const char *id, struct rf_transfer *out) {
    return rf_op_run(db, RF_OP_TRANSFER_GET, &(struct rf_transfer_ref){id, 0}, out, NULL, NULL);
}

rf_err rf_transfer_post(rf *db, const char *id, int64_t amount, struct rf_transfer_res *res,
                        struct rf_idem *idem) {
    return rf_op_run(db, RF_OP_TRANSFER_POST, &(struct rf_transfer_ref){id, amount}, res, idem,
                     NULL);
}

rf_err rf_transfer_void(rf *db, const char *id, struct rf_transfer_res *res,
                        struct rf_idem *idem) {
    return rf_op_run(db, RF_OP_TRANSFER_VOID, &(struct rf_transfer_ref){id, 0}, res, idem, NULL);
}

rf_err rf_credit_apply(rf *db, const char *account_id, int64_t amount, const char *reason,
                       struct rf_transfer_res *res, struct rf_idem *idem) {
    return rf_op_run(db, RF_OP_CREDIT_APPLY, &(struct rf_credit_req){account_id, amount, reason},
                     res, idem, NULL);
}

/* ---- history ------------------------------------------------------------ */

/* An account's entries are already in commit order: seq is the account's
 * version, taken under the account's row lock, so a smaller seq commits
 * first. The cursor is the seq alone (core/listing.h). */
static const char SQL_ENTRIES[] =
    "SELECT seq, transfer_id, side, amount_minor, balance_after, created_at FROM entries"
    " WHERE account_id = $2 AND seq > $1 ORDER BY seq LIMIT $3";

static void read_entry(struct rf_tx *tx, struct store_rows *r, void *item) {
    struct rf_entry *e = item;
    e->seq = store_int(tx, r, 0);
    rf_strcpy(e->transfer_id, sizeof e->transfer_id, store_text(tx, r, 1));
    e->side = column_enum(entry_sides, store_text(tx, r, 2));
    e->amount_minor = store_int(tx, r, 3);
    e->balance_after = store_int(tx, r, 4);
    e->created_at_ms = store_int(tx, r, 5);
}

/* In today's order: a cursor that is not an id, then an unknown account,
 * then a cursor that is no seq (list_page_run resolves it). */
rf_err op_account_entries(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_list_req *r = req;
    struct rf_entry_page *out = res;
    struct list_page lp = {.pos_col = 0, .key_col = -1, .read_row = read_entry,
                           LIST_INTO(out, core_limit((int)r->limit))};
    rf_err err = list_cursor_parse(r->after, &lp.after);
    char currency[RF_CURRENCY_BYTES];
    if (!err) err = ledger_account_currency(tx, r->scope, currency);
    if (!err) {
        store_val p[3] = {SV_I(lp.after.pos), SV_S(r->scope), SV_I(lp.limit)};
        err = list_page_run(tx, SQL_ENTRIES, p, 3, &lp);
    }
    out->n = lp.n; /* also on failure: what the page holds */
    return err;
}

rf_err rf_account_entries(rf *db, const char *account_id, const char *after, int limit,
                          struct rf_entry_page *out) {
    struct rf_list_req req = {account_id, 0, after, limit};
    return rf_op_run(db, RF_OP_ACCOUNT_ENTRIES, &req, out, NULL, NULL);
}

/* ---- lists of accounts and transfers --------------------------------------- */

/* Commit order (core/listing.h; list_pos: migration 008), list_pos the
 * column after the entity's. Transfers are read through transfers_listed,
 * whose list_pos is the rowid on SQLite (no trigger on the hot insert). A filter whose parameter is '' (or a time
 * bound of 0 / INT64_MAX) lets every row through. */
static const char SQL_ACCOUNT_LIST[] =
    "SELECT " ACCOUNT_COLS ", list_pos FROM accounts WHERE " LIST_AFTER("id")
    " AND ($4 = '' OR currency = $4) AND ($5 = '' OR kind = $5)" LIST_ORDER("id") " LIMIT $6";
static const char SQL_ACCOUNT_POS[] = "SELECT list_pos FROM accounts WHERE id = $1";
static const char SQL_TRANSFER_LIST[] =
    "SELECT " TRANSFER_COLS ", list_pos FROM transfers_listed WHERE " LIST_AFTER("id")
    " AND ($4 = '' OR debit_account = $4 OR credit_account = $4) AND ($5 = '' OR currency = $5)"
    " AND ($6 = '' OR status = $6) AND created_at >= $7 AND created_at < $8"
    LIST_ORDER("id") " LIMIT $9";
static const char SQL_TRANSFER_POS[] = "SELECT list_pos FROM transfers_listed WHERE id = $1";

static void clear_account(void *a) { rf_account_clear(a); }
static void clear_transfer(void *t) { rf_transfer_clear(t); }

void rf_account_page_clear(struct rf_account_page *p) {
    if (!p) return;
    page_clear(p->items, p->n, sizeof *p->items, clear_account);
    memset(p, 0, sizeof *p);
}

void rf_transfer_page_clear(struct rf_transfer_page *p) {
    if (!p) return;
    page_clear(p->items, p->n, sizeof *p->items, clear_transfer);
    memset(p, 0, sizeof *p);
}

static const char *any_if_null(const char *s) { return s ? s : ""; }

/* A filter other than all lists the value one before it in its enum's
 * names (all is 0): the kind or status column's text, "" for all. */
_Static_assert(RF_ACCOUNTS_USER - 1 == RF_ACCOUNT_USER &&
                   RF_ACCOUNTS_SYSTEM - 1 == RF_ACCOUNT_SYSTEM,
               "enum rf_account_filter follows enum rf_account_kind");
_Static_assert(RF_TRANSFERS_POSTED - 1 == RF_TRANSFER_POSTED &&
                   RF_TRANSFERS_PENDING - 1 == RF_TRANSFER_PENDING &&
                   RF_TRANSFERS_VOIDED - 1 == RF_TRANSFER_VOIDED,
               "enum rf_transfer_filter follows enum rf_transfer_status");
static const char *filter_name(const char *const names[], int64_t filter) {
    return filter == 0 ? "" : names[filter - 1];
}

rf_err op_account_list(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_account_list_req *r = req;
    struct rf_account_page *out = res;
    RF_ASSERT(r->list.status >= RF_ACCOUNTS_ALL && r->list.status <= RF_ACCOUNTS_SYSTEM);
    struct list_page lp = {.pos_col = 11, .key_col = 0, .pos_sql = SQL_ACCOUNT_POS,
                           .read_row = read_account, .clear_item = clear_account,
                           LIST_INTO(out, core_limit((int)r->list.limit))};
    rf_err err = list_cursor_parse(r->list.after, &lp.after);
    if (err) return err;
    store_val p[6] = {SV_I(lp.after.pos), SV_S(lp.after.key), LIST_HORIZON_SLOT,
                      SV_S(any_if_null(r->currency)),
                      SV_S(filter_name(ledger_account_kinds, r->list.status)), SV_I(lp.limit)};
    err = list_page_run(tx, SQL_ACCOUNT_LIST, p, 6, &lp);
    out->n = lp.n;
    return err;
}

rf_err op_transfer_list(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_transfer_list_req *r = req;
    struct rf_transfer_page *out = res;
    RF_ASSERT(r->list.status >= RF_TRANSFERS_ALL && r->list.status <= RF_TRANSFERS_VOIDED);
    struct list_page lp = {.pos_col = 14, .key_col = 0, .pos_sql = SQL_TRANSFER_POS,
                           .read_row = read_transfer, .clear_item = clear_transfer,
                           LIST_INTO(out, core_limit((int)r->list.limit))};
    rf_err err = list_cursor_parse(r->list.after, &lp.after);
    if (err) return err;
    int64_t before = r->created_before_ms ? r->created_before_ms : INT64_MAX;
    store_val p[9] = {SV_I(lp.after.pos), SV_S(lp.after.key), LIST_HORIZON_SLOT,
                      SV_S(any_if_null(r->account)), SV_S(any_if_null(r->currency)),
                      SV_S(filter_name(ledger_transfer_statuses, r->list.status)),
                      SV_I(r->created_after_ms), SV_I(before), SV_I(lp.limit)};
    err = list_page_run(tx, SQL_TRANSFER_LIST, p, 9, &lp);
    out->n = lp.n;
    return err;
}

rf_err rf_account_list(rf *db, const struct rf_account_list_req *req,
                       struct rf_account_page *out) {
    return rf_op_run(db, RF_OP_ACCOUNT_LIST, req, out, NULL, NULL);
}

rf_err rf_transfer_list(rf *db, const struct rf_transfer_list_req *req,
                        struct rf_transfer_page *out) {
    return rf_op_run(db, RF_OP_TRANSFER_LIST, req, out, NULL, NULL);
}

/* ---- invariants ----------------------------------------------------------- */

/* Summed in C with 128 bits: a partial sum of int64 balances can leave int64
 * (SQLite's SUM() then fails) even when the currency's total is zero. */
static const char SQL_CHECK_BALANCES[] = "SELECT currency, posted FROM accounts ORDER BY currency";
/* Per account: posted against the sum of its entries, and its pending totals
 * against its pending transfers (its open holds), counted apart. */
static const char SQL_CHECK_ACCOUNTS[] =
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN entries_off + holds_off > 0 THEN 1 ELSE 0 END), 0),"
    " COALESCE(SUM(entries_off), 0), COALESCE(SUM(holds_off), 0) FROM (SELECT"
    " CASE WHEN a.posted <> COALESCE((SELECT SUM(CASE WHEN e.side = 'credit'"
    " THEN e.amount_minor ELSE -e.amount_minor END) FROM entries e"
    " WHERE e.account_id = a.id), 0) THEN 1 ELSE 0 END AS entries_off,"
    " CASE WHEN a.pending_debits <> COALESCE((SELECT SUM(t.amount_minor) FROM transfers t"
    " WHERE t.debit_account = a.id AND t.status = 'pending'), 0)"
    " OR a.pending_credits <> COALESCE((SELECT SUM(t.amount_minor) FROM transfers t"
    " WHERE t.credit_account = a.id AND t.status = 'pending'), 0)"
    " THEN 1 ELSE 0 END AS holds_off FROM accounts a) per_account";

/* Every payout against its hold, in one statement (one snapshot; a payout
 * and its hold change in one transaction): pending <-> pending, paid <->
 * posted in full, failed <-> voided, with the payout's amount, account and
 * currency, from the account to payouts:<CUR>. */
static const char SQL_CHECK_PAYOUTS[] =
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN t.id IS NULL OR t.amount_minor <> p.amount_minor"
    " OR t.currency <> p.currency OR t.debit_account <> p.account_id"
    " OR t.credit_account <> '" LEDGER_NS_PAYOUTS ":' || p.currency OR t.was_pending <> 1"
    " OR NOT ((p.status = 'pending' AND t.status = 'pending')"
    " OR (p.status = 'paid' AND t.status = 'posted' AND t.posted_amount = p.amount_minor)"
    " OR (p.status = 'failed' AND t.status = 'voided'))"
    " THEN 1 ELSE 0 END), 0) FROM payouts p LEFT JOIN transfers t ON t.id = p.hold_transfer_id";
/* payouts:<CUR> is moved by payout holds only. */
static const char SQL_CHECK_CLEARING[] =
    "SELECT COUNT(*) FROM transfers t WHERE (substr(t.debit_account, 1, $1) = $2"
    " OR substr(t.credit_account, 1, $1) = $2)"
    " AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.hold_transfer_id = t.id)";

/* Rows whose reference names no row. The schema declares each reference
 * (REFERENCES); PostgreSQL enforces them, SQLite's writer does not (its
 * foreign key probes cost every transfer and entry insert, and the flows
 * write a referenced row first: the moves find both accounts, the transfer
 * precedes its entries, the hold its payout), so this is where a dangling
 * one shows on SQLite. */
static const char SQL_CHECK_REFERENCES[] =
    "SELECT (SELECT COUNT(*) FROM entries e"
    " WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = e.account_id)"
    " OR NOT EXISTS (SELECT 1 FROM transfers t WHERE t.id = e.transfer_id))"
    " + (SELECT COUNT(*) FROM transfers t"
    " WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = t.debit_account)"
    " OR NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = t.credit_account))"
    " + (SELECT COUNT(*) FROM payouts p"
    " WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = p.account_id)"
    " OR NOT EXISTS (SELECT 1 FROM transfers t WHERE t.id = p.hold_transfer_id))"
    " + (SELECT COUNT(*) FROM payout_attempts x"
    " WHERE NOT EXISTS (SELECT 1 FROM payouts p WHERE p.id = x.payout_id))";

/* The first n columns of a row of counts. */
struct counts {
    int n;
    int64_t v[4];
};

static void read_counts(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct counts *c = out;
    RF_ASSERT(c->n > 0 && c->n <= (int)(sizeof c->v / sizeof c->v[0]));
    for (int i = 0; i < c->n; i++) c->v[i] = store_int(tx, r, i);
}

/* One check's output and whom to tell how far it got. */
struct check_run {
    struct rf_ledger_check *check;
    ledger_progress_fn fn; /* may be NULL */
    void *ctx;
};

#define CHECK_STEPS 7

static void check_step(const struct check_run *run, int step, const char *what, int64_t rows) {
    RF_ASSERT(step >= 1 && step <= CHECK_STEPS);
    if (run->fn) run->fn(run->ctx, step, CHECK_STEPS, what, rows);
}

struct currency_sum {
    char currency[RF_CURRENCY_BYTES];
    __int128 total;
    struct rf_ledger_check *check;
    const struct check_run *run;
    int64_t rows;
};

static void end_currency(struct currency_sum *s) {
    if (!s->currency[0]) return;
    s->check->currencies++;
    s->check->currencies_unbalanced += s->total != 0;
}

static void sum_balance(struct rf_tx *tx, struct store_rows *r, void *ctx) {
    struct currency_sum *s = ctx;
    const char *currency = store_text(tx, r, 0);
    if (strcmp(currency, s->currency) != 0) {
        end_currency(s);
        rf_strcpy(s->currency, sizeof s->currency, currency);
        s->total = 0;
    }
    s->total += store_int(tx, r, 1);
    if (++s->rows % RF_CHECK_PROGRESS_ROWS == 0) check_step(s->run, 1, "balances", s->rows);
}

/* Every invariant in one read transaction. On PostgreSQL a read runs at READ
 * COMMITTED, where each statement sees its own snapshot; REPEATABLE READ makes
 * the statements below one snapshot, so an operation committing between them
 * cannot look like a violation (on SQLite a read transaction already is one). */
static rf_err check_snapshot(struct rf_tx *tx) {
    if (tx->ops->backend != STORE_POSTGRES) return RF_OK;
    return store_exec(tx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", NULL, 0, NULL);
}

static rf_err op_check(struct rf_tx *tx, void *ctx) {
    const struct check_run *run = ctx;
    struct rf_ledger_check *c = run->check;
    memset(c, 0, sizeof *c);
    struct currency_sum sum = {.check = c, .run = run};
    struct counts acc = {.n = 4}, pay = {.n = 2}, clearing = {.n = 1}, refs = {.n = 1};
    rf_err err = check_snapshot(tx);
    check_step(run, 1, "balances", 0);
    if (!err)
        err = store_query_each(tx, SQL_CHECK_BALANCES, NULL, 0, INT32_MAX, sum_balance, &sum);
    end_currency(&sum);
    check_step(run, 2, "accounts against their entries and holds", 0);
    if (!err) err = store_query_one(tx, SQL_CHECK_ACCOUNTS, NULL, 0, read_counts, &acc);
    check_step(run, 3, "payouts against their holds", 0);
    if (!err) err = store_query_one(tx, SQL_CHECK_PAYOUTS, NULL, 0, read_counts, &pay);
    store_val ns[2] = {SV_I(strlen(LEDGER_NS_PAYOUTS ":")), SV_S(LEDGER_NS_PAYOUTS ":")};
    check_step(run, 4, "payout clearing transfers", 0);
    if (!err) err = store_query_one(tx, SQL_CHECK_CLEARING, ns, 2, read_counts, &clearing);
    check_step(run, 5, "references between rows", 0);
    if (!err) err = store_query_one(tx, SQL_CHECK_REFERENCES, NULL, 0, read_counts, &refs);
    check_step(run, 6, "approved approvals", 0);
    if (!err) err = approvals_check(tx, &c->approvals, &c->approvals_unexecuted);
    check_step(run, 7, "checkouts against their grants and credits", 0);
    if (!err) err = checkouts_check(tx, &c->checkouts, &c->checkouts_mismatched);
    c->accounts = acc.v[0];
    c->accounts_mismatched = acc.v[1];
    c->accounts_entries_mismatched = acc.v[2];
    c->accounts_holds_mismatched = acc.v[3];
    c->payouts = pay.v[0];
    c->payouts_mismatched = pay.v[1];
    c->clearing_unowned = clearing.v[0];
    c->rows_dangling = refs.v[0];
    c->clean = c->currencies_unbalanced == 0 && c->accounts_mismatched == 0 &&
               c->payouts_mismatched == 0 && c->clearing_unowned == 0 &&
               c->approvals_unexecuted == 0 && c->checkouts_mismatched == 0 &&
               c->rows_dangling == 0;
    return err;
}

rf_err ledger_check_progress(rf *db, struct rf_ledger_check *out, ledger_progress_fn fn,
                             void *ctx) {
    if (!db || !out) return RF_ERR_INVALID;
    memset(out, 0, sizeof *out);
    struct check_run run = {out, fn, ctx};
    return core_read(db, "ledger_check", op_check, &run);
}

rf_err rf_ledger_check(rf *db, struct rf_ledger_check *out) {
    return ledger_check_progress(db, out, NULL, NULL);
}
