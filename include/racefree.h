/*
 * racefree.h - the public library API.
 *
 * Every rf_<operation>() runs as exactly one database transaction, owned by
 * the executor (src/exec). Natural keys are enforced by the schema, and every
 * write is one atomic statement, so a concurrent caller gets an answer (the
 * existing row or a clear conflict), never a constraint error.
 *
 * Threading: an rf handle is safe to share between threads. Output structs are
 * owned by the caller; functions that fill heap memory say so and pair with an
 * rf_*_clear() function.
 *
 * Misuse: a NULL handle, request or result, an op outside RF_OPS, a bad
 * Idempotency-Key is answered RF_ERR_INVALID (with struct rf_fault's detail
 * where the function takes one); the library never aborts on its caller's
 * arguments. A void function given a NULL handle does nothing.
 *
 * Sweeps: pending transfers past expires_at are voided, and Idempotency-Key
 * records past their retention are deleted, only by a sweep. `racefree
 * serve` runs them; an embedding program must too: set
 * rf_options.sweep_interval_ms (the library then sweeps on a thread of its
 * own), or call rf_sweep() itself, every few seconds (see rf_sweep).
 */
#ifndef RACEFREE_H
#define RACEFREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "racefree_errors.h"
#include "racefree_version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the shared library exports: the functions declared here, and
 * nothing else (it is built with -fvisibility=hidden). */
#if defined(__GNUC__) && defined(RF_BUILDING_LIBRARY)
#define RF_API __attribute__((visibility("default")))
#else
#define RF_API
#endif

/* The library's version, "MAJOR.MINOR.PATCH" (the same as RF_VERSION in
 * racefree_version.h when the headers and the library match). */
RF_API const char *rf_version(void);
/* The git commit the library was built from ("" when unknown). */
RF_API const char *rf_build_commit(void);

/* Ids and keys: 1-128 chars of [A-Za-z0-9._:-]; +1 for the NUL. */
#define RF_ID_BYTES 129
#define RF_ROLE_BYTES 16
#define RF_STATUS_BYTES 16
#define RF_CURSOR_BYTES 300
/* An API key as shown to the user: "rfk_<id>_<secret>". */
#define RF_KEY_SECRET_BYTES 128

/* One error enum for the whole library and its HTTP edge, generated from
 * the list in racefree_errors.h. Names are stable: rf_err_code() returns the
 * API's `code` string, and http/respond.c answers each with its row's status. */
#define RF_ERR_ENUM_ROW_(name, code, status, retry_after, title, detail) name,
#define RF_ERR_COUNT_ROW_(name, code, status, retry_after, title, detail) +1
typedef enum rf_err {
    RF_ERRORS(RF_ERR_ENUM_ROW_)
    RF_ERR__COUNT,
    /* Values below this are the library's; the rest only the HTTP edge answers. */
    RF_ERR__LIBRARY_COUNT = 0 RF_ERRORS_LIBRARY(RF_ERR_COUNT_ROW_)
} rf_err;
#undef RF_ERR_ENUM_ROW_
#undef RF_ERR_COUNT_ROW_

RF_API const char *rf_err_code(rf_err err);
/* The rf_err whose code is `code` (any row, RF_OK's "ok" included); false
 * when no row has it. */
RF_API bool rf_err_parse(const char *code, rf_err *out);

typedef struct rf rf;

enum rf_sync { RF_SYNC_FULL = 0, RF_SYNC_NORMAL = 1 };

/* Zero-initialised options mean "the default" for every field. A size or
 * count past its bound is clamped to it (queue_ops_max 4096, batch_ops_max
 * 128, writers 16, pool_conns 128); sweep_interval_ms out of its range is
 * RF_ERR_INVALID. */
struct rf_options {
    enum rf_sync sync;          /* SQLite synchronous; default full */
    int queue_ops_max;          /* executor queue bound; default RF_QUEUE_OPS_MAX */
    int batch_ops_max;          /* group commit batch; default RF_BATCH_OPS_MAX (128) */
    int writers;                /* PostgreSQL: threads committing batches, each on its
                                   own connection; default 2 (SQLite: always 1) */
    int pool_conns;             /* PostgreSQL pool size; default RF_POOL_CONNS_DEFAULT */
    int busy_timeout_ms;        /* SQLite busy_timeout; default RF_BUSY_TIMEOUT_MS */
    int64_t idem_retention_ms;  /* Idempotency-Key retention; default 24 h */
    int payout_max_attempts;    /* failed attempts before a payout fails; default 5 */
    int pg_timeout_ms;          /* PostgreSQL: bound on each wait (connect, statement,
                                   COMMIT, pool); default RF_PG_TIMEOUT_MS (5 s) */
    bool no_migrate;            /* do not apply migrations at open */
    bool test_hooks;            /* the library's own tests' fault injection; leave false */
    bool spread_keys;           /* send each write to the shortest queue instead of
                                   by its key (RACEFREE_SPREAD_KEYS=1 in the
                                   environment sets it too). Slower; for race
                                   tests: one process then races one key's
                                   operations between its writers, as several
                                   processes always do, where key routing would
                                   line them up on one writer */
    int sweep_interval_ms;      /* > 0: a library thread runs rf_sweep(RF_SWEEP_ALL)
                                   every this many ms (RF_SWEEP_INTERVAL_MS_MIN..
                                   RF_SWEEP_INTERVAL_MS_MAX; 5000 is what `racefree
                                   serve` does), from rf_open to rf_close. 0 (the
                                   default): no thread; the program calls rf_sweep().
                                   Out of range: rf_open is RF_ERR_INVALID */
    int64_t lease_max_ttl_ms;   /* longest ttl_ms a lease acquire or renew may ask;
                                   default RF_LEASE_TTL_MS_MAX_DEFAULT (60 s), at most
                                   RF_LEASE_TTL_MS_LIMIT (1 day) */
};

/* url: "sqlite:PATH" or "postgres://..." / "postgresql://...". */
RF_API rf_err rf_open(const char *url, const struct rf_options *options, rf **out);
/* Stops the sweep thread, then drains the executor (finishes queued
 * operations and the current batch). NULL: nothing. */
RF_API void rf_close(rf *db);
/* Stop accepting new operations (they get RF_ERR_SHUTTING_DOWN). */
RF_API void rf_shutdown_begin(rf *db);

/* Store reachable and schema current. */
RF_API rf_err rf_ready(rf *db);
/* Applies migrations; *version_out gets the schema version now in place. */
RF_API rf_err rf_migrate(const char *url, int *version_out);
RF_API int rf_schema_version_latest(void);

/* Executor and store counters, for /metrics. */
#define RF_STATS_TX_BUCKETS 13
struct rf_stats {
    int64_t queue_depth;
    int64_t queue_ops_max;
    int64_t batches;
    int64_t batch_ops_total;   /* sum of batch sizes */
    int64_t batch_ops_hist[8]; /* sizes 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64-127, 128+ */
    int64_t retries;
    int64_t overloaded;
    int64_t store_errors;
    /* Batch transactions by their latency, BEGIN to COMMIT's answer: counts
     * per bucket (upper bounds: exec_tx_bounds_us, the last +Inf) and the
     * sum in microseconds. */
    int64_t tx_us_hist[RF_STATS_TX_BUCKETS];
    int64_t tx_us_total;
};
RF_API void rf_stats_get(rf *db, struct rf_stats *out);
RF_API const char *rf_backend_name(rf *db); /* "sqlite" or "postgres" */

/* ---- Operations ----------------------------------------------------------
 * Every operation is one row of one table (src/core/api.c): its name, its
 * request struct and the one field spec that validates it, its transaction
 * function, its typed result. rf_op_run() is the one door: it validates the
 * request, runs the operation as one transaction (with the Idempotency-Key
 * record in that same transaction when idem->key is set) and fills the
 * typed result, also on a replay. The rf_<operation>() functions below are
 * thin wrappers over it. The name is the executor's operation name (metrics,
 * test hooks) and the Idempotency-Key record's. */
#define RF_OPS(X)                                          \
    X(RF_OP_ENTITLEMENT_GRANT, "entitlement_grant")        \
    X(RF_OP_ENTITLEMENT_REVOKE, "entitlement_revoke")      \
    X(RF_OP_ENTITLEMENT_GET, "entitlement_get")            \
    X(RF_OP_ENTITLEMENT_LIST, "entitlement_list")          \
    X(RF_OP_KEY_CREATE, "key_create")                      \
    X(RF_OP_KEY_REVOKE, "key_revoke")                      \
    X(RF_OP_KEY_LIST, "key_list")                          \
    X(RF_OP_KEY_GET, "key_get")                            \
    X(RF_OP_ACCOUNT_CREATE, "account_create")              \
    X(RF_OP_ACCOUNT_GET, "account_get")                    \
    X(RF_OP_ACCOUNT_ENTRIES, "account_entries")            \
    X(RF_OP_TRANSFER_CREATE, "transfer_create")            \
    X(RF_OP_TRANSFER_GET, "transfer_get")                  \
    X(RF_OP_TRANSFER_POST, "transfer_post")                \
    X(RF_OP_TRANSFER_VOID, "transfer_void")                \
    X(RF_OP_CREDIT_APPLY, "credit_apply")                  \
    X(RF_OP_PAYOUT_CREATE, "payout_create")                \
    X(RF_OP_PAYOUT_ATTEMPT, "payout_attempt")              \
    X(RF_OP_PAYOUT_SUCCEEDED, "payout_succeeded")          \
    X(RF_OP_PAYOUT_FAILED, "payout_failed")                \
    X(RF_OP_PAYOUT_GET, "payout_get")                      \
    X(RF_OP_PAYOUT_LIST, "payout_list")                    \
    X(RF_OP_CUSTOMER_BIND, "customer_bind")                \
    X(RF_OP_CUSTOMER_GET, "customer_get")                  \
    X(RF_OP_CUSTOMER_LOOKUP, "customer_lookup")            \
    X(RF_OP_CUSTOMER_UNBIND, "customer_unbind")            \
    X(RF_OP_APPROVAL_CREATE, "approval_create")            \
    X(RF_OP_APPROVAL_APPROVE, "approval_approve")          \
    X(RF_OP_APPROVAL_REJECT, "approval_reject")            \
    X(RF_OP_APPROVAL_CANCEL, "approval_cancel")            \
    X(RF_OP_APPROVAL_GET, "approval_get")                  \
    X(RF_OP_APPROVAL_LIST, "approval_list")                \
    X(RF_OP_ACCOUNT_LIST, "account_list")                  \
    X(RF_OP_TRANSFER_LIST, "transfer_list")                \
    X(RF_OP_CHECKOUT_CREATE, "checkout_create")            \
    X(RF_OP_CHECKOUT_BIND_REF, "checkout_bind_ref")        \
    X(RF_OP_CHECKOUT_GET, "checkout_get")                  \
    X(RF_OP_CHECKOUT_LIST, "checkout_list")                \
    X(RF_OP_CHECKOUT_CANCEL, "checkout_cancel")            \
    X(RF_OP_WEBHOOK_SECRET_SET, "webhook_secret_set")      \
    X(RF_OP_WEBHOOK_SECRET_ROTATE, "webhook_secret_rotate") \
    X(RF_OP_WEBHOOK_SECRET_LIST, "webhook_secret_list")    \
    X(RF_OP_WEBHOOK_RECEIVE, "webhook_receive")            \
    X(RF_OP_WEBHOOK_EVENT_LIST, "webhook_event_list")      \
    X(RF_OP_LEASE_ACQUIRE, "lease_acquire")                \
    X(RF_OP_LEASE_RENEW, "lease_renew")                    \
    X(RF_OP_LEASE_RELEASE, "lease_release")                \
    X(RF_OP_LEASE_GET, "lease_get")                        \
    X(RF_OP_PAYOUT_BATCH_GET, "payout_batch_get")          \
    X(RF_OP_JOB_ENQUEUE, "job_enqueue")                    \
    X(RF_OP_JOB_CLAIM, "job_claim")                        \
    X(RF_OP_JOB_HEARTBEAT, "job_heartbeat")                \
    X(RF_OP_JOB_COMPLETE, "job_complete")                  \
    X(RF_OP_JOB_FAIL, "job_fail")                          \
    X(RF_OP_JOB_CANCEL, "job_cancel")                      \
    X(RF_OP_JOB_GET, "job_get")                            \
    X(RF_OP_QUEUE_STATS, "queue_stats")                    \
    X(RF_OP_DROPIN_PROCESS, "dropin_process")              \
    X(RF_OP_DROPIN_MATCH_RECORD, "dropin_match_record")    \
    X(RF_OP_DROPIN_MATCH_LIST, "dropin_match_list")      \
    X(RF_OP_NOTIFICATION_CREATE, "notification_create")  \
    X(RF_OP_NOTIFICATION_GET, "notification_get")        \
    X(RF_OP_NOTIFICATION_LIST, "notification_list")      \
    X(RF_OP_NOTIFICATION_UNREAD_COUNT, "notification_unread_count") \
    X(RF_OP_NOTIFICATION_READ, "notification_read")      \
    X(RF_OP_NOTIFICATION_UNREAD, "notification_unread")  \
    X(RF_OP_NOTIFICATION_READ_ALL, "notification_read_all") \
    X(RF_OP_ANNOUNCEMENT_CREATE, "announcement_create")    \
    X(RF_OP_ANNOUNCEMENT_GET, "announcement_get")          \
    X(RF_OP_ANNOUNCEMENT_RETRY_FAILED, "announcement_retry_failed")

typedef enum rf_op {
#define RF_OP_ENUM_(id, name) id,
    RF_OPS(RF_OP_ENUM_)
#undef RF_OP_ENUM_
    RF_OP__COUNT
} rf_op;

/* The operation's name ("entitlement_grant"); NULL for an unknown op. */
RF_API const char *rf_op_name(rf_op op);

/* What was wrong with a request, when validation refused it: the field at
 * fault and a sentence. code is the API code to show (invalid_field,
 * unknown_field, or the operation's own error). */
#define RF_FACT_STATUS_BYTES 32
/* What a refusal depends on, as the store saw it when it refused, so a
 * client can act without reading again: the resource's current state
 * (invalid_state), its current version (version_mismatch), the debited
 * account's available balance and currency (insufficient_funds). Empty or
 * 0 when not known (has_available says whether available is). */
struct rf_facts {
    char status[RF_FACT_STATUS_BYTES];  /* "pending", "rejected", ... */
    int64_t version;
    bool has_available;
    int64_t available;                  /* minor units */
    char currency[4];
};

#define RF_FAULT_PARAM_BYTES 64
#define RF_FAULT_DETAIL_BYTES 256
struct rf_fault {
    rf_err code;
    char param[RF_FAULT_PARAM_BYTES];   /* "" when no single field is at fault */
    char detail[RF_FAULT_DETAIL_BYTES]; /* "" when the error's generic text fits */
    struct {
        const char *name;               /* NULL: none; e.g. "existing_transfer_id" */
        char value[RF_ID_BYTES];
    } extra[2];                         /* what the failure names besides the field */
    struct rf_facts facts;              /* the state the failure depends on */
};

struct rf_idem;
/* Runs op with its request struct req (the op's rf_*_req) and fills res (the
 * op's result struct, zeroed first; cleared again on failure). idem may be
 * NULL or carry no key; fault may be NULL. A request the op's field spec
 * refuses is RF_ERR_INVALID with fault filled. */
RF_API rf_err rf_op_run(rf *db, rf_op op, const void *req, void *res, struct rf_idem *idem,
                 struct rf_fault *fault);

/* ---- Submitting without waiting ----------------------------------------
 * rf_op_submit() is rf_op_run() for a thread that submits many operations
 * without waiting for each (the executor group-commits them together): it
 * validates req exactly as rf_op_run() does, queues the operation's
 * transaction (with its Idempotency-Key record) and returns; done(arg, err)
 * then runs EXACTLY ONCE with what rf_op_run() would have returned, res,
 * idem->replayed and fault filled as it fills them.
 *
 * Which thread: an executor thread, right after the transaction's COMMIT
 * (or rollback); or the calling thread, before rf_op_submit() returns, when
 * the call is refused at once (an invalid request; its Idempotency-Key in
 * flight; RF_ERR_OVERLOADED when the queue, or the 4096 calls a handle keeps
 * in flight (RF_SUBMIT_CALLS_MAX), are full; RF_ERR_SHUTTING_DOWN). A read
 * operation runs at once on the calling thread. So done may run before
 * rf_op_submit() returns: set up whatever it touches first.
 *
 * In done: be short (it holds up the commits of other operations) and call
 * NO rf_* function of this handle (an executor thread waiting on its own
 * queue never returns); hand the outcome to another thread instead.
 *
 * Lifetime: req (and every string it points to), res, idem (and its
 * strings) and fault must stay valid and untouched until done ran; res is
 * the caller's to read, and to rf_*_clear(), from done on. fault may be
 * NULL. Operations submitted by one thread may commit in any order (one
 * with the Idempotency-Key of another still in flight is answered
 * RF_ERR_IDEM_IN_FLIGHT, as concurrent rf_op_run() calls are).
 *
 * Returns RF_OK when done runs (or ran) exactly once; RF_ERR_INVALID when
 * done is NULL: nothing was submitted and nothing will be called. (A NULL
 * db, req or res, or an op outside RF_OPS, is told to done as
 * RF_ERR_INVALID.) */
typedef void (*rf_done_fn)(void *arg, rf_err err);
RF_API rf_err rf_op_submit(rf *db, rf_op op, const void *req, void *res,
                           struct rf_idem *idem, struct rf_fault *fault, rf_done_fn done,
                           void *arg);

/* The request of every list: scope is the list's owner where it has one (a
 * user, an account), status a filter of the list's own enum (0: its
 * default), after a cursor (NULL or "": from the start), limit rows (0: the
 * default; at most RF_LIST_LIMIT_MAX). */
struct rf_list_req {
    const char *scope;
    int64_t status;
    const char *after;
    int64_t limit;
};

/* ---- Idempotency-Key ---------------------------------------------------
 * Given to a state-changing operation that takes one. Inside the
 * operation's transaction: a stored result for (api_key_id, key) fills the
 * caller's result struct (replayed = true) or, if request_hash differs,
 * RF_ERR_IDEM_REUSED; otherwise the operation runs and, when it succeeds,
 * its typed result is stored with the effect. Failed operations store
 * nothing. A record written by a version before typed results cannot be
 * replayed: RF_ERR_CONFLICT (the effect happened; it never runs again). */
struct rf_idem {
    const char *key;            /* NULL: no idempotency; else 1..255 characters */
    const char *api_key_id;     /* the scope keys are unique in: required with a key,
                                   1..128 characters (an embedding program without
                                   callers of its own: any fixed text, e.g. "app") */
    /* What identifies the request: rf_idem_hash. Left zero, every request
     * under one key counts as the same one: a different request replays
     * the first one's result instead of answering RF_ERR_IDEM_REUSED. */
    uint8_t request_hash[32];
    /* The caller's secret (the server: the caller's API key text). An
     * operation whose result carries a secret (a new API key) stores it
     * sealed (XChaCha20-Poly1305) under a key derived from this and the
     * Idempotency-Key, so it is never readable at rest and only the same
     * caller can replay it; such an operation refuses a key without one. */
    const char *seal_secret;
    /* out */
    bool replayed;
};
#define RF_IDEM_HASH_PARTS_MAX 8
/* Fills request_hash over the parts that identify the request, in order
 * (the server: the method and the path, each with its NUL, then the body).
 * At most RF_IDEM_HASH_PARTS_MAX parts; a NULL or empty part adds nothing.
 * RF_ERR_INVALID (and nothing filled) for a NULL idem, a count outside
 * 0..RF_IDEM_HASH_PARTS_MAX, or parts/lens NULL with a count. */
RF_API rf_err rf_idem_hash(struct rf_idem *idem, int n_parts, const void *const parts[],
                           const size_t lens[]);

/* ---- Entitlements ------------------------------------------------------ */
/* The list's ?status= filter (struct rf_list_req's status), in this order:
 * active, revoked or expired entitlements (enum rf_ent_status), or all. */
enum rf_ent_filter { RF_ENT_ACTIVE = 0, RF_ENT_REVOKED, RF_ENT_EXPIRED, RF_ENT_ALL };

/* An entitlement's state; the names "active", "revoked" and "expired"
 * appear only at the edge (JSON, the database's status column). expired is
 * never stored: an active row read past its expires_at is expired. Each
 * value equals the filter that lists it (RF_ENT_STATUS_X == RF_ENT_X). */
enum rf_ent_status {
    RF_ENT_STATUS_ACTIVE = RF_ENT_ACTIVE,
    RF_ENT_STATUS_REVOKED = RF_ENT_REVOKED,
    RF_ENT_STATUS_EXPIRED = RF_ENT_EXPIRED,
};
/* "active" | "revoked" | "expired"; NULL for a value that is no status. */
RF_API const char *rf_ent_status_name(enum rf_ent_status status);

struct rf_entitlement {
    char id[RF_ID_BYTES];
    char user_id[RF_ID_BYTES];
    char key[RF_ID_BYTES];
    enum rf_ent_status status;
    char *source;                 /* malloc'd or NULL */
    char *metadata_json;          /* malloc'd or NULL */
    int64_t expires_at_ms;        /* 0: never */
    int64_t granted_at_ms;
    int64_t revoked_at_ms;        /* 0: not revoked */
    int64_t updated_at_ms;
    int64_t version;
};
RF_API void rf_entitlement_clear(struct rf_entitlement *e);

struct rf_grant_req {
    const char *user_id;
    const char *key;
    const char *source;         /* NULL: none */
    const char *metadata_json;  /* NULL: none; a JSON object text */
    int64_t expires_at_ms;      /* 0: never */
    int64_t if_match_version;   /* 0: unconditional */
};

struct rf_grant_res {
    struct rf_entitlement ent;
    bool created;  /* 201 vs 200 */
};

/* Names one entitlement: revoke (with If-Match; 0: unconditional) and get. */
struct rf_ent_ref {
    const char *user_id;
    const char *key;
    int64_t if_match_version;
};

RF_API rf_err rf_entitlement_grant(rf *db, const struct rf_grant_req *req,
                            struct rf_grant_res *res, struct rf_idem *idem);
RF_API rf_err rf_entitlement_revoke(rf *db, const char *user_id, const char *key,
                             int64_t if_match_version, struct rf_entitlement *out);
RF_API rf_err rf_entitlement_get(rf *db, const char *user_id, const char *key,
                          struct rf_entitlement *out);

/* Every list (the *_list functions and rf_account_entries) is in commit
 * order and safe to follow while writes continue: pass a page's next back
 * as `after` (NULL or "" for the start) and every row is returned exactly
 * once. A cursor is the id of the last row seen (entries: its seq); next
 * is the page's last one when more rows follow, "" when the page reached
 * the end: to see rows committed later, ask again with after = the last
 * row's id. An after that is not an id, or names no row of the list, is
 * RF_ERR_INVALID_CURSOR. */
struct rf_entitlement_page {
    struct rf_entitlement *items; /* malloc'd array of n; rf_entitlement_page_clear */
    int n;
    char next[RF_CURSOR_BYTES];   /* "" when this page reached the end of the list */
};
RF_API void rf_entitlement_page_clear(struct rf_entitlement_page *p);
RF_API rf_err rf_entitlement_list(rf *db, const char *user_id, enum rf_ent_filter filter,
                           const char *after, int limit, struct rf_entitlement_page *out);

/* ---- API keys ---------------------------------------------------------- */
enum rf_role { RF_ROLE_ADMIN = 1, RF_ROLE_SERVICE = 2, RF_ROLE_WORKER = 4, RF_ROLE_READONLY = 8 };
RF_API const char *rf_role_name(enum rf_role role);
RF_API bool rf_role_parse(const char *name, enum rf_role *out);

/* A rate limit: at most quota requests per window_ms (GCRA: the whole quota
 * may come at once, then one request per window_ms / quota). quota 0: none.
 * Bounds: 1 <= quota <= RF_RATE_QUOTA_MAX, RF_RATE_WINDOW_MS_MIN <=
 * window_ms <= RF_RATE_WINDOW_MS_MAX, and quota <= window_ms (at most one
 * request per millisecond sustained). */
struct rf_rate_limit {
    int64_t quota;
    int64_t window_ms;
};

struct rf_key {
    char id[RF_ID_BYTES];
    char name[RF_ID_BYTES];
    enum rf_role role;
    int64_t created_at_ms;
    int64_t revoked_at_ms; /* 0: active */
    struct rf_rate_limit rate_limit; /* the key's own limit; quota 0: its role's */
};

/* The request of RF_OP_KEY_CREATE: role one of enum rf_role; name an id,
 * NULL (or "" from C) for the role's name; rate_limit the key's own limit as
 * "N/PERIOD" (rf_rate_limit_parse), NULL for its role's. */
struct rf_key_create_req {
    enum rf_role role;
    const char *name;
    const char *rate_limit;
};

/* A new key and its secret: the full key text, shown once and never stored
 * (an Idempotency-Key record keeps it sealed under the caller's key).
 * rf_key_created_clear wipes the secret. */
struct rf_key_created {
    struct rf_key key;
    char secret[RF_KEY_SECRET_BYTES];
};
RF_API void rf_key_created_clear(struct rf_key_created *c);

/* Names one key: RF_OP_KEY_REVOKE. */
struct rf_key_ref {
    const char *id;
};

RF_API rf_err rf_key_create(rf *db, enum rf_role role, const char *name, struct rf_key_created *out,
                     struct rf_idem *idem);
/* rf_key_create with the key's own rate limit (limit NULL or quota 0: none,
 * its role's applies); RF_ERR_INVALID when the limit is out of bounds. */
RF_API rf_err rf_key_create_limited(rf *db, enum rf_role role, const char *name,
                                    const struct rf_rate_limit *limit,
                                    struct rf_key_created *out);
/* Creates the first admin key exactly once per store (two processes starting
 * on an empty store at once create one key between them). *created is false
 * when a bootstrap key was made before; then out and secret_out are untouched. */
RF_API rf_err rf_key_bootstrap(rf *db, struct rf_key *out, char secret_out[RF_KEY_SECRET_BYTES],
                        bool *created);
/* RF_ERR_KEY_NOT_FOUND when unknown or already revoked. */
RF_API rf_err rf_key_revoke(rf *db, const char *id);
/* One key, active or revoked (never its secret); RF_ERR_KEY_NOT_FOUND when
 * no key has the id. */
RF_API rf_err rf_key_get(rf *db, const char *id, struct rf_key *out);
/* RF_ERR_UNAUTHENTICATED for unknown, malformed or revoked keys. */
RF_API rf_err rf_key_authenticate(rf *db, const char *secret, struct rf_key *out);
/* rf_key_authenticate's answer (in *err, and *out on RF_OK) when it needs
 * no store read: a malformed key, or a key this process checked within
 * the last second. False when it would read the store (for an event loop
 * that must not block: call rf_key_authenticate from a thread that may). */
RF_API bool rf_key_authenticate_cached(rf *db, const char *secret, struct rf_key *out, rf_err *err);
RF_API rf_err rf_key_count_active(rf *db, int64_t *n_out);

struct rf_key_page {
    struct rf_key *items; /* malloc'd */
    int n;
    char next[RF_CURSOR_BYTES];
};
RF_API void rf_key_page_clear(struct rf_key_page *p);
RF_API rf_err rf_key_list(rf *db, const char *after, int limit, struct rf_key_page *out);

/* ---- rate limits (GCRA, shared through the store) ---------------------- */

/* One request's verdict. remaining: requests that would still conform now;
 * reset_ms: until the whole quota is available again; retry_after_ms: when
 * refused, until the next request conforms (>= 1). */
struct rf_rate_result {
    bool allowed;
    int64_t remaining;
    int64_t reset_ms;
    int64_t retry_after_ms;
};
/* Takes one request from key_id's bucket for route_class (an id) under
 * limit, in one atomic statement on the store (every process on the store
 * shares the bucket). RF_ERR_INVALID when limit is out of bounds. */
RF_API rf_err rf_rate_take(rf *db, const char *key_id, const char *route_class,
                           const struct rf_rate_limit *limit, struct rf_rate_result *out);
/* Parses "N/PERIOD" (PERIOD: a positive integer with ms, s, m or h, e.g.
 * "100/10s") into out within the bounds above; false and a reason in why. */
RF_API bool rf_rate_limit_parse(const char *text, struct rf_rate_limit *out, char *why,
                                size_t why_cap);

/* ---- Ledger (double entry) ---------------------------------------------
 * Every transfer debits one account and credits another in one currency, so
 * per currency the posted balances always sum to zero. A balance changes only
 * through one guarded UPDATE (... WHERE posted - pending_debits >= amount
 * unless the account may go negative), never read-modify-write. Each
 * currency has system accounts "funding:<CUR>" and "payouts:<CUR>" that may
 * go negative, made on the currency's first use. */
#define RF_CURRENCY_BYTES 4

/* An account's kind: the names "user" and "system" appear only at the edge
 * (JSON, the database's kind column). user (0) is the default. */
enum rf_account_kind { RF_ACCOUNT_USER = 0, RF_ACCOUNT_SYSTEM };
/* "user" | "system"; NULL for a value that is no kind. */
RF_API const char *rf_account_kind_name(enum rf_account_kind kind);

struct rf_account {
    char id[RF_ID_BYTES];
    char currency[RF_CURRENCY_BYTES];
    enum rf_account_kind kind;
    bool allow_negative;
    char *metadata_json;          /* malloc'd or NULL */
    int64_t posted;               /* credits - debits, posted */
    int64_t pending_debits;       /* held by pending transfers out */
    int64_t pending_credits;      /* promised by pending transfers in */
    int64_t available;            /* posted - pending_debits */
    int64_t version;
    int64_t created_at_ms;
    int64_t updated_at_ms;
};
RF_API void rf_account_clear(struct rf_account *a);

struct rf_account_req {
    const char *id;               /* NULL: the server makes one */
    const char *currency;         /* ISO 4217, three upper-case letters */
    enum rf_account_kind kind;    /* 0: user */
    bool allow_negative;
    const char *metadata_json;
};
struct rf_account_res {
    struct rf_account account;
    bool created;                 /* false: the same account existed (200) */
};
/* An existing id with other attributes: RF_ERR_ACCOUNT_EXISTS. An id in a
 * namespace racefree reserves for its system accounts (funding:*, payouts:*):
 * RF_ERR_RESERVED_ID. */
RF_API rf_err rf_account_create(rf *db, const struct rf_account_req *req,
                                struct rf_account_res *res, struct rf_idem *idem);
RF_API rf_err rf_account_get(rf *db, const char *id, struct rf_account *out);
/* Names one account: RF_OP_ACCOUNT_GET's request (its entries are an
 * rf_list_req whose scope is the account's id). */
struct rf_account_ref {
    const char *id;
};
/* True for an id in a reserved namespace (no client may create it; credits
 * and payouts may not name it). */
RF_API bool rf_account_id_reserved(const char *id);
/* True for an id in a reserved namespace that only its own flow moves
 * (payouts:*): transfers naming one are RF_ERR_RESERVED_ID. */
RF_API bool rf_account_id_flow_owned(const char *id);

/* A transfer's status: the names "posted", "pending" and "voided" appear
 * only at the edge (JSON, the database's status column). A transfer starts
 * posted, or pending when it is a hold; a hold resolves once, to posted or
 * voided. */
enum rf_transfer_status { RF_TRANSFER_POSTED = 0, RF_TRANSFER_PENDING, RF_TRANSFER_VOIDED };
/* "posted" | "pending" | "voided"; NULL for a value that is no status. */
RF_API const char *rf_transfer_status_name(enum rf_transfer_status status);

struct rf_transfer {
    char id[RF_ID_BYTES];
    char debit_account[RF_ID_BYTES];
    char credit_account[RF_ID_BYTES];
    int64_t amount_minor;
    int64_t posted_amount_minor;  /* 0 unless posted */
    char currency[RF_CURRENCY_BYTES];
    enum rf_transfer_status status;
    bool pending;                 /* created as a hold */
    char *reference;              /* malloc'd or NULL */
    char *metadata_json;          /* malloc'd or NULL */
    int64_t expires_at_ms;        /* 0: never */
    int64_t created_at_ms;
    int64_t resolved_at_ms;       /* 0: not resolved */
    int64_t version;
};
RF_API void rf_transfer_clear(struct rf_transfer *t);

struct rf_transfer_req {
    const char *debit_account;
    const char *credit_account;
    int64_t amount_minor;         /* > 0 */
    const char *currency;
    bool pending;
    const char *reference;        /* NULL or unique */
    const char *metadata_json;
    int64_t expires_at_ms;        /* pending only; 0: never */
};
struct rf_transfer_res {
    struct rf_transfer transfer;
    char existing_id[RF_ID_BYTES]; /* with RF_ERR_DUPLICATE_REFERENCE */
};
/* Names one transfer: get, post (amount_minor 0 posts the whole hold, less
 * posts part and releases the rest) and void (amount_minor 0). */
struct rf_transfer_ref {
    const char *id;
    int64_t amount_minor;
};
/* Credits account `id` (the path's {id}) with amount_minor (> 0) from its
 * currency's funding account; reason (NULL: none) is kept as the transfer's
 * metadata {"reason": ...}. */
struct rf_credit_req {
    const char *id;
    int64_t amount_minor;
    const char *reason;
};

RF_API rf_err rf_transfer_create(rf *db, const struct rf_transfer_req *req,
                                 struct rf_transfer_res *res, struct rf_idem *idem);
/* Posts a pending transfer: amount_minor 0 posts all, less posts part and
 * releases the rest. A transfer resolves at most once: RF_ERR_INVALID_STATE.
 * A payout's hold resolves only through its payout: RF_ERR_HOLD_OWNED. */
RF_API rf_err rf_transfer_post(rf *db, const char *id, int64_t amount_minor,
                        struct rf_transfer_res *res, struct rf_idem *idem);
RF_API rf_err rf_transfer_void(rf *db, const char *id, struct rf_transfer_res *res,
                        struct rf_idem *idem);
RF_API rf_err rf_transfer_get(rf *db, const char *id, struct rf_transfer *out);
/* Voids pending transfers past expires_at, at most batch_max per call
 * (never a payout's hold). */
RF_API rf_err rf_transfer_expire(rf *db, int batch_max, int *voided_out);

/* Seed 003: credit an account from its currency's funding account. */
RF_API rf_err rf_credit_apply(rf *db, const char *account_id, int64_t amount_minor,
                              const char *reason, struct rf_transfer_res *res,
                              struct rf_idem *idem);

/* Which side of its transfer an entry records: the names "debit" and
 * "credit" appear only at the edge (JSON, the entries' side column). */
enum rf_entry_side { RF_ENTRY_DEBIT = 0, RF_ENTRY_CREDIT };
/* "debit" | "credit"; NULL for a value that is no side. */
RF_API const char *rf_entry_side_name(enum rf_entry_side side);

struct rf_entry {
    int64_t seq;                  /* the account's version after the entry */
    char transfer_id[RF_ID_BYTES];
    enum rf_entry_side side;
    int64_t amount_minor;
    int64_t balance_after;
    int64_t created_at_ms;
};
struct rf_entry_page {
    struct rf_entry *items;       /* malloc'd */
    int n;
    char next[RF_CURSOR_BYTES];
};
RF_API void rf_entry_page_clear(struct rf_entry_page *p);
RF_API rf_err rf_account_entries(rf *db, const char *account_id, const char *after, int limit,
                          struct rf_entry_page *out);

/* Lists of every account and every transfer, in commit order (the order
 * and cursor every list has: a consumer that follows `next` while others
 * write sees each row exactly once). */
/* The account list's kind filter (rf_list_req.status), in this order. */
enum rf_account_filter { RF_ACCOUNTS_ALL = 0, RF_ACCOUNTS_USER, RF_ACCOUNTS_SYSTEM };
struct rf_account_list_req {
    struct rf_list_req list;      /* no scope; status: enum rf_account_filter */
    const char *currency;         /* NULL: every currency */
};
struct rf_account_page {
    struct rf_account *items;     /* malloc'd; rf_account_page_clear */
    int n;
    char next[RF_CURSOR_BYTES];
};
RF_API void rf_account_page_clear(struct rf_account_page *p);
RF_API rf_err rf_account_list(rf *db, const struct rf_account_list_req *req,
                              struct rf_account_page *out);

/* The transfer list's status filter (rf_list_req.status): all, then each
 * enum rf_transfer_status + 1. */
enum rf_transfer_filter {
    RF_TRANSFERS_ALL = 0, RF_TRANSFERS_POSTED, RF_TRANSFERS_PENDING, RF_TRANSFERS_VOIDED
};
struct rf_transfer_list_req {
    struct rf_list_req list;      /* no scope; status: enum rf_transfer_filter */
    const char *account;          /* NULL: any; else the debit or the credit account */
    const char *currency;         /* NULL: every currency */
    int64_t created_after_ms;     /* 0: no bound; else created_at >= it */
    int64_t created_before_ms;    /* 0: no bound; else created_at < it */
};
struct rf_transfer_page {
    struct rf_transfer *items;    /* malloc'd; rf_transfer_page_clear */
    int n;
    char next[RF_CURSOR_BYTES];
};
RF_API void rf_transfer_page_clear(struct rf_transfer_page *p);
RF_API rf_err rf_transfer_list(rf *db, const struct rf_transfer_list_req *req,
                               struct rf_transfer_page *out);

/* The ledger's invariants, checked in one read transaction. */
struct rf_ledger_check {
    int64_t currencies;
    int64_t currencies_unbalanced;  /* sum of posted != 0 */
    int64_t accounts;
    int64_t accounts_mismatched;    /* either of the next two */
    int64_t accounts_entries_mismatched; /* posted != the sum of the account's entries */
    int64_t accounts_holds_mismatched;   /* pending debits/credits != its pending transfers */
    int64_t payouts;
    int64_t payouts_mismatched;     /* the hold does not match the payout: pending <-> pending,
                                       paid <-> posted in full, failed <-> voided; same amount,
                                       account and currency */
    int64_t clearing_unowned;       /* transfers on a payouts:<CUR> account no payout owns */
    int64_t approvals;              /* approved approvals checked */
    int64_t approvals_unexecuted;   /* approved, but the transfer, entitlement or payout its
                                       result names is not in the store: the action never ran */
    int64_t checkouts;              /* paid, fulfilled and refunded checkouts checked */
    int64_t checkouts_mismatched;   /* a checkout whose grants and credits (and a refunded
                                       one's reversals) are not exactly its items', or a
                                       grant or credit naming a checkout that has none */
    int64_t rows_dangling;          /* rows whose reference names no row: an entry's account
                                       or transfer, a transfer's accounts, a payout's account or
                                       hold, an attempt's payout (SQLite does not enforce them) */
    bool clean;                     /* every count of a problem above is 0 */
};
RF_API rf_err rf_ledger_check(rf *db, struct rf_ledger_check *out);

/* ---- Reconciliation: every flow's invariants, with the rows involved ---- */
/* rf_reconcile reads every invariant the flows promise in ONE read snapshot
 * (PostgreSQL: REPEATABLE READ READ ONLY; SQLite: a WAL read transaction on
 * a reader connection), so it never blocks a writer and a write committing
 * meanwhile cannot look like drift. Each check aggregates in SQL and brings
 * back at most RF_RECONCILE_EXAMPLES_MAX example rows and the total count,
 * so memory does not grow with the store. The checks, their names and their
 * columns are listed in racefree(1) and README ("Reconcile"). */
struct rf_reconcile_check {
    const char *name;          /* stable snake_case name, e.g. "account_entries" */
    const char *invariant;     /* what holds when it is clean, one sentence */
    const char *columns[2];    /* what each example row's cells are; columns[1] may be NULL */
    int64_t violations;        /* rows that break it (every one, not only the examples) */
    int n_examples;            /* the first rows in (cell 0, cell 1) order */
    char *cells[/* RF_RECONCILE_EXAMPLES_MAX */ 10][2]; /* malloc'd; "" where none */
};
struct rf_reconcile {
    struct rf_reconcile_check *checks; /* malloc'd; rf_reconcile_clear */
    int n;
    int64_t violations;        /* summed over the checks */
    bool clean;                /* violations == 0 */
};
/* progress (may be NULL) is told each check as it starts, on the reader's
 * thread. Each statement is bounded as every read of db is: on PostgreSQL
 * by rf_options.pg_timeout_ms (a check past it fails the call with
 * RF_ERR_UNAVAILABLE and changes nothing). */
struct rf_reconcile_opts {
    void (*progress)(void *ctx, int step, int steps, const char *name);
    void *ctx;
};
RF_API rf_err rf_reconcile(rf *db, const struct rf_reconcile_opts *opts, struct rf_reconcile *out);
RF_API void rf_reconcile_clear(struct rf_reconcile *r);
/* The document `racefree reconcile --json` prints and GET /v1/admin/reconcile
 * answers (README "Reconcile"), compact JSON, malloc'd (free it); NULL when
 * out of memory. */
RF_API char *rf_reconcile_json(const struct rf_reconcile *r);

/* ---- Payouts (seed 000, part 2) ---------------------------------------- */
/* A payout's state: the names "pending", "paid" and "failed" appear only at
 * the edge (JSON, the database's status column). A payout is born pending
 * and leaves it once, to paid or failed. */
enum rf_payout_status {
    RF_PAYOUT_STATUS_PENDING = 0,
    RF_PAYOUT_STATUS_PAID,
    RF_PAYOUT_STATUS_FAILED,
};
/* "pending" | "paid" | "failed"; NULL for a value that is no status. */
RF_API const char *rf_payout_status_name(enum rf_payout_status status);

struct rf_payout {
    char id[RF_ID_BYTES];
    char account[RF_ID_BYTES];
    int64_t amount_minor;
    char currency[RF_CURRENCY_BYTES];
    char provider[RF_ID_BYTES];
    char destination_ref[RF_ID_BYTES];
    enum rf_payout_status status;
    char hold_transfer_id[RF_ID_BYTES];
    char provider_idempotency_key[RF_ID_BYTES];
    char *provider_payout_id;       /* malloc'd or NULL */
    int64_t attempt_count;
    int64_t max_attempts;
    char *last_error;               /* malloc'd or NULL */
    char *metadata_json;            /* malloc'd or NULL */
    int64_t created_at_ms;
    int64_t updated_at_ms;
    int64_t version;
};
RF_API void rf_payout_clear(struct rf_payout *p);

struct rf_payout_req {
    const char *account;
    int64_t amount_minor;
    const char *currency;
    const char *provider;
    const char *destination_ref;
    const char *metadata_json;
    int64_t max_attempts;           /* 0: the default, 5 */
};
/* Names one payout: an attempt, an outcome (succeeded: provider_payout_id;
 * failed: reason and retryable) and a read. */
struct rf_payout_outcome_req {
    const char *id;
    const char *provider_payout_id; /* succeeded */
    const char *reason;             /* failed */
    bool retryable;                 /* failed */
};
RF_API rf_err rf_payout_create(rf *db, const struct rf_payout_req *req, struct rf_payout *out,
                        struct rf_idem *idem);
/* attempt_count + 1, atomically; only while pending. */
RF_API rf_err rf_payout_attempt(rf *db, const char *id, struct rf_payout *out,
                                struct rf_idem *idem);
/* Posts the hold; a repeat with the same provider id is an idempotent RF_OK. */
RF_API rf_err rf_payout_succeeded(rf *db, const char *id, const char *provider_payout_id,
                           struct rf_payout *out, struct rf_idem *idem);
/* Records the failure; non-retryable or max_attempts reached voids the hold. */
RF_API rf_err rf_payout_failed(rf *db, const char *id, const char *reason, bool retryable,
                        struct rf_payout *out, struct rf_idem *idem);
RF_API rf_err rf_payout_get(rf *db, const char *id, struct rf_payout *out);

struct rf_payout_page {
    struct rf_payout *items;        /* malloc'd; rf_payout_page_clear */
    int n;
    char next[RF_CURSOR_BYTES];
};
RF_API void rf_payout_page_clear(struct rf_payout_page *p);
/* The list's filter (rf_list_req.status), in this order. */
enum rf_payout_filter { RF_PAYOUT_ALL = 0, RF_PAYOUT_PENDING, RF_PAYOUT_PAID, RF_PAYOUT_FAILED };
/* status: NULL or "" for all, else pending | paid | failed. */
RF_API rf_err rf_payout_list(rf *db, const char *status, const char *after, int limit,
                      struct rf_payout_page *out);

/* ---- Provider-customer bindings (seed 002) -----------------------------
 * One-to-one per provider in both directions, decided by one atomic insert
 * and a read in the same transaction: a success never names a customer other
 * than the one the caller sent. */
struct rf_binding {
    char provider[RF_ID_BYTES];
    char user_id[RF_ID_BYTES];
    char customer_id[RF_ID_BYTES];
    int64_t created_at_ms;
    int64_t version;
};
struct rf_bind_res {
    struct rf_binding binding;   /* the caller's binding (zeroed on any failure) */
    bool created;                /* 201 vs 200 */
    /* With RF_ERR_BINDING_CONFLICT: who holds what (empty when not that side);
     * the only members a failure leaves set. */
    char existing_customer_id[RF_ID_BYTES]; /* the user is bound to this customer */
    char existing_user_id[RF_ID_BYTES];     /* the customer is bound to this user */
};

/* The request of every binding operation; each reads its own members:
 * bind (user_id, provider, customer_id), get by user (user_id, provider),
 * lookup by customer (provider, customer_id), unbind (user_id, provider,
 * if_match_version; 0: unconditional). */
struct rf_bind_req {
    const char *user_id;
    const char *provider;
    const char *customer_id;
    int64_t if_match_version;
};
RF_API rf_err rf_customer_bind(rf *db, const char *user_id, const char *provider,
                        const char *customer_id, struct rf_bind_res *res);
RF_API rf_err rf_customer_get_by_user(rf *db, const char *user_id, const char *provider,
                               struct rf_binding *out);
RF_API rf_err rf_customer_get_by_customer(rf *db, const char *provider, const char *customer_id,
                                   struct rf_binding *out);
/* if_match_version 0: unconditional. */
RF_API rf_err rf_customer_unbind(rf *db, const char *user_id, const char *provider,
                          int64_t if_match_version, struct rf_binding *out);

/* ---- Approvals (seed 004) ----------------------------------------------
 * An approval carries an action described as data (a transfer, an
 * entitlement grant, a payout). Approving checks the state and executes the
 * action in ONE transaction with the row locked, so an approval is never
 * both executed and rejected, and its action runs exactly once. */
/* A new approval is pending; each transition leaves it for good. expired is
 * how a pending approval past expires_at reads (the row still says pending). */
enum rf_approval_status {
    RF_APPROVAL_STATUS_PENDING = 0,
    RF_APPROVAL_STATUS_APPROVED,
    RF_APPROVAL_STATUS_REJECTED,
    RF_APPROVAL_STATUS_CANCELLED,
    RF_APPROVAL_STATUS_EXPIRED,
};
/* The API's name ("pending", ...); NULL for a value outside the enum. */
RF_API const char *rf_approval_status_name(enum rf_approval_status status);
/* The operation an approval carries (its action's "type"). */
enum rf_action_type {
    RF_ACTION_TRANSFER = 0,
    RF_ACTION_ENTITLEMENT_GRANT,
    RF_ACTION_PAYOUT,
};
/* The API's name ("transfer", "entitlement_grant", "payout"); NULL outside the enum. */
RF_API const char *rf_action_type_name(enum rf_action_type type);
struct rf_approval {
    char id[RF_ID_BYTES];
    enum rf_approval_status status;
    enum rf_action_type action_type;
    char *action_json;              /* malloc'd: the action as given */
    char requested_by[RF_ID_BYTES];  /* a label the client chose */
    char requested_key[RF_ID_BYTES]; /* the API key that created it; "" when none */
    bool require_distinct_approver;
    char *metadata_json;            /* malloc'd or NULL */
    int64_t expires_at_ms;          /* 0: never */
    char approved_by[RF_ID_BYTES];  /* "" unless approved: a label */
    char approved_key[RF_ID_BYTES]; /* the API key that approved; "" when none */
    int64_t approved_at_ms;
    int64_t executed_at_ms;
    char *result_json;              /* malloc'd or NULL: the action's result */
    char rejected_by[RF_ID_BYTES];
    char rejected_key[RF_ID_BYTES]; /* the API key that rejected; "" when none */
    int64_t rejected_at_ms;
    char *rejection_reason;         /* malloc'd or NULL */
    int64_t cancelled_at_ms;
    int64_t created_at_ms;
    int64_t updated_at_ms;
    int64_t version;
};
RF_API void rf_approval_clear(struct rf_approval *a);

struct rf_approval_req {
    const char *action_json;        /* a JSON object with "type"; validated here */
    const char *requested_by;
    const char *requested_key;      /* the creating API key's id, or NULL (library use) */
    int64_t expires_at_ms;          /* 0: never */
    bool require_distinct_approver;
    const char *metadata_json;
};
/* RF_ERR_INVALID with detail_out (if given, cap bytes) naming what is wrong
 * in the action (the fault's detail, "" when the error's generic text fits). */
RF_API rf_err rf_approval_create(rf *db, const struct rf_approval_req *req, struct rf_approval *out,
                          struct rf_idem *idem, char *detail_out, size_t detail_cap);
/* Names one approval (get) and, for a transition out of pending, who moves
 * it: the request of approve, reject and cancel. */
struct rf_approval_ref {
    const char *id;
    const char *by;             /* approved_by, rejected_by (required); cancelled_by: NULL,
                                   or it must equal requested_by */
    const char *reason;         /* reject: NULL or 1..RF_REASON_CHARS_MAX characters */
    /* Who asks: caller_key is the asking API key's id, NULL for a caller
     * trusted with every approval (the library used directly). Approve and
     * reject record it; approve refuses the key that requested the approval
     * (RF_ERR_SELF_APPROVAL, when it requires a distinct approver; without
     * a key on either side the labels are compared). Cancel: only the
     * requesting key, or a key whose caller_role is RF_ROLE_ADMIN. */
    const char *caller_key;
    int caller_role;            /* enum rf_role; 0: none given */
    int64_t if_match_version;   /* 0: unconditional */
};

/* The action's own error (insufficient_funds, ...) leaves the approval pending. */
RF_API rf_err rf_approval_approve(rf *db, const char *id, const char *approved_by,
                           int64_t if_match_version, struct rf_approval *out,
                           struct rf_idem *idem);
/* reason may be NULL. */
RF_API rf_err rf_approval_reject(rf *db, const char *id, const char *rejected_by,
                                 const char *reason, int64_t if_match_version,
                                 struct rf_approval *out, struct rf_idem *idem);
/* Only the requester cancels. caller_key: the id of the API key asking, which
 * must be the approval's requested_key (RF_ERR_NOT_REQUESTER otherwise); NULL
 * for a caller trusted with every approval (an admin key, or the library used
 * directly). cancelled_by is a label: NULL, or it must equal requested_by. */
RF_API rf_err rf_approval_cancel(rf *db, const char *id, const char *cancelled_by,
                          const char *caller_key, int64_t if_match_version,
                          struct rf_approval *out, struct rf_idem *idem);
RF_API rf_err rf_approval_get(rf *db, const char *id, struct rf_approval *out);

struct rf_approval_page {
    struct rf_approval *items;      /* malloc'd; rf_approval_page_clear */
    int n;
    char next[RF_CURSOR_BYTES];
};
RF_API void rf_approval_page_clear(struct rf_approval_page *p);
/* The list's ?status= filter (struct rf_list_req's status): pending reads
 * only those not past expires_at, expired the pending ones past it. */
enum rf_approval_filter {
    RF_APPROVAL_ALL = 0,
    RF_APPROVAL_PENDING,
    RF_APPROVAL_APPROVED,
    RF_APPROVAL_REJECTED,
    RF_APPROVAL_CANCELLED,
    RF_APPROVAL_EXPIRED,
};
/* status: NULL or "" for all; else pending | approved | rejected | cancelled | expired. */
RF_API rf_err rf_approval_list(rf *db, const char *status, const char *after, int limit,
                        struct rf_approval_page *out);

/* ---- Maintenance: the sweeps --------------------------------------------
 * Three things happen only when a sweep runs, never on their own:
 *   - RF_SWEEP_EXPIRE_HOLDS voids pending transfers past their expires_at
 *     (never a payout's hold), releasing the money they held;
 *   - RF_SWEEP_PURGE_IDEM deletes Idempotency-Key records past their
 *     retention (rf_options.idem_retention_ms; an expired record is never
 *     replayed, but its row stays until purged);
 *   - RF_SWEEP_RESCUE_JOBS makes running jobs whose lease expired (a worker
 *     that died or stalled) available again, their attempt counted, or
 *     failed when it was their last (500 per batch, rf_job_rescue).
 * rf_sweep() runs the ones asked for, each in batches (one transaction per
 * batch: 500 holds, 1000 records, 500 jobs) and at
 * most RF_SWEEP_ROUNDS_MAX batches per call, so a backlog drains over a
 * few calls without holding up other work. How often: a hold is voided
 * within about one interval of its expires_at, so every few seconds
 * (`racefree serve` expires every 5 s and purges every minute); from one
 * thread or process at a time is enough (two at once are safe, each row is
 * voided or deleted once). Or let the library do it: sweep_interval_ms. */
enum rf_sweep_what {
    RF_SWEEP_EXPIRE_HOLDS = 1,
    RF_SWEEP_PURGE_IDEM = 2,
    RF_SWEEP_RESCUE_JOBS = 4,
    RF_SWEEP_ALL = RF_SWEEP_EXPIRE_HOLDS | RF_SWEEP_PURGE_IDEM | RF_SWEEP_RESCUE_JOBS,
};
#define RF_SWEEP_INTERVAL_MS_MIN 10
#define RF_SWEEP_INTERVAL_MS_MAX (3600 * 1000)
#define RF_SWEEP_ROUNDS_MAX 16
struct rf_sweep_stats {
    int64_t holds_voided;   /* pending transfers voided by this call */
    int64_t idem_purged;    /* Idempotency-Key records deleted by this call */
    int64_t jobs_rescued;   /* expired job leases made available (or failed) */
};
/* what: RF_SWEEP_* bits (0 or other bits: RF_ERR_INVALID). out may be NULL.
 * Stops at the first error and returns it (out has what was done). */
RF_API rf_err rf_sweep(rf *db, unsigned what, struct rf_sweep_stats *out);
/* One batch of the purge: at most batch_max rows (<= 0 or more than
 * RF_IDEM_PURGE_BATCH: that many), in its own transaction. *purged_out
 * gets the number removed. */
RF_API rf_err rf_idem_purge(rf *db, int batch_max, int *purged_out);

/* ---- Checkouts (seed 001) ------------------------------------------------
 * A checkout is what a user is buying: entitlement items (a key granted) and
 * credit items (an amount credited from funding:<CUR> to an account), paid
 * through a provider whose reference (a session or order id) is bound to it
 * once: UNIQUE per provider across all checkouts. State machine:
 * pending -> paid -> fulfilled (one transaction: the provider's payment
 * event), pending -> expired | canceled, fulfilled -> refunded; every
 * transition attempt is recorded, refused ones change nothing. A pending
 * checkout past expires_at reads as expired and cannot be paid. */
enum rf_checkout_status {
    RF_CHECKOUT_PENDING = 0,
    RF_CHECKOUT_PAID,
    RF_CHECKOUT_FULFILLED,
    RF_CHECKOUT_EXPIRED,
    RF_CHECKOUT_CANCELED,
    RF_CHECKOUT_REFUNDED,
};
/* "pending" | "paid" | ...; NULL for a value that is no status. */
RF_API const char *rf_checkout_status_name(enum rf_checkout_status status);

struct rf_checkout {
    char id[RF_ID_BYTES];
    char user_id[RF_ID_BYTES];
    char currency[RF_CURRENCY_BYTES];
    int64_t amount_minor;
    char provider[RF_ID_BYTES];
    char provider_ref[RF_ID_BYTES];   /* "" until bound */
    enum rf_checkout_status status;
    char *items_json;                 /* malloc'd: the items, a JSON array */
    int64_t refund_shortfall_minor;   /* refunded: credit not reversed (the account had spent it) */
    int64_t expires_at_ms;
    char created_key[RF_ID_BYTES];    /* the API key that created it; "" from the library */
    int64_t created_at_ms;
    int64_t updated_at_ms;
    int64_t version;
};
RF_API void rf_checkout_clear(struct rf_checkout *c);

/* items_json: a JSON array of 1..50 items, each {"type":"entitlement","key":K}
 * or {"type":"credit","account":A,"amount_minor":N}; a credit's account
 * must exist in the checkout's currency. expires_at_ms 0: 24 hours. */
struct rf_checkout_req {
    const char *user_id;
    const char *currency;
    int64_t amount_minor;
    const char *provider;
    const char *provider_ref;         /* NULL: bound later */
    const char *items_json;
    int64_t expires_at_ms;
    const char *created_key;          /* the calling API key's id (the HTTP edge); NULL */
};
/* Names one checkout: a read, a cancel (If-Match: if_match_version, 0:
 * unconditional), a provider reference binding (provider, ref). */
struct rf_checkout_ref {
    const char *id;
    const char *provider;
    const char *ref;
    int64_t if_match_version;
    const char *caller_key;           /* cancel: recorded on its transition; NULL */
};
RF_API rf_err rf_checkout_create(rf *db, const struct rf_checkout_req *req,
                                 struct rf_checkout *out, struct rf_idem *idem);
/* Binds once: the same binding again is RF_OK; another reference on a bound
 * checkout RF_ERR_PROVIDER_REF_BOUND; a reference another checkout holds
 * RF_ERR_PROVIDER_REF_TAKEN. */
RF_API rf_err rf_checkout_bind_ref(rf *db, const struct rf_checkout_ref *req,
                                   struct rf_checkout *out);
RF_API rf_err rf_checkout_get(rf *db, const char *id, struct rf_checkout *out);
/* pending -> canceled; RF_ERR_INVALID_STATE from any other state. */
RF_API rf_err rf_checkout_cancel(rf *db, const struct rf_checkout_ref *req,
                                 struct rf_checkout *out);
struct rf_checkout_page {
    struct rf_checkout *items;        /* malloc'd; rf_checkout_page_clear */
    int n;
    char next[RF_CURSOR_BYTES];
};
RF_API void rf_checkout_page_clear(struct rf_checkout_page *p);
/* The list's filter (rf_list_req.status): all, then each status + 1. */
enum rf_checkout_filter {
    RF_CHECKOUTS_ALL = 0, RF_CHECKOUTS_PENDING, RF_CHECKOUTS_PAID, RF_CHECKOUTS_FULFILLED,
    RF_CHECKOUTS_EXPIRED, RF_CHECKOUTS_CANCELED, RF_CHECKOUTS_REFUNDED
};
/* A user's checkouts in commit order; status NULL or "" for all. */
RF_API rf_err rf_checkout_list(rf *db, const char *user_id, const char *status,
                               const char *after, int limit, struct rf_checkout_page *out);

/* ---- Webhooks: signing secrets and the event ledger ----------------------
 * A provider's signing secrets (the primary and, during a rotation's
 * overlap, the previous one) are stored sealed with libsodium secretbox
 * under the process's secrets key: RACEFREE_SECRETS_KEY (64 hex digits) or
 * the file RACEFREE_SECRETS_KEY_FILE names (64 hex digits); without either,
 * under the store's own key (made by the first secret set, kept in the
 * store). A given key that does not load, or secrets sealed under another
 * key, are RF_ERR_SECRETS_KEY_UNAVAILABLE. No function ever returns a
 * secret. */
#define RF_WEBHOOK_SECRET_CHARS_MIN 16
#define RF_WEBHOOK_SECRET_CHARS_MAX 256
#define RF_WEBHOOK_TYPE_BYTES 64
struct rf_webhook_secret_req {
    const char *provider;
    const char *secret;         /* 16-256 printable ASCII characters */
    int64_t overlap_s;          /* rotate: how long the old secret stays valid;
                                   0: RF_WEBHOOK_OVERLAP_S_DEFAULT (24 h) */
};
struct rf_webhook_secret {      /* a provider's secrets, without their values */
    char provider[RF_ID_BYTES];
    int64_t primary_set_at_ms;
    int64_t previous_expires_at_ms; /* 0: no previous secret is accepted */
    int64_t version;
};
struct rf_webhook_secret_page {
    struct rf_webhook_secret *items; /* malloc'd; rf_webhook_secret_page_clear */
    int n;
    char next[RF_CURSOR_BYTES];
};
RF_API void rf_webhook_secret_page_clear(struct rf_webhook_secret_page *p);
/* set: the secret becomes the provider's only one (a previous is dropped);
 * rotate: it becomes the primary and the old primary stays accepted for
 * overlap_s (RF_ERR_WEBHOOK_PROVIDER_UNKNOWN when none is set). */
RF_API rf_err rf_webhook_secret_set(rf *db, const struct rf_webhook_secret_req *req,
                                    struct rf_webhook_secret *out);
RF_API rf_err rf_webhook_secret_rotate(rf *db, const struct rf_webhook_secret_req *req,
                                       struct rf_webhook_secret *out);
RF_API rf_err rf_webhook_secret_list(rf *db, const char *after, int limit,
                                     struct rf_webhook_secret_page *out);

/* One delivery as the provider sent it: the signature header's value
 * (Stripe-Signature for "stripe", X-Racefree-Signature otherwise) and the
 * raw body, verified byte for byte before it is parsed. */
struct rf_webhook_req {
    const char *provider;
    const char *signature;
    const char *body;           /* body_len bytes, not NUL-terminated */
    size_t body_len;
    int64_t tolerance_s;        /* |now - t| allowed; 0: RF_WEBHOOK_TOLERANCE_S_DEFAULT */
};
struct rf_webhook_event {       /* one row of the event ledger */
    char id[RF_ID_BYTES];       /* racefree's id of the record */
    char provider[RF_ID_BYTES];
    char event_id[RF_ID_BYTES]; /* the provider's */
    char type[RF_WEBHOOK_TYPE_BYTES];
    char status[RF_STATUS_BYTES]; /* processed | ignored | unmatched | deferred */
    char checkout_id[RF_ID_BYTES];  /* the checkout it named or matched; "" none */
    char provider_ref[RF_ID_BYTES]; /* the provider reference it named; "" none */
    int64_t event_created_at_ms;
    int64_t received_at_ms;
};
struct rf_webhook_res {
    struct rf_webhook_event event;
    bool duplicate;             /* a replay: the event was recorded before, nothing changed */
    char checkout_status[RF_STATUS_BYTES]; /* after the event; "" when none matched */
};
/* Verifies, records and applies one delivery in one transaction. */
RF_API rf_err rf_webhook_receive(rf *db, const struct rf_webhook_req *req,
                                 struct rf_webhook_res *out);

/* The list's ?status= filter, in this order. */
enum rf_webhook_event_filter {
    RF_WEBHOOK_EVENTS_ALL = 0, RF_WEBHOOK_EVENTS_PROCESSED, RF_WEBHOOK_EVENTS_IGNORED,
    RF_WEBHOOK_EVENTS_UNMATCHED, RF_WEBHOOK_EVENTS_DEFERRED
};
struct rf_webhook_event_list_req {
    struct rf_list_req list;    /* no scope; status: enum rf_webhook_event_filter */
    const char *provider;       /* NULL: every provider */
};
struct rf_webhook_event_page {
    struct rf_webhook_event *items; /* malloc'd; rf_webhook_event_page_clear */
    int n;
    char next[RF_CURSOR_BYTES];
};
RF_API void rf_webhook_event_page_clear(struct rf_webhook_event_page *p);
RF_API rf_err rf_webhook_event_list(rf *db, const struct rf_webhook_event_list_req *req,
                                    struct rf_webhook_event_page *out);

/* ---- Leases --------------------------------------------------------------
 * A named lease with fencing tokens (RF_OP_LEASE_ACQUIRE, _RENEW, _RELEASE,
 * _GET through rf_op_run). Acquire succeeds when the lease is free (never
 * taken, expired or released) and issues the next token: strictly
 * increasing per name across every process on the store. While it is held,
 * acquire is RF_ERR_LEASE_HELD for everyone, the holder too (a holder name
 * is a label; only the token proves ownership: renew with it). Renew and
 * release need the current token (RF_ERR_STALE_LEASE otherwise); a renew of
 * an expired lease nobody took since succeeds (the token is still the
 * highest issued). ttl_ms: 1..rf_options.lease_max_ttl_ms. */
struct rf_lease_req {
    const char *name;       /* the lease (an id) */
    const char *holder;     /* acquire: who takes it (an id; a label) */
    int64_t ttl_ms;         /* acquire: required; renew: 0 = the acquire's */
    int64_t token;          /* renew, release: the current token */
};
enum rf_lease_status { RF_LEASE_HELD = 0, RF_LEASE_EXPIRED, RF_LEASE_RELEASED };
struct rf_lease {
    char name[RF_ID_BYTES];
    char holder[RF_ID_BYTES];
    int64_t token;
    enum rf_lease_status status;   /* as of the operation's clock */
    int64_t ttl_ms;
    int64_t acquired_at_ms;
    int64_t expires_at_ms;
    int64_t updated_at_ms;
    int64_t version;
    /* RF_ERR_LEASE_HELD: the holder's expiry as RFC 3339 text (the problem's
     * expires_at; holder is the member above). ttl_max_ms: RF_ERR_INVALID for
     * a ttl_ms past the store's maximum, the maximum. */
    char held_until[RF_ID_BYTES];
    int64_t ttl_max_ms;
};

/* ---- Payout batches -------------------------------------------------------
 * One run of payouts for every user wallet of a currency whose available
 * balance reaches min_amount_minor (POST /v1/payout-batches; the scheduler).
 * RF_OP_PAYOUT_BATCH_GET reads one by id. */
enum rf_payout_batch_status { RF_PAYOUT_BATCH_RUNNING = 0, RF_PAYOUT_BATCH_COMPLETED };
struct rf_payout_batch_ref {
    const char *id;
};
struct rf_payout_batch {
    char id[RF_ID_BYTES];
    char currency[RF_CURRENCY_BYTES];
    int64_t min_amount_minor;
    char provider[RF_ID_BYTES];        /* the payouts' provider */
    enum rf_payout_batch_status status;
    char cursor[RF_ID_BYTES];          /* the last wallet scanned ("" before the first) */
    int64_t wallets_scanned;           /* user wallets of the currency looked at */
    int64_t payouts_created;
    int64_t skipped_pending;           /* eligible, but a payout of theirs is pending */
    int64_t total_minor;               /* the sum of the payouts created */
    int64_t chunks;                    /* committed chunks */
    int64_t lease_token;               /* the payouts lease token of the last chunk */
    int64_t created_at_ms;
    int64_t updated_at_ms;
    int64_t completed_at_ms;           /* 0 while running */
    int64_t version;
};

/* ---- Job queue -----------------------------------------------------------
 * Jobs live in named queues. A worker claims available jobs (run_at passed)
 * in priority order (0..100, LOWER first; 0 when not given), then run_at,
 * then id; a claim moves a job to running under a lease (lease_ms) and a
 * fencing token, one higher than any earlier claim of that job. Heartbeat,
 * complete and fail need the current token (RF_ERR_STALE_LEASE otherwise:
 * the job was rescued, claimed again or canceled). A fail with attempts
 * left makes it available again after retry_in_ms or an exponential
 * backoff with jitter (1 s doubled per attempt, capped at 1 h, then a random
 * half to whole of it); the last attempt's fail makes it failed. A lease
 * that expires is rescued by the sweep (RF_SWEEP_RESCUE_JOBS), counting the
 * attempt. Terminal states: completed, failed, canceled.
 * Identity: while a job with a unique_key is available or running, an
 * enqueue with that key in that queue returns it (created false); once it
 * is terminal, the key makes a new job. */
enum rf_job_status {
    RF_JOB_AVAILABLE = 0,
    RF_JOB_RUNNING,
    RF_JOB_COMPLETED,
    RF_JOB_FAILED,
    RF_JOB_CANCELED,
};
/* "available" | "running" | ...; NULL for a value that is no status. */
RF_API const char *rf_job_status_name(enum rf_job_status status);

struct rf_job {
    char id[RF_ID_BYTES];
    char queue[RF_ID_BYTES];
    char kind[RF_ID_BYTES];
    char *payload_json;             /* malloc'd: a JSON object */
    char unique_key[RF_ID_BYTES];   /* "" when none */
    enum rf_job_status status;
    int64_t priority;               /* 0..100, lower first */
    int64_t run_at_ms;              /* not claimed before */
    int64_t attempt;                /* claims so far */
    int64_t max_attempts;
    int64_t token;                  /* the current claim's fencing token; 0: never claimed */
    char worker_id[RF_ID_BYTES];    /* the current or last claimant; "" never claimed */
    int64_t lease_expires_at_ms;    /* running: the lease's end; else 0 */
    int64_t lease_ms;               /* the last claim's lease (a heartbeat's default) */
    char *last_error;               /* malloc'd or NULL */
    char *result_json;              /* malloc'd or NULL: what /complete recorded */
    int64_t created_at_ms;
    int64_t updated_at_ms;
    int64_t finished_at_ms;         /* terminal: when; else 0 */
    int64_t version;                /* bumped by every change */
    bool created;                   /* enqueue: a new job (else the unique_key's existing one) */
};
RF_API void rf_job_clear(struct rf_job *j);

struct rf_job_req {
    const char *queue;              /* an id of 1..64 characters */
    const char *kind;               /* an id of 1..128 characters */
    const char *payload_json;       /* a JSON object, at most 16 KiB */
    const char *unique_key;         /* NULL: none */
    int64_t run_at_ms;              /* 0: now; at most a year ahead */
    int64_t max_attempts;           /* 0: 10; at most 100 */
    int64_t priority;               /* 0..100, lower first */
};
/* Names one job, with what a worker's call carries. */
struct rf_job_ref {
    const char *id;
    int64_t token;                  /* heartbeat, complete, fail: the claim's token */
    int64_t lease_ms;               /* heartbeat: the new lease from now; 0: the claim's */
    const char *result_json;        /* complete: NULL or a JSON object */
    const char *error;              /* fail: 1..1000 characters */
    int64_t retry_in_ms;            /* fail: 0: the backoff */
};
struct rf_job_claim_req {
    const char *queue;
    const char *worker_id;
    int64_t lease_ms;               /* 0: 30 s; 100 ms..1 h */
    int64_t max_jobs;               /* 0: 1; at most 100 */
};
struct rf_job_page {                /* the claimed jobs (next is always "") */
    struct rf_job *items;           /* malloc'd; rf_job_page_clear */
    int n;
    char next[RF_CURSOR_BYTES];
};
RF_API void rf_job_page_clear(struct rf_job_page *p);
struct rf_queue_stats {
    char queue[RF_ID_BYTES];
    int64_t available;              /* of which ready (run_at passed): ready */
    int64_t ready;
    int64_t running;
    int64_t completed;
    int64_t failed;
    int64_t canceled;
    int64_t oldest_ready_age_ms;    /* how long the oldest ready job waits; 0: none */
};

RF_API rf_err rf_job_enqueue(rf *db, const struct rf_job_req *req, struct rf_job *out,
                             struct rf_idem *idem);
RF_API rf_err rf_job_claim(rf *db, const struct rf_job_claim_req *req, struct rf_job_page *out);
RF_API rf_err rf_job_heartbeat(rf *db, const struct rf_job_ref *req, struct rf_job *out);
RF_API rf_err rf_job_complete(rf *db, const struct rf_job_ref *req, struct rf_job *out);
RF_API rf_err rf_job_fail(rf *db, const struct rf_job_ref *req, struct rf_job *out);
/* available or running -> canceled (a running claim's token goes stale);
 * RF_ERR_INVALID_STATE from a terminal state. */
RF_API rf_err rf_job_cancel(rf *db, const char *id, struct rf_job *out);
RF_API rf_err rf_job_get(rf *db, const char *id, struct rf_job *out);
RF_API rf_err rf_queue_stats(rf *db, const char *queue, struct rf_queue_stats *out);
/* One batch of the rescue: at most batch_max (<= 0 or more than
 * RF_JOB_RESCUE_BATCH: that many) running jobs whose lease expired, in its
 * own transaction. *rescued_out gets the number moved. */
RF_API rf_err rf_job_rescue(rf *db, int batch_max, int *rescued_out);

/* Runs the write op as rf_op_run() does and, in the SAME transaction,
 * enqueues the n_jobs (0..16) jobs of jobs[] (as rf_job_enqueue, with its
 * unique_key rule), so an effect and its follow-up work commit together or
 * not at all: the op fails -> no job; a job refused -> the op's effect is
 * rolled back too. jobs_out (n_jobs of them, may be NULL when n_jobs is 0)
 * gets each job (rf_job_clear each). An Idempotency-Key replay runs
 * nothing: res is the first call's result, no job is enqueued and
 * jobs_out is left zeroed. A job request the queue refuses is
 * RF_ERR_INVALID with fault naming "jobs[i].field". */
RF_API rf_err rf_op_run_then(rf *db, rf_op op, const void *req, void *res, struct rf_idem *idem,
                             struct rf_fault *fault, const struct rf_job_req *jobs, int n_jobs,
                             struct rf_job *jobs_out);

/* ---- Drop-in processing (seed 001) -----------------------------------------
 * A photo's processing is one job of the queue "drop-in" (kind
 * "drop_in.process", payload {"photo_id"}): a trigger returns the photo's
 * job while it is available, running or completed (created false), and
 * enqueues a fresh one only when the last one failed or was canceled.
 * A match is recorded once per (photo, attendee, face): the first record
 * stands and later ones return it. */
struct rf_dropin_req {
    const char *photo_id;
    const char *attendee_id;
    const char *face_id;
    int64_t similarity_bp;          /* 0..10000 (basis points of 100 %); 0 also when absent */
    const char *metadata_json;      /* NULL or a JSON object */
};
struct rf_dropin_match {
    char id[RF_ID_BYTES];
    char photo_id[RF_ID_BYTES];
    char attendee_id[RF_ID_BYTES];
    char face_id[RF_ID_BYTES];
    int64_t similarity_bp;
    char *metadata_json;            /* malloc'd or NULL */
    int64_t created_at_ms;
    int64_t version;                /* always 1: a match never changes */
    bool created;
};
RF_API void rf_dropin_match_clear(struct rf_dropin_match *m);
struct rf_dropin_match_page {
    struct rf_dropin_match *items;  /* malloc'd; rf_dropin_match_page_clear */
    int n;
    char next[RF_CURSOR_BYTES];
};
RF_API void rf_dropin_match_page_clear(struct rf_dropin_match_page *p);
RF_API rf_err rf_dropin_process(rf *db, const char *photo_id, struct rf_job *out);
RF_API rf_err rf_dropin_match_record(rf *db, const struct rf_dropin_req *req,
                                     struct rf_dropin_match *out);
RF_API rf_err rf_dropin_match_list(rf *db, const char *photo_id, const char *after, int limit,
                                   struct rf_dropin_match_page *out);


/* ---- Notifications (seed 001: one read-state contract) ---------------------
 * A user's notifications, reachable only under that user: every call names
 * (user_id, id), and another user's id is RF_ERR_NOTIFICATION_NOT_FOUND.
 * The read state is read_at_ms alone: 0 while unread, else the FIRST read's
 * time (a repeated read changes nothing and returns the same read_at_ms);
 * unread clears it. A dedupe_key is unique per user: a repeated create
 * returns the existing notification (created false), whatever its content.
 * Lists are in commit order (the list order); read_all marks every unread
 * notification of the user up to and including up_to in that order. */
struct rf_notification_req {
    const char *user_id;
    const char *kind;               /* an id, 1..64 characters */
    const char *title;              /* 1..200 characters */
    const char *body;               /* 0..4000 characters */
    const char *data_json;          /* NULL or a JSON object (8 KiB) */
    const char *dedupe_key;         /* NULL or an id, unique per user */
};
/* Names one notification of one user (read_all: up_to). */
struct rf_notification_ref {
    const char *user_id;
    const char *id;
    const char *up_to;
};
struct rf_notification {
    char id[RF_ID_BYTES];
    char user_id[RF_ID_BYTES];
    char kind[RF_ID_BYTES];
    char *title;                    /* malloc'd */
    char *body;                     /* malloc'd */
    char *data_json;                /* malloc'd or NULL */
    char dedupe_key[RF_ID_BYTES];   /* "" when none */
    char announcement_id[RF_ID_BYTES]; /* "" when none */
    int64_t read_at_ms;             /* 0: unread */
    int64_t created_at_ms;
    int64_t updated_at_ms;
    int64_t version;
    bool created;
};
RF_API void rf_notification_clear(struct rf_notification *n);
/* The list's ?unread= filter. */
enum rf_notification_filter {
    RF_NOTIFICATIONS_ALL = 0,
    RF_NOTIFICATIONS_UNREAD = 1,    /* ?unread=true */
    RF_NOTIFICATIONS_READ = 2,      /* ?unread=false */
};
struct rf_notification_list_req {
    struct rf_list_req list;        /* scope: the user; no status */
    int unread;                     /* enum rf_notification_filter */
};
/* A page, and the user's unread count read by the same statement (one
 * snapshot): with ?unread=true, a page that ends the list from its start
 * holds exactly unread_count items. */
struct rf_notification_page {
    struct rf_notification *items;  /* malloc'd; rf_notification_page_clear */
    int n;
    char next[RF_CURSOR_BYTES];
    int64_t unread_count;
};
RF_API void rf_notification_page_clear(struct rf_notification_page *p);
struct rf_notification_count {
    char user_id[RF_ID_BYTES];
    int64_t unread_count;
    int64_t marked;                 /* read_all: how many it marked read */
    char up_to[RF_ID_BYTES];        /* read_all: the up_to it was given */
};
RF_API rf_err rf_notification_create(rf *db, const struct rf_notification_req *req,
                                     struct rf_notification *out, struct rf_idem *idem);
RF_API rf_err rf_notification_get(rf *db, const char *user_id, const char *id,
                                  struct rf_notification *out);
RF_API rf_err rf_notification_list(rf *db, const struct rf_notification_list_req *req,
                                   struct rf_notification_page *out);
RF_API rf_err rf_notification_unread_count(rf *db, const char *user_id,
                                           struct rf_notification_count *out);
RF_API rf_err rf_notification_read(rf *db, const char *user_id, const char *id,
                                   struct rf_notification *out);
RF_API rf_err rf_notification_unread(rf *db, const char *user_id, const char *id,
                                     struct rf_notification *out);
RF_API rf_err rf_notification_read_all(rf *db, const char *user_id, const char *up_to,
                                       struct rf_notification_count *out);
/* ---- announcements ----------------------------------------------------------
 * An announcement is one notification (kind "announcement") to every user of
 * its audience: {"all": true} (every user id racefree knows: of an
 * entitlement, a customer binding, a checkout or a notification),
 * {"user_ids": [...]} (1..5000 distinct ids) or {"entitlement_key": K} (every user with an active,
 * unexpired entitlement K). The row and its fan-out job (queue
 * "racefree.announcements", unique_key the announcement's id, run_at
 * send_at) commit in one transaction; the fan-out (rf_fanout_start, which
 * `racefree serve` runs) delivers it in chunks of one transaction each, one
 * recipient row per (announcement, user). The audience is read as it stands
 * when the fan-out reaches it, in user id order.
 * Its state is derived, never stored: scheduled (no recipient yet), sending
 * (the audience not exhausted, or recipients pending), sent (every recipient
 * delivered) or partially_failed (none pending, some failed). */
enum rf_announcement_state {
    RF_ANNOUNCEMENT_SCHEDULED = 0,
    RF_ANNOUNCEMENT_SENDING,
    RF_ANNOUNCEMENT_SENT,
    RF_ANNOUNCEMENT_PARTIALLY_FAILED,
};
/* "scheduled" | "sending" | ...; NULL for a value that is no state. */
RF_API const char *rf_announcement_state_name(enum rf_announcement_state state);

struct rf_announcement {
    char id[RF_ID_BYTES];
    char *title;                    /* malloc'd */
    char *body;                     /* malloc'd */
    char audience[16];              /* "all" | "user_ids" | "entitlement_key" */
    char entitlement_key[RF_ID_BYTES]; /* audience entitlement_key: the key; else "" */
    int64_t audience_size;          /* audience user_ids: the distinct ids; else 0 */
    enum rf_announcement_state state;
    bool fanout_done;               /* every recipient row exists */
    int64_t recipients;             /* recipient rows so far */
    int64_t pending, delivered, failed;
    int64_t retries;                /* retry-failed calls that moved recipients */
    char job_id[RF_ID_BYTES];       /* the fan-out job */
    int64_t send_at_ms;
    int64_t created_at_ms;
    int64_t updated_at_ms;
    int64_t version;                /* bumped by every chunk and retry */
    bool created;
};
RF_API void rf_announcement_clear(struct rf_announcement *a);

struct rf_announcement_req {
    const char *id;                 /* get, retry-failed */
    const char *title;              /* create: 1..200 characters */
    const char *body;               /* create: 1..4000 characters */
    const char *audience_json;      /* create: one of the three audience objects */
    int64_t send_at_ms;             /* create: 0: now; at most a year ahead */
};

/* The Idempotency-Key is required at the HTTP edge; here it is optional. */
RF_API rf_err rf_announcement_create(rf *db, const struct rf_announcement_req *req,
                                     struct rf_announcement *out, struct rf_idem *idem);
RF_API rf_err rf_announcement_get(rf *db, const char *id, struct rf_announcement *out);
/* Moves the failed recipients back to pending and enqueues a fan-out job
 * that delivers them (unique_key "<id>:retry:<n>"); none failed: nothing. */
RF_API rf_err rf_announcement_retry_failed(rf *db, const char *id, struct rf_announcement *out);

/* The fan-out worker: a thread that claims jobs of the announcements queue
 * (30 s leases, a heartbeat per chunk; worker_id "fanout-<pid>-<random>") and
 * runs each in chunks of chunk recipients (1..5000; 0: 500), each chunk one
 * transaction. rf_fanout_stop finishes the chunk in flight and gives its job
 * back (a fail with a short retry), so another process continues it. */
struct rf_fanout;
RF_API rf_err rf_fanout_start(rf *db, int chunk, struct rf_fanout **out);
RF_API void rf_fanout_stop(struct rf_fanout *f);

#ifdef __cplusplus
}
#endif
#endif
