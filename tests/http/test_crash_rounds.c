/*
 * test_crash_rounds - SIGKILL at random moments under keyed load, round
 * after round: nothing acknowledged is lost, nothing retried runs twice.
 *
 * CLIENTS client threads run keyed_load.h's scripts (credits, transfers and
 * entitlement grants, each request with its own Idempotency-Key) against a
 * `racefree serve`; the main thread kills the server with SIGKILL at a
 * random moment (a draw from the printed seed: RACEFREE_CRASH_SEED repeats
 * a run), restarts it on the same store, and does that ROUNDS times
 * (RACEFREE_CRASH_ROUNDS, default 20). A client whose request got no answer
 * sends it again, with the same key, until it is answered. Afterwards every
 * account holds exactly what its script adds up to (an acknowledged effect
 * lost, or a retried one applied twice, changes a sum), every user has
 * exactly its granted entitlements, the ledger's invariants hold and
 * `racefree reconcile` is clean.
 *
 * Each kill lands only after the clients got at least one answer from the
 * new server, so every round kills a server under load, and a kill between
 * a commit and its answer (the retry is then a replay) happens in some
 * rounds: the test prints how many retries were replays.
 */
#include <stdio.h>
#include <stdlib.h>

#include "keyed_load.h"

#define CLIENTS 6
#define ROUNDS_DEFAULT 20
#define KILL_AFTER_MS_MAX 250 /* a kill lands 0..this after the round's first answers */
#define ACKED_PER_ROUND 3     /* answers from the new server before its kill is armed */

static void test_sigkill_rounds(void **state)
{
    (void)state;
    uint64_t seed = kl_seed("test_crash_rounds");
    int rounds = kl_env_int("RACEFREE_CRASH_ROUNDS", ROUNDS_DEFAULT);
    uint64_t rng = seed;
    struct env e;
    env_start(&e, false, NULL);
    static struct kl_load l;
    kl_init(&l, &e, CLIENTS, seed);
    kl_start(&l);
    for (int r = 0; r < rounds; r++) {
        kl_wait_acked(&l, ACKED_PER_ROUND);
        rf_t_sleep_ms((int)kl_draw(&rng, KILL_AFTER_MS_MAX + 1));
        if (rf_server_kill(&e.srv) != 0)
            fail_msg("round %d: the server did not die of SIGKILL", r);
        if (rf_server_start(e.db, NULL, &e.srv) != 0)
            fail_msg("round %d: racefree serve did not restart on %s", r, e.db);
        kl_set_port(&l, e.srv.port);
    }
    kl_wait_acked(&l, ACKED_PER_ROUND); /* the last server serves too */
    kl_finish(&l);
    struct kl_totals t = kl_sum(&l);
    fprintf(stderr,
            "test_crash_rounds: %d kills; %lld requests acknowledged, %lld retries (%lld without "
            "an answer, %lld answered 503), %lld retries replayed an effect committed before "
            "the kill\n",
            rounds, (long long)t.ops, (long long)t.retries, (long long)t.no_answer,
            (long long)t.unavailable, (long long)t.replays);
    kl_check(&l);
    /* Not vacuous: the kills cut requests off. */
    assert_true(t.no_answer >= rounds);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
