/*
 * view.h - how a resource renders: its JSON (written in its h_<resource>.c,
 * the only place that resource becomes JSON), its ETag version, its
 * Location. A route row that names an operation names the view of the
 * operation's result and how it answers (rf_reply_kind); h_op.c does the
 * rest for every such route, so a first answer, its Idempotency-Key replay,
 * a read and a list item of one resource are the same shape by
 * construction.
 */
#ifndef RF_HTTP_VIEW_H
#define RF_HTTP_VIEW_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "racefree.h"

struct rf_view {
    json_t *(*json)(const void *entity); /* NULL when it cannot be built */
    size_t version_offset;              /* int64_t: the ETag */
    const char *location_fmt;           /* 201 Location, with n_location %s */
    size_t location_offsets[2];         /* char[] members of the entity */
    int n_location;
    size_t entity_size;                 /* a list item */
    bool no_version;                    /* no version: no ETag, no Location */
    /* A list page's members beside "data" and "next", read from the page
     * result (NULL: none); false when out of memory. */
    bool (*page_members)(const void *page, json_t *obj);
};

enum rf_reply_kind {
    RF_REPLY_ENTITY = 0, /* 200 with the entity and its ETag */
    RF_REPLY_CREATED,    /* 201 with Location */
    RF_REPLY_UPSERT,     /* 201 when the result says created, else 200 */
    RF_REPLY_EMPTY,      /* 204 with the entity's ETag */
    RF_REPLY_GONE,       /* 204 without ETag: the entity is gone, no version left to name */
    RF_REPLY_PAGE,       /* a list page: {"data": [...], "next": ...} */
    RF_REPLY_ITEMS,      /* a write's items (a page-shaped result): {"data": [...]} */
};

/* What a list route reads from its query: ?status= among names (absent:
 * index status_default), ?after= of the cursor's form, ?limit=. Its other
 * filters are the operation's fields at RF_AT_FILTER (h_op.c). */
struct rf_list_query {
    const char *status_param;           /* the status slot's parameter; NULL: "status" */
    const char *const *statuses;        /* NULL: the list has no ?status= */
    size_t n_statuses;
    size_t status_default;
    bool (*cursor_valid)(const char *cursor);
};

extern const struct rf_view rf_view_key;
extern const struct rf_view rf_view_key_created;
extern const struct rf_list_query rf_list_keys;

extern const struct rf_view rf_view_entitlement;
extern const struct rf_list_query rf_list_entitlements;

extern const struct rf_view rf_view_binding;
extern const struct rf_view rf_view_transfer; /* transfers and credits */
extern const struct rf_view rf_view_approval;
extern const struct rf_list_query rf_list_approvals;
extern const struct rf_view rf_view_account;
extern const struct rf_view rf_view_entry;
extern const struct rf_list_query rf_list_entries;
extern const struct rf_list_query rf_list_accounts;
extern const struct rf_list_query rf_list_transfers;
extern const struct rf_view rf_view_payout;
extern const struct rf_list_query rf_list_payouts;
extern const struct rf_view rf_view_checkout;
extern const struct rf_list_query rf_list_checkouts;
extern const struct rf_view rf_view_webhook_secret;
extern const struct rf_list_query rf_list_webhook_secrets;
extern const struct rf_view rf_view_webhook_event;
extern const struct rf_list_query rf_list_webhook_events;
extern const struct rf_view rf_view_lease;
extern const struct rf_view rf_view_payout_batch;
extern const struct rf_view rf_view_job;
extern const struct rf_view rf_view_queue_stats;
extern const struct rf_view rf_view_dropin_match;
extern const struct rf_list_query rf_list_dropin_matches;
extern const struct rf_view rf_view_notification;
extern const struct rf_view rf_view_notification_count;
extern const struct rf_list_query rf_list_notifications;
extern const struct rf_view rf_view_announcement;

#endif
