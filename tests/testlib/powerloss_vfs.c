/*
 * powerloss_vfs.c - the power-loss VFS shim and its undo (see rf_powerloss.h).
 *
 * Journal file "<path>-unsynced": an int64 synced size (the file's size at
 * its last xSync, or at the first open), then one record per write or
 * truncation since: {int64 offset, int64 length, length bytes of the old
 * content}. A record is appended BEFORE the write it undoes, so a process
 * killed between the two leaves a record whose undo is a no-op; a record cut
 * short by the kill belongs to a write that never happened and is ignored.
 * xSync holds the file's mutex across the real fsync and the journal reset,
 * so no write of another handle can slip between them unrecorded.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "testlib/rf_powerloss.h"

#define PL_FILES_MAX 16      /* journaled files open at once in one process */
#define PL_PATH_BYTES 512
#define PL_SUFFIX "-unsynced"

struct pl_node {
    char path[PL_PATH_BYTES];
    int refs;           /* open handles; 0: the slot is free */
    int jfd;
    int64_t jend;       /* where the next record goes */
    pthread_mutex_t mu; /* one writer of the file and its journal at a time */
};

struct pl_file {
    sqlite3_file base;
    struct pl_node *node; /* NULL: a file the shim passes through */
    sqlite3_file *real;   /* the unix VFS's file, right after this struct */
};

static sqlite3_vfs *g_real;
static sqlite3_vfs g_vfs;
static struct pl_node g_nodes[PL_FILES_MAX];
static pthread_mutex_t g_nodes_mu = PTHREAD_MUTEX_INITIALIZER;

#define REAL(f) (((struct pl_file *)(f))->real)
#define RM(f) (REAL(f)->pMethods)

static int full_pwrite(int fd, const void *buf, size_t n, off_t off) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, n -= (size_t)w, off += w;
    }
    return 0;
}

static int journal_path(const char *path, char *out, size_t cap) {
    return (size_t)snprintf(out, cap, "%s%s", path, PL_SUFFIX) < cap ? 0 : -1;
}

/* After a sync (or at the first open): nothing to undo, this size is synced. */
static int journal_reset(struct pl_node *n, sqlite3_file *real) {
    sqlite3_int64 size = 0;
    if (real->pMethods->xFileSize(real, &size) != SQLITE_OK) return -1;
    if (ftruncate(n->jfd, 0) != 0) return -1; /* killed here: nothing to undo, right */
    int64_t synced = size;
    if (full_pwrite(n->jfd, &synced, sizeof synced, 0) != 0) return -1;
    n->jend = (int64_t)sizeof synced;
    return 0;
}

/* Records the current content of [off, off + len) that exists in the file. */
static int journal_add(struct pl_node *n, sqlite3_file *real, int64_t off, int64_t len) {
    sqlite3_int64 size = 0;
    if (real->pMethods->xFileSize(real, &size) != SQLITE_OK) return -1;
    int64_t old = off >= size ? 0 : (off + len <= size ? len : size - off);
    char *buf = old > 0 ? malloc((size_t)old) : NULL;
    if (old > 0 && !buf) return -1;
    int rc = 0;
    if (old > 0 && real->pMethods->xRead(real, buf, (int)old, off) != SQLITE_OK) rc = -1;
    int64_t head[2] = {off, old};
    if (!rc) rc = full_pwrite(n->jfd, head, sizeof head, n->jend);
    if (!rc && old > 0) rc = full_pwrite(n->jfd, buf, (size_t)old, n->jend + (off_t)sizeof head);
    free(buf);
    if (!rc) n->jend += (int64_t)sizeof head + old;
    return rc;
}

static struct pl_node *node_find_or_make(const char *path, sqlite3_file *real) {
    struct pl_node *free_slot = NULL;
    for (int i = 0; i < PL_FILES_MAX; i++) {
        struct pl_node *n = &g_nodes[i];
        if (n->refs > 0 && strcmp(n->path, path) == 0) { n->refs++; return n; }
        if (n->refs == 0 && !free_slot) free_slot = n;
    }
    char jpath[PL_PATH_BYTES + sizeof PL_SUFFIX];
    if (!free_slot || strlen(path) >= PL_PATH_BYTES || journal_path(path, jpath, sizeof jpath))
        return NULL;
    struct pl_node *n = free_slot;
    n->jfd = open(jpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (n->jfd < 0) return NULL;
    if (journal_reset(n, real) != 0) { close(n->jfd); unlink(jpath); return NULL; }
    snprintf(n->path, sizeof n->path, "%s", path);
    n->refs = 1;
    return n;
}

/* The last handle's clean close: the process outlived its writes. */
static void node_release(struct pl_node *n) {
    pthread_mutex_lock(&g_nodes_mu);
    if (--n->refs == 0) {
        char jpath[PL_PATH_BYTES + sizeof PL_SUFFIX];
        close(n->jfd);
        if (journal_path(n->path, jpath, sizeof jpath) == 0) unlink(jpath);
    }
    pthread_mutex_unlock(&g_nodes_mu);
}

static int pl_close(sqlite3_file *f) {
    struct pl_file *p = (struct pl_file *)f;
    int rc = RM(f)->xClose(p->real);
    if (p->node) node_release(p->node);
    return rc;
}

static int pl_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off) {
    return RM(f)->xRead(REAL(f), buf, amt, off);
}

static int pl_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off) {
    struct pl_node *n = ((struct pl_file *)f)->node;
    if (!n) return RM(f)->xWrite(REAL(f), buf, amt, off);
    pthread_mutex_lock(&n->mu);
    int rc = journal_add(n, REAL(f), off, amt) ? SQLITE_IOERR_WRITE
                                               : RM(f)->xWrite(REAL(f), buf, amt, off);
    pthread_mutex_unlock(&n->mu);
    return rc;
}

static int pl_truncate(sqlite3_file *f, sqlite3_int64 size) {
    struct pl_node *n = ((struct pl_file *)f)->node;
    if (!n) return RM(f)->xTruncate(REAL(f), size);
    pthread_mutex_lock(&n->mu);
    sqlite3_int64 cur = 0;
    int rc = RM(f)->xFileSize(REAL(f), &cur);
    if (rc == SQLITE_OK && cur > size && journal_add(n, REAL(f), size, cur - size))
        rc = SQLITE_IOERR_TRUNCATE;
    if (rc == SQLITE_OK) rc = RM(f)->xTruncate(REAL(f), size);
    pthread_mutex_unlock(&n->mu);
    return rc;
}

static int pl_sync(sqlite3_file *f, int flags) {
    struct pl_node *n = ((struct pl_file *)f)->node;
    if (!n) return RM(f)->xSync(REAL(f), flags);
    pthread_mutex_lock(&n->mu);
    int rc = RM(f)->xSync(REAL(f), flags);
    if (rc == SQLITE_OK && journal_reset(n, REAL(f)) != 0) rc = SQLITE_IOERR_FSYNC;
    pthread_mutex_unlock(&n->mu);
    return rc;
}

/* ---- the rest passes through to the unix VFS's file ---------------------- */
static int pl_file_size(sqlite3_file *f, sqlite3_int64 *out) { return RM(f)->xFileSize(REAL(f), out); }
static int pl_lock(sqlite3_file *f, int l) { return RM(f)->xLock(REAL(f), l); }
static int pl_unlock(sqlite3_file *f, int l) { return RM(f)->xUnlock(REAL(f), l); }
static int pl_reserved(sqlite3_file *f, int *out) { return RM(f)->xCheckReservedLock(REAL(f), out); }
static int pl_fcntl(sqlite3_file *f, int op, void *arg) { return RM(f)->xFileControl(REAL(f), op, arg); }
static int pl_sector(sqlite3_file *f) { return RM(f)->xSectorSize(REAL(f)); }
static int pl_devchar(sqlite3_file *f) { return RM(f)->xDeviceCharacteristics(REAL(f)); }
static int pl_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **out) {
    return RM(f)->xShmMap(REAL(f), pg, sz, ext, out);
}
static int pl_shm_lock(sqlite3_file *f, int off, int n, int flags) {
    return RM(f)->xShmLock(REAL(f), off, n, flags);
}
static void pl_shm_barrier(sqlite3_file *f) { RM(f)->xShmBarrier(REAL(f)); }
static int pl_shm_unmap(sqlite3_file *f, int del) { return RM(f)->xShmUnmap(REAL(f), del); }

/* Version 2: WAL's shared memory, no xFetch (every read goes through xRead). */
static const sqlite3_io_methods g_io = {
    2, pl_close, pl_read, pl_write, pl_truncate, pl_sync, pl_file_size, pl_lock, pl_unlock,
    pl_reserved, pl_fcntl, pl_sector, pl_devchar, pl_shm_map, pl_shm_lock, pl_shm_barrier,
    pl_shm_unmap, NULL, NULL,
};

static int pl_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags) {
    (void)vfs;
    struct pl_file *p = (struct pl_file *)f;
    memset(p, 0, sizeof *p);
    p->real = (sqlite3_file *)(p + 1);
    int rc = g_real->xOpen(g_real, name, p->real, flags, out_flags);
    if (rc != SQLITE_OK) return rc; /* base.pMethods stays NULL: no xClose */
    if (name && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL))) {
        pthread_mutex_lock(&g_nodes_mu);
        p->node = node_find_or_make(name, p->real);
        pthread_mutex_unlock(&g_nodes_mu);
        if (!p->node) {
            fprintf(stderr, "powerloss vfs: cannot journal %s\n", name);
            p->real->pMethods->xClose(p->real);
            return SQLITE_CANTOPEN;
        }
    }
    p->base.pMethods = &g_io;
    return SQLITE_OK;
}

int rf_powerloss_vfs_register(void) {
    g_real = sqlite3_vfs_find(NULL);
    if (!g_real) return -1;
    /* The unix VFS's other methods ignore their sqlite3_vfs argument. */
    g_vfs = *g_real;
    g_vfs.zName = "rf-powerloss";
    g_vfs.szOsFile = (int)sizeof(struct pl_file) + g_real->szOsFile;
    g_vfs.xOpen = pl_open;
    g_vfs.pNext = NULL;
    for (int i = 0; i < PL_FILES_MAX; i++) pthread_mutex_init(&g_nodes[i].mu, NULL);
    return sqlite3_vfs_register(&g_vfs, 1) == SQLITE_OK ? 0 : -1;
}

/* ---- the power loss: undo what was not synced ------------------------------ */

static char *slurp(int fd, int64_t *len_out) {
    struct stat st;
    if (fstat(fd, &st) != 0) return NULL;
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) return NULL;
    ssize_t got = pread(fd, buf, (size_t)st.st_size, 0);
    if (got != st.st_size) { free(buf); return NULL; }
    *len_out = st.st_size;
    return buf;
}

/* Writes back the old content of every complete record, newest first. */
static int64_t undo_records(int fd, const char *j, int64_t len) {
    int64_t starts_max = len / 16 + 1, n = 0;
    int64_t *starts = malloc((size_t)starts_max * sizeof *starts);
    if (!starts) return -1;
    for (int64_t at = 8; at + 16 <= len; n++) {
        int64_t head[2];
        memcpy(head, j + at, sizeof head);
        if (head[1] < 0 || at + 16 + head[1] > len) break; /* cut short: never written */
        starts[n] = at;
        at += 16 + head[1];
    }
    for (int64_t i = n - 1; i >= 0; i--) {
        int64_t head[2];
        memcpy(head, j + starts[i], sizeof head);
        if (head[1] > 0 && full_pwrite(fd, j + starts[i] + 16, (size_t)head[1], head[0])) {
            free(starts);
            return -1;
        }
    }
    free(starts);
    return n;
}

int64_t rf_powerloss_apply(const char *path) {
    char jpath[PL_PATH_BYTES + sizeof PL_SUFFIX];
    if (journal_path(path, jpath, sizeof jpath)) return -1;
    int jfd = open(jpath, O_RDONLY | O_CLOEXEC);
    if (jfd < 0) return errno == ENOENT ? 0 : -1;
    int64_t len = 0, undone = 0;
    char *j = slurp(jfd, &len);
    close(jfd);
    if (!j) return -1;
    if (len >= 8) { /* shorter: killed inside a reset, after the fsync */
        int fd = open(path, O_RDWR | O_CLOEXEC);
        int64_t synced;
        memcpy(&synced, j, sizeof synced);
        undone = fd < 0 ? -1 : undo_records(fd, j, len);
        if (undone >= 0 && ftruncate(fd, synced) != 0) undone = -1;
        if (fd >= 0) close(fd);
    }
    free(j);
    if (undone >= 0) unlink(jpath);
    return undone;
}

int64_t rf_powerloss_apply_db(const char *path) {
    char wal[PL_PATH_BYTES];
    if ((size_t)snprintf(wal, sizeof wal, "%s-wal", path) >= sizeof wal) return -1;
    int64_t a = rf_powerloss_apply(path), b = rf_powerloss_apply(wal);
    return a < 0 || b < 0 ? -1 : a + b;
}
