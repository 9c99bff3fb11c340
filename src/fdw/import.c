/*
 * import.c - IMPORT FOREIGN SCHEMA: one foreign table per kvs file of a
 * directory.
 *
 *   IMPORT FOREIGN SCHEMA any_name FROM SERVER s INTO target
 *       OPTIONS (directory '/abs/dir')
 *
 * The remote schema name is not used (a kvs server has no schemas).  Each
 * "*.kvs" file directly in the directory (sorted by name) becomes
 * CREATE FOREIGN TABLE <base name> (...) SERVER s OPTIONS (filename ...),
 * its columns, types and key read from the descriptor in the file's header
 * (handle.c; the names trailer of descriptor version 2).  Core runs the
 * commands and applies LIMIT TO / EXCEPT to the table names; the list is
 * also filtered here, so that an excluded file is not even opened.
 *
 * The generated tables carry "filename", so the caller must be allowed to
 * set it (superuser or pg_write_server_files) before anything is listed,
 * and every table must be one the caller could have created by hand: a file
 * leading into the data directory or a tablespace is skipped for a
 * non-superuser.  Files in the data directory's kvs_fdw directory are never
 * imported (a live table's file is in use; a dropped table's file sits at
 * the path a later table of the same OID takes over and empties), and
 * naming that directory is an error.  A file that is not a readable kvs
 * file with a kvs_fdw descriptor, or whose columns cannot be recreated
 * exactly here, gets a WARNING naming it and why, and is skipped.  Files
 * are opened read-only through the engine: importing never writes them.
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parse_type.h"
#include "parser/scansup.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

#include "kvs_fdw.h"

#define DEFAULT_FILLFACTOR 75	/* the engine's (kvs_options.fillfactor 0) */

/* What a file's header says, read without changing the file. */
typedef struct FileHeader
{
	char	   *desc;
	size_t		desc_len;
	uint32		fillfactor;
} FileHeader;

/* The directory option, checked: an absolute path. */
static char *
import_directory(ImportForeignSchemaStmt *stmt)
{
	char	   *dir = NULL;
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "directory") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 errhint("IMPORT FOREIGN SCHEMA of kvs_fdw takes one option: directory.")));
		dir = defGetString(def);
	}
	if (dir == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("IMPORT FOREIGN SCHEMA of kvs_fdw needs the option \"directory\""),
				 errhint("Add OPTIONS (directory '/absolute/path').")));
	if (dir[0] == '\0' || !is_absolute_path(dir))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"directory\": \"%s\"", dir),
				 errhint("directory must be an absolute path.")));
	if (strlen(dir) >= MAXPGPATH - 64)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"directory\": path too long")));
	return dir;
}

/* The caller may set "filename" on tables (option.c, check_filename). */
static void
check_privilege(const char *dir)
{
	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_WRITE_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to import kvs files"),
				 errdetail("The imported tables name their files: only superusers and members of pg_write_server_files may choose the file of a kvs_fdw table.")));
	if (!superuser() && kvs_path_is_internal(dir))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to import kvs files from \"%s\"", dir),
				 errdetail("The path leads into the data directory or a tablespace; only superusers may use files there."),
				 errhint("Choose a directory outside the data directory.")));
}

/* Refuse the data directory's kvs_fdw directory (see the file header). */
static void
check_not_kvs_dir(const char *dir)
{
	char		kvsdir[MAXPGPATH];

	snprintf(kvsdir, sizeof(kvsdir), "%s/kvs_fdw", DataDir);
	if (kvs_path_is_below(dir, kvsdir))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot import the kvs files of the data directory"),
				 errdetail("They are the files of this server's kvs_fdw tables, or of dropped ones, whose paths later tables of the same OID take over."),
				 errhint("Copy a file out of the data directory, and import the copy.")));
}

static int
cmp_names(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

/*
 * Is table name wanted by LIMIT TO / EXCEPT?  Compared as core does, with
 * the name the table gets (truncated to NAMEDATALEN - 1 bytes).
 */
static bool
wanted(ImportForeignSchemaStmt *stmt, const char *name)
{
	ListCell   *lc;
	bool		listed = false;
	char	   *tname = pstrdup(name);

	if (stmt->list_type == FDW_IMPORT_SCHEMA_ALL)
		return true;
	truncate_identifier(tname, strlen(tname), false);
	foreach(lc, stmt->table_list)
		if (strcmp(((RangeVar *) lfirst(lc))->relname, tname) == 0)
			listed = true;
	return (stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO) == listed;
}

/* The table names (file names without .kvs) of dir's kvs files, sorted. */
static List *
list_kvs_files(ImportForeignSchemaStmt *stmt, const char *dir)
{
	DIR		   *d;
	struct dirent *de;
	List	   *names = NIL;
	struct stat st;

	if (stat(dir, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"%s\": %m", dir)));
	if (!S_ISDIR(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a directory", dir)));
	check_not_kvs_dir(dir);
	d = AllocateDir(dir);
	while ((de = ReadDir(d, dir)) != NULL)
	{
		size_t		len = strlen(de->d_name);
		char	   *name;

		if (len <= 4 || strcmp(de->d_name + len - 4, ".kvs") != 0 ||
			de->d_name[0] == '.')
			continue;
		name = pnstrdup(de->d_name, len - 4);
		if (wanted(stmt, name))
			names = lappend(names, name);
	}
	FreeDir(d);
	list_sort(names, cmp_names);
	return names;
}

/* Read the file's header on a read-only handle; false with *why (and maybe *hint) if not. */
static bool
read_header(const char *path, FileHeader *h, char **why, char **hint)
{
	kvs_options o;
	kvs		   *db = NULL;
	kvs_slice	s;
	kvs_stats	st;
	int			rc;

	kvs_host_options(&o, KVS_RDONLY, 8);
	rc = kvs_open(path, &o, &db);
	if (rc != KVS_OK)
	{
		const char *msg = kvs_open_errmsg();
		size_t		plen = strlen(path);

		if (msg == NULL || msg[0] == '\0')
			msg = kvs_strerror(rc);
		/* the warning names the file already */
		else if (strncmp(msg, path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0)
			msg += plen + 2;
		*why = psprintf("It cannot be opened as a kvs file: %s.", msg);
		if (rc == KVS_EBUSY && kvs_owned_elsewhere(msg))
			*hint = pstrdup("The file's header names another cluster as its owner: create the foreign table by hand with OPTIONS (filename '...'), then a superuser runs SELECT kvs_fdw_adopt('<table>').");
		return false;
	}
	rc = kvs_begin(db, KVS_READ);
	if (rc == KVS_OK)
	{
		rc = kvs_descriptor(db, &s);
		if (rc == KVS_OK)
		{
			h->desc_len = s.len;
			h->desc = palloc(s.len + 1);
			memcpy(h->desc, s.data, s.len);
			rc = kvs_stats_get(db, &st);
			h->fillfactor = st.fillfactor;
		}
		(void) kvs_end(db);
	}
	if (rc != KVS_OK)
		*why = psprintf("Its header cannot be read: %s.", kvs_errmsg(db));
	(void) kvs_close(db);
	return rc == KVS_OK;
}

/*
 * parseTypeString, its errors caught (a header's type name that is not a
 * type name at all): false with *err.  In a subtransaction, as a PL/pgSQL
 * exception block, so that whatever the parser or the catalog lookups
 * leave behind is released.
 */
static bool
parse_type(const char *str, Oid *typid, int32 *typmod, char **err)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		parseTypeString(str, typid, typmod, true);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *ed;

		MemoryContextSwitchTo(cxt);
		ed = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		*err = ed->message;
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return ok;
}

/*
 * The type of column c as a schema-qualified name this database resolves to
 * the very type the file stores, or NULL with *why.
 */
static char *
column_type(KvsFileColumn *c, const char *colname, char **why)
{
	Oid			typid;
	int32		typmod;

	if (c->type == NULL)
	{
		/* no names: only a built-in type's OID means the same everywhere */
		if (c->typid >= FirstNormalObjectId ||
			!SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(c->typid)))
		{
			*why = psprintf("Its header records no type names, and the type of column %s is not a built-in one: its OID alone does not say which type it is.",
							colname);
			return NULL;
		}
		return format_type_extended(c->typid, c->typmod,
									FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
	}
	if (!parse_type(c->type, &typid, &typmod, why))
	{
		*why = psprintf("Its header names the type of column %s \"%s\", which is not a type name (%s).",
						colname, c->type, *why);
		return NULL;
	}
	if (!OidIsValid(typid))
	{
		*why = psprintf("Column %s is of type %s, which does not exist here.",
						colname, c->type);
		return NULL;
	}
	if (typid != c->typid || typmod != c->typmod)
	{
		*why = psprintf("Column %s is of type %s, which here is another type than the one the file was written with.",
						colname, c->type);
		return NULL;
	}
	/* the canonical spelling, not the header's text */
	return format_type_extended(typid, typmod,
								FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
}

/*
 * The CREATE FOREIGN TABLE of file path as table name, or NULL with *why
 * (and *hint, or NULL) if the file cannot be imported.
 */
static char *
table_command(const char *server, const char *name, const char *path,
			  char **why, char **hint)
{
	FileHeader	h;
	KvsFileColumn *cols;
	int			n,
				i;
	bool		mapped,
				named;
	char		kvsdir[MAXPGPATH];
	StringInfoData cmd;

	*hint = NULL;
	snprintf(kvsdir, sizeof(kvsdir), "%s/kvs_fdw", DataDir);
	if (kvs_path_is_below(path, kvsdir))
	{
		*why = pstrdup("It leads into the data directory's kvs_fdw directory, where the files of this server's tables are.");
		*hint = pstrdup("Copy the file out of the data directory, and import the copy.");
		return NULL;
	}
	if (!superuser() && kvs_path_is_internal(path))
	{
		*why = pstrdup("It leads into the data directory or a tablespace; only superusers may use files there.");
		return NULL;
	}
	if (!read_header(path, &h, why, hint))
		return NULL;
	cols = kvs_descriptor_columns(h.desc, h.desc_len, &n, &mapped, &named, why);
	if (cols == NULL)
		return NULL;
	if (mapped && !named)
	{
		*why = pstrdup("Its columns were changed by ALTER, and its header does not say what rows written before the change read for the columns added since.");
		*hint = pstrdup("Open the file once through its own table with this version of kvs_fdw to store the column names.");
		return NULL;
	}
	initStringInfo(&cmd);
	appendStringInfo(&cmd, "CREATE FOREIGN TABLE %s (", quote_identifier(name));
	for (i = 0; i < n; i++)
	{
		KvsFileColumn *c = &cols[i];
		char	   *colname = c->name ? c->name : psprintf("col%d", i + 1);
		char	   *type = column_type(c, quote_identifier(colname), why);

		if (type == NULL)
		{
			if (!named)
				*hint = pstrdup("Open the file once through its own table with this version of kvs_fdw to store the column names and types.");
			return NULL;
		}
		appendStringInfo(&cmd, "%s\n  %s %s", i > 0 ? "," : "",
						 quote_identifier(colname), type);
		if (c->key || c->missing)
		{
			appendStringInfoString(&cmd, " OPTIONS (");
			if (c->key)
				appendStringInfoString(&cmd, "key 'true'");
			if (c->missing)
				appendStringInfo(&cmd, "%smissing %s", c->key ? ", " : "",
								 quote_literal_cstr(c->missing));
			appendStringInfoChar(&cmd, ')');
		}
	}
	appendStringInfo(&cmd, "\n) SERVER %s OPTIONS (filename %s",
					 quote_identifier(server), quote_literal_cstr(path));
	if (h.fillfactor != 0 && h.fillfactor != DEFAULT_FILLFACTOR)
		appendStringInfo(&cmd, ", fillfactor '%u'", h.fillfactor);
	appendStringInfoChar(&cmd, ')');
	return cmd.data;
}

List *
kvsImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	char	   *dir = pstrdup(import_directory(stmt));
	List	   *names;
	List	   *cmds = NIL;
	ListCell   *lc;
	size_t		dlen;

	check_privilege(dir);
	dlen = strlen(dir);
	while (dlen > 1 && dir[dlen - 1] == '/')
		dir[--dlen] = '\0';
	names = list_kvs_files(stmt, dir);
	foreach(lc, names)
	{
		char	   *name = lfirst(lc);
		char	   *path = psprintf("%s/%s.kvs", strcmp(dir, "/") == 0 ? "" : dir, name);
		char	   *why = NULL,
				   *hint = NULL,
				   *cmd;

		cmd = table_command(server->servername, name, path, &why, &hint);
		if (cmd != NULL)
			cmds = lappend(cmds, cmd);
		else
			ereport(WARNING,
					(errmsg("kvs file \"%s.kvs\" not imported", name),
					 errdetail("%s", why),
					 hint ? errhint("%s", hint) : 0));
	}
	return cmds;
}
