/*
 * pg_cluster.h - a PostgreSQL cluster of a test's own (scripts/pg.sh), for
 * the tests that stop, freeze or restart the database under a running
 * `racefree serve`: the shared cluster of RF_TEST_DB is never touched.
 * Needs RF_SOURCE_DIR (ctest sets it) and PostgreSQL's server binaries.
 */
#ifndef RF_PG_CLUSTER_H
#define RF_PG_CLUSTER_H

#include "http_env.h"

struct pg_cluster {
    char dir[128];
    char url[RF_T_URL_BYTES];
    bool started;
    bool durable;
};

/* scripts/pg.sh start in a fresh /tmp/rf-<prefix>-<hex>; fails the test
 * when it cannot. durable: PostgreSQL's defaults (RF_PG_DURABLE=1), so a
 * commit it answered survives its crash; else pg.sh's fast settings
 * (synchronous_commit off: an immediate stop may lose answered commits). */
void pg_cluster_start(struct pg_cluster *p, const char *prefix, bool durable);
/* scripts/pg.sh down (mode "fast" or "immediate") and up: PostgreSQL
 * stopped, its data kept, and started again on the same port. */
void pg_cluster_down(struct pg_cluster *p, const char *mode);
void pg_cluster_up(struct pg_cluster *p);
/* scripts/pg.sh stop: stops it and removes the directory (for teardown:
 * reports a failure on stderr, never fails the test). */
void pg_cluster_stop(struct pg_cluster *p);
/* e on the cluster: admin, service and readonly keys made with the CLI, and
 * a server started with args (NULL-terminated). env_stop is not for it
 * (the database is the cluster's): stop the server with rf_server_stop. */
void pg_cluster_env_start(struct pg_cluster *p, struct env *e, const char *const *args);

#endif
