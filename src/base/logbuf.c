/*
 * logbuf.c - the batched stderr lines of logbuf.h: one buffer of
 * RF_LOG_BUFFER_BYTES under one mutex. A line that does not fit is written
 * after what is buffered, so the order is kept; a line longer than the
 * buffer is written on its own.
 */
#include "base/logbuf.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/limits.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char buf[RF_LOG_BUFFER_BYTES];
static size_t used; /* guarded by mu */

/* A log that cannot be written is dropped: a full disk or a closed stderr
 * must not stop the server. */
static void write_all(const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

static void flush_locked(void) {
    write_all(buf, used);
    used = 0;
}

void rf_log_line(const char *line, size_t len) {
    RF_ASSERT(line && memchr(line, '\n', len) == NULL);
    pthread_mutex_lock(&mu);
    if (used + len + 1 > sizeof buf) flush_locked();
    if (len + 1 > sizeof buf) {
        write_all(line, len);
        write_all("\n", 1);
    } else {
        memcpy(buf + used, line, len);
        buf[used + len] = '\n';
        used += len + 1;
    }
    RF_ASSERT(used <= sizeof buf);
    pthread_mutex_unlock(&mu);
}

void rf_log_flush(void) {
    pthread_mutex_lock(&mu);
    if (used) flush_locked();
    pthread_mutex_unlock(&mu);
}
