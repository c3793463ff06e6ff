/*
 * notifications.c - a user's notifications with ONE read-state contract:
 * create (with a dedupe_key's or an announcement's identity), get, list
 * (with the unread count of the same snapshot), unread count, read, unread,
 * read-all.
 *
 * The races seed 001 names, and how they are closed:
 *   - mixed read contracts (read_at beside read/is_read) drifting apart
 *     under racing clients: read_at is the only state; "unread" is
 *     read_at IS NULL everywhere (filter, count, read-all);
 *   - racing reads overwriting each other's time (read-modify-write): a
 *     read is ONE guarded UPDATE .. WHERE read_at IS NULL, so the first
 *     read's time stands, later reads change nothing (no version bump) and
 *     return the stored read_at;
 *   - two sends of one dedupe_key, or a fan-out chunk run twice
 *     (check-then-insert): the partial UNIQUE indexes decide, INSERT ..
 *     ON CONFLICT DO NOTHING RETURNING, then the existing row is read;
 *   - a list and its unread count read at different moments (PostgreSQL
 *     reads run each statement with a newer snapshot): the page's rows and
 *     the count come from ONE statement, and the count route is one
 *     statement too;
 *   - object-level authorization holes: every statement is scoped by
 *     user_id AND id, so another user's notification id is not found.
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"
#include "core/core.h"
#include "core/flows.h"
#include "core/listing.h"
#include "core/ops.h"

#define NOTE_COLS                                                                     \
    "id, user_id, kind, title, body, data, dedupe_key, announcement_id, read_at,"     \
    " created_at, updated_at, version"
#define NOTE_N_COLS 12

void rf_notification_clear(struct rf_notification *n) {
    if (!n) return;
    free(n->title);
    free(n->body);
    free(n->data_json);
    memset(n, 0, sizeof *n);
}

static void clear_note(void *n) { rf_notification_clear(n); }

void rf_notification_page_clear(struct rf_notification_page *p) {
    if (!p) return;
    page_clear(p->items, p->n, sizeof *p->items, clear_note);
    memset(p, 0, sizeof *p);
}

/* Reads NOTE_COLS. */
static void read_note(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_notification *n = out;
    rf_notification_clear(n);
    rf_strcpy(n->id, sizeof n->id, store_text(tx, r, 0));
    rf_strcpy(n->user_id, sizeof n->user_id, store_text(tx, r, 1));
    rf_strcpy(n->kind, sizeof n->kind, store_text(tx, r, 2));
    n->title = core_dup_col(tx, r, 3);
    n->body = core_dup_col(tx, r, 4);
    n->data_json = core_dup_col(tx, r, 5);
    core_chars_col(tx, r, 6, n->dedupe_key, sizeof n->dedupe_key);
    core_chars_col(tx, r, 7, n->announcement_id, sizeof n->announcement_id);
    n->read_at_ms = store_null(tx, r, 8) ? 0 : store_int(tx, r, 8);
    n->created_at_ms = store_int(tx, r, 9);
    n->updated_at_ms = store_int(tx, r, 10);
    n->version = store_int(tx, r, 11);
    RF_ASSERT(n->version >= 1 && n->created_at_ms > 0 && n->read_at_ms >= 0);
}

static const char SQL_GET[] =
    "SELECT " NOTE_COLS " FROM notifications WHERE id = $1 AND user_id = $2";

/* The user's notification id: RF_ERR_NOTIFICATION_NOT_FOUND when there is
 * none, also when the id is another user's. */
static rf_err note_get(struct rf_tx *tx, const char *user_id, const char *id,
                       struct rf_notification *out) {
    store_val p[2] = {SV_S(id), SV_S(user_id)};
    rf_err err = store_query_one(tx, SQL_GET, p, 2, read_note, out);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_NOTIFICATION_NOT_FOUND : err;
}

/* ---- create ------------------------------------------------------------------ */

static const char SQL_INSERT[] =
    "INSERT INTO notifications (id, user_id, kind, title, body, data, dedupe_key,"
    " announcement_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)"
    " ON CONFLICT DO NOTHING RETURNING " NOTE_COLS;
/* The row that has the new one's identity (an argument that is NULL
 * compares as unknown and matches nothing). Rows are never deleted, so
 * the row the INSERT met is there to read. */
static const char SQL_EXISTING[] =
    "SELECT " NOTE_COLS " FROM notifications WHERE user_id = $1 AND (dedupe_key = $2"
    " OR announcement_id = $3) ORDER BY created_at, id LIMIT 1";

static rf_err note_insert(struct rf_tx *tx, const struct notification_spec *s,
                          struct rf_notification *out, bool *created) {
    RF_ASSERT(tx && s && s->user_id && s->kind && s->title && s->body && out && created);
    char id[RF_ID_BYTES];
    rf_uuid7(tx->now_ms, id);
    store_val p[9] = {SV_S(id),          SV_S(s->user_id),    SV_S(s->kind),
                      SV_S(s->title),    SV_S(s->body),       SV_S(s->data_json),
                      SV_S(s->dedupe_key), SV_S(s->announcement_id), SV_I(tx->now_ms)};
    rf_err err = store_query_one(tx, SQL_INSERT, p, 9, read_note, out);
    *created = err == RF_OK;
    if (err != RF_ERR_NOT_FOUND) return err;
    if (!s->dedupe_key && !s->announcement_id) return RF_ERR_CONFLICT; /* a taken uuid7: never */
    store_val q[3] = {SV_S(s->user_id), SV_S(s->dedupe_key), SV_S(s->announcement_id)};
    err = store_query_one(tx, SQL_EXISTING, q, 3, read_note, out);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_INTERNAL : err;
}

rf_err notification_create_tx(struct rf_tx *tx, const struct notification_spec *spec,
                              char id_out[RF_ID_BYTES], bool *created) {
    RF_ASSERT(id_out);
    struct rf_notification n = {0};
    rf_err err = note_insert(tx, spec, &n, created);
    if (!err) rf_strcpy(id_out, RF_ID_BYTES, n.id);
    rf_notification_clear(&n);
    return err;
}

rf_err op_notification_create(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_notification_req *r = req;
    struct rf_notification *out = res;
    struct notification_spec s = {.user_id = r->user_id, .kind = r->kind, .title = r->title,
                                  .body = r->body, .data_json = r->data_json,
                                  .dedupe_key = r->dedupe_key};
    return note_insert(tx, &s, out, &out->created);
}

rf_err op_notification_get(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_notification_ref *r = req;
    return note_get(tx, r->user_id, r->id, res);
}

/* ---- read, unread ---------------------------------------------------------------- */

/* Each moves the row only out of the other state; a repeat finds nothing
 * to move and answers the row as it is (a 200 no-op, no version bump). */
static const char SQL_READ[] =
    "UPDATE notifications SET read_at = $3, updated_at = $3, version = version + 1"
    " WHERE id = $1 AND user_id = $2 AND read_at IS NULL RETURNING " NOTE_COLS;
static const char SQL_UNREAD[] =
    "UPDATE notifications SET read_at = NULL, updated_at = $3, version = version + 1"
    " WHERE id = $1 AND user_id = $2 AND read_at IS NOT NULL RETURNING " NOTE_COLS;

static rf_err note_move(struct rf_tx *tx, const char *sql, const struct rf_notification_ref *r,
                        struct rf_notification *out) {
    store_val p[3] = {SV_S(r->id), SV_S(r->user_id), SV_I(tx->now_ms)};
    rf_err err = store_query_one(tx, sql, p, 3, read_note, out);
    /* No row moved: already in that state (a racing call moved it first:
     * its committed row is what this statement reads), or none. */
    return err == RF_ERR_NOT_FOUND ? note_get(tx, r->user_id, r->id, out) : err;
}

rf_err op_notification_read(struct rf_tx *tx, const void *req, void *res) {
    return note_move(tx, SQL_READ, req, res);
}

rf_err op_notification_unread(struct rf_tx *tx, const void *req, void *res) {
    return note_move(tx, SQL_UNREAD, req, res);
}

/* ---- counts and read-all ------------------------------------------------------------ */

static const char SQL_UNREAD_COUNT[] =
    "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL";

static rf_err unread_count(struct rf_tx *tx, const char *user_id,
                           struct rf_notification_count *out) {
    rf_strcpy(out->user_id, sizeof out->user_id, user_id);
    store_val p[1] = {SV_S(user_id)};
    return store_query_one(tx, SQL_UNREAD_COUNT, p, 1, core_int_row, &out->unread_count);
}

rf_err op_notification_unread_count(struct rf_tx *tx, const void *req, void *res) {
    return unread_count(tx, ((const struct rf_notification_ref *)req)->user_id, res);
}

/* up_to's place in the list order: it must be the user's. */
static const char SQL_POS_OF_USER[] =
    "SELECT list_pos FROM notifications WHERE id = $1 AND user_id = $2";
/* Every unread one at or before (pos, id) in list order (core/listing.h):
 * what a client that listed up to up_to has seen, and whatever committed
 * before it. */
static const char SQL_READ_ALL[] =
    "UPDATE notifications SET read_at = $2, updated_at = $2, version = version + 1"
    " WHERE user_id = $1 AND read_at IS NULL AND (list_pos, id) <= ($3, $4)";

/* id's list_pos among user's notifications; not_found when it is none of
 * theirs. */
static rf_err pos_of_user(struct rf_tx *tx, const char *user_id, const char *id,
                          rf_err not_found, int64_t *pos) {
    store_val p[2] = {SV_S(id), SV_S(user_id)};
    rf_err err = store_query_one(tx, SQL_POS_OF_USER, p, 2, core_int_row, pos);
    return err == RF_ERR_NOT_FOUND ? not_found : err;
}

rf_err op_notification_read_all(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_notification_ref *r = req;
    struct rf_notification_count *out = res;
    int64_t pos = 0;
    rf_err err = pos_of_user(tx, r->user_id, r->up_to, RF_ERR_NOTIFICATION_NOT_FOUND, &pos);
    if (err) return err;
    store_val q[4] = {SV_S(r->user_id), SV_I(tx->now_ms), SV_I(pos), SV_S(r->up_to)};
    err = store_exec(tx, SQL_READ_ALL, q, 4, &out->marked);
    if (err) return err;
    RF_ASSERT(out->marked >= 0);
    rf_strcpy(out->up_to, sizeof out->up_to, r->up_to);
    return unread_count(tx, r->user_id, out);
}

/* ---- the list ------------------------------------------------------------------------ */

/* Commit order (core/listing.h): list_pos is column NOTE_N_COLS, the
 * user's unread count the one after it, computed by the same statement so
 * it is of the page's snapshot, and under the same horizon: it counts the
 * unread notifications the list shows (a row that commit order still
 * holds back is in neither). The one-row count LEFT JOINs the page, so an
 * empty page still carries the count (on one row of NULLs, which
 * list_page_run lists not). $5: 0 every one, 1 unread, 2 read. */
static const char SQL_LIST[] =
    "SELECT n.id, n.user_id, n.kind, n.title, n.body, n.data, n.dedupe_key,"
    " n.announcement_id, n.read_at, n.created_at, n.updated_at, n.version, n.list_pos,"
    " c.unread FROM (SELECT COUNT(*) AS unread FROM notifications WHERE user_id = $4"
    " AND read_at IS NULL AND list_pos < $3) c LEFT JOIN notifications n ON n.user_id = $4"
    " AND (n.list_pos, n.id) > ($1, $2) AND n.list_pos < $3 AND ($5 = 0 OR ($5 = 1"
    " AND n.read_at IS NULL) OR ($5 = 2 AND n.read_at IS NOT NULL))"
    " ORDER BY n.list_pos, n.id LIMIT $6";
/* The cursor is resolved among the user's own rows (pos_of_user, before
 * list_page_run), so another user's id is an invalid cursor, not a
 * position: the list tells nothing of ids outside its user. */
static const char SQL_LIST_POS[] = "SELECT list_pos FROM notifications WHERE id = $1";

static void page_unread(struct rf_tx *tx, struct store_rows *r, void *ctx) {
    *(int64_t *)ctx = store_int(tx, r, NOTE_N_COLS + 1);
}

rf_err op_notification_list(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_notification_list_req *r = req;
    struct rf_notification_page *out = res;
    RF_ASSERT(r->unread >= RF_NOTIFICATIONS_ALL && r->unread <= RF_NOTIFICATIONS_READ);
    out->unread_count = -1;
    struct list_page lp = {.pos_col = NOTE_N_COLS, .key_col = 0, .pos_sql = SQL_LIST_POS,
                           .read_row = read_note, .clear_item = clear_note,
                           .row_seen = page_unread, .row_ctx = &out->unread_count,
                           LIST_INTO(out, core_limit((int)r->list.limit))};
    rf_err err = list_cursor_parse(r->list.after, &lp.after);
    if (!err && lp.after.pos == LIST_POS_UNRESOLVED)
        err = pos_of_user(tx, r->list.scope, lp.after.key, RF_ERR_INVALID_CURSOR, &lp.after.pos);
    if (err) return err;
    store_val p[6] = {SV_I(lp.after.pos), SV_S(lp.after.key), LIST_HORIZON_SLOT,
                      SV_S(r->list.scope), SV_I(r->unread), SV_I(lp.limit)};
    err = list_page_run(tx, SQL_LIST, p, 6, &lp);
    out->n = lp.n;
    RF_ASSERT(err || out->unread_count >= 0); /* the count row is always there */
    return err;
}

/* ---- the public functions: thin wrappers over rf_op_run --------------------------------- */

rf_err rf_notification_create(rf *db, const struct rf_notification_req *req,
                              struct rf_notification *out, struct rf_idem *idem) {
    return rf_op_run(db, RF_OP_NOTIFICATION_CREATE, req, out, idem, NULL);
}

static rf_err note_call(rf *db, rf_op op, const char *user_id, const char *id, void *out) {
    struct rf_notification_ref req = {.user_id = user_id, .id = id};
    return rf_op_run(db, op, &req, out, NULL, NULL);
}

rf_err rf_notification_get(rf *db, const char *user_id, const char *id,
                           struct rf_notification *out) {
    return note_call(db, RF_OP_NOTIFICATION_GET, user_id, id, out);
}

rf_err rf_notification_read(rf *db, const char *user_id, const char *id,
                            struct rf_notification *out) {
    return note_call(db, RF_OP_NOTIFICATION_READ, user_id, id, out);
}

rf_err rf_notification_unread(rf *db, const char *user_id, const char *id,
                              struct rf_notification *out) {
    return note_call(db, RF_OP_NOTIFICATION_UNREAD, user_id, id, out);
}

rf_err rf_notification_unread_count(rf *db, const char *user_id,
                                    struct rf_notification_count *out) {
    return note_call(db, RF_OP_NOTIFICATION_UNREAD_COUNT, user_id, NULL, out);
}

rf_err rf_notification_read_all(rf *db, const char *user_id, const char *up_to,
                                struct rf_notification_count *out) {
    struct rf_notification_ref req = {.user_id = user_id, .up_to = up_to};
    return rf_op_run(db, RF_OP_NOTIFICATION_READ_ALL, &req, out, NULL, NULL);
}

rf_err rf_notification_list(rf *db, const struct rf_notification_list_req *req,
                            struct rf_notification_page *out) {
    return rf_op_run(db, RF_OP_NOTIFICATION_LIST, req, out, NULL, NULL);
}
