/*
 * unit_format.c - files of every released format the tests keep
 * (test/engine/fixtures/v<N>.kvs, each made by the engine of the release
 * that wrote format N, with the records of fixture_data.h) are read by this
 * engine exactly, pass check, are left byte for byte by an open and its
 * reads, and become version KVS_FORMAT_VERSION at their first write, after
 * which they read back and pass check again.  The format-5 fixture must be
 * there (it is the format this engine's change generations depend on
 * telling apart); the others are checked when present.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "kvs.h"
#include "header.h"
#include "tap.h"
#include "files.h"
#include "fixture_data.h"

#ifndef KVS_TEST_SRCDIR
#define KVS_TEST_SRCDIR "test/engine"
#endif

static char dir[] = "/tmp/unit_format.XXXXXX";
static char vbuf[FX_VMAX];

/* Every fixture record read by get with its exact value, and the number a
 * cursor returns; 1 when all match and the cursor returns `want`. */
static int reads_all(kvs *db, uint64_t want, const char *what)
{
    long n = 0;
    int rc, grc;
    unsigned bad = fx_first_wrong(db, vbuf, &grc);
    rc = kvs_begin(db, KVS_READ);
    if (rc == KVS_OK)
        rc = test_count(db, &n);
    (void)kvs_end(db);
    tap_ok(bad == FX_RECORDS && rc == KVS_OK && (uint64_t)n == want,
           "%s: all %u records read exactly (first wrong: %u, get rc %d), a cursor returns %ld (want %llu)",
           what, FX_RECORDS, bad, grc, n, (unsigned long long)want);
    return bad == FX_RECORDS && (uint64_t)n == want;
}

static void one(int v, int required)
{
    char src[512], path[600], what[64];
    kvs_stats st;
    uint64_t hash0;
    kvs *db;
    struct stat sb;
    snprintf(src, sizeof src, "%s/fixtures/v%d.kvs", KVS_TEST_SRCDIR, v);
    snprintf(what, sizeof what, "format-%d fixture", v);
    if (stat(src, &sb) != 0) {
        if (required)
            tap_ok(0, "%s: %s is missing", what, src);
        else
            tap_diag("%s: none kept (%s)", what, src);
        return;
    }
    snprintf(path, sizeof path, "%s/v%d.kvs", dir, v);
    tap_ok(copyfile(src, path) == 0 && file_le64(path, 24) % (1ull << 32) == (uint64_t)v,
           "%s: a copy, version %d at offset 24", what, v);
    hash0 = hashfile(path);

    /* an open and reads leave it byte for byte */
    db = test_open(path, KVS_NOSYNC, 0, NULL, NULL);
    tap_ok(db != NULL, "%s: this engine opens it", what);
    if (!db)
        return;
    TAP_RC(kvs_stats_get(db, &st), KVS_OK);
    tap_ok(st.format_version == (uint32_t)v && st.records == FX_RECORDS && st.value_pages > 0,
           "%s: version %u, %llu records, %llu value pages, %llu overflow pages", what,
           (unsigned)st.format_version, (unsigned long long)st.records,
           (unsigned long long)st.value_pages, (unsigned long long)st.overflow_pages);
    tap_ok(st.overflow_pages > 0, "%s: it has an overflow chain (%llu pages)", what,
           (unsigned long long)st.overflow_pages);
    TAP_RC(kvs_check(db), KVS_OK);
    reads_all(db, FX_RECORDS, what);
    TAP_RC(kvs_close(db), KVS_OK);
    tap_ok(hashfile(path) == hash0, "%s: the open, the check and the reads left it byte for byte", what);

    /* the first write upgrades it */
    db = test_open(path, KVS_NOSYNC, 0, NULL, NULL);
    if (!db)
        return;
    TAP_RC(kvs_put(db, "fx-new", 6, "new", 3, 0), KVS_OK);
    TAP_RC(kvs_stats_get(db, &st), KVS_OK);
    tap_ok(file_le64(path, 24) % (1ull << 32) == KVS_FORMAT_VERSION &&
           st.format_version == KVS_FORMAT_VERSION && st.file_id != 0,
           "%s: its first write made it version %u (in the file and the handle), with a file id", what,
           KVS_FORMAT_VERSION);
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);

    /* and the upgraded file reads back */
    db = test_open(path, KVS_NOSYNC, 0, NULL, NULL);
    if (!db)
        return;
    {
        kvs_slice s;
        int rc = kvs_get(db, "fx-new", 6, &s);
        tap_ok(rc == KVS_OK && s.len == 3 && memcmp(s.data, "new", 3) == 0,
               "%s upgraded: the new record reads back", what);
    }
    snprintf(what, sizeof what, "format-%d fixture upgraded", v);
    reads_all(db, FX_RECORDS + 1, what);
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);
}

int main(void)
{
    int v;
    if (!mkdtemp(dir))
        return 1;
    for (v = 1; v < (int)KVS_FORMAT_VERSION; v++)
        one(v, v == 5);
    if (rmtree(dir) != 0)
        tap_diag("could not remove %s", dir);
    return tap_done();
}
