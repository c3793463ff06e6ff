/*
 * embedded.c - the library benchmark (rf-bench-embedded): N threads call the
 * blocking rf_credit_apply on one fresh SQLite store at sync full for D
 * seconds, each credit with its own Idempotency-Key (or none with --no-key),
 * spread over a set of accounts. With --window W each thread instead keeps
 * W credits in flight through rf_op_submit (the door that does not wait),
 * submitting another as each one is answered. Prints one RESULT line:
 * operations per second and the p50/p99 latency of one call. `make bench`
 * (bench/run.sh) runs it; it is a benchmark, not a test, and is not
 * installed.
 *
 *   rf-bench-embedded [--threads N] [--seconds D] [--accounts A] [--no-key]
 *                     [--window W] [--dir DIR]
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "racefree.h"

#define BENCH_THREADS_MAX 1024
#define BENCH_ACCOUNTS_MAX 100000
#define BENCH_BUCKET_US 10            /* latency histogram resolution */
#define BENCH_BUCKETS 100000          /* 10 us .. 1 s; slower calls land in the last */
#define BENCH_KEY_BYTES 64
#define BENCH_WINDOW_MAX 4096         /* credits one thread keeps in flight */

struct bench {
    rf *db;
    int threads, seconds, accounts;
    int window;                       /* 0: blocking calls; else submitted, W in flight */
    bool with_key;
    atomic_bool stop;
    pthread_barrier_t start;
};

struct call;

struct worker {
    struct bench *b;
    int tid;
    uint64_t ops, failed;
    uint32_t *hist;                   /* BENCH_BUCKETS counts */
    pthread_mutex_t mu;               /* window mode: the answered calls */
    pthread_cond_t answered;
    struct call *done;
};

/* One submitted credit: everything rf_op_submit borrows until its done. */
struct call {
    struct worker *w;
    struct rf_credit_req req;
    struct rf_transfer_res res;
    struct rf_idem idem;
    char id[32], key[BENCH_KEY_BYTES];
    int64_t t0;
    rf_err err;
    struct call *next;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void account_name(char *out, size_t cap, int k) { snprintf(out, cap, "bench-%d", k); }

static bool make_accounts(struct bench *b) {
    for (int k = 0; k < b->accounts; k++) {
        char id[32];
        account_name(id, sizeof id, k);
        struct rf_account_req req = {.id = id, .currency = "USD", .kind = RF_ACCOUNT_USER};
        struct rf_account_res res;
        rf_err err = rf_account_create(b->db, &req, &res, NULL);
        if (err != RF_OK) {
            fprintf(stderr, "account %s: %s\n", id, rf_err_code(err));
            return false;
        }
        rf_account_clear(&res.account);
    }
    return true;
}

/* One credit of 1 to account k; the key, when used, is unique per call. */
static rf_err credit_once(struct worker *w, uint64_t n) {
    struct bench *b = w->b;
    char id[32], key[BENCH_KEY_BYTES];
    account_name(id, sizeof id, (int)((w->tid * 7919 + n) % (uint64_t)b->accounts));
    struct rf_idem idem = {.api_key_id = "bench"};
    if (b->with_key) {
        snprintf(key, sizeof key, "t%d-%" PRIu64, w->tid, n);
        idem.key = key;
        const void *parts[2] = {id, key};
        const size_t lens[2] = {strlen(id) + 1, strlen(key)};
        rf_idem_hash(&idem, 2, parts, lens);
    }
    struct rf_transfer_res res;
    rf_err err = rf_credit_apply(b->db, id, 1, NULL, &res, b->with_key ? &idem : NULL);
    if (err == RF_OK) rf_transfer_clear(&res.transfer);
    return err;
}

static void record(struct worker *w, rf_err err, int64_t t0) {
    int64_t us = (now_ns() - t0) / 1000;
    if (err != RF_OK) {
        w->failed++;
        return;
    }
    int64_t bucket = us / BENCH_BUCKET_US;
    w->hist[bucket < BENCH_BUCKETS ? bucket : BENCH_BUCKETS - 1]++;
    w->ops++;
}

/* On an executor thread: hands the call back to its worker, nothing more. */
static void call_done(void *arg, rf_err err) {
    struct call *c = arg;
    struct worker *w = c->w;
    c->err = err;
    pthread_mutex_lock(&w->mu);
    c->next = w->done;
    w->done = c;
    pthread_cond_signal(&w->answered);
    pthread_mutex_unlock(&w->mu);
}

static void call_submit(struct worker *w, struct call *c, uint64_t n) {
    struct bench *b = w->b;
    account_name(c->id, sizeof c->id, (int)((w->tid * 7919 + n) % (uint64_t)b->accounts));
    c->req = (struct rf_credit_req){.id = c->id, .amount_minor = 1};
    c->idem = (struct rf_idem){.api_key_id = "bench"};
    if (b->with_key) {
        snprintf(c->key, sizeof c->key, "t%d-%" PRIu64, w->tid, n);
        c->idem.key = c->key;
        const void *parts[2] = {c->id, c->key};
        const size_t lens[2] = {strlen(c->id) + 1, strlen(c->key)};
        rf_idem_hash(&c->idem, 2, parts, lens);
    }
    c->t0 = now_ns();
    rf_op_submit(b->db, RF_OP_CREDIT_APPLY, &c->req, &c->res, b->with_key ? &c->idem : NULL, NULL,
                 call_done, c);
}

/* Window mode: W calls in flight; each answer submits the next, until stop,
 * then waits for the rest (their memory is rf_op_submit's until then). */
static void *window_main(void *arg) {
    struct worker *w = arg;
    struct bench *b = w->b;
    struct call *calls = calloc((size_t)b->window, sizeof *calls);
    if (!calls) exit(1);
    pthread_barrier_wait(&b->start);
    uint64_t n = 0;
    int in_flight = b->window;
    for (int i = 0; i < b->window; i++) {
        calls[i].w = w;
        call_submit(w, &calls[i], n++);
    }
    while (in_flight > 0) {
        pthread_mutex_lock(&w->mu);
        while (!w->done) pthread_cond_wait(&w->answered, &w->mu);
        struct call *c = w->done;
        w->done = NULL;
        pthread_mutex_unlock(&w->mu);
        bool stop = atomic_load_explicit(&b->stop, memory_order_relaxed);
        while (c) {
            struct call *next = c->next;
            record(w, c->err, c->t0);
            if (c->err == RF_OK) rf_transfer_clear(&c->res.transfer);
            if (stop) in_flight--;
            else call_submit(w, c, n++);
            c = next;
        }
    }
    free(calls);
    return NULL;
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    if (w->b->window > 0) return window_main(w);
    pthread_barrier_wait(&w->b->start);
    for (uint64_t n = 0; !atomic_load_explicit(&w->b->stop, memory_order_relaxed); n++) {
        int64_t t0 = now_ns();
        record(w, credit_once(w, n), t0);
    }
    return NULL;
}

/* The latency (ms) below which a fraction q of the calls fell. */
static double percentile_ms(const uint64_t *hist, uint64_t total, double q) {
    uint64_t want = (uint64_t)((double)total * q), seen = 0;
    for (int i = 0; i < BENCH_BUCKETS; i++) {
        seen += hist[i];
        if (seen > want) return (double)(i + 1) * BENCH_BUCKET_US / 1000.0;
    }
    return (double)BENCH_BUCKETS * BENCH_BUCKET_US / 1000.0;
}

static void report(struct bench *b, struct worker *ws, double secs) {
    uint64_t *hist = calloc(BENCH_BUCKETS, sizeof *hist);
    uint64_t ops = 0, failed = 0;
    if (!hist) return;
    for (int t = 0; t < b->threads; t++) {
        ops += ws[t].ops;
        failed += ws[t].failed;
        for (int i = 0; i < BENCH_BUCKETS; i++) hist[i] += ws[t].hist[i];
    }
    printf("RESULT mode=%s threads=%d window=%d seconds=%.1f ops=%" PRIu64 " ops_s=%.0f "
           "p50_ms=%.2f p99_ms=%.2f failed=%" PRIu64 "\n",
           b->with_key ? "key" : "nokey", b->threads, b->window, secs, ops, (double)ops / secs,
           percentile_ms(hist, ops, 0.50), percentile_ms(hist, ops, 0.99), failed);
    free(hist);
}

static bool run(struct bench *b) {
    struct worker *ws = calloc((size_t)b->threads, sizeof *ws);
    pthread_t *tids = calloc((size_t)b->threads, sizeof *tids);
    bool ok = ws && tids;
    pthread_barrier_init(&b->start, NULL, (unsigned)b->threads + 1);
    for (int t = 0; ok && t < b->threads; t++) {
        ws[t] = (struct worker){.b = b, .tid = t, .hist = calloc(BENCH_BUCKETS, sizeof(uint32_t))};
        pthread_mutex_init(&ws[t].mu, NULL);
        pthread_cond_init(&ws[t].answered, NULL);
        ok = ws[t].hist && pthread_create(&tids[t], NULL, worker_main, &ws[t]) == 0;
        if (!ok) {
            fprintf(stderr, "cannot start thread %d\n", t);
            exit(1);                  /* the started threads wait at the barrier forever */
        }
    }
    pthread_barrier_wait(&b->start);
    int64_t t0 = now_ns();
    sleep((unsigned)b->seconds);
    atomic_store(&b->stop, true);
    for (int t = 0; t < b->threads; t++) pthread_join(tids[t], NULL);
    report(b, ws, (double)(now_ns() - t0) / 1e9);
    for (int t = 0; ws && t < b->threads; t++) free(ws[t].hist);
    pthread_barrier_destroy(&b->start);
    free(ws);
    free(tids);
    return ok;
}

static int usage(void) {
    fprintf(stderr, "usage: rf-bench-embedded [--threads N] [--seconds D] [--accounts A] "
                    "[--no-key] [--window W] [--dir DIR]\n");
    return 2;
}

static bool int_arg(const char *text, int min, int max, int *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < min || v > max) return false;
    *out = (int)v;
    return true;
}

int main(int argc, char **argv) {
    /* as the README asks of an embedder on glibc: keep freed heap */
    (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
    (void)mallopt(M_MMAP_THRESHOLD, 4 << 20);
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); /* and no memory statistics */
    struct bench b = {.threads = 64, .seconds = 5, .accounts = 256, .with_key = true};
    const char *dir = "/tmp";
    for (int i = 1; i < argc; i++) {
        bool more = i + 1 < argc;
        if (strcmp(argv[i], "--no-key") == 0) b.with_key = false;
        else if (more && strcmp(argv[i], "--threads") == 0) {
            if (!int_arg(argv[++i], 1, BENCH_THREADS_MAX, &b.threads)) return usage();
        } else if (more && strcmp(argv[i], "--seconds") == 0) {
            if (!int_arg(argv[++i], 1, 3600, &b.seconds)) return usage();
        } else if (more && strcmp(argv[i], "--accounts") == 0) {
            if (!int_arg(argv[++i], 1, BENCH_ACCOUNTS_MAX, &b.accounts)) return usage();
        } else if (more && strcmp(argv[i], "--window") == 0) {
            if (!int_arg(argv[++i], 1, BENCH_WINDOW_MAX, &b.window)) return usage();
        } else if (more && strcmp(argv[i], "--dir") == 0) dir = argv[++i];
        else return usage();
    }
    char path[512], url[600];
    snprintf(path, sizeof path, "%s/rf-bench-embedded-%d.db", dir, (int)getpid());
    snprintf(url, sizeof url, "sqlite:%s", path);
    struct rf_options opt = {.sync = RF_SYNC_FULL};
    rf_err err = rf_open(url, &opt, &b.db);
    if (err != RF_OK) {
        fprintf(stderr, "rf_open %s: %s\n", url, rf_err_code(err));
        return 1;
    }
    bool ok = make_accounts(&b) && run(&b);
    rf_close(b.db);
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char f[520];
        snprintf(f, sizeof f, "%s%s", path, suffixes[i]);
        unlink(f);
    }
    return ok ? 0 : 1;
}
