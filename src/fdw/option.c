/*
 * option.c - kvs_fdw option validation, in one place, and reading a table's
 * options.
 *
 *   table   filename    absolute path of the kvs file (superuser or members
 *                       of pg_write_server_files only; never inside the data
 *                       directory or a tablespace unless superuser, checked
 *                       here for the user who sets it and at every open for
 *                       the table's owner, see kvs_path_is_internal); not a
 *                       directory; default: a file in the data directory
 *                       owned by the table
 *   table   fillfactor  split threshold in percent, 10..100
 *   column  key         'true' marks the key column (else the first column)
 *   column  missing     what rows stored before the column was added read
 *                       for it (set by ADD COLUMN ... DEFAULT, see alter.c)
 *
 * Wrapper and server take no options.  An unknown option is HV00D with a
 * "Perhaps you meant" hint; a bad value is 22023 naming the option.
 */
#include "postgres.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "access/reloptions.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_attribute.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/varlena.h"

#include "kvs_fdw.h"

typedef struct KvsOption
{
	const char *name;
	Oid			context;		/* catalog where the option may appear */
} KvsOption;

static const KvsOption kvs_valid_options[] = {
	{"filename", ForeignTableRelationId},
	{"fillfactor", ForeignTableRelationId},
	{"key", AttributeRelationId},
	{"missing", AttributeRelationId},
	{NULL, InvalidOid}
};

PG_FUNCTION_INFO_V1(kvs_fdw_validator);

static bool
parse_bool_option(DefElem *def)
{
	bool		b;
	char	   *s = defGetString(def);

	if (!parse_bool(s, &b))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", def->defname, s),
				 errhint("Use 'true' or 'false'.")));
	return b;
}

static int
parse_fillfactor(DefElem *def)
{
	char	   *s = defGetString(def);
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 10 || v > 100)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"fillfactor\": \"%s\"", s),
				 errhint("fillfactor is a whole number of percent from 10 to 100.")));
	return (int) v;
}

/*
 * Resolve path as the kernel would, following symbolic links: realpath() of
 * its longest existing prefix, then the components that do not exist yet (a
 * file about to be created resolves through its parent directory).  A
 * dangling symbolic link is followed to its target (open(O_CREAT) would
 * create that).  Missing components cannot be walked through, so a ".."
 * among them leads nowhere until they exist, and every open resolves again.
 * False if the path cannot be resolved (no search permission, a loop).
 */
static bool
resolve_path(const char *path, char *out)
{
	char		head[MAXPGPATH];
	char		rest[MAXPGPATH] = "";
	char		tmp[MAXPGPATH];
	int			links = 0;

	strlcpy(head, path, sizeof(head));
	for (;;)
	{
		char	   *r = realpath(head[0] ? head : "/", NULL);
		char	   *slash;
		struct stat st;

		if (r != NULL)
		{
			snprintf(out, MAXPGPATH, "%s%s", strcmp(r, "/") == 0 ? "" : r, rest);
			free(r);
			if (out[0] == '\0')
				strlcpy(out, "/", MAXPGPATH);
			return true;
		}
		if ((errno != ENOENT && errno != ENOTDIR) || head[0] == '\0')
			return false;
		slash = strrchr(head, '/');
		if (slash == NULL)
			return false;
		if (lstat(head, &st) == 0 && S_ISLNK(st.st_mode))
		{
			/* a dangling link: go on from its target */
			ssize_t		n = readlink(head, tmp, sizeof(tmp) - 1);

			if (n < 0 || n >= (ssize_t) sizeof(tmp) - 1 || ++links > 40)
				return false;
			tmp[n] = '\0';
			if (tmp[0] == '/')
				strlcpy(head, tmp, sizeof(head));
			else
			{
				char		rel[MAXPGPATH];

				strlcpy(rel, tmp, sizeof(rel));
				*slash = '\0';
				snprintf(tmp, sizeof(tmp), "%s/%s", head, rel);
				strlcpy(head, tmp, sizeof(head));
			}
			continue;
		}
		snprintf(tmp, sizeof(tmp), "%s%s", slash, rest);
		strlcpy(rest, tmp, sizeof(rest));
		*slash = '\0';
	}
}

/* Is the resolved path resolved equal to or below directory dir (resolved)? */
static bool
resolved_below(const char *resolved, const char *dir)
{
	char		d[MAXPGPATH];

	return resolve_path(dir, d) && path_is_prefix_of_path(d, resolved);
}

/*
 * Does path lead (after symbolic links) to directory dir or below it?  A
 * path that cannot be resolved counts as below.
 */
bool
kvs_path_is_below(const char *path, const char *dir)
{
	char		resolved[MAXPGPATH];

	return !resolve_path(path, resolved) || resolved_below(resolved, dir);
}

/*
 * Does path lead (after symbolic links) into the data directory or into a
 * tablespace's directory?  Files there belong to the server: other tables'
 * kvs files (of any database) and relation files.  A path that cannot be
 * resolved counts as internal.
 */
bool
kvs_path_is_internal(const char *path)
{
	char		resolved[MAXPGPATH];
	char		tsdir[MAXPGPATH];
	DIR		   *dir;
	struct dirent *de;
	bool		internal = false;

	if (!resolve_path(path, resolved) || resolved_below(resolved, DataDir))
		return true;
	/* tablespaces: the targets of the links in pg_tblspc */
	snprintf(tsdir, sizeof(tsdir), "%s/pg_tblspc", DataDir);
	dir = opendir(tsdir);
	if (dir == NULL)
		return false;
	while (!internal && (de = readdir(dir)) != NULL)
	{
		char		link[MAXPGPATH];

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", tsdir, de->d_name);
		internal = resolved_below(resolved, link);
	}
	closedir(dir);
	return internal;
}

static void
check_filename(DefElem *def)
{
	char	   *s = defGetString(def);

	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_WRITE_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set option \"filename\""),
				 errdetail("Only superusers and members of pg_write_server_files may choose the file of a kvs_fdw table.")));
	if (s[0] == '\0' || !is_absolute_path(s))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"filename\": \"%s\"", s),
				 errhint("filename must be an absolute path.")));
	if (strlen(s) >= MAXPGPATH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"filename\": path too long")));
	/* the table's owner is checked again at every open (handle.c) */
	if (!superuser() && kvs_path_is_internal(s))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set option \"filename\" to \"%s\"", s),
				 errdetail("The path leads into the data directory or a tablespace; only superusers may use files there."),
				 errhint("Choose a file outside the data directory.")));
	{
		struct stat st;

		if (stat(s, &st) == 0 && S_ISDIR(st.st_mode))
			kvs_report_directory(s);
	}
}

/* Report an unknown option with the closest valid name, or the valid list. */
static void
unknown_option(const char *name, Oid catalog)
{
	const KvsOption *o;
	const char *best = NULL;
	int			bestd = INT_MAX;
	StringInfoData valid;

	initStringInfo(&valid);
	for (o = kvs_valid_options; o->name; o++)
	{
		int			d;

		if (o->context != catalog)
			continue;
		appendStringInfo(&valid, "%s%s", valid.len ? ", " : "", o->name);
		d = varstr_levenshtein(name, strlen(name), o->name, strlen(o->name),
							   1, 1, 1, false);
		if (d < bestd)
		{
			bestd = d;
			best = o->name;
		}
	}
	if (best != NULL && bestd <= Max(2, (int) strlen(name) / 2))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\"", name),
				 errhint("Perhaps you meant the option \"%s\".", best)));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\"", name),
			 valid.len ? errhint("Valid options in this context are: %s.", valid.data)
			 : errhint("There are no valid options in this context.")));
}

Datum
kvs_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *lc;
	bool		seen_filename = false,
				seen_ff = false,
				seen_key = false;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const KvsOption *o;
		bool		known = false;

		for (o = kvs_valid_options; o->name; o++)
			if (o->context == catalog && strcmp(o->name, def->defname) == 0)
				known = true;
		if (!known)
			unknown_option(def->defname, catalog);

		if (strcmp(def->defname, "filename") == 0)
		{
			if (seen_filename)
				ereport(ERROR,
						(errcode(ERRCODE_SYNTAX_ERROR),
						 errmsg("conflicting or redundant options")));
			seen_filename = true;
			check_filename(def);
		}
		else if (strcmp(def->defname, "fillfactor") == 0)
		{
			if (seen_ff)
				ereport(ERROR,
						(errcode(ERRCODE_SYNTAX_ERROR),
						 errmsg("conflicting or redundant options")));
			seen_ff = true;
			(void) parse_fillfactor(def);
		}
		else if (strcmp(def->defname, "key") == 0)
		{
			if (seen_key)
				ereport(ERROR,
						(errcode(ERRCODE_SYNTAX_ERROR),
						 errmsg("conflicting or redundant options")));
			seen_key = true;
			(void) parse_bool_option(def);
		}
	}
	PG_RETURN_VOID();
}

/*
 * A table's options, as the validator accepted them.  The key column is the
 * one with key 'true'; two such columns are an error (the validator sees one
 * column at a time and cannot catch it).
 */
void
kvs_get_table_options(Relation rel, KvsTableOptions *opts)
{
	ForeignTable *ft = GetForeignTable(RelationGetRelid(rel));
	TupleDesc	td = RelationGetDescr(rel);
	ListCell   *lc;
	int			i;
	AttrNumber	first = InvalidAttrNumber;

	memset(opts, 0, sizeof(*opts));
	foreach(lc, ft->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "filename") == 0)
			opts->filename = defGetString(def);
		else if (strcmp(def->defname, "fillfactor") == 0)
			opts->fillfactor = parse_fillfactor(def);
	}

	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);
		List	   *colopts;

		if (att->attisdropped)
			continue;
		if (first == InvalidAttrNumber)
			first = att->attnum;
		colopts = GetForeignColumnOptions(RelationGetRelid(rel), att->attnum);
		foreach(lc, colopts)
		{
			DefElem    *def = (DefElem *) lfirst(lc);

			if (strcmp(def->defname, "key") == 0 && parse_bool_option(def))
			{
				if (opts->keyattno != InvalidAttrNumber)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("foreign table \"%s\" has more than one column with option \"key\"",
									RelationGetRelationName(rel)),
							 errhint("A kvs_fdw table has exactly one key column.")));
				opts->keyattno = att->attnum;
			}
		}
	}
	if (opts->keyattno == InvalidAttrNumber)
		opts->keyattno = first;
	if (opts->keyattno == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("foreign table \"%s\" has no columns",
						RelationGetRelationName(rel)),
				 errhint("A kvs_fdw table needs a key column.")));
}
