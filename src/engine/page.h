/*
 * page.h - the slotted page (bucket and overflow pages) and the record
 * format, plus structural validation of every page type as it comes off the
 * disk, so nothing above ever walks out of a page however damaged the file.
 *
 * Slotted page: common header (util.h), slot array from offset 24 upward
 * (SLOT_* fields below), records packed from the end of the page downward,
 * always contiguous (delete compacts), so free space is exactly
 * upper - (24 + 8 * nslots).
 *
 * Record: the REC_* fields below, [u64 stamp if REC_STAMPED], key bytes,
 * then the value bytes, or for REC_EXTERNAL a u32 first page of the value
 * chain holding all value-length bytes.
 */
#ifndef KVS_PAGE_H
#define KVS_PAGE_H

#include "util.h"

/* slot i lives at PG_HDR + SLOT_SIZE * i; its fields, from there: */
#define SLOT_OFF         0      /* u16 record offset in the page */
#define SLOT_LEN         2      /* u16 record length */
#define SLOT_TAG         4      /* u32 hash tag: low 32 bits of the key's hash */
#define SLOT_SIZE        8

/* record fields, from the record's first byte: */
#define REC_FLAGS        0      /* u8  REC_EXTERNAL | REC_STAMPED */
#define REC_KLEN         1      /* u16 key length */
#define REC_VLEN         3      /* u32 value length (the full length, also if external) */
#define REC_FIXED        7      /* end of the fixed fields: the stamp or the key starts here */
#define REC_STAMP_SIZE   8      /* u64 statement stamp, only if REC_STAMPED */
#define REC_VPAGE_SIZE   4      /* u32 first value page, after the key, only if REC_EXTERNAL */

#define REC_EXTERNAL     0x1
#define REC_STAMPED      0x2
#define REC_INLINE_MAX   1100   /* larger records keep their value in a chain */
#define SP_MAX_SLOTS     ((PG_USABLE) / (SLOT_SIZE + REC_FIXED))

typedef struct rec_view {
    uint8_t        flags;
    uint16_t       klen;
    uint32_t       vlen;       /* full value length */
    uint64_t       stamp;
    const uint8_t *key;
    const uint8_t *val;        /* inline value, NULL if external */
    uint32_t       vpage;      /* first value page if external */
} rec_view;

static inline uint32_t sp_nslots(const uint8_t *pg) { return rd16(pg + PG_NSLOTS); }
static inline uint32_t sp_upper(const uint8_t *pg) { return rd16(pg + PG_UPPER); }
static inline uint32_t sp_free(const uint8_t *pg)
{
    return sp_upper(pg) - (PG_HDR + SLOT_SIZE * sp_nslots(pg));
}
static inline uint32_t sp_tag(const uint8_t *pg, uint32_t i)
{
    return rd32(pg + PG_HDR + SLOT_SIZE * i + SLOT_TAG);
}
static inline uint32_t sp_off(const uint8_t *pg, uint32_t i)
{
    return rd16(pg + PG_HDR + SLOT_SIZE * i + SLOT_OFF);
}
static inline uint32_t sp_len(const uint8_t *pg, uint32_t i)
{
    return rd16(pg + PG_HDR + SLOT_SIZE * i + SLOT_LEN);
}
/* Where a record's key starts (after the fixed fields and the stamp). */
static inline uint32_t rec_key_off(const uint8_t *rec)
{
    return REC_FIXED + ((rec[REC_FLAGS] & REC_STAMPED) ? REC_STAMP_SIZE : 0);
}

void   sp_format(uint8_t *pg, int type, uint32_t bucket);
/* sp_format of a page known to be all zero (pool_alloc's): no memset. */
static inline void sp_format_zeroed(uint8_t *pg, int type, uint32_t bucket)
{
    pg[PG_TYPE] = (uint8_t)type;
    wr32(pg + PG_AUX, bucket);
    wr16(pg + PG_UPPER, PG_SIZE);
}
/* Slot index of key (tag compared first), or -1. */
int    sp_find(const uint8_t *pg, uint32_t tag, const void *key, size_t klen);
void   sp_record(const uint8_t *pg, uint32_t slot, rec_view *r);
void   rec_parse(const uint8_t *rec, rec_view *r);   /* a validated record */
/* Reserves len record bytes + a slot (caller checked sp_free); returns where
 * to write the record. */
uint8_t *sp_reserve(uint8_t *pg, uint32_t tag, uint32_t len);
void   sp_delete(uint8_t *pg, uint32_t slot);
/* Record bytes for a key/value; *external says whether the value must live
 * in a value chain. */
size_t rec_size(size_t klen, size_t vlen, int stamped, int *external);
void   rec_encode(uint8_t *dst, size_t klen, const void *key, size_t vlen,
                  const void *val, uint64_t stamp, int external, uint32_t vpage);

/* Structure of any page read from disk (after its checksum passed). */
int    page_validate(const uint8_t *pg, uint32_t pgno, uint32_t npages, kvs_err *err);

/* Name of a KVS_PAGE_* type, the one table of them ("header", "dir",
 * "bucket", "overflow", "value", "free"; 0, which kvs_page_info uses for an
 * unreadable page, is "unreadable"; anything else "unknown"). */
const char *page_type_name(int type);

#endif
