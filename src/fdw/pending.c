/*
 * pending.c - the transaction's write set of each kvs file.
 *
 * A transaction's INSERT, UPDATE, DELETE, COPY and TRUNCATE on a kvs table
 * do not write the file when their statement runs: they go into the write
 * set of the table's file (KvsFile.pending), which the transaction's own
 * reads overlay on the file (kvs_pending_get, the merged cursor) and which
 * the commit applies in one write section (kvs_pending_apply, called from
 * the pre-commit callback: see txn.c).  Other sessions read the file alone.
 *
 * Per key, a chain of versions, newest first: PUT value or DELETE, tagged
 * with the subtransaction that made it (GetCurrentSubTransactionId) and
 * the statement stamp in force (KvsFile.stamp), so a statement can tell its
 * own writes (UPDATE t SET id = id + 1, Halloween).  At most one version per
 * (key, subtransaction): a second write in the same subtransaction replaces
 * the first.  Subtransaction ids only grow within a top-level transaction
 * and a subtransaction's children get larger ones than itself, so the abort
 * of subtransaction S drops exactly the versions with subid >= S; a
 * subtransaction's commit changes nothing.  A TRUNCATE is a marker (its
 * subid and a sequence number): it hides the file's rows and every version
 * older than itself.
 *
 * The read rules are those the engine's stamps gave when writes went to the
 * file at once: a lookup returns the newest version (and its stamp) or, if
 * none and no TRUNCATE, the file's record (stamp 0: the file holds only
 * committed rows, never one of a running statement); a full scan returns
 * each file row as its newest version shows it (a DELETE hides it), then
 * the write set's PUT keys the file does not have, skipping versions
 * written under the stamp the scan was told to skip.
 *
 * Memory: every write set lives in one context under TopTransactionContext,
 * dropped with the transaction.  Entries are never removed (a chain emptied
 * by a subtransaction abort stays, empty), so the order array that the
 * merged cursor and the commit walk stays valid while statements add keys.
 * NOT DONE: spilling a write set beyond kvs_fdw.pending_memory to a
 * temporary file.  The setting only bounds it: a write beyond it fails with
 * 54000 (so a runaway transaction cannot exhaust the backend's memory).
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "kvs_fdw.h"

int			kvs_fdw_pending_memory_kb = 64 * 1024;

typedef struct PVersion
{
	struct PVersion *older;
	SubTransactionId subid;
	bool		is_delete;
	uint64		stamp;			/* statement stamp in force, 0 = none */
	uint64		seq;			/* order among versions and TRUNCATEs */
	uint32		vlen;
	char		val[FLEXIBLE_ARRAY_MEMBER];
} PVersion;

typedef struct PKey
{
	const char *data;
	uint32		len;
} PKey;

typedef struct PEntry
{
	PKey		key;			/* hash key: points into the entry's copy */
	PVersion   *newest;			/* NULL: no version (all rolled back) */
	bool		file_absent;	/* created by an INSERT that found the key
								 * absent from the file: its commit must not
								 * overwrite a row another transaction
								 * committed meanwhile */
} PEntry;

typedef struct PTruncate
{
	SubTransactionId subid;
	uint64		seq;
} PTruncate;

struct KvsWriteSet
{
	KvsFile    *file;
	HTAB	   *keys;
	PEntry	  **order;			/* entries in creation order */
	size_t		nentries;
	size_t		maxentries;
	PTruncate  *truncs;			/* TRUNCATE markers, oldest first */
	int			ntruncs;
	int			maxtruncs;
	uint64		seq;
	SubTransactionId max_subid; /* no version has a larger subid */
	uint64		cursor_seq;		/* seq when a merged cursor last opened:
								 * older versions may still be read */
	int64		nkeys;			/* entries with a version */
	int64		bytes;			/* keys and values of live versions */
};

/* the context of every write set of this transaction, and the list */
static MemoryContext pending_cxt = NULL;
static List *write_sets = NIL;	/* of KvsWriteSet *, in pending_cxt */

static uint32
pkey_hash(const void *key, Size keysize)
{
	const PKey *k = key;

	return hash_bytes((const unsigned char *) k->data, (int) k->len);
}

static int
pkey_match(const void *a, const void *b, Size keysize)
{
	const PKey *x = a,
			   *y = b;

	if (x->len != y->len)
		return 1;
	return memcmp(x->data, y->data, x->len);
}

static KvsWriteSet *
get_ws(KvsFile *f, bool create)
{
	KvsWriteSet *ws;
	HASHCTL		ctl;
	MemoryContext old;

	if (f->pending != NULL || !create)
		return f->pending;
	if (pending_cxt == NULL)
		pending_cxt = AllocSetContextCreate(TopTransactionContext,
											"kvs_fdw write sets",
											ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(pending_cxt);
	ws = palloc0(sizeof(KvsWriteSet));
	ws->file = f;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(PKey);
	ctl.entrysize = sizeof(PEntry);
	ctl.hash = pkey_hash;
	ctl.match = pkey_match;
	ctl.hcxt = pending_cxt;
	ws->keys = hash_create("kvs_fdw write set", 256, &ctl,
						   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	write_sets = lappend(write_sets, ws);
	MemoryContextSwitchTo(old);
	f->pending = ws;
	return ws;
}

#define SEQ_NOW		PG_UINT64_MAX

/* The newest TRUNCATE as of sequence number upto, or 0. */
static uint64
trunc_seq_at(KvsWriteSet *ws, uint64 upto)
{
	int			i;

	for (i = ws->ntruncs - 1; i >= 0; i--)
		if (ws->truncs[i].seq <= upto)
			return ws->truncs[i].seq;
	return 0;
}

static uint64
trunc_seq(KvsWriteSet *ws)
{
	return trunc_seq_at(ws, SEQ_NOW);
}

/*
 * The entry's version as of sequence number upto (SEQ_NOW: the newest), or
 * NULL (none then, or hidden by a TRUNCATE).
 */
static PVersion *
visible_at(KvsWriteSet *ws, PEntry *e, uint64 upto)
{
	PVersion   *v;

	if (e == NULL)
		return NULL;
	for (v = e->newest; v != NULL && v->seq > upto; v = v->older)
		;
	if (v == NULL || v->seq < trunc_seq_at(ws, upto))
		return NULL;
	return v;
}

static PVersion *
visible(KvsWriteSet *ws, PEntry *e)
{
	return visible_at(ws, e, SEQ_NOW);
}

static PEntry *
find_entry(KvsWriteSet *ws, const char *key, size_t klen)
{
	PKey		k;

	if (ws == NULL)
		return NULL;
	k.data = key;
	k.len = (uint32) klen;
	return hash_search(ws->keys, &k, HASH_FIND, NULL);
}

int
kvs_pending_get(KvsFile *f, const char *key, size_t klen, kvs_slice *val,
				uint64 *stamp)
{
	KvsWriteSet *ws = f->pending;
	PVersion   *v = visible(ws, find_entry(ws, key, klen));

	if (stamp)
		*stamp = 0;
	if (v != NULL)
	{
		if (v->is_delete)
			return KVS_NOTFOUND;
		if (stamp)
			*stamp = v->stamp;
		val->data = v->val;
		val->len = v->vlen;
		return KVS_OK;
	}
	if (ws != NULL && trunc_seq(ws) > 0)
		return KVS_NOTFOUND;
	return kvs_get(f->db, key, klen, val);
}

static void
check_memory(KvsWriteSet *ws)
{
	if (MemoryContextMemAllocated(pending_cxt, true) >
		(Size) kvs_fdw_pending_memory_kb * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("pending kvs_fdw writes of this transaction exceed kvs_fdw.pending_memory (%d kB)",
						kvs_fdw_pending_memory_kb),
				 errdetail("Writes to kvs tables are kept in memory until COMMIT; spilling them to a temporary file is not implemented yet."),
				 errhint("Raise kvs_fdw.pending_memory, or split the work into smaller transactions.")));
}

/* Add a version (val NULL: DELETE) to the key's chain. */
static void
add_version(KvsFile *f, const char *key, size_t klen, const char *val,
			size_t vlen, bool file_absent)
{
	KvsWriteSet *ws = get_ws(f, true);
	SubTransactionId subid = GetCurrentSubTransactionId();
	MemoryContext old = MemoryContextSwitchTo(pending_cxt);
	PKey		k;
	PEntry	   *e;
	PVersion   *v;
	bool		found;

	check_memory(ws);
	k.data = key;
	k.len = (uint32) klen;
	e = hash_search(ws->keys, &k, HASH_ENTER, &found);
	if (!found)
	{
		char	   *copy = palloc(klen + 1);

		memcpy(copy, key, klen);
		e->key.data = copy;
		e->key.len = (uint32) klen;
		e->newest = NULL;
		e->file_absent = false;
		if (ws->nentries == ws->maxentries)
		{
			ws->maxentries = ws->maxentries ? ws->maxentries * 2 : 256;
			ws->order = ws->order ?
				repalloc_huge(ws->order, sizeof(PEntry *) * ws->maxentries) :
				palloc(sizeof(PEntry *) * ws->maxentries);
		}
		ws->order[ws->nentries++] = e;
	}
	if (e->newest == NULL)
	{
		e->file_absent = file_absent;
		ws->nkeys++;
		ws->bytes += klen;
	}
	v = palloc(offsetof(PVersion, val) + (val ? vlen : 0) + 1);
	v->subid = subid;
	v->is_delete = (val == NULL);
	v->stamp = f->stamp;
	v->seq = ++ws->seq;
	v->vlen = val ? (uint32) vlen : 0;
	if (val)
		memcpy(v->val, val, vlen);
	ws->bytes += v->vlen;
	if (e->newest != NULL && e->newest->subid == subid &&
		e->newest->seq > ws->cursor_seq)
	{
		/* one version per (key, subtransaction), unless a cursor may read it */
		PVersion   *gone = e->newest;

		v->older = gone->older;
		ws->bytes -= gone->vlen;
		pfree(gone);
	}
	else
		v->older = e->newest;
	e->newest = v;
	if (subid > ws->max_subid)
		ws->max_subid = subid;
	MemoryContextSwitchTo(old);
}

int
kvs_pending_put(KvsFile *f, const char *key, size_t klen, const char *val,
				size_t vlen, int flags)
{
	bool		absent = false;

	if (klen > KVS_MAX_KEY)
		return KVS_ETOOBIG;
	if (flags & KVS_NOOVERWRITE)
	{
		kvs_slice	cur;
		int			rc = kvs_pending_get(f, key, klen, &cur, NULL);

		if (rc == KVS_OK)
			return KVS_EXISTS;
		if (rc != KVS_NOTFOUND)
			return rc;
		/* absent from the file too, not just deleted or truncated here */
		absent = visible(f->pending, find_entry(f->pending, key, klen)) == NULL &&
			(f->pending == NULL || trunc_seq(f->pending) == 0);
	}
	add_version(f, key, klen, val, vlen, absent);
	return KVS_OK;
}

int
kvs_pending_delete(KvsFile *f, const char *key, size_t klen)
{
	kvs_slice	cur;
	int			rc = kvs_pending_get(f, key, klen, &cur, NULL);

	if (rc != KVS_OK)
		return rc;
	add_version(f, key, klen, NULL, 0, false);
	return KVS_OK;
}

void
kvs_pending_truncate(KvsFile *f)
{
	KvsWriteSet *ws = get_ws(f, true);
	MemoryContext old = MemoryContextSwitchTo(pending_cxt);
	SubTransactionId subid = GetCurrentSubTransactionId();

	if (ws->ntruncs == ws->maxtruncs)
	{
		ws->maxtruncs = ws->maxtruncs ? ws->maxtruncs * 2 : 4;
		ws->truncs = ws->truncs ?
			repalloc(ws->truncs, sizeof(PTruncate) * ws->maxtruncs) :
			palloc(sizeof(PTruncate) * ws->maxtruncs);
	}
	ws->truncs[ws->ntruncs].subid = subid;
	ws->truncs[ws->ntruncs].seq = ++ws->seq;
	ws->ntruncs++;
	if (subid > ws->max_subid)
		ws->max_subid = subid;
	MemoryContextSwitchTo(old);
}

/* Does this file have writes to apply (a version or a TRUNCATE)? */
bool
kvs_pending_has_writes(KvsFile *f)
{
	KvsWriteSet *ws = f->pending;

	return ws != NULL && (ws->nkeys > 0 || ws->ntruncs > 0);
}

bool
kvs_pending_any(void)
{
	ListCell   *lc;

	foreach(lc, write_sets)
		if (kvs_pending_has_writes(((KvsWriteSet *) lfirst(lc))->file))
			return true;
	return false;
}

void
kvs_pending_counts(KvsFile *f, int64 *nkeys, int64 *bytes, bool *truncated)
{
	KvsWriteSet *ws = f->pending;

	*nkeys = ws ? ws->nkeys : 0;
	*bytes = ws ? ws->bytes : 0;
	*truncated = ws ? ws->ntruncs > 0 : false;
}

/* Subtransaction subid aborted: drop what it and its children wrote. */
void
kvs_pending_subabort(SubTransactionId subid)
{
	ListCell   *lc;

	foreach(lc, write_sets)
	{
		KvsWriteSet *ws = (KvsWriteSet *) lfirst(lc);
		size_t		i;

		if (ws->max_subid < subid)
			continue;
		for (i = 0; i < ws->nentries; i++)
		{
			PEntry	   *e = ws->order[i];

			while (e->newest != NULL && e->newest->subid >= subid)
			{
				PVersion   *gone = e->newest;

				e->newest = gone->older;
				ws->bytes -= gone->vlen;
				pfree(gone);
				if (e->newest == NULL)
				{
					ws->nkeys--;
					ws->bytes -= e->key.len;
					e->file_absent = false;
				}
			}
		}
		while (ws->ntruncs > 0 && ws->truncs[ws->ntruncs - 1].subid >= subid)
			ws->ntruncs--;
		ws->max_subid = subid - 1;
	}
}

/* The transaction ended: forget every write set (the memory goes with it). */
void
kvs_pending_reset(void)
{
	ListCell   *lc;

	foreach(lc, write_sets)
		((KvsWriteSet *) lfirst(lc))->file->pending = NULL;
	write_sets = NIL;
	pending_cxt = NULL;			/* a child of TopTransactionContext */
}

/* The files with writes to apply, in path order (the commit's lock order). */
static int
cmp_path(const ListCell *a, const ListCell *b)
{
	KvsWriteSet *x = lfirst(a),
			   *y = lfirst(b);

	return strcmp(x->file->path, y->file->path);
}

List *
kvs_pending_files(void)
{
	List	   *out = NIL;
	ListCell   *lc;

	foreach(lc, write_sets)
	{
		KvsWriteSet *ws = lfirst(lc);

		if (kvs_pending_has_writes(ws->file))
			out = lappend(out, ws);
	}
	list_sort(out, cmp_path);
	return out;
}

KvsFile *
kvs_write_set_file(KvsWriteSet *ws)
{
	return ws->file;
}

/*
 * Apply the final version of each key to the file, inside the caller's
 * write section: after a TRUNCATE marker, the file is truncated first and
 * only versions newer than the marker are written.  A key an INSERT found
 * absent must still be absent (another transaction may have committed it
 * since): 23505 otherwise.
 */
void
kvs_pending_apply(KvsWriteSet *ws)
{
	kvs		   *db = ws->file->db;
	uint64		t = trunc_seq(ws);
	size_t		i;
	int			rc;

	kvs_set_stamp(db, 0);
	if (t > 0)
	{
		rc = kvs_truncate(db);
		if (rc != KVS_OK)
			kvs_report_error(rc, db, ws->file->path);
	}
	for (i = 0; i < ws->nentries; i++)
	{
		PEntry	   *e = ws->order[i];
		PVersion   *v = visible(ws, e);

		if ((i & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		if (v == NULL)
			continue;
		if (v->is_delete)
		{
			if (t > 0)
				continue;
			rc = kvs_delete(db, e->key.data, e->key.len);
			if (rc == KVS_NOTFOUND)
				continue;		/* deleted by another transaction meanwhile */
		}
		else
		{
			rc = kvs_put(db, e->key.data, e->key.len, v->val, v->vlen,
						 (e->file_absent && t == 0) ? KVS_NOOVERWRITE : 0);
			if (rc == KVS_EXISTS)
				ereport(ERROR,
						(errcode(ERRCODE_UNIQUE_VIOLATION),
						 errmsg("duplicate key value in kvs file \"%s\" at commit",
								ws->file->path),
						 errdetail("Another transaction committed a row with a key this transaction inserted.")));
		}
		if (rc != KVS_OK)
			kvs_report_error(rc, db, ws->file->path);
	}
}

/* ---- the merged cursor ---------------------------------------------------- */

/*
 * A merged cursor sees the write set as it was when it opened (as a heap
 * scan's snapshot does not see the rows later commands of its own
 * transaction write: a function called per row that inserts into the
 * scanned table), plus the stamp rule, for a cursor opened after its own
 * statement wrote.  The file's rows are read committed, batch by batch.
 */
struct KvsPendingCursor
{
	KvsFile    *file;
	uint64		upto;			/* the write set as of this sequence number */
	kvs_cursor *fc;				/* the file's cursor; NULL once done */
	size_t		pos;			/* phase 2: next entry of the order */
	uint64		skip;			/* versions of this stamp are skipped */
};

int
kvs_pcursor_open(KvsFile *f, KvsPendingCursor **out)
{
	KvsPendingCursor *pc = palloc0(sizeof(KvsPendingCursor));
	int			rc;

	pc->file = f;
	if (f->pending != NULL)
	{
		pc->upto = f->pending->seq;
		f->pending->cursor_seq = f->pending->seq;
	}
	rc = kvs_cursor_open(f->db, &pc->fc);
	if (rc != KVS_OK)
	{
		pfree(pc);
		return rc;
	}
	*out = pc;
	return KVS_OK;
}

void
kvs_pcursor_skip_stamp(KvsPendingCursor *pc, uint64 stamp)
{
	pc->skip = stamp;
}

/*
 * The next row the transaction sees, inside the caller's section (or an
 * implicit read section per file step).  The slices stay valid until the
 * next call.
 */
int
kvs_pcursor_next(KvsPendingCursor *pc, kvs_slice *key, kvs_slice *val)
{
	KvsWriteSet *ws = pc->file->pending;
	int			rc;

	while (pc->fc != NULL)
	{
		PVersion   *v;

		rc = kvs_cursor_next(pc->fc, key, val);
		if (rc == KVS_NOTFOUND)
		{
			kvs_cursor_close(pc->fc);
			pc->fc = NULL;
			break;
		}
		if (rc != KVS_OK)
			return rc;
		if (ws == NULL)
			return KVS_OK;
		if (trunc_seq_at(ws, pc->upto) > 0)
			continue;			/* truncated: every row comes from phase 2 */
		v = visible_at(ws, find_entry(ws, key->data, key->len), pc->upto);
		if (v == NULL)
			return KVS_OK;
		if (v->is_delete || (pc->skip != 0 && v->stamp == pc->skip))
			continue;
		val->data = v->val;
		val->len = v->vlen;
		return KVS_OK;
	}
	/* then the write set's keys the file does not have */
	ws = pc->file->pending;
	while (ws != NULL && pc->pos < ws->nentries)
	{
		PEntry	   *e = ws->order[pc->pos++];
		PVersion   *v = visible_at(ws, e, pc->upto);
		kvs_slice	fv;

		if (v == NULL || v->is_delete || (pc->skip != 0 && v->stamp == pc->skip))
			continue;
		if (trunc_seq_at(ws, pc->upto) == 0)
		{
			rc = kvs_get(pc->file->db, e->key.data, e->key.len, &fv);
			if (rc == KVS_OK)
				continue;		/* the file phase showed it */
			if (rc != KVS_NOTFOUND)
				return rc;
		}
		key->data = e->key.data;
		key->len = e->key.len;
		val->data = v->val;
		val->len = v->vlen;
		return KVS_OK;
	}
	return KVS_NOTFOUND;
}

void
kvs_pcursor_close(KvsPendingCursor *pc)
{
	if (pc->fc != NULL)
		kvs_cursor_close(pc->fc);
	pfree(pc);
}

/* ---- kvs_fdw_pending(): this transaction's pending writes per file ------- */
void
kvs_pending_foreach(void (*fn) (KvsFile *f, void *arg), void *arg)
{
	ListCell   *lc;

	foreach(lc, write_sets)
		fn(((KvsWriteSet *) lfirst(lc))->file, arg);
}
