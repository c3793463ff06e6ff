/*
 * test_ledger.c - seed 003 at the library level, on the back end in
 * RF_TEST_DB, with threads released together by a barrier:
 *  - 64 concurrent credits of 1 (distinct keys): +64 exactly, 64 entries;
 *    with one shared Idempotency-Key: one effect;
 *  - 10 units and 64 concurrent debits of 1: exactly 10 succeed;
 *  - debits and credits racing on one account; both races also from two
 *    handles at once, as two processes run them;
 *  - concurrent post and void of one hold: exactly one wins;
 *  - int64 edges and bad input change nothing;
 *  - an account's kind is validated once (the create's field spec) with the
 *    fault HTTP shows; a reserved id names the id; entries refuse a bad
 *    cursor and an unknown account in today's order;
 *  - 32 concurrent creates of one account: one account; with one
 *    Idempotency-Key the replay is the stored typed result (created);
 * and after each, the ledger's invariants (rf_ledger_check).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "racefree.h"
#include "testlib/rf_corefixture.h"
#include "testlib/rf_testlib.h"
#include "ledger_clean.h"

static int clean_before(void **state) {
    (void)state;
    return ledger_clean_before(rf_core_fx.db);
}

static void check_invariants(void) {
    struct rf_ledger_check c;
    assert_int_equal(rf_ledger_check(rf_core_fx.db, &c), RF_OK);
    assert_true(c.currencies >= 1);
    assert_int_equal(c.currencies_unbalanced, 0);
    assert_int_equal(c.accounts_mismatched, 0);
    assert_int_equal(c.payouts_mismatched, 0);
    assert_int_equal(c.clearing_unowned, 0);
    assert_true(c.clean);
}

static void make_account(const char *prefix, char *id, size_t cap, bool allow_negative) {
    rf_rand_id(prefix, id, cap);
    struct rf_account_req req = {.id = id, .currency = "USD", .kind = RF_ACCOUNT_USER,
                                 .allow_negative = allow_negative};
    struct rf_account_res res;
    assert_int_equal(rf_account_create(rf_core_fx.db, &req, &res, NULL), RF_OK);
    assert_true(res.created);
    rf_account_clear(&res.account);
}

static int64_t balance(const char *id, int64_t *available) {
    struct rf_account a;
    assert_int_equal(rf_account_get(rf_core_fx.db, id, &a), RF_OK);
    int64_t posted = a.posted;
    if (available) *available = a.available;
    rf_account_clear(&a);
    return posted;
}

static rf_err credit(const char *id, int64_t amount) {
    struct rf_transfer_res res;
    rf_err err = rf_credit_apply(rf_core_fx.db, id, amount, "test", &res, NULL);
    rf_transfer_clear(&res.transfer);
    return err;
}

/* A second handle on the store, as another process has: its own executor,
 * committers and connections. While it is open the race tests send the
 * odd threads' operations through it, so moves on one account also race
 * between committers that no shard orders (one handle sends an account's
 * operations to one committer). */
static rf *g_other;

static rf *db_of(int idx) { return g_other && idx % 2 ? g_other : rf_core_fx.db; }

static void other_open(void) {
    struct rf_options opt = {0};
    assert_int_equal(rf_open(rf_core_fx.url, &opt, &g_other), RF_OK);
}

static void other_close(void) {
    rf_close(g_other);
    g_other = NULL;
}

static rf_err transfer_on(rf *db, const char *from, const char *to, int64_t amount) {
    struct rf_transfer_req req = {.debit_account = from, .credit_account = to,
                                  .amount_minor = amount, .currency = "USD"};
    struct rf_transfer_res res;
    rf_err err = rf_transfer_create(db, &req, &res, NULL);
    rf_transfer_clear(&res.transfer);
    return err;
}

static rf_err transfer(const char *from, const char *to, int64_t amount, bool pending,
                       char *id_out) {
    struct rf_transfer_req req = {.debit_account = from, .credit_account = to,
                                  .amount_minor = amount, .currency = "USD", .pending = pending};
    struct rf_transfer_res res;
    rf_err err = rf_transfer_create(rf_core_fx.db, &req, &res, NULL);
    if (!err && id_out) snprintf(id_out, RF_ID_BYTES, "%s", res.transfer.id);
    rf_transfer_clear(&res.transfer);
    return err;
}

#define N 64

struct par {
    char account[64];
    char ikey[64];
    bool shared_key;
    rf_err err[N];
    bool replayed[N];
    char transfer_id[N][RF_ID_BYTES]; /* the typed result, also on a replay */
};

static void credit_one(int idx, void *ctx) {
    struct par *p = ctx;
    struct rf_idem idem = {.api_key_id = "k"};
    char key[80];
    if (p->shared_key) snprintf(key, sizeof key, "%s-shared", p->ikey);
    else snprintf(key, sizeof key, "%s-%d", p->ikey, idx);
    idem.key = key;
    rf_core_idem_hash(&idem, "POST", "/credits", "1", 1);
    struct rf_transfer_res res;
    p->err[idx] = rf_credit_apply(rf_core_fx.db, p->account, 1, "par", &res, &idem);
    p->replayed[idx] = idem.replayed;
    snprintf(p->transfer_id[idx], RF_ID_BYTES, "%s", res.transfer.id);
    rf_transfer_clear(&res.transfer);
}

static void test_concurrent_credits(void **state) {
    (void)state;
    struct par *p = calloc(1, sizeof *p);
    make_account("wallet", p->account, sizeof p->account, false);
    rf_rand_id("ik", p->ikey, sizeof p->ikey);
    assert_int_equal(rf_parallel_fn(N, credit_one, p), 0);
    for (int i = 0; i < N; i++) assert_int_equal(p->err[i], RF_OK);
    assert_int_equal(balance(p->account, NULL), N);
    struct rf_entry_page page;
    assert_int_equal(rf_account_entries(rf_core_fx.db, p->account, NULL, 500, &page), RF_OK);
    assert_int_equal(page.n, N);
    for (int i = 0; i < N; i++) assert_int_equal(page.items[i].balance_after, i + 1);
    rf_entry_page_clear(&page);
    /* one shared key: one effect */
    p->shared_key = true;
    assert_int_equal(rf_parallel_fn(N, credit_one, p), 0);
    int applied = 0;
    const char *first = NULL;
    for (int i = 0; i < N; i++) {
        assert_true(p->err[i] == RF_OK || p->err[i] == RF_ERR_IDEM_IN_FLIGHT);
        applied += p->err[i] == RF_OK && !p->replayed[i];
        if (p->err[i] != RF_OK) continue;
        if (!first) first = p->transfer_id[i];
        assert_string_equal(p->transfer_id[i], first); /* every answer: the one credit */
    }
    assert_int_equal(applied, 1);
    assert_int_equal(balance(p->account, NULL), N + 1);
    check_invariants();
    free(p);
}

struct debits {
    char from[64];
    char to[64];
    rf_err err[N];
};

static void debit_one(int idx, void *ctx) {
    struct debits *d = ctx;
    d->err[idx] = transfer_on(db_of(idx), d->from, d->to, 1);
}

static void concurrent_debits(void) {
    struct debits d;
    make_account("rich", d.from, sizeof d.from, false);
    make_account("shop", d.to, sizeof d.to, false);
    assert_int_equal(credit(d.from, 10), RF_OK);
    assert_int_equal(rf_parallel_fn(N, debit_one, &d), 0);
    int ok = 0, short_funds = 0;
    for (int i = 0; i < N; i++) {
        ok += d.err[i] == RF_OK;
        short_funds += d.err[i] == RF_ERR_INSUFFICIENT_FUNDS;
    }
    assert_int_equal(ok, 10);
    assert_int_equal(short_funds, N - 10);
    assert_int_equal(balance(d.from, NULL), 0);
    assert_int_equal(balance(d.to, NULL), 10);
    check_invariants();
}

static void test_concurrent_debits(void **state) {
    (void)state;
    concurrent_debits();
}

/* The same from two handles: a funds check outside the guarded UPDATE
 * (check-then-update) lets two committers' debits both pass it. */
static void test_concurrent_debits_two_handles(void **state) {
    (void)state;
    other_open();
    concurrent_debits();
    other_close();
}

/* Debits and credits racing on one account that hovers around zero. A debit
 * whose guarded UPDATE misses must be classified against the state that
 * decided the miss: on PostgreSQL a second plain read sees a credit that
 * committed after the miss and used to call a plain shortfall
 * amount_overflow. Every refusal here is insufficient_funds (no balance is
 * near int64), and every change is in the history. */
#define MIXED_ROUNDS 24

struct mixed {
    char hot[64];
    char peer[64];
    int ok_credits[N], ok_debits[N], short_funds[N], other[N];
    rf_err other_err[N];
};

static void mixed_one(int idx, void *ctx) {
    struct mixed *m = ctx;
    for (int i = 0; i < MIXED_ROUNDS; i++) {
        bool credit_turn = (idx + i) % 2 == 0;
        rf_err err = credit_turn ? transfer_on(db_of(idx), m->peer, m->hot, 1)
                                 : transfer_on(db_of(idx), m->hot, m->peer, 2);
        if (err == RF_OK) credit_turn ? m->ok_credits[idx]++ : m->ok_debits[idx]++;
        else if (err == RF_ERR_INSUFFICIENT_FUNDS && !credit_turn) m->short_funds[idx]++;
        else m->other[idx]++, m->other_err[idx] = err;
    }
}

static void debits_credits_classified(void) {
    struct mixed *m = calloc(1, sizeof *m);
    make_account("hot", m->hot, sizeof m->hot, false);
    make_account("peer", m->peer, sizeof m->peer, true);
    assert_int_equal(rf_parallel_fn(N, mixed_one, m), 0);
    int64_t credits = 0, debits = 0, short_funds = 0;
    for (int i = 0; i < N; i++) {
        if (m->other[i]) fail_msg("thread %d: %s", i, rf_err_code(m->other_err[i]));
        credits += m->ok_credits[i];
        debits += m->ok_debits[i];
        short_funds += m->short_funds[i];
    }
    assert_true(short_funds > 0); /* the race was exercised */
    int64_t avail;
    assert_int_equal(balance(m->hot, &avail), credits - 2 * debits);
    assert_true(avail >= 0);
    assert_int_equal(balance(m->peer, NULL), 2 * debits - credits);
    check_invariants();
    free(m);
}

static void test_debits_credits_classified(void **state) {
    (void)state;
    debits_credits_classified();
}

/* The same from two handles: a balance read, added to in C and written back
 * (read-modify-write) loses the other committer's move. */
static void test_debits_credits_two_handles(void **state) {
    (void)state;
    other_open();
    debits_credits_classified();
    other_close();
}

struct resolve_race {
    char hold[RF_ID_BYTES];
    rf_err err[2];
};

static void resolve_one(int idx, void *ctx) {
    struct resolve_race *r = ctx;
    struct rf_transfer_res res;
    r->err[idx] = idx == 0 ? rf_transfer_post(rf_core_fx.db, r->hold, 0, &res, NULL)
                           : rf_transfer_void(rf_core_fx.db, r->hold, &res, NULL);
    rf_transfer_clear(&res.transfer);
}

static void test_post_void_race(void **state) {
    (void)state;
    char a[64], b[64];
    make_account("holder", a, sizeof a, false);
    make_account("payee", b, sizeof b, false);
    assert_int_equal(credit(a, 100), RF_OK);
    for (int round = 0; round < 20; round++) {
        struct resolve_race r;
        int64_t before = balance(a, NULL), avail = 0;
        assert_int_equal(transfer(a, b, 5, true, r.hold), RF_OK);
        balance(a, &avail);
        assert_int_equal(avail, before - 5); /* held */
        assert_int_equal(rf_parallel_fn(2, resolve_one, &r), 0);
        assert_true((r.err[0] == RF_OK) != (r.err[1] == RF_OK));
        assert_int_equal(r.err[0] == RF_OK ? r.err[1] : r.err[0], RF_ERR_INVALID_STATE);
        struct rf_transfer t;
        assert_int_equal(rf_transfer_get(rf_core_fx.db, r.hold, &t), RF_OK);
        assert_int_equal(t.status, r.err[0] == RF_OK ? RF_TRANSFER_POSTED : RF_TRANSFER_VOIDED);
        rf_transfer_clear(&t);
        assert_int_equal(balance(a, &avail), r.err[0] == RF_OK ? before - 5 : before);
        assert_int_equal(avail, balance(a, NULL));
    }
    check_invariants();
}

static void test_partial_post_and_expiry(void **state) {
    (void)state;
    char a[64], b[64], hold[RF_ID_BYTES];
    make_account("part", a, sizeof a, false);
    make_account("partb", b, sizeof b, false);
    assert_int_equal(credit(a, 50), RF_OK);
    assert_int_equal(transfer(a, b, 30, true, hold), RF_OK);
    struct rf_transfer_res res;
    assert_int_equal(rf_transfer_post(rf_core_fx.db, hold, 31, &res, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_transfer_post(rf_core_fx.db, hold, 12, &res, NULL), RF_OK);
    assert_int_equal(res.transfer.posted_amount_minor, 12);
    rf_transfer_clear(&res.transfer);
    int64_t avail;
    assert_int_equal(balance(a, &avail), 38);
    assert_int_equal(avail, 38);
    assert_int_equal(balance(b, NULL), 12);
    /* an expired hold is voided by the sweeper and cannot be posted */
    struct rf_transfer_req req = {.debit_account = a, .credit_account = b, .amount_minor = 8,
                                  .currency = "USD", .pending = true, .expires_at_ms = 1000};
    assert_int_equal(rf_transfer_create(rf_core_fx.db, &req, &res, NULL),
                     RF_ERR_INVALID); /* born expired */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* 300 ms: room to create it on a loaded machine before it expires */
    req.expires_at_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + 300;
    assert_int_equal(rf_transfer_create(rf_core_fx.db, &req, &res, NULL), RF_OK);
    snprintf(hold, sizeof hold, "%s", res.transfer.id);
    rf_transfer_clear(&res.transfer);
    do { /* until past expires_at */
        rf_t_sleep_ms(20);
        clock_gettime(CLOCK_REALTIME, &now);
    } while ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 <= req.expires_at_ms);
    assert_int_equal(rf_transfer_post(rf_core_fx.db, hold, 0, &res, NULL), RF_ERR_INVALID_STATE);
    int voided = 0;
    assert_int_equal(rf_transfer_expire(rf_core_fx.db, 100, &voided), RF_OK);
    assert_true(voided >= 1);
    assert_int_equal(balance(a, &avail), 38);
    assert_int_equal(avail, 38);
    check_invariants();
}

static void test_bad_input_changes_nothing(void **state) {
    (void)state;
    char a[64], b[64], eur[64];
    make_account("bad", a, sizeof a, false);
    make_account("badb", b, sizeof b, false);
    rf_rand_id("eur", eur, sizeof eur);
    struct rf_account_req er = {.id = eur, .currency = "EUR", .kind = RF_ACCOUNT_USER};
    struct rf_account_res ares;
    assert_int_equal(rf_account_create(rf_core_fx.db, &er, &ares, NULL), RF_OK);
    rf_account_clear(&ares.account);
    er.currency = "usd";
    assert_int_equal(rf_account_create(rf_core_fx.db, &er, &ares, NULL), RF_ERR_INVALID);
    er.currency = "USD"; /* same id, other currency */
    assert_int_equal(rf_account_create(rf_core_fx.db, &er, &ares, NULL), RF_ERR_ACCOUNT_EXISTS);
    assert_int_equal(credit(a, 100), RF_OK);
    assert_int_equal(transfer(a, b, 0, false, NULL), RF_ERR_INVALID);
    assert_int_equal(transfer(a, b, -5, false, NULL), RF_ERR_INVALID);
    assert_int_equal(transfer(a, b, INT64_MIN, false, NULL), RF_ERR_INVALID);
    assert_int_equal(transfer(a, a, 1, false, NULL), RF_ERR_SAME_ACCOUNT);
    assert_int_equal(transfer(a, "no-such-account", 1, false, NULL), RF_ERR_ACCOUNT_NOT_FOUND);
    assert_int_equal(transfer(a, eur, 1, false, NULL), RF_ERR_CURRENCY_MISMATCH);
    assert_int_equal(transfer(a, b, INT64_MAX, false, NULL), RF_ERR_INSUFFICIENT_FUNDS);
    assert_int_equal(balance(a, NULL), 100);
    /* a reference is unique: the second gets the first's id */
    struct rf_transfer_req req = {.debit_account = a, .credit_account = eur, .amount_minor = 1,
                                  .currency = "USD", .reference = "ref-x"};
    char ref[64];
    rf_rand_id("ref", ref, sizeof ref);
    req.reference = ref;
    req.credit_account = "shop-none";
    struct rf_transfer_res res;
    assert_int_equal(rf_transfer_create(rf_core_fx.db, &req, &res, NULL), RF_ERR_ACCOUNT_NOT_FOUND);
    char c[64];
    make_account("refc", c, sizeof c, false);
    req.credit_account = c;
    assert_int_equal(rf_transfer_create(rf_core_fx.db, &req, &res, NULL), RF_OK);
    char first[RF_ID_BYTES];
    snprintf(first, sizeof first, "%s", res.transfer.id);
    rf_transfer_clear(&res.transfer);
    assert_int_equal(rf_transfer_create(rf_core_fx.db, &req, &res, NULL),
                     RF_ERR_DUPLICATE_REFERENCE);
    assert_string_equal(res.existing_id, first);
    assert_int_equal(balance(a, NULL), 99);
    check_invariants();
}

/* Ids in the namespaces of racefree's system accounts cannot be taken by a
 * client: a squatted funding:<CUR> in another currency made every credit in
 * <CUR> fail for good. payouts:<CUR> is moved only by payouts, so client
 * transfers, credits and payouts naming it are refused too; funding:<CUR>
 * stays a client transfer's counterparty. Refusals change nothing. */
static void test_reserved_ids(void **state) {
    (void)state;
    const char *taken[] = {"funding:JBB", "payouts:JBB", "funding:USD", "payouts:", "funding:x"};
    struct rf_account_res res;
    for (int i = 0; i < 5; i++) {
        struct rf_account_req req = {.id = taken[i], .currency = "EUR", .kind = RF_ACCOUNT_USER};
        assert_int_equal(rf_account_create(rf_core_fx.db, &req, &res, NULL), RF_ERR_RESERVED_ID);
        req.kind = RF_ACCOUNT_SYSTEM;
        assert_int_equal(rf_account_create(rf_core_fx.db, &req, &res, NULL), RF_ERR_RESERVED_ID);
    }
    assert_false(rf_account_id_reserved("fundingx:USD"));
    assert_false(rf_account_id_reserved("wallet-funding:USD"));
    assert_int_equal(rf_account_get(rf_core_fx.db, "funding:JBB", &res.account),
                     RF_ERR_ACCOUNT_NOT_FOUND);
    char a[64], clearing[] = "payouts:USD";
    make_account("res", a, sizeof a, false);
    assert_int_equal(credit(a, 100), RF_OK); /* credits in USD still work */
    assert_int_equal(credit(clearing, 5), RF_ERR_RESERVED_ID);
    assert_int_equal(credit("funding:USD", 5), RF_ERR_RESERVED_ID);
    assert_int_equal(transfer(a, clearing, 5, false, NULL), RF_ERR_RESERVED_ID);
    assert_int_equal(transfer(clearing, a, 5, true, NULL), RF_ERR_RESERVED_ID);
    struct rf_payout po;
    struct rf_payout_req preq = {.account = "funding:USD", .amount_minor = 5, .currency = "USD",
                                 .provider = "stripe", .destination_ref = "acct_1"};
    assert_int_equal(rf_payout_create(rf_core_fx.db, &preq, &po, NULL), RF_ERR_RESERVED_ID);
    preq.account = clearing;
    assert_int_equal(rf_payout_create(rf_core_fx.db, &preq, &po, NULL), RF_ERR_RESERVED_ID);
    /* an approval executes what its route would: refused when it is requested */
    static const char *const actions[] = {
        "{\"type\":\"transfer\",\"debit_account\":\"payouts:USD\",\"credit_account\":\"x\","
        "\"amount_minor\":5,\"currency\":\"USD\"}",
        "{\"type\":\"transfer\",\"debit_account\":\"x\",\"credit_account\":\"payouts:USD\","
        "\"amount_minor\":5,\"currency\":\"USD\",\"pending\":true}",
        "{\"type\":\"payout\",\"account\":\"funding:USD\",\"amount_minor\":5,"
        "\"currency\":\"USD\",\"destination\":{\"provider\":\"p\",\"ref\":\"r\"}}",
    };
    for (int i = 0; i < 3; i++) {
        struct rf_approval ap;
        char detail[160] = "";
        struct rf_approval_req areq = {.action_json = actions[i], .requested_by = "agent"};
        assert_int_equal(rf_approval_create(rf_core_fx.db, &areq, &ap, NULL, detail, sizeof detail),
                         RF_ERR_RESERVED_ID);
        assert_non_null(strstr(detail, "reserves"));
    }
    assert_int_equal(transfer(a, "funding:USD", 5, false, NULL), RF_OK); /* the outside world */
    assert_int_equal(balance(a, NULL), 95);
    check_invariants();
}

/* An account's kind is enum rf_account_kind, validated once by the create's
 * field spec: a value that is no kind is refused with the same fault HTTP
 * shows (field kind, "must be user or system") and writes nothing; absent
 * is user. A reserved id is refused by the row's check, naming the id. */
static void test_account_kind_and_faults(void **state) {
    (void)state;
    char id[64];
    rf_rand_id("kind", id, sizeof id);
    struct rf_account_req req = {.id = id, .currency = "USD", .kind = (enum rf_account_kind)7};
    struct rf_account_res res;
    struct rf_fault fault;
    assert_int_equal(rf_op_run(rf_core_fx.db, RF_OP_ACCOUNT_CREATE, &req, &res, NULL, &fault),
                     RF_ERR_INVALID);
    assert_int_equal(fault.code, RF_ERR_INVALID_FIELD);
    assert_string_equal(fault.param, "kind");
    assert_string_equal(fault.detail, "field 'kind' must be user or system");
    assert_int_equal(rf_account_create(rf_core_fx.db, &req, &res, NULL), RF_ERR_INVALID);
    struct rf_account a;
    assert_int_equal(rf_account_get(rf_core_fx.db, id, &a), RF_ERR_ACCOUNT_NOT_FOUND);
    assert_null(rf_account_kind_name((enum rf_account_kind)7));
    /* absent (0) is user; system round-trips through the kind column */
    req.kind = 0;
    assert_int_equal(rf_account_create(rf_core_fx.db, &req, &res, NULL), RF_OK);
    assert_true(res.created && res.account.kind == RF_ACCOUNT_USER);
    rf_account_clear(&res.account);
    char sys[64];
    rf_rand_id("kind-sys", sys, sizeof sys);
    struct rf_account_req sreq = {.id = sys, .currency = "USD", .kind = RF_ACCOUNT_SYSTEM};
    assert_int_equal(rf_account_create(rf_core_fx.db, &sreq, &res, NULL), RF_OK);
    rf_account_clear(&res.account);
    assert_int_equal(rf_account_get(rf_core_fx.db, sys, &a), RF_OK);
    assert_int_equal(a.kind, RF_ACCOUNT_SYSTEM);
    assert_string_equal(rf_account_kind_name(a.kind), "system");
    rf_account_clear(&a);
    /* the same id with the other kind is another account */
    req.kind = RF_ACCOUNT_SYSTEM;
    assert_int_equal(rf_account_create(rf_core_fx.db, &req, &res, NULL), RF_ERR_ACCOUNT_EXISTS);
    /* reserved: its own code, the id named, the code's own detail */
    req.id = "payouts:USD";
    assert_int_equal(rf_op_run(rf_core_fx.db, RF_OP_ACCOUNT_CREATE, &req, &res, NULL, &fault),
                     RF_ERR_RESERVED_ID);
    assert_int_equal(fault.code, RF_ERR_RESERVED_ID);
    assert_string_equal(fault.param, "id");
    assert_string_equal(fault.detail, "");
    /* metadata is checked for C callers too */
    req.id = id;
    req.kind = RF_ACCOUNT_USER;
    req.metadata_json = "[1]";
    assert_int_equal(rf_op_run(rf_core_fx.db, RF_OP_ACCOUNT_CREATE, &req, &res, NULL, &fault),
                     RF_ERR_INVALID);
    assert_string_equal(fault.param, "metadata");
}

/* Entries: a cursor that is not an id is refused before the account is
 * looked up; an unknown account before a cursor that is no seq. */
static void test_entries_faults(void **state) {
    (void)state;
    char a[64];
    make_account("ent", a, sizeof a, false);
    assert_int_equal(credit(a, 3), RF_OK);
    struct rf_entry_page pg;
    assert_int_equal(rf_account_entries(rf_core_fx.db, a, "x1", 10, &pg), RF_ERR_INVALID_CURSOR);
    assert_int_equal(rf_account_entries(rf_core_fx.db, "no-such", "x1", 10, &pg),
                     RF_ERR_ACCOUNT_NOT_FOUND);
    assert_int_equal(rf_account_entries(rf_core_fx.db, "no-such", "a b", 10, &pg),
                     RF_ERR_INVALID_CURSOR);
    assert_int_equal(rf_account_entries(rf_core_fx.db, "a b", NULL, 10, &pg), RF_ERR_INVALID);
    assert_null(pg.items);
    assert_int_equal(rf_account_entries(rf_core_fx.db, a, NULL, 10, &pg), RF_OK);
    assert_int_equal(pg.n, 1);
    assert_int_equal(pg.items[0].amount_minor, 3);
    assert_int_equal(pg.items[0].side, RF_ENTRY_CREDIT);
    assert_string_equal(pg.next, "");
    char after[32];
    snprintf(after, sizeof after, "%lld", (long long)pg.items[0].seq);
    rf_entry_page_clear(&pg);
    assert_int_equal(rf_account_entries(rf_core_fx.db, a, after, 10, &pg), RF_OK);
    assert_int_equal(pg.n, 0);
    rf_entry_page_clear(&pg);
}

/* 32 creates of one account at once, all with one Idempotency-Key: one
 * account (INSERT .. ON CONFLICT, never check-then-insert), one fresh
 * answer, every other a replay of the stored typed result (created, as the
 * first) or in flight; and 32 at once without a key: one created, 31 find
 * the same account. */
struct create_race {
    char id[64];
    char ikey[64];
    bool with_key;
    rf_err err[32];
    bool created[32], replayed[32], same[32];
    int64_t version[32], created_at[32];
};

static void create_one(int idx, void *ctx) {
    struct create_race *r = ctx;
    struct rf_account_req req = {.id = r->id, .currency = "USD", .kind = RF_ACCOUNT_SYSTEM,
                                 .metadata_json = "{\"a\":1}"};
    struct rf_account_res res;
    struct rf_idem idem = {.key = r->ikey, .api_key_id = "k"};
    rf_core_idem_hash(&idem, "POST", "/v1/accounts", "same", 4);
    r->err[idx] = rf_account_create(rf_core_fx.db, &req, &res, r->with_key ? &idem : NULL);
    if (r->err[idx]) return;
    /* cmocka's asserts are for the main thread: kept, checked there */
    r->same[idx] = res.account.kind == RF_ACCOUNT_SYSTEM && strcmp(res.account.id, r->id) == 0 &&
                   res.account.metadata_json &&
                   strcmp(res.account.metadata_json, "{\"a\":1}") == 0;
    r->created[idx] = res.created;
    r->replayed[idx] = idem.replayed;
    r->version[idx] = res.account.version;
    r->created_at[idx] = res.account.created_at_ms;
    rf_account_clear(&res.account);
}

static void test_create_race(void **state) {
    (void)state;
    for (int keyed = 0; keyed < 2; keyed++) {
        struct create_race *r = calloc(1, sizeof *r);
        rf_rand_id("race", r->id, sizeof r->id);
        rf_rand_id("ik", r->ikey, sizeof r->ikey);
        r->with_key = keyed;
        assert_int_equal(rf_parallel_fn(32, create_one, r), 0);
        int created = 0, fresh = 0, answered = 0;
        int64_t at = 0; /* the one account's created_at, as every answer shows it */
        for (int i = 0; i < 32; i++) {
            if (keyed && r->err[i] == RF_ERR_IDEM_IN_FLIGHT) continue;
            assert_int_equal(r->err[i], RF_OK);
            if (!answered++) at = r->created_at[i];
            assert_true(r->same[i]);
            created += r->created[i];
            fresh += !r->replayed[i];
            assert_int_equal(r->version[i], 1);
            assert_int_equal(r->created_at[i], at);
        }
        /* keyed: every answer is the first (created); unkeyed: one creates */
        assert_int_equal(created, keyed ? answered : 1);
        assert_int_equal(fresh, keyed ? 1 : 32);
        /* once the race is over, the key replays the first answer for sure */
        create_one(0, r);
        assert_int_equal(r->err[0], RF_OK);
        assert_true(r->same[0] && r->created[0] == (bool)keyed && r->replayed[0] == (bool)keyed);
        assert_int_equal(r->version[0], 1);
        assert_int_equal(r->created_at[0], at);
        if (keyed) { /* the key with another request */
            struct rf_account_req other = {.id = r->id, .currency = "EUR"};
            struct rf_idem idem = {.key = r->ikey, .api_key_id = "k"};
            rf_core_idem_hash(&idem, "POST", "/v1/accounts", "other", 5);
            struct rf_account_res res;
            assert_int_equal(rf_account_create(rf_core_fx.db, &other, &res, &idem),
                             RF_ERR_IDEM_REUSED);
        }
        free(r);
    }
}

/* Balances at the int64 edges, in a store of their own (ISO test currency
 * XTS) so the funding account starts at zero. */
static void test_int64_edges(void **state) {
    (void)state;
    struct rf_core_fixture shared = rf_core_fx; /* back after this store of its own */
    assert_int_equal(rf_core_fixture_open_fresh(&rf_core_fx, NULL), 0);
    struct rf_account_req req = {.id = "edge-b", .currency = "XTS", .kind = RF_ACCOUNT_USER};
    struct rf_account_res res;
    assert_int_equal(rf_account_create(rf_core_fx.db, &req, &res, NULL), RF_OK);
    rf_account_clear(&res.account);
    assert_int_equal(credit("edge-b", INT64_MAX), RF_OK); /* to the edge */
    assert_int_equal(credit("edge-b", 1), RF_ERR_AMOUNT_OVERFLOW);
    assert_int_equal(balance("edge-b", NULL), INT64_MAX);
    assert_int_equal(balance("funding:XTS", NULL), -INT64_MAX);
    check_invariants();
    rf_core_fixture_close(&rf_core_fx);
    rf_core_fx = shared;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_concurrent_credits, clean_before),
        cmocka_unit_test_setup(test_concurrent_debits, clean_before),
        cmocka_unit_test_setup(test_debits_credits_classified, clean_before),
        cmocka_unit_test_setup(test_concurrent_debits_two_handles, clean_before),
        cmocka_unit_test_setup(test_debits_credits_two_handles, clean_before),
        cmocka_unit_test_setup(test_post_void_race, clean_before),
        cmocka_unit_test_setup(test_partial_post_and_expiry, clean_before),
        cmocka_unit_test_setup(test_bad_input_changes_nothing, clean_before),
        cmocka_unit_test_setup(test_reserved_ids, clean_before),
        cmocka_unit_test_setup(test_account_kind_and_faults, clean_before),
        cmocka_unit_test_setup(test_entries_faults, clean_before),
        cmocka_unit_test_setup(test_create_race, clean_before),
        cmocka_unit_test_setup(test_int64_edges, clean_before),
    };
    return cmocka_run_group_tests(tests, rf_core_setup, rf_core_teardown);
}
