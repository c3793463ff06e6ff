/*
 * sqlite_faults.h - injected I/O errors and a full disk for SQLite stores,
 * for racefree's own fault tests (a handle opened with options.test_hooks
 * opens its files through this VFS; nothing else does).
 *
 * A disk that fills up or fails under a running server cannot be made
 * portably in a test (a small tmpfs needs root), so the VFS fails the
 * writes themselves, as the kernel would: once armed, after a budget of
 * bytes, every write of a database, WAL or journal file fails with
 * SQLITE_FULL (a full disk) or SQLITE_IOERR_WRITE (an I/O error, which also
 * fails fsync and truncate), until disarmed. Reads never fail, so the server
 * keeps serving what is committed.
 */
#ifndef RF_STORE_SQLITE_FAULTS_H
#define RF_STORE_SQLITE_FAULTS_H

#include <stdint.h>

enum store_io_fault { STORE_IO_OK = 0, STORE_IO_EIO, STORE_IO_FULL };

/* The name of the fault VFS, registered (not as the default) on the first
 * call over whatever VFS is the default then (a test's own default VFS
 * registered before, such as the power-loss shim, stays underneath); NULL
 * when it could not be. */
const char *store_faults_vfs(void);
/* Arms fault f after after_bytes more bytes were written (0: the next
 * write), process-wide for every file opened through the VFS; STORE_IO_OK
 * disarms. */
void store_io_fault(enum store_io_fault f, int64_t after_bytes);

#endif
