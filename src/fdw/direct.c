/*
 * direct.c - UPDATE and DELETE by key done in the FDW ("direct modify"):
 * `UPDATE t SET n = n + 1 WHERE id = $1`, `DELETE FROM t WHERE id IN (...)`.
 *
 * For each key: read the row as the transaction sees it (its write set over
 * the file, pending.c), check the statement's other conditions on it,
 * compute the new values and add them to the write set; the commit applies
 * them.  No executor round trip per row, no scan node.  (Against other
 * sessions' concurrent changes of the same row, the row locks keep the
 * read-modify-write atomic.)
 *
 * Used only when everything evaluated inside the section is harmless while
 * holding the file lock: expressions over the row's own columns, constants
 * and parameters, with built-in or immutable functions (no sub-selects, no
 * user-defined stable or any volatile function, which might read another
 * kvs table and wait for its lock while we hold ours).  Not for key changes,
 * RETURNING, triggers or check options (the core planner rules those out or
 * we decline): those take the ordinary path in modify.c.  NOT NULL and CHECK
 * constraints are checked on the new row before it is written; a table whose
 * CHECK constraints break the rules above takes the ordinary path too.
 *
 * fdw_private: [kind, description, needed, operation, target attnos,
 *               number of quals, canSetTag] (enum KvsScanPrivateIndex)
 * fdw_exprs:   [lookup value, quals..., new values...]
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "access/table.h"
#include "access/transam.h"
#include "catalog/pg_proc.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "kvs_fdw.h"

typedef struct KvsDirectState
{
	KvsTable	t;
	CmdType		op;
	int			kind;
	Oid			keytype;
	Oid			valtype;
	ExprState  *valstate;
	ExprState  *qualstate;		/* NULL = no conditions */
	List	   *setstates;		/* ExprState per target column */
	List	   *attnos;			/* target columns */
	bool		set_processed;
	bool		done;
	KvsRowLocker lock;			/* each key, before it is read */
	MemoryContext cxt;			/* keys */
	MemoryContext rowcxt;		/* reset per key */
	kvs_stats	before;			/* EXPLAIN ANALYZE: cache counters */
	kvs_stats	after;
	bool		counted;
	Datum	   *values;
	bool	   *isnull;
} KvsDirectState;

/* ---- planning ------------------------------------------------------------ */

typedef struct SafeCtx
{
	Index		relid;
} SafeCtx;

static bool
unsafe_function(Oid funcid, void *context)
{
	char		vol = func_volatile(funcid);

	if (vol == PROVOLATILE_VOLATILE)
		return true;
	if (vol == PROVOLATILE_STABLE && funcid >= FirstNormalObjectId)
		return true;
	return false;
}

static bool
unsafe_walker(Node *node, SafeCtx *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, SubLink) || IsA(node, SubPlan) || IsA(node, AlternativeSubPlan) ||
		IsA(node, Aggref) || IsA(node, WindowFunc) || IsA(node, GroupingFunc) ||
		IsA(node, PlaceHolderVar) ||
		IsA(node, CoerceToDomain))	/* domain checks may call any function */
		return true;
	if (IsA(node, Param) && ((Param *) node)->paramkind != PARAM_EXTERN)
		return true;
	if (IsA(node, Var))
	{
		Var		   *v = (Var *) node;

		return v->varlevelsup != 0 || v->varno != ctx->relid || v->varattno <= 0;
	}
	if (check_functions_in_node(node, unsafe_function, NULL))
		return true;
	return expression_tree_walker(node, unsafe_walker, (void *) ctx);
}

/*
 * CHECK constraints of an UPDATE are evaluated inside the write section
 * (modify_one): the same rules as for the SET list.  Their Vars have varno 1.
 */
static bool
unsafe_checks(Relation rel)
{
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	SafeCtx		ctx;
	int			i;

	ctx.relid = 1;
	for (i = 0; constr != NULL && i < constr->num_check; i++)
		if (unsafe_walker(stringToNode(constr->check[i].ccbin), &ctx))
			return true;
	return false;
}

/* The ForeignScan of rtindex directly below the ModifyTable, if any. */
static ForeignScan *
find_scan(ModifyTable *plan, Index rtindex)
{
	Plan	   *sub = outerPlan(plan);

	if (sub != NULL && IsA(sub, ForeignScan) &&
		((ForeignScan *) sub)->scan.scanrelid == rtindex)
		return (ForeignScan *) sub;
	return NULL;
}

bool
kvsPlanDirectModify(PlannerInfo *root, ModifyTable *plan,
					Index resultRelation, int subplan_index)
{
	CmdType		op = plan->operation;
	ForeignScan *fscan;
	RangeTblEntry *rte;
	Relation	rel;
	KvsTableOptions opts;
	SafeCtx		ctx;
	List	   *quals;
	List	   *tlist = NIL;
	List	   *attnos = NIL;
	List	   *setexprs = NIL;
	ListCell   *lc,
			   *lc2;
	int			kind;

	if (op != CMD_UPDATE && op != CMD_DELETE)
		return false;
	if (plan->returningLists != NIL)
		return false;
	fscan = find_scan(plan, resultRelation);
	if (fscan == NULL || fscan->fdw_private == NIL)
		return false;
	kind = intVal(list_nth(fscan->fdw_private, KvsScanPrivateKind));
	if (kind == KVS_SCAN_FULL || list_length(fscan->fdw_exprs) != 1)
		return false;
	/* a condition on ctid besides the lookup: the ordinary path fills it in */
	if (list_member_int((List *) list_nth(fscan->fdw_private, KvsScanPrivateNeeded),
						SelfItemPointerAttributeNumber))
		return false;

	ctx.relid = resultRelation;
	quals = fscan->scan.plan.qual;
	if (unsafe_walker((Node *) quals, &ctx))
		return false;

	rte = planner_rt_fetch(resultRelation, root);
	rel = table_open(rte->relid, NoLock);
	kvs_get_table_options(rel, &opts);
	if (op == CMD_UPDATE && unsafe_checks(rel))
	{
		table_close(rel, NoLock);
		return false;
	}
	table_close(rel, NoLock);

	if (op == CMD_UPDATE)
	{
		get_translated_update_targetlist(root, resultRelation, &tlist, &attnos);
		forboth(lc, tlist, lc2, attnos)
		{
			TargetEntry *tle = lfirst_node(TargetEntry, lc);
			AttrNumber	attno = lfirst_int(lc2);

			if (attno <= 0 || attno == opts.keyattno)
				return false;	/* key changes wait for the statement's end */
			if (unsafe_walker((Node *) tle->expr, &ctx))
				return false;
			setexprs = lappend(setexprs, tle->expr);
		}
	}

	fscan->operation = op;
	fscan->resultRelation = resultRelation;
	fscan->fdw_exprs = list_concat(list_concat(list_copy(fscan->fdw_exprs),
											   list_copy(quals)),
								   setexprs);
	Assert(list_length(fscan->fdw_private) == KvsScanPrivateOperation);
	fscan->fdw_private = lappend(list_copy(fscan->fdw_private), makeInteger(op));
	fscan->fdw_private = lappend(fscan->fdw_private, list_copy(attnos));
	fscan->fdw_private = lappend(fscan->fdw_private, makeInteger(list_length(quals)));
	fscan->fdw_private = lappend(fscan->fdw_private, makeInteger(plan->canSetTag ? 1 : 0));
	fscan->scan.plan.qual = NIL;
	fscan->scan.plan.async_capable = false;
	return true;
}

/* ---- execution ----------------------------------------------------------- */

void
kvsBeginDirectModify(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	KvsDirectState *s;
	MemoryContext cxt,
				old;
	List	   *exprs = plan->fdw_exprs;
	int			nquals;
	int			i;
	List	   *quals = NIL;
	ListCell   *lc;
	Expr	   *valexpr;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
								"kvs_fdw direct modify", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	s = palloc0(sizeof(KvsDirectState));
	s->cxt = cxt;
	s->rowcxt = AllocSetContextCreate(cxt, "kvs_fdw direct row", ALLOCSET_DEFAULT_SIZES);
	kvs_check_isolation();
	kvs_table_init(&s->t, rel);
	kvs_table_open(&s->t);
	kvs_table_check_writable(&s->t);
	kvs_table_hold(&s->t, cxt);
	s->kind = intVal(list_nth(plan->fdw_private, KvsScanPrivateKind));
	s->op = (CmdType) intVal(list_nth(plan->fdw_private, KvsScanPrivateOperation));
	s->attnos = (List *) list_nth(plan->fdw_private, KvsScanPrivateTargetAttnos);
	nquals = intVal(list_nth(plan->fdw_private, KvsScanPrivateNumQuals));
	s->set_processed = intVal(list_nth(plan->fdw_private, KvsScanPrivateSetProcessed)) != 0;
	kvs_rowlocker_init(&s->lock, &s->t, KVS_ROWLOCK_EXCLUSIVE, LockWaitBlock);
	valexpr = (Expr *) linitial(exprs);
	kvs_lookup_types(rel, s->t.opts.keyattno, s->kind, valexpr, &s->keytype, &s->valtype);
	s->valstate = ExecInitExpr(valexpr, (PlanState *) node);
	i = 0;
	foreach(lc, exprs)
	{
		if (i > 0 && i <= nquals)
			quals = lappend(quals, lfirst(lc));
		else if (i > nquals)
			s->setstates = lappend(s->setstates,
								   ExecInitExpr((Expr *) lfirst(lc), (PlanState *) node));
		i++;
	}
	if (quals != NIL)
		s->qualstate = ExecInitQual(quals, (PlanState *) node);
	s->values = palloc(sizeof(Datum) * RelationGetDescr(rel)->natts);
	s->isnull = palloc(sizeof(bool) * RelationGetDescr(rel)->natts);
	MemoryContextSwitchTo(old);
	node->fdw_state = s;
}

/* One key: read, check, change, write (into the write set). */
static bool
modify_one(ForeignScanState *node, KvsDirectState *s, KeyImage *key)
{
	kvs		   *db = s->t.file->db;
	TupleDesc	td = s->t.tupdesc;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	MemoryContext old;
	kvs_slice	v;
	char	   *val;
	size_t		vlen;
	int			rc;
	bool		changed = false;

	MemoryContextReset(s->rowcxt);
	old = MemoryContextSwitchTo(s->rowcxt);
	if (s->op == CMD_DELETE && s->qualstate == NULL)
	{
		/* nothing to look at: just delete */
		rc = kvs_pending_delete(s->t.file, key->data, key->len);
		if (rc != KVS_OK && rc != KVS_NOTFOUND)
			kvs_report_error(rc, db, s->t.path);
		changed = (rc == KVS_OK);
		goto done;
	}
	rc = kvs_pending_get(s->t.file, key->data, key->len, &v, NULL);
	if (rc == KVS_NOTFOUND)
		goto done;
	if (rc != KVS_OK)
		kvs_report_error(rc, db, s->t.path);
	vlen = v.len;
	val = palloc(vlen + 1);
	memcpy(val, v.data, vlen);

	ExecClearTuple(slot);
	kvs_decode_row(td, s->t.opts.keyattno, s->t.layout, key->data, key->len, val, vlen,
				   slot->tts_values, slot->tts_isnull, NULL, s->t.relname);
	ExecStoreVirtualTuple(slot);
	econtext->ecxt_scantuple = slot;
	if (s->qualstate != NULL && !ExecQual(s->qualstate, econtext))
		goto done;

	if (s->op == CMD_DELETE)
	{
		rc = kvs_pending_delete(s->t.file, key->data, key->len);
		if (rc != KVS_OK && rc != KVS_NOTFOUND)
			kvs_report_error(rc, db, s->t.path);
		changed = (rc == KVS_OK);
	}
	else
	{
		StringInfoData nv;
		ListCell   *lc,
				   *lc2;

		memcpy(s->values, slot->tts_values, sizeof(Datum) * td->natts);
		memcpy(s->isnull, slot->tts_isnull, sizeof(bool) * td->natts);
		forboth(lc, s->setstates, lc2, s->attnos)
		{
			AttrNumber	a = lfirst_int(lc2);

			s->values[a - 1] = ExecEvalExpr((ExprState *) lfirst(lc), econtext,
											&s->isnull[a - 1]);
		}
		/*
		 * NOT NULL and CHECK constraints, as modify.c checks them (heap's
		 * ExecConstraints, heap's errors), on the new row and before the
		 * put: an error leaves this section with no change to write.  The
		 * planner took this path only if the CHECK expressions are as
		 * harmless under the lock as the SET list (unsafe_checks).
		 */
		if (td->constr != NULL)
		{
			ExecClearTuple(slot);
			memcpy(slot->tts_values, s->values, sizeof(Datum) * td->natts);
			memcpy(slot->tts_isnull, s->isnull, sizeof(bool) * td->natts);
			ExecStoreVirtualTuple(slot);
			ExecConstraints(node->resultRelInfo, slot, node->ss.ps.state);
		}
		initStringInfo(&nv);
		kvs_encode_value(td, s->t.opts.keyattno, s->t.layout, s->values, s->isnull, &nv);
		rc = kvs_pending_put(s->t.file, key->data, key->len, nv.data, nv.len, 0);
		if (rc != KVS_OK)
			kvs_report_error(rc, db, s->t.path);
		changed = true;
	}
done:
	if (changed)
		kvs_note_writes(s->t.file, 1);
	ExecClearTuple(slot);
	MemoryContextSwitchTo(old);
	return changed;
}

TupleTableSlot *
kvsIterateDirectModify(ForeignScanState *node)
{
	KvsDirectState *s = (KvsDirectState *) node->fdw_state;
	KeyImage   *keys;
	int			nkeys,
				i;
	double		n = 0;

	if (!s->done)
	{
		kvs_lookup_keys(s->valstate, node->ss.ps.ps_ExprContext, s->kind,
						s->keytype, s->valtype, s->cxt, &keys, &nkeys);
		if (node->ss.ps.instrument)
			s->counted = kvs_stats_get(s->t.file->db, &s->before) == KVS_OK;
		for (i = 0; i < nkeys; i++)
		{
			CHECK_FOR_INTERRUPTS();
			(void) kvs_rowlock(&s->lock, keys[i].data, keys[i].len);
			if (modify_one(node, s, &keys[i]))
				n++;
		}
		if (s->counted)
			s->counted = kvs_stats_get(s->t.file->db, &s->after) == KVS_OK;
		s->done = true;
		if (s->set_processed)
			node->ss.ps.state->es_processed += (uint64) n;
		if (node->ss.ps.instrument)
			node->ss.ps.instrument->tuplecount += n;
	}
	return ExecClearTuple(node->ss.ss_ScanTupleSlot);
}

void
kvsEndDirectModify(ForeignScanState *node)
{
}

void
kvsExplainDirectModify(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	int			nquals = intVal(list_nth(plan->fdw_private, KvsScanPrivateNumQuals));

	KvsDirectState *s = (KvsDirectState *) node->fdw_state;
	CmdType		op = (CmdType) intVal(list_nth(plan->fdw_private, KvsScanPrivateOperation));

	ExplainPropertyText("Kvs Lookup",
						strVal(list_nth(plan->fdw_private, KvsScanPrivateDesc)), es);
	if (op == CMD_DELETE)
		ExplainPropertyText("Kvs Direct", nquals > 0 ?
							"read, check and delete each key" :
							"delete each key", es);
	else
		ExplainPropertyText("Kvs Direct", nquals > 0 ?
							"read, check, change and write each row" :
							"read, change and write each row", es);
	if (es->verbose)
	{
		KvsTable	t;

		kvs_table_init(&t, node->ss.ss_currentRelation);
		ExplainPropertyText("Kvs File", t.path, es);
	}
	if (s == NULL)				/* not executed: say if it could not be */
		kvs_explain_layout(node->ss.ss_currentRelation, es);
	if (es->analyze && s != NULL && s->counted)
		ExplainPropertyText("Kvs Cache",
							psprintf("hit=" UINT64_FORMAT " read=" UINT64_FORMAT
									 " evicted=" UINT64_FORMAT " written=" UINT64_FORMAT,
									 s->after.cache_hits - s->before.cache_hits,
									 s->after.cache_reads - s->before.cache_reads,
									 s->after.cache_evictions - s->before.cache_evictions,
									 s->after.cache_writes - s->before.cache_writes),
							es);
}
