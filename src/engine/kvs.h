/*
 * kvs.h - the public API of the kvs storage engine.
 *
 * kvs is a linear-hashing key-value file: fixed 4 KiB checksummed pages, a
 * page directory (bucket -> page), a buffer pool with pinning, page content
 * locks and LRU or clock-sweep replacement (private to a handle, or one
 * pool shared by many), a free-page list, overflow chains and value chains
 * for values larger than a page.  It is plain C99 + POSIX + libxxhash and knows nothing
 * of PostgreSQL; the FDW in src/fdw/ is one host, the tests and benchmarks in
 * test/ are others.  This header is the only one a host includes.
 *
 * Conventions
 *  - Every function that can fail returns an int: KVS_OK (0) or one of the
 *    negative KVS_E* codes below (a private range, like LMDB's), never errno.
 *    kvs_strerror(code) names the code; kvs_errmsg(db) gives the detail of the
 *    last failure on that handle (for corruption it names the page).
 *  - Keys and values are raw byte strings.  Keys are 0..KVS_MAX_KEY bytes
 *    (the empty key is valid), values 0..KVS_MAX_VALUE bytes.
 *  - A handle is used by one thread at a time.  Many processes may open the
 *    same file; they coordinate through flock() (see sections below).
 *  - Slices returned by get and the cursor point into the handle's (or the
 *    cursor's) own memory, never into a cached page: the engine copies the
 *    value out under the page's content lock, so the slice stays right even
 *    when another process changes that page in a shared pool.  A slice is
 *    valid until the next call on the same handle (or cursor); copy it out
 *    if you need it longer.  No call allocates per record.
 */
#ifndef KVS_H
#define KVS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVS_PAGE_SIZE        4096
#define KVS_MAX_KEY          1024               /* bytes */
#define KVS_MAX_VALUE        0x7fffffffUL        /* bytes; > Postgres's 1 GB */
#define KVS_MAX_DESCRIPTOR   2048               /* host blob in the header */

/* ---- return codes ---------------------------------------------------- */
#define KVS_OK               0
#define KVS_NOTFOUND    (-31001)  /* key absent / cursor at end */
#define KVS_EXISTS      (-31002)  /* insert-only put found the key */
#define KVS_ECORRUPT    (-31003)  /* bad page: checksum, structure; see errpage */
#define KVS_ENOTKVS     (-31004)  /* not a kvs file (magic) */
#define KVS_EVERSION    (-31005)  /* kvs file of another format version */
#define KVS_ETOOBIG     (-31006)  /* key > KVS_MAX_KEY or value > KVS_MAX_VALUE,
                                   * or descriptor > KVS_MAX_DESCRIPTOR */
#define KVS_EIO         (-31007)  /* I/O error; kvs_errno() has errno */
#define KVS_ENOSPC      (-31008)  /* disk full (ENOSPC, EDQUOT) */
#define KVS_ENOMEM      (-31009)  /* out of memory */
#define KVS_EINVAL      (-31010)  /* bad argument, option, or call order */
#define KVS_EINTR       (-31011)  /* lock wait or compaction interrupted by the host */
#define KVS_ERDONLY     (-31012)  /* write outside a write section or on a
                                   * handle opened KVS_RDONLY */
#define KVS_ETRUNCATED  (-31013)  /* file shorter than its header says */
#define KVS_EBUSY       (-31014)  /* file in use: handles of a shared pool (a
                                   * PostgreSQL cluster) have it open while a
                                   * handle outside that pool wants it, or its
                                   * header names another owner (owner_id) */
#define KVS_EINDOUBT    (-31015)  /* the journal holds a commit of this file
                                   * whose outcome only its host can tell (a
                                   * transaction id, and no xid_status
                                   * callback to ask): reads see the file
                                   * without it, writes are refused */
#define KVS_EJOURNAL    (-31016)  /* the journal failed (a failed fsync is
                                   * never retried as if it had worked):
                                   * writes refused until the files are
                                   * reopened and recovered */

typedef struct kvs kvs;                 /* an open file */
typedef struct kvs_cursor kvs_cursor;   /* a scan over all records */

typedef struct kvs_slice {
    const void *data;
    size_t      len;
} kvs_slice;

/* ---- the I/O table (SQLite's "os" layer) -------------------------------
 * All file access goes through these; tests swap them to inject faults
 * (failed or short writes, ENOSPC).  Each returns what the POSIX call of the
 * same name returns and sets errno.  NULL in kvs_options means POSIX. */
typedef struct kvs_os {
    int     (*open)(const char *path, int flags, mode_t mode);
    int     (*close)(int fd);
    ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    int     (*fsync)(int fd);
    int     (*ftruncate)(int fd, off_t len);
    off_t   (*filesize)(int fd);            /* -1 on error */
    int     (*flock)(int fd, int op);        /* LOCK_SH/LOCK_EX/LOCK_UN [|LOCK_NB] */
    int     (*link)(const char *from, const char *to);
    int     (*unlink)(const char *path);
    /* Compaction (kvs_compact) renames a new file over the path and flags
     * the old file's header first; a section begin that reads the flag
     * fstat()s its descriptor and stat()s the path to follow (see below).
     * A table without these three never follows a replacement and cannot
     * compact (KVS_EINVAL). */
    int     (*fstat)(int fd, struct stat *st);
    int     (*stat)(const char *path, struct stat *st);
    int     (*rename)(const char *from, const char *to);
    /* Growth: make the file at least off + len bytes long, the new bytes
     * reading as zeros and their disk space reserved, without writing them
     * (posix_fallocate; PostgreSQL 16 extends relations the same way).
     * Returns 0, or -1 with errno set: ENOSPC or EDQUOT is a full disk;
     * EOPNOTSUPP, EINVAL or ENOSYS say the file system cannot, and the
     * pager then writes zero pages instead, as it does when this is NULL. */
    int     (*allocate)(int fd, off_t off, off_t len);
} kvs_os;

const kvs_os *kvs_os_posix(void);

/* ---- page content locks (the host's) -----------------------------------
 * Every cached page has a content lock: the engine holds it shared while it
 * reads the page's bytes and exclusive while it changes them.  In one
 * process with one thread there is nothing to exclude and the callbacks are
 * NULL (no-ops); a host whose processes share one pool (kvs_pool below)
 * implements them, e.g. with one PostgreSQL LWLock per frame.  `frame` is
 * the frame's index in the pool, 0 .. frames-1.  The engine keeps these
 * rules, so locks that cannot be cancelled and have no deadlock detector
 * are safe:
 *   - lock() and unlock() return; they never raise, longjmp or fail;
 *   - one handle holds at most 2 content locks at once, the second only on
 *     the page the first one's chain link names (README, lock order);
 *   - never across I/O, a file-lock wait, another handle's call, or a
 *     return to the host: every kvs_* call returns with none held.
 * Builds with KVS_DEBUG check all of this on every acquire. */
#define KVS_LOCK_SHARED     1
#define KVS_LOCK_EXCLUSIVE  2

typedef struct kvs_locks {
    void  (*lock)(void *arg, uint32_t frame, int mode);
    void  (*unlock)(void *arg, uint32_t frame);
    void   *arg;
    /* The pool's mapping table (file, page) -> frame is split into
     * KVS_POOL_PARTITIONS partitions, each under its own lock (PostgreSQL's
     * BufMappingLock partitions): shared to look a page up, exclusive to
     * enter or remove one.  Held for a few instructions, never across I/O,
     * never with a content lock; at most two at once, taken in increasing
     * partition order.  NULL = the engine's own spinlocks in the block. */
    void  (*map_lock)(void *arg, uint32_t partition, int mode);
    void  (*map_unlock)(void *arg, uint32_t partition);
} kvs_locks;

#define KVS_POOL_PARTITIONS 16

/* ---- a pool shared by several handles ------------------------------------
 * By default each handle has a private pool of cache_pages frames.  A host
 * can instead format one block of memory as a pool and give it to many
 * kvs_open calls (kvs_options.pool): their files then share the frames,
 * keyed by (file, page).  The block holds only offsets, never pointers, so
 * it may be memory shared between processes (mapped at any address); the
 * caller keeps it alive until every handle using it is closed.  `files` is
 * how many files may be open on it at once; `policy` its replacement:
 * KVS_CACHE_LRU (exact LRU) or KVS_CACHE_CLOCK (clock sweep with a usage
 * count capped at 5, as PostgreSQL's shared buffers). */
#define KVS_CACHE_LRU    0
#define KVS_CACHE_CLOCK  1

typedef struct kvs_pool kvs_pool;
size_t      kvs_pool_size(uint32_t frames, uint32_t files);
/* mem: kvs_pool_size(frames, files) bytes, 4096-aligned; frames >= 8. */
int         kvs_pool_format(void *mem, size_t size, uint32_t frames, uint32_t files,
                            int policy, kvs_pool **out);
/* mem formatted earlier (in another process, at another address): the pool,
 * or NULL if mem is not one. */
kvs_pool   *kvs_pool_attach(void *mem);
uint32_t    kvs_pool_frames(const kvs_pool *p);
uint32_t    kvs_pool_files(const kvs_pool *p);
int         kvs_pool_policy(const kvs_pool *p);

/* A shared pool's sections.  Handles of a pool passed in kvs_options.pool
 * do not use flock for sections: a reader/writer lock per file in the
 * pool's file table excludes them (readers share it, a write section holds
 * it exclusively), waited for with the interrupted()/lock_wait() callbacks.
 * Instead each such handle holds flock(LOCK_SH) on its file from open to
 * close, so a handle outside the pool (the engine used alone) cannot write
 * the file meanwhile: its write section fails with KVS_EBUSY.  Only one
 * pool may have a file open at a time; the header's owner_id (kvs_options)
 * tells a second one (another PostgreSQL cluster) that it is taken.
 * kvs_waiters() says how many handles wait for this file's section lock
 * now (0 outside a shared pool): a long write section can end and begin
 * again when it is nonzero, so readers never wait for a whole statement. */
uint32_t    kvs_waiters(const kvs *db);
/* The other handles of the pool that have this file open (0 outside a
 * shared pool), and the pages the open write section holds back (dirty in
 * the pool or spilled): what its kvs_end will write.  A writer that ends
 * its section when the second passes a bound, while the first is nonzero,
 * keeps every reader's wait to one bounded write-out. */
uint32_t    kvs_sharers(const kvs *db);
uint32_t    kvs_pending_pages(const kvs *db);

/* ---- looking inside a pool (pg_buffercache, pg_statio) -------------------
 * Unlocked snapshots: each field is read atomically, the whole may be a
 * moment's mix.  kvs_pool_frame: KVS_EINVAL for frame >= frames. */
typedef struct kvs_frame_info {
    int      used;             /* holds a page */
    uint32_t file_slot;        /* entry in the file table (kvs_pool_file) */
    uint32_t page;             /* page number in that file */
    int      page_type;        /* KVS_PAGE_* of the bytes cached, 0 if unknown */
    int      dirty;
    uint32_t pins;             /* handles using it right now */
    uint32_t usage;            /* clock sweep's usage count (0..5); 0 under LRU */
    uint32_t lru_rank;         /* LRU position, 0 = most recent; UINT32_MAX under clock */
} kvs_frame_info;
/* ranks: may be NULL; else an array of kvs_pool_frames(p) entries the call
 * fills once (a walk of the LRU list under its lock) for later calls to
 * read lru_rank from: pass the same array to every kvs_pool_frame call of
 * one snapshot, having called kvs_pool_lru_ranks(p, ranks) first. */
void        kvs_pool_lru_ranks(kvs_pool *p, uint32_t *ranks);
int         kvs_pool_frame(kvs_pool *p, uint32_t frame, const uint32_t *ranks,
                           kvs_frame_info *out);

/* One entry of the file table, with the counters of every handle on that
 * file added together (each handle adds its own at the end of each section
 * and at close).  KVS_NOTFOUND for an entry no file has. */
typedef struct kvs_pool_file_info {
    uint64_t file_id;          /* the header's nonce */
    uint64_t dev, ino;         /* the inode it was opened as */
    uint64_t owner_id;
    uint32_t users;            /* handles open on it now (0: idle, frames kept) */
    uint32_t frames, dirty;    /* frames holding its pages, dirty among them */
    uint64_t hits, reads, evictions, writes;
    uint64_t ring_reuses;      /* misses a bulk-read ring served (kvs_set_ring) */
} kvs_pool_file_info;
int         kvs_pool_file(kvs_pool *p, uint32_t slot, kvs_pool_file_info *out);
void        kvs_pool_reset_stats(kvs_pool *p);    /* zero every entry's counters */

/* Bulk reads (PostgreSQL's BULKREAD strategy): with a ring of n frames
 * (n >= 8; 0 = off, the default), this handle's misses reuse the frames of
 * its own small ring instead of evicting by the pool's policy, so one large
 * scan does not push everything else out.  A ring frame another handle has
 * used meanwhile (pinned, or its usage count above 1) leaves the ring. */
int         kvs_set_ring(kvs *db, uint32_t frames);

/* Page-access trace, for replaying a workload through other policies
 * offline: while fd >= 0, every page access of this handle (a pool fetch,
 * hit or miss) appends one kvs_trace_rec to fd (buffered; written out at
 * section end, at kvs_set_trace and at close).  seq is one counter for
 * the whole pool, so the traces of several handles (processes) merge into
 * one order by seq.  fd = -1 stops (and writes out what is buffered). */
typedef struct kvs_trace_rec {
    uint64_t seq;
    uint32_t file_slot;
    uint32_t page;
    uint32_t flags;            /* KVS_TRACE_* */
    uint32_t pad;
} kvs_trace_rec;
#define KVS_TRACE_HIT    0x1   /* the page was cached */
#define KVS_TRACE_RING   0x2   /* a miss served from the bulk-read ring */
int         kvs_set_trace(kvs *db, int fd);

/* ---- the journal -----------------------------------------------------------
 * A write-ahead log of page images (full-page writes) that many files and
 * many processes share: a directory (PostgreSQL: $PGDATA/kvs_fdw/journal).
 * A commit appends one record per file: every page its write section
 * changed, and the header, tagged with a transaction id; once the record is
 * durable (kvs_journal_flush) the pages are written back to the file in
 * place, without fsync (a checkpoint fsyncs the files and lets the journal
 * be reused).  Recovery, when a file is next opened after a crash, writes
 * again the pages of every committed record the file may lack, so a torn or
 * lost page write is repaired.  Whether a record's transaction committed:
 * xid 0 -- the engine alone: committed once the record is durable; any
 * other xid -- the host's answer through xid_status (PostgreSQL: the commit
 * log); without the callback such records are in doubt (KVS_EINDOUBT).
 * Format and algorithms: src/engine/README.md, "The journal". */
typedef struct kvs_journal kvs_journal;

#define KVS_XID_ABORTED     0
#define KVS_XID_COMMITTED   1
#define KVS_XID_IN_PROGRESS 2   /* still running: its own process writes it back */

typedef struct kvs_journal_options {
    const kvs_os *os;              /* NULL = kvs_os_posix() */
    /* KVS_XID_*, or a negative kvs code on failure.  NULL: every nonzero
     * xid is in doubt. */
    int        (*xid_status)(void *arg, uint64_t xid);
    void        *xid_arg;
    uint64_t     checkpoint_bytes; /* checkpoint once the journal holds this
                                    * much since the last one; 0 = 64 MiB */
} kvs_journal_options;

typedef struct kvs_journal_stats {
    uint64_t records;              /* appended by this process */
    uint64_t bytes;                /* appended by this process */
    uint64_t flushes;              /* fsyncs this process made */
    uint64_t flush_shared;         /* flushes asked for that another
                                    * process's fsync covered (group commit) */
    uint64_t checkpoints;          /* made by this process */
    uint64_t recovered_records;    /* replayed by this process */
    uint64_t recovered_pages;
    uint64_t end_lsn;              /* where the journal ends now */
    uint64_t flushed_lsn;          /* durable through */
    uint64_t checkpoint_lsn;       /* records before it are in their files, fsynced */
} kvs_journal_stats;

void        kvs_journal_options_init(kvs_journal_options *o);
int         kvs_journal_open(const char *dir, const kvs_journal_options *o,
                             kvs_journal **out);   /* creates dir if absent */
int         kvs_journal_close(kvs_journal *j);     /* after every handle using it */
int         kvs_journal_flush(kvs_journal *j, uint64_t lsn); /* durable through lsn;
                                                   * concurrent callers share fsyncs */
int         kvs_journal_checkpoint(kvs_journal *j);
void        kvs_journal_stats_get(kvs_journal *j, kvs_journal_stats *st);
/* The same counters summed over every process that used the journal since
 * its control file was made (they survive restarts); the LSNs as above. */
void        kvs_journal_stats_cluster(kvs_journal *j, kvs_journal_stats *st);
const char *kvs_journal_errmsg(const kvs_journal *j);

/* ---- opening ----------------------------------------------------------- */
#define KVS_CREATE   0x1    /* create the file if absent (race-free) */
#define KVS_RDONLY   0x2    /* never write; write sections fail KVS_ERDONLY */
#define KVS_ADOPT    0x4    /* take the file over from the owner its header
                             * names (owner_id below): a cluster restored
                             * under a new system identifier */
#define KVS_NOSYNC   0x8    /* kvs_end (and kvs_sync mid-section) append the
                             * section's journal record but do not wait for
                             * it to be durable (no journal fsync): atomic
                             * and safe against a killed process, not
                             * against a power loss; for tests and bulk
                             * work (kvs_journal_flush makes it durable) */
#define KVS_EXCLUSIVE 0x10  /* locking mode exclusive (SQLite's PRAGMA
                             * locking_mode=EXCLUSIVE, gdbm's writer lock):
                             * kvs_open takes the file's lock exclusive
                             * (also for KVS_RDONLY: a shared pool's
                             * handles write under a shared lock, so a
                             * shared hold would not keep them out) and
                             * holds it until kvs_close.  Sections then
                             * take no lock and reread nothing: nobody else
                             * can write the file, so the header and the
                             * pages in memory stay the file's.  Any other
                             * handle of the file, in this process or
                             * another, waits at its open (or section,
                             * compaction, salvage) as for a section held
                             * all that time: forever, unless its
                             * interrupted() callback ends the wait
                             * (KVS_EINTR); a writer finding the file held
                             * by a host's shared pool gets KVS_EBUSY.
                             * Not with kvs_options.pool (KVS_EINVAL).
                             * README, "Locking mode exclusive" */
#define KVS_LAZY     0x20   /* lazy write sections (only with KVS_EXCLUSIVE
                             * on a writable handle, else KVS_EINVAL):
                             * kvs_end of a write section ends it in memory
                             * (no journal record, no write-back, no system
                             * call); its pages stay dirty in the pool.  The
                             * write-out (one journalled commit of every
                             * dirty page, as kvs_end makes without the
                             * flag) happens at kvs_sync, kvs_close,
                             * kvs_compact, and at a section's end when the
                             * dirty pages pass half the pool, the section
                             * spilled or truncated.  kvs_abort (and a failed
                             * section) still restore exactly the state at
                             * kvs_begin.  A crash loses the lazy sections
                             * since the last write-out, never part of one.
                             * kvs_prepare is refused (KVS_EINVAL).  README,
                             * "Lazy write sections" */

typedef struct kvs_options {
    int          flags;            /* KVS_CREATE, KVS_RDONLY, ... (above) */
    uint32_t     cache_pages;      /* buffer pool frames; 0 = 1024 (4 MiB); min 8 */
    uint32_t     fillfactor;       /* split threshold, percent 10..100; 0 = 75 */
    uint64_t     hash_seed;        /* at creation only; 0 = 0 (deterministic) */
    const void  *descriptor;       /* at creation only: host blob for the header */
    size_t       descriptor_len;   /*   (<= KVS_MAX_DESCRIPTOR) */
    /* Called while waiting for a file lock; nonzero aborts the wait with
     * KVS_EINTR (Postgres: InterruptPending).  NULL = wait forever. */
    int        (*interrupted)(void *arg);
    void        *interrupt_arg;
    /* Called with waiting = 1 when a lock wait begins (the first
     * non-blocking attempt failed) and with 0 when it ends, however it ends
     * (lock taken, error, interrupted); never for a lock taken at once.
     * Postgres: the backend's wait event.  NULL = not told. */
    void       (*lock_wait)(void *arg, int waiting);
    void        *lock_wait_arg;
    const kvs_os *os;              /* NULL = kvs_os_posix() */
    /* The cache: a private pool of cache_pages frames replaced by
     * cache_policy (KVS_CACHE_LRU, the default, or KVS_CACHE_CLOCK), or a
     * shared one (then cache_pages and cache_policy are the pool's). */
    int          cache_policy;
    kvs_pool    *pool;             /* NULL = private */
    const kvs_locks *locks;        /* content locks; NULL = none needed */
    /* Who has the file: a host's identity (PostgreSQL: the cluster's system
     * identifier), recorded in the header by the first handle of a shared
     * pool that opens it; a handle with another nonzero owner_id gets
     * KVS_EBUSY unless it passes KVS_ADOPT.  0 = none (the engine alone):
     * owners are neither checked nor recorded.  A private pool's handle
     * neither checks nor records either; its owner_id names the host it
     * belongs to, which promises to run no shared pool on the file while
     * the handle is open: a file that host owns is then read and written
     * as one with no owner (no probe for a hold; other processes' shared
     * locks on it are read sections, waited for, never KVS_EBUSY). */
    uint64_t     owner_id;
    /* The journal commits go through (see "the journal" below).  NULL: the
     * journal the file's header names (the directory a host's journal
     * recorded there), else a private one at "<path>-journal" beside the
     * file, opened and closed with the handle. */
    kvs_journal *journal;
} kvs_options;

void        kvs_options_init(kvs_options *opt);     /* all defaults */
int         kvs_open(const char *path, const kvs_options *opt, kvs **out);
int         kvs_close(kvs *db);         /* ends an open section, syncs, frees;
                                         * frees the handle even on error */
int         kvs_set_fillfactor(kvs *db, uint32_t percent);

/* ---- sections -----------------------------------------------------------
 * Every operation runs inside a read section (shared flock) or a write
 * section (exclusive flock).  A call made outside one opens and closes one
 * implicitly.  Beginning a section takes the lock, rereads the header, and
 * drops cached pages if another process changed the file since (the header's
 * change counter).  A handle opened KVS_EXCLUSIVE does neither: it holds
 * the lock from open to close, so nothing can change under it.  Sections
 * do not nest.
 *
 * A write section is the unit of change: nothing it changes reaches the
 * file before it ends (pages it grows the file with aside, which nothing on
 * disk refers to and which are cut off again).  kvs_end appends the
 * section's record to the journal and waits for it to be durable (one
 * journal fsync, shared with concurrent commits; none with KVS_NOSYNC),
 * then writes every change out, bumps the change counter and unlocks (no
 * fsync of the file: a checkpoint does that); a failed write-out is undone
 * in the file, and the durable record is replayed when the file is next
 * opened (the handle refuses writes with KVS_EJOURNAL until then).  If an
 * operation inside the section failed (I/O, ENOSPC, corruption, out of
 * memory; not the answers NOTFOUND / EXISTS or the refusals ETOOBIG /
 * EINVAL / ERDONLY), kvs_end discards the section instead and returns that
 * error again.  kvs_abort discards the section whatever happened in it: the
 * file stays byte for byte as it was at kvs_begin, the handle's cache and
 * cursors forget the discarded pages, the lock is released.  Hosts end a
 * section whose work is complete with kvs_end and every other (an error
 * raised in the middle, a cancel) with kvs_abort.  For a read section the
 * two are the same.  Exception: kvs_sync inside a write section writes the
 * section so far out; kvs_abort then discards only what came after it.  A
 * stamp taken by kvs_new_stamp in a discarded section may be returned again
 * (no record kept it).  Beginning a section also notices a file that
 * kvs_compact (in any process) replaced since: the handle then moves to the
 * new file at its path transparently (its cached pages are dropped, open
 * cursors continue). */
#define KVS_READ   0
#define KVS_WRITE  1
/* A read section of one kvs_get (or kvs_get_stamped): when this handle's
 * last section left a change generation that still holds (a private pool
 * with a journal), it takes no lock and makes no system call while the get
 * finds its pages in the cache; a read from the file takes the lock first.
 * A second get in it is KVS_EINVAL; kvs_stats_get is allowed; other
 * operations should not be used in it.  kvs_in_section says KVS_READ.
 * README, "Read sections without the lock". */
#define KVS_READ1  2
int         kvs_begin(kvs *db, int mode);
int         kvs_end(kvs *db);
int         kvs_abort(kvs *db);         /* KVS_OK, or the unlock's error */
int         kvs_in_section(const kvs *db);      /* -1 none, KVS_READ, KVS_WRITE */

/* Two-phase end of a write section, for a host whose transactions span
 * more than the engine (PostgreSQL: before its commit record, then after):
 * kvs_prepare appends the section's record to the journal tagged with xid
 * (nonzero) and sets *lsn for kvs_journal_flush; the section stays open and
 * its lock held.  Then either kvs_commit -- the host's transaction
 * committed: the pages are written back and the section ends; it changes
 * nothing the host can see fail: a failed write-back is undone in the file,
 * the record stays to be replayed by recovery, the handle refuses writes
 * (KVS_EJOURNAL) until reopened, and the error is returned for a warning --
 * or kvs_abort: the record stays in the journal, resolved as aborted.
 * kvs_end of a write section is kvs_prepare with xid 0 (committed by being
 * durable), kvs_journal_flush, kvs_commit. */
int         kvs_prepare(kvs *db, uint64_t xid, uint64_t *lsn);
int         kvs_commit(kvs *db);

/* ---- records -------------------------------------------------------------- */
#define KVS_NOOVERWRITE 0x1   /* put: insert only; KVS_EXISTS if key present */

/* get and delete of a key longer than KVS_MAX_KEY return KVS_NOTFOUND (no
 * such key can exist); put returns KVS_ETOOBIG. */
int         kvs_get(kvs *db, const void *key, size_t klen, kvs_slice *val);
int         kvs_put(kvs *db, const void *key, size_t klen,
                    const void *val, size_t vlen, int flags);
int         kvs_delete(kvs *db, const void *key, size_t klen);  /* KVS_NOTFOUND */
int         kvs_truncate(kvs *db);      /* remove every record; the file shrinks
                                         * when the section ends */
/* Sizes the table for the records it is about to hold (write section), so
 * the puts that follow split nothing until it holds more: data_bytes is
 * what those records take in all, the sum of kvs_record_bytes(klen, vlen)
 * over them (the records already in the file included).  The table grows to
 * the bucket count those bytes need at the fill factor (the count the puts'
 * splits would reach).  Only grows: a no-op when the table has that many
 * buckets, and never fewer than its records need now.  A file with no
 * record (new, or truncated in this section) gets the new buckets' empty
 * primary pages and nothing else moves; a file with records is split bucket
 * by bucket, so each of its records moves at most once per level the table
 * rises.  Like a put, a change of the section: kvs_abort or a crash before
 * the end leaves the file as it was.  A guess above what comes costs pages
 * the records never fill (buckets never merge; kvs_compact sizes the file
 * again): a host that knows only an average should guess low. */
int         kvs_reserve(kvs *db, uint64_t data_bytes);
/* The bytes one record with a key of klen and a value of vlen bytes takes
 * in its bucket page, slot included (a value too large to keep inline
 * counts its 4-byte pointer; a record put under a stamp, kvs_set_stamp,
 * 8 more); 0 for lengths no record can have. */
uint64_t    kvs_record_bytes(size_t klen, size_t vlen);
/* The key's place in the file's bucket order (the cursor's: its hash tag
 * bit-reversed, which splits never reorder, so every bucket is one interval
 * of it), as of the file's header now (call it inside the section that
 * writes the keys): a section that puts many keys in this order visits each
 * bucket's pages in one run, not at random. */
uint32_t    kvs_key_order(kvs *db, const void *key, size_t klen);
/* A hint that the key is put, got or deleted soon: a host that knows its
 * next keys (a load, a batch of deletes) calls it for each about 16
 * operations ahead of the operation itself.  The engine brings the key's
 * bucket toward the CPU cache in steps spread over the next hints (its
 * entry in the handle's bucket map now, the bucket page's first lines 8
 * hints later, the key's record and the page's free end 12 hints later),
 * so that the operation's cache misses overlap those of the
 * ones before it instead of following them one by one.  Only a hint:
 * nothing is read that could fail, it changes no result and may be called
 * in or outside a section with any key (one longer than KVS_MAX_KEY is
 * ignored); a key hinted too early or too late only wastes it. */
void        kvs_prefetch(kvs *db, const void *key, size_t klen);
/* The same without a handle: the hash a file whose header has hash seed
 * `seed` (kvs_options.hash_seed at its creation) files a key by, and the
 * bucket order kvs_key_order gives for that hash, so a host can sort keys
 * before it has the file open (a write set's spilled runs) exactly as
 * kvs_key_order would for such a file.  kvs_key_order(db, k, n) ==
 * kvs_hash_order(kvs_key_hash(seed of db, k, n)). */
uint64_t    kvs_key_hash(uint64_t seed, const void *key, size_t klen);
uint32_t    kvs_hash_order(uint64_t hash);
int         kvs_sync(kvs *db);          /* write dirty pages, fsync */

/* ---- compaction ------------------------------------------------------------
 * Rewrites the file into a new one sized for its records (the bucket count
 * the fill factor asks for, no free pages, chains packed) and renames it over
 * the path, atomically: at every moment the path holds either the whole old
 * file or the whole (fsynced) new one.  Runs outside a section, under the
 * exclusive lock (writers and readers of other handles wait); the handle then
 * works on the new file, and every other handle, in this process or another,
 * moves to it at its next section begin.  Records keep their keys, values and
 * statement stamps byte for byte; the hash seed, descriptor, fill factor and
 * stamp counter are kept.  The file is checked first (KVS_ECORRUPT: nothing
 * is written) and the copy is checked before it is installed.  The temporary
 * file is "<path>.compact" (a leftover of a crash is removed by the next
 * compaction).  A file with several hard links is refused (KVS_EINVAL): the
 * other names would keep the old data.  Of the old file only the header is
 * written (a flag telling its other handles to follow the path).  On any
 * failure before the rename the old file is byte for byte as it was and the
 * handle keeps using it; if only the final
 * fsync of the directory fails, the new file is in place, the handle uses it,
 * and the error is returned.  The options' interrupted() callback is asked
 * between buckets of the copy too: nonzero stops it (KVS_EINTR, old file
 * untouched). */
typedef struct kvs_compact_info {
    uint64_t records;
    uint64_t bytes_before, bytes_after;     /* file sizes */
    uint64_t pages_before, pages_after;
} kvs_compact_info;

int         kvs_compact(kvs *db, kvs_compact_info *info);   /* info may be NULL */

/* Statement stamps.  A host that scans and writes the same file in one
 * statement (UPDATE t SET k = k + 1) must not see its own new records again.
 * kvs_new_stamp() returns a number never returned before for this file (write
 * section).  While kvs_set_stamp(db, s) is in force (s != 0), records written
 * by put carry s; a cursor told kvs_cursor_skip_stamp(c, s) skips them. */
int         kvs_new_stamp(kvs *db, uint64_t *stamp);
void        kvs_set_stamp(kvs *db, uint64_t stamp);
/* kvs_get that also gives the stamp the record was last written under (0 if
 * none), so a host can tell its own statement's changes from other writers'. */
int         kvs_get_stamped(kvs *db, const void *key, size_t klen, kvs_slice *val,
                            uint64_t *stamp);

/* ---- cursor ------------------------------------------------------------------
 * Visits every record present for the whole scan exactly once, even when
 * records are inserted, deleted or buckets split between steps (the order is
 * by bit-reversed hash, which splits never reorder).  A record inserted or
 * deleted during the scan may or may not be seen.  Each kvs_cursor_next runs
 * in the caller's section or an implicit read section of its own, so a host
 * need not hold the lock between rows.  A step collects (copies) the records
 * of one bucket; outside a section, later steps return the rest of that copy
 * without locking the file again unless this handle wrote in between, so a
 * value may be as of a moment earlier in the scan. */
int         kvs_cursor_open(kvs *db, kvs_cursor **out);
void        kvs_cursor_skip_stamp(kvs_cursor *c, uint64_t stamp);
int         kvs_cursor_next(kvs_cursor *c, kvs_slice *key, kvs_slice *val); /* KVS_NOTFOUND at end */
/* Counts instead of returning: passes over the records kvs_cursor_next
 * would return up to the end of the bucket it is in (what is left of its
 * copy, or the next bucket whole) and sets *n to how many, 0 included;
 * KVS_NOTFOUND at the end.  Every page of the bucket's chain is read (and
 * checked, as any read is), no record is copied or ordered: for hosts that
 * need how many rows a scan sees, not their contents (count(*)).  It mixes
 * with kvs_cursor_next under the same exactly-once guarantee. */
int         kvs_cursor_count(kvs_cursor *c, uint64_t *n);
void        kvs_cursor_close(kvs_cursor *c);
/* Restarts the cursor over one interval [lo, hi) of the scan order (the
 * bit-reversed 32-bit hash tag, 0 <= lo <= hi <= KVS_REV_END): it then
 * visits exactly the records whose rev lies there, with the guarantees
 * above.  The intervals of a partition of [0, KVS_REV_END) together visit
 * what one full scan would, so hosts can split a scan between processes,
 * each with its own handle.  KVS_EINVAL for a range outside the space. */
#define KVS_REV_END ((uint64_t)1 << 32)
int         kvs_cursor_set_range(kvs_cursor *c, uint64_t lo, uint64_t hi);

/* ---- descriptor: a host blob kept in the file header --------------------- */
int         kvs_descriptor(kvs *db, kvs_slice *out);
int         kvs_set_descriptor(kvs *db, const void *blob, size_t len);   /* write section */

/* ---- statistics, integrity, inspection ---------------------------------- */
typedef struct kvs_stats {
    /* file (from the header, current as of the last section) */
    uint64_t file_bytes;
    uint64_t pages;            /* pages in the file, header included */
    uint64_t buckets;
    uint32_t level;            /* L: buckets = 2^L + split */
    uint64_t split;            /* split pointer */
    uint64_t records;
    uint64_t bucket_pages;     /* primary bucket pages (= buckets) */
    uint64_t overflow_pages;
    uint64_t value_pages;      /* pages in value chains (large values) */
    uint64_t dir_pages;
    uint64_t free_pages;       /* on the free-page list */
    double   load_factor;      /* record bytes / (buckets * usable bytes per page) */
    uint32_t fillfactor;
    uint64_t change_counter;
    uint32_t format_version;   /* of the header as read (6 once a write-out stored it) */
    uint64_t file_id;          /* random, set at creation and by each compaction;
                                * 0 = none yet (format 1 or 2 before its first write) */
    uint64_t owner_id;         /* who has the file (kvs_options.owner_id), 0 = none */
    uint32_t pool_slot;        /* its entry in the pool's file table */
    int      shared_pool;      /* the handle uses a pool given in kvs_options.pool */
    /* this handle's cache and work counters since open or kvs_reset_counters */
    uint64_t cache_frames;
    uint64_t cache_hits;
    uint64_t cache_reads;      /* pages read from the file */
    uint64_t cache_evictions;
    uint64_t cache_writes;     /* pages written to the file */
    uint64_t cache_invalidations; /* times another process's change dropped the cache */
    uint64_t gets;             /* successful gets */
    uint64_t get_chain_pages;  /* bucket-chain pages (primary+overflow) touched by them */
    uint64_t splits;
    uint64_t reopens;          /* times it moved to a file kvs_compact put at its path */
} kvs_stats;

int         kvs_stats_get(kvs *db, kvs_stats *st);   /* may open a read section */
/* The record and page counts of the header, for a planner's estimate: in a
 * section, or on a private pool's handle whose file nobody wrote since its
 * last section (its journal's change generation), from memory with no lock
 * and no system call; else in a read section of its own. */
int         kvs_size_estimate(kvs *db, uint64_t *records, uint64_t *pages);
void        kvs_reset_counters(kvs *db);

/* Full integrity walk (read section): page checksums and structure, every
 * record in the right bucket, counts match the header, and every page is the
 * header, a directory page, or in exactly one bucket/overflow chain or value
 * chain, or on the free list, exactly once.  KVS_OK, or KVS_ECORRUPT with
 * kvs_errmsg/kvs_errpage naming the first problem. */
int         kvs_check(kvs *db);

/* One page, like pageinspect.  Page types: */
#define KVS_PAGE_HEADER    1
#define KVS_PAGE_DIR       2
#define KVS_PAGE_BUCKET    3
#define KVS_PAGE_OVERFLOW  4
#define KVS_PAGE_VALUE     5
#define KVS_PAGE_FREE      6
typedef struct kvs_page_info {
    uint32_t pageno;
    int      type;             /* KVS_PAGE_*, 0 if unreadable */
    const char *type_name;     /* "header", "dir", "bucket", ... */
    int      checksum_ok;
    uint64_t checksum;         /* as stored */
    uint32_t next;             /* next page in its chain, 0 = none */
    uint32_t nslots;           /* slots (bucket/overflow), entries (dir) */
    uint32_t free_bytes;
    uint64_t bucket;           /* for bucket/overflow pages, else UINT64_MAX */
} kvs_page_info;
typedef struct kvs_slot_info {
    uint32_t  slot;
    uint32_t  offset;          /* of the record in the page */
    uint32_t  length;          /* record bytes in the page */
    uint32_t  hash;            /* the stored hash tag */
    uint32_t  flags;           /* KVS_SLOT_* */
    uint64_t  value_len;       /* full value length */
    uint64_t  stamp;
    kvs_slice key;
} kvs_slot_info;
#define KVS_SLOT_EXTERNAL  0x1 /* value lives in a value chain */
#define KVS_SLOT_STAMPED   0x2

int         kvs_page_info_get(kvs *db, uint32_t pageno, kvs_page_info *pi);
/* KVS_NOTFOUND when slot >= the page's slot count; KVS_EINVAL for a page that
 * is not a bucket/overflow page or beyond the file.  si->key points into the
 * handle, valid until the next call. */
int         kvs_page_slot(kvs *db, uint32_t pageno, uint32_t slot, kvs_slot_info *si);

/* ---- salvage: reading a damaged file out ------------------------------------
 * For a file the normal open or scan refuses (a torn write-out, a bad page,
 * a bad header).  kvs_salvage_open opens path read-only, takes a shared
 * file lock for the handle's life, and trusts neither the header nor the
 * directory nor any chain link: kvs_salvage_next reads the file page by page
 * (page 1 to the last whole page) and returns every record of every bucket
 * or overflow page that passes its checksum and structure check, reachable
 * or not.  An external value is read by following its value chain, each
 * page checked (checksum, structure, type, the chain's shape); a record
 * whose chain is damaged is skipped and counted.  Other pages (header,
 * directory, value, free) hold no records.
 *
 * A key can come back more than once, from different pages: a torn
 * write-out can leave a record both where it was and where it moved (a
 * split half done, a replace that moved it to another page, a delete that
 * pulled it up from an overflow page).  Pages carry no write sequence, so
 * which copy is newer cannot be told from the file: every copy is returned
 * with its page and slot, and the host decides (README, "Salvage").
 *
 * Slices point into the handle and stay valid until the next call on it.
 * Nothing is allocated per record (one grow-only buffer for external
 * values).  opt may be NULL; only opt->os and opt->interrupted are used (a
 * nonzero interrupted() ends the lock wait or a long page loop with
 * KVS_EINTR).  A page that cannot be read (EIO) is counted and skipped. */
typedef struct kvs_salvage kvs_salvage;

typedef struct kvs_salvage_rec {
    uint32_t  pageno;          /* page the record was found on */
    uint32_t  slot;            /* its slot there */
    int       page_type;       /* KVS_PAGE_BUCKET or KVS_PAGE_OVERFLOW */
    uint64_t  bucket;          /* the bucket number that page carries */
    uint64_t  stamp;           /* statement stamp, 0 = none */
    kvs_slice key;
    kvs_slice value;
} kvs_salvage_rec;

typedef struct kvs_salvage_stats {
    uint64_t file_pages;          /* whole pages in the file (by its size) */
    uint64_t partial_page_bytes;  /* bytes after the last whole page (truncated file) */
    uint64_t pages_read;          /* pages read so far, page 0 included */
    uint64_t pages_records;       /* bucket/overflow pages that passed: records come from these */
    uint64_t pages_other;         /* passed, hold no records: header, dir, value, free */
    uint64_t pages_zero;          /* all zero (growth not yet used, or zeroed by damage) */
    uint64_t pages_bad_checksum;  /* skipped: checksum mismatch */
    uint64_t pages_bad_structure; /* skipped: checksum passes, structure does not */
    uint64_t pages_unreadable;    /* skipped: read error */
    uint64_t records;             /* returned so far */
    uint64_t records_bad_value;   /* skipped: their value chain is damaged */
    int      header_ok;           /* page 0 passed the normal header validation */
    uint64_t header_records;      /* if header_ok: the header's record count */
    uint64_t header_pages;        /*   and page count */
    char     header_error[320];   /* if not: why */
} kvs_salvage_stats;

int         kvs_salvage_open(const char *path, const kvs_options *opt, kvs_salvage **out);
int         kvs_salvage_next(kvs_salvage *s, kvs_salvage_rec *rec);   /* KVS_NOTFOUND at end */
void        kvs_salvage_stats_get(const kvs_salvage *s, kvs_salvage_stats *st);
/* The host's descriptor as the header holds it, when the header passed its
 * checks (st.header_ok); KVS_NOTFOUND otherwise.  Valid until close. */
int         kvs_salvage_descriptor(const kvs_salvage *s, kvs_slice *out);
const char *kvs_salvage_errmsg(const kvs_salvage *s);    /* detail of the last failure */
const char *kvs_salvage_open_errmsg(void);               /* of the last failed open */
void        kvs_salvage_close(kvs_salvage *s);            /* unlocks, frees */

/* ---- errors ------------------------------------------------------------------ */
const char *kvs_strerror(int rc);
const char *kvs_errmsg(const kvs *db);   /* detail of the last failure */
uint32_t    kvs_errpage(const kvs *db);  /* page of the last ECORRUPT, else 0 */
int         kvs_errno(const kvs *db);    /* errno of the last EIO/ENOSPC */
/* Nonzero for the codes that mean the file is damaged or not a kvs file this
 * engine reads (ECORRUPT, ETRUNCATED, ENOTKVS, EVERSION): a handle that
 * met one refuses write sections from then on; hosts report them as damage
 * (the FDW: SQLSTATE XX001, data_corrupted), never as a transient failure. */
int         kvs_is_damage(int rc);
/* kvs_open failures happen before a handle exists: */
const char *kvs_open_errmsg(void);       /* detail of the last kvs_open failure
                                          * in this process */

#ifdef __cplusplus
}
#endif
#endif /* KVS_H */
