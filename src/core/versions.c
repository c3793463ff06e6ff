/*
 * versions.c - versions that never repeat for a natural key.
 *
 * A row that is deleted and created again would start over at version 1,
 * so a stale If-Match from the old incarnation would match the new one (a
 * stale unbind removing a newer binding). version_counters (migration 004)
 * keeps the highest version ever given out per natural key; a creation takes
 * the next one here. The race is check-then-insert between two creations,
 * or between a creation and a delete: the counter is ONE atomic upsert on
 * the counter's PRIMARY KEY, whose row lock (held to the end of the
 * caller's transaction) orders every creation of that key, and whose
 * RETURNING is the version. Nothing is read first to decide it.
 */
#include "base/assert.h"
#include "core/core.h"

/* max(last_version + 1, floor + 1, $4): the floor is the resource's row
 * ('' scope and key), set once by the migration for stores already in use.
 * (The WHERE lets SQLite parse INSERT ... SELECT ... ON CONFLICT.) */
static const char SQL_NEXT[] =
    "INSERT INTO version_counters (resource, scope, natural_key, last_version)"
    " SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT),"
    " CASE WHEN f.v >= CAST($4 AS BIGINT) THEN f.v + 1 ELSE CAST($4 AS BIGINT) END"
    " FROM (SELECT COALESCE(MAX(last_version), 0) AS v FROM version_counters"
    " WHERE resource = $1 AND scope = '' AND natural_key = '') AS f WHERE 1 = 1"
    " ON CONFLICT (resource, scope, natural_key) DO UPDATE SET last_version ="
    " CASE WHEN version_counters.last_version >= excluded.last_version"
    " THEN version_counters.last_version + 1 ELSE excluded.last_version END"
    " RETURNING last_version";

static void read_version(struct rf_tx *tx, struct store_rows *r, void *out) {
    *(int64_t *)out = store_int(tx, r, 0);
}

rf_err core_version_next(struct rf_tx *tx, const char *resource, const char *scope,
                         const char *key, int64_t at_least, int64_t *out) {
    RF_ASSERT(tx && tx->write && resource && scope && *scope && key && *key && out);
    RF_ASSERT(at_least >= 1);
    store_val p[4] = {SV_S(resource), SV_S(scope), SV_S(key), SV_I(at_least)};
    *out = 0;
    rf_err err = store_query_one(tx, SQL_NEXT, p, 4, read_version, out);
    RF_ASSERT(err != RF_ERR_NOT_FOUND); /* an upsert always returns its row */
    RF_ASSERT(err || *out >= at_least);
    return err;
}
