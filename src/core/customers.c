/*
 * customers.c - provider-customer bindings (seed 002).
 *
 * The race in the seed: "insert ... on conflict do nothing", then a separate
 * fallback query outside any transaction, which can report success while
 * user-1 is mapped to another request's customer. Here the insert (PRIMARY
 * KEY (provider, user_id) and UNIQUE (provider, customer_id): first writer
 * wins in both directions) and the read that explains a conflict run in the
 * same transaction; the answer is created, exactly-this-binding-exists, or a
 * conflict naming the binding in the way. Never a success for another
 * customer.
 *
 * Unbinding deletes the row, so a binding made again later takes its version
 * from version_counters (versions.c): above every version its user's key
 * and its customer's key were ever given. A stale If-Match (DELETE ... WHERE
 * version = $n) can then never match a newer binding, whichever view (by
 * user or by customer) the client read it from.
 */
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "core/core.h"
#include "core/ops.h"

#define BINDING_COLS "provider, user_id, customer_id, created_at, version"

static const char SQL_BIND[] =
    "INSERT INTO customer_bindings (provider, user_id, customer_id, created_at, version)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING " BINDING_COLS;
static const char SQL_IN_THE_WAY[] =
    "SELECT " BINDING_COLS " FROM customer_bindings WHERE provider = $1"
    " AND (user_id = $2 OR customer_id = $3)";
static const char SQL_BY_USER[] =
    "SELECT " BINDING_COLS " FROM customer_bindings WHERE provider = $1 AND user_id = $2";
static const char SQL_BY_CUSTOMER[] =
    "SELECT " BINDING_COLS " FROM customer_bindings WHERE provider = $1 AND customer_id = $2";
static const char SQL_UNBIND[] =
    "DELETE FROM customer_bindings WHERE provider = $1 AND user_id = $2"
    " AND (CAST($3 AS BIGINT) = 0 OR version = $3) RETURNING " BINDING_COLS;

static void read_binding(struct rf_tx *tx, struct store_rows *r, void *out) {
    struct rf_binding *b = out;
    memset(b, 0, sizeof *b);
    rf_strcpy(b->provider, sizeof b->provider, store_text(tx, r, 0));
    rf_strcpy(b->user_id, sizeof b->user_id, store_text(tx, r, 1));
    rf_strcpy(b->customer_id, sizeof b->customer_id, store_text(tx, r, 2));
    b->created_at_ms = store_int(tx, r, 3);
    b->version = store_int(tx, r, 4);
}

struct bind_args {
    const char *user_id, *provider, *customer_id;
    struct rf_bind_res *res;
    int rows;
};

/* Sorts the (at most two) bindings in the way into the result. */
static void read_in_the_way(struct rf_tx *tx, struct store_rows *r, void *ctx) {
    struct bind_args *a = ctx;
    struct rf_binding b;
    read_binding(tx, r, &b);
    bool same_user = strcmp(b.user_id, a->user_id) == 0;
    bool same_customer = strcmp(b.customer_id, a->customer_id) == 0;
    if (same_user && same_customer) {
        a->res->binding = b; /* exactly this binding exists */
    } else if (same_user) {
        rf_strcpy(a->res->existing_customer_id, RF_ID_BYTES, b.customer_id);
        a->res->binding = b;
    } else {
        RF_ASSERT(same_customer);
        rf_strcpy(a->res->existing_user_id, RF_ID_BYTES, b.user_id);
        if (!a->res->existing_customer_id[0]) a->res->binding = b;
    }
    a->rows++;
}

/* The version a binding made now gets: above every version given to this
 * user's binding and to this customer's, so it never repeats for either
 * natural key. The counters stay row-locked to the end of the transaction
 * (user before customer in every bind, so two binds cannot deadlock). If the
 * bind ends up creating nothing, a committed number is merely skipped. */
static rf_err take_version(struct rf_tx *tx, const struct bind_args *a, int64_t *out) {
    int64_t by_user = 0, by_customer = 0;
    rf_err err = core_version_next(tx, "binding_user", a->provider, a->user_id, 1, &by_user);
    if (!err)
        err = core_version_next(tx, "binding_customer", a->provider, a->customer_id, by_user,
                                &by_customer);
    if (!err && by_customer > by_user) /* lift the user's counter to the same number */
        err = core_version_next(tx, "binding_user", a->provider, a->user_id, by_customer,
                                &by_user);
    RF_ASSERT(err || by_user == by_customer);
    *out = by_customer;
    return err;
}

static rf_err bind_tx(struct rf_tx *tx, struct bind_args *a) {
    RF_ASSERT(a->res->binding.version == 0 && !a->res->created); /* each attempt starts zeroed */
    int64_t version = 0;
    rf_err err = take_version(tx, a, &version);
    if (err) return err;
    store_val p[5] = {SV_S(a->provider), SV_S(a->user_id), SV_S(a->customer_id),
                      SV_I(tx->now_ms), SV_I(version)};
    err = store_query_one(tx, SQL_BIND, p, 5, read_binding, &a->res->binding);
    if (err != RF_ERR_NOT_FOUND) {
        a->res->created = err == RF_OK;
        /* made: exactly this pair, at the version taken for it */
        RF_ASSERT(err || (a->res->binding.version == version &&
                          strcmp(a->res->binding.customer_id, a->customer_id) == 0 &&
                          strcmp(a->res->binding.user_id, a->user_id) == 0));
        return err;
    }
    /* A conflict: the rows in the way are committed (the insert waited for
     * them), so this read in the same transaction sees them. */
    a->rows = 0;
    err = store_query_each(tx, SQL_IN_THE_WAY, p, 3, 2, read_in_the_way, a);
    if (err) return err;
    if (a->rows == 0) return RF_ERR_RETRY; /* unbound meanwhile: run again */
    if (a->res->existing_customer_id[0] || a->res->existing_user_id[0])
        return RF_ERR_BINDING_CONFLICT;
    return RF_OK; /* 200: exactly this binding */
}

/* ---- the operations (rows of core/api.c) ------------------------------------ */

rf_err op_customer_bind(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_bind_req *r = req;
    struct bind_args a = {r->user_id, r->provider, r->customer_id, res, 0};
    return bind_tx(tx, &a);
}

/* The one binding whose provider and key (user or customer) match. */
static rf_err lookup(struct rf_tx *tx, const char *sql, const char *provider, const char *key,
                     struct rf_binding *out) {
    store_val p[2] = {SV_S(provider), SV_S(key)};
    rf_err err = store_query_one(tx, sql, p, 2, read_binding, out);
    RF_ASSERT(err || (strcmp(out->provider, provider) == 0 && out->version >= 1));
    return err == RF_ERR_NOT_FOUND ? RF_ERR_BINDING_NOT_FOUND : err;
}

rf_err op_customer_get(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_bind_req *r = req;
    rf_err err = lookup(tx, SQL_BY_USER, r->provider, r->user_id, res);
    RF_ASSERT(err || strcmp(((struct rf_binding *)res)->user_id, r->user_id) == 0);
    return err;
}

rf_err op_customer_lookup(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_bind_req *r = req;
    rf_err err = lookup(tx, SQL_BY_CUSTOMER, r->provider, r->customer_id, res);
    RF_ASSERT(err || strcmp(((struct rf_binding *)res)->customer_id, r->customer_id) == 0);
    return err;
}

rf_err op_customer_unbind(struct rf_tx *tx, const void *req, void *res) {
    const struct rf_bind_req *a = req;
    struct rf_binding *out = res;
    store_val p[3] = {SV_S(a->provider), SV_S(a->user_id), SV_I(a->if_match_version)};
    rf_err err = store_query_one(tx, SQL_UNBIND, p, 3, read_binding, out);
    /* deleted: this user's binding, the very version If-Match named */
    RF_ASSERT(err || ((a->if_match_version == 0 || out->version == a->if_match_version) &&
                      strcmp(out->user_id, a->user_id) == 0));
    if (err != RF_ERR_NOT_FOUND) return err;
    /* Nothing deleted. Without If-Match a binding this read finds was
     * committed after the delete's snapshot (a bind racing this unbind): the
     * unbind came first and found nothing, never a version mismatch. */
    if (a->if_match_version == 0) return RF_ERR_BINDING_NOT_FOUND;
    err = store_query_one(tx, SQL_BY_USER, p, 2, read_binding, out);
    if (!err) core_fact_version(tx, out->version);
    return err == RF_ERR_NOT_FOUND ? RF_ERR_BINDING_NOT_FOUND
           : err                   ? err
                                   : RF_ERR_VERSION_MISMATCH;
}

/* ---- the public functions: thin wrappers over rf_op_run ------------------- */

/* rf_op_run clears a failure's result and shows what the row's extras name
 * (who holds what, with RF_ERR_BINDING_CONFLICT) in the fault: this puts
 * them back where a C caller of rf_customer_bind reads them. */
static rf_err bind_extras_kept(rf_err err, const struct rf_fault *f, struct rf_bind_res *res) {
    const struct rf_op_row *row = rf_op_row(RF_OP_CUSTOMER_BIND);
    for (size_t i = 0; i < row->n_extras; i++) {
        const struct rf_op_extra *x = &row->extras[i];
        RF_ASSERT(x->of_result && x->offset + RF_ID_BYTES <= sizeof *res);
        for (int k = 0; x->err == err && k < 2; k++)
            if (f->extra[k].name && strcmp(f->extra[k].name, x->name) == 0)
                rf_strcpy((char *)res + x->offset, RF_ID_BYTES, f->extra[k].value);
    }
    return err;
}

rf_err rf_customer_bind(rf *db, const char *user_id, const char *provider,
                        const char *customer_id, struct rf_bind_res *res) {
    struct rf_bind_req req = {user_id, provider, customer_id, 0};
    struct rf_fault fault;
    rf_err err = rf_op_run(db, RF_OP_CUSTOMER_BIND, &req, res, NULL, &fault);
    return bind_extras_kept(err, &fault, res);
}

rf_err rf_customer_get_by_user(rf *db, const char *user_id, const char *provider,
                               struct rf_binding *out) {
    struct rf_bind_req req = {.user_id = user_id, .provider = provider};
    return rf_op_run(db, RF_OP_CUSTOMER_GET, &req, out, NULL, NULL);
}

rf_err rf_customer_get_by_customer(rf *db, const char *provider, const char *customer_id,
                                   struct rf_binding *out) {
    struct rf_bind_req req = {.provider = provider, .customer_id = customer_id};
    return rf_op_run(db, RF_OP_CUSTOMER_LOOKUP, &req, out, NULL, NULL);
}

rf_err rf_customer_unbind(rf *db, const char *user_id, const char *provider,
                          int64_t if_match_version, struct rf_binding *out) {
    struct rf_bind_req req = {user_id, provider, NULL, if_match_version};
    return rf_op_run(db, RF_OP_CUSTOMER_UNBIND, &req, out, NULL, NULL);
}
