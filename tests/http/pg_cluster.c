/*
 * pg_cluster.c - see pg_cluster.h.
 */
#include "pg_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs `scripts/pg.sh verb dir [mode]`; its output into out. Returns the
 * exit status. */
static int pg_sh(const struct pg_cluster *p, const char *verb, const char *mode, char *out,
                 size_t cap)
{
    const char *src = getenv("RF_SOURCE_DIR");
    if (!src)
        fail_msg("RF_SOURCE_DIR is not set");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "RF_PG_DURABLE=%d '%s/scripts/pg.sh' %s '%s' %s 2>&1",
             p->durable ? 1 : 0, src, verb, p->dir, mode ? mode : "");
    FILE *f = popen(cmd, "r");
    if (!f)
        fail_msg("popen %s", cmd);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    return pclose(f);
}

void pg_cluster_start(struct pg_cluster *p, const char *prefix, bool durable)
{
    char id[48], out[8192];
    memset(p, 0, sizeof *p);
    p->durable = durable;
    RID(id, prefix);
    snprintf(p->dir, sizeof p->dir, "/tmp/rf-%s", id);
    int rc = pg_sh(p, "start", NULL, out, sizeof out);
    if (rc != 0)
        fail_msg("scripts/pg.sh start failed (%d): %s", rc, out);
    p->started = true;
    assert_int_equal(rf_last_line(out, p->url, sizeof p->url), 0);
    assert_true(strncmp(p->url, "postgresql://", 13) == 0);
}

void pg_cluster_down(struct pg_cluster *p, const char *mode)
{
    char out[8192];
    int rc = pg_sh(p, "down", mode, out, sizeof out);
    if (rc != 0)
        fail_msg("scripts/pg.sh down %s failed (%d): %s", mode, rc, out);
}

void pg_cluster_up(struct pg_cluster *p)
{
    char out[8192];
    int rc = pg_sh(p, "up", NULL, out, sizeof out);
    if (rc != 0)
        fail_msg("scripts/pg.sh up failed (%d): %s", rc, out);
}

void pg_cluster_stop(struct pg_cluster *p)
{
    char out[4096];
    if (p->started && pg_sh(p, "stop", NULL, out, sizeof out) != 0)
        fprintf(stderr, "pg_cluster: scripts/pg.sh stop %s: %s\n", p->dir, out);
    p->started = false;
}

void pg_cluster_env_start(struct pg_cluster *p, struct env *e, const char *const *args)
{
    memset(e, 0, sizeof *e);
    struct {
        const char *role;
        char *out;
    } roles[] = {{"admin", e->admin}, {"service", e->service}, {"readonly", e->readonly}};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (rf_key_create_cli(p->url, roles[i].role, NULL, roles[i].out) != 0)
            fail_msg("keys create --role %s failed", roles[i].role);
    snprintf(e->db, sizeof e->db, "%s", p->url);
    if (rf_server_start(p->url, args, &e->srv) != 0)
        fail_msg("racefree serve did not start on %s", p->url);
    e->running = true;
}
