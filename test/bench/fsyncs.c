/*
 * fsyncs.c - counts this process's fsync() and fdatasync() calls, whoever
 * makes them: kvs (linked in) and every anchor's shared library (the
 * executable's definitions take the place of libc's for all of them), so the
 * durable-commit workload can report fsyncs per commit for each engine and
 * show which commits were not durable at all.  Each wrapper makes the system
 * call itself.
 */
#define _GNU_SOURCE
#include "engine.h"

#include <sys/syscall.h>
#include <unistd.h>

static uint64_t nsyncs;

uint64_t bench_fsyncs(void)
{
    return nsyncs;
}

int fsync(int fd)
{
    nsyncs++;
    return (int)syscall(SYS_fsync, fd);
}

int fdatasync(int fd)
{
    nsyncs++;
    return (int)syscall(SYS_fdatasync, fd);
}
