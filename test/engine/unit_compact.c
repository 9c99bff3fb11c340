/*
 * unit_compact.c - kvs_compact: the file rewritten for its records and
 * renamed over the old one.
 *
 *  contents: many records (small, inline near the limit, and large values in
 *    value chains, some stamped), most deleted; compaction keeps every
 *    remaining record byte for byte, the scan order (hash seed), the
 *    descriptor, fill factor and stamps, drops the free pages and the
 *    surplus buckets, shrinks the file (sizes printed), kvs_check is clean,
 *    later writes work, nothing is left beside the file; an emptied table
 *    shrinks to its 3 pages.
 *  other handles: a second handle of this process opened before (one with a
 *    cursor half-way through a scan) reads the new file and its writes land
 *    in it; a second process that opened the file before, and was blocked on
 *    its lock during the compaction, moves to the new file and its writes
 *    survive.  A removed file (not replaced) keeps serving its handle.
 *  failures: every open / pwrite / fsync / pread / rename / flock / fstat of
 *    a compaction failing in turn: before the rename the old file is byte
 *    for byte unchanged, no temporary file is left, the handle works on; a
 *    failed fsync of the directory (after the rename) leaves the new file in
 *    place and the handle on it.  A leftover temporary file is replaced.
 *  refusals: inside a section, read-only handle, hard links, damaged file.
 *  the REPLACING flag: a section begin on an unflagged file makes no fstat or
 *    stat call (the follow check rides on the header reread); a compaction
 *    that dies between flagging the old file and the rename leaves the file
 *    usable at its path (its handles pay one fstat per section, a write
 *    section clears the flag, the next compaction works); an fstat failing
 *    then is an error for that section only; a version-1 file is read,
 *    stays byte for byte under a read-only handle, becomes version 6 on its
 *    first write, and a handle on it still follows a file renamed over it
 *    (an older engine's compaction, which sets no flag).
 *  the file id (format 3, kept by format 4): new files get distinct nonzero ids, a byte copy
 *    keeps it, a compaction gives the new file a new one (the old handles
 *    follow and report it); a version-2 file reads with id 0, stays
 *    version 2 byte for byte under read sections, an unchanging write
 *    section and a read-only handle, and its first write makes it version 6
 *    with an id that stays across writes and a reopen; a version-7 header
 *    is refused with KVS_EVERSION.
 *
 *   unit_compact [-q]
 */
#include "kvs.h"
#include "tap.h"
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <xxhash.h>

static char dir[] = "/tmp/kvs_compact.XXXXXX";
static char path[600], tmpl[600];
static int quick;

/* ---- the data ------------------------------------------------------------ */
static int NREC = 12000;         /* 3000 with -q */
static int NSMALL = 2000;        /* the fault and refusal tests' files; 600 with -q */
static unsigned char vbuf[70000];

static size_t key_of(int i, char *k) { return (size_t)sprintf(k, "key-%06d", i); }
static size_t val_of(int i, int ver, unsigned char *v)
{
    size_t n, j;
    if (i % 500 == 0)
        n = 30000 + (size_t)i % 30000;      /* a value chain of many pages */
    else if (i % 97 == 0)
        n = 1500;                           /* just too large to stay inline */
    else if (i % 89 == 0)
        n = 1080;                           /* just small enough */
    else
        n = (size_t)(i * 7 + ver * 3) % 300;
    for (j = 0; j < n; j++)
        v[j] = (unsigned char)(i * 31 + ver * 7 + j * 13);
    return n;
}
/* kept by the delete pass: every 10th record, and every large one */
static int kept(int i) { return i % 10 == 3 || i % 500 == 0; }
static int count_kept(int nrec)
{
    int i, n = 0;
    for (i = 0; i < nrec; i++)
        n += kept(i);
    return n;
}
/* i of a "key-NNNNNN" key (slices are not NUL-terminated) */
static int key_num(kvs_slice k)
{
    char b[16];
    size_t n = k.len > 4 && k.len < 14 ? k.len - 4 : 0;
    memcpy(b, (const char *)k.data + 4, n);
    b[n] = 0;
    return atoi(b);
}

static off_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

/* Files in the directory other than the named ones (leftovers). */
static int strays(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while (d && (de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".compact") || strstr(de->d_name, ".tmp.") || strstr(de->d_name, ".spill."))
            n++;
    if (d)
        closedir(d);
    return n;
}

static const char desc[] = "unit_compact descriptor: kept byte for byte";
static uint64_t stamp_used;         /* the stamp of the stamped records */

/* Fills a file: NREC records, those with i % 7 == 0 written under a stamp,
 * then deletes all but kept() ones. */
static int fill(const char *p, int nrec)
{
    kvs_options o;
    kvs *db;
    char k[32];
    int i, rc = KVS_OK;
    unlink(p);
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    o.hash_seed = 0x1234abcd5678ULL;
    o.fillfactor = 60;
    o.descriptor = desc;
    o.descriptor_len = sizeof desc;
    if (kvs_open(p, &o, &db) != KVS_OK)
        return 0;
    rc = kvs_begin(db, KVS_WRITE);
    if (!rc)
        rc = kvs_new_stamp(db, &stamp_used);
    for (i = 0; i < nrec && rc == KVS_OK; i++) {
        kvs_set_stamp(db, i % 7 == 0 ? stamp_used : 0);
        rc = kvs_put(db, k, key_of(i, k), vbuf, val_of(i, 0, vbuf), 0);
    }
    kvs_set_stamp(db, 0);
    if (!rc)
        rc = kvs_end(db);
    for (i = 0; i < nrec && rc == KVS_OK; i++)
        if (!kept(i))
            rc = kvs_delete(db, k, key_of(i, k));
    if (!rc)
        rc = kvs_check(db);
    kvs_close(db);
    return rc == KVS_OK;
}

/* Every record of the model (kept ones, version 0, plus `extra` keys
 * written later as "extra-N" = N) is there, byte for byte, and nothing else. */
static int verify(kvs *db, int nrec, int extra, char *why, size_t whylen)
{
    char k[32];
    kvs_slice v;
    int i, rc, want = 0;
    long n;
    for (i = 0; i < nrec; i++) {
        size_t kl = key_of(i, k), vl;
        rc = kvs_get(db, k, kl, &v);
        if (!kept(i)) {
            if (rc != KVS_NOTFOUND) {
                snprintf(why, whylen, "deleted key %d: %s", i, kvs_strerror(rc));
                return 0;
            }
            continue;
        }
        want++;
        vl = val_of(i, 0, vbuf);
        if (rc != KVS_OK || v.len != vl || (vl && memcmp(v.data, vbuf, vl) != 0)) {
            snprintf(why, whylen, "key %d: %s, %zu bytes (want %zu)", i, kvs_strerror(rc),
                     rc == KVS_OK ? v.len : 0, vl);
            return 0;
        }
    }
    for (i = 0; i < extra; i++) {
        size_t kl = (size_t)sprintf(k, "extra-%d", i);
        char w[32];
        size_t wl = (size_t)sprintf(w, "%d", i);
        want++;
        rc = kvs_get(db, k, kl, &v);
        if (rc != KVS_OK || v.len != wl || memcmp(v.data, w, wl) != 0) {
            snprintf(why, whylen, "extra key %d: %s", i, kvs_strerror(rc));
            return 0;
        }
    }
    if ((rc = test_count(db, &n)) != KVS_OK || n != want) {
        snprintf(why, whylen, "scan: %ld records (want %d), %s", n, want, kvs_strerror(rc));
        return 0;
    }
    return 1;
}

/* The keys in scan order, as one hash (the order follows the hash seed). */
static uint64_t scan_order(kvs *db, uint64_t skip_stamp, int *n)
{
    kvs_cursor *c;
    kvs_slice k, v;
    XXH3_state_t *st = XXH3_createState();
    uint64_t h;
    *n = 0;
    XXH3_64bits_reset(st);
    if (kvs_cursor_open(db, &c) == KVS_OK) {
        kvs_cursor_skip_stamp(c, skip_stamp);
        while (kvs_cursor_next(c, &k, &v) == KVS_OK) {
            XXH3_64bits_update(st, k.data, k.len);
            (*n)++;
        }
        kvs_cursor_close(c);
    }
    h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

static int open_plain(const char *p, kvs **db)
{
    kvs_options o;
    kvs_options_init(&o);
    return kvs_open(p, &o, db);
}

/* ---- 1. contents ---------------------------------------------------------------- */
static void test_contents(void)
{
    kvs *db;
    kvs_stats s0, s1;
    kvs_compact_info ci;
    kvs_slice d;
    char why[200] = "";
    uint64_t order0, order1, skip0, skip1, st2 = 0;
    int n0, n1, m0, m1, i, rc;
    char k[32];

    tap_ok(fill(path, NREC), "filled %d records, deleted all but %d", NREC, count_kept(NREC));
    TAP_RC(open_plain(path, &db), KVS_OK);
    TAP_RC(kvs_stats_get(db, &s0), KVS_OK);
    order0 = scan_order(db, 0, &n0);
    skip0 = scan_order(db, stamp_used, &m0);
    TAP_RC(kvs_compact(db, &ci), KVS_OK);
    TAP_RC(kvs_stats_get(db, &s1), KVS_OK);
    tap_diag("before: %llu bytes, %llu pages (%llu buckets, %llu overflow, %llu value, %llu free)",
             (unsigned long long)s0.file_bytes, (unsigned long long)s0.pages, (unsigned long long)s0.buckets,
             (unsigned long long)s0.overflow_pages, (unsigned long long)s0.value_pages,
             (unsigned long long)s0.free_pages);
    tap_diag("after:  %llu bytes, %llu pages (%llu buckets, %llu overflow, %llu value, %llu free)",
             (unsigned long long)s1.file_bytes, (unsigned long long)s1.pages, (unsigned long long)s1.buckets,
             (unsigned long long)s1.overflow_pages, (unsigned long long)s1.value_pages,
             (unsigned long long)s1.free_pages);
    tap_ok(ci.bytes_before == s0.file_bytes && ci.pages_before == s0.pages &&
           ci.bytes_after == s1.file_bytes && ci.pages_after == s1.pages && ci.records == s0.records,
           "kvs_compact reports the sizes before and after (%llu -> %llu bytes, %llu records)",
           (unsigned long long)ci.bytes_before, (unsigned long long)ci.bytes_after,
           (unsigned long long)ci.records);
    tap_ok(s1.file_bytes * 3 < s0.file_bytes, "the file shrank to less than a third");
    tap_ok((off_t)s1.file_bytes == file_size(path), "the file at the path has the new size");
    tap_ok(s1.free_pages == 0 && s0.free_pages > 0, "no free pages left (%llu before)",
           (unsigned long long)s0.free_pages);
    tap_ok(s1.buckets < s0.buckets && s1.records == s0.records && s1.value_pages == s0.value_pages,
           "fewer buckets, same records and value pages");
    tap_ok(s1.load_factor * 100 <= 60.0 && s1.load_factor * 100 > 60.0 * (s1.buckets - 1) / s1.buckets,
           "bucket count sized for the records at fill factor 60 (load %.3f)", s1.load_factor);
    tap_ok(s1.fillfactor == 60, "fill factor kept");
    TAP_RC(kvs_check(db), KVS_OK);
    tap_ok(verify(db, NREC, 0, why, sizeof why), "every remaining record byte for byte, deleted ones absent %s", why);
    order1 = scan_order(db, 0, &n1);
    skip1 = scan_order(db, stamp_used, &m1);
    tap_ok(order0 == order1 && n0 == n1, "same scan order (hash seed kept), %d records", n1);
    tap_ok(skip0 == skip1 && m1 == m0 && m1 < n1, "stamps kept: the stamped records are skipped as before (%d of %d)",
           n1 - m1, n1);
    TAP_RC(kvs_descriptor(db, &d), KVS_OK);
    tap_ok(d.len == sizeof desc && memcmp(d.data, desc, d.len) == 0, "descriptor kept");
    TAP_RC(kvs_new_stamp(db, &st2), KVS_OK);
    tap_ok(st2 > stamp_used, "stamp counter kept (new stamp %llu > %llu)", (unsigned long long)st2,
           (unsigned long long)stamp_used);
    tap_ok(strays() == 0, "no temporary file left");
    /* the table grows on as usual */
    rc = KVS_OK;
    for (i = 0; i < 5000 && rc == KVS_OK; i++) {
        char w[32];
        rc = kvs_put(db, k, (size_t)sprintf(k, "extra-%d", i), w, (size_t)sprintf(w, "%d", i), 0);
    }
    TAP_RC(rc, KVS_OK);
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);
    TAP_RC(open_plain(path, &db), KVS_OK);
    why[0] = 0;
    tap_ok(verify(db, NREC, 5000, why, sizeof why), "after 5000 more puts and a reopen: all there %s", why);
    /* a second compaction of an already compact file changes nothing it needs */
    TAP_RC(kvs_compact(db, &ci), KVS_OK);
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);

    /* every record deleted: back to the 3 pages of an empty file */
    TAP_RC(open_plain(path, &db), KVS_OK);
    {
        kvs_cursor *c;
        kvs_slice ck, cv;
        char kb[64];
        rc = kvs_cursor_open(db, &c);
        while (rc == KVS_OK && (rc = kvs_cursor_next(c, &ck, &cv)) == KVS_OK) {
            memcpy(kb, ck.data, ck.len);
            rc = kvs_delete(db, kb, ck.len);
        }
        kvs_cursor_close(c);
        tap_ok(rc == KVS_NOTFOUND, "deleted every record");
    }
    TAP_RC(kvs_stats_get(db, &s0), KVS_OK);
    TAP_RC(kvs_compact(db, &ci), KVS_OK);
    TAP_RC(kvs_stats_get(db, &s1), KVS_OK);
    tap_ok(s1.pages == 3 && file_size(path) == 3 * KVS_PAGE_SIZE && s1.records == 0,
           "an emptied table compacts to its 3 pages (%llu -> %lld bytes)", (unsigned long long)s0.file_bytes,
           (long long)file_size(path));
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_put(db, "again", 5, "x", 1, 0), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);
}

/* ---- 2. other handles ------------------------------------------------------------ */
static void test_second_handle(void)
{
    kvs *a, *b;
    kvs_stats st;
    kvs_slice v;
    kvs_cursor *c;
    kvs_slice ck, cv;
    char why[200] = "", k[32];
    int i, n = 0, dup = 0, rc;
    static unsigned char seen[12000];

    tap_ok(fill(path, NREC), "refilled");
    TAP_RC(open_plain(path, &a), KVS_OK);
    TAP_RC(open_plain(path, &b), KVS_OK);
    TAP_RC(kvs_get(b, "key-000003", 10, &v), KVS_OK);      /* b's cache is warm */
    /* b's cursor is a third through the scan when a compacts */
    memset(seen, 0, sizeof seen);
    TAP_RC(kvs_cursor_open(b, &c), KVS_OK);
    while (n < count_kept(NREC) / 3 && kvs_cursor_next(c, &ck, &cv) == KVS_OK) {
        i = key_num(ck);
        dup += seen[i]++;
        n++;
    }
    TAP_RC(kvs_compact(a, NULL), KVS_OK);
    while ((rc = kvs_cursor_next(c, &ck, &cv)) == KVS_OK) {
        i = key_num(ck);
        dup += seen[i]++;
        n++;
    }
    kvs_cursor_close(c);
    tap_ok(rc == KVS_NOTFOUND && dup == 0 && n == count_kept(NREC),
           "b's cursor, open across the compaction, returned each of the %d records once (%d, %d twice)",
           count_kept(NREC), n, dup);
    why[0] = 0;
    tap_ok(verify(b, NREC, 0, why, sizeof why), "b reads every record from the new file %s", why);
    TAP_RC(kvs_stats_get(b, &st), KVS_OK);
    tap_ok(st.reopens == 1 && (off_t)st.file_bytes == file_size(path),
           "b moved to the new file once (reopens %llu, size %llu)", (unsigned long long)st.reopens,
           (unsigned long long)st.file_bytes);
    for (i = 0, rc = KVS_OK; i < 300 && rc == KVS_OK; i++) {
        char w[32];
        rc = kvs_put(b, k, (size_t)sprintf(k, "extra-%d", i), w, (size_t)sprintf(w, "%d", i), 0);
    }
    TAP_RC(rc, KVS_OK);
    why[0] = 0;
    tap_ok(verify(a, NREC, 300, why, sizeof why), "a sees b's 300 writes after the compaction %s", why);
    TAP_RC(kvs_close(a), KVS_OK);
    TAP_RC(kvs_close(b), KVS_OK);
    TAP_RC(open_plain(path, &a), KVS_OK);
    why[0] = 0;
    tap_ok(verify(a, NREC, 300, why, sizeof why), "reopened: b's writes are in the file at the path %s", why);
    TAP_RC(kvs_check(a), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);

    /* a file removed, not replaced: its handle keeps working on it */
    TAP_RC(open_plain(path, &a), KVS_OK);
    unlink(path);
    TAP_RC(kvs_put(a, "after-unlink", 12, "y", 1, 0), KVS_OK);
    TAP_RC(kvs_get(a, "after-unlink", 12, &v), KVS_OK);
    TAP_RC(kvs_check(a), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);
}

/* A second process: opened before the compaction, blocked on the lock while
 * it runs (the compactor's rename lets it start its write and waits), then
 * writes; every write must be in the new file. */
static int go_pipe[2];
static int slow_rename(const char *a, const char *b)
{
    char c = 'g';
    if (write(go_pipe[1], &c, 1) != 1)
        return -1;
    usleep(300000);             /* the child is now waiting for the lock */
    return kvs_os_posix()->rename(a, b);
}

static void test_second_process(void)
{
    int ready[2], status, i;
    kvs *a;
    kvs_options o;
    kvs_os slow = *kvs_os_posix();
    kvs_slice v;
    char why[200] = "";
    pid_t pid;

    tap_ok(fill(path, NREC), "refilled");
    if (pipe(ready) != 0 || pipe(go_pipe) != 0)
        exit(2);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        kvs *c;
        kvs_stats st;
        char k[32], w[32], ch;
        int rc;
        if (open_plain(path, &c) != KVS_OK || kvs_get(c, "key-000003", 10, &v) != KVS_OK)
            _exit(10);
        if (write(ready[1], "r", 1) != 1 || read(go_pipe[0], &ch, 1) != 1)
            _exit(11);
        /* the compaction holds the lock now: this put waits for it */
        for (i = 0, rc = KVS_OK; i < 1000 && rc == KVS_OK; i++)
            rc = kvs_put(c, k, (size_t)sprintf(k, "extra-%d", i), w, (size_t)sprintf(w, "%d", i), 0);
        if (rc != KVS_OK)
            _exit(12);
        if (kvs_stats_get(c, &st) != KVS_OK || st.reopens != 1)
            _exit(13);
        if (kvs_get(c, "key-000503", 10, &v) != KVS_OK)
            _exit(14);
        _exit(kvs_close(c) == KVS_OK ? 0 : 15);
    }
    {
        char ch;
        tap_ok(read(ready[0], &ch, 1) == 1, "the child opened the file");
    }
    kvs_options_init(&o);
    slow.rename = slow_rename;
    o.os = &slow;
    TAP_RC(kvs_open(path, &o, &a), KVS_OK);
    TAP_RC(kvs_compact(a, NULL), KVS_OK);
    waitpid(pid, &status, 0);
    tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "the child, blocked on the old file's lock during the compaction, moved to the new file "
           "and wrote 1000 keys (exit %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    tap_ok(verify(a, NREC, 1000, why, sizeof why), "the child's writes are all in the new file %s", why);
    TAP_RC(kvs_close(a), KVS_OK);
    TAP_RC(open_plain(path, &a), KVS_OK);
    TAP_RC(kvs_check(a), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);
    close(ready[0]); close(ready[1]); close(go_pipe[0]); close(go_pipe[1]);
}

/* ---- 3. failures ------------------------------------------------------------------ */
enum { F_OPEN, F_PWRITE_EIO, F_PWRITE_ENOSPC, F_FSYNC, F_PREAD, F_RENAME, F_FLOCK, F_FSTAT, F_NKINDS };
static const char *fname[] = { "open", "pwrite EIO", "pwrite ENOSPC", "fsync", "pread", "rename",
                               "flock", "fstat/stat" };
static int armed, fkind, fired, renamed;
static long fail_at, ncall[F_NKINDS];

static int hit(int k)
{
    if (!armed)
        return 0;
    ncall[k]++;
    if (k == fkind && ncall[k] == fail_at) {
        fired = 1;
        return 1;
    }
    return 0;
}
static int x_open(const char *p, int fl, mode_t m)
{
    if (hit(F_OPEN)) { errno = EMFILE; return -1; }
    return kvs_os_posix()->open(p, fl, m);
}
static ssize_t x_pread(int fd, void *b, size_t n, off_t off)
{
    if (hit(F_PREAD)) { errno = EIO; return -1; }
    return kvs_os_posix()->pread(fd, b, n, off);
}
static ssize_t x_pwrite(int fd, const void *b, size_t n, off_t off)
{
    if (armed) ncall[F_PWRITE_ENOSPC]++;
    if (hit(F_PWRITE_EIO)) { errno = EIO; return -1; }
    /* a full disk: every write from the Nth on fails (a single ENOSPC while
     * growing is retried with one page, and may rightly succeed) */
    if (armed && fkind == F_PWRITE_ENOSPC && ncall[F_PWRITE_ENOSPC] >= fail_at) {
        fired = 1; errno = ENOSPC; return -1;
    }
    return kvs_os_posix()->pwrite(fd, b, n, off);
}
static int x_fsync(int fd)
{
    if (hit(F_FSYNC)) { errno = EIO; return -1; }
    return kvs_os_posix()->fsync(fd);
}
static int x_flock(int fd, int op)
{
    if (hit(F_FLOCK)) { errno = ENOLCK; return -1; }
    return kvs_os_posix()->flock(fd, op);
}
static int x_fstat(int fd, struct stat *st)
{
    if (hit(F_FSTAT)) { errno = EIO; return -1; }
    return kvs_os_posix()->fstat(fd, st);
}
static int x_stat(const char *p, struct stat *st)
{
    if (hit(F_FSTAT)) { errno = EIO; return -1; }
    return kvs_os_posix()->stat(p, st);
}
static int x_rename(const char *a, const char *b)
{
    int rc;
    if (hit(F_RENAME)) { errno = EIO; return -1; }
    rc = kvs_os_posix()->rename(a, b);
    if (rc == 0 && armed)
        renamed = 1;
    return rc;
}

/* One compaction of a fresh copy of the template with fault (kind, n);
 * returns 1 if everything held.  *fired_out: the fault happened. */
static int fault_case(int kind, long n, int *fired_out, char *why, size_t whylen)
{
    kvs_os fos = *kvs_os_posix();
    kvs_options o;
    kvs *db;
    kvs_slice v;
    uint64_t h0 = hashfile(tmpl);
    int rc, ok = 1;

    fos.open = x_open; fos.pread = x_pread; fos.pwrite = x_pwrite; fos.fsync = x_fsync;
    fos.flock = x_flock; fos.fstat = x_fstat; fos.stat = x_stat; fos.rename = x_rename;
    copyfile(tmpl, path);
    kvs_options_init(&o);
    o.os = &fos;
    o.cache_pages = 16;
    if (kvs_open(path, &o, &db) != KVS_OK) {
        snprintf(why, whylen, "open failed");
        return 0;
    }
    memset(ncall, 0, sizeof ncall);
    fkind = kind; fail_at = n; fired = 0; renamed = 0; armed = 1;
    rc = kvs_compact(db, NULL);
    armed = 0;
    *fired_out = fired;
    if (!fired) {
        if (rc != KVS_OK) { snprintf(why, whylen, "no fault, yet %s", kvs_strerror(rc)); ok = 0; }
    } else if (rc == KVS_OK) {
        snprintf(why, whylen, "fault swallowed");
        ok = 0;
    } else if (!renamed) {
        /* before the rename: the old file untouched, no leftover */
        if (hashfile(path) != h0) { snprintf(why, whylen, "%s, and the old file changed", kvs_strerror(rc)); ok = 0; }
        else if (strays()) { snprintf(why, whylen, "%s, and a temporary file is left", kvs_strerror(rc)); ok = 0; }
    } else if (rc != KVS_EIO || file_size(path) >= file_size(tmpl)) {
        snprintf(why, whylen, "after the rename: %s, size %lld", kvs_strerror(rc), (long long)file_size(path));
        ok = 0;
    }
    /* the handle works on, on whichever file is at the path */
    if (ok && (kvs_get(db, "key-000503", 10, &v) != KVS_OK || kvs_put(db, "extra-0", 7, "0", 1, 0) != KVS_OK ||
               kvs_check(db) != KVS_OK)) {
        snprintf(why, whylen, "the handle fails afterwards: %s", kvs_errmsg(db));
        ok = 0;
    }
    kvs_close(db);
    if (ok) {
        char w2[200] = "";
        if (open_plain(path, &db) != KVS_OK) {
            snprintf(why, whylen, "reopen failed");
            return 0;
        }
        if (!verify(db, NSMALL, 1, w2, sizeof w2) ||
            kvs_check(db) != KVS_OK) {
            snprintf(why, whylen, "the file at the path afterwards: %s %s", kvs_errmsg(db), w2);
            ok = 0;
        }
        kvs_close(db);
    }
    return ok;
}

static void test_faults(void)
{
    long counts[F_NKINDS];
    int k, fired_any;
    char why[300];

    /* the template: NSMALL records, most deleted */
    tap_ok(fill(tmpl, NSMALL), "fault template built (%d records)", NSMALL);
    /* a clean run counts the calls of each kind */
    fault_case(-1, 0, &fired_any, why, sizeof why);
    memcpy(counts, ncall, sizeof counts);
    tap_diag("a compaction makes %ld open, %ld pwrite, %ld fsync, %ld pread, %ld rename, %ld flock, "
             "%ld fstat/stat calls", counts[F_OPEN], counts[F_PWRITE_EIO], counts[F_FSYNC], counts[F_PREAD],
             counts[F_RENAME], counts[F_FLOCK], counts[F_FSTAT]);
    for (k = 0; k < F_NKINDS; k++) {
        long total = k == F_PWRITE_ENOSPC ? counts[F_PWRITE_EIO] : counts[k], n, step, runs = 0, bad = 0, nfired = 0;
        char first[400] = "";
        step = quick && total > 12 ? total / 12 : 1;
        for (n = 1; n <= total; n += step) {
            int f = 0;
            why[0] = 0;
            runs++;
            if (!fault_case(k, n, &f, why, sizeof why)) {
                if (!bad++)
                    snprintf(first, sizeof first, " (first: call %ld: %.300s)", n, why);
            }
            nfired += f;
        }
        tap_ok(bad == 0 && total > 0, "%s failing at each of %ld calls (%ld runs, %ld fired): old file whole and "
               "usable before the rename, new one after%s", fname[k], total, runs, nfired, first);
    }
    unlink(tmpl);
}

/* ---- 4. leftovers, interruption, refusals ------------------------------------------ */
static int interrupt_calls;
static int interrupt_at_5(void *arg)
{
    (void)arg;
    return ++interrupt_calls >= 5;
}

static void test_refusals(void)
{
    kvs *db;
    kvs_options o;
    char tmp[700], link2[700], why[200] = "";
    uint64_t h;
    int fd;

    tap_ok(fill(path, NSMALL), "refilled (%d)", NSMALL);
    /* a leftover temporary file (a crash's) is replaced */
    snprintf(tmp, sizeof tmp, "%s.compact", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    tap_ok(fd >= 0 && write(fd, "junk", 4) == 4 && close(fd) == 0, "a leftover %s.compact", "<path>");
    TAP_RC(open_plain(path, &db), KVS_OK);
    TAP_RC(kvs_compact(db, NULL), KVS_OK);
    tap_ok(strays() == 0 && verify(db, NSMALL, 0, why, sizeof why), "compaction over a leftover works, none left %s", why);
    /* interrupted half-way (the host's interrupted() callback, asked between
     * buckets): stopped before the rename, nothing changed */
    TAP_RC(kvs_close(db), KVS_OK);
    kvs_options_init(&o);
    o.interrupted = interrupt_at_5;
    TAP_RC(kvs_open(path, &o, &db), KVS_OK);
    h = hashfile(path);
    interrupt_calls = 0;
    TAP_RC(kvs_compact(db, NULL), KVS_EINTR);
    tap_ok(interrupt_calls == 5 && hashfile(path) == h && strays() == 0,
           "interrupted after 5 buckets: file untouched, no temporary file");
    interrupt_calls = -1000000;
    TAP_RC(kvs_put(db, "extra-0", 7, "0", 1, 0), KVS_OK);
    tap_ok(verify(db, NSMALL, 1, why, sizeof why), "the handle works on %s", why);
    TAP_RC(kvs_delete(db, "extra-0", 7), KVS_OK);
    /* inside a section */
    TAP_RC(kvs_begin(db, KVS_READ), KVS_OK);
    TAP_RC(kvs_compact(db, NULL), KVS_EINVAL);
    TAP_RC(kvs_end(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);
    /* read-only handle */
    kvs_options_init(&o);
    o.flags = KVS_RDONLY;
    TAP_RC(kvs_open(path, &o, &db), KVS_OK);
    TAP_RC(kvs_compact(db, NULL), KVS_ERDONLY);
    TAP_RC(kvs_close(db), KVS_OK);
    /* hard links */
    snprintf(link2, sizeof link2, "%s.link", path);
    tap_ok(link(path, link2) == 0, "a second hard link");
    h = hashfile(path);
    TAP_RC(open_plain(path, &db), KVS_OK);
    TAP_RC(kvs_compact(db, NULL), KVS_EINVAL);
    tap_ok(hashfile(path) == h && strays() == 0, "refused: %s; file untouched", kvs_errmsg(db));
    TAP_RC(kvs_close(db), KVS_OK);
    unlink(link2);
    /* a damaged file is not copied */
    TAP_RC(open_plain(path, &db), KVS_OK);
    {
        kvs_stats st;
        kvs_stats_get(db, &st);
        fd = open(path, O_WRONLY);
        tap_ok(fd >= 0 && pwrite(fd, "XXXXXXXX", 8, (off_t)(st.pages - 1) * KVS_PAGE_SIZE + 2000) == 8 &&
               close(fd) == 0, "damaged the last page");
    }
    h = hashfile(path);
    TAP_RC(kvs_compact(db, NULL), KVS_ECORRUPT);
    tap_ok(hashfile(path) == h && strays() == 0, "refused: %s; file untouched", kvs_errmsg(db));
    TAP_RC(kvs_close(db), KVS_OK);
}

/* ---- 5. the REPLACING flag, format versions ---------------------------------------- */
#define HD_VERSION_OFF 24
#define HD_FLAGS_OFF   120
#define HD_FILEID_OFF  2176
static long nstat;              /* fstat + stat calls of the counting table */
static int fail_fstat;
static int c_fstat(int fd, struct stat *st)
{
    nstat++;
    if (fail_fstat) { errno = EIO; return -1; }
    return kvs_os_posix()->fstat(fd, st);
}
static int c_stat(const char *p, struct stat *st)
{
    nstat++;
    return kvs_os_posix()->stat(p, st);
}
static kvs_os counting;
static int open_counting(const char *p, kvs **db)
{
    kvs_options o;
    counting = *kvs_os_posix();
    counting.fstat = c_fstat;
    counting.stat = c_stat;
    kvs_options_init(&o);
    o.os = &counting;
    return kvs_open(p, &o, db);
}
static uint32_t file_u32(const char *p, off_t off)
{
    unsigned char b[4] = { 0xff, 0xff, 0xff, 0xff };
    int fd = open(p, O_RDONLY);
    if (fd < 0 || pread(fd, b, 4, off) != 4)
        b[0] = 0xff;
    if (fd >= 0)
        close(fd);
    return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static uint64_t file_u64(const char *p, off_t off)
{
    return file_u32(p, off) | (uint64_t)file_u32(p, off + 4) << 32;
}
/* A compactor that dies just before its rename (the flag is on disk). */
static int die_rename(const char *a, const char *b)
{
    (void)a; (void)b;
    _exit(0);
}

static void test_flag(void)
{
    kvs *a, *b;
    kvs_options o;
    kvs_os dying = *kvs_os_posix();
    kvs_stats st;
    kvs_slice v;
    char why[200] = "", k[32];
    uint64_t h;
    long n0;
    int i, rc, status;
    pid_t pid;

    tap_ok(fill(path, NSMALL), "refilled (%d)", NSMALL);
    tap_ok(file_u32(path, HD_VERSION_OFF) == 6 && file_u32(path, HD_FLAGS_OFF) == 0,
           "a new file is format version 6, no flag");
    TAP_RC(open_counting(path, &b), KVS_OK);
    n0 = nstat;
    for (i = 0, rc = KVS_OK; i < 1000 && rc == KVS_OK; i++)
        rc = kvs_get(b, k, key_of(i % NSMALL, k), &v);
    tap_ok((rc == KVS_OK || rc == KVS_NOTFOUND) && nstat == n0,
           "1000 single gets, each its own section: %ld fstat/stat calls (0 wanted)", nstat - n0);
    TAP_RC(open_plain(path, &a), KVS_OK);
    TAP_RC(kvs_compact(a, NULL), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);
    n0 = nstat;
    TAP_RC(kvs_get(b, "key-000003", 10, &v), KVS_OK);
    TAP_RC(kvs_stats_get(b, &st), KVS_OK);
    /* fstat of the old descriptor, stat of the path, fstat of the new
     * descriptor (its own inode, for the change generations) */
    tap_ok(st.reopens == 1 && nstat - n0 == 3, "after a compaction: the next section read the flag and "
           "followed (reopens %llu, %ld fstat/stat calls)", (unsigned long long)st.reopens, nstat - n0);
    n0 = nstat;
    for (i = 0; i < 100; i++)
        (void)kvs_get(b, "key-000003", 10, &v);
    tap_ok(nstat == n0, "on the new file: no fstat/stat per section again (%ld)", nstat - n0);
    why[0] = 0;
    tap_ok(verify(b, NSMALL, 0, why, sizeof why), "and every record is there %s", why);

    /* a compactor dies between flagging the old file and the rename */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        kvs *c;
        kvs_options_init(&o);
        dying.rename = die_rename;
        o.os = &dying;
        if (kvs_open(path, &o, &c) != KVS_OK)
            _exit(3);
        (void)kvs_compact(c, NULL);
        _exit(4);
    }
    waitpid(pid, &status, 0);
    tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && (file_u32(path, HD_FLAGS_OFF) & 1) && strays() == 1,
           "a compactor died before its rename: the old file is flagged, a <path>.compact is left");
    n0 = nstat;
    TAP_RC(kvs_get(b, "key-000003", 10, &v), KVS_OK);
    TAP_RC(kvs_stats_get(b, &st), KVS_OK);
    tap_ok(st.reopens == 1 && nstat - n0 == 2, "a handle on the flagged file stays on it (reopens %llu), "
           "one fstat per section (%ld calls for 2)", (unsigned long long)st.reopens, nstat - n0);
    fail_fstat = 1;
    rc = kvs_get(b, "key-000003", 10, &v);
    fail_fstat = 0;
    tap_ok(rc == KVS_EIO, "an fstat failing then fails that section: %s", kvs_strerror(rc));
    TAP_RC(kvs_get(b, "key-000003", 10, &v), KVS_OK);
    TAP_RC(open_plain(path, &a), KVS_OK);
    TAP_RC(kvs_put(a, "extra-0", 7, "0", 1, 0), KVS_OK);
    tap_ok(file_u32(path, HD_FLAGS_OFF) == 0, "a write section cleared the flag");
    n0 = nstat;
    TAP_RC(kvs_get(b, "extra-0", 7, &v), KVS_OK);
    tap_ok(nstat == n0, "and sections are free of fstat again (%ld)", nstat - n0);
    why[0] = 0;
    tap_ok(verify(b, NSMALL, 1, why, sizeof why), "nothing lost %s", why);
    TAP_RC(kvs_compact(a, NULL), KVS_OK);
    tap_ok(strays() == 0 && file_u32(path, HD_FLAGS_OFF) == 0, "the next compaction works, no leftover, no flag");
    TAP_RC(kvs_check(b), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);
    TAP_RC(kvs_close(b), KVS_OK);

    /* version 1 */
    tap_ok(file_make_version(path, 1), "the header rewritten as version 1");
    h = hashfile(path);
    kvs_options_init(&o);
    o.flags = KVS_RDONLY;
    TAP_RC(kvs_open(path, &o, &a), KVS_OK);
    why[0] = 0;
    tap_ok(verify(a, NSMALL, 1, why, sizeof why), "a version-1 file is read %s", why);
    TAP_RC(kvs_check(a), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);
    tap_ok(hashfile(path) == h, "a read-only handle leaves it byte for byte (version 1)");
    TAP_RC(open_counting(path, &b), KVS_OK);
    TAP_RC(open_plain(path, &a), KVS_OK);
    copyfile(path, tmpl);
    TAP_RC(kvs_put(a, "extra-1", 7, "1", 1, 0), KVS_OK);
    tap_ok(file_u32(path, HD_VERSION_OFF) == 6 && file_u64(path, HD_FILEID_OFF) != 0,
           "its first write made it version 6, with an id");
    TAP_RC(kvs_close(a), KVS_OK);
    TAP_RC(kvs_get(b, "extra-1", 7, &v), KVS_OK);
    TAP_RC(kvs_close(b), KVS_OK);
    /* an older engine's compaction: a file renamed over a version-1 one, no flag */
    copyfile(tmpl, path);
    TAP_RC(open_counting(path, &b), KVS_OK);
    TAP_RC(kvs_get(b, "extra-0", 7, &v), KVS_OK);
    TAP_RC(kvs_get(b, "extra-1", 7, &v), KVS_NOTFOUND);
    {
        char other[700];
        snprintf(other, sizeof other, "%s.other", path);
        tap_ok(fill(other, NSMALL) && rename(other, path) == 0, "another file renamed over it");
    }
    TAP_RC(kvs_get(b, "extra-0", 7, &v), KVS_NOTFOUND);
    TAP_RC(kvs_stats_get(b, &st), KVS_OK);
    why[0] = 0;
    tap_ok(st.reopens == 1 && verify(b, NSMALL, 0, why, sizeof why),
           "the handle on the version-1 file followed (reopens %llu) %s", (unsigned long long)st.reopens, why);
    TAP_RC(kvs_close(b), KVS_OK);
    unlink(tmpl);
}

/* ---- 6. the file id ------------------------------------------------------------ */
static uint64_t id_of(kvs *db, uint32_t *version)
{
    kvs_stats st;
    if (kvs_stats_get(db, &st) != KVS_OK)
        return 0;
    if (version)
        *version = st.format_version;
    return st.file_id;
}

static void test_file_id(void)
{
    char other[700], copy[700], why[200] = "";
    kvs *a, *b, *r;
    kvs_options o;
    kvs_slice v;
    kvs_stats st;
    uint64_t id, id2, h;
    uint32_t ver = 0;

    snprintf(other, sizeof other, "%s.other", path);
    snprintf(copy, sizeof copy, "%s.copy", path);
    /* new files: distinct nonzero ids, in the file and in kvs_stats */
    tap_ok(fill(path, NSMALL) && fill(other, NSMALL), "two new files");
    id = file_u64(path, HD_FILEID_OFF);
    id2 = file_u64(other, HD_FILEID_OFF);
    tap_ok(id != 0 && id2 != 0 && id != id2, "new files get distinct nonzero ids (%016llx, %016llx)",
           (unsigned long long)id, (unsigned long long)id2);
    TAP_RC(open_plain(path, &a), KVS_OK);
    id2 = id_of(a, &ver);
    tap_ok(id2 == id && ver == 6, "kvs_stats reports the id and format version %u", (unsigned)ver);
    /* a byte copy keeps it (the pool tells the two apart by inode) */
    tap_ok(copyfile(path, copy) == 0, "a byte copy");
    TAP_RC(open_plain(copy, &r), KVS_OK);
    tap_ok(id_of(r, NULL) == id, "the copy carries the same id");
    TAP_RC(kvs_close(r), KVS_OK);
    unlink(copy);
    unlink(other);

    /* compaction: the new file has a new id, the old handles follow to it */
    TAP_RC(open_plain(path, &b), KVS_OK);
    TAP_RC(kvs_get(b, "key-000003", 10, &v), KVS_OK);
    TAP_RC(kvs_compact(a, NULL), KVS_OK);
    id2 = file_u64(path, HD_FILEID_OFF);
    tap_ok(id2 != 0 && id2 != id, "the compacted file has a new id (%016llx)", (unsigned long long)id2);
    tap_ok(id_of(a, NULL) == id2, "the compacting handle reports it");
    TAP_RC(kvs_get(b, "key-000003", 10, &v), KVS_OK);
    TAP_RC(kvs_stats_get(b, &st), KVS_OK);
    tap_ok(st.reopens == 1 && st.file_id == id2, "the other handle followed (reopens %llu) and reports it",
           (unsigned long long)st.reopens);
    TAP_RC(kvs_close(a), KVS_OK);
    TAP_RC(kvs_close(b), KVS_OK);

    /* a version-2 file: id 0 until its first write */
    tap_ok(file_make_version(path, 2) && file_u64(path, HD_FILEID_OFF) == 0, "the header rewritten as version 2");
    h = hashfile(path);
    kvs_options_init(&o);
    o.flags = KVS_RDONLY;
    TAP_RC(kvs_open(path, &o, &r), KVS_OK);
    id = id_of(r, &ver);
    tap_ok(id == 0 && ver == 2, "a read-only handle reads it: version %u, id %llu", (unsigned)ver,
           (unsigned long long)id);
    tap_ok(verify(r, NSMALL, 0, why, sizeof why), "every record is there %s", why);
    TAP_RC(kvs_open(path, NULL, &a), KVS_OK);
    TAP_RC(kvs_open(path, NULL, &b), KVS_OK);
    TAP_RC(kvs_get(a, "key-000003", 10, &v), KVS_OK);
    TAP_RC(kvs_begin(a, KVS_READ), KVS_OK);
    TAP_RC(kvs_get(a, "key-000013", 10, &v), KVS_OK);
    TAP_RC(kvs_end(a), KVS_OK);
    TAP_RC(kvs_begin(a, KVS_WRITE), KVS_OK);
    TAP_RC(kvs_get(a, "key-000013", 10, &v), KVS_OK);
    TAP_RC(kvs_end(a), KVS_OK);
    id = id_of(a, &ver);
    tap_ok(id == 0 && ver == 2 && id_of(b, NULL) == 0, "read sections and an unchanging "
           "write section: still version %u, id %llu", (unsigned)ver, (unsigned long long)id);
    TAP_RC(kvs_close(r), KVS_OK);
    tap_ok(hashfile(path) == h, "and the file is byte for byte as it was");
    TAP_RC(kvs_put(a, "extra-2", 7, "2", 1, 0), KVS_OK);
    id = file_u64(path, HD_FILEID_OFF);
    tap_ok(file_u32(path, HD_VERSION_OFF) == 6 && id != 0, "one write made it version 6 with an id (%016llx)",
           (unsigned long long)id);
    tap_ok(id_of(a, &ver) == id && ver == 6, "the writing handle reports it");
    tap_ok(id_of(b, &ver) == id && ver == 6, "another handle's next section too");
    TAP_RC(kvs_put(a, "extra-3", 7, "3", 1, 0), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);
    TAP_RC(kvs_close(b), KVS_OK);
    TAP_RC(open_plain(path, &a), KVS_OK);
    tap_ok(id_of(a, NULL) == id && file_u64(path, HD_FILEID_OFF) == id,
           "the id stays the same across writes and a reopen");
    TAP_RC(kvs_get(a, "extra-2", 7, &v), KVS_OK);
    TAP_RC(kvs_close(a), KVS_OK);

    /* a version this engine does not know */
    tap_ok(file_make_version(path, 7), "the header rewritten as version 7 (valid checksum)");
    h = hashfile(path);
    a = NULL;
    TAP_RC(kvs_open(path, NULL, &a), KVS_EVERSION);
    tap_ok(a == NULL && hashfile(path) == h, "refused, file untouched");
}

int main(int argc, char **argv)
{
    quick = (argc > 1 && strcmp(argv[1], "-q") == 0) || getenv("KVS_TEST_QUICK") != NULL;
    if (quick) {
        NREC = 3000;
        NSMALL = 600;
    }
    if (!mkdtemp(dir))
        return 2;
    snprintf(path, sizeof path, "%s/t.kvs", dir);
    snprintf(tmpl, sizeof tmpl, "%s/template.kvs", dir);
    test_contents();
    test_second_handle();
    test_second_process();
    test_faults();
    test_refusals();
    test_flag();
    test_file_id();
    unlink(path);
    rmdir(dir);
    return tap_done();
}
