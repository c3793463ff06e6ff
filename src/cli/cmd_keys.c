/*
 * cmd_keys.c - `racefree keys create|list|revoke`: API key administration
 * straight against the store (no server needed), for bootstrapping and for
 * scripts. `create` prints the new key alone on the last line of stdout so
 * scripts can take it with `tail -n 1`; the key is never printed again.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/ids.h"
#include "base/limits.h"
#include "cli/cli.h"

struct keys_args {
    struct cli_store store;
    const char *role;
    const char *name;
    const char *id;   /* revoke */
    struct rf_rate_limit rate_limit; /* create --rate-limit; quota 0: none */
    bool json;        /* list */
    enum rf_role role_parsed;
};

#define KEYS_ABOUT_STORE                                                                      \
    "Works straight on the store (no server needed); the store must exist (a sqlite:\n"     \
    "URL whose file is missing is refused with exit 2 and nothing is created)."

static const struct cli_flag create_flags[] = {
    CLI_STORE_FLAGS(struct keys_args),
    {"role", "ROLE", "admin, service, worker or readonly (required)", NULL, 0, cli_set_str,
     offsetof(struct keys_args, role), 0, 0, false},
    {"name", "NAME", "a label: 1-128 characters of [A-Za-z0-9._:-]", "none", 0, cli_set_str,
     offsetof(struct keys_args, name), 0, 0, false},
    {"rate-limit", "N/PERIOD", "this key's own rate limit per route class (e.g. 100/10s; "
     "PERIOD in ms, s, m or h), overriding its role's serve --rate-limit",
     "the role's limit", 0, cli_set_rate_limit, offsetof(struct keys_args, rate_limit), 0, 0,
     false},
};
static const struct cli_flag list_flags[] = {
    CLI_STORE_FLAGS(struct keys_args),
    {"json", NULL, "print a JSON array of keys instead of a table", "a table with a header",
     0, cli_set_true, offsetof(struct keys_args, json), 0, 0, false},
};
static const struct cli_flag revoke_flags[] = {CLI_STORE_FLAGS(struct keys_args)};

#define SPEC(cmd, operands, about, flags) {cmd, operands, about, flags, sizeof flags / sizeof flags[0]}
static const struct cli_spec keys_specs[] = {
    SPEC("keys create", "",
         "Creates an API key and prints it once, alone on the last line of stdout\n"
         "(`tail -n 1`); it is never shown again.\n" KEYS_ABOUT_STORE,
         create_flags),
    SPEC("keys list", "",
         "Lists every API key (never a secret): id, role, name, created and revoked times.\n"
         KEYS_ABOUT_STORE,
         list_flags),
    SPEC("keys revoke", "ID",
         "Revokes the key with this id; running servers refuse it within a second.\n"
         KEYS_ABOUT_STORE,
         revoke_flags),
};

static void keys_overview(FILE *f) {
    fprintf(f, "usage: racefree keys create --role ROLE [--name NAME] [--rate-limit N/PERIOD]\n"
               "                            [--db URL] [--schema NAME]\n"
               "       racefree keys list [--json] [--db URL] [--schema NAME]\n"
               "       racefree keys revoke ID [--db URL] [--schema NAME]\n\n"
               "Creates, lists and revokes API keys straight on the store.\n"
               "Run `racefree keys SUBCOMMAND --help` for its flags and defaults.\n");
}

/* Parses the flags after `keys <sub>`; at most one positional (the id). */
static int keys_parse(const struct cli_spec *spec, int argc, char **argv, struct keys_args *a) {
    int first = 0;
    int rc = cli_parse(spec, argc, argv, a, &first);
    if (rc) return rc;
    if (first < argc) a->id = argv[first++];
    if (first < argc) return cli_usage_error(spec->cmd, "unexpected argument '%s'", argv[first]);
    return 0;
}

/* Usage checks that need no store; 0 or CLI_EXIT_USAGE. */
static int keys_check(bool create, bool revoke, struct keys_args *a) {
    if (!revoke && a->id) return cli_usage_error("", "unexpected argument '%s'", a->id);
    if (revoke && (!a->id || !rf_id_valid(a->id)))
        return cli_usage_error("", "revoke needs a key ID");
    if (!create) return 0;
    if (!a->role || !rf_role_parse(a->role, &a->role_parsed))
        return cli_usage_error("", "create needs --role admin|service|worker|readonly");
    if (a->name && !rf_id_valid(a->name))
        return cli_usage_error("", "--name must be 1-128 characters of [A-Za-z0-9._:-]");
    return 0;
}

static int keys_create(const struct keys_args *a, rf *db) {
    struct rf_key_created made;
    rf_err err = rf_key_create_limited(db, a->role_parsed, a->name, &a->rate_limit, &made);
    if (err != RF_OK) return cli_fail("keys create", err);
    printf("id: %s\nrole: %s\n", made.key.id, rf_role_name(made.key.role));
    if (made.key.name[0]) printf("name: %s\n", made.key.name);
    if (made.key.rate_limit.quota)
        printf("rate limit: %lld per %lld ms\n", (long long)made.key.rate_limit.quota,
               (long long)made.key.rate_limit.window_ms);
    printf("The key is shown once; store it now:\n%s\n", made.secret);
    rf_key_created_clear(&made);
    return CLI_EXIT_OK;
}

/* The key's own limit as --rate-limit takes it (the largest whole unit),
 * "-" when its role's applies. */
static void format_limit(const struct rf_rate_limit *l, char *out, size_t cap) {
    static const struct { const char *unit; int64_t ms; } units[] = {
        {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    if (!l->quota) {
        snprintf(out, cap, "-");
        return;
    }
    size_t u = 0;
    while (l->window_ms % units[u].ms != 0) u++; /* ends at ms, which divides all */
    snprintf(out, cap, "%lld/%lld%s", (long long)l->quota,
             (long long)(l->window_ms / units[u].ms), units[u].unit);
}

static void print_key(const struct rf_key *k, bool json, bool first) {
    char created[RF_TIME_TEXT_BYTES], revoked[RF_TIME_TEXT_BYTES] = "-", limit[48];
    rf_time_format(k->created_at_ms, created);
    if (k->revoked_at_ms) rf_time_format(k->revoked_at_ms, revoked);
    format_limit(&k->rate_limit, limit, sizeof limit);
    if (!json) {
        printf("%s\t%s\t%s\t%s\t%s\t%s\n", k->id, rf_role_name(k->role),
               k->name[0] ? k->name : "-", created, revoked, limit);
        return;
    }
    json_t *o = json_pack("{s:s, s:s, s:s?, s:s, s:s?, s:s?}", "id", k->id, "role",
                          rf_role_name(k->role), "name", k->name[0] ? k->name : NULL,
                          "created_at", created, "revoked_at",
                          k->revoked_at_ms ? revoked : NULL, "rate_limit",
                          k->rate_limit.quota ? limit : NULL);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    printf("%s%s", first ? "\n  " : ",\n  ", text ? text : "null");
    free(text);
    json_decref(o);
}

/* A table with a header row, or (--json) one JSON array, built page by page. */
static int keys_list(const struct keys_args *a, rf *db) {
    char after[RF_CURSOR_BYTES] = "";
    bool first = true;
    if (a->json) printf("[");
    else printf("ID\tROLE\tNAME\tCREATED\tREVOKED\tRATE_LIMIT\n");
    for (int page = 0; page < RF_CLI_LIST_PAGES_MAX; page++) {
        struct rf_key_page p = {0};
        rf_err err = rf_key_list(db, after[0] ? after : NULL, RF_LIST_LIMIT_MAX, &p);
        if (err != RF_OK) return cli_fail("keys list", err);
        for (int i = 0; i < p.n; i++, first = false) print_key(&p.items[i], a->json, first);
        snprintf(after, sizeof after, "%s", p.next);
        rf_key_page_clear(&p);
        if (!after[0]) {
            if (a->json) printf("%s]\n", first ? "" : "\n");
            return CLI_EXIT_OK;
        }
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
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        keys_overview(stdout);
        return CLI_EXIT_OK;
    }
    bool create = strcmp(sub, "create") == 0, list = strcmp(sub, "list") == 0,
         revoke = strcmp(sub, "revoke") == 0;
    if (!create && !list && !revoke) return cli_usage_error("keys", "unknown subcommand '%s'", sub);
    const struct cli_spec *spec = &keys_specs[create ? 0 : list ? 1 : 2];
    struct keys_args a = {0};
    int rc = keys_parse(spec, argc - 1, argv + 1, &a);
    if (rc) return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    rc = keys_check(create, revoke, &a);
    if (rc) return rc;
    rf *db = NULL;
    rc = cli_store_open(spec->cmd, &a.store, true, &(struct rf_options){0}, &db);
    if (rc) return rc;
    rc = create ? keys_create(&a, db) : list ? keys_list(&a, db) : keys_revoke(&a, db);
    rf_close(db);
    return rc;
}
