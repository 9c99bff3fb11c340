/*
 * model.c - randomized model test of the kvs engine.
 *
 * A long random mix of insert (KVS_NOOVERWRITE), replace, delete, get
 * (present and absent keys), full cursor scans, cursor scans interleaved with
 * writes, explicit read/write sections, close/reopen (also read-only),
 * truncate, and statement stamps (an "UPDATE t SET k = k + 1" emulation with
 * kvs_set_stamp + kvs_cursor_skip_stamp), checked after every step against an
 * in-memory reference.  Keys are 0..KVS_MAX_KEY bytes, values from empty to
 * several MiB (mostly small, some around the page size and around the
 * inline/external threshold, which is probed at start).  Phases use several
 * cache sizes (8 frames up) and fill factors; kvs_check() must be clean after
 * every phase and at every reopen.
 *
 * The reference stores no value bytes: a value is (seed, length) and its
 * bytes are regenerated from the seed, so multi-MiB values cost nothing.
 *
 *   model [-n OPS] [-s SEED] [--long]      (--long = 50M operations)
 *
 * Deterministic from the seed (printed).  Prints the operation count and the
 * mismatch count; exits non-zero on any mismatch.
 */
#include "kvs.h"
#include "tap.h"

#include <stdint.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#define MAXKEYS     200000u
#define MAXVAL      (6u << 20)     /* largest value the model writes */

/* ---- deterministic randomness ------------------------------------------- */
static uint64_t rng;
static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static uint64_t rnd(void) { rng += 0x9e3779b97f4a7c15ULL; return mix64(rng); }
static uint64_t rndn(uint64_t n) { return n ? rnd() % n : 0; }

/* ---- keys: derived from an id, invertible --------------------------------- */
/* id 0 is the empty key; 1..48 are 1..3 byte keys; larger ids are 4..1024
 * bytes whose first 4 bytes are the id (so unique), the rest filler. */
static size_t key_of(uint32_t id, unsigned char *k)
{
    uint64_t h, s;
    size_t len, i;
    if (id == 0)
        return 0;
    if (id <= 16) { k[0] = (unsigned char)(id * 7); return 1; }
    if (id <= 32) { k[0] = (unsigned char)id; k[1] = 0x5a; return 2; }
    if (id <= 48) { k[0] = (unsigned char)id; k[1] = 0xa5; k[2] = 0x3c; return 3; }
    h = mix64(id ^ 0x4b56534b4559ULL);
    switch (h % 100 < 70 ? 0 : h % 100 < 85 ? 1 : h % 100 < 95 ? 2 : 3) {
    case 0: len = 4 + (h >> 8) % 21; break;
    case 1: len = 25 + (h >> 8) % 176; break;
    case 2: len = 201 + (h >> 8) % 823; break;
    default: len = KVS_MAX_KEY; break;
    }
    k[0] = (unsigned char)id; k[1] = (unsigned char)(id >> 8);
    k[2] = (unsigned char)(id >> 16); k[3] = (unsigned char)(id >> 24);
    s = h;
    for (i = 4; i < len; i++) {
        if ((i & 7) == 4)
            s = mix64(s);
        k[i] = (unsigned char)(s >> ((i & 7) * 8));
    }
    return len;
}

static long id_of_key(const void *kp, size_t len)
{
    unsigned char buf[KVS_MAX_KEY];
    const unsigned char *k = kp;
    uint32_t id;
    if (len == 0)
        return 0;
    if (len <= 3) {
        for (id = 1; id <= 48; id++)
            if (key_of(id, buf) == len && memcmp(buf, k, len) == 0)
                return id;
        return -1;
    }
    if (len > KVS_MAX_KEY)
        return -1;
    id = (uint32_t)k[0] | (uint32_t)k[1] << 8 | (uint32_t)k[2] << 16 | (uint32_t)k[3] << 24;
    if (id < 49 || id >= MAXKEYS)
        return -1;
    if (key_of(id, buf) != len || memcmp(buf, k, len) != 0)
        return -1;
    return id;
}

/* ---- values: (seed, length) -> bytes ------------------------------------ */
static void gen_value(uint64_t seed, size_t len, unsigned char *out)
{
    uint64_t s = mix64(seed ^ len), w;
    size_t i = 0;
    while (i + 8 <= len) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        memcpy(out + i, &s, 8);
        i += 8;
    }
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    w = s;
    for (; i < len; i++, w >>= 8)
        out[i] = (unsigned char)w;
}

/* ---- the reference --------------------------------------------------------- */
typedef struct ref {
    uint8_t  present;
    uint32_t vlen;
    uint64_t vseed;
    uint64_t stamp;
} ref;

static ref *R;                      /* [MAXKEYS] */
static uint32_t nkeys;              /* key pool size of the phase */
static uint64_t nrecords;           /* present in R */
static uint64_t cur_stamp;          /* stamp in force on the handle */
static uint64_t last_stamp;         /* largest kvs_new_stamp seen for the file */
static uint32_t inline_threshold;   /* smallest external value length, probed */

static unsigned char *wbuf, *ebuf;  /* value to write, value expected */
static unsigned char kbuf[KVS_MAX_KEY + 1];

static uint64_t ops, scan_steps, mismatches, reopens, checks, scans, stmts, truncates;
static uint64_t big_values;

static void mismatch(const char *fmt, ...)
{
    va_list ap;
    mismatches++;
    if (mismatches <= 30) {
        printf("# MISMATCH (op %llu): ", (unsigned long long)ops);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
    }
}

static uint32_t pick_vlen(void)
{
    uint64_t r = rndn(100000);
    if (r < 70000) return (uint32_t)rndn(64);
    if (r < 85000) return (uint32_t)rndn(400);
    if (r < 93000) return (uint32_t)(400 + rndn(3800));
    if (r < 96000 && inline_threshold)
        return (uint32_t)(inline_threshold - 16 + rndn(33));
    if (r < 98800)
        return (uint32_t)((1 + rndn(4)) * 4096 + rndn(401) - 200);
    if (r < 99970) return (uint32_t)(8192 + rndn(256 << 10));
    big_values++;
    return (uint32_t)((256 << 10) + rndn(MAXVAL - (256 << 10)));
}

/* Does the slice equal value (seed, len)? */
static int value_is(kvs_slice v, uint64_t seed, uint32_t len)
{
    if (v.len != len)
        return 0;
    if (len == 0)
        return 1;
    if (v.data == NULL)
        return 0;
    gen_value(seed, len, ebuf);
    return memcmp(v.data, ebuf, len) == 0;
}

/* ---- opening ------------------------------------------------------------------ */
static char path[512];
static uint32_t phase_ff;

static kvs *open_db(uint32_t cache, int flags)
{
    kvs_options o;
    kvs *db = NULL;
    int rc;
    kvs_options_init(&o);
    /* every section is journaled; its fsync is not what this test is
     * about (a read-only handle has no journal) */
    o.flags = flags | (flags & KVS_RDONLY ? 0 : KVS_NOSYNC);
    o.cache_pages = cache;
    o.fillfactor = phase_ff;
    rc = kvs_open(path, &o, &db);
    if (rc != KVS_OK) {
        mismatch("kvs_open(%s, cache %u, ff %u) = %s: %s", path, cache, phase_ff,
                 kvs_strerror(rc), kvs_open_errmsg());
        return NULL;
    }
    return db;
}

/* ---- single operations, each checked ---------------------------------------- */
static void op_get(kvs *db, uint32_t id)
{
    kvs_slice v;
    size_t kl = key_of(id, kbuf);
    int rc = kvs_get(db, kbuf, kl, &v);
    ops++;
    if (R[id].present) {
        if (rc != KVS_OK)
            mismatch("get id %u (klen %zu): %s, expected a value of %u bytes: %s", id, kl,
                     kvs_strerror(rc), R[id].vlen, kvs_errmsg(db));
        else if (!value_is(v, R[id].vseed, R[id].vlen))
            mismatch("get id %u (klen %zu): wrong value (len %zu, expected %u)", id, kl,
                     v.len, R[id].vlen);
    } else if (rc != KVS_NOTFOUND)
        mismatch("get absent id %u (klen %zu): %s, expected NOTFOUND: %s", id, kl,
                 kvs_strerror(rc), kvs_errmsg(db));
}

/* Returns 1 if the put changed the reference. */
static int op_put(kvs *db, uint32_t id, int noover)
{
    size_t kl = key_of(id, kbuf);
    uint32_t vl = pick_vlen();
    uint64_t seed = rnd();
    int rc;
    gen_value(seed, vl, wbuf);
    rc = kvs_put(db, kbuf, kl, wbuf, vl, noover ? KVS_NOOVERWRITE : 0);
    ops++;
    if (noover && R[id].present) {
        if (rc != KVS_EXISTS)
            mismatch("insert existing id %u: %s, expected EXISTS: %s", id, kvs_strerror(rc),
                     kvs_errmsg(db));
        return 0;
    }
    if (rc != KVS_OK) {
        mismatch("put id %u (klen %zu, vlen %u, noover %d): %s: %s", id, kl, vl, noover,
                 kvs_strerror(rc), kvs_errmsg(db));
        return 0;
    }
    if (!R[id].present)
        nrecords++;
    R[id].present = 1;
    R[id].vlen = vl;
    R[id].vseed = seed;
    R[id].stamp = cur_stamp;
    return 1;
}

static int op_delete(kvs *db, uint32_t id)
{
    size_t kl = key_of(id, kbuf);
    int rc = kvs_delete(db, kbuf, kl);
    ops++;
    if (R[id].present) {
        if (rc != KVS_OK) {
            mismatch("delete id %u: %s: %s", id, kvs_strerror(rc), kvs_errmsg(db));
            return 0;
        }
        R[id].present = 0;
        nrecords--;
        return 1;
    }
    if (rc != KVS_NOTFOUND)
        mismatch("delete absent id %u: %s, expected NOTFOUND", id, kvs_strerror(rc));
    return 0;
}

/* Keys and values past the limits: a clear error, nothing read past them. */
static void op_toobig(kvs *db)
{
    static unsigned char big[KVS_MAX_KEY + 1];
    kvs_slice v;
    int rc;
    memset(big, 'k', sizeof big);
    rc = kvs_put(db, big, KVS_MAX_KEY + 1, "v", 1, 0);
    if (rc != KVS_ETOOBIG) mismatch("put key of %d bytes: %s, expected ETOOBIG", KVS_MAX_KEY + 1, kvs_strerror(rc));
    /* no such key can exist: a lookup may say so (NOTFOUND, what SQL wants
     * for WHERE key = <long string>) or refuse the key (ETOOBIG) */
    rc = kvs_get(db, big, KVS_MAX_KEY + 1, &v);
    if (rc != KVS_ETOOBIG && rc != KVS_NOTFOUND)
        mismatch("get key of %d bytes: %s, expected ETOOBIG or NOTFOUND", KVS_MAX_KEY + 1, kvs_strerror(rc));
    rc = kvs_delete(db, big, KVS_MAX_KEY + 1);
    if (rc != KVS_ETOOBIG && rc != KVS_NOTFOUND)
        mismatch("delete key of %d bytes: %s, expected ETOOBIG or NOTFOUND", KVS_MAX_KEY + 1, kvs_strerror(rc));
    /* the length is checked before the (1-byte) buffer is read */
    rc = kvs_put(db, "k", 1, big, (size_t)KVS_MAX_VALUE + 1, 0);
    if (rc != KVS_ETOOBIG) mismatch("put value of KVS_MAX_VALUE+1 bytes: %s, expected ETOOBIG", kvs_strerror(rc));
    ops += 4;
}

static uint64_t file_bytes(void)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void check_records(kvs *db, const char *when)
{
    kvs_stats st;
    int rc = kvs_stats_get(db, &st);
    if (rc != KVS_OK)
        mismatch("stats %s: %s", when, kvs_strerror(rc));
    else if (st.records != nrecords)
        mismatch("stats.records %s = %llu, reference has %llu", when,
                 (unsigned long long)st.records, (unsigned long long)nrecords);
}

static int run_check(kvs *db, const char *when)
{
    int rc = kvs_check(db);
    checks++;
    if (rc != KVS_OK) {
        mismatch("kvs_check %s: %s: %s (page %u)", when, kvs_strerror(rc), kvs_errmsg(db),
                 kvs_errpage(db));
        return 0;
    }
    return 1;
}

/* ---- scans ------------------------------------------------------------------- */
/* Versions a key held during the current scan (besides the one at its start). */
typedef struct vers { uint32_t id; uint32_t vlen; uint64_t vseed; uint64_t stamp; } vers;
static vers *scanlog;
static size_t scanlog_n, scanlog_cap;
static ref *snap;                   /* reference at scan start */
static uint8_t *seen, *gone;        /* per id: times seen; deleted/restamped during scan */

static void log_version(uint32_t id)
{
    if (scanlog_n == scanlog_cap) {
        scanlog_cap = scanlog_cap ? scanlog_cap * 2 : 1024;
        scanlog = realloc(scanlog, scanlog_cap * sizeof *scanlog);
        if (!scanlog) { perror("realloc"); exit(2); }
    }
    scanlog[scanlog_n].id = id;
    scanlog[scanlog_n].vlen = R[id].vlen;
    scanlog[scanlog_n].vseed = R[id].vseed;
    scanlog[scanlog_n].stamp = R[id].stamp;
    scanlog_n++;
}

/* One random write while a scan is open, logged for the scan's checks. */
static void scan_write(kvs *db, uint64_t skip)
{
    uint32_t id = (uint32_t)rndn(nkeys);
    uint64_t r = rndn(3);
    if (r == 0) {
        if (op_delete(db, id))
            gone[id] = 1;
    } else if (op_put(db, id, r == 1)) {
        log_version(id);
        if (skip && R[id].stamp == skip)
            gone[id] = 1;
    }
}

/*
 * Scan everything; with interleave, do random writes between steps.  Every
 * record present (and not skipped) for the whole scan must be seen exactly
 * once; no record is seen twice; a seen record's value is one the key held
 * during the scan and was not written with the skipped stamp.
 */
static void scan(kvs *db, int interleave, uint64_t skip, int in_section)
{
    kvs_cursor *c = NULL;
    kvs_slice k, v;
    uint32_t id;
    size_t i;
    uint64_t nseen = 0, expect = 0;
    int rc;

    scans++;
    memcpy(snap, R, nkeys * sizeof *R);
    memset(seen, 0, nkeys);
    memset(gone, 0, nkeys);
    scanlog_n = 0;
    if (in_section && (rc = kvs_begin(db, KVS_READ)) != KVS_OK) {
        mismatch("begin read for scan: %s", kvs_strerror(rc));
        return;
    }
    rc = kvs_cursor_open(db, &c);
    if (rc != KVS_OK) {
        mismatch("cursor_open: %s: %s", kvs_strerror(rc), kvs_errmsg(db));
        if (in_section) kvs_end(db);
        return;
    }
    if (skip)
        kvs_cursor_skip_stamp(c, skip);
    for (;;) {
        long lid;
        int ok;
        rc = kvs_cursor_next(c, &k, &v);
        scan_steps++;
        if (rc == KVS_NOTFOUND)
            break;
        if (rc != KVS_OK) {
            mismatch("cursor_next: %s: %s", kvs_strerror(rc), kvs_errmsg(db));
            break;
        }
        nseen++;
        lid = id_of_key(k.data, k.len);
        if (lid < 0 || (uint32_t)lid >= nkeys) {
            mismatch("cursor returned an unknown key of %zu bytes", k.len);
            continue;
        }
        id = (uint32_t)lid;
        if (++seen[id] == 2)
            mismatch("cursor returned id %u twice", id);
        /* acceptable values: current, at scan start, or logged during the scan */
        ok = 0;
        if (R[id].present && !(skip && R[id].stamp == skip) && value_is(v, R[id].vseed, R[id].vlen))
            ok = 1;
        else if (interleave) {
            if (snap[id].present && !(skip && snap[id].stamp == skip) &&
                value_is(v, snap[id].vseed, snap[id].vlen))
                ok = 1;
            for (i = 0; !ok && i < scanlog_n; i++)
                if (scanlog[i].id == id && !(skip && scanlog[i].stamp == skip) &&
                    value_is(v, scanlog[i].vseed, scanlog[i].vlen))
                    ok = 1;
        }
        if (!ok)
            mismatch("cursor: id %u: value of %zu bytes is no version it held (ref: present %d len %u stamp %llu, skip %llu)",
                     id, v.len, R[id].present, R[id].vlen, (unsigned long long)R[id].stamp,
                     (unsigned long long)skip);
        if (interleave && rndn(4) == 0) {
            int nw = 1 + (int)rndn(3);
            while (nw-- > 0)
                scan_write(db, skip);
        }
    }
    kvs_cursor_close(c);
    if (in_section && (rc = kvs_end(db)) != KVS_OK)
        mismatch("end read for scan: %s", kvs_strerror(rc));
    for (id = 0; id < nkeys; id++) {
        if (snap[id].present && !(skip && snap[id].stamp == skip) && !gone[id]) {
            expect++;
            if (seen[id] != 1 && !(interleave && !R[id].present))
                mismatch("cursor (interleave %d, skip %llu) saw id %u %u times, expected once",
                         interleave, (unsigned long long)skip, id, seen[id]);
        }
    }
    if (!interleave && nseen != expect)
        mismatch("cursor saw %llu records, expected %llu", (unsigned long long)nseen,
                 (unsigned long long)expect);
}

/*
 * "UPDATE t SET k = k + 1": in one statement, with a new stamp in force, the
 * scan rewrites records (new key, or new value) and must never return a
 * record written with the stamp; each original record is visited once.
 */
static void statement(kvs *db, int explicit_section)
{
    kvs_cursor *c = NULL;
    kvs_slice k, v;
    uint64_t s = 0;
    uint32_t id, nid;
    int rc, attempts;

    stmts++;
    if (explicit_section && (rc = kvs_begin(db, KVS_WRITE)) != KVS_OK) {
        mismatch("begin write for statement: %s", kvs_strerror(rc));
        return;
    }
    rc = kvs_new_stamp(db, &s);
    if (rc != KVS_OK) {
        mismatch("new_stamp: %s: %s", kvs_strerror(rc), kvs_errmsg(db));
        if (explicit_section) kvs_end(db);
        return;
    }
    if (s == 0 || s <= last_stamp)
        mismatch("new_stamp returned %llu after %llu", (unsigned long long)s,
                 (unsigned long long)last_stamp);
    last_stamp = s;
    kvs_set_stamp(db, s);
    cur_stamp = s;
    memcpy(snap, R, nkeys * sizeof *R);
    memset(seen, 0, nkeys);
    rc = kvs_cursor_open(db, &c);
    if (rc == KVS_OK) {
        kvs_cursor_skip_stamp(c, s);
        for (;;) {
            long lid;
            rc = kvs_cursor_next(c, &k, &v);
            scan_steps++;
            if (rc == KVS_NOTFOUND)
                break;
            if (rc != KVS_OK) {
                mismatch("statement cursor_next: %s: %s", kvs_strerror(rc), kvs_errmsg(db));
                break;
            }
            lid = id_of_key(k.data, k.len);
            if (lid < 0 || (uint32_t)lid >= nkeys) {
                mismatch("statement cursor returned an unknown key");
                continue;
            }
            id = (uint32_t)lid;
            if (++seen[id] == 2)
                mismatch("statement cursor returned id %u twice", id);
            if (!R[id].present || R[id].stamp == s)
                mismatch("statement cursor returned id %u written by this statement", id);
            else if (!value_is(v, R[id].vseed, R[id].vlen))
                mismatch("statement cursor: id %u wrong value", id);
            switch (rndn(4)) {
            case 0: case 1:     /* move the record to an absent key */
                for (attempts = 0; attempts < 8; attempts++) {
                    nid = (uint32_t)rndn(nkeys);
                    if (!R[nid].present)
                        break;
                }
                if (attempts < 8 && op_delete(db, id))
                    op_put(db, nid, 1);
                break;
            case 2:             /* new value, same key */
                op_put(db, id, 0);
                break;
            default:
                break;
            }
        }
        kvs_cursor_close(c);
    } else
        mismatch("statement cursor_open: %s", kvs_strerror(rc));
    kvs_set_stamp(db, 0);
    cur_stamp = 0;
    if (explicit_section && (rc = kvs_end(db)) != KVS_OK)
        mismatch("end write for statement: %s: %s", kvs_strerror(rc), kvs_errmsg(db));
    for (id = 0; id < nkeys; id++)
        if (snap[id].present && snap[id].stamp != s && seen[id] != 1)
            mismatch("statement saw original id %u %u times", id, seen[id]);
}

/* Probe the smallest value length kept outside the bucket page. */
static void probe_threshold(const char *dir)
{
    char p[600];
    kvs *db = NULL;
    kvs_options o;
    kvs_stats st;
    uint32_t lo = 1, hi = 3 * KVS_PAGE_SIZE, mid;
    snprintf(p, sizeof p, "%s/probe.kvs", dir);
    kvs_options_init(&o);
    o.flags = KVS_CREATE;
    if (kvs_open(p, &o, &db) != KVS_OK) {
        tap_diag("probe: open failed: %s", kvs_open_errmsg());
        return;
    }
    memset(wbuf, 'x', hi);
    if (kvs_put(db, "p", 1, wbuf, hi, 0) != KVS_OK || kvs_stats_get(db, &st) != KVS_OK ||
        st.value_pages == 0) {
        tap_diag("probe: a %u-byte value is not in value pages; threshold unknown", hi);
        kvs_close(db);
        unlink(p);
        return;
    }
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (kvs_put(db, "p", 1, wbuf, mid, 0) != KVS_OK || kvs_stats_get(db, &st) != KVS_OK)
            break;
        if (st.value_pages > 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    inline_threshold = lo;
    tap_diag("inline/external threshold: values of %u bytes and more go to value pages", lo);
    kvs_close(db);
    unlink(p);
}

/* ---- the descriptor blob ------------------------------------------------------- */
static unsigned char desc[KVS_MAX_DESCRIPTOR + 1];
static size_t desc_len;

static void set_descriptor(kvs *db)
{
    size_t i, n = rndn(4) == 0 ? KVS_MAX_DESCRIPTOR : rndn(300);
    int rc;
    unsigned char tmp[KVS_MAX_DESCRIPTOR + 1];
    for (i = 0; i < n; i++)
        tmp[i] = (unsigned char)rnd();
    if ((rc = kvs_begin(db, KVS_WRITE)) != KVS_OK) {
        mismatch("begin for set_descriptor: %s", kvs_strerror(rc));
        return;
    }
    rc = kvs_set_descriptor(db, tmp, KVS_MAX_DESCRIPTOR + 1);
    if (rc != KVS_ETOOBIG)
        mismatch("set_descriptor of %d bytes: %s, expected ETOOBIG", KVS_MAX_DESCRIPTOR + 1, kvs_strerror(rc));
    rc = kvs_set_descriptor(db, tmp, n);
    if (rc != KVS_OK)
        mismatch("set_descriptor(%zu bytes): %s: %s", n, kvs_strerror(rc), kvs_errmsg(db));
    if ((rc = kvs_end(db)) != KVS_OK)
        mismatch("end after set_descriptor: %s", kvs_strerror(rc));
    else {
        memcpy(desc, tmp, n);
        desc_len = n;
    }
}

static void check_descriptor(kvs *db)
{
    kvs_slice d;
    int rc = kvs_descriptor(db, &d);
    if (rc != KVS_OK)
        mismatch("descriptor: %s", kvs_strerror(rc));
    else if (d.len != desc_len || (desc_len && memcmp(d.data, desc, desc_len) != 0))
        mismatch("descriptor: %zu bytes, expected %zu", d.len, desc_len);
}

/* ---- one phase ------------------------------------------------------------------ */
typedef struct phase { uint32_t cache, ff, keys; } phase;

static const uint32_t cache_choices[] = { 8, 9, 16, 64, 200, 0 };

static void run_phase(int pn, const phase *ph, uint64_t nops, const char *dir)
{
    kvs *db;
    uint64_t start_ops = ops, start_mm = mismatches, next_reopen;
    uint32_t cache = ph->cache;
    int section = -1, section_left = 0, rc, truncated = 0;
    uint64_t scan_th = 3000000 / (ph->keys + 1000) + 1, stmt_th = 6000000 / (ph->keys + 1000) + 1;
    kvs_stats st;
    time_t t0 = time(NULL);

    snprintf(path, sizeof path, "%s/model%d.kvs", dir, pn);
    unlink(path);
    phase_ff = ph->ff;
    nkeys = ph->keys;
    if (scan_th > 1400) scan_th = 1400;
    if (stmt_th > 1400) stmt_th = 1400;
    memset(R, 0, MAXKEYS * sizeof *R);
    nrecords = 0;
    cur_stamp = 0;
    last_stamp = 0;
    desc_len = 0;
    db = open_db(cache, KVS_CREATE);
    if (!db) {
        tap_ok(0, "phase %d: open", pn);
        return;
    }
    next_reopen = ops + 1000 + rndn(8000);

    while (ops - start_ops < nops && mismatches - start_mm < 200) {
        uint64_t r = rndn(1000000);
        uint32_t id = (uint32_t)rndn(nkeys);

        if (section >= 0 && section_left-- <= 0) {
            if ((rc = kvs_end(db)) != KVS_OK)
                mismatch("kvs_end: %s: %s", kvs_strerror(rc), kvs_errmsg(db));
            section = -1;
        }
        if (section == KVS_READ) {
            op_get(db, id);
            continue;
        }
        if (r < 200000)
            op_put(db, id, 1);
        else if (r < 400000)
            op_put(db, id, 0);
        else if (r < 550000)
            op_delete(db, id);
        else if (r < 990000)
            op_get(db, id);
        else if (section >= 0)
            op_get(db, id);     /* the rest are not for inside a section */
        else if (r < 993000) {
            section = KVS_WRITE;
            section_left = 1 + (int)rndn(200);
            if ((rc = kvs_begin(db, KVS_WRITE)) != KVS_OK) {
                mismatch("begin write: %s", kvs_strerror(rc));
                section = -1;
            }
        } else if (r < 996000) {
            section = KVS_READ;
            section_left = 1 + (int)rndn(100);
            if ((rc = kvs_begin(db, KVS_READ)) != KVS_OK) {
                mismatch("begin read: %s", kvs_strerror(rc));
                section = -1;
            }
        } else if (r < 997000)
            op_toobig(db);
        else if (r < 997000 + scan_th)
            scan(db, 1, rndn(3) == 0 ? last_stamp : 0, 0);
        else if (r >= 998500 && r < 998500 + stmt_th)
            statement(db, (int)rndn(2));
        else if (r >= 999997 || (ops - start_ops >= nops * 3 / 10 && !truncated)) {
            uint64_t before = file_bytes();
            rc = kvs_truncate(db);
            truncates++;
            truncated = 1;
            if (rc != KVS_OK)
                mismatch("truncate: %s: %s", kvs_strerror(rc), kvs_errmsg(db));
            else {
                memset(R, 0, nkeys * sizeof *R);
                nrecords = 0;
                if (before > 200 * KVS_PAGE_SIZE && file_bytes() >= before)
                    mismatch("truncate did not shrink the file (%llu -> %llu bytes)",
                             (unsigned long long)before, (unsigned long long)file_bytes());
                check_records(db, "after truncate");
            }
        }
        if ((ops & 15) == 0 && section < 0)
            check_records(db, "after op");

        if (ops >= next_reopen && section < 0) {
            /* close, check the file at rest, reopen with another cache size */
            if ((rc = kvs_close(db)) != KVS_OK)
                mismatch("close: %s", kvs_strerror(rc));
            reopens++;
            if (rndn(3) == 0) {
                /* read-only handle: reads work, writes refuse */
                db = open_db(cache_choices[rndn(6)], KVS_RDONLY);
                if (db) {
                    run_check(db, "read-only reopen");
                    op_get(db, (uint32_t)rndn(nkeys));
                    rc = kvs_put(db, "x", 1, "y", 1, 0);
                    if (rc != KVS_ERDONLY)
                        mismatch("put on read-only handle: %s, expected ERDONLY", kvs_strerror(rc));
                    rc = kvs_delete(db, "x", 1);
                    if (rc != KVS_ERDONLY)
                        mismatch("delete on read-only handle: %s, expected ERDONLY", kvs_strerror(rc));
                    if (rndn(2) == 0)
                        scan(db, 0, 0, (int)rndn(2));
                    kvs_close(db);
                }
            }
            cache = rndn(2) ? ph->cache : cache_choices[rndn(6)];
            db = open_db(cache, KVS_CREATE);
            if (!db)
                break;
            cur_stamp = 0;
            check_descriptor(db);
            if (rndn(3) == 0) {
                /* the split threshold can change on an open handle */
                uint32_t ff = 10 + (uint32_t)rndn(91);
                if ((rc = kvs_set_fillfactor(db, ff)) != KVS_OK)
                    mismatch("set_fillfactor(%u): %s", ff, kvs_strerror(rc));
                if ((rc = kvs_set_fillfactor(db, rndn(2) ? 9 : 101)) != KVS_EINVAL)
                    mismatch("set_fillfactor out of 10..100: %s, expected EINVAL", kvs_strerror(rc));
            }
            if (rndn(4) == 0)
                set_descriptor(db);
            run_check(db, "at reopen");
            check_records(db, "at reopen");
            if (rndn(4) == 0)
                scan(db, 0, rndn(3) == 0 ? last_stamp : 0, (int)rndn(2));
            next_reopen = ops + 1000 + rndn(8000);
        }
    }
    if (section >= 0 && db)
        kvs_end(db);
    if (db) {
        int clean = run_check(db, "at phase end");
        scan(db, 0, 0, 0);
        check_records(db, "at phase end");
        kvs_stats_get(db, &st);
        tap_diag("phase %d: cache %u ff %u keys %u: %llu ops, %llu records, %llu buckets, %llu pages (%llu free, %llu value, %llu overflow), %llu bytes, %lds",
                 pn, ph->cache, ph->ff, ph->keys, (unsigned long long)(ops - start_ops),
                 (unsigned long long)nrecords, (unsigned long long)st.buckets,
                 (unsigned long long)st.pages, (unsigned long long)st.free_pages,
                 (unsigned long long)st.value_pages, (unsigned long long)st.overflow_pages,
                 (unsigned long long)st.file_bytes, (long)(time(NULL) - t0));
        tap_ok(clean, "phase %d: kvs_check clean at the end", pn);
        if ((rc = kvs_close(db)) != KVS_OK)
            mismatch("close: %s", kvs_strerror(rc));
    }
    tap_ok(mismatches == start_mm, "phase %d (cache %u, fillfactor %u, %u keys): %llu ops, %llu mismatches",
           pn, ph->cache, ph->ff, ph->keys, (unsigned long long)(ops - start_ops),
           (unsigned long long)(mismatches - start_mm));
    unlink(path);
}

int main(int argc, char **argv)
{
    static const phase phases[] = {
        { 8, 75, 2000 },
        { 8, 90, 30000 },
        { 64, 50, 60000 },
        { 0, 100, 100000 },
        { 16, 10, 5000 },
        { 200, 75, 300 },
        { 9, 75, 150000 },
    };
    int nph = (int)(sizeof phases / sizeof phases[0]), i;
    uint64_t n = 1400000, seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    char dir[] = "/tmp/kvs_model.XXXXXX";
    time_t t0 = time(NULL);

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--long") == 0)
            n = 50000000;
        else {
            fprintf(stderr, "usage: %s [-n OPS] [-s SEED] [--long]\n", argv[0]);
            return 2;
        }
    }
    printf("# model: seed %llu, %llu operations (rerun: -s %llu -n %llu)\n",
           (unsigned long long)seed, (unsigned long long)n, (unsigned long long)seed,
           (unsigned long long)n);
    rng = seed;
    R = calloc(MAXKEYS, sizeof *R);
    snap = calloc(MAXKEYS, sizeof *snap);
    seen = calloc(MAXKEYS, 1);
    gone = calloc(MAXKEYS, 1);
    wbuf = malloc(MAXVAL + 16);
    ebuf = malloc(MAXVAL + 16);
    if (!R || !snap || !seen || !gone || !wbuf || !ebuf || !mkdtemp(dir)) {
        perror("setup");
        return 2;
    }
    probe_threshold(dir);
    for (i = 0; i < nph; i++)
        run_phase(i + 1, &phases[i], n / (uint64_t)nph, dir);
    rmdir(dir);
    printf("# model: %llu operations, %llu scan steps, %llu scans, %llu statements, %llu reopens, %llu checks, %llu truncates, %llu values >= 256 KiB, %llu mismatches, %lds\n",
           (unsigned long long)ops, (unsigned long long)scan_steps, (unsigned long long)scans,
           (unsigned long long)stmts, (unsigned long long)reopens, (unsigned long long)checks,
           (unsigned long long)truncates, (unsigned long long)big_values,
           (unsigned long long)mismatches, (long)(time(NULL) - t0));
    tap_ok(mismatches == 0, "model: %llu operations, %llu mismatches (seed %llu)",
           (unsigned long long)ops, (unsigned long long)mismatches, (unsigned long long)seed);
    free(R); free(snap); free(seen); free(gone); free(wbuf); free(ebuf); free(scanlog);
    return tap_done();
}
