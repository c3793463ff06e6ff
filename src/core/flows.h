/*
 * flows.h - operations of one flow that another flow composes inside its own
 * transaction (an approval executes a grant, a transfer or a payout; later a
 * webhook fulfils a checkout the same way). Like every core operation they
 * never begin or commit.
 */
#ifndef RF_CORE_FLOWS_H
#define RF_CORE_FLOWS_H

#include "core/ledger.h"

rf_err entitlement_grant_tx(struct rf_tx *tx, const struct rf_grant_req *req,
                            struct rf_grant_res *res);

rf_err payout_create_tx(struct rf_tx *tx, const struct rf_payout_req *req, struct rf_payout *out);

/* ---- checkouts (checkouts.c), as the webhook ledger (webhooks.c) drives them */

/* What a verified provider event asks of a checkout. */
enum checkout_event { CHECKOUT_EV_PAID, CHECKOUT_EV_EXPIRED, CHECKOUT_EV_REFUNDED };

struct checkout_event_res {
    bool matched;                 /* a checkout was found */
    bool applied;                 /* its state changed (false: the transition is not
                                     allowed from the current state; recorded, no effect) */
    char checkout_id[RF_ID_BYTES];
    char status[16];              /* the checkout's status after the event */
};

/* Applies ev to the checkout named by checkout_id (non-NULL), else by
 * (provider, provider_ref): PAID moves pending -> paid and fulfils it
 * (grants its entitlement items, applies its credit items with idempotency
 * keys derived from the checkout) -> fulfilled, all in tx; EXPIRED moves
 * pending -> expired; REFUNDED moves fulfilled -> refunded, revoking its
 * grants and reversing its credits. No matching checkout: RF_OK with
 * matched false. Never begins or commits: the webhook ledger records the
 * event in the same transaction. */
rf_err checkout_apply_event(struct rf_tx *tx, enum checkout_event ev, const char *provider,
                            const char *checkout_id, const char *provider_ref,
                            struct checkout_event_res *out);

/* ---- the webhook event ledger (webhooks.c), as checkouts call it ------- */

/* What the ledger reads of a delivery's body (the provider's payload, after
 * its signature verified): the envelope and the checkout it names. */
enum ev_kind { EV_IGNORED = -1 };
struct parsed_event {
    char event_id[RF_ID_BYTES];
    char type[RF_WEBHOOK_TYPE_BYTES];
    int64_t created_ms;
    int kind; /* enum checkout_event, or EV_IGNORED */
    char checkout_id[RF_ID_BYTES];
    char provider_ref[RF_ID_BYTES];
};
/* Parses body as provider's ("stripe", or the generic scheme) payload into
 * ev, without the store; RF_ERR_WEBHOOK_PAYLOAD_INVALID when it is not one
 * (no id or type, or a handled type naming no checkout). Its own function
 * so tests/fuzz can feed it. */
rf_err webhook_event_parse(const char *provider, const char *body, size_t len,
                           struct parsed_event *ev);

/* Applies, in the providers' event order, the recorded events of provider
 * that wait for this checkout (named by checkout_id or provider_ref, either
 * may be NULL): unmatched ones (no checkout when they arrived) and deferred
 * ones (a refund delivered before the payment). For a checkout's creation or
 * provider-ref binding to call in its own transaction, after the row is
 * written; at most RF_WEBHOOK_MATCH_MAX events per call. status_out (may be
 * NULL) gets the checkout's status after the last one that matched. */
rf_err webhook_events_match(struct rf_tx *tx, const char *provider, const char *checkout_id,
                            const char *provider_ref, char status_out[RF_STATUS_BYTES]);

/* The ledger check's approvals invariant: every approved approval's action
 * ran, i.e. the effect its result names is in the store. Counts the approved
 * approvals checked and those whose effect is missing. */
rf_err approvals_check(struct rf_tx *tx, int64_t *checked, int64_t *unexecuted);

/* The ledger check's checkouts invariant (checkouts.c): every fulfilled
 * checkout has exactly its grants and credits, a refunded one its
 * reversals too, and nothing else carries a checkout's name. Counts the
 * checkouts checked and the problems found. */
rf_err checkouts_check(struct rf_tx *tx, int64_t *checked, int64_t *mismatched);

/* ---- leases (leases.c) ----------------------------------------------------- */

/* The fence every lease-protected write runs in its own transaction, before
 * its effect: RF_OK when token is the current token of lease name (the
 * highest issued for that name, on any node), else RF_ERR_STALE_LEASE. It
 * reads the lease row under a lock a takeover's acquire must wait for
 * (PostgreSQL: FOR SHARE/FOR UPDATE; SQLite: the one writer), so no takeover
 * commits between the check and tx's commit. */
rf_err lease_fence_tx(struct rf_tx *tx, const char *name, int64_t token);

/* ---- payout batches (payout_batches.c), as HTTP and the scheduler run them */

struct payout_batch_spec {
    const char *currency;      /* 3 letters */
    int64_t min_amount_minor;  /* >= 1: a wallet's available balance must reach it */
    const char *run_key;       /* the batch's identity (UNIQUE): a run with the key
                                  of an existing batch finishes or returns that batch */
    const char *holder;        /* who runs it, as the payouts lease's holder */
    const char *provider;      /* the payouts' provider (an id); NULL: "batch" */
};

/* Runs one batch to completion under the `payouts` lease: acquires it
 * (RF_ERR_LEASE_HELD when another holder has it), finishes any batch an
 * earlier run left unfinished (a crash), creates or finds (by run_key) this
 * batch and processes it in chunks of bounded size, each chunk one
 * transaction fenced with the lease's token (lease_fence_tx), then releases
 * the lease. Blocks the calling thread; never call it on an executor thread.
 * batch_id_out gets the batch's id (also when it already existed). */
rf_err payout_batch_run(rf *db, const struct payout_batch_spec *spec,
                        char batch_id_out[RF_ID_BYTES], struct rf_fault *fault);

/* ---- the job queue (jobs.c) ----------------------------------------------- */

/* Enqueues a job inside tx, so that an effect and its follow-up work commit
 * together (or neither does): a row of the job queue as POST /v1/jobs makes
 * it, with the same unique_key rule (while a job with that key in that queue
 * is not terminal, *created is false and out is that job). struct rf_job_req
 * and struct rf_job are racefree.h's. */
struct rf_job_req;
struct rf_job;
rf_err job_enqueue_tx(struct rf_tx *tx, const struct rf_job_req *req, struct rf_job *out,
                      bool *created);

/* Whether queue has a job a claim would take now (available, run_at
 * passed): a read, for a poller to skip the claim's write transaction while
 * there is nothing to claim. Only a hint: the claim decides. */
rf_err job_ready_tx(struct rf_tx *tx, const char *queue, bool *ready);

/* ---- notifications (notifications.c), as announcements fan out ----------- */

struct notification_spec {
    const char *user_id;
    const char *kind;
    const char *title;
    const char *body;
    const char *data_json;        /* NULL or a JSON object */
    const char *dedupe_key;       /* NULL: none; else unique per user */
    const char *announcement_id;  /* NULL: none; else UNIQUE (announcement_id, user_id) */
};

/* Creates the notification in tx, or finds the one that already has its
 * identity ((user_id, dedupe_key) or (announcement_id, user_id)), with one
 * INSERT ... ON CONFLICT DO NOTHING RETURNING and a read of the existing
 * row: *created says which, id_out gets its id. A fan-out chunk resumed after
 * a crash therefore makes no second notification for a recipient. */
rf_err notification_create_tx(struct rf_tx *tx, const struct notification_spec *spec,
                              char id_out[RF_ID_BYTES], bool *created);

#endif
