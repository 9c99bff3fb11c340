/*
 * dir.c - the page directory (see dir.h).  A directory page's AUX field is
 * its height above the leaves (0 = leaf); entry i of a page at height k
 * covers buckets [base + i*F^k, base + (i+1)*F^k).  The root, its height and
 * the count of directory pages live in the file header.
 *
 * Content locks: one directory page at a time, shared to read an entry and
 * exclusive to set one; a child page is allocated with no lock held and
 * filled before the entry that points to it is written (README, lock
 * order).
 */
#include "dir.h"

/* DIR_FANOUT^k for the tree's heights 0..4 (depth is at most 4) */
static inline uint64_t fpow(uint32_t k)
{
    static const uint64_t pw[6] = {
        1, DIR_FANOUT, (uint64_t)DIR_FANOUT * DIR_FANOUT,
        (uint64_t)DIR_FANOUT * DIR_FANOUT * DIR_FANOUT,
        (uint64_t)DIR_FANOUT * DIR_FANOUT * DIR_FANOUT * DIR_FANOUT,
        (uint64_t)DIR_FANOUT * DIR_FANOUT * DIR_FANOUT * DIR_FANOUT * DIR_FANOUT
    };
    return k < 6 ? pw[k] : UINT64_MAX;
}

void dir_format(uint8_t *page, uint32_t height)
{
    memset(page, 0, PG_SIZE);
    page[PG_TYPE] = KVS_PAGE_DIR;
    wr32(page + PG_AUX, height);
}

static int bad_dir(pool_file *p, uint32_t pgno, const uint8_t *pg, uint32_t height)
{
    return kvs_seterr(pool_file_err(p), KVS_ECORRUPT, pgno,
                      "page %u: expected a directory page of height %u, found type %u height %u",
                      (unsigned)pgno, (unsigned)height, pg[PG_TYPE], (unsigned)rd32(pg + PG_AUX));
}

/* Reads the entry for `bucket` of directory page pgno (height k): the page
 * comes back pinned, not locked (*fi, *pg), with the entry's index and
 * value; its shape is checked under the shared lock. */
static inline int read_entry(pool_file *p, uint32_t pgno, uint32_t k, uint64_t bucket, uint32_t *fi,
                      uint8_t **pg, uint32_t *idx, uint32_t *next)
{
    int rc = pool_fetch(p, pgno, 0, fi, pg);
    if (rc)
        return rc;
    pool_lock(p, *fi, POOL_SHARED);
    if ((*pg)[PG_TYPE] != KVS_PAGE_DIR || rd32(*pg + PG_AUX) != k) {
        rc = bad_dir(p, pgno, *pg, k);
        pool_release(p, *fi);
        return rc;
    }
    *idx = (uint32_t)((bucket / fpow(k)) % DIR_FANOUT);
    *next = rd32(*pg + PG_HDR + 4 * *idx);
    pool_unlock(p, *fi);
    return KVS_OK;
}

int dir_lookup(pool_file *p, uint64_t bucket, uint32_t *out)
{
    const kvs_hdr *h = pool_file_hdr(p);
    uint32_t pgno = hdr_dir_root(h), k = hdr_dir_depth(h), fi;
    int rc;
    if (bucket >= fpow(k))
        return kvs_seterr(pool_file_err(p), KVS_ECORRUPT, 0,
                          "bucket %llu beyond the directory (depth %u)",
                          (unsigned long long)bucket, (unsigned)k);
    while (k-- > 0) {
        uint8_t *pg;
        uint32_t idx = 0, next = 0;
        rc = read_entry(p, pgno, k, bucket, &fi, &pg, &idx, &next);
        if (rc)
            return rc;
        pool_unpin(p, fi);
        if (next == NO_PAGE || next >= hdr_npages(h))
            return kvs_seterr(pool_file_err(p), KVS_ECORRUPT, pgno,
                              "page %u: directory entry %u for bucket %llu is %u (file has %u pages)",
                              (unsigned)pgno, (unsigned)idx, (unsigned long long)bucket,
                              (unsigned)next, (unsigned)hdr_npages(h));
        pgno = next;
    }
    *out = pgno;
    return KVS_OK;
}

/* Sets entry idx of the pinned directory page fi to `target` (exclusive
 * lock taken and dropped here); counts it if it was empty. */
static void set_entry(pool_file *p, uint32_t fi, uint8_t *pg, uint32_t idx, uint32_t target)
{
    pool_lock(p, fi, POOL_EXCLUSIVE);
    if (rd32(pg + PG_HDR + 4 * idx) == NO_PAGE)
        wr16(pg + PG_NSLOTS, (uint16_t)(rd16(pg + PG_NSLOTS) + 1));
    wr32(pg + PG_HDR + 4 * idx, target);
    pool_dirty(p, fi);
    pool_unlock(p, fi);
}

int dir_set(pool_file *p, uint64_t bucket, uint32_t target)
{
    kvs_hdr *h = pool_file_hdr(p);
    uint32_t pgno, fi, k;
    int rc;
    /* grow the tree upward until it covers the bucket */
    while (bucket >= fpow(hdr_dir_depth(h))) {
        uint32_t root;
        uint8_t *pg;
        if (hdr_dir_depth(h) >= 4)
            return kvs_seterr(pool_file_err(p), KVS_EINVAL, 0, "directory full");
        rc = pool_alloc(p, KVS_PAGE_DIR, &root, &fi, &pg);
        if (rc)
            return rc;
        wr32(pg + PG_AUX, hdr_dir_depth(h));
        wr32(pg + PG_HDR, hdr_dir_root(h));
        wr16(pg + PG_NSLOTS, 1);
        pool_release(p, fi);
        hdr_dir_new_root(h, root);
        hdr_count_page(h, KVS_PAGE_DIR, 1);
    }
    pgno = hdr_dir_root(h);
    k = hdr_dir_depth(h);
    while (k-- > 0) {
        uint8_t *pg;
        uint32_t idx = 0, next = 0;
        rc = read_entry(p, pgno, k, bucket, &fi, &pg, &idx, &next);
        if (rc)
            return rc;
        if (k == 0) {
            set_entry(p, fi, pg, idx, target);
            pool_unpin(p, fi);
            return KVS_OK;
        }
        if (next == NO_PAGE) {
            uint32_t cfi;
            uint8_t *cpg;
            /* new child first (no lock held while allocating), then the
             * entry that points to it */
            rc = pool_alloc(p, KVS_PAGE_DIR, &next, &cfi, &cpg);
            if (rc) {
                pool_unpin(p, fi);
                return rc;
            }
            wr32(cpg + PG_AUX, k - 1);
            pool_release(p, cfi);
            hdr_count_page(h, KVS_PAGE_DIR, 1);
            set_entry(p, fi, pg, idx, next);
        } else if (next >= hdr_npages(h)) {
            pool_unpin(p, fi);
            return kvs_seterr(pool_file_err(p), KVS_ECORRUPT, pgno,
                              "page %u: directory entry %u is %u (file has %u pages)",
                              (unsigned)pgno, (unsigned)idx, (unsigned)next, (unsigned)hdr_npages(h));
        }
        pool_unpin(p, fi);
        pgno = next;
    }
    return KVS_ECORRUPT;   /* not reached */
}

static int walk(pool_file *p, uint32_t pgno, uint32_t height, uint64_t base, uint64_t nbuckets,
                int (*visit)(uint32_t, int, void *), void *arg)
{
    uint8_t copy[PG_SIZE], *pg;
    uint32_t fi, i, used = 0;
    uint64_t span = fpow(height);
    int rc = visit(pgno, KVS_PAGE_DIR, arg);
    if (rc)
        return rc;
    rc = pool_fetch(p, pgno, 0, &fi, &pg);
    if (rc)
        return rc;
    /* a copy: the walk below fetches the children */
    pool_lock(p, fi, POOL_SHARED);
    memcpy(copy, pg, PG_SIZE);
    pool_release(p, fi);
    if (copy[PG_TYPE] != KVS_PAGE_DIR || rd32(copy + PG_AUX) != height)
        return bad_dir(p, pgno, copy, height);
    for (i = 0; i < DIR_FANOUT; i++) {
        uint32_t e = rd32(copy + PG_HDR + 4 * i);
        uint64_t start = base + (uint64_t)i * span;
        if (e != NO_PAGE)
            used++;
        if (start < nbuckets) {
            if (e == NO_PAGE || e >= hdr_npages(pool_file_hdr(p)))
                return kvs_seterr(pool_file_err(p), KVS_ECORRUPT, pgno,
                                  "page %u: directory entry %u is %u (bucket %llu exists; file has %u pages)",
                                  (unsigned)pgno, (unsigned)i, (unsigned)e,
                                  (unsigned long long)start, (unsigned)hdr_npages(pool_file_hdr(p)));
            if (height > 0) {
                rc = walk(p, e, height - 1, start, nbuckets, visit, arg);
                if (rc)
                    return rc;
            }
        } else if (e != NO_PAGE) {
            return kvs_seterr(pool_file_err(p), KVS_ECORRUPT, pgno,
                              "page %u: directory entry %u is %u but bucket %llu does not exist",
                              (unsigned)pgno, (unsigned)i, (unsigned)e, (unsigned long long)start);
        }
    }
    if (used != rd16(copy + PG_NSLOTS))
        return kvs_seterr(pool_file_err(p), KVS_ECORRUPT, pgno,
                          "page %u: directory page counts %u entries, holds %u",
                          (unsigned)pgno, (unsigned)rd16(copy + PG_NSLOTS), (unsigned)used);
    return KVS_OK;
}

int dir_walk(pool_file *p, uint64_t nbuckets, int (*visit)(uint32_t, int, void *), void *arg)
{
    const kvs_hdr *h = pool_file_hdr(p);
    if (nbuckets > fpow(hdr_dir_depth(h)))
        return kvs_seterr(pool_file_err(p), KVS_ECORRUPT, 0,
                          "page 0: directory depth %u cannot hold %llu buckets",
                          (unsigned)hdr_dir_depth(h), (unsigned long long)nbuckets);
    return walk(p, hdr_dir_root(h), hdr_dir_depth(h) - 1, 0, nbuckets, visit, arg);
}
