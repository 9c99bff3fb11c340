/*
 * pager.h - page I/O on the database file: the file as an array of 4 KiB
 * pages, a checksum verified on every read, writes and coalesced write runs,
 * growth (and its discard), fsync, and the header page (page 0) loaded and
 * stored (its layout and rules are header.h's).  Everything above works in
 * pages and never touches the file descriptor for page I/O.
 *
 * struct pager is opaque (defined in pager.c only, as SQLite's pager.h
 * does); only its first members, the header and the error record, are
 * visible as pager_head, so that pager_hdr() -- on every bucket lookup and
 * pool fetch -- stays one address computation instead of a call.
 */
#ifndef KVS_PAGER_H
#define KVS_PAGER_H

#include <sys/types.h>
#include "header.h"

typedef struct pager pager;
typedef struct undo undo;      /* undo.h */

/* The first members of struct pager.  Read through the accessors below;
 * the header's fields are changed only through header.h's accessors. */
typedef struct pager_head {
    kvs_hdr   h;              /* current header (may be ahead of disk in a write section) */
    kvs_err  *err;
} pager_head;

/* The handle's header (the accessors are in header.h). */
static inline kvs_hdr *pager_hdr(pager *pg)
{
    return &((pager_head *)(void *)pg)->h;
}

/* The error record failures are reported in. */
static inline kvs_err *pager_err(pager *pg)
{
    return ((pager_head *)(void *)pg)->err;
}

uint64_t pager_checksum(const uint8_t *page, uint32_t pgno);
void     pager_seal(uint8_t *page, uint32_t pgno);     /* store the checksum */

/* A pager over fd (not closed by pager_free); NULL when out of memory. */
pager   *pager_new(const kvs_os *os, int fd, int rdonly, kvs_err *err);
void     pager_free(pager *pg);
const kvs_os *pager_os(const pager *pg);
int      pager_fd(const pager *pg);
/* Moves the pager to another descriptor of the same table (a compaction
 * replaced the file); the caller closes the old one. */
void     pager_set_fd(pager *pg, int fd);

int      pager_read(pager *pg, uint32_t pgno, uint8_t *buf);    /* + checksum */
int      pager_read_raw(pager *pg, uint32_t pgno, uint8_t *buf); /* no checks */
/* pager_read's check of a page read some other way: KVS_ECORRUPT (its
 * message naming pgno) when the checksum does not match. */
int      pager_verify(pager *pg, uint32_t pgno, const uint8_t *buf);
/* Reads up to n consecutive pages from pgno into buf in one call, no
 * checks: how many whole pages came (0 on an error or at the file's end,
 * left to pager_read to name). */
uint32_t pager_read_pages(pager *pg, uint32_t pgno, uint8_t *buf, uint32_t n);
int      pager_write(pager *pg, uint32_t pgno, uint8_t *buf);   /* seals buf */
#define  PAGER_RUN 64
/* Writes n <= PAGER_RUN consecutive pages starting at pgno in one call
 * (each sealed in place first). */
int      pager_write_run(pager *pg, uint32_t pgno, uint8_t **pages, uint32_t n);
/* Writes an image back as it is (no seal, no undo, no error recorded): 0,
 * or -1 with errno.  For putting back bytes saved before a failed change,
 * whose caller decides what to report. */
int      pager_write_image(pager *pg, uint32_t pgno, const uint8_t *img);
/* Capture (kvs_prepare composing a journal record): while fn is set, every
 * page pager_write, pager_write_run and pager_store_header would write is
 * sealed and handed to fn instead (no undo, nothing written to the file);
 * fn returns a KVS code.  NULL stops it. */
typedef int (*pager_capture_fn)(void *arg, uint32_t pgno, const uint8_t *page);
void     pager_set_capture(pager *pg, pager_capture_fn fn, void *arg);
/* While on, pager_write and pager_write_run write pages as they are,
 * without sealing them: the write-out of a prepared unit, whose pages the
 * capture sealed and nothing changed since (kvs_commit). */
void     pager_set_presealed(pager *pg, int on);

/* The unit of change.  pager_begin_unit marks the file's current page count
 * (the header's) as the pages the unit began with, and restarts growth
 * tracking; called at a write section's start and after each write-out. */
void     pager_begin_unit(pager *pg);
uint32_t pager_sect_npages(const pager *pg);   /* the page count it marked */
/* While u is set (kvs_end's write-out), every write over a page the file
 * had when the unit began first hands that page's current bytes to
 * undo_save_run(u, ...); NULL stops it. */
void     pager_set_undo(pager *pg, undo *u);

int      pager_extend(pager *pg, uint32_t pgno);   /* allocate page pgno on disk now */
/* Growth preallocates 1/16 of the file, at most max_pages (default 256)
 * pages; the write-out cuts off what the unit did not use, so a host whose
 * units are short (a shared pool's writer yielding to readers) asks for
 * less, not to write and cut 1 MB of zeros per unit. */
void     pager_set_growth(pager *pg, uint32_t max_pages);
int      pager_discard_extension(pager *pg);       /* undo pager_extend of this unit */
int      pager_set_size(pager *pg, uint32_t npages);
/* After a write-out: cuts the file to the header's page count when always
 * is set (a truncate) or when growth in this unit preallocated zero pages
 * beyond it. */
int      pager_trim(pager *pg, int always);
int      pager_sync(pager *pg);

/* Reads + validates page 0 into the header.  With check_size, also checks
 * the file holds every page the header counts (an fstat); without, only when
 * the change counter differs from known_change (someone else wrote the file). */
int      pager_load_header(pager *pg, int check_size, uint64_t known_change);
int      pager_store_header(pager *pg);

uint64_t pager_reads(const pager *pg);             /* pages read (counter) */
uint64_t pager_writes(const pager *pg);            /* pages written (counter) */
void     pager_reset_counts(pager *pg);

/* pwrite until done; a write that makes no progress is an error (-1, errno). */
int      pager_write_all(const kvs_os *os, int fd, const void *buf, size_t n, off_t off);
/* pread until n bytes or end of file: the bytes read, or -1 (errno). */
ssize_t  pager_read_all(const kvs_os *os, int fd, void *buf, size_t n, off_t off);

#endif
