/*
 * unit_count.c - kvs_cursor_count, the cursor that counts records instead of
 * returning them (a host's count(*)): it must count what kvs_cursor_next
 * would return, each record present for the whole scan exactly once.
 *   - a full count equals the records loaded, and equals a kvs_cursor_next
 *     scan's count;
 *   - steps of count and next mixed on one cursor (next leaves a bucket's
 *     copy part used, count takes the rest) see every record once;
 *   - ranges whose bounds fall inside buckets count exactly the records
 *     whose place in the order (kvs_key_order) lies there, and together the
 *     whole file;
 *   - records inserted between steps under a stamp the cursor skips, with
 *     enough of them to split buckets, leave the count at the old records';
 *   - a record deleted by the cursor's own handle while the rest of its
 *     bucket is still in the cursor's copy is not counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kvs.h"
#include "tap.h"
#include "files.h"

#define N     3000
#define NEW   4000

static char path[256];
static uint32_t order[N];

#define mkkey numbered_key
static void mkval(char *buf, unsigned i) { memset(buf, 'a' + i % 26, 100); }

static int by_order(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    if (order[x] != order[y])
        return order[x] < order[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Counts the rest of c's scan into *n; the last return code (KVS_NOTFOUND
 * at a clean end). */
static int count_rest(kvs_cursor *c, uint64_t *n)
{
    uint64_t m;
    int rc;
    while ((rc = kvs_cursor_count(c, &m)) == KVS_OK)
        *n += m;
    return rc;
}

int main(void)
{
    kvs *db;
    kvs_cursor *c;
    kvs_slice k, v;
    static unsigned ids[N];
    static unsigned char seen[N];
    char key[32], val[100];
    unsigned i, bad = 0, twice = 0, other = 0;
    uint64_t n = 0, steps = 0, m, nexts = 0;
    long scanned = 0;
    uint64_t bounds[] = { 0, 12345, 0x30000001u, 0x7fffffffu, 0x80000000u, 0xc0000abcu,
                          0xfffffff0u, KVS_REV_END };
    int rc, r, step;
    uint64_t stamp = 0;

    snprintf(path, sizeof path, "/tmp/unit_count.%d.kvs", (int)getpid());
    db = open_fresh(path, 512, 0);
    tap_ok(db != NULL, "create");
    if (!db)
        return tap_done();
    memset(val, 'v', sizeof val);
    bad = load_numbered(db, N, mkval, order);
    for (i = 0; i < N; i++)
        ids[i] = i;
    tap_ok(bad == 0, "%u records loaded", N);
    qsort(ids, N, sizeof ids[0], by_order);

    /* a full count, in its own implicit sections, against kvs_cursor_next */
    TAP_RC(kvs_cursor_open(db, &c), KVS_OK);
    while ((rc = kvs_cursor_count(c, &m)) == KVS_OK) {
        n += m;
        steps++;
    }
    TAP_RC(rc, KVS_NOTFOUND);
    TAP_RC(kvs_cursor_count(c, &m), KVS_NOTFOUND);
    kvs_cursor_close(c);
    tap_ok(n == N, "a full count counts every record: %llu of %u", (unsigned long long)n, N);
    tap_ok(steps > 1 && steps < N, "a step counts a bucket: %llu steps", (unsigned long long)steps);
    TAP_RC(test_count(db, &scanned), KVS_OK);
    tap_ok(scanned >= 0 && (uint64_t)scanned == n, "kvs_cursor_next's scan returns as many: %ld",
           scanned);

    /* count and next mixed on one cursor, in one explicit section */
    TAP_RC(kvs_cursor_open(db, &c), KVS_OK);
    TAP_RC(kvs_begin(db, KVS_READ), KVS_OK);
    n = 0;
    for (step = 0, rc = KVS_OK; rc == KVS_OK; step++) {
        if (step % 3 == 0) {
            rc = kvs_cursor_count(c, &m);
            if (rc == KVS_OK)
                n += m;
            continue;
        }
        rc = kvs_cursor_next(c, &k, &v);
        if (rc == KVS_OK) {
            unsigned id;
            char kb[13];
            memcpy(kb, k.data, 12);
            kb[12] = 0;
            nexts++;
            if (k.len != 12 || sscanf(kb, "key-%8u", &id) != 1 || id >= N)
                other++;
            else
                twice += seen[id]++ != 0;
        }
    }
    TAP_RC(rc, KVS_NOTFOUND);
    TAP_RC(kvs_end(db), KVS_OK);
    kvs_cursor_close(c);
    tap_ok(other == 0 && twice == 0, "count and next mixed: no record returned twice");
    tap_ok(nexts > 0 && n + nexts == N, "count and next mixed: %llu counted + %llu returned = %u",
           (unsigned long long)n, (unsigned long long)nexts, N);

    /* ranges with bounds inside buckets */
    TAP_RC(kvs_cursor_open(db, &c), KVS_OK);
    bad = 0;
    n = 0;
    for (r = 0; r + 1 < (int)(sizeof bounds / sizeof bounds[0]); r++) {
        uint64_t got = 0, want = 0;
        for (i = 0; i < N; i++)
            want += order[i] >= bounds[r] && order[i] < bounds[r + 1];
        TAP_RC(kvs_cursor_set_range(c, bounds[r], bounds[r + 1]), KVS_OK);
        if (count_rest(c, &got) != KVS_NOTFOUND || got != want) {
            tap_diag("range [%llx, %llx): %llu counted, %llu in it", (unsigned long long)bounds[r],
                     (unsigned long long)bounds[r + 1], (unsigned long long)got,
                     (unsigned long long)want);
            bad++;
        }
        n += got;
    }
    kvs_cursor_close(c);
    tap_ok(bad == 0, "each range counts exactly the records whose order lies in it");
    tap_ok(n == N, "the ranges together count the file: %llu", (unsigned long long)n);

    /* records inserted under a skipped stamp between steps, splitting buckets */
    TAP_RC(kvs_cursor_open(db, &c), KVS_OK);
    n = 0;
    for (step = 0; step < 20 && (rc = kvs_cursor_count(c, &m)) == KVS_OK; step++)
        n += m;
    TAP_RC(kvs_new_stamp(db, &stamp), KVS_OK);
    kvs_cursor_skip_stamp(c, stamp);
    kvs_set_stamp(db, stamp);
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    bad = 0;
    for (i = 0; i < NEW; i++) {
        char nk[32];
        sprintf(nk, "new-%u", i);
        if (kvs_put(db, nk, strlen(nk), val, sizeof val, 0) != KVS_OK)
            bad++;
    }
    TAP_RC(kvs_end(db), KVS_OK);
    kvs_set_stamp(db, 0);
    tap_ok(bad == 0, "%u records inserted under the skipped stamp (splits)", NEW);
    TAP_RC(count_rest(c, &n), KVS_NOTFOUND);
    kvs_cursor_close(c);
    tap_ok(n == N, "the old records counted once each, the stamped ones not: %llu",
           (unsigned long long)n);

    /* a delete by the cursor's handle while its copy holds the record */
    TAP_RC(kvs_cursor_open(db, &c), KVS_OK);
    kvs_cursor_skip_stamp(c, stamp);
    rc = kvs_cursor_next(c, &k, &v);
    mkkey(key, ids[0]);
    tap_ok(rc == KVS_OK && k.len == 12 && memcmp(k.data, key, 12) == 0,
           "the scan starts with the first key of the order");
    mkkey(key, ids[1]);
    TAP_RC(kvs_delete(db, key, 12), KVS_OK);
    n = 0;
    TAP_RC(count_rest(c, &n), KVS_NOTFOUND);
    kvs_cursor_close(c);
    tap_ok(n == N - 2, "after a mid-bucket delete: %llu counted of %u left", (unsigned long long)n,
           N - 2);
    TAP_RC(kvs_check(db), KVS_OK);
    kvs_close(db);
    unlink(path);
    return tap_done();
}
