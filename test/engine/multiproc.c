/*
 * multiproc.c - many processes on one file at once.
 *
 * Every value is self-describing: a header (magic, key number, writer
 * process, version/count, length) and a checksum over all of it, so any torn
 * or misplaced value is caught by whoever reads it.
 *
 *  disjoint: P processes (2, then 4) each own the keys k % P == me, and put,
 *    delete, get their own keys (exact: nobody else writes them), get others'
 *    keys (untorn, right owner, versions never going backwards), scan with a
 *    cursor (every record untorn; own keys exactly as written), write in
 *    batches inside explicit sections, reopen now and then; large values too.
 *    Afterwards the parent checks the file and compares every record against
 *    the union of the processes' logs of their own keys.
 *  overlapping: P processes write the same keys: read-modify-write counters
 *    inside write sections (the final count of each counter must equal the
 *    sum of every process's increments: no lost update) and random puts and
 *    deletes of shared keys with large values; every read untorn.
 *  create race: 4 processes create the same new file at the same moment and
 *    each puts its own key: one valid file holding all 4 keys.
 *  interrupt: a process waiting for the lock held by another is released
 *    with KVS_EINTR when its interrupted() callback says so.
 *
 *   multiproc [-n OPS_PER_PROCESS] [-s SEED]
 */
#include "kvs.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <xxhash.h>

#define NKEYS   4000        /* keys of the disjoint / churn sets */
#define NCTR    64          /* counter keys */
#define MAGIC   0x4b56534dU
#define HDRLEN  32
#define MAXV    (3u << 20)

static char dir[] = "/tmp/kvs_multiproc.XXXXXX";
static char path[600];
static uint64_t seed0;
static long ops_per_proc = 25000;

/* ---- per-process randomness ------------------------------------------------ */
static uint64_t rng;
static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static uint64_t rndn(uint64_t n) { return n ? rnd() % n : 0; }

/* ---- self-describing values ----------------------------------------------------- */
typedef struct vinfo { uint32_t key, proc, count, len; } vinfo;

static size_t key_of(const char *pfx, uint32_t k, char *buf)
{
    return (size_t)sprintf(buf, "%s-%06u", pfx, k);
}

static void make_value(unsigned char *v, uint32_t key, uint32_t proc, uint32_t count, uint32_t len)
{
    uint64_t s = ((uint64_t)key << 40) ^ ((uint64_t)proc << 32) ^ count, sum;
    uint32_t i, w[5] = { MAGIC, key, proc, count, len };
    memcpy(v, w, 20);
    memset(v + 20, 0, 12);
    for (i = HDRLEN; i < len; i++) {
        if ((i & 7) == 0)
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        v[i] = (unsigned char)(s >> ((i & 7) * 8));
    }
    sum = XXH3_64bits(v, len);
    memcpy(v + 24, &sum, 8);
}

/* 1 if v is an intact value for key; fills *vi. */
static int check_value(const void *data, size_t len, uint32_t key, vinfo *vi)
{
    const unsigned char *v = data;
    uint32_t w[5];
    uint64_t sum, stored;
    static unsigned char *tmp;
    if (!data && !vi) {         /* release the scratch buffer */
        free(tmp);
        tmp = NULL;
        return 0;
    }
    if (len < HDRLEN || len > MAXV || !data)
        return 0;
    memcpy(w, v, 20);
    if (w[0] != MAGIC || w[1] != key || w[4] != len)
        return 0;
    if (!tmp && !(tmp = malloc(MAXV)))
        return 0;
    memcpy(tmp, v, len);
    memset(tmp + 24, 0, 8);
    memcpy(&stored, v + 24, 8);
    sum = XXH3_64bits(tmp, len);
    if (sum != stored)
        return 0;
    vi->key = w[1]; vi->proc = w[2]; vi->count = w[3]; vi->len = w[4];
    return 1;
}

static uint32_t pick_len(void)
{
    uint64_t r = rndn(1000);
    if (r < 900) return HDRLEN + (uint32_t)rndn(200);
    if (r < 990) return HDRLEN + (uint32_t)rndn(12000);
    if (r < 999) return 20000 + (uint32_t)rndn(300000);
    return (1u << 20) + (uint32_t)rndn(2u << 20);
}

/* ---- shared counters (anonymous shared memory) -------------------------------- */
typedef struct shared {
    volatile int go;
    long ops[8], errors[8], torn[8], scanned[8], inval[8];
} shared;
static shared *sh;

static int me, nprocs;
static unsigned char *vbuf;

static void err(const char *fmt, ...)
{
    va_list ap;
    sh->errors[me]++;
    if (sh->errors[me] > 10)
        return;
    printf("# proc %d: ", me);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static kvs *popen_db(void)
{
    kvs_options o;
    kvs *db = NULL;
    int rc;
    kvs_options_init(&o);
    /* every section is journaled; its fsync is not what this test is about */
    o.flags = KVS_CREATE | KVS_NOSYNC;
    o.cache_pages = rndn(2) ? 8 : 128;
    rc = kvs_open(path, &o, &db);
    if (rc != KVS_OK) {
        err("open: %s: %s", kvs_strerror(rc), kvs_open_errmsg());
        return NULL;
    }
    return db;
}

/* Close, counting how often another process's write dropped our cache:
 * proof that the processes really interleaved. */
static int pclose_db(kvs *db)
{
    kvs_stats st;
    if (kvs_stats_get(db, &st) == KVS_OK)
        sh->inval[me] += (long)st.cache_invalidations;
    return kvs_close(db);
}

static void wait_go(void)
{
    while (!sh->go)
        usleep(100);
}

/* ---- disjoint ------------------------------------------------------------------- */
typedef struct own { uint32_t count, len; } own;   /* count 0 = absent */

static void disjoint_child(void)
{
    own *mine = calloc(NKEYS, sizeof *mine);
    uint32_t *seen = calloc(NKEYS, sizeof *seen), *ver = calloc(NKEYS, sizeof *ver);
    kvs *db;
    kvs_slice v, ck, cv;
    vinfo vi;
    char kb[64];
    long n;
    int rc;
    FILE *log;

    wait_go();
    db = popen_db();
    if (!db)
        _exit(1);
    for (n = 0; n < ops_per_proc; n++) {
        uint64_t r = rndn(1000);
        uint32_t k = (uint32_t)rndn(NKEYS / nprocs) * (uint32_t)nprocs + (uint32_t)me;
        uint32_t other = (uint32_t)rndn(NKEYS);
        sh->ops[me]++;
        if (r < 350) {
            uint32_t len = pick_len();
            make_value(vbuf, k, (uint32_t)me, ++ver[k], len);
            rc = kvs_put(db, kb, key_of("d", k, kb), vbuf, len, 0);
            if (rc != KVS_OK)
                err("put %u: %s: %s", k, kvs_strerror(rc), kvs_errmsg(db));
            else
                mine[k].count = ver[k], mine[k].len = len;
        } else if (r < 450) {
            rc = kvs_delete(db, kb, key_of("d", k, kb));
            if (rc != (mine[k].count ? KVS_OK : KVS_NOTFOUND))
                err("delete %u: %s (own count %u)", k, kvs_strerror(rc), mine[k].count);
            mine[k].count = 0;
        } else if (r < 700) {
            rc = kvs_get(db, kb, key_of("d", k, kb), &v);
            if (mine[k].count == 0) {
                if (rc != KVS_NOTFOUND)
                    err("get own absent %u: %s", k, kvs_strerror(rc));
            } else if (rc != KVS_OK)
                err("get own %u: %s: %s", k, kvs_strerror(rc), kvs_errmsg(db));
            else if (!check_value(v.data, v.len, k, &vi)) {
                sh->torn[me]++;
                err("get own %u: torn value (%zu bytes)", k, v.len);
            } else if (vi.count != mine[k].count || vi.proc != (uint32_t)me)
                err("get own %u: version %u by %u, wrote %u", k, vi.count, vi.proc, mine[k].count);
        } else if (r < 960) {
            rc = kvs_get(db, kb, key_of("d", other, kb), &v);
            if (rc == KVS_OK) {
                if (!check_value(v.data, v.len, other, &vi)) {
                    sh->torn[me]++;
                    err("get %u: torn value (%zu bytes)", other, v.len);
                } else if (vi.proc != other % (uint32_t)nprocs)
                    err("get %u: written by %u, owner is %u", other, vi.proc, other % nprocs);
                else if (vi.count < seen[other])
                    err("get %u: version went back from %u to %u", other, seen[other], vi.count);
                else
                    seen[other] = vi.count;
            } else if (rc != KVS_NOTFOUND)
                err("get %u: %s: %s", other, kvs_strerror(rc), kvs_errmsg(db));
        } else if (r < 975) {
            /* a batch of own writes in one section */
            int b, nb = 1 + (int)rndn(50);
            if ((rc = kvs_begin(db, KVS_WRITE)) != KVS_OK)
                err("begin: %s", kvs_strerror(rc));
            for (b = 0; b < nb && rc == KVS_OK; b++) {
                uint32_t kk = (uint32_t)rndn(NKEYS / nprocs) * (uint32_t)nprocs + (uint32_t)me;
                uint32_t len = HDRLEN + (uint32_t)rndn(300);
                make_value(vbuf, kk, (uint32_t)me, ++ver[kk], len);
                rc = kvs_put(db, kb, key_of("d", kk, kb), vbuf, len, 0);
                if (rc == KVS_OK)
                    mine[kk].count = ver[kk], mine[kk].len = len;
                else
                    err("batch put: %s", kvs_strerror(rc));
                sh->ops[me]++;
            }
            if ((rc = kvs_end(db)) != KVS_OK)
                err("end: %s: %s", kvs_strerror(rc), kvs_errmsg(db));
        } else if (r < 978) {
            /* cursor: all untorn, own keys exactly as written */
            kvs_cursor *c;
            uint32_t nown = 0, want = 0, kk;
            if ((rc = kvs_cursor_open(db, &c)) != KVS_OK) {
                err("cursor_open: %s", kvs_strerror(rc));
                continue;
            }
            while ((rc = kvs_cursor_next(c, &ck, &cv)) == KVS_OK) {
                unsigned kn;
                char tmp[32];
                sh->scanned[me]++;
                if (ck.len != 8 || (memcpy(tmp, ck.data, 8), tmp[8] = 0, sscanf(tmp, "d-%6u", &kn) != 1) ||
                    kn >= NKEYS) {
                    err("cursor: unknown key of %zu bytes", ck.len);
                    continue;
                }
                if (!check_value(cv.data, cv.len, kn, &vi)) {
                    sh->torn[me]++;
                    err("cursor: key %u: torn value", kn);
                } else if (kn % (uint32_t)nprocs == (uint32_t)me) {
                    nown++;
                    if (vi.count != mine[kn].count)
                        err("cursor: own key %u version %u, wrote %u", kn, vi.count, mine[kn].count);
                }
            }
            if (rc != KVS_NOTFOUND)
                err("cursor_next: %s: %s", kvs_strerror(rc), kvs_errmsg(db));
            kvs_cursor_close(c);
            for (kk = (uint32_t)me; kk < NKEYS; kk += (uint32_t)nprocs)
                if (mine[kk].count)
                    want++;
            if (rc == KVS_NOTFOUND && nown != want)
                err("cursor: saw %u own keys, own %u", nown, want);
        } else if (r < 983) {
            if ((rc = pclose_db(db)) != KVS_OK)
                err("close: %s", kvs_strerror(rc));
            if (!(db = popen_db()))
                _exit(1);
        }
    }
    if ((rc = pclose_db(db)) != KVS_OK)
        err("close: %s", kvs_strerror(rc));
    snprintf(kb, sizeof kb, "%s/log.%d", dir, me);
    log = fopen(kb, "wb");
    if (!log || fwrite(mine, sizeof *mine, NKEYS, log) != NKEYS || fclose(log) != 0)
        err("cannot write the log");
    free(mine); free(seen); free(ver); free(vbuf); check_value(NULL, 0, 0, NULL);
    _exit(0);
}

/* ---- overlapping ------------------------------------------------------------------ */
static void overlap_child(void)
{
    uint32_t *incs = calloc(NCTR, sizeof *incs);
    kvs *db;
    kvs_slice v, ck, cv;
    vinfo vi;
    char kb[64];
    long n;
    int rc;
    FILE *log;

    wait_go();
    db = popen_db();
    if (!db)
        _exit(1);
    for (n = 0; n < ops_per_proc; n++) {
        uint64_t r = rndn(1000);
        uint32_t k = (uint32_t)rndn(NKEYS);
        sh->ops[me]++;
        if (r < 300) {
            /* read-modify-write a counter under the exclusive lock */
            uint32_t c = (uint32_t)rndn(NCTR), cnt = 0, len;
            size_t kl = key_of("c", c, kb);
            if ((rc = kvs_begin(db, KVS_WRITE)) != KVS_OK) {
                err("begin: %s", kvs_strerror(rc));
                continue;
            }
            rc = kvs_get(db, kb, kl, &v);
            if (rc == KVS_OK) {
                if (!check_value(v.data, v.len, c, &vi)) {
                    sh->torn[me]++;
                    err("counter %u: torn value", c);
                } else
                    cnt = vi.count;
            } else if (rc != KVS_NOTFOUND)
                err("counter get: %s", kvs_strerror(rc));
            len = HDRLEN + (uint32_t)rndn(rndn(20) == 0 ? 9000 : 100);
            make_value(vbuf, c, (uint32_t)me, cnt + 1, len);
            if ((rc = kvs_put(db, kb, kl, vbuf, len, 0)) != KVS_OK)
                err("counter put: %s", kvs_strerror(rc));
            if ((rc = kvs_end(db)) != KVS_OK)
                err("end: %s: %s", kvs_strerror(rc), kvs_errmsg(db));
            else
                incs[c]++;
        } else if (r < 500) {
            uint32_t len = pick_len();
            make_value(vbuf, k, (uint32_t)me, (uint32_t)n, len);
            rc = kvs_put(db, kb, key_of("s", k, kb), vbuf, len, rndn(4) == 0 ? KVS_NOOVERWRITE : 0);
            if (rc != KVS_OK && rc != KVS_EXISTS)
                err("put: %s: %s", kvs_strerror(rc), kvs_errmsg(db));
        } else if (r < 600) {
            rc = kvs_delete(db, kb, key_of("s", k, kb));
            if (rc != KVS_OK && rc != KVS_NOTFOUND)
                err("delete: %s", kvs_strerror(rc));
        } else if (r < 990) {
            int ctr = rndn(3) == 0;
            uint32_t kk = ctr ? (uint32_t)rndn(NCTR) : k;
            rc = kvs_get(db, kb, key_of(ctr ? "c" : "s", kk, kb), &v);
            if (rc == KVS_OK) {
                if (!check_value(v.data, v.len, kk, &vi)) {
                    sh->torn[me]++;
                    err("get %s %u: torn value (%zu bytes)", ctr ? "counter" : "key", kk, v.len);
                }
            } else if (rc != KVS_NOTFOUND)
                err("get: %s: %s", kvs_strerror(rc), kvs_errmsg(db));
        } else if (r < 993) {
            kvs_cursor *c;
            if ((rc = kvs_cursor_open(db, &c)) != KVS_OK) {
                err("cursor_open: %s", kvs_strerror(rc));
                continue;
            }
            while ((rc = kvs_cursor_next(c, &ck, &cv)) == KVS_OK) {
                unsigned kn;
                char tmp[32];
                sh->scanned[me]++;
                memcpy(tmp, ck.data, ck.len < 31 ? ck.len : 31);
                tmp[ck.len < 31 ? ck.len : 31] = 0;
                if (ck.len != 8 || sscanf(tmp + 2, "%6u", &kn) != 1 ||
                    !check_value(cv.data, cv.len, kn, &vi)) {
                    sh->torn[me]++;
                    err("cursor: bad record (key %zu bytes \"%s\", value %zu bytes)", ck.len, tmp, cv.len);
                }
            }
            if (rc != KVS_NOTFOUND)
                err("cursor_next: %s: %s", kvs_strerror(rc), kvs_errmsg(db));
            kvs_cursor_close(c);
        } else {
            if ((rc = pclose_db(db)) != KVS_OK)
                err("close: %s", kvs_strerror(rc));
            if (!(db = popen_db()))
                _exit(1);
        }
    }
    if ((rc = pclose_db(db)) != KVS_OK)
        err("close: %s", kvs_strerror(rc));
    snprintf(kb, sizeof kb, "%s/log.%d", dir, me);
    log = fopen(kb, "wb");
    if (!log || fwrite(incs, sizeof *incs, NCTR, log) != NCTR || fclose(log) != 0)
        err("cannot write the log");
    free(incs); free(vbuf); check_value(NULL, 0, 0, NULL);
    _exit(0);
}

/* ---- the parent's side ------------------------------------------------------------ */
static int run_procs(int np, void (*child)(void), int *crashed)
{
    pid_t pids[8];
    int i, status, bad = 0;
    sh->go = 0;
    nprocs = np;
    for (i = 0; i < np; i++) {
        sh->ops[i] = sh->errors[i] = sh->torn[i] = sh->scanned[i] = sh->inval[i] = 0;
        fflush(stdout);
        pids[i] = fork();
        if (pids[i] == 0) {
            me = i;
            rng = seed0 ^ ((uint64_t)(i + 1) * 0x1234567ULL) ^ (uint64_t)np << 50;
            child();
        }
    }
    sh->go = 1;
    *crashed = 0;
    for (i = 0; i < np; i++) {
        waitpid(pids[i], &status, 0);
        if (WIFSIGNALED(status)) {
            printf("# proc %d died of signal %d\n", i, WTERMSIG(status));
            (*crashed)++;
        } else if (WEXITSTATUS(status) != 0)
            bad++;
    }
    return bad;
}

static long total_ops;

static void disjoint(int np)
{
    own *all = calloc(NKEYS, sizeof *all), *mine = calloc(NKEYS, sizeof *mine);
    kvs *db;
    kvs_options o;
    kvs_slice v;
    vinfo vi;
    char kb[600];
    int i, crashed, bad, mism = 0, rc;
    long ops = 0, errors = 0, torn = 0, scanned = 0, inval = 0;
    uint32_t k, present = 0;
    kvs_stats st;
    time_t t0 = time(NULL);

    unlink(path);
    bad = run_procs(np, disjoint_child, &crashed);
    for (i = 0; i < np; i++) {
        FILE *f;
        ops += sh->ops[i]; errors += sh->errors[i]; torn += sh->torn[i]; scanned += sh->scanned[i]; inval += sh->inval[i];
        snprintf(kb, sizeof kb, "%s/log.%d", dir, i);
        f = fopen(kb, "rb");
        if (!f || fread(mine, sizeof *mine, NKEYS, f) != NKEYS) {
            bad++;
            if (f) fclose(f);
            continue;
        }
        fclose(f);
        unlink(kb);
        for (k = (uint32_t)i; k < NKEYS; k += (uint32_t)np)
            all[k] = mine[k];
    }
    total_ops += ops;
    tap_ok(inval > 0, "disjoint, %d processes: they interleaved (%ld cache drops after another's write)", np, inval);
    tap_ok(crashed == 0 && bad == 0 && errors == 0 && torn == 0,
           "disjoint keys, %d processes: %ld operations + %ld records scanned, %ld errors, %ld torn reads, %d crashes (%lds)",
           np, ops, scanned, errors, torn, crashed, (long)(time(NULL) - t0));
    kvs_options_init(&o);
    if ((rc = kvs_open(path, &o, &db)) != KVS_OK) {
        tap_ok(0, "disjoint %d: reopen: %s", np, kvs_strerror(rc));
        return;
    }
    rc = kvs_check(db);
    tap_ok(rc == KVS_OK, "disjoint, %d processes: kvs_check clean (%s)", np,
           rc ? kvs_errmsg(db) : "ok");
    for (k = 0; k < NKEYS; k++) {
        rc = kvs_get(db, kb, key_of("d", k, kb), &v);
        if (all[k].count == 0) {
            if (rc != KVS_NOTFOUND && mism++ < 5)
                printf("# final: key %u present, the log says deleted\n", k);
        } else {
            present++;
            if (rc != KVS_OK || !check_value(v.data, v.len, k, &vi) || vi.count != all[k].count ||
                vi.len != all[k].len) {
                if (mism++ < 5)
                    printf("# final: key %u: %s, expected version %u\n", k, kvs_strerror(rc), all[k].count);
            }
        }
    }
    if (kvs_stats_get(db, &st) != KVS_OK || st.records != present) {
        mism++;
        printf("# final: stats.records %llu, logs say %u\n", (unsigned long long)st.records, present);
    }
    kvs_close(db);
    tap_ok(mism == 0, "disjoint, %d processes: the file agrees with the logs (%u records, %d mismatches)",
           np, present, mism);
    free(all);
    free(mine);
}

static void overlapping(int np)
{
    uint32_t sum[NCTR] = {0}, incs[NCTR];
    kvs *db;
    kvs_options o;
    kvs_slice v, ck, cv;
    vinfo vi;
    char kb[600];
    int i, crashed, bad, mism = 0, rc;
    long ops = 0, errors = 0, torn = 0, nincs = 0, nrec = 0, scanned = 0, inval = 0;
    uint32_t c;
    kvs_cursor *cur;
    time_t t0 = time(NULL);

    unlink(path);
    bad = run_procs(np, overlap_child, &crashed);
    for (i = 0; i < np; i++) {
        FILE *f;
        ops += sh->ops[i]; errors += sh->errors[i]; torn += sh->torn[i]; scanned += sh->scanned[i]; inval += sh->inval[i];
        snprintf(kb, sizeof kb, "%s/log.%d", dir, i);
        f = fopen(kb, "rb");
        if (!f || fread(incs, sizeof *incs, NCTR, f) != NCTR) {
            bad++;
            if (f) fclose(f);
            continue;
        }
        fclose(f);
        unlink(kb);
        for (c = 0; c < NCTR; c++)
            sum[c] += incs[c], nincs += incs[c];
    }
    total_ops += ops;
    tap_ok(inval > 0, "overlapping, %d processes: they interleaved (%ld cache drops after another's write)", np, inval);
    tap_ok(crashed == 0 && bad == 0 && errors == 0 && torn == 0,
           "overlapping keys, %d processes: %ld operations + %ld records scanned, %ld errors, %ld torn reads, %d crashes (%lds)",
           np, ops, scanned, errors, torn, crashed, (long)(time(NULL) - t0));
    kvs_options_init(&o);
    if ((rc = kvs_open(path, &o, &db)) != KVS_OK) {
        tap_ok(0, "overlapping %d: reopen: %s", np, kvs_strerror(rc));
        return;
    }
    rc = kvs_check(db);
    tap_ok(rc == KVS_OK, "overlapping, %d processes: kvs_check clean (%s)", np,
           rc ? kvs_errmsg(db) : "ok");
    for (c = 0; c < NCTR; c++) {
        uint32_t got = 0;
        rc = kvs_get(db, kb, key_of("c", c, kb), &v);
        if (rc == KVS_OK && check_value(v.data, v.len, c, &vi))
            got = vi.count;
        else if (rc != KVS_NOTFOUND)
            got = UINT32_MAX;
        if (got != sum[c] && mism++ < 5)
            printf("# counter %u = %u, the processes incremented it %u times\n", c, got, sum[c]);
    }
    if (kvs_cursor_open(db, &cur) == KVS_OK) {
        while ((rc = kvs_cursor_next(cur, &ck, &cv)) == KVS_OK) {
            unsigned kn;
            char tmp[32];
            nrec++;
            memcpy(tmp, ck.data, ck.len < 31 ? ck.len : 31);
            tmp[ck.len < 31 ? ck.len : 31] = 0;
            if (ck.len != 8 || sscanf(tmp + 2, "%6u", &kn) != 1 || !check_value(cv.data, cv.len, kn, &vi)) {
                if (mism++ < 5)
                    printf("# final scan: bad record \"%s\"\n", tmp);
            }
        }
        if (rc != KVS_NOTFOUND)
            mism++;
        kvs_cursor_close(cur);
    }
    kvs_close(db);
    tap_ok(mism == 0, "overlapping, %d processes: %ld increments, no lost update; %ld records all intact (%d mismatches)",
           np, nincs, nrec, mism);
}

/* Several processes create the same new file at the same moment. */
static void create_race(int rounds)
{
    int r, i, bad = 0;
    for (r = 0; r < rounds; r++) {
        pid_t pids[4];
        int status;
        kvs *db;
        kvs_options o;
        kvs_slice v;
        char kb[32];
        snprintf(path, sizeof path, "%s/race%d.kvs", dir, r);
        sh->go = 0;
        for (i = 0; i < 4; i++) {
            fflush(stdout);
            pids[i] = fork();
            if (pids[i] == 0) {
                kvs *d = NULL;
                int rc;
                me = i;
                wait_go();
                kvs_options_init(&o);
                o.flags = KVS_CREATE;
                rc = kvs_open(path, &o, &d);
                if (rc != KVS_OK) {
                    printf("# race %d proc %d: open: %s: %s\n", r, i, kvs_strerror(rc), kvs_open_errmsg());
                    _exit(1);
                }
                snprintf(kb, sizeof kb, "racer-%d", i);
                rc = kvs_put(d, kb, strlen(kb), kb, strlen(kb), 0);
                if (rc != KVS_OK)
                    printf("# race %d proc %d: put: %s\n", r, i, kvs_strerror(rc));
                if (kvs_close(d) != KVS_OK || rc != KVS_OK)
                    _exit(1);
                _exit(0);
            }
        }
        usleep(2000);
        sh->go = 1;
        for (i = 0; i < 4; i++) {
            waitpid(pids[i], &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                bad++;
        }
        kvs_options_init(&o);
        if (kvs_open(path, &o, &db) != KVS_OK) {
            bad++;
            continue;
        }
        if (kvs_check(db) != KVS_OK)
            bad++;
        for (i = 0; i < 4; i++) {
            snprintf(kb, sizeof kb, "racer-%d", i);
            if (kvs_get(db, kb, strlen(kb), &v) != KVS_OK) {
                printf("# race %d: key of proc %d lost\n", r, i);
                bad++;
            }
        }
        kvs_close(db);
        unlink(path);
    }
    {   /* nothing but our files in the directory: no temp files left */
        char cmd[700];
        /* the file's journal ("<path>-journal") is not a stray */
        snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s | grep -v -- '-journal$')\"", dir);
        tap_ok(system(cmd) == 0, "create race: no stray files left in the directory");
    }
    tap_ok(bad == 0, "create race: %d rounds of 4 processes creating one new file: one valid file with every key (%d problems)",
           rounds, bad);
    snprintf(path, sizeof path, "%s/shared.kvs", dir);
}

/* A waiter on the lock is released by its interrupted() callback. */
static int calls;
static int stop_after_some(void *arg)
{
    (void)arg;
    return ++calls > 20;
}

static void interrupt_wait(void)
{
    kvs *a = NULL, *b = NULL;
    kvs_options o;
    kvs_slice v;
    int rc, rc2 = -1;
    pid_t pid;
    int pfd[2], status;
    unlink(path);
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    if (kvs_open(path, &o, &a) != KVS_OK || kvs_put(a, "k", 1, "v", 1, 0) != KVS_OK ||
        pipe(pfd) != 0) {
        tap_ok(0, "interrupt: setup");
        return;
    }
    rc = kvs_begin(a, KVS_WRITE);            /* hold the exclusive lock */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        kvs_options_init(&o);
        o.interrupted = stop_after_some;
        alarm(20);
        /* the wait may be in open (it reads the header) or in the get */
        rc2 = kvs_open(path, &o, &b);
        if (rc2 == KVS_OK) {
            rc2 = kvs_get(b, "k", 1, &v);
            kvs_close(b);
        }
        if (write(pfd[1], &rc2, sizeof rc2) != sizeof rc2)
            _exit(1);
        _exit(0);
    }
    close(pfd[1]);
    if (read(pfd[0], &rc2, sizeof rc2) != sizeof rc2)
        rc2 = -3;
    waitpid(pid, &status, 0);
    kvs_end(a);
    kvs_close(a);
    tap_ok(rc == KVS_OK && (rc2 == KVS_EINTR),
           "a reader waiting on a writer's lock is interrupted with KVS_EINTR (got %d: %s)", rc2,
           rc2 != -3 ? kvs_strerror(rc2) : "no result");
}

int main(int argc, char **argv)
{
    int i;
    seed0 = (uint64_t)time(NULL);
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            ops_per_proc = atol(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            seed0 = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [-n OPS_PER_PROCESS] [-s SEED]\n", argv[0]);
            return 2;
        }
    }
    printf("# multiproc: seed %llu, %ld operations per process\n", (unsigned long long)seed0, ops_per_proc);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    vbuf = malloc(MAXV);
    if (sh == MAP_FAILED || !vbuf || !mkdtemp(dir)) {
        perror("setup");
        return 2;
    }
    create_race(40);
    snprintf(path, sizeof path, "%s/shared.kvs", dir);
    disjoint(2);
    disjoint(4);
    overlapping(2);
    overlapping(4);
    interrupt_wait();
    tap_diag("multiproc: %ld operations in total", total_ops);
    unlink(path);
    rmdir(dir);
    free(vbuf);
    return tap_done();
}
