/*
 * pool.h - the buffer pool: a fixed number of 4 KiB frames shared by one or
 * more open files, keyed by (file, page number).
 *
 * Two objects.  A `pool` is ONE block of memory (pool_mem_size bytes,
 * formatted by pool_format) that holds every piece of shared state -- the
 * frames, their descriptors, the page table (ptab.h), the replacement
 * policy's state, the dirty list and the file table -- and refers within
 * itself by index and offset only, never by pointer, so the block can live
 * in memory shared between processes at different addresses.  A
 * `pool_file` is one open handle's private attachment to a pool: its
 * pager (I/O, spill), its error record, its content-lock callbacks, its
 * counters and scratch.  Both are opaque outside pool.c.
 *
 * Access protocol (the same as PostgreSQL's buffer manager's):
 *   pool_fetch / pool_alloc   pin the page (it cannot be evicted while
 *                             pinned) and give its frame and bytes;
 *   pool_lock / pool_unlock   the page's content lock: shared to read the
 *                             bytes, exclusive to change them (and to
 *                             pool_dirty them);
 *   pool_unpin                ends the access.  pool_release = unlock+unpin.
 * pool_alloc returns the page pinned AND exclusively locked (nobody else
 * can reach a page being allocated).  The rules on content locks, checked
 * on every acquire by builds with KVS_DEBUG (the asan and debug variants),
 * are those the host's callbacks may rely on (kvs.h, kvs_locks):
 *   - at most POOL_MAX_LOCKS (2) at once per handle; a second only on the
 *     page the first one's next link names (chain order: a primary page
 *     then its overflow page, a page then the page after it);
 *   - none held across a call that may do I/O or wait: pool_fetch,
 *     pool_alloc, pool_free_page, pool_flush assert that none is held;
 *   - none held when an engine call returns to the host (kvs.c checks).
 * The lock order of the whole engine is in README.md, "Buffer pool".
 *
 * Replacement: POOL_LRU (exact LRU: a hit moves the frame to the head) or
 * POOL_CLOCK (PostgreSQL's clock sweep: a usage count per frame, capped at
 * POOL_USAGE_MAX, a hand that decrements it and takes the first unpinned
 * frame at zero), chosen when the block is formatted; both run over the
 * same frames, and only the four policy functions in pool.c differ.
 * A dirty frame is written (or spilled) only by the handle whose section
 * made it dirty; the victim search skips other files' dirty frames.
 */
#ifndef KVS_POOL_H
#define KVS_POOL_H

#include "pager.h"
#include "spill.h"
#include "ptab.h"
#include "filelock.h"

#define POOL_NONE       0xffffffffu
#define POOL_LRU        0
#define POOL_CLOCK      1
#define POOL_USAGE_MAX  5     /* clock sweep's cap, as PostgreSQL's BM_MAX_USAGE_COUNT */
#define POOL_MAX_LOCKS  2     /* content locks one handle holds at once */
#define POOL_RING_MAX   64    /* frames of a bulk-read ring (256 KiB, as PostgreSQL's) */

#define POOL_SHARED     1     /* = KVS_LOCK_SHARED */
#define POOL_EXCLUSIVE  2     /* = KVS_LOCK_EXCLUSIVE */

typedef struct pool pool;
typedef struct pool_file pool_file;

/* A frame's descriptor (inside the block; pool.c's, shown here only for the
 * inline functions below).  `state` packs the pin count, the usage count
 * and the flags in one word, as PostgreSQL's BufferDesc does, so that a
 * pin is one atomic operation in a pool many processes use (pool.c,
 * "Concurrency"); in a private pool the same word is read and written
 * plainly. */
typedef struct pool_frame {
    uint64_t key;            /* (file slot << 32) | page number, while ST_TAG */
    uint32_t state;          /* ST_* below */
    uint32_t prev, next;     /* LRU list (head = most recent); next also links unused frames */
    uint32_t dpos;           /* index in the dirty list while dirty */
    uint32_t inlru;          /* on the LRU list (POOL_LRU) */
    uint32_t pad;
} pool_frame;

#define ST_PIN_MASK   0x0003ffffu   /* pins, by every handle */
#define ST_USAGE_ONE  0x00040000u   /* usage count, 0..POOL_USAGE_MAX, in bits 18-21 */
#define ST_USAGE_MASK 0x003c0000u
#define ST_USAGE_SHIFT 18
#define ST_TAG        0x00400000u   /* key is in the mapping table */
#define ST_VALID      0x00800000u   /* the bytes are the page */
#define ST_IO         0x01000000u   /* being filled by the handle that tagged it */
#define ST_DIRTY      0x02000000u
#define ST_FRESH      0x04000000u   /* grown in this section: nothing on disk references it */

/* The first members of every pool_file (the rest is pool.c's): this
 * process's addresses of the block's parts and the lock callbacks, so the
 * calls made on every page access -- lock, unlock, unpin -- are inline
 * (as pager_head does for the header). */
typedef struct pool_file_head {
    const kvs_locks *locks;
    pool_frame      *fr;
    uint8_t         *data;
    ptab_slot       *tab;     /* partition 0's table; partition i's is tab + (i << tabbits) */
    kvs_hdr         *hdr;     /* the handle's header */
    kvs_err         *err;     /* the handle's error record */
    uint64_t         hits;    /* pages found cached */
    uint32_t         tabbits; /* log2 of the slots of one partition's table */
    uint32_t         slot;    /* file slot, POOL_NONE while unbound */
    uint32_t         policy;  /* the pool's POOL_LRU / POOL_CLOCK */
    int              trace;   /* a page-access trace is on (kvs_set_trace) */
    int              conc;    /* the pool is shared (kvs_pool_format): atomics and locks */
    uint32_t         partmask;/* partitions - 1 (0 in a private pool) */
    int              fast;    /* private pool, no trace: pool_fetch's inline hit */
    uint32_t         nframes; /* frames in the pool (a hint's bound: pool_fetch_hint) */
    int              touch;   /* pool_set_touch's hook is on */
} pool_file_head;

/* The mapping-table partition of a key (a hash independent of ptab_home's,
 * so a partition's keys still spread over its table). */
static inline uint32_t pool_part(uint64_t key, uint32_t partmask)
{
    return (uint32_t)(((key ^ (key >> 29)) * 0xBF58476D1CE4E5B9ull) >> 59) & partmask;
}

#define POOL_TRACE_BUF 256    /* trace records buffered per attachment */
/* Appends one access to the trace (trace on); pool_trace_flush writes the
 * buffer out. */
void     pool_trace(pool_file *pf, uint32_t pgno, uint32_t flags);
int      pool_trace_flush(pool_file *pf);
int      pool_file_set_trace(pool_file *pf, int fd);   /* -1 = off */
/* Whether a trace is on (off: nothing buffered, pool_trace_flush has
 * nothing to do; turning it off flushes). */
static inline int pool_trace_is_on(const pool_file *pf) { return ((const pool_file_head *)pf)->trace; }

/* What identifies a file to the pool: the nonce in its header (0 if it has
 * none yet) and the inode it was opened as.  A copy of a file has the same
 * nonce and another inode; two paths to one file have the same both. */
typedef struct pool_ident {
    uint64_t file_id;
    uint64_t dev, ino;
} pool_ident;

/* ---- the block -------------------------------------------------------- */
size_t   pool_mem_size(uint32_t nframes, uint32_t nfiles);
/* Formats mem (pool_mem_size bytes, 64-byte aligned; 4096 is better) as an
 * empty pool.  nframes >= 1, nfiles >= 1. */
pool    *pool_format(void *mem, uint32_t nframes, uint32_t nfiles, int policy);
/* A pool many processes may use at once (kvs_pool_format): its mapping
 * table in partitions, atomic frame states, the pool's own locks, a
 * section lock and the current header per file. */
size_t   pool_mem_size_shared(uint32_t nframes, uint32_t nfiles);
pool    *pool_format_shared(void *mem, uint32_t nframes, uint32_t nfiles, int policy);
int      pool_is_shared(const pool *p);
/* mem as a pool formatted earlier (NULL if it is not one). */
pool    *pool_of(void *mem);
uint32_t pool_nframes(const pool *p);
int      pool_policy(const pool *p);

/* ---- a handle's attachment --------------------------------------------- */
/* The handle's pager, error record, content-lock callbacks (NULL = no
 * locking: one process, one thread) and spill file (NULL = a dirty victim
 * is written to the file: a private file, as compaction's new one).
 * Allocated here, once per open. */
pool_file *pool_file_new(pool *p, pager *pg, kvs_err *err, const kvs_locks *locks, spill *sp);
/* Binds the attachment to a file (again, after the handle moved to another
 * file or the file got a nonce): finds the file in the pool's file table or
 * takes a free entry; the frames of an entry nobody uses any more are
 * dropped first.  KVS_ENOMEM when every entry is in use. */
int        pool_file_bind(pool_file *pf, const pool_ident *id);
void       pool_file_free(pool_file *pf);   /* unbinds, frees */
/* Cache validity per file, kept in the pool (so every handle of a shared
 * pool agrees): the frames of a file are current for one value of its
 * header's change counter.  pool_file_current(pf, change), called with the
 * counter just read under the file lock, says whether they still are; if
 * not (someone outside this pool wrote the file, or the slot is new) it
 * drops them and records `change`.  pool_file_changed records the counter
 * a write-out through this pool has just stored: the frames are the file. */
int        pool_file_current(pool_file *pf, uint64_t change);
/* A shared pool's binding (pool.c, "joining a file"): by inode; when
 * *validate comes back set, the caller reads the header from the file and
 * calls pool_file_validated with it (or pool_file_abandon on failure). */
int        pool_file_join(pool_file *pf, uint64_t dev, uint64_t ino, int *validate);
void       pool_file_validated(pool_file *pf, const kvs_hdr *h);
void       pool_file_abandon(pool_file *pf);
void       pool_file_set_id(pool_file *pf, uint64_t file_id);   /* a v1/v2 file got its nonce */
/* A shared pool's section lock for this file (kvs.c's sections) and the
 * handles waiting for it; the header as of the last write-out. */
int        pool_section_lock(pool_file *pf, int exclusive, const filelock_hooks *hooks);
void       pool_section_unlock(pool_file *pf, int exclusive);
uint32_t   pool_section_waiters(const pool_file *pf);
uint32_t   pool_file_users(const pool_file *pf);      /* handles bound to this file's slot */
int        pool_file_header(pool_file *pf, kvs_hdr *h, int force);
void       pool_file_set_header(pool_file *pf, const kvs_hdr *h);
void       pool_file_changed(pool_file *pf, uint64_t change);
pool      *pool_file_pool(const pool_file *pf);
static inline uint32_t pool_file_slot(const pool_file *pf)  /* POOL_NONE while unbound */
{
    return ((const pool_file_head *)pf)->slot;
}
static inline kvs_err *pool_file_err(const pool_file *pf)   /* the handle's error record */
{
    return ((const pool_file_head *)pf)->err;
}
static inline kvs_hdr *pool_file_hdr(const pool_file *pf)   /* the handle's header */
{
    return ((const pool_file_head *)pf)->hdr;
}

/* ---- access ------------------------------------------------------------ */
#define POOL_NEW    0x2      /* the caller overwrites the page: on a miss, do not read it */

/* Pins page pgno (reading and validating it on a miss) and gives its frame
 * and bytes; the bytes may be used only under the content lock.  The hit is
 * inline (the get path makes two or three a lookup); pool_fetch_slow does
 * everything else, and all of it in KVS_DEBUG builds (its checks). */
int      pool_fetch_slow(pool_file *pf, uint32_t pgno, int flags, uint32_t *fi, uint8_t **page);
void     pool_touch_lru(pool_file *pf, uint32_t fi);     /* a hit under POOL_LRU, private pool */
/* a hint: pgno is fetched soon, and its first `bytes` read (PG_SIZE: all) */
void     pool_prefetch(pool_file *pf, uint32_t pgno, uint32_t bytes);
void     pool_prefetch_map(pool_file *pf, uint32_t pgno); /* the step before: its table slot */
/* Where frame f's descriptor and bytes are (f a guess: any number; NULL
 * beyond the pool), for a caller's prefetch only: nothing there may be read
 * without a fetch.  (The caller issues the prefetches itself: GCC 12 at -O2
 * drops the call of an inline function that does nothing but prefetch.) */
static inline const uint8_t *pool_frame_bytes(const pool_file *pf, uint32_t f, const void **desc)
{
    const pool_file_head *h = (const pool_file_head *)pf;
    if (f >= h->nframes)
        return NULL;
    *desc = &h->fr[f];
    return h->data + (size_t)f * PG_SIZE;
}
/* The bytes of page pgno if frame f (a guess) holds it, valid, in a private
 * untraced pool, else NULL: for a caller's prefetch decisions only (nothing
 * is pinned or locked; the bytes are the page's until the next fetch). */
static inline const uint8_t *pool_peek_hint(const pool_file *pf, uint32_t pgno, uint32_t f)
{
    const pool_file_head *h = (const pool_file_head *)pf;
    const pool_frame *fr;
    if (!h->fast || f >= h->nframes)
        return NULL;
    fr = &h->fr[f];
    if (fr->key != (((uint64_t)h->slot << 32) | pgno) ||
        (fr->state & (ST_TAG | ST_VALID)) != (ST_TAG | ST_VALID))
        return NULL;
    return h->data + (size_t)f * PG_SIZE;
}
#ifndef KVS_DEBUG
/* A private pool's untraced hit on frame f: counted, touched, pinned. */
static inline void pool_hit(pool_file *pf, uint32_t f, uint32_t *fi, uint8_t **page)
{
    pool_file_head *h = (pool_file_head *)pf;
    pool_frame *fr = &h->fr[f];
    h->hits++;
    if (h->policy == POOL_LRU)
        pool_touch_lru(pf, f);
    else if ((fr->state & ST_USAGE_MASK) < (uint32_t)POOL_USAGE_MAX << ST_USAGE_SHIFT)
        fr->state += ST_USAGE_ONE;
    fr->state++;
    *fi = f;
    *page = h->data + (size_t)f * PG_SIZE;
}
#endif
static inline int pool_fetch(pool_file *pf, uint32_t pgno, int flags, uint32_t *fi, uint8_t **page)
{
#ifndef KVS_DEBUG
    pool_file_head *h = (pool_file_head *)pf;
    /* a private pool's untraced hit; a shared pool's goes through the
     * partition lock, a traced one through pool_fetch_slow's record */
    if (h->fast && pgno - 1u < hdr_npages(h->hdr) - 1u) {          /* 1 <= pgno < npages */
        uint32_t f = ptab_find(h->tab, h->tabbits, ((uint64_t)h->slot << 32) | pgno);
        if (f != PTAB_EMPTY) {
            pool_hit(pf, f, fi, page);
            return KVS_OK;
        }
    }
#endif
    return pool_fetch_slow(pf, pgno, flags, fi, page);
}
/* pool_fetch with a hint: *hint is the frame that held pgno when the
 * caller last fetched it (POOL_NONE: none known).  A private pool's hit
 * whose hinted frame still holds the page (tagged with this file's key for
 * pgno, valid) skips the mapping-table probe, a cache miss of its own on a
 * large pool; anything else is pool_fetch, and *hint learns its frame.  The
 * hint is only ever a guess, checked against the frame's key: a frame that
 * was evicted or re-keyed since fails the check. */
static inline int pool_fetch_hint(pool_file *pf, uint32_t pgno, uint32_t *hint, uint32_t *fi,
                                  uint8_t **page)
{
    int rc;
#ifndef KVS_DEBUG
    pool_file_head *h = (pool_file_head *)pf;
    uint32_t f = *hint;
    if (h->fast && f < h->nframes && pgno - 1u < hdr_npages(h->hdr) - 1u) {
        const pool_frame *fr = &h->fr[f];
        if (fr->key == (((uint64_t)h->slot << 32) | pgno) &&
            (fr->state & (ST_TAG | ST_VALID)) == (ST_TAG | ST_VALID)) {
            pool_hit(pf, f, fi, page);
            return KVS_OK;
        }
    }
#endif
    rc = pool_fetch(pf, pgno, 0, fi, page);
    *hint = rc == KVS_OK ? *fi : POOL_NONE;
    return rc;
}
void     pool_dirty(pool_file *pf, uint32_t fi);         /* exclusive lock held */
/* The touch hook (KVS_LAZY's pre-images, kvs.c): while on, fn(arg, pgno,
 * bytes, dirty) is called for a frame of this file each time it is locked
 * exclusive (after the lock, before the caller changes a byte) and when a
 * dirty frame is about to be evicted (before it is written or spilled).
 * pool_touch_dirty calls it for every dirty frame of the file (walking
 * the dirty list under its lock: the hook must not call into the pool). */
typedef void (*pool_touch_fn)(void *arg, uint32_t pgno, const uint8_t *page, int dirty);
void     pool_set_touch(pool_file *pf, pool_touch_fn fn, void *arg);
/* The gate: while set, a fetch that would read a page from the file calls
 * fn(arg) first and fails with its code if nonzero (kvs.c: a read section
 * that took no lock takes it there, "Read sections without the lock"). */
typedef int (*pool_gate_fn)(void *arg);
void     pool_set_gate(pool_file *pf, pool_gate_fn fn, void *arg);
static inline void pool_touch_on(pool_file *pf, int on) { ((pool_file_head *)pf)->touch = on; }
void     pool_touch(pool_file *pf, uint32_t fi);         /* calls the hook for frame fi */
void     pool_touch_dirty(pool_file *pf);
/* Forgets this file's frames (dirty or not) whose page drop(arg, pgno) says so. */
void     pool_drop_some(pool_file *pf, int (*drop)(void *arg, uint32_t pgno), void *arg);
uint32_t pool_locks_held(const pool_file *pf);           /* KVS_DEBUG builds; else 0 */
#ifdef KVS_DEBUG
/* checked versions (pool.c): the rules above, on every call */
void     pool_unpin(pool_file *pf, uint32_t fi);
void     pool_lock(pool_file *pf, uint32_t fi, int mode);
void     pool_unlock(pool_file *pf, uint32_t fi);
#else
static inline void pool_unpin(pool_file *pf, uint32_t fi)
{
    pool_file_head *h = (pool_file_head *)pf;
    pool_frame *f = &h->fr[fi];
    if (h->conc)
        __atomic_fetch_sub(&f->state, 1u, __ATOMIC_RELEASE);
    else if (f->state & ST_PIN_MASK)
        f->state--;
}
static inline void pool_lock(pool_file *pf, uint32_t fi, int mode)
{
    const kvs_locks *l = ((const pool_file_head *)pf)->locks;
    if (l)
        l->lock(l->arg, fi, mode);
    if (mode == POOL_EXCLUSIVE && ((const pool_file_head *)pf)->touch)
        pool_touch(pf, fi);
}
static inline void pool_unlock(pool_file *pf, uint32_t fi)
{
    const kvs_locks *l = ((const pool_file_head *)pf)->locks;
    if (l)
        l->unlock(l->arg, fi);
}
#endif
/* One more pin on a frame the caller has pinned already (it stays pinned
 * after one pool_unpin); no lookup. */
static inline void pool_pin(pool_file *pf, uint32_t fi)
{
    pool_file_head *h = (pool_file_head *)pf;
    if (h->conc)
        __atomic_fetch_add(&h->fr[fi].state, 1u, __ATOMIC_ACQ_REL);
    else
        h->fr[fi].state++;
}
static inline void pool_release(pool_file *pf, uint32_t fi)     /* unlock + unpin */
{
    pool_unlock(pf, fi);
    pool_unpin(pf, fi);
}
static inline uint8_t *pool_bytes(pool_file *pf, uint32_t fi)   /* the frame's bytes (pinned) */
{
    return ((pool_file_head *)pf)->data + (size_t)fi * PG_SIZE;
}

/* A frame's state, for tests and inspection: POOL_F_* bits. */
#define POOL_F_USED   0x1
#define POOL_F_DIRTY  0x2
#define POOL_F_FRESH  0x4
unsigned pool_frame_flags(const pool_file *pf, uint32_t fi);
uint32_t pool_frame_page(const pool_file *pf, uint32_t fi);
unsigned pool_frame_usage(const pool_file *pf, uint32_t fi);   /* clock's usage count */

/* Copies this file's cached page pgno into dst if it is dirty (1), else 0. */
int      pool_copy_dirty(pool_file *pf, uint32_t pgno, uint8_t *dst);
int      pool_cached(pool_file *pf, uint32_t pgno);       /* resident? no I/O */

/* Writes this file's dirty frames: pages the section grew the file with
 * first, then the rest, each group in page order, runs of consecutive
 * pages in one write; the caller writes the header after this. */
int      pool_flush(pool_file *pf);
/* pool_flush's writes without its effect: every dirty frame goes through
 * pager_write_run (which a capturing pager hands to the journal record
 * being composed) and stays dirty, for the write-out after. */
int      pool_capture(pool_file *pf);
void     pool_drop(pool_file *pf);              /* forget this file's frames, dirty ones too */
uint32_t pool_pinned(const pool_file *pf);      /* this file's pinned frames (0 between calls) */
uint32_t pool_ndirty(const pool_file *pf);      /* this file's dirty frames */

/* Allocation: from the free list, else by growing the file (now, so ENOSPC
 * surfaces here).  The page comes back pinned, exclusively locked, zeroed,
 * typed and dirty. */
int      pool_alloc(pool_file *pf, int type, uint32_t *pgno, uint32_t *fi, uint8_t **page);
/* Puts pgno on the free list (rewrites it as a free page). */
int      pool_free_page(pool_file *pf, uint32_t pgno);

/* Counters of this attachment (pages found cached, read, evicted by it,
 * written by it). */
typedef struct pool_counters {
    uint64_t hits, reads, evictions, writes, ring_reuses;
} pool_counters;
void     pool_get_counters(const pool_file *pf, pool_counters *c);
void     pool_reset_counters(pool_file *pf);
/* Adds what this attachment counted since its last call to its file's
 * entry in the file table (atomically: every handle of the file does). */
void     pool_file_publish(pool_file *pf);

/* ---- inspection (kvs_pool_frame, kvs_pool_file) ------------------------- */
typedef struct pool_frame_stat {
    int      used, page_type, dirty;
    uint32_t slot, page, pins, usage, lru_rank;
} pool_frame_stat;
typedef struct pool_file_stat {
    uint64_t file_id, dev, ino, owner_id;
    uint32_t users, frames, dirty;
    uint64_t hits, reads, evictions, writes, ring_reuses;
} pool_file_stat;
uint32_t pool_nfiles(const pool *p);
void     pool_lru_ranks(pool *p, uint32_t *ranks);   /* ranks[nframes]; POOL_NONE = not on it */
int      pool_frame_info(pool *p, uint32_t fi, const uint32_t *ranks, pool_frame_stat *out);
int      pool_file_info(pool *p, uint32_t slot, pool_file_stat *out);   /* KVS_NOTFOUND: free */
void     pool_reset_stats(pool *p);
/* The bulk-read ring of this attachment: 0 = off. */
int      pool_file_set_ring(pool_file *pf, uint32_t frames);
/* Read-ahead in file order for a full scan (on > 0; kvs.c keeps it on
 * while a cursor over the whole key order is open): a private pool's miss,
 * while the pool still has unused frames lying in line in memory after the
 * one it takes, reads the pages after the missed one that no frame holds
 * (up to POOL_READAHEAD in all) with the same pread, each checked --
 * checksum and page_validate -- as any page read; one that fails is
 * dropped, so its error comes when it is fetched.  Never in a shared pool,
 * a traced attachment, or with pages in the spill file. */
#define  POOL_READAHEAD 16
void     pool_file_set_readahead(pool_file *pf, int on);

#endif
