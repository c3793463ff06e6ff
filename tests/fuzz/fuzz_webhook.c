/*
 * fuzz_webhook.c - an inbound webhook delivery: the input up to its first
 * newline is the Stripe-Signature (or X-Racefree-Signature) header, the rest
 * the raw body. The header is verified against two secrets, as a rotation
 * leaves them (core/webhook_sig.c), and the body is read as each provider's
 * payload is (webhook_event_parse, core/webhooks.c; in the server only a
 * body whose signature verified gets there, but the provider's bytes are
 * still bytes racefree did not choose).
 *
 * Invariants: the verdict is one of the four the header promises, nothing
 * verifies without a secret, and a header signed over this body with
 * either secret verifies (the parser reads what the signer writes); an
 * accepted payload has an id that is an id, a printable type, and names
 * its checkout when its type is handled.
 */
#include <stdbool.h>

#include "base/ids.h"
#include "core/flows.h"
#include "core/webhook_sig.h"
#include "fuzz/fuzz.h"

#define NOW_S 1767225600
#define TOLERANCE_S 300

static const struct webhook_secret_key secrets[] = {
    {"whsec_fuzz_old", sizeof "whsec_fuzz_old" - 1},
    {"whsec_fuzz_new", sizeof "whsec_fuzz_new" - 1},
};

static void signature(const char *header, const char *body, size_t len, bool second) {
    rf_err err = webhook_sig_verify(header, body, len, secrets, 2, NOW_S, TOLERANCE_S);
    FUZZ_CHECK(err == RF_OK || err == RF_ERR_WEBHOOK_SIGNATURE_MALFORMED ||
               err == RF_ERR_WEBHOOK_SIGNATURE_MISMATCH || err == RF_ERR_WEBHOOK_TIMESTAMP_STALE);
    FUZZ_CHECK(webhook_sig_verify(header, body, len, secrets, 0, NOW_S, TOLERANCE_S) != RF_OK);
    char signed_header[128];
    const struct webhook_secret_key *k = &secrets[second];
    webhook_sig_sign(k->secret, k->len, NOW_S, body, len, signed_header, sizeof signed_header);
    FUZZ_CHECK(webhook_sig_verify(signed_header, body, len, secrets, 2, NOW_S, TOLERANCE_S) ==
               RF_OK);
}

static void payload(const char *provider, const char *body, size_t len) {
    struct parsed_event ev;
    if (webhook_event_parse(provider, body, len, &ev) != RF_OK) return;
    FUZZ_CHECK(rf_id_valid(ev.event_id) && ev.type[0] != '\0');
    FUZZ_CHECK(rf_printable_valid(ev.type, RF_WEBHOOK_TYPE_BYTES - 1));
    FUZZ_CHECK(ev.created_ms >= 0);
    FUZZ_CHECK(ev.kind == EV_IGNORED || ev.checkout_id[0] || ev.provider_ref[0]);
    FUZZ_CHECK(!ev.checkout_id[0] || rf_id_valid(ev.checkout_id));
    FUZZ_CHECK(!ev.provider_ref[0] || rf_id_valid(ev.provider_ref));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t)(nl - data) : size;
    char *header = fuzz_cstr(data, hlen);
    size_t body_len = nl ? size - hlen - 1 : 0;
    char *body = fuzz_cstr(nl ? nl + 1 : data + size, body_len);
    signature(header, body, body_len, size > 0 && data[0] % 2);
    payload("stripe", body, body_len);
    payload("generic", body, body_len);
    free(header);
    free(body);
    return 0;
}
