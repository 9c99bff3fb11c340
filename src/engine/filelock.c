/*
 * filelock.c - the section lock (filelock.h): flock with LOCK_NB in a loop,
 * so the host can interrupt the wait (a PostgreSQL backend must answer a
 * cancel while it waits), sleeping 50 us doubling up to 5 ms between tries.
 */
#include <errno.h>
#include <sys/file.h>
#include <time.h>
#include "filelock.h"

int filelock_take(const kvs_os *os, int fd, int exclusive, const filelock_hooks *hooks,
                  kvs_err *err)
{
    int op = (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
    long sleep_us = 50;
    int waiting = 0, rc;
    for (;;) {
        struct timespec ts;
        if (os->flock(fd, op) == 0) {
            rc = KVS_OK;
            break;
        }
        if (errno != EWOULDBLOCK && errno != EAGAIN && errno != EINTR) {
            rc = kvs_seterrno(err, errno, 0, "flock failed");
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
