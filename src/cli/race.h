/*
 * race.h - the race engine behind `racefree probe` and `racefree torture`:
 * N requests released together over N connections ("last-byte sync", as
 * HTTP race testers do), so that a check-then-insert or a read-modify-write
 * on the server sees them arrive inside one scheduling quantum instead of
 * one after another.
 *
 * Plain HTTP/1.1 over TCP with libc sockets, one request per connection
 * (`Connection: close`). A TLS deployment is reached through a local
 * plain-HTTP port or a proxy in front of it: the engine adds no TLS library.
 * Every size and wait is bounded (src/base/limits.h: RF_RACE_*).
 */
#ifndef RF_CLI_RACE_H
#define RF_CLI_RACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/limits.h"

/* Where requests go: "http://HOST[:PORT][/PREFIX]". */
struct race_target {
    char host[256];     /* as written (a name, an IPv4 address, or an IPv6 one without []) */
    char port[8];
    char prefix[256];   /* a path prefix without the trailing '/', or "" */
    char hostport[272]; /* the Host header's value */
};

/* Parses url into t. False with why (a sentence) when it is not a plain
 * http:// URL (https:// says how to reach a TLS deployment). */
bool race_target_parse(const char *url, struct race_target *t, char *why, size_t why_cap);

/* One request as bytes on the wire (built by race_build). */
struct race_msg {
    char *data;
    size_t len;
    const struct race_target *to;
};

/* Builds "METHOD PREFIX+PATH HTTP/1.1", Host, the given "Name: value"
 * headers (n_headers of them; Host, Content-Length and Connection among them
 * are dropped), Content-Length and Connection: close, then the body. False
 * when it would exceed RF_RACE_REQUEST_BYTES_MAX. Free m->data with free(). */
bool race_build(const struct race_target *to, const char *method, const char *path,
                const char *const *headers, int n_headers, const char *body, size_t body_len,
                struct race_msg *m);

/* What came back for one request. */
struct race_resp {
    int status;          /* 0: no complete response (err says why) */
    char err[128];
    char *raw;           /* the whole response as received (malloc'd, NUL-terminated) */
    size_t head_len;     /* status line and headers, up to and with the blank line */
    char *body;          /* the body (de-chunked), NUL-terminated; points into raw */
    size_t body_len;
    int64_t latency_us;  /* from the last byte sent to the response read in full */
};

/* How together a race was: the release took spread_us from the first last
 * byte to the last one, and the first complete answer came lead_us after
 * the last release (negative: an answer was back before every request was
 * released, so the requests were not all in flight at once). */
struct race_timing {
    int64_t spread_us;
    int64_t lead_us;
};

/* Opens n connections (n <= RF_RACE_COPIES_MAX), sends each request but its
 * last byte, then every last byte at once, and reads every response within
 * timeout_ms of the release. Returns 0 when every connection was opened and
 * its request sent (each out[i] then holds its answer or why there is none);
 * -1 with why when a connection could not be made (nothing was released).
 * timing (may be NULL) receives how together the release was.
 * Free the answers with race_resp_free. */
int race_run(const struct race_msg *msgs, int n, int timeout_ms, struct race_resp *out,
             struct race_timing *timing, char *why, size_t why_cap);
void race_resp_free(struct race_resp *r);

/* A response header's value (case-insensitive name) copied into out; false
 * when absent. */
bool race_resp_header(const struct race_resp *r, const char *name, char *out, size_t cap);

/* The pct-th percentile (0..100, nearest rank) of v[0..n); sorts v. 0 when n is 0. */
int64_t race_percentile(int64_t *v, int n, int pct);

#endif
