/*
 * http_env.h - the setting of one black-box test: a test database, a running
 * `racefree serve`, one API key per role, and a random id prefix so tests on
 * the shared PostgreSQL database never see each other's rows.
 */
#ifndef RF_HTTP_ENV_H
#define RF_HTTP_ENV_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testlib/rf_testassert.h"
#include "testlib/rf_testjson.h"
#include "testlib/rf_testlib.h"

struct env {
    char db[RF_T_URL_BYTES];
    struct rf_server srv;
    bool running;
    char admin[RF_T_KEY_BYTES];
    char service[RF_T_KEY_BYTES];
    char worker[RF_T_KEY_BYTES];
    char readonly[RF_T_KEY_BYTES];
};

/* A fresh test database (rf_test_db_url), keys for every role made with the
 * CLI, and a server (with --test-hooks when hooks). Fails the test on error. */
void env_start(struct env *e, bool hooks, const char *const *extra_args);
/* Stops the server (it must exit 0) and removes the test database. */
void env_stop(struct env *e);

/* "/v1/users/<user>/entitlements/<key>" */
void ent_path(char *out, size_t cap, const char *user, const char *key);

/* One request to the env's server with an API key (may be NULL) and
 * optional extra headers (NULL-terminated, may be NULL). */
void env_req(struct env *e, const char *method, const char *path, const char *api_key,
             const char *body, const char *const *headers, struct rf_t_resp *out);

/* Test hooks (admin key; server started with hooks). */
void hook_op_delay(struct env *e, int ms);
void hook_fail_next(struct env *e, const char *op, const char *code);

/* The ETag header as a version ("\"7\"" -> 7), or -1. */
int64_t etag_version(const struct rf_t_resp *r);

/* GET list ?status=all for a user, following cursors; returns the number of
 * entitlements (and the last page's JSON "data" ids in ids_out when given). */
int list_all_count(struct env *e, const char *user, const char *status);

/* A unique id: "<prefix>-<16 hex>". */
#define RID(buf, prefix) rf_rand_id((prefix), (buf), sizeof(buf))

#endif
