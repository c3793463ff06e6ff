/*
 * webhook_sig.h - webhook signature verification: the Stripe-Signature
 * scheme (t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>,
 * several v1 allowed, other schemes ignored), which the generic
 * X-Racefree-Signature header shares. Pure functions: no store, no clock.
 */
#ifndef RF_CORE_WEBHOOK_SIG_H
#define RF_CORE_WEBHOOK_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "racefree.h"

/* One accepted secret (its bytes are the HMAC key, as Stripe uses the whole
 * "whsec_..." text). */
struct webhook_secret_key {
    const char *secret;
    size_t len;
};

/* Verifies header against body under any of the n secrets: a v1 value must
 * match (compared in constant time) and t must be within tolerance_s of
 * now_s in either direction. RF_ERR_WEBHOOK_SIGNATURE_MALFORMED (no t, no
 * v1, bad digits), _MISMATCH, or _TIMESTAMP_STALE (a match, too old or too
 * far ahead). */
rf_err webhook_sig_verify(const char *header, const char *body, size_t body_len,
                          const struct webhook_secret_key *secrets, int n, int64_t now_s,
                          int64_t tolerance_s);

/* The header a signer sends: "t=<t>,v1=<hex>" into out (cap >= 80). */
void webhook_sig_sign(const char *secret, size_t secret_len, int64_t t, const char *body,
                      size_t body_len, char *out, size_t cap);

#endif
