/*
 * logbuf.h - lines for stderr, written in batches: the access log writes a
 * line per request, and a write(2) per line was one more system call on the
 * event loop for every request. Lines are kept in order in one bounded
 * buffer and written when it fills or when the owner flushes (the event
 * loop, before it waits for events again; the server, when it stops).
 */
#ifndef RF_LOGBUF_H
#define RF_LOGBUF_H

#include <stddef.h>

/* Appends line (len bytes, no newline: one is added); any thread. */
void rf_log_line(const char *line, size_t len);
/* Writes what is buffered; any thread. */
void rf_log_flush(void);

#endif
