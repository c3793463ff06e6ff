/*
 * fuzz_http1.c - the HTTP/1.1 request parser (http/http1.c) over raw bytes
 * from a socket: the server's order (skip blank lines, find the end of the
 * head, parse the head in place, then decode a chunked body), and the
 * chunked decoder on the whole input by itself.
 *
 * Invariants besides "no crash, no sanitizer report": a parsed head is
 * self-consistent (a path starting with '/', HTTP/1.0 or 1.1, never both a
 * Content-Length and chunked), and the chunked decoder gives the same data
 * and the same ending whether the bytes arrive at once or one by one (a
 * request split over TCP segments must not decode differently).
 */
#include <stdbool.h>

#include "fuzz/fuzz.h"
#include "http/http1.h"

struct decoded {
    enum rf_h1_chunk_rc rc;
    size_t used;       /* input bytes consumed when it ended */
    size_t data_len;
    char *data;        /* the body's data bytes, concatenated */
};

/* Feeds in[0..n) in pieces of at most `step` bytes until DONE or BAD. */
static struct decoded decode(const char *in, size_t n, size_t step) {
    struct rf_h1_chunked c;
    rf_h1_chunked_init(&c);
    struct decoded d = {RF_H1_CHUNK_MORE, 0, 0, malloc(n + 1)};
    FUZZ_CHECK(d.data);
    while (d.used < n && d.rc == RF_H1_CHUNK_MORE) {
        size_t piece = n - d.used < step ? n - d.used : step, used;
        const char *data;
        size_t data_len;
        d.rc = rf_h1_chunked_feed(&c, in + d.used, piece, &used, &data, &data_len);
        FUZZ_CHECK(used <= piece);
        FUZZ_CHECK(data_len == 0 || (data >= in + d.used && data + data_len <= in + d.used + used));
        FUZZ_CHECK(used > 0 || d.rc != RF_H1_CHUNK_MORE); /* progress */
        if (data_len) memcpy(d.data + d.data_len, data, data_len);
        d.data_len += data_len;
        d.used += used;
    }
    return d;
}

static void check_chunked(const char *in, size_t n) {
    struct decoded whole = decode(in, n, n ? n : 1), bytes = decode(in, n, 1);
    FUZZ_CHECK(whole.rc == bytes.rc && whole.used == bytes.used);
    FUZZ_CHECK(whole.data_len == bytes.data_len);
    FUZZ_CHECK(memcmp(whole.data, bytes.data, whole.data_len) == 0);
    free(whole.data);
    free(bytes.data);
}

static void check_head(const struct rf_h1_req *r) {
    FUZZ_CHECK(r->method && r->method[0] && r->path && r->path[0] == '/' && r->query);
    FUZZ_CHECK(r->minor == 0 || r->minor == 1);
    FUZZ_CHECK(r->n_fields >= 0 && r->n_fields <= RF_HTTP_HEADERS_MAX);
    FUZZ_CHECK(r->content_length >= -1);
    FUZZ_CHECK(!(r->chunked && r->content_length >= 0));
    FUZZ_CHECK(r->minor == 0 || rf_h1_field(r, "Host") != NULL);
    for (int i = 0; i < r->n_fields; i++) FUZZ_CHECK(r->fields[i].name[0] && r->fields[i].value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *in = (const char *)data;
    check_chunked(in, size);
    size_t skip = rf_h1_skip_empty_lines(in, size);
    FUZZ_CHECK(skip <= size);
    size_t head_len = rf_h1_head_end(in + skip, size - skip);
    if (head_len == 0) return 0;
    FUZZ_CHECK(head_len <= size - skip);
    /* the head on its own buffer, one byte over for the NUL the parser puts */
    char *head = malloc(head_len + 1);
    FUZZ_CHECK(head);
    memcpy(head, in + skip, head_len);
    struct rf_h1_req r;
    struct rf_problem p = {0};
    if (rf_h1_parse_head(head, head_len, &r, &p)) {
        check_head(&r);
        const char *body = in + skip + head_len;
        if (r.chunked) check_chunked(body, size - skip - head_len);
    } else {
        FUZZ_CHECK(p.err != RF_OK);
    }
    free(head);
    return 0;
}
