/*
 * halt.h - a background thread's stop request with an interruptible wait,
 * shared by the threads `racefree serve` runs beside HTTP (the scheduler,
 * the announcement fan-out): a wait between runs ends at once when the
 * server stops, so SIGTERM never waits out a poll interval.
 */
#ifndef RF_BASE_HALT_H
#define RF_BASE_HALT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct rf_halt {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    bool stop;
};

void rf_halt_init(struct rf_halt *h);
void rf_halt_destroy(struct rf_halt *h);
/* Asks the thread to stop and wakes its wait. */
void rf_halt_request(struct rf_halt *h);
bool rf_halt_requested(struct rf_halt *h);
/* Waits ms, or less when a stop is requested; false then. */
bool rf_halt_wait_ms(struct rf_halt *h, int64_t ms);

#endif
