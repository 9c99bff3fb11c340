/*
 * tap.h - a tiny TAP producer for the engine's C tests.
 *
 * Every test program prints "ok N - name" / "not ok N - name" lines and a
 * final "1..N" plan, and exits non-zero if any check failed.  test/run counts
 * these lines across all suites.  Header-only so each test is one .c file.
 */
#ifndef KVS_TAP_H
#define KVS_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdint.h>
#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

static int tap_n, tap_failed;

/* The sizes a stage asks for, from KVS_TEST_QUICK: unset or empty 0 (the
 * release build: full sizes); 1 (the ASan + UBSan build, ~3x slower);
 * 2 (valgrind, ~50x slower: the smallest sizes a program keeps every one
 * of its checks meaningful at).  test/engine/run.sh sets 1 for ASan and 2
 * for valgrind.  A program that only asks whether KVS_TEST_QUICK is set
 * treats 1 and 2 alike. */
static inline int tap_quick(void)
{
    const char *e = getenv("KVS_TEST_QUICK");
    if (!e || !*e)
        return 0;
    return atoi(e) >= 2 ? 2 : 1;
}

static void tap_ok(int cond, const char *fmt, ...)
{
    va_list ap;
    tap_n++;
    if (!cond)
        tap_failed++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* A diagnostic line ("# ..."), ignored by counters, read by humans. */
static void tap_diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* Check that an engine call returned rc == want; names the call on failure. */
#define TAP_RC(call, want) do { \
        int tap_rc_ = (call); \
        tap_ok(tap_rc_ == (want), "%s == %s (got %d: %s)", #call, #want, \
               tap_rc_, kvs_strerror(tap_rc_)); \
    } while (0)

static int tap_done(void)
{
    printf("1..%d\n", tap_n);
    if (tap_failed)
        printf("# %d of %d checks failed\n", tap_failed, tap_n);
    fflush(stdout);
    return tap_failed ? 1 : 0;
}

/* xxh64 of the whole file at path, and its size: "byte for byte as before"
 * checks compare two of these. */
static inline uint64_t tap_file_hash(const char *path, off_t *size)
{
    static char buf[1 << 20];
    int fd = open(path, O_RDONLY);
    XXH64_state_t *st = XXH64_createState();
    ssize_t r;
    uint64_t h;
    *size = 0;
    XXH64_reset(st, 0);
    while (fd >= 0 && (r = read(fd, buf, sizeof buf)) > 0) {
        XXH64_update(st, buf, (size_t)r);
        *size += r;
    }
    if (fd >= 0)
        close(fd);
    h = XXH64_digest(st);
    XXH64_freeState(st);
    return h;
}

#endif
