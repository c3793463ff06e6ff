/*
 * h_keys.c - how an API key renders (the only place one becomes JSON):
 * /v1/keys (admin only) are operation routes run by h_op.c. A key has no
 * version, so no ETag. The create view adds the secret ("key"), which is in
 * that 201 body (and its Idempotency-Key replay, sealed at rest) and nowhere
 * else, ever; a list item or a revoke never carries it.
 */
#include <stddef.h>

#include "base/ids.h"
#include "http/respond.h"
#include "http/view.h"

/* The key's own limit, or null when its role's applies. */
static json_t *rate_limit_json(const struct rf_rate_limit *l) {
    if (!l->quota) return json_null();
    return json_pack("{s:I, s:I}", "quota", (json_int_t)l->quota, "window_ms",
                     (json_int_t)l->window_ms);
}

static json_t *key_json(const void *entity) {
    const struct rf_key *k = entity;
    return json_pack("{s:s, s:o, s:s, s:o, s:o, s:o}", "id", k->id, "name",
                     rf_json_str(k->name), "role", rf_role_name(k->role), "created_at",
                     rf_json_time(k->created_at_ms), "revoked_at",
                     rf_json_time(k->revoked_at_ms), "rate_limit",
                     rate_limit_json(&k->rate_limit));
}

static json_t *key_created_json(const void *entity) {
    const struct rf_key_created *c = entity;
    json_t *j = key_json(&c->key);
    if (j && json_object_set_new(j, "key", json_string(c->secret)) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

const struct rf_view rf_view_key = {
    .json = key_json, .entity_size = sizeof(struct rf_key), .no_version = true};

_Static_assert(offsetof(struct rf_key_created, key) == 0, "a new key's result starts with it");
const struct rf_view rf_view_key_created = {
    .json = key_created_json, .entity_size = sizeof(struct rf_key_created), .no_version = true};

/* GET /v1/keys: no ?status=; the cursor is a key id. */
const struct rf_list_query rf_list_keys = {.cursor_valid = rf_id_valid};
