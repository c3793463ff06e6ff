/*
 * server.h - the HTTP server's lifecycle: start listening, stop gracefully.
 * The only interface between the CLI and libmicrohttpd.
 */
#ifndef RF_HTTP_SERVER_H
#define RF_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "racefree.h"

#define RF_HOST_BYTES 64

struct rf_http_config {
    rf *db;
    const char *host;       /* an IPv4 address or "localhost" */
    int port;               /* 0: any free port (see rf_http_port) */
    size_t body_max_bytes;  /* 0: RF_BODY_BYTES_MAX */
    bool test_hooks;        /* serve the hidden /v1/_test routes */
};

struct rf_http_server;

/* Parses "HOST:PORT" (port 0-65535). */
bool rf_http_parse_listen(const char *text, char host[RF_HOST_BYTES], int *port);

/* Starts serving on internal threads. NULL and a message in err on failure. */
struct rf_http_server *rf_http_start(const struct rf_http_config *cfg, char *err, size_t err_cap);
/* The port actually bound. */
int rf_http_port(const struct rf_http_server *s);
/* Stops accepting connections, answers new requests on open connections with
 * 503 shutting_down, waits for in-flight requests (at most
 * RF_SHUTDOWN_DRAIN_MS), stops the daemon and frees s. */
void rf_http_stop(struct rf_http_server *s);

#endif
