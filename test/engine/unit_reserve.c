/*
 * unit_reserve.c - kvs_reserve: sizing a table for the records a load will
 * make.  An empty file gets its buckets' pages at once and the load then
 * splits nothing, ending in the shape an unreserved load of the same
 * records ends in; a file with records is split to the size (every record
 * still found, kvs_check clean); repeated and smaller calls change nothing;
 * an aborted section leaves the file as it was; a reserve after a truncate
 * in the same section; splits go on past a reserve; the reserve survives a
 * reopen; kvs_record_bytes; the refusals.  (Faults and crash points of a reserve: faults.c's
 * section reserves before its inserts.)
 *
 *   unit_reserve    N = 30000 records (loads up to 8N);
 *                   KVS_TEST_QUICK=2 (valgrind): N = 5000
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kvs.h"
#include "tap.h"
#include "files.h"

#define KLEN 16
#define VLEN 100
#define RB   kvs_record_bytes(KLEN, VLEN)

static char path[256];

static kvs *open_db(int flags, uint32_t cache)
{
    return test_open(path, flags | KVS_NOSYNC, cache, NULL, NULL);
}

static void mkkey(char *k, unsigned i) { snprintf(k, KLEN + 1, "rsv-key-%08u", i); }

static void mkval(char *v, unsigned i)
{
    memset(v, 'a' + i % 26, VLEN);
    memcpy(v, &i, sizeof i);
}

static kvs_stats stats(kvs *db)
{
    kvs_stats st;
    memset(&st, 0, sizeof st);
    if (kvs_stats_get(db, &st) != KVS_OK)
        tap_diag("stats: %s", kvs_errmsg(db));
    return st;
}

/* Puts records [from, to) in one write section; 0 on success. */
static int load(kvs *db, unsigned from, unsigned to)
{
    char k[KLEN + 1], v[VLEN];
    unsigned i;
    if (kvs_begin(db, KVS_WRITE) != KVS_OK)
        return -1;
    for (i = from; i < to; i++) {
        mkkey(k, i);
        mkval(v, i);
        if (kvs_put(db, k, KLEN, v, VLEN, KVS_NOOVERWRITE) != KVS_OK) {
            tap_diag("put %u: %s", i, kvs_errmsg(db));
            kvs_abort(db);
            return -1;
        }
    }
    return kvs_end(db) == KVS_OK ? 0 : -1;
}

/* Number of records in [0, n) that are not found with their value. */
static unsigned missing(kvs *db, unsigned n)
{
    char k[KLEN + 1], v[VLEN];
    kvs_slice s;
    unsigned i, bad = 0;
    for (i = 0; i < n; i++) {
        mkkey(k, i);
        mkval(v, i);
        if (kvs_get(db, k, KLEN, &s) != KVS_OK || s.len != VLEN || memcmp(s.data, v, VLEN) != 0)
            bad++;
    }
    return bad;
}

int main(void)
{
    const unsigned n = tap_quick() >= 2 ? 5000 : 30000;
    long cnt;
    kvs *db;
    kvs_stats st, st0, st1;
    uint64_t plain_buckets, plain_pages, plain_overflow;
    double plain_cpg;
    kvs_slice s;
    char k[KLEN + 1];

    snprintf(path, sizeof path, "/tmp/unit_reserve.%d.kvs", (int)getpid());

    /* ---- the unreserved load: the shape to compare with ---- */
    db = open_fresh(path, 4096, KVS_NOSYNC);
    if (!db)
        return tap_done();
    tap_ok(load(db, 0, n) == 0, "unreserved load of %u records", n);
    st = stats(db);
    plain_buckets = st.buckets;
    plain_pages = st.pages;
    plain_overflow = st.overflow_pages;
    tap_ok(st.splits == plain_buckets - 1, "unreserved: %llu splits from one bucket to %llu",
           (unsigned long long)st.splits, (unsigned long long)plain_buckets);
    kvs_reset_counters(db);
    tap_ok(missing(db, n) == 0, "unreserved: every record found");
    st = stats(db);
    plain_cpg = (double)st.get_chain_pages / (double)st.gets;
    kvs_close(db);

    /* ---- an empty file ---- */
    db = open_fresh(path, 4096, KVS_NOSYNC);
    if (!db)
        return tap_done();
    st0 = stats(db);
    TAP_RC(kvs_reserve(db, (uint64_t)(n) * RB), KVS_OK);
    st = stats(db);
    tap_ok(st.buckets == plain_buckets, "empty file: reserve gives the %llu buckets the unreserved load ended with (%llu)",
           (unsigned long long)plain_buckets, (unsigned long long)st.buckets);
    tap_ok(st.splits == 0 && st.records == 0 && st.overflow_pages == 0 && st.free_pages == 0,
           "empty file: no split, no record, no overflow or free page (%llu splits)",
           (unsigned long long)st.splits);
    tap_ok(st.pages == 1 + st.buckets + st.dir_pages,
           "empty file: the pages are the header, one page per bucket and the directory (%llu = 1 + %llu + %llu)",
           (unsigned long long)st.pages, (unsigned long long)st.buckets, (unsigned long long)st.dir_pages);
    tap_ok(st.change_counter == st0.change_counter + 1, "empty file: the reserve was one write section");
    TAP_RC(kvs_check(db), KVS_OK);
    mkkey(k, 5);
    TAP_RC(kvs_get(db, k, KLEN, &s), KVS_NOTFOUND);
    tap_ok(test_count(db, &cnt) == KVS_OK && cnt == 0, "empty file: a scan of the reserved table finds nothing");

    /* repeated and smaller calls: no-ops, nothing written */
    st0 = stats(db);
    TAP_RC(kvs_reserve(db, (uint64_t)(n) * RB), KVS_OK);
    TAP_RC(kvs_reserve(db, (uint64_t)(n / 10) * RB), KVS_OK);
    TAP_RC(kvs_reserve(db, 0), KVS_OK);
    st = stats(db);
    tap_ok(st.buckets == st0.buckets && st.pages == st0.pages && st.change_counter == st0.change_counter,
           "the same or a smaller reserve again changes nothing (buckets %llu, pages %llu, change counter %llu)",
           (unsigned long long)st.buckets, (unsigned long long)st.pages, (unsigned long long)st.change_counter);

    /* the load after it splits nothing and ends in the unreserved shape */
    kvs_reset_counters(db);
    tap_ok(load(db, 0, n) == 0, "load of %u records into the reserved file", n);
    st = stats(db);
    tap_ok(st.splits == 0 && st.buckets == plain_buckets,
           "reserved load: %llu splits, %llu buckets (unreserved %llu)", (unsigned long long)st.splits,
           (unsigned long long)st.buckets, (unsigned long long)plain_buckets);
    tap_ok(st.pages == plain_pages && st.overflow_pages == plain_overflow,
           "reserved load: %llu pages, %llu overflow (unreserved %llu, %llu)",
           (unsigned long long)st.pages, (unsigned long long)st.overflow_pages,
           (unsigned long long)plain_pages, (unsigned long long)plain_overflow);
    TAP_RC(kvs_check(db), KVS_OK);
    kvs_reset_counters(db);
    tap_ok(missing(db, n) == 0, "reserved load: every record found");
    st = stats(db);
    tap_ok((double)st.get_chain_pages / (double)st.gets <= plain_cpg + 1e-9,
           "reserved load: %.4f chain pages per get (unreserved %.4f)",
           (double)st.get_chain_pages / (double)st.gets, plain_cpg);
    tap_ok(test_count(db, &cnt) == KVS_OK && cnt == (long)n, "reserved load: a scan sees every record once");

    /* splits go on past the reserve */
    tap_ok(load(db, n, 2 * n) == 0, "%u more records past the reserve", n);
    st = stats(db);
    tap_ok(st.splits > 0 && st.buckets > plain_buckets, "past the reserve the table splits again (%llu splits, %llu buckets)",
           (unsigned long long)st.splits, (unsigned long long)st.buckets);
    TAP_RC(kvs_check(db), KVS_OK);
    tap_ok(missing(db, 2 * n) == 0, "past the reserve: every record found");

    /* a file with records: split to the size */
    st0 = stats(db);
    TAP_RC(kvs_reserve(db, (uint64_t)(8 * n) * RB), KVS_OK);
    st = stats(db);
    tap_ok(st.buckets > 3 * st0.buckets && st.records == 2 * n,
           "file with records: reserve for 4x its records grows %llu buckets to %llu (4x, rounded), records kept",
           (unsigned long long)st0.buckets, (unsigned long long)st.buckets);
    tap_ok(st.splits == st0.splits + (st.buckets - st0.buckets),
           "file with records: one split per new bucket (%llu)",
           (unsigned long long)(st.splits - st0.splits));
    TAP_RC(kvs_check(db), KVS_OK);
    tap_ok(missing(db, 2 * n) == 0, "file with records: every record found after the reserve");
    st0 = stats(db);
    tap_ok(load(db, 2 * n, 8 * n) == 0, "load up to the reserved %u records", 8 * n);
    st = stats(db);
    tap_ok(st.buckets == st0.buckets && st.splits == st0.splits,
           "file with records: the load up to the reserve splits nothing (%llu buckets)",
           (unsigned long long)st.buckets);
    TAP_RC(kvs_check(db), KVS_OK);
    tap_ok(missing(db, 8 * n) == 0 && test_count(db, &cnt) == KVS_OK && cnt == (long)(8 * n), "all %u records found, scanned once", 8 * n);

    /* reopen: the reserve is in the file */
    st0 = stats(db);
    kvs_close(db);
    db = open_db(0, 256);
    if (!db)
        return tap_done();
    st = stats(db);
    tap_ok(st.buckets == st0.buckets && st.pages == st0.pages, "reopen: same buckets and pages");
    TAP_RC(kvs_check(db), KVS_OK);

    /* aborted: the file as it was */
    st0 = stats(db);
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    TAP_RC(kvs_reserve(db, (uint64_t)(40 * n) * RB), KVS_OK);
    st = stats(db);
    tap_ok(st.buckets > st0.buckets, "in the section the table has grown (%llu buckets)", (unsigned long long)st.buckets);
    TAP_RC(kvs_abort(db), KVS_OK);
    st = stats(db);
    tap_ok(st.buckets == st0.buckets && st.pages == st0.pages && st.change_counter == st0.change_counter,
           "an aborted reserve leaves the file as it was");
    TAP_RC(kvs_check(db), KVS_OK);
    tap_ok(missing(db, 8 * n) == 0, "after the abort: every record found");

    /* truncate then reserve in one section: the empty-table path */
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    TAP_RC(kvs_truncate(db), KVS_OK);
    TAP_RC(kvs_reserve(db, (uint64_t)(n) * RB), KVS_OK);
    TAP_RC(kvs_end(db), KVS_OK);
    st = stats(db);
    tap_ok(st.records == 0 && st.buckets == plain_buckets && st.pages == 1 + st.buckets + st.dir_pages,
           "truncate + reserve: %llu empty buckets, %llu pages", (unsigned long long)st.buckets,
           (unsigned long long)st.pages);
    TAP_RC(kvs_check(db), KVS_OK);
    kvs_reset_counters(db);
    tap_ok(load(db, 0, n) == 0 && stats(db).splits == 0, "load after truncate + reserve: no split");
    TAP_RC(kvs_check(db), KVS_OK);
    tap_ok(missing(db, n) == 0, "load after truncate + reserve: every record found");

    /* refusals */
    tap_ok(kvs_record_bytes(KVS_MAX_KEY + 1, 0) == 0 && kvs_record_bytes(0, (size_t)KVS_MAX_VALUE + 1) == 0,
           "kvs_record_bytes: 0 for lengths no record can have");
    tap_ok(kvs_record_bytes(KLEN, VLEN) == 7 + KLEN + VLEN + 8 && kvs_record_bytes(16, 5000) == 7 + 16 + 4 + 8,
           "kvs_record_bytes: header + key + value + slot; an external value counts its pointer");
    TAP_RC(kvs_begin(db, KVS_READ), KVS_OK);
    TAP_RC(kvs_reserve(db, (uint64_t)(100 * n) * RB), KVS_ERDONLY);
    TAP_RC(kvs_end(db), KVS_OK);
    st1 = stats(db);
    tap_ok(st1.buckets == plain_buckets, "refused reserves change nothing");
    kvs_close(db);

    db = open_db(KVS_RDONLY, 64);
    if (db) {
        TAP_RC(kvs_reserve(db, (uint64_t)(100 * n) * RB), KVS_ERDONLY);
        kvs_close(db);
    }
    unlink(path);
    {
        char jpath[300];    /* the private journal beside it is a directory */
        snprintf(jpath, sizeof jpath, "%s-journal", path);
        if (rmtree(jpath) != 0)
            tap_diag("could not remove %s", jpath);
    }
    return tap_done();
}
