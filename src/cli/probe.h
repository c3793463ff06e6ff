/*
 * probe.h - the request `racefree probe` fires: read from a raw HTTP request
 * file or a curl command line (probe_req.c), and the rule that turns N
 * answers into a verdict (cmd_probe.c).
 */
#ifndef RF_CLI_PROBE_H
#define RF_CLI_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/limits.h"

struct probe_req {
    char method[32];
    char base[RF_RACE_URL_CHARS_MAX + 1]; /* "http://host[:port]" the request names, or "" */
    char *path;                           /* origin-form target: "/path?query" (malloc'd) */
    char *headers[RF_PROBE_HEADERS_MAX];  /* "Name: value" (malloc'd) */
    int n_headers;
    char *body; /* malloc'd, may be NULL */
    size_t body_len;
};

/* Parses text (a raw request, or a command line starting with `curl`) into
 * r. False with why (a sentence naming what is unsupported) otherwise; r is
 * then freed. */
bool probe_req_parse(const char *text, size_t len, struct probe_req *r, char *why, size_t cap);
void probe_req_free(struct probe_req *r);

#endif
