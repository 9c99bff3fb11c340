/*
 * journal.c - the write-ahead journal of page images (kvs.h, "the
 * journal"; README.md, "The journal"): the directory (control file mapped
 * shared, lock files, one segment per checkpoint epoch), appending records
 * under the append lock, group commit under the flush lock, the in-flight
 * registry, the index of record headers, recovery of one file, and the
 * checkpoint.
 *
 * LSN: epoch << 40 | byte offset in that epoch's segment "seg-<epoch>".  A
 * checkpoint starts a new epoch (a new, empty segment) and removes the old
 * one, so LSNs only grow and the journal since the last checkpoint is always
 * the current segment from offset 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "journal.h"
#include "pager.h"

#define JR_EPOCH_SHIFT 40
#define JR_OFF_MASK    ((UINT64_C(1) << JR_EPOCH_SHIFT) - 1)
#define JR_LSN(epoch, off) (((uint64_t)(epoch) << JR_EPOCH_SHIFT) | (off))

/* ---- record format (README, "Record") ---- */
#define JR_MAGIC      0x524a564bu    /* "KVJR" */
#define JR_FORMAT     1u
#define JR_HDR        512
#define JR_PATH_MAX   (JR_HDR - 96 - 1)
#define JR_ENTRY      (8 + PG_SIZE)  /* u32 page number, u32 zero, the image */
#define JR_BATCH      64             /* entries the staging buffer holds */
#define RH_MAGIC      0
#define RH_FORMAT     4
#define RH_LEN        8
#define RH_CKSUM      16
#define RH_LSN        24
#define RH_XID        32
#define RH_FILEID     40
#define RH_DEV        48
#define RH_INO        56
#define RH_NPAGES     64
#define RH_NIMG       68
#define RH_FLAGS      72
#define RH_PATHLEN    76
#define RH_CHANGE     80   /* the change counter of the header it writes */
#define RH_RESV       88
#define RH_PATH       96
#define RF_TRUNCATE   0x1u

/* ---- segment preallocation (README, "Segment") ---- */
#define JR_PREALLOC      (UINT64_C(4) << 20)   /* zeros written ahead of the end */
#define JR_PREALLOC_LOW  (UINT64_C(1) << 20)   /* extend when less is left */

/* ---- control file (README, "Control file"), mapped MAP_SHARED ---- */
#define JC_MAGIC      "KVSJCTL1"
#define JC_INFLIGHT   240
#define JC_GEN_BITS   3
#define JC_GENS       (1u << JC_GEN_BITS)
typedef struct jctl {
    char     magic[8];        /*   0 */
    uint64_t version;         /*   8  1 */
    char     boot_id[48];     /*  16  /proc/sys/kernel/random/boot_id when last written */
    uint64_t epoch;           /*  64  current segment */
    uint64_t end;             /*  72  LSN where the next record goes */
    uint64_t durable;         /*  80  fsynced through */
    uint64_t checkpoint;      /*  88  every record before it is in its file, fsynced */
    uint64_t reboot;          /*  96  records before it come from an earlier boot; 0 none */
    uint64_t failed;          /* 104  a flush failed: the next open treats it as a reboot */
    uint64_t overflow;        /* 112  in-flight records the registry had no room for */
    uint64_t pad;             /* 120 */
    struct { uint64_t pid, lsn; } inflight[JC_INFLIGHT];   /* 128 .. 3968 */
    /* 3968 .. 4024: the counters of every process since the control file
     * was made (kvs_journal_stats_cluster), added to atomically; zeros in
     * a control file an older version made, which ignores them */
    struct jcounters {
        uint64_t records, bytes, flushes, flush_shared, checkpoints,
                 recovered_records, recovered_pages;
    } all;
    /* 4024 .. 4088: write generations (README, "Change generations");
     * zeros in a control file an older version made, which never writes
     * past its own struct (4024 at most) */
    uint64_t gen[JC_GENS];
    uint64_t reserved;        /* 4088 .. 4096 */
} jctl;
typedef char jctl_fits_[sizeof(jctl) == 4096 ? 1 : -1];
typedef char jctl_gen_at_[offsetof(jctl, gen) == 4024 && offsetof(jctl, all) == 3968 ? 1 : -1];

/* Adds n to a counter of this process's and to the cluster's. */
#define COUNT(j, field, n) do { \
        uint64_t n_ = (n); \
        (j)->st.field += n_; \
        __atomic_fetch_add(&(j)->ctl->all.field, n_, __ATOMIC_RELAXED); \
    } while (0)

/* One record in the in-process index. */
typedef struct jidx {
    uint64_t lsn, len, xid, cc;
    jr_ident id;
} jidx;

struct kvs_journal {
    kvs_journal_options o;
    const kvs_os *os;
    char     *dir;
    int       lockfd, flushfd, ctlfd, segfd;
    uint64_t  seg_epoch;
    uint64_t  seg_known;      /* the segment is at least this long (it only grows) */
    jctl     *ctl;
    int       locked;         /* the append lock is held (nesting count) */
    int       failed;
    char      errmsg[400];
    int       errnum;         /* errno of the failure in errmsg, 0 none */
    int       rd_errno;       /* a record read failed (not a bad record): its errno */
    /* the record being composed */
    uint8_t  *buf;            /* JR_BATCH entries, then reads in recovery */
    uint32_t  nbuf;
    uint8_t   rh[JR_HDR];
    uint64_t  rec_lsn, rec_off, rec_wpos;
    uint32_t  rec_nimg;
    int       rec_slot;       /* registry slot, -1 = counted in overflow */
    int       rec_err;
    XXH3_state_t *xs;
    /* index of the current epoch's records */
    jidx     *idx;
    size_t    nidx, capidx;
    uint64_t  idx_epoch, idx_end;
    kvs_journal_stats st;
};

/* ---- small helpers ---- */

static int jfail(kvs_journal *j, int code, int err, const char *fmt, const char *what)
{
    snprintf(j->errmsg, sizeof j->errmsg, fmt, what, err ? strerror(err) : "");
    j->errnum = err;
    return code;
}

static int report(kvs_journal *j, kvs_err *e, int rc)
{
    if (e && rc) {
        kvs_seterr(e, rc, 0, "journal %.200s: %.300s", j->dir, j->errmsg);
        e->sys_errno = j->errnum;   /* kvs_errno(): the failed call's errno */
    }
    return rc;
}

static uint64_t aload(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void astore(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static int lock_fd(int fd, int op)
{
    int r;
    do
        r = flock(fd, op);
    while (r != 0 && errno == EINTR);
    return r;
}

static int append_lock(kvs_journal *j)
{
    if (j->locked++)
        return KVS_OK;
    if (lock_fd(j->lockfd, LOCK_EX) != 0) {
        j->locked = 0;
        return jfail(j, KVS_EIO, errno, "%s: %s", "cannot lock the journal");
    }
    return KVS_OK;
}

static void append_unlock(kvs_journal *j)
{
    if (j->locked > 0 && --j->locked == 0)
        (void)lock_fd(j->lockfd, LOCK_UN);
}

/* Through the I/O table, like every file access: a test's table stands in
 * a new boot id when it simulates a power loss. */
static void read_boot_id(const kvs_os *os, char *out, size_t len)
{
    int fd = os->open("/proc/sys/kernel/random/boot_id", O_RDONLY, 0);
    ssize_t n = -1;
    memset(out, 0, len);
    if (fd >= 0) {
        n = os->pread(fd, out, len - 1, 0);
        os->close(fd);
    }
    if (n < 0)
        n = 0;
    out[n] = 0;
    out[strcspn(out, "\n")] = 0;
}

static int seg_path(const kvs_journal *j, uint64_t epoch, char *buf, size_t len)
{
    return snprintf(buf, len, "%s/seg-%016llx", j->dir, (unsigned long long)epoch) < (int)len;
}

/* Through the I/O table too: a test's table undoes, at a simulated power
 * loss, the names created in a directory since its last fsync. */
static int fsync_dir(const kvs_os *os, const char *dir)
{
    int fd = os->open(dir, O_RDONLY | O_DIRECTORY, 0), rc;
    if (fd < 0)
        return -1;
    rc = os->fsync(fd);
    os->close(fd);
    return rc;
}

static int sync_ctl(kvs_journal *j)
{
    if (msync(j->ctl, sizeof(jctl), MS_SYNC) != 0 || j->os->fsync(j->ctlfd) != 0)
        return jfail(j, KVS_EIO, errno, "%s: %s", "cannot sync the control file");
    return KVS_OK;
}

/* The segment of the control file's epoch, opened (created if `create`). */
static int seg_open(kvs_journal *j, int create)
{
    char p[PATH_MAX];
    uint64_t epoch = aload(&j->ctl->epoch);
    int fd;
    if (j->segfd >= 0 && j->seg_epoch == epoch)
        return KVS_OK;
    if (!seg_path(j, epoch, p, sizeof p))
        return jfail(j, KVS_EINVAL, 0, "%s%s", "journal path too long");
    fd = j->os->open(p, O_RDWR | (create ? O_CREAT : 0), 0600);
    if (fd < 0)
        return jfail(j, KVS_EIO, errno, "%s: %s", "cannot open the journal segment");
    if (j->segfd >= 0)
        j->os->close(j->segfd);
    j->segfd = fd;
    j->seg_epoch = epoch;
    j->seg_known = 0;
    return KVS_OK;
}

/* ---- record headers ---- */

static uint64_t rec_checksum(const uint8_t *rh, uint64_t body_hash)
{
    return XXH3_64bits_withSeed(rh + RH_LSN, JR_HDR - RH_LSN, body_hash);
}

/* Reads and sanity-checks the header of the record at offset off of the
 * current segment (expected LSN lsn); 1 = plausible, 0 = the log ends. */
static int rec_read_header(kvs_journal *j, uint64_t off, uint64_t lsn, uint8_t *rh, off_t segsize)
{
    ssize_t r = pager_read_all(j->os, j->segfd, rh, JR_HDR, (off_t)off);
    uint64_t len;
    if (r < 0)
        j->rd_errno = errno ? errno : EIO;
    if (r != JR_HDR || rd32(rh + RH_MAGIC) != JR_MAGIC || rd32(rh + RH_FORMAT) != JR_FORMAT ||
        rd64(rh + RH_LSN) != lsn)
        return 0;
    len = rd64(rh + RH_LEN);
    if (len != JR_HDR + (uint64_t)rd32(rh + RH_NIMG) * JR_ENTRY || off + len > (uint64_t)segsize ||
        rd32(rh + RH_PATHLEN) > JR_PATH_MAX)
        return 0;
    return 1;
}

/* The record's hash covers each entry's first 16 bytes (page number, 0,
 * and the image's own page checksum, which covers the rest of the image,
 * seeded with the page number): composing a record hashes 16 bytes a page,
 * not 4104; verifying it checks every image's checksum too. */
static void hash_entries(kvs_journal *j, const uint8_t *b, size_t n)
{
    size_t k;
    for (k = 0; k < n; k += JR_ENTRY)
        XXH3_64bits_update(j->xs, b + k, 16);
}

/* Verifies the whole record at off (header rh): every image's checksum
 * and the record's. */
static int rec_verify(kvs_journal *j, uint64_t off, const uint8_t *rh)
{
    uint64_t len = rd64(rh + RH_LEN), pos = JR_HDR;
    XXH3_64bits_reset(j->xs);
    while (pos < len) {
        size_t n = len - pos > (uint64_t)JR_BATCH * JR_ENTRY ? (size_t)JR_BATCH * JR_ENTRY : (size_t)(len - pos), k;
        ssize_t r = pager_read_all(j->os, j->segfd, j->buf, n, (off_t)(off + pos));
        if (r != (ssize_t)n) {
            if (r < 0)
                j->rd_errno = errno ? errno : EIO;
            return 0;
        }
        for (k = 0; k < n; k += JR_ENTRY)
            if (pager_checksum(j->buf + k + 8, rd32(j->buf + k)) != rd64(j->buf + k + 8))
                return 0;
        hash_entries(j, j->buf, n);
        pos += n;
    }
    return rec_checksum(rh, XXH3_64bits_digest(j->xs)) == rd64(rh + RH_CKSUM);
}

/* ---- the index ---- */

static int idx_add(kvs_journal *j, const uint8_t *rh)
{
    jidx *e;
    if (j->nidx == j->capidx) {
        size_t cap = j->capidx ? j->capidx * 2 : 256;
        jidx *n = realloc(j->idx, cap * sizeof *n);
        if (!n)
            return jfail(j, KVS_ENOMEM, 0, "%s%s", "out of memory (journal index)");
        j->idx = n;
        j->capidx = cap;
    }
    e = &j->idx[j->nidx++];
    e->lsn = rd64(rh + RH_LSN);
    e->len = rd64(rh + RH_LEN);
    e->xid = rd64(rh + RH_XID);
    e->cc = rd64(rh + RH_CHANGE);
    e->id.file_id = rd64(rh + RH_FILEID);
    e->id.dev = rd64(rh + RH_DEV);
    e->id.ino = rd64(rh + RH_INO);
    return KVS_OK;
}

/* Brings the index up to the control file's end: one header read per new
 * record (they are complete: the end moves past a record only once it is
 * written).  A new epoch starts it again. */
static int idx_refresh(kvs_journal *j)
{
    uint64_t end, off;
    off_t segsize;
    int rc = seg_open(j, 0);
    if (rc)
        return rc;
    end = aload(&j->ctl->end);
    if (j->idx_epoch != j->seg_epoch || (end >> JR_EPOCH_SHIFT) != j->seg_epoch) {
        j->nidx = 0;
        j->idx_epoch = j->seg_epoch;
        j->idx_end = JR_LSN(j->seg_epoch, 0);
        if ((end >> JR_EPOCH_SHIFT) != j->seg_epoch)
            return KVS_OK;      /* a checkpoint is switching: nothing yet */
    }
    if (j->idx_end >= end)
        return KVS_OK;
    segsize = j->os->filesize(j->segfd);
    for (off = j->idx_end & JR_OFF_MASK; JR_LSN(j->seg_epoch, off) < end;) {
        uint8_t rh[JR_HDR];
        if (!rec_read_header(j, off, JR_LSN(j->seg_epoch, off), rh, segsize))
            return jfail(j, KVS_EIO, 0, "%s%s", "a record below the journal's end is unreadable");
        rc = idx_add(j, rh);
        if (rc)
            return rc;
        off += rd64(rh + RH_LEN);
    }
    j->idx_end = JR_LSN(j->seg_epoch, off);
    return KVS_OK;
}

/* ---- open / close ---- */

/* After a reboot (or a failed flush): nothing the control file says beyond
 * what was fsynced is trusted.  The segment is scanned record by record,
 * each checksum verified; the log ends at the first bad or short one.
 * What is there is fsynced (it survived, it is durable from now on), and
 * every record before it counts as "from an earlier boot" (reboot LSN):
 * files replay all of them at their next open. */
static int restart(kvs_journal *j, const char *boot)
{
    uint64_t off = 0;
    off_t segsize;
    int rc = seg_open(j, 1);
    if (rc)
        return rc;
    segsize = j->os->filesize(j->segfd);
    j->rd_errno = 0;
    for (;;) {
        uint8_t rh[JR_HDR];
        if (!rec_read_header(j, off, JR_LSN(j->seg_epoch, off), rh, segsize) || !rec_verify(j, off, rh))
            break;
        off += rd64(rh + RH_LEN);
    }
    /* a record the disk could not read is not the end of the log: taking
     * it for one would drop every commit after it */
    if (j->rd_errno)
        return jfail(j, KVS_EIO, j->rd_errno, "%s: %s", "cannot read the journal segment");
    if (j->os->fsync(j->segfd) != 0)
        return jfail(j, KVS_EIO, errno, "%s: %s", "cannot fsync the journal segment");
    j->ctl->end = j->ctl->durable = JR_LSN(j->seg_epoch, off);
    j->ctl->reboot = off > 0 ? j->ctl->end : 0;
    /* after a reboot no process of the old one lives; after a failed
     * flush, in-flight sections of live processes stay registered */
    if (memcmp(j->ctl->boot_id, boot, sizeof j->ctl->boot_id) != 0) {
        memset(j->ctl->inflight, 0, sizeof j->ctl->inflight);
        j->ctl->overflow = 0;
    }
    j->ctl->failed = 0;
    memcpy(j->ctl->boot_id, boot, sizeof j->ctl->boot_id);
    return sync_ctl(j);
}

void kvs_journal_options_init(kvs_journal_options *o)
{
    memset(o, 0, sizeof(*o));
}

int kvs_journal_close(kvs_journal *j)
{
    if (!j)
        return KVS_OK;
    if (j->ctl)
        munmap(j->ctl, 4096);
    if (j->segfd >= 0)
        j->os->close(j->segfd);
    if (j->ctlfd >= 0)
        j->os->close(j->ctlfd);
    if (j->flushfd >= 0)
        j->os->close(j->flushfd);
    if (j->lockfd >= 0)
        j->os->close(j->lockfd);
    free(j->xs);
    free(j->idx);
    free(j->buf);
    free(j->dir);
    free(j);
    return KVS_OK;
}

static int open_in(kvs_journal *j, const char *name, int *fd)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", j->dir, name);
    *fd = j->os->open(p, O_RDWR | O_CREAT, 0600);
    if (*fd < 0)
        return jfail(j, KVS_EIO, errno, "%s: %s", name);
    return KVS_OK;
}

static char journal_open_err[500];

const char *kvs_journal_errmsg(const kvs_journal *j)
{
    return j ? j->errmsg : journal_open_err;
}

int kvs_journal_open(const char *dir, const kvs_journal_options *o, kvs_journal **out)
{
    kvs_journal *j;
    char real[PATH_MAX], boot[48];
    int rc, fresh;
    void *m;
    *out = NULL;
    if (!dir || !*dir)
        return KVS_EINVAL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(journal_open_err, sizeof journal_open_err, "%.300s: cannot create: %s", dir,
                 strerror(errno));
        return KVS_EIO;
    }
    if (!realpath(dir, real)) {
        snprintf(journal_open_err, sizeof journal_open_err, "%.300s: %s", dir, strerror(errno));
        return KVS_EIO;
    }
    if (strlen(real) > KVS_HDR_JPATH_MAX) {
        snprintf(journal_open_err, sizeof journal_open_err,
                 "%.300s: the journal's absolute path is longer than %d bytes", real, KVS_HDR_JPATH_MAX);
        return KVS_EINVAL;
    }
    j = calloc(1, sizeof *j);
    if (!j)
        return KVS_ENOMEM;
    if (o)
        j->o = *o;
    j->os = j->o.os ? j->o.os : kvs_os_posix();
    j->lockfd = j->flushfd = j->ctlfd = j->segfd = -1;
    if (!j->o.checkpoint_bytes)
        j->o.checkpoint_bytes = (uint64_t)64 << 20;
    j->dir = malloc(strlen(real) + 1);
    j->buf = malloc((size_t)JR_BATCH * JR_ENTRY);
    /* the hash state by hand, not XXH3_createState: its block is aligned by
     * an offset, and a pointer into a block reads as a leak to valgrind */
    {
        void *xs = NULL;
        if (posix_memalign(&xs, 64, sizeof(XXH3_state_t)) == 0)
            j->xs = xs;
    }
    if (!j->dir || !j->buf || !j->xs) {
        kvs_journal_close(j);
        return KVS_ENOMEM;
    }
    strcpy(j->dir, real);
    rc = open_in(j, "lock", &j->lockfd);
    if (!rc)
        rc = open_in(j, "flush", &j->flushfd);
    if (!rc)
        rc = open_in(j, "control", &j->ctlfd);
    if (!rc)
        rc = append_lock(j);
    if (rc)
        goto fail;
    fresh = j->os->filesize(j->ctlfd) < 4096;
    if (fresh && j->os->ftruncate(j->ctlfd, 4096) != 0) {
        rc = jfail(j, KVS_EIO, errno, "%s: %s", "cannot size the control file");
        goto unlock;
    }
    m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, j->ctlfd, 0);
    if (m == MAP_FAILED) {
        rc = jfail(j, KVS_EIO, errno, "%s: %s", "cannot map the control file");
        goto unlock;
    }
    j->ctl = m;
    read_boot_id(j->os, boot, sizeof boot);
    if (memcmp(j->ctl->magic, JC_MAGIC, 8) != 0) {
        /* a new journal: epoch 1, empty */
        memset(j->ctl, 0, sizeof(jctl));
        j->ctl->version = 1;
        j->ctl->epoch = 1;
        j->ctl->end = j->ctl->durable = j->ctl->checkpoint = JR_LSN(1, 0);
        memcpy(j->ctl->boot_id, boot, sizeof boot);
        rc = seg_open(j, 1);
        if (!rc && fsync_dir(j->os, j->dir) != 0)
            rc = jfail(j, KVS_EIO, errno, "%s: %s", "cannot fsync the journal directory");
        if (!rc) {
            memcpy(j->ctl->magic, JC_MAGIC, 8);
            rc = sync_ctl(j);
        }
    } else if (memcmp(j->ctl->boot_id, boot, sizeof boot) != 0 || j->ctl->failed) {
        rc = restart(j, boot);
    } else {
        rc = seg_open(j, 1);
    }
unlock:
    append_unlock(j);
    if (rc)
        goto fail;
    *out = j;
    return KVS_OK;
fail:
    snprintf(journal_open_err, sizeof journal_open_err, "%.200s: %.290s", dir, j->errmsg);
    kvs_journal_close(j);
    return rc;
}

int jr_errno(const kvs_journal *j)
{
    return j->errnum;
}

const char *jr_dir(const kvs_journal *j)
{
    return j->dir;
}

void jr_fstate_of(jr_fstate *fs, const kvs_hdr *h, const char *dir)
{
    uint32_t n;
    const char *p = hdr_journal_path(h, &n);
    fs->hdr_ok = 1;
    fs->cc = hdr_change(h);
    fs->same_dir = n == strlen(dir) && memcmp(p, dir, n) == 0;
    fs->lsn = fs->same_dir ? hdr_journal_lsn(h) : 0;
}

/* ---- failure ---- */

int jr_check(kvs_journal *j, kvs_err *err)
{
    if (!j->failed && aload(&j->ctl->failed)) {
        j->failed = 1;
        jfail(j, 0, 0, "%s%s", "another process's fsync of the journal failed; reopen to recover");
    }
    if (j->failed)
        return report(j, err, KVS_EJOURNAL);
    return KVS_OK;
}

/* A failed fsync: this process and every other stop using the journal
 * (their next prepare or flush fails); the next open treats it as a
 * reboot, since the kernel may have dropped the pages it could not write. */
static int mark_failed(kvs_journal *j, int e, const char *what)
{
    j->failed = 1;
    astore(&j->ctl->failed, 1);
    return jfail(j, KVS_EJOURNAL, e, "%s failed (%s); never retried as if it had worked: "
                 "writes are refused until the files are reopened and recovered", what);
}

/* ---- group commit ---- */

int kvs_journal_flush(kvs_journal *j, uint64_t lsn)
{
    uint64_t target;
    int rc = jr_check(j, NULL);
    if (rc)
        return rc;
    /* durable is always the end of a record: the record at lsn is durable
     * once it has passed lsn */
    if (lsn == 0 || aload(&j->ctl->durable) > lsn) {
        COUNT(j, flush_shared, lsn != 0);
        return KVS_OK;
    }
    if (lock_fd(j->flushfd, LOCK_EX) != 0)
        return jfail(j, KVS_EIO, errno, "%s: %s", "cannot lock the journal for a flush");
    /* another flusher may have covered us while we waited: group commit */
    if (aload(&j->ctl->durable) > lsn) {
        (void)lock_fd(j->flushfd, LOCK_UN);
        COUNT(j, flush_shared, 1);
        return KVS_OK;
    }
    /* everything appended so far goes with this fsync (the segment of lsn:
     * a checkpoint since has made it durable, and durable > lsn then) */
    target = aload(&j->ctl->end);
    rc = seg_open(j, 0);
    if (rc == KVS_OK && (target >> JR_EPOCH_SHIFT) == j->seg_epoch) {
        /* fdatasync where the I/O table is POSIX's (a size change is
         * flushed too: rare, see prealloc); a host's or a test's table
         * has fsync only */
        int r = j->os == kvs_os_posix() ? fdatasync(j->segfd) : j->os->fsync(j->segfd);
        if (r != 0)
            rc = mark_failed(j, errno, "fsync of the journal");
        if (rc == KVS_OK) {
            uint64_t d = aload(&j->ctl->durable);
            while (d < target && !__atomic_compare_exchange_n(&j->ctl->durable, &d, target, 0,
                                                               __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                ;
            COUNT(j, flushes, 1);
        }
    }
    (void)lock_fd(j->flushfd, LOCK_UN);
    return rc;
}

int jr_flush(kvs_journal *j, uint64_t lsn, kvs_err *err)
{
    return report(j, err, kvs_journal_flush(j, lsn));
}

/* ---- the in-flight registry ---- */

static void registry_add(kvs_journal *j, uint64_t lsn)
{
    int i;
    j->rec_slot = -1;
    for (i = 0; i < JC_INFLIGHT; i++)
        if (j->ctl->inflight[i].pid == 0) {
            j->ctl->inflight[i].lsn = lsn;
            astore(&j->ctl->inflight[i].pid, (uint64_t)getpid());
            j->rec_slot = i;
            return;
        }
    j->ctl->overflow++;
}

/* Removes the entry of lsn (append lock held): this process's own if
 * `own` (two entries can share an LSN: a process that died composing its
 * record left one at the LSN the next record takes), else any. */
static void registry_drop_pid(kvs_journal *j, uint64_t lsn, int own)
{
    int i;
    for (i = 0; i < JC_INFLIGHT; i++)
        if (j->ctl->inflight[i].pid != 0 && j->ctl->inflight[i].lsn == lsn &&
            (!own || j->ctl->inflight[i].pid == (uint64_t)getpid())) {
            astore(&j->ctl->inflight[i].pid, 0);
            return;
        }
    if (j->ctl->overflow > 0)
        j->ctl->overflow--;
}

static void registry_drop(kvs_journal *j, uint64_t lsn)
{
    registry_drop_pid(j, lsn, 0);
}

void jr_done(kvs_journal *j, uint64_t lsn)
{
    uint64_t me = (uint64_t)getpid();
    int i;
    if (lsn == 0)
        return;
    /* this process's own entry leaves without the append lock: only this
     * process writes it while it lives (its file's exclusive lock keeps
     * every recovery of that file out), a registrant claims only a slot
     * it reads free, and a checkpoint that no longer sees it finds the
     * write-back already in the file (the pwrites came before this store) */
    for (i = 0; i < JC_INFLIGHT; i++)
        if (aload(&j->ctl->inflight[i].pid) == me && j->ctl->inflight[i].lsn == lsn) {
            astore(&j->ctl->inflight[i].pid, 0);
            return;
        }
    /* not registered (the registry was full): the overflow count, locked */
    if (append_lock(j) != KVS_OK)
        return;
    registry_drop_pid(j, lsn, 1);
    append_unlock(j);
}

/* ---- appending ---- */

static int checkpoint_locked(kvs_journal *j, int force);

/* Keeps zeros written ahead of the record at off (append lock held), as
 * PostgreSQL does with its WAL segments: an fdatasync of a segment that
 * grew must also commit its new size and extents (the filesystem's own
 * journal: here it made a small durable commit 2.4x slower), one over
 * blocks already allocated and synced writes the data alone.  The zeros
 * become durable with the next flush, the one flush in about 4 MiB of
 * records that still pays for a size change.  Zeros end the log as a torn
 * header does (no magic, no LSN of this place). */
static int prealloc(kvs_journal *j, uint64_t off)
{
    off_t size;
    uint64_t from, to;
    /* a segment is never shortened (a checkpoint starts a new one): what
     * this process last saw of its size holds, and spares the fstat of
     * all but one record in ~3 MiB */
    if (j->seg_known >= off + JR_PREALLOC_LOW)
        return KVS_OK;
    size = j->os->filesize(j->segfd);
    if (size < 0)
        return jfail(j, KVS_EIO, errno, "%s: %s", "cannot stat the journal segment");
    j->seg_known = (uint64_t)size;
    if ((uint64_t)size >= off + JR_PREALLOC_LOW)
        return KVS_OK;
    from = (uint64_t)size > off ? (uint64_t)size : off;
    to = off + JR_PREALLOC;
    memset(j->buf, 0, (size_t)JR_BATCH * JR_ENTRY);     /* the staging buffer is idle */
    while (from < to) {
        size_t n = (size_t)(to - from < (uint64_t)JR_BATCH * JR_ENTRY ? to - from
                                                                       : (uint64_t)JR_BATCH * JR_ENTRY);
        if (pager_write_all(j->os, j->segfd, j->buf, n, (off_t)from) != 0)
            return jfail(j, errno == ENOSPC ? KVS_ENOSPC : KVS_EIO, errno, "%s: %s",
                         "write of the journal failed");
        from += n;
    }
    j->seg_known = to;
    return KVS_OK;
}

static int stage_write(kvs_journal *j)
{
    size_t n = (size_t)j->nbuf * JR_ENTRY;
    if (!n)
        return KVS_OK;
    hash_entries(j, j->buf, n);
    if (pager_write_all(j->os, j->segfd, j->buf, n, (off_t)j->rec_wpos) != 0)
        return jfail(j, errno == ENOSPC ? KVS_ENOSPC : KVS_EIO, errno, "%s: %s",
                     "write of the journal failed");
    j->rec_wpos += n;
    j->nbuf = 0;
    return KVS_OK;
}

int jr_begin(kvs_journal *j, const jr_ident *id, uint64_t xid, uint64_t change, const char *path,
             uint64_t *lsn, kvs_err *err)
{
    size_t plen = strlen(path);
    int rc = jr_check(j, err);
    if (rc)
        return rc;
    if (plen > JR_PATH_MAX)
        return kvs_seterr(err, KVS_EINVAL, 0, "path longer than the journal's %d bytes", JR_PATH_MAX);
    rc = append_lock(j);
    if (!rc && aload(&j->ctl->end) - aload(&j->ctl->checkpoint) >= j->o.checkpoint_bytes)
        rc = checkpoint_locked(j, 0);
    if (!rc)
        rc = seg_open(j, 0);
    if (!rc)
        rc = prealloc(j, aload(&j->ctl->end) & JR_OFF_MASK);
    if (rc) {
        append_unlock(j);
        return report(j, err, rc);
    }
    j->rec_lsn = aload(&j->ctl->end);
    j->rec_off = j->rec_lsn & JR_OFF_MASK;
    j->rec_wpos = j->rec_off + JR_HDR;
    j->rec_nimg = 0;
    j->rec_err = 0;
    j->nbuf = 0;
    memset(j->rh, 0, JR_HDR);
    wr32(j->rh + RH_MAGIC, JR_MAGIC);
    wr32(j->rh + RH_FORMAT, JR_FORMAT);
    wr64(j->rh + RH_LSN, j->rec_lsn);
    wr64(j->rh + RH_XID, xid);
    wr64(j->rh + RH_FILEID, id->file_id);
    wr64(j->rh + RH_DEV, id->dev);
    wr64(j->rh + RH_INO, id->ino);
    wr32(j->rh + RH_PATHLEN, (uint32_t)plen);
    wr64(j->rh + RH_CHANGE, change);
    memcpy(j->rh + RH_PATH, path, plen);
    XXH3_64bits_reset(j->xs);
    /* an entry already at this LSN is a process's that died composing its
     * record (records are composed one at a time, under the append lock,
     * and the end has not moved past it): no record of it exists to
     * replay, and left there it would stand for ours */
    {
        int i;
        for (i = 0; i < JC_INFLIGHT; i++)
            if (j->ctl->inflight[i].pid != 0 && j->ctl->inflight[i].lsn == j->rec_lsn)
                astore(&j->ctl->inflight[i].pid, 0);
    }
    registry_add(j, j->rec_lsn);
    *lsn = j->rec_lsn;
    return KVS_OK;
}

int jr_page(void *arg, uint32_t pgno, const uint8_t *page)
{
    kvs_journal *j = arg;
    uint8_t *e = j->buf + (size_t)j->nbuf * JR_ENTRY;
    wr32(e, pgno);
    wr32(e + 4, 0);
    memcpy(e + 8, page, PG_SIZE);
    j->rec_nimg++;
    if (++j->nbuf == JR_BATCH && (j->rec_err = stage_write(j)) != 0)
        return j->rec_err;
    return KVS_OK;
}

void jr_cancel(kvs_journal *j)
{
    registry_drop_pid(j, j->rec_lsn, 1);
    append_unlock(j);
}

int jr_finish(kvs_journal *j, uint32_t npages, int truncated, kvs_err *err)
{
    uint64_t len;
    int rc = j->rec_err ? j->rec_err : stage_write(j);
    if (rc) {
        jr_cancel(j);
        return report(j, err, rc);
    }
    len = JR_HDR + (uint64_t)j->rec_nimg * JR_ENTRY;
    wr64(j->rh + RH_LEN, len);
    wr32(j->rh + RH_NPAGES, npages);
    wr32(j->rh + RH_NIMG, j->rec_nimg);
    wr32(j->rh + RH_FLAGS, truncated ? RF_TRUNCATE : 0);
    wr64(j->rh + RH_CKSUM, rec_checksum(j->rh, XXH3_64bits_digest(j->xs)));
    /* the header last: a record is only seen whole (a torn one fails its
     * checksum and ends the log) */
    if (pager_write_all(j->os, j->segfd, j->rh, JR_HDR, (off_t)j->rec_off) != 0) {
        rc = jfail(j, errno == ENOSPC ? KVS_ENOSPC : KVS_EIO, errno, "%s: %s",
                   "write of the journal failed");
        jr_cancel(j);
        return report(j, err, rc);
    }
    astore(&j->ctl->end, j->rec_lsn + len);
    append_unlock(j);
    COUNT(j, records, 1);
    COUNT(j, bytes, len);
    return KVS_OK;
}

/* ---- recovery ---- */

static int matches(const jidx *e, const jr_ident *id, int hdr_ok)
{
    return e->id.dev == id->dev && e->id.ino == id->ino && (!hdr_ok || e->id.file_id == id->file_id);
}

/* Writes the images of the record e into fd (its checksum verified first). */
static int replay_one(kvs_journal *j, const kvs_os *os, int fd, const jidx *e, kvs_err *err)
{
    uint8_t rh[JR_HDR];
    uint64_t off = e->lsn & JR_OFF_MASK, pos = JR_HDR;
    uint32_t npages;
    off_t sz;
    /* the file changes under the caller's exclusive lock: readers that skip
     * the header reread must know */
    jr_gen_bump(j, e->id.ino);
    if (pager_read_all(j->os, j->segfd, rh, JR_HDR, (off_t)off) != JR_HDR || !rec_verify(j, off, rh))
        return kvs_seterr(err, KVS_EIO, 0, "journal %.200s: the record at LSN %llx is damaged",
                          j->dir, (unsigned long long)e->lsn);
    while (pos < e->len) {
        size_t n = e->len - pos > (uint64_t)JR_BATCH * JR_ENTRY ? (size_t)JR_BATCH * JR_ENTRY
                                                                : (size_t)(e->len - pos), k;
        if (pager_read_all(j->os, j->segfd, j->buf, n, (off_t)(off + pos)) != (ssize_t)n)
            return kvs_seterrno(err, errno ? errno : EIO, 0, "read of the journal failed");
        for (k = 0; k < n; k += JR_ENTRY) {
            uint32_t pgno = rd32(j->buf + k);
            if (pager_write_all(os, fd, j->buf + k + 8, PG_SIZE, (off_t)pgno * PG_SIZE) != 0)
                return kvs_seterrno(err, errno, pgno, "recovery: write failed");
            COUNT(j, recovered_pages, 1);
        }
        pos += n;
    }
    npages = rd32(rh + RH_NPAGES);
    sz = os->filesize(fd);
    if ((rd32(rh + RH_FLAGS) & RF_TRUNCATE) || sz < (off_t)npages * PG_SIZE)
        if (os->ftruncate(fd, (off_t)npages * PG_SIZE) != 0)
            return kvs_seterrno(err, errno, 0, "recovery: ftruncate failed");
    COUNT(j, recovered_records, 1);
    return KVS_OK;
}

/* After a replay of everything since the checkpoint (a reboot): the header
 * says the file holds every record before the reboot LSN, so later opens
 * use the ordinary rule. */
static int stamp_header(const kvs_os *os, int fd, uint64_t lsn, const char *dir, kvs_err *err)
{
    uint8_t pg[PG_SIZE];
    kvs_hdr h;
    kvs_err tmp;
    if (pager_read_all(os, fd, pg, PG_SIZE, 0) != PG_SIZE || hdr_decode(pg, PG_SIZE, &h, &tmp) != KVS_OK ||
        hdr_journal_lsn(&h) >= lsn)
        return KVS_OK;
    hdr_set_journal(&h, lsn, dir, strlen(dir));
    hdr_encode(&h, pg);
    if (pager_write_all(os, fd, pg, PG_SIZE, 0) != 0)
        return kvs_seterrno(err, errno, 0, "recovery: write of the header failed");
    return KVS_OK;
}

static int xid_outcome(kvs_journal *j, uint64_t xid)
{
    if (xid == 0)
        return KVS_XID_COMMITTED;
    if (!j->o.xid_status)
        return -1;
    return j->o.xid_status(j->o.xid_arg, xid);
}

static int in_flight(kvs_journal *j, uint64_t lsn)
{
    int i;
    for (i = 0; i < JC_INFLIGHT; i++)
        if (aload(&j->ctl->inflight[i].pid) != 0 && j->ctl->inflight[i].lsn == lsn)
            return 1;
    return 0;
}

/* Which records of the file recovery looks at, in order (README,
 * "Recovery"): those of its identity, and of them
 *  - "all" (after a reboot, for a file not recovered since: its writes
 *    since the checkpoint may be lost): every one since the checkpoint;
 *  - else (a process crash): those still in the in-flight registry, i.e.
 *    prepared and not written back (the write-back of every other one is in
 *    the kernel's cache, or its section was aborted).  So a byte copy of
 *    the file put at its inode is never replayed over.  If the registry
 *    overflowed, also the records after the header's LSN that continue its
 *    change counter (a record writes the header of counter c + 1 over a
 *    file at c).  *next: that counter. */
static int candidate(kvs_journal *j, const jidx *e, const jr_ident *id, const jr_fstate *fs, int all,
                     uint64_t next)
{
    if (!matches(e, id, fs->hdr_ok))
        return 0;
    if (all || in_flight(j, e->lsn))
        return 1;
    return j->ctl->overflow && fs->hdr_ok && (!fs->same_dir || e->lsn > fs->lsn) && e->cc == next;
}

/* The index positions recovery looks at, in LSN order: every record
 * (returns j->nidx and leaves pos alone) when all are candidates or the
 * registry overflowed, else only the registry's (at most JC_INFLIGHT, found
 * by binary search: the index is in LSN order). */
static size_t scan_set(kvs_journal *j, int all, uint32_t *pos, int *every)
{
    size_t n = 0, k;
    int i;
    *every = all || j->ctl->overflow;
    if (*every)
        return j->nidx;
    for (i = 0; i < JC_INFLIGHT; i++) {
        uint64_t lsn = j->ctl->inflight[i].lsn;
        size_t lo = 0, hi = j->nidx;
        if (aload(&j->ctl->inflight[i].pid) == 0)
            continue;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (j->idx[mid].lsn < lsn)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < j->nidx && j->idx[lo].lsn == lsn) {
            /* insertion in order */
            for (k = n; k > 0 && pos[k - 1] > lo; k--)
                pos[k] = pos[k - 1];
            pos[k] = (uint32_t)lo;
            n++;
        }
    }
    return n;
}

static int replay_all(kvs_journal *j, const jr_fstate *fs)
{
    uint64_t reboot = aload(&j->ctl->reboot);
    return reboot != 0 && (!fs->hdr_ok || !fs->same_dir || fs->lsn < reboot);
}

int jr_pending(kvs_journal *j, const jr_ident *id, const jr_fstate *fs, kvs_err *err)
{
    uint32_t pos[JC_INFLIGHT];
    size_t k, m = 0;
    int rc = append_lock(j), n = 0, all, every = 0;
    if (!rc)
        rc = idx_refresh(j);
    all = replay_all(j, fs);
    if (!rc)
        m = scan_set(j, all, pos, &every);
    for (k = 0; !rc && k < m; k++)
        n += candidate(j, &j->idx[every ? k : pos[k]], id, fs, all, fs->cc + 1);
    append_unlock(j);
    return rc ? report(j, err, rc) : n;
}

int jr_recover(kvs_journal *j, const kvs_os *os, int fd, const jr_ident *id, const jr_fstate *fs,
               uint64_t *indoubt, uint32_t *replayed, kvs_err *err)
{
    uint64_t reboot, last = 0, next = fs->cc + 1;
    uint32_t pos[JC_INFLIGHT];
    size_t i, k, m;
    int rc, all, every;
    *indoubt = 0;
    *replayed = 0;
    rc = append_lock(j);        /* the index and the registry stay still */
    if (!rc)
        rc = idx_refresh(j);
    if (rc) {
        append_unlock(j);
        return report(j, err, rc);
    }
    reboot = aload(&j->ctl->reboot);
    all = replay_all(j, fs);
    /* replaying everything since the checkpoint passes through older
     * states of the file: only if every record resolves (none in doubt),
     * else nothing, so the file never stays at an older state */
    for (i = 0; all && i < j->nidx; i++)
        if (candidate(j, &j->idx[i], id, fs, all, next) && j->idx[i].xid != 0 && !j->o.xid_status) {
            *indoubt = j->idx[i].xid;
            append_unlock(j);
            return KVS_OK;
        }
    m = scan_set(j, all, pos, &every);
    for (k = 0; k < m && rc == KVS_OK; k++) {
        const jidx *e = &j->idx[every ? k : pos[k]];
        int st;
        if (!candidate(j, e, id, fs, all, next))
            continue;
        st = xid_outcome(j, e->xid);
        if (st == -1 && !j->o.xid_status) {
            *indoubt = e->xid;
            break;
        }
        if (st < 0) {
            rc = kvs_seterr(err, st, 0, "journal %.200s: xid_status(%llu) failed", j->dir,
                            (unsigned long long)e->xid);
            break;
        }
        if (st == KVS_XID_IN_PROGRESS)
            continue;
        if (st == KVS_XID_COMMITTED) {
            rc = replay_one(j, os, fd, e, err);
            if (rc)
                break;
            (*replayed)++;
            last = e->lsn;
            next = e->cc + 1;
        }
        registry_drop(j, e->lsn);
    }
    append_unlock(j);
    if (rc == KVS_OK && all && reboot != 0 && *indoubt == 0)
        rc = stamp_header(os, fd, last > reboot ? last : reboot, j->dir, err);
    if (rc == KVS_OK && (*replayed || all) && os->fsync(fd) != 0)
        rc = kvs_seterrno(err, errno, 0, "recovery: fsync of the file failed");
    return rc;
}

/* ---- checkpoint ---- */

/* The header at path: its identity matches id and its journal LSN.  0 =
 * the file is gone or another one now (nothing to do for it). */
static int file_state(kvs_journal *j, const char *path, const jr_ident *id, int *fd_out, uint64_t *hlsn,
                      jr_fstate *fs)
{
    struct stat st;
    uint8_t pg[PG_SIZE];
    kvs_hdr h;
    kvs_err tmp;
    int fd = j->os->open(path, O_RDWR, 0);
    *fd_out = -1;
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_dev != id->dev || (uint64_t)st.st_ino != id->ino) {
        j->os->close(fd);
        return 0;
    }
    *hlsn = 0;
    memset(fs, 0, sizeof *fs);
    if (pager_read_all(j->os, fd, pg, PG_SIZE, 0) == PG_SIZE && hdr_decode(pg, PG_SIZE, &h, &tmp) == KVS_OK) {
        if (hdr_file_id(&h) != id->file_id) {
            j->os->close(fd);
            return 0;
        }
        jr_fstate_of(fs, &h, j->dir);
        *hlsn = fs->same_dir ? hdr_journal_lsn(&h) : 0;
    }
    *fd_out = fd;
    return 1;
}

static int record_path(kvs_journal *j, uint64_t lsn, char *path)
{
    uint8_t rh[JR_HDR];
    uint32_t n;
    if (pager_read_all(j->os, j->segfd, rh, JR_HDR, (off_t)(lsn & JR_OFF_MASK)) != JR_HDR)
        return 0;
    n = rd32(rh + RH_PATHLEN);
    if (n > JR_PATH_MAX)
        return 0;
    memcpy(path, rh + RH_PATH, n);
    path[n] = 0;
    return 1;
}

static const jidx *idx_find(kvs_journal *j, uint64_t lsn)
{
    size_t i;
    for (i = 0; i < j->nidx; i++)
        if (j->idx[i].lsn == lsn)
            return &j->idx[i];
    return NULL;
}

/* Whether the checkpoint may pass every record: none in flight in a live
 * process; one a dead process left (killed between prepare and its
 * write-back) only once its file's header says it is written back or the
 * file is gone. */
static int registry_clear(kvs_journal *j)
{
    int i;
    if (j->ctl->overflow)
        return 0;
    for (i = 0; i < JC_INFLIGHT; i++) {
        uint64_t pid = aload(&j->ctl->inflight[i].pid), lsn = j->ctl->inflight[i].lsn;
        const jidx *e;
        char path[JR_PATH_MAX + 1];
        int fd;
        uint64_t hlsn;
        jr_fstate fst;
        if (pid == 0)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            return 0;
        e = idx_find(j, lsn);
        if (!e) {
            /* appended nothing (died while composing), or of an old epoch */
            if (lsn >= aload(&j->ctl->end) || lsn < aload(&j->ctl->checkpoint))
                astore(&j->ctl->inflight[i].pid, 0);
            else
                return 0;
            continue;
        }
        if (!record_path(j, lsn, path))
            return 0;
        if (file_state(j, path, &e->id, &fd, &hlsn, &fst)) {
            j->os->close(fd);
            if (hlsn < lsn)
                return 0;       /* its file must be opened (recovered) first */
        }
        astore(&j->ctl->inflight[i].pid, 0);
    }
    return 1;
}

/* After a reboot, every file named before the reboot LSN must have been
 * recovered (its header stamped past the reboot) before the records go:
 * those not yet are recovered here if nobody has them open (LOCK_NB). */
static int reboot_files_done(kvs_journal *j, char *path)
{
    uint64_t reboot = aload(&j->ctl->reboot);
    size_t i;
    if (reboot == 0)
        return 1;
    for (i = 0; i < j->nidx && j->idx[i].lsn < reboot; i++) {
        const jidx *e = &j->idx[i];
        uint64_t hlsn, indoubt;
        uint32_t n;
        kvs_err tmp;
        jr_fstate fst;
        int fd, ok;
        if (!record_path(j, e->lsn, path))
            return 0;
        if (!file_state(j, path, &e->id, &fd, &hlsn, &fst))
            continue;
        ok = fst.hdr_ok && hlsn >= reboot;
        if (!ok && flock(fd, LOCK_EX | LOCK_NB) == 0) {
            ok = jr_recover(j, j->os, fd, &e->id, &fst, &indoubt, &n, &tmp) == KVS_OK && indoubt == 0;
            (void)flock(fd, LOCK_UN);
        }
        j->os->close(fd);
        if (!ok)
            return 0;
    }
    astore(&j->ctl->reboot, 0);
    return 1;
}

/* The checkpoint (append lock held): fsyncs every file named since the last
 * one, then starts a new epoch (a new, empty segment) and removes the old
 * segment.  Skipped (KVS_OK, nothing done) while a record is in flight or,
 * after a reboot, a file named before it is not recovered yet. */
static int checkpoint_locked(kvs_journal *j, int force)
{
    char path[JR_PATH_MAX + 1], p[PATH_MAX];
    uint64_t old_epoch, ne;
    size_t i, k;
    int rc = idx_refresh(j);
    (void)force;
    if (rc)
        return rc;
    if (j->nidx == 0 && aload(&j->ctl->reboot) == 0)
        return KVS_OK;
    if (!registry_clear(j) || !reboot_files_done(j, path))
        return KVS_OK;
    for (i = 0; i < j->nidx; i++) {
        const jidx *e = &j->idx[i];
        uint64_t hlsn;
        jr_fstate fst;
        int fd, seen = 0;
        for (k = 0; k < i && !seen; k++)
            seen = j->idx[k].id.dev == e->id.dev && j->idx[k].id.ino == e->id.ino &&
                   j->idx[k].id.file_id == e->id.file_id;
        if (seen || !record_path(j, e->lsn, path) || !file_state(j, path, &e->id, &fd, &hlsn, &fst))
            continue;
        if (j->os->fsync(fd) != 0) {
            int er = errno;
            j->os->close(fd);
            return mark_failed(j, er, "fsync of a file at a checkpoint");
        }
        j->os->close(fd);
    }
    /* the new epoch's segment exists (and is durable in the directory)
     * before the control file points at it */
    old_epoch = j->ctl->epoch;
    ne = old_epoch + 1;
    if (!seg_path(j, ne, p, sizeof p))
        return jfail(j, KVS_EINVAL, 0, "%s%s", "journal path too long");
    {
        int fd = j->os->open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            return jfail(j, KVS_EIO, errno, "%s: %s", "cannot create a journal segment");
        j->os->close(fd);
    }
    if (fsync_dir(j->os, j->dir) != 0)
        return jfail(j, KVS_EIO, errno, "%s: %s", "cannot fsync the journal directory");
    j->ctl->epoch = ne;
    astore(&j->ctl->checkpoint, JR_LSN(ne, 0));
    astore(&j->ctl->durable, JR_LSN(ne, 0));
    astore(&j->ctl->end, JR_LSN(ne, 0));
    rc = sync_ctl(j);
    if (rc)
        return rc;
    if (seg_path(j, old_epoch, p, sizeof p))
        (void)j->os->unlink(p);
    COUNT(j, checkpoints, 1);
    return seg_open(j, 0);
}

int kvs_journal_checkpoint(kvs_journal *j)
{
    int rc = jr_check(j, NULL);
    if (rc)
        return rc;
    rc = append_lock(j);
    if (rc)
        return rc;
    rc = checkpoint_locked(j, 1);
    append_unlock(j);
    return rc;
}

static void stats_lsns(kvs_journal *j, kvs_journal_stats *st)
{
    st->end_lsn = aload(&j->ctl->end);
    st->flushed_lsn = aload(&j->ctl->durable);
    st->checkpoint_lsn = aload(&j->ctl->checkpoint);
}

void kvs_journal_stats_get(kvs_journal *j, kvs_journal_stats *st)
{
    *st = j->st;
    stats_lsns(j, st);
}

void kvs_journal_stats_cluster(kvs_journal *j, kvs_journal_stats *st)
{
    memset(st, 0, sizeof *st);
    st->records = aload(&j->ctl->all.records);
    st->bytes = aload(&j->ctl->all.bytes);
    st->flushes = aload(&j->ctl->all.flushes);
    st->flush_shared = aload(&j->ctl->all.flush_shared);
    st->checkpoints = aload(&j->ctl->all.checkpoints);
    st->recovered_records = aload(&j->ctl->all.recovered_records);
    st->recovered_pages = aload(&j->ctl->all.recovered_pages);
    stats_lsns(j, st);
}

/* ---- change generations (README, "Change generations") ---- */

static unsigned gen_slot(uint64_t ino)
{
    return (unsigned)((ino * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - JC_GEN_BITS));
}

/* The slot's generation plus the journal's count of pages replayed: both
 * only grow, so the sum moves when either does.  The count is there for a
 * format-5 engine's recovery, the one way such an engine still writes a
 * format-6 file: it takes a header it cannot decode for a torn one and
 * replays a crashed writer's record into it, without a bump (README,
 * "Change generations"); an engine that has the cluster-wide counters
 * adds to the count as it writes each page, under the file's lock. */
uint64_t jr_gen(const kvs_journal *j, uint64_t ino)
{
    uint64_t g = __atomic_load_n(&j->ctl->gen[gen_slot(ino)], __ATOMIC_ACQUIRE);
    return g + __atomic_load_n(&j->ctl->all.recovered_pages, __ATOMIC_ACQUIRE);
}

void jr_gen_bump(kvs_journal *j, uint64_t ino)
{
    (void)__atomic_add_fetch(&j->ctl->gen[gen_slot(ino)], 1, __ATOMIC_SEQ_CST);
}

int jr_gen_bump_dir(const char *dir, size_t len, uint64_t ino, kvs_err *err)
{
    char path[PATH_MAX];
    struct stat st;
    jctl *c;
    int fd;
    if (len + sizeof "/control" > sizeof path)
        return KVS_OK;      /* no journal can have such a name: nobody maps it */
    memcpy(path, dir, len);
    memcpy(path + len, "/control", sizeof "/control");
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        /* gone (or never there): no reader counts on it */
        if (errno == ENOENT || errno == ENOTDIR)
            return KVS_OK;
        return kvs_seterrno(err, errno, 0, "cannot open the control file of the journal the file's "
                            "header names, to tell its readers of a write");
    }
    /* shorter than a page: not made yet (kvs_journal_open sizes it under
     * its append lock before it writes the magic), so nobody reads it;
     * mapped, its missing bytes would be a SIGBUS */
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return kvs_seterrno(err, e, 0, "cannot stat the control file of the journal the file's header names");
    }
    if (st.st_size < (off_t)sizeof(jctl)) {
        close(fd);
        return KVS_OK;
    }
    c = mmap(NULL, sizeof(jctl), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (c == MAP_FAILED)
        return kvs_seterrno(err, errno, 0, "cannot map the control file of the journal the file's "
                            "header names");
    if (memcmp(c->magic, JC_MAGIC, 8) == 0)
        (void)__atomic_add_fetch(&c->gen[gen_slot(ino)], 1, __ATOMIC_SEQ_CST);
    munmap(c, sizeof(jctl));
    return KVS_OK;
}
