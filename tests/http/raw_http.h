/*
 * raw_http.h - raw HTTP/1.1 over one TCP connection, for the black-box tests
 * that the one-request-per-connection client in tests/testlib cannot
 * express: malformed framing, pipelining, keep-alive, Expect: 100-continue,
 * slow and idle clients. Responses land in struct rf_t_resp, so the usual
 * assertions (RF_ASSERT_PROBLEM) apply.
 */
#ifndef RF_RAW_HTTP_H
#define RF_RAW_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "testlib/rf_testlib.h"

#define RAW_BUF_BYTES (256 * 1024)

struct raw_conn {
    int fd;
    char *buf;      /* received, not yet returned as a response */
    size_t len;
};

/* Connects to 127.0.0.1:port from src_ip ("127.0.0.2"; NULL: any). -1 on
 * failure. nonblock: the socket stays non-blocking (for floods). */
int raw_connect_fd(int port, const char *src_ip, bool nonblock);
/* A blocking connection with a buffer; 0 or -1 (errno ECONNREFUSED when
 * nothing listens). */
int raw_open(struct raw_conn *c, int port);
void raw_close(struct raw_conn *c);
/* Sends all of data (len bytes); 0 or -1. */
int raw_send(struct raw_conn *c, const void *data, size_t len);
int raw_send_str(struct raw_conn *c, const char *text);
/* Reads one response (status line, headers, Content-Length body) within
 * timeout_ms. 0, or -1 with out->errmsg set. */
int raw_read(struct raw_conn *c, struct rf_t_resp *out, int timeout_ms);
/* True when the server closes the connection (EOF or reset) within
 * timeout_ms, after any bytes still in flight. */
bool raw_wait_closed(struct raw_conn *c, int timeout_ms);

#endif
