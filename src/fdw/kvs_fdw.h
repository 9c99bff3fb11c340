/*
 * kvs_fdw.h - internal header of the kvs_fdw foreign data wrapper.
 *
 * Shared declarations between the FDW's files, each with one job:
 *   kvs_fdw.c    handler, _PG_init (GUC, callbacks), FdwRoutine in order
 *   option.c     option validation (the one place) and per-table options
 *   import.c     IMPORT FOREIGN SCHEMA: a table per kvs file of a directory
 *   handle.c     per-backend cache of open kvs files (sharing the
 *                cache_size budget), descriptors (table identity + row
 *                layout), transaction hooks, DROP cleanup, the data-directory
 *                check of explicit filenames at open
 *   rowcodec.c   row <-> record bytes, key images
 *   planner.c    key-qual recognition, paths, plans, row estimates
 *   scan.c       scans (lookup, full, parallel), EXPLAIN, ANALYZE sampling
 *   modify.c     INSERT/UPDATE/DELETE/COPY/TRUNCATE
 *   direct.c     UPDATE/DELETE by key as one read-modify-write per key
 *   pending.c    the transaction's write set per file, overlaid on reads
 *   txn.c        the commit protocol, the backend's journal, isolation
 *   functions.c  kvs_fdw_stats/check/page/cache_stats/reset_stats/key_column
 *   salvage.c    kvs_fdw_salvage: rows of every intact page of a damaged file
 *   alter.c      ALTER FOREIGN TABLE: the event triggers that keep a table's
 *                file able to follow its columns (or refuse the ALTER)
 *   errors.c     kvs_report_error(): engine codes -> SQLSTATEs
 *   utility.c    ProcessUtility hook: CREATE DATABASE copies kvs files,
 *                DROP DATABASE removes them
 *   orphans.c    files whose table is gone: DROP EXTENSION's clean-up,
 *                kvs_fdw_orphans, kvs_fdw_remove_orphan
 *   shmem.c      shared mode: the kvs pool in shared memory, its LWLocks,
 *                the writers' heavyweight lock, kvs_fdw_mode/buffercache
 *   rowlock.c    row locks in the lock manager, their escalation to a
 *                table lock, FOR UPDATE/SHARE row marks
 *   parallel.c   parallel safety, the partial path, the leader's-writes flag
 *                workers read (the chunked parallel scan is in scan.c)
 */
#ifndef KVS_FDW_H
#define KVS_FDW_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "foreign/fdwapi.h"
#include "lib/stringinfo.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "storage/itemptr.h"
#include "storage/lock.h"
#include "utils/relcache.h"

#include "kvs.h"

/* ---- GUC ---------------------------------------------------------------- */
extern int	kvs_fdw_cache_size_kb;
extern int	kvs_fdw_cache_policy;	/* KVS_CACHE_LRU or KVS_CACHE_CLOCK */
extern int	kvs_fdw_debug_flush_delay_ms;	/* test only */
extern char *kvs_fdw_trace_directory;	/* '' = off */
extern void kvs_debug_flush_delay(void);
extern int	kvs_fdw_debug_commit_delay_ms;	/* test only */
extern void kvs_debug_commit_delay(void);
extern void kvs_trace_handle(kvs *db, bool closing);
extern int	kvs_fdw_shared_cache_size_kb;
extern int	kvs_fdw_shared_files;
extern bool kvs_fdw_scan_ring;
extern int	kvs_fdw_pending_memory_kb;
extern int	kvs_fdw_weak_isolation;

#define KVS_WEAK_ERROR		0
#define KVS_WEAK_WARNING	1
#define KVS_WEAK_ALLOW		2

/* ---- shared mode (shmem.c) ---------------------------------------------- */

/* The writers' heavyweight lock of one file, as one handle holds it. */
typedef struct KvsWriterLock
{
	uint64		key;			/* hash of the file's real path
								 * (kvs_writer_identify) */
	bool		held;
	LOCKTAG		tag;			/* as taken, for the release */
} KvsWriterLock;

extern void kvs_shmem_init(void);
extern bool kvs_fdw_preloaded(void);
extern kvs_pool *kvs_shared_pool(void);
extern void kvs_shared_options(kvs_options *o);
extern void kvs_writer_identify(const char *path, KvsWriterLock *wl);
extern uint64 kvs_real_path_hash(const char *path, uint64 seed);
extern void kvs_writer_lock(KvsWriterLock *wl);
extern void kvs_writer_unlock(KvsWriterLock *wl);
extern void kvs_writer_forget(KvsWriterLock *wl);
extern void kvs_pool_tables(Oid **relids, char ***paths);

/* ---- options (option.c) ------------------------------------------------- */
typedef struct KvsTableOptions
{
	char	   *filename;		/* explicit file, or NULL = data directory */
	int			fillfactor;		/* 0 = engine default */
	AttrNumber	keyattno;		/* key column (1-based) */
} KvsTableOptions;

extern void kvs_get_table_options(Relation rel, KvsTableOptions *opts);
extern bool kvs_path_is_internal(const char *path);
extern bool kvs_path_is_below(const char *path, const char *dir);
extern List *kvsImportForeignSchema(ImportForeignSchemaStmt *stmt,
									 Oid serverOid);

/* ---- open files (handle.c) ---------------------------------------------- */

/* One open kvs file in this backend. */
typedef struct KvsFile
{
	char		path[MAXPGPATH];	/* hash key */
	kvs		   *db;
	uint32		cache_pages;	/* frames it was opened with */
	int			ncursors;		/* open cursors: never close under them */
	uint64		stamp;			/* statement stamp in force, 0 = none */
	int			stamp_level;	/* transaction nest level of its owner */
	uint64		stamp_writes;	/* rows written under that stamp: by its
								 * owner and by statements nested in it */
	bool		stale;			/* reopen at next use (no cursors open) */
	KvsWriterLock wlock;		/* shared mode: the writers' lock */
	int			nring;			/* full scans using its bulk-read ring */
	struct KvsWriteSet *pending;	/* this transaction's writes (pending.c),
									 * or NULL */
} KvsFile;

/*
 * How a file's records map to the table's columns when that is not one to
 * one: after ALTER ... ADD/DROP COLUMN on a table that has rows (see
 * handle.c).  NULL in KvsTable for the usual case, where a record holds the
 * table's live columns but the key, in attnum order (or only the first of
 * them: a record written before the last columns were added).
 */
typedef struct KvsLayout
{
	int			ncols;			/* value columns of the file's layout */
	int16	   *attidx;			/* per value column: table attribute index,
								 * or -1: dropped, skip it */
	int16	   *attlen;			/* per value column: its length (to skip) */
	int			natts;			/* table attributes, for the arrays below */
	Datum	   *missing;		/* per table attribute: what a record written
								 * before the column existed reads */
	bool	   *missing_null;
} KvsLayout;

/* What a scan or modify needs to know about one foreign table. */
typedef struct KvsTable
{
	Oid			relid;
	char	   *relname;
	Oid			owner;			/* pg_class.relowner */
	KvsTableOptions opts;
	bool		default_file;	/* file in the data directory, owned */
	char		path[MAXPGPATH];
	TupleDesc	tupdesc;		/* the relation's, in the caller's context */
	KvsFile    *file;			/* set by kvs_table_open */
	KvsLayout  *layout;			/* set by kvs_table_open; NULL: one to one */
	char	   *layout_problem; /* set by kvs_table_open_tolerant: why the
								 * file's layout does not fit, or NULL */
	bool		layout_pending; /* set by kvs_table_open: an ALTER of this
								 * transaction waits to commit: no writes */
	void	   *rel_entry;		/* handle.c's cache entry of the table */
} KvsTable;

/* A live column of a kvs file's descriptor (kvs_descriptor_columns). */
typedef struct KvsFileColumn
{
	char	   *name;			/* NULL: the descriptor has no names */
	char	   *type;			/* schema-qualified, with typmod; or NULL */
	char	   *missing;		/* its "missing" option value, or NULL */
	Oid			typid;
	int32		typmod;
	bool		key;
} KvsFileColumn;

extern void kvs_table_init(KvsTable *t, Relation rel);
extern void kvs_table_open(KvsTable *t);
extern void kvs_table_open_tolerant(KvsTable *t);
extern void kvs_prepare_alter(Relation rel);
extern void kvs_table_check_writable(KvsTable *t);
extern bool kvs_file_fits_table(KvsTable *t, Relation rel, const char *fdesc,
								size_t flen, char **why);
extern KvsLayout *kvs_layout_for_reading(KvsTable *t, const char *fdesc,
										  size_t flen, char **why);
extern bool kvs_file_has_column(const char *fdesc, size_t flen,
								AttrNumber attnum);
extern void kvs_table_check_file(KvsTable *t);
extern void kvs_table_hold(KvsTable *t, MemoryContext cxt);
extern void kvs_default_path(Oid dboid, Oid relid, char *buf);
extern bool kvs_descriptor_identity(const void *desc, size_t len, Oid *dboid,
									Oid *relid, Oid *reltype);
extern KvsFileColumn *kvs_descriptor_columns(const char *fd, size_t flen,
											  int *ncols, bool *mapped,
											  bool *named, char **why);
extern bool kvs_descriptor_set_database(void *desc, size_t len, Oid dboid);
extern bool kvs_file_set_stamp(KvsFile *f);
extern void kvs_file_release_stamp(KvsFile *f);
extern void kvs_note_writes(KvsFile *f, uint64 nrows);
extern void kvs_file_begin_write(KvsFile *f);
extern void kvs_file_end_write(KvsFile *f);
extern void kvs_file_abort_write(KvsFile *f);
extern void kvs_handles_init(void);
extern void kvs_forget_dropped(Oid relid);
extern void kvs_drop_file_at_commit(const char *path);

/* ---- orphaned files (orphans.c) ----------------------------------------- */
extern void kvs_orphans_pre_commit(void);
extern void kvs_orphans_reset(void);
extern void kvs_remove_database_files(Oid dboid);
/* iterate over open files (functions.c) */
extern void kvs_foreach_file(void (*fn) (KvsFile *f, void *arg), void *arg);
extern bool kvs_is_kvs_table(Relation rel);

extern void kvs_register_exit_callback(void);

/* ---- the write set (pending.c) ------------------------------------------ */
typedef struct KvsWriteSet KvsWriteSet;
typedef struct KvsPendingCursor KvsPendingCursor;

extern int	kvs_pending_get(KvsFile *f, const char *key, size_t klen,
							kvs_slice *val, uint64 *stamp);
extern int	kvs_pending_read(KvsFile *f, const char *key, size_t klen,
							 kvs_slice *val);
extern int	kvs_pending_put(KvsFile *f, const char *key, size_t klen,
							const char *val, size_t vlen, int flags);
extern int	kvs_pending_delete(KvsFile *f, const char *key, size_t klen);
extern void kvs_pending_truncate(KvsFile *f);
extern bool kvs_pending_has_writes(KvsFile *f);
extern bool kvs_pending_any(void);
extern void kvs_pending_counts(KvsFile *f, int64 *nkeys, int64 *bytes,
							   bool *truncated, int *runs);
extern void kvs_pending_subabort(SubTransactionId subid);
extern void kvs_pending_reset(void);
extern List *kvs_pending_files(void);
extern KvsFile *kvs_write_set_file(KvsWriteSet *ws);
extern void kvs_pending_apply(KvsWriteSet *ws);
extern void kvs_pending_foreach(void (*fn) (KvsFile *f, void *arg), void *arg);
extern int	kvs_pcursor_open(KvsFile *f, KvsPendingCursor **out);
extern void kvs_pcursor_skip_stamp(KvsPendingCursor *pc, uint64 stamp);
extern int	kvs_pcursor_next(KvsPendingCursor *pc, kvs_slice *key, kvs_slice *val);
extern int	kvs_pcursor_count(KvsPendingCursor *pc, uint64 *n);
extern void kvs_pcursor_close(KvsPendingCursor *pc);

/* ---- transactions (txn.c) ----------------------------------------------- */
extern kvs_journal *kvs_fdw_journal(void);
extern void kvs_fdw_journal_close(void);
extern void kvs_fdw_journal_stats(kvs_journal_stats *st);
extern void kvs_check_isolation(void);
extern void kvs_txn_note_write(void);
extern void kvs_txn_pre_prepare(void);
extern void kvs_txn_pre_commit(void);
extern void kvs_txn_commit(void);
extern void kvs_txn_abort(void);

/* ---- row codec (rowcodec.c) ------------------------------------------- */
/* A type as a lookup sees it (kvs_type_info: memoized per backend). */
typedef struct KvsTypeInfo
{
	Oid			base;			/* getBaseType */
	int16		len;			/* the type's typlen */
	bool		byval;
	Oid			elem;			/* the base type's element type, or
								 * InvalidOid */
} KvsTypeInfo;

extern const KvsTypeInfo *kvs_type_info(Oid typid);
extern bool kvs_key_pushable_type(Oid typid);
extern void kvs_encode_key(TupleDesc td, AttrNumber keyattno, Datum d,
						   StringInfo out);
extern bool kvs_key_image_from(Oid keytype, Oid valtype, Datum v,
							   StringInfo out);
extern bool kvs_ctid_from_key(Oid keytype, Datum key, ItemPointer tid);
extern void kvs_encode_value(TupleDesc td, AttrNumber keyattno,
							 const KvsLayout *lay,
							 Datum *values, bool *isnull, StringInfo out);
extern void kvs_decode_row(TupleDesc td, AttrNumber keyattno,
						   const KvsLayout *lay,
						   const char *key, size_t klen,
						   const char *val, size_t vlen,
						   Datum *values, bool *isnull,
						   const bool *needed, const char *relname);
extern bool kvs_same_value(KvsTable *t, const char *key, size_t klen,
						   const char *stored, size_t slen,
						   const char *read, size_t rlen);
extern Datum kvs_decode_key(TupleDesc td, AttrNumber keyattno,
							const char *key, size_t klen);
extern char *kvs_key_to_text(TupleDesc td, AttrNumber keyattno, Datum d);
extern int	kvs_key_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* ---- planner (planner.c) ------------------------------------------------ */
#define KVS_SCAN_FULL		0
#define KVS_SCAN_LOOKUP		1	/* key = expr */
#define KVS_SCAN_LOOKUP_ANY 2	/* key = ANY(array expr) */

/*
 * Positions in the fdw_private list of a kvs ForeignScan, as postgres_fdw's
 * FdwScanPrivateIndex: kvsGetForeignPlan builds the first three,
 * kvsPlanDirectModify appends the rest.
 */
enum KvsScanPrivateIndex
{
	KvsScanPrivateKind,			/* Integer: KVS_SCAN_* */
	KvsScanPrivateDesc,			/* String: the lookup, for EXPLAIN */
	KvsScanPrivateNeeded,		/* List of Integer: attnums to decode, (0) =
								 * the whole row; -1 (ctid): fill in ctid */
	/* direct modify (direct.c) only: */
	KvsScanPrivateOperation,	/* Integer: CMD_UPDATE or CMD_DELETE */
	KvsScanPrivateTargetAttnos, /* List of Integer: the columns SET */
	KvsScanPrivateNumQuals,		/* Integer: quals in fdw_exprs after the
								 * lookup value */
	KvsScanPrivateSetProcessed	/* Integer: 1 = count es_processed */
};

extern void kvsGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
								 Oid foreigntableid);
extern void kvsGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
							   Oid foreigntableid);
extern ForeignScan *kvsGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
									  Oid foreigntableid, ForeignPath *best_path,
									  List *tlist, List *scan_clauses,
									  Plan *outer_plan);
extern void kvs_refuse_system_columns(Node *expr, Index varno, Relation rel);

/* ---- scan (scan.c) ------------------------------------------------------ */
typedef struct KeyImage
{
	char	   *data;
	size_t		len;
} KeyImage;

extern void kvs_lookup_keys(ExprState *valstate, ExprContext *econtext, int kind,
							Oid keytype, Oid valtype, MemoryContext cxt,
							KeyImage **keysp, int *nkeysp);
extern void kvs_lookup_types(Relation rel, AttrNumber keyattno, int kind, Expr *valexpr,
							 Oid *keytype, Oid *valtype);
extern void kvsBeginForeignScan(ForeignScanState *node, int eflags);
extern TupleTableSlot *kvsIterateForeignScan(ForeignScanState *node);
extern void kvsReScanForeignScan(ForeignScanState *node);
extern void kvsEndForeignScan(ForeignScanState *node);
extern void kvsExplainForeignScan(ForeignScanState *node,
								  struct ExplainState *es);
extern Size kvsEstimateDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt);
extern void kvsInitializeDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt,
										void *coordinate);
extern void kvsReInitializeDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt,
										  void *coordinate);
extern void kvsInitializeWorkerForeignScan(ForeignScanState *node, shm_toc *toc,
										   void *coordinate);
extern bool kvsAnalyzeForeignTable(Relation relation,
								   AcquireSampleRowsFunc *func,
								   BlockNumber *totalpages);

/* ---- parallel scans (parallel.c) ---------------------------------------- */
extern void kvs_parallel_init(void);
extern void kvs_parallel_note_writes(bool any);
extern bool kvs_parallel_leader_writes(void);
extern bool kvsIsForeignScanParallelSafe(PlannerInfo *root, RelOptInfo *rel,
										 RangeTblEntry *rte);
extern void kvs_add_partial_path(PlannerInfo *root, RelOptInfo *baserel, double pages,
								 Cost startup, Cost page_cost, Cost cpu_cost);

/* ---- modify (modify.c) -------------------------------------------------- */
extern void kvsAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
									   RangeTblEntry *target_rte,
									   Relation target_relation);
extern List *kvsPlanForeignModify(PlannerInfo *root, ModifyTable *plan,
								  Index resultRelation, int subplan_index);
extern void kvsBeginForeignModify(ModifyTableState *mtstate,
								  ResultRelInfo *rinfo, List *fdw_private,
								  int subplan_index, int eflags);
extern TupleTableSlot *kvsExecForeignInsert(EState *estate,
											ResultRelInfo *rinfo,
											TupleTableSlot *slot,
											TupleTableSlot *planSlot);
extern TupleTableSlot **kvsExecForeignBatchInsert(EState *estate,
												  ResultRelInfo *rinfo,
												  TupleTableSlot **slots,
												  TupleTableSlot **planSlots,
												  int *numSlots);
extern int	kvsGetForeignModifyBatchSize(ResultRelInfo *rinfo);
extern TupleTableSlot *kvsExecForeignUpdate(EState *estate,
											ResultRelInfo *rinfo,
											TupleTableSlot *slot,
											TupleTableSlot *planSlot);
extern TupleTableSlot *kvsExecForeignDelete(EState *estate,
											ResultRelInfo *rinfo,
											TupleTableSlot *slot,
											TupleTableSlot *planSlot);
extern void kvsEndForeignModify(EState *estate, ResultRelInfo *rinfo);
extern void kvsBeginForeignInsert(ModifyTableState *mtstate,
								  ResultRelInfo *rinfo);
extern void kvsEndForeignInsert(EState *estate, ResultRelInfo *rinfo);
extern int	kvsIsForeignRelUpdatable(Relation rel);
extern void kvsExplainForeignModify(ModifyTableState *mtstate,
									ResultRelInfo *rinfo, List *fdw_private,
									int subplan_index,
									struct ExplainState *es);
extern void kvsExecForeignTruncate(List *rels, DropBehavior behavior,
								   bool restart_seqs);

/* ---- direct UPDATE/DELETE by key (direct.c) ----------------------------- */
extern bool kvsPlanDirectModify(PlannerInfo *root, ModifyTable *plan,
								Index resultRelation, int subplan_index);
extern void kvsBeginDirectModify(ForeignScanState *node, int eflags);
extern TupleTableSlot *kvsIterateDirectModify(ForeignScanState *node);
extern void kvsEndDirectModify(ForeignScanState *node);
extern void kvsExplainDirectModify(ForeignScanState *node,
								   struct ExplainState *es);

/* ---- ALTER (alter.c) ---------------------------------------------------- */
extern void kvs_explain_layout(Relation rel, struct ExplainState *es);
/* ---- ProcessUtility hook (utility.c) ---------------------------------- */
extern void kvs_utility_init(void);
extern void kvs_warn_uncopied(Oid relid, const char *relname);
/* ---- SQL functions (functions.c, salvage.c) ---------------------------- */
extern Relation kvs_open_checked_relation(Oid relid);
extern bool kvs_try(void (*fn) (void *arg), void *arg);

/* ---- row locks (rowlock.c) --------------------------------------------- */
typedef enum KvsRowLockMode
{
	KVS_ROWLOCK_SHARE = 0,		/* FOR SHARE, FOR KEY SHARE */
	KVS_ROWLOCK_EXCLUSIVE = 1	/* FOR UPDATE, UPDATE, DELETE, INSERT */
} KvsRowLockMode;

typedef enum KvsRowLockResult
{
	KVS_ROWLOCK_NEW,			/* newly locked: read the row again */
	KVS_ROWLOCK_HELD,			/* this transaction held it already */
	KVS_ROWLOCK_SKIP			/* SKIP LOCKED: another holds it */
} KvsRowLockResult;

/* How one scan or modify locks the keys of its table. */
typedef struct KvsRowLocker
{
	bool		active;			/* false: this scan locks nothing */
	Oid			dboid;			/* the tags' database: 0 for an explicit
								 * filename (rowlock.c) */
	uint64		fileid;			/* the file's identity (its real path) */
	KvsRowLockMode mode;
	LockWaitPolicy wait;		/* block, NOWAIT (error), SKIP LOCKED */
	bool		insert;			/* locks keys it inserts (rowlock.c: bulk
								 * loads stop locking keys) */
	const char *relname;		/* for the NOWAIT error */
} KvsRowLocker;

extern int	kvs_fdw_lock_escalation;
extern void kvs_rowlock_init(void);
extern void kvs_rowlocker_init(KvsRowLocker *l, KvsTable *t,
							   KvsRowLockMode mode, LockWaitPolicy wait);
extern void kvs_rowlock_scan(ForeignScanState *node, KvsTable *t,
							 KvsRowLocker *l);
extern KvsRowLockResult kvs_rowlock(KvsRowLocker *l, const char *key,
									size_t klen);
extern uint64 kvs_rowlock_grants(void);
extern RowMarkType kvsGetForeignRowMarkType(RangeTblEntry *rte,
											LockClauseStrength strength);
extern bool kvs_rowlocks_held(void);

/* ---- errors (errors.c) -------------------------------------------------- */
extern void kvs_report_error(int rc, kvs *db, const char *path)
			pg_attribute_noreturn();
extern void kvs_check_rc(int rc, kvs *db, const char *path);
extern bool kvs_owned_elsewhere(const char *engine_msg);
extern void kvs_report_directory(const char *path) pg_attribute_noreturn();
extern int	kvs_interrupted(void *arg);
extern void kvs_lock_wait(void *arg, int waiting);
extern void kvs_host_options(kvs_options *o, int flags, uint32 cache_pages);

#endif							/* KVS_FDW_H */
