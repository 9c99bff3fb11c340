/*
 * filelock.h - the section lock: flock on the database file's descriptor,
 * shared for a read section, exclusive for a write section, waited for in a
 * loop that polls the host's interrupt callback and tells the host when a
 * wait begins and ends (kvs_options.interrupted / lock_wait).  Stateless:
 * the lock belongs to the descriptor.
 *
 * Also the hold of a shared pool's handle (kvs.h, "A shared pool's
 * sections"): flock(LOCK_SH) from open to close, which keeps every process
 * outside that pool from writing the file.  Such a process is told so
 * (KVS_EBUSY) instead of waiting for good: see filelock_take.
 */
#ifndef KVS_FILELOCK_H
#define KVS_FILELOCK_H

#include "util.h"

/* filelock_hooks.owner when the caller has not read the header yet. */
#define FILELOCK_OWNER_UNKNOWN UINT64_MAX

/* The host's callbacks for a wait (kvs_options); any may be NULL.  owner:
 * the header's owner as the caller last read it (0 = none, the default of a
 * zeroed struct; FILELOCK_OWNER_UNKNOWN = not read yet).  self: the host the
 * caller belongs to (kvs_options.owner_id of a private-pool handle), 0 =
 * none: such a host runs no shared pool while its private handles are open,
 * so a file it owns is held by no pool, and its other shared holders are
 * read sections of the host's other handles, waited for as any lock. */
typedef struct filelock_hooks {
    int   (*interrupted)(void *arg);        /* nonzero: give up (KVS_EINTR) */
    void   *interrupt_arg;
    void  (*lock_wait)(void *arg, int waiting);  /* 1 when a wait begins, 0 when it ends */
    void   *lock_wait_arg;
    uint64_t owner;
    uint64_t self;
} filelock_hooks;

/* How long a file held shared by others, whose header names an owner, is
 * waited for before filelock_take gives up with KVS_EBUSY: a host's hold
 * lasts until it closes the file, another standalone reader's section only
 * a moment (README.md, "Processes outside the cluster"). */
#define FILELOCK_BUSY_GRACE_MS 200

/* Waits for the lock, polling hooks->interrupted; a wait that does not get
 * the lock at once is bracketed by lock_wait(arg, 1) and lock_wait(arg, 0),
 * whichever way it ends.  KVS_EBUSY instead of a wait for good: when the
 * file stays held shared by others for FILELOCK_BUSY_GRACE_MS and its header
 * names an owner other than hooks->self (a shared pool's handles hold it), a
 * writer -- and a reader whose hooks->owner is neither 0 nor hooks->self (it
 * probes for the exclusive lock first) -- gets KVS_EBUSY naming that owner. */
int filelock_take(const kvs_os *os, int fd, int exclusive, const filelock_hooks *hooks,
                  kvs_err *err);
int filelock_release(const kvs_os *os, int fd, kvs_err *err);

/* A shared pool's handle: LOCK_SH on fd until filelock_unhold or the
 * descriptor's close, waited for (with the hooks) while a process outside
 * the pool has a write section; never KVS_EBUSY. */
int filelock_hold_shared(const kvs_os *os, int fd, const filelock_hooks *hooks, kvs_err *err);
int filelock_unhold(const kvs_os *os, int fd, kvs_err *err);

#endif
