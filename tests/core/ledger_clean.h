/*
 * ledger_clean.h - a cmocka per-test setup for core tests that check the
 * ledger: the store is clean BEFORE the test runs, so a check that fails at
 * the test's end is blamed on that test, not on an earlier one that left the
 * store broken (the database is this process's own; its tests run one after
 * another). Include after cmocka.h, with the test's `static rf *g_db`.
 */
#ifndef RF_TESTS_CORE_LEDGER_CLEAN_H
#define RF_TESTS_CORE_LEDGER_CLEAN_H

#include "racefree.h"

static inline int ledger_clean_before(rf *db) {
    struct rf_ledger_check c;
    rf_err err = rf_ledger_check(db, &c);
    if (err == RF_OK && c.clean) return 0;
    print_error("ledger broken BEFORE this test ran (%s): an earlier test in this process broke"
                " it\n", err ? rf_err_code(err) : "not clean");
    return -1;
}

#endif
