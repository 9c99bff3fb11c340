/*
 * unit_prefetch.c - kvs_prefetch, the hint that a key comes soon, changes
 * no result.  The same loads, deletes and replaces run on two files, one
 * with every key hinted 16 operations ahead and with hints that go wrong on
 * purpose (keys never put, empty and over-long keys, hints outside any
 * section, hints before the splits that move their keys, before an abort
 * that drops the handle's bucket map, on a cache far smaller than the file
 * so hinted frames hold other pages by the time the hint's second step
 * reads them), one without any: both end with the same records, the same
 * shape (pages, buckets, overflow pages, free pages) and a clean kvs_check.
 *
 *   unit_prefetch   N = 20000 records; KVS_TEST_QUICK=2 (valgrind): N = 3000
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kvs.h"
#include "tap.h"
#include "files.h"

#define KLEN  16
#define VLEN  100
#define AHEAD 16

static void mkkey(char *k, unsigned i) { snprintf(k, KLEN + 1, "pfx-key-%08u", i); }

static void mkval(char *v, unsigned i, unsigned ver)
{
    memset(v, 'a' + (i + ver) % 26, VLEN);
    memcpy(v, &i, sizeof i);
    memcpy(v + sizeof i, &ver, sizeof ver);
}

/* The wrong hints of a hinted run: a key never put, an empty key, one
 * longer than any key may be (ignored), each given with the right one. */
static void hint(kvs *db, int on, unsigned i)
{
    char k[KLEN + 1], big[KVS_MAX_KEY + 8];
    if (!on)
        return;
    mkkey(k, i);
    kvs_prefetch(db, k, KLEN);
    if (i % 7 == 0) {
        mkkey(k, 1000000000u + i);
        kvs_prefetch(db, k, KLEN);
        kvs_prefetch(db, "", 0);
        memset(big, 'z', sizeof big);
        kvs_prefetch(db, big, sizeof big);
    }
}

/* Puts (ver 0: new, else replaces) records from..to-1 in one write section,
 * each hinted AHEAD puts early when `on`; 0 on success. */
static int put_range(kvs *db, int on, unsigned from, unsigned to, unsigned ver)
{
    char k[KLEN + 1], v[VLEN];
    unsigned i;
    if (kvs_begin(db, KVS_WRITE) != KVS_OK)
        return -1;
    for (i = from; i < to && i < from + AHEAD; i++)
        hint(db, on, i);
    for (i = from; i < to; i++) {
        if (i + AHEAD < to)
            hint(db, on, i + AHEAD);
        mkkey(k, i);
        mkval(v, i, ver);
        if (kvs_put(db, k, KLEN, v, VLEN, 0) != KVS_OK) {
            tap_diag("put %u: %s", i, kvs_errmsg(db));
            kvs_abort(db);
            return -1;
        }
    }
    return kvs_end(db) == KVS_OK ? 0 : -1;
}

/* Deletes the records i < n with i % 3 == 0, in one write section, hinted
 * when `on`; 0 on success. */
static int delete_thirds(kvs *db, int on, unsigned n)
{
    char k[KLEN + 1];
    unsigned i;
    if (kvs_begin(db, KVS_WRITE) != KVS_OK)
        return -1;
    for (i = 0; i < n; i += 3) {
        if (i + 3 * AHEAD < n)
            hint(db, on, i + 3 * AHEAD);
        mkkey(k, i);
        if (kvs_delete(db, k, KLEN) != KVS_OK) {
            tap_diag("delete %u: %s", i, kvs_errmsg(db));
            kvs_abort(db);
            return -1;
        }
    }
    return kvs_end(db) == KVS_OK ? 0 : -1;
}

/* The records i < n not as they should be: the thirds deleted, the rest at
 * version ver for i < vn and 0 beyond. */
static unsigned wrong(kvs *db, unsigned n, unsigned vn, unsigned ver)
{
    char k[KLEN + 1], v[VLEN];
    kvs_slice s;
    unsigned i, bad = 0;
    for (i = 0; i < n; i++) {
        int rc;
        mkkey(k, i);
        rc = kvs_get(db, k, KLEN, &s);
        if (i % 3 == 0) {
            bad += rc != KVS_NOTFOUND;
            continue;
        }
        mkval(v, i, i < vn ? ver : 0);
        bad += rc != KVS_OK || s.len != VLEN || memcmp(s.data, v, VLEN) != 0;
    }
    return bad;
}

/* One run: the workload on a fresh file, hinted or not; its shape in *st. */
static int run(const char *path, int on, unsigned n, kvs_stats *st)
{
    kvs *db = open_fresh(path, 64, KVS_NOSYNC);    /* 64 frames: the file is ~20x larger */
    char k[KLEN + 1], v[VLEN];
    int ok = db != NULL;
    if (!db)
        return 0;
    /* a hint outside any section, before the file has a bucket for it */
    hint(db, on, 0);
    /* half the records, splitting as they go: a hinted key's bucket splits
     * between its hint and its put */
    ok = ok && put_range(db, on, 0, n / 2, 0) == 0;
    /* an aborted section drops the handle's bucket map: the hints given in
     * it point at nothing the next section knows */
    ok = ok && kvs_begin(db, KVS_WRITE) == KVS_OK;
    if (ok) {
        unsigned i;
        for (i = n / 2; i < n / 2 + 4 * AHEAD; i++) {
            hint(db, on, i);
            mkkey(k, i);
            mkval(v, i, 9);
            ok = ok && kvs_put(db, k, KLEN, v, VLEN, 0) == KVS_OK;
        }
        ok = kvs_abort(db) == KVS_OK && ok;
    }
    ok = ok && put_range(db, on, n / 2, n, 0) == 0;
    ok = ok && kvs_reserve(db, (uint64_t)4 * n * kvs_record_bytes(KLEN, VLEN)) == KVS_OK;
    ok = ok && put_range(db, on, 0, n / 4, 1) == 0;          /* replaces */
    ok = ok && delete_thirds(db, on, n) == 0;
    if (!ok)
        tap_diag("%s run: %s", on ? "hinted" : "plain", kvs_errmsg(db));
    tap_ok(ok, "%s run: loads, an aborted section, a reserve, replaces, deletes", on ? "hinted" : "plain");
    tap_ok(wrong(db, n, n / 4, 1) == 0, "%s run: every record as it should be", on ? "hinted" : "plain");
    TAP_RC(kvs_check(db), KVS_OK);
    memset(st, 0, sizeof *st);
    if (kvs_stats_get(db, st) != KVS_OK)
        tap_diag("stats: %s", kvs_errmsg(db));
    kvs_close(db);
    /* and once more after a reopen (a new handle: no map, no ring) */
    db = test_open(path, KVS_NOSYNC, 64, NULL, NULL);
    if (db) {
        tap_ok(wrong(db, n, n / 4, 1) == 0, "%s run: every record as it should be after a reopen",
               on ? "hinted" : "plain");
        kvs_close(db);
    }
    return ok;
}

int main(void)
{
    const unsigned n = tap_quick() >= 2 ? 3000 : 20000;
    char path[256], jpath[300];
    kvs_stats plain, hinted;

    snprintf(path, sizeof path, "/tmp/unit_prefetch.%d.kvs", (int)getpid());
    snprintf(jpath, sizeof jpath, "%s-journal", path);
    if (run(path, 0, n, &plain) && run(path, 1, n, &hinted)) {
        tap_ok(plain.records == hinted.records && plain.records == n - (n + 2) / 3,
               "the same records: %llu and %llu", (unsigned long long)plain.records,
               (unsigned long long)hinted.records);
        tap_ok(plain.pages == hinted.pages && plain.buckets == hinted.buckets &&
               plain.overflow_pages == hinted.overflow_pages && plain.free_pages == hinted.free_pages,
               "the same shape: %llu/%llu pages, %llu/%llu buckets, %llu/%llu overflow, %llu/%llu free",
               (unsigned long long)plain.pages, (unsigned long long)hinted.pages,
               (unsigned long long)plain.buckets, (unsigned long long)hinted.buckets,
               (unsigned long long)plain.overflow_pages, (unsigned long long)hinted.overflow_pages,
               (unsigned long long)plain.free_pages, (unsigned long long)hinted.free_pages);
    }
    unlink(path);
    if (rmtree(jpath) != 0)
        tap_diag("could not remove %s", jpath);
    return tap_done();
}
