/*
 * ids.h - server-made ids (UUIDv7: sortable by creation time) and the
 * validation of client input: ids ([A-Za-z0-9._:-]{1,128}, not "." or
 * ".."), printable ASCII, and UTF-8 text whose limits count characters.
 */
#ifndef RF_IDS_H
#define RF_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RF_UUID_TEXT_BYTES 37
#define RF_I64_TEXT_BYTES 21 /* "-9223372036854775808" and its NUL */

void rf_uuid7(int64_t now_ms, char out[RF_UUID_TEXT_BYTES]);
/* n unpredictable bytes for ids (not for secrets: those take
 * randombytes_buf), without a system call per call: see ids.c. */
void rf_random_id_bytes(void *buf, size_t n);
bool rf_id_valid(const char *s);
/* A PostgreSQL schema racefree may live in (--schema, ?schema=): 1 to
 * RF_PG_SCHEMA_CHARS_MAX of [a-z0-9_], not starting with a digit, not pg_*
 * (PostgreSQL's own). Such a name needs no quoting and folds to itself, so
 * it is pasted into SET search_path as is. */
bool rf_schema_name_valid(const char *s);
/* The number of characters (code points) of UTF-8 text; SIZE_MAX when s is
 * not valid UTF-8 (overlong, surrogate, beyond U+10FFFF, cut short), so a
 * "chars > limit" check refuses it too. */
size_t rf_utf8_chars(const char *s);
/* printable ASCII, 1..max chars */
bool rf_printable_valid(const char *s, size_t max_chars);
/* Replaces, in place, every byte outside printable ASCII with '?': problem
 * details quote client input, and a truncated UTF-8 sequence must never make
 * a problem body invalid JSON. */
void rf_printable_force(char *s);
/* Copies src into dst[cap] (truncating is a bug: asserted). */
void rf_strcpy(char *dst, size_t cap, const char *src);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void rf_hex(const uint8_t *bytes, size_t n, char *out);
/* The decimal text of v (as printf's %lld) into out; returns its length.
 * For statement parameters, where snprintf per value was a visible cost. */
int rf_i64_text(int64_t v, char out[RF_I64_TEXT_BYTES]);

#endif
