/*
 * raw_http.c - raw HTTP/1.1 over one TCP connection (see raw_http.h).
 * Bounded: RAW_BUF_BYTES per connection, every wait has a timeout.
 */
#include "raw_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

int raw_connect_fd(int port, const char *src_ip, bool nonblock) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (src_ip) {
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
        if (inet_pton(AF_INET, src_ip, &src.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno; /* ECONNREFUSED tells a refused connection apart */
        close(fd);
        errno = e;
        return -1;
    }
    if (nonblock) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

int raw_open(struct raw_conn *c, int port) {
    c->len = 0;
    c->buf = malloc(RAW_BUF_BYTES);
    c->fd = c->buf ? raw_connect_fd(port, NULL, false) : -1;
    if (c->fd < 0) {
        free(c->buf);
        c->buf = NULL;
        return -1;
    }
    return 0;
}

void raw_close(struct raw_conn *c) {
    if (c->fd >= 0) close(c->fd);
    free(c->buf);
    c->fd = -1;
    c->buf = NULL;
}

int raw_send(struct raw_conn *c, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int raw_send_str(struct raw_conn *c, const char *text) { return raw_send(c, text, strlen(text)); }

/* Receives more bytes within the deadline (kept NUL-terminated): >0 bytes,
 * 0 EOF, -1 error (errno; ETIMEDOUT for the deadline, ENOBUFS when full). */
static ssize_t fill(struct raw_conn *c, int64_t deadline) {
    int64_t left = deadline - rf_t_now_ms();
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (c->len + 1 >= RAW_BUF_BYTES) return errno = ENOBUFS, -1;
    if (left <= 0 || poll(&p, 1, (int)left) <= 0) return errno = ETIMEDOUT, -1;
    ssize_t n = recv(c->fd, c->buf + c->len, RAW_BUF_BYTES - 1 - c->len, 0);
    if (n > 0) c->len += (size_t)n;
    c->buf[c->len] = '\0';
    return n;
}

static int fail(struct rf_t_resp *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->errmsg, sizeof out->errmsg, fmt, ap);
    va_end(ap);
    out->err = EPROTO;
    out->status = 0;
    return -1;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) abort();
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Parses the head buf[0..end) into out; the Content-Length into *cl. */
static int parse_head(const char *buf, size_t end, struct rf_t_resp *out, size_t *cl) {
    if (sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) return fail(out, "bad status line");
    *cl = 0;
    const char *line = strstr(buf, "\r\n") + 2;
    while (line < buf + end - 2 && out->n_headers < RF_T_HEADERS_MAX) {
        const char *eol = strstr(line, "\r\n"), *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon) return fail(out, "bad header line");
        const char *v = colon + 1;
        while (*v == ' ') v++;
        struct rf_t_header *h = &out->headers[out->n_headers++];
        h->name = dup_n(line, (size_t)(colon - line));
        h->value = dup_n(v, (size_t)(eol - v));
        if (strcasecmp(h->name, "Content-Length") == 0) *cl = strtoul(h->value, NULL, 10);
        line = eol + 2;
    }
    return 0;
}

int raw_read(struct raw_conn *c, struct rf_t_resp *out, int timeout_ms) {
    memset(out, 0, sizeof *out);
    int64_t deadline = rf_t_now_ms() + timeout_ms;
    c->buf[c->len] = '\0';
    char *end;
    while (!(end = strstr(c->buf, "\r\n\r\n"))) {
        ssize_t got = fill(c, deadline);
        if (got <= 0) { /* a reset before any byte is told apart (out->err) */
            bool reset = got < 0 && errno == ECONNRESET && c->len == 0;
            fail(out, reset ? "reset before any answer" : "no complete response head");
            if (reset) out->err = ECONNRESET;
            return -1;
        }
    }
    size_t head = (size_t)(end + 4 - c->buf), cl = 0;
    if (parse_head(c->buf, head, out, &cl) != 0) return -1;
    while (c->len < head + cl) {
        if (fill(c, deadline) <= 0) return fail(out, "response body cut short");
    }
    out->body = dup_n(c->buf + head, cl);
    out->body_len = cl;
    memmove(c->buf, c->buf + head + cl, c->len - head - cl);
    c->len -= head + cl;
    return 0;
}

bool raw_wait_closed(struct raw_conn *c, int timeout_ms) {
    int64_t deadline = rf_t_now_ms() + timeout_ms;
    for (;;) {
        c->len = 0; /* late bytes are not the point here */
        ssize_t n = fill(c, deadline);
        if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE))) return true;
        if (n < 0 && errno == ETIMEDOUT) return false;
    }
}
