/*
 * cmd_keys.c - `racefree keys create|list|revoke`: API key administration
 * straight against the store (no server needed), for bootstrapping and for
 * scripts. `create` prints the new key alone on the last line of stdout so
 * scripts can take it with `tail -n 1`; the key is never printed again.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/ids.h"
#include "base/limits.h"
#include "cli/cli.h"

struct keys_args {
    const char *db;
    const char *role;
    const char *name;
    const char *id;   /* revoke */
    enum rf_role role_parsed;
};

/* Parses the flags after `keys <sub>`; at most one positional (the id). */
static int keys_parse(int argc, char **argv, struct keys_args *a) {
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"role", required_argument, NULL, 'r'},
                                         {"name", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    optind = 0;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (c == 'd') a->db = optarg;
        else if (c == 'r') a->role = optarg;
        else if (c == 'n') a->name = optarg;
        else return cli_usage_error("keys", "bad option");
    }
    if (optind < argc) a->id = argv[optind++];
    if (optind < argc) return cli_usage_error("keys", "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* Usage checks that need no store; 0 or CLI_EXIT_USAGE. */
static int keys_check(bool create, bool revoke, struct keys_args *a) {
    if (!revoke && a->id) return cli_usage_error("keys", "unexpected argument '%s'", a->id);
    if (revoke && (!a->id || !rf_id_valid(a->id)))
        return cli_usage_error("keys", "revoke needs a key ID");
    if (!create && (a->role || a->name))
        return cli_usage_error("keys", "--role and --name belong to keys create");
    if (!create) return 0;
    if (!a->role || !rf_role_parse(a->role, &a->role_parsed))
        return cli_usage_error("keys", "create needs --role admin|service|worker|readonly");
    if (a->name && !rf_id_valid(a->name))
        return cli_usage_error("keys", "--name must be 1-128 characters of [A-Za-z0-9._:-]");
    return 0;
}

static int keys_create(const struct keys_args *a, rf *db) {
    struct rf_key_created made;
    rf_err err = rf_key_create(db, a->role_parsed, a->name, &made, NULL);
    if (err != RF_OK) return cli_fail("keys create", err);
    printf("id: %s\nrole: %s\n", made.key.id, rf_role_name(made.key.role));
    if (made.key.name[0]) printf("name: %s\n", made.key.name);
    printf("The key is shown once; store it now:\n%s\n", made.secret);
    rf_key_created_clear(&made);
    return CLI_EXIT_OK;
}

static void print_key(const struct rf_key *k) {
    char created[RF_TIME_TEXT_BYTES], revoked[RF_TIME_TEXT_BYTES] = "-";
    rf_time_format(k->created_at_ms, created);
    if (k->revoked_at_ms) rf_time_format(k->revoked_at_ms, revoked);
    printf("%s\t%s\t%s\t%s\t%s\n", k->id, rf_role_name(k->role), k->name[0] ? k->name : "-",
           created, revoked);
}

static int keys_list(rf *db) {
    char after[RF_CURSOR_BYTES] = "";
    for (int page = 0; page < RF_CLI_LIST_PAGES_MAX; page++) {
        struct rf_key_page p = {0};
        rf_err err = rf_key_list(db, after[0] ? after : NULL, RF_LIST_LIMIT_MAX, &p);
        if (err != RF_OK) return cli_fail("keys list", err);
        for (int i = 0; i < p.n; i++) print_key(&p.items[i]);
        snprintf(after, sizeof after, "%s", p.next);
        rf_key_page_clear(&p);
        if (!after[0]) return CLI_EXIT_OK;
    }
    fprintf(stderr, "racefree: keys list: stopped after %d pages\n", RF_CLI_LIST_PAGES_MAX);
    return CLI_EXIT_FAIL;
}

static int keys_revoke(const struct keys_args *a, rf *db) {
    rf_err err = rf_key_revoke(db, a->id);
    if (err == RF_ERR_KEY_NOT_FOUND) {
        fprintf(stderr, "racefree: keys revoke: no active key with id %s\n", a->id);
        return CLI_EXIT_FAIL;
    }
    if (err != RF_OK) return cli_fail("keys revoke", err);
    printf("revoked %s\n", a->id);
    return CLI_EXIT_OK;
}

int cmd_keys(int argc, char **argv) {
    if (argc < 2) return cli_usage_error("keys", "missing subcommand (create, list or revoke)");
    const char *sub = argv[1];
    bool create = strcmp(sub, "create") == 0, list = strcmp(sub, "list") == 0,
         revoke = strcmp(sub, "revoke") == 0;
    if (!create && !list && !revoke) return cli_usage_error("keys", "unknown subcommand '%s'", sub);
    struct keys_args a = {0};
    int rc = keys_parse(argc - 1, argv + 1, &a);
    if (!rc) rc = keys_check(create, revoke, &a);
    if (rc) return rc;
    rf *db = NULL;
    rc = cli_open(cli_db_url(a.db), &(struct rf_options){0}, &db);
    if (rc) return rc;
    rc = create ? keys_create(&a, db) : list ? keys_list(db) : keys_revoke(&a, db);
    rf_close(db);
    return rc;
}
