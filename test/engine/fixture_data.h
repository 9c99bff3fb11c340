/*
 * fixture_data.h - the records of the format fixtures (test/engine/fixtures/
 * v<N>.kvs): record i (0 <= i < FX_RECORDS) has the key "fx-%05u" and a
 * value of fx_vlen(i) bytes, byte j being 'a' + (i * 7 + j) % 26.  Most
 * values are small (1 to 300 bytes); every 40th, from the 7th on, is 6,000
 * bytes and more (a value chain).  Made by the engine of the release that
 * wrote the format (test/engine/compat.sh --make-fixture), read back by
 * unit_format with this tree's engine.  Plain C99, no engine header: the
 * fixture maker is built against older engines too (fx_first_wrong needs
 * kvs.h included first; kvs_get is in every release).
 */
#ifndef KVS_FIXTURE_DATA_H
#define KVS_FIXTURE_DATA_H

#include <stdio.h>
#include <string.h>

#define FX_RECORDS 120
#define FX_VMAX    (6000 + FX_RECORDS)

static inline size_t fx_vlen(unsigned i)
{
    return i % 40 == 7 ? 6000 + i : 1 + (i * 37) % 300;
}

static inline size_t fx_key(unsigned i, char *buf, size_t len)
{
    return (size_t)snprintf(buf, len, "fx-%05u", i);
}

/* The value of record i into buf (at least FX_VMAX bytes); its length. */
static inline size_t fx_value(unsigned i, char *buf)
{
    size_t n = fx_vlen(i), j;
    for (j = 0; j < n; j++)
        buf[j] = (char)('a' + (i * 7 + j) % 26);
    return n;
}

#ifdef KVS_H
/* The first fixture record that db does not read back exactly (by get),
 * FX_RECORDS when every one does; *rc is that get's code (KVS_OK when it
 * read a value that differs).  buf: at least FX_VMAX bytes. */
static inline unsigned fx_first_wrong(kvs *db, char *buf, int *rc)
{
    char k[32];
    unsigned i;
    kvs_slice v;
    for (i = 0; i < FX_RECORDS; i++) {
        size_t kl = fx_key(i, k, sizeof k), vl = fx_value(i, buf);
        *rc = kvs_get(db, k, kl, &v);
        if (*rc != KVS_OK || v.len != vl || memcmp(v.data, buf, vl) != 0)
            return i;
    }
    *rc = KVS_OK;
    return i;
}
#endif

#endif
