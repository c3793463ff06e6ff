/*
 * keys.c - API keys: "rfk_<id>_<secret>", 256 random bits of secret, stored
 * only as a BLAKE2b hash and compared in constant time. The id in the key
 * text finds the row; the hash comparison decides. A slow password hash is
 * not needed: the secret is random, not chosen by a person.
 *
 * Create, revoke and list are operations of the table (core/api.c): their
 * transaction functions are here, their public functions thin wrappers over
 * rf_op_run. Bootstrap, authenticate and count run on every request or at
 * start and stay direct.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/clock.h"
#include "base/ids.h"
#include "core/core.h"
#include "core/listing.h"
#include "core/ratelimit.h"
#include "core/ops.h"

#define KEY_PREFIX "rfk_"
#define SECRET_BYTES 32
#define SECRET_HEX_BYTES (2 * SECRET_BYTES + 1)
#define HASH_BYTES 32
#define HASH_HEX_BYTES (2 * HASH_BYTES + 1)
/* "rfk_<uuid>_<64 hex>" */
#define KEY_TEXT_CHARS (sizeof KEY_PREFIX - 1 + RF_UUID_TEXT_BYTES - 1 + 1 + SECRET_HEX_BYTES - 1)
_Static_assert(KEY_TEXT_CHARS < RF_KEY_SECRET_BYTES, "a key text fits RF_KEY_SECRET_BYTES");

/* The roles by name, in enum rf_role's bit order: the one list that the
 * create request's field spec, rf_role_name and rf_role_parse all read. */
const char *const key_role_names[KEY_ROLES_COUNT + 1] = {"admin", "service", "worker", "readonly",
                                                        NULL};
const int key_role_values[KEY_ROLES_COUNT] = {RF_ROLE_ADMIN, RF_ROLE_SERVICE, RF_ROLE_WORKER,
                                             RF_ROLE_READONLY};

const char *rf_role_name(enum rf_role role) {
    for (int i = 0; i < KEY_ROLES_COUNT; i++)
        if ((int)role == key_role_values[i]) return key_role_names[i];
    return "unknown";
}

bool rf_role_parse(const char *name, enum rf_role *out) {
    for (int i = 0; name && i < KEY_ROLES_COUNT; i++) {
        if (strcmp(name, key_role_names[i]) == 0) {
            *out = (enum rf_role)key_role_values[i];
            return true;
        }
    }
    return false;
}

static void secret_hash(const char *secret_hex, char out[HASH_HEX_BYTES]) {
    uint8_t h[HASH_BYTES];
    crypto_generichash(h, sizeof h, (const unsigned char *)secret_hex, strlen(secret_hex), NULL,
                       0);
    rf_hex(h, sizeof h, out);
}

static void read_key(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_key *k = out;
    memset(k, 0, sizeof *k);
    rf_strcpy(k->id, sizeof k->id, store_text(tx, r, 0));
    rf_strcpy(k->name, sizeof k->name, store_text(tx, r, 1));
    bool ok = rf_role_parse(store_text(tx, r, 2), &k->role);
    RF_ASSERT(ok); /* the schema's CHECK allows only known roles */
    k->created_at_ms = store_int(tx, r, 3);
    k->revoked_at_ms = store_int(tx, r, 4);
    /* the key's own limit (NULL: its role's), read with the row every
     * request authenticates against, so a limit costs no extra read */
    k->rate_limit.quota = store_null(tx, r, 5) ? 0 : store_int(tx, r, 5);
    k->rate_limit.window_ms = store_null(tx, r, 6) ? 0 : store_int(tx, r, 6);
}

/* Every key query reads these first, in read_key's order. */
#define KEY_COLS "id, name, role, created_at, revoked_at, rate_limit_quota, rate_limit_window_ms"

/* ---- create ------------------------------------------------------------ */

static const char SQL_KEY_INSERT[] =
    "INSERT INTO api_keys (id, name, role, secret_hash, created_at, revoked_at,"
    " rate_limit_quota, rate_limit_window_ms) VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)";

/* A new key: a fresh id and secret, only the secret's hash stored. The id is
 * made here, so two creates never meet on one row. */
static rf_err insert_key(struct rf_tx *tx, enum rf_role role, const char *name,
                         const struct rf_rate_limit *limit, struct rf_key_created *out) {
    struct rf_key *k = &out->key;
    RF_ASSERT(strcmp(rf_role_name(role), "unknown") != 0);
    rf_uuid7(tx->now_ms, k->id);
    rf_strcpy(k->name, sizeof k->name, name && *name ? name : rf_role_name(role));
    k->role = role;
    k->created_at_ms = tx->now_ms;
    k->revoked_at_ms = 0;
    if (limit && limit->quota) k->rate_limit = *limit;
    uint8_t raw[SECRET_BYTES];
    char secret_hex[SECRET_HEX_BYTES], hash_hex[HASH_HEX_BYTES];
    randombytes_buf(raw, sizeof raw);
    rf_hex(raw, sizeof raw, secret_hex);
    sodium_memzero(raw, sizeof raw);
    secret_hash(secret_hex, hash_hex);
    RF_ASSERT(strlen(k->id) == RF_UUID_TEXT_BYTES - 1);
    snprintf(out->secret, sizeof out->secret, KEY_PREFIX "%.36s_%.64s", k->id, secret_hex);
    sodium_memzero(secret_hex, sizeof secret_hex);
    /* the key text names its row: rf_key_authenticate finds it by this id */
    RF_ASSERT(strlen(out->secret) == KEY_TEXT_CHARS &&
              strncmp(out->secret + strlen(KEY_PREFIX), k->id, RF_UUID_TEXT_BYTES - 1) == 0);
    store_val p[7] = {SV_S(k->id), SV_S(k->name), SV_S(rf_role_name(role)), SV_S(hash_hex),
                      SV_I(tx->now_ms), SV_I0(k->rate_limit.quota),
                      SV_I0(k->rate_limit.window_ms)};
    return store_exec(tx, SQL_KEY_INSERT, p, 7, NULL);
}

rf_err op_key_create(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_key_create_req *r = req;
    struct rf_rate_limit limit = {0};
    char why[128];
    /* the op's check has refused a bad spec already */
    if (r->rate_limit && !rf_rate_limit_parse(r->rate_limit, &limit, why, sizeof why))
        return RF_ERR_INVALID;
    return insert_key(tx, r->role, r->name, &limit, res);
}

void rf_key_created_clear(struct rf_key_created *c) {
    if (c) sodium_memzero(c, sizeof *c);
}

rf_err rf_key_create(rf *db, enum rf_role role, const char *name, struct rf_key_created *out,
                     struct rf_idem *idem) {
    /* "" from C names the key by its role, as NULL does (the edge refuses "") */
    struct rf_key_create_req req = {role, name && *name ? name : NULL, NULL};
    return rf_op_run(db, RF_OP_KEY_CREATE, &req, out, idem, NULL);
}

struct create_limited_args {
    enum rf_role role;
    const char *name;
    const struct rf_rate_limit *limit;
    struct rf_key_created *out;
};

static rf_err op_key_create_limited(struct rf_tx *tx, void *ctx) {
    struct create_limited_args *a = ctx;
    return insert_key(tx, a->role, a->name, a->limit, a->out);
}

rf_err rf_key_create_limited(rf *db, enum rf_role role, const char *name,
                             const struct rf_rate_limit *limit, struct rf_key_created *out) {
    if (!limit || !limit->quota) return rf_key_create(db, role, name, out, NULL);
    if (!db || !out || !rf_rate_limit_valid(limit) || strcmp(rf_role_name(role), "unknown") == 0 ||
        (name && *name && !rf_id_valid(name)))
        return RF_ERR_INVALID;
    struct create_limited_args a = {role, name && *name ? name : NULL, limit, out};
    return core_write(db, "key_create", 0, op_key_create_limited, &a);
}

/* ---- bootstrap: the first admin key, exactly once per store ------------ */

/* Claims the single bootstrap row only while the store has no key at all, so
 * keys made with the CLI first, or a second process starting, make none. */
static const char SQL_BOOTSTRAP_CLAIM[] =
    "INSERT INTO bootstrap (id, key_id, created_at) SELECT 1, '', $1"
    " WHERE NOT EXISTS (SELECT 1 FROM api_keys) ON CONFLICT (id) DO NOTHING";
static const char SQL_BOOTSTRAP_SET[] = "UPDATE bootstrap SET key_id = $1 WHERE id = 1";

struct bootstrap_args {
    struct rf_key_created made;
    bool created;
};

static rf_err op_bootstrap(struct rf_tx *tx, void *ctx) {
    struct bootstrap_args *a = ctx;
    int64_t changes = 0;
    store_val p[1] = {SV_I(tx->now_ms)};
    rf_err err = store_exec(tx, SQL_BOOTSTRAP_CLAIM, p, 1, &changes);
    if (err || changes == 0) return err;
    err = insert_key(tx, RF_ROLE_ADMIN, "bootstrap", NULL, &a->made);
    if (err) return err;
    store_val q[1] = {SV_S(a->made.key.id)};
    err = store_exec(tx, SQL_BOOTSTRAP_SET, q, 1, NULL);
    a->created = err == RF_OK;
    return err;
}

rf_err rf_key_bootstrap(rf *db, struct rf_key *out, char secret_out[RF_KEY_SECRET_BYTES],
                        bool *created) {
    if (!db || !out || !secret_out || !created) return RF_ERR_INVALID;
    struct bootstrap_args a = {.created = false};
    *created = false;
    rf_err err = core_write(db, "key_bootstrap", 0, op_bootstrap, &a);
    if (!err && a.created) {
        *out = a.made.key;
        memcpy(secret_out, a.made.secret, RF_KEY_SECRET_BYTES);
        *created = true;
    }
    rf_key_created_clear(&a.made);
    return err;
}

/* ---- authenticate ------------------------------------------------------ */

static const char SQL_KEY_AUTH[] =
    "SELECT " KEY_COLS ", secret_hash FROM api_keys WHERE id = $1";

struct auth_args {
    const char *id;
    struct rf_key key;
    char hash[HASH_HEX_BYTES];
};

static void read_auth(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct auth_args *a = out;
    read_key(tx, r, &a->key);
    snprintf(a->hash, sizeof a->hash, "%s", store_text(tx, r, 7));
}

static rf_err op_key_auth(struct rf_tx *tx, void *ctx) {
    struct auth_args *a = ctx;
    store_val p[1] = {SV_S(a->id)};
    return store_query_one(tx, SQL_KEY_AUTH, p, 1, read_auth, a);
}

bool key_text_parse(const char *text, char id[RF_UUID_TEXT_BYTES], const char **secret) {
    size_t pre = strlen(KEY_PREFIX);
    if (!text || strncmp(text, KEY_PREFIX, pre) != 0) return false;
    if (strlen(text) != pre + RF_UUID_TEXT_BYTES - 1 + 1 + SECRET_HEX_BYTES - 1) return false;
    memcpy(id, text + pre, RF_UUID_TEXT_BYTES - 1);
    id[RF_UUID_TEXT_BYTES - 1] = '\0';
    if (text[pre + RF_UUID_TEXT_BYTES - 1] != '_' || !rf_id_valid(id)) return false;
    *secret = text + pre + RF_UUID_TEXT_BYTES;
    return true;
}

/* ---- the authentication cache ---------------------------------------------
 * Every request authenticates; without a cache each one is a store read.
 * A key's row (its role, its secret's hash, whether it is revoked) is kept
 * for at most RF_KEY_CACHE_TTL_MS, in a fixed table (no allocation per
 * request). A revoke committed by this process forgets the key at once; a
 * read that began before that commit cannot put the old row back, because
 * every forget moves the cache's epoch and an insert from an older epoch is
 * dropped. A revoke by another process is seen within the TTL. */
struct key_cache_entry {
    char id[RF_UUID_TEXT_BYTES]; /* "" : free */
    char hash[HASH_HEX_BYTES];
    struct rf_key key;
    int64_t fetched_mono_ms;
};

struct key_cache {
    pthread_mutex_t mu;
    uint64_t epoch;
    struct key_cache_entry e[RF_KEY_CACHE_ENTRIES];
};

rf_err key_cache_open(rf *db) {
    db->key_cache = calloc(1, sizeof *db->key_cache);
    if (!db->key_cache) return RF_ERR_NOMEM;
    pthread_mutex_init(&db->key_cache->mu, NULL);
    return RF_OK;
}

void key_cache_close(rf *db) {
    if (!db->key_cache) return;
    pthread_mutex_destroy(&db->key_cache->mu);
    free(db->key_cache);
    db->key_cache = NULL;
}

static struct key_cache_entry *cache_slot(struct key_cache *c, const char *id) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: spreads uuid7's shared time prefix */
    for (const char *p = id; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return &c->e[h % RF_KEY_CACHE_ENTRIES];
}

/* A fresh row for id, or false with *epoch_out the epoch a store read that
 * starts now must still see to put its row in. */
static bool cache_get(rf *db, const char *id, struct auth_args *a, uint64_t *epoch_out) {
    struct key_cache *c = db->key_cache;
    int64_t now = rf_mono_ms();
    pthread_mutex_lock(&c->mu);
    struct key_cache_entry *e = cache_slot(c, id);
    bool hit = strcmp(e->id, id) == 0 && now - e->fetched_mono_ms < RF_KEY_CACHE_TTL_MS;
    if (hit) {
        a->key = e->key;
        memcpy(a->hash, e->hash, sizeof a->hash);
    }
    *epoch_out = c->epoch;
    pthread_mutex_unlock(&c->mu);
    return hit;
}

static void cache_put(rf *db, const struct auth_args *a, uint64_t epoch, int64_t fetched_ms) {
    struct key_cache *c = db->key_cache;
    pthread_mutex_lock(&c->mu);
    if (c->epoch == epoch) { /* no revoke committed since the read began */
        struct key_cache_entry *e = cache_slot(c, a->id);
        rf_strcpy(e->id, sizeof e->id, a->id);
        memcpy(e->hash, a->hash, sizeof e->hash);
        e->key = a->key;
        e->fetched_mono_ms = fetched_ms;
    }
    pthread_mutex_unlock(&c->mu);
}

void key_revoked(rf *db, const void *req, const void *res) {
    (void)res;
    const struct rf_key_ref *r = req;
    struct key_cache *c = db->key_cache;
    pthread_mutex_lock(&c->mu);
    c->epoch++;
    struct key_cache_entry *e = cache_slot(c, r->id);
    if (strcmp(e->id, r->id) == 0) e->id[0] = '\0';
    pthread_mutex_unlock(&c->mu);
}

/* The key's row, from the cache or the store. */
static rf_err key_row(rf *db, struct auth_args *a) {
    uint64_t epoch = 0;
    if (cache_get(db, a->id, a, &epoch)) return RF_OK;
    int64_t fetched_ms = rf_mono_ms(); /* before the read: the TTL counts from it */
    rf_err err = core_read(db, "key_authenticate", op_key_auth, a);
    if (!err) cache_put(db, a, epoch, fetched_ms);
    return err;
}

/* The key text's secret against its row's hash (and the row still active). */
static rf_err key_verify(const struct auth_args *a, const char *secret, struct rf_key *out) {
    RF_ASSERT(strcmp(a->key.id, a->id) == 0);
    char want[HASH_HEX_BYTES];
    secret_hash(secret, want);
    bool match = strlen(a->hash) == HASH_HEX_BYTES - 1 &&
                 sodium_memcmp(want, a->hash, HASH_HEX_BYTES - 1) == 0;
    if (!match || a->key.revoked_at_ms != 0) return RF_ERR_UNAUTHENTICATED;
    *out = a->key;
    return RF_OK;
}

rf_err rf_key_authenticate(rf *db, const char *text, struct rf_key *out) {
    if (!db || !out) return RF_ERR_INVALID;
    char id[RF_UUID_TEXT_BYTES];
    const char *secret = NULL;
    if (!key_text_parse(text, id, &secret)) return RF_ERR_UNAUTHENTICATED;
    struct auth_args a = {.id = id};
    rf_err err = key_row(db, &a);
    if (err == RF_ERR_NOT_FOUND) return RF_ERR_UNAUTHENTICATED;
    return err ? err : key_verify(&a, secret, out);
}

bool rf_key_authenticate_cached(rf *db, const char *text, struct rf_key *out, rf_err *err) {
    if (!db || !out || !err) { /* misuse: answered without the store */
        if (err) *err = RF_ERR_INVALID;
        return true;
    }
    char id[RF_UUID_TEXT_BYTES];
    const char *secret = NULL;
    struct auth_args a = {.id = id};
    uint64_t epoch = 0;
    if (!key_text_parse(text, id, &secret)) *err = RF_ERR_UNAUTHENTICATED;
    else if (cache_get(db, id, &a, &epoch)) *err = key_verify(&a, secret, out);
    else return false;
    return true;
}

bool rf_key_seen(rf *db, const char *text) {
    char id[RF_UUID_TEXT_BYTES];
    const char *secret = NULL;
    if (!db || !key_text_parse(text, id, &secret)) return false;
    struct key_cache *c = db->key_cache;
    struct auth_args a = {.id = id};
    pthread_mutex_lock(&c->mu);
    struct key_cache_entry *e = cache_slot(c, id);
    bool found = strcmp(e->id, id) == 0;
    if (found) {
        a.key = e->key;
        memcpy(a.hash, e->hash, sizeof a.hash);
    }
    pthread_mutex_unlock(&c->mu);
    struct rf_key k;
    return found && key_verify(&a, secret, &k) == RF_OK;
}

/* ---- revoke, count, list ---------------------------------------------- */

/* Guarded UPDATE: only an active key turns revoked, so two revokes at once
 * see one success and one key_not_found, never a read-modify-write. */
static const char SQL_KEY_REVOKE[] =
    "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
    " RETURNING " KEY_COLS;

rf_err op_key_revoke(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_key_ref *r = req;
    store_val p[2] = {SV_S(r->id), SV_I(tx->now_ms)};
    rf_err err = store_query_one(tx, SQL_KEY_REVOKE, p, 2, read_key, res);
    /* active -> revoked now, on the row named */
    RF_ASSERT(err || (((const struct rf_key *)res)->revoked_at_ms == tx->now_ms &&
                      strcmp(((const struct rf_key *)res)->id, r->id) == 0));
    return err == RF_ERR_NOT_FOUND ? RF_ERR_KEY_NOT_FOUND : err;
}

rf_err rf_key_revoke(rf *db, const char *id) {
    struct rf_key_ref req = {id};
    struct rf_key revoked;
    return rf_op_run(db, RF_OP_KEY_REVOKE, &req, &revoked, NULL, NULL);
}

static const char SQL_KEY_GET[] =
    "SELECT " KEY_COLS " FROM api_keys WHERE id = $1";

rf_err op_key_get(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_key_ref *r = req;
    store_val p[1] = {SV_S(r->id)};
    rf_err err = store_query_one(tx, SQL_KEY_GET, p, 1, read_key, res);
    RF_ASSERT(err || strcmp(((const struct rf_key *)res)->id, r->id) == 0);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_KEY_NOT_FOUND : err;
}

rf_err rf_key_get(rf *db, const char *id, struct rf_key *out) {
    struct rf_key_ref req = {id};
    return rf_op_run(db, RF_OP_KEY_GET, &req, out, NULL, NULL);
}

static const char SQL_KEY_COUNT[] = "SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL";

static rf_err op_key_count(struct rf_tx *tx, void *ctx) {
    return store_query_one(tx, SQL_KEY_COUNT, NULL, 0, core_int_row, ctx);
}

rf_err rf_key_count_active(rf *db, int64_t *n_out) {
    if (!db || !n_out) return RF_ERR_INVALID;
    *n_out = 0;
    return core_read(db, "key_count", op_key_count, n_out);
}

/* Commit order (core/listing.h): list_pos is column 7. */
static const char SQL_KEY_LIST[] =
    "SELECT " KEY_COLS ", list_pos FROM api_keys WHERE "
    LIST_AFTER("id") LIST_ORDER("id") " LIMIT $4";
static const char SQL_KEY_POS[] = "SELECT list_pos FROM api_keys WHERE id = $1";

rf_err op_key_list(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_list_req *r = req;
    struct rf_key_page *out = res;
    RF_ASSERT(r->status == 0 && !r->scope); /* every key, one list */
    struct list_page lp = {.pos_col = 7, .key_col = 0, .pos_sql = SQL_KEY_POS,
                           .read_row = read_key, LIST_INTO(out, core_limit((int)r->limit))};
    rf_err err = list_cursor_parse(r->after, &lp.after);
    if (err) return err;
    store_val p[4] = {SV_I(lp.after.pos), SV_S(lp.after.key), LIST_HORIZON_SLOT,
                      SV_I(lp.limit)};
    err = list_page_run(tx, SQL_KEY_LIST, p, 4, &lp);
    out->n = lp.n;
    return err;
}

void rf_key_page_clear(struct rf_key_page *p) {
    if (!p) return;
    page_clear(p->items, p->n, sizeof *p->items, NULL);
    memset(p, 0, sizeof *p);
}

rf_err rf_key_list(rf *db, const char *after, int limit, struct rf_key_page *out) {
    struct rf_list_req req = {NULL, 0, after, limit};
    return rf_op_run(db, RF_OP_KEY_LIST, &req, out, NULL, NULL);
}
