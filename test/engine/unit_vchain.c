/*
 * unit_vchain.c - unit tests of value chains (vchain.c) over a small pool:
 * lengths around page boundaries and 64 MiB round trip, the page count per
 * length, freeing puts every page on the free list and the next chain reuses
 * them (the file does not grow), and a damaged chain is reported.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "vchain.h"
#include "tap.h"
#include "test_pool.h"

static uint32_t walked;
static int count(uint32_t pgno, int type, void *arg)
{
    (void)pgno;
    (void)arg;
    if (type == KVS_PAGE_VALUE)
        walked++;
    return KVS_OK;
}

int main(void)
{
    static const size_t lens[] = { 1, 4071, 4072, 4073, 3 * 4072, 3 * 4072 + 1, 1000000 };
    const size_t big = (size_t)64 << 20;
    char path[128];
    kvs_err err;
    pager *pg;
    pool_file *p;
    void *mem = NULL;
    uint8_t *src, *dst;
    uint32_t first, firsts[7];
    size_t i, j;
    int fd, bad = 0;

    memset(&err, 0, sizeof err);
    snprintf(path, sizeof path, "/tmp/unit_vchain.%d", (int)getpid());
    unlink(path);
    fd = open(path, O_RDWR | O_CREAT, 0600);
    pg = pager_new(kvs_os_posix(), fd, 0, &err);
    memset(pager_hdr(pg), 0, sizeof *pager_hdr(pg));
    pager_hdr(pg)->npages = 1;
    p = test_pool(pg, &err, 16, POOL_LRU, &mem);
    src = malloc(big);
    dst = malloc(big);
    for (i = 0; i < big; i++)
        src[i] = (uint8_t)(i * 131 + (i >> 12));

    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint32_t before = pager_hdr(pg)->value_pages;
        if (vchain_write(p, src + i, lens[i], &firsts[i]) != KVS_OK)
            bad++;
        if (pager_hdr(pg)->value_pages - before != vchain_pages(lens[i]))
            bad++;
    }
    tap_ok(bad == 0, "chains written, page counts as vchain_pages() says");
    tap_ok(vchain_pages(4072) == 1 && vchain_pages(4073) == 2, "4072 bytes per page");
    bad = 0;
    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        memset(dst, 0, lens[i]);
        if (vchain_read(p, firsts[i], lens[i], dst) != KVS_OK || memcmp(dst, src + i, lens[i]) != 0)
            bad++;
        walked = 0;
        if (vchain_walk(p, firsts[i], lens[i], count, NULL) != KVS_OK || walked != vchain_pages(lens[i]))
            bad++;
    }
    tap_ok(bad == 0, "every chain reads back and walks its page count");
    /* wrong length = damaged chain */
    TAP_RC(vchain_read(p, firsts[3], 4072, dst), KVS_ECORRUPT);
    TAP_RC(vchain_read(p, firsts[2], 5000, dst), KVS_ECORRUPT);

    /* 64 MiB through a 16-frame pool */
    TAP_RC(vchain_write(p, src, big, &first), KVS_OK);
    TAP_RC(pool_flush(p), KVS_OK);
    pool_drop(p);
    memset(dst, 0, big);
    TAP_RC(vchain_read(p, first, big, dst), KVS_OK);
    tap_ok(memcmp(dst, src, big) == 0, "64 MiB value round trip (%u value pages)", (unsigned)pager_hdr(pg)->value_pages);
    {
        uint32_t npages = pager_hdr(pg)->npages, pages64 = (uint32_t)vchain_pages(big);
        TAP_RC(vchain_free(p, first, big), KVS_OK);
        tap_ok(pager_hdr(pg)->free_count == pages64, "freeing puts its %u pages on the free list", (unsigned)pages64);
        TAP_RC(vchain_write(p, dst, big, &first), KVS_OK);
        tap_ok(pager_hdr(pg)->npages == npages && pager_hdr(pg)->free_count == 0, "a new 64 MiB value reuses them: file did not grow");
        memset(dst, 0, big);
        TAP_RC(vchain_read(p, first, big, dst), KVS_OK);
        tap_ok(memcmp(dst, src, big) == 0, "and reads back");
    }
    /* a value page with the wrong type in the middle of a chain */
    {
        uint32_t fi, second;
        uint8_t *page = test_page_edit(p, firsts[6], &fi);
        tap_ok(page != NULL, "first page of chain 6 fetched");
        second = rd32(page + PG_NEXT);
        test_page_done(p, fi, 0);
        page = test_page_edit(p, second, &fi);
        tap_ok(page != NULL, "second page fetched");
        page[PG_TYPE] = KVS_PAGE_OVERFLOW;
        test_page_done(p, fi, 0);
        TAP_RC(vchain_read(p, firsts[6], lens[6], dst), KVS_ECORRUPT);
        tap_ok(err.page == second, "error names page %u: %s", (unsigned)second, err.msg);
    }
    for (j = 0; j < 1; j++)
        close(fd);
    unlink(path);
    free(src);
    free(dst);
    pool_file_free(p);
    free(mem);
    pager_free(pg);
    tap_diag("vchain: %d checks", tap_n);
    return tap_done();
}
