/*
 * ids.c - UUIDv7 ids from libsodium randomness, and id validation.
 */
#include "base/ids.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/limits.h"

void rf_uuid7(int64_t now_ms, char out[RF_UUID_TEXT_BYTES]) {
    uint8_t b[16];
    randombytes_buf(b, sizeof b);
    uint64_t ts = (uint64_t)now_ms;
    for (int i = 0; i < 6; i++) b[i] = (uint8_t)(ts >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f));
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));
    snprintf(out, RF_UUID_TEXT_BYTES,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
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
    return n >= 1;
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
