/*
 * lhash.c - linear hashing (Litwin 1980) over the buffer pool.
 *
 * A key's 64-bit xxh3 hash gives its tag (low 32 bits, stored in the slot).
 * Bucket of a tag: b = tag mod 2^L; if b < split then b = tag mod 2^(L+1).
 * Each bucket is a chain: a primary page (found through the directory) and
 * overflow pages linked by next.  When record bytes pass fillfactor percent
 * of the buckets' capacity, bucket `split` is divided between itself and
 * bucket split + 2^L by bit L of the tag.  See README.md for the argument
 * behind the cursor order and the invariants lh_check() proves.
 */
#include <stdlib.h>
#include <xxhash.h>
#include "lhash.h"
#include "dir.h"
#include "vchain.h"

#define TWO32 ((uint64_t)1 << 32)
/* lh_prefetch: a hint's steps, by how many hints ago it was given */
#define LH_HINT_RING       16      /* hints remembered (a power of 2) */
#define LH_HINT_PAGE_AGE   8       /* the page's descriptor and first lines */
#define LH_HINT_RECORD_AGE 12      /* its record area and the key's record */
#define HINT_GIVEN ((uint64_t)1 << 32)

struct lh {
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
    uint64_t *ord;            /* check scratch: the entries' order (ord_sort) */
    size_t    ocap;
    uint32_t *chain;          /* split scratch: page numbers of a chain */
    size_t    ccap;
    /* per bucket, what the handle learnt of it (see bslot): a get then
     * reads no directory page, and a get of an absent key mostly no page at
     * all.  A bucket's primary page never changes while the table lives (a
     * split keeps the old bucket's and adds the new one's entry), so only
     * what drops the table's view drops the map: lh_forget (another handle
     * or process changed the file, a rollback, a truncate, a replaced file). */
    struct bslot *bmap;
    size_t    bmap_cap;
    int       bmap_stale;     /* clear it before the next use */
    uint64_t  gets, get_chain_pages, splits;
    /* lh_prefetch's tags of the last LH_HINT_RING hints, each with
     * HINT_GIVEN (0: no hint there yet); hint_pos is the next to write */
    uint64_t  hint_ring[LH_HINT_RING];
    uint32_t  hint_pos;
};

/* A bucket in the handle's memory: its primary page (0 = not known yet) and,
 * once a get or a put has walked its whole chain or a split refilled it, a
 * filter of its records' tags (FILT_BITS bits, two per tag, set from a
 * Fibonacci hash of the 32-bit tag, so tags of one bucket, which share their
 * low bits, still spread).  A
 * put into the bucket adds its tag; a delete leaves the bits (a filter may
 * say "maybe" for a key that is gone, never "no" for one that is there); a
 * split gives both buckets the exact filter of the records it moved. */
#define FILT_WORDS 4
#define FILT_BITS  (64 * FILT_WORDS)
typedef struct bslot {
    uint32_t page;
    uint32_t filt_ok;
    uint32_t frame;      /* the frame that held the primary page at its last fetch: a hint (pool_fetch_hint) */
    uint32_t pad;
    uint64_t filt[FILT_WORDS];
} bslot;

static inline uint64_t filt_mix(uint32_t tag)
{
    return (uint64_t)tag * 0x9E3779B97F4A7C15ull;
}

static inline void filt_add(bslot *s, uint32_t tag)
{
    uint64_t x = filt_mix(tag);
    uint32_t i = (uint32_t)(x >> 56), j = (uint32_t)(x >> 48) & 0xff;
    s->filt[i / 64] |= (uint64_t)1 << (i % 64);
    s->filt[j / 64] |= (uint64_t)1 << (j % 64);
}

/* Adds the tags of every record of a chain page. */
static inline void filt_learn(bslot *s, const uint8_t *pg)
{
    uint32_t n = sp_nslots(pg), j;
    for (j = 0; j < n; j++)
        filt_add(s, sp_tag(pg, j));
}

static inline int filt_maybe(const bslot *s, uint32_t tag)
{
    uint64_t x = filt_mix(tag);
    uint32_t i = (uint32_t)(x >> 56), j = (uint32_t)(x >> 48) & 0xff;
    return ((s->filt[i / 64] >> (i % 64)) & (s->filt[j / 64] >> (j % 64)) & 1) != 0;
}

struct lh_cursor {
    lh       *t;
    uint64_t  skip_stamp;
    int       done;
    /* lower bound of what is left: the start of a bucket's interval (or of
     * the range), every record at or beyond it not yet returned */
    uint32_t  lb_rev;
    /* the records of the current bucket at or beyond the bound, copied:
     * ents[ord[idx..n)] are not yet returned */
    int       valid;
    uint64_t  epoch;          /* the handle's epoch when they were copied */
    uint64_t  interval_end;   /* first rev after this bucket's range, 2^32 = end */
    uint64_t  hi;             /* first rev beyond the cursor's range, 2^32 = all */
    lh_ent   *ents;
    uint64_t *ord;            /* their order: rev << 32 | index (ord_sort) */
    size_t    ecap, ocap, n, idx;
    uint8_t  *buf;
    size_t    bcap;
    uint8_t  *vbuf;           /* external value of the last record, or a re-read one */
    size_t    vcap;
};


static inline uint32_t bitrev32(uint32_t x)
{
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
    return (x >> 16) | (x << 16);
}

static inline uint32_t bucket_of(const kvs_hdr *h, uint32_t tag)
{
    uint64_t b = tag & (((uint64_t)1 << hdr_level(h)) - 1);
    if (b < hdr_split(h))
        b = tag & (((uint64_t)1 << (hdr_level(h) + 1)) - 1);
    return (uint32_t)b;
}

/* Bits of the tag that select bucket b (its range in scan order is the revs
 * whose top `depth` bits are those bits reversed). */
static inline uint32_t bucket_depth(const kvs_hdr *h, uint32_t b)
{
    uint32_t L = hdr_level(h);
    return (b < hdr_split(h) || (uint64_t)b >= ((uint64_t)1 << L)) ? L + 1 : L;
}

lh *lh_new(pager *pg, pool_file *pool, kvs_err *err)
{
    lh *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->pg = pg;
    t->pool = pool;
    t->err = err;
    t->fillfactor = 75;
    return t;
}

uint32_t lh_fillfactor(const lh *t) { return t->fillfactor; }
void lh_set_fillfactor(lh *t, uint32_t percent) { t->fillfactor = percent; }
void lh_set_stamp(lh *t, uint64_t stamp) { t->stamp = stamp; }
int lh_modified(const lh *t) { return t->modified; }
void lh_set_modified(lh *t, int modified) { t->modified = modified; }
void lh_forget(lh *t) { t->epoch++; t->bmap_stale = 1; }
pager *lh_pager(const lh *t) { return t->pg; }
pool_file *lh_pool(const lh *t) { return t->pool; }
kvs_err *lh_err(const lh *t) { return t->err; }

void lh_get_counters(const lh *t, lh_counters *c)
{
    c->gets = t->gets;
    c->get_chain_pages = t->get_chain_pages;
    c->splits = t->splits;
}

void lh_reset_counters(lh *t)
{
    t->gets = t->get_chain_pages = t->splits = 0;
}

void lh_free(lh *t)
{
    if (!t)
        return;
    free(t->vbuf);
    free(t->sbuf);
    free(t->ents);
    free(t->ord);
    free(t->chain);
    free(t->bmap);
    free(t);
}

uint64_t kvs_key_hash(uint64_t seed, const void *key, size_t klen)
{
    return XXH3_64bits_withSeed(key, klen, seed);
}

uint32_t kvs_hash_order(uint64_t hash)
{
    return bitrev32((uint32_t)hash);
}

uint64_t lh_hash(const lh *t, const void *key, size_t klen)
{
    return kvs_key_hash(hdr_seed(pager_hdr(t->pg)), key, klen);
}

uint32_t lh_key_order(const lh *t, const void *key, size_t klen)
{
    return kvs_hash_order(lh_hash(t, key, klen));
}

void lh_format_new(kvs_hdr *h, uint8_t *dirpage, uint8_t *bucketpage)
{
    hdr_reset_table(h);
    dir_format(dirpage, 0);
    wr32(dirpage + PG_HDR, 2);
    wr16(dirpage + PG_NSLOTS, 1);
    sp_format(bucketpage, KVS_PAGE_BUCKET, 0);
}

/* Checks that a page met while walking bucket b's chain belongs there. */
static int check_chain_page(lh *t, const uint8_t *pg, uint32_t pgno, int first, uint32_t b)
{
    int want = first ? KVS_PAGE_BUCKET : KVS_PAGE_OVERFLOW;
    if (pg[PG_TYPE] != want || rd32(pg + PG_AUX) != b)
        return kvs_seterr(t->err, KVS_ECORRUPT, pgno,
                          "page %u: expected %s page of bucket %u, found type %u of bucket %u",
                          (unsigned)pgno, first ? "the primary" : "an overflow", (unsigned)b,
                          pg[PG_TYPE], (unsigned)rd32(pg + PG_AUX));
    return KVS_OK;
}

/* ---- the chain walk ---------------------------------------------------------- */

typedef struct chk chk;
static int visit(uint32_t pgno, int type, void *arg);

/*
 * The one walk over a bucket chain, used by get, locate (put/delete), gather
 * (split), collect (cursor) and check_bucket (lh_check): chain_first enters
 * bucket b's primary page (through the directory), chain_next follows the
 * next link, and each returns KVS_OK on a page, CHAIN_END past the tail, or
 * an error (a KVS_* code, negative).  What every walk must check is checked
 * here once, in this order, before a page is used:
 *   - length: entering a page when more pages than the file has are already
 *     behind is a cycle (KVS_ECORRUPT naming the page it would enter);
 *   - for lh_check only (k != NULL), the page is marked reached, so a page
 *     reached twice is reported by visit() before anything else;
 *   - the page is read (checksum and structure, in the pool) and is the
 *     primary page of b (first) or an overflow page of b (after), with
 *     KVS_ECORRUPT naming it if not (check_chain_page).
 * The page the iterator is on stays pinned and share-locked (its content
 * lock) until chain_next moves on or chain_end; a caller that must fetch
 * other pages while on it (a value chain: no content lock may be held
 * across a fetch) first calls chain_copy, which copies the page, drops the
 * lock and keeps the pin.  chain_next reads the next link, lets go of this
 * page and only then fetches the next one, so the walk holds one content
 * lock at a time and none across I/O.  After an error, or CHAIN_END,
 * nothing is pinned or locked and pgno is the last page entered (the tail,
 * at CHAIN_END).
 *
 * Static, inline and free of allocation: this is the get hot path.
 */
#define CHAIN_END 1                /* chain_next: past the tail (not a KVS_* code) */

/* The walk is the get hot path: left to itself the compiler makes
 * chain_enter a call (ten sites), whose register saves cost more than the
 * rest of the step. */
#if defined(__GNUC__)
#define CHAIN_INLINE inline __attribute__((always_inline))
#else
#define CHAIN_INLINE inline
#endif

typedef struct chain_iter {
    lh            *t;
    chk           *k;          /* lh_check's page bitmap, else NULL */
    uint32_t       b;          /* the bucket */
    uint32_t       pgno;       /* page the iterator is on */
    uint32_t       prev;       /* the page before it, NO_PAGE on the primary page */
    uint32_t       fi;         /* its frame (pinned), POOL_NONE when none is */
    uint32_t       hops;       /* pages entered so far, this one included */
    int            locked;     /* its content lock is held (not after chain_copy) */
    const uint8_t *pg;         /* its bytes (the frame's, or the copy's) */
    bslot         *bs;         /* the bucket's map slot (its primary page's frame hint), or NULL */
} chain_iter;

static int cycle(lh *t, uint32_t pgno, uint32_t b)
{
    return kvs_seterr(t->err, KVS_ECORRUPT, pgno,
                      "page %u: chain of bucket %u is longer than the file (a cycle)",
                      (unsigned)pgno, (unsigned)b);
}

/* Moves the iterator (on no pinned page) onto page pgno and pins it. */
static CHAIN_INLINE int chain_enter(chain_iter *it, uint32_t pgno)
{
    lh *t = it->t;
    int primary = it->hops == 0, rc;
    uint32_t fi;
    uint8_t *pg;
    if (it->hops > hdr_npages(pager_hdr(t->pg)))
        return cycle(t, pgno, it->b);
    if (it->k) {
        rc = visit(pgno, primary ? KVS_PAGE_BUCKET : KVS_PAGE_OVERFLOW, it->k);
        if (rc)
            return rc;
    }
    if (primary && it->bs)
        rc = pool_fetch_hint(t->pool, pgno, &it->bs->frame, &fi, &pg);
    else
        rc = pool_fetch(t->pool, pgno, 0, &fi, &pg);
    if (rc)
        return rc;
    pool_lock(t->pool, fi, POOL_SHARED);
    it->pg = pg;
    rc = check_chain_page(t, it->pg, pgno, primary, it->b);
    if (rc) {
        pool_release(t->pool, fi);
        return rc;
    }
    it->fi = fi;
    it->locked = 1;
    it->prev = it->pgno;
    it->pgno = pgno;
    it->hops++;
    return KVS_OK;
}

/* Gives t->bmap a slot for every bucket below nb (new ones empty: not
 * known yet).  0 when it cannot grow (out of memory): a map that cannot grow
 * only costs directory walks, so the error is not kept. */
static int bmap_grow(lh *t, size_t nb)
{
    size_t cap = t->bmap_cap;
    kvs_err spare;
    if (nb <= cap)
        return 1;
    spare = *t->err;
    if (kvs_grow(&t->bmap, &cap, nb, sizeof(bslot), t->err) != KVS_OK) {
        *t->err = spare;
        return 0;
    }
    memset(t->bmap + t->bmap_cap, 0, (cap - t->bmap_cap) * sizeof(bslot));
    t->bmap_cap = cap;
    return 1;
}

/* The directory's entry for bucket b, remembered in t->bmap. */
static int bucket_page_slow(lh *t, uint32_t b, uint32_t *pgno)
{
    int rc = dir_lookup(t->pool, b, pgno);
    if (rc == KVS_OK && bmap_grow(t, (size_t)b + 1))
        t->bmap[b].page = *pgno;
    return rc;
}

static inline void bmap_fresh(lh *t)
{
    if (t->bmap_stale) {
        if (t->bmap_cap)
            memset(t->bmap, 0, t->bmap_cap * sizeof(bslot));
        t->bmap_stale = 0;
    }
}

/* Bucket b's slot if the handle has one (NULL if not). */
static inline bslot *bucket_slot(lh *t, uint32_t b)
{
    bmap_fresh(t);
    return b < t->bmap_cap ? &t->bmap[b] : NULL;
}

static CHAIN_INLINE int bucket_page(lh *t, uint32_t b, uint32_t *pgno)
{
    bmap_fresh(t);
    if (b < t->bmap_cap && t->bmap[b].page) {
        *pgno = t->bmap[b].page;
        return KVS_OK;
    }
    return bucket_page_slow(t, b, pgno);
}

static CHAIN_INLINE int chain_first(chain_iter *it, lh *t, uint32_t b, chk *k)
{
    uint32_t pgno;
    int rc;
    it->t = t;
    it->k = k;
    it->b = b;
    it->pgno = it->prev = NO_PAGE;
    it->fi = POOL_NONE;
    it->hops = 0;
    it->locked = 0;
    it->pg = NULL;
    it->bs = NULL;
    /* lh_check proves the directory itself: never the map */
    rc = k ? dir_lookup(t->pool, b, &pgno) : bucket_page(t, b, &pgno);
    if (rc)
        return rc;
    it->bs = !k && b < t->bmap_cap && t->bmap[b].page == pgno ? &t->bmap[b] : NULL;
    return chain_enter(it, pgno);
}

/* Lets go of the page the iterator is on (lock, if held, and pin). */
static CHAIN_INLINE void chain_leave(chain_iter *it)
{
    if (it->locked)
        pool_unlock(it->t->pool, it->fi);
    pool_unpin(it->t->pool, it->fi);
    it->locked = 0;
    it->fi = POOL_NONE;
}

static CHAIN_INLINE int chain_next(chain_iter *it)
{
    uint32_t next = rd32(it->pg + PG_NEXT);
    chain_leave(it);
    if (next == NO_PAGE)
        return CHAIN_END;
    return chain_enter(it, next);
}

/* Leaves a walk early (no-op when nothing is pinned). */
static CHAIN_INLINE void chain_end(chain_iter *it)
{
    if (it->fi != POOL_NONE)
        chain_leave(it);
}

/* Copies the page the iterator is on into buf and drops its content lock
 * (the pin stays until chain_next): the caller may then fetch other pages
 * while it reads the copy. */
static void chain_copy(chain_iter *it, uint8_t *buf)
{
    memcpy(buf, it->pg, PG_SIZE);
    pool_unlock(it->t->pool, it->fi);
    it->locked = 0;
    it->pg = buf;
}

uint32_t lh_bucket_at(const kvs_hdr *h, uint32_t rev, uint64_t *end)
{
    uint32_t b = bucket_of(h, bitrev32(rev)), d = bucket_depth(h, b);
    *end = (((uint64_t)rev >> (32 - d)) + 1) << (32 - d);
    return b;
}

/* ---- get ------------------------------------------------------------------ */

/* The value (and stamp) of slot i of the chain page the iterator is on,
 * copied into t->vbuf (the slice rule of kvs.h: never a pointer into a
 * cached page), and the walk ended.  An inline value is copied under the
 * page's content lock; for an external one the lock is dropped first and
 * the value chain read. */
static int get_value(lh *t, chain_iter *it, uint32_t i, kvs_slice *val, uint64_t *stamp)
{
    rec_view r;
    uint32_t vpage;
    int rc;
    sp_record(it->pg, i, &r);
    if (stamp)
        *stamp = r.stamp;
    val->len = r.vlen;
    /* (the check here first: this is every get, and it rarely grows) */
    rc = r.vlen <= t->vcap && t->vbuf ? KVS_OK : kvs_grow(&t->vbuf, &t->vcap, r.vlen ? r.vlen : 1, 1, t->err);
    if (rc) {
        chain_end(it);
        return rc;
    }
    val->data = t->vbuf;
    if (!(r.flags & REC_EXTERNAL)) {
        if (r.vlen)
            memcpy(t->vbuf, r.val, r.vlen);
        chain_end(it);
        return KVS_OK;
    }
    vpage = r.vpage;
    chain_end(it);
    return vchain_read(t->pool, vpage, val->len, t->vbuf);
}

int lh_get(lh *t, const void *key, size_t klen, kvs_slice *val)
{
    return lh_get_stamped(t, key, klen, val, NULL);
}

int lh_get_stamped(lh *t, const void *key, size_t klen, kvs_slice *val, uint64_t *stamp)
{
    const kvs_hdr *h = pager_hdr(t->pg);
    uint32_t tag, b;
    chain_iter it;
    bslot *bs;
    int rc, build;
    if (klen > KVS_MAX_KEY)
        return KVS_NOTFOUND;
    tag = (uint32_t)lh_hash(t, key, klen);
    b = bucket_of(h, tag);
    bs = bucket_slot(t, b);
    if (bs && bs->filt_ok && !filt_maybe(bs, tag))
        return KVS_NOTFOUND;
    /* a walk over the whole chain learns the bucket's filter on the way */
    build = bs && !bs->filt_ok;
    if (build)
        memset(bs->filt, 0, sizeof bs->filt);
    for (rc = chain_first(&it, t, b, NULL); rc == KVS_OK; rc = chain_next(&it)) {
        int i = sp_find(it.pg, tag, key, klen);
        if (i >= 0) {
            t->gets++;
            t->get_chain_pages += it.hops;
            return get_value(t, &it, (uint32_t)i, val, stamp);
        }
        if (build)
            filt_learn(bs, it.pg);
    }
    /* (bs is still the slot: the map grows only for a bucket beyond it,
     * which has no slot, and nothing in a get drops it) */
    if (rc == CHAIN_END && build)
        bs->filt_ok = 1;
    return rc == CHAIN_END ? KVS_NOTFOUND : rc;
}

/* ---- locating a key for put/delete ---------------------------------------- */

typedef struct loc {
    uint32_t primary;
    uint32_t found;        /* page holding the key, 0 = absent */
    uint32_t found_prev;   /* its predecessor in the chain, 0 = it is primary */
    uint32_t slot;
    uint32_t room;         /* first page with `need` free bytes, 0 = none */
    uint32_t tail;
    uint32_t fi;           /* found's frame, pinned (not locked), when pinned */
    int      pinned;       /* the walk stopped at found (see stop_len) */
    uint8_t *pg;           /* found's bytes, when pinned */
    uint32_t room_fi;      /* room's frame, pinned, when the key is absent (POOL_NONE: not) */
    uint8_t *room_pg;
} loc;

/* Lets go of what locate left pinned. */
static void loc_unpin(lh *t, loc *L)
{
    if (L->pinned)
        pool_unpin(t->pool, L->fi);
    if (L->room_fi != POOL_NONE)
        pool_unpin(t->pool, L->room_fi);
    L->pinned = 0;
    L->room_fi = POOL_NONE;
}

#define STOP_NEVER 0u             /* locate: walk the whole chain (room, tail) */
#define STOP_FOUND 0xffffffffu    /* locate: stop at the key, whatever its length */

/* Walks bucket b's chain for the key, the first page with `need` free bytes
 * and the tail.  With stop_len, a walk that finds the key with a record of
 * stop_len bytes (STOP_FOUND: any) stops there and keeps its page pinned
 * (L->pinned, L->fi, L->pg; its content lock let go): the caller, which
 * needs neither room nor tail then (a same-size replace, a delete), uses
 * the page without fetching it again, and must unpin it.  When the key is
 * absent, the room page stays pinned too (L->room_fi), for place(); the
 * caller lets go of whatever is pinned with loc_unpin if it does not use it. */
static int locate(lh *t, uint32_t b, uint32_t tag, const void *key, size_t klen,
                  uint32_t need, uint32_t stop_len, loc *L)
{
    chain_iter it;
    /* the walk goes over the whole chain (room, tail) either way: a bucket
     * whose filter says the key is not there needs no slot search, one
     * without a filter learns it (bs stays the slot: see lh_get_stamped) */
    bslot *bs = bucket_slot(t, b);
    int rc, absent = bs && bs->filt_ok && !filt_maybe(bs, tag), build = bs && !bs->filt_ok;
    memset(L, 0, sizeof *L);
    L->room_fi = POOL_NONE;
    if (build)
        memset(bs->filt, 0, sizeof bs->filt);
    for (rc = chain_first(&it, t, b, NULL); rc == KVS_OK; rc = chain_next(&it)) {
        if (it.hops == 1)
            L->primary = it.pgno;
        if (!L->found && !absent) {
            int i = sp_find(it.pg, tag, key, klen);
            if (i >= 0) {
                L->found = it.pgno;
                L->found_prev = it.prev;
                L->slot = (uint32_t)i;
                if (stop_len == STOP_FOUND || (stop_len && sp_len(it.pg, (uint32_t)i) == stop_len)) {
                    /* (a filter being learnt stays unlearnt: the walk
                     * did not see the whole chain) */
                    pool_unlock(t->pool, it.fi);
                    if (L->room_fi != POOL_NONE)
                        pool_unpin(t->pool, L->room_fi);
                    L->room_fi = POOL_NONE;
                    L->fi = it.fi;
                    L->pg = (uint8_t *)it.pg;
                    L->pinned = 1;
                    return KVS_OK;
                }
            }
        }
        if (build)
            filt_learn(bs, it.pg);
        if (!L->room && sp_free(it.pg) >= need) {
            L->room = it.pgno;
            if (!L->found) {
                pool_pin(t->pool, it.fi);
                L->room_fi = it.fi;
                L->room_pg = (uint8_t *)it.pg;
            }
        }
    }
    if (rc != CHAIN_END) {
        loc_unpin(t, L);
        return rc;
    }
    if (L->found && L->room_fi != POOL_NONE) {
        /* a replace that moves: place() fetches the room again */
        pool_unpin(t->pool, L->room_fi);
        L->room_fi = POOL_NONE;
    }
    if (build)
        bs->filt_ok = 1;
    L->tail = it.pgno;
    return KVS_OK;
}

typedef struct newrec {
    size_t      klen, vlen;
    const void *key, *val;
    uint64_t    stamp;
    int         ext;
    uint32_t    vpage;
    uint32_t    len;          /* record bytes (slot not included) */
} newrec;

/* Writes the record into `room`, or into a new overflow page linked after
 * `tail` (the new page is filled before the link to it is written).  One
 * content lock at a time.  room_fi: the room's frame, which locate left
 * pinned (this call unpins it), or POOL_NONE. */
static int place(lh *t, uint32_t b, uint32_t room, uint32_t room_fi, uint8_t *room_pg,
                 uint32_t tail, uint32_t tag, const newrec *nr)
{
    uint32_t fi, pgno;
    uint8_t *pg, *dst;
    int rc;
    if (room_fi != POOL_NONE) {
        fi = room_fi;
        pg = room_pg;
        pool_lock(t->pool, fi, POOL_EXCLUSIVE);
    } else if (room) {
        rc = pool_fetch(t->pool, room, 0, &fi, &pg);
        if (rc)
            return rc;
        pool_lock(t->pool, fi, POOL_EXCLUSIVE);
    } else {
        rc = pool_alloc(t->pool, KVS_PAGE_OVERFLOW, &pgno, &fi, &pg);
        if (rc)
            return rc;
        sp_format_zeroed(pg, KVS_PAGE_OVERFLOW, b);
        hdr_count_page(pager_hdr(t->pg), KVS_PAGE_OVERFLOW, 1);
    }
    dst = sp_reserve(pg, tag, nr->len);
    rec_encode(dst, nr->klen, nr->key, nr->vlen, nr->val, nr->stamp, nr->ext, nr->vpage);
    pool_dirty(t->pool, fi);
    pool_release(t->pool, fi);
    if (!room) {
        uint32_t tfi;
        uint8_t *tpg;
        rc = pool_fetch(t->pool, tail, 0, &tfi, &tpg);
        if (rc)
            return rc;
        pool_lock(t->pool, tfi, POOL_EXCLUSIVE);
        wr32(tpg + PG_NEXT, pgno);
        pool_dirty(t->pool, tfi);
        pool_release(t->pool, tfi);
    }
    return KVS_OK;
}

/* After a delete made room in bucket b's primary page (pinned as fi, not
 * locked), moves records up from the first overflow page, and frees that
 * page if it empties: chains stay short after deletes, so gets touch fewer
 * pages.  The overflow page is fetched with no lock held; then both are
 * locked in chain order (primary, then the page its link names). */
static int pull_up(lh *t, uint32_t b, uint32_t fi, uint8_t *pg)
{
    uint8_t *ov;
    uint32_t opg, ofi, i;
    int rc;
    pool_lock(t->pool, fi, POOL_SHARED);
    opg = rd32(pg + PG_NEXT);
    pool_unlock(t->pool, fi);
    if (opg == NO_PAGE)
        return KVS_OK;
    rc = pool_fetch(t->pool, opg, 0, &ofi, &ov);
    if (rc)
        return rc;
    pool_lock(t->pool, fi, POOL_EXCLUSIVE);
    pool_lock(t->pool, ofi, POOL_EXCLUSIVE);
    rc = check_chain_page(t, ov, opg, 0, b);
    if (rc) {
        pool_release(t->pool, ofi);
        pool_unlock(t->pool, fi);
        return rc;
    }
    for (i = sp_nslots(ov); i-- > 0;) {
        uint32_t len = sp_len(ov, i);
        if (sp_free(pg) < len + SLOT_SIZE)
            continue;
        memcpy(sp_reserve(pg, sp_tag(ov, i), len), ov + sp_off(ov, i), len);
        sp_delete(ov, i);
    }
    pool_dirty(t->pool, fi);
    pool_dirty(t->pool, ofi);
    if (sp_nslots(ov) > 0) {
        pool_release(t->pool, ofi);
        pool_unlock(t->pool, fi);
        return KVS_OK;
    }
    wr32(pg + PG_NEXT, rd32(ov + PG_NEXT));
    pool_release(t->pool, ofi);
    pool_unlock(t->pool, fi);
    rc = pool_free_page(t->pool, opg);
    if (rc)
        return rc;
    hdr_count_page(pager_hdr(t->pg), KVS_PAGE_OVERFLOW, -1);
    return KVS_OK;
}

/* The frame of the located record's page: the one locate left pinned when
 * it stopped there, else fetched (pinned) now. */
static int found_frame(lh *t, const loc *L, uint32_t *fi, uint8_t **pg)
{
    if (L->pinned) {
        *fi = L->fi;
        *pg = L->pg;
        return KVS_OK;
    }
    return pool_fetch(t->pool, L->found, 0, fi, pg);
}

/* Deletes slot from pgno; an overflow page left empty is unlinked and freed.
 * *freed tells the caller the page is gone.  With `compact`, a delete from
 * the primary page pulls records up from the overflow page behind it.  With
 * `gone` (a delete), what fetch_found would give of the record (its length,
 * its value chain) is read under the same lock, before it goes. */
typedef struct gone_rec {
    uint32_t len, vpage, vlen;
} gone_rec;

static int remove_at(lh *t, const loc *L, int *freed, int compact, uint32_t b, gone_rec *gone)
{
    uint32_t fi, pfi, next;
    uint8_t *pg, *ppg;
    int rc = found_frame(t, L, &fi, &pg);
    if (rc)
        return rc;
    pool_lock(t->pool, fi, POOL_EXCLUSIVE);
    if (gone) {
        rec_view r;
        sp_record(pg, L->slot, &r);
        gone->len = sp_len(pg, L->slot);
        gone->vpage = (r.flags & REC_EXTERNAL) ? r.vpage : 0;
        gone->vlen = (r.flags & REC_EXTERNAL) ? r.vlen : 0;
    }
    sp_delete(pg, L->slot);
    pool_dirty(t->pool, fi);
    *freed = 0;
    if (L->found == L->primary || sp_nslots(pg) > 0) {
        pool_unlock(t->pool, fi);
        if (compact && L->found == L->primary)
            rc = pull_up(t, b, fi, pg);
        pool_unpin(t->pool, fi);
        return rc;
    }
    next = rd32(pg + PG_NEXT);
    pool_release(t->pool, fi);
    rc = pool_fetch(t->pool, L->found_prev, 0, &pfi, &ppg);
    if (rc)
        return rc;
    pool_lock(t->pool, pfi, POOL_EXCLUSIVE);
    wr32(ppg + PG_NEXT, next);
    pool_dirty(t->pool, pfi);
    pool_release(t->pool, pfi);
    rc = pool_free_page(t->pool, L->found);
    if (rc)
        return rc;
    hdr_count_page(pager_hdr(t->pg), KVS_PAGE_OVERFLOW, -1);
    *freed = 1;
    return KVS_OK;
}

/* Fetches the page holding the located record and locks it in `mode`; gives
 * the record's length and, for an external value, its chain. */
static int fetch_found(lh *t, const loc *L, int mode, uint32_t *fi, uint8_t **pg, uint32_t *len,
                       uint32_t *vpage, uint32_t *vlen)
{
    rec_view r;
    int rc = found_frame(t, L, fi, pg);
    if (rc)
        return rc;
    pool_lock(t->pool, *fi, mode);
    sp_record(*pg, L->slot, &r);
    *len = sp_len(*pg, L->slot);
    *vpage = (r.flags & REC_EXTERNAL) ? r.vpage : 0;
    *vlen = (r.flags & REC_EXTERNAL) ? r.vlen : 0;
    return KVS_OK;
}

/* ---- splitting ------------------------------------------------------------ */

#define LH_MAX_SPLITS_PER_PUT 4

static int needs_split(const lh *t)
{
    const kvs_hdr *h = pager_hdr(t->pg);
    uint64_t nb = hdr_buckets(h);
    if (nb >= LH_MAX_BUCKETS || hdr_npages(h) >= 0xfffffff0u)
        return 0;
    return hdr_data_bytes(h) * 100 > (uint64_t)t->fillfactor * nb * PG_USABLE;
}

/* Copies every record of bucket b's chain into t->sbuf/t->ents (rev holds
 * the tag) and its page numbers into t->chain. */
static int gather(lh *t, uint32_t b, size_t *nents, size_t *npages)
{
    size_t ne = 0, np = 0, used = 0;
    chain_iter it;
    int rc;
    for (rc = chain_first(&it, t, b, NULL); rc == KVS_OK; rc = chain_next(&it)) {
        const uint8_t *pg = it.pg;
        uint32_t i, n = sp_nslots(pg);
        rc = kvs_grow(&t->chain, &t->ccap, np + 1, sizeof(uint32_t), t->err);
        if (!rc)
            rc = kvs_grow(&t->ents, &t->ecap, ne + n, sizeof(lh_ent), t->err);
        if (!rc)
            rc = kvs_grow(&t->sbuf, &t->scap, used + PG_SIZE, 1, t->err);
        if (rc) {
            chain_end(&it);
            return rc;
        }
        t->chain[np++] = it.pgno;
        for (i = 0; i < n; i++) {
            lh_ent *e = &t->ents[ne++];
            e->rev = sp_tag(pg, i);
            e->off = (uint32_t)used;
            e->len = sp_len(pg, i);
            e->klen = 0;
            e->koff = 0;
            memcpy(t->sbuf + used, pg + sp_off(pg, i), e->len);
            used += e->len;
        }
    }
    if (rc != CHAIN_END)
        return rc;
    *nents = ne;
    *npages = np;
    return KVS_OK;
}

/* Refills bucket b's chain (existing pages pages[0..npg), pages[0] its
 * primary) with the gathered records whose tag bit `bit` equals `want`;
 * extra pages come from pool_alloc, unused ones go to the free list.  The
 * page being filled is exclusively locked; when it is full, the next page
 * is fetched or allocated with no lock held, then the full page's link is
 * set and the next page locked (chain order) before the full one is let go.
 * `empty`: pages[0] is an empty bucket page already (a split's new one,
 * formatted when it was allocated): it is not formatted again, and is read
 * back if the pool let it go since.  A page that pool_alloc gives is all
 * zero: only its header fields are set (sp_format_zeroed). */
static int fill_chain(lh *t, uint32_t b, const uint32_t *pages, size_t npg,
                      size_t nents, uint32_t bit, uint32_t want, int empty)
{
    uint32_t fi, pgno = pages[0];
    size_t ci = 0, i;
    uint8_t *pg;
    int rc = pool_fetch(t->pool, pgno, empty ? 0 : POOL_NEW, &fi, &pg);
    if (rc)
        return rc;
    pool_lock(t->pool, fi, POOL_EXCLUSIVE);
    if (!empty)
        sp_format(pg, KVS_PAGE_BUCKET, b);
    pool_dirty(t->pool, fi);
    for (i = 0; i < nents; i++) {
        const lh_ent *e = &t->ents[i];
        if (((e->rev >> bit) & 1) != want)
            continue;
        if (sp_free(pg) < e->len + SLOT_SIZE) {
            uint32_t next, nfi;
            uint8_t *npage;
            int zeroed = 0;
            pool_unlock(t->pool, fi);
            if (ci + 1 < npg) {
                next = pages[ci + 1];
                rc = pool_fetch(t->pool, next, POOL_NEW, &nfi, &npage);
            } else {
                rc = pool_alloc(t->pool, KVS_PAGE_OVERFLOW, &next, &nfi, &npage);
                if (rc == KVS_OK) {
                    pool_unlock(t->pool, nfi);
                    hdr_count_page(pager_hdr(t->pg), KVS_PAGE_OVERFLOW, 1);
                    zeroed = 1;
                }
            }
            if (rc) {
                pool_unpin(t->pool, fi);
                return rc;
            }
            ci++;
            pool_lock(t->pool, fi, POOL_EXCLUSIVE);
            wr32(pg + PG_NEXT, next);
            pool_dirty(t->pool, fi);
            pool_lock(t->pool, nfi, POOL_EXCLUSIVE);
            pool_release(t->pool, fi);
            if (zeroed)
                sp_format_zeroed(npage, KVS_PAGE_OVERFLOW, b);
            else
                sp_format(npage, KVS_PAGE_OVERFLOW, b);
            pool_dirty(t->pool, nfi);
            fi = nfi;
            pg = npage;
        }
        memcpy(sp_reserve(pg, e->rev, e->len), t->sbuf + e->off, e->len);
    }
    pool_release(t->pool, fi);
    for (ci++; ci < npg; ci++) {
        rc = pool_free_page(t->pool, pages[ci]);
        if (rc)
            return rc;
        hdr_count_page(pager_hdr(t->pg), KVS_PAGE_OVERFLOW, -1);
    }
    return KVS_OK;
}

/* After a split of s into s and nb by tag bit `bit`: each one's filter
 * holds exactly its records' tags (the gathered entries, rev = tag). */
static void split_filters(lh *t, uint32_t s, uint32_t nb, size_t nents, uint32_t bit)
{
    bslot *lo = bucket_slot(t, s), *hi = nb < t->bmap_cap ? &t->bmap[nb] : NULL;
    size_t i;
    if (lo)
        memset(lo->filt, 0, sizeof lo->filt);
    if (hi)
        memset(hi->filt, 0, sizeof hi->filt);
    for (i = 0; i < nents; i++) {
        bslot *to = (t->ents[i].rev >> bit) & 1 ? hi : lo;
        if (to)
            filt_add(to, t->ents[i].rev);
    }
    if (lo)
        lo->filt_ok = 1;
    if (hi)
        hi->filt_ok = 1;
}

/* Bucket b's new primary page: allocated (zeroed), its header set, its
 * directory entry written, remembered in the handle's map. */
static int new_bucket_page(lh *t, uint32_t b, uint32_t *pgno)
{
    uint32_t fi;
    uint8_t *pg;
    int rc = pool_alloc(t->pool, KVS_PAGE_BUCKET, pgno, &fi, &pg);
    if (rc)
        return rc;
    sp_format_zeroed(pg, KVS_PAGE_BUCKET, b);
    pool_release(t->pool, fi);
    rc = dir_set(t->pool, b, *pgno);
    if (rc)
        return rc;
    if (b < t->bmap_cap && !t->bmap_stale) {
        t->bmap[b].page = *pgno;
        t->bmap[b].frame = fi;   /* the frame hint: the first put finds it without a probe */
    }
    return KVS_OK;
}

static int split_one(lh *t)
{
    kvs_hdr *h = pager_hdr(t->pg);
    uint32_t L = hdr_level(h), s = hdr_split(h), nb = s + ((uint32_t)1 << L), np;
    size_t nents = 0, npg = 0;
    int rc = gather(t, s, &nents, &npg);
    if (rc)
        return rc;
    /* the new bucket's primary page and its directory entry come first */
    rc = new_bucket_page(t, nb, &np);
    if (rc)
        return rc;
    rc = fill_chain(t, nb, &np, 1, nents, L, 1, 1);
    if (rc)
        return rc;
    rc = fill_chain(t, s, t->chain, npg, nents, L, 0, 0);
    if (rc)
        return rc;
    split_filters(t, s, nb, nents, L);
    hdr_split_done(h);
    t->splits++;
    return KVS_OK;
}

uint64_t lh_buckets_for(uint32_t fillfactor, uint64_t data_bytes)
{
    uint64_t cap = (uint64_t)fillfactor * PG_USABLE;   /* per bucket, times 100 */
    uint64_t nb;
    if (data_bytes > (UINT64_MAX - cap) / 100)
        return LH_MAX_BUCKETS;
    nb = (data_bytes * 100 + cap - 1) / cap;
    return nb < 1 ? 1 : nb > LH_MAX_BUCKETS ? LH_MAX_BUCKETS : nb;
}

/* Adds bucket hdr_buckets() to a table that holds no record: an empty
 * primary page and its directory entry, and the split pointer moves on --
 * what a split of an empty bucket gives, without reading or rewriting the
 * bucket split.  Valid only with no record: no record is placed by the old
 * (level, split), so none is in the wrong bucket after. */
static int add_empty_bucket(lh *t)
{
    kvs_hdr *h = pager_hdr(t->pg);
    uint32_t b = (uint32_t)hdr_buckets(h), pgno;
    bslot *bs;
    int rc = new_bucket_page(t, b, &pgno);
    if (rc)
        return rc;
    bs = bucket_slot(t, b);
    if (bs) {
        /* an empty bucket: its filter is exact (no tag) */
        memset(bs->filt, 0, sizeof bs->filt);
        bs->filt_ok = 1;
    }
    hdr_split_done(h);
    return KVS_OK;
}

int lh_reserve(lh *t, uint64_t nb)
{
    kvs_hdr *h = pager_hdr(t->pg);
    int rc;
    if (nb > LH_MAX_BUCKETS)
        nb = LH_MAX_BUCKETS;
    if (hdr_buckets(h) >= nb)
        return KVS_OK;
    t->modified = 1;
    t->epoch++;
    bmap_fresh(t);
    while (hdr_buckets(h) < nb) {
        if (hdr_npages(h) >= 0xfffffff0u)
            return kvs_seterr(t->err, KVS_EINVAL, 0, "the file has no page number left for bucket %llu",
                              (unsigned long long)hdr_buckets(h));
        /* the new bucket's slot, so it gets its page and filter as it is
         * added and the load's first put into it walks no directory (grown
         * with the pages, by doubling) */
        bmap_grow(t, (size_t)hdr_buckets(h) + 1);
        /* a table with records splits bucket by bucket as puts would (each
         * record moves to the bucket the new level names); an empty one
         * only gets its new buckets' pages */
        rc = hdr_records(h) == 0 ? add_empty_bucket(t) : split_one(t);
        if (rc)
            return rc;
    }
    return KVS_OK;
}

/* ---- put / delete ----------------------------------------------------------- */

int lh_put(lh *t, const void *key, size_t klen, const void *val, size_t vlen, int flags)
{
    kvs_hdr *h = pager_hdr(t->pg);
    uint32_t tag, b, need, i;
    newrec nr;
    loc L;
    int rc;
    if (klen > KVS_MAX_KEY)
        return kvs_seterr(t->err, KVS_ETOOBIG, 0, "key of %zu bytes exceeds the %d-byte limit",
                          klen, KVS_MAX_KEY);
    if (vlen > KVS_MAX_VALUE)
        return kvs_seterr(t->err, KVS_ETOOBIG, 0, "value of %zu bytes exceeds the %lu-byte limit",
                          vlen, (unsigned long)KVS_MAX_VALUE);
    tag = (uint32_t)lh_hash(t, key, klen);
    b = bucket_of(h, tag);
    nr.klen = klen;
    nr.key = key;
    nr.vlen = vlen;
    nr.val = val;
    nr.stamp = t->stamp;
    nr.vpage = 0;
    nr.len = (uint32_t)rec_size(klen, vlen, t->stamp != 0, &nr.ext);
    need = nr.len + SLOT_SIZE;
    /* a record of the new one's length is replaced where it is: the walk
     * stops on it (no room or tail needed) */
    rc = locate(t, b, tag, key, klen, need, (flags & KVS_NOOVERWRITE) ? STOP_NEVER : nr.len, &L);
    if (rc)
        return rc;
    if (L.found && (flags & KVS_NOOVERWRITE))
        return KVS_EXISTS;     /* (nothing pinned: found, and no stop) */
    t->modified = 1;
    t->epoch++;
    if (nr.ext) {
        rc = vchain_write(t->pool, val, vlen, &nr.vpage);
        if (rc) {
            loc_unpin(t, &L);
            return rc;
        }
    }
    if (L.found) {
        uint32_t fi, oldlen, old_vpage, old_vlen;
        uint8_t *pg;
        rc = fetch_found(t, &L, POOL_EXCLUSIVE, &fi, &pg, &oldlen, &old_vpage, &old_vlen);
        if (rc)
            return rc;
        if (oldlen == nr.len) {
            /* same size (same key, so same tag): overwrite the record where
             * it is, no slot or record bytes moved */
            rec_encode(pg + sp_off(pg, L.slot), klen, key, vlen, val, nr.stamp, nr.ext, nr.vpage);
            pool_dirty(t->pool, fi);
            pool_release(t->pool, fi);
        } else if (sp_free(pg) + oldlen >= nr.len) {
            /* replace within the page */
            sp_delete(pg, L.slot);
            rec_encode(sp_reserve(pg, tag, nr.len), klen, key, vlen, val, nr.stamp, nr.ext, nr.vpage);
            pool_dirty(t->pool, fi);
            pool_release(t->pool, fi);
        } else {
            int freed;
            pool_release(t->pool, fi);
            rc = remove_at(t, &L, &freed, 0, b, NULL);
            if (rc)
                return rc;
            if (freed && L.tail == L.found)
                L.tail = L.found_prev;
            rc = place(t, b, L.room, POOL_NONE, NULL, L.tail, tag, &nr);
            if (rc)
                return rc;
        }
        hdr_record_resized(h, oldlen, nr.len);
        if (old_vpage) {
            rc = vchain_free(t->pool, old_vpage, old_vlen);
            if (rc)
                return rc;
        }
        return KVS_OK;
    }
    rc = place(t, b, L.room, L.room_fi, L.room_pg, L.tail, tag, &nr);
    if (rc)
        return rc;
    {
        bslot *bs = bucket_slot(t, b);
        if (bs && bs->filt_ok)
            filt_add(bs, tag);
    }
    hdr_record_added(h, need);
    /* Growth is gradual: a few splits per insert at most.  One insert needs
     * one; a lowered fill factor catches up over the next inserts; a header
     * whose counts lie can never make one put split without end. */
    for (i = 0; i < LH_MAX_SPLITS_PER_PUT && needs_split(t); i++) {
        rc = split_one(t);
        if (rc)
            return rc;
    }
    return KVS_OK;
}

int lh_delete(lh *t, const void *key, size_t klen)
{
    kvs_hdr *h = pager_hdr(t->pg);
    uint32_t tag, b;
    gone_rec g;
    loc L;
    int rc, freed;
    if (klen > KVS_MAX_KEY)
        return KVS_NOTFOUND;
    tag = (uint32_t)lh_hash(t, key, klen);
    b = bucket_of(h, tag);
    {
        /* a bucket whose filter says the key is not there: nothing to read */
        const bslot *bs = bucket_slot(t, b);
        if (bs && bs->filt_ok && !filt_maybe(bs, tag))
            return KVS_NOTFOUND;
    }
    /* a delete needs neither room nor tail: the walk stops at the key */
    rc = locate(t, b, tag, key, klen, PG_SIZE, STOP_FOUND, &L);
    if (rc)
        return rc;
    if (!L.found)
        return KVS_NOTFOUND;
    t->modified = 1;
    t->epoch++;
    rc = remove_at(t, &L, &freed, 1, b, &g);
    if (rc)
        return rc;
    hdr_record_removed(h, g.len + SLOT_SIZE);
    if (g.vpage)
        return vchain_free(t->pool, g.vpage, g.vlen);
    return KVS_OK;
}

/* ---- hints: keys soon put, got or deleted ---------------------------------- */

/* Three steps, each on what the one before brought into the cache, for the
 * key hinted now and those hinted LH_HINT_PAGE_AGE and LH_HINT_RECORD_AGE
 * hints ago: the bucket's map entry (its address needs only the key's
 * hash); the frame descriptor and first lines (header, slots) of the
 * primary page at the entry's frame hint; and, once those are in, the
 * lines a put writes (below upper) or a delete moves (at upper) and the
 * record whose slot has the key's tag.  A put, get or delete of the key
 * then finds them there instead of waiting on each in turn.  Nothing is
 * checked that a prefetch could get wrong: a stale map, a split that moved
 * the key, a frame that holds another page since only waste the prefetch;
 * the third step reads the page's header and slots only where the frame
 * still holds the page (pool_peek_hint), and within the page's bounds. */
/* The bucket of a ring entry (hint_ring) whose map entry names its primary
 * page, else NO_BUCKET. */
#define NO_BUCKET 0xffffffffu
static inline uint32_t hinted_bucket(const lh *t, uint64_t given)
{
    uint32_t b = bucket_of(pager_hdr(t->pg), (uint32_t)given);
    return (given & HINT_GIVEN) && b < t->bmap_cap && t->bmap[b].page ? b : NO_BUCKET;
}

/* (One function: GCC 12 at -O2 drops a call to a function that does nothing
 * but prefetch, so the steps are not functions of their own.) */
void lh_prefetch(lh *t, const void *key, size_t klen)
{
    uint32_t tag = (uint32_t)lh_hash(t, key, klen), pos = t->hint_pos, b;
    uint64_t page_of = t->hint_ring[(pos - LH_HINT_PAGE_AGE) % LH_HINT_RING];
    uint64_t record_of = t->hint_ring[(pos - LH_HINT_RECORD_AGE) % LH_HINT_RING];
    t->hint_ring[pos] = tag | HINT_GIVEN;
    t->hint_pos = (pos + 1) % LH_HINT_RING;
    if (t->bmap_stale)
        return;
#if defined(__GNUC__)
    /* 1: the map entry of the key hinted now */
    b = bucket_of(pager_hdr(t->pg), tag);
    if (b < t->bmap_cap) {
        const bslot *s = &t->bmap[b];
        __builtin_prefetch(s);
        __builtin_prefetch((const uint8_t *)(s + 1) - 1);   /* an entry may span two lines */
    }
    /* 2: the page's descriptor and first lines, at the entry's frame hint */
    b = hinted_bucket(t, page_of);
    if (b != NO_BUCKET) {
        const void *desc;
        const uint8_t *d = pool_frame_bytes(t->pool, t->bmap[b].frame, &desc);
        if (d) {
            __builtin_prefetch(desc);
            __builtin_prefetch(d);
            __builtin_prefetch(d + 64);
            __builtin_prefetch(d + 128);
        }
    }
    /* 3: the record area and the key's record, read off the page's header
     * and slots where the frame still holds the page */
    b = hinted_bucket(t, record_of);
    if (b != NO_BUCKET) {
        const uint8_t *d = pool_peek_hint(t->pool, t->bmap[b].page, t->bmap[b].frame);
        uint32_t n = d ? sp_nslots(d) : 0, up = d ? sp_upper(d) : 0, i;
        if (d && n <= SP_MAX_SLOTS && up <= PG_SIZE && up >= PG_HDR + SLOT_SIZE * n) {
            __builtin_prefetch(d + up - 64, 1);     /* where a put writes its record */
            __builtin_prefetch(d + up - 128, 1);
            if (up < PG_SIZE)
                __builtin_prefetch(d + up);         /* the record a delete moves into the hole */
            for (i = 0; i < n; i++) {
                if (sp_tag(d, i) == (uint32_t)record_of) {
                    uint32_t off = sp_off(d, i);
                    if (off <= PG_SIZE - 128) {
                        __builtin_prefetch(d + off);
                        __builtin_prefetch(d + off + 64);
                    }
                    break;
                }
            }
        }
    }
#else
    (void)b;
    (void)page_of;
    (void)record_of;
#endif
}

/* ---- ordering of records: (rev, key bytes, key length) -------------------- */

static int key_cmp(uint32_t ra, const uint8_t *ka, size_t na, uint32_t rb, const uint8_t *kb, size_t nb)
{
    size_t n = na < nb ? na : nb;
    int c;
    if (ra != rb)
        return ra < rb ? -1 : 1;
    c = n ? memcmp(ka, kb, n) : 0;
    if (c)
        return c;
    return (na > nb) - (na < nb);
}

static int ent_cmp(const lh_ent *a, const lh_ent *b, const uint8_t *buf)
{
    return key_cmp(a->rev, buf + a->off + a->koff, a->klen, b->rev, buf + b->off + b->koff, b->klen);
}

/* The order of n collected records (the cursor's, and lh_check's for its
 * duplicate test): fills ord[i] = rev << 32 | index into e, then sorts it
 * by (rev, key).
 * The sort moves 8-byte integers compared whole, no record bytes: a bucket's
 * revs are almost always distinct (they are the hash tags), so keys are
 * compared only within a run of equal revs afterwards.  The revs of a
 * bucket are spread evenly over its interval (they are hashes), so they are
 * first distributed by their top bits above the smallest one into about n
 * bins (a counting sort: two passes, no comparison), which leaves each
 * within a few places of where it belongs; an insertion sort then finishes
 * in about one comparison per entry, where a shell sort of the same 24 or so
 * entries mispredicted a branch at most of its comparisons.  Should a bin
 * get crowded (revs that are not spread: lh_check's tags, or many equal
 * revs) the shell sort does the rest, so the worst case is the shell
 * sort's.  No comparator context, no allocation. */
#define ORD_BINS_MAX 1024
#define ORD_BIN_CROWDED 32
static void ord_shell(uint64_t *ord, size_t n)
{
    static const size_t gaps[] = { 701, 301, 132, 57, 23, 10, 4, 1 };
    size_t g, i, j;
    for (g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
        size_t gap = gaps[g];
        for (i = gap; i < n; i++) {
            uint64_t tmp = ord[i];
            for (j = i; j >= gap && ord[j - gap] > tmp; j -= gap)
                ord[j] = ord[j - gap];
            ord[j] = tmp;
        }
    }
}

static void ord_sort(uint64_t *ord, size_t n, const lh_ent *e, const uint8_t *buf)
{
    uint32_t cnt[ORD_BINS_MAX + 1];
    uint32_t lo = UINT32_MAX, hi = 0, span, most = 0;
    unsigned bits = 0, sbits = 0, shift;
    size_t m, i, j;
    if (n < 2) {
        if (n)
            ord[0] = (uint64_t)e[0].rev << 32;
        return;
    }
    for (i = 0; i < n; i++) {
        if (e[i].rev < lo)
            lo = e[i].rev;
        if (e[i].rev > hi)
            hi = e[i].rev;
    }
    while (((size_t)1 << bits) < n && ((size_t)1 << bits) < ORD_BINS_MAX)
        bits++;
    m = (size_t)1 << bits;
    span = hi - lo;
    while (sbits < 32 && (span >> sbits) != 0)
        sbits++;
    shift = sbits > bits ? sbits - bits : 0;        /* (span >> shift) < m */
    memset(cnt, 0, (m + 1) * sizeof cnt[0]);
    for (i = 0; i < n; i++)
        cnt[((e[i].rev - lo) >> shift) + 1]++;
    for (i = 1; i <= m; i++) {
        if (cnt[i] > most)
            most = cnt[i];
        cnt[i] += cnt[i - 1];
    }
    for (i = 0; i < n; i++)
        ord[cnt[(e[i].rev - lo) >> shift]++] = (uint64_t)e[i].rev << 32 | i;
    if (most > ORD_BIN_CROWDED)
        ord_shell(ord, n);
    for (i = 1; i < n; i++) {
        uint64_t tmp = ord[i];
        if (ord[i - 1] <= tmp)
            continue;
        for (j = i; j > 0 && ord[j - 1] > tmp; j--)
            ord[j] = ord[j - 1];
        ord[j] = tmp;
    }
    for (i = 1; i < n; i++) {
        uint64_t tmp = ord[i];
        if ((ord[i - 1] >> 32) != (tmp >> 32))
            continue;
        for (j = i; j > 0 && (ord[j - 1] >> 32) == (tmp >> 32) &&
                    ent_cmp(&e[(uint32_t)ord[j - 1]], &e[(uint32_t)tmp], buf) > 0; j--)
            ord[j] = ord[j - 1];
        ord[j] = tmp;
    }
}

/* ---- cursor ----------------------------------------------------------------- */

lh_cursor *lh_cursor_new(lh *t)
{
    lh_cursor *c = calloc(1, sizeof *c);
    if (c) {
        c->t = t;
        c->hi = TWO32;
    }
    return c;
}

void lh_cursor_free(lh_cursor *c)
{
    if (!c)
        return;
    free(c->ents);
    free(c->ord);
    free(c->buf);
    free(c->vbuf);
    free(c);
}

void lh_cursor_skip_stamp(lh_cursor *c, uint64_t stamp)
{
    c->skip_stamp = stamp;
}

/* A bucket is an interval of the scan order, so a range [lo, hi) is the
 * lower bound lo and a stop at hi: collect drops the records of the bucket
 * below lo or at or beyond hi, and the bucket holding hi - 1 is the last one
 * visited. */
void lh_cursor_set_range(lh_cursor *c, uint64_t lo, uint64_t hi)
{
    c->done = hi <= lo;
    c->valid = 0;
    c->lb_rev = (uint32_t)lo;
    c->hi = hi > TWO32 ? TWO32 : hi;
}

/* collect's look-ahead, a pipeline over the next three buckets of the scan
 * (each a cache miss of its own, the buckets being visited in bit-reversed
 * order): b2, the next one, gets its primary page's bytes prefetched
 * (pool_prefetch: its mapping-table slot was prefetched a step ago); b3
 * gets its page number from the map (its entry prefetched a step ago) and
 * its mapping-table slot prefetched; b4 its map entry prefetched.  Hints
 * only: a directory read that fails here leaves no error behind (the visit
 * itself reads it again). */
static void prefetch_next(lh *t, const kvs_hdr *h, uint32_t next, uint64_t hi, uint32_t bytes)
{
    uint64_t e2, e3, e4;
    uint32_t b2 = lh_bucket_at(h, next, &e2), pgno;
    kvs_err spare = *t->err;
    if (bucket_page(t, b2, &pgno) == KVS_OK)
        pool_prefetch(t->pool, pgno, bytes);
    else
        *t->err = spare;
    if (e2 >= hi)
        return;
    b2 = lh_bucket_at(h, (uint32_t)e2, &e3);
    if (bucket_page(t, b2, &pgno) == KVS_OK)
        pool_prefetch_map(t->pool, pgno);
    else
        *t->err = spare;
#if defined(__GNUC__)
    if (e3 < hi) {
        b2 = lh_bucket_at(h, (uint32_t)e3, &e4);
        if (b2 < t->bmap_cap)
            __builtin_prefetch(&t->bmap[b2]);
    }
#endif
}

/* Copies the records of the bucket whose interval holds lb_rev that lie at
 * or beyond the bound (and below hi) into the cursor, and orders them.  The
 * bound is always an interval's start (or the range's): a rev, no key. */
static int collect(lh_cursor *c)
{
    lh *t = c->t;
    const kvs_hdr *h = pager_hdr(t->pg);
    uint64_t end;
    uint32_t b = lh_bucket_at(h, c->lb_rev, &end);
    size_t ne = 0, used = 0;
    chain_iter it;
    int rc;
    for (rc = chain_first(&it, t, b, NULL); rc == KVS_OK; rc = chain_next(&it)) {
        const uint8_t *pg = it.pg;
        uint32_t i, n = sp_nslots(pg);
        rc = kvs_grow(&c->ents, &c->ecap, ne + n, sizeof(lh_ent), t->err);
        if (!rc)
            rc = kvs_grow(&c->ord, &c->ocap, ne + n, sizeof(uint64_t), t->err);
        if (!rc)
            rc = kvs_grow(&c->buf, &c->bcap, used + PG_SIZE, 1, t->err);
        if (rc) {
            chain_end(&it);
            return rc;
        }
        for (i = 0; i < n; i++) {
            rec_view r;
            uint32_t rev = bitrev32(sp_tag(pg, i));
            lh_ent *e;
            if (rev < c->lb_rev || rev >= c->hi)
                continue;
            sp_record(pg, i, &r);
            if (c->skip_stamp && r.stamp == c->skip_stamp)
                continue;
            e = &c->ents[ne++];
            e->rev = rev;
            e->off = (uint32_t)used;
            e->len = sp_len(pg, i);
            e->klen = r.klen;
            e->koff = (uint16_t)(r.key - (pg + sp_off(pg, i)));
            memcpy(c->buf + used, pg + sp_off(pg, i), e->len);
            used += e->len;
        }
    }
    if (rc != CHAIN_END)
        return rc;
    /* the next bucket of the scan is known now: its primary page (the
     * first touch of each of its records was a cache miss, an eighth of a
     * full scan) is brought toward the cache while this one is sorted and
     * returned; the two after it are readied a step or two ahead */
    if (end < c->hi)
        prefetch_next(t, h, (uint32_t)end, c->hi, PG_SIZE);
    ord_sort(c->ord, ne, c->ents, c->buf);
    c->n = ne;
    c->idx = 0;
    c->interval_end = end;
    c->valid = 1;
    c->epoch = t->epoch;
    return KVS_OK;
}

int lh_cursor_next_cached(lh_cursor *c, kvs_slice *key, kvs_slice *val)
{
    const lh_ent *e;
    rec_view r;
    if (c->done || !c->valid || c->epoch != c->t->epoch || c->idx >= c->n)
        return KVS_NOTFOUND;
    e = &c->ents[(uint32_t)c->ord[c->idx]];
    rec_parse(c->buf + e->off, &r);
    if (r.flags & REC_EXTERNAL)
        return KVS_NOTFOUND;
    c->idx++;
    key->data = r.key;
    key->len = r.klen;
    val->data = r.val;
    val->len = r.vlen;
    return KVS_OK;
}

/* The copied record e, read again from the file as it is now (the handle
 * changed something since the copy was made): KVS_NOTFOUND if it is gone or
 * now carries the skip stamp, else its current value in c->vbuf. */
static int reread(lh_cursor *c, const lh_ent *e, kvs_slice *key, kvs_slice *val)
{
    lh *t = c->t;
    uint64_t stamp = 0;
    kvs_slice v;
    int rc;
    key->data = c->buf + e->off + e->koff;
    key->len = e->klen;
    rc = lh_get_stamped(t, key->data, key->len, &v, &stamp);
    if (rc)
        return rc;
    if (c->skip_stamp && stamp == c->skip_stamp)
        return KVS_NOTFOUND;
    rc = kvs_grow(&c->vbuf, &c->vcap, v.len ? v.len : 1, 1, t->err);
    if (rc)
        return rc;
    if (v.len)
        memcpy(c->vbuf, v.data, v.len);
    val->data = c->vbuf;
    val->len = v.len;
    return KVS_OK;
}

/* The copy is used up: the bound moves to the end of its interval (1), or
 * that end is the range's and the cursor is done (0). */
static int next_interval(lh_cursor *c)
{
    if (c->interval_end >= c->hi) {
        c->done = 1;
        return 0;
    }
    c->lb_rev = (uint32_t)c->interval_end;
    return 1;
}

/*
 * The records of a bucket are returned from the copy collect made, in
 * (rev, key) order, and the bound moves to the bucket's interval end only when the
 * copy is used up.  While the handle's epoch is the copy's, the copy is
 * what the file holds for this handle.  When it changed meanwhile (a write
 * of this handle, or another process's seen at a section's start), the
 * rest of the copy is only a list of keys: each is read again from the
 * file (lh_get), returned as it is now, or skipped if gone.  So a record
 * present for the whole scan is returned exactly once: before the epoch
 * changed from the copy, after it by its key (a split never moves a record
 * out of its interval, so no later bucket holds it), and the bound passes
 * the interval only once the copy is done; one deleted meanwhile is not
 * returned, one inserted into the interval meanwhile is not either (the
 * "may or may not be seen"), and no copied value outlives a change of this
 * handle (an external value's pages may have been freed).
 */
int lh_cursor_next(lh_cursor *c, kvs_slice *key, kvs_slice *val)
{
    lh *t = c->t;
    int rc;
    for (;;) {
        if (c->done)
            return KVS_NOTFOUND;
        if (c->valid) {
            if (c->idx < c->n) {
                const lh_ent *e = &c->ents[(uint32_t)c->ord[c->idx++]];
                rec_view r;
                if (c->epoch != t->epoch) {
                    rc = reread(c, e, key, val);
                    if (rc == KVS_NOTFOUND)
                        continue;
                    return rc;
                }
                rec_parse(c->buf + e->off, &r);
                key->data = r.key;
                key->len = r.klen;
                if (r.flags & REC_EXTERNAL) {
                    rc = kvs_grow(&c->vbuf, &c->vcap, r.vlen, 1, t->err);
                    if (!rc)
                        rc = vchain_read(t->pool, r.vpage, r.vlen, c->vbuf);
                    if (rc)
                        return rc;
                    val->data = c->vbuf;
                } else {
                    val->data = r.val;
                }
                val->len = r.vlen;
                return KVS_OK;
            }
            if (!next_interval(c))
                return KVS_NOTFOUND;
        }
        c->valid = 0;
        rc = collect(c);
        if (rc)
            return rc;
    }
}

/*
 * What lh_cursor_next would return up to the end of the current bucket's
 * interval, counted and passed over: the rest of the copy (read again key
 * by key if the epoch moved, as lh_cursor_next does), else the next
 * bucket's chain walked page by page -- every page fetched, so checked, as
 * collect fetches it -- with nothing copied or ordered.  The bound moves
 * past the bucket as it does when a copy is used up, so counting and
 * lh_cursor_next mix with the same exactly-once guarantee.  A bucket whose
 * whole interval is in range and no skip stamp is counted from its pages'
 * slot counts; otherwise each slot's tag (and, with a skip stamp, its
 * record's stamp) is looked at.
 */
int lh_cursor_count(lh_cursor *c, uint64_t *n)
{
    lh *t = c->t;
    const kvs_hdr *h;
    uint64_t end, cnt = 0;
    uint32_t b;
    int whole, rc;
    chain_iter it;
    *n = 0;
    if (c->done)
        return KVS_NOTFOUND;
    if (c->valid) {
        if (c->idx < c->n) {
            if (c->epoch == t->epoch) {
                *n = c->n - c->idx;
                c->idx = c->n;
                return KVS_OK;
            }
            while (c->idx < c->n) {
                kvs_slice k, v;
                rc = reread(c, &c->ents[(uint32_t)c->ord[c->idx++]], &k, &v);
                if (rc == KVS_OK)
                    cnt++;
                else if (rc != KVS_NOTFOUND)
                    return rc;
            }
            *n = cnt;
            return KVS_OK;
        }
        if (!next_interval(c))
            return KVS_NOTFOUND;
    }
    c->valid = 0;
    h = pager_hdr(t->pg);
    b = lh_bucket_at(h, c->lb_rev, &end);
    /* the interval of bucket b starts at bitrev32(b) (its low bits, reversed) */
    whole = !c->skip_stamp && bitrev32(b) >= c->lb_rev && end <= c->hi;
    for (rc = chain_first(&it, t, b, NULL); rc == KVS_OK; rc = chain_next(&it)) {
        const uint8_t *pg = it.pg;
        uint32_t i, m = sp_nslots(pg);
        if (whole) {
            cnt += m;
            continue;
        }
        for (i = 0; i < m; i++) {
            uint32_t rev = bitrev32(sp_tag(pg, i));
            if (rev < c->lb_rev || rev >= c->hi)
                continue;
            if (c->skip_stamp) {
                rec_view r;
                sp_record(pg, i, &r);
                if (r.stamp == c->skip_stamp)
                    continue;
            }
            cnt++;
        }
    }
    if (rc != CHAIN_END)
        return rc;
    /* a whole bucket is counted from its pages' headers, and so most
     * likely the next one: only its header is brought in ahead (a page's
     * 64 lines would crowd the core's line-fill buffers with bytes no one
     * reads) */
    if (end < c->hi)
        prefetch_next(t, h, (uint32_t)end, c->hi, whole ? PG_HDR : PG_SIZE);
    c->n = c->idx = 0;
    c->interval_end = end;
    c->valid = 1;
    c->epoch = t->epoch;
    *n = cnt;
    return KVS_OK;
}

/* ---- integrity check -------------------------------------------------------- */

struct chk {
    uint8_t  *bits;
    uint32_t  npages;
    kvs_err  *err;
};

static int visit(uint32_t pgno, int type, void *arg)
{
    chk *k = arg;
    if (pgno >= k->npages)
        return kvs_seterr(k->err, KVS_ECORRUPT, pgno, "page %u (%s) is beyond the file's %u pages",
                          (unsigned)pgno, page_type_name(type), (unsigned)k->npages);
    if (k->bits[pgno >> 3] & (1u << (pgno & 7)))
        return kvs_seterr(k->err, KVS_ECORRUPT, pgno,
                          "page %u is reached twice (the second time as type %s)", (unsigned)pgno,
                          page_type_name(type));
    k->bits[pgno >> 3] |= (uint8_t)(1u << (pgno & 7));
    return KVS_OK;
}

/* Checks the records of the chain page the iterator is on (invariants 4, 5
 * and 6 of the README) and adds them to the totals and, keys only, to
 * t->ents/t->sbuf for the duplicate check. */
static int check_chain_records(lh *t, chk *k, const chain_iter *it, size_t *ne, size_t *used,
                               uint64_t *records, uint64_t *bytes, uint64_t *vpages)
{
    const kvs_hdr *h = pager_hdr(t->pg);
    const uint8_t *pg = it->pg;
    uint32_t pgno = it->pgno, b = it->b, n = sp_nslots(pg), s;
    int rc;
    if (it->hops > 1 && n == 0)
        return kvs_seterr(t->err, KVS_ECORRUPT, pgno, "page %u: empty overflow page in bucket %u",
                          (unsigned)pgno, (unsigned)b);
    rc = kvs_grow(&t->ents, &t->ecap, *ne + n, sizeof(lh_ent), t->err);
    if (!rc)
        rc = kvs_grow(&t->sbuf, &t->scap, *used + PG_SIZE, 1, t->err);
    if (rc)
        return rc;
    for (s = 0; s < n; s++) {
        rec_view r;
        uint32_t tag = sp_tag(pg, s), htag;
        lh_ent *e;
        sp_record(pg, s, &r);
        htag = (uint32_t)lh_hash(t, r.key, r.klen);
        if (htag != tag)
            return kvs_seterr(t->err, KVS_ECORRUPT, pgno,
                              "page %u: slot %u's hash tag %08x does not match its key's %08x",
                              (unsigned)pgno, (unsigned)s, (unsigned)tag, (unsigned)htag);
        if (bucket_of(h, tag) != b)
            return kvs_seterr(t->err, KVS_ECORRUPT, pgno,
                              "page %u: slot %u belongs in bucket %u, found in bucket %u",
                              (unsigned)pgno, (unsigned)s, (unsigned)bucket_of(h, tag), (unsigned)b);
        if (r.flags & REC_EXTERNAL) {
            /* r points into the iterator's copy of the page */
            rc = vchain_walk(t->pool, r.vpage, r.vlen, visit, k);
            if (rc)
                return rc;
            *vpages += vchain_pages(r.vlen);
        }
        (*records)++;
        *bytes += sp_len(pg, s) + SLOT_SIZE;
        e = &t->ents[(*ne)++];
        e->rev = tag;
        e->off = (uint32_t)*used;
        e->klen = r.klen;
        e->koff = 0;
        e->len = r.klen;
        if (r.klen)
            memcpy(t->sbuf + *used, r.key, r.klen);
        *used += r.klen;
    }
    return KVS_OK;
}

static int check_bucket(lh *t, chk *k, uint32_t b, uint64_t *records, uint64_t *bytes,
                        uint64_t *ovfl, uint64_t *vpages)
{
    uint8_t copy[PG_SIZE];
    size_t ne = 0, used = 0, i;
    chain_iter it;
    int rc;
    for (rc = chain_first(&it, t, b, k); rc == KVS_OK; rc = chain_next(&it)) {
        /* value chains are walked from the copy, with no lock held */
        chain_copy(&it, copy);
        if (it.hops > 1)
            (*ovfl)++;
        rc = check_chain_records(t, k, &it, &ne, &used, records, bytes, vpages);
        if (rc) {
            chain_end(&it);
            return rc;
        }
    }
    if (rc != CHAIN_END)
        return rc;
    rc = kvs_grow(&t->ord, &t->ocap, ne, sizeof(uint64_t), t->err);
    if (rc)
        return rc;
    ord_sort(t->ord, ne, t->ents, t->sbuf);
    for (i = 1; i < ne; i++) {
        const lh_ent *e = &t->ents[(uint32_t)t->ord[i]];
        if (ent_cmp(&t->ents[(uint32_t)t->ord[i - 1]], e, t->sbuf) == 0)
            return kvs_seterr(t->err, KVS_ECORRUPT, 0,
                              "bucket %u holds a key twice (%u bytes, tag %08x)",
                              (unsigned)b, (unsigned)e->klen, (unsigned)e->rev);
    }
    return KVS_OK;
}

int lh_check(lh *t)
{
    const kvs_hdr *h = pager_hdr(t->pg);
    uint64_t nb = hdr_buckets(h), records = 0, bytes = 0, ovfl = 0, vpages = 0, b;
    uint32_t pgno, nfree = 0, i;
    chk k;
    int rc;
    k.npages = hdr_npages(h);
    k.err = t->err;
    k.bits = calloc((size_t)hdr_npages(h) / 8 + 1, 1);
    if (!k.bits)
        return kvs_seterr(t->err, KVS_ENOMEM, 0, "out of memory");
    rc = visit(0, KVS_PAGE_HEADER, &k);
    if (!rc)
        rc = dir_walk(t->pool, nb, visit, &k);
    for (b = 0; !rc && b < nb; b++)
        rc = check_bucket(t, &k, (uint32_t)b, &records, &bytes, &ovfl, &vpages);
    for (pgno = hdr_free_head(h); !rc && pgno != NO_PAGE;) {
        uint32_t fi;
        uint8_t *pg;
        rc = visit(pgno, KVS_PAGE_FREE, &k);
        if (!rc)
            rc = pool_fetch(t->pool, pgno, 0, &fi, &pg);
        if (rc)
            break;
        pool_lock(t->pool, fi, POOL_SHARED);
        if (pg[PG_TYPE] != KVS_PAGE_FREE)
            rc = kvs_seterr(t->err, KVS_ECORRUPT, pgno, "page %u: on the free list but of type %u",
                            (unsigned)pgno, pg[PG_TYPE]);
        nfree++;
        pgno = rd32(pg + PG_NEXT);
        pool_release(t->pool, fi);
    }
    for (i = 1; !rc && i < hdr_npages(h); i++)
        if (!(k.bits[i >> 3] & (1u << (i & 7))))
            rc = kvs_seterr(t->err, KVS_ECORRUPT, i,
                            "page %u is in no chain, not in the directory and not on the free list",
                            (unsigned)i);
    if (!rc && (records != hdr_records(h) || bytes != hdr_data_bytes(h) ||
                ovfl != hdr_pages_of(h, KVS_PAGE_OVERFLOW) ||
                vpages != hdr_pages_of(h, KVS_PAGE_VALUE) || nfree != hdr_free_count(h)))
        rc = kvs_seterr(t->err, KVS_ECORRUPT, 0,
                        "page 0: header counts (records %llu, bytes %llu, overflow %u, value %u, free %u) "
                        "differ from the file's (%llu, %llu, %llu, %llu, %u)",
                        (unsigned long long)hdr_records(h), (unsigned long long)hdr_data_bytes(h),
                        (unsigned)hdr_pages_of(h, KVS_PAGE_OVERFLOW),
                        (unsigned)hdr_pages_of(h, KVS_PAGE_VALUE), (unsigned)hdr_free_count(h),
                        (unsigned long long)records, (unsigned long long)bytes,
                        (unsigned long long)ovfl, (unsigned long long)vpages, (unsigned)nfree);
    free(k.bits);
    return rc;
}
