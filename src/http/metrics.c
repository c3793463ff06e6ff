/*
 * metrics.c - the counters behind /metrics (see metrics.h) and the
 * Prometheus text exposition of them and of the library's rf_stats.
 * Writers only do relaxed atomic adds; a scrape reads without locks, so a
 * page may mix counts from a few microseconds apart, as Prometheus expects.
 */
#include "http/metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/assert.h"
#include "exec/executor.h"
#include "http/buf.h"
#include "http/routes.h"

/* The build's version and commit (CMakeLists.txt); "" when the build did
 * not say (a tree without git, a project without a version yet): the label
 * is then "unknown". */
#ifndef RF_BUILD_VERSION
#define RF_BUILD_VERSION ""
#endif
#ifndef RF_BUILD_COMMIT
#define RF_BUILD_COMMIT ""
#endif

static const int metric_statuses[RF_METRIC_STATUSES - 1] = {
    200, 201, 204, 400, 401, 403, 404, 405, 409, 412, 413, 422, 429, 500, 503, 504};

static const char *const metric_methods[RF_METRIC_METHODS] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"};

/* Upper bounds in seconds; the +Inf bucket follows. */
static const double dur_bounds_s[RF_METRIC_DUR_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};

static const char *const batch_bucket_le[8] = {"1", "3", "7", "15", "31", "63", "127", "+Inf"};

void rf_metrics_init(struct rf_metrics *m) {
    for (size_t s = 0; s < RF_METRIC_SLOTS; s++) {
        for (size_t i = 0; i < RF_METRIC_STATUSES; i++) atomic_init(&m->requests[s][i], 0);
        for (size_t i = 0; i <= RF_METRIC_DUR_BUCKETS; i++) atomic_init(&m->dur_bucket[s][i], 0);
        atomic_init(&m->dur_sum_us[s], 0);
    }
}

static size_t status_index(int status) {
    for (size_t i = 0; i < RF_METRIC_STATUSES - 1; i++)
        if (metric_statuses[i] == status) return i;
    return RF_METRIC_STATUSES - 1;
}

static size_t method_index(const char *method) {
    for (size_t i = 0; i < RF_METRIC_METHODS - 1; i++)
        if (strcmp(metric_methods[i], method) == 0) return i;
    return RF_METRIC_METHODS - 1;
}

static size_t slot_of(int route_index, const char *method) {
    if (route_index >= 0) {
        RF_ASSERT((size_t)route_index < rf_routes_count);
        return (size_t)route_index;
    }
    return RF_HTTP_ROUTES_MAX + method_index(method);
}

void rf_metrics_observe(struct rf_metrics *m, int route_index, const char *method, int status,
                        int64_t duration_us) {
    size_t slot = slot_of(route_index, method);
    if (duration_us < 0) duration_us = 0;
    atomic_fetch_add_explicit(&m->requests[slot][status_index(status)], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < RF_METRIC_DUR_BUCKETS && (double)duration_us / 1e6 > dur_bounds_s[b]) b++;
    atomic_fetch_add_explicit(&m->dur_bucket[slot][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->dur_sum_us[slot], (uint64_t)duration_us, memory_order_relaxed);
}

static uint64_t get(atomic_uint_least64_t *a) {
    return atomic_load_explicit(a, memory_order_relaxed);
}

/* The route and method labels of a slot. */
static void slot_labels(size_t slot, const char **route, const char **method) {
    if (slot < RF_HTTP_ROUTES_MAX) {
        *route = rf_routes[slot].pattern;
        *method = rf_routes[slot].method;
    } else {
        *route = "unmatched";
        *method = metric_methods[slot - RF_HTTP_ROUTES_MAX];
    }
}

static bool slot_used(size_t slot) {
    return slot < rf_routes_count || slot >= RF_HTTP_ROUTES_MAX;
}

static void render_requests(struct rf_metrics *m, struct rf_buf *b) {
    rf_buf_puts(b, "# HELP racefree_http_requests_total HTTP requests by route, method and status.\n"
                   "# TYPE racefree_http_requests_total counter\n");
    for (size_t s = 0; s < RF_METRIC_SLOTS; s++) {
        if (!slot_used(s)) continue;
        const char *route, *method;
        slot_labels(s, &route, &method);
        for (size_t i = 0; i < RF_METRIC_STATUSES; i++) {
            uint64_t n = get(&m->requests[s][i]);
            if (n == 0) continue;
            char status[8] = "other";
            if (i < RF_METRIC_STATUSES - 1) snprintf(status, sizeof status, "%d", metric_statuses[i]);
            rf_buf_printf(b,
                          "racefree_http_requests_total{route=\"%s\",method=\"%s\",status=\"%s\"} "
                          "%llu\n",
                          route, method, status, (unsigned long long)n);
        }
    }
}

static void render_durations(struct rf_metrics *m, struct rf_buf *b) {
    const char *name = "racefree_http_request_duration_seconds";
    rf_buf_printf(b, "# HELP %s HTTP request latency by route.\n# TYPE %s histogram\n", name, name);
    for (size_t s = 0; s < RF_METRIC_SLOTS; s++) {
        if (!slot_used(s)) continue;
        uint64_t counts[RF_METRIC_DUR_BUCKETS + 1], total = 0;
        for (size_t i = 0; i <= RF_METRIC_DUR_BUCKETS; i++)
            total += counts[i] = get(&m->dur_bucket[s][i]);
        if (total == 0) continue;
        const char *route, *method;
        slot_labels(s, &route, &method);
        uint64_t cum = 0;
        for (size_t i = 0; i <= RF_METRIC_DUR_BUCKETS; i++) {
            cum += counts[i];
            char le[16] = "+Inf";
            if (i < RF_METRIC_DUR_BUCKETS) snprintf(le, sizeof le, "%g", dur_bounds_s[i]);
            rf_buf_printf(b, "%s_bucket{route=\"%s\",method=\"%s\",le=\"%s\"} %llu\n", name, route,
                          method, le, (unsigned long long)cum);
        }
        rf_buf_printf(b, "%s_sum{route=\"%s\",method=\"%s\"} %.6f\n", name, route, method,
                      (double)get(&m->dur_sum_us[s]) / 1e6);
        rf_buf_printf(b, "%s_count{route=\"%s\",method=\"%s\"} %llu\n", name, route, method,
                      (unsigned long long)cum);
    }
}

static void render_gauge(struct rf_buf *b, const char *name, const char *type, const char *help,
                         int64_t v) {
    rf_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name,
                  (long long)v);
}

static void render_stats(const struct rf_stats *st, struct rf_buf *b) {
    render_gauge(b, "racefree_executor_queue_depth", "gauge", "Operations waiting.",
                 st->queue_depth);
    render_gauge(b, "racefree_executor_queue_capacity", "gauge", "Queue bound.",
                 st->queue_ops_max);
    render_gauge(b, "racefree_executor_batches_total", "counter", "Committed batches.",
                 st->batches);
    const char *h = "racefree_executor_batch_ops";
    rf_buf_printf(b, "# HELP %s Operations per batch.\n# TYPE %s histogram\n", h, h);
    int64_t cum = 0;
    for (size_t i = 0; i < 8; i++) {
        cum += st->batch_ops_hist[i];
        rf_buf_printf(b, "%s_bucket{le=\"%s\"} %lld\n", h, batch_bucket_le[i], (long long)cum);
    }
    rf_buf_printf(b, "%s_sum %lld\n%s_count %lld\n", h, (long long)st->batch_ops_total, h,
                  (long long)cum);
    render_gauge(b, "racefree_executor_retries_total", "counter", "Transaction retries.",
                 st->retries);
    render_gauge(b, "racefree_executor_overloaded_total", "counter",
                 "Operations refused with a full queue.", st->overloaded);
    render_gauge(b, "racefree_store_errors_total", "counter", "Store errors.", st->store_errors);
    const char *t = "racefree_store_transaction_seconds";
    rf_buf_printf(b, "# HELP %s Batch transaction latency, BEGIN to COMMIT's answer.\n"
                     "# TYPE %s histogram\n", t, t);
    cum = 0;
    for (size_t i = 0; i < RF_STATS_TX_BUCKETS; i++) {
        cum += st->tx_us_hist[i];
        char le[16] = "+Inf";
        if (i < RF_STATS_TX_BUCKETS - 1)
            snprintf(le, sizeof le, "%g", (double)exec_tx_bounds_us[i] / 1e6);
        rf_buf_printf(b, "%s_bucket{le=\"%s\"} %lld\n", t, le, (long long)cum);
    }
    rf_buf_printf(b, "%s_sum %.6f\n%s_count %lld\n", t, (double)st->tx_us_total / 1e6, t,
                  (long long)cum);
}

/* ---- build and process ---------------------------------------------------
 * The process_* series are the ones Prometheus client libraries export
 * (same names, units and types), read from /proc and getrlimit. */

/* The process's start, in seconds since the epoch: /proc/self/stat's
 * starttime (clock ticks after boot) plus the boot time from /proc/stat.
 * 0 when /proc does not say. */
static double process_start_s(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    char line[256];
    long long btime = 0;
    while (fgets(line, sizeof line, f)) /* bounded by the file */
        if (sscanf(line, "btime %lld", &btime) == 1) break;
    fclose(f);
    f = fopen("/proc/self/stat", "r");
    if (!f) return 0;
    char stat[1024];
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *after = strrchr(stat, ')'); /* the command may hold spaces */
    unsigned long long start_ticks = 0;
    /* after ") ": state is field 3; starttime is field 22 */
    if (!after || sscanf(after + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
                                    "%*d %*d %*d %*d %llu", &start_ticks) != 1)
        return 0;
    long hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? (double)btime + (double)start_ticks / (double)hz : 0;
}

/* Resident memory in bytes (/proc/self/statm's second field, in pages). */
static long long resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    long long size = 0, resident = 0;
    int got = fscanf(f, "%lld %lld", &size, &resident);
    fclose(f);
    return got == 2 ? resident * sysconf(_SC_PAGESIZE) : 0;
}

/* Open descriptors: entries of /proc/self/fd (bounded by the fd limit). */
static long long open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 0;
    long long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* the directory's own descriptor */
}

static void render_double(struct rf_buf *b, const char *name, const char *type, const char *help,
                          double v) {
    rf_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.6f\n", name, help, name, type, name, v);
}

static void render_process(struct rf_buf *b) {
    rf_buf_printf(b, "# HELP racefree_build_info The running build: version and commit.\n"
                     "# TYPE racefree_build_info gauge\n"
                     "racefree_build_info{version=\"%s\",commit=\"%s\"} 1\n",
                  RF_BUILD_VERSION[0] ? RF_BUILD_VERSION : "unknown",
                  RF_BUILD_COMMIT[0] ? RF_BUILD_COMMIT : "unknown");
    struct rusage ru;
    double cpu = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    render_double(b, "process_cpu_seconds_total", "counter", "User and system CPU time in seconds.",
                  cpu);
    render_gauge(b, "process_resident_memory_bytes", "gauge", "Resident memory in bytes.",
                 resident_bytes());
    render_gauge(b, "process_open_fds", "gauge", "Open file descriptors.", open_fds());
    struct rlimit rl;
    long long max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long long)rl.rlim_cur : 0;
    render_gauge(b, "process_max_fds", "gauge", "The open file descriptor limit.", max_fds);
    render_double(b, "process_start_time_seconds", "gauge",
                  "Start time of the process since the epoch, in seconds.", process_start_s());
}

char *rf_metrics_render(struct rf_metrics *m, const struct rf_stats *st, size_t *len_out) {
    struct rf_buf b;
    rf_buf_init(&b, RF_METRICS_BYTES_MAX);
    render_requests(m, &b);
    render_durations(m, &b);
    render_stats(st, &b);
    render_process(&b);
    return rf_buf_take(&b, len_out);
}
