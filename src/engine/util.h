/*
 * util.h - small helpers shared by every engine layer: little-endian field
 * access (the on-disk byte order), the error record each handle carries
 * (kvs_seterr and kvs_seterrno are defined in err.c), and the constants of
 * the common page header.  Internal; hosts include kvs.h.
 */
#ifndef KVS_UTIL_H
#define KVS_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kvs.h"

/* ---- byte order: every on-disk integer is little-endian ------------------ */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define KVS_BSWAP16(x) __builtin_bswap16(x)
#define KVS_BSWAP32(x) __builtin_bswap32(x)
#define KVS_BSWAP64(x) __builtin_bswap64(x)
#else
#define KVS_BSWAP16(x) (x)
#define KVS_BSWAP32(x) (x)
#define KVS_BSWAP64(x) (x)
#endif

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return KVS_BSWAP16(v); }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return KVS_BSWAP32(v); }
static inline uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return KVS_BSWAP64(v); }
static inline void wr16(uint8_t *p, uint16_t v) { v = KVS_BSWAP16(v); memcpy(p, &v, 2); }
static inline void wr32(uint8_t *p, uint32_t v) { v = KVS_BSWAP32(v); memcpy(p, &v, 4); }
static inline void wr64(uint8_t *p, uint64_t v) { v = KVS_BSWAP64(v); memcpy(p, &v, 8); }

/* ---- errors: code + page + errno + message, one per handle ---------------- */
typedef struct kvs_err {
    int      code;
    uint32_t page;          /* page of the last ECORRUPT, else 0 */
    int      sys_errno;     /* errno of the last EIO/ENOSPC */
    char     msg[320];
} kvs_err;

/* Records the failure and returns code, so callers write
 * `return kvs_seterr(e, KVS_ECORRUPT, pg, "...", ...)`. */
int kvs_seterr(kvs_err *e, int code, uint32_t page, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Maps errno to KVS_ENOSPC / KVS_EIO and records it. */
int kvs_seterrno(kvs_err *e, int err, uint32_t page, const char *what);

/* ---- growing arrays (never in a hot path: callers grow ahead) ------------ */
/* Makes *bufp hold at least `need` elements of `elem` bytes: *cap (in
 * elements) doubles from 64 until it does; the contents are kept, the new
 * part is uninitialised.  KVS_ENOMEM (recorded in err) leaves both as they
 * were. */
static inline int kvs_grow(void *bufp, size_t *cap, size_t need, size_t elem, kvs_err *err)
{
    void **buf = bufp;
    size_t n;
    void *nb;
    if (need <= *cap)
        return KVS_OK;
    n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    nb = realloc(*buf, n * elem);
    if (!nb)
        return kvs_seterr(err, KVS_ENOMEM, 0, "out of memory (%zu bytes)", n * elem);
    *buf = nb;
    *cap = n;
    return KVS_OK;
}

/* ---- common page header (every page, page 0 included) --------------------- */
#define PG_CKSUM   0    /* u64 xxh3 of bytes 8..4095, seeded with the page number */
#define PG_TYPE    8    /* u8  KVS_PAGE_* */
#define PG_FLAGS   9    /* u8  reserved, 0 */
#define PG_NSLOTS  10   /* u16 slots (bucket/overflow), used entries (dir) */
#define PG_NEXT    12   /* u32 next page in the chain, 0 = none */
#define PG_AUX     16   /* u32 bucket number (bucket/overflow), bytes used
                         *     (value), tree height above leaves (dir) */
#define PG_UPPER   20   /* u16 slotted: start of the record area */
#define PG_RESV    22   /* u16 reserved, 0 */
#define PG_HDR     24   /* first byte of the body */
#define PG_SIZE    KVS_PAGE_SIZE
#define PG_USABLE  (PG_SIZE - PG_HDR)   /* 4072 body bytes */

#define NO_PAGE    0u    /* page 0 is the header, so 0 means "none" in links */

#endif
