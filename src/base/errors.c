/*
 * errors.c - the stable code names of rf_err, generated from the one list
 * in racefree_errors.h. Clients switch on these strings, so a name never
 * changes once released.
 */
#include "racefree.h"

#include <string.h>

#include "base/assert.h"

#define CODE_ROW(name, code, status, retry_after, title, detail) [name] = code,
static const char *const err_codes[RF_ERR__COUNT] = {RF_ERRORS(CODE_ROW)};
#undef CODE_ROW

const char *rf_err_code(rf_err err) {
    if ((int)err < 0 || err >= RF_ERR__COUNT) return err_codes[RF_ERR_INTERNAL];
    RF_ASSERT(err_codes[err] != NULL);
    return err_codes[err];
}

bool rf_err_parse(const char *code, rf_err *out) {
    if (!code || !out) return false;
    for (int e = 0; e < RF_ERR__COUNT; e++) {
        if (strcmp(err_codes[e], code) == 0) {
            *out = (rf_err)e;
            return true;
        }
    }
    return false;
}
