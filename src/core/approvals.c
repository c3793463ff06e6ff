/*
 * approvals.c - approvals with versions and exactly-once execution (seed 004).
 *
 * The race in the seed: the status was checked outside the transaction, so
 * one user approved (and the action ran) while another rejected, leaving an
 * "executed but rejected" record. Here every transition locks the row
 * (SELECT ... FOR UPDATE on PostgreSQL; the writer lock on SQLite), checks
 * pending / not expired / If-Match inside the transaction, and for an
 * approval executes the action with the same transaction before the status
 * changes. If the action fails, the whole operation rolls back and the
 * approval stays pending. The schema's CHECKs make a contradictory row
 * impossible to store, whatever a future code path does. approvals_check
 * (for rf_ledger_check) finds an approved approval whose action never ran:
 * the effect its result names is not in the store.
 *
 * Each operation is a row of core/api.c (its fields, the action's check,
 * its typed result): the op_approval_* functions here are the rows'
 * transactions, and the public rf_approval_* thin wrappers over rf_op_run.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"
#include "core/actions.h"
#include "core/listing.h"
#include "core/ops.h"

#define APPROVAL_COLS                                                                  \
    "id, status, action_type, action, requested_by, require_distinct_approver,"       \
    " metadata, expires_at, approved_by, approved_at, executed_at, result, rejected_by," \
    " rejected_at, rejection_reason, cancelled_at, created_at, updated_at, version," \
    " requested_key, approved_key, rejected_key"

void rf_approval_clear(struct rf_approval *a) {
    if (!a) return;
    free(a->action_json);
    free(a->metadata_json);
    free(a->result_json);
    free(a->rejection_reason);
    memset(a, 0, sizeof *a);
}

static void clear_approval(void *a) { rf_approval_clear(a); }

void rf_approval_page_clear(struct rf_approval_page *p) {
    if (!p) return;
    page_clear(p->items, p->n, sizeof *p->items, clear_approval);
    memset(p, 0, sizeof *p);
}

/* THE names of enum rf_approval_status, in its order: the API's, the codec's
 * and the status column's (its CHECK allows only the first four: expired is
 * how a pending row past expires_at reads). */
const char *const approval_status_names[] = {"pending", "approved", "rejected", "cancelled",
                                             "expired", NULL};
_Static_assert(RF_APPROVAL_STATUS_PENDING == 0 && RF_APPROVAL_STATUS_APPROVED == 1 &&
                   RF_APPROVAL_STATUS_REJECTED == 2 && RF_APPROVAL_STATUS_CANCELLED == 3 &&
                   RF_APPROVAL_STATUS_EXPIRED == 4,
               "approval_status_names follows enum rf_approval_status");

const char *rf_approval_status_name(enum rf_approval_status status) {
    return (int)status >= 0 && status <= RF_APPROVAL_STATUS_EXPIRED ? approval_status_names[status]
                                                                     : NULL;
}

/* The status column's text as the enum (the schema's CHECK allows no other). */
static enum rf_approval_status status_of(const char *name) {
    int s = RF_APPROVAL_STATUS_PENDING;
    while (s < RF_APPROVAL_STATUS_EXPIRED && strcmp(approval_status_names[s], name) != 0) s++;
    RF_ASSERT(s < RF_APPROVAL_STATUS_EXPIRED || !"a status the schema allows");
    return (enum rf_approval_status)s;
}

/* The action_type column's text as the enum (written from the enum's name). */
static enum rf_action_type action_type_of(const char *name) {
    enum rf_action_type t = RF_ACTION_TRANSFER;
    bool known = action_type_parse(name, &t);
    RF_ASSERT(known || !"an action type racefree wrote");
    return t;
}

static bool expired(const struct rf_approval *a, int64_t now_ms) {
    return a->expires_at_ms && a->expires_at_ms <= now_ms;
}

/* Reads APPROVAL_COLS; a pending approval past expires_at reads as expired. */
static void read_approval(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_approval *a = out;
    rf_approval_clear(a);
    rf_strcpy(a->id, sizeof a->id, store_text(tx, r, 0));
    a->status = status_of(store_text(tx, r, 1));
    a->action_type = action_type_of(store_text(tx, r, 2));
    a->action_json = core_dup_col(tx, r, 3);
    rf_strcpy(a->requested_by, sizeof a->requested_by, store_text(tx, r, 4));
    a->require_distinct_approver = store_int(tx, r, 5) != 0;
    a->metadata_json = core_dup_col(tx, r, 6);
    a->expires_at_ms = store_int(tx, r, 7);
    rf_strcpy(a->approved_by, sizeof a->approved_by, store_text(tx, r, 8));
    a->approved_at_ms = store_int(tx, r, 9);
    a->executed_at_ms = store_int(tx, r, 10);
    a->result_json = core_dup_col(tx, r, 11);
    rf_strcpy(a->rejected_by, sizeof a->rejected_by, store_text(tx, r, 12));
    a->rejected_at_ms = store_int(tx, r, 13);
    a->rejection_reason = core_dup_col(tx, r, 14);
    a->cancelled_at_ms = store_int(tx, r, 15);
    a->created_at_ms = store_int(tx, r, 16);
    a->updated_at_ms = store_int(tx, r, 17);
    a->version = store_int(tx, r, 18);
    rf_strcpy(a->requested_key, sizeof a->requested_key, store_text(tx, r, 19));
    rf_strcpy(a->approved_key, sizeof a->approved_key, store_text(tx, r, 20));
    rf_strcpy(a->rejected_key, sizeof a->rejected_key, store_text(tx, r, 21));
    /* the schema's CHECK: executed if and only if approved */
    RF_ASSERT((a->status == RF_APPROVAL_STATUS_APPROVED) == (a->executed_at_ms != 0));
    if (a->status == RF_APPROVAL_STATUS_PENDING && expired(a, tx->now_ms))
        a->status = RF_APPROVAL_STATUS_EXPIRED;
}

/* ---- create --------------------------------------------------------------- */

static const char SQL_CREATE[] =
    "INSERT INTO approvals (id, status, action_type, action, requested_by,"
    " require_distinct_approver, metadata, expires_at, created_at, updated_at, version,"
    " requested_key)"
    " VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8, $8, 1, $9) RETURNING " APPROVAL_COLS;

/* The action was validated before the transaction (the operation's check:
 * action_parse); parsed again here for its type, a refusal now (a rule that
 * reads the clock) is still the answer and nothing is written. */
rf_err op_approval_create(struct rf_tx *tx, const void *request, void *res) {
    const struct rf_approval_req *req = request;
    struct rf_approval *out = res;
    if (req->expires_at_ms && req->expires_at_ms <= tx->now_ms) return RF_ERR_INVALID; /* born expired */
    struct action act;
    char detail[RF_FAULT_DETAIL_BYTES];
    rf_err err = action_parse(req->action_json, &act, detail, sizeof detail);
    if (err) return err;
    const char *type = rf_action_type_name(act.type); /* a static name */
    action_clear(&act);
    char id[RF_ID_BYTES];
    rf_uuid7(tx->now_ms, id);
    store_val p[9] = {SV_S(id), SV_S(type), SV_S(req->action_json), SV_S(req->requested_by),
                      SV_I(req->require_distinct_approver ? 1 : 0), SV_S(req->metadata_json),
                      SV_I0(req->expires_at_ms), SV_I(tx->now_ms), SV_S(req->requested_key)};
    err = store_query_one(tx, SQL_CREATE, p, 9, read_approval, out);
    RF_ASSERT(err || (out->status == RF_APPROVAL_STATUS_PENDING && out->version == 1 &&
                      out->created_at_ms == tx->now_ms));
    return err;
}

/* ---- transitions ---------------------------------------------------------- */

static const char SQL_LOCK[] = "SELECT " APPROVAL_COLS " FROM approvals WHERE id = $1 FOR UPDATE";

static const char SQL_APPROVE[] =
    "UPDATE approvals SET status = 'approved', approved_by = $2, approved_at = $3,"
    " executed_at = $3, result = $4, updated_at = $3, version = version + 1, approved_key = $6"
    " WHERE id = $1 AND status = 'pending' AND version = $5 RETURNING " APPROVAL_COLS;
static const char SQL_REJECT[] =
    "UPDATE approvals SET status = 'rejected', rejected_by = $2, rejected_at = $3,"
    " rejection_reason = $4, updated_at = $3, version = version + 1, rejected_key = $6"
    " WHERE id = $1 AND status = 'pending' AND version = $5 RETURNING " APPROVAL_COLS;
static const char SQL_CANCEL[] =
    "UPDATE approvals SET status = 'cancelled', cancelled_at = $3, updated_at = $3,"
    " version = version + 1"
    " WHERE id = $1 AND status = 'pending' AND version = $5 RETURNING " APPROVAL_COLS;

enum transition { T_APPROVE, T_REJECT, T_CANCEL };

struct transition_args {
    enum transition kind;
    const struct rf_approval_ref *req;
    struct rf_approval *out;
};

/* Locks the row and checks, in this order: exists, If-Match, pending, not
 * expired. Inside the transaction, so nothing can change between the check
 * and the write. */
static rf_err lock_pending(struct rf_tx *tx, const struct transition_args *a) {
    store_val p[1] = {SV_S(a->req->id)};
    rf_err err = store_query_one(tx, SQL_LOCK, p, 1, read_approval, a->out);
    if (err) return err == RF_ERR_NOT_FOUND ? RF_ERR_APPROVAL_NOT_FOUND : err;
    int64_t if_match = a->req->if_match_version;
    core_fact_version(tx, a->out->version);
    core_fact_status(tx, approval_status_names[a->out->status]);
    if (if_match && if_match != a->out->version) return RF_ERR_VERSION_MISMATCH;
    if (a->out->status == RF_APPROVAL_STATUS_EXPIRED)
        return a->kind == T_APPROVE ? RF_ERR_APPROVAL_EXPIRED : RF_ERR_INVALID_STATE;
    return a->out->status == RF_APPROVAL_STATUS_PENDING ? RF_OK : RF_ERR_INVALID_STATE;
}

/* Executes the stored action; its error (insufficient_funds, ...) is the
 * answer and rolls everything back. */
static rf_err execute(struct rf_tx *tx, const struct rf_approval *cur, char **result) {
    struct action act;
    char detail[160];
    rf_err err = action_parse(cur->action_json, &act, detail, sizeof detail);
    RF_ASSERT(err != RF_ERR_INVALID || !"an approval holds only valid actions");
    if (err) return err;
    err = action_execute(tx, &act, result);
    action_clear(&act);
    return err;
}

/* The edge just taken, read back from the UPDATE: pending -> the kind's
 * status at exactly the locked version + 1 (the row stayed locked), with the
 * timestamps that status says were set now, and executed only if approved. */
static void transition_done(const struct rf_tx *tx, const struct transition_args *a,
                            int64_t locked_version) {
    static const enum rf_approval_status status[] = {
        [T_APPROVE] = RF_APPROVAL_STATUS_APPROVED,
        [T_REJECT] = RF_APPROVAL_STATUS_REJECTED,
        [T_CANCEL] = RF_APPROVAL_STATUS_CANCELLED,
    };
    const struct rf_approval *ap = a->out;
    RF_ASSERT(ap->status == status[a->kind] && ap->version == locked_version + 1);
    int64_t now = tx->now_ms;
    RF_ASSERT(ap->updated_at_ms == now && (ap->executed_at_ms == now) == (a->kind == T_APPROVE));
    RF_ASSERT(a->kind != T_APPROVE || ap->approved_at_ms == now);
    RF_ASSERT(a->kind != T_REJECT || ap->rejected_at_ms == now);
    RF_ASSERT(a->kind != T_CANCEL || ap->cancelled_at_ms == now);
}

/* Cancelling is the requester's: the key that created the approval (an
 * approval from before keys were recorded has none, so only a trusted
 * caller cancels it), or a trusted caller (no key given: the library used
 * directly; an admin key); the label must not name someone else either. */
static bool may_cancel(const struct rf_approval_ref *r, const struct rf_approval *cur) {
    bool trusted = !r->caller_key || r->caller_role == RF_ROLE_ADMIN;
    if (!trusted && strcmp(r->caller_key, cur->requested_key) != 0) return false;
    return !r->by || strcmp(r->by, cur->requested_by) == 0;
}

/* Who acted is the API key: when both the requesting and the approving key
 * are known, the requesting key may not approve, whatever the labels say
 * (two keys may share a label; one key may use two). An approval from
 * before keys were recorded, or a call without a key (the library used
 * directly), is judged by the labels, as it always was. */
static bool self_approval(const struct rf_approval_ref *r, const struct rf_approval *cur) {
    if (r->caller_key && cur->requested_key[0])
        return strcmp(r->caller_key, cur->requested_key) == 0;
    return strcmp(r->by, cur->requested_by) == 0;
}

static rf_err transition(struct rf_tx *tx, const struct transition_args *a) {
    const struct rf_approval_ref *r = a->req;
    rf_err err = lock_pending(tx, a);
    if (err) return err;
    const struct rf_approval *cur = a->out;
    if (a->kind == T_APPROVE && cur->require_distinct_approver && self_approval(r, cur))
        return RF_ERR_SELF_APPROVAL;
    if (a->kind == T_CANCEL && !may_cancel(r, cur)) return RF_ERR_NOT_REQUESTER;
    char *result = NULL;
    if (a->kind == T_APPROVE) err = execute(tx, cur, &result);
    if (err) return err;
    static const char *const sql[] = {SQL_APPROVE, SQL_REJECT, SQL_CANCEL};
    const char *text = a->kind == T_APPROVE ? result : a->kind == T_REJECT ? r->reason : NULL;
    int64_t locked_version = cur->version; /* cur is a->out: the UPDATE overwrites it */
    /* $6, the acting key, is recorded by approve and reject */
    store_val p[6] = {SV_S(r->id), SV_S(r->by), SV_I(tx->now_ms), SV_S(text),
                      SV_I(locked_version), SV_S(r->caller_key)};
    err = store_query_one(tx, sql[a->kind], p, a->kind == T_CANCEL ? 5 : 6, read_approval,
                          a->out);
    free(result);
    RF_ASSERT(err != RF_ERR_NOT_FOUND); /* the row is locked and was pending */
    if (!err) transition_done(tx, a, locked_version);
    return err;
}

rf_err op_approval_approve(struct rf_tx *tx, const void *req, void *res) {
    const struct transition_args a = {T_APPROVE, req, res};
    RF_ASSERT(a.req->by); /* the field spec requires approved_by */
    return transition(tx, &a);
}

rf_err op_approval_reject(struct rf_tx *tx, const void *req, void *res) {
    const struct transition_args a = {T_REJECT, req, res};
    RF_ASSERT(a.req->by); /* the field spec requires rejected_by */
    return transition(tx, &a);
}

rf_err op_approval_cancel(struct rf_tx *tx, const void *req, void *res) {
    const struct transition_args a = {T_CANCEL, req, res};
    return transition(tx, &a);
}

/* ---- reads -------------------------------------------------------------- */

static const char SQL_GET[] = "SELECT " APPROVAL_COLS " FROM approvals WHERE id = $1";

rf_err op_approval_get(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_approval_ref *r = req;
    store_val p[1] = {SV_S(r->id)};
    rf_err err = store_query_one(tx, SQL_GET, p, 1, read_approval, res);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_APPROVAL_NOT_FOUND : err;
}

/* Commit order (core/listing.h): list_pos is column 20. The status filter
 * is applied when each page is read. */
static const char SQL_LIST[] =
    "SELECT " APPROVAL_COLS ", list_pos FROM approvals WHERE " LIST_AFTER("id") " AND ($4 = ''"
    " OR ($4 = 'expired' AND status = 'pending' AND expires_at IS NOT NULL AND expires_at <= $5)"
    " OR ($4 = 'pending' AND status = 'pending' AND (expires_at IS NULL OR expires_at > $5))"
    " OR ($4 <> 'pending' AND $4 <> 'expired' AND status = $4))" LIST_ORDER("id") " LIMIT $6";
static const char SQL_LIST_POS[] = "SELECT list_pos FROM approvals WHERE id = $1";

/* enum rf_approval_filter is "all", then each enum rf_approval_status in its
 * order: the SQL's $4 is the status's name ("" for all), and so are the
 * library's names (rf_approval_list). */
_Static_assert(RF_APPROVAL_ALL == 0 &&
                   RF_APPROVAL_PENDING == RF_APPROVAL_STATUS_PENDING + 1 &&
                   RF_APPROVAL_APPROVED == RF_APPROVAL_STATUS_APPROVED + 1 &&
                   RF_APPROVAL_REJECTED == RF_APPROVAL_STATUS_REJECTED + 1 &&
                   RF_APPROVAL_CANCELLED == RF_APPROVAL_STATUS_CANCELLED + 1 &&
                   RF_APPROVAL_EXPIRED == RF_APPROVAL_STATUS_EXPIRED + 1,
               "enum rf_approval_filter follows enum rf_approval_status");

static const char *filter_status(int64_t filter) {
    return filter == RF_APPROVAL_ALL ? "" : approval_status_names[filter - 1];
}

rf_err op_approval_list(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_list_req *r = req;
    struct rf_approval_page *out = res;
    RF_ASSERT(r->status >= RF_APPROVAL_ALL && r->status <= RF_APPROVAL_EXPIRED);
    struct list_page lp = {.pos_col = 20, .key_col = 0, .pos_sql = SQL_LIST_POS,
                           .read_row = read_approval, .clear_item = clear_approval,
                           LIST_INTO(out, core_limit((int)r->limit))};
    rf_err err = list_cursor_parse(r->after, &lp.after);
    if (err) return err;
    store_val p[6] = {SV_I(lp.after.pos), SV_S(lp.after.key), LIST_HORIZON_SLOT,
                      SV_S(filter_status(r->status)), SV_I(tx->now_ms), SV_I(lp.limit)};
    err = list_page_run(tx, SQL_LIST, p, 6, &lp);
    out->n = lp.n;
    return err;
}

/* ---- the public functions: thin wrappers over rf_op_run ------------------- */

rf_err rf_approval_create(rf *db, const struct rf_approval_req *req, struct rf_approval *out,
                          struct rf_idem *idem, char *detail, size_t cap) {
    struct rf_fault fault;
    rf_err err = rf_op_run(db, RF_OP_APPROVAL_CREATE, req, out, idem, &fault);
    if (detail && cap) snprintf(detail, cap, "%s", err ? fault.detail : "");
    return err;
}

rf_err rf_approval_approve(rf *db, const char *id, const char *approved_by, int64_t if_match,
                           struct rf_approval *out, struct rf_idem *idem) {
    struct rf_approval_ref req = {.id = id, .by = approved_by, .if_match_version = if_match};
    return rf_op_run(db, RF_OP_APPROVAL_APPROVE, &req, out, idem, NULL);
}

rf_err rf_approval_reject(rf *db, const char *id, const char *rejected_by, const char *reason,
                          int64_t if_match, struct rf_approval *out, struct rf_idem *idem) {
    struct rf_approval_ref req = {.id = id, .by = rejected_by, .reason = reason,
                                  .if_match_version = if_match};
    return rf_op_run(db, RF_OP_APPROVAL_REJECT, &req, out, idem, NULL);
}

rf_err rf_approval_cancel(rf *db, const char *id, const char *cancelled_by,
                          const char *caller_key, int64_t if_match, struct rf_approval *out,
                          struct rf_idem *idem) {
    struct rf_approval_ref req = {.id = id, .by = cancelled_by, .caller_key = caller_key,
                                  .if_match_version = if_match};
    return rf_op_run(db, RF_OP_APPROVAL_CANCEL, &req, out, idem, NULL);
}

rf_err rf_approval_get(rf *db, const char *id, struct rf_approval *out) {
    struct rf_approval_ref req = {.id = id};
    return rf_op_run(db, RF_OP_APPROVAL_GET, &req, out, NULL, NULL);
}

/* status: a name of enum rf_approval_status (NULL and "" are all); any
 * other is -1, which the list's field spec refuses. */
static int64_t list_filter(const char *status) {
    if (!status || !*status) return RF_APPROVAL_ALL;
    for (int i = RF_APPROVAL_PENDING; i <= RF_APPROVAL_EXPIRED; i++)
        if (strcmp(status, filter_status(i)) == 0) return i;
    return -1;
}

rf_err rf_approval_list(rf *db, const char *status, const char *after, int limit,
                        struct rf_approval_page *out) {
    struct rf_list_req req = {NULL, list_filter(status), after, limit};
    return rf_op_run(db, RF_OP_APPROVAL_LIST, &req, out, NULL, NULL);
}

/* ---- invariant ------------------------------------------------------------ */

/* An approved approval's result names the effect its action made (see
 * action_execute); the effect must be in the store, or the approval says
 * "executed" for an action that never ran. Paged by id so the check holds
 * RF_CHECK_PAGE_ROWS approvals at a time, all in the caller's one read
 * transaction (one snapshot). */
static const char SQL_CHECK_APPROVED[] =
    "SELECT id, action_type, result FROM approvals WHERE status = 'approved' AND id > $1"
    " ORDER BY id LIMIT $2";

/* Each action type's effect: its id's key in the result and where it lives. */
static const struct {
    const char *key, *sql;
} EFFECTS[] = {
    [RF_ACTION_TRANSFER] = {"transfer_id", "SELECT COUNT(*) FROM transfers WHERE id = $1"},
    [RF_ACTION_ENTITLEMENT_GRANT] = {"entitlement_id",
                                     "SELECT COUNT(*) FROM entitlements WHERE id = $1"},
    [RF_ACTION_PAYOUT] = {"payout_id", "SELECT COUNT(*) FROM payouts WHERE id = $1"},
};

struct approved_page {
    int n;
    char last[RF_ID_BYTES];
    struct {
        int effect;             /* index in EFFECTS, -1 when the result names none */
        char id[RF_ID_BYTES];
    } items[RF_CHECK_PAGE_ROWS];
};

static void read_approved(struct rf_tx *tx, struct store_rows *r, void *ctx) {
    struct approved_page *pg = ctx;
    RF_ASSERT(pg->n < RF_CHECK_PAGE_ROWS);
    rf_strcpy(pg->last, sizeof pg->last, store_text(tx, r, 0));
    int effect = (int)action_type_of(store_text(tx, r, 1));
    json_t *result = store_null(tx, r, 2) ? NULL : json_loads(store_text(tx, r, 2), 0, NULL);
    json_t *id = json_object_get(result, EFFECTS[effect].key);
    pg->items[pg->n].effect = json_is_string(id) ? effect : -1;
    rf_strcpy(pg->items[pg->n].id, sizeof pg->items[pg->n].id,
              json_is_string(id) ? json_string_value(id) : "");
    pg->n++;
    json_decref(result);
}

static rf_err check_page(struct rf_tx *tx, const struct approved_page *pg, int64_t *unexecuted) {
    for (int i = 0; i < pg->n; i++) {
        int64_t found = 0;
        if (pg->items[i].effect >= 0) {
            store_val p[1] = {SV_S(pg->items[i].id)};
            rf_err err = store_query_one(tx, EFFECTS[pg->items[i].effect].sql, p, 1,
                                         core_int_row, &found);
            if (err) return err;
        }
        *unexecuted += found == 0;
    }
    return RF_OK;
}

rf_err approvals_check(struct rf_tx *tx, int64_t *checked, int64_t *unexecuted) {
    RF_ASSERT(tx && checked && unexecuted);
    struct approved_page *pg = calloc(1, sizeof *pg);
    if (!pg) return RF_ERR_NOMEM;
    char after[RF_ID_BYTES] = "";
    rf_err err;
    do {
        pg->n = 0;
        store_val p[2] = {SV_S(after), SV_I(RF_CHECK_PAGE_ROWS)};
        err = store_query_each(tx, SQL_CHECK_APPROVED, p, 2, RF_CHECK_PAGE_ROWS, read_approved,
                               pg);
        if (!err) err = check_page(tx, pg, unexecuted);
        *checked += pg->n;
        rf_strcpy(after, sizeof after, pg->last);
    } while (!err && pg->n == RF_CHECK_PAGE_ROWS);
    free(pg);
    return err;
}
