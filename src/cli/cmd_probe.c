/*
 * cmd_probe.c - `racefree probe --request FILE [--copies N] [--rounds R]
 * [--vary HEADER] [--url BASE]`: fires N copies of one request at any HTTP
 * service, released together by the race engine (race.c), and reports what
 * came back grouped by status and body. It needs no knowledge of the app:
 * a check-then-insert (SELECT, then INSERT) shows up as more than one 201
 * for one thing, a unique violation the app did not expect as a 500.
 *
 * The verdict, per round: a race sign is more than one `201 Created` among
 * the round's copies, or any 5xx. Exit 1 when any round shows one; 0 when
 * none does; 2 for bad usage, a request that cannot be read, a connection
 * that cannot be made, or copies left without a complete answer (and no
 * race sign). Bodies are grouped after normalising what differs by nature
 * between two answers to one request: RFC 3339 times, UUIDs and runs of ten
 * or more hex digits (ids, epoch times); the raw differences are shown.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/ids.h"
#include "cli/cli.h"
#include "cli/probe.h"
#include "cli/race.h"
#include "http/buf.h"

struct probe_args {
    const char *request;
    const char *vary;
    const char *url;
    int copies;
    int rounds;
    int timeout_ms;
};

static const struct cli_flag probe_flags[] = {
    {"request", "FILE", "the request: a raw HTTP/1.1 request (request line, headers, blank line, "
     "body) or a curl command line (-X, -H, -d/--data/--data-raw/--data-binary, --json, URL); "
     "required", NULL, 0, cli_set_str, offsetof(struct probe_args, request), 0, 0, false},
    {"copies", "N", "copies released together in each round", NULL, 10, cli_set_int,
     offsetof(struct probe_args, copies), 2, RF_RACE_COPIES_MAX, false},
    {"rounds", "R", "rounds, one after another", NULL, 1, cli_set_int,
     offsetof(struct probe_args, rounds), 1, RF_PROBE_ROUNDS_MAX, false},
    {"vary", "HEADER", "give each copy its own value of this header (Idempotency-Key: what "
     "happens without a shared key)", "every copy identical", 0, cli_set_str,
     offsetof(struct probe_args, vary), 0, 0, false},
    {"url", "BASE", "send to http://HOST[:PORT][/PREFIX] instead of the request's own host "
     "(no TLS: use a plain-HTTP port or a local proxy)", "the request's URL or Host", 0,
     cli_set_str, offsetof(struct probe_args, url), 0, 0, false},
    CLI_RACE_TIMEOUT_FLAG(struct probe_args,
                          "bound on connecting and sending, and on all answers of a round"),
};

static const struct cli_spec probe_spec = {
    "probe", "",
    "Fires N copies of one request at an HTTP service, released together (each copy\n"
    "is sent but its last byte, then every last byte at once), and prints the\n"
    "answers grouped by status and body. Times, UUIDs and runs of 10+ hex digits\n"
    "are normalised before grouping; the raw differences are shown.\n"
    "Exit 1: a race sign in some round: more than one 201 Created among its copies,\n"
    "or any 5xx. Exit 0: no race sign. Exit 2: bad usage, an unreadable or\n"
    "unsupported request, no connection, or copies without a complete answer.",
    probe_flags, sizeof probe_flags / sizeof probe_flags[0]};

/* ---- grouping ----------------------------------------------------------------------- */

struct klass {
    int status;
    char *norm;   /* normalised body (or the error, for status 0) */
    char *sample; /* the first raw body */
    char *other;  /* a raw body that differs from sample, if any */
    int count;
};

struct tally {
    struct klass k[RF_PROBE_CLASSES_MAX];
    int n, overflow, no_answer, racy_rounds;
    int apart;             /* rounds with an answer back before the last release */
    int64_t spread_max_us; /* the widest release */
    int64_t *lat;
    int n_lat;
    char racy[RF_PROBE_RACY_SHOWN][96];
};

static size_t match_time(const char *s) {
    static const char pat[] = "dddd-dd-ddTdd:dd:dd";
    size_t i = 0;
    for (; pat[i]; i++)
        if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i]) return 0;
    if (s[i] == '.')
        for (i++; isdigit((unsigned char)s[i]); i++) {}
    if (s[i] == 'Z') return i + 1;
    if ((s[i] == '+' || s[i] == '-') && isdigit((unsigned char)s[i + 1]) && s[i + 3] == ':')
        return i + 6;
    return i;
}

static size_t match_uuid(const char *s) {
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i])) return 0;
    }
    return isalnum((unsigned char)s[36]) ? 0 : 36;
}

static size_t match_hex(const char *s) {
    size_t i = 0;
    bool digit = false;
    for (; isxdigit((unsigned char)s[i]); i++) digit = digit || isdigit((unsigned char)s[i]);
    return i >= 10 && digit && !isalnum((unsigned char)s[i]) ? i : 0;
}

/* The body with times, UUIDs and long hex runs replaced by placeholders
 * (matched only at the start of a token). */
static char *normalise(const char *s) {
    struct rf_buf b;
    rf_buf_init(&b, RF_RACE_RESPONSE_BYTES_MAX + 1);
    for (size_t i = 0; s[i];) {
        size_t m = 0;
        const char *ph = NULL;
        if (i == 0 || !isalnum((unsigned char)s[i - 1])) {
            if ((m = match_time(s + i))) ph = "<time>";
            else if ((m = match_uuid(s + i))) ph = "<uuid>";
            else if ((m = match_hex(s + i))) ph = "<hex>";
        }
        if (ph) rf_buf_puts(&b, ph), i += m;
        else rf_buf_append(&b, s + i, 1), i++;
    }
    char *out = rf_buf_take(&b, NULL);
    return out ? out : strdup("");
}

static void tally_add(struct tally *t, const struct race_resp *r) {
    const char *raw = r->status ? r->body : r->err;
    char *norm = normalise(raw);
    for (int i = 0; i < t->n; i++) {
        struct klass *k = &t->k[i];
        if (k->status != r->status || strcmp(k->norm, norm) != 0) continue;
        k->count++;
        if (!k->other && strcmp(k->sample, raw) != 0) k->other = strdup(raw);
        free(norm);
        return;
    }
    if (t->n == RF_PROBE_CLASSES_MAX) {
        t->overflow++;
        free(norm);
        return;
    }
    t->k[t->n++] = (struct klass){.status = r->status, .norm = norm, .sample = strdup(raw),
                                  .count = 1};
}

/* Counts one round's answers; true when they show a race sign. */
static bool tally_round(struct tally *t, const struct race_resp *rs, int n, int round) {
    int created = 0, err5 = 0;
    for (int i = 0; i < n; i++) {
        tally_add(t, &rs[i]);
        if (rs[i].status == 0) t->no_answer++;
        else t->lat[t->n_lat++] = rs[i].latency_us;
        created += rs[i].status == 201;
        err5 += rs[i].status >= 500;
    }
    if (created <= 1 && err5 == 0) return false;
    if (t->racy_rounds < RF_PROBE_RACY_SHOWN)
        snprintf(t->racy[t->racy_rounds], sizeof t->racy[0], "round %d: %d x 201, %d x 5xx",
                 round, created, err5);
    t->racy_rounds++;
    return true;
}

/* ---- report ---------------------------------------------------------------------------- */

static void print_body(const char *label, const char *s) {
    printf("%s", label);
    size_t n = strlen(s);
    for (size_t i = 0; i < n && i < RF_PROBE_SHOW_BYTES; i++)
        putchar(isprint((unsigned char)s[i]) ? s[i] : ' ');
    printf("%s\n", n > RF_PROBE_SHOW_BYTES ? "..." : "");
}

static void print_report(const struct tally *t, int copies, int rounds) {
    printf("answers (grouped by status and body; times, UUIDs and 10+ hex digit runs "
           "normalised):\n");
    for (int i = 0; i < t->n; i++) {
        const struct klass *k = &t->k[i];
        char label[48];
        if (k->status) snprintf(label, sizeof label, "%5d x %d  ", k->count, k->status);
        else snprintf(label, sizeof label, "%5d x no answer: ", k->count);
        print_body(label, k->status ? k->norm : k->sample);
        if (k->other) {
            print_body("           differs in raw form, e.g. ", k->sample);
            print_body("                                 vs ", k->other);
        }
    }
    if (t->overflow)
        printf("%5d x other (more than %d groups)\n", t->overflow, RF_PROBE_CLASSES_MAX);
    int64_t *lat = t->lat;
    printf("released within %lld us per round; %d of %d rounds had every copy in flight "
           "before the first answer\n", (long long)t->spread_max_us, rounds - t->apart, rounds);
    printf("latency from release: p50 %.1f ms, p99 %.1f ms (%d answers of %d)\n",
           (double)race_percentile(lat, t->n_lat, 50) / 1000.0,
           (double)race_percentile(lat, t->n_lat, 99) / 1000.0, t->n_lat, copies * rounds);
}

static int verdict(const struct tally *t, int rounds) {
    if (t->racy_rounds) {
        printf("verdict: RACE SIGN in %d of %d round%s (more than one 201 Created per round, or "
               "a 5xx):\n", t->racy_rounds, rounds, rounds == 1 ? "" : "s");
        for (int i = 0; i < t->racy_rounds && i < RF_PROBE_RACY_SHOWN; i++)
            printf("  %s\n", t->racy[i]);
        return CLI_EXIT_FAIL;
    }
    if (t->no_answer) {
        printf("verdict: %d copies got no complete answer; no race sign among the rest\n",
               t->no_answer);
        return CLI_EXIT_USAGE;
    }
    printf("verdict: no race sign in %d round%s (at most one 201 Created per round, no 5xx)\n",
           rounds, rounds == 1 ? "" : "s");
    return CLI_EXIT_OK;
}

/* ---- running ----------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(RF_PROBE_FILE_BYTES_MAX + 1);
    size_t n = buf ? fread(buf, 1, RF_PROBE_FILE_BYTES_MAX + 1, f) : 0;
    fclose(f);
    if (!buf || n > RF_PROBE_FILE_BYTES_MAX) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Builds the round's copies; with --vary each gets its own header value. */
static bool build_round(const struct probe_args *a, const struct probe_req *q,
                        const struct race_target *to, const char *run, int round,
                        struct race_msg *msgs) {
    const char *hs[RF_PROBE_HEADERS_MAX + 1];
    size_t vl = a->vary ? strlen(a->vary) : 0;
    int n = 0;
    for (int i = 0; i < q->n_headers; i++)
        if (!vl || strncasecmp(q->headers[i], a->vary, vl) != 0 || q->headers[i][vl] != ':')
            hs[n++] = q->headers[i];
    char vh[RF_IDEM_KEY_CHARS_MAX + 64];
    for (int c = 0; c < a->copies; c++) {
        if (vl) {
            snprintf(vh, sizeof vh, "%s: probe-%s-r%d-c%d", a->vary, run, round, c + 1);
            hs[n] = vh;
        }
        if (!race_build(to, q->method, q->path, hs, n + (vl ? 1 : 0), q->body, q->body_len,
                        &msgs[c])) {
            for (int k = 0; k < c; k++) free(msgs[k].data);
            return false;
        }
    }
    return true;
}

static int run_rounds(const struct probe_args *a, const struct probe_req *q,
                      const struct race_target *to, struct tally *t) {
    struct race_msg msgs[RF_RACE_COPIES_MAX];
    struct race_resp rs[RF_RACE_COPIES_MAX];
    unsigned char rnd[6];
    char run[13];
    rf_random_id_bytes(rnd, sizeof rnd);
    for (int i = 0; i < 6; i++) snprintf(run + 2 * i, 3, "%02x", rnd[i]);
    for (int r = 1; r <= a->rounds; r++) {
        if (!build_round(a, q, to, run, r, msgs)) {
            cli_error("probe: the request is larger than %d bytes", RF_RACE_REQUEST_BYTES_MAX);
            return CLI_EXIT_USAGE;
        }
        char why[256];
        struct race_timing tm;
        int rc = race_run(msgs, a->copies, a->timeout_ms, rs, &tm, why, sizeof why);
        for (int c = 0; c < a->copies; c++) free(msgs[c].data);
        if (rc != 0) {
            cli_error("probe: %s", why);
            return CLI_EXIT_USAGE;
        }
        tally_round(t, rs, a->copies, r);
        t->spread_max_us = tm.spread_us > t->spread_max_us ? tm.spread_us : t->spread_max_us;
        t->apart += tm.lead_us < 0;
        for (int c = 0; c < a->copies; c++) race_resp_free(&rs[c]);
    }
    return 0;
}

static int probe_run(const struct probe_args *a, const struct probe_req *q) {
    const char *base = a->url ? a->url : q->base;
    struct race_target to;
    char why[256];
    if (!*base)
        return cli_usage_error("probe", "the request names no host: give an absolute URL, a "
                               "Host header, or --url");
    if (!race_target_parse(base, &to, why, sizeof why)) return cli_usage_error("probe", "%s", why);
    printf("racefree probe: %s http://%s%s%s, %d copies released together, %d round%s%s%s\n",
           q->method, to.hostport, to.prefix, q->path, a->copies, a->rounds,
           a->rounds == 1 ? "" : "s", a->vary ? ", a distinct " : "", a->vary ? a->vary : "");
    fflush(stdout);
    struct tally t = {0};
    t.lat = calloc((size_t)a->copies * (size_t)a->rounds, sizeof *t.lat);
    if (!t.lat) return cli_fail("probe", RF_ERR_NOMEM);
    int rc = run_rounds(a, q, &to, &t);
    if (rc == 0) {
        print_report(&t, a->copies, a->rounds);
        rc = verdict(&t, a->rounds);
    }
    for (int i = 0; i < t.n; i++) free(t.k[i].norm), free(t.k[i].sample), free(t.k[i].other);
    free(t.lat);
    return rc;
}

int cmd_probe(int argc, char **argv) {
    struct probe_args a = {.copies = 10, .rounds = 1, .timeout_ms = RF_RACE_TIMEOUT_MS_DEFAULT};
    int first = 0;
    int rc = cli_parse(&probe_spec, argc, argv, &a, &first);
    if (rc) return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    if (first < argc) return cli_usage_error("probe", "unexpected argument '%s'", argv[first]);
    if (!a.request) return cli_usage_error("probe", "--request FILE is required");
    if (a.vary && (!*a.vary || strpbrk(a.vary, ": \t\r\n")))
        return cli_usage_error("probe", "--vary takes a header name, got '%s'", a.vary);
    size_t len = 0;
    char *text = read_file(a.request, &len);
    if (!text)
        return cli_usage_error("probe", "cannot read '%s' (or it is larger than %d bytes)",
                               a.request, RF_PROBE_FILE_BYTES_MAX);
    struct probe_req q;
    char why[256];
    bool ok = probe_req_parse(text, len, &q, why, sizeof why);
    free(text);
    if (!ok) return cli_usage_error("probe", "%s: %s", a.request, why);
    rc = probe_run(&a, &q);
    probe_req_free(&q);
    return rc;
}
