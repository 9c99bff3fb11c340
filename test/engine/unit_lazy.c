/*
 * unit_lazy.c - lazy write sections (KVS_LAZY with KVS_EXCLUSIVE, kvs.h;
 * README, "Lazy write sections"): kvs_end of a write section keeps its
 * changes dirty in the handle's pool; the write-out (one journalled commit)
 * comes at kvs_sync, kvs_close, or when the dirty pages pass half the pool.
 *
 * Checked against a model of every key's value: the refusals (without
 * KVS_EXCLUSIVE, read-only, kvs_prepare); 2000 lazy replace sections make
 * no system call; many lazy sections of puts (with splits and growth),
 * replaces and deletes, then kvs_close and a reopen equal the model; a
 * section dirtying every page of a file under half the pool makes no system
 * call at its end, and the abort of one rewriting all its pages after it
 * gives back its state, and past half the pool its end writes out; kvs_abort after earlier lazy sections (pages dirtied by both, splits and
 * growth, a truncate, evictions and spills with a 16-frame pool) gives back
 * exactly the earlier state and writes nothing to the file; the threshold
 * write-out happens without kvs_sync and a crash after it keeps it; a crash
 * (_exit, SIGKILL) without close loses only the lazy tail and kvs_check is
 * clean; a crash at every write, fsync and ftruncate of the write-out
 * (crashos.h: process killed, power lost) leaves exactly the state before
 * or after it.
 */
#include "kvs.h"
#include "tap.h"
#include "files.h"
#include "crashos.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NKEYS 3000
static char dir[256], run[300], path[400], snap[300], hidden[300];

/* ---- the model: a version per key, 0 = absent ---- */
typedef struct model {
    uint32_t ver[NKEYS];
} model;

static size_t make_key(uint32_t k, char *buf)
{
    return (size_t)sprintf(buf, "key-%05u", (unsigned)k);
}

/* a value of 10..300 bytes, its length and bytes from (key, version) */
static size_t make_val(uint32_t k, uint32_t v, char *buf)
{
    uint64_t x = (uint64_t)k * 0x9E3779B97F4A7C15ull ^ (uint64_t)v * 0xBF58476D1CE4E5B9ull;
    size_t n = 10 + (size_t)(x % 291), i;
    for (i = 0; i < n; i++)
        buf[i] = (char)('a' + (char)((x >> (i % 50)) % 26));
    sprintf(buf, "%u/%u", (unsigned)k, (unsigned)v);
    buf[strlen(buf)] = '.';
    return n;
}

static int put_ver(kvs *db, model *m, uint32_t k, uint32_t v)
{
    char key[32], val[400];
    size_t kl = make_key(k, key), vl = make_val(k, v, val);
    int rc = kvs_put(db, key, kl, val, vl, 0);
    if (rc == KVS_OK)
        m->ver[k] = v;
    return rc;
}

static int del_key(kvs *db, model *m, uint32_t k)
{
    char key[32];
    size_t kl = make_key(k, key);
    int rc = kvs_delete(db, key, kl);
    if (rc == KVS_OK || rc == KVS_NOTFOUND)
        m->ver[k] = 0;
    return rc == KVS_NOTFOUND ? KVS_OK : rc;
}

static int quiet;      /* equals() names no difference (a probe) */

/* 1 if db holds exactly the model (every key's value, no other record) */
static int equals(kvs *db, const model *m)
{
    char key[32], val[400];
    uint32_t k, present = 0;
    long n;
    kvs_slice vs;
    int rc;
    for (k = 0; k < NKEYS; k++) {
        size_t kl = make_key(k, key);
        rc = kvs_get(db, key, kl, &vs);
        if (m->ver[k] == 0) {
            if (rc != KVS_NOTFOUND) {
                if (!quiet)
                    tap_diag("key %u: should be absent, get says %s", (unsigned)k, kvs_strerror(rc));
                return 0;
            }
            continue;
        }
        present++;
        if (rc != KVS_OK || vs.len != make_val(k, m->ver[k], val) || memcmp(vs.data, val, vs.len) != 0) {
            if (!quiet)
                tap_diag("key %u: version %u expected, get says %s (%.12s)", (unsigned)k,
                     (unsigned)m->ver[k], kvs_strerror(rc), rc == KVS_OK ? (const char *)vs.data : "");
            return 0;
        }
    }
    return test_count(db, &n) == KVS_OK && n == present;
}

static uint64_t rnd_state = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state % n);
}

/* One lazy section of `ops` random changes (puts mostly, some deletes). */
static int random_section(kvs *db, model *m, int ops, uint32_t tag)
{
    int i, rc = kvs_begin(db, KVS_WRITE);
    if (rc)
        return rc;
    for (i = 0; i < ops && rc == KVS_OK; i++) {
        uint32_t k = rnd(NKEYS);
        rc = rnd(5) == 0 ? del_key(db, m, k) : put_ver(db, m, k, tag * 8 + (uint32_t)i + 1);
    }
    if (rc) {
        (void)kvs_abort(db);
        return rc;
    }
    return kvs_end(db);
}

/* What random_section(ops, tag0 + i) for i < sections does to the model
 * when the generator starts at seed, without an engine. */
static void replay(model *m, uint64_t seed, uint32_t sections, int ops, uint32_t tag0)
{
    uint64_t saved = rnd_state;
    uint32_t i;
    int j;
    rnd_state = seed;
    for (i = 0; i < sections; i++)
        for (j = 0; j < ops; j++) {
            uint32_t k = rnd(NKEYS);
            m->ver[k] = rnd(5) == 0 ? 0 : (tag0 + i) * 8 + (uint32_t)j + 1;
        }
    rnd_state = saved;
}

/* ---- a counting I/O table ---- */
static kvs_os count_os;
static unsigned long n_calls;
static ssize_t c_pread(int fd, void *b, size_t n, off_t o) { n_calls++; return kvs_os_posix()->pread(fd, b, n, o); }
static ssize_t c_pwrite(int fd, const void *b, size_t n, off_t o) { n_calls++; return kvs_os_posix()->pwrite(fd, b, n, o); }
static int c_fsync(int fd) { n_calls++; return kvs_os_posix()->fsync(fd); }
static int c_flock(int fd, int op) { n_calls++; return kvs_os_posix()->flock(fd, op); }
static int c_ftruncate(int fd, off_t l) { n_calls++; return kvs_os_posix()->ftruncate(fd, l); }

static const kvs_os *counting_os(void)
{
    count_os = *kvs_os_posix();
    count_os.pread = c_pread;
    count_os.pwrite = c_pwrite;
    count_os.fsync = c_fsync;
    count_os.flock = c_flock;
    count_os.ftruncate = c_ftruncate;
    return &count_os;
}

static kvs *lazy_open(uint32_t cache, const kvs_os *os)
{
    return test_open(path, KVS_CREATE | KVS_EXCLUSIVE | KVS_LAZY | KVS_NOSYNC, cache, NULL, os);
}

static void fresh(void)
{
    rmtree(run);
    mkdir(run, 0755);
}

/* reopened without the flag: equals the model, check clean */
static void verify_reopen(const model *m, const char *what)
{
    kvs *db = test_open(path, 0, 4096, NULL, NULL);
    tap_ok(db && equals(db, m), "%s: reopened, the file holds the model", what);
    tap_ok(db && kvs_check(db) == KVS_OK, "%s: kvs_check clean", what);
    if (db)
        kvs_close(db);
}

/* the hash of the file's first `size` bytes */
static uint64_t prefix_hash(off_t size)
{
    static char buf[1 << 16];
    XXH3_state_t *st = XXH3_createState();
    int fd = open(path, O_RDONLY);
    off_t off = 0;
    uint64_t h;
    XXH3_64bits_reset(st);
    while (fd >= 0 && off < size) {
        ssize_t n = pread(fd, buf, size - off < (off_t)sizeof buf ? (size_t)(size - off) : sizeof buf, off);
        if (n <= 0)
            break;
        XXH3_64bits_update(st, buf, (size_t)n);
        off += n;
    }
    if (fd >= 0)
        close(fd);
    h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

static off_t file_size(void)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_refusals(void)
{
    kvs_options o;
    kvs *db = NULL;
    uint64_t lsn;
    fresh();
    kvs_options_init(&o);
    o.flags = KVS_CREATE | KVS_LAZY;
    TAP_RC(kvs_open(path, &o, &db), KVS_EINVAL);
    tap_ok(strstr(kvs_open_errmsg(), "KVS_LAZY") != NULL, "the refusal names KVS_LAZY (%s)", kvs_open_errmsg());
    db = open_fresh(path, 64, 0);
    kvs_close(db);
    o.flags = KVS_RDONLY | KVS_EXCLUSIVE | KVS_LAZY;
    TAP_RC(kvs_open(path, &o, &db), KVS_EINVAL);
    db = lazy_open(64, NULL);
    tap_ok(db != NULL, "KVS_EXCLUSIVE | KVS_LAZY opens");
    if (!db)
        return;
    TAP_RC(kvs_begin(db, KVS_WRITE), KVS_OK);
    TAP_RC(kvs_put(db, "a", 1, "b", 1, 0), KVS_OK);
    TAP_RC(kvs_prepare(db, 7, &lsn), KVS_EINVAL);
    TAP_RC(kvs_end(db), KVS_OK);
    TAP_RC(kvs_close(db), KVS_OK);
}

/* many lazy sections, then close + reopen; replaces make no system call */
static void test_many(void)
{
    model m;
    kvs *db;
    uint32_t k, i;
    int rc = KVS_OK;
    unsigned long calls;
    fresh();
    memset(&m, 0, sizeof m);
    db = lazy_open(8192, counting_os());
    if (!db)
        return;
    for (i = 0; i < 1500 && rc == KVS_OK; i++)
        rc = random_section(db, &m, 1 + (int)rnd(4), i + 1);
    tap_ok(rc == KVS_OK, "1500 lazy sections of puts and deletes (%s)", kvs_strerror(rc));
    tap_ok(equals(db, &m), "the handle sees the model before any write-out");
    for (k = 0; k < NKEYS && rc == KVS_OK; k++)
        if (m.ver[k] == 0)
            rc = put_ver(db, &m, k, 1);
    TAP_RC(kvs_sync(db), KVS_OK);
    calls = n_calls;
    for (i = 0; i < 2000 && rc == KVS_OK; i++) {
        k = rnd(NKEYS);
        {
        char tmp[400];
        uint32_t v = m.ver[k] + 1;
        /* a value of the same length: a replace in place, no growth */
        while (make_val(k, v, tmp) != make_val(k, m.ver[k], tmp))
            v++;
        rc = kvs_begin(db, KVS_WRITE);
        if (rc == KVS_OK)
            rc = put_ver(db, &m, k, v);
        if (rc == KVS_OK)
            rc = kvs_end(db);
        }
    }
    tap_ok(rc == KVS_OK && n_calls == calls,
           "2000 lazy replace sections: %lu system calls (pread, pwrite, fsync, flock, ftruncate)",
           n_calls - calls);
    for (i = 0; i < 500 && rc == KVS_OK; i++)
        rc = random_section(db, &m, 1 + (int)rnd(8), 2000 + i);
    tap_ok(rc == KVS_OK && equals(db, &m), "500 more lazy sections: the handle equals the model");
    TAP_RC(kvs_close(db), KVS_OK);
    verify_reopen(&m, "many lazy sections");
}

/* a same-length value of key k, other than its version in m */
static uint32_t same_len_ver(const model *m, uint32_t k)
{
    char tmp[400];
    uint32_t v = m->ver[k] + 1;
    while (make_val(k, v, tmp) != make_val(k, m->ver[k], tmp))
        v++;
    return v;
}

/* One section that dirties every page of the file, in a pool of `num`/2
 * times the file's pages: under half the pool (num 5) it ends in memory,
 * and an abort of the next one, which rewrites every page again, puts every
 * pre-image back; past half (num 3) its end writes out. */
static void test_big_section(uint32_t num)
{
    model m;
    kvs *db;
    uint32_t k, cache;
    uint64_t records = 0, pages = 0;
    unsigned long calls;
    int rc = KVS_OK, in_memory = num > 4;
    fresh();
    memset(&m, 0, sizeof m);
    db = lazy_open(8192, NULL);
    if (!db)
        return;
    for (k = 0; k < NKEYS && rc == KVS_OK; k++)
        rc = put_ver(db, &m, k, 1);
    if (rc == KVS_OK)
        rc = kvs_size_estimate(db, &records, &pages);
    TAP_RC(kvs_close(db), KVS_OK);
    cache = (uint32_t)(pages * num / 2);
    db = rc == KVS_OK ? lazy_open(cache, counting_os()) : NULL;
    if (!db)
        return;
    rc = kvs_begin(db, KVS_WRITE);
    for (k = 0; k < NKEYS && rc == KVS_OK; k++)
        rc = put_ver(db, &m, k, same_len_ver(&m, k));
    {
        uint32_t pending = kvs_pending_pages(db);
        calls = n_calls;    /* (the puts read the pages from the file) */
        rc = rc ? rc : kvs_end(db);
        if (in_memory)
            tap_ok(rc == KVS_OK && pending <= cache / 2 && n_calls == calls,
                   "a section dirtying %u pages of a %u-frame pool (within half) ends in memory: "
                   "%lu system calls at its end", (unsigned)pending, (unsigned)cache, n_calls - calls);
        else
            tap_ok(rc == KVS_OK && pending > cache / 2 && n_calls > calls,
                   "a section dirtying %u pages of a %u-frame pool (past half) writes out at its end: "
                   "%lu system calls", (unsigned)pending, (unsigned)cache, n_calls - calls);
    }
    if (in_memory) {
        model before = m;
        rc = rc ? rc : kvs_begin(db, KVS_WRITE);
        for (k = 0; k < NKEYS && rc == KVS_OK; k++)
            rc = put_ver(db, &m, k, same_len_ver(&m, k));
        rc = rc ? rc : kvs_abort(db);
        m = before;
        tap_ok(rc == KVS_OK && equals(db, &m),
               "its abort after a section rewriting every page gives back the state before (%s)", kvs_strerror(rc));
    }
    TAP_RC(kvs_close(db), KVS_OK);
    verify_reopen(&m, in_memory ? "a big lazy section, then an aborted one" : "a lazy section past the threshold");
}

/* an abort after earlier lazy sections: exactly the earlier state */
static void test_abort(uint32_t cache)
{
    model m, before;
    kvs *db;
    uint32_t i, k;
    uint64_t h0, h1;
    off_t size0;
    int rc = KVS_OK, ok = 1, round;
    char what[80];
    fresh();
    memset(&m, 0, sizeof m);
    db = lazy_open(cache, NULL);
    if (!db)
        return;
    for (k = 0; k < NKEYS / 2 && rc == KVS_OK; k++)
        rc = put_ver(db, &m, k * 2, 1);
    TAP_RC(kvs_sync(db), KVS_OK);
    for (round = 0; round < 6; round++) {
        /* earlier lazy sections: replaces of some keys (their pages stay dirty) */
        for (i = 0; i < 20 && rc == KVS_OK; i++) {
            rc = random_section(db, &m, 3, 100 + (uint32_t)round * 20 + i);
        }
        if (round % 3 == 0 && rc == KVS_OK) {
            /* a write-out, then three one-put lazy sections: pending for
             * sure, even under the 16-frame pool's threshold of 14 */
            rc = kvs_sync(db);
            for (i = 0; i < 3 && rc == KVS_OK; i++)
                rc = random_section(db, &m, 1, 700 + (uint32_t)round * 4 + i);
        }
        before = m;
        size0 = file_size();
        h0 = prefix_hash(size0);
        rc = rc ? rc : kvs_begin(db, KVS_WRITE);
        if (round % 3 == 0) {
            /* reads first: with 16 frames the earlier sections' dirty
             * pages are evicted (spilled) before anything touches them,
             * and most are never touched again in this section */
            kvs_slice vs;
            char key[32];
            for (k = 0; k < NKEYS; k++)
                (void)kvs_get(db, key, make_key(k, key), &vs);
            /* then 60 keys outside the model: the pool fills with dirty
             * frames and must evict dirty ones, some never touched again */
            for (k = 0; k < 60 && rc == KVS_OK; k++) {
                int kl = sprintf(key, "extra-%u", (unsigned)k);
                rc = kvs_put(db, key, (size_t)kl, key, (size_t)kl, 0);
            }
        } else if (round % 3 == 1) {
            /* the same keys again (pages dirtied by both), new keys
             * (splits, growth, pages the file does not have), deletes */
            for (k = 0; k < NKEYS && rc == KVS_OK; k++)
                if (before.ver[k] > 1 || k % 7 == (uint32_t)round)
                    rc = put_ver(db, &m, k, 999);
            for (k = 1; k < NKEYS && rc == KVS_OK; k += 2)
                rc = put_ver(db, &m, k, 500);
            for (k = 0; k < NKEYS && rc == KVS_OK; k += 5)
                rc = del_key(db, &m, k);
        } else {
            /* a truncate before anything else is touched, then a refill */
            rc = kvs_truncate(db);
            for (k = 0; k < 100 && rc == KVS_OK; k++)
                rc = put_ver(db, &m, k, 777);
        }
        if (rc == KVS_OK)
            rc = kvs_abort(db);
        if (rc)
            tap_diag("round %d: %s: %s", round, kvs_strerror(rc), kvs_errmsg(db));
        m = before;
        h1 = prefix_hash(size0);
        snprintf(what, sizeof what, "cache %u, round %d (%s)", (unsigned)cache, round,
                 round % 3 == 0 ? "reads, then 60 new keys" : round % 3 == 1 ? "puts, deletes, splits" : "a truncate, then puts");
        tap_ok(rc == KVS_OK && equals(db, &m), "%s: abort gives back the state of the earlier lazy sections", what);
        if (cache > 1000)
            tap_ok(h0 == h1, "%s: the aborted section wrote nothing to the file's %lld bytes (it may grow it)", what, (long long)size0);
        ok = ok && rc == KVS_OK;
    }
    for (i = 0; i < 20 && rc == KVS_OK; i++)
        rc = random_section(db, &m, 3, 900 + i);
    tap_ok(rc == KVS_OK && equals(db, &m), "cache %u: lazy sections after the aborts", (unsigned)cache);
    TAP_RC(kvs_close(db), KVS_OK);
    snprintf(what, sizeof what, "aborts, cache %u", (unsigned)cache);
    verify_reopen(&m, what);
    (void)ok;
}

/* the threshold: dirty pages past the pool less its reserve are written out at a
 * section's end, without kvs_sync */
static uint64_t header_hash(void)
{
    char buf[4096];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? pread(fd, buf, sizeof buf, 0) : -1;
    if (fd >= 0)
        close(fd);
    return n == (ssize_t)sizeof buf ? XXH3_64bits(buf, sizeof buf) : 0;
}

static void test_threshold(void)
{
    model m, at_last;
    kvs *db;
    uint32_t i;
    uint64_t h, hprev;
    int rc = KVS_OK, writeouts = 0;
    fresh();
    memset(&m, 0, sizeof m);
    db = lazy_open(64, NULL);
    if (!db)
        return;
    hprev = header_hash();
    at_last = m;
    for (i = 0; i < 600 && rc == KVS_OK; i++) {
        rc = random_section(db, &m, 4, i + 1);
        h = header_hash();
        if (h != hprev) {
            /* the header changed: a write-out at this section's end */
            writeouts++;
            at_last = m;
        }
        hprev = h;
    }
    tap_ok(rc == KVS_OK && writeouts >= 3 && writeouts < 600,
           "64-frame pool, 600 lazy sections, no kvs_sync: %d write-outs at the threshold", writeouts);
    /* a copy of the files taken now holds the last write-out */
    rmtree(snap);
    copytree(run, snap);
    kvs_close(db);
    rmtree(run);
    rename(snap, run);
    verify_reopen(&at_last, "a copy taken before kvs_close (the last threshold write-out)");
}

/* crashes without kvs_close: the lazy tail is lost, nothing else */
static void test_crash(int use_kill)
{
    model m, synced;
    kvs *db;
    uint32_t i;
    int rc = KVS_OK, st, p[2];
    pid_t pid;
    char c;
    fresh();
    memset(&m, 0, sizeof m);
    if (pipe(p) != 0)
        return;
    fflush(stdout);
    rnd_state = 12345;
    pid = fork();
    if (pid == 0) {
        db = lazy_open(4096, NULL);
        if (!db)
            _exit(2);
        for (i = 0; i < 300 && rc == KVS_OK; i++)
            rc = random_section(db, &m, 5, i + 1);
        if (rc == KVS_OK)
            rc = kvs_sync(db);
        for (i = 0; i < 300 && rc == KVS_OK; i++)
            rc = random_section(db, &m, 5, 1000 + i);
        if (rc)
            _exit(3);
        if (use_kill) {
            if (write(p[1], "x", 1) != 1)
                _exit(4);
            pause();
        }
        _exit(0);       /* no kvs_close */
    }
    close(p[1]);
    /* the same random sequence here: the model at the sync */
    memset(&synced, 0, sizeof synced);
    replay(&synced, 12345, 300, 5, 1);
    if (use_kill) {
        if (read(p[0], &c, 1) == 1)
            kill(pid, SIGKILL);
    }
    close(p[0]);
    waitpid(pid, &st, 0);
    tap_ok(use_kill ? WIFSIGNALED(st) : (WIFEXITED(st) && WEXITSTATUS(st) == 0),
           "%s: the child ran 300 lazy sections, kvs_sync, 300 more, and died", use_kill ? "SIGKILL" : "_exit");
    verify_reopen(&synced, use_kill ? "killed without close" : "_exit without close");
}

/* a crash at every crash point of the write-out */
static void crash_points(int model_kind)
{
    model before, after;
    kvs *db;
    uint32_t i;
    long at;
    int rc = KVS_OK, st, bad = 0, runs = 0, saw_after = 0, saw_before = 0, finished = 0;
    pid_t pid;
    fresh();
    memset(&before, 0, sizeof before);
    rnd_state = 777;
    db = lazy_open(4096, NULL);
    if (!db)
        return;
    for (i = 0; i < 50 && rc == KVS_OK; i++)
        rc = random_section(db, &before, 10, i + 1);
    kvs_close(db);
    rmtree(snap);
    copytree(run, snap);
    for (at = 1; !finished && at < 400; at++) {
        rmtree(run);
        copytree(snap, run);
        cr_reset();
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
            model m = before;
            kvs_options o;
            kvs_options_init(&o);
            o.flags = KVS_EXCLUSIVE | KVS_LAZY;
            o.cache_pages = 4096;
            o.os = &crash_os;
            rnd_state = 999;
            if (kvs_open(path, &o, &db) != KVS_OK)
                _exit(2);
            for (i = 0; i < 40 && rc == KVS_OK; i++)
                rc = random_section(db, &m, 6, 5000 + i);
            if (rc)
                _exit(3);
            cr_arm(model_kind, 0, CR_IS_POWER(model_kind));
            cr_window(at);
            rc = kvs_sync(db);
            if (rc == KVS_OK)
                rc = kvs_close(db);
            cr_disarm();
            _exit(rc == KVS_OK ? 0 : 4);
        }
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != CR_EXIT)) {
            bad++;
            continue;
        }
        if (WEXITSTATUS(st) == 0)
            finished = 1;
        runs++;
        {
            kvs *r = test_open(path, 0, 4096, NULL, NULL);
            int ok;
            if (!r) {
                bad++;
                continue;
            }
            if (kvs_check(r) != KVS_OK) {
                bad++;
            } else if ((quiet = 1, equals(r, &before))) {
                quiet = 0;
                saw_before++;
            } else {
                /* the after state: the same 40 sections in the model */
                quiet = 0;
                after = before;
                replay(&after, 999, 40, 6, 5000);
                ok = equals(r, &after);
                if (ok)
                    saw_after++;
                else
                    bad++;
                if (finished && !ok)
                    bad++;
            }
            if (finished && !saw_after)
                bad++;
            kvs_close(r);
        }
    }
    tap_ok(finished && bad == 0 && runs > 3,
           "%s: a crash at each of %d points of the write-out leaves before (%d) or after (%d), check clean; %d bad",
           cr_model_name[model_kind], runs - 1, saw_before, saw_after, bad);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/kvs-unit-lazy-%d", (int)getpid());
    rmtree(dir);
    mkdir(dir, 0755);
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(snap, sizeof snap, "%s/snap", dir);
    snprintf(hidden, sizeof hidden, "%s/hidden", dir);
    snprintf(path, sizeof path, "%s/db", run);
    mkdir(hidden, 0755);
    snprintf(cr_hidden, sizeof cr_hidden, "%s", hidden);
    snprintf(cr_boot_file, sizeof cr_boot_file, "%s/boot_id", dir);
    cr_reboot();

    test_refusals();
    test_many();
    test_big_section(5);
    test_big_section(3);
    test_abort(8192);
    test_abort(16);
    test_threshold();
    test_crash(0);
    test_crash(1);
    crash_points(CR_KILL);
    crash_points(CR_POWER);

    rmtree(dir);
    return tap_done();
}
