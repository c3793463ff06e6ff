/*
 * test_idempotency - the Idempotency-Key layer on PUT grants and POST /v1/keys.
 *
 * Proves:
 *  - replay: the same key, method, path and body answer the first response
 *    byte for byte, same status, with `Idempotent-Replayed: true`, and make no
 *    second effect (even after the entitlement was revoked in between, the
 *    replay does not grant it again);
 *  - reuse: the same key with another body or path is 422
 *    idempotency_key_reused and writes nothing;
 *  - in flight: the same key while the first request is still running
 *    (op-delay test hook) is 409 idempotency_key_in_flight, and the first
 *    still completes with 201;
 *  - 32 concurrent requests with one key and one body make exactly one
 *    effect: one row at version 1; each answer is the original 201, a
 *    byte-identical replayed 201, or 409 in flight;
 *  - keys are scoped per API key: another API key's same Idempotency-Key is
 *    independent;
 *  - POST /v1/keys with an Idempotency-Key creates one key however often it
 *    is replayed, and the first answer and every replay say Cache-Control:
 *    no-store (they carry the secret) with no ETag or Location.
 */
#include "http_env.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void same_bytes(const struct rf_t_resp *a, const struct rf_t_resp *b)
{
    if (a->status != b->status || a->body_len != b->body_len ||
        memcmp(a->body, b->body, a->body_len) != 0)
        fail_msg("replay differs:\n first %d: %s\n replay %d: %s", a->status, a->body, b->status,
                 b->body);
}

static void idem_hdr(char *buf, size_t cap, const char *key)
{
    snprintf(buf, cap, "Idempotency-Key: %s", key);
}

static void test_replay(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    char user[64], ent[64], path[512], ik[64], h[128];
    RID(user, "u");
    RID(ent, "pro");
    RID(ik, "idem");
    ent_path(path, sizeof path, user, ent);
    idem_hdr(h, sizeof h, ik);
    const char *hdrs[] = {h, NULL};
    const char *body = "{\"source\": \"checkout\", \"metadata\": {\"order\": \"o-1\"}}";

    struct rf_t_resp first, again;
    env_req(&e, "PUT", path, e.service, body, hdrs, &first);
    RF_ASSERT_STATUS(&first, 201);
    assert_false(resp_replayed(&first));
    json_t *j = ent_check(&first, user, ent);
    assert_int_equal(rf_t_json_int(j, "version"), 1);
    json_decref(j);

    for (int i = 0; i < 3; i++) {
        env_req(&e, "PUT", path, e.service, body, hdrs, &again);
        assert_true(resp_replayed(&again));
        same_bytes(&first, &again);
        assert_int_equal(etag_version(&again), 1);
        rf_resp_free(&again);
    }

    /* Revoke, then replay: still the stored 201, and no second grant. */
    struct rf_t_resp r;
    env_req(&e, "DELETE", path, e.service, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 204);
    rf_resp_free(&r);
    env_req(&e, "PUT", path, e.service, body, hdrs, &again);
    assert_true(resp_replayed(&again));
    same_bytes(&first, &again);
    rf_resp_free(&again);
    env_req(&e, "GET", path, e.readonly, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    j = ent_check(&r, user, ent);
    assert_string_equal(rf_t_json_str(j, "status"), "revoked");
    assert_int_equal(rf_t_json_int(j, "version"), 2);
    json_decref(j);
    rf_resp_free(&r);

    /* Without the key, a grant is a new operation: re-activates (200, v3). */
    env_req(&e, "PUT", path, e.service, body, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    assert_false(resp_replayed(&r));
    j = ent_check(&r, user, ent);
    assert_int_equal(rf_t_json_int(j, "version"), 3);
    json_decref(j);
    rf_resp_free(&r);

    rf_resp_free(&first);
    env_stop(&e);
}

static void test_reuse_with_other_request(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    char user[64], ent[64], other[64], path[512], path2[512], ik[64], h[128];
    RID(user, "u");
    RID(ent, "pro");
    RID(other, "other");
    RID(ik, "idem");
    ent_path(path, sizeof path, user, ent);
    ent_path(path2, sizeof path2, user, other);
    idem_hdr(h, sizeof h, ik);
    const char *hdrs[] = {h, NULL};

    struct rf_t_resp r;
    env_req(&e, "PUT", path, e.admin, "{\"source\": \"a\"}", hdrs, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);

    /* Another body. */
    env_req(&e, "PUT", path, e.admin, "{\"source\": \"b\"}", hdrs, &r);
    RF_ASSERT_PROBLEM(&r, 422, "idempotency_key_reused");
    assert_false(resp_replayed(&r));
    rf_resp_free(&r);
    /* No body at all. */
    env_req(&e, "PUT", path, e.admin, NULL, hdrs, &r);
    RF_ASSERT_PROBLEM(&r, 422, "idempotency_key_reused");
    rf_resp_free(&r);
    /* Another path, same body: 422 and nothing written there. */
    env_req(&e, "PUT", path2, e.admin, "{\"source\": \"a\"}", hdrs, &r);
    RF_ASSERT_PROBLEM(&r, 422, "idempotency_key_reused");
    rf_resp_free(&r);
    env_req(&e, "GET", path2, e.admin, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 404, "entitlement_not_found");
    rf_resp_free(&r);

    /* The first effect is untouched: source "a", version 1. */
    env_req(&e, "GET", path, e.admin, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    json_t *j = ent_check(&r, user, ent);
    assert_string_equal(rf_t_json_str(j, "source"), "a");
    assert_int_equal(rf_t_json_int(j, "version"), 1);
    json_decref(j);
    rf_resp_free(&r);
    assert_int_equal(list_all_count(&e, user, "all"), 1);
    env_stop(&e);
}

struct bg_req {
    struct env *e;
    const char *path, *body, *api_key;
    const char *hdrs[2];
    struct rf_t_resp resp;
};

static void *bg_main(void *arg)
{
    struct bg_req *b = arg;
    env_req(b->e, "PUT", b->path, b->api_key, b->body, b->hdrs, &b->resp);
    return NULL;
}

static void test_in_flight(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, true, NULL);
    char user[64], ent[64], path[512], ik[64], h[128];
    RID(user, "u");
    RID(ent, "pro");
    RID(ik, "idem");
    ent_path(path, sizeof path, user, ent);
    idem_hdr(h, sizeof h, ik);
    const char *body = "{\"source\": \"slow\"}";

    hook_op_delay(&e, 800);
    struct bg_req a = {.e = &e, .path = path, .body = body, .api_key = e.service, .hdrs = {h, NULL}};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bg_main, &a), 0);
    rf_t_sleep_ms(200);
    struct rf_t_resp b;
    env_req(&e, "PUT", path, e.service, body, a.hdrs, &b);
    pthread_join(t, NULL);
    hook_op_delay(&e, 0);

    /* A went first by 200 ms, so A is the original and B the one refused;
     * should the machine be so loaded that B overtook A, the roles swap,
     * and the contract (one runs, the other is told it is in flight) holds. */
    struct rf_t_resp *orig = &a.resp, *refused = &b;
    if (a.resp.status == 409 && b.status == 201) {
        print_message("(B overtook A)\n");
        orig = &b;
        refused = &a.resp;
    }
    RF_ASSERT_PROBLEM(refused, 409, "idempotency_key_in_flight");
    assert_false(resp_replayed(refused));
    RF_ASSERT_STATUS(orig, 201);
    assert_false(resp_replayed(orig));
    if (orig == &b) {
        struct rf_t_resp tmp = a.resp;
        a.resp = b;
        b = tmp;
    }
    rf_resp_free(&b);

    /* Once done, the same request replays the 201. */
    env_req(&e, "PUT", path, e.service, body, a.hdrs, &b);
    assert_true(resp_replayed(&b));
    same_bytes(&a.resp, &b);
    rf_resp_free(&b);
    rf_resp_free(&a.resp);
    assert_int_equal(list_all_count(&e, user, "all"), 1);
    env_stop(&e);
}

#define SAME_KEY_THREADS 32

static void test_concurrent_same_key(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    for (int round = 0; round < 2; round++) {
        char user[64], ent[64], path[512], ik[64], h[128];
        RID(user, "u");
        RID(ent, "pro");
        RID(ik, "idem");
        ent_path(path, sizeof path, user, ent);
        idem_hdr(h, sizeof h, ik);
        static struct rf_par_req reqs[SAME_KEY_THREADS];
        memset(reqs, 0, sizeof reqs);
        for (int i = 0; i < SAME_KEY_THREADS; i++) {
            reqs[i].port = e.srv.port;
            reqs[i].method = "PUT";
            snprintf(reqs[i].path, sizeof reqs[i].path, "%s", path);
            reqs[i].api_key = e.service;
            reqs[i].body = "{\"source\": \"same-key\"}";
            reqs[i].headers[0] = h;
        }
        assert_int_equal(rf_parallel(reqs, SAME_KEY_THREADS), 0);
        int originals = 0, replays = 0, in_flight = 0;
        const struct rf_t_resp *orig = NULL;
        for (int i = 0; i < SAME_KEY_THREADS; i++) {
            struct rf_t_resp *r = &reqs[i].resp;
            if (r->status == 201 && !resp_replayed(r)) {
                originals++;
                orig = r;
            } else if (r->status == 201) {
                replays++;
            } else if (r->status == 409) {
                RF_ASSERT_PROBLEM(r, 409, "idempotency_key_in_flight");
                in_flight++;
            } else {
                fail_msg("request %d: HTTP %d (%s) %s", i, r->status, r->errmsg,
                         r->body ? r->body : "");
            }
        }
        print_message("same key x%d: %d original, %d replayed, %d in flight\n", SAME_KEY_THREADS,
                      originals, replays, in_flight);
        assert_int_equal(originals, 1);
        for (int i = 0; i < SAME_KEY_THREADS; i++)
            if (reqs[i].resp.status == 201)
                same_bytes(orig, &reqs[i].resp);
        json_t *j = ent_check(orig, user, ent);
        assert_int_equal(rf_t_json_int(j, "version"), 1);
        json_decref(j);
        struct rf_t_resp g;
        env_req(&e, "GET", path, e.readonly, NULL, NULL, &g);
        RF_ASSERT_STATUS(&g, 200);
        j = ent_check(&g, user, ent);
        assert_int_equal(rf_t_json_int(j, "version"), 1);
        json_decref(j);
        rf_resp_free(&g);
        assert_int_equal(list_all_count(&e, user, "all"), 1);
        rf_par_free(reqs, SAME_KEY_THREADS);
    }
    env_stop(&e);
}

static void test_scoped_per_api_key(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    char user[64], ent1[64], ent2[64], ent3[64], p1[512], p2[512], p3[512];
    char ik[64], ik2[64], h[128], h2[128];
    RID(user, "u");
    RID(ent1, "pro");
    RID(ent2, "team");
    RID(ent3, "extra");
    RID(ik, "idem");
    RID(ik2, "idem");
    ent_path(p1, sizeof p1, user, ent1);
    ent_path(p2, sizeof p2, user, ent2);
    ent_path(p3, sizeof p3, user, ent3);
    idem_hdr(h, sizeof h, ik);
    idem_hdr(h2, sizeof h2, ik2);
    const char *hdrs[] = {h, NULL}, *hdrs2[] = {h2, NULL};

    struct rf_t_resp a, b;
    env_req(&e, "PUT", p1, e.admin, NULL, hdrs, &a);
    RF_ASSERT_STATUS(&a, 201);
    /* The service key's same Idempotency-Key on another request: not a
     * reuse (no 422), a request of its own. */
    env_req(&e, "PUT", p2, e.service, NULL, hdrs, &b);
    RF_ASSERT_STATUS(&b, 201);
    assert_false(resp_replayed(&b));
    rf_resp_free(&b);
    /* The admin's key still replays its own first answer. */
    env_req(&e, "PUT", p1, e.admin, NULL, hdrs, &b);
    assert_true(resp_replayed(&b));
    same_bytes(&a, &b);
    rf_resp_free(&b);
    rf_resp_free(&a);

    /* Another key on the very same request: executed, not replayed (200,
     * the entitlement is already active), so no other key's stored answer
     * leaks. */
    env_req(&e, "PUT", p3, e.admin, NULL, hdrs2, &a);
    RF_ASSERT_STATUS(&a, 201);
    rf_resp_free(&a);
    env_req(&e, "PUT", p3, e.service, NULL, hdrs2, &b);
    RF_ASSERT_STATUS(&b, 200);
    assert_false(resp_replayed(&b));
    rf_resp_free(&b);
    assert_int_equal(list_all_count(&e, user, "all"), 3);
    env_stop(&e);
}

/* A new key's answer, first or replayed: never cached, and no ETag or
 * Location (a key has no version). */
static void assert_key_headers(const struct rf_t_resp *r)
{
    const char *cc = rf_resp_header(r, "Cache-Control");
    if (!cc || strcmp(cc, "no-store") != 0)
        fail_msg("POST /v1/keys answered Cache-Control %s", cc ? cc : "(none)");
    assert_null(rf_resp_header(r, "ETag"));
    assert_null(rf_resp_header(r, "Location"));
}

static void test_post_keys_idempotent(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, false, NULL);
    char name[64], ik[64], h[128], body[160];
    RID(name, "reporting");
    RID(ik, "idem");
    idem_hdr(h, sizeof h, ik);
    const char *hdrs[] = {h, NULL};
    snprintf(body, sizeof body, "{\"role\": \"readonly\", \"name\": \"%s\"}", name);

    struct rf_t_resp first, again;
    env_req(&e, "POST", "/v1/keys", e.admin, body, hdrs, &first);
    RF_ASSERT_STATUS(&first, 201);
    assert_false(resp_replayed(&first));
    assert_key_headers(&first);
    for (int i = 0; i < 2; i++) {
        env_req(&e, "POST", "/v1/keys", e.admin, body, hdrs, &again);
        RF_ASSERT_STATUS(&again, 201);
        assert_true(resp_replayed(&again));
        same_bytes(&first, &again);
        assert_key_headers(&again);
        rf_resp_free(&again);
    }
    /* Another body with the same key: 422, no key made. */
    char body2[160];
    snprintf(body2, sizeof body2, "{\"role\": \"admin\", \"name\": \"%s\"}", name);
    env_req(&e, "POST", "/v1/keys", e.admin, body2, hdrs, &again);
    RF_ASSERT_PROBLEM(&again, 422, "idempotency_key_reused");
    rf_resp_free(&again);
    assert_int_equal(keys_named(&e, name), 1);

    /* The key made works, with its role (readonly may GET, not PUT). */
    json_t *j = rf_resp_json(&first);
    const char *secret = rf_t_json_str(j, "key");
    if (!*secret)
        fail_msg("POST /v1/keys answered no \"key\": %s", first.body);
    char user[64], path[700];
    RID(user, "u");
    snprintf(path, sizeof path, "/v1/users/%s/entitlements", user);
    struct rf_t_resp r;
    env_req(&e, "GET", path, secret, NULL, NULL, &r);
    RF_ASSERT_STATUS(&r, 200);
    rf_resp_free(&r);
    ent_path(path, sizeof path, user, "pro");
    env_req(&e, "PUT", path, secret, NULL, NULL, &r);
    RF_ASSERT_PROBLEM(&r, 403, "forbidden");
    rf_resp_free(&r);
    json_decref(j);
    rf_resp_free(&first);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_reuse_with_other_request),
        cmocka_unit_test(test_in_flight),
        cmocka_unit_test(test_concurrent_same_key),
        cmocka_unit_test(test_scoped_per_api_key),
        cmocka_unit_test(test_post_keys_idempotent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
