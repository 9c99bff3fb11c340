/*
 * handle.c - the per-backend cache of open kvs files, and their lifecycle.
 *
 * One kvs* per file path in this backend, opened with KVS_CREATE on first
 * use, with a share of the kvs_fdw.cache_size budget in 4 KiB frames (see
 * budget_share), an interrupt hook and a lock-wait hook (the wait event).
 * An explicit filename of a table not
 * owned by a superuser is refused at every open if it leads into the data
 * directory (kvs_table_check_file).
 * The file header's descriptor records which table the file belongs to
 * (database OID, table OID, the OID of the table's row type, so a reused
 * table OID never adopts an old file; not pg_class.xmin, which GRANT and
 * ALTER change) and the row layout (live columns' type OIDs and typmods, the
 * key's position); a table whose layout differs from its non-empty file gets
 * 42804 naming the column, an empty file takes the table's layout.  When
 * they fit, the column names and type names follow (for IMPORT FOREIGN
 * SCHEMA, see DESC_VERSION_NAMES); they never decide whether a table can
 * read a file.
 *
 * Layouts and ALTER.  A fresh layout (as 0.1.0 wrote it) lists the table's
 * live columns in attnum order.  Before an ALTER that adds, drops or retypes
 * columns of a table with rows, kvs_prepare_alter() rewrites it as a mapped
 * layout: the same columns plus each one's attnum and length.  Nothing about
 * the records changes, so that write is safe even if the ALTER then rolls
 * back.  At the first use after the ALTER has committed (under the write
 * lock) match_layout() brings a mapped layout up to date: columns dropped
 * since stay in it, marked dropped (old records still hold them; new ones
 * write them as NULL), columns added since are appended (records written
 * before hold fewer columns, and read the added ones as missing: see
 * rowcodec.c), and a type change that needs no rewrite (varchar(10) ->
 * varchar(20) or text) is recorded.  Any other change is refused when the
 * ALTER ends (alter.c), so a schema change does not lock a table out.  Only
 * the table the file belongs to (its identity) moves the layout on; another
 * table over the same explicit file must match it column for column.
 *
 * Also here: the per-relation cache of table options (dropped by relcache
 * and pg_foreign_table invalidations), statement stamps (see
 * kvs_file_set_stamp), and ending sections/stamps left open by an error.
 *
 * DROP FOREIGN TABLE: the extension's sql_drop event trigger calls
 * kvs_fdw_forget(oid) for each dropped foreign table; the data-directory file
 * is removed when the transaction commits, kept if it aborts.  Explicit
 * filenames are never removed.  Commands that drop the extension itself
 * (and its sql_drop trigger) reach the same removal through orphans.c.
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "common/file_perm.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "utils/wait_event.h"

#include "kvs_fdw.h"

/*
 * Descriptor: magic, version byte, 0; identity (database, table, row type
 * OIDs); u16 column count n (key and dropped columns included), u16 index of
 * the key; n x (u32 type OID, i32 typmod).  A mapped layout (after ALTER)
 * has DESC_MAPPED set in the count and adds n x (i16 attnum, negative when
 * the column is dropped; i16 typlen).  The flag is in
 * the count, not the version byte, so that kvs_fdw 0.1.0, which compares the
 * first 20 bytes to decide whether a data-directory file is its table's (and
 * empties it if not), refuses such a file as a damaged layout instead.
 *
 * Version 2 is version 1 followed by the names trailer, for IMPORT FOREIGN
 * SCHEMA (import.c): per column of the layout (dropped ones too), its name,
 * NUL, its type as format_type_extended prints it schema-qualified with its
 * typmod, NUL, then a byte 1 and the column's "missing" option value, NUL,
 * or a byte 0 (a dropped column: two empty strings and 0).  The trailer is
 * written only when the whole descriptor still fits in KVS_MAX_DESCRIPTOR
 * (else version 1), so it never lowers the column limits, and it is no part
 * of any layout comparison: only the file's own table writes it (brought up
 * to date at open, like the layout), and a table over the file with other
 * column names reads it as before.
 */
#define DESC_MAGIC		"KVSFDW"
#define DESC_VERSION	1		/* the layout alone */
#define DESC_VERSION_NAMES 2	/* the layout, then the names trailer */
#define DESC_MAPPED		0x8000
#define DESC_IDENT_OFF	8
#define DESC_IDENT_LEN	12		/* database, table, row type OIDs */
#define DESC_LAYOUT_OFF (DESC_IDENT_OFF + DESC_IDENT_LEN)
#define DESC_COLS_OFF	(DESC_LAYOUT_OFF + 4)

typedef struct KvsRelEntry
{
	Oid			relid;			/* hash key */
	bool		valid;			/* descriptor verified for file_gen */
	uint64		file_gen;
	MemoryContext layout_cxt;	/* holds layout, or NULL */
	KvsLayout  *layout;			/* valid: how records map, NULL: 1:1 */
	char		path[MAXPGPATH];
	bool		opts_valid;		/* opts below are current */
	KvsTableOptions opts;		/* filename points to opt_filename */
	char		opt_filename[MAXPGPATH];
	bool		dpath_valid;	/* dpath below is set */
	char		dpath[MAXPGPATH];	/* its data-directory file's path */
	struct KvsFileExt *fe;		/* the handle it used last, if its entry_id */
	uint64		fe_id;			/* is still this (open_file) */
} KvsRelEntry;

typedef struct PendingDrop
{
	int			level;			/* transaction nest level that dropped it */
	char		path[MAXPGPATH];
} PendingDrop;

static HTAB *kvs_files = NULL;
static HTAB *kvs_rels = NULL;
static List *pending_drops = NIL;	/* in TopTransactionContext */

static uint64 file_gen_counter = 0;

typedef struct KvsFileExt
{
	KvsFile		f;
	uint64		gen;
	int			fillfactor;
	uint64		entry_id;		/* tells a reused hash entry from its old self */
	uint64		last_used;		/* open_clock at its last kvs_table_open */
	uint32		budget;			/* kvs_fdw.cache_size (pages) it was sized for */
	int			policy;			/* kvs_fdw.cache_policy it was opened with */
	int			nrefs;			/* executor nodes holding it (kvs_table_hold) */
	bool		guarded;		/* a non-superuser's table uses it: see
								 * kvs_table_check_file */
} KvsFileExt;

/* A hold on a handle, released when the holder's memory context goes. */
typedef struct KvsHold
{
	MemoryContextCallback cb;
	KvsFileExt *fe;
	uint64		entry_id;
} KvsHold;


static uint64 entry_id_counter = 0;
static uint64 open_clock = 0;	/* counts kvs_table_open calls */

/* handles used within this many table opens count as wanted (budget_share) */
#define RECENT_OPENS	100
#define MIN_FRAMES		8		/* the engine's minimum pool */

/*
 * Forget the cached options and verification of table relid (InvalidOid:
 * of all), or of the table whose pg_foreign_table row has syscache hash
 * hashvalue (0: none).
 */
static void
forget_rels(Oid relid, uint32 hashvalue)
{
	HASH_SEQ_STATUS st;
	KvsRelEntry *re;

	if (kvs_rels == NULL)
		return;
	hash_seq_init(&st, kvs_rels);
	while ((re = hash_seq_search(&st)) != NULL)
		if ((hashvalue == 0 && (relid == InvalidOid || re->relid == relid)) ||
			(hashvalue != 0 &&
			 GetSysCacheHashValue1(FOREIGNTABLEREL, ObjectIdGetDatum(re->relid)) == hashvalue))
		{
			re->valid = false;
			re->opts_valid = false;
		}
}

static void
kvs_rel_inval(Datum arg, Oid relid)
{
	forget_rels(relid, 0);
}

/*
 * pg_foreign_table changed (ALTER FOREIGN TABLE ... OPTIONS): forget the
 * table whose row it was (hashvalue 0: all).  Not every table: another
 * table's CREATE would make each backend verify its files' descriptors
 * again, each in a read section that waits for any writer of the file.
 */
static void
kvs_ftable_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	forget_rels(InvalidOid, hashvalue);
}

/*
 * Has this transaction written a kvs file (a write section, a statement
 * stamp) since the last reset of every file?  If not, its commit has
 * nothing to reset: every read section ends before its statement returns,
 * or with an error, whose abort resets all files anyway.
 */
static bool files_written = false;

/*
 * Abort sections left over by an error or a cancel (kvs_abort: nothing of
 * such a section reaches the file), and clear the statement stamps owned
 * by statements of transaction nest level >= level (0: all).
 */
static void
reset_files_after_error(int level)
{
	HASH_SEQ_STATUS st;
	KvsFileExt *fe;

	if (kvs_files == NULL)
		return;
	if (level == 0)
		files_written = false;
	hash_seq_init(&st, kvs_files);
	while ((fe = hash_seq_search(&st)) != NULL)
	{
		if (fe->f.db == NULL)
			continue;
		if (kvs_in_section(fe->f.db) >= 0)
			(void) kvs_abort(fe->f.db);
		/* the (sub)transaction's end releases the writers' lock itself */
		kvs_writer_forget(&fe->f.wlock);
		if (fe->f.stamp != 0 && fe->f.stamp_level >= level)
			fe->f.stamp = 0;
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
	{
		kvs_trace_handle(fe->f.db, true);
		(void) kvs_close(fe->f.db);
	}
	fe->f.db = NULL;
	fe->entry_id = 0;			/* no KvsRelEntry.fe takes it for itself */
	hash_search(kvs_files, key, HASH_REMOVE, NULL);
}

/*
 * The transaction's kvs writes (pending.c) follow it: txn.c applies them at
 * pre-commit and publishes them at commit; an abort discards them with the
 * write sections left open (reset_files_after_error).
 */
static void
kvs_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			kvs_txn_pre_prepare();
			kvs_orphans_pre_commit();	/* may add to pending_drops */
			if (pending_drops != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that dropped a kvs_fdw foreign table")));
			break;
		case XACT_EVENT_PRE_COMMIT:
			kvs_txn_pre_commit();
			kvs_orphans_pre_commit();
			break;
		case XACT_EVENT_PREPARE:
			/* nothing was pending (PRE_PREPARE): only forget the empty sets */
			kvs_txn_abort();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			kvs_txn_commit();
			if (files_written)
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
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* the engine always ends a lock wait it reported; be sure anyway */
			pgstat_report_wait_end();
			reset_files_after_error(0);
			kvs_txn_abort();
			pending_drops = NIL;
			kvs_orphans_reset();
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

		pgstat_report_wait_end();	/* as at top-level abort */
		reset_files_after_error(level);
		kvs_pending_subabort(mySubid);
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

/* strlcpy of a path (PG's strlcpy walks it a byte at a time) */
static inline void
copy_path(char *dst, const char *src)
{
	size_t		n = strnlen(src, MAXPGPATH - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * The table's entry in kvs_rels (made on first use; never removed, and a
 * dynahash entry never moves, so the last one asked for is kept at hand).
 */
static KvsRelEntry *
rel_entry(Oid relid)
{
	static KvsRelEntry *last = NULL;
	KvsRelEntry *re;
	bool		found;

	if (last != NULL && last->relid == relid)
		return last;

	if (kvs_rels == NULL)
		kvs_handles_init();
	re = hash_search(kvs_rels, &relid, HASH_ENTER, &found);
	if (!found)
	{
		re->valid = false;
		re->opts_valid = false;
		re->layout_cxt = NULL;
		re->layout = NULL;
		re->dpath_valid = false;
		re->fe = NULL;
	}
	last = re;
	return re;
}

/* The table's options, read from the catalogs once per invalidation. */
static KvsTableOptions *
cached_options(KvsRelEntry *re, Relation rel)
{
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

/*
 * Every statement that reads or writes a table starts here (and in
 * kvs_table_open), so nothing in it asks the catalogs or formats a path
 * more than once per table and backend: the options are cached until an
 * invalidation, the data-directory path (database and table OIDs, both
 * fixed for the entry) for good.
 */
void
kvs_table_init(KvsTable *t, Relation rel)
{
	KvsRelEntry *re;

	memset(t, 0, sizeof(*t));
	t->relid = RelationGetRelid(rel);
	re = rel_entry(t->relid);
	t->rel_entry = re;
	t->relname = pstrdup(RelationGetRelationName(rel));
	t->owner = rel->rd_rel->relowner;
	t->tupdesc = RelationGetDescr(rel);
	t->opts = *cached_options(re, rel);
	if (t->opts.filename)
		t->opts.filename = pstrdup(t->opts.filename);
	t->default_file = (t->opts.filename == NULL);
	if (t->default_file)
	{
		if (!re->dpath_valid)
		{
			kvs_default_path(MyDatabaseId, t->relid, re->dpath);
			re->dpath_valid = true;
		}
		copy_path(t->path, re->dpath);
	}
	else
		copy_path(t->path, t->opts.filename);
}

/*
 * May this table use its file?  An explicit filename that leads, after
 * symbolic links, into the data directory or a tablespace is refused unless
 * the table's owner is a superuser.  The validator checks the user who sets
 * the option; this checks whoever owns the table now (ALTER ... OWNER TO
 * runs no validator) and what the path resolves to now (a symbolic link may
 * have been swapped since), before every kvs_open() and whenever a table
 * adopts a handle another table opened.  Grantees of a superuser's table use
 * it as its owner allows.
 */
void
kvs_table_check_file(KvsTable *t)
{
	if (t->default_file || superuser_arg(t->owner))
		return;
	if (kvs_path_is_internal(t->path))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("kvs file \"%s\" of foreign table \"%s\" is inside the data directory",
						t->path, t->relname),
				 errdetail("The path leads (after symbolic links) into the data directory or a tablespace, and the table's owner \"%s\" is not a superuser.",
						   GetUserNameFromId(t->owner, false)),
				 errhint("Point option \"filename\" at a file outside the data directory, or have a superuser own the table.")));
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

/*
 * kvs_fdw.cache_size is one budget of frames for all the kvs files a backend
 * has open.  STOPGAP until the engine's shared buffer pool: each handle still
 * has a pool of its own, sized when it is opened, so the FDW keeps the sum of
 * their frames within the budget.  A file being opened gets a fair share
 * (budget / the number of handles wanted: in use, held by an executor node,
 * or used within the last RECENT_OPENS table opens), and room is made for it
 * by closing idle handles, least recently used first, oversized ones (more
 * than the share) first; an idle handle that an executor node holds (a scan
 * whose cursor is not open yet) is not closed but reopened in place with the
 * share.  Idle: no cursor, no statement stamp, no section.  A handle in use
 * (or with writes pending in this transaction) is never touched, and every file has the engine's minimum of 8 frames, so
 * the sum exceeds the budget only while more than budget / 8 files are in
 * use at once.
 */
static bool
handle_idle(KvsFileExt *fe)
{
	return fe->f.db != NULL && fe->f.ncursors == 0 && fe->f.stamp == 0 &&
		fe->f.pending == NULL && kvs_in_section(fe->f.db) < 0;
}

static bool
handle_wanted(KvsFileExt *fe)
{
	return (fe->f.db != NULL && !handle_idle(fe)) || fe->nrefs > 0 ||
		fe->last_used + RECENT_OPENS >= open_clock;
}

/*
 * Close an idle handle nobody holds.  Its entry stays (remembering when it
 * was last used, so it still counts as wanted) until budget_share finds it
 * neither open nor recent.
 */
static void
close_handle(KvsFileExt *fe)
{
	Assert(fe->nrefs == 0);
	kvs_trace_handle(fe->f.db, true);
	(void) kvs_close(fe->f.db);
	fe->f.db = NULL;
}

/*
 * Reopen an idle, held handle with fewer frames.  The holder keeps using
 * fe->f.db, so the new handle must be on the same file: it is opened before
 * the old one is closed, without KVS_CREATE, and kept only if its descriptor
 * is the old one's; a guarded path that now leads into the data directory is
 * not reopened at all.  Never raises: on any doubt the old handle stays.
 */
static bool
shrink_handle(KvsFileExt *fe, uint32 pages)
{
	kvs_options o;
	kvs		   *db = NULL;
	kvs_slice	olds,
				news;
	char	   *oldd;
	bool		same;

	if (fe->guarded && kvs_path_is_internal(fe->f.path))
		return false;
	if (kvs_descriptor(fe->f.db, &olds) != KVS_OK)
		return false;
	kvs_host_options(&o, 0, pages);
	o.fillfactor = fe->fillfactor;
	if (kvs_open(fe->f.path, &o, &db) != KVS_OK)
		return false;
	oldd = palloc(olds.len + 1);
	memcpy(oldd, olds.data, olds.len);
	same = kvs_descriptor(db, &news) == KVS_OK && news.len == olds.len &&
		memcmp(news.data, oldd, olds.len) == 0;
	pfree(oldd);
	if (!same)
	{
		(void) kvs_close(db);
		return false;
	}
	kvs_trace_handle(fe->f.db, true);
	(void) kvs_close(fe->f.db);
	fe->f.db = db;
	kvs_trace_handle(db, false);
	elog(DEBUG2, "kvs_fdw: reopened \"%s\" with %u frames instead of %u (cache budget)",
		 fe->f.path, pages, fe->f.cache_pages);
	fe->f.cache_pages = pages;
	fe->policy = kvs_fdw_cache_policy;
	return true;
}

static int
cmp_lru(const void *a, const void *b)
{
	const KvsFileExt *x = *(KvsFileExt *const *) a;
	const KvsFileExt *y = *(KvsFileExt *const *) b;

	return (x->last_used > y->last_used) - (x->last_used < y->last_used);
}

/*
 * Frames for self, about to be (re)opened: its share of the budget, after
 * making room among the other handles.  Handles sized for another budget
 * (the setting changed) are closed when idle and nobody holds them.
 */
static uint32
budget_share(KvsFileExt *self, uint32 budget)
{
	HASH_SEQ_STATUS st;
	KvsFileExt *fe;
	KvsFileExt **idle;
	int			nidle = 0,
				i;
	uint64		used = 0;
	uint32		wanted = 1,
				share;

	idle = palloc(sizeof(KvsFileExt *) * (hash_get_num_entries(kvs_files) + 1));
	hash_seq_init(&st, kvs_files);
	while ((fe = hash_seq_search(&st)) != NULL)
	{
		if (fe == self)
			continue;
		if (fe->f.db != NULL && handle_idle(fe) && fe->nrefs == 0 &&
			fe->budget != budget)
			close_handle(fe);
		if (fe->f.db == NULL)
		{
			/* closed: wanted if used lately, else forgotten */
			if (handle_wanted(fe))
				wanted++;
			else if (fe->nrefs == 0)
			{
				fe->entry_id = 0;
				hash_search(kvs_files, fe->f.path, HASH_REMOVE, NULL);
			}
			continue;
		}
		used += fe->f.cache_pages;
		if (handle_wanted(fe))
			wanted++;
		if (handle_idle(fe))
			idle[nidle++] = fe;
	}
	share = Max(MIN_FRAMES, budget / wanted);
	if (used + share > budget)
	{
		qsort(idle, nidle, sizeof(KvsFileExt *), cmp_lru);
		/* oversized idle handles first: closed, or shrunk if held */
		for (i = 0; i < nidle && used + share > budget; i++)
		{
			uint32		had = idle[i]->f.cache_pages;

			if (had <= share)
				continue;
			if (idle[i]->nrefs == 0)
			{
				close_handle(idle[i]);
				used -= had;
			}
			else if (shrink_handle(idle[i], share))
				used -= had - share;
		}
		/* then any idle handle nobody holds */
		for (i = 0; i < nidle && used + share > budget; i++)
		{
			if (idle[i]->f.db == NULL || idle[i]->nrefs > 0)
				continue;
			used -= idle[i]->f.cache_pages;
			close_handle(idle[i]);
		}
		if (used + share > budget)
			share = (uint32) Max((uint64) MIN_FRAMES,
								 budget > used ? budget - used : 0);
	}
	pfree(idle);
	return share;
}

static void
release_hold(void *arg)
{
	KvsHold    *h = (KvsHold *) arg;

	if (h->fe->entry_id == h->entry_id && h->fe->nrefs > 0)
		h->fe->nrefs--;
}

/*
 * An executor node keeps using t->file until cxt (its state's context) is
 * reset or deleted: its handle is then never closed, only shrunk in place
 * (budget_share).  Taken right after kvs_table_open.
 */
void
kvs_table_hold(KvsTable *t, MemoryContext cxt)
{
	KvsFileExt *fe = (KvsFileExt *) t->file;
	KvsHold    *h = MemoryContextAlloc(cxt, sizeof(KvsHold));

	h->fe = fe;
	h->entry_id = fe->entry_id;
	h->cb.func = release_hold;
	h->cb.arg = h;
	fe->nrefs++;
	MemoryContextRegisterResetCallback(cxt, &h->cb);
}

static void add_names(KvsTable *t, StringInfo d);

/* Build the descriptor of a table: identity, layout, names if they fit. */
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
	add_names(t, d);
}

static bool
is_our_descriptor(const char *p, size_t len)
{
	return len >= DESC_COLS_OFF && memcmp(p, DESC_MAGIC, 6) == 0 &&
		(p[6] == DESC_VERSION || p[6] == DESC_VERSION_NAMES);
}

/*
 * A descriptor's identity (false if the blob is not ours), and rewriting its
 * database OID: CREATE DATABASE ... TEMPLATE copies a file to another
 * database (utility.c).  The layout part is left as it is.
 */
bool
kvs_descriptor_identity(const void *desc, size_t len, Oid *dboid,
						Oid *relid, Oid *reltype)
{
	uint32		u[3];

	if (!is_our_descriptor(desc, len))
		return false;
	memcpy(u, (const char *) desc + DESC_IDENT_OFF, sizeof(u));
	*dboid = u[0];
	*relid = u[1];
	*reltype = u[2];
	return true;
}

bool
kvs_descriptor_set_database(void *desc, size_t len, Oid dboid)
{
	uint32		u = dboid;

	if (!is_our_descriptor(desc, len))
		return false;
	memcpy((char *) desc + DESC_IDENT_OFF, &u, 4);
	return true;
}

/* The length of a descriptor's (is_our_descriptor) layout part. */
static size_t
layout_len(const char *fd)
{
	uint16		n16;

	memcpy(&n16, fd + DESC_LAYOUT_OFF, 2);
	return DESC_COLS_OFF + (size_t) (n16 & ~DESC_MAPPED) *
		((n16 & DESC_MAPPED) ? 12 : 8);
}

/* Do two descriptors (is_our_descriptor) hold the same layout, names aside? */
static bool
same_layout_part(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t		l = layout_len(a);

	return l == layout_len(b) && l <= alen && l <= blen &&
		memcmp(a + DESC_LAYOUT_OFF, b + DESC_LAYOUT_OFF, l - DESC_LAYOUT_OFF) == 0;
}

/* Is the file's descriptor (of any version) one of the table "ours" is of? */
static bool
same_identity(const char *fd, size_t flen, StringInfo ours)
{
	return flen >= DESC_LAYOUT_OFF && memcmp(fd, DESC_MAGIC, 6) == 0 &&
		memcmp(fd + DESC_IDENT_OFF, ours->data + DESC_IDENT_OFF, DESC_IDENT_LEN) == 0;
}

/* Does the file's descriptor hold the fresh layout "ours" builds (names aside)? */
static bool
same_layout(const char *fd, size_t flen, StringInfo ours)
{
	return is_our_descriptor(fd, flen) &&
		same_layout_part(fd, flen, ours->data, ours->len);
}

/* One column of a file's layout. */
typedef struct StoredCol
{
	Oid			typid;
	int32		typmod;
	AttrNumber	attnum;			/* mapped: the owner's attnum; else 0 */
	bool		dropped;		/* mapped: dropped from the owner */
	int16		typlen;			/* mapped; else 0 */
} StoredCol;

/* Why a table cannot read its file. */
typedef struct LayoutMismatch
{
	int			code;
	char	   *msg;
	char	   *detail;			/* or NULL */
} LayoutMismatch;

/* The mismatch as sentences, for an errdetail or a problem report. */
static char *
mismatch_sentences(LayoutMismatch *m)
{
	return psprintf("%c%s.%s%s", pg_toupper((unsigned char) m->msg[0]), m->msg + 1,
					m->detail ? " " : "", m->detail ? m->detail : "");
}

static bool
mismatch(LayoutMismatch *m, int code, char *msg, char *detail)
{
	m->code = code;
	m->msg = msg;
	m->detail = detail;
	return false;
}

/* Is a descriptor (is_our_descriptor) a mapped one? */
static bool
is_mapped(const char *fd)
{
	uint16		n16;

	memcpy(&n16, fd + DESC_LAYOUT_OFF, 2);
	return (n16 & DESC_MAPPED) != 0;
}

/* The columns of a descriptor (is_our_descriptor), or NULL if damaged. */
static StoredCol *
parse_layout(const char *fd, size_t flen, int *n, int *key)
{
	uint16		n16,
				k16;
	bool		mapped = is_mapped(fd);
	StoredCol  *c;
	int			i;

	memcpy(&n16, fd + DESC_LAYOUT_OFF, 2);
	memcpy(&k16, fd + DESC_LAYOUT_OFF + 2, 2);
	n16 &= ~DESC_MAPPED;
	if ((size_t) DESC_COLS_OFF + (size_t) n16 * (mapped ? 12 : 8) > flen)
		return NULL;
	c = palloc0(sizeof(StoredCol) * (n16 + 1));
	for (i = 0; i < n16; i++)
	{
		memcpy(&c[i].typid, fd + DESC_COLS_OFF + i * 8, 4);
		memcpy(&c[i].typmod, fd + DESC_COLS_OFF + i * 8 + 4, 4);
		if (mapped)
		{
			int16		a;
			const char *p = fd + DESC_COLS_OFF + n16 * 8 + i * 4;

			memcpy(&a, p, 2);
			memcpy(&c[i].typlen, p + 2, 2);
			c[i].dropped = (a < 0);
			c[i].attnum = (a < 0) ? -a : a;
		}
	}
	*n = n16;
	*key = k16;
	return c;
}

/* A mapped descriptor: ident's identity, then the columns. */
static void
serialize_layout(StringInfo d, const char *ident, StoredCol *c, int n, int key)
{
	char		ver[2] = {DESC_VERSION, 0};
	uint16		u16;
	int			i;

	appendBinaryStringInfo(d, DESC_MAGIC, 6);
	appendBinaryStringInfo(d, ver, 2);
	appendBinaryStringInfo(d, ident + DESC_IDENT_OFF, DESC_IDENT_LEN);
	u16 = (uint16) n | DESC_MAPPED;
	appendBinaryStringInfo(d, (char *) &u16, 2);
	u16 = (uint16) key;
	appendBinaryStringInfo(d, (char *) &u16, 2);
	for (i = 0; i < n; i++)
	{
		appendBinaryStringInfo(d, (char *) &c[i].typid, 4);
		appendBinaryStringInfo(d, (char *) &c[i].typmod, 4);
	}
	for (i = 0; i < n; i++)
	{
		int16		a = c[i].dropped ? -c[i].attnum : c[i].attnum;

		appendBinaryStringInfo(d, (char *) &a, 2);
		appendBinaryStringInfo(d, (char *) &c[i].typlen, 2);
	}
}

/* The "missing" option of column attnum of table relid, or NULL. */
static char *
missing_option(Oid relid, AttrNumber attnum)
{
	ListCell   *lc;

	foreach(lc, GetForeignColumnOptions(relid, attnum))
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "missing") == 0)
			return defGetString(def);
	}
	return NULL;
}

/*
 * Replace whatever follows the layout of d (a descriptor of table t's file,
 * is_our_descriptor) with t's names trailer (see DESC_VERSION_NAMES), or
 * with nothing when it would not fit.  Column k of a mapped layout is the
 * table's column of its attnum; of a fresh one, the table's k-th live
 * column.
 */
static void
add_names(KvsTable *t, StringInfo d)
{
	TupleDesc	td = t->tupdesc;
	StringInfoData tr;
	StoredCol  *c;
	int			n,
				key,
				k,
				i = 0;
	bool		mapped = is_mapped(d->data);

	c = parse_layout(d->data, d->len, &n, &key);
	if (c == NULL)
		return;
	d->len = (int) layout_len(d->data);
	d->data[d->len] = '\0';
	d->data[6] = DESC_VERSION;
	initStringInfo(&tr);
	for (k = 0; k < n; k++)
	{
		Form_pg_attribute att = NULL;
		char	   *miss;

		if (mapped)
		{
			if (!c[k].dropped && c[k].attnum >= 1 && c[k].attnum <= td->natts &&
				!TupleDescAttr(td, c[k].attnum - 1)->attisdropped)
				att = TupleDescAttr(td, c[k].attnum - 1);
		}
		else
		{
			while (i < td->natts && TupleDescAttr(td, i)->attisdropped)
				i++;
			if (i < td->natts)
				att = TupleDescAttr(td, i++);
		}
		if (att == NULL)
		{
			appendBinaryStringInfo(&tr, "\0\0\0", 3);
			continue;
		}
		appendStringInfoString(&tr, NameStr(att->attname));
		appendStringInfoChar(&tr, '\0');
		appendStringInfoString(&tr,
							   format_type_extended(c[k].typid, c[k].typmod,
													FORMAT_TYPE_TYPEMOD_GIVEN |
													FORMAT_TYPE_FORCE_QUALIFY));
		appendStringInfoChar(&tr, '\0');
		miss = mapped ? missing_option(t->relid, att->attnum) : NULL;
		appendStringInfoChar(&tr, miss != NULL ? 1 : 0);
		if (miss != NULL)
		{
			appendStringInfoString(&tr, miss);
			appendStringInfoChar(&tr, '\0');
		}
		if (d->len + tr.len > KVS_MAX_DESCRIPTOR)
			break;
	}
	if (d->len + tr.len <= KVS_MAX_DESCRIPTOR)
	{
		appendBinaryStringInfo(d, tr.data, tr.len);
		d->data[6] = DESC_VERSION_NAMES;
	}
	pfree(tr.data);
	pfree(c);
}

/* One trailer string at *p (below end), or NULL if damaged. */
static const char *
trailer_string(const char **p, const char *end)
{
	const char *s = *p;
	const char *z = memchr(s, '\0', end - s);

	if (z == NULL)
		return NULL;
	*p = z + 1;
	return s;
}

/*
 * The live columns of a file's descriptor, for IMPORT FOREIGN SCHEMA: each
 * with its type OID and typmod, and, if the descriptor has the names
 * trailer, its name, type name and "missing" value.  NULL with *why if the
 * descriptor is not kvs_fdw's or is damaged.
 */
KvsFileColumn *
kvs_descriptor_columns(const char *fd, size_t flen, int *ncols, bool *mapped,
					   bool *named, char **why)
{
	StoredCol  *c;
	KvsFileColumn *out;
	int			n,
				key,
				k,
				live = 0;
	const char *p,
			   *end = fd + flen;

	*why = NULL;
	if (flen < DESC_LAYOUT_OFF || memcmp(fd, DESC_MAGIC, 6) != 0)
	{
		*why = pstrdup("Its header holds no kvs_fdw table description.");
		return NULL;
	}
	if (!is_our_descriptor(fd, flen))
	{
		*why = psprintf("Its kvs_fdw table description is of version %d, this kvs_fdw reads versions %d and %d.",
						(unsigned char) fd[6], DESC_VERSION, DESC_VERSION_NAMES);
		return NULL;
	}
	c = parse_layout(fd, flen, &n, &key);
	if (c == NULL || key >= n || c[key].dropped)
	{
		*why = pstrdup("Its row layout is damaged.");
		return NULL;
	}
	*mapped = is_mapped(fd);
	*named = (fd[6] == DESC_VERSION_NAMES);
	out = palloc0(sizeof(KvsFileColumn) * (n + 1));
	p = fd + layout_len(fd);
	for (k = 0; k < n; k++)
	{
		const char *name = NULL,
				   *type = NULL,
				   *miss = NULL;

		if (*named)
		{
			if ((name = trailer_string(&p, end)) == NULL ||
				(type = trailer_string(&p, end)) == NULL || p >= end ||
				(*p++ == 1 && (miss = trailer_string(&p, end)) == NULL))
			{
				*why = pstrdup("Its column names are damaged.");
				return NULL;
			}
			if (!c[k].dropped && (name[0] == '\0' || type[0] == '\0'))
			{
				*why = pstrdup("Its column names are damaged.");
				return NULL;
			}
		}
		if (c[k].dropped)
			continue;
		out[live].name = name ? pstrdup(name) : NULL;
		out[live].type = type ? pstrdup(type) : NULL;
		out[live].missing = miss ? pstrdup(miss) : NULL;
		out[live].typid = c[k].typid;
		out[live].typmod = c[k].typmod;
		out[live].key = (k == key);
		live++;
	}
	*ncols = live;
	return out;
}

/*
 * Can values stored as type ftyp/fmod be read as ttyp/tmod unchanged?  What
 * heap's ALTER COLUMN TYPE does without a rewrite (ATColumnChangeRequiresRewrite
 * in tablecmds.c): the assignment coercion, simplified, is the column itself
 * under relabelings and constraint-free domains.  So varchar(10) ->
 * varchar(20) or text passes, varchar(20) -> varchar(10) (old values might
 * not fit) and int -> bigint do not.  Heap's timestamp <-> timestamptz case
 * (no rewrite when the session's time zone is UTC) is left out: the answer
 * must not depend on the session that first uses the table.
 */
static bool
binary_coercible_change(Oid ftyp, int32 fmod, Oid ttyp, int32 tmod)
{
	int16		flen,
				tlen;
	bool		fbyval,
				tbyval;
	Node	   *e;

	if (!SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(ftyp)))
		return false;
	get_typlenbyval(ftyp, &flen, &fbyval);
	get_typlenbyval(ttyp, &tlen, &tbyval);
	if (flen != tlen || fbyval != tbyval)
		return false;
	e = coerce_to_target_type(NULL,
							  (Node *) makeVar(1, 1, ftyp, fmod,
											   get_typcollation(ftyp), 0),
							  ftyp, ttyp, tmod, COERCION_ASSIGNMENT,
							  COERCE_IMPLICIT_CAST, -1);
	if (e == NULL)
		return false;
	e = (Node *) expression_planner((Expr *) e);
	for (;;)
	{
		if (IsA(e, Var))
			return true;
		else if (IsA(e, RelabelType))
			e = (Node *) ((RelabelType *) e)->arg;
		else if (IsA(e, CoerceToDomain) &&
				 !DomainHasConstraints(((CoerceToDomain *) e)->resulttype))
			e = (Node *) ((CoerceToDomain *) e)->arg;
		else
			return false;
	}
}

/*
 * The value a record written before column att existed reads: its column
 * option "missing" (set by ADD COLUMN ... DEFAULT on a table with rows, see
 * alter.c), else NULL.
 */
static bool
column_missing_value(KvsTable *t, Form_pg_attribute att, Datum *value)
{
	ListCell   *lc;

	foreach(lc, GetForeignColumnOptions(t->relid, att->attnum))
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "missing") == 0)
		{
			Oid			in,
						ioparam;

			getTypeInputInfo(att->atttypid, &in, &ioparam);
			*value = OidInputFunctionCall(in, defGetString(def), ioparam,
										  att->atttypmod);
			return true;
		}
	}
	return false;
}

/*
 * How records with the columns cols (key at index key) map to the table:
 * NULL if one to one.  Missing values only for a mapped layout (a fresh
 * one has none: every record holds every column).
 */
static KvsLayout *
build_plan(KvsTable *t, StoredCol *cols, int *map, int n, int key, bool mapped)
{
	TupleDesc	td = t->tupdesc;
	KvsLayout  *l = palloc0(sizeof(KvsLayout));
	bool		identity = true;
	int			k,
				v = 0,
				live = 0;

	l->ncols = n - 1;
	l->attidx = palloc(sizeof(int16) * n);
	l->attlen = palloc(sizeof(int16) * n);
	l->natts = td->natts;
	l->missing = palloc0(sizeof(Datum) * td->natts);
	l->missing_null = palloc(sizeof(bool) * td->natts);
	memset(l->missing_null, true, sizeof(bool) * td->natts);
	for (k = 0; k < n; k++)
	{
		int			a = map[k];

		if (k == key)
			continue;
		l->attidx[v] = a;
		l->attlen[v] = (a >= 0) ? TupleDescAttr(td, a)->attlen : cols[k].typlen;
		if (a >= 0 && mapped &&
			column_missing_value(t, TupleDescAttr(td, a), &l->missing[a]))
			l->missing_null[a] = false;
		/* one to one: the v-th value column is the v-th live non-key one */
		while (live < td->natts &&
			   (TupleDescAttr(td, live)->attisdropped ||
				live + 1 == t->opts.keyattno))
			live++;
		if (a != live || !l->missing_null[a])
			identity = false;
		live++;
		v++;
	}
	while (live < td->natts &&
		   (TupleDescAttr(td, live)->attisdropped || live + 1 == t->opts.keyattno))
		live++;
	if (live < td->natts)
		identity = false;
	return identity ? NULL : l;
}

/* A copy of l in the current memory context. */
static KvsLayout *
copy_layout(const KvsLayout *l, TupleDesc td)
{
	KvsLayout  *c = palloc(sizeof(KvsLayout));
	int			i;

	*c = *l;
	c->attidx = palloc(sizeof(int16) * Max(l->ncols, 1));
	memcpy(c->attidx, l->attidx, sizeof(int16) * l->ncols);
	c->attlen = palloc(sizeof(int16) * Max(l->ncols, 1));
	memcpy(c->attlen, l->attlen, sizeof(int16) * l->ncols);
	c->missing = palloc0(sizeof(Datum) * l->natts);
	c->missing_null = palloc(sizeof(bool) * l->natts);
	memcpy(c->missing_null, l->missing_null, sizeof(bool) * l->natts);
	for (i = 0; i < l->natts; i++)
		if (!l->missing_null[i])
			c->missing[i] = datumCopy(l->missing[i],
									  TupleDescAttr(td, i)->attbyval,
									  TupleDescAttr(td, i)->attlen);
	return c;
}

static char *
type_mismatch_detail(Form_pg_attribute att, Oid ftyp, int32 fmod)
{
	return psprintf("The table declares type %s, the file stores type %s.",
					format_type_with_typemod(att->atttypid, att->atttypmod),
					format_type_with_typemod(ftyp, fmod));
}

/*
 * Can table t read the records of a file with descriptor fd?  If owner (the
 * file is this table's), a mapped layout follows the table's ALTERs (see
 * the file header comment); otherwise, or for a fresh layout, the
 * table's live columns must be the file's, column for column.  True: *newdesc
 * gets the descriptor brought up to date (the same bytes if nothing changed;
 * the owner's column names too) and *layp how records map (NULL: one to one).  False: *m says why.
 */
static bool
match_layout(KvsTable *t, const char *fd, size_t flen, bool owner,
			 StringInfo newdesc, KvsLayout **layp, LayoutMismatch *m)
{
	TupleDesc	td = t->tupdesc;
	StoredCol  *sc,
			   *out;
	int		   *map;
	bool	   *seen;
	int			n,
				key,
				nout,
				i,
				k;
	bool		mapped;

	if (!is_our_descriptor(fd, flen))
		return mismatch(m, ERRCODE_DATATYPE_MISMATCH,
						psprintf("kvs file \"%s\" of foreign table \"%s\" holds records but no kvs_fdw row layout",
								 t->path, t->relname), NULL);
	sc = parse_layout(fd, flen, &n, &key);
	if (sc == NULL)
		return mismatch(m, ERRCODE_DATA_CORRUPTED,
						psprintf("kvs file \"%s\" has a damaged row layout", t->path),
						NULL);
	mapped = is_mapped(fd);
	out = palloc(sizeof(StoredCol) * (n + td->natts));
	map = palloc(sizeof(int) * (n + td->natts));
	seen = palloc0(sizeof(bool) * td->natts);
	memcpy(out, sc, sizeof(StoredCol) * n);
	nout = n;

	if (!mapped || !owner)
	{
		int			nlive = 0,
					ntab = 0;

		for (k = 0; k < n; k++)
			nlive += !sc[k].dropped;
		k = 0;
		for (i = 0; i < td->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(td, i);

			if (att->attisdropped)
				continue;
			while (k < n && sc[k].dropped)
				map[k++] = -1;
			if (k >= n)
				return mismatch(m, ERRCODE_DATATYPE_MISMATCH,
								psprintf("column \"%s\" of foreign table \"%s\" is not in its kvs file",
										 NameStr(att->attname), t->relname),
								psprintf("Its kvs file stores %d columns.", nlive));
			if (sc[k].typid != att->atttypid || sc[k].typmod != att->atttypmod)
				return mismatch(m, ERRCODE_DATATYPE_MISMATCH,
								psprintf("column \"%s\" of foreign table \"%s\" does not match its kvs file",
										 NameStr(att->attname), t->relname),
								type_mismatch_detail(att, sc[k].typid, sc[k].typmod));
			if ((k == key) != (i + 1 == t->opts.keyattno))
				return mismatch(m, ERRCODE_DATATYPE_MISMATCH,
								psprintf("column \"%s\" of foreign table \"%s\" does not match its kvs file",
										 NameStr(att->attname), t->relname),
								pstrdup("The table and the file disagree on whether it is the key column."));
			map[k++] = i;
			ntab++;
		}
		while (k < n && sc[k].dropped)
			map[k++] = -1;
		if (k < n)
			return mismatch(m, ERRCODE_DATATYPE_MISMATCH,
							psprintf("foreign table \"%s\" has fewer columns than its kvs file",
									 t->relname),
							psprintf("Its kvs file stores %d columns, the table has %d.",
									 nlive, ntab));
		if (newdesc != NULL)
			appendBinaryStringInfo(newdesc, fd, flen);
	}
	else
	{
		AttrNumber	maxatt = 0;

		for (k = 0; k < n; k++)
		{
			AttrNumber	a = sc[k].attnum;
			Form_pg_attribute att;

			map[k] = -1;
			maxatt = Max(maxatt, a);
			if (a < 1 || a > td->natts)
				return mismatch(m, ERRCODE_DATATYPE_MISMATCH,
								psprintf("foreign table \"%s\" has fewer columns than its kvs file",
										 t->relname),
								psprintf("Its kvs file stores a column number %d.", a));
			att = TupleDescAttr(td, a - 1);
			seen[a - 1] = true;
			if (att->attisdropped)
			{
				if (k == key)
					return mismatch(m, ERRCODE_DATATYPE_MISMATCH,
									psprintf("the key column of foreign table \"%s\" was dropped",
											 t->relname),
									pstrdup("Its kvs file is keyed on it."));
				out[k].dropped = true;	/* dropped since: skipped */
				continue;
			}
			if (sc[k].dropped)
				return mismatch(m, ERRCODE_DATATYPE_MISMATCH,
								psprintf("column \"%s\" of foreign table \"%s\" is not in its kvs file",
										 NameStr(att->attname), t->relname),
								pstrdup("Its kvs file stores it as dropped."));
			if (sc[k].typid != att->atttypid || sc[k].typmod != att->atttypmod)
			{
				if (!binary_coercible_change(sc[k].typid, sc[k].typmod,
											 att->atttypid, att->atttypmod))
					return mismatch(m, ERRCODE_DATATYPE_MISMATCH,
									psprintf("column \"%s\" of foreign table \"%s\" does not match its kvs file",
											 NameStr(att->attname), t->relname),
									psprintf("%s Reading its values as the new type would need them rewritten.",
											 type_mismatch_detail(att, sc[k].typid, sc[k].typmod)));
				out[k].typid = att->atttypid;	/* the same bytes */
				out[k].typmod = att->atttypmod;
			}
			if ((k == key) != (a == t->opts.keyattno))
				return mismatch(m, ERRCODE_DATATYPE_MISMATCH,
								psprintf("column \"%s\" of foreign table \"%s\" does not match its kvs file",
										 NameStr(att->attname), t->relname),
								pstrdup("The table and the file disagree on whether it is the key column."));
			map[k] = a - 1;
		}
		/* columns added since: appended (older records end before them) */
		for (i = 0; i < td->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(td, i);

			if (att->attisdropped || seen[i])
				continue;
			if (att->attnum < maxatt)
				return mismatch(m, ERRCODE_DATATYPE_MISMATCH,
								psprintf("column \"%s\" of foreign table \"%s\" is not in its kvs file",
										 NameStr(att->attname), t->relname),
								psprintf("Its kvs file stores %d columns.", n));
			out[nout].typid = att->atttypid;
			out[nout].typmod = att->atttypmod;
			out[nout].attnum = att->attnum;
			out[nout].dropped = false;
			out[nout].typlen = att->attlen;
			map[nout++] = i;
		}
		if (newdesc != NULL)
			serialize_layout(newdesc, fd, out, nout, key);
	}
	if (newdesc != NULL && newdesc->len > KVS_MAX_DESCRIPTOR)
		return mismatch(m, ERRCODE_PROGRAM_LIMIT_EXCEEDED,
						psprintf("foreign table \"%s\" has too many columns for a kvs file",
								 t->relname),
						psprintf("The row layout must fit in %d bytes of the file header.",
								 KVS_MAX_DESCRIPTOR));
	if (newdesc != NULL && owner)
		add_names(t, newdesc);	/* the owner's names go with its layout */
	if (layp != NULL)
		*layp = build_plan(t, out, map, nout, key, mapped);
	return true;
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
	KvsRelEntry *re = (KvsRelEntry *) t->rel_entry;
	KvsFileExt *fe;
	bool		found;
	char		key[MAXPGPATH];
	uint32		budget = wanted_cache_pages();
	uint32		pages = 0;
	bool		shared = kvs_shared_pool() != NULL;

	/*
	 * The handle this table used last, unless its entry was removed since
	 * (entry_id 0, or another file's now) or the table's path changed: a
	 * statement then finds it without hashing its path.
	 */
	if (re != NULL && re->fe != NULL && re->fe->entry_id == re->fe_id &&
		strcmp(re->fe->f.path, t->path) == 0)
	{
		fe = re->fe;
		found = true;
	}
	else
	{
		memset(key, 0, sizeof(key));
		strlcpy(key, t->path, MAXPGPATH);
		fe = hash_search(kvs_files, key, HASH_ENTER, &found);
	}
	if (!found)
	{
		fe->f.db = NULL;
		fe->f.ncursors = 0;
		fe->f.stamp = 0;
		fe->f.stamp_level = 0;
		fe->f.stamp_writes = 0;
		fe->f.stale = false;
		fe->fillfactor = 0;
		fe->entry_id = ++entry_id_counter;
		fe->nrefs = 0;
		fe->guarded = false;
		fe->budget = 0;
		fe->policy = kvs_fdw_cache_policy;
		memset(&fe->f.wlock, 0, sizeof(fe->f.wlock));
		fe->f.nring = 0;
		fe->f.pending = NULL;
	}
	if (re != NULL)
	{
		re->fe = fe;
		re->fe_id = fe->entry_id;
	}
	fe->last_used = ++open_clock;
	/*
	 * Reopen a stale handle, one sized for another budget or opened with
	 * another cache policy, or one far below its share now (opened while
	 * many files were in use), when idle.
	 */
	if (handle_idle(fe) &&
		(fe->f.stale ||
		 (!shared &&
		  (fe->budget != budget || fe->policy != kvs_fdw_cache_policy ||
		   ((uint64) fe->f.cache_pages * 2 <= budget &&
			(pages = budget_share(fe, budget)) >= 2 * fe->f.cache_pages)))))
	{
		kvs_trace_handle(fe->f.db, true);
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
		kvs_table_check_file(t);
		if (t->default_file && access(t->path, F_OK) != 0 && errno == ENOENT)
			kvs_warn_uncopied(t->relid, t->relname);
		/* the budget is local mode's: a shared pool has its own size */
		if (pages == 0 && !shared)
			pages = budget_share(fe, budget);
		kvs_host_options(&o, KVS_CREATE, pages);
		o.fillfactor = t->opts.fillfactor;
		desc = table_descriptor(t, desc);
		o.descriptor = desc->data;
		o.descriptor_len = desc->len;
		rc = kvs_open(t->path, &o, &db);
		if (rc != KVS_OK)
		{
			if (fe->nrefs == 0)
			{
				fe->entry_id = 0;
				hash_search(kvs_files, fe->f.path, HASH_REMOVE, NULL);
			}
			kvs_report_error(rc, NULL, t->path);
		}
		fe->f.db = db;
		if (shared)
		{
			kvs_register_exit_callback();
			kvs_writer_identify(t->path, &fe->f.wlock);
		}
		strlcpy(fe->f.path, t->path, MAXPGPATH);
		fe->f.cache_pages = pages;
		fe->f.stale = false;
		fe->budget = budget;
		fe->policy = kvs_fdw_cache_policy;
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
	kvs_trace_handle(fe->f.db, false);	/* kvs_fdw.trace_directory */
	return fe;
}

/*
 * Did this transaction change the table's columns (an ALTER not committed
 * yet)?  Then its file's layout must not follow them: a ROLLBACK would leave
 * a layout the table no longer has.
 */
static bool
columns_changed_here(KvsTable *t)
{
	int			i;

	if (!TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return false;
	for (i = 1; i <= t->tupdesc->natts; i++)
	{
		HeapTuple	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(t->relid),
										  Int16GetDatum(i));
		bool		mine;

		if (!HeapTupleIsValid(tup))
			continue;
		mine = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tup->t_data));
		ReleaseSysCache(tup);
		if (mine)
			return true;
	}
	return false;
}

typedef enum VerifyResult
{
	VERIFY_OK,
	VERIFY_PENDING,				/* readable, but the layout must wait for
								 * the ALTER to commit: no writes */
	VERIFY_RETRY,				/* a reopen might help (stale handle) */
	VERIFY_MISMATCH
} VerifyResult;

static bool
same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* Does the new descriptor nd differ from the file's fd only in names? */
static bool
names_only_change(StringInfo nd, const char *fd, size_t flen)
{
	return is_our_descriptor(fd, flen) &&
		same_layout_part(nd->data, nd->len, fd, flen);
}

/*
 * Compare the file's descriptor with the table's.  OK if they match (or were
 * made to match: an empty file takes the table's layout; an owned
 * data-directory file left by a dropped table of the same OID is emptied and
 * restamped; a layout changed by ALTER, and the owner's column names, are
 * brought up to date), with *layp
 * how records map (NULL: one to one).  PENDING likewise, but for an ALTER
 * of this transaction: the layout is brought up to date only once it has
 * committed, and rows can be read but not written until then.  RETRY if a
 * reopen might help (stale handle); MISMATCH, with *m saying why, for a real
 * mismatch.
 */
static VerifyResult
verify_descriptor(KvsTable *t, KvsFileExt *fe, StringInfo ours, bool fresh,
				  KvsLayout **layp, LayoutMismatch *m)
{
	kvs		   *db = fe->f.db;
	kvs_slice	s;
	int			rc;
	bool		ident_ok;
	kvs_stats	st;
	char	   *copy;
	size_t		clen;
	StringInfoData nd;

	*layp = NULL;
	rc = kvs_descriptor(db, &s);
	kvs_check_rc(rc, db, t->path);
	ident_ok = same_identity(s.data, s.len, ours);
	if (same_layout(s.data, s.len, ours) && (ident_ok || !t->default_file) &&
		(!ident_ok || same_bytes(s.data, s.len, ours->data, ours->len)))
		return VERIFY_OK;
	initStringInfo(&nd);
	/* a layout ALTER changed, already brought up to date: no lock needed */
	if ((ident_ok || !t->default_file) &&
		match_layout(t, s.data, s.len, ident_ok, &nd, layp, m))
	{
		if (same_bytes(nd.data, nd.len, s.data, s.len))
			return VERIFY_OK;
		if (columns_changed_here(t))
			return names_only_change(&nd, s.data, s.len) ? VERIFY_OK : VERIFY_PENDING;
	}
	*layp = NULL;
	if (!fresh)
		return VERIFY_RETRY;

	/* decide under the write lock, on the current header */
	kvs_file_begin_write(&fe->f);
	rc = kvs_descriptor(db, &s);
	if (rc != KVS_OK)
		kvs_report_error(rc, db, t->path);
	clen = s.len;
	copy = palloc(clen + 1);
	memcpy(copy, s.data, clen);
	ident_ok = same_identity(copy, clen, ours);
	if (same_layout(copy, clen, ours) && (ident_ok || !t->default_file) &&
		(!ident_ok || same_bytes(copy, clen, ours->data, ours->len)))
	{
		kvs_file_end_write(&fe->f);
		return VERIFY_OK;
	}
	if (t->default_file && !ident_ok)
	{
		/* an old file of a dropped table with our OID: it is not ours */
		rc = kvs_truncate(db);
		if (rc == KVS_OK)
			rc = kvs_set_descriptor(db, ours->data, ours->len);
		if (rc != KVS_OK)
			kvs_report_error(rc, db, t->path);
		kvs_file_end_write(&fe->f);
		return VERIFY_OK;
	}
	rc = kvs_stats_get(db, &st);
	if (rc != KVS_OK)
		kvs_report_error(rc, db, t->path);
	if (st.records == 0)
	{
		rc = kvs_set_descriptor(db, ours->data, ours->len);
		if (rc != KVS_OK)
			kvs_report_error(rc, db, t->path);
		kvs_file_end_write(&fe->f);
		return VERIFY_OK;
	}
	resetStringInfo(&nd);
	if (match_layout(t, copy, clen, ident_ok, &nd, layp, m))
	{
		/* the first use after an ALTER: record the layout it made */
		if (!same_bytes(nd.data, nd.len, copy, clen))
		{
			if (columns_changed_here(t))
			{
				/* renamed here: the names follow once it has committed */
				kvs_file_end_write(&fe->f);
				return names_only_change(&nd, copy, clen) ? VERIFY_OK : VERIFY_PENDING;
			}
			rc = kvs_set_descriptor(db, nd.data, nd.len);
			if (rc != KVS_OK)
				kvs_report_error(rc, db, t->path);
		}
		kvs_file_end_write(&fe->f);
		return VERIFY_OK;
	}
	kvs_file_abort_write(&fe->f);	/* changed nothing; the caller raises */
	return VERIFY_MISMATCH;
}

/* Keep the verified mapping of a table (a copy, in its own context). */
static void
set_rel_layout(KvsRelEntry *re, KvsLayout *lay, TupleDesc td)
{
	if (re->layout_cxt != NULL)
		MemoryContextDelete(re->layout_cxt);
	re->layout_cxt = NULL;
	re->layout = NULL;
	if (lay != NULL)
	{
		MemoryContext old;

		re->layout_cxt = AllocSetContextCreate(TopMemoryContext, "kvs_fdw layout",
											   ALLOCSET_SMALL_SIZES);
		old = MemoryContextSwitchTo(re->layout_cxt);
		re->layout = copy_layout(lay, td);
		MemoryContextSwitchTo(old);
	}
}

/*
 * Open the table's file and check its layout.  A mismatch is 42804, or, if
 * tolerant (the inspection functions, planning), only noted in
 * t->layout_problem: t->file is then open, but no row may be read or written.
 */
static void
table_open(KvsTable *t, bool tolerant)
{
	KvsRelEntry *re;
	KvsFileExt *fe;
	StringInfoData desc;
	bool		fresh = false;

	/* kvs_table_init's entry (entries are never removed) */
	re = t->rel_entry != NULL ? (KvsRelEntry *) t->rel_entry : rel_entry(t->relid);

	t->layout = NULL;
	t->layout_problem = NULL;
	t->layout_pending = false;
	desc.data = NULL;			/* built by table_descriptor() on need */
	fe = open_file(t, &desc, &fresh);
	if (!re->valid || re->file_gen != fe->gen || strcmp(re->path, t->path) != 0)
	{
		KvsLayout  *lay = NULL;
		LayoutMismatch m;

		/* a handle opened by another table over the same file */
		if (!fresh)
			kvs_table_check_file(t);
		for (;;)
		{
			VerifyResult r = verify_descriptor(t, fe, table_descriptor(t, &desc),
											   fresh, &lay, &m);

			if (r == VERIFY_OK)
				break;
			if (r == VERIFY_PENDING)
			{
				/* not cached: verified again once the ALTER commits */
				if (desc.data != NULL)
					pfree(desc.data);
				t->layout = lay;
				t->layout_pending = true;
				t->file = &fe->f;
				return;
			}
			if (r == VERIFY_MISMATCH)
			{
				t->file = &fe->f;
				if (!tolerant)
					ereport(ERROR,
							(errcode(m.code),
							 errmsg("%s", m.msg),
							 m.detail ? errdetail("%s", m.detail) : 0));
				t->layout_problem = mismatch_sentences(&m);
				return;
			}
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
		set_rel_layout(re, lay, t->tupdesc);
		re->valid = true;
		re->file_gen = fe->gen;
		strlcpy(re->path, t->path, MAXPGPATH);
	}
	if (desc.data != NULL)
		pfree(desc.data);
	if (re->layout != NULL)
		t->layout = copy_layout(re->layout, t->tupdesc);
	if (!t->default_file && !fe->guarded && !superuser_arg(t->owner))
		fe->guarded = true;
	t->file = &fe->f;
}

void
kvs_table_open(KvsTable *t)
{
	table_open(t, false);
}

void
kvs_table_open_tolerant(KvsTable *t)
{
	table_open(t, true);
}

/*
 * Can table t (relation rel, as an ALTER just left it) read a file with
 * descriptor fdesc that holds records?  False with *why (sentences for an
 * errdetail) if not.  Changes nothing.
 */
bool
kvs_file_fits_table(KvsTable *t, Relation rel, const char *fdesc, size_t flen,
					char **why)
{
	StringInfoData ours,
				nd;
	LayoutMismatch m;
	KvsLayout  *lay;
	bool		ident_ok;

	initStringInfo(&ours);
	build_descriptor(t, &ours, rel->rd_rel->reltype);
	ident_ok = same_identity(fdesc, flen, &ours);
	if (t->default_file && !ident_ok)
		return true;			/* a dropped table's: emptied at first use */
	if (same_layout(fdesc, flen, &ours))
		return true;
	initStringInfo(&nd);
	if (match_layout(t, fdesc, flen, ident_ok, &nd, &lay, &m))
		return true;
	if (ident_ok && is_our_descriptor(fdesc, flen) && !is_mapped(fdesc))
	{
		uint16		n16;

		/* kvs_prepare_alter could not give it column numbers: too wide */
		memcpy(&n16, fdesc + DESC_LAYOUT_OFF, 2);
		if (DESC_COLS_OFF + (size_t) n16 * 12 > KVS_MAX_DESCRIPTOR)
		{
			*why = psprintf("Its kvs file stores %d columns: too many for its row layout to record the column numbers an ALTER needs (at most %d bytes of the file header).",
							n16, KVS_MAX_DESCRIPTOR);
			return false;
		}
	}
	*why = mismatch_sentences(&m);
	return false;
}

/*
 * How the records of a file whose descriptor is fdesc map onto table t's
 * columns, for reading only (salvage: the file is not opened the normal way,
 * so nothing is brought up to date).  NULL with *why set if they cannot be
 * read as t's rows.
 */
KvsLayout *
kvs_layout_for_reading(KvsTable *t, const char *fdesc, size_t flen, char **why)
{
	LayoutMismatch m;
	KvsLayout  *lay = NULL;

	if (match_layout(t, fdesc, flen, true, NULL, &lay, &m))
	{
		*why = NULL;
		return lay;
	}
	*why = mismatch_sentences(&m);
	return NULL;
}

/*
 * Before an ALTER that changes the columns of table rel: a fresh layout of a
 * file with rows becomes a mapped one (each column's attnum and length),
 * so the first use after the ALTER can tell which columns the records hold.
 * The records and their meaning do not change: safe even if the ALTER rolls
 * back.  A file that does not fit the table, or whose layout would not fit
 * in the header, is left alone (the ALTER is then refused at its end).
 */
void
kvs_prepare_alter(Relation rel)
{
	KvsTable	t;
	struct stat sb;
	StringInfoData ours;
	kvs		   *db;
	kvs_slice	s;
	kvs_stats	st;
	int			rc;

	kvs_table_init(&t, rel);
	if (stat(t.path, &sb) != 0)
		return;					/* no file yet: nothing stored */
	kvs_table_open_tolerant(&t);
	if (t.layout_problem != NULL)
		return;
	db = t.file->db;
	initStringInfo(&ours);
	build_descriptor(&t, &ours, rel->rd_rel->reltype);
	kvs_file_begin_write(t.file);
	rc = kvs_descriptor(db, &s);
	if (rc == KVS_OK && same_identity(s.data, s.len, &ours) &&
		same_layout(s.data, s.len, &ours))
	{
		rc = kvs_stats_get(db, &st);
		if (rc == KVS_OK && st.records > 0)
		{
			TupleDesc	td = t.tupdesc;
			StoredCol  *c = palloc(sizeof(StoredCol) * td->natts);
			StringInfoData mapped;
			int			i,
						n = 0,
						key = 0;

			for (i = 0; i < td->natts; i++)
			{
				Form_pg_attribute att = TupleDescAttr(td, i);

				if (att->attisdropped)
					continue;
				if (i + 1 == t.opts.keyattno)
					key = n;
				c[n].typid = att->atttypid;
				c[n].typmod = att->atttypmod;
				c[n].attnum = att->attnum;
				c[n].dropped = false;
				c[n].typlen = att->attlen;
				n++;
			}
			initStringInfo(&mapped);
			serialize_layout(&mapped, ours.data, c, n, key);
			if (mapped.len <= KVS_MAX_DESCRIPTOR)
			{
				add_names(&t, &mapped);
				rc = kvs_set_descriptor(db, mapped.data, mapped.len);
			}
		}
	}
	if (rc != KVS_OK)
		kvs_report_error(rc, db, t.path);
	kvs_file_end_write(t.file);
}

/*
 * Statement stamps: the first write statement on a file in progress takes a
 * new stamp and owns it (returns true); statements nested inside it (a
 * function called per row) share it.  The owner clears it at its end; an
 * error clears it when the owner's (sub)transaction aborts.  The stamp tags
 * the versions a statement adds to the write set (pending.c), never a
 * record of the file, so a counter of this backend gives it.
 */
static uint64 stamp_counter = 0;

bool
kvs_file_set_stamp(KvsFile *f)
{
	if (f->stamp != 0)
		return false;
	files_written = true;
	f->stamp = ++stamp_counter;
	f->stamp_level = GetCurrentTransactionNestLevel();
	f->stamp_writes = 0;
	return true;
}

void
kvs_file_release_stamp(KvsFile *f)
{
	f->stamp = 0;
}

/*
 * Every path that writes rows (or truncates) reports here, after the write:
 * it counts toward the statement stamp in force (see KvsFile.stamp_writes).
 */
void
kvs_note_writes(KvsFile *f, uint64 nrows)
{
	if (f->stamp != 0)
		f->stamp_writes += nrows;
}

/*
 * Every write section of the FDW begins and ends here.  In shared mode the
 * writers of one file first queue for its heavyweight lock (shmem.c), so
 * a writer waits where Postgres can cancel it, time it out (lock_timeout)
 * and show it (pg_locks); the engine's own section lock is then free or
 * held only by readers.  The lock is released once the section has ended,
 * whichever way; an ERROR in between leaves it to the transaction's abort
 * (and reset_files_after_error).  In local mode only the engine's flock.
 */
void
kvs_file_begin_write(KvsFile *f)
{
	files_written = true;
	kvs_writer_lock(&f->wlock);
	kvs_check_rc(kvs_begin(f->db, KVS_WRITE), f->db, f->path);
}

void
kvs_file_end_write(KvsFile *f)
{
	int			rc = kvs_end(f->db);

	kvs_writer_unlock(&f->wlock);
	kvs_check_rc(rc, f->db, f->path);
}

void
kvs_file_abort_write(KvsFile *f)
{
	(void) kvs_abort(f->db);
	kvs_writer_unlock(&f->wlock);
}

/*
 * Shared mode, at backend exit (a FATAL such as pg_terminate_backend, or a
 * normal disconnect): close every handle, so that none leaves its place in
 * the shared pool's file table, or a section lock there, behind.  This runs
 * before ShutdownPostgres's abort of the open transaction (registered
 * later), so it aborts that first: the abort callbacks end left-over
 * sections (kvs_abort) and the executor's memory contexts close their
 * cursors.  A handle a cursor still uses is left alone rather than freed
 * under it (the process is ending anyway).
 */
static void
close_at_exit(KvsFile *f, void *arg)
{
	if (f->ncursors > 0)
	{
		*(bool *) arg = true;
		return;
	}
	kvs_trace_handle(f->db, true);
	(void) kvs_close(f->db);
	f->db = NULL;
}

static void
close_all_at_exit(int code, Datum arg)
{
	bool		left = false;

	AbortOutOfAnyTransaction();
	reset_files_after_error(0);
	kvs_foreach_file(close_at_exit, &left);
	if (!left)
		kvs_fdw_journal_close();	/* after every handle using it */
}

void
kvs_register_exit_callback(void)
{
	static bool registered = false;

	if (!registered)
	{
		before_shmem_exit(close_all_at_exit, (Datum) 0);
		registered = true;
	}
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
	ForeignServer *server;

	if (rel->rd_rel->relkind != RELKIND_FOREIGN_TABLE)
		return false;

	/*
	 * A wrapper without a handler is not ours (and would make the lookup
	 * below raise 55000 instead of letting the caller say what is wrong).
	 */
	server = GetForeignServer(GetForeignServerIdByRelId(RelationGetRelid(rel)));
	if (!OidIsValid(GetForeignDataWrapper(server->fdwid)->fdwhandler))
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

	if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("cannot remove the file of a table that still exists")));
	kvs_default_path(MyDatabaseId, relid, path);
	if (stat(path, &sb) != 0)
		return;
	kvs_drop_file_at_commit(path);
}

/*
 * Remove the data-directory file at path when the transaction commits (not
 * if it, or the subtransaction asking, aborts): a dropped table's, or an
 * orphan's (orphans.c).  Once per path.
 */
void
kvs_drop_file_at_commit(const char *path)
{
	MemoryContext old;
	PendingDrop *pd;
	ListCell   *lc;

	foreach(lc, pending_drops)
		if (strcmp(((PendingDrop *) lfirst(lc))->path, path) == 0)
			return;
	if (kvs_files == NULL)
		kvs_handles_init();
	old = MemoryContextSwitchTo(TopTransactionContext);
	pd = palloc0(sizeof(PendingDrop));
	pd->level = GetCurrentTransactionNestLevel();
	strlcpy(pd->path, path, MAXPGPATH);
	pending_drops = lappend(pending_drops, pd);
	MemoryContextSwitchTo(old);
}

/*
 * Do the records of a file with descriptor fdesc know column attnum of the
 * file's own table (a mapped layout listing it)?  A fresh layout has
 * no attnums: true, for a table matching it column for column holds every
 * column in every record (and one that does not match is refused anyway).
 */
bool
kvs_file_has_column(const char *fdesc, size_t flen, AttrNumber attnum)
{
	StoredCol  *c;
	int			n,
				key,
				i;

	if (!is_our_descriptor(fdesc, flen) || !is_mapped(fdesc))
		return true;
	c = parse_layout(fdesc, flen, &n, &key);
	if (c == NULL)
		return true;
	for (i = 0; i < n; i++)
		if (c[i].attnum == attnum)
			return true;
	return false;
}

/*
 * Before a statement writes rows of t (opened): refuse while t's file waits
 * for an ALTER of this transaction to commit (VERIFY_PENDING).  A record
 * written with the new columns would not fit the layout left by a ROLLBACK.
 * A stopgap until kvs writes are transactional.
 */
void
kvs_table_check_writable(KvsTable *t)
{
	if (t->layout_pending)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot write to foreign table \"%s\" in the transaction that changed its columns",
						t->relname),
				 errdetail("Its kvs file takes the new columns once the ALTER has committed."),
				 errhint("Commit the ALTER first.")));
}
