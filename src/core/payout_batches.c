/*
 * payout_batches.c - a payout for every user wallet of a currency whose
 * available balance reaches a minimum, run under the `payouts` lease.
 *
 * The race in the seed: batch workers looped over wallets with no lease,
 * so two of them paid one wallet before either payout showed in its
 * balance. Here a run holds the `payouts` lease (leases.c) and walks the
 * wallets in id order, one bounded chunk per transaction. Every chunk
 * starts with lease_fence_tx, so a run whose lease expired and was taken
 * over commits nothing more; it locks each wallet row (PostgreSQL: FOR
 * UPDATE) before it reads the balance and looks for a pending payout of
 * that wallet, so the check and the payout's hold cannot be split by
 * another writer (read-modify-write); and it advances the batch's cursor
 * and counters in the same transaction as the chunk's payouts, so a crash
 * loses a whole chunk or nothing, and the next run (any node) resumes
 * after the cursor. PRIMARY KEY (batch_id, account_id) of
 * payout_batch_items makes a second payout of one wallet by one batch a
 * conflict, whatever resumes it.
 *
 * A wallet that already has a pending payout (an earlier batch's, or one
 * made with POST /v1/payouts) is skipped and counted: the batch never puts
 * a second payout in flight for it. Checked in the chunk's transaction
 * under the wallet's row lock rather than by a partial UNIQUE index,
 * because POST /v1/payouts has always allowed several pending payouts of
 * one account and keeps doing so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <time.h>

#include "base/assert.h"
#include "base/ids.h"
#include "core/core.h"
#include "core/flows.h"
#include "core/ops.h"

#define LEASE_NAME "payouts"
#define DEFAULT_PROVIDER "batch"

const char *const payout_batch_status_names[] = {"running", "completed", NULL};

#define BATCH_COLS                                                                          \
    "id, currency, min_amount_minor, provider, status, scan_cursor, wallets_scanned,"     \
    " payouts_created, skipped_pending, total_minor, chunks, lease_token, created_at,"     \
    " updated_at, completed_at, version"

static void read_batch(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_payout_batch *b = out;
    memset(b, 0, sizeof *b);
    rf_strcpy(b->id, sizeof b->id, store_text(tx, r, 0));
    rf_strcpy(b->currency, sizeof b->currency, store_text(tx, r, 1));
    b->min_amount_minor = store_int(tx, r, 2);
    rf_strcpy(b->provider, sizeof b->provider, store_text(tx, r, 3));
    b->status = strcmp(store_text(tx, r, 4), "completed") == 0 ? RF_PAYOUT_BATCH_COMPLETED
                                                                : RF_PAYOUT_BATCH_RUNNING;
    rf_strcpy(b->cursor, sizeof b->cursor, store_text(tx, r, 5));
    b->wallets_scanned = store_int(tx, r, 6);
    b->payouts_created = store_int(tx, r, 7);
    b->skipped_pending = store_int(tx, r, 8);
    b->total_minor = store_int(tx, r, 9);
    b->chunks = store_int(tx, r, 10);
    b->lease_token = store_int(tx, r, 11);
    b->created_at_ms = store_int(tx, r, 12);
    b->updated_at_ms = store_int(tx, r, 13);
    b->completed_at_ms = store_null(tx, r, 14) ? 0 : store_int(tx, r, 14);
    b->version = store_int(tx, r, 15);
    RF_ASSERT(b->payouts_created + b->skipped_pending <= b->wallets_scanned);
    RF_ASSERT((b->status == RF_PAYOUT_BATCH_COMPLETED) == (b->completed_at_ms != 0));
}

static const char SQL_BATCH_GET[] = "SELECT " BATCH_COLS " FROM payout_batches WHERE id = $1";
static const char SQL_BATCH_LOCK[] =
    "SELECT " BATCH_COLS " FROM payout_batches WHERE id = $1 FOR UPDATE";
static const char SQL_BATCH_BY_KEY[] =
    "SELECT " BATCH_COLS " FROM payout_batches WHERE run_key = $1";

static rf_err batch_query(struct rf_tx *tx, const char *sql, const char *key,
                          struct rf_payout_batch *out) {
    store_val p[1] = {SV_S(key)};
    rf_err err = store_query_one(tx, sql, p, 1, read_batch, out);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_PAYOUT_BATCH_NOT_FOUND : err;
}

rf_err op_payout_batch_get(struct rf_tx *tx, const void *req, void *res) {
    return batch_query(tx, SQL_BATCH_GET, ((const struct rf_payout_batch_ref *)req)->id, res);
}

struct find_ctx {
    const char *run_key;
    struct rf_payout_batch *out;
};

static rf_err find_tx(struct rf_tx *tx, void *ctx) {
    struct find_ctx *f = ctx;
    return batch_query(tx, SQL_BATCH_BY_KEY, f->run_key, f->out);
}

rf_err payout_batch_find(rf *db, const char *run_key, struct rf_payout_batch *out) {
    struct find_ctx f = {run_key, out};
    return core_read(db, "payout_batch_find", find_tx, &f);
}

/* ---- one chunk: one transaction ------------------------------------------ */

struct chunk {
    /* in */
    const char *batch_id;
    int64_t token;
    int size;
    /* out, reset at every attempt (the executor may run it again) */
    struct rf_payout_batch batch;
    int n;
    int64_t created, skipped, total;
    char ids[RF_PAYOUT_BATCH_CHUNK_WALLETS][RF_ID_BYTES];
};

static const char SQL_WALLETS[] =
    "SELECT id FROM accounts WHERE currency = $1 AND kind = 'user' AND id > $2"
    " ORDER BY id LIMIT $3";
static const char SQL_WALLET_LOCK[] =
    "SELECT posted - pending_debits FROM accounts WHERE id = $1 FOR UPDATE";
static const char SQL_HAS_PENDING[] =
    "SELECT id FROM payouts WHERE account_id = $1 AND status = 'pending' LIMIT 1";
static const char SQL_ITEM[] =
    "INSERT INTO payout_batch_items (batch_id, account_id, payout_id, amount_minor, created_at)"
    " VALUES ($1, $2, $3, $4, $5)";

static void read_wallet_id(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct chunk *c = out;
    RF_ASSERT(c->n < c->size);
    rf_strcpy(c->ids[c->n++], RF_ID_BYTES, store_text(tx, r, 0));
}

static void read_int(struct rf_tx *tx, struct store_rows *r, void *out) {
    *(int64_t *)out = store_int(tx, r, 0);
}

static void read_found(struct rf_tx *tx, struct store_rows *r, void *out) {
    (void)tx;
    (void)r;
    *(bool *)out = true;
}

/* One wallet: locked, then looked at; paid its available balance when it
 * reaches the minimum and nothing of it is pending. */
static rf_err pay_wallet(struct rf_tx *tx, struct chunk *c, const char *account) {
    const struct rf_payout_batch *b = &c->batch;
    int64_t available = 0;
    store_val a[1] = {SV_S(account)};
    rf_err err = store_query_one(tx, SQL_WALLET_LOCK, a, 1, read_int, &available);
    if (err || available < b->min_amount_minor) return err;
    bool pending = false;
    err = store_query_each(tx, SQL_HAS_PENDING, a, 1, 1, read_found, &pending);
    if (err) return err;
    if (pending) {
        c->skipped++;
        return RF_OK;
    }
    char meta[RF_ID_BYTES + 32];
    snprintf(meta, sizeof meta, "{\"payout_batch_id\": \"%s\"}", b->id); /* an id: no escapes */
    struct rf_payout_req req = {.account = account, .amount_minor = available,
                                .currency = b->currency, .provider = b->provider,
                                .destination_ref = account, .metadata_json = meta};
    struct rf_payout p = {0};
    err = payout_create_tx(tx, &req, &p);
    if (!err) {
        store_val v[5] = {SV_S(b->id), SV_S(account), SV_S(p.id), SV_I(available),
                          SV_I(tx->now_ms)};
        err = store_exec(tx, SQL_ITEM, v, 5, NULL);
    }
    rf_payout_clear(&p);
    if (err) return err;
    c->created++;
    c->total += available;
    return RF_OK;
}

static const char SQL_ADVANCE[] =
    "UPDATE payout_batches SET scan_cursor = $2, wallets_scanned = wallets_scanned + $3,"
    " payouts_created = payouts_created + $4, skipped_pending = skipped_pending + $5,"
    " total_minor = total_minor + $6, chunks = chunks + 1, lease_token = $7,"
    " status = CASE WHEN $8 = 1 THEN 'completed' ELSE 'running' END,"
    " completed_at = CASE WHEN $8 = 1 THEN CAST($9 AS BIGINT) ELSE NULL END, updated_at = $9,"
    " version = version + 1 WHERE id = $1 AND status = 'running' RETURNING " BATCH_COLS;

static rf_err chunk_tx(struct rf_tx *tx, void *ctx) {
    struct chunk *c = ctx;
    c->n = 0;
    c->created = c->skipped = c->total = 0;
    rf_err err = lease_fence_tx(tx, LEASE_NAME, c->token);
    if (!err) err = batch_query(tx, SQL_BATCH_LOCK, c->batch_id, &c->batch);
    if (err || c->batch.status == RF_PAYOUT_BATCH_COMPLETED) return err;
    store_val w[3] = {SV_S(c->batch.currency), SV_S(c->batch.cursor), SV_I(c->size)};
    err = store_query_each(tx, SQL_WALLETS, w, 3, c->size, read_wallet_id, c);
    for (int i = 0; !err && i < c->n; i++) err = pay_wallet(tx, c, c->ids[i]);
    if (err) return err;
    const char *cursor = c->n ? c->ids[c->n - 1] : c->batch.cursor;
    int64_t before = c->batch.total_minor;
    store_val p[9] = {SV_S(c->batch_id), SV_S(cursor), SV_I(c->n), SV_I(c->created),
                      SV_I(c->skipped), SV_I(c->total), SV_I(c->token),
                      SV_I(c->n < c->size ? 1 : 0), SV_I(tx->now_ms)};
    err = store_query_one(tx, SQL_ADVANCE, p, 9, read_batch, &c->batch);
    RF_ASSERT(err || c->batch.total_minor == before + c->total); /* the row was locked */
    return err;
}

/* ---- a run ------------------------------------------------------------------ */

struct run {
    rf *db;
    const struct payout_batch_spec *spec;
    int64_t token;
    int64_t ttl_ms;
    int pause_ms;
    struct chunk *chunk;   /* malloc'd: its wallet ids are too large for a stack */
    struct rf_fault *fault;
};

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Keeps the lease for the next chunk (an expired lease nobody took is still
 * this run's: its token is the highest). */
static rf_err lease_renew(struct run *r) {
    struct rf_lease_req req = {.name = LEASE_NAME, .token = r->token, .ttl_ms = r->ttl_ms};
    struct rf_lease l;
    return rf_op_run(r->db, RF_OP_LEASE_RENEW, &req, &l, NULL, r->fault);
}

/* Chunks of batch id until it is completed. */
static rf_err batch_finish(struct run *r, const char *id) {
    struct chunk *c = r->chunk;
    c->batch_id = id;
    c->token = r->token;
    for (;;) {
        rf_err err = core_write(r->db, "payout_batch_chunk", 0, chunk_tx, c);
        if (err) {
            rf_fault_set(r->fault, err, NULL, "%s", "");
            return err;
        }
        if (c->batch.status == RF_PAYOUT_BATCH_COMPLETED) return RF_OK;
        err = lease_renew(r);
        if (err) return err;
        if (r->pause_ms > 0) sleep_ms(r->pause_ms);
    }
}

static const char SQL_UNFINISHED[] =
    "SELECT " BATCH_COLS " FROM payout_batches WHERE status = 'running'"
    " ORDER BY created_at, id LIMIT 1";

static rf_err unfinished_tx(struct rf_tx *tx, void *ctx) {
    return store_query_one(tx, SQL_UNFINISHED, NULL, 0, read_batch, ctx);
}

/* What earlier runs left running (they crashed or lost the lease). */
static rf_err finish_unfinished(struct run *r) {
    for (int i = 0; i < RF_PAYOUT_BATCH_UNFINISHED_MAX; i++) {
        struct rf_payout_batch b;
        rf_err err = core_read(r->db, "payout_batch_unfinished", unfinished_tx, &b);
        if (err == RF_ERR_NOT_FOUND) return RF_OK;
        if (!err) err = batch_finish(r, b.id);
        if (err) return err;
    }
    return RF_OK;
}

struct open_ctx {
    const struct payout_batch_spec *spec;
    const char *provider;
    int64_t token;
    struct rf_payout_batch batch;
};

static const char SQL_BATCH_INSERT[] =
    "INSERT INTO payout_batches (id, run_key, currency, min_amount_minor, provider, status,"
    " scan_cursor, wallets_scanned, payouts_created, skipped_pending, total_minor, chunks,"
    " lease_token, created_at, updated_at, completed_at, version)"
    " VALUES ($1, $2, $3, $4, $5, 'running', '', 0, 0, 0, 0, 0, $6, $7, $7, NULL, 1)"
    " ON CONFLICT (run_key) DO NOTHING";

/* Creates the batch of run_key, or finds it: one with other terms is
 * RF_ERR_IDEM_REUSED (the key names another request). */
static rf_err open_tx(struct rf_tx *tx, void *ctx) {
    struct open_ctx *o = ctx;
    rf_err err = lease_fence_tx(tx, LEASE_NAME, o->token);
    if (err) return err;
    char id[RF_ID_BYTES];
    rf_uuid7(tx->now_ms, id);
    store_val p[7] = {SV_S(id), SV_S(o->spec->run_key), SV_S(o->spec->currency),
                      SV_I(o->spec->min_amount_minor), SV_S(o->provider), SV_I(o->token),
                      SV_I(tx->now_ms)};
    err = store_exec(tx, SQL_BATCH_INSERT, p, 7, NULL);
    if (!err) err = batch_query(tx, SQL_BATCH_BY_KEY, o->spec->run_key, &o->batch);
    if (err) return err;
    bool same = strcmp(o->batch.currency, o->spec->currency) == 0 &&
                o->batch.min_amount_minor == o->spec->min_amount_minor &&
                strcmp(o->batch.provider, o->provider) == 0;
    return same ? RF_OK : RF_ERR_IDEM_REUSED;
}

/* Everything the run does while it holds the lease. */
static rf_err run_held(struct run *r, char batch_id_out[RF_ID_BYTES]) {
    rf_err err = finish_unfinished(r);
    struct open_ctx o = {.spec = r->spec, .token = r->token,
                         .provider = r->spec->provider ? r->spec->provider : DEFAULT_PROVIDER};
    if (!err) err = core_write(r->db, "payout_batch_open", 0, open_tx, &o);
    if (err && r->fault->code == RF_OK) rf_fault_set(r->fault, err, NULL, "%s", "");
    if (err) return err;
    rf_strcpy(batch_id_out, RF_ID_BYTES, o.batch.id);
    return o.batch.status == RF_PAYOUT_BATCH_COMPLETED ? RF_OK : batch_finish(r, o.batch.id);
}

static rf_err spec_check(const struct payout_batch_spec *s, struct rf_fault *fault) {
    const char *bad = !s->currency || strlen(s->currency) != 3 ? "currency"
                      : s->min_amount_minor < 1               ? "min_amount_minor"
                      : !s->run_key || !rf_id_valid(s->run_key) ? "run_key"
                      : !s->holder || !rf_id_valid(s->holder) ? "holder"
                      : s->provider && !rf_id_valid(s->provider) ? "provider"
                                                                  : NULL;
    if (!bad) return RF_OK;
    rf_fault_set(fault, RF_ERR_INVALID_FIELD, bad, "field '%s' is not valid", bad);
    return RF_ERR_INVALID;
}

/* The test hooks' values, or the defaults. */
static void run_tuning(rf *db, struct run *r) {
    int chunk = db->test_hooks ? atomic_load(&db->batch_hook.chunk_wallets) : 0;
    int64_t ttl = db->test_hooks ? atomic_load(&db->batch_hook.lease_ttl_ms) : 0;
    r->pause_ms = db->test_hooks ? atomic_load(&db->batch_hook.pause_ms) : 0;
    r->chunk->size = chunk > 0 && chunk < RF_PAYOUT_BATCH_CHUNK_WALLETS
                         ? chunk
                         : RF_PAYOUT_BATCH_CHUNK_WALLETS;
    r->ttl_ms = ttl > 0 ? ttl : RF_PAYOUT_BATCH_LEASE_TTL_MS;
    if (r->ttl_ms > db->opt.lease_max_ttl_ms) r->ttl_ms = db->opt.lease_max_ttl_ms;
}

rf_err payout_batch_run(rf *db, const struct payout_batch_spec *spec,
                        char batch_id_out[RF_ID_BYTES], struct rf_fault *fault) {
    RF_ASSERT(db && spec && batch_id_out && fault);
    memset(fault, 0, sizeof *fault);
    batch_id_out[0] = '\0';
    rf_err err = spec_check(spec, fault);
    if (err) return err;
    struct run r = {.db = db, .spec = spec, .fault = fault, .chunk = calloc(1, sizeof(struct chunk))};
    if (!r.chunk) return RF_ERR_NOMEM;
    run_tuning(db, &r);
    struct rf_lease_req acq = {.name = LEASE_NAME, .holder = spec->holder, .ttl_ms = r.ttl_ms};
    struct rf_lease lease;
    err = rf_op_run(db, RF_OP_LEASE_ACQUIRE, &acq, &lease, NULL, fault);
    if (!err) {
        r.token = lease.token;
        err = run_held(&r, batch_id_out);
        /* Given back whatever happened; a stale token has nothing to give. */
        struct rf_lease_req rel = {.name = LEASE_NAME, .token = r.token};
        struct rf_fault ignored;
        (void)rf_op_run(db, RF_OP_LEASE_RELEASE, &rel, &lease, NULL, &ignored);
    }
    free(r.chunk);
    return err;
}
