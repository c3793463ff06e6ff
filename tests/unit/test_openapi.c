/*
 * test_openapi.c - docs/openapi.yaml and the route table never drift:
 * every non-hidden route (method + pattern) is in the document with the
 * same roles (x-roles), every operation in the document is served by the
 * table, and hidden (test hook) routes stay undocumented; the problem
 * `code` enum lists exactly the codes of the error list (RF_ERRORS in
 * racefree_errors.h, "ok" aside).
 *
 * The YAML is read line by line, as the document is written: under the
 * top-level `paths:`, a path is a key indented two spaces ("  /v1/keys:"),
 * an operation a method key indented four ("    get:"), and its roles a
 * line indented six ("      x-roles: [admin, service]"). The code enum is
 * the flow list ("enum: [a, b,\n c]") right after the one "code:" key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "http/routes.h"

#define OPS_MAX 256
#define CODES_MAX 256
#define LINE_BYTES 1024

struct doc_op {
    char method[16];   /* upper case */
    char path[256];
    unsigned roles;    /* from x-roles */
    bool has_roles;
};

static struct doc_op ops[OPS_MAX];
static int n_ops;
static char codes[CODES_MAX][64]; /* the Problem schema's code enum */
static int n_codes;

static const char *doc_path(void) {
    static char path[1024];
    const char *dir = getenv("RF_SOURCE_DIR");
#ifdef RF_SOURCE_DIR_DEFAULT
    if (!dir || !*dir) dir = RF_SOURCE_DIR_DEFAULT;
#endif
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/docs/openapi.yaml", dir);
    return path;
}

static int indent_of(const char *line) {
    int n = 0;
    while (line[n] == ' ') n++;
    return n;
}

/* "[admin, service]" -> role bits. */
static unsigned parse_roles(const char *text) {
    unsigned roles = 0;
    static const struct { const char *name; unsigned bit; } names[] = {
        {"admin", RF_ROLE_ADMIN}, {"service", RF_ROLE_SERVICE},
        {"worker", RF_ROLE_WORKER}, {"readonly", RF_ROLE_READONLY}};
    const char *open = strchr(text, '['), *close = strchr(text, ']');
    assert_non_null(open);
    assert_non_null(close);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *hit = strstr(open, names[i].name);
        if (hit && hit < close) roles |= names[i].bit;
    }
    return roles;
}

static void key_of(const char *line, int indent, char *out, size_t cap) {
    const char *s = line + indent;
    size_t n = strcspn(s, ":");
    if (n > 0 && (s[0] == '"' || s[0] == '\'')) {
        s++;
        n -= 2;
    }
    snprintf(out, cap, "%.*s", (int)n, s);
}

static bool is_method(const char *key) {
    static const char *const m[] = {"get", "put", "post", "delete", "patch", "head", "options"};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (strcmp(key, m[i]) == 0) return true;
    return false;
}

/* One line inside `paths:`. */
static void paths_line(const char *line, char *cur_path, size_t cap) {
    int ind = indent_of(line);
    char key[256];
    if (ind == 2 && line[2] != '#') {
        key_of(line, 2, cur_path, cap);
        return;
    }
    if (ind == 4 && cur_path[0]) {
        key_of(line, 4, key, sizeof key);
        if (!is_method(key)) return;
        assert_true(n_ops < OPS_MAX);
        struct doc_op *op = &ops[n_ops++];
        for (size_t i = 0; key[i] && i + 1 < sizeof op->method; i++)
            op->method[i] = (char)(key[i] - 'a' + 'A');
        snprintf(op->path, sizeof op->path, "%s", cur_path);
        return;
    }
    if (ind == 6 && n_ops > 0 && strncmp(line + 6, "x-roles:", 8) == 0) {
        ops[n_ops - 1].roles = parse_roles(line + 14);
        ops[n_ops - 1].has_roles = true;
    }
}

/* Scans a line for the code enum: after "code:", the "enum: [" list up to
 * its "]" (which may span lines). *state: 0 before, 1 after "code:", 2 in
 * the list, 3 done. */
static void codes_line(const char *line, int *state) {
    const char *s = line + indent_of(line);
    if (*state == 0 && strcmp(s, "code:") == 0) *state = 1;
    if (*state == 1 && strncmp(s, "enum: [", 7) == 0) {
        *state = 2;
        s += 7;
    }
    if (*state != 2) return;
    while (*s && *state == 2) {
        size_t n = strcspn(s, ", ]");
        if (n > 0) {
            assert_true(n_codes < CODES_MAX && n < sizeof codes[0]);
            snprintf(codes[n_codes++], sizeof codes[0], "%.*s", (int)n, s);
        }
        if (s[n] == ']') *state = 3;
        s += n + (s[n] != '\0');
    }
}

static int setup(void **state) {
    (void)state;
    FILE *f = fopen(doc_path(), "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", doc_path());
        return -1;
    }
    char line[LINE_BYTES], cur_path[256] = "";
    bool in_paths = false;
    int code_state = 0;
    n_ops = 0;
    n_codes = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        codes_line(line, &code_state);
        if (line[0] && line[0] != ' ' && line[0] != '#') {
            in_paths = strcmp(line, "paths:") == 0;
            continue;
        }
        if (in_paths && line[0]) paths_line(line, cur_path, sizeof cur_path);
    }
    fclose(f);
    return n_ops > 0 && code_state == 3 && n_codes > 0 ? 0 : -1;
}

static const struct doc_op *find_op(const char *method, const char *path) {
    for (int i = 0; i < n_ops; i++)
        if (strcmp(ops[i].method, method) == 0 && strcmp(ops[i].path, path) == 0) return &ops[i];
    return NULL;
}

static void test_every_route_documented(void **state) {
    (void)state;
    for (size_t i = 0; i < rf_routes_count; i++) {
        const struct rf_route *r = &rf_routes[i];
        const struct doc_op *op = find_op(r->method, r->pattern);
        if (r->hidden) {
            if (op) fail_msg("hidden route %s %s is documented", r->method, r->pattern);
            continue;
        }
        if (!op) fail_msg("route %s %s is not in docs/openapi.yaml", r->method, r->pattern);
        if (!op->has_roles) fail_msg("%s %s has no x-roles", r->method, r->pattern);
        if (op->roles != r->roles)
            fail_msg("%s %s: x-roles 0x%x, route table 0x%x", r->method, r->pattern, op->roles,
                     r->roles);
    }
}

static void test_every_documented_op_served(void **state) {
    (void)state;
    for (int i = 0; i < n_ops; i++) {
        bool served = false;
        for (size_t j = 0; j < rf_routes_count && !served; j++)
            served = !rf_routes[j].hidden && strcmp(rf_routes[j].method, ops[i].method) == 0 &&
                     strcmp(rf_routes[j].pattern, ops[i].path) == 0;
        if (!served)
            fail_msg("docs/openapi.yaml has %s %s, which no route serves", ops[i].method,
                     ops[i].path);
    }
}

static bool doc_has_code(const char *code) {
    for (int i = 0; i < n_codes; i++)
        if (strcmp(codes[i], code) == 0) return true;
    return false;
}

static void test_error_codes_documented(void **state) {
    (void)state;
    for (int e = RF_OK + 1; e < RF_ERR__COUNT; e++)
        if (!doc_has_code(rf_err_code((rf_err)e)))
            fail_msg("code %s is not in docs/openapi.yaml's code enum", rf_err_code((rf_err)e));
    for (int i = 0; i < n_codes; i++) {
        rf_err e;
        if (!rf_err_parse(codes[i], &e) || e == RF_OK)
            fail_msg("docs/openapi.yaml lists code %s, which is not in RF_ERRORS", codes[i]);
        for (int j = 0; j < i; j++)
            if (strcmp(codes[i], codes[j]) == 0) fail_msg("%s is listed twice", codes[i]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_documented),
        cmocka_unit_test(test_every_documented_op_served),
        cmocka_unit_test(test_error_codes_documented),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
