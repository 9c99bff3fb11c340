/*
 * filelock.c - the section lock (filelock.h): flock with LOCK_NB in a loop,
 * so the host can interrupt the wait (a PostgreSQL backend must answer a
 * cancel while it waits), sleeping 50 us doubling up to 5 ms between tries.
 *
 * A shared pool's handles hold LOCK_SH on their file from open to close
 * (filelock_hold_shared).  A process outside that pool must not wait for
 * that hold forever, so when a try fails the loop asks who has the lock: if
 * LOCK_SH|LOCK_NB succeeds, only shared holders do, and if the header then
 * names an owner, the holders may be a host's handles.  That state lasting
 * FILELOCK_BUSY_GRACE_MS ends the wait with KVS_EBUSY; an exclusive holder
 * (another standalone write section: short) is waited for as always, and so
 * are the shared holders of a file the caller's own host owns (hooks->self:
 * a host's private handles, whose sections a preempted process may hold for
 * longer than the grace, never meet a pool of that host).  None
 * of this runs when the first try succeeds: no system call is added to an
 * uncontended section (but see the reader's probe below).
 */
#include <errno.h>
#include <sys/file.h>
#include <time.h>
#include "filelock.h"
#include "header.h"

static int would_block(int e)
{
    return e == EWOULDBLOCK || e == EAGAIN || e == EINTR;
}

/* The owner the header on disk names, as a hint: page 0 read without the
 * lock and without its checksum (it only decides between waiting on and
 * KVS_EBUSY); 0 for anything that is no version-4 header. */
static uint64_t owner_on_disk(const kvs_os *os, int fd)
{
    uint8_t p[PG_SIZE];
    if (os->pread(fd, p, PG_SIZE, 0) != PG_SIZE || memcmp(p + HD_MAGIC, KVS_MAGIC, 8) != 0 ||
        rd32(p + HD_VERSION) < 4)
        return 0;
    return rd64(p + HD_OWNER);
}

/* One try, never waiting.  0: locked.  1: not now; *busy_owner is nonzero
 * when only shared locks are held and the header names that owner.  Else a
 * KVS_E* code.  probe: the lock may be held for good (a writer always asks
 * on a failed try; a reader that knows of an owner tries LOCK_EX first and
 * keeps it as LOCK_SH, so that a host's hold -- compatible with LOCK_SH --
 * is noticed). */
static int try_once(const kvs_os *os, int fd, int exclusive, int probe, uint64_t self,
                    uint64_t *busy_owner, kvs_err *err)
{
    *busy_owner = 0;
    if (!exclusive && probe) {
        if (os->flock(fd, LOCK_EX | LOCK_NB) == 0) {
            /* nobody else has it: keep it shared.  flock converts by
             * unlocking first, so another process may slip in: then the
             * lock is gone and this try failed */
            if (os->flock(fd, LOCK_SH | LOCK_NB) == 0)
                return 0;
            return would_block(errno) ? 1 : kvs_seterrno(err, errno, 0, "flock failed");
        }
    } else if (os->flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) {
        return 0;
    }
    if (!would_block(errno))
        return kvs_seterrno(err, errno, 0, "flock failed");
    if (!exclusive && !probe)
        return 1;
    /* who has it?  LOCK_SH failing means an exclusive holder (a section
     * outside any pool: a pool's handles never hold LOCK_EX for long) */
    if (os->flock(fd, LOCK_SH | LOCK_NB) != 0)
        return would_block(errno) ? 1 : kvs_seterrno(err, errno, 0, "flock failed");
    *busy_owner = owner_on_disk(os, fd);
    /* the caller's own host has no pool on the file: its readers only */
    if (*busy_owner == self)
        *busy_owner = 0;
    /* a reader among readers only, no owner: it has what it asked for */
    if (!exclusive && *busy_owner == 0)
        return 0;
    (void)os->flock(fd, LOCK_UN);
    return 1;
}

static long ms_since(const struct timespec *t0)
{
    struct timespec now;
    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

int filelock_take(const kvs_os *os, int fd, int exclusive, const filelock_hooks *hooks,
                  kvs_err *err)
{
    long sleep_us = 50;
    int waiting = 0, busy = 0, rc;
    struct timespec busy_since;
    uint64_t owner;
    /* a reader probes only for a file it knows (or may find) owned by
     * another host than its own; a writer probes on every failed try (the
     * owner may be new since) */
    int probe = exclusive || (hooks->owner != 0 && hooks->owner != hooks->self);
    for (;;) {
        struct timespec ts;
        rc = try_once(os, fd, exclusive, probe, hooks->self, &owner, err);
        if (rc == 0) {
            rc = KVS_OK;
            break;
        }
        if (rc != 1)
            break;
        if (owner == 0) {
            busy = 0;
        } else if (!busy) {
            busy = 1;
            (void)clock_gettime(CLOCK_MONOTONIC, &busy_since);
        } else if (ms_since(&busy_since) >= FILELOCK_BUSY_GRACE_MS) {
            rc = kvs_seterr(err, KVS_EBUSY, 0,
                            "file is in use by the host with owner id %llu (a PostgreSQL cluster: its "
                            "system identifier), which holds it open; a handle outside that cluster's "
                            "shared pool cannot %s it until the cluster closes it",
                            (unsigned long long)owner, exclusive ? "write" : "read");
            break;
        }
        if (!waiting && hooks->lock_wait) {
            hooks->lock_wait(hooks->lock_wait_arg, 1);
            waiting = 1;
        }
        if (hooks->interrupted && hooks->interrupted(hooks->interrupt_arg)) {
            rc = kvs_seterr(err, KVS_EINTR, 0, "lock wait interrupted");
            break;
        }
        ts.tv_sec = 0;
        ts.tv_nsec = sleep_us * 1000;
        nanosleep(&ts, NULL);
        if (sleep_us < 5000)
            sleep_us *= 2;
    }
    if (waiting)
        hooks->lock_wait(hooks->lock_wait_arg, 0);
    return rc;
}

int filelock_release(const kvs_os *os, int fd, kvs_err *err)
{
    if (os->flock(fd, LOCK_UN) != 0)
        return kvs_seterrno(err, errno, 0, "flock(LOCK_UN) failed");
    return KVS_OK;
}

int filelock_hold_shared(const kvs_os *os, int fd, const filelock_hooks *hooks, kvs_err *err)
{
    filelock_hooks plain = *hooks;
    /* the pool's own handles share the hold: no probe, no KVS_EBUSY */
    plain.owner = 0;
    plain.self = 0;
    return filelock_take(os, fd, 0, &plain, err);
}

int filelock_unhold(const kvs_os *os, int fd, kvs_err *err)
{
    return filelock_release(os, fd, err);
}
