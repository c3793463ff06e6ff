/*
 * http_env.c - see http_env.h.
 */
#include "http_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void env_start(struct env *e, bool hooks, const char *const *extra_args)
{
    memset(e, 0, sizeof *e);
    if (rf_test_db_url(e->db, sizeof e->db) != 0)
        fail_msg("no test database");
    struct {
        const char *role;
        char *out;
    } roles[] = {{"admin", e->admin},
                 {"service", e->service},
                 {"worker", e->worker},
                 {"readonly", e->readonly}};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        char name[64];
        rf_rand_id(roles[i].role, name, sizeof name);
        if (rf_key_create_cli(e->db, roles[i].role, name, roles[i].out) != 0)
            fail_msg("keys create --role %s failed", roles[i].role);
    }
    const char *args[24];
    int n = 0;
    if (hooks)
        args[n++] = "--test-hooks";
    for (int i = 0; extra_args && extra_args[i] && n < 23; i++)
        args[n++] = extra_args[i];
    args[n] = NULL;
    if (rf_server_start(e->db, args, &e->srv) != 0)
        fail_msg("racefree serve did not start on %s", e->db);
    e->running = true;
}

void env_stop(struct env *e)
{
    if (e->running) {
        e->running = false;
        int rc = rf_server_stop(&e->srv, 0);
        if (rc != 0)
            fail_msg("racefree serve did not exit 0 on SIGTERM (got %d)", rc);
    }
    rf_test_db_cleanup(e->db);
}

void ent_path(char *out, size_t cap, const char *user, const char *key)
{
    snprintf(out, cap, "/v1/users/%s/entitlements/%s", user, key);
}

void env_req(struct env *e, const char *method, const char *path, const char *api_key,
             const char *body, const char *const *headers, struct rf_t_resp *out)
{
    rf_req(e->srv.port, method, path, api_key, body, headers, out);
}

void hook_op_delay(struct env *e, int ms)
{
    char body[64];
    snprintf(body, sizeof body, "{\"ms\": %d}", ms);
    struct rf_t_resp r;
    env_req(e, "POST", "/v1/_test/op-delay", e->admin, body, NULL, &r);
    if (r.status < 200 || r.status > 299)
        fail_msg("POST /v1/_test/op-delay: HTTP %d %s", r.status, r.body ? r.body : r.errmsg);
    rf_resp_free(&r);
}

void hook_fail_next(struct env *e, const char *op, const char *code)
{
    char body[160];
    snprintf(body, sizeof body, "{\"op\": \"%s\", \"code\": \"%s\"}", op, code);
    struct rf_t_resp r;
    env_req(e, "POST", "/v1/_test/fail-next", e->admin, body, NULL, &r);
    if (r.status < 200 || r.status > 299)
        fail_msg("POST /v1/_test/fail-next: HTTP %d %s", r.status, r.body ? r.body : r.errmsg);
    rf_resp_free(&r);
}

int64_t etag_version(const struct rf_t_resp *r)
{
    const char *v = rf_resp_header(r, "ETag");
    if (!v)
        return -1;
    if (strncmp(v, "W/", 2) == 0)
        return -1;  /* versions are strong validators */
    long long n;
    char tail;
    if (sscanf(v, "\"%lld\"%c", &n, &tail) != 2 || tail != '"')
        return -1;
    return n;
}

int list_all_count(struct env *e, const char *user, const char *status)
{
    char after[512] = "";
    int total = 0;
    for (int page = 0; page < 100; page++) {
        char path[1200];
        snprintf(path, sizeof path, "/v1/users/%s/entitlements?status=%s&limit=500%s%s", user,
                 status, after[0] ? "&after=" : "", after);
        struct rf_t_resp r;
        env_req(e, "GET", path, e->admin, NULL, NULL, &r);
        RF_ASSERT_STATUS(&r, 200);
        json_t *j = rf_resp_json(&r);
        json_t *data = json_object_get(j, "data");
        if (!json_is_array(data))
            fail_msg("GET %s: no data array: %s", path, r.body);
        json_t *next = json_object_get(j, "next");
        if (!next)
            fail_msg("GET %s: no next member: %s", path, r.body);
        total += (int)json_array_size(data);
        bool more = json_is_string(next) && json_string_length(next) > 0;
        if (more)
            snprintf(after, sizeof after, "%s", json_string_value(next));
        json_decref(j);
        rf_resp_free(&r);
        if (!more)
            return total;
    }
    fail_msg("GET list for %s: more than 100 pages", user);
    return -1;
}
