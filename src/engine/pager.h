/*
 * pager.h - the file as an array of 4 KiB pages: page checksums verified on
 * every read, the file header (page 0) decoded and validated, file growth,
 * flock-based section locks, fsync.  Everything above works in pages and
 * never touches the file descriptor.
 */
#ifndef KVS_PAGER_H
#define KVS_PAGER_H

#include <sys/types.h>
#include "util.h"

#define KVS_MAGIC          "KVSLHASH"   /* 8 bytes at offset 16 of page 0 */
#define KVS_FORMAT_VERSION 1u

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
#define HD_DESC       128   /* .. 128 + KVS_MAX_DESCRIPTOR */

/* The decoded header.  Buckets = 2^level + split. */
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
    uint8_t  desc[KVS_MAX_DESCRIPTOR];
} kvs_hdr;

typedef struct pager {
    const kvs_os *os;
    int       fd;
    int       rdonly;
    kvs_err  *err;
    kvs_hdr   h;              /* current header (may be ahead of disk in a write section) */
    int       extended;       /* file grown in this write section */
    off_t     extended_from;  /* its size before */
    uint32_t  phys_pages;     /* whole pages the file holds (valid while extended) */
    uint8_t  *wbuf;           /* coalesced writes (PAGER_RUN pages), allocated on first use */
    uint32_t  sect_npages;    /* page count when the write section began */
    /* spill: dirty pages evicted during a write section wait here, in a
     * private unlinked file beside the database, not in the file itself */
    char     *path;           /* the database path (spill file name) */
    int       spill_fd;       /* -1 until first needed */
    uint32_t  spill_next;     /* next free slot in the spill file */
    uint32_t  spill_count;    /* pages in the map */
    uint32_t  spill_cap;      /* map slots (power of two) */
    uint32_t *spill_key;      /* page number + 1, 0 = empty */
    uint32_t *spill_slot;
    uint64_t  spilled;        /* pages written to the spill file (counter) */
    /* undo: while kvs_end writes a section out, the file's own image of each
     * page it overwrites is kept first (in the spill file, so memory does
     * not grow with the section), so a failed write-out can put the file
     * back as it was (see README, "Durability") */
    int       undo_on;
    uint32_t  undo_n, undo_cap;
    uint32_t  undo_base;      /* first spill-file slot of the undo images */
    uint32_t *undo_pgno;
    uint8_t  *undo_buf;       /* images in memory, only when there is no spill file */
    uint64_t  reads, writes;  /* pages */
    uint8_t   hbuf[PG_SIZE];  /* header page image */
} pager;

static inline uint64_t hdr_buckets(const kvs_hdr *h)
{
    return ((uint64_t)1 << h->level) + h->split;
}

uint64_t pager_checksum(const uint8_t *page, uint32_t pgno);
void     pager_seal(uint8_t *page, uint32_t pgno);     /* store the checksum */
void     hdr_encode(const kvs_hdr *h, uint8_t *page);  /* sealed page 0 image */
/* Validates a page-0 image (magic, version, page size, checksum, fields). */
int      hdr_decode(const uint8_t *page, size_t len, kvs_hdr *h, kvs_err *err);

void     pager_init(pager *pg, const kvs_os *os, int fd, int rdonly, kvs_err *err);
int      pager_read(pager *pg, uint32_t pgno, uint8_t *buf);    /* + checksum */
int      pager_read_raw(pager *pg, uint32_t pgno, uint8_t *buf); /* no checks */
int      pager_write(pager *pg, uint32_t pgno, uint8_t *buf);   /* seals buf */
#define  PAGER_RUN 64
/* Writes n <= PAGER_RUN consecutive pages starting at pgno in one call
 * (each sealed in place first). */
int      pager_write_run(pager *pg, uint32_t pgno, uint8_t **pages, uint32_t n);
void     pager_free(pager *pg);
int      pager_extend(pager *pg, uint32_t pgno);   /* allocate page pgno on disk now */
/* Reads + validates page 0 into pg->h.  With check_size, also checks the
 * file holds every page the header counts (an fstat); without, only when the
 * change counter differs from known_change (someone else wrote the file). */
int      pager_load_header(pager *pg, int check_size, uint64_t known_change);
int      pager_store_header(pager *pg);
int      pager_discard_extension(pager *pg);       /* undo pager_extend of this section */
int      pager_set_size(pager *pg, uint32_t npages);
int      pager_sync(pager *pg);
int      pager_set_path(pager *pg, const char *path);
/* Spill: keep page pgno (sealed) outside the file until the section ends. */
int      pager_spill_write(pager *pg, uint32_t pgno, uint8_t *page);
/* If pgno is spilled: read it into page, forget it there, return 1 (0 if not
 * spilled, < 0 on error). */
int      pager_spill_take(pager *pg, uint32_t pgno, uint8_t *page, int want_data);
int      pager_spill_flush(pager *pg);      /* copy every spilled page into the file */
/* Undo of a write-out: between begin and end, every write over a page the
 * file had when the section began first saves that page's current bytes;
 * apply writes them all back (newest first). */
void     pager_undo_begin(pager *pg);
int      pager_undo_apply(pager *pg);
void     pager_undo_end(pager *pg);
void     pager_spill_reset(pager *pg);      /* forget every spilled page */
/* Waits for the section lock, polling interrupted(arg); lock_wait(wait_arg,
 * 1/0) brackets a wait that did not get the lock at once (see kvs_options). */
int      pager_lock(pager *pg, int exclusive, int (*interrupted)(void *), void *arg,
                    void (*lock_wait)(void *, int), void *wait_arg);
int      pager_unlock(pager *pg);
int      pager_write_all(const kvs_os *os, int fd, const void *buf, size_t n, off_t off);

#endif
