/*
 * test_notifications_http - a user's notifications with one read-state
 * contract (read_at), black-box.
 *
 * Proves: create 201 / a repeated dedupe_key 200 with the first one (and 32
 * parallel sends of one key make one 201 and one row); read sets read_at
 * once (32 concurrent reads: every answer 200 with one equal read_at, one
 * version bump), unread clears it, repeats are no-ops; read-all marks the
 * unread ones up to and including up_to in list order and answers the
 * count marked and the unread count after; a list page's unread_count
 * never disagrees with its rows while a writer adds notifications and
 * another client marks them read-all; another user's id is 404
 * notification_not_found on every route (and changes nothing) and no
 * cursor of the list (400 invalid_cursor); bad input
 * 400 naming the param; roles 401/403; an Idempotency-Key replays a create
 * and a read (the replay changes nothing).
 */
#include "http_env.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define RACERS 32

/* The path of user's notifications, with a suffix ("" or "/<id>/read"...). */
static void note_path(char *out, size_t cap, const char *user, const char *suffix) {
    snprintf(out, cap, "/v1/users/%s/notifications%s", user, suffix);
}

/* POST a notification for user; returns the parsed body (json_decref) and
 * fails unless the status is want. */
static json_t *note_create(const char *user, const char *body, int want) {
    char path[256];
    note_path(path, sizeof path, user, "");
    struct rf_t_resp r;
    env_req(&g_env, "POST", path, g_env.service, body, NULL, &r);
    RF_ASSERT_STATUS(&r, want);
    json_t *j = rf_resp_json(&r);
    assert_int_equal(etag_version(&r), rf_t_json_int(j, "version"));
    rf_resp_free(&r);
    return j;
}

/* A fresh notification for user; its id into id. */
static void note_new(const char *user, int i, char *id, size_t cap) {
    char body[160];
    snprintf(body, sizeof body, "{\"kind\":\"test.note\",\"title\":\"t%d\",\"body\":\"b\"}", i);
    json_t *j = note_create(user, body, 201);
    snprintf(id, cap, "%s", rf_t_json_str(j, "id"));
    json_decref(j);
}

/* method on user's notifications + suffix as key; the parsed body of a
 * status-want answer (json_decref), or NULL when want is a problem. */
static json_t *note_call(const char *method, const char *user, const char *suffix,
                         const char *key, const char *body, int want, const char *code) {
    char path[256];
    note_path(path, sizeof path, user, suffix);
    struct rf_t_resp r;
    env_req(&g_env, method, path, key, body, NULL, &r);
    json_t *j = NULL;
    if (code) {
        RF_ASSERT_PROBLEM(&r, want, code);
    } else {
        RF_ASSERT_STATUS(&r, want);
        j = rf_resp_json(&r);
    }
    rf_resp_free(&r);
    return j;
}

/* POST /{id}/<verb> (read or unread) as the service: the notification. */
static json_t *note_mark(const char *user, const char *id, const char *verb) {
    char suffix[200];
    snprintf(suffix, sizeof suffix, "/%s/%s", id, verb);
    return note_call("POST", user, suffix, g_env.service, NULL, 200, NULL);
}

static int64_t unread_count(const char *user) {
    json_t *j = note_call("GET", user, "/unread-count", g_env.readonly, NULL, 200, NULL);
    int64_t n = rf_t_json_int(j, "unread_count");
    json_decref(j);
    return n;
}

static bool is_null(json_t *j, const char *name) { return json_is_null(json_object_get(j, name)); }

static void test_create_read_unread(void **state) {
    (void)state;
    char user[64];
    RID(user, "nu");
    json_t *a = note_create(user, "{\"kind\":\"order.shipped\",\"title\":\"Shipped\",\"body\":"
                                  "\"On its way\",\"data\":{\"order\":\"o-1\"},\"dedupe_key\":"
                                  "\"ship-o-1\"}", 201);
    const char *id = rf_t_json_str(a, "id");
    assert_string_equal(rf_t_json_str(a, "user_id"), user);
    assert_string_equal(rf_t_json_str(json_object_get(a, "data"), "order"), "o-1");
    assert_true(is_null(a, "read_at"));
    assert_int_equal(rf_t_json_int(a, "version"), 1);
    /* The same dedupe_key again, other content: 200 with the first one. */
    json_t *b = note_create(user, "{\"kind\":\"x\",\"title\":\"Other\",\"body\":\"\","
                                  "\"dedupe_key\":\"ship-o-1\"}", 200);
    assert_string_equal(rf_t_json_str(b, "id"), id);
    assert_string_equal(rf_t_json_str(b, "title"), "Shipped");
    json_decref(b);
    assert_int_equal(unread_count(user), 1);

    json_t *r1 = note_mark(user, id, "read");
    const char *read_at = rf_t_json_str(r1, "read_at");
    assert_true(is_rfc3339_ms(read_at));
    assert_int_equal(rf_t_json_int(r1, "version"), 2);
    rf_t_sleep_ms(5);
    json_t *r2 = note_mark(user, id, "read"); /* a no-op: the first read's time stays */
    assert_string_equal(rf_t_json_str(r2, "read_at"), read_at);
    assert_int_equal(rf_t_json_int(r2, "version"), 2);
    assert_int_equal(unread_count(user), 0);
    json_decref(r2);
    json_decref(r1);

    json_t *u1 = note_mark(user, id, "unread");
    assert_true(is_null(u1, "read_at"));
    assert_int_equal(rf_t_json_int(u1, "version"), 3);
    json_t *u2 = note_mark(user, id, "unread");
    assert_int_equal(rf_t_json_int(u2, "version"), 3);
    assert_int_equal(unread_count(user), 1);
    json_decref(u2);
    json_decref(u1);

    /* GET one, and the filters: ?unread=true lists it, ?unread=false not. */
    char suffix[200];
    snprintf(suffix, sizeof suffix, "/%s", id);
    json_t *g = note_call("GET", user, suffix, g_env.readonly, NULL, 200, NULL);
    assert_true(is_null(g, "read_at"));
    json_decref(g);
    json_t *l = note_call("GET", user, "?unread=true", g_env.readonly, NULL, 200, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "data")), 1);
    assert_int_equal(rf_t_json_int(l, "unread_count"), 1);
    json_decref(l);
    l = note_call("GET", user, "?unread=false", g_env.readonly, NULL, 200, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "data")), 0);
    assert_int_equal(rf_t_json_int(l, "unread_count"), 1);
    json_decref(l);
    json_decref(a);
}

/* 32 reads of one notification at once: one read_at in every answer. */
static void test_read_race(void **state) {
    (void)state;
    char user[64], id[160];
    RID(user, "nr");
    note_new(user, 0, id, sizeof id);
    static struct rf_par_req reqs[RACERS];
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < RACERS; i++) {
        reqs[i].port = g_env.srv.port;
        reqs[i].method = "POST";
        snprintf(reqs[i].path, sizeof reqs[i].path, "/v1/users/%s/notifications/%s/read", user,
                 id);
        reqs[i].api_key = i % 2 ? g_env.admin : g_env.service;
    }
    assert_int_equal(rf_parallel(reqs, RACERS), 0);
    char first[64] = "";
    for (int i = 0; i < RACERS; i++) {
        RF_ASSERT_STATUS(&reqs[i].resp, 200);
        json_t *j = rf_resp_json(&reqs[i].resp);
        const char *at = rf_t_json_str(j, "read_at");
        assert_true(is_rfc3339_ms(at));
        if (!first[0]) snprintf(first, sizeof first, "%s", at);
        if (strcmp(first, at) != 0) fail_msg("read_at %s beside %s", at, first);
        assert_int_equal(rf_t_json_int(j, "version"), 2); /* one bump, seen by all */
        json_decref(j);
    }
    rf_par_free(reqs, RACERS);
    char suffix[200];
    snprintf(suffix, sizeof suffix, "/%s", id);
    json_t *g = note_call("GET", user, suffix, g_env.readonly, NULL, 200, NULL);
    assert_string_equal(rf_t_json_str(g, "read_at"), first);
    assert_int_equal(rf_t_json_int(g, "version"), 2);
    json_decref(g);
}

/* 32 sends of one dedupe_key at once: one 201, one notification. */
static void test_dedupe_race(void **state) {
    (void)state;
    char user[64];
    RID(user, "nd");
    static struct rf_par_req reqs[RACERS];
    static const char body[] =
        "{\"kind\":\"k\",\"title\":\"t\",\"body\":\"b\",\"dedupe_key\":\"d1\"}";
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < RACERS; i++) {
        reqs[i].port = g_env.srv.port;
        reqs[i].method = "POST";
        note_path(reqs[i].path, sizeof reqs[i].path, user, "");
        reqs[i].api_key = g_env.service;
        reqs[i].body = body;
    }
    assert_int_equal(rf_parallel(reqs, RACERS), 0);
    int created = 0;
    char first[160] = "";
    for (int i = 0; i < RACERS; i++) {
        int st = reqs[i].resp.status;
        if (st != 200 && st != 201) RF_ASSERT_STATUS(&reqs[i].resp, 201);
        created += st == 201;
        json_t *j = rf_resp_json(&reqs[i].resp);
        if (!first[0]) snprintf(first, sizeof first, "%s", rf_t_json_str(j, "id"));
        assert_string_equal(rf_t_json_str(j, "id"), first);
        json_decref(j);
    }
    assert_int_equal(created, 1);
    rf_par_free(reqs, RACERS);
    json_t *l = note_call("GET", user, "", g_env.readonly, NULL, 200, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "data")), 1);
    json_decref(l);
}

/* read-all: the unread ones up to and including up_to, in list order. */
static void test_read_all(void **state) {
    (void)state;
    char user[64], ids[5][160], body[256];
    RID(user, "na");
    for (int i = 0; i < 5; i++) note_new(user, i, ids[i], sizeof ids[i]);
    json_t *r = note_mark(user, ids[1], "read");
    const char *kept = rf_t_json_str(r, "read_at");
    snprintf(body, sizeof body, "{\"up_to\":\"%s\"}", ids[2]);
    json_t *a = note_call("POST", user, "/read-all", g_env.service, body, 200, NULL);
    assert_int_equal(rf_t_json_int(a, "marked"), 2); /* 0 and 2; 1 was read */
    assert_int_equal(rf_t_json_int(a, "unread_count"), 2);
    assert_string_equal(rf_t_json_str(a, "up_to"), ids[2]);
    json_decref(a);
    a = note_call("POST", user, "/read-all", g_env.service, body, 200, NULL);
    assert_int_equal(rf_t_json_int(a, "marked"), 0);
    json_decref(a);
    /* The list, in order: 0..2 read (1 keeps its first time), 3..4 unread. */
    json_t *l = note_call("GET", user, "", g_env.readonly, NULL, 200, NULL);
    json_t *data = json_object_get(l, "data");
    assert_int_equal(json_array_size(data), 5);
    for (int i = 0; i < 5; i++) {
        json_t *it = json_array_get(data, (size_t)i);
        assert_string_equal(rf_t_json_str(it, "id"), ids[i]);
        assert_int_equal(is_null(it, "read_at"), i >= 3);
    }
    assert_string_equal(rf_t_json_str(json_array_get(data, 1), "read_at"), kept);
    assert_int_equal(rf_t_json_int(l, "unread_count"), 2);
    json_decref(l);
    json_decref(r);
}

/* ---- read-all and new notifications racing a reader ------------------------ */

#define RACE_NOTES 80
#define RACE_READS 40

struct race {
    char user[64];
    pthread_mutex_t mu;
    char last_id[160];    /* the writer's newest */
    bool done;
    int checks;
};

static void race_writer(struct race *rc) {
    for (int i = 0; i < RACE_NOTES; i++) {
        char id[160];
        note_new(rc->user, i, id, sizeof id);
        pthread_mutex_lock(&rc->mu);
        snprintf(rc->last_id, sizeof rc->last_id, "%s", id);
        pthread_mutex_unlock(&rc->mu);
    }
    pthread_mutex_lock(&rc->mu);
    rc->done = true;
    pthread_mutex_unlock(&rc->mu);
}

static bool race_state(struct race *rc, char *last, size_t cap) {
    pthread_mutex_lock(&rc->mu);
    bool done = rc->done;
    snprintf(last, cap, "%s", rc->last_id);
    pthread_mutex_unlock(&rc->mu);
    return done;
}

static void race_marker(struct race *rc) {
    char last[160], body[256];
    for (;;) {
        bool done = race_state(rc, last, sizeof last);
        if (last[0]) {
            snprintf(body, sizeof body, "{\"up_to\":\"%s\"}", last);
            json_t *a = note_call("POST", rc->user, "/read-all", g_env.service, body, 200, NULL);
            assert_true(rf_t_json_int(a, "marked") >= 0 && rf_t_json_int(a, "unread_count") >= 0);
            json_decref(a);
        }
        if (done) return;
        rf_t_sleep_ms(2);
    }
}

/* Each page (the whole list fits one) must hold exactly unread_count
 * unread items: with ?unread=true all its items, unfiltered the ones
 * whose read_at is null. */
static void race_reader(struct race *rc) {
    char last[160];
    for (int i = 0; i < RACE_READS || !race_state(rc, last, sizeof last); i++) {
        json_t *l = note_call("GET", rc->user, i % 2 ? "?unread=true&limit=200" : "?limit=200",
                              g_env.readonly, NULL, 200, NULL);
        assert_true(is_null(l, "next"));
        json_t *data = json_object_get(l, "data");
        int64_t unread = 0;
        for (size_t k = 0; k < json_array_size(data); k++)
            unread += is_null(json_array_get(data, k), "read_at");
        if (i % 2) assert_int_equal(unread, (int64_t)json_array_size(data));
        if (unread != rf_t_json_int(l, "unread_count"))
            fail_msg("page of %zu holds %lld unread, its unread_count says %lld",
                     json_array_size(data), (long long)unread,
                     (long long)rf_t_json_int(l, "unread_count"));
        json_decref(l);
        rc->checks++;
    }
}

static void race_fn(int idx, void *ctx) {
    struct race *rc = ctx;
    if (idx == 0) race_writer(rc);
    else if (idx == 1) race_marker(rc);
    else race_reader(rc);
}

static void test_read_all_races_writer(void **state) {
    (void)state;
    static struct race rc;
    memset(&rc, 0, sizeof rc);
    pthread_mutex_init(&rc.mu, NULL);
    RID(rc.user, "nx");
    assert_int_equal(rf_parallel_fn(3, race_fn, &rc), 0);
    pthread_mutex_destroy(&rc.mu);
    assert_true(rc.checks >= RACE_READS);
    /* A last read-all up to the newest: nothing is left unread. */
    char body[256];
    snprintf(body, sizeof body, "{\"up_to\":\"%s\"}", rc.last_id);
    json_t *a = note_call("POST", rc.user, "/read-all", g_env.service, body, 200, NULL);
    assert_int_equal(rf_t_json_int(a, "unread_count"), 0);
    json_decref(a);
    json_t *l = note_call("GET", rc.user, "?limit=200", g_env.readonly, NULL, 200, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "data")), RACE_NOTES);
    assert_int_equal(rf_t_json_int(l, "unread_count"), 0);
    json_decref(l);
}

/* ---- another user's ids, bad input, roles --------------------------------------- */

static void test_other_users_id(void **state) {
    (void)state;
    char a[64], b[64], id[160], mine[160], suffix[256], body[256];
    RID(a, "no");
    RID(b, "no");
    note_new(a, 0, id, sizeof id);
    note_new(b, 0, mine, sizeof mine);
    const char *verbs[] = {"", "/read", "/unread"};
    for (int i = 0; i < 3; i++) {
        snprintf(suffix, sizeof suffix, "/%s%s", id, verbs[i]);
        json_decref(note_call(i ? "POST" : "GET", b, suffix, i ? g_env.service : g_env.readonly,
                              NULL, 404, "notification_not_found"));
    }
    snprintf(body, sizeof body, "{\"up_to\":\"%s\"}", id);
    json_decref(note_call("POST", b, "/read-all", g_env.admin, body, 404,
                          "notification_not_found"));
    /* Nothing changed: a's still unread at version 1, b's too. */
    snprintf(suffix, sizeof suffix, "/%s", id);
    json_t *g = note_call("GET", a, suffix, g_env.readonly, NULL, 200, NULL);
    assert_true(is_null(g, "read_at"));
    assert_int_equal(rf_t_json_int(g, "version"), 1);
    json_decref(g);
    assert_int_equal(unread_count(b), 1);
    /* As a cursor, another user's id is no position (400 invalid_cursor),
     * so a list tells nothing of ids outside its user. */
    snprintf(suffix, sizeof suffix, "?after=%s", id);
    json_decref(note_call("GET", b, suffix, g_env.readonly, NULL, 400, "invalid_cursor"));
    snprintf(suffix, sizeof suffix, "?after=%s", mine);
    json_t *l = note_call("GET", b, suffix, g_env.readonly, NULL, 200, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "data")), 0);
    json_decref(l);
    /* b's own id under a's path is not found either. */
    snprintf(suffix, sizeof suffix, "/%s/read", mine);
    json_decref(note_call("POST", a, suffix, g_env.service, NULL, 404, "notification_not_found"));
    assert_int_equal(unread_count(b), 1);
}

struct bad {
    const char *method;
    const char *suffix;
    const char *body;
    const char *code;
    const char *param;
};

static void test_bad_input(void **state) {
    (void)state;
    char user[64], long_title[260], b1[400], long_kind[80], b2[200];
    RID(user, "nb");
    memset(long_title, 't', 201);
    long_title[201] = '\0';
    snprintf(b1, sizeof b1, "{\"kind\":\"k\",\"title\":\"%s\",\"body\":\"b\"}", long_title);
    memset(long_kind, 'k', 65);
    long_kind[65] = '\0';
    snprintf(b2, sizeof b2, "{\"kind\":\"%s\",\"title\":\"t\",\"body\":\"b\"}", long_kind);
    const struct bad cases[] = {
        {"POST", "", b1, "invalid_field", "title"},
        {"POST", "", b2, "invalid_field", "kind"},
        {"POST", "", "{\"kind\":\"k\",\"title\":\"\",\"body\":\"b\"}", "invalid_field", "title"},
        {"POST", "", "{\"kind\":\"k\",\"title\":\"t\"}", "invalid_field", "body"},
        {"POST", "", "{\"kind\":\"k\",\"title\":\"t\",\"body\":\"b\",\"data\":[1]}",
         "invalid_field", "data"},
        {"POST", "", "{\"kind\":\"k\",\"title\":\"t\",\"body\":\"b\",\"dedupe_key\":\"a b\"}",
         "invalid_field", "dedupe_key"},
        {"POST", "/read-all", "{}", "invalid_field", "up_to"},
        {"GET", "?unread=yes", NULL, "invalid_query_param", "unread"},
        {"GET", "?limit=0", NULL, "invalid_limit", "limit"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        note_path(path, sizeof path, user, cases[i].suffix);
        struct rf_t_resp r;
        env_req(&g_env, cases[i].method, path, g_env.service, cases[i].body, NULL, &r);
        RF_ASSERT_4XX_PROBLEM(&r);
        assert_int_equal(r.status, 400);
        json_t *j = rf_resp_json(&r);
        if (strcmp(rf_t_json_str(j, "param"), cases[i].param) != 0 ||
            strcmp(rf_t_json_str(j, "code"), cases[i].code) != 0)
            fail_msg("case %zu: %s", i, r.body);
        json_decref(j);
        rf_resp_free(&r);
    }
    assert_int_equal(unread_count(user), 0); /* nothing was made */
}

static void test_roles(void **state) {
    (void)state;
    char user[64], id[160], suffix[256], body[256];
    RID(user, "nq");
    note_new(user, 0, id, sizeof id);
    static const char create[] = "{\"kind\":\"k\",\"title\":\"t\",\"body\":\"b\"}";
    snprintf(body, sizeof body, "{\"up_to\":\"%s\"}", id);
    const char *writers_refused[] = {g_env.worker, g_env.readonly};
    for (int k = 0; k < 2; k++) {
        json_decref(note_call("POST", user, "", writers_refused[k], create, 403, "forbidden"));
        json_decref(note_call("POST", user, "/read-all", writers_refused[k], body, 403,
                              "forbidden"));
        snprintf(suffix, sizeof suffix, "/%s/read", id);
        json_decref(note_call("POST", user, suffix, writers_refused[k], NULL, 403, "forbidden"));
        snprintf(suffix, sizeof suffix, "/%s/unread", id);
        json_decref(note_call("POST", user, suffix, writers_refused[k], NULL, 403, "forbidden"));
    }
    json_decref(note_call("GET", user, "", g_env.worker, NULL, 403, "forbidden"));
    json_decref(note_call("GET", user, "/unread-count", g_env.worker, NULL, 403, "forbidden"));
    json_decref(note_call("GET", user, "", NULL, NULL, 401, "unauthenticated"));
    json_decref(note_call("POST", user, "", NULL, create, 401, "unauthenticated"));
    /* The admin may do what the service does. */
    json_decref(note_call("POST", user, "", g_env.admin, create, 201, NULL));
    assert_int_equal(unread_count(user), 2);
}

/* An Idempotency-Key replays the first answer. */
static void test_idempotency_key(void **state) {
    (void)state;
    char user[64], path[256], hdr[128];
    RID(user, "ni");
    note_path(path, sizeof path, user, "");
    idem_hdr_fresh(hdr, sizeof hdr);
    const char *headers[] = {hdr, NULL};
    static const char body[] = "{\"kind\":\"k\",\"title\":\"t\",\"body\":\"b\"}";
    struct rf_t_resp r1, r2;
    env_req(&g_env, "POST", path, g_env.service, body, headers, &r1);
    RF_ASSERT_STATUS(&r1, 201);
    env_req(&g_env, "POST", path, g_env.service, body, headers, &r2);
    RF_ASSERT_STATUS(&r2, 201);
    assert_true(resp_replayed(&r2));
    assert_string_equal(r1.body, r2.body);
    /* A read with a key, replayed after an unread: the first answer, and
     * the unread stands. */
    json_t *j = rf_resp_json(&r1);
    char read_path[320];
    snprintf(read_path, sizeof read_path, "%s/%s/read", path, rf_t_json_str(j, "id"));
    json_decref(j);
    rf_resp_free(&r1);
    rf_resp_free(&r2);
    idem_hdr_fresh(hdr, sizeof hdr);
    env_req(&g_env, "POST", read_path, g_env.service, NULL, headers, &r1);
    RF_ASSERT_STATUS(&r1, 200);
    assert_int_equal(unread_count(user), 0);
    snprintf(read_path + strlen(read_path) - strlen("read"), 8, "unread");
    struct rf_t_resp u;
    env_req(&g_env, "POST", read_path, g_env.service, NULL, NULL, &u);
    RF_ASSERT_STATUS(&u, 200);
    rf_resp_free(&u);
    snprintf(read_path + strlen(read_path) - strlen("unread"), 8, "read");
    env_req(&g_env, "POST", read_path, g_env.service, NULL, headers, &r2);
    RF_ASSERT_STATUS(&r2, 200);
    assert_true(resp_replayed(&r2));
    assert_string_equal(r1.body, r2.body);
    rf_resp_free(&r1);
    rf_resp_free(&r2);
    assert_int_equal(unread_count(user), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_read_unread),
        cmocka_unit_test(test_read_race),
        cmocka_unit_test(test_dedupe_race),
        cmocka_unit_test(test_read_all),
        cmocka_unit_test(test_read_all_races_writer),
        cmocka_unit_test(test_other_users_id),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_idempotency_key),
    };
    return cmocka_run_group_tests(tests, env_group_setup, env_group_teardown);
}
