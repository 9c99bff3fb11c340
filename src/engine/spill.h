/*
 * spill.h - the spill file: where a write section's dirty pages go when the
 * pool must evict them before the section ends (no-steal: the database file
 * is untouched until kvs_end).  A private file beside the database, created
 * on first need and unlinked at once, and a map from page number to its
 * slot in that file (ptab.h, grown by doubling).  kvs_end copies the
 * spilled pages into the database file (spill_flush); a rollback forgets
 * them (spill_reset).  The undo of a write-out keeps its page images in
 * the slots after the spilled pages (spill_end, spill_slot_*; undo.c).
 *
 * struct spill is opaque (spill.c).
 */
#ifndef KVS_SPILL_H
#define KVS_SPILL_H

#include "pager.h"

typedef struct spill spill;

/* A spill object for the database at path (the file is named after it);
 * nothing is opened yet.  NULL when out of memory. */
spill   *spill_new(const kvs_os *os, const char *path, kvs_err *err);
void     spill_free(spill *sp);    /* closes the file (the system removes it) */

/* Keeps page pgno (sealed in place first) in the spill file until taken,
 * flushed or reset; a page spilled again reuses its slot. */
int      spill_write(spill *sp, uint32_t pgno, uint8_t *page);
/* If pgno is spilled: with want_data, reads it back into page (checksum
 * verified: a damaged image is KVS_EIO); forgets it there; returns 1.
 * 0 if not spilled (no I/O), < 0 on error. */
int      spill_take(spill *sp, uint32_t pgno, uint8_t *page, int want_data);
/* Writes every spilled page into the database file through pg (so the
 * undo sees each overwrite), then forgets them. */
int      spill_flush(spill *sp, pager *pg);
/* The same writes, keeping the pages spilled (a capturing pager hands them
 * to the journal record being composed). */
int      spill_capture(spill *sp, pager *pg);
void     spill_reset(spill *sp);    /* forgets every spilled page */
uint32_t spill_count(const spill *sp);       /* pages spilled now */
uint64_t spill_written(const spill *sp);     /* spill writes ever (counter) */

/* Raw slots, for the undo's images: spill_end is the first slot past the
 * spilled pages.  spill_open creates the file if it is not yet (KVS code);
 * the slot calls need it open and return 0 or -1 with errno (a short read
 * is EIO), their caller reporting the failure in its own words. */
int      spill_open(spill *sp);
uint32_t spill_end(const spill *sp);
int      spill_slot_write(spill *sp, uint32_t slot, const uint8_t *page);
int      spill_slots_write(spill *sp, uint32_t slot, uint32_t n, const uint8_t *pages);  /* n slots from slot */
int      spill_slot_read(spill *sp, uint32_t slot, uint8_t *page);

#endif
