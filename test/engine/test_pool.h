/*
 * test_pool.h - a buffer pool for the layer tests (dir, vchain, lhash,
 * pool): one block of `frames` frames with one file slot, bound to a
 * made-up identity, and the pin + exclusive-lock bracket a test uses to
 * change a cached page in memory (builds with KVS_DEBUG check the lock
 * rules of pool.h in the tests too).
 */
#ifndef KVS_TEST_POOL_H
#define KVS_TEST_POOL_H

#include <stdlib.h>
#include "pool.h"

/* Frees *mem (if any) and gives a new pool attachment over a new block. */
static inline pool_file *test_pool(pager *pg, kvs_err *err, uint32_t frames, int policy, void **mem)
{
    static const pool_ident id = { 1, 0, 0 };
    pool_file *pf;
    free(*mem);
    *mem = NULL;
    if (posix_memalign(mem, PG_SIZE, pool_mem_size(frames, 1)) != 0)
        abort();
    pf = pool_file_new(pool_format(*mem, frames, 1, policy), pg, err, NULL, NULL);
    if (!pf || pool_file_bind(pf, &id) != KVS_OK)
        abort();
    return pf;
}

/* Page pgno pinned and exclusively locked (NULL if the fetch failed). */
static inline uint8_t *test_page_edit(pool_file *pf, uint32_t pgno, uint32_t *fi)
{
    uint8_t *page;
    if (pool_fetch(pf, pgno, 0, fi, &page) != KVS_OK)
        return NULL;
    pool_lock(pf, *fi, POOL_EXCLUSIVE);
    return page;
}

/* Ends test_page_edit: dirty, unlocked; the pin stays if keep_pin. */
static inline void test_page_done(pool_file *pf, uint32_t fi, int keep_pin)
{
    pool_dirty(pf, fi);
    pool_unlock(pf, fi);
    if (!keep_pin)
        pool_unpin(pf, fi);
}

#endif
