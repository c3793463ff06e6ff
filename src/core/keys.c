/*
 * keys.c - API keys: "rfk_<id>_<secret>", 256 random bits of secret, stored
 * only as a BLAKE2b hash and compared in constant time. The id in the key
 * text finds the row; the hash comparison decides. A slow password hash is
 * not needed: the secret is random, not chosen by a person.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "core/core.h"
#include "core/listing.h"

#define KEY_PREFIX "rfk_"
#define SECRET_BYTES 32
#define SECRET_HEX_BYTES (2 * SECRET_BYTES + 1)
#define HASH_BYTES 32
#define HASH_HEX_BYTES (2 * HASH_BYTES + 1)

static const char *const role_names[] = {"admin", "service", "worker", "readonly"};

const char *rf_role_name(enum rf_role role) {
    switch (role) {
    case RF_ROLE_ADMIN: return "admin";
    case RF_ROLE_SERVICE: return "service";
    case RF_ROLE_WORKER: return "worker";
    case RF_ROLE_READONLY: return "readonly";
    }
    return "unknown";
}

bool rf_role_parse(const char *name, enum rf_role *out) {
    for (int i = 0; i < 4; i++) {
        if (name && strcmp(name, role_names[i]) == 0) {
            *out = (enum rf_role)(1 << i);
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
}

/* ---- create ------------------------------------------------------------ */

static const char SQL_KEY_INSERT[] =
    "INSERT INTO api_keys (id, name, role, secret_hash, created_at, revoked_at)"
    " VALUES ($1, $2, $3, $4, $5, NULL)";

struct create_args {
    enum rf_role role;
    const char *name;
    struct rf_key *out;
    char *secret_out;
};

static rf_err insert_key(struct rf_tx *tx, struct create_args *a) {
    struct rf_key *k = a->out;
    memset(k, 0, sizeof *k);
    rf_uuid7(tx->now_ms, k->id);
    rf_strcpy(k->name, sizeof k->name, a->name && *a->name ? a->name : rf_role_name(a->role));
    k->role = a->role;
    k->created_at_ms = tx->now_ms;
    uint8_t raw[SECRET_BYTES];
    char secret_hex[SECRET_HEX_BYTES], hash_hex[HASH_HEX_BYTES];
    randombytes_buf(raw, sizeof raw);
    rf_hex(raw, sizeof raw, secret_hex);
    sodium_memzero(raw, sizeof raw);
    secret_hash(secret_hex, hash_hex);
    RF_ASSERT(strlen(k->id) == RF_UUID_TEXT_BYTES - 1);
    snprintf(a->secret_out, RF_KEY_SECRET_BYTES, KEY_PREFIX "%.36s_%.64s", k->id, secret_hex);
    sodium_memzero(secret_hex, sizeof secret_hex);
    store_val p[5] = {SV_S(k->id), SV_S(k->name), SV_S(rf_role_name(a->role)), SV_S(hash_hex),
                      SV_I(tx->now_ms)};
    return store_exec(tx, SQL_KEY_INSERT, p, 5, NULL);
}

static rf_err op_key_create(struct rf_tx *tx, void *ctx) { return insert_key(tx, ctx); }

rf_err rf_key_create(rf *db, enum rf_role role, const char *name, struct rf_key *out,
                     char secret_out[RF_KEY_SECRET_BYTES], struct rf_idem *idem) {
    RF_ASSERT(db && out && secret_out);
    const char *role_name = rf_role_name(role);
    if (strcmp(role_name, "unknown") == 0) return RF_ERR_INVALID;
    if (name && *name && !rf_id_valid(name)) return RF_ERR_INVALID;
    struct create_args a = {role, name, out, secret_out};
    secret_out[0] = '\0';
    rf_err err = core_write(db, "key_create", op_key_create, &a, out, idem);
    if (err) sodium_memzero(secret_out, RF_KEY_SECRET_BYTES);
    return err;
}

/* ---- bootstrap: the first admin key, exactly once per store ------------ */

/* Claims the single bootstrap row only while the store has no key at all, so
 * keys made with the CLI first, or a second process starting, make none. */
static const char SQL_BOOTSTRAP_CLAIM[] =
    "INSERT INTO bootstrap (id, key_id, created_at) SELECT 1, '', $1"
    " WHERE NOT EXISTS (SELECT 1 FROM api_keys) ON CONFLICT (id) DO NOTHING";
static const char SQL_BOOTSTRAP_SET[] = "UPDATE bootstrap SET key_id = $1 WHERE id = 1";

struct bootstrap_args {
    struct create_args create;
    bool created;
};

static rf_err op_bootstrap(struct rf_tx *tx, void *ctx) {
    struct bootstrap_args *a = ctx;
    int64_t changes = 0;
    store_val p[1] = {SV_I(tx->now_ms)};
    rf_err err = store_exec(tx, SQL_BOOTSTRAP_CLAIM, p, 1, &changes);
    if (err || changes == 0) return err;
    err = insert_key(tx, &a->create);
    if (err) return err;
    store_val q[1] = {SV_S(a->create.out->id)};
    err = store_exec(tx, SQL_BOOTSTRAP_SET, q, 1, NULL);
    a->created = err == RF_OK;
    return err;
}

rf_err rf_key_bootstrap(rf *db, struct rf_key *out, char secret_out[RF_KEY_SECRET_BYTES],
                        bool *created) {
    RF_ASSERT(db && out && secret_out && created);
    struct rf_key tmp;
    char secret[RF_KEY_SECRET_BYTES];
    struct bootstrap_args a = {{RF_ROLE_ADMIN, "bootstrap", &tmp, secret}, false};
    *created = false;
    rf_err err = core_write(db, "key_bootstrap", op_bootstrap, &a, NULL, NULL);
    if (!err && a.created) {
        *out = tmp;
        memcpy(secret_out, secret, RF_KEY_SECRET_BYTES);
        *created = true;
    }
    sodium_memzero(secret, sizeof secret);
    return err;
}

/* ---- authenticate ------------------------------------------------------ */

static const char SQL_KEY_AUTH[] =
    "SELECT id, name, role, created_at, revoked_at, secret_hash FROM api_keys WHERE id = $1";

struct auth_args {
    const char *id;
    struct rf_key key;
    char hash[HASH_HEX_BYTES];
};

static void read_auth(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct auth_args *a = out;
    read_key(tx, r, &a->key);
    snprintf(a->hash, sizeof a->hash, "%s", store_text(tx, r, 5));
}

static rf_err op_key_auth(struct rf_tx *tx, void *ctx) {
    struct auth_args *a = ctx;
    store_val p[1] = {SV_S(a->id)};
    return store_query_one(tx, SQL_KEY_AUTH, p, 1, read_auth, a);
}

/* Splits "rfk_<uuid>_<64 hex>" into id and secret; false if malformed. */
static bool parse_key(const char *text, char id[RF_UUID_TEXT_BYTES], const char **secret) {
    size_t pre = strlen(KEY_PREFIX);
    if (!text || strncmp(text, KEY_PREFIX, pre) != 0) return false;
    if (strlen(text) != pre + RF_UUID_TEXT_BYTES - 1 + 1 + SECRET_HEX_BYTES - 1) return false;
    memcpy(id, text + pre, RF_UUID_TEXT_BYTES - 1);
    id[RF_UUID_TEXT_BYTES - 1] = '\0';
    if (text[pre + RF_UUID_TEXT_BYTES - 1] != '_' || !rf_id_valid(id)) return false;
    *secret = text + pre + RF_UUID_TEXT_BYTES;
    return true;
}

rf_err rf_key_authenticate(rf *db, const char *text, struct rf_key *out) {
    RF_ASSERT(db && out);
    char id[RF_UUID_TEXT_BYTES];
    const char *secret = NULL;
    if (!parse_key(text, id, &secret)) return RF_ERR_UNAUTHENTICATED;
    struct auth_args a = {.id = id};
    rf_err err = core_read(db, "key_authenticate", op_key_auth, &a);
    if (err == RF_ERR_NOT_FOUND) return RF_ERR_UNAUTHENTICATED;
    if (err) return err;
    char want[HASH_HEX_BYTES];
    secret_hash(secret, want);
    bool match = strlen(a.hash) == HASH_HEX_BYTES - 1 &&
                 sodium_memcmp(want, a.hash, HASH_HEX_BYTES - 1) == 0;
    if (!match || a.key.revoked_at_ms != 0) return RF_ERR_UNAUTHENTICATED;
    *out = a.key;
    return RF_OK;
}

/* ---- revoke, count, list ---------------------------------------------- */

static const char SQL_KEY_REVOKE[] =
    "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";

static rf_err op_key_revoke(struct rf_tx *tx, void *ctx) {
    int64_t changes = 0;
    store_val p[2] = {SV_S((const char *)ctx), SV_I(tx->now_ms)};
    rf_err err = store_exec(tx, SQL_KEY_REVOKE, p, 2, &changes);
    if (err) return err;
    return changes == 1 ? RF_OK : RF_ERR_KEY_NOT_FOUND;
}

rf_err rf_key_revoke(rf *db, const char *id) {
    RF_ASSERT(db);
    if (!rf_id_valid(id)) return RF_ERR_INVALID;
    return core_write(db, "key_revoke", op_key_revoke, (void *)id, NULL, NULL);
}

static const char SQL_KEY_COUNT[] = "SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL";

static void read_count(struct rf_tx *tx, struct store_rows *r, void *out) {
    *(int64_t *)out = store_int(tx, r, 0);
}

static rf_err op_key_count(struct rf_tx *tx, void *ctx) {
    return store_query_one(tx, SQL_KEY_COUNT, NULL, 0, read_count, ctx);
}

rf_err rf_key_count_active(rf *db, int64_t *n_out) {
    *n_out = 0;
    return core_read(db, "key_count", op_key_count, n_out);
}

/* Commit order (core/listing.h): list_pos is column 5. */
static const char SQL_KEY_LIST[] =
    "SELECT id, name, role, created_at, revoked_at, list_pos FROM api_keys WHERE "
    LIST_AFTER("id") LIST_ORDER("id") " LIMIT $4";
static const char SQL_KEY_POS[] = "SELECT list_pos FROM api_keys WHERE id = $1";

static rf_err op_key_list(struct rf_tx *tx, void *ctx) {
    struct list_page *page = ctx;
    store_val p[4] = {SV_I(page->after.pos), SV_S(page->after.key), LIST_HORIZON_SLOT,
                      SV_I(page->limit)};
    return list_page_run(tx, SQL_KEY_LIST, p, 4, page);
}

void rf_key_page_clear(struct rf_key_page *p) {
    if (!p) return;
    page_clear(p->items, p->n, sizeof *p->items, NULL);
    memset(p, 0, sizeof *p);
}

rf_err rf_key_list(rf *db, const char *after, int limit, struct rf_key_page *out) {
    RF_ASSERT(db && out);
    memset(out, 0, sizeof *out);
    struct list_page page = {.limit = core_limit(limit), .pos_col = 5, .key_col = 0,
                             .pos_sql = SQL_KEY_POS, .read_row = read_key, LIST_OUT(out)};
    rf_err err = list_cursor_parse(after, &page.after);
    if (!err) err = list_read(db, "key_list", op_key_list, &page, &page);
    out->items = page.items;
    out->n = page.n;
    return err;
}
