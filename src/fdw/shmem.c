/*
 * shmem.c - the shared kvs cache: one kvs pool in PostgreSQL shared memory
 * for every kvs file of the cluster, when kvs_fdw is in
 * shared_preload_libraries ("shared mode"; without it each backend keeps
 * its private caches, "local mode", and nothing here is used).
 *
 *   - kvs_fdw.shared_cache_size (kB) and kvs_fdw.shared_files size the pool;
 *     its memory is requested in shmem_request_hook (PG 15 refuses
 *     RequestAddinShmemSpace anywhere else) and set up in shmem_startup_hook
 *     under AddinShmemInitLock, as contrib/pg_stat_statements does.
 *   - The engine's content locks (one per frame) and the pool's mapping
 *     partition locks are LWLocks embedded in our shared block, of one
 *     tranche ("kvs_fdw") from LWLockNewTrancheId, registered by name in
 *     every process so that waits show in pg_stat_activity.  The lock
 *     callbacks (kvs_locks) only acquire and release them: they never raise.
 *   - Writers of one file exclude each other with a heavyweight lock of our
 *     own (kvs_writer_lock): a wait for it can be cancelled, honours
 *     lock_timeout, is seen by the deadlock detector and shows in pg_locks.
 *   - kvs_fdw_mode() and kvs_fdw_buffercache (one row per frame), and the
 *     mapping from the pool's file table to this database's tables that
 *     kvs_fdw_buffercache and kvs_fdw_cache_stats (functions.c) show.
 */
#include "postgres.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xlog.h"
#include "catalog/pg_foreign_table.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"

#include "kvs_fdw.h"

/*
 * kvs_fdw.shared_cache_size, in kB: 128MB by default, the default of
 * shared_buffers, so that the two designs side by side start even (each
 * with the same memory for its own pages).
 */
int			kvs_fdw_shared_cache_size_kb = 131072;

/* kvs_fdw.shared_files: how many files the pool's file table tracks */
int			kvs_fdw_shared_files = 256;

/* kvs_fdw.scan_ring: large full scans read through a ring (scan.c) */
bool		kvs_fdw_scan_ring = true;

/*
 * Our block of shared memory: this header, the LWLocks, then (4096-aligned)
 * the engine's pool, which holds only offsets and so works at whatever
 * address each process maps it.  Partition locks are padded to a cache line
 * each (16 of them, hot); frame content locks are plain LWLocks (16 bytes:
 * 512 kB for the default 32768 frames rather than 4 MB padded), as
 * PostgreSQL keeps its content locks inside the buffer descriptors.
 */
typedef struct KvsShared
{
	int			tranche_id;
	uint32		frames;
	uint32		files;
	int			policy;
	Size		pool_offset;	/* from the start of this struct */
	LWLockPadded map_locks[KVS_POOL_PARTITIONS];
	LWLock		frame_locks[FLEXIBLE_ARRAY_MEMBER];
} KvsShared;

static KvsShared *kvs_shared = NULL;
static kvs_pool *kvs_shared_pool_ptr = NULL;
static bool kvs_preloaded = false;
static bool tranche_registered = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* lock tag field4 of the writers' lock: tells it from any advisory lock */
#define KVS_LOCKTAG_WRITER	0x6B76	/* "kv" */

PG_FUNCTION_INFO_V1(kvs_fdw_mode);
PG_FUNCTION_INFO_V1(kvs_fdw_buffercache);

static uint32
shared_frames(void)
{
	int64		frames = (int64) kvs_fdw_shared_cache_size_kb / (KVS_PAGE_SIZE / 1024);

	return (uint32) Min(frames, (int64) PG_UINT32_MAX);
}

static Size
shared_struct_size(uint32 frames)
{
	Size		sz = add_size(offsetof(KvsShared, frame_locks),
							  mul_size(frames, sizeof(LWLock)));

	return TYPEALIGN(KVS_PAGE_SIZE, sz);
}

static Size
shared_total_size(void)
{
	uint32		frames = shared_frames();

	/* + one page of slack: ShmemInitStruct does not align to 4096 */
	return add_size(add_size(shared_struct_size(frames),
							 kvs_pool_size(frames, (uint32) kvs_fdw_shared_files)),
					KVS_PAGE_SIZE);
}

static void
kvs_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shared_total_size());
}

/*
 * The tranche's name, for pg_stat_activity's wait_event, is known per
 * process: the startup hook registers it in the postmaster (backends
 * inherit it) and in each process of an EXEC_BACKEND build; this is a
 * second chance at a backend's first use of the pool.
 */
static void
register_tranche(void)
{
	if (!tranche_registered && kvs_shared != NULL)
	{
		LWLockRegisterTranche(kvs_shared->tranche_id, "kvs_fdw");
		tranche_registered = true;
	}
}

/*
 * Create the block in the postmaster (formatting the pool once), or attach
 * to it in a process that starts apart from the postmaster (EXEC_BACKEND).
 */
static void
kvs_shmem_startup(void)
{
	bool		found;
	uint32		frames = shared_frames();
	char	   *base;
	char	   *mem;
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	base = ShmemInitStruct("kvs_fdw shared cache", shared_total_size(), &found);
	/* the struct at the start, the pool 4096-aligned after it */
	kvs_shared = (KvsShared *) base;
	if (!found)
	{
		int			rc;

		kvs_shared->tranche_id = LWLockNewTrancheId();
		kvs_shared->frames = frames;
		kvs_shared->files = (uint32) kvs_fdw_shared_files;
		kvs_shared->policy = kvs_fdw_cache_policy;
		mem = (char *) TYPEALIGN(KVS_PAGE_SIZE,
								 base + offsetof(KvsShared, frame_locks) +
								 (Size) frames * sizeof(LWLock));
		kvs_shared->pool_offset = mem - base;
		for (i = 0; i < KVS_POOL_PARTITIONS; i++)
			LWLockInitialize(&kvs_shared->map_locks[i].lock, kvs_shared->tranche_id);
		for (i = 0; i < (int) frames; i++)
			LWLockInitialize(&kvs_shared->frame_locks[i], kvs_shared->tranche_id);
		rc = kvs_pool_format(mem, kvs_pool_size(frames, kvs_shared->files),
							 frames, kvs_shared->files, kvs_shared->policy,
							 &kvs_shared_pool_ptr);
		if (rc != KVS_OK)
		{
			LWLockRelease(AddinShmemInitLock);
			ereport(FATAL,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("could not set up the kvs_fdw shared cache: %s",
							kvs_strerror(rc)),
					 errdetail("kvs_fdw.shared_cache_size is %d kB (%u frames), kvs_fdw.shared_files %d.",
							   kvs_fdw_shared_cache_size_kb, frames,
							   kvs_fdw_shared_files)));
		}
	}
	else
	{
		kvs_shared_pool_ptr = kvs_pool_attach(base + kvs_shared->pool_offset);
		if (kvs_shared_pool_ptr == NULL)
		{
			LWLockRelease(AddinShmemInitLock);
			elog(FATAL, "kvs_fdw shared cache is not a kvs pool");
		}
	}
	LWLockRelease(AddinShmemInitLock);
	/* by name in this process (a crash restart may hand out a new id) */
	LWLockRegisterTranche(kvs_shared->tranche_id, "kvs_fdw");
	tranche_registered = true;
}

/*
 * From _PG_init.  Shared mode exists only when the library is preloaded:
 * PGC_POSTMASTER settings and shared memory can be defined only then.
 */
void
kvs_shmem_init(void)
{
	DefineCustomBoolVariable("kvs_fdw.scan_ring",
							 "Shared mode: full scans of large tables read through a small ring of frames.",
							 "A full scan of a table larger than a quarter of the shared "
							 "cache reuses 64 frames of its own instead of evicting other "
							 "pages (PostgreSQL's BULKREAD strategy).  No effect in local mode.",
							 &kvs_fdw_scan_ring,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	kvs_preloaded = true;
	DefineCustomIntVariable("kvs_fdw.shared_cache_size",
							"Size of the kvs cache in shared memory (shared mode).",
							"One pool of 4 kB pages for every kvs file of the cluster, "
							"when kvs_fdw is in shared_preload_libraries.  The default "
							"is shared_buffers' default, so both caches start even.",
							&kvs_fdw_shared_cache_size_kb,
							131072,
							32,		/* the engine's minimum, 8 frames */
							INT_MAX,
							PGC_POSTMASTER,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kvs_fdw.shared_files",
							"How many kvs files the shared cache can have open at once (shared mode).",
							NULL,
							&kvs_fdw_shared_files,
							256,
							1,
							1 << 20,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = kvs_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = kvs_shmem_startup;
}

bool
kvs_fdw_preloaded(void)
{
	return kvs_preloaded;
}

/* The shared pool, or NULL in local mode. */
kvs_pool *
kvs_shared_pool(void)
{
	if (kvs_shared_pool_ptr != NULL)
		register_tranche();
	return kvs_shared_pool_ptr;
}

/* ---- the engine's lock callbacks (never raise) ---------------------------- */

static void
frame_lock(void *arg, uint32_t frame, int mode)
{
	LWLockAcquire(&kvs_shared->frame_locks[frame],
				  mode == KVS_LOCK_EXCLUSIVE ? LW_EXCLUSIVE : LW_SHARED);
}

static void
frame_unlock(void *arg, uint32_t frame)
{
	LWLockRelease(&kvs_shared->frame_locks[frame]);
}

static void
map_lock(void *arg, uint32_t partition, int mode)
{
	LWLockAcquire(&kvs_shared->map_locks[partition].lock,
				  mode == KVS_LOCK_EXCLUSIVE ? LW_EXCLUSIVE : LW_SHARED);
}

static void
map_unlock(void *arg, uint32_t partition)
{
	LWLockRelease(&kvs_shared->map_locks[partition].lock);
}

static const kvs_locks shared_locks = {
	.lock = frame_lock,
	.unlock = frame_unlock,
	.arg = NULL,
	.map_lock = map_lock,
	.map_unlock = map_unlock,
};

/*
 * Shared mode: every handle opens on the shared pool with our locks (the
 * cluster's identity, kvs_host_options' owner id, is then recorded in the
 * header, and a file another cluster has is refused).  Local mode:
 * unchanged.
 */
void
kvs_shared_options(kvs_options *o)
{
	kvs_pool   *p = kvs_shared_pool();

	if (p == NULL)
		return;
	o->pool = p;
	o->locks = &shared_locks;
	o->cache_pages = 0;
	o->cache_policy = kvs_pool_policy(p);
}

/* ---- the writers' heavyweight lock -------------------------------------- */

/*
 * The identity the writers' lock of a file is keyed on: a 64-bit hash of
 * its real path (symbolic links, "." and ".." resolved), computed once when
 * the handle is opened.  Not the file id in its header: that changes when
 * kvs_fdw_compact replaces the file, after which the handles of other
 * backends would go on naming the old one, and reading it needs a section,
 * which waits for the writer this lock is there to wait for.  Names of
 * one file that realpath() cannot tell apart (hard links; kvs_fdw_compact
 * refuses such a file) give two keys: their writers then wait for each
 * other inside the engine's own section lock, which excludes writers in
 * any case.
 */
void
kvs_writer_identify(const char *path, KvsWriterLock *wl)
{
	if (kvs_shared_pool_ptr == NULL)
		return;
	wl->key = kvs_real_path_hash(path, UINT64CONST(0x6b76735f66647721));
}

/*
 * A 64-bit hash (with seed) of path's real path, or of path as given when
 * realpath() cannot resolve it: the identity of a file that the writers'
 * lock and the row locks (rowlock.c) key their tags on.
 */
uint64
kvs_real_path_hash(const char *path, uint64 seed)
{
	char		real[PATH_MAX];
	const char *p = realpath(path, real) != NULL ? real : path;

	return hash_bytes_extended((const unsigned char *) p, strlen(p), seed);
}

/*
 * Take the writers' lock of a file (shared mode; nothing in local mode,
 * where flock excludes writers).  Its tag is advisory-type, so pg_locks
 * shows it (locktype "advisory"), with database 0 (a file is the
 * cluster's, not a database's), the 64-bit key (kvs_writer_identify) in
 * classid/objid and
 * KVS_LOCKTAG_WRITER in objsubid, which no pg_advisory_* function uses
 * (they use 1 and 2), so no user lock can collide with it.
 * ExclusiveLock, transaction-scoped: the caller releases it after its
 * section ends (kvs_writer_unlock), and an ERROR or FATAL releases it with
 * the transaction's locks.  Raises on a cancel, on lock_timeout (55P03) or
 * on a deadlock (40P01).
 */
void
kvs_writer_lock(KvsWriterLock *wl)
{
	if (wl->held || kvs_shared_pool_ptr == NULL)
		return;
	SET_LOCKTAG_ADVISORY(wl->tag, 0, (uint32) (wl->key >> 32), (uint32) wl->key,
						 KVS_LOCKTAG_WRITER);
	(void) LockAcquire(&wl->tag, ExclusiveLock, false, false);
	wl->held = true;
}

void
kvs_writer_unlock(KvsWriterLock *wl)
{
	if (!wl->held)
		return;
	wl->held = false;
	(void) LockRelease(&wl->tag, ExclusiveLock, false);
}

/*
 * After an error aborted the transaction (or subtransaction) that held
 * it, the lock manager releases the lock itself: only forget it.
 */
void
kvs_writer_forget(KvsWriterLock *wl)
{
	wl->held = false;
}

/* ---- looking inside --------------------------------------------------------- */

Datum
kvs_fdw_mode(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(kvs_shared_pool() != NULL ? "shared" : "local"));
}

/*
 * Which table of this database, and which path, each entry of the pool's
 * file table is: the kvs foreign tables' files are stat()ed and matched by
 * inode with the entries (an entry of a file replaced since, by compaction,
 * matches nothing).  Arrays of kvs_pool_files() entries, InvalidOid / NULL
 * where no table matches.  Two tables over one file (explicit filenames):
 * the entry names the first found.
 */
void
kvs_pool_tables(Oid **relids, char ***paths)
{
	kvs_pool   *p = kvs_shared_pool();
	uint32		nfiles = kvs_pool_files(p);
	kvs_pool_file_info *fi = palloc0(sizeof(kvs_pool_file_info) * nfiles);
	bool	   *used = palloc0(sizeof(bool) * nfiles);
	Relation	ft;
	SysScanDesc scan;
	HeapTuple	tup;
	uint32		i;

	*relids = palloc0(sizeof(Oid) * nfiles);
	*paths = palloc0(sizeof(char *) * nfiles);
	for (i = 0; i < nfiles; i++)
		used[i] = kvs_pool_file(p, i, &fi[i]) == KVS_OK;

	ft = table_open(ForeignTableRelationId, AccessShareLock);
	scan = systable_beginscan(ft, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Oid			relid = ((Form_pg_foreign_table) GETSTRUCT(tup))->ftrelid;
		Relation	rel = try_relation_open(relid, AccessShareLock);
		KvsTable	t;
		struct stat sb;

		if (rel == NULL)
			continue;
		if (kvs_is_kvs_table(rel))
		{
			kvs_table_init(&t, rel);
			if (stat(t.path, &sb) == 0)
			{
				int64		pick = -1;
				int			nopen = 0,
							nall = 0;

				/*
				 * Entries of the same inode: the file, and maybe entries of
				 * removed files whose inode it reuses (their file ids differ,
				 * but reading the header would take a section): the one in
				 * use, else the only one, else none.
				 */
				for (i = 0; i < nfiles; i++)
					if (used[i] && fi[i].dev == (uint64) sb.st_dev &&
						fi[i].ino == (uint64) sb.st_ino)
					{
						nall++;
						if (fi[i].users > 0)
						{
							nopen++;
							pick = i;
						}
						else if (nopen == 0)
							pick = i;
					}
				if (pick >= 0 && (nopen == 1 || nall == 1) &&
					(*relids)[pick] == InvalidOid)
				{
					(*relids)[pick] = relid;
					(*paths)[pick] = pstrdup(t.path);
				}
			}
		}
		relation_close(rel, AccessShareLock);
	}
	systable_endscan(scan);
	table_close(ft, AccessShareLock);
}

static const char *
page_type_name(int type)
{
	switch (type)
	{
		case KVS_PAGE_HEADER:
			return "header";
		case KVS_PAGE_DIR:
			return "dir";
		case KVS_PAGE_BUCKET:
			return "bucket";
		case KVS_PAGE_OVERFLOW:
			return "overflow";
		case KVS_PAGE_VALUE:
			return "value";
		case KVS_PAGE_FREE:
			return "free";
	}
	return NULL;
}

/*
 * kvs_fdw_buffercache(): one row per frame of the shared pool (frame, tbl,
 * file_slot, page, page_type, dirty, pins, usage, lru_rank), like
 * pg_buffercache; an empty frame has only its number.  No rows in local
 * mode (each backend's caches are its own).  An unlocked snapshot: each
 * field is right, the whole may be a moment's mix.
 */
Datum
kvs_fdw_buffercache(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	kvs_pool   *p = kvs_shared_pool();
	uint32		nframes,
				f;
	uint32	   *ranks;
	Oid		   *relids;
	char	  **paths;

	InitMaterializedSRF(fcinfo, 0);
	if (p == NULL)
		return (Datum) 0;
	nframes = kvs_pool_frames(p);
	kvs_pool_tables(&relids, &paths);
	ranks = NULL;
	if (kvs_pool_policy(p) == KVS_CACHE_LRU)
	{
		ranks = palloc_extended(sizeof(uint32) * nframes, MCXT_ALLOC_HUGE);
		kvs_pool_lru_ranks(p, ranks);
	}
	for (f = 0; f < nframes; f++)
	{
		kvs_frame_info fi;
		Datum		v[9];
		bool		n[9];
		const char *tn;
		int			i;

		if (kvs_pool_frame(p, f, ranks, &fi) != KVS_OK)
			break;
		memset(n, 0, sizeof(n));
		v[0] = Int32GetDatum((int32) f);
		if (!fi.used)
		{
			for (i = 1; i < 9; i++)
				n[i] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
			continue;
		}
		if (fi.file_slot < kvs_pool_files(p) && OidIsValid(relids[fi.file_slot]))
			v[1] = ObjectIdGetDatum(relids[fi.file_slot]);
		else
			n[1] = true;
		v[2] = Int32GetDatum((int32) fi.file_slot);
		v[3] = Int64GetDatum((int64) fi.page);
		tn = page_type_name(fi.page_type);
		if (tn)
			v[4] = CStringGetTextDatum(tn);
		else
			n[4] = true;
		v[5] = BoolGetDatum(fi.dirty != 0);
		v[6] = Int32GetDatum((int32) fi.pins);
		v[7] = Int32GetDatum((int32) fi.usage);
		if (fi.lru_rank == UINT32_MAX)
			n[8] = true;
		else
			v[8] = Int32GetDatum((int32) fi.lru_rank);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	return (Datum) 0;
}
