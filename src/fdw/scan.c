/*
 * scan.c - executing scans of kvs_fdw tables: key lookups and full scans,
 * their EXPLAIN lines, and ANALYZE's row sampling.
 *
 * Rows are fetched in batches: each batch is one read section (the shared
 * file lock) in which records are copied into a per-scan batch context; the
 * section ends before the executor sees a row, so the scan never holds the
 * file lock while its own statement writes or other backends wait.  The
 * batch context is reset per batch and a row is decoded in the node's
 * per-tuple memory, which ExecScan resets per row, so a full scan runs in
 * constant memory whatever the table size.  A full scan without row locks
 * or ctids decodes its rows in the section instead, straight from the
 * cursor's records into the batch context (one copy of the values, the
 * datums', not two), and a row is then only its datums set in the slot.  A lookup of one key (key =
 * value) makes no memory context at all: its state lives in the query's
 * context, its one-row batch in the per-tuple memory, its key in a buffer
 * reused across rescans; what a lookup statement repeats is kept down to
 * the read itself (test/bench/README.md, "The cost of one lookup").
 * A full scan that needs no column, no ctid and no row lock (count(*))
 * keeps nothing of a record and returns a row of NULLs for each: a fifth
 * of such a scan's instructions went to copying and decoding rows no one
 * looks at (test/bench/README.md, "Full scans").  Its batches count rows
 * a bucket at a time (kvs_cursor_count: every page read, no record copied
 * or ordered) rather than fetching them.
 *
 * Both kinds read through the transaction's write set (pending.c): its own
 * uncommitted writes overlaid on the file's committed rows.  A full scan
 * skips the versions carrying the stamp of a write statement running on the
 * same file (UPDATE ..., INSERT ... SELECT from the same table), so a
 * statement never sees the rows it wrote itself.  ANALYZE samples the file
 * alone (the committed rows).
 *
 * A locking scan (an UPDATE's or DELETE's result relation, SELECT ... FOR
 * UPDATE/SHARE: rowlock.c) locks each key it returns, lookups and full
 * scans alike: when the row, as the batch read it, passes the scan's local
 * conditions, its key is locked (outside any section), and the row is read
 * again if the lock is new (a writer may have committed since the batch
 * was read): gone, it is skipped; changed, the new version is returned and
 * ExecScan checks the conditions on it.  A row that fails them as read is
 * not locked, as heap does not lock rows its scan's quals reject.
 *
 * A parallel full scan (a partial path, parallel.c) splits the file's scan
 * order, the bit-reversed hash, into KVS_PARALLEL_CHUNKS intervals; each
 * participant claims the next one from a counter in the DSM when it has
 * finished its last, and scans it with a range cursor on its own handle
 * (kvs_cursor_set_range), so every committed row is read exactly once and a
 * slow participant holds back no other.  Workers cannot see the leader's
 * write set: when the leader has pending writes on the file (or a write
 * statement's stamp) as the parallel scan starts, it says so in the DSM,
 * workers return no rows and the leader scans everything through its write
 * set, as a plain scan does.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "commands/vacuum.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/sampling.h"

#include "kvs_fdw.h"

#define BATCH_ROWS	256
#define BATCH_BYTES (256 * 1024)

/* a parallel scan's chunks: the 2^32 revs in 256 intervals of 2^24 */
#define KVS_PARALLEL_CHUNKS 256

/* the DSM of a parallel full scan */
typedef struct KvsParallelScan
{
	pg_atomic_uint32 next_chunk;	/* the next chunk to claim */
	bool		leader_alone;	/* the leader has writes: workers return none */
} KvsParallelScan;

typedef struct KvsScanState
{
	KvsTable	t;
	int			kind;
	bool	   *needed;			/* per attribute, NULL = all */
	bool		no_columns;		/* a full scan that needs no column, no ctid
								 * and no row lock (count(*)): rows are
								 * counted, not copied or decoded */
	bool		decode_early;	/* a full scan that needs columns but no ctid
								 * and no row lock: rows are decoded in the
								 * batch's section straight from the cursor's
								 * record (bvalues, bnulls), not copied first */
	bool		want_ctid;		/* fill in ctid (integer keys: planner.c) */
	Oid			ctid_keytype;	/* then: the key's base type */
	ExprState  *valstate;		/* the lookup value, or NULL: */
	int			valparam;		/* key = $n: n (its value read directly) */
	Oid			valparamtype;
	Const	   *valconst;		/* or key = constant */
	Oid			valtype;		/* base type of the lookup value (elements) */
	Oid			keytype;

	MemoryContext scancxt;		/* lives for the scan: the query's */
	MemoryContext keycxt;		/* lookup keys of = ANY, reset per rescan
								 * (made at the first) */
	MemoryContext batchcxt;		/* fetched records, reset per batch (key =
								 * value: rowcxt) */
	MemoryContext rowcxt;		/* decoded row: the node's per-tuple memory,
								 * which ExecScan resets per row */

	/* lookups */
	bool		keys_ready;
	KeyImage   *keys;
	int			nkeys;
	int			keypos;
	KeyImage	key1;			/* key = value: its one key, built in keybuf */
	StringInfoData keybuf;

	KvsRowLocker lock;			/* row locks (rowlock.c) */
	bool		lock_precheck;	/* check the quals before locking a row */
	uint64		batch_grants;	/* kvs_rowlock_grants() when the batch was
								 * read */

	/* full scan */
	KvsPendingCursor *cur;
	uint64		skipping;		/* statement stamp the cursor skips */
	bool		done;
	bool		ring_checked;	/* the bulk-read ring decided for this cursor */
	bool		ring;			/* it uses its file's ring (KvsFile.nring) */

	/* parallel full scan: NULL pscan = not parallel (or not launched) */
	KvsParallelScan *pscan;
	kvs_cursor *rcur;			/* the range cursor of the claimed chunk */
	bool		chunk_open;

	/* the current batch (counted batches of no_columns end at a bucket's
	 * end, so they may pass BATCH_ROWS) */
	int64		nrows;
	int64		pos;
	KeyImage   *rk;
	KeyImage   *rv;
	KeyImage	rk1,			/* a batch of one row (key = value) */
				rv1;
	Datum	   *bvalues;		/* decode_early: natts per row of the batch */
	bool	   *bnulls;

	/* EXPLAIN ANALYZE */
	ForeignScanState *node;
	bool		instrument;
	kvs_stats	snap;
	uint64		hit,
				read,
				evicted,
				written;
} KvsScanState;

static void
close_cursor(KvsScanState *s)
{
	if (s->cur != NULL)
	{
		kvs_pcursor_close(s->cur);
		s->cur = NULL;
		if (s->t.file && s->t.file->ncursors > 0)
			s->t.file->ncursors--;
		if (s->ring && s->t.file && s->t.file->nring > 0 &&
			--s->t.file->nring == 0 && s->t.file->db != NULL)
			(void) kvs_set_ring(s->t.file->db, 0);
	}
	if (s->rcur != NULL)
	{
		kvs_cursor_close(s->rcur);
		s->rcur = NULL;
		if (s->t.file && s->t.file->ncursors > 0)
			s->t.file->ncursors--;
	}
	s->chunk_open = false;
	s->ring = false;
	s->ring_checked = false;
}

/* Parallel: this participant claims chunks (none when the leader scans alone). */
static bool
chunked(KvsScanState *s)
{
	return s->pscan != NULL && !s->pscan->leader_alone;
}

/*
 * The next record of the chunks this participant claims: when its chunk is
 * done it takes the next unclaimed one.  KVS_NOTFOUND when none is left.
 * With n, the records are counted instead (kvs_cursor_count: *n of them,
 * up to the end of a bucket), k and v untouched.
 */
static int
chunk_next(KvsScanState *s, kvs_slice *k, kvs_slice *v, uint64 *n)
{
	int			rc;

	for (;;)
	{
		if (!s->chunk_open)
		{
			uint32		i = pg_atomic_fetch_add_u32(&s->pscan->next_chunk, 1);
			uint64		width = KVS_REV_END / KVS_PARALLEL_CHUNKS;

			if (i >= KVS_PARALLEL_CHUNKS)
				return KVS_NOTFOUND;
			rc = kvs_cursor_set_range(s->rcur, i * width, (i + 1) * width);
			if (rc != KVS_OK)
				return rc;
			s->chunk_open = true;
		}
		rc = n != NULL ? kvs_cursor_count(s->rcur, n) : kvs_cursor_next(s->rcur, k, v);
		if (rc != KVS_NOTFOUND)
			return rc;
		s->chunk_open = false;
	}
}

/*
 * kvs_fdw.scan_ring (shared mode): a full scan of a file larger than a
 * quarter of the shared pool reads through a ring of SCAN_RING_FRAMES
 * frames of its own, as PostgreSQL's BULKREAD strategy does, so one large
 * scan does not push everything else out.  The ring is the handle's: on
 * while any full scan of this backend on the file wants it.  Called inside
 * the batch's section (the page count without another one).
 */
#define SCAN_RING_FRAMES 64

static void
decide_ring(KvsScanState *s)
{
	kvs_pool   *p = kvs_shared_pool();
	kvs_stats	st;

	s->ring_checked = true;
	if (!kvs_fdw_scan_ring || p == NULL ||
		kvs_stats_get(s->t.file->db, &st) != KVS_OK ||
		st.pages <= kvs_pool_frames(p) / 4)
		return;
	if (s->t.file->nring++ == 0)
		(void) kvs_set_ring(s->t.file->db, SCAN_RING_FRAMES);
	s->ring = true;
}

static void
scan_cxt_reset_cb(void *arg)
{
	close_cursor((KvsScanState *) arg);
}

void
kvsBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	KvsScanState *s;
	MemoryContext scancxt;
	MemoryContextCallback *cb;
	List	   *needed;
	ListCell   *lc;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	kvs_check_isolation();

	/*
	 * The scan's memory is the query's: a statement that looks up one key
	 * makes no memory context of its own.  Its row (decoded, and for a
	 * lookup of one key also as fetched) lives in the node's per-tuple
	 * memory, which ExecScan resets before it asks for the next row.
	 */
	scancxt = node->ss.ps.state->es_query_cxt;
	s = MemoryContextAllocZero(scancxt, sizeof(KvsScanState));
	s->scancxt = scancxt;
	s->kind = intVal(list_nth(plan->fdw_private, KvsScanPrivateKind));
	s->rowcxt = node->ss.ps.ps_ExprContext->ecxt_per_tuple_memory;
	if (s->kind == KVS_SCAN_LOOKUP)
		s->batchcxt = s->rowcxt;
	else
		s->batchcxt = AllocSetContextCreate(scancxt, "kvs_fdw batch", ALLOCSET_DEFAULT_SIZES);
	cb = MemoryContextAlloc(scancxt, sizeof(MemoryContextCallback));
	cb->func = scan_cxt_reset_cb;
	cb->arg = s;
	MemoryContextRegisterResetCallback(scancxt, cb);

	{
		MemoryContext old = MemoryContextSwitchTo(scancxt);

		kvs_table_init(&s->t, rel);
		kvs_table_open(&s->t);
		kvs_table_hold(&s->t, scancxt);
		MemoryContextSwitchTo(old);
	}
	needed = (List *) list_nth(plan->fdw_private, KvsScanPrivateNeeded);
	if (list_member_int(needed, SelfItemPointerAttributeNumber))
	{
		s->want_ctid = true;
		s->ctid_keytype = kvs_type_info(TupleDescAttr(RelationGetDescr(rel),
													  s->t.opts.keyattno - 1)->atttypid)->base;
	}
	if (!list_member_int(needed, 0))
	{
		s->needed = MemoryContextAllocZero(scancxt, sizeof(bool) * RelationGetDescr(rel)->natts);
		foreach(lc, needed)
		{
			int			a = lfirst_int(lc);

			if (a > 0 && a <= RelationGetDescr(rel)->natts)
				s->needed[a - 1] = true;
		}
	}
	if (s->kind != KVS_SCAN_FULL)
	{
		Expr	   *e = (Expr *) linitial(plan->fdw_exprs);
		ParamListInfo pli = node->ss.ps.state->es_param_list_info;

		/*
		 * key = $n, a statement's parameter: its value is read where the
		 * executor keeps it, with no expression to set up per execution
		 * (unless the parameters are compiled by their source: PL/pgSQL);
		 * key = constant: the plan's constant.
		 */
		if (s->kind == KVS_SCAN_LOOKUP && IsA(e, Param) &&
			((Param *) e)->paramkind == PARAM_EXTERN &&
			(pli == NULL || pli->paramCompile == NULL))
		{
			s->valparam = ((Param *) e)->paramid;
			s->valparamtype = ((Param *) e)->paramtype;
		}
		else if (s->kind == KVS_SCAN_LOOKUP && IsA(e, Const))
			s->valconst = (Const *) e;
		else
			s->valstate = ExecInitExpr(e, (PlanState *) node);
		kvs_lookup_types(rel, s->t.opts.keyattno, s->kind, e, &s->keytype, &s->valtype);
	}
	else
		kvs_lookup_types(rel, s->t.opts.keyattno, s->kind, NULL, &s->keytype, &s->valtype);
	/*
	 * A scan a worker runs for itself (the inner side of a parallel join, a
	 * plan cached before the writes) cannot see the leader's write set.
	 */
	if (IsParallelWorker() && !plan->scan.plan.parallel_aware && kvs_parallel_leader_writes())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("kvs_fdw cannot scan \"%s\" in a parallel worker while the transaction has pending kvs writes",
						s->t.relname),
				 errdetail("The writes are in the leader's memory; the plan was made before them."),
				 errhint("Plan the statement again (a plan made now keeps kvs scans in the leader), or end the transaction first.")));
	kvs_rowlock_scan(node, &s->t, &s->lock);
	/* volatile quals must run once per row: then every row is locked */
	s->lock_precheck = !contain_volatile_functions((Node *) plan->scan.plan.qual);
	if (s->kind == KVS_SCAN_FULL && s->needed != NULL && !s->want_ctid && !s->lock.active)
	{
		int			a;

		s->no_columns = true;
		for (a = 0; a < RelationGetDescr(rel)->natts; a++)
			if (s->needed[a])
				s->no_columns = false;
	}
	s->decode_early = s->kind == KVS_SCAN_FULL && !s->no_columns && !s->want_ctid &&
		!s->lock.active;
	s->node = node;
	node->fdw_state = s;
}

static int
cmp_image(const void *a, const void *b)
{
	const KeyImage *x = a,
			   *y = b;

	return kvs_key_cmp(x->data, x->len, y->data, y->len);
}

/*
 * The base types a lookup compares: the key column's (*keytype) and the
 * lookup value's (*valtype: valexpr's type, or its array's element type for
 * KVS_SCAN_LOOKUP_ANY; InvalidOid for a full scan, valexpr NULL).  Shared by
 * the scan and direct modify.
 */
void
kvs_lookup_types(Relation rel, AttrNumber keyattno, int kind, Expr *valexpr,
				 Oid *keytype, Oid *valtype)
{
	*keytype = kvs_type_info(TupleDescAttr(RelationGetDescr(rel), keyattno - 1)->atttypid)->base;
	*valtype = InvalidOid;
	if (kind == KVS_SCAN_FULL)
		return;
	*valtype = kvs_type_info(exprType((Node *) valexpr))->base;
	if (kind == KVS_SCAN_LOOKUP_ANY)
		*valtype = kvs_type_info(kvs_type_info(*valtype)->elem)->base;
}

/*
 * The key image of lookup value v into buf (reset first); false if no key
 * of keytype can equal it (out of the key type's range, longer than a key).
 */
static bool
kvs_lookup_key(Oid keytype, Oid valtype, Datum v, StringInfo buf)
{
	resetStringInfo(buf);
	return kvs_key_image_from(keytype, valtype, v, buf) && buf->len <= KVS_MAX_KEY;
}

/*
 * Evaluate a lookup's value expression (kind KVS_SCAN_LOOKUP: one value;
 * KVS_SCAN_LOOKUP_ANY: an array) into distinct key images, allocated in cxt.
 * NULLs and values no key of keytype can equal are dropped.  Runs outside
 * any section: the expression may run a sub-select.
 */
void
kvs_lookup_keys(ExprState *valstate, ExprContext *econtext, int kind,
				Oid keytype, Oid valtype, MemoryContext cxt,
				KeyImage **keysp, int *nkeysp)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	KeyImage   *keys = NULL;
	int			nkeys = 0;
	Datum		v;
	bool		isnull;
	StringInfoData buf;

	v = ExecEvalExpr(valstate, econtext, &isnull);
	if (!isnull && kind == KVS_SCAN_LOOKUP)
	{
		initStringInfo(&buf);
		keys = palloc(sizeof(KeyImage));
		if (kvs_lookup_key(keytype, valtype, v, &buf))
		{
			keys[0].data = buf.data;
			keys[0].len = buf.len;
			nkeys = 1;
		}
	}
	else if (!isnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(v);
		int16		elmlen;
		bool		elmbyval;
		char		elmalign;
		Datum	   *elems;
		bool	   *nulls;
		int			n,
					i,
					j;

		get_typlenbyvalalign(ARR_ELEMTYPE(arr), &elmlen, &elmbyval, &elmalign);
		deconstruct_array(arr, ARR_ELEMTYPE(arr), elmlen, elmbyval, elmalign,
						  &elems, &nulls, &n);
		keys = palloc(sizeof(KeyImage) * Max(n, 1));
		for (i = 0; i < n; i++)
		{
			if (nulls[i])
				continue;
			initStringInfo(&buf);
			if (!kvs_lookup_key(keytype, valtype, elems[i], &buf))
				continue;
			keys[nkeys].data = buf.data;
			keys[nkeys].len = buf.len;
			nkeys++;
		}
		/* each key once */
		if (nkeys > 1)
		{
			qsort(keys, nkeys, sizeof(KeyImage), cmp_image);
			for (i = 1, j = 1; i < nkeys; i++)
				if (cmp_image(&keys[i], &keys[j - 1]) != 0)
					keys[j++] = keys[i];
			nkeys = j;
		}
	}
	MemoryContextSwitchTo(old);
	*keysp = keys;
	*nkeysp = nkeys;
}

/*
 * The value of parameter $id (of type ptype when the plan was made), as
 * ExecEvalParamExtern reads it.
 */
static Datum
param_value(ExprContext *econtext, int id, Oid ptype, bool *isnull)
{
	ParamListInfo pli = econtext->ecxt_param_list_info;

	if (pli != NULL && id > 0 && id <= pli->numParams)
	{
		ParamExternData *prm;
		ParamExternData prmdata;

		if (pli->paramFetch != NULL)
			prm = pli->paramFetch(pli, id, false, &prmdata);
		else
			prm = &pli->params[id - 1];
		if (OidIsValid(prm->ptype))
		{
			if (prm->ptype != ptype)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("type of parameter %d (%s) does not match that when preparing the plan (%s)",
								id, format_type_be(prm->ptype), format_type_be(ptype))));
			*isnull = prm->isnull;
			return prm->value;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("no value found for parameter %d", id)));
	return (Datum) 0;			/* keep the compiler quiet */
}

/*
 * Evaluate the lookup value(s) of this scan into distinct key images.  The
 * one key of key = value is built in a buffer of the scan's (so a lookup
 * makes no memory context of its own, and a rescanned one reuses it).
 */
static void
prepare_keys(ForeignScanState *node, KvsScanState *s)
{
	s->keypos = 0;
	s->keys_ready = true;
	if (s->kind == KVS_SCAN_LOOKUP)
	{
		ExprContext *econtext = node->ss.ps.ps_ExprContext;
		MemoryContext old;
		Datum		v;
		bool		isnull;
		bool		ok;

		if (s->keybuf.data == NULL)
		{
			old = MemoryContextSwitchTo(s->scancxt);
			initStringInfo(&s->keybuf);
			MemoryContextSwitchTo(old);
		}
		s->keys = &s->key1;
		s->nkeys = 0;
		/* what evaluating and detoasting allocate goes with the row */
		old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
		if (s->valstate != NULL)
			v = ExecEvalExpr(s->valstate, econtext, &isnull);
		else if (s->valconst != NULL)
		{
			v = s->valconst->constvalue;
			isnull = s->valconst->constisnull;
		}
		else
			v = param_value(econtext, s->valparam, s->valparamtype, &isnull);
		ok = !isnull && kvs_lookup_key(s->keytype, s->valtype, v, &s->keybuf);
		MemoryContextSwitchTo(old);
		if (ok)
		{
			s->key1.data = s->keybuf.data;
			s->key1.len = s->keybuf.len;
			s->nkeys = 1;
		}
		return;
	}
	if (s->keycxt == NULL)
		s->keycxt = AllocSetContextCreate(s->scancxt, "kvs_fdw keys", ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(s->keycxt);
	kvs_lookup_keys(s->valstate, node->ss.ps.ps_ExprContext, s->kind,
					s->keytype, s->valtype, s->keycxt, &s->keys, &s->nkeys);
}

static void
counters_start(KvsScanState *s)
{
	/* the executor sets up instrumentation after BeginForeignScan */
	s->instrument = (s->node->ss.ps.instrument != NULL);
	if (s->instrument && kvs_stats_get(s->t.file->db, &s->snap) != KVS_OK)
		s->instrument = false;
}

static void
counters_stop(KvsScanState *s)
{
	kvs_stats	st;

	if (s->instrument && kvs_stats_get(s->t.file->db, &st) == KVS_OK)
	{
		s->hit += st.cache_hits - s->snap.cache_hits;
		s->read += st.cache_reads - s->snap.cache_reads;
		s->evicted += st.cache_evictions - s->snap.cache_evictions;
		s->written += st.cache_writes - s->snap.cache_writes;
	}
}

/*
 * Copy a record read in the batch's section into the batch.  A lookup's key
 * is the scan's own key image (s->keys), which outlives the batch: it is
 * not copied.
 */
static void
keep(KvsScanState *s, size_t *bytes, kvs_slice *k, kvs_slice *v, int cap)
{
	KeyImage   *ki = &s->rk[s->nrows],
			   *vi = &s->rv[s->nrows];

	Assert(s->nrows < cap && !s->no_columns);
	ki->len = k->len;
	if (s->kind != KVS_SCAN_FULL)
		ki->data = (char *) k->data;
	else
	{
		ki->data = palloc(k->len + 1);
		memcpy(ki->data, k->data, k->len);
	}
	vi->len = v->len;
	vi->data = palloc(v->len + 1);
	memcpy(vi->data, v->data, v->len);
	s->nrows++;
	*bytes += k->len + v->len;
}

/*
 * Decode a record read in the batch's section into the batch's row arrays
 * (in the batch context), straight from the cursor's slices: one copy of
 * the values (the datums' own) instead of two (the batch's, then the
 * datums').
 */
static void
decode_early(KvsScanState *s, size_t *bytes, kvs_slice *k, kvs_slice *v)
{
	int			natts = s->t.tupdesc->natts;

	kvs_decode_row(s->t.tupdesc, s->t.opts.keyattno, s->t.layout,
				   k->data, k->len, v->data, v->len,
				   s->bvalues + s->nrows * natts, s->bnulls + s->nrows * natts,
				   s->needed, s->t.relname);
	s->nrows++;
	*bytes += k->len + v->len;
}

static void
fetch_batch(KvsScanState *s)
{
	kvs		   *db = s->t.file->db;
	MemoryContext old;
	size_t		bytes = 0;
	bool		own;
	int			rc;
	int			cap;

	MemoryContextReset(s->batchcxt);
	s->nrows = 0;
	s->pos = 0;
	if (s->done)
		return;
	/*
	 * A key list read to its end is done without another section: a point
	 * lookup's batch holds its one row (cap 1) and would otherwise open a
	 * second, empty section (a lock round trip and a header read) only to
	 * find no key left.
	 */
	if (s->kind != KVS_SCAN_FULL && s->keys_ready && s->keypos >= s->nkeys)
	{
		s->done = true;
		return;
	}
	old = MemoryContextSwitchTo(s->batchcxt);
	cap = (s->kind == KVS_SCAN_FULL) ? BATCH_ROWS : Max(1, Min(BATCH_ROWS, s->nkeys - s->keypos));
	if (cap == 1)
	{
		s->rk = &s->rk1;
		s->rv = &s->rv1;
	}
	else if (s->decode_early)
	{
		s->bvalues = palloc(sizeof(Datum) * cap * s->t.tupdesc->natts);
		s->bnulls = palloc(sizeof(bool) * cap * s->t.tupdesc->natts);
	}
	else
	{
		s->rk = palloc(sizeof(KeyImage) * cap);
		s->rv = palloc(sizeof(KeyImage) * cap);
	}

	/* parallel, the leader scanning alone: a worker has nothing to do */
	if (s->kind == KVS_SCAN_FULL && s->pscan != NULL && s->pscan->leader_alone &&
		IsParallelWorker())
	{
		s->done = true;
		MemoryContextSwitchTo(old);
		return;
	}
	if (s->kind == KVS_SCAN_FULL && chunked(s) && s->rcur == NULL)
	{
		rc = kvs_cursor_open(db, &s->rcur);
		if (rc != KVS_OK)
		{
			s->rcur = NULL;
			kvs_report_error(rc, db, s->t.path);
		}
		s->t.file->ncursors++;
		s->skipping = 0;
	}
	else if (s->kind == KVS_SCAN_FULL && !chunked(s) && s->cur == NULL)
	{
		MemoryContextSwitchTo(s->scancxt);
		rc = kvs_pcursor_open(s->t.file, &s->cur);
		MemoryContextSwitchTo(s->batchcxt);
		if (rc != KVS_OK)
		{
			s->cur = NULL;
			kvs_report_error(rc, db, s->t.path);
		}
		s->t.file->ncursors++;
		s->skipping = 0;
	}

	own = (kvs_in_section(db) < 0);
	if (own)
	{
		/*
		 * One key, no row lock, nothing of this transaction's to overlay: a
		 * section of one get, which takes no lock while the cache holds its
		 * pages and nobody wrote the file since (KVS_READ1).
		 */
		bool		one = s->kind != KVS_SCAN_FULL && s->cur == NULL && s->rcur == NULL &&
			s->nkeys - s->keypos <= 1 && !s->lock.active && s->t.file->pending == NULL;

		kvs_check_rc(kvs_begin(db, one ? KVS_READ1 : KVS_READ), db, s->t.path);
	}
	counters_start(s);
	if ((s->cur != NULL || s->rcur != NULL) && !s->ring_checked)
		decide_ring(s);
	/*
	 * A write statement on this file took a stamp since the last batch: skip
	 * its records from now on (it wrote none before taking the stamp).
	 */
	if ((s->cur != NULL || s->rcur != NULL) && s->t.file->stamp != s->skipping)
	{
		s->skipping = s->t.file->stamp;
		if (s->cur != NULL)
			kvs_pcursor_skip_stamp(s->cur, s->skipping);
		else
			kvs_cursor_skip_stamp(s->rcur, s->skipping);
	}
	while (s->nrows < cap && bytes < BATCH_BYTES)
	{
		kvs_slice	k,
					v;

		if (s->kind == KVS_SCAN_FULL && s->no_columns)
		{
			uint64		m;

			rc = s->rcur != NULL ? chunk_next(s, NULL, NULL, &m) : kvs_pcursor_count(s->cur, &m);
			if (rc == KVS_NOTFOUND)
			{
				s->done = true;
				break;
			}
			if (rc != KVS_OK)
				kvs_report_error(rc, db, s->t.path);
			s->nrows += (int64) m;
		}
		else if (s->kind == KVS_SCAN_FULL)
		{
			rc = s->rcur != NULL ? chunk_next(s, &k, &v, NULL) : kvs_pcursor_next(s->cur, &k, &v);
			if (rc == KVS_NOTFOUND)
			{
				s->done = true;
				break;
			}
			if (rc != KVS_OK)
				kvs_report_error(rc, db, s->t.path);
			if (s->decode_early)
				decode_early(s, &bytes, &k, &v);
			else
				keep(s, &bytes, &k, &v, cap);
		}
		else
		{
			if (s->keypos >= s->nkeys)
			{
				s->done = true;
				break;
			}
			k.data = s->keys[s->keypos].data;
			k.len = s->keys[s->keypos].len;
			s->keypos++;
			rc = s->lock.active ? kvs_pending_get(s->t.file, k.data, k.len, &v, NULL) :
				kvs_pending_read(s->t.file, k.data, k.len, &v);
			if (rc == KVS_NOTFOUND)
				continue;
			if (rc != KVS_OK)
				kvs_report_error(rc, db, s->t.path);
			keep(s, &bytes, &k, &v, cap);
		}
	}
	counters_stop(s);
	if (own)
		kvs_check_rc(kvs_end(db), db, s->t.path);
	/* a finished scan lets its handle go idle (the cache budget, handle.c) */
	if (s->done)
		close_cursor(s);
	MemoryContextSwitchTo(old);
}

/*
 * Read the row of key k again after its lock was granted, into *v (in the
 * batch context).  False if it is gone.  A row that now holds a write of
 * the statement in force on the file (its own, or a trigger's or function's
 * it ran) is left as read: the scan must not see it, and modify.c's check
 * of the row then tells that change apart (27000, as heap).
 */
static bool
reread_row(KvsScanState *s, KeyImage *k, KeyImage *v)
{
	kvs		   *db = s->t.file->db;
	kvs_slice	cur;
	uint64		stamp = 0;
	bool		own = (kvs_in_section(db) < 0);
	bool		found = false;
	int			rc;

	if (own)
		kvs_check_rc(kvs_begin(db, KVS_READ), db, s->t.path);
	rc = kvs_pending_get(s->t.file, k->data, k->len, &cur, &stamp);
	if (rc == KVS_OK && stamp != 0 && stamp == s->t.file->stamp)
		found = true;
	else if (rc == KVS_OK)
	{
		v->data = MemoryContextAlloc(s->batchcxt, cur.len + 1);
		memcpy(v->data, cur.data, cur.len);
		v->len = cur.len;
		found = true;
	}
	if (own)
		kvs_check_rc(kvs_end(db), db, s->t.path);
	if (rc != KVS_OK && rc != KVS_NOTFOUND)
		kvs_report_error(rc, db, s->t.path);
	return found;
}

/*
 * The row's ctid, from its key (rowcodec.c, kvs_ctid_from_key).  A key out
 * of the range a ctid can carry is an error, never a row with an invalid
 * ctid: postgres_fdw would send `UPDATE ... WHERE ctid = $1` with it and
 * change nothing while reporting the row done.
 */
static void
set_ctid(KvsScanState *s, TupleTableSlot *slot)
{
	Datum		key = kvs_decode_key(s->t.tupdesc, s->t.opts.keyattno,
									 s->rk[s->pos].data, s->rk[s->pos].len);

	if (!kvs_ctid_from_key(s->ctid_keytype, key, &slot->tts_tid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("key %s of kvs_fdw foreign table \"%s\" has no ctid",
						kvs_key_to_text(s->t.tupdesc, s->t.opts.keyattno, key),
						s->t.relname),
				 errdetail("A kvs row's ctid is its key, encoded; it holds the keys from -2^46 to 2^46 - 1."),
				 errhint("Select the row by its key instead of by ctid.")));
}

static void
decode_current(KvsScanState *s, TupleTableSlot *slot)
{
	MemoryContext old;

	ExecClearTuple(slot);
	if (s->no_columns)
	{
		/* no column is looked at above the scan: a row of NULLs, as a
		 * heap scan's count(*) deforms no tuple */
		memset(slot->tts_isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
		ExecStoreVirtualTuple(slot);
		return;
	}
	if (s->decode_early)
	{
		int			natts = s->t.tupdesc->natts;

		Assert(natts == slot->tts_tupleDescriptor->natts);
		memcpy(slot->tts_values, s->bvalues + s->pos * natts, sizeof(Datum) * natts);
		memcpy(slot->tts_isnull, s->bnulls + s->pos * natts, sizeof(bool) * natts);
		ExecStoreVirtualTuple(slot);
		return;
	}
	old = MemoryContextSwitchTo(s->rowcxt);
	kvs_decode_row(s->t.tupdesc, s->t.opts.keyattno, s->t.layout,
				   s->rk[s->pos].data, s->rk[s->pos].len,
				   s->rv[s->pos].data, s->rv[s->pos].len,
				   slot->tts_values, slot->tts_isnull, s->needed, s->t.relname);
	MemoryContextSwitchTo(old);
	ExecStoreVirtualTuple(slot);
	if (s->want_ctid)
		set_ctid(s, slot);
}

/*
 * A locking scan: lock the key of the current row if the row passes
 * the scan's conditions as read (rows that do not are not locked; ExecScan
 * drops them), and read it again if the lock is new.  False: skip the row
 * (SKIP LOCKED, or it is gone).
 */
static bool
lock_current(ForeignScanState *node, KvsScanState *s, TupleTableSlot *slot)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	KvsRowLockResult r;

	econtext->ecxt_scantuple = slot;
	if (s->lock_precheck && node->ss.ps.qual != NULL &&
		!ExecQual(node->ss.ps.qual, econtext))
		return true;
	r = kvs_rowlock(&s->lock, s->rk[s->pos].data, s->rk[s->pos].len);
	if (r == KVS_ROWLOCK_SKIP)
		return false;
	/* held, but maybe not yet when the batch was read (kvs_rowlock_grants) */
	if (r == KVS_ROWLOCK_HELD && kvs_rowlock_grants() != s->batch_grants)
		r = KVS_ROWLOCK_NEW;
	if (r == KVS_ROWLOCK_NEW)
	{
		if (!reread_row(s, &s->rk[s->pos], &s->rv[s->pos]))
			return false;
		decode_current(s, slot);
	}
	return true;
}

TupleTableSlot *
kvsIterateForeignScan(ForeignScanState *node)
{
	KvsScanState *s = (KvsScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	if (s->kind != KVS_SCAN_FULL && !s->keys_ready)
		prepare_keys(node, s);
	/*
	 * A counted batch's rows are all the same row of NULLs: the one the slot
	 * still holds (unless something above cleared it) is returned again,
	 * not cleared and stored anew.
	 */
	if (s->no_columns && s->pos < s->nrows && !TTS_EMPTY(slot))
	{
		s->pos++;
		return slot;
	}
	for (;;)
	{
		ExecClearTuple(slot);
		if (s->pos >= s->nrows)
		{
			CHECK_FOR_INTERRUPTS();
			s->batch_grants = kvs_rowlock_grants();
			fetch_batch(s);
			if (s->nrows == 0)
				return slot;
		}
		decode_current(s, slot);
		if (s->lock.active && !lock_current(node, s, slot))
		{
			s->pos++;
			ResetExprContext(node->ss.ps.ps_ExprContext);
			continue;
		}
		s->pos++;
		return slot;
	}
}

void
kvsReScanForeignScan(ForeignScanState *node)
{
	KvsScanState *s = (KvsScanState *) node->fdw_state;

	close_cursor(s);
	MemoryContextReset(s->batchcxt);
	s->nrows = s->pos = 0;
	s->done = false;
	s->keys_ready = false;
}

void
kvsEndForeignScan(ForeignScanState *node)
{
	KvsScanState *s = (KvsScanState *) node->fdw_state;

	if (s != NULL)
		close_cursor(s);
}

/* ---- parallel scans ------------------------------------------------------ */

/*
 * Must the leader scan alone?  Its write set (pending.c) and a write
 * statement's stamp are its own; workers would miss them.  Decided when the
 * parallel scan starts (and at each rescan), not at plan time: a cached
 * plan outlives the state it was planned in.
 */
static bool
leader_must_scan_alone(KvsScanState *s)
{
	return s->t.file->pending != NULL || s->t.file->stamp != 0 || s->lock.active;
}

Size
kvsEstimateDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt)
{
	return sizeof(KvsParallelScan);
}

void
kvsInitializeDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt, void *coordinate)
{
	KvsScanState *s = (KvsScanState *) node->fdw_state;
	KvsParallelScan *ps = (KvsParallelScan *) coordinate;

	pg_atomic_init_u32(&ps->next_chunk, 0);
	kvsReInitializeDSMForeignScan(node, pcxt, coordinate);
	if (s != NULL)
		s->pscan = ps;
}

void
kvsReInitializeDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt, void *coordinate)
{
	KvsScanState *s = (KvsScanState *) node->fdw_state;
	KvsParallelScan *ps = (KvsParallelScan *) coordinate;

	/* the leader's ReScan (kvsReScanForeignScan) reset its own cursor */
	pg_atomic_write_u32(&ps->next_chunk, 0);
	ps->leader_alone = (s == NULL || leader_must_scan_alone(s));
}

void
kvsInitializeWorkerForeignScan(ForeignScanState *node, shm_toc *toc, void *coordinate)
{
	KvsScanState *s = (KvsScanState *) node->fdw_state;

	if (s != NULL)
		s->pscan = (KvsParallelScan *) coordinate;
}

void
kvsExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	KvsScanState *s = (KvsScanState *) node->fdw_state;
	int			kind = intVal(list_nth(plan->fdw_private, KvsScanPrivateKind));
	char	   *desc = strVal(list_nth(plan->fdw_private, KvsScanPrivateDesc));

	ExplainPropertyText(kind == KVS_SCAN_FULL ? "Kvs Scan" : "Kvs Lookup", desc, es);
	if (es->verbose)
	{
		KvsTable	t;

		kvs_table_init(&t, node->ss.ss_currentRelation);
		ExplainPropertyText("Kvs File", t.path, es);
	}
	if (s == NULL)				/* not executed: say if it could not be */
		kvs_explain_layout(node->ss.ss_currentRelation, es);
	if (es->analyze && s != NULL)
		ExplainPropertyText("Kvs Cache",
							psprintf("hit=" UINT64_FORMAT " read=" UINT64_FORMAT
									 " evicted=" UINT64_FORMAT " written=" UINT64_FORMAT,
									 s->hit, s->read, s->evicted, s->written),
							es);
}

/* ---- ANALYZE ------------------------------------------------------------ */

static int
kvs_acquire_sample(Relation rel, int elevel, HeapTuple *rows, int targrows,
				   double *totalrows, double *totaldeadrows)
{
	KvsTable	t;
	kvs_cursor *cur = NULL;
	TupleDesc	td = RelationGetDescr(rel);
	Datum	   *values = palloc(sizeof(Datum) * td->natts);
	bool	   *nulls = palloc(sizeof(bool) * td->natts);
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "kvs_fdw analyze",
												 ALLOCSET_DEFAULT_SIZES);
	MemoryContext old;
	ReservoirStateData rstate;
	double		rowstoskip = -1;
	double		seen = 0;
	int			n = 0;
	int			rc;

	kvs_table_init(&t, rel);
	kvs_table_open(&t);
	rc = kvs_cursor_open(t.file->db, &cur);
	if (rc != KVS_OK)
		kvs_report_error(rc, t.file->db, t.path);
	t.file->ncursors++;
	reservoir_init_selection_state(&rstate, targrows);

	PG_TRY();
	{
		for (;;)
		{
			kvs_slice	k,
						v;
			bool		take = false;
			int			slot = n;

			/* a read section per 1000 records, none while ANALYZE naps */
			if (((uint64) seen % 1000) == 0)
			{
				if (kvs_in_section(t.file->db) >= 0)
					kvs_check_rc(kvs_end(t.file->db), t.file->db, t.path);
				vacuum_delay_point();
				kvs_check_rc(kvs_begin(t.file->db, KVS_READ), t.file->db, t.path);
			}
			rc = kvs_cursor_next(cur, &k, &v);
			if (rc == KVS_NOTFOUND)
				break;
			if (rc != KVS_OK)
				kvs_report_error(rc, t.file->db, t.path);
			if (n < targrows)
				take = true;
			else
			{
				if (rowstoskip < 0)
					rowstoskip = reservoir_get_next_S(&rstate, seen, targrows);
				if (rowstoskip <= 0)
				{
					slot = (int) (targrows * sampler_random_fract(&rstate.randstate));
					take = true;
				}
				rowstoskip -= 1;
			}
			seen += 1;
			if (!take)
				continue;
			MemoryContextReset(rowcxt);
			old = MemoryContextSwitchTo(rowcxt);
			kvs_decode_row(td, t.opts.keyattno, t.layout, k.data, k.len, v.data, v.len,
						   values, nulls, NULL, t.relname);
			MemoryContextSwitchTo(old);
			if (slot < n)
				heap_freetuple(rows[slot]);
			rows[slot] = heap_form_tuple(td, values, nulls);
			if (slot == n)
				n++;
		}
	}
	PG_FINALLY();
	{
		if (kvs_in_section(t.file->db) >= 0)
			(void) kvs_end(t.file->db);
		kvs_cursor_close(cur);
		t.file->ncursors--;
	}
	PG_END_TRY();
	MemoryContextDelete(rowcxt);
	*totalrows = seen;
	*totaldeadrows = 0;
	ereport(elevel,
			(errmsg("\"%s\": kvs file contains %.0f rows; %d rows in sample",
					RelationGetRelationName(rel), seen, n)));
	return n;
}

bool
kvsAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func,
					   BlockNumber *totalpages)
{
	KvsTable	t;
	kvs_stats	st;

	kvs_check_isolation();
	kvs_table_init(&t, relation);
	kvs_table_open(&t);
	kvs_check_rc(kvs_stats_get(t.file->db, &st), t.file->db, t.path);
	*totalpages = (BlockNumber) Min(Max(st.pages, 1), MaxBlockNumber);
	*func = kvs_acquire_sample;
	return true;
}
