/*
 * unit_page.c - unit tests of slotted pages and records (page.c): format,
 * reserve until full, find with equal hash tags, delete keeps the record
 * area contiguous and the other records intact, the inline/external size
 * rule, and structural validation: good pages pass, each kind of damage is
 * caught, and random damage never makes validation or parsing misbehave.
 *
 *   unit_page       200000 randomly damaged pages; KVS_TEST_QUICK=2
 *                   (valgrind): 40000 (ASan runs all of them)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "page.h"
#include "tap.h"

static void put(uint8_t *pg, uint32_t tag, const char *key, const char *val)
{
    int ext;
    size_t len = rec_size(strlen(key), strlen(val), 0, &ext);
    rec_encode(sp_reserve(pg, tag, (uint32_t)len), strlen(key), key, strlen(val), val, 0, ext, 0);
}

int main(void)
{
    static uint8_t pg[PG_SIZE], copy[PG_SIZE];
    char key[32], val[128];
    kvs_err err;
    rec_view r;
    int ext, i, n = 0, bad = 0, gone[3];
    size_t len;

    memset(&err, 0, sizeof err);
    sp_format(pg, KVS_PAGE_BUCKET, 9);
    tap_ok(sp_nslots(pg) == 0 && sp_free(pg) == PG_USABLE, "empty page: %u free bytes", sp_free(pg));
    TAP_RC(page_validate(pg, 3, 10, &err), KVS_OK);

    /* fill with 16/100 records: 4072 / (8 + 7 + 16 + 100) = 31 */
    memset(val, 'v', 100);
    val[100] = 0;
    for (;;) {
        sprintf(key, "key-%012d", n);
        len = rec_size(16, 100, 0, &ext);
        if (sp_free(pg) < len + SLOT_SIZE)
            break;
        put(pg, (uint32_t)(n % 3), key, val);   /* tags collide on purpose */
        n++;
    }
    tap_ok(n == 31, "31 records of 16+100 bytes fit in a page (%d)", n);
    tap_ok(len == 123 && !ext, "record of 16/100 is 123 bytes inline");
    TAP_RC(page_validate(pg, 3, 10, &err), KVS_OK);
    for (i = 0; i < n; i++) {
        sprintf(key, "key-%012d", i);
        if (sp_find(pg, (uint32_t)(i % 3), key, 16) != i)
            bad++;
    }
    tap_ok(bad == 0, "find each record among colliding tags");
    tap_ok(sp_find(pg, 1, "key-000000000000", 16) == -1, "right key with the wrong tag is not found");
    /* a middle slot, the first, the last; which key each held is read
     * before it goes (a delete may move the last slot into the hole) */
    {
        uint32_t which[3], k;
        which[0] = 10;
        which[1] = 0;
        which[2] = 0;
        for (k = 0; k < 3; k++) {
            uint32_t slot = k == 2 ? (uint32_t)sp_nslots(pg) - 1 : which[k];
            sp_record(pg, slot, &r);
            gone[k] = atoi((const char *)r.key + 4);
            sp_delete(pg, slot);
        }
    }
    TAP_RC(page_validate(pg, 3, 10, &err), KVS_OK);
    tap_ok(sp_nslots(pg) == 28 && sp_free(pg) == PG_USABLE - 28 * 131, "3 deletes: 28 slots, free space exact");
    tap_ok(gone[0] == 10 && gone[1] == 0 && gone[2] != 10 && gone[2] != 0, "the deletes took keys %d, %d, %d",
           gone[0], gone[1], gone[2]);
    bad = 0;
    for (i = 0; i < n; i++) {
        int s;
        sprintf(key, "key-%012d", i);
        s = sp_find(pg, (uint32_t)(i % 3), key, 16);
        if ((i == gone[0] || i == gone[1] || i == gone[2]) != (s < 0))
            bad++;
        if (s >= 0) {
            sp_record(pg, (uint32_t)s, &r);
            if (r.klen != 16 || r.vlen != 100 || memcmp(r.key, key, 16) || r.val[99] != 'v')
                bad++;
        }
    }
    tap_ok(bad == 0, "the other records are intact after compaction");

    /* size rule */
    tap_ok(rec_size(10, 1083, 0, &ext) == REC_INLINE_MAX && !ext, "a record of exactly %d bytes stays inline",
           REC_INLINE_MAX);
    rec_size(10, 1084, 0, &ext);
    tap_ok(ext, "one more byte goes external");
    tap_ok(rec_size(KVS_MAX_KEY, 5000, 1, &ext) == REC_FIXED + 8 + KVS_MAX_KEY + 4 && ext,
           "external record of the largest key with a stamp is %d bytes", REC_FIXED + 8 + KVS_MAX_KEY + 4);
    {
        uint8_t rec[64];
        rec_encode(rec, 3, "abc", 7, "1234567", 77, 0, 0);
        rec_parse(rec, &r);
        tap_ok(r.flags == REC_STAMPED && r.stamp == 77 && r.klen == 3 && r.vlen == 7 &&
               memcmp(r.val, "1234567", 7) == 0, "stamped record round trip");
    }

    /* targeted damage */
    memcpy(copy, pg, PG_SIZE);
    wr16(copy + PG_NSLOTS, 600);
    TAP_RC(page_validate(copy, 3, 10, &err), KVS_ECORRUPT);
    tap_ok(err.page == 3, "names the page: %s", err.msg);
    memcpy(copy, pg, PG_SIZE);
    wr16(copy + PG_HDR + 2, 200);                  /* slot 0 length */
    TAP_RC(page_validate(copy, 3, 10, &err), KVS_ECORRUPT);
    memcpy(copy, pg, PG_SIZE);
    wr16(copy + PG_HDR, (uint16_t)(sp_off(pg, 1)));   /* slot 0 overlaps slot 1 */
    TAP_RC(page_validate(copy, 3, 10, &err), KVS_ECORRUPT);
    memcpy(copy, pg, PG_SIZE);
    copy[sp_off(pg, 2)] = 0x80;                       /* unknown record flag */
    TAP_RC(page_validate(copy, 3, 10, &err), KVS_ECORRUPT);
    memcpy(copy, pg, PG_SIZE);
    wr32(copy + PG_NEXT, 10);                         /* link beyond a 10-page file */
    TAP_RC(page_validate(copy, 3, 10, &err), KVS_ECORRUPT);
    memcpy(copy, pg, PG_SIZE);
    copy[PG_TYPE] = 9;
    TAP_RC(page_validate(copy, 3, 10, &err), KVS_ECORRUPT);
    memcpy(copy, pg, PG_SIZE);
    copy[PG_TYPE] = KVS_PAGE_HEADER;
    TAP_RC(page_validate(copy, 3, 10, &err), KVS_ECORRUPT);
    {
        uint8_t v[PG_SIZE];
        memset(v, 0, sizeof v);
        v[PG_TYPE] = KVS_PAGE_VALUE;
        wr32(v + PG_AUX, PG_USABLE + 1);
        TAP_RC(page_validate(v, 4, 10, &err), KVS_ECORRUPT);
        wr32(v + PG_AUX, PG_USABLE);
        TAP_RC(page_validate(v, 4, 10, &err), KVS_OK);
    }

    /* random damage: validation decides, and on every page it accepts each
     * record parses to exactly its slot's bytes (key, then the inline value
     * or the value-chain pointer, ending where the slot says) and is found
     * again by its own tag and key, so nothing above can read outside it */
    srand(11);
    {
        int accepted = 0, rejected = 0, trials = tap_quick() >= 2 ? 40000 : 200000, t, outside = 0, lost = 0;
        for (t = 0; t < trials; t++) {
            int k, nb = 1 + rand() % 4;
            uint32_t s;
            memcpy(copy, pg, PG_SIZE);
            for (k = 0; k < nb; k++) {
                int off = rand() % 4 == 0 ? PG_HDR + rand() % (8 * 31) : rand() % PG_SIZE;
                copy[off] = (uint8_t)rand();
            }
            if (page_validate(copy, 3, 10, &err) != KVS_OK) {
                rejected++;
                continue;
            }
            accepted++;
            if (sp_upper(copy) < PG_HDR + SLOT_SIZE * sp_nslots(copy))
                outside++;
            for (s = 0; s < sp_nslots(copy); s++) {
                const uint8_t *rec = copy + sp_off(copy, s), *end = rec + sp_len(copy, s);
                const uint8_t *vend;
                int f;
                sp_record(copy, s, &r);
                vend = r.val ? r.val + r.vlen : r.key + r.klen + REC_VPAGE_SIZE;
                if (rec < copy + sp_upper(copy) || end > copy + PG_SIZE || r.key < rec + REC_FIXED ||
                    r.key + r.klen > end || vend != end)
                    outside++;
                f = sp_find(copy, sp_tag(copy, s), r.key, r.klen);
                if (f < 0 || (uint32_t)f > s)
                    lost++;
            }
        }
        tap_ok(accepted > 0 && rejected > 0, "%d randomly damaged pages: %d rejected, %d accepted",
               trials, rejected, accepted);
        tap_ok(outside == 0, "every accepted record lies exactly in its slot's bytes (%d did not)", outside);
        tap_ok(lost == 0, "every accepted record is found by its tag and key (%d were not)", lost);
    }
    /* an external record claiming a value longer than the file can hold is
     * damage at validation (before any reader sizes a buffer from it) */
    {
        static uint8_t vp[PG_SIZE];
        kvs_err e;
        uint8_t *rec;
        size_t rlen;
        int ext;
        memset(&e, 0, sizeof e);
        sp_format(vp, KVS_PAGE_BUCKET, 0);
        rlen = rec_size(3, 50000, 0, &ext);
        rec = sp_reserve(vp, 7, (uint32_t)rlen);
        rec_encode(rec, 3, "key", 50000, NULL, 0, 1, 5);
        tap_ok(ext && page_validate(vp, 2, 20, &e) == KVS_OK,
               "an external 50000-byte value in a 20-page file is valid (13 pages)");
        memset(&e, 0, sizeof e);
        tap_ok(page_validate(vp, 2, 12, &e) == KVS_ECORRUPT && strstr(e.msg, "more pages than the file"),
               "in a 12-page file it is damage: %s", e.msg);
        wr32(rec + REC_VLEN, (uint32_t)KVS_MAX_VALUE);
        memset(&e, 0, sizeof e);
        tap_ok(page_validate(vp, 2, 1000, &e) == KVS_ECORRUPT,
               "a claimed 2 GiB value in a 1000-page file is damage (a fuzzer's find): %s", e.msg);
    }
    /* deletes in random order against a model of the page: one record
     * length (the delete's record copy from upper), mixed lengths (the
     * general move), and a page whose slots are not in descending offset
     * order (the format allows it: the general move again).  After every
     * delete the page validates, holds exactly the records left with their
     * bytes, its free space is the exact rest and zero. */
    {
        static uint8_t dp[PG_SIZE];
        int round, fails = 0, deletes = 0, ordered = 0, deletes0 = 0;
        srand(12);
        for (round = 0; round < 600; round++) {
            char keys[SP_MAX_SLOTS][24];
            int vlens[SP_MAX_SLOTS], live[SP_MAX_SLOTS], nrec = 0, left, k, mode = round % 3;
            uint32_t used = 0;
            sp_format(dp, KVS_PAGE_BUCKET, 1);
            for (;;) {
                int vl = mode == 1 ? rand() % 180 : 100;
                size_t rl = rec_size(16, (size_t)vl, 0, &ext);
                char v[200];
                if (sp_free(dp) < rl + SLOT_SIZE)
                    break;
                sprintf(keys[nrec], "key-%04d-%07d", round, nrec);
                memset(v, 'a' + nrec % 26, (size_t)vl);
                v[vl] = 0;
                put(dp, (uint32_t)(nrec % 5), keys[nrec], v);
                vlens[nrec] = vl;
                live[nrec] = 1;
                used += (uint32_t)rl + SLOT_SIZE;
                nrec++;
            }
            if (mode == 2) {
                /* slots shuffled: records stay where they are */
                uint32_t n = sp_nslots(dp), a;
                for (a = n - 1; a > 0; a--) {
                    uint32_t b = (uint32_t)rand() % (a + 1);
                    uint8_t tmp[SLOT_SIZE];
                    memcpy(tmp, dp + PG_HDR + SLOT_SIZE * a, SLOT_SIZE);
                    memcpy(dp + PG_HDR + SLOT_SIZE * a, dp + PG_HDR + SLOT_SIZE * b, SLOT_SIZE);
                    memcpy(dp + PG_HDR + SLOT_SIZE * b, tmp, SLOT_SIZE);
                }
            }
            for (left = nrec; left > 0; left--) {
                uint32_t slot = (uint32_t)rand() % sp_nslots(dp), s2, lo;
                sp_record(dp, slot, &r);
                for (k = 0; k < nrec && !(live[k] && memcmp(keys[k], r.key, 16) == 0); k++)
                    ;
                if (k == nrec) {
                    fails++;
                    break;
                }
                live[k] = 0;
                used -= sp_len(dp, slot) + SLOT_SIZE;
                sp_delete(dp, slot);
                deletes++;
                if (page_validate(dp, 3, 10, &err) != KVS_OK || sp_nslots(dp) != (uint32_t)left - 1 ||
                    sp_free(dp) != PG_USABLE - used)
                    fails++;
                lo = PG_HDR + SLOT_SIZE * sp_nslots(dp);
                for (s2 = lo; s2 < sp_upper(dp); s2++)
                    if (dp[s2])
                        fails++;
                for (k = 0; k < nrec; k++) {
                    int f = sp_find(dp, (uint32_t)(k % 5), keys[k], 16);
                    if (live[k] != (f >= 0))
                        fails++;
                    if (f >= 0) {
                        sp_record(dp, (uint32_t)f, &r);
                        if (r.vlen != (uint32_t)vlens[k] ||
                            (r.vlen && (r.val[0] != 'a' + k % 26 || r.val[r.vlen - 1] != 'a' + k % 26)))
                            fails++;
                    }
                }
                if (mode == 0) {
                    /* one length: the slots stay in descending offset order */
                    uint32_t i2;
                    for (i2 = 1; i2 < sp_nslots(dp); i2++)
                        if (sp_off(dp, i2) >= sp_off(dp, i2 - 1))
                            break;
                    ordered += i2 >= sp_nslots(dp);
                    deletes0++;
                }
            }
        }
        tap_ok(fails == 0 && deletes > 10000,
               "%d random deletes (one length, mixed lengths, shuffled slots): page valid, records and free space exact (%d failures)",
               deletes, fails);
        tap_ok(deletes0 > 0 && ordered == deletes0,
               "one record length: slots stay in descending offset order (%d of %d deletes)", ordered, deletes0);
    }
    tap_diag("page: %d checks", tap_n);
    return tap_done();
}
