/*
 * ids.c - UUIDv7 ids from libsodium randomness, and the validation of what
 * clients send: ids, printable ASCII, and UTF-8 text counted in characters.
 */
#include "base/ids.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>

#include "base/assert.h"
#include "base/limits.h"

/* ---- random bytes for ids ------------------------------------------------
 * randombytes_buf is a getrandom(2) per call, and every operation and every
 * request took one for its id (a system call is dear on this project's VMs).
 * Instead each thread draws from a ChaCha20 keystream under a key of its
 * own from randombytes_buf, a fresh nonce per refill, the used bytes wiped
 * (arc4random's construction). A forked child gets a new key before its
 * first id (pthread_atfork bumps the generation), so parent and child never
 * share a stream. */
#define RNG_POOL_BYTES 256

struct rng {
    uint8_t key[crypto_stream_chacha20_KEYBYTES];
    uint64_t nonce;
    uint64_t generation;
    bool keyed;
    int left; /* unused bytes at the end of pool */
    uint8_t pool[RNG_POOL_BYTES];
};

static _Thread_local struct rng tl_rng;
static atomic_uint_fast64_t rng_generation = 1;
static pthread_once_t rng_atfork_once = PTHREAD_ONCE_INIT;

static void rng_forked(void) { atomic_fetch_add(&rng_generation, 1); }
static void rng_atfork(void) { (void)pthread_atfork(NULL, NULL, rng_forked); }

static void rng_refill(struct rng *r) {
    uint64_t generation = atomic_load(&rng_generation);
    if (!r->keyed || r->generation != generation) {
        (void)pthread_once(&rng_atfork_once, rng_atfork);
        randombytes_buf(r->key, sizeof r->key);
        r->nonce = 0;
        r->generation = generation;
        r->keyed = true;
    }
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
    for (size_t i = 0; i < sizeof nonce; i++) nonce[i] = (uint8_t)(r->nonce >> (8 * i));
    r->nonce++;
    RF_ASSERT(r->nonce != 0); /* 2^64 refills per key: never */
    crypto_stream_chacha20(r->pool, sizeof r->pool, nonce, r->key);
    r->left = (int)sizeof r->pool;
}

void rf_random_id_bytes(void *buf, size_t n) {
    struct rng *r = &tl_rng;
    uint8_t *out = buf;
    if (r->keyed && r->generation != atomic_load(&rng_generation)) r->left = 0; /* forked */
    while (n > 0) {
        if (r->left == 0) rng_refill(r);
        size_t take = n < (size_t)r->left ? n : (size_t)r->left;
        uint8_t *from = r->pool + (size_t)r->left - take;
        memcpy(out, from, take);
        sodium_memzero(from, take); /* what was handed out is not kept */
        r->left -= (int)take;
        out += take;
        n -= take;
    }
}

void rf_uuid7(int64_t now_ms, char out[RF_UUID_TEXT_BYTES]) {
    uint8_t b[16];
    rf_random_id_bytes(b, sizeof b);
    uint64_t ts = (uint64_t)now_ms;
    for (int i = 0; i < 6; i++) b[i] = (uint8_t)(ts >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f));
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));
    /* 8-4-4-4-12 hex digits; each group's NUL is overwritten by the dash
     * (one id per operation and per transfer: no formatting per call). */
    static const int groups[5] = {4, 2, 2, 2, 6};
    char *at = out;
    const uint8_t *from = b;
    for (int g = 0; g < 5; g++) {
        if (g) *at++ = '-';
        rf_hex(from, (size_t)groups[g], at);
        at += 2 * groups[g];
        from += groups[g];
    }
    RF_ASSERT(at == out + RF_UUID_TEXT_BYTES - 1 && *at == '\0');
}

int rf_i64_text(int64_t v, char out[RF_I64_TEXT_BYTES]) {
    char rev[RF_I64_TEXT_BYTES];
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v; /* INT64_MIN too */
    int n = 0;
    do {
        rev[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    int len = 0;
    if (v < 0) out[len++] = '-';
    while (n) out[len++] = rev[--n];
    out[len] = '\0';
    RF_ASSERT(len < RF_I64_TEXT_BYTES);
    return len;
}

bool rf_id_valid(const char *s) {
    if (!s) return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= RF_ID_CHARS_MAX) return false;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok) return false;
    }
    /* "." and ".." name no resource: a path holding them as a segment is
     * rewritten by clients and proxies (RFC 3986 dot-segment removal). */
    return n >= 1 && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* The length of the UTF-8 sequence that starts with byte c and the smallest
 * code point it may encode (so overlong forms are refused); 0: not a lead. */
static int utf8_lead(unsigned char c, uint32_t *cp, uint32_t *min) {
    static const uint32_t mins[5] = {0, 0, 0x80, 0x800, 0x10000};
    static const unsigned char masks[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    int len = c < 0x80                ? 1
              : c >= 0xC2 && c <= 0xDF ? 2
              : c >= 0xE0 && c <= 0xEF ? 3
              : c >= 0xF0 && c <= 0xF4 ? 4
                                       : 0;
    *cp = c & masks[len];
    *min = mins[len];
    return len;
}

size_t rf_utf8_chars(const char *s) {
    RF_ASSERT(s);
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (*p) {
        uint32_t cp, min;
        int len = utf8_lead(*p, &cp, &min);
        if (len == 0) return SIZE_MAX;
        for (int i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80) return SIZE_MAX; /* also stops at the NUL */
            cp = (cp << 6) | (p[i] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return SIZE_MAX;
        p += len;
        n++;
    }
    return n;
}

void rf_printable_force(char *s) {
    for (char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) *c = '?';
}

bool rf_printable_valid(const char *s, size_t max_chars) {
    if (!s) return false;
    size_t n = 0;
    for (; s[n]; n++) {
        if (n >= max_chars) return false;
        if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e) return false;
    }
    return n >= 1;
}

void rf_strcpy(char *dst, size_t cap, const char *src) {
    RF_ASSERT(dst && cap > 0);
    if (!src) src = "";
    size_t n = strlen(src);
    RF_ASSERT(n < cap);
    memcpy(dst, src, n + 1);
}

void rf_hex(const uint8_t *bytes, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

bool rf_schema_name_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > RF_PG_SCHEMA_CHARS_MAX || strncmp(s, "pg_", 3) == 0) return false;
    if (s[0] >= '0' && s[0] <= '9') return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}
