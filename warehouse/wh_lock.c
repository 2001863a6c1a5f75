/* warehouse/wh_lock.c - locking between processes (and handles) that use one database
 * folder: a readers-writer lock on DIR/LOCK, plus the catalog generation that tells a handle
 * when to reload its catalog.
 *
 * Byte 0 of DIR/LOCK is locked (fcntl open-file-description locks, Linux's OFD locks) shared
 * by a statement that only reads (SELECT, COPY ... TO, the listings of `weir sql`) and
 * exclusively by every other statement, and by BEGIN until COMMIT or ROLLBACK. So writers run
 * one at a time, and a reader never sees part of a statement or of a transaction, nor opens a
 * part file that a merge, UPDATE or DELETE deleted: only a writer deletes parts, and never
 * while a statement reads. The locks belong to the open file (one per handle), so two handles
 * in one process exclude each other just like two processes, and the kernel drops them when a
 * process dies, kill -9 included. The kernel's wait has no timeout, so waiting polls, with a
 * sleep growing to 10 ms, until db->lock_timeout_ms passed; byte 1 is a turnstile that keeps
 * the polling fair (lock_wait).
 *
 * DIR/LOCK also holds 24 bytes: magic, the catalog generation and a dirty flag. A writer,
 * holding the lock and before it changes anything, increments the generation and sets dirty;
 * it clears dirty when its statement (or transaction) succeeded. A handle remembers the
 * generation of the catalog it loaded and reloads at its next statement when the stored one
 * differs, so a writer applies its change on top of the latest state (no lost updates) and a
 * reader sees the latest commit. Dirty still set means a writer died or failed: the next
 * writer recovers first (finishes a COMMIT from TXN.json, deletes unpublished parts). A reader
 * needs that only when TXN.json exists, as the published manifests are otherwise whole: it
 * then takes the lock exclusively to recover. The flag is not fsynced; after an operating
 * system crash no handle has a catalog loaded, and every load checks for TXN.json. */
#include "warehouse/wh_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mem.h"

#define LOCK_MAGIC    "WHLOCK01"
#define MAX_SLEEP_US  10000
#define LOCK_FILENAME "LOCK"

struct lock_hdr {
    char magic[8];
    uint64_t gen;
    uint64_t dirty;
};

static int lock_io(struct weir_err *err, const char *what, const struct wh_db *db)
{
    char eb[128];
    return err_set(err, WEIR_EIO, "%s '%s/" LOCK_FILENAME "': %s", what, db->dir,
                   err_errno(errno, eb, sizeof eb));
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An empty file (just created) is a clean generation 0; anything unrecognized is treated as
 * dirty, so the next writer recovers. */
static int hdr_read(struct wh_db *db, struct lock_hdr *h, struct weir_err *err)
{
    memset(h, 0, sizeof *h);
    ssize_t r = pread(db->lock_fd, h, sizeof *h, 0);
    if (r < 0)
        return lock_io(err, "cannot read", db);
    if (r == 0 || (r == (ssize_t)sizeof *h && !memcmp(h->magic, LOCK_MAGIC, 8))) {
        memcpy(h->magic, LOCK_MAGIC, 8);
        return 0;
    }
    memset(h, 0, sizeof *h);
    memcpy(h->magic, LOCK_MAGIC, 8);
    h->dirty = 1;
    return 0;
}

static int hdr_write(struct wh_db *db, const struct lock_hdr *h, struct weir_err *err)
{
    ssize_t w = pwrite(db->lock_fd, h, sizeof *h, 0);
    if (w != (ssize_t)sizeof *h) {
        if (w >= 0)
            errno = EIO;
        return lock_io(err, "cannot write", db);
    }
    return 0;
}

/* True when a COMMIT's roll-forward record exists (its writer died while publishing). */
static bool txn_pending(const struct wh_db *db)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/TXN.json", db->dir);
    return access(path, F_OK) == 0;
}

/* Byte-range locks on the open file (OFD locks): one per handle, inherited by nothing but
 * fork, dropped when the file is closed or the process dies. Non-blocking: `type` F_RDLCK,
 * F_WRLCK or F_UNLCK on byte `at`. Returns 0, 1 when another handle holds a conflicting lock,
 * or -1 with errno. */
static int range_lock(int fd, short type, off_t at)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = at;
    fl.l_len = 1;
    for (;;) {
        if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EACCES ? 1 : -1;
    }
}

static bool writable(const struct wh_db *db)
{
    int fl = fcntl(db->lock_fd, F_GETFL);
    return fl >= 0 && (fl & O_ACCMODE) != O_RDONLY;
}

/* Polls range_lock until it succeeds or the deadline passes (rc 1). */
static int poll_lock(struct wh_db *db, short type, off_t at, int64_t start)
{
    long sleep_us = 100;
    for (;;) {
        int rc = range_lock(db->lock_fd, type, at);
        if (rc <= 0)
            return rc;
        int64_t waited = mono_ms() - start;
        if (db->lock_timeout_ms > 0 && waited >= db->lock_timeout_ms)
            return 1;
        if (db->lock_timeout_ms > 0 && (db->lock_timeout_ms - waited) * 1000 < sleep_us)
            sleep_us = (long)((db->lock_timeout_ms - waited) * 1000) + 100;
        struct timespec ts = { 0, sleep_us * 1000 };
        nanosleep(&ts, NULL);
        sleep_us = sleep_us * 2 > MAX_SLEEP_US ? MAX_SLEEP_US : sleep_us * 2;
    }
}

/* Takes the database lock (WH_LOCK_SH or WH_LOCK_EX), waiting at most db->lock_timeout_ms. The
 * lock is byte 0; byte 1 is a turnstile that a waiter holds while it waits for byte 0, so
 * that a process which releases the lock and takes it again at once (a stream of INSERTs)
 * queues behind the waiter instead of winning every time, and new readers queue behind a
 * waiting writer. A handle that may only read takes no turnstile. */
static int lock_wait(struct wh_db *db, int op, struct weir_err *err)
{
    int64_t start = mono_ms();
    bool turn = writable(db);
    int rc = turn ? poll_lock(db, F_WRLCK, 1, start) : 0;
    if (rc == 0) {
        rc = poll_lock(db, op == WH_LOCK_EX ? F_WRLCK : F_RDLCK, 0, start);
        if (turn)
            range_lock(db->lock_fd, F_UNLCK, 1);
    }
    if (rc < 0)
        return lock_io(err, "cannot lock", db);
    if (rc > 0)
        return err_set(err, WEIR_EUNAVAIL,
                       "database is locked by another process (waited %g s for '%s/" LOCK_FILENAME
                       "'; SET lock_timeout to wait longer)",
                       (double)db->lock_timeout_ms / 1000, db->dir);
    return 0;
}

static void lock_drop(struct wh_db *db)
{
    range_lock(db->lock_fd, F_UNLCK, 0);
    db->lock_held = 0;
}

int wh__lock_open(struct wh_db *db, struct weir_err *err)
{
    char *path = xasprintf("%s/" LOCK_FILENAME, db->dir);
    bool ro = false;
    db->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (db->lock_fd < 0 && (errno == EACCES || errno == EROFS)) {
        /* A database the user may only read: reading works, writes fail on the header. */
        db->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
        ro = true;
    }
    free(path);
    if (db->lock_fd < 0)
        return lock_io(err, "cannot open", db);
    if (ro)
        return 0; /* nothing to recover with; statements load the catalog */
    /* Uncontended (the usual case): recover and load now, so a damaged catalog fails
     * wh_open. Otherwise the first statement loads it, under its own lock and timeout. */
    int lr = range_lock(db->lock_fd, F_WRLCK, 0);
    if (lr != 0)
        return lr > 0 ? 0 : lock_io(err, "cannot lock", db);
    db->lock_held = WH_LOCK_EX;
    struct lock_hdr h;
    int rc = hdr_read(db, &h, err);
    if (rc == 0)
        rc = wh__catalog_load(db, true, err);
    if (rc == 0) {
        /* Recovery may have finished a COMMIT: other handles must reload. */
        h.gen++;
        h.dirty = 0;
        rc = hdr_write(db, &h, err);
        db->gen = h.gen;
        db->loaded = rc == 0;
    }
    lock_drop(db);
    return rc;
}

int wh__lock(struct wh_db *db, bool write, struct weir_err *err)
{
    if (db->lock_held) /* a programmer error: keep what is held */
        return err_set(err, WEIR_EINTERNAL, "warehouse lock taken twice");
    struct lock_hdr h;
    int rc;
again:
    if ((rc = lock_wait(db, write ? WH_LOCK_EX : WH_LOCK_SH, err)) < 0)
        return rc;
    db->lock_held = write ? WH_LOCK_EX : WH_LOCK_SH;
    if ((rc = hdr_read(db, &h, err)) < 0)
        goto fail;
    bool reload = !db->loaded || h.gen != db->gen;
    bool pending = (h.dirty || reload) && txn_pending(db);
    if (!write && pending) {
        /* A COMMIT that a dead writer left half published: finish it as a writer would. */
        lock_drop(db);
        write = true;
        goto again;
    }
    bool recover = write && (h.dirty || pending);
    if (reload || recover) {
        db->loaded = false;
        if ((rc = wh__catalog_load(db, recover, err)) < 0)
            goto fail;
        db->loaded = true;
        db->gen = h.gen;
    }
    if (write) {
        h.gen++;
        h.dirty = 1;
        if ((rc = hdr_write(db, &h, err)) < 0)
            goto fail;
        db->gen = h.gen;
    }
    return 0;
fail:
    lock_drop(db);
    return rc;
}

void wh__unlock(struct wh_db *db, bool ok)
{
    if (!db->lock_held)
        return;
    if (db->lock_held == WH_LOCK_EX) {
        struct lock_hdr h = { .gen = db->gen, .dirty = 0 };
        memcpy(h.magic, LOCK_MAGIC, 8);
        /* If clearing dirty fails, the next writer merely recovers for nothing. */
        if (ok)
            hdr_write(db, &h, NULL);
        else
            db->loaded = false;
    }
    lock_drop(db);
}

void wh__lock_close(struct wh_db *db)
{
    if (db->lock_fd < 0)
        return;
    wh__unlock(db, true);
    close(db->lock_fd);
    db->lock_fd = -1;
}
