/*
 * core_fixture.c - the tests/core fixture (see rf_corefixture.h): one place
 * that opens an rf on the test database and closes it with its files gone.
 */
#include "testlib/rf_corefixture.h"

#include <stdio.h>
#include <string.h>

struct rf_core_fixture rf_core_fx;

static int open_url(struct rf_core_fixture *fx, const struct rf_options *opt, int made)
{
    if (made != 0) {
        fprintf(stderr, "core fixture: no test database\n");
        return -1;
    }
    rf_err err = rf_open(fx->url, opt, &fx->db);
    if (err != RF_OK) {
        fprintf(stderr, "core fixture: rf_open(%s): %s\n", fx->url, rf_err_code(err));
        rf_test_db_cleanup(fx->url);
        fx->db = NULL;
        fx->url[0] = '\0';
        return -1;
    }
    return 0;
}

int rf_core_fixture_open(struct rf_core_fixture *fx, const struct rf_options *opt)
{
    memset(fx, 0, sizeof *fx);
    return open_url(fx, opt, rf_test_db_url(fx->url, sizeof fx->url));
}

int rf_core_fixture_open_fresh(struct rf_core_fixture *fx, const struct rf_options *opt)
{
    memset(fx, 0, sizeof *fx);
    return open_url(fx, opt, rf_test_db_fresh(fx->url, sizeof fx->url));
}

void rf_core_fixture_close(struct rf_core_fixture *fx)
{
    if (fx->db)
        rf_close(fx->db);
    rf_test_db_cleanup(fx->url);
    memset(fx, 0, sizeof *fx);
}

int rf_core_fixture_reopen(struct rf_core_fixture *fx, const struct rf_options *opt)
{
    if (fx->db)
        rf_close(fx->db);
    fx->db = NULL;
    rf_err err = rf_open(fx->url, opt, &fx->db);
    if (err != RF_OK) {
        fprintf(stderr, "core fixture: rf_open(%s) again: %s\n", fx->url, rf_err_code(err));
        fx->db = NULL;
        return -1;
    }
    return 0;
}

int rf_core_setup(void **state)
{
    *state = &rf_core_fx;
    return rf_core_fixture_open(&rf_core_fx, NULL);
}

int rf_core_teardown(void **state)
{
    *state = NULL;
    rf_core_fixture_close(&rf_core_fx);
    return 0;
}

void rf_core_idem_hash(struct rf_idem *idem, const char *method, const char *path,
                       const char *body, size_t body_len) {
    const void *parts[3] = {method, path, body};
    const size_t lens[3] = {strlen(method) + 1, strlen(path) + 1, body_len};
    rf_idem_hash(idem, 3, parts, lens);
}
