/*
 * unit_readahead.c - a full scan's read-ahead in file order on a cold
 * private cache (pool.h, pool_file_set_readahead; README.md, "The buffer
 * pool"): pages come in runs, every one still checked.
 *   - a full scan (a cursor over the whole key order) on a new handle reads
 *     the file in runs of more than one page: far fewer reads than pages,
 *     the same records counted, the cache's read counter no more than the
 *     file's pages;
 *   - a cursor over a part of the order (a parallel scan's chunk) reads
 *     page by page, as does a lookup with no cursor open;
 *   - a page damaged in the middle of the file (its checksum, or its
 *     structure under a good checksum) is never used: the full scan fails
 *     with KVS_ECORRUPT naming that page, with the message the page-by-page
 *     path gives (a range cursor over the same order);
 *   - a cache too small for the file: the scan still counts every record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kvs.h"
#include "tap.h"
#include "files.h"
#include "pager.h"

#define N 3000

static char path[256];
static uint32_t order[N];
static unsigned long preads, multi_preads;

/* reads of pages past the header (a section's header reread is not one) */
static ssize_t counting_pread(int fd, void *buf, size_t n, off_t off)
{
    if (off >= 4096 && n % 4096 == 0)
        preads++;
    if (n > 4096)
        multi_preads++;
    return kvs_os_posix()->pread(fd, buf, n, off);
}

static void mkval(char *buf, unsigned i) { memset(buf, 'a' + i % 26, 100); }

/* A count of the whole file by a new handle (an empty cache of frames
 * pages), through a cursor over the whole order or, ranged, over
 * [0, KVS_REV_END) given as a range (the same records, no read-ahead...
 * see ranged_count).  KVS_OK and *n, or the error with its message in msg. */
static int cold_count(uint32_t frames, int ranged, uint64_t *n, char *msg, size_t msglen)
{
    kvs_os os = *kvs_os_posix();
    kvs *db;
    kvs_cursor *c;
    uint64_t k;
    int rc;
    os.pread = counting_pread;
    *n = 0;
    msg[0] = 0;
    if (!(db = test_open(path, KVS_RDONLY, frames, NULL, &os)))
        return KVS_EIO;
    preads = multi_preads = 0;
    if ((rc = kvs_cursor_open(db, &c)) == KVS_OK) {
        /* a range that is a part of the order, then widened again: the
         * cursor no longer counts as a full scan */
        if (ranged && (rc = kvs_cursor_set_range(c, 0, KVS_REV_END / 2)) == KVS_OK)
            rc = kvs_cursor_set_range(c, 0, KVS_REV_END);
        while (rc == KVS_OK && (rc = kvs_cursor_count(c, &k)) == KVS_OK && k > 0)
            *n += k;
        kvs_cursor_close(c);
    }
    if (rc == KVS_NOTFOUND)
        rc = KVS_OK;
    if (rc != KVS_OK)
        snprintf(msg, msglen, "%s", kvs_errmsg(db));
    kvs_close(db);
    return rc;
}

/* Rewrites page pgno of the file: one byte of its checksum flipped
 * (structure 0), or its slot count made impossible and the page sealed
 * again (structure 1: the checksum matches, page_validate must catch it). */
static int damage(uint32_t pgno, int structure)
{
    uint8_t pg[4096];
    FILE *f = fopen(path, "r+b");
    int ok = f && fseek(f, (long)pgno * 4096, SEEK_SET) == 0 && fread(pg, 1, 4096, f) == 4096;
    if (ok) {
        if (structure) {
            pg[PG_NSLOTS] = 0xff;
            pg[PG_NSLOTS + 1] = 0x7f;
            pager_seal(pg, pgno);
        } else {
            pg[PG_CKSUM] ^= 0x5a;
        }
        ok = fseek(f, (long)pgno * 4096, SEEK_SET) == 0 && fwrite(pg, 1, 4096, f) == 4096;
    }
    if (f)
        ok = fclose(f) == 0 && ok;
    return ok;
}

int main(void)
{
    kvs *db;
    kvs_stats st;
    uint64_t n, pages = 0;
    char msg[512], msg2[512];
    uint32_t victim = 0;
    unsigned long page_preads;
    int rc, kind;
    char save[300];

    snprintf(path, sizeof path, "/tmp/kvs_unit_readahead_%d.kvs", (int)getpid());
    snprintf(save, sizeof save, "%s.orig", path);
    db = open_fresh(path, 1024, 0);
    tap_ok(db && load_numbered(db, N, mkval, order) == 0, "%d records loaded", N);
    if (db && kvs_stats_get(db, &st) == KVS_OK)
        pages = st.pages;
    if (db)
        kvs_close(db);
    tap_ok(pages > 64, "the file has %llu pages", (unsigned long long)pages);

    /* runs of pages */
    TAP_RC(cold_count(4096, 0, &n, msg, sizeof msg), KVS_OK);
    tap_ok(n == N, "a full count on a new handle counts %llu records", (unsigned long long)n);
    tap_ok(multi_preads > 0 && preads * 4 < pages,
           "read in runs: %lu page reads (%lu of several pages) for %llu pages", preads, multi_preads,
           (unsigned long long)pages);
    db = test_open(path, KVS_RDONLY, 4096, NULL, NULL);
    if (db) {
        uint64_t m;
        kvs_cursor *c;
        TAP_RC(kvs_cursor_open(db, &c), KVS_OK);
        n = 0;
        while (kvs_cursor_count(c, &m) == KVS_OK && m > 0)
            n += m;
        kvs_cursor_close(c);
        TAP_RC(kvs_stats_get(db, &st), KVS_OK);
        tap_ok(n == N && st.cache_reads > 0 && st.cache_reads <= pages,
               "the cache read %llu pages of %llu, each once", (unsigned long long)st.cache_reads,
               (unsigned long long)pages);
        kvs_close(db);
    }

    /* page by page: a part of the order, a lookup */
    TAP_RC(cold_count(4096, 1, &n, msg, sizeof msg), KVS_OK);
    page_preads = preads;
    tap_ok(n == N && multi_preads == 0,
           "a cursor once ranged to a part of the order: %llu records, page by page (%lu page reads)",
           (unsigned long long)n, page_preads);
    {
        kvs_os os = *kvs_os_posix();
        kvs_slice v;
        char key[32];
        os.pread = counting_pread;
        db = test_open(path, KVS_RDONLY, 4096, NULL, &os);
        preads = multi_preads = 0;
        numbered_key(key, 17);
        rc = db ? kvs_get(db, key, 12, &v) : KVS_EIO;
        tap_ok(rc == KVS_OK && multi_preads == 0, "a lookup without a cursor reads page by page");
        if (db)
            kvs_close(db);
    }

    /* a small cache: the read-ahead stops once the unused frames are gone */
    TAP_RC(cold_count(32, 0, &n, msg, sizeof msg), KVS_OK);
    tap_ok(n == N, "a cache of 32 frames: the full count still counts %llu records", (unsigned long long)n);

    /* damage in the middle: never used, the same error as page by page */
    tap_ok(copyfile(path, save) == 0, "the file saved");
    for (kind = 0; kind < 2; kind++) {
        uint32_t p;
        /* a page the scan reads: the first from the middle on whose damage
         * the page-by-page count notices */
        for (p = (uint32_t)pages / 2; p < pages; p++) {
            if (copyfile(save, path) != 0 || !damage(p, kind))
                break;
            if (cold_count(4096, 1, &n, msg2, sizeof msg2) == KVS_ECORRUPT) {
                victim = p;
                break;
            }
        }
        tap_ok(victim == p && p < pages, "%s of page %u: the page-by-page count fails: %s",
               kind ? "structure damage" : "a checksum flipped", (unsigned)p, msg2);
        rc = cold_count(4096, 0, &n, msg, sizeof msg);
        tap_ok(rc == KVS_ECORRUPT && strcmp(msg, msg2) == 0,
               "the full count with read-ahead fails the same way: %s", msg);
    }
    tap_ok(copyfile(save, path) == 0, "the file restored");
    TAP_RC(cold_count(4096, 0, &n, msg, sizeof msg), KVS_OK);
    tap_ok(n == N, "and counts %llu records again", (unsigned long long)n);
    unlink(save);
    unlink(path);
    {
        char j[300];
        snprintf(j, sizeof j, "%s-journal", path);
        rmtree(j);
    }
    return tap_done();
}
