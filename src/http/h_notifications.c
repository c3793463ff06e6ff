/*
 * h_notifications.c - how a notification, a user's unread count and a
 * list page of notifications render (the only place they become JSON).
 * Every notification route is an operation route run by h_op.c with these
 * views, so a create, its replay, a read, an unread and a list item are
 * the same shape. The read state is read_at alone: null or an RFC 3339
 * time (the first read's).
 */
#include <stddef.h>

#include "base/ids.h"
#include "http/respond.h"
#include "http/view.h"

static json_t *time_or_null(int64_t ms) { return ms ? rf_json_time(ms) : json_null(); }

static json_t *notification_json(const void *entity) {
    const struct rf_notification *n = entity;
    json_t *data = n->data_json ? json_loads(n->data_json, 0, NULL) : json_null();
    if (!data) return NULL;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I}", "id",
                     n->id, "user_id", n->user_id, "kind", n->kind, "title",
                     n->title ? n->title : "", "body", n->body ? n->body : "", "data", data,
                     "dedupe_key", rf_json_str(n->dedupe_key), "announcement_id",
                     rf_json_str(n->announcement_id), "read_at", time_or_null(n->read_at_ms),
                     "created_at", rf_json_time(n->created_at_ms), "updated_at",
                     rf_json_time(n->updated_at_ms), "version", (json_int_t)n->version);
}

/* The list page's unread_count: the user's, read by the page's statement. */
static bool notification_page_members(const void *page, json_t *obj) {
    const struct rf_notification_page *p = page;
    return json_object_set_new(obj, "unread_count", json_integer(p->unread_count)) == 0;
}

/* A notification (201 with Location when a create made it, 200 when the
 * dedupe_key found it; ETag its version). */
const struct rf_view rf_view_notification = {
    .json = notification_json,
    .version_offset = offsetof(struct rf_notification, version),
    .location_fmt = "/v1/users/%s/notifications/%s",
    .location_offsets = {offsetof(struct rf_notification, user_id),
                         offsetof(struct rf_notification, id)},
    .n_location = 2,
    .entity_size = sizeof(struct rf_notification),
    .page_members = notification_page_members,
};

static json_t *notification_count_json(const void *entity) {
    const struct rf_notification_count *c = entity;
    if (!c->up_to[0])
        return json_pack("{s:s, s:I}", "user_id", c->user_id, "unread_count",
                         (json_int_t)c->unread_count);
    return json_pack("{s:s, s:s, s:I, s:I}", "user_id", c->user_id, "up_to", c->up_to,
                     "marked", (json_int_t)c->marked, "unread_count",
                     (json_int_t)c->unread_count);
}

/* A count read now (unread-count) or what a read-all did: no version. */
const struct rf_view rf_view_notification_count = {
    .json = notification_count_json,
    .no_version = true,
};

/* GET /v1/users/{user_id}/notifications: no ?status= (?unread= is a
 * filter); the cursor is a notification id. */
const struct rf_list_query rf_list_notifications = {.cursor_valid = rf_id_valid};
