/*
 * fuzz_headers.c - the request header values a client controls, each
 * parser run over the same value (a header value as the HTTP parser hands
 * it over: NUL-terminated, so a NUL in the input ends it): Idempotency-Key,
 * If-Match, Authorization (the bearer token, then the key text split into
 * id and secret, as authentication does before it reads the store),
 * X-Request-Id and Content-Type.
 *
 * Invariants: what a parser accepts is within the bounds it promises (a
 * key of 1-255 printable characters, a version >= 0, a token inside the
 * value and printable, a key id that is an id).
 */
#include <stdbool.h>

#include "base/ids.h"
#include "core/core.h"
#include "fuzz/fuzz.h"
#include "http/request.h"

static void idempotency_key(const char *v) {
    const char *key = NULL;
    struct rf_problem p = {0};
    if (rf_idem_key_parse(v, &key, &p)) {
        FUZZ_CHECK(key == v);
        size_t n = strlen(key);
        FUZZ_CHECK(n >= 1 && n <= RF_IDEM_KEY_CHARS_MAX);
        for (size_t i = 0; i < n; i++) FUZZ_CHECK(key[i] >= 0x20 && key[i] < 0x7f);
    } else {
        FUZZ_CHECK(p.err == RF_ERR_INVALID_IDEM_KEY && key == NULL);
    }
}

static void if_match(const char *v) {
    int64_t version = -1;
    struct rf_problem p = {0};
    if (rf_if_match_parse(v, &version, &p)) FUZZ_CHECK(version >= 0);
    else FUZZ_CHECK(p.err == RF_ERR_INVALID_IF_MATCH && version == 0);
}

static void authorization(const char *v) {
    const char *token = rf_bearer_token(v);
    if (!token) return;
    size_t n = strlen(token);
    FUZZ_CHECK(token > v && token + n == v + strlen(v));
    FUZZ_CHECK(n >= 1 && n < RF_KEY_SECRET_BYTES);
    for (size_t i = 0; i < n; i++) FUZZ_CHECK(token[i] > 0x20 && token[i] < 0x7f);
    char id[RF_UUID_TEXT_BYTES];
    const char *secret = NULL;
    if (key_text_parse(token, id, &secret)) {
        FUZZ_CHECK(rf_id_valid(id) && secret > token && secret < token + n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *v = fuzz_cstr(data, size);
    idempotency_key(v);
    if_match(v);
    authorization(v);
    if (rf_request_id_valid(v)) FUZZ_CHECK(strlen(v) <= RF_REQUEST_ID_CHARS_MAX);
    (void)rf_media_type_json(v);
    free(v);
    return 0;
}
