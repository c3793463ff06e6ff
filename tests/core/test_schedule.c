/*
 * test_schedule - the scheduler at library level (src/core/schedule.c).
 *
 * Proves:
 *  - the SPEC grammar: every form and unit, the interval's bounds (200ms to
 *    7d, inclusive), the minimum amount, and what is refused;
 *  - a run its claimer left unfinished (a crash: the row stays running with
 *    its resume_at passed) is resumed by the next tick of a scheduler, which
 *    finishes it (succeeded, attempt 2, its batch named); one that already
 *    used every attempt is failed (attempts_exhausted), never run again;
 *  - a run whose claimer is still within its resume window is left alone;
 *  - scheduler_run_now twice in one slot: one claim, the same run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/clock.h"
#include "core/schedule.h"
#include "tamper.h"
#include "testlib/rf_corefixture.h"

#define POLL_MS 20
#define WAIT_MS_MAX 15000

static void test_spec_grammar(void **state)
{
    (void)state;
    struct sched_spec sp;
    char why[256];
    static const struct {
        const char *text, *name, *currency;
        int64_t min, interval_ms;
    } good[] = {
        {"payouts@1h", "payouts", "", 1, 3600000},
        {"payouts:USD@30m", "payouts:USD", "USD", 1, 1800000},
        {"payouts:EUR:500@1d", "payouts:EUR:500", "EUR", 500, 86400000},
        {"payouts@200ms", "payouts", "", 1, 200},
        {"payouts@7d", "payouts", "", 1, 7LL * 86400000},
        {"payouts@45s", "payouts", "", 1, 45000},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!sched_spec_parse(good[i].text, &sp, why, sizeof why))
            fail_msg("'%s' refused: %s", good[i].text, why);
        assert_string_equal(sp.text, good[i].text);
        assert_string_equal(sp.name, good[i].name);
        assert_string_equal(sp.currency, good[i].currency);
        assert_int_equal(sp.min_amount_minor, good[i].min);
        assert_int_equal(sp.interval_ms, good[i].interval_ms);
    }
    static const char *const bad[] = {
        "", "payouts", "@1s", "payouts@", "payouts@199ms", "payouts@8d", "payouts@169h",
        "payouts@0s", "payouts@-1s", "payouts@1", "payouts@1sec", "payouts@ 1s", "payouts@1s ",
        "payouts@99999999999999999999d", "other@1s", "payout@1s", "payouts:@1s",
        "payouts:US@1s", "payouts:usd@1s", "payouts:USDX@1s", "payouts:USD:@1s",
        "payouts:USD:0@1s", "payouts:USD:-5@1s", "payouts:USD:5x@1s",
        "payouts:USD:99999999999999999999@1s", "payouts@1s@2s",
        "payouts:USD:1234567890123456789012345678901234567890123456789@1s",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        if (sched_spec_parse(bad[i], &sp, why, sizeof why))
            fail_msg("'%s' accepted", bad[i]);
        assert_true(why[0] != '\0');
    }
}

/* The run of slot among the runs of name; NULL when there is none. */
static bool find_run(const char *name, int64_t slot, struct sched_run *out)
{
    struct sched_run_page pg;
    assert_int_equal(sched_runs_list(rf_core_fx.db, name, NULL, 500, &pg), RF_OK);
    bool found = false;
    for (int i = 0; i < pg.n; i++)
        if (pg.items[i].slot == slot) {
            *out = pg.items[i];
            found = true;
        }
    free(pg.items);
    return found;
}

/* Plants a run as a claimer that died would leave it. */
static void plant_running(const struct sched_spec *sp, int64_t slot, int attempts,
                          int64_t resume_at)
{
    char sql[1024], id[160];
    snprintf(id, sizeof id, "%s:%lld:%lld", sp->name, (long long)sp->interval_ms,
             (long long)slot);
    snprintf(sql, sizeof sql,
             "INSERT INTO schedule_runs (id, name, interval_ms, slot, spec, node, via, status,"
             " attempts, started_at, updated_at, resume_at) VALUES ($1, $2, %lld, %lld, 'x',"
             " 'dead-node', 'schedule', 'running', %d, 1, 1, %lld)",
             (long long)sp->interval_ms, (long long)slot, attempts, (long long)resume_at);
    tamper(rf_core_fx.url, sql, id, sp->name, 1);
}

static void wait_finished(const char *name, int64_t slot, struct sched_run *out)
{
    for (int64_t t0 = rf_mono_ms(); rf_mono_ms() - t0 < WAIT_MS_MAX;) {
        if (find_run(name, slot, out) && strcmp(out->status, "running") != 0) return;
        rf_t_sleep_ms(POLL_MS);
    }
    fail_msg("run %s slot %lld did not finish", name, (long long)slot);
}

static void test_unfinished_runs_resumed(void **state)
{
    (void)state;
    struct sched_spec sp;
    char why[256], name[64], text[96];
    snprintf(name, sizeof name, "payouts:USD:%u", 1 + rf_rand_below(1000000));
    snprintf(text, sizeof text, "%s@1s", name);
    assert_true(sched_spec_parse(text, &sp, why, sizeof why));
    int64_t now = rf_now_ms(), slot = sched_slot(&sp, now);
    plant_running(&sp, slot - 3, 1, 0);                    /* died: resume it */
    plant_running(&sp, slot - 2, 5, 0);                    /* died on its last attempt */
    plant_running(&sp, slot - 1, 1, now + 60 * 1000);     /* its claimer may still run it */

    struct scheduler *s = NULL;
    assert_int_equal(scheduler_start(rf_core_fx.db, &sp, 1, &s), RF_OK);
    struct sched_run run;
    wait_finished(name, slot - 3, &run);
    assert_string_equal(run.status, "succeeded");
    assert_int_equal(run.attempts, 2);
    assert_true(run.batch_ids[0] != '\0' && strchr(run.batch_ids, ',') == NULL);
    assert_int_not_equal(strcmp(run.node, "dead-node"), 0);
    wait_finished(name, slot - 2, &run);
    assert_string_equal(run.status, "failed");
    assert_string_equal(run.error, "attempts_exhausted");
    assert_int_equal(run.attempts, 5);
    assert_true(find_run(name, slot - 1, &run));
    assert_string_equal(run.status, "running");
    assert_string_equal(run.node, "dead-node");

    /* Triggered twice within one slot: one run. Both calls answer the
     * run of the slot they saw; when it is one slot, it is one id. */
    struct sched_run a, b;
    bool created_a = false, created_b = false;
    int64_t before = sched_slot(&sp, rf_now_ms());
    assert_int_equal(scheduler_run_now(s, &sp, &a, &created_a), RF_OK);
    assert_int_equal(scheduler_run_now(s, &sp, &b, &created_b), RF_OK);
    if (sched_slot(&sp, rf_now_ms()) == before) {
        assert_string_equal(a.id, b.id);
        assert_false(created_b);
    }
    scheduler_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_grammar),
        cmocka_unit_test(test_unfinished_runs_resumed),
    };
    return cmocka_run_group_tests(tests, rf_core_setup, rf_core_teardown);
}
