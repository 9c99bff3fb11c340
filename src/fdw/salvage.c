/*
 * salvage.c - reading what survives of a damaged kvs file into SQL:
 *   kvs_fdw_salvage(anyelement)        SETOF the table's rows
 *   kvs_fdw_salvage_pages(anyelement)  the same, each with its page and slot
 * both called with a row of the table, NULL::tablename, so the result has
 * the table's row type:
 *   INSERT INTO fresh SELECT * FROM kvs_fdw_salvage(NULL::damaged);
 *
 * The engine's salvage reader (src/engine/salvage.c) trusts neither the
 * header nor the directory, so this works on a file the normal open refuses.
 * Each record is decoded with the table's row layout; one that does not
 * decode is skipped and counted.  A NOTICE (a WARNING when anything was
 * skipped) gives the counts.  A key can come back twice (a stale copy left
 * by a torn write-out): every copy is returned, and kvs_fdw_salvage_pages
 * shows where each came from so the user can choose (README, "Salvage").
 *
 * Also kvs_try(), which runs a decoding step and turns the errors a
 * malformed record raises into a false return (used by kvs_fdw_page too).
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_class.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "kvs_fdw.h"

PG_FUNCTION_INFO_V1(kvs_fdw_salvage);
PG_FUNCTION_INFO_V1(kvs_fdw_salvage_pages);

/*
 * Runs fn(arg); returns false if it raised an error of the kinds a record
 * that does not fit its layout raises (XX001 data_corrupted from the row
 * codec, class 22 data exceptions from a type's output function), true
 * otherwise.  Any other error propagates.  No subtransaction: fn must only
 * compute and palloc (decode bytes, call an output function), holding no
 * lock, buffer or other resource an aborted subtransaction would release;
 * the caller runs it in a memory context it resets.
 */
bool
kvs_try(void (*fn) (void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		fn(arg);
	}
	PG_CATCH();
	{
		ErrorData  *ed;

		MemoryContextSwitchTo(cxt);
		ed = CopyErrorData();
		if (ed->sqlerrcode != ERRCODE_DATA_CORRUPTED &&
			ERRCODE_TO_CATEGORY(ed->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		FreeErrorData(ed);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* One record to decode (kvs_try's argument). */
typedef struct DecodeArgs
{
	KvsTable   *t;
	const kvs_salvage_rec *rec;
	Datum	   *values;
	bool	   *isnull;
} DecodeArgs;

static void
decode_rec(void *arg)
{
	DecodeArgs *a = (DecodeArgs *) arg;

	kvs_decode_row(a->t->tupdesc, a->t->opts.keyattno, a->t->layout,
				   a->rec->key.data, a->rec->key.len,
				   a->rec->value.data, a->rec->value.len,
				   a->values, a->isnull, NULL, a->t->relname);
}

/*
 * The table a row-typed argument (NULL::tablename) stands for, opened with
 * AccessShareLock after the checks: a kvs_fdw foreign table, SELECT on it.
 */
static Relation
salvage_relation(FunctionCallInfo fcinfo)
{
	Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	Oid			relid = OidIsValid(argtype) ? get_typ_typrelid(argtype) : InvalidOid;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("kvs_fdw_salvage needs a row of a kvs_fdw foreign table"),
				 errhint("Call it as kvs_fdw_salvage(NULL::tablename).")));
	return kvs_open_checked_relation(relid);
}

static void
salvage_failed(KvsTable *t, int rc, const char *msg)
{
	if (rc == KVS_EINTR)
		CHECK_FOR_INTERRUPTS();
	ereport(ERROR,
			(errcode(rc == KVS_ENOMEM ? ERRCODE_OUT_OF_MEMORY : ERRCODE_IO_ERROR),
			 errmsg("cannot salvage foreign table \"%s\": %s", t->relname, msg)));
}

/* The NOTICE (WARNING if anything was lost) that ends a salvage. */
static void
report_counts(KvsTable *t, const kvs_salvage_stats *st, uint64 undecodable)
{
	uint64		bad_pages = st->pages_bad_checksum + st->pages_bad_structure +
		st->pages_unreadable;
	/* a clean file has no zero page: growth is trimmed when a write ends */
	bool		lost = bad_pages > 0 || st->pages_zero > 0 || st->records_bad_value > 0 ||
		undecodable > 0 || st->partial_page_bytes > 0 || !st->header_ok;
	char	   *header;

	if (st->header_ok)
		header = psprintf("the header is intact and counts " UINT64_FORMAT " records in " UINT64_FORMAT " pages",
						  st->header_records, st->header_pages);
	else
		header = psprintf("the header is damaged: %s", st->header_error);
	ereport(lost ? WARNING : NOTICE,
			(errmsg("kvs_fdw_salvage of \"%s\": " UINT64_FORMAT " rows returned (from " UINT64_FORMAT " record pages); skipped: " UINT64_FORMAT " damaged pages, " UINT64_FORMAT " all-zero pages, " UINT64_FORMAT " records with a damaged value chain, " UINT64_FORMAT " records that do not decode as a row",
					t->relname, st->records - undecodable, st->pages_records, bad_pages,
					st->pages_zero, st->records_bad_value, undecodable),
			 errdetail("Read " UINT64_FORMAT " of " UINT64_FORMAT " pages: " UINT64_FORMAT " with a bad checksum, " UINT64_FORMAT " with a bad structure, " UINT64_FORMAT " unreadable, " UINT64_FORMAT " holding no records; " UINT64_FORMAT " bytes after the last whole page; %s.",
					   st->pages_read, st->file_pages, st->pages_bad_checksum,
					   st->pages_bad_structure, st->pages_unreadable,
					   st->pages_other, st->partial_page_bytes, header)));
}

/*
 * How records map onto the table's columns (an ALTER may have added or
 * dropped columns since they were written): from the layout in the file's
 * header when the header passed its checks, else one to one, which misreads
 * records written before a DROP COLUMN: say so.
 */
static void
salvage_layout(KvsTable *t, kvs_salvage *s)
{
	kvs_slice	d;
	char	   *why = NULL;
	int			i;

	t->layout = NULL;
	if (kvs_salvage_descriptor(s, &d) == KVS_OK && d.len > 0)
	{
		t->layout = kvs_layout_for_reading(t, d.data, d.len, &why);
		if (why != NULL)
			ereport(WARNING,
					(errmsg("the row layout in the file header of foreign table \"%s\" does not fit its columns",
							t->relname),
					 errdetail("%s Records of kvs file \"%s\" are decoded as the table's columns; those that do not decode are skipped.",
							   why, t->path)));
		return;
	}
	for (i = 0; i < t->tupdesc->natts; i++)
		if (TupleDescAttr(t->tupdesc, i)->attisdropped)
		{
			ereport(WARNING,
					(errmsg("the file header of foreign table \"%s\" is damaged, so the row layout of its records is unknown",
							t->relname),
					 errdetail("The table has dropped columns: records of kvs file \"%s\" written before a column was dropped may be skipped or read wrongly.",
							   t->path)));
			return;
		}
}

static Datum
salvage(FunctionCallInfo fcinfo, bool with_pages)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel = salvage_relation(fcinfo);
	KvsTable	t;
	TupleDesc	rowdesc;
	kvs_options o;
	kvs_salvage *volatile s = NULL;
	kvs_salvage_stats st;
	MemoryContext rowcxt,
				old;
	Datum	   *values;
	bool	   *isnull;
	volatile uint64 undecodable = 0;
	KvsWriterLock wl = {0};
	struct stat sb;
	int			rc;

	InitMaterializedSRF(fcinfo, 0);
	kvs_table_init(&t, rel);
	if (stat(t.path, &sb) != 0 && errno == ENOENT)
	{
		/* a table that never stored a row has no file yet: nothing to save */
		ereport(NOTICE,
				(errmsg("kvs_fdw_salvage of \"%s\": the table has no file yet, so no rows",
						t.relname)));
		relation_close(rel, AccessShareLock);
		return (Datum) 0;
	}
	rowdesc = t.tupdesc;
	values = palloc(sizeof(Datum) * rowdesc->natts);
	isnull = palloc(sizeof(bool) * rowdesc->natts);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "kvs_fdw_salvage row",
								   ALLOCSET_DEFAULT_SIZES);

	/*
	 * No kvs_table_open(): it validates the header and the table's descriptor
	 * in it, which is what may be damaged.  The path is the one the normal
	 * open uses (the table's options); a check the normal open makes on the
	 * path it opens must be made here too.
	 */
	kvs_table_check_file(&t);	/* a data-directory path: superuser tables only */
	kvs_host_options(&o, 0, 0);

	/*
	 * In shared mode the cluster's writers take no flock, which the salvage
	 * handle's shared flock would wait for: the writers' lock keeps them
	 * out while the file is read (released at transaction end, or by an
	 * error).
	 */
	kvs_writer_identify(t.path, &wl);
	kvs_writer_lock(&wl);
	{
		kvs_salvage *sh;

		rc = kvs_salvage_open(t.path, &o, &sh);
		if (rc != KVS_OK)
			salvage_failed(&t, rc, kvs_salvage_open_errmsg());
		s = sh;
	}
	PG_TRY();
	{
		kvs_salvage_rec rec;

		salvage_layout(&t, s);
		while ((rc = kvs_salvage_next(s, &rec)) == KVS_OK)
		{
			DecodeArgs a;

			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(rowcxt);
			old = MemoryContextSwitchTo(rowcxt);
			a.t = &t;
			a.rec = &rec;
			a.values = values;
			a.isnull = isnull;
			if (!kvs_try(decode_rec, &a))
				undecodable++;
			else if (!with_pages)
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, isnull);
			else
			{
				Datum		v[3];
				bool		n[3] = {false, false, false};

				v[0] = Int64GetDatum((int64) rec.pageno);
				v[1] = Int32GetDatum((int32) rec.slot);
				v[2] = HeapTupleGetDatum(heap_form_tuple(rowdesc, values, isnull));
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
			}
			MemoryContextSwitchTo(old);
		}
		if (rc != KVS_NOTFOUND)
			salvage_failed(&t, rc, kvs_salvage_errmsg(s));
		kvs_salvage_stats_get(s, &st);
	}
	PG_FINALLY();
	{
		kvs_salvage_close(s);
	}
	PG_END_TRY();
	kvs_writer_unlock(&wl);
	MemoryContextDelete(rowcxt);
	report_counts(&t, &st, undecodable);
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}

Datum
kvs_fdw_salvage(PG_FUNCTION_ARGS)
{
	return salvage(fcinfo, false);
}

Datum
kvs_fdw_salvage_pages(PG_FUNCTION_ARGS)
{
	return salvage(fcinfo, true);
}
