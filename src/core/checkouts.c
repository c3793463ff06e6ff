/*
 * checkouts.c - checkout sessions and their fulfilment (seed 001).
 *
 * The races in the seed: parallel checkout requests created duplicate
 * pending rows (here the create requires an Idempotency-Key, whose record
 * commits with the row), and the provider's references were looked up, then
 * written, so two requests bound divergent references and two checkouts one
 * reference (here the bind is ONE guarded UPDATE "provider_ref IS NULL", and
 * UNIQUE(provider, provider_ref) decides between two checkouts; a prior
 * SELECT never does). Webhook deliveries re-ran status writes and grants:
 * here every transition is one guarded UPDATE on the checkout row locked
 * for the event, fulfilment (grants, credits) happens in the transaction of
 * the paid transition, and each credit carries a reference derived from the
 * checkout and the item ("checkout:<id>:<idx>", UNIQUE in transfers), so no
 * re-run can apply one twice.
 *
 * Every transition attempt is recorded in checkout_transitions, the ones
 * the state machine refuses too (applied 0; they change nothing). A refusal
 * answered to an API caller (cancel: 409) rolls back with its operation, so
 * only events (which never fail for a state) leave refused records.
 *
 * Expiry is lazy: a pending checkout past expires_at reads as expired and no
 * transition but EXPIRED moves it; its row turns expired when the provider's
 * expiry event arrives (no sweep rewrites rows).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/assert.h"
#include "base/ids.h"
#include "core/deferred.h"
#include "core/fields.h"
#include "core/flows.h"
#include "core/listing.h"
#include "core/ops.h"

#define CHECKOUT_COLS                                                                   \
    "id, user_id, currency, amount_minor, provider, provider_ref, status, items,"      \
    " refund_shortfall, expires_at, created_at, updated_at, version, created_key"

/* THE names of enum rf_checkout_status, in its order: the JSON's, the status
 * column's (its CHECK lets it hold only these) and the list filter's. */
const char *const checkout_status_names[] = {"pending",  "paid",     "fulfilled", "expired",
                                             "canceled", "refunded", NULL};
_Static_assert(RF_CHECKOUT_PENDING == 0 && RF_CHECKOUT_PAID == 1 &&
                   RF_CHECKOUT_FULFILLED == 2 && RF_CHECKOUT_EXPIRED == 3 &&
                   RF_CHECKOUT_CANCELED == 4 && RF_CHECKOUT_REFUNDED == 5,
               "checkout_status_names follows enum rf_checkout_status");
#define ST(s) checkout_status_names[RF_CHECKOUT_##s]

const char *rf_checkout_status_name(enum rf_checkout_status status) {
    return (unsigned)status <= RF_CHECKOUT_REFUNDED ? checkout_status_names[status] : NULL;
}

static enum rf_checkout_status status_of(const char *name) {
    enum rf_checkout_status s = RF_CHECKOUT_PENDING;
    while (s < RF_CHECKOUT_REFUNDED && strcmp(name, checkout_status_names[s]) != 0) s++;
    RF_ASSERT(strcmp(name, checkout_status_names[s]) == 0);
    return s;
}

void rf_checkout_clear(struct rf_checkout *c) {
    if (!c) return;
    free(c->items_json);
    memset(c, 0, sizeof *c);
}

static void clear_checkout(void *c) { rf_checkout_clear(c); }

void rf_checkout_page_clear(struct rf_checkout_page *p) {
    if (!p) return;
    page_clear(p->items, p->n, sizeof *p->items, clear_checkout);
    memset(p, 0, sizeof *p);
}

/* Reads CHECKOUT_COLS as stored. */
static void read_stored(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_checkout *c = out;
    rf_checkout_clear(c);
    rf_strcpy(c->id, sizeof c->id, store_text(tx, r, 0));
    rf_strcpy(c->user_id, sizeof c->user_id, store_text(tx, r, 1));
    rf_strcpy(c->currency, sizeof c->currency, store_text(tx, r, 2));
    c->amount_minor = store_int(tx, r, 3);
    rf_strcpy(c->provider, sizeof c->provider, store_text(tx, r, 4));
    if (!store_null(tx, r, 5))
        rf_strcpy(c->provider_ref, sizeof c->provider_ref, store_text(tx, r, 5));
    c->status = status_of(store_text(tx, r, 6));
    c->items_json = core_dup_col(tx, r, 7);
    c->refund_shortfall_minor = store_int(tx, r, 8);
    c->expires_at_ms = store_int(tx, r, 9);
    c->created_at_ms = store_int(tx, r, 10);
    c->updated_at_ms = store_int(tx, r, 11);
    c->version = store_int(tx, r, 12);
    if (!store_null(tx, r, 13))
        rf_strcpy(c->created_key, sizeof c->created_key, store_text(tx, r, 13));
    RF_ASSERT(c->version >= 1 && c->amount_minor > 0 && c->refund_shortfall_minor >= 0);
}

/* A pending row past expires_at: it reads as expired, and only EXPIRED
 * moves it (its row is still pending). */
static bool lapsed(const struct rf_tx *tx, const struct rf_checkout *stored) {
    return stored->status == RF_CHECKOUT_PENDING && stored->expires_at_ms <= tx->now_ms;
}

/* Reads CHECKOUT_COLS as a caller sees them: a lapsed row reads as expired. */
static void read_checkout(struct rf_tx *tx, struct store_rows *r, void *out) {
    read_stored(tx, r, out);
    struct rf_checkout *c = out;
    if (lapsed(tx, c)) c->status = RF_CHECKOUT_EXPIRED;
}

static const char SQL_GET[] = "SELECT " CHECKOUT_COLS " FROM checkouts WHERE id = $1";
/* The row an event decides on, locked until COMMIT (PostgreSQL; SQLite's
 * one writer already excludes the others and the store drops the suffix). */
static const char SQL_LOCK_ID[] =
    "SELECT " CHECKOUT_COLS " FROM checkouts WHERE id = $1 AND provider = $2 FOR UPDATE";
static const char SQL_LOCK_REF[] =
    "SELECT " CHECKOUT_COLS " FROM checkouts WHERE provider = $1 AND provider_ref = $2"
    " FOR UPDATE";

static rf_err checkout_get(struct rf_tx *tx, const char *id, struct rf_checkout *out) {
    store_val p[1] = {SV_S(id)};
    rf_err err = store_query_one(tx, SQL_GET, p, 1, read_checkout, out);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_CHECKOUT_NOT_FOUND : err;
}

/* ---- items ---------------------------------------------------------------- */

enum item_type { ITEM_ENTITLEMENT, ITEM_CREDIT };
static const char *const item_type_names[] = {"entitlement", "credit", NULL};

struct item {
    int type;                /* enum item_type */
    const char *key;         /* entitlement */
    const char *account;     /* credit */
    int64_t amount_minor;    /* credit */
};

/* One element of "items": the same validator as every request (fields.h). */
static const struct rf_field item_fields[] = {
    RF_F(struct item, type, "type", RF_FIELD_CHOICE, true, .choices = item_type_names,
         .choice_text = "entitlement or credit"),
    RF_F(struct item, key, "key", RF_FIELD_ID, false, .max_len = RF_ID_CHARS_MAX),
    RF_F(struct item, account, "account", RF_FIELD_ID, false, .max_len = RF_ID_CHARS_MAX),
    RF_F(struct item, amount_minor, "amount_minor", RF_FIELD_INT, false, .min = 1,
         .max = INT64_MAX),
};

struct items {
    json_t *root;            /* the strings of item[] borrow from it */
    int n;
    struct item item[RF_CHECKOUT_ITEMS_MAX];
};

static void items_clear(struct items *it) {
    json_decref(it->root);
    memset(it, 0, sizeof *it);
}

static rf_err item_bad(struct rf_fault *fault, size_t i, const char *what) {
    rf_fault_set(fault, RF_ERR_INVALID_FIELD, "items", "in 'items[%zu]': %s", i, what);
    return RF_ERR_INVALID;
}

/* The rules across an item's members: an entitlement names a key and
 * nothing else, a credit an account (not a system one) and an amount; one
 * checkout grants a key once. */
static rf_err item_rules(const struct items *it, size_t i, struct rf_fault *fault) {
    const struct item *m = &it->item[i];
    if (m->type == ITEM_ENTITLEMENT) {
        if (!m->key || m->account || m->amount_minor)
            return item_bad(fault, i, "an entitlement item has 'key' and no 'account' or "
                                      "'amount_minor'");
        for (size_t j = 0; j < i; j++)
            if (it->item[j].type == ITEM_ENTITLEMENT && strcmp(it->item[j].key, m->key) == 0)
                return item_bad(fault, i, "the key is granted by an earlier item");
        return RF_OK;
    }
    if (!m->account || !m->amount_minor || m->key)
        return item_bad(fault, i, "a credit item has 'account' and 'amount_minor' and no 'key'");
    if (rf_account_id_reserved(m->account))
        return item_bad(fault, i, "'account' is in a namespace racefree reserves for itself");
    return RF_OK;
}

/* Parses items_json (a JSON array the field spec bounded) into it. */
static rf_err items_parse(const char *items_json, struct items *it, struct rf_fault *fault) {
    memset(it, 0, sizeof *it);
    it->root = json_loads(items_json, JSON_REJECT_DUPLICATES, NULL);
    size_t n = json_array_size(it->root);
    if (!json_is_array(it->root) || n < 1 || n > RF_CHECKOUT_ITEMS_MAX) {
        items_clear(it);
        rf_fault_set(fault, RF_ERR_INVALID_FIELD, "items", "field 'items' must be an array of "
                     "1 to %d items", RF_CHECKOUT_ITEMS_MAX);
        return RF_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        struct rf_decoded d = {0};
        struct rf_fault inner = {0};
        rf_err err = rf_fields_decode(json_array_get(it->root, i), item_fields,
                                      sizeof item_fields / sizeof item_fields[0], RF_AT_BODY,
                                      NULL, &it->item[i], &d, &inner);
        rf_decoded_clear(&d);
        if (err) err = item_bad(fault, i, inner.detail);
        if (!err) err = item_rules(it, i, fault);
        if (err) {
            items_clear(it);
            return err;
        }
        it->n++;
    }
    return RF_OK;
}

/* The create's rule across its body: its items. */
rf_err checkout_items_check(const void *req, struct rf_fault *fault) {
    struct items it;
    rf_err err = items_parse(((const struct rf_checkout_req *)req)->items_json, &it, fault);
    if (!err) items_clear(&it);
    return err;
}

/* ---- create --------------------------------------------------------------- */

static const char SQL_INSERT[] =
    "INSERT INTO checkouts (id, user_id, currency, amount_minor, provider, provider_ref,"
    " status, items, refund_shortfall, expires_at, created_at, updated_at, version,"
    " created_key) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, 0, $8, $9, $9, 1, $10)"
    " RETURNING " CHECKOUT_COLS;
static const char SQL_ITEM_INSERT[] =
    "INSERT INTO checkout_items (checkout_id, idx, type, entitlement_key, account_id,"
    " amount_minor) VALUES ($1, $2, $3, $4, $5, $6)";

/* A credit's account exists in the checkout's currency, now: the funds
 * land there when the checkout is paid, maybe days later. */
static rf_err items_accounts(struct rf_tx *tx, const struct items *it, const char *currency) {
    for (int i = 0; i < it->n; i++) {
        if (it->item[i].type != ITEM_CREDIT) continue;
        char cur[RF_CURRENCY_BYTES];
        rf_err err = ledger_account_currency(tx, it->item[i].account, cur);
        if (err) return err;
        if (strcmp(cur, currency) != 0) return RF_ERR_CURRENCY_MISMATCH;
    }
    return RF_OK;
}

static rf_err items_insert(struct rf_tx *tx, const char *id, const struct items *it) {
    rf_err err = RF_OK;
    for (int i = 0; i < it->n && !err; i++) {
        const struct item *m = &it->item[i];
        store_val p[6] = {SV_S(id), SV_I(i), SV_S(item_type_names[m->type]), SV_S(m->key),
                          SV_S(m->account), SV_I0(m->amount_minor)};
        err = store_exec_later(tx, SQL_ITEM_INSERT, p, 6);
    }
    return err;
}

/* A provider's events may arrive before the checkout they name exists, or
 * before its reference is bound: the webhook ledger keeps them (unmatched,
 * deferred) and they are applied here, in the transaction that makes the
 * checkout findable, so no event waits for an operator once it can match.
 * c is read again when one did. */
static rf_err events_waiting(struct rf_tx *tx, struct rf_checkout *c) {
    char status[RF_STATUS_BYTES] = "";
    rf_err err = webhook_events_match(tx, c->provider, c->id,
                                      c->provider_ref[0] ? c->provider_ref : NULL, status);
    if (err || !status[0]) return err;
    char id[RF_ID_BYTES];
    rf_strcpy(id, sizeof id, c->id);
    rf_checkout_clear(c);
    return checkout_get(tx, id, c);
}

rf_err op_checkout_create(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_checkout_req *r = req;
    struct rf_checkout *out = res;
    int64_t expires = r->expires_at_ms ? r->expires_at_ms : tx->now_ms + RF_CHECKOUT_TTL_MS_DEFAULT;
    if (expires <= tx->now_ms) return RF_ERR_INVALID; /* born expired (explained in api.c) */
    struct items it;
    rf_err err = items_parse(r->items_json, &it, NULL);
    RF_ASSERT(err != RF_ERR_INVALID); /* the row's body_check parsed them */
    if (err) return err;
    char *canonical = json_dumps(it.root, JSON_COMPACT | JSON_SORT_KEYS);
    err = canonical ? items_accounts(tx, &it, r->currency) : RF_ERR_NOMEM;
    char id[RF_ID_BYTES];
    rf_uuid7(tx->now_ms, id);
    if (!err) {
        store_val p[10] = {SV_S(id), SV_S(r->user_id), SV_S(r->currency),
                           SV_I(r->amount_minor), SV_S(r->provider), SV_S(r->provider_ref),
                           SV_S(canonical), SV_I(expires), SV_I(tx->now_ms),
                           SV_S(r->created_key)};
        err = store_query_one(tx, SQL_INSERT, p, 10, read_checkout, out);
        if (err == RF_ERR_CONFLICT) err = RF_ERR_PROVIDER_REF_TAKEN; /* UNIQUE decided */
    }
    if (!err) err = items_insert(tx, id, &it);
    /* born pending at version 1, with the items asked */
    RF_ASSERT(err || (out->status == RF_CHECKOUT_PENDING && out->version == 1));
    free(canonical);
    items_clear(&it);
    return err ? err : events_waiting(tx, out);
}

/* ---- transitions ------------------------------------------------------------ */

static const char SQL_TRANSITION[] =
    "INSERT INTO checkout_transitions (id, checkout_id, from_status, to_status, cause, applied,"
    " version, at, actor_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
static const char SQL_MOVE[] =
    "UPDATE checkouts SET status = $3, version = version + 1, updated_at = $4"
    " WHERE id = $1 AND status = $2 RETURNING " CHECKOUT_COLS;

/* c: the checkout after the attempt (its version); actor_key: the API key
 * that asked, NULL for a provider's event. */
static rf_err transition_record(struct rf_tx *tx, const struct rf_checkout *c, const char *from,
                                const char *to, const char *cause, bool applied,
                                const char *actor_key) {
    char tid[RF_ID_BYTES];
    rf_uuid7(tx->now_ms, tid);
    store_val p[9] = {SV_S(tid), SV_S(c->id), SV_S(from), SV_S(to), SV_S(cause),
                      SV_I(applied ? 1 : 0), SV_I(c->version), SV_I(tx->now_ms), SV_S(actor_key)};
    return store_exec_later(tx, SQL_TRANSITION, p, 9); /* a failure fails the operation */
}

/* from -> to on the locked row c (which the caller read in from), one
 * version up, recorded. */
static rf_err checkout_move(struct rf_tx *tx, struct rf_checkout *c, enum rf_checkout_status from,
                            enum rf_checkout_status to, const char *cause) {
    int64_t was = c->version;
    char id[RF_ID_BYTES];
    rf_strcpy(id, sizeof id, c->id);
    store_val p[4] = {SV_S(id), SV_S(checkout_status_names[from]),
                      SV_S(checkout_status_names[to]), SV_I(tx->now_ms)};
    rf_err err = store_query_one(tx, SQL_MOVE, p, 4, read_checkout, c);
    RF_ASSERT(err != RF_ERR_NOT_FOUND); /* the row is locked in `from` */
    if (err) return err;
    RF_ASSERT(c->version == was + 1 && c->status == to);
    return transition_record(tx, c, checkout_status_names[from], checkout_status_names[to],
                             cause, true, NULL);
}

/* ---- fulfilment and refund -------------------------------------------------- */

/* An item as stored, with what fulfilment did. */
struct stored_item {
    int64_t idx;
    bool credit;
    char key[RF_ID_BYTES];
    char account[RF_ID_BYTES];
    int64_t amount_minor;
    char entitlement_id[RF_ID_BYTES];   /* "" : this checkout granted nothing */
};
struct stored_items {
    int n;
    struct stored_item item[RF_CHECKOUT_ITEMS_MAX];
};

static const char SQL_ITEMS[] =
    "SELECT idx, type, entitlement_key, account_id, amount_minor, entitlement_id"
    " FROM checkout_items WHERE checkout_id = $1 ORDER BY idx";

static void read_item(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct stored_items *s = out;
    RF_ASSERT(s->n < RF_CHECKOUT_ITEMS_MAX);
    struct stored_item *m = &s->item[s->n++];
    memset(m, 0, sizeof *m);
    m->idx = store_int(tx, r, 0);
    m->credit = strcmp(store_text(tx, r, 1), item_type_names[ITEM_CREDIT]) == 0;
    if (!store_null(tx, r, 2)) rf_strcpy(m->key, sizeof m->key, store_text(tx, r, 2));
    if (!store_null(tx, r, 3)) rf_strcpy(m->account, sizeof m->account, store_text(tx, r, 3));
    m->amount_minor = store_null(tx, r, 4) ? 0 : store_int(tx, r, 4);
    if (!store_null(tx, r, 5))
        rf_strcpy(m->entitlement_id, sizeof m->entitlement_id, store_text(tx, r, 5));
}

static rf_err items_read(struct rf_tx *tx, const char *id, struct stored_items *s) {
    s->n = 0;
    store_val p[1] = {SV_S(id)};
    return store_query_each(tx, SQL_ITEMS, p, 1, RF_CHECKOUT_ITEMS_MAX, read_item, s);
}

/* The derived names: a grant's source, a credit's and a reversal's reference. */
static void source_of(const char *checkout_id, char out[RF_ID_BYTES]) {
    snprintf(out, RF_ID_BYTES, "checkout:%.100s", checkout_id);
}
static void reference_of(const char *checkout_id, int64_t idx, bool reversal, char out[RF_ID_BYTES]) {
    snprintf(out, RF_ID_BYTES, "checkout:%.100s:%lld%s", checkout_id, (long long)idx,
             reversal ? ":refund" : "");
}

static const char SQL_ITEM_GRANTED[] =
    "UPDATE checkout_items SET entitlement_id = $3 WHERE checkout_id = $1 AND idx = $2";
static const char SQL_ITEM_CREDITED[] =
    "UPDATE checkout_items SET transfer_id = $3 WHERE checkout_id = $1 AND idx = $2";
static const char SQL_ITEM_REVERSED[] =
    "UPDATE checkout_items SET reversal_id = $3, shortfall = $4"
    " WHERE checkout_id = $1 AND idx = $2";

/* The grant names the checkout as its source. A key the user already held
 * (active, from another source) is left alone, and this checkout records
 * that it granted nothing, so its refund revokes nothing. */
static rf_err fulfil_grant(struct rf_tx *tx, const struct rf_checkout *c,
                           const struct stored_item *m) {
    char source[RF_ID_BYTES];
    source_of(c->id, source);
    struct rf_grant_req g = {.user_id = c->user_id, .key = m->key, .source = source};
    struct rf_grant_res gr = {0};
    rf_err err = entitlement_grant_tx(tx, &g, &gr);
    bool granted = !err && gr.ent.granted_at_ms == tx->now_ms && gr.ent.source &&
                   strcmp(gr.ent.source, source) == 0;
    if (granted) {
        store_val p[3] = {SV_S(c->id), SV_I(m->idx), SV_S(gr.ent.id)};
        err = store_exec_later(tx, SQL_ITEM_GRANTED, p, 3);
    }
    rf_entitlement_clear(&gr.ent);
    return err;
}

/* funding:<CUR> -> the account, under the item's reference: a second
 * application finds the first (RF_ERR_DUPLICATE_REFERENCE) and moves nothing. */
static rf_err fulfil_credit(struct rf_tx *tx, const struct rf_checkout *c,
                            const struct stored_item *m) {
    char funding[RF_ID_BYTES], ref[RF_ID_BYTES];
    ledger_system_id(LEDGER_NS_FUNDING, c->currency, funding);
    reference_of(c->id, m->idx, false, ref);
    struct rf_transfer_req t = {.debit_account = funding, .credit_account = m->account,
                                .amount_minor = m->amount_minor, .currency = c->currency,
                                .reference = ref};
    struct rf_transfer_res tr = {0};
    rf_err err = ledger_transfer(tx, &t, &tr);
    const char *tid = err == RF_ERR_DUPLICATE_REFERENCE ? tr.existing_id : tr.transfer.id;
    if (err == RF_ERR_DUPLICATE_REFERENCE || !err) {
        store_val p[3] = {SV_S(c->id), SV_I(m->idx), SV_S(tid)};
        err = store_exec_later(tx, SQL_ITEM_CREDITED, p, 3);
    }
    rf_transfer_clear(&tr.transfer);
    return err;
}

static rf_err fulfil(struct rf_tx *tx, const struct rf_checkout *c) {
    struct stored_items *s = malloc(sizeof *s);
    if (!s) return RF_ERR_NOMEM;
    rf_err err = items_read(tx, c->id, s);
    for (int i = 0; i < s->n && !err; i++)
        err = s->item[i].credit ? fulfil_credit(tx, c, &s->item[i])
                                : fulfil_grant(tx, c, &s->item[i]);
    free(s);
    return err;
}

/* Revokes the entitlement this checkout granted, while it is still the
 * checkout's (its source): a key granted again since by another source is
 * that source's now and stays. */
static const char SQL_REVOKE[] =
    "UPDATE entitlements SET status = 'revoked', revoked_at = $2, updated_at = $2,"
    " version = version + 1 WHERE id = $1 AND status = 'active' AND source = $3";

static rf_err refund_grant(struct rf_tx *tx, const struct rf_checkout *c,
                           const struct stored_item *m) {
    if (!m->entitlement_id[0]) return RF_OK; /* it granted nothing */
    char source[RF_ID_BYTES];
    source_of(c->id, source);
    store_val p[3] = {SV_S(m->entitlement_id), SV_I(tx->now_ms), SV_S(source)};
    return store_exec(tx, SQL_REVOKE, p, 3, NULL);
}

/* The account row locked, so its balance cannot fall between the read and
 * the reversal (a read-modify-write would reverse money spent meanwhile). */
static const char SQL_ACCOUNT_AVAILABLE[] =
    "SELECT posted - pending_debits, allow_negative FROM accounts WHERE id = $1 FOR UPDATE";

struct available {
    int64_t available;
    bool allow_negative;
};

static void read_available(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct available *a = out;
    a->available = store_int(tx, r, 0);
    a->allow_negative = store_int(tx, r, 1) != 0;
}

/* The account -> funding:<CUR>, as much as the account may give: all of it
 * when it may go negative, else what it has; the rest is the item's
 * shortfall, for operators (never a refusal: the refund happened). */
static rf_err refund_credit(struct rf_tx *tx, const struct rf_checkout *c,
                            const struct stored_item *m, int64_t *shortfall) {
    struct available a = {0};
    store_val q[1] = {SV_S(m->account)};
    rf_err err = store_query_one(tx, SQL_ACCOUNT_AVAILABLE, q, 1, read_available, &a);
    if (err) return err == RF_ERR_NOT_FOUND ? RF_ERR_ACCOUNT_NOT_FOUND : err;
    int64_t have = a.available + deferred_posted(tx, m->account);
    int64_t amount = a.allow_negative ? m->amount_minor
                     : have <= 0      ? 0
                     : have < m->amount_minor ? have
                                              : m->amount_minor;
    char funding[RF_ID_BYTES], ref[RF_ID_BYTES];
    ledger_system_id(LEDGER_NS_FUNDING, c->currency, funding);
    reference_of(c->id, m->idx, true, ref);
    struct rf_transfer_res tr = {0};
    if (amount > 0) {
        struct rf_transfer_req t = {.debit_account = m->account, .credit_account = funding,
                                    .amount_minor = amount, .currency = c->currency,
                                    .reference = ref};
        err = ledger_transfer(tx, &t, &tr);
    }
    *shortfall += m->amount_minor - amount;
    store_val p[4] = {SV_S(c->id), SV_I(m->idx), amount > 0 ? SV_S(tr.transfer.id) : SV_N(),
                      SV_I(m->amount_minor - amount)};
    if (!err) err = store_exec_later(tx, SQL_ITEM_REVERSED, p, 4);
    rf_transfer_clear(&tr.transfer);
    return err;
}

static const char SQL_SHORTFALL[] = "UPDATE checkouts SET refund_shortfall = $2 WHERE id = $1";

static rf_err refund(struct rf_tx *tx, const struct rf_checkout *c) {
    struct stored_items *s = malloc(sizeof *s);
    if (!s) return RF_ERR_NOMEM;
    int64_t shortfall = 0;
    rf_err err = items_read(tx, c->id, s);
    for (int i = 0; i < s->n && !err; i++)
        err = s->item[i].credit ? refund_credit(tx, c, &s->item[i], &shortfall)
                                : refund_grant(tx, c, &s->item[i]);
    free(s);
    store_val p[2] = {SV_S(c->id), SV_I(shortfall)};
    if (!err && shortfall) err = store_exec(tx, SQL_SHORTFALL, p, 2, NULL);
    return err;
}

/* ---- events (flows.h) ------------------------------------------------------- */

static rf_err checkout_lock(struct rf_tx *tx, const char *provider, const char *checkout_id,
                            const char *provider_ref, struct rf_checkout *c) {
    if (checkout_id) {
        store_val p[2] = {SV_S(checkout_id), SV_S(provider)};
        return store_query_one(tx, SQL_LOCK_ID, p, 2, read_stored, c);
    }
    if (!provider_ref) return RF_ERR_NOT_FOUND;
    store_val p[2] = {SV_S(provider), SV_S(provider_ref)};
    return store_query_one(tx, SQL_LOCK_REF, p, 2, read_stored, c);
}

static const char *const event_causes[] = {"payment", "expiry", "refund"};
static const enum rf_checkout_status event_targets[] = {RF_CHECKOUT_PAID, RF_CHECKOUT_EXPIRED,
                                                        RF_CHECKOUT_REFUNDED};

/* Whether ev's edge leaves the stored state of c: PAID from pending (not
 * lapsed), EXPIRED from pending (lapsed or not), REFUNDED from fulfilled. */
static bool event_allowed(const struct rf_tx *tx, enum checkout_event ev,
                          const struct rf_checkout *c) {
    switch (ev) {
    case CHECKOUT_EV_PAID: return c->status == RF_CHECKOUT_PENDING && !lapsed(tx, c);
    case CHECKOUT_EV_EXPIRED: return c->status == RF_CHECKOUT_PENDING;
    case CHECKOUT_EV_REFUNDED: return c->status == RF_CHECKOUT_FULFILLED;
    }
    return false;
}

static rf_err event_apply(struct rf_tx *tx, enum checkout_event ev, struct rf_checkout *c,
                          enum rf_checkout_status from) {
    const char *cause = event_causes[ev];
    if (ev == CHECKOUT_EV_PAID) {
        rf_err err = checkout_move(tx, c, from, RF_CHECKOUT_PAID, cause);
        if (!err) err = fulfil(tx, c);
        return err ? err : checkout_move(tx, c, RF_CHECKOUT_PAID, RF_CHECKOUT_FULFILLED,
                                         "fulfillment");
    }
    if (ev == CHECKOUT_EV_REFUNDED) {
        rf_err err = refund(tx, c);
        return err ? err : checkout_move(tx, c, from, RF_CHECKOUT_REFUNDED, cause);
    }
    return checkout_move(tx, c, from, RF_CHECKOUT_EXPIRED, cause);
}

rf_err checkout_apply_event(struct rf_tx *tx, enum checkout_event ev, const char *provider,
                            const char *checkout_id, const char *provider_ref,
                            struct checkout_event_res *out) {
    RF_ASSERT(tx && out && provider && (unsigned)ev <= CHECKOUT_EV_REFUNDED);
    memset(out, 0, sizeof *out);
    struct rf_checkout c = {0};
    rf_err err = checkout_lock(tx, provider, checkout_id, provider_ref, &c);
    if (err == RF_ERR_NOT_FOUND) return RF_OK; /* unmatched: the ledger records it so */
    if (err) return err;
    out->matched = true;
    rf_strcpy(out->checkout_id, sizeof out->checkout_id, c.id);
    out->applied = event_allowed(tx, ev, &c);
    if (out->applied) {
        err = event_apply(tx, ev, &c, c.status);
    } else {
        if (lapsed(tx, &c)) c.status = RF_CHECKOUT_EXPIRED; /* as it reads */
        err = transition_record(tx, &c, checkout_status_names[c.status],
                                checkout_status_names[event_targets[ev]], event_causes[ev], false,
                                NULL);
    }
    rf_strcpy(out->status, sizeof out->status, checkout_status_names[c.status]);
    rf_checkout_clear(&c);
    return err;
}

/* ---- provider reference, cancel, reads (the operation table's rows) --------- */

/* One guarded UPDATE: it binds only a checkout with no reference yet, and
 * UNIQUE(provider, provider_ref) refuses a reference another holds. */
static const char SQL_BIND[] =
    "UPDATE checkouts SET provider_ref = $3, version = version + 1, updated_at = $4"
    " WHERE id = $1 AND provider = $2 AND provider_ref IS NULL RETURNING " CHECKOUT_COLS;

rf_err op_checkout_bind_ref(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_checkout_ref *r = req;
    struct rf_checkout *out = res;
    store_val p[4] = {SV_S(r->id), SV_S(r->provider), SV_S(r->ref), SV_I(tx->now_ms)};
    rf_err err = store_query_one(tx, SQL_BIND, p, 4, read_checkout, out);
    if (err == RF_ERR_CONFLICT) return RF_ERR_PROVIDER_REF_TAKEN;
    if (err == RF_OK) return events_waiting(tx, out); /* bound now */
    if (err != RF_ERR_NOT_FOUND) return err;
    /* Missed: absent, another provider's, or bound already. */
    err = checkout_get(tx, r->id, out);
    if (err) return err;
    if (strcmp(out->provider, r->provider) != 0) return RF_ERR_INVALID; /* explained in api.c */
    RF_ASSERT(out->provider_ref[0]); /* the guard missed on a bound row */
    return strcmp(out->provider_ref, r->ref) == 0 ? RF_OK : RF_ERR_PROVIDER_REF_BOUND;
}

/* If-Match in the same guarded UPDATE ($3 = 0: unconditional). */
static const char SQL_CANCEL[] =
    "UPDATE checkouts SET status = 'canceled', version = version + 1, updated_at = $2"
    " WHERE id = $1 AND status = 'pending' AND expires_at > $2 AND ($3 = 0 OR version = $3)"
    " RETURNING " CHECKOUT_COLS;

rf_err op_checkout_cancel(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_checkout_ref *r = req;
    struct rf_checkout *out = res;
    store_val p[3] = {SV_S(r->id), SV_I(tx->now_ms), SV_I(r->if_match_version)};
    rf_err err = store_query_one(tx, SQL_CANCEL, p, 3, read_checkout, out);
    if (!err) {
        RF_ASSERT(out->status == RF_CHECKOUT_CANCELED && out->version >= 2);
        return transition_record(tx, out, ST(PENDING), ST(CANCELED), "cancel", true,
                                 r->caller_key);
    }
    if (err != RF_ERR_NOT_FOUND) return err;
    err = checkout_get(tx, r->id, out);
    if (err) return err;
    if (r->if_match_version && out->version != r->if_match_version) {
        core_fact_version(tx, out->version);
        return RF_ERR_VERSION_MISMATCH;
    }
    core_fact_status(tx, checkout_status_names[out->status]);
    return RF_ERR_INVALID_STATE;
}

rf_err op_checkout_get(struct rf_tx *tx, const void *req, void *res) {
    return checkout_get(tx, ((const struct rf_checkout_ref *)req)->id, res);
}

/* Commit order (core/listing.h): list_pos is column 14. The filter reads
 * the state as a caller sees it: a lapsed pending row is expired. */
static const char SQL_LIST[] =
    "SELECT " CHECKOUT_COLS ", list_pos FROM checkouts WHERE user_id = $4 AND "
    LIST_AFTER("id") " AND ($5 = '' OR (status = $5 AND NOT (status = 'pending'"
    " AND expires_at <= $6)) OR ($5 = 'expired' AND status = 'pending' AND expires_at <= $6))"
    LIST_ORDER("id") " LIMIT $7";
static const char SQL_LIST_POS[] = "SELECT list_pos FROM checkouts WHERE id = $1";

rf_err op_checkout_list(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_list_req *r = req;
    struct rf_checkout_page *out = res;
    RF_ASSERT(r->status >= RF_CHECKOUTS_ALL && r->status <= RF_CHECKOUTS_REFUNDED);
    struct list_page lp = {.pos_col = 14, .key_col = 0, .pos_sql = SQL_LIST_POS,
                           .read_row = read_checkout, .clear_item = clear_checkout,
                           LIST_INTO(out, core_limit((int)r->limit))};
    rf_err err = list_cursor_parse(r->after, &lp.after);
    if (err) return err;
    const char *status = r->status == RF_CHECKOUTS_ALL ? "" : checkout_status_names[r->status - 1];
    store_val p[7] = {SV_I(lp.after.pos), SV_S(lp.after.key), LIST_HORIZON_SLOT, SV_S(r->scope),
                      SV_S(status), SV_I(tx->now_ms), SV_I(lp.limit)};
    err = list_page_run(tx, SQL_LIST, p, 7, &lp);
    out->n = lp.n;
    return err;
}

/* ---- the public functions: thin wrappers over rf_op_run ------------------- */

rf_err rf_checkout_create(rf *db, const struct rf_checkout_req *req, struct rf_checkout *out,
                          struct rf_idem *idem) {
    return rf_op_run(db, RF_OP_CHECKOUT_CREATE, req, out, idem, NULL);
}

rf_err rf_checkout_bind_ref(rf *db, const struct rf_checkout_ref *req, struct rf_checkout *out) {
    return rf_op_run(db, RF_OP_CHECKOUT_BIND_REF, req, out, NULL, NULL);
}

rf_err rf_checkout_get(rf *db, const char *id, struct rf_checkout *out) {
    struct rf_checkout_ref req = {.id = id};
    return rf_op_run(db, RF_OP_CHECKOUT_GET, &req, out, NULL, NULL);
}

rf_err rf_checkout_cancel(rf *db, const struct rf_checkout_ref *req, struct rf_checkout *out) {
    return rf_op_run(db, RF_OP_CHECKOUT_CANCEL, req, out, NULL, NULL);
}

rf_err rf_checkout_list(rf *db, const char *user_id, const char *status, const char *after,
                        int limit, struct rf_checkout_page *out) {
    int64_t f = RF_CHECKOUTS_ALL;
    if (status && *status) {
        f = -1;
        for (int64_t i = RF_CHECKOUTS_PENDING; i <= RF_CHECKOUTS_REFUNDED && f < 0; i++)
            if (strcmp(status, checkout_status_names[i - 1]) == 0) f = i;
    }
    if (f < 0) {
        memset(out, 0, sizeof *out);
        return RF_ERR_INVALID;
    }
    struct rf_list_req req = {.scope = user_id, .status = f, .after = after,
                              .limit = limit > 0 ? limit : 0};
    return rf_op_run(db, RF_OP_CHECKOUT_LIST, &req, out, NULL, NULL);
}

/* ---- the ledger check's checkouts invariant (flows.h) ---------------------- */

/* A fulfilled or refunded checkout has exactly its items' effects: each
 * credit's transfer (funding -> account, its amount, its reference), each
 * grant's entitlement; a refunded one each credit's reversal (account ->
 * funding, the amount less the item's shortfall, or none when all fell
 * short) and shortfalls that add up to the checkout's. Nothing more: no
 * other checkout has effects (paid is never committed: fulfilment is in its
 * transaction), and no transfer or grant in the checkout namespace is
 * without its item. */
#define ITEM_OF "FROM checkout_items i JOIN checkouts c ON c.id = i.checkout_id"
#define DONE "c.status IN ('fulfilled','refunded')"
static const char SQL_CHECK[] =
    "SELECT (SELECT count(*) FROM checkouts WHERE status IN ('paid','fulfilled','refunded')),"
    " (SELECT count(*) FROM checkouts WHERE status = 'paid')"
    " + (SELECT count(*) " ITEM_OF " WHERE i.type = 'credit' AND " DONE " AND NOT EXISTS ("
    "   SELECT 1 FROM transfers t WHERE t.id = i.transfer_id"
    "   AND t.reference = 'checkout:' || c.id || ':' || i.idx"
    "   AND t.debit_account = 'funding:' || c.currency AND t.credit_account = i.account_id"
    "   AND t.amount_minor = i.amount_minor AND t.status = 'posted'))"
    " + (SELECT count(*) " ITEM_OF " WHERE i.type = 'credit' AND c.status = 'refunded' AND NOT ("
    "   (i.shortfall = i.amount_minor AND i.reversal_id IS NULL) OR EXISTS ("
    "   SELECT 1 FROM transfers t WHERE t.id = i.reversal_id"
    "   AND t.reference = 'checkout:' || c.id || ':' || i.idx || ':refund'"
    "   AND t.debit_account = i.account_id AND t.credit_account = 'funding:' || c.currency"
    "   AND t.amount_minor = i.amount_minor - i.shortfall AND t.status = 'posted')))"
    " + (SELECT count(*) " ITEM_OF " WHERE (NOT " DONE " AND (i.transfer_id IS NOT NULL"
    "   OR i.entitlement_id IS NOT NULL)) OR (c.status <> 'refunded'"
    "   AND (i.reversal_id IS NOT NULL OR i.shortfall <> 0)))"
    " + (SELECT count(*) " ITEM_OF " WHERE i.entitlement_id IS NOT NULL AND NOT EXISTS ("
    "   SELECT 1 FROM entitlements e WHERE e.id = i.entitlement_id AND e.user_id = c.user_id"
    "   AND e.entitlement_key = i.entitlement_key))"
    " + (SELECT count(*) FROM transfers t WHERE t.reference LIKE 'checkout:%'"
    "   AND NOT EXISTS (SELECT 1 FROM checkout_items i WHERE i.transfer_id = t.id)"
    "   AND NOT EXISTS (SELECT 1 FROM checkout_items i WHERE i.reversal_id = t.id))"
    " + (SELECT count(*) FROM entitlements e WHERE e.source LIKE 'checkout:%'"
    "   AND NOT EXISTS (SELECT 1 FROM checkout_items i WHERE i.entitlement_id = e.id))"
    " + (SELECT count(*) FROM checkouts c WHERE c.refund_shortfall <>"
    "   (SELECT COALESCE(sum(i.shortfall), 0) FROM checkout_items i WHERE i.checkout_id = c.id))";

struct check_counts {
    int64_t checked, mismatched;
};

static void read_check(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct check_counts *c = out;
    c->checked = store_int(tx, r, 0);
    c->mismatched = store_int(tx, r, 1);
}

rf_err checkouts_check(struct rf_tx *tx, int64_t *checked, int64_t *mismatched) {
    struct check_counts c = {0, 0};
    rf_err err = store_query_one(tx, SQL_CHECK, NULL, 0, read_check, &c);
    *checked = c.checked;
    *mismatched = c.mismatched;
    RF_ASSERT(err || (c.checked >= 0 && c.mismatched >= 0));
    return err;
}
