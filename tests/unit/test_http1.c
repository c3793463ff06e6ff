/*
 * test_http1.c - the HTTP/1.1 request parser (src/http/http1.c) without a
 * socket: well-formed heads, every framing error with its status and code,
 * and the chunked decoder on valid, split and malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/limits.h"
#include "http/http1.h"
#include "http/respond.h"

/* Parses text as a complete head; returns the problem code or NULL. The
 * parsed request stays valid until the next call. */
static struct rf_h1_req req;
static struct rf_problem prob;
static char headbuf[4 * RF_HEADER_BYTES_MAX];

static const char *parse(const char *text) {
    size_t len = strlen(text);
    assert_true(len < sizeof headbuf);
    memcpy(headbuf, text, len + 1);
    size_t end = rf_h1_head_end(headbuf, len);
    assert_int_equal(end, len); /* the cases are whole heads */
    memset(&prob, 0, sizeof prob);
    return rf_h1_parse_head(headbuf, end, &req, &prob) ? NULL : rf_err_code(prob.err);
}

static void expect_error(const char *text, int status, const char *code) {
    const char *got = parse(text);
    if (!got || strcmp(got, code) != 0 || rf_err_status(prob.err) != status)
        fail_msg("%s: expected %d %s, got %d %s", text, status, code, rf_err_status(prob.err),
                 got ? got : "(parsed)");
}

static void test_good_heads(void **state) {
    (void)state;
    assert_null(parse("GET /v1/keys?limit=5&after=a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_string_equal(req.method, "GET");
    assert_string_equal(req.path, "/v1/keys");
    assert_string_equal(req.query, "limit=5&after=a%2Fb");
    assert_int_equal(req.minor, 1);
    assert_true(req.keep_alive);
    assert_int_equal(req.content_length, -1);

    /* the raw path is kept: no decoding, %00 and %2F stay as they are */
    assert_null(parse("DELETE /v1/keys/abc%00zzz HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_string_equal(req.path, "/v1/keys/abc%00zzz");
    assert_string_equal(req.query, "");

    assert_null(parse("POST /a HTTP/1.1\r\nhost: x\r\ncontent-length:  12 \r\n"
                      "Connection: Keep-Alive, close\r\nExpect: 100-Continue\r\n\r\n"));
    assert_int_equal(req.content_length, 12);
    assert_false(req.keep_alive);
    assert_true(req.expect_continue);
    assert_string_equal(rf_h1_field(&req, "CONTENT-LENGTH"), "12");

    assert_null(parse("POST /a HTTP/1.1\nHost: x\nTransfer-Encoding: Chunked\n\n")); /* bare LF */
    assert_true(req.chunked);
    assert_null(parse("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 7, 7\r\n"
                      "Content-Length: 7\r\n\r\n"));
    assert_int_equal(req.content_length, 7);

    /* HTTP/1.0: no Host needed, keep-alive only when asked */
    assert_null(parse("GET /healthz HTTP/1.0\r\n\r\n"));
    assert_false(req.keep_alive);
    assert_null(parse("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    assert_true(req.keep_alive);

    /* absolute form: the authority is dropped */
    assert_null(parse("GET http://h:1/healthz?x=1 HTTP/1.1\r\nHost: h:1\r\n\r\n"));
    assert_string_equal(req.path, "/healthz");
    assert_string_equal(req.query, "x=1");
}

static void test_request_line_errors(void **state) {
    (void)state;
    const char *bad[] = {
        "GET /a\r\nHost: x\r\n\r\n",
        "GET  /a HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /a  HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET a HTTP/1.1\r\nHost: x\r\n\r\n",
        "G(T /a HTTP/1.1\r\nHost: x\r\n\r\n",
        " /a HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /a HTTP/1.1x\r\nHost: x\r\n\r\n",
        "GET /a http/1.1\r\nHost: x\r\n\r\n",
        "GET /a HTTP/11\r\nHost: x\r\n\r\n",
        "GET /a HTTP/1.1\rX\r\nHost: x\r\n\r\n",
        "GET http://nopath HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(bad[i], 400, "invalid_request_line");
    expect_error("GET /a HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported");
    expect_error("GET /a HTTP/1.2\r\nHost: x\r\n\r\n", 505, "http_version_not_supported");
    expect_error("GET /a HTTP/0.9\r\nHost: x\r\n\r\n", 505, "http_version_not_supported");
}

static void test_header_errors(void **state) {
    (void)state;
    expect_error("GET /a HTTP/1.1\r\nHost : x\r\n\r\n", 400, "invalid_header");
    expect_error("GET /a HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400, "invalid_header");
    expect_error("GET /a HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", 400, "invalid_header");
    expect_error("GET /a HTTP/1.1\r\nHost: x\r\nA: b\r\n folded\r\n\r\n", 400, "invalid_header");
    expect_error("GET /a HTTP/1.1\r\nHost: x\r\nA: b\x01\r\n\r\n", 400, "invalid_header");
    expect_error("GET /a HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n", 400, "invalid_header");
    expect_error("GET /a HTTP/1.1\r\n\r\n", 400, "missing_host");
    expect_error("GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "missing_host");

    /* too many fields, and a section over the byte limit */
    static char many[RF_HEADER_BYTES_MAX * 2];
    int n = snprintf(many, sizeof many, "GET /a HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < RF_HTTP_HEADERS_MAX; i++)
        n += snprintf(many + n, sizeof many - (size_t)n, "X%d: 1\r\n", i);
    snprintf(many + n, sizeof many - (size_t)n, "\r\n");
    expect_error(many, 431, "headers_too_large");
    n = snprintf(many, sizeof many, "GET /a HTTP/1.1\r\nHost: x\r\nBig: ");
    memset(many + n, 'a', RF_HEADER_BYTES_MAX);
    strcpy(many + n + RF_HEADER_BYTES_MAX, "\r\n\r\n");
    expect_error(many, 431, "headers_too_large");
}

/* A header line that starts with a NUL is a bad line, not the blank line
 * that ends the head: it used to end the field loop and fail the parser's
 * assertion, so one such request stopped the server (found by fuzz_http1;
 * its input is kept in tests/fuzz/regressions/fuzz_http1/). */
static void test_nul_first_header_line(void **state) {
    (void)state;
#define HEAD(text) {text, sizeof text - 1} /* the NUL inside counts */
    static const struct {
        const char *text;
        size_t len;
    } heads[] = {HEAD("GET /a HTTP/1.1\r\nHost: x\r\n\0zz\r\n\r\n"),
                 HEAD("GET /a HTTP/1.0\n\0\n\n"), HEAD("GET /a HTTP/1.1\r\n\0Host: x\r\n\r\n")};
#undef HEAD
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        size_t len = heads[i].len;
        memcpy(headbuf, heads[i].text, len);
        assert_int_equal(rf_h1_head_end(headbuf, len), len);
        memset(&prob, 0, sizeof prob);
        assert_false(rf_h1_parse_head(headbuf, len, &req, &prob));
        assert_string_equal(rf_err_code(prob.err), "invalid_header");
    }
}

static void test_framing_errors(void **state) {
    (void)state;
    const char *bad_cl[] = {
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad_cl / sizeof bad_cl[0]; i++)
        expect_error(bad_cl[i], 400, "invalid_content_length");
    const char *bad_te[] = {
        "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad_te / sizeof bad_te[0]; i++)
        expect_error(bad_te[i], 501, "unsupported_transfer_encoding");
}

static void test_head_end(void **state) {
    (void)state;
    assert_int_equal(rf_h1_head_end("GET / HTTP/1.1\r\nHost: x\r\n", 25), 0);
    assert_int_equal(rf_h1_head_end("GET / HTTP/1.1\r\nHost: x\r\n\r", 26), 0);
    assert_int_equal(rf_h1_head_end("GET / HTTP/1.1\r\n\r\nBODY", 22), 18);
    assert_int_equal(rf_h1_skip_empty_lines("\r\n\nGET", 6), 3);
    assert_int_equal(rf_h1_skip_empty_lines("\rGET", 4), 0);
}

/* ---- chunked ---------------------------------------------------------------- */

/* Decodes in, feeding `step` bytes at a time; the body into out. Returns
 * the last result. */
static enum rf_h1_chunk_rc decode(const char *in, size_t step, char *out, size_t *out_len) {
    struct rf_h1_chunked c;
    rf_h1_chunked_init(&c);
    size_t n = strlen(in), at = 0;
    *out_len = 0;
    enum rf_h1_chunk_rc rc = RF_H1_CHUNK_MORE;
    while (at < n && rc == RF_H1_CHUNK_MORE) {
        size_t avail = n - at < step ? n - at : step;
        size_t used = 0, dlen = 0;
        const char *data = NULL;
        rc = rf_h1_chunked_feed(&c, in + at, avail, &used, &data, &dlen);
        assert_true(used <= avail);
        if (dlen) memcpy(out + *out_len, data, dlen);
        *out_len += dlen;
        at += used;
    }
    if (rc == RF_H1_CHUNK_DONE) assert_int_equal(at, n); /* stops right after the end */
    return rc;
}

static void test_chunked_good(void **state) {
    (void)state;
    const char *in = "5\r\nhello\r\n7;ext=1;q=\"x\"\r\n, world\r\n0\r\nTrailer: t\r\n\r\n";
    for (size_t step = 1; step <= strlen(in); step++) {
        char out[64];
        size_t len = 0;
        assert_int_equal(decode(in, step, out, &len), RF_H1_CHUNK_DONE);
        assert_int_equal(len, 12);
        assert_memory_equal(out, "hello, world", 12);
    }
    char out[64];
    size_t len = 0;
    assert_int_equal(decode("A \r\n0123456789\n0\n\n", 100, out, &len), RF_H1_CHUNK_DONE);
    assert_int_equal(len, 10);
    assert_int_equal(decode("0\r\n\r\n", 100, out, &len), RF_H1_CHUNK_DONE);
    assert_int_equal(len, 0);
    assert_int_equal(decode("5\r\nhel", 100, out, &len), RF_H1_CHUNK_MORE); /* incomplete */
}

static void test_chunked_bad(void **state) {
    (void)state;
    const char *bad[] = {
        "zz\r\n",                       /* not hex */
        "\r\n",                         /* no size */
        "-1\r\n",
        "5 5\r\nhello\r\n0\r\n\r\n",    /* junk after the size */
        "5\r\nhelloX\r\n0\r\n\r\n",     /* data longer than its size */
        "5\r\nhello\rX",                /* CR without LF */
        "5\rX",
        "1000000000000000\r\n",         /* 16 hex digits: over the bound */
        "0\r\n\rX",                     /* bad final line */
        "5;\x01\r\n",                   /* control character in an extension */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[64];
        size_t len = 0;
        if (decode(bad[i], 100, out, &len) != RF_H1_CHUNK_BAD) fail_msg("accepted: %s", bad[i]);
    }
    /* an endless extension and an endless trailer section are bounded */
    static char ext[RF_HTTP_CHUNK_LINE_BYTES_MAX + 16];
    memset(ext, 'a', sizeof ext - 1);
    memcpy(ext, "1;", 2);
    char out[64];
    size_t len = 0;
    assert_int_equal(decode(ext, 100, out, &len), RF_H1_CHUNK_BAD);
    static char trailer[RF_HEADER_BYTES_MAX + 32];
    memset(trailer, 'a', sizeof trailer - 1);
    memcpy(trailer, "0\r\nT: ", 6);
    assert_int_equal(decode(trailer, 100, out, &len), RF_H1_CHUNK_BAD);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_heads),       cmocka_unit_test(test_request_line_errors),
        cmocka_unit_test(test_header_errors),    cmocka_unit_test(test_framing_errors),
        cmocka_unit_test(test_head_end),         cmocka_unit_test(test_chunked_good),
        cmocka_unit_test(test_chunked_bad),      cmocka_unit_test(test_nul_first_header_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
