/*
 * reuse.c - space reuse and bounded memory.
 *
 *  1. Load N records (16-byte keys, 100-byte values; N = 1M by default),
 *     delete them all, load N different ones: print both file sizes and the
 *     ratio, and assert the second is within 1.10x of the first.  Why 1.10:
 *     deletes leave the bucket count (and the directory) as they are and put
 *     emptied overflow pages on the free list, so the second load needs no new
 *     bucket and takes its overflow pages from the free list; only the random
 *     spread of overflow pages differs between the two key sets (a few
 *     percent of the overflow pages, themselves a minority).  A free list that
 *     is not reused shows as ~2x.
 *  2. A 64 MiB value: round trip, replaced by another 64 MiB value, deleted;
 *     the freed chain shows on the free list and a new 64 MiB value reuses it
 *     (the file does not grow).
 *  3. Peak RSS (getrusage ru_maxrss) of a process loading N records with a
 *     1000-frame cache, measured at N/5 and at N records: it must not grow
 *     with the file (bound: +4 MiB, a thousand pages' worth of slack).
 *     Runs first, in its own child process, so nothing else inflates it.
 *
 *   reuse [-n RECORDS] [--big-mib M]
 */
#include "kvs.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char dir[] = "/tmp/kvs_reuse.XXXXXX";
static char path[600];
static long nrec = 1000000;
static size_t big_mib = 64;

static void key_of(char set, long i, char *k)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%c%015ld", set, i);
    memcpy(k, tmp, 16);
}
static void val_of(long i, unsigned char *v)
{
    int j;
    for (j = 0; j < 100; j++)
        v[j] = (unsigned char)(i * 7 + j);
}

static uint64_t fsize(void)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* put or delete records [from, to) of a set, in write sections of 1000 */
static int load(kvs *db, char set, long from, long to, int del)
{
    char k[16];
    unsigned char v[100];
    long i;
    int rc = KVS_OK;
    for (i = from; i < to && rc == KVS_OK; i++) {
        if ((i - from) % 1000 == 0 && (rc = kvs_begin(db, KVS_WRITE)) != KVS_OK)
            break;
        key_of(set, i, k);
        if (del)
            rc = kvs_delete(db, k, 16);
        else {
            val_of(i, v);
            rc = kvs_put(db, k, 16, v, 100, KVS_NOOVERWRITE);
        }
        if ((i - from) % 1000 == 999 || i == to - 1 || rc != KVS_OK) {
            int rc2 = kvs_end(db);
            if (rc == KVS_OK)
                rc = rc2;
        }
    }
    if (rc != KVS_OK)
        printf("# %s %c%ld: %s: %s\n", del ? "delete" : "put", set, i - 1, kvs_strerror(rc), kvs_errmsg(db));
    return rc;
}

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* ---- 3. peak memory (child) ----------------------------------------------------- */

/* 1000 frames (step 3 above); but the first sample (N/5 records, about
 * 215 bytes each) must already fill the cache, or the check would measure
 * the cache warming up rather than growth with the file: small runs (the
 * valgrind stage) use a cache half the size of that first file. */
static unsigned rss_frames(void)
{
    long pages = nrec / 5 * 215 / 4096 / 2;
    if (pages >= 1000)
        return 1000;
    return pages < 8 ? 8 : (unsigned)pages;
}
static void rss_child(int fd)
{
    kvs_options o;
    kvs *db;
    long r[3] = { 0, 0, 0 };
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    o.cache_pages = rss_frames();
    snprintf(path, sizeof path, "%s/rss.kvs", dir);
    if (kvs_open(path, &o, &db) == KVS_OK) {
        r[0] = maxrss_kib();
        if (load(db, 'r', 0, nrec / 5, 0) == KVS_OK) {
            r[1] = maxrss_kib();
            if (load(db, 'r', nrec / 5, nrec, 0) == KVS_OK)
                r[2] = maxrss_kib();
        }
        kvs_close(db);
    }
    unlink(path);
    if (write(fd, r, sizeof r) != sizeof r)
        _exit(1);
    _exit(0);
}

static void rss_test(void)
{
    int pfd[2], status;
    long r[3] = { 0, 0, 0 };
    pid_t pid;
    if (pipe(pfd) != 0)
        return;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        rss_child(pfd[1]);
    }
    close(pfd[1]);
    if (read(pfd[0], r, sizeof r) != sizeof r)
        r[2] = 0;
    close(pfd[0]);
    waitpid(pid, &status, 0);
    tap_diag("peak RSS with a %u-frame cache: %ld KiB after open, %ld KiB at %ld records, %ld KiB at %ld records",
           rss_frames(), r[0], r[1], nrec / 5, r[2], nrec);
    tap_ok(r[2] > 0 && r[2] - r[1] <= 4096,
           "peak RSS does not grow with the file: %ld KiB at %ld records, %ld KiB at %ld records (growth %ld KiB <= 4096)",
           r[1], nrec / 5, r[2], nrec, r[2] - r[1]);
}

/* ---- 1. load, delete all, load again ------------------------------------------------ */
static void reload_test(void)
{
    kvs_options o;
    kvs *db;
    kvs_stats st;
    uint64_t s1, s2, s3;
    double ratio;
    time_t t0 = time(NULL);
    int rc;

    snprintf(path, sizeof path, "%s/reuse.kvs", dir);
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    if (kvs_open(path, &o, &db) != KVS_OK) {
        tap_ok(0, "reuse: open: %s", kvs_open_errmsg());
        return;
    }
    rc = load(db, 'a', 0, nrec, 0);
    kvs_sync(db);
    s1 = fsize();
    kvs_stats_get(db, &st);
    printf("# after loading %ld records: %llu bytes (%.1f bytes/record), %llu buckets, %llu overflow pages, %llu free\n",
           nrec, (unsigned long long)s1, (double)s1 / (double)nrec, (unsigned long long)st.buckets,
           (unsigned long long)st.overflow_pages, (unsigned long long)st.free_pages);
    if (rc == KVS_OK)
        rc = load(db, 'a', 0, nrec, 1);
    kvs_sync(db);
    s3 = fsize();
    kvs_stats_get(db, &st);
    printf("# after deleting them all: %llu bytes, %llu records, %llu overflow pages, %llu free pages\n",
           (unsigned long long)s3, (unsigned long long)st.records,
           (unsigned long long)st.overflow_pages, (unsigned long long)st.free_pages);
    tap_ok(rc == KVS_OK && st.records == 0, "reuse: %ld loaded and deleted, 0 records left", nrec);
    if (rc == KVS_OK)
        rc = load(db, 'b', 0, nrec, 0);
    kvs_sync(db);
    s2 = fsize();
    kvs_stats_get(db, &st);
    printf("# after loading %ld different records: %llu bytes, %llu overflow pages, %llu free pages\n",
           nrec, (unsigned long long)s2, (unsigned long long)st.overflow_pages,
           (unsigned long long)st.free_pages);
    tap_ok(rc == KVS_OK && st.records == (uint64_t)nrec, "reuse: second load of %ld records", nrec);
    tap_ok(kvs_check(db) == KVS_OK, "reuse: kvs_check clean after the second load (%s)", kvs_errmsg(db));
    kvs_close(db);
    ratio = s1 ? (double)s2 / (double)s1 : 0;
    printf("# file size: first load %llu bytes, after delete-all + second load %llu bytes, ratio %.3f (%lds)\n",
           (unsigned long long)s1, (unsigned long long)s2, ratio, (long)(time(NULL) - t0));
    tap_ok(s1 > 0 && ratio <= 1.10, "reuse: second load's file is %.3fx the first (bound 1.10)", ratio);
    unlink(path);
}

/* ---- 2. a 64 MiB value ------------------------------------------------------------------ */
static void fill(unsigned char *b, size_t n, uint64_t seed)
{
    size_t i;
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (i = 0; i + 8 <= n; i += 8) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        memcpy(b + i, &s, 8);
    }
    for (; i < n; i++)
        b[i] = (unsigned char)i;
}

static void big_test(void)
{
    kvs_options o;
    kvs *db;
    kvs_slice v;
    kvs_stats st;
    size_t n = big_mib << 20;
    unsigned char *b = malloc(n);
    uint64_t s_one, s_two, s_del, s_again, chain, freed;
    int rc;

    snprintf(path, sizeof path, "%s/big.kvs", dir);
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    o.cache_pages = 64;
    if (!b || kvs_open(path, &o, &db) != KVS_OK) {
        tap_ok(0, "big: setup");
        free(b);
        return;
    }
    fill(b, n, 1);
    rc = kvs_put(db, "big", 3, b, n, 0);
    tap_ok(rc == KVS_OK, "a %zu MiB value is stored (%s)", big_mib, kvs_strerror(rc));
    kvs_close(db);
    s_one = fsize();
    kvs_open(path, &o, &db);
    rc = kvs_get(db, "big", 3, &v);
    tap_ok(rc == KVS_OK && v.len == n && memcmp(v.data, b, n) == 0,
           "the %zu MiB value reads back intact after reopen", big_mib);
    kvs_stats_get(db, &st);
    chain = st.value_pages;
    fill(b, n, 2);
    rc = kvs_put(db, "big", 3, b, n, 0);
    s_two = fsize();
    rc = rc ? rc : kvs_get(db, "big", 3, &v);
    tap_ok(rc == KVS_OK && v.len == n && memcmp(v.data, b, n) == 0,
           "replaced by another %zu MiB value, which reads back intact", big_mib);
    kvs_stats_get(db, &st);
    tap_ok(st.value_pages == chain,
           "replacing freed the old chain: %llu value pages, as before (%llu), %llu free pages",
           (unsigned long long)st.value_pages, (unsigned long long)chain,
           (unsigned long long)st.free_pages);
    rc = kvs_delete(db, "big", 3);
    kvs_stats_get(db, &st);
    s_del = fsize();
    freed = st.free_pages;
    tap_ok(rc == KVS_OK && st.value_pages == 0 && st.free_pages >= chain,
           "deleting it frees its chain: %llu value pages, %llu free pages (chain was %llu)",
           (unsigned long long)st.value_pages, (unsigned long long)st.free_pages,
           (unsigned long long)chain);
    fill(b, n, 3);
    rc = kvs_put(db, "big2", 4, b, n, 0);
    s_again = fsize();
    /* with the chain on the free list the file must not grow; had the engine
     * trimmed free pages off the end, it must at least stay under its peak */
    tap_ok(rc == KVS_OK && s_again <= (freed >= chain ? s_del : s_two),
           "a new %zu MiB value reuses the free pages: file %llu -> %llu bytes", big_mib,
           (unsigned long long)s_del, (unsigned long long)s_again);
    rc = kvs_check(db);
    tap_ok(rc == KVS_OK, "big: kvs_check clean (%s)", kvs_errmsg(db));
    printf("# %zu MiB value: file %llu bytes with one, %llu after replace, %llu after delete, %llu after a new one\n",
           big_mib, (unsigned long long)s_one, (unsigned long long)s_two,
           (unsigned long long)s_del, (unsigned long long)s_again);
    kvs_close(db);
    unlink(path);
    free(b);
}

int main(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            nrec = atol(argv[++i]);
        else if (!strcmp(argv[i], "--big-mib") && i + 1 < argc)
            big_mib = (size_t)atol(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [-n RECORDS] [--big-mib M]\n", argv[0]);
            return 2;
        }
    }
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    rss_test();
    reload_test();
    big_test();
    rmdir(dir);
    return tap_done();
}
