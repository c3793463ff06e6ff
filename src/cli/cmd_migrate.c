/*
 * cmd_migrate.c - `racefree migrate [--db URL] [--schema NAME]`: applies the
 * embedded schema migrations and prints "schema version N". Creates a
 * missing SQLite file, and on PostgreSQL a missing --schema. Safe to run
 * while servers run (the library serialises migrations).
 */
#include <stdio.h>

#include "cli/cli.h"

struct migrate_args {
    struct cli_store store;
};

static const struct cli_flag migrate_flags[] = {CLI_STORE_FLAGS(struct migrate_args)};
static const struct cli_spec migrate_spec = {
    "migrate", "",
    "Applies the schema migrations this binary carries and prints the schema version.\n"
    "Creates a missing SQLite file, and on PostgreSQL the --schema if it is missing.\n"
    "Safe while servers run; a store newer than this binary is refused (exit 2).",
    migrate_flags, sizeof migrate_flags / sizeof migrate_flags[0]};

int cmd_migrate(int argc, char **argv) {
    struct migrate_args a = {0};
    int first = 0;
    int rc = cli_parse(&migrate_spec, argc, argv, &a, &first);
    if (rc) return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    if (first < argc) return cli_usage_error("migrate", "unexpected argument '%s'", argv[first]);
    char url[RF_DB_URL_BYTES];
    rc = cli_store_url("migrate", &a.store, false, url, sizeof url);
    if (rc) return rc;
    int version = 0;
    rf_err err = rf_migrate(url, &version);
    if (err == RF_ERR_SCHEMA_TOO_NEW) return cli_schema_too_new();
    if (err == RF_ERR_INVALID) return cli_usage_error("migrate", "invalid database URL");
    if (err != RF_OK) return cli_fail("migrate", err);
    printf("schema version %d\n", version);
    return CLI_EXIT_OK;
}
