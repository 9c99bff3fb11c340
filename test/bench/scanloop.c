/*
 * test/bench/scanloop.c - CPU time of one full scan of a kvs file, the
 * engine alone, repeated in one process (warm cache): what a full scan
 * through kvs_fdw costs below the FDW.
 *
 *   scanloop FILE make              writes FILE: 1,000,000 records, 8-byte
 *                                   big-endian keys, 100-byte values
 *   scanloop FILE scan [REPS] [shared]
 *                                   one untimed scan (reads the file into the
 *                                   cache), then REPS (default 9) timed ones;
 *                                   prints the minimum and median CPU time
 *   scanloop FILE scan|count [REPS] cold
 *                                   a new handle for each scan: its empty
 *                                   private cache reads and verifies every
 *                                   page (kvs_fdw's local mode)
 *   scanloop FILE count [REPS] [shared]
 *                                   the same with kvs_cursor_count: the
 *                                   records counted bucket by bucket, none
 *                                   copied (what kvs_fdw's count(*) runs)
 *
 * Each scan reads every record with kvs_cursor_next in read sections of 256
 * records (as kvs_fdw's batches; counting, a section ends at the first
 * bucket end at or past 256 records), checks the count, and is timed by the
 * thread's CPU clock (CLOCK_THREAD_CPUTIME_ID: time on the CPU, not time
 * waiting for it on a shared machine).  The cache is 65,536 frames (256
 * MiB, above the file): a private pool, or with `shared` a shared one
 * (kvs_pool_format in this process's memory: the locks and mapping table
 * kvs_fdw's shared mode goes through).  Built by `make -C test/bench
 * scanloop` into build/bench/scanloop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "kvs.h"

#define NREC 1000000L
#define FRAMES 65536u

static double cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int make_file(const char *path)
{
    kvs_options o;
    kvs *db;
    char v[101];
    long i;
    unlink(path);
    kvs_options_init(&o);
    o.flags = KVS_CREATE | KVS_NOSYNC;
    o.cache_pages = FRAMES;
    if (kvs_open(path, &o, &db) != KVS_OK) {
        fprintf(stderr, "scanloop: cannot create %s\n", path);
        return 1;
    }
    for (i = 1; i <= NREC; i++) {
        unsigned char k[8];
        int j;
        if (i % 10000 == 1 && kvs_begin(db, KVS_WRITE) != KVS_OK)
            break;
        for (j = 0; j < 8; j++)
            k[j] = (unsigned char)(i >> (56 - 8 * j));
        snprintf(v, sizeof v, "%0100ld", i * 7919);
        if (kvs_put(db, k, 8, v, 100, 0) != KVS_OK)
            break;
        if (i % 10000 == 0 && kvs_end(db) != KVS_OK)
            break;
    }
    if (i <= NREC) {
        fprintf(stderr, "scanloop: load failed at %ld: %s\n", i, kvs_errmsg(db));
        kvs_close(db);
        return 1;
    }
    return kvs_close(db) != KVS_OK;
}

/* one full scan: the records it saw, -1 on an error */
static long scan(kvs *db)
{
    kvs_cursor *c;
    kvs_slice k, v;
    long n = 0;
    int rc;
    if (kvs_cursor_open(db, &c) != KVS_OK || kvs_begin(db, KVS_READ) != KVS_OK)
        return -1;
    while ((rc = kvs_cursor_next(c, &k, &v)) == KVS_OK) {
        if (k.len != 8 || v.len != 100)
            rc = KVS_ECORRUPT;
        if (++n % 256 == 0 && (kvs_end(db) != KVS_OK || kvs_begin(db, KVS_READ) != KVS_OK))
            rc = KVS_EIO;
        if (rc != KVS_OK)
            break;
    }
    kvs_end(db);
    kvs_cursor_close(c);
    return rc == KVS_NOTFOUND ? n : -1;
}

/* one full scan by counting: the records it counted, -1 on an error */
static long count(kvs *db)
{
    kvs_cursor *c;
    uint64_t m;
    long n = 0, batch = 0;
    int rc;
    if (kvs_cursor_open(db, &c) != KVS_OK || kvs_begin(db, KVS_READ) != KVS_OK)
        return -1;
    while ((rc = kvs_cursor_count(c, &m)) == KVS_OK) {
        n += (long)m;
        batch += (long)m;
        if (batch >= 256) {
            batch = 0;
            if (kvs_end(db) != KVS_OK || kvs_begin(db, KVS_READ) != KVS_OK) {
                rc = KVS_EIO;
                break;
            }
        }
    }
    kvs_end(db);
    kvs_cursor_close(c);
    return rc == KVS_NOTFOUND ? n : -1;
}

int main(int argc, char **argv)
{
    kvs_options o;
    kvs *db;
    double t[64];
    int reps, r, counting, cold;
    if (argc < 3 || (strcmp(argv[2], "make") && strcmp(argv[2], "scan") && strcmp(argv[2], "count"))) {
        fprintf(stderr, "usage: scanloop FILE make | scanloop FILE scan|count [REPS] [shared|cold]\n");
        return 2;
    }
    if (!strcmp(argv[2], "make"))
        return make_file(argv[1]);
    counting = !strcmp(argv[2], "count");
    reps = argc > 3 ? atoi(argv[3]) : 9;
    if (reps < 1 || reps > 64)
        reps = 9;
    kvs_options_init(&o);
    o.flags = KVS_RDONLY;
    o.cache_pages = FRAMES;
    cold = argc > 4 && !strcmp(argv[4], "cold");
    if (argc > 4 && !strcmp(argv[4], "shared")) {
        size_t sz = kvs_pool_size(FRAMES, 4);
        void *mem = NULL;
        kvs_pool *pl;
        if (posix_memalign(&mem, 4096, sz) != 0 || kvs_pool_format(mem, sz, FRAMES, 4, KVS_CACHE_CLOCK, &pl) != KVS_OK) {
            fprintf(stderr, "scanloop: cannot make the shared pool\n");
            return 1;
        }
        o.pool = pl;
        o.flags = 0;
    }
    if (kvs_open(argv[1], &o, &db) != KVS_OK) {
        fprintf(stderr, "scanloop: cannot open %s\n", argv[1]);
        return 1;
    }
    for (r = -1; r < reps; r++) {
        double a;
        long n;
        /* cold: a new handle (an empty private cache) for every scan, which
         * then reads each page from the OS page cache and verifies it, as a
         * new backend's scan in kvs_fdw's local mode does */
        if (cold && r >= 0) {
            kvs_close(db);
            if (kvs_open(argv[1], &o, &db) != KVS_OK) {
                fprintf(stderr, "scanloop: cannot reopen %s\n", argv[1]);
                return 1;
            }
        }
        a = cpu_ms();
        n = counting ? count(db) : scan(db);
        if (n != NREC) {
            fprintf(stderr, "scanloop: the scan saw %ld records (expected %ld): %s\n", n, NREC,
                    kvs_errmsg(db));
            return 1;
        }
        if (r >= 0)
            t[r] = cpu_ms() - a;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    printf("%s of %ld records (%s pool%s): min %.1f ms, median %.1f ms CPU (%d scans)\n",
           counting ? "count" : "scan", NREC, o.pool ? "shared" : "private", cold ? ", cold" : "", t[0], t[reps / 2], reps);
    kvs_close(db);
    return 0;
}
