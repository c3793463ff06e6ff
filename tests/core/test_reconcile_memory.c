/*
 * test_reconcile_memory.c - rf_reconcile in bounded memory on a store of
 * 200,000 entries (100,000 transfers over 1,001 accounts), written with
 * plain SQL in a store of its own (no HTTP, no library operation per row).
 * A file of its own: filling the store takes seconds on PostgreSQL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/limits.h"
#include "core/tamper.h"
#include "racefree.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"

/* The peak resident size, in KiB, of `racefree reconcile --db url` run as
 * a child of its own (wait4: that child's usage alone); its exit code in
 * *rc. Output goes to /dev/null. */
static long reconcile_peak_kib(const char *url, int *rc) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
        }
        /* Under ASan, freed memory waits in its quarantine (256 MiB) before
         * reuse, so the peak would measure ASan, not reconcile: no
         * quarantine for the measured child (ignored without ASan). */
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[1024];
        snprintf(opts, sizeof opts, "%s%squarantine_size_mb=0", asan ? asan : "",
                 asan && *asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        execl(rf_bin(), rf_bin(), "reconcile", "--db", url, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    assert_int_equal(wait4(pid, &status, 0, &ru), pid);
    assert_true(WIFEXITED(status));
    *rc = WEXITSTATUS(status);
    return ru.ru_maxrss;
}

/* Runs the fill statements in a child process. A forked child's peak size
 * counts the pages it shares with its parent until it execs, so the
 * measured reconcile would carry whatever the fill left in this process
 * (SQLite's cache, and under ASan the freed memory its quarantine holds:
 * 360 MB): the parent stays as it was for the empty-store measure. A
 * failed statement fails the child (cmocka's report, a non-zero exit). */
static void fill_apart(const char *url, const char *const *fill) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (int i = 0; fill[i]; i++) tamper(url, fill[i], NULL, NULL, -1);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

#define MEM_TRANSFERS "100000"
#define MEM_ACCOUNTS "1000"
#define MEM_RSS_KIB_MAX (16 * 1024) /* growth over the same command on an empty store */

/* 100,000 transfers and 200,000 entries over 1,001 accounts, written with
 * SQL (no HTTP, no library op per row), checked clean, then one entry in
 * the middle changed and found. Memory: the peak resident size of
 * `racefree reconcile` on it exceeds that on the empty store by less than
 * MEM_RSS_KIB_MAX. Loading the entries (the PostgreSQL driver reads a whole
 * result into memory; a check streaming rows into C would hold them) costs
 * more than that: every statement of rf_reconcile returns at most
 * RF_RECONCILE_EXAMPLES_MAX rows, which is what this pins. */
static void test_bounded_memory(void **state) {
    (void)state;
    struct rf_core_fixture fx;
    assert_int_equal(rf_core_fixture_open_fresh(&fx, NULL), 0);
    static const char *const fill[] = {
        "INSERT INTO accounts (id, currency, kind, allow_negative, posted, version, created_at,"
        " updated_at) VALUES ('mem_fund', 'XTS', 'system', 1, -2 * " MEM_TRANSFERS ", 1, 1, 1)",
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < "
        MEM_ACCOUNTS ") INSERT INTO accounts (id, currency, kind, allow_negative, posted,"
        " version, created_at, updated_at) SELECT 'mem_' || CAST(i AS TEXT), 'XTS', 'user', 0,"
        " 2 * " MEM_TRANSFERS " / " MEM_ACCOUNTS ", 1, 1, 1 FROM n",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < "
        MEM_TRANSFERS ") INSERT INTO transfers (id, debit_account, credit_account, amount_minor,"
        " posted_amount, currency, status, was_pending, created_at, version)"
        " SELECT 'mt_' || CAST(i AS TEXT), 'mem_fund', 'mem_' || CAST(i % " MEM_ACCOUNTS
        " AS TEXT), 2, 2, 'XTS', 'posted', 0, 1, 1 FROM n",
        /* fresh statistics, so PostgreSQL checks each entry's foreign keys
         * through the indexes rather than by scanning a table it thinks empty */
        "ANALYZE",
        "INSERT INTO entries (account_id, seq, transfer_id, side, amount_minor, balance_after,"
        " created_at) SELECT debit_account, CAST(substr(id, 4) AS BIGINT), id, 'debit', 2, 0, 1"
        " FROM transfers WHERE debit_account = 'mem_fund' UNION ALL SELECT credit_account,"
        " CAST(substr(id, 4) AS BIGINT), id, 'credit', 2, 0, 1 FROM transfers"
        " WHERE debit_account = 'mem_fund'",
        NULL};
    int rc = -1;
    long empty = reconcile_peak_kib(fx.url, &rc);
    assert_int_equal(rc, 0);
    fill_apart(fx.url, fill);
    long full = reconcile_peak_kib(fx.url, &rc);
    assert_int_equal(rc, 0);
    if (full - empty > MEM_RSS_KIB_MAX)
        fail_msg("reconcile's peak resident size: %ld KiB on an empty store, %ld KiB on %s"
                 " transfers", empty, full, MEM_TRANSFERS);
    tamper(fx.url, "UPDATE entries SET amount_minor = 3 WHERE transfer_id = 'mt_50000'"
                      " AND side = 'credit'", NULL, NULL, 1);
    const struct reconcile_want found = {"account_entries", 1, {"mem_0", NULL}};
    reconcile_expect(fx.db, fx.url, &found, 1);
    rf_core_fixture_close(&fx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounded_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
