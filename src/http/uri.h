/*
 * uri.h - percent-decoding of a request target's pieces, done after routing
 * on the raw path. A path segment may not decode to NUL, '/' or another
 * control character: otherwise "/keys/ID%00zzz" would act on key ID and
 * "ID%2Fentries" would reach another route. Query values are decoded the
 * same way (a '/' is allowed there).
 */
#ifndef RF_HTTP_URI_H
#define RF_HTTP_URI_H

#include <stdbool.h>
#include <stddef.h>

enum rf_uri_err {
    RF_URI_OK = 0,
    RF_URI_BAD_ESCAPE,     /* '%' not followed by two hex digits */
    RF_URI_FORBIDDEN_CHAR, /* decodes to NUL, a control character, or '/' in a segment */
    RF_URI_TOO_LONG,       /* the decoded text does not fit in cap - 1 bytes */
};

/* Decodes in[0..in_len) into out (NUL-terminated, at most cap - 1 bytes).
 * segment: a path segment ('/' refused after decoding). *out_len may be NULL. */
enum rf_uri_err rf_uri_decode(const char *in, size_t in_len, bool segment, char *out, size_t cap,
                              size_t *out_len);

/* Looks name up in a raw query string ("a=1&b=x%3Ay", without '?'); the first
 * occurrence wins. Returns 1 and the decoded value in out when present, 0 when
 * absent, -1 when present but malformed (bad escape, control character, too
 * long for cap). A name without '=' has the empty value. */
int rf_uri_query_get(const char *query, const char *name, char *out, size_t cap);

#endif
