/*
 * fuzz_cursor.c - pagination: a list request's raw query string (?limit=,
 * ?after=, ?status=) through rf_req_page and rf_req_choice as h_op.c reads
 * them, then the cursor as the list reads it (core/listing.c): the key of
 * the last row seen, or an account's entries' decimal position.
 *
 * Invariants: an accepted page has a limit of 1..RF_LIST_LIMIT_MAX and a
 * cursor the list's validator accepts; a key cursor fits the cursor's key;
 * a decimal position prints back as the same text (one spelling per
 * position: no leading zeros, no sign, no overflow).
 */
#include <inttypes.h>
#include <stdbool.h>

#include "base/ids.h"
#include "core/listing.h"
#include "fuzz/fuzz.h"
#include "http/request.h"

static const char *no_header(void *src, const char *name) {
    (void)src;
    (void)name;
    return NULL;
}

static void cursor(const char *after) {
    struct list_cursor c;
    if (list_cursor_parse(after, &c) == RF_OK) {
        FUZZ_CHECK(strlen(c.key) < sizeof c.key);
        FUZZ_CHECK(c.key[0] ? c.pos == LIST_POS_UNRESOLVED && rf_id_valid(c.key) : c.pos == -1);
    }
    int64_t pos;
    if (list_pos_text_parse(after, &pos)) {
        char back[32];
        snprintf(back, sizeof back, "%" PRId64, pos);
        FUZZ_CHECK(pos >= 0 && strcmp(back, after) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *query = fuzz_cstr(data, size);
    struct rf_http_req req = {.method = "GET", .query_raw = query, .header = no_header};
    for (int v = 0; v < 2; v++) {
        struct rf_page page;
        struct rf_problem p = {0};
        if (rf_req_page(&req, v ? rf_id_valid : NULL, &page, &p)) {
            FUZZ_CHECK(page.limit >= 1 && page.limit <= RF_LIST_LIMIT_MAX);
            if (page.after) {
                FUZZ_CHECK(page.after == page.after_buf && (!v || rf_id_valid(page.after)));
                cursor(page.after);
            }
        } else {
            FUZZ_CHECK(p.err == RF_ERR_INVALID_LIMIT || p.err == RF_ERR_INVALID_CURSOR);
        }
    }
    static const char *const statuses[] = {"all", "open", "closed"};
    size_t status;
    struct rf_problem p = {0};
    if (rf_req_choice(&req, "status", statuses, 3, 0, &status, &p)) FUZZ_CHECK(status < 3);
    cursor(query);
    free(query);
    return 0;
}
