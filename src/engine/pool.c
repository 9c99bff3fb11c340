/*
 * pool.c - the buffer pool (see pool.h): the block's layout, the file
 * table, the replacement policies (LRU and clock sweep), pins and content
 * locks, dirty write-back and spill, page allocation and the free list,
 * and the per-file section lock and header of a shared pool.
 *
 * The block, from its first byte:
 *   struct pool        sizes, offsets of the parts below, policy state
 *                      (LRU head/tail, clock hand), unused-frame list,
 *                      counts, and the pool's own short locks
 *   frame[nframes]     per-frame descriptor: key, state word (pins, usage
 *                      count, flags), LRU links, position in the dirty list
 *   ptab_slot[...]     the mapping table (file slot << 32 | page) -> frame:
 *                      one table per partition (one partition in a private
 *                      pool, POOL_PARTS in a shared one), each at most 3/4
 *                      full, sized at 8 times a partition's average
 *   uint32[nframes]    the dirty list (frame numbers), so a flush is O(dirty)
 *   fent[nfiles]       the file table: identity, users, counters, and in a
 *                      shared pool the section lock and current header
 *   page data          nframes * 4096 bytes, at a 4096-aligned offset
 * Every reference inside the block is an index or an offset from its start.
 *
 * Concurrency (a pool formatted by kvs_pool_format, which many processes
 * may use; a handle's own private pool does none of it), in the manner of
 * PostgreSQL's buffer manager (src/backend/storage/buffer/README):
 *   - the mapping table is split in POOL_PARTS partitions, each under its
 *     own reader/writer lock (the host's map_lock, else a spinlock here):
 *     shared to look up and pin, exclusive to enter or remove a key;
 *   - a frame's pin count, usage count and flags are one 32-bit word
 *     changed only by atomic operations.  A lookup pins under the shared
 *     partition lock; a frame is re-keyed only under the exclusive locks of
 *     its old and new partitions, and only when the re-keyer's pin is its
 *     only one, so a pin taken by a lookup can never land on a frame that
 *     has meanwhile become another page;
 *   - a miss claims a victim (an unpinned frame whose pin count it raises
 *     from 0 by compare-and-swap), re-keys it with ST_IO set, and reads
 *     the page with no lock held; a second process wanting the same page
 *     finds the key, pins, and waits for ST_IO to clear (ST_VALID then
 *     says whether the read worked);
 *   - the LRU list and the unused list are under one spinlock (`strategy`):
 *     exact LRU moves a frame to the head on every hit, and that lock is
 *     the price of it.  The clock sweep needs no lock on a hit: its hand is
 *     an atomic counter and usage counts are changed by compare-and-swap;
 *   - the dirty list under `dirtylk`, the file table under `fileslk`;
 *   - content locks are the host's (kvs_locks), one per frame.
 * Lock order: section lock (per file) > content locks > fileslk >
 * partition locks (in increasing order) > strategy / dirtylk (never both).
 * A partition lock is never held while waiting for anything but itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "pool.h"
#include "page.h"
#include "ptab.h"
#include "spin.h"
#include "filelock.h"

#define POOL_MAGIC 0x4c4f4f5053564b32ull   /* "2KVSPOOL" */
#define POOL_PARTS   KVS_POOL_PARTITIONS
#define ALIGN64(n)   (((n) + 63) & ~(size_t)63)
#define ALIGNPG(n)   (((n) + PG_SIZE - 1) & ~(size_t)(PG_SIZE - 1))

typedef pool_frame frame;

/* The section lock of a file in a shared pool: readers share it, a write
 * section holds it alone; a waiting writer keeps new readers out, so a
 * stream of readers cannot starve it. */
#define SECT_WRITER  0x80000000u
#define SECT_WWAIT   0x40000000u
#define SECT_READERS 0x3fffffffu
#define SECT_HANDOFF_NS 5000000L   /* how long a writer lets waiting readers in first */

typedef struct fent {
    uint64_t file_id, dev, ino;
    uint64_t change;         /* the file's change counter its frames are current for */
    uint32_t users;          /* attachments bound to this slot; 0 = free or idle */
    uint32_t ndirty;         /* its dirty frames */
    uint32_t change_known;   /* .change is set (the slot has a file: in use or idle) */
    uint32_t hdr_valid;      /* shared pool: .hdr is the file's current header */
    /* counters of every attachment, added at section end (pool_file_publish) */
    uint64_t hits, reads, evictions, writes, ring_reuses;
    uint32_t sect;           /* shared pool: the section lock (SECT_*) */
    uint32_t sect_waiters;   /* handles waiting for it (kvs_waiters) */
    uint32_t validating;     /* shared pool: the joiner that took the slot checks its frames */
    uint32_t pad2;
    uint64_t idle_since;     /* pool->bind_clock when the last user left: the oldest idle slot is reused first */
    kvs_hdr  hdr;            /* shared pool: the header as of the last write-out */
} fent;

typedef struct padded_lock {
    uint32_t v;
    uint32_t pad[15];
} padded_lock;

struct pool {
    uint64_t magic;
    uint32_t nframes, nfiles, tabbits, policy;
    uint32_t nparts, conc;        /* partitions of the mapping table; shared pool */
    uint64_t off_frames, off_tab, off_dirty, off_files, off_data;
    uint32_t lru_head, lru_tail;  /* POOL_LRU */
    uint32_t hand;                /* POOL_CLOCK: next frame the sweep looks at (atomic) */
    uint32_t unused;              /* frames holding no page, linked by .next */
    uint32_t ndirty;
    uint32_t pad;
    uint64_t trace_seq;           /* kvs_trace_rec.seq: one order for every handle */
    uint64_t bind_clock;          /* counts binds, ages idle file slots */
    uint32_t pcount[POOL_PARTS];  /* keys in each partition's table */
    padded_lock strategy;         /* unused list, LRU list */
    padded_lock dirtylk;          /* dirty list, per-file ndirty */
    padded_lock fileslk;          /* file table */
    padded_lock part[POOL_PARTS]; /* partition locks when the host gives none */
};

typedef struct held_lock {
    uint32_t fi, pgno;
    int      mode;
} held_lock;

struct pool_file {
    pool_file_head   head;        /* first: pool.h's inline functions read it */
    pool            *p;
    pager           *pg;
    spill           *sp;          /* the handle's spill file; NULL = evict by writing */
    pool_counters    n;
    uint64_t        *sortbuf;     /* flush scratch: (page << 32 | frame), grow-only; 2 x sortcap */
    uint32_t         sortcap;
    uint8_t         *runbuf;      /* flush scratch: copies of one run of pages */
    pool_counters    published;   /* the part of n (and hits) already added to the file entry */
    uint64_t         published_hits;
    uint32_t         ring_size;   /* bulk-read ring (0 = off) */
    int              readahead;   /* pool_file_set_readahead */
    uint32_t         ring_pos;
    uint32_t         ring[POOL_RING_MAX];
    pool_touch_fn    touch_fn;    /* pool_set_touch */
    void            *touch_arg;
    pool_gate_fn     gate_fn;     /* pool_set_gate, NULL = none */
    void            *gate_arg;
    int              trace_fd;    /* kvs_set_trace, -1 = off */
    uint64_t         trace_off;   /* where the next records go in it */
    uint32_t         ntrace;
    kvs_trace_rec    tbuf[POOL_TRACE_BUF];
#ifdef KVS_DEBUG
    uint32_t         nheld;
    held_lock        held[POOL_MAX_LOCKS];
#endif
};

static inline frame *FR(const pool *p) { return (frame *)((char *)p + p->off_frames); }
static inline ptab_slot *TAB(const pool *p, uint32_t part)
{
    return (ptab_slot *)((char *)p + p->off_tab) + ((size_t)part << p->tabbits);
}
static inline uint32_t *DIRTY(const pool *p) { return (uint32_t *)((char *)p + p->off_dirty); }
static inline fent *FILES(const pool *p) { return (fent *)((char *)p + p->off_files); }
static inline uint8_t *DATA(const pool *p, uint32_t fi)
{
    return (uint8_t *)p + p->off_data + (size_t)fi * PG_SIZE;
}
static inline uint64_t KEY(uint32_t slot, uint32_t pgno) { return ((uint64_t)slot << 32) | pgno; }
static inline uint32_t KEY_SLOT(uint64_t key) { return (uint32_t)(key >> 32); }
static inline uint32_t KEY_PAGE(uint64_t key) { return (uint32_t)key; }
static inline uint32_t PART(const pool *p, uint64_t key) { return pool_part(key, p->nparts - 1); }

/* ---- the state word: atomic in a shared pool, plain in a private one ------- */

static inline uint32_t st_load(const pool *p, const frame *f)
{
    return p->conc ? __atomic_load_n(&f->state, __ATOMIC_ACQUIRE) : f->state;
}
static inline void st_or(const pool *p, frame *f, uint32_t bits)
{
    if (p->conc)
        __atomic_fetch_or(&f->state, bits, __ATOMIC_ACQ_REL);
    else
        f->state |= bits;
}
static inline void st_andnot(const pool *p, frame *f, uint32_t bits)
{
    if (p->conc)
        __atomic_fetch_and(&f->state, ~bits, __ATOMIC_ACQ_REL);
    else
        f->state &= ~bits;
}
static inline void st_pin(const pool *p, frame *f)
{
    if (p->conc)
        __atomic_fetch_add(&f->state, 1u, __ATOMIC_ACQ_REL);
    else
        f->state++;
}
static inline void st_unpin(const pool *p, frame *f)
{
    if (p->conc)
        __atomic_fetch_sub(&f->state, 1u, __ATOMIC_RELEASE);
    else if (f->state & ST_PIN_MASK)
        f->state--;
}
static inline uint32_t st_usage(uint32_t st) { return (st & ST_USAGE_MASK) >> ST_USAGE_SHIFT; }
static inline uint32_t st_pins(uint32_t st) { return st & ST_PIN_MASK; }

/* A hit's pin: one more pin and one more use (capped). */
static inline void st_pin_use(const pool *p, frame *f)
{
    uint32_t old, nw;
    if (!p->conc) {
        if (st_usage(f->state) < POOL_USAGE_MAX)
            f->state += ST_USAGE_ONE;
        f->state++;
        return;
    }
    old = __atomic_load_n(&f->state, __ATOMIC_RELAXED);
    do {
        nw = old + 1;
        if (st_usage(old) < POOL_USAGE_MAX)
            nw += ST_USAGE_ONE;
    } while (!__atomic_compare_exchange_n(&f->state, &old, nw, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
}

/* Claims an unpinned frame (its pin count 0 -> 1) if its state is still
 * `seen`; a victim search uses it so two searchers never take one frame. */
static inline int st_claim(const pool *p, frame *f, uint32_t seen)
{
    if (st_pins(seen) != 0)
        return 0;
    if (!p->conc) {
        f->state = seen + 1;
        return 1;
    }
    return __atomic_compare_exchange_n(&f->state, &seen, seen + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* ---- the pool's short locks --------------------------------------------------- */

static inline void lk(const pool *p, padded_lock *l)
{
    if (p->conc)
        spin_lock(&l->v);
}
static inline void unlk(const pool *p, padded_lock *l)
{
    if (p->conc)
        spin_unlock(&l->v);
}

static inline void map_lock(pool_file *pf, uint32_t part, int exclusive)
{
    pool *p = pf->p;
    const kvs_locks *l = pf->head.locks;
    if (!p->conc)
        return;
    if (l && l->map_lock)
        l->map_lock(l->arg, part, exclusive ? KVS_LOCK_EXCLUSIVE : KVS_LOCK_SHARED);
    else
        rwspin_lock(&p->part[part].v, exclusive);
}
static inline void map_unlock(pool_file *pf, uint32_t part, int exclusive)
{
    pool *p = pf->p;
    const kvs_locks *l = pf->head.locks;
    if (!p->conc)
        return;
    if (l && l->map_unlock)
        l->map_unlock(l->arg, part);
    else
        rwspin_unlock(&p->part[part].v, exclusive);
}

/* ---- the page-access trace (kvs_set_trace) ------------------------------------ */

int pool_trace_flush(pool_file *pf)
{
    size_t n = (size_t)pf->ntrace * sizeof(kvs_trace_rec);
    pf->ntrace = 0;
    if (pf->trace_fd < 0 || n == 0)
        return KVS_OK;
    if (pager_write_all(pager_os(pf->pg), pf->trace_fd, pf->tbuf, n, (off_t)pf->trace_off) != 0)
        return kvs_seterrno(pf->head.err, errno, 0, "cannot write the page-access trace");
    pf->trace_off += n;
    return KVS_OK;
}

void pool_trace(pool_file *pf, uint32_t pgno, uint32_t flags)
{
    kvs_trace_rec *r = &pf->tbuf[pf->ntrace++];
    r->seq = pf->p->conc ? __atomic_fetch_add(&pf->p->trace_seq, 1, __ATOMIC_RELAXED) : pf->p->trace_seq++;
    r->file_slot = pf->head.slot;
    r->page = pgno;
    r->flags = flags;
    r->pad = 0;
    if (pf->ntrace == POOL_TRACE_BUF)
        (void)pool_trace_flush(pf);
}

int pool_file_set_trace(pool_file *pf, int fd)
{
    int rc = pool_trace_flush(pf);
    off_t end = fd >= 0 ? pager_os(pf->pg)->filesize(fd) : 0;
    pf->trace_fd = fd;
    pf->trace_off = end > 0 ? (uint64_t)end : 0;   /* appends */
    pf->head.trace = fd >= 0;
    pf->head.fast = !pf->head.conc && !pf->head.trace;
    return rc;
}

/* ---- the block ------------------------------------------------------------ */

/* log2 of one partition's table: at least twice the frames it could hold
 * on average times four, and room for every frame in a small pool. */
static uint32_t tab_bits(uint32_t nframes, uint32_t nparts)
{
    uint64_t want = nparts == 1 ? 2 * (uint64_t)nframes : 8 * (uint64_t)nframes / nparts;
    uint32_t bits = 1;
    if (nparts > 1 && want < 2 * (uint64_t)nframes && nframes <= 256)
        want = 2 * (uint64_t)nframes;
    while (((uint64_t)1 << bits) < want)
        bits++;
    return bits;
}

/* Offsets of the parts; returns the block size. */
static size_t layout(uint32_t nframes, uint32_t nfiles, uint32_t nparts, pool *p)
{
    uint32_t bits = tab_bits(nframes, nparts);
    size_t off = ALIGN64(sizeof(pool)), frames, tab, dirty, files, data;
    frames = off;
    off = ALIGN64(off + (size_t)nframes * sizeof(frame));
    tab = off;
    off = ALIGN64(off + (size_t)nparts * ((size_t)1 << bits) * sizeof(ptab_slot));
    dirty = off;
    off = ALIGN64(off + (size_t)nframes * sizeof(uint32_t));
    files = off;
    off = ALIGNPG(off + (size_t)nfiles * sizeof(fent));
    data = off;
    off += (size_t)nframes * PG_SIZE;
    if (p) {
        p->tabbits = bits;
        p->nparts = nparts;
        p->off_frames = frames;
        p->off_tab = tab;
        p->off_dirty = dirty;
        p->off_files = files;
        p->off_data = data;
    }
    return off;
}

size_t pool_mem_size(uint32_t nframes, uint32_t nfiles)
{
    return layout(nframes, nfiles, 1, NULL);
}

size_t pool_mem_size_shared(uint32_t nframes, uint32_t nfiles)
{
    return layout(nframes, nfiles, POOL_PARTS, NULL);
}

static pool *format(void *mem, uint32_t nframes, uint32_t nfiles, int policy, int shared)
{
    pool *p = mem;
    frame *fr;
    uint32_t i;
    memset(p, 0, sizeof *p);
    p->nframes = nframes;
    p->nfiles = nfiles;
    p->policy = policy == POOL_CLOCK ? POOL_CLOCK : POOL_LRU;
    p->conc = shared != 0;
    layout(nframes, nfiles, shared ? POOL_PARTS : 1, p);
    fr = FR(p);
    for (i = 0; i < nframes; i++) {
        memset(&fr[i], 0, sizeof fr[i]);
        fr[i].prev = POOL_NONE;
        fr[i].next = i + 1 < nframes ? i + 1 : POOL_NONE;
    }
    p->unused = 0;
    p->lru_head = p->lru_tail = POOL_NONE;
    p->hand = 0;
    for (i = 0; i < p->nparts; i++)
        ptab_clear(TAB(p, i), p->tabbits);
    memset(FILES(p), 0, (size_t)nfiles * sizeof(fent));
    p->magic = POOL_MAGIC;
    return p;
}

pool *pool_format(void *mem, uint32_t nframes, uint32_t nfiles, int policy)
{
    return format(mem, nframes, nfiles, policy, 0);
}

pool *pool_format_shared(void *mem, uint32_t nframes, uint32_t nfiles, int policy)
{
    return format(mem, nframes, nfiles, policy, 1);
}

pool *pool_of(void *mem)
{
    pool *p = mem;
    return p && p->magic == POOL_MAGIC ? p : NULL;
}

uint32_t pool_nframes(const pool *p) { return p->nframes; }
int pool_policy(const pool *p) { return (int)p->policy; }
int pool_is_shared(const pool *p) { return (int)p->conc; }

/* ---- the replacement policies ----------------------------------------------
 * Four functions are the whole interface: admit (a frame now holds a page),
 * touch (a hit), forget (the frame is emptied) and victim (claim an
 * unpinned frame to reuse).  LRU keeps a doubly linked list in recency
 * order under the strategy lock; the clock keeps a usage count per frame
 * (in the state word) and an atomic hand.  Usage counts are kept under
 * both policies: the bulk-read ring reads them. */

static inline void lru_unlink(pool *p, uint32_t fi)
{
    frame *fr = FR(p), *f = &fr[fi];
    if (!f->inlru)
        return;
    if (f->prev != POOL_NONE)
        fr[f->prev].next = f->next;
    else
        p->lru_head = f->next;
    if (f->next != POOL_NONE)
        fr[f->next].prev = f->prev;
    else
        p->lru_tail = f->prev;
    f->prev = f->next = POOL_NONE;
    f->inlru = 0;
}

static inline void lru_push_head(pool *p, uint32_t fi)
{
    frame *fr = FR(p), *f = &fr[fi];
    f->prev = POOL_NONE;
    f->next = p->lru_head;
    if (p->lru_head != POOL_NONE)
        fr[p->lru_head].prev = fi;
    p->lru_head = fi;
    if (p->lru_tail == POOL_NONE)
        p->lru_tail = fi;
    f->inlru = 1;
}

static inline void lru_to_head(pool *p, uint32_t fi)
{
    if (p->lru_head != fi) {
        lru_unlink(p, fi);
        lru_push_head(p, fi);
    }
}

/* Admit: the usage count is set by the re-key; LRU puts it at the head. */
static void policy_admit(pool *p, uint32_t fi)
{
    if (p->policy == POOL_LRU) {
        lk(p, &p->strategy);
        lru_to_head(p, fi);
        unlk(p, &p->strategy);
    }
}

/* A hit under LRU in a private pool: the frame is on the list (every
 * tagged frame is).  Kept apart from the shared pool's, so the hit path of
 * a private pool is what it was before pools could be shared. */
void pool_touch_lru(pool_file *pf, uint32_t fi)
{
    lru_to_head(pf->p, fi);
}

/* The same in a shared pool, under the strategy lock: the frame may have
 * just left the list (a victim search claimed it), and then stays off. */
static void touch_lru_shared(pool *p, uint32_t fi)
{
    spin_lock(&p->strategy.v);
    if (FR(p)[fi].inlru)
        lru_to_head(p, fi);
    spin_unlock(&p->strategy.v);
}

/* A frame whose state `st` lets `slot` reuse it: holding a page, unpinned,
 * not being read, and not another file's dirty frame (only the handle
 * whose section dirtied it writes it). */
static inline int reusable(const frame *f, uint32_t st, uint32_t slot)
{
    if (st_pins(st) != 0 || (st & ST_IO) || !(st & ST_TAG))
        return 0;     /* an untagged frame is on the unused list, get_victim's first choice */
    return !(st & ST_DIRTY) || KEY_SLOT(f->key) == slot;
}

/* The policy's choice, claimed (pinned once by the caller), POOL_NONE if
 * no frame is reusable. */
static uint32_t policy_victim(pool *p, uint32_t slot)
{
    frame *fr = FR(p);
    uint32_t fi, tries;
    if (p->policy == POOL_LRU) {
        lk(p, &p->strategy);
        for (fi = p->lru_tail; fi != POOL_NONE; fi = fr[fi].prev) {
            uint32_t st = st_load(p, &fr[fi]);
            if (reusable(&fr[fi], st, slot) && st_claim(p, &fr[fi], st))
                break;
        }
        unlk(p, &p->strategy);
        return fi;
    }
    /* PostgreSQL's StrategyGetBuffer: sweep, decrementing usage counts; a
     * full turn that finds only unusable frames without decrementing any
     * count means there is none */
    tries = p->nframes;
    for (;;) {
        frame *f;
        uint32_t st;
        fi = (p->conc ? __atomic_fetch_add(&p->hand, 1u, __ATOMIC_RELAXED) : p->hand++) % p->nframes;
        f = &fr[fi];
        st = st_load(p, f);
        if (reusable(f, st, slot)) {
            if (st_usage(st) == 0) {
                if (st_claim(p, f, st))
                    return fi;
                continue;
            }
            /* best effort: a lost race means someone else changed it */
            if (p->conc)
                (void)__atomic_compare_exchange_n(&f->state, &st, st - ST_USAGE_ONE, 0,
                                                  __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
            else
                f->state = st - ST_USAGE_ONE;
            tries = p->nframes;
        } else if (--tries == 0) {
            return POOL_NONE;
        }
    }
}

/* ---- content locks ------------------------------------------------------------ */

#ifdef KVS_DEBUG
static void lock_violation(const pool_file *pf, const char *what, uint32_t pgno)
{
    fprintf(stderr, "kvs: content lock rule broken: %s (page %u, %u lock(s) held)\n", what,
            (unsigned)pgno, (unsigned)pf->nheld);
    abort();
}

static void assert_no_locks(const pool_file *pf, const char *call)
{
    if (pf->nheld)
        lock_violation(pf, call, pf->held[0].pgno);
}
#define ASSERT_NO_LOCKS(pf, call) assert_no_locks((pf), (call))
#else
#define ASSERT_NO_LOCKS(pf, call) ((void)0)
#endif

#ifdef KVS_DEBUG
void pool_lock(pool_file *pf, uint32_t fi, int mode)
{
    pool *p = pf->p;
    frame *f = &FR(p)[fi];
    uint32_t st = st_load(p, f), pgno = KEY_PAGE(f->key), i;
    if (!(st & ST_TAG) || st_pins(st) == 0 || KEY_SLOT(f->key) != pf->head.slot)
        lock_violation(pf, "lock of a frame this handle has not pinned", pgno);
    for (i = 0; i < pf->nheld; i++)
        if (pf->held[i].fi == fi)
            lock_violation(pf, "lock of a page already locked by this handle", pgno);
    if (pf->nheld == POOL_MAX_LOCKS)
        lock_violation(pf, "more than POOL_MAX_LOCKS content locks", pgno);
    if (pf->nheld == 1 && rd32(DATA(p, pf->held[0].fi) + PG_NEXT) != pgno)
        lock_violation(pf, "second lock not on the next page of the first (chain order)", pgno);
    pf->held[pf->nheld].fi = fi;
    pf->held[pf->nheld].pgno = pgno;
    pf->held[pf->nheld].mode = mode;
    pf->nheld++;
    if (pf->head.locks)
        pf->head.locks->lock(pf->head.locks->arg, fi, mode);
    if (mode == POOL_EXCLUSIVE && pf->head.touch)
        pool_touch(pf, fi);
}

void pool_unlock(pool_file *pf, uint32_t fi)
{
    uint32_t i;
    for (i = 0; i < pf->nheld && pf->held[i].fi != fi; i++)
        ;
    if (i == pf->nheld)
        lock_violation(pf, "unlock of a page this handle has not locked", KEY_PAGE(FR(pf->p)[fi].key));
    pf->held[i] = pf->held[--pf->nheld];
    if (pf->head.locks)
        pf->head.locks->unlock(pf->head.locks->arg, fi);
}
#endif

uint32_t pool_locks_held(const pool_file *pf)
{
#ifdef KVS_DEBUG
    return pf->nheld;
#else
    (void)pf;
    return 0;
#endif
}

/* ---- the dirty list ---------------------------------------------------------- */

static void mark_dirty(pool *p, uint32_t fi)
{
    frame *f = &FR(p)[fi];
    if (st_load(p, f) & ST_DIRTY)
        return;
    lk(p, &p->dirtylk);
    if (!(st_load(p, f) & ST_DIRTY)) {
        st_or(p, f, ST_DIRTY);
        f->dpos = p->ndirty;
        DIRTY(p)[p->ndirty++] = fi;
        FILES(p)[KEY_SLOT(f->key)].ndirty++;
    }
    unlk(p, &p->dirtylk);
}

static void mark_clean(pool *p, uint32_t fi)
{
    frame *fr = FR(p);
    if (!(st_load(p, &fr[fi]) & ST_DIRTY))
        return;
    lk(p, &p->dirtylk);
    if (st_load(p, &fr[fi]) & ST_DIRTY) {
        uint32_t *d = DIRTY(p), pos = fr[fi].dpos, last = d[--p->ndirty];
        d[pos] = last;
        fr[last].dpos = pos;
        st_andnot(p, &fr[fi], ST_DIRTY);
        FILES(p)[KEY_SLOT(fr[fi].key)].ndirty--;
    }
    unlk(p, &p->dirtylk);
}

void pool_dirty(pool_file *pf, uint32_t fi)
{
#ifdef KVS_DEBUG
    uint32_t i;
    for (i = 0; i < pf->nheld && !(pf->held[i].fi == fi && pf->held[i].mode == POOL_EXCLUSIVE); i++)
        ;
    if (i == pf->nheld)
        lock_violation(pf, "page dirtied without its exclusive lock", KEY_PAGE(FR(pf->p)[fi].key));
#endif
    mark_dirty(pf->p, fi);
}

/* ---- frames ---------------------------------------------------------------- */

static void push_unused(pool *p, uint32_t fi)
{
    frame *f = &FR(p)[fi];
    lk(p, &p->strategy);
    if (p->policy == POOL_LRU)
        lru_unlink(p, fi);
    f->next = p->unused;
    p->unused = fi;
    unlk(p, &p->strategy);
}

/* A frame off the unused list, pinned once; POOL_NONE if there is none. */
static uint32_t pop_unused(pool *p)
{
    uint32_t fi;
    if (p->unused == POOL_NONE)     /* unlocked peek: full pools skip the lock */
        return POOL_NONE;
    lk(p, &p->strategy);
    fi = p->unused;
    if (fi != POOL_NONE) {
        p->unused = FR(p)[fi].next;
        FR(p)[fi].next = POOL_NONE;
        st_pin(p, &FR(p)[fi]);
    }
    unlk(p, &p->strategy);
    return fi;
}

/* Removes frame fi's key from the mapping table (its partition is locked
 * exclusively by the caller) and clears its flags but the pins. */
static void untag_locked(pool *p, uint32_t fi)
{
    frame *f = &FR(p)[fi];
    uint32_t part = PART(p, f->key);
    mark_clean(p, fi);
    if (ptab_delete(TAB(p, part), p->tabbits, f->key))
        p->pcount[part]--;
    st_andnot(p, f, ST_TAG | ST_VALID | ST_IO | ST_DIRTY | ST_FRESH | ST_USAGE_MASK);
}

/* Waits until only the caller pins frame fi (others let go within
 * microseconds: a victim search that lost, a waiter for a failed read). */
static void wait_sole_pin(pool *p, uint32_t fi)
{
    unsigned n = 0;
    while (st_pins(st_load(p, &FR(p)[fi])) > 1)
        spin_delay(&n);
}

/* Empties frame fi (pinned by nobody but perhaps a searcher about to let
 * go) of its page, dirty or not, onto the unused list. */
static void frame_release(pool_file *pf, uint32_t fi)
{
    pool *p = pf->p;
    frame *f = &FR(p)[fi];
    uint32_t st, part;
    unsigned n = 0;
    for (;;) {
        st = st_load(p, f);
        if (!(st & ST_TAG))
            return;
        part = PART(p, f->key);
        map_lock(pf, part, 1);
        st = st_load(p, f);
        if ((st & ST_TAG) && st_claim(p, f, st))
            break;
        map_unlock(pf, part, 1);
        if (!(st & ST_TAG))
            return;
        spin_delay(&n);
    }
    untag_locked(p, fi);
    map_unlock(pf, part, 1);
    push_unused(p, fi);
    st_unpin(p, f);
}

/* Writes (or spills) a dirty victim of pf's own file.  No-steal: a page the
 * file already had goes to the spill file, so the file is untouched until
 * the section ends; a page the section grew the file with can go to the
 * file (nothing on disk points to it), each time it is evicted: also when
 * it was evicted before and read back (no longer ST_FRESH), else a bulk
 * load bigger than the pool sent every page it revisited to the spill file,
 * which grows by one page per eviction (a taken page's slot is not reused). */
static int write_victim(pool_file *pf, uint32_t fi)
{
    pool *p = pf->p;
    frame *f = &FR(p)[fi];
    uint32_t pgno = KEY_PAGE(f->key);
    int rc;
    if (pf->head.touch)
        pf->touch_fn(pf->touch_arg, pgno, DATA(p, fi), 1);
    if (pf->sp && pgno < pager_sect_npages(pf->pg)) {
        rc = spill_write(pf->sp, pgno, DATA(p, fi));
    } else {
        rc = pager_write(pf->pg, pgno, DATA(p, fi));
        if (rc == KVS_OK)
            pf->n.writes++;
    }
    if (rc == KVS_OK)
        mark_clean(p, fi);
    return rc;
}

/* The bulk-read ring's candidate: the frame this handle filled ring_size
 * misses ago, if nobody else has wanted it since (unpinned, clean, still
 * this file's, used at most once), claimed; else POOL_NONE. */
static uint32_t ring_victim(pool_file *pf)
{
    pool *p = pf->p;
    uint32_t fi = pf->ring[pf->ring_pos];
    frame *f;
    uint32_t st;
    if (fi == POOL_NONE)
        return POOL_NONE;
    f = &FR(p)[fi];
    st = st_load(p, f);
    if (!(st & ST_TAG) || (st & (ST_DIRTY | ST_IO)) || st_usage(st) > 1 ||
        KEY_SLOT(f->key) != pf->head.slot || !st_claim(p, f, st))
        return POOL_NONE;
    return fi;
}

/* A frame to fill for pf, claimed (pinned once): an unused one, else the
 * ring's or the policy's victim (its page written back or spilled first if
 * dirty: it is pf's own).  It may still carry its old key; rekey moves it. */
static int get_victim(pool_file *pf, uint32_t *out, int *from_ring)
{
    pool *p = pf->p;
    frame *fr = FR(p);
    uint32_t fi;
    int rc;
    *from_ring = 0;
    fi = pop_unused(p);
    if (fi == POOL_NONE && pf->ring_size) {
        fi = ring_victim(pf);
        *from_ring = fi != POOL_NONE;
    }
    if (fi == POOL_NONE)
        fi = policy_victim(p, pf->head.slot);
    if (fi == POOL_NONE)
        return kvs_seterr(pf->head.err, KVS_ENOMEM, 0,
                          "buffer pool: all %u frames are pinned or hold another file's changes",
                          (unsigned)p->nframes);
    if (pf->ring_size) {
        pf->ring[pf->ring_pos] = fi;
        pf->ring_pos = (pf->ring_pos + 1) % pf->ring_size;
    }
    if (st_load(p, &fr[fi]) & ST_DIRTY) {
        rc = write_victim(pf, fi);
        if (rc) {
            st_unpin(p, &fr[fi]);
            return rc;
        }
    }
    /* a page the ring pushes out is a ring reuse (counted by the caller),
     * not an eviction by the policy */
    if ((st_load(p, &fr[fi]) & ST_TAG) && !*from_ring)
        pf->n.evictions++;
    *out = fi;
    return KVS_OK;
}

#define REKEY_OK      0
#define REKEY_EXISTS  1    /* key is mapped already: *existing is pinned */
#define REKEY_BUSY    2    /* the victim was pinned meanwhile: choose again */
#define REKEY_FULL    3    /* the key's partition table is full */

/* Moves claimed victim fi to key under the exclusive locks of its old and
 * new partitions (taken in increasing order), as PostgreSQL's BufferAlloc:
 * only if the key is not mapped meanwhile and the victim has no pin but
 * ours.  The frame comes out tagged, ST_IO set, not valid, usage 1. */
static int rekey(pool_file *pf, uint32_t fi, uint64_t key, uint32_t *existing)
{
    pool *p = pf->p;
    frame *f = &FR(p)[fi];
    uint32_t st = st_load(p, f), part = PART(p, key), oldpart = POOL_NONE, lo, hi, e;
    int rc = REKEY_OK;
    if (st & ST_TAG)
        oldpart = PART(p, f->key);
    lo = oldpart != POOL_NONE && oldpart < part ? oldpart : part;
    hi = oldpart != POOL_NONE && oldpart > part ? oldpart : part;
    map_lock(pf, lo, 1);
    if (hi != lo)
        map_lock(pf, hi, 1);
    e = ptab_find(TAB(p, part), p->tabbits, key);
    st = st_load(p, f);
    if (e != PTAB_EMPTY) {
        st_pin_use(p, &FR(p)[e]);
        *existing = e;
        rc = REKEY_EXISTS;
    } else if (st_pins(st) != 1 || (st & (ST_DIRTY | ST_IO)) ||
               (oldpart != POOL_NONE) != ((st & ST_TAG) != 0)) {
        rc = REKEY_BUSY;
    } else if (p->pcount[part] >= ((uint32_t)3 << p->tabbits) / 4) {
        rc = REKEY_FULL;
    } else {
        if (st & ST_TAG)
            untag_locked(p, fi);
        f->key = key;
        ptab_insert(TAB(p, part), p->tabbits, key, fi);
        p->pcount[part]++;
        st_or(p, f, ST_TAG | ST_IO | ST_USAGE_ONE);
    }
    if (hi != lo)
        map_unlock(pf, hi, 1);
    map_unlock(pf, lo, 1);
    return rc;
}

/* Waits for another handle's read of frame fi (pinned by us) to finish;
 * returns whether the frame holds the page now. */
static int wait_valid(pool *p, uint32_t fi)
{
    unsigned n = 0;
    uint32_t st;
    while ((st = st_load(p, &FR(p)[fi])) & ST_IO)
        spin_delay(&n);
    return (st & ST_VALID) != 0;
}

/* Reads page pgno into claimed, re-keyed frame fi (ST_IO set). */
static int fill(pool_file *pf, uint32_t fi, uint32_t pgno, int flags)
{
    pool *p = pf->p;
    uint8_t *data = DATA(p, fi);
    /* a spilled page lives in the spill file until it comes back here */
    int rc = pf->sp ? spill_take(pf->sp, pgno, data, !(flags & POOL_NEW)) : 0;
    if (rc < 0)
        return rc;
    if (rc == 1) {
        if (flags & POOL_NEW)
            memset(data, 0, PG_SIZE);
        mark_dirty(p, fi);
    } else if (flags & POOL_NEW) {
        memset(data, 0, PG_SIZE);
    } else {
        rc = pager_read(pf->pg, pgno, data);
        if (rc == KVS_OK)
            rc = page_validate(data, pgno, hdr_npages(pf->head.hdr), pf->head.err);
        if (rc)
            return rc;
        pf->n.reads++;
    }
    return KVS_OK;
}

/* A failed fill: the frame leaves the table (waiters see it not valid and
 * look again), then the unused list takes it. */
static void unfill(pool_file *pf, uint32_t fi)
{
    pool *p = pf->p;
    frame *f = &FR(p)[fi];
    uint32_t part = PART(p, f->key);
    map_lock(pf, part, 1);
    untag_locked(p, fi);
    map_unlock(pf, part, 1);
    wait_sole_pin(p, fi);
    push_unused(p, fi);
    st_unpin(p, f);
}

/* Whether a miss of pf may read ahead (pool_file_set_readahead): the
 * frame it took is the one before the unused list's head in memory. */
static int ahead_ok(const pool_file *pf, uint32_t fi, int flags)
{
    const pool *p = pf->p;
    return pf->readahead && !p->conc && !pf->head.trace && !(flags & POOL_NEW) &&
           p->unused == fi + 1 && (!pf->sp || spill_count(pf->sp) == 0);
}

/* Frames fi+1.. for pages pgno+1.., each taken off the unused list while it
 * is the next frame in memory, re-keyed (ST_IO); stops at a page a frame
 * holds already and at the file's end.  How many, at most max. */
static uint32_t ahead_frames(pool_file *pf, uint32_t fi, uint32_t pgno, uint32_t max)
{
    pool *p = pf->p;
    uint32_t n = 0, nf, existing;
    int rc;
    while (n < max && pgno + 1 + n < hdr_npages(pf->head.hdr) && p->unused == fi + 1 + n) {
        nf = pop_unused(p);
        rc = rekey(pf, nf, KEY(pf->head.slot, pgno + 1 + n), &existing);
        if (rc != REKEY_OK) {
            if (rc == REKEY_EXISTS)
                st_unpin(p, &FR(p)[existing]);
            push_unused(p, nf);
            st_unpin(p, &FR(p)[nf]);
            break;
        }
        n++;
    }
    return n;
}

/* fill for a miss that reads ahead: page pgno into frame fi and the pages
 * after it into the n frames after fi (ahead_frames), with one read.  The
 * missed page is checked and fails as fill's would (its read again by fill
 * if the run's read did not bring it); each page ahead that does not pass
 * its checks leaves its frame, to fail when fetched. */
static int fill_ahead(pool_file *pf, uint32_t fi, uint32_t pgno, uint32_t n, int flags)
{
    pool *p = pf->p;
    uint32_t npages = hdr_npages(pf->head.hdr), got, i;
    kvs_err scratch;
    int rc;
    got = pager_read_pages(pf->pg, pgno, DATA(p, fi), n + 1);
    for (i = 1; i <= n; i++) {
        uint8_t *d = DATA(p, fi + i);
        frame *f = &FR(p)[fi + i];
        if (i < got && rd64(d + PG_CKSUM) == pager_checksum(d, pgno + i) &&
            page_validate(d, pgno + i, npages, &scratch) == KVS_OK) {
            policy_admit(p, fi + i);
            pf->n.reads++;
            st_or(p, f, ST_VALID);
            st_andnot(p, f, ST_IO);
            st_unpin(p, f);
        } else {
            unfill(pf, fi + i);
        }
    }
    if (got == 0)
        return fill(pf, fi, pgno, flags);
    rc = pager_verify(pf->pg, pgno, DATA(p, fi));
    if (rc == KVS_OK)
        rc = page_validate(DATA(p, fi), pgno, npages, pf->head.err);
    if (rc == KVS_OK)
        pf->n.reads++;
    return rc;
}

int pool_fetch_slow(pool_file *pf, uint32_t pgno, int flags, uint32_t *out, uint8_t **page)
{
    pool *p = pf->p;
    uint64_t key = KEY(pf->head.slot, pgno);
    uint32_t part = PART(p, key), fi, existing;
    int rc, from_ring;
    ASSERT_NO_LOCKS(pf, "pool_fetch with a content lock held");
    if (pgno == 0 || pgno >= hdr_npages(pf->head.hdr))
        return kvs_seterr(pf->head.err, KVS_ECORRUPT, pgno,
                          "page %u referenced as a data page (file has %u pages)",
                          (unsigned)pgno, (unsigned)hdr_npages(pf->head.hdr));
    for (;;) {
        map_lock(pf, part, 0);
        fi = ptab_find(TAB(p, part), p->tabbits, key);
        if (fi != PTAB_EMPTY)
            st_pin_use(p, &FR(p)[fi]);
        map_unlock(pf, part, 0);
        if (fi != PTAB_EMPTY) {
            if (p->conc && !(st_load(p, &FR(p)[fi]) & ST_VALID) && !wait_valid(p, fi)) {
                st_unpin(p, &FR(p)[fi]);     /* its read failed: look again */
                continue;
            }
            pf->head.hits++;
            if (pf->head.trace)
                pool_trace(pf, pgno, KVS_TRACE_HIT);
            if (p->policy == POOL_LRU) {
                if (p->conc)
                    touch_lru_shared(p, fi);
                else
                    pool_touch_lru(pf, fi);
            }
            *out = fi;
            *page = DATA(p, fi);
            return KVS_OK;
        }
        if (pf->gate_fn && (rc = pf->gate_fn(pf->gate_arg)) != KVS_OK)
            return rc;
        rc = get_victim(pf, &fi, &from_ring);
        if (rc)
            return rc;
        rc = rekey(pf, fi, key, &existing);
        if (rc == REKEY_OK)
            break;
        /* the victim goes back as it was (it is clean: get_victim wrote it);
         * one from the unused list goes back there */
        if (!(st_load(p, &FR(p)[fi]) & ST_TAG))
            push_unused(p, fi);
        st_unpin(p, &FR(p)[fi]);
        if (rc == REKEY_FULL)
            return kvs_seterr(pf->head.err, KVS_ENOMEM, 0, "buffer pool: a mapping-table partition is full");
        if (rc == REKEY_EXISTS) {
            /* another handle entered the page meanwhile: use its frame */
            st_unpin(p, &FR(p)[existing]);
        }
    }
    if (pf->head.trace)
        pool_trace(pf, pgno, from_ring ? KVS_TRACE_RING : 0);
    if (from_ring)
        pf->n.ring_reuses++;
    policy_admit(p, fi);
    if (ahead_ok(pf, fi, flags)) {
        uint32_t n = ahead_frames(pf, fi, pgno, POOL_READAHEAD - 1);
        rc = n ? fill_ahead(pf, fi, pgno, n, flags) : fill(pf, fi, pgno, flags);
    } else {
        rc = fill(pf, fi, pgno, flags);
    }
    if (rc) {
        unfill(pf, fi);
        return rc;
    }
    /* the page is in: waiters may read it */
    st_or(p, &FR(p)[fi], ST_VALID);
    st_andnot(p, &FR(p)[fi], ST_IO);
    *out = fi;
    *page = DATA(p, fi);
    return KVS_OK;
}

#ifdef KVS_DEBUG
void pool_unpin(pool_file *pf, uint32_t fi)
{
    frame *f = &FR(pf->p)[fi];
    uint32_t i;
    for (i = 0; i < pf->nheld; i++)
        if (pf->held[i].fi == fi)
            lock_violation(pf, "unpin of a page still locked", KEY_PAGE(f->key));
    st_unpin(pf->p, f);
}
#endif

/* A hint that page pgno will be fetched soon: if a frame holds it, its
 * first `bytes` (a page's whole, or its header alone for a walk that reads
 * no record) are brought toward the CPU's cache (no pin, no content lock, no
 * I/O: the frame may be reused before the fetch, which then only misses as
 * it would have).  The mapping-table probe also leaves the table's lines
 * in the cache for the fetch's own probe. */
void pool_prefetch(pool_file *pf, uint32_t pgno, uint32_t bytes)
{
    pool *p = pf->p;
    uint64_t key = KEY(pf->head.slot, pgno);
    uint32_t part = PART(p, key), fi;
    if (pgno == 0 || pgno >= hdr_npages(pf->head.hdr))
        return;
    map_lock(pf, part, 0);
    fi = ptab_find(TAB(p, part), p->tabbits, key);
    map_unlock(pf, part, 0);
#if defined(__GNUC__)
    if (fi != PTAB_EMPTY && fi < p->nframes) {
        const uint8_t *d = DATA(p, fi);
        size_t off;
        for (off = 0; off < PG_SIZE && off < bytes; off += 64)
            __builtin_prefetch(d + off);
    }
#else
    (void)bytes;
#endif
}

/* A hint one step before pool_prefetch: the mapping-table slot where the
 * probe for page pgno begins is brought toward the cache (an address
 * computed and prefetched, nothing read: no lock needed). */
void pool_prefetch_map(pool_file *pf, uint32_t pgno)
{
#if defined(__GNUC__)
    pool *p = pf->p;
    uint64_t key = KEY(pf->head.slot, pgno);
    __builtin_prefetch(TAB(p, PART(p, key)) + ptab_home(key, p->tabbits));
#else
    (void)pf;
    (void)pgno;
#endif
}

/* The frame holding this file's page pgno, pinned, or POOL_NONE (no I/O). */
static uint32_t find_pinned(pool_file *pf, uint32_t pgno)
{
    pool *p = pf->p;
    uint64_t key = KEY(pf->head.slot, pgno);
    uint32_t part = PART(p, key), fi;
    map_lock(pf, part, 0);
    fi = ptab_find(TAB(p, part), p->tabbits, key);
    if (fi != PTAB_EMPTY)
        st_pin(p, &FR(p)[fi]);
    map_unlock(pf, part, 0);
    if (fi == PTAB_EMPTY)
        return POOL_NONE;
    if (!(st_load(p, &FR(p)[fi]) & ST_VALID) && !wait_valid(p, fi)) {
        st_unpin(p, &FR(p)[fi]);
        return POOL_NONE;
    }
    return fi;
}

int pool_cached(pool_file *pf, uint32_t pgno)
{
    uint32_t fi = find_pinned(pf, pgno);
    if (fi == POOL_NONE)
        return 0;
    st_unpin(pf->p, &FR(pf->p)[fi]);
    return 1;
}

int pool_copy_dirty(pool_file *pf, uint32_t pgno, uint8_t *dst)
{
    pool *p = pf->p;
    uint32_t fi = find_pinned(pf, pgno);
    if (fi == POOL_NONE)
        return 0;
    if (!(st_load(p, &FR(p)[fi]) & ST_DIRTY)) {
        st_unpin(p, &FR(p)[fi]);
        return 0;
    }
    pool_lock(pf, fi, POOL_SHARED);
    memcpy(dst, DATA(p, fi), PG_SIZE);
    pool_release(pf, fi);
    return 1;
}

unsigned pool_frame_flags(const pool_file *pf, uint32_t fi)
{
    uint32_t st = st_load(pf->p, &FR(pf->p)[fi]);
    return ((st & ST_TAG) ? POOL_F_USED : 0) | ((st & ST_DIRTY) ? POOL_F_DIRTY : 0) |
           ((st & ST_FRESH) ? POOL_F_FRESH : 0);
}

uint32_t pool_frame_page(const pool_file *pf, uint32_t fi)
{
    return KEY_PAGE(FR(pf->p)[fi].key);
}

unsigned pool_frame_usage(const pool_file *pf, uint32_t fi)
{
    return st_usage(st_load(pf->p, &FR(pf->p)[fi]));
}

uint32_t pool_pinned(const pool_file *pf)
{
    const pool *p = pf->p;
    const frame *fr = FR(p);
    uint32_t i, n = 0;
    for (i = 0; i < p->nframes; i++) {
        uint32_t st = st_load(p, &fr[i]);
        if ((st & ST_TAG) && st_pins(st) && KEY_SLOT(fr[i].key) == pf->head.slot)
            n++;
    }
    return n;
}

uint32_t pool_ndirty(const pool_file *pf)
{
    return pf->head.slot == POOL_NONE ? 0 : FILES(pf->p)[pf->head.slot].ndirty;
}

/* Drops every frame of a file slot.  Nobody of that file has one pinned
 * (the caller excludes them: a write section, or the file's last user
 * leaving); a victim search of another file may hold one for an instant,
 * and frame_release waits for it. */
static void drop_slot(pool_file *pf, uint32_t slot)
{
    pool *p = pf->p;
    frame *fr = FR(p);
    uint32_t i;
    for (i = 0; i < p->nframes; i++) {
        uint32_t st = st_load(p, &fr[i]);
        if ((st & ST_TAG) && KEY_SLOT(fr[i].key) == slot)
            frame_release(pf, i);
    }
}

void pool_set_touch(pool_file *pf, pool_touch_fn fn, void *arg)
{
    pf->touch_fn = fn;
    pf->touch_arg = arg;
    pf->head.touch = 0;
}

void pool_set_gate(pool_file *pf, pool_gate_fn fn, void *arg)
{
    pf->gate_fn = fn;
    pf->gate_arg = arg;
}

void pool_touch(pool_file *pf, uint32_t fi)
{
    pool *p = pf->p;
    frame *f = &FR(p)[fi];
    pf->touch_fn(pf->touch_arg, KEY_PAGE(f->key), DATA(p, fi), (st_load(p, f) & ST_DIRTY) != 0);
}

/* The dirty list, not every frame: O(dirty).  It is walked under its lock
 * (other files' frames move in it as they are cleaned); the hook, called
 * with that leaf lock held, does not call into the pool. */
void pool_touch_dirty(pool_file *pf)
{
    pool *p = pf->p;
    frame *fr = FR(p);
    const uint32_t *d = DIRTY(p);
    uint32_t i;
    if (pf->head.slot == POOL_NONE || !pf->head.touch || pool_ndirty(pf) == 0)
        return;
    lk(p, &p->dirtylk);
    for (i = 0; i < p->ndirty; i++) {
        const frame *f = &fr[d[i]];
        if (KEY_SLOT(f->key) == pf->head.slot)
            pf->touch_fn(pf->touch_arg, KEY_PAGE(f->key), DATA(p, d[i]), 1);
    }
    unlk(p, &p->dirtylk);
}

void pool_drop_some(pool_file *pf, int (*drop)(void *arg, uint32_t pgno), void *arg)
{
    pool *p = pf->p;
    frame *fr = FR(p);
    uint32_t i;
    if (pf->head.slot == POOL_NONE)
        return;
    for (i = 0; i < p->nframes; i++) {
        uint32_t st = st_load(p, &fr[i]);
        if ((st & ST_TAG) && KEY_SLOT(fr[i].key) == pf->head.slot && drop(arg, KEY_PAGE(fr[i].key)))
            frame_release(pf, i);
    }
}

void pool_drop(pool_file *pf)
{
    if (pf->head.slot != POOL_NONE)
        drop_slot(pf, pf->head.slot);
}

/* ---- flush -------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts a[0..n) (page << 32 | frame; pages distinct) by page, tmp[0..n) the
 * scratch: a radix sort over the page number, 11 bits a pass, as many
 * passes as the largest page needs (a section end sorts up to every frame
 * of the pool, twice: the record's capture and the write-back; qsort's
 * compare calls were ~13 instructions per dirty page and pass more). */
#define SORT_DIGIT 11
static void sort_by_page(uint64_t *a, uint64_t *tmp, uint32_t n)
{
    uint32_t cnt[1u << SORT_DIGIT], i, shift, maxp = 0, sum, c;
    uint64_t *src = a, *dst = tmp, *sw;
    if (n < 256) {
        qsort(a, n, sizeof(uint64_t), cmp_u64);
        return;
    }
    for (i = 0; i < n; i++)
        maxp |= (uint32_t)(a[i] >> 32);
    for (shift = 0; shift < 32 && (maxp >> shift) != 0; shift += SORT_DIGIT) {
        memset(cnt, 0, sizeof cnt);
        for (i = 0; i < n; i++)
            cnt[(src[i] >> (32 + shift)) & ((1u << SORT_DIGIT) - 1)]++;
        for (i = 0, sum = 0; i < (1u << SORT_DIGIT); i++) {
            c = cnt[i];
            cnt[i] = sum;
            sum += c;
        }
        for (i = 0; i < n; i++)
            dst[cnt[(src[i] >> (32 + shift)) & ((1u << SORT_DIGIT) - 1)]++] = src[i];
        sw = src;
        src = dst;
        dst = sw;
    }
    if (src != a)
        memcpy(a, src, (size_t)n * sizeof(uint64_t));
}

/* This file's dirty frames of one kind (fresh or not), as (page << 32 |
 * frame), sorted; the dirty list is read under its lock. */
static uint32_t collect_dirty(pool_file *pf, int fresh)
{
    pool *p = pf->p;
    frame *fr = FR(p);
    const uint32_t *d = DIRTY(p);
    uint32_t i, n = 0;
    lk(p, &p->dirtylk);
    for (i = 0; i < p->ndirty; i++) {
        frame *f = &fr[d[i]];
        if (KEY_SLOT(f->key) == pf->head.slot && ((st_load(p, f) & ST_FRESH) != 0) == fresh)
            pf->sortbuf[n++] = ((uint64_t)KEY_PAGE(f->key) << 32) | d[i];
    }
    unlk(p, &p->dirtylk);
    sort_by_page(pf->sortbuf, pf->sortbuf + pf->sortcap, n);
    return n;
}

/* Pages the section grew the file with go first (no page on disk points to
 * them yet; pages reused from the free list are not among them, see
 * pool_alloc), then the rest, each group in page order.  With lock
 * callbacks (other processes may use the frames) each page is copied out
 * under its shared content lock, so the write never reads a page while
 * someone changes it and never seals a frame another process reads; without
 * them the pages are written from the frames. */
/* Writes every dirty frame through the pager; keep: they stay dirty (the
 * pager is capturing them into a journal record, pool_capture). */
static int flush_dirty(pool_file *pf, int keep)
{
    pool *p = pf->p;
    frame *fr = FR(p);
    int pass;
    ASSERT_NO_LOCKS(pf, "pool_flush with a content lock held");
    if (pool_ndirty(pf) == 0)
        return KVS_OK;
    if (pf->sortcap < p->nframes) {
        /* (the second half: sort_by_page's scratch) */
        uint64_t *nb = realloc(pf->sortbuf, (size_t)p->nframes * 2 * sizeof(uint64_t));
        if (!nb)
            return kvs_seterr(pf->head.err, KVS_ENOMEM, 0, "out of memory (flush)");
        pf->sortbuf = nb;
        pf->sortcap = p->nframes;
    }
    if (pf->head.locks && !pf->runbuf && !(pf->runbuf = malloc((size_t)PAGER_RUN * PG_SIZE)))
        return kvs_seterr(pf->head.err, KVS_ENOMEM, 0, "out of memory (flush)");
    for (pass = 0; pass < 2; pass++) {
        uint32_t i, n = collect_dirty(pf, pass == 0);
        /* runs of consecutive page numbers go out in one write each */
        for (i = 0; i < n;) {
            uint8_t *run[PAGER_RUN];
            uint32_t first = (uint32_t)(pf->sortbuf[i] >> 32), k = 0, j;
            int rc;
            while (i + k < n && k < PAGER_RUN && (uint32_t)(pf->sortbuf[i + k] >> 32) == first + k) {
                uint32_t fi = (uint32_t)pf->sortbuf[i + k];
                if (!pf->head.locks) {
                    /* no lock callbacks: no other process can see the
                     * frame, so the pager writes (and seals) it in place */
                    run[k] = DATA(p, fi);
                } else {
                    run[k] = pf->runbuf + (size_t)k * PG_SIZE;
                    st_pin(p, &fr[fi]);
                    pool_lock(pf, fi, POOL_SHARED);
                    memcpy(run[k], DATA(p, fi), PG_SIZE);
                    pool_release(pf, fi);
                }
                k++;
            }
            rc = pager_write_run(pf->pg, first, run, k);
            if (rc)
                return rc;
            for (j = 0; j < k && !keep; j++) {
                uint32_t fi = (uint32_t)pf->sortbuf[i + j];
                pf->n.writes++;
                st_andnot(p, &fr[fi], ST_FRESH);
                mark_clean(p, fi);
            }
            i += k;
        }
    }
    return KVS_OK;
}

int pool_flush(pool_file *pf)
{
    return flush_dirty(pf, 0);
}

int pool_capture(pool_file *pf)
{
    return flush_dirty(pf, 1);
}

/* ---- allocation ----------------------------------------------------------------- */

int pool_alloc(pool_file *pf, int type, uint32_t *pgno_out, uint32_t *fi_out, uint8_t **page)
{
    kvs_hdr *h = pager_hdr(pf->pg);
    uint32_t pgno, fi;
    uint8_t *pg;
    int rc;
    ASSERT_NO_LOCKS(pf, "pool_alloc with a content lock held");
    if (hdr_free_head(h) != NO_PAGE) {
        uint32_t next;
        pgno = hdr_free_head(h);
        rc = pool_fetch(pf, pgno, 0, &fi, &pg);
        if (rc)
            return rc;
        pool_lock(pf, fi, POOL_EXCLUSIVE);
        next = rd32(pg + PG_NEXT);
        if (pg[PG_TYPE] != KVS_PAGE_FREE || next >= hdr_npages(h) || hdr_free_count(h) == 0) {
            pool_release(pf, fi);
            return kvs_seterr(pf->head.err, KVS_ECORRUPT, pgno,
                              "page %u: on the free list but type %u / next %u",
                              (unsigned)pgno, pg[PG_TYPE], (unsigned)next);
        }
        hdr_free_popped(h, next);
    } else {
        if (hdr_npages(h) == 0xffffffffu)
            return kvs_seterr(pf->head.err, KVS_ENOSPC, 0, "file has 2^32-1 pages");
        pgno = hdr_npages(h);
        rc = pager_extend(pf->pg, pgno);
        if (rc)
            return rc;
        (void)hdr_append_page(h);
        rc = pool_fetch(pf, pgno, POOL_NEW, &fi, &pg);
        if (rc) {
            hdr_unappend_page(h);
            return rc;
        }
        pool_lock(pf, fi, POOL_EXCLUSIVE);
    }
    memset(pg, 0, PG_SIZE);
    pg[PG_TYPE] = (uint8_t)type;
    pool_dirty(pf, fi);
    /* "fresh" (written first at the flush, early on eviction) only if the
     * file on disk does not reference the page: a page the section grew the
     * file with.  A page popped from the free list is still referenced on
     * disk (by the old header's free list, or by the chain it was freed from
     * earlier in this section, which the disk still holds), so it is
     * rewritten in the normal order like any other existing page. */
    if (pgno >= pager_sect_npages(pf->pg))
        st_or(pf->p, &FR(pf->p)[fi], ST_FRESH);
    else
        st_andnot(pf->p, &FR(pf->p)[fi], ST_FRESH);
    *pgno_out = pgno;
    *fi_out = fi;
    *page = pg;
    return KVS_OK;
}

int pool_free_page(pool_file *pf, uint32_t pgno)
{
    kvs_hdr *h = pager_hdr(pf->pg);
    uint32_t fi;
    uint8_t *pg;
    int rc = pool_fetch(pf, pgno, POOL_NEW, &fi, &pg);
    if (rc)
        return rc;
    pool_lock(pf, fi, POOL_EXCLUSIVE);
    memset(pg, 0, PG_SIZE);
    pg[PG_TYPE] = KVS_PAGE_FREE;
    wr32(pg + PG_NEXT, hdr_free_head(h));
    pool_dirty(pf, fi);
    pool_release(pf, fi);
    hdr_free_pushed(h, pgno);
    return KVS_OK;
}

/* ---- attachments ------------------------------------------------------------------ */

pool_file *pool_file_new(pool *p, pager *pg, kvs_err *err, const kvs_locks *locks, spill *sp)
{
    pool_file *pf = calloc(1, sizeof *pf);
    uint32_t i;
    if (!pf)
        return NULL;
    pf->p = p;
    pf->head.fr = FR(p);
    pf->head.data = DATA(p, 0);
    pf->head.tab = TAB(p, 0);
    pf->head.tabbits = p->tabbits;
    pf->head.policy = p->policy;
    pf->head.conc = (int)p->conc;
    pf->head.partmask = p->nparts - 1;
    pf->head.fast = !p->conc;
    pf->head.nframes = p->nframes;
    pf->head.hdr = pager_hdr(pg);
    pf->head.err = err;
    pf->pg = pg;
    pf->sp = sp;
    pf->head.locks = locks;
    pf->head.slot = POOL_NONE;
    pf->trace_fd = -1;
    for (i = 0; i < POOL_RING_MAX; i++)
        pf->ring[i] = POOL_NONE;
    return pf;
}

/* Leaves the file slot.  In a private pool the last user's leaving drops
 * the slot's frames (nothing says they will be valid when the file is next
 * opened); a shared pool keeps them, idle, and the next bind checks them
 * against the file's change counter. */
static void unbind(pool_file *pf)
{
    pool *p = pf->p;
    fent *fe;
    int drop = 0;
    if (pf->head.slot == POOL_NONE)
        return;
    fe = &FILES(p)[pf->head.slot];
    lk(p, &p->fileslk);
    if (fe->users > 0 && --fe->users == 0) {
        if (p->conc)
            fe->idle_since = ++p->bind_clock;
        else
            drop = 1;
    }
    unlk(p, &p->fileslk);
    if (drop) {
        pool_drop(pf);
        fe->change_known = 0;
        fe->hdr_valid = 0;
    }
    pf->head.slot = POOL_NONE;
}

static int same_file(const fent *fe, const pool_ident *id)
{
    return fe->file_id == id->file_id && fe->dev == id->dev && fe->ino == id->ino;
}

int pool_file_bind(pool_file *pf, const pool_ident *id)
{
    pool *p = pf->p;
    fent *files = FILES(p), *fe;
    uint32_t i, take = POOL_NONE, idle = POOL_NONE;
    if (pf->head.slot != POOL_NONE) {
        if (same_file(&files[pf->head.slot], id))
            return KVS_OK;
        unbind(pf);
    }
    lk(p, &p->fileslk);
    for (i = 0; i < p->nfiles; i++) {
        fe = &files[i];
        if (fe->users == 0 && !fe->change_known) {
            if (take == POOL_NONE)
                take = i;
            continue;
        }
        /* the same nonce and the same inode: the same file (a copy of it
         * has another inode; a reused inode has another nonce) */
        if (same_file(fe, id)) {
            fe->users++;
            pf->head.slot = i;
            unlk(p, &p->fileslk);
            return KVS_OK;
        }
        if (fe->users == 0 && (idle == POOL_NONE || fe->idle_since < files[idle].idle_since))
            idle = i;
    }
    if (take == POOL_NONE)
        take = idle;
    if (take == POOL_NONE) {
        unlk(p, &p->fileslk);
        return kvs_seterr(pf->head.err, KVS_ENOMEM, 0, "buffer pool: all %u file slots are in use",
                          (unsigned)p->nfiles);
    }
    fe = &files[take];
    /* an idle slot of another file: its frames go first (users 1 keeps any
     * other binder off the slot meanwhile; its old identity matches nobody) */
    fe->users = 1;
    fe->file_id = id->file_id;
    fe->dev = id->dev;
    fe->ino = id->ino;
    unlk(p, &p->fileslk);
    pf->head.slot = take;
    if (fe->change_known)
        drop_slot(pf, take);
    fe->ndirty = 0;
    fe->change = 0;
    fe->change_known = 0;
    fe->hdr_valid = 0;
    fe->hits = fe->reads = fe->evictions = fe->writes = fe->ring_reuses = 0;
    return KVS_OK;
}

/* ---- joining a file in a shared pool ----
 * A handle of a shared pool finds its file's slot by inode alone: while
 * any handle has the file open its inode cannot be reused, so among slots
 * in use (dev, ino) is unique, and joining one needs no header -- which
 * could not be read safely before holding the slot's section lock.  The
 * first handle to take a slot (a free one, another file's idle one, or
 * this inode's idle one) reads the header from the file, which nobody in
 * the pool writes meanwhile, and validates the slot with it
 * (pool_file_validated): frames kept from an idle time are dropped if the
 * file changed since (its change counter, or its nonce: a new file on a
 * reused inode).  Later joiners wait until that is done. */
int pool_file_join(pool_file *pf, uint64_t dev, uint64_t ino, int *validate)
{
    pool *p = pf->p;
    fent *files = FILES(p), *fe;
    uint32_t i, s = POOL_NONE, freeslot = POOL_NONE, idle = POOL_NONE;
    unsigned n = 0;
    int other;
    *validate = 0;
    if (pf->head.slot != POOL_NONE)
        unbind(pf);
    lk(p, &p->fileslk);
    for (i = 0; i < p->nfiles; i++) {
        fe = &files[i];
        if (fe->users == 0 && !fe->change_known && !fe->validating) {
            if (freeslot == POOL_NONE)
                freeslot = i;
        } else if (fe->dev == dev && fe->ino == ino && (fe->users > 0 || s == POOL_NONE)) {
            s = i;
        } else if (fe->users == 0 && (idle == POOL_NONE || fe->idle_since < files[idle].idle_since)) {
            idle = i;
        }
    }
    if (s != POOL_NONE && files[s].users > 0) {
        fe = &files[s];
        fe->users++;
        pf->head.slot = s;
        unlk(p, &p->fileslk);
        for (;;) {
            while (__atomic_load_n(&fe->validating, __ATOMIC_ACQUIRE))
                spin_delay(&n);
            if (fe->hdr_valid)
                return KVS_OK;
            /* the validator failed (a bad header): try it ourselves */
            lk(p, &p->fileslk);
            if (!fe->validating && !fe->hdr_valid) {
                fe->validating = 1;
                unlk(p, &p->fileslk);
                *validate = 1;
                return KVS_OK;
            }
            unlk(p, &p->fileslk);
        }
    }
    other = 0;
    if (s == POOL_NONE) {
        s = freeslot != POOL_NONE ? freeslot : idle;
        if (s == POOL_NONE) {
            unlk(p, &p->fileslk);
            return kvs_seterr(pf->head.err, KVS_ENOMEM, 0, "buffer pool: all %u file slots are in use",
                              (unsigned)p->nfiles);
        }
        other = files[s].change_known != 0;      /* another file's idle frames */
    }
    fe = &files[s];
    fe->users = 1;
    fe->validating = 1;
    fe->dev = dev;
    fe->ino = ino;
    unlk(p, &p->fileslk);
    pf->head.slot = s;
    if (other) {
        drop_slot(pf, s);
        fe->change_known = 0;
        fe->hdr_valid = 0;
        fe->hits = fe->reads = fe->evictions = fe->writes = fe->ring_reuses = 0;
    }
    *validate = 1;
    return KVS_OK;
}

void pool_file_validated(pool_file *pf, const kvs_hdr *h)
{
    fent *fe = &FILES(pf->p)[pf->head.slot];
    if (fe->change_known && (fe->file_id != hdr_file_id(h) || fe->change != hdr_change(h)))
        drop_slot(pf, pf->head.slot);
    fe->file_id = hdr_file_id(h);
    fe->change = hdr_change(h);
    fe->change_known = 1;
    memcpy(&fe->hdr, h, sizeof *h);
    fe->hdr_valid = 1;
    __atomic_store_n(&fe->validating, 0u, __ATOMIC_RELEASE);
}

void pool_file_abandon(pool_file *pf)
{
    pool *p = pf->p;
    fent *fe;
    if (pf->head.slot == POOL_NONE)
        return;
    fe = &FILES(p)[pf->head.slot];
    drop_slot(pf, pf->head.slot);
    lk(p, &p->fileslk);
    fe->change_known = 0;
    fe->hdr_valid = 0;
    if (fe->users > 0)
        fe->users--;
    __atomic_store_n(&fe->validating, 0u, __ATOMIC_RELEASE);
    unlk(p, &p->fileslk);
    pf->head.slot = POOL_NONE;
}

void pool_file_set_id(pool_file *pf, uint64_t file_id)
{
    FILES(pf->p)[pf->head.slot].file_id = file_id;
}

void pool_file_free(pool_file *pf)
{
    if (!pf)
        return;
    (void)pool_trace_flush(pf);
    pool_file_publish(pf);
    unbind(pf);
    free(pf->sortbuf);
    free(pf->runbuf);
    free(pf);
}

int pool_file_current(pool_file *pf, uint64_t change)
{
    fent *fe = &FILES(pf->p)[pf->head.slot];
    if (fe->change_known && fe->change == change)
        return 1;
    pool_drop(pf);
    fe->change = change;
    fe->change_known = 1;
    fe->hdr_valid = 0;
    return 0;
}

void pool_file_changed(pool_file *pf, uint64_t change)
{
    fent *fe = &FILES(pf->p)[pf->head.slot];
    fe->change = change;
    fe->change_known = 1;
}

pool *pool_file_pool(const pool_file *pf)
{
    return pf->p;
}

void pool_get_counters(const pool_file *pf, pool_counters *c)
{
    *c = pf->n;
    c->hits = pf->head.hits;
}

void pool_reset_counters(pool_file *pf)
{
    pool_file_publish(pf);       /* the file's totals keep what was counted */
    memset(&pf->n, 0, sizeof pf->n);
    memset(&pf->published, 0, sizeof pf->published);
    pf->head.hits = 0;
    pf->published_hits = 0;
}

/* ---- a shared pool's sections and header ------------------------------------------ */

/* Waits for the file's section lock (the host's interrupt and wait
 * callbacks as for flock, filelock.c).  Readers take it when no writer has
 * it or waits for it; a writer marks that it waits, then takes it once the
 * readers are gone. */
int pool_section_lock(pool_file *pf, int exclusive, const filelock_hooks *hooks)
{
    fent *fe = &FILES(pf->p)[pf->head.slot];
    unsigned n = 0;
    int waiting = 0, rc = KVS_OK, counted = 0;
    if (exclusive && __atomic_load_n(&fe->sect_waiters, __ATOMIC_RELAXED) > 0) {
        /* Others wait (readers: the writers of a host exclude each other
         * before this).  A writer that has just ended a section because
         * of them (kvs_waiters) would otherwise take the free lock again
         * before any of them looks: let them in first, until none waits
         * or SECT_HANDOFF_NS pass (new readers keep coming). */
        struct timespec t0, t1;
        unsigned m = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (__atomic_load_n(&fe->sect_waiters, __ATOMIC_RELAXED) > 0) {
            spin_delay(&m);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) > SECT_HANDOFF_NS)
                break;
        }
    }
    for (;;) {
        uint32_t v = __atomic_load_n(&fe->sect, __ATOMIC_RELAXED), want;
        if (exclusive ? (v & (SECT_WRITER | SECT_READERS)) == 0 : (v & (SECT_WRITER | SECT_WWAIT)) == 0) {
            want = exclusive ? (v & ~SECT_WWAIT) | SECT_WRITER : v + 1;
            if (__atomic_compare_exchange_n(&fe->sect, &v, want, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
                break;
            continue;
        }
        if (exclusive && !(v & SECT_WWAIT)) {
            (void)__atomic_compare_exchange_n(&fe->sect, &v, v | SECT_WWAIT, 0, __ATOMIC_RELAXED,
                                              __ATOMIC_RELAXED);
        }
        if (!counted) {
            __atomic_fetch_add(&fe->sect_waiters, 1u, __ATOMIC_RELAXED);
            counted = 1;
        }
        if (n > 100) {
            if (!waiting && hooks->lock_wait) {
                hooks->lock_wait(hooks->lock_wait_arg, 1);
                waiting = 1;
            }
            if (hooks->interrupted && hooks->interrupted(hooks->interrupt_arg)) {
                rc = kvs_seterr(pf->head.err, KVS_EINTR, 0, "lock wait interrupted");
                break;
            }
        }
        spin_delay(&n);
    }
    if (counted)
        __atomic_fetch_sub(&fe->sect_waiters, 1u, __ATOMIC_RELAXED);
    if (waiting)
        hooks->lock_wait(hooks->lock_wait_arg, 0);
    return rc;
}

void pool_section_unlock(pool_file *pf, int exclusive)
{
    fent *fe = &FILES(pf->p)[pf->head.slot];
    if (exclusive)
        __atomic_fetch_and(&fe->sect, ~SECT_WRITER, __ATOMIC_RELEASE);
    else
        __atomic_fetch_sub(&fe->sect, 1u, __ATOMIC_RELEASE);
}

uint32_t pool_section_waiters(const pool_file *pf)
{
    if (!pf->p->conc || pf->head.slot == POOL_NONE)
        return 0;
    return __atomic_load_n(&FILES(pf->p)[pf->head.slot].sect_waiters, __ATOMIC_RELAXED);
}

/* The header as of the file's last write-out through this pool, into *h if
 * its change counter differs from h's: 1 if copied, 0 if h is current, -1
 * if the pool has none yet; force copies it anyway (a rollback's header
 * is ahead of the file but has its change counter).  Under the section
 * lock: no write-out runs. */
uint32_t pool_file_users(const pool_file *pf)
{
    if (pf->head.slot == POOL_NONE)
        return 0;
    return __atomic_load_n(&FILES(pf->p)[pf->head.slot].users, __ATOMIC_RELAXED);
}

int pool_file_header(pool_file *pf, kvs_hdr *h, int force)
{
    const fent *fe = &FILES(pf->p)[pf->head.slot];
    if (!fe->hdr_valid)
        return -1;
    if (!force && hdr_change(&fe->hdr) == hdr_change(h) && hdr_file_id(&fe->hdr) == hdr_file_id(h) &&
        hdr_replacing(&fe->hdr) == hdr_replacing(h))
        return 0;
    memcpy(h, &fe->hdr, sizeof *h);
    return 1;
}

/* Records h (just written to the file, or read from it) as the file's
 * current header (under the section lock: exclusive, or shared at the
 * first open when no header is recorded yet). */
void pool_file_set_header(pool_file *pf, const kvs_hdr *h)
{
    fent *fe = &FILES(pf->p)[pf->head.slot];
    memcpy(&fe->hdr, h, sizeof *h);
    fe->hdr_valid = 1;
}

/* ---- counters in the file table, inspection ------------------------------------ */

static inline void add64(uint64_t *to, uint64_t v)
{
    if (v)
        __atomic_fetch_add(to, v, __ATOMIC_RELAXED);
}

/* A file-table counter of a pool shared between processes is added to
 * atomically; a private pool's file table is its handle's alone: a plain
 * add (a locked one cost every section end some 20 cycles). */
static inline void publish_add(const pool *p, uint64_t *to, uint64_t v)
{
    if (p->conc)
        add64(to, v);
    else
        *to += v;
}

void pool_file_publish(pool_file *pf)
{
    fent *fe;
    if (pf->head.slot == POOL_NONE)
        return;
    fe = &FILES(pf->p)[pf->head.slot];
    publish_add(pf->p, &fe->hits, pf->head.hits - pf->published_hits);
    publish_add(pf->p, &fe->reads, pf->n.reads - pf->published.reads);
    publish_add(pf->p, &fe->evictions, pf->n.evictions - pf->published.evictions);
    publish_add(pf->p, &fe->writes, pf->n.writes - pf->published.writes);
    publish_add(pf->p, &fe->ring_reuses, pf->n.ring_reuses - pf->published.ring_reuses);
    pf->published = pf->n;
    pf->published_hits = pf->head.hits;
}

static inline uint64_t ld64(const uint64_t *v) { return __atomic_load_n(v, __ATOMIC_RELAXED); }
static inline uint32_t ld32(const uint32_t *v) { return __atomic_load_n(v, __ATOMIC_RELAXED); }

int pool_file_info(pool *p, uint32_t slot, pool_file_stat *out)
{
    const fent *fe;
    const frame *fr = FR(p);
    uint32_t i;
    memset(out, 0, sizeof *out);
    if (slot >= p->nfiles)
        return KVS_EINVAL;
    fe = &FILES(p)[slot];
    if (ld32(&fe->users) == 0 && !ld32(&fe->change_known))
        return KVS_NOTFOUND;
    out->file_id = ld64(&fe->file_id);
    out->dev = ld64(&fe->dev);
    out->ino = ld64(&fe->ino);
    out->users = ld32(&fe->users);
    out->dirty = ld32(&fe->ndirty);
    out->owner_id = ld32(&fe->hdr_valid) ? hdr_owner(&fe->hdr) : 0;
    for (i = 0; i < p->nframes; i++) {
        uint32_t st = st_load(p, &fr[i]);
        if ((st & ST_TAG) && KEY_SLOT(fr[i].key) == slot)
            out->frames++;
    }
    out->hits = ld64(&fe->hits);
    out->reads = ld64(&fe->reads);
    out->evictions = ld64(&fe->evictions);
    out->writes = ld64(&fe->writes);
    out->ring_reuses = ld64(&fe->ring_reuses);
    return KVS_OK;
}

void pool_reset_stats(pool *p)
{
    fent *files = FILES(p);
    uint32_t i;
    for (i = 0; i < p->nfiles; i++) {
        __atomic_store_n(&files[i].hits, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&files[i].reads, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&files[i].evictions, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&files[i].writes, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&files[i].ring_reuses, 0, __ATOMIC_RELAXED);
    }
}

void pool_lru_ranks(pool *p, uint32_t *ranks)
{
    frame *fr = FR(p);
    uint32_t i, fi, r = 0;
    for (i = 0; i < p->nframes; i++)
        ranks[i] = POOL_NONE;
    if (p->policy != POOL_LRU)
        return;
    lk(p, &p->strategy);
    for (fi = p->lru_head; fi != POOL_NONE && r < p->nframes; fi = fr[fi].next)
        if (st_load(p, &fr[fi]) & ST_TAG)
            ranks[fi] = r++;
    unlk(p, &p->strategy);
}

int pool_frame_info(pool *p, uint32_t fi, const uint32_t *ranks, pool_frame_stat *out)
{
    const frame *f;
    uint32_t st;
    memset(out, 0, sizeof *out);
    out->lru_rank = POOL_NONE;
    if (fi >= p->nframes)
        return KVS_EINVAL;
    f = &FR(p)[fi];
    st = st_load(p, f);
    out->used = (st & ST_TAG) != 0;
    if (!out->used)
        return KVS_OK;
    out->slot = KEY_SLOT(f->key);
    out->page = KEY_PAGE(f->key);
    out->page_type = (st & ST_VALID) ? DATA(p, fi)[PG_TYPE] : 0;
    out->dirty = (st & ST_DIRTY) != 0;
    out->pins = st_pins(st);
    out->usage = p->policy == POOL_CLOCK ? st_usage(st) : 0;
    if (ranks && p->policy == POOL_LRU)
        out->lru_rank = ranks[fi];
    return KVS_OK;
}

uint32_t pool_nfiles(const pool *p) { return p->nfiles; }

void pool_file_set_readahead(pool_file *pf, int on)
{
    pf->readahead = on > 0;
}

int pool_file_set_ring(pool_file *pf, uint32_t frames)
{
    uint32_t i;
    pf->ring_size = frames > POOL_RING_MAX ? POOL_RING_MAX : frames;
    pf->ring_pos = 0;
    for (i = 0; i < POOL_RING_MAX; i++)
        pf->ring[i] = POOL_NONE;
    return KVS_OK;
}
