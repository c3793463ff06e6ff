/*
 * fuzz_specs.c - the small text grammars: an RFC 3339 time (every TIME
 * field of a body, base/clock.c), a rate limit "N/PERIOD" (a key's limit,
 * --rate-limit) and a --schedule SPEC (core/schedule.c), each run over the
 * same NUL-terminated input.
 *
 * Invariants: an accepted time is in range and formats to a text that
 * parses back to the same instant; an accepted rate limit is within the
 * bounds racefree.h states; an accepted schedule names a task and a
 * positive interval, and a refusal always says why.
 */
#include <stdbool.h>

#include "base/clock.h"
#include "core/schedule.h"
#include "fuzz/fuzz.h"

static void time_text(const char *s) {
    int64_t ms;
    if (!rf_time_parse(s, &ms)) return;
    FUZZ_CHECK(ms >= RF_TIME_MS_MIN && ms <= RF_TIME_MS_MAX);
    char text[RF_TIME_TEXT_BYTES];
    rf_time_format(ms, text);
    int64_t again;
    FUZZ_CHECK(rf_time_parse(text, &again) && again == ms);
}

static void rate_limit(const char *s) {
    struct rf_rate_limit rl;
    char why[128] = "";
    if (rf_rate_limit_parse(s, &rl, why, sizeof why)) {
        FUZZ_CHECK(rl.quota >= 1 && rl.quota <= RF_RATE_QUOTA_MAX);
        FUZZ_CHECK(rl.window_ms >= RF_RATE_WINDOW_MS_MIN && rl.window_ms <= RF_RATE_WINDOW_MS_MAX);
        FUZZ_CHECK(rl.quota <= rl.window_ms);
    } else {
        FUZZ_CHECK(why[0] != '\0');
    }
}

static void schedule(const char *s) {
    struct sched_spec spec;
    char why[256] = "";
    if (sched_spec_parse(s, &spec, why, sizeof why))
        FUZZ_CHECK(spec.task && spec.interval_ms > 0 && spec.name[0]);
    else
        FUZZ_CHECK(why[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = fuzz_cstr(data, size);
    time_text(s);
    rate_limit(s);
    schedule(s);
    free(s);
    return 0;
}
