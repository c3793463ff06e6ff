/*
 * cmd_torture.c - `racefree torture --url URL --key KEY [--scenario
 * NAME|all|list] [--clients N] [--rounds N] [--seed S]`: a black-box
 * harness a user points at a racefree deployment (one node, or several
 * nodes comma-separated in --url) to see that it is race-free there. Each
 * scenario (torture.h; a row of the table below) makes fresh data, releases
 * conflicting requests together, and checks its flow's invariant through
 * the API. The admin key makes the service and worker keys the run needs
 * (POST /v1/keys) and revokes them at the end.
 *
 * Output: a progress line per scenario on stderr, a VIOLATION line per
 * broken invariant on stdout, and the table at the end. Exit 0: every
 * invariant held and no 5xx; 1: a violation or a 5xx; 2: bad usage, or a
 * scenario could not run (no connection, a setup call refused).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "cli/cli.h"
#include "cli/torture.h"

struct torture_args {
    const char *url, *key, *scenario, *seed;
    int clients, rounds, timeout_ms;
};

static const struct cli_flag torture_flags[] = {
    {"url", "URL", "the deployment: http://HOST:PORT, or several nodes comma-separated (the "
     "requests of each race are spread over them); required; no TLS (use a plain-HTTP port or "
     "a local proxy)", NULL, 0, cli_set_str, offsetof(struct torture_args, url), 0, 0, false},
    {"key", "KEY", "an admin API key (it makes and finally revokes the service and worker keys "
     "of the run); required", "$RACEFREE_KEY", 0, cli_set_str,
     offsetof(struct torture_args, key), 0, 0, false},
    {"scenario", "NAME", "a scenario, several comma-separated, `all`, or `list` to name them",
     "all", 0, cli_set_str, offsetof(struct torture_args, scenario), 0, 0, false},
    {"clients", "N", "requests released together in each race", NULL, 16, cli_set_int,
     offsetof(struct torture_args, clients), 3, RF_TORTURE_CLIENTS_MAX, false},
    {"rounds", "N", "races per scenario, each on fresh data", NULL, 3, cli_set_int,
     offsetof(struct torture_args, rounds), 1, RF_TORTURE_ROUNDS_MAX, false},
    {"seed", "S", "the seed of every id the run makes: the same seed repeats the same run (on "
     "a store that has not seen it)", "random, printed", 0, cli_set_str,
     offsetof(struct torture_args, seed), 0, 0, false},
    CLI_RACE_TIMEOUT_FLAG(struct torture_args, "bound on each race's connections and answers"),
};

static const struct cli_spec torture_spec = {
    "torture", "",
    "Races every racefree flow on a running deployment and checks its invariants\n"
    "through the API: one grant, no double credit, no overdraft, one winner per\n"
    "binding, one terminal state per approval, each job once, one read_at, limits\n"
    "held. Each race releases its requests together (all sent but the last byte,\n"
    "then every last byte at once). Prints a table: requests raced, how many\n"
    "races had every request in flight before the first answer, conflicts\n"
    "provoked (409/412/422/429, replays, 200 \"already there\" next to a 201),\n"
    "violations (a broken invariant or a 5xx) and p50/p99 latency.\n"
    "Exit 0: no violation; 1: a violation or a 5xx; 2: bad usage or a scenario that\n"
    "could not run.",
    torture_flags, sizeof torture_flags / sizeof torture_flags[0]};

/* ---- the scenario table ------------------------------------------------------------ */

static const struct tt_scenario *scenarios[RF_TORTURE_SCENARIOS_MAX];
static int n_scenarios;

static void table_add(const struct tt_scenario *rows, int n) {
    RF_ASSERT(n_scenarios + n <= RF_TORTURE_SCENARIOS_MAX); /* a new row needs room */
    for (int i = 0; i < n; i++) scenarios[n_scenarios++] = &rows[i];
}

static void table_load(void) {
    if (n_scenarios) return;
    table_add(tt_access_scenarios, tt_access_count);
    table_add(tt_ledger_scenarios, tt_ledger_count);
    table_add(tt_flow_scenarios, tt_flow_count);
    table_add(tt_work_scenarios, tt_work_count);
}

static const struct tt_scenario *find_scenario(const char *name, size_t len) {
    for (int i = 0; i < n_scenarios; i++)
        if (strlen(scenarios[i]->name) == len && strncmp(scenarios[i]->name, name, len) == 0)
            return scenarios[i];
    return NULL;
}

/* The chosen scenarios into pick (in table order); false on an unknown name. */
static bool choose(const char *spec, bool *pick) {
    if (strcmp(spec, "all") == 0) {
        for (int i = 0; i < n_scenarios; i++) pick[i] = true;
        return true;
    }
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, ",");
        const struct tt_scenario *sc = find_scenario(p, len);
        if (!sc) {
            cli_usage_error("torture", "unknown scenario '%.*s' (see --scenario list)", (int)len,
                            p);
            return false;
        }
        for (int i = 0; i < n_scenarios; i++) pick[i] = pick[i] || scenarios[i] == sc;
        p += len + (p[len] == ',');
    }
    return true;
}

/* ---- keys of the run ------------------------------------------------------------------ */

static void revoke_keys(struct tt *t) {
    struct tt_stats s = {0};
    for (int i = 0; i < t->n_keys; i++) {
        char path[200];
        snprintf(path, sizeof path, "/v1/keys/%s", t->key_ids[i]);
        struct race_resp r;
        int st = tt_call(t, &s, &(struct tt_req){"DELETE", path, t->admin, 0, 0, 0, NULL}, &r);
        if (st != 204)
            fprintf(stderr, "racefree torture: revoking key %s: %d\n", t->key_ids[i], st);
        race_resp_free(&r);
    }
}

/* ---- the table --------------------------------------------------------------------------- */

static void print_row(const char *name, const struct tt_stats *s, int64_t p50, int64_t p99) {
    if (s->skipped || s->failed) {
        printf("%-18s %s: %s\n", name, s->failed ? "COULD NOT RUN" : "skipped", s->note);
        return;
    }
    char together[24];
    snprintf(together, sizeof together, "%d/%d", s->together, s->races);
    printf("%-18s %9d %9s %10d %11d %8.1f %8.1f\n", name, s->requests, together, s->conflicts,
           s->violations, (double)p50 / 1000.0, (double)p99 / 1000.0);
}

static int report(struct tt_stats *st, const bool *pick, uint64_t seed) {
    printf("\n%-18s %9s %9s %10s %11s %8s %8s\n", "scenario", "requests", "together",
           "conflicts", "violations", "p50 ms", "p99 ms");
    struct tt_stats total = {0};
    int64_t *all = NULL;
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < n_scenarios; i++) {
        if (!pick[i]) continue;
        struct tt_stats *s = &st[i];
        int n = s->n_lat;
        int64_t *grown = realloc(all, (size_t)(total.n_lat + n + 1) * sizeof *all);
        if (grown) all = grown, memcpy(all + total.n_lat, s->lat, (size_t)n * sizeof *all),
                   total.n_lat += n;
        print_row(scenarios[i]->name, s, race_percentile(s->lat, n, 50),
                  race_percentile(s->lat, n, 99));
        total.requests += s->requests, total.conflicts += s->conflicts;
        total.violations += s->violations, total.races += s->races, total.together += s->together;
        if (s->failed && rc == CLI_EXIT_OK) rc = CLI_EXIT_USAGE;
    }
    print_row("total", &total, race_percentile(all, total.n_lat, 50),
              race_percentile(all, total.n_lat, 99));
    free(all);
    printf("seed %" PRIu64 " (repeat this run with --seed %" PRIu64 ")\n", seed, seed);
    if (total.violations) rc = CLI_EXIT_FAIL;
    printf("result: %s\n", rc == CLI_EXIT_OK ? "no violations"
                           : rc == CLI_EXIT_FAIL ? "VIOLATIONS FOUND" : "incomplete");
    return rc;
}

/* ---- running ------------------------------------------------------------------------------- */

/* The seed's mark on the store: a lease named after the run, whose first
 * acquire ever gets token 1. Any other answer means this store has seen
 * the seed, and the same ids would find the earlier run's data (a grant
 * would answer 200, not 201): refused. Released at the end. */
static bool seed_fresh(struct tt *t, struct tt_stats *s, bool release) {
    char path[200];
    snprintf(path, sizeof path, "/v1/leases/%s-seed/%s", t->run, release ? "release" : "acquire");
    const char *body =
        release ? "{\"token\":1}" : "{\"holder\":\"racefree-torture\",\"ttl_ms\":60000}";
    int st = 0;
    json_t *j = tt_json(t, s, &(struct tt_req){"POST", path, t->admin, 0, body, 0, NULL}, &st);
    bool first = st == 201 && json_integer_value(json_object_get(j, "token")) == 1;
    json_decref(j);
    return first;
}

static int run_all(struct tt *t, const bool *pick, uint64_t seed) {
    struct tt_stats st[RF_TORTURE_SCENARIOS_MAX] = {0};
    struct tt_stats *setup = &st[0];
    if (!seed_fresh(t, setup, false)) {
        cli_error("torture: this deployment has already seen seed %" PRIu64 " (or refused the "
                  "lease %s-seed: %s): the same seed makes the same ids; pick another", seed,
                  t->run, setup->failed ? setup->note : "taken");
        return CLI_EXIT_USAGE;
    }
    if (!tt_make_key(t, setup, "service", t->service) ||
        !tt_make_key(t, setup, "worker", t->worker)) {
        cli_error("torture: could not make the run's keys with --key: %s", setup->note);
        revoke_keys(t);
        return CLI_EXIT_USAGE;
    }
    int n_picked = 0, k = 0;
    for (int i = 0; i < n_scenarios; i++) n_picked += pick[i];
    for (int i = 0; i < n_scenarios; i++) {
        if (!pick[i]) continue;
        fprintf(stderr, "racefree torture: [%d/%d] %s: %d rounds of %d clients ...", ++k, n_picked,
                scenarios[i]->name, t->rounds, t->clients);
        fflush(stderr);
        scenarios[i]->run(t, &st[i]);
        fprintf(stderr, " %d requests, %d conflicts, %d violations%s\n", st[i].requests,
                st[i].conflicts, st[i].violations,
                st[i].failed ? ", could not run" : st[i].skipped ? ", skipped" : "");
    }
    revoke_keys(t);
    seed_fresh(t, &(struct tt_stats){0}, true);
    int rc = report(st, pick, seed);
    for (int i = 0; i < n_scenarios; i++) free(st[i].lat);
    return rc;
}

static bool parse_nodes(struct tt *t, const char *urls) {
    char why[256], one[RF_RACE_URL_CHARS_MAX + 1];
    for (const char *p = urls; *p;) {
        size_t len = strcspn(p, ",");
        if (t->n_nodes == RF_RACE_TARGETS_MAX || len >= sizeof one) {
            cli_usage_error("torture", "--url: at most %d nodes of %d characters",
                            RF_RACE_TARGETS_MAX, RF_RACE_URL_CHARS_MAX);
            return false;
        }
        snprintf(one, sizeof one, "%.*s", (int)len, p);
        if (!race_target_parse(one, &t->nodes[t->n_nodes++], why, sizeof why)) {
            cli_usage_error("torture", "--url: %s", why);
            return false;
        }
        p += len + (p[len] == ',');
    }
    return t->n_nodes > 0;
}

/* "Z" and two letters, never one of the ISO 4217 codes that start with Z:
 * a payout batch of the run's currency pays only wallets torture made. */
static void pick_currency(struct tt *t) {
    static const char *const real[] = {"ZAR", "ZMK", "ZMW", "ZWD", "ZWG", "ZWL"};
    for (bool taken = true; taken;) {
        snprintf(t->currency, sizeof t->currency, "Z%c%c", 'A' + (int)(tt_rand(t) % 26),
                 'A' + (int)(tt_rand(t) % 26));
        taken = false;
        for (size_t i = 0; i < sizeof real / sizeof real[0]; i++)
            taken = taken || strcmp(t->currency, real[i]) == 0;
    }
}

static void list_scenarios(void) {
    for (int i = 0; i < n_scenarios; i++)
        printf("%-18s %s\n", scenarios[i]->name, scenarios[i]->about);
}

static bool seed_of(const char *text, uint64_t *seed) {
    if (!text) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        *seed =
            ((uint64_t)ts.tv_sec * 1000003u) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 20);
        *seed %= 1000000000000ULL; /* short enough to retype */
        return true;
    }
    char *end = NULL;
    *seed = strtoull(text, &end, 10);
    return *text && *end == '\0' && *text != '-';
}

int cmd_torture(int argc, char **argv) {
    struct torture_args a = {.clients = 16, .rounds = 3, .timeout_ms = RF_RACE_TIMEOUT_MS_DEFAULT,
                             .scenario = "all"};
    int first = 0;
    int rc = cli_parse(&torture_spec, argc, argv, &a, &first);
    if (rc) return rc == CLI_HELP_SHOWN ? CLI_EXIT_OK : rc;
    if (first < argc) return cli_usage_error("torture", "unexpected argument '%s'", argv[first]);
    table_load();
    if (strcmp(a.scenario, "list") == 0) return list_scenarios(), CLI_EXIT_OK;
    if (!a.key) a.key = getenv("RACEFREE_KEY");
    if (!a.url || !a.key || !*a.key)
        return cli_usage_error("torture", "--url and --key are required");
    static struct tt t; /* large (the nodes); one per process */
    memset(&t, 0, sizeof t);
    uint64_t seed = 0;
    bool pick[RF_TORTURE_SCENARIOS_MAX] = {false};
    if (!parse_nodes(&t, a.url) || !choose(a.scenario, pick)) return CLI_EXIT_USAGE;
    if (!seed_of(a.seed, &seed)) return cli_usage_error("torture", "--seed takes a decimal number");
    t.admin = a.key, t.clients = a.clients, t.rounds = a.rounds, t.timeout_ms = a.timeout_ms;
    t.rng = seed;
    snprintf(t.run, sizeof t.run, "tt%" PRIx64, seed);
    pick_currency(&t);
    printf("racefree torture: %d node%s, seed %" PRIu64 ", %d clients x %d rounds per scenario\n",
           t.n_nodes, t.n_nodes == 1 ? "" : "s", seed, t.clients, t.rounds);
    fflush(stdout);
    return run_all(&t, pick, seed);
}
