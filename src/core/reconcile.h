/*
 * reconcile.h - the reconciliation document as a JSON value, for the HTTP
 * layer to answer without a round trip through text (rf_reconcile_json is
 * the same document as a string, for the CLI and embedders).
 */
#ifndef RF_CORE_RECONCILE_H
#define RF_CORE_RECONCILE_H

#include <jansson.h>

#include "racefree.h"

/* A new reference; README "Reconcile" documents its shape. */
json_t *reconcile_json(const struct rf_reconcile *r);

#endif
