/*
 * codec.h - an operation's typed result as text, for the Idempotency-Key
 * record: the record stores the result (not a rendered reply), and a replay
 * decodes it into the same struct, so the edge renders the first answer and
 * every replay with the same code, byte for byte, outside the transaction.
 *
 * A codec lists every member of a result struct the edge may read. The text
 * is a compact JSON object {"member": value} (null for an absent string), so
 * a record written by one version is read by the next as long as member
 * names stay (a member added later is marked so: RF_MEMBER_ADDED).
 */
#ifndef RF_CORE_CODEC_H
#define RF_CORE_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "racefree.h"

enum rf_member_type {
    RF_MEMBER_CHARS, /* char[size], NUL-terminated */
    RF_MEMBER_TEXT,  /* char *, malloc'd or NULL */
    RF_MEMBER_I64,   /* int64_t */
    RF_MEMBER_INT,   /* int (enums) */
    RF_MEMBER_BOOL,  /* bool */
    RF_MEMBER_ENUM,  /* int, 0..n-1: stored as its name in `names` (NULL-terminated), so a
                      * record stays readable when an enum gains values */
};

struct rf_member {
    const char *name;
    enum rf_member_type type;
    size_t offset;
    size_t size;
    const char *const *names; /* ENUM: the name of each value */
    bool added;               /* added after records were stored: absent reads as zero */
};

struct rf_codec {
    const struct rf_member *members;
    size_t n;
};

/* Members of struct type T, by their C path ("ent.id" for a nested one). */
#define RF_MEMBER(T, path, kind)                                                          \
    {.name = #path, .type = RF_MEMBER_##kind, .offset = offsetof(T, path),              \
     .size = sizeof(((T *)0)->path)}
/* An enum member (int) stored by name: names is NULL-terminated, in value order. */
#define RF_MEMBER_NAMED(T, path, names_)                                                  \
    {.name = #path, .type = RF_MEMBER_ENUM, .offset = offsetof(T, path),                \
     .size = sizeof(((T *)0)->path), .names = (names_)}
/* A member added to a result after records of it were stored: a record
 * without it decodes with the member left zero ("" / 0 / false). */
#define RF_MEMBER_ADDED(T, path, kind)                                                    \
    {.name = #path, .type = RF_MEMBER_##kind, .offset = offsetof(T, path),              \
     .size = sizeof(((T *)0)->path), .added = true}
#define RF_CODEC(members) {(members), sizeof(members) / sizeof((members)[0])}

/* The text of res (malloc'd), or NULL when out of memory. */
char *rf_codec_encode(const struct rf_codec *c, const void *res);
/* Fills res (zeroed by the caller) from text; RF_ERR_INTERNAL when the text
 * does not fit the codec, RF_ERR_NOMEM. On failure the TEXT members that
 * were filled are left for the result's clear function. */
rf_err rf_codec_decode(const struct rf_codec *c, const char *text, void *res);

/* s as a JSON string, quoted and escaped exactly as jansson's dump escapes
 * it without flags (\" \\ \b \f \n \r \t, other controls as \u00XX, every
 * other byte as is), into out[cap]; returns its length, or 0 when it does
 * not fit. For text stored as JSON on a hot path (a credit's reason) without
 * building and dumping a json_t per call. 6 bytes per input byte suffice. */
size_t rf_json_quote(const char *s, char *out, size_t cap);

#endif
