/*
 * files.h - whole-file helpers shared by the engine tests that compare a
 * file before and after an operation: copy one, hash one (xxh3 of all its
 * bytes).  Header-only, like tap.h.
 */
#ifndef KVS_TEST_FILES_H
#define KVS_TEST_FILES_H

#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>
#include <xxhash.h>

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

#endif
