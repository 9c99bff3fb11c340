/*
 * unit_pool.c - unit tests of the buffer pool (pool.c): both replacement
 * policies (exact LRU order; clock sweep with its usage count capped at 5),
 * pins protect frames, dirty victims written back, validation on read,
 * page-table correctness under heavy churn, ordered flush, drop, page
 * allocation and the free list; one pool serving two files keyed by (file,
 * page), file identity (same nonce and inode shares, a copy does not), other
 * files' dirty frames never evicted; the block holds no pointer (a copy of
 * it at another address works); and, in KVS_DEBUG builds, that breaking a
 * content-lock rule aborts.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "pool.h"
#include "tap.h"
#include "test_pool.h"

#define NPAGES 200u

/* A file of npages pages, page i (1..npages-1) a free page carrying i in
 * its AUX field, under a pager (over os) whose header counts them. */
static int make_file_n(const char *path, pager **pgp, kvs_err *err, uint8_t fill, uint32_t npages,
                       const kvs_os *os)
{
    pager *pg;
    static uint8_t page[PG_SIZE];
    uint32_t i;
    int fd;
    unlink(path);
    fd = open(path, O_RDWR | O_CREAT, 0600);
    *pgp = pg = pager_new(os, fd, 0, err);
    memset(pager_hdr(pg), 0, sizeof *pager_hdr(pg));
    pager_hdr(pg)->npages = npages;
    for (i = 1; i < npages; i++) {
        memset(page, 0, PG_SIZE);
        page[PG_TYPE] = KVS_PAGE_FREE;
        wr32(page + PG_AUX, i);
        page[100] = fill;
        pager_write(pg, i, page);
    }
    return fd;
}

static int make_file(const char *path, pager **pgp, kvs_err *err, uint8_t fill)
{
    return make_file_n(path, pgp, err, fill, NPAGES, kvs_os_posix());
}

/* Fetches pgno and lets go at once; returns the AUX field read under the
 * shared lock (0 on error). */
static uint32_t touch(pool_file *pf, uint32_t pgno)
{
    uint32_t fi, aux;
    uint8_t *page;
    if (pool_fetch(pf, pgno, 0, &fi, &page) != KVS_OK)
        return 0;
    pool_lock(pf, fi, POOL_SHARED);
    aux = rd32(page + PG_AUX);
    pool_release(pf, fi);
    return aux;
}

static uint32_t cached_count(pool_file *pf)
{
    uint32_t i, n = 0;
    for (i = 1; i < NPAGES; i++)
        n += (uint32_t)pool_cached(pf, i);
    return n;
}

/* ---- the policies ----------------------------------------------------------- */

static void test_lru(pager *pg, kvs_err *err)
{
    void *mem = NULL;
    pool_file *pf = test_pool(pg, err, 8, POOL_LRU, &mem);
    pool_counters c;
    uint32_t i;
    for (i = 1; i <= 8; i++)
        touch(pf, i);
    pool_get_counters(pf, &c);
    tap_ok(c.reads == 8 && c.hits == 0, "lru: 8 misses fill 8 frames");
    tap_ok(touch(pf, 1) == 1, "lru: a hit returns page 1");
    touch(pf, 9);
    tap_ok(!pool_cached(pf, 2) && pool_cached(pf, 1), "lru: evicted page 2, kept recently used page 1");
    touch(pf, 3);
    touch(pf, 10);
    tap_ok(!pool_cached(pf, 4) && pool_cached(pf, 3), "lru: then page 4 (3 was used again)");
    pool_get_counters(pf, &c);
    tap_ok(c.evictions == 2, "lru: two evictions counted");
    pool_file_free(pf);
    free(mem);
}

static void test_clock(pager *pg, kvs_err *err)
{
    void *mem = NULL;
    pool_file *pf = test_pool(pg, err, 8, POOL_CLOCK, &mem);
    uint32_t i, fi, survived, evicted_at = 0;
    uint8_t *page;
    for (i = 1; i <= 8; i++)
        touch(pf, i);
    for (i = 0; i < 4; i++)
        touch(pf, 1);
    touch(pf, 9);
    tap_ok(pool_cached(pf, 1) && !pool_cached(pf, 2), "clock: a hot page 1 survives, page 2 is the victim");
    /* the usage count is capped: 100 more hits buy page 1 no more than 5
     * turns of the hand, so a stream of new pages evicts it in the end */
    for (i = 0; i < 100; i++)
        touch(pf, 1);
    pool_fetch(pf, 1, 0, &fi, &page);
    tap_ok(pool_frame_usage(pf, fi) == POOL_USAGE_MAX, "clock: usage count capped at %u (is %u)",
           POOL_USAGE_MAX, pool_frame_usage(pf, fi));
    pool_unpin(pf, fi);
    for (i = 0, survived = 0; i < 100 && !evicted_at; i++) {
        touch(pf, 20 + i);
        if (pool_cached(pf, 1))
            survived++;
        else
            evicted_at = i + 1;
    }
    tap_ok(survived >= 7 && evicted_at > 0 && evicted_at <= 6 * 8,
           "clock: page 1 outlives 7 new pages, evicted after %u (at most 6 turns of 8 frames)",
           (unsigned)evicted_at);
    /* pinned frames are passed over; all pinned = none to give */
    {
        uint32_t fis[8];
        int rc = KVS_OK;
        for (i = 0; i < 8 && rc == KVS_OK; i++)
            rc = pool_fetch(pf, 150 + i, 0, &fis[i], &page);
        tap_ok(rc == KVS_OK && pool_pinned(pf) == 8, "clock: 8 frames pinned");
        TAP_RC(pool_fetch(pf, 170, 0, &fi, &page), KVS_ENOMEM);
        pool_unpin(pf, fis[3]);
        TAP_RC(pool_fetch(pf, 170, 0, &fi, &page), KVS_OK);
        tap_ok(!pool_cached(pf, 153), "clock: the one unpinned frame (page 153) was taken");
        pool_unpin(pf, fi);
        for (i = 0; i < 8; i++)
            if (i != 3)
                pool_unpin(pf, fis[i]);
    }
    pool_file_free(pf);
    free(mem);
}

/* ---- one file: pins, write-back, validation, churn, flush, allocation --------- */

static void test_one_file(pager *pg, kvs_err *err, int fd, int policy)
{
    static uint8_t page[PG_SIZE];
    const char *pn = policy == POOL_LRU ? "lru" : "clock";
    void *mem = NULL;
    pool_file *pf = test_pool(pg, err, 8, policy, &mem);
    uint32_t i, fi, fis[8], bad;
    uint8_t *pp;
    int rc;

    for (i = 0; i < 8; i++)
        TAP_RC(pool_fetch(pf, 20 + i, 0, &fis[i], &pp), KVS_OK);
    tap_ok(pool_pinned(pf) == 8, "%s: 8 frames pinned", pn);
    TAP_RC(pool_fetch(pf, 30, 0, &fi, &pp), KVS_ENOMEM);
    for (i = 0; i < 8; i++)
        pool_unpin(pf, fis[i]);
    TAP_RC(pool_fetch(pf, 30, 0, &fi, &pp), KVS_OK);
    pool_unpin(pf, fi);

    /* dirty write-back on eviction (no spill file: the pager has no path) */
    pp = test_page_edit(pf, 40, &fi);
    memcpy(pp + 200, "dirty!", 6);
    test_page_done(pf, fi, 0);
    for (i = 50; i < 70; i++)
        touch(pf, i);
    tap_ok(!pool_cached(pf, 40), "%s: dirty page 40 evicted", pn);
    TAP_RC(pager_read(pg, 40, page), KVS_OK);
    tap_ok(memcmp(page + 200, "dirty!", 6) == 0, "%s: and written back first (checksum valid)", pn);
    /* undo it for the next round */
    pp = test_page_edit(pf, 40, &fi);
    memset(pp + 200, 0, 6);
    test_page_done(pf, fi, 0);
    TAP_RC(pool_flush(pf), KVS_OK);

    /* validation: a page whose checksum holds but whose type is unknown */
    memset(page, 0, PG_SIZE);
    page[PG_TYPE] = 99;
    pager_write(pg, 77, page);
    TAP_RC(pool_fetch(pf, 77, 0, &fi, &pp), KVS_ECORRUPT);
    tap_ok(!pool_cached(pf, 77), "%s: a page that fails validation is not cached", pn);
    memset(page, 0, PG_SIZE);
    page[PG_TYPE] = KVS_PAGE_FREE;
    wr32(page + PG_AUX, 77);
    pager_write(pg, 77, page);
    TAP_RC(pool_fetch(pf, 0, 0, &fi, &pp), KVS_ECORRUPT);
    TAP_RC(pool_fetch(pf, NPAGES, 0, &fi, &pp), KVS_ECORRUPT);
    pool_file_free(pf);

    /* churn: random fetches through a small table, contents always right */
    pf = test_pool(pg, err, 61, policy, &mem);
    srand(7);
    bad = 0;
    for (i = 0; i < 200000; i++) {
        uint32_t pgno = 1 + (uint32_t)rand() % (NPAGES - 1);
        if (touch(pf, pgno) != pgno)
            bad++;
    }
    {
        pool_counters c;
        pool_get_counters(pf, &c);
        tap_ok(bad == 0, "%s: 200000 random fetches, 61 frames: every page right (hits %llu, reads %llu)",
               pn, (unsigned long long)c.hits, (unsigned long long)c.reads);
    }
    bad = 0;
    for (i = 0; i < 61; i++)
        if (!(pool_frame_flags(pf, i) & POOL_F_USED) || !pool_cached(pf, pool_frame_page(pf, i)))
            bad++;
    tap_ok(bad == 0 && cached_count(pf) == 61, "%s: page table maps exactly the 61 cached pages", pn);

    /* flush writes every dirty page, in one pass */
    for (i = 100; i < 110; i++) {
        pp = test_page_edit(pf, i, &fi);
        pp[300] = 0x5a;
        test_page_done(pf, fi, 0);
    }
    tap_ok(pool_ndirty(pf) == 10, "%s: 10 dirty frames", pn);
    TAP_RC(pool_flush(pf), KVS_OK);
    tap_ok(pool_ndirty(pf) == 0, "%s: flush leaves none dirty", pn);
    pager_read(pg, 105, page);
    tap_ok(page[300] == 0x5a, "%s: flushed page 105 on disk", pn);
    pool_drop(pf);
    tap_ok(cached_count(pf) == 0 && pool_ndirty(pf) == 0, "%s: drop empties the pool", pn);

    /* allocation: free list first (LIFO), then growth */
    {
        uint32_t a, b, c, npages = pager_hdr(pg)->npages, head = pager_hdr(pg)->free_head, count = pager_hdr(pg)->free_count;
        int reused_fresh;
        TAP_RC(pool_free_page(pf, 10), KVS_OK);
        TAP_RC(pool_free_page(pf, 11), KVS_OK);
        tap_ok(pager_hdr(pg)->free_head == 11 && pager_hdr(pg)->free_count == count + 2, "%s: free list holds 11 -> 10", pn);
        pager_begin_unit(pg);   /* as kvs_begin does for a write section */
        rc = pool_alloc(pf, KVS_PAGE_OVERFLOW, &a, &fi, &pp);
        reused_fresh = (pool_frame_flags(pf, fi) & POOL_F_FRESH) != 0;
        pool_release(pf, fi);
        rc |= pool_alloc(pf, KVS_PAGE_OVERFLOW, &b, &fi, &pp);
        reused_fresh |= (pool_frame_flags(pf, fi) & POOL_F_FRESH) != 0;
        pool_release(pf, fi);
        /* the disk still references a page on its free list: it must not be
         * written ahead of the pages that reference it (README, durability) */
        tap_ok(!reused_fresh, "%s: pages reused from the free list are not fresh", pn);
        tap_ok(pager_hdr(pg)->free_head == head, "%s: the free list is as before", pn);
        rc |= pool_alloc(pf, KVS_PAGE_VALUE, &c, &fi, &pp);
        tap_ok(rc == 0 && a == 11 && b == 10 && c == npages, "%s: alloc reuses 11, 10, then grows to page %u",
               pn, c);
        tap_ok(pp[PG_TYPE] == KVS_PAGE_VALUE &&
               (pool_frame_flags(pf, fi) & (POOL_F_FRESH | POOL_F_DIRTY)) == (POOL_F_FRESH | POOL_F_DIRTY),
               "%s: a page grown from the file end is typed, fresh and dirty", pn);
        pool_release(pf, fi);
        tap_ok(pager_hdr(pg)->npages == npages + 1, "%s: page count grew by one", pn);
        tap_ok(kvs_os_posix()->filesize(fd) >= (off_t)(npages + 1) * PG_SIZE, "%s: file already holds the new page", pn);
        TAP_RC(pool_flush(pf), KVS_OK);
    }
    pool_file_free(pf);
    free(mem);
}

/* ---- a large flush: page order and runs ----------------------------------------- */

static long flush_pwrites;
static ssize_t counting_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    flush_pwrites++;
    return pwrite(fd, buf, n, off);
}

/* 3,000 pages dirtied in random order, a few left out: the flush sorts them
 * by page (a radix sort from 256 dirty frames on: two passes here, pages
 * above 2^11) and writes each run of consecutive pages in writes of up to 64
 * pages.  The pwrite count is exactly the runs' (an order gone wrong makes
 * more, a page lost or doubled breaks the contents check). */
static void test_flush_order(const char *path)
{
    enum { FP = 3000 };
    static uint8_t page[PG_SIZE];
    static uint32_t order[FP];
    kvs_os os = *kvs_os_posix();
    kvs_err err;
    void *mem = NULL;
    pager *pg;
    pool_file *pf;
    uint32_t i, fi, bad = 0, want = 0, run = 0, ndirtied = 0;
    uint8_t *pp;
    int fd;
    memset(&err, 0, sizeof err);
    os.pwrite = counting_pwrite;
    fd = make_file_n(path, &pg, &err, 0, FP, &os);
    pf = test_pool(pg, &err, 4096, POOL_LRU, &mem);
    for (i = 0; i < FP - 1; i++)
        order[i] = i + 1;
    srand(9);
    for (i = FP - 2; i > 0; i--) {
        uint32_t j = (uint32_t)rand() % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (i = 0; i < FP - 1; i++) {
        if (order[i] % 97 == 5)
            continue;       /* left clean: the runs break there */
        pp = test_page_edit(pf, order[i], &fi);
        wr32(pp + 200, order[i] * 7 + 1);
        test_page_done(pf, fi, 0);
        ndirtied++;
    }
    /* the runs: consecutive dirty pages, cut at 64 */
    for (i = 1; i < FP; i++) {
        if (i % 97 == 5) {
            run = 0;
            continue;
        }
        if (run == 0 || run == 64) {
            want++;
            run = 0;
        }
        run++;
    }
    flush_pwrites = 0;
    TAP_RC(pool_flush(pf), KVS_OK);
    tap_ok(flush_pwrites == (long)want && pool_ndirty(pf) == 0,
           "flush of %u dirty pages in random order: %ld writes, one per run of consecutive pages (%u)",
           ndirtied, flush_pwrites, want);
    for (i = 1; i < FP; i++) {
        pager_read(pg, i, page);
        if (rd32(page + 200) != (i % 97 == 5 ? 0 : i * 7 + 1) || rd32(page + PG_AUX) != i)
            bad++;
    }
    tap_ok(bad == 0, "every page on disk is its own, changed exactly when dirtied (%u wrong)", bad);
    pool_file_free(pf);
    free(mem);
    close(fd);
    pager_free(pg);
    unlink(path);
}

/* ---- two files in one pool ------------------------------------------------------ */

static pool_file *attach(pool *p, pager *pg, kvs_err *err, uint64_t id, uint64_t ino)
{
    pool_ident ident;
    pool_file *pf = pool_file_new(p, pg, err, NULL, NULL);
    ident.file_id = id;
    ident.dev = 1;
    ident.ino = ino;
    if (pool_file_bind(pf, &ident) != KVS_OK) {
        pool_file_free(pf);
        return NULL;
    }
    return pf;
}

static void test_two_files(const char *pa, const char *pb)
{
    kvs_err ea, eb;
    pager *ga, *gb;
    void *mem = NULL;
    pool *p;
    pool_file *a, *b, *a2, *copy;
    uint32_t i, fi, bad = 0;
    uint8_t *pp;
    int fa, fb;
    memset(&ea, 0, sizeof ea);
    memset(&eb, 0, sizeof eb);
    fa = make_file(pa, &ga, &ea, 0xaa);
    fb = make_file(pb, &gb, &eb, 0xbb);
    if (posix_memalign(&mem, PG_SIZE, pool_mem_size(16, 3)) != 0)
        abort();
    p = pool_format(mem, 16, 3, POOL_CLOCK);
    a = attach(p, ga, &ea, 1001, 10);
    b = attach(p, gb, &eb, 2002, 20);
    tap_ok(a && b, "two files bound to one pool");
    for (i = 1; i <= 6; i++) {
        if (pool_fetch(a, i, 0, &fi, &pp) != KVS_OK || pp[100] != 0xaa)
            bad++;
        else
            pool_unpin(a, fi);
        if (pool_fetch(b, i, 0, &fi, &pp) != KVS_OK || pp[100] != 0xbb)
            bad++;
        else
            pool_unpin(b, fi);
    }
    tap_ok(bad == 0, "page n of each file is its own frame, with its own bytes (keyed by file and page)");
    /* the same file (nonce and inode) through a second attachment shares frames */
    a2 = attach(p, ga, &ea, 1001, 10);
    {
        pool_counters c;
        touch(a2, 3);
        pool_get_counters(a2, &c);
        tap_ok(c.hits == 1 && c.reads == 0, "a second handle on the same file hits the first one's frame");
    }
    /* a copy: the same nonce, another inode: its own slot, nothing shared */
    copy = attach(p, gb, &eb, 1001, 11);
    {
        pool_counters c;
        touch(copy, 3);
        pool_get_counters(copy, &c);
        tap_ok(copy && c.hits == 0 && c.reads == 1, "a copy of the file (same nonce, other inode) shares nothing");
    }
    {
        pool_file *fourth = attach(p, gb, &eb, 3003, 30);
        tap_ok(fourth == NULL && strstr(eb.msg, "file slots") != NULL, "a fourth file: %s", eb.msg);
    }
    pool_file_free(copy);
    /* B's changes are B's: A's misses never evict (or write) them */
    for (i = 1; i <= 16; i++) {
        pp = test_page_edit(b, 100 + i, &fi);
        if (!pp)
            break;
        pp[300] = 0x77;
        test_page_done(b, fi, 0);
        if (i == 12)
            break;
    }
    tap_ok(pool_ndirty(b) == 12 && pool_ndirty(a) == 0, "b has 12 dirty frames, a none");
    for (i = 0, bad = 0; i < 40; i++)
        if (touch(a, 50 + i) != 50 + i)
            bad++;
    tap_ok(bad == 0 && pool_ndirty(b) == 12, "a's 40 misses ran in the 4 other frames, b's 12 changes stay");
    {
        uint8_t page[PG_SIZE];
        pager_read(gb, 105, page);
        tap_ok(page[300] == 0, "and none of b's changes reached b's file");
    }
    /* the block holds no pointer: a copy of it at another address is the
     * same pool (what shared memory mapped elsewhere needs) */
    {
        void *mem2 = NULL;
        pool *p2;
        pool_file *b2;
        if (posix_memalign(&mem2, PG_SIZE, pool_mem_size(16, 3)) != 0)
            abort();
        memcpy(mem2, mem, pool_mem_size(16, 3));
        p2 = pool_of(mem2);
        b2 = attach(p2, gb, &eb, 2002, 20);
        pp = NULL;
        tap_ok(p2 && b2 && pool_ndirty(b2) == 12 && pool_fetch(b2, 105, 0, &fi, &pp) == KVS_OK && pp[300] == 0x77,
               "a byte copy of the block at another address: same frames, same dirty pages");
        if (pp)
            pool_unpin(b2, fi);
        TAP_RC(pool_flush(b2), KVS_OK);
        pool_file_free(b2);
        free(mem2);
    }
    for (i = 1; i <= 4; i++)
        touch(a, 60 + i);
    /* all 16 frames: 12 dirty of b plus 4 pinned by a: nothing for a */
    {
        uint32_t fis[4];
        int rc = KVS_OK;
        for (i = 0; i < 4 && rc == KVS_OK; i++)
            rc = pool_fetch(a, 70 + i, 0, &fis[i], &pp);
        TAP_RC(pool_fetch(a, 80, 0, &fi, &pp), KVS_ENOMEM);
        tap_ok(strstr(ea.msg, "another file's changes") != NULL, "says why: %s", ea.msg);
        for (i = 0; i < 4; i++)
            pool_unpin(a, fis[i]);
    }
    TAP_RC(pool_flush(a), KVS_OK);
    tap_ok(pool_ndirty(b) == 12, "a's flush writes none of b's pages");
    TAP_RC(pool_flush(b), KVS_OK);
    {
        uint8_t page[PG_SIZE];
        pager_read(gb, 105, page);
        tap_ok(pool_ndirty(b) == 0 && page[300] == 0x77, "b's flush writes them");
    }
    /* the last user of a file drops its frames */
    pool_file_free(a2);
    tap_ok(pool_cached(a, 73), "a still has its frames while one handle remains");
    pool_file_free(a);
    a = attach(p, ga, &ea, 1001, 10);
    tap_ok(a && cached_count(a) == 0, "after the last handle left, a new one finds none of its pages");
    pool_file_free(a);
    pool_file_free(b);
    free(mem);
    close(fa);
    close(fb);
    unlink(pa);
    unlink(pb);
    pager_free(ga);
    pager_free(gb);
}

/* ---- content-lock rules (KVS_DEBUG builds abort on a broken one) ------------------ */

#ifdef KVS_DEBUG
/* Runs rule number r broken in a child; returns whether the child aborted. */
static int breaks(pager *pg, kvs_err *err, int r)
{
    pid_t pid = fork();
    int status;
    if (pid == 0) {
        void *mem = NULL;
        pool_file *pf = test_pool(pg, err, 8, POOL_LRU, &mem);
        uint32_t f1, f2;
        uint8_t *p1, *p2;
        freopen("/dev/null", "w", stderr);
        pool_fetch(pf, 5, 0, &f1, &p1);
        pool_fetch(pf, 9, 0, &f2, &p2);
        switch (r) {
        case 0: /* a second lock on a page that is not the first's next */
            pool_lock(pf, f1, POOL_SHARED);
            pool_lock(pf, f2, POOL_SHARED);
            break;
        case 1: /* a fetch (maybe I/O) with a lock held */
            pool_lock(pf, f1, POOL_SHARED);
            pool_fetch(pf, 12, 0, &f2, &p2);
            break;
        case 2: /* dirtying without the exclusive lock */
            pool_lock(pf, f1, POOL_SHARED);
            pool_dirty(pf, f1);
            break;
        case 3: /* unpinning a page still locked */
            pool_lock(pf, f1, POOL_EXCLUSIVE);
            pool_unpin(pf, f1);
            break;
        case 4: /* locking a page not pinned */
            pool_unpin(pf, f1);
            pool_lock(pf, f1, POOL_SHARED);
            break;
        default: /* the rules kept: chain order (5's next is 9) */
            pool_lock(pf, f1, POOL_EXCLUSIVE);
            wr32(p1 + PG_NEXT, 9);
            pool_lock(pf, f2, POOL_SHARED);
            pool_unlock(pf, f2);
            wr32(p1 + PG_NEXT, 0);
            pool_unlock(pf, f1);
            break;
        }
        _exit(0);
    }
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}
#endif

int main(void)
{
    char path[128], pb[128];
    kvs_err err;
    pager *pg;
    int fd;

    memset(&err, 0, sizeof err);
    snprintf(path, sizeof path, "/tmp/unit_pool.%d", (int)getpid());
    snprintf(pb, sizeof pb, "/tmp/unit_pool.%d.b", (int)getpid());
    fd = make_file(path, &pg, &err, 0);
    test_lru(pg, &err);
    test_clock(pg, &err);
    test_one_file(pg, &err, fd, POOL_LRU);
    close(fd);
    pager_free(pg);
    fd = make_file(path, &pg, &err, 0);
    test_one_file(pg, &err, fd, POOL_CLOCK);
    close(fd);
    pager_free(pg);
    test_two_files(path, pb);
    test_flush_order(path);
    fd = make_file(path, &pg, &err, 0);
#ifdef KVS_DEBUG
    {
        static const char *what[] = { "a second lock out of chain order", "a fetch with a lock held",
                                      "a page dirtied under a shared lock", "an unpin of a locked page",
                                      "a lock of an unpinned page" };
        int r;
        for (r = 0; r < 5; r++)
            tap_ok(breaks(pg, &err, r), "KVS_DEBUG: %s aborts", what[r]);
        tap_ok(!breaks(pg, &err, 5), "KVS_DEBUG: two locks in chain order are allowed");
    }
#else
    tap_diag("content-lock rule checks need a KVS_DEBUG build (the asan and debug variants)");
#endif
    close(fd);
    unlink(path);
    pager_free(pg);
    tap_diag("pool: %d checks", tap_n);
    return tap_done();
}
