/*
 * http1.h - a strict HTTP/1.1 request parser (RFC 9112), pure: no sockets,
 * no allocation, no clock. server.c feeds it bytes; unit tests feed it
 * malformed input.
 *
 * Owns the framing decisions, so every framing error has one stable code:
 *   400 invalid_request_line   request line not "METHOD SP /target SP HTTP/d.d"
 *   505 http_version_not_supported  a well-formed version other than 1.0/1.1
 *   400 invalid_header         a header line that is not "token: value"
 *   431 headers_too_large      header section over RF_HEADER_BYTES_MAX or
 *                              more than RF_HTTP_HEADERS_MAX fields
 *   400 missing_host           HTTP/1.1 without exactly one Host
 *   400 invalid_content_length bad, negative, overflowing or conflicting
 *                              Content-Length, or both it and Transfer-Encoding
 *   501 unsupported_transfer_encoding  Transfer-Encoding other than chunked
 *   400 malformed_chunked_body bad chunk size line, missing CRLF, oversized
 *                              extension or trailer section
 * A framing error leaves the connection's byte stream unknown, so the server
 * answers it with Connection: close.
 */
#ifndef RF_HTTP_HTTP1_H
#define RF_HTTP_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/limits.h"
#include "http/http.h"

struct rf_h1_field {
    const char *name;   /* NUL-terminated, inside the parsed head */
    const char *value;  /* without surrounding whitespace */
};

/* One parsed request head. Strings point into the buffer given to
 * rf_h1_parse_head, which is edited in place (NULs inserted). */
struct rf_h1_req {
    const char *method;
    const char *path;          /* raw, from '/' up to '?' (exclusive) */
    const char *query;         /* raw, after '?'; "" when none */
    int minor;                 /* HTTP/1.<minor>: 0 or 1 */
    struct rf_h1_field fields[RF_HTTP_HEADERS_MAX];
    int n_fields;
    int64_t content_length;    /* -1: none */
    bool chunked;              /* Transfer-Encoding: chunked */
    bool keep_alive;           /* the connection may carry another request */
    bool expect_continue;      /* Expect: 100-continue */
};

/* Bytes of empty lines (CRLF or LF) before a request line; RFC 9112 2.2 lets
 * a server ignore them (some clients send one after a body). */
size_t rf_h1_skip_empty_lines(const char *buf, size_t len);

/* The length of the header section in buf[0..len) including its blank line,
 * or 0 when it is not complete yet. */
size_t rf_h1_head_end(const char *buf, size_t len);

/* Parses a complete head of len bytes (as rf_h1_head_end measured it;
 * head[len] is writable and gets a NUL). False with p filled on a framing
 * error. */
bool rf_h1_parse_head(char *head, size_t len, struct rf_h1_req *r, struct rf_problem *p);

/* Case-insensitive field lookup: the first value, or NULL. */
const char *rf_h1_field(const struct rf_h1_req *r, const char *name);

/* ---- chunked bodies ------------------------------------------------------ */

struct rf_h1_chunked {
    int state;
    uint64_t remaining;     /* data bytes left in the current chunk */
    int size_digits;
    size_t line_bytes;      /* size line (with extensions) or trailer bytes so far */
};

enum rf_h1_chunk_rc {
    RF_H1_CHUNK_MORE,       /* needs more input (or returned a data span) */
    RF_H1_CHUNK_DONE,       /* the last chunk and trailers are complete */
    RF_H1_CHUNK_BAD,        /* malformed: 400 malformed_chunked_body */
};

void rf_h1_chunked_init(struct rf_h1_chunked *c);

/* Decodes from in[0..n): *used gets the bytes consumed. When a piece of body
 * data is found it stops there: *data and *data_len point at it (inside in) and
 * the result is MORE; call again with the rest. *data_len is 0 otherwise. */
enum rf_h1_chunk_rc rf_h1_chunked_feed(struct rf_h1_chunked *c, const char *in, size_t n,
                                       size_t *used, const char **data, size_t *data_len);

#endif
