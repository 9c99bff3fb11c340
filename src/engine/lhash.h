/*
 * lhash.h - linear hashing over the pool: buckets found through the page
 * directory, overflow chains of slotted pages, controlled splitting (one
 * bucket at a time when the load passes the fill factor), the cursor in
 * bit-reversed hash order, and the full integrity check.
 */
#ifndef KVS_LHASH_H
#define KVS_LHASH_H

#include "pool.h"
#include "page.h"

/* One open table's linear-hashing state (opaque: lhash.c). */
typedef struct lh lh;
typedef struct lh_cursor lh_cursor;

/* A record's place in the scan order, or a collected record. */
typedef struct lh_ent {
    uint32_t rev;             /* bit-reversed hash tag (or the tag itself in check) */
    uint32_t off;             /* record bytes in a scratch buffer */
    uint32_t len;
    uint16_t klen;
    uint16_t koff;            /* key offset within the record */
} lh_ent;

/* The table over pg's header and pool's pages (NULL: out of memory). */
lh  *lh_new(pager *pg, pool_file *pool, kvs_err *err);
void lh_free(lh *t);

/* What the section layer (kvs.c) reads and sets. */
uint32_t lh_fillfactor(const lh *t);
void     lh_set_fillfactor(lh *t, uint32_t percent);
void     lh_set_stamp(lh *t, uint64_t stamp);      /* stamp new records get, 0 = none */
int      lh_modified(const lh *t);                 /* changed something this unit */
void     lh_set_modified(lh *t, int modified);
void     lh_forget(lh *t);                         /* the cache was dropped: cursors' copies are stale */
typedef struct lh_counters {
    uint64_t gets, get_chain_pages, splits;
} lh_counters;
void     lh_get_counters(const lh *t, lh_counters *c);
void     lh_reset_counters(lh *t);
pager     *lh_pager(const lh *t);
pool_file *lh_pool(const lh *t);
kvs_err   *lh_err(const lh *t);

uint64_t lh_hash(const lh *t, const void *key, size_t klen);
uint32_t lh_key_order(const lh *t, const void *key, size_t klen);   /* kvs_key_order */
int  lh_get(lh *t, const void *key, size_t klen, kvs_slice *val);
/* lh_get that also gives the record's stamp (0 = written without one) */
int  lh_get_stamped(lh *t, const void *key, size_t klen, kvs_slice *val, uint64_t *stamp);
int  lh_put(lh *t, const void *key, size_t klen, const void *val, size_t vlen, int flags);
int  lh_delete(lh *t, const void *key, size_t klen);
/* kvs_prefetch: the key is put, got or deleted soon (three prefetch steps
 * over the next hints; see lhash.c). */
void lh_prefetch(lh *t, const void *key, size_t klen);
int  lh_check(lh *t);
/* The most buckets a table grows to (splits stop there). */
#define LH_MAX_BUCKETS 0xfffffff0u
/* The bucket count that holds data_bytes at the fill factor: the smallest
 * one the split rule would not split further, at least 1, at most
 * LH_MAX_BUCKETS. */
uint64_t lh_buckets_for(uint32_t fillfactor, uint64_t data_bytes);
/* Grows the table to nb buckets (kvs_reserve; compaction's presizing): a
 * no-op when it has that many.  A table with no record gets the new
 * buckets' empty pages only; one with records is split bucket by bucket,
 * as the puts that fill it would split it. */
int  lh_reserve(lh *t, uint64_t nb);

/* Formats a fresh table (header fields, dir page 1, bucket page 2) into
 * the pages given; used at create and truncate. */
void lh_format_new(kvs_hdr *h, uint8_t *dirpage, uint8_t *bucketpage);
/* The bucket whose range in scan order (bit-reversed tags) holds rev; *end
 * gets the first rev after that range (2^32 after the last).  Walking rev
 * from 0 through the ends visits every bucket once, in scan order. */
uint32_t lh_bucket_at(const kvs_hdr *h, uint32_t rev, uint64_t *end);

lh_cursor *lh_cursor_new(lh *t);              /* NULL: out of memory */
void lh_cursor_free(lh_cursor *c);
void lh_cursor_skip_stamp(lh_cursor *c, uint64_t stamp);   /* records with it are not returned */
/* restart over the revs in [lo, hi) only (hi <= 2^32) */
void lh_cursor_set_range(lh_cursor *c, uint64_t lo, uint64_t hi);
int  lh_cursor_next(lh_cursor *c, kvs_slice *key, kvs_slice *val);
/* The next record if the current bucket's sorted copy still holds it and it
 * needs no page read (inline value): KVS_OK, else KVS_NOTFOUND (call
 * lh_cursor_next inside a section). */
int  lh_cursor_next_cached(lh_cursor *c, kvs_slice *key, kvs_slice *val);
/* Passes over what lh_cursor_next would return up to the end of the
 * current bucket's interval, reading the bucket's pages without copying a
 * record, and sets *n to how many (KVS_NOTFOUND at the end). */
int  lh_cursor_count(lh_cursor *c, uint64_t *n);

#endif
