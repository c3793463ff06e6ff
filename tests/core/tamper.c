/*
 * tamper.c - see tamper.h. The connection is the store's own driver
 * (store_for_url), opened apart from any rf handle, so nothing racefree
 * guards sees the change happen.
 */
#include "core/tamper.h"

#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>

#include "store/store.h"
#include "testlib/rf_testlib.h"

rf_err tamper_try(const char *url, const char *sql, const char *a, const char *b,
                  int64_t *rows_out) {
    const struct store_ops *ops = store_for_url(url);
    struct store_conn *c = NULL;
    struct rf_options opt = {0};
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

void reconcile_reports(const char *url, const char *line) {
    char out[4096];
    assert_int_equal(reconcile_run(url, out, sizeof out), 1);
    if (!strstr(out, line)) fail_msg("reconcile printed:\n%s", out);
}
