/*
 * clock.h - wall-clock milliseconds and RFC 3339 text (UTC, milliseconds).
 */
#ifndef RF_CLOCK_H
#define RF_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RF_TIME_TEXT_BYTES 32

int64_t rf_now_ms(void);
/* Monotonic, for durations. */
int64_t rf_mono_ms(void);
int64_t rf_mono_us(void);
/* "2026-02-15T10:04:05.123Z" */
void rf_time_format(int64_t ms, char out[RF_TIME_TEXT_BYTES]);
/* Accepts RFC 3339 with optional fraction and Z or +hh:mm offset. */
bool rf_time_parse(const char *text, int64_t *ms_out);

#endif
