/*
 * leases.c - named leases with fencing tokens, and the fence every
 * lease-protected write runs.
 *
 * The race a lease must survive: two nodes see the lease free and both take
 * it (check-then-write). Here the take is ONE statement, an UPSERT whose
 * update is guarded by "expired or released" and which raises the row's
 * token by one; the store's row lock orders concurrent takes, so exactly one
 * of them returns a row and every token is above all tokens issued before it
 * for that name, on any node. A holder that stalls past its expiry is not
 * trusted on its own word: every write it makes under the lease runs
 * lease_fence_tx in its own transaction, which locks the lease row
 * (PostgreSQL: FOR UPDATE; SQLite: the one writer), so a takeover's acquire
 * cannot commit between the fence and that write's commit.
 *
 * The op_lease_* functions are the operation table's rows (core/api.c holds
 * their field specs).
 */
#include <string.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/ids.h"
#include "core/flows.h"
#include "core/ops.h"

#define LEASE_COLS "name, holder, token, ttl_ms, acquired_at, expires_at, released, updated_at, version"

static void read_lease(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_lease *l = out;
    memset(l, 0, sizeof *l);
    rf_strcpy(l->name, sizeof l->name, store_text(tx, r, 0));
    rf_strcpy(l->holder, sizeof l->holder, store_text(tx, r, 1));
    l->token = store_int(tx, r, 2);
    l->ttl_ms = store_int(tx, r, 3);
    l->acquired_at_ms = store_int(tx, r, 4);
    l->expires_at_ms = store_int(tx, r, 5);
    bool released = store_int(tx, r, 6) != 0;
    l->updated_at_ms = store_int(tx, r, 7);
    l->version = store_int(tx, r, 8);
    /* as of this operation's clock, which every guard below uses too */
    l->status = released                         ? RF_LEASE_RELEASED
                : l->expires_at_ms <= tx->now_ms ? RF_LEASE_EXPIRED
                                                 : RF_LEASE_HELD;
    RF_ASSERT(l->token >= 1 && l->version >= 1 && l->ttl_ms >= 1);
}

static const char SQL_LEASE_GET[] = "SELECT " LEASE_COLS " FROM leases WHERE name = $1";

static rf_err lease_read(struct rf_tx *tx, const char *name, struct rf_lease *out) {
    store_val p[1] = {SV_S(name)};
    rf_err err = store_query_one(tx, SQL_LEASE_GET, p, 1, read_lease, out);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_LEASE_NOT_FOUND : err;
}

/* A ttl_ms past the store's configured maximum (the field spec bounds it by
 * RF_LEASE_TTL_MS_LIMIT only): RF_ERR_INVALID, the maximum in the result
 * for the problem's detail (api.c: lease_explain). */
static rf_err ttl_check(struct rf_tx *tx, int64_t ttl_ms, struct rf_lease *out) {
    if (ttl_ms <= tx->db->opt.lease_max_ttl_ms) return RF_OK;
    out->ttl_max_ms = tx->db->opt.lease_max_ttl_ms;
    return RF_ERR_INVALID;
}

/* The one atomic take: insert the first incarnation, or take over a row
 * whose lease expired or was released, raising its token. No row back:
 * someone holds it. */
static const char SQL_ACQUIRE[] =
    "INSERT INTO leases (" LEASE_COLS ") VALUES ($1, $2, 1, $3, $4, $5, 0, $4, 1)"
    " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = leases.token + 1,"
    " ttl_ms = excluded.ttl_ms, acquired_at = excluded.acquired_at,"
    " expires_at = excluded.expires_at, released = 0, updated_at = excluded.updated_at,"
    " version = leases.version + 1"
    " WHERE leases.expires_at <= excluded.acquired_at OR leases.released = 1"
    " RETURNING " LEASE_COLS;

rf_err op_lease_acquire(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_lease_req *r = req;
    struct rf_lease *out = res;
    rf_err err = ttl_check(tx, r->ttl_ms, out);
    if (err) return err;
    store_val p[5] = {SV_S(r->name), SV_S(r->holder), SV_I(r->ttl_ms), SV_I(tx->now_ms),
                      SV_I(tx->now_ms + r->ttl_ms)};
    err = store_query_one(tx, SQL_ACQUIRE, p, 5, read_lease, out);
    if (err != RF_ERR_NOT_FOUND) {
        RF_ASSERT(err || (out->status == RF_LEASE_HELD && out->acquired_at_ms == tx->now_ms &&
                          strcmp(out->holder, r->holder) == 0));
        return err;
    }
    /* Held: the facts of the refusal, from the row the guard refused (the
     * statement locked it; READ COMMITTED reads its latest version). */
    err = lease_read(tx, r->name, out);
    if (err) return err == RF_ERR_LEASE_NOT_FOUND ? RF_ERR_RETRY : err;
    RF_ASSERT(out->status == RF_LEASE_HELD);
    char until[RF_TIME_TEXT_BYTES];
    rf_time_format(out->expires_at_ms, until);
    rf_strcpy(out->held_until, sizeof out->held_until, until);
    core_fact_status(tx, "held");
    return RF_ERR_LEASE_HELD;
}

/* A renew or release that found no current token: which answer. */
static rf_err not_current(struct rf_tx *tx, const char *name, struct rf_lease *out) {
    rf_err err = lease_read(tx, name, out);
    if (!err) core_fact_status(tx, out->status == RF_LEASE_RELEASED ? "released"
                                   : out->status == RF_LEASE_EXPIRED ? "expired"
                                                                     : "held");
    return err ? err : RF_ERR_STALE_LEASE;
}

/* The current token (not released) extends the lease from now; an expired
 * lease nobody took since is still its holder's (its token is the highest). */
static const char SQL_RENEW[] =
    "UPDATE leases SET ttl_ms = CASE WHEN $4 > 0 THEN $4 ELSE ttl_ms END,"
    " expires_at = $3 + CASE WHEN $4 > 0 THEN $4 ELSE ttl_ms END, updated_at = $3,"
    " version = version + 1 WHERE name = $1 AND token = $2 AND released = 0"
    " RETURNING " LEASE_COLS;

rf_err op_lease_renew(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_lease_req *r = req;
    struct rf_lease *out = res;
    rf_err err = r->ttl_ms ? ttl_check(tx, r->ttl_ms, out) : RF_OK;
    if (err) return err;
    store_val p[4] = {SV_S(r->name), SV_I(r->token), SV_I(tx->now_ms), SV_I(r->ttl_ms)};
    err = store_query_one(tx, SQL_RENEW, p, 4, read_lease, out);
    if (err == RF_ERR_NOT_FOUND) return not_current(tx, r->name, out);
    RF_ASSERT(err || (out->token == r->token && out->status == RF_LEASE_HELD));
    return err;
}

static const char SQL_RELEASE[] =
    "UPDATE leases SET released = 1, updated_at = $3, version = version + 1"
    " WHERE name = $1 AND token = $2 AND released = 0 RETURNING " LEASE_COLS;

rf_err op_lease_release(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_lease_req *r = req;
    struct rf_lease *out = res;
    store_val p[3] = {SV_S(r->name), SV_I(r->token), SV_I(tx->now_ms)};
    rf_err err = store_query_one(tx, SQL_RELEASE, p, 3, read_lease, out);
    if (err == RF_ERR_NOT_FOUND) return not_current(tx, r->name, out);
    RF_ASSERT(err || out->status == RF_LEASE_RELEASED);
    return err;
}

rf_err op_lease_get(struct rf_tx *tx, const void *req, void *res) {
    return lease_read(tx, ((const struct rf_lease_req *)req)->name, res);
}

/* FOR UPDATE: the acquire's UPSERT of a takeover waits for this
 * transaction, so no newer token commits before this one's effect does. */
static const char SQL_FENCE[] =
    "SELECT token, released FROM leases WHERE name = $1 FOR UPDATE";

rf_err lease_fence_tx(struct rf_tx *tx, const char *name, int64_t token) {
    RF_ASSERT(tx->write && name && token >= 1);
    struct store_rows *r = NULL;
    store_val p[1] = {SV_S(name)};
    rf_err err = store_query(tx, SQL_FENCE, p, 1, &r);
    if (err) return err;
    int rc = store_next(tx, r);
    int64_t current = rc > 0 ? store_int(tx, r, 0) : 0;
    bool released = rc > 0 && store_int(tx, r, 1) != 0;
    err = rc < 0 ? store_rows_err(tx, r) : RF_OK;
    store_close(tx, r);
    if (err) return err;
    RF_ASSERT(rc == 0 || current >= 1);
    return current == token && !released ? RF_OK : RF_ERR_STALE_LEASE;
}
