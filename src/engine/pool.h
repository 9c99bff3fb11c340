/*
 * pool.h - the buffer pool: a fixed number of 4 KiB frames chosen at open,
 * an open-addressing page table (page number -> frame), pin counts, dirty
 * bits, LRU replacement of unpinned frames with write-back of dirty victims.
 * Frames, descriptors and table live in ONE block of pool_mem_size() bytes
 * and refer to each other by index only, so the block could be caller-
 * provided (e.g. shared memory) later.  Page allocation and freeing (the
 * free-page list kept in the file) live here too because both need frames.
 */
#ifndef KVS_POOL_H
#define KVS_POOL_H

#include "pager.h"
#include "spill.h"

#define POOL_NONE  0xffffffffu

typedef struct pool_frame {
    uint32_t pgno;
    uint32_t pin;
    uint32_t prev, next;     /* LRU list (head = most recently used) */
    uint8_t  used;           /* holds a page */
    uint8_t  dirty;
    uint8_t  fresh;          /* grown in this section: not referenced on disk yet */
    uint8_t  pad;
    uint32_t dpos;           /* index in the dirty list while dirty */
} pool_frame;

typedef struct pool_slot {
    uint32_t pgno;
    uint32_t fi;             /* POOL_NONE = empty slot */
} pool_slot;

typedef int (*pool_validate_fn)(const uint8_t *page, uint32_t pgno, void *arg);

typedef struct pool {
    pager      *pg;
    spill      *spill;       /* no-steal store for evicted dirty pages; NULL = none
                              * (a handle without a path: dirty pages go to the file) */
    uint32_t    nframes;
    uint32_t    tabmask;
    uint32_t    tabbits;
    uint8_t    *data;        /* nframes * 4096 */
    pool_frame *fr;
    pool_slot  *tab;
    uint64_t   *sortbuf;     /* nframes entries, for ordered flushes */
    uint32_t   *dirty;       /* the ndirty dirty frames, so a flush costs O(dirty) */
    uint32_t    lru_head, lru_tail;
    uint32_t    free_list;   /* unused frames, linked by .next */
    uint32_t    ndirty;
    pool_validate_fn validate;
    void       *validate_arg;
    uint64_t    hits, reads, evictions, writes;
} pool;

size_t   pool_mem_size(uint32_t nframes);
void     pool_init(pool *p, void *mem, uint32_t nframes, pager *pg);

#define POOL_PIN    0x1      /* pin the frame (pool_unpin later) */
#define POOL_NEW    0x2      /* the caller overwrites the page: do not read it */

/* Finds page pgno in the pool, reading (and validating) it on a miss.
 * Without POOL_PIN the page is valid only until the next pool call. */
int      pool_fetch(pool *p, uint32_t pgno, int flags, uint32_t *fi);
static inline uint8_t *pool_page(pool *p, uint32_t fi)
{
    return p->data + (size_t)fi * PG_SIZE;
}
void     pool_unpin(pool *p, uint32_t fi);
void     pool_dirty(pool *p, uint32_t fi);
int      pool_cached(pool *p, uint32_t pgno, uint32_t *fi);  /* no I/O */

int      pool_flush(pool *p);            /* write dirty frames: grown pages first, by page number */
void     pool_drop_all(pool *p);         /* forget every frame (dirty ones too) */
uint32_t pool_pinned(const pool *p);     /* frames pinned (0 between operations) */

/* Allocation: from the free list, else by growing the file (now, so ENOSPC
 * surfaces here).  The page comes back pinned, zeroed, typed, dirty. */
int      pool_alloc(pool *p, int type, uint32_t *pgno, uint32_t *fi);
/* Puts pgno on the free list (rewrites it as a free page). */
int      pool_free_page(pool *p, uint32_t pgno);

#endif
