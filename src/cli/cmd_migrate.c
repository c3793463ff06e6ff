/*
 * cmd_migrate.c - `racefree migrate [--db URL]`: applies the embedded schema
 * migrations and prints "schema version N". Safe to run while servers run
 * (the library serialises migrations).
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"

int cmd_migrate(int argc, char **argv) {
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *db = NULL;
    optind = 0;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        if (c == 'd') db = optarg;
        else if (c == 'h') return printf("usage: racefree migrate [--db URL]\n"), CLI_EXIT_OK;
        else return cli_usage_error("migrate", "bad option");
    }
    if (optind < argc) return cli_usage_error("migrate", "unexpected argument '%s'", argv[optind]);
    int version = 0;
    rf_err err = rf_migrate(cli_db_url(db), &version);
    if (err == RF_ERR_SCHEMA_TOO_NEW) {
        fprintf(stderr,
                "racefree: the database schema is newer than this binary (which knows schema "
                "version %d); run a newer racefree\n",
                rf_schema_version_latest());
        return CLI_EXIT_USAGE;
    }
    if (err != RF_OK) return cli_fail("migrate", err);
    printf("schema version %d\n", version);
    return CLI_EXIT_OK;
}
