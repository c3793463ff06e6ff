/*
 * test_webhook_sig.c - the webhook signature check (core/webhook_sig.c) as a
 * pure function: against Stripe's documented construction computed here
 * with libsodium directly (HMAC-SHA256 over "<t>.<body>", hex), the header
 * forms a provider sends, and each way a delivery can be wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/webhook_sig.h"

#define SECRET "whsec_unit_0123456789abcdef"
#define OTHER "whsec_unit_fedcba9876543210"
#define BODY "{\"id\":\"evt_1\",\"type\":\"checkout.paid\"}"
#define T 1767225600

static const struct webhook_secret_key one[] = {{SECRET, sizeof SECRET - 1}};
static const struct webhook_secret_key two[] = {{OTHER, sizeof OTHER - 1},
                                                {SECRET, sizeof SECRET - 1}};

/* hex HMAC-SHA256(secret, "<t>.<body>"), computed independently */
static void hex_mac(const char *secret, long long t, const char *body, char out[65]) {
    char msg[512];
    int n = snprintf(msg, sizeof msg, "%lld.%s", t, body);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, (size_t)n);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(out, 65, mac, sizeof mac);
}

static rf_err verify(const char *header, const char *body, const struct webhook_secret_key *k,
                     int n, int64_t now) {
    return webhook_sig_verify(header, body, strlen(body), k, n, now, 300);
}

static void test_accepts_stripe_forms(void **state) {
    (void)state;
    char mac[65], h[512];
    hex_mac(SECRET, T, BODY, mac);
    snprintf(h, sizeof h, "t=%d,v1=%s", T, mac);
    assert_int_equal(verify(h, BODY, one, 1, T), RF_OK);
    assert_int_equal(verify(h, BODY, two, 2, T + 300), RF_OK); /* second secret, edge */
    assert_int_equal(verify(h, BODY, one, 1, T - 300), RF_OK);
    /* several v1 (one right), a v0 and an unknown scheme, spaces after commas */
    snprintf(h, sizeof h, "t=%d, v0=%064d, v1=%064d, v9=x, v1=%s", T, 1, 2, mac);
    assert_int_equal(verify(h, BODY, one, 1, T), RF_OK);
    /* the signer agrees with the independent computation */
    char signed_h[128];
    webhook_sig_sign(SECRET, strlen(SECRET), T, BODY, strlen(BODY), signed_h, sizeof signed_h);
    snprintf(h, sizeof h, "t=%d,v1=%s", T, mac);
    assert_string_equal(signed_h, h);
}

static void test_refusals(void **state) {
    (void)state;
    char mac[65], h[512];
    hex_mac(SECRET, T, BODY, mac);
    snprintf(h, sizeof h, "t=%d,v1=%s", T, mac);
    assert_int_equal(verify(h, BODY, one, 1, T + 301), RF_ERR_WEBHOOK_TIMESTAMP_STALE);
    assert_int_equal(verify(h, BODY, one, 1, T - 301), RF_ERR_WEBHOOK_TIMESTAMP_STALE);
    const struct webhook_secret_key wrong[] = {{OTHER, sizeof OTHER - 1}};
    assert_int_equal(verify(h, BODY, wrong, 1, T), RF_ERR_WEBHOOK_SIGNATURE_MISMATCH);
    assert_int_equal(verify(h, BODY, one, 0, T), RF_ERR_WEBHOOK_SIGNATURE_MISMATCH);
    /* every single byte of the body altered: each fails */
    char body[sizeof BODY];
    for (size_t i = 0; i < sizeof BODY - 1; i++) {
        memcpy(body, BODY, sizeof BODY);
        body[i] ^= 0x01;
        assert_int_equal(verify(h, body, one, 1, T), RF_ERR_WEBHOOK_SIGNATURE_MISMATCH);
    }
    /* the timestamp is signed: another t with the same v1 fails */
    snprintf(h, sizeof h, "t=%d,v1=%s", T + 1, mac);
    assert_int_equal(verify(h, BODY, one, 1, T), RF_ERR_WEBHOOK_SIGNATURE_MISMATCH);
    static const char *const malformed[] = {
        "", "v1=00", "t=1767225600", "t=abc,v1=00", "t=1767225600,v1=zz",
        "t=1767225600,v1=0011", "t=,v1=00", "garbage", "t=1767225600,v0=00",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        assert_int_equal(verify(malformed[i], BODY, one, 1, T),
                         RF_ERR_WEBHOOK_SIGNATURE_MALFORMED);
    assert_int_equal(verify(NULL, BODY, one, 1, T), RF_ERR_WEBHOOK_SIGNATURE_MALFORMED);
}

int main(void) {
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_stripe_forms),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
