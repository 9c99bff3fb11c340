/*
 * filelock.h - the section lock: flock on the database file's descriptor,
 * shared for a read section, exclusive for a write section, waited for in a
 * loop that polls the host's interrupt callback and tells the host when a
 * wait begins and ends (kvs_options.interrupted / lock_wait).  Stateless:
 * the lock belongs to the descriptor.
 */
#ifndef KVS_FILELOCK_H
#define KVS_FILELOCK_H

#include "util.h"

/* The host's callbacks for a wait (kvs_options); any may be NULL. */
typedef struct filelock_hooks {
    int   (*interrupted)(void *arg);        /* nonzero: give up (KVS_EINTR) */
    void   *interrupt_arg;
    void  (*lock_wait)(void *arg, int waiting);  /* 1 when a wait begins, 0 when it ends */
    void   *lock_wait_arg;
} filelock_hooks;

/* Waits for the lock, polling hooks->interrupted; a wait that does not get
 * the lock at once is bracketed by lock_wait(arg, 1) and lock_wait(arg, 0),
 * whichever way it ends. */
int filelock_take(const kvs_os *os, int fd, int exclusive, const filelock_hooks *hooks,
                  kvs_err *err);
int filelock_release(const kvs_os *os, int fd, kvs_err *err);

#endif
