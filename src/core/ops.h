/*
 * ops.h - the transaction functions the operation table (api.c) points at,
 * one section per flow file. Each has the table's shape: it never begins or
 * commits, reads its typed request and fills its typed result (zeroed
 * before every attempt).
 */
#ifndef RF_CORE_OPS_H
#define RF_CORE_OPS_H

#include "core/api.h"

/* entitlements.c */
rf_err op_entitlement_grant(struct rf_tx *tx, const void *req, void *res);
rf_err op_entitlement_revoke(struct rf_tx *tx, const void *req, void *res);
rf_err op_entitlement_get(struct rf_tx *tx, const void *req, void *res);
rf_err op_entitlement_list(struct rf_tx *tx, const void *req, void *res);
/* The names of enum rf_ent_status (NULL-terminated), in its order. */
extern const char *const ent_status_names[];

/* keys.c */
rf_err op_key_create(struct rf_tx *tx, const void *req, void *res);
rf_err op_key_revoke(struct rf_tx *tx, const void *req, void *res);
/* After a revoke committed: this process forgets the key at once. */
void key_revoked(rf *db, const void *req, const void *res);
rf_err op_key_get(struct rf_tx *tx, const void *req, void *res);
rf_err op_key_list(struct rf_tx *tx, const void *req, void *res);
/* The roles' names (NULL-terminated) and enum rf_role values, in bit order. */
#define KEY_ROLES_COUNT 4
extern const char *const key_role_names[KEY_ROLES_COUNT + 1];
extern const int key_role_values[KEY_ROLES_COUNT];

/* ledger.c: accounts */
rf_err op_account_create(struct rf_tx *tx, const void *req, void *res);
rf_err op_account_get(struct rf_tx *tx, const void *req, void *res);
rf_err op_account_entries(struct rf_tx *tx, const void *req, void *res);
rf_err op_account_list(struct rf_tx *tx, const void *req, void *res);

/* ledger.c: the names of enum rf_transfer_status, in its order,
 * NULL-terminated (a transfer's codec stores its status by name). */
extern const char *const ledger_transfer_statuses[];

/* ledger.c: transfers and credits */
rf_err op_transfer_create(struct rf_tx *tx, const void *req, void *res);
rf_err op_transfer_get(struct rf_tx *tx, const void *req, void *res);
rf_err op_transfer_post(struct rf_tx *tx, const void *req, void *res);
rf_err op_transfer_void(struct rf_tx *tx, const void *req, void *res);
rf_err op_credit_apply(struct rf_tx *tx, const void *req, void *res);
rf_err op_transfer_list(struct rf_tx *tx, const void *req, void *res);

/* payouts.c */
rf_err op_payout_create(struct rf_tx *tx, const void *req, void *res);
rf_err op_payout_attempt(struct rf_tx *tx, const void *req, void *res);
rf_err op_payout_succeeded(struct rf_tx *tx, const void *req, void *res);
rf_err op_payout_failed(struct rf_tx *tx, const void *req, void *res);
rf_err op_payout_get(struct rf_tx *tx, const void *req, void *res);
rf_err op_payout_list(struct rf_tx *tx, const void *req, void *res);
/* The names of enum rf_payout_status (NULL-terminated), in its order. */
extern const char *const payout_status_names[];

/* customers.c */
rf_err op_customer_bind(struct rf_tx *tx, const void *req, void *res);
rf_err op_customer_get(struct rf_tx *tx, const void *req, void *res);
rf_err op_customer_lookup(struct rf_tx *tx, const void *req, void *res);
rf_err op_customer_unbind(struct rf_tx *tx, const void *req, void *res);

/* approvals.c */
rf_err op_approval_create(struct rf_tx *tx, const void *req, void *res);
rf_err op_approval_approve(struct rf_tx *tx, const void *req, void *res);
rf_err op_approval_reject(struct rf_tx *tx, const void *req, void *res);
rf_err op_approval_cancel(struct rf_tx *tx, const void *req, void *res);
rf_err op_approval_get(struct rf_tx *tx, const void *req, void *res);
rf_err op_approval_list(struct rf_tx *tx, const void *req, void *res);
/* The names of enum rf_approval_status, in its order, NULL-terminated (the
 * action types' are core/actions.h's action_type_names). */
extern const char *const approval_status_names[];

/* checkouts.c */
rf_err op_checkout_create(struct rf_tx *tx, const void *req, void *res);
rf_err op_checkout_bind_ref(struct rf_tx *tx, const void *req, void *res);
rf_err op_checkout_get(struct rf_tx *tx, const void *req, void *res);
rf_err op_checkout_list(struct rf_tx *tx, const void *req, void *res);
rf_err op_checkout_cancel(struct rf_tx *tx, const void *req, void *res);
/* The create's rule across its body: each item's fields and shape. */
rf_err checkout_items_check(const void *req, struct rf_fault *fault);
/* The names of enum rf_checkout_status (NULL-terminated), in its order. */
extern const char *const checkout_status_names[];

/* webhook_secrets.c */
rf_err op_webhook_secret_set(struct rf_tx *tx, const void *req, void *res);
rf_err op_webhook_secret_rotate(struct rf_tx *tx, const void *req, void *res);
rf_err op_webhook_secret_list(struct rf_tx *tx, const void *req, void *res);

/* webhooks.c */
rf_err op_webhook_receive(struct rf_tx *tx, const void *req, void *res);
rf_err op_webhook_event_list(struct rf_tx *tx, const void *req, void *res);
/* "all", then the event statuses of enum rf_webhook_event_filter, NULL-terminated. */
extern const char *const webhook_event_filter_names[];

/* leases.c */
rf_err op_lease_acquire(struct rf_tx *tx, const void *req, void *res);
rf_err op_lease_renew(struct rf_tx *tx, const void *req, void *res);
rf_err op_lease_release(struct rf_tx *tx, const void *req, void *res);
rf_err op_lease_get(struct rf_tx *tx, const void *req, void *res);

/* payout_batches.c */
rf_err op_payout_batch_get(struct rf_tx *tx, const void *req, void *res);
/* The batch whose run_key is run_key: RF_OK with out filled, or
 * RF_ERR_PAYOUT_BATCH_NOT_FOUND (one read transaction). */
rf_err payout_batch_find(rf *db, const char *run_key, struct rf_payout_batch *out);
/* The names of enum rf_payout_batch_status (NULL-terminated), in its order. */
extern const char *const payout_batch_status_names[];
/* jobs.c */
rf_err op_job_enqueue(struct rf_tx *tx, const void *req, void *res);
rf_err op_job_claim(struct rf_tx *tx, const void *req, void *res);
rf_err op_job_heartbeat(struct rf_tx *tx, const void *req, void *res);
rf_err op_job_complete(struct rf_tx *tx, const void *req, void *res);
rf_err op_job_fail(struct rf_tx *tx, const void *req, void *res);
rf_err op_job_cancel(struct rf_tx *tx, const void *req, void *res);
rf_err op_job_get(struct rf_tx *tx, const void *req, void *res);
rf_err op_queue_stats(struct rf_tx *tx, const void *req, void *res);
/* The names of enum rf_job_status (NULL-terminated), in its order. */
extern const char *const job_status_names[];

/* dropin.c */
rf_err op_dropin_process(struct rf_tx *tx, const void *req, void *res);
rf_err op_dropin_match_record(struct rf_tx *tx, const void *req, void *res);
rf_err op_dropin_match_list(struct rf_tx *tx, const void *req, void *res);

/* notifications.c */
rf_err op_notification_create(struct rf_tx *tx, const void *req, void *res);
rf_err op_notification_get(struct rf_tx *tx, const void *req, void *res);
rf_err op_notification_list(struct rf_tx *tx, const void *req, void *res);
rf_err op_notification_unread_count(struct rf_tx *tx, const void *req, void *res);
rf_err op_notification_read(struct rf_tx *tx, const void *req, void *res);
rf_err op_notification_unread(struct rf_tx *tx, const void *req, void *res);
rf_err op_notification_read_all(struct rf_tx *tx, const void *req, void *res);
/* announcements.c */
rf_err op_announcement_create(struct rf_tx *tx, const void *req, void *res);
rf_err op_announcement_get(struct rf_tx *tx, const void *req, void *res);
rf_err op_announcement_retry_failed(struct rf_tx *tx, const void *req, void *res);
/* The names of enum rf_announcement_state (NULL-terminated), in its order. */
extern const char *const announcement_state_names[];

#endif
