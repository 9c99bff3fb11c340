/*
 * unit_locks.c - the content-lock callbacks (kvs_locks) and a pool shared
 * by several handles (kvs_pool), through the public API.
 *
 * A counting kvs_locks table checks, on every callback, what kvs.h promises
 * a host: a frame index inside the pool, no lock taken twice, at most 2 held
 * by the handle at once, unlock only of a held lock, and none held when a
 * kvs_* call returns.  The workload covers what takes locks: puts that
 * split buckets and grow overflow chains, values long enough for value
 * chains, replaces, deletes that free pages and pull records up, gets, the
 * cursor, kvs_check, truncate, compaction; over a private pool, then over
 * one shared pool of 64 frames used by two files with both policies, where
 * every answer must equal the same run's private-pool answer; and two
 * handles on one file in one shared pool: one's writes are read from the
 * same frames by the other (no invalidation); closed, the file's frames
 * stay for the next open unless a write from outside the pool changed the
 * file meanwhile.
 *
 *   unit_locks      workload of 20000 keys; KVS_TEST_QUICK=1 (ASan): 3000;
 *                   KVS_TEST_QUICK=2 (valgrind): 1500
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kvs.h"
#include "tap.h"

#define MAXFRAMES 4096

typedef struct counting {
    kvs_locks locks;               /* the table handed to kvs_open, arg = this */
    uint32_t frames;
    uint8_t  held[MAXFRAMES];      /* mode held per frame, 0 = none */
    uint32_t nheld, max_held;
    uint64_t shared, exclusive, violations;
    char     first[160];
} counting;

/* Opens path on pool, reads key once with fresh counters: the handle, the
 * value and the handle's stats. */
static kvs *open_get(const char *path, kvs_pool *pool, const char *key, kvs_slice *v, kvs_stats *st)
{
    kvs_options o;
    kvs *db = NULL;
    kvs_options_init(&o);
    o.pool = pool;
    TAP_RC(kvs_open(path, &o, &db), KVS_OK);
    kvs_reset_counters(db);
    TAP_RC(kvs_get(db, key, strlen(key), v), KVS_OK);
    TAP_RC(kvs_stats_get(db, st), KVS_OK);
    return db;
}

static void violation(counting *c, const char *what, uint32_t frame)
{
    if (!c->violations++)
        snprintf(c->first, sizeof c->first, "%s (frame %u)", what, (unsigned)frame);
}

static void c_lock(void *arg, uint32_t frame, int mode)
{
    counting *c = arg;
    if (frame >= c->frames)
        return violation(c, "frame index outside the pool", frame);
    if (mode != KVS_LOCK_SHARED && mode != KVS_LOCK_EXCLUSIVE)
        violation(c, "unknown mode", frame);
    if (c->held[frame])
        violation(c, "lock taken twice", frame);
    c->held[frame] = (uint8_t)mode;
    if (++c->nheld > c->max_held)
        c->max_held = c->nheld;
    if (mode == KVS_LOCK_SHARED)
        c->shared++;
    else
        c->exclusive++;
}

static void c_unlock(void *arg, uint32_t frame)
{
    counting *c = arg;
    if (frame >= c->frames || !c->held[frame])
        return violation(c, "unlock of a lock not held", frame);
    c->held[frame] = 0;
    c->nheld--;
}

/* After every call: nothing held. */
static void after(counting *c, const char *call)
{
    if (c->nheld) {
        char what[80];
        snprintf(what, sizeof what, "%s returned with %u lock(s) held", call, (unsigned)c->nheld);
        violation(c, what, 0);
        memset(c->held, 0, sizeof c->held);
        c->nheld = 0;
    }
}

/* The workload on db; returns a digest of every answer it got. */
static uint64_t workload(kvs *db, counting *c, unsigned n)
{
    static char val[20000];
    char key[32];
    uint64_t digest = 1469598103934665603ull;
    kvs_slice k, v;
    kvs_cursor *cur;
    unsigned i;
    int rc;
#define MIX(x) (digest = (digest ^ (uint64_t)(x)) * 1099511628211ull)
    for (i = 0; i < sizeof val; i++)
        val[i] = (char)('a' + i % 23);
    for (i = 0; i < n; i++) {
        size_t len = i % 97 == 0 ? 9000 + i % 5000 : i % 300;   /* some value chains */
        snprintf(key, sizeof key, "key-%07u", i);
        MIX(kvs_put(db, key, strlen(key), val + i % 50, len, 0));
        after(c, "kvs_put");
    }
    for (i = 0; i < n; i += 3) {                  /* replaces, growing and shrinking */
        snprintf(key, sizeof key, "key-%07u", i);
        MIX(kvs_put(db, key, strlen(key), val, i % 2 ? 5000 : 10, 0));
        after(c, "kvs_put (replace)");
    }
    for (i = 0; i < n; i += 2) {                  /* deletes: pull-up, freed pages */
        snprintf(key, sizeof key, "key-%07u", i);
        MIX(kvs_delete(db, key, strlen(key)));
        after(c, "kvs_delete");
    }
    for (i = 0; i < n + 50; i++) {
        snprintf(key, sizeof key, "key-%07u", i);
        rc = kvs_get(db, key, strlen(key), &v);
        MIX(rc);
        if (rc == KVS_OK) {
            MIX(v.len);
            MIX(v.len ? ((const unsigned char *)v.data)[v.len - 1] : 0);
        }
        after(c, "kvs_get");
    }
    if (kvs_cursor_open(db, &cur) == KVS_OK) {
        uint64_t sum = 0, cnt = 0;
        while ((rc = kvs_cursor_next(cur, &k, &v)) == KVS_OK) {
            after(c, "kvs_cursor_next");
            sum += v.len + k.len;
            cnt++;
        }
        after(c, "kvs_cursor_next (end)");
        kvs_cursor_close(cur);
        MIX(cnt);
        MIX(sum);
    }
    MIX(kvs_check(db));
    after(c, "kvs_check");
    MIX(kvs_compact(db, NULL));
    after(c, "kvs_compact");
    MIX(kvs_check(db));
    after(c, "kvs_check");
    MIX(kvs_begin(db, KVS_WRITE));
    MIX(kvs_truncate(db));
    MIX(kvs_put(db, "after", 5, "truncate", 8, 0));
    MIX(kvs_end(db));
    after(c, "kvs_truncate");
    MIX(kvs_get(db, "after", 5, &v));
    MIX(kvs_check(db));
    after(c, "kvs_check");
    return digest;
#undef MIX
}

static int open_with(const char *path, kvs_pool *pool, uint32_t frames, int policy, counting *c, kvs **db)
{
    kvs_options o;
    unlink(path);
    c->locks.lock = c_lock;
    c->locks.unlock = c_unlock;
    c->locks.arg = c;
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    o.cache_pages = frames;
    o.cache_policy = policy;
    o.pool = pool;
    o.locks = &c->locks;
    o.hash_seed = 42;
    return kvs_open(path, &o, db);
}

static void report(counting *c, const char *what)
{
    tap_ok(c->violations == 0, "%s: every lock callback within the rules (%llu shared, %llu exclusive, "
           "at most %u held)%s%s", what, (unsigned long long)c->shared, (unsigned long long)c->exclusive,
           (unsigned)c->max_held, c->violations ? ": first broken: " : "", c->first);
    tap_ok(c->max_held <= 2 && c->shared > 0 && c->exclusive > 0, "%s: both modes used, never more than 2 held", what);
}

int main(void)
{
    const unsigned n = tap_quick() >= 2 ? 1500 : tap_quick() ? 3000 : 20000;
    char pa[128], pb[128];
    counting *ca = calloc(1, sizeof *ca), *cb = calloc(1, sizeof *cb);
    uint64_t ref = 0, da, db_;
    kvs *a, *b;
    int policy;

    snprintf(pa, sizeof pa, "/tmp/unit_locks.%d.a", (int)getpid());
    snprintf(pb, sizeof pb, "/tmp/unit_locks.%d.b", (int)getpid());

    /* a private pool, each policy */
    for (policy = KVS_CACHE_LRU; policy <= KVS_CACHE_CLOCK; policy++) {
        const char *pn = policy == KVS_CACHE_LRU ? "private lru" : "private clock";
        uint64_t d;
        memset(ca, 0, sizeof *ca);
        ca->frames = 32;
        TAP_RC(open_with(pa, NULL, 32, policy, ca, &a), KVS_OK);
        d = workload(a, ca, n);
        TAP_RC(kvs_close(a), KVS_OK);
        report(ca, pn);
        if (policy == KVS_CACHE_LRU)
            ref = d;
        else
            tap_ok(d == ref, "%s: the same answers as lru", pn);
    }
    {
        kvs_options o;
        kvs_options_init(&o);
        o.flags = KVS_CREATE;
        o.cache_policy = 7;
        TAP_RC(kvs_open(pa, &o, &a), KVS_EINVAL);
        tap_ok(access(pa, F_OK) != 0 || unlink(pa) == 0, "a bad cache policy is refused before the file is touched");
    }

    /* one pool of 64 frames for two files, both open: a's workload, then
     * b's, whose misses evict a's frames (and a's compaction and truncate
     * drop only a's) */
    for (policy = KVS_CACHE_LRU; policy <= KVS_CACHE_CLOCK; policy++) {
        const char *pn = policy == KVS_CACHE_LRU ? "shared lru" : "shared clock";
        size_t sz = kvs_pool_size(64, 2);
        void *mem = NULL;
        kvs_pool *pool;
        kvs *third;
        if (posix_memalign(&mem, 4096, sz) != 0)
            abort();
        TAP_RC(kvs_pool_format(mem, sz - 1, 64, 2, policy, &pool), KVS_EINVAL);
        TAP_RC(kvs_pool_format(mem, sz, 64, 2, policy, &pool), KVS_OK);
        memset(ca, 0, sizeof *ca);
        memset(cb, 0, sizeof *cb);
        ca->frames = cb->frames = 64;
        TAP_RC(open_with(pa, pool, 0, 0, ca, &a), KVS_OK);
        TAP_RC(open_with(pb, pool, 0, 0, cb, &b), KVS_OK);
        TAP_RC(open_with("/tmp/unit_locks.third", pool, 0, 0, cb, &third), KVS_ENOMEM);
        da = workload(a, ca, n);
        db_ = workload(b, cb, n);
        tap_ok(da == ref && db_ == ref, "%s: both files give the private pool's answers", pn);
        report(ca, pn);
        report(cb, pn);
        {
            kvs_stats st;
            TAP_RC(kvs_stats_get(a, &st), KVS_OK);
            tap_ok(st.cache_frames == 64, "%s: stats show the pool's 64 frames", pn);
        }
        TAP_RC(kvs_close(a), KVS_OK);
        TAP_RC(kvs_close(b), KVS_OK);
        free(mem);
    }
    /* two handles on one file through one shared pool: a write by one
     * leaves the other's cached pages valid (they are the same frames); a
     * write from outside the pool drops them */
    {
        size_t sz = kvs_pool_size(256, 2);
        void *mem = NULL;
        kvs_pool *pool;
        kvs_stats st;
        kvs_slice v;
        kvs *outside;
        kvs_options o;
        char key[32];
        unsigned i, bad = 0;
        if (posix_memalign(&mem, 4096, sz) != 0)
            abort();
        TAP_RC(kvs_pool_format(mem, sz, 256, 2, KVS_CACHE_CLOCK, &pool), KVS_OK);
        memset(ca, 0, sizeof *ca);
        memset(cb, 0, sizeof *cb);
        ca->frames = cb->frames = 256;
        TAP_RC(open_with(pa, pool, 0, 0, ca, &a), KVS_OK);
        kvs_options_init(&o);
        o.pool = pool;
        TAP_RC(kvs_open(pa, &o, &b), KVS_OK);
        for (i = 0; i < 2000; i++) {
            snprintf(key, sizeof key, "key-%07u", i);
            if (kvs_put(a, key, strlen(key), key, strlen(key), 0) != KVS_OK)
                bad++;
        }
        kvs_reset_counters(b);
        for (i = 0; i < 2000; i++) {
            snprintf(key, sizeof key, "key-%07u", i);
            if (kvs_get(b, key, strlen(key), &v) != KVS_OK || v.len != strlen(key) || memcmp(v.data, key, v.len))
                bad++;
        }
        TAP_RC(kvs_stats_get(b, &st), KVS_OK);
        tap_ok(bad == 0 && st.cache_invalidations == 0 && st.cache_reads == 0 && st.cache_hits >= 2000,
               "shared pool: b reads a's 2000 writes from a's frames (invalidations %llu, reads %llu, hits %llu)",
               (unsigned long long)st.cache_invalidations, (unsigned long long)st.cache_reads,
               (unsigned long long)st.cache_hits);
        TAP_RC(kvs_check(b), KVS_OK);
        TAP_RC(kvs_close(a), KVS_OK);
        TAP_RC(kvs_close(b), KVS_OK);
        /* closed by every handle of the pool: the slot is idle, its frames
         * kept; reopened unchanged, they are still good (no read) */
        b = open_get(pa, pool, "key-0000007", &v, &st);
        tap_ok(st.cache_reads == 0 && st.cache_hits >= 1,
               "reopened unchanged, the idle frames serve the read (reads %llu)",
               (unsigned long long)st.cache_reads);
        TAP_RC(kvs_close(b), KVS_OK);
        /* a write from outside the pool while no handle of it has the file
         * open: the next open notices (change counter) and drops the frames */
        kvs_options_init(&o);
        TAP_RC(kvs_open(pa, &o, &outside), KVS_OK);
        TAP_RC(kvs_put(outside, "key-0000007", 11, "from outside", 12, 0), KVS_OK);
        TAP_RC(kvs_close(outside), KVS_OK);
        b = open_get(pa, pool, "key-0000007", &v, &st);
        tap_ok(v.len == 12 && memcmp(v.data, "from outside", 12) == 0 && st.cache_reads >= 1,
               "a write from outside the pool while the file was idle is seen, its old frames dropped (reads %llu)",
               (unsigned long long)st.cache_reads);
        TAP_RC(kvs_check(b), KVS_OK);
        TAP_RC(kvs_close(b), KVS_OK);
        report(ca, "two handles, one file");
        free(mem);
    }
    unlink(pa);
    unlink(pb);
    unlink("/tmp/unit_locks.third");
    free(ca);
    free(cb);
    tap_diag("locks: %d checks", tap_n);
    return tap_done();
}
