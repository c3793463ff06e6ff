/*
 * clock.h - wall-clock milliseconds and RFC 3339 text (UTC, milliseconds),
 * and the monotonic clock periodic threads wait on.
 */
#ifndef RF_CLOCK_H
#define RF_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RF_TIME_TEXT_BYTES 32
/* The times RFC 3339 can write: 0001-01-01T00:00:00.000Z..9999-12-31T23:59:59.999Z. */
#define RF_TIME_MS_MIN (-62135596800000LL)
#define RF_TIME_MS_MAX 253402300799999LL

int64_t rf_now_ms(void);
/* Monotonic, for durations. */
int64_t rf_mono_ms(void);
int64_t rf_mono_us(void);
/* A condition variable that times out on CLOCK_MONOTONIC (a wall-clock
 * step never stretches or cuts a wait), and the deadline ms from now on
 * that clock, for pthread_cond_timedwait: the periodic threads' sleeps. */
void rf_cond_init_mono(pthread_cond_t *cv);
struct timespec rf_mono_deadline(int64_t ms);
/* "2026-02-15T10:04:05.123Z" */
void rf_time_format(int64_t ms, char out[RF_TIME_TEXT_BYTES]);
/* Accepts RFC 3339 with optional fraction and Z or a +hh:mm / -hh:mm offset,
 * and gives the UTC instant; false when that instant is outside
 * RF_TIME_MS_MIN..RF_TIME_MS_MAX (9999-12-31T23:00:00-05:00 is year 10000 in
 * UTC, which no RFC 3339 text can say). */
bool rf_time_parse(const char *text, int64_t *ms_out);

#endif
