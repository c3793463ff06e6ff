/*
 * rf_corefixture.h - the one fixture of the library-level tests (tests/core):
 * an rf opened on the test database of RF_TEST_DB with the given options,
 * and closed again with what the open made removed (the SQLite file and its
 * -wal/-shm/-journal, a PostgreSQL database of its own). It owns the open,
 * the close and the clean-up, so no test file repeats them.
 *
 * rf_core_setup/rf_core_teardown fit cmocka_run_group_tests (or each test):
 * the tests share rf_core_fx (their helper threads reach it without a state
 * pointer). A group that needs options writes a setup that calls
 * rf_core_fixture_open(&rf_core_fx, &opt) and keeps rf_core_teardown.
 */
#ifndef RF_COREFIXTURE_H
#define RF_COREFIXTURE_H

#include "racefree.h"
#include "testlib/rf_testlib.h"

struct rf_core_fixture {
    char url[RF_T_URL_BYTES]; /* the store's URL, for tamper/CLI/raw access */
    rf *db;                   /* NULL when not open */
};

/* Opens fx->db on the test database: on PostgreSQL the process's own
 * database (shared by the process's tests), on SQLite a new temporary file.
 * opt may be NULL. Returns 0, or -1 with the reason on stderr. */
int rf_core_fixture_open(struct rf_core_fixture *fx, const struct rf_options *opt);
/* The same on an empty store of its own (a new SQLite file or a new
 * PostgreSQL database), for a test that needs exact totals. */
int rf_core_fixture_open_fresh(struct rf_core_fixture *fx, const struct rf_options *opt);
/* Closes fx->db (draining its executor) and removes what the open made; the
 * process's shared PostgreSQL database stays. Safe on a fixture never opened. */
void rf_core_fixture_close(struct rf_core_fixture *fx);

/* Closes fx->db and opens the same store again with opt (a new process's
 * view of what was acknowledged). Returns 0, or -1 (fx->db is NULL then). */
int rf_core_fixture_reopen(struct rf_core_fixture *fx, const struct rf_options *opt);

/* The fixture the tests of a binary share, and its setup (default options)
 * and teardown, for a cmocka group or for each test (rf_core_unit_test: a
 * new SQLite file per test); both set *state to &rf_core_fx. */
extern struct rf_core_fixture rf_core_fx;
int rf_core_setup(void **state);
int rf_core_teardown(void **state);
#define rf_core_unit_test(t) cmocka_unit_test_setup_teardown(t, rf_core_setup, rf_core_teardown)

/* Fills idem->request_hash as the server does for method, path and body
 * (each of the first two with its NUL), so a test's keyed requests are told
 * apart the same way. */
void rf_core_idem_hash(struct rf_idem *idem, const char *method, const char *path,
                       const char *body, size_t body_len);

#endif
