/*
 * probe_req.c - reads the one request `racefree probe` fires: a raw HTTP/1.1
 * request (request line, headers, blank line, body) or a curl command line
 * as people paste it from docs and shells (-X, -H, -d/--data/--data-raw/
 * --data-binary, --json, the URL). Anything else is refused by name, never
 * guessed at: a probe that silently sent a different request would report
 * on the wrong thing.
 */
#include "cli/probe.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/buf.h"

void probe_req_free(struct probe_req *r) {
    free(r->path);
    for (int i = 0; i < r->n_headers; i++) free(r->headers[i]);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static bool add_header(struct probe_req *r, const char *h, size_t n, char *why, size_t cap) {
    const char *colon = memchr(h, ':', n);
    if (!colon || colon == h) {
        snprintf(why, cap, "header '%.*s' has no 'Name:'", (int)(n > 80 ? 80 : n), h);
        return false;
    }
    if (r->n_headers >= RF_PROBE_HEADERS_MAX) {
        snprintf(why, cap, "more than %d headers", RF_PROBE_HEADERS_MAX);
        return false;
    }
    if (strncasecmp(h, "transfer-encoding:", 18) == 0) {
        snprintf(why, cap, "Transfer-Encoding is not supported: send the body with its length");
        return false;
    }
    r->headers[r->n_headers++] = strndup(h, n);
    return true;
}

static const char *find_header(const struct probe_req *r, const char *name) {
    size_t nl = strlen(name);
    for (int i = 0; i < r->n_headers; i++)
        if (strncasecmp(r->headers[i], name, nl) == 0 && r->headers[i][nl] == ':')
            return r->headers[i] + nl + 1;
    return NULL;
}

/* An absolute http(s) URL into base ("scheme://host[:port]") and path; an
 * origin-form target ("/...") into path alone. */
static bool set_url(struct probe_req *r, const char *url, char *why, size_t cap) {
    const char *path = url;
    if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0) {
        const char *host = strstr(url, "://") + 3;
        path = host + strcspn(host, "/?#");
        if ((size_t)(path - url) >= sizeof r->base) {
            snprintf(why, cap, "URL too long");
            return false;
        }
        snprintf(r->base, sizeof r->base, "%.*s", (int)(path - url), url);
    } else if (*url != '/') {
        snprintf(why, cap, "'%.80s' is neither an http:// URL nor a path starting with '/'", url);
        return false;
    }
    free(r->path);
    size_t pl = strcspn(path, "#");
    r->path = pl == 0 ? strdup("/") : *path == '?' ? NULL : strndup(path, pl);
    if (!r->path) { /* "http://host?x": the path is "/" before the query */
        size_t ql = strlen(path);
        r->path = malloc(ql + 2);
        if (r->path) snprintf(r->path, ql + 2, "/%s", path);
    }
    return r->path != NULL;
}

/* ---- raw request ------------------------------------------------------------------ */

static const char *line_end(const char *p, const char *end, const char **next) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) nl = end;
    *next = nl < end ? nl + 1 : end;
    return nl > p && nl[-1] == '\r' ? nl - 1 : nl;
}

static bool raw_body(struct probe_req *r, const char *p, const char *end, char *why, size_t cap) {
    size_t n = (size_t)(end - p);
    const char *cl = find_header(r, "Content-Length");
    if (cl) {
        char *e = NULL;
        unsigned long long v = strtoull(cl, &e, 10);
        while (*e == ' ' || *e == '\t') e++;
        if (*e || v > n) {
            snprintf(why, cap, "Content-Length %s does not fit the %zu bytes after the headers",
                     cl, n);
            return false;
        }
        n = (size_t)v; /* an editor's final newline is not part of the body */
    }
    r->body_len = n;
    r->body = n ? strndup(p, n) : NULL;
    return n == 0 || r->body;
}

static bool parse_raw(const char *text, size_t len, struct probe_req *r, char *why, size_t cap) {
    const char *end = text + len, *next = NULL;
    const char *le = line_end(text, end, &next);
    char line[RF_HTTP_PATH_BYTES_MAX + 64], target[RF_HTTP_PATH_BYTES_MAX + 1];
    snprintf(line, sizeof line, "%.*s", (int)(le - text), text);
    int vers = 0;
    if (sscanf(line, "%31[A-Z] %1024s HTTP/1.%1d", r->method, target, &vers) != 3) {
        snprintf(why, cap, "the first line is not 'METHOD TARGET HTTP/1.x' (nor 'curl ...'): %.80s",
                 line);
        return false;
    }
    if (!set_url(r, target, why, cap)) return false;
    const char *p = next;
    for (;;) {
        if (p >= end) break;
        le = line_end(p, end, &next);
        if (le == p) {
            p = next;
            break;
        }
        if (strncasecmp(p, "host:", 5) == 0 && !r->base[0]) {
            const char *v = p + 5;
            while (v < le && *v == ' ') v++;
            snprintf(r->base, sizeof r->base, "http://%.*s", (int)(le - v), v);
        } else if (!add_header(r, p, (size_t)(le - p), why, cap)) {
            return false;
        }
        p = next;
    }
    return raw_body(r, p, end, why, cap);
}

/* ---- curl command line -------------------------------------------------------------- */

static void words_free(char **words, int n) {
    for (int i = 0; i < n; i++) free(words[i]);
}

/* Splits a shell command line into words (quotes, backslashes, line
 * continuations). Refuses what a shell would expand. */
static int shell_words(const char *s, char **words, int max, char *why, size_t cap) {
    int n = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' ||
               (*s == '\\' && (s[1] == '\n' || s[1] == '\r')))
            s += *s == '\\' ? 2 : 1;
        if (!*s) break;
        struct rf_buf w;
        rf_buf_init(&w, RF_PROBE_FILE_BYTES_MAX + 1);
        char q = 0;
        for (; *s && (q || !strchr(" \t\r\n", *s)); s++) {
            if (q == '\'' ? *s == '\'' : (*s == '\'' || *s == '"') && (!q || *s == q)) {
                q = q ? 0 : *s;
            } else if (q != '\'' && *s == '\\' && s[1]) {
                if (q == '"' && !strchr("\\\"$`\n", s[1])) rf_buf_append(&w, s, 1);
                if (s[1] != '\n') rf_buf_append(&w, s + 1, 1);
                s++;
            } else if (q != '\'' && (*s == '$' || *s == '`') &&
                       (s[1] == '{' || s[1] == '(' || s[1] == '_' ||
                        isalpha((unsigned char)s[1]))) {
                snprintf(why, cap, "'%.20s...' needs a shell to expand it: write the value itself",
                         s);
                rf_buf_free(&w);
                return words_free(words, n), -1;
            } else {
                rf_buf_append(&w, s, 1);
            }
        }
        if (q || n >= max || w.failed) {
            snprintf(why, cap, q ? "unterminated %c quote" : "command line too long", q);
            rf_buf_free(&w);
            return words_free(words, n), -1;
        }
        words[n++] = rf_buf_take(&w, NULL);
        if (!words[n - 1]) words[n - 1] = strdup("");
    }
    return n;
}

static bool add_data(struct rf_buf *data, const char *v, bool literal, char *why, size_t cap) {
    if (!literal && *v == '@') {
        snprintf(why, cap, "data from a file ('%.40s') is not supported: paste the body, or use "
                 "--data-raw", v);
        return false;
    }
    if (data->len) rf_buf_append(data, "&", 1);
    rf_buf_puts(data, v);
    return true;
}

/* Short options may carry their value glued on (-XPOST, -H'X: y'). */
static const char *opt_value(char **w, int n, int *i, const char *shortopt) {
    if (shortopt && strlen(w[*i]) > 2) return w[*i] + 2;
    return *i + 1 < n ? w[++*i] : NULL;
}

static bool curl_one(char **w, int n, int *i, struct probe_req *r, struct rf_buf *data,
                     bool *json, char *why, size_t cap) {
    const char *a = w[*i];
    static const char *const quiet[] = {"-s", "--silent", "-S", "--show-error", "-i", "--include",
                                        "-v", "--verbose", "--compressed", "-sS", "-Ss"};
    for (size_t k = 0; k < sizeof quiet / sizeof quiet[0]; k++)
        if (strcmp(a, quiet[k]) == 0) return true;
    bool sx = strncmp(a, "-X", 2) == 0, sh = strncmp(a, "-H", 2) == 0,
         sd = strncmp(a, "-d", 2) == 0;
    const char *v = NULL;
    if (sx || strcmp(a, "--request") == 0) {
        if (!(v = opt_value(w, n, i, sx ? a : NULL)) || strlen(v) >= sizeof r->method) goto missing;
        snprintf(r->method, sizeof r->method, "%s", v);
        return true;
    }
    if (sh || strcmp(a, "--header") == 0) {
        if (!(v = opt_value(w, n, i, sh ? a : NULL))) goto missing;
        return add_header(r, v, strlen(v), why, cap);
    }
    bool raw = strcmp(a, "--data-raw") == 0;
    if (sd || raw || strcmp(a, "--data") == 0 || strcmp(a, "--data-binary") == 0 ||
        strcmp(a, "--data-ascii") == 0 || strcmp(a, "--json") == 0) {
        if (!(v = opt_value(w, n, i, sd ? a : NULL))) goto missing;
        *json = *json || strcmp(a, "--json") == 0;
        return add_data(data, v, raw, why, cap);
    }
    if (strcmp(a, "--url") == 0) {
        if (!(v = opt_value(w, n, i, NULL))) goto missing;
        return set_url(r, v, why, cap);
    }
    if (*a == '-') {
        snprintf(why, cap, "curl option '%.40s' is not supported (supported: -X, -H, -d, --data, "
                 "--data-raw, --data-binary, --json, --url, -s, -S, -i, -v)", a);
        return false;
    }
    return set_url(r, a, why, cap);
missing:
    snprintf(why, cap, "curl option '%.40s' needs a value", a);
    return false;
}

/* curl's defaults: POST with data; a form body's Content-Type unless given. */
static bool curl_finish(struct probe_req *r, struct rf_buf *data, bool json, char *why,
                        size_t cap) {
    if (!r->path) {
        snprintf(why, cap, "the curl command names no URL");
        return false;
    }
    if (data->failed) {
        snprintf(why, cap, "body too long");
        return false;
    }
    if (!r->method[0]) snprintf(r->method, sizeof r->method, "%s", data->len ? "POST" : "GET");
    const char *ct = json ? "Content-Type: application/json"
                          : "Content-Type: application/x-www-form-urlencoded";
    if (data->len && !find_header(r, "Content-Type") && !add_header(r, ct, strlen(ct), why, cap))
        return false;
    if (json && !find_header(r, "Accept") &&
        !add_header(r, "Accept: application/json", 24, why, cap))
        return false;
    r->body = rf_buf_take(data, &r->body_len);
    return true;
}

static bool parse_curl(const char *text, struct probe_req *r, char *why, size_t cap) {
    char *w[RF_PROBE_CURL_ARGS_MAX];
    int n = shell_words(text, w, RF_PROBE_CURL_ARGS_MAX, why, cap);
    if (n < 0) return false;
    struct rf_buf data;
    rf_buf_init(&data, RF_RACE_REQUEST_BYTES_MAX);
    bool ok = true, json = false;
    for (int i = 1; i < n && ok; i++) ok = curl_one(w, n, &i, r, &data, &json, why, cap);
    if (ok) ok = curl_finish(r, &data, json, why, cap);
    rf_buf_free(&data);
    words_free(w, n);
    return ok;
}

bool probe_req_parse(const char *text, size_t len, struct probe_req *r, char *why, size_t cap) {
    memset(r, 0, sizeof *r);
    if (memchr(text, '\0', len)) {
        snprintf(why, cap, "the request file holds a NUL byte");
        return false;
    }
    const char *s = text;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    bool curl = strncmp(s, "curl", 4) == 0 && (isspace((unsigned char)s[4]) || s[4] == '\\');
    bool ok = curl ? parse_curl(s, r, why, cap) : parse_raw(text, len, r, why, cap);
    if (!ok) probe_req_free(r);
    return ok;
}
