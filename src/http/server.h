/*
 * server.h - the HTTP server's lifecycle: start listening, stop gracefully.
 * The only interface between the CLI and racefree's own HTTP/1.1 server
 * (server.c: connections, deadlines, limits; exchange.c: one request;
 * http1.c: the parser).
 */
#ifndef RF_HTTP_SERVER_H
#define RF_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/limits.h"
#include "racefree.h"

#define RF_HOST_BYTES 64

struct rf_http_config {
    rf *db;
    const char *host;       /* an IPv4 address or "localhost" */
    int port;               /* 0: any free port (see rf_http_port) */
    size_t body_max_bytes;  /* 0: RF_BODY_BYTES_MAX */
    bool test_hooks;        /* serve the hidden /v1/_test routes */
    bool reuse_port;        /* SO_REUSEPORT: several processes share one port */
    /* Connection handling; 0 means the default from limits.h. */
    int workers;            /* handler threads: RF_HTTP_WORKERS_DEFAULT */
    int conns_max;          /* open connections: RF_HTTP_CONNS_MAX */
    int client_conns_max;   /* open connections per client IP: RF_HTTP_CLIENT_CONNS_MAX */
    int header_timeout_ms;  /* a request's header section: RF_HTTP_HEADER_TIMEOUT_MS */
    int body_timeout_ms;    /* a request's body: RF_HTTP_BODY_TIMEOUT_MS */
    int idle_timeout_ms;    /* keep-alive between requests: RF_HTTP_IDLE_TIMEOUT_MS */
    int webhook_tolerance_s; /* |now - signature t| accepted: RF_WEBHOOK_TOLERANCE_S_DEFAULT */
    struct scheduler *scheduler; /* serve --schedule (core/schedule.h); NULL: none */
    /* serve --rate-limit ROLE=N/PERIOD, by the role's bit index (quota 0:
     * none); a key's own limit overrides its role's. */
    struct rf_rate_limit role_limits[RF_ROLES_COUNT];
    /* --unauth-rate-limit: requests without a valid key per client IP, in
     * this process (quota 0: RF_UNAUTH_RATE_DEFAULT, unless unauth_off) */
    struct rf_rate_limit unauth_limit;
    bool unauth_off;
};

struct rf_http_server;

/* Parses "HOST:PORT" (port 0-65535). */
bool rf_http_parse_listen(const char *text, char host[RF_HOST_BYTES], int *port);

/* Binds and listens on host:port (before anything else is created, so a busy
 * port fails first and changes nothing). The socket, or -1 and a message
 * (with the system's reason) in err. */
int rf_http_listen(const char *host, int port, bool reuse_port, char *err, size_t err_cap);
/* Starts serving on lfd (from rf_http_listen; owned from now on, closed on
 * failure too) on internal threads (one event loop, cfg->workers handler
 * threads). Raises RLIMIT_NOFILE's soft limit to the hard limit. NULL and a
 * message in err on failure. */
struct rf_http_server *rf_http_start(const struct rf_http_config *cfg, int lfd, char *err,
                                     size_t err_cap);
/* The port actually bound. */
int rf_http_port(const struct rf_http_server *s);
/* Drains and stops: closes idle keep-alive connections, finishes the
 * requests already read, answers every request that arrives meanwhile with
 * 503 shutting_down and Connection: close (at most RF_SHUTDOWN_DRAIN_MS),
 * then closes everything and frees s. */
void rf_http_stop(struct rf_http_server *s);

#endif
