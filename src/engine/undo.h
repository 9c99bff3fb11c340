/*
 * undo.h - the undo of a failed write-out.  While kvs_end writes a unit out,
 * the pager hands undo_save_run the file's own image of every page it is about
 * to overwrite that the file had when the unit began (pager_set_undo), so
 * that a write-out failing half-way can put the file back byte for byte
 * (undo_apply, newest image first).  Each page is written at most once per
 * write-out, so its first image is the unit's "before".  The images go to
 * the spill file, after the spilled pages (memory does not grow with the
 * unit), or to memory when there is no spill file (a handle without a path).
 * All or nothing against I/O errors; against a crash the journal's record
 * of the unit is replayed at the next open (README, "The journal").
 *
 * struct undo is opaque (undo.c).
 */
#ifndef KVS_UNDO_H
#define KVS_UNDO_H

#include "pager.h"
#include "spill.h"

/* An undo keeping its images in sp's file (NULL: in memory).  NULL when
 * out of memory. */
undo    *undo_new(spill *sp, kvs_err *err);
void     undo_free(undo *u);

void     undo_begin(undo *u);       /* forget earlier images; start after sp's pages */
/* Keeps imgs, the current bytes of the n consecutive pages pgno.. (n
 * images one after the other), in one write to the spill file (called by
 * the pager). */
int      undo_save_run(undo *u, uint32_t pgno, uint32_t n, const uint8_t *imgs);
/* Writes every image kept back into the file through pg (newest first) and
 * forgets them; the first failure is reported, the rest still tried.  The
 * caller has detached u from the pager (pager_set_undo(pg, NULL)). */
int      undo_apply(undo *u, pager *pg);
void     undo_end(undo *u);         /* forget the images (and large buffers) */
uint32_t undo_count(const undo *u); /* images kept now */

#endif
