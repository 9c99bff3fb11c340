/*
 * parallel.c - what a parallel plan over kvs_fdw tables needs outside the
 * scan itself: whether a scan may run in a worker, the partial path, and the
 * flag that tells workers the leader's transaction has pending kvs writes.
 *
 * A worker opens the file through a handle of its own (local mode: its own
 * cache; shared mode: the shared pool), so any full or lookup scan can run
 * in one.  What a worker cannot see is the leader's write set (pending.c):
 * it lives in the leader's memory.  So:
 *  - at plan time, a transaction with a write set plans no kvs scan as
 *    parallel safe (IsForeignScanParallelSafe);
 *  - at run time (a plan cached before the writes), a parallel-aware scan
 *    is told through its DSM to run in the leader alone (scan.c), and any
 *    other kvs scan a worker is given (the inner side of a parallel join,
 *    debug_parallel_query) refuses to run rather than miss the writes.  The
 *    worker learns of the write set from kvs_fdw.parallel_leader_writes, a
 *    hidden setting the leader keeps in step with its write sets: PostgreSQL
 *    copies the leader's settings into every worker it starts.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "nodes/parsenodes.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "utils/guc.h"

#include "kvs_fdw.h"

static bool leader_writes = false;

/* Only the extension changes it (PGC_S_OVERRIDE): a SET is refused. */
static bool
check_leader_writes(bool *newval, void **extra, GucSource source)
{
	if (source != PGC_S_OVERRIDE && source != PGC_S_DEFAULT)
	{
		GUC_check_errdetail("kvs_fdw.parallel_leader_writes is kept by kvs_fdw itself.");
		return false;
	}
	return true;
}

/* From _PG_init. */
void
kvs_parallel_init(void)
{
	DefineCustomBoolVariable("kvs_fdw.parallel_leader_writes",
							 "Internal: this transaction has pending kvs writes (read by parallel workers).",
							 NULL,
							 &leader_writes,
							 false,
							 PGC_SUSET,
							 GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE |
							 GUC_NO_RESET_ALL,
							 check_leader_writes, NULL, NULL);
	/*
	 * A setting at its built-in default is not copied into workers: give it
	 * a source once, then keep the variable itself (what is copied) in step.
	 */
	if (!IsParallelWorker())
		SetConfigOption("kvs_fdw.parallel_leader_writes", "off", PGC_SUSET, PGC_S_OVERRIDE);
}

/* pending.c: the transaction got its first write set, or lost them all. */
void
kvs_parallel_note_writes(bool any)
{
	if (!IsParallelWorker())
		leader_writes = any;
}

/* In a worker: does the leader's transaction have pending kvs writes? */
bool
kvs_parallel_leader_writes(void)
{
	return IsParallelWorker() && leader_writes;
}

bool
kvsIsForeignScanParallelSafe(PlannerInfo *root, RelOptInfo *rel, RangeTblEntry *rte)
{
	/* workers would not see the write set; locking scans stay in the leader */
	if (kvs_pending_any() || leader_writes)
		return false;
	if (root->parse->commandType != CMD_SELECT || root->parse->rowMarks != NIL)
		return false;
	return true;
}

/*
 * The partial path of a full scan: participants claim chunks of the file
 * (scan.c).  Workers from the file's size as for a heap table of as many
 * bytes; the CPU part of the cost divided among the participants as
 * cost_seqscan does, the page reads not.
 */
void
kvs_add_partial_path(PlannerInfo *root, RelOptInfo *baserel, double pages,
					 Cost startup, Cost page_cost, Cost cpu_cost)
{
	double		heap_pages = pages * KVS_PAGE_SIZE / BLCKSZ;
	int			workers;
	double		divisor;
	ForeignPath *path;

	/*
	 * consider_parallel already says kvsIsForeignScanParallelSafe agreed
	 * (a plain SELECT, no row marks, no write set): set_rel_consider_parallel
	 * asks it
	 */
	if (!baserel->consider_parallel || !bms_is_empty(baserel->lateral_relids))
		return;
	workers = compute_parallel_worker(baserel, Min(heap_pages, (double) MaxBlockNumber), -1,
									  max_parallel_workers_per_gather);
	if (workers <= 0)
		return;
	/* the leader's share, as get_parallel_divisor (costsize.c) reckons it */
	divisor = workers;
	if (parallel_leader_participation && 1.0 - 0.3 * workers > 0)
		divisor += 1.0 - 0.3 * workers;
	path = create_foreignscan_path(root, baserel, NULL,
								   clamp_row_est(baserel->rows / divisor),
								   startup, startup + page_cost + cpu_cost / divisor,
								   NIL, NULL, NULL, NIL);
	path->path.parallel_aware = true;
	path->path.parallel_safe = true;
	path->path.parallel_workers = workers;
	add_partial_path(baserel, (Path *) path);
}
