/*
 * pager.c - page I/O on the database file: reads (checksum verified),
 * writes and write runs, seal, growth, fsync, and the header page loaded
 * and stored (encode/decode are header.c's).  All I/O goes through the
 * kvs_os table.  A page read from disk is accepted only if its checksum
 * (xxh3 seeded with its own page number, so a page written at the wrong
 * offset fails too) matches.
 *
 * The other jobs that once lived here have their own files: the spill file
 * (spill.c), the undo of a failed write-out (undo.c; the pager only hands
 * it each page's old bytes before overwriting them), the section lock
 * (filelock.c) and kvs_seterr (err.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <xxhash.h>
#include "pager.h"
#include "undo.h"

struct pager {
    pager_head head;          /* first: the inline accessors of pager.h read it */
    const kvs_os *os;
    int       fd;
    int       rdonly;
    int       extended;       /* file grown in this unit */
    off_t     extended_from;  /* its size before */
    uint32_t  phys_pages;     /* whole pages the file holds (valid while extended) */
    uint32_t  grow_max;       /* most pages one growth preallocates (pager_set_growth) */
    int       zero_fill;      /* the file system cannot allocate (kvs_os.allocate): write zeros */
    uint32_t  sect_npages;    /* page count when the unit began */
    undo     *undo;           /* set during a write-out: gets each page's old bytes */
    uint8_t  *wbuf;           /* coalesced writes (PAGER_RUN pages), allocated on first use */
    uint8_t  *ubuf;           /* save_before's reads (PAGER_RUN pages), allocated on first use */
    pager_capture_fn capture; /* set: writes go to it, not to the file (kvs_prepare) */
    int       presealed;      /* the pages written are sealed already (pager_set_presealed) */
    void     *capture_arg;
    uint64_t  reads, writes;  /* pages */
    uint8_t   hbuf[PG_SIZE];  /* header page image */
    /* The last header image hdr_decode accepted and what it decoded to: a
     * section begin that reads the same bytes again (nobody wrote the file
     * since) skips the checksum and the decode, which were most of what a
     * one-get section cost.  Only ever set from a full decode, so the pair
     * always agrees; forgotten when the descriptor changes. */
    int       hlast_ok;
    uint8_t   hlast[PG_SIZE];
    kvs_hdr   hlast_h;
};

/* The checksum is most of what verifying a page read costs (a new backend's
 * private cache reads every page a scan visits): where the library has it,
 * XXH3's entry that picks the CPU's widest vector unit at run time (AVX2 or
 * AVX-512) instead of the SSE2 baseline the library is built for.  The same
 * hash either way (XXH3's output does not depend on the code computing it).
 * Whether the library has that entry is probed when the engine is built
 * (src/engine/sources.mk), not guessed from the header. */
#ifdef KVS_HAVE_XXH3_DISPATCH /* the build probed the library: sources.mk */
#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxh_x86dispatch.h>
#define page_hash XXH3_64bits_withSeed_dispatch
#endif
#ifndef page_hash
#define page_hash XXH3_64bits_withSeed
#endif

uint64_t pager_checksum(const uint8_t *page, uint32_t pgno)
{
    return page_hash(page + 8, PG_SIZE - 8, pgno);
}

void pager_seal(uint8_t *page, uint32_t pgno)
{
    wr64(page + PG_CKSUM, pager_checksum(page, pgno));
}

pager *pager_new(const kvs_os *os, int fd, int rdonly, kvs_err *err)
{
    pager *pg = calloc(1, sizeof *pg);
    if (!pg)
        return NULL;
    pg->grow_max = 256;
    pg->head.err = err;
    pg->os = os;
    pg->fd = fd;
    pg->rdonly = rdonly;
    return pg;
}

void pager_free(pager *pg)
{
    if (!pg)
        return;
    free(pg->wbuf);
    free(pg->ubuf);
    free(pg);
}

const kvs_os *pager_os(const pager *pg)
{
    return pg->os;
}

int pager_fd(const pager *pg)
{
    return pg->fd;
}

void pager_set_fd(pager *pg, int fd)
{
    pg->fd = fd;
    pg->hlast_ok = 0;
}

uint64_t pager_reads(const pager *pg)
{
    return pg->reads;
}

uint64_t pager_writes(const pager *pg)
{
    return pg->writes;
}

void pager_reset_counts(pager *pg)
{
    pg->reads = pg->writes = 0;
}

int pager_write_all(const kvs_os *os, int fd, const void *buf, size_t n, off_t off)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = os->pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

ssize_t pager_read_all(const kvs_os *os, int fd, void *buf, size_t n, off_t off)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = os->pread(fd, p + got, n - got, off + (off_t)got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int pager_read_raw(pager *pg, uint32_t pgno, uint8_t *buf)
{
    ssize_t r = pager_read_all(pg->os, pg->fd, buf, PG_SIZE, (off_t)pgno * PG_SIZE);
    if (r < 0)
        return kvs_seterrno(pg->head.err, errno, pgno, "read failed");
    if (r < PG_SIZE)
        return kvs_seterr(pg->head.err, KVS_ETRUNCATED, pgno,
                          "page %u: file ends inside or before it (read %zd of %d bytes)",
                          (unsigned)pgno, r, PG_SIZE);
    pg->reads++;
    return KVS_OK;
}

uint32_t pager_read_pages(pager *pg, uint32_t pgno, uint8_t *buf, uint32_t n)
{
    ssize_t r = pager_read_all(pg->os, pg->fd, buf, (size_t)n * PG_SIZE, (off_t)pgno * PG_SIZE);
    uint32_t got = r > 0 ? (uint32_t)(r / PG_SIZE) : 0;
    pg->reads += got;
    return got;
}

int pager_verify(pager *pg, uint32_t pgno, const uint8_t *buf)
{
    uint64_t stored = rd64(buf + PG_CKSUM), calc = pager_checksum(buf, pgno);
    if (stored != calc)
        return kvs_seterr(pg->head.err, KVS_ECORRUPT, pgno,
                          "page %u: checksum mismatch (stored %016llx, computed %016llx)",
                          (unsigned)pgno, (unsigned long long)stored,
                          (unsigned long long)calc);
    return KVS_OK;
}

int pager_read(pager *pg, uint32_t pgno, uint8_t *buf)
{
    int rc = pager_read_raw(pg, pgno, buf);
    return rc ? rc : pager_verify(pg, pgno, buf);
}

/* ---- the unit of change ---------------------------------------------------- */

void pager_begin_unit(pager *pg)
{
    pg->extended = 0;
    pg->sect_npages = hdr_npages(&pg->head.h);
}

uint32_t pager_sect_npages(const pager *pg)
{
    return pg->sect_npages;
}

void pager_set_undo(pager *pg, undo *u)
{
    pg->undo = u;
}

/* Before pages pgno..pgno+n-1 are overwritten during a write-out: hands the
 * undo the file's current image of each one the file had when the unit
 * began (pages grown since are cut off again on failure; their image is
 * zeros past the end of the file).  A failure here fails the write-out
 * before it has overwritten anything. */
static int save_before(pager *pg, uint32_t pgno, uint32_t n)
{
    /* the pages of a run that the file had, read in one call and handed
     * over as one run (one write to the spill file), PAGER_RUN at a time */
    while (pg->undo && n > 0 && pgno < pg->sect_npages) {
        uint32_t m = pg->sect_npages - pgno < n ? pg->sect_npages - pgno : n;
        ssize_t r;
        int rc;
        if (m > PAGER_RUN)
            m = PAGER_RUN;
        if (!pg->ubuf && !(pg->ubuf = malloc((size_t)PAGER_RUN * PG_SIZE)))
            return kvs_seterr(pg->head.err, KVS_ENOMEM, 0, "out of memory");
        r = pager_read_all(pg->os, pg->fd, pg->ubuf, (size_t)m * PG_SIZE, (off_t)pgno * PG_SIZE);
        if (r < 0)
            return kvs_seterrno(pg->head.err, errno, pgno, "read before overwrite failed");
        memset(pg->ubuf + r, 0, (size_t)m * PG_SIZE - (size_t)r);
        rc = undo_save_run(pg->undo, pgno, m, pg->ubuf);
        if (rc)
            return rc;
        pgno += m;
        n -= m;
    }
    return KVS_OK;
}

/* ---- writes ---------------------------------------------------------------- */

void pager_set_presealed(pager *pg, int on)
{
    pg->presealed = on;
}

void pager_set_capture(pager *pg, pager_capture_fn fn, void *arg)
{
    pg->capture = fn;
    pg->capture_arg = arg;
}

int pager_write(pager *pg, uint32_t pgno, uint8_t *buf)
{
    int rc;
    if (pg->rdonly)
        return kvs_seterr(pg->head.err, KVS_ERDONLY, 0, "write to a read-only handle");
    if (pg->capture) {
        pager_seal(buf, pgno);
        return pg->capture(pg->capture_arg, pgno, buf);
    }
    rc = save_before(pg, pgno, 1);
    if (rc)
        return rc;
    if (!pg->presealed)
        pager_seal(buf, pgno);
    if (pager_write_all(pg->os, pg->fd, buf, PG_SIZE, (off_t)pgno * PG_SIZE) != 0)
        return kvs_seterrno(pg->head.err, errno, pgno, "write failed");
    pg->writes++;
    return KVS_OK;
}

int pager_write_run(pager *pg, uint32_t pgno, uint8_t **pages, uint32_t n)
{
    uint32_t i;
    int rc;
    if (n == 1)
        return pager_write(pg, pgno, pages[0]);
    if (pg->rdonly)
        return kvs_seterr(pg->head.err, KVS_ERDONLY, 0, "write to a read-only handle");
    if (pg->capture) {
        for (i = 0; i < n; i++) {
            pager_seal(pages[i], pgno + i);
            rc = pg->capture(pg->capture_arg, pgno + i, pages[i]);
            if (rc)
                return rc;
        }
        return KVS_OK;
    }
    if (!pg->wbuf && !(pg->wbuf = malloc((size_t)PAGER_RUN * PG_SIZE)))
        return kvs_seterr(pg->head.err, KVS_ENOMEM, 0, "out of memory");
    rc = save_before(pg, pgno, n);
    if (rc)
        return rc;
    for (i = 0; i < n; i++) {
        if (!pg->presealed)
            pager_seal(pages[i], pgno + i);
        memcpy(pg->wbuf + (size_t)i * PG_SIZE, pages[i], PG_SIZE);
    }
    if (pager_write_all(pg->os, pg->fd, pg->wbuf, (size_t)n * PG_SIZE, (off_t)pgno * PG_SIZE) != 0)
        return kvs_seterrno(pg->head.err, errno, pgno, "write failed");
    pg->writes += n;
    return KVS_OK;
}

int pager_write_image(pager *pg, uint32_t pgno, const uint8_t *img)
{
    return pager_write_all(pg->os, pg->fd, img, PG_SIZE, (off_t)pgno * PG_SIZE);
}

/* ---- growth and size ------------------------------------------------------- */

/* Makes sure the file holds page pgno now, so a full disk is reported by the
 * operation that needs the page, before any existing page is rewritten.  The
 * file grows in chunks (1/16 of its size, 1..grow_max pages) to keep this to
 * one call per many allocations; pages beyond the header's page count are
 * ignored by readers and reused by later growth.  A chunk is allocated
 * (kvs_os.allocate: disk space reserved, nothing written) where the file
 * system can, else written as zero pages: writing zeros cost every new page
 * a second write of its 4 KiB (a copy now, a write-back later), which was
 * an eighth of a bulk load. */
static int grow_zero(pager *pg, off_t end)
{
    static const uint8_t zeros[64 * 1024];
    off_t off = (off_t)pg->phys_pages * PG_SIZE;
    while (off < end) {
        size_t n = (size_t)(end - off) < sizeof zeros ? (size_t)(end - off) : sizeof zeros;
        if (pager_write_all(pg->os, pg->fd, zeros, n, off) != 0)
            return -1;
        off += (off_t)n;
        pg->phys_pages = (uint32_t)(off / PG_SIZE);
    }
    return 0;
}

static int grow_allocate(pager *pg, off_t end)
{
    off_t off = (off_t)pg->phys_pages * PG_SIZE;
    if (pg->os->allocate(pg->fd, off, end - off) != 0)
        return -1;
    pg->phys_pages = (uint32_t)(end / PG_SIZE);
    return 0;
}

static int cannot_allocate(int e)
{
    return e == EINVAL || e == ENOSYS || e == EOPNOTSUPP
#if defined(ENOTSUP) && ENOTSUP != EOPNOTSUPP
           || e == ENOTSUP
#endif
        ;
}

/* Grows the file to end: allocated, or zeros once the file system has said
 * it cannot allocate; -1 with errno on failure. */
static int grow(pager *pg, off_t end)
{
    if (pg->os->allocate && !pg->zero_fill) {
        if (grow_allocate(pg, end) == 0)
            return 0;
        if (!cannot_allocate(errno))
            return -1;
        pg->zero_fill = 1;      /* for this handle's life: the file system will not change */
    }
    return grow_zero(pg, end);
}

int pager_extend(pager *pg, uint32_t pgno)
{
    uint32_t want, chunk;
    if (!pg->extended) {
        off_t sz = pg->os->filesize(pg->fd);
        if (sz < 0)
            return kvs_seterrno(pg->head.err, errno, pgno, "fstat failed");
        pg->extended = 1;
        pg->extended_from = sz;
        pg->phys_pages = (uint32_t)(sz / PG_SIZE);
    }
    if (pgno < pg->phys_pages)
        return KVS_OK;
    if (pg->rdonly)
        return kvs_seterr(pg->head.err, KVS_ERDONLY, 0, "write to a read-only handle");
    chunk = pg->phys_pages / 16;
    chunk = chunk < 1 ? 1 : chunk > pg->grow_max ? pg->grow_max : chunk;
    want = pg->phys_pages + chunk;
    if (want < pgno + 1)
        want = pgno + 1;
    for (;;) {
        if (grow(pg, (off_t)want * PG_SIZE) == 0)
            return KVS_OK;
        if (pg->phys_pages > pgno)
            return KVS_OK;          /* the chunk failed, but the page we need made it */
        if (want == pgno + 1 || (errno != ENOSPC && errno != EDQUOT))
            return kvs_seterrno(pg->head.err, errno, pgno, "cannot grow the file");
        want = pgno + 1;            /* disk nearly full: try just the page we need */
    }
}

int pager_discard_extension(pager *pg)
{
    int rc = KVS_OK;
    if (pg->extended && !pg->rdonly) {
        off_t want = (off_t)hdr_npages(&pg->head.h) * PG_SIZE;
        if (want < pg->extended_from)
            want = pg->extended_from;
        if (pg->os->ftruncate(pg->fd, want) != 0)
            rc = kvs_seterrno(pg->head.err, errno, 0, "ftruncate failed");
    }
    pg->extended = 0;
    return rc;
}

int pager_set_size(pager *pg, uint32_t npages)
{
    if (pg->os->ftruncate(pg->fd, (off_t)npages * PG_SIZE) != 0)
        return kvs_seterrno(pg->head.err, errno, 0, "ftruncate failed");
    return KVS_OK;
}

void pager_set_growth(pager *pg, uint32_t max_pages)
{
    pg->grow_max = max_pages < 1 ? 1 : max_pages;
}

int pager_trim(pager *pg, int always)
{
    uint32_t npages = hdr_npages(&pg->head.h);
    if (always || (pg->extended && pg->phys_pages > npages))
        return pager_set_size(pg, npages);
    return KVS_OK;
}

int pager_sync(pager *pg)
{
    if (pg->os->fsync(pg->fd) != 0)
        return kvs_seterrno(pg->head.err, errno, 0, "fsync failed");
    return KVS_OK;
}

/* ---- the header page ------------------------------------------------------- */

/* Reads and validates page 0 into the header; the file must hold every page
 * the header counts. */
int pager_load_header(pager *pg, int check_size, uint64_t known_change)
{
    off_t sz;
    ssize_t r = pager_read_all(pg->os, pg->fd, pg->hbuf, PG_SIZE, 0);
    int rc;
    kvs_hdr h;
    if (r < 0)
        return kvs_seterrno(pg->head.err, errno, 0, "read of the header failed");
    pg->reads++;
    if (!check_size && pg->hlast_ok && r == PG_SIZE && hdr_change(&pg->hlast_h) == known_change &&
        memcmp(pg->hbuf, pg->hlast, PG_SIZE) == 0) {
        pg->head.h = pg->hlast_h;
        return KVS_OK;
    }
    pg->hlast_ok = 0;
    rc = hdr_decode(pg->hbuf, (size_t)r, &h, pg->head.err);
    if (rc)
        return rc;
    memcpy(pg->hlast, pg->hbuf, PG_SIZE);
    pg->hlast_h = h;
    pg->hlast_ok = 1;
    if (!check_size && hdr_change(&h) == known_change) {
        pg->head.h = h;
        return KVS_OK;
    }
    sz = pg->os->filesize(pg->fd);
    if (sz < 0)
        return kvs_seterrno(pg->head.err, errno, 0, "fstat failed");
    if (sz < (off_t)hdr_npages(&h) * PG_SIZE)
        return kvs_seterr(pg->head.err, KVS_ETRUNCATED, (uint32_t)(sz / PG_SIZE),
                          "page %u: file is %lld bytes but its header counts %u pages (%lld bytes)",
                          (unsigned)(sz / PG_SIZE), (long long)sz, (unsigned)hdr_npages(&h),
                          (long long)hdr_npages(&h) * PG_SIZE);
    pg->head.h = h;
    return KVS_OK;
}

int pager_store_header(pager *pg)
{
    int rc;
    if (pg->rdonly)
        return kvs_seterr(pg->head.err, KVS_ERDONLY, 0, "write to a read-only handle");
    rc = save_before(pg, 0, 1);
    if (rc)
        return rc;
    /* the upgrade of a version-1/2 file happens here, at its first header
     * write, never on a read: it gets its id (a failed write-out rereads
     * the header, so the id is only kept once it is on disk) */
    hdr_upgrade(&pg->head.h);
    hdr_encode(&pg->head.h, pg->hbuf);
    if (pg->capture)
        return pg->capture(pg->capture_arg, 0, pg->hbuf);
    if (pager_write_all(pg->os, pg->fd, pg->hbuf, PG_SIZE, 0) != 0)
        return kvs_seterrno(pg->head.err, errno, 0, "write of the header failed");
    pg->writes++;
    return KVS_OK;
}
