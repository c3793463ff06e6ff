/*
 * cmd_torture.c - placeholder until the scenarios land.
 */
#include "cli/cli.h"

int cmd_torture(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return CLI_EXIT_USAGE;
}
