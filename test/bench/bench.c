/*
 * bench.c - the engine-alone benchmark driver: the same workload, in the
 * same binary, through kvs and every anchor engine compiled in (engine.h).
 *
 * Workload (one run = one engine in its own forked process, so peak RSS is
 * that engine's and a crash is contained):
 *   load     N puts of new records (random key order)   one write phase
 *   sync     the one fsync of the workload (timed on its own)
 *   get      N gets of present keys (uniform or Zipfian) one read phase
 *   absent   N gets of keys never loaded                 one read phase
 *   replace  N puts over present keys (same distribution) one write phase
 *   get1     20000 gets, each in its own read section/transaction (what one
 *            SQL statement costs the FDW's local mode: lock, header check,
 *            unlock -- kvs-section; kvs, KVS_EXCLUSIVE, holds the lock)
 *   put1     5000 replaces, each in its own write section/transaction
 *   delete   N/2 deletes (every even record, random order)
 *   scan     full scan, counting and checking the N/2 remaining records
 *   close    close (writes back, syncs)
 *   reopen   open the file again (engine cache empty; OS page cache warm)
 *   cold     N gets of remaining keys right after reopening
 *   disk     close, drop the files from the OS page cache (fdatasync, then
 *            posix_fadvise DONTNEED: only our files, nobody else's), reopen,
 *            10000 gets: a cold start from the disk
 * Every get and the scan check the value's stamp, so a wrong answer is an
 * error, not a fast figure.  Key-choice sequences are computed before the
 * timers start.  Results: human tables on stdout (every line starts with
 * "# ", so TAP consumers treat them as comments) and tab-separated lines in
 * the -o file for the plot.  Exit status 0 only if every run passed its checks.
 *
 *   bench [-e kvs,gdbm,...] [-n N] [-s KLEN/VLEN] [-d uniform|zipf]
 *         [-c big|tenth] [-r REPS] [-f FILLFACTOR] [-t TMPDIR] [-o TSV] [-l LABEL]
 *         [--reserve on|off]   (off: kvs loads without kvs_reserve, splitting
 *                              from one bucket; the anchors keep their sizing)
 *         [--hint on|off]      (off: no engine is told its next keys; on, the
 *                              default: an engine with a hint hook, kvs's
 *                              kvs_prefetch, is given each key of the load,
 *                              replace and delete BENCH_HINT_AHEAD operations
 *                              early, made and hinted inside the timed phase)
 *         [--lock exclusive|section|both]  kvs's locking: exclusive (default:
 *                              KVS_EXCLUSIVE, the file lock held from open to
 *                              close, as the anchors take no lock at all),
 *                              section (a lock round trip and a check for
 *                              other writers per section), both (kvs, then
 *                              kvs-section, which is kvs with section locking,
 *                              in the same run; -e kvs-section names it too)
 *   bench --sweep 50:95:5 [-n N] [-s ..] [-t ..] [-o ..]   kvs fill-factor sweep
 *   bench --commit M [-e ..] [-n N] [-s ..] [-t ..] [-o ..] durable commits (below)
 *   bench --list                                          engines compiled in
 *
 * Durable commits (--commit M; without -e: kvs, sqlite, lmdb, bdb, the engines
 * with a durable mode): each engine opened for durable commits
 * (bench_conf.durable: fsync at commit, the engine's transactions where it
 * has them), N records loaded in one commit, then M commits of one put
 * each (a replace of a uniformly chosen key), timed: commits/s, and the
 * fsync()/fdatasync() calls per commit (fsyncs.c counts every engine's).
 * One process committing serially has no one to share an fsync with, so an
 * engine with fewer fsyncs than commits is labelled NOT DURABLE (that many
 * commits made none).  Then the file is closed, reopened and every key's
 * last committed value checked.
 */
#define _GNU_SOURCE
#include "engine.h"
#include "keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const engine *all_engines[] = {
#ifdef HAVE_KVS
    &engine_kvs,
#endif
#ifdef HAVE_GDBM
    &engine_gdbm,
#endif
#ifdef HAVE_BDB
    &engine_bdb,
#endif
#ifdef HAVE_KC
    &engine_kc,
#endif
#ifdef HAVE_LMDB
    &engine_lmdb,
#endif
#ifdef HAVE_TKRZW
    &engine_tkrzw,
#endif
#ifdef HAVE_SQLITE
    &engine_sqlite,
#endif
    NULL
};

enum { PH_LOAD, PH_SYNC, PH_GET, PH_ABSENT, PH_REPLACE, PH_GET1, PH_PUT1, PH_DELETE, PH_SCAN,
       PH_CLOSE, PH_REOPEN, PH_COLD, PH_DISK, NPH };
static const char *ph_name[NPH] = { "load", "sync", "get", "absent", "replace", "get1", "put1",
                                    "delete", "scan", "close", "reopen", "cold", "disk" };
/* phases reported as ops/s (others as seconds) */
static const int ph_rate[NPH] = { 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1 };
#define DISK_OPS 10000          /* disk: gets after the file left the OS page cache */
#define AUTOCOMMIT_OPS 20000    /* get1: one section/transaction per operation */
#define AUTOCOMMIT_PUTS 5000    /* put1: likewise (kvs pays a full flush per section) */

typedef struct result {
    int      ok;
    char     err[1024];
    char     settings[512];
    double   secs[NPH];
    uint64_t ops[NPH];
    uint64_t file_bytes;        /* after load + sync */
    uint64_t fsyncs;            /* --commit: fsyncs in the commit phase */
    uint64_t file_bytes_end;    /* after delete half + close */
    int      have_counters;
    double   pages_per_get, hit_get, pages_per_cold, hit_cold;
    uint64_t splits;
    engine_counters shape;      /* kvs: file shape after load + sync */
    long     base_rss_kb;       /* harness memory before the engine opened */
    long     maxrss_kb;         /* peak, filled in by the parent */
} result;

typedef struct opts {
    const engine *eng[16];
    int      neng;
    uint64_t n;
    uint32_t klen, vlen;
    int      zipf;
    int      cache_tenth;
    int      reps;
    uint32_t fillfactor;
    const char *tmpdir;
    const char *tsv;
    const char *label;
    int      sweep, sw_lo, sw_hi, sw_step;
    uint64_t commits;           /* --commit M */
    int      reserve;           /* --reserve on|off (default on) */
    int      hint;              /* --hint on|off (default on) */
    int      lock_section;      /* --lock section: kvs locks per section */
} opts;

/* Wall-clock time; BENCH_CLOCK=cpu in the environment measures the process's
 * CPU time instead, which is steadier for A/B experiments on a shared machine
 * (time spent waiting for a core is not counted; waiting for I/O is not
 * either, so never use it for figures that include I/O). */
static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t cache_bytes(const opts *o)
{
    uint64_t data = o->n * (uint64_t)(o->klen + o->vlen);
    if (o->cache_tenth)
        return data / 10 < (1u << 20) ? (1u << 20) : data / 10;
    return 2 * data + (UINT64_C(64) << 20);
}

static long vmrss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* removes dir and what is in it (an engine's log directory too) */
static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[4096];
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0 && errno == EISDIR)
            rm_dir(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Writes back and drops every file of dir from the OS page cache. */
static int drop_os_cache(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[4096];
    int bad = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        int fd;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        fd = open(p, O_RDONLY);
        if (fd < 0)
            continue;
        if (fdatasync(fd) != 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0)
            bad = 1;
        close(fd);
    }
    closedir(d);
    return bad ? -1 : 0;
}

#define FAIL(...) do { snprintf(r->err, sizeof r->err, __VA_ARGS__); goto out; } while (0)

/* Tells an engine with a hint hook (--hint on) that record k's key comes
 * BENCH_HINT_AHEAD operations from now. */
static void hint_key(const opts *o, const engine *e, void *h, uint64_t k)
{
    uint8_t key[BENCH_MAXKEY];
    if (!o->hint || !e->hint)
        return;
    make_key(k, key, o->klen);
    e->hint(h, key, o->klen);
}

/* The delete phase's next record to hint: the even records of perm, from
 * *j on (*j moves past it). */
static void hint_next_even(const opts *o, const engine *e, void *h, const uint32_t *perm,
                           uint64_t n, uint64_t *j)
{
    while (*j < n && (perm[*j] & 1))
        (*j)++;
    if (*j < n)
        hint_key(o, e, h, perm[(*j)++]);
}

/* puts records 0..n-1 (version 0) in one write section or transaction; 0 ok,
 * else -1 with r->err set */
static int load_records(const opts *o, const engine *e, void *h, uint8_t *val, result *r)
{
    uint8_t key[BENCH_MAXKEY];
    uint64_t i, stamp;

    if (e->begin && e->begin(h, ENG_WRITE) != 0) {
        snprintf(r->err, sizeof r->err, "begin: %s", e->errmsg(h));
        return -1;
    }
    if (o->reserve && e->reserve && e->reserve(h, o->n, o->klen, o->vlen) != 0) {
        snprintf(r->err, sizeof r->err, "reserve: %s", e->errmsg(h));
        return -1;
    }
    for (i = 0; i < BENCH_HINT_AHEAD && i < o->n; i++)
        hint_key(o, e, h, i);
    for (i = 0; i < o->n; i++) {
        if (i + BENCH_HINT_AHEAD < o->n)
            hint_key(o, e, h, i + BENCH_HINT_AHEAD);
        stamp = make_stamp(i, 0);
        make_key(i, key, o->klen);
        memcpy(val, &stamp, 8);
        if (e->put(h, key, o->klen, val, o->vlen) != 0) {
            snprintf(r->err, sizeof r->err, "load put %llu: %s", (unsigned long long)i, e->errmsg(h));
            return -1;
        }
    }
    if (e->end && e->end(h) != 0) {
        snprintf(r->err, sizeof r->err, "end: %s", e->errmsg(h));
        return -1;
    }
    return 0;
}

/* closes *h and forgets it (the handle is freed even when closing fails) */
static int close_handle(const engine *e, void **h)
{
    int rc = e->close(*h);
    *h = NULL;
    return rc;
}

/* Runs the whole workload for one engine; fills r. Runs in a child. */
static void run_workload(const opts *o, const engine *e, const char *dir, result *r)
{
    bench_conf c;
    char path[4096], err[400];
    void *h = NULL;
    uint64_t n = o->n, i, found, half, m, hj;
    uint32_t *seq_get = NULL, *seq_rep = NULL, *perm = NULL;
    uint8_t *ver = NULL, key[BENCH_MAXKEY], *val = NULL;
    uint64_t stamp, x, xexp;
    size_t vl;
    int64_t cnt;
    double t0;
    zipf z;
    int have_z = 0, rc;
    engine_counters ec;

    memset(r, 0, sizeof *r);
    memset(&c, 0, sizeof c);
    snprintf(path, sizeof path, "%s/data", dir);
    c.path = path;
    c.n = n;
    c.klen = o->klen;
    c.vlen = o->vlen;
    c.cache_bytes = cache_bytes(o);
    c.fillfactor = o->fillfactor;
    c.create = 1;
    c.reserve = o->reserve;
    c.hint = o->hint;
    c.lock_section = o->lock_section;
    e->describe(&c, r->settings, sizeof r->settings);

    seq_get = malloc(n * sizeof *seq_get);
    seq_rep = malloc(n * sizeof *seq_rep);
    perm = malloc(n * sizeof *perm);
    ver = calloc(n, 1);
    val = malloc(o->vlen + 8);
    if (!seq_get || !seq_rep || !perm || !ver || !val)
        FAIL("out of memory");
    if (o->zipf) {
        if (zipf_init(&z, n, 0.99, 42) != 0)
            FAIL("out of memory");
        have_z = 1;
    }
    make_sequence(seq_get, n, n, have_z ? &z : NULL, 1);
    make_sequence(seq_rep, n, n, have_z ? &z : NULL, 2);
    make_permutation(perm, n, 3);
    for (i = 0; i < o->vlen; i++)
        val[i] = (uint8_t)splitmix64(i);
    r->base_rss_kb = vmrss_kb();

    if (!(h = e->open(&c, err, sizeof err)))
        FAIL("open: %s", err);

#define BEGIN(w) do { if (e->begin && e->begin(h, w) != 0) FAIL("begin: %s", e->errmsg(h)); } while (0)
#define END()    do { if (e->end && e->end(h) != 0) FAIL("end: %s", e->errmsg(h)); } while (0)

    /* load */
    t0 = now();
    if (load_records(o, e, h, val, r) != 0)
        goto out;
    r->secs[PH_LOAD] = now() - t0;
    r->ops[PH_LOAD] = n;

    t0 = now();
    if (e->sync(h) != 0)
        FAIL("sync: %s", e->errmsg(h));
    r->secs[PH_SYNC] = now() - t0;
    r->ops[PH_SYNC] = 1;
    r->file_bytes = file_size(path);
    if (e->counters) {
        if (e->counters(h, &r->shape) != 0)
            FAIL("counters: %s", e->errmsg(h));
        r->splits = r->shape.splits;
    }

    /* gets of present keys */
    if (e->reset_counters)
        e->reset_counters(h);
    found = 0;
    t0 = now();
    BEGIN(ENG_READ);
    for (i = 0; i < n; i++) {
        uint64_t k = seq_get[i];
        make_key(k, key, o->klen);
        rc = e->get(h, key, o->klen, &stamp, &vl);
        if (rc < 0)
            FAIL("get: %s", e->errmsg(h));
        if (rc == 0 || (stamp & STAMP_ID_MASK) != k || vl != o->vlen)
            FAIL("get of record %llu: %s", (unsigned long long)k, rc ? "wrong value" : "not found");
        found++;
    }
    END();
    r->secs[PH_GET] = now() - t0;
    r->ops[PH_GET] = found;
    if (e->counters) {
        if (e->counters(h, &ec) != 0)
            FAIL("counters: %s", e->errmsg(h));
        r->have_counters = 1;
        r->pages_per_get = ec.gets ? (double)ec.chain_pages / ec.gets : 0;
        r->hit_get = ec.cache_hits + ec.cache_reads ?
            (double)ec.cache_hits / (ec.cache_hits + ec.cache_reads) : 0;
    }

    /* gets of absent keys */
    t0 = now();
    BEGIN(ENG_READ);
    for (i = 0; i < n; i++) {
        make_key(n + seq_get[i], key, o->klen);
        rc = e->get(h, key, o->klen, &stamp, &vl);
        if (rc < 0)
            FAIL("absent get: %s", e->errmsg(h));
        if (rc != 0)
            FAIL("absent key %llu found", (unsigned long long)(n + seq_get[i]));
    }
    END();
    r->secs[PH_ABSENT] = now() - t0;
    r->ops[PH_ABSENT] = n;

    /* replace */
    t0 = now();
    BEGIN(ENG_WRITE);
    for (i = 0; i < BENCH_HINT_AHEAD && i < n; i++)
        hint_key(o, e, h, seq_rep[i]);
    for (i = 0; i < n; i++) {
        uint64_t k = seq_rep[i];
        if (i + BENCH_HINT_AHEAD < n)
            hint_key(o, e, h, seq_rep[i + BENCH_HINT_AHEAD]);
        stamp = make_stamp(k, 1);
        make_key(k, key, o->klen);
        memcpy(val, &stamp, 8);
        if (e->put(h, key, o->klen, val, o->vlen) != 0)
            FAIL("replace put: %s", e->errmsg(h));
        ver[k] = 1;
    }
    END();
    r->secs[PH_REPLACE] = now() - t0;
    r->ops[PH_REPLACE] = n;

    /* one section per operation */
    m = n < AUTOCOMMIT_OPS ? n : AUTOCOMMIT_OPS;
    t0 = now();
    for (i = 0; i < m; i++) {
        uint64_t k = seq_get[i];
        make_key(k, key, o->klen);
        BEGIN(ENG_READ);
        rc = e->get(h, key, o->klen, &stamp, &vl);
        if (rc != 1 || (stamp & STAMP_ID_MASK) != k)
            FAIL("get1 of record %llu: %s", (unsigned long long)k, rc < 0 ? e->errmsg(h) : "wrong");
        END();
    }
    r->secs[PH_GET1] = now() - t0;
    r->ops[PH_GET1] = m;
    m = n < AUTOCOMMIT_PUTS ? n : AUTOCOMMIT_PUTS;
    t0 = now();
    for (i = 0; i < m; i++) {
        uint64_t k = seq_rep[n - 1 - i];
        stamp = make_stamp(k, 2);
        make_key(k, key, o->klen);
        memcpy(val, &stamp, 8);
        BEGIN(ENG_WRITE);
        if (e->put(h, key, o->klen, val, o->vlen) != 0)
            FAIL("put1: %s", e->errmsg(h));
        END();
        ver[k] = 2;
    }
    r->secs[PH_PUT1] = now() - t0;
    r->ops[PH_PUT1] = m;

    /* delete every even record, in random order */
    half = 0;
    t0 = now();
    BEGIN(ENG_WRITE);
    for (i = 0, hj = 0; i < BENCH_HINT_AHEAD; i++)
        hint_next_even(o, e, h, perm, n, &hj);
    for (i = 0; i < n; i++) {
        uint64_t k = perm[i];
        if (k & 1)
            continue;
        hint_next_even(o, e, h, perm, n, &hj);
        make_key(k, key, o->klen);
        rc = e->del(h, key, o->klen);
        if (rc != 1)
            FAIL("delete of record %llu: %s", (unsigned long long)k, rc ? e->errmsg(h) : "not found");
        half++;
    }
    END();
    r->secs[PH_DELETE] = now() - t0;
    r->ops[PH_DELETE] = half;

    /* full scan */
    xexp = 0;
    for (i = 1; i < n; i += 2)
        xexp ^= make_stamp(i, ver[i]);
    x = 0;
    t0 = now();
    BEGIN(ENG_READ);
    cnt = e->scan(h, &x);
    if (cnt < 0)
        FAIL("scan: %s", e->errmsg(h));
    END();
    r->secs[PH_SCAN] = now() - t0;
    r->ops[PH_SCAN] = (uint64_t)cnt;
    if ((uint64_t)cnt != n - half || x != xexp)
        FAIL("scan saw %lld records (expected %llu)%s", (long long)cnt,
             (unsigned long long)(n - half), x != xexp ? ", wrong values" : "");

    /* close, reopen, cold gets */
    t0 = now();
    rc = e->close(h);
    h = NULL;
    if (rc != 0)
        FAIL("close failed");
    r->secs[PH_CLOSE] = now() - t0;
    r->ops[PH_CLOSE] = 1;
    r->file_bytes_end = file_size(path);
    c.create = 0;
    t0 = now();
    if (!(h = e->open(&c, err, sizeof err)))
        FAIL("reopen: %s", err);
    r->secs[PH_REOPEN] = now() - t0;
    r->ops[PH_REOPEN] = 1;
    if (e->reset_counters)
        e->reset_counters(h);
    t0 = now();
    BEGIN(ENG_READ);
    for (i = 0; i < n; i++) {
        uint64_t k = seq_get[i] | 1;
        if (k >= n)
            k -= 2;
        make_key(k, key, o->klen);
        rc = e->get(h, key, o->klen, &stamp, &vl);
        if (rc < 0)
            FAIL("cold get: %s", e->errmsg(h));
        if (rc == 0 || stamp != make_stamp(k, ver[k]) || vl != o->vlen)
            FAIL("cold get of record %llu: %s", (unsigned long long)k, rc ? "wrong value" : "not found");
    }
    END();
    r->secs[PH_COLD] = now() - t0;
    r->ops[PH_COLD] = n;
    if (e->counters) {
        if (e->counters(h, &ec) != 0)
            FAIL("counters: %s", e->errmsg(h));
        r->pages_per_cold = ec.gets ? (double)ec.chain_pages / ec.gets : 0;
        r->hit_cold = ec.cache_hits + ec.cache_reads ?
            (double)ec.cache_hits / (ec.cache_hits + ec.cache_reads) : 0;
    }
    rc = e->close(h);
    h = NULL;
    if (rc != 0)
        FAIL("close after cold failed");

    /* from the disk */
    if (drop_os_cache(dir) != 0)
        FAIL("could not drop the files from the OS page cache");
    if (!(h = e->open(&c, err, sizeof err)))
        FAIL("reopen: %s", err);
    m = n < DISK_OPS ? n : DISK_OPS;
    t0 = now();
    BEGIN(ENG_READ);
    for (i = 0; i < m; i++) {
        uint64_t k = seq_get[n - 1 - i] | 1;
        if (k >= n)
            k -= 2;
        make_key(k, key, o->klen);
        rc = e->get(h, key, o->klen, &stamp, &vl);
        if (rc != 1 || stamp != make_stamp(k, ver[k]))
            FAIL("disk get of record %llu: %s", (unsigned long long)k, rc < 0 ? e->errmsg(h) : "wrong");
    }
    END();
    r->secs[PH_DISK] = now() - t0;
    r->ops[PH_DISK] = m;
    rc = e->close(h);
    h = NULL;
    if (rc != 0)
        FAIL("final close failed");
    r->ok = 1;
out:
    if (h)
        e->close(h);
    if (have_z)
        zipf_free(&z);
    free(seq_get); free(seq_rep); free(perm); free(ver); free(val);
}

/* kvs fill-factor sweep: load, sync, N uniform gets; pages/get vs bytes/record. */
static void run_sweep_one(const opts *o, const engine *e, const char *dir, result *r)
{
    bench_conf c;
    char path[4096], err[400];
    void *h = NULL;
    uint64_t i, stamp;
    uint32_t *seq = NULL;
    uint8_t key[BENCH_MAXKEY], *val = NULL;
    size_t vl;
    double t0;
    engine_counters ec;

    memset(r, 0, sizeof *r);
    memset(&c, 0, sizeof c);
    snprintf(path, sizeof path, "%s/data", dir);
    c.path = path; c.n = o->n; c.klen = o->klen; c.vlen = o->vlen;
    c.cache_bytes = cache_bytes(o); c.fillfactor = o->fillfactor; c.create = 1;
    c.reserve = o->reserve;
    c.hint = o->hint;
    c.lock_section = o->lock_section;
    e->describe(&c, r->settings, sizeof r->settings);
    seq = malloc(o->n * sizeof *seq);
    val = malloc(o->vlen + 8);
    if (!seq || !val)
        FAIL("out of memory");
    make_sequence(seq, o->n, o->n, NULL, 1);
    for (i = 0; i < o->vlen; i++)
        val[i] = (uint8_t)splitmix64(i);
    if (!(h = e->open(&c, err, sizeof err)))
        FAIL("open: %s", err);
    t0 = now();
    if (load_records(o, e, h, val, r) != 0)
        goto out;
    r->secs[PH_LOAD] = now() - t0;
    r->ops[PH_LOAD] = o->n;
    if (e->sync(h) != 0)
        FAIL("sync: %s", e->errmsg(h));
    r->file_bytes = file_size(path);
    if (e->counters && e->counters(h, &r->shape) != 0)
        FAIL("counters: %s", e->errmsg(h));
    if (e->reset_counters)
        e->reset_counters(h);
    t0 = now();
    BEGIN(ENG_READ);
    for (i = 0; i < o->n; i++) {
        make_key(seq[i], key, o->klen);
        if (e->get(h, key, o->klen, &stamp, &vl) != 1 || (stamp & STAMP_ID_MASK) != seq[i])
            FAIL("get of record %u failed", seq[i]);
    }
    END();
    r->secs[PH_GET] = now() - t0;
    r->ops[PH_GET] = o->n;
    if (e->counters && e->counters(h, &ec) == 0) {
        r->have_counters = 1;
        r->pages_per_get = ec.gets ? (double)ec.chain_pages / ec.gets : 0;
    }
    if (close_handle(e, &h) != 0)
        FAIL("close failed");
    r->ok = 1;
out:
    if (h)
        e->close(h);
    free(seq);
    free(val);
}

/* --commit: durable commits of one put each (see the head comment); the
 * commit phase's figures go to PH_PUT1 (ops, seconds) and r->fsyncs */
static void run_commit_one(const opts *o, const engine *e, const char *dir, result *r)
{
    bench_conf c;
    char path[4096], err[400];
    void *h = NULL;
    uint64_t i, stamp, f0, m = o->commits;
    uint32_t *seq = NULL;
    uint8_t key[BENCH_MAXKEY], *val = NULL;
    uint16_t *ver = NULL;
    size_t vl;
    double t0;

    memset(r, 0, sizeof *r);
    memset(&c, 0, sizeof c);
    snprintf(path, sizeof path, "%s/data", dir);
    c.path = path; c.n = o->n; c.klen = o->klen; c.vlen = o->vlen;
    c.cache_bytes = cache_bytes(o); c.create = 1; c.durable = 1;
    c.reserve = o->reserve;
    c.hint = o->hint;
    c.lock_section = o->lock_section;
    e->describe(&c, r->settings, sizeof r->settings);
    seq = malloc(m * sizeof *seq);
    ver = calloc(o->n, sizeof *ver);
    val = malloc(o->vlen + 8);
    if (!seq || !ver || !val)
        FAIL("out of memory");
    make_sequence(seq, m, o->n, NULL, 4);
    for (i = 0; i < o->vlen; i++)
        val[i] = (uint8_t)splitmix64(i);
    if (!(h = e->open(&c, err, sizeof err)))
        FAIL("open: %s", err);
    if (load_records(o, e, h, val, r) != 0)
        goto out;
    f0 = bench_fsyncs();
    t0 = now();
    for (i = 0; i < m; i++) {
        uint64_t k = seq[i];
        stamp = make_stamp(k, ++ver[k]);
        make_key(k, key, o->klen);
        memcpy(val, &stamp, 8);
        BEGIN(ENG_WRITE);
        if (e->put(h, key, o->klen, val, o->vlen) != 0)
            FAIL("commit %llu: put: %s", (unsigned long long)i, e->errmsg(h));
        END();
    }
    r->secs[PH_PUT1] = now() - t0;
    r->ops[PH_PUT1] = m;
    r->fsyncs = bench_fsyncs() - f0;
    /* every key holds its last committed value after a reopen */
    if (close_handle(e, &h) != 0)
        FAIL("close failed");
    c.create = 0;
    if (!(h = e->open(&c, err, sizeof err)))
        FAIL("reopen: %s", err);
    BEGIN(ENG_READ);
    for (i = 0; i < o->n; i++) {
        make_key(i, key, o->klen);
        if (e->get(h, key, o->klen, &stamp, &vl) != 1 || stamp != make_stamp(i, ver[i]))
            FAIL("after the commits and a reopen, record %llu is not its last committed value",
                 (unsigned long long)i);
    }
    END();
    if (close_handle(e, &h) != 0)
        FAIL("close failed");
    r->ok = 1;
out:
    if (h)
        e->close(h);
    free(seq);
    free(ver);
    free(val);
}

/* Fork a child for one run; the result comes back through a pipe. */
static void run_child(const opts *o, const engine *e, result *r,
                      void (*fn)(const opts *, const engine *, const char *, result *))
{
    int fd[2];
    pid_t pid;
    char dir[4096];
    struct rusage ru;
    int status;
    ssize_t got = 0, m;

    memset(r, 0, sizeof *r);
    if (pipe(fd) != 0) {
        snprintf(r->err, sizeof r->err, "pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        result res;
        close(fd[0]);
        snprintf(dir, sizeof dir, "%s/%s.%d", o->tmpdir, e->name, (int)getpid());
        if (mkdir(dir, 0700) != 0) {
            memset(&res, 0, sizeof res);
            snprintf(res.err, sizeof res.err, "mkdir %s: %s", dir, strerror(errno));
        } else {
            fn(o, e, dir, &res);
        }
        rm_dir(dir);
        if (write(fd[1], &res, sizeof res) != (ssize_t)sizeof res)
            _exit(2);
        _exit(0);
    }
    close(fd[1]);
    if (pid < 0) {
        close(fd[0]);
        snprintf(r->err, sizeof r->err, "fork: %s", strerror(errno));
        return;
    }
    while (got < (ssize_t)sizeof *r && (m = read(fd[0], (char *)r + got, sizeof *r - got)) > 0)
        got += m;
    close(fd[0]);
    if (wait4(pid, &status, 0, &ru) < 0 || got != (ssize_t)sizeof *r) {
        memset(r, 0, sizeof *r);
        snprintf(r->err, sizeof r->err, "child died (status 0x%x)", status);
        return;
    }
    r->maxrss_kb = ru.ru_maxrss;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* the median over reps of one phase's figure (ops/s, or seconds) */
static double med_phase(result *rs, int reps, int ph)
{
    double v[64];
    int i;
    for (i = 0; i < reps; i++)
        v[i] = ph_rate[ph] ? (rs[i].secs[ph] > 0 ? rs[i].ops[ph] / rs[i].secs[ph] : 0) : rs[i].secs[ph];
    return median(v, reps);
}

static double med_field(result *rs, int reps, size_t off, int is_long)
{
    double v[64];
    int i;
    for (i = 0; i < reps; i++)
        v[i] = is_long ? (double)*(long *)((char *)&rs[i] + off) : *(double *)((char *)&rs[i] + off);
    return median(v, reps);
}

static void fmt_rate(char *buf, size_t n, double v)
{
    if (v >= 1e6)
        snprintf(buf, n, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, n, "%.0fK", v / 1e3);
    else
        snprintf(buf, n, "%.0f", v);
}

static const char *dist_name(const opts *o) { return o->zipf ? "zipf" : "uniform"; }
static const char *cache_name(const opts *o) { return o->cache_tenth ? "tenth" : "big"; }

static int run_matrix(opts *o)
{
    static result rs[16][64];
    double med[16][NPH];
    int e, rep, ph, failed = 0;
    FILE *tsv = o->tsv ? fopen(o->tsv, "a") : NULL;
    char shape[32], b[32];

    snprintf(shape, sizeof shape, "%u/%u", o->klen, o->vlen);
    printf("# == %s: shape %s, N=%llu, %s keys, cache %s (%.1f MiB), median of %d ==\n",
           o->label, shape, (unsigned long long)o->n, dist_name(o), cache_name(o),
           cache_bytes(o) / 1048576.0, o->reps);
    for (rep = 0; rep < o->reps; rep++)
        for (e = 0; e < o->neng; e++)
            run_child(o, o->eng[e], &rs[e][rep], run_workload);

    for (e = 0; e < o->neng; e++) {
        int ok = 1;
        for (rep = 0; rep < o->reps; rep++)
            if (!rs[e][rep].ok) {
                printf("# FAIL %s: %s\n", o->eng[e]->name, rs[e][rep].err);
                ok = 0;
            }
        if (!ok) {
            failed = 1;
            memset(med[e], 0, sizeof med[e]);
            continue;
        }
        printf("#   %-6s %s\n", o->eng[e]->name, rs[e][0].settings);
        for (ph = 0; ph < NPH; ph++)
            med[e][ph] = med_phase(rs[e], o->reps, ph);
    }
    printf("# %-7s", "ops/s");
    for (ph = 0; ph < NPH; ph++)
        if (ph_rate[ph])
            printf(" %8s", ph_name[ph]);
    printf(" | %6s %7s %9s %6s %7s\n", "sync s", "close s", "reopen ms", "B/rec", "RSS MB");
    for (e = 0; e < o->neng; e++) {
        result *r = rs[e];
        double bpr, rss;
        if (!r[0].ok)
            continue;
        bpr = (double)r[0].file_bytes / o->n;
        rss = med_field(r, o->reps, offsetof(result, maxrss_kb), 1) / 1024.0;
        printf("# %-7s", o->eng[e]->name);
        for (ph = 0; ph < NPH; ph++)
            if (ph_rate[ph]) {
                fmt_rate(b, sizeof b, med[e][ph]);
                printf(" %8s", b);
            }
        printf(" | %6.2f %7.2f %9.1f %6.1f %7.1f\n", med[e][PH_SYNC], med[e][PH_CLOSE],
               med[e][PH_REOPEN] * 1000, bpr, rss);
        if (tsv) {
            for (ph = 0; ph < NPH; ph++)
                fprintf(tsv, "%s\t%s\t%llu\t%s\t%s\t%s\t%s\t%s\t%.6g\n", o->label, shape,
                        (unsigned long long)o->n, dist_name(o), cache_name(o), o->eng[e]->name,
                        ph_name[ph], ph_rate[ph] ? "ops/s" : "s", med[e][ph]);
            fprintf(tsv, "%s\t%s\t%llu\t%s\t%s\t%s\tbytes_per_record\tB\t%.6g\n", o->label, shape,
                    (unsigned long long)o->n, dist_name(o), cache_name(o), o->eng[e]->name, bpr);
            fprintf(tsv, "%s\t%s\t%llu\t%s\t%s\t%s\tpeak_rss\tMB\t%.6g\n", o->label, shape,
                    (unsigned long long)o->n, dist_name(o), cache_name(o), o->eng[e]->name, rss);
        }
    }
    /* ratios to kvs, when kvs ran */
    if (o->neng > 1 && strcmp(o->eng[0]->name, "kvs") == 0 && rs[0][0].ok) {
        printf("# %-7s", "kvs/x");
        for (ph = 0; ph < NPH; ph++)
            if (ph_rate[ph])
                printf(" %8s", ph_name[ph]);
        printf("   (kvs ops/s divided by this engine's; > 1: kvs faster)\n");
        for (e = 1; e < o->neng; e++) {
            if (!rs[e][0].ok)
                continue;
            printf("# %-7s", o->eng[e]->name);
            for (ph = 0; ph < NPH; ph++)
                if (ph_rate[ph])
                    printf(" %8.2f", med[e][ph] > 0 ? med[0][ph] / med[e][ph] : 0);
            printf("\n");
        }
    }
    for (e = 0; e < o->neng; e++) {
        result *r = rs[e];
        if (!r[0].ok || !r[0].have_counters)
            continue;
        printf("# %s: after load: %llu pages = %llu buckets + %llu overflow + %llu dir + %llu free, load factor %.3f\n",
               o->eng[e]->name, (unsigned long long)r[0].shape.pages, (unsigned long long)r[0].shape.buckets,
               (unsigned long long)r[0].shape.overflow_pages, (unsigned long long)r[0].shape.dir_pages,
               (unsigned long long)r[0].shape.free_pages, r[0].shape.load_factor);
        printf("# %s: bucket-chain pages per get %.3f (after reopen %.3f), cache hit ratio gets %.1f%% "
               "(after reopen %.1f%%), splits %llu, file %.1f MiB after load, %.1f MiB after delete half\n",
               o->eng[e]->name, med_field(r, o->reps, offsetof(result, pages_per_get), 0),
               med_field(r, o->reps, offsetof(result, pages_per_cold), 0),
               100 * med_field(r, o->reps, offsetof(result, hit_get), 0),
               100 * med_field(r, o->reps, offsetof(result, hit_cold), 0),
               (unsigned long long)r[0].splits, r[0].file_bytes / 1048576.0,
               r[0].file_bytes_end / 1048576.0);
        if (tsv)
            fprintf(tsv, "%s\t%s\t%llu\t%s\t%s\t%s\tpages_per_get\tpages\t%.6g\n", o->label, shape,
                    (unsigned long long)o->n, dist_name(o), cache_name(o), o->eng[e]->name,
                    med_field(r, o->reps, offsetof(result, pages_per_get), 0));
    }
    printf("# harness memory before each engine opened: %.1f MB (included in RSS)\n",
           rs[0][0].base_rss_kb / 1024.0);
    if (tsv)
        fclose(tsv);
    fflush(stdout);
    return failed;
}

static int run_sweep(opts *o)
{
    const engine *e = NULL;
    FILE *tsv = o->tsv ? fopen(o->tsv, "a") : NULL;
    int i, ff, failed = 0;
    char b1[32], b2[32];

    for (i = 0; i < o->neng; i++)
        if (o->eng[i]->counters)
            e = o->eng[i];
    if (!e) {
        printf("# FAIL sweep: no engine with counters (kvs) compiled in\n");
        return 1;
    }
    printf("# == %s: %s fill-factor sweep, shape %u/%u, N=%llu, cache big ==\n", o->label, e->name,
           o->klen, o->vlen, (unsigned long long)o->n);
    printf("# %4s %10s %8s %9s %9s %9s %9s %6s\n", "ff", "pages/get", "B/rec", "load/s", "get/s",
           "buckets", "overflow", "load");
    for (ff = o->sw_lo; ff <= o->sw_hi; ff += o->sw_step) {
        result r;
        o->fillfactor = (uint32_t)ff;
        run_child(o, e, &r, run_sweep_one);
        if (!r.ok) {
            printf("# FAIL sweep ff=%d: %s\n", ff, r.err);
            failed = 1;
            continue;
        }
        fmt_rate(b1, sizeof b1, r.ops[PH_LOAD] / r.secs[PH_LOAD]);
        fmt_rate(b2, sizeof b2, r.ops[PH_GET] / r.secs[PH_GET]);
        printf("# %4d %10.3f %8.1f %9s %9s %9llu %9llu %6.3f\n", ff, r.pages_per_get, (double)r.file_bytes / o->n,
               b1, b2, (unsigned long long)r.shape.buckets, (unsigned long long)r.shape.overflow_pages,
               r.shape.load_factor);
        if (tsv)
            fprintf(tsv, "%s\t%u/%u\t%llu\tsweep\t%d\t%s\t%.6g\t%.6g\t%.6g\t%.6g\n", o->label, o->klen,
                    o->vlen, (unsigned long long)o->n, ff, e->name, r.pages_per_get,
                    (double)r.file_bytes / o->n, r.ops[PH_LOAD] / r.secs[PH_LOAD],
                    r.ops[PH_GET] / r.secs[PH_GET]);
    }
    if (tsv)
        fclose(tsv);
    return failed;
}

static int run_commit(opts *o)
{
    static result rs[16];
    FILE *tsv = o->tsv ? fopen(o->tsv, "a") : NULL;
    int i, failed = 0, kvs = -1;
    double rate[16];
    char note[128];

    printf("# == %s: durable commits, one put of %u/%u bytes each, %llu commits over %llu records ==\n",
           o->label, o->klen, o->vlen, (unsigned long long)o->commits, (unsigned long long)o->n);
    for (i = 0; i < o->neng; i++)
        run_child(o, o->eng[i], &rs[i], run_commit_one);
    printf("# %-7s %10s %14s  %s\n", "engine", "commits/s", "fsyncs/commit", "settings");
    for (i = 0; i < o->neng; i++)
        if (strcmp(o->eng[i]->name, "kvs") == 0 && rs[i].ok)
            kvs = i;
    for (i = 0; i < o->neng; i++) {
        result *r = &rs[i];
        double fpc;
        if (!r->ok) {
            printf("# FAIL %s: %s\n", o->eng[i]->name, r->err);
            failed = 1;
            continue;
        }
        rate[i] = r->secs[PH_PUT1] > 0 ? r->ops[PH_PUT1] / r->secs[PH_PUT1] : 0;
        fpc = (double)r->fsyncs / r->ops[PH_PUT1];
        if (r->fsyncs < r->ops[PH_PUT1])
            snprintf(note, sizeof note, " -- NOT DURABLE: %llu of %llu commits made no fsync",
                     (unsigned long long)(r->ops[PH_PUT1] - r->fsyncs), (unsigned long long)r->ops[PH_PUT1]);
        else
            note[0] = '\0';
        printf("# %-7s %10.0f %14.2f  %s%s\n", o->eng[i]->name, rate[i], fpc, r->settings, note);
        if (tsv) {
            fprintf(tsv, "%s\t%u/%u\t%llu\tcommit\t-\t%s\tcommit\tcommits/s\t%.6g\n", o->label, o->klen,
                    o->vlen, (unsigned long long)o->n, o->eng[i]->name, rate[i]);
            fprintf(tsv, "%s\t%u/%u\t%llu\tcommit\t-\t%s\tfsyncs_per_commit\tfsyncs\t%.6g\n", o->label,
                    o->klen, o->vlen, (unsigned long long)o->n, o->eng[i]->name, fpc);
        }
    }
    if (kvs >= 0)
        for (i = 0; i < o->neng; i++)
            if (i != kvs && rs[i].ok && rate[i] > 0)
                printf("# kvs/%-7s %.2f  (kvs commits/s divided by this engine's; > 1: kvs faster)%s\n",
                       o->eng[i]->name, rate[kvs] / rate[i],
                       rs[kvs].fsyncs < rs[kvs].ops[PH_PUT1] ? " -- kvs NOT DURABLE here: no comparison" : "");
    if (tsv)
        fclose(tsv);
    fflush(stdout);
    return failed;
}

static const engine *find_engine(const char *name)
{
    int i;
    for (i = 0; all_engines[i]; i++)
        if (strcmp(all_engines[i]->name, name) == 0)
            return all_engines[i];
#ifdef HAVE_KVS
    /* kvs locking per section, beside kvs (--lock both): named, never a default */
    if (strcmp(name, engine_kvs_section.name) == 0)
        return &engine_kvs_section;
#endif
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench [-e engines] [-n N] [-s KLEN/VLEN] [-d uniform|zipf] [-c big|tenth]\n"
                    "             [-r reps] [-f fillfactor] [-t tmpdir] [-o tsv] [-l label]\n"
                    "             [--reserve on|off] [--hint on|off] [--lock exclusive|section|both]\n"
                    "       bench --sweep LO:HI:STEP [...]\n       bench --commit M [-e ..] [-n N] [...]\n"
                    "       bench --list\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts o;
    int i, lock_both = 0;

    memset(&o, 0, sizeof o);
    o.n = 100000;
    o.klen = 16;
    o.vlen = 100;
    o.reps = 1;
    o.tmpdir = "/tmp";
    o.label = "bench";
    o.reserve = 1;
    o.hint = 1;
    if (getenv("BENCH_CLOCK") && strcmp(getenv("BENCH_CLOCK"), "cpu") == 0)
        bench_clock = CLOCK_PROCESS_CPUTIME_ID;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--list") == 0) {
            int j;
            for (j = 0; all_engines[j]; j++)
                printf("%s\n", all_engines[j]->name);
            return 0;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "-e") == 0) {
            char *s = strdup(v), *tok, *save = NULL;
            for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                const engine *e = find_engine(tok);
                if (!e) {
                    printf("# FAIL engine %s is not compiled in\n", tok);
                    return 1;
                }
                if (o.neng < 16)
                    o.eng[o.neng++] = e;
            }
            free(s);
        } else if (strcmp(a, "-n") == 0) {
            o.n = strtoull(v, NULL, 10);
        } else if (strcmp(a, "-s") == 0) {
            if (sscanf(v, "%u/%u", &o.klen, &o.vlen) != 2)
                usage();
        } else if (strcmp(a, "-d") == 0) {
            o.zipf = strcmp(v, "zipf") == 0;
        } else if (strcmp(a, "-c") == 0) {
            o.cache_tenth = strcmp(v, "tenth") == 0;
        } else if (strcmp(a, "-r") == 0) {
            o.reps = atoi(v);
        } else if (strcmp(a, "-f") == 0) {
            o.fillfactor = (uint32_t)atoi(v);
        } else if (strcmp(a, "-t") == 0) {
            o.tmpdir = v;
        } else if (strcmp(a, "-o") == 0) {
            o.tsv = v;
        } else if (strcmp(a, "-l") == 0) {
            o.label = v;
        } else if (strcmp(a, "--commit") == 0) {
            o.commits = strtoull(v, NULL, 10);
            if (o.commits < 1)
                usage();
        } else if (strcmp(a, "--reserve") == 0) {
            if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
                usage();
            o.reserve = strcmp(v, "on") == 0;
        } else if (strcmp(a, "--hint") == 0) {
            if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
                usage();
            o.hint = strcmp(v, "on") == 0;
        } else if (strcmp(a, "--lock") == 0) {
            if (strcmp(v, "exclusive") == 0)
                o.lock_section = 0;
            else if (strcmp(v, "section") == 0)
                o.lock_section = 1;
            else if (strcmp(v, "both") == 0)
                lock_both = 1;
            else
                usage();
        } else if (strcmp(a, "--sweep") == 0) {
            o.sweep = 1;
            if (sscanf(v, "%d:%d:%d", &o.sw_lo, &o.sw_hi, &o.sw_step) != 3 || o.sw_step <= 0)
                usage();
        } else {
            usage();
        }
    }
    if (o.klen < 8 || o.klen > BENCH_MAXKEY || o.vlen < 8 || o.n < 2 || o.n > UINT32_MAX ||
        o.reps < 1 || o.reps > 64)
        usage();
    if (o.neng == 0 && o.commits) {
        /* the engines with a durable mode (the others would all say NOT DURABLE) */
        static const char *const durable[] = { "kvs", "sqlite", "lmdb", "bdb" };
        for (i = 0; i < 4; i++)
            if (find_engine(durable[i]))
                o.eng[o.neng++] = find_engine(durable[i]);
    }
    if (o.neng == 0)
        for (i = 0; all_engines[i] && o.neng < 16; i++)
            o.eng[o.neng++] = all_engines[i];
    if (o.neng == 0) {
        printf("# FAIL no engine compiled in\n");
        return 1;
    }
#ifdef HAVE_KVS
    /* --lock both: kvs-section runs right after kvs (the kvs/x table then
     * shows exclusive over section); kvs itself stays exclusive */
    if (lock_both) {
        o.lock_section = 0;
        for (i = 0; i < o.neng; i++)
            if (o.eng[i] == &engine_kvs && o.neng < 16) {
                memmove(&o.eng[i + 2], &o.eng[i + 1], (size_t)(o.neng - i - 1) * sizeof o.eng[0]);
                o.eng[i + 1] = &engine_kvs_section;
                o.neng++;
                break;
            }
    }
#endif
    if (o.commits)
        return run_commit(&o);
    return o.sweep ? run_sweep(&o) : run_matrix(&o);
}
