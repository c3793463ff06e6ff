/*
 * test_list_follow - a consumer that follows a list's `next` while writers
 * keep committing sees every row exactly once.
 *
 * The race: ids (and any key taken before COMMIT) are not in commit order.
 * A row whose transaction took a smaller key but committed after a consumer
 * read past that key lands behind the consumer's cursor and is never seen;
 * a consumer that re-reads from an old position sees rows twice.
 *
 * Proves, for the payout list, a user's entitlement list, the account list
 * (?currency=&kind=user) and the transfer list (?currency=&status=posted):
 * writer threads create rows continuously (each 2xx answer's id is
 * recorded), while one consumer per list follows `next` from the start (small pages, so cursors
 * cross rows still in flight; an empty page means "at the end for now": it
 * asks again with the same cursor). After the writers stop, each consumer
 * drains to the end. Every acknowledged id was seen exactly once and no id
 * was seen twice. No 5xx anywhere.
 */
#include "http_env.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a writer writes; each kind has its list and one consumer of it. */
enum kind { K_PAYOUT, K_ENT, K_ACCOUNT, K_TRANSFER, KINDS };
static const int writers_of[KINDS] = {[K_PAYOUT] = 3, [K_ENT] = 3, [K_ACCOUNT] = 2,
                                      [K_TRANSFER] = 2};
#define WRITERS 10
#define CONSUMERS KINDS
#define WRITE_MS 2500          /* how long the writers keep writing */
#define DRAIN_MS 10000         /* bound on the consumers' drain after that */
#define ROWS_PER_WRITER_MAX 4000
#define SEEN_MAX (WRITERS * ROWS_PER_WRITER_MAX + 1000)
#define PAGE_LIMIT 7           /* small pages: many cursors per second */
#define ID_CHARS 128

typedef char id_t_[ID_CHARS + 1];

struct writer {
    enum kind kind;
    char wallet[64], cur[4];   /* payout and transfer writers: a wallet of their own */
    id_t_ *acked;
    int n_acked;
    int n_5xx;
};

struct consumer {
    char list_path[256];       /* the list, with ?limit= */
    int writer_from, writer_to; /* the writers of this list's rows */
    id_t_ *seen;
    int n_seen;
    int n_pages;
    char error[1600];          /* first failure, "" when none */
};

static struct {
    struct env e;
    char user[64];
    char account_cur[4], transfer_cur[4]; /* the accounts' and the credits' currencies */
    struct writer w[WRITERS];
    struct consumer c[CONSUMERS];
    atomic_int writers_done;
    int64_t stop_at_ms;
} g;

/* ---- writers -------------------------------------------------------------- */

/* A wallet in cur (NULL: a currency of its own), funded when fund. */
static void wallet_make(struct writer *w, const char *cur, bool fund)
{
    if (cur)
        snprintf(w->cur, sizeof w->cur, "%s", cur);
    else
        rand_currency(w->cur);
    RID(w->wallet, "wallet");
    char body[256], path[256], h[128];
    snprintf(body, sizeof body, "{\"id\": \"%s\", \"currency\": \"%s\", \"kind\": \"user\"}",
             w->wallet, w->cur);
    struct rf_t_resp r;
    env_req(&g.e, "POST", "/v1/accounts", g.e.service, body, NULL, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
    if (!fund)
        return;
    snprintf(path, sizeof path, "/v1/accounts/%s/credits", w->wallet);
    idem_hdr_fresh(h, sizeof h);
    const char *hdrs[] = {h, NULL};
    env_req(&g.e, "POST", path, g.e.service, "{\"amount_minor\": 100000000}", hdrs, &r);
    RF_ASSERT_STATUS(&r, 201);
    rf_resp_free(&r);
}

/* One write: a payout of 1 from the writer's wallet, a grant of a new
 * entitlement key to the shared user, an account in the accounts' currency
 * (its id the server's), or a credit of 1 to the writer's wallet. */
static void write_one(struct writer *w)
{
    char path[256], body[512], h[128], key[64];
    const char *hdrs[] = {h, NULL};
    struct rf_t_resp r;
    idem_hdr_fresh(h, sizeof h);
    if (w->kind == K_ACCOUNT) {
        snprintf(body, sizeof body, "{\"currency\": \"%s\"}", g.account_cur);
        env_req(&g.e, "POST", "/v1/accounts", g.e.service, body, NULL, &r);
    } else if (w->kind == K_TRANSFER) {
        snprintf(path, sizeof path, "/v1/accounts/%s/credits", w->wallet);
        env_req(&g.e, "POST", path, g.e.service, "{\"amount_minor\": 1}", hdrs, &r);
    } else if (w->kind == K_PAYOUT) {
        snprintf(body, sizeof body,
                 "{\"account\": \"%s\", \"amount_minor\": 1, \"currency\": \"%s\","
                 " \"destination\": {\"provider\": \"stripe\", \"ref\": \"acct_1\"}}",
                 w->wallet, w->cur);
        env_req(&g.e, "POST", "/v1/payouts", g.e.service, body, hdrs, &r);
    } else {
        RID(key, "plan");
        ent_path(path, sizeof path, g.user, key);
        env_req(&g.e, "PUT", path, g.e.service, NULL, NULL, &r);
    }
    if (r.status == 0 || r.status >= 500)
        w->n_5xx++;
    json_t *j = r.status >= 200 && r.status <= 299 ? rf_resp_json(&r) : NULL;
    const char *id = rf_t_json_str(j, "id");
    if (j && id && *id && w->n_acked < ROWS_PER_WRITER_MAX)
        snprintf(w->acked[w->n_acked++], sizeof(id_t_), "%s", id);
    json_decref(j);
    rf_resp_free(&r);
}

static void writer_run(int idx)
{
    struct writer *w = &g.w[idx];
    while (rf_t_now_ms() < g.stop_at_ms && w->n_acked < ROWS_PER_WRITER_MAX)
        write_one(w);
    atomic_fetch_add(&g.writers_done, 1);
}

/* ---- consumers ------------------------------------------------------------ */

/* One page after `after` ("" = the start); appends its ids to c->seen and
 * puts the page's next into after; when next is null (the page reached the
 * end for now) the consumer resumes later from the last id it saw, as the
 * docs say. Returns the number of rows, or -1 on a failure (c->error says
 * which). */
static int page_follow(struct consumer *c, char *after, size_t cap)
{
    char path[1024];
    snprintf(path, sizeof path, "%s%s%s", c->list_path, after[0] ? "&after=" : "", after);
    struct rf_t_resp r;
    env_req(&g.e, "GET", path, g.e.readonly, NULL, NULL, &r);
    json_t *j = r.status == 200 ? rf_resp_json(&r) : NULL;
    json_t *data = json_object_get(j, "data"), *next = json_object_get(j, "next");
    int n = json_is_array(data) ? (int)json_array_size(data) : -1;
    if (n < 0 || !next || (!json_is_string(next) && !json_is_null(next)) ||
        (n == 0 && !json_is_null(next))) {
        snprintf(c->error, sizeof c->error, "GET %s: HTTP %d %.300s", path, r.status,
                 r.body ? r.body : r.errmsg);
        n = -1;
    }
    for (int i = 0; i < n && c->n_seen < SEEN_MAX; i++) {
        const char *id = rf_t_json_str(json_array_get(data, (size_t)i), "id");
        snprintf(c->seen[c->n_seen++], sizeof(id_t_), "%s", id ? id : "");
    }
    const char *resume = json_is_string(next) ? json_string_value(next)
                         : n > 0 ? c->seen[c->n_seen - 1] : NULL;
    if (n > 0 && (!resume || rf_urlencode(resume, after, cap) != 0)) {
        snprintf(c->error, sizeof c->error, "bad cursor to resume from");
        n = -1;
    }
    json_decref(j);
    rf_resp_free(&r);
    c->n_pages++;
    return n;
}

/* Rows the writers of c's list had acknowledged when they were all done. */
static int acked_total(const struct consumer *c)
{
    int n = 0;
    for (int i = c->writer_from; i < c->writer_to; i++)
        n += g.w[i].n_acked;
    return n;
}

/* Follows the list until, after the writers are done, a page comes back
 * empty and the consumer has seen as many rows as were acknowledged (on
 * PostgreSQL a row shows once every older transaction has finished, which
 * may be a moment after its 2xx). Gives up DRAIN_MS after the writes: the
 * checks then say what is missing. */
static void consumer_run(struct consumer *c)
{
    char after[1024] = "";
    for (;;) {
        bool writers_done = atomic_load(&g.writers_done) == WRITERS;
        int n = page_follow(c, after, sizeof after);
        if (n < 0 || (n == 0 && writers_done && c->n_seen >= acked_total(c)))
            return;
        if (rf_t_now_ms() > g.stop_at_ms + DRAIN_MS)
            return;
        if (n == 0)
            rf_t_sleep_ms(2);
    }
}

static void run_one(int idx, void *ctx)
{
    (void)ctx;
    if (idx < WRITERS)
        writer_run(idx);
    else
        consumer_run(&g.c[idx - WRITERS]);
}

/* ---- checks --------------------------------------------------------------- */

static int id_cmp(const void *a, const void *b) { return strcmp(a, b); }

/* Every id of want[0..n_want) is in seen exactly once, and no id of seen is
 * there twice. */
static void check_exactly_once(const char *what, struct consumer *c, id_t_ *want, int n_want)
{
    if (c->error[0])
        fail_msg("%s consumer: %s", what, c->error);
    qsort(c->seen, (size_t)c->n_seen, sizeof(id_t_), id_cmp);
    qsort(want, (size_t)n_want, sizeof(id_t_), id_cmp);
    int dups = 0, missed = 0;
    for (int i = 1; i < c->n_seen; i++)
        dups += strcmp(c->seen[i - 1], c->seen[i]) == 0;
    for (int i = 0; i < n_want; i++)
        missed += bsearch(want[i], c->seen, (size_t)c->n_seen, sizeof(id_t_), id_cmp) == NULL;
    printf("%s: %d acknowledged, %d seen in %d pages, %d missed, %d seen twice\n", what, n_want,
           c->n_seen, c->n_pages, missed, dups);
    assert_true(n_want >= 20); /* the writers did write: the check is not vacuous */
    assert_int_equal(missed, 0);
    assert_int_equal(dups, 0);
    assert_int_equal(c->n_seen, n_want); /* a fresh store: nothing but ours */
}

/* All acknowledged ids of writers [from, to) into one malloc'd array. */
static id_t_ *acked_of(int from, int to, int *n_out)
{
    id_t_ *all = calloc((size_t)(to - from) * ROWS_PER_WRITER_MAX, sizeof(id_t_));
    assert_non_null(all);
    int n = 0;
    for (int i = from; i < to; i++) {
        memcpy(all[n], g.w[i].acked, (size_t)g.w[i].n_acked * sizeof(id_t_));
        n += g.w[i].n_acked;
        assert_int_equal(g.w[i].n_5xx, 0);
    }
    *n_out = n;
    return all;
}

/* Each kind's writers and the consumer of its list. */
static void setup_kinds(void)
{
    rand_currency(g.account_cur);
    do
        rand_currency(g.transfer_cur);
    while (strcmp(g.transfer_cur, g.account_cur) == 0);
    int from = 0;
    for (int k = 0; k < KINDS; k++) {
        struct consumer *c = &g.c[k];
        c->writer_from = from;
        c->writer_to = from += writers_of[k];
        for (int i = c->writer_from; i < c->writer_to; i++) {
            g.w[i].kind = (enum kind)k;
            g.w[i].acked = calloc(ROWS_PER_WRITER_MAX, sizeof(id_t_));
            assert_non_null(g.w[i].acked);
            if (k == K_PAYOUT || k == K_TRANSFER)
                wallet_make(&g.w[i], k == K_TRANSFER ? g.transfer_cur : NULL, k == K_PAYOUT);
        }
        c->seen = calloc(SEEN_MAX, sizeof(id_t_));
        assert_non_null(c->seen);
    }
    assert_int_equal(from, WRITERS);
    snprintf(g.c[K_PAYOUT].list_path, sizeof g.c[0].list_path, "/v1/payouts?limit=%d",
             PAGE_LIMIT);
    snprintf(g.c[K_ENT].list_path, sizeof g.c[0].list_path,
             "/v1/users/%s/entitlements?status=all&limit=%d", g.user, PAGE_LIMIT);
    snprintf(g.c[K_ACCOUNT].list_path, sizeof g.c[0].list_path,
             "/v1/accounts?currency=%s&kind=user&limit=%d", g.account_cur, PAGE_LIMIT);
    snprintf(g.c[K_TRANSFER].list_path, sizeof g.c[0].list_path,
             "/v1/transfers?currency=%s&status=posted&limit=%d", g.transfer_cur, PAGE_LIMIT);
}

static void test_follow_while_writing(void **state)
{
    (void)state;
    static const char *const names[KINDS] = {"payouts", "entitlements", "accounts",
                                             "transfers"};
    memset(&g, 0, sizeof g);
    env_start_fresh(&g.e, false, NULL);
    RID(g.user, "u");
    setup_kinds();
    g.stop_at_ms = rf_t_now_ms() + WRITE_MS;
    assert_int_equal(rf_parallel_fn(WRITERS + CONSUMERS, run_one, NULL), 0);
    for (int k = 0; k < KINDS; k++) {
        int n;
        id_t_ *want = acked_of(g.c[k].writer_from, g.c[k].writer_to, &n);
        check_exactly_once(names[k], &g.c[k], want, n);
        free(want);
        free(g.c[k].seen);
    }
    for (int i = 0; i < WRITERS; i++)
        free(g.w[i].acked);
    env_stop(&g.e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follow_while_writing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
