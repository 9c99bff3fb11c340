/*
 * handle.c - the per-backend cache of open kvs files, and their lifecycle.
 *
 * One kvs* per file path in this backend, opened with KVS_CREATE on first
 * use, with kvs_fdw.cache_size worth of 4 KiB frames and an interrupt hook.
 * The file header's descriptor records which table the file belongs to
 * (database OID, table OID, the OID of the table's row type, so a reused
 * table OID never adopts an old file; not pg_class.xmin, which GRANT and
 * ALTER change) and the row layout (live columns' type OIDs and typmods, the
 * key's position); a table whose layout differs from its non-empty file gets
 * 42804 naming the column, an empty file takes the table's layout.
 *
 * Also here: the per-relation cache of table options (dropped by relcache
 * and pg_foreign_table invalidations), statement stamps (see
 * kvs_file_set_stamp), and ending sections/stamps left open by an error.
 *
 * DROP FOREIGN TABLE: the extension's sql_drop event trigger calls
 * kvs_fdw_forget(oid) for each dropped foreign table; the data-directory file
 * is removed when the transaction commits, kept if it aborts.  Explicit
 * filenames are never removed.
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "common/file_perm.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "kvs_fdw.h"

#define DESC_MAGIC		"KVSFDW"
#define DESC_VERSION	1
#define DESC_IDENT_OFF	8
#define DESC_IDENT_LEN	12
#define DESC_LAYOUT_OFF (DESC_IDENT_OFF + DESC_IDENT_LEN)

typedef struct KvsRelEntry
{
	Oid			relid;			/* hash key */
	bool		valid;			/* descriptor verified for file_gen */
	uint64		file_gen;
	char		path[MAXPGPATH];
	bool		opts_valid;		/* opts below are current */
	KvsTableOptions opts;		/* filename points to opt_filename */
	char		opt_filename[MAXPGPATH];
} KvsRelEntry;

typedef struct PendingDrop
{
	Oid			relid;
	int			level;			/* transaction nest level that dropped it */
	char		path[MAXPGPATH];
} PendingDrop;

static HTAB *kvs_files = NULL;
static HTAB *kvs_rels = NULL;
static List *pending_drops = NIL;	/* in TopTransactionContext */

/*
 * This top-level transaction wrote a kvs file (rows, or TRUNCATE).  Writes
 * apply at once, so ROLLBACK PREPARED could not undo them: PREPARE is refused
 * (as postgres_fdw refuses it).  A write in a rolled-back savepoint counts
 * too: nothing is undone yet.  A stopgap until the transaction issue.
 */
static bool xact_wrote = false;
static uint64 file_gen_counter = 0;

typedef struct KvsFileExt
{
	KvsFile		f;
	uint64		gen;
	int			fillfactor;
} KvsFileExt;

static void
kvs_rel_inval(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS st;
	KvsRelEntry *re;

	if (kvs_rels == NULL)
		return;
	hash_seq_init(&st, kvs_rels);
	while ((re = hash_seq_search(&st)) != NULL)
		if (relid == InvalidOid || re->relid == relid)
		{
			re->valid = false;
			re->opts_valid = false;
		}
}

/* pg_foreign_table changed (ALTER FOREIGN TABLE ... OPTIONS): forget all */
static void
kvs_ftable_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	kvs_rel_inval(arg, InvalidOid);
}

/*
 * End sections left over by an error, and the statement stamps owned by
 * statements of transaction nest level >= level (0: all).
 */
static void
reset_files_after_error(int level)
{
	HASH_SEQ_STATUS st;
	KvsFileExt *fe;

	if (kvs_files == NULL)
		return;
	hash_seq_init(&st, kvs_files);
	while ((fe = hash_seq_search(&st)) != NULL)
	{
		if (fe->f.db == NULL)
			continue;
		if (kvs_in_section(fe->f.db) >= 0)
			(void) kvs_end(fe->f.db);
		if (fe->f.stamp != 0 && fe->f.stamp_level >= level)
		{
			kvs_set_stamp(fe->f.db, 0);
			fe->f.stamp = 0;
		}
	}
}

static void
close_file_by_path(const char *path)
{
	KvsFileExt *fe;
	char		key[MAXPGPATH];

	if (kvs_files == NULL)
		return;
	memset(key, 0, sizeof(key));
	strlcpy(key, path, MAXPGPATH);
	fe = hash_search(kvs_files, key, HASH_FIND, NULL);
	if (fe == NULL)
		return;
	if (fe->f.db)
		(void) kvs_close(fe->f.db);
	fe->f.db = NULL;
	hash_search(kvs_files, key, HASH_REMOVE, NULL);
}

static void
kvs_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (xact_wrote)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has written to kvs_fdw foreign tables"),
						 errdetail("kvs_fdw applies writes when their statement runs; ROLLBACK PREPARED could not undo them.")));
			if (pending_drops != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that dropped a kvs_fdw foreign table")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			reset_files_after_error(0);
			foreach(lc, pending_drops)
			{
				PendingDrop *pd = (PendingDrop *) lfirst(lc);

				close_file_by_path(pd->path);
				if (unlink(pd->path) != 0 && errno != ENOENT)
					ereport(WARNING,
							(errcode_for_file_access(),
							 errmsg("could not remove kvs file \"%s\": %m", pd->path)));
			}
			pending_drops = NIL;
			xact_wrote = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			reset_files_after_error(0);
			pending_drops = NIL;
			xact_wrote = false;
			break;
		default:
			break;
	}
}

static void
kvs_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		List	   *keep = NIL;
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		reset_files_after_error(level);
		foreach(lc, pending_drops)
		{
			PendingDrop *pd = (PendingDrop *) lfirst(lc);

			if (pd->level < level)
				keep = lappend(keep, pd);
		}
		pending_drops = keep;
		MemoryContextSwitchTo(old);
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending_drops)
		{
			PendingDrop *pd = (PendingDrop *) lfirst(lc);

			if (pd->level >= level)
				pd->level = level - 1;
		}
	}
}

void
kvs_handles_init(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = MAXPGPATH;
	ctl.entrysize = sizeof(KvsFileExt);
	kvs_files = hash_create("kvs_fdw files", 16, &ctl, HASH_ELEM | HASH_STRINGS);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(KvsRelEntry);
	kvs_rels = hash_create("kvs_fdw tables", 64, &ctl, HASH_ELEM | HASH_BLOBS);

	CacheRegisterRelcacheCallback(kvs_rel_inval, (Datum) 0);
	CacheRegisterSyscacheCallback(FOREIGNTABLEREL, kvs_ftable_inval, (Datum) 0);
	RegisterXactCallback(kvs_xact_callback, NULL);
	RegisterSubXactCallback(kvs_subxact_callback, NULL);
}

void
kvs_default_path(Oid dboid, Oid relid, char *buf)
{
	snprintf(buf, MAXPGPATH, "%s/kvs_fdw/%u_%u.kvs", DataDir, dboid, relid);
}

/* The table's options, read from the catalogs once per invalidation. */
static KvsTableOptions *
cached_options(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	KvsRelEntry *re;
	bool		found;

	if (kvs_rels == NULL)
		kvs_handles_init();
	re = hash_search(kvs_rels, &relid, HASH_ENTER, &found);
	if (!found)
	{
		re->valid = false;
		re->opts_valid = false;
	}
	if (!re->opts_valid)
	{
		KvsTableOptions o;

		kvs_get_table_options(rel, &o);		/* may raise: nothing cached */
		re->opts = o;
		if (o.filename)
		{
			strlcpy(re->opt_filename, o.filename, MAXPGPATH);
			re->opts.filename = re->opt_filename;
		}
		re->opts_valid = true;
	}
	return &re->opts;
}

void
kvs_table_init(KvsTable *t, Relation rel)
{
	memset(t, 0, sizeof(*t));
	t->relid = RelationGetRelid(rel);
	t->relname = pstrdup(RelationGetRelationName(rel));
	t->tupdesc = RelationGetDescr(rel);
	t->opts = *cached_options(rel);
	if (t->opts.filename)
		t->opts.filename = pstrdup(t->opts.filename);
	t->default_file = (t->opts.filename == NULL);
	if (t->default_file)
		kvs_default_path(MyDatabaseId, t->relid, t->path);
	else
		strlcpy(t->path, t->opts.filename, MAXPGPATH);
}

static uint32
wanted_cache_pages(void)
{
	int64		pages = (int64) kvs_fdw_cache_size_kb / (KVS_PAGE_SIZE / 1024);

	if (pages < 8)
		pages = 8;
	if (pages > PG_UINT32_MAX)
		pages = PG_UINT32_MAX;
	return (uint32) pages;
}

/* Build the descriptor of a table: identity, then layout. */
static void
build_descriptor(KvsTable *t, StringInfo d, Oid reltype)
{
	TupleDesc	td = t->tupdesc;
	uint16		ncols = 0,
				keyidx = 0;
	uint32		u;
	int			i;
	char		ver[2] = {DESC_VERSION, 0};

	appendBinaryStringInfo(d, DESC_MAGIC, 6);
	appendBinaryStringInfo(d, ver, 2);
	u = MyDatabaseId;
	appendBinaryStringInfo(d, (char *) &u, 4);
	u = t->relid;
	appendBinaryStringInfo(d, (char *) &u, 4);
	u = reltype;
	appendBinaryStringInfo(d, (char *) &u, 4);
	for (i = 0; i < td->natts; i++)
	{
		if (TupleDescAttr(td, i)->attisdropped)
			continue;
		if (i + 1 == t->opts.keyattno)
			keyidx = ncols;
		ncols++;
	}
	appendBinaryStringInfo(d, (char *) &ncols, 2);
	appendBinaryStringInfo(d, (char *) &keyidx, 2);
	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);
		int32		typmod = att->atttypmod;

		if (att->attisdropped)
			continue;
		u = att->atttypid;
		appendBinaryStringInfo(d, (char *) &u, 4);
		appendBinaryStringInfo(d, (char *) &typmod, 4);
	}
	if (d->len > KVS_MAX_DESCRIPTOR)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("foreign table \"%s\" has too many columns for a kvs file",
						t->relname),
				 errdetail("The row layout must fit in %d bytes of the file header.",
						   KVS_MAX_DESCRIPTOR)));
}

static bool
is_our_descriptor(const char *p, size_t len)
{
	return len >= DESC_LAYOUT_OFF + 4 && memcmp(p, DESC_MAGIC, 6) == 0 &&
		p[6] == DESC_VERSION;
}

/* 42804 naming the first column whose type differs from the file's. */
static void
layout_error(KvsTable *t, const char *fd, size_t flen)
{
	TupleDesc	td = t->tupdesc;
	uint16		fn,
				fkey;
	int			i,
				k = 0;

	if (!is_our_descriptor(fd, flen))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("kvs file \"%s\" of foreign table \"%s\" holds records but no kvs_fdw row layout",
						t->path, t->relname)));
	memcpy(&fn, fd + DESC_LAYOUT_OFF, 2);
	memcpy(&fkey, fd + DESC_LAYOUT_OFF + 2, 2);
	if ((size_t) DESC_LAYOUT_OFF + 4 + (size_t) fn * 8 > flen)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvs file \"%s\" has a damaged row layout", t->path)));
	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);
		uint32		ftyp;
		int32		fmod;

		if (att->attisdropped)
			continue;
		if (k >= fn)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of foreign table \"%s\" is not in its kvs file",
							NameStr(att->attname), t->relname),
					 errdetail("The file \"%s\" stores %d columns.", t->path, fn)));
		memcpy(&ftyp, fd + DESC_LAYOUT_OFF + 4 + k * 8, 4);
		memcpy(&fmod, fd + DESC_LAYOUT_OFF + 8 + k * 8, 4);
		if (ftyp != att->atttypid || fmod != att->atttypmod)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of foreign table \"%s\" does not match its kvs file",
							NameStr(att->attname), t->relname),
					 errdetail("The table declares type %s, the file stores type %s.",
							   format_type_with_typemod(att->atttypid, att->atttypmod),
							   format_type_with_typemod(ftyp, fmod))));
		if ((k == fkey) != (i + 1 == t->opts.keyattno))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of foreign table \"%s\" does not match its kvs file",
							NameStr(att->attname), t->relname),
					 errdetail("The table and the file disagree on whether it is the key column.")));
		k++;
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("foreign table \"%s\" has fewer columns than its kvs file",
					t->relname),
			 errdetail("The file \"%s\" stores %d columns, the table has %d.",
					   t->path, fn, k)));
}

/*
 * The table's descriptor, built on first need: a statement on a table whose
 * open file is already verified needs none (this saves a relcache lookup and
 * the layout walk per execution of a prepared lookup).
 */
static StringInfo
table_descriptor(KvsTable *t, StringInfo desc)
{
	if (desc->data == NULL)
	{
		Relation	rel;
		Oid			reltype;

		/* reltype from the relcache (the relation is open in our callers) */
		rel = RelationIdGetRelation(t->relid);
		if (!RelationIsValid(rel))
			elog(ERROR, "could not open relation with OID %u", t->relid);
		reltype = rel->rd_rel->reltype;
		RelationClose(rel);
		initStringInfo(desc);
		build_descriptor(t, desc, reltype);
	}
	return desc;
}

static KvsFileExt *
open_file(KvsTable *t, StringInfo desc, bool *opened)
{
	KvsFileExt *fe;
	bool		found;
	char		key[MAXPGPATH];
	uint32		pages = wanted_cache_pages();

	memset(key, 0, sizeof(key));
	strlcpy(key, t->path, MAXPGPATH);
	fe = hash_search(kvs_files, key, HASH_ENTER, &found);
	if (!found)
	{
		fe->f.db = NULL;
		fe->f.ncursors = 0;
		fe->f.stamp = 0;
		fe->f.stamp_level = 0;
		fe->f.stamp_writes = 0;
		fe->f.stale = false;
		fe->fillfactor = 0;
	}
	/* reopen a stale handle, or one opened with another cache size */
	if (fe->f.db != NULL && fe->f.ncursors == 0 && fe->f.stamp == 0 &&
		kvs_in_section(fe->f.db) < 0 &&
		(fe->f.stale || fe->f.cache_pages != pages))
	{
		(void) kvs_close(fe->f.db);
		fe->f.db = NULL;
	}
	if (fe->f.db == NULL)
	{
		kvs_options o;
		kvs		   *db = NULL;
		int			rc;

		if (t->default_file)
		{
			char		dir[MAXPGPATH];

			snprintf(dir, sizeof(dir), "%s/kvs_fdw", DataDir);
			if (MakePGDirectory(dir) != 0 && errno != EEXIST)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not create directory \"%s\": %m", dir)));
		}
		kvs_options_init(&o);
		o.flags = KVS_CREATE;
		o.cache_pages = pages;
		o.fillfactor = t->opts.fillfactor;
		desc = table_descriptor(t, desc);
		o.descriptor = desc->data;
		o.descriptor_len = desc->len;
		o.interrupted = kvs_interrupted;
		rc = kvs_open(t->path, &o, &db);
		if (rc != KVS_OK)
		{
			hash_search(kvs_files, key, HASH_REMOVE, NULL);
			kvs_report_error(rc, NULL, t->path);
		}
		fe->f.db = db;
		strlcpy(fe->f.path, t->path, MAXPGPATH);
		fe->f.cache_pages = pages;
		fe->f.stale = false;
		fe->fillfactor = t->opts.fillfactor;
		fe->gen = ++file_gen_counter;
		*opened = true;
	}
	if (t->opts.fillfactor != 0 && t->opts.fillfactor != fe->fillfactor)
	{
		kvs_check_rc(kvs_set_fillfactor(fe->f.db, t->opts.fillfactor),
					 fe->f.db, t->path);
		fe->fillfactor = t->opts.fillfactor;
	}
	return fe;
}

/*
 * Compare the file's descriptor with the table's.  Returns true if they
 * match (or were made to match: an empty file takes the table's layout; an
 * owned data-directory file left by a dropped table of the same OID is
 * emptied and restamped).  Returns false if a reopen might help (stale
 * handle); raises 42804 for a real mismatch.
 */
static bool
verify_descriptor(KvsTable *t, KvsFileExt *fe, StringInfo ours, bool fresh)
{
	kvs		   *db = fe->f.db;
	kvs_slice	s;
	int			rc;
	bool		ident_ok,
				layout_ok;
	kvs_stats	st;
	char	   *copy;
	size_t		clen;

	rc = kvs_descriptor(db, &s);
	kvs_check_rc(rc, db, t->path);
	ident_ok = s.len >= DESC_LAYOUT_OFF &&
		memcmp(s.data, ours->data, DESC_LAYOUT_OFF) == 0;
	layout_ok = s.len == (size_t) ours->len && is_our_descriptor(s.data, s.len) &&
		memcmp((const char *) s.data + DESC_LAYOUT_OFF, ours->data + DESC_LAYOUT_OFF,
			   ours->len - DESC_LAYOUT_OFF) == 0;
	if (layout_ok && (ident_ok || !t->default_file))
		return true;
	if (!fresh)
		return false;

	/* decide under the write lock, on the current header */
	kvs_check_rc(kvs_begin(db, KVS_WRITE), db, t->path);
	rc = kvs_descriptor(db, &s);
	if (rc != KVS_OK)
		kvs_report_error(rc, db, t->path);
	clen = s.len;
	copy = palloc(clen + 1);
	memcpy(copy, s.data, clen);
	ident_ok = clen >= DESC_LAYOUT_OFF && memcmp(copy, ours->data, DESC_LAYOUT_OFF) == 0;
	layout_ok = clen == (size_t) ours->len && is_our_descriptor(copy, clen) &&
		memcmp(copy + DESC_LAYOUT_OFF, ours->data + DESC_LAYOUT_OFF,
			   ours->len - DESC_LAYOUT_OFF) == 0;
	if (layout_ok && (ident_ok || !t->default_file))
	{
		kvs_check_rc(kvs_end(db), db, t->path);
		return true;
	}
	if (t->default_file && !ident_ok)
	{
		/* an old file of a dropped table with our OID: it is not ours */
		rc = kvs_truncate(db);
		if (rc == KVS_OK)
			rc = kvs_set_descriptor(db, ours->data, ours->len);
		if (rc != KVS_OK)
			kvs_report_error(rc, db, t->path);
		kvs_check_rc(kvs_end(db), db, t->path);
		return true;
	}
	rc = kvs_stats_get(db, &st);
	if (rc != KVS_OK)
		kvs_report_error(rc, db, t->path);
	if (st.records == 0)
	{
		rc = kvs_set_descriptor(db, ours->data, ours->len);
		if (rc != KVS_OK)
			kvs_report_error(rc, db, t->path);
		kvs_check_rc(kvs_end(db), db, t->path);
		return true;
	}
	(void) kvs_end(db);
	layout_error(t, copy, clen);
	return false;				/* not reached */
}

void
kvs_table_open(KvsTable *t)
{
	KvsRelEntry *re;
	KvsFileExt *fe;
	bool		found;
	StringInfoData desc;
	bool		fresh = false;

	if (kvs_files == NULL)
		kvs_handles_init();
	re = hash_search(kvs_rels, &t->relid, HASH_ENTER, &found);
	if (!found)
	{
		re->valid = false;
		re->opts_valid = false;
	}

	desc.data = NULL;			/* built by table_descriptor() on need */
	fe = open_file(t, &desc, &fresh);
	if (!re->valid || re->file_gen != fe->gen || strcmp(re->path, t->path) != 0)
	{
		for (;;)
		{
			if (verify_descriptor(t, fe, table_descriptor(t, &desc), fresh))
				break;
			/* maybe a handle on an old, removed file: reopen once */
			if (fe->f.ncursors > 0 || fe->f.stamp != 0)
			{
				fresh = true;
				continue;
			}
			fe->f.stale = true;
			fe = open_file(t, &desc, &fresh);
			fresh = true;
		}
		re->valid = true;
		re->file_gen = fe->gen;
		strlcpy(re->path, t->path, MAXPGPATH);
	}
	if (desc.data != NULL)
		pfree(desc.data);
	t->file = &fe->f;
}

/*
 * Statement stamps: the first write statement on a file in progress takes a
 * new stamp and owns it (returns true); statements nested inside it (a
 * function called per row) share it.  The owner clears it at its end; an
 * error clears it when the owner's (sub)transaction aborts.
 */
bool
kvs_file_set_stamp(KvsFile *f)
{
	uint64		s = 0;

	if (f->stamp != 0)
		return false;
	kvs_check_rc(kvs_new_stamp(f->db, &s), f->db, f->path);
	kvs_set_stamp(f->db, s);
	f->stamp = s;
	f->stamp_level = GetCurrentTransactionNestLevel();
	f->stamp_writes = 0;
	return true;
}

void
kvs_file_release_stamp(KvsFile *f)
{
	if (f->stamp != 0)
	{
		kvs_set_stamp(f->db, 0);
		f->stamp = 0;
	}
}

/*
 * Every path that writes rows (or truncates) reports here, after the write:
 * it counts toward the statement stamp in force (see KvsFile.stamp_writes)
 * and marks the transaction as one that cannot be PREPAREd.
 */
void
kvs_note_writes(KvsFile *f, uint64 nrows)
{
	if (f->stamp != 0)
		f->stamp_writes += nrows;
	xact_wrote = true;
}

void
kvs_foreach_file(void (*fn) (KvsFile *f, void *arg), void *arg)
{
	HASH_SEQ_STATUS st;
	KvsFileExt *fe;

	if (kvs_files == NULL)
		return;
	hash_seq_init(&st, kvs_files);
	while ((fe = hash_seq_search(&st)) != NULL)
		if (fe->f.db != NULL)
			fn(&fe->f, arg);
}

bool
kvs_is_kvs_table(Relation rel)
{
	FdwRoutine *r;

	if (rel->rd_rel->relkind != RELKIND_FOREIGN_TABLE)
		return false;
	r = GetFdwRoutineForRelation(rel, false);
	return r != NULL && r->GetForeignRelSize == kvsGetForeignRelSize;
}

/*
 * Called (through the sql_drop event trigger) for each dropped foreign
 * table: remember its data-directory file for removal at commit.  The
 * relation must really be gone, so nobody can aim this at a live table.
 */
void
kvs_forget_dropped(Oid relid)
{
	char		path[MAXPGPATH];
	struct stat sb;
	MemoryContext old;
	PendingDrop *pd;

	if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("cannot remove the file of a table that still exists")));
	kvs_default_path(MyDatabaseId, relid, path);
	if (stat(path, &sb) != 0)
		return;
	if (kvs_files == NULL)
		kvs_handles_init();
	old = MemoryContextSwitchTo(TopTransactionContext);
	pd = palloc0(sizeof(PendingDrop));
	pd->relid = relid;
	pd->level = GetCurrentTransactionNestLevel();
	strlcpy(pd->path, path, MAXPGPATH);
	pending_drops = lappend(pending_drops, pd);
	MemoryContextSwitchTo(old);
}
