/*
 * webhook_secrets.c - each provider's webhook signing secrets: set, rotate
 * (the old primary stays accepted for an overlap, so deliveries signed
 * before the provider switched still verify), list (never the values), and
 * opening them for the signature check of a delivery.
 *
 * Verification computes an HMAC with the secret itself, so a hash cannot
 * serve: the secrets are sealed at rest with libsodium secretbox. The key is
 * the process's when one is given (RACEFREE_SECRETS_KEY, or the file
 * RACEFREE_SECRETS_KEY_FILE names): it lives outside the store, so a copy of
 * the store (a backup, a dump, a read replica) does not reveal them, while
 * someone who holds both the store and the key does. Without one, the
 * store's own key seals them (a random key in secrets_store_key, made by the
 * first secret set: INSERT .. ON CONFLICT DO NOTHING, so racing first sets
 * agree on one), so webhooks work with no set-up on every node of a store,
 * protected only as well as the store itself (README). One row per provider
 * holds both secrets, so a set or a rotate is one guarded statement (no
 * read-modify-write across two rows).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"
#include "core/core.h"
#include "core/listing.h"
#include "core/ops.h"
#include "core/webhook_secrets.h"

#define KEY_BYTES crypto_secretbox_KEYBYTES
#define NONCE_BYTES crypto_secretbox_NONCEBYTES
#define SEALED_HEX_BYTES (2 * (NONCE_BYTES + crypto_secretbox_MACBYTES + \
                               RF_WEBHOOK_SECRET_CHARS_MAX * 4) + 1)

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static uint8_t process_key[KEY_BYTES];
static bool process_key_given;   /* RACEFREE_SECRETS_KEY or _FILE was set */
static bool process_key_loaded;  /* ... and held a key */

/* 64 hex digits (surrounding whitespace allowed) into key. */
static bool key_from_hex(const char *hex, uint8_t key[KEY_BYTES]) {
    size_t len = 0;
    const char *end = NULL;
    if (sodium_hex2bin(key, KEY_BYTES, hex, strlen(hex), " \t\r\n", &len, &end) != 0)
        return false;
    return len == KEY_BYTES;
}

static void key_load(void) {
    const char *hex = getenv("RACEFREE_SECRETS_KEY");
    if (hex && *hex) {
        process_key_given = true;
        process_key_loaded = key_from_hex(hex, process_key);
        return;
    }
    const char *path = getenv("RACEFREE_SECRETS_KEY_FILE");
    if (!path || !*path) return;
    process_key_given = true;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char buf[2 * KEY_BYTES + 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    process_key_loaded = key_from_hex(buf, process_key);
    sodium_memzero(buf, sizeof buf);
}

static const char SQL_STORE_KEY_MAKE[] =
    "INSERT INTO secrets_store_key (id, key_hex) VALUES (1, $1) ON CONFLICT (id) DO NOTHING";
static const char SQL_STORE_KEY[] = "SELECT key_hex FROM secrets_store_key WHERE id = 1";

static void read_key_hex(struct rf_tx *tx, struct store_rows *r, void *out) {
    if (!key_from_hex(store_text(tx, r, 0), out)) memset(out, 0, KEY_BYTES);
}

/* The sealing key into key: the process's when given (a given key that does
 * not load is unavailable, never silently replaced), else the store's, made
 * first when make (a set or rotate; a delivery only reads it). */
static rf_err key_get(struct rf_tx *tx, bool make, uint8_t key[KEY_BYTES]) {
    pthread_once(&key_once, key_load);
    if (process_key_given) {
        if (!process_key_loaded) return RF_ERR_SECRETS_KEY_UNAVAILABLE;
        memcpy(key, process_key, KEY_BYTES);
        return RF_OK;
    }
    if (make) {
        uint8_t fresh[KEY_BYTES];
        char hex[2 * KEY_BYTES + 1];
        randombytes_buf(fresh, sizeof fresh);
        sodium_bin2hex(hex, sizeof hex, fresh, sizeof fresh);
        store_val p[1] = {SV_S(hex)};
        rf_err err = store_exec(tx, SQL_STORE_KEY_MAKE, p, 1, NULL);
        sodium_memzero(fresh, sizeof fresh);
        sodium_memzero(hex, sizeof hex);
        if (err) return err;
    }
    rf_err err = store_query_one(tx, SQL_STORE_KEY, NULL, 0, read_key_hex, key);
    if (err == RF_ERR_NOT_FOUND) return RF_ERR_WEBHOOK_PROVIDER_UNKNOWN; /* nothing sealed yet */
    if (!err && sodium_is_zero(key, KEY_BYTES)) err = RF_ERR_SECRETS_KEY_UNAVAILABLE;
    return err;
}

/* hex(nonce || secretbox(secret)) into out[SEALED_HEX_BYTES]. */
static rf_err seal(struct rf_tx *tx, const char *secret, char *out) {
    uint8_t key[KEY_BYTES];
    rf_err err = key_get(tx, true, key);
    if (err) return err;
    size_t len = strlen(secret);
    RF_ASSERT(len <= RF_WEBHOOK_SECRET_CHARS_MAX * 4);
    uint8_t box[NONCE_BYTES + crypto_secretbox_MACBYTES + RF_WEBHOOK_SECRET_CHARS_MAX * 4];
    randombytes_buf(box, NONCE_BYTES);
    crypto_secretbox_easy(box + NONCE_BYTES, (const uint8_t *)secret, len, box, key);
    sodium_bin2hex(out, SEALED_HEX_BYTES, box, NONCE_BYTES + crypto_secretbox_MACBYTES + len);
    sodium_memzero(key, sizeof key);
    return RF_OK;
}

/* Opens one sealed secret into out[cap] (NUL-terminated); false when it
 * does not open under this key (another key, a damaged row). */
static bool unseal(const char *hex, const uint8_t key[KEY_BYTES], char *out, size_t cap) {
    uint8_t box[NONCE_BYTES + crypto_secretbox_MACBYTES + RF_WEBHOOK_SECRET_CHARS_MAX * 4];
    size_t len = 0;
    if (sodium_hex2bin(box, sizeof box, hex, strlen(hex), NULL, &len, NULL) != 0 ||
        len < NONCE_BYTES + crypto_secretbox_MACBYTES)
        return false;
    size_t plain = len - NONCE_BYTES - crypto_secretbox_MACBYTES;
    if (plain + 1 > cap) return false;
    if (crypto_secretbox_open_easy((uint8_t *)out, box + NONCE_BYTES, len - NONCE_BYTES, box,
                                   key) != 0)
        return false;
    out[plain] = '\0';
    return true;
}

#define SECRET_COLS "provider, primary_set_at, previous_expires_at, version"
static const char SQL_SET[] =
    "INSERT INTO webhook_secrets (provider, primary_sealed, primary_set_at, previous_sealed,"
    " previous_expires_at, version) VALUES ($1, $2, $3, NULL, 0, 1)"
    " ON CONFLICT (provider) DO UPDATE SET primary_sealed = excluded.primary_sealed,"
    " primary_set_at = excluded.primary_set_at, previous_sealed = NULL,"
    " previous_expires_at = 0, version = webhook_secrets.version + 1"
    " RETURNING " SECRET_COLS;
/* The old primary becomes the previous secret in the same statement: two
 * rotations racing each other serialize on the row, and each keeps the
 * primary it replaced. */
static const char SQL_ROTATE[] =
    "UPDATE webhook_secrets SET previous_sealed = primary_sealed, previous_expires_at = $4,"
    " primary_sealed = $2, primary_set_at = $3, version = version + 1"
    " WHERE provider = $1 RETURNING " SECRET_COLS;
static const char SQL_OPEN[] =
    "SELECT primary_sealed, COALESCE(previous_sealed, ''), previous_expires_at"
    " FROM webhook_secrets WHERE provider = $1";
static const char SQL_LIST[] =
    "SELECT " SECRET_COLS ", list_pos FROM webhook_secrets WHERE " LIST_AFTER("provider")
    LIST_ORDER("provider") " LIMIT $4";
static const char SQL_POS[] = "SELECT list_pos FROM webhook_secrets WHERE provider = $1";

static void read_secret(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_webhook_secret *s = out;
    memset(s, 0, sizeof *s);
    rf_strcpy(s->provider, sizeof s->provider, store_text(tx, r, 0));
    s->primary_set_at_ms = store_int(tx, r, 1);
    s->previous_expires_at_ms = store_int(tx, r, 2);
    s->version = store_int(tx, r, 3);
}

rf_err op_webhook_secret_set(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_webhook_secret_req *r = req;
    char sealed[SEALED_HEX_BYTES];
    rf_err err = seal(tx, r->secret, sealed);
    if (err) return err;
    store_val p[3] = {SV_S(r->provider), SV_S(sealed), SV_I(tx->now_ms)};
    err = store_query_one(tx, SQL_SET, p, 3, read_secret, res);
    RF_ASSERT(err != RF_ERR_NOT_FOUND); /* an upsert always returns its row */
    return err;
}

rf_err op_webhook_secret_rotate(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_webhook_secret_req *r = req;
    char sealed[SEALED_HEX_BYTES];
    rf_err err = seal(tx, r->secret, sealed);
    if (err) return err;
    int64_t overlap_s = r->overlap_s > 0 ? r->overlap_s : RF_WEBHOOK_OVERLAP_S_DEFAULT;
    store_val p[4] = {SV_S(r->provider), SV_S(sealed), SV_I(tx->now_ms),
                      SV_I(tx->now_ms + overlap_s * 1000)};
    err = store_query_one(tx, SQL_ROTATE, p, 4, read_secret, res);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_WEBHOOK_PROVIDER_UNKNOWN : err;
}

rf_err op_webhook_secret_list(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_list_req *r = req;
    struct rf_webhook_secret_page *out = res;
    struct list_page lp = {.pos_col = 4, .key_col = 0, .pos_sql = SQL_POS,
                           .read_row = read_secret, LIST_INTO(out, core_limit((int)r->limit))};
    rf_err err = list_cursor_parse(r->after, &lp.after);
    if (err) return err;
    store_val p[4] = {SV_I(lp.after.pos), SV_S(lp.after.key), LIST_HORIZON_SLOT,
                      SV_I(lp.limit)};
    err = list_page_run(tx, SQL_LIST, p, 4, &lp);
    out->n = lp.n;
    return err;
}

struct opened {
    struct webhook_secrets *out;
    int64_t now_ms;
    const uint8_t *key;
    bool ok;
};

static void read_sealed(struct rf_tx *tx, struct store_rows *r, void *ctx) {
    struct opened *o = ctx;
    struct webhook_secrets *s = o->out;
    s->n = 0;
    o->ok = unseal(store_text(tx, r, 0), o->key, s->value[0], sizeof s->value[0]);
    if (o->ok) s->n = 1;
    const char *prev = store_text(tx, r, 1);
    if (o->ok && prev && prev[0] && store_int(tx, r, 2) > o->now_ms)
        o->ok = unseal(prev, o->key, s->value[s->n++], sizeof s->value[0]);
}

rf_err webhook_secrets_open(struct rf_tx *tx, const char *provider, struct webhook_secrets *out) {
    memset(out, 0, sizeof *out);
    uint8_t key[KEY_BYTES];
    rf_err err = key_get(tx, false, key);
    if (err) return err;
    struct opened o = {out, tx->now_ms, key, false};
    store_val p[1] = {SV_S(provider)};
    err = store_query_one(tx, SQL_OPEN, p, 1, read_sealed, &o);
    sodium_memzero(key, sizeof key);
    if (err == RF_ERR_NOT_FOUND) return RF_ERR_WEBHOOK_PROVIDER_UNKNOWN;
    if (!err && !o.ok) err = RF_ERR_SECRETS_KEY_UNAVAILABLE; /* sealed under another key */
    for (int i = 0; i < out->n; i++) {
        out->keys[i].secret = out->value[i];
        out->keys[i].len = strlen(out->value[i]);
    }
    if (err) webhook_secrets_wipe(out);
    return err;
}

void webhook_secrets_wipe(struct webhook_secrets *s) { sodium_memzero(s, sizeof *s); }

/* ---- the public functions: thin wrappers over rf_op_run ------------------- */

rf_err rf_webhook_secret_set(rf *db, const struct rf_webhook_secret_req *req,
                             struct rf_webhook_secret *out) {
    return rf_op_run(db, RF_OP_WEBHOOK_SECRET_SET, req, out, NULL, NULL);
}

rf_err rf_webhook_secret_rotate(rf *db, const struct rf_webhook_secret_req *req,
                                struct rf_webhook_secret *out) {
    return rf_op_run(db, RF_OP_WEBHOOK_SECRET_ROTATE, req, out, NULL, NULL);
}

void rf_webhook_secret_page_clear(struct rf_webhook_secret_page *p) {
    if (!p) return;
    page_clear(p->items, p->n, sizeof *p->items, NULL);
    memset(p, 0, sizeof *p);
}

rf_err rf_webhook_secret_list(rf *db, const char *after, int limit,
                              struct rf_webhook_secret_page *out) {
    struct rf_list_req req = {.after = after, .limit = limit > 0 ? limit : 0};
    return rf_op_run(db, RF_OP_WEBHOOK_SECRET_LIST, &req, out, NULL, NULL);
}
