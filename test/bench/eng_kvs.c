/*
 * eng_kvs.c - bench adapter for our engine (src/engine/kvs.h).
 *
 * Settings: cache_pages = cache budget / 4096; fill factor from the bench
 * (default 75); the load's write section starts with kvs_reserve(N x
 * kvs_record_bytes(klen, vlen)), the size hint the anchors get at open (their bucket counts), timed
 * with the load (bench --reserve off: none, the table splits from one
 * bucket).  The load, replace and delete phases hint each key to
 * kvs_prefetch BENCH_HINT_AHEAD operations before its put or delete (the
 * harness's hint hook; bench --hint off: none).  Each phase runs in one section (a write section for load,
 * replace and delete, a read section for gets and the scan), as the FDW
 * holds one per statement; the section end writes dirty pages back without
 * fsync (KVS_NOSYNC: its journal record is appended but not fsynced, the
 * anchors' rule of no fsync per write), and kvs_sync() is the workload's one
 * fsync.  Durable commits
 * (bench --commit): one write section per commit, nothing else to set: with
 * the journal, kvs_end appends the section's record to the file's journal
 * (kvs_options.journal NULL: the private one beside the file) and fsyncs it;
 * the journal's placeholder (before the journal) fsyncs nothing.
 *
 * Locking: KVS_EXCLUSIVE by default, the file's lock held from open to
 * close, so a section takes no lock and checks for no other writer (the
 * anchors run with no file locking at all: GDBM_NOLOCK, Kyoto's NOLOCK,
 * tkrzw's no_lock, so one lock held for the run is at least as safe).
 * bench --lock section, or the engine kvs-section (--lock both runs it
 * beside kvs), opens without it: every section takes and drops the lock
 * and checks whether another process changed the file, as the FDW's local
 * mode does.
 *
 * Lazy write sections: with the exclusive hold and without --commit (the
 * anchors' durability mode: nothing synced or written per operation), the
 * handle is opened KVS_LAZY as well: kvs_end of a write section ends it in
 * memory, and the write-out (one journalled commit of every dirty page) is
 * made at kvs_sync, at kvs_close, or at a section's end once the dirty
 * pages pass half the pool.  kvs_abort still undoes exactly one section.
 * Durable commits (--commit) and --lock section keep a write-out per
 * section.
 */
#include "engine.h"
#include "kvs.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct kh {
    kvs *db;
    int  rc;
} kh;

static void describe_locking(const bench_conf *c, int section, char *buf, size_t len)
{
    snprintf(buf, len, "cache_pages=%llu (%.1f MiB), fillfactor=%u, %s, %s, %s, %s",
             (unsigned long long)(c->cache_bytes / KVS_PAGE_SIZE),
             c->cache_bytes / 1048576.0, c->fillfactor ? c->fillfactor : 75,
             c->reserve ? "kvs_reserve for N records in the load" : "no kvs_reserve",
             c->hint ? "kvs_prefetch of each key " BENCH_HINT_AHEAD_STR
                       " operations ahead in load, replace, delete" : "no kvs_prefetch",
             c->durable ? "one write section per commit (kvs_end: the file's journal beside it)"
                        : "one section per phase, KVS_NOSYNC (no fsync until sync)",
             section ? "lock per section (flock + change check each)"
             : c->durable ? "KVS_EXCLUSIVE (file lock held open to close; the anchors lock nothing)"
                          : "KVS_EXCLUSIVE | KVS_LAZY (file lock held open to close; write sections "
                            "end in memory, written out at sync, close or half the pool dirty)");
}

static void kvs_describe(const bench_conf *c, char *buf, size_t len)
{
    describe_locking(c, c->lock_section, buf, len);
}

static void kvs_section_describe(const bench_conf *c, char *buf, size_t len)
{
    describe_locking(c, 1, buf, len);
}

static void *open_locking(const bench_conf *c, int section, char *err, size_t errlen)
{
    kvs_options o;
    kh *h = calloc(1, sizeof *h);
    int rc;
    uint64_t pages = c->cache_bytes / KVS_PAGE_SIZE;

    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    kvs_options_init(&o);
    o.flags = (c->create ? KVS_CREATE : 0) | (c->durable ? 0 : KVS_NOSYNC) |
              (section ? 0 : KVS_EXCLUSIVE) | (section || c->durable ? 0 : KVS_LAZY);
    o.cache_pages = (uint32_t)(pages < 8 ? 8 : pages > UINT32_MAX ? UINT32_MAX : pages);
    o.fillfactor = c->fillfactor;
    rc = kvs_open(c->path, &o, &h->db);
    if (rc != KVS_OK) {
        snprintf(err, errlen, "kvs_open: %s: %s", kvs_strerror(rc), kvs_open_errmsg());
        free(h);
        return NULL;
    }
    return h;
}

static void *kvs_bopen(const bench_conf *c, char *err, size_t errlen)
{
    return open_locking(c, c->lock_section, err, errlen);
}

static void *kvs_section_bopen(const bench_conf *c, char *err, size_t errlen)
{
    return open_locking(c, 1, err, errlen);
}

static int kvs_bbegin(void *p, int write)
{
    kh *h = p;
    h->rc = kvs_begin(h->db, write ? KVS_WRITE : KVS_READ);
    return h->rc == KVS_OK ? 0 : -1;
}

static int kvs_bend(void *p)
{
    kh *h = p;
    h->rc = kvs_end(h->db);
    return h->rc == KVS_OK ? 0 : -1;
}

static int kvs_bput(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    kh *h = p;
    h->rc = kvs_put(h->db, k, kl, v, vl, 0);
    return h->rc == KVS_OK ? 0 : -1;
}

static int kvs_bget(void *p, const void *k, size_t kl, uint64_t *stamp, size_t *vl)
{
    kh *h = p;
    kvs_slice v;
    int rc = kvs_get(h->db, k, kl, &v);

    if (rc == KVS_OK) {
        copy_stamp(stamp, v.data, v.len);
        *vl = v.len;
        return 1;
    }
    if (rc == KVS_NOTFOUND)
        return 0;
    h->rc = rc;
    return -1;
}

static int kvs_bdel(void *p, const void *k, size_t kl)
{
    kh *h = p;
    int rc = kvs_delete(h->db, k, kl);

    if (rc == KVS_OK)
        return 1;
    if (rc == KVS_NOTFOUND)
        return 0;
    h->rc = rc;
    return -1;
}

static int64_t kvs_bscan(void *p, uint64_t *x)
{
    kh *h = p;
    kvs_cursor *cur;
    kvs_slice k, v;
    int64_t n = 0;
    uint64_t s;
    int rc = kvs_cursor_open(h->db, &cur);

    if (rc != KVS_OK) {
        h->rc = rc;
        return -1;
    }
    while ((rc = kvs_cursor_next(cur, &k, &v)) == KVS_OK) {
        copy_stamp(&s, v.data, v.len);
        *x ^= s;
        n++;
    }
    kvs_cursor_close(cur);
    if (rc != KVS_NOTFOUND) {
        h->rc = rc;
        return -1;
    }
    return n;
}

static int kvs_breserve(void *p, uint64_t n, size_t klen, size_t vlen)
{
    kh *h = p;
    h->rc = kvs_reserve(h->db, n * kvs_record_bytes(klen, vlen));
    return h->rc == KVS_OK ? 0 : -1;
}

static void kvs_bhint(void *p, const void *k, size_t kl)
{
    kh *h = p;
    kvs_prefetch(h->db, k, kl);
}

static int kvs_bsync(void *p)
{
    kh *h = p;
    h->rc = kvs_sync(h->db);
    return h->rc == KVS_OK ? 0 : -1;
}

static int kvs_bclose(void *p)
{
    kh *h = p;
    int rc = kvs_close(h->db);
    free(h);
    return rc == KVS_OK ? 0 : -1;
}

static const char *kvs_berrmsg(void *p)
{
    kh *h = p;
    static char buf[512];
    snprintf(buf, sizeof buf, "%s: %s", kvs_strerror(h->rc), kvs_errmsg(h->db));
    return buf;
}

static void kvs_breset(void *p)
{
    kh *h = p;
    kvs_reset_counters(h->db);
}

static int kvs_bcounters(void *p, engine_counters *o)
{
    kh *h = p;
    kvs_stats st;
    int rc = kvs_stats_get(h->db, &st);

    if (rc != KVS_OK) {
        h->rc = rc;
        return -1;
    }
    o->gets = st.gets;
    o->chain_pages = st.get_chain_pages;
    o->cache_hits = st.cache_hits;
    o->cache_reads = st.cache_reads;
    o->cache_evictions = st.cache_evictions;
    o->cache_writes = st.cache_writes;
    o->splits = st.splits;
    o->pages = st.pages;
    o->buckets = st.buckets;
    o->overflow_pages = st.overflow_pages;
    o->free_pages = st.free_pages;
    o->dir_pages = st.dir_pages;
    o->records = st.records;
    o->load_factor = st.load_factor;
    return 0;
}

const engine engine_kvs = {
    "kvs", kvs_describe, kvs_bopen, kvs_bbegin, kvs_bend, kvs_bput, kvs_bget,
    kvs_bdel, kvs_bscan, kvs_bsync, kvs_bclose, kvs_berrmsg, kvs_breset, kvs_bcounters,
    kvs_breserve, kvs_bhint
};

/* kvs opened without KVS_EXCLUSIVE whatever --lock says (--lock both) */
const engine engine_kvs_section = {
    "kvs-section", kvs_section_describe, kvs_section_bopen, kvs_bbegin, kvs_bend, kvs_bput,
    kvs_bget, kvs_bdel, kvs_bscan, kvs_bsync, kvs_bclose, kvs_berrmsg, kvs_breset,
    kvs_bcounters, kvs_breserve, kvs_bhint
};
