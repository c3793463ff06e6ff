/*
 * migrate.c - applies the embedded numbered migrations (cmake/embed_sql.cmake)
 * in one transaction, records them in schema_version, and refuses a store
 * whose schema is newer than this binary. Two processes migrating at once are
 * serialized by the write lock (SQLite) or an advisory lock (PostgreSQL).
 */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/log.h"
#include "store/store.h"

extern const struct store_migration store_migrations_sqlite[];
extern const struct store_migration store_migrations_postgres[];

static const struct store_migration *migrations_for(enum store_backend be) {
    return be == STORE_SQLITE ? store_migrations_sqlite : store_migrations_postgres;
}

int store_schema_latest(enum store_backend be) {
    const struct store_migration *m = migrations_for(be);
    int latest = 0;
    for (int i = 0; m[i].sql; i++) {
        RF_ASSERT(m[i].version == i + 1); /* numbered 001, 002, ... without gaps */
        latest = m[i].version;
    }
    return latest;
}

static const char SQL_VERSION_TABLE[] =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";
static const char SQL_VERSION_MAX[] = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
static const char SQL_VERSION_INSERT[] =
    "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)";
static const char SQL_PG_LOCK[] = "SELECT pg_advisory_xact_lock(7277261001)";
/* A schema racefree was told to live in (the connection's search_path is
 * then exactly that name: store/postgres.c) is created when missing.
 * Under the advisory lock, so two racefree processes never both create it;
 * an existing schema needs no CREATE privilege on the database. */
static const char SQL_PG_SCHEMA[] =
    "DO $$ BEGIN"
    " IF current_schema() IS NULL AND current_setting('search_path') ~ '^[a-z_][a-z0-9_]*$'"
    " THEN EXECUTE format('CREATE SCHEMA %I', current_setting('search_path'));"
    " END IF; END $$";

static rf_err current_version(const struct store_ops *ops, struct store_conn *c, int *out) {
    struct store_rows *r = NULL;
    rf_err err = ops->query(c, SQL_VERSION_MAX, NULL, 0, &r);
    if (err) return err;
    int rc = ops->rows_next(r);
    if (rc > 0) *out = (int)ops->rows_int(r, 0);
    else err = rc < 0 ? ops->rows_err(r) : RF_ERR_INTERNAL;
    ops->rows_close(r);
    return err;
}

static rf_err apply_pending(const struct store_ops *ops, struct store_conn *c, int *version) {
    const struct store_migration *m = migrations_for(ops->backend);
    int latest = store_schema_latest(ops->backend);
    if (*version > latest) return RF_ERR_SCHEMA_TOO_NEW;
    for (int i = *version; i < latest; i++) {
        rf_err err = ops->exec_script(c, m[i].sql);
        if (err) return err;
        store_val p[3] = {SV_I(m[i].version), SV_S(m[i].name), SV_I(rf_now_ms())};
        err = ops->exec(c, SQL_VERSION_INSERT, p, 3, NULL);
        if (err) return err;
        *version = m[i].version;
    }
    return RF_OK;
}

rf_err store_migrate(const struct store_ops *ops, struct store_conn *c, int *version_out) {
    rf_err err = ops->begin(c, true);
    if (err) return err;
    if (ops->backend == STORE_POSTGRES) err = ops->exec(c, SQL_PG_LOCK, NULL, 0, NULL);
    if (!err && ops->backend == STORE_POSTGRES) err = ops->exec_script(c, SQL_PG_SCHEMA);
    if (!err) err = ops->exec(c, SQL_VERSION_TABLE, NULL, 0, NULL);
    int version = 0, from = 0;
    if (!err) err = current_version(ops, c, &version);
    from = version;
    if (!err) err = apply_pending(ops, c, &version);
    if (!err) err = ops->commit(c);
    if (err) {
        ops->rollback(c);
        return err;
    }
    if (version != from) {
        struct rf_log_kv kv[2] = {RF_KV_INT("from_version", from),
                                  RF_KV_INT("to_version", version)};
        rf_log_kv(RF_LOG_INFO, kv, 2, "migrations applied");
    }
    if (version_out) *version_out = version;
    return RF_OK;
}

rf_err store_schema_check(const struct store_ops *ops, struct store_conn *c) {
    int version = 0;
    rf_err err = current_version(ops, c, &version);
    if (err) return err;
    int latest = store_schema_latest(ops->backend);
    if (version > latest) return RF_ERR_SCHEMA_TOO_NEW;
    return version == latest ? RF_OK : RF_ERR_INVALID;
}
