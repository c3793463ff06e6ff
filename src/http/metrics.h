/*
 * metrics.h - request counters and latency histograms for /metrics, in fixed
 * arrays of C11 atomics: one slot per route (known at compile time) plus one
 * per method for requests that matched no route, and statuses bucketed into a
 * fixed list. No maps, nothing that grows with traffic.
 */
#ifndef RF_HTTP_METRICS_H
#define RF_HTTP_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/limits.h"
#include "racefree.h"

#define RF_METRIC_METHODS 8    /* GET HEAD POST PUT PATCH DELETE OPTIONS other */
#define RF_METRIC_SLOTS (RF_HTTP_ROUTES_MAX + RF_METRIC_METHODS)
#define RF_METRIC_STATUSES 17  /* the list in metrics.c, last is "other" */
#define RF_METRIC_DUR_BUCKETS 12

struct rf_metrics {
    atomic_uint_least64_t requests[RF_METRIC_SLOTS][RF_METRIC_STATUSES];
    atomic_uint_least64_t dur_bucket[RF_METRIC_SLOTS][RF_METRIC_DUR_BUCKETS + 1]; /* +Inf */
    atomic_uint_least64_t dur_sum_us[RF_METRIC_SLOTS];
};

/* Zeroes every counter. */
void rf_metrics_init(struct rf_metrics *m);
/* route_index: index in rf_routes, or -1 for unmatched requests. */
void rf_metrics_observe(struct rf_metrics *m, int route_index, const char *method, int status,
                        int64_t duration_us);
/* The Prometheus text page (malloc'd) with the library's stats, or NULL. */
char *rf_metrics_render(struct rf_metrics *m, const struct rf_stats *st, size_t *len_out);

#endif
