/*
 * planner.c - planning scans of kvs_fdw tables: which quals become key
 * lookups, paths and their costs, and the ForeignScan plan.
 *
 * A qual is a key lookup when it is `key = expr` or `key = ANY(array expr)`
 * with the equality operator of the key type's default hash operator family,
 * expr free of this table's columns and of volatile functions, and the key
 * type one whose binary image decides equality (kvs_key_pushable_type; for
 * text, a deterministic collation).  A join clause `key = outer expr` gives a
 * parameterized path: one lookup per outer row.  Every other qual is checked
 * locally by the executor, so a refused type is scanned, never answered
 * wrongly.
 *
 * System columns other than tableoid and (integer keys) ctid are refused
 * here, at plan time (see kvs_refuse_system_columns); `ctid = expr` is a
 * lookup of the key the tid encodes.
 *
 * fdw_private of the plan: [kind, description for EXPLAIN, needed attnums
 * (and -1 if the scan must fill in ctid)]
 * (positions: enum KvsScanPrivateIndex in kvs_fdw.h)
 * fdw_exprs: [the lookup value expression] for lookups.
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/heap.h"
#include "catalog/pg_am.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/array.h"

#include "kvs_fdw.h"

/* what GetForeignRelSize learns, kept in baserel->fdw_private */
typedef struct KvsRelInfo
{
	AttrNumber	keyattno;
	Oid			keytype;		/* base type of the key column */
	Oid			keyfamily;		/* its default hash opfamily, or InvalidOid */
	bool		pushable;
	char	   *relname;
	char	   *keyname;
	double		records;
	double		pages;
} KvsRelInfo;

/* A recognised key qual. */
typedef struct KeyQual
{
	int			kind;			/* KVS_SCAN_LOOKUP or _LOOKUP_ANY */
	Expr	   *value;			/* the non-key side */
	RestrictInfo *rinfo;
	double		nkeys;
	bool		by_ctid;		/* ctid = value: the key it encodes */
} KeyQual;

static Expr *
strip_relabel(Expr *e)
{
	while (e && IsA(e, RelabelType))
		e = ((RelabelType *) e)->arg;
	return e;
}

static bool
is_key_var(Expr *e, RelOptInfo *baserel, KvsRelInfo *ri)
{
	Var		   *v;

	e = strip_relabel(e);
	if (e == NULL || !IsA(e, Var))
		return false;
	v = (Var *) e;
	return v->varno == baserel->relid && v->varlevelsup == 0 &&
		v->varattno == ri->keyattno;
}

static bool
is_ctid_var(Expr *e, RelOptInfo *baserel)
{
	Var		   *v = (Var *) e;

	return e != NULL && IsA(e, Var) && v->varno == baserel->relid &&
		v->varlevelsup == 0 && v->varattno == SelfItemPointerAttributeNumber;
}

static bool
is_int(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID;
}

/* Is opno an equality operator whose other operand type we can convert? */
static bool
key_operator_ok(KvsRelInfo *ri, Oid opno, Oid inputcollid, Oid othertype)
{
	othertype = getBaseType(othertype);
	if (!ri->pushable || !OidIsValid(ri->keyfamily))
		return false;
	if (!op_in_opfamily(opno, ri->keyfamily))
		return false;
	if (OidIsValid(inputcollid) && !get_collation_isdeterministic(inputcollid))
		return false;
	if (othertype == ri->keytype)
		return true;
	if (is_int(othertype) && is_int(ri->keytype))
		return true;
	/* text vs varchar share one representation */
	if ((othertype == TEXTOID || othertype == VARCHAROID) &&
		(ri->keytype == TEXTOID || ri->keytype == VARCHAROID))
		return true;
	return false;
}

/*
 * Does the value side qualify?  For restriction quals it may not reference
 * any relation; for join quals only relations in `outer`.
 */
static bool
value_ok(PlannerInfo *root, RelOptInfo *baserel, Expr *value, Relids outer)
{
	Relids		rels = pull_varnos(root, (Node *) value);

	if (bms_is_member(baserel->relid, rels))
		return false;
	if (outer == NULL ? !bms_is_empty(rels) : !bms_is_subset(rels, outer))
		return false;
	if (contain_volatile_functions((Node *) value) ||
		contain_subplans((Node *) value) ||
		contain_agg_clause((Node *) value) ||
		contain_window_function((Node *) value))
		return false;
	return true;
}

static bool
key_qual(KeyQual *kq, int kind, Expr *value, RestrictInfo *rinfo, double nkeys,
		 bool by_ctid)
{
	kq->kind = kind;
	kq->value = value;
	kq->rinfo = rinfo;
	kq->nkeys = nkeys;
	kq->by_ctid = by_ctid;
	return true;
}

static bool
match_key_qual(PlannerInfo *root, RelOptInfo *baserel, KvsRelInfo *ri,
			   RestrictInfo *rinfo, Relids outer, KeyQual *kq)
{
	Expr	   *clause = rinfo->clause;

	if (rinfo->pseudoconstant)
		return false;
	/* a boolean key: the planner turns `k = true` into `k`, `k = false` into `NOT k` */
	if (ri->pushable && ri->keytype == BOOLOID &&
		(is_key_var(clause, baserel, ri) ||
		 (is_notclause(clause) && is_key_var(get_notclausearg(clause), baserel, ri))))
		return key_qual(kq, KVS_SCAN_LOOKUP,
						(Expr *) makeBoolConst(!is_notclause(clause), false),
						rinfo, 1, false);
	if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) clause;
		Expr	   *l = linitial(op->args),
				   *r = lsecond(op->args),
				   *val;

		/* ctid = expr: a lookup of the key the tid encodes */
		if (op->opno == TIDEqualOperator && is_int(ri->keytype) &&
			(is_ctid_var(l, baserel) || is_ctid_var(r, baserel)))
		{
			val = is_ctid_var(l, baserel) ? r : l;
			if (!value_ok(root, baserel, val, outer))
				return false;
			return key_qual(kq, KVS_SCAN_LOOKUP, val, rinfo, 1, true);
		}
		if (is_key_var(l, baserel, ri))
			val = r;
		else if (is_key_var(r, baserel, ri))
			val = l;
		else
			return false;
		if (!key_operator_ok(ri, op->opno, op->inputcollid, exprType((Node *) val)))
			return false;
		if (!value_ok(root, baserel, val, outer))
			return false;
		return key_qual(kq, KVS_SCAN_LOOKUP, val, rinfo, 1, false);
	}
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) clause;
		Expr	   *arr = lsecond(sa->args);
		Oid			elemtype;

		if (!sa->useOr || outer != NULL ||
			!is_key_var(linitial(sa->args), baserel, ri))
			return false;
		elemtype = get_element_type(exprType((Node *) arr));
		if (!OidIsValid(elemtype) ||
			!key_operator_ok(ri, sa->opno, sa->inputcollid, elemtype))
			return false;
		if (!value_ok(root, baserel, arr, NULL))
			return false;
		key_qual(kq, KVS_SCAN_LOOKUP_ANY, arr, rinfo, 10, false);
		if (IsA(arr, Const) && !((Const *) arr)->constisnull)
		{
			ArrayType  *a = DatumGetArrayTypeP(((Const *) arr)->constvalue);

			kq->nkeys = Max(1, ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a)));
		}
		else if (IsA(arr, ArrayExpr))
			kq->nkeys = Max(1, list_length(((ArrayExpr *) arr)->elements));
		return true;
	}
	return false;
}

/* The best key qual among clauses (a List of RestrictInfo). */
static bool
best_key_qual(PlannerInfo *root, RelOptInfo *baserel, KvsRelInfo *ri,
			  List *clauses, Relids outer, KeyQual *best)
{
	ListCell   *lc;
	bool		found = false;

	foreach(lc, clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		KeyQual		kq;

		if (!match_key_qual(root, baserel, ri, rinfo, outer, &kq))
			continue;
		if (!found || kq.nkeys < best->nkeys)
		{
			*best = kq;
			found = true;
		}
	}
	return found;
}

/*
 * System columns.  A kvs row has no physical address and no transaction or
 * command ids: the executor would give every row the same invalid ctid, so a
 * client that finds rows by ctid hits all of them.  The one that matters is
 * postgres_fdw on another server: an UPDATE or DELETE it cannot send whole
 * runs `SELECT ..., ctid ... FOR UPDATE` here, then `UPDATE ... WHERE ctid =
 * $1` per row, and that UPDATE would change every row of the table.  So
 * xmin, xmax, cmin and cmax fail while the statement is planned, before a
 * row is read or written, and so does ctid unless the key is an integer:
 * then a row's ctid is its key, encoded (kvs_ctid_from_key), the scan fills
 * it in, and `ctid = expr` is a lookup of the key it encodes (match_key_qual),
 * so postgres_fdw's statements change exactly the rows it read.  tableoid
 * stays: the executor fills it in for foreign scans (ForeignNext).
 */
typedef struct SysColCtx
{
	Index		varno;			/* 0 = any relation of this query level */
	bool		allow_ctid;		/* the table has an integer key */
	AttrNumber	found;
} SysColCtx;

static bool
int_key_table(Relation rel)
{
	KvsTableOptions opts;
	Oid			t;

	kvs_get_table_options(rel, &opts);
	t = getBaseType(TupleDescAttr(RelationGetDescr(rel), opts.keyattno - 1)->atttypid);
	return t == INT2OID || t == INT4OID || t == INT8OID;
}

static bool
find_system_column(Node *node, SysColCtx *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *v = (Var *) node;

		if (v->varlevelsup == 0 && (ctx->varno == 0 || v->varno == ctx->varno) &&
			v->varattno < 0 && v->varattno != TableOidAttributeNumber &&
			!(ctx->allow_ctid && v->varattno == SelfItemPointerAttributeNumber))
		{
			ctx->found = v->varattno;
			return true;
		}
		return false;
	}
	if (IsA(node, RestrictInfo))
		return find_system_column((Node *) ((RestrictInfo *) node)->clause, ctx);
	if (IsA(node, Query))
		return false;			/* not planned yet: its own level */
	return expression_tree_walker(node, find_system_column, (void *) ctx);
}

static void
system_column_error(AttrNumber attno, Relation rel, bool returning)
{
	KvsTableOptions opts;

	kvs_get_table_options(rel, &opts);
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("system column \"%s\" is not supported on kvs_fdw foreign table \"%s\"",
					NameStr(SystemAttributeDefinition(attno)->attname),
					RelationGetRelationName(rel)),
			 attno == SelfItemPointerAttributeNumber && returning ?
			 errdetail("RETURNING does not return a kvs row's ctid; a scan does.") :
			 attno == SelfItemPointerAttributeNumber ?
			 errdetail("Only a table whose key is smallint, integer or bigint has a ctid (the key, encoded).") :
			 errdetail("A kvs row has no physical address and no transaction information; it has tableoid, and ctid if its key is an integer."),
			 errhint("Identify rows by the key column \"%s\".",
					 NameStr(TupleDescAttr(RelationGetDescr(rel), opts.keyattno - 1)->attname))));
}

/*
 * Raise 0A000 if expr references a meaningless system column of relation
 * varno (0: of any relation at this level) of kvs table rel: for a
 * RETURNING list (modify.c) also ctid, which only a scan fills in.
 */
void
kvs_refuse_system_columns(Node *expr, Index varno, Relation rel)
{
	SysColCtx	ctx;

	ctx.varno = varno;
	ctx.allow_ctid = false;
	ctx.found = 0;
	if (find_system_column(expr, &ctx))
		system_column_error(ctx.found, rel, true);
}

static void
refuse_in(Node *expr, Index varno, Relation rel, bool allow_ctid)
{
	SysColCtx	ctx;

	ctx.varno = varno;
	ctx.allow_ctid = allow_ctid;
	ctx.found = 0;
	if (find_system_column(expr, &ctx))
		system_column_error(ctx.found, rel, false);
}

/*
 * Everything the plan needs from the relation: the columns used above the
 * scan (select list, ORDER BY, RETURNING, join clauses, UPDATE/DELETE row
 * identity; attr_needed says the same for a base relation, reltarget also
 * for an inheritance child) and the scan's own conditions.
 */
static void
refuse_system_columns_of(RelOptInfo *baserel, Relation rel)
{
	int			i;
	bool		allow_ctid = int_key_table(rel);

	refuse_in((Node *) baserel->reltarget->exprs, baserel->relid, rel, allow_ctid);
	refuse_in((Node *) baserel->baserestrictinfo, baserel->relid, rel, allow_ctid);
	refuse_in((Node *) baserel->joininfo, baserel->relid, rel, allow_ctid);
	if (baserel->attr_needed == NULL)
		return;
	for (i = baserel->min_attr; i < 0; i++)
		if (i != TableOidAttributeNumber &&
			!(allow_ctid && i == SelfItemPointerAttributeNumber) &&
			!bms_is_empty(baserel->attr_needed[i - baserel->min_attr]))
			system_column_error((AttrNumber) i, rel, false);
}

void
kvsGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	KvsRelInfo *ri = palloc0(sizeof(KvsRelInfo));
	Relation	rel = table_open(foreigntableid, NoLock);
	KvsTable	t;
	uint64_t	nrec,
				npages;
	int			rc;
	Oid			opclass;
	KeyQual		kq;
	Form_pg_attribute katt;

	refuse_system_columns_of(baserel, rel);
	kvs_table_init(&t, rel);
	ri->keyattno = t.opts.keyattno;
	katt = TupleDescAttr(RelationGetDescr(rel), ri->keyattno - 1);
	ri->keytype = getBaseType(katt->atttypid);
	ri->relname = t.relname;
	ri->keyname = pstrdup(NameStr(katt->attname));
	ri->pushable = kvs_key_pushable_type(ri->keytype);
	opclass = GetDefaultOpClass(ri->keytype, HASH_AM_OID);
	ri->keyfamily = OidIsValid(opclass) ? get_opclass_family(opclass) : InvalidOid;

	/* a layout mismatch is for the executor to raise: EXPLAIN still works */
	kvs_table_open_tolerant(&t);
	/* no lock, no system call while nobody wrote the file (kvs.h) */
	rc = kvs_size_estimate(t.file->db, &nrec, &npages);
	kvs_check_rc(rc, t.file->db, t.path);
	ri->records = (double) nrec;
	ri->pages = (double) Max(npages, 1);
	table_close(rel, NoLock);

	baserel->fdw_private = ri;
	baserel->tuples = ri->records;
	baserel->pages = (BlockNumber) Min(ri->pages, (double) MaxBlockNumber);

	if (best_key_qual(root, baserel, ri, baserel->baserestrictinfo, NULL, &kq))
		baserel->rows = clamp_row_est(Min(kq.nkeys, Max(ri->records, 1)) *
									  clauselist_selectivity(root,
															 list_difference_ptr(baserel->baserestrictinfo,
																				 list_make1(kq.rinfo)),
															 baserel->relid, JOIN_INNER, NULL));
	else
		baserel->rows = clamp_row_est(ri->records *
									  clauselist_selectivity(root, baserel->baserestrictinfo,
															 baserel->relid, JOIN_INNER, NULL));
}

/* cost of n lookups, or of a full scan */
static void
lookup_cost(double n, Cost *startup, Cost *total)
{
	*startup = 0.01;
	*total = *startup + n * (0.1 + cpu_tuple_cost);
}

static void
scan_cost(KvsRelInfo *ri, Cost *startup, Cost *total)
{
	*startup = 1.0;
	*total = *startup + ri->pages * seq_page_cost +
		ri->records * (cpu_tuple_cost + cpu_operator_cost);
}

/* EC callback: is this member our key column? */
static bool
ec_member_is_key(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
				 EquivalenceMember *em, void *arg)
{
	KvsRelInfo *ri = (KvsRelInfo *) arg;

	return is_key_var(em->em_expr, rel, ri);
}

static void
add_param_path(PlannerInfo *root, RelOptInfo *baserel, KvsRelInfo *ri,
			   RestrictInfo *rinfo, List **seen)
{
	Relids		outer;
	KeyQual		kq;
	ParamPathInfo *ppi;
	Cost		startup,
				total;
	ListCell   *lc;

	if (!join_clause_is_movable_to(rinfo, baserel))
		return;
	outer = bms_difference(rinfo->clause_relids, baserel->relids);
	outer = bms_union(outer, baserel->lateral_relids);
	if (bms_is_empty(outer))
		return;
	if (!match_key_qual(root, baserel, ri, rinfo, outer, &kq))
		return;
	foreach(lc, *seen)
		if (bms_equal((Relids) lfirst(lc), outer))
			return;
	*seen = lappend(*seen, outer);
	ppi = get_baserel_parampathinfo(root, baserel, outer);
	lookup_cost(1, &startup, &total);
	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL,
									 clamp_row_est(Min(ppi->ppi_rows, 1.0)),
									 startup, total, NIL, ppi->ppi_req_outer,
									 NULL, NIL));
}

void
kvsGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	KvsRelInfo *ri = (KvsRelInfo *) baserel->fdw_private;
	Cost		startup,
				total;
	KeyQual		kq;
	List	   *seen = NIL;
	ListCell   *lc;

	if (best_key_qual(root, baserel, ri, baserel->baserestrictinfo, NULL, &kq))
		lookup_cost(kq.nkeys, &startup, &total);
	else
	{
		scan_cost(ri, &startup, &total);
		/* a full scan split among parallel participants (parallel.c) */
		kvs_add_partial_path(root, baserel, ri->pages, startup,
							 ri->pages * seq_page_cost, total - startup - ri->pages * seq_page_cost);
	}
	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
									 startup, total, NIL,
									 baserel->lateral_relids, NULL, NIL));

	if (!ri->pushable)
		return;
	/* join clauses on the key: one lookup per outer row */
	foreach(lc, baserel->joininfo)
		add_param_path(root, baserel, ri, lfirst_node(RestrictInfo, lc), &seen);
	if (baserel->has_eclass_joins)
	{
		List	   *ecs = generate_implied_equalities_for_column(root, baserel,
																 ec_member_is_key, ri,
																 baserel->lateral_referencers);

		foreach(lc, ecs)
			add_param_path(root, baserel, ri, lfirst_node(RestrictInfo, lc), &seen);
	}
}

/*
 * The value side of a lookup for EXPLAIN.  Expressions without Vars deparse
 * normally; for join lookups, outer columns print as alias.column and simple
 * operators over them as (a op b); anything else as "(outer expression)".
 */
static char *
describe_value(PlannerInfo *root, KvsRelInfo *ri, Oid relid, Expr *v)
{
	v = strip_relabel(v);
	if (!contain_var_clause((Node *) v))
		return deparse_expression((Node *) v, deparse_context_for(ri->relname, relid),
								  false, false);
	if (IsA(v, Var) && ((Var *) v)->varlevelsup == 0 &&
		((Var *) v)->varno > 0 && ((Var *) v)->varno < (Index) root->simple_rel_array_size)
	{
		Var		   *var = (Var *) v;
		RangeTblEntry *orte = planner_rt_fetch(var->varno, root);

		if (var->varattno > 0 && orte->eref != NULL)
			return psprintf("%s.%s", quote_identifier(orte->eref->aliasname),
							quote_identifier(get_rte_attribute_name(orte, var->varattno)));
	}
	if (IsA(v, OpExpr) && list_length(((OpExpr *) v)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) v;
		char	   *name = get_opname(op->opno);

		if (name != NULL)
			return psprintf("(%s %s %s)",
							describe_value(root, ri, relid, linitial(op->args)), name,
							describe_value(root, ri, relid, lsecond(op->args)));
	}
	return pstrdup("(outer expression)");
}

/* A short text for EXPLAIN: "id = 42", "id = ANY (...)", "id = o.x". */
static char *
describe_lookup(PlannerInfo *root, KvsRelInfo *ri, RelOptInfo *baserel, KeyQual *kq)
{
	RangeTblEntry *rte = planner_rt_fetch(baserel->relid, root);
	char	   *val = describe_value(root, ri, rte->relid, kq->value);

	if (kq->kind == KVS_SCAN_LOOKUP_ANY)
		return psprintf("%s = ANY (%s)", quote_identifier(ri->keyname), val);
	if (kq->by_ctid)
		return psprintf("%s of ctid = %s", quote_identifier(ri->keyname), val);
	return psprintf("%s = %s", quote_identifier(ri->keyname), val);
}

ForeignScan *
kvsGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
				  ForeignPath *best_path, List *tlist, List *scan_clauses,
				  Plan *outer_plan)
{
	KvsRelInfo *ri = (KvsRelInfo *) baserel->fdw_private;
	KeyQual		kq;
	Relids		outer = NULL;
	List	   *fdw_exprs = NIL;
	List	   *local = NIL;
	List	   *needed = NIL;
	Bitmapset  *attrs = NULL;
	int			kind = KVS_SCAN_FULL;
	char	   *desc;
	ListCell   *lc;
	int			x;

	if (best_path->path.param_info)
		outer = best_path->path.param_info->ppi_req_outer;
	if (best_key_qual(root, baserel, ri, scan_clauses, outer, &kq))
	{
		kind = kq.kind;
		fdw_exprs = list_make1(kq.value);
		desc = describe_lookup(root, ri, baserel, &kq);
	}
	else
		desc = pstrdup("all records");

	foreach(lc, scan_clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (rinfo->pseudoconstant)
			continue;
		if (kind != KVS_SCAN_FULL && rinfo == kq.rinfo)
			continue;
		local = lappend(local, rinfo->clause);
	}

	/* the columns the executor will look at: decode only those */
	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	pull_varattnos((Node *) local, baserel->relid, &attrs);
	if (bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs))
		needed = list_make1_int(0);		/* whole row */
	else
	{
		x = -1;
		while ((x = bms_next_member(attrs, x)) >= 0)
		{
			AttrNumber	a = x + FirstLowInvalidHeapAttributeNumber;

			if (a > 0)
				needed = lappend_int(needed, a);
		}
	}
	/* the scan fills in ctid only if something above it looks at it */
	if (bms_is_member(SelfItemPointerAttributeNumber - FirstLowInvalidHeapAttributeNumber, attrs))
		needed = lappend_int(needed, SelfItemPointerAttributeNumber);

	return make_foreignscan(tlist, local, baserel->relid, fdw_exprs,
							/* in enum KvsScanPrivateIndex order */
							list_make3(makeInteger(kind), makeString(desc), needed),
							NIL, NIL, outer_plan);
}
