/*
 * kvs.c - the public API (kvs.h): opening and race-free creation, sections
 * (three jobs: the file lock, cache invalidation by change counter, and the
 * unit of change: write-out with undo at kvs_end, rollback at kvs_abort or
 * on failure), records, cursor, stamps,
 * descriptor, statistics, check, page inspection and error reporting.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/mman.h>
#include <xxhash.h>
#include "kvs.h"
#include "pager.h"
#include "spill.h"
#include "undo.h"
#include "filelock.h"
#include "pool.h"
#include "dir.h"
#include "page.h"
#include "lhash.h"
#include "compact.h"
#include "journal.h"

struct kvs {
    kvs_err       err;
    pager        *pg;
    spill        *spill;          /* evicted dirty pages of a write section (no-steal) */
    undo         *undo;           /* the write-out's before-images */
    char         *path;           /* spill file names, and following a compaction */
    pool_file    *pf;             /* this handle's attachment to its pool */
    pool         *pool;           /* the pool: private (poolmem) or the host's */
    lh           *t;
    void         *poolmem;        /* the private pool's block, NULL if shared */
    const kvs_os *os;
    int           section;        /* -1, KVS_READ, KVS_WRITE */
    int           failed;         /* first failure in this write section */
    int           truncated;      /* kvs_truncate in this write section: trim at the end */
    int           poisoned;       /* saw corruption: never write this file again */
    int           need_sync;      /* wrote since the last fsync */
    int           rdonly;
    int           loaded;         /* the pager's header was read from disk */
    int           ff_override;    /* fill factor given at open / set */
    int         (*interrupted)(void *);
    void         *interrupt_arg;
    void        (*lock_wait)(void *, int);
    void         *lock_wait_arg;
    uint64_t      invalidations;
    uint64_t      reopens;        /* times a compaction moved this handle to a new file */
    struct stat   moved_to;       /* the file follow_replacement moved to (for bind_file) */
    uint64_t      bound_id;       /* the file id the pool knows this file by */
    int           moved;
    int           shared;         /* the pool is shared (kvs_pool_format): sections use its locks */
    int           held;           /* shared: the section lock held (-1, KVS_READ, KVS_WRITE) */
    int           flock_held;     /* owner: holds flock(LOCK_SH) from open to close (shared pool) */
    uint64_t      host_id;        /* owner: a private handle's kvs_options.owner_id (its host's), else 0 */
    uint32_t      whole_cursors;  /* open cursors over the whole key order: the pool reads ahead */
    /* KVS_EXCLUSIVE (README, "Locking mode exclusive"): the file's lock is
     * held, exclusive, from open to close; sections take none and, once the
     * header is loaded, reread nothing */
    int           excl;
    int           excl_bumped;    /* this hold's first write section bumped the generation */
    /* KVS_LAZY (README, "Lazy write sections"): write sections end in
     * memory; the unit of change spans them until a write-out */
    int           lazy;
    int           lazy_pending;   /* lazy sections ended since the last write-out */
    int           lazy_active;    /* this write section began with some pending: pre-images on */
    int           lazy_lost;      /* a pre-image could not be kept: the abort drops all */
    uint32_t      lazy_limit;     /* write out when dirty + grown pages pass it */
    uint32_t      lazy_sect;      /* number of the current lazy section (stamps) */
    uint32_t      lazy_nbegin;    /* the page count at its kvs_begin */
    uint32_t     *lazy_stamp;     /* per page < lazy_nbegin: lazy_sect once touched in it */
    size_t        lazy_stamp_n;
    uint32_t     *pre_pg;         /* pre-images: page numbers */
    uint8_t      *pre_img;        /*             and images, PG_SIZE each */
    uint32_t      pre_n, pre_cap;
    size_t        pre_pg_cap;     /* elements of pre_pg (>= pre_cap) */
    kvs_hdr       lazy_hdr;       /* the header at the section's kvs_begin */
    /* the journal (README, "The journal") */
    kvs_journal  *j;              /* NULL for a read-only handle */
    int           own_j;          /* opened (and closed) by this handle */
    char         *abspath;        /* the file's absolute path, for the records */
    int           nosync;         /* KVS_NOSYNC: kvs_end does not wait for the flush */
    int           frames_sealed;  /* no lock callbacks: a capture seals the frames in place */
    int           prepared;       /* kvs_prepare done, kvs_commit or kvs_abort next */
    int           bumped;         /* the header is composed (change counter bumped) */
    uint64_t      prep_lsn;       /* its record, 0 = nothing to write */
    int           jbroken;        /* a write-back failed: the file needs recovery */
    int           torn;           /* ... and was not undone (KVS_EXCLUSIVE): no section at all */
    uint64_t      indoubt;        /* xid of a record recovery could not resolve */
    uint8_t      *capmap;         /* unit_prepare: grown pages captured (a bit each) */
    size_t        capmap_bytes;
    /* change generations (README, "Change generations"): while gen_ok, the
     * header in memory is the file's as long as the journal's generation
     * of the inode is still gen_seen */
    uint64_t      ino, dev;       /* the open file's inode (bind_file, shared_join) */
    int           ino_ok;
    int           gen_ok;
    uint64_t      gen_seen;
    /* KVS_READ1 (README, "Read sections without the lock"): the section
     * holds one get; unlocked while it took no lock (the pool's gate takes
     * it before a read from the file); read1_gets: 0 before its get, 1
     * during it, 2 after */
    int           read1;
    int           unlocked;
    int           read1_gets;
    uint8_t       pagebuf[PG_SIZE];
};

struct kvs_cursor {
    kvs       *db;
    lh_cursor *c;
    int        whole;     /* over the whole key order (no range set): counted in db->whole_cursors */
};

static char open_errmsg[700];

const char *kvs_open_errmsg(void)
{
    return open_errmsg;
}

const char *kvs_strerror(int rc)
{
    switch (rc) {
    case KVS_OK: return "ok";
    case KVS_NOTFOUND: return "not found";
    case KVS_EXISTS: return "key exists";
    case KVS_ECORRUPT: return "file is corrupt";
    case KVS_ENOTKVS: return "not a kvs file";
    case KVS_EVERSION: return "unsupported kvs file format version";
    case KVS_ETOOBIG: return "key, value or descriptor too large";
    case KVS_EIO: return "I/O error";
    case KVS_ENOSPC: return "no space left on device";
    case KVS_ENOMEM: return "out of memory";
    case KVS_EINVAL: return "invalid argument or call order";
    case KVS_EINTR: return "interrupted while waiting for a lock";
    case KVS_ERDONLY: return "write outside a write section or on a read-only handle";
    case KVS_ETRUNCATED: return "file is truncated";
    case KVS_EBUSY: return "file is in use";
    case KVS_EINDOUBT: return "journal holds a commit in doubt";
    case KVS_EJOURNAL: return "journal failed; reopen to recover";
    default: return "unknown error";
    }
}

const char *kvs_errmsg(const kvs *db) { return db ? db->err.msg : open_errmsg; }
uint32_t kvs_errpage(const kvs *db) { return db ? db->err.page : 0; }
int kvs_errno(const kvs *db) { return db ? db->err.sys_errno : 0; }

void kvs_options_init(kvs_options *opt)
{
    memset(opt, 0, sizeof *opt);
}

/* ---- creation -------------------------------------------------------------- */

/* Builds a complete new file under a temporary name and link()s it into
 * place: whoever links first wins, and everyone then opens that one file,
 * which is never seen half-written. */
static int create_file(const char *path, const kvs_options *opt, const kvs_os *os, kvs_err *err)
{
    static unsigned counter;
    uint8_t pages[3][PG_SIZE];
    kvs_hdr h;
    char *tmp;
    size_t n = strlen(path) + 64;
    int fd, rc = KVS_OK, i;
    hdr_init(&h, opt->hash_seed, opt->fillfactor ? opt->fillfactor : 75, opt->descriptor,
             opt->descriptor_len);
    lh_format_new(&h, pages[1], pages[2]);
    hdr_encode(&h, pages[0]);
    pager_seal(pages[1], 1);
    pager_seal(pages[2], 2);
    tmp = malloc(n);
    if (!tmp)
        return kvs_seterr(err, KVS_ENOMEM, 0, "out of memory");
    snprintf(tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
    fd = os->open(tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        rc = kvs_seterrno(err, errno, 0, "cannot create temporary file");
        free(tmp);
        return rc;
    }
    for (i = 0; i < 3 && rc == KVS_OK; i++)
        if (pager_write_all(os, fd, pages[i], PG_SIZE, (off_t)i * PG_SIZE) != 0)
            rc = kvs_seterrno(err, errno, (uint32_t)i, "cannot write new file");
    if (rc == KVS_OK && os->fsync(fd) != 0)
        rc = kvs_seterrno(err, errno, 0, "cannot fsync new file");
    os->close(fd);
    if (rc == KVS_OK && os->link(tmp, path) != 0 && errno != EEXIST)
        rc = kvs_seterrno(err, errno, 0, "cannot link new file into place");
    os->unlink(tmp);
    free(tmp);
    return rc;
}

/* ---- open / close ---------------------------------------------------------- */

/* owner: a shared pool's handle holds LOCK_SH on its file from open to close
 * (and on each file follow_replacement moves it to), so no process outside
 * the pool writes the file meanwhile (kvs.h, "A shared pool's sections"). */
/* The host's wait callbacks, for a file-lock wait. */
static void lock_hooks(const kvs *db, filelock_hooks *hooks, uint64_t owner)
{
    memset(hooks, 0, sizeof *hooks);
    hooks->interrupted = db->interrupted;
    hooks->interrupt_arg = db->interrupt_arg;
    hooks->lock_wait = db->lock_wait;
    hooks->lock_wait_arg = db->lock_wait_arg;
    hooks->owner = owner;
    hooks->self = db->host_id;
}

static int hold_take(kvs *db)
{
    filelock_hooks hooks;
    lock_hooks(db, &hooks, 0);
    if (filelock_hold_shared(db->os, pager_fd(db->pg), &hooks, &db->err) != KVS_OK)
        return db->err.code;
    db->flock_held = 1;
    return KVS_OK;
}

/* KVS_EXCLUSIVE: the exclusive lock on the descriptor, waited for as a
 * write section's (the host's callbacks; KVS_EBUSY for a file a host's
 * shared pool holds), kept until kvs_close or the descriptor's close.
 * Also on each file a compaction moves the handle to (follow_replacement;
 * kvs_compact's new file comes locked). */
static int excl_take(kvs *db)
{
    filelock_hooks hooks;
    lock_hooks(db, &hooks, FILELOCK_OWNER_UNKNOWN);
    if (filelock_take(db->os, pager_fd(db->pg), 1, &hooks, &db->err) != KVS_OK) {
        /* a new descriptor left unlocked (follow_replacement interrupted):
         * sections take the lock again, each its own, rather than run
         * without one */
        db->excl = 0;
        return db->err.code;
    }
    db->excl = 1;
    db->excl_bumped = 0;
    return KVS_OK;
}

static int owner_refused(kvs *db, uint64_t had, uint64_t me)
{
    return kvs_seterr(&db->err, KVS_EBUSY, 0,
                      "the file belongs to owner %llu (the PostgreSQL cluster with that system "
                      "identifier), not to this one (%llu); KVS_ADOPT takes it over",
                      (unsigned long long)had, (unsigned long long)me);
}

/* owner: the open of a shared pool's handle with an owner id.  The header
 * names none: this handle records `me` (a small write section; a
 * read-only handle records nothing).  It names another: KVS_EBUSY, unless
 * `adopt`, which records `me` instead. */
static int owner_claim(kvs *db, uint64_t me, int adopt)
{
    uint64_t had = hdr_owner(pager_hdr(db->pg));
    int rc;
    if (had == me)
        return KVS_OK;
    if (had != 0 && !adopt)
        return owner_refused(db, had, me);
    if (db->rdonly)
        return KVS_OK;
    rc = kvs_begin(db, KVS_WRITE);
    if (rc)
        return rc;
    /* the header as this section reread it: another host may have been first */
    had = hdr_owner(pager_hdr(db->pg));
    if (had != me && had != 0 && !adopt) {
        rc = owner_refused(db, had, me);
        (void)kvs_abort(db);
        return rc;
    }
    hdr_set_owner(pager_hdr(db->pg), me);
    lh_set_modified(db->t, 1);
    return kvs_end(db);
}

/* Frees the handle and the layers it owns (not the descriptor, not lh). */
static int shared_join(kvs *db);
static int journal_attach(kvs *db, const kvs_options *opt);
static int recover_private(kvs *db);
static void unit_rollback(kvs *db);
static int section_leave(kvs *db, int rc);
static void lazy_touch(void *arg, uint32_t pgno, const uint8_t *page, int dirty);
/* KVS_LAZY's write-out threshold for a pool of `nframes`: half of it, which
 * bounds one section's pre-images by half the pool and leaves every section
 * at least half the frames clean or free (README, "Lazy write sections") */
static uint32_t lazy_limit_of(uint32_t nframes)
{
    uint32_t l = nframes / 2;
    return l < 4 ? 4 : l;
}
static int lazy_flush(kvs *db);

static void free_layers(kvs *db)
{
    lh_free(db->t);
    pool_file_free(db->pf);
    undo_free(db->undo);
    spill_free(db->spill);
    pager_free(db->pg);
    free(db->path);
    free(db->abspath);
    free(db->capmap);
    free(db->lazy_stamp);
    free(db->pre_pg);
    free(db->pre_img);
    if (db->own_j)
        (void)kvs_journal_close(db->j);
    free(db->poolmem);
    free(db);
}

int kvs_open(const char *path, const kvs_options *optin, kvs **out)
{
    kvs_options defopt;
    const kvs_options *opt = optin;
    const kvs_os *os;
    kvs_err err;
    kvs *db;
    uint32_t frames;
    int fd, rc, rdonly;
    memset(&err, 0, sizeof err);
    *out = NULL;
    open_errmsg[0] = 0;
    if (!opt) {
        kvs_options_init(&defopt);
        opt = &defopt;
    }
    os = opt->os ? opt->os : kvs_os_posix();
    rdonly = (opt->flags & KVS_RDONLY) != 0;
    if (!path || (opt->fillfactor && (opt->fillfactor < 10 || opt->fillfactor > 100))) {
        snprintf(open_errmsg, sizeof open_errmsg, "bad path or fill factor %u (10..100)",
                 (unsigned)opt->fillfactor);
        return KVS_EINVAL;
    }
    if (opt->descriptor_len > KVS_MAX_DESCRIPTOR) {
        snprintf(open_errmsg, sizeof open_errmsg, "descriptor of %zu bytes exceeds %d",
                 opt->descriptor_len, KVS_MAX_DESCRIPTOR);
        return KVS_ETOOBIG;
    }
    if (opt->cache_policy != KVS_CACHE_LRU && opt->cache_policy != KVS_CACHE_CLOCK) {
        snprintf(open_errmsg, sizeof open_errmsg, "unknown cache policy %d", opt->cache_policy);
        return KVS_EINVAL;
    }
    if (opt->locks && (!opt->locks->lock || !opt->locks->unlock)) {
        snprintf(open_errmsg, sizeof open_errmsg, "kvs_options.locks needs both lock and unlock");
        return KVS_EINVAL;
    }
    if ((opt->flags & KVS_EXCLUSIVE) && opt->pool) {
        snprintf(open_errmsg, sizeof open_errmsg,
                 "KVS_EXCLUSIVE is not allowed with a shared pool (kvs_options.pool): the "
                 "pool's handles share the file, their sections exclude each other in the pool");
        return KVS_EINVAL;
    }
    if ((opt->flags & KVS_LAZY) && (!(opt->flags & KVS_EXCLUSIVE) || rdonly)) {
        snprintf(open_errmsg, sizeof open_errmsg,
                 "KVS_LAZY needs KVS_EXCLUSIVE and a writable handle: a lazy section's pages "
                 "stay in this handle's pool, which only the exclusive hold keeps current");
        return KVS_EINVAL;
    }
    if (opt->pool && !pool_of(opt->pool)) {
        snprintf(open_errmsg, sizeof open_errmsg, "kvs_options.pool is not a formatted kvs pool");
        return KVS_EINVAL;
    }
    frames = opt->cache_pages ? opt->cache_pages : 1024;
    if (frames < 8)
        frames = 8;
    fd = os->open(path, rdonly ? O_RDONLY : O_RDWR, 0);
    if (fd < 0 && errno == ENOENT && (opt->flags & KVS_CREATE) && !rdonly) {
        rc = create_file(path, opt, os, &err);
        if (rc) {
            snprintf(open_errmsg, sizeof open_errmsg, "%.300s: %.320s", path, err.msg);
            return rc;
        }
        fd = os->open(path, O_RDWR, 0);
    }
    if (fd < 0) {
        rc = kvs_seterrno(&err, errno, 0, "cannot open file");
        snprintf(open_errmsg, sizeof open_errmsg, "%.300s: %.320s", path, err.msg);
        return rc;
    }
    db = calloc(1, sizeof *db);
    if (db && opt->pool) {
        db->pool = pool_of(opt->pool);
    } else if (db) {
        /* a large pool is 2 MiB-aligned and asks for transparent huge pages:
         * random page accesses then miss the TLB far less */
        size_t sz = pool_mem_size(frames, 1), align = sz >= ((size_t)4 << 20) ? ((size_t)2 << 20) : PG_SIZE;
        if (posix_memalign(&db->poolmem, align, sz) != 0)
            db->poolmem = NULL;
#ifdef MADV_HUGEPAGE
        else if (align > PG_SIZE)
            (void)madvise(db->poolmem, sz & ~(align - 1), MADV_HUGEPAGE);
#endif
        if (db->poolmem)
            db->pool = pool_format(db->poolmem, frames, 1,
                                   opt->cache_policy == KVS_CACHE_CLOCK ? POOL_CLOCK : POOL_LRU);
    }
    if (!db || !db->pool) {
        if (db)
            free(db->poolmem);
        free(db);
        os->close(fd);
        snprintf(open_errmsg, sizeof open_errmsg, "%.300s: out of memory for %u cache frames",
                 path, (unsigned)frames);
        return KVS_ENOMEM;
    }
    db->os = os;
    db->section = -1;
    db->held = -1;
    db->shared = pool_is_shared(db->pool);
    db->host_id = db->shared ? 0 : opt->owner_id;
    db->rdonly = rdonly;
    db->interrupted = opt->interrupted;
    db->interrupt_arg = opt->interrupt_arg;
    db->lock_wait = opt->lock_wait;
    db->lock_wait_arg = opt->lock_wait_arg;
    db->pg = pager_new(os, fd, rdonly, &db->err);
    /* a shared pool's writers end sections often (to let readers in): grow
     * in 64 KiB steps, not 1 MiB ones cut off again at each write-out */
    if (db->pg && db->shared)
        pager_set_growth(db->pg, 16);
    /* the path: spill file names, and following a compaction (any handle) */
    db->path = malloc(strlen(path) + 1);
    if (db->path)
        strcpy(db->path, path);
    db->spill = spill_new(os, path, &db->err);
    db->undo = db->spill ? undo_new(db->spill, &db->err) : NULL;
    if (!db->pg || !db->path || !db->undo) {
        snprintf(open_errmsg, sizeof open_errmsg, "%.300s: out of memory", path);
        os->close(fd);
        free_layers(db);
        return KVS_ENOMEM;
    }
    db->pf = pool_file_new(db->pool, db->pg, &db->err, opt->locks, db->spill);
    if (!db->pf) {
        snprintf(open_errmsg, sizeof open_errmsg, "%.300s: out of memory", path);
        os->close(fd);
        free_layers(db);
        return KVS_ENOMEM;
    }
    db->t = lh_new(db->pg, db->pf, &db->err);
    if (!db->t) {
        snprintf(open_errmsg, sizeof open_errmsg, "%.300s: out of memory", path);
        os->close(fd);
        free_layers(db);
        return KVS_ENOMEM;
    }
    if (opt->fillfactor) {
        lh_set_fillfactor(db->t, opt->fillfactor);
        db->ff_override = 1;
    }
    /* owner: a shared pool's handle holds LOCK_SH from here to kvs_close
     * (so no process outside the pool is writing when it joins); it finds
     * its file's slot (the section lock is the slot's); then validate the
     * header (under a shared lock: a writer may be mid-flush) */
    db->nosync = (opt->flags & KVS_NOSYNC) != 0;
    db->frames_sealed = !opt->locks;
    rc = rdonly ? KVS_OK : journal_attach(db, opt);
    if (rc == KVS_OK)
        rc = opt->pool ? hold_take(db) : KVS_OK;
    /* KVS_EXCLUSIVE: the lock from here to kvs_close; recovery runs under it */
    if (rc == KVS_OK && (opt->flags & KVS_EXCLUSIVE))
        rc = excl_take(db);
    if (rc == KVS_OK && !opt->pool)
        rc = recover_private(db);
    /* KVS_LAZY: only while the hold is really held (excl_take may have
     * fallen back to a lock per section) */
    if (rc == KVS_OK && (opt->flags & KVS_LAZY) && db->excl) {
        db->lazy = 1;
        db->lazy_limit = lazy_limit_of(pool_nframes(db->pool));
        pool_set_touch(db->pf, lazy_touch, db);
    }
    if (rc == KVS_OK && db->shared)
        rc = shared_join(db);
    if (rc == KVS_OK)
        rc = kvs_begin(db, KVS_READ);
    if (rc == KVS_OK)
        rc = kvs_end(db);
    /* owner: whose the file is, checked and recorded by a shared pool's handle */
    if (rc == KVS_OK && db->flock_held && opt->owner_id != 0)
        rc = owner_claim(db, opt->owner_id, (opt->flags & KVS_ADOPT) != 0);
    if (rc) {
        snprintf(open_errmsg, sizeof open_errmsg, "%.300s: %.320s", path, db->err.msg);
        os->close(pager_fd(db->pg));
        free_layers(db);
        return rc;
    }
    *out = db;
    return KVS_OK;
}

int kvs_close(kvs *db)
{
    int rc = KVS_OK, rc2;
    if (!db)
        return KVS_EINVAL;
    if (db->prepared && db->prep_lsn) {
        /* closed between kvs_prepare and kvs_commit: the host never said
         * its transaction committed; the section is discarded and the
         * record left in flight, for recovery to resolve by its xid */
        unit_rollback(db);
        db->prepared = 0;
        (void)section_leave(db, KVS_OK);
    }
    if (db->section >= 0)
        rc = kvs_end(db);
    rc2 = lazy_flush(db);
    if (rc == KVS_OK)
        rc = rc2;
    /* a write-back left to the journal (KVS_EXCLUSIVE keeps no undo) is
     * redone now, under the hold, so the file is whole for whoever opens
     * it next (a read-only handle does no recovery); if this fails too,
     * the record stays for the next writable open */
    if (db->torn) {
        rc2 = recover_private(db);
        if (rc == KVS_OK)
            rc = rc2;
    }
    if (db->need_sync) {
        rc2 = pager_sync(db->pg);
        if (rc == KVS_OK)
            rc = rc2;
    }
    /* owner: the hold ends (the close would drop it too) */
    if (db->flock_held)
        (void)filelock_unhold(db->os, pager_fd(db->pg), &db->err);
    /* KVS_EXCLUSIVE: the lock ends (the close would drop it too) */
    if (db->excl)
        (void)filelock_release(db->os, pager_fd(db->pg), NULL);
    if (db->os->close(pager_fd(db->pg)) != 0 && rc == KVS_OK)
        rc = kvs_seterrno(&db->err, errno, 0, "close failed");
    if (rc)
        snprintf(open_errmsg, sizeof open_errmsg, "close: %.320s", db->err.msg);
    free_layers(db);
    return rc;
}

/* ---- pools -------------------------------------------------------------------- */

size_t kvs_pool_size(uint32_t frames, uint32_t files)
{
    return pool_mem_size_shared(frames, files);
}

int kvs_pool_format(void *mem, size_t size, uint32_t frames, uint32_t files, int policy,
                    kvs_pool **out)
{
    *out = NULL;
    if (!mem || ((uintptr_t)mem & 63) || frames < 8 || files < 1 ||
        (policy != KVS_CACHE_LRU && policy != KVS_CACHE_CLOCK))
        return KVS_EINVAL;
    if (size < pool_mem_size_shared(frames, files))
        return KVS_EINVAL;
    *out = (kvs_pool *)pool_format_shared(mem, frames, files,
                                          policy == KVS_CACHE_CLOCK ? POOL_CLOCK : POOL_LRU);
    return KVS_OK;
}

kvs_pool *kvs_pool_attach(void *mem)
{
    return (kvs_pool *)pool_of(mem);
}

uint32_t kvs_pool_frames(const kvs_pool *p) { return pool_nframes((const pool *)p); }
uint32_t kvs_pool_files(const kvs_pool *p) { return pool_nfiles((const pool *)p); }
int kvs_pool_policy(const kvs_pool *p)
{
    return pool_policy((const pool *)p) == POOL_CLOCK ? KVS_CACHE_CLOCK : KVS_CACHE_LRU;
}

void kvs_pool_lru_ranks(kvs_pool *p, uint32_t *ranks)
{
    pool_lru_ranks((pool *)p, ranks);
}

int kvs_pool_frame(kvs_pool *p, uint32_t frame, const uint32_t *ranks, kvs_frame_info *out)
{
    pool_frame_stat fs;
    int rc = pool_frame_info((pool *)p, frame, ranks, &fs);
    memset(out, 0, sizeof *out);
    out->lru_rank = UINT32_MAX;
    if (rc)
        return rc;
    out->used = fs.used;
    out->file_slot = fs.slot;
    out->page = fs.page;
    out->page_type = fs.page_type >= KVS_PAGE_HEADER && fs.page_type <= KVS_PAGE_FREE ? fs.page_type : 0;
    out->dirty = fs.dirty;
    out->pins = fs.pins;
    out->usage = fs.usage;
    out->lru_rank = fs.lru_rank == POOL_NONE ? UINT32_MAX : fs.lru_rank;
    return KVS_OK;
}

int kvs_pool_file(kvs_pool *p, uint32_t slot, kvs_pool_file_info *out)
{
    pool_file_stat fs;
    int rc = pool_file_info((pool *)p, slot, &fs);
    memset(out, 0, sizeof *out);
    if (rc)
        return rc;
    out->file_id = fs.file_id;
    out->dev = fs.dev;
    out->ino = fs.ino;
    out->users = fs.users;
    out->owner_id = fs.owner_id;
    out->frames = fs.frames;
    out->dirty = fs.dirty;
    out->hits = fs.hits;
    out->reads = fs.reads;
    out->evictions = fs.evictions;
    out->writes = fs.writes;
    out->ring_reuses = fs.ring_reuses;
    return KVS_OK;
}

void kvs_pool_reset_stats(kvs_pool *p)
{
    pool_reset_stats((pool *)p);
}

uint32_t kvs_waiters(const kvs *db)
{
    return db->shared ? pool_section_waiters(db->pf) : 0;
}

uint32_t kvs_sharers(const kvs *db)
{
    uint32_t users = db->shared ? pool_file_users(db->pf) : 0;
    return users > 1 ? users - 1 : 0;
}

uint32_t kvs_pending_pages(const kvs *db)
{
    return db->section == KVS_WRITE ? pool_ndirty(db->pf) + spill_count(db->spill) : 0;
}

int kvs_set_ring(kvs *db, uint32_t frames)
{
    if (frames != 0 && frames < 8)
        return kvs_seterr(&db->err, KVS_EINVAL, 0, "a bulk-read ring needs at least 8 frames, not %u",
                          (unsigned)frames);
    if (frames > pool_nframes(db->pool) / 4)
        frames = pool_nframes(db->pool) / 4;
    return pool_file_set_ring(db->pf, frames >= 8 ? frames : 0);
}

int kvs_set_trace(kvs *db, int fd)
{
    return pool_file_set_trace(db->pf, fd);
}

/* What identifies the open file to the pool: its header's nonce (0 for a
 * version 1 or 2 file until its first write-out gives it one) and the inode
 * the descriptor has -- `known` if the caller has just stat()ed it, else an
 * fstat (when the I/O table has none: the handle itself, so nothing is
 * shared by mistake). */
static int bind_file(kvs *db, const struct stat *known)
{
    pool_ident id;
    struct stat st;
    id.file_id = hdr_file_id(pager_hdr(db->pg));
    db->bound_id = id.file_id;
    /* the descriptor's own inode, also after a followed compaction (the
     * path's stat may already name a newer file): the generations' slot
     * and the records' identity */
    db->ino_ok = 0;
    if (db->os->fstat) {
        if (db->os->fstat(pager_fd(db->pg), &st) != 0)
            return kvs_seterrno(&db->err, errno, 0, "fstat failed");
        db->dev = (uint64_t)st.st_dev;
        db->ino = (uint64_t)st.st_ino;
        db->ino_ok = 1;
    }
    if (known)
        st = *known;
    if (known || db->os->fstat) {
        id.dev = (uint64_t)st.st_dev;
        id.ino = (uint64_t)st.st_ino;
    } else {
        id.dev = UINT64_MAX;
        id.ino = (uint64_t)(uintptr_t)db;
    }
    return pool_file_bind(db->pf, &id);
}

/* ---- the journal: which one, and recovery at open ----------------------------- */

/* The identity the open file's records carry: its nonce and inode. */
static int file_ident(kvs *db, const kvs_hdr *h, jr_ident *id)
{
    struct stat st;
    id->file_id = h ? hdr_file_id(h) : 0;
    if (db->ino_ok && db->loaded) {
        /* the descriptor's inode, taken when it was bound: no fstat a commit */
        id->dev = db->dev;
        id->ino = db->ino;
        return KVS_OK;
    }
    if (db->os->fstat) {
        if (db->os->fstat(pager_fd(db->pg), &st) != 0)
            return kvs_seterrno(&db->err, errno, 0, "fstat failed");
    } else if (fstat(pager_fd(db->pg), &st) != 0) {
        /* an I/O table with no fstat over descriptors that are not the
         * system's (an in-memory file): the path stands for the inode */
        id->dev = UINT64_MAX;
        id->ino = XXH3_64bits(db->abspath, strlen(db->abspath));
        return KVS_OK;
    }
    id->dev = (uint64_t)st.st_dev;
    id->ino = (uint64_t)st.st_ino;
    return KVS_OK;
}

/* The journal a writable handle commits through: the host's (the options),
 * else the one the header names if that directory exists, else a private
 * one at "<path>-journal" (README, "How a standalone open finds the
 * journal"). */
static int journal_attach(kvs *db, const kvs_options *opt)
{
    char real[PATH_MAX], jdir[PATH_MAX + 16];
    uint8_t pg[PG_SIZE];
    kvs_hdr h;
    kvs_err tmp;
    struct stat st;
    kvs_journal_options jo;
    ssize_t r;
    int rc;
    if (!realpath(db->path, real)) {
        /* a path the system does not know (a host's own I/O table):
         * absolute as given */
        char cwd[PATH_MAX];
        if (db->path[0] == '/')
            snprintf(real, sizeof real, "%s", db->path);
        else if (getcwd(cwd, sizeof cwd) && strlen(cwd) + strlen(db->path) + 2 <= sizeof real) {
            strcpy(real, cwd);
            strcat(real, "/");
            strcat(real, db->path);
        } else
            return kvs_seterrno(&db->err, errno, 0, "cannot resolve the file's path");
    }
    db->abspath = malloc(strlen(real) + 1);
    if (!db->abspath)
        return kvs_seterr(&db->err, KVS_ENOMEM, 0, "out of memory");
    strcpy(db->abspath, real);
    if (opt->journal) {
        db->j = opt->journal;
        return KVS_OK;
    }
    jdir[0] = 0;
    /* a read error is not "no journal named": the default could be the
     * wrong journal */
    r = pager_read_all(db->os, pager_fd(db->pg), pg, PG_SIZE, 0);
    if (r < 0)
        return kvs_seterrno(&db->err, errno, 0, "read of the header failed");
    if (r == PG_SIZE && hdr_decode(pg, PG_SIZE, &h, &tmp) == KVS_OK) {
        uint32_t n;
        const char *p = hdr_journal_path(&h, &n);
        if (n && n < sizeof jdir) {
            memcpy(jdir, p, n);
            jdir[n] = 0;
        }
    } else if (r == PG_SIZE && memcmp(pg + HD_MAGIC, KVS_MAGIC, 8) == 0) {
        /* a torn header (what recovery repairs) still names the journal
         * its commits went to: read the field raw -- either half of a torn
         * write holds a path this file's commits used */
        uint32_t n = (uint32_t)pg[HD_JPATHLEN] | (uint32_t)pg[HD_JPATHLEN + 1] << 8 |
                     (uint32_t)pg[HD_JPATHLEN + 2] << 16 | (uint32_t)pg[HD_JPATHLEN + 3] << 24;
        if (n && n <= KVS_HDR_JPATH_MAX && n < sizeof jdir && pg[HD_JPATH] == '/' &&
            !memchr(pg + HD_JPATH, 0, n)) {
            memcpy(jdir, pg + HD_JPATH, n);
            jdir[n] = 0;
        }
    }
    if (jdir[0] && (stat(jdir, &st) != 0 || !S_ISDIR(st.st_mode)))
        jdir[0] = 0;
    if (!jdir[0])
        snprintf(jdir, sizeof jdir, "%s-journal", real);
    kvs_journal_options_init(&jo);
    jo.os = opt->os;
    rc = kvs_journal_open(jdir, &jo, &db->j);
    if (rc)
        return kvs_seterr(&db->err, rc, 0, "cannot open the journal: %.280s", kvs_journal_errmsg(NULL));
    db->own_j = 1;
    return KVS_OK;
}

/* Recovery of the file from the journal (README, "Recovery"); `probe`:
 * only say whether there is anything to look at (1) or not (0), so an open
 * takes the exclusive lock only when needed.  Page 0 is read raw: a torn
 * header is what recovery repairs. */
/* ---- change generations (README, "Change generations") ---------------------- */

/* Does header h name this handle's journal? */
static int names_own_journal(const kvs *db, const kvs_hdr *h)
{
    uint32_t n;
    const char *p = hdr_journal_path(h, &n);
    const char *dir = jr_dir(db->j);
    return n == strlen(dir) && memcmp(p, dir, n) == 0;
}

/* Bumps the generation of inode `ino` in the journal header h names, when
 * that is not this handle's (whose own is bumped by the caller): a reader
 * attached there skips its header reread on that journal's word. */
static int gen_bump_named(kvs *db, const kvs_hdr *h, uint64_t ino)
{
    uint32_t n;
    const char *p = hdr_journal_path(h, &n);
    if (n == 0 || names_own_journal(db, h))
        return KVS_OK;
    return jr_gen_bump_dir(p, n, ino, &db->err);
}

/* A write section's first act under its exclusive lock, before it can
 * change a byte of the file: the readers' signal. */
static int gen_bump(kvs *db)
{
    if (!db->j || !db->ino_ok)
        return KVS_OK;
    jr_gen_bump(db->j, db->ino);
    db->gen_ok = 0;
    return gen_bump_named(db, pager_hdr(db->pg), db->ino);
}

/* At the end of a section, still under its lock: the header in memory is
 * the file's (read, or just written by this section, or reread by a
 * rollback), so the next section may take it as is while the generation
 * stays.  Only for a private pool's handle whose file's header names its
 * journal: a writer outside that journal bumps it by name (gen_bump_named),
 * one that the header does not send there... cannot exist: every writer
 * of a header naming this journal either uses it or bumps it by name. */
static void gen_remember(kvs *db)
{
    db->gen_ok = 0;
    if (db->shared || !db->j || !db->ino_ok || !db->loaded || db->poisoned ||
        !names_own_journal(db, pager_hdr(db->pg)))
        return;
    /* a file below format 6 may have an engine at work on it that does
     * not bump (format 5): such a file is reread at every section; the
     * first write of this engine makes it version 6, and from then on an
     * engine that does not bump refuses it (header.h, "6") */
    if (hdr_version(pager_hdr(db->pg)) < KVS_FORMAT_GENS)
        return;
    db->gen_seen = jr_gen(db->j, db->ino);
    db->gen_ok = 1;
}

/* Nobody wrote the file since this handle's last section (gen_remember):
 * the header and everything cached are still the file's. */
static int gen_unchanged(const kvs *db)
{
    return db->gen_ok && db->loaded && jr_gen(db->j, db->ino) == db->gen_seen;
}

static int recover_file(kvs *db, int probe)
{
    uint8_t pg[PG_SIZE];
    kvs_hdr h;
    kvs_err tmp;
    jr_ident id;
    jr_fstate fs;
    uint64_t indoubt;
    uint32_t replayed;
    ssize_t r;
    int ok, rc;
    if (!db->j)
        return KVS_OK;
    r = pager_read_all(db->os, pager_fd(db->pg), pg, PG_SIZE, 0);
    if (r < 0)      /* not a torn header: the disk did not answer */
        return kvs_seterrno(&db->err, errno, 0, "read of the header failed");
    ok = r == PG_SIZE && hdr_decode(pg, PG_SIZE, &h, &tmp) == KVS_OK;
    rc = file_ident(db, ok ? &h : NULL, &id);
    if (rc)
        return rc;
    memset(&fs, 0, sizeof fs);
    if (ok)
        jr_fstate_of(&fs, &h, jr_dir(db->j));
    if (probe) {
        rc = jr_pending(db->j, &id, &fs, &db->err);
        return rc < 0 ? rc : rc > 0;
    }
    /* a replay writes the file: readers counting on the journal its header
     * names must reread (replay_one bumps this journal's generation) */
    if (ok) {
        rc = gen_bump_named(db, &h, id.ino);
        if (rc)
            return rc;
    }
    rc = jr_recover(db->j, db->os, pager_fd(db->pg), &id, &fs, &indoubt, &replayed, &db->err);
    if (rc == KVS_OK && indoubt)
        db->indoubt = indoubt;
    if (rc == KVS_OK && replayed)
        db->loaded = 0;     /* the header is reread (and the cache dropped) */
    return rc;
}

/* A handle of its own (not a shared pool's): the probe, then, if there is
 * anything, recovery under the exclusive lock.  A file a host holds (its
 * shared pool) is left to the host: KVS_EBUSY here skips recovery. */
static int recover_private(kvs *db)
{
    filelock_hooks hooks;
    int rc = recover_file(db, 1);
    if (rc <= 0)
        return rc;
    if (db->excl)       /* KVS_EXCLUSIVE: the open holds the lock already */
        return recover_file(db, 0);
    lock_hooks(db, &hooks, FILELOCK_OWNER_UNKNOWN);
    rc = filelock_take(db->os, pager_fd(db->pg), 1, &hooks, &db->err);
    if (rc == KVS_EBUSY)
        return KVS_OK;
    if (rc)
        return rc;
    rc = recover_file(db, 0);
    (void)filelock_release(db->os, pager_fd(db->pg), rc ? NULL : &db->err);
    return rc;
}

/* A shared pool's handle joins its file's slot by inode (pool.c, "joining
 * a file in a shared pool"); the first handle to take the slot validates
 * it with the header read from the file, which no handle of the pool
 * writes meanwhile. */
static int shared_join(kvs *db)
{
    struct stat st;
    int validate, rc;
    if (!db->os->fstat)
        return kvs_seterr(&db->err, KVS_EINVAL, 0, "a shared pool needs fstat in the I/O table");
    if (db->os->fstat(pager_fd(db->pg), &st) != 0)
        return kvs_seterrno(&db->err, errno, 0, "fstat failed");
    db->dev = (uint64_t)st.st_dev;
    db->ino = (uint64_t)st.st_ino;
    db->ino_ok = 1;
    rc = pool_file_join(db->pf, (uint64_t)st.st_dev, (uint64_t)st.st_ino, &validate);
    if (rc || !validate)
        return rc;
    /* the slot's first handle recovers the file before anyone reads it */
    rc = recover_file(db, 0);
    if (rc == KVS_OK)
        rc = pager_load_header(db->pg, 1, 0);
    if (rc) {
        if (kvs_is_damage(rc))
            db->poisoned = 1;
        pool_file_abandon(db->pf);
        return rc;
    }
    pool_file_validated(db->pf, pager_hdr(db->pg));
    return KVS_OK;
}

int kvs_set_fillfactor(kvs *db, uint32_t percent)
{
    if (percent < 10 || percent > 100)
        return kvs_seterr(&db->err, KVS_EINVAL, 0, "fill factor %u out of 10..100", (unsigned)percent);
    lh_set_fillfactor(db->t, percent);
    db->ff_override = 1;
    return KVS_OK;
}

/* ---- sections ------------------------------------------------------------------
 *
 * A section does three separate jobs, each in its own functions below, and
 * kvs_begin / kvs_end / kvs_abort only compose them:
 *
 *  1. the file lock (lock_take, lock_release): flock, shared for a read
 *     section and exclusive for a write section, waited for with the host's
 *     interrupt and wait callbacks;
 *  2. cache validity (cache_revalidate, cache_forget): the header is reread
 *     under the lock, and every cached page is dropped when its change
 *     counter says another process wrote the file since this handle last
 *     looked;
 *  3. the atomic unit of change (unit_begin, unit_commit, unit_rollback): a
 *     write section's changes stay in the pool and the spill file (no-steal)
 *     until unit_commit writes them out, saving each overwritten page first
 *     so a failed write-out is undone; unit_rollback throws them all away.
 *
 * See README.md ("Sections: three jobs") for which of them the shared pool
 * and the journal will replace. */

int kvs_is_damage(int rc)
{
    return rc == KVS_ECORRUPT || rc == KVS_ETRUNCATED || rc == KVS_ENOTKVS || rc == KVS_EVERSION;
}

/* A code that marks the write section failed: every code but the answers and
 * the refusals that change nothing. */
static int is_failure(int rc)
{
    return rc != KVS_OK && rc != KVS_NOTFOUND && rc != KVS_EXISTS && rc != KVS_ETOOBIG &&
           rc != KVS_EINVAL && rc != KVS_ERDONLY;
}

int kvs_in_section(const kvs *db)
{
    return db->section;
}

/* Does the header just read (under the section lock) say the file may have
 * been replaced?  kvs_compact sets REPLACING in the old file's header before
 * it renames the new file over the path, and holds the old file's exclusive
 * lock until then, so whoever reads the old header afterwards -- also a
 * waiter blocked on that lock during the whole compaction -- sees the flag.
 * An unflagged header costs no system call.  A version-1 header may belong
 * to a file an older engine (which sets no flag) compacted: those are
 * checked at every section, as that engine did, until a write upgrades them. */
static inline int may_be_replaced(const kvs_hdr *h)
{
    return hdr_replacing(h) || hdr_version(h) < 2;
}

static int lock_take(kvs *db, int mode);
static int lock_release(kvs *db);

/* Moves the handle (locked in `mode`, its header loaded) to the new file a
 * compaction renamed over its path, rereading the header there.  A flagged
 * file that still has its name was not replaced: the compaction that set the
 * flag died or failed before its rename; a write section clears the flag
 * (the next write-out stores it), until then each section pays this fstat.
 * An unlinked file with nothing (or the same file) at the path was removed,
 * not replaced: the handle keeps it, as it always did. */
static int follow_replacement(kvs *db, int mode)
{
    const kvs_os *os = db->os;
    int hops, rc;
    if (!os->fstat || !os->stat)
        return KVS_OK;
    for (hops = 0; hops < 64 && may_be_replaced(pager_hdr(db->pg)); hops++) {
        struct stat fs, ps;
        int fd;
        if (os->fstat(pager_fd(db->pg), &fs) != 0)
            return kvs_seterrno(&db->err, errno, 0, "fstat failed");
        if (fs.st_nlink > 0) {
            if (mode == KVS_WRITE)
                hdr_set_replacing(pager_hdr(db->pg), 0);
            return KVS_OK;
        }
        if (os->stat(db->path, &ps) != 0 || (ps.st_dev == fs.st_dev && ps.st_ino == fs.st_ino))
            return KVS_OK;
        fd = os->open(db->path, db->rdonly ? O_RDONLY : O_RDWR, 0);
        if (fd < 0)
            return errno == ENOENT ? KVS_OK
                                   : kvs_seterrno(&db->err, errno, 0, "cannot open the compacted file");
        if (db->shared) {
            /* leave the old file's slot (its lock), join the new file's,
             * take its lock; its header is the pool's */
            lock_release(db);
            os->close(pager_fd(db->pg));
            pager_set_fd(db->pg, fd);
            db->loaded = 0;
            db->reopens++;
            rc = hold_take(db);       /* owner: the hold moves with it */
            if (rc == KVS_OK)
                rc = shared_join(db);
            if (rc == KVS_OK)
                rc = lock_take(db, mode);
            if (rc)
                return rc;
            (void)pool_file_header(db->pf, pager_hdr(db->pg), 1);
            continue;
        }
        /* closing the old descriptor drops its lock; the new one is locked
         * before anything is read from it (and may have been replaced in
         * turn meanwhile: its header says so, loop) */
        os->close(pager_fd(db->pg));
        pager_set_fd(db->pg, fd);
        db->loaded = 0;
        db->reopens++;
        db->moved_to = ps;
        db->moved = 1;
        /* owner: a held handle's hold moves to the new file with it, and
         * so does KVS_EXCLUSIVE's lock (lock_take does nothing then) */
        rc = db->flock_held ? hold_take(db) : db->excl ? excl_take(db) : KVS_OK;
        if (rc == KVS_OK)
            rc = lock_take(db, mode);
        if (rc)
            return rc;
        rc = pager_load_header(db->pg, 1, 0);
        if (rc)
            return rc;
    }
    if (hops == 64)
        return kvs_seterr(&db->err, KVS_EIO, 0, "the file was replaced %d times while opening it", hops);
    return KVS_OK;
}

/* -- job 1: the file lock -- */

static int lock_take(kvs *db, int mode)
{
    filelock_hooks hooks;
    if (db->excl)       /* KVS_EXCLUSIVE: held from open to close */
        return KVS_OK;
    hooks.interrupted = db->interrupted;
    hooks.interrupt_arg = db->interrupt_arg;
    hooks.lock_wait = db->lock_wait;
    hooks.lock_wait_arg = db->lock_wait_arg;
    hooks.self = db->host_id;
    if (db->shared) {
        /* the pool's section lock; the handle's flock is its hold, which
         * sections never convert or drop */
        int rc = pool_section_lock(db->pf, mode == KVS_WRITE, &hooks);
        if (rc == KVS_OK)
            db->held = mode;
        return rc;
    }
    /* owner: what the header said (a reader probes for a host's hold) */
    hooks.owner = db->loaded ? hdr_owner(pager_hdr(db->pg)) : FILELOCK_OWNER_UNKNOWN;
    return filelock_take(db->os, pager_fd(db->pg), mode == KVS_WRITE, &hooks, &db->err);
}

static int lock_release(kvs *db)
{
    if (db->excl)
        return KVS_OK;
    if (db->shared) {
        if (db->held >= 0)
            pool_section_unlock(db->pf, db->held == KVS_WRITE);
        db->held = -1;
        return KVS_OK;
    }
    return filelock_release(db->os, pager_fd(db->pg), &db->err);
}

/* -- job 2: cache validity (the change counter) -- */

/* Forgets every cached page, dirty ones too, and the cursors' copies. */
static void cache_forget(kvs *db)
{
    pool_drop(db->pf);
    lh_forget(db->t);
}

/* Rereads and validates the header (the lock is held); drops the cache when
 * the file changed since this handle last saw it, was replaced, or was never
 * read. */
/* A shared pool's handle takes the header from the pool (no system call):
 * it is the file's as of the last write-out, and the frames are the
 * file's pages, whoever wrote them (nobody outside the pool writes while a
 * handle of the pool has the file open: they hold flock(LOCK_SH)). */
static int cache_revalidate_shared(kvs *db, int mode)
{
    kvs_hdr *h = pager_hdr(db->pg);
    uint64_t old_cc = hdr_change(h);
    int rc = KVS_OK;
    if (pool_file_header(db->pf, h, !db->loaded) < 0) {
        rc = pager_load_header(db->pg, 1, 0);
        if (rc == KVS_OK)
            pool_file_set_header(db->pf, h);
    }
    if (rc == KVS_OK && may_be_replaced(h))
        rc = follow_replacement(db, mode);
    if (rc) {
        if (kvs_is_damage(rc))
            db->poisoned = 1;
        db->loaded = 0;
        return rc;
    }
    if (!db->loaded || hdr_change(h) != old_cc)
        lh_forget(db->t);
    db->loaded = 1;
    db->bound_id = hdr_file_id(h);
    if (!db->ff_override)
        lh_set_fillfactor(db->t, hdr_fillfactor(h));
    return KVS_OK;
}

static int cache_revalidate(kvs *db, int mode)
{
    uint64_t old_cc = hdr_change(pager_hdr(db->pg));
    int rc;
    if (db->shared)
        return cache_revalidate_shared(db, mode);
    /* KVS_EXCLUSIVE: nobody else can have written the file since the
     * header was loaded (the lock was held all along): the header and the
     * pages in memory are the file's, and no compaction but this handle's
     * own (which moves it) can have replaced it.  After a failure or a
     * move (loaded = 0) the full reread below runs. */
    if (db->excl && db->loaded)
        return KVS_OK;
    /* nobody wrote the file since this handle's last section: the header
     * in memory is the file's, no reread (README, "Change generations") */
    if (gen_unchanged(db))
        rc = KVS_OK;
    else
        rc = pager_load_header(db->pg, !db->loaded, old_cc);
    db->gen_ok = 0;
    /* the file this handle has may have been compacted away: the lock and
     * the header move to the new file, and the cache is dropped below */
    if (rc == KVS_OK && may_be_replaced(pager_hdr(db->pg)))
        rc = follow_replacement(db, mode);
    if (rc) {
        if (kvs_is_damage(rc))
            db->poisoned = 1;
        pool_drop(db->pf);
        db->loaded = 0;
        return rc;
    }
    if (!db->loaded) {
        /* first look at this file (or at the one a compaction put at the
         * path): the pool learns which file it is */
        rc = bind_file(db, db->moved ? &db->moved_to : NULL);
        db->moved = 0;
        if (rc)
            return rc;
    }
    /* the cursors' copies are of what this handle saw last */
    if (!db->loaded || hdr_change(pager_hdr(db->pg)) != old_cc)
        lh_forget(db->t);
    /* the frames are the pool's: current unless someone outside the pool
     * wrote the file (a write through a shared pool by another handle
     * leaves them current: they are the pages it wrote) */
    if (!pool_file_current(db->pf, hdr_change(pager_hdr(db->pg))) && db->loaded)
        db->invalidations++;
    db->loaded = 1;
    if (!db->ff_override)
        lh_set_fillfactor(db->t, hdr_fillfactor(pager_hdr(db->pg)));
    return KVS_OK;
}

/* -- job 3: the atomic unit of change (write-out with undo, or rollback) -- */

static void unit_begin(kvs *db)
{
    db->failed = 0;
    lh_set_modified(db->t, 0);
    db->truncated = 0;
    pager_begin_unit(db->pg);
    spill_reset(db->spill);
}

/* Whether the unit has anything to write out (or to throw away). */
static int unit_changed(const kvs *db)
{
    return lh_modified(db->t) || pool_ndirty(db->pf) || db->truncated;
}

/* Throws away everything this unit changed: the dirty and the spilled pages,
 * the header in memory (reread from the file), the growth (cut back).  The
 * file keeps exactly what it had when the unit began: nothing of the unit
 * reached it but pages beyond its old end (see README, "no-steal").  The
 * error being reported (db->err) is kept. */
static void unit_rollback(kvs *db)
{
    kvs_err saved = db->err;
    int rc;
    cache_forget(db);
    spill_reset(db->spill);
    /* a shared pool has the header as of the last write-out */
    if (db->shared && pool_file_header(db->pf, pager_hdr(db->pg), 1) == 1)
        rc = KVS_OK;
    else
        rc = pager_load_header(db->pg, 1, 0);
    if (rc != KVS_OK) {
        db->loaded = 0;
        if (kvs_is_damage(rc))
            db->poisoned = 1;
    }
    pager_discard_extension(db->pg);
    lh_set_modified(db->t, 0);
    db->truncated = 0;
    db->bumped = 0;
    db->err = saved;
}

/* Writes the unit out.  Every page the file already had is saved before it
 * is overwritten (undo.h: the pager hands each old image to db->undo while
 * it is attached), so when a write fails the file is put back
 * as it was: the unit is all or nothing against I/O errors (not against a
 * crash: that needs the journal, see README). */
static int write_out(kvs *db);

static int unit_commit(kvs *db)
{
    int rc;
    undo_begin(db->undo);
    pager_set_undo(db->pg, db->undo);
    rc = write_out(db);
    pager_set_undo(db->pg, NULL);
    if (rc) {
        /* put back what the failed write-out overwrote; if even that fails
         * (a disk that fails every write), the file may be torn, and
         * check() will say so */
        (void)undo_apply(db->undo, db->pg);
    }
    undo_end(db->undo);
    return rc;
}

static int write_out(kvs *db)
{
    int rc = pool_flush(db->pf);
    if (rc)
        return rc;
    rc = spill_flush(db->spill, db->pg);
    if (rc)
        return rc;
    /* a prepared unit's header is composed already (unit_prepare) */
    if (!db->bumped)
        hdr_change_bump(pager_hdr(db->pg));
    db->bumped = 0;
    rc = pager_store_header(db->pg);
    if (rc)
        return rc;
    /* drop the zero pages growth preallocated beyond the last page, and the
     * pages a truncate left beyond it */
    rc = pager_trim(db->pg, db->truncated);
    if (rc)
        return rc;
    lh_set_modified(db->t, 0);
    db->truncated = 0;
    db->need_sync = 1;
    /* (kvs_sync mid-section) the file now references every page it has:
     * only pages grown from here on may be written before the section ends */
    pager_begin_unit(db->pg);
    /* a version 1 or 2 file just got its id with this write-out: the pool
     * learns it, so later handles (which read the id) share these frames.
     * If the fstat fails the old binding stays, which is still right (this
     * handle's own), only not shared. */
    if (hdr_file_id(pager_hdr(db->pg)) != db->bound_id) {
        if (db->shared) {
            /* a shared pool's slot is the inode's: it just learns the id */
            pool_file_set_id(db->pf, hdr_file_id(pager_hdr(db->pg)));
            db->bound_id = hdr_file_id(pager_hdr(db->pg));
        } else {
            (void)bind_file(db, NULL);
        }
    }
    /* the pool's frames are now the file as written; a shared pool's other
     * handles take this header at their next section */
    pool_file_changed(db->pf, hdr_change(pager_hdr(db->pg)));
    if (db->shared)
        pool_file_set_header(db->pf, pager_hdr(db->pg));
    return KVS_OK;
}

/* -- the journal record of the unit (kvs_prepare) -- */

/* Composes the unit's record: exactly the pages the write-out will write
 * (the dirty frames, the spilled pages, the header with the change counter
 * bumped and this record's LSN), captured from the pager as the write-out
 * would write them, header last; appended to the journal.  Nothing reaches
 * the file; the frames stay dirty and the spilled pages spilled. */
/* The pager's capture callback: the page goes into the record; a page the
 * unit grew the file with is marked captured. */
static int capture_page(void *arg, uint32_t pgno, const uint8_t *page)
{
    kvs *db = arg;
    uint32_t base = pager_sect_npages(db->pg);
    if (pgno >= base && (size_t)(pgno - base) / 8 < db->capmap_bytes)
        db->capmap[(pgno - base) / 8] |= (uint8_t)(1u << ((pgno - base) % 8));
    return jr_page(db->j, pgno, page);
}

/* Pages the unit grew the file with that the pool evicted: a fresh page
 * goes straight to the file (nothing on disk refers to it yet), so it is
 * neither dirty nor spilled, and the record takes it from the file. */
static int capture_grown(kvs *db)
{
    uint32_t base = pager_sect_npages(db->pg), end = hdr_npages(pager_hdr(db->pg)), p;
    int rc;
    for (p = base; p < end; p++) {
        if (db->capmap[(p - base) / 8] & (1u << ((p - base) % 8)))
            continue;
        rc = pager_read(db->pg, p, db->pagebuf);
        if (rc == KVS_OK)
            rc = jr_page(db->j, p, db->pagebuf);
        if (rc)
            return rc;
    }
    return KVS_OK;
}

static int unit_prepare(kvs *db, uint64_t xid, uint64_t *lsn)
{
    kvs_hdr *h = pager_hdr(db->pg);
    const char *dir = jr_dir(db->j);
    uint32_t base = pager_sect_npages(db->pg);
    size_t need = hdr_npages(h) > base ? (size_t)(hdr_npages(h) - base + 7) / 8 : 0;
    jr_ident id;
    int rc;
    *lsn = 0;
    if (need > db->capmap_bytes) {
        uint8_t *m = realloc(db->capmap, need * 2);
        if (!m)
            return kvs_seterr(&db->err, KVS_ENOMEM, 0, "out of memory (journal record)");
        db->capmap = m;
        db->capmap_bytes = need * 2;
    }
    if (need)
        memset(db->capmap, 0, need);
    /* a version-1/2 file gets its id now, so the record carries it */
    hdr_upgrade(h);
    rc = file_ident(db, h, &id);
    if (rc == KVS_OK)
        rc = jr_begin(db->j, &id, xid, hdr_change(h) + 1, db->abspath, lsn, &db->err);
    if (rc)
        return rc;
    hdr_change_bump(h);
    db->bumped = 1;
    hdr_set_journal(h, *lsn, dir, strlen(dir));
    pager_set_capture(db->pg, capture_page, db);
    rc = pool_capture(db->pf);
    if (rc == KVS_OK)
        rc = spill_capture(db->spill, db->pg);
    if (rc == KVS_OK && need)
        rc = capture_grown(db);
    if (rc == KVS_OK)
        rc = pager_store_header(db->pg);
    pager_set_capture(db->pg, NULL, NULL);
    if (rc) {
        if (rc != KVS_ENOMEM && !db->err.msg[0]) {
            kvs_seterr(&db->err, rc, 0, "journal: %.300s", kvs_journal_errmsg(db->j));
            db->err.sys_errno = jr_errno(db->j);
        }
        jr_cancel(db->j);
        return rc;
    }
    return jr_finish(db->j, hdr_npages(h), db->truncated, &db->err);
}

/* The write-out of a prepared unit, whose record stays registered (in
 * flight) until it is written back.  A failure is undone in the file (the
 * caller rolls back), and the handle refuses writes until it is reopened
 * and recovery has replayed the record.  A KVS_EXCLUSIVE handle of a
 * private pool is the only reader of the file until it closes, so its
 * write-back keeps no undo: a failure leaves the file as the failed write
 * left it, the handle refuses every section, reads too, and recovery redoes
 * the write-back from the record: kvs_close's, under the hold, or if that
 * fails too the next writable open's (README, "Failures"). */
static int unit_writeback(kvs *db, uint64_t lsn)
{
    int rc, redo = db->excl && !db->shared;
    /* the pages are as the capture sealed them: no second checksum pass
     * (with lock callbacks the capture sealed copies, not the frames) */
    pager_set_presealed(db->pg, db->frames_sealed);
    rc = redo ? write_out(db) : unit_commit(db);
    pager_set_presealed(db->pg, 0);
    if (rc) {
        db->jbroken = 1;
        db->torn = redo;
        return rc;
    }
    jr_done(db->j, lsn);
    return KVS_OK;
}

/* kvs_end's and kvs_sync's write-out: the record (xid 0), durable unless
 * KVS_NOSYNC, then the write-back.  A handle without a journal (never one
 * that writes) writes out directly. */
static int unit_commit_journaled(kvs *db)
{
    uint64_t lsn = 0;
    int rc;
    if (!db->j)
        return unit_commit(db);
    rc = unit_prepare(db, 0, &lsn);
    if (rc == KVS_OK && !db->nosync)
        rc = jr_flush(db->j, lsn, &db->err);
    if (rc) {
        jr_done(db->j, lsn);
        return rc;
    }
    return unit_writeback(db, lsn);
}

/* -- KVS_LAZY: write sections that end in memory (README, "Lazy write sections") -- */

/* The pool's touch hook while a section that began with lazy changes
 * pending runs: the first time in the section a page the file had at
 * kvs_begin is locked exclusive (or evicted dirty), its bytes are kept if
 * they may differ from the file's: it is dirty (an earlier lazy section's
 * change), or earlier sections grew the file with it (it may have been
 * evicted to the file and read back).  Every page touched is stamped with
 * the section's number: an abort drops those.  Room for the pre-images was
 * made at kvs_begin (lazy_begin): at most the dirty pages plus the pages
 * grown since the write-out. */
static void lazy_touch(void *arg, uint32_t pgno, const uint8_t *page, int dirty)
{
    kvs *db = arg;
    if (pgno >= db->lazy_nbegin || db->lazy_stamp[pgno] == db->lazy_sect)
        return;
    db->lazy_stamp[pgno] = db->lazy_sect;
    if (!dirty && pgno < pager_sect_npages(db->pg))
        return;     /* clean at kvs_begin: the file has it */
    if (db->pre_n == db->pre_cap) {
        db->lazy_lost = 1;
        return;
    }
    db->pre_pg[db->pre_n] = pgno;
    memcpy(db->pre_img + (size_t)db->pre_n * PG_SIZE, page, PG_SIZE);
    db->pre_n++;
}

/* The write-out of everything pending: one journalled commit, as kvs_end
 * without the flag.  On failure every change since the last write-out is
 * thrown away (the file keeps the last write-out). */
static int lazy_writeout(kvs *db)
{
    int rc;
    pool_touch_on(db->pf, 0);
    db->lazy_active = 0;
    db->lazy_pending = 0;
    rc = unit_commit_journaled(db);
    if (rc)
        unit_rollback(db);
    return rc;
}

/* kvs_sync, kvs_close, kvs_compact outside a section: the pending lazy
 * sections written out (the hold is the lock). */
static int lazy_flush(kvs *db)
{
    if (!db->lazy_pending || db->section >= 0)
        return KVS_OK;
    db->section = KVS_WRITE;
    return section_leave(db, lazy_writeout(db));
}

/* Pages not yet in the file as of the last write-out: the dirty ones and
 * those grown since (the bound on one section's pre-images, and what the
 * write-out threshold counts). */
static uint64_t lazy_unwritten(kvs *db)
{
    uint32_t base = pager_sect_npages(db->pg), n = hdr_npages(pager_hdr(db->pg));
    uint64_t u = (uint64_t)pool_ndirty(db->pf) + (n > base ? n - base : 0);
    /* a grown page that is dirty counts once: every such page is below n */
    return u < n ? u : n;
}

/* A write section's begin with lazy sections pending: keeps the header and
 * arms the pre-images.  A section that spilled pages before is written out
 * first instead (the spill file then holds nothing an abort must keep). */
static int lazy_begin(kvs *db)
{
    kvs_hdr *h = pager_hdr(db->pg);
    uint32_t n = hdr_npages(h);
    uint32_t need = (uint32_t)lazy_unwritten(db);
    if (spill_count(db->spill) > 0)
        return lazy_writeout(db);
    if (n > db->lazy_stamp_n) {
        size_t had = db->lazy_stamp_n;
        if (kvs_grow(&db->lazy_stamp, &db->lazy_stamp_n, (size_t)n + n / 4, sizeof(uint32_t), &db->err))
            return kvs_seterr(&db->err, KVS_ENOMEM, 0, "out of memory (lazy section stamps)");
        memset(db->lazy_stamp + had, 0, (db->lazy_stamp_n - had) * sizeof(uint32_t));
    }
    if (need > db->pre_cap) {
        /* room for half as much again, up to the limit (need is never past
         * it: lazy_end writes out beyond it) */
        uint32_t want = need + need / 2 + 8;
        uint8_t *img;
        if (want > db->lazy_limit)
            want = need > db->lazy_limit ? need : db->lazy_limit;
        if (kvs_grow(&db->pre_pg, &db->pre_pg_cap, want, sizeof(uint32_t), &db->err))
            return kvs_seterr(&db->err, KVS_ENOMEM, 0, "out of memory (lazy section pre-images)");
        /* nothing in it to keep (pre_n is reset below): no copy */
        free(db->pre_img);
        db->pre_img = NULL;
        db->pre_cap = 0;
        img = malloc((size_t)want * PG_SIZE);
        if (!img)
            return kvs_seterr(&db->err, KVS_ENOMEM, 0, "out of memory (lazy section pre-images)");
        db->pre_img = img;
        db->pre_cap = want;
    }
    if (++db->lazy_sect == 0) {
        memset(db->lazy_stamp, 0, (size_t)db->lazy_stamp_n * sizeof(uint32_t));
        db->lazy_sect = 1;
    }
    db->lazy_nbegin = n;
    db->pre_n = 0;
    db->lazy_lost = 0;
    hdr_copy(&db->lazy_hdr, h);
    db->lazy_active = 1;
    db->failed = 0;
    pool_touch_on(db->pf, 1);
    return KVS_OK;
}

/* What a lazy abort drops: pages touched in the section, pages it grew. */
static int lazy_dropped(void *arg, uint32_t pgno)
{
    kvs *db = arg;
    return pgno >= db->lazy_nbegin || db->lazy_stamp[pgno] == db->lazy_sect;
}

static int set_page(kvs *db, uint32_t pgno, const uint8_t *image);

/* kvs_abort or a failure of a section that began with lazy sections
 * pending: the state at its kvs_begin comes back (the pages it touched
 * dropped, the pre-images put back dirty, the header as it was).  If that
 * cannot be done (a pre-image put back needs a frame and the eviction of
 * a victim fails), everything since the last write-out is thrown away and
 * the error returned. */
static int lazy_restore(kvs *db)
{
    kvs_err saved = db->err;
    uint32_t i;
    int rc = KVS_OK;
    pool_touch_on(db->pf, 0);
    db->lazy_active = 0;
    if (db->lazy_lost) {
        rc = kvs_seterr(&db->err, KVS_ENOMEM, 0, "lazy section: pre-image area full");
    } else {
        pool_drop_some(db->pf, lazy_dropped, db);
        spill_reset(db->spill);
        hdr_copy(pager_hdr(db->pg), &db->lazy_hdr);
        for (i = 0; i < db->pre_n && rc == KVS_OK; i++)
            rc = set_page(db, db->pre_pg[i], db->pre_img + (size_t)i * PG_SIZE);
    }
    if (rc) {
        kvs_err why = db->err;
        unit_rollback(db);
        db->lazy_pending = 0;
        db->err = why;
        return kvs_seterr(&db->err, rc, 0,
                          "lazy sections since the last write-out lost in a rollback: %.300s", why.msg);
    }
    lh_forget(db->t);
    lh_set_modified(db->t, 1);
    db->truncated = 0;
    db->bumped = 0;
    db->err = saved;
    return KVS_OK;
}

/* kvs_end of a lazy write section: kept in memory, or written out when the
 * dirty and grown pages pass the limit, the section spilled or truncated. */
static int lazy_end(kvs *db)
{
    pool_touch_on(db->pf, 0);
    db->lazy_active = 0;
    if (!unit_changed(db))
        return KVS_OK;
    if (db->truncated || spill_count(db->spill) > 0 || lazy_unwritten(db) > db->lazy_limit)
        return lazy_writeout(db);
    db->lazy_pending = 1;
    return KVS_OK;
}

int kvs_prepare(kvs *db, uint64_t xid, uint64_t *lsn)
{
    int rc;
    *lsn = 0;
    if (db->lazy)
        return kvs_seterr(&db->err, KVS_EINVAL, 0,
                          "kvs_prepare is refused on a KVS_LAZY handle: its sections are not "
                          "journalled one by one");
    if (db->section != KVS_WRITE || db->prepared)
        return kvs_seterr(&db->err, KVS_EINVAL, 0, "kvs_prepare needs an open write section, not prepared yet");
    if (db->failed)
        return db->failed;
    if (unit_changed(db) && db->j) {
        rc = unit_prepare(db, xid, lsn);
        if (rc) {
            db->failed = rc;
            return rc;
        }
    }
    db->prepared = 1;
    db->prep_lsn = *lsn;
    return KVS_OK;
}

int kvs_commit(kvs *db)
{
    int rc = KVS_OK;
    if (db->section != KVS_WRITE || !db->prepared)
        return kvs_seterr(&db->err, KVS_EINVAL, 0, "kvs_commit needs a prepared write section");
    db->prepared = 0;
    if (db->prep_lsn) {
        rc = unit_writeback(db, db->prep_lsn);
        if (rc)
            unit_rollback(db);
    }
    db->prep_lsn = 0;
    return section_leave(db, rc);
}

/* -- read sections without the lock (KVS_READ1) -- */

/* Internal: the gate found that a write section began since the unlocked
 * section did; the first get starts over under the lock.  Never returned. */
#define KVS_ESTALE_ (-31900)

/* The pool's gate of an unlocked section: before the first read from the
 * file, take the lock; the generation unchanged then, nobody wrote the file
 * since the section began, and it goes on as a locked section. */
static int unlocked_gate(void *arg)
{
    kvs *db = arg;
    int rc = lock_take(db, KVS_READ);
    if (rc)
        return rc;      /* still unlocked, the gate still on */
    pool_set_gate(db->pf, NULL, NULL);
    db->unlocked = 0;
    if (gen_unchanged(db))
        return KVS_OK;
    /* what the section read from memory may no longer be the file's: the
     * first get, still under way (read1_gets 1), starts over */
    if (db->read1_gets == 1)
        return KVS_ESTALE_;
    return kvs_seterr(&db->err, KVS_EINVAL, 0,
                      "a KVS_READ1 section read more than its one get while the file changed");
}

/* A read section of one get may run without the lock when nothing can have
 * changed since this handle's last section: its generation is the recorded
 * one (no write section of the file has begun since, "Change generations"),
 * the pool is private (no one else changes its frames), the header in
 * memory names no owner but the handle's own host (a host's shared pool
 * writes the file under a shared hold: such a reader takes the lock and
 * probes, "Processes outside the cluster"; the handle's own host has no pool
 * on it) and no replacement.  Whatever it reads from memory is then the
 * file as it was when the generation was loaded; a read from the file takes
 * the lock first (the gate). */
static int read1_unlocked_ok(kvs *db)
{
    const kvs_hdr *h = pager_hdr(db->pg);
    return !db->shared && !db->excl && !db->lazy_pending && !db->moved && gen_unchanged(db) &&
           (hdr_owner(h) == 0 || hdr_owner(h) == db->host_id) && !may_be_replaced(h);
}

/* The one get of a KVS_READ1 section. */
static int read1_get(kvs *db, const void *key, size_t klen, kvs_slice *val, uint64_t *stamp)
{
    int rc;
    if (db->read1_gets++)
        return kvs_seterr(&db->err, KVS_EINVAL, 0, "a KVS_READ1 section holds one get");
    rc = lh_get_stamped(db->t, key, klen, val, stamp);     /* (stamp may be NULL) */
    if (rc == KVS_ESTALE_) {
        /* a writer came between the section's begin and its first read
         * from the file: the lock is held now; validate as kvs_begin does
         * and read again (nothing was returned yet) */
        rc = cache_revalidate(db, KVS_READ);
        if (rc == KVS_OK)
            rc = lh_get_stamped(db->t, key, klen, val, stamp);
    }
    db->read1_gets = 2;     /* done: a later read from the file cannot start over */
    if (is_failure(rc) && kvs_is_damage(rc))
        db->poisoned = 1;
    return rc;
}

/* -- the three composed -- */

int kvs_begin(kvs *db, int mode)
{
    int rc, read1 = 0;
    if (mode == KVS_READ1) {
        mode = KVS_READ;
        read1 = 1;
    }
    if (mode != KVS_READ && mode != KVS_WRITE)
        return kvs_seterr(&db->err, KVS_EINVAL, 0, "bad section mode %d", mode);
    if (db->section >= 0)
        return kvs_seterr(&db->err, KVS_EINVAL, 0, "sections do not nest");
    if (mode == KVS_WRITE && db->rdonly)
        return kvs_seterr(&db->err, KVS_ERDONLY, 0, "handle opened read-only");
    if (db->torn)
        return kvs_seterr(&db->err, KVS_EJOURNAL, 0,
                          "a write-back into the file failed and, the file being held exclusively, "
                          "was not undone: the file is torn until the journal's record is replayed: "
                          "reopen it (recovery) before reading or writing it");
    if (mode == KVS_WRITE && db->jbroken)
        return kvs_seterr(&db->err, KVS_EJOURNAL, 0,
                          "a write-back into the file failed; the journal holds it: reopen the "
                          "file to recover before writing again");
    if (mode == KVS_WRITE && db->indoubt)
        return kvs_seterr(&db->err, KVS_EINDOUBT, 0,
                          "the journal holds a commit of this file by transaction %llu whose outcome "
                          "only its host can tell (no xid_status callback): the file is read without "
                          "it, writes are refused until a host resolves it",
                          (unsigned long long)db->indoubt);
    if (mode == KVS_WRITE && db->poisoned) {
        char prev[sizeof db->err.msg];
        memcpy(prev, db->err.msg, sizeof prev);
        return kvs_seterr(&db->err, KVS_ECORRUPT, db->err.page,
                          "file failed validation earlier; refusing to write it (%.200s)", prev);
    }
    db->read1 = read1;
    db->read1_gets = 0;
    if (read1 && read1_unlocked_ok(db)) {
        db->unlocked = 1;
        pool_set_gate(db->pf, unlocked_gate, db);
        db->section = KVS_READ;
        unit_begin(db);
        return KVS_OK;
    }
    /* KVS_EXCLUSIVE, private pool, header loaded: a read section has no
     * lock to take and nothing to reread (what lock_take and
     * cache_revalidate would find), so neither is called: this is every
     * one-get section's fixed cost */
    if (mode == KVS_READ && db->excl && db->loaded && !db->shared) {
        db->section = KVS_READ;
        if (db->lazy_pending)
            db->failed = 0;
        else
            unit_begin(db);
        return KVS_OK;
    }
    rc = lock_take(db, mode);
    if (rc)
        return rc;
    rc = cache_revalidate(db, mode);
    /* KVS_EXCLUSIVE: one bump per hold is enough: a reader elsewhere
     * loads its generation only after the lock is released */
    if (rc == KVS_OK && mode == KVS_WRITE && !(db->excl && db->excl_bumped)) {
        rc = gen_bump(db);
        db->excl_bumped = db->excl && rc == KVS_OK;
    }
    if (rc) {
        lock_release(db);
        return rc;
    }
    db->section = mode;
    /* KVS_LAZY: the unit of change goes on from the lazy sections before
     * (a read section too keeps it: its evictions spill their pages) */
    if (db->lazy_pending && mode == KVS_READ) {
        db->failed = 0;
        return KVS_OK;
    }
    if (db->lazy_pending) {
        rc = lazy_begin(db);
        if (rc) {
            db->section = -1;
            lock_release(db);
            return rc;
        }
        if (db->lazy_active)
            return KVS_OK;
    }
    unit_begin(db);
    return KVS_OK;
}

/* Leaves the section (the unit is finished or thrown away): unlocks. */
static int section_leave(kvs *db, int rc)
{
    int rc2 = KVS_OK, rc3, unlocked = db->unlocked;
    db->section = -1;
    db->failed = 0;
    db->read1 = 0;
    if (unlocked) {
        pool_set_gate(db->pf, NULL, NULL);
        db->unlocked = 0;
    }
    /* the pool's per-file counters and the trace are brought up to date
     * once a section, not per access */
    pool_file_publish(db->pf);
    rc3 = pool_trace_is_on(db->pf) ? pool_trace_flush(db->pf) : KVS_OK;
    /* KVS_EXCLUSIVE: nothing to remember, the lock says it all (and
     * nothing to release).  An unlocked section keeps what it had: its
     * pages are the file's as of the recorded generation, which a writer
     * may have moved since */
    if (!unlocked && !db->excl) {
        gen_remember(db);
        rc2 = lock_release(db);
    }
    return rc ? rc : rc2 ? rc2 : rc3;
}

int kvs_end(kvs *db)
{
    int rc = KVS_OK;
    if (db->section < 0)
        return kvs_seterr(&db->err, KVS_EINVAL, 0, "no section to end");
    if (db->section == KVS_WRITE) {
        if (db->failed) {
            rc = db->failed;
            if (db->lazy_active) {
                int rc2 = lazy_restore(db);
                if (rc2)
                    rc = rc2;
            } else {
                unit_rollback(db);
            }
        } else if (db->prepared) {
            /* kvs_end of a prepared section is its kvs_commit */
            return kvs_commit(db);
        } else if (db->lazy) {
            rc = lazy_end(db);
        } else if (unit_changed(db)) {
            rc = unit_commit_journaled(db);
            if (rc)
                unit_rollback(db);
        }
    }
    return section_leave(db, rc);
}

int kvs_abort(kvs *db)
{
    int rc = KVS_OK;
    if (db->section < 0)
        return kvs_seterr(&db->err, KVS_EINVAL, 0, "no section to abort");
    /* a write section that changed nothing keeps its (valid) cache */
    if (db->section == KVS_WRITE && db->lazy_active)
        rc = lazy_restore(db);
    else if (db->section == KVS_WRITE && (db->failed || unit_changed(db) || db->bumped))
        unit_rollback(db);
    /* a prepared record stays in the journal, resolved as aborted by its
     * xid; it no longer holds a checkpoint back */
    if (db->prepared && db->prep_lsn)
        jr_done(db->j, db->prep_lsn);
    db->prepared = 0;
    db->prep_lsn = 0;
    return section_leave(db, rc);
}

/* Every call returns to the host with no content lock held (kvs.h). */
#ifdef KVS_DEBUG
#define ASSERT_NO_PAGE_LOCKS(db) do {                                           \
        if (pool_locks_held((db)->pf)) {                                        \
            fprintf(stderr, "kvs: %s returns with %u content lock(s) held\n",   \
                    __func__, (unsigned)pool_locks_held((db)->pf));             \
            abort();                                                            \
        }                                                                       \
    } while (0)
#else
#define ASSERT_NO_PAGE_LOCKS(db) ((void)0)
#endif

/* Runs op inside the caller's section or an implicit one of `mode`. */
#define WITH_SECTION(db, mode, call) do {                                       \
        int implicit_ = 0, rc_, rce_;                                           \
        if ((db)->section < 0) {                                                \
            rc_ = kvs_begin((db), (mode));                                      \
            if (rc_)                                                            \
                return rc_;                                                     \
            implicit_ = 1;                                                      \
        } else if ((mode) == KVS_WRITE && (db)->section != KVS_WRITE) {         \
            return kvs_seterr(&(db)->err, KVS_ERDONLY, 0,                       \
                              "write inside a read section");                   \
        } else if ((db)->failed) {                                              \
            return (db)->failed;                                                \
        } else if ((mode) == KVS_WRITE && (db)->prepared) {                     \
            return kvs_seterr(&(db)->err, KVS_EINVAL, 0,                        \
                              "write in a prepared section");                   \
        }                                                                       \
        rc_ = (call);                                                           \
        ASSERT_NO_PAGE_LOCKS(db);                                               \
        if (is_failure(rc_)) {                                                  \
            if (kvs_is_damage(rc_))                                             \
                (db)->poisoned = 1;                                             \
            if ((db)->section == KVS_WRITE)                                     \
                (db)->failed = rc_;                                             \
        }                                                                       \
        if (implicit_) {                                                        \
            rce_ = kvs_end(db);                                                 \
            if (rc_ == KVS_OK || rc_ == KVS_NOTFOUND || rc_ == KVS_EXISTS)      \
                if (rce_)                                                       \
                    rc_ = rce_;                                                 \
        }                                                                       \
        return rc_;                                                             \
    } while (0)

/* ---- records ------------------------------------------------------------------ */

int kvs_get(kvs *db, const void *key, size_t klen, kvs_slice *val)
{
    if (db->read1 && db->section >= 0)
        return read1_get(db, key, klen, val, NULL);
    WITH_SECTION(db, KVS_READ, lh_get(db->t, key, klen, val));
}

int kvs_get_stamped(kvs *db, const void *key, size_t klen, kvs_slice *val, uint64_t *stamp)
{
    if (db->read1 && db->section >= 0)
        return read1_get(db, key, klen, val, stamp);
    WITH_SECTION(db, KVS_READ, lh_get_stamped(db->t, key, klen, val, stamp));
}

uint32_t kvs_key_order(kvs *db, const void *key, size_t klen)
{
    return lh_key_order(db->t, key, klen);
}

void kvs_prefetch(kvs *db, const void *key, size_t klen)
{
    if (klen <= KVS_MAX_KEY)
        lh_prefetch(db->t, key, klen);
}

int kvs_put(kvs *db, const void *key, size_t klen, const void *val, size_t vlen, int flags)
{
    if (klen > KVS_MAX_KEY || vlen > KVS_MAX_VALUE)
        return kvs_seterr(&db->err, KVS_ETOOBIG, 0, "key of %zu or value of %zu bytes too large "
                          "(limits %d and %lu)", klen, vlen, KVS_MAX_KEY, (unsigned long)KVS_MAX_VALUE);
    WITH_SECTION(db, KVS_WRITE, lh_put(db->t, key, klen, val, vlen, flags));
}

int kvs_delete(kvs *db, const void *key, size_t klen)
{
    WITH_SECTION(db, KVS_WRITE, lh_delete(db->t, key, klen));
}

uint64_t kvs_record_bytes(size_t klen, size_t vlen)
{
    int ext;
    if (klen > KVS_MAX_KEY || vlen > KVS_MAX_VALUE)
        return 0;
    return rec_size(klen, vlen, 0, &ext) + SLOT_SIZE;
}

/* The bucket count for the data bytes the table will hold (never less than
 * it holds now): what the puts' splits would reach. */
static int do_reserve(kvs *db, uint64_t data_bytes)
{
    uint64_t held = hdr_data_bytes(pager_hdr(db->pg));
    return lh_reserve(db->t, lh_buckets_for(lh_fillfactor(db->t), data_bytes > held ? data_bytes : held));
}

int kvs_reserve(kvs *db, uint64_t data_bytes)
{
    WITH_SECTION(db, KVS_WRITE, do_reserve(db, data_bytes));
}

/* Puts the image of page pgno into the pool as a dirty page. */
static int set_page(kvs *db, uint32_t pgno, const uint8_t *image)
{
    uint32_t fi;
    uint8_t *pg;
    int rc = pool_fetch(db->pf, pgno, POOL_NEW, &fi, &pg);
    if (rc)
        return rc;
    pool_lock(db->pf, fi, POOL_EXCLUSIVE);
    memcpy(pg, image, PG_SIZE);
    pool_dirty(db->pf, fi);
    pool_release(db->pf, fi);
    return KVS_OK;
}

static int do_truncate(kvs *db)
{
    kvs_hdr *h = pager_hdr(db->pg);
    uint8_t dirp[PG_SIZE], bucketp[PG_SIZE];
    int rc;
    /* A change of the section like any other: the empty table (header,
     * directory page 1, bucket page 2) replaces the section's view in
     * memory, and the unit's write-out writes pages 1-2 and the header and
     * then trims the file (write_out), so kvs_abort or a failure before
     * the end leaves the file as it was.  Pages the old header counts
     * beyond page 2 are not referenced by the new table; those the section
     * allocates again are "not fresh" (below the section's old page count)
     * and go to the spill file if evicted, never over the old file. */
    /* KVS_LAZY: the earlier lazy sections' pages are kept for an abort
     * before the pool forgets them */
    if (db->lazy_active)
        pool_touch_dirty(db->pf);
    cache_forget(db);
    spill_reset(db->spill);
    lh_format_new(h, dirp, bucketp);
    lh_set_modified(db->t, 1);
    db->truncated = 1;
    rc = set_page(db, 1, dirp);
    if (rc == KVS_OK)
        rc = set_page(db, 2, bucketp);
    return rc;
}

int kvs_truncate(kvs *db)
{
    WITH_SECTION(db, KVS_WRITE, do_truncate(db));
}

static int do_sync(kvs *db)
{
    int rc = KVS_OK;
    if (db->section == KVS_WRITE && unit_changed(db)) {
        /* KVS_LAZY: a commit point; an abort after it rolls back to it */
        pool_touch_on(db->pf, 0);
        db->lazy_active = 0;
        db->lazy_pending = 0;
        rc = unit_commit_journaled(db);
    }
    if (!rc && !db->rdonly)
        rc = pager_sync(db->pg);
    if (!rc)
        db->need_sync = 0;
    return rc;
}

int kvs_sync(kvs *db)
{
    if (db->section < 0) {
        int rc = lazy_flush(db);
        if (rc == KVS_OK && !db->rdonly)
            rc = pager_sync(db->pg);
        if (!rc)
            db->need_sync = 0;
        return rc;
    }
    WITH_SECTION(db, KVS_WRITE, do_sync(db));
}

int kvs_compact(kvs *db, kvs_compact_info *info)
{
    compact_hook hook;
    int rc, rc2, newfd = -1;
    if (db->section >= 0)
        return kvs_seterr(&db->err, KVS_EINVAL, 0, "kvs_compact runs outside a section");
    if (db->rdonly)
        return kvs_seterr(&db->err, KVS_ERDONLY, 0, "handle opened read-only");
    if (db->torn)
        return kvs_seterr(&db->err, KVS_EJOURNAL, 0, "a write-back into the file failed and was not "
                          "undone: reopen it (recovery) before compacting it");
    if (!db->os->fstat || !db->os->stat || !db->os->rename)
        return kvs_seterr(&db->err, KVS_EINVAL, 0, "the I/O table has no fstat, stat or rename");
    rc = lazy_flush(db);
    if (rc)
        return rc;
    rc = kvs_begin(db, KVS_WRITE);
    if (rc)
        return rc;
    hook.interrupted = db->interrupted;
    hook.arg = db->interrupt_arg;
    hook.hold = db->flock_held; /* owner: the new file gets the hold, not LOCK_EX */
    rc = compact_file(db->t, db->path, &hook, &newfd, info);
    if (rc == KVS_ECORRUPT || rc == KVS_ETRUNCATED)
        db->poisoned = 1;
    if (newfd >= 0 && db->shared) {
        /* the other handles learn from the old slot's header (its
         * REPLACING flag) that they must follow; this one leaves the old
         * slot, joins the new file's and takes its lock */
        pool_file_set_header(db->pf, pager_hdr(db->pg));
        lock_release(db);
        db->os->close(pager_fd(db->pg));
        pager_set_fd(db->pg, newfd);
        lh_forget(db->t);
        db->need_sync = 0;
        db->loaded = 0;
        rc2 = shared_join(db);
        if (!rc2)
            rc2 = lock_take(db, KVS_WRITE);
        if (!rc2)
            rc2 = pool_file_header(db->pf, pager_hdr(db->pg), 1) < 0 ? KVS_EINVAL : KVS_OK;
        if (rc2) {
            db->loaded = 0;
            if (!rc)
                rc = rc2;
        } else {
            db->loaded = 1;
            db->bound_id = hdr_file_id(pager_hdr(db->pg));
        }
    } else if (newfd >= 0) {
        /* the new file is at the path: move there (its lock is held), which
         * also releases the old file's lock, and forget the old file */
        db->os->close(pager_fd(db->pg));
        pager_set_fd(db->pg, newfd);
        /* KVS_EXCLUSIVE: newfd's lock is the hold now; the new inode's
         * generation is bumped at the next write section */
        db->excl_bumped = 0;
        pool_drop(db->pf);
        lh_forget(db->t);
        db->need_sync = 0;      /* the new file was fsynced whole */
        rc2 = pager_load_header(db->pg, 1, 0);
        if (!rc2)
            rc2 = bind_file(db, NULL);
        if (!rc2)
            pool_file_changed(db->pf, hdr_change(pager_hdr(db->pg)));
        if (rc2) {
            db->loaded = 0;
            if (!rc)
                rc = rc2;
        }
    }
    rc2 = kvs_end(db);
    return rc ? rc : rc2;
}

static int do_new_stamp(kvs *db, uint64_t *stamp)
{
    *stamp = hdr_stamp_next(pager_hdr(db->pg));
    lh_set_modified(db->t, 1);
    return KVS_OK;
}

int kvs_new_stamp(kvs *db, uint64_t *stamp)
{
    WITH_SECTION(db, KVS_WRITE, do_new_stamp(db, stamp));
}

void kvs_set_stamp(kvs *db, uint64_t stamp)
{
    lh_set_stamp(db->t, stamp);
}

/* ---- cursor ------------------------------------------------------------------- */

int kvs_cursor_open(kvs *db, kvs_cursor **out)
{
    kvs_cursor *c = calloc(1, sizeof *c);
    if (!c)
        return kvs_seterr(&db->err, KVS_ENOMEM, 0, "out of memory");
    c->db = db;
    c->c = lh_cursor_new(db->t);
    if (!c->c) {
        free(c);
        return kvs_seterr(&db->err, KVS_ENOMEM, 0, "out of memory");
    }
    /* a full scan reads every page: a cold private cache reads them ahead,
     * in file order (pool_file_set_readahead) */
    c->whole = 1;
    if (db->whole_cursors++ == 0)
        pool_file_set_readahead(db->pf, 1);
    *out = c;
    return KVS_OK;
}

/* The cursor no longer scans the whole key order (a range, or its close). */
static void cursor_unwhole(kvs_cursor *c)
{
    if (!c->whole)
        return;
    c->whole = 0;
    if (--c->db->whole_cursors == 0)
        pool_file_set_readahead(c->db->pf, 0);
}

void kvs_cursor_skip_stamp(kvs_cursor *c, uint64_t stamp)
{
    lh_cursor_skip_stamp(c->c, stamp);
}

int kvs_cursor_set_range(kvs_cursor *c, uint64_t lo, uint64_t hi)
{
    if (lo > hi || hi > KVS_REV_END)
        return kvs_seterr(&c->db->err, KVS_EINVAL, 0,
                          "cursor range [%llu, %llu) is not within [0, 2^32)",
                          (unsigned long long)lo, (unsigned long long)hi);
    lh_cursor_set_range(c->c, lo, hi);
    /* a part of the order (a parallel scan's chunk): other pages are
     * others' to read */
    if (lo != 0 || hi != KVS_REV_END)
        cursor_unwhole(c);
    return KVS_OK;
}

int kvs_cursor_next(kvs_cursor *c, kvs_slice *key, kvs_slice *val)
{
    kvs *db = c->db;
    /* Outside a section, the rest of the bucket already copied at an earlier
     * step is served without locking the file again: a copy of what the file
     * held then, so every record present for the whole scan is still seen
     * exactly once (see README, the cursor). */
    if (db->section < 0 && lh_cursor_next_cached(c->c, key, val) == KVS_OK)
        return KVS_OK;
    WITH_SECTION(db, KVS_READ, lh_cursor_next(c->c, key, val));
}

int kvs_cursor_count(kvs_cursor *c, uint64_t *n)
{
    WITH_SECTION(c->db, KVS_READ, lh_cursor_count(c->c, n));
}

void kvs_cursor_close(kvs_cursor *c)
{
    if (!c)
        return;
    cursor_unwhole(c);
    lh_cursor_free(c->c);
    free(c);
}

/* ---- descriptor ------------------------------------------------------------------ */

static int do_descriptor(kvs *db, kvs_slice *out)
{
    out->data = hdr_desc(pager_hdr(db->pg));
    out->len = hdr_desc_len(pager_hdr(db->pg));
    return KVS_OK;
}

int kvs_descriptor(kvs *db, kvs_slice *out)
{
    WITH_SECTION(db, KVS_READ, do_descriptor(db, out));
}

static int do_set_descriptor(kvs *db, const void *blob, size_t len)
{
    hdr_set_desc(pager_hdr(db->pg), blob, len);
    lh_set_modified(db->t, 1);
    return KVS_OK;
}

int kvs_set_descriptor(kvs *db, const void *blob, size_t len)
{
    if (len > KVS_MAX_DESCRIPTOR)
        return kvs_seterr(&db->err, KVS_ETOOBIG, 0, "descriptor of %zu bytes exceeds %d",
                          len, KVS_MAX_DESCRIPTOR);
    WITH_SECTION(db, KVS_WRITE, do_set_descriptor(db, blob, len));
}

/* ---- statistics, check, inspection ---------------------------------------------- */

static int do_stats(kvs *db, kvs_stats *st)
{
    const kvs_hdr *h = pager_hdr(db->pg);
    off_t sz = db->os->filesize(pager_fd(db->pg));
    pool_counters pc;
    lh_counters lc;
    memset(st, 0, sizeof *st);
    st->file_bytes = sz > 0 ? (uint64_t)sz : 0;
    st->pages = hdr_npages(h);
    st->buckets = hdr_buckets(h);
    st->level = hdr_level(h);
    st->split = hdr_split(h);
    st->records = hdr_records(h);
    st->bucket_pages = st->buckets;
    st->overflow_pages = hdr_pages_of(h, KVS_PAGE_OVERFLOW);
    st->value_pages = hdr_pages_of(h, KVS_PAGE_VALUE);
    st->dir_pages = hdr_pages_of(h, KVS_PAGE_DIR);
    st->free_pages = hdr_free_count(h);
    st->load_factor = (double)hdr_data_bytes(h) / ((double)st->buckets * PG_USABLE);
    st->fillfactor = lh_fillfactor(db->t);
    st->change_counter = hdr_change(h);
    st->format_version = hdr_version(h);
    st->file_id = hdr_file_id(h);
    st->owner_id = hdr_owner(h);
    st->pool_slot = pool_file_slot(db->pf);
    st->shared_pool = db->poolmem == NULL;
    pool_get_counters(db->pf, &pc);
    st->cache_frames = pool_nframes(db->pool);
    st->cache_hits = pc.hits;
    st->cache_reads = pc.reads;
    st->cache_evictions = pc.evictions;
    st->cache_writes = pager_writes(db->pg);
    st->cache_invalidations = db->invalidations;
    lh_get_counters(db->t, &lc);
    st->gets = lc.gets;
    st->get_chain_pages = lc.get_chain_pages;
    st->splits = lc.splits;
    st->reopens = db->reopens;
    return KVS_OK;
}

static int do_size(kvs *db, uint64_t *records, uint64_t *pages)
{
    *records = hdr_records(pager_hdr(db->pg));
    *pages = hdr_npages(pager_hdr(db->pg));
    return KVS_OK;
}

int kvs_size_estimate(kvs *db, uint64_t *records, uint64_t *pages)
{
    /* no write section of the file began since this handle's last section
     * ended (a writer bumps first): the header in memory is the file's */
    if (db->section < 0 && !db->torn && ((db->excl && db->loaded) || gen_unchanged(db)))
        return do_size(db, records, pages);
    WITH_SECTION(db, KVS_READ, do_size(db, records, pages));
}

int kvs_stats_get(kvs *db, kvs_stats *st)
{
    WITH_SECTION(db, KVS_READ, do_stats(db, st));
}

void kvs_reset_counters(kvs *db)
{
    pool_reset_counters(db->pf);
    pager_reset_counts(db->pg);
    lh_reset_counters(db->t);
    db->invalidations = 0;
}

int kvs_check(kvs *db)
{
    WITH_SECTION(db, KVS_READ, lh_check(db->t));
}

/* Fills db->pagebuf with page pgno as this handle sees it (its own dirty
 * copy inside a write section, else the file's bytes); *ok = checksum. */
static int load_for_inspection(kvs *db, uint32_t pgno, int *ok)
{
    int rc;
    if (pgno >= hdr_npages(pager_hdr(db->pg)))
        return kvs_seterr(&db->err, KVS_EINVAL, 0, "page %u is beyond the file's %u pages",
                          (unsigned)pgno, (unsigned)hdr_npages(pager_hdr(db->pg)));
    if (pgno > 0 && pool_copy_dirty(db->pf, pgno, db->pagebuf)) {
        pager_seal(db->pagebuf, pgno);
        *ok = 1;
        return KVS_OK;
    }
    if (pgno == 0 && db->section == KVS_WRITE) {
        hdr_encode(pager_hdr(db->pg), db->pagebuf);
        *ok = 1;
        return KVS_OK;
    }
    rc = pager_read_raw(db->pg, pgno, db->pagebuf);
    if (rc)
        return rc;
    *ok = rd64(db->pagebuf + PG_CKSUM) == pager_checksum(db->pagebuf, pgno);
    return KVS_OK;
}

static int do_page_info(kvs *db, uint32_t pgno, kvs_page_info *pi)
{
    uint8_t *pg = db->pagebuf;
    int ok, rc = load_for_inspection(db, pgno, &ok), type;
    kvs_err scratch;
    if (rc)
        return rc;
    memset(pi, 0, sizeof *pi);
    pi->pageno = pgno;
    pi->checksum_ok = ok;
    pi->checksum = rd64(pg + PG_CKSUM);
    pi->bucket = UINT64_MAX;
    type = pg[PG_TYPE];
    memset(&scratch, 0, sizeof scratch);
    if (!ok || (pgno == 0 && type != KVS_PAGE_HEADER) ||
        (pgno > 0 && page_validate(pg, pgno, hdr_npages(pager_hdr(db->pg)), &scratch) != KVS_OK))
        type = 0;
    pi->type = type;
    pi->type_name = page_type_name(type);
    if (type == 0)
        return KVS_OK;
    pi->next = rd32(pg + PG_NEXT);
    switch (type) {
    case KVS_PAGE_BUCKET:
    case KVS_PAGE_OVERFLOW:
        pi->nslots = sp_nslots(pg);
        pi->free_bytes = sp_free(pg);
        pi->bucket = rd32(pg + PG_AUX);
        break;
    case KVS_PAGE_DIR:
        pi->nslots = rd16(pg + PG_NSLOTS);
        pi->free_bytes = (DIR_FANOUT - pi->nslots) * 4;
        break;
    case KVS_PAGE_VALUE:
        pi->free_bytes = PG_USABLE - rd32(pg + PG_AUX);
        break;
    case KVS_PAGE_FREE:
        pi->free_bytes = PG_USABLE;
        break;
    default:
        pi->free_bytes = PG_SIZE - HD_DESC - hdr_desc_len(pager_hdr(db->pg));
        break;
    }
    return KVS_OK;
}

int kvs_page_info_get(kvs *db, uint32_t pageno, kvs_page_info *pi)
{
    WITH_SECTION(db, KVS_READ, do_page_info(db, pageno, pi));
}

static int do_page_slot(kvs *db, uint32_t pgno, uint32_t slot, kvs_slot_info *si)
{
    uint8_t *pg = db->pagebuf;
    rec_view r;
    int ok, rc = load_for_inspection(db, pgno, &ok);
    if (rc)
        return rc;
    if (!ok)
        return kvs_seterr(&db->err, KVS_ECORRUPT, pgno, "page %u: checksum mismatch", (unsigned)pgno);
    if (pgno == 0 || (pg[PG_TYPE] != KVS_PAGE_BUCKET && pg[PG_TYPE] != KVS_PAGE_OVERFLOW))
        return kvs_seterr(&db->err, KVS_EINVAL, 0, "page %u is not a bucket or overflow page",
                          (unsigned)pgno);
    rc = page_validate(pg, pgno, hdr_npages(pager_hdr(db->pg)), &db->err);
    if (rc)
        return rc;
    if (slot >= sp_nslots(pg))
        return KVS_NOTFOUND;
    sp_record(pg, slot, &r);
    memset(si, 0, sizeof *si);
    si->slot = slot;
    si->offset = sp_off(pg, slot);
    si->length = sp_len(pg, slot);
    si->hash = sp_tag(pg, slot);
    si->flags = ((r.flags & REC_EXTERNAL) ? KVS_SLOT_EXTERNAL : 0) |
                ((r.flags & REC_STAMPED) ? KVS_SLOT_STAMPED : 0);
    si->value_len = r.vlen;
    si->stamp = r.stamp;
    si->key.data = r.key;
    si->key.len = r.klen;
    return KVS_OK;
}

int kvs_page_slot(kvs *db, uint32_t pageno, uint32_t slot, kvs_slot_info *si)
{
    WITH_SECTION(db, KVS_READ, do_page_slot(db, pageno, slot, si));
}
