/*
 * announce.h - what announcements.c shares with the fan-out worker
 * (fanout.c) and the operation table: the chunk transaction and the
 * audience rule.
 */
#ifndef RF_CORE_ANNOUNCE_H
#define RF_CORE_ANNOUNCE_H

#include <stdbool.h>

#include "racefree.h"

struct rf_tx;

/* One chunk of an announcement's fan-out, as fanout_chunk_tx runs it. */
struct fanout_chunk {
    const char *id;         /* the announcement */
    int chunk;              /* 1..RF_FANOUT_CHUNK_MAX recipients */
    /* The test hook's choice: true makes this user's delivery fail. */
    bool (*fails)(void *arg, const char *user_id);
    void *fails_arg;
    bool more;              /* out: the audience or pending recipients remain */
};

/* Makes the next chunk's recipient rows (when the audience is not yet
 * exhausted), advances the cursor, and delivers up to chunk pending
 * recipients. Never begins or commits (core_write runs it). */
rf_err fanout_chunk_tx(struct rf_tx *tx, void *ctx);

/* The create's rule across its body: the audience object. */
rf_err announcement_audience_check(const void *req, struct rf_fault *fault);

#endif
