/*
 * webhook_secrets.h - the accepted secrets of one provider, opened for the
 * signature check of one delivery (webhook_secrets.c), inside the
 * delivery's own transaction.
 */
#ifndef RF_CORE_WEBHOOK_SECRETS_H
#define RF_CORE_WEBHOOK_SECRETS_H

#include "core/webhook_sig.h"
#include "store/store.h"

struct webhook_secrets {
    int n; /* 1, or 2 during a rotation's overlap */
    struct webhook_secret_key keys[RF_WEBHOOK_SECRETS_MAX];
    char value[RF_WEBHOOK_SECRETS_MAX][RF_WEBHOOK_SECRET_CHARS_MAX * 4 + 1];
};

/* RF_ERR_WEBHOOK_PROVIDER_UNKNOWN when the provider has no secret;
 * RF_ERR_SECRETS_KEY_UNAVAILABLE without a key or when the sealed values do
 * not open under it. The caller wipes out when done. */
rf_err webhook_secrets_open(struct rf_tx *tx, const char *provider, struct webhook_secrets *out);
void webhook_secrets_wipe(struct webhook_secrets *s);

#endif
