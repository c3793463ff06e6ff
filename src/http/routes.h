/*
 * routes.h - THE route table: every endpoint the server answers, with the
 * roles it accepts, its body limit and its handler. The openapi drift test
 * (tests/unit/test_openapi.c) reads the same table, so the document and the
 * server cannot disagree.
 *
 * Patterns are literal segments and {name} parameters:
 * "/v1/users/{user_id}/entitlements/{key}", matched against the RAW path:
 * literal segments compare raw text, and each parameter segment is then
 * percent-decoded by itself. Every decoded parameter must be a valid id
 * (rf_id_valid); a bad escape, or one decoding to NUL, '/' or another control
 * character, or an invalid id gets 400 `invalid_path_param` naming it (after
 * authentication, so anonymous callers learn nothing).
 */
#ifndef RF_HTTP_ROUTES_H
#define RF_HTTP_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http.h"
#include "http/view.h"

/* A handler always fills `out`: a success body or a problem. */
typedef void (*rf_handler_fn)(struct rf_http_req *req, struct rf_reply *out);

#define RF_ROLES_PUBLIC 0u /* no key needed: /healthz, /readyz, /metrics */
#define RF_ROLES_ALL (RF_ROLE_ADMIN | RF_ROLE_SERVICE | RF_ROLE_WORKER | RF_ROLE_READONLY)

enum rf_idem_use {
    RF_IDEM_NONE = 0,    /* the route takes no Idempotency-Key */
    RF_IDEM_OPTIONAL,
    RF_IDEM_REQUIRED,    /* moves money: 400 idempotency_key_required without one */
};

struct rf_route {
    const char *method;
    const char *pattern;
    unsigned roles;      /* enum rf_role bits; RF_ROLES_PUBLIC: no key */
    size_t body_max;     /* bytes; 0: the server's configured limit */
    rf_handler_fn fn;    /* NULL: the operation below, run by h_op (h_op.c) */
    bool hidden;         /* test hooks: served only with --test-hooks, undocumented */
    rf_op op;            /* fn NULL: the operation the route runs */
    const struct rf_view *view;       /* how its result renders */
    enum rf_reply_kind reply;
    enum rf_idem_use idem;
    const struct rf_list_query *list; /* RF_REPLY_PAGE: the list's query */
};

extern const struct rf_route rf_routes[];
extern const size_t rf_routes_count;

enum rf_match_kind {
    RF_MATCH_OK,         /* route found */
    RF_MATCH_NO_METHOD,  /* the path exists, the method does not: 405 */
    RF_MATCH_NONE,       /* no such path: 404 */
};

struct rf_path_param {
    const char *name;    /* points into the pattern; name_len chars */
    size_t name_len;
    bool valid;          /* decoded cleanly and rf_id_valid(value) */
    char value[RF_ID_BYTES]; /* percent-decoded; "" unless valid */
};

struct rf_match {
    enum rf_match_kind kind;
    const struct rf_route *route;   /* RF_MATCH_OK only */
    int route_index;                /* index in rf_routes, or -1 */
    int n_params;
    struct rf_path_param params[RF_HTTP_PATH_PARAMS_MAX];
    char allow[RF_HTTP_ALLOW_BYTES]; /* RF_MATCH_NO_METHOD: "GET, PUT" */
};

/* Matches method and raw path (without query) against the table. Hidden routes
 * take part only when test_hooks is set. */
void rf_route_match(const char *method, const char *path, bool test_hooks, struct rf_match *m);

/* Authenticates (when the route needs a key), checks the role, validates
 * the path parameters and the body's media type, and runs the handler. req->match must be RF_MATCH_OK. */
void rf_route_serve(struct rf_http_req *req, struct rf_reply *out);

/* The event loop's way in (http/dispatch.c): a write operation whose
 * caller this process authenticated within the last second is parsed,
 * checked and submitted (rf_op_submit) right here, without a worker;
 * done(arg, err) then runs exactly once (maybe before this returns), and
 * h_op_end renders the outcome from s. Every other request, or one whose key
 * the store must check, is RF_START_WORKER (nothing was done: run
 * rf_route_serve on a worker). RF_START_ANSWERED: refused, out filled. */
enum rf_start { RF_START_WORKER, RF_START_ANSWERED, RF_START_SUBMITTED };
struct h_op_call;
enum rf_start rf_route_start(struct rf_http_req *req, struct h_op_call *s, struct rf_reply *out,
                             rf_done_fn done, void *arg);

/* The matched path spelled canonically: the route's pattern with each
 * parameter's decoded value ("/v1/accounts/a%3Ab/credits" ->
 * "/v1/accounts/a:b/credits"), into out[cap] (cap >= RF_HTTP_PATH_BYTES_MAX
 * + 1). An Idempotency-Key record is bound to it, so two spellings of one
 * path are one request and a path can only name the resource it routes to.
 * Without a match (or with an invalid parameter), the raw path. */
void rf_route_path(const struct rf_http_req *req, char *out, size_t cap);

/* The value of a path parameter of the matched route; asserts it exists. */
const char *rf_path_param(const struct rf_http_req *req, const char *name);

#endif
