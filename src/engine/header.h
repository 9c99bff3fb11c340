/*
 * header.h - the file header (page 0): its layout on disk, the decoded
 * struct, encoding and validation (header.c), and the accessors through
 * which every other layer reads and changes it.
 *
 * One owner: no file but header.c / header.h reads or writes a field of
 * kvs_hdr directly.  The other layers call the accessors below, each of
 * which is one change a layer is allowed to make (README.md, "The file
 * header": who may change which field).  That keeps the header's rules in
 * one place and lets it later become a page of a shared pool, locked by the
 * accessors' callers, without touching the layers again.  The accessors are
 * static inline: gets and puts read the level, split and seed and change
 * the counts on every call, so they must cost no more than the field
 * accesses they replace.
 */
#ifndef KVS_HEADER_H
#define KVS_HEADER_H

#include <stddef.h>
#include "util.h"

#define KVS_MAGIC              "KVSLHASH"   /* 8 bytes at offset 16 of page 0 */
/* File format versions (README.md, "Versions"):
 *  1  the first format.
 *  2  adds the flags word (HD_FLAGS; reserved and zero in version 1).
 *  3  adds the file id (HD_FILEID; zero in versions 1 and 2): a random
 *     nonzero 64-bit nonce chosen when the file is created, new for the
 *     file a compaction builds, which lets one buffer pool tell files apart
 *     (with the file's st_dev/st_ino, checked at open: a byte copy keeps
 *     the id but is another inode).
 *  4  adds the owner (HD_OWNER; zero in versions 1 to 3): which host has
 *     the file (kvs_options.owner_id, a PostgreSQL cluster's system
 *     identifier), 0 = none; kept by a compaction.
 *  5  adds the journal (HD_JLSN, HD_JPATHLEN, HD_JPATH; zero in versions 1
 *     to 4): the LSN of the last journal record written back into the file
 *     (recovery replays the committed records after it) and the absolute
 *     path of the journal directory the file's commits go through, so a
 *     standalone open finds a host's journal (README.md, "The journal").
 *  6  the same page layout as 5; what it adds is a promise about the
 *     writers: every engine that writes a version-6 file bumps the change
 *     generation of the file's inode in the journal's control file before
 *     it changes a byte of it (README.md, "Change generations"), so a
 *     reader may skip its header reread while that generation stands.  A
 *     version-5 engine does not bump, and refuses a version-6 file (at its
 *     open and at its next section's header reread), so it can write no
 *     file whose readers count on the bump.  A version-5 file may still
 *     have a version-5 engine at work on it: while the header a handle
 *     holds says version < 6 (KVS_FORMAT_GENS), it rereads at every
 *     section.
 * This engine reads versions 1 to 6.  A version-1 to -5 file is read as
 * it is (no flag / id 0 = "none yet" / owner 0 / journal LSN 0 and no
 * journal path; a read-only handle or a read section leaves it byte for
 * byte) and becomes version 6, with a fresh id if it had none, when a write
 * section first stores its header (pager_store_header, hdr_upgrade).  An
 * engine refuses a file of a version newer than it knows (KVS_EVERSION),
 * and for good reason: a version-1 engine would miss the REPLACING flag, a
 * version-2 engine would write the header back without the id, a version-3
 * engine without the owner, a version-4 engine without the journal LSN
 * (its write-outs would not be journaled, and recovery would replay older
 * records over them), a version-5 engine would write without the bump
 * (a reader skipping its reread would miss the write). */
#define KVS_FORMAT_VERSION     6u
#define KVS_FORMAT_VERSION_MIN 1u
/* The first version all of whose writers bump the change generations: a
 * handle skips its header reread only while the header it holds is at
 * least this (kvs.c, gen_remember). */
#define KVS_FORMAT_GENS        6u

/* Header page field offsets (see README.md for the table). */
#define HD_MAGIC      16
#define HD_VERSION    24
#define HD_PAGESIZE   28
#define HD_SEED       32
#define HD_LEVEL      40
#define HD_SPLIT      44
#define HD_RECORDS    48
#define HD_DATABYTES  56
#define HD_NPAGES     64
#define HD_FREEHEAD   68
#define HD_FREECOUNT  72
#define HD_DIRROOT    76
#define HD_DIRDEPTH   80
#define HD_OVFLPAGES  84
#define HD_VALPAGES   88
#define HD_DIRPAGES   92
#define HD_CHANGE     96
#define HD_STAMP      104
#define HD_FILLFACTOR 112
#define HD_DESCLEN    116
#define HD_FLAGS      120   /* version >= 2; 124..127 reserved, 0 */
#define HD_DESC       128   /* .. 128 + KVS_MAX_DESCRIPTOR */
#define HD_FILEID     2176  /* version >= 3: u64 file id, never 0 */
#define HD_OWNER      2184  /* version >= 4: u64 owner id, 0 = none */
#define HD_JLSN       2192  /* version >= 5: u64 journal LSN written back last, 0 = none */
#define HD_JPATHLEN   2200  /* version >= 5: u32 length of the journal path, 0 = none */
#define HD_JPATH      2204  /* version >= 5: the journal directory, absolute, no NUL;
                             * .. 2204 + KVS_HDR_JPATH_MAX; 2460.. zero */
#define KVS_HDR_JPATH_MAX 256

/* The id lies just past the descriptor's largest extent. */
typedef char kvs_hdr_fileid_after_desc_[HD_FILEID == HD_DESC + KVS_MAX_DESCRIPTOR ? 1 : -1];

/* Header flags.  REPLACING: a compaction has put (or is about to put) a new
 * file at this file's path; a handle that reads it follows the path (kvs.c,
 * follow_replacement).  Set only in the old file, never in a new one. */
#define KVS_HDR_REPLACING 0x1u
#define KVS_HDR_FLAGS_KNOWN KVS_HDR_REPLACING

/* The decoded header.  Buckets = 2^level + split.  Fields are private to
 * header.c/header.h: use the accessors. */
typedef struct kvs_hdr {
    uint64_t hash_seed;
    uint32_t level;
    uint32_t split;
    uint64_t records;
    uint64_t data_bytes;      /* record + slot bytes in bucket chains */
    uint32_t npages;          /* pages in the file, header included */
    uint32_t free_head;
    uint32_t free_count;
    uint32_t dir_root;
    uint32_t dir_depth;       /* 1 = the root is a leaf */
    uint32_t overflow_pages;
    uint32_t value_pages;
    uint32_t dir_pages;
    uint64_t change_counter;
    uint64_t stamp_counter;
    uint32_t fillfactor;
    uint32_t desc_len;
    uint32_t version;         /* as read, or KVS_FORMAT_VERSION once stored */
    uint32_t flags;           /* KVS_HDR_* */
    uint64_t file_id;         /* 0 only for a version-1/2 header not yet upgraded */
    uint64_t owner_id;        /* 0 = none (and always in a version-1..3 header) */
    uint64_t journal_lsn;     /* last journal record written back; 0 = none */
    uint32_t jpath_len;       /* 0 = no journal named */
    char     jpath[KVS_HDR_JPATH_MAX];
    uint8_t  desc[KVS_MAX_DESCRIPTOR];
} kvs_hdr;

/* A sealed page-0 image.  A header with a file id is written as version
 * KVS_FORMAT_VERSION; one decoded from an older file and not upgraded yet
 * (only page inspection inside a write section encodes such a header) is
 * written as the version it was read as, id bytes zero, so that no image
 * hdr_decode would refuse is ever made. */
void hdr_encode(const kvs_hdr *h, uint8_t *page);
/* Validates a page-0 image (magic, version, page size, checksum, fields). */
int  hdr_decode(const uint8_t *page, size_t len, kvs_hdr *h, kvs_err *err);

/* ---- setting up a header (creation, truncation, compaction) ---- */

/* A new file's header: seed, fill factor and descriptor, a fresh file id;
 * everything else 0 (lh_format_new then gives it the empty table). */
void hdr_init(kvs_hdr *h, uint64_t seed, uint32_t fillfactor, const void *desc, size_t desc_len);
/* The counts of the empty table lh_format_new writes: directory leaf at page
 * 1 (the root, depth 1), bucket 0 at page 2, 3 pages, no record. */
void hdr_reset_table(kvs_hdr *h);
/* The header of a compacted copy of src: its seed, fill factor, descriptor,
 * owner and stamp counter, change counter + 1, no flag, and a NEW file id (it is
 * another file, with other pages; lh_format_new then gives it the empty
 * table). */
void hdr_derive(kvs_hdr *dst, const kvs_hdr *src);

/* pager: the header is about to be written to the file.  A header of an
 * older version is version 6 (KVS_FORMAT_VERSION) from now on (hdr_encode
 * writes it so), with a fresh id if it had none (versions 1 and 2). */
void hdr_upgrade(kvs_hdr *h);

/* A fresh file id: 64 random bits from getrandom(2), or where that is
 * missing or fails, from hdr_id_fallback.  Never 0. */
uint64_t hdr_new_file_id(void);
/* The fallback on its own (for the tests): clock_gettime, the pid, a
 * counter and an address mixed through xxh3.  Never 0. */
uint64_t hdr_id_fallback(void);

/* ---- reads ---- */

static inline uint64_t hdr_seed(const kvs_hdr *h) { return h->hash_seed; }
static inline uint32_t hdr_level(const kvs_hdr *h) { return h->level; }
static inline uint32_t hdr_split(const kvs_hdr *h) { return h->split; }
static inline uint64_t hdr_buckets(const kvs_hdr *h)
{
    return ((uint64_t)1 << h->level) + h->split;
}
static inline uint64_t hdr_records(const kvs_hdr *h) { return h->records; }
static inline uint64_t hdr_data_bytes(const kvs_hdr *h) { return h->data_bytes; }
static inline uint32_t hdr_npages(const kvs_hdr *h) { return h->npages; }
static inline uint32_t hdr_free_head(const kvs_hdr *h) { return h->free_head; }
static inline uint32_t hdr_free_count(const kvs_hdr *h) { return h->free_count; }
static inline uint32_t hdr_dir_root(const kvs_hdr *h) { return h->dir_root; }
static inline uint32_t hdr_dir_depth(const kvs_hdr *h) { return h->dir_depth; }
static inline uint64_t hdr_change(const kvs_hdr *h) { return h->change_counter; }
static inline uint64_t hdr_stamp(const kvs_hdr *h) { return h->stamp_counter; }
static inline uint32_t hdr_fillfactor(const kvs_hdr *h) { return h->fillfactor; }
static inline const uint8_t *hdr_desc(const kvs_hdr *h) { return h->desc; }
static inline uint32_t hdr_desc_len(const kvs_hdr *h) { return h->desc_len; }
static inline uint32_t hdr_version(const kvs_hdr *h) { return h->version; }
/* 0 = none yet (a version-1/2 file before its first write-out). */
static inline uint64_t hdr_file_id(const kvs_hdr *h) { return h->file_id; }
static inline int hdr_replacing(const kvs_hdr *h) { return (h->flags & KVS_HDR_REPLACING) != 0; }
/* Who has the file (kvs_options.owner_id); 0 = none. */
static inline uint64_t hdr_owner(const kvs_hdr *h) { return h->owner_id; }
/* The journal: the LSN of the last record written back (0 = none) and the
 * directory the file's commits go through (len 0 = none named). */
static inline uint64_t hdr_journal_lsn(const kvs_hdr *h) { return h->journal_lsn; }
static inline const char *hdr_journal_path(const kvs_hdr *h, uint32_t *len)
{
    *len = h->jpath_len;
    return h->jpath;
}

/* Pages of one kind the header counts: KVS_PAGE_OVERFLOW, _VALUE or _DIR. */
static inline uint32_t *hdr_kind_count_(kvs_hdr *h, int type)
{
    return type == KVS_PAGE_OVERFLOW ? &h->overflow_pages
         : type == KVS_PAGE_VALUE ? &h->value_pages : &h->dir_pages;
}
static inline uint32_t hdr_pages_of(const kvs_hdr *h, int type)
{
    return *hdr_kind_count_((kvs_hdr *)h, type);
}

/* ---- changes, each named for the layer that makes it ---- */

/* lhash: a record of `bytes` (record + slot) added / removed, or one
 * replaced in place by one of a different size. */
static inline void hdr_record_added(kvs_hdr *h, uint64_t bytes)
{
    h->records++;
    h->data_bytes += bytes;
}
static inline void hdr_record_removed(kvs_hdr *h, uint64_t bytes)
{
    h->records--;
    h->data_bytes -= bytes;
}
static inline void hdr_record_resized(kvs_hdr *h, uint64_t oldbytes, uint64_t newbytes)
{
    h->data_bytes = h->data_bytes + newbytes - oldbytes;
}
/* lhash: bucket `split` was split (or, in a table with no record, an empty
 * bucket added: lh_reserve); the pointer moves on, the level rises when it
 * wraps. */
static inline void hdr_split_done(kvs_hdr *h)
{
    h->split++;
    if ((uint64_t)h->split == ((uint64_t)1 << h->level)) {
        h->level++;
        h->split = 0;
    }
}
/* lhash (overflow), vchain (value), dir (directory): one page of that kind
 * more (delta 1) or less (-1). */
static inline void hdr_count_page(kvs_hdr *h, int type, int delta)
{
    *hdr_kind_count_(h, type) += (uint32_t)delta;
}
/* pool: the file grows by one page at its end (returns its number) / that
 * growth is taken back. */
static inline uint32_t hdr_append_page(kvs_hdr *h) { return h->npages++; }
static inline void hdr_unappend_page(kvs_hdr *h) { h->npages--; }
/* pool: page pgno pushed on the free list / its head popped (next = the
 * new head). */
static inline void hdr_free_pushed(kvs_hdr *h, uint32_t pgno)
{
    h->free_head = pgno;
    h->free_count++;
}
static inline void hdr_free_popped(kvs_hdr *h, uint32_t next)
{
    h->free_head = next;
    h->free_count--;
}
/* dir: a new root one level up (the old root is its entry 0). */
static inline void hdr_dir_new_root(kvs_hdr *h, uint32_t root)
{
    h->dir_root = root;
    h->dir_depth++;
}
/* kvs: a write section that changed something is written out. */
static inline void hdr_change_bump(kvs_hdr *h) { h->change_counter++; }
/* *dst = *src, copying only the bytes of jpath and desc in use (a lazy
 * section keeps its header at every kvs_begin: ~200 bytes, not 2.4 KiB) */
static inline void hdr_copy(kvs_hdr *dst, const kvs_hdr *src)
{
    memcpy(dst, src, offsetof(kvs_hdr, jpath));
    memcpy(dst->jpath, src->jpath, src->jpath_len < KVS_HDR_JPATH_MAX ? src->jpath_len : KVS_HDR_JPATH_MAX);
    memcpy(dst->desc, src->desc, src->desc_len < KVS_MAX_DESCRIPTOR ? src->desc_len : KVS_MAX_DESCRIPTOR);
}
/* kvs: the next statement stamp. */
static inline uint64_t hdr_stamp_next(kvs_hdr *h) { return ++h->stamp_counter; }
/* kvs: the host's descriptor (len <= KVS_MAX_DESCRIPTOR, checked by kvs.c). */
static inline void hdr_set_desc(kvs_hdr *h, const void *blob, size_t len)
{
    if (len)
        memcpy(h->desc, blob, len);
    h->desc_len = (uint32_t)len;
}
/* kvs_compact: the old file is being replaced (set) / the replacement
 * failed and the old file stays (cleared). */
static inline void hdr_set_replacing(kvs_hdr *h, int on)
{
    h->flags = on ? (h->flags | KVS_HDR_REPLACING) : (h->flags & ~KVS_HDR_REPLACING);
}
/* kvs_open: a shared pool's first handle records its host as the owner
 * (or takes the file over, KVS_ADOPT). */
static inline void hdr_set_owner(kvs_hdr *h, uint64_t owner) { h->owner_id = owner; }
/* kvs_prepare: this section's journal record is lsn (and goes through the
 * journal at path, len <= KVS_HDR_JPATH_MAX, checked by kvs.c). */
static inline void hdr_set_journal(kvs_hdr *h, uint64_t lsn, const char *path, size_t len)
{
    h->journal_lsn = lsn;
    if (len)
        memcpy(h->jpath, path, len);
    h->jpath_len = (uint32_t)len;
}

#endif
