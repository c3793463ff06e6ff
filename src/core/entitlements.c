/*
 * entitlements.c - idempotent grants and revokes (seed 000).
 *
 * The race in the seed: SELECT, then INSERT, and the loser of two concurrent
 * grants gets "UNIQUE constraint failed" as a 500. Here the grant is ONE
 * atomic upsert on UNIQUE(user_id, entitlement_key): it inserts, or
 * re-activates a revoked/expired row (version + 1), or leaves an active row
 * alone; a re-read in the same transaction then returns the row whichever way
 * it went. Both callers get the same record; the database decides, not a
 * prior SELECT.
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "core/flows.h"
#include "core/listing.h"
#include "core/ops.h"

#define ENT_COLS                                                                       \
    "id, user_id, entitlement_key, status, source, metadata, expires_at, granted_at," \
    " revoked_at, updated_at, version"

static const char SQL_GRANT[] =
    "INSERT INTO entitlements (id, user_id, entitlement_key, status, source, metadata,"
    " expires_at, granted_at, revoked_at, updated_at, version)"
    " VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, NULL, $7, 1)"
    " ON CONFLICT (user_id, entitlement_key) DO UPDATE SET status = 'active',"
    " source = excluded.source, metadata = excluded.metadata,"
    " expires_at = excluded.expires_at, granted_at = excluded.granted_at, revoked_at = NULL,"
    " updated_at = excluded.updated_at, version = entitlements.version + 1"
    " WHERE entitlements.status = 'revoked'"
    " OR (entitlements.expires_at IS NOT NULL AND entitlements.expires_at <= excluded.granted_at)"
    " RETURNING " ENT_COLS;

static const char SQL_GET[] =
    "SELECT " ENT_COLS " FROM entitlements WHERE user_id = $1 AND entitlement_key = $2";

static const char SQL_GET_LOCKED[] =
    "SELECT " ENT_COLS " FROM entitlements WHERE user_id = $1 AND entitlement_key = $2"
    " FOR UPDATE";

static const char SQL_REVOKE[] =
    "UPDATE entitlements SET status = 'revoked', revoked_at = $3, updated_at = $3,"
    " version = version + 1"
    " WHERE user_id = $1 AND entitlement_key = $2 AND status = 'active'"
    " RETURNING " ENT_COLS;

/* Commit order (core/listing.h): list_pos is column 11. The filter is
 * applied when each page is read. */
static const char SQL_LIST[] =
    "SELECT " ENT_COLS ", list_pos FROM entitlements WHERE user_id = $4 AND " LIST_AFTER("id")
    " AND ("
    " $5 = 'all'"
    " OR ($5 = 'revoked' AND status = 'revoked')"
    " OR ($5 = 'active' AND status = 'active' AND (expires_at IS NULL OR expires_at > $6))"
    " OR ($5 = 'expired' AND status = 'active' AND expires_at IS NOT NULL AND expires_at <= $6))"
    LIST_ORDER("id") " LIMIT $7";
static const char SQL_LIST_POS[] = "SELECT list_pos FROM entitlements WHERE id = $1";

void rf_entitlement_clear(struct rf_entitlement *e) {
    if (!e) return;
    free(e->source);
    free(e->metadata_json);
    memset(e, 0, sizeof *e);
}

static void clear_ent(void *e) { rf_entitlement_clear(e); }

void rf_entitlement_page_clear(struct rf_entitlement_page *p) {
    if (!p) return;
    page_clear(p->items, p->n, sizeof *p->items, clear_ent);
    memset(p, 0, sizeof *p);
}

/* THE names of enum rf_ent_status, in its order: the JSON's and the status
 * column's (its CHECK lets it hold active and revoked; expired is read). */
const char *const ent_status_names[] = {"active", "revoked", "expired", NULL};
_Static_assert(RF_ENT_STATUS_ACTIVE == 0 && RF_ENT_STATUS_REVOKED == 1 &&
                   RF_ENT_STATUS_EXPIRED == 2,
               "ent_status_names follows enum rf_ent_status");

const char *rf_ent_status_name(enum rf_ent_status status) {
    return (unsigned)status <= RF_ENT_STATUS_EXPIRED ? ent_status_names[status] : NULL;
}

/* The status column's text as the enum (the column holds active or revoked). */
static enum rf_ent_status status_of(const char *name) {
    bool revoked = strcmp(name, ent_status_names[RF_ENT_STATUS_REVOKED]) == 0;
    RF_ASSERT(revoked || strcmp(name, ent_status_names[RF_ENT_STATUS_ACTIVE]) == 0);
    return revoked ? RF_ENT_STATUS_REVOKED : RF_ENT_STATUS_ACTIVE;
}

/* Reads ENT_COLS; an active row past expires_at reads as expired. */
static void read_ent(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_entitlement *e = out;
    rf_entitlement_clear(e);
    rf_strcpy(e->id, sizeof e->id, store_text(tx, r, 0));
    rf_strcpy(e->user_id, sizeof e->user_id, store_text(tx, r, 1));
    rf_strcpy(e->key, sizeof e->key, store_text(tx, r, 2));
    e->status = status_of(store_text(tx, r, 3));
    e->source = core_dup_col(tx, r, 4);
    e->metadata_json = core_dup_col(tx, r, 5);
    e->expires_at_ms = store_int(tx, r, 6);
    e->granted_at_ms = store_int(tx, r, 7);
    e->revoked_at_ms = store_int(tx, r, 8);
    e->updated_at_ms = store_int(tx, r, 9);
    e->version = store_int(tx, r, 10);
    RF_ASSERT(e->version >= 1);
    if (e->status == RF_ENT_STATUS_ACTIVE && e->expires_at_ms && e->expires_at_ms <= tx->now_ms)
        e->status = RF_ENT_STATUS_EXPIRED;
}

/* If-Match: the row must exist with exactly this version (row-locked). */
static rf_err check_version(struct rf_tx *tx, const char *user_id, const char *key,
                            int64_t want) {
    if (want == 0) return RF_OK;
    store_val p[2] = {SV_S(user_id), SV_S(key)};
    struct rf_entitlement cur = {0};
    rf_err err = store_query_one(tx, SQL_GET_LOCKED, p, 2, read_ent, &cur);
    int64_t have = cur.version;
    rf_entitlement_clear(&cur);
    if (err == RF_ERR_NOT_FOUND) return RF_ERR_VERSION_MISMATCH;
    if (err) return err;
    if (have != want) core_fact_version(tx, have);
    return have == want ? RF_OK : RF_ERR_VERSION_MISMATCH;
}

/* The upsert wrote the row: inserted at version 1 (created), or a revoked or
 * expired row granted again one version up, from the version If-Match
 * locked; granted now and not revoked either way. */
static void grant_done(const struct rf_tx *tx, const struct rf_grant_req *req,
                       const struct rf_grant_res *res) {
    const struct rf_entitlement *e = &res->ent;
    RF_ASSERT(res->created == (e->version == 1));
    RF_ASSERT(!req->if_match_version || e->version == req->if_match_version + 1);
    RF_ASSERT(e->granted_at_ms == tx->now_ms && e->updated_at_ms == tx->now_ms &&
              e->revoked_at_ms == 0 && e->status != RF_ENT_STATUS_REVOKED);
}

rf_err entitlement_grant_tx(struct rf_tx *tx, const struct rf_grant_req *req,
                           struct rf_grant_res *res) {
    rf_entitlement_clear(&res->ent);
    res->created = false;
    rf_err err = check_version(tx, req->user_id, req->key, req->if_match_version);
    if (err) return err;
    char id[RF_UUID_TEXT_BYTES];
    rf_uuid7(tx->now_ms, id);
    store_val p[7] = {SV_S(id), SV_S(req->user_id), SV_S(req->key), SV_S(req->source),
                      SV_S(req->metadata_json), SV_I0(req->expires_at_ms), SV_I(tx->now_ms)};
    err = store_query_one(tx, SQL_GRANT, p, 7, read_ent, &res->ent);
    if (err == RF_OK) {
        res->created = strcmp(res->ent.id, id) == 0;
        grant_done(tx, req, res);
        return RF_OK;
    }
    if (err != RF_ERR_NOT_FOUND) return err;
    /* Already active: the upsert changed nothing; return the row as it is. */
    err = store_query_one(tx, SQL_GET, p + 1, 2, read_ent, &res->ent);
    RF_ASSERT(err != RF_ERR_NOT_FOUND); /* the conflict proved the row exists */
    /* untouched: the version If-Match locked, still granted and not expired */
    RF_ASSERT(err || ((!req->if_match_version || res->ent.version == req->if_match_version) &&
                      res->ent.revoked_at_ms == 0 && res->ent.status == RF_ENT_STATUS_ACTIVE));
    return err;
}

/* ---- the operation table's rows (core/ops.h) ------------------------------ */

rf_err op_entitlement_grant(struct rf_tx *tx, const void *req, void *res) {
    return entitlement_grant_tx(tx, req, res);
}

rf_err op_entitlement_revoke(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_ent_ref *a = req;
    struct rf_entitlement *out = res;
    rf_err err = check_version(tx, a->user_id, a->key, a->if_match_version);
    if (err == RF_ERR_VERSION_MISMATCH) {
        /* A missing or revoked row is "not found", whatever If-Match said. */
        store_val g[2] = {SV_S(a->user_id), SV_S(a->key)};
        rf_err e2 = store_query_one(tx, SQL_GET, g, 2, read_ent, out);
        bool gone = e2 == RF_ERR_NOT_FOUND || (e2 == RF_OK && out->revoked_at_ms != 0);
        rf_entitlement_clear(out);
        return gone ? RF_ERR_ENTITLEMENT_NOT_FOUND : err;
    }
    if (err) return err;
    store_val p[3] = {SV_S(a->user_id), SV_S(a->key), SV_I(tx->now_ms)};
    err = store_query_one(tx, SQL_REVOKE, p, 3, read_ent, out);
    /* active -> revoked now, one version past the one If-Match locked */
    RF_ASSERT(err || (out->status == RF_ENT_STATUS_REVOKED && out->version >= 2 &&
                      out->revoked_at_ms == tx->now_ms));
    RF_ASSERT(err || !a->if_match_version || out->version == a->if_match_version + 1);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_ENTITLEMENT_NOT_FOUND : err;
}

rf_err op_entitlement_get(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_ent_ref *a = req;
    store_val p[2] = {SV_S(a->user_id), SV_S(a->key)};
    rf_err err = store_query_one(tx, SQL_GET, p, 2, read_ent, res);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_ENTITLEMENT_NOT_FOUND : err;
}

/* ---- the public functions: thin wrappers over rf_op_run ------------------- */

rf_err rf_entitlement_grant(rf *db, const struct rf_grant_req *req, struct rf_grant_res *res,
                            struct rf_idem *idem) {
    return rf_op_run(db, RF_OP_ENTITLEMENT_GRANT, req, res, idem, NULL);
}

rf_err rf_entitlement_revoke(rf *db, const char *user_id, const char *key,
                             int64_t if_match_version, struct rf_entitlement *out) {
    struct rf_ent_ref req = {user_id, key, if_match_version};
    return rf_op_run(db, RF_OP_ENTITLEMENT_REVOKE, &req, out, NULL, NULL);
}

rf_err rf_entitlement_get(rf *db, const char *user_id, const char *key,
                          struct rf_entitlement *out) {
    struct rf_ent_ref req = {user_id, key, 0};
    return rf_op_run(db, RF_OP_ENTITLEMENT_GET, &req, out, NULL, NULL);
}

/* The list's ?status= value, SQL_LIST's $5: a filter other than all lists
 * the entitlements of the status of the same value and name. */
_Static_assert(RF_ENT_ACTIVE == (int)RF_ENT_STATUS_ACTIVE &&
                   RF_ENT_REVOKED == (int)RF_ENT_STATUS_REVOKED &&
                   RF_ENT_EXPIRED == (int)RF_ENT_STATUS_EXPIRED && RF_ENT_ALL == 3,
               "enum rf_ent_filter is enum rf_ent_status, then all");
static const char *list_filter(int64_t filter) {
    return filter == RF_ENT_ALL ? "all" : rf_ent_status_name((enum rf_ent_status)filter);
}

rf_err op_entitlement_list(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_list_req *r = req;
    struct rf_entitlement_page *out = res;
    RF_ASSERT(r->status >= 0 && r->status <= RF_ENT_ALL);
    struct list_page lp = {.pos_col = 11, .key_col = 0, .pos_sql = SQL_LIST_POS,
                           .read_row = read_ent, .clear_item = clear_ent,
                           LIST_INTO(out, core_limit((int)r->limit))};
    rf_err err = list_cursor_parse(r->after, &lp.after);
    if (err) return err;
    store_val p[7] = {SV_I(lp.after.pos), SV_S(lp.after.key), LIST_HORIZON_SLOT, SV_S(r->scope),
                      SV_S(list_filter(r->status)), SV_I(tx->now_ms), SV_I(lp.limit)};
    err = list_page_run(tx, SQL_LIST, p, 7, &lp);
    out->n = lp.n;
    return err;
}

rf_err rf_entitlement_list(rf *db, const char *user_id, enum rf_ent_filter filter,
                           const char *after, int limit, struct rf_entitlement_page *out) {
    struct rf_list_req req = {user_id, (int64_t)filter, after, limit};
    return rf_op_run(db, RF_OP_ENTITLEMENT_LIST, &req, out, NULL, NULL);
}
