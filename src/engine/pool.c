/*
 * pool.c - the buffer pool (see pool.h): the block's layout, the file
 * table, the replacement policies (LRU and clock sweep), pins and content
 * locks, dirty write-back and spill, page allocation and the free list.
 *
 * The block, from its first byte:
 *   struct pool        sizes, offsets of the parts below, policy state
 *                      (LRU head/tail, clock hand), unused-frame list, counts
 *   frame[nframes]     per-frame descriptor: key, pin count, usage count,
 *                      dirty/fresh bits, LRU links, position in the dirty list
 *   ptab_slot[2^bits]  page table, (file slot << 32 | page) -> frame, at
 *                      most half full (2^bits >= 2 * nframes)
 *   uint32[nframes]    the dirty list (frame numbers), so a flush is O(dirty)
 *   fent[nfiles]       the file table: identity and users of each file slot
 *   page data          nframes * 4096 bytes, at a 4096-aligned offset
 * Every reference inside the block is an index or an offset from its start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "pool.h"
#include "page.h"
#include "ptab.h"

#define POOL_MAGIC 0x4c4f4f5053564b31ull   /* "1KVSPOOL" */
#define ALIGN64(n)   (((n) + 63) & ~(size_t)63)
#define ALIGNPG(n)   (((n) + PG_SIZE - 1) & ~(size_t)(PG_SIZE - 1))

typedef pool_frame frame;

typedef struct fent {
    uint64_t file_id, dev, ino;
    uint64_t change;         /* the file's change counter its frames are current for */
    uint32_t users;          /* attachments bound to this slot; 0 = free */
    uint32_t ndirty;         /* its dirty frames */
    uint32_t change_known;   /* .change is set */
    uint32_t pad;
    /* counters of every attachment, added at section end (pool_file_publish) */
    uint64_t hits, reads, evictions, writes, ring_reuses;
} fent;

struct pool {
    uint64_t magic;
    uint32_t nframes, nfiles, tabbits, policy;
    uint64_t off_frames, off_tab, off_dirty, off_files, off_data;
    uint32_t lru_head, lru_tail;  /* POOL_LRU */
    uint32_t hand;                /* POOL_CLOCK: next frame the sweep looks at */
    uint32_t unused;              /* frames holding no page, linked by .next */
    uint32_t ndirty;
    uint32_t pad;
    uint64_t trace_seq;           /* kvs_trace_rec.seq: one order for every handle */
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
    uint64_t        *sortbuf;     /* flush scratch: (page << 32 | frame), grow-only */
    uint32_t         sortcap;
    uint8_t         *runbuf;      /* flush scratch: copies of one run of pages */
    pool_counters    published;   /* the part of n (and hits) already added to the file entry */
    uint64_t         published_hits;
    uint32_t         ring_size;   /* bulk-read ring (0 = off) */
    int              trace_fd;    /* kvs_set_trace, -1 = off */
    uint64_t         trace_off;   /* where the next records go in it */
    uint32_t         ntrace;
    kvs_trace_rec    tbuf[POOL_TRACE_BUF];
#ifdef KVS_DEBUG
    uint32_t         nheld;
    held_lock        held[POOL_MAX_LOCKS];
#endif
};

/* ---- the page-access trace (kvs_set_trace) ---- */

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
    r->seq = __atomic_fetch_add(&pf->p->trace_seq, 1, __ATOMIC_RELAXED);
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
    return rc;
}

static inline frame *FR(const pool *p) { return (frame *)((char *)p + p->off_frames); }
static inline ptab_slot *TAB(const pool *p) { return (ptab_slot *)((char *)p + p->off_tab); }
static inline uint32_t *DIRTY(const pool *p) { return (uint32_t *)((char *)p + p->off_dirty); }
static inline fent *FILES(const pool *p) { return (fent *)((char *)p + p->off_files); }
static inline uint8_t *DATA(const pool *p, uint32_t fi)
{
    return (uint8_t *)p + p->off_data + (size_t)fi * PG_SIZE;
}
static inline uint64_t KEY(uint32_t slot, uint32_t pgno) { return ((uint64_t)slot << 32) | pgno; }
static inline uint32_t KEY_SLOT(uint64_t key) { return (uint32_t)(key >> 32); }
static inline uint32_t KEY_PAGE(uint64_t key) { return (uint32_t)key; }

/* ---- the block ------------------------------------------------------------ */

static uint32_t tab_bits(uint32_t nframes)
{
    uint32_t bits = 1;
    while (((uint64_t)1 << bits) < 2 * (uint64_t)nframes)
        bits++;
    return bits;
}

/* Offsets of the parts; returns the block size. */
static size_t layout(uint32_t nframes, uint32_t nfiles, pool *p)
{
    uint32_t bits = tab_bits(nframes);
    size_t off = ALIGN64(sizeof(pool)), frames, tab, dirty, files, data;
    frames = off;
    off = ALIGN64(off + (size_t)nframes * sizeof(frame));
    tab = off;
    off = ALIGN64(off + ((size_t)1 << bits) * sizeof(ptab_slot));
    dirty = off;
    off = ALIGN64(off + (size_t)nframes * sizeof(uint32_t));
    files = off;
    off = ALIGNPG(off + (size_t)nfiles * sizeof(fent));
    data = off;
    off += (size_t)nframes * PG_SIZE;
    if (p) {
        p->tabbits = bits;
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
    return layout(nframes, nfiles, NULL);
}

pool *pool_format(void *mem, uint32_t nframes, uint32_t nfiles, int policy)
{
    pool *p = mem;
    frame *fr;
    uint32_t i;
    memset(p, 0, sizeof *p);
    p->nframes = nframes;
    p->nfiles = nfiles;
    p->policy = policy == POOL_CLOCK ? POOL_CLOCK : POOL_LRU;
    layout(nframes, nfiles, p);
    fr = FR(p);
    for (i = 0; i < nframes; i++) {
        memset(&fr[i], 0, sizeof fr[i]);
        fr[i].prev = POOL_NONE;
        fr[i].next = i + 1 < nframes ? i + 1 : POOL_NONE;
    }
    p->unused = 0;
    p->lru_head = p->lru_tail = POOL_NONE;
    p->hand = 0;
    ptab_clear(TAB(p), p->tabbits);
    memset(FILES(p), 0, (size_t)nfiles * sizeof(fent));
    p->magic = POOL_MAGIC;
    return p;
}

pool *pool_of(void *mem)
{
    pool *p = mem;
    return p && p->magic == POOL_MAGIC ? p : NULL;
}

uint32_t pool_nframes(const pool *p) { return p->nframes; }
int pool_policy(const pool *p) { return (int)p->policy; }

/* ---- the replacement policies ----------------------------------------------
 * Four functions are the whole interface: admit (a frame now holds a page),
 * touch (a hit), forget (the frame is emptied) and victim (choose an
 * unpinned frame to reuse).  LRU keeps a doubly linked list in recency
 * order; the clock keeps a usage count per frame and a hand. */

static inline void lru_unlink(pool *p, uint32_t fi)
{
    frame *fr = FR(p), *f = &fr[fi];
    if (f->prev != POOL_NONE)
        fr[f->prev].next = f->next;
    else
        p->lru_head = f->next;
    if (f->next != POOL_NONE)
        fr[f->next].prev = f->prev;
    else
        p->lru_tail = f->prev;
    f->prev = f->next = POOL_NONE;
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
}

static inline void policy_admit(pool *p, uint32_t fi)
{
    if (p->policy == POOL_LRU)
        lru_push_head(p, fi);
    else
        FR(p)[fi].usage = 1;
}

static inline void policy_touch(pool *p, uint32_t fi)
{
    if (p->policy == POOL_LRU) {
        if (p->lru_head != fi) {
            lru_unlink(p, fi);
            lru_push_head(p, fi);
        }
    } else {
        frame *f = &FR(p)[fi];
        if (f->usage < POOL_USAGE_MAX)
            f->usage++;
    }
}

static inline void policy_forget(pool *p, uint32_t fi)
{
    if (p->policy == POOL_LRU)
        lru_unlink(p, fi);
    else
        FR(p)[fi].usage = 0;
}

/* A frame that may be reused by `slot`: unpinned, and not another file's
 * dirty frame (only the handle whose section dirtied it writes it). */
static inline int reusable(const frame *f, uint32_t slot)
{
    return f->pin == 0 && (!f->dirty || KEY_SLOT(f->key) == slot);
}

/* The policy's choice among the used frames, POOL_NONE if none is
 * reusable. */
static uint32_t policy_victim(pool *p, uint32_t slot)
{
    frame *fr = FR(p);
    uint32_t fi, tries;
    if (p->policy == POOL_LRU) {
        for (fi = p->lru_tail; fi != POOL_NONE; fi = fr[fi].prev)
            if (reusable(&fr[fi], slot))
                return fi;
        return POOL_NONE;
    }
    /* PostgreSQL's StrategyGetBuffer: sweep, decrementing usage counts; a
     * full turn that finds only unusable frames without decrementing any
     * count means there is none */
    tries = p->nframes;
    for (;;) {
        frame *f;
        fi = p->hand;
        p->hand = fi + 1 < p->nframes ? fi + 1 : 0;
        f = &fr[fi];
        if (f->used && reusable(f, slot)) {
            if (f->usage == 0)
                return fi;
            f->usage--;
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
    uint32_t pgno = KEY_PAGE(f->key), i;
    if (!f->used || f->pin == 0 || KEY_SLOT(f->key) != pf->head.slot)
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
    if (!f->dirty) {
        f->dirty = 1;
        f->dpos = p->ndirty;
        DIRTY(p)[p->ndirty++] = fi;
        FILES(p)[KEY_SLOT(f->key)].ndirty++;
    }
}

static void mark_clean(pool *p, uint32_t fi)
{
    frame *fr = FR(p);
    if (fr[fi].dirty) {
        uint32_t *d = DIRTY(p), pos = fr[fi].dpos, last = d[--p->ndirty];
        d[pos] = last;
        fr[last].dpos = pos;
        fr[fi].dirty = 0;
        FILES(p)[KEY_SLOT(fr[fi].key)].ndirty--;
    }
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

/* Empties frame fi (its page forgotten) onto the unused list. */
static void frame_release(pool *p, uint32_t fi)
{
    frame *f = &FR(p)[fi];
    if (f->used) {
        ptab_delete(TAB(p), p->tabbits, f->key);
        policy_forget(p, fi);
        mark_clean(p, fi);
    }
    f->used = f->dirty = f->fresh = f->usage = 0;
    f->pin = 0;
    f->prev = POOL_NONE;
    f->next = p->unused;
    p->unused = fi;
}

/* A frame to fill for pf: an unused one, else the policy's victim (its
 * page written back or spilled first if dirty: it is pf's own). */
static int get_victim(pool_file *pf, uint32_t *out)
{
    pool *p = pf->p;
    frame *fr = FR(p), *f;
    uint32_t fi = p->unused;
    if (fi != POOL_NONE) {
        p->unused = fr[fi].next;
        fr[fi].next = POOL_NONE;
        *out = fi;
        return KVS_OK;
    }
    fi = policy_victim(p, pf->head.slot);
    if (fi == POOL_NONE)
        return kvs_seterr(pf->head.err, KVS_ENOMEM, 0,
                          "buffer pool: all %u frames are pinned or hold another file's changes",
                          (unsigned)p->nframes);
    f = &fr[fi];
    if (f->dirty) {
        /* no-steal: a page the file already had goes to the spill file, so
         * the file is untouched until the section ends; a page the section
         * grew the file with can go to the file (nothing points to it) */
        uint32_t pgno = KEY_PAGE(f->key);
        int rc;
        if (pf->sp && !(f->fresh && pgno >= pager_sect_npages(pf->pg))) {
            rc = spill_write(pf->sp, pgno, DATA(p, fi));
        } else {
            rc = pager_write(pf->pg, pgno, DATA(p, fi));
            if (rc == KVS_OK)
                pf->n.writes++;
        }
        if (rc)
            return rc;
        mark_clean(p, fi);
    }
    ptab_delete(TAB(p), p->tabbits, f->key);
    policy_forget(p, fi);
    f->used = 0;
    pf->n.evictions++;
    *out = fi;
    return KVS_OK;
}

/* Gives an unfilled frame back to the unused list. */
static void frame_unfill(pool *p, uint32_t fi)
{
    frame *f = &FR(p)[fi];
    f->used = 0;
    f->next = p->unused;
    p->unused = fi;
}

/* Makes frame fi hold pgno for pf, pinned once. */
static void frame_fill(pool_file *pf, uint32_t fi, uint32_t pgno, int dirty)
{
    pool *p = pf->p;
    frame *f = &FR(p)[fi];
    f->key = KEY(pf->head.slot, pgno);
    f->used = 1;
    f->dirty = 0;
    f->fresh = 0;
    f->pin = 1;
    if (dirty)
        mark_dirty(p, fi);
    ptab_insert(TAB(p), p->tabbits, f->key, fi);
    policy_admit(p, fi);
}

void pool_touch_lru(pool_file *pf, uint32_t fi)
{
    pool *p = pf->p;
    if (p->lru_head != fi) {
        lru_unlink(p, fi);
        lru_push_head(p, fi);
    }
}

int pool_fetch_slow(pool_file *pf, uint32_t pgno, int flags, uint32_t *out, uint8_t **page)
{
    pool *p = pf->p;
    uint32_t fi;
    uint8_t *data;
    int rc;
    ASSERT_NO_LOCKS(pf, "pool_fetch with a content lock held");
    if (pgno == 0 || pgno >= hdr_npages(pf->head.hdr))
        return kvs_seterr(pf->head.err, KVS_ECORRUPT, pgno,
                          "page %u referenced as a data page (file has %u pages)",
                          (unsigned)pgno, (unsigned)hdr_npages(pf->head.hdr));
    fi = ptab_find(pf->head.tab, pf->head.tabbits, KEY(pf->head.slot, pgno));
    if (fi != PTAB_EMPTY) {
        pf->head.hits++;
        if (pf->head.trace)
            pool_trace(pf, pgno, KVS_TRACE_HIT);
        policy_touch(p, fi);
        pf->head.fr[fi].pin++;
        *out = fi;
        *page = pf->head.data + (size_t)fi * PG_SIZE;
        return KVS_OK;
    }
    if (pf->head.trace)
        pool_trace(pf, pgno, 0);
    rc = get_victim(pf, &fi);
    if (rc)
        return rc;
    data = DATA(p, fi);
    /* a spilled page lives in the spill file until it comes back here */
    rc = pf->sp ? spill_take(pf->sp, pgno, data, !(flags & POOL_NEW)) : 0;
    if (rc < 0) {
        frame_unfill(p, fi);
        return rc;
    }
    if (rc == 1) {
        if (flags & POOL_NEW)
            memset(data, 0, PG_SIZE);
        frame_fill(pf, fi, pgno, 1);
    } else if (flags & POOL_NEW) {
        memset(data, 0, PG_SIZE);
        frame_fill(pf, fi, pgno, 0);
    } else {
        rc = pager_read(pf->pg, pgno, data);
        if (rc == KVS_OK)
            rc = page_validate(data, pgno, hdr_npages(pf->head.hdr), pf->head.err);
        if (rc) {
            frame_unfill(p, fi);
            return rc;
        }
        pf->n.reads++;
        frame_fill(pf, fi, pgno, 0);
    }
    *out = fi;
    *page = data;
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
    if (f->pin > 0)
        f->pin--;
}
#endif

int pool_cached(pool_file *pf, uint32_t pgno)
{
    return ptab_find(TAB(pf->p), pf->p->tabbits, KEY(pf->head.slot, pgno)) != PTAB_EMPTY;
}

int pool_copy_dirty(pool_file *pf, uint32_t pgno, uint8_t *dst)
{
    pool *p = pf->p;
    uint32_t fi = ptab_find(TAB(p), p->tabbits, KEY(pf->head.slot, pgno));
    if (fi == PTAB_EMPTY || !FR(p)[fi].dirty)
        return 0;
    FR(p)[fi].pin++;
    pool_lock(pf, fi, POOL_SHARED);
    memcpy(dst, DATA(p, fi), PG_SIZE);
    pool_release(pf, fi);
    return 1;
}

unsigned pool_frame_flags(const pool_file *pf, uint32_t fi)
{
    const frame *f = &FR(pf->p)[fi];
    return (f->used ? POOL_F_USED : 0) | (f->dirty ? POOL_F_DIRTY : 0) | (f->fresh ? POOL_F_FRESH : 0);
}

uint32_t pool_frame_page(const pool_file *pf, uint32_t fi)
{
    return KEY_PAGE(FR(pf->p)[fi].key);
}

unsigned pool_frame_usage(const pool_file *pf, uint32_t fi)
{
    return FR(pf->p)[fi].usage;
}

uint32_t pool_pinned(const pool_file *pf)
{
    const pool *p = pf->p;
    const frame *fr = FR(p);
    uint32_t i, n = 0;
    for (i = 0; i < p->nframes; i++)
        if (fr[i].used && fr[i].pin && KEY_SLOT(fr[i].key) == pf->head.slot)
            n++;
    return n;
}

uint32_t pool_ndirty(const pool_file *pf)
{
    return pf->head.slot == POOL_NONE ? 0 : FILES(pf->p)[pf->head.slot].ndirty;
}

void pool_drop(pool_file *pf)
{
    pool *p = pf->p;
    frame *fr = FR(p);
    uint32_t i;
    if (pf->head.slot == POOL_NONE)
        return;
    for (i = 0; i < p->nframes; i++)
        if (fr[i].used && KEY_SLOT(fr[i].key) == pf->head.slot)
            frame_release(p, i);
}

/* ---- flush -------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Pages the section grew the file with go first (no page on disk points to
 * them yet; pages reused from the free list are not among them, see
 * pool_alloc), then the rest, each group in page order.  With lock
 * callbacks (other processes may use the frames) each page is copied out
 * under its shared content lock, so the write never reads a page while
 * someone changes it and never seals a frame another process reads; without
 * them the pages are written from the frames. */
int pool_flush(pool_file *pf)
{
    pool *p = pf->p;
    frame *fr = FR(p);
    int pass;
    ASSERT_NO_LOCKS(pf, "pool_flush with a content lock held");
    if (p->ndirty == 0)
        return KVS_OK;
    if (pf->sortcap < p->ndirty) {
        uint64_t *nb = realloc(pf->sortbuf, (size_t)p->nframes * sizeof(uint64_t));
        if (!nb)
            return kvs_seterr(pf->head.err, KVS_ENOMEM, 0, "out of memory (flush)");
        pf->sortbuf = nb;
        pf->sortcap = p->nframes;
    }
    if (pf->head.locks && !pf->runbuf && !(pf->runbuf = malloc((size_t)PAGER_RUN * PG_SIZE)))
        return kvs_seterr(pf->head.err, KVS_ENOMEM, 0, "out of memory (flush)");
    for (pass = 0; pass < 2; pass++) {
        const uint32_t *d = DIRTY(p);
        uint32_t i, n = 0;
        for (i = 0; i < p->ndirty; i++) {
            frame *f = &fr[d[i]];
            if (KEY_SLOT(f->key) == pf->head.slot && f->fresh == (pass == 0))
                pf->sortbuf[n++] = ((uint64_t)KEY_PAGE(f->key) << 32) | d[i];
        }
        qsort(pf->sortbuf, n, sizeof(uint64_t), cmp_u64);
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
                    fr[fi].pin++;
                    pool_lock(pf, fi, POOL_SHARED);
                    memcpy(run[k], DATA(p, fi), PG_SIZE);
                    pool_release(pf, fi);
                }
                k++;
            }
            rc = pager_write_run(pf->pg, first, run, k);
            if (rc)
                return rc;
            for (j = 0; j < k; j++) {
                uint32_t fi = (uint32_t)pf->sortbuf[i + j];
                pf->n.writes++;
                fr[fi].fresh = 0;
                mark_clean(p, fi);
            }
            i += k;
        }
    }
    return KVS_OK;
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
    FR(pf->p)[fi].fresh = pgno >= pager_sect_npages(pf->pg);
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
    if (!pf)
        return NULL;
    pf->p = p;
    pf->head.fr = FR(p);
    pf->head.data = DATA(p, 0);
    pf->head.tab = TAB(p);
    pf->head.tabbits = p->tabbits;
    pf->head.policy = p->policy;
    pf->head.hdr = pager_hdr(pg);
    pf->head.err = err;
    pf->pg = pg;
    pf->sp = sp;
    pf->head.locks = locks;
    pf->head.slot = POOL_NONE;
    pf->trace_fd = -1;
    return pf;
}

/* Leaves the file slot; the last user's leaving drops the slot's frames
 * (nothing says they will be valid when the file is next opened). */
static void unbind(pool_file *pf)
{
    fent *fe;
    if (pf->head.slot == POOL_NONE)
        return;
    fe = &FILES(pf->p)[pf->head.slot];
    if (fe->users > 0 && --fe->users == 0)
        pool_drop(pf);
    pf->head.slot = POOL_NONE;
}

int pool_file_bind(pool_file *pf, const pool_ident *id)
{
    pool *p = pf->p;
    fent *files = FILES(p);
    uint32_t i, free_slot = POOL_NONE;
    if (pf->head.slot != POOL_NONE) {
        fent *cur = &files[pf->head.slot];
        if (cur->file_id == id->file_id && cur->dev == id->dev && cur->ino == id->ino)
            return KVS_OK;
        unbind(pf);
    }
    for (i = 0; i < p->nfiles; i++) {
        fent *fe = &files[i];
        if (fe->users == 0) {
            if (free_slot == POOL_NONE)
                free_slot = i;
            continue;
        }
        /* the same nonce and the same inode: the same file (a copy of it
         * has another inode; a reused inode has another nonce) */
        if (fe->file_id == id->file_id && fe->dev == id->dev && fe->ino == id->ino) {
            fe->users++;
            pf->head.slot = i;
            return KVS_OK;
        }
    }
    if (free_slot == POOL_NONE)
        return kvs_seterr(pf->head.err, KVS_ENOMEM, 0, "buffer pool: all %u file slots are in use",
                          (unsigned)p->nfiles);
    files[free_slot].file_id = id->file_id;
    files[free_slot].dev = id->dev;
    files[free_slot].ino = id->ino;
    files[free_slot].users = 1;
    files[free_slot].ndirty = 0;
    files[free_slot].change = 0;
    files[free_slot].change_known = 0;
    pf->head.slot = free_slot;
    return KVS_OK;
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

/* ---- counters in the file table, inspection ------------------------------------ */

static inline void add64(uint64_t *to, uint64_t v)
{
    if (v)
        __atomic_fetch_add(to, v, __ATOMIC_RELAXED);
}

void pool_file_publish(pool_file *pf)
{
    fent *fe;
    if (pf->head.slot == POOL_NONE)
        return;
    fe = &FILES(pf->p)[pf->head.slot];
    add64(&fe->hits, pf->head.hits - pf->published_hits);
    add64(&fe->reads, pf->n.reads - pf->published.reads);
    add64(&fe->evictions, pf->n.evictions - pf->published.evictions);
    add64(&fe->writes, pf->n.writes - pf->published.writes);
    add64(&fe->ring_reuses, pf->n.ring_reuses - pf->published.ring_reuses);
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
    if (ld64(&fe->file_id) == 0 && ld64(&fe->ino) == 0 && ld32(&fe->users) == 0)
        return KVS_NOTFOUND;
    out->file_id = ld64(&fe->file_id);
    out->dev = ld64(&fe->dev);
    out->ino = ld64(&fe->ino);
    out->users = ld32(&fe->users);
    out->dirty = ld32(&fe->ndirty);
    for (i = 0; i < p->nframes; i++)
        if (fr[i].used && KEY_SLOT(fr[i].key) == slot)
            out->frames++;
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
    for (fi = p->lru_head; fi != POOL_NONE && r < p->nframes; fi = fr[fi].next)
        ranks[fi] = r++;
}

int pool_frame_info(pool *p, uint32_t fi, const uint32_t *ranks, pool_frame_stat *out)
{
    const frame *f;
    memset(out, 0, sizeof *out);
    out->lru_rank = POOL_NONE;
    if (fi >= p->nframes)
        return KVS_EINVAL;
    f = &FR(p)[fi];
    out->used = f->used;
    if (!out->used)
        return KVS_OK;
    out->slot = KEY_SLOT(f->key);
    out->page = KEY_PAGE(f->key);
    out->page_type = DATA(p, fi)[PG_TYPE];
    out->dirty = f->dirty;
    out->pins = f->pin;
    out->usage = p->policy == POOL_CLOCK ? f->usage : 0;
    if (ranks && p->policy == POOL_LRU)
        out->lru_rank = ranks[fi];
    return KVS_OK;
}

uint32_t pool_nfiles(const pool *p) { return p->nfiles; }

int pool_file_set_ring(pool_file *pf, uint32_t frames)
{
    pf->ring_size = frames;
    return KVS_OK;
}
