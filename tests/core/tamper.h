/*
 * tamper.h - the shapes the checker tests share: change a store behind
 * racefree's back (plain SQL on a connection of its own, as a bad migration,
 * a manual fix or a bug in another writer would) and ask `racefree
 * reconcile` what it sees.
 */
#ifndef RF_TESTS_CORE_TAMPER_H
#define RF_TESTS_CORE_TAMPER_H

#include <stddef.h>
#include <stdint.h>

#include "racefree.h"

/* Runs sql with $1 = a and $2 = b (each NULL: fewer parameters) and returns
 * the store's answer; *rows_out (if given) the rows it changed. */
rf_err tamper_try(const char *url, const char *sql, const char *a, const char *b,
                  int64_t *rows_out);
/* The same, and fails the test unless it ran and changed exactly rows rows
 * (rows < 0: any number, for a statement that reports none). */
void tamper(const char *url, const char *sql, const char *a, const char *b, int64_t rows);

/* `racefree reconcile --db url`: its exit code, stdout in out. */
int reconcile_run(const char *url, char *out, size_t cap);

/* What reconcile must find for one check: its name, its count of
 * violations, and example rows it must list ("a" or "a b": the cells joined
 * by a space; NULL-terminated, may be empty). */
struct reconcile_want {
    const char *check;
    int64_t violations;
    const char *rows[4];
};
/* Fails the test unless rf_reconcile(db) reports exactly want[0..n) (every
 * other check clean) and, when n > 0, `racefree reconcile --json --db url`
 * exits 1 printing the library's document (n == 0 skips the process: a
 * clean store's exit 0 is proven by test_cli and the HTTP tests). */
void reconcile_expect(rf *db, const char *url, const struct reconcile_want *want, int n);
/* reconcile_expect with one check and no rows named. */
void reconcile_reports(rf *db, const char *url, const char *check, int64_t violations);

#endif
