/*
 * race.c - the race engine (see race.h): connect N sockets, send every
 * request but its last byte, then the last bytes back to back, then read
 * every answer with one poll loop. The server cannot start handling any of
 * them before its last byte arrives (a request is incomplete without it), so
 * all N become runnable within the few microseconds the release loop takes,
 * whatever the connection setup and request sizes cost before.
 *
 * TCP_NODELAY is set before anything is sent: with Nagle's algorithm the
 * kernel could hold a prefix back and send it with its last byte, which
 * would spread the release over the prefixes' transmission again.
 */
#include "cli/race.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "http/buf.h"

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- targets and requests ------------------------------------------------------ */

static bool split_hostport(const char *hp, size_t n, struct race_target *t) {
    const char *colon = NULL;
    if (n > 0 && hp[0] == '[') { /* [v6]:port */
        const char *close = memchr(hp, ']', n);
        if (!close || (size_t)(close - hp) >= sizeof t->host) return false;
        snprintf(t->host, sizeof t->host, "%.*s", (int)(close - hp - 1), hp + 1);
        if (close + 1 < hp + n && close[1] != ':') return false;
        colon = close + 1 < hp + n ? close + 1 : NULL;
    } else {
        colon = memchr(hp, ':', n);
        size_t hl = colon ? (size_t)(colon - hp) : n;
        if (hl == 0 || hl >= sizeof t->host) return false;
        snprintf(t->host, sizeof t->host, "%.*s", (int)hl, hp);
    }
    long port = 80;
    if (colon) {
        char *end = NULL;
        port = strtol(colon + 1, &end, 10);
        if (end != hp + n || port < 1 || port > 65535) return false;
    }
    snprintf(t->port, sizeof t->port, "%ld", port);
    snprintf(t->hostport, sizeof t->hostport, "%.*s", (int)n, hp);
    return true;
}

bool race_target_parse(const char *url, struct race_target *t, char *why, size_t why_cap) {
    memset(t, 0, sizeof *t);
    if (strncasecmp(url, "https://", 8) == 0) {
        snprintf(why, why_cap,
                 "https:// is not supported (no TLS here): point it at a plain-HTTP port of "
                 "the service, or at a local proxy that speaks TLS to it");
        return false;
    }
    if (strncasecmp(url, "http://", 7) != 0 || strlen(url) > RF_RACE_URL_CHARS_MAX) {
        snprintf(why, why_cap, "'%s' is not an http://HOST[:PORT][/PREFIX] URL", url);
        return false;
    }
    const char *hp = url + 7;
    size_t n = strcspn(hp, "/?#");
    if (!split_hostport(hp, n, t)) {
        snprintf(why, why_cap, "'%s': bad host or port", url);
        return false;
    }
    const char *path = hp + n;
    if (*path == '?' || *path == '#') {
        snprintf(why, why_cap, "'%s': a base URL has no query or fragment", url);
        return false;
    }
    size_t pl = strlen(path);
    while (pl > 0 && path[pl - 1] == '/') pl--;
    if (pl >= sizeof t->prefix) {
        snprintf(why, why_cap, "'%s': path prefix too long", url);
        return false;
    }
    snprintf(t->prefix, sizeof t->prefix, "%.*s", (int)pl, path);
    return true;
}

/* Headers the engine writes itself. */
static bool header_is_own(const char *h) {
    static const char *const own[] = {"host:", "content-length:", "connection:",
                                      "transfer-encoding:"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strncasecmp(h, own[i], strlen(own[i])) == 0) return true;
    return false;
}

bool race_build(const struct race_target *to, const char *method, const char *path,
                const char *const *headers, int n_headers, const char *body, size_t body_len,
                struct race_msg *m) {
    struct rf_buf b;
    rf_buf_init(&b, RF_RACE_REQUEST_BYTES_MAX + 1);
    rf_buf_printf(&b, "%s %s%s HTTP/1.1\r\nHost: %s\r\n", method, to->prefix, path,
                  to->hostport);
    for (int i = 0; i < n_headers; i++)
        if (!header_is_own(headers[i])) rf_buf_printf(&b, "%s\r\n", headers[i]);
    bool sends_body = body_len > 0 || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0);
    if (sends_body) rf_buf_printf(&b, "Content-Length: %zu\r\n", body_len);
    rf_buf_puts(&b, "Connection: close\r\n\r\n");
    if (body_len) rf_buf_append(&b, body, body_len);
    if (b.failed || b.len > RF_RACE_REQUEST_BYTES_MAX) {
        rf_buf_free(&b);
        return false;
    }
    m->to = to;
    m->data = rf_buf_take(&b, &m->len);
    return m->data != NULL;
}

/* ---- sockets ----------------------------------------------------------------------- */

static bool wait_fd(int fd, short events, int64_t deadline_us) {
    for (;;) {
        int64_t left = deadline_us - now_us();
        if (left <= 0) return false;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)((left + 999) / 1000));
        if (r > 0) return true;
        if (r < 0 && errno != EINTR) return false;
    }
}

static bool send_all(int fd, const char *p, size_t n, int64_t deadline_us) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_fd(fd, POLLOUT, deadline_us)) return false;
        } else {
            return false;
        }
    }
    return true;
}

static int try_connect(const struct addrinfo *p, int64_t deadline_us, int *err) {
    int fd = socket(p->ai_family, p->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, p->ai_protocol);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    if (connect(fd, p->ai_addr, p->ai_addrlen) != 0 && errno != EINPROGRESS) {
        *err = errno;
        close(fd);
        return -1;
    }
    int so = ETIMEDOUT;
    socklen_t sl = sizeof so;
    if (wait_fd(fd, POLLOUT, deadline_us)) getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl);
    if (so != 0) {
        *err = so;
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int connect_to(const struct race_target *t, int64_t deadline_us, char *why, size_t cap) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(t->host, t->port, &hints, &ai);
    if (rc != 0) {
        snprintf(why, cap, "cannot resolve %s: %s", t->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = ECONNREFUSED;
    for (const struct addrinfo *p = ai; p && fd < 0; p = p->ai_next)
        fd = try_connect(p, deadline_us, &err);
    freeaddrinfo(ai);
    if (fd < 0) snprintf(why, cap, "cannot connect to %s: %s", t->hostport, strerror(err));
    return fd;
}

/* ---- responses ------------------------------------------------------------------------ */

struct conn {
    int fd;
    char *buf;
    size_t len, cap;
    bool done;
    int64_t released_us;
};

/* De-chunks p[0..n) into out (which may be p: it never runs ahead of the
 * input; NULL: only scan). 1 complete (*out_len: the body's length), 0
 * more input needed, -1 malformed. */
static int chunked(char *p, size_t n, char *out, size_t *out_len) {
    size_t i = 0, o = 0;
    for (;;) {
        char *eol = memmem(p + i, n - i, "\r\n", 2);
        if (!eol) return 0;
        char *end = NULL;
        unsigned long long size = strtoull(p + i, &end, 16);
        if (end == p + i || size > RF_RACE_RESPONSE_BYTES_MAX) return -1;
        i = (size_t)(eol - p) + 2;
        if (size == 0) { /* trailers (ignored) until an empty line */
            for (;;) {
                char *t = memmem(p + i, n - i, "\r\n", 2);
                if (!t) return 0;
                bool empty = t == p + i;
                i = (size_t)(t - p) + 2;
                if (empty) break;
            }
            *out_len = o;
            return 1;
        }
        if (n - i < size + 2) return 0;
        if (out) memmove(out + o, p + i, size);
        o += size;
        i += size + 2;
    }
}

static bool head_value(const char *head, size_t head_len, const char *name, char *out,
                       size_t cap) {
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', head_len), *end = head + head_len;
    while (p && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol) break;
        if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            snprintf(out, cap, "%.*s", (int)(ve - v), v);
            return true;
        }
        p = eol;
    }
    return false;
}

/* 1: c->buf holds a complete response, now parsed into r; 0: more needed;
 * -1: malformed (r->err says why). */
static int resp_parse(struct conn *c, bool eof, struct race_resp *r) {
    char *hend = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!hend) return eof ? (snprintf(r->err, sizeof r->err, "closed before a response"), -1) : 0;
    size_t head = (size_t)(hend - c->buf) + 4;
    int status = 0;
    if (sscanf(c->buf, "HTTP/1.%*1[01] %3d", &status) != 1 || status < 200 || status > 599) {
        snprintf(r->err, sizeof r->err, "not an HTTP/1.x final response");
        return -1;
    }
    char v[64];
    size_t body_len = 0;
    if (status == 204 || status == 304) {
        body_len = 0;
    } else if (head_value(c->buf, head, "Transfer-Encoding", v, sizeof v) &&
               strcasestr(v, "chunked")) {
        /* Scanned first, decoded in place only once complete. */
        int rc = chunked(c->buf + head, c->len - head, NULL, &body_len);
        if (rc == 1) chunked(c->buf + head, c->len - head, c->buf + head, &body_len);
        if (rc <= 0) {
            if (rc < 0 || eof) snprintf(r->err, sizeof r->err, "bad or cut chunked body");
            return rc < 0 || eof ? -1 : 0;
        }
    } else if (head_value(c->buf, head, "Content-Length", v, sizeof v)) {
        char *end = NULL;
        unsigned long long cl = strtoull(v, &end, 10);
        if (*end || cl > RF_RACE_RESPONSE_BYTES_MAX) {
            snprintf(r->err, sizeof r->err, "bad Content-Length '%s'", v);
            return -1;
        }
        if (c->len - head < cl) {
            if (eof) snprintf(r->err, sizeof r->err, "closed %zu bytes into a %llu-byte body",
                              c->len - head, cl);
            return eof ? -1 : 0;
        }
        body_len = (size_t)cl;
    } else if (!eof) {
        return 0; /* the body ends when the server closes */
    } else {
        body_len = c->len - head;
    }
    r->status = status;
    r->raw = c->buf;
    r->head_len = head;
    r->body = c->buf + head;
    r->body_len = body_len;
    r->body[body_len] = '\0';
    c->buf = NULL;
    return 1;
}

/* Reads what fd has; true when this connection is finished (answered or failed). */
static bool conn_read(struct conn *c, struct race_resp *r) {
    if (c->cap - c->len < 4096 + 1) {
        size_t ncap = c->cap ? c->cap * 2 : 16384;
        if (ncap > RF_RACE_RESPONSE_BYTES_MAX + 1) ncap = RF_RACE_RESPONSE_BYTES_MAX + 1;
        if (ncap - c->len < 2) {
            snprintf(r->err, sizeof r->err, "response larger than %d bytes",
                     RF_RACE_RESPONSE_BYTES_MAX);
            return true;
        }
        char *nb = realloc(c->buf, ncap);
        if (!nb) {
            snprintf(r->err, sizeof r->err, "out of memory");
            return true;
        }
        c->buf = nb;
        c->cap = ncap;
    }
    ssize_t got = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) return false;
    if (got < 0) {
        snprintf(r->err, sizeof r->err, "receive failed: %s", strerror(errno));
        return true;
    }
    c->len += (size_t)got;
    c->buf[c->len] = '\0';
    int rc = resp_parse(c, got == 0, r);
    if (rc == 1) r->latency_us = now_us() - c->released_us;
    return rc != 0;
}

/* Polls every unfinished connection until all are answered or the deadline. */
static void read_all(struct conn *cs, int n, int64_t deadline_us, struct race_resp *out) {
    struct pollfd pf[RF_RACE_COPIES_MAX];
    int idx[RF_RACE_COPIES_MAX];
    for (;;) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (!cs[i].done) {
                pf[m] = (struct pollfd){.fd = cs[i].fd, .events = POLLIN};
                idx[m++] = i;
            }
        int64_t left = deadline_us - now_us();
        if (m == 0) return;
        if (left <= 0) break;
        int r = poll(pf, (nfds_t)m, (int)((left + 999) / 1000));
        if (r < 0 && errno != EINTR) break;
        for (int k = 0; k < m && r > 0; k++)
            if (pf[k].revents) cs[idx[k]].done = conn_read(&cs[idx[k]], &out[idx[k]]);
    }
    for (int i = 0; i < n; i++)
        if (!cs[i].done) snprintf(out[i].err, sizeof out[i].err, "no complete response in time");
}

static void close_all(struct conn *cs, int n) {
    for (int i = 0; i < n; i++) {
        if (cs[i].fd >= 0) close(cs[i].fd);
        free(cs[i].buf);
    }
    free(cs);
}

/* The release's spread and the first answer's lead over the last release. */
static void measure(const struct conn *cs, const struct race_resp *out, int n,
                    struct race_timing *t) {
    int64_t first_answer = INT64_MAX, last = cs[n - 1].released_us;
    for (int i = 0; i < n; i++)
        if (out[i].status && cs[i].released_us + out[i].latency_us < first_answer)
            first_answer = cs[i].released_us + out[i].latency_us;
    t->spread_us = last - cs[0].released_us;
    t->lead_us = first_answer == INT64_MAX ? 0 : first_answer - last;
}

int race_run(const struct race_msg *msgs, int n, int timeout_ms, struct race_resp *out,
             struct race_timing *timing, char *why, size_t why_cap) {
    RF_ASSERT(n >= 1 && n <= RF_RACE_COPIES_MAX);
    memset(out, 0, sizeof *out * (size_t)n);
    struct conn *cs = calloc((size_t)n, sizeof *cs);
    if (!cs) return snprintf(why, why_cap, "out of memory"), -1;
    for (int i = 0; i < n; i++) cs[i].fd = -1;
    int64_t deadline = now_us() + (int64_t)timeout_ms * 1000;
    for (int i = 0; i < n; i++) {
        RF_ASSERT(msgs[i].len >= 1);
        cs[i].fd = connect_to(msgs[i].to, deadline, why, why_cap);
        if (cs[i].fd < 0 || !send_all(cs[i].fd, msgs[i].data, msgs[i].len - 1, deadline)) {
            if (cs[i].fd >= 0) snprintf(why, why_cap, "sending to %s failed or timed out",
                                        msgs[i].to->hostport);
            close_all(cs, n);
            return -1;
        }
    }
    /* The barrier: every request is complete but for one byte. */
    for (int i = 0; i < n; i++) {
        cs[i].released_us = now_us();
        const char *last = msgs[i].data + msgs[i].len - 1;
        if (send(cs[i].fd, last, 1, MSG_NOSIGNAL) != 1)
            send_all(cs[i].fd, last, 1, deadline); /* an answer may still be read */
    }
    read_all(cs, n, now_us() + (int64_t)timeout_ms * 1000, out);
    if (timing) measure(cs, out, n, timing);
    close_all(cs, n);
    return 0;
}

void race_resp_free(struct race_resp *r) {
    free(r->raw);
    memset(r, 0, sizeof *r);
}

bool race_resp_header(const struct race_resp *r, const char *name, char *out, size_t cap) {
    return r->raw && head_value(r->raw, r->head_len, name, out, cap);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t race_percentile(int64_t *v, int n, int pct) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    int rank = (pct * n + 99) / 100; /* nearest rank, 1-based */
    return v[rank < 1 ? 0 : rank - 1];
}
