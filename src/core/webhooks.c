/*
 * webhooks.c - webhook ingestion and the event ledger.
 *
 * The races in the seed: providers deliver at least once, in parallel and
 * out of order, and a handler without a ledger re-runs status writes and
 * grants on every delivery. Here one delivery is one transaction: the
 * signature is checked against the provider's secrets, the event is
 * claimed in webhook_events with INSERT .. ON CONFLICT (provider, event_id)
 * DO NOTHING, and only the delivery whose insert made the row applies the
 * event to its checkout (checkout_apply_event, same transaction). A
 * parallel delivery's insert waits on the first one's unique key and then
 * finds the row: it answers duplicate and changes nothing. If the effect
 * fails, the claim rolls back with it, so the provider's retry applies it.
 *
 * Provider payloads are read for the fields needed and nothing else:
 *   stripe  checkout.session.completed / .async_payment_succeeded -> paid,
 *           checkout.session.expired -> expired (both find the checkout by
 *           data.object.id as provider ref, else data.object.
 *           client_reference_id as checkout id); a completed session whose
 *           payment_status is "unpaid" (a delayed payment method) is ignored
 *           until async_payment_succeeded; charge.refunded -> refunded when
 *           data.object.refunded is true (a partial refund is ignored), the
 *           checkout found by data.object.metadata.checkout_id, else by
 *           data.object.payment_intent as provider ref.
 *   others  {id, type: checkout.paid | checkout.expired | checkout.refunded,
 *           created, checkout_id | provider_ref}.
 * Any other type is recorded as ignored. An event whose checkout is not
 * there yet is recorded unmatched, and a refund delivered before its payment
 * deferred; webhook_events_match (flows.h) applies them, in the providers'
 * event order, when the checkout is paid here, and is the function a
 * checkout's create or provider-ref binding calls to pick up what waited.
 */
#include <string.h>

#include <jansson.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"
#include "core/core.h"
#include "core/flows.h"
#include "core/listing.h"
#include "core/ops.h"
#include "core/webhook_secrets.h"
#include "core/webhook_sig.h"

/* A string member that is a valid id, copied into out; "" otherwise. */
static void id_member(const json_t *obj, const char *name, char out[RF_ID_BYTES]) {
    const char *s = json_string_value(json_object_get(obj, name));
    out[0] = '\0';
    if (s && rf_id_valid(s)) rf_strcpy(out, RF_ID_BYTES, s);
}

static void parse_stripe(const json_t *root, struct parsed_event *ev) {
    const json_t *obj = json_object_get(json_object_get(root, "data"), "object");
    const char *t = ev->type;
    if (!json_is_object(obj)) return;
    bool completed = strcmp(t, "checkout.session.completed") == 0;
    const char *pay = json_string_value(json_object_get(obj, "payment_status"));
    if ((completed && !(pay && strcmp(pay, "unpaid") == 0)) ||
        strcmp(t, "checkout.session.async_payment_succeeded") == 0)
        ev->kind = CHECKOUT_EV_PAID;
    else if (strcmp(t, "checkout.session.expired") == 0)
        ev->kind = CHECKOUT_EV_EXPIRED;
    if (ev->kind != EV_IGNORED) {
        id_member(obj, "id", ev->provider_ref);
        id_member(obj, "client_reference_id", ev->checkout_id);
        return;
    }
    if (strcmp(t, "charge.refunded") != 0 || !json_is_true(json_object_get(obj, "refunded")))
        return;
    ev->kind = CHECKOUT_EV_REFUNDED;
    id_member(json_object_get(obj, "metadata"), "checkout_id", ev->checkout_id);
    id_member(obj, "payment_intent", ev->provider_ref);
}

static void parse_generic(const json_t *root, struct parsed_event *ev) {
    static const char *const types[] = {"checkout.paid", "checkout.expired", "checkout.refunded"};
    static const int kinds[] = {CHECKOUT_EV_PAID, CHECKOUT_EV_EXPIRED, CHECKOUT_EV_REFUNDED};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(ev->type, types[i]) == 0) ev->kind = kinds[i];
    if (ev->kind == EV_IGNORED) return;
    id_member(root, "checkout_id", ev->checkout_id);
    id_member(root, "provider_ref", ev->provider_ref);
}

/* The envelope both schemes share: id (an id), type (printable, short),
 * created (unix seconds, optional). A handled type must name its checkout. */
rf_err webhook_event_parse(const char *provider, const char *body, size_t len,
                           struct parsed_event *ev) {
    memset(ev, 0, sizeof *ev);
    ev->kind = EV_IGNORED;
    json_t *root = json_loadb(body ? body : "", len, 0, NULL);
    const char *id = json_string_value(json_object_get(root, "id"));
    const char *type = json_string_value(json_object_get(root, "type"));
    rf_err err = RF_ERR_WEBHOOK_PAYLOAD_INVALID;
    if (json_is_object(root) && id && rf_id_valid(id) && type &&
        rf_printable_valid(type, RF_WEBHOOK_TYPE_BYTES - 1) && type[0]) {
        rf_strcpy(ev->event_id, sizeof ev->event_id, id);
        rf_strcpy(ev->type, sizeof ev->type, type);
        json_int_t created = json_integer_value(json_object_get(root, "created"));
        if (created > 0 && created < INT64_MAX / 1000) ev->created_ms = created * 1000;
        if (strcmp(provider, "stripe") == 0)
            parse_stripe(root, ev);
        else
            parse_generic(root, ev);
        bool named = ev->checkout_id[0] || ev->provider_ref[0];
        err = ev->kind == EV_IGNORED || named ? RF_OK : RF_ERR_WEBHOOK_PAYLOAD_INVALID;
    }
    json_decref(root);
    return err;
}

#define EVENT_COLS                                                                          \
    "id, provider, event_id, type, status, COALESCE(checkout_id, ''),"                      \
    " COALESCE(provider_ref, ''), event_created_at, received_at"
static const char SQL_CLAIM[] =
    "INSERT INTO webhook_events (id, provider, event_id, type, status, checkout_id,"
    " provider_ref, event_created_at, received_at, effect)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    " ON CONFLICT (provider, event_id) DO NOTHING RETURNING " EVENT_COLS;
static const char SQL_BY_EVENT[] =
    "SELECT " EVENT_COLS " FROM webhook_events WHERE provider = $1 AND event_id = $2";
static const char SQL_OUTCOME[] =
    "UPDATE webhook_events SET status = $2, checkout_id = $3 WHERE id = $1";

static void read_event(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_webhook_event *e = out;
    memset(e, 0, sizeof *e);
    rf_strcpy(e->id, sizeof e->id, store_text(tx, r, 0));
    rf_strcpy(e->provider, sizeof e->provider, store_text(tx, r, 1));
    rf_strcpy(e->event_id, sizeof e->event_id, store_text(tx, r, 2));
    rf_strcpy(e->type, sizeof e->type, store_text(tx, r, 3));
    rf_strcpy(e->status, sizeof e->status, store_text(tx, r, 4));
    rf_strcpy(e->checkout_id, sizeof e->checkout_id, store_text(tx, r, 5));
    rf_strcpy(e->provider_ref, sizeof e->provider_ref, store_text(tx, r, 6));
    e->event_created_at_ms = store_int(tx, r, 7);
    e->received_at_ms = store_int(tx, r, 8);
}

/* The effect column: what a handled event asks, by enum checkout_event. */
static const char *const effect_names[] = {"paid", "expired", "refunded"};

static int effect_kind(const char *name) {
    for (int k = 0; k < 3; k++)
        if (strcmp(name, effect_names[k]) == 0) return k;
    return EV_IGNORED;
}

/* What an event asked and what came of it, as webhook_events records it. */
struct applied {
    const char *status;
    char checkout_id[RF_ID_BYTES];
    struct checkout_event_res cr;
};

/* Applies one recorded event (row_id) to its checkout, found by provider
 * ref first, then by checkout id (a client_reference_id that names no
 * checkout of ours is only a fallback), and records the outcome on its row:
 * processed (applied), deferred (a refund delivered before its payment:
 * applied once the checkout is paid), ignored (a transition the checkout's
 * state does not allow, such as expired after paid: recorded, no effect),
 * unmatched (no checkout yet). */
static rf_err apply_one(struct rf_tx *tx, const char *provider, const char *row_id, int kind,
                        const char *checkout_id, const char *provider_ref, struct applied *out) {
    RF_ASSERT(kind >= CHECKOUT_EV_PAID && kind <= CHECKOUT_EV_REFUNDED);
    struct checkout_event_res *cr = &out->cr;
    memset(cr, 0, sizeof *cr);
    rf_err err = RF_OK;
    if (provider_ref && provider_ref[0])
        err = checkout_apply_event(tx, (enum checkout_event)kind, provider, NULL, provider_ref, cr);
    if (!err && !cr->matched && checkout_id && checkout_id[0])
        err = checkout_apply_event(tx, (enum checkout_event)kind, provider, checkout_id, NULL, cr);
    if (err) return err;
    bool before_payment = strcmp(cr->status, "pending") == 0 || strcmp(cr->status, "paid") == 0;
    out->status = !cr->matched ? "unmatched"
                  : cr->applied ? "processed"
                  : kind == CHECKOUT_EV_REFUNDED && before_payment ? "deferred"
                                                                  : "ignored";
    rf_strcpy(out->checkout_id, sizeof out->checkout_id,
              cr->matched ? cr->checkout_id : checkout_id ? checkout_id : "");
    store_val p[3] = {SV_S(row_id), SV_S(out->status),
                      SV_S(out->checkout_id[0] ? out->checkout_id : NULL)};
    return store_exec(tx, SQL_OUTCOME, p, 3, NULL);
}

struct waiting {
    char id[RF_ID_BYTES];
    int kind;
    char checkout_id[RF_ID_BYTES];
    char provider_ref[RF_ID_BYTES];
};
struct waiting_list {
    struct waiting w[RF_WEBHOOK_MATCH_MAX];
    int n;
};

static void read_waiting(struct rf_tx *tx, struct store_rows *r, void *ctx) {
    struct waiting_list *l = ctx;
    RF_ASSERT(l->n < RF_WEBHOOK_MATCH_MAX);
    struct waiting *w = &l->w[l->n++];
    rf_strcpy(w->id, sizeof w->id, store_text(tx, r, 0));
    w->kind = effect_kind(store_text(tx, r, 1));
    rf_strcpy(w->checkout_id, sizeof w->checkout_id, store_text(tx, r, 2));
    rf_strcpy(w->provider_ref, sizeof w->provider_ref, store_text(tx, r, 3));
}

/* One branch per partial index (webhook_events_waiting_checkout / _ref): an
 * OR of the two would make both back ends read every waiting event of the
 * provider, and unmatched events for checkouts that never come accumulate,
 * so every checkout creation would grow slower with them. */
#define WAITING_BRANCH(col, n)                                                              \
    "SELECT id, effect, COALESCE(checkout_id, '') AS ck, COALESCE(provider_ref, '') AS ref," \
    " event_created_at, received_at FROM webhook_events WHERE provider = $1"                \
    " AND status IN ('unmatched', 'deferred') AND effect IS NOT NULL AND " col " = $" n
static const char SQL_WAITING[] =
    "SELECT id, effect, ck, ref FROM (" WAITING_BRANCH("checkout_id", "2")
    " UNION " WAITING_BRANCH("provider_ref", "3") ") AS w"
    " ORDER BY event_created_at, received_at, id LIMIT $4";

rf_err webhook_events_match(struct rf_tx *tx, const char *provider, const char *checkout_id,
                            const char *provider_ref, char status_out[RF_STATUS_BYTES]) {
    struct waiting_list l = {.n = 0};
    store_val p[4] = {SV_S(provider), SV_S(checkout_id), SV_S(provider_ref),
                      SV_I(RF_WEBHOOK_MATCH_MAX)};
    rf_err err = store_query_each(tx, SQL_WAITING, p, 4, RF_WEBHOOK_MATCH_MAX, read_waiting, &l);
    for (int i = 0; !err && i < l.n; i++) {
        if (l.w[i].kind == EV_IGNORED) continue;
        struct applied a;
        err = apply_one(tx, provider, l.w[i].id, l.w[i].kind, l.w[i].checkout_id,
                        l.w[i].provider_ref, &a);
        if (!err && a.cr.matched && status_out)
            rf_strcpy(status_out, RF_STATUS_BYTES, a.cr.status);
    }
    return err;
}

/* A claimed event applied; when it moved its checkout, the events that
 * waited for that (a refund delivered before its payment) follow in the
 * same transaction. */
static rf_err apply(struct rf_tx *tx, const struct parsed_event *ev, struct rf_webhook_res *out) {
    struct applied a;
    const char *provider = out->event.provider;
    rf_err err = apply_one(tx, provider, out->event.id, ev->kind, ev->checkout_id,
                           ev->provider_ref, &a);
    if (err) return err;
    rf_strcpy(out->event.status, sizeof out->event.status, a.status);
    rf_strcpy(out->event.checkout_id, sizeof out->event.checkout_id, a.checkout_id);
    if (a.cr.matched) rf_strcpy(out->checkout_status, sizeof out->checkout_status, a.cr.status);
    if (!a.cr.applied) return RF_OK;
    return webhook_events_match(tx, provider, a.cr.checkout_id,
                                ev->provider_ref[0] ? ev->provider_ref : NULL,
                                out->checkout_status);
}

/* Claims the event: the row made now (first delivery) or the row already
 * there (a replay, also one that raced this one and committed first). */
static rf_err claim(struct rf_tx *tx, const char *provider, const struct parsed_event *ev,
                    struct rf_webhook_res *out) {
    char id[RF_UUID_TEXT_BYTES];
    rf_uuid7(tx->now_ms, id);
    const char *status = ev->kind == EV_IGNORED ? "ignored" : "unmatched";
    store_val p[10] = {SV_S(id), SV_S(provider), SV_S(ev->event_id), SV_S(ev->type),
                       SV_S(status), SV_S(ev->checkout_id[0] ? ev->checkout_id : NULL),
                       SV_S(ev->provider_ref[0] ? ev->provider_ref : NULL),
                       SV_I(ev->created_ms), SV_I(tx->now_ms),
                       SV_S(ev->kind == EV_IGNORED ? NULL : effect_names[ev->kind])};
    rf_err err = store_query_one(tx, SQL_CLAIM, p, 10, read_event, &out->event);
    if (err != RF_ERR_NOT_FOUND) return err;
    out->duplicate = true;
    err = store_query_one(tx, SQL_BY_EVENT, p + 1, 2, read_event, &out->event);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_RETRY : err; /* the claimer rolled back: again */
}

rf_err op_webhook_receive(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_webhook_req *r = req;
    struct rf_webhook_res *out = res;
    RF_ASSERT(!out->duplicate && !out->event.id[0]); /* each attempt starts zeroed */
    struct webhook_secrets s;
    rf_err err = webhook_secrets_open(tx, r->provider, &s);
    if (err) return err;
    int64_t tolerance_s = r->tolerance_s > 0 ? r->tolerance_s : RF_WEBHOOK_TOLERANCE_S_DEFAULT;
    err = webhook_sig_verify(r->signature, r->body, r->body_len, s.keys, s.n,
                             tx->now_ms / 1000, tolerance_s);
    webhook_secrets_wipe(&s);
    if (err) return err;
    struct parsed_event ev;
    err = webhook_event_parse(r->provider, r->body, r->body_len, &ev);
    if (!err) err = claim(tx, r->provider, &ev, out);
    if (err || out->duplicate || ev.kind == EV_IGNORED) return err;
    return apply(tx, &ev, out);
}

/* ---- the operators' list ------------------------------------------------------ */

static const char SQL_EVENT_LIST[] =
    "SELECT " EVENT_COLS ", list_pos FROM webhook_events WHERE " LIST_AFTER("id")
    " AND ($4 = '' OR status = $4) AND ($5 = '' OR provider = $5)" LIST_ORDER("id") " LIMIT $6";
static const char SQL_EVENT_POS[] = "SELECT list_pos FROM webhook_events WHERE id = $1";

/* The status names of enum rf_webhook_event_filter (all first), NULL-terminated. */
const char *const webhook_event_filter_names[] = {"all",       "processed", "ignored",
                                                  "unmatched", "deferred",  NULL};

rf_err op_webhook_event_list(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_webhook_event_list_req *r = req;
    struct rf_webhook_event_page *out = res;
    RF_ASSERT(r->list.status >= RF_WEBHOOK_EVENTS_ALL &&
              r->list.status <= RF_WEBHOOK_EVENTS_UNMATCHED);
    struct list_page lp = {.pos_col = 9, .key_col = 0, .pos_sql = SQL_EVENT_POS,
                           .read_row = read_event,
                           LIST_INTO(out, core_limit((int)r->list.limit))};
    rf_err err = list_cursor_parse(r->list.after, &lp.after);
    if (err) return err;
    const char *status = r->list.status ? webhook_event_filter_names[r->list.status] : "";
    store_val p[6] = {SV_I(lp.after.pos), SV_S(lp.after.key), LIST_HORIZON_SLOT, SV_S(status),
                      SV_S(r->provider ? r->provider : ""), SV_I(lp.limit)};
    err = list_page_run(tx, SQL_EVENT_LIST, p, 6, &lp);
    out->n = lp.n;
    return err;
}

/* ---- the public functions: thin wrappers over rf_op_run ------------------- */

rf_err rf_webhook_receive(rf *db, const struct rf_webhook_req *req, struct rf_webhook_res *out) {
    return rf_op_run(db, RF_OP_WEBHOOK_RECEIVE, req, out, NULL, NULL);
}

void rf_webhook_event_page_clear(struct rf_webhook_event_page *p) {
    if (!p) return;
    page_clear(p->items, p->n, sizeof *p->items, NULL);
    memset(p, 0, sizeof *p);
}

rf_err rf_webhook_event_list(rf *db, const struct rf_webhook_event_list_req *req,
                             struct rf_webhook_event_page *out) {
    return rf_op_run(db, RF_OP_WEBHOOK_EVENT_LIST, req, out, NULL, NULL);
}
