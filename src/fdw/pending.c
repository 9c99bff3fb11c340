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
 * written under the stamp the scan was told to skip; a full scan sees the
 * write set as it was when it began (see KvsPendingCursor).
 *
 * Memory: the write sets live in one context under TopTransactionContext,
 * each set's key table and entries in a context of its own, its versions in
 * a generation context under it (see new_key_table).  Entries are never
 * removed from memory (a chain emptied by a subtransaction abort stays,
 * empty), so the order array that the merged cursor and the commit walk
 * stays valid while statements add keys.
 *
 * Spill.  Once the write sets hold more than kvs_fdw.pending_memory, the
 * set being written to is spilled: its keys, sorted in run order (the
 * file's bucket order: see run_order), with all their versions, are written
 * as one run to a temporary file of its own (BufFile:
 * temp_file_limit applies) and the memory is emptied.  A run keeps in memory
 * a sparse index (every SPARSE_EVERY-th key and its position) and a Bloom
 * filter of its keys.  A key's state is its newest live version over the
 * sources, newest first: memory, then the runs from the newest.  Versions in
 * runs cannot be dropped in place, so a subtransaction abort records the
 * range of subids it killed (dead_ranges) and reads skip versions in those
 * ranges.  Runs are merged as they come (merge_runs: tiered, MERGE_RUNS of a
 * level into one of the next, dropping dead versions), so n spilled keys
 * make O(log n) runs for a lookup to test.  A merged cursor in its second
 * phase walks the sources: the runs merged on the fly, then memory; the
 * commit merges memory's keys, sorted, into the runs' walk, so it applies
 * every key in the file's bucket order; a set is not spilled (nor its runs merged) while a cursor does
 * (its memory may then pass the limit until that scan ends).
 *
 * Conflicts at commit (no lost update without row locks): a key's first
 * version records what the file must still hold when the commit applies it
 * -- absent for an INSERT that found it free, else the hash of the value
 * the transaction read -- and the commit raises 40001 otherwise.
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "lib/binaryheap.h"
#include "miscadmin.h"
#include "storage/buffile.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "kvs_fdw.h"


int			kvs_fdw_pending_memory_kb = 64 * 1024;

#define SEQ_NOW			PG_UINT64_MAX
#define SPARSE_EVERY	32		/* a sparse index point per this many keys */
#define BLOOM_BITS_PER_KEY 10
#define BLOOM_HASHES	4
#define SRC_MEMORY		(-1)	/* a version's source: memory, else a run */

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
	PKey		key;			/* points at the copy after the entry */
	PVersion   *newest;			/* NULL: no version (all rolled back) */
	bool		file_absent;	/* created by an INSERT that found the key
								 * absent from the file: its commit must not
								 * overwrite a row another transaction
								 * committed meanwhile */
	bool		has_base;		/* created by a change of a file row: */
	uint64		base_hash;		/* the hash of the value it read */
} PEntry;

/*
 * The key table: open addressing (simplehash) over entry pointers, each
 * slot with its key's hash, so a probe reads the slots in a row and an
 * entry only on a hash match (dynahash's bucket lists cost a cache miss or
 * two per lookup, which was a tenth of a bulk load).  Entries never move:
 * the order array and the commit's sort point at them.
 */
typedef struct PSlot
{
	PEntry	   *e;
	uint32		hash;
	char		status;
} PSlot;

#define SH_PREFIX pkeys
#define SH_ELEMENT_TYPE PSlot
#define SH_KEY_TYPE PEntry *
#define SH_KEY e
#define SH_HASH_KEY(tb, k) hash_bytes((const unsigned char *) (k)->key.data, (int) (k)->key.len)
#define SH_EQUAL(tb, a, b) ((a)->key.len == (b)->key.len && \
							memcmp((a)->key.data, (b)->key.data, (a)->key.len) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* entries and their key copies are carved from blocks of this size */
#define ENTRY_BLOCK		8192

typedef struct PTruncate
{
	SubTransactionId subid;
	uint64		seq;
} PTruncate;

/* A point of a run's sparse index: a key and where its record starts. */
typedef struct PSparse
{
	uint32		order;			/* run_order of the key */
	char	   *key;
	uint32		klen;
	int			fileno;
	off_t		off;
} PSparse;

/*
 * A run, in a temporary file of its own: records sorted by run order
 * (run_key_cmp: the key's run_order, then its bytes), each
 *   u32 reclen (bytes after it), u32 order, u32 klen, key, u8 file_absent,
 *   u8 has_base, u64 base_hash, u32 nver,
 *   nver x (u64 seq, u32 subid, u64 stamp, u8 is_delete, u32 vlen, value)
 * with its versions newest first.  A spill makes a run of level 0; a merge
 * of MERGE_RUNS runs of level L makes one of level L + 1 (see merge_runs).
 */
/* a record's bytes after its reclen and before its versions; a version's header */
#define REC_HEADER(klen)	(4 + 4 + (klen) + 1 + 1 + 8 + 4)
#define VER_HEADER			(8 + 4 + 8 + 1 + 4)

typedef struct PRun
{
	BufFile    *file;
	int64		nrecords;
	int64		nbytes;			/* the run's length, from the file's start */
	int64		vbytes;			/* keys and values of its versions */
	int			level;
	PSparse    *sparse;
	int			nsparse;
	int			end_fileno;		/* where the run ends */
	off_t		end_off;
	uint8	   *bloom;
	uint32		bloom_bits;
} PRun;

struct KvsWriteSet
{
	KvsFile    *file;
	MemoryContext cxt;			/* keys, entries, order; the parent of vcxt */
	MemoryContext vcxt;			/* versions (see new_key_table) */
	pkeys_hash *keys;
	char	   *block;			/* the entries' block being carved */
	Size		block_left;
	PEntry	  **order;			/* entries in creation order */
	size_t		nentries;
	size_t		maxentries;
	PTruncate  *truncs;			/* TRUNCATE markers, oldest first */
	int			ntruncs;
	int			maxtruncs;
	uint64		seq;
	SubTransactionId max_subid; /* no version in memory has a larger subid */
	uint64		cursor_seq;		/* seq when a merged cursor last opened:
								 * older versions may still be read */
	int64		nkeys;			/* entries in memory with a version */
	bool		counted_once;	/* no key is counted in two sources (memory,
								 * runs) nor by a run's rolled-back record:
								 * kvs_pending_counts' keys are distinct */
	int64		bytes;			/* keys and values of live versions */
	/* spill */
	PRun	   *runs;			/* oldest first */
	int			nruns;
	int			maxruns;
	int			walkers;		/* merged cursors walking the sources */
	MemoryContext scratch;		/* a record read back, reset per read */
};

/* The view of one key: its newest live version as of some seq. */
typedef struct PView
{
	bool		found;			/* a live version (possibly a DELETE) */
	bool		is_delete;
	uint64		stamp;
	uint64		seq;
	const char *val;
	uint32		vlen;
	bool		file_absent;
	bool		has_base;
	uint64		base_hash;
	int			source;			/* SRC_MEMORY or the run's index */
} PView;

/* the context of every write set of this transaction, and the list */
static MemoryContext pending_cxt = NULL;
static List *write_sets = NIL;	/* of KvsWriteSet *, in pending_cxt */

/* subtransaction ids whose versions were rolled back after being spilled */
typedef struct DeadRange
{
	SubTransactionId from,
				to;
} DeadRange;
static DeadRange *dead_ranges = NULL;
static int	ndead = 0,
			maxdead = 0;
static SubTransactionId max_subid_written = 0;

/*
 * The last row kvs_pending_get read from a file (not from a write set): an
 * UPDATE reads the row, then writes its new version; the version's base
 * (first_touch) is the value it read, not a later read.
 */
static struct
{
	KvsFile    *file;
	uint32		klen;
	uint64		hash;
	char		key[KVS_MAX_KEY];
} last_read;

static uint64
value_hash(const char *val, size_t len)
{
	return hash_bytes_extended((const unsigned char *) val, (int) len, 0);
}

/* The order of keys in a run: bytes, then length. */
static int
key_cmp(const char *a, uint32 alen, const char *b, uint32 blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

/*
 * The order of keys in a run: run_order first, then key_cmp.  run_order is
 * the engine's bucket order (kvs_key_order, computed without a handle:
 * kvs_hash_order of kvs_key_hash) of a file with hash seed 0, which every
 * file the FDW creates has, so the
 * commit's merged walk over the runs gives their keys in the file's bucket
 * order and applies them in one sweep over the file.  It is a fixed
 * function of the key bytes, whatever the file, so the runs of one write
 * set always agree with each other; a file made with another seed (by the
 * engine's API, never by the FDW) is still applied correctly, only not in
 * its bucket order.  Its 64-bit hash also gives the Bloom
 * filters' two hashes (key_hashes).
 */
static uint64
run_hash(const char *key, uint32 klen)
{
	return kvs_key_hash(0, key, klen);
}

static uint32
run_order(const char *key, uint32 klen)
{
	return kvs_hash_order(run_hash(key, klen));
}

static int
run_key_cmp(uint32 ao, const char *a, uint32 alen, uint32 bo, const char *b, uint32 blen)
{
	if (ao != bo)
		return ao < bo ? -1 : 1;
	return key_cmp(a, alen, b, blen);
}

/*
 * The set's memory, new or emptied by a spill: the key table, and the
 * versions' context.  Versions are allocated without rounding (a
 * generation context: an allocation set rounds a 100-byte row's version up
 * to 256 bytes), so the same kvs_fdw.pending_memory holds more rows and a
 * bulk load spills less often; a version replaced or rolled back frees its
 * space once its block's other versions have gone too.
 */
static void
new_key_table(KvsWriteSet *ws)
{
	ws->vcxt = GenerationContextCreate(ws->cxt, "kvs_fdw write set versions",
									   ALLOCSET_DEFAULT_SIZES);
	ws->keys = pkeys_create(ws->cxt, 256, NULL);
	ws->block = NULL;
	ws->block_left = 0;
	ws->order = NULL;
	ws->nentries = ws->maxentries = 0;
}

static KvsWriteSet *
get_ws(KvsFile *f, bool create)
{
	KvsWriteSet *ws;
	MemoryContext old;

	if (f->pending != NULL || !create)
		return f->pending;
	kvs_txn_note_write();		/* the xid's WAL record, early: txn.c */
	if (pending_cxt == NULL)
		pending_cxt = AllocSetContextCreate(TopTransactionContext,
											"kvs_fdw write sets",
											ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(pending_cxt);
	ws = palloc0(sizeof(KvsWriteSet));
	ws->file = f;
	ws->cxt = AllocSetContextCreate(pending_cxt, "kvs_fdw write set",
									ALLOCSET_DEFAULT_SIZES);
	ws->counted_once = true;
	ws->scratch = AllocSetContextCreate(pending_cxt, "kvs_fdw spill read",
										ALLOCSET_DEFAULT_SIZES);
	new_key_table(ws);
	write_sets = lappend(write_sets, ws);
	MemoryContextSwitchTo(old);
	f->pending = ws;
	kvs_parallel_note_writes(true);	/* workers must not scan without it */
	return ws;
}

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

static PEntry *
find_entry(KvsWriteSet *ws, const char *key, size_t klen)
{
	PEntry		probe;
	PSlot	   *slot;

	if (ws == NULL)
		return NULL;
	probe.key.data = key;
	probe.key.len = (uint32) klen;
	slot = pkeys_lookup(ws->keys, &probe);
	return slot ? slot->e : NULL;
}

/*
 * A new entry with a copy of key, carved from the set's current block (in
 * ws->cxt): entries are freed only all at once, by a spill's reset.
 */
static PEntry *
new_entry(KvsWriteSet *ws, const char *key, uint32 klen)
{
	Size		need = MAXALIGN(sizeof(PEntry) + klen + 1);
	PEntry	   *e;
	char	   *copy;

	if (need > ENTRY_BLOCK / 4)
		e = MemoryContextAlloc(ws->cxt, need);
	else
	{
		if (need > ws->block_left)
		{
			ws->block = MemoryContextAlloc(ws->cxt, ENTRY_BLOCK);
			ws->block_left = ENTRY_BLOCK;
		}
		e = (PEntry *) ws->block;
		ws->block += need;
		ws->block_left -= need;
	}
	copy = (char *) e + sizeof(PEntry);
	memcpy(copy, key, klen);
	e->key.data = copy;
	e->key.len = klen;
	e->newest = NULL;
	e->file_absent = false;
	e->has_base = false;
	e->base_hash = 0;
	return e;
}

static bool
subid_dead(SubTransactionId subid)
{
	int			i;

	for (i = 0; i < ndead; i++)
		if (subid >= dead_ranges[i].from && subid <= dead_ranges[i].to)
			return true;
	return false;
}

/* ---- runs: writing ---------------------------------------------------------- */

/*
 * A key's two Bloom hashes and its run order, computed once per key and
 * used for every run (a lookup tests each run: hashing the key per run was
 * most of it), all from one 64-bit hash.
 */
typedef struct PHash
{
	uint32		h1,
				h2;
	uint32		order;			/* run_order */
} PHash;

static void
key_hashes(const char *key, uint32 klen, PHash *h)
{
	uint64		x = run_hash(key, klen);

	h->h1 = (uint32) x;
	h->h2 = (uint32) (x >> 32) | 1;
	h->order = kvs_hash_order(x);
}

static void
bloom_positions(const PHash *h, uint32 nbits, uint32 *pos)
{
	int			i;

	for (i = 0; i < BLOOM_HASHES; i++)
		pos[i] = (h->h1 + (uint32) i * h->h2) % nbits;
}

static bool
bloom_maybe(PRun *r, const PHash *h)
{
	uint32		pos[BLOOM_HASHES];
	int			i;

	bloom_positions(h, r->bloom_bits, pos);
	for (i = 0; i < BLOOM_HASHES; i++)
		if (!(r->bloom[pos[i] / 8] & (1 << (pos[i] % 8))))
			return false;
	return true;
}

/*
 * A spill sorts its keys by a 64-bit prefix of their run order beside the
 * entry: the run_order, then the key's first 4 bytes as a big-endian number
 * (zero-padded: an order key_cmp agrees with), so most comparisons read no
 * entry and no key: sorting the entry pointers by the keys they point to
 * took a cache miss or two per comparison.
 */
typedef struct PSortKey
{
	uint64		prefix;
	PEntry	   *e;
} PSortKey;

static uint64
key_prefix(const char *key, uint32 klen)
{
	uint64		p = run_order(key, klen);
	uint32		i;

	for (i = 0; i < 4; i++)
		p = (p << 8) | (i < klen ? (uint8) key[i] : 0);
	return p;
}

static int
cmp_sortkey(const void *a, const void *b)
{
	const PSortKey *x = a,
			   *y = b;

	if (x->prefix != y->prefix)
		return x->prefix < y->prefix ? -1 : 1;
	return key_cmp(x->e->key.data, x->e->key.len, y->e->key.data, y->e->key.len);
}

/* sort_keys(PSortKey *, size_t): the sort with cmp_sortkey inlined */
#define ST_SORT sort_keys
#define ST_ELEMENT_TYPE PSortKey
#define ST_COMPARE(a, b) cmp_sortkey(a, b)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/*
 * Start run r in a new temporary file, for up to maxkeys keys (its Bloom
 * filter and sparse index are sized for them).
 */
static void
run_begin(PRun *r, int64 maxkeys, int level)
{
	ResourceOwner oldowner = CurrentResourceOwner;
	MemoryContext old;

	memset(r, 0, sizeof(*r));
	r->level = level;
	r->bloom_bits = Max(1024, (uint32) Min((uint64) maxkeys * BLOOM_BITS_PER_KEY, PG_UINT32_MAX / 2));
	r->bloom = MemoryContextAllocZero(pending_cxt, (r->bloom_bits + 7) / 8);
	r->sparse = MemoryContextAlloc(pending_cxt, sizeof(PSparse) * (maxkeys / SPARSE_EVERY + 1));
	old = MemoryContextSwitchTo(pending_cxt);
	/* the file lives as long as the top-level transaction */
	CurrentResourceOwner = TopTransactionResourceOwner;
	r->file = BufFileCreateTemp(false);
	CurrentResourceOwner = oldowner;
	MemoryContextSwitchTo(old);
}

static void
run_write(PRun *r, const void *p, size_t n)
{
	BufFileWrite(r->file, (void *) p, n);
	r->nbytes += n;
}

/* A record of key begins (in run order): index it, then write its header. */
static void
run_add(PRun *r, const char *key, uint32 klen, bool file_absent,
		bool has_base, uint64 base_hash, uint32 nver, uint32 verbytes)
{
	uint32		reclen = REC_HEADER(klen) + verbytes,
				pos[BLOOM_HASHES];
	uint8		b1;
	PHash		h;
	int			b;

	if ((r->nrecords & 1023) == 0)
		CHECK_FOR_INTERRUPTS();
	key_hashes(key, klen, &h);
	if (r->nrecords % SPARSE_EVERY == 0)
	{
		PSparse    *sp = &r->sparse[r->nsparse++];

		sp->order = h.order;
		sp->key = MemoryContextAlloc(pending_cxt, klen + 1);
		memcpy(sp->key, key, klen);
		sp->klen = klen;
		BufFileTell(r->file, &sp->fileno, &sp->off);
	}
	bloom_positions(&h, r->bloom_bits, pos);
	for (b = 0; b < BLOOM_HASHES; b++)
		r->bloom[pos[b] / 8] |= (1 << (pos[b] % 8));
	r->nrecords++;
	r->vbytes += klen;
	run_write(r, &reclen, 4);
	run_write(r, &h.order, 4);
	run_write(r, &klen, 4);
	run_write(r, key, klen);
	b1 = file_absent ? 1 : 0;
	run_write(r, &b1, 1);
	b1 = has_base ? 1 : 0;
	run_write(r, &b1, 1);
	run_write(r, &base_hash, 8);
	run_write(r, &nver, 4);
}

static void
run_finish(PRun *r)
{
	BufFileTell(r->file, &r->end_fileno, &r->end_off);
}

/* A run is gone (merged): its file and memory. */
static void
run_free(PRun *r)
{
	int			i;

	BufFileClose(r->file);
	for (i = 0; i < r->nsparse; i++)
		pfree(r->sparse[i].key);
	pfree(r->sparse);
	pfree(r->bloom);
}

static PRun *
new_run_slot(KvsWriteSet *ws)
{
	if (ws->nruns == ws->maxruns)
	{
		ws->maxruns = ws->maxruns ? ws->maxruns * 2 : 8;
		ws->runs = ws->runs ?
			repalloc(ws->runs, sizeof(PRun) * ws->maxruns) :
			MemoryContextAlloc(pending_cxt, sizeof(PRun) * ws->maxruns);
	}
	return &ws->runs[ws->nruns];
}

static void merge_runs(KvsWriteSet *ws);

/*
 * The memory entries with a version, sorted in run order (in pending_cxt;
 * the caller frees it).
 */
static PSortKey *
sorted_entries(KvsWriteSet *ws, size_t *n)
{
	PSortKey   *live;
	size_t		nlive = 0,
				i;

	live = MemoryContextAllocHuge(pending_cxt, sizeof(PSortKey) * Max(ws->nentries, 1));
	for (i = 0; i < ws->nentries; i++)
	{
		PEntry	   *e = ws->order[i];

		if (e->newest == NULL)
			continue;
		live[nlive].prefix = key_prefix(e->key.data, e->key.len);
		live[nlive++].e = e;
	}
	sort_keys(live, nlive);
	*n = nlive;
	return live;
}

/*
 * Entries sorted in run order lie at random in memory, each with its
 * versions elsewhere again: a loop over them (a spill, the commit's merge)
 * would wait on two or three cache misses per key, one after the other.
 * It reads them ahead instead: the entry PF_AHEAD keys ahead, and the
 * newest version (and the key) of the one half as far ahead, whose entry
 * the earlier read brought in.
 */
#define PF_AHEAD 16
#if defined(__GNUC__)
#define pf_read(p) __builtin_prefetch((p), 0, 3)
#else
#define pf_read(p) ((void) (p))
#endif

/*
 * Always inlined: a function of prefetches alone has no effect the compiler
 * must keep, and GCC deletes calls to it before it would inline them.
 */
static pg_attribute_always_inline void
read_ahead(const PSortKey *keys, size_t i, size_t n)
{
	if (i + PF_AHEAD < n)
		pf_read(keys[i + PF_AHEAD].e);
	if (i + PF_AHEAD / 2 < n)
	{
		const PEntry *a = keys[i + PF_AHEAD / 2].e;

		pf_read(a->key.data);
		if (a->newest != NULL)
		{
			pf_read(a->newest);
			pf_read((const char *) a->newest + 64);
		}
	}
}

/* Write the set's memory as a run and empty the memory. */
static void
spill(KvsWriteSet *ws)
{
	PSortKey   *live;
	size_t		nlive,
				i;
	PRun	   *r;

	live = sorted_entries(ws, &nlive);
	if (nlive == 0)
	{
		pfree(live);
		return;
	}
	r = new_run_slot(ws);
	run_begin(r, (int64) nlive, 0);
	for (i = 0; i < nlive; i++)
	{
		PEntry	   *e = live[i].e;
		PVersion   *v;
		uint32		verbytes = 0,
					nver = 0;

		read_ahead(live, i, nlive);
		for (v = e->newest; v != NULL; v = v->older)
		{
			verbytes += VER_HEADER + v->vlen;
			nver++;
		}
		run_add(r, e->key.data, e->key.len, e->file_absent, e->has_base,
				e->base_hash, nver, verbytes);
		for (v = e->newest; v != NULL; v = v->older)
		{
			uint8		del = v->is_delete ? 1 : 0;

			run_write(r, &v->seq, 8);
			run_write(r, &v->subid, 4);
			run_write(r, &v->stamp, 8);
			run_write(r, &del, 1);
			run_write(r, &v->vlen, 4);
			run_write(r, v->val, v->vlen);
			r->vbytes += v->vlen;
		}
	}
	run_finish(r);
	ws->nruns++;
	pfree(live);
	elog(DEBUG1, "kvs_fdw: spilled %zu pending keys of \"%s\" (run %d)",
		 nlive, ws->file->path, ws->nruns);

	/* empty the memory */
	MemoryContextReset(ws->cxt);
	new_key_table(ws);
	ws->nkeys = 0;
	ws->bytes = 0;
	ws->max_subid = 0;

	merge_runs(ws);
}

/* ---- runs: reading ---------------------------------------------------------- */

/* One record read back (in ws->scratch). */
typedef struct PRecord
{
	uint32		order;			/* run_order of the key */
	const char *key;
	uint32		klen;
	bool		file_absent;
	bool		has_base;
	uint64		base_hash;
	uint32		nver;
	const char *vers;			/* the versions, as written */
} PRecord;

static bool
past_end(PRun *r, int fileno, off_t off)
{
	return fileno > r->end_fileno || (fileno == r->end_fileno && off >= r->end_off);
}

/* Parse the record whose body (after its reclen) is at buf. */
static void
parse_record(const char *buf, PRecord *rec)
{
	uint32		n;
	const char *k = buf + 8;	/* after the order and the key length */

	memcpy(&rec->order, buf, 4);
	memcpy(&rec->klen, buf + 4, 4);
	rec->key = k;
	rec->file_absent = k[rec->klen] != 0;
	rec->has_base = k[rec->klen + 1] != 0;
	memcpy(&rec->base_hash, k + rec->klen + 2, 8);
	memcpy(&n, k + rec->klen + 10, 4);
	rec->nver = n;
	rec->vers = buf + REC_HEADER(rec->klen);
}

/* Read the record at the run file's position; false at the run's end. */
static bool
read_record(KvsWriteSet *ws, PRun *r, PRecord *rec)
{
	int			fileno;
	off_t		off;
	uint32		reclen;
	char	   *buf;

	BufFileTell(r->file, &fileno, &off);
	if (past_end(r, fileno, off))
		return false;
	if (BufFileRead(r->file, &reclen, 4) != 4)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read the spill file of pending kvs_fdw writes")));
	buf = MemoryContextAlloc(ws->scratch, reclen);
	if (BufFileRead(r->file, buf, reclen) != reclen)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read the spill file of pending kvs_fdw writes")));
	parse_record(buf, rec);
	return true;
}

/* The record's newest live version as of upto into *pv (found = false: none). */
static void
record_view(const PRecord *rec, uint64 upto, PView *pv, int source)
{
	const char *p = rec->vers;
	uint32		i;

	for (i = 0; i < rec->nver; i++)
	{
		uint64		seq,
					stamp;
		uint32		subid,
					vlen;

		memcpy(&seq, p, 8);
		memcpy(&subid, p + 8, 4);
		memcpy(&stamp, p + 12, 8);
		memcpy(&vlen, p + 21, 4);
		if (seq <= upto && !subid_dead(subid))
		{
			pv->found = true;
			pv->seq = seq;
			pv->stamp = stamp;
			pv->is_delete = p[20] != 0;
			pv->vlen = vlen;
			pv->val = p + 25;
			pv->file_absent = rec->file_absent;
			pv->has_base = rec->has_base;
			pv->base_hash = rec->base_hash;
			pv->source = source;
			return;
		}
		p += VER_HEADER + vlen;
	}
}

/* Look key up in run ri: its view as of upto (pv->found = false: none). */
static void
run_lookup(KvsWriteSet *ws, int ri, const char *key, uint32 klen,
		   const PHash *h, uint64 upto, PView *pv)
{
	PRun	   *r = &ws->runs[ri];
	int			lo = 0,
				hi = r->nsparse - 1,
				at = -1;
	PRecord		rec;

	pv->found = false;
	if (!bloom_maybe(r, h))
		return;
	/* the last sparse point at or before key */
	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (run_key_cmp(r->sparse[mid].order, r->sparse[mid].key, r->sparse[mid].klen,
						h->order, key, klen) <= 0)
		{
			at = mid;
			lo = mid + 1;
		}
		else
			hi = mid - 1;
	}
	if (at < 0)
		return;
	if (BufFileSeek(r->file, r->sparse[at].fileno, r->sparse[at].off, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not seek in the spill file of pending kvs_fdw writes")));
	while (read_record(ws, r, &rec))
	{
		int			c = run_key_cmp(rec.order, rec.key, rec.klen, h->order, key, klen);

		if (c > 0)
			return;
		if (c == 0)
		{
			record_view(&rec, upto, pv, ri);
			return;
		}
	}
}

/* ---- a key's state over the sources ----------------------------------------- */

/*
 * Memory's view of entry e as of upto (false: no version there as of upto;
 * memory holds no rolled-back version, so none is dead).
 */
static bool
memory_view(PEntry *e, uint64 upto, PView *pv)
{
	PVersion   *v;

	for (v = e->newest; v != NULL && v->seq > upto; v = v->older)
		;
	if (v == NULL)
		return false;
	pv->found = true;
	pv->is_delete = v->is_delete;
	pv->stamp = v->stamp;
	pv->seq = v->seq;
	pv->val = v->val;
	pv->vlen = v->vlen;
	pv->file_absent = e->file_absent;
	pv->has_base = e->has_base;
	pv->base_hash = e->base_hash;
	pv->source = SRC_MEMORY;
	return true;
}

/*
 * The transaction's view of key as of sequence number upto: its newest live
 * version over memory and the runs (pv->found false: none), hidden if older
 * than the TRUNCATE in force then.
 */
static void
resolve(KvsWriteSet *ws, const char *key, size_t klen, uint64 upto, PView *pv)
{
	PEntry	   *e = find_entry(ws, key, klen);
	int			ri;

	pv->found = false;
	if ((e == NULL || !memory_view(e, upto, pv)) && ws->nruns > 0)
	{
		PHash		h;

		key_hashes(key, (uint32) klen, &h);
		MemoryContextReset(ws->scratch);
		for (ri = ws->nruns - 1; ri >= 0 && !pv->found; ri--)
			run_lookup(ws, ri, key, (uint32) klen, &h, upto, pv);
	}
	if (pv->found && pv->seq < trunc_seq_at(ws, upto))
		pv->found = false;
}

/*
 * The file's row of key.  note: remember it as the base of a write that may
 * follow (see last_read), which costs a hash of the value; else only forget
 * the last.
 */
static int
file_get(KvsFile *f, const char *key, size_t klen, kvs_slice *val, bool note)
{
	int			rc = kvs_get(f->db, key, klen, val);

	last_read.file = NULL;
	if (note && rc == KVS_OK && klen <= KVS_MAX_KEY)
	{
		last_read.file = f;
		last_read.klen = (uint32) klen;
		memcpy(last_read.key, key, klen);
		last_read.hash = value_hash(val->data, val->len);
	}
	return rc;
}

/* The row of key in the file as this transaction sees it (note: file_get). */
static int
pending_get(KvsFile *f, const char *key, size_t klen, kvs_slice *val,
			uint64 *stamp, bool note)
{
	KvsWriteSet *ws = f->pending;
	PView		pv;

	if (stamp)
		*stamp = 0;
	if (ws != NULL)
	{
		resolve(ws, key, klen, SEQ_NOW, &pv);
		if (pv.found)
		{
			if (pv.is_delete)
				return KVS_NOTFOUND;
			if (stamp)
				*stamp = pv.stamp;
			val->data = pv.val;
			val->len = pv.vlen;
			return KVS_OK;
		}
		if (trunc_seq(ws) > 0)
			return KVS_NOTFOUND;
	}
	return file_get(f, key, klen, val, note);
}

int
kvs_pending_get(KvsFile *f, const char *key, size_t klen, kvs_slice *val,
				uint64 *stamp)
{
	return pending_get(f, key, klen, val, stamp, true);
}

/*
 * kvs_pending_get for a read no write builds on: a scan that locks no row
 * (a plain SELECT's), whose rows no UPDATE or DELETE of the statement
 * takes as the version it changes (their scans lock).
 */
int
kvs_pending_read(KvsFile *f, const char *key, size_t klen, kvs_slice *val)
{
	return pending_get(f, key, klen, val, NULL, false);
}

static Size
pending_memory(void)
{
	ListCell   *lc;
	Size		n = 0;

	foreach(lc, write_sets)
		n += MemoryContextMemAllocated(((KvsWriteSet *) lfirst(lc))->cxt, true);
	return n;
}

/* Past kvs_fdw.pending_memory: spill this set (unless a cursor walks it). */
static void
check_memory(KvsWriteSet *ws)
{
	if (ws->walkers == 0 && ws->nentries > 0 &&
		pending_memory() > (Size) kvs_fdw_pending_memory_kb * 1024)
		spill(ws);
}

/*
 * A key gets its first live version in memory: what its commit must find in
 * the file.  A key still live in a spilled run keeps what its run recorded;
 * one an INSERT found absent must still be absent (file_absent); one whose
 * file row this transaction changes must still hold the value it read
 * (has_base: the hash of that value), else the commit fails with 40001
 * rather than overwrite another transaction's committed change; so must
 * the row a DELETE removes (two transactions deleting one row with
 * RETURNING must not both have deleted it, nor one delete a row inserted
 * again since).  The row locks make such conflicts rare; this keeps them
 * from losing an update.
 */
static void
first_touch(KvsWriteSet *ws, PEntry *e, bool file_absent, const PView *known)
{
	PView		pv;
	kvs_slice	cur;
	int			rc;

	e->file_absent = false;
	e->has_base = false;
	if (ws->nruns > 0)
	{
		if (known != NULL)
			pv = *known;
		else
			resolve(ws, e->key.data, e->key.len, SEQ_NOW, &pv);
		if (pv.found)
		{
			ws->counted_once = false;	/* its run counts it too */
			e->file_absent = pv.file_absent;
			e->has_base = pv.has_base;
			e->base_hash = pv.base_hash;
			return;
		}
	}
	if (trunc_seq(ws) > 0)
		return;					/* the commit truncates first */
	if (file_absent)
	{
		e->file_absent = true;
		return;
	}
	if (last_read.file == ws->file && last_read.klen == e->key.len &&
		memcmp(last_read.key, e->key.data, e->key.len) == 0)
	{
		e->has_base = true;
		e->base_hash = last_read.hash;
		return;
	}
	rc = kvs_get(ws->file->db, e->key.data, e->key.len, &cur);
	if (rc == KVS_OK)
	{
		e->has_base = true;
		e->base_hash = value_hash(cur.data, cur.len);
	}
	else if (rc != KVS_NOTFOUND)
		kvs_report_error(rc, ws->file->db, ws->file->path);
}

/*
 * Add a version (val NULL: DELETE) to the key's chain.  known: the key's
 * view (resolve, SEQ_NOW) the caller just took, or NULL; a spill here does
 * not change it (it moves memory to a run, versions and all).
 */
static void
add_version(KvsFile *f, const char *key, size_t klen, const char *val,
			size_t vlen, bool file_absent, const PView *known)
{
	KvsWriteSet *ws = get_ws(f, true);
	SubTransactionId subid = GetCurrentSubTransactionId();
	MemoryContext old;
	PEntry		probe;
	PSlot	   *slot;
	PEntry	   *e;
	PVersion   *v;
	bool		found;

	check_memory(ws);
	old = MemoryContextSwitchTo(ws->cxt);
	probe.key.data = key;
	probe.key.len = (uint32) klen;
	slot = pkeys_insert(ws->keys, &probe, &found);
	if (found)
		e = slot->e;
	else
	{
		e = slot->e = new_entry(ws, key, (uint32) klen);
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
		first_touch(ws, e, file_absent, known);
		ws->nkeys++;
		ws->bytes += klen;
	}
	v = MemoryContextAlloc(ws->vcxt, offsetof(PVersion, val) + (val ? vlen : 0) + 1);
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
	if (subid > max_subid_written)
		max_subid_written = subid;
	MemoryContextSwitchTo(old);
}

/*
 * An INSERT (KVS_NOOVERWRITE) looks its key up once over the write set (and
 * the file if the set has no view of it): the view serves the duplicate
 * check, whether the key is absent from the file, and the new entry's
 * first touch, each of which took a lookup over every spilled run.
 */
int
kvs_pending_put(KvsFile *f, const char *key, size_t klen, const char *val,
				size_t vlen, int flags)
{
	bool		absent = false;
	PView		pv;
	const PView *known = NULL;

	if (klen > KVS_MAX_KEY)
		return KVS_ETOOBIG;
	if (flags & KVS_NOOVERWRITE)
	{
		KvsWriteSet *ws = f->pending;
		kvs_slice	cur;
		int			rc;

		if (ws != NULL)
		{
			resolve(ws, key, klen, SEQ_NOW, &pv);
			known = &pv;
			if (pv.found && !pv.is_delete)
				return KVS_EXISTS;
		}
		/* absent from the file too, not just deleted or truncated here */
		if (ws == NULL || (!pv.found && trunc_seq(ws) == 0))
		{
			rc = file_get(f, key, klen, &cur, true);
			if (rc == KVS_OK)
				return KVS_EXISTS;
			if (rc != KVS_NOTFOUND)
				return rc;
			absent = true;
		}
	}
	add_version(f, key, klen, val, vlen, absent, known);
	return KVS_OK;
}

int
kvs_pending_delete(KvsFile *f, const char *key, size_t klen)
{
	kvs_slice	cur;
	int			rc = kvs_pending_get(f, key, klen, &cur, NULL);

	if (rc != KVS_OK)
		return rc;
	add_version(f, key, klen, NULL, 0, false, NULL);
	return KVS_OK;
}

void
kvs_pending_truncate(KvsFile *f)
{
	KvsWriteSet *ws = get_ws(f, true);
	MemoryContext old = MemoryContextSwitchTo(pending_cxt);
	SubTransactionId subid = GetCurrentSubTransactionId();

	ws->counted_once = false;	/* the keys it hides still count */

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
	if (subid > max_subid_written)
		max_subid_written = subid;
	MemoryContextSwitchTo(old);
}

/* Does this file have writes to apply (a version or a TRUNCATE)? */
bool
kvs_pending_has_writes(KvsFile *f)
{
	KvsWriteSet *ws = f->pending;

	return ws != NULL && (ws->nkeys > 0 || ws->ntruncs > 0 || ws->nruns > 0);
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

/*
 * Keys with a pending version and their bytes (after a spill: counted per
 * run, so a key written again after a spill counts twice until a merge of
 * the runs that hold it, and rolled-back spilled versions count until a
 * merge drops them), and whether a TRUNCATE is pending.
 */
void
kvs_pending_counts(KvsFile *f, int64 *nkeys, int64 *bytes, bool *truncated,
				   int *runs)
{
	KvsWriteSet *ws = f->pending;
	int			i;

	*runs = ws ? ws->nruns : 0;
	*nkeys = ws ? ws->nkeys : 0;
	*bytes = ws ? ws->bytes : 0;
	for (i = 0; ws != NULL && i < ws->nruns; i++)
	{
		*nkeys += ws->runs[i].nrecords;
		*bytes += ws->runs[i].vbytes;
	}
	*truncated = ws ? ws->ntruncs > 0 : false;
}

/* Subtransaction subid aborted: drop what it and its children wrote. */
void
kvs_pending_subabort(SubTransactionId subid)
{
	ListCell   *lc;
	bool		spilled = false;

	foreach(lc, write_sets)
	{
		KvsWriteSet *ws = (KvsWriteSet *) lfirst(lc);
		size_t		i;

		if (ws->nruns > 0)
		{
			spilled = true;
			ws->counted_once = false;	/* runs may count dead records */
		}
		while (ws->ntruncs > 0 && ws->truncs[ws->ntruncs - 1].subid >= subid)
			ws->ntruncs--;
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
					e->has_base = false;
				}
			}
		}
		ws->max_subid = subid - 1;
	}
	/* every subid >= subid used so far was this subtransaction's or a child's */
	if (spilled && max_subid_written >= subid)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		if (ndead == maxdead)
		{
			maxdead = maxdead ? maxdead * 2 : 16;
			dead_ranges = dead_ranges ? repalloc(dead_ranges, sizeof(DeadRange) * maxdead) :
				palloc(sizeof(DeadRange) * maxdead);
		}
		dead_ranges[ndead].from = subid;
		dead_ranges[ndead].to = max_subid_written;
		ndead++;
		MemoryContextSwitchTo(old);
	}
}

/* The transaction ended: forget every write set (the memory goes with it). */
void
kvs_pending_reset(void)
{
	ListCell   *lc;

	foreach(lc, write_sets)
	{
		KvsWriteSet *ws = (KvsWriteSet *) lfirst(lc);

		int			i;

		for (i = 0; i < ws->nruns; i++)
			BufFileClose(ws->runs[i].file);
		ws->file->pending = NULL;
	}
	write_sets = NIL;
	kvs_parallel_note_writes(false);
	pending_cxt = NULL;			/* a child of TopTransactionContext */
	last_read.file = NULL;
	dead_ranges = NULL;
	ndead = maxdead = 0;
	max_subid_written = 0;
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

/* ---- walking every key of the sources --------------------------------------- */

/*
 * A walk over every key with a version: first the runs, merged (each is
 * sorted in run order, so one pass over all of them at once gives each key with
 * every run's record of it, newest run first), then the memory entries;
 * each key is given once, by the source its view (as of upto) comes from.
 * A key in memory is left to the memory phase.  The merge reads each run
 * sequentially through a buffer of its own (RUN_READ_CHUNK, or one record
 * if larger), so a walk costs one pass over the runs' files and no lookup:
 * walking each run alone and looking its keys up in the newer runs cost
 * (keys x runs) Bloom tests, a random read per false positive.
 */
#define RUN_READ_CHUNK	(32 * 1024)

typedef struct PReader
{
	int			run;
	int			fileno;			/* where the next chunk is read from */
	off_t		off;
	int64		left;			/* bytes of the run not read into buf */
	char	   *buf;
	size_t		size,
				pos,			/* the current record starts here */
				end,
				reclen;			/* the current record's bytes in buf */
	PRecord		rec;
} PReader;

typedef struct PWalk
{
	KvsWriteSet *ws;
	uint64		upto;
	PReader    *readers;		/* one per run */
	int			nreaders;
	binaryheap *heap;			/* readers with a record, smallest key on top */
	int		   *used;			/* readers holding the current key */
	int			nused;
	bool		merging;		/* still in the runs */
	bool		runs_only;		/* the runs alone: no memory phase, and run
								 * keys memory has a view of are not left
								 * out (apply_merged merges memory itself) */
	size_t		pos;			/* memory: the next entry */
	const char *key;			/* the current key (valid until the next) */
	uint32		klen;
	uint32		order;			/* its run_order (runs only) */
} PWalk;

/* Have n bytes of the run from rd->pos in rd->buf; false at the run's end. */
static bool
reader_fill(KvsWriteSet *ws, PReader *rd, size_t n)
{
	BufFile    *file = ws->runs[rd->run].file;

	while (rd->end - rd->pos < n)
	{
		size_t		want,
					got;

		if (rd->left == 0)
		{
			if (rd->end == rd->pos)
				return false;
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the spill file of pending kvs_fdw writes ends inside a record")));
		}
		if (rd->pos > 0)
		{
			memmove(rd->buf, rd->buf + rd->pos, rd->end - rd->pos);
			rd->end -= rd->pos;
			rd->pos = 0;
		}
		if (rd->size < n)
		{
			rd->size = n;
			rd->buf = repalloc_huge(rd->buf, rd->size);
		}
		want = (size_t) Min((int64) (rd->size - rd->end), rd->left);
		if (BufFileSeek(file, rd->fileno, rd->off, SEEK_SET) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not seek in the spill file of pending kvs_fdw writes")));
		got = BufFileRead(file, rd->buf + rd->end, want);
		if (got != want)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read the spill file of pending kvs_fdw writes")));
		BufFileTell(file, &rd->fileno, &rd->off);
		rd->end += got;
		rd->left -= got;
	}
	return true;
}

/* Step rd to its run's next record; false at the run's end. */
static bool
reader_next(KvsWriteSet *ws, PReader *rd)
{
	uint32		reclen;

	rd->pos += rd->reclen;
	rd->reclen = 0;
	if (!reader_fill(ws, rd, 4))
		return false;
	memcpy(&reclen, rd->buf + rd->pos, 4);
	if (!reader_fill(ws, rd, 4 + (size_t) reclen))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the spill file of pending kvs_fdw writes ends inside a record")));
	rd->reclen = 4 + (size_t) reclen;
	parse_record(rd->buf + rd->pos + 4, &rd->rec);
	return true;
}

/*
 * Heap order: the smaller key first, for one key the newer run first.
 * binaryheap keeps its greatest node on top, so the reader to take first
 * compares greater (the keys are compared the other way round).
 */
static int
reader_cmp(Datum a, Datum b, void *arg)
{
	PWalk	   *w = (PWalk *) arg;
	PReader    *x = &w->readers[DatumGetInt32(a)],
			   *y = &w->readers[DatumGetInt32(b)];
	int			c = run_key_cmp(y->rec.order, y->rec.key, y->rec.klen,
								x->rec.order, x->rec.key, x->rec.klen);

	if (c != 0)
		return c;
	return (x->run > y->run) - (x->run < y->run);
}

/*
 * A walk over the runs from run "from" on (then memory).  Its buffers live
 * in pending_cxt: a cursor's walk outlasts any call.
 */
static void
walk_start_runs(PWalk *w, KvsWriteSet *ws, uint64 upto, int from)
{
	MemoryContext old = MemoryContextSwitchTo(pending_cxt);
	int			i;

	memset(w, 0, sizeof(*w));
	w->ws = ws;
	w->upto = upto;
	w->nreaders = ws->nruns - from;
	w->merging = w->nreaders > 0;
	if (w->merging)
	{
		w->readers = palloc0(sizeof(PReader) * w->nreaders);
		w->heap = binaryheap_allocate(w->nreaders, reader_cmp, w);
		w->used = palloc(sizeof(int) * w->nreaders);
		for (i = 0; i < w->nreaders; i++)
		{
			PReader    *rd = &w->readers[i];

			rd->run = from + i;
			rd->fileno = 0;
			rd->off = 0;
			rd->left = ws->runs[rd->run].nbytes;
			rd->size = (size_t) Min((int64) RUN_READ_CHUNK, Max(rd->left, 16));
			rd->buf = palloc(rd->size);
			w->used[w->nused++] = i;	/* the first step reads each */
		}
	}
	MemoryContextSwitchTo(old);
}

static void
walk_start(PWalk *w, KvsWriteSet *ws, uint64 upto)
{
	walk_start_runs(w, ws, upto, 0);
}

/*
 * The runs' next key: w->used[0 .. nused) are the readers holding a record
 * of it, newest run first (valid until the next step); false at the end.
 */
static bool
merge_step(PWalk *w)
{
	int			i;

	/* step past the key the last call gave (its records stayed valid) */
	for (i = 0; i < w->nused; i++)
		if (reader_next(w->ws, &w->readers[w->used[i]]))
			binaryheap_add(w->heap, Int32GetDatum(w->used[i]));
	w->nused = 0;
	if (binaryheap_empty(w->heap))
	{
		w->merging = false;
		return false;
	}
	w->used[w->nused++] = DatumGetInt32(binaryheap_remove_first(w->heap));
	while (!binaryheap_empty(w->heap))
	{
		PReader    *top = &w->readers[DatumGetInt32(binaryheap_first(w->heap))],
				   *first = &w->readers[w->used[0]];

		if (key_cmp(top->rec.key, top->rec.klen,
					first->rec.key, first->rec.klen) != 0)
			break;
		w->used[w->nused++] = DatumGetInt32(binaryheap_remove_first(w->heap));
	}
	w->key = w->readers[w->used[0]].rec.key;
	w->klen = w->readers[w->used[0]].rec.klen;
	w->order = w->readers[w->used[0]].rec.order;
	return true;
}

/* The next key and its view; false at the end. */
static bool
walk_next(PWalk *w, PView *pv)
{
	KvsWriteSet *ws = w->ws;

	while (w->merging && merge_step(w))
	{
		PEntry	   *e;
		int			i;

		e = w->runs_only ? NULL : find_entry(ws, w->key, w->klen);
		if (e != NULL && memory_view(e, w->upto, pv))
			continue;			/* the memory phase gives it */
		/* the newest run with a live version as of upto gives its view */
		pv->found = false;
		for (i = 0; i < w->nused && !pv->found; i++)
		{
			PReader    *rd = &w->readers[w->used[i]];

			record_view(&rd->rec, w->upto, pv, rd->run);
		}
		if (pv->found && pv->seq >= trunc_seq_at(ws, w->upto))
			return true;
	}
	while (!w->runs_only && w->pos < ws->nentries)
	{
		PEntry	   *e = ws->order[w->pos++];

		if (e->newest == NULL || !memory_view(e, w->upto, pv))
			continue;
		if (pv->seq < trunc_seq_at(ws, w->upto))
			continue;
		w->key = e->key.data;
		w->klen = e->key.len;
		return true;
	}
	return false;
}

static void
walk_end(PWalk *w)
{
	int			i;

	if (w->readers != NULL)
	{
		for (i = 0; i < w->nreaders; i++)
			if (w->readers[i].buf != NULL)
				pfree(w->readers[i].buf);
		pfree(w->readers);
		binaryheap_free(w->heap);
		pfree(w->used);
	}
	w->readers = NULL;
	w->key = NULL;
}

/* ---- merging runs ---------------------------------------------------------- */

/*
 * Tiered merging: when the newest MERGE_RUNS runs have one level, they are
 * merged into one run of the next level, so levels never grow from the
 * oldest run to the newest, a level holds fewer than MERGE_RUNS runs, and n
 * spilled keys make O(log n) runs: a lookup tests that many Bloom filters,
 * and each spilled version is rewritten once per level.  A merge reads its
 * runs at once (merge_step) and writes each key's record once: the newer
 * run's versions, then the older's (every version of a run is newer than
 * every version of the runs before it: a spill empties the memory), minus
 * the versions of subtransactions rolled back (dead: never read again); a
 * key with no version left is dropped.  The record's file_absent / has_base
 * are those of the newest record with a version left, as resolve() takes
 * them: a key's first touch in memory copied them from its then newest
 * live version, and a later rollback that kills that older version kills
 * the newer one too (subtransaction ids grow with time, and a rollback
 * kills every id from the rolled-back one on).  The inputs' files are
 * closed (removed) after the merge: the temporary space is the runs' once,
 * plus one merge's output while it runs.  Not while a cursor walks the runs
 * (spill() is not called then).
 */
#define MERGE_RUNS	4

/*
 * The next version of rec (the i-th, at *p) of a subtransaction not rolled
 * back, and its bytes in *len; NULL when there is none left.
 */
static const char *
live_version(const PRecord *rec, uint32 *i, const char **p, uint32 *len)
{
	while (*i < rec->nver)
	{
		const char *v = *p;
		uint32		subid,
					vlen;

		memcpy(&subid, v + 8, 4);
		memcpy(&vlen, v + 21, 4);
		(*i)++;
		*p += VER_HEADER + vlen;
		if (!subid_dead(subid))
		{
			*len = VER_HEADER + vlen;
			return v;
		}
	}
	return NULL;
}

static void
merge_tail(KvsWriteSet *ws, int from)
{
	PWalk		w;
	PRun		out;
	int64		maxkeys = 0;
	int			i,
				level = ws->runs[from].level;

	for (i = from; i < ws->nruns; i++)
		maxkeys += ws->runs[i].nrecords;
	run_begin(&out, maxkeys, level + 1);
	walk_start_runs(&w, ws, SEQ_NOW, from);
	while (merge_step(&w))
	{
		uint32		nver = 0,
					verbytes = 0,
					j,
					len;
		PRecord    *meta = NULL;
		const char *p,
				   *v;

		for (i = 0; i < w.nused; i++)
		{
			PRecord    *rec = &w.readers[w.used[i]].rec;

			for (j = 0, p = rec->vers; (v = live_version(rec, &j, &p, &len)) != NULL;)
			{
				if (meta == NULL)
					meta = rec;
				nver++;
				verbytes += len;
			}
		}
		if (meta == NULL)
			continue;			/* every version rolled back */
		run_add(&out, w.key, w.klen, meta->file_absent, meta->has_base,
				meta->base_hash, nver, verbytes);
		for (i = 0; i < w.nused; i++)
		{
			PRecord    *rec = &w.readers[w.used[i]].rec;

			for (j = 0, p = rec->vers; (v = live_version(rec, &j, &p, &len)) != NULL;)
			{
				run_write(&out, v, len);
				out.vbytes += len - VER_HEADER;
			}
		}
	}
	walk_end(&w);
	run_finish(&out);
	elog(DEBUG1, "kvs_fdw: merged runs %d to %d of \"%s\" (%lld keys) into one of level %d",
		 from + 1, ws->nruns, ws->file->path, (long long) out.nrecords, out.level);
	for (i = from; i < ws->nruns; i++)
		run_free(&ws->runs[i]);
	ws->runs[from] = out;
	ws->nruns = from + 1;
}

static void
merge_runs(KvsWriteSet *ws)
{
	while (ws->nruns >= MERGE_RUNS)
	{
		int			from = ws->nruns - MERGE_RUNS,
					i;

		for (i = from + 1; i < ws->nruns; i++)
			if (ws->runs[i].level != ws->runs[from].level)
				return;
		merge_tail(ws, from);
	}
}

/*
 * At commit, the file row a version was based on must still hold the value
 * the transaction read: else another transaction changed or deleted it and
 * committed first (40001, not a lost update).
 */
static void
check_base(KvsWriteSet *ws, const char *key, uint32 klen, uint64 base_hash)
{
	kvs		   *db = ws->file->db;
	kvs_slice	cur;
	int			rc = kvs_get(db, key, klen, &cur);

	if (rc != KVS_OK && rc != KVS_NOTFOUND)
		kvs_report_error(rc, db, ws->file->path);
	if (rc == KVS_NOTFOUND || value_hash(cur.data, cur.len) != base_hash)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent update"),
				 errdetail("A row of kvs file \"%s\" that this transaction changed or deleted was changed or deleted by another transaction that committed first.",
						   ws->file->path),
				 errhint("Retry the transaction.")));
}

/* Apply one key's final version (t: the TRUNCATE marker's seq, 0 = none). */
static void
apply_one(KvsWriteSet *ws, uint64 t, const char *key, uint32 klen, const PView *pv)
{
	kvs		   *db = ws->file->db;
	int			rc;

	if (pv->is_delete)
	{
		if (t > 0)
			return;
		if (pv->has_base)
			check_base(ws, key, klen, pv->base_hash);
		rc = kvs_delete(db, key, klen);
		if (rc == KVS_NOTFOUND)
			return;
	}
	else
	{
		if (pv->has_base && t == 0)
			check_base(ws, key, klen, pv->base_hash);
		rc = kvs_put(db, key, klen, pv->val, pv->vlen,
					 (pv->file_absent && t == 0) ? KVS_NOOVERWRITE : 0);
		if (rc == KVS_EXISTS)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent insert"),
					 errdetail("Another transaction committed a row of kvs file \"%s\" with a key this transaction inserted.",
							   ws->file->path),
					 errhint("Retry the transaction.")));
	}
	if (rc != KVS_OK)
		kvs_report_error(rc, db, ws->file->path);
}

/*
 * Called by kvs_pending_apply in the commit's write section, after a
 * pending TRUNCATE has emptied the file and before the first put: when the
 * write set's keys are many against the file's records (a bulk load into an
 * empty or small table), the file is sized for them first (kvs_reserve), so
 * the puts split no bucket one at a time.  Sized low on purpose: too few
 * buckets only leave the last splits to the puts, too many would stay
 * (buckets never merge).  A key of the set that is not new to the file is
 * one of the file's records, so the file will hold at least nkeys - records
 * keys, and only a set for which that is more than the file has now (it at
 * least doubles) reserves.  Their bytes are estimated from the versions in
 * memory (kvs_record_bytes of each key's newest version that is not a
 * delete: the record as the file will store it, values too large to keep
 * inline counting their pointer; spilled runs are not read back for it),
 * scaled to that count.  After a spill, nkeys counts a key once per run
 * it is in, so a transaction that rewrote its keys after spilling would
 * size the file for more keys than it ends with: unless nkeys is known to
 * count distinct keys (counted_once: a bulk load, each key written once),
 * the estimate is capped at half the cache (below).
 */
static void
reserve_for_set(KvsWriteSet *ws)
{
	KvsFile    *f = ws->file;
	int64		nkeys,
				set_bytes,
				sampled = 0;
	uint64		sample_bytes = 0,
				records,
				pages,
				newkeys,
				data,
				cap;
	kvs_stats	st;
	size_t		i;
	bool		truncated;
	int			runs,
				rc;

	Assert(f->pending == ws);
	kvs_pending_counts(f, &nkeys, &set_bytes, &truncated, &runs);
	if (nkeys <= 0)
		return;
	rc = kvs_size_estimate(f->db, &records, &pages);
	if (rc != KVS_OK)
		kvs_report_error(rc, f->db, f->path);
	if ((uint64) nkeys <= 2 * records)
		return;
	newkeys = (uint64) nkeys - records;
	for (i = 0; i < ws->nentries; i++)
	{
		PVersion   *v = ws->order[i]->newest;

		if (v == NULL || v->is_delete)
			continue;
		sampled++;
		sample_bytes += kvs_record_bytes(ws->order[i]->key.len, v->vlen);
	}
	if (sampled <= 0)
		return;
	data = (uint64) ((double) sample_bytes / (double) sampled * (double) newkeys);
	rc = kvs_stats_get(f->db, &st);
	if (rc != KVS_OK)
		kvs_report_error(rc, f->db, f->path);
	/*
	 * With distinct keys the file is sized for all of them: the reserve's
	 * pages past the cache are written out empty and read back by the
	 * puts' sweep, but that costs less than the splits it saves, which
	 * the sweep in bucket order meets at random (a split's buckets are
	 * not where the sweep is).  Otherwise not past half the cache, so an
	 * overcount stays small.
	 */
	cap = st.cache_frames / 2 * (uint64) KVS_PAGE_SIZE / 100 * st.fillfactor;
	rc = kvs_reserve(f->db, ws->counted_once ? data : Min(data, cap));
	if (rc != KVS_OK)
		kvs_report_error(rc, f->db, f->path);
}

/*
 * The apply in run order, which is the file's bucket order (run_order), so
 * in one sweep over the file: the runs' merged walk gives their keys in run
 * order, and memory's keys, sorted in run order, are merged into it.  A key
 * both give is memory's (its versions are newer than any run's): the merge
 * meets the two at once and applies memory's view, so the walk need not
 * probe memory's key table for each of its keys (runs_only), a random
 * access per spilled key.  Nothing is copied: a run's key and value are
 * applied while the walk's buffer holds them.
 */
static void
apply_merged(KvsWriteSet *ws, uint64 t)
{
	PSortKey   *mem;
	size_t		nmem,
				m = 0;
	PWalk		w;
	PView		pv,
				mv;
	bool		more;
	uint64		n = 0;

	mem = sorted_entries(ws, &nmem);
	walk_start(&w, ws, SEQ_NOW);
	w.runs_only = true;
	more = walk_next(&w, &pv);
	for (;;)
	{
		PEntry	   *e = NULL;
		int			cmp;

		/* memory's next key with a version the TRUNCATE does not hide */
		while (m < nmem && e == NULL)
		{
			read_ahead(mem, m, nmem);
			e = mem[m].e;
			if (!memory_view(e, SEQ_NOW, &mv) || mv.seq < t)
			{
				e = NULL;
				m++;
			}
		}
		if (e == NULL && !more)
			break;
		if ((++n & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		cmp = (e == NULL) ? 1 : !more ? -1 :
			run_key_cmp((uint32) (mem[m].prefix >> 32), e->key.data, e->key.len,
						w.order, w.key, w.klen);
		if (cmp <= 0)
		{
			apply_one(ws, t, e->key.data, e->key.len, &mv);
			m++;
			if (cmp == 0)		/* the runs' older view of the same key */
				more = walk_next(&w, &pv);
		}
		else
		{
			apply_one(ws, t, w.key, w.klen, &pv);
			more = walk_next(&w, &pv);
		}
	}
	walk_end(&w);
	pfree(mem);
}

/*
 * Apply the final version of each key to the file, inside the caller's
 * write section: after a TRUNCATE marker, the file is truncated first and
 * only versions newer than the marker are written.  A key an INSERT found
 * absent must still be absent (another transaction may have committed it
 * since): 40001 otherwise.  A key's final state does not depend on the
 * order keys are applied in, so they are applied in the file's bucket order
 * (apply_merged), so the puts visit each bucket's pages once, in a sweep,
 * not at random: in the order the walk gives (the runs' keys, then
 * memory's) every put was a page miss once the file outgrew the cache.
 */
void
kvs_pending_apply(KvsWriteSet *ws)
{
	kvs		   *db = ws->file->db;
	uint64		t = trunc_seq(ws);
	int			rc;

	kvs_set_stamp(db, 0);
	if (t > 0)
	{
		rc = kvs_truncate(db);
		if (rc != KVS_OK)
			kvs_report_error(rc, db, ws->file->path);
	}
	reserve_for_set(ws);		/* a bulk load: the file sized first */
	apply_merged(ws, t);
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
	bool		walking;		/* phase 2 begun (counted in ws->walkers) */
	KvsWriteSet *walked;
	PWalk		walk;
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
	PView		pv;
	int			rc;

	while (pc->fc != NULL)
	{
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
		resolve(ws, key->data, key->len, pc->upto, &pv);
		if (!pv.found)
			return KVS_OK;
		if (pv.is_delete || (pc->skip != 0 && pv.stamp == pc->skip))
			continue;
		val->data = pv.val;
		val->len = pv.vlen;
		return KVS_OK;
	}
	/* then the write set's keys the file does not have */
	ws = pc->file->pending;
	if (ws == NULL)
		return KVS_NOTFOUND;
	if (!pc->walking)
	{
		pc->walking = true;
		pc->walked = ws;
		ws->walkers++;
		walk_start(&pc->walk, ws, pc->upto);
	}
	while (walk_next(&pc->walk, &pv))
	{
		kvs_slice	fv;

		if (pv.is_delete || (pc->skip != 0 && pv.stamp == pc->skip))
			continue;
		if (trunc_seq_at(ws, pc->upto) == 0)
		{
			rc = kvs_get(pc->file->db, pc->walk.key, pc->walk.klen, &fv);
			if (rc == KVS_OK)
				continue;		/* the file phase showed it */
			if (rc != KVS_NOTFOUND)
				return rc;
		}
		key->data = pc->walk.key;
		key->len = pc->walk.klen;
		val->data = pv.val;
		val->len = pv.vlen;
		return KVS_OK;
	}
	return KVS_NOTFOUND;
}

/*
 * Counts instead of returning (a scan that needs no column): with no write
 * set to overlay, the file's rows a bucket at a time, none copied
 * (kvs_cursor_count); with one, a row at a time through kvs_pcursor_next.
 * *n is how many rows the step passed over (0 included).
 */
int
kvs_pcursor_count(KvsPendingCursor *pc, uint64 *n)
{
	kvs_slice	key,
				val;
	int			rc;

	if (pc->fc != NULL && pc->file->pending == NULL)
	{
		rc = kvs_cursor_count(pc->fc, n);
		if (rc != KVS_NOTFOUND)
			return rc;
		kvs_cursor_close(pc->fc);
		pc->fc = NULL;
	}
	rc = kvs_pcursor_next(pc, &key, &val);
	*n = (rc == KVS_OK);
	return rc;
}

void
kvs_pcursor_close(KvsPendingCursor *pc)
{
	if (pc->fc != NULL)
		kvs_cursor_close(pc->fc);
	/* a write set of an ended transaction is gone with its memory */
	if (pc->walking && pc->walked == pc->file->pending && pc->walked->walkers > 0)
	{
		pc->walked->walkers--;
		walk_end(&pc->walk);
	}
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
