/*
 * compact.c - compaction: the table rewritten into a new file sized for its
 * records, renamed over the old one.
 *
 * Deletes leave a file as large as it ever was (buckets never merge, freed
 * pages only go to the free list).  compact_file() builds a new file beside
 * the old one -- the bucket count the fill factor asks for the records'
 * bytes, every chain packed, no free page -- and puts it in place with
 * rename(), so the path always names one whole file: the old one until the
 * rename, the new one (complete and fsynced before the rename) after it.
 * Of the old file only the header is written: once the new file is whole
 * and fsynced, its REPLACING flag is set (and put back byte for byte if the
 * rename then fails).  The caller (kvs_compact in kvs.c) holds the old
 * file's exclusive lock throughout, and the new file's from its creation, so
 * no handle can read or write either file half-way; handles still on the
 * old file read the flag at their next section begin and move to the new
 * one (kvs.c, follow_replacement).  The protocol and its recovery are in
 * README.md, "Compaction".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kvs.h"
#include "compact.h"
#include "dir.h"
#include "vchain.h"

/* Frames of the new file's pool.  The copy visits the old buckets in scan
 * order, so it fills the new buckets one after another: a small pool holds
 * the chain being filled and the directory path to it. */
#define COMPACT_FRAMES 256
#define TWO32 ((uint64_t)1 << 32)

typedef struct copier {
    lh      *src, *dst;
    const compact_hook *hook;
    uint8_t *vbuf;            /* an external value being copied (grow-only) */
    size_t   vcap;
    uint8_t  page[PG_SIZE];   /* the old page being copied */
} copier;

/* Puts slot i of (a copy of) the old page pg into the new table: same key,
 * value and stamp, so the record's bytes are the same (but for the first
 * page of an external value). */
static int copy_record(copier *cp, const uint8_t *pg, uint32_t pgno, uint32_t i)
{
    rec_view r;
    const void *val;
    int rc;
    sp_record(pg, i, &r);
    val = r.val;
    if (r.flags & REC_EXTERNAL) {
        if (r.vlen > cp->vcap) {
            uint8_t *nb = realloc(cp->vbuf, r.vlen);
            if (!nb)
                return kvs_seterr(lh_err(cp->src), KVS_ENOMEM, 0, "out of memory for a %u-byte value",
                                  (unsigned)r.vlen);
            cp->vbuf = nb;
            cp->vcap = r.vlen;
        }
        rc = vchain_read(lh_pool(cp->src), r.vpage, r.vlen, cp->vbuf);
        if (rc)
            return rc;
        val = cp->vbuf;
    }
    lh_set_stamp(cp->dst, (r.flags & REC_STAMPED) ? r.stamp : 0);
    rc = lh_put(cp->dst, r.key, r.klen, val, r.vlen, KVS_NOOVERWRITE);
    if (rc == KVS_EXISTS)
        return kvs_seterr(lh_err(cp->src), KVS_ECORRUPT, pgno,
                          "page %u: slot %u holds a key already copied", (unsigned)pgno, (unsigned)i);
    return rc;
}

/* Every record of src into dst, bucket by bucket in scan order (so dst's
 * buckets fill one after another). */
static int copy_all(copier *cp)
{
    const kvs_hdr *h = pager_hdr(lh_pager(cp->src));
    uint64_t rev = 0, end;
    int rc;
    while (rev < TWO32) {
        uint32_t b = lh_bucket_at(h, (uint32_t)rev, &end), pgno, hops = 0;
        if (cp->hook->interrupted && cp->hook->interrupted(cp->hook->arg))
            return kvs_seterr(lh_err(cp->src), KVS_EINTR, 0, "compaction interrupted");
        rc = dir_lookup(lh_pool(cp->src), b, &pgno);
        if (rc)
            return rc;
        while (pgno != NO_PAGE) {
            uint32_t fi, i, n, next;
            uint8_t *pg;
            if (++hops > hdr_npages(h))
                return kvs_seterr(lh_err(cp->src), KVS_ECORRUPT, pgno,
                                  "page %u: chain of bucket %u is longer than the file",
                                  (unsigned)pgno, (unsigned)b);
            /* copied: value chains are read through the same pool meanwhile,
             * and no content lock may be held across those fetches */
            rc = pool_fetch(lh_pool(cp->src), pgno, 0, &fi, &pg);
            if (rc)
                return rc;
            pool_lock(lh_pool(cp->src), fi, POOL_SHARED);
            memcpy(cp->page, pg, PG_SIZE);
            pool_release(lh_pool(cp->src), fi);
            n = sp_nslots(cp->page);
            next = rd32(cp->page + PG_NEXT);
            for (i = 0, rc = KVS_OK; i < n && rc == KVS_OK; i++)
                rc = copy_record(cp, cp->page, pgno, i);
            if (rc)
                return rc;
            pgno = next;
        }
        rev = end;
    }
    return KVS_OK;
}

/* Writes the compacted copy of src into fd (an empty file) and fsyncs it;
 * *npages gets its page count. */
static int build(lh *src, int fd, const compact_hook *hook, uint32_t *npages)
{
    const kvs_hdr *sh = pager_hdr(lh_pager(src));
    kvs_hdr *nh;
    kvs_err *err = lh_err(src);
    uint8_t dirp[PG_SIZE], bucketp[PG_SIZE];
    static const pool_ident private_file = { 0, 0, 0 };
    pager *npg;
    pool_file *np = NULL;
    lh *nt = NULL;
    copier *cp;
    void *mem = NULL;
    int rc;

    cp = calloc(1, sizeof *cp);
    if (!cp || posix_memalign(&mem, PG_SIZE, pool_mem_size(COMPACT_FRAMES, 1)) != 0) {
        free(cp);
        return kvs_seterr(err, KVS_ENOMEM, 0, "out of memory for the compaction's cache");
    }
    /* no spill file: the file is private until the rename */
    npg = pager_new(pager_os(lh_pager(src)), fd, 0, err);
    if (npg)
        np = pool_file_new(pool_format(mem, COMPACT_FRAMES, 1, POOL_LRU), npg, err, NULL, NULL);
    if (np && pool_file_bind(np, &private_file) == KVS_OK)
        nt = lh_new(npg, np, err);
    if (!nt) {
        pool_file_free(np);
        pager_free(npg);
        free(mem);
        free(cp);
        return kvs_seterr(err, KVS_ENOMEM, 0, "out of memory for the compaction's cache");
    }
    lh_set_fillfactor(nt, lh_fillfactor(src));
    /* hash seed, fill factor, descriptor and stamp counter carry over: the
     * same tags (a cursor's position stays valid), stamps never reused */
    nh = pager_hdr(npg);
    hdr_derive(nh, sh);
    lh_format_new(nh, dirp, bucketp);
    cp->src = src;
    cp->dst = nt;
    cp->hook = hook;

    rc = pager_write(npg, 1, dirp);
    if (!rc)
        rc = pager_write(npg, 2, bucketp);
    if (!rc)
        /* every bucket at once (the table is empty): no split during the copy */
        rc = lh_reserve(nt, lh_buckets_for(lh_fillfactor(nt), hdr_data_bytes(sh)));
    if (!rc)
        rc = copy_all(cp);
    if (!rc && (hdr_records(nh) != hdr_records(sh) || hdr_data_bytes(nh) != hdr_data_bytes(sh) ||
                hdr_pages_of(nh, KVS_PAGE_VALUE) != hdr_pages_of(sh, KVS_PAGE_VALUE)))
        rc = kvs_seterr(err, KVS_ECORRUPT, 0,
                        "page 0: the copy holds %llu records / %llu bytes / %u value pages, "
                        "the file's header %llu / %llu / %u",
                        (unsigned long long)hdr_records(nh), (unsigned long long)hdr_data_bytes(nh),
                        (unsigned)hdr_pages_of(nh, KVS_PAGE_VALUE), (unsigned long long)hdr_records(sh),
                        (unsigned long long)hdr_data_bytes(sh), (unsigned)hdr_pages_of(sh, KVS_PAGE_VALUE));
    if (!rc)
        rc = lh_check(nt);
    if (!rc)
        rc = pool_flush(np);
    if (!rc)
        rc = pager_store_header(npg);
    if (!rc)
        rc = pager_trim(npg, 0);
    if (!rc)
        rc = pager_sync(npg);
    if (!rc)
        *npages = hdr_npages(nh);
    free(cp->vbuf);
    free(cp);
    lh_free(nt);
    pool_file_free(np);
    pager_free(npg);
    free(mem);
    return rc;
}

/* Sets REPLACING in the old file's header, written and fsynced, keeping the
 * header page as it was in before[] (*written: a write was attempted).  From
 * the rename on, every handle still on the old file reads the flag at its
 * next section begin (the caller holds the exclusive lock until then) and
 * follows the path; the new file never carries it (hdr_derive). */
static int set_replacing(lh *src, uint8_t *before, int *written)
{
    int rc = pager_read_raw(lh_pager(src), 0, before);
    if (rc)
        return rc;
    hdr_set_replacing(pager_hdr(lh_pager(src)), 1);
    *written = 1;
    rc = pager_store_header(lh_pager(src));
    if (!rc)
        rc = pager_sync(lh_pager(src));
    return rc;
}

/* The replacement failed before the rename: the old file's header page goes
 * back byte for byte.  If even that fails the file keeps the flag with no
 * new file behind it, which loses nothing: its handles see it is still at
 * the path (one fstat per section) and the next write section clears it. */
static void unset_replacing(lh *src, const uint8_t *before)
{
    pager *pg = lh_pager(src);
    hdr_set_replacing(pager_hdr(pg), 0);
    if (pager_write_image(pg, 0, before) == 0)
        (void)pager_os(pg)->fsync(pager_fd(pg));
}

/* fsync of the directory holding path, so the rename is durable. */
static int sync_dir(const kvs_os *os, const char *path, kvs_err *err)
{
    char *dir = NULL;
    const char *slash = strrchr(path, '/');
    int fd, rc = KVS_OK;
    if (slash) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (!dir)
            return kvs_seterr(err, KVS_ENOMEM, 0, "out of memory");
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    fd = os->open(dir ? dir : ".", O_RDONLY, 0);
    if (fd < 0)
        rc = kvs_seterrno(err, errno, 0, "compacted file in place, but its directory cannot be opened");
    else {
        if (os->fsync(fd) != 0)
            rc = kvs_seterrno(err, errno, 0, "compacted file in place, but fsync of its directory failed");
        os->close(fd);
    }
    free(dir);
    return rc;
}

int compact_file(lh *src, const char *path, const compact_hook *hook, int *newfd,
                 kvs_compact_info *info)
{
    const kvs_os *os = pager_os(lh_pager(src));
    kvs_err *err = lh_err(src);
    struct stat fs, ps;
    uint8_t before[PG_SIZE];
    uint32_t npages = 0;
    size_t n = strlen(path) + sizeof ".compact";
    char *tmp;
    int fd, rc, flagged = 0;

    *newfd = -1;
    if (os->fstat(pager_fd(lh_pager(src)), &fs) != 0 || os->stat(path, &ps) != 0)
        return kvs_seterrno(err, errno, 0, "cannot stat the file to compact");
    /* Only the file at path is replaced; hard links would keep the old data
     * under their other names, and the handles of those would never move. */
    if (fs.st_dev != ps.st_dev || fs.st_ino != ps.st_ino)
        return kvs_seterr(err, KVS_EINVAL, 0, "the open file is no longer the one at its path");
    if (fs.st_nlink != 1)
        return kvs_seterr(err, KVS_EINVAL, 0, "the file has %lu hard links; compaction would split them",
                          (unsigned long)fs.st_nlink);
    /* read it all once before writing anything: a damaged file is not copied */
    rc = lh_check(src);
    if (rc)
        return rc;

    tmp = malloc(n);
    if (!tmp)
        return kvs_seterr(err, KVS_ENOMEM, 0, "out of memory");
    snprintf(tmp, n, "%s.compact", path);
    /* A file of that name is a crash's leftover: whoever compacts holds the
     * exclusive lock of the file at path, as we do now. */
    (void)os->unlink(tmp);
    fd = os->open(tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        rc = kvs_seterrno(err, errno, 0, "cannot create the compacted file");
        free(tmp);
        return rc;
    }
    /* the old file's permission bits (best effort: 0600 is the safe side) */
    (void)fchmod(fd, fs.st_mode & 07777);
    /* locked before anyone can open it by the path: nobody may use the new
     * file before this handle has ended its section.  A shared pool's
     * handle locks it shared, as the hold it keeps on it: the pool's own
     * section lock excludes the pool's other handles, and a shared lock
     * taken at creation leaves no moment in which a process outside the
     * pool could take the new file's exclusive lock (a conversion would) */
    if (os->flock(fd, (hook->hold ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0)
        rc = kvs_seterrno(err, errno, 0, "cannot lock the compacted file");
    else
        rc = build(src, fd, hook, &npages);
    /* the new file is whole and fsynced: flag the old one, then rename */
    if (!rc)
        rc = set_replacing(src, before, &flagged);
    if (!rc && os->rename(tmp, path) != 0)
        rc = kvs_seterrno(err, errno, 0, "cannot rename the compacted file into place");
    if (rc) {
        if (flagged)
            unset_replacing(src, before);
        os->close(fd);
        (void)os->unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    *newfd = fd;
    if (info) {
        memset(info, 0, sizeof *info);
        info->records = hdr_records(pager_hdr(lh_pager(src)));     /* the copy's, checked equal */
        info->bytes_before = (uint64_t)fs.st_size;
        info->pages_before = hdr_npages(pager_hdr(lh_pager(src)));
        info->pages_after = npages;
        info->bytes_after = (uint64_t)npages * PG_SIZE;
    }
    return sync_dir(os, path, err);
}
