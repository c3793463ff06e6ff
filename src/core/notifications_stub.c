/*
 * notifications_stub.c - TEMPORARY: replaced by notifications.c at merge.
 *
 * A stand-in for notification_create_tx (core/flows.h) so that the
 * announcement fan-out builds and runs before notifications land: it stores
 * nothing and answers a deterministic id, "<announcement_id>:<user_id>",
 * with *created true. The fan-out's recipient rows are the delivery truth
 * its tests check; at merge they are re-pointed at real notifications.
 */
#include <stdio.h>

#include "base/assert.h"
#include "core/core.h"
#include "core/flows.h"

rf_err notification_create_tx(struct rf_tx *tx, const struct notification_spec *spec,
                              char id_out[RF_ID_BYTES], bool *created) {
    RF_ASSERT(tx && spec && spec->user_id && id_out && created);
    int n = snprintf(id_out, RF_ID_BYTES, "%.60s:%.60s",
                     spec->announcement_id ? spec->announcement_id : "", spec->user_id);
    RF_ASSERT(n > 0 && n < RF_ID_BYTES);
    *created = true;
    return RF_OK;
}
