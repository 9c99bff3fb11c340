/*
 * errors.c - the one place where engine return codes become SQLSTATEs.
 *
 * Every engine call that can fail goes through kvs_check_rc() or
 * kvs_report_error().  Before raising, an open section on the handle is
 * aborted (kvs_abort), so an ERROR never leaves the file locked and never
 * writes out part of a section: the file stays as it was before it.
 * Also here: the host callbacks the engine calls (interrupts, lock waits)
 * and kvs_host_options(), which every open of a kvs file starts from.
 */
#include "postgres.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "utils/wait_event.h"

#include "kvs_fdw.h"

/*
 * Called by the engine while it waits for a file lock: nonzero makes the wait
 * return KVS_EINTR, after which we let Postgres process the interrupt.
 */
int
kvs_interrupted(void *arg)
{
	(void) arg;
	return (InterruptPending && (QueryCancelPending || ProcDiePending)) ? 1 : 0;
}

/*
 * Called by the engine when a wait for a file lock begins (waiting = 1; only
 * when the lock was not free at once) and when it ends, whichever way it
 * ends, so pg_stat_activity shows the backend as waiting (wait_event_type
 * and wait_event "Extension": PG 15 has no named events for extensions).
 */
void
kvs_lock_wait(void *arg, int waiting)
{
	(void) arg;
	if (waiting)
		pgstat_report_wait_start(PG_WAIT_EXTENSION);
	else
		pgstat_report_wait_end();
}

/*
 * Options for opening a kvs file from this backend: the host callbacks
 * every open needs (cancel during a lock wait, the wait event), flags and
 * frames as given, the replacement policy of kvs_fdw.cache_policy, the rest
 * the engine's defaults.  In shared mode every handle uses the shared pool
 * instead (frames and policy are then the pool's; see shmem.c).
 */
void
kvs_host_options(kvs_options *o, int flags, uint32 cache_pages)
{
	kvs_options_init(o);
	o->flags = flags;
	o->cache_pages = cache_pages;
	o->cache_policy = kvs_fdw_cache_policy;
	o->interrupted = kvs_interrupted;
	o->lock_wait = kvs_lock_wait;
	o->journal = kvs_fdw_journal();	/* the cluster's, for every file */
	/*
	 * Local mode too names the cluster: the engine then knows that a file a
	 * shared-mode run of this cluster left owned is held by no pool (this
	 * postmaster has none), so the other backends' read sections on it are
	 * waited for as any lock, never taken for a pool's hold (KVS_EBUSY).
	 */
	o->owner_id = GetSystemIdentifier();
	kvs_shared_options(o);		/* shared mode: the pool in shared memory */
}

/*
 * kvs_open() failed with KVS_EIO before a handle existed, so there is no
 * kvs_errno(): find the cause ourselves (missing directory, permissions).
 */
static int
open_errno(const char *path)
{
	struct stat st;
	char		dir[MAXPGPATH];
	char	   *slash;

	if (stat(path, &st) == 0)
	{
		if (S_ISDIR(st.st_mode))
			return EISDIR;
		return access(path, R_OK | W_OK) == 0 ? EIO : errno;
	}
	if (errno != ENOENT)
		return errno;
	strlcpy(dir, path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return ENOENT;
	*slash = '\0';
	if (stat(dir, &st) != 0)
		return errno;
	if (access(dir, W_OK | X_OK) != 0)
		return errno;
	return EIO;
}

/*
 * filename names a directory: say so (open(2) says EISDIR, which the engine
 * reports as an I/O error).  42809 as Postgres's errcode_for_file_access()
 * gives EISDIR.  Also called by the option validator.
 */
void
kvs_report_directory(const char *path)
{
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("kvs file \"%s\" is a directory", path),
			 errhint("Option \"filename\" names the kvs file itself, not the directory it is in.")));
}

void
kvs_check_rc(int rc, kvs *db, const char *path)
{
	if (rc != KVS_OK)
		kvs_report_error(rc, db, path);
}

/*
 * Is an engine message (KVS_EBUSY) the refusal of a file whose header names
 * another cluster as its owner (kvs.c owner_refused), which kvs_fdw_adopt
 * lifts, rather than a process outside the cluster holding it?
 */
bool
kvs_owned_elsewhere(const char *engine_msg)
{
	return engine_msg != NULL && strstr(engine_msg, "the file belongs to owner") != NULL;
}

void
kvs_report_error(int rc, kvs *db, const char *path)
{
	const char *msg;
	uint32		page = 0;
	int			err = 0;

	if (db != NULL)
	{
		msg = kvs_errmsg(db);
		page = kvs_errpage(db);
		err = kvs_errno(db);
		if (kvs_in_section(db) >= 0)
			(void) kvs_abort(db);
	}
	else
	{
		msg = kvs_open_errmsg();
		if (rc == KVS_EIO && path != NULL)
			err = open_errno(path);
	}
	if (msg == NULL || msg[0] == '\0')
		msg = kvs_strerror(rc);
	if (path == NULL)
		path = "?";
	/* the engine's detail often starts with the path: say it once */
	if (strncmp(msg, path, strlen(path)) == 0 && msg[strlen(path)] == ':')
	{
		msg += strlen(path) + 1;
		while (*msg == ' ')
			msg++;
	}

	if (kvs_is_damage(rc))
	{
		if (page != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("kvs file \"%s\" is damaged at page %u: %s",
							path, page, msg)));
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kvs file \"%s\" is damaged or not a kvs file: %s",
						path, msg)));
	}
	switch (rc)
	{
		case KVS_EIO:
			if (err == EISDIR)
				kvs_report_directory(path);
			errno = err ? err : EIO;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not access kvs file \"%s\": %m", path),
					 errdetail_internal("%s", msg)));
			break;
		case KVS_ENOSPC:
			ereport(ERROR,
					(errcode(ERRCODE_DISK_FULL),
					 errmsg("could not write kvs file \"%s\": no space left on device",
							path),
					 errdetail_internal("%s", msg)));
			break;
		case KVS_ETOOBIG:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("value too large for kvs file \"%s\"", path),
					 errdetail_internal("%s", msg)));
			break;
		case KVS_ENOMEM:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory in kvs file \"%s\"", path),
					 errdetail_internal("%s", msg),
					 kvs_shared_pool() != NULL ?
					 errhint("The shared kvs cache has room for kvs_fdw.shared_files (%d) files open at once.",
							 kvs_fdw_shared_files) : 0));
			break;
		case KVS_EBUSY:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("kvs file \"%s\" is in use elsewhere", path),
					 errdetail_internal("%s", msg),
					 kvs_owned_elsewhere(msg) ?
					 errhint("The file's header names another cluster as its owner (a cluster restored, copied or upgraded under a new system identifier). If this cluster is to take the file over, a superuser runs SELECT kvs_fdw_adopt('<table>').") :
					 errhint("A process outside this cluster, or another cluster, has the file open.")));
			break;
		case KVS_EINDOUBT:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("kvs file \"%s\" has a commit in doubt in its journal", path),
					 errdetail_internal("%s", msg),
					 errhint("Open the file in the cluster whose journal holds the commit; it resolves it from the commit log.")));
			break;
		case KVS_EJOURNAL:
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("kvs file \"%s\" is read-only after a journal failure", path),
					 errdetail_internal("%s", msg),
					 errhint("Fix the cause (see the server log); the file is recovered from the journal when it is next opened, e.g. after a restart.")));
			break;
		case KVS_EINTR:
			CHECK_FOR_INTERRUPTS();
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("canceling statement while waiting for the lock of kvs file \"%s\"",
							path)));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("kvs file \"%s\": %s", path, msg),
					 errdetail_internal("engine code %d (%s)", rc, kvs_strerror(rc))));
			break;
	}
	pg_unreachable();
}
