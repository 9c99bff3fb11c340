/*
 * page.c - slotted pages and records (see page.h), and the structural
 * validation applied to every page read from the file.
 */
#include "page.h"

void sp_format(uint8_t *pg, int type, uint32_t bucket)
{
    memset(pg, 0, PG_SIZE);
    pg[PG_TYPE] = (uint8_t)type;
    wr32(pg + PG_AUX, bucket);
    wr16(pg + PG_UPPER, PG_SIZE);
}

int sp_find(const uint8_t *pg, uint32_t tag, const void *key, size_t klen)
{
    uint32_t i, n = sp_nslots(pg);
    const uint8_t *s = pg + PG_HDR;
    for (i = 0; i < n; i++, s += SLOT_SIZE) {
        if (rd32(s + SLOT_TAG) == tag) {
            const uint8_t *rec = pg + rd16(s + SLOT_OFF);
            if (rd16(rec + REC_KLEN) == klen && (klen == 0 ||
                memcmp(rec + rec_key_off(rec), key, klen) == 0))
                return (int)i;
        }
    }
    return -1;
}

void sp_record(const uint8_t *pg, uint32_t slot, rec_view *r)
{
    rec_parse(pg + sp_off(pg, slot), r);
}

void rec_parse(const uint8_t *rec, rec_view *r)
{
    const uint8_t *p = rec + REC_FIXED;
    r->flags = rec[REC_FLAGS];
    r->klen = rd16(rec + REC_KLEN);
    r->vlen = rd32(rec + REC_VLEN);
    r->stamp = 0;
    if (r->flags & REC_STAMPED) {
        r->stamp = rd64(p);
        p += REC_STAMP_SIZE;
    }
    r->key = p;
    p += r->klen;
    if (r->flags & REC_EXTERNAL) {
        r->val = NULL;
        r->vpage = rd32(p);
    } else {
        r->val = p;
        r->vpage = 0;
    }
}

uint8_t *sp_reserve(uint8_t *pg, uint32_t tag, uint32_t len)
{
    uint32_t n = sp_nslots(pg), upper = sp_upper(pg) - len;
    uint8_t *s = pg + PG_HDR + SLOT_SIZE * n;
    wr16(s + SLOT_OFF, (uint16_t)upper);
    wr16(s + SLOT_LEN, (uint16_t)len);
    wr32(s + SLOT_TAG, tag);
    wr16(pg + PG_NSLOTS, (uint16_t)(n + 1));
    wr16(pg + PG_UPPER, (uint16_t)upper);
    return pg + upper;
}

/* Removes a slot and closes the hole in the record area, keeping records
 * contiguous so free space never fragments.  Pages the engine writes keep
 * their slots in descending record offset (every record is reserved at
 * upper, and a delete keeps the order), so the record at upper is the last
 * slot's.  When it has the deleted record's length, it moves into the hole
 * and its slot into the deleted one's place: the order holds, and the
 * delete costs one record copy whatever the page holds.  Otherwise (another
 * length, or a page whose slots are in another order: the format allows any)
 * the records below the hole move up by its length and the slots after it
 * down by one, every offset below the hole rewritten. */
void sp_delete(uint8_t *pg, uint32_t slot)
{
    uint32_t n = sp_nslots(pg), upper = sp_upper(pg), last = n - 1;
    uint32_t off = sp_off(pg, slot), len = sp_len(pg, slot), i;
    uint8_t *s = pg + PG_HDR + SLOT_SIZE * slot, *ls = pg + PG_HDR + SLOT_SIZE * last;
    if (slot == last && off == upper) {
        /* the lowest record: nothing moves */
    } else if (slot != last && rd16(ls + SLOT_OFF) == upper && rd16(ls + SLOT_LEN) == len) {
        memcpy(pg + off, pg + upper, len);
        memcpy(s, ls, SLOT_SIZE);
        wr16(s + SLOT_OFF, (uint16_t)off);
    } else {
        memmove(pg + upper + len, pg + upper, off - upper);
        memmove(s, s + SLOT_SIZE, SLOT_SIZE * (n - slot - 1));
        for (i = 0; i < last; i++) {
            uint32_t o = sp_off(pg, i);
            if (o < off)
                wr16(pg + PG_HDR + SLOT_SIZE * i + SLOT_OFF, (uint16_t)(o + len));
        }
    }
    memset(pg + upper, 0, len);
    memset(ls, 0, SLOT_SIZE);
    wr16(pg + PG_NSLOTS, (uint16_t)last);
    wr16(pg + PG_UPPER, (uint16_t)(upper + len));
}

size_t rec_size(size_t klen, size_t vlen, int stamped, int *external)
{
    size_t base = REC_FIXED + (stamped ? REC_STAMP_SIZE : 0) + klen;
    if (base + vlen <= REC_INLINE_MAX) {
        *external = 0;
        return base + vlen;
    }
    *external = 1;
    return base + REC_VPAGE_SIZE;
}

void rec_encode(uint8_t *dst, size_t klen, const void *key, size_t vlen,
                const void *val, uint64_t stamp, int external, uint32_t vpage)
{
    uint8_t *p = dst + REC_FIXED;
    dst[REC_FLAGS] = (uint8_t)((external ? REC_EXTERNAL : 0) | (stamp ? REC_STAMPED : 0));
    wr16(dst + REC_KLEN, (uint16_t)klen);
    wr32(dst + REC_VLEN, (uint32_t)vlen);
    if (stamp) {
        wr64(p, stamp);
        p += REC_STAMP_SIZE;
    }
    if (klen)
        memcpy(p, key, klen);
    p += klen;
    if (external)
        wr32(p, vpage);
    else if (vlen)
        memcpy(p, val, vlen);
}

static int bad(kvs_err *err, uint32_t pgno, const char *what, unsigned a, unsigned b)
{
    return kvs_seterr(err, KVS_ECORRUPT, pgno, "page %u: %s (%u, %u)", (unsigned)pgno, what, a, b);
}

static int validate_slotted(const uint8_t *pg, uint32_t pgno, uint32_t npages, kvs_err *err)
{
    uint32_t n = sp_nslots(pg), upper = sp_upper(pg), i, j;
    uint16_t offs[SP_MAX_SLOTS], lens[SP_MAX_SLOTS];
    uint32_t pos;
    if (n > SP_MAX_SLOTS || PG_HDR + SLOT_SIZE * n > upper || upper > PG_SIZE)
        return bad(err, pgno, "slot count / record area start out of range", n, upper);
    for (i = 0; i < n; i++) {
        uint32_t off = sp_off(pg, i), len = sp_len(pg, i), want, klen, vlen;
        const uint8_t *rec;
        uint8_t fl;
        if (off < upper || len < REC_FIXED || off + len > PG_SIZE)
            return bad(err, pgno, "slot points outside the record area", i, off);
        rec = pg + off;
        fl = rec[REC_FLAGS];
        klen = rd16(rec + REC_KLEN);
        vlen = rd32(rec + REC_VLEN);
        if (fl & ~(REC_EXTERNAL | REC_STAMPED))
            return bad(err, pgno, "record has unknown flags", i, fl);
        if (klen > KVS_MAX_KEY)
            return bad(err, pgno, "record key too long", i, klen);
        if (vlen > KVS_MAX_VALUE)
            return bad(err, pgno, "record value too long", i, vlen);
        want = rec_key_off(rec) + klen;
        if (fl & REC_EXTERNAL) {
            uint32_t vp;
            want += REC_VPAGE_SIZE;
            if (want != len)
                return bad(err, pgno, "record length does not match its fields", i, len);
            vp = rd32(rec + want - REC_VPAGE_SIZE);
            if (vp == NO_PAGE || vp >= npages)
                return bad(err, pgno, "record's value chain page out of range", i, vp);
            if (want + vlen <= REC_INLINE_MAX)
                return bad(err, pgno, "record's value is external but small", i, vlen);
            /* a chain longer than the file is damage, found here before a
             * reader allocates a buffer for the value's claimed length */
            if (((uint64_t)vlen + PG_USABLE - 1) / PG_USABLE > (uint64_t)npages - 1)
                return bad(err, pgno, "record's value needs more pages than the file has", i, vlen);
        } else {
            want += vlen;
            if (want != len)
                return bad(err, pgno, "record length does not match its fields", i, len);
        }
        /* in reverse slot order: the engine keeps slots in descending
         * record offset, so this is almost always ascending already */
        offs[n - 1 - i] = (uint16_t)off;
        lens[n - 1 - i] = (uint16_t)len;
    }
    /* by offset, for the tiling check below: an insertion sort, one
     * comparison an entry on the usual order (inserting the slots in their
     * own order made that order its worst case, about n * n / 2 moves) */
    for (i = 1; i < n; i++) {
        uint16_t off = offs[i], len = lens[i];
        for (j = i; j > 0 && offs[j - 1] > off; j--) {
            offs[j] = offs[j - 1];
            lens[j] = lens[j - 1];
        }
        offs[j] = off;
        lens[j] = len;
    }
    /* records must tile [upper, page end) exactly: no overlap, no hole */
    pos = upper;
    for (i = 0; i < n; i++) {
        if (offs[i] != pos)
            return bad(err, pgno, "records overlap or leave a hole", i, offs[i]);
        pos += lens[i];
    }
    if (pos != PG_SIZE)
        return bad(err, pgno, "records do not reach the page end", n, pos);
    return KVS_OK;
}

int page_validate(const uint8_t *pg, uint32_t pgno, uint32_t npages, kvs_err *err)
{
    uint32_t next = rd32(pg + PG_NEXT);
    int type = pg[PG_TYPE];
    if (type < KVS_PAGE_DIR || type > KVS_PAGE_FREE)
        return bad(err, pgno, "unknown page type", (unsigned)type, 0);
    if (next >= npages)
        return bad(err, pgno, "next-page link beyond the file", next, npages);
    switch (type) {
    case KVS_PAGE_DIR:
        if (rd32(pg + PG_AUX) > 3 || rd16(pg + PG_NSLOTS) > PG_USABLE / 4 || next != NO_PAGE)
            return bad(err, pgno, "bad directory page header", rd32(pg + PG_AUX), next);
        return KVS_OK;
    case KVS_PAGE_BUCKET:
    case KVS_PAGE_OVERFLOW:
        return validate_slotted(pg, pgno, npages, err);
    case KVS_PAGE_VALUE:
        if (rd32(pg + PG_AUX) > PG_USABLE || rd32(pg + PG_AUX) == 0)
            return bad(err, pgno, "value page byte count out of range", rd32(pg + PG_AUX), 0);
        return KVS_OK;
    default:
        return KVS_OK;
    }
}

const char *page_type_name(int type)
{
    static const char *const names[] = {
        "unreadable", "header", "dir", "bucket", "overflow", "value", "free"
    };
    return type >= 0 && type <= KVS_PAGE_FREE ? names[type] : "unknown";
}
