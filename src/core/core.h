/*
 * core.h - what the flows in src/core share: the rf handle and the two ways
 * an operation reaches the executor (core_write with the Idempotency-Key
 * layer around it, core_read for reads that decide no write).
 */
#ifndef RF_CORE_H
#define RF_CORE_H

#include <pthread.h>

#include "base/ids.h"
#include "base/limits.h"
#include "core/codec.h"
#include "exec/executor.h"
#include "store/store.h"

struct rf {
    struct rf_exec *exec;
    const struct store_ops *ops;
    struct rf_options opt;
    bool test_hooks;
    /* Idempotency keys whose first request is running in this process:
     * a second request with the same key gets 409 in flight. */
    pthread_mutex_t inflight_mu;
    int inflight_n;
    uint64_t inflight[RF_INFLIGHT_MAX];
    /* API keys recently read from the store (keys.c). */
    struct key_cache *key_cache;
    /* rf_op_submit's calls in flight (api.c). */
    struct op_pool *op_pool;
    /* The sweep thread, when rf_options.sweep_interval_ms asked for one
     * (sweep.c); NULL otherwise. */
    struct sweeper *sweeper;
    /* Currencies whose system accounts (funding:, payouts:) a committed
     * transaction of this handle made or used (ledger.c): accounts are never
     * deleted, so a credit in one skips the existence check. Written under
     * sys_mu, read without it (sys_n is published after its entry). */
    pthread_mutex_t sys_mu;
    _Atomic int sys_n;
    char sys_known[RF_SYS_CURRENCIES_MAX][RF_CURRENCY_BYTES];
    /* Test hooks of payout batch runs (rf_test_payout_batch); 0: unset. */
    struct {
        _Atomic int pause_ms;
        _Atomic int chunk_wallets;
        _Atomic int64_t lease_ttl_ms;
    } batch_hook;
    /* Test hooks of announcement fan-outs (rf_test_fanout, fanout.c). */
    struct {
        _Atomic int pause_ms;
        _Atomic int64_t lease_ms;
        pthread_mutex_t mu; /* fail_users */
        char fail_users[RF_TEST_FANOUT_FAIL_USERS_CHARS_MAX + 1];
    } fanout_hook;
};

/* A refusal's facts (rf_facts), recorded where the operation decides it,
 * from the row state that decided it (not a later read, which could see a
 * newer state than the one refused). No-ops outside an operation. */
void core_fact_status(struct rf_tx *tx, const char *status);
void core_fact_version(struct rf_tx *tx, int64_t version);
void core_fact_available(struct rf_tx *tx, int64_t available, const char *currency);

/* sweep.c: whether rf_options.sweep_interval_ms is allowed (0: no thread),
 * and the thread's life, with the handle's: started once the executor
 * runs, stopped before it drains. */
bool sweep_interval_valid(int interval_ms);
rf_err sweeper_start(rf *db, int interval_ms);
void sweeper_stop(rf *db);

/* keys.c: the authentication cache's life, with the handle's. */
rf_err key_cache_open(rf *db);
void key_cache_close(rf *db);
/* keys.c: splits a key's text "rfk_<uuid>_<64 hex>" (the Authorization
 * header's bearer token) into its id and its secret, without the store;
 * false when malformed. Its own function so tests/fuzz can feed it. */
bool key_text_parse(const char *text, char id[RF_UUID_TEXT_BYTES], const char **secret);

/* Runs fn(tx, ctx) as one write transaction (core_read: one read). shard:
 * a hash of the operation's natural key (0: none): writes with one shard run
 * on one committer, in order (exec_op.shard). */
rf_err core_write(rf *db, const char *name, uint32_t shard, exec_fn fn, void *ctx);
rf_err core_read(rf *db, const char *name, exec_fn fn, void *ctx);

/* An operation's typed result, as the Idempotency-Key record stores it. */
struct core_result {
    const struct rf_codec *codec;
    void *res;
    size_t res_size;
    void (*clear)(void *res);   /* NULL: res owns nothing */
    bool seal;                  /* stored sealed under idem->seal_secret */
};
/* Runs fn(tx, ctx) as one write transaction with the Idempotency-Key record
 * (idem->key set) read and written in it: a record of the same request
 * fills r->res from the stored result (idem->replayed); none runs fn and
 * stores r->res; a different request is RF_ERR_IDEM_REUSED. */
rf_err core_write_result(rf *db, const char *name, uint32_t shard, exec_fn fn, void *ctx,
                         const struct core_result *r, struct rf_idem *idem);

/* One keyed call inside the Idempotency-Key layer (idempotency.c). */
struct core_idem_call {
    exec_fn fn;
    void *ctx;
    struct rf_idem *idem;
    uint64_t hash64;
    int64_t retention_ms;
    const struct core_result *typed;
};
/* A submitted write: the caller's memory (with fn's ctx, r's result and
 * idem) until done ran. */
struct core_pending {
    rf *db;
    struct exec_op op;
    struct core_idem_call call; /* with a key */
    struct core_result typed;
    bool keyed;
    exec_done_fn done;
    void *arg;
};
/* core_write (r NULL) or core_write_result without waiting: done(arg, err)
 * runs exactly once, on an executor thread after the COMMIT or rollback, or
 * on this thread before it returns when the operation was refused (its key
 * in flight, a full queue, shutting down). */
void core_write_submit(rf *db, const char *name, uint32_t shard, exec_fn fn, void *ctx,
                       const struct core_result *r, struct rf_idem *idem,
                       struct core_pending *p, exec_done_fn done, void *arg);

/* api.c: the bounded pool of rf_op_submit's calls, with the handle's life. */
rf_err op_pool_open(rf *db);
void op_pool_close(rf *db);

/* The version for a new incarnation of the natural key (resource, scope,
 * key): above every version that key was ever given, and at least at_least.
 * Row-locks the key's counter until the transaction ends (versions.c). */
rf_err core_version_next(struct rf_tx *tx, const char *resource, const char *scope,
                         const char *key, int64_t at_least, int64_t *out);

/* A row reader for store_query_one/each: column 0 into *(int64_t *)out. */
void core_int_row(struct rf_tx *tx, struct store_rows *r, void *out);
/* Copies a nullable column into a malloc'd string (NULL for NULL). */
char *core_dup_col(struct rf_tx *tx, struct store_rows *r, int col);
/* Copies a nullable column into out (cap bytes); NULL leaves out as it is. */
void core_chars_col(struct rf_tx *tx, struct store_rows *r, int col, char *out, size_t cap);
/* Cursor pagination: clamps limit to [1, RF_LIST_LIMIT_MAX]. */
int core_limit(int limit);

#endif
