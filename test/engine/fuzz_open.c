/*
 * fuzz_open.c - libFuzzer target over opening and reading a kvs file built
 * from the fuzzer's bytes.
 *
 * The bytes become the whole file, served by an in-memory kvs_os table (no
 * disk, so millions of executions are cheap).  The target opens it read-only
 * and runs what a host would: gets of fixed keys and of keys the cursor
 * returned, a full cursor scan, kvs_check, stats, page info and every slot of
 * every page; then opens it read-write and writes a little (put, replace,
 * delete, check; its commits go through a journal on disk in a temporary
 * directory, KVS_NOSYNC, started again once it holds 8 MiB); and salvages it (kvs_salvage_*) page by page.  Any crash, sanitizer report, leak or hang is a bug: a
 * damaged file must only ever produce error codes.
 *
 * Each input runs twice: as given (mutations mostly break page checksums,
 * which tests that every read verifies them), and with every whole page's
 * checksum recomputed (xxh3 of bytes 8..4095 seeded with the page number,
 * the documented format), so mutations reach the structure checks behind
 * the checksums: slot arrays, links, counts, chains.
 *
 * Build: make -C test/engine fuzz  ->  build/fuzz/fuzz_open
 * Seeds: test/engine/fuzz/mkseeds.c writes small valid files made by the engine.
 */
#include "kvs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define FUZZ_PATH "/fuzz/in-memory.kvs"
#define FUZZ_FD   777       /* the database file */
#define SPILL_FD  778       /* any other file the engine creates (its spill file) */

/* Two in-memory files: [0] the database, [1] a scratch file. */
typedef struct mfile { unsigned char *b; size_t len, cap; } mfile;
static mfile mf[2];
#define mem     (mf[0].b)
#define mem_len (mf[0].len)

static mfile *file_of(int fd)
{
    return fd == FUZZ_FD ? &mf[0] : fd == SPILL_FD ? &mf[1] : NULL;
}

static int m_open(const char *p, int flags, mode_t mode)
{
    (void)mode;
    if (strcmp(p, FUZZ_PATH) == 0 && !(flags & O_EXCL))
        return FUZZ_FD;
    if ((flags & O_CREAT) && strncmp(p, FUZZ_PATH, strlen(FUZZ_PATH)) == 0) {
        mf[1].len = 0;      /* a new scratch file (the engine's spill file) */
        return SPILL_FD;
    }
    errno = (flags & O_EXCL) ? EEXIST : ENOENT;
    return -1;
}
static int m_close(int fd) { (void)fd; return 0; }
static ssize_t m_pread(int fd, void *b, size_t n, off_t off)
{
    mfile *f = file_of(fd);
    if (!f || off < 0) { errno = EBADF; return -1; }
    if ((size_t)off >= f->len)
        return 0;
    if (n > f->len - (size_t)off)
        n = f->len - (size_t)off;
    memcpy(b, f->b + off, n);
    return (ssize_t)n;
}
static int grow_file(mfile *f, size_t len)
{
    if (len > ((size_t)32 << 20)) { errno = ENOSPC; return -1; }    /* keep the fuzzer fast and its memory bounded */
    if (len > f->cap) {
        size_t cap = f->cap ? f->cap : 65536;
        unsigned char *m;
        while (cap < len)
            cap *= 2;
        m = realloc(f->b, cap);
        if (!m) { errno = ENOSPC; return -1; }
        f->b = m;
        f->cap = cap;
    }
    if (len > f->len) {
        memset(f->b + f->len, 0, len - f->len);
        f->len = len;
    }
    return 0;
}
static int grow(size_t len) { return grow_file(&mf[0], len); }
static ssize_t m_pwrite(int fd, const void *b, size_t n, off_t off)
{
    mfile *f = file_of(fd);
    if (!f) { errno = EBADF; return -1; }
    if (off < 0 || grow_file(f, (size_t)off + n) != 0)
        return -1;
    memcpy(f->b + off, b, n);
    return (ssize_t)n;
}
static int m_fsync(int fd) { (void)fd; return 0; }
static int m_ftruncate(int fd, off_t len)
{
    mfile *f = file_of(fd);
    if (!f || len < 0) { errno = EINVAL; return -1; }
    if ((size_t)len > f->len)
        return grow_file(f, (size_t)len);
    f->len = (size_t)len;
    return 0;
}
static off_t m_filesize(int fd)
{
    mfile *f = file_of(fd);
    if (!f) { errno = EBADF; return -1; }
    return (off_t)f->len;
}
static int m_flock(int fd, int op) { (void)fd; (void)op; return 0; }
static int m_link(const char *a, const char *b) { (void)a; (void)b; errno = EPERM; return -1; }
static int m_unlink(const char *p) { (void)p; return 0; }

/* the in-memory file is never replaced: no fstat/stat/rename (NULL) */
static const kvs_os mem_os = { m_open, m_close, m_pread, m_pwrite, m_fsync, m_ftruncate,
                               m_filesize, m_flock, m_link, m_unlink, NULL, NULL, NULL };

static int is_err(int rc)
{
    return rc == KVS_OK || rc == KVS_NOTFOUND || rc == KVS_EXISTS || rc == KVS_ECORRUPT ||
           rc == KVS_ENOTKVS || rc == KVS_EVERSION || rc == KVS_ETRUNCATED ||
           rc == KVS_ENOSPC || rc == KVS_ETOOBIG || rc == KVS_EINVAL || rc == KVS_ENOMEM;
}
/* An error code outside the documented set is a bug too. */
#define EXPECT(rc) do { int e_ = (rc); if (!is_err(e_)) { fprintf(stderr, "unexpected %d (%s) at line %d\n", e_, kvs_strerror(e_), __LINE__); abort(); } } while (0)

static void reads(kvs *db)
{
    static const char *fixed[] = { "", "a", "key-00001", "fuzz", "k" };
    unsigned char keys[16][64];
    size_t klen[16];
    int nkeys = 0, i, rc;
    kvs_slice k, v;
    kvs_cursor *c;
    kvs_stats st;
    kvs_page_info pi;
    kvs_slot_info si;
    uint32_t pg, s, npages;
    unsigned long steps = 0, cap;

    for (i = 0; i < 5; i++) {
        rc = kvs_get(db, fixed[i], strlen(fixed[i]), &v);
        EXPECT(rc);
    }
    rc = kvs_cursor_open(db, &c);
    EXPECT(rc);
    if (rc == KVS_OK) {
        /* a finite file holds finitely many records: a cursor that runs on
         * and on is looping over a cycle the engine failed to detect */
        cap = (unsigned long)(mem_len / 8) + 1000;
        while ((rc = kvs_cursor_next(c, &k, &v)) == KVS_OK) {
            if (++steps > cap)
                abort();
            if (nkeys < 16 && k.len <= 64) {
                memcpy(keys[nkeys], k.data, k.len);
                klen[nkeys++] = k.len;
            }
            if (v.len)      /* touch the value: ASan checks the slice */
                (void)((volatile const unsigned char *)v.data)[v.len - 1];
        }
        EXPECT(rc);
        kvs_cursor_close(c);
    }
    for (i = 0; i < nkeys; i++) {
        rc = kvs_get(db, keys[i], klen[i], &v);
        EXPECT(rc);
        if (rc == KVS_OK && v.len)
            (void)((volatile const unsigned char *)v.data)[v.len - 1];
    }
    EXPECT(kvs_check(db));
    EXPECT(kvs_stats_get(db, &st));
    npages = (uint32_t)(mem_len / KVS_PAGE_SIZE) + 1;
    for (pg = 0; pg <= npages && pg < 4096; pg++) {
        rc = kvs_page_info_get(db, pg, &pi);
        EXPECT(rc);
        if (rc != KVS_OK)
            continue;
        for (s = 0; s < pi.nslots && s < 1024; s++) {
            rc = kvs_page_slot(db, pg, s, &si);
            EXPECT(rc);
            if (rc != KVS_OK)
                break;
            if (si.key.len)
                (void)((volatile const unsigned char *)si.key.data)[si.key.len - 1];
        }
    }
    {
        kvs_slice d;
        rc = kvs_descriptor(db, &d);
        EXPECT(rc);
        if (rc == KVS_OK && d.len)
            (void)((volatile const unsigned char *)d.data)[d.len - 1];
    }
}

static void writes(kvs *db)
{
    static const unsigned char big[9000];
    kvs_slice v;
    int rc;
    EXPECT(kvs_put(db, "fuzz", 4, "value", 5, 0));
    EXPECT(kvs_put(db, "a", 1, big, sizeof big, 0));
    EXPECT(kvs_put(db, "fuzz", 4, "other", 5, KVS_NOOVERWRITE));
    rc = kvs_get(db, "a", 1, &v);
    EXPECT(rc);
    EXPECT(kvs_delete(db, "a", 1));
    EXPECT(kvs_delete(db, "k", 1));
    EXPECT(kvs_check(db));
}

/* Runs the whole sequence over the file in mem[0..mem_len). */
/* Salvage reads every page without trusting the header: it must only ever
 * return records inside the file's bytes (each byte is touched here, so
 * ASan sees an overread) or error codes. */
static void salvage_all(void)
{
    static volatile unsigned sink;
    kvs_options o;
    kvs_salvage *s;
    kvs_salvage_rec r;
    kvs_salvage_stats st;
    size_t i;
    int rc;

    kvs_options_init(&o);
    o.os = &mem_os;
    if (kvs_salvage_open(FUZZ_PATH, &o, &s) != KVS_OK)
        return;
    while ((rc = kvs_salvage_next(s, &r)) == KVS_OK) {
        for (i = 0; i < r.key.len; i++)
            sink += ((const unsigned char *)r.key.data)[i];
        for (i = 0; i < r.value.len; i++)
            sink += ((const unsigned char *)r.value.data)[i];
    }
    EXPECT(rc);
    kvs_salvage_stats_get(s, &st);
    sink += (unsigned)st.records;
    kvs_salvage_close(s);
}

/* The read-write open's journal: a real one (the journal maps its control
 * file), in a temporary directory, never checkpointed (a checkpoint fsyncs
 * the directory and the control file): removed and made again once its one
 * segment holds 8 MiB. */
static kvs_journal *fj;
static char fj_dir[64];

static void fj_remove(void)
{
    static const char *names[] = { "control", "lock", "flush", "seg-0000000000000001" };
    char p[128];
    unsigned i;
    kvs_journal_close(fj);
    fj = NULL;
    for (i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", fj_dir, names[i]);
        unlink(p);
    }
    rmdir(fj_dir);
}

static kvs_journal *fuzz_journal(void)
{
    kvs_journal_options jo;
    kvs_journal_stats st;
    if (fj) {
        kvs_journal_stats_get(fj, &st);
        if (st.end_lsn - st.checkpoint_lsn < ((uint64_t)8 << 20))
            return fj;
        fj_remove();
    }
    snprintf(fj_dir, sizeof fj_dir, "/tmp/fuzz_open_journal.%d", (int)getpid());
    kvs_journal_options_init(&jo);
    jo.checkpoint_bytes = UINT64_MAX;
    if (kvs_journal_open(fj_dir, &jo, &fj) != KVS_OK)
        fj = NULL;
    return fj;
}

static void run_file(void)
{
    kvs_options o;
    kvs *db = NULL;
    int rc;

    salvage_all();
    kvs_options_init(&o);
    o.os = &mem_os;
    o.flags = KVS_RDONLY;
    o.cache_pages = 8;
    rc = kvs_open(FUZZ_PATH, &o, &db);
    EXPECT(rc);
    if (rc != KVS_OK)
        return;
    reads(db);
    kvs_close(db);

    o.flags = KVS_NOSYNC;
    o.journal = fuzz_journal();
    if (!o.journal)
        abort();
    db = NULL;
    rc = kvs_open(FUZZ_PATH, &o, &db);
    EXPECT(rc);
    if (rc != KVS_OK)
        return;
    writes(db);
    kvs_close(db);
}

static void load(const uint8_t *data, size_t size)
{
    mem_len = 0;
    if (grow(size) != 0)
        return;
    if (size)
        memcpy(mem, data, size);
    mem_len = size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pg;
    load(data, size);
    run_file();
    if (size < KVS_PAGE_SIZE)
        return 0;
    load(data, size);
    for (pg = 0; (pg + 1) * KVS_PAGE_SIZE <= size; pg++) {
        unsigned char *p = mem + pg * KVS_PAGE_SIZE;
        uint64_t c = XXH3_64bits_withSeed(p + 8, KVS_PAGE_SIZE - 8, (uint64_t)pg);
        int i;
        for (i = 0; i < 8; i++)
            p[i] = (unsigned char)(c >> (8 * i));
    }
    run_file();
    return 0;
}
