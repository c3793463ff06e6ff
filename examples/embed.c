/*
 * embed.c - racefree used as a library, in one short program: open a SQLite
 * store, create two accounts, credit one with an idempotency key, send the
 * same credit again (it is replayed, not applied twice), transfer between
 * the accounts and print what happened.
 *
 * Build against an installed racefree:
 *     cc embed.c $(pkg-config --cflags --libs racefree) -o embed
 * Run: ./embed [sqlite:PATH]   (default: sqlite:embed-example.db, created)
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <racefree.h>

/* Every rf_* call returns an rf_err; rf_err_code() names it ("ok",
 * "insufficient_funds", ...), the same code the HTTP API answers. */
static int check(const char *what, rf_err err) {
    if (err == RF_OK) return 0;
    fprintf(stderr, "%s: %s\n", what, rf_err_code(err));
    return 1;
}

/* One keyed credit: the Idempotency-Key's scope (api_key_id) is any fixed
 * text when the program has no callers of its own; the request hash tells
 * a retry of this request from a different request under the same key. */
static rf_err credit(rf *db, const char *key, const char *account, int64_t amount,
                     struct rf_transfer_res *res, bool *replayed) {
    struct rf_idem idem = {.key = key, .api_key_id = "embed-example"};
    const void *parts[] = {account, &amount};
    const size_t lens[] = {strlen(account) + 1, sizeof amount};
    rf_err err = rf_idem_hash(&idem, 2, parts, lens);
    if (!err) err = rf_credit_apply(db, account, amount, "welcome bonus", res, &idem);
    *replayed = idem.replayed;
    return err;
}

static void print_balance(rf *db, const char *id) {
    struct rf_account a;
    if (check("account_get", rf_account_get(db, id, &a))) return;
    printf("%s: available %" PRId64 " %s\n", a.id, a.available, a.currency);
    rf_account_clear(&a);
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "sqlite:embed-example.db";
    printf("racefree %s\n", rf_version());

    /* The library voids expired holds and purges old Idempotency-Keys only
     * when a sweep runs: here a thread of its own every 5 s (or call
     * rf_sweep() yourself). */
    struct rf_options opt = {.sweep_interval_ms = 5000};
    rf *db = NULL;
    if (check("open", rf_open(url, &opt, &db))) return 1;

    /* Creating an account that exists with the same attributes is not an
     * error: created says which it was (a program can run this again). */
    int rc = 0;
    const char *ids[] = {"alice", "bob"};
    for (int i = 0; i < 2 && !rc; i++) {
        struct rf_account_res res;
        rc = check("account_create",
                   rf_account_create(db, &(struct rf_account_req){.id = ids[i], .currency = "EUR"},
                                     &res, NULL));
        if (!rc) printf("account %s: %s\n", res.account.id, res.created ? "created" : "exists");
        rf_account_clear(&res.account);
    }

    /* The same key twice: the first call credits, the second is answered
     * with the first one's result (replayed) and moves no money. */
    for (int i = 0; i < 2 && !rc; i++) {
        struct rf_transfer_res res;
        bool replayed = false;
        rc = check("credit", credit(db, "bonus-alice-1", "alice", 1000, &res, &replayed));
        if (!rc)
            printf("credit %s: %" PRId64 " to %s (%s)\n", res.transfer.id,
                   res.transfer.amount_minor, res.transfer.credit_account,
                   replayed ? "replayed" : "applied");
        rf_transfer_clear(&res.transfer);
    }

    /* A transfer is one transaction: both balances move, or neither. */
    if (!rc) {
        struct rf_transfer_res res;
        struct rf_transfer_req t = {.debit_account = "alice", .credit_account = "bob",
                                    .amount_minor = 250, .currency = "EUR"};
        rc = check("transfer", rf_transfer_create(db, &t, &res, NULL));
        if (!rc)
            printf("transfer %s: %" PRId64 " from %s to %s, %s\n", res.transfer.id,
                   res.transfer.amount_minor, res.transfer.debit_account,
                   res.transfer.credit_account, rf_transfer_status_name(res.transfer.status));
        rf_transfer_clear(&res.transfer);
    }
    print_balance(db, "alice");
    print_balance(db, "bob");

    rf_close(db); /* stops the sweep thread and finishes queued work */
    return rc;
}
