/*
 * tamper.c - see tamper.h. The connection is the store's own driver
 * (store_for_url), opened apart from any rf handle, so nothing racefree
 * guards sees the change happen.
 */
#include "core/tamper.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/limits.h"
#include "store/store.h"
#include "testlib/rf_testlib.h"

rf_err tamper_try(const char *url, const char *sql, const char *a, const char *b,
                  int64_t *rows_out) {
    const struct store_ops *ops = store_for_url(url);
    struct store_conn *c = NULL;
    /* a test's bulk fill may take longer than a request's bound */
    struct rf_options opt = {.pg_timeout_ms = RF_PG_TIMEOUT_MS_MAX};
    assert_non_null(ops);
    assert_int_equal(ops->connect(url, &opt, false, &c), RF_OK);
    store_val p[2] = {SV_S(a), SV_S(b)};
    int64_t rows = 0;
    rf_err err = ops->exec(c, sql, p, a ? (b ? 2 : 1) : 0, &rows);
    ops->disconnect(c);
    if (rows_out) *rows_out = rows;
    return err;
}

void tamper(const char *url, const char *sql, const char *a, const char *b, int64_t rows) {
    int64_t changed = -1;
    assert_int_equal(tamper_try(url, sql, a, b, &changed), RF_OK);
    if (rows >= 0) assert_int_equal(changed, rows);
}

int reconcile_run(const char *url, char *out, size_t cap) {
    const char *args[] = {"reconcile", "--db", url, NULL};
    char err[4096];
    return rf_cli_run(args, out, cap, err, sizeof err, 0);
}

static const struct reconcile_want *wanted(const struct reconcile_want *want, int n,
                                           const char *check) {
    for (int i = 0; i < n; i++)
        if (strcmp(want[i].check, check) == 0) return &want[i];
    return NULL;
}

static bool lists_row(const struct rf_reconcile_check *c, const char *row) {
    char cells[2 * RF_RECONCILE_CELL_CHARS_MAX + 2];
    for (int i = 0; i < c->n_examples; i++) {
        snprintf(cells, sizeof cells, "%s%s%s", c->cells[i][0], c->cells[i][1] ? " " : "",
                 c->cells[i][1] ? c->cells[i][1] : "");
        if (strcmp(cells, row) == 0) return true;
    }
    return false;
}

static void check_library(const struct rf_reconcile *r, const struct reconcile_want *want,
                          int n) {
    for (int i = 0; i < r->n; i++) {
        const struct rf_reconcile_check *c = &r->checks[i];
        const struct reconcile_want *w = wanted(want, n, c->name);
        int64_t expected = w ? w->violations : 0;
        if (c->violations != expected)
            fail_msg("reconcile: %s has %lld violations, want %lld (first: %s %s)", c->name,
                     (long long)c->violations, (long long)expected,
                     c->n_examples ? c->cells[0][0] : "-",
                     c->n_examples && c->cells[0][1] ? c->cells[0][1] : "");
        for (int j = 0; w && j < 4 && w->rows[j]; j++)
            if (!lists_row(c, w->rows[j]))
                fail_msg("reconcile: %s does not list row '%s'", c->name, w->rows[j]);
    }
    for (int i = 0; i < n; i++) {
        bool found = false;
        for (int j = 0; j < r->n; j++) found |= strcmp(r->checks[j].name, want[i].check) == 0;
        if (!found) fail_msg("reconcile has no check named %s", want[i].check);
    }
    assert_int_equal(r->clean, n == 0);
}

void reconcile_expect(rf *db, const char *url, const struct reconcile_want *want, int n) {
    struct rf_reconcile r;
    assert_int_equal(rf_reconcile(db, NULL, &r), RF_OK);
    check_library(&r, want, n);
    char *lib = rf_reconcile_json(&r);
    assert_non_null(lib);
    rf_reconcile_clear(&r);
    if (n == 0) { /* clean: the command's exit 0 is test_cli's, each process costs */
        free(lib);
        return;
    }
    static char out[256 * 1024];
    char err[4096];
    const char *args[] = {"reconcile", "--json", "--db", url, NULL};
    int rc = rf_cli_run(args, out, sizeof out, err, sizeof err, 0);
    if (rc != (n ? 1 : 0)) fail_msg("racefree reconcile exited %d: %s %s", rc, out, err);
    /* the same snapshot-independent document: nothing wrote in between */
    size_t len = strlen(out);
    if (len && out[len - 1] == '\n') out[len - 1] = '\0';
    if (strcmp(out, lib) != 0) fail_msg("CLI printed\n%s\nlibrary made\n%s", out, lib);
    free(lib);
}

void reconcile_reports(rf *db, const char *url, const char *check, int64_t violations) {
    reconcile_expect(db, url, &(struct reconcile_want){check, violations, {NULL}}, 1);
}
