/*
 * unit_kvs.c - unit tests of the public API layer (kvs.c): open/create,
 * put/get/delete/replace, insert-only, cursor exactly-once (and in
 * kvs_key_order), stamps,
 * descriptor, sections and their errors, truncate, stats, check, reopen,
 * page inspection, large values.
 *
 *   unit_kvs        20000 records; KVS_TEST_QUICK=2 (valgrind): 5000
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kvs.h"
#include "tap.h"
#include "files.h"

static char path[256];

static void mkkey(char *buf, unsigned i) { sprintf(buf, "key-%08u", i); }

static kvs *open_db(int flags, uint32_t cache)
{
    return test_open(path, flags, cache, NULL, NULL);
}

int main(void)
{
    kvs *db;
    kvs_slice v, k;
    kvs_stats st;
    char key[64], val[256];
    unsigned i, n = tap_quick() >= 2 ? 5000 : 20000, bad = 0, seen = 0;
    unsigned char *mark;
    kvs_cursor *c;
    uint64_t s1, s2;
    int rc;

    snprintf(path, sizeof path, "/tmp/unit_kvs.%d.kvs", (int)getpid());
    unlink(path);

    db = open_db(0, 64);
    tap_ok(db == NULL, "open without KVS_CREATE of a missing file fails");
    db = open_db(KVS_CREATE, 64);
    tap_ok(db != NULL, "create");
    if (!db)
        return tap_done();
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_get(db, "x", 1, &v), KVS_NOTFOUND);
    TAP_RC(kvs_put(db, "", 0, "", 0, 0), KVS_OK);
    TAP_RC(kvs_get(db, "", 0, &v), KVS_OK);
    tap_ok(v.len == 0, "empty key, empty value round trip");
    TAP_RC(kvs_delete(db, "", 0), KVS_OK);
    TAP_RC(kvs_delete(db, "", 0), KVS_NOTFOUND);

    for (i = 0; i < n; i++) {
        mkkey(key, i);
        sprintf(val, "value-%u-%.*s", i, (int)(i % 150), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        if (kvs_put(db, key, strlen(key), val, strlen(val), KVS_NOOVERWRITE) != KVS_OK)
            bad++;
    }
    tap_ok(bad == 0, "insert %u records (implicit sections)", n);
    bad = 0;
    for (i = 0; i < n; i++) {
        mkkey(key, i);
        sprintf(val, "value-%u-", i);
        if (kvs_get(db, key, strlen(key), &v) != KVS_OK || v.len != strlen(val) + i % 150 ||
            memcmp(v.data, val, strlen(val)) != 0)
            bad++;
    }
    tap_ok(bad == 0, "get all %u back", n);
    mkkey(key, 7);
    TAP_RC(kvs_put(db, key, strlen(key), "z", 1, KVS_NOOVERWRITE), KVS_EXISTS);
    TAP_RC(kvs_put(db, key, strlen(key), "z", 1, 0), KVS_OK);
    TAP_RC(kvs_get(db, key, strlen(key), &v), KVS_OK);
    tap_ok(v.len == 1 && memcmp(v.data, "z", 1) == 0, "replace shrinks a value");
    TAP_RC(kvs_check(db), KVS_OK);

    /* big section: delete odd keys */
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    tap_ok(kvs_in_section(db) == KVS_WRITE, "in write section");
    TAP_RC(kvs_begin(db, KVS_READ), KVS_EINVAL);
    bad = 0;
    for (i = 1; i < n; i += 2) {
        mkkey(key, i);
        if (kvs_delete(db, key, strlen(key)) != KVS_OK)
            bad++;
    }
    TAP_RC(kvs_end(db), KVS_OK);
    tap_ok(bad == 0, "delete half in one write section");
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_stats_get(db, &st), KVS_OK);
    tap_ok(st.records == n / 2, "stats: records %llu", (unsigned long long)st.records);
    tap_diag("buckets %llu level %u split %llu pages %llu overflow %llu free %llu lf %.3f",
             (unsigned long long)st.buckets, st.level, (unsigned long long)st.split,
             (unsigned long long)st.pages, (unsigned long long)st.overflow_pages,
             (unsigned long long)st.free_pages, st.load_factor);

    /* read section refuses writes */
    TAP_RC(kvs_begin(db, KVS_READ), KVS_OK);
    TAP_RC(kvs_put(db, "a", 1, "b", 1, 0), KVS_ERDONLY);
    TAP_RC(kvs_end(db), KVS_OK);
    TAP_RC(kvs_end(db), KVS_EINVAL);

    /* cursor sees every record once */
    mark = calloc(n, 1);
    TAP_RC(kvs_cursor_open(db, &c), KVS_OK);
    bad = 0;
    while ((rc = kvs_cursor_next(c, &k, &v)) == KVS_OK) {
        unsigned id;
        char kb[64];
        memcpy(kb, k.data, k.len < 63 ? k.len : 63);
        kb[k.len < 63 ? k.len : 63] = 0;
        if (k.len != 12 || sscanf(kb, "key-%8u", &id) != 1 || id >= n || mark[id]++)
            bad++;
        seen++;
    }
    tap_ok(rc == KVS_NOTFOUND, "cursor ends with NOTFOUND");
    tap_ok(bad == 0 && seen == n / 2, "cursor: %u seen, %u bad", seen, bad);
    TAP_RC(kvs_cursor_next(c, &k, &v), KVS_NOTFOUND);
    kvs_cursor_close(c);

    /* kvs_key_order is the cursor's order: never decreasing along a scan */
    {
        uint32_t prev = 0, ord;
        unsigned down = 0, m = 0, unlike = 0;
        TAP_RC(kvs_cursor_open(db, &c), KVS_OK);
        while (kvs_cursor_next(c, &k, &v) == KVS_OK) {
            ord = kvs_key_order(db, k.data, k.len);
            down += m++ > 0 && ord < prev;
            prev = ord;
            /* the handle-free form, this file having hash seed 0 */
            unlike += kvs_hash_order(kvs_key_hash(0, k.data, k.len)) != ord;
        }
        kvs_cursor_close(c);
        tap_ok(m == n / 2 && down == 0, "kvs_key_order follows the cursor: %u records, %u out of order", m, down);
        tap_ok(unlike == 0, "kvs_hash_order(kvs_key_hash(0, key)) is kvs_key_order in a seed-0 file: %u of %u differ", unlike, m);
    }

    /* ... and in a file created with another seed, with that seed */
    {
        char sp[300];
        kvs_options o;
        kvs *sdb = NULL;
        const uint64_t seed = 0x9e3779b97f4a7c15ULL;
        unsigned j, unlike = 0, as_zero = 0;
        snprintf(sp, sizeof sp, "%s.seeded", path);
        unlink(sp);
        kvs_options_init(&o);
        o.flags = KVS_CREATE;
        o.hash_seed = seed;
        TAP_RC(kvs_open(sp, &o, &sdb), KVS_OK);
        for (j = 0; sdb && j < 200; j++) {
            mkkey(key, j);
            unlike += kvs_hash_order(kvs_key_hash(seed, key, strlen(key))) != kvs_key_order(sdb, key, strlen(key));
            as_zero += kvs_hash_order(kvs_key_hash(0, key, strlen(key))) == kvs_key_order(sdb, key, strlen(key));
        }
        tap_ok(sdb && unlike == 0 && as_zero < 5, "a file with hash seed %llx: kvs_key_hash with it gives kvs_key_order "
               "(%u of 200 differ), with seed 0 not (%u of 200 agree)", (unsigned long long)seed, unlike, as_zero);
        if (sdb)
            kvs_close(sdb);
        unlink(sp);
    }

    /* cursor across splits: insert while scanning, old records exactly once */
    memset(mark, 0, n);
    TAP_RC(kvs_cursor_open(db, &c), KVS_OK);
    bad = 0;
    seen = 0;
    i = 0;
    while ((rc = kvs_cursor_next(c, &k, &v)) == KVS_OK) {
        unsigned id;
        char nk[64], kb[64];
        memcpy(kb, k.data, k.len < 63 ? k.len : 63);
        kb[k.len < 63 ? k.len : 63] = 0;
        if (sscanf(kb, "key-%8u", &id) == 1 && k.len == 12) {
            if (id < n && mark[id]++)
                bad++;
            if (id < n)
                seen++;
        }
        sprintf(nk, "new-%u", i++);
        if (kvs_put(db, nk, strlen(nk), val, 100, 0) != KVS_OK)
            bad++;
    }
    kvs_cursor_close(c);
    tap_ok(bad == 0 && seen == n / 2, "cursor during %u inserts: %u old records seen once each", i, seen);
    TAP_RC(kvs_check(db), KVS_OK);
    free(mark);

    /* stamps */
    TAP_RC(kvs_new_stamp(db, &s1), KVS_OK);
    TAP_RC(kvs_new_stamp(db, &s2), KVS_OK);
    tap_ok(s2 > s1 && s1 > 0, "stamps increase");
    kvs_set_stamp(db, s2);
    TAP_RC(kvs_put(db, "stamped", 7, "v", 1, 0), KVS_OK);
    kvs_set_stamp(db, 0);
    TAP_RC(kvs_cursor_open(db, &c), KVS_OK);
    kvs_cursor_skip_stamp(c, s2);
    bad = 0;
    while (kvs_cursor_next(c, &k, &v) == KVS_OK)
        if (k.len == 7 && memcmp(k.data, "stamped", 7) == 0)
            bad++;
    kvs_cursor_close(c);
    tap_ok(bad == 0, "cursor skips its stamp");
    TAP_RC(kvs_get(db, "stamped", 7, &v), KVS_OK);
    {
        uint64_t got = 1;
        TAP_RC(kvs_get_stamped(db, "stamped", 7, &v, &got), KVS_OK);
        tap_ok(got == s2 && v.len == 1 && memcmp(v.data, "v", 1) == 0,
               "get_stamped gives the record's stamp and value");
        TAP_RC(kvs_put(db, "stamped", 7, "w", 1, 0), KVS_OK);
        TAP_RC(kvs_get_stamped(db, "stamped", 7, &v, &got), KVS_OK);
        tap_ok(got == 0 && v.len == 1, "a rewrite without a stamp in force clears it");
        TAP_RC(kvs_get_stamped(db, "absent!", 7, &v, &got), KVS_NOTFOUND);
        /* a value too large for the page lives in a value chain */
        {
            size_t big = 3 * KVS_PAGE_SIZE;
            char *bv = malloc(big);
            memset(bv, 'x', big);
            kvs_set_stamp(db, s1);
            TAP_RC(kvs_put(db, "stamped-big", 11, bv, big, 0), KVS_OK);
            kvs_set_stamp(db, 0);
            TAP_RC(kvs_get_stamped(db, "stamped-big", 11, &v, &got), KVS_OK);
            tap_ok(got == s1 && v.len == big && memcmp(v.data, bv, big) == 0,
                   "get_stamped of an external value");
            TAP_RC(kvs_delete(db, "stamped-big", 11), KVS_OK);
            free(bv);
        }
    }

    /* descriptor */
    TAP_RC(kvs_set_descriptor(db, "layout-1", 8), KVS_OK);
    TAP_RC(kvs_set_descriptor(db, val, KVS_MAX_DESCRIPTOR + 1), KVS_ETOOBIG);

    /* too big key */
    {
        char *big = calloc(1, KVS_MAX_KEY + 2);
        TAP_RC(kvs_put(db, big, KVS_MAX_KEY + 1, "v", 1, 0), KVS_ETOOBIG);
        TAP_RC(kvs_put(db, big, KVS_MAX_KEY, "v", 1, 0), KVS_OK);
        TAP_RC(kvs_get(db, big, KVS_MAX_KEY, &v), KVS_OK);
        free(big);
    }
    TAP_RC(kvs_close(db), KVS_OK);

    /* reopen read-only */
    db = open_db(KVS_RDONLY, 16);
    tap_ok(db != NULL, "reopen read-only");
    if (!db)
        return tap_done();
    TAP_RC(kvs_descriptor(db, &v), KVS_OK);
    tap_ok(v.len == 8 && memcmp(v.data, "layout-1", 8) == 0, "descriptor persisted");
    mkkey(key, 10);
    TAP_RC(kvs_get(db, key, strlen(key), &v), KVS_OK);
    TAP_RC(kvs_put(db, "a", 1, "b", 1, 0), KVS_ERDONLY);
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_ERDONLY);
    TAP_RC(kvs_check(db), KVS_OK);
    {
        kvs_page_info pi;
        kvs_slot_info si;
        TAP_RC(kvs_page_info_get(db, 0, &pi), KVS_OK);
        tap_ok(pi.type == KVS_PAGE_HEADER && pi.checksum_ok, "page 0 is the header");
        TAP_RC(kvs_page_info_get(db, 2, &pi), KVS_OK);
        tap_ok(pi.type == KVS_PAGE_BUCKET && pi.bucket == 0, "page 2 is bucket 0 (%s)", pi.type_name);
        TAP_RC(kvs_page_slot(db, 2, 0, &si), KVS_OK);
        TAP_RC(kvs_page_slot(db, 2, 100000, &si), KVS_NOTFOUND);
        TAP_RC(kvs_page_info_get(db, 1u << 30, &pi), KVS_EINVAL);
    }
    TAP_RC(kvs_close(db), KVS_OK);

    /* truncate */
    db = open_db(0, 16);
    TAP_RC(kvs_truncate(db), KVS_OK);
    TAP_RC(kvs_stats_get(db, &st), KVS_OK);
    tap_ok(st.records == 0 && st.pages == 3 && st.file_bytes == 3 * 4096, "truncate empties and shrinks");
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_put(db, "after", 5, "t", 1, 0), KVS_OK);
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);
    unlink(path);
    return tap_done();
}
