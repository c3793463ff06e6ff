/*
 * payouts.c - payouts and their executions (seed 000, part 2).
 *
 * The race in the seed: execution attempts were SELECT-then-INSERT on the
 * ledger entry, so two payout runners blew up on the primary key or lost an
 * attempt. Here a payout is created with its hold (a pending transfer from
 * the wallet to payouts:<CUR>) in one transaction; every attempt is one
 * atomic "attempt_count = attempt_count + 1 ... RETURNING"; every outcome is
 * one conditional UPDATE on status = 'pending', so of two concurrent
 * terminal outcomes exactly one happens, and the hold is posted (paid) or
 * voided (failed) in the same transaction as the status change.
 * provider_idempotency_key is derived from the payout id: the key a worker
 * sends to the provider so that the provider never pays twice either.
 *
 * The op_payout_* functions are the operation table's rows (core/api.c
 * holds their field specs); the public rf_payout_* are wrappers over
 * rf_op_run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "core/flows.h"
#include "core/listing.h"
#include "core/ops.h"

#define PAYOUT_COLS                                                                      \
    "id, account_id, amount_minor, currency, provider, destination_ref, status,"        \
    " hold_transfer_id, provider_idempotency_key, provider_payout_id, attempt_count,"   \
    " max_attempts, last_error, metadata, created_at, updated_at, version"

void rf_payout_clear(struct rf_payout *p) {
    if (!p) return;
    free(p->provider_payout_id);
    free(p->last_error);
    free(p->metadata_json);
    memset(p, 0, sizeof *p);
}

static void clear_payout(void *p) { rf_payout_clear(p); }

void rf_payout_page_clear(struct rf_payout_page *p) {
    if (!p) return;
    page_clear(p->items, p->n, sizeof *p->items, clear_payout);
    memset(p, 0, sizeof *p);
}

/* THE names of enum rf_payout_status, in its order: the JSON's, the status
 * column's (its CHECK lets it hold only these) and the list filter's. */
const char *const payout_status_names[] = {"pending", "paid", "failed", NULL};
_Static_assert(RF_PAYOUT_STATUS_PENDING == 0 && RF_PAYOUT_STATUS_PAID == 1 &&
                   RF_PAYOUT_STATUS_FAILED == 2,
               "payout_status_names follows enum rf_payout_status");

const char *rf_payout_status_name(enum rf_payout_status status) {
    return status >= RF_PAYOUT_STATUS_PENDING && status <= RF_PAYOUT_STATUS_FAILED
               ? payout_status_names[status]
               : NULL;
}

/* The status column's text as the enum (the column holds one of the names). */
static enum rf_payout_status status_of(const char *name) {
    enum rf_payout_status s = RF_PAYOUT_STATUS_PENDING;
    while (s < RF_PAYOUT_STATUS_FAILED && strcmp(name, payout_status_names[s]) != 0) s++;
    RF_ASSERT(strcmp(name, payout_status_names[s]) == 0);
    return s;
}

static void read_payout(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_payout *p = out;
    rf_payout_clear(p);
    rf_strcpy(p->id, sizeof p->id, store_text(tx, r, 0));
    rf_strcpy(p->account, sizeof p->account, store_text(tx, r, 1));
    p->amount_minor = store_int(tx, r, 2);
    rf_strcpy(p->currency, sizeof p->currency, store_text(tx, r, 3));
    rf_strcpy(p->provider, sizeof p->provider, store_text(tx, r, 4));
    rf_strcpy(p->destination_ref, sizeof p->destination_ref, store_text(tx, r, 5));
    p->status = status_of(store_text(tx, r, 6));
    rf_strcpy(p->hold_transfer_id, sizeof p->hold_transfer_id, store_text(tx, r, 7));
    rf_strcpy(p->provider_idempotency_key, sizeof p->provider_idempotency_key,
              store_text(tx, r, 8));
    p->provider_payout_id = core_dup_col(tx, r, 9);
    p->attempt_count = store_int(tx, r, 10);
    p->max_attempts = store_int(tx, r, 11);
    p->last_error = core_dup_col(tx, r, 12);
    p->metadata_json = core_dup_col(tx, r, 13);
    p->created_at_ms = store_int(tx, r, 14);
    p->updated_at_ms = store_int(tx, r, 15);
    p->version = store_int(tx, r, 16);
    RF_ASSERT(p->attempt_count >= 0 && p->version >= 1);
}

static const char SQL_PAYOUT_GET[] = "SELECT " PAYOUT_COLS " FROM payouts WHERE id = $1";

static rf_err payout_get(struct rf_tx *tx, const char *id, struct rf_payout *out) {
    store_val p[1] = {SV_S(id)};
    rf_err err = store_query_one(tx, SQL_PAYOUT_GET, p, 1, read_payout, out);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_PAYOUT_NOT_FOUND : err;
}

/* ---- create: the hold and the payout in one transaction ------------------ */

static const char SQL_PAYOUT_INSERT[] =
    "INSERT INTO payouts (id, account_id, amount_minor, currency, provider, destination_ref,"
    " status, hold_transfer_id, provider_idempotency_key, provider_payout_id, attempt_count,"
    " max_attempts, last_error, metadata, created_at, updated_at, version)"
    " VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, NULL, 0, $9, NULL, $10, $11, $11, 1)"
    " RETURNING " PAYOUT_COLS;

rf_err payout_create_tx(struct rf_tx *tx, const struct rf_payout_req *req,
                        struct rf_payout *out) {
    int64_t max = req->max_attempts ? req->max_attempts
                  : tx->db->opt.payout_max_attempts ? tx->db->opt.payout_max_attempts
                                                    : RF_PAYOUT_MAX_ATTEMPTS_DEFAULT;
    char id[RF_ID_BYTES], clearing[RF_ID_BYTES], pkey[RF_ID_BYTES];
    rf_uuid7(tx->now_ms, id);
    snprintf(pkey, sizeof pkey, "rfpo_%.36s", id); /* uuid text: 36 chars */
    ledger_system_id(LEDGER_NS_PAYOUTS, req->currency, clearing);
    struct rf_transfer_req hold = {.debit_account = req->account, .credit_account = clearing,
                                   .amount_minor = req->amount_minor, .currency = req->currency,
                                   .pending = true};
    struct rf_transfer_res res = {0};
    rf_err err = ledger_transfer(tx, &hold, &res);
    if (!err) {
        store_val p[11] = {SV_S(id), SV_S(req->account), SV_I(req->amount_minor),
                           SV_S(req->currency), SV_S(req->provider), SV_S(req->destination_ref),
                           SV_S(res.transfer.id), SV_S(pkey), SV_I(max),
                           SV_S(req->metadata_json), SV_I(tx->now_ms)};
        err = store_query_one(tx, SQL_PAYOUT_INSERT, p, 11, read_payout, out);
    }
    /* born pending, at version 1, with no attempt yet, owning the hold just made */
    RF_ASSERT(err || (out->status == RF_PAYOUT_STATUS_PENDING && out->version == 1 &&
                      out->attempt_count == 0 && out->amount_minor == req->amount_minor));
    RF_ASSERT(err || strcmp(out->hold_transfer_id, res.transfer.id) == 0);
    rf_transfer_clear(&res.transfer);
    return err;
}

/* ---- attempts and outcomes ---------------------------------------------- */

static const char SQL_ATTEMPT[] =
    "UPDATE payouts SET attempt_count = attempt_count + 1, version = version + 1,"
    " updated_at = $2 WHERE id = $1 AND status = 'pending' RETURNING " PAYOUT_COLS;

static const char SQL_LOG[] =
    "INSERT INTO payout_attempts (payout_id, seq, attempt, outcome, reason, retryable,"
    " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/* A failure counts as an attempt of its own when none was recorded. */
static const char SQL_FAILED[] =
    "UPDATE payouts SET last_error = $2, version = version + 1, updated_at = $3,"
    " attempt_count = CASE WHEN attempt_count = 0 THEN 1 ELSE attempt_count END,"
    " status = CASE WHEN $4 = 0 OR attempt_count >= max_attempts"
    " OR (attempt_count = 0 AND max_attempts <= 1) THEN 'failed' ELSE 'pending' END"
    " WHERE id = $1 AND status = 'pending' RETURNING " PAYOUT_COLS;

static const char SQL_SUCCEEDED[] =
    "UPDATE payouts SET status = 'paid', provider_payout_id = $2, version = version + 1,"
    " updated_at = $3, attempt_count = CASE WHEN attempt_count = 0 THEN 1 ELSE attempt_count END"
    " WHERE id = $1 AND status = 'pending' RETURNING " PAYOUT_COLS;

static const char SQL_PROVIDER_ID_TAKEN[] =
    "SELECT id FROM payouts WHERE provider_payout_id = $1";

static rf_err log_outcome(struct rf_tx *tx, const struct rf_payout *p, const char *outcome,
                          const char *reason, int retryable) {
    store_val v[7] = {SV_S(p->id), SV_I(p->version), SV_I(p->attempt_count), SV_S(outcome),
                      SV_S(reason), retryable < 0 ? SV_N() : SV_I(retryable), SV_I(tx->now_ms)};
    return store_exec_later(tx, SQL_LOG, v, 7); /* a failure fails the operation */
}

/* A conditional UPDATE on status = 'pending' returned p: it changed now, its
 * version went past the insert's 1, it counts at least one attempt, and its
 * status is the edge's end (want), or pending again when may_stay (a
 * retryable failure with attempts left). */
static void payout_moved(const struct rf_tx *tx, const struct rf_payout *p,
                         enum rf_payout_status want, bool may_stay) {
    RF_ASSERT(p->version >= 2 && p->updated_at_ms == tx->now_ms && p->attempt_count >= 1);
    RF_ASSERT(p->status == want || (may_stay && p->status == RF_PAYOUT_STATUS_PENDING));
}

/* A conditional UPDATE missed: absent, or no longer pending. */
static rf_err classify(struct rf_tx *tx, const char *id, struct rf_payout *out) {
    rf_err err = payout_get(tx, id, out);
    if (!err) core_fact_status(tx, payout_status_names[out->status]);
    return err ? err : RF_ERR_INVALID_STATE;
}

rf_err op_payout_attempt(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_payout_outcome_req *a = req;
    struct rf_payout *out = res;
    store_val p[2] = {SV_S(a->id), SV_I(tx->now_ms)};
    rf_err err = store_query_one(tx, SQL_ATTEMPT, p, 2, read_payout, out);
    if (err == RF_ERR_NOT_FOUND) return classify(tx, a->id, out);
    if (err) return err;
    payout_moved(tx, out, RF_PAYOUT_STATUS_PENDING, false);
    return log_outcome(tx, out, "started", NULL, -1);
}

static rf_err provider_id_taken(struct rf_tx *tx, const char *provider_payout_id,
                                const char *self) {
    char other[RF_ID_BYTES] = "";
    struct store_rows *r = NULL;
    store_val p[1] = {SV_S(provider_payout_id)};
    rf_err err = store_query(tx, SQL_PROVIDER_ID_TAKEN, p, 1, &r);
    if (err) return err;
    if (store_next(tx, r) > 0) rf_strcpy(other, sizeof other, store_text(tx, r, 0));
    store_close(tx, r);
    return other[0] && strcmp(other, self) != 0 ? RF_ERR_DUPLICATE_PROVIDER_PAYOUT : RF_OK;
}

rf_err op_payout_succeeded(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_payout_outcome_req *a = req;
    struct rf_payout *out = res;
    /* Another payout holding this provider id is a conflict, not a 500. The
     * UNIQUE constraint stays the guarantee; this read only names the answer. */
    rf_err err = provider_id_taken(tx, a->provider_payout_id, a->id);
    if (err) return err;
    store_val p[3] = {SV_S(a->id), SV_S(a->provider_payout_id), SV_I(tx->now_ms)};
    err = store_query_one(tx, SQL_SUCCEEDED, p, 3, read_payout, out);
    if (err == RF_ERR_NOT_FOUND) {
        err = classify(tx, a->id, out);
        bool same = out->provider_payout_id &&
                    strcmp(out->provider_payout_id, a->provider_payout_id) == 0;
        RF_ASSERT(err || !same || out->status == RF_PAYOUT_STATUS_PAID); /* only paid has one */
        return err == RF_ERR_INVALID_STATE && same ? RF_OK : err; /* an idempotent repeat */
    }
    if (err) return err == RF_ERR_CONFLICT ? RF_ERR_DUPLICATE_PROVIDER_PAYOUT : err;
    payout_moved(tx, out, RF_PAYOUT_STATUS_PAID, false);
    RF_ASSERT(out->provider_payout_id &&
              strcmp(out->provider_payout_id, a->provider_payout_id) == 0);
    err = log_outcome(tx, out, "succeeded", NULL, -1);
    struct rf_transfer_res hold = {0};
    if (!err) err = ledger_resolve(tx, out->hold_transfer_id, out->id, true, 0, &hold);
    /* paid: its whole hold, which is the payout's amount, is posted */
    RF_ASSERT(err || hold.transfer.posted_amount_minor == out->amount_minor);
    rf_transfer_clear(&hold.transfer);
    return err;
}

rf_err op_payout_failed(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_payout_outcome_req *a = req;
    struct rf_payout *out = res;
    store_val p[4] = {SV_S(a->id), SV_S(a->reason), SV_I(tx->now_ms),
                      SV_I(a->retryable ? 1 : 0)};
    rf_err err = store_query_one(tx, SQL_FAILED, p, 4, read_payout, out);
    if (err == RF_ERR_NOT_FOUND) return classify(tx, a->id, out);
    if (!err) payout_moved(tx, out, RF_PAYOUT_STATUS_FAILED, a->retryable);
    if (!err) err = log_outcome(tx, out, "failed", a->reason, a->retryable ? 1 : 0);
    if (err || out->status != RF_PAYOUT_STATUS_FAILED) return err;
    struct rf_transfer_res hold = {0};
    err = ledger_resolve(tx, out->hold_transfer_id, out->id, false, 0, &hold);
    RF_ASSERT(err || hold.transfer.amount_minor == out->amount_minor); /* its own hold */
    rf_transfer_clear(&hold.transfer);
    return err;
}

rf_err op_payout_create(struct rf_tx *tx, const void *req, void *res) {
    return payout_create_tx(tx, req, res);
}

rf_err op_payout_get(struct rf_tx *tx, const void *req, void *res) {
    return payout_get(tx, ((const struct rf_payout_outcome_req *)req)->id, res);
}

/* Commit order (core/listing.h): list_pos is column 17. */
static const char SQL_PAYOUT_LIST[] =
    "SELECT " PAYOUT_COLS ", list_pos FROM payouts WHERE " LIST_AFTER("id")
    " AND ($4 = '' OR status = $4)" LIST_ORDER("id") " LIMIT $5";
static const char SQL_PAYOUT_POS[] = "SELECT list_pos FROM payouts WHERE id = $1";

/* A filter other than all lists one status: the one after it in
 * enum rf_payout_filter's order (all is 0). */
_Static_assert(RF_PAYOUT_ALL == 0 && RF_PAYOUT_PENDING - 1 == RF_PAYOUT_STATUS_PENDING &&
                   RF_PAYOUT_PAID - 1 == RF_PAYOUT_STATUS_PAID &&
                   RF_PAYOUT_FAILED - 1 == RF_PAYOUT_STATUS_FAILED,
               "enum rf_payout_filter follows enum rf_payout_status");

/* The status column's text filter f lists ("": any). */
static const char *list_status(int64_t f) {
    return f == RF_PAYOUT_ALL ? "" : payout_status_names[f - 1];
}

rf_err op_payout_list(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_list_req *r = req;
    struct rf_payout_page *out = res;
    RF_ASSERT(r->status >= RF_PAYOUT_ALL && r->status <= RF_PAYOUT_FAILED);
    struct list_page lp = {.pos_col = 17, .key_col = 0, .pos_sql = SQL_PAYOUT_POS,
                           .read_row = read_payout, .clear_item = clear_payout,
                           LIST_INTO(out, core_limit((int)r->limit))};
    rf_err err = list_cursor_parse(r->after, &lp.after);
    if (err) return err;
    store_val p[5] = {SV_I(lp.after.pos), SV_S(lp.after.key), LIST_HORIZON_SLOT,
                      SV_S(list_status(r->status)), SV_I(lp.limit)};
    err = list_page_run(tx, SQL_PAYOUT_LIST, p, 5, &lp);
    out->n = lp.n;
    return err;
}

/* ---- the public functions: thin wrappers over rf_op_run ------------------- */

rf_err rf_payout_create(rf *db, const struct rf_payout_req *req, struct rf_payout *out,
                        struct rf_idem *idem) {
    return rf_op_run(db, RF_OP_PAYOUT_CREATE, req, out, idem, NULL);
}

rf_err rf_payout_attempt(rf *db, const char *id, struct rf_payout *out, struct rf_idem *idem) {
    struct rf_payout_outcome_req req = {.id = id};
    return rf_op_run(db, RF_OP_PAYOUT_ATTEMPT, &req, out, idem, NULL);
}

rf_err rf_payout_succeeded(rf *db, const char *id, const char *provider_payout_id,
                           struct rf_payout *out, struct rf_idem *idem) {
    struct rf_payout_outcome_req req = {.id = id, .provider_payout_id = provider_payout_id};
    return rf_op_run(db, RF_OP_PAYOUT_SUCCEEDED, &req, out, idem, NULL);
}

rf_err rf_payout_failed(rf *db, const char *id, const char *reason, bool retryable,
                        struct rf_payout *out, struct rf_idem *idem) {
    struct rf_payout_outcome_req req = {.id = id, .reason = reason, .retryable = retryable};
    return rf_op_run(db, RF_OP_PAYOUT_FAILED, &req, out, idem, NULL);
}

rf_err rf_payout_get(rf *db, const char *id, struct rf_payout *out) {
    struct rf_payout_outcome_req req = {.id = id};
    return rf_op_run(db, RF_OP_PAYOUT_GET, &req, out, NULL, NULL);
}

/* The filter named status (NULL or "": all); -1 for no such name. */
static int64_t list_filter(const char *status) {
    if (!status || !*status) return RF_PAYOUT_ALL;
    for (int64_t f = RF_PAYOUT_PENDING; f <= RF_PAYOUT_FAILED; f++)
        if (strcmp(status, list_status(f)) == 0) return f;
    return -1;
}

/* A limit of 0 or less is the default. */
rf_err rf_payout_list(rf *db, const char *status, const char *after, int limit,
                      struct rf_payout_page *out) {
    struct rf_list_req req = {.status = list_filter(status), .after = after,
                              .limit = limit > 0 ? limit : 0};
    if (req.status < 0) {
        memset(out, 0, sizeof *out);
        return RF_ERR_INVALID;
    }
    return rf_op_run(db, RF_OP_PAYOUT_LIST, &req, out, NULL, NULL);
}
