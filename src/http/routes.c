/*
 * routes.c - THE route table and the one path that every matched request
 * takes before its handler: authentication, the role check, path parameter
 * validation. Handlers therefore start with a known caller and valid ids.
 *
 * Routing is on the raw path; each parameter is then percent-decoded by
 * itself (http/uri.h). Path parameter errors answer 400 with code
 * `invalid_path_param` (a code of its own, not `invalid_request`, so clients
 * can tell a bad URL from a bad body); the detail names the parameter. A
 * request body must be JSON (415 otherwise), checked here once for every
 * route.
 */
#include "http/routes.h"

#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/ids.h"
#include "core/api.h"
#include "core/ratelimit.h"
#include "http/handlers.h"
#include "http/request.h"
#include "http/respond.h"
#include "http/uri.h"

#define ADMIN RF_ROLE_ADMIN
#define SERVICE RF_ROLE_SERVICE
#define WORKER RF_ROLE_WORKER
#define READONLY RF_ROLE_READONLY
#define ENT_PATH "/v1/users/{user_id}/entitlements/{key}"

/* A route with its own handler (fn), a hidden test route, and a route that
 * runs an operation (h_op.c): its view, how it answers, its Idempotency-Key. */
#define ROUTE(m, pat, roles_, fn_) {.method = m, .pattern = pat, .roles = roles_, .fn = fn_}
#define HIDDEN(m, pat, roles_, fn_) \
    {.method = m, .pattern = pat, .roles = roles_, .fn = fn_, .hidden = true}
#define OP(m, pat, roles_, op_, view_, reply_, idem_)                                  \
    {.method = m, .pattern = pat, .roles = roles_, .op = op_, .view = &(view_),       \
     .reply = reply_, .idem = idem_}
#define LIST(m, pat, roles_, op_, view_, list_)                                           \
    {.method = m, .pattern = pat, .roles = roles_, .op = op_, .view = &(view_),       \
     .reply = RF_REPLY_PAGE, .list = &(list_)}
#define BINDING_PATH "/v1/users/{user_id}/customers/{provider}"
#define NOTE_PATH "/v1/users/{user_id}/notifications"

const struct rf_route rf_routes[] = {
    ROUTE("GET", "/healthz", RF_ROLES_PUBLIC, h_healthz),
    ROUTE("GET", "/readyz", RF_ROLES_PUBLIC, h_readyz),
    ROUTE("GET", "/metrics", RF_ROLES_PUBLIC, h_metrics),

    OP("PUT", ENT_PATH, ADMIN | SERVICE, RF_OP_ENTITLEMENT_GRANT, rf_view_entitlement,
       RF_REPLY_UPSERT, RF_IDEM_OPTIONAL),
    OP("DELETE", ENT_PATH, ADMIN | SERVICE, RF_OP_ENTITLEMENT_REVOKE, rf_view_entitlement,
       RF_REPLY_EMPTY, RF_IDEM_NONE),
    OP("GET", ENT_PATH, ADMIN | SERVICE | READONLY, RF_OP_ENTITLEMENT_GET, rf_view_entitlement,
       RF_REPLY_ENTITY, RF_IDEM_NONE),
    LIST("GET", "/v1/users/{user_id}/entitlements", ADMIN | SERVICE | READONLY,
         RF_OP_ENTITLEMENT_LIST, rf_view_entitlement, rf_list_entitlements),

    OP("POST", "/v1/keys", ADMIN, RF_OP_KEY_CREATE, rf_view_key_created, RF_REPLY_CREATED,
       RF_IDEM_OPTIONAL),
    LIST("GET", "/v1/keys", ADMIN, RF_OP_KEY_LIST, rf_view_key, rf_list_keys),
    OP("GET", "/v1/keys/{id}", ADMIN, RF_OP_KEY_GET, rf_view_key, RF_REPLY_ENTITY, RF_IDEM_NONE),
    OP("DELETE", "/v1/keys/{id}", ADMIN, RF_OP_KEY_REVOKE, rf_view_key, RF_REPLY_EMPTY,
       RF_IDEM_NONE),

    OP("POST", "/v1/accounts", ADMIN | SERVICE, RF_OP_ACCOUNT_CREATE, rf_view_account,
       RF_REPLY_UPSERT, RF_IDEM_OPTIONAL),
    LIST("GET", "/v1/accounts", ADMIN | SERVICE | READONLY, RF_OP_ACCOUNT_LIST, rf_view_account,
         rf_list_accounts),
    OP("GET", "/v1/accounts/{id}", ADMIN | SERVICE | READONLY, RF_OP_ACCOUNT_GET,
       rf_view_account, RF_REPLY_ENTITY, RF_IDEM_NONE),
    LIST("GET", "/v1/accounts/{id}/entries", ADMIN | SERVICE | READONLY, RF_OP_ACCOUNT_ENTRIES,
         rf_view_entry, rf_list_entries),
    OP("POST", "/v1/accounts/{id}/credits", ADMIN | SERVICE, RF_OP_CREDIT_APPLY, rf_view_transfer,
       RF_REPLY_CREATED, RF_IDEM_REQUIRED),

    OP("POST", "/v1/transfers", ADMIN | SERVICE, RF_OP_TRANSFER_CREATE, rf_view_transfer,
       RF_REPLY_CREATED, RF_IDEM_REQUIRED),
    LIST("GET", "/v1/transfers", ADMIN | SERVICE | READONLY, RF_OP_TRANSFER_LIST,
         rf_view_transfer, rf_list_transfers),
    OP("GET", "/v1/transfers/{id}", ADMIN | SERVICE | READONLY, RF_OP_TRANSFER_GET,
       rf_view_transfer, RF_REPLY_ENTITY, RF_IDEM_NONE),
    OP("POST", "/v1/transfers/{id}/post", ADMIN | SERVICE, RF_OP_TRANSFER_POST, rf_view_transfer,
       RF_REPLY_ENTITY, RF_IDEM_REQUIRED),
    OP("POST", "/v1/transfers/{id}/void", ADMIN | SERVICE, RF_OP_TRANSFER_VOID, rf_view_transfer,
       RF_REPLY_ENTITY, RF_IDEM_REQUIRED),

    OP("POST", "/v1/payouts", ADMIN | SERVICE, RF_OP_PAYOUT_CREATE, rf_view_payout,
       RF_REPLY_CREATED, RF_IDEM_REQUIRED),
    LIST("GET", "/v1/payouts", ADMIN | SERVICE | READONLY, RF_OP_PAYOUT_LIST, rf_view_payout,
         rf_list_payouts),
    OP("GET", "/v1/payouts/{id}", ADMIN | SERVICE | READONLY, RF_OP_PAYOUT_GET, rf_view_payout,
       RF_REPLY_ENTITY, RF_IDEM_NONE),
    /* A worker records what the provider said: attempts and outcomes, and
     * nothing else (it cannot create, read or move money otherwise). */
    OP("POST", "/v1/payouts/{id}/attempts", ADMIN | SERVICE | WORKER, RF_OP_PAYOUT_ATTEMPT,
       rf_view_payout, RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),
    OP("POST", "/v1/payouts/{id}/succeeded", ADMIN | SERVICE | WORKER, RF_OP_PAYOUT_SUCCEEDED,
       rf_view_payout, RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),
    OP("POST", "/v1/payouts/{id}/failed", ADMIN | SERVICE | WORKER, RF_OP_PAYOUT_FAILED,
       rf_view_payout, RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),

    OP("PUT", BINDING_PATH, ADMIN | SERVICE, RF_OP_CUSTOMER_BIND, rf_view_binding,
       RF_REPLY_UPSERT, RF_IDEM_NONE),
    OP("GET", BINDING_PATH, ADMIN | SERVICE | READONLY, RF_OP_CUSTOMER_GET, rf_view_binding,
       RF_REPLY_ENTITY, RF_IDEM_NONE),
    OP("DELETE", BINDING_PATH, ADMIN, RF_OP_CUSTOMER_UNBIND, rf_view_binding, RF_REPLY_GONE,
       RF_IDEM_NONE),
    OP("GET", "/v1/customers/{provider}/{customer_id}", ADMIN | SERVICE | READONLY,
       RF_OP_CUSTOMER_LOOKUP, rf_view_binding, RF_REPLY_ENTITY, RF_IDEM_NONE),

    OP("POST", "/v1/approvals", ADMIN | SERVICE, RF_OP_APPROVAL_CREATE, rf_view_approval,
       RF_REPLY_CREATED, RF_IDEM_OPTIONAL),
    LIST("GET", "/v1/approvals", ADMIN | SERVICE | READONLY, RF_OP_APPROVAL_LIST,
         rf_view_approval, rf_list_approvals),
    OP("GET", "/v1/approvals/{id}", ADMIN | SERVICE | READONLY, RF_OP_APPROVAL_GET,
       rf_view_approval, RF_REPLY_ENTITY, RF_IDEM_NONE),
    OP("POST", "/v1/approvals/{id}/approve", ADMIN | SERVICE, RF_OP_APPROVAL_APPROVE,
       rf_view_approval, RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),
    OP("POST", "/v1/approvals/{id}/reject", ADMIN | SERVICE, RF_OP_APPROVAL_REJECT,
       rf_view_approval, RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),
    OP("POST", "/v1/approvals/{id}/cancel", ADMIN | SERVICE, RF_OP_APPROVAL_CANCEL,
       rf_view_approval, RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),

    OP("POST", "/v1/checkouts", ADMIN | SERVICE, RF_OP_CHECKOUT_CREATE, rf_view_checkout,
       RF_REPLY_CREATED, RF_IDEM_REQUIRED),
    OP("GET", "/v1/checkouts/{id}", ADMIN | SERVICE | READONLY, RF_OP_CHECKOUT_GET,
       rf_view_checkout, RF_REPLY_ENTITY, RF_IDEM_NONE),
    OP("PUT", "/v1/checkouts/{id}/provider-ref", ADMIN | SERVICE, RF_OP_CHECKOUT_BIND_REF,
       rf_view_checkout, RF_REPLY_ENTITY, RF_IDEM_NONE),
    OP("POST", "/v1/checkouts/{id}/cancel", ADMIN | SERVICE, RF_OP_CHECKOUT_CANCEL,
       rf_view_checkout, RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),
    LIST("GET", "/v1/users/{user_id}/checkouts", ADMIN | SERVICE | READONLY,
         RF_OP_CHECKOUT_LIST, rf_view_checkout, rf_list_checkouts),
    /* Webhook deliveries authenticate by the provider's signature, checked
     * by the operation against the provider's secrets (no API key). */
    ROUTE("POST", "/v1/webhooks/{provider}", RF_ROLES_PUBLIC, h_webhook_receive),
    LIST("GET", "/v1/webhook-events", ADMIN, RF_OP_WEBHOOK_EVENT_LIST, rf_view_webhook_event,
         rf_list_webhook_events),
    LIST("GET", "/v1/webhook-secrets", ADMIN, RF_OP_WEBHOOK_SECRET_LIST, rf_view_webhook_secret,
         rf_list_webhook_secrets),
    OP("PUT", "/v1/webhook-secrets/{provider}", ADMIN, RF_OP_WEBHOOK_SECRET_SET,
       rf_view_webhook_secret, RF_REPLY_ENTITY, RF_IDEM_NONE),
    OP("POST", "/v1/webhook-secrets/{provider}/rotate", ADMIN, RF_OP_WEBHOOK_SECRET_ROTATE,
       rf_view_webhook_secret, RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),
    /* Scheduled runs: any HTTP trigger of a scheduled job is admin only. */
    ROUTE("GET", "/v1/schedules", ADMIN | READONLY, h_schedule_list),
    ROUTE("POST", "/v1/schedules/{name}/run", ADMIN, h_schedule_run),
    ROUTE("GET", "/v1/schedules/{name}/runs", ADMIN | READONLY, h_schedule_runs),

    OP("POST", "/v1/leases/{name}/acquire", ADMIN | SERVICE, RF_OP_LEASE_ACQUIRE, rf_view_lease,
       RF_REPLY_CREATED, RF_IDEM_OPTIONAL),
    OP("POST", "/v1/leases/{name}/renew", ADMIN | SERVICE, RF_OP_LEASE_RENEW, rf_view_lease,
       RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),
    OP("POST", "/v1/leases/{name}/release", ADMIN | SERVICE, RF_OP_LEASE_RELEASE, rf_view_lease,
       RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),
    OP("GET", "/v1/leases/{name}", ADMIN | SERVICE | READONLY, RF_OP_LEASE_GET, rf_view_lease,
       RF_REPLY_ENTITY, RF_IDEM_NONE),
    /* A batch is many transactions under the payouts lease: its own handler
     * runs it on this worker (h_leases.c). Admin only. */
    ROUTE("POST", "/v1/payout-batches", ADMIN, h_payout_batch_create),
    OP("GET", "/v1/payout-batches/{id}", ADMIN | SERVICE | READONLY, RF_OP_PAYOUT_BATCH_GET,
       rf_view_payout_batch, RF_REPLY_ENTITY, RF_IDEM_NONE),

    /* The job queue: producers (service, admin) enqueue and cancel; workers
     * (worker, service) claim and answer for what they claimed, by token. */
    OP("POST", "/v1/jobs", ADMIN | SERVICE, RF_OP_JOB_ENQUEUE, rf_view_job, RF_REPLY_UPSERT,
       RF_IDEM_OPTIONAL),
    OP("GET", "/v1/jobs/{id}", ADMIN | SERVICE | WORKER | READONLY, RF_OP_JOB_GET, rf_view_job,
       RF_REPLY_ENTITY, RF_IDEM_NONE),
    OP("POST", "/v1/jobs/{id}/heartbeat", SERVICE | WORKER, RF_OP_JOB_HEARTBEAT, rf_view_job,
       RF_REPLY_ENTITY, RF_IDEM_NONE),
    OP("POST", "/v1/jobs/{id}/complete", SERVICE | WORKER, RF_OP_JOB_COMPLETE, rf_view_job,
       RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),
    OP("POST", "/v1/jobs/{id}/fail", SERVICE | WORKER, RF_OP_JOB_FAIL, rf_view_job,
       RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),
    OP("POST", "/v1/jobs/{id}/cancel", ADMIN | SERVICE, RF_OP_JOB_CANCEL, rf_view_job,
       RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),
    OP("POST", "/v1/queues/{queue}/claim", SERVICE | WORKER, RF_OP_JOB_CLAIM, rf_view_job,
       RF_REPLY_ITEMS, RF_IDEM_NONE),
    OP("GET", "/v1/queues/{queue}/stats", ADMIN | SERVICE | WORKER | READONLY,
       RF_OP_QUEUE_STATS, rf_view_queue_stats, RF_REPLY_ENTITY, RF_IDEM_NONE),
    /* Drop-in processing: only the service triggers it (never a browser's
     * key); the worker that processes the photo records its matches. */
    OP("POST", "/v1/drop-in/photos/{photo_id}/process", SERVICE, RF_OP_DROPIN_PROCESS,
       rf_view_job, RF_REPLY_UPSERT, RF_IDEM_NONE),
    OP("PUT", "/v1/drop-in/photos/{photo_id}/matches/{attendee_id}/{face_id}", SERVICE | WORKER,
       RF_OP_DROPIN_MATCH_RECORD, rf_view_dropin_match, RF_REPLY_UPSERT, RF_IDEM_NONE),
    LIST("GET", "/v1/drop-in/photos/{photo_id}/matches", ADMIN | SERVICE | WORKER | READONLY,
         RF_OP_DROPIN_MATCH_LIST, rf_view_dropin_match, rf_list_dropin_matches),
    /* Notifications: the service (and admins) send and mark them on a
     * user's behalf; readonly keys may read; workers have no business with
     * them. The literal read-all and unread-count come before {id}, which
     * would match them (the first route of the method wins). */
    OP("POST", NOTE_PATH, ADMIN | SERVICE, RF_OP_NOTIFICATION_CREATE, rf_view_notification,
       RF_REPLY_UPSERT, RF_IDEM_OPTIONAL),
    LIST("GET", NOTE_PATH, ADMIN | SERVICE | READONLY, RF_OP_NOTIFICATION_LIST,
         rf_view_notification, rf_list_notifications),
    OP("POST", NOTE_PATH "/read-all", ADMIN | SERVICE, RF_OP_NOTIFICATION_READ_ALL,
       rf_view_notification_count, RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),
    OP("GET", NOTE_PATH "/unread-count", ADMIN | SERVICE | READONLY,
       RF_OP_NOTIFICATION_UNREAD_COUNT, rf_view_notification_count, RF_REPLY_ENTITY,
       RF_IDEM_NONE),
    OP("GET", NOTE_PATH "/{id}", ADMIN | SERVICE | READONLY, RF_OP_NOTIFICATION_GET,
       rf_view_notification, RF_REPLY_ENTITY, RF_IDEM_NONE),
    OP("POST", NOTE_PATH "/{id}/read", ADMIN | SERVICE, RF_OP_NOTIFICATION_READ,
       rf_view_notification, RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),
    OP("POST", NOTE_PATH "/{id}/unread", ADMIN | SERVICE, RF_OP_NOTIFICATION_UNREAD,
       rf_view_notification, RF_REPLY_ENTITY, RF_IDEM_OPTIONAL),
    /* Announcements: admin and service send; the create's body may list
     * 5,000 user ids, so its limit is its own. */
    {.method = "POST", .pattern = "/v1/announcements", .roles = ADMIN | SERVICE,
     .body_max = RF_ANNOUNCE_REQUEST_BYTES_MAX, .op = RF_OP_ANNOUNCEMENT_CREATE,
     .view = &rf_view_announcement, .reply = RF_REPLY_CREATED, .idem = RF_IDEM_REQUIRED},
    OP("GET", "/v1/announcements/{id}", ADMIN | SERVICE | READONLY, RF_OP_ANNOUNCEMENT_GET,
       rf_view_announcement, RF_REPLY_ENTITY, RF_IDEM_NONE),
    OP("POST", "/v1/announcements/{id}/retry-failed", ADMIN | SERVICE,
       RF_OP_ANNOUNCEMENT_RETRY_FAILED, rf_view_announcement, RF_REPLY_ENTITY,
       RF_IDEM_OPTIONAL),

    /* Reconciliation: the store's invariants with the rows that break them,
     * for admins only (it reads every table). */
    ROUTE("GET", "/v1/admin/reconcile", ADMIN, h_admin_reconcile),

    HIDDEN("POST", "/v1/_test/op-delay", ADMIN, h_test_op_delay),
    HIDDEN("POST", "/v1/_test/fail-next", ADMIN, h_test_fail_next),
    HIDDEN("POST", "/v1/_test/fail-next-commit", ADMIN, h_test_fail_next_commit),
    HIDDEN("POST", "/v1/_test/lose-commit-replies", ADMIN, h_test_lose_commit_replies),
    HIDDEN("POST", "/v1/_test/crash-after-commit", ADMIN, h_test_crash_after_commit),
    HIDDEN("POST", "/v1/_test/io-fault", ADMIN, h_test_io_fault),
    HIDDEN("POST", "/v1/_test/payout-batch", ADMIN, h_test_payout_batch),
    HIDDEN("POST", "/v1/_test/fanout", ADMIN, h_test_fanout),
};
const size_t rf_routes_count = sizeof rf_routes / sizeof rf_routes[0];

_Static_assert(sizeof rf_routes / sizeof rf_routes[0] <= RF_HTTP_ROUTES_MAX,
               "route table exceeds RF_HTTP_ROUTES_MAX");

/* Compares a pattern with a raw path segment by segment, filling m->params.
 * Literal segments match raw text; a parameter segment is percent-decoded on
 * its own, so "%2F" never splits it and "%00" never cuts it short. Each turn
 * consumes a '/' of the pattern, so the loop is bounded by it. */
static bool pattern_match(const char *pattern, const char *path, struct rf_match *m) {
    const char *p = pattern, *q = path;
    int n = 0;
    while (*p && *q) {
        if (*p != '/' || *q != '/') return false;
        p++;
        q++;
        size_t plen = strcspn(p, "/"), qlen = strcspn(q, "/");
        if (plen > 0 && p[0] == '{') {
            RF_ASSERT(plen >= 3 && p[plen - 1] == '}' && n < RF_HTTP_PATH_PARAMS_MAX);
            if (qlen == 0) return false;
            struct rf_path_param *pp = &m->params[n++];
            pp->name = p + 1;
            pp->name_len = plen - 2;
            pp->valid = rf_uri_decode(q, qlen, true, pp->value, sizeof pp->value, NULL) ==
                            RF_URI_OK &&
                        rf_id_valid(pp->value);
            if (!pp->valid) pp->value[0] = '\0';
        } else if (plen != qlen || memcmp(p, q, plen) != 0) {
            return false;
        }
        p += plen;
        q += qlen;
    }
    if (*p || *q) return false;
    m->n_params = n;
    return true;
}

static void allow_add(struct rf_match *m, const char *method) {
    size_t used = strlen(m->allow);
    int n = snprintf(m->allow + used, sizeof m->allow - used, "%s%s", used ? ", " : "", method);
    RF_ASSERT(n > 0 && (size_t)n < sizeof m->allow - used);
}

void rf_route_match(const char *method, const char *path, bool test_hooks, struct rf_match *m) {
    memset(m, 0, sizeof *m);
    m->kind = RF_MATCH_NONE;
    m->route_index = -1;
    if (!path || path[0] != '/' || strnlen(path, RF_HTTP_PATH_BYTES_MAX + 1) > RF_HTTP_PATH_BYTES_MAX)
        return;
    for (size_t i = 0; i < rf_routes_count; i++) {
        const struct rf_route *r = &rf_routes[i];
        if (r->hidden && !test_hooks) continue;
        if (!pattern_match(r->pattern, path, m)) continue;
        if (strcmp(r->method, method) == 0) {
            m->kind = RF_MATCH_OK;
            m->route = r;
            m->route_index = (int)i;
            m->allow[0] = '\0';
            return;
        }
        allow_add(m, r->method);
    }
    m->n_params = 0;
    if (m->allow[0]) m->kind = RF_MATCH_NO_METHOD;
}

void rf_route_path(const struct rf_http_req *req, char *out, size_t cap) {
    RF_ASSERT(cap > RF_HTTP_PATH_BYTES_MAX);
    const struct rf_match *m = req->match;
    bool canonical = m && m->kind == RF_MATCH_OK;
    for (int i = 0; canonical && i < m->n_params; i++) canonical = m->params[i].valid;
    if (!canonical) {
        snprintf(out, cap, "%s", req->path ? req->path : "");
        return;
    }
    /* A decoded value is never longer than its raw segment, so the result
     * fits wherever the raw path (at most RF_HTTP_PATH_BYTES_MAX) did. */
    size_t used = 0;
    int idx = 0;
    for (const char *p = m->route->pattern; *p;) {
        size_t n = *p == '{' ? strlen(m->params[idx].value) : strcspn(p, "{");
        const char *piece = *p == '{' ? m->params[idx].value : p;
        RF_ASSERT(used + n < cap);
        memcpy(out + used, piece, n);
        used += n;
        if (*p == '{') {
            p = strchr(p, '}') + 1;
            idx++;
        } else {
            p += n;
        }
    }
    out[used] = '\0';
}

const char *rf_path_param(const struct rf_http_req *req, const char *name) {
    const struct rf_match *m = req->match;
    size_t len = strlen(name);
    for (int i = 0; i < m->n_params; i++) {
        if (m->params[i].name_len == len && memcmp(m->params[i].name, name, len) == 0) {
            RF_ASSERT(m->params[i].valid);
            return m->params[i].value;
        }
    }
    RF_ASSERT(0 && "route has no such path parameter");
    return NULL;
}

static void roles_text(unsigned roles, char *out, size_t cap) {
    static const enum rf_role all[] = {RF_ROLE_ADMIN, RF_ROLE_SERVICE, RF_ROLE_WORKER,
                                       RF_ROLE_READONLY};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (!(roles & (unsigned)all[i])) continue;
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s", used ? ", " : "", rf_role_name(all[i]));
    }
}

enum admit { ADMIT_OK, ADMIT_ANSWERED, ADMIT_NEEDS_STORE };

/* 401 / 403 / store errors; ADMIT_OK when the caller may use the route.
 * cached_only: ADMIT_NEEDS_STORE (out untouched) when checking the key
 * would read the store. */
static enum admit authorize(struct rf_http_req *req, unsigned roles, bool cached_only,
                            struct rf_reply *out) {
    const char *token = rf_bearer_token(req->header(req->src, "Authorization"));
    rf_err err = RF_ERR_UNAUTHENTICATED;
    if (token && cached_only && !rf_key_authenticate_cached(req->ctx->db, token, &req->key, &err))
        return ADMIT_NEEDS_STORE;
    if (token && !cached_only) err = rf_key_authenticate(req->ctx->db, token, &req->key);
    if (err != RF_OK) {
        rf_reply_error(out, err, NULL);
        if (err == RF_ERR_UNAUTHENTICATED)
            rf_reply_header(out, "WWW-Authenticate", "Bearer realm=\"racefree\"");
        return ADMIT_ANSWERED;
    }
    req->authenticated = true;
    req->bearer = token;
    if (roles & (unsigned)req->key.role) return ADMIT_OK;
    char need[64];
    roles_text(roles, need, sizeof need);
    struct rf_problem p;
    rf_problem_set(&p, RF_ERR_FORBIDDEN, "this route needs the role %s; the key has role %s",
                   need, rf_role_name(req->key.role));
    rf_reply_problem(out, &p);
    return ADMIT_ANSWERED;
}

/* Everything before the handler: the key and its role, the path
 * parameters, the body's media type. */
static enum admit admit(struct rf_http_req *req, bool cached_only, struct rf_reply *out) {
    const struct rf_match *m = req->match;
    RF_ASSERT(m && m->kind == RF_MATCH_OK && m->route);
    const struct rf_route *r = m->route;
    if (r->roles != RF_ROLES_PUBLIC) {
        enum admit a = authorize(req, r->roles, cached_only, out);
        if (a != ADMIT_OK) return a;
    }
    for (int i = 0; i < m->n_params; i++) {
        if (m->params[i].valid) continue;
        struct rf_problem p;
        rf_problem_set(&p, RF_ERR_INVALID_PATH_PARAM,
                       "path parameter '%.*s' must be an id: 1-%d characters of "
                       "[A-Za-z0-9._:-], not '.' or '..', and a segment may not decode to NUL, "
                       "'/' or another control character",
                       (int)m->params[i].name_len, m->params[i].name, RF_ID_CHARS_MAX);
        rf_problem_param(&p, m->params[i].name, m->params[i].name_len);
        rf_reply_problem(out, &p);
        return ADMIT_ANSWERED;
    }
    struct rf_problem p;
    if (!rf_req_media_type(req, &p)) {
        rf_reply_problem(out, &p);
        return ADMIT_ANSWERED;
    }
    return ADMIT_OK;
}

/* ---- rate limits ------------------------------------------------------------
 * Every route a key calls is limited when its key has a limit of its own or
 * its role has one (serve --rate-limit); the store holds the bucket, per key
 * and route class: "read" (GET, HEAD) and "write" (everything else), so a
 * polling reader never uses up the writes a key has left. A limited request
 * always runs on a worker (the limit is a store write it waits for). The
 * headers are those of draft-ietf-httpapi-ratelimit-headers-08 (October
 * 2024): RateLimit-Policy: "<class>";q=<quota>;w=<window s> and
 * RateLimit: "<class>";r=<remaining>;t=<s until the quota is whole>. */

static const struct rf_rate_limit *route_limit(const struct rf_http_req *req) {
    if (!req->authenticated) return NULL;
    if (req->key.rate_limit.quota) return &req->key.rate_limit;
    const struct rf_rate_limit *l = &req->ctx->role_limits[__builtin_ctz((unsigned)req->key.role)];
    return l->quota ? l : NULL;
}

static const char *route_class(const struct rf_http_req *req) {
    bool read = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    return read ? "read" : "write";
}

static void rate_headers(struct rf_reply *out, const char *cls, const struct rf_rate_limit *l,
                         const struct rf_rate_result *rr) {
    rf_reply_header(out, "RateLimit-Policy", "\"%s\";q=%lld;w=%lld", cls, (long long)l->quota,
                    (long long)gcra_ceil_s(l->window_ms));
    rf_reply_header(out, "RateLimit", "\"%s\";r=%lld;t=%lld", cls, (long long)rr->remaining,
                    (long long)(rr->reset_ms ? gcra_ceil_s(rr->reset_ms) : 0));
}

/* Takes the request from its bucket; false when out holds the answer
 * (429 rate_limited, or the store's error). */
static bool rate_take(struct rf_http_req *req, const struct rf_rate_limit *l,
                      struct rf_rate_result *rr, struct rf_reply *out) {
    const char *cls = route_class(req);
    rf_err err = rf_rate_take(req->ctx->db, req->key.id, cls, l, rr);
    if (err) {
        rf_reply_error(out, err, NULL);
        return false;
    }
    if (rr->allowed) return true;
    int64_t retry_s = gcra_ceil_s(rr->retry_after_ms);
    char detail[160];
    snprintf(detail, sizeof detail, "this key may make %lld %s requests per %lld ms; retry in "
             "%lld s", (long long)l->quota, cls, (long long)l->window_ms, (long long)retry_s);
    rf_reply_error(out, RF_ERR_RATE_LIMITED, detail);
    rf_reply_header(out, "Retry-After", "%lld", (long long)retry_s);
    rate_headers(out, cls, l, rr);
    return false;
}

void rf_route_serve(struct rf_http_req *req, struct rf_reply *out) {
    if (admit(req, false, out) != ADMIT_OK) return;
    const struct rf_rate_limit *limit = route_limit(req);
    struct rf_rate_result rr;
    if (limit && !rate_take(req, limit, &rr, out)) return;
    const struct rf_route *r = req->match->route;
    if (r->fn)
        r->fn(req, out);
    else
        h_op(req, out);
    if (limit) rate_headers(out, route_class(req), limit, &rr);
}

enum rf_start rf_route_start(struct rf_http_req *req, struct h_op_call *s, struct rf_reply *out,
                             rf_done_fn done, void *arg) {
    const struct rf_route *r = req->match->route;
    if (r->fn || !rf_op_row(r->op)->write) return RF_START_WORKER;
    switch (admit(req, true, out)) {
    case ADMIT_NEEDS_STORE: return RF_START_WORKER;
    case ADMIT_ANSWERED: return RF_START_ANSWERED;
    case ADMIT_OK: break;
    }
    if (route_limit(req)) return RF_START_WORKER; /* the limit waits for the store */
    return h_op_submit(req, s, out, done, arg) ? RF_START_SUBMITTED : RF_START_ANSWERED;
}
