/*
 * rowlock.c - row locks of kvs_fdw tables, in PostgreSQL's lock manager.
 *
 * What locks: the scan of an UPDATE's or DELETE's result relation and a scan
 * under SELECT ... FOR UPDATE / FOR NO KEY UPDATE (exclusive) or FOR SHARE /
 * FOR KEY SHARE (share) lock each key they return; INSERT, COPY and the new
 * key of a key-changing UPDATE lock their key (exclusive) before they check
 * that it is free; a direct modify (direct.c) locks each key before its
 * read-modify-write.  Locks are transaction-level: they last until the
 * transaction ends (a subtransaction's abort releases those it took), so
 * DISCARD ALL and pg_advisory_unlock_all() do not drop them.  Lock calls
 * are made outside every kvs section, so a wait never holds a file lock
 * that the holder of the row lock needs to commit.
 *
 * The tag is advisory-type, as Citus does for its own locks: pg_locks shows
 * locktype "advisory", database = the current database for a table's file
 * in the data directory (only that database's table uses it) and 0 for an
 * explicit filename (tables of several databases may name one file, e.g.
 * after CREATE DATABASE ... TEMPLATE: their locks must meet), classid/objid = the
 * two halves of a 64-bit hash, objsubid = our class: KVS_LOCKTAG_KEY for a
 * key (hash of the file's identity and the key bytes), KVS_LOCKTAG_TABLE
 * for a file as a whole (hash of its identity).  pg_advisory_* use classes
 * 1 and 2 and the writers' lock (shmem.c) 27510, so no other lock can be
 * mistaken for ours.  The file's identity is the hash of its real path (a
 * file named by two tables, or two spellings, is one identity).  Two keys
 * whose hashes collide share a lock: a false wait, never a missed one (the
 * odds are 2^-64 per pair).
 *
 * Escalation: the lock manager's table is finite (max_locks_per_transaction
 * times the connections), so a transaction counts the key locks it takes
 * per file; row lockers first take the file's table tag in an intent mode
 * (RowShareLock for share, RowExclusiveLock for exclusive: they conflict
 * only with the escalated modes), and once kvs_fdw.lock_escalation keys of
 * one file are locked the transaction takes the table tag in ShareLock or
 * ExclusiveLock and locks no more keys of that file in that mode.  The
 * escalated lock is tried without waiting (another transaction holding an
 * intent lock on the file refuses it) and again every further
 * kvs_fdw.lock_escalation keys; past ESCALATE_WAIT_FACTOR times the
 * threshold the transaction waits for it (the deadlock detector breaks a
 * cycle with a writer it waits for).
 *
 * Inserted keys are the exception (bulk loads: COPY, INSERT ... SELECT, of
 * which several may run at once on one table, each holding its intent lock,
 * so none could escalate): an inserting transaction locks at most
 * max_locks_per_transaction keys of a file (its share of the lock table),
 * then inserts without key locks and never waits to escalate.  Nothing is
 * lost by that: the commit applies an inserted key only if the file still
 * lacks it (pending.c), so a concurrent insert of the same key fails with
 * 40001 at COMMIT instead of waiting for the other transaction.
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/plannodes.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "kvs_fdw.h"

#define KVS_LOCKTAG_KEY		0x6B77	/* 27511 */
#define KVS_LOCKTAG_TABLE	0x6B78	/* 27512 */
#define ESCALATE_WAIT_FACTOR 4

int			kvs_fdw_lock_escalation = 1000;

/* What this transaction holds on one file. */
typedef struct LockedFile
{
	uint64		fileid;
	int64		nkeys;			/* key locks held */
	int64		next_try;		/* nkeys at which to try escalating again */
	/*
	 * Key locks taken at each nest level still open (levelkeys[l] for level
	 * l, 1 = the top level), so a subtransaction's abort, which releases
	 * its locks, counts them off nkeys and a later escalation is not early.
	 */
	int64	   *levelkeys;
	int			nlevels;		/* entries allocated in levelkeys */
	/* per mode: the nest level that took the lock, 0 = not held */
	int			intent[2];
	int			escalated[2];
} LockedFile;

/*
 * The files this transaction locked rows of, in TopTransactionContext (gone
 * with it): an array searched linearly, since a transaction touches few
 * files and a hash table would cost more to set up than a short search for
 * the one-row transactions that are most of them.
 */
static LockedFile *locked_files;	/* NULL = none yet */
static uint64 grants;			/* locks newly granted in this backend */
static int	nlocked_files;
static int	maxlocked_files;

/* path -> identity, for the backend's life (realpath once per path) */
typedef struct PathIdentity
{
	char		path[MAXPGPATH];
	uint64		id;
} PathIdentity;

static HTAB *path_ids;

static void
forget_locked_files(void *arg)
{
	locked_files = NULL;
	nlocked_files = maxlocked_files = 0;
}

static LockedFile *
locked_file(uint64 fileid)
{
	LockedFile *e;
	int			i;

	for (i = 0; i < nlocked_files; i++)
		if (locked_files[i].fileid == fileid)
			return &locked_files[i];
	if (locked_files == NULL)
	{
		MemoryContextCallback *cb;

		maxlocked_files = 4;
		locked_files = MemoryContextAlloc(TopTransactionContext,
										  sizeof(LockedFile) * maxlocked_files);
		cb = MemoryContextAlloc(TopTransactionContext, sizeof(*cb));
		cb->func = forget_locked_files;
		cb->arg = NULL;
		MemoryContextRegisterResetCallback(TopTransactionContext, cb);
	}
	else if (nlocked_files == maxlocked_files)
	{
		maxlocked_files *= 2;
		locked_files = repalloc(locked_files, sizeof(LockedFile) * maxlocked_files);
	}
	e = &locked_files[nlocked_files++];
	memset(e, 0, sizeof(*e));
	e->fileid = fileid;
	e->next_try = kvs_fdw_lock_escalation;
	return e;
}

/*
 * A subtransaction's abort releases the locks it took (the lock manager
 * does, through its resource owner); its commit hands them to the parent.
 * Keep the levels in step, so a released table lock is not taken for held.
 */
static void
rowlock_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i,
				m;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	for (i = 0; i < nlocked_files; i++)
	{
		LockedFile *e = &locked_files[i];

		for (m = 0; m < 2; m++)
		{
			if (e->intent[m] >= level)
				e->intent[m] = (event == SUBXACT_EVENT_COMMIT_SUB) ? level - 1 : 0;
			if (e->escalated[m] >= level)
				e->escalated[m] = (event == SUBXACT_EVENT_COMMIT_SUB) ? level - 1 : 0;
		}
		if (level < e->nlevels && e->levelkeys[level] > 0)
		{
			if (event == SUBXACT_EVENT_COMMIT_SUB)
				e->levelkeys[level - 1] += e->levelkeys[level];
			else
			{
				e->nkeys -= e->levelkeys[level];
				/* the next try comes at the threshold again, not later */
				e->next_try = Min(e->next_try,
								  Max((int64) kvs_fdw_lock_escalation, e->nkeys));
			}
			e->levelkeys[level] = 0;
		}
	}
}

/* Count one key lock taken at the current nest level. */
static void
count_key(LockedFile *e)
{
	int			level = GetCurrentTransactionNestLevel();

	if (level >= e->nlevels)
	{
		int			n = Max(level + 1, e->nlevels * 2);

		if (e->levelkeys == NULL)
			e->levelkeys = MemoryContextAllocZero(TopTransactionContext,
												  sizeof(int64) * n);
		else
		{
			e->levelkeys = repalloc(e->levelkeys, sizeof(int64) * n);
			memset(e->levelkeys + e->nlevels, 0,
				   sizeof(int64) * (n - e->nlevels));
		}
		e->nlevels = n;
	}
	e->levelkeys[level]++;
	e->nkeys++;
}

void
kvs_rowlock_init(void)
{
	DefineCustomIntVariable("kvs_fdw.lock_escalation",
							"Key locks of one kvs table a transaction takes before it locks the whole table.",
							"Past this many row locks on one table, a transaction takes one "
							"table-level lock instead (exclusive for writes and FOR UPDATE, "
							"share for FOR SHARE), so a big UPDATE does not fill the lock "
							"table.  0 = always lock the whole table.",
							&kvs_fdw_lock_escalation,
							1000,
							0,
							INT_MAX,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);
	RegisterSubXactCallback(rowlock_subxact_callback, NULL);
}

/* The 64-bit identity of a table's file: the hash of its real path. */
static uint64
file_identity(const char *path)
{
	PathIdentity *pi;
	bool		found;

	if (path_ids == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = MAXPGPATH;
		ctl.entrysize = sizeof(PathIdentity);
		ctl.hcxt = TopMemoryContext;
		path_ids = hash_create("kvs_fdw file identities", 16, &ctl,
							   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	pi = hash_search(path_ids, path, HASH_ENTER, &found);
	if (!found)
		pi->id = kvs_real_path_hash(path, UINT64CONST(0x6b76735f726f776c));
	return pi->id;
}

void
kvs_rowlocker_init(KvsRowLocker *l, KvsTable *t, KvsRowLockMode mode,
				   LockWaitPolicy wait)
{
	l->active = true;
	l->insert = false;
	l->dboid = t->default_file ? MyDatabaseId : InvalidOid;
	l->fileid = file_identity(t->path);
	l->mode = mode;
	l->wait = wait;
	l->relname = t->relname;
}

static void
lock_not_available(KvsRowLocker *l)
{
	ereport(ERROR,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("could not obtain lock on row in relation \"%s\"", l->relname)));
}

/*
 * Take tag in lockmode under the locker's wait policy (wait = false: try
 * only).  False when not available without waiting.
 */
static bool
acquire(LOCKTAG *tag, LOCKMODE lockmode, bool wait, LockAcquireResult *res)
{
	*res = LockAcquire(tag, lockmode, false, !wait);
	return *res != LOCKACQUIRE_NOT_AVAIL;
}

static void
table_tag(LOCKTAG *tag, KvsRowLocker *l)
{
	SET_LOCKTAG_ADVISORY(*tag, l->dboid, (uint32) (l->fileid >> 32),
						 (uint32) l->fileid, KVS_LOCKTAG_TABLE);
}

/*
 * Lock one key of the locker's file.  KVS_ROWLOCK_NEW: the lock was not
 * held by this transaction before: a row read earlier may have changed
 * meanwhile and must be read again.  KVS_ROWLOCK_HELD: held already (a key
 * or table lock of this transaction covers it).  KVS_ROWLOCK_SKIP: SKIP
 * LOCKED and another transaction holds it.  NOWAIT raises 55P03; a wait
 * raises on cancel, lock_timeout (55P03) and deadlock (40P01).
 */
KvsRowLockResult
kvs_rowlock(KvsRowLocker *l, const char *key, size_t klen)
{
	static const LOCKMODE intent_mode[2] = {RowShareLock, RowExclusiveLock};
	static const LOCKMODE table_mode[2] = {ShareLock, ExclusiveLock};
	static const LOCKMODE key_mode[2] = {ShareLock, ExclusiveLock};
	LockedFile *e = locked_file(l->fileid);
	int			m = (int) l->mode;
	bool		wait = (l->wait == LockWaitBlock);
	LockAcquireResult res;
	LOCKTAG		tag;
	uint64		h;

	if (e->escalated[KVS_ROWLOCK_EXCLUSIVE] ||
		(m == KVS_ROWLOCK_SHARE && e->escalated[KVS_ROWLOCK_SHARE]))
		return KVS_ROWLOCK_HELD;

	table_tag(&tag, l);
	if (!e->intent[m])
	{
		/* not available: another transaction locked the whole table */
		if (!acquire(&tag, intent_mode[m], wait, &res))
		{
			if (l->wait == LockWaitSkip)
				return KVS_ROWLOCK_SKIP;
			lock_not_available(l);
		}
		e->intent[m] = GetCurrentTransactionNestLevel();
	}
	if (e->nkeys >= e->next_try)
	{
		bool		must = wait && !l->insert &&
			e->nkeys >= (int64) kvs_fdw_lock_escalation * ESCALATE_WAIT_FACTOR;

		if (acquire(&tag, table_mode[m], must, &res))
		{
			e->escalated[m] = GetCurrentTransactionNestLevel();
			grants++;
			return KVS_ROWLOCK_NEW;
		}
		e->next_try = e->nkeys + Max(kvs_fdw_lock_escalation, 1);
	}

	/* a bulk insert: no more key locks (header comment) */
	if (l->insert && e->nkeys >= max_locks_per_xact)
		return KVS_ROWLOCK_HELD;

	h = hash_bytes_extended((const unsigned char *) key, klen, l->fileid);
	SET_LOCKTAG_ADVISORY(tag, l->dboid, (uint32) (h >> 32), (uint32) h,
						 KVS_LOCKTAG_KEY);
	if (!acquire(&tag, key_mode[m], wait, &res))
	{
		if (l->wait == LockWaitSkip)
			return KVS_ROWLOCK_SKIP;
		lock_not_available(l);
	}
	if (res != LOCKACQUIRE_OK)
		return KVS_ROWLOCK_HELD;
	count_key(e);
	grants++;
	return KVS_ROWLOCK_NEW;
}

/*
 * A counter of the locks this backend was newly granted.  A scan notes it
 * when it reads a batch: a key found held later was held when the batch
 * was read only if no lock was granted since (else it may be the new key
 * of a move of this statement, or covered by an escalation granted since,
 * and its row read before that may be stale).
 */
uint64
kvs_rowlock_grants(void)
{
	return grants;
}

/*
 * Whether a scan must lock the keys it returns, and how: the scan of an
 * UPDATE's or DELETE's result relation (exclusive, waiting), or a scan
 * under a locking row mark of SELECT ... FOR UPDATE/SHARE (the mark's
 * strength and wait policy; ROW_MARK_COPY, see kvsGetForeignRowMarkType).
 */
void
kvs_rowlock_scan(ForeignScanState *node, KvsTable *t, KvsRowLocker *l)
{
	EState	   *estate = node->ss.ps.state;
	Index		rti = ((Scan *) node->ss.ps.plan)->scanrelid;
	ExecRowMark *erm;

	l->active = false;
	if (rti == 0)
		return;
	/*
	 * A scan of a result relation is an UPDATE's or DELETE's (an INSERT does
	 * not scan its target; MERGE refuses foreign tables), also in a WITH
	 * clause of a SELECT, whose statement's commandType is CMD_SELECT.
	 */
	if (ExecRelationIsTargetRelation(estate, rti))
	{
		kvs_rowlocker_init(l, t, KVS_ROWLOCK_EXCLUSIVE, LockWaitBlock);
		return;
	}
	if (estate->es_rowmarks == NULL || rti > estate->es_range_table_size)
		return;
	erm = estate->es_rowmarks[rti - 1];
	if (erm == NULL || erm->strength == LCS_NONE)
		return;
	kvs_rowlocker_init(l, t,
					   (erm->strength == LCS_FORUPDATE ||
						erm->strength == LCS_FORNOKEYUPDATE) ?
					   KVS_ROWLOCK_EXCLUSIVE : KVS_ROWLOCK_SHARE,
					   erm->waitPolicy);
}

/*
 * FOR UPDATE/SHARE of a kvs table: ROW_MARK_COPY, the row travels whole
 * through the plan and our scan locks it (a ROW_MARK_REFERENCE mark would
 * carry a 6-byte ctid, too small for a key, and RefetchForeignRow is not
 * called for UPDATE/DELETE targets anyway).
 */
RowMarkType
kvsGetForeignRowMarkType(RangeTblEntry *rte, LockClauseStrength strength)
{
	return ROW_MARK_COPY;
}

/*
 * The transaction holds a kvs row lock: an intent or escalated lock on some
 * file (every key lock is taken under an intent lock of the same or an
 * outer level, so with none of those held no key lock is either).
 */
bool
kvs_rowlocks_held(void)
{
	int			i;

	for (i = 0; i < nlocked_files; i++)
	{
		LockedFile *e = &locked_files[i];

		if (e->intent[0] || e->intent[1] || e->escalated[0] || e->escalated[1])
			return true;
	}
	return false;
}
