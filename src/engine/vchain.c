/*
 * vchain.c - value chains (see vchain.h).  Each value page's AUX field holds
 * the bytes it carries: VCHAIN_DATA for all but the last page.  Reads check
 * that shape so a damaged chain is reported, never followed off its end.
 */
#include "vchain.h"

int vchain_write(pool *p, const void *data, size_t len, uint32_t *first)
{
    const uint8_t *src = data;
    uint32_t pgno, fi;
    int rc = pool_alloc(p, KVS_PAGE_VALUE, &pgno, &fi);
    if (rc)
        return rc;
    *first = pgno;
    hdr_count_page(pager_hdr(p->pg), KVS_PAGE_VALUE, 1);
    for (;;) {
        size_t n = len < VCHAIN_DATA ? len : VCHAIN_DATA;
        uint8_t *pg = pool_page(p, fi);
        uint32_t next, nfi;
        memcpy(pg + PG_HDR, src, n);
        wr32(pg + PG_AUX, (uint32_t)n);
        src += n;
        len -= n;
        if (len == 0) {
            pool_unpin(p, fi);
            return KVS_OK;
        }
        rc = pool_alloc(p, KVS_PAGE_VALUE, &next, &nfi);
        if (rc) {
            pool_unpin(p, fi);
            return rc;
        }
        hdr_count_page(pager_hdr(p->pg), KVS_PAGE_VALUE, 1);
        wr32(pool_page(p, fi) + PG_NEXT, next);
        pool_unpin(p, fi);
        fi = nfi;
    }
}

/* Steps through a chain: fetches pgno, checks it is a value page of the
 * expected size given remaining bytes; returns its page in *pg. */
static int step(pool *p, uint32_t pgno, size_t remaining, const uint8_t **pg_out, uint32_t *used)
{
    uint32_t fi, u, next;
    const uint8_t *pg;
    int rc = pool_fetch(p, pgno, 0, &fi);
    if (rc)
        return rc;
    pg = pool_page(p, fi);
    u = rd32(pg + PG_AUX);
    next = rd32(pg + PG_NEXT);
    if (pg[PG_TYPE] != KVS_PAGE_VALUE)
        return kvs_seterr(pager_err(p->pg), KVS_ECORRUPT, pgno,
                          "page %u: expected a value page, found type %u", (unsigned)pgno, pg[PG_TYPE]);
    if (u != (remaining < VCHAIN_DATA ? remaining : VCHAIN_DATA) ||
        (remaining <= VCHAIN_DATA) != (next == NO_PAGE))
        return kvs_seterr(pager_err(p->pg), KVS_ECORRUPT, pgno,
                          "page %u: value page holds %u bytes, next %u, with %zu bytes of the value left",
                          (unsigned)pgno, (unsigned)u, (unsigned)next, remaining);
    *pg_out = pg;
    *used = u;
    return KVS_OK;
}

int vchain_read(pool *p, uint32_t pgno, size_t len, uint8_t *dst)
{
    while (len > 0) {
        const uint8_t *pg;
        uint32_t used;
        int rc = step(p, pgno, len, &pg, &used);
        if (rc)
            return rc;
        memcpy(dst, pg + PG_HDR, used);
        dst += used;
        len -= used;
        pgno = rd32(pg + PG_NEXT);
    }
    return KVS_OK;
}

int vchain_free(pool *p, uint32_t pgno, size_t len)
{
    while (len > 0) {
        const uint8_t *pg;
        uint32_t used, next;
        int rc = step(p, pgno, len, &pg, &used);
        if (rc)
            return rc;
        next = rd32(pg + PG_NEXT);
        rc = pool_free_page(p, pgno);
        if (rc)
            return rc;
        hdr_count_page(pager_hdr(p->pg), KVS_PAGE_VALUE, -1);
        len -= used;
        pgno = next;
    }
    return KVS_OK;
}

int vchain_walk(pool *p, uint32_t pgno, size_t len,
                int (*visit)(uint32_t, int, void *), void *arg)
{
    while (len > 0) {
        const uint8_t *pg;
        uint32_t used;
        int rc = visit(pgno, KVS_PAGE_VALUE, arg);
        if (rc)
            return rc;
        rc = step(p, pgno, len, &pg, &used);
        if (rc)
            return rc;
        len -= used;
        pgno = rd32(pg + PG_NEXT);
    }
    return KVS_OK;
}
