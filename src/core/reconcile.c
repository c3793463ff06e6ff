/*
 * reconcile.c - rf_reconcile: every invariant the flows promise, checked in
 * one read snapshot, each violation reported with the rows involved.
 *
 * Why it looks like this:
 *   - one snapshot: on PostgreSQL the read runs REPEATABLE READ READ ONLY
 *     (at READ COMMITTED each statement would see its own snapshot, and an
 *     operation committing between two checks would look like drift); on
 *     SQLite a read transaction on a reader connection is one WAL snapshot.
 *     Neither takes a lock a writer waits for.
 *   - bounded memory on any store: every check aggregates in the database
 *     and returns one row (the count of violating rows) and, only when
 *     there are some, at most RF_RECONCILE_EXAMPLES_MAX more (ORDER BY ..
 *     LIMIT keeps only those). The PostgreSQL driver reads a whole result
 *     into memory, so no statement here returns a row per account or per
 *     entry; the per-currency sum is made exact in SQL (SQL_CURRENCIES)
 *     instead of in C. On SQLite sorts go to a temporary file (snapshot).
 *   - the checks are a table (CHECKS): a name users grep for, the invariant
 *     in one sentence, what the two cells of an example row are, and the
 *     statement selecting the violating rows as (a, b).
 * The duplicate-key check re-reads what the UNIQUE constraints promise:
 * impossible on a healthy PostgreSQL store, it matters for a SQLite file
 * restored from a backup or a store whose index was dropped.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/limits.h"
#include "core/core.h"
#include "core/reconcile.h"

_Static_assert(sizeof(((struct rf_reconcile_check *)0)->cells) /
                       sizeof(((struct rf_reconcile_check *)0)->cells[0]) ==
                   RF_RECONCILE_EXAMPLES_MAX,
               "struct rf_reconcile_check holds RF_RECONCILE_EXAMPLES_MAX examples");

/* A check is q, VIOLATING(q) its violating rows as (a, b): counted first, and only when
 * there are some, read again for the first ones (ORDER BY with a LIMIT
 * keeps only that many rows on both back ends; a window count would buffer
 * every violating row). */
#define VIOLATING(q) q
static const char SQL_COUNT_PRE[] = "SELECT COUNT(*) FROM (";
static const char SQL_COUNT_POST[] = ") v";
static const char SQL_FIRST_PRE[] = "SELECT a, b FROM (";
static const char SQL_FIRST_POST[] = ") v ORDER BY a, b LIMIT " RF_STR(RF_RECONCILE_EXAMPLES_MAX);

/* Per currency, posted balances sum to zero. SUM over int64 fails on SQLite
 * when a partial sum leaves int64 (even if the total is zero), so each
 * balance is split at 2^32 and the halves summed apart: neither sum can
 * overflow below 2^31 accounts, and the total is zero exactly when both
 * tests below are (integer division and % truncate toward zero on both
 * back ends). */
#define HALF "4294967296"
static const char SQL_CURRENCIES[] = VIOLATING(
    "SELECT currency AS a, '' AS b FROM accounts GROUP BY currency"
    " HAVING SUM(posted / " HALF ") + SUM(posted % " HALF ") / " HALF " <> 0"
    " OR SUM(posted % " HALF ") % " HALF " <> 0");

static const char SQL_ACCOUNT_ENTRIES[] = VIOLATING(
    "SELECT a.id AS a, '' AS b FROM accounts a WHERE a.posted <> COALESCE((SELECT"
    " SUM(CASE WHEN e.side = 'credit' THEN e.amount_minor ELSE -e.amount_minor END)"
    " FROM entries e WHERE e.account_id = a.id), 0)");

static const char SQL_ACCOUNT_HOLDS[] = VIOLATING(
    "SELECT a.id AS a, '' AS b FROM accounts a WHERE a.pending_debits <> COALESCE((SELECT"
    " SUM(t.amount_minor) FROM transfers t WHERE t.debit_account = a.id"
    " AND t.status = 'pending'), 0) OR a.pending_credits <> COALESCE((SELECT"
    " SUM(t.amount_minor) FROM transfers t WHERE t.credit_account = a.id"
    " AND t.status = 'pending'), 0)");

/* pending <-> pending, paid <-> posted in full, failed <-> voided, with the
 * payout's amount, account and currency, from the account to payouts:<CUR>. */
static const char SQL_PAYOUT_HOLDS[] = VIOLATING(
    "SELECT p.id AS a, p.hold_transfer_id AS b FROM payouts p"
    " LEFT JOIN transfers t ON t.id = p.hold_transfer_id WHERE t.id IS NULL"
    " OR t.amount_minor <> p.amount_minor OR t.currency <> p.currency"
    " OR t.debit_account <> p.account_id OR t.credit_account <> 'payouts:' || p.currency"
    " OR t.was_pending <> 1 OR NOT ((p.status = 'pending' AND t.status = 'pending')"
    " OR (p.status = 'paid' AND t.status = 'posted' AND t.posted_amount = p.amount_minor)"
    " OR (p.status = 'failed' AND t.status = 'voided'))");

static const char SQL_PAYOUT_CLEARING[] = VIOLATING(
    "SELECT t.id AS a, '' AS b FROM transfers t WHERE (substr(t.debit_account, 1, 8) ="
    " 'payouts:' OR substr(t.credit_account, 1, 8) = 'payouts:')"
    " AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.hold_transfer_id = t.id)");

/* A batch locks the wallet's row, looks for a pending payout and skips the
 * wallet if it has one: it never puts a second payout in flight. So two
 * pending payouts of one wallet that batches made are drift (the later
 * batch saw the earlier one's under the same row lock, and a payout leaves
 * pending only once). A batch's payout beside a pending POST /v1/payouts
 * one is not: that endpoint allows several, and the snapshot holds no order
 * telling which came first (created_at is read before the row lock). */
static const char SQL_PAYOUT_BATCH_IN_FLIGHT[] = VIOLATING(
    "SELECT p.account_id AS a, p.id AS b FROM payouts p"
    " JOIN payout_batch_items i ON i.payout_id = p.id WHERE p.status = 'pending'"
    " AND EXISTS (SELECT 1 FROM payouts q JOIN payout_batch_items j ON j.payout_id = q.id"
    " WHERE q.account_id = p.account_id AND q.status = 'pending' AND q.id <> p.id)");

/* The effect an approved approval's result names (approvals.c: transfer_id,
 * entitlement_id or payout_id by action type), read from its JSON. */
#define EFFECT_OF(j)                                                               \
    "CASE action_type WHEN 'transfer' THEN " j("transfer_id")                     \
    " WHEN 'entitlement_grant' THEN " j("entitlement_id") " ELSE " j("payout_id") " END"
#define J_SQLITE(k) "json_extract(result, '$." k "')"
#define J_PG(k) "(result::json ->> '" k "')"
/* An approved approval whose effect is not in the store (never ran) or is
 * named by another approved approval (ran once for two: each execution of a
 * transfer or a payout makes a new row; an entitlement grant is an upsert,
 * so two grants of one entitlement legitimately name it); and an approval
 * not approved that carries an execution (the schema's CHECKs refuse it:
 * checked for a store whose constraints were lost). */
#define SQL_APPROVALS(j)                                                            \
    VIOLATING("SELECT x.id AS a, COALESCE(x.eff, '') AS b FROM (SELECT id, action_type, " \
             EFFECT_OF(j) " AS eff FROM approvals WHERE status = 'approved') x"      \
             " WHERE x.eff IS NULL"                                                  \
             " OR (x.action_type = 'transfer' AND NOT EXISTS (SELECT 1 FROM transfers t" \
             " WHERE t.id = x.eff))"                                                 \
             " OR (x.action_type = 'entitlement_grant' AND NOT EXISTS (SELECT 1"     \
             " FROM entitlements e WHERE e.id = x.eff))"                             \
             " OR (x.action_type = 'payout' AND NOT EXISTS (SELECT 1 FROM payouts p" \
             " WHERE p.id = x.eff))"                                                 \
             " OR (x.action_type <> 'entitlement_grant' AND x.eff IN (SELECT "       \
             EFFECT_OF(j) " FROM approvals WHERE status = 'approved'"                \
             " AND action_type <> 'entitlement_grant' GROUP BY 1 HAVING COUNT(*) > 1))" \
             " UNION ALL SELECT id AS a, '' AS b FROM approvals WHERE status <> 'approved'" \
             " AND (executed_at IS NOT NULL OR result IS NOT NULL OR approved_at IS NOT NULL)")
static const char SQL_APPROVALS_SQLITE[] = SQL_APPROVALS(J_SQLITE);
static const char SQL_APPROVALS_PG[] = SQL_APPROVALS(J_PG);

/* A fulfilled (or refunded) checkout has exactly its items' grants and
 * credits (a refunded one also its reversals, less the shortfall), a
 * checkout not done has none, and no grant or credit names a checkout
 * without its item. A paid checkout is fulfilled in the same transaction,
 * so paid is never seen committed. */
#define ITEM_OF "FROM checkout_items i JOIN checkouts c ON c.id = i.checkout_id"
#define DONE "c.status IN ('fulfilled','refunded')"
#define IDX "CAST(i.idx AS TEXT)"
static const char SQL_CHECKOUTS[] = VIOLATING(
    "SELECT id AS a, 'paid' AS b FROM checkouts WHERE status = 'paid'"
    " UNION ALL SELECT c.id, " IDX " " ITEM_OF " WHERE i.type = 'credit' AND " DONE
    " AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.id = i.transfer_id"
    " AND t.reference = 'checkout:' || c.id || ':' || " IDX
    " AND t.debit_account = 'funding:' || c.currency AND t.credit_account = i.account_id"
    " AND t.amount_minor = i.amount_minor AND t.status = 'posted')"
    " UNION ALL SELECT c.id, " IDX " " ITEM_OF " WHERE i.type = 'credit'"
    " AND c.status = 'refunded' AND NOT ((i.shortfall = i.amount_minor"
    " AND i.reversal_id IS NULL) OR EXISTS (SELECT 1 FROM transfers t WHERE t.id = i.reversal_id"
    " AND t.reference = 'checkout:' || c.id || ':' || " IDX " || ':refund'"
    " AND t.debit_account = i.account_id AND t.credit_account = 'funding:' || c.currency"
    " AND t.amount_minor = i.amount_minor - i.shortfall AND t.status = 'posted'))"
    " UNION ALL SELECT c.id, " IDX " " ITEM_OF " WHERE (NOT " DONE
    " AND (i.transfer_id IS NOT NULL OR i.entitlement_id IS NOT NULL))"
    " OR (c.status <> 'refunded' AND (i.reversal_id IS NOT NULL OR i.shortfall <> 0))"
    " UNION ALL SELECT c.id, " IDX " " ITEM_OF " WHERE i.type = 'entitlement' AND " DONE
    " AND NOT EXISTS (SELECT 1 FROM entitlements e WHERE e.id = i.entitlement_id"
    " AND e.user_id = c.user_id AND e.entitlement_key = i.entitlement_key)"
    " UNION ALL SELECT '', t.id FROM transfers t WHERE t.reference LIKE 'checkout:%'"
    " AND NOT EXISTS (SELECT 1 FROM checkout_items i WHERE i.transfer_id = t.id)"
    " AND NOT EXISTS (SELECT 1 FROM checkout_items i WHERE i.reversal_id = t.id)"
    " UNION ALL SELECT '', e.id FROM entitlements e WHERE e.source LIKE 'checkout:%'"
    " AND NOT EXISTS (SELECT 1 FROM checkout_items i WHERE i.entitlement_id = e.id)"
    " UNION ALL SELECT c.id, 'refund_shortfall' FROM checkouts c WHERE c.refund_shortfall <>"
    " (SELECT COALESCE(SUM(i.shortfall), 0) FROM checkout_items i WHERE i.checkout_id = c.id)");

/* A processed event applied its effect to its checkout, and no other event
 * applied the same effect to it: paid leaves the checkout fulfilled (or
 * refunded later), expired expired, refunded refunded; a second event of
 * one effect finds the transition done and is recorded ignored. */
static const char SQL_WEBHOOKS[] = VIOLATING(
    "SELECT w.id AS a, COALESCE(w.checkout_id, '') AS b FROM webhook_events w"
    " LEFT JOIN checkouts c ON c.id = w.checkout_id WHERE w.status = 'processed'"
    " AND (c.id IS NULL OR w.effect IS NULL"
    " OR (w.effect = 'paid' AND c.status NOT IN ('fulfilled','refunded'))"
    " OR (w.effect = 'expired' AND c.status <> 'expired')"
    " OR (w.effect = 'refunded' AND c.status <> 'refunded')"
    " OR w.checkout_id || '/' || w.effect IN (SELECT checkout_id || '/' || effect"
    " FROM webhook_events WHERE status = 'processed' AND checkout_id IS NOT NULL"
    " AND effect IS NOT NULL GROUP BY checkout_id, effect HAVING COUNT(*) > 1))");

/* An announcement's counts are its recipients' states: each delivered
 * recipient has exactly its one notification (same user, same
 * announcement), each notification of an announcement is a delivered
 * recipient's, and an announcement to listed user ids whose fan-out is done
 * has one recipient per distinct id. */
static const char SQL_ANNOUNCEMENTS[] = VIOLATING(
    "SELECT r.announcement_id AS a, r.user_id AS b FROM announcement_recipients r"
    " WHERE r.status = 'delivered' AND NOT EXISTS (SELECT 1 FROM notifications n"
    " WHERE n.id = r.notification_id AND n.announcement_id = r.announcement_id"
    " AND n.user_id = r.user_id)"
    " UNION ALL SELECT n.announcement_id, n.user_id FROM notifications n"
    " WHERE n.announcement_id IS NOT NULL AND NOT EXISTS (SELECT 1"
    " FROM announcement_recipients r WHERE r.announcement_id = n.announcement_id"
    " AND r.user_id = n.user_id AND r.status = 'delivered' AND r.notification_id = n.id)"
    " UNION ALL SELECT a.id, '' FROM announcements a WHERE a.audience_kind = 'user_ids'"
    " AND a.fanout_done_at IS NOT NULL AND a.audience_size <> (SELECT COUNT(*)"
    " FROM announcement_recipients r WHERE r.announcement_id = a.id)");

/* read_at is set and cleared with updated_at in one UPDATE, so a read
 * notification's read_at is never after its updated_at, and never 0. */
static const char SQL_NOTIFICATIONS[] = VIOLATING(
    "SELECT id AS a, user_id AS b FROM notifications WHERE read_at IS NOT NULL"
    " AND (read_at > updated_at OR read_at <= 0)");

/* One live (available or running) job per (queue, unique_key). */
static const char SQL_JOBS[] = VIOLATING(
    "SELECT queue AS a, unique_key AS b FROM jobs WHERE unique_key IS NOT NULL"
    " AND status IN ('available','running') GROUP BY queue, unique_key HAVING COUNT(*) > 1");

/* Every natural key the schema declares unique, read back. */
#define DUP(t, k, g) " SELECT '" t "' AS a, " k " AS b FROM " t " GROUP BY " g " HAVING COUNT(*) > 1"
#define DUP1(t, c) DUP(t, c, c)
#define DUP1N(t, c) " SELECT '" t "' AS a, " c " AS b FROM " t " WHERE " c " IS NOT NULL" \
    " GROUP BY " c " HAVING COUNT(*) > 1"
/* Grouped by the key's own columns (its index's order: no sort on SQLite). */
#define DUP2(t, c, d) DUP(t, c " || '/' || CAST(" d " AS TEXT)", c ", " d)
#define U " UNION ALL"
static const char SQL_DUPLICATES[] = VIOLATING(
    DUP1("api_keys", "id") U DUP2("idempotency_keys", "key_id", "idem_key")
    U DUP1("entitlements", "id") U DUP2("entitlements", "user_id", "entitlement_key")
    U DUP1("accounts", "id") U DUP1("transfers", "id") U DUP1N("transfers", "reference")
    U DUP2("entries", "account_id", "seq") U DUP1("payouts", "id")
    U DUP1("payouts", "hold_transfer_id") U DUP1("payouts", "provider_idempotency_key")
    U DUP1N("payouts", "provider_payout_id")
    U DUP2("payout_attempts", "payout_id", "seq")
    U DUP2("customer_bindings", "provider", "user_id")
    U DUP2("customer_bindings", "provider", "customer_id") U DUP1("approvals", "id")
    U DUP1("checkouts", "id")
    U " SELECT 'checkouts', provider || '/' || provider_ref FROM checkouts"
      " WHERE provider_ref IS NOT NULL GROUP BY provider, provider_ref HAVING COUNT(*) > 1"
    U DUP2("checkout_items", "checkout_id", "idx")
    U DUP1("webhook_events", "id") U DUP2("webhook_events", "provider", "event_id")
    U DUP1("webhook_secrets", "provider") U DUP1("jobs", "id")
    U DUP1("drop_in_photos", "photo_id")
    U DUP("drop_in_matches", "photo_id || '/' || attendee_id || '/' || face_id",
          "photo_id, attendee_id, face_id")
    U DUP1("leases", "name") U DUP1("payout_batches", "id") U DUP1("payout_batches", "run_key")
    U DUP2("payout_batch_items", "batch_id", "account_id")
    U DUP1("payout_batch_items", "payout_id") U DUP1("notifications", "id")
    U " SELECT 'notifications', user_id || '/' || dedupe_key FROM notifications"
      " WHERE dedupe_key IS NOT NULL GROUP BY user_id, dedupe_key HAVING COUNT(*) > 1"
    U " SELECT 'notifications', announcement_id || '/' || user_id FROM notifications"
      " WHERE announcement_id IS NOT NULL GROUP BY announcement_id, user_id"
      " HAVING COUNT(*) > 1"
    U DUP1("announcements", "id") U DUP2("announcement_recipients", "announcement_id", "user_id")
    U DUP2("rate_limits", "key_id", "route_class")
    U DUP("version_counters", "resource || '/' || scope || '/' || natural_key",
          "resource, scope, natural_key"));

/* A reference that names no row. PostgreSQL enforces the schema's
 * REFERENCES; SQLite's writer does not (its foreign key probes would cost
 * every transfer and entry insert), so this is where a dangling one shows. */
#define DANGLING(t, row, col, target)                                                  \
    " SELECT '" t "' AS a, " row " AS b FROM " t " x WHERE NOT EXISTS (SELECT 1 FROM " \
    target " y WHERE y.id = x." col ")"
static const char SQL_REFERENCES[] = VIOLATING(
    DANGLING("entries", "x.account_id || '/' || CAST(x.seq AS TEXT)", "account_id", "accounts")
    U DANGLING("entries", "x.account_id || '/' || CAST(x.seq AS TEXT)", "transfer_id",
               "transfers")
    U DANGLING("transfers", "x.id", "debit_account", "accounts")
    U DANGLING("transfers", "x.id", "credit_account", "accounts")
    U DANGLING("payouts", "x.id", "account_id", "accounts")
    U DANGLING("payouts", "x.id", "hold_transfer_id", "transfers")
    U DANGLING("payout_attempts", "x.payout_id || '/' || CAST(x.seq AS TEXT)", "payout_id",
               "payouts")
    U DANGLING("checkout_items", "x.checkout_id || '/' || CAST(x.idx AS TEXT)", "checkout_id",
               "checkouts")
    U DANGLING("payout_batch_items", "x.batch_id || '/' || x.account_id", "payout_id", "payouts")
    U DANGLING("announcement_recipients", "x.announcement_id || '/' || x.user_id",
               "announcement_id", "announcements"));

/* THE checks, in the order they run and are reported. */
static const struct check {
    const char *name, *invariant, *col_a, *col_b;
    const char *sql, *sql_pg; /* sql_pg NULL: sql on both back ends */
} CHECKS[] = {
    {"currency_balances", "per currency the posted balances sum to zero", "currency", NULL,
     SQL_CURRENCIES, NULL},
    {"account_entries", "each account's balance equals the sum of its entries", "account", NULL,
     SQL_ACCOUNT_ENTRIES, NULL},
    {"account_holds", "each account's pending totals equal its open holds", "account", NULL,
     SQL_ACCOUNT_HOLDS, NULL},
    {"payout_holds", "each payout's hold matches its status, amount, account and currency",
     "payout", "hold_transfer", SQL_PAYOUT_HOLDS, NULL},
    {"payout_clearing", "only payout holds move a payouts:<CUR> account", "transfer", NULL,
     SQL_PAYOUT_CLEARING, NULL},
    {"payout_batch_in_flight", "a payout batch never puts a second payout in flight for a wallet",
     "account", "payout", SQL_PAYOUT_BATCH_IN_FLIGHT, NULL},
    {"approvals_executed",
     "each approved approval's action ran exactly once; no other approval ran", "approval",
     "effect", SQL_APPROVALS_SQLITE, SQL_APPROVALS_PG},
    {"checkout_effects",
     "each fulfilled checkout has exactly its items' grants and credits, others none",
     "checkout", "item", SQL_CHECKOUTS, NULL},
    {"webhook_effects", "each processed webhook event applied its effect once", "event",
     "checkout", SQL_WEBHOOKS, NULL},
    {"announcement_recipients",
     "announcement counts equal their recipients' states, one notification per delivery",
     "announcement", "user", SQL_ANNOUNCEMENTS, NULL},
    {"notification_read_state", "a read notification's read_at is within its updates",
     "notification", "user", SQL_NOTIFICATIONS, NULL},
    {"jobs_unique_live", "at most one live job per (queue, unique_key)", "queue", "unique_key",
     SQL_JOBS, NULL},
    {"duplicate_keys", "no natural key appears twice", "table", "key", SQL_DUPLICATES, NULL},
    {"references", "every reference between rows names a row", "table", "row", SQL_REFERENCES,
     NULL},
};
#define N_CHECKS ((int)(sizeof CHECKS / sizeof CHECKS[0]))

static char *cell_dup(struct rf_tx *tx, struct store_rows *r, int col) {
    const char *s = store_null(tx, r, col) ? "" : store_text(tx, r, col);
    size_t n = strnlen(s, RF_RECONCILE_CELL_CHARS_MAX);
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

/* One of the first violating rows: its two cells. */
static void read_example(struct rf_tx *tx, struct store_rows *r, void *ctx) {
    struct rf_reconcile_check *c = ctx;
    RF_ASSERT(c->n_examples < RF_RECONCILE_EXAMPLES_MAX);
    c->cells[c->n_examples][0] = cell_dup(tx, r, 0);
    c->cells[c->n_examples][1] = c->columns[1] ? cell_dup(tx, r, 1) : NULL;
    c->n_examples++;
}

static void read_total(struct rf_tx *tx, struct store_rows *r, void *ctx) {
    ((struct rf_reconcile_check *)ctx)->violations = store_int(tx, r, 0);
}

/* pre q post, into a malloc'd string (NULL: out of memory). */
static char *wrap(const char *pre, const char *q, const char *post) {
    size_t a = strlen(pre), b = strlen(q), c = strlen(post);
    char *out = malloc(a + b + c + 1);
    if (!out) return NULL;
    memcpy(out, pre, a);
    memcpy(out + a, q, b);
    memcpy(out + a + b, post, c + 1);
    return out;
}

/* The count of q's rows, then (when there are some) the first of them. */
static rf_err run_check(struct rf_tx *tx, const char *q, struct rf_reconcile_check *c) {
    char *count = wrap(SQL_COUNT_PRE, q, SQL_COUNT_POST);
    rf_err err = count ? store_query_one(tx, count, NULL, 0, read_total, c) : RF_ERR_NOMEM;
    free(count);
    if (err || c->violations == 0) return err;
    char *first = wrap(SQL_FIRST_PRE, q, SQL_FIRST_POST);
    err = first ? store_query_each(tx, first, NULL, 0, RF_RECONCILE_EXAMPLES_MAX, read_example, c)
                : RF_ERR_NOMEM;
    free(first);
    return err;
}

struct reconcile_run {
    const struct rf_reconcile_opts *opts;
    struct rf_reconcile *out;
};

/* REPEATABLE READ makes the statements one snapshot; it must be the
 * transaction's first statement. SQLite's read transaction already is one;
 * there a reader keeps its temporary b-trees in memory (temp_store, for the
 * lists' speed), and a GROUP BY no index serves sorts through one, so
 * reconcile moves them to a file while it runs (after_checks puts them
 * back): its memory then stays at the page cache's size on any store. */
static rf_err snapshot(struct rf_tx *tx) {
    if (tx->ops->backend != STORE_POSTGRES) return store_exec(tx, "PRAGMA temp_store=FILE", NULL,
                                                              0, NULL);
    return store_exec(tx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", NULL, 0,
                      NULL);
}

static rf_err after_checks(struct rf_tx *tx, rf_err err) {
    if (tx->ops->backend == STORE_POSTGRES) return err;
    rf_err restored = store_exec(tx, "PRAGMA temp_store=MEMORY", NULL, 0, NULL);
    return err ? err : restored;
}

static rf_err op_reconcile(struct rf_tx *tx, void *ctx) {
    struct reconcile_run *run = ctx;
    struct rf_reconcile *out = run->out;
    rf_reconcile_clear(out);
    out->checks = calloc(N_CHECKS, sizeof *out->checks);
    if (!out->checks) return RF_ERR_NOMEM;
    rf_err err = snapshot(tx);
    bool pg = tx->ops->backend == STORE_POSTGRES;
    for (int i = 0; i < N_CHECKS && !err; i++) {
        const struct check *k = &CHECKS[i];
        struct rf_reconcile_check *c = &out->checks[out->n++];
        *c = (struct rf_reconcile_check){.name = k->name, .invariant = k->invariant,
                                         .columns = {k->col_a, k->col_b}};
        if (run->opts && run->opts->progress)
            run->opts->progress(run->opts->ctx, i + 1, N_CHECKS, k->name);
        const char *sql = pg && k->sql_pg ? k->sql_pg : k->sql;
        err = run_check(tx, sql, c);
        out->violations += c->violations;
    }
    out->clean = !err && out->violations == 0;
    return after_checks(tx, err);
}

rf_err rf_reconcile(rf *db, const struct rf_reconcile_opts *opts, struct rf_reconcile *out) {
    if (!db || !out) return RF_ERR_INVALID;
    memset(out, 0, sizeof *out);
    struct reconcile_run run = {opts, out};
    rf_err err = core_read(db, "reconcile", op_reconcile, &run);
    if (err) rf_reconcile_clear(out);
    return err;
}

void rf_reconcile_clear(struct rf_reconcile *r) {
    if (!r) return;
    for (int i = 0; r->checks && i < r->n; i++)
        for (int j = 0; j < r->checks[i].n_examples; j++) {
            free(r->checks[i].cells[j][0]);
            free(r->checks[i].cells[j][1]);
        }
    free(r->checks);
    memset(r, 0, sizeof *r);
}

static json_t *check_json(const struct rf_reconcile_check *c) {
    int ncols = c->columns[1] ? 2 : 1;
    json_t *cols = json_array(), *rows = json_array();
    for (int j = 0; j < ncols; j++) json_array_append_new(cols, json_string(c->columns[j]));
    for (int i = 0; i < c->n_examples; i++) {
        json_t *row = json_array();
        for (int j = 0; j < ncols; j++)
            json_array_append_new(row, json_string(c->cells[i][j] ? c->cells[i][j] : ""));
        json_array_append_new(rows, row);
    }
    return json_pack("{s:s, s:s, s:b, s:I, s:o, s:o}", "name", c->name, "invariant",
                     c->invariant, "clean", c->violations == 0, "violations",
                     (json_int_t)c->violations, "columns", cols, "examples", rows);
}

json_t *reconcile_json(const struct rf_reconcile *r) {
    RF_ASSERT(r);
    json_t *checks = json_array();
    for (int i = 0; i < r->n; i++) json_array_append_new(checks, check_json(&r->checks[i]));
    return json_pack("{s:s, s:b, s:I, s:I, s:o}", "object", "reconciliation", "clean", r->clean,
                     "violations", (json_int_t)r->violations, "examples_max",
                     (json_int_t)RF_RECONCILE_EXAMPLES_MAX, "checks", checks);
}

char *rf_reconcile_json(const struct rf_reconcile *r) {
    if (!r) return NULL;
    json_t *doc = reconcile_json(r);
    char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    return s;
}
