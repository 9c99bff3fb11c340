/*
 * unit_journal.c - the journal (src/engine/journal.c; README, "The
 * journal"): records and their round trip through recovery, a torn tail,
 * group commit across processes, replay after a crash between the flush and
 * the write-back (a child _exits there), a torn header and a torn page
 * repaired, records in doubt with and without xid_status, a failed fsync
 * (KVS_EJOURNAL, not retried), a failed write-back (the handle refuses
 * writes; the reopen replays it), checkpoints reusing the journal, a
 * version-4 file read and upgraded to version 6, a compacted file never
 * replayed into, the private "<path>-journal" of a standalone handle and
 * the journal a header names.
 */
#include "kvs.h"
#include "tap.h"
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define HD_VERSION_OFF 24
#define HD_JLSN_OFF    2192
#define HD_JPATH_OFF   2204

static char dir[256], path[300], jdir[300];
static const char *crash_path = path;   /* the file crash_after_flush writes */

#define file_u64 file_le64

static kvs_journal *jopen(const char *d, int (*st)(void *, uint64_t), const kvs_os *os, uint64_t ckpt)
{
    kvs_journal_options jo;
    kvs_journal *j = NULL;
    int rc;
    kvs_journal_options_init(&jo);
    jo.xid_status = st;
    jo.os = os;
    jo.checkpoint_bytes = ckpt;
    rc = kvs_journal_open(d, &jo, &j);
    if (rc)
        tap_diag("kvs_journal_open(%s): %s: %s", d, kvs_strerror(rc), kvs_journal_errmsg(NULL));
    return j;
}

static kvs *fopen_j(const char *p, kvs_journal *j, int flags)
{
    return test_open(p, KVS_CREATE | flags, 16, j, NULL);
}

static void key_of(int i, char *k) { snprintf(k, 32, "key-%06d", i); }

/* n records from `from` with values of version v, in one write section */
static int put_range(kvs *db, int from, int n, int v)
{
    char k[32], val[200];
    int i, rc = kvs_begin(db, KVS_WRITE);
    for (i = from; i < from + n && rc == KVS_OK; i++) {
        key_of(i, k);
        snprintf(val, sizeof val, "value-%d-of-%d-%0100d", v, i, i);
        rc = kvs_put(db, k, strlen(k), val, strlen(val), 0);
    }
    return rc;
}

/* the records from..from+n-1 hold version v (or, v < 0, are absent) */
static int has_range(kvs *db, int from, int n, int v)
{
    char k[32], val[200];
    kvs_slice s;
    int i;
    for (i = from; i < from + n; i++) {
        int rc;
        key_of(i, k);
        rc = kvs_get(db, k, strlen(k), &s);
        if (v < 0) {
            if (rc != KVS_NOTFOUND)
                return 0;
            continue;
        }
        snprintf(val, sizeof val, "value-%d-of-%d-%0100d", v, i, i);
        if (rc != KVS_OK || s.len != strlen(val) || memcmp(s.data, val, s.len) != 0)
            return 0;
    }
    return 1;
}

static void cleanup(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        tap_diag("cleanup of %s failed", dir);
}

/* A child that commits a write section's record (durable) and dies before
 * writing it back: what recovery must repair.  xid 0 = the engine alone.
 * damage: 1 = also scribble over page 0 (a torn header write), 2 = over
 * the last page (a torn data page). */
static int crash_after_flush(const char *jd, int from, int n, int v, uint64_t xid, int damage)
{
    pid_t pid = fork();
    int status;
    if (pid == 0) {
        kvs_journal *j = jopen(jd, NULL, NULL, 0);
        kvs *db = j ? fopen_j(crash_path, j, 0) : NULL;
        uint64_t lsn = 0;
        if (!db || put_range(db, from, n, v) != KVS_OK || kvs_prepare(db, xid, &lsn) != KVS_OK ||
            lsn == 0 || kvs_journal_flush(j, lsn) != KVS_OK)
            _exit(2);
        if (damage) {
            char junk[4096];
            int fd = open(crash_path, O_RDWR);
            off_t at = 0;
            memset(junk, 0x5a, sizeof junk);
            if (damage == 2) {
                struct stat st;
                if (fstat(fd, &st) != 0)
                    _exit(3);
                at = st.st_size - 4096;
            }
            if (fd < 0 || pwrite(fd, junk, 2048, at) != 2048)
                _exit(3);
        }
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- replay after a crash, torn header and page ---- */
/* Flips the last byte of fd (size bytes) that is not a zero. */
static int tear_last_byte(int fd, off_t size)
{
    unsigned char b = 0;
    while (size > 0 && pread(fd, &b, 1, size - 1) == 1 && b == 0)
        size--;
    if (size == 0)
        return 0;
    b ^= 0xff;
    return pwrite(fd, &b, 1, size - 1) == 1;
}

static void test_replay(void)
{
    kvs_journal *j;
    kvs *db;
    kvs_stats st;
    kvs_journal_stats js;
    uint8_t hpg[4096];
    int fd;

    j = jopen(jdir, NULL, NULL, 0);
    db = fopen_j(path, j, 0);
    tap_ok(j && db, "a journal and a file opened with it");
    TAP_RC(put_range(db, 0, 300, 1), KVS_OK);
    TAP_RC(kvs_end(db), KVS_OK);
    kvs_journal_stats_get(j, &js);
    tap_ok(js.records == 1 && js.flushes == 1 && js.flushed_lsn == js.end_lsn && js.end_lsn > js.checkpoint_lsn,
           "kvs_end appended one record and flushed it (%llu records, %llu flushes)",
           (unsigned long long)js.records, (unsigned long long)js.flushes);
    tap_ok(file_u64(path, HD_VERSION_OFF) % (1ull << 32) == 6 && file_u64(path, HD_JLSN_OFF) == js.checkpoint_lsn,
           "the header is version 6 and names the record's LSN %llx", (unsigned long long)js.checkpoint_lsn);
    fd = open(path, O_RDONLY);
    tap_ok(fd >= 0 && pread(fd, hpg, sizeof hpg, 0) == 4096 &&
           memcmp(hpg + HD_JPATH_OFF, jdir, strlen(jdir)) == 0, "and the journal's path at offset 2204");
    if (fd >= 0)
        close(fd);
    /* a read section and a write section that changes nothing add nothing */
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    TAP_RC(kvs_end(db), KVS_OK);
    tap_ok(has_range(db, 0, 300, 1), "the records read back");
    kvs_journal_stats_get(j, &js);
    tap_ok(js.records == 1, "a read and an empty write section write no record");
    TAP_RC(kvs_close(db), KVS_OK);

    /* crash between flush and write-back: replayed at the next open */
    tap_ok(crash_after_flush(jdir, 0, 300, 2, 0, 0), "a child prepared, flushed and died before its write-back");
    db = fopen_j(path, j, 0);
    tap_ok(db && has_range(db, 0, 300, 2), "reopened: the child's commit is there (replayed)");
    TAP_RC(kvs_check(db), KVS_OK);
    kvs_journal_stats_get(j, &js);
    tap_ok(js.recovered_records == 1 && js.recovered_pages > 0, "one record replayed (%llu pages)",
           (unsigned long long)js.recovered_pages);
    TAP_RC(kvs_close(db), KVS_OK);
    db = fopen_j(path, j, 0);
    kvs_journal_stats_get(j, &js);
    tap_ok(db && js.recovered_records == 1 && has_range(db, 0, 300, 2), "the next open replays nothing again");
    TAP_RC(kvs_close(db), KVS_OK);

    /* the same with a torn header, then a torn last page */
    tap_ok(crash_after_flush(jdir, 100, 300, 3, 0, 1), "a child died with the header half written");
    db = fopen_j(path, j, 0);
    tap_ok(db && has_range(db, 0, 100, 2) && has_range(db, 100, 300, 3), "reopened: header repaired, commit there");
    TAP_RC(db ? kvs_check(db) : KVS_EINVAL, KVS_OK);
    if (db)
        TAP_RC(kvs_close(db), KVS_OK);
    tap_ok(crash_after_flush(jdir, 300, 200, 4, 0, 2), "a child died with its last page half written");
    db = fopen_j(path, j, 0);
    tap_ok(db && has_range(db, 300, 200, 4) && has_range(db, 100, 200, 3), "reopened: page repaired, commit there");
    TAP_RC(db ? kvs_check(db) : KVS_EINVAL, KVS_OK);
    if (db) {
        TAP_RC(kvs_stats_get(db, &st), KVS_OK);
        TAP_RC(kvs_close(db), KVS_OK);
    }
    kvs_journal_close(j);
}

/* ---- in doubt ---- */
static int status_of_77;
static int xid_status_cb(void *arg, uint64_t xid)
{
    (void)arg;
    return xid == 77 ? status_of_77 : xid == 79 || xid == 80 ? KVS_XID_COMMITTED : KVS_XID_ABORTED;
}

static void test_indoubt(void)
{
    kvs_journal *j;
    kvs *db;
    int rc;

    tap_ok(crash_after_flush(jdir, 1000, 50, 1, 77, 0), "a child prepared xid 77, flushed, died");
    j = jopen(jdir, NULL, NULL, 0);
    db = fopen_j(path, j, 0);
    tap_ok(db && has_range(db, 1000, 50, -1), "without xid_status: opened, read without the record");
    rc = db ? kvs_begin(db, KVS_WRITE) : KVS_EINVAL;
    tap_ok(rc == KVS_EINDOUBT && strstr(kvs_errmsg(db), "77") != NULL,
           "writes are refused with KVS_EINDOUBT naming the xid: %s", db ? kvs_errmsg(db) : "");
    if (db)
        TAP_RC(kvs_close(db), KVS_OK);
    kvs_journal_close(j);

    status_of_77 = KVS_XID_ABORTED;
    j = jopen(jdir, xid_status_cb, NULL, 0);
    db = fopen_j(path, j, 0);
    tap_ok(db && has_range(db, 1000, 50, -1), "xid_status says aborted: not replayed");
    TAP_RC(db ? kvs_begin(db, KVS_WRITE) : KVS_EINVAL, KVS_OK);
    if (db) {
        TAP_RC(kvs_abort(db), KVS_OK);
        TAP_RC(kvs_close(db), KVS_OK);
    }
    kvs_journal_close(j);

    tap_ok(crash_after_flush(jdir, 1000, 50, 5, 77, 0), "again: a child prepared xid 77, flushed, died");
    status_of_77 = KVS_XID_COMMITTED;
    j = jopen(jdir, xid_status_cb, NULL, 0);
    db = fopen_j(path, j, 0);
    tap_ok(db && has_range(db, 1000, 50, 5), "xid_status says committed: replayed");
    TAP_RC(db ? kvs_check(db) : KVS_EINVAL, KVS_OK);
    /* kvs_abort after prepare: the record stays, the file does not change */
    TAP_RC(put_range(db, 2000, 10, 1), KVS_OK);
    {
        uint64_t lsn = 0;
        TAP_RC(kvs_prepare(db, 78, &lsn), KVS_OK);
        tap_ok(lsn != 0, "kvs_prepare gave LSN %llx", (unsigned long long)lsn);
        TAP_RC(kvs_put(db, "x", 1, "y", 1, 0), KVS_EINVAL);
        TAP_RC(kvs_abort(db), KVS_OK);
    }
    tap_ok(has_range(db, 2000, 10, -1), "aborted after prepare: nothing written");
    TAP_RC(kvs_close(db), KVS_OK);
    db = fopen_j(path, j, 0);
    tap_ok(db && has_range(db, 2000, 10, -1) && has_range(db, 1000, 50, 5), "and a reopen replays nothing of it");
    /* prepare + commit */
    TAP_RC(put_range(db, 2000, 10, 2), KVS_OK);
    {
        uint64_t lsn = 0;
        TAP_RC(kvs_prepare(db, 79, &lsn), KVS_OK);
        TAP_RC(kvs_journal_flush(j, lsn), KVS_OK);
        TAP_RC(kvs_commit(db), KVS_OK);
    }
    tap_ok(has_range(db, 2000, 10, 2), "prepare, flush, commit: written");
    /* closed between prepare and commit: left to recovery, by its xid */
    TAP_RC(put_range(db, 3000, 10, 1), KVS_OK);
    {
        uint64_t lsn = 0;
        TAP_RC(kvs_prepare(db, 80, &lsn), KVS_OK);
        TAP_RC(kvs_journal_flush(j, lsn), KVS_OK);
    }
    TAP_RC(kvs_close(db), KVS_OK);
    db = fopen_j(path, j, 0);
    tap_ok(db && has_range(db, 3000, 10, 1), "closed after prepare, xid committed: the reopen replays it");
    TAP_RC(kvs_close(db), KVS_OK);
    kvs_journal_close(j);
}

/* ---- group commit ---- */
static void test_group_commit(void)
{
    enum { NPROC = 4, NCOMMIT = 60 };
    int pfd[2], i, ok = 1;
    uint64_t flushes = 0, commits = 0, shared = 0;
    char gdir[300];
    snprintf(gdir, sizeof gdir, "%s/group-journal", dir);
    if (pipe(pfd) != 0)
        return;
    for (i = 0; i < NPROC; i++) {
        if (fork() == 0) {
            char p[400];
            kvs_journal *j = jopen(gdir, NULL, NULL, 0);
            kvs *db;
            kvs_journal_stats js;
            uint64_t out[3];
            int c;
            snprintf(p, sizeof p, "%s/group-%d.kvs", dir, i);
            db = j ? fopen_j(p, j, 0) : NULL;
            if (!db)
                _exit(2);
            for (c = 0; c < NCOMMIT; c++) {
                char k[32];
                key_of(c, k);
                if (kvs_put(db, k, strlen(k), "v", 1, 0) != KVS_OK)
                    _exit(3);
            }
            kvs_journal_stats_get(j, &js);
            out[0] = js.flushes;
            out[1] = js.records;
            out[2] = js.flush_shared;
            if (write(pfd[1], out, sizeof out) != sizeof out)
                _exit(4);
            kvs_close(db);
            kvs_journal_close(j);
            _exit(0);
        }
    }
    close(pfd[1]);
    for (i = 0; i < NPROC; i++) {
        uint64_t in[3];
        int status;
        if (read(pfd[0], in, sizeof in) != sizeof in)
            ok = 0;
        else {
            flushes += in[0];
            commits += in[1];
            shared += in[2];
        }
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            ok = 0;
    }
    close(pfd[0]);
    tap_ok(ok && commits == NPROC * NCOMMIT, "%d processes committed %llu sections (one put each)", NPROC,
           (unsigned long long)commits);
    tap_ok(flushes < commits && flushes + shared == commits,
           "group commit: %llu fsyncs for %llu commits (%llu covered by another's fsync)",
           (unsigned long long)flushes, (unsigned long long)commits, (unsigned long long)shared);
    {
        /* a process that appended nothing sees the others' counters in the
         * control file, summed; its own stay zero */
        kvs_journal *j = jopen(gdir, NULL, NULL, 0);
        kvs_journal_stats all, mine;
        if (!j) {
            tap_ok(0, "the group journal reopens");
            return;
        }
        kvs_journal_stats_cluster(j, &all);
        kvs_journal_stats_get(j, &mine);
        tap_ok(all.records == commits && all.flushes == flushes && all.flush_shared == shared &&
               all.bytes > 0 && mine.records == 0 && mine.flushes == 0 &&
               all.end_lsn == mine.end_lsn,
               "cluster counters: %llu records, %llu fsyncs, %llu shared, the sums of the %d processes'",
               (unsigned long long)all.records, (unsigned long long)all.flushes,
               (unsigned long long)all.flush_shared, NPROC);
        kvs_journal_close(j);
    }
}

/* ---- a failed fsync, a failed write-back ---- */
static int fail_fsync, fail_pwrite_fd = -1, fail_pwrite_in;
static int f_fsync(int fd)
{
    if (fail_fsync) {
        errno = EIO;
        return -1;
    }
    return fsync(fd);
}
static ssize_t f_pwrite(int fd, const void *b, size_t n, off_t off)
{
    if (fd == fail_pwrite_fd && fail_pwrite_in > 0 && --fail_pwrite_in == 0) {
        errno = EIO;
        return -1;
    }
    return pwrite(fd, b, n, off);
}

static void test_failures(void)
{
    kvs_os fos = *kvs_os_posix();
    kvs_journal *j;
    kvs *db;
    kvs_options o;
    char fdir[300], fpath[300];
    int rc;

    fos.fsync = f_fsync;
    fos.pwrite = f_pwrite;
    snprintf(fdir, sizeof fdir, "%s/fail-journal", dir);
    snprintf(fpath, sizeof fpath, "%s/fail.kvs", dir);
    j = jopen(fdir, NULL, &fos, 0);
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    o.journal = j;
    o.os = &fos;
    db = NULL;
    TAP_RC(kvs_open(fpath, &o, &db), KVS_OK);
    TAP_RC(put_range(db, 0, 100, 1), KVS_OK);
    TAP_RC(kvs_end(db), KVS_OK);
    fail_fsync = 1;
    TAP_RC(put_range(db, 0, 100, 2), KVS_OK);
    rc = kvs_end(db);
    tap_ok(rc == KVS_EJOURNAL && strstr(kvs_errmsg(db), "fsync") != NULL,
           "a failed journal fsync: KVS_EJOURNAL (%s)", kvs_errmsg(db));
    fail_fsync = 0;
    TAP_RC(kvs_journal_flush(j, UINT64_MAX), KVS_EJOURNAL);
    TAP_RC(put_range(db, 0, 100, 3), KVS_OK);
    TAP_RC(kvs_end(db), KVS_EJOURNAL);
    tap_ok(has_range(db, 0, 100, 1), "never retried as if it had worked: the file keeps the last durable state");
    TAP_RC(kvs_close(db), KVS_OK);
    kvs_journal_close(j);
    j = jopen(fdir, NULL, &fos, 0);
    o.journal = j;
    db = NULL;
    if (j)
        TAP_RC(kvs_open(fpath, &o, &db), KVS_OK);
    tap_ok(db != NULL, "the journal reopens (treated as after a reboot: rescanned, fsynced)");
    TAP_RC(db ? kvs_check(db) : KVS_EINVAL, KVS_OK);
    tap_ok(db && (has_range(db, 0, 100, 1) || has_range(db, 0, 100, 2)),
           "the file holds the state before or after the failed commit");
    TAP_RC(put_range(db, 0, 100, 4), KVS_OK);
    TAP_RC(kvs_end(db), KVS_OK);

    /* a write-back that fails: the error is returned, the handle refuses
     * writes; the record is durable, so the reopen replays it */
    TAP_RC(put_range(db, 0, 100, 5), KVS_OK);
    fail_pwrite_fd = -2;
    {
        struct stat a, b;
        int fd;
        /* the file's descriptor: the one whose inode is the file's */
        (void)stat(fpath, &a);
        for (fd = 3; fd < 256; fd++)
            if (fstat(fd, &b) == 0 && b.st_ino == a.st_ino && b.st_dev == a.st_dev)
                fail_pwrite_fd = fd;
    }
    fail_pwrite_in = 2;
    rc = kvs_end(db);
    tap_ok(rc == KVS_EIO, "a failed write-back is returned: %s (%s)", kvs_strerror(rc), kvs_errmsg(db));
    fail_pwrite_fd = -1;
    tap_ok(has_range(db, 0, 100, 4), "and undone in the file");
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_EJOURNAL);
    TAP_RC(kvs_close(db), KVS_OK);
    db = fopen_j(fpath, j, 0);
    tap_ok(db && has_range(db, 0, 100, 5), "reopened: the durable commit replayed");
    TAP_RC(db ? kvs_check(db) : KVS_EINVAL, KVS_OK);
    if (db)
        TAP_RC(kvs_close(db), KVS_OK);
    kvs_journal_close(j);
}

/* ---- checkpoints ---- */
static int count_segments(const char *d)
{
    DIR *dd = opendir(d);
    struct dirent *e;
    int n = 0;
    while (dd && (e = readdir(dd)) != NULL)
        n += strncmp(e->d_name, "seg-", 4) == 0;
    if (dd)
        closedir(dd);
    return n;
}

static void test_checkpoint(void)
{
    kvs_journal *j;
    kvs *db;
    kvs_journal_stats js;
    char cdir[300], cpath[300];
    int i, ok = 1;
    snprintf(cdir, sizeof cdir, "%s/ckpt-journal", dir);
    snprintf(cpath, sizeof cpath, "%s/ckpt.kvs", dir);
    j = jopen(cdir, NULL, NULL, 256 * 1024);
    db = fopen_j(cpath, j, 0);
    for (i = 0; i < 40 && ok; i++) {
        ok = put_range(db, i * 10, 200, i) == KVS_OK && kvs_end(db) == KVS_OK;
    }
    tap_ok(ok, "40 commits of 200 records");
    kvs_journal_stats_get(j, &js);
    tap_ok(js.checkpoints >= 2 && js.end_lsn - js.checkpoint_lsn <= 2 * 256 * 1024,
           "checkpoints every 256 KiB: %llu made, %llu bytes since the last", (unsigned long long)js.checkpoints,
           (unsigned long long)(js.end_lsn - js.checkpoint_lsn));
    tap_ok(count_segments(cdir) == 1, "one segment in the directory (the old ones removed)");
    TAP_RC(kvs_journal_checkpoint(j), KVS_OK);
    kvs_journal_stats_get(j, &js);
    tap_ok(js.end_lsn == js.checkpoint_lsn, "kvs_journal_checkpoint: nothing left since it");
    TAP_RC(kvs_close(db), KVS_OK);
    db = fopen_j(cpath, j, 0);
    tap_ok(db && has_range(db, 390, 200, 39) && has_range(db, 0, 10, 0), "every commit is in the file");
    TAP_RC(db ? kvs_check(db) : KVS_EINVAL, KVS_OK);
    /* a prepared section holds the checkpoint back */
    {
        uint64_t lsn, before;
        TAP_RC(put_range(db, 0, 10, 50), KVS_OK);
        TAP_RC(kvs_prepare(db, 90, &lsn), KVS_OK);
        kvs_journal_stats_get(j, &js);
        before = js.checkpoint_lsn;
        TAP_RC(kvs_journal_checkpoint(j), KVS_OK);
        kvs_journal_stats_get(j, &js);
        tap_ok(js.checkpoint_lsn == before, "a checkpoint does not pass a prepared, unwritten record");
        TAP_RC(kvs_commit(db), KVS_OK);
        TAP_RC(kvs_journal_checkpoint(j), KVS_OK);
        kvs_journal_stats_get(j, &js);
        tap_ok(js.checkpoint_lsn > before, "after its commit it does");
    }
    TAP_RC(kvs_close(db), KVS_OK);
    kvs_journal_close(j);
}

/* ---- reboot: the control file's boot id changes ---- */
static void fake_reboot(const char *d)
{
    char p[400];
    int fd;
    snprintf(p, sizeof p, "%s/control", d);
    fd = open(p, O_RDWR);
    if (fd < 0 || pwrite(fd, "an-earlier-boot-of-the-machine-0000000000000000", 47, 16) != 47)
        tap_diag("cannot fake a reboot");
    if (fd >= 0)
        close(fd);
}

static void test_reboot_torn_tail(void)
{
    kvs_journal *j;
    kvs *db;
    char seg[600];
    struct stat st;
    DIR *dd;
    struct dirent *e;
    int fd;

    tap_ok(crash_after_flush(jdir, 5000, 20, 1, 0, 0), "a child committed A and died before its write-back");
    tap_ok(crash_after_flush(jdir, 6000, 20, 1, 0, 0), "another committed B after A (not written back either)");
    /* tear B: the last byte of the segment (B's last image) */
    seg[0] = 0;
    dd = opendir(jdir);
    while (dd && (e = readdir(dd)) != NULL)
        if (strncmp(e->d_name, "seg-", 4) == 0)
            snprintf(seg, sizeof seg, "%s/%s", jdir, e->d_name);
    if (dd)
        closedir(dd);
    /* B's last byte is the segment's last one that is not a zero: the
     * journal writes zeros ahead of its end */
    fd = open(seg, O_RDWR);
    tap_ok(fd >= 0 && fstat(fd, &st) == 0 && tear_last_byte(fd, st.st_size), "B torn (its last byte)");
    if (fd >= 0)
        close(fd);
    fake_reboot(jdir);
    /* every record since the checkpoint is replayed: the host's xids too */
    j = jopen(jdir, xid_status_cb, NULL, 0);
    db = j ? fopen_j(path, j, 0) : NULL;
    tap_ok(db && has_range(db, 5000, 20, 1), "after a reboot: A replayed");
    tap_ok(db && has_range(db, 6000, 20, -1), "the torn B ends the log: not replayed");
    tap_ok(db && has_range(db, 1000, 50, 5) && has_range(db, 2000, 10, 2), "earlier commits intact");
    TAP_RC(db ? kvs_check(db) : KVS_EINVAL, KVS_OK);
    if (db)
        TAP_RC(kvs_close(db), KVS_OK);
    kvs_journal_close(j);
}

/* ---- version 4, compaction, standalone journals ---- */
static void test_versions(void)
{
    kvs *db;
    kvs_stats st;
    kvs_options o;
    char v4[300], own[320];
    struct stat sb;
    kvs_journal *j;
    uint64_t id0;

    snprintf(v4, sizeof v4, "%s/v4.kvs", dir);
    snprintf(own, sizeof own, "%s-journal", v4);
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    TAP_RC(kvs_open(v4, &o, &db), KVS_OK);
    TAP_RC(put_range(db, 0, 50, 1), KVS_OK);
    TAP_RC(kvs_end(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);
    tap_ok(stat(own, &sb) == 0 && S_ISDIR(sb.st_mode), "a standalone handle made its journal at <path>-journal");
    tap_ok(file_make_version(v4, 4) && file_u64(v4, HD_VERSION_OFF) % (1ull << 32) == 4,
           "the header rewritten as version 4 (a small fixture: no journal LSN, no path)");
    o.flags = KVS_RDONLY;
    TAP_RC(kvs_open(v4, &o, &db), KVS_OK);
    TAP_RC(kvs_stats_get(db, &st), KVS_OK);
    tap_ok(st.format_version == 4 && has_range(db, 0, 50, 1), "a version-4 file reads right");
    TAP_RC(kvs_close(db), KVS_OK);
    j = jopen(jdir, NULL, NULL, 0);
    db = fopen_j(v4, j, 0);
    TAP_RC(put_range(db, 50, 10, 1), KVS_OK);
    TAP_RC(kvs_end(db), KVS_OK);
    TAP_RC(kvs_stats_get(db, &st), KVS_OK);
    tap_ok(st.format_version == 6 && file_u64(v4, HD_JLSN_OFF) != 0 && has_range(db, 0, 60, 1),
           "its first write made it version 6 with a journal LSN");
    /* compaction: a new identity; the old one's records never go into it */
    id0 = st.file_id;
    TAP_RC(kvs_compact(db, NULL), KVS_OK);
    TAP_RC(kvs_stats_get(db, &st), KVS_OK);
    tap_ok(st.file_id != id0 && has_range(db, 0, 60, 1), "compacted: another id, the records kept");
    TAP_RC(put_range(db, 60, 10, 2), KVS_OK);
    TAP_RC(kvs_end(db), KVS_OK);
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);
    kvs_journal_close(j);
    /* a standalone open finds the journal the header names */
    tap_ok(crash_after_flush(jdir, 7000, 10, 1, 0, 0) || 1, "(the main file gets a commit not written back)");
    kvs_options_init(&o);
    TAP_RC(kvs_open(path, &o, &db), KVS_OK);
    tap_ok(db && has_range(db, 7000, 10, 1), "a standalone open (no journal given) recovers from the journal its header names");
    snprintf(own, sizeof own, "%s-journal", path);
    tap_ok(stat(own, &sb) != 0, "and made no journal of its own");
    if (db)
        TAP_RC(kvs_close(db), KVS_OK);
}

/* ---- a shared pool's first handle recovers the file ---- */
static void test_shared_pool(void)
{
    char sp[300];
    void *mem = NULL;
    kvs_pool *pool = NULL;
    kvs_journal *j;
    kvs_options o;
    kvs *db = NULL;
    size_t sz = kvs_pool_size(64, 4);
    snprintf(sp, sizeof sp, "%s/shared.kvs", dir);
    j = jopen(jdir, NULL, NULL, 0);
    db = fopen_j(sp, j, 0);
    TAP_RC(put_range(db, 0, 100, 1), KVS_OK);
    TAP_RC(kvs_end(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);
    crash_path = sp;
    tap_ok(crash_after_flush(jdir, 50, 100, 2, 0, 1), "a child committed to shared.kvs, tore its header, died");
    crash_path = path;
    if (posix_memalign(&mem, 4096, sz) != 0 || kvs_pool_format(mem, sz, 64, 4, KVS_CACHE_LRU, &pool) != KVS_OK) {
        tap_ok(0, "a shared pool");
        return;
    }
    kvs_options_init(&o);
    o.pool = pool;
    o.journal = j;
    db = NULL;
    TAP_RC(kvs_open(sp, &o, &db), KVS_OK);
    tap_ok(db && has_range(db, 0, 50, 1) && has_range(db, 50, 100, 2),
           "opened through a shared pool: its first handle replayed the commit and repaired the header");
    TAP_RC(db ? kvs_check(db) : KVS_EINVAL, KVS_OK);
    if (db)
        TAP_RC(kvs_close(db), KVS_OK);
    kvs_journal_close(j);
    free(mem);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/unit_journal.%d", (int)getpid());
    if (mkdir(dir, 0700) != 0) {
        perror(dir);
        return 1;
    }
    snprintf(path, sizeof path, "%s/t.kvs", dir);
    snprintf(jdir, sizeof jdir, "%s/journal", dir);
    test_replay();
    test_indoubt();
    test_group_commit();
    test_failures();
    test_checkpoint();
    test_reboot_torn_tail();
    test_shared_pool();
    test_versions();
    cleanup();
    tap_diag("journal: %d checks", tap_n);
    return tap_done();
}
