/*
 * test_ratelimit.c - the GCRA arithmetic of core/ratelimit.h and the
 * "N/PERIOD" spec: a full quota at once then one request per emission
 * interval; remaining and reset count down; a refused request's wait is
 * exactly until the next one conforms; a tat far ahead (another node's clock
 * ahead) waits at most one interval; the limits.h bounds at their edges
 * (a day's window, a million requests, a wall clock in the far future)
 * without int64 overflow; and the parser refuses everything out of bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/limits.h"
#include "core/ratelimit.h"

static const int64_t NOW = 1764900000000LL; /* December 2025, ms */

static void test_burst_then_steady(void **state)
{
    (void)state;
    struct rf_rate_limit l = {100, 10000};
    struct gcra g = gcra_of(&l);
    assert_int_equal(g.t_ms, 100);
    assert_int_equal(g.tau_ms, 10000);
    int64_t tat = 0;
    bool has = false;
    struct rf_rate_result r;
    for (int i = 0; i < 100; i++) {
        gcra_step(g, has, tat, NOW, &tat, &r);
        has = true;
        assert_true(r.allowed);
        assert_int_equal(r.remaining, 99 - i);
        assert_int_equal(r.reset_ms, 100 * (i + 1));
    }
    gcra_step(g, has, tat, NOW, &tat, &r);
    assert_false(r.allowed);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.retry_after_ms, 100);
    assert_int_equal(tat, NOW + 10000); /* a refusal does not move tat */
    gcra_step(g, has, tat, NOW + 99, &tat, &r);
    assert_false(r.allowed);
    assert_int_equal(r.retry_after_ms, 1);
    gcra_step(g, has, tat, NOW + 100, &tat, &r);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 0);
    /* after a whole window of silence the whole quota is back */
    gcra_step(g, has, tat, NOW + 100 + 10000, &tat, &r);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 99);
}

static void test_clock_ahead_is_clamped(void **state)
{
    (void)state;
    struct rf_rate_limit l = {2, 3600000};
    struct gcra g = gcra_of(&l);
    struct rf_rate_result r;
    int64_t tat = 0;
    /* a tat a year ahead counts as a full bucket, no more */
    gcra_step(g, true, NOW + 365LL * 86400000, NOW, &tat, &r);
    assert_false(r.allowed);
    assert_int_equal(r.retry_after_ms, g.t_ms);
    assert_int_equal(r.reset_ms, g.tau_ms);
    /* a tat in the past is an empty bucket */
    gcra_step(g, true, 1, NOW, &tat, &r);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 1);
}

static void test_bounds_without_overflow(void **state)
{
    (void)state;
    struct rf_rate_limit widest = {1, RF_RATE_WINDOW_MS_MAX};
    struct rf_rate_limit most = {RF_RATE_QUOTA_MAX, RF_RATE_WINDOW_MS_MAX};
    struct rf_rate_limit fastest = {1000, 1000};
    int64_t far = INT64_MAX / 2 - 2 * RF_RATE_WINDOW_MS_MAX;
    const struct rf_rate_limit *ls[] = {&widest, &most, &fastest};
    for (size_t i = 0; i < 3; i++) {
        assert_true(rf_rate_limit_valid(ls[i]));
        struct gcra g = gcra_of(ls[i]);
        assert_true(g.t_ms >= 1 && g.tau_ms <= ls[i]->window_ms);
        struct rf_rate_result r;
        int64_t tat = 0;
        gcra_step(g, false, 0, far, &tat, &r);
        assert_true(r.allowed);
        assert_true(tat > far && tat - far == g.t_ms);
        gcra_step(g, true, INT64_MAX / 2, far, &tat, &r); /* clamped, never summed past */
        assert_false(r.allowed);
        assert_true(r.retry_after_ms >= 1 && r.retry_after_ms <= g.t_ms);
    }
    struct rf_rate_limit too_fast = {1001, 1000}, zero = {0, 1000}, too_long = {1, RF_RATE_WINDOW_MS_MAX + 1};
    assert_false(rf_rate_limit_valid(&too_fast));
    assert_false(rf_rate_limit_valid(&zero));
    assert_false(rf_rate_limit_valid(&too_long));
    assert_int_equal(gcra_ceil_s(0), 1);
    assert_int_equal(gcra_ceil_s(1000), 1);
    assert_int_equal(gcra_ceil_s(1001), 2);
    assert_int_equal(gcra_ceil_s(RF_RATE_WINDOW_MS_MAX), 86400);
}

static void test_parse(void **state)
{
    (void)state;
    struct rf_rate_limit l;
    char why[160];
    assert_true(rf_rate_limit_parse("100/10s", &l, why, sizeof why));
    assert_int_equal(l.quota, 100);
    assert_int_equal(l.window_ms, 10000);
    assert_true(rf_rate_limit_parse("5/250ms", &l, why, sizeof why));
    assert_int_equal(l.window_ms, 250);
    assert_true(rf_rate_limit_parse("60/1m", &l, why, sizeof why));
    assert_int_equal(l.window_ms, 60000);
    assert_true(rf_rate_limit_parse("1/24h", &l, why, sizeof why));
    assert_int_equal(l.window_ms, RF_RATE_WINDOW_MS_MAX);
    const char *bad[] = {"", "100", "100/", "/10s", "100/10", "100/10d", "-1/1s", "0/1s",
                         "2/1ms", "1/25h", "1/0s", "1/99999999999999999999h",
                         "99999999999999999999/1h", "1/1s ", " 1/1s", "1/1sx",
                         "100000000000000000000000000000000/1s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        if (rf_rate_limit_parse(bad[i], &l, why, sizeof why))
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(why[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_steady),
        cmocka_unit_test(test_clock_ahead_is_clamped),
        cmocka_unit_test(test_bounds_without_overflow),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
