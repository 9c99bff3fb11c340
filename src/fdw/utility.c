/*
 * utility.c - a ProcessUtility hook: CREATE DATABASE copies the template's
 * kvs files, DROP DATABASE removes the dropped database's (orphans.c).
 *
 * CREATE DATABASE new TEMPLATE old copies old's catalogs, so new has the same
 * foreign tables with the same OIDs, but not the files under
 * $PGDATA/kvs_fdw/: they are named <database oid>_<table oid>.kvs and their
 * descriptor's identity names the database, so new's tables would start
 * empty.  After the standard CREATE DATABASE succeeds, each of old's files
 * whose identity names old is copied to new's name: to a temporary name,
 * fsync'd, its identity rewritten to new through the engine (a write section
 * and kvs_set_descriptor, see kvs_descriptor_set_database), then renamed into
 * place durably; a crash leaves at most a *.copy file behind.  Files named by
 * an explicit filename are shared by both databases' tables, not copied.
 *
 * This runs only in a session that has kvs_fdw loaded (a kvs table used, LOAD
 * 'kvs_fdw', or session_preload_libraries / shared_preload_libraries): a hook
 * in a library not loaded cannot run.  Then the first use of such a table in
 * the new database warns (kvs_warn_uncopied), when it can tell.  CREATE DATABASE has already created
 * the database when the copy runs, so a failure here is a WARNING (the
 * tables concerned start empty), never an ERROR that would abort the
 * transaction and leave the new database's directory orphaned.
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "common/file_perm.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/fd.h"
#include "tcop/utility.h"
#include "utils/syscache.h"

#include "kvs_fdw.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

/* Copy src to dst (created), fsync'd; on failure sets *err and returns false. */
static bool
copy_file_locked(const char *src, const char *dst, char **err)
{
	int			in,
				out;
	char	   *buf;
	ssize_t		n = 0;
	int			tries;
	bool		ok = true;

	in = open(src, O_RDONLY | PG_BINARY, 0);
	if (in < 0)
	{
		*err = psprintf("could not open \"%s\": %m", src);
		return false;
	}
	/* the engine's readers take a shared flock: copy a whole state */
	for (tries = 0; flock(in, LOCK_SH | LOCK_NB) != 0; tries++)
	{
		if (errno != EWOULDBLOCK || tries >= 3000)
		{
			*err = psprintf("could not lock \"%s\": %m", src);
			close(in);
			return false;
		}
		pg_usleep(10000L);
	}
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY, pg_file_create_mode);
	if (out < 0)
	{
		*err = psprintf("could not create \"%s\": %m", dst);
		close(in);
		return false;
	}
	buf = palloc(64 * 1024);
	while (ok && (n = read(in, buf, 64 * 1024)) > 0)
	{
		char	   *p = buf;

		while (n > 0)
		{
			ssize_t		w = write(out, p, n);

			if (w <= 0)
			{
				if (w < 0 && errno == EINTR)
					continue;
				if (w == 0)
					errno = ENOSPC;
				*err = psprintf("could not write \"%s\": %m", dst);
				ok = false;
				break;
			}
			p += w;
			n -= w;
		}
	}
	if (ok && n < 0)
	{
		*err = psprintf("could not read \"%s\": %m", src);
		ok = false;
	}
	if (ok && pg_fsync(out) != 0)
	{
		*err = psprintf("could not fsync \"%s\": %m", dst);
		ok = false;
	}
	pfree(buf);
	close(in);
	if (close(out) != 0 && ok)
	{
		*err = psprintf("could not close \"%s\": %m", dst);
		ok = false;
	}
	return ok;
}

/* Rewrite the copy's identity to database newdb, through the engine. */
static bool
restamp_copy(const char *path, Oid newdb, char **err)
{
	kvs_options o;
	kvs		   *db = NULL;
	kvs_slice	s;
	char	   *desc;
	size_t		len;
	int			rc;
	KvsWriterLock wl = {0};

	kvs_host_options(&o, 0, 8);
	rc = kvs_open(path, &o, &db);
	if (rc != KVS_OK)
	{
		*err = psprintf("could not open the copy \"%s\": %s", path, kvs_strerror(rc));
		return false;
	}
	/*
	 * The writers' lock too (shared mode), as for every write section,
	 * though no other session can know the copy yet: it never waits.
	 */
	kvs_writer_identify(path, &wl);
	kvs_writer_lock(&wl);
	rc = kvs_begin(db, KVS_WRITE);
	if (rc == KVS_OK)
		rc = kvs_descriptor(db, &s);
	if (rc == KVS_OK)
	{
		len = s.len;
		desc = palloc(len + 1);
		memcpy(desc, s.data, len);
		if (kvs_descriptor_set_database(desc, len, newdb))
			rc = kvs_set_descriptor(db, desc, len);
		pfree(desc);
	}
	if (kvs_in_section(db) >= 0)
	{
		/* a failed restamp must not write half of it */
		int			rc2 = rc == KVS_OK ? kvs_end(db) : kvs_abort(db);

		if (rc == KVS_OK)
			rc = rc2;
	}
	kvs_writer_unlock(&wl);
	if (rc == KVS_OK)
		rc = kvs_sync(db);
	if (rc != KVS_OK)
		*err = psprintf("could not restamp the copy \"%s\": %s (%s)", path,
						kvs_errmsg(db), kvs_strerror(rc));
	(void) kvs_close(db);
	return rc == KVS_OK;
}

/*
 * The identity in the header of the kvs file at path; false if it cannot be
 * read or is not a kvs_fdw descriptor.
 */
static bool
file_identity(const char *path, Oid *dboid, Oid *relid, Oid *reltype)
{
	kvs_options o;
	kvs		   *db = NULL;
	kvs_slice	s;
	bool		ok;

	kvs_host_options(&o, KVS_RDONLY, 8);
	if (kvs_open(path, &o, &db) != KVS_OK)
		return false;
	ok = kvs_descriptor(db, &s) == KVS_OK &&
		kvs_descriptor_identity(s.data, s.len, dboid, relid, reltype);
	(void) kvs_close(db);
	return ok;
}

/*
 * Does the file's identity name database dboid?  A file of old's name whose
 * header names another database (left by a dropped table, never used since)
 * would be emptied at first use in old: it is not copied.
 */
static bool
file_belongs_to(const char *path, Oid dboid)
{
	Oid			db,
				rel,
				typ;

	return file_identity(path, &db, &rel, &typ) && db == dboid;
}

static void
copy_database_files(Oid olddb, Oid newdb, const char *newname)
{
	char		dir[MAXPGPATH];
	DIR		   *d;
	struct dirent *de;
	int			copied = 0;

	snprintf(dir, sizeof(dir), "%s/kvs_fdw", DataDir);
	d = opendir(dir);
	if (d == NULL)
		return;					/* no kvs file in this cluster yet */
	while ((de = readdir(d)) != NULL)
	{
		unsigned int db,
					rel;
		char		canon[MAXPGPATH];
		char		src[MAXPGPATH],
					tmp[MAXPGPATH],
					dst[MAXPGPATH];
		char	   *err = NULL;

		if (sscanf(de->d_name, "%u_%u.kvs", &db, &rel) != 2 || db != olddb)
			continue;
		snprintf(canon, sizeof(canon), "%u_%u.kvs", db, rel);
		if (strcmp(canon, de->d_name) != 0)
			continue;			/* e.g. a *.copy left by a crash */
		snprintf(src, sizeof(src), "%s/%s", dir, de->d_name);
		kvs_default_path(newdb, rel, dst);
		snprintf(tmp, sizeof(tmp), "%s.copy", dst);
		if (!file_belongs_to(src, olddb))
			continue;
		if (copy_file_locked(src, tmp, &err) && restamp_copy(tmp, newdb, &err) &&
			durable_rename(tmp, dst, WARNING) == 0)
		{
			copied++;
			continue;
		}
		(void) unlink(tmp);
		ereport(WARNING,
				(errmsg("could not copy kvs file \"%s\" to database \"%s\"", src, newname),
				 err ? errdetail_internal("%s", err) : 0,
				 errhint("The foreign table with OID %u starts empty in database \"%s\".",
						 rel, newname)));
	}
	closedir(d);
	/* durable_rename() fsync'd each file and the directory */
	elog(DEBUG1, "kvs_fdw: copied %d kvs files to database \"%s\"", copied, newname);
}

static void
kvs_process_utility(PlannedStmt *pstmt, const char *queryString,
					bool readOnlyTree, ProcessUtilityContext context,
					ParamListInfo params, QueryEnvironment *queryEnv,
					DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	char	   *newname = NULL;
	char	   *template = "template1";	/* createdb()'s default */
	Oid			dropped_db = InvalidOid;
	char	   *dropped_name = NULL;

	if (IsA(parsetree, CreatedbStmt))
	{
		CreatedbStmt *stmt = (CreatedbStmt *) parsetree;
		ListCell   *lc;

		newname = pstrdup(stmt->dbname);
		foreach(lc, stmt->options)
		{
			DefElem    *def = (DefElem *) lfirst(lc);

			if (strcmp(def->defname, "template") == 0 && def->arg != NULL)
				template = pstrdup(defGetString(def));
		}
	}
	else if (IsA(parsetree, DropdbStmt))
	{
		dropped_name = pstrdup(((DropdbStmt *) parsetree)->dbname);
		dropped_db = get_database_oid(dropped_name, true);
	}

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context,
							 params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	if (newname != NULL)
	{
		Oid			olddb,
					newdb;

		CommandCounterIncrement();	/* see the new pg_database row */
		olddb = get_database_oid(template, true);
		newdb = get_database_oid(newname, true);
		if (OidIsValid(olddb) && OidIsValid(newdb))
			copy_database_files(olddb, newdb, newname);
	}
	/* dropped (not a DROP DATABASE IF EXISTS of a missing one) */
	if (OidIsValid(dropped_db) && get_database_oid(dropped_name, true) != dropped_db)
		kvs_remove_database_files(dropped_db);
}

/*
 * The data-directory file of table relid is about to be created.  If the
 * table is older than this database (its pg_class row was written before the
 * database's pg_database row: it came from the template) and another
 * database holds a file with the table's identity, CREATE DATABASE ran in a
 * session without kvs_fdw and nothing copied it: say so, once per open.  A
 * heuristic for a warning only (an ALTER of the table rewrites its row; a
 * frozen pg_database row tells nothing).
 */
void
kvs_warn_uncopied(Oid relid, const char *relname)
{
	HeapTuple	tup;
	TransactionId relxmin,
				dbxmin;
	Oid			reltype;
	char		dir[MAXPGPATH];
	DIR		   *d;
	struct dirent *de;
	Oid			from = InvalidOid;
	char	   *fromname;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return;
	relxmin = HeapTupleHeaderGetXmin(tup->t_data);
	reltype = ((Form_pg_class) GETSTRUCT(tup))->reltype;
	ReleaseSysCache(tup);
	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
	if (!HeapTupleIsValid(tup))
		return;
	dbxmin = HeapTupleHeaderGetXmin(tup->t_data);
	ReleaseSysCache(tup);
	if (!TransactionIdIsNormal(dbxmin) || !TransactionIdPrecedes(relxmin, dbxmin))
		return;

	snprintf(dir, sizeof(dir), "%s/kvs_fdw", DataDir);
	d = opendir(dir);
	if (d == NULL)
		return;
	/* the oldest such database (the smallest OID): most likely the template */
	while ((de = readdir(d)) != NULL)
	{
		unsigned int db,
					rel;
		char		path[MAXPGPATH];
		Oid			fdb,
					frel,
					ftyp;

		if (sscanf(de->d_name, "%u_%u.kvs", &db, &rel) != 2 ||
			rel != relid || db == MyDatabaseId ||
			(OidIsValid(from) && db >= from))
			continue;
		kvs_default_path(db, rel, path);
		if (strcmp(path + strlen(dir) + 1, de->d_name) == 0 &&
			file_identity(path, &fdb, &frel, &ftyp) &&
			fdb == db && frel == relid && ftyp == reltype)
			from = db;
	}
	closedir(d);
	fromname = OidIsValid(from) ? get_database_name(from) : NULL;
	if (fromname != NULL)
		ereport(WARNING,
				(errmsg("the kvs file of foreign table \"%s\" was not copied into this database",
						relname),
				 errdetail("This database was created from a template in a session that had not loaded kvs_fdw: the table's file in database \"%s\" was not copied, and the table starts empty here.",
						   fromname),
				 errhint("Run CREATE DATABASE after LOAD 'kvs_fdw' (or with kvs_fdw in session_preload_libraries) to copy the files.")));
}

void
kvs_utility_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = kvs_process_utility;
}
