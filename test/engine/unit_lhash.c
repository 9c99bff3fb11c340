/*
 * unit_lhash.c - unit tests of linear hashing (lhash.c) below the public
 * API: growth by splits (buckets = 2^L + split), every key found, the
 * cursor's exactly-once promise while splits and deletes happen between
 * steps, replace moving records between pages and between inline and
 * external storage, long overflow chains (fill factor forced past 100%)
 * built and emptied back onto the free list, and check() catching a wrong
 * tag, a duplicate key, a leaked page and a count that does not add up;
 * the chain walk every operation shares reports a cycle or a page of the
 * wrong bucket the same way from each of them and leaves nothing pinned.
 *
 *   unit_lhash      growth to N = 50000 records, the cursor's walk with up
 *                   to 2N inserts between steps; KVS_TEST_QUICK=2
 *                   (valgrind): N = 12500
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lhash.h"
#include "dir.h"
#include "tap.h"
#include "test_pool.h"

static char path[128];
static kvs_err err;
static pager *pg;
static pool_file *p;
static lh *t;

/* The table's counters (gets, pages walked per get, splits). */
static lh_counters cnt(void)
{
    lh_counters c;
    lh_get_counters(t, &c);
    return c;
}
static void *mem;

static void setup(uint32_t frames)
{
    static uint8_t d[PG_SIZE], b[PG_SIZE];
    int fd;
    if (pg) {
        close(pager_fd(pg));
        pager_free(pg);
    }
    unlink(path);
    fd = open(path, O_RDWR | O_CREAT, 0600);
    memset(&err, 0, sizeof err);
    pg = pager_new(kvs_os_posix(), fd, 0, &err);
    memset(pager_hdr(pg), 0, sizeof *pager_hdr(pg));
    pager_hdr(pg)->fillfactor = 75;
    lh_format_new(pager_hdr(pg), d, b);
    pager_write(pg, 1, d);
    pager_write(pg, 2, b);
    pager_store_header(pg);
    pool_file_free(p);
    p = test_pool(pg, &err, frames, POOL_LRU, &mem);
    lh_free(t);
    t = lh_new(pg, p, &err);
}

static void key_of(unsigned i, char *k) { sprintf(k, "k%09u", i); }

int main(void)
{
    char k[32];
    static char v[8192];
    kvs_slice s, ks;
    unsigned i, n = tap_quick() >= 2 ? 12500 : 50000, bad = 0;
    int rc = KVS_OK;

    snprintf(path, sizeof path, "/tmp/unit_lhash.%d", (int)getpid());
    memset(v, 'q', sizeof v);

    /* ---- growth */
    setup(32);
    for (i = 0; i < n && rc == KVS_OK; i++) {
        key_of(i, k);
        rc = lh_put(t, k, 10, v, i % 200, KVS_NOOVERWRITE);
    }
    tap_ok(rc == KVS_OK, "insert %u records through 32 frames", n);
    tap_ok(hdr_buckets(pager_hdr(pg)) == ((uint64_t)1 << pager_hdr(pg)->level) + pager_hdr(pg)->split && cnt().splits + 1 == hdr_buckets(pager_hdr(pg)),
           "buckets = 2^%u + %u = splits + 1", (unsigned)pager_hdr(pg)->level, (unsigned)pager_hdr(pg)->split);
    tap_ok((double)pager_hdr(pg)->data_bytes / (hdr_buckets(pager_hdr(pg)) * PG_USABLE) <= 0.75,
           "load factor stays at or below the fill factor");
    for (i = 0; i < n; i++) {
        key_of(i, k);
        if (lh_get(t, k, 10, &s) != KVS_OK || s.len != i % 200)
            bad++;
    }
    tap_ok(bad == 0, "every key found with its value length");
    key_of(n, k);
    TAP_RC(lh_get(t, k, 10, &s), KVS_NOTFOUND);
    key_of(5, k);
    TAP_RC(lh_put(t, k, 10, v, 1, KVS_NOOVERWRITE), KVS_EXISTS);
    TAP_RC(lh_check(t), KVS_OK);
    tap_ok(pool_pinned(p) == 0, "no page left pinned by puts, gets, splits and check");

    /* ---- cursor exactly once while splitting and deleting */
    {
        const unsigned stable = n / 5 * 4;     /* ids below it are never deleted */
        unsigned char *seen = calloc(3 * (size_t)n, 1);
        lh_cursor *c;
        unsigned steps = 0, extra = n, deleted = 0, dup = 0, missing = 0;
        c = lh_cursor_new(t);
        while ((rc = lh_cursor_next(c, &ks, &s)) == KVS_OK) {
            unsigned id, j;
            char kk[32];
            memcpy(kk, ks.data, ks.len);
            kk[ks.len] = 0;
            id = (unsigned)atoi(kk + 1);
            if (seen[id]++)
                dup++;
            steps++;
            /* between steps: 5 inserts (splits) and delete one not-yet-seen odd record >= stable */
            for (j = 0; j < 5 && extra < 3 * n; j++) {
                key_of(extra++, kk);
                lh_put(t, kk, 10, v, 50, 0);
            }
            if (steps % 10 == 0) {
                unsigned d = stable + 1 + 2 * deleted;
                if (d < n) {
                    key_of(d, kk);
                    if (lh_delete(t, kk, 10) == KVS_OK)
                        deleted++;
                }
            }
        }
        for (i = 0; i < stable; i++)
            if (!seen[i])
                missing++;
        tap_ok(rc == KVS_NOTFOUND && dup == 0 && missing == 0,
               "cursor over %u steps with %u inserts and %u deletes between them: %u duplicates, %u of the "
               "%u stable records missed", steps, extra - n, deleted, dup, missing, stable);
        lh_cursor_free(c);
        free(seen);
    }
    TAP_RC(lh_check(t), KVS_OK);

    /* ---- replace across sizes */
    {
        static const size_t sizes[] = { 0, 10, 1000, 1090, 1200, 5000, 100000, 3, 4071 };
        size_t j;
        bad = 0;
        for (j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
            for (i = 0; i < 300; i += 7) {
                key_of(i, k);
                v[0] = (char)j;
                if (lh_put(t, k, 10, v, sizes[j] < sizeof v ? sizes[j] : sizeof v, 0) != KVS_OK)
                    bad++;
            }
            for (i = 0; i < 300; i += 7) {
                size_t want = sizes[j] < sizeof v ? sizes[j] : sizeof v;
                key_of(i, k);
                if (lh_get(t, k, 10, &s) != KVS_OK || s.len != want ||
                    (want && ((const char *)s.data)[0] != (char)j))
                    bad++;
            }
            if (lh_check(t) != KVS_OK) {
                tap_diag("check after size %zu: %s", sizes[j], err.msg);
                bad++;
            }
        }
        tap_ok(bad == 0, "replace through inline/external sizes, check clean after each");
    }

    /* ---- long overflow chain: fill factor forced far past 100% */
    setup(8);
    lh_set_fillfactor(t, 100000);                  /* never split: one bucket */
    rc = KVS_OK;
    for (i = 0; i < 400 && rc == KVS_OK; i++) {
        key_of(i, k);
        rc = lh_put(t, k, 10, v, 1000, 0);
    }
    tap_ok(rc == KVS_OK && hdr_buckets(pager_hdr(pg)) == 1 && pager_hdr(pg)->overflow_pages >= 99,
           "one bucket, %u overflow pages", (unsigned)pager_hdr(pg)->overflow_pages);
    TAP_RC(lh_check(t), KVS_OK);
    bad = 0;
    for (i = 0; i < 400; i++) {
        key_of(i, k);
        if (lh_get(t, k, 10, &s) != KVS_OK || s.len != 1000)
            bad++;
    }
    tap_ok(bad == 0, "all found along the chain (%.1f pages per get)",
           (double)cnt().get_chain_pages / (double)cnt().gets);
    {
        lh_cursor *c;
        unsigned cnt = 0;
        c = lh_cursor_new(t);
        while (lh_cursor_next(c, &ks, &s) == KVS_OK)
            cnt++;
        lh_cursor_free(c);
        tap_ok(cnt == 400, "cursor over the long chain sees 400");
    }
    {
        uint32_t ovfl = pager_hdr(pg)->overflow_pages;
        for (i = 0; i < 400; i++) {
            key_of(i, k);
            if (lh_delete(t, k, 10) != KVS_OK)
                bad++;
        }
        tap_ok(bad == 0 && pager_hdr(pg)->records == 0 && pager_hdr(pg)->data_bytes == 0, "all deleted");
        tap_ok(pager_hdr(pg)->overflow_pages == 0 && pager_hdr(pg)->free_count == ovfl,
               "%u emptied overflow pages went to the free list", (unsigned)ovfl);
        TAP_RC(lh_check(t), KVS_OK);
        for (i = 0; i < 400; i++) {
            key_of(i + 1000, k);
            lh_put(t, k, 10, v, 1000, 0);
        }
        tap_ok(pager_hdr(pg)->free_count == 0 && pager_hdr(pg)->overflow_pages == ovfl, "refilling reuses them");
        TAP_RC(lh_check(t), KVS_OK);
    }

    /* ---- deletes pull records up from overflow pages into the primary */
    setup(64);
    lh_set_fillfactor(t, 100);
    for (i = 0; i < 20000; i++) {
        key_of(i, k);
        lh_put(t, k, 10, v, 100, 0);
    }
    {
        uint32_t before = pager_hdr(pg)->overflow_pages;
        double ppg0, ppg1;
        lh_reset_counters(t);
        for (i = 0; i < 20000; i++) {
            key_of(i, k);
            lh_get(t, k, 10, &s);
        }
        ppg0 = (double)cnt().get_chain_pages / (double)cnt().gets;
        bad = 0;
        for (i = 0; i < 20000; i += 2) {
            key_of(i, k);
            if (lh_delete(t, k, 10) != KVS_OK)
                bad++;
        }
        lh_reset_counters(t);
        for (i = 1; i < 20000; i += 2) {
            key_of(i, k);
            if (lh_get(t, k, 10, &s) != KVS_OK)
                bad++;
        }
        ppg1 = (double)cnt().get_chain_pages / (double)cnt().gets;
        tap_ok(bad == 0 && pager_hdr(pg)->overflow_pages < before / 4,
               "deleting half: overflow pages %u -> %u, pages per get %.3f -> %.3f",
               (unsigned)before, (unsigned)pager_hdr(pg)->overflow_pages, ppg0, ppg1);
        TAP_RC(lh_check(t), KVS_OK);
    }

    /* ---- the one chain walk: a cycle or a wrong page is reported the same
     * way by every walk (get, put's locate, split's gather, the cursor's
     * collect, check), naming the page, and no walk leaves a page pinned */
    setup(64);
    rc = KVS_OK;
    for (i = 0; rc == KVS_OK && hdr_buckets(pager_hdr(pg)) < 2; i++) {
        key_of(i, k);
        rc = lh_put(t, k, 10, v, 1000, 0);
    }
    lh_set_fillfactor(t, 100000);                  /* no more splits: bucket 0 grows a chain */
    for (; rc == KVS_OK && i < 100; i++) {
        key_of(i, k);
        rc = lh_put(t, k, 10, v, 1000, 0);
    }
    tap_ok(rc == KVS_OK && pager_hdr(pg)->level == 1 && pager_hdr(pg)->split == 0 && pool_pinned(p) == 0,
           "two buckets, %u overflow pages, nothing pinned after the puts", (unsigned)pager_hdr(pg)->overflow_pages);
    {
        uint32_t prim, ov, fi, in0 = 0, in1 = 0, aux;
        uint8_t *page;
        lh_cursor *c;
        char k0[32], k1[32];
        for (i = 1000; !in0 || !in1; i++) {     /* absent keys of bucket 0 and of bucket 1 */
            key_of(i, k);
            if (((uint32_t)lh_hash(t, k, 10) & 1) == 0 && !in0) {
                strcpy(k0, k);
                in0 = 1;
            } else if (((uint32_t)lh_hash(t, k, 10) & 1) == 1 && !in1) {
                strcpy(k1, k);
                in1 = 1;
            }
        }
        dir_lookup(p, 0, &prim);
        page = test_page_edit(p, prim, &fi);
        ov = rd32(page + PG_NEXT);
        test_page_done(p, fi, 0);
        tap_ok(ov != NO_PAGE, "bucket 0 has an overflow page (%u)", (unsigned)ov);
        /* the test keeps this page pinned (not locked) through the calls */
        page = test_page_edit(p, ov, &fi);
        wr32(page + PG_NEXT, ov);               /* the overflow page links to itself */
        test_page_done(p, fi, 1);
        TAP_RC(lh_get(t, k0, 10, &s), KVS_ECORRUPT);
        tap_ok(err.page == ov && strstr(err.msg, "cycle") && pool_pinned(p) == 1,
               "get: %s", err.msg);
        TAP_RC(lh_put(t, k0, 10, v, 10, 0), KVS_ECORRUPT);
        tap_ok(err.page == ov && strstr(err.msg, "cycle") && pool_pinned(p) == 1,
               "put (locate): %s", err.msg);
        lh_set_fillfactor(t, 1);                       /* the next insert splits bucket 0 */
        TAP_RC(lh_put(t, k1, 10, v, 10, 0), KVS_ECORRUPT);
        tap_ok(err.page == ov && strstr(err.msg, "cycle") && pool_pinned(p) == 1,
               "split (gather): %s", err.msg);
        lh_set_fillfactor(t, 100000);
        c = lh_cursor_new(t);
        TAP_RC(lh_cursor_next(c, &ks, &s), KVS_ECORRUPT);
        tap_ok(err.page == ov && strstr(err.msg, "cycle") && pool_pinned(p) == 1,
               "cursor (collect): %s", err.msg);
        lh_cursor_free(c);
        TAP_RC(lh_check(t), KVS_ECORRUPT);
        tap_ok(err.page == ov && strstr(err.msg, "twice") && pool_pinned(p) == 1,
               "check: %s", err.msg);
        /* the same page of another bucket: met by bucket 0's walk as the wrong page */
        pool_lock(p, fi, POOL_EXCLUSIVE);
        wr32(page + PG_NEXT, NO_PAGE);
        aux = rd32(page + PG_AUX);
        wr32(page + PG_AUX, 1);
        test_page_done(p, fi, 1);
        TAP_RC(lh_get(t, k0, 10, &s), KVS_ECORRUPT);
        tap_ok(err.page == ov && strstr(err.msg, "overflow page of bucket 0") && pool_pinned(p) == 1,
               "wrong bucket: %s", err.msg);
        TAP_RC(lh_check(t), KVS_ECORRUPT);
        tap_ok(err.page == ov && strstr(err.msg, "overflow page of bucket 0") && pool_pinned(p) == 1,
               "check, wrong bucket: %s", err.msg);
        pool_lock(p, fi, POOL_EXCLUSIVE);
        wr32(page + PG_AUX, aux);
        test_page_done(p, fi, 0);
    }

    /* ---- check catches damage (made in memory, through the pool) */
    setup(64);
    for (i = 0; i < 2000; i++) {
        key_of(i, k);
        lh_put(t, k, 10, v, 20, 0);
    }
    TAP_RC(lh_check(t), KVS_OK);
    {
        uint32_t pgno, fi, tag;
        uint8_t *page;
        dir_lookup(p, 1, &pgno);
        page = test_page_edit(p, pgno, &fi);
        tag = sp_tag(page, 0);
        wr32(page + PG_HDR + 4, tag ^ 0x100000);
        test_page_done(p, fi, 1);
        TAP_RC(lh_check(t), KVS_ECORRUPT);
        tap_ok(err.page == pgno && strstr(err.msg, "hash tag") != NULL, "wrong tag: %s", err.msg);
        pool_lock(p, fi, POOL_EXCLUSIVE);
        wr32(page + PG_HDR + 4, tag);
        test_page_done(p, fi, 1);
        TAP_RC(lh_check(t), KVS_OK);
        /* duplicate: copy record 0 again into the same page */
        {
            uint32_t len = sp_len(page, 0), off = sp_off(page, 0);
            uint8_t rec[64];
            memcpy(rec, page + off, len);
            pool_lock(p, fi, POOL_EXCLUSIVE);
            memcpy(sp_reserve(page, tag, len), rec, len);
            test_page_done(p, fi, 1);
            pager_hdr(pg)->records++;
            pager_hdr(pg)->data_bytes += len + SLOT_SIZE;
            TAP_RC(lh_check(t), KVS_ECORRUPT);
            tap_ok(strstr(err.msg, "twice") != NULL, "duplicate key: %s", err.msg);
            pool_lock(p, fi, POOL_EXCLUSIVE);
            sp_delete(page, sp_nslots(page) - 1);
            test_page_done(p, fi, 0);
            pager_hdr(pg)->records--;
            pager_hdr(pg)->data_bytes -= len + SLOT_SIZE;
        }
        TAP_RC(lh_check(t), KVS_OK);
        pager_hdr(pg)->records++;
        TAP_RC(lh_check(t), KVS_ECORRUPT);
        tap_ok(strstr(err.msg, "header counts") != NULL, "count mismatch: %s", err.msg);
        pager_hdr(pg)->records--;
        /* a page in no chain */
        {
            uint32_t np;
            pool_alloc(p, KVS_PAGE_OVERFLOW, &np, &fi, &page);
            sp_format(page, KVS_PAGE_OVERFLOW, 0);
            pool_release(p, fi);
            TAP_RC(lh_check(t), KVS_ECORRUPT);
            tap_ok(err.page == np && strstr(err.msg, "no chain") != NULL, "leaked page: %s", err.msg);
        }
    }
    close(pager_fd(pg));
    unlink(path);
    lh_free(t);
    pool_file_free(p);
    free(mem);
    pager_free(pg);
    tap_diag("lhash: %d checks", tap_n);
    return tap_done();
}
