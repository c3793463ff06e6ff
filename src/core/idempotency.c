/*
 * idempotency.c - the Idempotency-Key layer, and the two doors into the
 * executor (core_write, core_read).
 *
 * The key's record is read and written in the SAME transaction as the effect,
 * so an effect without its record (or the reverse) can never commit. Only
 * successful outcomes are stored: a failed request changes nothing, so its
 * retry with the same key runs again. The record holds the operation's typed
 * result (core/codec.h), not a rendered reply: a replay decodes it into the
 * caller's result struct, and the edge renders the first answer and every
 * replay with the same code, outside the transaction.
 *
 * "In flight": while the first request for a key is running, a second one
 * gets RF_ERR_IDEM_IN_FLIGHT. Within a process an in-memory set catches it
 * before the operation is queued; across PostgreSQL processes a transaction
 * advisory lock on the key's hash does (try-lock, never waits). Across SQLite
 * processes the write lock serializes whole transactions, so the second one
 * simply finds the record and replays it.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "core/core.h"

#define HASH_HEX_BYTES 65

rf_err rf_idem_hash(struct rf_idem *idem, int n_parts, const void *const parts[],
                    const size_t lens[]) {
    if (!idem || n_parts < 0 || n_parts > RF_IDEM_HASH_PARTS_MAX || (n_parts && (!parts || !lens)))
        return RF_ERR_INVALID;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    for (int i = 0; i < n_parts; i++)
        if (parts[i] && lens[i]) crypto_hash_sha256_update(&st, parts[i], lens[i]);
    crypto_hash_sha256_final(&st, idem->request_hash);
    return RF_OK;
}

static uint64_t key_hash64(const struct rf_idem *idem) {
    crypto_generichash_state st;
    uint8_t out[8];
    crypto_generichash_init(&st, NULL, 0, sizeof out);
    crypto_generichash_update(&st, (const unsigned char *)idem->api_key_id,
                              strlen(idem->api_key_id) + 1);
    crypto_generichash_update(&st, (const unsigned char *)idem->key, strlen(idem->key));
    crypto_generichash_final(&st, out, sizeof out);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h ? h : 1; /* 0 never names a key */
}

/* ---- in-process in-flight set (bounded) -------------------------------- */

static rf_err inflight_add(rf *db, uint64_t h) {
    rf_err err = RF_OK;
    pthread_mutex_lock(&db->inflight_mu);
    for (int i = 0; i < db->inflight_n; i++)
        if (db->inflight[i] == h) err = RF_ERR_IDEM_IN_FLIGHT;
    if (!err && db->inflight_n >= RF_INFLIGHT_MAX) err = RF_ERR_OVERLOADED;
    if (!err) db->inflight[db->inflight_n++] = h;
    pthread_mutex_unlock(&db->inflight_mu);
    return err;
}

static void inflight_remove(rf *db, uint64_t h) {
    pthread_mutex_lock(&db->inflight_mu);
    for (int i = 0; i < db->inflight_n; i++) {
        if (db->inflight[i] == h) {
            db->inflight[i] = db->inflight[--db->inflight_n];
            break;
        }
    }
    pthread_mutex_unlock(&db->inflight_mu);
}

/* ---- inside the transaction -------------------------------------------- */

/* struct core_idem_call (core.h): one keyed call; a submitted write holds one. */

/* A record's status column: 0 marks a typed result (the body is the
 * operation's result text, rf_codec); other values are replies rendered by
 * versions before results were stored (status, body, headers). */
#define STATUS_TYPED 0

static const char SQL_PG_TRY_LOCK[] = "SELECT pg_try_advisory_xact_lock($1)";
static const char SQL_IDEM_GET[] =
    "SELECT request_hash, status, body FROM idempotency_keys"
    " WHERE key_id = $1 AND idem_key = $2 AND expires_at > $3";
static const char SQL_IDEM_PUT[] =
    "INSERT INTO idempotency_keys"
    " (key_id, idem_key, request_hash, status, body, headers, created_at, expires_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    " ON CONFLICT (key_id, idem_key) DO UPDATE SET request_hash = excluded.request_hash,"
    " status = excluded.status, body = excluded.body, headers = excluded.headers,"
    " created_at = excluded.created_at, expires_at = excluded.expires_at";

struct stored {
    char hash[HASH_HEX_BYTES];
    int64_t status;
    char *body; /* malloc'd */
    size_t body_len;
};

static void read_stored(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct stored *s = out;
    snprintf(s->hash, sizeof s->hash, "%s", store_text(tx, r, 0));
    s->status = store_int(tx, r, 1);
    s->body = strdup(store_text(tx, r, 2));
    s->body_len = s->body ? strlen(s->body) : 0;
}

/* The try-lock's answer: "t" when this transaction holds the key's lock. */
struct lock_answer {
    struct rf_tx *tx;
    char got[8];
};

static void read_lock(void *ctx, struct store_rows *r) {
    struct lock_answer *a = ctx;
    snprintf(a->got, sizeof a->got, "%s", store_text(a->tx, r, 0));
}


static rf_err replay_typed(const struct core_idem_call *c, struct stored *s);

/* RF_OK with idem->replayed set, RF_ERR_NOT_FOUND when there is no record. */
static rf_err lookup(struct rf_tx *tx, const struct core_idem_call *c, const char *hash_hex) {
    struct rf_idem *idem = c->idem;
    store_val p[3] = {SV_S(idem->api_key_id), SV_S(idem->key), SV_I(tx->now_ms)};
    struct stored s = {0};
    rf_err err = store_query_one(tx, SQL_IDEM_GET, p, 3, read_stored, &s);
    if (err) return err;
    if (!s.body) return RF_ERR_NOMEM;
    err = strcmp(s.hash, hash_hex) == 0 ? replay_typed(c, &s) : RF_ERR_IDEM_REUSED;
    free(s.body);
    return err;
}

/* ---- sealing stored bodies -------------------------------------------- */

#define SEAL_PREFIX "sealed:"

static void seal_key(const struct rf_idem *idem, uint8_t key[crypto_secretbox_KEYBYTES]) {
    uint8_t inner[crypto_generichash_KEYBYTES];
    crypto_generichash(inner, sizeof inner, (const unsigned char *)idem->seal_secret,
                       strlen(idem->seal_secret), NULL, 0);
    crypto_generichash(key, crypto_secretbox_KEYBYTES, (const unsigned char *)idem->key,
                       strlen(idem->key), inner, sizeof inner);
    sodium_memzero(inner, sizeof inner);
}

/* "sealed:" + base64(nonce || secretbox(body)); malloc'd. */
static char *seal(const struct rf_idem *idem, const char *body, size_t len) {
    uint8_t key[crypto_secretbox_KEYBYTES];
    seal_key(idem, key);
    size_t box_len = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + len;
    uint8_t *box = malloc(box_len);
    size_t b64_len = sodium_base64_encoded_len(box_len, sodium_base64_VARIANT_ORIGINAL);
    char *out = malloc(sizeof SEAL_PREFIX + b64_len);
    if (box && out) {
        randombytes_buf(box, crypto_secretbox_NONCEBYTES);
        crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, (const unsigned char *)body, len,
                              box, key);
        memcpy(out, SEAL_PREFIX, sizeof SEAL_PREFIX - 1);
        sodium_bin2base64(out + sizeof SEAL_PREFIX - 1, b64_len, box, box_len,
                          sodium_base64_VARIANT_ORIGINAL);
    } else {
        free(out);
        out = NULL;
    }
    free(box);
    sodium_memzero(key, sizeof key);
    return out;
}

/* Opens a sealed body in place of *body (malloc'd; *len its length);
 * RF_ERR_IDEM_REUSED when the key does not open it (another caller cannot
 * get here: keys are scoped). */
static rf_err unseal_text(const struct rf_idem *idem, char **body, size_t *len) {
    if (strncmp(*body, SEAL_PREFIX, sizeof SEAL_PREFIX - 1) != 0) return RF_OK;
    if (!idem->seal_secret) return RF_ERR_IDEM_REUSED;
    const char *b64 = *body + sizeof SEAL_PREFIX - 1;
    size_t cap = strlen(b64), box_len = 0;
    uint8_t *box = malloc(cap + 1);
    char *plain = malloc(cap + 1);
    rf_err err = (!box || !plain) ? RF_ERR_NOMEM : RF_OK;
    if (!err && (sodium_base642bin(box, cap, b64, cap, NULL, &box_len, NULL,
                                   sodium_base64_VARIANT_ORIGINAL) != 0 ||
                 box_len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES))
        err = RF_ERR_INTERNAL;
    uint8_t key[crypto_secretbox_KEYBYTES];
    seal_key(idem, key);
    size_t plain_len = box_len - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    if (!err && crypto_secretbox_open_easy((unsigned char *)plain,
                                           box + crypto_secretbox_NONCEBYTES,
                                           box_len - crypto_secretbox_NONCEBYTES, box, key) != 0)
        err = RF_ERR_IDEM_REUSED;
    sodium_memzero(key, sizeof key);
    free(box);
    if (err) { free(plain); return err; }
    plain[plain_len] = '\0';
    free(*body);
    *body = plain;
    *len = plain_len;
    return RF_OK;
}


/* ---- typed results -------------------------------------------------------- */

/* Fills the caller's result from a stored typed record. A record rendered
 * before results were stored cannot be decoded: the effect happened, so the
 * answer is a conflict, never a second run. */
static rf_err replay_typed(const struct core_idem_call *c, struct stored *s) {
    const struct core_result *r = c->typed;
    rf_err err = s->status == STATUS_TYPED ? RF_OK : RF_ERR_CONFLICT;
    if (!err) err = unseal_text(c->idem, &s->body, &s->body_len);
    if (r->clear) r->clear(r->res);
    memset(r->res, 0, r->res_size);
    if (!err) err = rf_codec_decode(r->codec, s->body, r->res);
    if (err && r->clear) r->clear(r->res);
    if (!err) c->idem->replayed = true;
    return err;
}

static void idem_undo(void *ctx);

/* The key's try-lock (PostgreSQL), then its record. The lock is its own
 * statement, run first, so the lookup's snapshot is taken after the lock is
 * held and sees a record the previous holder committed (one statement would
 * read with a snapshot older than its lock: check-then-act across
 * processes); the lookup rides the lock's round trip (store_query_later).
 * Without the lock the answer is in flight, whatever the lookup found. */
static rf_err locked_lookup(struct rf_tx *tx, struct core_idem_call *c, const char *hash_hex) {
    /* SQLite: the writer lock serializes whole transactions */
    if (tx->ops->backend != STORE_POSTGRES) return lookup(tx, c, hash_hex);
    store_val p[1] = {SV_I((int64_t)c->hash64)};
    struct lock_answer a = {tx, ""};
    rf_err err = store_query_later(tx, SQL_PG_TRY_LOCK, p, 1, read_lock, &a);
    if (err) return err;
    err = lookup(tx, c, hash_hex); /* learns the lock's answer first */
    if (!a.got[0]) /* the lock's statement failed: its error (the lookup did not run) */
        return err == RF_OK || err == RF_ERR_NOT_FOUND ? RF_ERR_INTERNAL : err;
    if (strcmp(a.got, "t") == 0) return err;
    if (c->idem->replayed) idem_undo(c); /* a replay the lookup decoded is not this request's */
    return RF_ERR_IDEM_IN_FLIGHT;
}

static rf_err put(struct rf_tx *tx, const struct core_idem_call *c, const char *hash_hex,
                  const char *body, size_t len) {
    if (!body || len > RF_REPLY_BYTES_MAX) return RF_ERR_INTERNAL;
    RF_ASSERT(strlen(body) == len); /* stored as text: no NUL inside */
    char *sealed = NULL;
    if (c->typed->seal) {
        RF_ASSERT(c->idem->seal_secret); /* rf_op_run refuses a sealed op's key without one */
        sealed = seal(c->idem, body, len);
        if (!sealed) return RF_ERR_NOMEM;
    }
    store_val p[8] = {SV_S(c->idem->api_key_id), SV_S(c->idem->key), SV_S(hash_hex),
                      SV_I(STATUS_TYPED), SV_S(sealed ? sealed : body), SV_S(NULL),
                      SV_I(tx->now_ms), SV_I(tx->now_ms + c->retention_ms)};
    /* Not waited for: a failure fails the operation (store_exec_later copies
     * the parameters, so sealed may go now). */
    rf_err err = store_exec_later(tx, SQL_IDEM_PUT, p, 8);
    free(sealed);
    return err;
}

static rf_err record(struct rf_tx *tx, const struct core_idem_call *c, const char *hash_hex) {
    char *text = rf_codec_encode(c->typed->codec, c->typed->res);
    if (!text) return RF_ERR_NOMEM;
    rf_err err = put(tx, c, hash_hex, text, strlen(text));
    free(text);
    return err;
}

static rf_err idem_apply(struct rf_tx *tx, void *ctx) {
    struct core_idem_call *c = ctx;
    struct rf_idem *idem = c->idem;
    idem->replayed = false; /* a retried attempt starts clean */
    char hash_hex[HASH_HEX_BYTES];
    rf_hex(idem->request_hash, sizeof idem->request_hash, hash_hex);
    rf_err err = locked_lookup(tx, c, hash_hex);
    if (err != RF_ERR_NOT_FOUND) return err; /* replayed, reused, in flight, or a store error */
    err = c->fn(tx, c->ctx);
    if (!err) err = record(tx, c, hash_hex);
    return err;
}

static void idem_undo(void *ctx) {
    struct core_idem_call *c = ctx;
    c->idem->replayed = false;
    if (c->typed->clear) c->typed->clear(c->typed->res);
}

/* ---- the doors --------------------------------------------------------- */

/* The keyed call and its executor operation, once its key is in the
 * in-flight set (the caller removes it when the operation is over). */
static rf_err keyed_begin(rf *db, const char *name, uint32_t shard, exec_fn fn, void *ctx,
                          const struct core_result *r, struct rf_idem *idem,
                          struct core_idem_call *call, struct exec_op *op) {
    RF_ASSERT(db && name && fn && r && r->codec && r->res && idem && idem->key);
    RF_ASSERT(idem->api_key_id && (!r->seal || idem->seal_secret));
    idem->replayed = false;
    *call = (struct core_idem_call){fn, ctx, idem, key_hash64(idem), db->opt.idem_retention_ms, r};
    *op = (struct exec_op){.name = name, .fn = idem_apply, .undo = idem_undo, .ctx = call,
                           .write = true, .shard = shard};
    return inflight_add(db, call->hash64);
}

rf_err core_write(rf *db, const char *name, uint32_t shard, exec_fn fn, void *ctx) {
    RF_ASSERT(db && name && fn);
    struct exec_op op = {.name = name, .fn = fn, .ctx = ctx, .write = true, .shard = shard};
    return exec_run(db->exec, &op);
}

rf_err core_write_result(rf *db, const char *name, uint32_t shard, exec_fn fn, void *ctx,
                         const struct core_result *r, struct rf_idem *idem) {
    struct core_idem_call call;
    struct exec_op op;
    rf_err err = keyed_begin(db, name, shard, fn, ctx, r, idem, &call, &op);
    if (err) return err;
    err = exec_run(db->exec, &op);
    inflight_remove(db, call.hash64);
    return err;
}

/* The executor's answer to a submitted write: the key leaves the in-flight
 * set before the caller hears of it, so its next request is not "in flight". */
static void pending_done(void *arg, rf_err err) {
    struct core_pending *p = arg;
    if (p->keyed) inflight_remove(p->db, p->call.hash64);
    p->done(p->arg, err); /* last: p may be reused from here on */
}

void core_write_submit(rf *db, const char *name, uint32_t shard, exec_fn fn, void *ctx,
                       const struct core_result *r, struct rf_idem *idem,
                       struct core_pending *p, exec_done_fn done, void *arg) {
    RF_ASSERT(db && name && fn && p && done);
    *p = (struct core_pending){.db = db, .keyed = r != NULL, .done = done, .arg = arg};
    p->op = (struct exec_op){.name = name, .fn = fn, .ctx = ctx, .write = true, .shard = shard};
    if (r) {
        p->typed = *r;
        rf_err err = keyed_begin(db, name, shard, fn, ctx, &p->typed, idem, &p->call, &p->op);
        if (err) {
            done(arg, err);
            return;
        }
    }
    exec_submit(db->exec, &p->op, pending_done, p);
}

rf_err core_read(rf *db, const char *name, exec_fn fn, void *ctx) {
    RF_ASSERT(db && name && fn);
    struct exec_op op = {.name = name, .fn = fn, .ctx = ctx, .write = false};
    return exec_run(db->exec, &op);
}

/* ---- retention --------------------------------------------------------- */

static const char SQL_IDEM_PURGE[] =
    "DELETE FROM idempotency_keys WHERE (key_id, idem_key) IN"
    " (SELECT key_id, idem_key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)";

struct purge_ctx {
    int batch_max;
    int64_t purged;
};

static rf_err op_purge(struct rf_tx *tx, void *ctx) {
    struct purge_ctx *c = ctx;
    store_val p[2] = {SV_I(tx->now_ms), SV_I(c->batch_max)};
    return store_exec(tx, SQL_IDEM_PURGE, p, 2, &c->purged);
}

rf_err rf_idem_purge(rf *db, int batch_max, int *purged_out) {
    if (!db) return RF_ERR_INVALID;
    if (batch_max <= 0 || batch_max > RF_IDEM_PURGE_BATCH) batch_max = RF_IDEM_PURGE_BATCH;
    struct purge_ctx c = {batch_max, 0};
    rf_err err = core_write(db, "idempotency_purge", 0, op_purge, &c);
    if (!err && purged_out) *purged_out = (int)c.purged;
    return err;
}
