/*
 * kvs_fdw.c - the handler of the kvs_fdw foreign data wrapper: module
 * initialisation (the kvs_fdw.cache_size and kvs_fdw.cache_policy GUCs, the
 * shared mode's in shmem.c, the test-only kvs_fdw.debug_flush_delay and
 * kvs_fdw.debug_commit_delay,
 * kvs_fdw.trace_directory and the trace files of the handles,
 * kvs_fdw.pending_memory and kvs_fdw.weak_isolation (pending.c, txn.c),
 * transaction hooks, the
 * ProcessUtility hook) and the FdwRoutine, its callbacks listed in
 * fdwapi.h's order.  The callbacks
 * themselves live in planner.c, scan.c, modify.c and direct.c.
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "kvs_fdw.h"

PG_MODULE_MAGIC;

/*
 * kvs_fdw.cache_size, in kB: one budget for the buffer pools of all the kvs
 * files a backend has open (shared out by handle.c), in local mode; shared
 * mode has one pool for all, sized by kvs_fdw.shared_cache_size (shmem.c).
 */
int			kvs_fdw_cache_size_kb = 16384;

/*
 * kvs_fdw.cache_policy: the replacement policy of the kvs buffer pools,
 * exact LRU (the default) or PostgreSQL's clock sweep, both over the same
 * frames (src/engine/README.md, "Buffer pool").  Superuser-settable, as
 * a session setting or in postgresql.conf; a change applies to a file the
 * next time the backend opens it (an idle handle is reopened), as for
 * kvs_fdw.cache_size.  In shared mode (kvs_fdw in shared_preload_libraries)
 * it is the shared pool's policy, fixed at server start (PGC_POSTMASTER:
 * switching at a reload would mean keeping both policies' structures up to
 * date all the time); PGC_POSTMASTER is refused for a library loaded after
 * start-up, hence the two contexts.
 */
int			kvs_fdw_cache_policy = KVS_CACHE_LRU;


static const struct config_enum_entry cache_policy_options[] = {
	{"lru", KVS_CACHE_LRU, false},
	{"clock", KVS_CACHE_CLOCK, false},
	{NULL, 0, false}
};

/*
 * kvs_fdw.debug_flush_delay, in ms, for tests only (superuser, hidden from
 * SHOW ALL and the sample file): write paths sleep this long where a write
 * buffer or the key moves join the write set, and inside each commit's
 * write section before kvs_prepare, accepting interrupts, so a test can
 * cancel a statement or a COMMIT there and see that nothing of it is kept.
 * 0 (the default) = off.
 */
int			kvs_fdw_debug_flush_delay_ms = 0;

/*
 * kvs_fdw.debug_commit_delay, in ms, for tests only (superuser, hidden like
 * the above): each commit that wrote kvs tables sleeps this long at the end
 * of its pre-commit, after the journal flush and before PostgreSQL writes
 * its commit record, accepting interrupts, so a test can kill the server
 * while the kvs half of a commit is durable and the commit record is not.
 * 0 (the default) = off.
 */
int			kvs_fdw_debug_commit_delay_ms = 0;

/*
 * kvs_fdw.trace_directory (superuser): '' (the default) = off; else an
 * absolute path where each kvs handle this backend opens from then on
 * appends the engine's page-access trace (kvs_set_trace) to a file of its
 * own, kvs-trace.<pid>.<n>, for the cache lab's offline replay
 * (test/cachelab).  A change applies to a file at the next statement that
 * uses it.
 */
char	   *kvs_fdw_trace_directory = NULL;

void		_PG_init(void);

static const struct config_enum_entry weak_isolation_options[] = {
	{"error", KVS_WEAK_ERROR, false},
	{"warning", KVS_WEAK_WARNING, false},
	{"allow", KVS_WEAK_ALLOW, false},
	{NULL, 0, false}
};

static bool
check_trace_directory(char **newval, void **extra, GucSource source)
{
	if ((*newval)[0] != '\0' && !is_absolute_path(*newval))
	{
		GUC_check_errdetail("kvs_fdw.trace_directory must be an absolute path or empty.");
		return false;
	}
	return true;
}

PG_FUNCTION_INFO_V1(kvs_fdw_handler);
PG_FUNCTION_INFO_V1(kvs_fdw_forget);

void
_PG_init(void)
{
	DefineCustomIntVariable("kvs_fdw.cache_size",
							"Buffer pool memory of a backend for all the kvs files it has open (local mode).",
							"One budget of 4 kB pages shared by the files the backend "
							"uses: each file opened gets a share, idle files are closed "
							"or shrunk to make room; every file has at least 8 pages, so "
							"more than budget/8 files in use at once exceed it.  A change "
							"applies to a file when a statement next opens it.",
							&kvs_fdw_cache_size_kb,
							16384,
							32,
							INT_MAX / 2,
							PGC_USERSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("kvs_fdw.cache_policy",
							 "Replacement policy of the kvs buffer pools: lru or clock.",
							 "lru: exact least recently used (a hit moves the page to the "
							 "head of one list); clock: PostgreSQL's clock sweep (a usage "
							 "count per page, at most 5, and a sweeping hand).",
							 &kvs_fdw_cache_policy,
							 KVS_CACHE_LRU,
							 cache_policy_options,
							 process_shared_preload_libraries_in_progress ?
							 PGC_POSTMASTER : PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("kvs_fdw.debug_flush_delay",
							"Test only: sleep inside each write section before it is written out.",
							"Lets a test cancel a statement inside a write section.",
							&kvs_fdw_debug_flush_delay_ms,
							0,
							0,
							3600 * 1000,
							PGC_SUSET,
							GUC_UNIT_MS | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kvs_fdw.debug_commit_delay",
							"Test only: sleep after a commit's kvs journal flush, before its commit record.",
							"Lets a test kill the server between the two.",
							&kvs_fdw_debug_commit_delay_ms,
							0,
							0,
							3600 * 1000,
							PGC_SUSET,
							GUC_UNIT_MS | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);
	DefineCustomStringVariable("kvs_fdw.trace_directory",
							   "Directory for page-access traces of the kvs buffer pools ('' = off).",
							   "Each kvs file a backend uses appends one record per page "
							   "access to <directory>/kvs-trace.<pid>.<n>, for replaying a "
							   "workload through other replacement policies offline.",
							   &kvs_fdw_trace_directory,
							   "",
							   PGC_SUSET,
							   0,
							   check_trace_directory, NULL, NULL);
	DefineCustomIntVariable("kvs_fdw.pending_memory",
							"Memory for a transaction's pending writes to kvs tables.",
							"Writes to kvs tables are kept in memory until COMMIT; "
							"beyond this limit they spill to temporary files "
							"(temp_file_limit applies).",
							&kvs_fdw_pending_memory_kb,
							64 * 1024,
							64,
							INT_MAX / 2,
							PGC_USERSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("kvs_fdw.weak_isolation",
							 "What a REPEATABLE READ or SERIALIZABLE transaction using a kvs table gets: error, warning or allow.",
							 "kvs tables give read committed.  warning: one warning per "
							 "transaction; error: the statement fails; allow: nothing.",
							 &kvs_fdw_weak_isolation,
							 KVS_WEAK_WARNING,
							 weak_isolation_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	kvs_rowlock_init();
	kvs_shmem_init();			/* shared mode, when preloaded */
	kvs_parallel_init();
	MarkGUCPrefixReserved("kvs_fdw");
	kvs_handles_init();
	kvs_utility_init();
}

/*
 * The test-only sleeps: wait on the latch (so a cancel or statement_timeout
 * wakes it) and take the interrupt, which raises; the error path then
 * aborts the section (or the commit).
 */
static void
debug_sleep(int delay_ms)
{
	TimestampTz end;

	if (delay_ms <= 0)
		return;
	end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay_ms);
	for (;;)
	{
		long		ms;

		CHECK_FOR_INTERRUPTS();
		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);
		if (ms <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* kvs_fdw.debug_flush_delay, inside a write section */
void
kvs_debug_flush_delay(void)
{
	debug_sleep(kvs_fdw_debug_flush_delay_ms);
}

/* kvs_fdw.debug_commit_delay, after a commit's journal flush */
void
kvs_debug_commit_delay(void)
{
	debug_sleep(kvs_fdw_debug_commit_delay_ms);
}

/*
 * The trace files of this backend's handles: which handle writes to which
 * file descriptor, and for which kvs_fdw.trace_directory.  A handful of
 * entries (one per kvs file in use), searched linearly.
 */
typedef struct KvsTrace
{
	kvs		   *db;
	int			fd;
	char	   *dir;			/* in TopMemoryContext */
} KvsTrace;

static KvsTrace *traces = NULL;
static int	ntraces = 0;
static int	maxtraces = 0;
static uint32 trace_files_opened = 0;

/*
 * Brings handle db's trace in line with kvs_fdw.trace_directory: called by
 * handle.c each time a statement starts using the handle, with closing =
 * false, and before it closes the handle, with closing = true.  A trace
 * that cannot be opened is a WARNING, not an ERROR: the handle runs
 * untraced (fd -1) until the setting changes, so the warning comes once.
 */
void
kvs_trace_handle(kvs *db, bool closing)
{
	const char *want = closing ? "" : kvs_fdw_trace_directory;
	KvsTrace   *t = NULL;
	char		path[MAXPGPATH];
	char	   *dir;
	int			fd,
				i,
				rc;

	if (ntraces == 0 && (want == NULL || want[0] == '\0'))
		return;					/* the usual case: off */
	for (i = 0; i < ntraces; i++)
		if (traces[i].db == db)
			t = &traces[i];
	if (t != NULL && want != NULL && strcmp(t->dir, want) == 0)
		return;
	if (t != NULL)
	{
		/* stop (the engine writes out what it buffered), then forget */
		if (t->fd >= 0)
		{
			(void) kvs_set_trace(db, -1);
			close(t->fd);
		}
		pfree(t->dir);
		*t = traces[--ntraces];
	}
	if (want == NULL || want[0] == '\0')
		return;
	if (maxtraces == ntraces)
	{
		int			n = maxtraces == 0 ? 8 : maxtraces * 2;

		traces = traces == NULL ?
			MemoryContextAlloc(TopMemoryContext, n * sizeof(KvsTrace)) :
			repalloc(traces, n * sizeof(KvsTrace));
		maxtraces = n;
	}
	/* allocate first: nothing may raise while the descriptor is unrecorded */
	dir = MemoryContextStrdup(TopMemoryContext, want);
	snprintf(path, sizeof(path), "%s/kvs-trace.%d.%u", want, MyProcPid,
			 ++trace_files_opened);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | PG_BINARY, S_IRUSR | S_IWUSR);
	rc = fd < 0 ? KVS_OK : kvs_set_trace(db, fd);
	if (fd >= 0 && rc != KVS_OK)
	{
		(void) kvs_set_trace(db, -1);
		close(fd);
		fd = -1;
	}
	/* recorded even when it failed: tried once per setting */
	traces[ntraces].db = db;
	traces[ntraces].fd = fd;
	traces[ntraces].dir = dir;
	ntraces++;
	if (fd < 0 && rc == KVS_OK)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not open kvs trace file \"%s\": %m", path),
				 errdetail("The file is used without a page-access trace until kvs_fdw.trace_directory changes.")));
	else if (fd < 0)
		ereport(WARNING,
				(errmsg("could not start the kvs page-access trace \"%s\": %s",
						path, kvs_errmsg(db))));
	else
		elog(DEBUG1, "kvs_fdw: page-access trace of this handle in \"%s\"", path);
}

Datum
kvs_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *r = makeNode(FdwRoutine);

	/* scanning */
	r->GetForeignRelSize = kvsGetForeignRelSize;
	r->GetForeignPaths = kvsGetForeignPaths;
	r->GetForeignPlan = kvsGetForeignPlan;
	r->BeginForeignScan = kvsBeginForeignScan;
	r->IterateForeignScan = kvsIterateForeignScan;
	r->ReScanForeignScan = kvsReScanForeignScan;
	r->EndForeignScan = kvsEndForeignScan;

	/* parallel scans (parallel.c, scan.c) */
	r->IsForeignScanParallelSafe = kvsIsForeignScanParallelSafe;
	r->EstimateDSMForeignScan = kvsEstimateDSMForeignScan;
	r->InitializeDSMForeignScan = kvsInitializeDSMForeignScan;
	r->ReInitializeDSMForeignScan = kvsReInitializeDSMForeignScan;
	r->InitializeWorkerForeignScan = kvsInitializeWorkerForeignScan;

	/* updating */
	r->AddForeignUpdateTargets = kvsAddForeignUpdateTargets;
	r->PlanForeignModify = kvsPlanForeignModify;
	r->BeginForeignModify = kvsBeginForeignModify;
	r->ExecForeignInsert = kvsExecForeignInsert;
	r->ExecForeignBatchInsert = kvsExecForeignBatchInsert;
	r->GetForeignModifyBatchSize = kvsGetForeignModifyBatchSize;
	r->ExecForeignUpdate = kvsExecForeignUpdate;
	r->ExecForeignDelete = kvsExecForeignDelete;
	r->EndForeignModify = kvsEndForeignModify;
	r->BeginForeignInsert = kvsBeginForeignInsert;
	r->EndForeignInsert = kvsEndForeignInsert;
	r->IsForeignRelUpdatable = kvsIsForeignRelUpdatable;
	r->GetForeignRowMarkType = kvsGetForeignRowMarkType;
	r->PlanDirectModify = kvsPlanDirectModify;
	r->BeginDirectModify = kvsBeginDirectModify;
	r->IterateDirectModify = kvsIterateDirectModify;
	r->EndDirectModify = kvsEndDirectModify;

	/* EXPLAIN */
	r->ExplainForeignScan = kvsExplainForeignScan;
	r->ExplainForeignModify = kvsExplainForeignModify;
	r->ExplainDirectModify = kvsExplainDirectModify;

	r->ImportForeignSchema = kvsImportForeignSchema;

	/* ANALYZE */
	r->AnalyzeForeignTable = kvsAnalyzeForeignTable;

	/* TRUNCATE */
	r->ExecForeignTruncate = kvsExecForeignTruncate;

	PG_RETURN_POINTER(r);
}

/* kvs_fdw_forget(oid): called by the extension's sql_drop event trigger. */
Datum
kvs_fdw_forget(PG_FUNCTION_ARGS)
{
	kvs_forget_dropped(PG_GETARG_OID(0));
	PG_RETURN_VOID();
}
