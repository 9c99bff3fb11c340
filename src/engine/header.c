/*
 * header.c - the file header (page 0): encoding, decoding with every
 * validation, the set-up of a new, emptied or compacted header, the upgrade
 * of an older version's, and the choice of a file id.  The only file
 * besides header.h that touches kvs_hdr's fields (see header.h).
 */
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(__linux__) && defined(__has_include)
#if __has_include(<sys/random.h>)
#include <sys/random.h>
#define KVS_HAVE_GETRANDOM 1
#endif
#endif
#include "pager.h"

void hdr_encode(const kvs_hdr *h, uint8_t *p)
{
    memset(p, 0, PG_SIZE);
    p[PG_TYPE] = KVS_PAGE_HEADER;
    memcpy(p + HD_MAGIC, KVS_MAGIC, 8);
    wr32(p + HD_VERSION, h->file_id ? KVS_FORMAT_VERSION : h->version);
    wr32(p + HD_PAGESIZE, PG_SIZE);
    wr64(p + HD_SEED, h->hash_seed);
    wr32(p + HD_LEVEL, h->level);
    wr32(p + HD_SPLIT, h->split);
    wr64(p + HD_RECORDS, h->records);
    wr64(p + HD_DATABYTES, h->data_bytes);
    wr32(p + HD_NPAGES, h->npages);
    wr32(p + HD_FREEHEAD, h->free_head);
    wr32(p + HD_FREECOUNT, h->free_count);
    wr32(p + HD_DIRROOT, h->dir_root);
    wr32(p + HD_DIRDEPTH, h->dir_depth);
    wr32(p + HD_OVFLPAGES, h->overflow_pages);
    wr32(p + HD_VALPAGES, h->value_pages);
    wr32(p + HD_DIRPAGES, h->dir_pages);
    wr64(p + HD_CHANGE, h->change_counter);
    wr64(p + HD_STAMP, h->stamp_counter);
    wr32(p + HD_FILLFACTOR, h->fillfactor);
    wr32(p + HD_DESCLEN, h->desc_len);
    wr32(p + HD_FLAGS, h->flags);
    memcpy(p + HD_DESC, h->desc, h->desc_len <= KVS_MAX_DESCRIPTOR ? h->desc_len : 0);
    wr64(p + HD_FILEID, h->file_id);
    /* a version-1/2 header not upgraded yet is written as read: owner 0 */
    wr64(p + HD_OWNER, h->file_id ? h->owner_id : 0);
    if (h->file_id) {
        wr64(p + HD_JLSN, h->journal_lsn);
        wr32(p + HD_JPATHLEN, h->jpath_len <= KVS_HDR_JPATH_MAX ? h->jpath_len : 0);
        memcpy(p + HD_JPATH, h->jpath, h->jpath_len <= KVS_HDR_JPATH_MAX ? h->jpath_len : 0);
    }
    pager_seal(p, 0);
}

int hdr_decode(const uint8_t *p, size_t len, kvs_hdr *h, kvs_err *err)
{
    uint32_t v, ps;
    uint64_t stored, calc;
    if ((len >= HD_MAGIC + 8 && memcmp(p + HD_MAGIC, KVS_MAGIC, 8) != 0) ||
        (len > HD_MAGIC && len < HD_MAGIC + 8 && memcmp(p + HD_MAGIC, KVS_MAGIC, len - HD_MAGIC) != 0))
        return kvs_seterr(err, KVS_ENOTKVS, 0, "page 0: not a kvs file (bad magic)");
    if (len < PG_SIZE)
        return kvs_seterr(err, KVS_ETRUNCATED, 0,
                          "page 0: file is %zu bytes, shorter than its %d-byte header page",
                          len, PG_SIZE);
    v = rd32(p + HD_VERSION);
    if (v < KVS_FORMAT_VERSION_MIN || v > KVS_FORMAT_VERSION)
        return kvs_seterr(err, KVS_EVERSION, 0,
                          "page 0: file format version %u, this engine reads versions %u to %u",
                          (unsigned)v, KVS_FORMAT_VERSION_MIN, KVS_FORMAT_VERSION);
    ps = rd32(p + HD_PAGESIZE);
    if (ps != PG_SIZE)
        return kvs_seterr(err, KVS_ECORRUPT, 0, "page 0: page size %u, expected %d",
                          (unsigned)ps, PG_SIZE);
    stored = rd64(p + PG_CKSUM);
    calc = pager_checksum(p, 0);
    if (stored != calc)
        return kvs_seterr(err, KVS_ECORRUPT, 0,
                          "page 0: header checksum mismatch (stored %016llx, computed %016llx)",
                          (unsigned long long)stored, (unsigned long long)calc);
    if (p[PG_TYPE] != KVS_PAGE_HEADER)
        return kvs_seterr(err, KVS_ECORRUPT, 0, "page 0: type %u, expected header", p[PG_TYPE]);
    h->hash_seed = rd64(p + HD_SEED);
    h->level = rd32(p + HD_LEVEL);
    h->split = rd32(p + HD_SPLIT);
    h->records = rd64(p + HD_RECORDS);
    h->data_bytes = rd64(p + HD_DATABYTES);
    h->npages = rd32(p + HD_NPAGES);
    h->free_head = rd32(p + HD_FREEHEAD);
    h->free_count = rd32(p + HD_FREECOUNT);
    h->dir_root = rd32(p + HD_DIRROOT);
    h->dir_depth = rd32(p + HD_DIRDEPTH);
    h->overflow_pages = rd32(p + HD_OVFLPAGES);
    h->value_pages = rd32(p + HD_VALPAGES);
    h->dir_pages = rd32(p + HD_DIRPAGES);
    h->change_counter = rd64(p + HD_CHANGE);
    h->stamp_counter = rd64(p + HD_STAMP);
    h->fillfactor = rd32(p + HD_FILLFACTOR);
    h->desc_len = rd32(p + HD_DESCLEN);
    h->version = v;
    /* version 1 had no flags: the word was reserved (and written as 0) */
    h->flags = v >= 2 ? rd32(p + HD_FLAGS) : 0;
    /* versions 1 and 2 had no id: every engine wrote those bytes as 0 (the
     * page is zeroed before encoding), but whatever they hold, an older
     * file has none yet */
    h->file_id = v >= 3 ? rd64(p + HD_FILEID) : 0;
    /* versions 1 to 3 had no owner (those bytes were 0 as well) */
    h->owner_id = v >= 4 ? rd64(p + HD_OWNER) : 0;
    /* versions 1 to 4 had no journal (those bytes were 0 too) */
    h->journal_lsn = v >= 5 ? rd64(p + HD_JLSN) : 0;
    h->jpath_len = v >= 5 ? rd32(p + HD_JPATHLEN) : 0;
    if (h->jpath_len > KVS_HDR_JPATH_MAX)
        return kvs_seterr(err, KVS_ECORRUPT, 0, "page 0: journal path length %u > %d",
                          (unsigned)h->jpath_len, KVS_HDR_JPATH_MAX);
    memset(h->jpath, 0, sizeof h->jpath);
    memcpy(h->jpath, p + HD_JPATH, h->jpath_len);
    if (v >= 3 && h->file_id == 0)
        return kvs_seterr(err, KVS_ECORRUPT, 0, "page 0: file id 0 in a version-%u header",
                          (unsigned)v);
    if (h->level > 31)
        return kvs_seterr(err, KVS_ECORRUPT, 0, "page 0: bad level %u", (unsigned)h->level);
    if (h->split >= ((uint64_t)1 << h->level))
        return kvs_seterr(err, KVS_ECORRUPT, 0, "page 0: split pointer %u >= 2^level",
                          (unsigned)h->split);
    if (h->npages < 3 || hdr_buckets(h) + 2 > h->npages)
        return kvs_seterr(err, KVS_ECORRUPT, 0, "page 0: page count %u too small for %llu buckets",
                          (unsigned)h->npages, (unsigned long long)hdr_buckets(h));
    if (h->free_head >= h->npages || h->free_count >= h->npages ||
        (h->free_head == 0) != (h->free_count == 0))
        return kvs_seterr(err, KVS_ECORRUPT, 0, "page 0: bad free list head %u / count %u",
                          (unsigned)h->free_head, (unsigned)h->free_count);
    if (h->dir_root == 0 || h->dir_root >= h->npages || h->dir_depth < 1 || h->dir_depth > 4)
        return kvs_seterr(err, KVS_ECORRUPT, 0, "page 0: bad directory root %u / depth %u",
                          (unsigned)h->dir_root, (unsigned)h->dir_depth);
    if (h->desc_len > KVS_MAX_DESCRIPTOR)
        return kvs_seterr(err, KVS_ECORRUPT, 0, "page 0: descriptor length %u > %d",
                          (unsigned)h->desc_len, KVS_MAX_DESCRIPTOR);
    if (h->fillfactor < 10 || h->fillfactor > 100)
        return kvs_seterr(err, KVS_ECORRUPT, 0, "page 0: fill factor %u out of 10..100",
                          (unsigned)h->fillfactor);
    if (h->flags & ~KVS_HDR_FLAGS_KNOWN)
        return kvs_seterr(err, KVS_ECORRUPT, 0, "page 0: unknown header flags %#x",
                          (unsigned)(h->flags & ~KVS_HDR_FLAGS_KNOWN));
    /* counts that drive splitting must fit the pages that hold them */
    if (h->data_bytes > ((uint64_t)hdr_buckets(h) + h->overflow_pages) * PG_SIZE ||
        h->records > h->data_bytes)
        return kvs_seterr(err, KVS_ECORRUPT, 0,
                          "page 0: %llu record bytes / %llu records do not fit %llu bucket and overflow pages",
                          (unsigned long long)h->data_bytes, (unsigned long long)h->records,
                          (unsigned long long)(hdr_buckets(h) + h->overflow_pages));
    if ((uint64_t)h->overflow_pages + h->value_pages + h->dir_pages + h->free_count
        + hdr_buckets(h) + 1 != h->npages)
        return kvs_seterr(err, KVS_ECORRUPT, 0,
                          "page 0: page counts do not add up to %u pages", (unsigned)h->npages);
    memcpy(h->desc, p + HD_DESC, h->desc_len);
    return KVS_OK;
}

void hdr_init(kvs_hdr *h, uint64_t seed, uint32_t fillfactor, const void *desc, size_t desc_len)
{
    memset(h, 0, sizeof *h);
    h->hash_seed = seed;
    h->fillfactor = fillfactor;
    hdr_set_desc(h, desc, desc_len);
    h->version = KVS_FORMAT_VERSION;
    h->file_id = hdr_new_file_id();
}

void hdr_reset_table(kvs_hdr *h)
{
    h->level = h->split = 0;
    h->records = h->data_bytes = 0;
    h->npages = 3;                      /* header, directory root, bucket 0 */
    h->free_head = h->free_count = 0;
    h->dir_root = 1;                    /* page 1, a leaf */
    h->dir_depth = 1;
    h->overflow_pages = h->value_pages = 0;
    h->dir_pages = 1;
}

void hdr_derive(kvs_hdr *dst, const kvs_hdr *src)
{
    hdr_init(dst, src->hash_seed, src->fillfactor, src->desc, src->desc_len);
    dst->stamp_counter = src->stamp_counter;
    dst->change_counter = src->change_counter + 1;
    dst->owner_id = src->owner_id;  /* the host that has it keeps it */
    /* the same journal; no record of the new identity exists yet (LSN 0) */
    hdr_set_journal(dst, 0, src->jpath, src->jpath_len);
}

void hdr_upgrade(kvs_hdr *h)
{
    if (h->file_id == 0)
        h->file_id = hdr_new_file_id();
    h->version = KVS_FORMAT_VERSION;
}

/* ---- file ids ---- */

uint64_t hdr_id_fallback(void)
{
    static uint64_t counter;
    struct {
        struct timespec rt, mono;
        uint64_t pid, count, addr;
    } in;
    uint64_t id;
    memset(&in, 0, sizeof in);  /* no padding bytes of unknown value */
    do {
        (void)clock_gettime(CLOCK_REALTIME, &in.rt);
        (void)clock_gettime(CLOCK_MONOTONIC, &in.mono);
        in.pid = (uint64_t)getpid();
        in.count = ++counter;
        /* a stack address: differs between processes under ASLR */
        in.addr = (uint64_t)(uintptr_t)&in;
        id = XXH3_64bits(&in, sizeof in);
    } while (id == 0);
    return id;
}

uint64_t hdr_new_file_id(void)
{
#ifdef KVS_HAVE_GETRANDOM
    uint64_t id = 0;
    ssize_t r;
    /* GRND_NONBLOCK: an id need not wait for the entropy pool at early
     * boot; the fallback serves then (and on kernels without the call) */
    do
        r = getrandom(&id, sizeof id, GRND_NONBLOCK);
    while (r < 0 && errno == EINTR);
    if (r == (ssize_t)sizeof id && id != 0)
        return id;
#endif
    return hdr_id_fallback();
}
