/*
 * compact.h - building the compacted copy of a table and putting it in place
 * (compact.c).  kvs.c's kvs_compact() holds the exclusive lock around these
 * and moves the handle to the new file; see README.md, "Compaction".
 */
#ifndef KVS_COMPACT_H
#define KVS_COMPACT_H

#include "lhash.h"

/* How the host stops a long copy (kvs_options.interrupted). */
typedef struct compact_hook {
    int   (*interrupted)(void *arg);    /* nonzero: stop (KVS_EINTR); NULL = never */
    void   *arg;
    int     hold;   /* the caller is a shared pool's handle: the new file is
                     * locked LOCK_SH (its hold, kvs.c) instead of LOCK_EX */
} compact_hook;

/* Checks src (the caller holds its exclusive lock, outside a write-out),
 * writes every record into "<path>.compact" sized for the records, checks
 * and fsyncs it, renames it over path and fsyncs the directory.  *newfd gets
 * the new file's descriptor, locked exclusively (shared if hook->hold), as soon as the rename has
 * happened (also when only the directory fsync then fails: the new file is
 * in place and the caller must switch to it); it stays -1 when the old file
 * is still the one at path (nothing of it was written).  The copy asks
 * hook->interrupted between buckets: nonzero stops it before the rename
 * (KVS_EINTR).  info's sizes are filled on success. */
int compact_file(lh *src, const char *path, const compact_hook *hook, int *newfd,
                 kvs_compact_info *info);

#endif
