/*
 * dir.h - the page directory: bucket number -> primary page number, a radix
 * tree of directory pages (1018 u32 entries each) whose height grows as
 * buckets are added, so there is no cap short of 2^32 buckets.
 */
#ifndef KVS_DIR_H
#define KVS_DIR_H

#include "pool.h"

#define DIR_FANOUT  ((uint32_t)(PG_USABLE / 4))   /* 1018 */

void dir_format(uint8_t *page, uint32_t height);     /* empty dir page image */
int  dir_lookup(pool_file *p, uint64_t bucket, uint32_t *pgno);
int  dir_set(pool_file *p, uint64_t bucket, uint32_t pgno);   /* allocates dir pages */
/* Integrity walk: calls visit() for every directory page and checks every
 * entry for buckets < nbuckets is set (< npages), every other entry is 0. */
int  dir_walk(pool_file *p, uint64_t nbuckets,
              int (*visit)(uint32_t pgno, int type, void *arg), void *arg);

#endif
