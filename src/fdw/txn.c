/*
 * txn.c - kvs writes follow the PostgreSQL transaction: the commit
 * protocol over the write sets (pending.c), the backend's journal, the
 * commit log as the journal's judge of in-doubt records, and the
 * isolation-level warning.  handle.c's transaction callbacks call in here.
 *
 * Commit.  At XACT_EVENT_PRE_COMMIT, for each file with pending writes, in
 * path order (so two committers lock files in one order): the writers'
 * lock (shared mode) and a write section, the write set applied (its final
 * version per key), kvs_prepare tagged with the top-level transaction id
 * (a FullTransactionId: 64 bits, no wraparound), after that id has been
 * made durable in WAL (make_xid_durable: else a crash could hand it out
 * again).  Then one kvs_journal_flush up to the largest LSN, and
 * ForceSyncCommit(): a transaction that wrote nothing but kvs has written no
 * WAL before its commit record, and RecordTransactionCommit would otherwise
 * not flush that record, so a crash right after COMMIT returned would find
 * the kvs records durable and the transaction aborted.  Both happen whatever
 * synchronous_commit says: the pages are written back into the file in place
 * right after the commit record, so with an asynchronous commit a kill -9
 * before the WAL writer flushed that record would leave the kvs half of a
 * transaction that recovery aborts (its heap half gone), and a power loss
 * could tear the file (the write-back reaching the disk, its journal record
 * not).  A transaction that writes kvs therefore commits synchronously:
 * asynchronous commit would need visibility that does not come from the
 * pages in place (README, "What Postgres does not do").
 * Any error there is an ERROR: the transaction aborts, and the abort's
 * kvs_abort discards the sections (the journal records stay, resolved as
 * aborted by the commit log).  At XACT_EVENT_COMMIT, after the commit
 * record: kvs_commit per file (the pages written back; never raises: a
 * failure is a WARNING and the file is left to recovery), then the
 * writers' locks.  Between the two events the sections are exclusive:
 * other sessions' readers of those files wait for that window only.  (The
 * test-only kvs_fdw.debug_commit_delay sleeps at the end of pre-commit,
 * after the journal flush: test/fdw/xidreuse.sh kills the server there.)
 *
 * The journal: one per backend, opened at first use in
 * $PGDATA/kvs_fdw/journal and handed to every handle (kvs_host_options),
 * closed at backend exit after the handles.  Its xid_status callback asks
 * the commit log (xid_status below).
 */
#include "postgres.h"

#include <limits.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/transam.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "common/file_perm.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "replication/message.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "utils/memutils.h"

#include "kvs_fdw.h"

int			kvs_fdw_weak_isolation = KVS_WEAK_WARNING;

static kvs_journal *journal = NULL;
static bool isolation_warned = false;
static List *prepared_files = NIL;	/* KvsFile *, in TopTransactionContext */
static XLogRecPtr xid_note_end = InvalidXLogRecPtr; /* kvs_txn_note_write */

/*
 * Did transaction xid (a FullTransactionId as 64 bits) commit?  From the
 * commit log, which answers only for xids not older than its oldest page
 * (oldestClogXid, read under XactTruncationLock as pg_xact_status does)
 * and not in the future: outside that, KVS_EINDOUBT -- no guess.
 */
static int
xid_status(void *arg, uint64 xid64)
{
	FullTransactionId fxid = FullTransactionIdFromU64(xid64);
	FullTransactionId next = ReadNextFullTransactionId();
	TransactionId xid = XidFromFullTransactionId(fxid);
	int			r;

	(void) arg;
	if (!TransactionIdIsNormal(xid) || !FullTransactionIdPrecedes(fxid, next) ||
		U64FromFullTransactionId(next) - xid64 >= (uint64) (1U << 31))
		return KVS_EINDOUBT;
	LWLockAcquire(XactTruncationLock, LW_SHARED);
	if (TransactionIdPrecedes(xid, ShmemVariableCache->oldestClogXid))
		r = KVS_EINDOUBT;
	else if (TransactionIdIsCurrentTransactionId(xid) ||
			 TransactionIdIsInProgress(xid))
		r = KVS_XID_IN_PROGRESS;
	else if (TransactionIdDidCommit(xid))
		r = KVS_XID_COMMITTED;
	else
		r = KVS_XID_ABORTED;
	LWLockRelease(XactTruncationLock);
	return r;
}

/* The backend's journal, opened at first use; NULL if that failed. */
kvs_journal *
kvs_fdw_journal(void)
{
	kvs_journal_options o;
	char		dir[MAXPGPATH];
	int			rc;

	if (journal != NULL)
		return journal;
	snprintf(dir, sizeof(dir), "%s/kvs_fdw", DataDir);
	if (MakePGDirectory(dir) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", dir)));
	snprintf(dir, sizeof(dir), "%s/kvs_fdw/journal", DataDir);
	kvs_journal_options_init(&o);
	o.xid_status = xid_status;
	rc = kvs_journal_open(dir, &o, &journal);
	if (rc != KVS_OK)
	{
		journal = NULL;
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("could not open the kvs_fdw journal \"%s\": %s", dir,
						kvs_strerror(rc))));
	}
	kvs_register_exit_callback();
	return journal;
}

/* At backend exit, after every handle is closed (handle.c). */
void
kvs_fdw_journal_close(void)
{
	if (journal != NULL)
		(void) kvs_journal_close(journal);
	journal = NULL;
}

void
kvs_fdw_journal_stats(kvs_journal_stats *st)
{
	kvs_journal *j = kvs_fdw_journal();

	if (j == NULL)
		memset(st, 0, sizeof(*st));
	else
		kvs_journal_stats_cluster(j, st);
}

/*
 * A kvs table is read or written: under REPEATABLE READ or SERIALIZABLE,
 * kvs_fdw.weak_isolation says what happens (kvs tables give read
 * committed): ERROR, one WARNING per transaction, or nothing.
 */
void
kvs_check_isolation(void)
{
	if (!IsolationUsesXactSnapshot() || kvs_fdw_weak_isolation == KVS_WEAK_ALLOW)
		return;
	if (kvs_fdw_weak_isolation == KVS_WEAK_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("kvs_fdw foreign tables do not support transaction isolation level %s",
						XactIsoLevel == XACT_SERIALIZABLE ? "SERIALIZABLE" : "REPEATABLE READ"),
				 errdetail("kvs tables give read committed: each scan sees the rows committed when it reads them."),
				 errhint("Set kvs_fdw.weak_isolation to warning or allow to use them anyway.")));
	if (!isolation_warned)
	{
		isolation_warned = true;
		ereport(WARNING,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("kvs_fdw foreign tables give read committed, not %s",
						XactIsoLevel == XACT_SERIALIZABLE ? "SERIALIZABLE" : "REPEATABLE READ"),
				 errdetail("Each scan of a kvs table sees the rows committed when it reads them."),
				 errhint("Set kvs_fdw.weak_isolation to allow to silence this, or to error to refuse.")));
	}
}

/* XACT_EVENT_PRE_PREPARE */
void
kvs_txn_pre_prepare(void)
{
	if (kvs_pending_any())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot PREPARE a transaction that has written to kvs_fdw foreign tables"),
				 errdetail("kvs_fdw does not support two-phase commit.")));
	if (kvs_rowlocks_held())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot PREPARE a transaction that holds kvs_fdw row locks"),
				 errdetail("kvs_fdw does not support two-phase commit.")));
}

/*
 * The journal records of this commit carry its transaction id, and after a
 * crash the commit log judges them by it.  That is only sound if the id can
 * never be handed out again: PostgreSQL's recovery sets the next xid past
 * every xid its replayed WAL carries, and nothing else -- a transaction that
 * wrote only kvs tables has no WAL record before its commit record, so a
 * crash between our journal flush and that commit record would give its id
 * to the next transaction after the restart, whose commit would then make
 * our records look committed (the crash loop caught exactly that: kvs rows
 * of a transaction whose heap row was lost).  So before any journal record
 * can reach the disk, a small transactional WAL record (a logical message,
 * which recovery and logical decoding treat as a no-op) carrying the xid is
 * inserted and flushed.  The flush is needed whatever synchronous_commit
 * says (the journal record reaches the disk before the commit record).  Concurrent
 * committers share these flushes through PostgreSQL's own group commit.
 * test/fdw/xidreuse.sh kills the server after the journal flush and before
 * the commit record, and fails without this flush.
 *
 * Why not cheaper.  Without this flush a record could still be judged if
 * the judge knew the first xid N of the server that recovered after the
 * crash: an xid >= N cannot have committed (its commit record was not
 * replayed), one < N was never handed out again.  In shared mode a
 * custom WAL resource manager's rm_cleanup sees N at the end of redo, and a
 * table of server starts kept by the postmaster's shmem_startup_hook could
 * record it.  But nothing of ours runs in a server started without
 * shared_preload_libraries: if such a start follows a crash in shared mode,
 * it can hand the crashed id out again and commit it with no trace, and a
 * later start in shared mode would then see a committed id below its own N
 * and replay the crashed records.  Until a start in local mode can be
 * detected for certain, the flush stays.
 */
static void
make_xid_durable(void)
{
	kvs_txn_note_write();
	XLogFlush(xid_note_end);
}

/*
 * The first kvs write of a transaction (a write set created: pending.c)
 * inserts make_xid_durable's WAL record at once, unflushed, so that by the
 * time the pre-commit needs it durable (after taking the file's writers'
 * lock) another flush has usually covered it: the commit record of the
 * session that held the lock meanwhile, the WAL writer's, any other
 * commit's.  Then the XLogFlush finds the WAL flushed past it and returns
 * without an fsync: under concurrent commits of one table this flush stops
 * costing one of its own (test/bench/durable.sh counts them).  Once per transaction: a record
 * inserted in a subtransaction that rolls back stays in WAL and still
 * carries an xid at least the top-level one (recovery sets the next xid
 * past it), so it still does its job.
 */
void
kvs_txn_note_write(void)
{
	if (!XLogRecPtrIsInvalid(xid_note_end))
		return;
	(void) GetTopFullTransactionId();
	xid_note_end = LogLogicalMessage("kvs_fdw", "", 0, true);
}

/* XACT_EVENT_PRE_COMMIT: apply, prepare, flush (see the header comment). */
void
kvs_txn_pre_commit(void)
{
	List	   *files = kvs_pending_files();
	ListCell   *lc;
	uint64		xid;
	uint64		maxlsn = 0;
	MemoryContext old;
	kvs_journal *j;
	int			rc;

	if (files == NIL)
		return;
	xid = U64FromFullTransactionId(GetTopFullTransactionId());
	foreach(lc, files)
	{
		KvsWriteSet *ws = lfirst(lc);
		KvsFile    *f = kvs_write_set_file(ws);
		uint64		lsn = 0;

		kvs_file_begin_write(f);
		old = MemoryContextSwitchTo(TopTransactionContext);
		prepared_files = lappend(prepared_files, f);
		MemoryContextSwitchTo(old);
		kvs_pending_apply(ws);
		kvs_debug_flush_delay();
		/*
		 * Here, not before the writers' lock: a session that waited for the
		 * lock mostly finds its xid's record flushed by the commit of the
		 * session it waited for, and the flush costs nothing (a no-op for
		 * every file after the first).
		 */
		make_xid_durable();
		rc = kvs_prepare(f->db, xid, &lsn);
		if (rc != KVS_OK)
			kvs_report_error(rc, f->db, f->path);
		if (lsn > maxlsn)
			maxlsn = lsn;
	}
	/*
	 * Durable before the commit record, whatever synchronous_commit says:
	 * the write-back at XACT_EVENT_COMMIT overwrites the file in place, so
	 * the journal record must be on disk first (else a power loss can tear
	 * the file) and so must the commit record (else a kill -9 that loses an
	 * asynchronous commit record leaves the written-back kvs half of a
	 * transaction that recovery then aborts).  See the header comment.
	 */
	j = kvs_fdw_journal();
	rc = j ? kvs_journal_flush(j, maxlsn) : KVS_OK;
	if (rc != KVS_OK)
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("could not flush the kvs_fdw journal: %s", kvs_strerror(rc)),
				 errdetail_internal("%s", kvs_journal_errmsg(j))));
	ForceSyncCommit();
	kvs_debug_commit_delay();
}

/* XACT_EVENT_COMMIT: publish; nothing here may raise. */
void
kvs_txn_commit(void)
{
	ListCell   *lc;

	foreach(lc, prepared_files)
	{
		KvsFile    *f = lfirst(lc);
		int			rc;

		if (f->db == NULL || kvs_in_section(f->db) != KVS_WRITE)
			continue;
		rc = kvs_commit(f->db);
		kvs_writer_unlock(&f->wlock);
		if (rc != KVS_OK)
			ereport(WARNING,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("could not write back the committed changes of kvs file \"%s\": %s",
							f->path, kvs_strerror(rc)),
					 errdetail("The commit is in the kvs_fdw journal; the file is recovered from it when it is next opened.")));
	}
	prepared_files = NIL;
	isolation_warned = false;
	xid_note_end = InvalidXLogRecPtr;
	kvs_pending_reset();
}

/* XACT_EVENT_ABORT: the sections are aborted by handle.c's reset. */
void
kvs_txn_abort(void)
{
	prepared_files = NIL;
	isolation_warned = false;
	xid_note_end = InvalidXLogRecPtr;
	kvs_pending_reset();
}

/* ---- SQL functions ---------------------------------------------------------- */

PG_FUNCTION_INFO_V1(kvs_fdw_journal_stats_sql);
PG_FUNCTION_INFO_V1(kvs_fdw_pending);

/*
 * kvs_fdw_journal_stats(): the journal's counters, summed over every
 * process that used it since its control file was made (kept there, so
 * they survive restarts), and its LSNs.
 */
Datum
kvs_fdw_journal_stats_sql(PG_FUNCTION_ARGS)
{
	TupleDesc	td;
	kvs_journal_stats st;
	Datum		v[10];
	bool		n[10] = {false};

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	kvs_fdw_journal_stats(&st);
	v[0] = Int64GetDatum((int64) st.records);
	v[1] = Int64GetDatum((int64) st.bytes);
	v[2] = Int64GetDatum((int64) st.flushes);
	v[3] = Int64GetDatum((int64) st.flush_shared);
	v[4] = Int64GetDatum((int64) st.checkpoints);
	v[5] = Int64GetDatum((int64) st.recovered_records);
	v[6] = Int64GetDatum((int64) st.recovered_pages);
	v[7] = Int64GetDatum((int64) st.end_lsn);
	v[8] = Int64GetDatum((int64) st.flushed_lsn);
	v[9] = Int64GetDatum((int64) st.checkpoint_lsn);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), v, n)));
}

/*
 * kvs_fdw_pending(rel): what this transaction has written to the table's
 * file and not committed yet: keys with a pending version, their bytes,
 * whether a TRUNCATE is pending, and the runs spilled to the temporary file
 * (keys and bytes are counted per run after a spill).  (kvs_fdw_stats shows the committed file.)
 */
Datum
kvs_fdw_pending(PG_FUNCTION_ARGS)
{
	Relation	rel = kvs_open_checked_relation(PG_GETARG_OID(0));
	KvsTable	t;
	TupleDesc	td;
	Datum		v[4];
	bool		n[4] = {false};
	int64		nkeys,
				bytes;
	bool		truncated;
	int			runs;

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	kvs_table_init(&t, rel);
	kvs_table_open_tolerant(&t);
	kvs_pending_counts(t.file, &nkeys, &bytes, &truncated, &runs);
	relation_close(rel, AccessShareLock);
	v[0] = Int64GetDatum(nkeys);
	v[1] = Int64GetDatum(bytes);
	v[2] = BoolGetDatum(truncated);
	v[3] = Int32GetDatum(runs);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), v, n)));
}
