/*
 * pool.c - buffer pool: page table (linear probing, backward-shift delete),
 * LRU list of frames, pins, dirty write-back, page allocation and the
 * free-page list.  See pool.h.
 */
#include <stdlib.h>
#include "pool.h"

static uint32_t tab_home(const pool *p, uint32_t pgno)
{
    return (uint32_t)(pgno * 0x9E3779B1u) >> (32 - p->tabbits);
}

/* each part of the block starts on a 64-byte boundary */
#define ALIGN64(n) (((n) + 63) & ~(size_t)63)

size_t pool_mem_size(uint32_t nframes)
{
    uint32_t bits = 1;
    while (((uint32_t)1 << bits) < 2 * nframes)
        bits++;
    return (size_t)nframes * PG_SIZE + ALIGN64((size_t)nframes * sizeof(pool_frame))
           + ALIGN64(((size_t)1 << bits) * sizeof(pool_slot)) + (size_t)nframes * sizeof(uint64_t)
           + (size_t)nframes * sizeof(uint32_t);
}

void pool_init(pool *p, void *mem, uint32_t nframes, pager *pg)
{
    uint32_t i, bits = 1;
    uint8_t *m = mem;
    while (((uint32_t)1 << bits) < 2 * nframes)
        bits++;
    memset(p, 0, sizeof *p);
    p->pg = pg;
    p->nframes = nframes;
    p->tabbits = bits;
    p->tabmask = ((uint32_t)1 << bits) - 1;
    p->data = m;
    m += (size_t)nframes * PG_SIZE;
    p->fr = (pool_frame *)(void *)m;
    m += ALIGN64((size_t)nframes * sizeof(pool_frame));
    p->tab = (pool_slot *)(void *)m;
    m += ALIGN64(((size_t)1 << bits) * sizeof(pool_slot));
    p->sortbuf = (uint64_t *)(void *)m;
    m += (size_t)nframes * sizeof(uint64_t);
    p->dirty = (uint32_t *)(void *)m;
    for (i = 0; i <= p->tabmask; i++) {
        p->tab[i].pgno = 0;
        p->tab[i].fi = POOL_NONE;
    }
    p->lru_head = p->lru_tail = POOL_NONE;
    for (i = 0; i < nframes; i++) {
        memset(&p->fr[i], 0, sizeof p->fr[i]);
        p->fr[i].prev = POOL_NONE;
        p->fr[i].next = i + 1 < nframes ? i + 1 : POOL_NONE;
    }
    p->free_list = 0;
}

static uint32_t tab_find(const pool *p, uint32_t pgno)
{
    uint32_t i = tab_home(p, pgno);
    for (;;) {
        const pool_slot *s = &p->tab[i];
        if (s->fi == POOL_NONE)
            return POOL_NONE;
        if (s->pgno == pgno)
            return s->fi;
        i = (i + 1) & p->tabmask;
    }
}

static void tab_insert(pool *p, uint32_t pgno, uint32_t fi)
{
    uint32_t i = tab_home(p, pgno);
    while (p->tab[i].fi != POOL_NONE)
        i = (i + 1) & p->tabmask;
    p->tab[i].pgno = pgno;
    p->tab[i].fi = fi;
}

static void tab_delete(pool *p, uint32_t pgno)
{
    uint32_t i = tab_home(p, pgno), j;
    while (p->tab[i].fi != POOL_NONE && p->tab[i].pgno != pgno)
        i = (i + 1) & p->tabmask;
    if (p->tab[i].fi == POOL_NONE)
        return;
    /* backward-shift deletion keeps every probe sequence unbroken */
    j = i;
    for (;;) {
        uint32_t k;
        j = (j + 1) & p->tabmask;
        if (p->tab[j].fi == POOL_NONE)
            break;
        k = tab_home(p, p->tab[j].pgno);
        if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
            p->tab[i] = p->tab[j];
            i = j;
        }
    }
    p->tab[i].fi = POOL_NONE;
}

static void lru_unlink(pool *p, uint32_t fi)
{
    pool_frame *f = &p->fr[fi];
    if (f->prev != POOL_NONE)
        p->fr[f->prev].next = f->next;
    else
        p->lru_head = f->next;
    if (f->next != POOL_NONE)
        p->fr[f->next].prev = f->prev;
    else
        p->lru_tail = f->prev;
    f->prev = f->next = POOL_NONE;
}

static void lru_push_head(pool *p, uint32_t fi)
{
    pool_frame *f = &p->fr[fi];
    f->prev = POOL_NONE;
    f->next = p->lru_head;
    if (p->lru_head != POOL_NONE)
        p->fr[p->lru_head].prev = fi;
    p->lru_head = fi;
    if (p->lru_tail == POOL_NONE)
        p->lru_tail = fi;
}

static void mark_dirty(pool *p, uint32_t fi)
{
    if (!p->fr[fi].dirty) {
        p->fr[fi].dirty = 1;
        p->fr[fi].dpos = p->ndirty;
        p->dirty[p->ndirty++] = fi;
    }
}

static void mark_clean(pool *p, uint32_t fi)
{
    if (p->fr[fi].dirty) {
        uint32_t pos = p->fr[fi].dpos, last = p->dirty[--p->ndirty];
        p->dirty[pos] = last;
        p->fr[last].dpos = pos;
        p->fr[fi].dirty = 0;
    }
}

/* Releases frame fi (its page forgotten) to the unused list. */
static void frame_release(pool *p, uint32_t fi)
{
    pool_frame *f = &p->fr[fi];
    if (f->used) {
        tab_delete(p, f->pgno);
        lru_unlink(p, fi);
        mark_clean(p, fi);
    }
    f->used = f->dirty = f->fresh = 0;
    f->pin = 0;
    f->prev = POOL_NONE;
    f->next = p->free_list;
    p->free_list = fi;
}

/* A frame to reuse: an unused one, else the least recently used unpinned
 * one (written back first if dirty). */
static int get_victim(pool *p, uint32_t *out)
{
    uint32_t fi = p->free_list;
    if (fi != POOL_NONE) {
        p->free_list = p->fr[fi].next;
        p->fr[fi].next = POOL_NONE;
        *out = fi;
        return KVS_OK;
    }
    for (fi = p->lru_tail; fi != POOL_NONE; fi = p->fr[fi].prev)
        if (p->fr[fi].pin == 0)
            break;
    if (fi == POOL_NONE)
        return kvs_seterr(pager_err(p->pg), KVS_ENOMEM, 0,
                          "buffer pool: all %u frames are pinned", (unsigned)p->nframes);
    if (p->fr[fi].dirty) {
        /* no-steal: a page the file already had goes to the spill file, so
         * the file is untouched until the section ends; a page the section
         * grew the file with can go to the file (nothing points to it) */
        uint32_t pgno = p->fr[fi].pgno;
        int rc;
        if (p->spill && !(p->fr[fi].fresh && pgno >= pager_sect_npages(p->pg))) {
            rc = spill_write(p->spill, pgno, pool_page(p, fi));
        } else {
            rc = pager_write(p->pg, pgno, pool_page(p, fi));
            if (rc == KVS_OK)
                p->writes++;
        }
        if (rc)
            return rc;
        mark_clean(p, fi);
    }
    tab_delete(p, p->fr[fi].pgno);
    lru_unlink(p, fi);
    p->fr[fi].used = 0;
    p->evictions++;
    *out = fi;
    return KVS_OK;
}

int pool_cached(pool *p, uint32_t pgno, uint32_t *fi)
{
    *fi = tab_find(p, pgno);
    return *fi != POOL_NONE;
}

int pool_fetch(pool *p, uint32_t pgno, int flags, uint32_t *out)
{
    uint32_t fi = tab_find(p, pgno);
    pool_frame *f;
    int rc;
    if (pgno == 0 || pgno >= hdr_npages(pager_hdr(p->pg)))
        return kvs_seterr(pager_err(p->pg), KVS_ECORRUPT, pgno,
                          "page %u referenced as a data page (file has %u pages)",
                          (unsigned)pgno, (unsigned)hdr_npages(pager_hdr(p->pg)));
    if (fi != POOL_NONE) {
        f = &p->fr[fi];
        p->hits++;
        if (p->lru_head != fi) {
            lru_unlink(p, fi);
            lru_push_head(p, fi);
        }
        if (flags & POOL_PIN)
            f->pin++;
        if (flags & POOL_NEW)
            memset(pool_page(p, fi), 0, PG_SIZE);
        *out = fi;
        return KVS_OK;
    }
    rc = get_victim(p, &fi);
    if (rc)
        return rc;
    f = &p->fr[fi];
    /* a spilled page lives in the spill file until it comes back here */
    rc = p->spill ? spill_take(p->spill, pgno, pool_page(p, fi), !(flags & POOL_NEW)) : 0;
    if (rc < 0) {
        f->used = 0;
        f->next = p->free_list;
        p->free_list = fi;
        return rc;
    }
    if (rc == 1) {
        if (flags & POOL_NEW)
            memset(pool_page(p, fi), 0, PG_SIZE);
        f->pgno = pgno;
        f->used = 1;
        f->dirty = 0;
        mark_dirty(p, fi);
        f->fresh = 0;
        f->pin = (flags & POOL_PIN) ? 1 : 0;
        tab_insert(p, pgno, fi);
        lru_push_head(p, fi);
        *out = fi;
        return KVS_OK;
    }
    if (flags & POOL_NEW) {
        memset(pool_page(p, fi), 0, PG_SIZE);
    } else {
        rc = pager_read(p->pg, pgno, pool_page(p, fi));
        if (rc == KVS_OK && p->validate)
            rc = p->validate(pool_page(p, fi), pgno, p->validate_arg);
        if (rc) {
            f->used = 0;
            f->next = p->free_list;
            p->free_list = fi;
            return rc;
        }
        p->reads++;
    }
    f->pgno = pgno;
    f->used = 1;
    f->dirty = 0;
    f->fresh = 0;
    f->pin = (flags & POOL_PIN) ? 1 : 0;
    tab_insert(p, pgno, fi);
    lru_push_head(p, fi);
    *out = fi;
    return KVS_OK;
}

void pool_unpin(pool *p, uint32_t fi)
{
    if (p->fr[fi].pin > 0)
        p->fr[fi].pin--;
}

void pool_dirty(pool *p, uint32_t fi)
{
    mark_dirty(p, fi);
}

uint32_t pool_pinned(const pool *p)
{
    uint32_t i, n = 0;
    for (i = 0; i < p->nframes; i++)
        if (p->fr[i].used && p->fr[i].pin)
            n++;
    return n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Writes every dirty frame.  Pages the section grew the file with go first
 * (no page on disk points to them yet; pages reused from the free list are
 * not among them, see pool_alloc), then the rest, each group in page order;
 * the caller writes the header after this. */
int pool_flush(pool *p)
{
    int pass;
    if (p->ndirty == 0)
        return KVS_OK;
    for (pass = 0; pass < 2; pass++) {
        uint32_t i, n = 0;
        for (i = 0; i < p->ndirty; i++) {
            pool_frame *f = &p->fr[p->dirty[i]];
            if (f->fresh == (pass == 0))
                p->sortbuf[n++] = ((uint64_t)f->pgno << 32) | p->dirty[i];
        }
        qsort(p->sortbuf, n, sizeof(uint64_t), cmp_u64);
        /* runs of consecutive page numbers go out in one write each */
        for (i = 0; i < n;) {
            uint8_t *run[PAGER_RUN];
            uint32_t first = (uint32_t)(p->sortbuf[i] >> 32), k = 0, j;
            int rc;
            while (i + k < n && k < PAGER_RUN && (uint32_t)(p->sortbuf[i + k] >> 32) == first + k) {
                run[k] = pool_page(p, (uint32_t)p->sortbuf[i + k]);
                k++;
            }
            rc = pager_write_run(p->pg, first, run, k);
            if (rc)
                return rc;
            for (j = 0; j < k; j++) {
                uint32_t fi = (uint32_t)p->sortbuf[i + j];
                p->writes++;
                p->fr[fi].fresh = 0;
                mark_clean(p, fi);
            }
            i += k;
        }
    }
    return KVS_OK;
}

void pool_drop_all(pool *p)
{
    uint32_t i;
    for (i = 0; i < p->nframes; i++)
        if (p->fr[i].used)
            frame_release(p, i);
    p->ndirty = 0;
    p->lru_head = p->lru_tail = POOL_NONE;
}

int pool_alloc(pool *p, int type, uint32_t *pgno_out, uint32_t *fi_out)
{
    kvs_hdr *h = pager_hdr(p->pg);
    uint32_t pgno, fi;
    uint8_t *pg;
    int rc;
    if (hdr_free_head(h) != NO_PAGE) {
        uint32_t next;
        pgno = hdr_free_head(h);
        rc = pool_fetch(p, pgno, POOL_PIN, &fi);
        if (rc)
            return rc;
        pg = pool_page(p, fi);
        next = rd32(pg + PG_NEXT);
        if (pg[PG_TYPE] != KVS_PAGE_FREE || next >= hdr_npages(h) || hdr_free_count(h) == 0) {
            pool_unpin(p, fi);
            return kvs_seterr(pager_err(p->pg), KVS_ECORRUPT, pgno,
                              "page %u: on the free list but type %u / next %u",
                              (unsigned)pgno, pg[PG_TYPE], (unsigned)next);
        }
        hdr_free_popped(h, next);
    } else {
        if (hdr_npages(h) == 0xffffffffu)
            return kvs_seterr(pager_err(p->pg), KVS_ENOSPC, 0, "file has 2^32-1 pages");
        pgno = hdr_npages(h);
        rc = pager_extend(p->pg, pgno);
        if (rc)
            return rc;
        (void)hdr_append_page(h);
        rc = pool_fetch(p, pgno, POOL_PIN | POOL_NEW, &fi);
        if (rc) {
            hdr_unappend_page(h);
            return rc;
        }
        pg = pool_page(p, fi);
    }
    memset(pg, 0, PG_SIZE);
    pg[PG_TYPE] = (uint8_t)type;
    pool_dirty(p, fi);
    /* "fresh" (written first at the flush, early on eviction) only if the
     * file on disk does not reference the page: a page the section grew the
     * file with.  A page popped from the free list is still referenced on
     * disk (by the old header's free list, or by the chain it was freed from
     * earlier in this section, which the disk still holds), so it is
     * rewritten in the normal order like any other existing page. */
    p->fr[fi].fresh = pgno >= pager_sect_npages(p->pg);
    *pgno_out = pgno;
    *fi_out = fi;
    return KVS_OK;
}

int pool_free_page(pool *p, uint32_t pgno)
{
    kvs_hdr *h = pager_hdr(p->pg);
    uint32_t fi;
    uint8_t *pg;
    int rc = pool_fetch(p, pgno, POOL_NEW, &fi);
    if (rc)
        return rc;
    pg = pool_page(p, fi);
    pg[PG_TYPE] = KVS_PAGE_FREE;
    wr32(pg + PG_NEXT, hdr_free_head(h));
    pool_dirty(p, fi);
    hdr_free_pushed(h, pgno);
    return KVS_OK;
}
