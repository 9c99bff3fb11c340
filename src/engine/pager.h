/*
 * pager.h - the file as an array of 4 KiB pages: page checksums verified on
 * every read, the file header (page 0) read and written (its layout and
 * rules are header.h's), file growth, flock-based section locks, fsync.  Everything above works in pages and
 * never touches the file descriptor.
 */
#ifndef KVS_PAGER_H
#define KVS_PAGER_H

#include <sys/types.h>
#include "header.h"

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

/* The handle's header (the accessors are in header.h). */
static inline kvs_hdr *pager_hdr(pager *pg)
{
    return &pg->h;
}

uint64_t pager_checksum(const uint8_t *page, uint32_t pgno);
void     pager_seal(uint8_t *page, uint32_t pgno);     /* store the checksum */

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
