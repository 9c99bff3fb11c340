/*
 * journal.h - the journal's internal interface for kvs.c: composing a
 * record (jr_begin, jr_page as the pager's capture callback, jr_finish),
 * the in-flight registry (jr_done), recovery of one file (jr_recover) and
 * the checkpoint trigger.  The public part (open, flush, checkpoint, stats)
 * is in kvs.h; format and algorithms in README.md, "The journal".
 *
 * A journal object is used by one thread at a time (each process opens its
 * own; many processes share the directory).
 */
#ifndef KVS_JOURNAL_H
#define KVS_JOURNAL_H

#include "header.h"

/* Which file a record belongs to: the header's nonce and the inode. */
typedef struct jr_ident {
    uint64_t file_id;
    uint64_t dev, ino;
} jr_ident;

/* What the file's header says, for recovery: hdr_ok (page 0 passed
 * validation; else nothing below is known), its change counter, its
 * journal LSN, and whether it names this journal (an LSN of another
 * journal means nothing here). */
typedef struct jr_fstate {
    int      hdr_ok, same_dir;
    uint64_t cc, lsn;
} jr_fstate;
void jr_fstate_of(jr_fstate *fs, const kvs_hdr *h, const char *dir);

/* The directory, absolute (what a file's header records). */
const char *jr_dir(const kvs_journal *j);
int         jr_errno(const kvs_journal *j);   /* errno of the last failure, 0 none */

/* KVS_EJOURNAL (with the reason in err) once the journal has failed. */
int  jr_check(kvs_journal *j, kvs_err *err);

/* Starts a record of the file `id` at `path` (absolute), tagged with xid:
 * takes the append lock, registers the record as in flight, sets *lsn.
 * Then the pages go to jr_page (the pager's capture callback, arg = j),
 * the header page last, and jr_finish ends it (npages: the header's page
 * count; truncated: replay trims the file to it) and releases the lock, or
 * jr_cancel drops it.  Runs a due checkpoint first. */
int  jr_begin(kvs_journal *j, const jr_ident *id, uint64_t xid, uint64_t change,
              const char *path, uint64_t *lsn, kvs_err *err);
int  jr_page(void *j, uint32_t pgno, const uint8_t *page);
int  jr_finish(kvs_journal *j, uint32_t npages, int truncated, kvs_err *err);
void jr_cancel(kvs_journal *j);
/* The record at lsn is written back (or its section aborted): it leaves the
 * in-flight registry, so a checkpoint may pass it. */
void jr_done(kvs_journal *j, uint64_t lsn);
/* kvs_journal_flush with the failure reported in err too. */
int  jr_flush(kvs_journal *j, uint64_t lsn, kvs_err *err);

/* Recovery of one file, under its exclusive lock, through fd (os): replays
 * the committed records the file may lack (README, "Recovery") and fsyncs
 * it.  fs: its header (without hdr_ok only the inode is matched and every
 * record since the checkpoint is replayed).  *indoubt: the xid of the first record
 * whose outcome cannot be told (no xid_status), 0 if none; nothing from
 * there on is replayed.  *replayed: records written into the file. */
/* How many records jr_recover would look at (>= 0), or a KVS code: 0 lets
 * an open skip the exclusive lock recovery needs. */
int  jr_pending(kvs_journal *j, const jr_ident *id, const jr_fstate *fs, kvs_err *err);
int  jr_recover(kvs_journal *j, const kvs_os *os, int fd, const jr_ident *id, const jr_fstate *fs,
                uint64_t *indoubt, uint32_t *replayed, kvs_err *err);

/* Change generations (README, "Change generations"): a counter per slot of
 * inodes in the control file, bumped under a file's exclusive lock before
 * anything in the file changes; a reader that holds the lock and finds the
 * value it saw last knows nobody wrote the file since.  jr_gen_bump_dir
 * bumps another journal's (the one a file's header names), by its path. */
uint64_t jr_gen(const kvs_journal *j, uint64_t ino);
void     jr_gen_bump(kvs_journal *j, uint64_t ino);
int      jr_gen_bump_dir(const char *dir, size_t len, uint64_t ino, kvs_err *err);

#endif
