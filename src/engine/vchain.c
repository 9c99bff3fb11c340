/*
 * vchain.c - value chains (see vchain.h).  Each value page's AUX field holds
 * the bytes it carries: VCHAIN_DATA for all but the last page.  Reads check
 * that shape so a damaged chain is reported, never followed off its end.
 */
#include "vchain.h"

int vchain_write(pool_file *p, const void *data, size_t len, uint32_t *first)
{
    const uint8_t *src = data;
    uint32_t pgno, fi;
    uint8_t *pg;
    int rc = pool_alloc(p, KVS_PAGE_VALUE, &pgno, &fi, &pg);
    if (rc)
        return rc;
    *first = pgno;
    hdr_count_page(pool_file_hdr(p), KVS_PAGE_VALUE, 1);
    for (;;) {
        size_t n = len < VCHAIN_DATA ? len : VCHAIN_DATA;
        uint32_t next, nfi;
        uint8_t *npg;
        /* page fi is pinned and exclusively locked here */
        memcpy(pg + PG_HDR, src, n);
        wr32(pg + PG_AUX, (uint32_t)n);
        src += n;
        len -= n;
        pool_unlock(p, fi);
        if (len == 0) {
            pool_unpin(p, fi);
            return KVS_OK;
        }
        /* the next page is allocated with no lock held, filled, and linked
         * (this page then the next, chain order) */
        rc = pool_alloc(p, KVS_PAGE_VALUE, &next, &nfi, &npg);
        if (rc) {
            pool_unpin(p, fi);
            return rc;
        }
        pool_unlock(p, nfi);
        hdr_count_page(pool_file_hdr(p), KVS_PAGE_VALUE, 1);
        pool_lock(p, fi, POOL_EXCLUSIVE);
        wr32(pg + PG_NEXT, next);
        pool_dirty(p, fi);
        pool_lock(p, nfi, POOL_EXCLUSIVE);
        pool_release(p, fi);
        fi = nfi;
        pg = npg;
    }
}

/* Steps through a chain: fetches pgno, checks it is a value page of the
 * expected size given remaining bytes; copies its data into dst (if not
 * NULL) and gives its next link and byte count. */
static int step(pool_file *p, uint32_t pgno, size_t remaining, uint8_t *dst, uint32_t *next_out,
                uint32_t *used)
{
    uint32_t fi, u, next;
    uint8_t *pg;
    int rc = pool_fetch(p, pgno, 0, &fi, &pg);
    if (rc)
        return rc;
    pool_lock(p, fi, POOL_SHARED);
    u = rd32(pg + PG_AUX);
    next = rd32(pg + PG_NEXT);
    if (pg[PG_TYPE] != KVS_PAGE_VALUE)
        rc = kvs_seterr(pool_file_err(p), KVS_ECORRUPT, pgno,
                        "page %u: expected a value page, found type %u", (unsigned)pgno, pg[PG_TYPE]);
    else if (u != (remaining < VCHAIN_DATA ? remaining : VCHAIN_DATA) ||
             (remaining <= VCHAIN_DATA) != (next == NO_PAGE))
        rc = kvs_seterr(pool_file_err(p), KVS_ECORRUPT, pgno,
                        "page %u: value page holds %u bytes, next %u, with %zu bytes of the value left",
                        (unsigned)pgno, (unsigned)u, (unsigned)next, remaining);
    else if (dst)
        memcpy(dst, pg + PG_HDR, u);
    pool_release(p, fi);
    *next_out = next;
    *used = u;
    return rc;
}

int vchain_read(pool_file *p, uint32_t pgno, size_t len, uint8_t *dst)
{
    while (len > 0) {
        uint32_t used, next;
        int rc = step(p, pgno, len, dst, &next, &used);
        if (rc)
            return rc;
        dst += used;
        len -= used;
        pgno = next;
    }
    return KVS_OK;
}

int vchain_free(pool_file *p, uint32_t pgno, size_t len)
{
    while (len > 0) {
        uint32_t used, next;
        int rc = step(p, pgno, len, NULL, &next, &used);
        if (rc)
            return rc;
        rc = pool_free_page(p, pgno);
        if (rc)
            return rc;
        hdr_count_page(pool_file_hdr(p), KVS_PAGE_VALUE, -1);
        len -= used;
        pgno = next;
    }
    return KVS_OK;
}

int vchain_walk(pool_file *p, uint32_t pgno, size_t len,
                int (*visit)(uint32_t, int, void *), void *arg)
{
    while (len > 0) {
        uint32_t used, next;
        int rc = visit(pgno, KVS_PAGE_VALUE, arg);
        if (rc)
            return rc;
        rc = step(p, pgno, len, NULL, &next, &used);
        if (rc)
            return rc;
        len -= used;
        pgno = next;
    }
    return KVS_OK;
}
