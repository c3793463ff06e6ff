/*
 * fields.h - THE validator: one field spec per operation (a row of
 * core/api.c) describes every member of the operation's request struct, its
 * type, its bounds and where it lives in the struct. The same spec
 *   - decodes JSON into the request struct (the HTTP body; an approval's
 *     action object), refusing unknown members, wrong types and bad values;
 *   - checks a request struct however it was built (the library's callers),
 * with the same rules and the same sentences, so an operation accepts the
 * same requests whether it arrives over HTTP, inside an approval or from C.
 */
#ifndef RF_CORE_FIELDS_H
#define RF_CORE_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/limits.h"
#include "racefree.h"

/* The C type each field has in its request struct. */
enum rf_field_type {
    RF_FIELD_STRING,   /* const char *: min..max_len characters (UTF-8 code points) */
    RF_FIELD_ID,       /* const char *: rf_id_valid */
    RF_FIELD_TIME,     /* int64_t ms since epoch, 1970..9999 (JSON: RFC 3339); 0: absent */
    RF_FIELD_OBJECT,   /* const char *: a JSON object's text, depth <= RF_JSON_DEPTH_MAX,
                        * at most max_len bytes compact (JSON: compacted with sorted keys) */
    RF_FIELD_BOOL,     /* bool; absent from JSON: min != 0 (its default) */
    RF_FIELD_INT,      /* int64_t in min..max; optional: 0 is absent */
    RF_FIELD_CURRENCY, /* const char *: ISO 4217 form, three upper-case letters A-Z */
    RF_FIELD_CHOICE,   /* int: a C enum; JSON: one of the strings `choices` (NULL-terminated),
                        * stored as choice_values[i] (NULL: i); optional and absent: 0 */
    RF_FIELD_NESTED,   /* a JSON object whose members are the fields `sub` (their offsets
                        * are in the same request struct); faults name "in 'name': ...".
                        * Decoded after the other fields of its level; max_len (0: none)
                        * bounds it and its depth as an OBJECT's */
    RF_FIELD_ARRAY,    /* const char *: a JSON array's text of min..max elements, each an
                        * object, bounded as an OBJECT (max_len bytes compact, depth); the
                        * operation's own rules read its elements */
};

/* Where a field comes from at the HTTP edge. An approval's action object
 * carries the BODY and PATH fields of the operation it names. */
enum rf_field_at {
    RF_AT_BODY = 1,     /* a member of the JSON body */
    RF_AT_PATH = 2,     /* the path parameter of the same name */
    RF_AT_IF_MATCH = 4, /* the If-Match header (INT, 0: unconditional) */
    RF_AT_CALLER = 8,   /* the calling API key's id */
    RF_AT_QUERY = 16,   /* lists: ?status=, ?after=, ?limit= */
    RF_AT_CALLER_ROLE = 32, /* the calling API key's role (CHOICE of enum rf_role) */
    RF_AT_FILTER = 64,  /* lists: a filter in the query (?currency=), decoded by its type
                         * as a JSON string member of that name would be */
};

struct rf_field {
    const char *name;
    enum rf_field_type type;
    bool required;       /* a null or absent optional member is "not present" */
    size_t max_len;      /* STRING: characters; OBJECT, NESTED, ARRAY: bytes */
    int64_t min, max;    /* INT: the range; STRING: min is the fewest characters;
                            ARRAY: the number of elements */
    size_t offset;       /* of the member in the request struct */
    enum rf_field_at at; /* 0 means RF_AT_BODY */
    const struct rf_field *sub; /* NESTED: its fields */
    size_t n_sub;
    const char *const *choices; /* CHOICE: the names, NULL-terminated */
    const int *choice_values;   /* CHOICE: the C value of each name (NULL: its index) */
    const char *choice_text;    /* CHOICE: the detail's end: "user or system" */
};

/* Field shapes, with designated initializers (T: the request struct). */
#define RF_F(T, member, name_, type_, required_, ...)                                  \
    {.name = name_, .type = type_, .required = required_, .offset = offsetof(T, member), \
     __VA_ARGS__}

#define RF_FIELD_AT(f) ((f)->at ? (f)->at : RF_AT_BODY)

/* The member a field names in its request struct. */
static inline const char **rf_field_str(void *req, const struct rf_field *f) {
    return (const char **)((char *)req + f->offset);
}
static inline int64_t *rf_field_i64(void *req, const struct rf_field *f) {
    return (int64_t *)((char *)req + f->offset);
}

/* Memory a decode allocated (compacted object texts) that the request
 * struct points into; rf_decoded_clear frees it. */
struct rf_decoded {
    char *texts[RF_HTTP_FIELDS_MAX];
    int n;
};
void rf_decoded_clear(struct rf_decoded *d);

/* Decodes the members of obj (NULL: none) whose field is at one of `at`
 * (a mask of enum rf_field_at) into req; any other member is unknown
 * (RF_ERR_UNKNOWN_FIELD, except `skip`, a member name to ignore or NULL).
 * String fields borrow from obj, which must outlive req. On failure fault
 * names the field and nothing needs freeing. */
rf_err rf_fields_decode(const json_t *obj, const struct rf_field *f, size_t n, unsigned at,
                        const char *skip, void *req, struct rf_decoded *d, struct rf_fault *fault);

/* Checks every field of req against the spec (required ones present,
 * values in bounds); RF_ERR_INVALID with fault naming the first at fault. */
rf_err rf_fields_check(const struct rf_field *f, size_t n, const void *req,
                       struct rf_fault *fault);

/* Fills fault (code, param, printf-formatted detail, made printable ASCII). */
void rf_fault_set(struct rf_fault *fault, rf_err code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
