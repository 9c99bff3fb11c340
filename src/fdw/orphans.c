/*
 * orphans.c - kvs files whose table is gone: removed at the commit of the
 * command that dropped the table, or listed and removed by hand.
 *
 * DROP FOREIGN TABLE (and DROP SERVER / SCHEMA / OWNED ... CASCADE while the
 * extension stays) reach kvs_forget_dropped() through the extension's
 * sql_drop trigger.  A command that drops the extension itself (DROP
 * EXTENSION kvs_fdw CASCADE, DROP SCHEMA of its schema CASCADE, DROP OWNED of
 * its owner) drops that trigger and kvs_fdw_forget with it, so sql_drop finds
 * no trigger to fire.  kvs_fdw_drop_start, a ddl_command_start trigger on
 * those commands (and DROP FOREIGN DATA WRAPPER), therefore records before
 * the command runs every kvs table of this database that uses its
 * data-directory file; at pre-commit the ones whose pg_class row is gone go
 * to the same commit-time removal as a DROP FOREIGN TABLE (handle.c: the
 * handle closed, the file unlinked at commit, nothing on abort).  Nothing of
 * that needs an object of the extension at commit: the candidates are OIDs
 * in this backend's memory and the transaction callback is the library's.
 * A file named by an explicit filename is never a candidate.
 *
 * DROP DATABASE fires no event trigger: kvs_remove_database_files() runs
 * after it from the ProcessUtility hook (utility.c), in a session that has
 * kvs_fdw loaded (always in shared mode); otherwise the database's files
 * stay, and kvs_fdw_orphans() lists them from any other database.
 *
 * kvs_fdw_orphans(): every <database>_<table>.kvs file under
 * $PGDATA/kvs_fdw/ whose table this backend cannot see: 'orphan' (its
 * database is gone, or it is this database's and no kvs table uses it), or
 * 'check in database X' (another live database's: only a backend there can
 * tell).  kvs_fdw_remove_orphan(path) removes one orphan, at commit, after
 * re-checking under a conditional lock on the table OID.
 *
 * Removing a file this way is what a DROP does, so the journal and the
 * shared pool already cope: a journal record names its file by inode and
 * file id, and recovery and checkpoints skip a file that is gone or another
 * one now (src/engine/README.md, "The journal"); a pool slot of a removed
 * file is never matched by a new file (different file id).
 */
#include "postgres.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "catalog/pg_foreign_table.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/event_trigger.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "kvs_fdw.h"

PG_FUNCTION_INFO_V1(kvs_fdw_drop_start);
PG_FUNCTION_INFO_V1(kvs_fdw_orphans);
PG_FUNCTION_INFO_V1(kvs_fdw_remove_orphan);

/* tables that a command of this transaction may drop, in TopTransactionContext */
static List *drop_candidates = NIL;

/*
 * Is relid a kvs foreign table that keeps its rows in its data-directory
 * file (no filename option)?  Only syscache lookups, no error for a table,
 * server or wrapper that went away meanwhile, and no lock: a scan of every
 * foreign table must not wait for unrelated ones.
 */
static bool
uses_default_file(Oid relid)
{
	HeapTuple	tup;
	Oid			serverid;
	Datum		d;
	bool		isnull;
	bool		explicit_file = false;
	ForeignServer *server;
	ForeignDataWrapper *fdw;
	ListCell   *lc;

	tup = SearchSysCache1(FOREIGNTABLEREL, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return false;
	serverid = ((Form_pg_foreign_table) GETSTRUCT(tup))->ftserver;
	d = SysCacheGetAttr(FOREIGNTABLEREL, tup, Anum_pg_foreign_table_ftoptions, &isnull);
	if (!isnull)
		foreach(lc, untransformRelOptions(d))
			if (strcmp(((DefElem *) lfirst(lc))->defname, "filename") == 0)
				explicit_file = true;
	ReleaseSysCache(tup);
	if (explicit_file)
		return false;
	server = GetForeignServerExtended(serverid, FSV_MISSING_OK);
	if (server == NULL)
		return false;
	fdw = GetForeignDataWrapperExtended(server->fdwid, FDW_MISSING_OK);
	if (fdw == NULL || !OidIsValid(fdw->fdwhandler))
		return false;
	return GetFdwRoutine(fdw->fdwhandler)->GetForeignRelSize == kvsGetForeignRelSize;
}

/*
 * ddl_command_start on DROP EXTENSION, DROP SCHEMA, DROP OWNED and DROP
 * FOREIGN DATA WRAPPER: remember the kvs tables of this database that have a
 * data-directory file.  Which of them the command drops is known at commit.
 */
Datum
kvs_fdw_drop_start(PG_FUNCTION_ARGS)
{
	Relation	ft;
	SysScanDesc scan;
	HeapTuple	tup;
	MemoryContext old;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "not fired by event trigger manager");
	ft = table_open(ForeignTableRelationId, AccessShareLock);
	scan = systable_beginscan(ft, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Oid			relid = ((Form_pg_foreign_table) GETSTRUCT(tup))->ftrelid;
		char		path[MAXPGPATH];
		struct stat sb;

		if (!uses_default_file(relid))
			continue;
		kvs_default_path(MyDatabaseId, relid, path);
		if (stat(path, &sb) != 0)
			continue;
		old = MemoryContextSwitchTo(TopTransactionContext);
		drop_candidates = list_append_unique_oid(drop_candidates, relid);
		MemoryContextSwitchTo(old);
	}
	systable_endscan(scan);
	table_close(ft, AccessShareLock);
	PG_RETURN_NULL();
}

/*
 * Pre-commit (and pre-prepare): the candidates whose table is gone now were
 * dropped by this transaction; their files go at commit, as a DROP FOREIGN
 * TABLE's.  Dropped in a subtransaction that rolled back: still there, kept.
 */
void
kvs_orphans_pre_commit(void)
{
	ListCell   *lc;

	foreach(lc, drop_candidates)
	{
		Oid			relid = lfirst_oid(lc);

		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
			kvs_forget_dropped(relid);
	}
	drop_candidates = NIL;
}

void
kvs_orphans_reset(void)
{
	drop_candidates = NIL;		/* its memory went with the transaction */
}

/* A canonical data-directory file name: <database oid>_<table oid>.kvs. */
static bool
parse_file_name(const char *name, Oid *db, Oid *rel)
{
	unsigned int d,
				r;
	char		canon[64];

	if (sscanf(name, "%u_%u.kvs", &d, &r) != 2)
		return false;
	snprintf(canon, sizeof(canon), "%u_%u.kvs", d, r);
	if (strcmp(canon, name) != 0)
		return false;
	*db = d;
	*rel = r;
	return true;
}

/*
 * DROP DATABASE (run, from the ProcessUtility hook, after the standard one
 * succeeded): remove the dropped database's data-directory kvs files now,
 * as DROP DATABASE removes the database's own directory before it commits.
 * No backend of that database is left to have them open.
 */
void
kvs_remove_database_files(Oid dboid)
{
	char		dir[MAXPGPATH];
	DIR		   *d;
	struct dirent *de;

	snprintf(dir, sizeof(dir), "%s/kvs_fdw", DataDir);
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
	{
		Oid			db,
					rel;
		char		path[MAXPGPATH];

		if (!parse_file_name(de->d_name, &db, &rel) || db != dboid)
			continue;
		kvs_default_path(db, rel, path);
		if (unlink(path) != 0 && errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not remove kvs file \"%s\": %m", path)));
	}
	closedir(d);
}

/*
 * What kvs_fdw_orphans says about the file of table rel in database db:
 * NULL for a live table's file of this database, else its status.
 */
static char *
file_status(Oid db, Oid rel, char **dbname)
{
	*dbname = get_database_name(db);
	if (db == MyDatabaseId)
		return uses_default_file(rel) ? NULL : pstrdup("orphan");
	if (*dbname == NULL)
		return pstrdup("orphan");
	return psprintf("check in database %s", quote_identifier(*dbname));
}

/*
 * kvs_fdw_orphans(): one row per data-directory kvs file that no table of
 * this database uses (see the header comment).  pg_monitor (by grant).
 */
Datum
kvs_fdw_orphans(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char		dir[MAXPGPATH];
	DIR		   *d;
	struct dirent *de;

	InitMaterializedSRF(fcinfo, 0);
	snprintf(dir, sizeof(dir), "%s/kvs_fdw", DataDir);
	d = AllocateDir(dir);
	if (d == NULL && errno == ENOENT)
		PG_RETURN_VOID();		/* no kvs file in this cluster yet */
	while ((de = ReadDir(d, dir)) != NULL)
	{
		Oid			db,
					rel;
		char		path[MAXPGPATH];
		char	   *dbname;
		char	   *status;
		struct stat sb;
		Datum		values[6];
		bool		nulls[6] = {0};

		CHECK_FOR_INTERRUPTS();
		if (!parse_file_name(de->d_name, &db, &rel))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
			continue;			/* removed meanwhile, or not ours */
		status = file_status(db, rel, &dbname);
		if (status == NULL)
			continue;
		values[0] = CStringGetTextDatum(psprintf("kvs_fdw/%s", de->d_name));
		values[1] = ObjectIdGetDatum(db);
		if (dbname)
			values[2] = CStringGetTextDatum(dbname);
		else
			nulls[2] = true;
		values[3] = ObjectIdGetDatum(rel);
		values[4] = Int64GetDatum((int64) sb.st_size);
		values[5] = CStringGetTextDatum(status);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	FreeDir(d);
	PG_RETURN_VOID();
}

/*
 * kvs_fdw_remove_orphan(path): superusers only.  path is one that
 * kvs_fdw_orphans lists ('kvs_fdw/<db>_<table>.kvs', relative to the data
 * directory, or the same as an absolute path).  The file goes at commit.
 */
Datum
kvs_fdw_remove_orphan(PG_FUNCTION_ARGS)
{
	char	   *arg = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const char *rest = arg;
	size_t		dlen = strlen(DataDir);
	Oid			db,
				rel;
	char		path[MAXPGPATH];
	char	   *dbname;
	struct stat sb;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to remove a kvs file"),
				 errdetail("Only superusers may remove orphaned kvs files.")));
	if (strstr(arg, "..") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid kvs file path \"%s\"", arg),
				 errdetail("The path must not contain \"..\".")));
	if (strncmp(rest, DataDir, dlen) == 0 && rest[dlen] == '/')
		rest += dlen + 1;
	if (strncmp(rest, "kvs_fdw/", strlen("kvs_fdw/")) != 0 ||
		!parse_file_name(rest + strlen("kvs_fdw/"), &db, &rel))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a data-directory kvs file", arg),
				 errdetail("Only files named kvs_fdw/<database OID>_<table OID>.kvs in the data directory can be removed."),
				 errhint("kvs_fdw_orphans() lists them.")));
	kvs_default_path(db, rel, path);
	if (db == MyDatabaseId)
	{
		/* a DROP of this table not committed yet, or a CREATE, holds it */
		if (!ConditionalLockRelationOid(rel, AccessExclusiveLock))
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not lock the table with OID %u of kvs file \"%s\"", rel, arg),
					 errdetail("A transaction that is still open uses, creates or drops that table."),
					 errhint("Try again once it has ended.")));
		if (uses_default_file(rel))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("kvs file \"%s\" belongs to foreign table \"%s\"",
							arg, get_rel_name(rel)),
					 errdetail("Only a file whose table is gone is an orphan."),
					 errhint("DROP FOREIGN TABLE removes a table's file.")));
	}
	else if ((dbname = get_database_name(db)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("kvs file \"%s\" belongs to database \"%s\"", arg, dbname),
				 errdetail("Only that database can tell whether its table still exists."),
				 errhint("Run kvs_fdw_remove_orphan in database \"%s\".", dbname)));
	if (lstat(path, &sb) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat kvs file \"%s\": %m", arg)));
	if (!S_ISREG(sb.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a regular file", arg)));
	kvs_drop_file_at_commit(path);
	PG_RETURN_VOID();
}
