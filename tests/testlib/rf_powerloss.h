/*
 * rf_powerloss.h - a simulated power loss for SQLite stores (tests only).
 *
 * A process kill cannot show a missing fsync: the kernel's page cache keeps
 * every write() the dead process made. This SQLite VFS shim, registered over
 * the default (unix) VFS, records for the main database file and the WAL the
 * bytes each write overwrites since that file's last xSync, in an undo
 * journal next to it ("<file>-unsynced"). A power loss is then: kill the
 * process (SIGKILL, or _exit without closing), and rf_powerloss_apply() on
 * each file rolls back every write made after its last xSync, so the files
 * hold exactly what was synced, as after a power cut. SQLite's own crash
 * tests (test6.c) simulate the same thing by buffering unsynced writes.
 *
 * The undo journal is per file, not per handle: an fsync makes every
 * handle's writes to that inode durable, and racefree's reader connections
 * open the same files as its writer. One journal write happens per SQLite
 * write, under a per-file mutex; a clean close of the last handle removes
 * the journal (the simulation covers the life of the process only).
 */
#ifndef RF_POWERLOSS_H
#define RF_POWERLOSS_H

#include <stdint.h>

/* Registers the shim as SQLite's default VFS in this process (for a child
 * that is going to lose power). 0 on success, -1 on failure. */
int rf_powerloss_vfs_register(void);

/* Undoes every write to `path` after its last sync, truncates it to its
 * synced size and removes the journal. Returns how many writes (and
 * truncations) made since the last sync were dropped (0 when there is no
 * journal), or -1. Call it after the process that wrote through the shim is
 * dead. */
int64_t rf_powerloss_apply(const char *path);

/* rf_powerloss_apply on a database file and its WAL ("<path>-wal"); returns
 * the sum, or -1 when either failed. */
int64_t rf_powerloss_apply_db(const char *path);

#endif
