/*
 * unit_range.c - unit tests of the range cursor (kvs_cursor_set_range):
 * the ranges of a partition of the scan order together visit exactly what
 * one full scan does, in the same order, each record once; also with
 * inserts (and so bucket splits) and deletes of other records between the
 * steps, outside and inside read sections, with uneven partitions, empty
 * and one-value ranges, and bad ranges refused.  A parallel scan (the FDW)
 * hands such ranges to its participants.
 *
 *   unit_range      20000 records scanned (+ 30000 the churn deletes);
 *                   KVS_TEST_QUICK=2 (valgrind): 5000 (+ 7500), and the
 *                   file opened with KVS_NOSYNC (every put is a section of
 *                   its own, and their fsyncs were most of the run's time;
 *                   durability is not what this program checks)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kvs.h"
#include "tap.h"
#include "files.h"

static char path[256];

/* key-%08u: the id, or -1 for another key */
static long key_id(const kvs_slice *k)
{
    char kb[16];
    unsigned id;
    if (k->len != 12)
        return -1;
    memcpy(kb, k->data, 12);
    kb[12] = 0;
    if (sscanf(kb, "key-%8u", &id) != 1)
        return -1;
    return (long)id;
}

/* The ids of a full scan, in its order (n at most) into out; the count. */
static unsigned full_order(kvs *db, unsigned *out, unsigned n)
{
    kvs_cursor *c;
    kvs_slice k, v;
    unsigned m = 0;
    if (kvs_cursor_open(db, &c) != KVS_OK)
        return 0;
    while (kvs_cursor_next(c, &k, &v) == KVS_OK) {
        long id = key_id(&k);
        if (id >= 0 && (unsigned)id < n && m < n)
            out[m++] = (unsigned)id;
    }
    kvs_cursor_close(c);
    return m;
}

/*
 * Scans the ranges bounds[0..nb) (bounds[0] = 0, bounds[nb] = 2^32) with one
 * cursor, in order.  Counts each id of [0, n) seen in mark[] and appends it
 * to order[].  churn: between steps insert a new key (splits) and delete an
 * id >= n (records not present for the whole scan).  section: each range in
 * one read section.  Returns the number of ids of [0, n) seen.
 */
static unsigned scan_ranges(kvs *db, const uint64_t *bounds, unsigned nb, unsigned n,
                            unsigned char *mark, unsigned *order, int churn, int section,
                            unsigned *bad)
{
    kvs_cursor *c;
    kvs_slice k, v;
    unsigned r, seen = 0, ins = 0;
    char nk[32], val[100];
    memset(val, 'v', sizeof val);
    if (kvs_cursor_open(db, &c) != KVS_OK) {
        (*bad)++;
        return 0;
    }
    for (r = 0; r < nb; r++) {
        int rc;
        if (kvs_cursor_set_range(c, bounds[r], bounds[r + 1]) != KVS_OK) {
            tap_diag("set_range: %s", kvs_errmsg(db));
            (*bad)++;
            break;
        }
        if (section && kvs_begin(db, KVS_READ) != KVS_OK)
            (*bad)++;
        while ((rc = kvs_cursor_next(c, &k, &v)) == KVS_OK) {
            long id = key_id(&k);
            if (id >= 0 && (unsigned)id < n) {
                if (mark[id]++) {
                    tap_diag("id %u seen again in range %u", (unsigned)id, r);
                    (*bad)++;
                }
                order[seen++] = (unsigned)id;
            }
            if (churn && !section) {
                sprintf(nk, "new-%u", ins++);
                if (kvs_put(db, nk, strlen(nk), val, sizeof val, 0) != KVS_OK) {
                    tap_diag("put: %s", kvs_errmsg(db));
                    (*bad)++;
                }
                sprintf(nk, "key-%08u", n + ins);
                (void)kvs_delete(db, nk, 12);
            }
        }
        if (rc != KVS_NOTFOUND) {
            tap_diag("next: %s", kvs_errmsg(db));
            (*bad)++;
        }
        if (section && kvs_end(db) != KVS_OK)
            (*bad)++;
    }
    kvs_cursor_close(c);
    return seen;
}

static int same_order(const unsigned *a, const unsigned *b, unsigned n)
{
    unsigned i;
    for (i = 0; i < n; i++)
        if (a[i] != b[i]) {
            tap_diag("order differs at %u: %u, full scan %u", i, a[i], b[i]);
            return 0;
        }
    return 1;
}

int main(void)
{
    kvs *db;
    kvs_cursor *c;
    kvs_slice k, v;
    char key[32], val[100];
    const int small = tap_quick() >= 2;
    unsigned i, n = small ? 5000 : 20000, extra = small ? 7500 : 30000, seen, bad, full;
    unsigned char *mark = calloc(n, 1);
    unsigned *order = calloc(n, sizeof *order), *base = calloc(n, sizeof *base);
    uint64_t bounds[258];
    int rc;

    snprintf(path, sizeof path, "/tmp/unit_range.%d.kvs", (int)getpid());
    db = open_fresh(path, 256, small ? KVS_NOSYNC : 0);
    tap_ok(db != NULL, "create");
    if (!db)
        return tap_done();
    memset(val, 'v', sizeof val);
    /* ids >= n are deleted by the churn, so some are gone during the scan */
    for (i = 0; i < n + extra; i++) {
        sprintf(key, "key-%08u", i);
        if (kvs_put(db, key, 12, val, sizeof val, 0) != KVS_OK)
            break;
    }
    tap_ok(i == n + extra, "%u records loaded", i);
    full = full_order(db, base, n);
    tap_ok(full == n, "full scan sees the %u records", full);
    {
        kvs_stats st;
        if (kvs_stats_get(db, &st) == KVS_OK)
            tap_diag("buckets %llu level %u split %llu", (unsigned long long)st.buckets,
                     st.level, (unsigned long long)st.split);
    }

    /* 256 equal ranges, outside sections: the full scan, in its order */
    for (i = 0; i <= 256; i++)
        bounds[i] = ((uint64_t)i << 32) / 256;
    bad = 0;
    seen = scan_ranges(db, bounds, 256, n, mark, order, 0, 0, &bad);
    tap_ok(bad == 0 && seen == n, "256 ranges: %u seen, %u bad", seen, bad);
    tap_ok(seen == n && same_order(order, base, n), "256 ranges in order = the full scan's order");

    /* the same inside read sections */
    memset(mark, 0, n);
    bad = 0;
    seen = scan_ranges(db, bounds, 256, n, mark, order, 0, 1, &bad);
    tap_ok(bad == 0 && seen == n && same_order(order, base, n),
           "256 ranges in read sections: %u seen, %u bad, full scan's order", seen, bad);

    /* an uneven partition: ranges of 1, small, and huge widths */
    {
        unsigned nb = 0;
        uint64_t at = 0, step = 1;
        bounds[nb++] = 0;
        while (at < KVS_REV_END && nb < 257) {
            at += step;
            step = step * 7 + 3;
            if (at > KVS_REV_END || nb == 256)
                at = KVS_REV_END;
            bounds[nb++] = at;
        }
        memset(mark, 0, n);
        bad = 0;
        seen = scan_ranges(db, bounds, nb - 1, n, mark, order, 0, 0, &bad);
        tap_ok(bad == 0 && seen == n && same_order(order, base, n),
               "%u uneven ranges: %u seen, %u bad, full scan's order", nb - 1, seen, bad);
    }

    /* inserts (splits) and deletes of other records between steps */
    {
        kvs_stats s0, s1;
        for (i = 0; i <= 256; i++)
            bounds[i] = ((uint64_t)i << 32) / 256;
        TAP_RC(kvs_stats_get(db, &s0), KVS_OK);
        memset(mark, 0, n);
        bad = 0;
        seen = scan_ranges(db, bounds, 256, n, mark, order, 1, 0, &bad);
        TAP_RC(kvs_stats_get(db, &s1), KVS_OK);
        tap_ok(s1.buckets > s0.buckets, "the churn split buckets (%llu -> %llu)",
               (unsigned long long)s0.buckets, (unsigned long long)s1.buckets);
        tap_ok(bad == 0 && seen == n, "256 ranges during inserts and deletes: %u seen, %u bad",
               seen, bad);
        TAP_RC(kvs_check(db), KVS_OK);
    }

    /* the same churn over one range, the whole space (the full cursor) */
    {
        uint64_t whole[2] = {0, KVS_REV_END};
        memset(mark, 0, n);
        bad = 0;
        seen = scan_ranges(db, whole, 1, n, mark, order, 1, 0, &bad);
        tap_ok(bad == 0 && seen == n, "one whole range during inserts and deletes: %u seen, %u bad",
               seen, bad);
    }

    /* the range restarts the cursor: a range scanned twice is seen twice */
    TAP_RC(kvs_cursor_open(db, &c), KVS_OK);
    {
        unsigned a = 0, b = 0;
        TAP_RC(kvs_cursor_set_range(c, 0, KVS_REV_END / 2), KVS_OK);
        while (kvs_cursor_next(c, &k, &v) == KVS_OK)
            a++;
        TAP_RC(kvs_cursor_set_range(c, 0, KVS_REV_END / 2), KVS_OK);
        while (kvs_cursor_next(c, &k, &v) == KVS_OK)
            b++;
        tap_ok(a == b && a > 0, "a range set again is scanned again (%u, %u)", a, b);
    }
    /* empty and out-of-space ranges */
    TAP_RC(kvs_cursor_set_range(c, 12345, 12345), KVS_OK);
    TAP_RC(kvs_cursor_next(c, &k, &v), KVS_NOTFOUND);
    TAP_RC(kvs_cursor_set_range(c, 10, 5), KVS_EINVAL);
    TAP_RC(kvs_cursor_set_range(c, 0, KVS_REV_END + 1), KVS_EINVAL);
    TAP_RC(kvs_cursor_set_range(c, KVS_REV_END, KVS_REV_END), KVS_OK);
    TAP_RC(kvs_cursor_next(c, &k, &v), KVS_NOTFOUND);
    /* the last value alone: [2^32 - 1, 2^32) */
    TAP_RC(kvs_cursor_set_range(c, KVS_REV_END - 1, KVS_REV_END), KVS_OK);
    rc = kvs_cursor_next(c, &k, &v);
    tap_ok(rc == KVS_OK || rc == KVS_NOTFOUND, "the one-value last range scans");
    kvs_cursor_close(c);

    kvs_close(db);
    unlink(path);
    free(mark);
    free(order);
    free(base);
    return tap_done();
}
