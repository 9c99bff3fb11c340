/*
 * vchain.h - value chains: a value too large to keep inline in its record
 * lives in a linked chain of value pages (4072 data bytes each, the last one
 * partly used); the record keeps the first page number and the full length.
 */
#ifndef KVS_VCHAIN_H
#define KVS_VCHAIN_H

#include "pool.h"

#define VCHAIN_DATA  PG_USABLE   /* data bytes per value page */

static inline uint64_t vchain_pages(uint64_t len)
{
    return (len + VCHAIN_DATA - 1) / VCHAIN_DATA;
}
/* Writes len > 0 bytes into newly allocated pages; *first gets the head. */
int vchain_write(pool_file *p, const void *data, size_t len, uint32_t *first);
/* Copies the whole value into dst (len bytes), checking the chain's shape. */
int vchain_read(pool_file *p, uint32_t first, size_t len, uint8_t *dst);
/* Puts every page of the chain on the free list. */
int vchain_free(pool_file *p, uint32_t first, size_t len);
/* Integrity walk: visit() for each page, shape checked as in read. */
int vchain_walk(pool_file *p, uint32_t first, size_t len,
                int (*visit)(uint32_t pgno, int type, void *arg), void *arg);

#endif
