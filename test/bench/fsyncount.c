/*
 * fsyncount.c - an LD_PRELOAD shim that counts the fsync() and fdatasync()
 * calls of every process that loads it (durable.sh: the postmaster and so
 * every backend), sorted by the file synced, into counters shared by all of
 * them: a file of FSYNCOUNT_SLOTS 64-bit counters named by $FSYNCOUNT_FILE,
 * mapped MAP_SHARED and bumped with atomic adds.  Slots: 0 the WAL
 * (a path with /pg_wal/), 1 the kvs journal (a path with "journal": the
 * cluster's kvs_fdw/journal, or a file's private one), 2 kvs files (*.kvs),
 * 3 anything else.
 *
 * Why not strace: tracing the postmaster's tree (even with --seccomp-bpf)
 * slowed kvs's commits many times more than the heap's, which made the tps
 * beside the counts meaningless.  Here the cost is a readlink() per fsync,
 * small beside the fsync itself.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FSYNCOUNT_SLOTS 4

static uint64_t *counters;      /* NULL: not mapped (no file named, or it failed) */

/* maps the counter file once per process (a forked child inherits the map) */
static void map_counters(void)
{
    const char *path = getenv("FSYNCOUNT_FILE");
    int fd;
    void *p;

    if (counters || !path)
        return;
    fd = open(path, O_RDWR);
    if (fd < 0)
        return;
    p = mmap(NULL, FSYNCOUNT_SLOTS * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p != MAP_FAILED)
        counters = p;
}

static int slot_of(int fd)
{
    char link[64], path[4096];
    ssize_t n;
    size_t len;

    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 3;
    path[n] = '\0';
    len = (size_t) n;
    if (strstr(path, "/pg_wal/"))
        return 0;
    if (strstr(path, "journal"))    /* the cluster's kvs_fdw/journal, or a file's own <file>-journal */
        return 1;
    if (len > 4 && strcmp(path + len - 4, ".kvs") == 0)
        return 2;
    return 3;
}

static void count(int fd)
{
    map_counters();
    if (counters)
        __atomic_fetch_add(&counters[slot_of(fd)], 1, __ATOMIC_RELAXED);
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int)) dlsym(RTLD_NEXT, "fsync");
    count(fd);
    return real(fd);
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int)) dlsym(RTLD_NEXT, "fdatasync");
    count(fd);
    return real(fd);
}
