/*
 * unit_pool.c - unit tests of the buffer pool (pool.c): hits and reads, LRU
 * victim choice, pins protect frames, dirty victims written back, ordered
 * flush, page-table correctness under heavy churn (backward-shift delete),
 * the validation hook, drop_all, and page allocation / the free list.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "pool.h"
#include "tap.h"

static int reject_page;
static int validate(const uint8_t *page, uint32_t pgno, void *arg)
{
    (void)page;
    if (pgno == (uint32_t)reject_page)
        return kvs_seterr(arg, KVS_ECORRUPT, pgno, "page %u rejected", (unsigned)pgno);
    return KVS_OK;
}

int main(void)
{
    static uint8_t page[PG_SIZE];
    char path[128];
    kvs_err err;
    pager *pg;
    pool p;
    void *mem;
    uint32_t i, fi, fis[8], npages = 200, bad;
    int fd, rc;

    memset(&err, 0, sizeof err);
    snprintf(path, sizeof path, "/tmp/unit_pool.%d", (int)getpid());
    unlink(path);
    fd = open(path, O_RDWR | O_CREAT, 0600);
    pg = pager_new(kvs_os_posix(), fd, 0, &err);
    /* pages 1..199 each filled with its number; header counts them free */
    memset(pager_hdr(pg), 0, sizeof *pager_hdr(pg));
    pager_hdr(pg)->npages = npages;
    for (i = 1; i < npages; i++) {
        memset(page, (int)(i & 0xff), PG_SIZE);
        page[PG_TYPE] = KVS_PAGE_FREE;
        wr32(page + PG_NEXT, 0);
        wr32(page + PG_AUX, i);
        pager_write(pg, i, page);
    }

    mem = malloc(pool_mem_size(8));
    pool_init(&p, mem, 8, pg);
    p.validate = validate;
    p.validate_arg = &err;
    reject_page = -1;

    for (i = 1; i <= 8; i++)
        pool_fetch(&p, i, 0, &fi);
    tap_ok(p.reads == 8 && p.hits == 0, "8 misses fill 8 frames");
    pool_fetch(&p, 1, 0, &fi);
    tap_ok(p.hits == 1 && rd32(pool_page(&p, fi) + PG_AUX) == 1, "hit returns page 1");
    pool_fetch(&p, 9, 0, &fi);
    tap_ok(!pool_cached(&p, 2, &fi) && pool_cached(&p, 1, &fi), "LRU evicted page 2, kept recently used page 1");
    tap_ok(p.evictions == 1, "one eviction");

    /* pins */
    for (i = 0; i < 8; i++)
        TAP_RC(pool_fetch(&p, 20 + i, POOL_PIN, &fis[i]), KVS_OK);
    tap_ok(pool_pinned(&p) == 8, "8 frames pinned");
    TAP_RC(pool_fetch(&p, 30, 0, &fi), KVS_ENOMEM);
    for (i = 0; i < 8; i++)
        pool_unpin(&p, fis[i]);
    TAP_RC(pool_fetch(&p, 30, 0, &fi), KVS_OK);

    /* dirty write-back on eviction */
    pool_fetch(&p, 40, POOL_PIN, &fi);
    memcpy(pool_page(&p, fi) + 100, "dirty!", 6);
    pool_dirty(&p, fi);
    pool_unpin(&p, fi);
    for (i = 50; i < 60; i++)
        pool_fetch(&p, i, 0, &fi);
    tap_ok(!pool_cached(&p, 40, &fi), "dirty page 40 evicted");
    TAP_RC(pager_read(pg, 40, page), KVS_OK);
    tap_ok(memcmp(page + 100, "dirty!", 6) == 0, "and was written back first (checksum valid)");

    /* validation hook */
    reject_page = 77;
    TAP_RC(pool_fetch(&p, 77, 0, &fi), KVS_ECORRUPT);
    tap_ok(!pool_cached(&p, 77, &fi), "a rejected page is not cached");
    reject_page = -1;
    TAP_RC(pool_fetch(&p, 0, 0, &fi), KVS_ECORRUPT);
    TAP_RC(pool_fetch(&p, npages, 0, &fi), KVS_ECORRUPT);

    /* churn: random fetches through a small table, contents always right */
    free(mem);
    mem = malloc(pool_mem_size(61));
    pool_init(&p, mem, 61, pg);
    srand(7);
    bad = 0;
    for (i = 0; i < 200000; i++) {
        uint32_t pgno = 1 + (uint32_t)rand() % (npages - 1);
        if (pool_fetch(&p, pgno, 0, &fi) != KVS_OK || rd32(pool_page(&p, fi) + PG_AUX) != pgno)
            bad++;
    }
    tap_ok(bad == 0, "200000 random fetches, 61 frames: every page right (hits %llu, reads %llu)",
           (unsigned long long)p.hits, (unsigned long long)p.reads);
    {
        uint32_t found = 0;
        for (i = 1; i < npages; i++)
            if (pool_cached(&p, i, &fi)) {
                found++;
                if (p.fr[fi].pgno != i)
                    bad++;
            }
        tap_ok(found == 61 && bad == 0, "page table maps exactly the 61 cached pages");
    }

    /* flush writes every dirty page */
    for (i = 100; i < 110; i++) {
        pool_fetch(&p, i, 0, &fi);
        pool_page(&p, fi)[200] = 0x5a;
        pool_dirty(&p, fi);
    }
    tap_ok(p.ndirty == 10, "10 dirty frames");
    TAP_RC(pool_flush(&p), KVS_OK);
    tap_ok(p.ndirty == 0, "flush leaves none dirty");
    pager_read(pg, 105, page);
    tap_ok(page[200] == 0x5a, "flushed page 105 on disk");
    pool_drop_all(&p);
    tap_ok(!pool_cached(&p, 105, &fi) && p.ndirty == 0, "drop_all empties the pool");

    /* allocation: free list first (LIFO), then growth */
    TAP_RC(pool_free_page(&p, 10), KVS_OK);
    TAP_RC(pool_free_page(&p, 11), KVS_OK);
    tap_ok(pager_hdr(pg)->free_head == 11 && pager_hdr(pg)->free_count == 2, "free list holds 11 -> 10");
    {
        uint32_t a, b, c;
        int reused_fresh;
        pager_begin_unit(pg);   /* as kvs_begin does for a write section */
        rc = pool_alloc(&p, KVS_PAGE_OVERFLOW, &a, &fi);
        reused_fresh = p.fr[fi].fresh;
        pool_unpin(&p, fi);
        rc |= pool_alloc(&p, KVS_PAGE_OVERFLOW, &b, &fi);
        reused_fresh |= p.fr[fi].fresh;
        pool_unpin(&p, fi);
        /* the disk still references a page on its free list: it must not be
         * written ahead of the pages that reference it (README, durability) */
        tap_ok(!reused_fresh, "pages reused from the free list are not fresh");
        rc |= pool_alloc(&p, KVS_PAGE_VALUE, &c, &fi);
        tap_ok(rc == 0 && a == 11 && b == 10 && c == npages, "alloc reuses 11, 10, then grows to page %u", c);
        tap_ok(pool_page(&p, fi)[PG_TYPE] == KVS_PAGE_VALUE && p.fr[fi].fresh && p.fr[fi].dirty,
               "a page grown from the file end is typed, fresh and dirty");
        pool_unpin(&p, fi);
        tap_ok(pager_hdr(pg)->npages == npages + 1 && pager_hdr(pg)->free_count == 0, "page count grew by one");
        tap_ok(kvs_os_posix()->filesize(fd) >= (off_t)(npages + 1) * PG_SIZE, "file already holds the new page");
    }
    close(fd);
    unlink(path);
    free(mem);
    pager_free(pg);
    tap_diag("pool: %d checks", tap_n);
    return tap_done();
}
