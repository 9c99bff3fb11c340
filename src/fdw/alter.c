/*
 * alter.c - ALTER FOREIGN TABLE (or ALTER TABLE) on kvs_fdw tables.
 *
 * Postgres changes a foreign table's columns in the catalog only; the file's
 * row layout follows at the table's first use after the ALTER (handle.c).
 * Two event triggers of the extension, for ALTER FOREIGN TABLE and ALTER
 * TABLE statements that add, drop or retype columns or change column
 * options, make that safe for a file that holds rows:
 *
 *   ddl_command_start  kvs_fdw_alter_start(): the file's layout gets each
 *                      column's attnum (kvs_prepare_alter), so the first use
 *                      after the ALTER can tell which columns records hold.
 *   ddl_command_end    kvs_fdw_alter_end(): refuses a change the file cannot
 *                      follow (raising, which rolls the ALTER back): a type
 *                      change that heap could only make by rewriting the
 *                      table, dropping the key, an added column whose value
 *                      for the stored rows needs a rewrite (a volatile
 *                      default, a generated column) or would be NULL under
 *                      NOT NULL.  An added column with a default gets the
 *                      column option "missing": the value rows stored before
 *                      the ALTER read for it, as heap's fast default gives.
 *                      (Postgres records that value, attmissingval, for heap
 *                      tables only: a foreign table's new column has none.)
 *
 * Also kvs_explain_layout(), EXPLAIN's note on a table whose columns do not
 * match its file.
 *
 * Neither trigger writes to the file in the ALTER's transaction but for the start
 * trigger's layout rewrite, which does not change what the file holds, so
 * an ALTER that rolls back leaves a file its old columns still read.
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "commands/defrem.h"
#include "commands/event_trigger.h"
#include "commands/explain.h"
#include "commands/tablecmds.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "kvs_fdw.h"

PG_FUNCTION_INFO_V1(kvs_fdw_alter_start);
PG_FUNCTION_INFO_V1(kvs_fdw_alter_end);

#define COPY_HINT "To make this change, create a new foreign table and copy the rows with INSERT INTO new_table SELECT ... FROM the old one."

/* The ALTER TABLE statement an event trigger fires for, if it changes columns. */
static AlterTableStmt *
column_alter(FunctionCallInfo fcinfo)
{
	EventTriggerData *trigdata;
	AlterTableStmt *stmt;
	ListCell   *lc;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "not fired by event trigger manager");
	trigdata = (EventTriggerData *) fcinfo->context;
	if (trigdata->parsetree == NULL || !IsA(trigdata->parsetree, AlterTableStmt))
		return NULL;
	stmt = (AlterTableStmt *) trigdata->parsetree;
	if (stmt->objtype != OBJECT_TABLE && stmt->objtype != OBJECT_FOREIGN_TABLE)
		return NULL;
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		switch (cmd->subtype)
		{
			case AT_AddColumn:
			case AT_DropColumn:
			case AT_AlterColumnType:
			case AT_AlterColumnGenericOptions:
				return stmt;
			default:
				break;
		}
	}
	return NULL;
}

/* The foreign tables the statement may change: its table and, unless ONLY, its children. */
static List *
altered_foreign_tables(AlterTableStmt *stmt)
{
	Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	List	   *all;
	List	   *out = NIL;
	ListCell   *lc;

	if (!OidIsValid(relid))
		return NIL;
	all = stmt->relation->inh ? find_all_inheritors(relid, NoLock, NULL)
		: list_make1_oid(relid);
	foreach(lc, all)
		if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_FOREIGN_TABLE)
			out = lappend_oid(out, lfirst_oid(lc));
	return out;
}

Datum
kvs_fdw_alter_start(PG_FUNCTION_ARGS)
{
	AlterTableStmt *stmt = column_alter(fcinfo);
	LOCKMODE	lockmode;
	ListCell   *lc;

	if (stmt == NULL)
		PG_RETURN_VOID();
	lockmode = AlterTableGetLockLevel(stmt->cmds);
	foreach(lc, altered_foreign_tables(stmt))
	{
		Oid			relid = lfirst_oid(lc);
		Relation	rel;

		/*
		 * Only tables the user may alter, locked as the ALTER will lock them
		 * (a weaker lock first would risk a deadlock on the upgrade).
		 */
		if (!pg_class_ownercheck(relid, GetUserId()))
			continue;
		rel = try_relation_open(relid, lockmode);
		if (rel == NULL)
			continue;
		if (kvs_is_kvs_table(rel))
			kvs_prepare_alter(rel);
		relation_close(rel, NoLock);
	}
	PG_RETURN_VOID();
}

/* Set column attnum's option "missing" to value, in the ALTER's transaction. */
static void
set_missing_option(Relation rel, AttrNumber attnum, const char *value)
{
	Relation	attrel = table_open(AttributeRelationId, RowExclusiveLock);
	HeapTuple	tup = SearchSysCacheCopyAttNum(RelationGetRelid(rel), attnum);
	Datum		repl_val[Natts_pg_attribute];
	bool		repl_null[Natts_pg_attribute];
	bool		repl_repl[Natts_pg_attribute];
	Datum		old;
	Datum		opts;
	bool		isnull;
	DefElemAction action = DEFELEM_ADD;
	ListCell   *lc;
	HeapTuple	newtup;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for attribute %d of relation %u",
			 attnum, RelationGetRelid(rel));
	old = SysCacheGetAttr(ATTNUM, tup, Anum_pg_attribute_attfdwoptions, &isnull);
	if (isnull)
		old = PointerGetDatum(NULL);
	else
		foreach(lc, untransformRelOptions(old))
			if (strcmp(((DefElem *) lfirst(lc))->defname, "missing") == 0)
				action = DEFELEM_SET;
	opts = transformGenericOptions(AttributeRelationId, old,
								   list_make1(makeDefElemExtended(NULL, "missing",
																  (Node *) makeString(pstrdup(value)),
																  action, -1)),
								   InvalidOid);
	memset(repl_val, 0, sizeof(repl_val));
	memset(repl_null, false, sizeof(repl_null));
	memset(repl_repl, false, sizeof(repl_repl));
	repl_repl[Anum_pg_attribute_attfdwoptions - 1] = true;
	if (DatumGetPointer(opts) != NULL)
		repl_val[Anum_pg_attribute_attfdwoptions - 1] = opts;
	else
		repl_null[Anum_pg_attribute_attfdwoptions - 1] = true;
	newtup = heap_modify_tuple(tup, RelationGetDescr(attrel), repl_val, repl_null, repl_repl);
	CatalogTupleUpdate(attrel, &newtup->t_self, newtup);
	table_close(attrel, RowExclusiveLock);
	CommandCounterIncrement();
}

/*
 * Column attnum was just added to a table whose file holds rows: what do
 * those rows read for it?  Its default, evaluated now (as heap's fast
 * default), recorded as its "missing" option; NULL if it has none.  Refused
 * where heap would rewrite the table or fail.
 */
static void
added_column(Relation rel, AttrNumber attnum)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	const char *col = NameStr(att->attname);
	Expr	   *defval;
	bool		isnull = true;

	if (att->attgenerated)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot add generated column \"%s\" to foreign table \"%s\": its kvs file holds rows",
						col, RelationGetRelationName(rel)),
				 errdetail("The stored rows would need the column computed and written."),
				 errhint(COPY_HINT)));
	defval = (Expr *) build_column_default(rel, attnum);
	if (defval == NULL && DomainHasConstraints(att->atttypid))
	{
		/* as heap: a NULL of the base type must pass the domain's checks */
		int32		basemod = att->atttypmod;
		Oid			base = getBaseTypeAndTypmod(att->atttypid, &basemod);

		defval = (Expr *) makeNullConst(base, basemod, get_typcollation(base));
		defval = (Expr *) coerce_to_target_type(NULL, (Node *) defval,
												base, att->atttypid,
												att->atttypmod, COERCION_ASSIGNMENT,
												COERCE_IMPLICIT_CAST, -1);
	}
	if (defval != NULL)
	{
		EState	   *estate;
		ExprState  *es;
		Datum		v;

		if (contain_volatile_functions((Node *) defval))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot add column \"%s\" with a volatile default to foreign table \"%s\": its kvs file holds rows",
							col, RelationGetRelationName(rel)),
					 errdetail("Each stored row would need its own value written."),
					 errhint("Add the column without a default, set it with UPDATE, then use ALTER COLUMN ... SET DEFAULT.")));
		estate = CreateExecutorState();
		es = ExecPrepareExpr(expression_planner(defval), estate);
		v = ExecEvalExpr(es, GetPerTupleExprContext(estate), &isnull);
		if (!isnull)
		{
			Oid			out;
			bool		varlena;
			char	   *text;
			int			nest = NewGUCNestLevel();

			/*
			 * A text any session reads back as the same value (as
			 * postgres_fdw sends values): ISO dates, unambiguous intervals,
			 * exact floats.
			 */
			(void) set_config_option("datestyle", "ISO", PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_SAVE, true, 0, false);
			(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_SAVE, true, 0, false);
			(void) set_config_option("extra_float_digits", "1", PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_SAVE, true, 0, false);
			getTypeOutputInfo(att->atttypid, &out, &varlena);
			text = OidOutputFunctionCall(out, v);
			AtEOXact_GUC(true, nest);
			set_missing_option(rel, attnum, text);
		}
		FreeExecutorState(estate);
	}
	if (isnull && att->attnotnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("column \"%s\" of relation \"%s\" contains null values",
						col, RelationGetRelationName(rel)),
				 errdetail("The rows already in its kvs file would read NULL for it."),
				 errhint("Add the column with a DEFAULT.")));
}

/* After the ALTER: can the file of kvs table rel follow it? */
static void
check_altered(Relation rel, AlterTableStmt *stmt)
{
	KvsTable	t;
	struct stat sb;
	kvs_options o;
	kvs		   *db = NULL;
	kvs_slice	s;
	kvs_stats	st;
	char	   *fdesc = NULL;
	size_t		flen = 0;
	char	   *why;
	int			rc;
	ListCell   *lc;

	kvs_table_init(&t, rel);
	if (stat(t.path, &sb) != 0)
		return;					/* no file yet: nothing stored */

	/* read the header on a handle of our own: change nothing */
	kvs_host_options(&o, KVS_RDONLY, 8);
	rc = kvs_open(t.path, &o, &db);
	if (rc != KVS_OK)
		kvs_report_error(rc, NULL, t.path);
	rc = kvs_begin(db, KVS_READ);
	if (rc == KVS_OK)
	{
		rc = kvs_descriptor(db, &s);
		if (rc == KVS_OK)
		{
			flen = s.len;
			fdesc = palloc(flen + 1);
			memcpy(fdesc, s.data, flen);
			rc = kvs_stats_get(db, &st);
		}
		(void) kvs_end(db);
	}
	(void) kvs_close(db);
	if (rc != KVS_OK)
		kvs_report_error(rc, NULL, t.path);
	if (st.records == 0)
		return;					/* an empty file takes the new layout */

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
		AttrNumber	attnum;

		if (cmd->subtype != AT_AddColumn)
			continue;
		attnum = get_attnum(RelationGetRelid(rel), castNode(ColumnDef, cmd->def)->colname);
		if (attnum != InvalidAttrNumber &&
			!kvs_file_has_column(fdesc, flen, attnum))
			added_column(rel, attnum);
	}

	kvs_table_init(&t, rel);	/* the options may have changed */
	if (!kvs_file_fits_table(&t, rel, fdesc, flen, &why))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot alter foreign table \"%s\": its kvs file cannot follow this change",
						RelationGetRelationName(rel)),
				 errdetail("%s", why),
				 errhint(COPY_HINT)));
}

Datum
kvs_fdw_alter_end(PG_FUNCTION_ARGS)
{
	AlterTableStmt *stmt = column_alter(fcinfo);
	ListCell   *lc;

	if (stmt == NULL)
		PG_RETURN_VOID();
	foreach(lc, altered_foreign_tables(stmt))
	{
		Relation	rel = try_relation_open(lfirst_oid(lc), AccessShareLock);

		if (rel == NULL)
			continue;
		if (kvs_is_kvs_table(rel))
			check_altered(rel, stmt);
		relation_close(rel, AccessShareLock);
	}
	PG_RETURN_VOID();
}

/*
 * EXPLAIN (without ANALYZE) of a statement on table rel: if its columns do
 * not match its file, say so (executing it would raise 42804).
 */
void
kvs_explain_layout(Relation rel, ExplainState *es)
{
	KvsTable	t;

	kvs_table_init(&t, rel);
	kvs_table_open_tolerant(&t);
	if (t.layout_problem != NULL)
		ExplainPropertyText("Kvs Layout Mismatch", t.layout_problem, es);
}
