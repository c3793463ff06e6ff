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

/* keys.c */
rf_err op_key_create(struct rf_tx *tx, const void *req, void *res);
rf_err op_key_revoke(struct rf_tx *tx, const void *req, void *res);
rf_err op_key_list(struct rf_tx *tx, const void *req, void *res);
/* The roles' names (NULL-terminated) and enum rf_role values, in bit order. */
#define KEY_ROLES_COUNT 4
extern const char *const key_role_names[KEY_ROLES_COUNT + 1];
extern const int key_role_values[KEY_ROLES_COUNT];

/* ledger.c */

/* payouts.c */

/* customers.c */

/* approvals.c */

#endif
