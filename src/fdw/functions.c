/*
 * functions.c - SQL functions for looking inside kvs files:
 *   kvs_fdw_stats(regclass)        file and hashing statistics
 *   kvs_fdw_check(regclass)        integrity walk; no rows when clean
 *   kvs_fdw_page(regclass, bigint) one page's header and slots
 *   kvs_fdw_cache_stats()          this backend's caches (shared mode: the
 *                                  pool's, cluster-wide), per file and total
 *   kvs_fdw_reset_stats()          zero the cache counters
 *   kvs_fdw_key_column(regclass)   the name of the table's key column
 *   kvs_fdw_compact(regclass)      rewrite the file for its records
 *   kvs_fdw_adopt(regclass)        shared mode: take the file over from the
 *                                  cluster its header names as owner
 * Functions that show a table's data or shape need SELECT on the table;
 * kvs_fdw_compact needs its ownership.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_class.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "kvs_fdw.h"

PG_FUNCTION_INFO_V1(kvs_fdw_stats);
PG_FUNCTION_INFO_V1(kvs_fdw_check);
PG_FUNCTION_INFO_V1(kvs_fdw_page);
PG_FUNCTION_INFO_V1(kvs_fdw_cache_stats);
PG_FUNCTION_INFO_V1(kvs_fdw_reset_stats);
PG_FUNCTION_INFO_V1(kvs_fdw_key_column);
PG_FUNCTION_INFO_V1(kvs_fdw_compact);
PG_FUNCTION_INFO_V1(kvs_fdw_adopt);

/*
 * The relation a regclass argument names, locked: it must exist (42P01: a
 * regclass can hold any OID, 0 included) and be a kvs_fdw foreign table
 * (42809).
 */
static Relation
open_kvs_relation(Oid relid, LOCKMODE lockmode)
{
	Relation	rel = try_relation_open(relid, lockmode);

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!kvs_is_kvs_table(rel))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a kvs_fdw foreign table",
						RelationGetRelationName(rel))));
	return rel;
}

/* The same with AccessShareLock, and the caller needs SELECT on it (42501). */
Relation
kvs_open_checked_relation(Oid relid)
{
	Relation	rel = open_kvs_relation(relid, AccessShareLock);
	AclResult	acl;

	acl = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_FOREIGN_TABLE, RelationGetRelationName(rel));
	return rel;
}

/*
 * Open a kvs_fdw table and its file for inspection.  A table whose columns
 * do not match its file's row layout can be inspected too: t->layout_problem
 * says why (kvs_fdw_check reports it as a problem, the others warn).
 */
static Relation
open_for_inspection(Oid relid, KvsTable *t)
{
	Relation	rel = kvs_open_checked_relation(relid);

	kvs_table_init(t, rel);
	kvs_table_open_tolerant(t);
	return rel;
}

static void
warn_layout(KvsTable *t)
{
	if (t->layout_problem != NULL)
		ereport(WARNING,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the columns of foreign table \"%s\" do not match its kvs file",
						t->relname),
				 errdetail("%s", t->layout_problem),
				 errhint("Reading or writing its rows fails until they match.")));
}

Datum
kvs_fdw_stats(PG_FUNCTION_ARGS)
{
	KvsTable	t;
	Relation	rel = open_for_inspection(PG_GETARG_OID(0), &t);
	TupleDesc	td;
	kvs_stats	st;
	Datum		v[13];
	bool		n[13];

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	warn_layout(&t);
	kvs_check_rc(kvs_stats_get(t.file->db, &st), t.file->db, t.path);
	memset(n, 0, sizeof(n));
	v[0] = CStringGetTextDatum(t.path);
	v[1] = Int64GetDatum((int64) st.file_bytes);
	v[2] = Int64GetDatum((int64) st.pages);
	v[3] = Int64GetDatum((int64) st.buckets);
	v[4] = Int32GetDatum((int32) st.level);
	v[5] = Int64GetDatum((int64) st.split);
	v[6] = Int64GetDatum((int64) st.records);
	v[7] = Int64GetDatum((int64) st.overflow_pages);
	v[8] = Int64GetDatum((int64) st.value_pages);
	v[9] = Int64GetDatum((int64) st.dir_pages);
	v[10] = Int64GetDatum((int64) st.free_pages);
	v[11] = Float8GetDatum(st.load_factor);
	v[12] = Int32GetDatum((int32) st.fillfactor);
	relation_close(rel, AccessShareLock);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(td, v, n)));
}

/*
 * A file too damaged to open is a problem to report, not an error: open it
 * alone, read-only, before the usual (erroring) path.
 */
static bool
check_openable(ReturnSetInfo *rsinfo, Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	KvsTable	t;
	kvs_options o;
	kvs		   *db = NULL;
	int			rc;

	if (!kvs_is_kvs_table(rel))
	{
		relation_close(rel, AccessShareLock);
		return true;			/* the usual path reports it */
	}
	kvs_table_init(&t, rel);
	relation_close(rel, AccessShareLock);
	kvs_table_check_file(&t);
	kvs_host_options(&o, KVS_RDONLY, 8);
	rc = kvs_open(t.path, &o, &db);
	if (rc == KVS_OK)
	{
		(void) kvs_close(db);
		return true;
	}
	if (kvs_is_damage(rc))
	{
		const char *msg = kvs_open_errmsg();
		const char *p = msg ? strstr(msg, "page ") : NULL;
		unsigned int page = 0;
		Datum		v[2];
		bool		n[2] = {false, false};

		if (p == NULL || sscanf(p, "page %u", &page) != 1)
			page = 0;
		v[0] = Int64GetDatum((int64) page);
		v[1] = CStringGetTextDatum(msg && msg[0] ? msg : kvs_strerror(rc));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
		return false;
	}
	return true;				/* missing file etc.: the usual path */
}

Datum
kvs_fdw_check(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	KvsTable	t;
	Relation	rel;
	int			rc;

	InitMaterializedSRF(fcinfo, 0);
	/* the relation and privileges first, then a file that cannot be opened */
	rel = kvs_open_checked_relation(PG_GETARG_OID(0));
	relation_close(rel, AccessShareLock);
	if (!check_openable(rsinfo, PG_GETARG_OID(0)))
		return (Datum) 0;
	rel = open_for_inspection(PG_GETARG_OID(0), &t);
	if (t.layout_problem != NULL)
	{
		Datum		v[2];
		bool		n[2] = {false, false};

		/* page 0: the header, which holds the row layout */
		v[0] = Int64GetDatum(0);
		v[1] = CStringGetTextDatum(t.layout_problem);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	rc = kvs_check(t.file->db);
	if (kvs_is_damage(rc))
	{
		Datum		v[2];
		bool		n[2] = {false, false};

		v[0] = Int64GetDatum((int64) kvs_errpage(t.file->db));
		v[1] = CStringGetTextDatum(kvs_errmsg(t.file->db));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	else if (rc != KVS_OK)
		kvs_report_error(rc, t.file->db, t.path);
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}

/* A key as text (kvs_try's argument): NULL text if it does not decode. */
typedef struct KeyText
{
	KvsTable   *t;
	kvs_slice	key;
	char	   *text;
} KeyText;

static void
key_text(void *arg)
{
	KeyText    *kt = (KeyText *) arg;
	Datum		d = kvs_decode_key(kt->t->tupdesc, kt->t->opts.keyattno,
								   kt->key.data, kt->key.len);

	kt->text = kvs_key_to_text(kt->t->tupdesc, kt->t->opts.keyattno, d);
}

static void
put_page_row(ReturnSetInfo *rsinfo, KvsTable *t, kvs_page_info *pi, kvs_slot_info *si)
{
	Datum		v[17];
	bool		n[17];
	int			i;

	memset(n, 0, sizeof(n));
	v[0] = Int64GetDatum((int64) pi->pageno);
	v[1] = CStringGetTextDatum(pi->type_name ? pi->type_name : "?");
	v[2] = BoolGetDatum(pi->checksum_ok != 0);
	v[3] = CStringGetTextDatum(psprintf("%016llx", (unsigned long long) pi->checksum));
	v[4] = Int64GetDatum((int64) pi->next);
	v[5] = Int32GetDatum((int32) pi->nslots);
	v[6] = Int32GetDatum((int32) pi->free_bytes);
	if (pi->bucket == UINT64_MAX)
		n[7] = true;
	else
		v[7] = Int64GetDatum((int64) pi->bucket);
	if (si == NULL)
	{
		for (i = 8; i < 17; i++)
			n[i] = true;
	}
	else
	{
		bytea	   *key = palloc(VARHDRSZ + si->key.len);
		KeyText		kt;

		SET_VARSIZE(key, VARHDRSZ + si->key.len);
		memcpy(VARDATA(key), si->key.data, si->key.len);
		v[8] = Int32GetDatum((int32) si->slot);
		v[9] = Int32GetDatum((int32) si->offset);
		v[10] = Int32GetDatum((int32) si->length);
		v[11] = CStringGetTextDatum(psprintf("%08x", si->hash));
		v[12] = Int32GetDatum((int32) si->flags);
		v[13] = Int64GetDatum((int64) si->value_len);
		v[14] = Int64GetDatum((int64) si->stamp);
		v[15] = PointerGetDatum(key);
		/*
		 * The key as its column's type would print it; a key that does not
		 * decode under the table's layout, or of a file whose layout is not
		 * the table's, is NULL here, never an error.
		 */
		kt.t = t;
		kt.key = si->key;
		kt.text = NULL;
		if (t->layout_problem == NULL &&	/* else the key type may differ */
			kvs_try(key_text, &kt) && kt.text != NULL)
			v[16] = CStringGetTextDatum(kt.text);
		else
			n[16] = true;
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
}

Datum
kvs_fdw_page(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		pageno = PG_GETARG_INT64(1);
	KvsTable	t;
	Relation	rel;
	kvs_page_info pi;
	kvs		   *db;
	int			rc;
	uint32		i;

	InitMaterializedSRF(fcinfo, 0);
	rel = open_for_inspection(PG_GETARG_OID(0), &t);
	warn_layout(&t);
	db = t.file->db;
	if (pageno < 0 || pageno > PG_UINT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("page number " INT64_FORMAT " is out of range", pageno)));
	kvs_check_rc(kvs_begin(db, KVS_READ), db, t.path);
	rc = kvs_page_info_get(db, (uint32) pageno, &pi);
	if (rc == KVS_EINVAL)
	{
		(void) kvs_abort(db);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("page number " INT64_FORMAT " is out of range for foreign table \"%s\"",
						pageno, t.relname)));
	}
	if (rc != KVS_OK)
		kvs_report_error(rc, db, t.path);
	if (pi.nslots == 0 || (pi.type != KVS_PAGE_BUCKET && pi.type != KVS_PAGE_OVERFLOW))
		put_page_row(rsinfo, &t, &pi, NULL);
	else
		for (i = 0; i < pi.nslots; i++)
		{
			kvs_slot_info si;

			rc = kvs_page_slot(db, (uint32) pageno, i, &si);
			if (rc != KVS_OK)
				kvs_report_error(rc, db, t.path);
			put_page_row(rsinfo, &t, &pi, &si);
		}
	kvs_check_rc(kvs_end(db), db, t.path);
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}

typedef struct CacheTotals
{
	ReturnSetInfo *rsinfo;
	kvs_stats	sum;
	uint64		ring_reuses;	/* shared mode's sum */
	/* shared mode: this backend's invalidations per pool file slot */
	uint64	   *slot_invalidations;
	uint32		nslots;
} CacheTotals;

#define CACHE_STATS_COLS 8

static void
put_cache_row(ReturnSetInfo *rsinfo, const char *file, kvs_stats *st,
			  uint64 ring_reuses)
{
	Datum		v[CACHE_STATS_COLS];
	bool		n[CACHE_STATS_COLS];

	memset(n, 0, sizeof(n));
	if (file)
		v[0] = CStringGetTextDatum(file);
	else
		n[0] = true;
	v[1] = Int64GetDatum((int64) st->cache_frames);
	v[2] = Int64GetDatum((int64) st->cache_hits);
	v[3] = Int64GetDatum((int64) st->cache_reads);
	v[4] = Int64GetDatum((int64) st->cache_evictions);
	v[5] = Int64GetDatum((int64) st->cache_writes);
	v[6] = Int64GetDatum((int64) st->cache_invalidations);
	v[7] = Int64GetDatum((int64) ring_reuses);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
}

static void
add_to_total(CacheTotals *ct, const kvs_stats *st)
{
	ct->sum.cache_frames += st->cache_frames;
	ct->sum.cache_hits += st->cache_hits;
	ct->sum.cache_reads += st->cache_reads;
	ct->sum.cache_evictions += st->cache_evictions;
	ct->sum.cache_writes += st->cache_writes;
	ct->sum.cache_invalidations += st->cache_invalidations;
}

static void
cache_row_cb(KvsFile *f, void *arg)
{
	CacheTotals *ct = (CacheTotals *) arg;
	kvs_stats	st;

	if (kvs_stats_get(f->db, &st) != KVS_OK)
		return;
	put_cache_row(ct->rsinfo, f->path, &st, 0);
	add_to_total(ct, &st);
}

static void
slot_invalidations_cb(KvsFile *f, void *arg)
{
	CacheTotals *ct = (CacheTotals *) arg;
	kvs_stats	st;

	if (kvs_stats_get(f->db, &st) == KVS_OK && st.pool_slot < ct->nslots)
		ct->slot_invalidations[st.pool_slot] += st.cache_invalidations;
}

/*
 * Shared mode: the pool's counters of every file it tracks, cluster-wide
 * (each handle adds its own at each section end and at close), and a total
 * row.  file is the path of this database's table over that file, else
 * "file id <hex>"; frames are the frames holding its pages now;
 * invalidations (not kept in the pool) are this backend's.
 */
static void
shared_cache_stats(CacheTotals *ct)
{
	kvs_pool   *p = kvs_shared_pool();
	Oid		   *relids;
	char	  **paths;
	uint32		i;

	kvs_pool_tables(&relids, &paths);
	ct->nslots = kvs_pool_files(p);
	ct->slot_invalidations = palloc0(sizeof(uint64) * ct->nslots);
	kvs_foreach_file(slot_invalidations_cb, ct);
	for (i = 0; i < ct->nslots; i++)
	{
		kvs_pool_file_info fi;
		kvs_stats	st;

		if (kvs_pool_file(p, i, &fi) != KVS_OK)
			continue;
		memset(&st, 0, sizeof(st));
		st.cache_frames = fi.frames;
		st.cache_hits = fi.hits;
		st.cache_reads = fi.reads;
		st.cache_evictions = fi.evictions;
		st.cache_writes = fi.writes;
		st.cache_invalidations = ct->slot_invalidations[i];
		put_cache_row(ct->rsinfo,
					  paths[i] ? paths[i] :
					  psprintf("file id %016llx", (unsigned long long) fi.file_id),
					  &st, fi.ring_reuses);
		add_to_total(ct, &st);
		ct->ring_reuses += fi.ring_reuses;
	}
}

Datum
kvs_fdw_cache_stats(PG_FUNCTION_ARGS)
{
	CacheTotals ct;

	InitMaterializedSRF(fcinfo, 0);
	memset(&ct, 0, sizeof(ct));
	ct.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (kvs_shared_pool() != NULL)
		shared_cache_stats(&ct);
	else
		kvs_foreach_file(cache_row_cb, &ct);
	put_cache_row(ct.rsinfo, NULL, &ct.sum, ct.ring_reuses);
	return (Datum) 0;
}

static void
reset_cb(KvsFile *f, void *arg)
{
	kvs_reset_counters(f->db);
}

/*
 * Local mode: zero this backend's counters.  Shared mode: the pool's,
 * which every backend sees, so superusers only (as pg_stat_reset_shared
 * is by default); this backend's handles' counters are zeroed too.
 */
Datum
kvs_fdw_reset_stats(PG_FUNCTION_ARGS)
{
	kvs_pool   *p = kvs_shared_pool();

	if (p != NULL)
	{
		if (!superuser())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to reset the kvs_fdw shared cache statistics"),
					 errdetail("In shared mode the counters are the whole cluster's: only superusers may reset them.")));
		kvs_pool_reset_stats(p);
	}
	kvs_foreach_file(reset_cb, NULL);
	PG_RETURN_VOID();
}

/* The key column's name: `key 'true'`, else the first column. */
Datum
kvs_fdw_key_column(PG_FUNCTION_ARGS)
{
	Relation	rel = kvs_open_checked_relation(PG_GETARG_OID(0));
	KvsTable	t;
	Name		result = palloc0(NAMEDATALEN);

	kvs_table_init(&t, rel);
	namestrcpy(result, NameStr(TupleDescAttr(t.tupdesc, t.opts.keyattno - 1)->attname));
	relation_close(rel, AccessShareLock);
	PG_RETURN_NAME(result);
}

/*
 * kvs_fdw_compact(regclass): rewrite the table's file into a new one sized
 * for the records it holds and swap it in (the engine's kvs_compact: crash-
 * safe, the old file untouched until the new one is whole and in place).
 * It changes no row but rewrites the whole file, so, as for VACUUM FULL,
 * only the table's owner (or a superuser) may run it.  The relation is held
 * in ShareUpdateExclusiveLock, as VACUUM and ANALYZE hold it: compactions of
 * one table queue in the lock manager and the table cannot be altered or
 * dropped meanwhile, while readers and writers of other sessions wait on the
 * file's own lock only for the copy itself.  Their handles (and every other
 * handle of this backend) move to the new file at their next use.
 */
Datum
kvs_fdw_compact(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel;
	KvsTable	t;
	TupleDesc	td;
	kvs_compact_info ci;
	Datum		v[3];
	bool		n[3] = {false, false, false};
	int			rc;

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rel = open_kvs_relation(relid, ShareUpdateExclusiveLock);
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_FOREIGN_TABLE,
					   RelationGetRelationName(rel));
	kvs_table_init(&t, rel);
	kvs_table_open(&t);
	if (kvs_in_section(t.file->db) >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("cannot compact foreign table \"%s\" while this session is writing it",
						t.relname)));
	/* shared mode: queue with the writers first */
	kvs_writer_lock(&t.file->wlock);
	rc = kvs_compact(t.file->db, &ci);
	kvs_writer_unlock(&t.file->wlock);
	if (rc != KVS_OK)
		kvs_report_error(rc, t.file->db, t.path);
	v[0] = Int64GetDatum((int64) ci.records);
	v[1] = Int64GetDatum((int64) ci.bytes_before);
	v[2] = Int64GetDatum((int64) ci.bytes_after);
	/* the lock is kept to the end of the transaction */
	relation_close(rel, NoLock);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(td, v, n)));
}

/*
 * kvs_fdw_adopt(regclass): in shared mode the header of a kvs file records
 * which cluster has it (the system identifier), and a file another cluster
 * has is refused (55006), so that two clusters never write one file.  A
 * cluster restored from a backup, or copied, has a new identifier: this
 * takes the table's file over (the engine's KVS_ADOPT).  Superusers only:
 * it is for a file the old cluster no longer uses, and nothing here can
 * tell.  A file this backend has open is already this cluster's.
 */
Datum
kvs_fdw_adopt(PG_FUNCTION_ARGS)
{
	Relation	rel;
	KvsTable	t;
	kvs_options o;
	kvs		   *db = NULL;
	int			rc;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to adopt a kvs file"),
				 errdetail("Only superusers may take a kvs file over from another cluster.")));
	if (kvs_shared_pool() == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("kvs_fdw_adopt works in shared mode only"),
				 errdetail("Without kvs_fdw in shared_preload_libraries, the owner a kvs file's header names is not checked.")));
	rel = open_kvs_relation(PG_GETARG_OID(0), AccessShareLock);
	kvs_table_init(&t, rel);
	kvs_table_check_file(&t);
	kvs_host_options(&o, KVS_ADOPT, 0);
	rc = kvs_open(t.path, &o, &db);
	if (rc != KVS_OK)
		kvs_report_error(rc, NULL, t.path);
	rc = kvs_close(db);
	if (rc != KVS_OK)
		kvs_report_error(rc, NULL, t.path);
	relation_close(rel, AccessShareLock);
	PG_RETURN_VOID();
}
