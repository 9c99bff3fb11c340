/*
 * modify.c - writes to kvs_fdw tables: INSERT (single, multi-row batches,
 * ON CONFLICT DO NOTHING, RETURNING), COPY FROM, UPDATE (also of the key),
 * DELETE (with RETURNING) and TRUNCATE.
 *
 * No write touches the file when its statement runs: each goes into the
 * transaction's write set of the table's file (pending.c), which the
 * transaction's own reads overlay and the commit applies (txn.c).  A
 * statement that fails aborts its (sub)transaction, whose abort drops what
 * it wrote, so a failed statement leaves nothing of itself.  Reading the
 * file for a uniqueness check or the current row takes a read section.
 *
 * Batched INSERTs (INSERT ... SELECT, multi-row VALUES) and COPY FROM keep
 * their encoded rows in a buffer and add them to the write set in one read
 * section (the uniqueness checks against the file) when the buffer is full
 * (a share of kvs_fdw.cache_size) or the statement ends.  The statement
 * cannot see its own new rows anyway (stamps), and every buffered row is
 * either added or the statement fails (these paths have no ON CONFLICT), so
 * the result is the same.  A table with AFTER STATEMENT insert triggers
 * (which run before EndForeignModify) flushes per batch.
 *
 * The key behaves like a unique key checked at the end of the statement for
 * UPDATEs that change it: key moves are queued and applied together when the
 * statement ends, after checking that no new key collides with a row that
 * stays, so `UPDATE t SET id = id + 1` works, touches each row once, and a
 * collision fails the statement.
 *
 * NOT NULL and CHECK constraints, which Postgres does not check for foreign
 * tables, are checked here on every row written (check_constraints).
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/appendinfo.h"
#include "parser/parsetree.h"
#include "optimizer/optimizer.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "kvs_fdw.h"

#define KVS_BATCH_SIZE 1000

struct KvsModifyState;
static bool insert_record(struct KvsModifyState *s, StringInfo k, StringInfo v);
static void wrote_rows(struct KvsModifyState *s, uint64 n);
static void encode_row(struct KvsModifyState *s, TupleTableSlot *slot,
					   StringInfo k, StringInfo v);

typedef struct KeyMove
{
	char	   *oldk;
	size_t		oldlen;
	char	   *newk;
	size_t		newlen;
	char	   *val;
	size_t		vallen;
	char	   *oldval;			/* the value the statement read, or NULL */
	size_t		oldvallen;
} KeyMove;

typedef struct KvsModifyState
{
	KvsTable	t;
	CmdType		op;
	KvsRowLocker lock;			/* INSERT/COPY keys, new keys of UPDATEs */
	AttrNumber	keyjunk;		/* "kvs_key" in the plan's output */
	AttrNumber	wholerow;		/* the old row (UPDATE), or 0 */
	bool		onconflict_nothing;
	bool		has_returning;
	bool		stamped;		/* owns the file's statement stamp */
	uint64		nwritten;		/* rows this state has written */
	EState	   *estate;
	MemoryContext cxt;			/* lives for the statement */
	MemoryContext tmpcxt;		/* reset per row */
	KeyMove    *moves;			/* queued key moves (UPDATE) */
	int			nmoves;
	int			maxmoves;
	/* COPY FROM and batch INSERT: encoded rows waiting for their section */
	bool		buffer_rows;	/* COPY: buffer single-row inserts */
	StringInfoData pend;		/* [u32 klen][u32 vlen][key][value]... */
	int			npend;
	size_t		pend_limit;		/* flush when pend reaches this */
	StringInfoData rk,			/* per-row encoding scratch, reused */
				rv;
} KvsModifyState;

/* buffer limits: a share of the cache, within [SMALL, BIG] bytes */
#define PEND_SMALL		(4 * 1024 * 1024)
#define PEND_BIG		(256 * 1024 * 1024)

/*
 * The junk column carrying the old key.  Its name encodes the key column's
 * position, type, typmod and collation: partitions of one table may have
 * different keys, and the planner requires one Var shape per name.
 */
static char *
key_junk_name(Relation rel)
{
	KvsTableOptions opts;
	Form_pg_attribute att;

	kvs_get_table_options(rel, &opts);
	att = TupleDescAttr(RelationGetDescr(rel), opts.keyattno - 1);
	return psprintf("kvs_key_%d_%u_%d_%u", opts.keyattno, att->atttypid,
					att->atttypmod, att->attcollation);
}

void
kvsAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
						   RangeTblEntry *target_rte, Relation target_relation)
{
	KvsTableOptions opts;
	Form_pg_attribute att;
	Var		   *var;

	kvs_get_table_options(target_relation, &opts);
	att = TupleDescAttr(RelationGetDescr(target_relation), opts.keyattno - 1);
	var = makeVar(rtindex, opts.keyattno, att->atttypid, att->atttypmod,
				  att->attcollation, 0);
	add_row_identity_var(root, var, rtindex, key_junk_name(target_relation));
}

/*
 * INSERT ... RETURNING ctid has no scan of the table where planner.c would
 * refuse the system column; UPDATE and DELETE were refused there already.
 */
List *
kvsPlanForeignModify(PlannerInfo *root, ModifyTable *plan,
					 Index resultRelation, int subplan_index)
{
	/*
	 * fdw_private: [may_nest], true if the statement may run a command that
	 * writes while it runs: a volatile function anywhere in it (only those
	 * may write), or a sub-plan, whose expressions the preprocessed query no
	 * longer shows (be safe).  Row triggers are checked at execution.  See
	 * the stamp taken in kvsBeginForeignModify.
	 */
	bool		may_nest = root->glob->subplans != NIL ||
		contain_volatile_functions((Node *) root->parse);

	if (plan->returningLists != NIL)
	{
		Relation	rel = table_open(planner_rt_fetch(resultRelation, root)->relid,
									 NoLock);

		kvs_refuse_system_columns(list_nth(plan->returningLists, subplan_index),
								  resultRelation, rel);
		table_close(rel, NoLock);
	}
	return list_make1(makeInteger(may_nest ? 1 : 0));
}

/*
 * Called in a write section before the statement's first put: take a
 * statement stamp (cheap inside the section) unless a statement on this file
 * already has one, so a cursor of this statement on the same file skips the
 * records the statement writes (scan.c applies it before each batch).
 */
static void
ensure_stamp(KvsModifyState *s)
{
	if (!s->stamped && s->t.file->stamp == 0)
		s->stamped = kvs_file_set_stamp(s->t.file);
}

static KvsModifyState *
begin_modify(EState *estate, ResultRelInfo *rinfo, CmdType op)
{
	KvsModifyState *s;
	MemoryContext cxt,
				old;

	cxt = AllocSetContextCreate(estate->es_query_cxt, "kvs_fdw modify",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	s = palloc0(sizeof(KvsModifyState));
	s->cxt = cxt;
	s->tmpcxt = AllocSetContextCreate(cxt, "kvs_fdw row", ALLOCSET_DEFAULT_SIZES);
	s->op = op;
	s->estate = estate;
	kvs_check_isolation();
	kvs_table_init(&s->t, rinfo->ri_RelationDesc);
	kvs_table_open(&s->t);
	kvs_table_check_writable(&s->t);
	kvs_table_hold(&s->t, cxt);
	kvs_rowlocker_init(&s->lock, &s->t, KVS_ROWLOCK_EXCLUSIVE, LockWaitBlock);
	s->lock.insert = (op == CMD_INSERT);	/* INSERT, COPY: bulk loads */
	initStringInfo(&s->pend);
	initStringInfo(&s->rk);
	initStringInfo(&s->rv);
	MemoryContextSwitchTo(old);
	if (rinfo->ri_TrigDesc && rinfo->ri_TrigDesc->trig_insert_after_statement)
		s->pend_limit = 0;		/* AFTER STATEMENT triggers must see the rows */
	else
		s->pend_limit = Max(PEND_SMALL,
							Min(PEND_BIG, (size_t) kvs_fdw_cache_size_kb * 1024 / 2));
	rinfo->ri_FdwState = s;
	return s;
}

void
kvsBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
					  List *fdw_private, int subplan_index, int eflags)
{
	ModifyTable *plan = (ModifyTable *) mtstate->ps.plan;
	KvsModifyState *s;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	s = begin_modify(mtstate->ps.state, rinfo, mtstate->operation);
	s->onconflict_nothing = (plan->onConflictAction == ONCONFLICT_NOTHING);
	s->has_returning = (plan->returningLists != NIL);
	if (s->op == CMD_UPDATE || s->op == CMD_DELETE)
	{
		Plan	   *subplan = outerPlanState(mtstate)->plan;

		char	   *name = key_junk_name(rinfo->ri_RelationDesc);

		s->keyjunk = ExecFindJunkAttributeInTlist(subplan->targetlist, name);
		if (!AttributeNumberIsValid(s->keyjunk))
			elog(ERROR, "could not find junk column %s", name);
		s->wholerow = ExecFindJunkAttributeInTlist(subplan->targetlist, "wholerow");
	}

	/*
	 * An UPDATE that may run a nested command (a row trigger, a volatile
	 * function) takes its stamp now, before any of them runs: their writes
	 * share the stamp, so a row found changed under it was changed by this
	 * statement's own nested command, not by another session (see
	 * changed_row_error).  Others take it at their first write as before
	 * (taking it is a write section of its own, which invalidates other
	 * backends' caches).
	 */
	if (s->op == CMD_UPDATE &&
		((fdw_private != NIL && intVal(linitial(fdw_private)) != 0) ||
		 (rinfo->ri_TrigDesc &&
		  (rinfo->ri_TrigDesc->trig_update_before_row ||
		   rinfo->ri_TrigDesc->trig_update_after_row))))
		ensure_stamp(s);
}

void
kvsBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	KvsModifyState *s;
	ModifyTable *plan = (ModifyTable *) mtstate->ps.plan;

	/*
	 * A row routed here through a partitioned table: its RETURNING was
	 * planned for the parent, not us (see kvsPlanForeignModify).  Its Vars
	 * carry the parent's range table index; all of them are this row's.
	 */
	kvs_refuse_system_columns((Node *) rinfo->ri_returningList, 0,
							  rinfo->ri_RelationDesc);
	s = begin_modify(mtstate->ps.state, rinfo, CMD_INSERT);

	if (plan != NULL && IsA(plan, ModifyTable))
		s->onconflict_nothing = (plan->onConflictAction == ONCONFLICT_NOTHING);
	else if (plan == NULL &&
			 !(rinfo->ri_TrigDesc &&
			   (rinfo->ri_TrigDesc->trig_insert_before_row ||
				rinfo->ri_TrigDesc->trig_insert_after_row)))
	{
		/*
		 * COPY FROM (PG 15 has no batch API for it): keep encoded rows and
		 * add them to the write set per buffer, their uniqueness checks in
		 * one read section.
		 */
		s->buffer_rows = true;
		if (s->pend_limit == 0)
			s->pend_limit = PEND_SMALL;
	}
}

/* Add the buffered rows to the write set, in one read section. */
static void
flush_rows(KvsModifyState *s)
{
	const char *p = s->pend.data,
			   *end = s->pend.data + s->pend.len;
	uint64		n = 0;

	if (s->npend == 0)
		return;
	kvs_check_rc(kvs_begin(s->t.file->db, KVS_READ), s->t.file->db, s->t.path);
	while (p < end)
	{
		uint32		kl,
					vl;
		StringInfoData k,
					v;

		memcpy(&kl, p, 4);
		memcpy(&vl, p + 4, 4);
		k.data = (char *) p + 8;
		k.len = kl;
		v.data = (char *) p + 8 + kl;
		v.len = vl;
		if (insert_record(s, &k, &v))
			n++;
		p += 8 + kl + vl;
	}
	kvs_debug_flush_delay();
	kvs_check_rc(kvs_end(s->t.file->db), s->t.file->db, s->t.path);
	wrote_rows(s, n);
	s->npend = 0;
	resetStringInfo(&s->pend);
}

/*
 * Encode a slot's row into the buffer (errors before any lock), writing the
 * buffer first if the row would take it past PEND_BIG and after if it
 * reached its limit.
 */
static void
buffer_row(KvsModifyState *s, TupleTableSlot *slot)
{
	uint32		kl,
				vl;

	resetStringInfo(&s->rk);
	resetStringInfo(&s->rv);
	encode_row(s, slot, &s->rk, &s->rv);
	(void) kvs_rowlock(&s->lock, s->rk.data, s->rk.len);
	kl = s->rk.len;
	vl = s->rv.len;
	if (s->npend > 0 && (size_t) s->pend.len + 8 + kl + vl > PEND_BIG)
		flush_rows(s);
	appendBinaryStringInfo(&s->pend, (char *) &kl, 4);
	appendBinaryStringInfo(&s->pend, (char *) &vl, 4);
	appendBinaryStringInfo(&s->pend, s->rk.data, kl);
	appendBinaryStringInfo(&s->pend, s->rv.data, vl);
	s->npend++;
	if (s->pend.len >= s->pend_limit)
		flush_rows(s);
}

static void
null_key_error(KvsModifyState *s)
{
	Form_pg_attribute att = TupleDescAttr(s->t.tupdesc, s->t.opts.keyattno - 1);

	ereport(ERROR,
			(errcode(ERRCODE_NOT_NULL_VIOLATION),
			 errmsg("null value in column \"%s\" of relation \"%s\" violates not-null constraint",
					NameStr(att->attname), s->t.relname),
			 errdetail("The key column of a kvs_fdw table cannot be null.")));
}

static void
key_too_long(KvsModifyState *s, int len)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("key of foreign table \"%s\" is too long: %d bytes",
					s->t.relname, len),
			 errdetail("A kvs key holds at most %d bytes.", KVS_MAX_KEY)));
}

static void
duplicate_error(KvsModifyState *s, Datum keydatum)
{
	Form_pg_attribute att = TupleDescAttr(s->t.tupdesc, s->t.opts.keyattno - 1);

	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("duplicate key value violates the key of foreign table \"%s\"",
					s->t.relname),
			 errdetail("Key (%s)=(%s) already exists.", NameStr(att->attname),
					   kvs_key_to_text(s->t.tupdesc, s->t.opts.keyattno, keydatum))));
}

static void
duplicate_image_error(KvsModifyState *s, const char *k, size_t len)
{
	duplicate_error(s, kvs_decode_key(s->t.tupdesc, s->t.opts.keyattno, k, len));
}

/*
 * NOT NULL and CHECK constraints: Postgres checks them for heap tables only
 * (ExecInsert, ExecUpdate and CopyFrom skip ExecConstraints for foreign
 * tables), so we call the executor's own check, with heap's errors (23502,
 * 23514, "Failing row contains ..."), on every row INSERT, COPY FROM and
 * UPDATE write, before the row is encoded or buffered.  direct.c does the
 * same for UPDATE by key.
 */
static void
check_constraints(ResultRelInfo *rinfo, TupleTableSlot *slot, EState *estate)
{
	if (RelationGetDescr(rinfo->ri_RelationDesc)->constr != NULL)
		ExecConstraints(rinfo, slot, estate);
}

/* Count rows this state wrote (see kvs_note_writes). */
static void
wrote_rows(KvsModifyState *s, uint64 n)
{
	s->nwritten += n;
	kvs_note_writes(s->t.file, n);
}

/* Encode a slot's row; errors (NULL key, key too long) before any lock. */
static void
encode_row(struct KvsModifyState *s, TupleTableSlot *slot, StringInfo k, StringInfo v)
{
	AttrNumber	ka = s->t.opts.keyattno;

	slot_getallattrs(slot);
	if (slot->tts_isnull[ka - 1])
		null_key_error(s);
	kvs_encode_key(s->t.tupdesc, ka, slot->tts_values[ka - 1], k);
	if (k->len > KVS_MAX_KEY)
		key_too_long(s, k->len);
	kvs_encode_value(s->t.tupdesc, ka, s->t.layout, slot->tts_values, slot->tts_isnull, v);
}

/*
 * Add one encoded record to the write set (inside the caller's read
 * section, if any).  Returns false if the key exists and ON CONFLICT DO
 * NOTHING skips it; raises 23505 otherwise (the (sub)transaction's abort
 * drops the statement's rows).  The caller counts the row (wrote_rows).
 */
static bool
insert_record(struct KvsModifyState *s, StringInfo k, StringInfo v)
{
	int			rc;

	ensure_stamp(s);
	rc = kvs_pending_put(s->t.file, k->data, k->len, v->data, v->len,
						 KVS_NOOVERWRITE);
	if (rc == KVS_EXISTS)
	{
		if (s->onconflict_nothing)
			return false;
		duplicate_image_error(s, k->data, k->len);
	}
	if (rc != KVS_OK)
		kvs_report_error(rc, s->t.file->db, s->t.path);
	return true;
}

TupleTableSlot *
kvsExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
					 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	KvsModifyState *s = (KvsModifyState *) rinfo->ri_FdwState;
	StringInfoData k,
				v;
	MemoryContext old;
	bool		inserted;

	check_constraints(rinfo, slot, estate);
	if (s->buffer_rows)
	{
		MemoryContextReset(s->tmpcxt);
		old = MemoryContextSwitchTo(s->tmpcxt);
		buffer_row(s, slot);
		MemoryContextSwitchTo(old);
		return slot;
	}
	MemoryContextReset(s->tmpcxt);
	old = MemoryContextSwitchTo(s->tmpcxt);
	initStringInfo(&k);
	initStringInfo(&v);
	encode_row(s, slot, &k, &v);
	(void) kvs_rowlock(&s->lock, k.data, k.len);	/* before the check */
	inserted = insert_record(s, &k, &v);
	if (inserted)
		wrote_rows(s, 1);
	MemoryContextSwitchTo(old);
	return inserted ? slot : NULL;
}

TupleTableSlot **
kvsExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo,
						  TupleTableSlot **slots, TupleTableSlot **planSlots,
						  int *numSlots)
{
	KvsModifyState *s = (KvsModifyState *) rinfo->ri_FdwState;
	MemoryContext old;
	int			i,
				n = *numSlots;

	/*
	 * Batches exist only without ON CONFLICT, RETURNING and row triggers
	 * (kvsGetForeignModifyBatchSize): every row is inserted or the statement
	 * fails, so the rows can wait in the buffer (see the header comment).
	 */
	Assert(!s->onconflict_nothing);
	MemoryContextReset(s->tmpcxt);
	old = MemoryContextSwitchTo(s->tmpcxt);
	for (i = 0; i < n; i++)
	{
		check_constraints(rinfo, slots[i], estate);
		buffer_row(s, slots[i]);
	}
	MemoryContextSwitchTo(old);
	return slots;
}

int
kvsGetForeignModifyBatchSize(ResultRelInfo *rinfo)
{
	KvsModifyState *s = (KvsModifyState *) rinfo->ri_FdwState;

	if (s == NULL || s->onconflict_nothing ||
		rinfo->ri_projectReturning != NULL ||
		rinfo->ri_WithCheckOptions != NIL ||
		(rinfo->ri_TrigDesc &&
		 (rinfo->ri_TrigDesc->trig_insert_before_row ||
		  rinfo->ri_TrigDesc->trig_insert_after_row)))
		return 1;
	return KVS_BATCH_SIZE;
}

/* The old key (from the kvs_key junk column) as an image. */
static void
old_key_image(KvsModifyState *s, TupleTableSlot *planSlot, StringInfo k)
{
	bool		isnull;
	Datum		d = ExecGetJunkAttribute(planSlot, s->keyjunk, &isnull);

	if (isnull)
		elog(ERROR, "kvs_key is NULL");
	kvs_encode_key(s->t.tupdesc, s->t.opts.keyattno, d, k);
}

/*
 * The value bytes of the row as the statement read it (from the "wholerow"
 * junk column the planner adds to UPDATEs of foreign tables).  False if
 * there is none.
 */
static bool
old_value_image(KvsModifyState *s, TupleTableSlot *planSlot, StringInfo out)
{
	TupleDesc	td = s->t.tupdesc;
	HeapTupleData tup;
	Datum	   *values;
	bool	   *nulls;
	bool		isnull;
	Datum		d;

	if (!AttributeNumberIsValid(s->wholerow))
		return false;
	d = ExecGetJunkAttribute(planSlot, s->wholerow, &isnull);
	if (isnull)
		return false;
	tup.t_data = DatumGetHeapTupleHeader(d);
	tup.t_len = HeapTupleHeaderGetDatumLength(tup.t_data);
	ItemPointerSetInvalid(&tup.t_self);
	tup.t_tableOid = InvalidOid;
	values = palloc(sizeof(Datum) * td->natts);
	nulls = palloc(sizeof(bool) * td->natts);
	heap_deform_tuple(&tup, td, values, nulls);
	kvs_encode_value(td, s->t.opts.keyattno, s->t.layout, values, nulls, out);
	return true;
}

/*
 * The row no longer holds the value this UPDATE read; stamp is the stamp of
 * the version that holds it now (0: the file's committed row).
 *
 * Written under this statement's stamp (which it took before any nested
 * command could run): the row was changed by this statement itself.  If
 * commands nested in the statement (a BEFORE trigger, a volatile function)
 * wrote under the stamp, it is theirs: heap raises 27000 here (ExecUpdate's
 * TM_SelfModified with a later command id, or GetTupleForTrigger's), and so
 * do we.  Otherwise it is the statement's own earlier write of the same row
 * (a join matching the row twice): heap skips the second update silently,
 * and so do we when allow_self (returns).  (When both happen in one
 * statement we cannot tell them apart and raise 27000.)
 *
 * Any other stamp: another session committed a change of the row since
 * the statement read it; overwriting would silently lose it: 40001, as
 * REPEATABLE READ does.  The failed statement leaves nothing of itself, so
 * retrying it is safe.
 */
static void
changed_row_error(KvsModifyState *s, uint64 stamp, bool allow_self)
{
	KvsFile    *f = s->t.file;

	if (stamp != 0 && stamp == f->stamp)
	{
		if (allow_self && s->stamped && f->stamp_writes == s->nwritten)
			return;
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
				 errmsg("tuple to be updated was already modified by an operation triggered by the current command"),
				 errhint("Consider using an AFTER trigger instead of a BEFORE trigger to propagate changes to other rows.")));
	}
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not serialize access due to concurrent update"),
			 errdetail("A row of foreign table \"%s\" changed after this statement read it.",
					   s->t.relname),
			 errhint("Retry the statement.")));
}

TupleTableSlot *
kvsExecForeignUpdate(EState *estate, ResultRelInfo *rinfo,
					 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	KvsModifyState *s = (KvsModifyState *) rinfo->ri_FdwState;
	kvs		   *db = s->t.file->db;
	StringInfoData ok,
				k,
				v,
				ov;
	bool		have_ov;
	MemoryContext old;
	kvs_slice	cur;
	uint64		stamp = 0;
	int			rc;

	check_constraints(rinfo, slot, estate);
	MemoryContextReset(s->tmpcxt);
	old = MemoryContextSwitchTo(s->tmpcxt);
	initStringInfo(&ok);
	initStringInfo(&k);
	initStringInfo(&v);
	initStringInfo(&ov);
	old_key_image(s, planSlot, &ok);
	have_ov = old_value_image(s, planSlot, &ov);
	encode_row(s, slot, &k, &v);

	if (ok.len == k.len && memcmp(ok.data, k.data, k.len) == 0)
	{
		/* same key: replace the value if the row is still there */
		rc = kvs_pending_get(s->t.file, k.data, k.len, &cur, &stamp);
		if (rc == KVS_NOTFOUND)
		{
			MemoryContextSwitchTo(old);
			return NULL;
		}
		if (rc != KVS_OK)
			kvs_report_error(rc, db, s->t.path);
		if (have_ov && !kvs_same_value(&s->t, k.data, k.len, cur.data, cur.len,
									   ov.data, ov.len))
		{
			changed_row_error(s, stamp, true);
			MemoryContextSwitchTo(old);
			return NULL;		/* our own earlier write of this row */
		}
		ensure_stamp(s);
		rc = kvs_pending_put(s->t.file, k.data, k.len, v.data, v.len, 0);
		if (rc != KVS_OK)
			kvs_report_error(rc, db, s->t.path);
		wrote_rows(s, 1);
	}
	else
	{
		/* key move: queued until the statement ends */
		KeyMove    *m;

		(void) kvs_rowlock(&s->lock, k.data, k.len);	/* the new key */
		MemoryContextSwitchTo(s->cxt);
		if (s->nmoves == s->maxmoves)
		{
			s->maxmoves = s->maxmoves ? s->maxmoves * 2 : 64;
			s->moves = s->moves ? repalloc_huge(s->moves, sizeof(KeyMove) * s->maxmoves)
				: palloc(sizeof(KeyMove) * s->maxmoves);
		}
		m = &s->moves[s->nmoves++];
		m->oldk = palloc(ok.len + 1);
		memcpy(m->oldk, ok.data, ok.len);
		m->oldlen = ok.len;
		m->newk = palloc(k.len + 1);
		memcpy(m->newk, k.data, k.len);
		m->newlen = k.len;
		m->val = palloc(v.len + 1);
		memcpy(m->val, v.data, v.len);
		m->vallen = v.len;
		m->oldval = NULL;
		m->oldvallen = 0;
		if (have_ov)
		{
			m->oldval = palloc(ov.len + 1);
			memcpy(m->oldval, ov.data, ov.len);
			m->oldvallen = ov.len;
		}
	}
	MemoryContextSwitchTo(old);
	return slot;
}

static int
cmp_new(const void *a, const void *b)
{
	const KeyMove *x = a,
			   *y = b;

	return kvs_key_cmp(x->newk, x->newlen, y->newk, y->newlen);
}

typedef struct OldKey
{
	const char *k;
	size_t		len;
} OldKey;

static int
cmp_old(const void *a, const void *b)
{
	const OldKey *x = a,
			   *y = b;

	return kvs_key_cmp(x->k, x->len, y->k, y->len);
}

/*
 * Apply the statement's queued key moves to the write set, in one read
 * section: every check first (a collision, a changed row), then the
 * deletes and the inserts.  An error anywhere fails the statement, whose
 * (sub)transaction's abort drops the versions it added.
 */
static void
apply_moves(KvsModifyState *s)
{
	KvsFile    *f = s->t.file;
	kvs		   *db = f->db;
	OldKey	   *olds;
	bool	   *present;
	int			i,
				rc;

	qsort(s->moves, s->nmoves, sizeof(KeyMove), cmp_new);
	for (i = 1; i < s->nmoves; i++)
		if (cmp_new(&s->moves[i - 1], &s->moves[i]) == 0)
			duplicate_image_error(s, s->moves[i].newk, s->moves[i].newlen);
	olds = palloc(sizeof(OldKey) * s->nmoves);
	for (i = 0; i < s->nmoves; i++)
	{
		olds[i].k = s->moves[i].oldk;
		olds[i].len = s->moves[i].oldlen;
	}
	qsort(olds, s->nmoves, sizeof(OldKey), cmp_old);
	present = palloc0(sizeof(bool) * s->nmoves);

	kvs_check_rc(kvs_begin(db, KVS_READ), db, s->t.path);
	for (i = 0; i < s->nmoves; i++)
	{
		kvs_slice	v;
		OldKey		probe;
		uint64		stamp = 0;

		CHECK_FOR_INTERRUPTS();
		/* the row must still be as the statement read it (or gone) */
		rc = kvs_pending_get(f, s->moves[i].oldk, s->moves[i].oldlen, &v, &stamp);
		if (rc == KVS_OK)
		{
			present[i] = true;
			if (s->moves[i].oldval != NULL &&
				!kvs_same_value(&s->t, s->moves[i].oldk, s->moves[i].oldlen,
								v.data, v.len,
								s->moves[i].oldval, s->moves[i].oldvallen))
				changed_row_error(s, stamp, false);
		}
		else if (rc != KVS_NOTFOUND)
			kvs_report_error(rc, db, s->t.path);
		rc = kvs_pending_get(f, s->moves[i].newk, s->moves[i].newlen, &v, NULL);
		if (rc == KVS_NOTFOUND)
			continue;
		if (rc != KVS_OK)
			kvs_report_error(rc, db, s->t.path);
		probe.k = s->moves[i].newk;
		probe.len = s->moves[i].newlen;
		if (bsearch(&probe, olds, s->nmoves, sizeof(OldKey), cmp_old) == NULL)
			duplicate_image_error(s, s->moves[i].newk, s->moves[i].newlen);
	}
	ensure_stamp(s);
	for (i = 0; i < s->nmoves; i++)
	{
		if (!present[i])
			continue;			/* deleted meanwhile by another session */
		rc = kvs_pending_delete(f, s->moves[i].oldk, s->moves[i].oldlen);
		if (rc != KVS_OK && rc != KVS_NOTFOUND)
			kvs_report_error(rc, db, s->t.path);
	}
	kvs_debug_flush_delay();
	for (i = 0; i < s->nmoves; i++)
	{
		if (!present[i])
			continue;
		rc = kvs_pending_put(f, s->moves[i].newk, s->moves[i].newlen,
							 s->moves[i].val, s->moves[i].vallen, KVS_NOOVERWRITE);
		if (rc == KVS_EXISTS)
			duplicate_image_error(s, s->moves[i].newk, s->moves[i].newlen);
		if (rc != KVS_OK)
			kvs_report_error(rc, db, s->t.path);
	}
	kvs_check_rc(kvs_end(db), db, s->t.path);
	for (i = 0; i < s->nmoves; i++)
		if (present[i])
			wrote_rows(s, 1);
	s->nmoves = 0;
}

TupleTableSlot *
kvsExecForeignDelete(EState *estate, ResultRelInfo *rinfo,
					 TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	KvsModifyState *s = (KvsModifyState *) rinfo->ri_FdwState;
	kvs		   *db = s->t.file->db;
	StringInfoData k;
	MemoryContext old;
	kvs_slice	v;
	char	   *val = NULL;
	size_t		vlen = 0;
	int			rc;

	MemoryContextReset(s->tmpcxt);
	old = MemoryContextSwitchTo(s->tmpcxt);
	initStringInfo(&k);
	old_key_image(s, planSlot, &k);
	if (s->has_returning)
	{
		rc = kvs_pending_get(s->t.file, k.data, k.len, &v, NULL);
		if (rc == KVS_OK)
		{
			vlen = v.len;
			val = palloc(vlen + 1);
			memcpy(val, v.data, vlen);
		}
		else if (rc != KVS_NOTFOUND)
			kvs_report_error(rc, db, s->t.path);
	}
	rc = kvs_pending_delete(s->t.file, k.data, k.len);
	if (rc == KVS_NOTFOUND)
	{
		MemoryContextSwitchTo(old);
		return NULL;
	}
	if (rc != KVS_OK)
		kvs_report_error(rc, db, s->t.path);
	wrote_rows(s, 1);
	if (s->has_returning && val != NULL)
	{
		ExecClearTuple(slot);
		kvs_decode_row(s->t.tupdesc, s->t.opts.keyattno, s->t.layout, k.data, k.len, val, vlen,
					   slot->tts_values, slot->tts_isnull, NULL, s->t.relname);
		ExecStoreVirtualTuple(slot);
	}
	MemoryContextSwitchTo(old);
	return slot;
}

static void
end_modify(ResultRelInfo *rinfo)
{
	KvsModifyState *s = (KvsModifyState *) rinfo->ri_FdwState;

	if (s == NULL)
		return;
	flush_rows(s);
	if (s->nmoves > 0)
		apply_moves(s);
	if (s->stamped)
	{
		kvs_file_release_stamp(s->t.file);
		s->stamped = false;
	}
}

void
kvsEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
	end_modify(rinfo);
}

void
kvsEndForeignInsert(EState *estate, ResultRelInfo *rinfo)
{
	end_modify(rinfo);
}

int
kvsIsForeignRelUpdatable(Relation rel)
{
	return (1 << CMD_INSERT) | (1 << CMD_UPDATE) | (1 << CMD_DELETE);
}

void
kvsExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
						List *fdw_private, int subplan_index, ExplainState *es)
{
	if (es->verbose)
	{
		KvsTable	t;

		kvs_table_init(&t, rinfo->ri_RelationDesc);
		ExplainPropertyText("Kvs File", t.path, es);
	}
	/* not executed: say if it could not be (UPDATE/DELETE: their scan does) */
	if (rinfo->ri_FdwState == NULL && mtstate->operation == CMD_INSERT)
		kvs_explain_layout(rinfo->ri_RelationDesc, es);
}

/*
 * TRUNCATE of a damaged file: the same answer in every session.  TRUNCATE
 * throws every page away, so damaged bucket, overflow or value pages do not
 * stop it (that is how a table is reset after its surviving rows were copied
 * out).  But a file whose header or size is bad is refused, whether or not
 * this backend already has it open: we could not even be sure it is a kvs
 * file (an explicit filename may point at anything), and emptying it would
 * destroy what kvs_fdw_salvage() could still read.  A backend with the file
 * open would not notice (its handle read the header before the damage), so
 * the check is a fresh read-only open, as a new session does.
 */
static void
truncate_check_file(KvsTable *t)
{
	kvs_options o;
	kvs		   *db = NULL;
	struct stat sb;
	const char *msg;
	unsigned int page = 0;
	int			n = 0;
	int			rc;

	if (stat(t->path, &sb) != 0)
		return;					/* no file yet: nothing to check */
	kvs_host_options(&o, KVS_RDONLY, 8);
	rc = kvs_open(t->path, &o, &db);
	if (rc == KVS_OK)
	{
		(void) kvs_close(db);	/* read-only: nothing to lose */
		return;
	}
	if (!kvs_is_damage(rc))
		kvs_report_error(rc, NULL, t->path);
	msg = kvs_open_errmsg();
	if (strncmp(msg, t->path, strlen(t->path)) == 0 && msg[strlen(t->path)] == ':')
		msg += strlen(t->path) + 1;
	while (*msg == ' ')
		msg++;
	if (sscanf(msg, "page %u: %n", &page, &n) == 1 && n > 0)
		msg += n;
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 (rc == KVS_ECORRUPT || rc == KVS_ETRUNCATED) ?
			 errmsg("cannot truncate foreign table \"%s\": kvs file \"%s\" is damaged at page %u",
					t->relname, t->path, page) :
			 errmsg("cannot truncate foreign table \"%s\": \"%s\" is not a kvs file of this version",
					t->relname, t->path),
			 errdetail_internal("%s", msg),
			 errhint("TRUNCATE empties a kvs file only if its header is intact. Copy what survives out with kvs_fdw_salvage(), then drop the foreign table or replace its file.")));
}

void
kvsExecForeignTruncate(List *rels, DropBehavior behavior, bool restart_seqs)
{
	ListCell   *lc;

	/* refuse before emptying any of the tables */
	foreach(lc, rels)
	{
		Relation	rel = (Relation) lfirst(lc);
		KvsTable	t;

		kvs_check_isolation();
		kvs_table_init(&t, rel);
		truncate_check_file(&t);
	}
	foreach(lc, rels)
	{
		Relation	rel = (Relation) lfirst(lc);
		KvsTable	t;

		kvs_table_init(&t, rel);
		kvs_table_open(&t);
		kvs_table_check_writable(&t);
		kvs_pending_truncate(t.file);
	}
}
