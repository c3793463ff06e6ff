/*
 * fuzz_route.c - path routing and id validation (http/routes.c, uri.c): the
 * first byte picks the method (low 3 bits) and whether the test routes are
 * served (bit 3); the rest is a request target, split at '?' as the HTTP
 * parser splits it. Runs the route match with its percent-decoding of each
 * parameter segment, the canonical path an Idempotency-Key is bound to,
 * and the query lookups a list makes.
 *
 * Invariants: a matched route is the method's; a valid parameter is an id
 * (no '/', no control character survives decoding); and the canonical path
 * routes to the same route with the same parameters, so one resource has
 * one canonical spelling and no spelling of one path names another route.
 */
#include <stdbool.h>

#include "base/ids.h"
#include "fuzz/fuzz.h"
#include "http/routes.h"
#include "http/uri.h"

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
                                      "get"};

static void check_match(const char *method, const struct rf_match *m) {
    FUZZ_CHECK(m->n_params >= 0 && m->n_params <= RF_HTTP_PATH_PARAMS_MAX);
    if (m->kind == RF_MATCH_NO_METHOD) FUZZ_CHECK(m->allow[0] != '\0');
    if (m->kind != RF_MATCH_OK) return;
    FUZZ_CHECK(m->route && m->route == &rf_routes[m->route_index]);
    FUZZ_CHECK(strcmp(m->route->method, method) == 0);
    for (int i = 0; i < m->n_params; i++) {
        const struct rf_path_param *pp = &m->params[i];
        FUZZ_CHECK(pp->valid ? rf_id_valid(pp->value) && !strchr(pp->value, '/')
                             : pp->value[0] == '\0');
    }
}

/* The canonical spelling of a matched path routes back to itself. */
static void check_canonical(const char *method, const char *path, bool hooks,
                            const struct rf_match *m) {
    struct rf_http_req req = {.method = method, .path = path, .match = m};
    char canon[RF_HTTP_PATH_BYTES_MAX + 1];
    rf_route_path(&req, canon, sizeof canon);
    bool all_valid = m->kind == RF_MATCH_OK;
    for (int i = 0; all_valid && i < m->n_params; i++) all_valid = m->params[i].valid;
    if (!all_valid) {
        FUZZ_CHECK(strcmp(canon, path) == 0);
        return;
    }
    struct rf_match again;
    rf_route_match(method, canon, hooks, &again);
    if (again.kind != RF_MATCH_OK || again.route_index != m->route_index)
        fprintf(stderr, "%s %s -> canonical %s routes elsewhere\n", method, path, canon);
    FUZZ_CHECK(again.kind == RF_MATCH_OK && again.route_index == m->route_index);
    FUZZ_CHECK(again.n_params == m->n_params);
    for (int i = 0; i < m->n_params; i++)
        FUZZ_CHECK(strcmp(again.params[i].value, m->params[i].value) == 0);
}

static void query_lookups(const char *query) {
    static const char *const names[] = {"after", "limit", "status", "currency", ""};
    char out[RF_CURSOR_BYTES];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int rc = rf_uri_query_get(query, names[i], out, sizeof out);
        FUZZ_CHECK(rc >= -1 && rc <= 1);
        if (rc == 1) FUZZ_CHECK(strlen(out) < sizeof out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const char *method = methods[data[0] & 7];
    bool hooks = (data[0] & 8) != 0;
    char *target = fuzz_cstr(data + 1, size - 1);
    char *q = strchr(target, '?');
    const char *query = "";
    if (q) {
        *q = '\0';
        query = q + 1;
    }
    struct rf_match m;
    rf_route_match(method, target, hooks, &m);
    check_match(method, &m);
    if (strlen(target) <= RF_HTTP_PATH_BYTES_MAX) check_canonical(method, target, hooks, &m);
    char seg[RF_ID_BYTES];
    rf_uri_decode(target, strlen(target), true, seg, sizeof seg, NULL);
    query_lookups(query);
    free(target);
    return 0;
}
