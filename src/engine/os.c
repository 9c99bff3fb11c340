/*
 * os.c - the default I/O table: thin wrappers over POSIX.  Every byte the
 * engine reads or writes goes through a kvs_os table so tests can swap in
 * one that fails, writes short, or reports ENOSPC (like SQLite's VFS).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kvs.h"

static int os_open(const char *path, int flags, mode_t mode) { return open(path, flags, mode); }
static int os_close(int fd) { return close(fd); }
static ssize_t os_pread(int fd, void *buf, size_t n, off_t off) { return pread(fd, buf, n, off); }
static ssize_t os_pwrite(int fd, const void *buf, size_t n, off_t off) { return pwrite(fd, buf, n, off); }
static int os_fsync(int fd) { return fsync(fd); }
static int os_ftruncate(int fd, off_t len) { return ftruncate(fd, len); }
static int os_flock(int fd, int op) { return flock(fd, op); }
static int os_link(const char *from, const char *to) { return link(from, to); }
static int os_unlink(const char *path) { return unlink(path); }
static int os_fstat(int fd, struct stat *st) { return fstat(fd, st); }
static int os_stat(const char *path, struct stat *st) { return stat(path, st); }
static int os_rename(const char *from, const char *to) { return rename(from, to); }

/* posix_fallocate returns the error rather than setting errno */
static int os_allocate(int fd, off_t off, off_t len)
{
    int rc;
    do
        rc = posix_fallocate(fd, off, len);
    while (rc == EINTR);
    if (rc == 0)
        return 0;
    errno = rc;
    return -1;
}

static off_t os_filesize(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    return st.st_size;
}

static const kvs_os posix_os = {
    os_open, os_close, os_pread, os_pwrite, os_fsync, os_ftruncate,
    os_filesize, os_flock, os_link, os_unlink, os_fstat, os_stat, os_rename,
    os_allocate
};

const kvs_os *kvs_os_posix(void)
{
    return &posix_os;
}
