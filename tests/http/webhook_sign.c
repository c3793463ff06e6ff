/*
 * webhook_sign.c - the tests' provider: signs deliveries like Stripe
 * (webhook_sign.h).
 */
#include "webhook_sign.h"

#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

void wh_sign(const char *secret, int64_t t, const char *body, char out[WH_SIG_BYTES]) {
    char prefix[32];
    int n = snprintf(prefix, sizeof prefix, "%" PRId64 ".", t);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)prefix, (size_t)n);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, strlen(body));
    crypto_auth_hmacsha256_final(&st, mac);
    char hex[2 * sizeof mac + 1];
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    snprintf(out, WH_SIG_BYTES, "t=%" PRId64 ",v1=%s", t, hex);
}

void wh_header(const char *provider, const char *sig, char out[WH_HEADER_BYTES]) {
    snprintf(out, WH_HEADER_BYTES, "%s: %s",
             strcmp(provider, "stripe") == 0 ? "Stripe-Signature" : "X-Racefree-Signature", sig);
}

int64_t wh_now_s(void) { return (int64_t)time(NULL); }

void wh_deliver(struct env *e, const char *provider, const char *secret, int64_t t,
                const char *body, struct rf_t_resp *out) {
    char sig[WH_SIG_BYTES], hdr[WH_HEADER_BYTES], path[256];
    wh_sign(secret, t, body, sig);
    wh_header(provider, sig, hdr);
    snprintf(path, sizeof path, "/v1/webhooks/%s", provider);
    const char *h[] = {hdr, NULL};
    env_req(e, "POST", path, NULL, body, h, out);
    env_no_5xx_one("POST", path, out);
}

void wh_secret_set(struct env *e, const char *provider, const char *secret) {
    char path[256], body[512];
    snprintf(path, sizeof path, "/v1/webhook-secrets/%s", provider);
    snprintf(body, sizeof body, "{\"secret\": \"%s\"}", secret);
    struct rf_t_resp r;
    env_req(e, "PUT", path, e->admin, body, NULL, &r);
    if (r.status != 200) fail_msg("PUT %s: %d %s", path, r.status, r.body);
    rf_resp_free(&r);
}

int wh_deliver_parallel(struct env *e, const char *provider, const char *secret,
                        const char *body, int n) {
    char sig[WH_SIG_BYTES], hdr[WH_HEADER_BYTES];
    wh_sign(secret, wh_now_s(), body, sig);
    wh_header(provider, sig, hdr);
    struct rf_par_req *reqs = calloc((size_t)n, sizeof *reqs);
    assert_non_null(reqs);
    for (int i = 0; i < n; i++) {
        reqs[i].port = e->srv.port;
        reqs[i].method = "POST";
        snprintf(reqs[i].path, sizeof reqs[i].path, "/v1/webhooks/%s", provider);
        reqs[i].body = body;
        reqs[i].headers[0] = hdr;
    }
    assert_int_equal(rf_parallel(reqs, n), 0);
    env_no_5xx(reqs, n);
    int firsts = 0;
    for (int i = 0; i < n; i++) {
        if (reqs[i].resp.status != 200)
            fail_msg("delivery %d: %d %s", i, reqs[i].resp.status, reqs[i].resp.body);
        json_t *j = rf_resp_json(&reqs[i].resp);
        firsts += !json_is_true(json_object_get(j, "duplicate"));
        json_decref(j);
    }
    rf_par_free(reqs, n);
    free(reqs);
    return firsts;
}
