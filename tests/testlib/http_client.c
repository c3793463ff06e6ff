/*
 * http_client.c - a minimal HTTP/1.1 client for black-box tests.
 *
 * One request per TCP connection to 127.0.0.1 (`Connection: close`). The
 * response is read as: status line, headers (kept for case-insensitive
 * lookup), then the body by Content-Length, by chunked transfer coding, or
 * until EOF. Every size is bounded and every recv()/send() times out.
 */
#include "testlib/rf_testlib.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void set_err(struct rf_t_resp *r, int err, const char *fmt, ...)
{
    va_list ap;
    r->err = err ? err : EIO;
    va_start(ap, fmt);
    vsnprintf(r->errmsg, sizeof r->errmsg, fmt, ap);
    va_end(ap);
}

/* A growable byte buffer with a hard cap. */
struct buf {
    char *p;
    size_t len, cap, max;
};

static int buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra + 1 > b->max)
        return -1;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < b->len + extra + 1)
        ncap *= 2;
    if (ncap > b->max)
        ncap = b->max;
    char *np = realloc(b->p, ncap);
    if (!np)
        return -1;
    b->p = np;
    b->cap = ncap;
    return 0;
}

static int buf_add(struct buf *b, const void *data, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* The connection: a socket plus the bytes received but not yet consumed. */
struct conn {
    int fd;
    struct buf in;   /* received bytes */
    size_t pos;      /* consumed up to here */
    bool eof;
};

/* Receives more bytes; 1 = got some, 0 = EOF, -1 = error (errno set). */
static int conn_fill(struct conn *c)
{
    char tmp[16384];
    for (;;) {
        ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);
        if (n > 0) {
            if (buf_add(&c->in, tmp, (size_t)n) != 0) {
                errno = EMSGSIZE;
                return -1;
            }
            return 1;
        }
        if (n == 0) {
            c->eof = true;
            return 0;
        }
        if (errno == EINTR)
            continue;
        return -1;
    }
}

static size_t conn_avail(const struct conn *c) { return c->in.len - c->pos; }

/* Makes at least n unread bytes available; -1 on EOF/error before that. */
static int conn_need(struct conn *c, size_t n)
{
    while (conn_avail(c) < n) {
        int rc = conn_fill(c);
        if (rc <= 0) {
            if (rc == 0)
                errno = ECONNRESET;
            return -1;
        }
    }
    return 0;
}

/* Reads one CRLF-terminated line (bounded); returns a pointer into the
 * buffer (NUL replaces the CR) or NULL. The pointer is valid until the next
 * fill, so callers copy what they keep. */
static char *conn_line(struct conn *c, size_t max, size_t *line_start_out)
{
    for (;;) {
        char *start = c->in.p ? c->in.p + c->pos : NULL;
        size_t avail = conn_avail(c);
        if (start) {
            char *nl = memchr(start, '\n', avail);
            if (nl) {
                size_t len = (size_t)(nl - start);
                if (len > 0 && start[len - 1] == '\r')
                    start[len - 1] = '\0';
                *nl = '\0';
                *line_start_out = c->pos;
                c->pos += len + 1;
                return c->in.p + *line_start_out;
            }
        }
        if (avail > max) {
            errno = EMSGSIZE;
            return NULL;
        }
        int rc = conn_fill(c);
        if (rc <= 0) {
            if (rc == 0)
                errno = ECONNRESET;
            return NULL;
        }
    }
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

const char *rf_resp_header(const struct rf_t_resp *r, const char *name)
{
    for (int i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

void rf_resp_free(struct rf_t_resp *r)
{
    for (int i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->body);
    memset(r, 0, sizeof *r);
}

void rf_resp_move(struct rf_t_resp *dst, struct rf_t_resp *src)
{
    *dst = *src;
    memset(src, 0, sizeof *src);
}

static int connect_local(int port, struct rf_t_resp *out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_err(out, errno, "socket: %s", strerror(errno));
        return -1;
    }
    struct timeval tv = {.tv_sec = RF_T_RECV_TIMEOUT_MS / 1000,
                         .tv_usec = (RF_T_RECV_TIMEOUT_MS % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (;;) {
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
        if (errno == EINTR)
            continue;
        set_err(out, errno, "connect 127.0.0.1:%d: %s", port, strerror(errno));
        close(fd);
        return -1;
    }
}

/* Sends all of data. Stops early (returning 1) when the server has already
 * answered (the socket is readable), as it may for a body that is too large:
 * pushing on would only get the connection reset before we read the answer. */
static int send_all(int fd, const char *data, size_t len, bool watch_early_reply)
{
    size_t off = 0;
    while (off < len) {
        if (watch_early_reply) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLHUP)))
                return 1;
        }
        size_t chunk = len - off;
        if (chunk > 16384)
            chunk = 16384;
        ssize_t n = send(fd, data + off, chunk, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

static bool method_has_body(const char *m)
{
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0;
}

static int read_response(struct conn *c, const char *method, struct rf_t_resp *out)
{
    size_t at;
    /* status line */
    char *line = conn_line(c, RF_T_HEAD_BYTES_MAX, &at);
    if (!line) {
        set_err(out, errno, "reading status line: %s", strerror(errno));
        return -1;
    }
    int major = 0, minor = 0, status = 0;
    if (sscanf(line, "HTTP/%d.%d %d", &major, &minor, &status) != 3 || status < 100 ||
        status > 999) {
        set_err(out, EPROTO, "bad status line: %.80s", line);
        return -1;
    }
    /* headers */
    long long content_length = -1;
    bool chunked = false;
    size_t head_bytes = 0;
    for (;;) {
        line = conn_line(c, RF_T_HEAD_BYTES_MAX, &at);
        if (!line) {
            set_err(out, errno, "reading headers: %s", strerror(errno));
            return -1;
        }
        head_bytes += strlen(line) + 2;
        if (head_bytes > RF_T_HEAD_BYTES_MAX) {
            set_err(out, EMSGSIZE, "response headers too large");
            return -1;
        }
        if (line[0] == '\0')
            break;
        char *colon = strchr(line, ':');
        if (!colon) {
            set_err(out, EPROTO, "bad header line: %.80s", line);
            return -1;
        }
        *colon = '\0';
        char *name = trim(line), *value = trim(colon + 1);
        if (strcasecmp(name, "Content-Length") == 0) {
            char *end;
            errno = 0;
            content_length = strtoll(value, &end, 10);
            if (errno || *end || content_length < 0) {
                set_err(out, EPROTO, "bad Content-Length: %.40s", value);
                return -1;
            }
        } else if (strcasecmp(name, "Transfer-Encoding") == 0 && strcasestr(value, "chunked")) {
            chunked = true;
        }
        if (out->n_headers >= RF_T_HEADERS_MAX) {
            set_err(out, EMSGSIZE, "more than %d response headers", RF_T_HEADERS_MAX);
            return -1;
        }
        out->headers[out->n_headers].name = xstrdup(name);
        out->headers[out->n_headers].value = xstrdup(value);
        out->n_headers++;
    }

    /* body */
    struct buf body = {.max = RF_T_BODY_BYTES_MAX + 1};
    bool no_body = strcmp(method, "HEAD") == 0 || status == 204 || status == 304 ||
                   (status >= 100 && status < 200);
    if (no_body) {
        /* nothing */
    } else if (chunked) {
        for (;;) {
            line = conn_line(c, 1024, &at);
            if (!line) {
                set_err(out, errno, "reading chunk size: %s", strerror(errno));
                goto fail;
            }
            char *end;
            unsigned long long sz = strtoull(line, &end, 16);
            if (end == line || sz > RF_T_BODY_BYTES_MAX) {
                set_err(out, EPROTO, "bad chunk size: %.40s", line);
                goto fail;
            }
            if (sz == 0) {
                /* trailers until an empty line */
                for (int i = 0; i < RF_T_HEADERS_MAX; i++) {
                    line = conn_line(c, RF_T_HEAD_BYTES_MAX, &at);
                    if (!line || line[0] == '\0')
                        break;
                }
                break;
            }
            if (conn_need(c, (size_t)sz + 2) != 0) {
                set_err(out, errno, "reading chunk: %s", strerror(errno));
                goto fail;
            }
            if (buf_add(&body, c->in.p + c->pos, (size_t)sz) != 0) {
                set_err(out, EMSGSIZE, "response body too large");
                goto fail;
            }
            c->pos += (size_t)sz + 2;
        }
    } else if (content_length >= 0) {
        if (content_length > RF_T_BODY_BYTES_MAX) {
            set_err(out, EMSGSIZE, "Content-Length %lld too large", content_length);
            goto fail;
        }
        if (conn_need(c, (size_t)content_length) != 0) {
            set_err(out, errno, "reading body (%lld bytes): %s", content_length, strerror(errno));
            goto fail;
        }
        if (buf_add(&body, c->in.p + c->pos, (size_t)content_length) != 0) {
            set_err(out, ENOMEM, "out of memory");
            goto fail;
        }
        c->pos += (size_t)content_length;
    } else {
        for (;;) {
            if (conn_avail(c) > 0) {
                if (buf_add(&body, c->in.p + c->pos, conn_avail(c)) != 0) {
                    set_err(out, EMSGSIZE, "response body too large");
                    goto fail;
                }
                c->pos = c->in.len;
            }
            int rc = conn_fill(c);
            if (rc == 0)
                break;
            if (rc < 0) {
                set_err(out, errno, "reading body to EOF: %s", strerror(errno));
                goto fail;
            }
        }
    }
    if (!body.p) {
        body.p = calloc(1, 1);
        if (!body.p)
            abort();
    }
    out->body = body.p;
    out->body_len = body.len;
    out->status = status;
    return 0;
fail:
    free(body.p);
    return -1;
}

int rf_http(int port, const char *method, const char *path, const char *const *headers,
            const void *body, size_t body_len, struct rf_t_resp *out)
{
    memset(out, 0, sizeof *out);
    struct buf req = {.max = 1024 * 1024};
    if (buf_printf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n", method,
                   path, port) != 0)
        goto toolong;
    bool has_ct = false, has_cl = false;
    for (int i = 0; headers && headers[i]; i++) {
        if (strcasecmp(headers[i], "Content-Type") == 0) {
            has_ct = true; /* the bare name: send no Content-Type at all */
            continue;
        }
        if (strncasecmp(headers[i], "Content-Type:", 13) == 0)
            has_ct = true;
        if (strncasecmp(headers[i], "Content-Length:", 15) == 0)
            has_cl = true;
        if (buf_printf(&req, "%s\r\n", headers[i]) != 0)
            goto toolong;
    }
    if (body && body_len > 0 && !has_ct &&
        buf_printf(&req, "Content-Type: application/json\r\n") != 0)
        goto toolong;
    if (!has_cl && (body_len > 0 || method_has_body(method)) &&
        buf_printf(&req, "Content-Length: %zu\r\n", body_len) != 0)
        goto toolong;
    if (buf_printf(&req, "\r\n") != 0)
        goto toolong;

    int fd = connect_local(port, out);
    if (fd < 0) {
        free(req.p);
        return -1;
    }
    struct conn c = {.fd = fd, .in = {.max = RF_T_HEAD_BYTES_MAX + RF_T_BODY_BYTES_MAX + 65536}};
    int rc = -1;
    int sent = send_all(fd, req.p, req.len, false);
    if (sent == 0 && body && body_len > 0)
        sent = send_all(fd, body, body_len, body_len > 65536);
    if (sent < 0 && errno != EPIPE && errno != ECONNRESET) {
        set_err(out, errno, "send: %s", strerror(errno));
        goto done;
    }
    /* On EPIPE/ECONNRESET the server may still have answered: try reading. */
    rc = read_response(&c, method, out);
done:
    close(fd);
    free(c.in.p);
    free(req.p);
    if (rc != 0) {
        int err = out->err;
        char msg[sizeof out->errmsg];
        memcpy(msg, out->errmsg, sizeof msg);
        rf_resp_free(out);
        out->err = err ? err : EIO;
        memcpy(out->errmsg, msg, sizeof msg);
        out->status = 0;
    }
    return rc;
toolong:
    free(req.p);
    set_err(out, EMSGSIZE, "request head too large");
    return -1;
}

int rf_req(int port, const char *method, const char *path, const char *api_key, const char *body,
           const char *const *extra_headers, struct rf_t_resp *out)
{
    const char *hdrs[24];
    char auth[RF_T_KEY_BYTES + 32];
    int n = 0;
    if (api_key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", api_key);
        hdrs[n++] = auth;
    }
    for (int i = 0; extra_headers && extra_headers[i] && n < 23; i++)
        hdrs[n++] = extra_headers[i];
    hdrs[n] = NULL;
    return rf_http(port, method, path, hdrs, body, body ? strlen(body) : 0, out);
}

int rf_urlencode(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || strchr("-._~", *p);
        if (o + (plain ? 1 : 3) >= cap)
            return -1;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o >= cap)
        return -1;
    out[o] = '\0';
    return 0;
}
