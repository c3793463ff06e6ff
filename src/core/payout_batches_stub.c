/*
 * payout_batches_stub.c - TEMPORARY: replaced by payout_batches.c at merge.
 *
 * A stand-in for payout_batch_run (flows.h) so the scheduler links and its
 * tests run before the payout batches land: it pays nothing out. It
 * remembers each run_key it was given (in memory, per process) and answers
 * the same batch id for a repeated key, as the real function does for a
 * batch that already exists; a new key gets a new id. It logs each call
 * ("payout_batch_run (stub)") with its run_key.
 */
#include <pthread.h>
#include <string.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/log.h"
#include "core/flows.h"

#define STUB_KEYS_MAX 4096

static pthread_mutex_t stub_mu = PTHREAD_MUTEX_INITIALIZER;
static int stub_n;
static struct {
    char run_key[RF_ID_BYTES];
    char batch_id[RF_UUID_TEXT_BYTES];
} stub_runs[STUB_KEYS_MAX];

rf_err payout_batch_run(rf *db, const struct payout_batch_spec *spec,
                        char batch_id_out[RF_ID_BYTES], struct rf_fault *fault) {
    RF_ASSERT(db && spec && spec->run_key && batch_id_out);
    (void)fault;
    pthread_mutex_lock(&stub_mu);
    int i = 0;
    while (i < stub_n && strcmp(stub_runs[i].run_key, spec->run_key) != 0) i++;
    if (i == stub_n) {
        i = stub_n < STUB_KEYS_MAX ? stub_n++ : 0; /* full: recycle the oldest slot */
        rf_strcpy(stub_runs[i].run_key, sizeof stub_runs[i].run_key, spec->run_key);
        rf_uuid7(rf_now_ms(), stub_runs[i].batch_id);
    }
    rf_strcpy(batch_id_out, RF_ID_BYTES, stub_runs[i].batch_id);
    pthread_mutex_unlock(&stub_mu);
    struct rf_log_kv kv[2] = {RF_KV_STR("run_key", spec->run_key),
                              RF_KV_STR("batch_id", batch_id_out)};
    rf_log_kv(RF_LOG_INFO, kv, 2, "payout_batch_run (stub)");
    return RF_OK;
}
