/*
 * halt.c - see halt.h: a stop flag under a mutex and a condition variable
 * on the monotonic clock (a wall-clock step never stretches a wait).
 */
#include "base/halt.h"

#include <errno.h>

#include "base/clock.h"

void rf_halt_init(struct rf_halt *h) {
    h->stop = false;
    rf_cond_init_mono(&h->cv);
    pthread_mutex_init(&h->mu, NULL);
}

void rf_halt_destroy(struct rf_halt *h) {
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
}

void rf_halt_request(struct rf_halt *h) {
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

bool rf_halt_requested(struct rf_halt *h) {
    pthread_mutex_lock(&h->mu);
    bool stop = h->stop;
    pthread_mutex_unlock(&h->mu);
    return stop;
}

bool rf_halt_wait_ms(struct rf_halt *h, int64_t ms) {
    struct timespec t = rf_mono_deadline(ms);
    pthread_mutex_lock(&h->mu);
    while (!h->stop && pthread_cond_timedwait(&h->cv, &h->mu, &t) != ETIMEDOUT) {
    }
    bool go_on = !h->stop;
    pthread_mutex_unlock(&h->mu);
    return go_on;
}
