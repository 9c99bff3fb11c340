/*
 * unit_dir.c - unit tests of the page directory (dir.c): 1.1M buckets set
 * and looked up through a 64-frame pool (the tree grows to height 3, dirty
 * directory pages are evicted and re-read), the integrity walk visits every
 * directory page once and catches an entry for a bucket that does not exist.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dir.h"
#include "tap.h"
#include "test_pool.h"

static uint32_t visited;
static int count(uint32_t pgno, int type, void *arg)
{
    (void)pgno;
    (void)arg;
    if (type == KVS_PAGE_DIR)
        visited++;
    return KVS_OK;
}

int main(void)
{
    static uint8_t page[PG_SIZE];
    const uint64_t N = 1100000;
    char path[128];
    kvs_err err;
    pager *pg;
    pool_file *p;
    pool_counters pc;
    void *mem = NULL;
    uint64_t b, bad = 0;
    uint32_t pgno;
    int fd, rc = KVS_OK;

    memset(&err, 0, sizeof err);
    snprintf(path, sizeof path, "/tmp/unit_dir.%d", (int)getpid());
    unlink(path);
    fd = open(path, O_RDWR | O_CREAT, 0600);
    pg = pager_new(kvs_os_posix(), fd, 0, &err);
    memset(pager_hdr(pg), 0, sizeof *pager_hdr(pg));
    /* pretend the file has 2^21 pages (sparse) so bucket pages b+2 exist */
    pager_hdr(pg)->npages = 1u << 21;
    pager_hdr(pg)->dir_root = 1;
    pager_hdr(pg)->dir_depth = 1;
    pager_hdr(pg)->dir_pages = 1;
    dir_format(page, 0);
    pager_write(pg, 1, page);
    p = test_pool(pg, &err, 64, POOL_LRU, &mem);

    tap_ok(DIR_FANOUT == 1018, "1018 entries per directory page");
    for (b = 0; b < N && rc == KVS_OK; b++)
        rc = dir_set(p, b, (uint32_t)(b + 2));
    tap_ok(rc == KVS_OK, "set %llu buckets", (unsigned long long)N);
    tap_ok(pager_hdr(pg)->dir_depth == 3, "tree height grew to 3 (depth %u)", (unsigned)pager_hdr(pg)->dir_depth);
    pool_get_counters(p, &pc);
    tap_ok(pc.evictions > 0 && pc.writes > 0, "dirty directory pages were evicted (%llu writes)",
           (unsigned long long)pc.writes);
    for (b = 0; b < N; b++)
        if (dir_lookup(p, b, &pgno) != KVS_OK || pgno != b + 2)
            bad++;
    tap_ok(bad == 0, "every bucket maps to its page");
    TAP_RC(dir_lookup(p, N * 2000, &pgno), KVS_ECORRUPT);
    visited = 0;
    TAP_RC(dir_walk(p, N, count, NULL), KVS_OK);
    tap_ok(visited == pager_hdr(pg)->dir_pages, "walk visits %u directory pages, header counts %u",
           (unsigned)visited, (unsigned)pager_hdr(pg)->dir_pages);
    /* 1100000 / 1018 = 1081 leaves, 2 height-1 pages, 1 root */
    tap_ok(pager_hdr(pg)->dir_pages == 1081 + 2 + 1, "1084 directory pages");
    /* an entry for a bucket beyond the count is corruption */
    TAP_RC(dir_walk(p, N - 1, count, NULL), KVS_ECORRUPT);
    tap_ok(strstr(err.msg, "does not exist") != NULL, "names the stray entry: %s", err.msg);
    /* a directory pointer to a non-directory page */
    TAP_RC(pool_flush(p), KVS_OK);
    pool_drop(p);
    pager_hdr(pg)->dir_root = 5;                 /* a page that holds zeros */
    memset(page, 0, PG_SIZE);
    page[PG_TYPE] = KVS_PAGE_FREE;
    pager_write(pg, 5, page);
    TAP_RC(dir_lookup(p, 3, &pgno), KVS_ECORRUPT);
    tap_ok(err.page == 5, "error names page 5: %s", err.msg);
    close(fd);
    unlink(path);
    pool_file_free(p);
    free(mem);
    pager_free(pg);
    tap_diag("dir: %d checks", tap_n);
    return tap_done();
}
