/*
 * test_probe_req - the request `racefree probe` reads (src/cli/probe_req.c):
 * raw requests and curl command lines become exactly the method, target,
 * headers and body they say, and what the parser cannot honour is refused
 * with a reason, never guessed at.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cli/probe.h"

static struct probe_req parse_ok(const char *text) {
    struct probe_req r;
    char why[256] = "";
    if (!probe_req_parse(text, strlen(text), &r, why, sizeof why)) fail_msg("%s: %s", text, why);
    return r;
}

static void refused(const char *text, const char *reason) {
    struct probe_req r;
    char why[256] = "";
    assert_false(probe_req_parse(text, strlen(text), &r, why, sizeof why));
    if (!strstr(why, reason)) fail_msg("'%s' refused with '%s', want '%s'", text, why, reason);
}

static void test_raw(void **state) {
    (void)state;
    struct probe_req r = parse_ok("POST /v1/x?a=1 HTTP/1.1\r\nHost: api.example:8080\r\n"
                                  "X-One: 1\r\nContent-Length: 7\r\n\r\n{\"a\":1}\n");
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.path, "/v1/x?a=1");
    assert_string_equal(r.base, "http://api.example:8080");
    assert_int_equal(r.n_headers, 2); /* Host became the base */
    assert_string_equal(r.headers[0], "X-One: 1");
    assert_int_equal(r.body_len, 7); /* Content-Length cuts the editor's newline */
    assert_memory_equal(r.body, "{\"a\":1}", 7);
    probe_req_free(&r);
    r = parse_ok("GET http://h:1/p HTTP/1.1\nAccept: */*\n\n");
    assert_string_equal(r.base, "http://h:1");
    assert_string_equal(r.path, "/p");
    assert_null(r.body);
    probe_req_free(&r);
}

static void test_curl(void **state) {
    (void)state;
    struct probe_req r = parse_ok("curl -sS -XPUT -H 'A: b c' \\\n  -H\"K: \\\"q\\\"\" "
                                  "--data-raw '{\"x\":\"$HOME\"}' http://h:2/u/1");
    assert_string_equal(r.method, "PUT");
    assert_string_equal(r.base, "http://h:2");
    assert_string_equal(r.path, "/u/1");
    assert_int_equal(r.n_headers, 3);
    assert_string_equal(r.headers[0], "A: b c");
    assert_string_equal(r.headers[1], "K: \"q\"");
    assert_string_equal(r.headers[2], "Content-Type: application/x-www-form-urlencoded");
    assert_string_equal(r.body, "{\"x\":\"$HOME\"}"); /* single quotes: no expansion */
    probe_req_free(&r);
    r = parse_ok("curl --json '{}' -d a=1 http://h/j");
    assert_string_equal(r.method, "POST"); /* data without -X: POST, as curl does */
    assert_string_equal(r.body, "{}&a=1");
    assert_string_equal(r.headers[0], "Content-Type: application/json");
    assert_string_equal(r.headers[1], "Accept: application/json");
    probe_req_free(&r);
    r = parse_ok("curl http://h");
    assert_string_equal(r.method, "GET");
    assert_string_equal(r.path, "/");
    probe_req_free(&r);
}

static void test_refused(void **state) {
    (void)state;
    refused("curl -F a=b http://h/x", "'-F' is not supported");
    refused("curl -d @file.json http://h/x", "data from a file");
    refused("curl -H \"Authorization: Bearer $KEY\" http://h/x", "needs a shell");
    refused("curl -H 'unterminated http://h/x", "unterminated ' quote");
    refused("curl -X", "needs a value");
    refused("curl -s", "names no URL");
    refused("curl ftp://h/x", "neither an http:// URL");
    refused("BREW /pot HTCPCP/1.0\r\n\r\n", "not 'METHOD TARGET HTTP/1.x'");
    refused("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding");
    refused("POST /x HTTP/1.1\r\nContent-Length: 99\r\n\r\nshort", "does not fit");
    refused("GET /x HTTP/1.1\r\nno colon here\r\n\r\n", "has no 'Name:'");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw),
        cmocka_unit_test(test_curl),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
