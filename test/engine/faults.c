/*
 * faults.c - fault injection and crashes through the swappable I/O table.
 *
 * kvs_options.os is replaced by a table that passes every call to POSIX but
 * makes the Nth pwrite / fsync / ftruncate / pread (counted from the start of
 * the section under test) fail with EIO, fail with ENOSPC, come up short, or
 * come up short and then hit ENOSPC; one-shot or sticky (every call from the
 * Nth on).  For every N up to the number of such calls a clean run makes:
 *   - the engine reports a clear code (KVS_EIO / KVS_ENOSPC, kvs_errno() the
 *     errno) from the call that met the fault or a later one in the section,
 *     or, for a short write it completes by retrying, no error at all;
 *   - nothing crashes (each run is a child process);
 *   - reopened with the normal table (recovery from the journal runs then),
 *     the file is classified: check clean and exactly the state before the
 *     section, check clean and exactly the state after it, torn (check
 *     fails), or other (check clean, neither state);
 *   - asserted: the file is intact after every run, sticky faults included
 *     (there is no "known gap" any more): a section that failed before its
 *     commit leaves the file byte for byte as before; one whose kvs_end
 *     failed leaves the state before or, if its journal record was durable,
 *     after; a committed one the state after.
 * Every crash point of a commit ("every crash point of a commit" below):
 * crashos.h's table crashes the commit at each of its writes, fsyncs,
 * ftruncates and name changes under each model (process killed, power
 * lost, the last write torn three ways, writes reordered), and after the
 * reopen the file must be exactly before or after, kvs_check clean, and
 * after whenever the commit (or in two-phase form, the host) had returned.
 * The same sweeps (pwrite and fsync faults) and the kvs_end crash points
 * again with a KVS_EXCLUSIVE handle, whose write-back keeps no undo: after
 * a failed kvs_end a read section must either run (the file was left as
 * before) or be refused with KVS_EJOURNAL (the write-back failed, the file
 * is as it left it) and the reopen must then give the state after; and
 * when kvs_close returned KVS_OK (it redoes such a write-back from the
 * journal), a read-only open, which recovers nothing, already finds it.
 * Also: faults while creating a new file (no half file left at the path, no
 * temp file left behind), faults in kvs_truncate, read errors (EIO, nothing
 * written), and fsync errors from kvs_sync.
 *
 *   faults [-q|-qq] [-s SEED]
 *                 -q: sample the sweeps and the crash points (ASan): about 8
 *                 N per sweep, at most 12 crash points per model, 4 recovery
 *                 crash points per model; -qq: half of that (valgrind).  The
 *                 sample's offsets follow SEED (default: from the clock,
 *                 printed), so runs cover different points and -s repeats
 *                 one; without -q every N and every point (the seed unused)
 *   faults --crash 0|1 MODEL N
 *                 one crash of the commit (0: kvs_end, 1: two-phase) at
 *                 point N under MODEL (kill, power, torn-half, ...); the
 *                 files stay for a look; with KVS_FAULTS_RECOVERY_CRASH=
 *                 MODEL:N the reopen's recovery crashes at its point N too;
 *                 with KVS_FAULTS_NO_REOPEN the crashed files are not
 *                 reopened
 */
#include "kvs.h"
#include "tap.h"
#include "files.h"
#include "crashos.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <xxhash.h>

/* ---- the fault table ----------------------------------------------------- */
enum kind { K_NONE, K_PWRITE_EIO, K_PWRITE_ENOSPC, K_PWRITE_SHORT, K_PWRITE_SHORT_ENOSPC,
            K_PWRITE_ZERO, K_FSYNC_EIO, K_FTRUNC_EIO, K_PREAD_EIO, K_LINK_EIO, K_OPEN_EMFILE,
            K_EXT_ENOSPC };
static const char *kind_name[] = { "none", "pwrite EIO", "pwrite ENOSPC", "pwrite short",
                                   "pwrite short then ENOSPC", "pwrite returns 0", "fsync EIO",
                                   "ftruncate EIO", "pread EIO", "link EIO", "open EMFILE",
                                   "disk full (ENOSPC on writes that grow the file)" };

static int armed, kind, sticky;
static long fail_at, n_pwrite, n_fsync, n_ftrunc, n_pread, n_link, n_open, n_ext;
static int fired;

/* Write-order recorder (reuse_order below): pwrites to the database file
 * (not the spill file), split at the file's size before the section. */
static const char *db_path;
static int db_fd = -1, rec_on;
/* The boot id's descriptor: its reads are not counted or failed (an
 * unreadable boot id makes the journal assume a reboot, which is safe and
 * reports nothing) */
static int boot_fd = -1;
static off_t rec_old_size;
static long rec_first_old;      /* pwrite count of the first write below rec_old_size, 0 = none */
static long rec_last_new;       /* pwrite count of the last write at or above it */
static long rec_new_after_old;  /* writes above it that came after a write below it */

static int hit(long c)
{
    if (!armed)
        return 0;
    if (c == fail_at || (sticky && c >= fail_at)) {
        fired = 1;
        return 1;
    }
    return 0;
}

static int f_open(const char *p, int fl, mode_t m)
{
    if (armed) n_open++;
    if (kind == K_OPEN_EMFILE && hit(n_open)) { errno = EMFILE; return -1; }
    {
        int fd = kvs_os_posix()->open(p, fl, m);
        if (fd >= 0 && db_path && strcmp(p, db_path) == 0)
            db_fd = fd;
        if (fd >= 0)
            boot_fd = strcmp(p, "/proc/sys/kernel/random/boot_id") == 0 ? fd : boot_fd == fd ? -1 : boot_fd;
        return fd;
    }
}
static int f_close(int fd) { return kvs_os_posix()->close(fd); }
static ssize_t f_pread(int fd, void *b, size_t n, off_t off)
{
    if (fd == boot_fd)
        return kvs_os_posix()->pread(fd, b, n, off);
    if (armed) n_pread++;
    if (kind == K_PREAD_EIO && hit(n_pread)) { errno = EIO; return -1; }
    return kvs_os_posix()->pread(fd, b, n, off);
}
/* A call that would make the file end at end: counted when it grows the
 * file; true when the disk-full fault fires for it (a real full disk:
 * overwriting allocated blocks still works, only growing the file fails,
 * and keeps failing) */
static int disk_full(int fd, off_t end)
{
    off_t size = kvs_os_posix()->filesize(fd);
    if (!armed || size < 0 || end <= size)
        return 0;
    n_ext++;
    if (kind == K_EXT_ENOSPC && n_ext >= fail_at) {
        fired = 1;
        return 1;
    }
    return 0;
}
static ssize_t f_pwrite(int fd, const void *b, size_t n, off_t off)
{
    int full = disk_full(fd, off + (off_t)n);
    if (armed) n_pwrite++;
    if (rec_on && fd == db_fd) {
        if (off < rec_old_size) {
            if (!rec_first_old)
                rec_first_old = n_pwrite;
        } else {
            rec_last_new = n_pwrite;
            if (rec_first_old)
                rec_new_after_old++;
        }
    }
    switch (kind) {
    case K_EXT_ENOSPC:
        if (full) { errno = ENOSPC; return -1; }
        break;
    case K_PWRITE_EIO:
        if (hit(n_pwrite)) { errno = EIO; return -1; }
        break;
    case K_PWRITE_ENOSPC:
        if (hit(n_pwrite)) { errno = ENOSPC; return -1; }
        break;
    case K_PWRITE_SHORT:
        if (hit(n_pwrite) && n > 1)
            return kvs_os_posix()->pwrite(fd, b, n / 2, off);
        break;
    case K_PWRITE_SHORT_ENOSPC:
        if (armed && n_pwrite == fail_at && n > 1) {
            fired = 1;
            return kvs_os_posix()->pwrite(fd, b, n / 3, off);
        }
        if (armed && n_pwrite > fail_at) { errno = ENOSPC; return -1; }
        break;
    case K_PWRITE_ZERO:
        if (hit(n_pwrite)) return 0;
        break;
    default:
        break;
    }
    return kvs_os_posix()->pwrite(fd, b, n, off);
}
static int f_fsync(int fd)
{
    if (armed) n_fsync++;
    if (kind == K_FSYNC_EIO && hit(n_fsync)) { errno = EIO; return -1; }
    /* counted and failed here; a real fsync would only cost time (the
     * tests never lose power through this table) */
    return fcntl(fd, F_GETFD) < 0 ? -1 : 0;
}
static int f_ftruncate(int fd, off_t len)
{
    if (armed) n_ftrunc++;
    if (kind == K_FTRUNC_EIO && hit(n_ftrunc)) { errno = EIO; return -1; }
    return kvs_os_posix()->ftruncate(fd, len);
}
/* Growth by allocation: counted with the writes that grow the file, and
 * failed as they are on a full disk */
static int f_allocate(int fd, off_t off, off_t len)
{
    if (disk_full(fd, off + len)) { errno = ENOSPC; return -1; }
    return kvs_os_posix()->allocate(fd, off, len);
}
static off_t f_filesize(int fd) { return kvs_os_posix()->filesize(fd); }
static int f_flock(int fd, int op) { return kvs_os_posix()->flock(fd, op); }
static int f_link(const char *a, const char *b)
{
    if (armed) n_link++;
    if (kind == K_LINK_EIO && hit(n_link)) { errno = EIO; return -1; }
    return kvs_os_posix()->link(a, b);
}
static int f_unlink(const char *p) { return kvs_os_posix()->unlink(p); }
static int f_fstat(int fd, struct stat *st) { return kvs_os_posix()->fstat(fd, st); }
static int f_stat(const char *p, struct stat *st) { return kvs_os_posix()->stat(p, st); }
static int f_rename(const char *a, const char *b) { return kvs_os_posix()->rename(a, b); }

static const kvs_os fault_os = { f_open, f_close, f_pread, f_pwrite, f_fsync, f_ftruncate,
                                 f_filesize, f_flock, f_link, f_unlink, f_fstat, f_stat, f_rename,
                                 f_allocate };

static void arm(int k, long at, int st)
{
    kind = k; fail_at = at; sticky = st; fired = 0;
    n_pwrite = n_fsync = n_ftrunc = n_pread = n_link = n_open = n_ext = 0;
    armed = 1;
}

/* ---- the data: state before (S0) and after (S1) the section --------------- */
#define NBASE 400
#define NNEW  600
static size_t key_of(int i, char *k) { return (size_t)sprintf(k, "fault-key-%d", i); }
/* version 0 = base, 1 = rewritten by the section */
static size_t vlen_of(int i, int ver)
{
    if (i == 0) return ver ? 50000 : 30000;
    if (i == 1) return 30000;
    if (i == 1000) return 100000;
    return (size_t)((i * 13 + ver * 5) % 200);
}
static void val_of(int i, int ver, unsigned char *v)
{
    size_t j, n = vlen_of(i, ver);
    for (j = 0; j < n; j++)
        v[j] = (unsigned char)(i + ver * 101 + j * 3);
}
/* In state s (0 or 1): is key i present, and in which version? */
static int state_has(int s, int i, int *ver)
{
    *ver = 0;
    if (s == 0)
        return i < NBASE;
    if (i == 1 || (i >= 100 && i < 200))
        return 0;
    if (i < 100) { *ver = 1; return 1; }
    if (i < NBASE + NNEW || i == 1000) return 1;
    return 0;
}

static char dir[] = "/tmp/kvs_faults.XXXXXX";
/* The file under test, path, lives in vdir with its journal directory; a
 * run starts from a snapshot of that directory (the header names its
 * journal by path, so a copy of the file alone would share the template's). */
static char vdir[100], snapdir[100], tmpl[200], path[200];
static uint64_t tmpl_hash;

static int restore_from(const char *snap)
{
    rmtree(vdir);
    return copytree(snap, vdir);
}
static unsigned char vbuf[200000], ebuf[200000];


static int build_template(void)
{
    kvs_options o;
    kvs *db;
    char k[64];
    int i, rc;
    rmtree(vdir);
    mkdir(vdir, 0755);
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    if (kvs_open(path, &o, &db) != KVS_OK)
        return 0;
    for (i = 0; i < NBASE; i++) {
        val_of(i, 0, vbuf);
        if ((rc = kvs_put(db, k, key_of(i, k), vbuf, vlen_of(i, 0), 0)) != KVS_OK)
            return 0;
    }
    rc = kvs_check(db);
    kvs_close(db);
    return rc == KVS_OK && copytree(vdir, snapdir) == 0;
}

/* ---- one run (in a child) -------------------------------------------------- */
enum { O_BEFORE, O_AFTER, O_TORN, O_OTHER, O_OPENFAIL, O_CRASH };
static const char *outcome_name[] = { "before", "after", "torn", "other", "open fails", "crash" };

typedef struct result {
    int outcome;
    int fired;
    int first_err;          /* first error code an API call returned, 0 if none */
    int err_errno;          /* kvs_errno then */
    char where[48];         /* which call returned it */
    int same_bytes;         /* file byte-identical to the template after close */
    int probe;              /* KVS_EXCLUSIVE, kvs_end failed: what a read section did then (P_*) */
    int close_rc;           /* kvs_close's code */
    int ro_outcome;         /* P_REFUSED: the file as a read-only open (no recovery) sees it after close */
    char msg[200];
} result;

/* After a failed kvs_end of a KVS_EXCLUSIVE handle (run_flags): the handle's
 * read sections ran and saw exactly the state before (P_READ: kvs_check
 * clean, every key as before), were refused with KVS_EJOURNAL (P_REFUSED:
 * a write-back failed and was not undone; the reopen must redo it), or did
 * anything else (P_BAD). */
enum { P_NONE, P_READ, P_REFUSED, P_BAD };
static int run_flags;               /* open flags of the handle under test */

/* The handle refused, its kvs_close redid the write-back, and a read-only
 * open after the close saw the state after the section. */
static int refused_then_redone(const result *r)
{
    return r->probe == P_REFUSED && r->close_rc == KVS_OK && r->ro_outcome == O_AFTER;
}

/* The probe's rule broken: a handle that refuses reads left the file torn,
 * so the reopen must find the write-back redone (and so must a read-only
 * open after a clean close); one that reads found the file clean (the
 * state before; the reopen may still find the record durable). */
static int probe_broke_rule(const result *r)
{
    if (r->probe == P_BAD)
        return 1;
    return r->probe == P_REFUSED &&
           (r->outcome != O_AFTER || (r->close_rc == KVS_OK && r->ro_outcome != O_AFTER));
}

#define NOTE(call, name) do { \
        int rc_ = (call); \
        if (rc_ != KVS_OK && rc_ != KVS_NOTFOUND && rc_ != KVS_EXISTS && !r->first_err) { \
            r->first_err = rc_; r->err_errno = kvs_errno(db); \
            snprintf(r->where, sizeof r->where, "%s", name); \
            snprintf(r->msg, sizeof r->msg, "%s", kvs_errmsg(db)); \
        } \
    } while (0)

/* Reopen with POSIX and classify the file. */
/* The state an open handle sees (O_BEFORE, O_AFTER, O_TORN, O_OTHER). */
static int classify_handle(kvs *db, char *why, size_t whylen)
{
    kvs_slice v;
    char k[64];
    int s, i, ver, match[2] = { 1, 1 }, rc;
    long n;

    if ((rc = kvs_check(db)) != KVS_OK) {
        snprintf(why, whylen, "check: %s", kvs_errmsg(db));
        return O_TORN;
    }
    for (i = 0; i <= 1000; i++) {
        size_t kl = key_of(i, k);
        rc = kvs_get(db, k, kl, &v);
        if (rc != KVS_OK && rc != KVS_NOTFOUND) {
            snprintf(why, whylen, "get %d: %s", i, kvs_strerror(rc));
            return O_TORN;
        }
        for (s = 0; s < 2; s++) {
            int has = state_has(s, i, &ver);
            if (has != (rc == KVS_OK))
                match[s] = 0;
            else if (has) {
                val_of(i, ver, ebuf);
                if (v.len != vlen_of(i, ver) || memcmp(v.data, ebuf, v.len) != 0)
                    match[s] = 0;
            }
        }
    }
    /* the cursor agrees with the gets */
    if (test_count(db, &n) != KVS_OK)
        match[0] = match[1] = 0;
    if (match[0] && n == NBASE)
        return O_BEFORE;
    if (match[1] && n == NBASE + NNEW - 100 - 1 + 1)
        return O_AFTER;
    snprintf(why, whylen, "check clean but neither state (%ld records; before %d, after %d)", n,
             match[0], match[1]);
    return O_OTHER;
}

static int classify_with(const char *p, const kvs_options *opt, char *why, size_t whylen)
{
    kvs_options o;
    kvs *db;
    int rc, oc;

    if (opt)
        o = *opt;
    else {
        /* POSIX but for fsync (crashos.h's table, never armed here): the
         * tests lose no power, and real fsyncs cost minutes */
        kvs_options_init(&o);
        o.os = &crash_os;
    }
    if ((rc = kvs_open(p, &o, &db)) != KVS_OK) {
        snprintf(why, whylen, "reopen: %s: %s", kvs_strerror(rc), kvs_open_errmsg());
        /* a damaged header is a torn file, reported as such; anything else
         * (EIO, EINVAL) means the file cannot even be judged */
        return (rc == KVS_ECORRUPT || rc == KVS_ETRUNCATED) ? O_TORN : O_OPENFAIL;
    }
    oc = classify_handle(db, why, whylen);
    kvs_close(db);
    return oc;
}

static int classify(const char *p, char *why, size_t whylen)
{
    return classify_with(p, NULL, why, whylen);
}

/* The section under test: many puts, replaces and deletes with splits (a
 * kvs_reserve's and the inserts'), large values, evictions (16-frame
 * cache), then sync and close. */
static void section_body(kvs *db, result *r)
{
    char k[64];
    int i;
    NOTE(kvs_begin(db, KVS_WRITE), "begin");
    if (r->first_err)
        return;     /* no section: the calls below would each run in their own */
    for (i = 0; i < 100; i++) {
        val_of(i, 1, vbuf);
        NOTE(kvs_put(db, k, key_of(i, k), vbuf, vlen_of(i, 1), 0), "put (replace)");
    }
    for (i = 100; i < 200; i++)
        NOTE(kvs_delete(db, k, key_of(i, k)), "delete");
    NOTE(kvs_delete(db, k, key_of(1, k)), "delete large");
    /* kvs_reserve of a file with records: splits up front, to about the
     * size of half the inserts (so the inserts still split after it) */
    NOTE(kvs_reserve(db, (NBASE + NNEW / 2) * kvs_record_bytes(13, 100)), "reserve");
    for (i = NBASE; i < NBASE + NNEW; i++) {
        val_of(i, 0, vbuf);
        NOTE(kvs_put(db, k, key_of(i, k), vbuf, vlen_of(i, 0), KVS_NOOVERWRITE), "put (insert)");
    }
    val_of(1000, 0, vbuf);
    NOTE(kvs_put(db, k, key_of(1000, k), vbuf, vlen_of(1000, 0), 0), "put large");
}

static void section(kvs *db, result *r, int with_sync)
{
    section_body(db, r);
    if (kvs_in_section(db) < 0)
        return;
    NOTE(kvs_end(db), "end");
    if (with_sync)
        NOTE(kvs_sync(db), "sync");
}

static uint32_t run_cache = 16;     /* frames of the handle under test */

static void run_child(int k, long at, int st, int with_sync, result *r)
{
    kvs_options o;
    kvs *db = NULL;
    int rc;

    memset(r, 0, sizeof *r);
    restore_from(snapdir);
    kvs_options_init(&o);
    o.os = &fault_os;
    o.cache_pages = run_cache;
    o.flags |= run_flags;
    armed = 0;
    kind = K_NONE;
    if ((rc = kvs_open(path, &o, &db)) != KVS_OK) {
        r->first_err = rc;
        snprintf(r->where, sizeof r->where, "open");
        return;
    }
    arm(k, at, st);
    section(db, r, with_sync);
    if ((run_flags & KVS_EXCLUSIVE) && r->first_err && strcmp(r->where, "end") == 0) {
        char why[200];
        rc = kvs_check(db);
        r->probe = rc == KVS_EJOURNAL ? P_REFUSED :
                   rc == KVS_OK && classify_handle(db, why, sizeof why) == O_BEFORE ? P_READ : P_BAD;
    }
    rc = kvs_close(db);
    r->close_rc = rc;
    if (rc != KVS_OK && !r->first_err) {
        r->first_err = rc;
        snprintf(r->where, sizeof r->where, "close");
    }
    armed = 0;
    if (r->probe == P_REFUSED) {
        /* the close redid the write-back: a reader that recovers nothing
         * finds the file whole */
        kvs_options ro;
        char why[200];
        kvs_options_init(&ro);
        ro.flags = KVS_RDONLY;
        ro.os = &crash_os;
        r->ro_outcome = classify_with(path, &ro, why, sizeof why);
    }
    r->fired = fired;
    r->same_bytes = hashfile(path) == tmpl_hash;
    r->outcome = classify(path, r->msg + strlen(r->msg), sizeof r->msg - strlen(r->msg));
}

/* Runs one case in a child process and returns its result. */
static result run_case(int k, long at, int st, int with_sync, long *counts)
{
    int pfd[2], status;
    pid_t pid;
    result r;
    long dummy[7];
    memset(&r, 0, sizeof r);
    if (pipe(pfd) != 0)
        exit(2);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        long c[7];
        close(pfd[0]);
        run_child(k, at, st, with_sync, &r);
        c[0] = n_pwrite; c[1] = n_fsync; c[2] = n_ftrunc; c[3] = n_pread; c[4] = n_link; c[5] = n_open; c[6] = n_ext;
        if (write(pfd[1], &r, sizeof r) != (ssize_t)sizeof r || write(pfd[1], c, sizeof c) != (ssize_t)sizeof c)
            _exit(3);
        _exit(0);
    }
    close(pfd[1]);
    if (read(pfd[0], &r, sizeof r) != (ssize_t)sizeof r)
        r.outcome = O_CRASH;
    else if (read(pfd[0], counts ? counts : dummy, sizeof dummy) != (ssize_t)sizeof dummy)
        r.outcome = O_CRASH;    /* read them always: an unread pipe would SIGPIPE the child */
    close(pfd[0]);
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("# %s at %ld: the child %s %d\n", kind_name[k], at,
               WIFSIGNALED(status) ? "died of signal" : "exited with status",
               WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        r.outcome = O_CRASH;
    }
    return r;
}

static int expected_code(int k)
{
    switch (k) {
    case K_PWRITE_ENOSPC: case K_PWRITE_SHORT_ENOSPC: case K_EXT_ENOSPC: return KVS_ENOSPC;
    case K_PWRITE_SHORT: return KVS_OK;
    default: return KVS_EIO;
    }
}

/* ---- a kind over every N ------------------------------------------------------- */
static int ntorn_total, nother_total, excl_refused;
static int quick;               /* 1: -q, about 8 N per sweep (ASan); 2: -qq, 4 (valgrind) */
static unsigned long sample_seed;  /* -s: where each sample starts */

static void sweep(int k, int st, long ncalls, int with_sync, int must_intact)
{
    long cap = quick >= 2 ? 4 : quick ? 8 : 300, at, step = ncalls > cap ? ncalls / cap : 1;
    int runs = 0, clear = 0, wrongcode = 0, silent = 0, crash = 0;
    int outc[6] = {0};
    int first_torn_at = -1, prefail = 0, prefail_bad = 0, not_intact = 0;
    int probes[4] = {0}, probe_wrong = 0, ro_after = 0;
    char sample[300] = "";
    for (at = quick ? 1 + (long)((sample_seed + (unsigned long)k) % (unsigned long)step) : 1; at <= ncalls; at += step) {
        result r = run_case(k, at, st, with_sync, NULL);
        int want = expected_code(k);
        runs++;
        outc[r.outcome]++;
        if (r.outcome == O_CRASH) { crash++; continue; }
        probes[r.probe]++;
        ro_after += refused_then_redone(&r);
        if (probe_broke_rule(&r)) {
            probe_wrong++;
            if (probe_wrong <= 3)
                printf("# %s N=%ld: after the failed kvs_end a read section %s; close: %s; read-only "
                       "after close: %s; reopened: %s\n", kind_name[k], at,
                       r.probe == P_READ ? "ran" : r.probe == P_REFUSED ? "was refused" : "failed otherwise",
                       kvs_strerror(r.close_rc), r.probe == P_REFUSED ? outcome_name[r.ro_outcome] : "-",
                       outcome_name[r.outcome]);
        }
        {
            /* The rule checked here: every injected failure
             * leaves the file intact: a section that reports an error (from
             * an operation or from kvs_end) leaves it byte-for-byte as before;
             * one that ends cleanly (errors, if any, only from the later
             * sync/close) leaves exactly the state after it. */
            int in_section = r.first_err && strcmp(r.where, "sync") && strcmp(r.where, "close");
            int intact = in_section ? (r.outcome == O_BEFORE && r.same_bytes) : r.outcome == O_AFTER;
            /* a kvs_end that failed after its journal record was durable
             * has committed: recovery at the reopen writes it back */
            if (r.first_err && strcmp(r.where, "end") == 0 && r.outcome == O_AFTER)
                intact = 1;
            if (!intact) {
                not_intact++;
                if (not_intact <= 3)
                    printf("# %s N=%ld: %s from %s, file afterwards: %s%s\n", kind_name[k], at,
                           r.first_err ? kvs_strerror(r.first_err) : "no error", r.first_err ? r.where : "-",
                           outcome_name[r.outcome], in_section && !r.same_bytes ? ", bytes changed" : "");
            }
        }
        if (r.first_err && strcmp(r.where, "end") && strcmp(r.where, "sync") && strcmp(r.where, "close")) {
            /* failed inside the section, before kvs_end's flush */
            prefail++;
            if (r.outcome != O_BEFORE || !r.same_bytes) {
                prefail_bad++;
                if (prefail_bad <= 3)
                    printf("# %s N=%ld: failed in %s before the flush, yet the file is %s%s\n",
                           kind_name[k], at, r.where, outcome_name[r.outcome],
                           r.same_bytes ? "" : " and its bytes changed");
            }
        }
        if (r.outcome == O_TORN && first_torn_at < 0) {
            first_torn_at = (int)at;
            snprintf(sample, sizeof sample, "N=%ld: error %s from %s; reopened: %s", at,
                     kvs_strerror(r.first_err), r.where, r.msg);
        }
        if (want == KVS_OK) {
            /* a short write is legal POSIX: the engine must finish it */
            if (r.first_err == 0 && r.outcome == O_AFTER)
                clear++;
            else {
                wrongcode++;
                if (wrongcode <= 3)
                    printf("# %s N=%ld: %s from %s (%s), outcome %s\n", kind_name[k], at,
                           kvs_strerror(r.first_err), r.where, r.msg, outcome_name[r.outcome]);
            }
            continue;
        }
        if (!r.fired)
            continue;
        if (r.first_err == 0) {
            silent++;
            if (silent <= 3)
                printf("# %s N=%ld: fault swallowed (no error reported), outcome %s\n",
                       kind_name[k], at, outcome_name[r.outcome]);
        } else if ((r.first_err == want ||
                    /* a failed fsync of the journal fails the journal */
                    (k == K_FSYNC_EIO && r.first_err == KVS_EJOURNAL)) &&
                   r.err_errno == (want == KVS_ENOSPC ? ENOSPC : EIO))
            clear++;
        else {
            wrongcode++;
            if (wrongcode <= 3)
                printf("# %s N=%ld: got %s (errno %d) from %s: %s\n", kind_name[k], at,
                       kvs_strerror(r.first_err), r.err_errno, r.where, r.msg);
        }
    }
    ntorn_total += outc[O_TORN];
    nother_total += outc[O_OTHER];
    if (run_flags & KVS_EXCLUSIVE) {
        excl_refused += probes[P_REFUSED];
        tap_ok(probe_wrong == 0, "%s%s, exclusive handle, %u-frame cache: after a failed kvs_end, %d read "
               "sections ran clean, %d were refused (reopened: after; %d closed clean, read-only then: after), %d wrong", kind_name[k], st ? " (sticky)" : "",
               run_cache, probes[P_READ], probes[P_REFUSED], ro_after, probe_wrong);
    }
    tap_ok(crash == 0 && silent == 0 && wrongcode == 0 && runs > 0,
           "%s%s, %u-frame cache, at each of %d calls (%d runs): %d clear errors, %d swallowed, %d wrong codes, %d crashes",
           kind_name[k], st ? " (sticky)" : "", run_cache, (int)ncalls, runs, clear,
           silent, wrongcode, crash);
    tap_diag("  afterwards: %d before, %d after, %d torn, %d other, %d open fails",
             outc[O_BEFORE], outc[O_AFTER], outc[O_TORN], outc[O_OTHER], outc[O_OPENFAIL]);
    if (first_torn_at >= 0)
        tap_diag("  first torn: %s", sample);
    /* A clean file holding some third state is never acceptable: it is silent
     * damage (check passes, data wrong). */
    tap_ok(outc[O_OTHER] == 0 && outc[O_OPENFAIL] == 0,
           "%s%s, %u-frame cache: no clean-but-wrong file, no unopenable file afterwards", kind_name[k],
           st ? " (sticky)" : "", run_cache);
    /* README "Durability": a write section that fails before its flush
     * leaves the database file exactly as it was, byte for byte. */
    tap_ok(prefail_bad == 0, "%s%s, %u-frame cache: %d runs failed inside the section before its flush: file byte-for-byte unchanged in every one (%d not)",
           kind_name[k], st ? " (sticky)" : "", run_cache, prefail, prefail_bad);
    /* The rule: an intact file after every injected failure (failed
     * section: byte-for-byte as before; committed: after), also when every
     * write from the Nth on fails (sticky, and "short then ENOSPC"): what
     * the undo cannot put back then, recovery does at the next open from
     * the journal. */
    (void)must_intact;
    tap_ok(not_intact == 0, "%s%s, %u-frame cache: intact file after every run: failed section -> as before, byte for byte; committed -> after (%d of %d runs not: %d torn)",
               kind_name[k], st ? " (sticky)" : "", run_cache, not_intact, runs, outc[O_TORN]);
}

/* ---- creation, truncate, read errors ------------------------------------------- */
/* Removes the file under test and the journal a handle made beside it. */
static void unlink_victim(void)
{
    char j[300];
    unlink(path);
    snprintf(j, sizeof j, "%s-journal", path);
    rmtree(j);
}

static int leftovers(void)
{
    DIR *d = opendir(vdir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}

static void creation_faults(void)
{
    int k, bad = 0, runs = 0, left = 0;
    long at;
    static const int kinds[] = { K_PWRITE_EIO, K_PWRITE_ENOSPC, K_FSYNC_EIO, K_LINK_EIO, K_OPEN_EMFILE,
                                 K_FTRUNC_EIO };
    size_t ki;
    for (ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++) {
        k = kinds[ki];
        for (at = 1; at <= (quick ? 3 : 6); at++) {
            kvs_options o;
            kvs *db = NULL;
            int rc, exists;
            struct stat st;
            unlink_victim();
            kvs_options_init(&o);
            o.os = &fault_os;
            o.flags = KVS_CREATE;
            arm(k, at, 0);
            rc = kvs_open(path, &o, &db);
            armed = 0;
            runs++;
            if (rc == KVS_OK) {
                if (kvs_put(db, "a", 1, "b", 1, 0) != KVS_OK || kvs_close(db) != KVS_OK) {
                    printf("# create with %s at %ld: opened but unusable\n", kind_name[k], at);
                    bad++;
                }
            } else if (fired && rc != (k == K_PWRITE_ENOSPC ? KVS_ENOSPC : KVS_EIO)) {
                printf("# create with %s at %ld: %s (%s)\n", kind_name[k], at, kvs_strerror(rc),
                       kvs_open_errmsg());
                bad++;
            }
            exists = stat(path, &st) == 0;
            if (exists) {
                char why[200];
                int oc = classify(path, why, sizeof why);
                if (oc == O_TORN || oc == O_OPENFAIL) {
                    printf("# create with %s at %ld (open %s): the file left at the path is bad: %s\n",
                           kind_name[k], at, kvs_strerror(rc), why);
                    bad++;
                }
            }
            unlink_victim();
            if (leftovers()) {
                left++;
                printf("# create with %s at %ld (open %s): left %d stray files in the directory\n",
                       kind_name[k], at, kvs_strerror(rc), leftovers());
                {   /* clean them so the next run counts its own */
                    rmtree(vdir);
                    mkdir(vdir, 0755);
                }
            }
        }
    }
    tap_ok(bad == 0, "creating a file under faults (%d runs): a clear error, and no bad file at the path", runs);
    tap_ok(left == 0, "creating a file under faults: no temp file left behind (%d runs left some)", left);
}

static void read_faults(void)
{
    kvs_options o;
    kvs *db;
    kvs_slice v;
    char k[64];
    int i, rc, bad = 0, runs = 0;
    uint64_t h0;
    restore_from(snapdir);
    h0 = hashfile(path);
    for (i = 1; i <= 20; i++) {
        kvs_options_init(&o);
        o.os = &fault_os;
        o.cache_pages = 8;
        arm(K_PREAD_EIO, i, 0);
        rc = kvs_open(path, &o, &db);
        runs++;
        if (rc == KVS_OK) {
            int j, got_err = 0;
            for (j = 0; j < NBASE; j += 3) {
                rc = kvs_get(db, k, key_of(j, k), &v);
                if (rc == KVS_EIO)
                    got_err = 1;
                else if (rc != KVS_OK) {
                    printf("# pread EIO at %d: get %d returned %s\n", i, j, kvs_strerror(rc));
                    bad++;
                } else {
                    val_of(j, 0, ebuf);
                    if (v.len != vlen_of(j, 0) || memcmp(v.data, ebuf, v.len) != 0) {
                        printf("# pread EIO at %d: get %d: wrong value\n", i, j);
                        bad++;
                    }
                }
            }
            if (fired && !got_err) {
                printf("# pread EIO at %d: fault swallowed\n", i);
                bad++;
            }
            kvs_close(db);
        } else if (rc != KVS_EIO) {
            printf("# pread EIO at %d: open returned %s\n", i, kvs_strerror(rc));
            bad++;
        }
        armed = 0;
    }
    tap_ok(bad == 0, "read errors (%d runs): KVS_EIO, never a wrong value", runs);
    tap_ok(hashfile(path) == h0, "read errors: the file is unchanged");
}

static void truncate_faults(void)
{
    static const int kinds[] = { K_FTRUNC_EIO, K_PWRITE_EIO, K_PWRITE_ENOSPC };
    size_t ki;
    long at;
    int bad = 0, runs = 0, outc[6] = {0}, not_intact = 0;
    for (ki = 0; ki < 3; ki++)
        for (at = 1; at <= (quick ? 4 : 12); at++) {
            kvs_options o;
            kvs *db;
            int rc;
            char why[200];
            restore_from(snapdir);
            kvs_options_init(&o);
            o.os = &fault_os;
            if (kvs_open(path, &o, &db) != KVS_OK) { bad++; continue; }
            arm(kinds[ki], at, 0);
            rc = kvs_truncate(db);
            armed = 0;
            kvs_close(db);
            runs++;
            if (fired && rc != (kinds[ki] == K_PWRITE_ENOSPC ? KVS_ENOSPC : KVS_EIO)) {
                printf("# truncate with %s at %ld: %s\n", kind_name[kinds[ki]], at, kvs_strerror(rc));
                bad++;
            }
            if (!fired && rc != KVS_OK) {
                printf("# truncate with no fault: %s\n", kvs_strerror(rc));
                bad++;
            }
            if (rc != KVS_OK && hashfile(path) != tmpl_hash) {
                not_intact++;
                printf("# truncate with %s at %ld: failed (%s) but the file changed\n",
                       kind_name[kinds[ki]], at, kvs_strerror(rc));
            }
            rc = classify(path, why, sizeof why);
            outc[rc]++;
            if (rc == O_TORN)
                printf("# truncate with %s at %ld: torn: %s\n", kind_name[kinds[ki]], at, why);
            if (rc == O_AFTER || rc == O_OTHER) {
                /* "after" for truncate is an empty, clean file: classify sees
                 * neither S0 nor S1; check it separately */
                kvs *d2;
                kvs_stats s;
                kvs_options_init(&o);
                if (kvs_open(path, &o, &d2) == KVS_OK) {
                    if (kvs_stats_get(d2, &s) == KVS_OK && s.records == 0)
                        outc[rc]--, outc[O_AFTER]++;
                    kvs_close(d2);
                }
            }
        }
    tap_ok(bad == 0, "kvs_truncate under faults (%d runs): clear error codes", runs);
    tap_diag("  afterwards: %d before, %d empty (after), %d torn, %d other, %d open fails",
             outc[O_BEFORE], outc[O_AFTER], outc[O_TORN], outc[O_OTHER], outc[O_OPENFAIL]);
    tap_ok(outc[O_OTHER] == 0 && outc[O_OPENFAIL] == 0,
           "kvs_truncate under faults: no clean-but-wrong or unopenable file");
    tap_ok(not_intact == 0 && outc[O_TORN] == 0,
           "kvs_truncate under faults: a failed truncate leaves the file byte-for-byte as before (%d not, %d torn)",
           not_intact, outc[O_TORN]);
}

/* ---- write order when the section reuses free pages ----
 * The README promises that a write-out writes the pages the section grew the
 * file with first (nothing on disk refers to them), then the pages the file
 * had, then the header.  A page popped from the free list is one the file
 * had: the old header's free list still runs through it.  Writing it early
 * (as the pool once did: every allocated page counted as "fresh") means a
 * crash in the "new pages" phase already damages the old state.  Here: a
 * file with a free list of value pages, a section that reuses all of them
 * and grows the file too, a 4096-frame cache (nothing is written before
 * kvs_end); the clean run records the order of the writes, then every write
 * from the Nth on fails (a crash / a dead disk: the undo cannot be written)
 * for every N up to just after the last write of a grown page: the file must
 * be byte for byte as before, and pass kvs_check. */
#define RO_SMALL  200
#define RO_FREED  30
#define RO_NEW    60
#define RO_VLEN   20000
static char ro_snap[200];

static int ro_put_range(kvs *db, const char *pfx, int from, int to, size_t vlen, int ver)
{
    char k[64];
    int i;
    for (i = from; i < to; i++) {
        size_t j;
        for (j = 0; j < vlen; j++)
            vbuf[j] = (unsigned char)(i * 7 + j + ver);
        if (kvs_put(db, k, (size_t)sprintf(k, "%s-%d", pfx, i), vbuf, vlen, 0) != KVS_OK)
            return 0;
    }
    return 1;
}

static int ro_section(kvs *db)
{
    int rc = kvs_begin(db, KVS_WRITE);
    if (rc == KVS_OK && (!ro_put_range(db, "big2", 0, RO_NEW, RO_VLEN, 1) ||
                         !ro_put_range(db, "small", 0, RO_SMALL / 4, 90, 1)))
        rc = KVS_EIO;
    if (rc == KVS_OK)
        return kvs_end(db);
    (void)kvs_end(db);
    return rc;
}

static void reuse_order(void)
{
    kvs_options o;
    kvs *db;
    kvs_stats st;
    char k[64];
    int i, ok = 1, bad = 0, runs = 0;
    long n, nmax, first_old, new_after_old;
    uint64_t h0;
    struct stat sb;
    uint32_t free_before = 0;

    snprintf(ro_snap, sizeof ro_snap, "%s/reuse.snap", dir);
    rmtree(vdir);
    mkdir(vdir, 0755);
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    if (kvs_open(path, &o, &db) != KVS_OK)
        ok = 0;
    ok = ok && ro_put_range(db, "small", 0, RO_SMALL, 60, 0) &&
         ro_put_range(db, "big", 0, RO_FREED, RO_VLEN, 0);
    for (i = 0; ok && i < RO_FREED; i++)
        ok = kvs_delete(db, k, (size_t)sprintf(k, "big-%d", i)) == KVS_OK;
    if (ok && kvs_stats_get(db, &st) == KVS_OK)
        free_before = (uint32_t)st.free_pages;
    if (db)
        ok = kvs_close(db) == KVS_OK && ok;
    ok = ok && copytree(vdir, ro_snap) == 0;
    tap_ok(ok && free_before >= RO_FREED * 4, "reuse-order template: %u pages on the free list",
           (unsigned)free_before);
    if (!ok)
        return;
    {
        char p[300];
        snprintf(p, sizeof p, "%s/victim.kvs", ro_snap);
        h0 = hashfile(p);
        stat(p, &sb);
    }

    /* the clean run, recording the order */
    restore_from(ro_snap);
    kvs_options_init(&o);
    o.os = &fault_os;
    o.cache_pages = 4096;
    kvs_open(path, &o, &db);
    rec_old_size = sb.st_size;
    rec_first_old = rec_last_new = rec_new_after_old = 0;
    arm(K_NONE, 0, 0);
    rec_on = 1;
    ok = ro_section(db) == KVS_OK;
    rec_on = armed = 0;
    nmax = rec_last_new;
    first_old = rec_first_old;
    new_after_old = rec_new_after_old;
    ok = ok && kvs_stats_get(db, &st) == KVS_OK && st.free_pages == 0 &&
         st.pages * (uint64_t)4096 > (uint64_t)sb.st_size && kvs_check(db) == KVS_OK;
    kvs_close(db);
    tap_ok(ok, "reuse-order section: reuses the whole free list and grows the file, check clean");
    tap_ok(first_old > 0 && nmax > 0 && new_after_old == 0,
           "write-out: every write of a page grown in the section comes before the first write of a page the file had "
           "(first old-page write is pwrite %ld, last grown-page write %ld, %ld grown-page writes after an old one)",
           first_old, nmax, new_after_old);

    /* every write from the Nth on fails, N up to one past the last grown page */
    for (n = 1; n <= nmax + 1; n++) {
        int rc;
        restore_from(ro_snap);
        kvs_options_init(&o);
        o.os = &fault_os;
        o.cache_pages = 4096;
        if (kvs_open(path, &o, &db) != KVS_OK) {
            bad++;
            continue;
        }
        arm(K_PWRITE_EIO, n, 1);
        rc = ro_section(db);
        armed = 0;
        kvs_close(db);
        runs++;
        if (rc != KVS_EIO || hashfile(path) != h0) {
            bad++;
            if (bad <= 3)
                printf("# reuse order, every write from %ld on fails: section %s, file %s\n", n,
                       kvs_strerror(rc), hashfile(path) == h0 ? "as before" : "CHANGED");
        } else {
            kvs_options_init(&o);
            if (kvs_open(path, &o, &db) != KVS_OK || kvs_check(db) != KVS_OK) {
                bad++;
                printf("# reuse order, every write from %ld on fails: check: %s\n", n, kvs_errmsg(db));
            }
            if (db)
                kvs_close(db);
        }
    }
    tap_ok(runs > 0 && bad == 0,
           "a write-out that reuses free pages and fails for good while writing the grown pages (%d runs) "
           "leaves the file byte for byte as before (%d not)", runs, bad);
    rmtree(ro_snap);
}

/* ---- every crash point of a commit ----------------------------------------
 * The section above (S0 -> S1) committed through the crash table
 * (crashos.h), crashed at each of its crash points in turn under each model
 * (kill, power, torn-*, reorder), then reopened (recovery runs in kvs_open)
 * and compared with both states record by record (classify).  Two ways to
 * commit:
 *   end  kvs_end (prepare with xid 0, flush, commit), the handle's own
 *        journal (kvs_options.journal NULL), then kvs_close;
 *   2pc  kvs_prepare(xid), kvs_journal_flush, the host's commit (a flag in
 *        shared memory standing for its durable commit record), kvs_commit,
 *        through a journal directory the test opens; at reopen xid_status
 *        answers from that flag.
 * Asserted for every crash: the child died at the point (or ran to the end),
 * the file reopens, kvs_check is clean and it holds exactly S0 or S1; a
 * commit that returned OK is there (S1) under every model (a returned
 * kvs_end has flushed), and so is one that crashed in kvs_end after an
 * fsync succeeded (the first fsync of a commit is its journal flush); in
 * 2pc exactly S1 if the host committed and S0 if not.  The crash points: every write, fsync, ftruncate and name change
 * from the start of the commit (kvs_end, kvs_prepare) through kvs_close
 * (and kvs_journal_close), plus one point just after the commit returned
 * and one after the close; the power models undo writes from the start of
 * the section (its grown pages are written before the commit).  Every point
 * in the release build; with -q (ASan) every 7th or sparser, at most
 * CR_QUICK_MAX per model, from an offset the sample seed picks; with -qq
 * (valgrind) at most half as many. */
#include <sys/mman.h>

#define CR_XID        0x1234567890abULL
#define CR_QUICK_MAX  12
enum { PH_BODY = 1, PH_END, PH_PREPARE, PH_FLUSH, PH_HOST_COMMITTED, PH_FLUSHED, PH_COMMITTED, PH_CLOSE, PH_CLOSED };

typedef struct cr_shared {
    cr_report rep;
    int host_committed;     /* 2pc: the host's commit record is durable */
    int errs;               /* API calls that failed with no crash */
    long commit_point;      /* the point just after the commit returned */
    char msg[200];
} cr_shared;
static cr_shared *crs;
static char crun[200], csnap[200], cdb[300], cjdir[300], chidden[300];

static int cr_xid_status(void *arg, uint64_t xid)
{
    (void)arg;
    if (xid != CR_XID)
        return KVS_XID_ABORTED;
    return crs->host_committed ? KVS_XID_COMMITTED : KVS_XID_ABORTED;
}

static void cr_jopts(kvs_journal_options *jo)
{
    kvs_journal_options_init(jo);
    jo->os = &crash_os;
    jo->xid_status = cr_xid_status;
}

static void cr_fail(const char *what, int rc, kvs *db)
{
    crs->errs++;
    if (!crs->msg[0])
        snprintf(crs->msg, sizeof crs->msg, "%s: %s (%s)", what, kvs_strerror(rc),
                 db ? kvs_errmsg(db) : kvs_open_errmsg());
}

/* The child: one commit under the crash table, crashing at point `at`
 * (0 = never: the clean run, which counts the points). */
static void cr_child(int two_pc, int model, long at, uint64_t seed)
{
    kvs_options o;
    kvs_journal *j = NULL;
    kvs *db;
    result r;
    uint64_t lsn = 0;
    int rc;

    memset(&r, 0, sizeof r);
    kvs_options_init(&o);
    o.os = &crash_os;
    o.cache_pages = run_cache;
    o.flags |= run_flags;
    if (two_pc) {
        kvs_journal_options jo;
        cr_jopts(&jo);
        if ((rc = kvs_journal_open(cjdir, &jo, &j)) != KVS_OK) {
            cr_fail("journal open", rc, NULL);
            _exit(0);
        }
        o.journal = j;
    }
    if ((rc = kvs_open(cdb, &o, &db)) != KVS_OK) {
        cr_fail("open", rc, NULL);
        _exit(0);
    }
    cr_seed = seed;
    cr_rep = &crs->rep;
    /* the log starts with the section (its grown pages are written early),
     * the crash points with the commit */
    cr_arm(model, 0, CR_IS_POWER(model));
    cr_phase = PH_BODY;
    section_body(db, &r);
    if (r.first_err)
        cr_fail(r.where, r.first_err, db);
    cr_window(at);
    crs->rep.synced = 0;
    if (!two_pc) {
        cr_phase = PH_END;
        if ((rc = kvs_end(db)) != KVS_OK)
            cr_fail("end", rc, db);
        else
            cr_phase = PH_COMMITTED;
    } else {
        cr_phase = PH_PREPARE;
        if ((rc = kvs_prepare(db, CR_XID, &lsn)) != KVS_OK)
            cr_fail("prepare", rc, db);
        cr_phase = PH_FLUSH;
        if (!rc && (rc = kvs_journal_flush(j, lsn)) != KVS_OK)
            cr_fail("flush", rc, db);
        if (!rc) {
            crs->host_committed = 1;
            cr_phase = PH_HOST_COMMITTED;
            if ((rc = kvs_commit(db)) != KVS_OK)
                cr_fail("commit", rc, db);
            else
                cr_phase = PH_COMMITTED;
        } else
            (void)kvs_abort(db);
    }
    crs->commit_point = cr_points + 1;
    cr_point("(the commit returned)", -1, NULL, 0, 0);
    if (cr_phase == PH_COMMITTED)
        cr_phase = PH_CLOSE;
    if ((rc = kvs_close(db)) != KVS_OK)
        cr_fail("close", rc, NULL);
    if (j && (rc = kvs_journal_close(j)) != KVS_OK)
        cr_fail("journal close", rc, NULL);
    if (cr_phase == PH_CLOSE)
        cr_phase = PH_CLOSED;
    cr_point("(closed)", -1, NULL, 0, 0);
    cr_disarm();
    _exit(0);
}

/* A crash during recovery: when rec_on, cr_case opens the crashed file
 * once more in a child whose table crashes at point rec_at (0: never) of
 * that open (recovery) under rec_model, before its own reopen; rec_points:
 * the points that open met. */
static int rec_on, rec_model;
static long rec_at, rec_points;

static void cr_recover_child(int two_pc)
{
    kvs_options o;
    kvs_journal *j = NULL;
    kvs *db;
    kvs_options_init(&o);
    o.os = &crash_os;
    cr_rep = &crs->rep;
    cr_arm(rec_model, rec_at, CR_IS_POWER(rec_model));
    if (two_pc) {
        kvs_journal_options jo;
        cr_jopts(&jo);
        if (kvs_journal_open(cjdir, &jo, &j) != KVS_OK)
            _exit(0);       /* the reopen after it will tell */
        o.journal = j;
    }
    if (kvs_open(cdb, &o, &db) == KVS_OK)
        kvs_close(db);
    if (j)
        kvs_journal_close(j);
    cr_disarm();
    _exit(0);
}

/* One crash: restore the snapshot, run the child, reopen.  Returns the
 * outcome (O_*), sets *phase to the phase the crash interrupted (PH_CLOSED
 * + 1 when it ran to the end; PH_FLUSHED when it came in kvs_end after an
 * fsync had succeeded) and *points to the points the child met. */
static int cr_case(int two_pc, int model, long at, uint64_t seed, int *phase, long *points,
                   int *host_committed, char *why, size_t whylen)
{
    kvs_options o;
    kvs_journal *j = NULL;
    pid_t pid;
    int status, oc;

    why[0] = 0;
    rmtree(crun);
    rmtree(chidden);
    if (copytree(csnap, crun) != 0 || mkdir(chidden, 0755) != 0) {
        snprintf(why, whylen, "cannot restore the snapshot");
        return O_OPENFAIL;
    }
    memset(crs, 0, sizeof *crs);
    cr_reset();
    fflush(stdout);
    if ((pid = fork()) == 0)
        cr_child(two_pc, model, at, seed);
    waitpid(pid, &status, 0);
    *points = crs->rep.points;
    *host_committed = crs->host_committed;
    *phase = crs->rep.crashed ? crs->rep.phase : PH_CLOSED + 1;
    if (*phase == PH_END && crs->rep.synced)
        *phase = PH_FLUSHED;
    if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != CR_EXIT) ||
        (WEXITSTATUS(status) == CR_EXIT) != crs->rep.crashed) {
        snprintf(why, whylen, "the child %s %d", WIFSIGNALED(status) ? "died of signal" : "exited with",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        return O_CRASH;
    }
    if (crs->errs) {
        snprintf(why, whylen, "%d calls failed without a fault: %s", crs->errs, crs->msg);
        return O_OTHER;
    }
    if (CR_IS_POWER(model) && crs->rep.crashed)
        cr_reboot();
    if (rec_on) {
        crs->rep.crashed = 0;
        crs->rep.points = 0;
        fflush(stdout);
        if ((pid = fork()) == 0)
            cr_recover_child(two_pc);
        waitpid(pid, &status, 0);
        rec_points = crs->rep.points;
        if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != CR_EXIT)) {
            snprintf(why, whylen, "the recovering child %s %d", WIFSIGNALED(status) ? "died of signal" : "exited with",
                     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            return O_CRASH;
        }
        if (CR_IS_POWER(rec_model) && crs->rep.crashed)
            cr_reboot();
    }
    if (getenv("KVS_FAULTS_NO_REOPEN"))
        return O_OTHER;     /* --crash: leave the crashed files as they are */
    kvs_options_init(&o);
    o.os = &crash_os;
    if (two_pc) {
        kvs_journal_options jo;
        int rc;
        cr_jopts(&jo);
        if ((rc = kvs_journal_open(cjdir, &jo, &j)) != KVS_OK) {
            snprintf(why, whylen, "journal reopen: %s", kvs_strerror(rc));
            return O_OPENFAIL;
        }
        o.journal = j;
    }
    oc = classify_with(cdb, &o, why, whylen);
    if (j)
        kvs_journal_close(j);
    return oc;
}

static void commit_crashes(int two_pc)
{
    static const char *vnames[] = { "kvs_end", "prepare+flush+commit" };
    const char *vn = run_flags & KVS_EXCLUSIVE ? "kvs_end, exclusive handle" : vnames[two_pc];
    char why[300];
    long points, total_points = 0;
    int phase, hc, m, oc, cases_all = 0, bad_all = 0;

    /* the clean run: no crash, state after; counts the points */
    oc = cr_case(two_pc, CR_KILL, 0, 1, &phase, &points, &hc, why, sizeof why);
    tap_ok(oc == O_AFTER && points > 2, "crash points, %s: the clean commit gives the state after, %ld crash points (%s)",
           vn, points, oc == O_AFTER ? "" : why);
    if (points <= 2)
        return;
    for (m = 0; m < CR_NMODELS; m++) {
        const long qmax = quick >= 2 ? CR_QUICK_MAX / 2 : CR_QUICK_MAX;
        long at, step = quick ? (points / qmax > 7 ? points / qmax : 7) : 1;
        int cases = 0, bad = 0, outc[6] = {0}, must_after = 0, seeds = m == CR_REORDER && !quick ? 3 : 1, s;
        for (at = quick ? 1 + (long)((sample_seed + (unsigned long)m) % (unsigned long)step) : 1; at <= points; at += step) {
            if (quick && cases >= qmax)
                break;
            for (s = 0; s < seeds; s++) {
                long p2;
                int want_after, want_before, ok;
                why[0] = 0;
                oc = cr_case(two_pc, m, at, (uint64_t)(at * 31 + s + 1), &phase, &p2, &hc, why, sizeof why);
                cases++;
                outc[oc]++;
                /* what must hold: 2pc: the host's answer decides; end: a
                 * returned commit is there */
                want_after = two_pc ? hc : phase >= PH_FLUSHED;
                want_before = two_pc && !hc;
                must_after += want_after;
                ok = (oc == O_BEFORE || oc == O_AFTER) && !(want_after && oc != O_AFTER) &&
                     !(want_before && oc != O_BEFORE);
                if (!ok) {
                    bad++;
                    if (bad <= 4)
                        printf("# %s, %s, crash at point %ld of %ld (phase %d%s): %s%s%s\n",
                               vn, cr_model_name[m], at, points, phase,
                               hc ? ", host committed" : "", outcome_name[oc],
                               want_after ? " (must be after)" : want_before ? " (must be before)" : "",
                               why[0] ? ": " : "");
                    if (bad <= 4 && why[0])
                        printf("#     %s\n", why);
                }
            }
        }
        tap_ok(bad == 0 && cases > 0,
               "crash points, %s, %s model: %d crashes (%s points): %d before, %d after (%d had to be after), "
               "%d torn, %d other, %d open fails, %d child errors",
               vn, cr_model_name[m], cases, quick ? "sampled" : "all", outc[O_BEFORE], outc[O_AFTER],
               must_after, outc[O_TORN], outc[O_OTHER], outc[O_OPENFAIL], outc[O_CRASH]);
        cases_all += cases;
        bad_all += bad;
        total_points += cases;
    }
    tap_diag("crash points, %s: %ld points per commit, %d crashes in all, %d failed", vn, points,
             cases_all, bad_all);
    (void)total_points;
}

/* Recovery crashed: the commit crashed under power loss just after it
 * returned (so recovery has all of it to write back), then the reopen
 * crashed at each point of its recovery under kill, power and torn-half;
 * the next reopen must find the state after. */
static void recovery_crashes(int two_pc)
{
    static const char *vname[] = { "kvs_end", "prepare+flush+commit" };
    static const int models[] = { CR_KILL, CR_POWER, CR_TORN_HALF };
    char why[300];
    long points, rpoints, at, cp;
    int phase, hc, oc, mi, cases = 0, bad = 0, outc[6] = {0};

    /* the clean run says which point comes just after the commit returned */
    oc = cr_case(two_pc, CR_KILL, 0, 1, &phase, &points, &hc, why, sizeof why);
    cp = crs->commit_point;
    rec_on = 1;
    rec_model = CR_KILL;
    rec_at = 0;
    oc = cr_case(two_pc, CR_POWER, cp, 1, &phase, &points, &hc, why, sizeof why);
    rpoints = rec_points;
    tap_ok(oc == O_AFTER, "recovery crashes, %s: power lost just after the commit returned: after; "
           "the recovery makes %ld crash points (%s %s)", vname[two_pc], rpoints, outcome_name[oc], why);
    for (mi = 0; mi < 3; mi++) {
        const long per = quick >= 2 ? 2 : 4;
        long step = quick ? (rpoints / per > 1 ? rpoints / per : 1) : 1;
        for (at = quick ? 1 + (long)((sample_seed + (unsigned long)mi) % (unsigned long)step) : 1; at <= rpoints; at += step) {
            long p2;
            rec_model = models[mi];
            rec_at = at;
            why[0] = 0;
            oc = cr_case(two_pc, CR_POWER, cp, 1, &phase, &p2, &hc, why, sizeof why);
            cases++;
            outc[oc]++;
            if (oc != O_AFTER && ++bad <= 4)
                printf("# recovery crashes, %s: recovery crashed at point %ld of %ld (%s): %s %s\n", vname[two_pc],
                       at, rpoints, cr_model_name[models[mi]], outcome_name[oc], why);
        }
    }
    rec_on = 0;
    tap_ok(bad == 0 && rpoints > 0,
           "recovery crashes, %s: recovery crashed at %s of its %ld points under kill, power and torn-half "
           "(%d crashes): the next open finds the state after every time (%d before, %d torn, %d other, "
           "%d open fails)", vname[two_pc], quick ? "a sample" : "each", rpoints, cases, outc[O_BEFORE],
           outc[O_TORN], outc[O_OTHER], outc[O_OPENFAIL]);
}

static int crash_setup(void)
{
    kvs_options o;
    kvs *db;
    char k[64];
    int i, ok = 1;

    crs = mmap(NULL, sizeof *crs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (crs == MAP_FAILED) {
        tap_ok(0, "crash points: shared memory");
        return 0;
    }
    snprintf(crun, sizeof crun, "%s/crash", dir);
    snprintf(csnap, sizeof csnap, "%s/crash.snap", dir);
    snprintf(cdb, sizeof cdb, "%s/victim.kvs", crun);
    snprintf(cjdir, sizeof cjdir, "%s/journal", crun);
    snprintf(chidden, sizeof chidden, "%s/crash.kept", dir);
    snprintf(cr_hidden, sizeof cr_hidden, "%s", chidden);
    snprintf(cr_boot_file, sizeof cr_boot_file, "%s/boot_id", dir);
    cr_reboot();
    /* S0, made through the crash table (the boot id it reads is ours) and
     * a journal directory, then snapshotted with it */
    mkdir(crun, 0755);
    for (i = 0; i < 2 && ok; i++) {
        kvs_journal *j = NULL;
        kvs_journal_options jo;
        cr_jopts(&jo);
        kvs_options_init(&o);
        o.os = &crash_os;
        o.flags = KVS_CREATE;
        if (i == 1) {
            ok = kvs_journal_open(cjdir, &jo, &j) == KVS_OK;
            o.journal = j;
        }
        ok = ok && kvs_open(cdb, &o, &db) == KVS_OK;
        if (ok && i == 0) {
            int n;
            for (n = 0; n < NBASE && ok; n++) {
                val_of(n, 0, vbuf);
                ok = kvs_put(db, k, key_of(n, k), vbuf, vlen_of(n, 0), 0) == KVS_OK;
            }
        }
        if (ok)
            ok = kvs_check(db) == KVS_OK && kvs_close(db) == KVS_OK;
        if (j)
            ok = kvs_journal_close(j) == KVS_OK && ok;
    }
    ok = ok && copytree(crun, csnap) == 0;
    tap_ok(ok, "crash points: the state before, with its journal directory, snapshotted");
    run_cache = 16;
    return ok;
}

static void commit_crash_suite(void)
{
    if (!crash_setup())
        return;
    commit_crashes(0);
    commit_crashes(1);
    /* KVS_EXCLUSIVE: a write-back without the undo's writes */
    run_flags = KVS_EXCLUSIVE;
    commit_crashes(0);
    run_flags = 0;
    recovery_crashes(0);
    recovery_crashes(1);
    rmtree(crun);
    rmtree(csnap);
    rmtree(chidden);
    unlink(cr_boot_file);
}

/* A clean run with a cache of `cache` frames (kept in run_cache for the
 * sweeps that follow): no error, state after; counts its calls. */
static void clean_run(uint32_t cache, long *counts)
{
    result r;
    run_cache = cache;
    r = run_case(K_NONE, 0, 0, 1, counts);
    tap_ok(r.first_err == 0 && r.outcome == O_AFTER, "clean run, %u-frame cache%s: no error, state after",
           (unsigned)cache, run_flags & KVS_EXCLUSIVE ? ", exclusive handle" : "");
    tap_diag("clean section + sync + close: %ld pwrites (%ld grow the file), %ld fsyncs, %ld preads",
             counts[0], counts[6], counts[1], counts[3]);
}

int main(int argc, char **argv)
{
    long counts[7] = {0};
    result r;
    int ai;
    quick = argc > 1 && strcmp(argv[1], "-q") == 0 ? 1 : argc > 1 && strcmp(argv[1], "-qq") == 0 ? 2 : 0;
    sample_seed = (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16);
    for (ai = quick ? 2 : 1; ai + 1 < argc; ai++)
        if (strcmp(argv[ai], "-s") == 0)
            sample_seed = strtoul(argv[++ai], NULL, 10);
    if (quick)
        tap_diag("sampled sweeps and crash points, sample seed %lu (faults %s -s %lu repeats the sample)",
                 sample_seed, quick >= 2 ? "-qq" : "-q", sample_seed);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    if (argc == 5 && strcmp(argv[1], "--crash") == 0) {
        /* one crash, for debugging: --crash 0|1 (kvs_end, 2pc) MODEL POINT;
         * the files stay for a look */
        char why[300] = "";
        long points;
        int phase, hc, m, oc;
        for (m = 0; m < CR_NMODELS && strcmp(cr_model_name[m], argv[3]); m++)
            ;
        if (m == CR_NMODELS || !crash_setup())
            return 2;
        if (getenv("KVS_FAULTS_RECOVERY_CRASH")) {
            /* MODEL:N -- then crash the recovery too */
            const char *e = getenv("KVS_FAULTS_RECOVERY_CRASH"), *c = strchr(e, ':');
            for (rec_model = 0; rec_model < CR_NMODELS && c &&
                 strncmp(cr_model_name[rec_model], e, (size_t)(c - e)); rec_model++)
                ;
            if (!c || rec_model == CR_NMODELS)
                return 2;
            rec_on = 1;
            rec_at = atol(c + 1);
        }
        oc = cr_case(atoi(argv[2]), m, atol(argv[4]), 1, &phase, &points, &hc, why, sizeof why);
        printf("# %s at point %s: %s, phase %d, %ld points met, host committed %d: %s\n# files in %s\n",
               cr_model_name[m], argv[4], outcome_name[oc], phase, points, hc, why, crun);
        return 0;
    }
    snprintf(vdir, sizeof vdir, "%s/v", dir);
    snprintf(snapdir, sizeof snapdir, "%s/v.snap", dir);
    snprintf(path, sizeof path, "%s/victim.kvs", vdir);
    snprintf(tmpl, sizeof tmpl, "%s/victim.kvs", snapdir);
    db_path = path;
    if (!build_template()) {
        tap_ok(0, "template file builds");
        return tap_done();
    }
    tmpl_hash = hashfile(tmpl);
    /* a clean run: counts the calls the section makes, and sets the bar */
    r = run_case(K_NONE, 0, 0, 1, counts);
    tap_ok(r.first_err == 0 && r.outcome == O_AFTER, "clean run: no error, state after (%s %s)",
           r.first_err ? kvs_strerror(r.first_err) : "", r.msg);
    tap_diag("clean section + sync + close makes %ld pwrites, %ld fsyncs, %ld ftruncates, %ld preads",
             counts[0], counts[1], counts[2], counts[3]);

    sweep(K_PWRITE_EIO, 0, counts[0] + 2, 1, 0);
    sweep(K_PWRITE_EIO, 1, counts[0] + 2, 1, 0);
    sweep(K_PWRITE_ENOSPC, 1, counts[0] + 2, 1, 0);
    sweep(K_PWRITE_SHORT, 0, counts[0], 1, 1);
    sweep(K_PWRITE_SHORT_ENOSPC, 0, counts[0], 1, 0);
    sweep(K_PWRITE_ZERO, 0, counts[0], 1, 0);
    sweep(K_FSYNC_EIO, 0, counts[1] + 1, 1, 1);
    if (counts[2])
        sweep(K_FTRUNC_EIO, 0, counts[2] + 1, 1, 0);
    sweep(K_PREAD_EIO, 0, counts[3] > 400 ? 400 : counts[3], 1, 0);
    sweep(K_EXT_ENOSPC, 1, counts[6] + 1, 1, 0);

    /* A cache that holds the whole section: nothing is written before
     * kvs_end, so a full disk (growth fails) is met before any existing
     * page is rewritten, and must leave the file as it was. */
    clean_run(1024, counts);
    sweep(K_EXT_ENOSPC, 1, counts[6] + 1, 1, 1);
    sweep(K_PWRITE_EIO, 0, counts[0] + 1, 1, 0);
    sweep(K_PREAD_EIO, 0, counts[3] + 1, 1, 1);
    run_cache = 16;
    /* KVS_EXCLUSIVE: the write-back keeps no undo (nobody else reads the
     * file); a failed one leaves the file torn until the reopen redoes it
     * from the journal, and the handle refuses every section meanwhile */
    run_flags = KVS_EXCLUSIVE;
    clean_run(16, counts);
    sweep(K_PWRITE_EIO, 0, counts[0] + 2, 1, 0);
    sweep(K_PWRITE_EIO, 1, counts[0] + 2, 1, 0);
    sweep(K_FSYNC_EIO, 0, counts[1] + 1, 1, 1);
    /* every page in the pool until kvs_end: the writes are the commit's */
    clean_run(1024, counts);
    sweep(K_PWRITE_EIO, 0, counts[0] + 2, 1, 0);
    sweep(K_PWRITE_ENOSPC, 1, counts[0] + 2, 1, 0);
    sweep(K_PWRITE_SHORT_ENOSPC, 0, counts[0], 1, 0);
    run_cache = 16;
    tap_ok(excl_refused > 0, "exclusive handle: %d failed write-backs were left to the journal (the "
           "handle refused reads, the reopen redid them)", excl_refused);
    run_flags = 0;
    reuse_order();
    creation_faults();
    read_faults();
    truncate_faults();
    commit_crash_suite();
    tap_diag("torn files after a failed write: %d; clean files in neither state: %d",
             ntorn_total, nother_total);
    rmtree(dir);
    return tap_done();
}
