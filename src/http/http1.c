/*
 * http1.c - the strict HTTP/1.1 request parser (see http1.h): request line,
 * header fields, the framing fields (Content-Length, Transfer-Encoding,
 * Host, Connection, Expect) and the chunked body decoder.
 *
 * Strict on purpose: every ambiguity a proxy in front of racefree could
 * resolve differently (two Content-Lengths, Content-Length with
 * Transfer-Encoding, obs-fold, whitespace before ':') is a 400, so a request
 * smuggled past a proxy cannot be read here as two requests.
 */
#include "http/http1.h"

#include <string.h>
#include <strings.h>

#include "base/assert.h"

#define METHOD_CHARS_MAX 32
#define CL_DIGITS_MAX 18        /* below INT64_MAX */
#define CHUNK_SIZE_DIGITS_MAX 15 /* below 2^60 */

/* ---- character classes ----------------------------------------------------- */

static bool is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value byte: VCHAR, obs-text, SP, HTAB. */
static bool is_value_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

/* A request-target byte: visible ASCII. */
static bool is_target_char(unsigned char c) { return c > 0x20 && c < 0x7f; }

static bool is_hex(unsigned char c, unsigned *v) {
    if (c >= '0' && c <= '9') *v = c - '0';
    else if (c >= 'a' && c <= 'f') *v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') *v = c - 'A' + 10;
    else return false;
    return true;
}

/* ---- finding the head -------------------------------------------------------- */

size_t rf_h1_skip_empty_lines(const char *buf, size_t len) {
    size_t i = 0;
    while (i < len) {
        if (buf[i] == '\n') i++;
        else if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n') i += 2;
        else break;
    }
    return i;
}

size_t rf_h1_head_end(const char *buf, size_t len) {
    for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + len - p))) != NULL; p++) {
        size_t at = (size_t)(p - buf) + 1;
        if (at < len && buf[at] == '\n') return at + 1;
        if (at + 1 < len && buf[at] == '\r' && buf[at + 1] == '\n') return at + 2;
    }
    return 0;
}

/* ---- lines ------------------------------------------------------------------- */

/* Cuts the next line (LF or CRLF) out of *cur, NUL-terminating it. A CR
 * anywhere else is an error (NULL). */
static char *next_line(char **cur, char *end, bool *bad) {
    char *s = *cur;
    char *lf = memchr(s, '\n', (size_t)(end - s));
    if (!lf) return NULL;
    char *e = lf;
    if (e > s && e[-1] == '\r') e--;
    *e = '\0';
    if (memchr(s, '\r', (size_t)(e - s)) || memchr(s, '\0', (size_t)(e - s))) *bad = true;
    *cur = lf + 1;
    return s;
}

/* "HTTP/1.1" -> minor 1. 0: bad syntax, -1: well-formed but unsupported. */
static int parse_version(const char *v, int *minor) {
    if (strncmp(v, "HTTP/", 5) != 0 || strlen(v) != 8) return 0;
    if (v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9') return 0;
    if (v[5] != '1' || v[7] > '1') return -1;
    *minor = v[7] - '0';
    return 1;
}

/* Origin form "/p?q", or absolute form "http://host/p?q" (RFC 9112 3.2.2:
 * a server must accept it; the authority is dropped, Host still counts). */
static bool split_target(char *t, struct rf_h1_req *r) {
    for (char *c = t; *c; c++)
        if (!is_target_char((unsigned char)*c)) return false;
    if (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0) {
        char *slash = strchr(strstr(t, "//") + 2, '/');
        if (!slash) return false;
        t = slash;
    }
    if (t[0] != '/') return false;
    char *q = strchr(t, '?');
    if (q) *q++ = '\0';
    r->path = t;
    r->query = q ? q : "";
    return true;
}

static bool bad_line(struct rf_problem *p, const char *why) {
    rf_problem_set(p, RF_ERR_INVALID_REQUEST_LINE, "the request line %s", why);
    return false;
}

static bool parse_request_line(char *line, struct rf_h1_req *r, struct rf_problem *p) {
    char *sp1 = strchr(line, ' ');
    if (!sp1) return bad_line(p, "has no target");
    *sp1 = '\0';
    char *target = sp1 + 1, *sp2 = strchr(target, ' ');
    if (!sp2) return bad_line(p, "has no HTTP version");
    *sp2 = '\0';
    char *version = sp2 + 1;
    size_t mlen = strlen(line);
    if (mlen == 0 || mlen > METHOD_CHARS_MAX) return bad_line(p, "has no valid method");
    for (size_t i = 0; i < mlen; i++)
        if (!is_tchar((unsigned char)line[i])) return bad_line(p, "has no valid method");
    r->method = line;
    if (!split_target(target, r)) return bad_line(p, "has no valid target (origin form: /path)");
    int v = parse_version(version, &r->minor);
    if (v == 0) return bad_line(p, "has no valid HTTP version");
    if (v < 0) {
        rf_problem_set(p, RF_ERR_HTTP_VERSION, "only HTTP/1.0 and HTTP/1.1 are served");
        return false;
    }
    return true;
}

/* ---- header fields ----------------------------------------------------------- */

static bool parse_field(char *line, struct rf_h1_field *f, struct rf_problem *p) {
    char *colon = strchr(line, ':');
    size_t nlen = colon ? (size_t)(colon - line) : 0;
    bool ok = nlen > 0;
    for (size_t i = 0; ok && i < nlen; i++) ok = is_tchar((unsigned char)line[i]);
    if (!ok) {
        rf_problem_set(p, RF_ERR_INVALID_HEADER, "a header line is not 'Name: value' "
                       "(no whitespace before ':', no line folding)");
        return false;
    }
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    size_t vlen = strlen(v);
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) v[--vlen] = '\0';
    for (size_t i = 0; i < vlen; i++) {
        if (!is_value_char((unsigned char)v[i])) {
            rf_problem_set(p, RF_ERR_INVALID_HEADER, "header %s has a control character", line);
            if (nlen < sizeof p->param) rf_problem_param(p, line, nlen); /* a client's name */
            return false;
        }
    }
    f->name = line;
    f->value = v;
    return true;
}

/* True when the comma-separated list holds token (case-insensitive). */
static bool list_has(const char *list, const char *token) {
    size_t tlen = strlen(token);
    for (const char *s = list; *s;) {
        while (*s == ' ' || *s == '\t' || *s == ',') s++;
        size_t n = strcspn(s, ",");
        size_t k = n;
        while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t')) k--;
        if (k == tlen && strncasecmp(s, token, tlen) == 0) return true;
        s += n;
    }
    return false;
}

static bool bad_cl(struct rf_problem *p, const char *why) {
    rf_problem_set(p, RF_ERR_INVALID_CONTENT_LENGTH, "%s", why);
    rf_problem_param(p, "Content-Length", strlen("Content-Length"));
    return false;
}

/* One Content-Length value: "N" or a list of equal "N, N" (RFC 9110 8.6). */
static bool parse_cl_value(const char *v, int64_t *io, struct rf_problem *p) {
    const char *s = v;
    do {
        while (*s == ' ' || *s == '\t' || *s == ',') s++;
        int64_t n = 0;
        int digits = 0;
        for (; *s >= '0' && *s <= '9'; s++, digits++) {
            if (digits >= CL_DIGITS_MAX) return bad_cl(p, "Content-Length is too large");
            n = n * 10 + (*s - '0');
        }
        while (*s == ' ' || *s == '\t') s++;
        if (digits == 0 || (*s && *s != ','))
            return bad_cl(p, "Content-Length must be a non-negative decimal integer");
        if (*io >= 0 && *io != n) return bad_cl(p, "conflicting Content-Length values");
        *io = n;
    } while (*s);
    return true;
}

/* The framing fields, once every line is parsed. */
static bool check_framing(struct rf_h1_req *r, const char *te, int hosts, struct rf_problem *p) {
    if (r->minor == 1 && hosts != 1) {
        rf_problem_set(p, RF_ERR_MISSING_HOST, "HTTP/1.1 needs exactly one Host header (got %d)",
                       hosts);
        rf_problem_param(p, "Host", strlen("Host"));
        return false;
    }
    if (te && r->content_length >= 0)
        return bad_cl(p, "Content-Length and Transfer-Encoding together are ambiguous");
    if (te) {
        bool only_chunked = strcasecmp(te, "chunked") == 0;
        if (!only_chunked || r->minor == 0) {
            rf_problem_set(p, RF_ERR_UNSUPPORTED_TRANSFER_ENCODING,
                           "only 'Transfer-Encoding: chunked' on HTTP/1.1 is supported");
            return false;
        }
        r->chunked = true;
    }
    const char *conn = rf_h1_field(r, "Connection");
    if (r->minor == 1) r->keep_alive = !(conn && list_has(conn, "close"));
    else r->keep_alive = conn && list_has(conn, "keep-alive") && !list_has(conn, "close");
    const char *expect = rf_h1_field(r, "Expect");
    r->expect_continue = r->minor == 1 && expect && strcasecmp(expect, "100-continue") == 0;
    return true;
}

/* Remembers the fields that decide framing; false on a bad one. */
static bool note_field(struct rf_h1_req *r, const struct rf_h1_field *f, const char **te,
                       int *hosts, struct rf_problem *p) {
    if (strcasecmp(f->name, "Content-Length") == 0) return parse_cl_value(f->value, &r->content_length, p);
    if (strcasecmp(f->name, "Host") == 0) (*hosts)++;
    if (strcasecmp(f->name, "Transfer-Encoding") == 0) {
        if (*te) {
            rf_problem_set(p, RF_ERR_UNSUPPORTED_TRANSFER_ENCODING,
                           "only one Transfer-Encoding (chunked) is supported");
            return false;
        }
        *te = f->value;
    }
    return true;
}

bool rf_h1_parse_head(char *head, size_t len, struct rf_h1_req *r, struct rf_problem *p) {
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    if (len > RF_HEADER_BYTES_MAX) {
        rf_problem_set(p, RF_ERR_HEADERS_TOO_LARGE, "the header section is over %d bytes",
                       RF_HEADER_BYTES_MAX);
        return false;
    }
    head[len] = '\0';
    char *cur = head, *end = head + len;
    bool bad = false;
    char *line = next_line(&cur, end, &bad);
    if (!line || bad) return bad_line(p, "is malformed");
    if (!parse_request_line(line, r, p)) return false;
    const char *te = NULL;
    int hosts = 0;
    /* A line that starts with a NUL is not the blank line that ends the
     * head: it is a header line with a NUL in it (bad), refused below. */
    while ((line = next_line(&cur, end, &bad)) != NULL && (*line || bad)) {
        if (bad || line[0] == ' ' || line[0] == '\t') {
            rf_problem_set(p, RF_ERR_INVALID_HEADER, "a header line has a bare CR, a NUL or "
                           "is folded");
            return false;
        }
        if (r->n_fields == RF_HTTP_HEADERS_MAX) {
            rf_problem_set(p, RF_ERR_HEADERS_TOO_LARGE, "more than %d header fields",
                           RF_HTTP_HEADERS_MAX);
            return false;
        }
        struct rf_h1_field *f = &r->fields[r->n_fields];
        if (!parse_field(line, f, p) || !note_field(r, f, &te, &hosts, p)) return false;
        r->n_fields++;
    }
    RF_ASSERT(line && !bad); /* rf_h1_head_end found the blank line */
    return check_framing(r, te, hosts, p);
}

const char *rf_h1_field(const struct rf_h1_req *r, const char *name) {
    for (int i = 0; i < r->n_fields; i++)
        if (strcasecmp(r->fields[i].name, name) == 0) return r->fields[i].value;
    return NULL;
}

/* ---- chunked ------------------------------------------------------------------ */

enum {
    CK_SIZE,        /* hex digits of the chunk size */
    CK_SIZE_WS,     /* whitespace after the digits */
    CK_EXT,         /* ";ext" up to the end of the line */
    CK_SIZE_LF,     /* CR seen, LF expected */
    CK_DATA,
    CK_DATA_CR,     /* CRLF after the data */
    CK_DATA_LF,
    CK_TRAILER,     /* start of a trailer line (or the final blank line) */
    CK_TRAILER_LINE,
    CK_END_LF,      /* CR of the final line seen */
    CK_DONE,
};

void rf_h1_chunked_init(struct rf_h1_chunked *c) { memset(c, 0, sizeof *c); }

/* The size line ended: start data or trailers. */
static enum rf_h1_chunk_rc size_line_done(struct rf_h1_chunked *c) {
    if (c->size_digits == 0) return RF_H1_CHUNK_BAD;
    c->state = c->remaining ? CK_DATA : CK_TRAILER;
    c->line_bytes = 0;
    return RF_H1_CHUNK_MORE;
}

/* A byte of a chunk size line: digits, whitespace, extensions, CRLF. */
static enum rf_h1_chunk_rc size_byte(struct rf_h1_chunked *c, unsigned char b) {
    unsigned v;
    if (++c->line_bytes > RF_HTTP_CHUNK_LINE_BYTES_MAX) return RF_H1_CHUNK_BAD;
    switch (c->state) {
    case CK_SIZE:
        if (is_hex(b, &v)) {
            if (++c->size_digits > CHUNK_SIZE_DIGITS_MAX) return RF_H1_CHUNK_BAD;
            c->remaining = c->remaining * 16 + v;
            return RF_H1_CHUNK_MORE;
        }
        __attribute__((fallthrough)); /* the digits ended */
    case CK_SIZE_WS:
        if (c->size_digits == 0) return RF_H1_CHUNK_BAD;
        if (b == ' ' || b == '\t') c->state = CK_SIZE_WS;
        else if (b == ';') c->state = CK_EXT;
        else if (b == '\r') c->state = CK_SIZE_LF;
        else if (b == '\n') return size_line_done(c);
        else return RF_H1_CHUNK_BAD;
        return RF_H1_CHUNK_MORE;
    case CK_EXT:
        if (b == '\r') c->state = CK_SIZE_LF;
        else if (b == '\n') return size_line_done(c);
        else if (!is_value_char(b)) return RF_H1_CHUNK_BAD;
        return RF_H1_CHUNK_MORE;
    default: /* CK_SIZE_LF */
        return b == '\n' ? size_line_done(c) : RF_H1_CHUNK_BAD;
    }
}

/* The CRLF after a chunk's data; then the next size line. */
static enum rf_h1_chunk_rc data_end_byte(struct rf_h1_chunked *c, unsigned char b) {
    if (c->state == CK_DATA_CR && b == '\r') {
        c->state = CK_DATA_LF;
        return RF_H1_CHUNK_MORE;
    }
    if (b != '\n') return RF_H1_CHUNK_BAD;
    c->state = CK_SIZE;
    c->remaining = 0;
    c->size_digits = 0;
    c->line_bytes = 0;
    return RF_H1_CHUNK_MORE;
}

/* A byte of the trailer section (after the last chunk). */
static enum rf_h1_chunk_rc trailer_byte(struct rf_h1_chunked *c, unsigned char b) {
    switch (c->state) {
    case CK_TRAILER:
        if (b == '\n') return (c->state = CK_DONE), RF_H1_CHUNK_DONE;
        c->state = b == '\r' ? CK_END_LF : CK_TRAILER_LINE;
        return b == '\r' || is_value_char(b) ? RF_H1_CHUNK_MORE : RF_H1_CHUNK_BAD;
    case CK_TRAILER_LINE:
        if (++c->line_bytes > RF_HEADER_BYTES_MAX) return RF_H1_CHUNK_BAD;
        if (b == '\n') c->state = CK_TRAILER;
        return RF_H1_CHUNK_MORE;
    case CK_END_LF:
        if (b != '\n') return RF_H1_CHUNK_BAD;
        c->state = CK_DONE;
        return RF_H1_CHUNK_DONE;
    default: return RF_H1_CHUNK_BAD;
    }
}

/* One framing byte (every state but CK_DATA). */
static enum rf_h1_chunk_rc frame_byte(struct rf_h1_chunked *c, unsigned char b) {
    if (c->state <= CK_SIZE_LF) return size_byte(c, b);
    if (c->state == CK_DATA_CR || c->state == CK_DATA_LF) return data_end_byte(c, b);
    return trailer_byte(c, b);
}

enum rf_h1_chunk_rc rf_h1_chunked_feed(struct rf_h1_chunked *c, const char *in, size_t n,
                                       size_t *used, const char **data, size_t *data_len) {
    *used = 0;
    *data = NULL;
    *data_len = 0;
    if (c->state == CK_DONE) return RF_H1_CHUNK_DONE;
    for (size_t i = 0; i < n; i++) {
        if (c->state == CK_DATA) {
            size_t take = n - i;
            if ((uint64_t)take > c->remaining) take = (size_t)c->remaining;
            c->remaining -= take;
            if (c->remaining == 0) c->state = CK_DATA_CR;
            *data = in + i;
            *data_len = take;
            *used = i + take;
            return RF_H1_CHUNK_MORE;
        }
        enum rf_h1_chunk_rc rc = frame_byte(c, (unsigned char)in[i]);
        if (rc != RF_H1_CHUNK_MORE) {
            *used = i + 1;
            return rc;
        }
    }
    *used = n;
    return RF_H1_CHUNK_MORE;
}
