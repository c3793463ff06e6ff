/*
 * parallel.c - N threads released together by a pthread barrier.
 *
 * Every thread is created first and parked on the barrier; the barrier opens
 * only when all N have arrived, so their requests hit the server as close to
 * simultaneously as the machine allows.
 */
#include "testlib/rf_testlib.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct par {
    pthread_barrier_t barrier;
    void (*fn)(int idx, void *ctx);
    void *ctx;
};

struct par_thread {
    struct par *par;
    int idx;
};

static void *par_main(void *arg)
{
    struct par_thread *t = arg;
    pthread_barrier_wait(&t->par->barrier);
    t->par->fn(t->idx, t->par->ctx);
    return NULL;
}

int rf_parallel_fn(int n, void (*fn)(int idx, void *ctx), void *ctx)
{
    if (n <= 0)
        return -1;
    struct par par = {.fn = fn, .ctx = ctx};
    pthread_t *tids = calloc((size_t)n, sizeof *tids);
    struct par_thread *ts = calloc((size_t)n, sizeof *ts);
    if (!tids || !ts || pthread_barrier_init(&par.barrier, NULL, (unsigned)n) != 0) {
        free(tids);
        free(ts);
        return -1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1024 * 1024);
    for (int i = 0; i < n; i++) {
        ts[i] = (struct par_thread){.par = &par, .idx = i};
        int rc = pthread_create(&tids[i], &attr, par_main, &ts[i]);
        if (rc != 0) {
            /* The barrier can never open now: the threads already parked on
             * it would wait forever. A test cannot recover from this. */
            fprintf(stderr, "testlib: pthread_create %d/%d: %s\n", i, n, strerror(rc));
            abort();
        }
    }
    pthread_attr_destroy(&attr);
    for (int i = 0; i < n; i++)
        pthread_join(tids[i], NULL);
    pthread_barrier_destroy(&par.barrier);
    free(tids);
    free(ts);
    return 0;
}

static void par_req_one(int idx, void *ctx)
{
    struct rf_par_req *r = &((struct rf_par_req *)ctx)[idx];
    rf_req(r->port, r->method, r->path, r->api_key, r->body, r->headers, &r->resp);
}

int rf_parallel(struct rf_par_req *reqs, int n)
{
    return rf_parallel_fn(n, par_req_one, reqs);
}

void rf_par_free(struct rf_par_req *reqs, int n)
{
    for (int i = 0; i < n; i++)
        rf_resp_free(&reqs[i].resp);
}
