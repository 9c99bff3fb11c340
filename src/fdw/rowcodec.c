/*
 * rowcodec.c - a table row <-> a kvs record (key bytes, value bytes).
 *
 * Key: the key column's canonical binary image.  Fixed-length types store
 * their datum image (by-value types as their native width, by-reference ones
 * as their attlen bytes), varlena types their detoasted data bytes without
 * header, cstrings their bytes.  For the types listed in
 * kvs_key_pushable_type() that image decides SQL equality, which is what the
 * planner's key lookups rely on.
 *
 * Value: version byte, u16 count of value columns, a null bitmap, then each
 * non-null value column (every live column but the key, in attnum order):
 * fixed-length types as their datum image, varlena types as a varint length
 * and their detoasted data bytes, cstrings likewise.  No text round trip.
 * Decoding checks every length against the record, so a malformed record is
 * an XX001 error, never a read past the end.
 *
 * After ALTER ... ADD/DROP COLUMN on a table with rows, the value columns are
 * those of the file's layout instead (a KvsLayout, see handle.c): a column
 * dropped since is still written, as NULL, so old records keep their shape,
 * and a record may hold only the first columns of the layout: one written
 * before the last columns were added.  Those read as the column's "missing"
 * value (its ADD COLUMN default) or NULL, as heap's fast default does.
 * This is the same record format as before (0.1.0 records read as they are).
 *
 * Byte images of by-value types are in the machine's byte order; the engine
 * and this codec state little-endian (x86-64, arm64).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "storage/itemptr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "kvs_fdw.h"

#define KVS_ROW_VERSION 1

/*
 * What a lookup asks about its types at every execution (the key column's
 * and the lookup value's base types, the key type's length and by-value
 * flag, an array's element type), memoized per backend: a few catalog cache
 * probes cost more than the engine's hash probe.  Forgotten at any pg_type
 * invalidation.  A handful of entries: a backend uses few key types.
 */
typedef struct KvsTypeMemo
{
	Oid			typid;
	KvsTypeInfo info;
} KvsTypeMemo;

#define TYPE_MEMO_SIZE 8

static KvsTypeMemo type_memo[TYPE_MEMO_SIZE];
static int	type_memo_n = 0;
static int	type_memo_next = 0;		/* the entry to replace when full */
static bool type_memo_hooked = false;

static void
type_memo_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	type_memo_n = 0;
	type_memo_next = 0;
}

const KvsTypeInfo *
kvs_type_info(Oid typid)
{
	KvsTypeInfo ti;
	KvsTypeMemo *e;
	int			i;

	for (i = 0; i < type_memo_n; i++)
		if (type_memo[i].typid == typid)
			return &type_memo[i].info;
	if (!type_memo_hooked)
	{
		CacheRegisterSyscacheCallback(TYPEOID, type_memo_inval, (Datum) 0);
		type_memo_hooked = true;
	}
	/* asked first, kept after: a lookup that raises (or an invalidation
	 * it takes in) leaves no half-made entry */
	ti.base = getBaseType(typid);
	get_typlenbyval(typid, &ti.len, &ti.byval);
	ti.elem = get_element_type(ti.base);
	if (type_memo_n < TYPE_MEMO_SIZE)
		e = &type_memo[type_memo_n++];
	else
	{
		e = &type_memo[type_memo_next];
		type_memo_next = (type_memo_next + 1) % TYPE_MEMO_SIZE;
	}
	e->typid = typid;
	e->info = ti;
	return &e->info;
}

bool
kvs_key_pushable_type(Oid typid)
{
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case BOOLOID:
		case CHAROID:
		case DATEOID:
		case TIMEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case TEXTOID:
		case VARCHAROID:
		case BYTEAOID:
		case UUIDOID:
			return true;
		default:
			return false;
	}
}

/* Append one datum's image of a type of the given length and by-value-ness. */
static void
put_image(int16 typlen, bool byval, Datum d, StringInfo out)
{
	if (byval)
	{
		switch (typlen)
		{
			case 1:
				{
					char		v = DatumGetChar(d);

					appendBinaryStringInfo(out, &v, 1);
					break;
				}
			case 2:
				{
					int16		v = DatumGetInt16(d);

					appendBinaryStringInfo(out, (char *) &v, 2);
					break;
				}
			case 4:
				{
					int32		v = DatumGetInt32(d);

					appendBinaryStringInfo(out, (char *) &v, 4);
					break;
				}
			case 8:
				{
					int64		v = DatumGetInt64(d);

					appendBinaryStringInfo(out, (char *) &v, 8);
					break;
				}
			default:
				elog(ERROR, "unsupported by-value type length %d", typlen);
		}
	}
	else if (typlen > 0)
		appendBinaryStringInfo(out, DatumGetPointer(d), typlen);
	else if (typlen == -1)
	{
		struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

		appendBinaryStringInfo(out, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
		if ((Pointer) v != DatumGetPointer(d))
			pfree(v);
	}
	else
	{
		const char *s = DatumGetCString(d);

		appendBinaryStringInfo(out, s, strlen(s));
	}
}

static void
put_varint(StringInfo out, uint64 v)
{
	unsigned char buf[10];
	int			n = 0;

	do
	{
		unsigned char b = v & 0x7f;

		v >>= 7;
		if (v)
			b |= 0x80;
		buf[n++] = b;
	} while (v);
	appendBinaryStringInfo(out, (char *) buf, n);
}

void
kvs_encode_key(TupleDesc td, AttrNumber keyattno, Datum d, StringInfo out)
{
	Form_pg_attribute att = TupleDescAttr(td, keyattno - 1);

	put_image(att->attlen, att->attbyval, d, out);
}

static bool
is_int_type(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID;
}

/*
 * ctid of a row of a table with an integer key: the key itself, zigzag
 * encoded (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) into 47 bits, the low 15
 * bits + 1 as the offset (1..32768, never the invalid 0), the rest as the
 * block.  A bijection between the keys in [-2^46, 2^46) and those tids, so
 * `WHERE ctid = $1` finds exactly the row that was returned with that ctid,
 * in any statement and transaction, with no state to keep: what
 * postgres_fdw needs for an UPDATE or DELETE it cannot send whole (it reads
 * `ctid` with the rows, then sends `... WHERE ctid = $1` per row).  Unlike
 * a heap tid it does not change when the row is updated.  False for a key
 * outside that range.
 */
#define KVS_CTID_LIMIT	(INT64CONST(1) << 46)

bool
kvs_ctid_from_key(Oid keytype, Datum key, ItemPointer tid)
{
	int64		x;
	uint64		u;

	x = (keytype == INT2OID) ? DatumGetInt16(key) :
		(keytype == INT4OID) ? DatumGetInt32(key) : DatumGetInt64(key);
	if (x < -KVS_CTID_LIMIT || x >= KVS_CTID_LIMIT)
		return false;
	u = ((uint64) x << 1) ^ (uint64) (x >> 63);
	ItemPointerSet(tid, (BlockNumber) (u >> 15), (OffsetNumber) ((u & 0x7FFF) + 1));
	return true;
}

/* The key whose ctid is tid (kvs_ctid_from_key); false: no key has it. */
static bool
key_from_ctid(ItemPointer tid, int64 *x)
{
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);
	uint64		u;

	if (off < 1 || off > 0x8000)
		return false;
	u = ((uint64) ItemPointerGetBlockNumberNoCheck(tid) << 15) | (uint64) (off - 1);
	*x = (int64) (u >> 1) ^ -(int64) (u & 1);
	return true;
}

/*
 * The key image of a lookup value v of type valtype, for a key column of
 * type keytype.  False if no key of that type can equal v (an int8 constant
 * outside an int4 key's range, a tid that is no row's ctid).  A tid value
 * (`WHERE ctid = $1`) stands for the key it encodes: see kvs_ctid_from_key.
 */
bool
kvs_key_image_from(Oid keytype, Oid valtype, Datum v, StringInfo out)
{
	if (valtype == TIDOID)
	{
		int64		x;

		if (!is_int_type(keytype) || !key_from_ctid((ItemPointer) DatumGetPointer(v), &x))
			return false;
		v = Int64GetDatum(x);
		valtype = INT8OID;
	}
	if (keytype != valtype && is_int_type(keytype) && is_int_type(valtype))
	{
		int64		x;

		x = (valtype == INT2OID) ? DatumGetInt16(v) :
			(valtype == INT4OID) ? DatumGetInt32(v) : DatumGetInt64(v);
		if (keytype == INT2OID)
		{
			if (x < PG_INT16_MIN || x > PG_INT16_MAX)
				return false;
			v = Int16GetDatum((int16) x);
		}
		else if (keytype == INT4OID)
		{
			if (x < PG_INT32_MIN || x > PG_INT32_MAX)
				return false;
			v = Int32GetDatum((int32) x);
		}
		else
			v = Int64GetDatum(x);
	}
	{
		const KvsTypeInfo *ti = kvs_type_info(keytype);

		put_image(ti->len, ti->byval, v, out);
	}
	return true;
}

/* Append one non-null value column. */
static void
put_value(Form_pg_attribute att, Datum d, StringInfo out)
{
	if (att->attlen == -1)
	{
		struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

		put_varint(out, VARSIZE_ANY_EXHDR(v));
		appendBinaryStringInfo(out, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
		if ((Pointer) v != DatumGetPointer(d))
			pfree(v);
	}
	else if (att->attlen == -2)
	{
		const char *s = DatumGetCString(d);

		put_varint(out, strlen(s));
		appendBinaryStringInfo(out, s, strlen(s));
	}
	else
		put_image(att->attlen, att->attbyval, d, out);
}

/* How many value columns a record of the table holds. */
static int
value_columns(TupleDesc td, AttrNumber keyattno, const KvsLayout *lay)
{
	int			i,
				n = 0;

	if (lay != NULL)
		return lay->ncols;
	for (i = 0; i < td->natts; i++)
		if (!TupleDescAttr(td, i)->attisdropped && i + 1 != keyattno)
			n++;
	return n;
}

void
kvs_encode_value(TupleDesc td, AttrNumber keyattno, const KvsLayout *lay,
				 Datum *values, bool *isnull, StringInfo out)
{
	int			i;
	int			ncols = value_columns(td, keyattno, lay);
	int			bitmap_at;
	int			k;
	unsigned char v = KVS_ROW_VERSION;
	uint16		n16;

	appendBinaryStringInfo(out, (char *) &v, 1);
	n16 = (uint16) ncols;
	appendBinaryStringInfo(out, (char *) &n16, 2);
	bitmap_at = out->len;
	for (i = 0; i < (ncols + 7) / 8; i++)
		appendStringInfoCharMacro(out, '\0');

	if (lay != NULL)
	{
		/* the file's columns: one dropped since is written as NULL */
		for (k = 0; k < ncols; k++)
		{
			int			a = lay->attidx[k];

			if (a < 0 || isnull[a])
				out->data[bitmap_at + k / 8] |= (char) (1 << (k % 8));
			else
				put_value(TupleDescAttr(td, a), values[a], out);
		}
		return;
	}

	k = 0;
	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);

		if (att->attisdropped || i + 1 == keyattno)
			continue;
		if (isnull[i])
			out->data[bitmap_at + k / 8] |= (char) (1 << (k % 8));
		else
			put_value(att, values[i], out);
		k++;
	}
}

static void
malformed(const char *relname, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("malformed record in kvs file of foreign table \"%s\": %s",
					relname, what)));
}

/* A datum of the column's type from len bytes of its image. */
static Datum
get_image(Form_pg_attribute att, const char *p, size_t len)
{
	if (att->attbyval)
	{
		switch (att->attlen)
		{
			case 1:
				return CharGetDatum(*p);
			case 2:
				{
					int16		v;

					memcpy(&v, p, 2);
					return Int16GetDatum(v);
				}
			case 4:
				{
					int32		v;

					memcpy(&v, p, 4);
					return Int32GetDatum(v);
				}
			default:
				{
					int64		v;

					memcpy(&v, p, 8);
					return Int64GetDatum(v);
				}
		}
	}
	else if (att->attlen > 0)
	{
		char	   *d = palloc(att->attlen);

		memcpy(d, p, att->attlen);
		return PointerGetDatum(d);
	}
	else if (att->attlen == -1)
	{
		struct varlena *d = (struct varlena *) palloc(len + VARHDRSZ);

		SET_VARSIZE(d, len + VARHDRSZ);
		memcpy(VARDATA(d), p, len);
		return PointerGetDatum(d);
	}
	else
	{
		char	   *d = palloc(len + 1);

		memcpy(d, p, len);
		d[len] = '\0';
		return CStringGetDatum(d);
	}
}

static uint64
get_varint(const unsigned char **pp, const unsigned char *end, const char *relname)
{
	uint64		v = 0;
	int			shift = 0;
	const unsigned char *p = *pp;

	for (;;)
	{
		if (p >= end || shift > 63)
			malformed(relname, "truncated length");
		v |= (uint64) (*p & 0x7f) << shift;
		if (!(*p++ & 0x80))
			break;
		shift += 7;
	}
	*pp = p;
	return v;
}

/* Value columns of a record under a KvsLayout (after p: the null bitmap). */
static void
decode_mapped(TupleDesc td, const KvsLayout *lay, int ncols,
			  const unsigned char *bitmap, const unsigned char *p,
			  const unsigned char *end, Datum *values, bool *isnull,
			  const bool *needed, const char *relname)
{
	int			k;

	for (k = 0; k < ncols; k++)
	{
		int			a = lay->attidx[k];
		size_t		len;

		if (bitmap[k / 8] & (1 << (k % 8)))
			continue;
		if (lay->attlen[k] > 0)
			len = lay->attlen[k];
		else
			len = get_varint(&p, end, relname);
		if ((size_t) (end - p) < len)
			malformed(relname, "value runs past the record");
		if (a >= 0 && (needed == NULL || needed[a]))
		{
			values[a] = get_image(TupleDescAttr(td, a), (const char *) p, len);
			isnull[a] = false;
		}
		p += len;
	}
	if (p != end)
		malformed(relname, "trailing bytes after the last column");
	/* columns added after the record was written */
	for (; k < lay->ncols; k++)
	{
		int			a = lay->attidx[k];

		if (a >= 0 && !lay->missing_null[a])
		{
			values[a] = lay->missing[a];
			isnull[a] = false;
		}
	}
}

void
kvs_decode_row(TupleDesc td, AttrNumber keyattno, const KvsLayout *lay,
			   const char *key, size_t klen,
			   const char *val, size_t vlen,
			   Datum *values, bool *isnull,
			   const bool *needed, const char *relname)
{
	const unsigned char *p = (const unsigned char *) val;
	const unsigned char *end = p + vlen;
	const unsigned char *bitmap;
	uint16		ncols;
	int			expect = value_columns(td, keyattno, lay);
	int			i,
				k;
	Form_pg_attribute katt = TupleDescAttr(td, keyattno - 1);

	if (vlen < 3 || p[0] != KVS_ROW_VERSION)
		malformed(relname, "unknown record version");
	memcpy(&ncols, p + 1, 2);
	/* fewer: written before the last columns were added (they read NULL) */
	if (ncols > expect)
		malformed(relname, "column count does not match the table");
	p += 3;
	bitmap = p;
	if ((size_t) (end - p) < (size_t) (ncols + 7) / 8)
		malformed(relname, "truncated null bitmap");
	p += (ncols + 7) / 8;

	/* the key */
	if (katt->attlen > 0 && klen != (size_t) katt->attlen)
		malformed(relname, "key length does not match the key type");
	if (needed == NULL || needed[keyattno - 1])
	{
		values[keyattno - 1] = get_image(katt, key, klen);
		isnull[keyattno - 1] = false;
	}
	else
		isnull[keyattno - 1] = true;

	if (lay != NULL)
	{
		for (i = 0; i < td->natts; i++)
			if (i + 1 != keyattno)
			{
				isnull[i] = true;
				values[i] = (Datum) 0;
			}
		decode_mapped(td, lay, ncols, bitmap, p, end, values, isnull,
					  needed, relname);
		return;
	}

	k = 0;
	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);
		size_t		len;
		bool		want;

		if (i + 1 == keyattno)
			continue;
		isnull[i] = true;
		values[i] = (Datum) 0;
		if (att->attisdropped || k >= ncols)
			continue;
		want = (needed == NULL || needed[i]);
		if (bitmap[k / 8] & (1 << (k % 8)))
		{
			k++;
			continue;
		}
		k++;
		if (att->attlen > 0)
			len = att->attlen;
		else
			len = get_varint(&p, end, relname);
		if ((size_t) (end - p) < len)
			malformed(relname, "value runs past the record");
		if (want)
		{
			values[i] = get_image(att, (const char *) p, len);
			isnull[i] = false;
		}
		p += len;
	}
	if (p != end)
		malformed(relname, "trailing bytes after the last column");
}

/*
 * Is the stored value of a row (slen bytes) the value the statement read
 * (rlen bytes, re-encoded from the row it saw)?  Byte equality, or, for a
 * record written under an older layout (before columns were added or
 * dropped), equality once it is re-encoded as a new record would be.
 */
bool
kvs_same_value(KvsTable *t, const char *key, size_t klen,
			   const char *stored, size_t slen, const char *read, size_t rlen)
{
	TupleDesc	td = t->tupdesc;
	Datum	   *values;
	bool	   *isnull;
	StringInfoData norm;
	bool		same;

	if (slen == rlen && memcmp(stored, read, rlen) == 0)
		return true;
	values = palloc(sizeof(Datum) * td->natts);
	isnull = palloc(sizeof(bool) * td->natts);
	kvs_decode_row(td, t->opts.keyattno, t->layout, key, klen, stored, slen,
				   values, isnull, NULL, t->relname);
	initStringInfo(&norm);
	kvs_encode_value(td, t->opts.keyattno, t->layout, values, isnull, &norm);
	same = (norm.len == rlen && memcmp(norm.data, read, rlen) == 0);
	pfree(norm.data);
	pfree(values);
	pfree(isnull);
	return same;
}

/*
 * Orders key images by length, then bytes.  Any total order serves the sorts
 * and binary searches over key images (scan.c, modify.c), which only look
 * for equal keys; it is not the column type's order.
 */
int
kvs_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return memcmp(a, b, alen);
}

char *
kvs_key_to_text(TupleDesc td, AttrNumber keyattno, Datum d)
{
	Oid			out;
	bool		varlena;

	getTypeOutputInfo(TupleDescAttr(td, keyattno - 1)->atttypid, &out, &varlena);
	return OidOutputFunctionCall(out, d);
}

/* The key column's datum from its image (for messages). */
Datum
kvs_decode_key(TupleDesc td, AttrNumber keyattno, const char *key, size_t klen)
{
	Form_pg_attribute katt = TupleDescAttr(td, keyattno - 1);

	if (katt->attlen > 0 && klen != (size_t) katt->attlen)
		malformed("?", "key length does not match the key type");
	return get_image(katt, key, klen);
}
