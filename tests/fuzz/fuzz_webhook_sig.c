/*
 * fuzz_webhook_sig.c - the Stripe-Signature (and X-Racefree-Signature)
 * header of an inbound webhook (core/webhook_sig.c): the input up to its
 * first newline is the header, the rest the raw body, checked against two
 * secrets as a rotation leaves them.
 *
 * Invariants: the verdict is one of the four the header promises; and a
 * header signed over this body with either secret verifies (the parser
 * reads what the signer writes), while the fuzzed header verifies only
 * with a MAC nobody without a secret can produce (it cannot be OK unless
 * it carries the signer's v1 for this t and body, which the seed corpus
 * does).
 */
#include <stdbool.h>

#include "core/webhook_sig.h"
#include "fuzz/fuzz.h"

#define NOW_S 1767225600
#define TOLERANCE_S 300

static const struct webhook_secret_key secrets[] = {
    {"whsec_fuzz_old", sizeof "whsec_fuzz_old" - 1},
    {"whsec_fuzz_new", sizeof "whsec_fuzz_new" - 1},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t)(nl - data) : size;
    char *header = fuzz_cstr(data, hlen);
    size_t body_len = nl ? size - hlen - 1 : 0;
    char *body = fuzz_cstr(nl ? nl + 1 : data + size, body_len);
    rf_err err = webhook_sig_verify(header, body, body_len, secrets, 2, NOW_S, TOLERANCE_S);
    FUZZ_CHECK(err == RF_OK || err == RF_ERR_WEBHOOK_SIGNATURE_MALFORMED ||
               err == RF_ERR_WEBHOOK_SIGNATURE_MISMATCH || err == RF_ERR_WEBHOOK_TIMESTAMP_STALE);
    err = webhook_sig_verify(header, body, body_len, secrets, 0, NOW_S, TOLERANCE_S);
    FUZZ_CHECK(err != RF_OK); /* no secret: nothing verifies */
    char signed_header[128];
    const struct webhook_secret_key *k = &secrets[size > 0 && data[0] % 2];
    webhook_sig_sign(k->secret, k->len, NOW_S, body, body_len, signed_header,
                     sizeof signed_header);
    FUZZ_CHECK(webhook_sig_verify(signed_header, body, body_len, secrets, 2, NOW_S,
                                  TOLERANCE_S) == RF_OK);
    free(header);
    free(body);
    return 0;
}
