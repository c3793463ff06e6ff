/*
 * test_ids.c - the fixed-buffer text helpers that replaced snprintf on the
 * hot path (base/ids.c): rf_i64_text writes what printf's %lld writes, at
 * the int64 edges and across magnitudes; rf_uuid7 is 8-4-4-4-12 lowercase
 * hex with the version 7 and variant bits and the time in its first 48 bits;
 * rf_json_quote (core/codec.h) writes what jansson's compact dump writes for
 * a string (a credit's stored reason metadata), for every byte and for
 * UTF-8, and refuses a buffer too small; rf_random_id_bytes (the ids'
 * randomness without a system call each) repeats nothing across many
 * draws, nor between a forked child and its parent, whose streams would
 * otherwise continue from the same state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/ids.h"
#include "core/codec.h"

static void same_as_printf(int64_t v) {
    char want[32], got[RF_I64_TEXT_BYTES];
    int n = snprintf(want, sizeof want, "%lld", (long long)v);
    assert_int_equal(rf_i64_text(v, got), n);
    assert_string_equal(got, want);
}

static void test_i64_text(void **state) {
    (void)state;
    int64_t edges[] = {0, 1, -1, 9, 10, -10, 99, 100, INT64_MAX, INT64_MIN, INT64_MIN + 1,
                       INT64_MAX - 1, 1700000000000LL, -1700000000000LL};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) same_as_printf(edges[i]);
    for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10) { /* every digit count, both signs */
        same_as_printf(p - 1);
        same_as_printf(p);
        same_as_printf(-p);
        same_as_printf(-p + 1);
    }
}

static void test_uuid7(void **state) {
    (void)state;
    char id[RF_UUID_TEXT_BYTES];
    int64_t now = 0x0123456789abLL;
    for (int k = 0; k < 64; k++) {
        rf_uuid7(now, id);
        assert_int_equal(strlen(id), 36);
        for (int i = 0; i < 36; i++) {
            bool dash = i == 8 || i == 13 || i == 18 || i == 23;
            assert_true(dash ? id[i] == '-' : strchr("0123456789abcdef", id[i]) != NULL);
        }
        assert_memory_equal(id, "01234567-89ab-7", 15); /* time, then version 7 */
        assert_non_null(strchr("89ab", id[19]));         /* the variant */
        assert_true(rf_id_valid(id));
    }
}

#define DRAWS 20000

static int cmp16(const void *a, const void *b) { return memcmp(a, b, 16); }

/* DRAWS draws of 16 bytes, across refills of the pool: no two alike (a
 * repeat of 128 random bits would be a broken stream, not chance). */
static void test_random_distinct(void **state) {
    (void)state;
    uint8_t (*d)[16] = malloc(sizeof(uint8_t[DRAWS][16]));
    assert_non_null(d);
    for (int i = 0; i < DRAWS; i++) rf_random_id_bytes(d[i], 16);
    qsort(d, DRAWS, 16, cmp16);
    for (int i = 1; i < DRAWS; i++) assert_true(memcmp(d[i - 1], d[i], 16) != 0);
    free(d);
}

/* After a fork, the child's next bytes are not the parent's next bytes. */
static void test_random_fork(void **state) {
    (void)state;
    uint8_t before[16], parent[16], child[16];
    rf_random_id_bytes(before, sizeof before); /* the parent's stream is keyed */
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t b[16];
        rf_random_id_bytes(b, sizeof b);
        _exit(write(p[1], b, sizeof b) == (ssize_t)sizeof b ? 0 : 1);
    }
    close(p[1]);
    rf_random_id_bytes(parent, sizeof parent);
    assert_int_equal(read(p[0], child, sizeof child), (ssize_t)sizeof child);
    close(p[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(memcmp(parent, child, sizeof child) != 0);
}

static void same_as_jansson(const char *text) {
    json_t *j = json_string(text);
    assert_non_null(j);
    char *want = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
    char got[4096];
    size_t n = rf_json_quote(text, got, sizeof got);
    assert_string_equal(got, want);
    assert_int_equal(n, strlen(want));
    free(want);
    json_decref(j);
}

static void test_json_quote(void **state) {
    (void)state;
    for (int b = 1; b < 0x80; b++) { /* every ASCII byte, alone and in text */
        char one[2] = {(char)b, 0}, some[8] = {'a', (char)b, 'z', (char)b, 0};
        same_as_jansson(one);
        same_as_jansson(some);
    }
    same_as_jansson("");
    same_as_jansson("gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8 / \x7f");
    char control[6 * 64 + 1];
    for (int i = 0; i < 6 * 64; i++) control[i] = (char)(1 + i % 31);
    control[6 * 64] = 0;
    same_as_jansson(control);
    char small[10]; /* room for "ab" and the longest escape after it */
    assert_int_equal(rf_json_quote("abcdefgh", small, sizeof small), 0); /* does not fit */
    assert_int_equal(rf_json_quote("ab", small, sizeof small), 4);
    assert_string_equal(small, "\"ab\"");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_i64_text),
        cmocka_unit_test(test_uuid7),
        cmocka_unit_test(test_random_distinct),
        cmocka_unit_test(test_random_fork),
        cmocka_unit_test(test_json_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
