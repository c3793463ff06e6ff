/*
 * dropin.c - drop-in photo processing (seed 001) on the job queue: the
 * trigger that enqueues a photo's processing job, and the matches a worker
 * records.
 *
 * The seed's races: the trigger was public, not deduplicated, and each call
 * started processing again; matches were plain inserts, so a re-run wrote
 * them twice. Here a photo's identity is its id: the job is enqueued with
 * unique_key = photo id (the queue's partial UNIQUE index makes racing
 * triggers one job), and drop_in_photos remembers the photo's job, so once
 * it completed a trigger returns it instead of processing the photo again.
 * Only a failed or canceled job (terminal, it never changes again) lets a
 * trigger enqueue a fresh one. A match is INSERT .. ON CONFLICT DO NOTHING
 * under UNIQUE (photo_id, attendee_id, face_id), then the stored row is
 * read: the first record stands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"
#include "core/core.h"
#include "core/flows.h"
#include "core/listing.h"
#include "core/ops.h"

/* ---- the trigger ---------------------------------------------------------------- */

static const char SQL_PHOTO_JOB[] = "SELECT job_id FROM drop_in_photos WHERE photo_id = $1";
/* Two triggers that both enqueued met one job (the unique_key), so both
 * write the same job id: the last write wins with the same value. */
static const char SQL_PHOTO_SET[] =
    "INSERT INTO drop_in_photos (photo_id, job_id, created_at, updated_at)"
    " VALUES ($1, $2, $3, $3) ON CONFLICT (photo_id) DO UPDATE SET job_id = excluded.job_id,"
    " updated_at = excluded.updated_at";

static void read_text(struct rf_tx *tx, struct store_rows *r, void *out) {
    rf_strcpy(out, RF_ID_BYTES, store_text(tx, r, 0));
}

/* The photo's last job, if it is one a trigger returns (not failed or
 * canceled): *found says. */
static rf_err photo_job(struct rf_tx *tx, const char *photo_id, struct rf_job *out,
                        bool *found) {
    *found = false;
    char job_id[RF_ID_BYTES];
    store_val p[1] = {SV_S(photo_id)};
    rf_err err = store_query_one(tx, SQL_PHOTO_JOB, p, 1, read_text, job_id);
    if (err == RF_ERR_NOT_FOUND) return RF_OK;
    struct rf_job_ref ref = {.id = job_id};
    if (!err) err = op_job_get(tx, &ref, out);
    if (err) return err;
    *found = out->status != RF_JOB_FAILED && out->status != RF_JOB_CANCELED;
    if (!*found) rf_job_clear(out);
    return RF_OK;
}

rf_err op_dropin_process(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_dropin_req *r = req;
    struct rf_job *out = res;
    bool found;
    rf_err err = photo_job(tx, r->photo_id, out, &found);
    if (err || found) return err;
    char payload[RF_ID_BYTES + 32];
    int n = snprintf(payload, sizeof payload, "{\"photo_id\":\"%s\"}", r->photo_id);
    RF_ASSERT(n > 0 && (size_t)n < sizeof payload); /* an id needs no escaping */
    struct rf_job_req job = {.queue = RF_DROPIN_QUEUE, .kind = RF_DROPIN_KIND,
                             .payload_json = payload, .unique_key = r->photo_id};
    err = job_enqueue_tx(tx, &job, out, &out->created);
    if (err) return err;
    store_val p[3] = {SV_S(r->photo_id), SV_S(out->id), SV_I(tx->now_ms)};
    return store_exec(tx, SQL_PHOTO_SET, p, 3, NULL);
}

/* ---- matches ----------------------------------------------------------------------- */

#define MATCH_COLS "id, photo_id, attendee_id, face_id, similarity_bp, metadata, created_at"

void rf_dropin_match_clear(struct rf_dropin_match *m) {
    if (!m) return;
    free(m->metadata_json);
    memset(m, 0, sizeof *m);
}

static void clear_match(void *m) { rf_dropin_match_clear(m); }

void rf_dropin_match_page_clear(struct rf_dropin_match_page *p) {
    if (!p) return;
    page_clear(p->items, p->n, sizeof *p->items, clear_match);
    memset(p, 0, sizeof *p);
}

static void read_match(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_dropin_match *m = out;
    rf_dropin_match_clear(m);
    rf_strcpy(m->id, sizeof m->id, store_text(tx, r, 0));
    rf_strcpy(m->photo_id, sizeof m->photo_id, store_text(tx, r, 1));
    rf_strcpy(m->attendee_id, sizeof m->attendee_id, store_text(tx, r, 2));
    rf_strcpy(m->face_id, sizeof m->face_id, store_text(tx, r, 3));
    m->similarity_bp = store_int(tx, r, 4);
    m->metadata_json = core_dup_col(tx, r, 5);
    m->created_at_ms = store_int(tx, r, 6);
    m->version = 1;
}

static const char SQL_MATCH_INSERT[] =
    "INSERT INTO drop_in_matches (id, photo_id, attendee_id, face_id, similarity_bp, metadata,"
    " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
    " RETURNING " MATCH_COLS;
static const char SQL_MATCH_GET[] =
    "SELECT " MATCH_COLS " FROM drop_in_matches WHERE photo_id = $1 AND attendee_id = $2"
    " AND face_id = $3";

rf_err op_dropin_match_record(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_dropin_req *r = req;
    struct rf_dropin_match *out = res;
    char id[RF_ID_BYTES];
    rf_uuid7(tx->now_ms, id);
    store_val p[7] = {SV_S(id), SV_S(r->photo_id), SV_S(r->attendee_id), SV_S(r->face_id),
                      SV_I(r->similarity_bp), SV_S(r->metadata_json), SV_I(tx->now_ms)};
    rf_err err = store_query_one(tx, SQL_MATCH_INSERT, p, 7, read_match, out);
    out->created = err == RF_OK;
    if (err != RF_ERR_NOT_FOUND) return err;
    /* The UNIQUE row exists and is never deleted: it is there to read. */
    err = store_query_one(tx, SQL_MATCH_GET, p + 1, 3, read_match, out);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_INTERNAL : err;
}

/* Commit order (core/listing.h): list_pos is column 7. */
static const char SQL_MATCH_LIST[] =
    "SELECT " MATCH_COLS ", list_pos FROM drop_in_matches WHERE photo_id = $4 AND "
    LIST_AFTER("id") LIST_ORDER("id") " LIMIT $5";
static const char SQL_MATCH_POS[] = "SELECT list_pos FROM drop_in_matches WHERE id = $1";

rf_err op_dropin_match_list(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_list_req *r = req;
    struct rf_dropin_match_page *out = res;
    struct list_page lp = {.pos_col = 7, .key_col = 0, .pos_sql = SQL_MATCH_POS,
                           .read_row = read_match, .clear_item = clear_match,
                           LIST_INTO(out, core_limit((int)r->limit))};
    rf_err err = list_cursor_parse(r->after, &lp.after);
    if (err) return err;
    store_val p[5] = {SV_I(lp.after.pos), SV_S(lp.after.key), LIST_HORIZON_SLOT, SV_S(r->scope),
                      SV_I(lp.limit)};
    err = list_page_run(tx, SQL_MATCH_LIST, p, 5, &lp);
    out->n = lp.n;
    return err;
}

/* ---- the public functions ------------------------------------------------------------ */

rf_err rf_dropin_process(rf *db, const char *photo_id, struct rf_job *out) {
    struct rf_dropin_req req = {.photo_id = photo_id};
    return rf_op_run(db, RF_OP_DROPIN_PROCESS, &req, out, NULL, NULL);
}

rf_err rf_dropin_match_record(rf *db, const struct rf_dropin_req *req,
                              struct rf_dropin_match *out) {
    return rf_op_run(db, RF_OP_DROPIN_MATCH_RECORD, req, out, NULL, NULL);
}

rf_err rf_dropin_match_list(rf *db, const char *photo_id, const char *after, int limit,
                            struct rf_dropin_match_page *out) {
    struct rf_list_req req = {.scope = photo_id, .after = after, .limit = limit};
    return rf_op_run(db, RF_OP_DROPIN_MATCH_LIST, &req, out, NULL, NULL);
}
