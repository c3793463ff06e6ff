/*
 * cursor.h - the text of a list cursor (a page's "next", the next request's
 * ?after=): "<pos>" or "<pos>.<key>", pos a decimal 0..INT64_MAX and key an
 * id. Clients treat it as opaque; the server parses it here, once, for every
 * list (the http layer to answer 400 invalid_cursor, core/listing.c to bind
 * it). What pos and key mean is core/listing.h's business.
 */
#ifndef RF_BASE_CURSOR_H
#define RF_BASE_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "racefree.h"

struct rf_cursor {
    int64_t pos;
    char key[RF_ID_BYTES]; /* "" when the cursor has no key */
};

/* True and *out filled when s is a cursor; out may be NULL (validation). */
bool rf_cursor_parse(const char *s, struct rf_cursor *out);
/* Writes c as text into out[cap]; cap of RF_CURSOR_BYTES always suffices. */
void rf_cursor_format(const struct rf_cursor *c, char *out, size_t cap);

#endif
