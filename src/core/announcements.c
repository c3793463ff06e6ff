/*
 * announcements.c - announcements through the outbox: create (the row and
 * its fan-out job in one transaction), read (the state derived from the
 * recipients), retry-failed, and the fan-out's chunk transaction.
 *
 * The races and failures an announcement must survive, and how:
 *   - "insert every notification, then mark the announcement sent": a crash
 *     in between leaves it sent with users missing, or unsent with users
 *     notified. Here nothing is marked sent: the state is derived from one
 *     recipient row per (announcement, user), each pending, delivered or
 *     failed, and from whether the audience is exhausted;
 *   - a chunk re-run after a crash, a lost answer or a rescued job (a second
 *     worker running the same chunk): recipients are INSERT .. ON CONFLICT DO
 *     NOTHING on their PRIMARY KEY, notifications are created with their
 *     (announcement_id, user_id) identity, and a recipient moves out of
 *     pending with an UPDATE guarded by status = 'pending', so a repeated
 *     chunk makes no second row and no second notification;
 *   - two chunks of one announcement at once (a rescued job still running
 *     elsewhere): the chunk reads the announcement row FOR UPDATE
 *     (PostgreSQL; SQLite has one writer), so they run one after the other
 *     and the second starts from the first's cursor.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"
#include "core/announce.h"
#include "core/core.h"
#include "core/flows.h"
#include "core/ops.h"

/* THE names of enum rf_announcement_state, in its order. */
const char *const announcement_state_names[] = {"scheduled", "sending", "sent",
                                                "partially_failed", NULL};
_Static_assert(RF_ANNOUNCEMENT_SCHEDULED == 0 && RF_ANNOUNCEMENT_PARTIALLY_FAILED == 3,
               "announcement_state_names follows enum rf_announcement_state");

const char *rf_announcement_state_name(enum rf_announcement_state state) {
    return (unsigned)state <= RF_ANNOUNCEMENT_PARTIALLY_FAILED ? announcement_state_names[state]
                                                                : NULL;
}

void rf_announcement_clear(struct rf_announcement *a) {
    if (!a) return;
    free(a->title);
    free(a->body);
    memset(a, 0, sizeof *a);
}

/* ---- the audience ------------------------------------------------------------- */

enum audience_kind { AUD_ALL, AUD_USER_IDS, AUD_ENT_KEY };
static const char *const audience_kinds[] = {"all", "user_ids", "entitlement_key"};

struct audience {
    enum audience_kind kind;
    char key[RF_ID_BYTES];  /* AUD_ENT_KEY */
    char *ids_json;         /* AUD_USER_IDS: the distinct ids, sorted (malloc'd) */
    int n_ids;
};

static int str_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static rf_err audience_bad(struct rf_fault *fault, const char *why) {
    rf_fault_set(fault, RF_ERR_INVALID_FIELD, "audience", "field 'audience' %s", why);
    return RF_ERR_INVALID;
}

/* user_ids: 1..RF_ANNOUNCE_USER_IDS_MAX ids, sorted and without repeats
 * into out->ids_json (byte order: the fan-out's cursor order). */
static rf_err user_ids_parse(json_t *arr, struct audience *out, struct rf_fault *fault) {
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    if (n == 0 || n > RF_ANNOUNCE_USER_IDS_MAX)
        return audience_bad(fault, "user_ids must be an array of 1..5000 user ids");
    const char **ids = malloc(n * sizeof *ids);
    if (!ids) return RF_ERR_NOMEM;
    rf_err err = RF_OK;
    for (size_t i = 0; i < n && !err; i++) {
        ids[i] = json_string_value(json_array_get(arr, i));
        if (!ids[i] || strlen(ids[i]) > RF_ID_CHARS_MAX || !rf_id_valid(ids[i]))
            err = audience_bad(fault, "user_ids must hold user ids only");
    }
    json_t *sorted = err ? NULL : json_array();
    if (!err) qsort(ids, n, sizeof *ids, str_cmp);
    for (size_t i = 0; sorted && i < n; i++)
        if (i == 0 || strcmp(ids[i], ids[i - 1]) != 0) json_array_append_new(sorted, json_string(ids[i]));
    free(ids);
    if (err) return err;
    out->n_ids = (int)json_array_size(sorted);
    out->ids_json = json_dumps(sorted, JSON_COMPACT);
    json_decref(sorted);
    return out->ids_json ? RF_OK : RF_ERR_NOMEM;
}

/* One of {"all": true}, {"user_ids": [...]}, {"entitlement_key": K}. */
static rf_err audience_parse(const char *text, struct audience *out, struct rf_fault *fault) {
    memset(out, 0, sizeof *out);
    json_t *o = json_loads(text, 0, NULL);
    if (!json_is_object(o) || json_object_size(o) != 1) {
        json_decref(o);
        return audience_bad(fault, "must have exactly one of all, user_ids, entitlement_key");
    }
    rf_err err = RF_OK;
    json_t *v;
    if ((v = json_object_get(o, "all"))) {
        out->kind = AUD_ALL;
        if (!json_is_true(v)) err = audience_bad(fault, "all must be true");
    } else if ((v = json_object_get(o, "user_ids"))) {
        out->kind = AUD_USER_IDS;
        err = user_ids_parse(v, out, fault);
    } else if ((v = json_object_get(o, "entitlement_key"))) {
        out->kind = AUD_ENT_KEY;
        const char *k = json_string_value(v);
        if (!k || strlen(k) > RF_ID_CHARS_MAX || !rf_id_valid(k))
            err = audience_bad(fault, "entitlement_key must be an entitlement key");
        else rf_strcpy(out->key, sizeof out->key, k);
    } else {
        err = audience_bad(fault, "must have exactly one of all, user_ids, entitlement_key");
    }
    json_decref(o);
    return err;
}

rf_err announcement_audience_check(const void *req, struct rf_fault *fault) {
    struct audience au;
    rf_err err = audience_parse(((const struct rf_announcement_req *)req)->audience_json, &au, fault);
    free(au.ids_json);
    return err;
}

/* ---- reads -------------------------------------------------------------------- */

static const char SQL_GET[] =
    "SELECT id, title, body, audience_kind, CASE WHEN audience_kind = 'entitlement_key'"
    " THEN audience ELSE '' END, audience_size, send_at, fanout_done_at, retries, job_id,"
    " created_at, updated_at, version FROM announcements WHERE id = $1";

static void read_row(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_announcement *a = out;
    rf_announcement_clear(a);
    rf_strcpy(a->id, sizeof a->id, store_text(tx, r, 0));
    a->title = core_dup_col(tx, r, 1);
    a->body = core_dup_col(tx, r, 2);
    rf_strcpy(a->audience, sizeof a->audience, store_text(tx, r, 3));
    rf_strcpy(a->entitlement_key, sizeof a->entitlement_key, store_text(tx, r, 4));
    a->audience_size = store_int(tx, r, 5);
    a->send_at_ms = store_int(tx, r, 6);
    a->fanout_done = !store_null(tx, r, 7);
    a->retries = store_int(tx, r, 8);
    rf_strcpy(a->job_id, sizeof a->job_id, store_text(tx, r, 9));
    a->created_at_ms = store_int(tx, r, 10);
    a->updated_at_ms = store_int(tx, r, 11);
    a->version = store_int(tx, r, 12);
}

static const char SQL_COUNTS[] =
    "SELECT status, COUNT(*) FROM announcement_recipients WHERE announcement_id = $1"
    " GROUP BY status";

static void count_row(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_announcement *a = out;
    const char *st = store_text(tx, r, 0);
    int64_t n = store_int(tx, r, 1);
    if (strcmp(st, "pending") == 0) a->pending = n;
    else if (strcmp(st, "delivered") == 0) a->delivered = n;
    else a->failed = n;
    a->recipients += n;
}

/* Never sent before every recipient is delivered: sent needs the audience
 * exhausted (every recipient row made) and none pending or failed. */
static enum rf_announcement_state state_of(const struct rf_announcement *a) {
    if (!a->fanout_done && a->recipients == 0) return RF_ANNOUNCEMENT_SCHEDULED;
    if (!a->fanout_done || a->pending > 0) return RF_ANNOUNCEMENT_SENDING;
    return a->failed > 0 ? RF_ANNOUNCEMENT_PARTIALLY_FAILED : RF_ANNOUNCEMENT_SENT;
}

/* The row and its counts, read in one snapshot (the caller's transaction). */
static rf_err announcement_read(struct rf_tx *tx, const char *id, struct rf_announcement *out) {
    store_val p[1] = {SV_S(id)};
    rf_err err = store_query_one(tx, SQL_GET, p, 1, read_row, out);
    if (err) return err == RF_ERR_NOT_FOUND ? RF_ERR_ANNOUNCEMENT_NOT_FOUND : err;
    err = store_query_each(tx, SQL_COUNTS, p, 1, 3, count_row, out);
    out->state = state_of(out);
    RF_ASSERT(out->recipients == out->pending + out->delivered + out->failed);
    core_fact_status(tx, announcement_state_names[out->state]);
    return err;
}

rf_err op_announcement_get(struct rf_tx *tx, const void *req, void *res) {
    return announcement_read(tx, ((const struct rf_announcement_req *)req)->id, res);
}

/* ---- create ------------------------------------------------------------------- */

static const char SQL_INSERT[] =
    "INSERT INTO announcements (id, title, body, audience_kind, audience, audience_size,"
    " send_at, job_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)";

/* The fan-out job of announcement id: unique_key names what it delivers
 * (the announcement, or one retry of it), so a repeated enqueue finds it. */
static rf_err fanout_enqueue(struct rf_tx *tx, const char *id, const char *unique_key,
                             int64_t run_at_ms, struct rf_job *job) {
    char payload[RF_ID_BYTES + 32];
    snprintf(payload, sizeof payload, "{\"announcement_id\":\"%s\"}", id);
    struct rf_job_req jr = {.queue = RF_ANNOUNCE_QUEUE, .kind = RF_ANNOUNCE_KIND,
                            .payload_json = payload, .unique_key = unique_key,
                            .run_at_ms = run_at_ms, .max_attempts = RF_FANOUT_ATTEMPTS};
    bool created = false;
    return job_enqueue_tx(tx, &jr, job, &created);
}

rf_err op_announcement_create(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_announcement_req *r = req;
    struct audience au;
    rf_err err = audience_parse(r->audience_json, &au, NULL); /* body_check passed it */
    if (err) return err;
    char id[RF_ID_BYTES];
    rf_uuid7(tx->now_ms, id);
    struct rf_job job = {0};
    err = fanout_enqueue(tx, id, id, r->send_at_ms, &job); /* run_at too far: INVALID */
    if (!err) {
        const char *audience = au.kind == AUD_USER_IDS ? au.ids_json
                               : au.kind == AUD_ENT_KEY ? au.key
                                                        : "";
        store_val p[9] = {SV_S(id), SV_S(r->title), SV_S(r->body),
                          SV_S(audience_kinds[au.kind]), SV_S(audience), SV_I(au.n_ids),
                          SV_I(job.run_at_ms), SV_S(job.id), SV_I(tx->now_ms)};
        err = store_exec(tx, SQL_INSERT, p, 9, NULL);
    }
    rf_job_clear(&job);
    free(au.ids_json);
    if (!err) err = announcement_read(tx, id, res);
    if (!err) ((struct rf_announcement *)res)->created = true;
    return err;
}

/* ---- retry-failed --------------------------------------------------------------- */

static const char SQL_REQUEUE[] =
    "UPDATE announcement_recipients SET status = 'pending', updated_at = $2"
    " WHERE announcement_id = $1 AND status = 'failed'";
static const char SQL_RETRIED[] =
    "UPDATE announcements SET retries = retries + 1, updated_at = $2, version = version + 1"
    " WHERE id = $1 RETURNING retries";

static void int_row(struct rf_tx *tx, struct store_rows *r, void *out) {
    *(int64_t *)out = store_int(tx, r, 0);
}

rf_err op_announcement_retry_failed(struct rf_tx *tx, const void *req, void *res) {
    const char *id = ((const struct rf_announcement_req *)req)->id;
    rf_err err = announcement_read(tx, id, res); /* it exists */
    int64_t moved = 0, retries = 0;
    store_val p[2] = {SV_S(id), SV_I(tx->now_ms)};
    if (!err) err = store_exec(tx, SQL_REQUEUE, p, 2, &moved);
    if (err || moved == 0) return err; /* none failed: nothing to do */
    err = store_query_one(tx, SQL_RETRIED, p, 2, int_row, &retries);
    /* Its own job (not the fan-out's key): a fan-out job about to complete
     * would otherwise be found live and these recipients left pending. */
    char key[RF_ID_BYTES];
    snprintf(key, sizeof key, "%.100s:retry:%lld", id, (long long)retries);
    struct rf_job job = {0};
    if (!err) err = fanout_enqueue(tx, id, key, 0, &job);
    rf_job_clear(&job);
    return err ? err : announcement_read(tx, id, res);
}

/* ---- the fan-out's chunk -------------------------------------------------------- */

#define SQL_LOCK_ROW(lock)                                                              \
    "SELECT audience_kind, audience, fanout_cursor, fanout_done_at, title, body"        \
    " FROM announcements WHERE id = $1" lock
static const char SQL_LOCK_PG[] = SQL_LOCK_ROW(" FOR UPDATE");
static const char SQL_LOCK_SQLITE[] = SQL_LOCK_ROW("");

/* The audience after the cursor, in user id order ("all": every user id
 * racefree holds a row of: entitlements, customer bindings, checkouts,
 * notifications). */
static const char SQL_NEXT_ALL[] =
    "SELECT user_id FROM entitlements WHERE user_id > $1 UNION"
    " SELECT user_id FROM customer_bindings WHERE user_id > $1 UNION"
    " SELECT user_id FROM checkouts WHERE user_id > $1 UNION"
    " SELECT user_id FROM notifications WHERE user_id > $1 ORDER BY 1 LIMIT $2";
static const char SQL_NEXT_KEY[] =
    "SELECT user_id FROM entitlements WHERE entitlement_key = $3 AND status = 'active'"
    " AND (expires_at IS NULL OR expires_at > $4) AND user_id > $1 ORDER BY user_id LIMIT $2";
static const char SQL_RECIPIENT[] =
    "INSERT INTO announcement_recipients (announcement_id, user_id, status, updated_at)"
    " VALUES ($1, $2, 'pending', $3) ON CONFLICT DO NOTHING";
static const char SQL_PENDING[] =
    "SELECT user_id FROM announcement_recipients WHERE announcement_id = $1"
    " AND status = 'pending' ORDER BY user_id LIMIT $2";
static const char SQL_DELIVERED[] =
    "UPDATE announcement_recipients SET status = $3, notification_id = $4, last_error = $5,"
    " attempts = attempts + 1, updated_at = $6"
    " WHERE announcement_id = $1 AND user_id = $2 AND status = 'pending'";
static const char SQL_ADVANCE[] =
    "UPDATE announcements SET fanout_cursor = $2, fanout_done_at = $3, updated_at = $4,"
    " version = version + 1 WHERE id = $1";

static const char SQL_TOUCH[] =
    "UPDATE announcements SET updated_at = $2, version = version + 1 WHERE id = $1";

struct chunk {
    struct fanout_chunk *in;
    char kind[16], cursor[RF_ID_BYTES];
    char *audience, *title, *body;     /* malloc'd */
    bool done;
    char (*ids)[RF_ID_BYTES];           /* in->chunk of them */
    int n;
};

static void lock_row(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct chunk *c = out;
    rf_strcpy(c->kind, sizeof c->kind, store_text(tx, r, 0));
    c->audience = core_dup_col(tx, r, 1);
    rf_strcpy(c->cursor, sizeof c->cursor, store_text(tx, r, 2));
    c->done = !store_null(tx, r, 3);
    c->title = core_dup_col(tx, r, 4);
    c->body = core_dup_col(tx, r, 5);
}

static void id_row(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct chunk *c = out;
    if (c->n < c->in->chunk) rf_strcpy(c->ids[c->n++], RF_ID_BYTES, store_text(tx, r, 0));
}

/* The next ids of a user_ids audience (sorted when it was stored). */
static rf_err next_listed(struct chunk *c) {
    json_t *arr = json_loads(c->audience, 0, NULL);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return RF_ERR_INTERNAL;
    }
    for (size_t i = 0; i < json_array_size(arr) && c->n < c->in->chunk; i++) {
        const char *u = json_string_value(json_array_get(arr, i));
        if (u && strcmp(u, c->cursor) > 0) rf_strcpy(c->ids[c->n++], RF_ID_BYTES, u);
    }
    json_decref(arr);
    return RF_OK;
}

/* Reads the next ids of the audience and makes their recipient rows. */
static rf_err chunk_audience(struct rf_tx *tx, struct chunk *c) {
    rf_err err;
    store_val p[4] = {SV_S(c->cursor), SV_I(c->in->chunk), SV_S(c->audience), SV_I(tx->now_ms)};
    if (strcmp(c->kind, "user_ids") == 0) err = next_listed(c);
    else if (strcmp(c->kind, "all") == 0)
        err = store_query_each(tx, SQL_NEXT_ALL, p, 2, c->in->chunk, id_row, c);
    else err = store_query_each(tx, SQL_NEXT_KEY, p, 4, c->in->chunk, id_row, c);
    for (int i = 0; i < c->n && !err; i++) {
        store_val q[3] = {SV_S(c->in->id), SV_S(c->ids[i]), SV_I(tx->now_ms)};
        err = store_exec_later(tx, SQL_RECIPIENT, q, 3);
    }
    if (c->n > 0) rf_strcpy(c->cursor, sizeof c->cursor, c->ids[c->n - 1]);
    c->done = c->n < c->in->chunk;
    return err;
}

/* Delivers each pending recipient of the chunk: a notification (or, under
 * the test hook, a failure), and the recipient out of pending. */
static rf_err chunk_deliver(struct rf_tx *tx, struct chunk *c) {
    c->n = 0;
    store_val p[2] = {SV_S(c->in->id), SV_I(c->in->chunk)};
    rf_err err = store_query_each(tx, SQL_PENDING, p, 2, c->in->chunk, id_row, c);
    for (int i = 0; i < c->n && !err; i++) {
        char nid[RF_ID_BYTES] = "";
        bool created = false, fail = c->in->fails && c->in->fails(c->in->fails_arg, c->ids[i]);
        struct notification_spec ns = {.user_id = c->ids[i], .kind = "announcement",
                                       .title = c->title, .body = c->body,
                                       .announcement_id = c->in->id};
        if (!fail) err = notification_create_tx(tx, &ns, nid, &created);
        store_val q[6] = {SV_S(c->in->id), SV_S(c->ids[i]), SV_S(fail ? "failed" : "delivered"),
                          fail ? SV_N() : SV_S(nid),
                          fail ? SV_S("delivery failed (test hook)") : SV_N(), SV_I(tx->now_ms)};
        if (!err) err = store_exec_later(tx, SQL_DELIVERED, q, 6);
    }
    return err;
}

static rf_err chunk_run(struct rf_tx *tx, struct chunk *c) {
    store_val p[1] = {SV_S(c->in->id)};
    const char *sql = tx->ops->backend == STORE_POSTGRES ? SQL_LOCK_PG : SQL_LOCK_SQLITE;
    rf_err err = store_query_one(tx, sql, p, 1, lock_row, c);
    if (err) return err == RF_ERR_NOT_FOUND ? RF_ERR_ANNOUNCEMENT_NOT_FOUND : err;
    bool was_done = c->done;
    if (!was_done) err = chunk_audience(tx, c);
    if (!err) {
        store_val q[4] = {SV_S(c->in->id), SV_S(c->cursor), c->done ? SV_I(tx->now_ms) : SV_N(),
                          SV_I(tx->now_ms)};
        if (!was_done) err = store_exec_later(tx, SQL_ADVANCE, q, 4);
    }
    if (!err) err = chunk_deliver(tx, c);
    if (!err && was_done && c->n > 0) { /* a retry's deliveries change it too (its ETag) */
        store_val q[2] = {SV_S(c->in->id), SV_I(tx->now_ms)};
        err = store_exec_later(tx, SQL_TOUCH, q, 2);
    }
    if (!err) c->in->more = !c->done || c->n == c->in->chunk;
    return err;
}

/* One chunk, one transaction (core_write runs it, again on a retry). */
rf_err fanout_chunk_tx(struct rf_tx *tx, void *ctx) {
    struct fanout_chunk *in = ctx;
    RF_ASSERT(in->chunk >= 1 && in->chunk <= RF_FANOUT_CHUNK_MAX);
    struct chunk c = {.in = in};
    in->more = false;
    c.ids = malloc((size_t)in->chunk * sizeof *c.ids);
    rf_err err = c.ids ? chunk_run(tx, &c) : RF_ERR_NOMEM;
    free(c.ids);
    free(c.audience);
    free(c.title);
    free(c.body);
    return err;
}

/* ---- the library's calls ------------------------------------------------------- */

rf_err rf_announcement_create(rf *db, const struct rf_announcement_req *req,
                              struct rf_announcement *out, struct rf_idem *idem) {
    return rf_op_run(db, RF_OP_ANNOUNCEMENT_CREATE, req, out, idem, NULL);
}

rf_err rf_announcement_get(rf *db, const char *id, struct rf_announcement *out) {
    struct rf_announcement_req req = {.id = id};
    return rf_op_run(db, RF_OP_ANNOUNCEMENT_GET, &req, out, NULL, NULL);
}

rf_err rf_announcement_retry_failed(rf *db, const char *id, struct rf_announcement *out) {
    struct rf_announcement_req req = {.id = id};
    return rf_op_run(db, RF_OP_ANNOUNCEMENT_RETRY_FAILED, &req, out, NULL, NULL);
}
