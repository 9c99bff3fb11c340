/*
 * files.h - whole-file helpers shared by the engine tests that compare a
 * file before and after an operation: copy one, hash one (xxh3 of all its
 * bytes), rewrite its header as an older format version.  Header-only, like
 * tap.h.  Also: copy and remove a directory tree (a database file with its
 * journal directory), open a database file (test_open, open_fresh), and
 * count the records a cursor returns (test_count), load numbered records
 * and their places in the scan order (load_numbered).
 */
#ifndef KVS_TEST_FILES_H
#define KVS_TEST_FILES_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include "kvs.h"
#include "tap.h"

static inline int copyfile(const char *from, const char *to)
{
    char buf[65536];
    ssize_t r;
    int a = open(from, O_RDONLY), b = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (a < 0 || b < 0)
        return -1;
    while ((r = read(a, buf, sizeof buf)) > 0)
        if (write(b, buf, (size_t)r) != r)
            return -1;
    close(a);
    return close(b);
}

static inline uint64_t hashfile(const char *p)
{
    unsigned char buf[65536];
    XXH3_state_t *st = XXH3_createState();
    ssize_t r;
    uint64_t h;
    int fd = open(p, O_RDONLY);
    XXH3_64bits_reset(st);
    if (fd >= 0) {
        while ((r = read(fd, buf, sizeof buf)) > 0)
            XXH3_64bits_update(st, buf, (size_t)r);
        close(fd);
    }
    h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return fd < 0 ? 0 : h;
}

/* Rewrites the header page of p as an engine of format version v wrote it
 * (version 1: no flags word; versions 1 and 2: no file id; versions 1 to 3:
 * no owner), resealed (xxh3 of bytes 8.. seeded with page 0); v above the
 * engine's makes a header of a version it does not know.  Offsets as in
 * src/engine/header.h: version 24, flags 120, file id 2176, owner 2184.
 * 1 on success. */
/* The little-endian u64 at off in the file at p (all ones if unreadable). */
static inline uint64_t file_le64(const char *p, off_t off)
{
    unsigned char b[8];
    uint64_t v = 0;
    int fd = open(p, O_RDONLY), i;
    if (fd < 0 || pread(fd, b, 8, off) != 8)
        memset(b, 0xff, 8);
    if (fd >= 0)
        close(fd);
    for (i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static inline int file_make_version(const char *p, int v)
{
    unsigned char pg[4096];
    uint64_t ck;
    int fd = open(p, O_RDWR), i, ok;
    if (fd < 0 || pread(fd, pg, sizeof pg, 0) != (ssize_t)sizeof pg)
        return 0;
    pg[24] = (unsigned char)v;
    if (v < 2)
        memset(pg + 120, 0, 4);
    if (v < 3)
        memset(pg + 2176, 0, 8);
    if (v < 4)
        memset(pg + 2184, 0, 8);
    if (v < 5)
        memset(pg + 2192, 0, 2460 - 2192);   /* journal LSN and path */
    ck = XXH3_64bits_withSeed(pg + 8, sizeof pg - 8, 0);
    for (i = 0; i < 8; i++)
        pg[i] = (unsigned char)(ck >> (8 * i));
    ok = pwrite(fd, pg, sizeof pg, 0) == (ssize_t)sizeof pg;
    return close(fd) == 0 && ok;
}

/* Removes a directory tree (or a file); 0 also when nothing was there. */
static inline int rmtree(const char *p)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    char sub[4096];
    if (lstat(p, &st) != 0)
        return 0;
    if (!S_ISDIR(st.st_mode))
        return unlink(p);
    if ((d = opendir(p)) != NULL) {
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                if (snprintf(sub, sizeof sub, "%s/%s", p, e->d_name) < (int)sizeof sub)
                    rmtree(sub);
            }
        closedir(d);
    }
    return rmdir(p);
}

/* Copies a directory tree (regular files and directories). */
static inline int copytree(const char *from, const char *to)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    char a[4096], b[4096];
    int rc = 0;
    if (lstat(from, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode))
        return copyfile(from, to);
    if (mkdir(to, 0755) != 0 || (d = opendir(from)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            if (snprintf(a, sizeof a, "%s/%s", from, e->d_name) >= (int)sizeof a ||
                snprintf(b, sizeof b, "%s/%s", to, e->d_name) >= (int)sizeof b || copytree(a, b) != 0)
                rc = -1;
        }
    closedir(d);
    return rc;
}

/* Opens the kvs file at p with these kvs_options flags, a cache of
 * cache_pages pages, journal j (NULL: the file's private one) and I/O table
 * os (NULL: kvs_os_posix()); NULL, and a TAP diagnostic, if that fails. */
static inline kvs *test_open(const char *p, int flags, uint32_t cache_pages, kvs_journal *j,
                             const kvs_os *os)
{
    kvs_options o;
    kvs *db = NULL;
    int rc;
    kvs_options_init(&o);
    o.flags = flags;
    o.journal = j;
    o.cache_pages = cache_pages;
    o.os = os;
    rc = kvs_open(p, &o, &db);
    if (rc)
        tap_diag("kvs_open(%s): %s: %s", p, kvs_strerror(rc), kvs_open_errmsg());
    return db;
}

/* A new, empty kvs file at p (a file there is removed first): test_open with
 * KVS_CREATE | flags. */
static inline kvs *open_fresh(const char *p, uint32_t cache_pages, int flags)
{
    unlink(p);
    return test_open(p, KVS_CREATE | flags, cache_pages, NULL, NULL);
}

/* Counts the records a new cursor on db returns until its end into *n (0 if
 * the cursor does not open) and closes it: KVS_OK when the cursor reached
 * its end, else the error of kvs_cursor_open or kvs_cursor_next. */
static inline int test_count(kvs *db, long *n)
{
    kvs_cursor *c;
    kvs_slice k, v;
    int rc;
    *n = 0;
    if ((rc = kvs_cursor_open(db, &c)) != KVS_OK)
        return rc;
    while ((rc = kvs_cursor_next(c, &k, &v)) == KVS_OK)
        (*n)++;
    kvs_cursor_close(c);
    return rc == KVS_NOTFOUND ? KVS_OK : rc;
}

/* The 12-byte key of numbered record i. */
static inline void numbered_key(char *buf, unsigned i) { sprintf(buf, "key-%08u", i); }

/* Puts records 0..n-1 (numbered_key, the 100-byte value mkval writes) in
 * one write section and sets order[i] to record i's place in the scan order
 * (kvs_key_order, read in that section): how many puts or the section
 * failed, 0 when all is well. */
static inline unsigned load_numbered(kvs *db, unsigned n, void (*mkval)(char *, unsigned),
                                     uint32_t *order)
{
    char key[32], val[128];
    unsigned i, bad = 0;
    if (kvs_begin(db, KVS_WRITE) != KVS_OK)
        return n;
    for (i = 0; i < n; i++) {
        numbered_key(key, i);
        mkval(val, i);
        if (kvs_put(db, key, 12, val, 100, 0) != KVS_OK)
            bad++;
        order[i] = kvs_key_order(db, key, 12);
    }
    return kvs_end(db) == KVS_OK ? bad : n;
}

#endif
