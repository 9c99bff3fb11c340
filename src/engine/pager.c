/*
 * pager.c - pages on disk: checksums, the header page, growth, locks, fsync.
 * All I/O goes through the kvs_os table.  A page read from disk is accepted
 * only if its checksum (xxh3 seeded with its own page number, so a page
 * written at the wrong offset fails too) matches.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include "pager.h"

int kvs_seterr(kvs_err *e, int code, uint32_t page, const char *fmt, ...)
{
    va_list ap;
    if (!e)
        return code;
    e->code = code;
    e->page = code == KVS_ECORRUPT ? page : 0;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

int kvs_seterrno(kvs_err *e, int err, uint32_t page, const char *what)
{
    int code = (err == ENOSPC || err == EDQUOT) ? KVS_ENOSPC : KVS_EIO;
    kvs_seterr(e, code, 0, "%s (page %u): %s", what, (unsigned)page, strerror(err));
    if (e)
        e->sys_errno = err;
    return code;
}

uint64_t pager_checksum(const uint8_t *page, uint32_t pgno)
{
    return XXH3_64bits_withSeed(page + 8, PG_SIZE - 8, pgno);
}

void pager_seal(uint8_t *page, uint32_t pgno)
{
    wr64(page + PG_CKSUM, pager_checksum(page, pgno));
}

void pager_init(pager *pg, const kvs_os *os, int fd, int rdonly, kvs_err *err)
{
    memset(pg, 0, sizeof *pg);
    pg->os = os;
    pg->fd = fd;
    pg->rdonly = rdonly;
    pg->err = err;
    pg->spill_fd = -1;
}

/* pwrite until done; a write that makes no progress is an error. */
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

/* Reads a whole page; returns bytes read (short at end of file) or -1. */
static ssize_t read_full(pager *pg, uint8_t *buf, off_t off)
{
    size_t got = 0;
    while (got < PG_SIZE) {
        ssize_t r = pg->os->pread(pg->fd, buf + got, PG_SIZE - got, off + (off_t)got);
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
    ssize_t r = read_full(pg, buf, (off_t)pgno * PG_SIZE);
    if (r < 0)
        return kvs_seterrno(pg->err, errno, pgno, "read failed");
    if (r < PG_SIZE)
        return kvs_seterr(pg->err, KVS_ETRUNCATED, pgno,
                          "page %u: file ends inside or before it (read %zd of %d bytes)",
                          (unsigned)pgno, r, PG_SIZE);
    pg->reads++;
    return KVS_OK;
}

int pager_read(pager *pg, uint32_t pgno, uint8_t *buf)
{
    uint64_t stored, calc;
    int rc = pager_read_raw(pg, pgno, buf);
    if (rc)
        return rc;
    stored = rd64(buf + PG_CKSUM);
    calc = pager_checksum(buf, pgno);
    if (stored != calc)
        return kvs_seterr(pg->err, KVS_ECORRUPT, pgno,
                          "page %u: checksum mismatch (stored %016llx, computed %016llx)",
                          (unsigned)pgno, (unsigned long long)stored,
                          (unsigned long long)calc);
    return KVS_OK;
}

/* ---- undo of a write-out ------------------------------------------------- */

void pager_undo_begin(pager *pg)
{
    pg->undo_on = 1;
    pg->undo_n = 0;
    /* images go to spill-file slots after the spilled pages' */
    pg->undo_base = pg->spill_next;
}

static int spill_open(pager *pg);

/* Reads one page at off of fd, zero-filling past the end of the file. */
static int read_page_at(pager *pg, int fd, uint8_t *dst, off_t off)
{
    size_t done = 0;
    while (done < PG_SIZE) {
        ssize_t got = pg->os->pread(fd, dst + done, PG_SIZE - done, off + (off_t)done);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (got == 0)
            break;
        done += (size_t)got;
    }
    memset(dst + done, 0, PG_SIZE - done);
    return 0;
}

/* Saves the file's current image of pages pgno..pgno+n-1 that existed when
 * the section began (pages grown since are cut off again on failure).  Each
 * page is written at most once per write-out, so the first image is the
 * section's "before".  The images go to the spill file (memory when the
 * handle has none); a failure here fails the write-out before it has
 * overwritten anything. */
static int undo_save(pager *pg, uint32_t pgno, uint32_t n)
{
    uint8_t tmp[PG_SIZE];
    uint32_t i;
    int on_disk = pg->path != NULL;
    if (!pg->undo_on)
        return KVS_OK;
    if (on_disk && spill_open(pg) != KVS_OK)
        return pg->err->code;
    for (i = 0; i < n && pgno + i < pg->sect_npages; i++) {
        uint8_t *dst = tmp;
        if (pg->undo_n == pg->undo_cap) {
            uint32_t cap = pg->undo_cap ? pg->undo_cap * 2 : 64;
            uint32_t *pn = realloc(pg->undo_pgno, (size_t)cap * sizeof *pn);
            if (!pn)
                return kvs_seterr(pg->err, KVS_ENOMEM, 0, "out of memory (undo)");
            pg->undo_pgno = pn;
            if (!on_disk) {
                uint8_t *buf = realloc(pg->undo_buf, (size_t)cap * PG_SIZE);
                if (!buf)
                    return kvs_seterr(pg->err, KVS_ENOMEM, 0, "out of memory (undo)");
                pg->undo_buf = buf;
            }
            pg->undo_cap = cap;
        }
        if (!on_disk)
            dst = pg->undo_buf + (size_t)pg->undo_n * PG_SIZE;
        if (read_page_at(pg, pg->fd, dst, (off_t)(pgno + i) * PG_SIZE) != 0)
            return kvs_seterrno(pg->err, errno, pgno + i, "read before overwrite failed");
        if (on_disk &&
            pager_write_all(pg->os, pg->spill_fd, tmp, PG_SIZE,
                            (off_t)(pg->undo_base + pg->undo_n) * PG_SIZE) != 0)
            return kvs_seterrno(pg->err, errno, pgno + i, "write of an undo image to the spill file failed");
        pg->undo_pgno[pg->undo_n++] = pgno + i;
    }
    return KVS_OK;
}

int pager_undo_apply(pager *pg)
{
    uint8_t tmp[PG_SIZE];
    int rc = KVS_OK;
    uint32_t i = pg->undo_n;
    pg->undo_on = 0;
    while (i-- > 0) {
        const uint8_t *img = tmp;
        if (pg->undo_buf && !pg->path)
            img = pg->undo_buf + (size_t)i * PG_SIZE;
        else if (read_page_at(pg, pg->spill_fd, tmp, (off_t)(pg->undo_base + i) * PG_SIZE) != 0) {
            if (rc == KVS_OK)
                rc = kvs_seterrno(pg->err, errno, pg->undo_pgno[i], "read of an undo image failed");
            continue;
        }
        if (pager_write_all(pg->os, pg->fd, img, PG_SIZE,
                            (off_t)pg->undo_pgno[i] * PG_SIZE) != 0 && rc == KVS_OK)
            rc = kvs_seterrno(pg->err, errno, pg->undo_pgno[i], "undo of a failed write-out failed");
    }
    pg->undo_n = 0;
    return rc;
}

void pager_undo_end(pager *pg)
{
    pg->undo_on = 0;
    pg->undo_n = 0;
    /* a huge section should not pin its undo memory for the handle's life */
    if (pg->undo_cap > 1024) {
        free(pg->undo_pgno);
        free(pg->undo_buf);
        pg->undo_pgno = NULL;
        pg->undo_buf = NULL;
        pg->undo_cap = 0;
    }
}

int pager_write(pager *pg, uint32_t pgno, uint8_t *buf)
{
    int rc;
    if (pg->rdonly)
        return kvs_seterr(pg->err, KVS_ERDONLY, 0, "write to a read-only handle");
    rc = undo_save(pg, pgno, 1);
    if (rc)
        return rc;
    pager_seal(buf, pgno);
    if (pager_write_all(pg->os, pg->fd, buf, PG_SIZE, (off_t)pgno * PG_SIZE) != 0)
        return kvs_seterrno(pg->err, errno, pgno, "write failed");
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
        return kvs_seterr(pg->err, KVS_ERDONLY, 0, "write to a read-only handle");
    if (!pg->wbuf && !(pg->wbuf = malloc((size_t)PAGER_RUN * PG_SIZE)))
        return kvs_seterr(pg->err, KVS_ENOMEM, 0, "out of memory");
    rc = undo_save(pg, pgno, n);
    if (rc)
        return rc;
    for (i = 0; i < n; i++) {
        pager_seal(pages[i], pgno + i);
        memcpy(pg->wbuf + (size_t)i * PG_SIZE, pages[i], PG_SIZE);
    }
    if (pager_write_all(pg->os, pg->fd, pg->wbuf, (size_t)n * PG_SIZE, (off_t)pgno * PG_SIZE) != 0)
        return kvs_seterrno(pg->err, errno, pgno, "write failed");
    pg->writes += n;
    return KVS_OK;
}

void pager_free(pager *pg)
{
    free(pg->wbuf);
    free(pg->path);
    free(pg->spill_key);
    free(pg->spill_slot);
    free(pg->undo_pgno);
    free(pg->undo_buf);
    pg->undo_pgno = NULL;
    pg->undo_buf = NULL;
    pg->undo_cap = pg->undo_n = 0;
    if (pg->spill_fd >= 0)
        pg->os->close(pg->spill_fd);
    pg->wbuf = NULL;
    pg->path = NULL;
    pg->spill_key = pg->spill_slot = NULL;
    pg->spill_fd = -1;
}

int pager_set_path(pager *pg, const char *path)
{
    size_t n = strlen(path) + 1;
    pg->path = malloc(n);
    if (!pg->path)
        return kvs_seterr(pg->err, KVS_ENOMEM, 0, "out of memory");
    memcpy(pg->path, path, n);
    return KVS_OK;
}

/* ---- spill -------------------------------------------------------------------
 * No-steal: a dirty page that existed before the write section must not reach
 * the file before the section ends (a later failure would leave the file
 * half-changed).  When the pool must evict one, it goes to the spill file and
 * comes back from there when needed; kvs_end copies the spilled pages into
 * the file together with the pool's dirty pages.  Pages the section grew the
 * file with are not spilled: nothing on disk points to them. */

static uint32_t spill_home(const pager *pg, uint32_t pgno)
{
    return (uint32_t)(pgno * 0x9E3779B1u) & (pg->spill_cap - 1);
}

static uint32_t spill_find(const pager *pg, uint32_t pgno)
{
    uint32_t i;
    if (!pg->spill_count)
        return UINT32_MAX;
    for (i = spill_home(pg, pgno); pg->spill_key[i]; i = (i + 1) & (pg->spill_cap - 1))
        if (pg->spill_key[i] == pgno + 1)
            return i;
    return UINT32_MAX;
}

static void spill_delete(pager *pg, uint32_t i)
{
    uint32_t j = i, mask = pg->spill_cap - 1;
    for (;;) {
        uint32_t k;
        j = (j + 1) & mask;
        if (!pg->spill_key[j])
            break;
        k = spill_home(pg, pg->spill_key[j] - 1);
        if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
            pg->spill_key[i] = pg->spill_key[j];
            pg->spill_slot[i] = pg->spill_slot[j];
            i = j;
        }
    }
    pg->spill_key[i] = 0;
    pg->spill_count--;
}

static int spill_insert(pager *pg, uint32_t pgno, uint32_t slot)
{
    uint32_t i;
    if (2 * (pg->spill_count + 1) > pg->spill_cap) {
        uint32_t ncap = pg->spill_cap ? 2 * pg->spill_cap : 1024, oc = pg->spill_cap;
        uint32_t *ok = pg->spill_key, *os = pg->spill_slot;
        pg->spill_key = calloc(ncap, sizeof(uint32_t));
        pg->spill_slot = calloc(ncap, sizeof(uint32_t));
        if (!pg->spill_key || !pg->spill_slot) {
            free(pg->spill_key);
            free(pg->spill_slot);
            pg->spill_key = ok;
            pg->spill_slot = os;
            return kvs_seterr(pg->err, KVS_ENOMEM, 0, "out of memory for the spill map");
        }
        pg->spill_cap = ncap;
        pg->spill_count = 0;
        for (i = 0; i < oc; i++)
            if (ok[i])
                spill_insert(pg, ok[i] - 1, os[i]);
        free(ok);
        free(os);
    }
    for (i = spill_home(pg, pgno); pg->spill_key[i]; i = (i + 1) & (pg->spill_cap - 1))
        ;
    pg->spill_key[i] = pgno + 1;
    pg->spill_slot[i] = slot;
    pg->spill_count++;
    return KVS_OK;
}

static int spill_open(pager *pg)
{
    static unsigned counter;
    char *name;
    size_t n;
    if (pg->spill_fd >= 0)
        return KVS_OK;
    if (!pg->path)
        return kvs_seterr(pg->err, KVS_EINVAL, 0, "no path for a spill file");
    n = strlen(pg->path) + 48;
    name = malloc(n);
    if (!name)
        return kvs_seterr(pg->err, KVS_ENOMEM, 0, "out of memory");
    snprintf(name, n, "%s.spill.%ld.%u", pg->path, (long)getpid(), counter++);
    pg->spill_fd = pg->os->open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (pg->spill_fd < 0) {
        int rc = kvs_seterrno(pg->err, errno, 0, "cannot create the spill file");
        free(name);
        return rc;
    }
    pg->os->unlink(name);
    free(name);
    return KVS_OK;
}

int pager_spill_write(pager *pg, uint32_t pgno, uint8_t *page)
{
    uint32_t i = spill_find(pg, pgno), slot;
    int rc = spill_open(pg);
    if (rc)
        return rc;
    slot = i != UINT32_MAX ? pg->spill_slot[i] : pg->spill_next;
    pager_seal(page, pgno);
    if (pager_write_all(pg->os, pg->spill_fd, page, PG_SIZE, (off_t)slot * PG_SIZE) != 0)
        return kvs_seterrno(pg->err, errno, pgno, "write to the spill file failed");
    if (i == UINT32_MAX) {
        rc = spill_insert(pg, pgno, slot);
        if (rc)
            return rc;
        pg->spill_next++;
    }
    pg->spilled++;
    return KVS_OK;
}

int pager_spill_take(pager *pg, uint32_t pgno, uint8_t *page, int want_data)
{
    uint32_t i = spill_find(pg, pgno);
    if (i == UINT32_MAX)
        return 0;
    if (want_data) {
        size_t got = 0;
        off_t off = (off_t)pg->spill_slot[i] * PG_SIZE;
        while (got < PG_SIZE) {
            ssize_t r = pg->os->pread(pg->spill_fd, page + got, PG_SIZE - got, off + (off_t)got);
            if (r <= 0) {
                if (r < 0 && errno == EINTR)
                    continue;
                return kvs_seterrno(pg->err, r < 0 ? errno : EIO, pgno, "read from the spill file failed");
            }
            got += (size_t)r;
        }
        if (rd64(page + PG_CKSUM) != pager_checksum(page, pgno))
            return kvs_seterr(pg->err, KVS_EIO, 0, "page %u came back from the spill file damaged",
                              (unsigned)pgno);
    }
    spill_delete(pg, i);
    return 1;
}

int pager_spill_flush(pager *pg)
{
    uint8_t page[PG_SIZE];
    uint32_t i;
    for (i = 0; i < pg->spill_cap && pg->spill_count; i++) {
        uint32_t pgno;
        int rc;
        if (!pg->spill_key[i])
            continue;
        pgno = pg->spill_key[i] - 1;
        rc = pager_spill_take(pg, pgno, page, 1);
        if (rc < 0)
            return rc;
        rc = pager_write(pg, pgno, page);
        if (rc)
            return rc;
        i--;    /* backward-shift delete may have moved an entry into slot i */
    }
    pg->spill_next = 0;
    return KVS_OK;
}

void pager_spill_reset(pager *pg)
{
    if (pg->spill_key)
        memset(pg->spill_key, 0, (size_t)pg->spill_cap * sizeof(uint32_t));
    pg->spill_count = 0;
    pg->spill_next = 0;
}

/* Makes sure the file holds page pgno now, so a full disk is reported by the
 * operation that needs the page, before any existing page is rewritten.  The
 * file grows by zero pages in chunks (1/16 of its size, 1..256 pages) to
 * keep this to one write per many allocations; zero pages beyond the
 * header's page count are ignored by readers and reused by later growth. */
int pager_extend(pager *pg, uint32_t pgno)
{
    static const uint8_t zeros[64 * 1024];
    uint32_t want, chunk;
    if (!pg->extended) {
        off_t sz = pg->os->filesize(pg->fd);
        if (sz < 0)
            return kvs_seterrno(pg->err, errno, pgno, "fstat failed");
        pg->extended = 1;
        pg->extended_from = sz;
        pg->phys_pages = (uint32_t)(sz / PG_SIZE);
    }
    if (pgno < pg->phys_pages)
        return KVS_OK;
    if (pg->rdonly)
        return kvs_seterr(pg->err, KVS_ERDONLY, 0, "write to a read-only handle");
    chunk = pg->phys_pages / 16;
    chunk = chunk < 1 ? 1 : chunk > 256 ? 256 : chunk;
    want = pg->phys_pages + chunk;
    if (want < pgno + 1)
        want = pgno + 1;
    for (;;) {
        off_t off = (off_t)pg->phys_pages * PG_SIZE, end = (off_t)want * PG_SIZE;
        int failed = 0;
        while (off < end) {
            size_t n = (size_t)(end - off) < sizeof zeros ? (size_t)(end - off) : sizeof zeros;
            if (pager_write_all(pg->os, pg->fd, zeros, n, off) != 0) {
                failed = 1;
                break;
            }
            off += (off_t)n;
            pg->phys_pages = (uint32_t)(off / PG_SIZE);
        }
        if (!failed)
            return KVS_OK;
        if (pg->phys_pages > pgno)
            return KVS_OK;          /* the chunk failed, but the page we need made it */
        if (want == pgno + 1 || (errno != ENOSPC && errno != EDQUOT))
            return kvs_seterrno(pg->err, errno, pgno, "cannot grow the file");
        want = pgno + 1;            /* disk nearly full: try just the page we need */
    }
}

int pager_discard_extension(pager *pg)
{
    int rc = KVS_OK;
    if (pg->extended && !pg->rdonly) {
        off_t want = (off_t)hdr_npages(&pg->h) * PG_SIZE;
        if (want < pg->extended_from)
            want = pg->extended_from;
        if (pg->os->ftruncate(pg->fd, want) != 0)
            rc = kvs_seterrno(pg->err, errno, 0, "ftruncate failed");
    }
    pg->extended = 0;
    return rc;
}

int pager_set_size(pager *pg, uint32_t npages)
{
    if (pg->os->ftruncate(pg->fd, (off_t)npages * PG_SIZE) != 0)
        return kvs_seterrno(pg->err, errno, 0, "ftruncate failed");
    return KVS_OK;
}

/* Reads and validates page 0 into pg->h; the file must hold every page the
 * header counts. */
int pager_load_header(pager *pg, int check_size, uint64_t known_change)
{
    off_t sz;
    ssize_t r = read_full(pg, pg->hbuf, 0);
    int rc;
    kvs_hdr h;
    if (r < 0)
        return kvs_seterrno(pg->err, errno, 0, "read of the header failed");
    pg->reads++;
    rc = hdr_decode(pg->hbuf, (size_t)r, &h, pg->err);
    if (rc)
        return rc;
    if (!check_size && hdr_change(&h) == known_change) {
        pg->h = h;
        return KVS_OK;
    }
    sz = pg->os->filesize(pg->fd);
    if (sz < 0)
        return kvs_seterrno(pg->err, errno, 0, "fstat failed");
    if (sz < (off_t)hdr_npages(&h) * PG_SIZE)
        return kvs_seterr(pg->err, KVS_ETRUNCATED, (uint32_t)(sz / PG_SIZE),
                          "page %u: file is %lld bytes but its header counts %u pages (%lld bytes)",
                          (unsigned)(sz / PG_SIZE), (long long)sz, (unsigned)hdr_npages(&h),
                          (long long)hdr_npages(&h) * PG_SIZE);
    pg->h = h;
    return KVS_OK;
}

int pager_store_header(pager *pg)
{
    int rc;
    if (pg->rdonly)
        return kvs_seterr(pg->err, KVS_ERDONLY, 0, "write to a read-only handle");
    rc = undo_save(pg, 0, 1);
    if (rc)
        return rc;
    /* the upgrade of a version-1/2 file happens here, at its first header
     * write, never on a read: it gets its id (a failed write-out rereads
     * the header, so the id is only kept once it is on disk) */
    hdr_upgrade(&pg->h);
    hdr_encode(&pg->h, pg->hbuf);
    if (pager_write_all(pg->os, pg->fd, pg->hbuf, PG_SIZE, 0) != 0)
        return kvs_seterrno(pg->err, errno, 0, "write of the header failed");
    pg->writes++;
    return KVS_OK;
}

int pager_sync(pager *pg)
{
    if (pg->os->fsync(pg->fd) != 0)
        return kvs_seterrno(pg->err, errno, 0, "fsync failed");
    return KVS_OK;
}

/* flock with LOCK_NB in a loop so the host can interrupt the wait; the host
 * hears when a wait begins and ends (every way out of the loop). */
int pager_lock(pager *pg, int exclusive, int (*interrupted)(void *), void *arg,
               void (*lock_wait)(void *, int), void *wait_arg)
{
    int op = (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
    long sleep_us = 50;
    int waiting = 0, rc;
    for (;;) {
        struct timespec ts;
        if (pg->os->flock(pg->fd, op) == 0) {
            rc = KVS_OK;
            break;
        }
        if (errno != EWOULDBLOCK && errno != EAGAIN && errno != EINTR) {
            rc = kvs_seterrno(pg->err, errno, 0, "flock failed");
            break;
        }
        if (!waiting && lock_wait) {
            lock_wait(wait_arg, 1);
            waiting = 1;
        }
        if (interrupted && interrupted(arg)) {
            rc = kvs_seterr(pg->err, KVS_EINTR, 0, "lock wait interrupted");
            break;
        }
        ts.tv_sec = 0;
        ts.tv_nsec = sleep_us * 1000;
        nanosleep(&ts, NULL);
        if (sleep_us < 5000)
            sleep_us *= 2;
    }
    if (waiting)
        lock_wait(wait_arg, 0);
    return rc;
}

int pager_unlock(pager *pg)
{
    if (pg->os->flock(pg->fd, LOCK_UN) != 0)
        return kvs_seterrno(pg->err, errno, 0, "flock(LOCK_UN) failed");
    return KVS_OK;
}
