/*
 * unit_abort.c - kvs_abort: a write section thrown away leaves the file byte
 * for byte as it was at kvs_begin, whatever the section did (puts that split
 * buckets and grow the file, replaces, deletes, value chains written and
 * freed, truncate, a new stamp, a new descriptor), with a cache small enough
 * that dirty pages are spilled and grown pages written early, and with one
 * large enough that nothing leaves memory.  After the abort the handle is
 * usable and its cache holds none of the discarded pages (gets and a scan
 * return the old records), the lock is released (another handle writes at
 * once), and a section completed before the aborted one stays.  A section
 * that grows an empty file far past a 16-page cache writes its grown pages
 * to the file, not the spill file, however often it evicts and reads them back,
 * and its abort still leaves the file as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include "kvs.h"
#include "files.h"
#include "tap.h"

static char dir[] = "/tmp/unit_abort.XXXXXX";
static char path[256];

#define NKEYS   3000          /* records before the sections */
#define NBIG    6             /* of them with values in value chains */
#define BIGLEN  (50 * 1000)

/* The value of key i in generation gen; big ones for the first NBIG keys. */
static size_t make_val(int i, int gen, char *buf)
{
    size_t n = i < NBIG ? BIGLEN + (size_t)i * 777 : 20 + (size_t)(i % 50);
    size_t j;
    for (j = 0; j < n; j++)
        buf[j] = (char)('a' + (i * 7 + (int)j + gen * 13) % 26);
    return n;
}

static char *vbuf;

/* a writer that waits for the lock gives up after 200 polls (about 1 s) */
static int polls;
static int give_up(void *arg)
{
    (void)arg;
    return ++polls >= 200;
}

/* growth of the file fails ENOSPC while armed */
static int full;
static ssize_t full_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    off_t end = lseek(fd, 0, SEEK_END);
    if (full && end >= 0 && off + (off_t)n > end) {
        errno = ENOSPC;
        return -1;
    }
    return pwrite(fd, buf, n, off);
}

/* pwrites to the spill file (its name holds ".spill.") */
static int spill_fd = -1;
static long spill_writes;
static off_t spill_bytes;           /* the spill file's end, as written */
static int spy_open(const char *p, int flags, mode_t mode)
{
    int fd = open(p, flags, mode);
    if (fd >= 0 && strstr(p, ".spill."))
        spill_fd = fd;
    else if (fd == spill_fd)
        spill_fd = -1;
    return fd;
}
static ssize_t spy_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (fd == spill_fd) {
        spill_writes++;
        if (off + (off_t)n > spill_bytes)
            spill_bytes = off + (off_t)n;
    }
    return pwrite(fd, buf, n, off);
}

/* NGROW puts of 100-byte values (generation gen) in one section of db. */
#define NGROW 4000
static int grow_section(kvs *db, int gen)
{
    char key[32];
    int i, rc = KVS_OK;
    for (i = 0; i < NGROW && rc == KVS_OK; i++) {
        snprintf(key, sizeof key, "grow-%d", i);
        memset(vbuf, 'a' + (i + gen) % 26, 100);
        rc = kvs_put(db, key, strlen(key), vbuf, 100, 0);
    }
    return rc;
}

/* Every key holds its generation-0 value, nothing else is there, the scan
 * sees exactly NKEYS records, and check passes. */
static int all_old(kvs *db, const char *what)
{
    kvs_slice v;
    kvs_stats st;
    char key[32];
    int i, bad = 0;
    long n;
    for (i = 0; i < NKEYS; i++) {
        size_t len = make_val(i, 0, vbuf);
        snprintf(key, sizeof key, "key-%d", i);
        if (kvs_get(db, key, strlen(key), &v) != KVS_OK || v.len != len || memcmp(v.data, vbuf, len) != 0)
            bad++;
    }
    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "new-%d", i);
        if (kvs_get(db, key, strlen(key), &v) != KVS_NOTFOUND)
            bad++;
    }
    if (test_count(db, &n) != KVS_OK || n != NKEYS)
        bad++;
    if (kvs_stats_get(db, &st) != KVS_OK || st.records != NKEYS)
        bad++;
    if (kvs_check(db) != KVS_OK)
        bad++;
    tap_ok(bad == 0, "%s: the handle sees the old records only (%d bad, scan %ld)", what, bad, n);
    return bad == 0;
}

/* Scenario bodies, each run inside a write section that is then aborted. */
static int s_puts(kvs *db)
{
    char key[32];
    int i, rc = KVS_OK;
    /* new keys: splits and growth; replaces; deletes */
    for (i = 0; i < 8000 && rc == KVS_OK; i++) {
        snprintf(key, sizeof key, "new-%d", i);
        rc = kvs_put(db, key, strlen(key), "some new value of forty bytes or so....", 40, 0);
    }
    for (i = NBIG; i < NKEYS && rc == KVS_OK; i += 3) {
        size_t len = make_val(i, 1, vbuf);
        snprintf(key, sizeof key, "key-%d", i);
        rc = kvs_put(db, key, strlen(key), vbuf, len, 0);
    }
    for (i = NBIG + 1; i < NKEYS && rc == KVS_OK; i += 3) {
        snprintf(key, sizeof key, "key-%d", i);
        rc = kvs_delete(db, key, strlen(key));
    }
    return rc;
}

static int s_chains(kvs *db)
{
    char key[32];
    int i, rc = KVS_OK;
    /* replace the big values (new chains written, old ones freed), add and
     * delete more, and replace small values by big ones */
    for (i = 0; i < NBIG && rc == KVS_OK; i++) {
        size_t len = make_val(i, 2, vbuf);
        snprintf(key, sizeof key, "key-%d", i);
        rc = kvs_put(db, key, strlen(key), vbuf, len + 5000, 0);
    }
    for (i = 0; i < 20 && rc == KVS_OK; i++) {
        snprintf(key, sizeof key, "new-%d", i);
        rc = kvs_put(db, key, strlen(key), vbuf, BIGLEN, 0);
    }
    for (i = 0; i < 20 && rc == KVS_OK; i += 2) {
        snprintf(key, sizeof key, "new-%d", i);
        rc = kvs_delete(db, key, strlen(key));
    }
    for (i = 0; i < 3 && rc == KVS_OK; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        rc = kvs_delete(db, key, strlen(key));
    }
    for (i = NBIG; i < NBIG + 10 && rc == KVS_OK; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        rc = kvs_put(db, key, strlen(key), vbuf, BIGLEN, 0);
    }
    return rc;
}

static int s_truncate(kvs *db)
{
    char key[32];
    int i, rc = kvs_put(db, "before-truncate", 15, "x", 1, 0);
    if (rc == KVS_OK)
        rc = kvs_truncate(db);
    /* the emptied table grows again over the old pages */
    for (i = 0; i < 4000 && rc == KVS_OK; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        rc = kvs_put(db, key, strlen(key), "after truncate", 14, 0);
    }
    if (rc == KVS_OK)
        rc = kvs_put(db, "new-1", 5, vbuf, BIGLEN, 0);
    return rc;
}

static int s_header(kvs *db)
{
    uint64_t s;
    int rc = kvs_new_stamp(db, &s);
    kvs_set_stamp(db, s);
    if (rc == KVS_OK)
        rc = kvs_put(db, "key-10", 6, "stamped", 7, 0);
    kvs_set_stamp(db, 0);
    if (rc == KVS_OK)
        rc = kvs_set_descriptor(db, "another descriptor", 18);
    return rc;
}

static int s_truncate_only(kvs *db)
{
    return kvs_truncate(db);
}

static const struct {
    const char *name;
    int (*fn)(kvs *);
} scenarios[] = {
    { "puts, splits, replaces, deletes", s_puts },
    { "value chains written and freed", s_chains },
    { "truncate, then puts over the old pages", s_truncate },
    { "truncate alone", s_truncate_only },
    { "a new stamp and descriptor", s_header },
};

int main(void)
{
    static const uint32_t caches[] = { 16, 8192 };
    kvs_options o;
    kvs *db, *b;
    kvs_slice v;
    kvs_stats st, st2;
    char key[32];
    off_t size0, size1;
    uint64_t h0, h1;
    size_t ci, si;
    int i, rc;

    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/a.kvs", dir);
    vbuf = calloc(1, BIGLEN * 2);   /* values are written past what make_val fills */
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    o.descriptor = "the descriptor";
    o.descriptor_len = 14;
    TAP_RC(kvs_open(path, &o, &db), KVS_OK);
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    for (i = 0; i < NKEYS; i++) {
        size_t len = make_val(i, 0, vbuf);
        snprintf(key, sizeof key, "key-%d", i);
        if ((rc = kvs_put(db, key, strlen(key), vbuf, len, 0)) != KVS_OK)
            break;
    }
    TAP_RC(kvs_end(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);
    o.flags = 0;
    o.descriptor = NULL;
    o.descriptor_len = 0;

    TAP_RC(kvs_open(path, &o, &db), KVS_OK);
    TAP_RC(kvs_abort(db), KVS_EINVAL);
    kvs_close(db);

    for (ci = 0; ci < sizeof caches / sizeof caches[0]; ci++) {
        o.cache_pages = caches[ci];
        TAP_RC(kvs_open(path, &o, &db), KVS_OK);
        all_old(db, "before");      /* fills the cache with the old pages */
        for (si = 0; si < sizeof scenarios / sizeof scenarios[0]; si++) {
            kvs_slice d;
            h0 = tap_file_hash(path, &size0);
            TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
            rc = scenarios[si].fn(db);
            tap_ok(rc == KVS_OK, "cache %u, %s: done in the section (%s)", (unsigned)caches[ci],
                   scenarios[si].name, kvs_strerror(rc));
            TAP_RC(kvs_abort(db), KVS_OK);
            tap_ok(kvs_in_section(db) == -1, "no section after kvs_abort");
            h1 = tap_file_hash(path, &size1);
            tap_ok(h0 == h1 && size0 == size1,
                   "cache %u, %s: kvs_abort left the file byte for byte as before (%lld -> %lld bytes)",
                   (unsigned)caches[ci], scenarios[si].name, (long long)size0, (long long)size1);
            all_old(db, scenarios[si].name);
            rc = kvs_descriptor(db, &d);
            tap_ok(rc == KVS_OK && d.len == 14 && memcmp(d.data, "the descriptor", 14) == 0,
                   "the old descriptor");
        }
        TAP_RC(kvs_stats_get(db, &st), KVS_OK);
        if (caches[ci] == 16)
            tap_ok(st.cache_evictions > 0, "cache 16: pages were evicted (%llu)",
                   (unsigned long long)st.cache_evictions);
        kvs_close(db);
    }

    o.cache_pages = 0;
    TAP_RC(kvs_open(path, &o, &db), KVS_OK);
    all_old(db, "reopened");

    /* a write section that changed nothing keeps the cache */
    TAP_RC(kvs_stats_get(db, &st), KVS_OK);
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    TAP_RC(kvs_get(db, "key-100", 7, &v), KVS_OK);
    TAP_RC(kvs_abort(db), KVS_OK);
    TAP_RC(kvs_get(db, "key-100", 7, &v), KVS_OK);
    TAP_RC(kvs_stats_get(db, &st2), KVS_OK);
    tap_ok(st2.cache_reads == st.cache_reads,
           "aborting a section that changed nothing keeps the cache (%llu page reads)",
           (unsigned long long)(st2.cache_reads - st.cache_reads));

    /* an aborted read section releases the lock too */
    TAP_RC(kvs_begin(db, KVS_READ), KVS_OK);
    TAP_RC(kvs_get(db, "key-100", 7, &v), KVS_OK);
    TAP_RC(kvs_abort(db), KVS_OK);

    /* the lock is released: another handle writes (and ends) at once; its
     * write is seen by the first handle */
    {
        kvs_options o2 = o;
        o2.interrupted = give_up;
        TAP_RC(kvs_open(path, &o2, &b), KVS_OK);
        TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
        TAP_RC(kvs_put(db, "key-5", 5, "aborted", 7, 0), KVS_OK);
        TAP_RC(kvs_abort(db), KVS_OK);
        polls = 0;
        TAP_RC(kvs_begin(b, KVS_WRITE), KVS_OK);
        TAP_RC(kvs_put(b, "key-5", 5, "other handle", 12, 0), KVS_OK);
        TAP_RC(kvs_end(b), KVS_OK);
        TAP_RC(kvs_get(db, "key-5", 5, &v), KVS_OK);
        tap_ok(v.len == 12 && memcmp(v.data, "other handle", 12) == 0,
               "after the abort, the other handle's write is seen");
        kvs_close(b);
    }

    /* a completed section stays, the aborted one after it does not; the
     * handle keeps working */
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    TAP_RC(kvs_put(db, "kept", 4, "one", 3, 0), KVS_OK);
    TAP_RC(kvs_end(db), KVS_OK);
    h0 = tap_file_hash(path, &size0);
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    TAP_RC(kvs_put(db, "kept", 4, "two", 3, 0), KVS_OK);
    TAP_RC(kvs_put(db, "lost", 4, "x", 1, 0), KVS_OK);
    TAP_RC(kvs_truncate(db), KVS_OK);
    TAP_RC(kvs_abort(db), KVS_OK);
    h1 = tap_file_hash(path, &size1);
    tap_ok(h0 == h1 && size0 == size1, "the section after the completed one left no trace");
    TAP_RC(kvs_get(db, "kept", 4, &v), KVS_OK);
    tap_ok(v.len == 3 && memcmp(v.data, "one", 3) == 0, "the completed section's value stays");
    TAP_RC(kvs_get(db, "lost", 4, &v), KVS_NOTFOUND);
    TAP_RC(kvs_put(db, "after", 5, "abort", 5, 0), KVS_OK);
    TAP_RC(kvs_get(db, "after", 5, &v), KVS_OK);
    TAP_RC(kvs_check(db), KVS_OK);

    TAP_RC(kvs_close(db), KVS_OK);

    /* a section whose operation failed (growth hit ENOSPC) is aborted: the
     * file as before, the handle usable once the disk has room */
    {
        kvs_os fos = *kvs_os_posix();
        kvs_options o3 = o;
        fos.pwrite = full_pwrite;
        o3.os = &fos;
        o3.cache_pages = 16;
        TAP_RC(kvs_open(path, &o3, &db), KVS_OK);
        h0 = tap_file_hash(path, &size0);
        TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
        full = 1;
        rc = KVS_OK;
        for (i = 0; i < 100000 && rc == KVS_OK; i++) {
            snprintf(key, sizeof key, "fill-%d", i);
            rc = kvs_put(db, key, strlen(key), vbuf, 100, 0);
        }
        tap_ok(rc == KVS_ENOSPC, "growth fails ENOSPC after %d puts", i);
        TAP_RC(kvs_put(db, "x", 1, "y", 1, 0), KVS_ENOSPC);
        TAP_RC(kvs_abort(db), KVS_OK);
        full = 0;
        h1 = tap_file_hash(path, &size1);
        tap_ok(h0 == h1 && size0 == size1, "the failed section, aborted, left the file as before");
        TAP_RC(kvs_get(db, "fill-0", 6, &v), KVS_NOTFOUND);
        TAP_RC(kvs_put(db, "fill-0", 6, "ok", 2, 0), KVS_OK);
        TAP_RC(kvs_check(db), KVS_OK);
        TAP_RC(kvs_delete(db, "fill-0", 6), KVS_OK);
        TAP_RC(kvs_close(db), KVS_OK);
    }

    /* a section that grows an empty file far past the cache: its grown
     * pages go to the file when evicted, each time (none to the spill
     * file); its abort leaves the file as before; its end keeps them all */
    {
        kvs_os sos = *kvs_os_posix();
        kvs_options o4;
        char gpath[300];
        int bad = 0;
        off_t sbytes;
        snprintf(gpath, sizeof gpath, "%s/g.kvs", dir);
        sos.open = spy_open;
        sos.pwrite = spy_pwrite;
        kvs_options_init(&o4);
        o4.flags = KVS_CREATE;
        o4.os = &sos;
        o4.cache_pages = 16;
        TAP_RC(kvs_open(gpath, &o4, &db), KVS_OK);
        h0 = tap_file_hash(gpath, &size0);
        TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
        spill_writes = 0;
        spill_bytes = 0;
        TAP_RC(grow_section(db, 0), KVS_OK);
        TAP_RC(kvs_stats_get(db, &st), KVS_OK);
        /* only the file's own pages are spilled, each time they are
         * evicted, each into its one slot: the spill file is no bigger
         * than the file was; grown pages revisited went to the spill file
         * too before (3653 spill writes, 274 file writes), and a page
         * spilled again took a new slot */
        tap_ok(spill_bytes <= size0 && st.cache_writes > 2 * st.pages,
               "growing an empty file, cache 16: grown pages written to the file, not spilled (%ld spill writes into %lld bytes, the file had %lld; %llu file writes for %llu pages)",
               spill_writes, (long long)spill_bytes, (long long)size0,
               (unsigned long long)st.cache_writes, (unsigned long long)st.pages);
        TAP_RC(kvs_abort(db), KVS_OK);
        h1 = tap_file_hash(gpath, &size1);
        tap_ok(h0 == h1 && size0 == size1, "the grown section, aborted, left the file as before (%lld -> %lld bytes)",
               (long long)size0, (long long)size1);
        TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
        spill_writes = 0;
        spill_bytes = 0;
        TAP_RC(grow_section(db, 0), KVS_OK);
        sbytes = spill_bytes;   /* the write-out then saves undo images after them */
        TAP_RC(kvs_end(db), KVS_OK);
        tap_ok(sbytes <= size0, "again, ended: %ld spill writes into %lld bytes", spill_writes,
               (long long)sbytes);
        for (i = 0; i < NGROW; i++) {
            snprintf(key, sizeof key, "grow-%d", i);
            if (kvs_get(db, key, strlen(key), &v) != KVS_OK || v.len != 100 ||
                ((const char *)v.data)[0] != (char)('a' + i % 26) ||
                ((const char *)v.data)[99] != (char)('a' + i % 26))
                bad++;
        }
        tap_ok(bad == 0, "every grown record is there (%d bad)", bad);
        TAP_RC(kvs_check(db), KVS_OK);
        /* the pages the file has now go to the spill file when evicted */
        TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
        spill_writes = 0;
        TAP_RC(grow_section(db, 1), KVS_OK);
        tap_ok(spill_writes > 0, "replacing them, cache 16: the file's own pages spilled (%ld)", spill_writes);
        TAP_RC(kvs_abort(db), KVS_OK);
        TAP_RC(kvs_check(db), KVS_OK);
        TAP_RC(kvs_close(db), KVS_OK);
        unlink(gpath);
    }

    /* truncate in an ended section shrinks the file at the end */
    o.cache_pages = 16;
    TAP_RC(kvs_open(path, &o, &db), KVS_OK);
    h0 = tap_file_hash(path, &size0);
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    TAP_RC(kvs_truncate(db), KVS_OK);
    TAP_RC(kvs_put(db, "only", 4, "one", 3, 0), KVS_OK);
    h1 = tap_file_hash(path, &size1);
    tap_ok(h0 == h1 && size0 == size1, "truncate changes nothing in the file before the section ends");
    TAP_RC(kvs_end(db), KVS_OK);
    h1 = tap_file_hash(path, &size1);
    tap_ok(size1 == 3 * KVS_PAGE_SIZE, "kvs_end wrote the truncate out: %lld bytes", (long long)size1);
    TAP_RC(kvs_stats_get(db, &st), KVS_OK);
    tap_ok(st.records == 1, "one record after truncate + put (%llu)", (unsigned long long)st.records);
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);

    unlink(path);
    rmdir(dir);
    free(vbuf);
    tap_diag("abort: %d checks", tap_n);
    return tap_done();
}
