/*
 * cmd_webhooks.c - `racefree webhooks secret set|list|rotate`: a payment
 * provider's webhook signing secrets, straight on the store (no server
 * needed). Secrets go in and are never printed: `list` shows providers, when
 * their primary was set and until when a rotated-out secret is accepted.
 * Sealing uses the secrets key the server uses (RACEFREE_SECRETS_KEY or
 * RACEFREE_SECRETS_KEY_FILE in the environment), or, when neither is given,
 * the store's own key.
 */
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/ids.h"
#include "base/limits.h"
#include "cli/cli.h"

struct wh_args {
    struct cli_store store;
    const char *provider;
    const char *secret;
    int overlap_s;
};

#define WH_ABOUT_STORE                                                                        \
    "Works straight on the store (no server needed); the store must exist. Secrets are\n"   \
    "sealed under RACEFREE_SECRETS_KEY (64 hex digits) or the key in the file\n"            \
    "RACEFREE_SECRETS_KEY_FILE names (give the CLI the same key as the server), or,\n"      \
    "when neither is set, under the store's own key."

#define PROVIDER_FLAG                                                                         \
    {"provider", "NAME", "the provider: stripe, or another name (1-128 of [A-Za-z0-9._:-])", \
     NULL, 0, cli_set_str, offsetof(struct wh_args, provider), 0, 0, false}
#define SECRET_FLAG                                                                           \
    {"secret", "S", "the signing secret the provider shows (16-256 printable characters)",   \
     NULL, 0, cli_set_str, offsetof(struct wh_args, secret), 0, 0, false}

static const struct cli_flag set_flags[] = {CLI_STORE_FLAGS(struct wh_args), PROVIDER_FLAG,
                                            SECRET_FLAG};
static const struct cli_flag rotate_flags[] = {
    CLI_STORE_FLAGS(struct wh_args), PROVIDER_FLAG, SECRET_FLAG,
    {"overlap-s", "N", "seconds the old secret stays accepted", NULL,
     RF_WEBHOOK_OVERLAP_S_DEFAULT, cli_set_int, offsetof(struct wh_args, overlap_s), 1,
     RF_WEBHOOK_OVERLAP_S_MAX, false},
};
static const struct cli_flag list_flags[] = {CLI_STORE_FLAGS(struct wh_args)};

#define SPEC(cmd, about, flags) {cmd, "", about, flags, sizeof flags / sizeof flags[0]}
static const struct cli_spec wh_specs[] = {
    SPEC("webhooks secret set",
         "Sets a provider's signing secret; it becomes the only one accepted (a secret\n"
         "still in a rotation's overlap stops being accepted).\n" WH_ABOUT_STORE,
         set_flags),
    SPEC("webhooks secret rotate",
         "Makes a new secret the provider's primary; the old one stays accepted for\n"
         "--overlap-s seconds, so deliveries signed before the provider switched verify.\n"
         WH_ABOUT_STORE,
         rotate_flags),
    SPEC("webhooks secret list",
         "Lists providers with secrets (never a secret): provider, when the primary was\n"
         "set, until when the previous secret is accepted, version.\n" WH_ABOUT_STORE,
         list_flags),
};

static void wh_overview(FILE *f) {
    fprintf(f, "usage: racefree webhooks secret set --provider NAME --secret S [--db URL]\n"
               "       racefree webhooks secret rotate --provider NAME --secret S "
               "[--overlap-s N] [--db URL]\n"
               "       racefree webhooks secret list [--db URL]\n\n"
               "Manages payment providers' webhook signing secrets straight on the store.\n"
               "Run `racefree webhooks secret SUBCOMMAND --help` for its flags and defaults.\n");
}

static void print_secret(const struct rf_webhook_secret *s) {
    char set[RF_TIME_TEXT_BYTES], prev[RF_TIME_TEXT_BYTES] = "-";
    rf_time_format(s->primary_set_at_ms, set);
    if (s->previous_expires_at_ms) rf_time_format(s->previous_expires_at_ms, prev);
    printf("%s\t%s\t%s\t%lld\n", s->provider, set, prev, (long long)s->version);
}

static int wh_list(rf *db) {
    char after[RF_CURSOR_BYTES] = "";
    printf("PROVIDER\tPRIMARY_SET\tPREVIOUS_UNTIL\tVERSION\n");
    for (int page = 0; page < RF_CLI_LIST_PAGES_MAX; page++) {
        struct rf_webhook_secret_page p = {0};
        rf_err err = rf_webhook_secret_list(db, after[0] ? after : NULL, RF_LIST_LIMIT_MAX, &p);
        if (err != RF_OK) return cli_fail("webhooks secret list", err);
        for (int i = 0; i < p.n; i++) print_secret(&p.items[i]);
        snprintf(after, sizeof after, "%s", p.next);
        rf_webhook_secret_page_clear(&p);
        if (!after[0]) return CLI_EXIT_OK;
    }
    fprintf(stderr, "racefree: webhooks secret list: stopped after %d pages\n",
            RF_CLI_LIST_PAGES_MAX);
    return CLI_EXIT_FAIL;
}

static int wh_write(const struct cli_spec *spec, bool rotate, const struct wh_args *a, rf *db) {
    struct rf_webhook_secret_req req = {a->provider, a->secret, a->overlap_s};
    struct rf_webhook_secret out;
    rf_err err = rotate ? rf_webhook_secret_rotate(db, &req, &out)
                        : rf_webhook_secret_set(db, &req, &out);
    if (err == RF_ERR_WEBHOOK_PROVIDER_UNKNOWN) {
        fprintf(stderr, "racefree: %s: provider %s has no secret; use `webhooks secret set`\n",
                spec->cmd, a->provider);
        return CLI_EXIT_FAIL;
    }
    if (err == RF_ERR_INVALID) return cli_usage_error(spec->cmd, "--secret must be 16-256 "
                                                      "printable ASCII characters");
    if (err == RF_ERR_SECRETS_KEY_UNAVAILABLE)
        fprintf(stderr, "racefree: %s: the secrets key does not open this store's secrets: "
                        "give RACEFREE_SECRETS_KEY (64 hex digits) or RACEFREE_SECRETS_KEY_FILE "
                        "as the server has it\n", spec->cmd);
    if (err != RF_OK) return cli_fail(spec->cmd, err);
    printf("PROVIDER\tPRIMARY_SET\tPREVIOUS_UNTIL\tVERSION\n");
    print_secret(&out);
    return CLI_EXIT_OK;
}

/* argv: "webhooks" "secret" SUB flags... */
int cmd_webhooks(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        wh_overview(stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2 || strcmp(argv[1], "secret") != 0)
        return cli_usage_error("webhooks", "missing subcommand (secret set|rotate|list)");
    if (argc < 3 || strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
        wh_overview(argc < 3 ? stderr : stdout);
        return argc < 3 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const char *sub = argv[2];
    int which = strcmp(sub, "set") == 0 ? 0 : strcmp(sub, "rotate") == 0 ? 1
              : strcmp(sub, "list") == 0 ? 2 : -1;
    if (which < 0) return cli_usage_error("webhooks secret", "unknown subcommand '%s'", sub);
    const struct cli_spec *spec = &wh_specs[which];
    struct wh_args a = {.overlap_s = RF_WEBHOOK_OVERLAP_S_DEFAULT};
    int first = 0;
    int rc = cli_parse(spec, argc - 2, argv + 2, &a, &first);
    if (rc) return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    if (first < argc - 2)
        return cli_usage_error(spec->cmd, "unexpected argument '%s'", argv[2 + first]);
    if (which != 2 && (!a.provider || !rf_id_valid(a.provider)))
        return cli_usage_error(spec->cmd, "--provider NAME is required: 1-128 characters of "
                                          "[A-Za-z0-9._:-]");
    if (which != 2 && !a.secret) return cli_usage_error(spec->cmd, "--secret S is required");
    rf *db = NULL;
    rc = cli_store_open(spec->cmd, &a.store, true, &(struct rf_options){0}, &db);
    if (rc) return rc;
    rc = which == 2 ? wh_list(db) : wh_write(spec, which == 1, &a, db);
    rf_close(db);
    return rc;
}
