/*
 * salvage.c - reading what survives of a damaged file (kvs_salvage_*, see
 * kvs.h and README "Salvage").
 *
 * The normal open trusts the header (page count, directory root, free list)
 * and every read follows links from it, so one bad header or directory page
 * makes everything unreadable.  Salvage trusts nothing but each page's own
 * checksum and structure: it reads the file page by page, from page 1 to the
 * last whole page the file holds, and returns the records of every bucket or
 * overflow page that passes both checks (pager_checksum, page_validate),
 * whatever the header says and whether or not any chain still reaches the
 * page.  An external value is read by following its value chain, checking
 * every page of it the same way plus its type and the chain's shape (as
 * vchain.c does); a record whose chain fails is skipped and counted, never
 * returned with a partial value.
 *
 * Memory: two page buffers and one grow-only value buffer per handle; the
 * slices handed out point into them.  Nothing is allocated per record.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include "kvs.h"
#include "pager.h"
#include "filelock.h"
#include "page.h"

/* Value bytes per value page (vchain.h's VCHAIN_DATA). */
#define SALV_VDATA PG_USABLE
/* How often the page loop asks the host whether to stop. */
#define SALV_POLL 1024

struct kvs_salvage {
    kvs_err     err;
    pager      *pg;             /* page reads; no header, no pool */
    const kvs_os *os;
    int         fd;             /* the lock is on it */
    int         locked;
    int       (*interrupted)(void *);
    void       *interrupt_arg;
    uint32_t    npages;         /* whole pages the file holds */
    uint32_t    pgno;           /* page whose records are being returned */
    uint32_t    slot;           /* next slot of that page */
    int         have_page;      /* page[] holds a valid slotted page */
    kvs_salvage_stats st;
    uint32_t    desc_len;       /* if st.header_ok: the host's descriptor */
    uint8_t     desc[KVS_MAX_DESCRIPTOR];
    uint8_t    *vbuf;           /* external values, grow-only */
    size_t      vcap;
    uint8_t     page[PG_SIZE];
    uint8_t     vpage[PG_SIZE];
};

static char salvage_open_errmsg[700];

const char *kvs_salvage_open_errmsg(void)
{
    return salvage_open_errmsg;
}

int kvs_salvage_descriptor(const kvs_salvage *s, kvs_slice *out)
{
    out->data = s->desc;
    out->len = s->desc_len;
    return s->st.header_ok ? KVS_OK : KVS_NOTFOUND;
}

const char *kvs_salvage_errmsg(const kvs_salvage *s)
{
    return s->err.msg;
}

static int all_zero(const uint8_t *p)
{
    size_t i;
    for (i = 0; i < PG_SIZE; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Reads page pgno into buf; 1 if it passed its checksum, 0 if not (counted
 * by the caller), < 0 on a read error. */
static int read_checked(kvs_salvage *s, uint32_t pgno, uint8_t *buf)
{
    int rc = pager_read_raw(s->pg, pgno, buf);
    if (rc)
        return rc;
    return rd64(buf + PG_CKSUM) == pager_checksum(buf, pgno);
}

int kvs_salvage_open(const char *path, const kvs_options *opt, kvs_salvage **out)
{
    const kvs_os *os = opt && opt->os ? opt->os : kvs_os_posix();
    kvs_salvage *s;
    off_t size = 0;
    kvs_hdr h;
    kvs_err herr;
    int fd, rc;

    *out = NULL;
    salvage_open_errmsg[0] = 0;
    if (!path) {
        snprintf(salvage_open_errmsg, sizeof salvage_open_errmsg, "no path");
        return KVS_EINVAL;
    }
    fd = os->open(path, O_RDONLY, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(salvage_open_errmsg, sizeof salvage_open_errmsg, "%.300s: cannot open file: %s",
                 path, strerror(e));
        return (e == ENOSPC || e == EDQUOT) ? KVS_ENOSPC : KVS_EIO;
    }
    s = calloc(1, sizeof *s);
    if (s) {
        s->pg = pager_new(os, fd, 1, &s->err);
        if (!s->pg) {
            free(s);
            s = NULL;
        }
    }
    if (!s) {
        os->close(fd);
        snprintf(salvage_open_errmsg, sizeof salvage_open_errmsg, "%.300s: out of memory", path);
        return KVS_ENOMEM;
    }
    s->os = os;
    s->fd = fd;
    if (opt) {
        s->interrupted = opt->interrupted;
        s->interrupt_arg = opt->interrupt_arg;
    }
    /* a shared lock for the handle's life: no writer rewrites pages while
     * they are read (a damaged file may still be written by a handle that
     * has not met the damage) */
    {
        filelock_hooks hooks;
        /* unknown owner: a host's hold is noticed (KVS_EBUSY), not read
         * through -- unless the caller is that host (it passes its shared
         * pool): its handles hold the file, and its own writers are its to
         * keep out (the FDW takes its writers' lock around a salvage) */
        hooks.owner = opt && opt->pool ? 0 : FILELOCK_OWNER_UNKNOWN;
        /* a private caller's own host (its owner id) has no pool on it */
        hooks.self = opt && !opt->pool ? opt->owner_id : 0;
        hooks.interrupted = s->interrupted;
        hooks.interrupt_arg = s->interrupt_arg;
        hooks.lock_wait = opt ? opt->lock_wait : NULL;
        hooks.lock_wait_arg = opt ? opt->lock_wait_arg : NULL;
        rc = filelock_take(os, fd, 0, &hooks, &s->err);
    }
    if (rc == KVS_OK) {
        s->locked = 1;
        size = os->filesize(fd);
        if (size < 0)
            rc = kvs_seterrno(&s->err, errno, 0, "cannot stat file");
    }
    if (rc) {
        snprintf(salvage_open_errmsg, sizeof salvage_open_errmsg, "%.300s: %.320s", path, s->err.msg);
        kvs_salvage_close(s);
        return rc;
    }
    s->npages = (uint64_t)size / PG_SIZE > 0xffffffffu ? 0xffffffffu : (uint32_t)((uint64_t)size / PG_SIZE);
    s->st.file_pages = s->npages;
    s->st.partial_page_bytes = (uint64_t)size % PG_SIZE;
    /* page 0: only informative (counts to compare with); never required */
    memset(&herr, 0, sizeof herr);
    if (s->npages > 0) {
        rc = pager_read_raw(s->pg, 0, s->page);
        s->st.pages_read++;
        if (rc != KVS_OK)
            s->st.pages_unreadable++;
        else if (hdr_decode(s->page, PG_SIZE, &h, &herr) == KVS_OK) {
            s->st.header_ok = 1;
            s->st.header_records = h.records;
            s->st.header_pages = h.npages;
            s->desc_len = h.desc_len <= KVS_MAX_DESCRIPTOR ? h.desc_len : 0;
            memcpy(s->desc, h.desc, s->desc_len);
            s->st.pages_other++;
        } else if (all_zero(s->page))
            s->st.pages_zero++;
        else if (rd64(s->page + PG_CKSUM) != pager_checksum(s->page, 0))
            s->st.pages_bad_checksum++;
        else
            s->st.pages_bad_structure++;
    }
    if (!s->st.header_ok)
        snprintf(s->st.header_error, sizeof s->st.header_error, "%s",
                 s->npages == 0 ? "file is shorter than one page" : herr.msg);
    s->pgno = 0;
    *out = s;
    return KVS_OK;
}

void kvs_salvage_close(kvs_salvage *s)
{
    if (!s)
        return;
    if (s->locked)
        (void)filelock_release(s->os, s->fd, &s->err);
    s->os->close(s->fd);
    pager_free(s->pg);
    free(s->vbuf);
    free(s);
}

void kvs_salvage_stats_get(const kvs_salvage *s, kvs_salvage_stats *st)
{
    *st = s->st;
}

/* Room for n value bytes (doubling, so a chain is read in O(len)). */
static int vbuf_reserve(kvs_salvage *s, size_t n)
{
    size_t cap = s->vcap ? s->vcap : PG_SIZE;
    uint8_t *nb;
    if (n <= s->vcap)
        return KVS_OK;
    while (cap < n)
        cap *= 2;
    nb = realloc(s->vbuf, cap);
    if (!nb)
        return kvs_seterr(&s->err, KVS_ENOMEM, 0, "out of memory for a %zu-byte value", n);
    s->vbuf = nb;
    s->vcap = cap;
    return KVS_OK;
}

/* Reads the value chain of record r into vbuf.  KVS_OK, KVS_ECORRUPT (the
 * chain is damaged: err says where), or a hard error (EIO, ENOMEM).  The
 * buffer grows only as pages pass, so a record whose length field lies
 * costs no more memory than its chain really holds. */
static int read_chain(kvs_salvage *s, const rec_view *r)
{
    uint32_t pgno = r->vpage, steps = 0;
    size_t left = r->vlen, done = 0;
    while (left > 0) {
        uint32_t used, next, want = left < SALV_VDATA ? (uint32_t)left : SALV_VDATA;
        int rc;
        if (pgno == NO_PAGE || pgno >= s->npages)
            return kvs_seterr(&s->err, KVS_ECORRUPT, pgno,
                              "value chain reaches page %u, beyond the file's %u pages",
                              (unsigned)pgno, (unsigned)s->npages);
        rc = read_checked(s, pgno, s->vpage);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return kvs_seterr(&s->err, KVS_ECORRUPT, pgno, "value page %u: checksum mismatch",
                              (unsigned)pgno);
        rc = page_validate(s->vpage, pgno, 0xffffffffu, &s->err);
        if (rc)
            return rc;
        used = rd32(s->vpage + PG_AUX);
        next = rd32(s->vpage + PG_NEXT);
        if (s->vpage[PG_TYPE] != KVS_PAGE_VALUE)
            return kvs_seterr(&s->err, KVS_ECORRUPT, pgno, "page %u: expected a value page, found type %u",
                              (unsigned)pgno, s->vpage[PG_TYPE]);
        if (used != want || (left <= SALV_VDATA) != (next == NO_PAGE))
            return kvs_seterr(&s->err, KVS_ECORRUPT, pgno,
                              "value page %u holds %u bytes, next %u, with %zu bytes of the value left",
                              (unsigned)pgno, (unsigned)used, (unsigned)next, left);
        rc = vbuf_reserve(s, done + used);
        if (rc)
            return rc;
        memcpy(s->vbuf + done, s->vpage + PG_HDR, used);
        done += used;
        left -= used;
        pgno = next;
        if (++steps % SALV_POLL == 0 && s->interrupted && s->interrupted(s->interrupt_arg))
            return kvs_seterr(&s->err, KVS_EINTR, 0, "salvage interrupted");
    }
    return KVS_OK;
}

/* Loads the next page that holds records into s->page. */
static int next_page(kvs_salvage *s)
{
    uint32_t polled = 0;
    for (;;) {
        int rc, type;
        if (s->pgno + 1 >= s->npages) {
            s->pgno = s->npages;
            return KVS_NOTFOUND;
        }
        s->pgno++;
        if (++polled % SALV_POLL == 0 && s->interrupted && s->interrupted(s->interrupt_arg))
            return kvs_seterr(&s->err, KVS_EINTR, 0, "salvage interrupted");
        s->st.pages_read++;
        rc = read_checked(s, s->pgno, s->page);
        if (rc < 0) {
            /* a page that cannot be read is skipped like a damaged one:
             * the point of salvage is to get past it */
            s->st.pages_unreadable++;
            continue;
        }
        if (rc == 0) {
            if (all_zero(s->page))
                s->st.pages_zero++;
            else
                s->st.pages_bad_checksum++;
            continue;
        }
        /* links are not followed here, so they are not range-checked
         * against a page count nobody can trust: a record's value chain is
         * checked page by page when it is read */
        if (page_validate(s->page, s->pgno, 0xffffffffu, &s->err) != KVS_OK) {
            s->st.pages_bad_structure++;
            continue;
        }
        type = s->page[PG_TYPE];
        if (type != KVS_PAGE_BUCKET && type != KVS_PAGE_OVERFLOW) {
            s->st.pages_other++;
            continue;
        }
        s->st.pages_records++;
        s->slot = 0;
        s->have_page = 1;
        return KVS_OK;
    }
}

int kvs_salvage_next(kvs_salvage *s, kvs_salvage_rec *out)
{
    for (;;) {
        rec_view r;
        int rc;
        if (!s->have_page || s->slot >= sp_nslots(s->page)) {
            s->have_page = 0;
            rc = next_page(s);
            if (rc)
                return rc;
            continue;
        }
        sp_record(s->page, s->slot, &r);
        out->pageno = s->pgno;
        out->slot = s->slot++;
        out->page_type = s->page[PG_TYPE];
        out->bucket = rd32(s->page + PG_AUX);
        out->stamp = r.stamp;
        out->key.data = r.key;
        out->key.len = r.klen;
        if (r.flags & REC_EXTERNAL) {
            rc = read_chain(s, &r);
            if (rc == KVS_ECORRUPT) {
                s->st.records_bad_value++;
                continue;
            }
            if (rc)
                return rc;
            out->value.data = s->vbuf;
        } else
            out->value.data = r.val;
        out->value.len = r.vlen;
        s->st.records++;
        return KVS_OK;
    }
}
