/*
 * webhook_sign.h - what a payment provider does to a delivery, for the
 * black-box tests: sign "<t>.<raw body>" with HMAC-SHA256 (libsodium) the
 * way Stripe does, and send it to POST /v1/webhooks/{provider}. Written
 * independently of the server's verifier, so a bug there cannot hide.
 */
#ifndef RF_TEST_WEBHOOK_SIGN_H
#define RF_TEST_WEBHOOK_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "http_env.h"

#define WH_SIG_BYTES 256
/* The secrets key every webhook test server is given (one value: the
 * PostgreSQL test database is shared, and a secret sealed by one process
 * must open in another), and the secret every test sets for "stripe". */
#define WH_TEST_SECRETS_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define WH_STRIPE_SECRET "whsec_test_secret_aaaaaaaaaaaaaaaa"
#define WH_HEADER_BYTES 320

/* "t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>" into out. */
void wh_sign(const char *secret, int64_t t, const char *body, char out[WH_SIG_BYTES]);
/* The provider's header line: "Stripe-Signature: ..." for stripe, else
 * "X-Racefree-Signature: ...". */
void wh_header(const char *provider, const char *sig, char out[WH_HEADER_BYTES]);
/* Unix seconds now. */
int64_t wh_now_s(void);
/* POST /v1/webhooks/<provider> with body signed by secret at t (no API key). */
void wh_deliver(struct env *e, const char *provider, const char *secret, int64_t t,
                const char *body, struct rf_t_resp *out);
/* The same delivery (body signed once, now) n times at once, released
 * together (rf_parallel); fails the test on a 5xx or a status other than
 * 200. Returns how many were first deliveries (duplicate false). */
int wh_deliver_parallel(struct env *e, const char *provider, const char *secret,
                        const char *body, int n);
/* PUT /v1/webhook-secrets/<provider> {"secret"} as admin; fails unless 200. */
void wh_secret_set(struct env *e, const char *provider, const char *secret);

#endif
