/*
 * engine.h - the adapter interface bench.c drives: one table of functions
 * per engine (kvs and each anchor), so every engine runs the very same
 * workload code.  Each adapter lives in its own eng_<name>.c and is compiled
 * in only when the engine's header is installed (see Makefile).
 */
#ifndef BENCH_ENGINE_H
#define BENCH_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BENCH_MAXKEY 256   /* longest key the bench makes (LMDB's limit is 511) */

typedef struct bench_conf {
    const char *path;        /* the data file (adapters may add lock files beside it) */
    uint64_t    n;           /* records the workload will load */
    uint32_t    klen, vlen;
    uint64_t    cache_bytes; /* cache budget for engines that have a cache setting */
    uint32_t    fillfactor;  /* kvs only; 0 = engine default */
    int         create;      /* 1: create a new file; 0: reopen the existing one */
    /* 1: the durable-commit workload (bench --commit): every write
     * begin..end must be on disk when end returns (fsync at commit, with
     * the engine's transactions where it has them); 0: no sync at commit */
    int         durable;
    /* 1: the load is told how many records it makes, as the anchors are
     * sized for N at open (kvs: kvs_reserve inside the load's write
     * section, timed with it); 0: bench --reserve off */
    int         reserve;
    /* 1: the load, replace and delete phases call the engine's hint hook
     * (below) with each key BENCH_HINT_AHEAD operations before its put or
     * delete; 0: bench --hint off */
    int         hint;
    /* kvs only: 1 = each section takes and drops the file lock and checks
     * for other writers (bench --lock section, engine kvs-section); 0 = the
     * handle holds the lock from open to close (KVS_EXCLUSIVE, the default) */
    int         lock_section;
} bench_conf;

/* Engine-specific work counters (kvs only for now). */
typedef struct engine_counters {
    uint64_t gets, chain_pages;     /* successful gets, bucket-chain pages they touched */
    uint64_t cache_hits, cache_reads, cache_evictions, cache_writes;
    uint64_t splits;
    /* file shape */
    uint64_t pages, buckets, overflow_pages, free_pages, dir_pages, records;
    double   load_factor;
} engine_counters;

#define ENG_WRITE 1
#define ENG_READ  0

typedef struct engine {
    const char *name;
    /* one line saying how the engine is configured for conf (cache, sync, tuning) */
    void  (*describe)(const bench_conf *c, char *buf, size_t len);
    /* returns a handle or NULL with a message in err */
    void *(*open)(const bench_conf *c, char *err, size_t errlen);
    /* a phase runs between begin and end: a section or transaction where the
     * engine has one (kvs, LMDB); may be NULL */
    int   (*begin)(void *h, int write);
    int   (*end)(void *h);
    /* insert or replace: 0 ok, -1 error */
    int   (*put)(void *h, const void *k, size_t kl, const void *v, size_t vl);
    /* 1 found (first min(8, vlen) value bytes copied to *stamp, length to *vlen),
     * 0 absent, -1 error */
    int   (*get)(void *h, const void *k, size_t kl, uint64_t *stamp, size_t *vlen);
    /* 1 deleted, 0 absent, -1 error */
    int   (*del)(void *h, const void *k, size_t kl);
    /* visits every record with the engine's own full-scan API; returns the
     * count (or -1) and XORs each value's first 8 bytes into *x */
    int64_t (*scan)(void *h, uint64_t *x);
    /* write everything and fsync: the one sync of the workload */
    int   (*sync)(void *h);
    int   (*close)(void *h);
    const char *(*errmsg)(void *h);
    /* optional */
    void  (*reset_counters)(void *h);
    int   (*counters)(void *h, engine_counters *out);
    /* optional, inside the load's write phase before its first put: size
     * the table for n records of klen/vlen (the anchors take their size
     * hint at open instead); 0 ok, -1 error */
    int   (*reserve)(void *h, uint64_t n, size_t klen, size_t vlen);
    /* optional: the key is put or deleted BENCH_HINT_AHEAD operations from
     * now (kvs: kvs_prefetch; the anchors have no such call).  A hint only:
     * no result, no error */
    void  (*hint)(void *h, const void *k, size_t kl);
} engine;
#define BENCH_HINT_AHEAD     16
#define BENCH_HINT_AHEAD_STR "16"

/* Fill the first min(8, vlen) bytes of *stamp from a value. */
static inline void copy_stamp(uint64_t *stamp, const void *v, size_t vl)
{
    const unsigned char *p = v;
    size_t i;
    if (vl >= 8) {
        memcpy(stamp, v, 8);   /* little-endian, as the stamp was written */
        return;
    }
    *stamp = 0;
    for (i = 0; i < vl; i++)
        *stamp |= (uint64_t)p[i] << (8 * i);
}

extern const engine engine_kvs, engine_kvs_section, engine_gdbm, engine_bdb, engine_kc, engine_lmdb, engine_tkrzw,
                    engine_sqlite;

/* fsync() and fdatasync() calls of this process so far, by every engine
 * (fsyncs.c wraps both) */
uint64_t bench_fsyncs(void);

#endif
