/*
 * unit_exclusive.c - locking mode exclusive (KVS_EXCLUSIVE, kvs.h; README,
 * "Locking mode exclusive"): the handle takes the file's lock at kvs_open
 * and holds it until kvs_close, and its sections take no lock and reread
 * nothing.
 *
 * Checked through the public API: while the handle is open, another handle
 * of the same process and another process (fork) cannot open the file,
 * for writing or reading, nor salvage it: each waits, and its interrupted()
 * callback ends the wait with KVS_EINTR (lock_wait told of the wait), and
 * the file's flock is held between sections too; after kvs_close they can,
 * and see what it wrote.  Its sections make no flock and no pread (a
 * counting I/O table); read and write sections, a failed put that changes
 * nothing, kvs_abort (the file byte for byte as before), kvs_check; a
 * plain handle that skips its header reread on the change generation still
 * sees every write of an exclusive handle that held the file meanwhile
 * (the one bump per hold); a crash (SIGKILL) of an exclusive writer in
 * mid-section, and one after its record was durable but before its
 * write-back, each recovered by the next exclusive open (the lock died with
 * the process); compaction: the lock follows the handle to the new file,
 * and a plain handle opened before follows too once it is closed;
 * KVS_RDONLY | KVS_EXCLUSIVE holds the lock exclusive as well and rereads
 * no header (it has no journal, so no generation to skip on); refusals:
 * a shared pool (KVS_EINVAL naming KVS_EXCLUSIVE), a write on a read-only
 * one (KVS_ERDONLY), a file a host's shared pool holds (KVS_EBUSY).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>
#include "kvs.h"
#include "tap.h"
#include "files.h"

static char dir[256], path[400], jdir[420];

/* ---- a counting I/O table: the flocks and preads sections make ---- */
static kvs_os counting_os;
static unsigned long n_flock, n_pread;

static int count_flock(int fd, int op)
{
    n_flock++;
    return kvs_os_posix()->flock(fd, op);
}

static ssize_t count_pread(int fd, void *buf, size_t n, off_t off)
{
    n_pread++;
    return kvs_os_posix()->pread(fd, buf, n, off);
}

/* ---- the host's wait callbacks: give up after a few tries ---- */
typedef struct waiter {
    int tries, limit;
    int began, ended;
} waiter;

static int w_interrupted(void *arg)
{
    waiter *w = arg;
    return ++w->tries >= w->limit;
}

static void w_lock_wait(void *arg, int waiting)
{
    waiter *w = arg;
    if (waiting)
        w->began++;
    else
        w->ended++;
}

static void opts(kvs_options *o, int flags, waiter *w)
{
    kvs_options_init(o);
    o->flags = flags;
    o->cache_pages = 256;
    if (w) {
        memset(w, 0, sizeof *w);
        w->limit = 20;     /* 50 us doubling: some 100 ms of waiting */
        o->interrupted = w_interrupted;
        o->interrupt_arg = w;
        o->lock_wait = w_lock_wait;
        o->lock_wait_arg = w;
    }
}

static void key_of(int i, char *k)
{
    snprintf(k, 32, "key-%06d", i);
}

static void val_of(int i, int v, char *s)
{
    snprintf(s, 200, "value-%d-of-%d-%080d", v, i, i);
}

static int put_range(kvs *db, int from, int n, int v)
{
    char k[32], s[200];
    int i, rc = KVS_OK;
    for (i = from; i < from + n && rc == KVS_OK; i++) {
        key_of(i, k);
        val_of(i, v, s);
        rc = kvs_put(db, k, strlen(k), s, strlen(s), 0);
    }
    return rc;
}

/* every key of [from, from+n) holds version v (v < 0: is absent) */
static int has_range(kvs *db, int from, int n, int v)
{
    char k[32], s[200];
    kvs_slice got;
    int i, rc;
    for (i = from; i < from + n; i++) {
        key_of(i, k);
        rc = kvs_get(db, k, strlen(k), &got);
        if (v < 0) {
            if (rc != KVS_NOTFOUND)
                return 0;
            continue;
        }
        val_of(i, v, s);
        if (rc != KVS_OK || got.len != strlen(s) || memcmp(got.data, s, got.len) != 0)
            return 0;
    }
    return 1;
}

/* The child pid exited with status 0. */
static int child_status(pid_t pid);
static int reaped_ok(pid_t pid)
{
    return child_status(pid) == 0;
}

/* A handle opened with flags | KVS_EXCLUSIVE (checked), or NULL. */
static kvs *open_excl(int flags)
{
    kvs_options o;
    kvs *db = NULL;
    opts(&o, flags | KVS_EXCLUSIVE, NULL);
    TAP_RC(kvs_open(path, &o, &db), KVS_OK);
    return db;
}

/* The exit status of child pid, -1 if it did not exit. */
static int child_status(pid_t pid)
{
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* In a child process: what kvs_open(path, flags) -- or, with salvage,
 * kvs_salvage_open -- gives with a waiter that gives up; exit status: 0
 * opened, 1 KVS_EINTR after a wait that began and ended (lock_wait; the
 * salvage has no lock_wait), 2 anything else. */
static int child_try(int flags, int salvage)
{
    pid_t pid = fork();
    if (pid == 0) {
        kvs_options o;
        waiter w;
        kvs *db = NULL;
        kvs_salvage *sv = NULL;
        int rc;
        opts(&o, flags, &w);
        rc = salvage ? kvs_salvage_open(path, &o, &sv) : kvs_open(path, &o, &db);
        if (rc == KVS_OK) {
            if (salvage)
                kvs_salvage_close(sv);
            else
                kvs_close(db);
            _exit(0);
        }
        _exit(rc == KVS_EINTR && (salvage || (w.began == 1 && w.ended == 1)) ? 1 : 2);
    }
    return child_status(pid);
}

static int child_open(int flags)
{
    return child_try(flags, 0);
}

/* In a child: can it take the file's flock (shared) without waiting?
 * 1 yes, 0 no (held by someone), -1 error. */
static int child_can_flock(void)
{
    pid_t pid = fork();
    int st;
    if (pid == 0) {
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            _exit(3);
        if (flock(fd, LOCK_SH | LOCK_NB) == 0)
            _exit(1);
        _exit(errno == EWOULDBLOCK ? 0 : 3);
    }
    st = child_status(pid);
    return st == 3 ? -1 : st;
}

static void test_hold(void)
{
    kvs_options o, o2;
    waiter w;
    kvs *db = NULL, *db2 = NULL;
    kvs_slice v;
    uint64_t before, recs = 0, pages = 0;
    unsigned long i;
    char k[32];

    opts(&o, KVS_CREATE | KVS_EXCLUSIVE, NULL);
    counting_os = *kvs_os_posix();
    counting_os.flock = count_flock;
    counting_os.pread = count_pread;
    o.os = &counting_os;
    TAP_RC(kvs_open(path, &o, &db), KVS_OK);
    if (!db)
        return;
    TAP_RC(put_range(db, 0, 500, 1), KVS_OK);    /* implicit write sections */
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    TAP_RC(put_range(db, 500, 1500, 1), KVS_OK);
    TAP_RC(kvs_end(db), KVS_OK);
    tap_ok(has_range(db, 0, 2000, 1), "exclusive: every record read back");

    /* read sections: no flock, no header reread (no pread at all: cached) */
    n_flock = n_pread = 0;
    for (i = 0; i < 2000; i++) {
        key_of((int)i, k);
        if (kvs_get(db, k, strlen(k), &v) != KVS_OK)
            break;
    }
    tap_ok(i == 2000 && n_flock == 0 && n_pread == 0,
           "exclusive: 2000 gets in implicit read sections made %lu flock and %lu pread calls (0, 0)",
           n_flock, n_pread);
    /* write sections: no flock on the file; the journal's append lock
     * (two per record) is the only one */
    n_flock = 0;
    TAP_RC(put_range(db, 0, 100, 2), KVS_OK);
    tap_ok(n_flock <= 200, "exclusive: 100 implicit write sections made %lu flock calls (<= 2 each: the journal's)",
           n_flock);
    TAP_RC(kvs_size_estimate(db, &recs, &pages), KVS_OK);
    tap_ok(recs == 2000 && pages > 2, "exclusive: kvs_size_estimate from memory: %llu records",
           (unsigned long long)recs);
    TAP_RC(kvs_check(db), KVS_OK);

    /* the lock is held between sections */
    tap_ok(child_can_flock() == 0, "exclusive: another process cannot take the file's flock between sections");
    tap_ok(child_open(0) == 1, "exclusive: another process's writable open waits, and its interrupted() ends it (KVS_EINTR, lock_wait told)");
    tap_ok(child_open(KVS_RDONLY) == 1, "exclusive: another process's read-only open waits too (KVS_EINTR)");
    tap_ok(child_open(KVS_EXCLUSIVE) == 1, "exclusive: another process's exclusive open waits too (KVS_EINTR)");
    tap_ok(child_try(0, 1) == 1, "exclusive: another process's kvs_salvage_open waits too (KVS_EINTR)");
    opts(&o2, 0, &w);
    TAP_RC(kvs_open(path, &o2, &db2), KVS_EINTR);
    tap_ok(db2 == NULL && w.began == 1 && w.ended == 1 && strstr(kvs_open_errmsg(), "interrupted") != NULL,
           "exclusive: a second handle in the same process waits too: KVS_EINTR, \"%s\"", kvs_open_errmsg());

    /* a put that fails changes nothing and keeps the section (too big) */
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    {
        static char big[KVS_MAX_KEY + 1];
        TAP_RC(kvs_put(db, big, sizeof big, "x", 1, 0), KVS_ETOOBIG);
    }
    TAP_RC(kvs_put(db, "after", 5, "ok", 2, 0), KVS_OK);
    TAP_RC(kvs_end(db), KVS_OK);
    TAP_RC(kvs_get(db, "after", 5, &v), KVS_OK);

    /* abort: the file byte for byte as before, the records as before */
    before = hashfile(path);
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    TAP_RC(put_range(db, 0, 300, 3), KVS_OK);
    TAP_RC(put_range(db, 5000, 800, 3), KVS_OK);    /* splits, growth */
    for (i = 300; i < 600; i++) {
        key_of((int)i, k);
        (void)kvs_delete(db, k, strlen(k));
    }
    TAP_RC(kvs_abort(db), KVS_OK);
    tap_ok(hashfile(path) == before, "exclusive: after kvs_abort the file is byte for byte as before");
    tap_ok(has_range(db, 0, 100, 2) && has_range(db, 100, 1900, 1) && has_range(db, 5000, 800, -1),
           "exclusive: after kvs_abort every record as before");
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);

    /* closed: others can open and write; a new exclusive handle sees it */
    tap_ok(child_can_flock() == 1, "exclusive: after kvs_close another process can take the flock");
    {
        pid_t pid = fork();
        if (pid == 0) {
            kvs_options oc;
            kvs *c = NULL;
            opts(&oc, 0, NULL);
            _exit(kvs_open(path, &oc, &c) == KVS_OK && put_range(c, 2000, 10, 4) == KVS_OK &&
                  kvs_close(c) == KVS_OK ? 0 : 1);
        }
        tap_ok(reaped_ok(pid), "exclusive: after kvs_close another process opens the file and writes");
    }
    if (!(db = open_excl(0)))
        return;
    tap_ok(has_range(db, 2000, 10, 4) && has_range(db, 100, 1900, 1),
           "exclusive: reopened, it sees the other process's records and its own");
    TAP_RC(kvs_close(db), KVS_OK);
}

/* A plain handle records its change generation and skips its header
 * reread while it stays; an exclusive handle that writes meanwhile must
 * move it (once per hold), or the plain handle would read stale pages. */
static void test_generations(void)
{
    kvs_options o;
    kvs *plain = NULL, *ex = NULL;
    uint64_t recs = 0, pages = 0;
    opts(&o, 0, NULL);
    TAP_RC(kvs_open(path, &o, &plain), KVS_OK);
    if (!plain)
        return;
    tap_ok(has_range(plain, 2000, 10, 4), "generations: the plain handle reads (and records its generation)");
    if (!(ex = open_excl(0)))
        return;
    TAP_RC(put_range(ex, 2000, 10, 5), KVS_OK);     /* ten write sections */
    TAP_RC(put_range(ex, 7000, 5, 5), KVS_OK);
    TAP_RC(kvs_close(ex), KVS_OK);
    tap_ok(has_range(plain, 2000, 10, 5) && has_range(plain, 7000, 5, 5),
           "generations: the plain handle sees every write the exclusive handle made while it held the file");
    TAP_RC(kvs_size_estimate(plain, &recs, &pages), KVS_OK);
    tap_ok(recs == 2016, "generations: and its size estimate counts them (%llu records, 2016)",
           (unsigned long long)recs);
    TAP_RC(kvs_close(plain), KVS_OK);
}

/* Crashes of an exclusive writer: its lock dies with it, the next open
 * (exclusive) recovers. */
static void test_crash(void)
{
    kvs *db = NULL;
    pid_t pid;
    int status = -1, pfd[2];
    char c;

    /* killed in mid-section, after committed sections */
    if (pipe(pfd) != 0)
        return;
    pid = fork();
    if (pid == 0) {
        kvs_options oc;
        kvs *x = NULL;
        close(pfd[0]);
        opts(&oc, KVS_EXCLUSIVE, NULL);
        if (kvs_open(path, &oc, &x) != KVS_OK || put_range(x, 8000, 50, 6) != KVS_OK ||
            kvs_begin(x, KVS_WRITE) != KVS_OK || put_range(x, 9000, 900, 6) != KVS_OK ||
            kvs_sync(x) != KVS_OK || put_range(x, 10000, 400, 6) != KVS_OK)
            _exit(2);
        if (write(pfd[1], "x", 1) != 1)
            _exit(2);
        pause();
        _exit(3);
    }
    close(pfd[1]);
    if (pid < 0 || read(pfd[0], &c, 1) != 1) {
        tap_ok(0, "crash: the child got to mid-section");
        close(pfd[0]);
        return;
    }
    close(pfd[0]);
    tap_ok(child_open(0) == 1, "crash: while the exclusive child lives, another process's open waits (KVS_EINTR)");
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    tap_ok(WIFSIGNALED(status), "crash: the exclusive writer was killed in mid-section");
    if (!(db = open_excl(0)))
        return;
    tap_ok(has_range(db, 8000, 50, 6) && has_range(db, 9000, 900, 6) && has_range(db, 10000, 400, -1),
           "crash: reopened exclusive: committed sections and the kvs_sync point kept, the rest of the section gone");
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);

    /* the record durable, the write-back never made: replayed at open */
    pid = fork();
    if (pid == 0) {
        kvs_options oc;
        kvs_journal *j = NULL;
        kvs *x = NULL;
        uint64_t lsn = 0;
        if (kvs_journal_open(jdir, NULL, &j) != KVS_OK)
            _exit(2);
        opts(&oc, KVS_EXCLUSIVE, NULL);
        oc.journal = j;
        if (kvs_open(path, &oc, &x) != KVS_OK || kvs_begin(x, KVS_WRITE) != KVS_OK ||
            put_range(x, 11000, 700, 7) != KVS_OK || put_range(x, 8000, 50, 7) != KVS_OK ||
            kvs_prepare(x, 0, &lsn) != KVS_OK || lsn == 0 || kvs_journal_flush(j, lsn) != KVS_OK)
            _exit(2);
        _exit(0);       /* no kvs_commit: the record is in flight */
    }
    tap_ok(reaped_ok(pid), "crash: an exclusive child made its record durable and exited before the write-back");
    if (!(db = open_excl(0)))
        return;
    tap_ok(has_range(db, 11000, 700, 7) && has_range(db, 8000, 50, 7),
           "crash: the next exclusive open replayed the durable record");
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);
}

static void test_compact(void)
{
    kvs_options o;
    kvs *db = NULL, *plain = NULL;
    kvs_compact_info info;
    kvs_stats st;
    char k[32];
    int i;
    opts(&o, 0, NULL);
    TAP_RC(kvs_open(path, &o, &plain), KVS_OK);     /* on the old file */
    if (!plain)
        return;
    tap_ok(has_range(plain, 11000, 700, 7), "compact: a plain handle reads the file to be compacted");
    if (!(db = open_excl(0)))
        return;
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    for (i = 9000; i < 9900; i++) {
        key_of(i, k);
        (void)kvs_delete(db, k, strlen(k));
    }
    TAP_RC(kvs_end(db), KVS_OK);
    TAP_RC(kvs_compact(db, &info), KVS_OK);
    tap_ok(info.pages_after < info.pages_before, "compact: %llu pages -> %llu",
           (unsigned long long)info.pages_before, (unsigned long long)info.pages_after);
    tap_ok(child_can_flock() == 0, "compact: the lock followed the handle to the new file (another process cannot flock it)");
    tap_ok(child_open(0) == 1, "compact: another process's open of the new file waits (KVS_EINTR)");
    TAP_RC(put_range(db, 12000, 100, 8), KVS_OK);
    tap_ok(has_range(db, 12000, 100, 8) && has_range(db, 11000, 700, 7) && has_range(db, 9000, 900, -1),
           "compact: the exclusive handle reads and writes the new file");
    TAP_RC(kvs_check(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);
    tap_ok(has_range(plain, 12000, 100, 8) && has_range(plain, 9000, 900, -1),
           "compact: the plain handle followed to the new file once the exclusive one closed");
    TAP_RC(kvs_stats_get(plain, &st), KVS_OK);
    tap_ok(st.reopens == 1, "compact: the plain handle moved once (reopens %llu)", (unsigned long long)st.reopens);
    TAP_RC(kvs_close(plain), KVS_OK);
}

static void test_rdonly_and_refusals(void)
{
    kvs_options o;
    kvs *db = NULL, *host = NULL;
    size_t psize = kvs_pool_size(64, 4);
    void *mem = NULL;
    kvs_pool *pool = NULL;
    waiter w;
    kvs_slice v;
    int same;

    opts(&o, KVS_RDONLY | KVS_EXCLUSIVE, NULL);
    o.os = &counting_os;
    TAP_RC(kvs_open(path, &o, &db), KVS_OK);
    if (!db)
        return;
    tap_ok(has_range(db, 12000, 100, 8), "rdonly exclusive: reads");
    /* a read-only handle has no journal, so no change generation: without
     * the held lock every section would reread the header */
    n_flock = n_pread = 0;
    same = has_range(db, 12000, 100, 8);
    tap_ok(same && n_flock == 0 && n_pread == 0,
           "rdonly exclusive: 100 cached gets made %lu flock and %lu pread calls (0, 0)", n_flock, n_pread);
    TAP_RC(kvs_put(db, "k", 1, "v", 1, 0), KVS_ERDONLY);
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_ERDONLY);
    tap_ok(child_can_flock() == 0, "rdonly exclusive: the lock is held exclusive (a shared pool's holders write under a shared one)");
    tap_ok(child_open(KVS_RDONLY) == 1, "rdonly exclusive: another read-only open waits (KVS_EINTR)");
    TAP_RC(kvs_close(db), KVS_OK);

    /* not with a shared pool */
    if (posix_memalign(&mem, 4096, psize) != 0 || kvs_pool_format(mem, psize, 64, 4, KVS_CACHE_LRU, &pool) != KVS_OK) {
        tap_ok(0, "pool formatted");
        return;
    }
    opts(&o, KVS_EXCLUSIVE, NULL);
    o.pool = pool;
    db = NULL;
    TAP_RC(kvs_open(path, &o, &db), KVS_EINVAL);
    tap_ok(db == NULL && strstr(kvs_open_errmsg(), "KVS_EXCLUSIVE") != NULL,
           "exclusive with a shared pool: refused, \"%s\"", kvs_open_errmsg());

    /* a host's shared pool holds the file (owner id recorded): an
     * exclusive open is told KVS_EBUSY, not left waiting */
    opts(&o, 0, NULL);
    o.pool = pool;
    o.owner_id = 4242;
    TAP_RC(kvs_open(path, &o, &host), KVS_OK);
    if (!host)
        return;
    TAP_RC(kvs_get(host, "key-012000", 10, &v), KVS_OK);
    opts(&o, KVS_EXCLUSIVE, &w);
    w.limit = 1000000;      /* the refusal, not the callback, ends the wait */
    db = NULL;
    TAP_RC(kvs_open(path, &o, &db), KVS_EBUSY);
    tap_ok(db == NULL && strstr(kvs_open_errmsg(), "4242") != NULL,
           "exclusive while a shared pool holds the file: KVS_EBUSY, \"%s\"", kvs_open_errmsg());
    TAP_RC(kvs_close(host), KVS_OK);
    free(mem);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/kvs_unit_exclusive.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/t.kvs", dir);
    snprintf(jdir, sizeof jdir, "%s-journal", path);
    tap_diag("files in %s", dir);
    test_hold();
    test_generations();
    test_crash();
    test_compact();
    test_rdonly_and_refusals();
    rmtree(dir);
    return tap_done();
}
