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

typedef struct lh {
    pager    *pg;
    pool_file *pool;
    kvs_err  *err;
    uint32_t  fillfactor;     /* percent */
    uint64_t  stamp;          /* stamp put gives new records, 0 = none */
    uint64_t  epoch;          /* bumped by every change seen by this handle */
    int       modified;       /* something changed in this write section */
    uint8_t  *vbuf;           /* values read by get, copied out (grow-only) */
    size_t    vcap;
    uint8_t  *sbuf;           /* split / check scratch: record bytes */
    size_t    scap;
    struct lh_ent *ents;      /* split / check scratch: entries */
    size_t    ecap;
    uint32_t *chain;          /* split scratch: page numbers of a chain */
    size_t    ccap;
    uint64_t  gets, get_chain_pages, splits;
} lh;

/* A record's place in the scan order, or a collected record. */
typedef struct lh_ent {
    uint32_t rev;             /* bit-reversed hash tag (or the tag itself in check) */
    uint32_t off;             /* record bytes in a scratch buffer */
    uint32_t len;
    uint16_t klen;
    uint16_t koff;            /* key offset within the record */
} lh_ent;

void lh_init(lh *t, pager *pg, pool_file *pool, kvs_err *err);
void lh_free(lh *t);

uint64_t lh_hash(const lh *t, const void *key, size_t klen);
int  lh_get(lh *t, const void *key, size_t klen, kvs_slice *val);
/* lh_get that also gives the record's stamp (0 = written without one) */
int  lh_get_stamped(lh *t, const void *key, size_t klen, kvs_slice *val, uint64_t *stamp);
int  lh_put(lh *t, const void *key, size_t klen, const void *val, size_t vlen, int flags);
int  lh_delete(lh *t, const void *key, size_t klen);
int  lh_check(lh *t);
/* Formats a fresh table (header fields, dir page 1, bucket page 2) into
 * the pages given; used at create and truncate. */
void lh_format_new(kvs_hdr *h, uint8_t *dirpage, uint8_t *bucketpage);
/* The bucket whose range in scan order (bit-reversed tags) holds rev; *end
 * gets the first rev after that range (2^32 after the last).  Walking rev
 * from 0 through the ends visits every bucket once, in scan order. */
uint32_t lh_bucket_at(const kvs_hdr *h, uint32_t rev, uint64_t *end);

typedef struct lh_cursor {
    lh       *t;
    uint64_t  skip_stamp;
    int       done;
    /* lower bound of what is left: (rev, key), strict or not */
    uint32_t  lb_rev;
    int       lb_strict;
    uint16_t  lb_klen;
    uint8_t   lb_key[KVS_MAX_KEY];
    /* the records of the current bucket beyond the bound, sorted */
    int       valid;
    uint64_t  epoch;
    uint64_t  interval_end;   /* first rev after this bucket's range, 2^32 = end */
    lh_ent   *ents;
    size_t    ecap, n, idx;
    uint8_t  *buf;
    size_t    bcap;
    uint8_t  *vbuf;           /* external value of the last record */
    size_t    vcap;
} lh_cursor;

void lh_cursor_init(lh_cursor *c, lh *t);
void lh_cursor_free(lh_cursor *c);
int  lh_cursor_next(lh_cursor *c, kvs_slice *key, kvs_slice *val);
/* The next record if the current bucket's sorted copy still holds it and it
 * needs no page read (inline value): KVS_OK, else KVS_NOTFOUND (call
 * lh_cursor_next inside a section). */
int  lh_cursor_next_cached(lh_cursor *c, kvs_slice *key, kvs_slice *val);

#endif
