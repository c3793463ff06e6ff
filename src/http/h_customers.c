/*
 * h_customers.c - how a provider-customer binding renders (the only place
 * one becomes JSON). Bind (PUT), read by user (GET), reverse lookup by
 * customer (GET /v1/customers/{provider}/{customer_id}) and unbind (DELETE)
 * are operation routes run by h_op.c with this view, so every answer naming
 * a binding is the same shape.
 *
 * A binding is one-to-one per provider in both directions. PUT answers 201
 * when it bound now, 200 when exactly this binding exists, and 409
 * customer_binding_conflict otherwise, with the binding in the way named in
 * the problem body ("existing_customer_id": the user's customer,
 * "existing_user_id": the customer's user; the operation row's extras). The
 * library decides all three in one transaction, so a success never names
 * another customer. PUT and DELETE are idempotent by nature and take no
 * Idempotency-Key; DELETE answers 204 with no ETag, as the binding is gone.
 */
#include <stddef.h>

#include "http/respond.h"
#include "http/view.h"

static json_t *binding_json(const void *entity) {
    const struct rf_binding *b = entity;
    return json_pack("{s:s, s:s, s:s, s:o, s:I}", "provider", b->provider, "user_id", b->user_id,
                     "customer_id", b->customer_id, "created_at", rf_json_time(b->created_at_ms),
                     "version", (json_int_t)b->version);
}

_Static_assert(offsetof(struct rf_bind_res, binding) == 0, "a bind's result starts with it");
const struct rf_view rf_view_binding = {
    .json = binding_json,
    .version_offset = offsetof(struct rf_binding, version),
    .location_fmt = "/v1/users/%s/customers/%s",
    .location_offsets = {offsetof(struct rf_binding, user_id),
                         offsetof(struct rf_binding, provider)},
    .n_location = 2,
    .entity_size = sizeof(struct rf_binding),
};
