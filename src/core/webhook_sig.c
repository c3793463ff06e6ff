/*
 * webhook_sig.c - the signature check every delivery passes before its body
 * is parsed (webhook_sig.h). The MAC covers "<t>.<raw body>" byte for byte,
 * so one altered byte, another timestamp or another secret fails; the
 * timestamp bound stops a captured delivery from being replayed later (the
 * event ledger stops replays inside the window).
 */
#include "core/webhook_sig.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"

#define MAC_BYTES crypto_auth_hmacsha256_BYTES

struct parsed_header {
    int64_t t;
    bool has_t;
    uint8_t v1[RF_WEBHOOK_SIGS_MAX][MAC_BYTES];
    int n_v1;
};

static void mac(const struct webhook_secret_key *k, int64_t t, const char *body, size_t len,
                uint8_t out[MAC_BYTES]) {
    char ts[RF_I64_TEXT_BYTES + 1];
    int n = snprintf(ts, sizeof ts, "%" PRId64 ".", t);
    RF_ASSERT(n > 1 && (size_t)n < sizeof ts);
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)k->secret, k->len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, (size_t)n);
    if (len) crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

/* t: 1-12 decimal digits (a unix time in seconds). */
static bool parse_t(const char *v, size_t len, int64_t *out) {
    if (len == 0 || len > 12) return false;
    int64_t t = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') return false;
        t = t * 10 + (v[i] - '0');
    }
    *out = t;
    return true;
}

/* One "key=value" item; unknown keys (v0, future schemes) are skipped. */
static bool parse_item(const char *item, size_t len, struct parsed_header *h) {
    const char *eq = memchr(item, '=', len);
    if (!eq) return false;
    size_t klen = (size_t)(eq - item), vlen = len - klen - 1;
    const char *v = eq + 1;
    if (klen == 1 && item[0] == 't') {
        h->has_t = parse_t(v, vlen, &h->t);
        return h->has_t;
    }
    if (klen != 2 || memcmp(item, "v1", 2) != 0) return true;
    if (h->n_v1 == RF_WEBHOOK_SIGS_MAX) return true; /* more than we try: ignored */
    size_t bin_len = 0;
    if (vlen != 2 * MAC_BYTES ||
        sodium_hex2bin(h->v1[h->n_v1], MAC_BYTES, v, vlen, NULL, &bin_len, NULL) != 0 ||
        bin_len != MAC_BYTES)
        return false;
    h->n_v1++;
    return true;
}

static bool parse_header(const char *header, struct parsed_header *h) {
    memset(h, 0, sizeof *h);
    if (!header) return false;
    size_t total = strnlen(header, RF_WEBHOOK_SIG_HEADER_BYTES_MAX + 1);
    if (total > RF_WEBHOOK_SIG_HEADER_BYTES_MAX) return false;
    /* each turn consumes one ','-separated item: bounded by the length */
    for (const char *p = header; p < header + total;) {
        size_t len = strcspn(p, ",");
        while (len && (*p == ' ')) p++, len--;
        if (len && !parse_item(p, len, h)) return false;
        p += len + 1;
    }
    return h->has_t && h->n_v1 > 0;
}

rf_err webhook_sig_verify(const char *header, const char *body, size_t body_len,
                          const struct webhook_secret_key *secrets, int n, int64_t now_s,
                          int64_t tolerance_s) {
    RF_ASSERT(n >= 0 && n <= RF_WEBHOOK_SECRETS_MAX && tolerance_s > 0);
    struct parsed_header h;
    if (!parse_header(header, &h)) return RF_ERR_WEBHOOK_SIGNATURE_MALFORMED;
    bool match = false;
    for (int s = 0; s < n; s++) {
        uint8_t want[MAC_BYTES];
        mac(&secrets[s], h.t, body, body_len, want);
        for (int i = 0; i < h.n_v1; i++) /* no early exit: constant work per header */
            match |= sodium_memcmp(want, h.v1[i], MAC_BYTES) == 0;
        sodium_memzero(want, sizeof want);
    }
    if (!match) return RF_ERR_WEBHOOK_SIGNATURE_MISMATCH;
    int64_t skew = now_s - h.t;
    if (skew > tolerance_s || skew < -tolerance_s) return RF_ERR_WEBHOOK_TIMESTAMP_STALE;
    return RF_OK;
}

void webhook_sig_sign(const char *secret, size_t secret_len, int64_t t, const char *body,
                      size_t body_len, char *out, size_t cap) {
    RF_ASSERT(cap >= 80);
    struct webhook_secret_key k = {secret, secret_len};
    uint8_t m[MAC_BYTES];
    mac(&k, t, body, body_len, m);
    char hex[2 * MAC_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, m, sizeof m);
    snprintf(out, cap, "t=%" PRId64 ",v1=%s", t, hex);
}
