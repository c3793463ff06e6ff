/*
 * sqlite_faults.c - the fault VFS of sqlite_faults.h.
 *
 * It is the default (unix) VFS with one difference: each file it opens is
 * the unix VFS's own file object whose method table is swapped for a copy
 * with xWrite, xSync and xTruncate wrapped. The unix methods never look at
 * the table their file points to, so every other method runs unchanged on
 * the same object (no pass-through layer to keep in step with SQLite). The
 * unix VFS gives files different tables (a database file locks, a WAL or
 * journal does not): one copy per table, up to FAULTS_TABLES_MAX; a file
 * whose table finds no room keeps it, and is never failed.
 */
#include "store/sqlite_faults.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "base/assert.h"

#define FAULTS_VFS_NAME "racefree-faults"

static sqlite3_vfs *g_real;                 /* the default VFS */
static sqlite3_vfs g_vfs;                   /* it, with xOpen below */
#define FAULTS_TABLES_MAX 4

/* A copy of a unix method table with three methods wrapped; a swapped
 * file's pMethods points to its io, so the wrappers find the real table. */
struct io_table {
    sqlite3_io_methods io; /* first: the file's pMethods is &io */
    const sqlite3_io_methods *real;
};
static struct io_table g_tables[FAULTS_TABLES_MAX];
static pthread_mutex_t g_io_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_registered;

static atomic_int g_fault;         /* enum store_io_fault */
static atomic_llong g_budget;      /* bytes still written before the fault */

void store_io_fault(enum store_io_fault f, int64_t after_bytes) {
    RF_ASSERT(f >= STORE_IO_OK && f <= STORE_IO_FULL && after_bytes >= 0);
    atomic_store(&g_fault, STORE_IO_OK);
    atomic_store(&g_budget, after_bytes);
    atomic_store(&g_fault, (int)f);
}

/* The fault a write of n bytes meets now (STORE_IO_OK: none); the bytes
 * count against the budget either way, so one armed with a budget fails
 * the write that crosses it and every one after. */
static enum store_io_fault fault_for(int64_t n) {
    enum store_io_fault f = (enum store_io_fault)atomic_load(&g_fault);
    if (f == STORE_IO_OK) return f;
    return atomic_fetch_sub(&g_budget, n) >= n ? STORE_IO_OK : f;
}

#define REAL_IO(f) (((const struct io_table *)(const void *)(f)->pMethods)->real)

static int f_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off) {
    switch (fault_for(amt)) {
    case STORE_IO_FULL: return SQLITE_FULL;
    case STORE_IO_EIO: return SQLITE_IOERR_WRITE;
    default: return REAL_IO(f)->xWrite(f, buf, amt, off);
    }
}

/* A full disk still syncs what was written; a failing one does not. */
static int f_sync(sqlite3_file *f, int flags) {
    if (fault_for(0) == STORE_IO_EIO) return SQLITE_IOERR_FSYNC;
    return REAL_IO(f)->xSync(f, flags);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size) {
    if (fault_for(0) == STORE_IO_EIO) return SQLITE_IOERR_TRUNCATE;
    return REAL_IO(f)->xTruncate(f, size);
}

static int f_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                  int *out_flags) {
    (void)vfs;
    int rc = g_real->xOpen(g_real, name, f, flags, out_flags);
    if (rc != SQLITE_OK || !f->pMethods) return rc;
    pthread_mutex_lock(&g_io_mu);
    for (int i = 0; i < FAULTS_TABLES_MAX; i++) {
        struct io_table *t = &g_tables[i];
        if (!t->real) {
            t->real = f->pMethods;
            t->io = *t->real;
            t->io.xWrite = f_write;
            t->io.xSync = f_sync;
            t->io.xTruncate = f_truncate;
        }
        if (t->real == f->pMethods) {
            f->pMethods = &t->io;
            break;
        }
    }
    pthread_mutex_unlock(&g_io_mu);
    return SQLITE_OK;
}

static void faults_register(void) {
    g_real = sqlite3_vfs_find(NULL);
    if (!g_real) return;
    g_vfs = *g_real; /* the unix VFS's other methods ignore their VFS argument */
    g_vfs.zName = FAULTS_VFS_NAME;
    g_vfs.xOpen = f_open;
    g_vfs.pNext = NULL;
    g_registered = sqlite3_vfs_register(&g_vfs, 0) == SQLITE_OK;
}

const char *store_faults_vfs(void) {
    pthread_once(&g_once, faults_register);
    return g_registered ? FAULTS_VFS_NAME : NULL;
}
