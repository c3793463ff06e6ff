/*
 * flags.c - parsing a command's flags from its table (struct cli_flag) and
 * printing its --help from the same table, so a flag cannot be accepted
 * without being documented (or hidden on purpose), and the store's URL rules
 * shared by every command: --schema folded into the URL, a missing SQLite
 * file refused where the store must already exist.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/ids.h"
#include "base/limits.h"
#include "cli/cli.h"

#define CLI_OPT_BASE 256 /* getopt_long values: CLI_OPT_BASE + row index */
#define CLI_HELP_COL 30  /* the column where a flag's description starts */
#define CLI_HELP_WIDTH 79 /* help lines wrap before this column */

/* The command cli_parse is parsing, for the setters' messages. */
static const char *parsing_cmd = "";

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    if (!cmd || !*cmd) cmd = parsing_cmd;
    fprintf(stderr, "racefree %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun `racefree %s --help` for usage.\n", cmd);
    return CLI_EXIT_USAGE;
}

int cli_set_str(const struct cli_flag *f, void *args, const char *value) {
    *(const char **)((char *)args + f->offset) = value;
    return 0;
}

int cli_set_true(const struct cli_flag *f, void *args, const char *value) {
    (void)value;
    *(bool *)((char *)args + f->offset) = true;
    return 0;
}

int cli_set_int(const struct cli_flag *f, void *args, const char *value) {
    long v = 0;
    if (!cli_parse_long(value, f->min, f->max, &v))
        return cli_usage_error("", "--%s must be an integer %ld..%ld, got '%s'", f->name, f->min,
                               f->max, value);
    *(int *)((char *)args + f->offset) = (int)v;
    return 0;
}

int cli_set_rate_limit(const struct cli_flag *f, void *args, const char *value) {
    char why[160];
    struct rf_rate_limit *out = (struct rf_rate_limit *)(void *)((char *)args + f->offset);
    if (!rf_rate_limit_parse(value, out, why, sizeof why))
        return cli_usage_error("", "--%s: %s", f->name, why);
    return 0;
}

/* Prints text word-wrapped to CLI_HELP_WIDTH, continuation lines indented
 * to CLI_HELP_COL; col is where the cursor is. */
static void print_wrapped(FILE *out, const char *text, int col) {
    while (*text) {
        int word = (int)strcspn(text, " ");
        if (col > CLI_HELP_COL && col + 1 + word > CLI_HELP_WIDTH) {
            fprintf(out, "\n%*s", CLI_HELP_COL, "");
            col = CLI_HELP_COL;
        } else if (col > CLI_HELP_COL) {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%.*s", word, text);
        col += word;
        text += word;
        while (*text == ' ') text++;
    }
    fputc('\n', out);
}

void cli_print_spec(FILE *out, const struct cli_spec *s) {
    fprintf(out, "usage: racefree %s [OPTIONS]%s%s\n\n%s\n\noptions:\n", s->cmd,
            s->operands[0] ? " " : "", s->operands, s->about);
    for (size_t i = 0; i < s->n_flags; i++) {
        const struct cli_flag *f = &s->flags[i];
        if (f->hidden) continue;
        char head[96], text[512];
        int n = snprintf(head, sizeof head, "  --%s%s%s", f->name, f->arg ? " " : "",
                         f->arg ? f->arg : "");
        if (f->dflt) snprintf(text, sizeof text, "%s (default: %s)", f->help, f->dflt);
        else if (f->dflt_n) snprintf(text, sizeof text, "%s (default: %ld)", f->help, f->dflt_n);
        else snprintf(text, sizeof text, "%s", f->help);
        if (n >= CLI_HELP_COL) fprintf(out, "%s\n%*s", head, CLI_HELP_COL, "");
        else fprintf(out, "%-*s", CLI_HELP_COL, head);
        print_wrapped(out, text, CLI_HELP_COL);
    }
    fprintf(out, "%-*s%s\n", CLI_HELP_COL, "  -h, --help", "show this help and exit");
}

/* The getopt_long table for s: one option per row, then --help. */
static void build_options(const struct cli_spec *s, struct option *opts) {
    RF_ASSERT(s->n_flags + 2 <= RF_CLI_FLAGS_MAX);
    for (size_t i = 0; i < s->n_flags; i++)
        opts[i] = (struct option){s->flags[i].name,
                                  s->flags[i].arg ? required_argument : no_argument, NULL,
                                  CLI_OPT_BASE + (int)i};
    opts[s->n_flags] = (struct option){"help", no_argument, NULL, 'h'};
    opts[s->n_flags + 1] = (struct option){NULL, 0, NULL, 0};
}

/* The message for getopt's '?' or ':' at argv[optind - 1]. */
static int bad_flag(const struct cli_spec *s, int c, char **argv) {
    const char *arg = argv[optind - 1];
    if (c == ':') return cli_usage_error(s->cmd, "%s needs a value", arg);
    return cli_usage_error(s->cmd, "unknown option '%s'", arg);
}

int cli_parse(const struct cli_spec *s, int argc, char **argv, void *args, int *first_operand) {
    struct option opts[RF_CLI_FLAGS_MAX];
    build_options(s, opts);
    parsing_cmd = s->cmd;
    optind = 0;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1;) {
        if (c == 'h') {
            cli_print_spec(stdout, s);
            return CLI_HELP_SHOWN;
        }
        if (c < CLI_OPT_BASE || c >= CLI_OPT_BASE + (int)s->n_flags) return bad_flag(s, c, argv);
        const struct cli_flag *f = &s->flags[c - CLI_OPT_BASE];
        int rc = f->set(f, args, optarg);
        if (rc) return rc;
    }
    *first_operand = optind;
    return 0;
}

int cli_store_url(const char *cmd, const struct cli_store *s, bool must_exist, char *out,
                  size_t cap) {
    const char *url = cli_db_url(s->db);
    bool sqlite = strncmp(url, "sqlite:", 7) == 0;
    if (s->schema && sqlite)
        return cli_usage_error(cmd, "--schema is for PostgreSQL (a SQLite file holds only "
                                    "racefree's tables: use a file of its own)");
    if (s->schema && !rf_schema_name_valid(s->schema))
        return cli_usage_error(cmd, "--schema must be 1-%d lower-case letters, digits or _, "
                                    "not starting with a digit or pg_, got '%s'",
                               RF_PG_SCHEMA_CHARS_MAX, s->schema);
    if (s->schema && (strstr(url, "?schema=") || strstr(url, "&schema=")))
        return cli_usage_error(cmd, "give the schema once: --schema or ?schema= in the URL");
    int n = s->schema ? snprintf(out, cap, "%s%cschema=%s", url, strchr(url, '?') ? '&' : '?',
                                 s->schema)
                      : snprintf(out, cap, "%s", url);
    if (n < 0 || (size_t)n >= cap) return cli_usage_error(cmd, "the database URL is too long");
    const char *path = url + 7;
    if (must_exist && sqlite && *path && strcmp(path, ":memory:") != 0 &&
        access(path, F_OK) != 0)
        return cli_usage_error(cmd,
                               "no SQLite database at '%s' (nothing was created); create it "
                               "with `racefree migrate --db %s`, or check --db / $RACEFREE_DB",
                               path, url);
    return 0;
}
